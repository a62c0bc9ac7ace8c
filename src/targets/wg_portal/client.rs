//! A typed client of wg-portal's REST API v1: the user identifier and API
//! token as HTTP Basic, requests gated, retried and classified, and one
//! method per call. What each call answers is in docs/wg-portal.md.

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

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach wg-portal: {0}")]
    Transport(String),
    #[error("wg-portal is throttling requests (HTTP 429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("wg-portal answered HTTP {status}")]
    Server { status: u16 },
    #[error("wg-portal refused the user and API token (HTTP 401: {0})")]
    Unauthorized(String),
    #[error("wg-portal: the user is not an admin (HTTP 403: {0})")]
    Forbidden(String),
    #[error("wg-portal: not found (HTTP 404: {0})")]
    NotFound(String),
    /// 409: a peer with that public key exists.
    #[error("wg-portal refused it (HTTP 409): {0}")]
    Conflict(String),
    /// 400 and other refusals, with wg-portal's message.
    #[error("wg-portal refused it (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("wg-portal sent an answer homebase cannot read: {0}")]
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

/// `ConfigOption`: a value and whether a peer may override it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigOption<T> {
    #[serde(rename = "Value")]
    pub value: T,
    #[serde(rename = "Overridable", default)]
    pub overridable: bool,
}

/// An interface as `GET /interface/by-id/ID` answers (its private key is in
/// the answer too; it is not read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Interface {
    pub identifier: String,
    pub public_key: String,
    pub listen_port: u16,
    pub addresses: Vec<String>,
    pub peer_def_endpoint: String,
    #[serde(rename = "PeerDefAllowedIPs")]
    pub peer_def_allowed_ips: Vec<String>,
    pub disabled: bool,
}

/// A peer as wg-portal v1 lists it, and as homebase sends it (PUT replaces
/// the whole peer). `PrivateKey` is never sent by homebase.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Peer {
    pub identifier: String,
    pub display_name: String,
    pub user_identifier: String,
    pub interface_identifier: String,
    pub disabled: bool,
    pub disabled_reason: String,
    pub notes: String,
    #[serde(rename = "AllowedIPs")]
    pub allowed_ips: ConfigOption<Vec<String>>,
    #[serde(rename = "ExtraAllowedIPs")]
    pub extra_allowed_ips: Vec<String>,
    pub preshared_key: String,
    #[serde(skip_serializing)]
    pub private_key: String,
    pub public_key: String,
    pub mode: String,
    pub addresses: Vec<String>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("identifier", &self.identifier)
            .field("display_name", &self.display_name)
            .field("interface", &self.interface_identifier)
            .field("addresses", &self.addresses)
            .field("has_psk", &!self.preshared_key.is_empty())
            .finish()
    }
}

impl Peer {
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        self.addresses
            .iter()
            .filter_map(|n| {
                n.parse::<ipnet::IpNet>()
                    .ok()
                    .or_else(|| n.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            })
            .collect()
    }
}

pub struct Client {
    http: reqwest::Client,
    /// `<url>/api/v1/`
    api: Url,
    user: String,
    token: Secret,
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    trace: Trace,
}

impl Client {
    pub fn new(
        http: reqwest::Client,
        base: &Url,
        user: &str,
        token: Secret,
        limiter: Arc<Limiter>,
    ) -> Client {
        let mut api = base.clone();
        api.set_path(&format!("{}/api/v1/", base.path().trim_end_matches('/')));
        Client {
            http,
            api,
            user: user.to_string(),
            token,
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

    /// `path` segments below `/api/v1/`, each escaped (keys hold `/` and `+`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// One call, tried again on transport trouble, 429 and 5xx. Every call
    /// is safe to repeat: a create that lost its answer is found by
    /// `create_peer` as a 409 on the retry.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<Vec<u8>, ApiError> {
        let url = self.url(segments);
        let mut n = 1;
        loop {
            let permit = self.limiter.acquire().await;
            let started = self.trace.start();
            let result = self.exchange(method.clone(), url.clone(), body).await;
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

    async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut request = self
            .http
            .request(method, url)
            .basic_auth(&self.user, Some(self.token.expose()))
            .header(ACCEPT, "application/json");
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
        let bytes = response.bytes().await.map_err(transport)?.to_vec();
        let message = || message_of(&bytes);
        match status {
            s if s.is_success() => Ok(bytes),
            StatusCode::TOO_MANY_REQUESTS => Err(ApiError::Throttled { retry_after }),
            StatusCode::UNAUTHORIZED => Err(ApiError::Unauthorized(message())),
            StatusCode::FORBIDDEN => Err(ApiError::Forbidden(message())),
            StatusCode::NOT_FOUND => Err(ApiError::NotFound(message())),
            StatusCode::CONFLICT => Err(ApiError::Conflict(message())),
            s if s.is_server_error() => Err(ApiError::Server { status: s.as_u16() }),
            s => Err(ApiError::Refused {
                status: s.as_u16(),
                message: message(),
            }),
        }
    }

    async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ApiError> {
        let bytes = self.call(Method::GET, segments, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::Payload(format!(
                "not the JSON expected ({e}); is `url` the wg-portal address?"
            ))
        })
    }

    pub async fn interface(&self, id: &str) -> Result<Interface, ApiError> {
        self.get(&["interface", "by-id", id]).await
    }

    /// Every peer of an interface (v1 lists them in one answer).
    pub async fn peers(&self, interface: &str) -> Result<Vec<Peer>, ApiError> {
        self.get(&["peer", "by-interface", interface]).await
    }

    pub async fn peer(&self, key: &str) -> Result<Peer, ApiError> {
        self.get(&["peer", "by-id", key]).await
    }

    pub async fn create_peer(&self, peer: &Peer) -> Result<(), ApiError> {
        let body = serde_json::to_value(peer).map_err(|e| ApiError::Payload(e.to_string()))?;
        self.call(Method::POST, &["peer", "new"], Some(&body))
            .await
            .map(drop)
    }

    /// Replace the peer `key`; a new `PublicKey` re-identifies it.
    pub async fn update_peer(&self, key: &str, peer: &Peer) -> Result<(), ApiError> {
        let body = serde_json::to_value(peer).map_err(|e| ApiError::Payload(e.to_string()))?;
        self.call(Method::PUT, &["peer", "by-id", key], Some(&body))
            .await
            .map(drop)
    }

    /// Delete a peer; one that is gone already counts as deleted.
    pub async fn delete_peer(&self, key: &str) -> Result<(), ApiError> {
        match self
            .call(Method::DELETE, &["peer", "by-id", key], None)
            .await
        {
            Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
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

/// wg-portal's error body: `{"Code": 400, "Message": "…"}`.
fn message_of(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value
            .get("Message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        Err(_) => String::from_utf8_lossy(bytes).chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_key_is_never_sent_and_never_printed() {
        let peer = Peer {
            private_key: "cHJpdmF0ZQ==".into(),
            preshared_key: "c2hhcmVk".into(),
            ..Peer::default()
        };
        let sent = serde_json::to_string(&peer).unwrap();
        assert!(!sent.contains("PrivateKey"), "{sent}");
        assert!(sent.contains("\"AllowedIPs\":{\"Value\":[]"), "{sent}");
        let shown = format!("{peer:?}");
        assert!(
            !shown.contains("cHJp") && !shown.contains("c2hh"),
            "{shown}"
        );
        assert_eq!(
            message_of(br#"{"Code":409,"Message":"peer x already exists: duplicate entry"}"#),
            "peer x already exists: duplicate entry"
        );
    }

    #[test]
    fn keys_are_one_escaped_segment() {
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap();
        let client = Client::new(
            http,
            &Url::parse("https://p.example/portal/").unwrap(),
            "admin",
            Secret::new("t"),
            Limiter::new(4, false),
        );
        let url = client.url(&["peer", "by-id", "a/b+c="]);
        assert_eq!(url.path(), "/portal/api/v1/peer/by-id/a%2Fb+c=");
    }
}
