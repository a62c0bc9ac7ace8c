//! Names are data: every value that goes into a DN is escaped by RFC 4514,
//! every value that goes into a search filter by RFC 4515. DNs read back from
//! the server are split and compared here too (case- and space-insensitively,
//! as directories compare them).

/// Escape a value for one RDN of a DN (RFC 4514 §2.4): `"+,;<>\=` always, `#`
/// and space at the start, space at the end, NUL as `\00`.
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Escape a value for an assertion in a search filter (RFC 4515 §3):
/// `*`, `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// One `attr=value` pair of a DN, the value unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdn {
    pub attr: String,
    pub value: String,
}

/// Split a DN into its RDNs (first = leftmost), honouring escapes. Multi-valued
/// RDNs (`a=1+b=2`) keep their first pair. `None` for a malformed DN.
pub fn parse_dn(dn: &str) -> Option<Vec<Rdn>> {
    if dn.trim().is_empty() {
        return Some(Vec::new());
    }
    split_unescaped(dn, ',')
        .into_iter()
        .map(|part| {
            let first = split_unescaped(part, '+').into_iter().next()?;
            let (attr, value) = split_once_unescaped(first, '=')?;
            let attr = attr.trim();
            if attr.is_empty() {
                return None;
            }
            Some(Rdn {
                attr: attr.to_string(),
                value: unescape(value.trim_start())?,
            })
        })
        .collect()
}

/// The normal form for comparing DNs: attribute names and values lower-cased,
/// spaces around separators dropped, values re-escaped uniformly.
pub fn normalize_dn(dn: &str) -> String {
    match parse_dn(dn) {
        Some(rdns) => rdns
            .iter()
            .map(|r| {
                format!(
                    "{}={}",
                    r.attr.to_lowercase(),
                    dn_value(&r.value.to_lowercase())
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        None => dn.trim().to_lowercase(),
    }
}

/// Whether two DNs name the same entry.
pub fn same_dn(a: &str, b: &str) -> bool {
    normalize_dn(a) == normalize_dn(b)
}

/// `dn` below `base`: the part in between (`"ou=People"` for
/// `uid=x,ou=People,dc=ex` under `dc=ex`), without the first RDN. `None` when
/// `dn` is not below `base`.
pub fn container_below(dn: &str, base: &str) -> Option<String> {
    let rdns = parse_dn(dn)?;
    let base_rdns = parse_dn(base)?;
    if rdns.len() <= base_rdns.len() {
        return None;
    }
    let split = rdns.len() - base_rdns.len();
    let tail = &rdns[split..];
    let matches = tail.iter().zip(&base_rdns).all(|(a, b)| {
        a.attr.eq_ignore_ascii_case(&b.attr) && a.value.to_lowercase() == b.value.to_lowercase()
    });
    if !matches {
        return None;
    }
    Some(
        rdns[1..split]
            .iter()
            .map(|r| format!("{}={}", r.attr, dn_value(&r.value)))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The first RDN of a DN as written, and the rest (the parent's DN).
pub fn split_first(dn: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in dn.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            return (dn[..i].trim(), dn[i + 1..].trim());
        }
    }
    (dn.trim(), "")
}

/// Join DN parts, leaving out empty ones.
pub fn join_dn(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&s[start..]);
    parts
}

fn split_once_unescaped(s: &str, sep: char) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            return Some((&s[..i], &s[i + c.len_utf8()..]));
        }
    }
    None
}

/// Undo RFC 4514 escapes (`\,` and `\2C` alike); unescaped trailing spaces go.
fn unescape(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let raw = value.as_bytes();
    let mut i = 0;
    let mut kept = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let next = *raw.get(i + 1)?;
            let hex = raw.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            });
            match hex {
                Some(b) if next.is_ascii_hexdigit() => {
                    bytes.push(b);
                    i += 3;
                }
                _ => {
                    bytes.push(next);
                    i += 2;
                }
            }
            kept = bytes.len();
        } else {
            bytes.push(raw[i]);
            if raw[i] != b' ' {
                kept = bytes.len();
            }
            i += 1;
        }
    }
    bytes.truncate(kept);
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(dn_value("Müller, Jürgen"), "Müller\\, Jürgen");
        assert_eq!(dn_value("Hans*)(uid=*"), "Hans*)(uid\\=*");
        assert_eq!(dn_value("#x "), "\\#x\\ ");
        assert_eq!(dn_value("a+b;c<d>e\"f\\g"), "a\\+b\\;c\\<d\\>e\\\"f\\\\g");
        assert_eq!(dn_value("nul\0"), "nul\\00");
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(filter_value("Hans*)(uid=*"), "Hans\\2a\\29\\28uid=\\2a");
        assert_eq!(filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(filter_value("Müller, Jürgen"), "Müller, Jürgen");
    }

    #[test]
    fn escaped_values_parse_back_literally() {
        for value in [
            "Müller, Jürgen",
            "Hans*)(uid=*",
            "#lead",
            " both ",
            "a+b",
            "x\\y",
            "=HYPERLINK(\"x\")",
        ] {
            let dn = format!("cn={},ou=People,dc=example,dc=org", dn_value(value));
            let rdns = parse_dn(&dn).unwrap();
            assert_eq!(rdns.len(), 4, "{dn}");
            assert_eq!(rdns[0].value, value, "{dn}");
            assert_eq!(rdns[1].value, "People");
        }
    }

    #[test]
    fn hex_escapes_and_spaces() {
        let rdns = parse_dn("CN=M\\C3\\BCller\\2C J, OU = Users ,DC=x").unwrap();
        assert_eq!(rdns[0].value, "Müller, J");
        assert_eq!(rdns[1].attr, "OU");
        assert_eq!(rdns[1].value, "Users");
        assert!(parse_dn("cn=x\\").is_none());
        assert!(parse_dn("novalue").is_none());
    }

    #[test]
    fn dns_compare_like_directories() {
        assert!(same_dn(
            "uid=a,OU=People,DC=Example,DC=org",
            "uid=a, ou=people, dc=example, dc=org"
        ));
        assert!(!same_dn("uid=a,ou=x,dc=y", "uid=b,ou=x,dc=y"));
    }

    #[test]
    fn containers_below_the_base() {
        let base = "dc=example,dc=org";
        assert_eq!(
            container_below("uid=a,ou=Benutzer,DC=Example,dc=org", base).as_deref(),
            Some("ou=Benutzer")
        );
        assert_eq!(
            container_below("uid=a,ou=x\\,y,ou=z,dc=example,dc=org", base).as_deref(),
            Some("ou=x\\,y,ou=z")
        );
        assert_eq!(
            container_below("uid=a,dc=example,dc=org", base).as_deref(),
            Some("")
        );
        assert_eq!(container_below("uid=a,dc=other,dc=org", base), None);
        assert_eq!(join_dn(&["uid=a", "", "dc=x"]), "uid=a,dc=x");
        assert_eq!(
            split_first("cn=M\\, J,ou=x,dc=y"),
            ("cn=M\\, J", "ou=x,dc=y")
        );
        assert_eq!(split_first("dc=y"), ("dc=y", ""));
    }
}
