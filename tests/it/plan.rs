//! Planning: usernames (safe, unique, stable), names as data in every report
//! and file, and the plan command's outputs and exit codes.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{example_staff_rows, persons_by_id, stdout, usernames, TestEnv, STAFF_COUNT};

fn assert_safe_usernames(names: &BTreeMap<String, String>) {
    let unique: BTreeSet<&String> = names.values().collect();
    assert_eq!(unique.len(), names.len(), "usernames are not unique");
    for (id, name) in names {
        assert!(
            !name.is_empty() && name.len() <= 20,
            "{id}: username {name:?} is empty or longer than 20"
        );
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
            "{id}: username {name:?} has characters outside [a-z0-9._-]"
        );
        assert!(
            !name.starts_with('.') && !name.starts_with('-'),
            "{id}: username {name:?} starts with . or -"
        );
    }
}

#[test]
fn usernames_are_unique_safe_and_stable() {
    let env = TestEnv::new();
    env.copy_examples();
    let plan = env.plan_json(&["examples/staff.csv"]);
    let persons = persons_by_id(&plan);
    assert_eq!(persons.len(), STAFF_COUNT);
    for (id, p) in &persons {
        assert_eq!(p["status"], "new", "{id}");
        let resources: BTreeSet<&str> = p["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["op"] == "create")
            .map(|a| a["resource"].as_str().expect("resource"))
            .collect();
        for resource in ["account", "vpn_peer", "bundle"] {
            assert!(
                resources.contains(resource),
                "{id}: no `create {resource}` in {p:#}"
            );
        }
    }
    let first = usernames(&plan);
    assert_safe_usernames(&first);

    assert_eq!(
        usernames(&env.plan_json(&["examples/staff.csv"])),
        first,
        "a second plan gives other usernames"
    );

    let (header, rows) = example_staff_rows();
    let reversed: Vec<&String> = rows.iter().rev().collect();
    // A fixed permutation: 7 is coprime to 1,200.
    let shuffled: Vec<&String> = (0..rows.len())
        .map(|i| &rows[(i * 7 + 3) % rows.len()])
        .collect();
    for (name, order) in [("reversed.csv", reversed), ("shuffled.csv", shuffled)] {
        let mut text = format!("{header}\n");
        for row in order {
            text.push_str(row);
            text.push('\n');
        }
        env.write(name, text);
        assert_eq!(
            usernames(&env.plan_json(&[name])),
            first,
            "{name}: the same person gets another username"
        );
    }
    env.assert_untouched("plan");
}

const HOSTILE_CSV: &str = "id,given_name,family_name,email,department
H1,Eva,{{ 7*7 }},h1@example.org,Kämmerei
H2,Hans*)(uid=*,Becker,h2@example.org,Kämmerei
H3,..,/../../etc/passwd,h3@example.org,Kämmerei
H4,Lisa,\"=HYPERLINK(\"\"x\"\")\",h4@example.org,Kämmerei
H5,Tom,<script>alert(1)</script>,h5@example.org,Kämmerei
H6,Grete,Jürgens,h6@example.org,Kämmerei
";

/// What each hostile name must look like wherever it is shown.
const HOSTILE: &[(&str, &str)] = &[
    ("H1", "{{ 7*7 }}"),
    ("H2", "Hans*)(uid=*"),
    ("H3", "/../../etc/passwd"),
    ("H4", "=HYPERLINK(\"x\")"),
    ("H5", "<script>alert(1)</script>"),
];

/// HTML text with its character references resolved (the ones escapers use).
fn html_unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `s` is shown as text: escaped in the markup, itself once unescaped.
fn html_contains(html: &str, s: &str) -> bool {
    html_unescape(html).contains(s)
}

fn assert_html_shows_names_as_text(what: &str, html: &str, names: &[(&str, &str)]) {
    for (id, name) in names {
        assert!(
            html_contains(html, name),
            "{what}: {id}'s name {name:?} is not shown escaped"
        );
    }
    assert!(!html.contains("<script>"), "{what}: a raw <script> tag");
    assert!(
        !html.contains("Eva 49"),
        "{what}: {{{{ 7*7 }}}} was evaluated"
    );
}

/// The HTML review page: its only scripts are its own two (the JSON data
/// and the code), the data block is JSON that holds every name literally and
/// no `<`, `>` or `&` that could end it, and no name was evaluated.
fn assert_review_page_keeps_names_as_data(html: &str, names: &[(&str, &str)]) {
    assert_eq!(
        html.matches("<script").count(),
        2,
        "HTML report: scripts beside the page's data and code"
    );
    let open = "<script type=\"application/json\" id=\"plan-data\">";
    let start = html.find(open).expect("a plan-data block") + open.len();
    let end = start + html[start..].find("</script>").expect("its end");
    let block = &html[start..end];
    assert!(
        !block.contains(['<', '>', '&']),
        "HTML report: markup characters in the data block"
    );
    let data: serde_json::Value = serde_json::from_str(block).expect("the data block is JSON");
    let shown: BTreeMap<&str, &str> = data["persons"]
        .as_array()
        .expect("persons")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or(""),
                p["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for (id, name) in names {
        assert!(
            shown.get(id).is_some_and(|n| n.contains(name)),
            "HTML report: {id}'s name {name:?} is not kept literally: {:?}",
            shown.get(id)
        );
    }
    assert!(
        !html.contains("Eva 49"),
        "HTML report: {{{{ 7*7 }}}} was evaluated"
    );
}

#[test]
fn hostile_names_are_data_everywhere() {
    let etc_passwd = std::fs::metadata("/etc/passwd")
        .ok()
        .map(|m| (m.len(), m.modified().ok()));
    let env = TestEnv::new();
    env.copy_examples();
    env.write("staff.csv", HOSTILE_CSV);

    let plan = env.plan_json(&["staff.csv"]);
    let persons = persons_by_id(&plan);
    let names = usernames(&plan);
    assert_safe_usernames(&names);
    for (id, name) in HOSTILE {
        let display = persons[*id]["display_name"].as_str().expect("display_name");
        assert!(
            display.contains(name),
            "{id}: display_name {display:?} does not keep {name:?}"
        );
        for bad in ['/', '*', '(', ')', '{', '<', '=', '"'] {
            assert!(
                !names[*id].contains(bad),
                "{id}: username {:?} contains {bad:?}",
                names[*id]
            );
        }
    }

    // Markdown: every markup character backslash-escaped or an entity.
    let md = stdout(&env.run_ok(&["plan", "staff.csv", "--format", "md"]));
    let unescaped = md.replace('\\', "");
    for (id, name) in HOSTILE {
        let shown = name.replace('<', "&lt;").replace('>', "&gt;");
        assert!(
            unescaped.contains(&shown),
            "markdown: {id}'s name {name:?} is not there literally:\n{md}"
        );
    }
    assert!(
        !md.contains("<script>"),
        "markdown: a raw <script> tag:\n{md}"
    );
    assert!(
        !md.contains("Eva 49"),
        "markdown: {{{{ 7*7 }}}} was evaluated"
    );
    assert!(md.contains("7\\*7"), "markdown: * is not escaped:\n{md}");

    let html = stdout(&env.run_ok(&["plan", "staff.csv", "--format", "html"]));
    assert_review_page_keeps_names_as_data(&html, HOSTILE);

    let text = stdout(&env.run_ok(&["plan", "staff.csv", "-v"]));
    assert!(
        !text.contains("Eva 49"),
        "text report: {{{{ 7*7 }}}} was evaluated"
    );
    env.assert_untouched("plan");

    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);

    // Nothing outside out/ and the state store, bundle folders named by username.
    let inputs: BTreeSet<&Path> = ["staff.csv", "examples/staff.csv", "examples/inventory.csv"]
        .iter()
        .map(Path::new)
        .collect();
    for file in env.files_under(".") {
        assert!(
            file.starts_with("out")
                || file.starts_with(".homebase")
                || inputs.contains(file.as_path()),
            "apply wrote {} outside out/ and .homebase/",
            file.display()
        );
    }
    let expected: BTreeSet<String> = names.values().cloned().collect();
    assert_eq!(
        env.bundle_dirs(),
        expected,
        "bundle folders are not the planned usernames"
    );
    assert_eq!(
        std::fs::metadata("/etc/passwd")
            .ok()
            .map(|m| (m.len(), m.modified().ok())),
        etc_passwd,
        "/etc/passwd changed"
    );

    for (id, name) in HOSTILE {
        let username = &names[*id];
        for file in ["welcome.html", "handover.html"] {
            let html = env.read_string(format!("out/{username}/{file}"));
            assert_html_shows_names_as_text(&format!("{id} {file}"), &html, &[(id, name)]);
        }
        let md = env.read_string(format!("out/{username}/welcome.md"));
        assert!(
            !md.contains("<script>") && !md.contains("Eva 49"),
            "{id} welcome.md:\n{md}"
        );
        let conf = env.read_string(format!("out/{username}/wireguard.conf"));
        assert!(!conf.contains("Eva 49"), "{id} wireguard.conf:\n{conf}");
        assert_eq!(
            conf.matches("[Interface]").count(),
            1,
            "{id}: the name added sections:\n{conf}"
        );
        assert_eq!(
            conf.matches("[Peer]").count(),
            1,
            "{id}: the name added sections:\n{conf}"
        );
    }
    let h5 = env.read_string(format!("out/{}/welcome.html", names["H5"]));
    assert!(
        h5.contains("&lt;script&gt;alert(1)&lt;"),
        "H5 welcome.html:\n{h5}"
    );

    assert_ldif_is_valid(&env.read_string("out/server/directory.ldif"), &persons);
}

/// RFC 2849: plain values are SAFE-STRINGs, anything else is base64; the
/// names survive the round trip.
fn assert_ldif_is_valid(ldif: &str, persons: &BTreeMap<String, serde_json::Value>) {
    let mut entry: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut entries = Vec::new();
    for line in ldif.lines().chain([""]) {
        if line.is_empty() {
            if !entry.is_empty() {
                entries.push(std::mem::take(&mut entry));
            }
            continue;
        }
        if line.starts_with('#') || line.starts_with(' ') {
            continue;
        }
        let (attr, value) = if let Some((attr, b64)) = line.split_once(":: ") {
            let bytes = B64
                .decode(b64)
                .unwrap_or_else(|e| panic!("LDIF: bad base64 in {line:?}: {e}"));
            (attr, String::from_utf8(bytes).expect("UTF-8 value"))
        } else {
            let (attr, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("LDIF: not `attr: value`: {line:?}"));
            let safe = value
                .bytes()
                .all(|b| (0x01..0x80).contains(&b) && b != b'\n' && b != b'\r')
                && !value.starts_with([' ', ':', '<']);
            assert!(safe, "LDIF: {line:?} must be base64 (`{attr}:: …`)");
            (attr, value.to_string())
        };
        entry.entry(attr.to_string()).or_default().push(value);
    }
    for (id, person) in persons {
        let entry = entries
            .iter()
            .find(|e| e.get("employeeNumber").is_some_and(|v| v.contains(id)))
            .unwrap_or_else(|| panic!("LDIF: no entry with employeeNumber {id}"));
        let display = person["display_name"].as_str().expect("display_name");
        assert!(
            entry.values().flatten().any(|v| v == display),
            "LDIF: {id}'s name {display:?} is not kept: {entry:?}"
        );
        let username = person["username"].as_str().expect("username");
        let dn = &entry["dn"][0];
        assert!(
            dn.starts_with(&format!("uid={username},")),
            "LDIF: dn {dn:?} of {id}"
        );
    }
}

#[test]
fn names_without_letters_get_a_safe_username_or_are_refused() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "staff.csv",
        "id,given_name,family_name\nX1,.,..\nX2,/,*\nX3,李,王\n",
    );
    let out = env.run(&["plan", "staff.csv", "--format", "json"]);
    match common::exit_code(&out) {
        0 => assert_safe_usernames(&usernames(&common::parse_json(&out))),
        2 => assert!(
            common::stderr(&out).contains("staff.csv:"),
            "{}",
            common::describe(&out)
        ),
        _ => panic!("{}", common::describe(&out)),
    }
    env.assert_untouched("plan");
}

#[test]
fn detailed_exitcode_saved_plan_and_reports() {
    let env = TestEnv::new();
    env.copy_examples();
    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 4);

    env.run_ok(&[
        "plan",
        "examples/staff.csv",
        "--out",
        "plan.json",
        "--report",
        "r.html",
    ]);
    let saved: serde_json::Value =
        serde_json::from_slice(&env.read("plan.json")).expect("the saved plan is JSON");
    assert_eq!(saved["schema"], "homebase.plan/v1");
    assert_eq!(saved["persons"].as_array().map(Vec::len), Some(STAFF_COUNT));
    assert!(
        saved["inputs"]["digest"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "no inputs digest"
    );
    let html = env.read_string("r.html");
    assert!(
        html.trim_start()
            .to_lowercase()
            .starts_with("<!doctype html"),
        "r.html is not an HTML page"
    );
    assert!(
        html.trim_end().ends_with("</html>"),
        "r.html is not a whole page"
    );

    env.run_ok(&[
        "plan",
        "examples/staff.csv",
        "--report",
        "r.md",
        "--format",
        "md",
    ]);
    assert!(env.read_string("r.md").contains('|'), "r.md has no table");
    env.run_ok(&["plan", "examples/staff.csv", "--report", "r.json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&env.read("r.json")).expect("r.json is JSON");
    assert_eq!(report["schema"], "homebase.plan/v1");

    env.assert_untouched("plan --out/--report");
}

#[test]
fn expiry_is_planned_relative_to_today() {
    let today = chrono::Local::now().date_naive();
    let soon = today + chrono::Days::new(5);
    let past = today - chrono::Days::new(1);
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "staff.csv",
        format!(
            "id,given_name,family_name,end\nE1,Anna,Bald,{soon}\nE2,Paul,Vorbei,{past}\nE3,Lena,Lange,{}\n",
            today + chrono::Days::new(400)
        ),
    );
    let plan = env.plan_json(&["staff.csv"]);
    let persons = persons_by_id(&plan);
    let expiring: Vec<&serde_json::Value> = plan["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter(|w| w["kind"] == "expiring")
        .collect();
    assert!(
        expiring.iter().any(|w| w["persons"]
            .as_array()
            .is_some_and(|p| p.iter().any(|id| id == "E1"))),
        "no expiry warning for E1 (ends {soon}): {:#}",
        plan["warnings"]
    );
    assert!(
        !expiring.iter().any(|w| w["persons"]
            .as_array()
            .is_some_and(|p| p.iter().any(|id| id == "E3"))),
        "an expiry warning for E3 (ends in 400 days)"
    );
    assert_eq!(persons["E1"]["expires"], soon.to_string());
    let e2 = persons.get("E2");
    let creates = e2.map_or(0, |p| {
        p["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["op"] == "create")
            .count()
    });
    assert_eq!(
        creates, 0,
        "E2 ended yesterday and still gets access: {e2:?}"
    );
}

/// `HOMEBASE_TODAY` moves the day every date is judged by: a year ahead of
/// the staff list's dates, the person who was "expiring" has ended and the one
/// four hundred days out now warns. A day that is not a date is bad input.
#[test]
fn a_pinned_day_decides_expiry_and_a_bad_one_is_refused() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "staff.csv",
        "id,given_name,family_name,end\nE1,Anna,Bald,2031-03-05\nE3,Lena,Lange,2032-04-08\n",
    );
    let pinned = |day: &str| {
        let out = env
            .command()
            .env("HOMEBASE_TODAY", day)
            .args(["plan", "staff.csv", "--format", "json"])
            .output()
            .expect("run homebase");
        (common::exit_code(&out), out)
    };
    let expiring = |plan: &serde_json::Value| -> Vec<String> {
        plan["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .filter(|w| w["kind"] == "expiring")
            .flat_map(|w| w["persons"].as_array().cloned().unwrap_or_default())
            .map(|id| id.as_str().unwrap_or_default().to_string())
            .collect()
    };

    let (code, out) = pinned("2031-03-01");
    assert_eq!(code, 0, "{}", common::describe(&out));
    assert!(
        common::stderr(&out).contains("2031-03-01"),
        "the pinned day is said: {}",
        common::stderr(&out)
    );
    let plan = common::parse_json(&out);
    assert_eq!(plan["today"], "2031-03-01");
    assert_eq!(expiring(&plan), ["E1"]);

    let (code, out) = pinned("2032-04-01");
    assert_eq!(code, 0, "{}", common::describe(&out));
    let plan = common::parse_json(&out);
    let persons = persons_by_id(&plan);
    assert_eq!(expiring(&plan), ["E3"]);
    assert_eq!(persons["E1"]["status"], "withdrawn", "{:#}", persons["E1"]);

    for bad in ["2031-02-30", "01.03.2031", "soon"] {
        let (code, out) = pinned(bad);
        assert_eq!(code, 2, "HOMEBASE_TODAY={bad}: {}", common::describe(&out));
        let err = common::stderr(&out);
        assert!(
            err.contains(&format!("HOMEBASE_TODAY=\"{bad}\"")) && err.contains("YYYY-MM-DD"),
            "{err}"
        );
    }
    env.assert_untouched("plan with a pinned day");
}

/// Colour is decided per stream: from a terminal, `plan > plan.txt` writes
/// no escape codes into the file, while the terminal itself gets colour.
#[test]
fn colour_is_decided_for_the_stream_it_goes_to() {
    if !common::has_script() {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    let bin = assert_cmd::cargo::cargo_bin("homebase");
    let bin = bin.display();
    env.in_terminal(&format!("{bin} plan examples/staff.csv -v > plan.txt"));
    let file = env.read_string("plan.txt");
    assert!(file.contains("\n+ P100001 "), "{file}");
    assert!(!file.contains('\x1b'), "escape codes in plan.txt");
    let screen = env.in_terminal(&format!("{bin} plan examples/staff.csv -v"));
    assert!(
        screen.contains("\x1b[32m+\x1b[0m"),
        "no colour on the terminal"
    );
    std::fs::remove_file(env.join("plan.txt")).expect("rm plan.txt");
    env.assert_untouched("plan to a file");
}

/// A large text plan does not flood the terminal: the persons are counted,
/// not listed (`-v` or a report file lists them), and the summary comes
/// last, where it stays on screen. A small plan lists its persons.
#[test]
fn a_large_text_plan_fits_a_screen_and_ends_with_its_summary() {
    let env = TestEnv::new();
    env.copy_examples();
    let brief = stdout(&env.run_ok(&["plan", "examples/staff.csv"]));
    assert!(
        brief.lines().count() < 60,
        "{} lines:\n{brief}",
        brief.lines().count()
    );
    assert!(brief.starts_with("Changes by pattern"), "{brief}");
    let counted = format!("\nPersons with changes: {STAFF_COUNT}, listed with -v");
    assert!(brief.contains(&counted), "{brief}");
    assert!(!brief.contains("P100001"), "{brief}");
    let last = brief.lines().last().expect("a line");
    assert!(
        last.starts_with(&format!("Plan for {STAFF_COUNT} person(s): ")),
        "{last}"
    );
    let targets = brief.find("\nTargets\n").expect("a Targets section");
    let warnings = brief.find("\nWarnings\n").expect("a Warnings section");
    assert!(targets < warnings, "{brief}");

    let full = stdout(&env.run_ok(&["plan", "examples/staff.csv", "-v"]));
    assert!(full.contains("\n+ P100001 "), "-v lists the persons");
    assert!(full
        .lines()
        .last()
        .expect("a line")
        .starts_with(&format!("Plan for {STAFF_COUNT} person(s): ")));

    let (header, rows) = example_staff_rows();
    let few: String = rows.iter().take(20).map(|r| format!("{r}\n")).collect();
    env.write("few.csv", format!("{header}\n{few}"));
    let small = stdout(&env.run_ok(&["plan", "few.csv"]));
    assert!(small.starts_with("Changes by pattern"), "{small}");
    assert!(small.contains("\n+ P100001 "), "{small}");
    assert_eq!(small.matches("\n+ P1").count(), 20, "{small}");
    assert_eq!(
        small.matches("\n      create account ").count(),
        20,
        "a small plan lists each person's actions:\n{small}"
    );
}

/// With `--report FILE` the file gets the whole report in its format and the
/// terminal only the text summary (the README's plan line).
#[test]
fn a_report_file_takes_the_report_and_the_terminal_the_summary() {
    let env = TestEnv::new();
    env.copy_examples();
    let out = env.run_ok(&[
        "plan",
        "examples/staff.csv",
        "--format",
        "md",
        "--report",
        "plan.md",
        "--out",
        "plan.json",
    ]);
    let screen = stdout(&out);
    assert!(screen.lines().count() < 60, "{screen}");
    assert!(
        screen.lines().last().unwrap_or("").starts_with("Plan for "),
        "{screen}"
    );
    let file = env.read_string("plan.md");
    assert!(
        file.starts_with('#'),
        "Markdown: {}",
        &file[..file.len().min(200)]
    );
    assert!(
        file.contains("P100001") && file.contains("P101199"),
        "every person in the file"
    );
}

/// `-v` says what each target was asked and answered, with timings; without
/// it, none of that.
#[test]
fn verbose_says_what_each_target_answered() {
    let env = TestEnv::new();
    env.copy_examples();
    let quiet = common::stderr(&env.run_ok(&["plan", "examples/staff.csv"]));
    assert!(!quiet.contains("read in"), "{quiet}");
    let loud = common::stderr(&env.run_ok(&["plan", "examples/staff.csv", "-v"]));
    for wanted in [
        "target \"directory\" (local): connected in ",
        "target \"stock\": read in ",
        "stock item(s), ",
        "target \"wg0\": read in ",
        "0 managed peer(s)",
        &format!("planned {STAFF_COUNT} person(s) in "),
    ] {
        assert!(loud.contains(wanted), "stderr lacks `{wanted}`:\n{loud}");
    }
}

/// `plan` on the day the examples were exported (2 withdrawn, 9 expiring).
fn plan_on_examples_day(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let out = env
        .command()
        .env("HOMEBASE_TODAY", "2026-12-04")
        .arg("plan")
        .args(args)
        .write_stdin("")
        .output()
        .expect("run homebase");
    assert!(out.status.success(), "{}", common::describe(&out));
    out
}

fn sha256_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The review of the 1,200 examples: a screen of text, a Markdown comment
/// GitHub accepts, groups that cover every person once with what stands out
/// first, and every format naming the plan `--out` saved by its SHA-256.
#[test]
fn the_examples_review_fits_a_screen_and_a_comment_and_names_the_saved_plan() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write("staff.csv", common::read_example("staff.csv"));
    let text = stdout(&plan_on_examples_day(
        &env,
        &["staff.csv", "--out", "plan.json"],
    ));
    let digest = sha256_of(&env.read("plan.json"));

    assert!(
        text.lines().count() <= 60,
        "{} lines:\n{text}",
        text.lines().count()
    );
    assert!(text.contains(&format!("\nplan {digest} ")), "{text}");
    let groups: Vec<&str> = text
        .lines()
        .skip(1)
        .take_while(|l| {
            l.starts_with("! ") || l.starts_with("  ") || l.starts_with(['+', '-', '~'])
        })
        .filter(|l| l.contains(" × "))
        .collect();
    let first_routine = groups.iter().position(|l| !l.starts_with('!'));
    assert!(
        first_routine.is_some_and(|at| groups[at..].iter().all(|l| !l.starts_with('!'))),
        "exceptions are not all on top:\n{text}"
    );
    assert!(groups[0].contains("2 × withdraw"), "{text}");
    assert!(
        text.contains("P100541") && text.contains("P101200"),
        "{text}"
    );
    // Field staff get full tunnels, administrators admin groups (and full
    // tunnels): both stand out, with the reason per person.
    assert!(
        groups.iter().any(|l| l.starts_with("! ")
            && l.contains("sensitive field:")
            && l.contains("peer on wg0 (full tunnel)")),
        "{text}"
    );
    assert!(text.contains("— full tunnel on wg0\n"), "{text}");
    assert!(
        text.contains("— groups it-admins, vpn-admins; full tunnel on wg0\n"),
        "{text}"
    );

    let md = stdout(&plan_on_examples_day(
        &env,
        &["staff.csv", "--format", "md"],
    ));
    assert!(
        md.chars().count() <= 65_000,
        "Markdown of {} characters",
        md.chars().count()
    );
    assert!(
        md.contains(&format!("`{digest}`")),
        "Markdown lacks the digest"
    );
    assert!(md.contains("<details>"), "routine groups are not folded");
    let saved: serde_json::Value = serde_json::from_slice(&env.read("plan.json")).expect("JSON");
    for id in persons_by_id(&saved).keys() {
        assert!(md.contains(id.as_str()), "Markdown: {id} is not reachable");
    }
    let html = stdout(&plan_on_examples_day(
        &env,
        &["staff.csv", "--format", "html"],
    ));
    assert!(html.contains(&format!("<code id=\"plan-digest\">{digest}</code>")));
    let json = plan_on_examples_day(&env, &["staff.csv", "--format", "json"]).stdout;
    assert_eq!(
        sha256_of(&json),
        digest,
        "--format json is not the saved plan"
    );

    // The JSON groups: every person once, exceptions first.
    let groups = saved["groups"].as_array().expect("groups in the plan");
    let mut seen = BTreeSet::new();
    for group in groups {
        let members = group["persons"].as_array().expect("members");
        assert_eq!(group["count"].as_u64(), Some(members.len() as u64));
        for m in members {
            assert!(
                seen.insert(m["id"].as_str().expect("id").to_string()),
                "{m} twice"
            );
        }
    }
    assert_eq!(seen.len(), STAFF_COUNT);
    let exceptions: Vec<bool> = groups.iter().map(|g| g["exception"] == true).collect();
    assert!(
        exceptions.windows(2).all(|w| w[0] || !w[1]),
        "{exceptions:?}"
    );
    assert_eq!(groups[0]["kind"], "withdraw");
    let expiring: usize = groups
        .iter()
        .filter(|g| g["kind"] == "expiring")
        .map(|g| g["count"].as_u64().unwrap_or(0) as usize)
        .sum();
    assert_eq!(expiring, 9, "the README's nine expiring persons");
}

/// After an apply, HR moves three persons to another department: the next
/// plan shows exactly those three updates, before → after, on top, in
/// every format.
#[test]
fn a_department_change_of_three_is_three_updates_on_top_in_every_format() {
    let env = TestEnv::new();
    env.copy_examples();
    let (header, rows) = example_staff_rows();
    let rows: Vec<String> = rows.into_iter().take(40).collect();
    let write =
        |rows: &[String]| env.write("staff.csv", format!("{header}\n{}\n", rows.join("\n")));
    write(&rows);
    env.run_ok(&["apply", "staff.csv", "--yes", "--no-progress"]);

    // Three office workers (their profile stays) move to the Stadtkasse.
    let mut moved: BTreeMap<String, String> = BTreeMap::new();
    let mut changed = rows.clone();
    for row in changed.iter_mut() {
        let mut fields: Vec<String> = row.split(',').map(str::to_string).collect();
        let department = fields[4].clone();
        let office = ![
            "Ordnungsamt",
            "Bauaufsicht",
            "Umweltamt",
            "IT",
            "Informationstechnik",
            "Stadtkasse",
        ]
        .iter()
        .any(|d| department.starts_with(d));
        if office && moved.len() < 3 {
            moved.insert(fields[0].clone(), department);
            fields[4] = "Stadtkasse".into();
            *row = fields.join(",");
        }
    }
    assert_eq!(moved.len(), 3);
    write(&changed);

    let plan = env.plan_json(&["staff.csv"]);
    let groups = plan["groups"].as_array().expect("groups");
    assert_eq!(groups[0]["kind"], "update", "{:#}", groups[0]);
    let members = groups[0]["persons"].as_array().expect("members");
    let ids: BTreeSet<&str> = members.iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, moved.keys().map(String::as_str).collect());
    for m in members {
        let before = &moved[m["id"].as_str().expect("id")];
        let detail = m["detail"].as_str().expect("detail");
        assert!(
            detail.contains(&format!("department: {before} → Stadtkasse")),
            "{detail}"
        );
    }
    for group in &groups[1..] {
        assert_eq!(
            group["kind"], "unchanged",
            "only the three change: {group:#}"
        );
    }
    let directory = plan["summary"]
        .as_array()
        .expect("summary")
        .iter()
        .find(|s| s["target"] == "directory")
        .expect("directory");
    assert_eq!(directory["update"], 3);

    let text = stdout(&env.run_ok(&["plan", "staff.csv"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("!     3 × update "), "{text}");
    assert_eq!(text.matches(" × update ").count(), 1, "{text}");
    let md = stdout(&env.run_ok(&["plan", "staff.csv", "--format", "md"]));
    let first = md.find("\n### ").expect("a group heading") + 1;
    assert!(md[first..].starts_with("### 3 × update "), "{md}");
    let html = stdout(&env.run_ok(&["plan", "staff.csv", "--format", "html"]));
    let first = html.find("<h3 ").expect("an exception heading");
    assert!(
        html[first..].starts_with("<h3 class=\"update\">3 × update "),
        "{html}"
    );
    for (id, before) in &moved {
        let shown = format!("department: {before} → Stadtkasse");
        // Where a report first names the person, it shows the change.
        for (format, report) in [("text", &text), ("Markdown", &md), ("HTML", &html)] {
            let at = report
                .find(id.as_str())
                .unwrap_or_else(|| panic!("{format}: no {id}"));
            let line_start = report[..at].rfind('\n').map_or(0, |n| n + 1);
            let line = report[line_start..].lines().next().unwrap_or("");
            assert!(
                line.contains(&shown),
                "{format}: {id} lacks {shown:?}: {line}"
            );
        }
    }
}
