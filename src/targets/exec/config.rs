//! `kind: exec` in `homebase.yaml`, checked without running anything.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::Problem;

/// A command run once per action, for a system homebase does not know (a
/// mail server, a file share, a phone system). It serves the directory
/// area: each person's account actions go to it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments, e.g. `[/usr/local/bin/mailbox, --site, hq]`.
    /// Not run through a shell. A relative program path is relative to this file.
    pub command: Vec<String>,
    /// Seconds one run may take; a run that takes longer is killed and retried.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Secrets the command receives in `secrets` on stdin. None by default;
    /// `password`: the person's first password, when one is issued.
    #[serde(default)]
    pub secrets: Vec<ExecSecret>,
    /// A command that prints the accounts the system holds, one JSON object
    /// per line (`{"username": "…", "staff_id": "…", "email": "…",
    /// "given_name": "…", "family_name": "…", "display_name": "…",
    /// "remote_id": "…"}`, all but `username` optional). With it, new
    /// persons never get a username the system has, an account carrying the
    /// staff id of a person not on our books refuses a second one, and
    /// `homebase adopt` takes the accounts over. Run with nothing on stdin.
    #[serde(default)]
    pub list_command: Option<Vec<String>>,
    /// The folder the command runs in (relative to this file); default: this file's folder.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    #[serde(flatten)]
    pub limits: Limits,
}

/// A secret the command may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecSecret {
    Password,
}

impl ExecConfig {
    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = Vec::new();
        if self.command.is_empty() || self.command.iter().any(String::is_empty) {
            problems.push(
                Problem::new(source, "no command, or an empty word in it")
                    .column(at("command"))
                    .expected("e.g. [/usr/local/bin/mailbox, --site, hq]"),
            );
        }
        if let Some(list) = &self.list_command {
            if list.is_empty() || list.iter().any(String::is_empty) {
                problems.push(
                    Problem::new(source, "no list command, or an empty word in it")
                        .column(at("list_command"))
                        .expected("e.g. [/usr/local/bin/mailbox, --list]"),
                );
            }
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

fn default_timeout() -> u64 {
    60
}
