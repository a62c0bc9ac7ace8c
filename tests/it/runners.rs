//! Issue 15, "what it must show" 1: two CI runners — two fresh copies of a
//! project folder, no `.homebase/`, no `out/` — share one PostgreSQL state,
//! with slapd as the directory. Runner A applies the 1,200 example staff;
//! runner B plans nothing and its apply changes nothing: no new keys, no new
//! passwords, no directory write (slapd's entryCSN and modifyTimestamp of
//! every entry are as before).

use crate::common;
use crate::common::pg;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{exit_code, TestEnv, STAFF_COUNT};
use pg::PgServer;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const ROOT_PW: &str = "Rn-bind-pw-7Qz";

struct Slapd {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Slapd {
    fn start() -> Option<Slapd> {
        let have = |p: &str| common::runs("sh", &["-c", &format!("command -v {p}")]);
        if !["slapd", "ldapsearch"].iter().all(|p| have(p)) {
            if std::env::var("HOMEBASE_REQUIRE_LDAP").is_ok_and(|v| v == "1") {
                panic!("HOMEBASE_REQUIRE_LDAP=1 but slapd or ldap-utils are missing");
            }
            eprintln!("skipping: slapd is not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = |_: ()| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("address")
                .port()
        };
        let out = Command::new(Path::new(ROOT).join("tests/servers/slapd.sh"))
            .arg("start")
            .arg(dir.path())
            .env("SLAPD_PORT", port(()).to_string())
            .env("SLAPD_TLS_PORT", port(()).to_string())
            .env("SLAPD_ROOTPW", ROOT_PW)
            .output()
            .expect("run slapd.sh");
        assert!(
            out.status.success(),
            "slapd.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.path().join("env"))
            .expect("slapd env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Some(Slapd { dir, env })
    }

    fn target_yaml(&self) -> String {
        format!(
            "  directory:\n    kind: ldap\n    url: {}\n    ca_file: {}\n    bind_dn: {}\n    bind_password_env: TEST_LDAP_PASSWORD\n    base_dn: {}\n",
            self.env["LDAPS_URL"], self.env["LDAP_CA"], self.env["LDAP_ROOTDN"], self.env["LDAP_SUFFIX"]
        )
    }

    /// Every entry with its operational attributes: any write changes it.
    fn snapshot(&self) -> String {
        let out = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.env["LDAP_URL"],
            ])
            .args(["-D", &self.env["LDAP_ROOTDN"], "-w", ROOT_PW])
            .args(["-b", &self.env["LDAP_SUFFIX"], "(objectClass=*)", "*", "+"])
            .output()
            .expect("ldapsearch");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(ROOT).join("tests/servers/slapd.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn run(env: &TestEnv, args: &[&str]) -> Output {
    env.std_command(args)
        .env("TEST_LDAP_PASSWORD", ROOT_PW)
        .output()
        .expect("run homebase")
}

#[test]
fn a_second_runner_plans_nothing_and_writes_nothing() {
    let Some(server) = PgServer::start("two runners") else {
        return;
    };
    let Some(slapd) = Slapd::start() else {
        return;
    };
    let servers = tempfile::tempdir().expect("temp dir");
    let mut config = server.config("stadt", servers.path());
    let start = config.find("  directory:\n").expect("a directory target");
    let end = config.find("  wg0:\n").expect("the wg0 target");
    config.replace_range(start..end, &slapd.target_yaml());
    let runner = || {
        let env = TestEnv::new();
        env.copy_examples();
        env.write("homebase.yaml", &config);
        env
    };

    let a = runner();
    let out = run(
        &a,
        &["apply", "examples/staff.csv", "--yes", "--no-progress"],
    );
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
    assert_eq!(a.bundle_dirs().len(), STAFF_COUNT);
    let directory = slapd.snapshot();
    assert!(directory.matches("\nemployeeNumber: ").count() >= STAFF_COUNT);
    let gateway = std::fs::read_to_string(servers.path().join("wg0.conf")).expect("wg0.conf");
    let keys = server.psql("SELECT person_id, public_key FROM stadt.peers ORDER BY person_id");

    let b = runner();
    let out = run(&b, &["plan", "examples/staff.csv", "--detailed-exitcode"]);
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
    assert!(
        common::stdout(&out).contains(&format!(
            "{STAFF_COUNT} delivered bundle(s) are not on this machine"
        )),
        "{}",
        common::describe(&out)
    );
    let out = run(
        &b,
        &["apply", "examples/staff.csv", "--yes", "--no-progress"],
    );
    assert_eq!(exit_code(&out), 0, "{}", common::describe(&out));
    assert!(
        common::stderr(&out).contains("nothing to do"),
        "{}",
        common::describe(&out)
    );

    assert!(b.bundle_dirs().is_empty(), "runner B wrote bundles");
    assert!(!b.exists(".homebase"), "runner B made a state file");
    assert_eq!(
        slapd.snapshot(),
        directory,
        "runner B wrote to the directory"
    );
    assert_eq!(
        std::fs::read_to_string(servers.path().join("wg0.conf")).expect("wg0.conf"),
        gateway,
        "runner B changed the gateway's peers"
    );
    assert_eq!(
        server.psql("SELECT person_id, public_key FROM stadt.peers ORDER BY person_id"),
        keys,
        "a key changed"
    );
}
