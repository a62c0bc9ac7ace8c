//! A FAKE wg-portal for homebase's tests: an in-memory stand-in for the
//! REST API v1 of wg-portal, not wg-portal, sharing no code with it. It
//! answers as wg-portal v2.3.1 does by its source; which files, what it
//! models and what it leaves out is in docs/wg-portal.md.
//!
//! wg-portal applies every peer change to the interface at once, so the
//! fake keeps one list: what it holds is what is live.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

/// A peer as the fake holds it: the fields homebase's tests look at, and
/// the rest of the v1 model as sent.
#[derive(Debug, Clone)]
pub struct Peer {
    pub identifier: String,
    pub display_name: String,
    pub interface: String,
    pub notes: String,
    pub public_key: String,
    pub preshared_key: String,
    pub addresses: Vec<String>,
    pub disabled: bool,
    /// The whole model as last sent (or made by hand).
    pub model: Value,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub status: u16,
}

struct State {
    user: String,
    token: String,
    interface: Value,
    /// By identifier (= public key), in no order: wg-portal's database.
    peers: BTreeMap<String, Peer>,
    hits: Vec<Hit>,
}

pub struct FakeWgPortal {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

pub struct InterfaceSettings<'a> {
    pub identifier: &'a str,
    pub public_key: &'a str,
    pub listen_port: u16,
    pub addresses: &'a [&'a str],
    pub endpoint: &'a str,
}

impl FakeWgPortal {
    /// Start on 127.0.0.1 on a free port with one admin user and one interface.
    pub fn start(user: &str, token: &str, interface: InterfaceSettings) -> FakeWgPortal {
        let model = json!({
            "Identifier": interface.identifier, "DisplayName": "Home office", "Mode": "server",
            "PrivateKey": "cHJpdmF0ZSBrZXkgb2YgdGhlIGludGVyZmFjZSEhISE=",
            "PublicKey": interface.public_key, "Disabled": false, "DisabledReason": "",
            "SaveConfig": false, "ListenPort": interface.listen_port,
            "Addresses": interface.addresses, "Dns": [], "DnsSearch": [], "Mtu": 1420,
            "FirewallMark": 0, "RoutingTable": "", "PreUp": "", "PostUp": "", "PreDown": "",
            "PostDown": "", "PeerDefNetwork": [], "PeerDefDns": [], "PeerDefDnsSearch": [],
            "PeerDefEndpoint": interface.endpoint, "PeerDefAllowedIPs": ["10.0.0.0/8"],
            "PeerDefMtu": 1420, "PeerDefPersistentKeepalive": 25, "PeerDefFirewallMark": 0,
            "PeerDefRoutingTable": "", "PeerDefPreUp": "", "PeerDefPostUp": "",
            "PeerDefPreDown": "", "PeerDefPostDown": "", "EnabledPeers": 0, "TotalPeers": 0,
            "Filename": format!("{}.conf", interface.identifier),
        });
        let state = Arc::new(Mutex::new(State {
            user: user.into(),
            token: token.into(),
            interface: model,
            peers: BTreeMap::new(),
            hits: Vec::new(),
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let served = state.clone();
        crate::common::http::serve(listener, move |req| {
            let state = served.clone();
            async move { handle(&state, req).await }
        });
        FakeWgPortal {
            url: format!("http://{addr}"),
            addr,
            state,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A peer an admin made in wg-portal's web interface.
    pub fn add_by_hand(&self, interface: &str, name: &str, public_key: &str, address: &str) {
        let model = json!({
            "Identifier": public_key, "DisplayName": name, "UserIdentifier": "",
            "InterfaceIdentifier": interface, "Disabled": false, "DisabledReason": "",
            "Notes": "", "PublicKey": public_key, "PresharedKey": "",
            "PrivateKey": "", "Mode": "client", "Addresses": [address],
            "AllowedIPs": {"Value": ["10.0.0.0/8"], "Overridable": true},
            "ExtraAllowedIPs": [],
        });
        let peer = peer_of(&model);
        self.state().peers.insert(peer.identifier.clone(), peer);
    }

    /// An admin deletes a peer in the web interface.
    pub fn delete_by_hand(&self, identifier: &str) {
        self.state().peers.remove(identifier);
    }

    /// The peers of an interface.
    pub fn peers(&self, interface: &str) -> Vec<Peer> {
        self.state()
            .peers
            .values()
            .filter(|p| p.interface == interface)
            .cloned()
            .collect()
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state().hits.clone()
    }

    /// Requests that change something and were carried out.
    pub fn writes(&self) -> usize {
        self.state()
            .hits
            .iter()
            .filter(|h| h.method != "GET" && (200..300).contains(&h.status))
            .count()
    }
}

fn peer_of(model: &Value) -> Peer {
    let text = |k: &str| model[k].as_str().unwrap_or_default().to_string();
    Peer {
        identifier: text("Identifier"),
        display_name: text("DisplayName"),
        interface: text("InterfaceIdentifier"),
        notes: text("Notes"),
        public_key: text("PublicKey"),
        preshared_key: text("PresharedKey"),
        addresses: model["Addresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        disabled: model["Disabled"].as_bool().unwrap_or(false),
        model: model.clone(),
    }
}

fn error(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({"Code": status.as_u16(), "Message": message}))
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let credentials = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| B64.decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok());
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let (status, body) = match credentials.as_deref().and_then(|c| c.split_once(':')) {
        None | Some(("", _)) | Some((_, "")) => {
            error(StatusCode::UNAUTHORIZED, "missing credentials")
        }
        Some((user, token)) if user != state.user || token != state.token => {
            error(StatusCode::UNAUTHORIZED, "invalid credentials")
        }
        Some(_) => route(&mut state, &method, &raw_path, &bytes),
    };
    state.hits.push(Hit {
        method: method.to_string(),
        path: raw_path,
        status: status.as_u16(),
    });
    let mut response = Response::builder().status(status);
    let body = if status == StatusCode::NO_CONTENT {
        Bytes::new()
    } else {
        response = response.header("Content-Type", "application/json");
        Bytes::from(body.to_string())
    };
    response.body(Full::new(body)).expect("response")
}

/// The `{id...}` rest of a path, unescaped as Go's `PathValue` gives it.
fn rest(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).trim().to_string())
}

fn route(state: &mut State, method: &Method, path: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let interface_id = state.interface["Identifier"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let body = || -> Result<Value, (StatusCode, Value)> {
        serde_json::from_slice::<Value>(bytes)
            .map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))
    };
    if *method == Method::GET {
        if let Some(id) = rest(path, "/api/v1/interface/by-id/") {
            return match id == interface_id {
                true => {
                    let mut model = state.interface.clone();
                    let peers = state.peers.values().filter(|p| p.interface == id);
                    model["TotalPeers"] = json!(peers.clone().count());
                    model["EnabledPeers"] = json!(peers.filter(|p| !p.disabled).count());
                    (StatusCode::OK, model)
                }
                false => error(StatusCode::NOT_FOUND, "record not found"),
            };
        }
        if let Some(id) = rest(path, "/api/v1/peer/by-interface/") {
            let peers: Vec<Value> = state
                .peers
                .values()
                .filter(|p| p.interface == id)
                .map(|p| p.model.clone())
                .collect();
            return (StatusCode::OK, json!(peers));
        }
        if let Some(id) = rest(path, "/api/v1/peer/by-id/") {
            return match state.peers.get(&id) {
                Some(p) => (StatusCode::OK, p.model.clone()),
                None => error(StatusCode::NOT_FOUND, "record not found"),
            };
        }
    }
    if *method == Method::POST && path == "/api/v1/peer/new" {
        let model = match body() {
            Ok(m) => m,
            Err(e) => return e,
        };
        let peer = peer_of(&model);
        // PeerService.Create, then Manager.CreatePeer and validatePeerCreation.
        if peer.identifier != peer.public_key {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "peer id mismatch: {} != {}: invalid data",
                    peer.identifier, peer.public_key
                ),
            );
        }
        if state.peers.contains_key(&peer.identifier) {
            return error(
                StatusCode::CONFLICT,
                &format!("peer {} already exists: duplicate entry", peer.identifier),
            );
        }
        if peer.identifier.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "creation not allowed: invalid peer identifier: invalid data",
            );
        }
        if peer.interface != interface_id {
            return error(
                StatusCode::BAD_REQUEST,
                "creation not allowed: invalid interface: invalid data",
            );
        }
        let stored = stored_model(model);
        let peer = peer_of(&stored);
        state.peers.insert(peer.identifier.clone(), peer);
        return (StatusCode::OK, stored);
    }
    if *method == Method::PUT {
        if let Some(_path_id) = rest(path, "/api/v1/peer/by-id/") {
            let model = match body() {
                Ok(m) => m,
                Err(e) => return e,
            };
            let mut peer = peer_of(&model);
            // Manager.UpdatePeer loads the peer named in the body, not the path.
            if !state.peers.contains_key(&peer.identifier) {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "unable to load existing peer {}: record not found",
                        peer.identifier
                    ),
                );
            }
            let mut stored = stored_model(model);
            if peer.public_key != peer.identifier {
                if state.peers.contains_key(&peer.public_key) {
                    return error(
                        StatusCode::CONFLICT,
                        &format!("peer {} already exists: duplicate entry", peer.public_key),
                    );
                }
                state.peers.remove(&peer.identifier);
                stored["Identifier"] = json!(peer.public_key);
            }
            peer = peer_of(&stored);
            state.peers.insert(peer.identifier.clone(), peer);
            return (StatusCode::OK, stored);
        }
    }
    if *method == Method::DELETE {
        if let Some(id) = rest(path, "/api/v1/peer/by-id/") {
            return match state.peers.remove(&id) {
                Some(_) => (StatusCode::NO_CONTENT, Value::Null),
                None => error(
                    StatusCode::NOT_FOUND,
                    &format!("unable to find peer {id}: record not found"),
                ),
            };
        }
    }
    error(StatusCode::NOT_FOUND, "404 page not found")
}

/// What the database keeps of a sent peer: the model, with `PrivateKey`
/// as sent (homebase sends none) and a file name.
fn stored_model(mut model: Value) -> Value {
    if model.get("PrivateKey").is_none() {
        model["PrivateKey"] = json!("");
    }
    model["Filename"] = json!("wg_peer.conf");
    model
}
