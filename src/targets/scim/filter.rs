//! SCIM filter expressions (RFC 7644 §3.4.2.2). A comparison value is a JSON
//! string literal, so a value is escaped by JSON's rules: `"` and `\` get a
//! backslash, control characters become `\uXXXX` (or their short forms).
//! Names such as `Hans*)(uid=*` or `a"b\c` then reach the server as data.
//! Attribute names are always ours, never taken from input.

use std::fmt::Write;

/// `value` as a quoted filter string literal.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `attribute eq "value"`.
pub fn eq(attribute: &str, value: &str) -> String {
    format!("{attribute} eq {}", quote(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_just_quoted() {
        assert_eq!(eq("externalId", "P100001"), r#"externalId eq "P100001""#);
    }

    #[test]
    fn hostile_values_stay_one_literal() {
        assert_eq!(quote(r#"Hans*)(uid=*"#), r#""Hans*)(uid=*""#);
        assert_eq!(
            quote(r#"a" or userName pr or "x"#),
            r#""a\" or userName pr or \"x""#
        );
        assert_eq!(quote(r"back\slash\"), r#""back\\slash\\""#);
        assert_eq!(quote("line\nbreak\u{1}"), r#""line\nbreak\u0001""#);
    }

    #[test]
    fn quoting_agrees_with_json_and_round_trips() {
        for value in [
            "",
            "plain",
            r#"Hans*)(uid=*"#,
            r#"O"Brien \ "quoted" \\"#,
            "tab\there\u{7f}\u{1f}",
            "Jürgen Weiß ẞ 😀",
            "{{ 7*7 }}",
            "=HYPERLINK(\"x\")",
        ] {
            let quoted = quote(value);
            assert_eq!(
                serde_json::from_str::<String>(&quoted).unwrap(),
                value,
                "{quoted}"
            );
            assert_eq!(quoted, serde_json::to_string(value).unwrap());
        }
    }
}
