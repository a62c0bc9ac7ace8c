//! Secrets in memory, and the one rule for reading them from the
//! environment or a file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroize;

use crate::error::Problem;

/// A password, token or key on its way to a server: wiped from memory when
/// dropped, never printed (`Debug` says `<redacted>`). Serialises as itself,
/// for the one request body that must carry it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a target's secret comes from: `<key>_env` or `<key>_file`, exactly
/// one of them (`key` is e.g. `token` or `bind_password`).
pub struct SecretSource<'a> {
    pub key: &'static str,
    /// What it is, for messages: "API token", "bind password".
    pub what: &'static str,
    pub env: Option<&'a str>,
    pub file: Option<&'a Path>,
}

impl SecretSource<'_> {
    /// What is wrong with the settings alone (`check`, no environment read).
    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let column = format!("targets.{name}.{}_env", self.key);
        match (self.env, self.file) {
            (Some(_), None) | (None, Some(_)) => Vec::new(),
            (None, None) => vec![Problem::new(source, format!("no {} configured", self.what))
                .column(column)
                .expected(format!(
                    "`{0}_env: VARIABLE` or `{0}_file: PATH` (never the secret itself)",
                    self.key
                ))],
            (Some(_), Some(_)) => vec![Problem::new(
                source,
                format!("both {0}_env and {0}_file are set", self.key),
            )
            .column(column)
            .expected("one of them")],
        }
    }

    /// The secret. One rule for both sources: the first line, without
    /// surrounding whitespace, and not empty. `path` resolves a relative
    /// file name; `env` reads a variable. Errors name the key, never the value.
    pub fn read(
        &self,
        name: &str,
        path: impl Fn(&Path) -> PathBuf,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, String> {
        let (key, text) = match (self.env, self.file) {
            (Some(var), None) => match env(var) {
                Some(value) => (format!("{}_env: {var}", self.key), value),
                None => {
                    return Err(format!(
                        "target \"{name}\": {}_env: the environment variable {var} is not set",
                        self.key
                    ))
                }
            },
            (None, Some(file)) => {
                let file = path(file);
                match std::fs::read_to_string(&file) {
                    Ok(text) => (format!("{}_file: {}", self.key, file.display()), text),
                    Err(e) => {
                        return Err(format!(
                            "target \"{name}\": {}_file: cannot read {}: {e}",
                            self.key,
                            file.display()
                        ))
                    }
                }
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "target \"{name}\": {0}_env: give {0}_env or {0}_file, not both",
                    self.key
                ))
            }
            (None, None) => {
                return Err(format!(
                    "target \"{name}\": {}_env: the {} comes from an environment variable or a file; set one of them",
                    self.key, self.what
                ))
            }
        };
        let mut text = text;
        let value = text.lines().next().unwrap_or_default().trim().to_string();
        text.zeroize();
        if value.is_empty() {
            return Err(format!(
                "target \"{name}\": {key}: the {} is empty",
                self.what
            ));
        }
        Ok(Secret(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source<'a>(env: Option<&'a str>, file: Option<&'a Path>) -> SecretSource<'a> {
        SecretSource {
            key: "token",
            what: "token",
            env,
            file,
        }
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("s3cret")), "<redacted>");
        assert_eq!(
            serde_json::to_string(&Secret::new("s3cret")).unwrap(),
            "\"s3cret\""
        );
    }

    #[test]
    fn one_reading_rule_for_both_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  from-file \nsecond line\n").unwrap();
        let read = |s: &SecretSource| s.read("t", |p| p.to_path_buf(), |_| None);
        assert_eq!(
            read(&source(None, Some(&file))).unwrap().expose(),
            "from-file"
        );
        let from_env = source(Some("V"), None)
            .read("t", |p| p.to_path_buf(), |_| Some(" from-env\n".into()))
            .unwrap();
        assert_eq!(from_env.expose(), "from-env");
        let err = read(&source(Some("V"), None)).unwrap_err();
        assert!(err.contains("V is not set"), "{err}");
        std::fs::write(&file, "\n").unwrap();
        let err = read(&source(None, Some(&file))).unwrap_err();
        assert!(err.contains("is empty"), "{err}");
        assert!(read(&source(Some("V"), Some(&file)))
            .unwrap_err()
            .contains("not both"));
        assert_eq!(source(None, None).problems("t", "homebase.yaml").len(), 1);
        assert_eq!(source(Some("V"), Some(&file)).problems("t", "x").len(), 1);
        assert!(source(Some("V"), None).problems("t", "x").is_empty());
    }
}
