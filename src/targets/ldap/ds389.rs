//! The 389 Directory Server flavour (`flavour: 389ds`; also the directory
//! of FreeIPA / Red Hat IdM). Accounts, names, expiry and groups are as in
//! OpenLDAP (`openldap.rs`); what differs (see docs/389ds.md):
//!
//! - Accounts also carry `nsAccount`, 389's class of entries that bind.
//! - Disabled: `nsAccountLock: TRUE` (an operational attribute the server
//!   checks on every bind: "Account inactivated"); enabled: removed. 389 has
//!   no `pwdAccountLockedTime`, and rejects it.
//! - Must-change: 389 ignores `pwdReset` on writes. Its password policy's
//!   `passwordMustChange: on` makes the server mark a password set by an
//!   administrator (`passwordExpirationTime: 19700101000000Z`) and hold the
//!   user to changing it. homebase cannot set that itself, so after setting
//!   a password that must be changed it reads the mark back, and a password
//!   without it fails the action (never reported as done).

use ldap3::{Mod, SearchEntry};

use super::entry::{first, replace, NewEntry};
use super::openldap;
use super::pool::Attrs;
use super::{Found, NewAccount};
use crate::plan::Account;

pub const USER_ATTRS: &[&str] = &[
    "uid",
    "employeeNumber",
    "givenName",
    "sn",
    "cn",
    "displayName",
    "mail",
    "departmentNumber",
    "shadowExpire",
    // Operational: returned only when asked for.
    LOCK_ATTR,
];
const LOCK_ATTR: &str = "nsAccountLock";
const LOCKED: &str = "TRUE";
/// What 389 stores in `passwordExpirationTime` for "must change at next
/// login": the start of the epoch.
pub const MUST_CHANGE_MARK: &str = "19700101000000Z";
pub const EXPIRATION_ATTR: &str = "passwordExpirationTime";

pub fn new_entry(new: &NewAccount<'_>) -> Attrs {
    let mut e: NewEntry = openldap::person(new, &["nsAccount"]);
    if let Some(password) = new.password {
        e.set("userPassword", password);
    }
    if !new.account.enabled {
        e.set(LOCK_ATTR, LOCKED);
    }
    e.into_attrs()
}

/// Every managed attribute as the account wants it, lock included.
pub fn all_mods(a: &Account, staff_id: &str) -> Vec<Mod<Vec<u8>>> {
    let mut mods = openldap::managed_mods(a, staff_id);
    mods.extend(enabled_mods(a.enabled));
    mods
}

pub fn enabled_mods(enabled: bool) -> Vec<Mod<Vec<u8>>> {
    vec![replace(LOCK_ATTR, (!enabled).then_some(LOCKED))]
}

/// The password only: must-change follows from the server's policy.
pub fn password_mods(password: &str) -> Vec<Mod<Vec<u8>>> {
    vec![replace("userPassword", Some(password))]
}

pub fn parse(entry: &SearchEntry) -> Found {
    let mut found = openldap::parse(entry);
    found.enabled = !is_locked(entry);
    found
}

/// `nsAccountLock` counts when it says true (389 compares it so too).
fn is_locked(entry: &SearchEntry) -> bool {
    first(entry, LOCK_ATTR).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Whether the entry's password is marked to be changed at the next login.
pub fn must_change_marked(entry: &SearchEntry) -> bool {
    first(entry, EXPIRATION_ATTR).is_some_and(|v| v.trim() == MUST_CHANGE_MARK)
}

#[cfg(test)]
mod tests {
    use super::super::entry::entry;
    use super::*;

    fn account(enabled: bool) -> Account {
        Account {
            username: "tmeyer".into(),
            given_name: "Tina".into(),
            family_name: "Meyer".into(),
            display_name: "Tina Meyer".into(),
            email: "t@example.org".into(),
            department: Some("IT".into()),
            groups: vec![],
            ou: None,
            expires: None,
            enabled,
        }
    }

    #[test]
    fn new_entries_are_ns_accounts_without_pwd_reset() {
        let a = account(false);
        let attrs = new_entry(&NewAccount {
            account: &a,
            staff_id: "P1",
            password: Some("pw"),
            must_change: true,
            posix: None,
            upn_suffix: "",
        });
        assert_eq!(
            NewEntry::get(&attrs, "objectClass"),
            ["inetOrgPerson", "nsAccount", "shadowAccount", "top"]
        );
        assert_eq!(NewEntry::get(&attrs, "pwdReset"), Vec::<String>::new());
        assert_eq!(
            NewEntry::get(&attrs, "pwdAccountLockedTime"),
            Vec::<String>::new()
        );
        assert_eq!(NewEntry::get(&attrs, "nsAccountLock"), ["TRUE"]);
        assert_eq!(NewEntry::get(&attrs, "employeeNumber"), ["P1"]);
        let enabled = account(true);
        let attrs = new_entry(&NewAccount {
            account: &enabled,
            staff_id: "P1",
            password: Some("pw"),
            must_change: true,
            posix: None,
            upn_suffix: "",
        });
        assert_eq!(NewEntry::get(&attrs, "nsAccountLock"), Vec::<String>::new());
    }

    #[test]
    fn lock_and_must_change_parse_back() {
        let locked = entry(
            "uid=tmeyer,ou=People,dc=x",
            &[("uid", &["tmeyer"]), ("nsAccountLock", &["true"])],
        );
        assert!(!parse(&locked).enabled);
        let open = entry(
            "uid=tmeyer,ou=People,dc=x",
            &[
                ("nsAccountLock", &["false"]),
                (EXPIRATION_ATTR, &[MUST_CHANGE_MARK]),
            ],
        );
        assert!(parse(&open).enabled);
        assert!(must_change_marked(&open));
        let later = entry("uid=a,dc=x", &[(EXPIRATION_ATTR, &["20270101000000Z"])]);
        assert!(!must_change_marked(&later));
    }
}
