//! `kind: scim` in `homebase.yaml`, checked without the network.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::Problem;
use crate::targets::common::{SecretSource, Timeouts};

/// A SCIM 2.0 directory. The bearer token comes from an environment variable
/// or a file, never from the configuration or the command line.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// Base URL of the SCIM API, e.g. `https://idp.example.org/scim/v2`.
    pub url: String,
    /// Environment variable holding the bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the bearer token on its first line (relative to this file).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA certificates to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub timeouts: Timeouts,
    /// Tries per request for timeouts, dropped connections, 429 and 5xx
    /// (the first included) before the action as a whole is retried.
    #[serde(default = "default_scim_request_tries")]
    pub request_tries: u32,
    /// Resources per page when reading; capped by the server's `maxResults`.
    #[serde(default = "default_scim_page_size")]
    pub page_size: usize,
    /// Create users through the Bulk endpoint when the server offers it.
    #[serde(default)]
    pub bulk: bool,
    /// Group members added or removed by one PATCH of a group, at most.
    #[serde(default = "default_scim_members_per_patch")]
    pub members_per_patch: usize,
    #[serde(flatten)]
    pub limits: Limits,
}

impl ScimConfig {
    pub fn token_source(&self) -> SecretSource<'_> {
        SecretSource {
            key: "token",
            what: "bearer token",
            env: self.token_env.as_deref(),
            file: self.token_file.as_deref(),
        }
    }

    /// Every problem of the settings, found without the network.
    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = Vec::new();
        if let Err(why) = super::client::check_url(&self.url) {
            problems.push(
                Problem::new(source, why)
                    .column(at("url"))
                    .expected("e.g. https://idp.example.org/scim/v2"),
            );
        }
        problems.extend(self.token_source().problems(name, source));
        problems.extend(self.timeouts.problems(name, source));
        for (key, value) in [
            ("request_tries", self.request_tries as usize),
            ("page_size", self.page_size),
            ("members_per_patch", self.members_per_patch),
        ] {
            if value == 0 {
                problems.push(
                    Problem::new(source, format!("{key} is 0"))
                        .column(at(key))
                        .expected("a number above 0"),
                );
            }
        }
        problems
    }
}

fn default_scim_request_tries() -> u32 {
    3
}
fn default_scim_page_size() -> usize {
    500
}
fn default_scim_members_per_patch() -> usize {
    500
}
