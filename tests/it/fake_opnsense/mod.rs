//! A FAKE OPNsense for homebase's tests: an in-memory stand-in for the
//! WireGuard part of OPNsense's REST API, not OPNsense, sharing no code with
//! it. It answers as OPNsense 25.7.11 does by its source; which files, what
//! it models and what it leaves out is in docs/opnsense.md.
//!
//! Two copies of the peers: the saved configuration (what the API writes)
//! and the live one (what `service/reconfigure` last applied), so a test can
//! tell a saved change from one that is in effect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

/// A peer (OPNsense's `client`), as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uuid: String,
    pub enabled: bool,
    pub name: String,
    pub pubkey: String,
    pub psk: String,
    pub tunneladdress: String,
    pub keepalive: String,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub status: u16,
}

struct Instance {
    uuid: String,
    name: String,
    pubkey: String,
    privkey: String,
    port: String,
    tunneladdress: String,
    endpoint: String,
    /// Peer uuids, comma-separated in OPNsense.
    peers: Vec<String>,
}

#[derive(Default)]
struct State {
    key: String,
    secret: String,
    instances: Vec<Instance>,
    /// Saved peers, in the order they were added.
    saved: Vec<Peer>,
    /// The peers of the instance as last applied by a reconfigure.
    live: Vec<Peer>,
    reconfigures: u64,
    /// The next this many reconfigures fail (HTTP 500).
    failing_reconfigures: u64,
    hits: Vec<Hit>,
    next_uuid: u64,
}

pub struct FakeOpnsense {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// The instance a test works with: its settings.
pub struct InstanceSettings<'a> {
    pub name: &'a str,
    pub public_key: &'a str,
    pub tunneladdress: &'a str,
    pub port: &'a str,
    pub endpoint: &'a str,
}

impl FakeOpnsense {
    /// Start on 127.0.0.1 on a free port, in a thread of its own, with one
    /// WireGuard instance.
    pub fn start(key: &str, secret: &str, instance: InstanceSettings) -> FakeOpnsense {
        let state = Arc::new(Mutex::new(State {
            key: key.into(),
            secret: secret.into(),
            instances: vec![Instance {
                uuid: "5f5e2a1c-7d35-4c6b-9a0e-0c1d2e3f4a5b".into(),
                name: instance.name.into(),
                pubkey: instance.public_key.into(),
                privkey: "cHJpdmF0ZSBrZXkgb2YgdGhlIGluc3RhbmNlIQ0KDQo=".into(),
                port: instance.port.into(),
                tunneladdress: instance.tunneladdress.into(),
                endpoint: instance.endpoint.into(),
                peers: Vec::new(),
            }],
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let served = state.clone();
        crate::common::http::serve(listener, move |req| {
            let state = served.clone();
            async move { handle(&state, req).await }
        });
        FakeOpnsense {
            url: format!("http://{addr}"),
            addr,
            state,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A peer an admin made in the web interface and applied: saved and live.
    pub fn add_by_hand(&self, name: &str, pubkey: &str, tunneladdress: &str) -> String {
        let mut state = self.state();
        let uuid = state.new_uuid();
        let peer = Peer {
            uuid: uuid.clone(),
            enabled: true,
            name: name.into(),
            pubkey: pubkey.into(),
            psk: String::new(),
            tunneladdress: tunneladdress.into(),
            keepalive: String::new(),
        };
        state.saved.push(peer.clone());
        state.live.push(peer);
        state.instances[0].peers.push(uuid.clone());
        uuid
    }

    /// A peer made by hand that belongs to no instance (saved only).
    pub fn add_detached_by_hand(&self, name: &str, pubkey: &str, tunneladdress: &str) -> String {
        let mut state = self.state();
        let uuid = state.new_uuid();
        state.saved.push(Peer {
            uuid: uuid.clone(),
            enabled: true,
            name: name.into(),
            pubkey: pubkey.into(),
            psk: String::new(),
            tunneladdress: tunneladdress.into(),
            keepalive: String::new(),
        });
        uuid
    }

    /// An admin deletes a peer in the web interface and applies.
    pub fn delete_by_hand(&self, uuid: &str) {
        let mut state = self.state();
        state.saved.retain(|p| p.uuid != uuid);
        state.live.retain(|p| p.uuid != uuid);
        state.instances[0].peers.retain(|p| p != uuid);
    }

    /// The next `n` reconfigures fail with HTTP 500.
    pub fn fail_reconfigures(&self, n: u64) {
        self.state().failing_reconfigures = n;
    }

    pub fn reconfigures(&self) -> u64 {
        self.state().reconfigures
    }

    /// The saved peers of the instance.
    pub fn saved(&self) -> Vec<Peer> {
        let state = self.state();
        state
            .saved
            .iter()
            .filter(|p| state.instances[0].peers.contains(&p.uuid))
            .cloned()
            .collect()
    }

    /// The peers the instance runs with.
    pub fn live(&self) -> Vec<Peer> {
        self.state().live.clone()
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state().hits.clone()
    }

    /// Requests that change something (POSTs answered 200), since the start.
    pub fn writes(&self) -> usize {
        self.state()
            .hits
            .iter()
            .filter(|h| h.method == "POST" && h.status == 200 && !h.path.contains("search"))
            .count()
    }
}

impl State {
    fn new_uuid(&mut self) -> String {
        self.next_uuid += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_uuid)
    }
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://fake/?{q}"))
                .map(|u| u.query_pairs().into_owned().collect())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let expected = format!(
        "Basic {}",
        B64.encode(format!("{}:{}", state.key, state.secret))
    );
    let (status, body) = if authorization.as_deref() != Some(expected.as_str()) {
        // ApiControllerBase: no or wrong key/secret.
        (
            StatusCode::UNAUTHORIZED,
            json!({"status": 401, "message": "Authentication Failed"}),
        )
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Err(_) if !bytes.is_empty() => (
                StatusCode::BAD_REQUEST,
                json!({"status": 400, "message": "Invalid JSON syntax"}),
            ),
            parsed => {
                let body = parsed.unwrap_or(Value::Null);
                route(&mut state, &method, &path, &query, &body)
            }
        }
    };
    state.hits.push(Hit {
        method: method.to_string(),
        path,
        status: status.as_u16(),
    });
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: &Value,
) -> (StatusCode, Value) {
    let Some(rest) = path.strip_prefix("/api/wireguard/") else {
        return not_found();
    };
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let post = method == Method::POST;
    // Parameters come from the query or (POST) the body, as Phalcon's `get`.
    let param = |key: &str| -> Option<String> {
        query.get(key).cloned().or_else(|| {
            body.get(key).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        })
    };
    match parts.as_slice() {
        // Both spellings route to the same action in OPNsense's router.
        ["server", "search_server" | "searchServer"] => {
            let rows: Vec<Value> = state.instances.iter().map(instance_row).collect();
            (StatusCode::OK, grid(rows, &param, &["name", "pubkey"]))
        }
        ["client", "search_client" | "searchClient"] => {
            let servers: Vec<String> = param("servers")
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default();
            let rows: Vec<Value> = state
                .saved
                .iter()
                .map(|p| client_row(state, p))
                .filter(|row| {
                    servers.is_empty()
                        || row["servers"]
                            .as_str()
                            .unwrap_or_default()
                            .split(',')
                            .any(|s| servers.iter().any(|w| w == s))
                })
                .collect();
            (
                StatusCode::OK,
                grid(
                    rows,
                    &param,
                    &["enabled", "name", "pubkey", "tunneladdress"],
                ),
            )
        }
        ["client", "get_client" | "getClient", uuid] => {
            match state.saved.iter().find(|p| p.uuid == *uuid) {
                Some(p) => (StatusCode::OK, json!({"client": client_row(state, p)})),
                None => (StatusCode::OK, json!([])),
            }
        }
        ["client", "set_client" | "setClient", uuid] if post => set_client(state, Some(uuid), body),
        ["client", "add_client" | "addClient"] if post => set_client(state, None, body),
        ["client", "del_client" | "delClient", uuid] if post => {
            for instance in &mut state.instances {
                instance.peers.retain(|p| p != uuid);
            }
            let before = state.saved.len();
            state.saved.retain(|p| p.uuid != *uuid);
            let result = if state.saved.len() < before {
                "deleted"
            } else {
                "not found"
            };
            (StatusCode::OK, json!({"result": result}))
        }
        ["service", "reconfigure"] if post => {
            state.reconfigures += 1;
            if state.failing_reconfigures > 0 {
                state.failing_reconfigures -= 1;
                // An exception in the backend call: the error page's JSON.
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"errorMessage": "Unexpected error, check log for details", "errorTitle": "An error occurred"}),
                );
            }
            let members = state.instances[0].peers.clone();
            state.live = state
                .saved
                .iter()
                .filter(|p| p.enabled && members.contains(&p.uuid))
                .cloned()
                .collect();
            (StatusCode::OK, json!({"result": "ok"}))
        }
        ["service", "reconfigure"] => (StatusCode::OK, json!({"result": "failed"})),
        // Mutating actions asked for with GET answer as their POST guard does.
        ["client", "set_client" | "setClient" | "del_client" | "delClient", _]
        | ["client", "add_client" | "addClient"] => (StatusCode::OK, json!({"result": "failed"})),
        _ => not_found(),
    }
}

fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"errorMessage": "Endpoint not found", "errorTitle": "Error"}),
    )
}

/// `UIModelGrid::fetchBindRequest`: `rowCount` (-1, the default: all),
/// `current` (from 1), `searchPhrase` (every word in one of `fields`).
fn grid(rows: Vec<Value>, param: &dyn Fn(&str) -> Option<String>, fields: &[&str]) -> Value {
    let per_page: i64 = param("rowCount").and_then(|v| v.parse().ok()).unwrap_or(-1);
    let current: i64 = param("current")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let phrase = param("searchPhrase").unwrap_or_default().to_lowercase();
    let words: Vec<&str> = phrase.split_whitespace().collect();
    let matching: Vec<Value> = rows
        .into_iter()
        .filter(|row| {
            words.iter().all(|w| {
                fields.iter().any(|f| {
                    row[*f]
                        .as_str()
                        .is_some_and(|v| v.to_lowercase().contains(w))
                })
            })
        })
        .collect();
    let total = matching.len();
    let page: Vec<Value> = if per_page < 0 {
        matching
    } else {
        let skip = (per_page * (current - 1)) as usize;
        matching
            .into_iter()
            .skip(skip)
            .take(per_page as usize)
            .collect()
    };
    json!({"rows": page.clone(), "rowCount": page.len(), "total": total, "current": current})
}

fn instance_row(i: &Instance) -> Value {
    json!({
        "uuid": i.uuid, "enabled": "1", "name": i.name, "instance": "0",
        "pubkey": i.pubkey, "privkey": i.privkey, "port": i.port, "mtu": "",
        "dns": "", "tunneladdress": i.tunneladdress, "disableroutes": "0",
        "gateway": "", "carp_depend_on": "", "peers": i.peers.join(","), "debug": "0",
        "endpoint": i.endpoint, "peer_dns": "",
        "%peers": "", "%carp_depend_on": "",
    })
}

fn client_row(state: &State, p: &Peer) -> Value {
    let servers: Vec<&str> = state
        .instances
        .iter()
        .filter(|i| i.peers.contains(&p.uuid))
        .map(|i| i.uuid.as_str())
        .collect();
    let names: Vec<&str> = state
        .instances
        .iter()
        .filter(|i| i.peers.contains(&p.uuid))
        .map(|i| i.name.as_str())
        .collect();
    json!({
        "uuid": p.uuid, "enabled": if p.enabled { "1" } else { "0" }, "name": p.name,
        "pubkey": p.pubkey, "psk": p.psk, "tunneladdress": p.tunneladdress,
        "serveraddress": "", "serverport": "", "endpoint": "", "keepalive": p.keepalive,
        "servers": servers.join(","), "%servers": names.join(", "),
    })
}

/// `ClientController::setClientAction`: the instances' peer lists follow
/// `servers`; then `setBase`: an upsert for a well-formed v4 uuid, the
/// posted fields set, the node validated, saved or
/// `{"result": "failed", "validations": {"client.FIELD": MESSAGE}}`.
fn set_client(state: &mut State, uuid: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let Some(fields) = body.get("client").and_then(Value::as_object) else {
        return (StatusCode::OK, json!({"result": "failed"}));
    };
    let (uuid, added) = match uuid {
        Some(u) => (u.to_string(), false),
        None => (state.new_uuid(), true),
    };
    let existing = state.saved.iter().position(|p| p.uuid == uuid);
    if existing.is_none() && !added && !is_v4_uuid(&uuid) {
        return (StatusCode::OK, json!({"result": "failed"}));
    }
    let mut peer = existing.map_or_else(
        || Peer {
            uuid: uuid.clone(),
            enabled: true,
            name: String::new(),
            pubkey: String::new(),
            psk: String::new(),
            tunneladdress: String::new(),
            keepalive: String::new(),
        },
        |i| state.saved[i].clone(),
    );
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(v) = text("enabled") {
        peer.enabled = v == "1";
    }
    if let Some(v) = text("name") {
        peer.name = v;
    }
    if let Some(v) = text("pubkey") {
        peer.pubkey = v;
    }
    if let Some(v) = text("psk") {
        peer.psk = v;
    }
    if let Some(v) = text("tunneladdress") {
        peer.tunneladdress = v;
    }
    if let Some(v) = text("keepalive") {
        peer.keepalive = v;
    }
    let validations = validate(state, &peer);
    if !validations.is_empty() {
        return (
            StatusCode::OK,
            json!({"result": "failed", "validations": validations}),
        );
    }
    if let Some(servers) = text("servers") {
        let wanted: Vec<&str> = servers.split(',').filter(|s| !s.is_empty()).collect();
        for instance in &mut state.instances {
            let member = instance.peers.contains(&uuid);
            let asked = wanted.contains(&instance.uuid.as_str());
            if member && !asked {
                instance.peers.retain(|p| *p != uuid);
            } else if !member && asked {
                instance.peers.push(uuid.clone());
            }
        }
    }
    match existing {
        Some(i) => state.saved[i] = peer,
        None => state.saved.push(peer),
    }
    let mut answer = json!({"result": "saved"});
    if added {
        answer["uuid"] = json!(uuid);
    }
    (StatusCode::OK, answer)
}

/// The `Client.xml` model's rules for one peer.
fn validate(state: &State, peer: &Peer) -> Map<String, Value> {
    let mut out = Map::new();
    let mut add = |field: &str, message: &str| {
        out.insert(format!("client.{field}"), json!(message));
    };
    let name_ok = !peer.name.is_empty()
        && peer.name.chars().count() <= 64
        && peer
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if peer.name.is_empty() {
        add("name", "A value is required.");
    } else if !name_ok {
        add("name", "Should be a string between 1 and 64 characters. Allowed characters are alphanumeric characters, dash and underscores.");
    }
    if peer.pubkey.is_empty() {
        add("pubkey", "A value is required.");
    } else if B64.decode(&peer.pubkey).is_err() {
        add("pubkey", "Invalid Base64-encoded string.");
    } else if state
        .saved
        .iter()
        .any(|p| p.uuid != peer.uuid && p.pubkey == peer.pubkey)
    {
        // UniqueConstraint over pubkey, serveraddress and serverport (both
        // empty for every peer here).
        add("pubkey", "Public keys should be unique.");
    }
    if !peer.psk.is_empty() && B64.decode(&peer.psk).is_err() {
        add("psk", "Invalid Base64-encoded string.");
    }
    let nets: Vec<&str> = peer
        .tunneladdress
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if nets.is_empty() {
        add("tunneladdress", "A value is required.");
    } else if nets
        .iter()
        .any(|n| !n.contains('/') || n.parse::<ipnet::IpNet>().is_err())
    {
        add(
            "tunneladdress",
            "Please specify a valid network segment or IP address.",
        );
    }
    if !peer.keepalive.is_empty()
        && !peer
            .keepalive
            .parse::<u32>()
            .is_ok_and(|k| (1..=65535).contains(&k))
    {
        add("keepalive", "Please specify a value between 1 and 65535.");
    }
    out
}

/// `ApiMutableModelControllerBase::isValidUUID`.
fn is_v4_uuid(uuid: &str) -> bool {
    let parts: Vec<&str> = uuid.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && uuid
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && parts[2].starts_with('4')
        && parts[3].starts_with(['8', '9', 'a', 'b'])
}
