//! Core I: staff files as HR tools and German Excel write them are read
//! correctly, and every broken file is refused with the line, before anything
//! is written.

use crate::common;

use common::{describe, exit_code, persons_by_id, stderr, TestEnv};

const GERMAN_HEADER: &[u8] = b"Personalnummer;Vorname;Nachname;Abteilung;E-Mail;Homeoffice bis";

/// A staff list as German Excel saves "CSV (Trennzeichen-getrennt)":
/// `;`, Windows-1252, CRLF, German headers and dates.
fn german_export(rows: &[&[u8]]) -> Vec<u8> {
    let mut out = GERMAN_HEADER.to_vec();
    out.extend_from_slice(b"\r\n");
    for row in rows {
        out.extend_from_slice(row);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Three good rows (lines 2–4) in Windows-1252: ü = FC, ß = DF, ö = F6,
/// ä = E4, Ö = D6, – = 96 (a character Latin-1 does not have).
const JUERGEN: &[u8] =
    b"4711;J\xfcrgen;M\xfcller;Stra\xdfenbauamt;juergen.mueller@musterstadt.example;31.12.2026";
const DOERTE: &[u8] = b"4712;D\xf6rte;Wei\xdf;\"Amt f\xfcr Stra\xdfen; Br\xfccken \x96 Pl\xe4tze\";doerte.weiss@musterstadt.example;";
const ANNA: &[u8] = b"4713;\"Anna \"\"Anni\"\"\";\xd6zdemir;K\xe4mmerei;anna.oezdemir@musterstadt.example;30.06.2099";

#[test]
fn german_excel_export_is_read() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write("staff.csv", german_export(&[JUERGEN, DOERTE, ANNA]));

    env.run_ok(&["check", "staff.csv"]);
    let plan = env.plan_json(&["staff.csv"]);
    let persons = persons_by_id(&plan);
    assert_eq!(persons.len(), 3, "{plan:#}");

    let juergen = &persons["4711"];
    let name = juergen["display_name"].as_str().expect("display_name");
    assert!(
        name.contains("Jürgen") && name.contains("Müller"),
        "display_name {name:?}"
    );
    assert_eq!(juergen["department"], "Straßenbauamt");
    assert_eq!(juergen["username"], "jmueller", "ü → ue");

    let doerte = &persons["4712"];
    assert!(doerte["display_name"]
        .as_str()
        .expect("display_name")
        .contains("Dörte Weiß"));
    assert_eq!(
        doerte["department"], "Amt für Straßen; Brücken – Plätze",
        "quoted ; and Windows-1252 0x96"
    );
    assert_eq!(doerte["username"], "dweiss", "ß → ss");

    let anna = &persons["4713"];
    let name = anna["display_name"].as_str().expect("display_name");
    assert!(
        name.contains("Anna \"Anni\"") && name.contains("Özdemir"),
        "display_name {name:?}"
    );
    assert_eq!(anna["username"], "aoezdemir", "Ö → oe");
    assert_eq!(
        anna["expires"], "2099-06-30",
        "Homeoffice bis 30.06.2099 is the account's end"
    );

    env.assert_untouched("check and plan of valid input");
}

#[test]
fn utf8_with_bom_tabs_and_quoted_newlines_is_read() {
    let env = TestEnv::new();
    env.copy_examples();
    let mut tsv = "\u{feff}Personalnummer\tVorname\tNachname\tAbteilung\n".to_string();
    tsv.push_str("1\tJürgen\tMüller\t\"Amt\nfür Straßen\"\n");
    tsv.push_str("2\tŁukasz\tNguyễn\tKämmerei\n");
    env.write("staff.tsv", tsv);
    env.run_ok(&["check", "staff.tsv"]);
    let persons = persons_by_id(&env.plan_json(&["staff.tsv"]));
    assert_eq!(persons.len(), 2);
    assert!(
        persons["1"]["display_name"]
            .as_str()
            .expect("name")
            .contains("Müller"),
        "the BOM is not part of the first header"
    );
    assert_eq!(persons["1"]["department"], "Amt\nfür Straßen");
    let username = persons["2"]["username"].as_str().expect("username");
    assert!(
        username.bytes().all(|b| b.is_ascii_lowercase()),
        "transliterated: {username}"
    );
    env.assert_untouched("check and plan of valid input");
}

/// A broken staff file, and where the refusal must point.
struct Broken {
    name: &'static str,
    content: Vec<u8>,
    /// `staff.csv:LINE`
    line: Option<usize>,
    /// `column "NAME"` right after the line.
    column: Option<&'static str>,
    /// Something else the message must mention (case-insensitive).
    mentions: Option<&'static str>,
}

fn broken_files() -> Vec<Broken> {
    let english = |rows: &str| {
        format!("id,given_name,family_name,email,department,profile\n{rows}").into_bytes()
    };
    vec![
        Broken {
            name: "duplicate id",
            content: german_export(&[JUERGEN, DOERTE, b"4711;Anna;Schmidt;K\xe4mmerei;anna.schmidt@musterstadt.example;"]),
            line: Some(4),
            column: Some("Personalnummer"),
            mentions: Some("4711"),
        },
        Broken {
            name: "duplicate email",
            content: german_export(&[JUERGEN, DOERTE, b"4713;J\xfcrgen;M\xfcller;K\xe4mmerei;juergen.mueller@musterstadt.example;"]),
            line: Some(4),
            column: Some("E-Mail"),
            mentions: None,
        },
        Broken {
            name: "empty id",
            content: german_export(&[JUERGEN, b";Anna;Schmidt;K\xe4mmerei;anna.schmidt@musterstadt.example;", ANNA]),
            line: Some(3),
            column: Some("Personalnummer"),
            mentions: None,
        },
        Broken {
            name: "empty Nachname",
            content: german_export(&[JUERGEN, DOERTE, b"4713;Anna;;K\xe4mmerei;anna.schmidt@musterstadt.example;"]),
            line: Some(4),
            column: Some("Nachname"),
            mentions: None,
        },
        Broken {
            name: "impossible date",
            content: german_export(&[b"4711;J\xfcrgen;M\xfcller;Stra\xdfenbauamt;juergen.mueller@musterstadt.example;31.02.2026", DOERTE]),
            line: Some(2),
            column: Some("Homeoffice bis"),
            mentions: Some("31.02.2026"),
        },
        Broken {
            name: "malformed email",
            content: german_export(&[JUERGEN, b"4712;D\xf6rte;Wei\xdf;K\xe4mmerei;doerte.weiss(at)musterstadt.example;"]),
            line: Some(3),
            column: Some("E-Mail"),
            mentions: None,
        },
        Broken {
            name: "short row",
            content: german_export(&[JUERGEN, b"4712;D\xf6rte;Wei\xdf;K\xe4mmerei", ANNA]),
            line: Some(3),
            column: None,
            mentions: None,
        },
        Broken {
            name: "long row",
            content: german_export(&[JUERGEN, DOERTE, b"4713;Anna;Schmidt;K\xe4mmerei;anna.schmidt@musterstadt.example;;extra"]),
            line: Some(4),
            column: None,
            mentions: None,
        },
        Broken {
            name: "unterminated quote",
            content: german_export(&[JUERGEN, b"4712;D\xf6rte;Wei\xdf;\"Amt f\xfcr Stra\xdfen;doerte.weiss@musterstadt.example;", ANNA]),
            line: Some(3),
            column: None,
            mentions: None,
        },
        Broken {
            name: "empty file",
            content: Vec::new(),
            line: None,
            column: None,
            mentions: Some("empty"),
        },
        Broken {
            name: "binary file",
            content: b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\x01\0\x08\x06\0\0\0\x5c\x72\xa8\x66\0\0\0\0IEND".to_vec(),
            line: None,
            column: None,
            mentions: None,
        },
        Broken {
            name: "missing required column",
            content: b"Vorname;Nachname;Abteilung\r\nJ\xfcrgen;M\xfcller;Stra\xdfenbauamt\r\n".to_vec(),
            line: Some(1),
            column: None,
            mentions: Some("Personalnummer"),
        },
        Broken {
            name: "unknown profile",
            content: english("1,Anna,Schmidt,anna@example.org,Kämmerei,office\n2,Paul,Weber,paul@example.org,Kämmerei,nosuch\n"),
            line: Some(3),
            column: Some("profile"),
            mentions: Some("nosuch"),
        },
        Broken {
            // The record before spans lines 2–3; the broken one starts on line 4.
            name: "empty family_name after a quoted newline",
            content: english("1,Anna,Schmidt,anna@example.org,\"Amt\nfür Straßen\",\n2,Paul,,paul@example.org,Kämmerei,\n"),
            line: Some(4),
            column: Some("family_name"),
            mentions: None,
        },
    ]
}

#[test]
fn broken_files_are_refused_with_the_line_and_nothing_is_written() {
    let mut failures = Vec::new();
    for case in broken_files() {
        let env = TestEnv::new();
        env.copy_examples();
        env.write("staff.csv", &case.content);
        for command in [
            &["check", "staff.csv"][..],
            &["plan", "staff.csv"],
            &["apply", "staff.csv", "--yes"],
        ] {
            let out = env.run(command);
            let err = stderr(&out);
            let what = format!("{} — `homebase {}`", case.name, command.join(" "));
            if exit_code(&out) != 2 {
                failures.push(format!("{what}: expected exit 2\n{}", describe(&out)));
                continue;
            }
            let mut place = "staff.csv".to_string();
            if let Some(line) = case.line {
                place.push_str(&format!(":{line}:"));
            }
            if let Some(column) = case.column {
                place.push_str(&format!(" column \"{column}\":"));
            }
            if !err.contains(&place) {
                failures.push(format!("{what}: stderr does not contain `{place}`\n{err}"));
            }
            if let Some(word) = case.mentions {
                if !err.to_lowercase().contains(&word.to_lowercase()) {
                    failures.push(format!("{what}: stderr does not mention `{word}`\n{err}"));
                }
            }
            for dir in [".homebase", "out"] {
                if env.exists(dir) {
                    failures.push(format!(
                        "{what}: {dir}/ was created: {:?}",
                        env.files_under(dir)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_problem_of_every_file_is_reported_at_once() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "a.csv",
        german_export(&[
            b"4711;J\xfcrgen;;Stra\xdfenbauamt;juergen.mueller@musterstadt.example;",
            DOERTE,
            b"4713;Anna;Schmidt;K\xe4mmerei;anna.schmidt(at)musterstadt.example;",
            b"4714;Paul;Weber;K\xe4mmerei;paul.weber@musterstadt.example;31.02.2026",
        ]),
    );
    env.write(
        "b.csv",
        "id,given_name,family_name,email\n4712,Dörte,Weiß,other@musterstadt.example\n",
    );
    let out = env.run_expect(&["check", "a.csv", "b.csv"], 2);
    let err = stderr(&out);
    for place in [
        "a.csv:2: column \"Nachname\":",
        "a.csv:4: column \"E-Mail\":",
        "a.csv:5: column \"Homeoffice bis\":",
        // 4712 is in both files: the later one is the duplicate.
        "b.csv:2: column \"id\":",
    ] {
        assert!(
            err.contains(place),
            "stderr does not contain `{place}`:\n{err}"
        );
    }
    env.assert_untouched("refused check");
}

#[test]
fn check_and_plan_of_the_examples_write_nothing() {
    let env = TestEnv::new();
    env.copy_examples();
    env.run_ok(&["check", "examples/staff.csv"]);
    env.run_ok(&["plan", "examples/staff.csv"]);
    env.run_ok(&["plan", "examples/staff.csv", "--format", "json"]);
    env.run_ok(&["apply", "examples/staff.csv", "--dry-run"]);
    env.assert_untouched("check, plan and apply --dry-run");
}

/// Every invalid setting of every kind is reported offline, with the line of
/// `homebase.yaml` it is on, and nothing is written.
#[test]
fn check_reports_every_invalid_target_setting_with_its_line() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "homebase.yaml",
        "targets:\n\
         \x20 directory:\n\
         \x20   kind: scim\n\
         \x20   url: http://idp.example.org/scim/v2\n\
         \x20   token_env: SCIM_TOKEN\n\
         \x20   token_file: scim.token\n\
         \x20   timeout_seconds: 0\n\
         \x20   page_size: 0\n\
         \x20 assets:\n\
         \x20   kind: snipeit\n\
         \x20   url: https://assets.example.org\n\
         \x20   kinds: {notebook: {category: Notebooks}}\n\
         \x20 wg0:\n\
         \x20   kind: wireguard-file\n\
         \x20   endpoint: vpn.example.org:51820\n\
         \x20   address: 10.20.0.1/16\n",
    );
    let out = env.run_expect(&["check", "examples/staff.csv"], 2);
    let err = stderr(&out);
    for wanted in [
        "homebase.yaml:4: key \"targets.directory.url\": ",
        "homebase.yaml:5: key \"targets.directory.token_env\": both token_env and token_file are set",
        "homebase.yaml:7: key \"targets.directory.timeout_seconds\": a timeout of 0 seconds",
        "homebase.yaml:8: key \"targets.directory.page_size\": page_size is 0",
        "homebase.yaml:9: key \"targets.assets.token_env\": no API token configured",
    ] {
        assert!(err.contains(wanted), "stderr lacks `{wanted}`:\n{err}");
    }
    env.assert_untouched("refused check");
}

/// A wrong key inside a target of the shipped configuration is named with
/// its own line and full path (not the `targets:` line), typos of a required
/// key say what was written, and every broken target is reported at once.
#[test]
fn a_wrong_key_inside_a_target_is_named_at_its_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = TestEnv::new();
    env.copy_examples();
    let shipped = std::fs::read_to_string(root.join("homebase.yaml")).expect("homebase.yaml");
    let line_of = |text: &str, needle: &str| {
        1 + text
            .lines()
            .position(|l| l.trim_start().starts_with(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in the shipped homebase.yaml"))
    };
    let config = shipped
        .replacen(
            "    endpoint:",
            "    adress_pool: 10.20.0.0/16\n    endpiont:",
            1,
        )
        .replacen("    stock:", "    stok:", 1);
    env.write("homebase.yaml", &config);
    let out = env.run_expect(&["check", "examples/staff.csv"], 2);
    let err = stderr(&out);
    let pool = line_of(&config, "adress_pool:");
    let endpoint = line_of(&config, "endpiont:");
    let stock = line_of(&config, "stok:");
    for wanted in [
        format!("homebase.yaml:{pool}: key \"targets.wg0.adress_pool\": unknown key (expected one of "),
        format!("homebase.yaml:{endpoint}: key \"targets.wg0.endpiont\": unknown key; did you mean `endpoint`?"),
        format!("homebase.yaml:{stock}: key \"targets.stock.stok\": unknown key; did you mean `stock`?"),
    ] {
        assert!(err.contains(&wanted), "stderr lacks `{wanted}`:\n{err}");
    }
    assert!(
        err.contains("3 problem(s)"),
        "one problem per wrong key: {err}"
    );
    // A required key that is simply absent is named at its target.
    let wg0 = line_of(&config, "wg0:");
    env.write(
        "homebase.yaml",
        config
            .replace("    adress_pool: 10.20.0.0/16\n", "")
            .replace("    endpiont:", "    # endpoint:"),
    );
    let out = env.run_expect(&["check", "examples/staff.csv"], 2);
    let err = stderr(&out);
    let wanted = format!("homebase.yaml:{wg0}: key \"targets.wg0\": missing key `endpoint`");
    assert!(err.contains(&wanted), "stderr lacks `{wanted}`:\n{err}");
    env.assert_untouched("refused check");
}

/// A misspelt optional column would silently drop its field for everyone
/// (`departmnt`: every person falls to the default profile; `emial`: every
/// address made up). It is refused with the name it was meant to be, unless
/// the admin keeps it on purpose; truly extra columns are named once as kept.
#[test]
fn a_misspelt_column_is_refused_and_an_extra_one_is_named() {
    let env = TestEnv::new();
    env.copy_examples();
    let staff = env.read_string("examples/staff.csv");
    let (header, rows) = staff.split_once('\n').expect("a header");
    for (typo, meant) in [("departmnt", "department"), ("emial", "email")] {
        let field = header.split(',').find(|h| *h == meant).expect(meant);
        let renamed = header.replace(field, typo);
        env.write("typo.csv", format!("{renamed}\n{rows}"));
        for command in ["check", "plan"] {
            let out = env.run_expect(&[command, "typo.csv"], 2);
            let err = stderr(&out);
            assert!(
                err.contains(&format!(
                    "typo.csv:1: column \"{typo}\": not a known column; did you mean \"{meant}\"?"
                )),
                "{command}: {err}"
            );
        }
        let out = env.run_ok(&["check", "typo.csv", "--allow-extra-columns"]);
        assert!(
            stderr(&out).contains(&format!(
                "kept for templates, not used by homebase: \"{typo}\""
            )),
            "{}",
            describe(&out)
        );
    }
    env.assert_untouched("refused columns");

    let with_notes: String = staff
        .lines()
        .enumerate()
        .map(|(i, line)| format!("{line},{}\n", if i == 0 { "Notizen" } else { "-" }))
        .collect();
    env.write("notes.csv", with_notes);
    let out = env.run_ok(&["check", "notes.csv"]);
    assert!(
        stderr(&out).contains("kept for templates, not used by homebase: \"Notizen\""),
        "{}",
        describe(&out)
    );
    let plan = env.plan_json(&["notes.csv"]);
    let persons = persons_by_id(&plan);
    assert_eq!(persons["P100001"]["profile"], "office");
}

/// A staff file alone in an empty folder: the embedded defaults name a stock
/// list that is not there. `check` refuses it as `plan` does, naming the
/// setting; a broken stock list is refused by both with its line.
#[test]
fn check_and_plan_agree_about_the_stock_list() {
    let env = TestEnv::new();
    env.write("staff.csv", common::example_staff_csv());
    for command in ["check", "plan"] {
        let out = env.run_expect(&[command, "staff.csv"], 2);
        let err = stderr(&out);
        assert!(
            err.contains(
                "key \"targets.stock.stock\": cannot read the stock list examples/inventory.csv"
            ),
            "{command}: {err}"
        );
        assert!(err.contains("homebase init"), "{command}: {err}");
    }
    let inventory = String::from_utf8(common::read_example("inventory.csv")).expect("utf-8");
    let first_tag = inventory
        .lines()
        .nth(1)
        .expect("a device")
        .split(',')
        .next()
        .unwrap();
    let twice = format!("{inventory}{first_tag},SN-DUPLICATE,notebook,ThinkPad,available\n");
    env.write("examples/inventory.csv", &twice);
    let line = twice.lines().count();
    for command in ["check", "plan"] {
        let out = env.run_expect(&[command, "staff.csv"], 2);
        let err = stderr(&out);
        let wanted = format!("examples/inventory.csv:{line}: column \"asset_tag\": asset tag {first_tag} appears twice");
        assert!(
            err.contains(&wanted),
            "{command}: stderr lacks `{wanted}`:\n{err}"
        );
    }
    env.assert_untouched("refused check and plan");
}

/// Persons whose end date has passed are left out of a run: `check`, the
/// plan's text and Markdown and `apply`'s terminal output say who and why.
#[test]
fn persons_left_out_are_named_by_check_plan_and_apply() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "staff.csv",
        "id,given_name,family_name,end\nE1,Anna,Bald,2031-03-05\nE2,Paul,Vorbei,2031-02-27\nE3,Lena,Lange,\n",
    );
    // (Markdown escapes the brackets of "person(s)".)
    let said =
        "in the staff list are not provisioned, their end date has passed: E2 ended 2031-02-27";
    let pinned = |args: &[&str]| {
        let out = env
            .command()
            .env("HOMEBASE_TODAY", "2031-03-01")
            .args(args)
            .output()
            .expect("run homebase");
        assert_eq!(exit_code(&out), 0, "{}", describe(&out));
        out
    };
    let out = pinned(&["check", "staff.csv"]);
    assert!(stderr(&out).contains(said), "check: {}", describe(&out));
    for format in ["text", "md"] {
        let out = pinned(&["plan", "staff.csv", "--format", format]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(said),
            "plan --format {format}: {}",
            describe(&out)
        );
    }
    let out = pinned(&[
        "apply",
        "staff.csv",
        "--yes",
        "--no-progress",
        "--report",
        "r.html",
    ]);
    assert!(stderr(&out).contains(said), "apply: {}", describe(&out));
    // The report goes to its file, not also to the terminal.
    assert!(out.stdout.is_empty(), "apply --report printed the plan");
    assert!(env.read_string("r.html").contains("E2"));
    assert!(!env.exists("out/pvorbei"), "{:?}", env.bundle_dirs());
    assert_eq!(env.bundle_dirs().len(), 2, "{:?}", env.bundle_dirs());
}

/// Shell completions load into bash and complete the subcommands; every
/// other shell gets a script; the manual page names every command; `--help`
/// explains the exit codes.
#[test]
fn completions_man_page_and_exit_codes_in_help() {
    let env = TestEnv::new();
    let bin = assert_cmd::cargo::cargo_bin("homebase");
    let script = format!(
        "source <('{}' completions bash) && COMP_WORDS=(homebase pl) COMP_CWORD=1 && _homebase homebase pl homebase && echo \"${{COMPREPLY[@]}}\"",
        bin.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run bash");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "plan");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = env.run_ok(&["completions", shell]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("offboard"),
            "{shell}"
        );
    }
    env.run_expect(&["completions", "tcsh"], 2);

    let out = env.run_ok(&["man"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH homebase 1"),
        "{page}"
    );
    for command in [
        "check",
        "plan",
        "apply",
        "status",
        "offboard",
        "adopt",
        "completions",
    ] {
        assert!(
            page.contains(&format!("homebase\\-{command}")),
            "{command} missing"
        );
    }

    let out = env.run_ok(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "0  success",
        "2  bad input",
        "3  partial",
        "4  plan --detailed-exitcode",
    ] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

/// The profiles and templates beside the configuration are the ones used,
/// named in it or not (the repository root names neither); a typo there is
/// reported once, without a second, misleading error about the default.
#[test]
fn profiles_beside_the_configuration_are_used_and_a_typo_is_one_error() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = TestEnv::new();
    env.copy_examples();
    let config = std::fs::read_to_string(root.join("homebase.yaml")).expect("homebase.yaml");
    assert!(
        !config.contains("\nprofiles:"),
        "the shipped file names no profiles folder"
    );
    env.write("homebase.yaml", &config);
    for name in ["base", "office", "field", "admin"] {
        let text = std::fs::read_to_string(root.join(format!("profiles/{name}.yaml")))
            .expect("a shipped profile");
        env.write(format!("profiles/{name}.yaml"), text);
    }
    let office = env.read_string("profiles/office.yaml");
    assert!(office.contains("extends: base"), "{office}");
    env.write(
        "profiles/office.yaml",
        office.replace("extends: base", "extends: bse"),
    );
    let out = env.run_expect(&["check", "examples/staff.csv"], 2);
    let err = stderr(&out);
    assert!(
        err.contains("profiles/office.yaml:")
            && err.contains("key \"extends\": unknown profile `bse`; did you mean `base`?"),
        "{err}"
    );
    assert!(err.contains("1 problem(s)"), "one problem, not two: {err}");

    // An edit that is valid shows in the plan: the folder is really used.
    let with_group = office.replace(
        "extends: base",
        "extends: base\naccount:\n  groups: [edited-on-disk]",
    );
    env.write("profiles/office.yaml", with_group);
    let plan = env.plan_json(&["examples/staff.csv"]);
    let text = plan.to_string();
    assert!(
        text.contains("edited-on-disk"),
        "the edited profile was not used"
    );
}
