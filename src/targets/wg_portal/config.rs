//! `kind: wg-portal` in `homebase.yaml`, checked without the network.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::Problem;
use crate::targets::common::{SecretSource, Timeouts};

/// A WireGuard interface managed by wg-portal (v2), through its REST API
/// `/api/v1`. wg-portal authenticates an admin user by its identifier and
/// API token (HTTP Basic); the token is read when homebase connects, from
/// the environment or a file, and never written anywhere.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WgPortalConfig {
    /// Base URL of wg-portal, e.g. `https://vpn-admin.example.org` (the API
    /// lies below `/api/v1`). `http://` only for 127.0.0.1, `::1` or localhost.
    pub url: String,
    /// The admin user's identifier, whose API token homebase uses.
    pub user: String,
    /// Environment variable that holds the user's API token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File that holds the API token (relative to this file); its first line counts.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA certificates to trust instead of the system's
    /// (relative to this file). TLS is always verified.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub timeouts: Timeouts,
    /// The wg-portal interface the peers belong to, e.g. `wg0`.
    pub interface: String,
    /// What clients connect to: `host:port`. Compared with the interface's
    /// default peer endpoint when it has one.
    pub endpoint: String,
    /// The port clients use when `endpoint` names none.
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    /// The interface's address with the pool's prefix, e.g. `10.20.0.1/16`;
    /// must be one of the interface's own (checked at `plan`).
    pub address: ipnet::IpNet,
    #[serde(flatten)]
    pub limits: Limits,
}

impl WgPortalConfig {
    pub fn token_source(&self) -> SecretSource<'_> {
        SecretSource {
            key: "token",
            what: "API token",
            env: self.token_env.as_deref(),
            file: self.token_file.as_deref(),
        }
    }

    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = crate::targets::common::http::url_problems(
            name,
            "url",
            &self.url,
            "https://vpn-admin.example.org",
            source,
        );
        problems.extend(self.token_source().problems(name, source));
        problems.extend(self.timeouts.problems(name, source));
        if self.user.trim().is_empty() {
            problems.push(
                Problem::new(source, "no user")
                    .column(at("user"))
                    .expected("the identifier of a wg-portal admin with an API token"),
            );
        }
        if self.interface.trim().is_empty() {
            problems.push(
                Problem::new(source, "no interface")
                    .column(at("interface"))
                    .expected("the wg-portal interface identifier, e.g. wg0"),
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

fn default_listen_port() -> u16 {
    51820
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_at_once() {
        let c: WgPortalConfig = serde_norway::from_str(
            "url: http://portal.example.org\nuser: ''\ninterface: ''\nendpoint: ''\n\
             address: 10.20.0.1/16\n",
        )
        .unwrap();
        assert_eq!(c.problems("gw", "homebase.yaml").len(), 5);
        let good: WgPortalConfig = serde_norway::from_str(
            "url: https://portal.example.org\nuser: homebase\ninterface: wg0\n\
             endpoint: vpn.example.org:51820\naddress: 10.20.0.1/16\ntoken_env: T\n",
        )
        .unwrap();
        assert!(good.problems("gw", "homebase.yaml").is_empty());
    }
}
