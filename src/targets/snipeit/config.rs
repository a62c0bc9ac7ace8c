//! `kind: snipeit` in `homebase.yaml`, checked without the network.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::Problem;

/// A Snipe-IT instance as an inventory target. The API token is read from
/// `token_env` or `token_file` when homebase connects; it is never written
/// anywhere and never part of a message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnipeitConfig {
    /// Base URL of Snipe-IT, e.g. `https://assets.example.org` (the API lies
    /// below `/api/v1`). `http://` only for 127.0.0.1, `::1` or localhost.
    pub url: String,
    /// Environment variable that holds the API token (a personal access token).
    #[serde(default)]
    pub token_env: Option<String>,
    /// File that holds the API token (relative to this file); its first line counts.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The API user's throttle: Snipe-IT's `API_THROTTLE_PER_MINUTE`, 120 by
    /// default. homebase paces every request of the target to just under it.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// PEM file of the CA certificates to trust instead of the system's
    /// (relative to this file). TLS is always verified.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub timeouts: crate::targets::common::Timeouts,
    /// The status label of assets that may be handed out, e.g. `Ready to Deploy`;
    /// absent: every asset whose status is deployable. It must be a
    /// deployable label (checked when homebase connects).
    #[serde(default)]
    pub status: Option<String>,
    /// The status label an asset gets when it is checked out (a deployable
    /// one); absent: the asset keeps its status.
    #[serde(default)]
    pub checkout_status: Option<String>,
    /// Device kinds as profiles name them (`notebook`, `monitor` …) → which
    /// Snipe-IT assets are of that kind, by category and/or model name.
    pub kinds: BTreeMap<String, SnipeitKind>,
    #[serde(flatten)]
    pub limits: Limits,
}

/// Which assets are of one device kind: by category, by model, or by model
/// within the category when both are given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnipeitKind {
    /// Category name(s), e.g. `Notebooks`.
    #[serde(default)]
    pub category: Names,
    /// Model name(s), e.g. `ThinkPad T14 Gen 5`.
    #[serde(default)]
    pub model: Names,
}

/// One name or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Many(Vec::new())
    }
}

impl Names {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Names::One(name) => std::slice::from_ref(name),
            Names::Many(names) => names,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl SnipeitConfig {
    pub fn token_source(&self) -> crate::targets::common::SecretSource<'_> {
        crate::targets::common::SecretSource {
            key: "token",
            what: "API token",
            env: self.token_env.as_deref(),
            file: self.token_file.as_deref(),
        }
    }

    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = Vec::new();
        match reqwest::Url::parse(&self.url) {
            Ok(url) if url.scheme() == "https" => {}
            Ok(url)
                if url.scheme() == "http"
                    && matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")) => {}
            Ok(url) if url.scheme() == "http" => problems.push(
                Problem::new(source, "plain http would send the API token in the clear")
                    .column(at("url"))
                    .expected("an https:// URL (http:// only for 127.0.0.1, ::1 or localhost)"),
            ),
            Ok(_) | Err(_) => problems.push(
                Problem::new(source, format!("\"{}\" is not a URL", self.url))
                    .column(at("url"))
                    .expected("e.g. https://assets.example.org"),
            ),
        }
        problems.extend(self.token_source().problems(name, source));
        if self.requests_per_minute == 0 {
            problems.push(
                Problem::new(source, "requests_per_minute is 0")
                    .column(at("requests_per_minute"))
                    .expected("Snipe-IT's API_THROTTLE_PER_MINUTE, 120 by default"),
            );
        }
        problems.extend(self.timeouts.problems(name, source));
        if self.kinds.is_empty() {
            problems.push(
                Problem::new(source, "no device kinds mapped to Snipe-IT assets")
                    .column(at("kinds"))
                    .expected("e.g. `kinds: {notebook: {category: Notebooks}}`"),
            );
        }
        for (kind, select) in &self.kinds {
            if select.category.is_empty() && select.model.is_empty() {
                problems.push(
                    Problem::new(source, format!("kind \"{kind}\" selects no assets"))
                        .column(at(&format!("kinds.{kind}")))
                        .expected("`category:` and/or `model:` names"),
                );
            }
        }
        problems
    }
}

fn default_requests_per_minute() -> u32 {
    120
}
