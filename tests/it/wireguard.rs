//! The generated WireGuard configs, read by the real tools: `wg setconf` on
//! `wireguard-go` interfaces, and a real handshake between a client config
//! and the server config.
//!
//! Needs root, `wg`, `wireguard-go` and `ip`; without them the test is skipped
//! with a note, unless `HOMEBASE_REQUIRE_WG=1` (CI), which makes it fail.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::wg::{sh, strip};
use common::{conf_value, wg_pubkey, ServerPeer, TestEnv, STAFF_COUNT};

const APPLY: &[&str] = &["apply", "examples/staff.csv", "--yes", "--no-progress"];

/// `wg ARGS`, which must succeed; its stdout, trimmed.
fn wg(args: &[&str]) -> String {
    wg_with_input(args, None)
}

fn wg_with_input(args: &[&str], input: Option<&str>) -> String {
    sh("wg", args, input).trim().to_string()
}

fn ip(args: &[&str]) {
    sh("ip", args, None);
}

/// A `wireguard-go` interface for this test only; stopped (by its PID) on drop.
struct Interface {
    name: String,
    child: Child,
}

impl Interface {
    fn start(prefix: &str) -> Interface {
        // Unique per process (and so per test run); at most 15 characters.
        let name = format!("{prefix}{}", std::process::id() % 1_000_000);
        let child = Command::new("wireguard-go")
            .arg(&name)
            .env("WG_PROCESS_FOREGROUND", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wireguard-go");
        let mut interface = Interface { name, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !common::runs("wg", &["show", &interface.name]) {
            let exited = interface.child.try_wait().expect("poll wireguard-go");
            assert!(
                exited.is_none(),
                "wireguard-go {} exited: {exited:?}",
                interface.name
            );
            assert!(
                Instant::now() < deadline,
                "wireguard-go {} did not come up",
                interface.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        interface
    }
}

impl Drop for Interface {
    fn drop(&mut self) {
        // SIGTERM lets wireguard-go remove the interface and its socket.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// `wg show IFACE DUMP-KIND` as peer key → value.
fn show_per_peer(interface: &str, what: &str) -> BTreeMap<String, String> {
    wg(&["show", interface, what])
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn wg_accepts_the_server_and_client_configs_and_they_shake_hands() {
    if !common::wg::available("the WireGuard test") {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    // The shipped configuration with a free listening port, so that this test
    // never collides with a WireGuard server (or another run of it) on 51820.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free UDP port")
        .port();
    let shipped = String::from_utf8(
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/homebase.yaml"))
            .expect("homebase.yaml"),
    )
    .expect("UTF-8");
    let endpoint = "    endpoint: vpn.musterstadt.example:51820\n";
    assert!(
        shipped.contains(endpoint),
        "the shipped wg0 target changed: adapt this test"
    );
    env.write(
        "homebase.yaml",
        shipped.replace(endpoint, &format!("{endpoint}    listen_port: {port}\n")),
    );
    env.run_ok(APPLY);

    let server = Interface::start("hbs");
    wg(&[
        "setconf",
        &server.name,
        &env.join("out/server/wg0.conf").display().to_string(),
    ]);
    let peers = wg(&["show", &server.name, "peers"]);
    assert_eq!(
        peers.lines().count(),
        STAFF_COUNT,
        "peers on the server interface"
    );
    let server_public = wg(&["show", &server.name, "public-key"]);
    assert_eq!(wg(&["show", &server.name, "listen-port"]), port.to_string());
    let server_psks = show_per_peer(&server.name, "preshared-keys");

    let conf = env.server_conf();
    let by_id = conf.peers_by_id();
    // 5 with a preshared key (admins), 15 without, spread over the list.
    let with_psk: Vec<(&String, &ServerPeer)> = by_id
        .iter()
        .filter(|(_, p)| p.preshared_key.is_some())
        .collect();
    let without: Vec<(&String, &ServerPeer)> = by_id
        .iter()
        .filter(|(_, p)| p.preshared_key.is_none())
        .collect();
    assert!(
        with_psk.len() >= 5,
        "fewer than 5 peers with a preshared key"
    );
    let mut sample: Vec<(&String, &ServerPeer)> =
        (0..5).map(|i| with_psk[i * with_psk.len() / 5]).collect();
    sample.extend((0..15).map(|i| without[i * without.len() / 15]));

    let client = Interface::start("hbc");
    let client_conf = env.join("client.conf").display().to_string();
    for (id, peer) in &sample {
        let username = peer.user.as_deref().expect("a # user: line");
        let text = env.read_string(format!("out/{username}/wireguard.conf"));
        env.write("client.conf", strip(&text, None));
        wg(&["setconf", &client.name, &client_conf]);

        let private = conf_value(&text, "PrivateKey").expect("PrivateKey");
        let public = wg_with_input(&["pubkey"], Some(&private));
        let expected = peer.public_key.as_deref().expect("PublicKey");
        assert_eq!(
            public, expected,
            "{id}: `wg pubkey` of the client's key is not the server's peer key"
        );
        assert_eq!(
            public,
            wg_pubkey(&private),
            "{id}: x25519-dalek and `wg pubkey` disagree"
        );
        assert_eq!(
            wg(&["show", &client.name, "public-key"]),
            expected,
            "{id}: the loaded client key"
        );
        assert_eq!(
            wg(&["show", &client.name, "peers"]),
            server_public,
            "{id}: the client's peer is not the server"
        );
        let client_psks = show_per_peer(&client.name, "preshared-keys");
        assert_eq!(
            client_psks.get(&server_public),
            server_psks.get(expected),
            "{id}: preshared keys of client and server differ"
        );
    }

    // Real handshakes over loopback: one client with a preshared key, one without.
    ip(&["link", "set", "up", "dev", &server.name]);
    ip(&["link", "set", "up", "dev", &client.name]);
    for (id, peer) in [with_psk[0], without[0]] {
        let username = peer.user.as_deref().expect("a # user: line");
        let text = env.read_string(format!("out/{username}/wireguard.conf"));
        assert!(
            conf_value(&text, "PersistentKeepalive").is_some(),
            "{id}: no keepalive to start the handshake"
        );
        env.write(
            "client.conf",
            strip(&text, Some(&format!("127.0.0.1:{port}"))),
        );
        wg(&["setconf", &client.name, &client_conf]);
        let key = peer.public_key.clone().expect("PublicKey");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let handshakes = show_per_peer(&server.name, "latest-handshakes");
            if handshakes.get(&key).is_some_and(|t| t != "0") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: no handshake between the client config and the server"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
