//! Usernames: pattern → ASCII → safe charset → length, collisions suffixed.
//!
//! Deterministic and independent of row order: pinned names are reserved first,
//! then new persons are named in order of their staff id.

use std::collections::{HashMap, HashSet};

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

/// Names in use (lower-case), and where each base's suffix search stopped.
///
/// Names are only ever added, so `base2` … `baseN` taken once stay taken: the
/// next search for the same base starts where the last one found a name. A
/// plan naming many new persons with one common base (a hundred `tmueller`s
/// among 100,000) stays linear instead of probing from `2` every time.
#[derive(Default)]
pub struct Taken {
    names: HashSet<String>,
    resume: HashMap<(String, usize), u64>,
}

impl Taken {
    pub fn insert(&mut self, name: String) {
        self.names.insert(name);
    }

    #[cfg(test)]
    fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// The first free name of `base`, `base2`, `base3` … (cut so the suffix fits).
    pub fn first_free(&mut self, base: &str, max_len: usize) -> String {
        if !self.names.contains(base) {
            return base.to_string();
        }
        let key = (base.to_string(), max_len);
        let start = self.resume.get(&key).copied().unwrap_or(2);
        let (n, name) = (start..)
            .map(|n| {
                let suffix = n.to_string();
                let keep = max_len.saturating_sub(suffix.len()).min(base.len());
                let cut = base[..keep].trim_end_matches(['.', '_', '-']);
                (n, format!("{cut}{suffix}"))
            })
            .find(|(_, candidate)| !self.names.contains(candidate))
            .expect("an unbounded range of suffixes has a free one");
        self.resume.insert(key, n);
        name
    }
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
        let mut taken = Taken::default();
        assert_eq!(taken.first_free("jmueller", 20), "jmueller");
        taken.insert("jmueller".to_string());
        assert_eq!(taken.first_free("jmueller", 20), "jmueller2");
        taken.insert("jmueller2".to_string());
        assert_eq!(taken.first_free("jmueller", 20), "jmueller3");
        let long = "abcdefghijklmnopqrst";
        taken.insert(long.to_string());
        let next = taken.first_free(long, 20);
        assert_eq!(next, "abcdefghijklmnopqrs2");
        assert!(next.len() <= 20);
    }

    #[test]
    fn a_resumed_search_finds_what_a_fresh_one_would() {
        // Names given in between (jmueller4 by another pattern) are skipped
        // and the cut at the length limit is the same as from the start.
        let mut taken = Taken::default();
        let fresh = |taken: &Taken, base: &str, max: usize| {
            (1u64..)
                .map(|n| match n {
                    1 => base.to_string(),
                    n => {
                        let s = n.to_string();
                        format!("{}{s}", &base[..(max - s.len()).min(base.len())])
                    }
                })
                .find(|c| !taken.contains(c))
                .unwrap()
        };
        for i in 0..40 {
            let base = if i % 3 == 0 { "abcdefghi" } else { "jmueller" };
            if i == 5 {
                taken.insert("jmueller4".to_string());
            }
            let expected = fresh(&taken, base, 9);
            let name = taken.first_free(base, 9);
            assert_eq!(name, expected, "name {i}");
            assert!(name.len() <= 9);
            taken.insert(name);
        }
    }
}
