//! `kind: wireguard` in `homebase.yaml`, checked without the network.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::Problem;

/// A WireGuard server's running interface. Every value here is passed as an
/// argument through `command` (ssh joins arguments into a shell line), so
/// names and paths are restricted to characters no shell interprets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireguardLive {
    /// The interface on the gateway, e.g. `wg0`.
    pub interface: String,
    /// What clients connect to: `host:port`, `[v6]:port` or `v6` address with port.
    pub endpoint: String,
    /// The port clients use when `endpoint` names none.
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    /// The server's own tunnel address with the pool's prefix, e.g. `10.20.0.1/16`.
    pub address: ipnet::IpNet,
    /// The gateway's `wg-quick` file (e.g. `/etc/wireguard/wg0.conf`), kept
    /// in step after every apply so that a restart keeps the peers. A path
    /// on the machine the commands run on; relative to this file when local.
    pub config_path: PathBuf,
    /// Prefix of every command, e.g. `[ssh, vpn-gw-1, sudo]` or
    /// `[ip, netns, exec, vpn]`; empty: run `wg` here.
    #[serde(default)]
    pub command: Vec<String>,
    /// Seconds one command may take.
    #[serde(default = "default_command_timeout")]
    pub timeout_seconds: u64,
    #[serde(flatten)]
    pub limits: Limits,
}

impl WireguardLive {
    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = Vec::new();
        let iface_ok = !self.interface.is_empty()
            && self.interface.len() <= 15
            && self
                .interface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_=+.-".contains(&b));
        if !iface_ok {
            problems.push(
                Problem::new(
                    source,
                    format!("\"{}\" is not an interface name", self.interface),
                )
                .column(at("interface"))
                .expected("1 to 15 of A-Z a-z 0-9 _ = + . -"),
            );
        }
        let path = self.config_path.to_string_lossy();
        if path.is_empty()
            || !path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+@".contains(&b))
        {
            problems.push(
                Problem::new(source, format!("\"{path}\" is not a plain path"))
                    .column(at("config_path"))
                    .expected("a path of A-Z a-z 0-9 / . _ - + @ (it is passed through `command`)"),
            );
        }
        if self.command.iter().any(|part| part.is_empty()) {
            problems.push(
                Problem::new(source, "an empty word in the command prefix")
                    .column(at("command"))
                    .expected("e.g. [ssh, vpn-gw-1, sudo]"),
            );
        }
        problems.extend(crate::targets::common::timeouts::zero_timeout(
            name,
            "timeout_seconds",
            self.timeout_seconds,
            source,
        ));
        problems
    }
}

fn default_listen_port() -> u16 {
    51820
}
fn default_command_timeout() -> u64 {
    60
}
