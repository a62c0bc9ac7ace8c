//! `homebase adopt` on a server that existed before homebase: its peers are
//! matched to staff by comment or by a CSV mapping, keep their keys and
//! addresses through provisioning the whole staff list, and the rest stay
//! foreign with their addresses never handed out.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{exit_code, persons_by_id, stderr, stdout, ServerConf, TestEnv, STAFF_COUNT};

fn random_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// A peer of the server as it was before homebase.
struct Old {
    key: String,
    address: String,
    comment: Option<String>,
    /// Who should get it: by comment or by mapping.
    owner: Option<String>,
}

fn server_file(peers: &[Old]) -> String {
    let mut text = format!(
        "# vpn-gw-1, set up by hand in 2020\n[Interface]\nPrivateKey = {}\nListenPort = 51820\n",
        random_key()
    );
    for peer in peers {
        text.push('\n');
        if let Some(comment) = &peer.comment {
            text.push_str(&format!("# {comment}\n"));
        }
        text.push_str(&format!(
            "[Peer]\nPublicKey = {}\nAllowedIPs = {}/32\n",
            peer.key, peer.address
        ));
    }
    text
}

/// 300 peers: 100 matched by comment (id, email or unique name), 100 by the
/// mapping, 100 hand-made ones in the pools' first addresses.
fn three_hundred(env: &TestEnv) -> (Vec<Old>, String) {
    let plan = env.plan_json(&["examples/staff.csv"]);
    let persons = persons_by_id(&plan);
    let staff = std::fs::read_to_string(env.join("examples/staff.csv")).unwrap();
    let emails: BTreeMap<String, String> = staff
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.first()?.to_string(), f.get(3)?.to_string()))
        })
        .collect();
    let mut name_count: BTreeMap<String, usize> = BTreeMap::new();
    for p in persons.values() {
        *name_count
            .entry(p["display_name"].as_str().unwrap().to_lowercase())
            .or_default() += 1;
    }
    let mut peers = Vec::new();
    let mut mapping = String::from("public_key,staff_id\n");
    let (mut office, mut field) = (0u32, 0u32);
    for (n, (id, person)) in persons
        .iter()
        .filter(|(_, p)| matches!(p["profile"].as_str(), Some("office" | "field")))
        .step_by(5)
        .take(200)
        .enumerate()
    {
        // Far from where a new pool starts handing out.
        let address = if person["profile"] == "office" {
            office += 1;
            format!("10.20.{}.{}", 100 + office / 200, 1 + office % 200)
        } else {
            field += 1;
            format!("10.20.{}.{}", 160 + field / 200, 1 + field % 200)
        };
        let key = random_key();
        let name = person["display_name"].as_str().unwrap().to_string();
        let comment = if n % 2 == 1 {
            mapping.push_str(&format!("{key},{id}\n"));
            Some("Laptop".to_string())
        } else if n % 6 == 0 && name_count[&name.to_lowercase()] == 1 {
            Some(name)
        } else if n % 6 == 2 {
            Some(format!("email = {}", emails[id]))
        } else {
            Some(format!("staff_id: {id}"))
        };
        peers.push(Old {
            key,
            address,
            comment,
            owner: Some(id.clone()),
        });
    }
    assert_eq!(peers.len(), 200, "not enough office and field staff");
    for i in 0..100 {
        peers.push(Old {
            key: random_key(),
            address: format!("10.20.{}.{}", i / 50, 2 + i % 50),
            comment: (i % 2 == 0).then(|| format!("printer {i}")),
            owner: None,
        });
    }
    (peers, mapping)
}

#[test]
fn adopting_300_peers_keeps_their_keys_and_addresses_through_provisioning() {
    let env = TestEnv::new();
    env.copy_examples();
    let (old, mapping) = three_hundred(&env);
    env.write("out/server/wg0.conf", server_file(&old));
    env.write("map.csv", mapping);

    // Without --yes: a report, nothing recorded.
    let out = env.run_ok(&["adopt", "examples/staff.csv", "--mapping", "map.csv"]);
    let report = stdout(&out);
    assert!(report.contains("wg0: 300 peers in"), "{report}");
    assert!(
        report.contains("adopt:        200 (100 by comment, 100 by mapping)"),
        "{report}"
    );
    assert!(report.contains("foreign:      100 (kept;"), "{report}");
    assert!(
        stderr(&out).contains("dry run: nothing recorded"),
        "{}",
        stderr(&out)
    );
    assert!(
        !env.exists(".homebase/state.db"),
        "a dry run created the state store"
    );

    env.run_ok(&[
        "adopt",
        "examples/staff.csv",
        "--mapping",
        "map.csv",
        "--yes",
    ]);
    env.run_ok(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);

    let conf = ServerConf::parse(&env.read_string("out/server/wg0.conf"));
    assert_eq!(
        conf.peers.len(),
        STAFF_COUNT + 100,
        "peers in the server file"
    );
    let by_key: BTreeMap<&str, _> = conf
        .peers
        .iter()
        .map(|p| (p.public_key.as_deref().unwrap(), p))
        .collect();
    for peer in &old {
        let now = by_key
            .get(peer.key.as_str())
            .unwrap_or_else(|| panic!("the key of {} is gone", peer.address));
        assert_eq!(
            now.allowed_ips,
            [format!("{}/32", peer.address)],
            "{:?}",
            peer.owner
        );
        assert_eq!(
            now.id, peer.owner,
            "the peer at {} belongs to",
            peer.address
        );
    }
    let mut addresses = BTreeSet::new();
    for peer in &conf.peers {
        for ip in &peer.allowed_ips {
            assert!(addresses.insert(ip.clone()), "{ip} is handed out twice");
        }
    }
    // An adopted person's bundle keeps their key: no new one, and it says so.
    let plan = env.plan_json(&["examples/staff.csv"]);
    let users = common::usernames(&plan);
    for peer in old.iter().filter(|p| p.owner.is_some()).step_by(25) {
        let user = &users[peer.owner.as_ref().unwrap()];
        let text = env.read_string(format!("out/{user}/wireguard.conf"));
        assert!(
            !text.contains("PrivateKey ="),
            "{user}: a private key was made up:\n{text}"
        );
        assert!(
            text.contains("keep the key of your existing configuration"),
            "{text}"
        );
        assert!(
            text.contains(&format!("Address = {}/32\n", peer.address)),
            "{text}"
        );
        let secrets = common::parse_secrets(&env.read_string(format!("out/{user}/.secrets")));
        assert!(!secrets.contains_key("wireguard_private_key"), "{user}");
        assert!(secrets.contains_key("initial_password"), "{user}");
    }
    // The second run has nothing to do.
    let out = env.run(&["plan", "examples/staff.csv", "--detailed-exitcode"]);
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
}

#[test]
fn a_mapping_that_cannot_be_honoured_records_nothing() {
    let env = TestEnv::new();
    env.copy_examples();
    let plan = env.plan_json(&["examples/staff.csv"]);
    let persons = persons_by_id(&plan);
    let of = |profile: &str| -> Vec<String> {
        persons
            .iter()
            .filter(|(_, p)| p["profile"] == profile)
            .map(|(id, _)| id.clone())
            .take(3)
            .collect()
    };
    let (office, field) = (of("office"), of("field"));
    let keys: Vec<String> = (0..4).map(|_| random_key()).collect();
    let peers = [
        (&keys[0], "10.20.100.1"),
        (&keys[1], "10.20.100.2"), // in the office pool, mapped to a field person
        (&keys[2], "10.20.100.3"),
    ];
    let old: Vec<Old> = peers
        .iter()
        .map(|(k, a)| Old {
            key: k.to_string(),
            address: a.to_string(),
            comment: None,
            owner: None,
        })
        .collect();
    env.write("out/server/wg0.conf", server_file(&old));
    env.write(
        "map.csv",
        format!(
            "public_key,staff_id\n{},{}\n{},{}\n{},{}\n{},P999999\n{},{}\n",
            keys[0], office[0], keys[0], office[1], keys[1], field[0], keys[2], keys[3], office[2]
        ),
    );
    let out = env.run_expect(
        &[
            "adopt",
            "examples/staff.csv",
            "--mapping",
            "map.csv",
            "--yes",
        ],
        2,
    );
    let err = stderr(&out);
    for expected in [
        format!("map.csv:3: column \"public_key\": this key is mapped to {} on line 2 and to {} here", office[0], office[1]),
        format!("map.csv:4: column \"staff_id\": 10.20.100.2 lies outside the pool 10.20.128.0/18 of {}", field[0]),
        "map.csv:5: column \"staff_id\": staff id \"P999999\" is not in the staff list".to_string(),
        "map.csv:6: column \"public_key\": no peer of the server has this public key".to_string(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(
        !env.exists(".homebase/state.db"),
        "a refused adopt recorded something"
    );
}

/// The embedded defaults (local directory, `wireguard-file`, `csv`) after
/// the state store is lost: `adopt --all` rebuilds it from the LDIF export,
/// `wg0.conf`, the assignments homebase wrote out and the bundles on disk.
/// Nothing is left to do, and the next apply rewrites no file: every
/// WireGuard configuration (and every other bundle file) stays byte-identical.
#[test]
fn adopt_all_rebuilds_a_lost_state_store_on_the_embedded_defaults() {
    let env = TestEnv::new();
    env.copy_examples();
    let staff = env.read_string("examples/staff.csv");
    let first: Vec<&str> = staff.lines().take(201).collect();
    env.write("staff.csv", first.join("\n") + "\n");
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    let before = env.files_snapshot("out");
    let dump = |env: &TestEnv| -> serde_json::Value {
        serde_json::from_slice(&env.run_ok(&["state", "dump"]).stdout).unwrap()
    };
    let rows = |dump: &serde_json::Value, table: &str| -> Vec<serde_json::Value> {
        dump["tables"][table]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let mut row = row.clone();
                for stamp in ["created", "updated", "assigned", "added", "fingerprint"] {
                    row.as_object_mut().unwrap().remove(stamp);
                }
                row
            })
            .collect()
    };
    let original = dump(&env);

    std::fs::remove_dir_all(env.join(".homebase")).unwrap();
    // A dry run first: the report, nothing recorded.
    let out = env.run_ok(&["adopt", "--all", "staff.csv"]);
    let report = stdout(&out);
    for line in [
        "wg0: 200 peers in",
        "directory: 200 accounts in",
        "  adopt:        200 (200 by staff id)",
        "stock: ",
        "bundles: 200 found in",
    ] {
        assert!(report.contains(line), "{line:?} missing:\n{report}");
    }
    assert!(!env.exists(".homebase/state.db"), "a dry run recorded");

    env.run_ok(&["adopt", "--all", "staff.csv", "--yes"]);
    let out = env.run(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
    let rebuilt = dump(&env);
    for table in [
        "persons", "accounts", "peers", "devices", "seats", "bundles",
    ] {
        assert_eq!(
            rows(&original, table),
            rows(&rebuilt, table),
            "table {table} differs after adopt --all"
        );
    }
    // Adoption is audited like an apply: one run, one journal entry per item.
    assert_eq!(rebuilt["tables"]["runs"].as_array().unwrap().len(), 1);
    assert!(rebuilt["tables"]["journal"].as_array().unwrap().len() >= 200 * 3);

    let out = env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    assert!(
        stderr(&out).contains("nothing to do"),
        "{}",
        common::describe(&out)
    );
    let after = env.files_snapshot("out");
    assert_eq!(before.len(), after.len(), "files added or removed");
    let wireguard = before
        .keys()
        .filter(|p| p.to_string_lossy().ends_with("wireguard.conf"))
        .count();
    assert_eq!(wireguard, 200);
    for (path, info) in &before {
        assert_eq!(
            Some(info),
            after.get(path),
            "{} was rewritten",
            path.display()
        );
    }
}

/// Account mappings the run cannot honour: each named with FILE:LINE, exit
/// 2, and nothing recorded.
#[test]
fn a_bad_account_mapping_records_nothing() {
    let env = TestEnv::new();
    env.copy_examples();
    let plan = env.plan_json(&["examples/staff.csv"]);
    let ids: Vec<String> = persons_by_id(&plan).keys().take(3).cloned().collect();
    // Two accounts a script made, without staff ids.
    env.write(
        "out/server/directory.ldif",
        "version: 1\n\n\
         dn: uid=mueller.j,ou=People,dc=musterstadt,dc=example\nobjectClass: inetOrgPerson\n\
         uid: mueller.j\ncn: J M\nsn: M\n\n\
         dn: uid=j.mueller,ou=People,dc=musterstadt,dc=example\nobjectClass: inetOrgPerson\n\
         uid: j.mueller\ncn: J M2\nsn: M2\n",
    );
    env.write(
        "map.csv",
        format!(
            "account,staff_id\nmueller.j,{}\nmueller.j,{}\nj.mueller,P999999\nbroken line\n\"unterminated,{}\n",
            ids[0], ids[1], ids[2]
        ),
    );
    let out = env.run_expect(
        &[
            "adopt",
            "examples/staff.csv",
            "--mapping",
            "map.csv",
            "--yes",
        ],
        2,
    );
    let err = stderr(&out);
    for expected in [
        format!(
            "map.csv:3: column \"account\": this account is mapped to {} on line 2 and to {} here",
            ids[0], ids[1]
        ),
        "map.csv:4: column \"staff_id\": staff id \"P999999\" is not in the staff list".to_string(),
        "map.csv:5: 1 field(s) where the header has 2".to_string(),
        "map.csv:6: 1 field(s) where the header has 2".to_string(),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    assert!(
        !env.exists(".homebase/state.db"),
        "a refused adopt recorded something"
    );
}

/// A stock list with an `assigned_to` column (staff id or username): the
/// devices are recorded as the persons', and stay theirs through the next
/// apply; a holder nobody listed is reported and left alone.
#[test]
fn devices_named_in_the_stock_list_are_adopted() {
    let env = TestEnv::new();
    env.copy_examples();
    let plan = env.plan_json(&["examples/staff.csv"]);
    let persons = persons_by_id(&plan);
    let (first, second) = {
        let mut ids = persons.keys();
        (ids.next().unwrap().clone(), ids.next().unwrap().clone())
    };
    let username = persons[&second]["username"].as_str().unwrap().to_string();
    let stock = env.read_string("examples/inventory.csv");
    let mut lines = stock.lines();
    let mut text = format!("{},assigned_to\n", lines.next().unwrap());
    for (n, line) in lines.enumerate() {
        let holder = match n {
            0 => first.as_str(),
            1 => username.as_str(),
            2 => "nobody.here",
            _ => "",
        };
        text.push_str(&format!("{line},{holder}\n"));
    }
    env.write("examples/inventory.csv", text);
    let out = env.run_ok(&["adopt", "examples/staff.csv", "--target", "stock", "--yes"]);
    let report = stdout(&out);
    assert!(
        report.contains("stock: 3 devices named as checked out"),
        "{report}"
    );
    assert!(report.contains("  adopt:        2\n"), "{report}");
    assert!(
        report.contains("\"nobody.here\" is nobody listed"),
        "{report}"
    );
    env.run_ok(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);
    let assigned = env.read_string("out/server/stock-assignments.csv");
    assert!(
        assigned.contains(&format!("NB-000001,{first},")),
        "{assigned}"
    );
    assert!(
        assigned.contains(&format!("NB-000002,{second},{username}")),
        "{assigned}"
    );
    assert!(!assigned.contains("NB-000003,"), "{assigned}");
}
