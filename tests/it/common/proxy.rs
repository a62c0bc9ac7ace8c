//! A fault-injecting HTTP/1.1 proxy for tests and the benchmark: sits in
//! front of a real server and answers some requests itself — 503, 429 with
//! `Retry-After`, dropped connections (before or after the server saw the
//! request), stalls, added latency — or refuses everything for a while.
//! It can also answer a chosen PATCH 501 (a server whose PATCH does not
//! cover an attribute), or drop one kind of PATCH operation and answer 200
//! as if it had been done (a server that silently ignores it).
//! It logs every request (method, path, status, and which attributes a
//! write touched) so tests can count and inspect them, and can record the
//! forwarded requests for a replay.
//!
//! Keep-alive towards the client; one upstream connection per request
//! (`Connection: close`), which suits HTTP/1.0 servers such as scim2-server.
//! Used in-process by the tests and as the `scim-fault-proxy` example binary
//! by `bench/scim.sh`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What goes wrong, and how often. Probabilities are per request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub p503: f64,
    pub p429: f64,
    /// Seconds sent in `Retry-After` with a 429.
    pub retry_after_secs: u64,
    pub p_drop: f64,
    /// How many requests stall (then go through, too late for the client).
    pub stalls: usize,
    /// Every `stall_every`-th request stalls while stalls are left.
    pub stall_every: usize,
    pub stall: Duration,
    /// Added before every request is forwarded.
    pub latency: Duration,
    pub seed: u64,
    /// Deterministic faults for particular requests, checked first.
    pub scripted: Vec<Scripted>,
    /// A span of overload, timed from the first request.
    pub burst: Option<Burst>,
}

/// From `after` the first request on, for `length`: each request answered
/// 503 or 429 (half and half) with probability `p`.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub after: Duration,
    pub length: Duration,
    pub p: f64,
}

/// Answer the next `times` requests that match with `status` instead of
/// forwarding them — or, with status 0, forward them and drop the
/// connection before the response (the server acted; the client never
/// hears of it).
#[derive(Debug, Clone)]
pub struct Scripted {
    pub method: String,
    pub path_prefix: String,
    /// Only requests with at least this many body bytes.
    pub min_body: usize,
    pub status: u16,
    pub times: usize,
    /// Instead of answering `status`: take the PATCH operations of this
    /// kind (`remove`, `replace`, `add`) out of the request, forward the
    /// rest, and answer 200 (with the resource as the server holds it when
    /// nothing is left to forward).
    pub drop_op: Option<String>,
    /// Only PATCH requests with an operation on this attribute path (as
    /// [`Seen::touched`] names it after the colon): a server whose PATCH
    /// covers some attributes and answers 501 for the others.
    pub op_path: Option<String>,
    /// Instead of answering `status`: hold the request for the faults'
    /// `stall`, then forward it (a client that gave up meanwhile never
    /// hears of it, but the server acts on it late).
    pub stall: bool,
}

impl Scripted {
    pub fn new(method: &str, path_prefix: &str, status: u16, times: usize) -> Scripted {
        Scripted {
            method: method.into(),
            path_prefix: path_prefix.into(),
            min_body: 0,
            status,
            times,
            drop_op: None,
            op_path: None,
            stall: false,
        }
    }

    /// Hold the next `times` requests `method` under `path_prefix` for the
    /// faults' `stall` before forwarding them.
    pub fn stalling(method: &str, path_prefix: &str, times: usize) -> Scripted {
        Scripted {
            stall: true,
            ..Scripted::new(method, path_prefix, 200, times)
        }
    }

    /// Answer `status` to every PATCH under `path_prefix` with an operation
    /// on the attribute `op_path`.
    pub fn patch_of(path_prefix: &str, op_path: &str, status: u16) -> Scripted {
        Scripted {
            op_path: Some(op_path.into()),
            ..Scripted::new("PATCH", path_prefix, status, usize::MAX)
        }
    }

    /// Drop the PATCH operations `op` of the next `times` PATCHes under
    /// `path_prefix`, answering 200.
    pub fn dropping(path_prefix: &str, op: &str, times: usize) -> Scripted {
        Scripted {
            drop_op: Some(op.into()),
            ..Scripted::new("PATCH", path_prefix, 200, times)
        }
    }
}

/// One request as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Status sent back; 0 for a dropped connection.
    pub status: u16,
    /// Whether the upstream server received the request.
    pub forwarded: bool,
    /// What a write touched, without values: `op:path` per PATCH operation
    /// (`op:attribute` for each attribute of one without a path), the
    /// top-level attributes of a POST or PUT body.
    pub touched: Vec<String>,
}

struct State {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    rng: Mutex<StdRng>,
    /// Refuse (accept and close) every connection.
    down: AtomicBool,
    /// Go down by itself after this many requests.
    down_after: AtomicUsize,
    requests: AtomicUsize,
    stalls_left: AtomicUsize,
    log: Mutex<Vec<Seen>>,
    log_file: Mutex<Option<std::fs::File>>,
    record: Mutex<Option<std::fs::File>>,
    born: Instant,
    first: std::sync::OnceLock<Instant>,
}

/// A running proxy; stops with its runtime when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<State>,
    _runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Start on a free 127.0.0.1 port, on a runtime of its own.
    pub fn start(upstream: SocketAddr, faults: Faults) -> std::io::Result<Proxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let mut proxy = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            Proxy::on(listener, upstream, faults)
        })?;
        proxy._runtime = Some(runtime);
        Ok(proxy)
    }

    /// Serve on `listener`; call within a tokio runtime.
    pub fn on(
        listener: TcpListener,
        upstream: SocketAddr,
        faults: Faults,
    ) -> std::io::Result<Proxy> {
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            rng: Mutex::new(StdRng::seed_from_u64(faults.seed)),
            stalls_left: AtomicUsize::new(faults.stalls),
            faults: Mutex::new(faults),
            down: AtomicBool::new(false),
            down_after: AtomicUsize::new(usize::MAX),
            requests: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            log_file: Mutex::new(None),
            record: Mutex::new(None),
            born: Instant::now(),
            first: std::sync::OnceLock::new(),
        });
        tokio::spawn(serve(listener, state.clone()));
        Ok(Proxy {
            addr,
            state,
            _runtime: None,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state
            .stalls_left
            .store(faults.stalls, Ordering::SeqCst);
        *self.state.faults.lock().unwrap() = faults;
    }

    /// Refuse every connection (an outage) or serve again.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
        if !down {
            self.state.down_after.store(usize::MAX, Ordering::SeqCst);
        }
    }

    /// Go down once `n` more requests have been seen.
    pub fn go_down_after(&self, n: usize) {
        let now = self.state.requests.load(Ordering::SeqCst);
        self.state.down_after.store(now + n, Ordering::SeqCst);
    }

    /// Every request seen so far, and forget them.
    pub fn take_log(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.state.log.lock().unwrap())
    }

    /// Also write `METHOD TARGET STATUS MILLISECONDS SECONDS` lines to a file:
    /// how long the request took, and when it ended (since the proxy started).
    // Used by the scim-fault-proxy binary of bench/scim.sh, not the tests.
    #[cfg_attr(test, allow(dead_code))]
    pub fn log_to(&self, file: std::fs::File) {
        *self.state.log_file.lock().unwrap() = Some(file);
    }

    /// Record each forwarded request as a JSON line
    /// `{"method", "target", "body", "status", "response"}` (the response
    /// body only for created groups, which a replay needs to map ids).
    #[cfg_attr(test, allow(dead_code))]
    pub fn record_to(&self, file: std::fs::File) {
        *self.state.record.lock().unwrap() = Some(file);
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if state.down.load(Ordering::SeqCst) {
            refuse(stream);
            continue;
        }
        let state = state.clone();
        tokio::spawn(async move {
            let _ = connection(stream, state).await;
        });
    }
}

/// Close at once with a reset, as a dead server's port would.
fn refuse(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

struct Request {
    method: String,
    target: String,
    head: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut head = Vec::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            }
            head.push((name, value));
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Request {
        method,
        target,
        head,
        body,
    }))
}

enum Fate {
    Forward,
    /// Forward without the PATCH operations of this kind; answer 200.
    Drop(String),
    Answer(u16),
    DropBefore,
    DropAfter,
    Stall,
}

impl State {
    fn decide(&self, n: usize, request: &Request) -> (Fate, Duration, Faults) {
        let faults = {
            let mut faults = self.faults.lock().unwrap();
            let path = request.target.split('?').next().unwrap_or_default();
            let hit = faults.scripted.iter_mut().find(|s| {
                s.times > 0
                    && s.method == request.method
                    && path.starts_with(&s.path_prefix)
                    && request.body.len() >= s.min_body
                    && s.op_path.as_ref().is_none_or(|want| {
                        touched(request)
                            .iter()
                            .any(|t| t.split_once(':').is_some_and(|(_, p)| p == want))
                    })
            });
            if let Some(rule) = hit {
                rule.times -= 1;
                let fate = match (&rule.drop_op, rule.status) {
                    (Some(op), _) => Fate::Drop(op.clone()),
                    (None, _) if rule.stall => Fate::Stall,
                    (None, 0) => Fate::DropAfter,
                    (None, status) => Fate::Answer(status),
                };
                return (fate, faults.latency, faults.clone());
            }
            faults.clone()
        };
        if faults.stall_every > 0 && n % faults.stall_every == faults.stall_every - 1 {
            let left = self.stalls_left.load(Ordering::SeqCst);
            if left > 0
                && self
                    .stalls_left
                    .compare_exchange(left, left - 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return (Fate::Stall, faults.latency, faults);
            }
        }
        let roll: f64 = self.rng.lock().unwrap().gen();
        if let Some(burst) = faults.burst {
            let since = self.first.get_or_init(Instant::now).elapsed();
            if since >= burst.after && since < burst.after + burst.length && roll < burst.p {
                let status = if roll < burst.p / 2.0 { 503 } else { 429 };
                return (Fate::Answer(status), faults.latency, faults);
            }
        }
        let fate = if roll < faults.p503 {
            Fate::Answer(503)
        } else if roll < faults.p503 + faults.p429 {
            Fate::Answer(429)
        } else if roll < faults.p503 + faults.p429 + faults.p_drop {
            if self.rng.lock().unwrap().gen_bool(0.5) {
                Fate::DropBefore
            } else {
                Fate::DropAfter
            }
        } else {
            Fate::Forward
        };
        (fate, faults.latency, faults)
    }

    fn note(&self, request: &Request, status: u16, forwarded: bool, started: Instant) {
        let path = request
            .target
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        if let Some(file) = self.log_file.lock().unwrap().as_mut() {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            let at = self.born.elapsed().as_secs_f64();
            let _ = writeln!(
                file,
                "{} {} {status} {ms:.1} {at:.4}",
                request.method, request.target
            );
        }
        self.log.lock().unwrap().push(Seen {
            method: request.method.clone(),
            path,
            status,
            forwarded,
            touched: touched(request),
        });
    }

    fn record(&self, request: &Request, status: u16, response: &[u8]) {
        let mut record = self.record.lock().unwrap();
        let Some(file) = record.as_mut() else {
            return;
        };
        let created_group = request.method == "POST" && request.target.ends_with("/Groups");
        let line = serde_json::json!({
            "method": request.method,
            "target": request.target,
            "body": String::from_utf8_lossy(&request.body),
            "status": status,
            "response": if created_group { String::from_utf8_lossy(response).to_string() } else { String::new() },
        });
        let _ = writeln!(file, "{line}");
    }
}

async fn connection(stream: TcpStream, state: Arc<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await? {
        let started = Instant::now();
        state.first.get_or_init(Instant::now);
        let n = state.requests.fetch_add(1, Ordering::SeqCst);
        if n >= state.down_after.load(Ordering::SeqCst) {
            state.down.store(true, Ordering::SeqCst);
        }
        if state.down.load(Ordering::SeqCst) {
            state.note(&request, 0, false, started);
            refuse(reader.into_inner());
            return Ok(());
        }
        let (fate, latency, faults) = state.decide(n, &request);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let response = match fate {
            Fate::Answer(status) => {
                state.note(&request, status, false, started);
                canned(status, faults.retry_after_secs)
            }
            Fate::DropBefore => {
                state.note(&request, 0, false, started);
                refuse(reader.into_inner());
                return Ok(());
            }
            Fate::DropAfter => {
                let _ = forward(&state, &request).await;
                state.note(&request, 0, true, started);
                refuse(reader.into_inner());
                return Ok(());
            }
            Fate::Stall => {
                tokio::time::sleep(faults.stall).await;
                let (status, response) = forward(&state, &request).await?;
                state.note(&request, status, true, started);
                response
            }
            Fate::Forward => {
                let (status, response) = forward(&state, &request).await?;
                state.note(&request, status, true, started);
                response
            }
            Fate::Drop(op) => {
                let (status, response) = forward(&state, &without_ops(&request, &op)).await?;
                state.note(&request, status, true, started);
                response
            }
        };
        reader.get_mut().write_all(&response).await?;
    }
    Ok(())
}

fn canned(status: u16, retry_after: u64) -> Vec<u8> {
    let (reason, extra) = match status {
        429 => (
            "Too Many Requests",
            format!("Retry-After: {retry_after}\r\n"),
        ),
        400 => ("Bad Request", String::new()),
        412 => ("Precondition Failed", String::new()),
        501 => ("Not Implemented", String::new()),
        413 => ("Payload Too Large", String::new()),
        500 => ("Internal Server Error", String::new()),
        _ => ("Service Unavailable", String::new()),
    };
    let body = format!(
        r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"{status}","detail":"injected by the fault proxy"}}"#
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What a write touched (see [`Seen::touched`]); nothing for other requests.
fn touched(request: &Request) -> Vec<String> {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&request.body) else {
        return Vec::new();
    };
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    match request.method.as_str() {
        "PATCH" => body["Operations"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|op| {
                let kind = op["op"].as_str().unwrap_or_default().to_lowercase();
                match op["path"].as_str() {
                    Some(path) => vec![format!("{kind}:{path}")],
                    None => keys(&op["value"])
                        .into_iter()
                        .map(|k| format!("{kind}:{k}"))
                        .collect(),
                }
            })
            .collect(),
        "POST" | "PUT" => keys(&body),
        _ => Vec::new(),
    }
}

/// The request without its PATCH operations of kind `op`; a GET of the
/// same resource when none is left (the server's answer stands for a 200
/// to a PATCH that changed nothing).
fn without_ops(request: &Request, op: &str) -> Request {
    let mut body: serde_json::Value =
        serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null);
    let mut left = 0;
    if let Some(ops) = body
        .get_mut("Operations")
        .and_then(serde_json::Value::as_array_mut)
    {
        ops.retain(|o| !o["op"].as_str().is_some_and(|k| k.eq_ignore_ascii_case(op)));
        left = ops.len();
    }
    let (method, body) = if left == 0 {
        ("GET".to_string(), Vec::new())
    } else {
        (request.method.clone(), body.to_string().into_bytes())
    };
    let mut head: Vec<(String, String)> = request
        .head
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length"))
        .cloned()
        .collect();
    head.push(("Content-Length".into(), body.len().to_string()));
    Request {
        method,
        target: request.target.clone(),
        head,
        body,
    }
}

/// Send the request upstream on a connection of its own; the response,
/// rewritten for keep-alive towards the client.
async fn forward(state: &State, request: &Request) -> std::io::Result<(u16, Vec<u8>)> {
    let mut upstream = TcpStream::connect(state.upstream).await?;
    let mut out = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (name, value) in &request.head {
        let skip = ["connection", "keep-alive", "proxy-connection"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
        if !skip {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes()).await?;
    upstream.write_all(&request.body).await?;
    let mut raw = Vec::new();
    upstream.read_to_end(&mut raw).await?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or("");
    let mut response = format!("HTTP/1.1 {status} {reason}\r\n");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            if let Ok(n) = value.trim().parse::<usize>() {
                body.truncate(n);
            }
            continue;
        }
        if ["connection", "keep-alive"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        response.push_str(&format!("{name}:{value}\r\n"));
    }
    response.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    state.record(request, status, &body);
    let mut bytes = response.into_bytes();
    bytes.extend_from_slice(&body);
    Ok((status, bytes))
}
