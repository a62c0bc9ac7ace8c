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
