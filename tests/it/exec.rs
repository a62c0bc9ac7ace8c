//! `kind: exec`: 1,200 persons through a shell script that records every
//! call; transient failures are retried; a script that crashes half-way
//! leaves a partial run that the next run completes without duplicates.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{exit_code, stderr, stdout, TestEnv, STAFF_COUNT};

/// Records each call it completes as `done/<staff id>.<op>` (the JSON it was
/// given inside). Exits 75 ("try later") on the first call for staff ids
/// ending in 7; with a `crash` file, dies by SIGKILL once 600 calls are done.
const SCRIPT: &str = r#"#!/bin/sh
input=$(cat)
id=$(printf '%s' "$input" | sed -n 's/.*"person_id":"\([^"]*\)".*/\1/p')
op=$(printf '%s' "$input" | sed -n 's/.*"op":"\([a-z]*\)".*/\1/p')
[ -n "$id" ] && [ -n "$op" ] || { echo "no person_id or op in: $input" >&2; exit 2; }
case "$id" in
  *7)
    if [ ! -e "tried/$id" ]; then
      : > "tried/$id"
      echo "mailbox server busy" >&2
      exit 75
    fi ;;
esac
if [ -e crash ] && [ "$(ls done | wc -l)" -ge 600 ]; then
  kill -9 $$
fi
if [ -e "done/$id.$op" ]; then
  echo "duplicate $op for $id" >&2
  exit 1
fi
printf '%s\n' "$input" > "done/$id.$op"
printf '{"remote_id": "mbx-%s"}\n' "$id"
"#;

fn setup(env: &TestEnv) {
    env.copy_examples();
    env.write("provision.sh", SCRIPT);
    std::fs::create_dir_all(env.join("done")).unwrap();
    std::fs::create_dir_all(env.join("tried")).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("homebase.yaml");
    let config = std::fs::read_to_string(shipped).unwrap();
    let local = "  directory:\n    kind: local\n    base_dn: dc=musterstadt,dc=example\n";
    assert!(
        config.contains(local),
        "the shipped config has a local directory"
    );
    let config = config.replace(
        local,
        "  directory:\n    kind: exec\n    command: [sh, provision.sh]\n    secrets: [password]\n    timeout_seconds: 20\n",
    );
    env.write("homebase.yaml", config);
}

/// The calls the script completed: (staff id, op) → the JSON it was given.
fn done(dir: &Path) -> BTreeMap<(String, String), serde_json::Value> {
    std::fs::read_dir(dir.join("done"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            let (id, op) = name.rsplit_once('.').unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let json: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
            ((id.to_string(), op.to_string()), json)
        })
        .collect()
}

#[test]
fn twelve_hundred_persons_through_a_script_retried_and_resumed() {
    let env = TestEnv::new();
    setup(&env);
    env.run_ok(&["check", "examples/staff.csv"]);

    // A script that dies half-way: those actions fail, the rest is journaled.
    env.write("crash", "");
    let out = env.run(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);
    assert_eq!(exit_code(&out), 3, "a partial run\n{}", stderr(&out));
    let first = done(env.path());
    assert!(
        first.len() >= 600 && first.len() < STAFF_COUNT,
        "{} calls done before the crash",
        first.len()
    );

    // The next run sends only what is not done, each once.
    std::fs::remove_file(env.join("crash")).unwrap();
    let out = env.run_ok(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);
    let calls = done(env.path());
    assert_eq!(calls.len(), STAFF_COUNT, "one create per person");
    assert!(calls.keys().all(|(_, op)| op == "create"));
    for ((id, _), json) in &first {
        assert_eq!(&calls[&(id.clone(), "create".to_string())], json);
    }

    // Transient failures were retried: every id ending in 7 failed once and got through.
    let tried = std::fs::read_dir(env.join("tried")).unwrap().count();
    assert_eq!(tried, STAFF_COUNT / 10);
    assert!(calls.keys().any(|(id, _)| id.ends_with('7')));

    // The action as the script saw it: the person, the account, and the
    // password only because the configuration asks for it.
    let (_, sample) = calls.iter().next().unwrap();
    assert_eq!(sample["target"], "directory");
    assert_eq!(sample["resource"], "account");
    assert!(sample["account"]["username"].is_string());
    assert!(sample["person"]["family_name"].is_string());
    let password = sample["secrets"]["password"].as_str().unwrap();
    assert!(password.len() >= 12);
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(password), "a password in the output");
    }

    // Nothing left to do.
    let out = env.run(&["plan", "examples/staff.csv", "--detailed-exitcode"]);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
}

#[test]
fn check_refuses_an_empty_command_with_its_line() {
    let env = TestEnv::new();
    setup(&env);
    let config = std::fs::read_to_string(env.join("homebase.yaml")).unwrap();
    env.write(
        "homebase.yaml",
        config.replace("command: [sh, provision.sh]", "command: []"),
    );
    let out = env.run_expect(&["check", "examples/staff.csv"], 2);
    let err = stderr(&out);
    assert!(
        err.contains("key \"targets.directory.command\": no command"),
        "{err}"
    );
    assert!(err.contains("homebase.yaml:"), "{err}");
}

/// `-vv` says what each target was asked and what it answered, with the
/// time: one line per command run, the retried one with its error — and
/// never the password the command was given.
#[test]
fn doubly_verbose_names_every_request_and_answer_but_no_secret() {
    let (header, rows) = common::example_staff_rows();
    let id_of = |row: &String| row.split(',').next().unwrap().to_string();
    // Two persons, and one whose staff id ends in 7 (the script's "busy" first answer).
    let mut picked: Vec<&String> = rows
        .iter()
        .filter(|r| !id_of(r).ends_with('7'))
        .take(2)
        .collect();
    let busy = rows
        .iter()
        .find(|r| id_of(r).ends_with('7'))
        .expect("a staff id ending in 7");
    picked.push(busy);
    let ids: Vec<String> = picked.iter().map(|r| id_of(r)).collect();
    let staff = format!(
        "{header}\n{}\n",
        picked
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );

    let quiet = TestEnv::new();
    setup(&quiet);
    quiet.write("few.csv", &staff);
    let plain = stderr(&quiet.run_ok(&["apply", "few.csv", "--yes", "-v"]));
    assert!(!plain.contains(" → "), "-v alone traces requests:\n{plain}");

    let env = TestEnv::new();
    setup(&env);
    env.write("few.csv", &staff);
    let loud = stderr(&env.run_ok(&["apply", "few.csv", "--yes", "-vv"]));
    for id in &ids {
        let line = format!(
            "target \"directory\": sh (create account of {id}) → ok, remote id mbx-{id} in "
        );
        assert!(loud.contains(&line), "no line `{line}`:\n{loud}");
    }
    let refused = format!(
        "target \"directory\": sh (create account of {}) → mailbox server busy in ",
        id_of(busy)
    );
    assert!(
        loud.contains(&refused),
        "the retried try is not traced:\n{loud}"
    );
    let traced = loud
        .lines()
        .filter(|l| l.starts_with("target \"directory\": sh ("))
        .count();
    assert_eq!(traced, ids.len() + 1, "one line per command run:\n{loud}");
    for json in done(env.path()).values() {
        let password = json["secrets"]["password"]
            .as_str()
            .expect("the password was given");
        assert!(!loud.contains(password), "a password reached stderr");
    }
}

/// `list_command`: the accounts the system already holds. New persons do
/// not get a username it has, `adopt` takes over the account carrying a
/// person's staff id (no second one is made), and a line the command
/// prints that cannot be read stops the plan with its number.
#[test]
fn a_list_command_feeds_the_plan_and_adopt() {
    let env = TestEnv::new();
    setup(&env);
    let config = env.read_string("homebase.yaml").replace(
        "    command: [sh, provision.sh]\n",
        "    command: [sh, provision.sh]\n    list_command: [sh, list.sh]\n",
    );
    env.write("homebase.yaml", config);
    env.write("list.sh", "cat listed.jsonl\n");
    env.write("listed.jsonl", "");
    let (header, rows) = common::example_staff_rows();
    env.write("few.csv", format!("{header}\n{}\n", rows[..3].join("\n")));
    env.run_ok(&["check", "few.csv"]);

    let plan = env.plan_json(&["few.csv"]);
    let persons = plan["persons"].as_array().expect("persons");
    let id = |i: usize| persons[i]["id"].as_str().unwrap().to_string();
    let username = |i: usize| persons[i]["username"].as_str().unwrap().to_string();
    let (first, second) = ((id(0), username(0)), (id(1), username(1)));

    // The system has the first person's account (under another name) and,
    // unrelated to anyone, an account with the second person's username.
    env.write(
        "listed.jsonl",
        format!(
            "{{\"username\": \"old.{}\", \"staff_id\": \"{}\", \"remote_id\": \"mbx-legacy\"}}\n{{\"username\": \"{}\"}}\n",
            first.1, first.0, second.1
        ),
    );
    // Unadopted, the first person's account would be a second one: refused.
    let refused = env.run(&["apply", "few.csv", "--yes"]);
    assert_eq!(exit_code(&refused), 2, "{}", common::describe(&refused));
    assert!(
        stderr(&refused).contains(&format!("already has the account \"old.{}\"", first.1)),
        "{}",
        stderr(&refused)
    );
    assert!(done(env.path()).is_empty(), "the refused run wrote");

    let adopted = env.run_ok(&["adopt", "few.csv", "--target", "directory", "--yes"]);
    let report = stdout(&adopted);
    assert!(
        report.contains(&format!("+ {} old.{} by staff id", first.0, first.1)),
        "{report}"
    );
    let plan = env.plan_json(&["few.csv"]);
    let second_plan = plan["persons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == second.0.as_str())
        .expect("the second person");
    assert_ne!(
        second_plan["username"].as_str(),
        Some(second.1.as_str()),
        "a username the system holds was planned again"
    );
    env.run_ok(&["apply", "few.csv", "--yes"]);
    let calls = done(env.path());
    assert!(
        !calls.contains_key(&(first.0.clone(), "create".to_string())),
        "a second account was made for the adopted person"
    );
    assert!(calls.contains_key(&(second.0.clone(), "create".to_string())));
    assert_eq!(
        exit_code(&env.run(&["plan", "few.csv", "--detailed-exitcode"])),
        0
    );

    // A line the command prints that is not an account stops the plan.
    env.write("listed.jsonl", "{\"username\": \"a\"}\nuid=printer\n");
    let broken = env.run(&["plan", "few.csv"]);
    assert_ne!(exit_code(&broken), 0);
    let message = stderr(&broken);
    assert!(
        message.contains("target \"directory\"") && message.contains("line 2: "),
        "{message}"
    );
}
