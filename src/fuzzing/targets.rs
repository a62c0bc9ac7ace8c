//! The fuzz targets themselves, each from the raw bytes libFuzzer hands in:
//! `fuzz/fuzz_targets/NAME.rs` calls `NAME` here, and the integration test
//! `fuzz_corpus` replays every seed of `fuzz/corpus/NAME/` through the same
//! function on stable Rust, so the properties are checked in every test run
//! and not only where the nightly sanitizer build is affordable. A target
//! panics when a property fails. Bytes are read as the fuzz crate's own
//! signatures would read them: text only when it is UTF-8, structured inputs
//! through `arbitrary` from the rest of the bytes.

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};

use crate::input::InputOptions;
use crate::plan::Account;
use crate::render::{BundleContext, Templates};

/// A target: it panics when a property fails for these bytes.
pub type Target = fn(&[u8]);

/// Every target, by the name of its folder in `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 15] = [
    ("config", config),
    ("easyrsa_index", easyrsa_index),
    ("ldif", ldif),
    ("ldif_roundtrip", ldif_roundtrip),
    ("profiles", profiles),
    ("rate_limit", rate_limit),
    ("render", render),
    ("scim_body", scim_body),
    ("snipeit_body", snipeit_body),
    ("snipeit_pace", snipeit_pace),
    ("staff_csv", staff_csv),
    ("staff_structured", staff_structured),
    ("staff_xlsx", staff_xlsx),
    ("wg_dump", wg_dump),
    ("wg_quick", wg_quick),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

fn structured<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// `homebase.yaml`: any text gives problems or none, never a panic.
pub fn config(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = super::config(text);
    }
}

/// easy-rsa's `index.txt` and the serials in it.
pub fn easyrsa_index(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(entries) = super::parse_index(text) {
        for entry in entries {
            let _ = super::serial_hex(&entry.serial);
        }
    }
    let _ = super::serial_hex(text);
}

/// The LDIF reader `adopt` uses on the embedded directory's export.
pub fn ldif(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = super::parse_ldif(text, "dc=example,dc=org");
    }
}

#[derive(Debug, Arbitrary)]
struct Written {
    id: String,
    username: String,
    given_name: String,
    family_name: String,
    display_name: String,
    email: String,
    department: Option<String>,
    groups: Vec<String>,
    enabled: bool,
}

/// LDIF homebase writes reads back as the same accounts.
pub fn ldif_roundtrip(data: &[u8]) {
    let Some(written) = structured::<Vec<Written>>(data) else {
        return;
    };
    if written.len() > 6 {
        return;
    }
    let mut accounts: Vec<(String, Account)> = written
        .into_iter()
        .map(|w| {
            let mut groups = w.groups;
            groups.sort();
            groups.dedup();
            let account = Account {
                username: w.username,
                given_name: w.given_name,
                family_name: w.family_name,
                display_name: w.display_name,
                email: w.email,
                department: w.department,
                groups,
                ou: None,
                expires: None,
                enabled: w.enabled,
            };
            (w.id, account)
        })
        .collect();
    // Usernames name the entries (their DN): unique in a real export.
    let mut names: Vec<_> = accounts
        .iter()
        .map(|(_, a)| a.username.to_lowercase())
        .collect();
    names.sort();
    names.dedup();
    if names.len() != accounts.len() {
        return;
    }
    // The export lists them by username, whatever order it was given.
    accounts.sort_by(|a, b| a.1.username.cmp(&b.1.username));
    let base = "dc=example,dc=org";
    let text = super::render_ldif(base, accounts.iter().rev().map(|(id, a)| (id.as_str(), a)));
    let read = super::parse_ldif(&text, base).unwrap_or_else(|(line, why)| {
        panic!("our own LDIF does not read back: line {line}: {why}\n{text}")
    });
    assert_eq!(read.len(), accounts.len(), "{text}");
    for ((id, account), back) in accounts.iter().zip(&read) {
        assert_eq!(back.staff_id.as_deref(), Some(id.as_str()), "{text}");
        assert_eq!(&back.account, account, "{text}");
    }
}

/// A profile folder: files separated by NUL, each `name\nbody`.
pub fn profiles(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let files: Vec<(String, String)> = text
        .split('\0')
        .take(8)
        .map(|file| {
            let (name, body) = file.split_once('\n').unwrap_or((file, ""));
            (name.to_string(), body.to_string())
        })
        .collect();
    let _ = super::profiles(&files);
}

/// No `Retry-After` or `X-RateLimit-Reset` pauses a target beyond 120 s.
pub fn rate_limit(data: &[u8]) {
    let Some((retry_after, reset)) = structured::<(&[u8], &[u8])>(data) else {
        return;
    };
    let (scim, snipeit) = super::rate_limit_waits(retry_after, reset);
    let longest = Duration::from_secs(120);
    if let Some(wait) = scim {
        assert!(wait <= longest, "SCIM would pause {wait:?}");
    }
    if let Some(hold) = snipeit {
        assert!(hold <= longest, "Snipe-IT would hold {hold:?}");
    }
}

#[derive(Debug, Arbitrary)]
struct Hostile {
    organisation: String,
    given_name: String,
    family_name: String,
    display_name: String,
    department: String,
    location: String,
    manager: String,
    username: String,
    email: String,
    extra: String,
    model: String,
}

/// Appended to every field: in HTML it must arrive escaped.
const MARK: &str = "<hb-mark>";

/// The shipped templates and the lines each renders for the sample person.
fn shipped() -> &'static (Templates, Vec<(String, usize)>) {
    static LOADED: OnceLock<(Templates, Vec<(String, usize)>)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let templates = Templates::load(None).expect("the shipped templates load");
        let sample = BundleContext::sample();
        let lines = templates
            .names()
            .iter()
            .map(|name| {
                let text = templates.render(name, &sample).expect("the sample renders");
                (name.to_string(), text.lines().count())
            })
            .collect();
        (templates, lines)
    })
}

/// Every shipped template for a person whose fields are hostile: no field
/// adds a line to a text bundle (a config line of its own), and none
/// reaches an HTML bundle unescaped.
pub fn render(data: &[u8]) {
    let Some(hostile) = structured::<Hostile>(data) else {
        return;
    };
    let (templates, lines) = shipped();
    let mut context = BundleContext::sample();
    let marked = |s: String| format!("{s}{MARK}");
    context.organisation.name = marked(hostile.organisation);
    context.person.given_name = marked(hostile.given_name);
    context.person.family_name = marked(hostile.family_name);
    context.person.display_name = marked(hostile.display_name);
    context.person.department = Some(marked(hostile.department));
    context.person.location = Some(marked(hostile.location));
    context.person.manager = Some(marked(hostile.manager));
    context.person.extra = [("Kostenstelle".to_string(), marked(hostile.extra))].into();
    context.account.username = marked(hostile.username);
    context.account.email = marked(hostile.email);
    for device in &mut context.devices {
        device.model = marked(hostile.model.clone());
    }
    for (name, sample_lines) in lines {
        let text = templates
            .render(name, &context)
            .unwrap_or_else(|e| panic!("{name} failed on person data: {e}"));
        if name.contains(".html") {
            assert!(
                !text.contains(MARK),
                "{name}: a field reached the HTML unescaped"
            );
        } else {
            assert_eq!(
                text.lines().count(),
                *sample_lines,
                "{name}: a field added lines\n{text}"
            );
        }
    }
}

/// SCIM answer bodies as each call decodes them.
pub fn scim_body(data: &[u8]) {
    super::scim_body(data);
}

/// Snipe-IT answer bodies; an error message is one line of a report, never
/// a body.
pub fn snipeit_body(data: &[u8]) {
    let message = super::snipeit_body(data);
    assert!(
        message.chars().count() <= 200 || serde_json::from_slice::<serde_json::Value>(data).is_ok()
    );
}

/// The Snipe-IT pace never holds a 429 beyond 120 s.
pub fn snipeit_pace(data: &[u8]) {
    type Answers = Vec<(Option<u32>, Option<u32>, Option<u64>)>;
    let Some((per_minute, answers)) = structured::<(u32, Answers)>(data) else {
        return;
    };
    if answers.len() > 64 {
        return;
    }
    let longest = super::snipeit_pace(per_minute, &answers);
    assert!(longest <= Duration::from_secs(120), "held {longest:?}");
}

/// The staff-file loader from raw bytes, as CSV/TSV.
pub fn staff_csv(data: &[u8]) {
    let _ = super::load_staff_bytes("staff.csv", data.to_vec(), &InputOptions::default());
}

/// As YAML or JSON (the first byte chooses).
pub fn staff_structured(data: &[u8]) {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let name = if first % 2 == 0 {
        "staff.yaml"
    } else {
        "staff.json"
    };
    let _ = super::load_staff_bytes(name, rest.to_vec(), &InputOptions::default());
}

/// As XLSX.
pub fn staff_xlsx(data: &[u8]) {
    let _ = super::load_staff_bytes("staff.xlsx", data.to_vec(), &InputOptions::default());
}

/// `wg show dump`.
pub fn wg_dump(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(dump) = super::Dump::parse(text) {
        for peer in &dump.peers {
            let _ = peer.host_address();
        }
    }
}

/// The `wg-quick` reader: a rewrite keeps every hand-made peer (its key and
/// allowed IPs) as it was read.
pub fn wg_quick(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let file = super::ConfFile::parse(text);
    let foreign: Vec<_> = file.peers.iter().collect();
    let again = super::ConfFile::parse(&crate::targets::common::wg_quick::render(
        &file.interface,
        &[],
        &foreign,
    ));
    let keys = |f: &super::ConfFile| {
        f.peers
            .iter()
            .map(|p| (p.public_key.clone(), p.allowed_ips.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&file), keys(&again), "a rewrite changed the peers");
}
