//! The live `wireguard` target against real `wireguard-go` interfaces in
//! network namespaces: homebase manages the server interface through
//! `ip netns exec`, clients bring their bundle's config up in their own
//! namespaces and ping the server through the tunnel.
//!
//! Needs root, `wg`, `wireguard-go`, `ip` and `ping`; skipped with a note
//! without them, unless `HOMEBASE_REQUIRE_WG=1` (CI), which makes it fail.

mod common;

use std::time::Instant;

use common::wg::{self, Netns, WgGo};
use common::{conf_value, ServerConf, TestEnv, STAFF_COUNT};

const APPLY: &[&str] = &["apply", "examples/staff.csv", "--yes", "--no-progress"];
const SHIPPED_TARGET: &str = "  wg0:
    kind: wireguard-file
    endpoint: vpn.musterstadt.example:51820
    address: 10.20.0.1/16
";

/// The shipped configuration with the `wg0` target on a live interface.
fn live_config(env: &TestEnv, target: &str) {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/homebase.yaml"))
        .expect("homebase.yaml");
    assert!(
        shipped.contains(SHIPPED_TARGET),
        "the shipped wg0 target changed: adapt this test"
    );
    env.write("homebase.yaml", shipped.replace(SHIPPED_TARGET, target));
}

fn wg_target(name: &str, ns: &str, interface: &str, extra: &str) -> String {
    format!(
        "  {name}:
    kind: wireguard
    interface: {interface}
    endpoint: vpn.musterstadt.example:51820
    address: 10.20.0.1/16
    config_path: server/{interface}.conf
    command: [ip, netns, exec, {ns}]
{extra}"
    )
}

/// A server interface as an admin sets it up: a wg-quick file, loaded.
fn start_server(env: &TestEnv, ns: &Netns, name: &str, port: u16) -> WgGo {
    let server = WgGo::start(ns, name);
    let path = format!("server/{name}.conf");
    if !env.exists(&path) {
        let key = wg::sh("wg", &["genkey"], None);
        env.write(
            &path,
            format!(
                "# gateway in the test namespace\n[Interface]\nAddress = 10.20.0.1/16\nListenPort = {port}\nPrivateKey = {}\n",
                key.trim()
            ),
        );
    }
    server.setconf(&wg::strip(&env.read_string(&path), None));
    server.up("10.20.0.1/16");
    server
}

/// A client namespace joined to the server's by a veth pair, with the
/// person's bundle config loaded and pointed at the server's veth address.
struct Client {
    ns: Netns,
    wg: Option<WgGo>,
    id: String,
    config: String,
    endpoint: String,
}

impl Client {
    fn new(server: &Netns, i: usize, id: &str, config: String) -> Client {
        let s = wg::suffix();
        let ns = Netns::new(format!("hbwgc{i}x{s}"));
        wg::veth(
            server,
            &format!("hbwgv{i}s{s}"),
            &format!("172.31.{i}.1/30"),
            &ns,
            &format!("hbwgv{i}c{s}"),
            &format!("172.31.{i}.2/30"),
        );
        let mut client = Client {
            ns,
            wg: None,
            id: id.to_string(),
            config,
            endpoint: format!("172.31.{i}.1:51820"),
        };
        client.connect();
        client
    }

    /// (Re)load the config: a fresh handshake.
    fn connect(&mut self) {
        self.wg = None;
        // wireguard-go's control socket (/var/run/wireguard/NAME.sock) is
        // not per namespace: every interface needs its own name.
        let name = self.ns.name.replace("hbwgc", "hbwgi");
        let wg = WgGo::start(&self.ns, &name);
        wg.setconf(&wg::strip(&self.config, Some(&self.endpoint)));
        wg.up(&conf_value(&self.config, "Address").expect("Address"));
        wg::sh(
            "ip",
            &[
                "-n",
                &self.ns.name,
                "route",
                "add",
                "10.20.0.1/32",
                "dev",
                &name,
            ],
            None,
        );
        self.wg = Some(wg);
    }

    fn pings(&self, tries: usize) -> bool {
        wg::pings(&self.ns.name, "10.20.0.1", tries)
    }
}

#[test]
fn live_server_tunnels_for_the_sample_and_none_after_offboarding() {
    if !wg::available("the live WireGuard tunnel test") {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    let server_ns = Netns::new(format!("hbwgsrv{}", wg::suffix()));
    let iface = format!("hbwgs{}", wg::suffix());
    let mut server = start_server(&env, &server_ns, &iface, 51820);
    live_config(&env, &wg_target("wg0", &server_ns.name, &iface, ""));
    let conf_path = format!("server/{iface}.conf");

    let started = Instant::now();
    env.run_ok(APPLY);
    eprintln!(
        "apply of {STAFF_COUNT} staff onto the live interface: {:?}",
        started.elapsed()
    );

    // The interface has every person's peer, and the file says the same.
    let live = wg::dump_peers(&server.wg(&["show", &iface, "dump"], None));
    assert_eq!(live.len(), STAFF_COUNT, "peers on the interface");
    let conf = ServerConf::parse(&env.read_string(&conf_path));
    let by_id = conf.peers_by_id();
    assert_eq!(by_id.len(), STAFF_COUNT, "peers in the config file");
    let file = env.read_string(&conf_path);
    assert!(
        file.starts_with("# gateway in the test namespace\n[Interface]\nAddress = 10.20.0.1/16\n"),
        "the [Interface] section was not kept:\n{}",
        &file[..200]
    );
    let mode = std::fs::metadata(env.join(&conf_path)).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    // Every client config loads into a real interface, and its key is the
    // one the live server has for its address.
    let server_public = server
        .wg(&["show", &iface, "public-key"], None)
        .trim()
        .to_string();
    let scratch_ns = Netns::new(format!("hbwgtmp{}", wg::suffix()));
    let scratch = WgGo::start(&scratch_ns, &format!("hbwgt{}", wg::suffix()));
    for (id, peer) in &by_id {
        let user = peer.user.as_deref().expect("# user:");
        let text = env.read_string(format!("out/{user}/wireguard.conf"));
        let private = conf_value(&text, "PrivateKey").expect("PrivateKey");
        let public = wg::sh("wg", &["pubkey"], Some(&private)).trim().to_string();
        let key = peer.public_key.as_deref().expect("PublicKey");
        assert_eq!(
            public, key,
            "{id}: `wg pubkey` is not the server file's peer key"
        );
        let address = conf_value(&text, "Address").expect("Address");
        let (psk, allowed) = live
            .get(key)
            .unwrap_or_else(|| panic!("{id}: not on the interface"));
        assert_eq!(
            allowed, &address,
            "{id}: the interface routes another address"
        );
        assert_eq!(
            conf_value(&text, "PresharedKey")
                .as_deref()
                .unwrap_or("(none)"),
            psk,
            "{id}: preshared keys of client and server differ"
        );
        assert_eq!(
            conf_value(&text, "PublicKey").as_deref(),
            Some(server_public.as_str())
        );
        scratch.setconf(&wg::strip(&text, None));
    }
    drop(scratch);

    // A sample: two with a preshared key (admins), two without.
    let with_psk: Vec<&String> = by_id
        .iter()
        .filter(|(_, p)| p.preshared_key.is_some())
        .map(|(id, _)| id)
        .collect();
    let without: Vec<&String> = by_id
        .iter()
        .filter(|(_, p)| p.preshared_key.is_none())
        .map(|(id, _)| id)
        .collect();
    let sample = [
        with_psk[0],
        with_psk[with_psk.len() - 1],
        without[0],
        without[without.len() / 2],
    ];
    let config_of = |id: &str| {
        let user = by_id[id].user.clone().expect("# user:");
        env.read_string(format!("out/{user}/wireguard.conf"))
    };
    let mut clients: Vec<Client> = sample
        .iter()
        .enumerate()
        .map(|(i, id)| Client::new(&server_ns, i + 1, id, config_of(id)))
        .collect();
    for client in &clients {
        assert!(client.pings(3), "{}: no ping through the tunnel", client.id);
    }

    // Offboarding one: their tunnel stops, the others go on.
    let gone = clients[2].id.clone();
    env.run_ok(&["offboard", &gone, "--yes", "--no-progress"]);
    let gone_key = by_id[&gone].public_key.clone().unwrap();
    let live = wg::dump_peers(&server.wg(&["show", &iface, "dump"], None));
    assert_eq!(live.len(), STAFF_COUNT - 1);
    assert!(
        !live.contains_key(&gone_key),
        "the offboarded peer is still on the interface"
    );
    assert!(
        !env.read_string(&conf_path).contains(&gone_key),
        "still in the config file"
    );
    for client in &clients {
        let expected = client.id != gone;
        assert_eq!(
            client.pings(if expected { 3 } else { 2 }),
            expected,
            "{}: ping after offboarding {gone}",
            client.id
        );
    }

    // Nothing left to do: no drift between store, interface and file.
    let out = env.run(&["plan", "examples/staff.csv", "--detailed-exitcode"]);
    assert_eq!(common::exit_code(&out), 0, "{}", common::describe(&out));

    // A restart from the config file keeps the peers.
    drop(server);
    server = start_server(&env, &server_ns, &iface, 51820);
    let live = wg::dump_peers(&server.wg(&["show", &iface, "dump"], None));
    assert_eq!(live.len(), STAFF_COUNT - 1, "peers after a restart");
    for client in &mut clients {
        client.connect();
        let expected = client.id != gone;
        assert_eq!(
            client.pings(if expected { 3 } else { 2 }),
            expected,
            "{}: ping after the restart",
            client.id
        );
    }
    drop(clients);
    drop(server);
}
