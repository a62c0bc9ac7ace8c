//! `check`: render templates against sample contexts, so a strict-mode error
//! (an undefined variable, a wrong filter) surfaces before anything is applied.

use super::{BundleContext, Templates};
use crate::error::{Problem, Problems};

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
                    problem.message = format!("{} (rendering {label})", problem.message);
                    problems.push(problem);
                    break;
                }
            }
        }
        problems
    }
}
