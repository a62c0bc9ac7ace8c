//! The typed SCIM client: one request helper that authenticates, retries
//! transient failures a few times, and turns every response into either a
//! typed body or a [`ScimError`] that says whether trying again may help.
//!
//! The bearer token lives in a sensitive header value: never printed, never
//! part of an error message. Request bodies (which may hold a password) are
//! never printed either.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Notify;

use super::model::ErrorBody;
use crate::adaptive::{Limiter, Outcome};
use crate::apply::retry::RetryPolicy;
use crate::targets::TargetError;

const SCIM_JSON: &str = "application/scim+json";

/// How the client talks to one service provider.
pub struct ClientOptions<'a> {
    pub url: &'a str,
    pub token: crate::targets::common::Secret,
    pub ca_file: Option<&'a Path>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub tries: u32,
    /// The gate every request passes: the target's requests in flight.
    pub limiter: Arc<Limiter>,
    /// `-vv` lines per request.
    pub trace: crate::targets::common::Trace,
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
    tries: u32,
    policy: RetryPolicy,
    /// Requests now pausing before their next try; `changed` is told when
    /// that number changes.
    pausing: Arc<AtomicUsize>,
    changed: Arc<Notify>,
    limiter: Arc<Limiter>,
    trace: crate::targets::common::Trace,
}

/// A request: method, path segments below the base URL, query, JSON body.
pub struct Call {
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    if_match: Option<String>,
}

impl Call {
    pub fn new(method: Method, segments: &[&str]) -> Call {
        Call {
            method,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
            if_match: None,
        }
    }

    pub fn get(segments: &[&str]) -> Call {
        Call::new(Method::GET, segments)
    }

    pub fn query(mut self, key: &'static str, value: impl Into<String>) -> Call {
        self.query.push((key, value.into()));
        self
    }

    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Call {
        // Our own types always serialise; an empty body would be refused by
        // the server with a clear message if that ever changed.
        self.body = Some(serde_json::to_vec(body).unwrap_or_default());
        self
    }

    pub fn if_match(mut self, etag: Option<&str>) -> Call {
        self.if_match = etag.map(str::to_string);
        self
    }

    /// `PATCH /Users/ID`, as messages show it (no query, no body).
    fn describe(&self) -> String {
        format!("{} /{}", self.method, self.segments.join("/"))
    }
}

/// A successful response.
#[derive(Debug)]
pub struct Reply<T> {
    pub status: StatusCode,
    pub etag: Option<String>,
    /// `None` when the server sent no body (PATCH answers 204, DELETE too).
    pub body: Option<T>,
}

/// Why a request failed.
#[derive(Debug, Clone)]
pub enum ScimError {
    /// No usable response: refused or dropped connection, timeout, TLS.
    Transport { request: String, message: String },
    /// The server answered with an error status.
    Status {
        request: String,
        status: u16,
        scim_type: Option<String>,
        detail: Option<String>,
        retry_after: Option<Duration>,
    },
    /// A success status with a body that is not what SCIM says it is.
    Payload { request: String, message: String },
}

impl ScimError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ScimError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn scim_type(&self) -> Option<&str> {
        match self {
            ScimError::Status { scim_type, .. } => scim_type.as_deref(),
            _ => None,
        }
    }

    /// Worth trying again: no response, 408, 429 or a 5xx other than "not
    /// implemented" (501) and "version not supported" (505). Everything
    /// else is permanent: retried, it would be refused again, and it says
    /// nothing about load (the adaptive limit only learns from transient
    /// failures).
    pub fn is_transient(&self) -> bool {
        match self {
            ScimError::Transport { .. } => true,
            ScimError::Status { status, .. } => is_transient_status(*status),
            ScimError::Payload { .. } => false,
        }
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            ScimError::Status { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ScimError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505)
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScimError::Transport { request, message } => write!(f, "{request}: {message}"),
            ScimError::Status {
                request,
                status,
                scim_type,
                detail,
                ..
            } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "{request}: {status} {reason}")?;
                if let Some(scim_type) = scim_type {
                    write!(f, " ({scim_type})")?;
                }
                if let Some(detail) = detail {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            ScimError::Payload { request, message } => {
                write!(f, "{request}: unexpected response: {message}")
            }
        }
    }
}

impl std::error::Error for ScimError {}

impl From<ScimError> for TargetError {
    fn from(err: ScimError) -> TargetError {
        if err.is_transient() {
            TargetError::Transient {
                retry_after: err.retry_after(),
                message: err.to_string(),
            }
        } else {
            TargetError::permanent(err.to_string())
        }
    }
}

impl Client {
    /// Build the client. Errors are configuration errors (bad URL, CA file).
    pub fn new(options: ClientOptions<'_>) -> Result<Client, String> {
        let base = check_url(options.url)?;
        let loopback = is_loopback(&base);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", options.token.expose()))
            .map_err(|_| "the token holds characters an HTTP header cannot carry".to_string())?;
        auth.set_sensitive(true);
        let mut tls = crate::targets::common::tls::client_config(options.ca_file)?;
        // HTTP/1.1 only (keep-alive; SCIM needs nothing more).
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("homebase/", env!("CARGO_PKG_VERSION")));
        if loopback {
            // A proxy from the environment never stands between us and a local server.
            builder = builder.no_proxy();
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", root_cause(&e)))?;
        Ok(Client {
            http,
            base,
            auth,
            tries: options.tries.max(1),
            policy: RetryPolicy::from_env(),
            pausing: Arc::new(AtomicUsize::new(0)),
            changed: Arc::new(Notify::new()),
            limiter: options.limiter,
            trace: options.trace,
        })
    }

    /// How many requests pause before a retry now (for batchers, which
    /// need not wait for them), and the notification of its changes.
    pub fn pausing(&self) -> (Arc<AtomicUsize>, Arc<Notify>) {
        (self.pausing.clone(), self.changed.clone())
    }

    /// Send a request, retrying transient failures up to the configured
    /// number of tries (honouring `Retry-After`).
    pub async fn send<T: DeserializeOwned>(&self, call: &Call) -> Result<Reply<T>, ScimError> {
        let mut n = 1;
        loop {
            match self.send_once(call).await {
                Err(err) if err.is_transient() && n < self.tries => {
                    self.pausing.fetch_add(1, Ordering::SeqCst);
                    self.changed.notify_waiters();
                    tokio::time::sleep(self.policy.delay(n, err.retry_after())).await;
                    self.pausing.fetch_sub(1, Ordering::SeqCst);
                    self.changed.notify_waiters();
                    n += 1;
                }
                result => return result,
            }
        }
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// One try, no retries (the caller decides). Waits for room under the
    /// target's limit; how the try went teaches the limit.
    pub async fn send_once<T: DeserializeOwned>(&self, call: &Call) -> Result<Reply<T>, ScimError> {
        let permit = self.limiter.acquire().await;
        let started = self.trace.start();
        let result = self.exchange(call).await;
        if self.trace.is_on() {
            let answer = match &result {
                Ok(reply) => reply.status.to_string(),
                Err(err) => err.to_string(),
            };
            self.trace.done(call.describe(), answer, started);
        }
        permit.finish(match &result {
            Err(err) if err.is_transient() => Outcome::Overload,
            _ => Outcome::Answered,
        });
        result
    }

    async fn exchange<T: DeserializeOwned>(&self, call: &Call) -> Result<Reply<T>, ScimError> {
        let request = call.describe();
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&call.segments);
        }
        if !call.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in &call.query {
                pairs.append_pair(key, value);
            }
        }
        let mut builder = self
            .http
            .request(call.method.clone(), url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, SCIM_JSON);
        if let Some(body) = &call.body {
            builder = builder.header(CONTENT_TYPE, SCIM_JSON).body(body.clone());
        }
        if let Some(etag) = &call.if_match {
            builder = builder.header(IF_MATCH, etag);
        }
        let response = builder.send().await.map_err(|e| ScimError::Transport {
            request: request.clone(),
            message: transport_message(&e),
        })?;
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(ETAG);
        let retry_after = header(RETRY_AFTER).and_then(|v| parse_retry_after(&v));
        let bytes = response.bytes().await.map_err(|e| ScimError::Transport {
            request: request.clone(),
            message: transport_message(&e),
        })?;
        if !status.is_success() {
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            let detail = body.detail.or_else(|| {
                let text = String::from_utf8_lossy(&bytes);
                let text = text.trim();
                (!text.is_empty() && text.len() <= 300 && !text.starts_with('<'))
                    .then(|| text.to_string())
            });
            return Err(ScimError::Status {
                request,
                status: status.as_u16(),
                scim_type: body.scim_type,
                detail,
                retry_after,
            });
        }
        let body = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            Some(
                serde_json::from_slice(&bytes).map_err(|e| ScimError::Payload {
                    request: request.clone(),
                    message: e.to_string(),
                })?,
            )
        };
        Ok(Reply { status, etag, body })
    }
}

/// What went wrong on the wire, in a few words (the innermost cause).
fn transport_message(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        format!("cannot connect: {}", root_cause(err))
    } else {
        format!("connection failed: {}", root_cause(err))
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// `Retry-After`: delay seconds or an HTTP date (RFC 9110 §10.2.3). A date
/// in the past means "now".
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
        .or_else(|| {
            // The obsolete forms HTTP still accepts: RFC 850 and asctime.
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
                .map(|d| d.and_utc())
        })?;
    let wait = when - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// The service's base URL: https, or http on the loopback only (the
/// token would travel in clear).
pub fn check_url(url: &str) -> Result<Url, String> {
    let base = Url::parse(url.trim_end_matches('/')).map_err(|e| format!("url \"{url}\": {e}"))?;
    match base.scheme() {
        "https" => {}
        "http" if is_loopback(&base) => {}
        "http" => {
            return Err(format!(
                "url \"{url}\": plain http would send the token in clear; use https (http is accepted for 127.0.0.1 and localhost only)"
            ))
        }
        other => return Err(format!("url \"{url}\": unsupported scheme {other}")),
    }
    if base.cannot_be_a_base() || base.query().is_some() {
        return Err(format!("url \"{url}\" is not a base URL"));
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(120))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-3"), None);
    }

    #[test]
    fn transient_and_permanent_statuses() {
        let err = |status| ScimError::Status {
            request: "POST /Users".into(),
            status,
            scim_type: Some("uniqueness".into()),
            detail: Some("taken".into()),
            retry_after: Some(Duration::from_secs(2)),
        };
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(err(s).is_transient(), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 412, 413, 501, 505] {
            assert!(!err(s).is_transient(), "{s}");
        }
        assert_eq!(
            err(409).to_string(),
            "POST /Users: 409 Conflict (uniqueness): taken"
        );
        match TargetError::from(err(429)) {
            TargetError::Transient { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)))
            }
            other => panic!("{other:?}"),
        }
        assert!(!TargetError::from(err(400)).is_transient());
    }

    fn options(url: &str) -> ClientOptions<'_> {
        ClientOptions {
            url,
            token: crate::targets::common::Secret::new("t"),
            ca_file: None,
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            tries: 1,
            limiter: Limiter::new(4, false),
            trace: crate::targets::common::Trace::off(),
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(Client::new(options("http://127.0.0.1:8099/v2")).is_ok());
        assert!(Client::new(options("http://localhost/scim/v2/")).is_ok());
        assert!(Client::new(options("https://idp.example.org/scim/v2")).is_ok());
        let err = Client::new(options("http://idp.example.org/scim/v2"))
            .err()
            .unwrap();
        assert!(err.contains("use https"), "{err}");
        assert!(Client::new(options("ftp://idp.example.org/")).is_err());
        assert!(Client::new(options("not a url")).is_err());
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let mut o = options("https://idp.example.org/v2");
        let path = std::path::PathBuf::from("/nonexistent/ca.pem");
        o.ca_file = Some(&path);
        let err = Client::new(o).err().unwrap();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
