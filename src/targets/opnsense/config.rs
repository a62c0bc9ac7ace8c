//! `kind: opnsense` in `homebase.yaml`, checked without the network.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::Problem;
use crate::targets::common::{SecretSource, Timeouts};

/// A WireGuard instance on an OPNsense firewall (24.1 and later), managed
/// through its REST API with an API key and secret (the pair OPNsense
/// downloads as `apikey.txt`). Both are read when homebase connects, from
/// the environment or a file, and never written anywhere.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpnsenseConfig {
    /// Base URL of the firewall's web interface, e.g. `https://fw.example.org`
    /// (the API lies below `/api`). `http://` only for 127.0.0.1, `::1` or localhost.
    pub url: String,
    /// Environment variable that holds the API key.
    #[serde(default)]
    pub key_env: Option<String>,
    /// File that holds the API key (relative to this file); its first line counts.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Environment variable that holds the API secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File that holds the API secret (relative to this file); its first line counts.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// PEM file of the CA certificates to trust instead of the system's
    /// (relative to this file). TLS is always verified.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub timeouts: Timeouts,
    /// The name of the WireGuard instance (VPN → WireGuard → Instances) the
    /// peers belong to, e.g. `homeoffice`.
    pub instance: String,
    /// What clients connect to: `host:port`. Compared with the instance's
    /// own endpoint (its peer generator setting) when it has one.
    pub endpoint: String,
    /// The port clients use when `endpoint` names none.
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    /// The instance's tunnel address with the pool's prefix, e.g.
    /// `10.20.0.1/16`; must be the instance's own (checked at `plan`).
    pub address: ipnet::IpNet,
    /// How many peer changes OPNsense saves a minute, for the plan's
    /// estimate: each is a write of its whole configuration under one lock
    /// (measure yours: `homebase apply -v` prints the time per target).
    #[serde(default = "default_writes_per_minute")]
    pub writes_per_minute: u32,
    #[serde(flatten)]
    pub limits: Limits,
}

impl OpnsenseConfig {
    pub fn key_source(&self) -> SecretSource<'_> {
        SecretSource {
            key: "key",
            what: "API key",
            env: self.key_env.as_deref(),
            file: self.key_file.as_deref(),
        }
    }

    pub fn secret_source(&self) -> SecretSource<'_> {
        SecretSource {
            key: "secret",
            what: "API secret",
            env: self.secret_env.as_deref(),
            file: self.secret_file.as_deref(),
        }
    }

    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = crate::targets::common::http::url_problems(
            name,
            "url",
            &self.url,
            "https://fw.example.org",
            source,
        );
        problems.extend(self.key_source().problems(name, source));
        problems.extend(self.secret_source().problems(name, source));
        problems.extend(self.timeouts.problems(name, source));
        // OPNsense's own rule for instance names.
        let valid = !self.instance.is_empty()
            && self.instance.len() <= 64
            && self
                .instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !valid {
            problems.push(
                Problem::new(
                    source,
                    format!("\"{}\" is not an OPNsense instance name", self.instance),
                )
                .column(at("instance"))
                .expected("1 to 64 of A-Z a-z 0-9 . _ -"),
            );
        }
        if self.endpoint.trim().is_empty() {
            problems.push(
                Problem::new(source, "no endpoint")
                    .column(at("endpoint"))
                    .expected("host:port clients connect to, e.g. vpn.example.org:51820"),
            );
        }
        problems
    }
}

fn default_writes_per_minute() -> u32 {
    600
}

fn default_listen_port() -> u16 {
    51820
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> OpnsenseConfig {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn every_problem_at_once() {
        let c = config(
            "url: http://fw.example.org\ninstance: 'wg 0'\nendpoint: ''\naddress: 10.20.0.1/16\n\
             key_env: K\nsecret_env: S\nsecret_file: s.txt\ntimeout_seconds: 0\n",
        );
        let problems: Vec<String> = c
            .problems("gw", "homebase.yaml")
            .iter()
            .map(|p| format!("{p}"))
            .collect();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        let good = config(
            "url: https://fw.example.org\ninstance: homeoffice\nendpoint: vpn.example.org:51820\n\
             address: 10.20.0.1/16\nkey_env: K\nsecret_file: s.txt\n",
        );
        assert!(good.problems("gw", "homebase.yaml").is_empty());
    }
}
