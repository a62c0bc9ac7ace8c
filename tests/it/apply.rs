//! Core II: applying the example staff into the embedded targets — bundles,
//! the server file, idempotence, secrets, offboarding, the lock and crashes.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{
    all_secrets, assert_consistent_end_state, exit_code, persons_by_id, planned, stderr, stdout,
    Finished, Provisioned, SecretScanner, TestEnv, STAFF_COUNT,
};

const APPLY: &[&str] = &["apply", "examples/staff.csv", "--yes", "--no-progress"];

fn mode(env: &TestEnv, rel: impl AsRef<std::path::Path>) -> u32 {
    std::fs::metadata(env.join(rel))
        .expect("stat")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn apply_writes_consistent_private_bundles_and_a_second_run_changes_nothing() {
    let env = TestEnv::new();
    env.copy_examples();
    let promised = planned(&env.plan_json(&["examples/staff.csv"]));
    env.run_ok(APPLY);

    let bundles = env.bundle_dirs();
    assert_eq!(bundles.len(), STAFF_COUNT, "bundle folders");
    for username in &bundles {
        let dir = format!("out/{username}");
        assert_eq!(mode(&env, &dir), 0o700, "{dir} is not 0700");
        for file in env.files_under(&dir) {
            assert_eq!(mode(&env, &file), 0o600, "{} is not 0600", file.display());
        }
    }
    assert_eq!(
        mode(&env, "out/server/wg0.conf") & 0o077,
        0,
        "wg0.conf holds the server's private key and is readable by others"
    );

    let provisioned = assert_consistent_end_state(&env, STAFF_COUNT);
    assert_eq!(
        provisioned, promised,
        "apply did not carry out the plan it showed"
    );
    // A phone scanning the QR code gets the client config (without comments).
    for username in bundles.iter().step_by(200) {
        let config =
            std::fs::read_to_string(env.path().join(format!("out/{username}/wireguard.conf")))
                .expect("client config");
        let scanned = scan_qr(&env.path().join(format!("out/{username}/wireguard-qr.png")));
        let expected: String = config
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(scanned, expected, "the QR code of {username}");
        assert!(
            scanned.contains("PrivateKey = "),
            "{username}: no key in the QR code"
        );
    }

    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);
    let before = env.files_snapshot("out");
    env.run_ok(APPLY);
    let after = env.files_snapshot("out");
    assert_eq!(
        before.len(),
        after.len(),
        "the second apply added or removed files"
    );
    for (path, info) in &before {
        assert_eq!(
            after.get(path),
            Some(info),
            "the second apply rewrote {}",
            path.display()
        );
    }
}

#[test]
fn secrets_never_leave_the_bundles() {
    let env = TestEnv::new();
    env.copy_examples();
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut keep = |name: &str, out: std::process::Output| {
        outputs.push((format!("stdout of {name}"), out.stdout));
        outputs.push((format!("stderr of {name}"), out.stderr));
    };

    keep(
        "apply -vv",
        env.run_ok(&[
            "apply",
            "examples/staff.csv",
            "--yes",
            "-vv",
            "--report",
            "apply-report.html",
        ]),
    );
    let (passwords, private_keys, preshared_keys) = all_secrets(&env);
    assert_eq!(passwords.len(), STAFF_COUNT, "initial passwords");
    assert_eq!(private_keys.len(), STAFF_COUNT, "WireGuard private keys");
    assert!(
        !preshared_keys.is_empty(),
        "the admin profile has preshared keys"
    );
    let unique: BTreeSet<&String> = passwords
        .iter()
        .chain(&private_keys)
        .chain(&preshared_keys)
        .collect();
    assert_eq!(
        unique.len(),
        passwords.len() + private_keys.len() + preshared_keys.len(),
        "a secret was issued twice"
    );

    for format in ["text", "json", "md", "html"] {
        let name = format!("plan -vv --format {format}");
        keep(
            &name,
            env.run_ok(&["plan", "examples/staff.csv", "-vv", "--format", format]),
        );
    }
    keep(
        "plan --out --report",
        env.run_ok(&[
            "plan",
            "examples/staff.csv",
            "-vv",
            "--out",
            "plan.json",
            "--report",
            "report.md",
        ]),
    );
    keep(
        "plan --report html",
        env.run_ok(&["plan", "examples/staff.csv", "--report", "report.html"]),
    );
    keep(
        "plan --report json",
        env.run_ok(&["plan", "examples/staff.csv", "--report", "report.json"]),
    );
    keep(
        "apply --plan -vv",
        env.run_ok(&["apply", "--plan", "plan.json", "--yes", "-vv"]),
    );
    keep("status -vv", env.run_ok(&["status", "-vv"]));
    keep(
        "status --format json",
        env.run_ok(&["status", "-vv", "--format", "json"]),
    );
    keep(
        "status --history",
        env.run_ok(&["status", "-vv", "--history"]),
    );
    keep(
        "status --history json",
        env.run_ok(&["status", "--history", "--format", "json"]),
    );
    keep(
        "offboard -vv",
        env.run_ok(&["offboard", "P100001", "--yes", "-vv"]),
    );
    keep(
        "apply again -vv",
        env.run_ok(&["apply", "examples/staff.csv", "--yes", "-vv", "--prune"]),
    );

    // Secrets issued by the later runs (if any) count as well.
    let (later_passwords, later_private, later_preshared) = all_secrets(&env);
    let passwords: BTreeSet<String> = passwords.into_iter().chain(later_passwords).collect();
    let private_keys: BTreeSet<String> = private_keys.into_iter().chain(later_private).collect();
    let preshared_keys: BTreeSet<String> =
        preshared_keys.into_iter().chain(later_preshared).collect();
    let everything = SecretScanner::new(
        passwords
            .iter()
            .chain(&private_keys)
            .chain(&preshared_keys)
            .cloned(),
    );
    // The scanner finds what it looks for: a bundle's own files hold its secrets.
    let first = env.bundle_dirs().into_iter().next().expect("a bundle");
    for file in [".secrets", "wireguard.conf", "welcome.md"] {
        let bytes = env.read(format!("out/{first}/{file}"));
        assert!(
            everything.find(&bytes).is_some(),
            "the scanner misses the secrets in out/{first}/{file}"
        );
    }
    for (name, bytes) in &outputs {
        everything.assert_absent(name, bytes);
    }
    for file in [
        "plan.json",
        "report.md",
        "report.html",
        "report.json",
        "apply-report.html",
        "out/server/directory.ldif",
    ] {
        everything.assert_absent(file, &env.read(file));
    }
    for file in env.files_under(".homebase") {
        everything.assert_absent(&file.display().to_string(), &env.read(&file));
    }
    // The server needs the preshared keys, never a client's private key or a password.
    let not_for_the_server = SecretScanner::new(passwords.iter().chain(&private_keys).cloned());
    not_for_the_server.assert_absent("out/server/wg0.conf", &env.read("out/server/wg0.conf"));
    // Files in out/ outside the bundles.
    for file in env.files_under("out") {
        let in_bundle = file
            .components()
            .nth(1)
            .is_some_and(|c| c.as_os_str() != "server");
        if !in_bundle && !file.ends_with("wg0.conf") {
            everything.assert_absent(&file.display().to_string(), &env.read(&file));
        }
    }
}

#[test]
fn offboarding_and_pruning_withdraw_access() {
    let env = TestEnv::new();
    env.copy_examples();
    env.run_ok(APPLY);
    let before = env.server_conf().peers_by_id();
    assert_eq!(before.len(), STAFF_COUNT);

    env.run_expect(&["offboard", "NOSUCH", "--yes"], 2);
    env.run_ok(&["offboard", "P100001", "--yes"]);

    let after = env.server_conf().peers_by_id();
    assert!(!after.contains_key("P100001"), "P100001 still has a peer");
    let gone_key = before["P100001"].public_key.clone().expect("a key");
    assert!(
        !env.read_string("out/server/wg0.conf").contains(&gone_key),
        "P100001's key is still in wg0.conf"
    );
    assert_eq!(after.len(), STAFF_COUNT - 1);
    for (id, peer) in &after {
        let old = &before[id];
        assert_eq!(
            (&peer.public_key, &peer.allowed_ips),
            (&old.public_key, &old.allowed_ips),
            "{id}'s peer changed"
        );
    }

    let status = env.status_json(&["P100001"]);
    let persons = persons_by_id(&status);
    assert_eq!(persons.len(), 1, "{status:#}");
    let p = &persons["P100001"];
    assert_eq!(p["withdrawn"], true, "{p:#}");
    assert_eq!(p["vpn"].as_array().map(Vec::len), Some(0), "{p:#}");
    assert_eq!(p["devices"].as_array().map(Vec::len), Some(0), "{p:#}");
    let accounts = p["accounts"].as_array().expect("accounts");
    assert!(
        !accounts.is_empty() && accounts.iter().all(|a| a["enabled"] == false),
        "account not disabled: {p:#}"
    );

    let history = stdout(&env.run_ok(&["status", "--history"]));
    assert!(
        history.lines().filter(|l| !l.trim().is_empty()).count() >= 2,
        "two runs in the history:\n{history}"
    );
    let runs: serde_json::Value = serde_json::from_str(&stdout(&env.run_ok(&[
        "status",
        "--history",
        "--format",
        "json",
    ])))
    .expect("JSON");
    let runs = runs["runs"].as_array().expect("runs");
    assert!(runs.len() >= 2, "two runs in the history: {runs:#?}");
    assert!(
        runs.iter().any(|r| r["command"]
            .as_str()
            .is_some_and(|c| c.contains("offboard"))),
        "{runs:#?}"
    );

    // Still in the staff list, P100001 stays withdrawn: the daily run must not
    // undo an offboarding.
    let plan = env.plan_json(&["examples/staff.csv"]);
    if let Some(p1) = persons_by_id(&plan).get("P100001") {
        let actions = p1["actions"].as_array().expect("actions");
        assert!(
            actions.iter().all(|a| a["op"] == "unchanged"),
            "the offboarded P100001 is provisioned again: {p1:#}"
        );
    }
    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);

    // P100002 leaves the list (P100001, offboarded, too).
    let (header, rows) = common::example_staff_rows();
    let mut text = format!("{header}\n");
    for row in rows
        .iter()
        .filter(|r| !r.starts_with("P100001,") && !r.starts_with("P100002,"))
    {
        text.push_str(row);
        text.push('\n');
    }
    env.write("staff2.csv", text);

    let plan = env.plan_json(&["staff2.csv"]);
    if let Some(p2) = persons_by_id(&plan).get("P100002") {
        assert_ne!(
            p2["status"], "withdrawn",
            "withdrawn without --prune: {p2:#}"
        );
    }
    let dropped = plan["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .any(|w| {
            w["kind"] == "dropped"
                && w["persons"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|id| id == "P100002"))
        });
    assert!(
        dropped,
        "no `dropped` warning for P100002: {:#}",
        plan["warnings"]
    );

    let plan = env.plan_json(&["staff2.csv", "--prune"]);
    let p2 = &persons_by_id(&plan)["P100002"];
    assert_eq!(p2["status"], "withdrawn", "{p2:#}");
    assert!(
        p2["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .any(|a| a["op"] == "remove"),
        "{p2:#}"
    );

    env.run_ok(&["apply", "staff2.csv", "--prune", "--yes", "--no-progress"]);
    let peers = env.server_conf().peers_by_id();
    assert_eq!(peers.len(), STAFF_COUNT - 2);
    assert!(!peers.contains_key("P100002"));
    assert_eq!(
        persons_by_id(&env.status_json(&["P100002"]))["P100002"]["withdrawn"],
        true
    );
    env.run_expect(&["plan", "staff2.csv", "--prune", "--detailed-exitcode"], 0);
}

fn mentions_lock(text: &str) -> bool {
    text.to_lowercase().contains("lock")
}

#[test]
fn apply_refuses_while_the_state_is_locked() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "staff.csv",
        "id,given_name,family_name\n1,Anna,Schmidt\n2,Paul,Weber\n",
    );
    std::fs::create_dir_all(env.join(".homebase")).expect("mkdir");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(env.join(".homebase/state.db.lock"))
        .expect("open the lock file");
    lock.try_lock().expect("take the lock");

    for command in [
        &["apply", "staff.csv", "--yes"][..],
        &["offboard", "1", "--yes"],
    ] {
        let out = env.run(command);
        assert_ne!(
            exit_code(&out),
            0,
            "`{}` ran while the state was locked",
            command.join(" ")
        );
        assert!(
            mentions_lock(&stderr(&out)),
            "no word of the lock:\n{}",
            common::describe(&out)
        );
        assert!(
            !env.exists("out"),
            "out/ was written while the state was locked"
        );
    }
    drop(lock);
    env.run_ok(&["apply", "staff.csv", "--yes"]);
    assert_eq!(env.bundle_dirs().len(), 2);
}

/// A directory script that holds every call until the file `go` exists:
/// the apply running it holds the state's lock as long as the test wants.
const HOLD_SCRIPT: &str = r#"#!/bin/sh
cat >/dev/null
while [ ! -e go ]; do sleep 0.05; done
printf '{"remote_id": "held"}\n'
"#;

/// The project with its directory on [`HOLD_SCRIPT`].
fn held_env() -> TestEnv {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "staff.csv",
        "id,given_name,family_name\n1,Anna,Schmidt\n2,Paul,Weber\n",
    );
    env.write("hold.sh", HOLD_SCRIPT);
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("homebase.yaml");
    let config = std::fs::read_to_string(shipped).expect("homebase.yaml");
    let local = "  directory:\n    kind: local\n    base_dn: dc=musterstadt,dc=example\n";
    assert!(
        config.contains(local),
        "the shipped config has a local directory"
    );
    env.write(
        "homebase.yaml",
        config.replace(
            local,
            "  directory:\n    kind: exec\n    command: [sh, hold.sh]\n    timeout_seconds: 300\n",
        ),
    );
    env
}

/// Waits until the lock file of the SQLite state names `pid` as its holder.
fn wait_for_lock_holder(env: &TestEnv, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let named = format!("\"pid\":{pid},");
    while !std::fs::read_to_string(env.join(".homebase/state.db.lock"))
        .is_ok_and(|holder| holder.contains(&named))
    {
        assert!(
            Instant::now() < deadline,
            "the first apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn with_lock_timeout_a_second_apply_waits_then_names_the_holder_or_goes_on_when_it_ends() {
    let env = held_env();
    let apply = ["apply", "staff.csv", "--yes", "--no-progress"];
    let mut holder = env.spawn(&apply);
    let pid = holder.child.id();
    wait_for_lock_holder(&env, pid);

    // Held longer than the second run waits: it waits, then exits 2 naming
    // the holder, having changed nothing.
    let mut short = apply.to_vec();
    short.extend(["--lock-timeout", "2s"]);
    let started = Instant::now();
    let out = env.run(&short);
    let waited = started.elapsed();
    assert_eq!(exit_code(&out), 2, "{}", common::describe(&out));
    assert!(
        waited >= Duration::from_secs(2),
        "refused after {waited:?}, before its --lock-timeout"
    );
    let refused = stderr(&out);
    assert!(refused.contains("holds the lock"), "{refused}");
    assert!(refused.contains(&format!("pid {pid} on ")), "{refused}");
    assert!(refused.contains("--lock-timeout"), "{refused}");
    assert!(
        !holder.has_exited(),
        "the holder ended before the test let it"
    );

    // Held for less than it waits: it goes on once the holder is done, and
    // finds nothing left to do.
    let mut long = apply.to_vec();
    long.extend(["--lock-timeout", "120s"]);
    let mut waiting = env.spawn(&long);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!waiting.has_exited(), "the second apply did not wait");
    env.write("go", "");
    let first = holder.wait();
    assert_eq!(first.code, Some(0), "{}", first.describe());
    let second = waiting.wait();
    assert_eq!(second.code, Some(0), "{}", second.describe());
    assert!(
        second.stderr.contains("nothing to do"),
        "{}",
        second.describe()
    );
    assert_eq!(env.bundle_dirs().len(), 2);
}

#[test]
fn two_applies_at_once_do_not_corrupt_the_state() {
    let env = TestEnv::new();
    env.copy_examples();
    let first = env.spawn(APPLY);
    let second = env.spawn(APPLY);
    let results: Vec<Finished> = vec![first.wait(), second.wait()];
    assert!(
        results.iter().any(|r| r.code == Some(0)),
        "neither apply succeeded:\n{}\n{}",
        results[0].describe(),
        results[1].describe()
    );
    for r in &results {
        if r.code != Some(0) {
            assert!(
                mentions_lock(&r.stderr),
                "refused without a word of the lock:\n{}",
                r.describe()
            );
        }
    }
    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);
    assert_consistent_end_state(&env, STAFF_COUNT);
}

/// Where to kill a run.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// After this long.
    Delay(u64),
    /// Once this many bundle folders exist.
    Bundles(usize),
}

/// Start an apply and SIGKILL it at `at` (if it is still running).
fn kill_apply(env: &TestEnv, at: KillAt) -> Finished {
    let mut run = env.spawn(APPLY);
    match at {
        KillAt::Delay(ms) => std::thread::sleep(Duration::from_millis(ms)),
        KillAt::Bundles(n) => {
            // A bound, so that a hanging run fails the test instead of the suite.
            let deadline = Instant::now() + Duration::from_secs(120);
            while !run.has_exited() && env.bundle_dirs().len() < n && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    run.kill()
}

fn finish_and_compare(env: &TestEnv, reference: &BTreeMap<String, Provisioned>, what: &str) {
    // The store a killed run left is readable.
    env.run_ok(&["status", "--format", "json"]);
    let out = env.run(APPLY);
    assert_eq!(
        exit_code(&out),
        0,
        "{what}: the resumed apply failed\n{}",
        common::describe(&out)
    );
    let end = assert_consistent_end_state(env, STAFF_COUNT);
    for (id, expected) in reference {
        let got = &end[id];
        assert_eq!(
            (&got.username, &got.address, got.asset_tags.len()),
            (
                &expected.username,
                &expected.address,
                expected.asset_tags.len()
            ),
            "{what}: {id} differs from an uninterrupted run"
        );
    }
    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);
}

/// What an uninterrupted run gives, from a fresh plan in another folder:
/// `apply_writes_consistent_private_bundles_and_a_second_run_changes_nothing`
/// shows an uninterrupted apply gives exactly what the fresh plan promises,
/// and planning is much cheaper than a reference apply.
fn promised() -> BTreeMap<String, Provisioned> {
    let env = TestEnv::new();
    env.copy_examples();
    planned(&env.plan_json(&["examples/staff.csv"]))
}

fn kill_and_resume(reference: &BTreeMap<String, Provisioned>, points: &[KillAt]) {
    for &at in points {
        let env = TestEnv::new();
        env.copy_examples();
        let killed = kill_apply(&env, at);
        let what = format!(
            "killed at {at:?} (exit {:?}, {} bundle folders)",
            killed.code,
            env.bundle_dirs().len()
        );
        finish_and_compare(&env, reference, &what);
    }
}

#[test]
fn an_apply_killed_early_resumes_to_the_same_end_state() {
    // An uninterrupted run in another folder.
    let reference = {
        let env = TestEnv::new();
        env.copy_examples();
        env.run_ok(APPLY);
        assert_consistent_end_state(&env, STAFF_COUNT)
    };
    kill_and_resume(
        &reference,
        &[KillAt::Delay(30), KillAt::Delay(400), KillAt::Bundles(1)],
    );
}

#[test]
fn an_apply_killed_late_resumes_to_the_same_end_state() {
    kill_and_resume(
        &promised(),
        &[
            KillAt::Bundles(STAFF_COUNT / 3),
            KillAt::Bundles(STAFF_COUNT - 50),
        ],
    );
}

#[test]
fn an_apply_killed_again_and_again_resumes_to_the_same_end_state() {
    let reference = promised();
    let env = TestEnv::new();
    env.copy_examples();
    for at in [
        KillAt::Bundles(100),
        KillAt::Delay(300),
        KillAt::Bundles(700),
        KillAt::Bundles(1100),
    ] {
        kill_apply(&env, at);
    }
    finish_and_compare(&env, &reference, "killed four times");
}

#[test]
fn sigterm_stops_cleanly_with_exit_3_and_a_rerun_resumes() {
    let env = TestEnv::new();
    env.copy_examples();
    let mut run = env.spawn(APPLY);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !run.has_exited()
        && env.bundle_dirs().len() < STAFF_COUNT / 4
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = run.child.id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    let done = run.wait();
    match done.code {
        Some(3) => {
            assert!(
                done.stderr
                    .contains("person(s) not started (interrupted); the rest are done"),
                "{}",
                done.describe()
            );
            // Nothing failed: persons not started are not failed actions.
            assert!(
                !done.stderr.contains("action(s) failed;"),
                "{}",
                done.describe()
            );
        }
        // It finished just before the signal arrived.
        Some(0) => {}
        _ => panic!("expected exit 3 after SIGTERM\n{}", done.describe()),
    }
    let runs: serde_json::Value = serde_json::from_str(&stdout(&env.run_ok(&[
        "status",
        "--history",
        "--format",
        "json",
    ])))
    .expect("JSON");
    assert!(
        !runs["runs"].as_array().expect("runs").is_empty(),
        "the interrupted run is not in the history"
    );
    env.run_ok(APPLY);
    assert_consistent_end_state(&env, STAFF_COUNT);
}

/// Three persons, one per shipped profile (office, admin with a preshared key, field).
const SMALL: &str = "id,given_name,family_name,department\n\
S1,Anna,Schmidt,Kämmerei\n\
S2,Paul,Weber,Informationstechnik\n\
S3,Lena,Koch,Ordnungsamt\n";

#[test]
fn server_files_that_lost_their_content_are_repaired() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write("staff.csv", SMALL);
    env.run_ok(&["apply", "staff.csv", "--yes"]);
    assert_consistent_end_state(&env, 3);
    let ldif = env.read_string("out/server/directory.ldif");

    // What a kill between the last journaled action and the rewrite of the
    // server files leaves: the store complete, wg0.conf still as it was
    // created at the start of the first run (no peers), the LDIF empty.
    let server = env.read_string("out/server/wg0.conf");
    let interface_only = &server[..server.find("\n# homebase:").expect("a tagged peer")];
    env.write("out/server/wg0.conf", format!("{interface_only}\n"));
    env.write("out/server/directory.ldif", "version: 1\n");

    let plan = env.run(&["plan", "staff.csv", "--detailed-exitcode"]);
    env.run_ok(&["apply", "staff.csv", "--yes"]);
    let repaired = env.server_conf().peers.len();
    assert_eq!(
        repaired, 3,
        "the next apply did not restore the peers of wg0.conf"
    );
    assert_consistent_end_state(&env, 3);
    assert_eq!(
        env.read_string("out/server/directory.ldif"),
        ldif,
        "directory.ldif is not restored"
    );
    // The target is the file: the plan must see what it lacks.
    assert_eq!(
        exit_code(&plan),
        4,
        "the plan does not see the missing peers\n{}",
        common::describe(&plan)
    );
}

#[test]
fn a_saved_plan_is_applied_once_and_refused_when_stale() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write("staff.csv", SMALL);
    let report = stdout(&env.run_ok(&["plan", "staff.csv", "--out", "plan.json"]));
    // The report names the saved file by its SHA-256; apply and the audit
    // name the same digest.
    let digest = report
        .lines()
        .find_map(|l| l.strip_prefix("plan "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the report names the plan digest")
        .to_string();
    {
        use sha2::Digest;
        let file = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(env.read("plan.json")))
        );
        assert_eq!(digest, file, "the report names another file");
    }
    let applied = env.run_ok(&["apply", "--plan", "plan.json", "--yes"]);
    assert!(
        stderr(&applied).contains(&format!("plan {digest} from plan.json")),
        "{}",
        common::describe(&applied)
    );
    let history = stdout(&env.run_ok(&["status", "--history", "--format", "json"]));
    assert!(
        history.contains(&format!("\"plan_digest\": \"{digest}\"")),
        "{history}"
    );
    assert_consistent_end_state(&env, 3);

    // The targets changed since the plan was made.
    env.run_ok(&["offboard", "S1", "--yes"]);
    env.run_ok(&["plan", "staff.csv", "--out", "again.json"]);
    env.run_ok(&["offboard", "S3", "--yes"]);
    let before = env.files_snapshot("out");
    let out = env.run_expect(&["apply", "--plan", "again.json", "--yes"], 2);
    assert!(stderr(&out).contains("stale"), "{}", common::describe(&out));

    // The staff list changed since.
    env.run_ok(&["plan", "staff.csv", "--out", "third.json"]);
    env.write("staff.csv", format!("{SMALL}S4,Olaf,Neu,Kämmerei\n"));
    let out = env.run_expect(&["apply", "--plan", "third.json", "--yes"], 2);
    assert!(stderr(&out).contains("stale"), "{}", common::describe(&out));
    assert_eq!(
        env.files_snapshot("out"),
        before,
        "a refused plan changed files"
    );
}

/// Decode a bundle's QR code PNG as a phone would read it.
fn scan_qr(path: &std::path::Path) -> String {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(path).expect("QR code PNG"),
    ));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "{}: one QR code", path.display());
    grids[0].decode().expect("a readable QR code").1
}

/// What the README's "two commands" section promises for its first command:
/// the command line, the number provisioned, who is not and who is warned
/// about, and the later day whose plan withdraws the warned.
struct ReadmeDemo {
    env: Vec<(String, String)>,
    args: Vec<String>,
    provisioned: usize,
    not_provisioned: BTreeSet<String>,
    expiring: BTreeSet<String>,
    later_day: String,
}

impl ReadmeDemo {
    fn read() -> ReadmeDemo {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let text = std::fs::read_to_string(&path).expect("README.md");
        let section = text
            .split("## The two commands")
            .nth(1)
            .expect("README.md has a section \"The two commands\"");
        let block = section
            .split("```sh\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a sh block in that section");
        let line = block.lines().next().expect("a first command");
        let mut env = Vec::new();
        let mut words = line.split_whitespace().peekable();
        while let Some((key, value)) = words.peek().and_then(|w| w.split_once('=')) {
            env.push((key.to_string(), value.to_string()));
            words.next();
        }
        let words: Vec<&str> = words.collect();
        assert_eq!(
            words[..4],
            ["cargo", "run", "--release", "--"],
            "the first command runs the binary through cargo: {line}"
        );
        let ids = |marker: &str| -> BTreeSet<String> {
            let line = section
                .lines()
                .find(|l| l.contains(marker))
                .unwrap_or_else(|| panic!("README: no line with {marker:?}"));
            line.split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| w.len() == 7 && w.starts_with('P'))
                .map(str::to_string)
                .collect()
        };
        let figure = section
            .split("it provisions **")
            .nth(1)
            .and_then(|s| s.split("**").next())
            .expect("README: \"it provisions **N**\"");
        let later = section
            .split("`HOMEBASE_TODAY=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("README: a later pinned day in backquotes");
        ReadmeDemo {
            env,
            args: words[4..].iter().map(|w| w.to_string()).collect(),
            provisioned: figure.replace(',', "").parse().expect("a number"),
            not_provisioned: ids("**not provisioned"),
            expiring: ids("**expiry warnings**"),
            later_day: later.to_string(),
        }
    }
}

/// The README's first command, run as written there on the examples as they
/// are (no dates moved): it provisions the figure the README states, leaves
/// out the persons it names, warns about the ones it names; the later day it
/// names withdraws exactly those.
#[test]
fn the_readme_first_command_does_what_the_readme_says() {
    let demo = ReadmeDemo::read();
    assert_eq!(
        demo.env,
        [(
            "HOMEBASE_TODAY".to_string(),
            common::EXAMPLES_DAY.to_string()
        )],
        "the demonstration pins the examples' day"
    );
    let env = TestEnv::new();
    env.write("examples/staff.csv", common::read_example("staff.csv"));
    env.write(
        "examples/inventory.csv",
        common::read_example("inventory.csv"),
    );
    let pinned = |day: &str, args: &[String]| {
        env.command()
            .env("HOMEBASE_TODAY", day)
            .args(args)
            .output()
            .expect("run homebase")
    };
    let out = pinned(common::EXAMPLES_DAY, &demo.args);
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));

    let plan_args = ["plan", "examples/staff.csv", "--format", "json"].map(String::from);
    let out = pinned(common::EXAMPLES_DAY, &plan_args);
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
    let plan = common::parse_json(&out);
    let persons = persons_by_id(&plan);
    assert_eq!(persons.len(), STAFF_COUNT);
    let with_bundle: BTreeSet<String> = env.bundle_dirs();
    let provisioned: BTreeSet<&String> = persons
        .iter()
        .filter(|(_, p)| with_bundle.contains(p["username"].as_str().expect("username")))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(provisioned.len(), demo.provisioned, "bundles written");
    let left_out: BTreeSet<String> = persons
        .keys()
        .filter(|id| !provisioned.contains(id))
        .cloned()
        .collect();
    assert_eq!(left_out, demo.not_provisioned);
    for id in &left_out {
        assert_eq!(persons[id]["status"], "withdrawn", "{:#}", persons[id]);
    }
    let warned = |kind: &str| -> BTreeSet<String> {
        plan["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .filter(|w| w["kind"] == kind)
            .flat_map(|w| w["persons"].as_array().cloned().unwrap_or_default())
            .map(|id| id.as_str().expect("an id").to_string())
            .collect()
    };
    assert_eq!(warned("expiring"), demo.expiring);
    // Nobody is left out without a word.
    assert_eq!(warned("not_provisioned"), demo.not_provisioned);

    let out = pinned(&demo.later_day, &plan_args);
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
    let later = persons_by_id(&common::parse_json(&out));
    let withdrawn: BTreeSet<String> = later
        .iter()
        .filter(|(id, p)| p["status"] == "withdrawn" && !demo.not_provisioned.contains(*id))
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(withdrawn, demo.expiring, "withdrawn on {}", demo.later_day);
}

/// On a terminal: bars while it runs, then the counts stay on the screen
/// ("done in …" per target), and rates read as numbers, not as floats.
#[test]
fn a_terminal_keeps_the_final_counts_and_rates_are_short() {
    if !common::has_script() {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    let bin = assert_cmd::cargo::cargo_bin("homebase");
    let screen = env.in_terminal(&format!("{} apply examples/staff.csv --yes", bin.display()));
    let last = screen
        .lines()
        .rev()
        .find(|l| l.contains("done in"))
        .unwrap_or_else(|| panic!("no final counts on the terminal:\n{screen}"));
    assert!(
        last.contains(&format!("bundles {STAFF_COUNT}/{STAFF_COUNT}")),
        "{last}"
    );
    // indicatif's own per_sec printed 1,166.4987984458/s.
    let long_rate = screen.split("/s").any(|before| {
        let digits = before
            .rsplit(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
            .next()
            .unwrap_or("");
        digits.split('.').nth(1).is_some_and(|d| d.len() > 1)
    });
    assert!(!long_rate, "a rate with many decimals:\n{screen}");
}

/// `apply --format json` prints the run's result for CI (`homebase.apply/v1`):
/// per person and action what became of it. A person whose bundle cannot be
/// written is `failed` with the reason, the rest of their work `not_reached`,
/// everyone else `done`; a re-run with nothing to do says so. No secret is in it.
#[test]
fn apply_json_says_per_person_and_action_what_became_of_it() {
    let env = TestEnv::new();
    let csv = common::example_staff_csv();
    let twenty: String = csv.lines().take(21).map(|l| format!("{l}\n")).collect();
    env.write("staff.csv", &twenty);
    env.copy_examples();
    let plan = env.plan_json(&["staff.csv"]);
    let planned = persons_by_id(&plan);
    let (victim_id, victim) = planned.iter().next().expect("a person");
    let victim_name = victim["username"].as_str().expect("username").to_string();
    // Where the person's bundle goes, a file: their secrets cannot be written.
    env.write(format!("out/{victim_name}"), "in the way\n");

    // `apply --format json` exiting with `code`: its result, and its stderr.
    let apply_json = |code: i32| {
        let args = [
            "apply",
            "staff.csv",
            "--yes",
            "--no-progress",
            "--format",
            "json",
        ];
        let out = env.run_expect(&args, code);
        let result: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("JSON on stdout");
        (result, out)
    };
    let (result, out) = apply_json(3);
    assert_eq!(result["schema"], "homebase.apply/v1");
    assert_eq!(result["result"], "partial");
    assert_eq!(result["failed"], 1, "{}", stderr(&out));
    let persons = persons_by_id(&result);
    assert_eq!(persons.len(), planned.len());
    let victim = &persons[victim_id];
    assert_eq!(victim["outcome"], "failed");
    let actions = victim["actions"].as_array().expect("actions");
    let bundle = actions
        .iter()
        .find(|a| a["resource"] == "bundle")
        .expect("a bundle action");
    assert_eq!(bundle["outcome"], "failed");
    assert!(
        bundle["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{bundle}"
    );
    for action in actions.iter().filter(|a| a["resource"] != "bundle") {
        assert_eq!(action["outcome"], "not_reached", "{action}");
    }
    let mut done = 0;
    for (id, person) in persons.iter().filter(|(id, _)| *id != victim_id) {
        assert_eq!(person["outcome"], "done", "{id}");
        for action in person["actions"].as_array().expect("actions") {
            assert_eq!(action["outcome"], "done", "{id}: {action}");
            // The same action as planned, with its outcome added.
            assert!(
                action.get("target").is_some() && action.get("op").is_some(),
                "{action}"
            );
            done += 1;
        }
    }
    assert_eq!(result["done"], done);
    let (passwords, private, preshared) = all_secrets(&env);
    let scanner = SecretScanner::new(passwords.into_iter().chain(private).chain(preshared));
    assert!(scanner.len() > 0, "bundles were written");
    assert_eq!(
        scanner.find(&out.stdout),
        None,
        "a secret in the run result"
    );

    // Out of the way, the re-run finishes the person; then nothing is left to do.
    std::fs::remove_file(env.join(format!("out/{victim_name}"))).expect("remove");
    let (result, _) = apply_json(0);
    assert_eq!(result["result"], "success");
    assert_eq!(persons_by_id(&result)[victim_id]["outcome"], "done");
    let (result, _) = apply_json(0);
    assert_eq!(result["result"], "nothing_to_do");
    assert!(persons_by_id(&result)
        .values()
        .all(|p| p["outcome"] == "unchanged"));
}

/// `status` and `status --history` as Markdown (a merge-request comment) and
/// HTML (a page to print), not text in disguise; names are escaped there.
#[test]
fn status_and_history_as_markdown_and_html() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "staff.csv",
        "id,given_name,family_name,email,department\n\
         P1,Anna,Schmidt,anna.schmidt@musterstadt.example,Kämmerei\n\
         P2,<script>alert(1)</script>,Le|e *x*,lee@musterstadt.example,IT\n",
    );
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);

    let md = stdout(&env.run_ok(&["status", "--format", "md"]));
    assert!(
        md.starts_with("# homebase status\n\n2 person(s) on record, 2 active, 0 withdrawn\n"),
        "{md}"
    );
    assert!(
        md.contains("| id | username | name | profile | account | vpn | devices |"),
        "{md}"
    );
    let anna = md
        .lines()
        .find(|l| l.starts_with("| P1 |"))
        .expect("a row for P1");
    assert!(
        anna.contains("| Anna Schmidt |") && anna.contains("wg0 10.20."),
        "{anna}"
    );
    let lee = md
        .lines()
        .find(|l| l.starts_with("| P2 |"))
        .expect("a row for P2");
    assert!(
        lee.contains("&lt;script&gt;") && lee.contains("Le\\|e \\*x\\*"),
        "{lee}"
    );
    assert_eq!(
        lee.matches(" | ").count(),
        6,
        "the name's | stays inside its cell: {lee}"
    );

    let html = stdout(&env.run_ok(&["status", "--format", "html"]));
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("<td>P1</td>") && html.contains("<td>Anna Schmidt</td>"),
        "{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");

    let md = stdout(&env.run_ok(&["status", "--history", "--format", "md"]));
    assert!(
        md.starts_with("# homebase apply history\n\n1 apply run(s)"),
        "{md}"
    );
    let run = md
        .lines()
        .find(|l| l.starts_with("| \\#1 |"))
        .expect("a row for run 1");
    assert!(run.contains("| success |"), "{run}");
    let html = stdout(&env.run_ok(&["status", "--history", "--format", "html"]));
    assert!(
        html.contains("<td>#1</td>") && html.contains("<td>success</td>"),
        "{html}"
    );
}

/// `offboard --dry-run` shows the capacity after the withdrawal: every pool,
/// stock and seat pool counted with what everyone else keeps (not 0 %), one
/// less of each for the person leaving. A partial staff list counts those
/// who are not listed but keep their access.
#[test]
fn offboard_dry_run_shows_the_capacity_everyone_else_keeps() {
    let env = TestEnv::new();
    env.copy_examples();
    let (header, rows) = common::example_staff_rows();
    let twenty: String = rows.iter().take(20).map(|r| format!("{r}\n")).collect();
    env.write("staff.csv", format!("{header}\n{twenty}"));
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);
    let capacity = |doc: &serde_json::Value| -> BTreeMap<String, u64> {
        doc["capacity"]
            .as_array()
            .expect("capacity")
            .iter()
            .map(|c| {
                let name = format!(
                    "{} {}",
                    c["kind"].as_str().unwrap(),
                    c["name"].as_str().unwrap()
                );
                (name, c["used"].as_u64().unwrap())
            })
            .collect()
    };
    let before = capacity(&env.plan_json(&["staff.csv"]));
    for kind in ["address-pool", "stock", "seats"] {
        assert!(
            before.keys().any(|k| k.starts_with(kind)),
            "no {kind} in {before:?}"
        );
    }
    assert!(before.values().all(|used| *used > 0), "{before:?}");

    // The first person's devices, seats and pool: one fewer after offboarding.
    let held = env.status_json(&["P100001"]);
    let devices = held["persons"][0]["devices"]
        .as_array()
        .expect("devices")
        .len() as u64;
    let screen = stdout(&env.run_ok(&["offboard", "P100001", "--dry-run"]));
    let shown: BTreeMap<String, u64> = screen
        .lines()
        .skip_while(|l| *l != "Capacity")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let slash = words.iter().position(|w| *w == "/").expect("used / total");
            (
                words[..slash - 1].join(" "),
                words[slash - 1].parse().expect("a count"),
            )
        })
        .collect();
    assert_eq!(shown.len(), before.len(), "{screen}");
    let lost: u64 = before.iter().map(|(k, used)| used - shown[k]).sum();
    // Each device, two seats and one address.
    assert_eq!(lost, devices + 2 + 1, "before {before:?}\nafter {shown:?}");

    // A staff list of ten: the other ten keep everything, and count.
    let ten: String = rows.iter().take(10).map(|r| format!("{r}\n")).collect();
    env.write("ten.csv", format!("{header}\n{ten}"));
    assert_eq!(capacity(&env.plan_json(&["ten.csv"])), before);
}
