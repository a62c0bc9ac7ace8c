//! The `local` directory: accounts live in the state store; this module exports
//! them as LDIF (`out/server/directory.ldif`) for import into a real directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use std::fmt::Write;

use base64::Engine;

use crate::plan::Account;

/// Escape a value for one RDN of a DN (RFC 4514 §2.4).
pub use super::ldap::escape::dn_value as escape_dn_value;

/// One `attr: value` line; values that LDIF cannot carry plainly (non-ASCII,
/// leading space, colon or `<`, trailing space) are base64 (`attr:: …`).
fn attr(out: &mut String, name: &str, value: &str) {
    let safe = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        let _ = writeln!(out, "{name}: {value}");
    } else {
        let _ = writeln!(
            out,
            "{name}:: {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        );
    }
}

/// The container of entries whose account names no `ou`.
const DEFAULT_OU: &str = "ou=People";
/// The container of the group entries.
const GROUPS_OU: &str = "ou=Groups";

fn account_dn(base_dn: &str, account: &Account) -> String {
    let ou = account.ou.as_deref().unwrap_or(DEFAULT_OU);
    format!("uid={},{ou},{base_dn}", escape_dn_value(&account.username))
}

/// Export accounts as `inetOrgPerson` entries under `ou=People,<base>` (or the
/// profile's `ou`), with `employeeNumber` = staff id, then every group as a
/// `groupOfNames` under `ou=Groups,<base>` with its members. Disabled
/// accounts carry `description: disabled by homebase`. `homebase adopt`
/// reads it back ([`read_ldif`]). Entries come in username order (bytewise,
/// whatever order `accounts` has), so the export is the same from the
/// store's rows and from a plan's map by staff id.
pub fn render_ldif<'a>(
    base_dn: &str,
    accounts: impl IntoIterator<Item = (&'a str, &'a Account)>,
) -> String {
    let mut accounts: Vec<(&str, &Account)> = accounts.into_iter().collect();
    accounts.sort_by(|a, b| a.1.username.cmp(&b.1.username));
    let mut out = String::with_capacity(accounts.len() * 300);
    let _ = writeln!(out, "version: 1");
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (id, account) in accounts {
        let dn = account_dn(base_dn, account);
        for group in &account.groups {
            groups.entry(group).or_default().push(dn.clone());
        }
        out.push('\n');
        attr(&mut out, "dn", &dn);
        let _ = writeln!(out, "objectClass: inetOrgPerson");
        attr(&mut out, "uid", &account.username);
        attr(&mut out, "cn", &account.display_name);
        attr(&mut out, "sn", &account.family_name);
        if !account.given_name.is_empty() {
            attr(&mut out, "givenName", &account.given_name);
        }
        attr(&mut out, "displayName", &account.display_name);
        attr(&mut out, "mail", &account.email);
        attr(&mut out, "employeeNumber", id);
        if let Some(department) = &account.department {
            attr(&mut out, "departmentNumber", department);
        }
        if let Some(expires) = account.expires {
            let _ = writeln!(out, "description: expires {expires}");
        }
        if !account.enabled {
            let _ = writeln!(out, "description: disabled by homebase");
        }
    }
    for (group, members) in groups {
        out.push('\n');
        attr(
            &mut out,
            "dn",
            &format!("cn={},{GROUPS_OU},{base_dn}", escape_dn_value(group)),
        );
        let _ = writeln!(out, "objectClass: groupOfNames");
        attr(&mut out, "cn", group);
        for member in members {
            attr(&mut out, "member", &member);
        }
    }
    out
}

/// `(staff id, account)` rows as [`render_ldif`] takes them.
pub fn pairs(accounts: &[(String, Account)]) -> impl Iterator<Item = (&str, &Account)> {
    accounts.iter().map(|(id, account)| (id.as_str(), account))
}

/// One LDIF entry: attribute (lower-cased) → values, in order.
type LdifEntry = BTreeMap<String, Vec<String>>;

/// The entries of an LDIF file.
/// Enough LDIF for what [`render_ldif`] writes and a hand edit of it:
/// `attr: value`, `attr:: base64`, folded lines, comments.
fn parse_entries(text: &str) -> Result<Vec<LdifEntry>, (usize, String)> {
    let mut entries = Vec::new();
    let mut entry = LdifEntry::new();
    // Unfold first: a line starting with one space continues the previous one.
    let mut lines: Vec<(usize, String)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match (line.strip_prefix(' '), lines.last_mut()) {
            (Some(rest), Some((_, last))) if !last.is_empty() => last.push_str(rest),
            _ => lines.push((n + 1, line.to_string())),
        }
    }
    lines.push((0, String::new()));
    for (number, line) in lines {
        if line.is_empty() {
            if !entry.is_empty() {
                entries.push(std::mem::take(&mut entry));
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        // The name ends at the first colon; a second one right after it
        // marks base64 (a plain value may hold `:: ` itself).
        let Some((name, rest)) = line.split_once(':') else {
            return Err((number, format!("not `attribute: value`: {line:?}")));
        };
        let value = if let Some(b64) = rest.strip_prefix(':') {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| (number, format!("bad base64 value of {name}: {e}")))?;
            String::from_utf8(bytes)
                .map_err(|_| (number, format!("the value of {name} is not UTF-8")))?
        } else {
            rest.trim_start().to_string()
        };
        let name = name.to_string();
        if name.eq_ignore_ascii_case("version") && entry.is_empty() {
            continue;
        }
        entry
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value);
    }
    Ok(entries)
}

/// The accounts of an LDIF export of the `local` directory, for `homebase
/// adopt`. Group memberships come from the `groupOfNames` entries. No remote
/// id: the local directory records none (the DN follows from the username).
/// `Ok(None)` when the file does not exist.
pub fn read_ldif(
    path: &std::path::Path,
    base_dn: &str,
) -> anyhow::Result<Option<Vec<super::ExistingAccount>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    };
    let accounts =
        parse_ldif(&text, base_dn).map_err(|(line, why)| {
            crate::error::Failure::Invalid(crate::error::Problems(vec![
                crate::error::Problem::new(path.display().to_string(), why).at_line(line),
            ]))
        })?;
    Ok(Some(accounts))
}

/// The accounts of an LDIF text (see [`read_ldif`]); a broken line as its
/// number and what is wrong with it.
pub fn parse_ldif(
    text: &str,
    base_dn: &str,
) -> Result<Vec<super::ExistingAccount>, (usize, String)> {
    let entries = parse_entries(text)?;
    let first = |e: &LdifEntry, name: &str| e.get(name).and_then(|v| v.first()).cloned();
    let mut memberships: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in &entries {
        let classes = entry.get("objectclass").cloned().unwrap_or_default();
        if classes
            .iter()
            .any(|c| c.eq_ignore_ascii_case("groupOfNames"))
        {
            let Some(group) = first(entry, "cn") else {
                continue;
            };
            for member in entry.get("member").into_iter().flatten() {
                memberships
                    .entry(member.to_ascii_lowercase())
                    .or_default()
                    .push(group.clone());
            }
        }
    }
    let suffix = format!(",{base_dn}");
    let mut accounts = Vec::new();
    for entry in &entries {
        let (Some(dn), Some(username)) = (first(entry, "dn"), first(entry, "uid")) else {
            continue;
        };
        let descriptions = entry.get("description").cloned().unwrap_or_default();
        // `uid=NAME,<ou>,<base>`: the ou is what lies between.
        let container = dn
            .len()
            .checked_sub(suffix.len())
            .filter(|&end| dn.is_char_boundary(end) && dn[end..].eq_ignore_ascii_case(&suffix))
            .map(|end| super::ldap::escape::split_first(&dn[..end]).1.to_string())
            .filter(|ou| !ou.is_empty());
        let ou = container.filter(|ou| !ou.eq_ignore_ascii_case(DEFAULT_OU));
        let mut groups = memberships
            .remove(&dn.to_ascii_lowercase())
            .unwrap_or_default();
        groups.sort();
        groups.dedup();
        let display_name = first(entry, "displayname")
            .or_else(|| first(entry, "cn"))
            .unwrap_or_default();
        accounts.push(super::ExistingAccount {
            principal: None,
            staff_id: first(entry, "employeenumber"),
            remote_id: None,
            account: Account {
                username,
                given_name: first(entry, "givenname").unwrap_or_default(),
                family_name: first(entry, "sn").unwrap_or_default(),
                display_name,
                email: first(entry, "mail").unwrap_or_default(),
                department: first(entry, "departmentnumber"),
                groups,
                ou,
                expires: descriptions.iter().find_map(|d| {
                    d.strip_prefix("expires ")
                        .and_then(|day| day.trim().parse().ok())
                }),
                enabled: !descriptions.iter().any(|d| d == "disabled by homebase"),
            },
        });
    }
    Ok(accounts)
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalDirectory {
    /// LDIF export of all accounts (relative to `out`).
    #[serde(default = "default_ldif")]
    pub ldif: PathBuf,
    /// Base DN of the exported entries.
    #[serde(default = "default_base_dn")]
    pub base_dn: String,
    #[serde(flatten)]
    pub limits: Limits,
}

fn default_ldif() -> PathBuf {
    PathBuf::from("server/directory.ldif")
}
fn default_base_dn() -> String {
    "dc=example,dc=org".into()
}

/// After an apply: the LDIF export again from the store's accounts.
pub fn finish(
    name: &str,
    local: &LocalDirectory,
    settings: &crate::settings::Settings,
    store: &crate::state::Store,
) -> anyhow::Result<()> {
    let accounts = store.accounts(name)?;
    let ldif = render_ldif(&local.base_dn, pairs(&accounts));
    crate::apply::fsutil::write_if_changed(
        &settings.out_path(&local.ldif),
        ldif.as_bytes(),
        Some(0o644),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldif_base64s_what_it_must() {
        let account = Account {
            username: "jmueller".into(),
            given_name: "Jürgen".into(),
            family_name: "Müller".into(),
            display_name: "Jürgen Müller".into(),
            email: "j@example.org".into(),
            department: Some(":odd".into()),
            groups: vec![],
            ou: None,
            expires: None,
            enabled: true,
        };
        let ldif = render_ldif("dc=example,dc=org", [("P1", &account)]);
        assert!(ldif.contains("dn: uid=jmueller,ou=People,dc=example,dc=org\n"));
        assert!(ldif.contains("sn:: TcO8bGxlcg==\n"));
        assert!(ldif.contains("departmentNumber:: Om9kZA==\n"));
        assert!(ldif.contains("employeeNumber: P1\n"));
    }

    #[test]
    fn ldif_reads_back_what_it_wrote() {
        let account = |username: &str, ou: Option<&str>, enabled: bool| Account {
            username: username.into(),
            given_name: "Jürgen".into(),
            family_name: "Müller".into(),
            display_name: "Jürgen Müller".into(),
            email: format!("{username}@example.org"),
            department: Some("Kämmerei".into()),
            groups: vec!["staff".into(), "vpn, users".into()],
            ou: ou.map(String::from),
            expires: Some("2027-01-31".parse().unwrap()),
            enabled,
        };
        let accounts = vec![
            ("P1".to_string(), account("jmueller", None, true)),
            (
                "P2".to_string(),
                account("jmueller2", Some("ou=Benutzer"), false),
            ),
        ];
        let ldif = render_ldif("dc=example,dc=org", pairs(&accounts));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.ldif");
        std::fs::write(&path, &ldif).unwrap();
        let read = read_ldif(&path, "dc=example,dc=org").unwrap().unwrap();
        let back: Vec<(String, Account)> = read
            .into_iter()
            .map(|e| (e.staff_id.unwrap(), e.account))
            .collect();
        assert_eq!(back, accounts);
        assert_eq!(render_ldif("dc=example,dc=org", pairs(&back)), ldif);
    }

    /// Found by the `ldif_roundtrip` fuzz target: a plain value holding
    /// `:: ` (`cn: Team:: Nord`) was split there and read as base64.
    #[test]
    fn a_plain_value_with_two_colons_reads_back() {
        let account = Account {
            username: "nord".into(),
            given_name: String::new(),
            family_name: "Nord".into(),
            display_name: "Team:: Nord".into(),
            email: "a:: b".into(),
            department: None,
            groups: vec![],
            ou: None,
            expires: None,
            enabled: true,
        };
        let ldif = render_ldif("dc=example,dc=org", [("P1", &account)]);
        assert!(ldif.contains("\ncn: Team:: Nord\n"), "{ldif}");
        let read = parse_ldif(&ldif, "dc=example,dc=org").unwrap();
        assert_eq!(read[0].account, account);
    }
}
