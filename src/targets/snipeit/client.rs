//! A typed client of Snipe-IT's REST API v1: one request helper that paces,
//! authenticates and classifies every answer, and one method per call.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::model::{
    messages_text, Checkout, Envelope, Hardware, ModelRow, Named, NewUser, Page, StatusRow, User,
};
use super::pace::{Pace, Turn, Wait};
use crate::adaptive::{Limiter, Outcome};
use crate::targets::common::Trace;
use crate::targets::TargetError;

/// Snipe-IT returns at most this many rows per page (`MAX_RESULTS`).
pub const PAGE: u64 = 500;

/// How many 429s in a row one request waits out before it gives up (each
/// hold is at most [`super::pace::MAX_HOLD`]).
const THROTTLED_TRIES: u32 = 10;

/// How a call failed. Transport trouble, 429 and 5xx are worth another try.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach Snipe-IT: {0}")]
    Transport(String),
    #[error("Snipe-IT is throttling requests (HTTP 429)")]
    Throttled { retry_after: Option<Duration> },
    #[error("Snipe-IT answered HTTP {status}")]
    Server { status: u16 },
    #[error("Snipe-IT refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// HTTP 200 with `"status": "error"`: the request was understood and refused.
    #[error("Snipe-IT: {0}")]
    Api(String),
    #[error("Snipe-IT sent an answer homebase cannot read: {0}")]
    Payload(String),
}

impl From<ApiError> for TargetError {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        match err {
            ApiError::Transport(_) | ApiError::Server { .. } => TargetError::transient(message),
            ApiError::Throttled { retry_after } => TargetError::Transient {
                message,
                retry_after,
            },
            ApiError::Refused { .. } | ApiError::Api(_) | ApiError::Payload(_) => {
                TargetError::permanent(message)
            }
        }
    }
}

/// The API token; never printed.
pub use crate::targets::common::Secret as Token;

pub struct Client {
    http: reqwest::Client,
    /// `<url>/api/v1/`
    api: Url,
    token: Token,
    pace: Arc<Pace>,
    limiter: Arc<Limiter>,
    trace: Trace,
}

impl Client {
    pub fn new(
        http: reqwest::Client,
        base: &Url,
        token: Token,
        pace: Arc<Pace>,
        limiter: Arc<Limiter>,
    ) -> Client {
        let mut api = base.clone();
        let path = format!("{}/api/v1/", base.path().trim_end_matches('/'));
        api.set_path(&path);
        Client {
            http,
            api,
            token,
            pace,
            limiter,
            trace: Trace::off(),
        }
    }

    /// Print a `-vv` line per request.
    pub fn with_trace(mut self, trace: Trace) -> Client {
        self.trace = trace;
        self
    }

    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// One request: wait for its turn (the pace of the server's rate limit,
    /// then room under the target's limit of requests in flight), send it,
    /// read the rate-limit headers, and turn the answer into `T` or an
    /// [`ApiError`]. A 429 holds the target (see [`Pace::throttled`]) and
    /// the request goes again after it, reads and writes alike: a throttled
    /// request was not carried out.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<T, ApiError> {
        let url = self
            .api
            .join(path)
            .map_err(|e| ApiError::Payload(format!("bad path {path}: {e}")))?;
        let mut throttled = 0;
        loop {
            let turn = self.pace.acquire().await;
            let permit = self.limiter.acquire().await;
            let started = self.trace.start();
            let result = self
                .exchange(method.clone(), url.clone(), query, body.clone(), turn)
                .await;
            if self.trace.is_on() {
                let answer = match &result {
                    Ok(_) => "ok".to_string(),
                    Err(err) => err.to_string(),
                };
                let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let request = if query.is_empty() {
                    format!("{method} /api/v1/{path}")
                } else {
                    format!("{method} /api/v1/{path}?{}", query.join("&"))
                };
                self.trace.done(request, answer, started);
            }
            permit.finish(match &result {
                Err(
                    ApiError::Transport(_) | ApiError::Throttled { .. } | ApiError::Server { .. },
                ) => Outcome::Overload,
                _ => Outcome::Answered,
            });
            self.limiter.set_note(self.pace.note());
            match result {
                Err(ApiError::Throttled { .. }) if throttled < THROTTLED_TRIES => throttled += 1,
                Err(ApiError::Refused {
                    status: 403,
                    message,
                    ..
                }) => {
                    return Err(ApiError::Refused {
                        status: 403,
                        message: forbidden(&method, path, &message),
                    })
                }
                other => return other,
            }
        }
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        query: &[(&str, String)],
        body: Option<Value>,
        turn: Turn,
    ) -> Result<T, ApiError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose())
            .header(ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let headers = response.headers().clone();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = match (retry_after(&headers), reset_in(&headers)) {
                (Some(after), _) => Wait::RetryAfter(after),
                (None, Some(reset)) => Wait::Reset(reset),
                (None, None) => Wait::Unsaid,
            };
            let (hold, _) = self.pace.throttled(wait);
            return Err(ApiError::Throttled {
                retry_after: Some(hold),
            });
        }
        self.pace.observe(
            turn,
            header_number(&headers, "x-ratelimit-limit"),
            header_number(&headers, "x-ratelimit-remaining"),
        );
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_server_error() {
            return Err(ApiError::Server {
                status: status.as_u16(),
            });
        }
        if status.is_client_error() {
            return Err(ApiError::Refused {
                status: status.as_u16(),
                message: message_of(&bytes),
            });
        }
        if !status.is_success() {
            return Err(ApiError::Payload(format!("HTTP {status}")));
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::Payload(format!("not JSON ({e}); is `url` the Snipe-IT address?"))
        })?;
        if value.get("status").and_then(Value::as_str) == Some("error") {
            let messages = value.get("messages").unwrap_or(&Value::Null);
            return Err(ApiError::Api(messages_text(messages)));
        }
        serde_json::from_value(value).map_err(|e| ApiError::Payload(e.to_string()))
    }

    /// Every row of a list, `PAGE` at a time, in id order (stable while paging).
    async fn all<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<T>, ApiError> {
        let mut rows = Vec::new();
        let mut offset = 0u64;
        loop {
            let mut query: Vec<(&str, String)> = filters.to_vec();
            query.extend([
                ("limit", PAGE.to_string()),
                ("offset", offset.to_string()),
                ("sort", "id".to_string()),
                ("order", "asc".to_string()),
            ]);
            let page: Page<T> = self.call(Method::GET, path, &query, None).await?;
            let n = page.rows.len() as u64;
            rows.extend(page.rows);
            offset += n;
            if n == 0 || offset >= page.total {
                return Ok(rows);
            }
        }
    }

    pub async fn categories(&self) -> Result<Vec<Named>, ApiError> {
        self.all("categories", &[]).await
    }

    pub async fn models(&self) -> Result<Vec<ModelRow>, ApiError> {
        self.all("models", &[]).await
    }

    pub async fn status_labels(&self) -> Result<Vec<StatusRow>, ApiError> {
        self.all("statuslabels", &[]).await
    }

    /// Assets filtered by `category_id` or `model_id`.
    pub async fn hardware(&self, filter: (&str, u64)) -> Result<Vec<Hardware>, ApiError> {
        self.all("hardware", &[(filter.0, filter.1.to_string())])
            .await
    }

    pub async fn asset(&self, id: u64) -> Result<Hardware, ApiError> {
        self.call(Method::GET, &format!("hardware/{id}"), &[], None)
            .await
    }

    pub async fn users(&self) -> Result<Vec<User>, ApiError> {
        self.all("users", &[]).await
    }

    /// Users with `field` (`username`, `employee_num`) equal to `value`.
    pub async fn users_where(&self, field: &str, value: &str) -> Result<Vec<User>, ApiError> {
        let query = [(field, value.to_string()), ("limit", PAGE.to_string())];
        let page: Page<User> = self.call(Method::GET, "users", &query, None).await?;
        Ok(page.rows)
    }

    pub async fn create_user(&self, user: &NewUser<'_>) -> Result<User, ApiError> {
        let answer: Envelope<User> = self
            .call(Method::POST, "users", &[], Some(json(user)?))
            .await?;
        answer.payload.ok_or_else(|| {
            ApiError::Payload(format!(
                "user created without a payload ({})",
                messages_text(&answer.messages)
            ))
        })
    }

    pub async fn set_employee_num(&self, id: u64, employee_num: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "employee_num": employee_num });
        let _: Envelope<Value> = self
            .call(Method::PATCH, &format!("users/{id}"), &[], Some(body))
            .await?;
        Ok(())
    }

    pub async fn checkout(&self, asset: u64, body: &Checkout) -> Result<(), ApiError> {
        let answer: Envelope<Value> = self
            .call(
                Method::POST,
                &format!("hardware/{asset}/checkout"),
                &[],
                Some(json(body)?),
            )
            .await?;
        expect_success(answer)
    }

    pub async fn checkin(&self, asset: u64) -> Result<(), ApiError> {
        let body = serde_json::json!({ "note": "checked in by homebase" });
        let answer: Envelope<Value> = self
            .call(
                Method::POST,
                &format!("hardware/{asset}/checkin"),
                &[],
                Some(body),
            )
            .await?;
        expect_success(answer)
    }
}

fn expect_success(answer: Envelope<Value>) -> Result<(), ApiError> {
    if answer.status == "success" {
        Ok(())
    } else {
        Err(ApiError::Api(messages_text(&answer.messages)))
    }
}

fn json<T: Serialize>(body: &T) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError::Payload(e.to_string()))
}

fn transport(err: reqwest::Error) -> ApiError {
    // The chain says what went wrong (refused, timed out, certificate …).
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    ApiError::Transport(message)
}

fn header_number(headers: &HeaderMap, name: &str) -> Option<u32> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Retry-After`: seconds, or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// `X-RateLimit-Reset`: the Unix time the window ends, as a wait from now.
pub fn reset_in(headers: &HeaderMap) -> Option<Duration> {
    let at: i64 = headers
        .get("x-ratelimit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let now = chrono::Utc::now().timestamp();
    Some(Duration::from_secs(at.saturating_sub(now).max(0) as u64))
}

/// The Snipe-IT permission a request needs, by what it does.
fn permission(method: &Method, path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.split('/').collect();
    Some(match (method.as_str(), parts.as_slice()) {
        ("GET", ["categories", ..]) => "Categories: View",
        ("GET", ["models", ..]) => "Asset Models: View",
        ("GET", ["hardware", ..]) => "Assets: View",
        ("GET", ["users", ..]) => "Users: View",
        ("GET", ["statuslabels", ..]) => "Status Labels: View",
        ("POST", ["users"]) => "Users: Create",
        ("PATCH" | "PUT", ["users", ..]) => "Users: Edit",
        ("POST", ["hardware", _, "checkout"]) => "Assets: Check Out",
        ("POST", ["hardware", _, "checkin"]) => "Assets: Check In",
        _ => return None,
    })
}

/// A 403: which permission the API user lacks, and what the server said
/// when it said more than the status.
fn forbidden(method: &Method, path: &str, message: &str) -> String {
    let said = message.trim();
    let said = (!said.is_empty() && said != "403").then_some(said);
    match (permission(method, path), said) {
        (Some(p), Some(said)) => format!("the API user lacks the permission \"{p}\" ({said})"),
        (Some(p), None) => format!("the API user lacks the permission \"{p}\""),
        (None, Some(said)) => said.to_string(),
        (None, None) => "forbidden".to_string(),
    }
}

/// The message of an error body: `messages`, `message` or `error`.
fn message_of(bytes: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        let text = String::from_utf8_lossy(bytes);
        return text.chars().take(200).collect();
    };
    ["messages", "message", "error"]
        .iter()
        .find_map(|key| value.get(*key).filter(|v| !v.is_null()))
        .map(messages_text)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("17"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(17)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn errors_are_classified_once() {
        let t: TargetError = ApiError::Throttled {
            retry_after: Some(Duration::from_secs(5)),
        }
        .into();
        assert!(matches!(
            t,
            TargetError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(5)
        ));
        assert!(TargetError::from(ApiError::Server { status: 503 }).is_transient());
        assert!(TargetError::from(ApiError::Transport("reset".into())).is_transient());
        let refused = TargetError::from(ApiError::Api(
            "That asset is not available for checkout!".into(),
        ));
        assert!(!refused.is_transient());
        assert_eq!(
            refused.to_string(),
            "Snipe-IT: That asset is not available for checkout!"
        );
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            message_of(br#"{"error":"Unauthorized or unauthenticated."}"#),
            "Unauthorized or unauthenticated."
        );
        assert_eq!(
            message_of(br#"{"status":"error","messages":"Nope &amp; no","payload":null}"#),
            "Nope & no"
        );
    }

    #[test]
    fn api_path_below_the_base() {
        let pace = Arc::new(Pace::new(120));
        for base in [
            "https://a.example/",
            "https://a.example",
            "https://a.example/snipe/",
        ] {
            let url = Url::parse(base).unwrap();
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
                &url,
                Token::new(""),
                pace.clone(),
                Limiter::new(4, false),
            );
            assert!(client.api.as_str().ends_with("/api/v1/"), "{}", client.api);
            assert_eq!(
                client
                    .api
                    .join("hardware")
                    .unwrap()
                    .path()
                    .matches("api/v1")
                    .count(),
                1
            );
        }
    }
}
