//! Usernames: pattern → ASCII → safe charset → length, collisions suffixed.
//!
//! Deterministic and independent of row order: pinned names are reserved first,
//! then new persons are named in order of their staff id.

use std::collections::BTreeSet;

/// Make a rendered pattern a username: German transliteration first (ä→ae …),
/// then general transliteration, lowercase, `[a-z0-9._-]` only, no leading or
/// trailing punctuation, at most `max_len` characters.
pub fn normalize(raw: &str, max_len: usize) -> String {
    let mut german = String::with_capacity(raw.len() + 4);
    for c in raw.chars() {
        match c {
            'ä' => german.push_str("ae"),
            'ö' => german.push_str("oe"),
            'ü' => german.push_str("ue"),
            'Ä' => german.push_str("Ae"),
            'Ö' => german.push_str("Oe"),
            'Ü' => german.push_str("Ue"),
            'ß' | 'ẞ' => german.push_str("ss"),
            _ => german.push(c),
        }
    }
    let ascii = deunicode::deunicode(&german);
    let mut name: String = ascii
        .chars()
        .filter_map(|c| {
            let c = c.to_ascii_lowercase();
            (c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
                .then_some(c)
        })
        .collect();
    name.truncate(max_len);
    let trimmed = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "user".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The first free name of `base`, `base2`, `base3` … (cut so the suffix fits).
/// `taken` holds lower-case names already in use.
pub fn first_free(base: &str, max_len: usize, taken: &BTreeSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2u64..)
        .map(|n| {
            let suffix = n.to_string();
            let keep = max_len.saturating_sub(suffix.len()).min(base.len());
            format!("{}{suffix}", base[..keep].trim_end_matches(['.', '_', '-']))
        })
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transliterates_german_then_general() {
        assert_eq!(normalize("JMüller", 20), "jmueller");
        assert_eq!(normalize("SGroß", 20), "sgross");
        assert_eq!(normalize("ÖÖzdemir", 20), "oeoezdemir");
        assert_eq!(normalize("Łukasz Dvořák", 20), "lukaszdvorak");
        assert_eq!(normalize("Anna-Lena", 20), "anna-lena");
    }

    #[test]
    fn hostile_names_become_safe() {
        assert_eq!(normalize("H*)(uid=*", 20), "huid");
        assert_eq!(normalize("../../etc/passwd", 20), "etcpasswd");
        assert_eq!(normalize("{{ 7*7 }}", 20), "77");
        assert_eq!(normalize("*)(", 20), "user");
    }

    #[test]
    fn cuts_to_length_without_trailing_punctuation() {
        assert_eq!(
            normalize("aMüller-Lüdenscheidt-Schmitz", 20),
            "amueller-luedenschei"
        );
        assert_eq!(
            normalize("abcdefghijklmnopqrs-xyz", 20),
            "abcdefghijklmnopqrs"
        );
        assert!(normalize("x".repeat(40).as_str(), 20).len() == 20);
    }

    #[test]
    fn suffixes_collisions_within_length() {
        let mut taken = BTreeSet::new();
        assert_eq!(first_free("jmueller", 20, &taken), "jmueller");
        taken.insert("jmueller".to_string());
        assert_eq!(first_free("jmueller", 20, &taken), "jmueller2");
        taken.insert("jmueller2".to_string());
        assert_eq!(first_free("jmueller", 20, &taken), "jmueller3");
        let long = "abcdefghijklmnopqrst";
        taken.insert(long.to_string());
        let next = first_free(long, 20, &taken);
        assert_eq!(next, "abcdefghijklmnopqrs2");
        assert!(next.len() <= 20);
    }
}
