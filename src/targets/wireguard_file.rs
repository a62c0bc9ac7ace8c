//! The `wireguard-file` VPN target: the server's `wg0.conf`, one `[Peer]` per
//! person, ready for `wg syncconf`. The state store is the record of peers;
//! the file is written from it atomically at the end of every apply.
//!
//! The file also holds the server's private key and the peers' preshared keys
//! (secrets the state store must never see), so both are read back from the
//! existing file, and a new peer's preshared key from the person's bundle.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anyhow::{bail, Context, Result};

use crate::apply::secrets::HeldPreshared;
use crate::apply::{fsutil, secrets};
use crate::settings::Settings;
use crate::state::Store;
use crate::targets::common::wg_quick::{self, ConfFile, ConfPeer, ManagedPeer};
use crate::targets::common::Secret;
use crate::targets::ExistingPeer;
use crate::targets::VpnServer;

/// What an existing server file says.
#[derive(Debug, Default, Clone)]
pub struct ServerFile {
    pub private_key: Option<String>,
    pub peers: Vec<FilePeer>,
}

#[derive(Debug, Clone)]
pub struct FilePeer {
    pub public_key: String,
    pub preshared_key: Option<String>,
    pub allowed_ips: Vec<String>,
    /// The `# homebase: ID` comment above the peer, if homebase wrote it.
    pub person: Option<String>,
}

impl ServerFile {
    /// What a `wg-quick`-style file (hand-made ones included) says, read
    /// with the one reader of that format.
    pub fn parse(text: &str) -> ServerFile {
        let conf = ConfFile::parse(text);
        ServerFile {
            private_key: conf.interface_value("PrivateKey"),
            peers: conf
                .peers
                .iter()
                .filter_map(|p| {
                    Some(FilePeer {
                        public_key: p.public_key.clone()?,
                        preshared_key: p.preshared_key.as_ref().map(|k| k.expose().to_string()),
                        allowed_ips: p.allowed_ips.clone(),
                        person: p.homebase_id().map(str::to_string),
                    })
                })
                .collect(),
        }
    }

    /// Addresses of peers whose public key is not among `ours`.
    pub fn foreign_addresses(&self, ours: &BTreeSet<String>) -> BTreeSet<IpAddr> {
        self.peers
            .iter()
            .filter(|p| !ours.contains(&p.public_key))
            .flat_map(|p| &p.allowed_ips)
            .filter_map(|net| net.split('/').next().and_then(|a| a.parse().ok()))
            .collect()
    }
}

/// The file's peers with their comments (what `homebase adopt` matches to
/// persons), and the file's path.
pub fn existing_peers(
    config: &WireguardFile,
    settings: &crate::settings::Settings,
) -> anyhow::Result<(String, Vec<ExistingPeer>)> {
    use anyhow::Context;
    let path = settings.out_path(&config.path);
    // No server file yet: no peers to take over.
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        read => read.with_context(|| format!("cannot read {}", path.display()))?,
    };
    let peers = ConfFile::parse(&text)
        .peers
        .iter()
        .filter_map(|p| {
            Some(ExistingPeer {
                public_key: p.public_key.clone()?,
                allowed_ips: p.allowed_ips.clone(),
                address: p.host_address(),
                has_psk: p.preshared_key.is_some(),
                comments: p.comments.clone(),
                certificates: Vec::new(),
            })
        })
        .collect();
    Ok((path.display().to_string(), peers))
}

/// How many of the store's peers the file lacks or has with another address.
pub fn missing_peers(file: &ServerFile, peers: &[(String, crate::plan::Peer, String)]) -> usize {
    let in_file: BTreeMap<&str, &[String]> = file
        .peers
        .iter()
        .map(|p| (p.public_key.as_str(), p.allowed_ips.as_slice()))
        .collect();
    peers
        .iter()
        .filter(|(_, peer, key)| {
            let bits = if peer.address.is_ipv4() { 32 } else { 128 };
            let expected = format!("{}/{bits}", peer.address);
            in_file
                .get(key.as_str())
                .is_none_or(|ips| !ips.contains(&expected))
        })
        .count()
}

/// The whole server file: an `[Interface]` homebase writes, then one
/// `[Peer]` per person in the order given (by address), each tagged with a
/// `# homebase: ID` comment, then the hand-made peers exactly as they were
/// written — by the one `wg-quick` writer (`common/wg_quick.rs`).
pub fn render(
    config: &WireguardFile,
    private_key: &str,
    peers: &[ManagedPeer],
    foreign: &[&ConfPeer],
) -> String {
    let interface = [
        "# Written by homebase. Peers tagged `# homebase:` are managed; others are kept."
            .to_string(),
        "[Interface]".to_string(),
        format!("PrivateKey = {private_key}"),
        format!("ListenPort = {}", config.listen_port),
        format!("# Address = {}", config.address),
    ];
    wg_quick::render(&interface, peers, foreign)
}

/// The client's `Endpoint`: IPv6 hosts in brackets.
pub fn endpoint(config: &WireguardFile) -> String {
    client_endpoint(&config.endpoint, config.listen_port)
}

/// `host:port` for a client config, from what the admin wrote: a bare IPv6
/// address gets brackets, and a missing port `listen_port`.
pub fn client_endpoint(endpoint: &str, listen_port: u16) -> String {
    let e = endpoint.trim();
    if e.starts_with('[') {
        // `[v6]` without a port still needs one.
        return if e.ends_with(']') {
            format!("{e}:{listen_port}")
        } else {
            e.to_string()
        };
    }
    // A bare IPv6 address (more than one colon, no brackets): add the port.
    if e.matches(':').count() > 1 {
        if let Ok(addr) = e.parse::<std::net::Ipv6Addr>() {
            return format!("[{addr}]:{listen_port}");
        }
    }
    if e.contains(':') {
        e.to_string()
    } else {
        format!("{e}:{listen_port}")
    }
}

/// The server's identity for the bundles. A new file is written now, with a
/// new private key, so that no bundle names a server key that does not exist.
/// Not where the state records peers of this target already: their bundles
/// name the key (and the preshared keys) of the file on the machine that
/// wrote it — secrets the state never holds — and a new key would cut every
/// delivered tunnel. That run is refused before any action.
pub fn prepare(
    name: &str,
    wg: &WireguardFile,
    settings: &Settings,
    store: &Store,
) -> Result<VpnServer> {
    let path = settings.out_path(&wg.path);
    let existing = std::fs::read_to_string(&path)
        .ok()
        .map(|t| ServerFile::parse(&t));
    let private_key = match existing.as_ref().and_then(|f| f.private_key.clone()) {
        Some(key) => key,
        None => {
            let recorded = store.peers(name)?.len();
            if recorded > 0 {
                bail!(
                    "{}: no server file with a PrivateKey here, but the state records {recorded} \
                     peer(s) of target {name}; their bundles name the server key and preshared \
                     keys of the file where they were made (the state holds no secret). Put that \
                     file at this path (or point `targets.{name}.path` at it) and run again; \
                     homebase does not make up a new server key for delivered bundles",
                    path.display()
                );
            }
            let key = secrets::wg_private_key();
            write_server_file(settings, store, name, wg, &key, None)?;
            key
        }
    };
    let public_key = secrets::public_key_of(&private_key).with_context(|| {
        format!(
            "{}: the server's PrivateKey is not a WireGuard key",
            path.display()
        )
    })?;
    Ok(VpnServer {
        endpoint: endpoint(wg),
        public_key,
        network: wg.address.trunc().to_string(),
        openvpn: None,
    })
}

/// After an apply: the file again from the store's peers, with its key.
pub fn finish(
    name: &str,
    wg: &WireguardFile,
    settings: &Settings,
    store: &Store,
    held: Option<&HeldPreshared>,
) -> Result<()> {
    let path = settings.out_path(&wg.path);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let key = ServerFile::parse(&text)
        .private_key
        .unwrap_or_else(secrets::wg_private_key);
    write_server_file(settings, store, name, wg, &key, held)
}

/// The server file from the store's peers. Preshared keys come from the file
/// as it was, or (new peers) from the person's bundle or, sealed this run,
/// from `held`; foreign peers are kept.
fn write_server_file(
    settings: &Settings,
    store: &Store,
    name: &str,
    wg: &WireguardFile,
    private_key: &str,
    held: Option<&HeldPreshared>,
) -> Result<()> {
    let path = settings.out_path(&wg.path);
    let old = std::fs::read_to_string(&path)
        .map(|t| ConfFile::parse(&t))
        .unwrap_or_default();
    let mut psks: BTreeMap<String, Secret> = old
        .peers
        .iter()
        .filter_map(|p| Some((p.public_key.clone()?, p.preshared_key.clone()?)))
        .collect();
    let peers = store.peers(name)?;
    let ours: std::collections::BTreeSet<String> =
        peers.iter().map(|(_, _, key)| key.clone()).collect();
    let usernames: BTreeMap<String, String> = store
        .persons()?
        .into_iter()
        .map(|(id, known)| (id, known.username))
        .collect();
    for (id, peer, key) in &peers {
        if peer.preshared_key && !psks.contains_key(key) {
            // Issued this run into an encrypted bundle: only memory has it.
            if let Some(psk) = held.and_then(|held| held.get(key)) {
                psks.insert(key.clone(), psk);
                continue;
            }
            if let Some(username) = usernames.get(id) {
                if let Some(secrets) =
                    secrets::PersonSecrets::read(&settings.out_dir.join(username))?
                {
                    if secrets.wg_public_key().as_deref() == Some(key.as_str()) {
                        if let Some(psk) = secrets.wg_preshared_key {
                            psks.insert(key.clone(), Secret::new(psk));
                        }
                    }
                }
            }
        }
    }
    let server_peers: Vec<ManagedPeer> = peers
        .iter()
        .map(|(id, peer, key)| ManagedPeer {
            person: id,
            username: usernames.get(id).map_or("", String::as_str),
            public_key: key,
            preshared_key: if peer.preshared_key {
                psks.get(key)
            } else {
                None
            },
            address: peer.address,
        })
        .collect();
    let foreign: Vec<&ConfPeer> = old
        .peers
        .iter()
        .filter(|p| {
            p.homebase_id().is_none() && p.public_key.as_ref().is_none_or(|k| !ours.contains(k))
        })
        .collect();
    let text = render(wg, private_key, &server_peers, &foreign);
    if let Some(dir) = path.parent() {
        fsutil::private_dir(dir, 0o700)?;
    }
    fsutil::write_if_changed(&path, text.as_bytes(), Some(0o600))?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireguardFile {
    /// The server configuration file (relative to `out`), ready for `wg syncconf`.
    #[serde(default = "default_wg_path")]
    pub path: PathBuf,
    /// What clients connect to: `host:port`, `[v6]:port` or `v6` address with port.
    pub endpoint: String,
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    /// The server's own tunnel address with the pool's prefix, e.g. `10.20.0.1/16`.
    pub address: ipnet::IpNet,
    #[serde(flatten)]
    pub limits: Limits,
}

fn default_wg_path() -> PathBuf {
    PathBuf::from("server/wg0.conf")
}
fn default_listen_port() -> u16 {
    51820
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(endpoint: &str) -> WireguardFile {
        WireguardFile {
            path: "server/wg0.conf".into(),
            endpoint: endpoint.into(),
            listen_port: 51820,
            address: "10.20.0.1/16".parse().unwrap(),
            limits: Default::default(),
        }
    }

    #[test]
    fn endpoints_bracket_ipv6() {
        assert_eq!(endpoint(&cfg("vpn.example.org")), "vpn.example.org:51820");
        assert_eq!(endpoint(&cfg("vpn.example.org:443")), "vpn.example.org:443");
        assert_eq!(endpoint(&cfg("2001:db8::1")), "[2001:db8::1]:51820");
        assert_eq!(endpoint(&cfg("[2001:db8::1]:443")), "[2001:db8::1]:443");
        assert_eq!(endpoint(&cfg("[2001:db8::1]")), "[2001:db8::1]:51820");
        assert_eq!(endpoint(&cfg(" 2001:DB8::1 ")), "[2001:db8::1]:51820");
        assert_eq!(
            client_endpoint("::ffff:192.0.2.7", 443),
            "[::ffff:192.0.2.7]:443"
        );
        assert_eq!(client_endpoint("192.0.2.7", 443), "192.0.2.7:443");
    }

    #[test]
    fn round_trip_keeps_foreign_peers_and_psks() {
        // A preshared key is only taken for what it is: 32 bytes in base64.
        const PSK: &str = "c2VjcmV0LXByZXNoYXJlZC1rZXktb2YtMzItYnl0ZXM=";
        let text = format!("[Interface]\nPrivateKey = SERVER\n\n# homebase: P1\n[Peer]\nPublicKey = K1\nPresharedKey = {PSK}\nAllowedIPs = 10.20.0.2/32\n\n[Peer]\nPublicKey = HAND\nPresharedKey = not-a-key\nAllowedIPs = 10.20.0.9/32, 10.99.0.0/24\n");
        let file = ServerFile::parse(&text);
        assert_eq!(file.private_key.as_deref(), Some("SERVER"));
        assert_eq!(file.peers.len(), 2);
        assert_eq!(file.peers[0].person.as_deref(), Some("P1"));
        assert_eq!(file.peers[0].preshared_key.as_deref(), Some(PSK));
        assert_eq!(file.peers[1].preshared_key, None);
        let ours: BTreeSet<String> = ["K1".to_string()].into();
        let foreign = file.foreign_addresses(&ours);
        assert!(foreign.contains(&"10.20.0.9".parse::<IpAddr>().unwrap()));
        assert!(!foreign.contains(&"10.20.0.2".parse::<IpAddr>().unwrap()));
    }

    /// The file homebase writes: its `[Interface]`, its peers with their
    /// preshared keys, and a hand-made peer word for word, comments included.
    #[test]
    fn a_rewrite_keeps_hand_made_peers_as_written() {
        const PSK: &str = "c2VjcmV0LXByZXNoYXJlZC1rZXktb2YtMzItYnl0ZXM=";
        let old = ConfFile::parse(
            "[Interface]\nPrivateKey = OLD\n\n# printer, room 2.14\n[Peer]\nPublicKey = HAND\nAllowedIPs = 10.20.0.9/32 # fixed\n",
        );
        let psk = Secret::new(PSK);
        let ours = [ManagedPeer {
            person: "P1",
            username: "emustermann",
            public_key: "K1",
            preshared_key: Some(&psk),
            address: "10.20.0.2".parse().unwrap(),
        }];
        let foreign: Vec<&ConfPeer> = old.peers.iter().collect();
        let text = render(&cfg("vpn.example.org"), "SERVER", &ours, &foreign);
        assert!(
            text.contains("[Interface]\nPrivateKey = SERVER\nListenPort = 51820\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("# homebase: P1\n# user: emustermann\n[Peer]\nPublicKey = K1\nPresharedKey = {PSK}\nAllowedIPs = 10.20.0.2/32\n")),
            "{text}"
        );
        assert!(
            text.ends_with("\n# printer, room 2.14\n[Peer]\nPublicKey = HAND\nAllowedIPs = 10.20.0.9/32 # fixed\n"),
            "{text}"
        );
        let again = ServerFile::parse(&text);
        assert_eq!(again.private_key.as_deref(), Some("SERVER"));
        assert_eq!(again.peers.len(), 2);
    }
}
