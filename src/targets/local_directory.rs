//! The `local` directory: accounts live in the state store; this module exports
//! them as LDIF (`out/server/directory.ldif`) for import into a real directory.

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

/// Export accounts as `inetOrgPerson` entries under `ou=People,<base>` (or the
/// profile's `ou`), with `employeeNumber` = staff id. Disabled accounts carry
/// `description: disabled by homebase`.
pub fn render_ldif(base_dn: &str, accounts: &[(String, Account)]) -> String {
    let mut out = String::with_capacity(accounts.len() * 300);
    let _ = writeln!(out, "version: 1");
    for (id, account) in accounts {
        let ou = account
            .ou
            .clone()
            .unwrap_or_else(|| "ou=People".to_string());
        let dn = format!("uid={},{ou},{base_dn}", escape_dn_value(&account.username));
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
    out
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
    let ldif = render_ldif(&local.base_dn, &accounts);
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
        let ldif = render_ldif("dc=example,dc=org", &[("P1".into(), account)]);
        assert!(ldif.contains("dn: uid=jmueller,ou=People,dc=example,dc=org\n"));
        assert!(ldif.contains("sn:: TcO8bGxlcg==\n"));
        assert!(ldif.contains("departmentNumber:: Om9kZA==\n"));
        assert!(ldif.contains("employeeNumber: P1\n"));
    }
}
