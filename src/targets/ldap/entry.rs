//! Building attribute lists for add/modify, and reading attributes of search
//! results by name, case-insensitively (servers answer in their schema's case).

use std::collections::HashSet;

use ldap3::{Mod, SearchEntry};

use super::pool::Attrs;

/// The plan's account fields (`Change::field`) that an entry carries as
/// attributes; both flavours write all of them when taking over an entry.
pub const MANAGED_FIELDS: [&str; 6] = [
    "given_name",
    "family_name",
    "display_name",
    "email",
    "department",
    "expires",
];

/// The attributes of a new entry. Empty values are left out (LDAP has no
/// empty strings: an absent attribute is the empty value).
#[derive(Default)]
pub struct NewEntry(Attrs);

impl NewEntry {
    pub fn set(&mut self, name: &str, value: impl Into<Vec<u8>>) -> &mut Self {
        let value = value.into();
        if !value.is_empty() {
            self.0
                .push((name.as_bytes().to_vec(), HashSet::from([value])));
        }
        self
    }

    pub fn set_opt(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.set(name, value);
        }
        self
    }

    pub fn set_all(&mut self, name: &str, values: &[&str]) -> &mut Self {
        let values: HashSet<Vec<u8>> = values.iter().map(|v| v.as_bytes().to_vec()).collect();
        if !values.is_empty() {
            self.0.push((name.as_bytes().to_vec(), values));
        }
        self
    }

    pub fn into_attrs(self) -> Attrs {
        self.0
    }

    /// The attribute's values as text, for tests.
    #[cfg(test)]
    pub fn get(attrs: &Attrs, name: &str) -> Vec<String> {
        let mut values: Vec<String> = attrs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .flat_map(|(_, v)| v.iter().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect();
        values.sort();
        values
    }
}

/// Set an attribute to one value, or remove it (`None` or empty).
pub fn replace(name: &str, value: Option<&str>) -> Mod<Vec<u8>> {
    let values = match value {
        Some(v) if !v.is_empty() => HashSet::from([v.as_bytes().to_vec()]),
        _ => HashSet::new(),
    };
    Mod::Replace(name.as_bytes().to_vec(), values)
}

/// Set an attribute to one binary value.
pub fn replace_bytes(name: &str, value: Vec<u8>) -> Mod<Vec<u8>> {
    Mod::Replace(name.as_bytes().to_vec(), HashSet::from([value]))
}

/// The first value of an attribute.
pub fn first<'e>(entry: &'e SearchEntry, name: &str) -> Option<&'e str> {
    entry
        .attrs
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

/// Every value of an attribute.
pub fn all<'e>(entry: &'e SearchEntry, name: &str) -> Vec<&'e str> {
    entry
        .attrs
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().map(String::as_str))
        .collect()
}

/// Whether the entry has the attribute at all.
pub fn has(entry: &SearchEntry, name: &str) -> bool {
    entry
        .attrs
        .keys()
        .chain(entry.bin_attrs.keys())
        .any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
pub fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> SearchEntry {
    SearchEntry {
        dn: dn.to_string(),
        attrs: attrs
            .iter()
            .map(|(n, v)| (n.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect(),
        bin_attrs: Default::default(),
    }
}
