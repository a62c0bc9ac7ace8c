//! `check`: render templates against sample contexts, so a strict-mode error
//! (an undefined variable, a wrong filter) surfaces before anything is applied.

use serde_json::Value;

use super::{BundleContext, Templates};
use crate::error::{Problem, Problems};
use crate::profile::suggest::closest;

impl Templates {
    /// Render each named template (all of them when `names` is empty) against
    /// every sample context; each failure is a problem with the template file
    /// and line. Templates whose name starts with `_` are partials: only
    /// checked through the templates that include them, unless named.
    pub fn check(&self, names: &[String]) -> Problems {
        let mut problems = Problems::default();
        let names: Vec<String> = if names.is_empty() {
            self.names()
                .into_iter()
                .filter(|name| !name.starts_with('_'))
                .map(str::to_string)
                .collect()
        } else {
            names.to_vec()
        };
        let samples = BundleContext::samples();
        for name in &names {
            if !self.has(name) {
                let known: Vec<String> = self.names().iter().map(|n| format!("`{n}`")).collect();
                problems.push(
                    Problem::new("templates", format!("no template named `{name}`"))
                        .expected(format!("one of {}", known.join(", "))),
                );
                continue;
            }
            // The first sample that fails is enough: later ones would mostly
            // repeat the same error.
            for (label, context) in &samples {
                if let Err(err) = self.render(name, context) {
                    let mut problem = self.problem(&err);
                    let undefined = (err.kind() == minijinja::ErrorKind::UndefinedError)
                        .then(|| self.line_of(name, err.line()))
                        .flatten()
                        .and_then(|line| undefined_name(&line, context));
                    if let Some(said) = undefined {
                        // Inside a filter minijinja names the filter, not the variable.
                        problem.message = said;
                    }
                    problem.message = format!("{} (rendering {label})", problem.message);
                    problems.push(problem);
                    break;
                }
            }
        }
        problems
    }

    /// Line `line` (1-based) of template `name`'s source.
    fn line_of(&self, name: &str, line: Option<usize>) -> Option<String> {
        let template = self.env.get_template(name).ok()?;
        let text = template.source().lines().nth(line?.checked_sub(1)?)?;
        Some(text.to_string())
    }
}

/// The first dotted name on `line` (`person.famly_name`) that the context
/// does not have, said with the name it was probably meant to be.
fn undefined_name(line: &str, context: &BundleContext) -> Option<String> {
    let context = serde_json::to_value(context).ok()?;
    let words = line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
    for word in words.filter(|w| w.contains('.')) {
        let mut at = &context;
        let mut path = Vec::new();
        for key in word.split('.') {
            let Value::Object(fields) = at else {
                // Past a list or a value: not ours to judge.
                break;
            };
            if path.is_empty() && !fields.contains_key(key) {
                // A loop variable or a literal, not a name of the context.
                break;
            }
            match fields.get(key) {
                Some(value) => {
                    path.push(key);
                    at = value;
                }
                None => {
                    let here = path.join(".");
                    let near = closest(key, fields.keys().map(String::as_str));
                    let hint =
                        near.map_or(String::new(), |n| format!("; did you mean `{here}.{n}`?"));
                    return Some(format!("`{here}.{key}` is undefined{hint}"));
                }
            }
        }
    }
    None
}
