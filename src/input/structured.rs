//! YAML and JSON staff lists: a list of mappings whose keys are column names,
//! as in a CSV header. Each record's line is where its list item starts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer};

use super::columns::{ColumnNames, Layout};
use super::validate::{number_text, Collector, Value};
use crate::error::Problem;

/// What an empty YAML or JSON staff file should have held.
pub(super) const EMPTY_EXPECTED: &str = "a list of persons";

/// One list item: its keys and values, or a problem with the item as a whole.
type Entries<'a> = Vec<(Cow<'a, str>, Value<'a>)>;

/// Read a YAML list of persons into `out`.
pub(super) fn read_yaml(file: &str, text: &str, names: &ColumnNames, out: &mut Collector) {
    let mut document: serde_norway::Value = match serde_norway::from_str(text) {
        Ok(document) => document,
        Err(err) => {
            let mut problem = Problem::new(file, format!("not valid YAML: {err}"));
            if let Some(location) = err.location() {
                problem = problem.at_line(location.line());
            }
            out.problem(problem);
            return;
        }
    };
    if let Err(err) = document.apply_merge() {
        out.problem(Problem::new(file, format!("not valid YAML: {err}")));
        return;
    }
    if document.is_null() {
        out.problem(Problem::new(file, "file is empty").expected(EMPTY_EXPECTED));
        return;
    }
    let serde_norway::Value::Sequence(items) = &document else {
        out.problem(
            not_a_list(file, text, yaml_kind(&document))
                .expected("a YAML list of mappings, one per person (- id: 1001)"),
        );
        return;
    };
    let lines = yaml_item_lines(text);
    // Scalars as written: `+4930123456` and `1.50` stay text, where the typed
    // document has the numbers 4930123456 and 1.5. Files with nested values
    // have no literal reading and keep the typed one.
    let literal: Vec<LiteralItem> = serde_norway::from_str(text).unwrap_or_default();
    read_items(
        file,
        names,
        out,
        items.iter().enumerate().map(|(index, item)| {
            let line = lines.get(index).copied().unwrap_or(1);
            (line, yaml_entries(item, literal.get(index)))
        }),
    );
}

/// Read a JSON array of persons into `out`.
pub(super) fn read_json(file: &str, text: &str, names: &ColumnNames, out: &mut Collector) {
    let document: serde_json::Value = match serde_json::from_str(text) {
        Ok(document) => document,
        Err(err) => {
            out.problem(
                Problem::new(file, format!("not valid JSON: {err}")).at_line(err.line().max(1)),
            );
            return;
        }
    };
    let serde_json::Value::Array(items) = &document else {
        out.problem(
            not_a_list(file, text, json_kind(&document))
                .expected("a JSON array of objects, one per person"),
        );
        return;
    };
    let lines = json_item_lines(text);
    read_items(
        file,
        names,
        out,
        items.iter().enumerate().map(|(index, item)| {
            let line = lines.get(index).copied().unwrap_or(1);
            (line, json_entries(item))
        }),
    );
}

fn not_a_list(file: &str, text: &str, found: &str) -> Problem {
    let line = text
        .lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(1, |n| n + 1);
    Problem::new(file, format!("a list of persons is expected, not {found}")).at_line(line)
}

fn read_items<'a>(
    file: &str,
    names: &ColumnNames,
    out: &mut Collector,
    items: impl Iterator<Item = (usize, Result<Entries<'a>, String>)>,
) {
    let mut count = 0;
    for (line, entries) in items {
        count += 1;
        let entries = match entries {
            Ok(entries) => entries,
            Err(found) => {
                out.problem(
                    Problem::new(
                        file,
                        format!("a person is a mapping of column names to values, not {found}"),
                    )
                    .at_line(line)
                    .expected("keys like id: and family_name:"),
                );
                continue;
            }
        };
        let columns = names.map(
            file,
            line,
            entries.iter().map(|(key, _)| key.as_ref()),
            Layout::Keys,
            &mut out.problems,
        );
        let mut values = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if value == Value::Broken {
                out.problem(
                    Problem::new(file, "a list or mapping is not a value")
                        .at_line(line)
                        .column(key.trim())
                        .expected("text, a number or a date"),
                );
            }
            values.push(value);
        }
        out.add_row(file, line, &columns, &values);
    }
    if count == 0 {
        out.problem(
            Problem::new(file, "the list of persons is empty")
                .at_line(1)
                .expected("one entry per person"),
        );
    }
}

/// One YAML list item read with every scalar as the text written, by key.
#[derive(Debug, Default)]
struct LiteralItem(HashMap<String, String>);

impl<'de> Deserialize<'de> for LiteralItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> de::Visitor<'de> for Visitor {
            type Value = LiteralItem;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of column names to values")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<LiteralItem, A::Error> {
                let mut item = HashMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "<<" {
                        map.next_value::<de::IgnoredAny>()?; // merged keys stay typed
                    } else if let Some(value) = map.next_value::<Option<String>>()? {
                        item.insert(key, value);
                    }
                }
                Ok(LiteralItem(item))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

fn yaml_entries<'a>(
    item: &'a serde_norway::Value,
    literal: Option<&'a LiteralItem>,
) -> Result<Entries<'a>, String> {
    use serde_norway::Value as Yaml;
    let Yaml::Mapping(mapping) = item else {
        return Err(yaml_kind(item).to_string());
    };
    let literal_text = |key: &str| literal.and_then(|l| l.0.get(key)).map(String::as_str);
    Ok(mapping
        .iter()
        .map(|(key, value)| {
            let key = match key {
                Yaml::String(key) => Cow::Borrowed(key.as_str()),
                Yaml::Number(n) => Cow::Owned(n.to_string()),
                Yaml::Bool(b) => Cow::Owned(b.to_string()),
                _ => Cow::Borrowed(""),
            };
            let value = match (value, literal_text(&key)) {
                (Yaml::Null, _) => Value::Empty,
                (Yaml::Bool(_) | Yaml::Number(_), Some(text)) => Value::Text(Cow::Borrowed(text)),
                (Yaml::Bool(b), None) => Value::Text(Cow::Owned(b.to_string())),
                (Yaml::Number(n), None) => Value::Text(Cow::Owned(number_as_text(
                    n.as_i64(),
                    n.as_u64(),
                    n.as_f64(),
                ))),
                (Yaml::String(text), _) => Value::Text(Cow::Borrowed(text.as_str())),
                (Yaml::Sequence(_) | Yaml::Mapping(_) | Yaml::Tagged(_), _) => Value::Broken,
            };
            (key, value)
        })
        .collect())
}

fn json_entries(item: &serde_json::Value) -> Result<Entries<'_>, String> {
    use serde_json::Value as Json;
    let Json::Object(object) = item else {
        return Err(json_kind(item).to_string());
    };
    Ok(object
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Json::Null => Value::Empty,
                Json::Bool(b) => Value::Text(Cow::Owned(b.to_string())),
                Json::Number(n) => Value::Text(Cow::Owned(number_as_text(
                    n.as_i64(),
                    n.as_u64(),
                    n.as_f64(),
                ))),
                Json::String(text) => Value::Text(Cow::Borrowed(text.as_str())),
                Json::Array(_) | Json::Object(_) => Value::Broken,
            };
            (Cow::Borrowed(key.as_str()), value)
        })
        .collect())
}

/// A parsed number as text: integers exactly, whole floats without `.0`.
fn number_as_text(int: Option<i64>, unsigned: Option<u64>, float: Option<f64>) -> String {
    match (int, unsigned, float) {
        (Some(i), ..) => i.to_string(),
        (None, Some(u), _) => u.to_string(),
        (None, None, Some(f)) => number_text(f),
        (None, None, None) => String::new(),
    }
}

fn yaml_kind(value: &serde_norway::Value) -> &'static str {
    use serde_norway::Value as Yaml;
    match value {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "true/false",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "text",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value as Json;
    match value {
        Json::Null => "null",
        Json::Bool(_) => "true/false",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The lines where the items of a top-level block list start (`- id: 1`):
/// lines whose first non-space is a `-` item marker at the indent of the
/// first one. A flow list (`[{...}]`) has none; its items get line 1.
fn yaml_item_lines(text: &str) -> Vec<usize> {
    let is_item = |t: &str| t == "-" || t.starts_with("- ") || t.starts_with("-\t");
    let mut lines = Vec::new();
    let mut indent = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start_matches(' ');
        let depth = line.len() - trimmed.len();
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match indent {
            None if depth == 0 && (trimmed.starts_with("---") || trimmed.starts_with('%')) => {}
            None if is_item(trimmed) => {
                indent = Some(depth);
                lines.push(index + 1);
            }
            None => break,
            Some(_) if depth == 0 && (trimmed.starts_with("---") || trimmed.starts_with("...")) => {
                break
            }
            Some(indent) if depth == indent && is_item(trimmed) => lines.push(index + 1),
            Some(_) => {}
        }
    }
    lines
}

/// The lines where the elements of a top-level JSON array start.
fn json_item_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut depth, mut line) = (0usize, 1);
    let (mut in_string, mut escaped, mut expecting) = (false, false, false);
    for b in text.bytes() {
        if b == b'\n' {
            line += 1;
        }
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        if b.is_ascii_whitespace() {
            continue;
        }
        if depth == 1 && expecting && b != b']' {
            lines.push(line);
            expecting = false;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 1 && b == b'[' {
                    expecting = true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_items_start_at_dashes() {
        let text = "# staff\n---\n- id: 1\n  family_name: A\n  note: |\n    - not an item\n\n- id: 2\n  groups:\n  - x\n-\n  id: 3\n";
        assert_eq!(yaml_item_lines(text), [3, 8, 11]);
        let indented = "  - id: 1\n    family_name: A\n  - id: 2\n";
        assert_eq!(yaml_item_lines(indented), [1, 3]);
        assert_eq!(yaml_item_lines("[{id: 1}, {id: 2}]"), Vec::<usize>::new());
        assert_eq!(yaml_item_lines("staff:\n- id: 1\n"), Vec::<usize>::new());
    }

    #[test]
    fn json_items_start_at_their_value() {
        let text = "[\n  {\"id\": \"1\", \"note\": \"a ] } [ \\\" x\"},\n\n  {\n    \"id\": 2\n  }, {\"id\": 3}\n]";
        assert_eq!(json_item_lines(text), [2, 4, 6]);
        assert_eq!(json_item_lines("[]"), Vec::<usize>::new());
        assert_eq!(json_item_lines("[1,\n2]"), [1, 2]);
    }
}
