//! The `snipeit` inventory target through the real binary, against the fake
//! Snipe-IT of `fake_snipeit` (a stand-in written from the API
//! documentation, not Snipe-IT itself).
//!
//! Time is scaled down where the rate limit matters: the fake's throttle
//! window is 6 s instead of a minute, so "480 per window" behaves like
//! Snipe-IT with `API_THROTTLE_PER_MINUTE=4800`, and homebase is told
//! `requests_per_minute: 4800`.

use crate::common;
use crate::fake_snipeit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use fake_snipeit::{FakeSnipeit, Options};

const TOKEN: &str = "test-token-0123456789";
const TOKEN_ENV: &str = "HOMEBASE_TEST_SNIPEIT_TOKEN";

/// The tests measure request rates: one at a time on a two-core machine.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn inventory_csv() -> String {
    std::fs::read_to_string(examples().join("inventory.csv")).unwrap()
}

/// A folder with `homebase.yaml` (embedded profiles; local directory,
/// wireguard-file VPN, snipeit inventory) and the first `persons` of the
/// example staff list as `staff.csv`.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(url: &str, requests_per_minute: Option<u32>, persons: usize) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let rpm = requests_per_minute
            .map(|r| format!("    requests_per_minute: {r}\n"))
            .unwrap_or_default();
        let config = format!(
            "organisation:\n  name: Test City\n  domain: test.example\n\
             licenses:\n  office-suite: {{seats: 1400}}\n  vpn-client: {{seats: 1300}}\n\
             targets:\n\
             \x20 directory:\n    kind: local\n    base_dn: dc=test,dc=example\n\
             \x20 wg0:\n    kind: wireguard-file\n    endpoint: vpn.test.example:51820\n    address: 10.20.0.1/16\n\
             \x20 assets:\n    kind: snipeit\n    url: {url}\n    token_env: {TOKEN_ENV}\n{rpm}\
             \x20   kinds:\n      notebook: {{category: Notebooks}}\n      monitor: {{category: Monitors}}\n      headset: {{category: Headsets}}\n"
        );
        std::fs::write(dir.path().join("homebase.yaml"), config).unwrap();
        // The examples with their end dates moved out of the way, as for every test.
        let staff = common::example_staff_csv();
        let lines: Vec<&str> = staff.lines().take(persons + 1).collect();
        std::fs::write(dir.path().join("staff.csv"), lines.join("\n") + "\n").unwrap();
        Site { dir }
    }

    fn homebase(&self, args: &[&str]) -> std::process::Output {
        Command::cargo_bin("homebase")
            .unwrap()
            .current_dir(self.dir.path())
            .env(TOKEN_ENV, TOKEN)
            .env("HOMEBASE_RETRY_BASE_MS", "0")
            .env("NO_COLOR", "1")
            .args(["--no-progress", "--yes"])
            .args(args)
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn category_of(kind: &str) -> String {
    format!("{}{}s", kind[..1].to_uppercase(), &kind[1..])
}

/// What each person's profile asks for (the shipped profiles), as
/// Snipe-IT categories, from the plan's JSON.
fn wanted(site: &Site) -> BTreeMap<String, Vec<String>> {
    let out = site.homebase(&["plan", "staff.csv", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let per_profile: BTreeMap<&str, Vec<&str>> = [
        ("office", vec!["notebook", "monitor", "headset"]),
        ("field", vec!["notebook"]),
        ("admin", vec!["notebook", "monitor", "monitor", "headset"]),
    ]
    .into_iter()
    .collect();
    plan["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let profile = p["profile"].as_str().unwrap();
            let mut kinds: Vec<String> = per_profile[profile]
                .iter()
                .map(|k| category_of(k))
                .collect();
            kinds.sort();
            (p["id"].as_str().unwrap().to_string(), kinds)
        })
        .collect()
}

fn held(fake: &FakeSnipeit) -> BTreeMap<String, Vec<String>> {
    fake.holdings()
        .into_iter()
        .map(|(id, items)| {
            let mut kinds: Vec<String> = items.into_iter().map(|(c, _)| c).collect();
            kinds.sort();
            (id, kinds)
        })
        .collect()
}

/// Accepted requests in each window that lies wholly between `from` and `to`.
fn full_windows(
    fake: &FakeSnipeit,
    from: Instant,
    to: Instant,
    window: Duration,
) -> Vec<(u32, u32)> {
    fake.windows()
        .iter()
        .filter(|w| w.opened >= from && w.opened + window <= to)
        .map(|w| (w.accepted, w.limit))
        .collect()
}

#[test]
fn provisions_the_example_staff_within_the_rate_limit() {
    let _serial = serial();
    let window = Duration::from_secs(6);
    let fake = FakeSnipeit::start(Options {
        token: TOKEN.into(),
        limit: 480,
        window,
    });
    fake.seed_csv(&inventory_csv(), |_, _| true);
    let site = Site::new(&fake.url, Some(4800), 1200);

    // The plan: the expected duration, no shortage, nothing changed.
    let out = site.homebase(&["plan", "staff.csv"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("Duration"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("assets (snipeit)") && l.contains("requests"))
        .unwrap_or_else(|| panic!("no duration line in\n{stdout}"));
    assert!(line.contains("at 4800 requests/min"), "{line}");
    assert!(!stdout.contains("missing from stock"), "{stdout}");
    let wanted = wanted(&site);
    assert_eq!(wanted.len(), 1200);
    assert_eq!(fake.writes(), 0, "plan changed something");

    // The run.
    let started = Instant::now();
    let out = site.homebase(&["apply", "staff.csv"]);
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("failed:"), "{stderr}");
    assert!(
        stderr.contains("assets (snipeit): ") && stderr.contains("at 4800 requests/min"),
        "{stderr}"
    );

    // Everyone got what their profile asks for; no asset went out twice.
    let held = held(&fake);
    assert_eq!(held, wanted);
    let checkouts = fake.checkouts();
    let assets: BTreeSet<u64> = checkouts.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        assets.len(),
        checkouts.len(),
        "an asset was checked out twice"
    );
    let devices: usize = wanted.values().map(Vec::len).sum();
    assert_eq!(checkouts.len(), devices);

    // The rate: every full window of the run at >= 95 % of the limit, no 429.
    let hits = fake.hits();
    let writes: Vec<Instant> = hits
        .iter()
        .filter(|h| h.method != "GET")
        .map(|h| h.at)
        .collect();
    let (first, last) = (writes[0], writes[writes.len() - 1]);
    let windows = full_windows(&fake, first, last, window);
    let refused = hits.iter().filter(|h| h.status == 429).count();
    let requests = hits.iter().filter(|h| h.at >= started).count();
    eprintln!(
        "1200 persons: {requests} requests, {} checkouts, {} users in {:.1} s; windows (accepted/limit): {windows:?}; 429s: {refused}",
        checkouts.len(),
        fake.users(),
        took.as_secs_f64()
    );
    // Per window of the run: >= 95 % of the limit on average, and no window
    // below 90 % (the first one shares the machine with the start-up work
    // of 1,200 persons: keys, secrets files, journal).
    assert!(windows.len() >= 5, "{windows:?}");
    let used: Vec<f64> = windows
        .iter()
        .map(|(accepted, limit)| f64::from(*accepted) / f64::from(*limit))
        .collect();
    let mean = used.iter().sum::<f64>() / used.len() as f64;
    eprintln!(
        "windows used on average {:.1} %, least {:.1} %",
        mean * 100.0,
        used.iter().cloned().fold(1.0, f64::min) * 100.0
    );
    assert!(mean >= 0.95, "{windows:?}");
    assert!(used.iter().all(|u| *u >= 0.90), "{windows:?}");
    assert_eq!(refused, 0, "requests refused with 429");

    // The handover sheet names the real asset tags and serials.
    let sheet = std::fs::read_to_string(site.dir.path().join("out/tmeyer/handover.html")).unwrap();
    let theirs = fake.assets_of("P100001");
    assert_eq!(theirs.len(), 3);
    for (tag, serial) in &theirs {
        assert!(
            sheet.contains(tag.as_str()) && sheet.contains(serial.as_str()),
            "{tag} {serial}"
        );
    }

    // Offboarding checks the devices back in.
    let before = held["P100001"].len();
    let out = site.homebase(&["offboard", "P100001"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!fake.holdings().contains_key("P100001"));
    assert_eq!(fake.checkins(), before);

    // A second run changes nothing.
    let writes = fake.writes();
    let out = site.homebase(&["apply", "staff.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing to do"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fake.writes(), writes);
}

#[test]
fn the_plan_reports_shortages_and_the_duration_before_changing_anything() {
    let _serial = serial();
    // Snipe-IT's defaults: 120 requests a minute, a real minute.
    let fake = FakeSnipeit::start(Options {
        token: TOKEN.into(),
        limit: 120,
        window: Duration::from_secs(60),
    });
    // No ThinkPads: 486 notebooks for 1,200 persons.
    fake.seed_csv(&inventory_csv(), |_, model| model != "ThinkPad T14 Gen 5");
    let site = Site::new(&fake.url, None, 1200);
    let out = site.homebase(&["plan", "staff.csv"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shortage = stdout
        .lines()
        .find(|l| l.contains("notebook") && l.contains("missing from stock"))
        .unwrap_or_else(|| panic!("no notebook shortage in\n{stdout}"));
    assert!(shortage.contains("714 × notebook"), "{shortage}");
    let line = stdout
        .lines()
        .find(|l| l.contains("assets (snipeit)") && l.contains("requests"))
        .unwrap_or_else(|| panic!("no duration line in\n{stdout}"));
    assert!(line.contains("min at 120 requests/min"), "{line}");
    eprintln!("duration at Snipe-IT's default throttle: {}", line.trim());
    assert_eq!(fake.writes(), 0);
    assert!(fake.hits().iter().all(|h| h.method == "GET"));
}

#[test]
fn a_limit_lowered_mid_run_is_followed_through_retry_after() {
    let _serial = serial();
    let window = Duration::from_secs(6);
    let fake = FakeSnipeit::start(Options {
        token: TOKEN.into(),
        limit: 480,
        window,
    });
    fake.seed_csv(&inventory_csv(), |_, _| true);
    // Halfway through the first busy window, the admin lowers the throttle.
    fake.change_limit_after(300, 160);
    let site = Site::new(&fake.url, Some(4800), 200);
    let wanted = wanted(&site);
    let started = Instant::now();
    let out = site.homebase(&["apply", "staff.csv"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("failed:"), "{stderr}");
    assert_eq!(held(&fake), wanted);

    let hits = fake.hits();
    let refused: Vec<_> = hits.iter().filter(|h| h.status == 429).collect();
    assert!(!refused.is_empty(), "the lower limit was never hit");
    // After a 429 nothing new arrives until its Retry-After has passed
    // (requests already on the wire may still land just after it).
    for r in &refused {
        let quiet_from = r.at + Duration::from_millis(250);
        let quiet_to =
            r.at + Duration::from_secs(r.retry_after.unwrap()) - Duration::from_millis(100);
        let early: Vec<_> = hits
            .iter()
            .filter(|h| h.at > quiet_from && h.at < quiet_to)
            .collect();
        let early: Vec<String> = early
            .iter()
            .map(|h| format!("{} {}", h.method, h.path))
            .collect();
        assert!(early.is_empty(), "requests during Retry-After: {early:?}");
    }
    let last = hits.last().unwrap().at;
    let after: Vec<(u32, u32)> = full_windows(&fake, refused[0].at, last, window);
    eprintln!(
        "lowered 480 → 160 per window: {} requests refused with 429 (Retry-After honoured), windows after: {after:?}, run {:.1} s",
        refused.len(),
        started.elapsed().as_secs_f64()
    );
    for (accepted, limit) in &after {
        assert_eq!(*limit, 160);
        assert!(f64::from(*accepted) >= 0.95 * 160.0, "{after:?}");
    }
}

#[test]
fn existing_users_are_taken_over_and_refusals_fail_only_their_person() {
    let _serial = serial();
    let fake = FakeSnipeit::start(Options {
        token: TOKEN.into(),
        limit: 480,
        window: Duration::from_secs(6),
    });
    fake.seed_csv(&inventory_csv(), |_, _| true);
    // Thomas Meyer (P100001) has a Snipe-IT user without employee number;
    // "mschmidt" belongs to somebody else than Mohammed Schmidt (P100002).
    fake.seed_user("tmeyer", None);
    fake.seed_user("mschmidt", Some("X999"));
    // And one asset is checked out by hand while homebase runs.
    fake.sabotage_checkout(5);
    let site = Site::new(&fake.url, Some(4800), 6);
    let out = site.homebase(&["apply", "staff.csv"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let failures: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("failed:"))
        .collect();
    // Each of P100002's three devices fails with the reason; one other
    // device fails with Snipe-IT's own message.
    let (theirs, others): (Vec<&str>, Vec<&str>) =
        failures.iter().partition(|l| l.contains("P100002"));
    assert_eq!(theirs.len(), 3, "{stderr}");
    assert!(
        theirs
            .iter()
            .all(|l| l.contains("has employee number X999, not P100002")),
        "{stderr}"
    );
    assert_eq!(others.len(), 1, "{stderr}");
    assert!(
        others[0]
            .contains(": Snipe-IT: That asset is not available for checkout! (checked out to "),
        "{stderr}"
    );
    assert_eq!(fake.employee_num("tmeyer").as_deref(), Some("P100001"));
    let held = held(&fake);
    assert!(held.contains_key("P100001"), "{held:?}");
    assert!(!held.contains_key("P100002"), "{held:?}");
    assert!(held.len() >= 4, "{held:?}");
}

#[test]
fn a_refused_token_is_bad_input_and_never_shown() {
    let _serial = serial();
    let fake = FakeSnipeit::start(Options {
        token: "the-right-one".into(),
        limit: 120,
        window: Duration::from_secs(60),
    });
    fake.seed_csv(&inventory_csv(), |_, _| true);
    let site = Site::new(&fake.url, None, 3);
    let out = site.homebase(&["plan", "staff.csv"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the API token"), "{stderr}");
    assert!(!stderr.contains(TOKEN) && !text(&out.stdout).contains(TOKEN));
}

#[test]
fn check_refuses_a_cleartext_remote_url_and_a_missing_token() {
    let site = Site::new("http://assets.test.example", None, 3);
    let config = site.dir.path().join("homebase.yaml");
    let text_of = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text_of.replace(&format!("    token_env: {TOKEN_ENV}\n"), ""),
    )
    .unwrap();
    let out = site.homebase(&["check", "staff.csv"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("targets.assets.url"), "{stderr}");
    assert!(stderr.contains("no API token configured"), "{stderr}");
}

/// The state store lost after provisioning with Snipe-IT: `adopt --all`
/// records the assets checked out to each person (by employee number) as
/// their devices, and the next plan has nothing to do — no checkout made or
/// changed.
#[test]
fn adopt_all_records_the_checkouts_after_a_lost_state_store() {
    let _serial = serial();
    let fake = FakeSnipeit::start(Options {
        token: TOKEN.into(),
        limit: 4800,
        window: Duration::from_secs(6),
    });
    fake.seed_csv(&inventory_csv(), |_, _| true);
    let site = Site::new(&fake.url, None, 20);
    let out = site.homebase(&["apply", "staff.csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before = held(&fake);
    std::fs::remove_dir_all(site.dir.path().join(".homebase")).unwrap();
    let out = site.homebase(&["adopt", "--all", "staff.csv"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    assert!(report.contains("assets: "), "{report}");
    let out = site.homebase(&["plan", "staff.csv", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(held(&fake), before);
}
