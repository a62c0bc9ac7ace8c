//! The `ldap` target with `flavour: 389ds` against a real 389 Directory
//! Server (Debian's 389-ds-base, created and started by
//! tests/servers/389ds.sh on a free port of 127.0.0.1, removed afterwards).
//!
//! Without 389-ds-base installed (or without root, which dscreate needs) the
//! tests say so and pass, unless
//! `HOMEBASE_REQUIRE_389DS=1` (scripts/test.sh sets it on CI), where they fail.
//! One 1,200-person run carries the checks that need a full directory; the
//! unhappy paths use a handful of persons.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use crate::ldap::{
    account_actions, bind, free_port, have, ldapsearch, read_env, text, Entry, Workspace,
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Unlike any word homebase prints, so a leak is seen.
const ROOT_PW: &str = "Dm-389-pw-7Qz";

/// One private 389-ds instance; stopped and removed when dropped.
struct Ds389 {
    dir: TempDir,
    env: HashMap<String, String>,
}

impl Ds389 {
    fn start() -> Option<Ds389> {
        let mut missing: Vec<&str> = ["dscreate", "ns-slapd", "ldapsearch", "ldapmodify"]
            .into_iter()
            .filter(|p| !have(p))
            .collect();
        // dscreate hands the instance's folders to the `dirsrv` user.
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
        if !root {
            missing.push("root");
        }
        if !missing.is_empty() {
            if std::env::var("HOMEBASE_REQUIRE_389DS").as_deref() == Ok("1") {
                panic!(
                    "389-ds-base is required (HOMEBASE_REQUIRE_389DS=1) but missing: {missing:?}"
                );
            }
            eprintln!("skipped: 389-ds-base is not installed (missing {missing:?}); scripts/test.sh installs it");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(Path::new(ROOT).join("tests/servers/389ds.sh"))
            .arg("start")
            .arg(dir.path())
            .env("DS389_PORT", free_port().to_string())
            .env("DS389_ROOTPW", ROOT_PW)
            .output()
            .expect("run 389ds.sh");
        assert!(
            out.status.success(),
            "389ds.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = read_env(&dir.path().join("env"));
        Some(Ds389 { dir, env })
    }

    fn url(&self) -> &str {
        &self.env["LDAP_URL"]
    }

    fn suffix(&self) -> &str {
        &self.env["LDAP_SUFFIX"]
    }

    /// The target block for homebase.yaml: plain LDAP on loopback, bound as
    /// the Directory Manager (the instance has no TLS certificate).
    fn target_yaml(&self) -> String {
        format!(
            "    kind: ldap\n    flavour: 389ds\n    url: {}\n    bind_dn: {}\n    bind_password_env: TEST_LDAP_PASSWORD\n    base_dn: {}\n",
            self.url(),
            self.env["LDAP_ROOTDN"],
            self.suffix()
        )
    }

    /// A search as the Directory Manager, who sees operational attributes
    /// such as nsAccountLock and passwordExpirationTime when named.
    fn search(&self, filter: &str, attrs: &[&str]) -> Vec<Entry> {
        ldapsearch(
            self.url(),
            &self.env["LDAP_ROOTDN"],
            ROOT_PW,
            self.suffix(),
            filter,
            attrs,
            None,
        )
    }

    fn ldap(&self, tool: &str, ldif: &str) {
        let mut child = Command::new(tool)
            .args(["-x", "-H", self.url(), "-D", &self.env["LDAP_ROOTDN"]])
            .args(["-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect(tool);
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write ldif");
        assert!(child.wait().expect(tool).success(), "{tool} failed");
    }

    /// Bind as `dn` and read the suffix: the error text if refused.
    fn bind(&self, dn: &str, password: &str) -> Result<(), String> {
        bind(self.url(), dn, password, self.suffix(), None)
    }

    /// Modify operations of `dn` in the server's access log (written
    /// unbuffered: see tests/servers/389ds.sh).
    fn modifies_of(&self, dn: &str) -> usize {
        let logs = self.dir.path().join("prefix/var/log/dirsrv");
        let mut count = 0;
        for inst in std::fs::read_dir(&logs).expect("log dir").flatten() {
            let access = std::fs::read_to_string(inst.path().join("access")).unwrap_or_default();
            let needle = format!("mod dn=\"{}\"", dn.to_lowercase());
            count += access
                .lines()
                .filter(|l| l.to_lowercase().contains(&needle))
                .count();
        }
        count
    }

    /// The last lines of the access log, for a failing assertion.
    fn log_tail(&self) -> Vec<String> {
        let logs = self.dir.path().join("prefix/var/log/dirsrv");
        let mut lines = Vec::new();
        for inst in std::fs::read_dir(&logs).expect("log dir").flatten() {
            let access = std::fs::read_to_string(inst.path().join("access")).unwrap_or_default();
            lines.extend(access.lines().rev().take(20).map(str::to_string));
        }
        lines
    }
}

impl Drop for Ds389 {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(ROOT).join("tests/servers/389ds.sh"))
            .arg("remove")
            .arg(self.dir.path())
            .output();
    }
}

fn person<'a>(plan: &'a Value, id: &str) -> &'a Value {
    plan["persons"]
        .as_array()
        .expect("persons")
        .iter()
        .find(|p| p["id"] == id)
        .expect("person in plan")
}

/// 1,200 persons into 389-ds: entries as planned, in groupOfNames; the
/// must-change mark stored by the server's policy; a second plan has
/// nothing to do; a department change is one modify; offboarding sets
/// nsAccountLock and the person's bind is refused.
#[test]
fn ds389_provisions_the_example_staff() {
    let Some(ds) = Ds389::start() else { return };
    let ws = Workspace::new(&ds.target_yaml(), ROOT_PW);
    ws.example_staff(None);

    let plan = ws.plan_json();
    let wanted = account_actions(&plan);
    assert_eq!(wanted.len(), 1200);
    let run = ws.apply().ok();
    assert!(run.stderr.contains("0 failed"), "{}", run.stderr);

    let entries = ds.search(
        "(employeeNumber=*)",
        &[
            "uid",
            "cn",
            "sn",
            "mail",
            "departmentNumber",
            "employeeNumber",
            "objectClass",
            "nsAccountLock",
            "passwordExpirationTime",
            "pwdAccountLockedTime",
        ],
    );
    assert_eq!(entries.len(), 1200);
    let mut dn_of = HashMap::new();
    for e in &entries {
        let id = e.one("employeeNumber").expect("employeeNumber");
        let a = &wanted[id];
        assert_eq!(e.one("uid"), Some(text(&a["username"])), "{id}");
        assert_eq!(e.get("cn"), [text(&a["display_name"])], "{id}");
        assert_eq!(e.one("mail"), Some(text(&a["email"])), "{id}");
        assert_eq!(e.one("departmentNumber"), a["department"].as_str(), "{id}");
        let classes: Vec<String> = e
            .get("objectClass")
            .iter()
            .map(|c| c.to_lowercase())
            .collect();
        assert!(
            classes.contains(&"inetorgperson".to_string()),
            "{id}: {classes:?}"
        );
        assert!(
            classes.contains(&"nsaccount".to_string()),
            "{id}: {classes:?}"
        );
        assert!(e.get("nsAccountLock").is_empty(), "{id}: enabled");
        // must_change_password: the server's own mark, read as Directory Manager.
        assert_eq!(
            e.one("passwordExpirationTime"),
            Some("19700101000000Z"),
            "{id}: must change the password"
        );
        dn_of.insert(id.to_string(), e.dn.to_lowercase());
    }
    let staff_group = ds.search("(&(objectClass=groupOfNames)(cn=staff))", &["member"]);
    assert_eq!(staff_group.len(), 1);
    assert_eq!(staff_group[0].get("member").len(), 1200);

    // The first password binds, and the server holds the person to
    // changing it; a wrong one does not bind at all.
    let dn = dn_of["P100001"].clone();
    let password = ws.secret("tmeyer");
    let err = ds.bind(&dn, "wrong password").expect_err("wrong password");
    assert!(err.contains("Invalid credentials"), "{err}");
    let err = ds.bind(&dn, &password).expect_err("must change first");
    assert!(err.contains("unwilling to perform"), "{err}");

    // Nothing to do the second time.
    let run = ws.run(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "second plan has changes:\n{}", run.stdout);

    // A department change: one update of one attribute, one modify.
    let before = ds.modifies_of(&dn);
    let updates = crate::ldap::move_thomas_meyer_to_stadtkasse(&ws);
    let changes = updates[0].1["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["field"], "department");
    ws.apply().ok();
    assert_eq!(
        ds.modifies_of(&dn) - before,
        1,
        "one modify for the department of {dn}; log: {:?}",
        ds.log_tail()
    );
    let e = ds.search("(employeeNumber=P100001)", &["departmentNumber"]);
    assert_eq!(e[0].get("departmentNumber"), ["Stadtkasse"]);
    let run = ws.run(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "{}", run.stdout);

    // Offboarding: nsAccountLock, and the server refuses the bind.
    ws.run(&["offboard", "P100001", "--yes", "--no-progress"])
        .ok();
    let e = ds.search("(employeeNumber=P100001)", &["nsAccountLock"]);
    assert_eq!(e[0].get("nsAccountLock"), ["TRUE"]);
    let err = ds.bind(&dn, &password).expect_err("locked");
    assert!(err.contains("Account inactivated"), "{err}");
    assert_eq!(person(&ws.plan_json(), "P100001")["status"], "withdrawn");
    let run = ws.run(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(run.code, 0, "offboarding sticks: {}", run.stdout);
    assert_eq!(ds.search("(employeeNumber=*)", &["1.1"]).len(), 1200);
}

/// The unhappy paths, on a few persons: a password policy without
/// passwordMustChange fails the action (exit 3, named) instead of reporting
/// a must-change that will not happen; an account carrying a listed
/// person's staff id is refused as a second account, and `adopt` takes it
/// over; `check` names a misspelt flavour.
#[test]
fn ds389_refuses_what_it_cannot_keep() {
    let Some(ds) = Ds389::start() else { return };
    let suffix = ds.suffix().to_string();
    let ws = Workspace::new(&ds.target_yaml(), ROOT_PW);

    // A hand-made account of Eva Vogel.
    ds.ldap(
        "ldapadd",
        &format!(
            "dn: ou=Benutzer,{suffix}\nobjectClass: organizationalUnit\nou: Benutzer\n\n\
             dn: uid=evogel,ou=Benutzer,{suffix}\nobjectClass: inetOrgPerson\nuid: evogel\n\
             cn: Eva Vogel\nsn: Vogel\nemployeeNumber: V1\n"
        ),
    );
    std::fs::write(
        ws.path("staff.csv"),
        "id,given_name,family_name,email,department\n\
         V1,Eva,Vogel,eva.vogel@musterstadt.example,Kämmerei\n\
         V2,Otto,Vogel,otto.vogel@musterstadt.example,Kämmerei\n",
    )
    .expect("staff");
    let run = ws.run(&["apply", "staff.csv", "--yes", "--no-progress"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("staff.csv:2: V1 (Eva Vogel) already has the account \"evogel\""),
        "{}",
        run.stderr
    );
    assert_eq!(ds.search("(employeeNumber=*)", &["1.1"]).len(), 1);
    let run = ws.run(&["adopt", "staff.csv", "--target", "directory", "--yes"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    // The admin switched must-change off: Otto's account is made, but the
    // run fails his action rather than claim the password must be changed.
    ds.ldap(
        "ldapmodify",
        "dn: cn=config\nchangetype: modify\nreplace: passwordMustChange\npasswordMustChange: off\n",
    );
    let run = ws.apply();
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("V2"), "{}", run.stderr);
    assert!(
        run.stderr.contains("passwordMustChange: on"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("0 failed"), "{}", run.stderr);
    let e = ds.search("(employeeNumber=V1)", &["uid"]);
    assert_eq!(e.len(), 1, "adopted, not doubled");

    // The openldap flavour on 389-ds is refused before anything is written.
    let config = std::fs::read_to_string(ws.path("homebase.yaml")).expect("config");
    std::fs::write(
        ws.path("homebase.yaml"),
        config.replace("flavour: 389ds", "flavour: openldap"),
    )
    .expect("write");
    let run = ws.run(&["plan", "staff.csv"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("is a 389 Directory Server"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("flavour: 389ds"), "{}", run.stderr);

    // A misspelt flavour is named at its key, with the right spelling.
    std::fs::write(
        ws.path("homebase.yaml"),
        config.replace("flavour: 389ds", "flavour: 389-ds"),
    )
    .expect("write");
    let run = ws.run(&["check", "staff.csv"]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("targets.directory.flavour"), "{said}");
    assert!(said.contains("did you mean `389ds`"), "{said}");
}
