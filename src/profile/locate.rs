//! Line numbers of keys in a YAML file, for problems found after parsing
//! (when serde's own location is gone, e.g. in a merged profile).
//!
//! A small scanner for block-style mappings, which is how profiles are written;
//! for anything it cannot follow (flow mappings, multi-line scalars) it finds
//! nothing and the problem is reported without a line.

/// The 1-based line of the key at `path` (`["vpn", "pool"]`). Keys inside
/// sequence items (`- kind: notebook`) count as keys of the sequence's key,
/// so `["devices", "count"]` finds the first `count` of any device.
pub fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    // The keys enclosing the current line, with their indentation.
    let mut stack: Vec<(usize, &str)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut indent = line.len() - trimmed.len();
        let mut rest = trimmed;
        while let Some(item) = rest.strip_prefix("- ") {
            indent += 2;
            rest = item.trim_start();
        }
        let Some(key) = mapping_key(rest) else {
            continue;
        };
        while stack.last().is_some_and(|(depth, _)| *depth >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        if stack.len() == path.len() && stack.iter().map(|(_, k)| *k).eq(path.iter().copied()) {
            return Some(index + 1);
        }
    }
    None
}

/// `key` of a `key: value` or `key:` line; quotes around the key are dropped.
fn mapping_key(line: &str) -> Option<&str> {
    let (key, _) = line
        .split_once(':')
        .filter(|(_, after)| after.is_empty() || after.starts_with(' '))?;
    let key = key.trim();
    let key = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
        .unwrap_or(key);
    (!key.is_empty() && !key.starts_with(['{', '[', '-'])).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment\nextends: base\naccount:\n  groups: [a]\n  password:\n    length: 20\nvpn:\n  pool: 10.0.0.0/24\ndevices:\n  - kind: notebook\n    count: 2\nmatch:\n  - \"department\": [IT*]\n";

    #[test]
    fn finds_nested_keys() {
        assert_eq!(key_line(TEXT, &["extends"]), Some(2));
        assert_eq!(key_line(TEXT, &["account", "password", "length"]), Some(6));
        assert_eq!(key_line(TEXT, &["vpn", "pool"]), Some(8));
        assert_eq!(key_line(TEXT, &["devices", "count"]), Some(11));
        assert_eq!(key_line(TEXT, &["match", "department"]), Some(13));
    }

    #[test]
    fn does_not_confuse_levels() {
        assert_eq!(key_line(TEXT, &["length"]), None);
        assert_eq!(key_line(TEXT, &["vpn", "length"]), None);
        assert_eq!(key_line(TEXT, &["account", "pool"]), None);
    }
}
