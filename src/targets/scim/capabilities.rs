//! What a service provider stores, from its `/ResourceTypes` and `/Schemas`
//! (RFC 7643 §6, §7). A server may accept an attribute and drop it: sending
//! it changes nothing and every plan would show it again. What the server
//! declares decides what homebase sends and compares.

use std::collections::BTreeSet;

use serde_json::Value;

use super::model::{ENTERPRISE_SCHEMA, USER_SCHEMA};

/// Account fields (as the plan names them) that a SCIM attribute carries,
/// with the attribute path in the schema that must declare it.
const FIELDS: [(&str, &str, &str); 6] = [
    ("given_name", USER_SCHEMA, "name.givenName"),
    ("family_name", USER_SCHEMA, "name.familyName"),
    ("display_name", USER_SCHEMA, "displayName"),
    ("email", USER_SCHEMA, "emails"),
    ("enabled", USER_SCHEMA, "active"),
    ("department", ENTERPRISE_SCHEMA, "department"),
];

/// The account fields this server does not store (plan names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    pub missing: BTreeSet<String>,
}

impl Stored {
    pub fn stores(&self, field: &str) -> bool {
        !self.missing.contains(field)
    }

    /// From the bodies of `GET /ResourceTypes` and `GET /Schemas`; either
    /// may be absent (not offered): then what it would decide is taken as
    /// stored, as before discovery.
    pub fn from_discovery(resource_types: Option<&Value>, schemas: Option<&Value>) -> Stored {
        let user_type = resource_types.and_then(|list| {
            resources(list).find(|r| {
                r.get("name").and_then(Value::as_str) == Some("User")
                    || r.get("schema").and_then(Value::as_str) == Some(USER_SCHEMA)
            })
        });
        // The enterprise extension counts only where the User resource
        // type names it: a schema listed in /Schemas alone is not used for
        // Users.
        let extension = user_type.map(|t| {
            t.get("schemaExtensions")
                .and_then(Value::as_array)
                .is_some_and(|exts| {
                    exts.iter()
                        .any(|e| e.get("schema").and_then(Value::as_str) == Some(ENTERPRISE_SCHEMA))
                })
        });
        let mut missing = BTreeSet::new();
        for (field, schema, path) in FIELDS {
            if schema == ENTERPRISE_SCHEMA && extension == Some(false) {
                missing.insert(field.to_string());
                continue;
            }
            let declared = schemas.and_then(|list| {
                resources(list)
                    .find(|s| s.get("id").and_then(Value::as_str) == Some(schema))
                    .map(|s| declares(s, path))
            });
            if declared == Some(false) {
                missing.insert(field.to_string());
            }
        }
        Stored { missing }
    }
}

/// The resources of a ListResponse, or a bare array (some servers answer
/// discovery endpoints with one).
fn resources(list: &Value) -> impl Iterator<Item = &Value> {
    let items = match list {
        Value::Array(items) => Some(items),
        other => other.get("Resources").and_then(Value::as_array),
    };
    items.into_iter().flatten()
}

/// Whether a schema resource declares `path` (`a` or `a.b`), case-insensitively
/// as SCIM attribute names are.
fn declares(schema: &Value, path: &str) -> bool {
    let mut attributes = schema.get("attributes");
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let found = attributes.and_then(Value::as_array).and_then(|list| {
            list.iter().find(|a| {
                a.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(part))
            })
        });
        let Some(found) = found else {
            return false;
        };
        if parts.peek().is_some() {
            attributes = found.get("subAttributes");
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user_schema(attributes: Value) -> Value {
        json!({ "Resources": [{ "id": USER_SCHEMA, "attributes": attributes }] })
    }

    #[test]
    fn a_user_type_without_the_extension_stores_no_department() {
        let types = json!({ "Resources": [
            { "name": "User", "schema": USER_SCHEMA, "endpoint": "/Users" },
            { "name": "Group", "endpoint": "/Groups" }
        ]});
        // /Schemas lists the extension; the resource type does not use it.
        let schemas = json!({ "Resources": [
            { "id": ENTERPRISE_SCHEMA, "attributes": [{ "name": "department" }] }
        ]});
        let stored = Stored::from_discovery(Some(&types), Some(&schemas));
        assert!(!stored.stores("department"));
        assert!(stored.stores("display_name"), "no User schema: assumed");
    }

    #[test]
    fn the_user_schema_decides_core_attributes() {
        let types = json!([{ "name": "User", "schemaExtensions": [
            { "schema": ENTERPRISE_SCHEMA, "required": false }
        ]}]);
        let schemas = user_schema(json!([
            { "name": "userName" },
            { "name": "name", "subAttributes": [{ "name": "familyName" }, { "name": "GivenName" }] },
            { "name": "emails" },
            { "name": "active" }
        ]));
        let stored = Stored::from_discovery(Some(&types), Some(&schemas));
        assert_eq!(
            stored
                .missing
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["display_name"]
        );
    }

    #[test]
    fn no_discovery_means_everything_is_stored() {
        assert_eq!(Stored::from_discovery(None, None), Stored::default());
        let schemas = user_schema(json!([{ "name": "name" }]));
        let stored = Stored::from_discovery(None, Some(&schemas));
        assert!(!stored.stores("given_name"));
        assert!(stored.stores("department"));
    }
}
