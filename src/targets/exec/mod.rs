//! The `exec` target: a configured command run once per action, the action
//! as one JSON document on stdin. What it answers decides the outcome:
//!
//! - exit 0: done; a JSON line `{"remote_id": "…"}` on stdout records the
//!   system's id of the person;
//! - exit 75 (`EX_TEMPFAIL`), a timeout, or `{"status": "transient"}`: retried
//!   with the same backoff as every other target;
//! - any other exit, or `{"status": "permanent", "message": "…"}`: the
//!   person's action fails with that message (or the last line of stderr).
//!
//! Its effect is recorded in the state store like the embedded directory's,
//! so a re-run (also after a crash half-way) sends only what is not done.
//! Secrets reach the command only when the configuration names them.

mod config;
mod list;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub use self::config::{ExecConfig, ExecSecret};

use crate::plan::Resource;
use crate::settings::Settings;
use crate::targets::common::Trace;
use crate::targets::{ActionContext, TargetError};

/// The exit code that says "try again later" (sysexits.h).
const EX_TEMPFAIL: i32 = 75;

pub struct ExecTarget {
    name: String,
    config: ExecConfig,
    program: PathBuf,
    /// `list_command`'s program (empty without one).
    list_program: PathBuf,
    working_dir: PathBuf,
    trace: Trace,
}

/// A command's program: a bare name is looked up in PATH; a path is
/// relative to the config file.
fn program_of(command: &[String], settings: &Settings) -> PathBuf {
    let first = command.first().cloned().unwrap_or_default();
    if first.contains('/') {
        settings.path(std::path::Path::new(&first))
    } else {
        PathBuf::from(first)
    }
}

/// What the command may say on its last line of stdout.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    remote_id: Option<String>,
}

impl ExecTarget {
    /// Resolve the program; nothing runs until an action.
    pub fn connect(name: &str, config: &ExecConfig, settings: &Settings) -> ExecTarget {
        let program = program_of(&config.command, settings);
        let working_dir = match &config.working_dir {
            Some(dir) => settings.path(dir),
            None => settings.path(std::path::Path::new(".")),
        };
        ExecTarget {
            name: name.to_string(),
            config: config.clone(),
            program,
            list_program: config
                .list_command
                .as_deref()
                .map(|c| program_of(c, settings))
                .unwrap_or_default(),
            working_dir,
            trace: Trace::new(name, &settings.output),
        }
    }

    /// With a `list_command`: what the system holds, for the plan.
    pub async fn read(&self, observed: &mut crate::plan::Observed) -> anyhow::Result<()> {
        if let Some(listed) = self.list().await? {
            list::observe(&self.name, &listed, observed);
        }
        Ok(())
    }

    /// With a `list_command`: the accounts `homebase adopt` can take over,
    /// and what it ran to find them.
    pub async fn existing_accounts(
        &self,
    ) -> anyhow::Result<Option<(String, Vec<crate::targets::ExistingAccount>)>> {
        let Some(command) = &self.config.list_command else {
            return Ok(None);
        };
        let listed = self.list().await?.unwrap_or_default();
        let shown = std::iter::once(self.list_program.display().to_string())
            .chain(command.iter().skip(1).cloned())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Some((shown, list::existing(listed))))
    }

    async fn list(&self) -> anyhow::Result<Option<Vec<list::Listed>>> {
        let Some(command) = &self.config.list_command else {
            return Ok(None);
        };
        let started = self.trace.start();
        let listed = list::run(
            &self.list_program,
            &command[1..],
            &self.working_dir,
            Duration::from_secs(self.config.timeout_seconds),
        )
        .await
        .map_err(|e| e.context(format!("target \"{}\"", self.name)));
        if self.trace.is_on() {
            let answer = match &listed {
                Ok(found) => format!("{} account(s)", found.len()),
                Err(err) => format!("{err:#}"),
            };
            self.trace.done(
                format!("{} (list)", self.list_program.display()),
                answer,
                started,
            );
        }
        listed.map(Some)
    }

    /// The action as the command reads it.
    fn document(&self, ctx: &ActionContext<'_>) -> serde_json::Value {
        let (resource, body) = match &ctx.action.resource {
            Resource::Account(account) => ("account", json!(account)),
            Resource::VpnPeer(peer) => ("vpn_peer", json!(peer)),
            Resource::Device(device) => ("device", json!(device)),
            Resource::License(license) => ("license", json!(license)),
            Resource::Bundle(bundle) => ("bundle", json!(bundle)),
        };
        let mut secrets = serde_json::Map::new();
        for secret in &self.config.secrets {
            match secret {
                ExecSecret::Password => {
                    if let Some(password) = &ctx.secrets.password {
                        secrets.insert("password".into(), json!(password));
                    }
                }
            }
        }
        json!({
            "target": self.name,
            "op": ctx.action.op.name(),
            "resource": resource,
            resource: body,
            "changes": ctx.action.changes,
            "remote_id": ctx.action.remote_id,
            "person_id": ctx.person_id,
            "username": ctx.username,
            "person": ctx.person,
            "secrets": secrets,
        })
    }

    /// Run the command for one action.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let started = self.trace.start();
        let result = self.run(ctx).await;
        if self.trace.is_on() {
            let answer = match &result {
                Ok(Some(id)) => format!("ok, remote id {id}"),
                Ok(None) => "ok".to_string(),
                Err(err) => err.to_string(),
            };
            let request = format!(
                "{} ({} {} of {})",
                self.program.display(),
                ctx.action.op.name(),
                crate::state::ResourceKind::from(&ctx.action.resource).name(),
                ctx.person_id
            );
            self.trace.done(request, answer, started);
        }
        result
    }

    async fn run(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let mut input = self.document(ctx).to_string().into_bytes();
        input.push(b'\n');
        let mut child = Command::new(&self.program)
            .args(self.config.command.iter().skip(1))
            .current_dir(&self.working_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                TargetError::permanent(format!("cannot run {}: {e}", self.program.display()))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input is its own business.
            let _ = stdin.write_all(&input).await;
        }
        // The document may hold a secret: gone from memory once it is sent.
        zeroize::Zeroize::zeroize(&mut input);
        let timeout = Duration::from_secs(self.config.timeout_seconds);
        let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => return Err(TargetError::transient(format!("command failed: {e}"))),
            Err(_) => {
                return Err(TargetError::transient(format!(
                    "command took longer than {} s",
                    self.config.timeout_seconds
                )))
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let answer: Answer = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = || {
            answer.message.clone().unwrap_or_else(|| {
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
                match (last, output.status.code()) {
                    (Some(line), _) => line.trim().to_string(),
                    (None, Some(code)) => format!("the command exited with {code}"),
                    (None, None) => "the command was killed by a signal".to_string(),
                }
            })
        };
        match (answer.status.as_deref(), output.status.code()) {
            (Some("transient"), _) | (None, Some(EX_TEMPFAIL)) => {
                Err(TargetError::transient(message()))
            }
            (Some("permanent"), _) => Err(TargetError::permanent(message())),
            (_, Some(0)) => Ok(answer.remote_id),
            _ => Err(TargetError::permanent(message())),
        }
    }
}
