//! A lost state store with every kind of target at once: the 1,200 example
//! staff applied to slapd, a live WireGuard interface (wireguard-go in a
//! network namespace), OpenVPN (homebase's CA; the field profile) and the
//! Snipe-IT fake. Then `.homebase/` is deleted: `apply` refuses (it would
//! make second accounts), `adopt --all --yes` rebuilds the store from the
//! targets and the bundles, the next plan has nothing to do, and a further
//! apply changes nothing anywhere — no account, peer, certificate or
//! checkout made or changed, nobody's password, key or certificate replaced.
//!
//! Needs root, slapd, wireguard-go and openvpn/openssl; skipped with a note
//! without them unless the `HOMEBASE_REQUIRE_*` flags say otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::file_contents;
use crate::common::wg::{self, Netns, WgGo};
use crate::fake_snipeit::{FakeSnipeit, Options, Version};
use crate::ldap::{Slapd, Workspace};

const TOKEN: &str = "lost-state-token-4711";
const TOKEN_ENV: &str = "HOMEBASE_TEST_SNIPEIT_TOKEN";
const WG0: &str = "  wg0:\n    kind: wireguard-file\n    endpoint: vpn.musterstadt.example:51820\n    address: 10.20.0.1/16\n";
const STOCK: &str = "  stock:\n    kind: csv\n    stock: examples/inventory.csv\n";

/// The interface's peers: public key → (preshared key, allowed IPs).
fn peers(gw: &WgGo) -> BTreeMap<String, (String, String)> {
    wg::dump_peers(&gw.wg(&["show", &gw.name, "dump"], None))
}

#[test]
fn every_kind_at_once_survives_a_lost_state_store() {
    if !wg::available("the lost-state test across every kind")
        || !crate::common::tools_available(
            "the lost-state test across every kind",
            "HOMEBASE_REQUIRE_OPENVPN",
            false,
            &[("openssl", "version"), ("openvpn", "--version")],
        )
    {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let fake = FakeSnipeit::start(Options {
        token: TOKEN.into(),
        limit: 6000,
        window: Duration::from_secs(6),
        version: Version::V7,
    });
    let inventory = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/inventory.csv"
    ))
    .expect("inventory.csv");
    fake.seed_csv(&inventory, |_, _| true);

    // The gateway: wireguard-go in a namespace, as an admin set it up.
    let suffix = wg::suffix();
    let ns = Netns::new(format!("hbls{suffix}"));
    let gw = WgGo::start(&ns, &format!("hbls{suffix}"));
    let ws = Workspace::new(&slapd.target_yaml(), &slapd.env["LDAP_ROOTPW"]);
    let key = wg::sh("wg", &["genkey"], None);
    let conf = format!(
        "[Interface]\nAddress = 10.20.0.1/16\nListenPort = 51820\nPrivateKey = {}\n",
        key.trim()
    );
    // The gateway's own config file (`config_path`, read and written on the
    // gateway through the command prefix, which runs in the workspace).
    std::fs::create_dir_all(ws.path("server")).expect("server/");
    std::fs::write(ws.path(&format!("server/{}.conf", gw.name)), &conf).expect("conf");
    gw.setconf(&wg::strip(&conf, None));
    gw.up("10.20.0.1/16");

    // homebase.yaml: slapd, the live interface, Snipe-IT, and an OpenVPN CA
    // (made by `homebase init --ca` elsewhere) for the field profile.
    let init = tempfile::tempdir().expect("temp dir");
    let made = ws
        .command()
        .args(["init", &init.path().display().to_string(), "--ca"])
        .output()
        .expect("init --ca");
    assert!(made.status.success(), "init --ca failed");
    for file in ["ca.crt", "ca.key"] {
        std::fs::create_dir_all(ws.path("pki")).expect("pki/");
        std::fs::copy(
            init.path().join("pki").join(file),
            ws.path(&format!("pki/{file}")),
        )
        .expect("copy the CA");
    }
    std::fs::create_dir_all(ws.path("profiles")).expect("profiles/");
    for file in ["base.yaml", "office.yaml", "admin.yaml", "field.yaml"] {
        std::fs::copy(
            init.path().join("profiles").join(file),
            ws.path(&format!("profiles/{file}")),
        )
        .expect("copy a profile");
    }
    let field = std::fs::read_to_string(ws.path("profiles/field.yaml")).expect("field.yaml");
    let old_vpn = "vpn:\n  tunnel: full\n  pool: 10.20.128.0/18\n";
    assert!(field.contains(old_vpn), "the shipped field profile changed");
    let field = field
        .replace(
            old_vpn,
            "vpn:\n  kind: openvpn\n  target: ovpn\n  tunnel: full\n  pool: 10.30.128.0/18\n  dns: [10.30.0.1]\n",
        )
        .replace("  windows_full_tunnel_split: true\n", "")
        + "\nartifacts:\n  - openvpn.ovpn.j2\n  - welcome.md.j2\n  - welcome.html.j2\n  - handover.html.j2\n";
    std::fs::write(ws.path("profiles/field.yaml"), field).expect("field.yaml");
    let config = std::fs::read_to_string(ws.path("homebase.yaml")).expect("homebase.yaml");
    assert!(
        config.contains(WG0) && config.contains(STOCK),
        "the shipped targets changed"
    );
    let live = format!(
        "  wg0:\n    kind: wireguard\n    interface: {}\n    endpoint: vpn.musterstadt.example:51820\n    address: 10.20.0.1/16\n    config_path: server/{}.conf\n    command: [ip, netns, exec, {}]\n",
        gw.name, gw.name, ns.name
    );
    let assets = format!(
        "  stock:\n    kind: snipeit\n    url: {}\n    token_env: {TOKEN_ENV}\n    requests_per_minute: 6000\n    kinds:\n      notebook: {{category: Notebooks}}\n      monitor: {{category: Monitors}}\n      headset: {{category: Headsets}}\n  ovpn:\n    kind: openvpn\n    remote: 127.0.0.1\n    address: 10.30.0.1/16\n    ca_cert: pki/ca.crt\n    ca_key: pki/ca.key\n",
        fake.url
    );
    let config = config.replace(WG0, &live).replace(STOCK, &assets);
    let config = if config.contains("\nprofiles:") {
        config
    } else {
        config + "profiles: profiles\n"
    };
    std::fs::write(ws.path("homebase.yaml"), config).expect("homebase.yaml");
    ws.example_staff(None);
    let run = |args: &[&str]| {
        let out = ws
            .command()
            .env(TOKEN_ENV, TOKEN)
            .args(args)
            .output()
            .expect("run homebase");
        crate::ldap::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };

    let applied = run(&["apply", "staff.csv", "--yes", "--no-progress"]).ok();
    assert!(applied.stderr.contains("0 failed"), "{}", applied.stderr);
    let accounts = slapd.search("(employeeNumber=*)", &["employeeNumber"]);
    assert_eq!(accounts.len(), 1200, "accounts in slapd");
    let peers_before = peers(&gw);
    let holdings_before = fake.holdings();
    assert!(peers_before.len() > 900, "{} peers", peers_before.len());
    assert!(!holdings_before.is_empty(), "no checkouts");
    let out_before = file_contents(&ws.path("out"));
    let gateway_conf = ws.path(&format!("server/{}.conf", gw.name));
    let conf_before = std::fs::read(&gateway_conf).expect("the gateway's config");
    let ovpn_count = out_before
        .keys()
        .filter(|k| k.ends_with("openvpn.ovpn"))
        .count();
    assert!(ovpn_count > 50, "{ovpn_count} OpenVPN bundles");
    let writes_before = fake.writes();

    std::fs::remove_dir_all(ws.path(".homebase")).expect("rm .homebase");
    let refused = run(&["apply", "staff.csv", "--yes", "--no-progress"]);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);

    let adopt = run(&["adopt", "--all", "staff.csv", "--yes", "--no-progress"]).ok();
    for want in [
        "  adopt:        1200 (1200 by staff id)",
        "bundles: 1200 found",
    ] {
        assert!(adopt.stdout.contains(want), "{want}:\n{}", adopt.stdout);
    }
    let plan = run(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);

    // A further apply changes nothing anywhere.
    run(&["apply", "staff.csv", "--yes", "--no-progress"]).ok();
    assert_eq!(
        slapd
            .search("(employeeNumber=*)", &["employeeNumber"])
            .len(),
        1200,
        "a second account was made"
    );
    assert_eq!(peers(&gw), peers_before, "the interface's peers changed");
    assert_eq!(fake.holdings(), holdings_before, "the checkouts changed");
    assert_eq!(fake.writes(), writes_before, "Snipe-IT was written to");
    assert_eq!(
        std::fs::read(&gateway_conf).expect("the gateway's config"),
        conf_before,
        "the gateway's config file changed"
    );
    let out_after = file_contents(&ws.path("out"));
    let changed: Vec<&std::path::PathBuf> = out_before
        .iter()
        .filter(|(path, bytes)| out_after.get(*path) != Some(bytes))
        .map(|(path, _)| path)
        .collect();
    assert!(
        changed.is_empty(),
        "{} bundle or server files changed (passwords, keys, certificates must stay), e.g. {:?}",
        changed.len(),
        &changed[..changed.len().min(5)]
    );
}
