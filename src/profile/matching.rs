//! `match` rules: which profile fits a person.

use super::MatchRule;
use crate::input::Person;

/// Person fields a rule can name; any other name is a staff column (`extra`).
pub const PERSON_FIELDS: [&str; 8] = [
    "department",
    "location",
    "id",
    "email",
    "manager",
    "phone",
    "given_name",
    "family_name",
];

/// Fields of a person that rules cannot use: the profile itself and dates.
pub const UNMATCHABLE_FIELDS: [&str; 3] = ["profile", "start", "end"];

/// Does any of `rules` fit? (No rules: no.)
pub fn any_rule_fits(rules: &[MatchRule], person: &Person) -> bool {
    rules.iter().any(|rule| rule_fits(rule, person))
}

/// A rule fits when every field it names has a value that fits one of its patterns.
/// A person without that field (no department, no such column) does not fit.
fn rule_fits(rule: &MatchRule, person: &Person) -> bool {
    rule.iter().all(|(field, patterns)| {
        field_value(person, field)
            .is_some_and(|value| patterns.iter().any(|pattern| value_fits(pattern, value)))
    })
}

/// The person's value for a rule's field name: a known field, else the extra
/// column whose header equals it case-insensitively.
fn field_value<'p>(person: &'p Person, field: &str) -> Option<&'p str> {
    let field = field.trim().to_lowercase();
    let value = match field.as_str() {
        "department" => person.department.as_deref(),
        "location" => person.location.as_deref(),
        "id" => Some(person.id.as_str()),
        "email" => person.email.as_deref(),
        "manager" => person.manager.as_deref(),
        "phone" => person.phone.as_deref(),
        "given_name" => Some(person.given_name.as_str()),
        "family_name" => Some(person.family_name.as_str()),
        _ => person
            .extra
            .iter()
            .find(|(header, _)| header.trim().to_lowercase() == field)
            .map(|(_, value)| value.as_str()),
    };
    value.map(str::trim).filter(|value| !value.is_empty())
}

/// Case-insensitive equality, or prefix match for a pattern ending in `*`.
fn value_fits(pattern: &str, value: &str) -> bool {
    let value = value.to_lowercase();
    let pattern = pattern.trim().to_lowercase();
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::input::Origin;

    fn person() -> Person {
        Person {
            id: "1001".into(),
            given_name: "Jürgen".into(),
            family_name: "Weiß".into(),
            email: None,
            department: Some("Ordnungsamt – Außendienst".into()),
            profile: None,
            phone: None,
            location: Some("Rathaus".into()),
            manager: None,
            start: None,
            end: None,
            extra: BTreeMap::from([("Kostenstelle".to_string(), "4711".to_string())]),
            origin: Origin {
                file: "staff.csv".into(),
                line: 2,
            },
        }
    }

    fn rule(pairs: &[(&str, &[&str])]) -> MatchRule {
        pairs
            .iter()
            .map(|(field, values)| {
                (
                    field.to_string(),
                    values.iter().map(|v| v.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn values_compare_case_insensitively_with_prefix_star() {
        assert!(value_fits("ORDNUNGSAMT*", "Ordnungsamt – Außendienst"));
        assert!(value_fits("WEIß", "weiß"));
        assert!(value_fits("Rathaus", "rathaus"));
        assert!(!value_fits("Rathaus", "Rathaus Nord"));
        assert!(value_fits("*", "anything"));
        assert!(!value_fits("Ordnungsamt", "Ordnungsamt – Außendienst"));
    }

    #[test]
    fn a_rule_needs_all_fields_a_profile_any_rule() {
        let p = person();
        assert!(rule_fits(
            &rule(&[
                ("department", &["ordnungsamt*"]),
                ("location", &["Rathaus"])
            ]),
            &p
        ));
        assert!(!rule_fits(
            &rule(&[("department", &["ordnungsamt*"]), ("location", &["Bauhof"])]),
            &p
        ));
        let rules = vec![
            rule(&[("location", &["Bauhof"])]),
            rule(&[("Department", &["Ordnungsamt*"])]),
        ];
        assert!(any_rule_fits(&rules, &p));
        assert!(!any_rule_fits(&[], &p));
    }

    #[test]
    fn extra_columns_and_missing_fields() {
        let p = person();
        assert!(rule_fits(&rule(&[("kostenstelle", &["47*"])]), &p));
        assert!(!rule_fits(&rule(&[("Gebäude", &["*"])]), &p));
        assert!(!rule_fits(&rule(&[("email", &["*"])]), &p));
        assert!(rule_fits(&rule(&[("family_name", &["WEIß"])]), &p));
    }
}
