//! The `scim` target against a second SCIM implementation, SCIMMY (npm),
//! in its two modes: without filter support (it then answers every list
//! query with the unfiltered list, as the servers of issue 17 did) and with
//! it. SCIMMY declares no enterprise extension for Users, so `department`
//! is not stored: it must be left out and named once, never planned daily.
//! A fault proxy in front answers a chosen PATCH 501, drops a PATCH
//! operation while answering 200, or refuses PATCH and PUT for good.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};

use common::proxy::{Faults, Proxy, Scripted, Seen};
use common::{Api, ScimServer, Staff, Workspace};
use serde_json::Value;

fn run(ws: &Workspace, args: &[&str]) -> std::process::Output {
    ws.homebase().args(args).output().unwrap()
}

fn apply(ws: &Workspace) -> std::process::Output {
    run(ws, &["apply", "staff.csv", "--yes", "--no-progress"])
}

fn text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", text(out));
}

/// `plan --detailed-exitcode` exits with this when the plan has changes.
const CHANGES: i32 = 4;

/// `plan --detailed-exitcode`: 0 nothing to do, 4 changes; and its text.
fn plan(ws: &Workspace) -> (i32, String) {
    let out = run(ws, &["plan", "staff.csv", "--detailed-exitcode"]);
    (out.status.code().unwrap_or(-1), text(&out))
}

fn is_admin(department: &str) -> bool {
    let d = department.to_lowercase();
    d.starts_with("it") || d.starts_with("informationstechnik")
}

/// Every listed person exactly once (by externalId); SCIM id by staff id.
fn users_once(api: &Api, staff: &[Staff]) -> BTreeMap<String, Value> {
    let (total, users) = api.all("/Users");
    assert_eq!(total, staff.len(), "users on the server");
    let mut by_staff_id = BTreeMap::new();
    for user in users {
        let ext = user["externalId"].as_str().unwrap_or_default().to_string();
        assert!(
            by_staff_id.insert(ext.clone(), user).is_none(),
            "{ext}: two users"
        );
    }
    for person in staff {
        let user = &by_staff_id[&person.id];
        assert_eq!(user["name"]["familyName"], person.family_name.as_str());
    }
    by_staff_id
}

/// Members (SCIM ids) of each group, every group and member once.
fn groups(api: &Api) -> BTreeMap<String, BTreeSet<String>> {
    let (_, groups) = api.all("/Groups");
    let mut by_name = BTreeMap::new();
    for group in groups {
        let name = group["displayName"].as_str().unwrap().to_string();
        let members: Vec<String> = group["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect();
        let set: BTreeSet<String> = members.iter().cloned().collect();
        assert_eq!(set.len(), members.len(), "{name}: a member twice");
        assert!(
            by_name.insert(name.clone(), set).is_none(),
            "group {name} twice"
        );
    }
    by_name
}

fn id_of(users: &BTreeMap<String, Value>, staff_id: &str) -> String {
    users[staff_id]["id"].as_str().unwrap().to_string()
}

/// Rewrite one person's row of the staff list.
fn edit_person(ws: &Workspace, staff_id: &str, edit: impl Fn(&mut Vec<String>)) {
    let path = ws.path("staff.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in reader.records() {
        let mut row: Vec<String> = row.unwrap().iter().map(str::to_string).collect();
        if row[0] == staff_id {
            edit(&mut row);
        }
        writer.write_record(&row).unwrap();
    }
    std::fs::write(path, writer.into_inner().unwrap()).unwrap();
}

/// Columns of the staff list (see examples/staff.csv).
const FAMILY: usize = 2;
const DEPARTMENT: usize = 4;

/// Must-show 1 on one server mode: 1,200 provisioned exactly once with one
/// read of the server (no per-person look-up), a second plan with nothing
/// to do and the unstored department named once; then a move out of IT
/// (group memberships removed, as the server says) and a family-name
/// change (through PUT where the proxy answers 501 to a PATCH of
/// `displayName`, as a server whose PATCH covers only some attributes).
fn provision_and_change(filter: bool, patch_501: bool) {
    let Some(server) = ScimServer::scimmy(filter, 50) else {
        return;
    };
    let proxy = Proxy::start(server.addr, Faults::default()).unwrap();
    let ws = Workspace::new(&proxy.url("/v2"), &server.token, "");
    let staff = ws.staff();
    assert_eq!(staff.len(), 1200);

    assert_ok(&apply(&ws));
    let log = proxy.take_log();
    let api = server.api();
    let users = users_once(&api, &staff);
    let posts = log
        .iter()
        .filter(|s| s.method == "POST" && s.path == "/v2/Users")
        .count();
    assert_eq!(posts, 1200, "one POST per person");
    let user_reads = log
        .iter()
        .filter(|s| s.method == "GET" && s.path == "/v2/Users")
        .count();
    // The plan's paged read (1,200 users... none yet: one page) and the
    // token check; no look-up per person.
    assert!(user_reads <= 3, "{user_reads} user list queries");
    assert!(
        log.len() <= 1200 * 3,
        "{} requests for 1,200 persons",
        log.len()
    );
    let held = groups(&api);
    let admins: BTreeSet<String> = staff
        .iter()
        .filter(|p| is_admin(&p.department))
        .map(|p| id_of(&users, &p.id))
        .collect();
    assert!(!admins.is_empty());
    assert_eq!(held["it-admins"], admins);
    assert_eq!(held["staff"].len(), 1200);

    // Nothing to do, and the department the server does not store is
    // named once, not planned as a change.
    let (code, out) = plan(&ws);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("not stored by this server").count(), 1, "{out}");
    assert!(out.contains("department"), "{out}");

    // An administrator moves to the Kämmerei (profile admin → office), and
    // someone else changes their family name.
    let admin = staff.iter().find(|p| is_admin(&p.department)).unwrap();
    let other = staff.iter().find(|p| !is_admin(&p.department)).unwrap();
    edit_person(&ws, &admin.id, |row| row[DEPARTMENT] = "Kämmerei".into());
    edit_person(&ws, &other.id, |row| row[FAMILY] = "Neumann-Weiß".into());
    let other_id = id_of(&users, &other.id);
    if patch_501 {
        proxy.set_faults(Faults {
            scripted: vec![Scripted::patch_of("/v2/Users/", "displayName", 501)],
            ..Faults::default()
        });
    }
    let (code, out) = plan(&ws);
    assert_eq!(code, CHANGES, "{out}");
    assert_ok(&apply(&ws));
    let log = proxy.take_log();
    if patch_501 {
        let other_path = format!("/v2/Users/{other_id}");
        let tries: Vec<(&str, u16)> = log
            .iter()
            .filter(|s| s.path == other_path && s.method != "GET")
            .map(|s| (s.method.as_str(), s.status))
            .collect();
        assert_eq!(tries, [("PATCH", 501), ("PUT", 200)], "{log:?}");
    }
    let held = groups(&api);
    let admin_id = id_of(&users, &admin.id);
    assert!(!held["it-admins"].contains(&admin_id), "still in it-admins");
    assert!(
        !held["vpn-admins"].contains(&admin_id),
        "still in vpn-admins"
    );
    assert!(held["staff"].contains(&admin_id));
    let user = api.get(&format!("/Users/{other_id}"), &[]);
    assert_eq!(user["name"]["familyName"], "Neumann-Weiß");
    assert_eq!(user["userName"], users[&other.id]["userName"], "renamed");
    let (code, out) = plan(&ws);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn scimmy_without_filters_provisions_1200_and_removes_a_membership() {
    provision_and_change(false, false);
}

#[test]
fn scimmy_with_filters_provisions_1200_and_puts_where_patch_is_501() {
    provision_and_change(true, true);
}

/// What a list of seen requests wrote to users: `op:path` of PATCHes.
fn user_patches(log: &[Seen]) -> Vec<String> {
    log.iter()
        .filter(|s| s.method == "PATCH" && s.path.starts_with("/v2/Users/"))
        .flat_map(|s| s.touched.clone())
        .collect()
}

/// Must-show 2: the state store is lost; the server's accounts carry the
/// staff ids. The plan refuses to make second accounts and names `adopt`;
/// after adopting, an apply sends no userName and no password.
#[test]
fn accounts_with_staff_ids_and_no_state_are_never_renamed_or_reset() {
    let Some(server) = ScimServer::scimmy(false, 50) else {
        return;
    };
    let proxy = Proxy::start(server.addr, Faults::default()).unwrap();
    let ws = Workspace::new(&proxy.url("/v2"), &server.token, "");
    ws.keep_staff(120);
    let staff = ws.staff();
    assert_ok(&apply(&ws));
    let before = users_once(&server.api(), &staff);

    std::fs::remove_dir_all(ws.path(".homebase")).unwrap();
    // Someone changed a family name meanwhile: an update is due.
    edit_person(&ws, &staff[3].id, |row| row[FAMILY] = "Umbenannt".into());
    proxy.take_log();
    let (code, out) = plan(&ws);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("homebase adopt"), "{out}");
    let adopted = run(&ws, &["adopt", "--all", "staff.csv", "--yes"]);
    assert_ok(&adopted);
    let out = apply(&ws);
    assert_ok(&out);
    let log = proxy.take_log();
    let touched = user_patches(&log);
    assert!(
        !touched
            .iter()
            .any(|t| t.ends_with(":userName") || t.ends_with(":password")),
        "userName or password sent: {touched:?}"
    );
    assert!(
        !log.iter().any(|s| s.method == "PUT"
            && s.path.starts_with("/v2/Users/")
            && s.touched.iter().any(|t| t == "password")),
        "a PUT carried a password"
    );
    assert!(!log
        .iter()
        .any(|s| s.method == "POST" && s.path == "/v2/Users"));
    let after = users_once(&server.api(), &{
        let mut s = staff.clone();
        s[3].family_name = "Umbenannt".into();
        s
    });
    for (id, user) in &before {
        assert_eq!(after[id]["userName"], user["userName"], "{id} renamed");
    }
}

/// Must-show 3: the server answers 200 to a member removal it does not
/// make. The run fails that person (exit 3, named); the next plan still
/// shows the change.
#[test]
fn a_member_removal_the_server_ignores_fails_the_person() {
    let Some(server) = ScimServer::scimmy(false, 50) else {
        return;
    };
    let proxy = Proxy::start(server.addr, Faults::default()).unwrap();
    let ws = Workspace::new(&proxy.url("/v2"), &server.token, "");
    ws.keep_staff(300);
    let staff = ws.staff();
    assert_ok(&apply(&ws));
    let admin = staff
        .iter()
        .find(|p| is_admin(&p.department))
        .expect("an administrator among the first 300");
    edit_person(&ws, &admin.id, |row| row[DEPARTMENT] = "Kämmerei".into());
    proxy.set_faults(Faults {
        scripted: vec![Scripted::dropping("/v2/Groups/", "remove", usize::MAX)],
        ..Faults::default()
    });
    let out = apply(&ws);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains(&admin.id), "the person is not named: {said}");
    assert!(said.contains("still lists the user"), "{said}");
    assert!(!said.contains("0 failed"), "{said}");
    let users = users_once(&server.api(), &staff);
    let held = groups(&server.api());
    assert!(held["it-admins"].contains(&id_of(&users, &admin.id)));
    let (code, out) = plan(&ws);
    assert_eq!(code, CHANGES, "{out}");
    assert!(
        out.contains(&admin.id) || out.contains(&admin.family_name),
        "{out}"
    );
}

/// Must-show 5: every user PATCH answers 501 and every PUT is refused. Each
/// person is tried once (plus the PUT), nothing is retried, the adaptive
/// limit is not cut, the run exits 3, at most 3 requests per person.
#[test]
fn permanent_refusals_are_not_retried_and_do_not_cut_the_limit() {
    let Some(server) = ScimServer::scimmy(false, 50) else {
        return;
    };
    let proxy = Proxy::start(server.addr, Faults::default()).unwrap();
    let ws = Workspace::new(&proxy.url("/v2"), &server.token, "");
    ws.keep_staff(150);
    let staff = ws.staff();
    assert_ok(&apply(&ws));
    let users = users_once(&server.api(), &staff);
    for person in &staff {
        edit_person(&ws, &person.id, |row| {
            row[FAMILY] = format!("{}-Neu", row[FAMILY])
        });
    }
    proxy.take_log();
    proxy.set_faults(Faults {
        scripted: vec![
            Scripted::new("PATCH", "/v2/Users/", 501, usize::MAX),
            Scripted::new("PUT", "/v2/Users/", 400, usize::MAX),
        ],
        ..Faults::default()
    });
    let out = apply(&ws);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let log = proxy.take_log();
    assert!(
        log.len() <= 3 * staff.len(),
        "{} requests for {} persons",
        log.len(),
        staff.len()
    );
    let mut tries: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for seen in &log {
        let entry = tries.entry(seen.path.as_str()).or_default();
        match seen.method.as_str() {
            "PATCH" => entry.0 += 1,
            "PUT" => entry.1 += 1,
            _ => {}
        }
    }
    for person in &staff {
        let path = format!("/v2/Users/{}", id_of(&users, &person.id));
        let (patches, puts) = tries.get(path.as_str()).copied().unwrap_or_default();
        assert!(patches <= 1, "{}: {patches} PATCHes", person.id);
        assert_eq!(puts, 1, "{}: {puts} PUTs", person.id);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut 0 time(s) for overload"),
        "the limit was cut: {stderr}"
    );
    // Still planned: nothing changed on the server.
    let (code, out) = plan(&ws);
    assert_eq!(code, CHANGES, "{out}");
}
