//! `-vv`: one line on stderr per request a target sends and what it
//! answered, with the time it took — what an admin reads to see which system
//! is slow or refuses. Only what identifies a request is printed (method and
//! path, an LDAP operation and DN, a command's name and arguments); bodies,
//! attribute values and standard input never are, so no secret can reach it.

use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::output::Output;

/// Where a target's request lines go; cheap to clone into its clients.
#[derive(Debug, Clone)]
pub struct Trace {
    target: Option<Arc<str>>,
}

impl Trace {
    /// Lines for target `name` when the run is `-vv` (and not `-q`).
    pub fn new(name: &str, output: &Output) -> Trace {
        Trace {
            target: (output.verbose >= 2 && !output.quiet).then(|| Arc::from(name)),
        }
    }

    /// No lines (tests, and kinds built without a run's output settings).
    pub fn off() -> Trace {
        Trace { target: None }
    }

    pub fn is_on(&self) -> bool {
        self.target.is_some()
    }

    /// Start timing a request; `done` prints its line.
    pub fn start(&self) -> Instant {
        Instant::now()
    }

    /// `target "wg0": wg set wg0 peer … → ok in 3.1 ms`.
    pub fn done(&self, request: impl Display, answer: impl Display, started: Instant) {
        if let Some(target) = &self.target {
            eprintln!("{}", line(target, &request, &answer, started.elapsed()));
        }
    }
}

fn line(target: &str, request: &dyn Display, answer: &dyn Display, took: Duration) -> String {
    format!(
        "target \"{target}\": {request} → {answer} in {:.1} ms",
        took.as_secs_f64() * 1000.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_target_request_answer_and_time() {
        assert_eq!(
            line(
                "scim",
                &"POST /Users",
                &"201 Created",
                Duration::from_micros(12_345)
            ),
            "target \"scim\": POST /Users → 201 Created in 12.3 ms"
        );
    }

    #[test]
    fn only_a_doubly_verbose_run_traces() {
        let mut output = Output {
            verbose: 1,
            quiet: false,
            bars: false,
            color: false,
            stdout_color: false,
            assume_yes: false,
            can_ask: false,
        };
        assert!(!Trace::new("t", &output).is_on());
        output.verbose = 2;
        assert!(Trace::new("t", &output).is_on());
        output.quiet = true;
        assert!(!Trace::new("t", &output).is_on());
    }
}
