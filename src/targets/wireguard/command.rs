//! Running `wg` (and the few file commands) on the gateway: locally, or
//! behind the configured prefix (`ssh gw sudo`, `ip netns exec ns`).
//!
//! Keys never travel as arguments: private and preshared keys go through
//! stdin. Arguments are checked plain words (interface, path, public keys,
//! addresses), so the line an error shows holds no secret, and ssh's joining
//! of arguments into one shell line changes nothing.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::targets::common::Trace;
use crate::targets::TargetError;

/// Why a command failed; the message names the command and what it said.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    #[error("`{command}`: `{program}` was not found (installed, and on PATH?)")]
    NotFound { command: String, program: String },
    #[error("`{command}` could not be started: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
        /// ssh's own failure (exit 255): the gateway was not reached.
        unreachable: bool,
    },
    #[error("`{command}` did not finish within {seconds} s")]
    Timeout { command: String, seconds: u64 },
}

impl CommandError {
    /// A gateway that did not answer may answer a retry; `wg` refusing will not.
    pub fn into_target_error(self) -> TargetError {
        match &self {
            CommandError::Timeout { .. }
            | CommandError::Failed {
                unreachable: true, ..
            } => TargetError::transient(self.to_string()),
            _ => TargetError::permanent(self.to_string()),
        }
    }

    /// `cat` of a file that is not there.
    pub fn is_missing_file(&self) -> bool {
        matches!(self, CommandError::Failed { stderr, .. } if stderr.contains("No such file"))
    }
}

/// How commands reach the gateway.
#[derive(Debug, Clone)]
pub struct Runner {
    prefix: Vec<String>,
    timeout: Duration,
    trace: Trace,
}

impl Runner {
    pub fn new(prefix: &[String], timeout: Duration) -> Runner {
        Runner {
            prefix: prefix.to_vec(),
            timeout,
            trace: Trace::off(),
        }
    }

    /// Print a `-vv` line per command (its arguments, never its input).
    pub fn with_trace(mut self, trace: Trace) -> Runner {
        self.trace = trace;
        self
    }

    /// The full command line, as shown in messages.
    pub fn describe(&self, args: &[&str]) -> String {
        self.prefix
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run `args` behind the prefix, feeding `stdin`; stdout on success.
    pub async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, CommandError> {
        let started = self.trace.start();
        let result = self.execute(args, stdin).await;
        if self.trace.is_on() {
            let answer = match &result {
                Ok(_) => "ok".to_string(),
                Err(err) => err.to_string(),
            };
            self.trace.done(self.describe(args), answer, started);
        }
        result
    }

    async fn execute(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, CommandError> {
        let command = self.describe(args);
        let mut words = self
            .prefix
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied());
        let program = words.next().unwrap_or_default().to_string();
        let mut child = Command::new(&program)
            .args(words)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => CommandError::NotFound {
                    command: command.clone(),
                    program: program.clone(),
                },
                _ => CommandError::Spawn {
                    command: command.clone(),
                    reason: e.to_string(),
                },
            })?;
        let pipe = child.stdin.take();
        let feed = async move {
            if let (Some(input), Some(mut pipe)) = (stdin, pipe) {
                // A command that exits early closes its end: its status says why.
                let _ = pipe.write_all(input).await;
            }
        };
        // Feed and read at once: neither side waits for the other forever.
        let finished = tokio::time::timeout(self.timeout, async {
            let ((), output) = tokio::join!(feed, child.wait_with_output());
            output
        })
        .await;
        let output = match finished {
            Ok(Ok(output)) => output,
            Ok(Err(e)) => {
                return Err(CommandError::Spawn {
                    command,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(CommandError::Timeout {
                    command,
                    seconds: self.timeout.as_secs(),
                })
            }
        };
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let unreachable = program == "ssh" && output.status.code() == Some(255);
        Err(CommandError::Failed {
            command,
            status: output
                .status
                .code()
                .map_or_else(|| "killed".to_string(), |c| format!("exit {c}")),
            stderr: scrub(&String::from_utf8_lossy(&output.stderr)),
            unreachable,
        })
    }
}

/// The error output as one short line, with every run of 40 or more base64
/// characters blanked: `wg` quotes the lines it rejects, and a rejected line
/// may hold a preshared key.
pub fn scrub(stderr: &str) -> String {
    let line = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(line.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 40 {
            out.push_str("<key>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in line.chars() {
        if c.is_ascii_alphanumeric() || "+/=".contains(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    if out.chars().count() > 600 {
        out = out.chars().take(600).collect::<String>() + " …";
    }
    if out.is_empty() {
        "no error output".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(prefix: &[&str]) -> Runner {
        Runner::new(
            &prefix.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            Duration::from_secs(5),
        )
    }

    #[tokio::test]
    async fn runs_behind_the_prefix_and_feeds_stdin() {
        let out = runner(&["sh", "-c", "cat; echo \"$0\""])
            .run(&["word"], Some(b"from stdin\n"))
            .await
            .unwrap();
        assert_eq!(out, "from stdin\nword\n");
    }

    #[tokio::test]
    async fn a_missing_program_names_the_command() {
        let err = runner(&["hbwg-no-such-program", "-x"])
            .run(&["wg", "show"], None)
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::NotFound { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("`hbwg-no-such-program -x wg show`"),
            "{message}"
        );
        assert!(!err.into_target_error().is_transient());
    }

    #[tokio::test]
    async fn a_failure_carries_status_and_scrubbed_stderr() {
        let key = crate::apply::secrets::preshared_key();
        // `wg` quotes a rejected line from its input (here: stdin) on stderr.
        let input = format!("PresharedKey={key}\n");
        let err = runner(&["sh", "-c", "sed 's/^/Line unrecognized: `/' >&2; exit 1"])
            .run(&[], Some(input.as_bytes()))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("exit 1"), "{message}");
        assert!(message.contains("Line unrecognized"), "{message}");
        assert!(!message.contains(&key), "a key in the message: {message}");
    }

    #[tokio::test]
    async fn a_hanging_command_times_out_as_transient() {
        let err = Runner::new(&["sleep".to_string()], Duration::from_millis(100))
            .run(&["5"], None)
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Timeout { .. }), "{err}");
        assert!(err.into_target_error().is_transient());
    }
}
