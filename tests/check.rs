//! Core I: staff files as HR tools and German Excel write them are read
//! correctly, and every broken file is refused with the line, before anything
//! is written.

mod common;

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
        "homebase.yaml:4: column \"targets.directory.url\": ",
        "homebase.yaml:5: column \"targets.directory.token_env\": both token_env and token_file are set",
        "homebase.yaml:7: column \"targets.directory.timeout_seconds\": a timeout of 0 seconds",
        "homebase.yaml:8: column \"targets.directory.page_size\": page_size is 0",
        "homebase.yaml:9: column \"targets.assets.token_env\": no API token configured",
    ] {
        assert!(err.contains(wanted), "stderr lacks `{wanted}`:\n{err}");
    }
    env.assert_untouched("refused check");
}
