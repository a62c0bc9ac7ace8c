//! Delivery is recorded, not inferred from the disk (issue 15): a bundle
//! completed once keeps its keys and password when its folder is gone (deleted
//! after handover, or a CI runner that never had it); only `--rotate` and
//! `homebase rotate` issue new ones.

use crate::common;

use std::collections::BTreeMap;

use common::{exit_code, stderr, stdout, TestEnv};
use serde_json::Value;

const SMALL: &str = "id,given_name,family_name,department\n\
S1,Anna,Schmidt,Kämmerei\n\
S2,Paul,Weber,Informationstechnik\n\
S3,Lena,Koch,Ordnungsamt\n";

/// Staff id → WireGuard public key of the peer in the server file.
fn server_keys(env: &TestEnv) -> BTreeMap<String, String> {
    env.server_conf()
        .peers
        .iter()
        .map(|p| {
            (
                p.id.clone().expect("a `# homebase:` id"),
                p.public_key.clone().expect("a public key"),
            )
        })
        .collect()
}

fn person<'p>(plan: &'p Value, id: &str) -> &'p Value {
    plan["persons"]
        .as_array()
        .expect("persons")
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the plan"))
}

fn changed_actions(person: &Value) -> Vec<String> {
    person["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["op"] != "unchanged")
        .map(|a| format!("{} {} {}", a["op"], a["resource"], a["target"]))
        .collect()
}

fn username(plan: &Value, id: &str) -> String {
    person(plan, id)["username"]
        .as_str()
        .expect("a username")
        .to_string()
}

/// The case on the 1,200 example staff: `out/tmeyer` deleted after
/// handover plans nothing for Thomas Meyer; `homebase rotate P100001` issues
/// new secrets, and the server follows.
#[test]
fn a_deleted_bundle_stays_delivered_until_rotated() {
    let env = TestEnv::new();
    env.copy_examples();
    env.run_ok(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);
    let plan = env.plan_json(&["examples/staff.csv"]);
    let gone = username(&plan, "P100001");
    assert_eq!(gone, "tmeyer");
    let old = env.secrets(&gone);
    let keys = server_keys(&env);
    let others = env.files_snapshot("out");
    std::fs::remove_dir_all(env.join(format!("out/{gone}"))).expect("remove the bundle");

    let out = env.run(&["plan", "examples/staff.csv", "--detailed-exitcode"]);
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
    assert!(
        stdout(&out).contains("1 delivered bundle(s) are not on this machine"),
        "{}",
        common::describe(&out)
    );
    let plan = env.plan_json(&["examples/staff.csv"]);
    assert_eq!(plan["bundles_elsewhere"], 1);
    assert!(changed_actions(person(&plan, "P100001")).is_empty());
    let out = env.run_ok(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);
    assert!(
        stderr(&out).contains("nothing to do"),
        "{}",
        common::describe(&out)
    );
    assert!(!env.exists(format!("out/{gone}")), "the bundle came back");
    assert_eq!(server_keys(&env), keys, "a key on the server changed");

    // A bad id is refused before anything happens.
    let out = env.run_expect(
        &[
            "rotate",
            "P999999",
            "--staff",
            "examples/staff.csv",
            "--yes",
        ],
        2,
    );
    assert!(
        stderr(&out).contains("P999999"),
        "{}",
        common::describe(&out)
    );

    env.run_ok(&[
        "rotate",
        "P100001",
        "--staff",
        "examples/staff.csv",
        "--yes",
        "--no-progress",
    ]);
    let new = env.secrets(&gone);
    assert_ne!(new["wireguard_private_key"], old["wireguard_private_key"]);
    assert_ne!(new["initial_password"], old["initial_password"]);
    let after = server_keys(&env);
    assert_eq!(
        after["P100001"],
        common::wg_pubkey(&new["wireguard_private_key"]),
        "the server has the rotated key"
    );
    for (id, key) in &keys {
        if id != "P100001" {
            assert_eq!(&after[id], key, "{id}'s key changed");
        }
    }
    let snapshot = env.files_snapshot("out");
    for (path, info) in &others {
        if !path.starts_with(format!("out/{gone}")) && !path.starts_with("out/server") {
            assert_eq!(
                snapshot.get(path),
                Some(info),
                "{} was rewritten",
                path.display()
            );
        }
    }
    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);
}

/// A runner without the bundle applies a change of the person's access with
/// their recorded key; the machine that has the bundle rewrites it later,
/// keeping its secrets. `apply --rotate ID` re-keys only that person.
#[test]
fn a_change_without_the_bundle_keeps_the_keys_and_is_rewritten_where_the_bundle_is() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write("staff.csv", SMALL);
    env.run_ok(&["apply", "staff.csv", "--yes"]);
    let plan = env.plan_json(&["staff.csv"]);
    let name = username(&plan, "S2");
    let secrets = env.secrets(&name);
    let keys = server_keys(&env);
    let kept = env.join("kept");
    std::fs::rename(env.join(format!("out/{name}")), &kept).expect("move the bundle away");

    // Paul moves to another department: the account changes, the key does not.
    env.write(
        "staff.csv",
        SMALL.replace("Weber,Informationstechnik", "Weber,Kämmerei"),
    );
    let plan = env.plan_json(&["staff.csv"]);
    let changes = changed_actions(person(&plan, "S2"));
    assert!(!changes.is_empty(), "the department change is planned");
    assert!(
        changes.iter().all(|c| !c.contains("bundle")),
        "no bundle without its secrets: {changes:?}"
    );
    env.run_ok(&["apply", "staff.csv", "--yes"]);
    assert!(!env.exists(format!("out/{name}")), "a bundle appeared");
    assert_eq!(server_keys(&env), keys, "a key changed");
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);

    // Back where the bundle is: it is rewritten with the same secrets.
    std::fs::rename(&kept, env.join(format!("out/{name}"))).expect("move the bundle back");
    let plan = env.plan_json(&["staff.csv"]);
    assert_eq!(
        changed_actions(person(&plan, "S2")),
        ["\"update\" \"bundle\" \"bundles\""],
        "the out-of-date bundle is rewritten"
    );
    assert_eq!(
        person(&plan, "S2")["actions"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["new_secrets"],
        false
    );
    env.run_ok(&["apply", "staff.csv", "--yes"]);
    assert_eq!(env.secrets(&name), secrets, "the secrets changed");
    let letter = env.read_string(format!("out/{name}/welcome.md"));
    assert!(letter.contains("Kämmerei"), "{letter}");
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);

    // `--rotate ID` after the files: only that person gets new secrets.
    let s1 = username(&plan, "S1");
    let s1_secrets = env.secrets(&s1);
    env.run_ok(&["apply", "staff.csv", "--yes", "--rotate", "S2"]);
    assert_ne!(
        env.secrets(&name)["wireguard_private_key"],
        secrets["wireguard_private_key"]
    );
    assert_eq!(env.secrets(&s1), s1_secrets, "S1 was re-keyed too");
    let out = env.run_expect(&["apply", "staff.csv", "--yes", "--rotate", "S9"], 2);
    assert!(stderr(&out).contains("S9"), "{}", common::describe(&out));
}
