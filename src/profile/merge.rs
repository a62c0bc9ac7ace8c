//! `extends`: a profile starts from its parent's settings, merged deeply.
//!
//! The raw YAML is merged, not the deserialized structs, so that "not written"
//! and "written as the default" stay different: mappings merge key by key,
//! recursively; a list or scalar written in the child replaces the parent's
//! (to add a group, list the parent's groups too).
//!
//! `match`, `priority`, `abstract` and `description` are **not** inherited: they
//! say who a file is for and what it is, so they belong to the file itself. A
//! child of an abstract profile is concrete unless it says `abstract: true`,
//! and a child of a matching profile matches nobody until it has rules.

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};

use super::load::Parsed;
use super::locate::key_line;
use super::suggest::closest;
use crate::error::{Problem, Problems};

/// Keys that describe the file itself and never pass to children.
const OWN_KEYS: [&str; 5] = ["extends", "match", "priority", "abstract", "description"];

/// Merge `child` over `parent`: mappings key by key, anything else replaced.
pub fn merge(parent: Value, child: Value) -> Value {
    match (parent, child) {
        (Value::Mapping(mut parent), Value::Mapping(child)) => {
            for (key, value) in child {
                let merged = match parent.remove(&key) {
                    Some(old) => merge(old, value),
                    None => value,
                };
                parent.insert(key, merged);
            }
            Value::Mapping(parent)
        }
        (_, child) => child,
    }
}

/// Resolves `extends` chains of all parsed files, reporting unknown parents and
/// cycles once each.
pub struct Resolver<'a> {
    files: &'a BTreeMap<String, Parsed>,
    /// Names (lowercase) of files that exist but failed to parse: children of
    /// those fail quietly, the parent's own problem says why.
    broken: &'a [String],
    /// Lowercase name → resolved mapping, or `None` when it failed.
    done: BTreeMap<String, Option<Mapping>>,
    /// The chain being resolved, for cycle detection.
    stack: Vec<String>,
    /// Cycles already reported, by their members (sorted).
    cycles: Vec<Vec<String>>,
}

impl<'a> Resolver<'a> {
    /// `files` is keyed by lowercase name.
    pub fn new(files: &'a BTreeMap<String, Parsed>, broken: &'a [String]) -> Self {
        Resolver {
            files,
            broken,
            done: BTreeMap::new(),
            stack: Vec::new(),
            cycles: Vec::new(),
        }
    }

    /// The merged mapping of `key` (lowercase name), or `None` after reporting why not.
    pub fn resolve(&mut self, key: &str, problems: &mut Problems) -> Option<Mapping> {
        if let Some(done) = self.done.get(key) {
            return done.clone();
        }
        let files = self.files;
        let parsed = files.get(key)?;
        if let Some(start) = self.stack.iter().position(|k| k == key) {
            self.report_cycle(start, problems);
            return None;
        }
        let resolved = match &parsed.own.extends {
            None => Some(parsed.raw.clone()),
            Some(parent) => {
                self.stack.push(key.to_string());
                let merged = self.parent(parsed, parent, problems).map(|mut parent| {
                    for own in OWN_KEYS {
                        parent.remove(own);
                    }
                    match merge(Value::Mapping(parent), Value::Mapping(parsed.raw.clone())) {
                        Value::Mapping(merged) => merged,
                        _ => parsed.raw.clone(),
                    }
                });
                self.stack.pop();
                merged
            }
        };
        // Inside a cycle every member already failed; keep the first verdict.
        self.done
            .entry(key.to_string())
            .or_insert_with(|| resolved.clone());
        resolved
    }

    fn parent(&mut self, child: &Parsed, parent: &str, problems: &mut Problems) -> Option<Mapping> {
        let key = parent.to_lowercase();
        if self.files.contains_key(&key) {
            return self.resolve(&key, problems);
        }
        if self.broken.contains(&key) {
            return None;
        }
        // Suggest among every file, also those that failed to parse.
        let names = self
            .files
            .values()
            .map(|p| p.source.name.as_str())
            .chain(self.broken.iter().map(String::as_str));
        let hint = match closest(parent, names) {
            Some(name) => format!("; did you mean `{name}`?"),
            None => String::new(),
        };
        let known: Vec<String> = self
            .files
            .values()
            .map(|p| format!("`{}`", p.source.name))
            .collect();
        let mut problem = Problem::new(
            &child.source.file,
            format!("unknown profile `{parent}`{hint}"),
        )
        .key("extends")
        .expected(format!("one of {}", known.join(", ")));
        problem.line = key_line(&child.source.text, &["extends"]);
        problems.push(problem);
        None
    }

    /// Report `office -> base -> office` once, at the file that starts it, and
    /// mark every member as failed.
    fn report_cycle(&mut self, start: usize, problems: &mut Problems) {
        let members = self.stack[start..].to_vec();
        let mut sorted = members.clone();
        sorted.sort();
        for member in &members {
            self.done.insert(member.clone(), None);
        }
        if self.cycles.contains(&sorted) {
            return;
        }
        self.cycles.push(sorted);
        let name = |key: &String| {
            self.files
                .get(key)
                .map_or_else(|| key.clone(), |p| p.source.name.clone())
        };
        let mut chain: Vec<String> = members.iter().map(name).collect();
        chain.push(name(&members[0]));
        let Some(first) = self.files.get(&members[0]) else {
            return;
        };
        let mut problem = Problem::new(
            &first.source.file,
            format!("`extends` forms a cycle: {}", chain.join(" -> ")),
        )
        .key("extends")
        .expected("a chain of parents that ends in a profile without `extends`");
        problem.line = key_line(&first.source.text, &["extends"]);
        problems.push(problem);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).expect("test YAML")
    }

    #[test]
    fn maps_merge_deeply_lists_and_scalars_replace() {
        let parent = yaml("account:\n  groups: [staff, homeoffice]\n  expiry_days: 365\n  password:\n    length: 16\n    symbols: true\nvpn:\n  mtu: 1380\n");
        let child = yaml("account:\n  groups: [staff]\n  password:\n    length: 20\nvpn: {mtu: 1280}\ndevices: [{kind: notebook}]\n");
        let merged = merge(parent, child);
        let expected = yaml("account:\n  groups: [staff]\n  expiry_days: 365\n  password:\n    length: 20\n    symbols: true\nvpn:\n  mtu: 1280\ndevices: [{kind: notebook}]\n");
        assert_eq!(merged, expected);
    }

    #[test]
    fn null_in_the_child_replaces_too() {
        let merged = merge(yaml("vpn:\n  mtu: 1380\n"), yaml("vpn:\n  mtu: null\n"));
        assert_eq!(merged, yaml("vpn:\n  mtu: null\n"));
    }
}
