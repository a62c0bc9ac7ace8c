//! A typed client of OPNsense's WireGuard API (`/api/wireguard/…`): one
//! request helper that authenticates (API key and secret as HTTP Basic),
//! gates, retries and classifies every answer, and one method per call.
//! What each call answers is in docs/opnsense.md.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::adaptive::{Limiter, Outcome};
use crate::apply::retry::RetryPolicy;
use crate::targets::common::{Secret, Trace};
use crate::targets::TargetError;

/// Rows per page of a search (OPNsense's grids page with `current` and `rowCount`).
pub const PAGE: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach OPNsense: {0}")]
    Transport(String),
    #[error("OPNsense is throttling requests (HTTP 429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("OPNsense answered HTTP {status}")]
    Server { status: u16 },
    /// 401: the key and secret were not accepted.
    #[error("OPNsense refused the API key and secret (HTTP 401: {0})")]
    Unauthorized(String),
    /// 403: the key's user lacks the privilege for the page.
    #[error("the API key's user may not use {path} (HTTP 403: {message})")]
    Forbidden { path: String, message: String },
    #[error("OPNsense refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// `{"result": "failed", "validations": {...}}`: the model refused the values.
    #[error("{0}")]
    Validation(String),
    /// `{"result": "failed"}` without validations, or another result.
    #[error("OPNsense answered \"{0}\"")]
    Failed(String),
    #[error("OPNsense sent an answer homebase cannot read: {0}")]
    Payload(String),
}

impl ApiError {
    fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::Transport(_) | ApiError::Throttled { .. } | ApiError::Server { .. }
        )
    }
}

impl From<ApiError> for TargetError {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        match err {
            ApiError::Throttled { retry_after } => TargetError::Transient {
                message,
                retry_after,
            },
            e if e.is_transient() => TargetError::transient(message),
            _ => TargetError::permanent(message),
        }
    }
}

/// A WireGuard instance as `server/search_server` lists it (its private
/// key is in the row too; it is not read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerRow {
    pub uuid: String,
    pub enabled: String,
    pub name: String,
    pub pubkey: String,
    pub port: String,
    pub tunneladdress: String,
    /// The peer generator's endpoint (`host:port`), empty when unset.
    pub endpoint: String,
}

/// A peer as `client/search_client` lists it.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClientRow {
    pub uuid: String,
    pub enabled: String,
    pub name: String,
    pub pubkey: String,
    pub psk: String,
    /// Comma-separated networks.
    pub tunneladdress: String,
    /// Comma-separated instance uuids.
    pub servers: String,
}

impl std::fmt::Debug for ClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRow")
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field("pubkey", &self.pubkey)
            .field("psk", &(!self.psk.is_empty()).then_some("<redacted>"))
            .field("tunneladdress", &self.tunneladdress)
            .field("servers", &self.servers)
            .finish()
    }
}

impl ClientRow {
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        split(&self.tunneladdress)
            .filter_map(|n| {
                n.parse::<ipnet::IpNet>()
                    .ok()
                    .or_else(|| n.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            })
            .collect()
    }

    pub fn in_instance(&self, uuid: &str) -> bool {
        split(&self.servers).any(|s| s == uuid)
    }
}

pub fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The fields of a peer homebase sets (`client/set_client/UUID`).
#[derive(Serialize)]
pub struct ClientBody<'a> {
    pub enabled: &'static str,
    pub name: &'a str,
    pub pubkey: &'a str,
    /// Absent: the peer keeps the key it has; empty: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psk: Option<&'a str>,
    pub tunneladdress: &'a str,
    pub servers: &'a str,
    /// Empty: none (OPNsense's default).
    pub keepalive: String,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    rows: Vec<T>,
    #[serde(default)]
    total: usize,
}

pub struct Client {
    http: reqwest::Client,
    /// `<url>/api/`
    api: Url,
    key: Secret,
    secret: Secret,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    trace: Trace,
}

impl Client {
    pub fn new(
        http: reqwest::Client,
        base: &Url,
        key: Secret,
        secret: Secret,
        limiter: Arc<Limiter>,
    ) -> Client {
        let mut api = base.clone();
        api.set_path(&format!("{}/api/", base.path().trim_end_matches('/')));
        Client {
            http,
            api,
            key,
            secret,
            limiter,
            retry: RetryPolicy::from_env(),
            trace: Trace::off(),
        }
    }

    /// Print a line per request under `-vv` (method and path, never a body).
    pub fn with_trace(mut self, trace: Trace) -> Client {
        self.trace = trace;
        self
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// One call, tried again on transport trouble, 429 and 5xx (every call
    /// homebase makes is safe to repeat: searches, upserts by uuid, deletes
    /// by uuid, reconfigure).
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let url = self
            .api
            .join(path)
            .map_err(|e| ApiError::Payload(format!("bad path {path}: {e}")))?;
        let mut n = 1;
        loop {
            let permit = self.limiter.acquire().await;
            let started = self.trace.start();
            let result = self
                .exchange(method.clone(), url.clone(), query, body)
                .await;
            self.traced(&method, &url, &result, started);
            permit.finish(match &result {
                Err(e) if e.is_transient() => Outcome::Overload,
                _ => Outcome::Answered,
            });
            match result {
                Err(e) if e.is_transient() && n < self.retry.attempts => {
                    let after = match &e {
                        ApiError::Throttled { retry_after } => *retry_after,
                        _ => None,
                    };
                    tokio::time::sleep(self.retry.delay(n, after)).await;
                    n += 1;
                }
                Err(ApiError::Forbidden { message, .. }) => {
                    return Err(ApiError::Forbidden {
                        path: format!("/api/{path}"),
                        message,
                    })
                }
                other => return other,
            }
        }
    }

    fn traced<T>(
        &self,
        method: &Method,
        url: &Url,
        result: &Result<T, ApiError>,
        started: std::time::Instant,
    ) {
        if self.trace.is_on() {
            let answer = match result {
                Ok(_) => "ok".to_string(),
                Err(err) => err.to_string(),
            };
            self.trace
                .done(format!("{method} {}", url.path()), answer, started);
        }
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let mut request = self
            .http
            .request(method, url)
            .basic_auth(self.key.expose(), Some(self.secret.expose()))
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(transport)?;
        match status {
            StatusCode::TOO_MANY_REQUESTS => return Err(ApiError::Throttled { retry_after }),
            StatusCode::UNAUTHORIZED => return Err(ApiError::Unauthorized(message_of(&bytes))),
            StatusCode::FORBIDDEN => {
                return Err(ApiError::Forbidden {
                    path: String::new(),
                    message: message_of(&bytes),
                })
            }
            s if s.is_server_error() => return Err(ApiError::Server { status: s.as_u16() }),
            s if !s.is_success() => {
                return Err(ApiError::Refused {
                    status: s.as_u16(),
                    message: message_of(&bytes),
                })
            }
            _ => {}
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::Payload(format!(
                "not the JSON expected ({e}); is `url` the OPNsense address?"
            ))
        })
    }

    /// Every row of a search, a page at a time.
    async fn search<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiError> {
        let mut rows = Vec::new();
        for current in 1.. {
            let query = [
                ("current", current.to_string()),
                ("rowCount", PAGE.to_string()),
            ];
            let page: Page<T> = self.call(Method::GET, path, &query, None).await?;
            let n = page.rows.len();
            rows.extend(page.rows);
            if n < PAGE || rows.len() >= page.total {
                break;
            }
        }
        Ok(rows)
    }

    pub async fn servers(&self) -> Result<Vec<ServerRow>, ApiError> {
        self.search("wireguard/server/search_server").await
    }

    pub async fn clients(&self) -> Result<Vec<ClientRow>, ApiError> {
        self.search("wireguard/client/search_client").await
    }

    /// Create or update the peer with this uuid (OPNsense's `set` is an
    /// upsert for a well-formed uuid: a retry after a lost answer finds
    /// its own peer, not a duplicate).
    pub async fn set_client(&self, uuid: &str, client: &ClientBody<'_>) -> Result<(), ApiError> {
        let body = serde_json::json!({ "client": client });
        let answer: Value = self
            .call(
                Method::POST,
                &format!("wireguard/client/set_client/{uuid}"),
                &[],
                Some(&body),
            )
            .await?;
        match result_of(&answer) {
            "saved" => Ok(()),
            _ => Err(validation_or_failed(&answer)),
        }
    }

    /// Delete a peer; one that is gone already counts as deleted.
    pub async fn del_client(&self, uuid: &str) -> Result<(), ApiError> {
        let answer: Value = self
            .call(
                Method::POST,
                &format!("wireguard/client/del_client/{uuid}"),
                &[],
                Some(&serde_json::json!({})),
            )
            .await?;
        match result_of(&answer) {
            "deleted" | "not found" => Ok(()),
            _ => Err(validation_or_failed(&answer)),
        }
    }

    /// Make the saved configuration live (writes the instances' files and
    /// reloads them).
    pub async fn reconfigure(&self) -> Result<(), ApiError> {
        let answer: Value = self
            .call(
                Method::POST,
                "wireguard/service/reconfigure",
                &[],
                Some(&serde_json::json!({})),
            )
            .await?;
        match result_of(&answer) {
            "ok" => Ok(()),
            _ => Err(validation_or_failed(&answer)),
        }
    }
}

fn result_of(answer: &Value) -> &str {
    answer.get("result").and_then(Value::as_str).unwrap_or("")
}

/// `{"result": "failed", "validations": {"client.pubkey": "…"}}` as
/// `pubkey: …`; other answers by their `result`.
fn validation_or_failed(answer: &Value) -> ApiError {
    match answer.get("validations").and_then(Value::as_object) {
        Some(fields) if !fields.is_empty() => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(field, message)| {
                    let field = field.rsplit('.').next().unwrap_or(field);
                    let text = match message {
                        Value::Array(items) => items
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" "),
                        other => other.as_str().unwrap_or_default().to_string(),
                    };
                    format!("{field}: {text}")
                })
                .collect();
            ApiError::Validation(parts.join("; "))
        }
        _ => ApiError::Failed(result_of(answer).to_string()),
    }
}

fn transport(err: reqwest::Error) -> ApiError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    ApiError::Transport(message)
}

/// The `message` of an error body (`{"status": 401, "message": "…"}`),
/// else the start of the text.
fn message_of(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => ["message", "errorMessage"]
            .iter()
            .find_map(|k| value.get(*k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_string(),
        Err(_) => String::from_utf8_lossy(bytes).chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validations_name_the_field_and_the_message() {
        let answer = serde_json::json!({
            "result": "failed",
            "validations": {"client.pubkey": "Public keys should be unique."}
        });
        assert_eq!(
            validation_or_failed(&answer).to_string(),
            "pubkey: Public keys should be unique."
        );
        let answer = serde_json::json!({"result": "failed"});
        assert_eq!(
            validation_or_failed(&answer).to_string(),
            "OPNsense answered \"failed\""
        );
        assert_eq!(
            message_of(br#"{"status":401,"message":"Authentication Failed"}"#),
            "Authentication Failed"
        );
    }

    #[test]
    fn errors_are_classified_once() {
        assert!(TargetError::from(ApiError::Server { status: 502 }).is_transient());
        assert!(!TargetError::from(ApiError::Validation("x".into())).is_transient());
        assert!(!TargetError::from(ApiError::Unauthorized("x".into())).is_transient());
    }

    #[test]
    fn a_row_without_psk_prints_none_and_with_psk_never_the_key() {
        let row = ClientRow {
            psk: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw==".into(),
            ..ClientRow::default()
        };
        assert!(!format!("{row:?}").contains("c2Vj"));
    }
}
