//! The `wg-portal` VPN target through the real binary, against the fake
//! wg-portal of `fake_wg_portal` (a stand-in written from wg-portal
//! v2.3.1's source, not wg-portal; docs/wg-portal.md says what it models).
//!
//! Two scenarios: the example staff (1,200 persons) with the follow-up runs
//! an admin makes, and a small one through the fault proxy for failures.

use crate::common;
use crate::common::proxy::{Faults, Proxy};
use crate::fake_wg_portal::{FakeWgPortal, InterfaceSettings, Peer};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const USER: &str = "homebase@test.example";
const TOKEN: &str = "wgp-token-7f3a9c0e5b1d4e2a8c6f";
const TOKEN_ENV: &str = "HOMEBASE_TEST_WG_PORTAL_TOKEN";
const SERVER_PRIVATE: &str = "GBnvDzL2hXMtBCdgDJnzGu8vzqvLUM7HYOg6sHeZZmg=";
const HAND_MADE: &str = "10.20.0.2/32";

fn start_fake() -> FakeWgPortal {
    let public = common::wg_pubkey(SERVER_PRIVATE);
    let fake = FakeWgPortal::start(
        USER,
        TOKEN,
        InterfaceSettings {
            identifier: "wg0",
            public_key: &public,
            listen_port: 51820,
            addresses: &["10.20.0.1/16"],
            endpoint: "vpn.test.example:51820",
        },
    );
    let key = common::wg_pubkey("aGFuZC1tYWRlIHBlZXIgb2Ygd2ctcG9ydGFsIQ0KISE=");
    fake.add_by_hand("wg0", "Printer gateway", &key, HAND_MADE);
    fake
}

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(url: &str, persons: usize, extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/inventory.csv"),
            dir.path().join("inventory.csv"),
        )
        .unwrap();
        let site = Site { dir };
        site.configure(url, "10.20.0.1/16", extra);
        let staff = common::example_staff_csv();
        let lines: Vec<&str> = staff.lines().take(persons + 1).collect();
        site.write("staff.csv", &(lines.join("\n") + "\n"));
        site
    }

    fn configure(&self, url: &str, address: &str, extra: &str) {
        let config = format!(
            "organisation:\n  name: Test City\n  domain: test.example\n\
             licenses:\n  office-suite: {{seats: 1400}}\n  vpn-client: {{seats: 1300}}\n\
             targets:\n\
             \x20 directory:\n    kind: local\n    base_dn: dc=test,dc=example\n\
             \x20 wg0:\n    kind: wg-portal\n    url: {url}\n    user: {USER}\n    token_env: {TOKEN_ENV}\n\
             \x20   interface: wg0\n    endpoint: vpn.test.example:51820\n    address: {address}\n{extra}\
             \x20 stock:\n    kind: csv\n    stock: inventory.csv\n"
        );
        self.write("homebase.yaml", &config);
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn homebase_with(&self, token: &str, args: &[&str]) -> std::process::Output {
        Command::cargo_bin("homebase")
            .unwrap()
            .current_dir(self.dir.path())
            .env(TOKEN_ENV, token)
            .env("HOMEBASE_RETRY_BASE_MS", "0")
            .env("NO_COLOR", "1")
            .args(["--no-progress", "--yes"])
            .args(args)
            .output()
            .unwrap()
    }

    fn homebase(&self, args: &[&str]) -> std::process::Output {
        self.homebase_with(TOKEN, args)
    }

    /// Username → the preshared key of the person's bundle, if any.
    fn bundle_psks(&self) -> BTreeMap<String, String> {
        let mut psks = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir.path().join("out")).unwrap() {
            let entry = entry.unwrap();
            if let Ok(text) = std::fs::read_to_string(entry.path().join("wireguard.conf")) {
                if let Some(psk) = common::conf_value(&text, "PresharedKey") {
                    psks.insert(entry.file_name().into_string().unwrap(), psk);
                }
            }
        }
        psks
    }

    /// Username → the public key of the person's bundle.
    fn bundle_keys(&self) -> BTreeMap<String, String> {
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(self.path("out")).unwrap() {
            let entry = entry.unwrap();
            if let Ok(text) = std::fs::read_to_string(entry.path().join("wireguard.conf")) {
                let private = common::conf_value(&text, "PrivateKey").unwrap();
                keys.insert(
                    entry.file_name().into_string().unwrap(),
                    common::wg_pubkey(&private),
                );
            }
        }
        keys
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

fn usernames(site: &Site) -> BTreeMap<String, String> {
    let out = site.homebase(&["plan", "staff.csv", "--format", "json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    plan["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["username"].as_str().unwrap().to_string(),
                p["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn by_name(fake: &FakeWgPortal) -> BTreeMap<String, Peer> {
    fake.peers("wg0")
        .into_iter()
        .map(|p| (p.display_name.clone(), p))
        .collect()
}

/// One peer per person named with their staff id, with their bundle's key
/// and no private key; no address twice; the hand-made peer as it was.
fn assert_one_peer_each(site: &Site, fake: &FakeWgPortal, persons: usize) {
    let peers = by_name(fake);
    assert_eq!(peers["Printer gateway"].addresses, [HAND_MADE]);
    assert_eq!(
        peers.len(),
        persons + 1,
        "one peer per person and the hand-made one"
    );
    let addresses: BTreeSet<&String> = peers.values().flat_map(|p| &p.addresses).collect();
    assert_eq!(addresses.len(), peers.len(), "an address is used twice");
    let keys = site.bundle_keys();
    let psks = site.bundle_psks();
    assert!(!psks.is_empty(), "no profile asked for a preshared key");
    for (username, id) in usernames(site) {
        let name = format!("{username} ({id})");
        let peer = peers.get(&name).unwrap_or_else(|| panic!("no peer {name}"));
        assert_eq!(keys.get(&username), Some(&peer.public_key), "{name}: key");
        assert_eq!(peer.identifier, peer.public_key);
        assert_eq!(
            psks.get(&username).map(String::as_str).unwrap_or(""),
            peer.preshared_key,
            "{name}: preshared key"
        );
        assert_eq!(peer.notes, format!("homebase: {id}"));
        assert_eq!(
            peer.model["PrivateKey"], "",
            "{name}: a private key was sent"
        );
    }
}

#[test]
fn wg_portal_example_staff_end_to_end() {
    let fake = start_fake();
    let site = Site::new(&fake.url, 1200, "");

    let out = site.homebase(&["plan", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(fake.writes(), 0, "plan changed something");

    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_one_peer_each(&site, &fake, 1200);

    let out = site.homebase(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // A department change: no write reaches wg-portal.
    let (header, rows) = common::example_staff_rows();
    let column = header.split(',').position(|c| c == "department").unwrap();
    let mut rows: Vec<String> = rows.into_iter().take(1200).collect();
    let mut fields: Vec<String> = rows[5].split(',').map(str::to_string).collect();
    fields[column] = format!("{} (moved)", fields[column]);
    rows[5] = fields.join(",");
    site.write("staff.csv", &format!("{header}\n{}\n", rows.join("\n")));
    let mark = fake.hits().len();
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    let sent: Vec<String> = fake.hits()[mark..]
        .iter()
        .filter(|h| h.method != "GET")
        .map(|h| format!("{} {}", h.method, h.path))
        .collect();
    assert!(
        sent.is_empty(),
        "a department change wrote to wg-portal: {sent:?}"
    );

    // An offboarding removes exactly that peer.
    let ids = usernames(&site);
    let (gone_user, gone_id) = ids
        .iter()
        .nth(7)
        .map(|(u, i)| (u.clone(), i.clone()))
        .unwrap();
    let before: BTreeSet<String> = by_name(&fake).into_keys().collect();
    let out = site.homebase(&["offboard", &gone_id]);
    assert!(out.status.success(), "{}", describe(&out));
    let after: BTreeSet<String> = by_name(&fake).into_keys().collect();
    let removed: Vec<&String> = before.difference(&after).collect();
    assert_eq!(removed, [&format!("{gone_user} ({gone_id})")]);
    assert!(after.is_subset(&before));
    assert_eq!(by_name(&fake)["Printer gateway"].addresses, [HAND_MADE]);

    // Every client config loads with `wg setconf`, with the key wg-portal holds.
    if common::wg::available("the wg-portal client configs test") {
        let ns = common::wg::Netns::new(format!("hbwgwp{}", common::wg::suffix()));
        let wg = common::wg::WgGo::start(&ns, "hbwp0");
        let peers = by_name(&fake);
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for (username, id) in &ids {
            let Some(peer) = peers.get(&format!("{username} ({id})")) else {
                assert_eq!(username, &gone_user);
                continue;
            };
            let conf =
                std::fs::read_to_string(site.path(&format!("out/{username}/wireguard.conf")))
                    .unwrap();
            assert_eq!(
                common::conf_value(&conf, "PublicKey").as_deref(),
                Some(common::wg_pubkey(SERVER_PRIVATE).as_str()),
                "{username}: the interface's key"
            );
            let file = dir.path().join(format!("{:05}.conf", expected.len()));
            std::fs::write(&file, common::wg::strip(&conf, None)).unwrap();
            expected.push((username.clone(), peer.public_key.clone()));
        }
        assert_eq!(expected.len(), 1199);
        let script = format!(
            "for f in {}/*.conf; do wg setconf {} \"$f\" || exit 1; wg show {} public-key; done",
            dir.path().display(),
            wg.name,
            wg.name
        );
        let shown = common::wg::in_ns(&wg.ns, &["sh", "-c", &script], None);
        let shown: Vec<&str> = shown.lines().collect();
        assert_eq!(shown.len(), expected.len());
        for (line, (username, key)) in shown.iter().zip(&expected) {
            assert_eq!(
                line, key,
                "{username}: the key wg loaded is not wg-portal's"
            );
        }
    }
}

#[test]
fn wg_portal_faults_credentials_and_refusals() {
    let fake = start_fake();
    let proxy = Proxy::start(
        fake.addr,
        Faults {
            p503: 0.08,
            p429: 0.05,
            retry_after_secs: 0,
            p_drop: 0.05,
            stalls: 3,
            stall_every: 17,
            stall: std::time::Duration::from_secs(4),
            seed: 24,
            ..Faults::default()
        },
    )
    .unwrap();
    let url = proxy.url("");
    let url = url.trim_end_matches('/');
    let site = Site::new(url, 60, "    timeout_seconds: 2\n");

    // Through 5xx, 429, dropped connections (a create whose answer was lost
    // finds its peer) and stalls: everyone once.
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_one_peer_each(&site, &fake, 60);
    let log = proxy.take_log();
    assert!(log.iter().any(|s| s.status == 503), "no 503 injected");
    assert!(log.iter().any(|s| s.status == 0), "no connection dropped");
    assert!(log.iter().any(|s| s.status == 429), "no 429 injected");
    proxy.set_faults(Faults::default());

    // -vv: a line per request, without a credential.
    let out = site.homebase(&["plan", "staff.csv", "-vv"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("target \"wg0\": GET /api/v1/peer/by-interface/wg0 → ok"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "-vv printed a credential");

    // A wrong token: exit 2 before anything changes; no token printed.
    let writes = fake.writes();
    let wrong = "wgp-wrong-token-000000000000";
    for command in ["plan", "apply"] {
        let out = site.homebase_with(wrong, &[command, "staff.csv"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains("invalid credentials"), "{all}");
        for secret in [wrong, TOKEN] {
            assert!(!all.contains(secret), "a token was printed: {all}");
        }
    }
    assert_eq!(fake.writes(), writes);

    // homebase.yaml and the interface disagree: a plan error naming both.
    site.configure(url, "10.20.255.254/16", "    timeout_seconds: 2\n");
    let out = site.homebase(&["plan", "staff.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("10.20.255.254/16") && stderr.contains("10.20.0.1/16"),
        "{stderr}"
    );
    site.configure(url, "10.20.0.1/16", "    timeout_seconds: 2\n");

    // wg-portal refuses a key another peer holds: someone moved a person's
    // peer to another interface by hand. Exit 3 naming the person and
    // wg-portal's message.
    let ids = usernames(&site);
    let (victim, victim_id) = ids
        .iter()
        .next()
        .map(|(u, i)| (u.clone(), i.clone()))
        .unwrap();
    let theirs = by_name(&fake)[&format!("{victim} ({victim_id})")].clone();
    fake.delete_by_hand(&theirs.identifier);
    fake.add_by_hand("wg1", "moved by hand", &theirs.public_key, "10.99.0.2/32");
    let out = site.homebase(&["apply", "staff.csv"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&victim) && stderr.contains("already exists: duplicate entry"),
        "{stderr}"
    );
}

#[test]
fn wg_portal_adopt_takes_over_a_peer_named_by_staff_id() {
    let fake = start_fake();
    let site = Site::new(&fake.url, 20, "");
    let out = site.homebase(&["plan", "staff.csv", "--format", "json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let person = plan["persons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["profile"] == "office")
        .unwrap();
    let (id, username) = (
        person["id"].as_str().unwrap().to_string(),
        person["username"].as_str().unwrap().to_string(),
    );
    let key = common::wg_pubkey("b2xkIHBlZXIgb2Ygd2ctcG9ydGFsIHVzZXIhISEhISE=");
    fake.add_by_hand("wg0", &id, &key, "10.20.0.40/32");

    let out = site.homebase(&["adopt", "staff.csv", "--yes"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains("1 by comment"),
        "{}",
        describe(&out)
    );
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));

    let peers = fake.peers("wg0");
    let theirs: Vec<&Peer> = peers
        .iter()
        .filter(|p| p.public_key == key || p.notes == format!("homebase: {id}"))
        .collect();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0].addresses, ["10.20.0.40/32"]);
    assert_eq!(theirs[0].public_key, key);
    let conf =
        std::fs::read_to_string(site.path(&format!("out/{username}/wireguard.conf"))).unwrap();
    assert!(!conf.contains("PrivateKey ="), "a key was made up:\n{conf}");
    assert_eq!(peers.len(), 21);
    let out = site.homebase(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}
