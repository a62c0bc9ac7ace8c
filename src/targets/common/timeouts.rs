//! How long a target waits: one name and one unit (whole seconds) for every
//! kind that talks to a server.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Problem;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Timeouts {
    /// Seconds one request (or directory operation) may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Seconds to wait for a connection (TCP, TLS and, for LDAP, the bind).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            timeout_seconds: default_timeout(),
            connect_timeout_seconds: default_connect_timeout(),
        }
    }
}

impl Timeouts {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_seconds)
    }

    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        [
            ("timeout_seconds", self.timeout_seconds),
            ("connect_timeout_seconds", self.connect_timeout_seconds),
        ]
        .into_iter()
        .filter_map(|(key, seconds)| zero_timeout(name, key, seconds, source))
        .collect()
    }
}

/// A timeout of 0 seconds would fail every request: refused at `check`, for
/// every kind that has a timeout setting of its own.
pub fn zero_timeout(name: &str, key: &str, seconds: u64, source: &str) -> Option<Problem> {
    (seconds == 0).then(|| {
        Problem::new(source, "a timeout of 0 seconds")
            .column(format!("targets.{name}.{key}"))
            .expected("a number of seconds above 0")
    })
}

fn default_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    10
}
