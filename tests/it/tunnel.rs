//! The live `wireguard` target against real `wireguard-go` interfaces in
//! network namespaces: homebase manages the server interface through
//! `ip netns exec`, clients bring their bundle's config up in their own
//! namespaces and ping the server through the tunnel.
//!
//! Needs root, `wg`, `wireguard-go`, `ip` and `ping`; skipped with a note
//! without them, unless `HOMEBASE_REQUIRE_WG=1` (CI), which makes it fail.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
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

/// A live WireGuard target whose commands run inside the netns `ns`.
fn wg_target(name: &str, ns: &str, interface: &str) -> String {
    live_target(name, interface, &format!("[ip, netns, exec, {ns}]"))
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
    live_config(&env, &wg_target("wg0", &server_ns.name, &iface));
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

const PRIVATE: &str = "uH5uQZ0bVx0nDLcjMNNHoEsp9fqzbIkE1r8g2e0bqmM=";
const PUBLIC: &str = "8uoSH1hCaQxkRTz2Uj0TXvGDGfZr28+4sygmSCt1xjs=";

/// A stand-in for the gateway: a script behind the command prefix that
/// answers `wg show IFACE dump` with `dump` and runs anything else (`cat`)
/// itself (no root, no WireGuard needed).
fn fake_gateway(env: &TestEnv, name: &str, dump: &str) -> String {
    env.write(format!("{name}.dump"), dump);
    let dump_path = env.join(format!("{name}.dump"));
    env.write(
        format!("{name}.sh"),
        format!(
            "case \"$1 $2\" in 'wg show') cat '{}';; *) exec \"$@\";; esac\n",
            dump_path.display()
        ),
    );
    format!("[sh, {}]", env.join(format!("{name}.sh")).display())
}

/// A live WireGuard target reached through `command` (a YAML list).
fn live_target(name: &str, interface: &str, command: &str) -> String {
    format!(
        "  {name}:
    kind: wireguard
    interface: {interface}
    endpoint: vpn.musterstadt.example:51820
    address: 10.20.0.1/16
    config_path: server/{interface}.conf
    command: {command}
"
    )
}

#[test]
fn a_malformed_dump_is_refused_by_line_without_showing_keys() {
    let env = TestEnv::new();
    env.copy_examples();
    let psk = "QOHsu9NjPzh3sHtq+ymMTDIz7vF6tRiLUnEa7aKyZ98=";
    let command = fake_gateway(
        &env,
        "gw",
        &format!("{PRIVATE}\t{PUBLIC}\t51820\toff\n{PUBLIC}\t{psk}\t(none)\t10.20.0.2/33\t0\t0\t0\toff\n"),
    );
    live_config(&env, &live_target("wg0", "wg0", &command));
    let out = env.run_expect(&["plan", "examples/staff.csv"], 1);
    let err = common::stderr(&out);
    assert!(
        err.contains("malformed `wg show dump` output, line 2"),
        "{err}"
    );
    assert!(err.contains("allowed IP \"10.20.0.2/33\""), "{err}");
    assert!(err.contains("wireguard target \"wg0\""), "{err}");
    assert!(
        !err.contains(PRIVATE) && !err.contains(psk),
        "a key in: {err}"
    );
}

#[test]
fn a_missing_command_or_interface_is_named() {
    let env = TestEnv::new();
    env.copy_examples();
    live_config(
        &env,
        &live_target("wg0", "wg0", "[hbwg-no-such-ssh, vpn-gw-1, sudo]"),
    );
    let out = env.run_expect(&["plan", "examples/staff.csv"], 1);
    let err = common::stderr(&out);
    assert!(
        err.contains(
            "`hbwg-no-such-ssh vpn-gw-1 sudo wg show wg0 dump`: `hbwg-no-such-ssh` was not found"
        ),
        "{err}"
    );

    if !wg::available("the missing-interface check") {
        return;
    }
    let ns = Netns::new(format!("hbwgbad{}", wg::suffix()));
    let command = format!("[ip, netns, exec, {}]", ns.name);
    live_config(&env, &live_target("wg0", "hbwgnope", &command));
    for args in [&["plan", "examples/staff.csv"][..], APPLY] {
        let out = env.run_expect(args, 1);
        let err = common::stderr(&out);
        assert!(
            err.contains(&format!(
                "`ip netns exec {} wg show hbwgnope dump` failed (exit 1)",
                ns.name
            )),
            "{err}"
        );
    }
    assert!(!env.exists("out"), "a failed connect wrote bundles");
}

#[test]
fn profiles_share_the_load_of_two_gateways() {
    let env = TestEnv::new();
    env.copy_examples();
    let dump = format!("{PRIVATE}\t{PUBLIC}\t51820\toff\n");
    let a = live_target("gw-a", "wga", &fake_gateway(&env, "a", &dump));
    let b = live_target("gw-b", "wgb", &fake_gateway(&env, "b", &dump));
    live_config(&env, &format!("{a}{b}"));
    // The shipped profiles, with field staff and admins on the second gateway.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
    for name in ["base", "office", "field", "admin"] {
        let text = std::fs::read_to_string(format!("{shipped}/{name}.yaml")).unwrap();
        let text = match name {
            "base" => text.replace("  target: wg0\n", "  target: gw-a\n"),
            "field" | "admin" => text.replace("\nvpn:\n", "\nvpn:\n  target: gw-b\n"),
            _ => text,
        };
        env.write(format!("profiles/{name}.yaml"), text);
    }
    let config = env.read_string("homebase.yaml");
    env.write("homebase.yaml", format!("{config}\nprofiles: profiles\n"));

    let plan = env.plan_json(&["examples/staff.csv"]);
    let mut per_gateway: BTreeMap<(String, String), usize> = BTreeMap::new();
    for person in plan["persons"].as_array().unwrap() {
        for action in person["actions"].as_array().unwrap() {
            if action["resource"] == "vpn_peer" {
                let key = (
                    person["profile"].as_str().unwrap().to_string(),
                    action["target"].as_str().unwrap().to_string(),
                );
                *per_gateway.entry(key).or_default() += 1;
            }
        }
    }
    let targets: BTreeSet<(&str, &str)> = per_gateway
        .keys()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        targets,
        BTreeSet::from([("admin", "gw-b"), ("field", "gw-b"), ("office", "gw-a")]),
        "{per_gateway:?}"
    );
    assert_eq!(per_gateway.values().sum::<usize>(), STAFF_COUNT);
}
