//! Reading profile files and turning serde's errors into problems with lines.

use std::fs;
use std::path::Path;

use serde_norway::{Mapping, Value};

use super::Profile;
use super::SHIPPED;
use crate::error::{Problem, Problems};

/// One profile file as read: its name (the file stem), where it came from, its text.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// The file as shown in problems.
    pub file: String,
    pub text: String,
}

/// A profile file that parsed: its raw mapping (for merging) and the profile as
/// written in the file alone (for its own settings: `extends`, `match`, …).
#[derive(Debug, Clone)]
pub struct Parsed {
    pub source: Source,
    pub raw: Mapping,
    pub own: Profile,
}

/// The shipped profiles, shown as `profiles/NAME.yaml`.
pub fn shipped() -> Vec<Source> {
    SHIPPED
        .iter()
        .map(|(name, text)| Source {
            name: (*name).to_string(),
            file: format!("profiles/{name}.yaml"),
            text: (*text).to_string(),
        })
        .collect()
}

/// Every `*.yaml` / `*.yml` file of `dir`, sorted by name. Unreadable files are
/// problems; a folder without profiles is one too.
pub fn read_dir(dir: &Path, problems: &mut Problems) -> Vec<Source> {
    let folder = dir.display().to_string();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            problems.push(
                Problem::new(folder, format!("cannot read the profile folder: {err}"))
                    .expected("a folder of profile files (NAME.yaml)"),
            );
            return Vec::new();
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .filter(|path| {
            path.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| {
                    ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml")
                })
        })
        .collect();
    paths.sort();

    let mut sources = Vec::new();
    for path in paths {
        let file = path.display().to_string();
        let Some(name) = path.file_stem().and_then(|stem| stem.to_str()) else {
            problems.push(Problem::new(file, "the file name is not valid UTF-8"));
            continue;
        };
        match fs::read_to_string(&path) {
            Ok(text) => sources.push(Source {
                name: name.to_string(),
                file,
                text,
            }),
            Err(err) => problems.push(Problem::new(
                file,
                format!("cannot read the profile: {err}"),
            )),
        }
    }
    if sources.is_empty() && problems.is_empty() {
        problems.push(
            Problem::new(folder, "no profile files in this folder")
                .expected("at least one NAME.yaml; `homebase init` writes the shipped ones"),
        );
    }
    sources
}

/// Parse one file twice: as a raw mapping for merging, and as a [`Profile`] on
/// its own, which checks field names and types with line numbers. Every key of
/// a profile has a default, so a child that sets only a few is valid alone.
pub fn parse(source: Source, problems: &mut Problems) -> Option<Parsed> {
    let raw = match serde_norway::from_str::<Value>(&source.text) {
        Ok(Value::Mapping(raw)) => raw,
        Ok(Value::Null) => {
            problems.push(
                Problem::new(&source.file, "the profile is empty")
                    .expected("a mapping with `extends`, `account`, `vpn`, `devices`, …"),
            );
            return None;
        }
        Ok(_) => {
            problems.push(
                Problem::new(&source.file, "the profile is not a mapping").at_line(1).expected(
                    "keys such as `extends`, `match`, `account`, `vpn`, `devices`, `licenses`, `artifacts`",
                ),
            );
            return None;
        }
        Err(err) => {
            problems.push(yaml_problem(&source.file, &err));
            return None;
        }
    };
    match serde_norway::from_str::<Profile>(&source.text) {
        Ok(own) => Some(Parsed { source, raw, own }),
        Err(err) => {
            problems.push(yaml_problem(&source.file, &err));
            None
        }
    }
}

/// A serde_norway error as a problem: line from its location, the key path
/// (`vpn.pool`) as the key, and serde's `expected …` as the expectation.
pub fn yaml_problem(file: &str, err: &serde_norway::Error) -> Problem {
    let mut text = err.to_string();
    let mut line = None;
    if let Some(location) = err.location() {
        let suffix = format!(" at line {} column {}", location.line(), location.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_string();
        }
        line = Some(location.line());
    }
    let (path, message) = match text.split_once(": ") {
        Some((path, message)) if is_key_path(path) => (Some(path.to_string()), message.to_string()),
        _ => (None, text),
    };
    let (message, expected) = match message.split_once(", expected ") {
        Some((message, expected)) => (message.to_string(), Some(expected.to_string())),
        None => (message, None),
    };
    let mut problem = Problem::new(file, message);
    problem.line = line;
    problem.is_key = path.is_some();
    problem.column = path;
    problem.expected = expected;
    problem
}

/// serde_norway prefixes errors inside the document with the key path, such as
/// `vpn.pool` or `devices[1].kind`; messages themselves contain spaces.
fn is_key_path(text: &str) -> bool {
    !text.is_empty() && !text.contains([' ', '`', '"'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(text: &str) -> Problems {
        let mut problems = Problems::default();
        let source = Source {
            name: "x".into(),
            file: "profiles/x.yaml".into(),
            text: text.into(),
        };
        assert!(parse(source, &mut problems).is_none());
        problems
    }

    #[test]
    fn unknown_field_names_field_line_and_allowed() {
        let problems = problems_of("vpn:\n  kind: wireguard\n  pol: 10.0.0.0/24\n");
        let problem = &problems.0[0];
        assert_eq!(problem.line, Some(3));
        assert_eq!(problem.column.as_deref(), Some("vpn"));
        assert_eq!(problem.message, "unknown field `pol`");
        let expected = problem.expected.as_deref().unwrap_or_default();
        assert!(expected.contains("`pool`"), "{expected}");
        assert_eq!(
            problem.to_string(),
            format!("profiles/x.yaml:3: key \"vpn\": unknown field `pol` (expected {expected})")
        );
    }

    #[test]
    fn wrong_types_name_the_key_path() {
        let problems = problems_of("vpn:\n  pool: not-a-network\n");
        let problem = &problems.0[0];
        assert_eq!(problem.line, Some(2));
        assert_eq!(problem.column.as_deref(), Some("vpn.pool"));

        let problems = problems_of("devices:\n  - kind: notebook\n  - count: 2\n");
        assert_eq!(problems.0[0].line, Some(3));
        assert!(
            problems.0[0].message.contains("missing field `kind`"),
            "{}",
            problems.0[0]
        );
    }

    #[test]
    fn syntax_errors_and_odd_documents() {
        let problems = problems_of("account:\n  groups: [a, b\n");
        assert!(problems.0[0].line.is_some(), "{}", problems.0[0]);
        assert!(problems_of("# only a comment\n").0[0]
            .message
            .contains("empty"));
        assert!(problems_of("- a\n- b\n").0[0]
            .message
            .contains("not a mapping"));
        let problems = problems_of("priority: 1\npriority: 2\n");
        assert!(
            problems.0[0].message.contains("duplicate"),
            "{}",
            problems.0[0]
        );
    }
}
