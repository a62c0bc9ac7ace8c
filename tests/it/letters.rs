//! Bundles that leave the machine: encrypted to age recipients (opened with
//! Debian's `age`), and the printed letters as one PDF (read back with
//! poppler's tools, the QR code decoded from the rendered page).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{exit_code, stderr, tools_available, SecretScanner, TestEnv, STAFF_COUNT};

/// The shipped configuration, with the WireGuard server file outside `out/`
/// (it is the gateway's own config and holds the preshared keys it needs)
/// and `extra` appended at the top level.
fn config(helpdesk: &str, extra: &str) -> String {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("homebase.yaml"))
            .expect("the shipped homebase.yaml");
    let text = shipped
        .replace(
            "    address: 10.20.0.1/16\n",
            "    address: 10.20.0.1/16\n    path: ../gateway/wg0.conf\n",
        )
        .replace(
            "helpdesk: \"IT-Service, Tel. 0800 123 456 (Mo–Fr 7–19 Uhr)\"",
            &format!("helpdesk: \"{helpdesk}\""),
        );
    assert!(
        text.contains("../gateway/wg0.conf"),
        "the shipped wg0 target moved"
    );
    format!("{text}\n{extra}")
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file below `root`, by path relative to it.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    common::file_contents(root)
}

/// Decrypt `archive` with `identity` (Debian's age) and unpack it into `into`.
fn open(archive: &Path, identity: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let tar = into.join("archive.tar");
    run(
        "age",
        &[
            "-d",
            "-i",
            identity.to_str().unwrap(),
            "-o",
            tar.to_str().unwrap(),
            archive.to_str().unwrap(),
        ],
    );
    run(
        "tar",
        &["-xf", tar.to_str().unwrap(), "-C", into.to_str().unwrap()],
    );
    std::fs::remove_file(tar).unwrap();
}

#[test]
fn encrypted_bundles_open_with_age_hold_the_same_secrets_and_leave_no_plaintext() {
    if !tools_available(
        "encrypted bundles",
        "HOMEBASE_REQUIRE_AGE",
        false,
        &[
            ("age", "--version"),
            ("age-keygen", "--version"),
            ("tar", "--version"),
        ],
    ) || !Path::new("/usr/bin/ssh-keygen").exists()
    {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    let keys = tempfile::tempdir().unwrap();
    let age_key = keys.path().join("age.txt");
    run("age-keygen", &["-o", age_key.to_str().unwrap()]);
    let age_public =
        String::from_utf8(run("age-keygen", &["-y", age_key.to_str().unwrap()]).stdout)
            .unwrap()
            .trim()
            .to_string();
    let ssh_key = keys.path().join("id_ed25519");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "helpdesk",
            "-f",
            ssh_key.to_str().unwrap(),
        ],
    );
    let ssh_public = keys.path().join("id_ed25519.pub");
    env.write(
        "homebase.yaml",
        config(
            "IT-Service",
            &format!("bundles:\n  encrypt_to:\n    - {age_public}\n"),
        ),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = env
        .command()
        .env("TMPDIR", tmp.path())
        .args([
            "apply",
            "examples/staff.csv",
            "--yes",
            "--no-progress",
            "--recipients-file",
            ssh_public.to_str().unwrap(),
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));

    // out/ holds one sealed archive a person and one of the run: no folder
    // but server/ (the directory's LDIF and the stock list; scanned below).
    let written: Vec<String> = std::fs::read_dir(env.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "server")
        .collect();
    assert!(
        written.iter().all(|n| n.ends_with(".tar.age")),
        "out/ holds more than archives: {:?}",
        written
            .iter()
            .filter(|n| !n.ends_with(".tar.age"))
            .collect::<Vec<_>>()
    );
    let run_archive = written
        .iter()
        .find(|n| n.starts_with("bundles-run-"))
        .expect("the run's archive");
    assert_eq!(written.len(), STAFF_COUNT + 1);

    // The helpdesk's archive opens with the SSH key; every person's with the age key.
    let scratch = tempfile::tempdir().unwrap();
    let all = scratch.path().join("all");
    open(&env.join("out").join(run_archive), &ssh_key, &all);
    let usernames: Vec<String> = std::fs::read_dir(&all)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(usernames.len(), STAFF_COUNT, "bundles in the run's archive");
    for username in usernames.iter().step_by(150) {
        let one = scratch.path().join(format!("one-{username}"));
        open(&env.join(format!("out/{username}.tar.age")), &age_key, &one);
        let (mine, run) = (files(&one.join(username)), files(&all.join(username)));
        assert!(mine.len() >= 5, "{username}: {} files", mine.len());
        assert!(
            mine == run,
            "{username}: the person's archive and the run's differ"
        );
        std::fs::remove_dir_all(one).unwrap();
    }

    // No issued password or key in plaintext under out/ or the temp folder.
    let mut secrets = Vec::new();
    let mut preshared = Vec::new();
    for username in &usernames {
        let text = std::fs::read_to_string(all.join(username).join(".secrets")).unwrap();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (key, value) = line.split_once('=').expect("key=value");
            if key != "openvpn_cert" {
                secrets.push(value.to_string());
            }
            if key == "wireguard_preshared_key" {
                preshared.push(value.to_string());
            }
        }
    }
    assert!(secrets.len() >= 2 * STAFF_COUNT, "passwords and keys");
    let scanner = SecretScanner::new(secrets);
    for root in [env.join("out"), tmp.path().to_path_buf()] {
        for (path, bytes) in files(&root) {
            scanner.assert_absent(&path.display().to_string(), &bytes);
        }
    }
    // The gateway still gets the preshared keys issued this run.
    let gateway = env.read_string("gateway/wg0.conf");
    assert!(!preshared.is_empty());
    for psk in &preshared {
        assert!(
            gateway.contains(psk.as_str()),
            "a preshared key is missing in wg0.conf"
        );
    }

    // The same keys, unencrypted: the opened bundles are what the state
    // records (nothing to do), and an unencrypted run that rewrites every
    // bundle (every department renamed) writes byte-identical secrets and
    // client configs.
    for username in &usernames {
        std::fs::rename(all.join(username), env.join(format!("out/{username}"))).unwrap();
        std::fs::remove_file(env.join(format!("out/{username}.tar.age"))).unwrap();
    }
    std::fs::remove_file(env.join("out").join(run_archive)).unwrap();
    env.write("homebase.yaml", config("IT-Service", ""));
    env.run_expect(&["plan", "examples/staff.csv", "--detailed-exitcode"], 0);
    let opened = files(&env.join("out"));
    let staff = env.read_string("examples/staff.csv");
    let mut rows = staff.lines();
    let header = rows.next().unwrap();
    let department = header.split(',').position(|h| h == "department").unwrap();
    let mut renamed = vec![header.to_string()];
    for row in rows {
        let mut cells: Vec<String> = row.split(',').map(String::from).collect();
        cells[department].push_str(" Nord");
        renamed.push(cells.join(","));
    }
    env.write("examples/staff.csv", renamed.join("\n") + "\n");
    env.run_ok(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);
    let rewritten = files(&env.join("out"));
    let (mut same, mut letters) = (0, 0);
    for (path, bytes) in &opened {
        let name = path.file_name().unwrap().to_str().unwrap();
        let now = rewritten.get(path);
        if matches!(name, ".secrets" | "wireguard.conf" | "wireguard-qr.png") {
            // Compared, never printed: these are secrets.
            assert!(now == Some(bytes), "{} differs", path.display());
            same += 1;
        }
        if name == "welcome.html" {
            assert!(
                now.is_some_and(|n| n != bytes),
                "{} was not rewritten",
                path.display()
            );
            letters += 1;
        }
    }
    assert!(same >= 2 * STAFF_COUNT, "compared {same} files");
    assert_eq!(letters, STAFF_COUNT);
}

#[test]
fn a_recipient_that_is_not_a_key_is_a_config_error_at_its_line() {
    let env = TestEnv::new();
    env.copy_examples();
    env.write(
        "homebase.yaml",
        config(
            "IT-Service",
            "bundles:\n  encrypt_to:\n    - age1qqqqnotakey\n    - hunter2\n",
        ),
    );
    let out = env.run_expect(&["check", "examples/staff.csv"], 2);
    let text = stderr(&out);
    let lines = config("IT-Service", "").lines().count();
    for (offset, what) in [
        (3, "not a valid age X25519 recipient"),
        (4, "expected an age key"),
    ] {
        let at = format!("homebase.yaml:{}:", lines + offset);
        assert!(
            text.lines().any(|l| l.contains(&at) && l.contains(what)),
            "no `{at} … {what}` in:\n{text}"
        );
    }
    env.write("homebase.yaml", config("IT-Service", ""));
    let out = env.run_expect(
        &[
            "check",
            "examples/staff.csv",
            "--recipient",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA",
        ],
        2,
    );
    assert!(
        stderr(&out).contains("--recipient: not a valid SSH public key"),
        "{}",
        stderr(&out)
    );
    // Nothing was written.
    assert!(!env.exists("out"));
}

/// A binary PGM (`pdftoppm -gray`) as width, height and grey pixels.
fn read_pgm(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).to_string());
    }
    assert_eq!(fields[0], "P5", "a binary PGM");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = bytes[at + 1..].to_vec();
    assert_eq!(pixels.len(), w * h);
    (w, h, pixels)
}

#[test]
fn letters_of_the_examples_are_one_duplex_safe_pdf_in_department_order() {
    if !tools_available(
        "letters PDF",
        "HOMEBASE_REQUIRE_POPPLER",
        false,
        &[
            ("pdfinfo", "-v"),
            ("pdftotext", "-v"),
            ("pdffonts", "-v"),
            ("pdftoppm", "-v"),
        ],
    ) {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    env.run_ok(&["apply", "examples/staff.csv", "--yes", "--no-progress"]);
    let out = env.run_ok(&["letters", "examples/staff.csv", "--out", "letters.pdf"]);
    assert!(stderr(&out).contains("1200 person(s)"), "{}", stderr(&out));
    let pdf = env.join("letters.pdf");
    let pdf = pdf.to_str().unwrap();

    // Every person with devices gets a letter page and a handover page:
    // two pages a person, so each starts on a front side.
    let plan = env.plan_json(&["examples/staff.csv"]);
    let persons = common::persons_by_id(&plan);
    let info = String::from_utf8(run("pdfinfo", &[pdf]).stdout).unwrap();
    let pages: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .expect("a page count")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pages, 2 * persons.len(), "{info}");
    assert!(info.contains("pts (A4)"), "{info}");

    // Every font embedded (and subset).
    let fonts = String::from_utf8(run("pdffonts", &[pdf]).stdout).unwrap();
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for row in rows {
        let columns: Vec<&str> = row.split_whitespace().collect();
        let emb = columns[columns.len() - 5];
        assert_eq!(emb, "yes", "a font not embedded: {row}");
    }

    // Names, usernames and departments, in department order, each person
    // starting on an odd page.
    let text = String::from_utf8(run("pdftotext", &["-layout", pdf, "-"]).stdout).unwrap();
    let sheets: Vec<&str> = text.split('\u{c}').collect();
    let by_username: BTreeMap<String, &serde_json::Value> = persons
        .values()
        .map(|p| (p["username"].as_str().unwrap().to_string(), p))
        .collect();
    let mut order = Vec::new();
    for index in 0..persons.len() {
        let page = sheets[2 * index];
        let username = page
            .lines()
            .find(|l| l.contains("Benutzername"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("page {} names no username", 2 * index + 1));
        let person = by_username
            .get(username)
            .unwrap_or_else(|| panic!("page {}: unknown username {username}", 2 * index + 1));
        let name = person["display_name"].as_str().unwrap();
        let department = person["department"].as_str().unwrap_or_default();
        assert!(page.contains(name), "page {} lacks {name}", 2 * index + 1);
        assert!(
            page.contains(department),
            "page {} lacks {department}",
            2 * index + 1
        );
        // The back is the handover sheet, or blank (no devices).
        let back = sheets[2 * index + 1];
        if page.contains("Seite 1 von 2") {
            assert!(
                back.contains("Seite 2 von 2") && back.contains(username),
                "handover of {username}"
            );
        } else {
            assert!(page.contains("Seite 1 von 1"), "page {}", 2 * index + 1);
            assert!(
                back.trim().is_empty(),
                "the back of {username}'s letter is not blank"
            );
        }
        order.push((department.to_lowercase(), username.to_string()));
    }
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        order.iter().map(|o| &o.0).collect::<Vec<_>>(),
        sorted.iter().map(|o| &o.0).collect::<Vec<_>>(),
        "not in department order"
    );
    let mut everybody: Vec<&String> = order.iter().map(|o| &o.1).collect();
    everybody.sort();
    everybody.dedup();
    assert_eq!(everybody.len(), persons.len(), "a person twice or missing");
    // Names beyond Latin-1 are text in the PDF, not boxes.
    let names = persons
        .values()
        .map(|p| p["display_name"].as_str().unwrap());
    for name in names.filter(|n| !n.is_ascii()).take(50) {
        assert!(text.contains(name), "{name}");
    }

    // The QR code on the first page is that person's WireGuard config.
    let first = &order[0].1;
    let ppm = env.join("page");
    run(
        "pdftoppm",
        &[
            "-gray",
            "-r",
            "200",
            "-f",
            "1",
            "-l",
            "1",
            pdf,
            ppm.to_str().unwrap(),
        ],
    );
    let image = std::fs::read_dir(env.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pgm"))
        .expect("the page image");
    let (w, h, pixels) = read_pgm(&std::fs::read(&image).unwrap());
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| pixels[y * w + x]);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the page");
    let scanned = grids[0].decode().expect("a readable QR code").1;
    let config = env.read_string(format!("out/{first}/wireguard.conf"));
    let expected_config: String = config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    // Compared, never printed: the config holds the private key.
    assert!(
        scanned == expected_config,
        "the QR code is not {first}'s config"
    );
    if let Ok(dir) = std::env::var("HOMEBASE_SCREENSHOTS") {
        run(
            "pdftoppm",
            &[
                "-png",
                "-r",
                "80",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                pdf,
                &format!("{dir}/letter-page"),
            ],
        );
    }
}

#[test]
fn letters_bad_input_is_reported_not_cut() {
    let env = TestEnv::new();
    env.copy_examples();
    // One person without a department, one whose department cannot fit
    // the window of the envelope.
    let staff = env.read_string("examples/staff.csv");
    let mut lines: Vec<String> = staff.lines().take(4).map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let department = header.iter().position(|h| *h == "department").unwrap();
    let mut cells: Vec<String> = lines[1].split(',').map(String::from).collect();
    cells[department] = String::new();
    lines[1] = cells.join(",");
    env.write("small.csv", lines.join("\n") + "\n");
    env.run_ok(&["apply", "small.csv", "--yes", "--no-progress"]);
    let out = env.run_ok(&["letters", "small.csv", "--out", "l.pdf"]);
    assert!(
        stderr(&out).contains("1 person(s) have no department; printed last"),
        "{}",
        stderr(&out)
    );

    let mut cells: Vec<String> = lines[2].split(',').map(String::from).collect();
    cells[department] = "Amt für sehr lange Bezeichnungen ".repeat(6);
    lines[2] = cells.join(",");
    env.write("small.csv", lines.join("\n") + "\n");
    env.run_ok(&["apply", "small.csv", "--yes", "--no-progress"]);
    let out = env.run_expect(&["letters", "small.csv", "--out", "l2.pdf"], 2);
    assert!(
        stderr(&out).contains("the window holds 6"),
        "{}",
        stderr(&out)
    );
    assert!(!env.exists("l2.pdf"));

    // A letter template the layout cannot hold is found by `check`, before
    // any letter: an unknown directive, an address longer than the window.
    std::fs::create_dir_all(env.join("templates")).unwrap();
    env.write(
        "templates/letter.pdf.j2",
        "@to {{ person.display_name }}\n@box {{ person.id }}\n",
    );
    let out = env.run_expect(&["check", "small.csv"], 2);
    assert!(
        stderr(&out).contains("unknown directive `@box`"),
        "{}",
        stderr(&out)
    );
    env.write(
        "templates/letter.pdf.j2",
        "{% for i in range(7) %}@to {{ person.display_name }} {{ i }}\n{% endfor %}",
    );
    let out = env.run_expect(&["check", "small.csv"], 2);
    assert!(stderr(&out).contains("letter.pdf.j2"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the window holds 6"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(env.join("templates")).unwrap();

    // Letters need the bundles: a staff list not yet applied is refused.
    env.write(
        "more.csv",
        staff.lines().take(6).collect::<Vec<_>>().join("\n") + "\n",
    );
    let out = env.run_expect(&["letters", "more.csv"], 2);
    assert!(stderr(&out).contains("not applied yet"), "{}", stderr(&out));

    // A return address wider than the window's line is reported, not cut.
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("homebase.yaml"))
            .unwrap();
    let long = "Stadtverwaltung der Freien Stadt Musterstadt am Meer, Dezernat für Bürgerdienste";
    let renamed = shipped.replace(
        "  name: Stadtverwaltung Musterstadt\n",
        &format!("  name: {long}\n"),
    );
    assert_ne!(renamed, shipped, "the shipped organisation name moved");
    env.write("homebase.yaml", renamed);
    env.run_ok(&["apply", "small.csv", "--yes", "--no-progress"]);
    let out = env.run_expect(&["letters", "small.csv", "--out", "l3.pdf"], 2);
    assert!(
        stderr(&out).contains("the return address")
            && stderr(&out).contains("wider than the window"),
        "{}",
        stderr(&out)
    );
    assert!(!env.exists("l3.pdf"));
}

/// `small.csv`: the first 18 example persons and the first 4 of IT (the
/// `admin` profile: preshared keys), one of them without a department
/// and one whose department wraps onto a second address line.
fn small_staff(env: &TestEnv) -> usize {
    let (header, rows) = common::example_staff_rows();
    let department = header.split(',').position(|h| h == "department").unwrap();
    let it = |r: &&String| r.split(',').nth(department) == Some("Informationstechnik");
    let mut chosen: Vec<Vec<String>> = rows
        .iter()
        .filter(|r| !it(r))
        .take(18)
        .chain(rows.iter().filter(it).take(4))
        .map(|r| r.split(',').map(String::from).collect())
        .collect();
    chosen[1][department] = String::new();
    chosen[2][department] = "Amt für Straßen Brücken und öffentliche Grünanlagen".to_string();
    let mut text = format!("{header}\n");
    for row in &chosen {
        text.push_str(&row.join(","));
        text.push('\n');
    }
    env.write("small.csv", text);
    chosen.len()
}

fn pdf_pages(pdf: &Path) -> usize {
    let info = String::from_utf8(run("pdfinfo", &[pdf.to_str().unwrap()]).stdout).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .expect("a page count")
        .trim()
        .parse()
        .unwrap()
}

/// The text of each person's sheet (front and back), by username, with
/// every run of white space one space (so wrapped sentences read whole).
fn sheets_by_username(pdf: &Path, usernames: &[String]) -> BTreeMap<String, String> {
    let text = String::from_utf8(run("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]).stdout)
        .unwrap();
    let pages: Vec<&str> = text.split('\u{c}').collect();
    let mut sheets = BTreeMap::new();
    for pair in pages.chunks(2).filter(|p| p.len() == 2) {
        let sheet = format!("{}\n{}", pair[0], pair[1])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let username = pair[0]
            .lines()
            .find(|l| l.contains("Benutzername"))
            .and_then(|l| l.split_whitespace().last())
            .expect("a front page names its username")
            .to_string();
        assert!(usernames.contains(&username), "unknown {username}");
        assert!(sheets.insert(username, sheet).is_none(), "a person twice");
    }
    sheets
}

fn poppler() -> bool {
    tools_available(
        "letters PDF",
        "HOMEBASE_REQUIRE_POPPLER",
        false,
        &[("pdfinfo", "-v"), ("pdftotext", "-v")],
    )
}

#[test]
fn apply_letters_prints_the_run_and_a_profile_hands_the_password_over_separately() {
    if !poppler() {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    let count = small_staff(&env);
    // The shipped profiles beside the configuration, the administrators'
    // saying their first password is handed over separately.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["admin", "base", "field", "office"] {
        let mut text = std::fs::read_to_string(root.join(format!("profiles/{name}.yaml"))).unwrap();
        if name == "admin" {
            text.push_str("\nletter:\n  print_password: false\n");
        }
        env.write(format!("profiles/{name}.yaml"), text);
    }
    let out = env.run_ok(&[
        "apply",
        "small.csv",
        "--yes",
        "--no-progress",
        "--letters",
        "letters.pdf",
    ]);
    let log = stderr(&out);
    assert!(
        log.contains(&format!("letters: {count} person(s)")),
        "{log}"
    );
    assert!(
        log.contains("1 person(s) have no department; printed last"),
        "{log}"
    );
    let pdf = env.join("letters.pdf");
    // Every profile issues devices: a letter and a handover sheet each.
    assert_eq!(pdf_pages(&pdf), 2 * count);

    let plan = env.plan_json(&["small.csv"]);
    let persons = common::persons_by_id(&plan);
    let usernames: Vec<String> = persons
        .values()
        .map(|p| p["username"].as_str().unwrap().to_string())
        .collect();
    let sheets = sheets_by_username(&pdf, &usernames);
    assert_eq!(sheets.len(), count, "one sheet a person");
    let (mut printed, mut separate) = (0, 0);
    for person in persons.values() {
        let username = person["username"].as_str().unwrap();
        let sheet = &sheets[username];
        let name = person["display_name"].as_str().unwrap();
        assert!(sheet.contains(name), "{username}: no {name}");
        let secrets = common::parse_secrets(&env.read_string(format!("out/{username}/.secrets")));
        let password = &secrets["initial_password"];
        // Compared, never printed: a password.
        if person["profile"] == "admin" {
            assert!(!sheet.contains(password.as_str()), "{username}: printed");
            assert!(
                sheet.contains("erhalten Sie getrennt")
                    && sheet.contains("wird getrennt übergeben"),
                "{username}: the letter or the handover sheet does not say it is separate"
            );
            separate += 1;
        } else {
            assert!(sheet.contains(password.as_str()), "{username}: not printed");
            assert!(!sheet.contains("getrennt"), "{username}");
            printed += 1;
        }
    }
    assert_eq!((printed, separate), (count - 4, 4));

    // Sorted by department; the person without one comes last. A department
    // too long for one address line wraps onto the next, nothing cut.
    let text = String::from_utf8(run("pdftotext", &["-layout", pdf.to_str().unwrap(), "-"]).stdout)
        .unwrap();
    let pages: Vec<&str> = text.split('\u{c}').collect();
    let no_department = persons
        .values()
        .find(|p| p["department"].is_null())
        .expect("the person without a department");
    assert!(
        pages[2 * (count - 1)].contains(no_department["display_name"].as_str().unwrap()),
        "the person without a department is not last"
    );
    let wrapped: Vec<&str> = pages
        .iter()
        .find(|p| p.contains("Amt für Straßen"))
        .expect("the long department")
        .lines()
        .collect();
    let last = wrapped
        .iter()
        .position(|l| l.contains("persönlich / vertraulich"))
        .expect("the address's last line");
    assert!(
        wrapped[last.saturating_sub(5)..last]
            .iter()
            .any(|l| l.trim().ends_with("Grünanlagen") && !l.contains("Amt für")),
        "the long department is not wrapped in the address: {:?}",
        &wrapped[last.saturating_sub(6)..=last]
    );
}

#[test]
fn letters_of_an_encrypted_run_are_only_written_encrypted_and_open_with_age() {
    if !poppler()
        || !tools_available(
            "encrypted letters",
            "HOMEBASE_REQUIRE_AGE",
            false,
            &[
                ("age", "--version"),
                ("age-keygen", "--version"),
                ("tar", "--version"),
            ],
        )
    {
        return;
    }
    let env = TestEnv::new();
    env.copy_examples();
    let count = small_staff(&env);
    env.write("homebase.yaml", config("IT-Service", ""));
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("age.txt");
    run("age-keygen", &["-o", key.to_str().unwrap()]);
    let public = String::from_utf8(run("age-keygen", &["-y", key.to_str().unwrap()]).stdout)
        .unwrap()
        .trim()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let out = env
        .command()
        .env("TMPDIR", tmp.path())
        .args([
            "apply",
            "small.csv",
            "--yes",
            "--no-progress",
            "--recipient",
            &public,
            "--letters",
            "letters.pdf",
        ])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("letters.pdf.age"), "{}", stderr(&out));
    assert!(!env.exists("letters.pdf"), "a plaintext PDF was written");

    // Opened with Debian's age, outside the working folder.
    let scratch = tempfile::tempdir().unwrap();
    let pdf = scratch.path().join("letters.pdf");
    run(
        "age",
        &[
            "-d",
            "-i",
            key.to_str().unwrap(),
            "-o",
            pdf.to_str().unwrap(),
            env.join("letters.pdf.age").to_str().unwrap(),
        ],
    );
    assert_eq!(pdf_pages(&pdf), 2 * count);
    let run_archive = std::fs::read_dir(env.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().contains("bundles-run-"))
        .expect("the run's archive");
    let bundles = scratch.path().join("bundles");
    open(&run_archive, &key, &bundles);
    let usernames: Vec<String> = std::fs::read_dir(&bundles)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(usernames.len(), count);
    let sheets = sheets_by_username(&pdf, &usernames);
    assert_eq!(sheets.len(), count);
    let mut secrets = Vec::new();
    let mut preshared = Vec::new();
    for username in &usernames {
        let issued = common::parse_secrets(
            &std::fs::read_to_string(bundles.join(username).join(".secrets")).unwrap(),
        );
        // The letter shows the first password (the shipped default).
        assert!(
            sheets[username].contains(issued["initial_password"].as_str()),
            "{username}: no password in the letter"
        );
        preshared.extend(issued.get("wireguard_preshared_key").cloned());
        secrets.extend(
            issued
                .into_iter()
                .filter(|(k, _)| k != "openvpn_cert")
                .map(|(_, v)| v),
        );
    }
    // Nothing issued is in plaintext in the working folder or TMPDIR.
    let scanner = SecretScanner::new(secrets);
    for root in [env.path().to_path_buf(), tmp.path().to_path_buf()] {
        for (path, bytes) in files(&root) {
            if path.starts_with("gateway") {
                continue;
            }
            scanner.assert_absent(&path.display().to_string(), &bytes);
        }
    }
    // The gateway's file got the administrators' preshared keys, held in
    // memory for the run only.
    assert_eq!(preshared.len(), 4, "the four administrators");
    let gateway = env.read_string("gateway/wg0.conf");
    for psk in &preshared {
        assert!(gateway.contains(psk.as_str()), "a preshared key is missing");
    }
}
