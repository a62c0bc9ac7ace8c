//! The state on a real PostgreSQL 15 (tests/servers/postgres.sh: loopback,
//! password, TLS verified against the script's CA): runners without a disk of
//! their own share it, organisations are kept apart by schema, the run lock
//! is seen by every runner and dies with its holder, and no secret reaches
//! the database.

use crate::common;
use crate::common::pg;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{all_secrets, exit_code, persons_by_id, stderr, SecretScanner, TestEnv, STAFF_COUNT};
use pg::PgServer;

const SMALL: &str = "id,given_name,family_name,department\n\
S1,Anna,Schmidt,Kämmerei\n\
S2,Paul,Weber,Informationstechnik\n\
S3,Lena,Koch,Ordnungsamt\n";

const APPLY: &[&str] = &["apply", "examples/staff.csv", "--yes", "--no-progress"];

/// The servers' side of the files (the gateway's wg0.conf, the LDIF export).
fn shared() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("homebase-servers-")
        .tempdir()
        .expect("temp dir")
}

/// A fresh project folder (a runner's checkout): config, examples, no state.
fn runner(server: &PgServer, schema: &str, shared: &tempfile::TempDir) -> TestEnv {
    let env = TestEnv::new();
    env.copy_examples();
    env.write("homebase.yaml", server.config(schema, shared.path()));
    env
}

/// Every secret of every bundle in the folders, for a scan.
fn secrets_of(envs: &[&TestEnv]) -> Vec<String> {
    let mut all = Vec::new();
    for env in envs {
        let (passwords, private, preshared) = all_secrets(env);
        all.extend(passwords);
        all.extend(private);
        all.extend(preshared);
    }
    all
}

#[test]
fn a_runner_without_the_bundles_rekeys_nobody_and_the_database_holds_no_secret() {
    let Some(server) = PgServer::start("postgres delivery") else {
        return;
    };
    let servers = shared();
    let a = runner(&server, "stadt", &servers);
    a.write("staff.csv", SMALL);
    a.run_ok(&["apply", "staff.csv", "--yes"]);
    assert!(
        !a.exists(".homebase"),
        "a state file beside a PostgreSQL state"
    );
    let mut issued = secrets_of(&[&a]);
    let keys = std::fs::read_to_string(servers.path().join("wg0.conf")).expect("wg0.conf");

    // Runner B: a fresh checkout of the same project, no out/.
    let b = runner(&server, "stadt", &servers);
    b.write("staff.csv", SMALL);
    let out = b.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
    assert!(
        common::stdout(&out).contains("3 delivered bundle(s) are not on this machine"),
        "{}",
        common::describe(&out)
    );
    let out = b.run_ok(&["apply", "staff.csv", "--yes"]);
    assert!(
        stderr(&out).contains("nothing to do"),
        "{}",
        common::describe(&out)
    );
    assert!(b.bundle_dirs().is_empty(), "runner B wrote bundles");

    // A lost bundle on runner A: still nothing, until rotated (from B, even).
    let plan = a.plan_json(&["staff.csv"]);
    let name = plan["persons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "S2")
        .unwrap()["username"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(a.join(format!("out/{name}"))).expect("remove the bundle");
    a.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
    b.run_ok(&["rotate", "S2", "--staff", "staff.csv", "--yes"]);
    let rotated = b.secrets(&name);
    assert!(!a.exists(format!("out/{name}")));
    issued.extend(secrets_of(&[&b]));
    a.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
    assert!(issued.contains(&rotated["wireguard_private_key"]));

    // Issue 15, "what it must show" 6: no key or password in the database.
    let scanner = SecretScanner::new(issued);
    assert!(scanner.len() >= 7, "too few secrets to scan for");
    scanner.assert_absent("pg_dump", server.pg_dump().as_bytes());
    // Only S2's peer key changed on the gateway.
    let now = std::fs::read_to_string(servers.path().join("wg0.conf")).expect("wg0.conf");
    let changed = keys.lines().filter(|line| !now.contains(*line)).count();
    assert_eq!(
        changed, 2,
        "S2's PublicKey (and PresharedKey) lines:\n{keys}\n---\n{now}"
    );
}

#[test]
fn two_organisations_on_one_server_do_not_see_each_other() {
    let Some(server) = PgServer::start("postgres organisations") else {
        return;
    };
    let servers = shared();
    let a = runner(&server, "org_a", &servers);
    a.write("staff.csv", SMALL);
    let servers_b = shared();
    let b = runner(&server, "org_b", &servers_b);
    b.write(
        "staff.csv",
        "id,given_name,family_name,department\nB1,Berta,Brandt,Kämmerei\n",
    );
    a.run_ok(&["apply", "staff.csv", "--yes"]);
    b.run_ok(&["apply", "staff.csv", "--yes"]);
    let ids = |env: &TestEnv| -> BTreeSet<String> {
        persons_by_id(&env.status_json(&[]))
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(
        ids(&a),
        BTreeSet::from(["S1".into(), "S2".into(), "S3".into()])
    );
    assert_eq!(ids(&b), BTreeSet::from(["B1".to_string()]));
    assert_eq!(
        server.psql("SELECT count(*) FROM org_a.persons").trim(),
        "3"
    );
    assert_eq!(
        server.psql("SELECT count(*) FROM org_b.persons").trim(),
        "1"
    );
    // Each plans nothing: neither takes the other's persons for dropped ones.
    a.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
    b.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);

    // The server down: a clear refusal, no password in it, nothing written.
    server.stop();
    let out = b.run(&["plan", "staff.csv"]);
    assert_eq!(exit_code(&out), 1, "{}", common::describe(&out));
    let message = stderr(&out);
    assert!(
        message.contains("cannot connect to the state store"),
        "{message}"
    );
    let password = std::fs::read_to_string(server.password_file()).unwrap();
    assert!(!message.contains(password.trim()), "{message}");
}

#[test]
fn a_wrong_password_or_an_untrusted_certificate_is_refused() {
    let Some(server) = PgServer::start("postgres refusals") else {
        return;
    };
    let servers = shared();
    let env = runner(&server, "stadt", &servers);
    env.write("staff.csv", SMALL);
    // A password in the URL is bad input: exit 2, nothing written.
    let with_password = server
        .config("stadt", servers.path())
        .replace("homebase@127.0.0.1", "homebase:hunter2@127.0.0.1");
    env.write("homebase.yaml", &with_password);
    let out = env.run_expect(&["apply", "staff.csv", "--yes"], 2);
    assert!(
        !stderr(&out).contains("hunter2"),
        "{}",
        common::describe(&out)
    );
    assert!(!env.exists("out"));

    env.write("pw-wrong", "not-the-password\n");
    let wrong = server.config("stadt", servers.path()).replace(
        &server.password_file().display().to_string(),
        &env.join("pw-wrong").display().to_string(),
    );
    env.write("homebase.yaml", &wrong);
    let out = env.run_expect(&["plan", "staff.csv"], 1);
    assert!(
        stderr(&out).contains("password"),
        "{}",
        common::describe(&out)
    );

    // The system's trust store does not know the test CA: verify-full refuses.
    let untrusted = server
        .config("stadt", servers.path())
        .replace(&format!("  ca_file: {}\n", server.ca().display()), "");
    env.write("homebase.yaml", &untrusted);
    let out = env.run_expect(&["plan", "staff.csv"], 1);
    assert!(
        stderr(&out).contains("cannot connect to the state store"),
        "{}",
        common::describe(&out)
    );
    assert!(!env.exists("out"));
}

/// Waits until a homebase process holds the run lock of `schema`.
fn wait_for_holder(server: &PgServer, schema: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let holder = server.try_psql(&format!(
            "SELECT h.holder FROM {schema}.lock_holders h JOIN pg_locks l ON l.pid = h.backend_pid
             WHERE l.locktype = 'advisory' AND l.granted"
        ));
        if let Some(holder) = holder.ok().filter(|h| !h.trim().is_empty()) {
            return holder.trim().to_string();
        }
        assert!(Instant::now() < deadline, "nobody took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_lock_is_seen_by_every_runner_and_released_by_a_killed_holder() {
    let Some(server) = PgServer::start("postgres lock") else {
        return;
    };
    let servers = shared();
    let a = runner(&server, "stadt", &servers);
    let b = runner(&server, "stadt", &servers);

    // A applies the 1,200 example staff; B, started meanwhile, is refused
    // with the holder named, and changes nothing.
    let first = a.spawn(APPLY);
    let holder = wait_for_holder(&server, "stadt");
    let out = b.run(APPLY);
    let refused = stderr(&out);
    assert_eq!(exit_code(&out), 2, "{}", common::describe(&out));
    assert!(refused.contains("holds the lock"), "{refused}");
    assert!(refused.contains(&holder), "{refused}\nholder: {holder}");
    assert!(
        refused.contains(&format!("pid {} on ", first.child.id())),
        "{refused}"
    );
    assert!(b.bundle_dirs().is_empty());

    // With --lock-timeout B waits for A, then has nothing to do.
    let mut waiting = APPLY.to_vec();
    waiting.extend(["--lock-timeout", "120s"]);
    let second = b.spawn(&waiting);
    let first = first.wait();
    assert_eq!(first.code, Some(0), "{}", first.describe());
    let second = second.wait();
    assert_eq!(second.code, Some(0), "{}", second.describe());
    assert!(
        second.stderr.contains("nothing to do"),
        "{}",
        second.describe()
    );
    assert!(b.bundle_dirs().is_empty(), "runner B re-keyed someone");
    assert_eq!(a.bundle_dirs().len(), STAFF_COUNT);

    // A killed holder (SIGKILL: no chance to unlock) releases the lock with
    // its connection; the next run resumes to the same end state.
    let servers_c = shared();
    let c = runner(&server, "neu", &servers_c);
    for delay in [300, 1500] {
        let run = c.spawn(APPLY);
        wait_for_holder(&server, "neu");
        std::thread::sleep(Duration::from_millis(delay));
        let killed = run.kill();
        assert_ne!(killed.code, Some(0), "the run ended before it was killed");
    }
    c.run_ok(APPLY);
    c.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);
    let count = |sql: &str| server.psql(sql).trim().parse::<usize>().unwrap();
    assert_eq!(count("SELECT count(*) FROM neu.persons"), STAFF_COUNT);
    assert_eq!(count("SELECT count(*) FROM neu.peers"), STAFF_COUNT);
    assert_eq!(
        count("SELECT count(DISTINCT address) FROM neu.peers"),
        STAFF_COUNT
    );
    assert_eq!(
        count("SELECT count(DISTINCT person_id) FROM neu.bundles"),
        STAFF_COUNT
    );
    let devices = count("SELECT count(*) FROM neu.devices");
    assert_eq!(
        count("SELECT count(DISTINCT asset_tag) FROM neu.devices"),
        devices
    );
    let status = persons_by_id(&c.status_json(&[]));
    assert_eq!(status.len(), STAFF_COUNT);
}

/// `homebase ARGS` with the PostgreSQL password in the environment (what a
/// CI job's secret variable does for `state migrate --to URL`).
fn run_with_password(env: &TestEnv, server: &PgServer, args: &[&str]) -> std::process::Output {
    let password = std::fs::read_to_string(server.password_file()).expect("password");
    env.std_command(args)
        .env("PGPASSWORD", password.trim())
        .output()
        .expect("run homebase")
}

fn digest_of(dump: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(dump).expect("a JSON dump");
    assert_eq!(value["schema"], "homebase.state/v1");
    value["digest"].as_str().expect("a digest").to_string()
}

#[test]
fn state_migrate_round_trips_sqlite_postgres_sqlite_with_one_digest() {
    let Some(server) = PgServer::start("postgres migrate") else {
        return;
    };
    let env = TestEnv::new();
    env.copy_examples();
    env.write("staff.csv", SMALL);
    env.run_ok(&["apply", "staff.csv", "--yes"]);
    env.run_ok(&["offboard", "S3", "--yes"]);
    let dump = env.run_ok(&["state", "dump"]);
    let digest = digest_of(&common::stdout(&dump));
    let status = env.status_json(&[]);
    let history = common::stdout(&env.run_ok(&["status", "--history"]));
    let plan = env.plan_json(&["staff.csv"]);

    // SQLite → PostgreSQL.
    let url = format!(
        "{}&sslrootcert={}&schema=moved",
        server.url(),
        server.ca().display()
    );
    let out = run_with_password(&env, &server, &["state", "migrate", "--to", &url]);
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    assert!(stderr(&out).contains(&digest), "{}", common::describe(&out));
    // A second copy into the same schema is refused: it is not empty.
    let out = run_with_password(&env, &server, &["state", "migrate", "--to", &url]);
    assert_eq!(out.status.code(), Some(2), "{}", common::describe(&out));

    // The same project on the PostgreSQL copy answers the same.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/homebase.yaml"))
        .expect("homebase.yaml");
    env.write(
        "homebase.yaml",
        shipped.replace("state: .homebase/state.db\n", &server.state_yaml("moved")),
    );
    assert_eq!(
        digest_of(&common::stdout(&env.run_ok(&["state", "dump"]))),
        digest
    );
    assert_eq!(env.status_json(&[]), status);
    assert_eq!(
        common::stdout(&env.run_ok(&["status", "--history"])),
        history
    );
    let on_postgres = env.plan_json(&["staff.csv"]);
    assert_eq!(on_postgres["persons"], plan["persons"]);
    assert_eq!(on_postgres["state_digest"], plan["state_digest"]);

    // PostgreSQL → a new SQLite file: the same digest again.
    env.run_ok(&["state", "migrate", "--to", "back.db"]);
    std::fs::remove_file(env.join("homebase.yaml")).expect("remove the config");
    std::fs::remove_dir_all(env.join(".homebase")).expect("remove the first store");
    std::fs::rename(env.join("back.db"), env.join("state-back.db")).expect("move");
    std::fs::create_dir_all(env.join(".homebase")).expect("mkdir");
    std::fs::rename(env.join("state-back.db"), env.join(".homebase/state.db")).expect("move");
    assert_eq!(
        digest_of(&common::stdout(&env.run_ok(&["state", "dump"]))),
        digest
    );
    assert_eq!(env.status_json(&[]), status);
    env.run_expect(&["plan", "staff.csv", "--detailed-exitcode"], 0);
}
