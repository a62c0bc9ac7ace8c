//! Error classes and the exit codes they map to, decided in one place.
//!
//! Library modules return typed errors; commands wrap them with `anyhow` context.
//! `main` looks for a [`Failure`] in the chain to pick the exit code.

use std::fmt;

/// Exit codes: a stable contract (docs/contract.md, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success = 0,
    Failed = 1,
    BadInput = 2,
    Partial = 3,
    Changes = 4,
}

/// One problem found in an input file, printed as
/// `FILE:LINE: column "NAME": what is wrong (expected ...)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    /// A column name for tabular files, a key path for YAML.
    pub column: Option<String>,
    /// `column` is a key path (`vpn.target`), said as such.
    pub is_key: bool,
    pub message: String,
    pub expected: Option<String>,
}

impl Problem {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            line: None,
            column: None,
            is_key: false,
            message: message.into(),
            expected: None,
        }
    }

    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    pub fn column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    /// The key path in a YAML file (`vpn.target`): files of keys have no columns.
    pub fn key(mut self, path: impl Into<String>) -> Self {
        self.column = Some(path.into());
        self.is_key = true;
        self
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        match (&self.column, self.is_key) {
            (Some(key), true) => write!(f, "key \"{key}\": ")?,
            (Some(column), false) => write!(f, "column \"{column}\": ")?,
            (None, _) => {}
        }
        write!(f, "{}", self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, " (expected {expected})")?;
        }
        Ok(())
    }
}

/// Every problem of one validation pass. Non-empty by construction of its users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(())` when nothing was found, else the problems as an error.
    pub fn into_result(mut self) -> Result<(), Problems> {
        if self.0.is_empty() {
            Ok(())
        } else {
            self.0.sort();
            self.0.dedup();
            Err(self)
        }
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Errors that decide the exit code. Anything else is exit 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input: nothing was changed.
    #[error("{count} problem(s) in the input; nothing was changed", count = .0.len())]
    Invalid(Problems),
    /// Bad usage or configuration, with an optional hint.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// Some actions failed after retries, or persons were not started
    /// because the run was interrupted; the rest are done and journaled.
    #[error("{}; the rest are done and journaled — re-running resumes", partial(*.failed, *.not_started))]
    Partial { failed: usize, not_started: usize },
    /// `plan --detailed-exitcode` found changes (not an error to print).
    #[error("the plan has changes")]
    Changes,
}

/// `3 action(s) failed`, `356 person(s) not started (interrupted)`, or both.
fn partial(failed: usize, not_started: usize) -> String {
    let mut parts = Vec::new();
    if failed > 0 || not_started == 0 {
        parts.push(format!("{failed} action(s) failed"));
    }
    if not_started > 0 {
        parts.push(format!("{not_started} person(s) not started (interrupted)"));
    }
    parts.join(", ")
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage {
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Invalid(_) | Failure::Usage { .. } => ExitCode::BadInput,
            Failure::Partial { .. } => ExitCode::Partial,
            Failure::Changes => ExitCode::Changes,
        }
    }
}

impl From<Problems> for Failure {
    fn from(problems: Problems) -> Self {
        Failure::Invalid(problems)
    }
}
