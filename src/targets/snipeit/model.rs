//! Snipe-IT's JSON, as its API v1 documents it: lists as `{total, rows}`,
//! writes as `{status, messages, payload}`. Text fields come HTML-escaped
//! (Snipe-IT runs them through PHP's `e()`); [`unescape`] undoes that.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One page of a list: `GET /hardware`, `/users`, `/models`, `/categories`.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub total: u64,
    pub rows: Vec<T>,
}

/// The answer of a write: `status` is `success` or `error`.
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    pub status: String,
    #[serde(default)]
    pub messages: Value,
    #[serde(default = "Option::default")]
    pub payload: Option<T>,
}

/// `{id, name}`, as models, categories and status labels appear inside a row.
#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub id: u64,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelRow {
    pub id: u64,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StatusLabel {
    #[serde(default)]
    pub name: String,
    /// `deployable`, `pending`, `undeployable` or `archived`.
    #[serde(default)]
    pub status_type: String,
}

/// Whom an asset is checked out to. For users Snipe-IT adds the username
/// and the employee number, which is how homebase knows its persons.
#[derive(Debug, Clone, Deserialize)]
pub struct AssignedTo {
    pub id: u64,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub employee_number: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hardware {
    pub id: u64,
    #[serde(default)]
    pub asset_tag: String,
    #[serde(default)]
    pub serial: Option<String>,
    #[serde(default)]
    pub model: Option<Named>,
    #[serde(default)]
    pub status_label: Option<StatusLabel>,
    #[serde(default)]
    pub assigned_to: Option<AssignedTo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: u64,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub employee_num: Option<String>,
}

/// `POST /users`. Snipe-IT requires a password; homebase sets a random one
/// it never keeps, and leaves the account unable to log in.
#[derive(Serialize)]
pub struct NewUser<'a> {
    pub first_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<&'a str>,
    pub username: &'a str,
    pub password: &'a str,
    pub password_confirmation: &'a str,
    pub employee_num: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub activated: bool,
    pub notes: &'a str,
}

/// `POST /hardware/{id}/checkout` to a user. Without `status_id` the
/// asset keeps its status; with one, Snipe-IT requires a deployable label.
#[derive(Serialize)]
pub struct Checkout {
    pub checkout_to_type: &'static str,
    pub assigned_user: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_id: Option<u64>,
    pub note: &'static str,
}

/// A row of `GET /statuslabels`: `type` is `deployable`, `pending`,
/// `undeployable` or `archived`.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusRow {
    pub id: u64,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// Snipe-IT's `messages`: a string, a list, or field → list of strings.
pub fn messages_text(messages: &Value) -> String {
    let text = match messages {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(messages_text)
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(fields) => fields
            .iter()
            .map(|(field, value)| format!("{field}: {}", messages_text(value)))
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    unescape(&text)
}

/// Undo PHP's `htmlspecialchars` (`e()`): `&amp;` `&lt;` `&gt;` `&quot;`
/// `&#039;` `&#39;` `&apos;`. Anything else is left as it is.
pub fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let entity = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&#039;", '\''),
            ("&#39;", '\''),
            ("&apos;", '\''),
        ]
        .into_iter()
        .find(|(name, _)| rest.starts_with(name));
        match entity {
            Some((name, c)) => {
                out.push(c);
                rest = &rest[name.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_what_php_escapes_once() {
        assert_eq!(unescape("Dell &amp; Co &lt;b&gt;"), "Dell & Co <b>");
        assert_eq!(unescape("O&#039;Brien &quot;x&quot;"), "O'Brien \"x\"");
        assert_eq!(unescape("&amp;amp; & &unknown;"), "&amp; & &unknown;");
        assert_eq!(unescape("plain"), "plain");
    }

    #[test]
    fn messages_of_every_shape() {
        let v: Value = serde_json::json!("That asset is not available for checkout!");
        assert_eq!(
            messages_text(&v),
            "That asset is not available for checkout!"
        );
        let v: Value = serde_json::json!({"username": ["The username has already been taken."]});
        assert_eq!(
            messages_text(&v),
            "username: The username has already been taken."
        );
    }

    #[test]
    fn reads_a_documented_hardware_row() {
        let row: Hardware = serde_json::from_value(serde_json::json!({
            "id": 1, "name": "", "asset_tag": "NB-1", "serial": "PF4&amp;X",
            "model": {"id": 1, "name": "Macbook Pro 13&quot;"},
            "status_label": {"id": 1, "name": "Ready to Deploy", "status_type": "deployable", "status_meta": "deployed"},
            "category": {"id": 1, "name": "Laptops"},
            "assigned_to": {"id": 7, "username": "jdoe", "name": "J Doe", "first_name": "J",
                            "last_name": "Doe", "employee_number": "P1", "type": "user"},
            "custom_fields": [], "available_actions": {"checkout": true}
        }))
        .unwrap();
        assert_eq!(
            row.assigned_to.unwrap().employee_number.as_deref(),
            Some("P1")
        );
        assert_eq!(unescape(&row.model.unwrap().name), "Macbook Pro 13\"");
    }
}
