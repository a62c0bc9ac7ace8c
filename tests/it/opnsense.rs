//! The `opnsense` VPN target through the real binary, against the fake
//! OPNsense of `fake_opnsense` (a stand-in written from OPNsense 25.7.11's
//! source, not OPNsense; docs/opnsense.md says what it models).
//!
//! Two scenarios: the example staff (1,200 persons) with the follow-up runs
//! an admin makes, and a small one through the fault proxy for failures.

use crate::common;
use crate::common::proxy::{Faults, Proxy};
use crate::fake_opnsense::{FakeOpnsense, InstanceSettings, Peer};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use assert_cmd::Command;

const KEY: &str = "w86XNZob/8Oq8aC5r0kbNarNtdpoQU781fyoeaOBQsBwkXUt";
const SECRET: &str = "XeD26XVrJ5ilAc/EmglCRC+0j2e57tRsjHwFepOseySWLM53pJASeTA3";
const KEY_ENV: &str = "HOMEBASE_TEST_OPNSENSE_KEY";
const SECRET_ENV: &str = "HOMEBASE_TEST_OPNSENSE_SECRET";
/// The instance's private key (the fake only knows the public one).
const SERVER_PRIVATE: &str = "2BJtcgPUjHfKKN3yMvTiVQbJ/UgHj2tcZE6xU/4BdGM=";
/// The address of a peer an admin made by hand, inside the office pool.
const HAND_MADE: &str = "10.20.0.2/32";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn start_fake() -> FakeOpnsense {
    let public = common::wg_pubkey(SERVER_PRIVATE);
    let fake = FakeOpnsense::start(
        KEY,
        SECRET,
        InstanceSettings {
            name: "homeoffice",
            public_key: &public,
            tunneladdress: "10.20.0.1/16",
            port: "51820",
            endpoint: "vpn.test.example:51820",
        },
    );
    let key = common::wg_pubkey("aGFuZC1tYWRlIHBlZXIgb2YgdGhlIGZpcmV3YWxsISE=");
    fake.add_by_hand("printer-gw", &key, HAND_MADE);
    fake
}

/// A folder with `homebase.yaml` (embedded profiles; local directory, the
/// OPNsense target as `wg0`, the example stock) and the first `persons` of
/// the example staff list as `staff.csv`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// `extra`: more settings of the OPNsense target, each line indented by four.
    fn new(url: &str, persons: usize, extra: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            examples().join("inventory.csv"),
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
             \x20 wg0:\n    kind: opnsense\n    url: {url}\n    key_env: {KEY_ENV}\n    secret_env: {SECRET_ENV}\n\
             \x20   instance: homeoffice\n    endpoint: vpn.test.example:51820\n    address: {address}\n{extra}\
             \x20 stock:\n    kind: csv\n    stock: inventory.csv\n"
        );
        self.write("homebase.yaml", &config);
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }

    fn homebase_with(&self, secret: &str, args: &[&str]) -> std::process::Output {
        Command::cargo_bin("homebase")
            .unwrap()
            .current_dir(self.dir.path())
            .env(KEY_ENV, KEY)
            .env(SECRET_ENV, secret)
            .env("HOMEBASE_RETRY_BASE_MS", "0")
            .env("NO_COLOR", "1")
            .args(["--no-progress", "--yes"])
            .args(args)
            .output()
            .unwrap()
    }

    fn homebase(&self, args: &[&str]) -> std::process::Output {
        self.homebase_with(SECRET, args)
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

    /// Username → public key of the person's bundle (`wireguard.conf`).
    fn bundle_keys(&self) -> BTreeMap<String, String> {
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir.path().join("out")).unwrap() {
            let entry = entry.unwrap();
            let conf = entry.path().join("wireguard.conf");
            if let Ok(text) = std::fs::read_to_string(&conf) {
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

/// Username → (staff id) of the plan's persons.
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

/// Peers by name, with the same list live as saved (every change applied).
fn peers_live(fake: &FakeOpnsense) -> BTreeMap<String, Peer> {
    let saved: BTreeMap<String, Peer> = fake
        .saved()
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    let live: BTreeMap<String, Peer> = fake
        .live()
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    assert_eq!(saved.len(), live.len(), "saved and live differ");
    assert!(saved == live, "a saved change is not live");
    saved
}

/// Every person has one peer named with their staff id, with their
/// bundle's key; no address twice; the hand-made peer as it was.
fn assert_one_peer_each(site: &Site, fake: &FakeOpnsense, persons: usize) {
    let peers = peers_live(fake);
    let hand = &peers["printer-gw"];
    assert_eq!(hand.tunneladdress, HAND_MADE);
    assert_eq!(
        peers.len(),
        persons + 1,
        "one peer per person and the hand-made one"
    );
    let addresses: BTreeSet<&str> = peers.values().map(|p| p.tunneladdress.as_str()).collect();
    assert_eq!(addresses.len(), peers.len(), "an address is used twice");
    let keys = site.bundle_keys();
    let psks = site.bundle_psks();
    assert!(!psks.is_empty(), "no profile asked for a preshared key");
    let ids = usernames(site);
    for (username, id) in &ids {
        let name = format!("{username}-{id}");
        let peer = peers.get(&name).unwrap_or_else(|| panic!("no peer {name}"));
        assert_eq!(keys.get(username), Some(&peer.pubkey), "{name}: key");
        assert_eq!(
            psks.get(username).map(String::as_str).unwrap_or(""),
            peer.psk,
            "{name}: preshared key"
        );
    }
}

#[test]
fn opnsense_example_staff_end_to_end() {
    let fake = start_fake();
    let site = Site::new(&fake.url, 1200, "");

    // The plan names the duration and changes nothing.
    let out = site.homebase(&["plan", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("wg0 (opnsense)") && l.contains("requests"))
        .unwrap_or_else(|| panic!("no duration line for wg0 in\n{stdout}"));
    assert!(line.contains("1203 requests"), "{line}");
    eprintln!("plan: {}", line.trim());
    assert_eq!(fake.writes(), 0, "plan changed something");

    // The run: every change live with a few reconfigures.
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_one_peer_each(&site, &fake, 1200);
    let reconfigures = fake.reconfigures();
    eprintln!(
        "1200 persons: {reconfigures} reconfigure(s), {} writes",
        fake.writes()
    );
    assert!(
        (1..=4).contains(&reconfigures),
        "{reconfigures} reconfigures"
    );

    // Nothing to do: the second plan says so.
    let out = site.homebase(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // A department change has no VPN effect: no write reaches the firewall.
    let (header, rows) = common::example_staff_rows();
    let column = header.split(',').position(|c| c == "department").unwrap();
    let mut rows: Vec<String> = rows.into_iter().take(1200).collect();
    let mut fields: Vec<String> = rows[5].split(',').map(str::to_string).collect();
    fields[column] = format!("{} (moved)", fields[column]);
    rows[5] = fields.join(",");
    site.write("staff.csv", &format!("{header}\n{}\n", rows.join("\n")));
    let (mark, reconfigures) = (fake.hits().len(), fake.reconfigures());
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    let sent: Vec<String> = fake.hits()[mark..]
        .iter()
        .filter(|h| h.method != "GET")
        .map(|h| format!("{} {}", h.method, h.path))
        .collect();
    assert!(
        sent.is_empty(),
        "a department change wrote to the firewall: {sent:?}"
    );
    assert_eq!(fake.reconfigures(), reconfigures);

    // An offboarding removes exactly that peer, with one reconfigure.
    let ids = usernames(&site);
    let (gone_user, gone_id) = ids
        .iter()
        .nth(7)
        .map(|(u, i)| (u.clone(), i.clone()))
        .unwrap();
    let before: BTreeSet<String> = peers_live(&fake).into_keys().collect();
    let out = site.homebase(&["offboard", &gone_id]);
    assert!(out.status.success(), "{}", describe(&out));
    let after: BTreeSet<String> = peers_live(&fake).into_keys().collect();
    let removed: Vec<&String> = before.difference(&after).collect();
    assert_eq!(removed, [&format!("{gone_user}-{gone_id}")]);
    assert!(after.is_subset(&before));
    assert_eq!(fake.reconfigures(), reconfigures + 1);

    // The hand-made peer survived every run, its address never handed out.
    assert_eq!(peers_live(&fake)["printer-gw"].tunneladdress, HAND_MADE);

    // Every client config loads with `wg setconf`, with the key the firewall holds.
    if common::wg::available("the OPNsense client configs test") {
        let ns = common::wg::Netns::new(format!("hbwgop{}", common::wg::suffix()));
        let wg = common::wg::WgGo::start(&ns, "hbop0");
        let peers = peers_live(&fake);
        let ids = usernames(&site);
        // One shell in the namespace loads them all, one after another, and
        // prints the key the interface has after each.
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for (username, id) in &ids {
            let Some(peer) = peers.get(&format!("{username}-{id}")) else {
                assert_eq!(username, &gone_user);
                continue;
            };
            let conf = site.read(&format!("out/{username}/wireguard.conf"));
            assert_eq!(
                common::conf_value(&conf, "PublicKey").as_deref(),
                Some(common::wg_pubkey(SERVER_PRIVATE).as_str()),
                "{username}: the instance's key"
            );
            assert_eq!(
                common::conf_value(&conf, "Endpoint").as_deref(),
                Some("vpn.test.example:51820")
            );
            let file = dir.path().join(format!("{:05}.conf", expected.len()));
            std::fs::write(&file, common::wg::strip(&conf, None)).unwrap();
            expected.push(format!("{username} {}", peer.pubkey));
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
        for (line, want) in shown.iter().zip(&expected) {
            let (username, key) = want.split_once(' ').unwrap();
            assert_eq!(
                *line, key,
                "{username}: the key wg loaded is not the firewall's"
            );
        }
    }
}

#[test]
fn opnsense_faults_credentials_validation_and_reconfigure() {
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
            seed: 23,
            ..Faults::default()
        },
    )
    .unwrap();
    let url = proxy.url("");
    let url = url.trim_end_matches('/');
    let site = Site::new(url, 60, "    timeout_seconds: 2\n");

    // Through 5xx, 429, dropped connections and stalls: everyone once.
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
        stderr.contains("target \"wg0\": GET /api/wireguard/client/search_client → ok"),
        "{stderr}"
    );
    for secret in [KEY, SECRET] {
        assert!(!stderr.contains(secret), "-vv printed a credential");
    }

    // A wrong secret: exit 2 before anything changes; neither credential printed.
    let writes = fake.writes();
    let wrong = "not-the-secret-0123456789";
    for command in ["plan", "apply"] {
        let out = site.homebase_with(wrong, &[command, "staff.csv"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(all.contains("401"), "{all}");
        for secret in [KEY, wrong, SECRET] {
            assert!(!all.contains(secret), "a credential was printed: {all}");
        }
    }
    assert_eq!(fake.writes(), writes);

    // homebase.yaml and the instance disagree: a plan error naming both values.
    site.configure(url, "10.20.255.254/16", "    timeout_seconds: 2\n");
    let out = site.homebase(&["plan", "staff.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("10.20.255.254/16") && stderr.contains("10.20.0.1/16"),
        "{stderr}"
    );
    site.configure(url, "10.20.0.1/16", "    timeout_seconds: 2\n");

    // Ten more persons, and every reconfigure of the run fails: their
    // actions fail by name, saved but not live; the re-run repairs it.
    let staff = common::example_staff_csv();
    let lines: Vec<&str> = staff.lines().take(71).collect();
    site.write("staff.csv", &(lines.join("\n") + "\n"));
    fake.fail_reconfigures(1000);
    let reconfigures = fake.reconfigures();
    let out = site.homebase(&["apply", "staff.csv"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("reconfigure"), "{stderr}");
    let ids = usernames(&site);
    let new: Vec<&String> = ids
        .keys()
        .filter(|u| {
            !site
                .dir
                .path()
                .join(format!("out/{u}/wireguard.conf"))
                .exists()
        })
        .collect();
    assert_eq!(new.len(), 10, "{new:?}");
    for username in &new {
        assert!(
            stderr.contains(username.as_str()),
            "{username} not named:\n{stderr}"
        );
    }
    assert!(
        fake.reconfigures() - reconfigures <= 12,
        "reconfigured per person"
    );
    assert_eq!(
        fake.live().len(),
        61,
        "a failed reconfigure made something live"
    );
    fake.fail_reconfigures(0);
    let reconfigures = fake.reconfigures();
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_one_peer_each(&site, &fake, 70);
    assert!(fake.reconfigures() - reconfigures <= 2);

    // OPNsense refuses a public key another peer holds: someone copied a
    // person's peer by hand (outside the instance) and deleted theirs.
    let (victim, victim_id) = ids
        .iter()
        .next()
        .map(|(u, i)| (u.clone(), i.clone()))
        .unwrap();
    let theirs = fake
        .saved()
        .into_iter()
        .find(|p| p.name == format!("{victim}-{victim_id}"))
        .unwrap();
    fake.add_detached_by_hand("copy-of-peer", &theirs.pubkey, "10.99.0.2/32");
    fake.delete_by_hand(&theirs.uuid);
    let out = site.homebase(&["apply", "staff.csv"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&victim) && stderr.contains("Public keys should be unique."),
        "{stderr}"
    );
}

#[test]
fn opnsense_adopt_takes_over_a_peer_named_by_staff_id() {
    let fake = start_fake();
    let site = Site::new(&fake.url, 20, "");
    // An office person's peer, made by hand before homebase, named by staff id.
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
    let key = common::wg_pubkey("b2xkIHBlZXIgb2YgYW4gb2ZmaWNlIHBlcnNvbiEhISE=");
    let uuid = fake.add_by_hand(&id, &key, "10.20.0.40/32");

    let out = site.homebase(&["adopt", "staff.csv", "--yes"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains("1 by comment"),
        "{}",
        describe(&out)
    );
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", describe(&out));

    // Their peer is the one they had: same uuid, key and address.
    let theirs: Vec<Peer> = fake
        .saved()
        .into_iter()
        .filter(|p| p.pubkey == key || p.name.ends_with(&format!("-{id}")))
        .collect();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(
        (theirs[0].uuid.as_str(), theirs[0].tunneladdress.as_str()),
        (uuid.as_str(), "10.20.0.40/32")
    );
    let conf = site.read(&format!("out/{username}/wireguard.conf"));
    assert!(!conf.contains("PrivateKey ="), "a key was made up:\n{conf}");
    assert_eq!(fake.saved().len(), 21);
    let out = site.homebase(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn gateway_settings_are_checked_offline() {
    // Nothing listens at these URLs: `check` does not connect.
    let site = Site::new("http://fw.example.org", 3, "    timeout_seconds: 0\n");
    let config = site.read("homebase.yaml").replace(
        "  stock:\n",
        "  portal:\n    kind: wg-portal\n    url: https://portal.example.org\n    user: ''\n\
         \x20   interface: wg0\n    endpoint: vpn.test.example:51820\n    address: 10.30.0.1/16\n\
         \x20 stock:\n",
    );
    site.write("homebase.yaml", &config);
    let out = site.homebase(&["check", "staff.csv"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for column in [
        "targets.wg0.url",
        "targets.wg0.timeout_seconds",
        "targets.portal.user",
        "targets.portal.token_env",
    ] {
        assert!(all.contains(column), "{column} not named:\n{all}");
    }
}
