//! SCIM 2.0 resources and messages (RFC 7643, RFC 7644): only the attributes
//! homebase reads or writes. Unknown attributes of the server are ignored on
//! reading; on writing, absent options are left out (servers refuse unknown
//! or `null` attributes).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// The enterprise `department` as a PATCH path.
pub const DEPARTMENT_PATH: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

/// The attributes a user listing asks for (`attributes=`), to keep pages small.
pub const USER_ATTRIBUTES: &str = "userName,externalId,name,displayName,emails,active,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

/// A password on its way to the server: serialised as is, never printed.
pub use crate::targets::common::Secret;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub user_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Only ever sent (the first password of a new account), never read.
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(
        rename = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enterprise: Option<Enterprise>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
}

impl User {
    /// The primary address, else the first.
    pub fn email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.primary == Some(true))
            .or_else(|| self.emails.first())
            .map(|e| e.value.as_str())
    }

    pub fn department(&self) -> Option<&str> {
        self.enterprise
            .as_ref()
            .and_then(|e| e.department.as_deref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Name {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Email {
    pub value: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Enterprise {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub value: String,
}

/// `ListResponse` of a query (RFC 7644 §3.4.2).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "T: serde::de::DeserializeOwned")
)]
pub struct ListResponse<T> {
    #[serde(default)]
    pub total_results: usize,
    #[serde(default, rename = "Resources")]
    pub resources: Vec<T>,
}

/// One PATCH operation (RFC 7644 §3.5.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOperation {
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PatchOperation {
    pub fn replace(path: &str, value: Value) -> PatchOperation {
        PatchOperation {
            op: "replace",
            path: Some(path.to_string()),
            value: Some(value),
        }
    }

    pub fn add(path: &str, value: Value) -> PatchOperation {
        PatchOperation {
            op: "add",
            path: Some(path.to_string()),
            value: Some(value),
        }
    }

    pub fn remove(path: String) -> PatchOperation {
        PatchOperation {
            op: "remove",
            path: Some(path),
            value: None,
        }
    }

    /// Whether this operation carries the password (and must not be shown).
    pub fn is_password(&self) -> bool {
        self.path.as_deref() == Some("password")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PatchRequest<'a> {
    pub schemas: [&'static str; 1],
    #[serde(rename = "Operations")]
    pub operations: &'a [PatchOperation],
}

impl<'a> PatchRequest<'a> {
    pub fn new(operations: &'a [PatchOperation]) -> Self {
        PatchRequest {
            schemas: [PATCH_SCHEMA],
            operations,
        }
    }
}

/// A SCIM error body (RFC 7644 §3.12). `status` is a string by the RFC, a
/// number on some servers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    #[serde(default, deserialize_with = "lenient_status")]
    pub status: Option<u16>,
    #[serde(default)]
    pub scim_type: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

fn lenient_status<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| status_of(&v)))
}

/// A status given as `"409"` or `409`.
pub fn status_of(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `/ServiceProviderConfig` (RFC 7643 §5): what the server supports. A
/// missing section means "not supported".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProviderConfig {
    #[serde(default)]
    pub patch: Supported,
    #[serde(default)]
    pub bulk: BulkSupport,
    #[serde(default)]
    pub filter: FilterSupport,
    #[serde(default)]
    pub etag: Supported,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Supported {
    #[serde(default)]
    pub supported: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSupport {
    #[serde(default)]
    pub supported: bool,
    #[serde(default)]
    pub max_operations: Option<usize>,
    #[serde(default)]
    pub max_payload_size: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterSupport {
    #[serde(default)]
    pub supported: bool,
    #[serde(default)]
    pub max_results: Option<usize>,
}

/// One operation of a Bulk request (RFC 7644 §3.7).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkOperation {
    pub method: &'static str,
    pub bulk_id: String,
    pub path: String,
    pub data: Value,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkRequest<'a> {
    pub schemas: [&'static str; 1],
    #[serde(rename = "Operations")]
    pub operations: &'a [BulkOperation],
}

#[derive(Debug, Clone, Deserialize)]
pub struct BulkResponse {
    #[serde(default, rename = "Operations")]
    pub operations: Vec<BulkResult>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkResult {
    #[serde(default)]
    pub bulk_id: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub status: Value,
    #[serde(default)]
    pub response: Option<Value>,
}
