//! Accounts with any field values written as LDIF (`local` directory) and
//! read back by `adopt`: every account comes back as it was written.
#![no_main]
use arbitrary::Arbitrary;
use homebase::plan::Account;
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|written: Vec<Written>| {
    if written.len() > 6 {
        return;
    }
    let accounts: Vec<(String, Account)> = written
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
    let base = "dc=example,dc=org";
    let text = homebase::fuzzing::render_ldif(base, &accounts);
    let read = homebase::fuzzing::parse_ldif(&text, base).unwrap_or_else(|(line, why)| {
        panic!("our own LDIF does not read back: line {line}: {why}\n{text}")
    });
    assert_eq!(read.len(), accounts.len(), "{text}");
    for ((id, account), back) in accounts.iter().zip(&read) {
        assert_eq!(back.staff_id.as_deref(), Some(id.as_str()), "{text}");
        assert_eq!(&back.account, account, "{text}");
    }
});
