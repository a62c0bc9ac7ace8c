//! What is wrong with a `homebase.yaml` that does not parse, said at the
//! offending key.
//!
//! Targets are told apart by their `kind:`, so serde buffers each target
//! before it knows the type, and an error inside one (an unknown or missing
//! key) comes out positioned at the `targets:` mapping with the path
//! `targets`. Here each target is parsed again on its own, and the key its
//! error names is looked up in the text: the line of the key and its full
//! path (`targets.wg0.adress_pool`), with a did-you-mean for typos. Every
//! broken target is reported, not only the first.

use serde_norway::Value;

use super::line_of;
use crate::error::{Problem, Problems};
use crate::profile::suggest::closest;
use crate::targets::TargetConfig;

/// The problems behind `err`, the error of parsing `text` (from `file`).
pub fn config_problems(file: &str, text: &str, err: &serde_norway::Error) -> Problems {
    let targets = target_problems(file, text);
    if targets.is_empty() {
        Problems(vec![crate::profile::load::yaml_problem(file, err)])
    } else {
        targets
    }
}

/// The problems of every target that does not parse on its own.
fn target_problems(file: &str, text: &str) -> Problems {
    let mut problems = Problems::default();
    let Ok(Value::Mapping(root)) = serde_norway::from_str::<Value>(text) else {
        return problems;
    };
    let Some(Value::Mapping(targets)) = root.get("targets") else {
        return problems;
    };
    for (name, body) in targets {
        let Some(name) = name.as_str() else { continue };
        if let Err(err) = serde_norway::from_value::<TargetConfig>(body.clone()) {
            let target = Target { file, text, name };
            problems.extend(target.problems(body, &err.to_string()));
        }
    }
    problems
}

/// One target of the file, for positioning its problems.
struct Target<'a> {
    file: &'a str,
    text: &'a str,
    name: &'a str,
}

impl Target<'_> {
    /// A problem at `key` of this target (the target's own line without one).
    fn at(&self, key: Option<&str>, message: impl Into<String>) -> Problem {
        let mut path = vec!["targets", self.name];
        path.extend(key);
        let problem = Problem::new(self.file, message).key(path.join("."));
        match line_of(self.text, &path) {
            Some(line) => problem.at_line(line),
            None => problem,
        }
    }

    /// Every key this target's kind does not know, then serde's complaint
    /// (`message`) unless it is one of those.
    fn problems(&self, body: &Value, message: &str) -> Problems {
        let mut problems = Problems::default();
        let written: Vec<&str> = match body {
            Value::Mapping(map) => map.keys().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let kind = body.get("kind").and_then(Value::as_str);
        let known = kind.and_then(known_keys);
        let unknown: Vec<&str> = match &known {
            Some(known) => written
                .iter()
                .copied()
                .filter(|key| !known.iter().any(|k| k == key))
                .collect(),
            None => Vec::new(),
        };
        if let Some(known) = &known {
            for key in &unknown {
                let message = match closest(key, known.iter().map(String::as_str)) {
                    Some(near) => format!("unknown key; did you mean `{near}`?"),
                    None => "unknown key".to_string(),
                };
                let keys = known.iter().filter(|k| *k != "kind");
                let expected = keys.map(String::as_str).collect::<Vec<_>>().join(", ");
                problems.push(
                    self.at(Some(key), message)
                        .expected(format!("one of {expected}")),
                );
            }
        }

        let (head, expected) = match message.split_once(", expected ") {
            Some((head, expected)) => (head, Some(expected)),
            None => (message, None),
        };
        if head.starts_with("unknown field ") && !problems.is_empty() {
            return problems;
        }
        let problem = if let Some(key) = quoted_after(head, "missing field ") {
            let misspelt = unknown.iter().find(|w| closest(w, [key]).is_some());
            if misspelt.is_some() && known.is_some() {
                // Already said: "unknown key; did you mean `{key}`?".
                return problems;
            }
            let message = match misspelt {
                Some(w) => format!("missing key `{key}`; `{w}` is written: did you mean `{key}`?"),
                None => format!("missing key `{key}`"),
            };
            self.at(None, message)
        } else if let Some(value) = quoted_after(head, "unknown variant ") {
            problems.push(self.unknown_value(body, value, expected));
            return problems;
        } else if let Some(key) = quoted_after(head, "unknown field ") {
            self.at(Some(key), "unknown key")
        } else {
            self.at(None, head)
        };
        problems.push(match expected {
            Some(expected) => problem.expected(expected),
            None => problem,
        });
        problems
    }
}

impl Target<'_> {
    /// A value serde did not know (`kind: ldpa`, `flavour: 389-ds`), said at
    /// the key that holds it, with the closest of the values it takes.
    fn unknown_value(&self, body: &Value, value: &str, expected: Option<&str>) -> Problem {
        let key = match body {
            Value::Mapping(map) => map
                .iter()
                .filter(|(_, v)| v.as_str() == Some(value))
                .filter_map(|(k, _)| k.as_str())
                .min_by_key(|k| *k != "kind"),
            _ => None,
        }
        .unwrap_or("kind");
        let names = expected.map(quoted).unwrap_or_default();
        let mut message = format!("unknown {}", if key == "kind" { "kind" } else { "value" });
        if let Some(near) = closest(value, names.iter().copied()) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        let problem = self.at(Some(key), message);
        match expected {
            Some(expected) => problem.expected(expected),
            None => problem,
        }
    }
}

/// The keys a target of `kind` takes, from the configuration's JSON Schema
/// (serde does not list them when a kind flattens shared settings in).
fn known_keys(kind: &str) -> Option<Vec<String>> {
    let schema = serde_json::to_value(schemars::schema_for!(TargetConfig)).ok()?;
    let variants = schema.get("oneOf")?.as_array()?;
    let variant = variants.iter().find(|variant| {
        variant
            .pointer("/properties/kind/const")
            .and_then(|k| k.as_str())
            == Some(kind)
    })?;
    let properties = variant.get("properties")?.as_object()?;
    Some(properties.keys().cloned().collect())
}

/// The first backquoted word after `prefix` in `text`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    quoted(rest).into_iter().next()
}

/// Every backquoted word in `text`, in order.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
organisation:
  name: Test
targets:
  directory:
    kind: local
  wg0:
    kind: wireguard-file
    endpoint: vpn.example.org:51820
    address: 10.20.0.1/16
    adress_pool: 10.20.0.0/16
  inventory:
    kind: csv
    stock: inventory.csv
";

    fn problems(text: &str) -> Vec<String> {
        let err = serde_norway::from_str::<crate::config::Config>(text).unwrap_err();
        config_problems("homebase.yaml", text, &err)
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn an_unknown_value_is_named_at_its_key_with_the_closest_one() {
        let text = "organisation:\n  name: Test\ntargets:\n  directory:\n    kind: ldap\n    url: ldap://127.0.0.1\n    bind_dn: cn=a\n    base_dn: dc=x\n    flavour: 389-ds\n";
        let said = problems(text);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with(
                "homebase.yaml:9: key \"targets.directory.flavour\": unknown value; did you mean `389ds`?"
            ),
            "{said:?}"
        );
        let said = problems(
            &text
                .replace("kind: ldap", "kind: ldpa")
                .replace("    flavour: 389-ds\n", ""),
        );
        assert!(
            said[0].contains("key \"targets.directory.kind\": unknown kind; did you mean `ldap`?"),
            "{said:?}"
        );
    }

    #[test]
    fn an_unknown_key_inside_a_target_is_named_at_its_line() {
        let said = problems(CONFIG);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with(
                "homebase.yaml:10: key \"targets.wg0.adress_pool\": unknown key (expected one of "
            ),
            "{said:?}"
        );
    }

    #[test]
    fn a_misspelt_required_key_is_named_once_with_the_right_name() {
        let text = CONFIG
            .replace("    endpoint:", "    endpiont:")
            .replace("    adress_pool: 10.20.0.0/16\n", "");
        let said = problems(&text);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with(
                "homebase.yaml:8: key \"targets.wg0.endpiont\": unknown key; did you mean `endpoint`?"
            ),
            "{said:?}"
        );
    }

    #[test]
    fn a_missing_required_key_is_named_at_its_target() {
        let text = CONFIG
            .replace("    endpoint: vpn.example.org:51820\n", "")
            .replace("    adress_pool: 10.20.0.0/16\n", "");
        let said = problems(&text);
        assert_eq!(
            said,
            ["homebase.yaml:6: key \"targets.wg0\": missing key `endpoint`"]
        );
    }

    #[test]
    fn a_typo_of_a_known_key_gets_a_did_you_mean() {
        let text = CONFIG
            .replace("    address:", "    adress:")
            .replace("    adress_pool: 10.20.0.0/16\n", "");
        let said = problems(&text);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("did you mean `address`"), "{said:?}");
        assert!(said[0].contains("adress"), "{said:?}");
    }

    #[test]
    fn every_broken_target_is_reported() {
        let text = CONFIG.replace("    stock:", "    stok:");
        let said = problems(&text);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[1].contains("targets.inventory"), "{said:?}");
    }

    #[test]
    fn an_unknown_kind_points_at_kind() {
        let text = CONFIG.replace("kind: csv", "kind: cvs");
        let said = problems(&text);
        assert!(
            said.iter()
                .any(|s| s
                    .starts_with("homebase.yaml:12: key \"targets.inventory.kind\": unknown kind")),
            "{said:?}"
        );
    }

    #[test]
    fn errors_outside_targets_keep_serdes_position() {
        let said = problems("organisation:\n  nmae: Test\n");
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("homebase.yaml:2:"), "{said:?}");
    }
}
