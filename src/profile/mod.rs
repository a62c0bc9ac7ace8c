//! Profiles: loading (shipped or from a folder), `extends` merging, `match` rules.
//!
//! Loading reports every problem of every profile file in one pass: YAML syntax,
//! unknown keys and wrong types (with line and key path), unknown parents and
//! `extends` cycles, and checks serde cannot make (see `validate`).

pub(crate) mod load;
mod locate;
mod matching;
mod merge;
mod model;
mod references;
mod shipped;
pub(crate) mod suggest;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

pub use load::Source as ProfileSource;
pub use model::*;
pub use shipped::SHIPPED;
pub use suggest::closest;

use crate::error::{Problem, Problems};
use crate::input::Person;

/// Every profile, resolved (`extends` merged), by name.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    pub profiles: BTreeMap<String, Profile>,
    /// The file each profile came from (name → file and text), for problems
    /// found later (`check_references`). Empty for sets built in code.
    pub sources: BTreeMap<String, ProfileSource>,
}

impl ProfileSet {
    /// The shipped profiles (`dir: None`) or those of a folder (`dir/*.yaml`,
    /// `dir/*.yml`; the name is the file stem, unique regardless of case).
    /// A folder replaces the shipped profiles, it does not add to them.
    pub fn load(dir: Option<&Path>) -> Result<ProfileSet, Problems> {
        let mut problems = Problems::default();
        let sources = match dir {
            None => load::shipped(),
            Some(dir) => load::read_dir(dir, &mut problems),
        };
        Self::from_sources(sources, problems)
    }

    /// Profile files given as `(name, text)`, read as [`ProfileSet::load`]
    /// reads a folder: the fuzz targets feed texts without files.
    #[doc(hidden)]
    pub fn from_texts(files: &[(String, String)]) -> Result<ProfileSet, Problems> {
        let sources = files
            .iter()
            .map(|(name, text)| load::Source {
                name: name.clone(),
                file: format!("{name}.yaml"),
                text: text.clone(),
            })
            .collect();
        Self::from_sources(sources, Problems::default())
    }

    fn from_sources(
        sources: Vec<load::Source>,
        mut problems: Problems,
    ) -> Result<ProfileSet, Problems> {
        // Keyed by lowercase name: `extends` and `profile` columns ignore case.
        let mut parsed: BTreeMap<String, load::Parsed> = BTreeMap::new();
        let mut broken: Vec<String> = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for source in sources {
            let key = source.name.to_lowercase();
            if let Some(other) = seen.get(&key) {
                problems.push(
                    Problem::new(
                        &source.file,
                        format!("the profile name `{}` is taken by {other}", source.name),
                    )
                    .expected("unique profile names (case is ignored)"),
                );
                continue;
            }
            seen.insert(key.clone(), source.file.clone());
            match load::parse(source, &mut problems) {
                Some(file) => {
                    validate::check_own(
                        &file.own,
                        &file.source.file,
                        &file.source.text,
                        &mut problems,
                    );
                    parsed.insert(key, file);
                }
                None => broken.push(key),
            }
        }

        let mut set = ProfileSet::default();
        let mut resolver = merge::Resolver::new(&parsed, &broken);
        for (key, file) in &parsed {
            let Some(merged) = resolver.resolve(key, &mut problems) else {
                continue;
            };
            let source = &file.source;
            match serde_norway::from_value::<Profile>(serde_norway::Value::Mapping(merged)) {
                Ok(mut profile) => {
                    profile.name = source.name.clone();
                    validate::check_resolved(&profile, &source.file, &source.text, &mut problems);
                    set.sources.insert(source.name.clone(), source.clone());
                    set.profiles.insert(source.name.clone(), profile);
                }
                Err(err) => {
                    let mut problem = load::yaml_problem(&source.file, &err);
                    problem.message = format!("after merging `extends`: {}", problem.message);
                    problems.push(problem);
                }
            }
        }
        problems.into_result().map(|()| set)
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// A profile by name, ignoring case (exact spelling first).
    pub fn find(&self, name: &str) -> Option<&Profile> {
        let name = name.trim();
        self.profiles.get(name).or_else(|| {
            let lower = name.to_lowercase();
            self.profiles
                .values()
                .find(|p| p.name.to_lowercase() == lower)
        })
    }

    /// Names of the profiles persons can be given (not abstract), sorted.
    pub fn assignable(&self) -> Vec<&str> {
        self.profiles
            .values()
            .filter(|p| !p.is_abstract)
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The profile for a person. Precedence (documented behaviour):
    ///
    /// 1. the person's `profile` column, if set: that profile (name compared
    ///    case-insensitively); an unknown or abstract name is an error, never a
    ///    silent fallback;
    /// 2. else, among the non-abstract profiles with a `match` rule that fits
    ///    the person, the one with the highest `priority`; on equal priority the
    ///    one whose name sorts first;
    /// 3. else `default` (the configuration's `default_profile`).
    ///
    /// A rule is `field: [values]`; the field is `department`, `location`, `id`,
    /// `email`, `manager`, `phone`, `given_name`, `family_name`, or any other
    /// staff column (header compared case-insensitively). Values compare
    /// case-insensitively and a trailing `*` matches by prefix. A rule fits when
    /// all its fields fit; a profile fits when any of its rules fits.
    ///
    /// `Err` says why no profile could be chosen, for a `Problem` at the person's line.
    pub fn choose(&self, person: &Person, default: &str) -> Result<&Profile, String> {
        if let Some(wanted) = person
            .profile
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            return self.assign(wanted, "profile");
        }
        let best = self
            .profiles
            .values()
            .filter(|p| !p.is_abstract && matching::any_rule_fits(&p.rules, person))
            .max_by(|a, b| {
                a.priority
                    .cmp(&b.priority)
                    .then_with(|| b.name.cmp(&a.name))
            });
        match best {
            Some(profile) => Ok(profile),
            None => self.assign(default, "default profile"),
        }
    }

    /// `Ok` when `default` names a profile persons can be given.
    pub fn check_default(&self, default: &str) -> Result<(), String> {
        self.assign(default, "default profile").map(|_| ())
    }

    /// The profile called `name`, if persons can be given it; `what` names the
    /// setting in the error ("profile", "default profile").
    fn assign(&self, name: &str, what: &str) -> Result<&Profile, String> {
        let known = self.assignable();
        let listed = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        match self.find(name) {
            Some(profile) if profile.is_abstract => Err(format!(
                "{what} `{name}` is abstract (only for `extends`); use one of: {listed}"
            )),
            Some(profile) => Ok(profile),
            None => {
                let hint = match closest(name, known.iter().copied()) {
                    Some(close) => format!("; did you mean `{close}`?"),
                    None => String::new(),
                };
                Err(format!(
                    "unknown {what} `{name}`{hint} (known profiles: {listed})"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
