//! The OpenLDAP flavour.
//!
//! - Accounts are `inetOrgPerson` + `shadowAccount` (+ `posixAccount` when the
//!   target has `posix:` numbers) named `uid=<username>`; the staff id is in
//!   `employeeNumber`, the name as written in `cn`/`displayName`/`givenName`/`sn`.
//! - The first password goes to `userPassword` in clear text over the (TLS)
//!   connection; the server hashes it (`ppolicy_hash_cleartext`).
//!   `must_change_password` sets ppolicy's `pwdReset`.
//! - Expiry: `shadowExpire` = the day after the last day, in days since 1970
//!   (what PAM/sssd enforce).
//! - Disabled: ppolicy's `pwdAccountLockedTime: 000001010000Z` (locked until an
//!   admin unlocks; binds are refused). Needs the ppolicy overlay with a
//!   default policy; without it the server rejects the attribute or ignores it.
//! - Groups are `groupOfNames` with `member` DNs.

use chrono::{Days, NaiveDate};
use ldap3::{Mod, SearchEntry};

use super::entry::{all, first, has, replace, NewEntry, MANAGED_FIELDS};
use super::escape::dn_value;
use super::pool::Attrs;
use super::{Found, NewAccount};
use crate::plan::Account;

pub const ID_ATTR: &str = "employeeNumber";
pub const NAME_ATTR: &str = "uid";
pub const USER_FILTER: &str = "(|(uid=*)(employeeNumber=*))";
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
    "pwdAccountLockedTime",
];
pub const GROUP_FILTER: &str = "(objectClass=groupOfNames)";
/// ppolicy's "locked until an administrator unlocks".
pub const LOCKED: &str = "000001010000Z";
const LOCK_ATTR: &str = "pwdAccountLockedTime";

pub fn rdn(username: &str) -> String {
    format!("uid={}", dn_value(username))
}

pub fn new_entry(new: &NewAccount<'_>) -> Attrs {
    let mut e = person(new, &[]);
    if let Some(password) = new.password {
        e.set("userPassword", password);
        if new.must_change {
            e.set("pwdReset", "TRUE");
        }
    }
    if !new.account.enabled {
        e.set(LOCK_ATTR, LOCKED);
    }
    e.into_attrs()
}

/// The person's attributes as an `inetOrgPerson` (+ `shadowAccount`, and
/// `posixAccount` with numbers), with `extra` object classes; 389-ds shares
/// it. Password and lock are the flavour's.
pub fn person(new: &NewAccount<'_>, extra: &[&'static str]) -> NewEntry {
    let a = new.account;
    let mut e = NewEntry::default();
    let mut classes = vec!["top", "inetOrgPerson", "shadowAccount"];
    classes.extend_from_slice(extra);
    if new.posix.is_some() {
        classes.push("posixAccount");
    }
    e.set_all("objectClass", &classes)
        .set("uid", a.username.as_str())
        .set("cn", a.display_name.as_str())
        .set("sn", a.family_name.as_str())
        .set("givenName", a.given_name.as_str())
        .set("displayName", a.display_name.as_str())
        .set("mail", a.email.as_str())
        .set_opt("departmentNumber", a.department.as_deref())
        .set("employeeNumber", new.staff_id)
        .set_opt("shadowExpire", a.expires.map(shadow_expire).as_deref());
    if let Some((uid, posix)) = new.posix {
        e.set("uidNumber", uid.to_string())
            .set("gidNumber", posix.gid_number.to_string())
            .set(
                "homeDirectory",
                posix.home_directory.replace("{username}", &a.username),
            )
            .set("loginShell", posix.login_shell.as_str());
    }
    e
}

/// Modifications for one changed field of the plan (groups, ou and enabled
/// are handled by the caller).
pub fn field_mods(field: &str, a: &Account) -> Vec<Mod<Vec<u8>>> {
    match field {
        "given_name" => vec![replace("givenName", Some(&a.given_name))],
        "family_name" => vec![replace("sn", Some(&a.family_name))],
        "display_name" => vec![
            replace("displayName", Some(&a.display_name)),
            replace("cn", Some(&a.display_name)),
        ],
        "email" => vec![replace("mail", Some(&a.email))],
        "department" => vec![replace("departmentNumber", a.department.as_deref())],
        "expires" => vec![replace(
            "shadowExpire",
            a.expires.map(shadow_expire).as_deref(),
        )],
        _ => Vec::new(),
    }
}

/// Every managed attribute as the account wants it: for taking over an
/// entry homebase created in an earlier, interrupted attempt.
pub fn all_mods(a: &Account, staff_id: &str) -> Vec<Mod<Vec<u8>>> {
    let mut mods = managed_mods(a, staff_id);
    mods.extend(enabled_mods(a.enabled));
    mods
}

/// The managed attributes and the staff id, without the lock (389-ds
/// shares these).
pub fn managed_mods(a: &Account, staff_id: &str) -> Vec<Mod<Vec<u8>>> {
    let mut mods: Vec<Mod<Vec<u8>>> = MANAGED_FIELDS
        .iter()
        .flat_map(|f| field_mods(f, a))
        .collect();
    mods.push(replace(ID_ATTR, Some(staff_id)));
    mods
}

pub fn enabled_mods(enabled: bool) -> Vec<Mod<Vec<u8>>> {
    vec![replace(LOCK_ATTR, (!enabled).then_some(LOCKED))]
}

pub fn password_mods(password: &str, must_change: bool) -> Vec<Mod<Vec<u8>>> {
    let mut mods = vec![replace("userPassword", Some(password))];
    if must_change {
        mods.push(replace("pwdReset", Some("TRUE")));
    }
    mods
}

pub fn parse(entry: &SearchEntry) -> Found {
    let text = |name: &str| first(entry, name).unwrap_or_default().to_string();
    Found {
        dn: entry.dn.clone(),
        username: first(entry, NAME_ATTR).map(str::to_string),
        staff_id: first(entry, ID_ATTR).map(str::to_string),
        given_name: text("givenName"),
        family_name: text("sn"),
        display_name: first(entry, "displayName")
            .or_else(|| all(entry, "cn").into_iter().next())
            .unwrap_or_default()
            .to_string(),
        email: text("mail"),
        department: first(entry, "departmentNumber").map(str::to_string),
        expires: first(entry, "shadowExpire").and_then(last_day),
        enabled: !has(entry, LOCK_ATTR),
        member_of: Vec::new(),
        upn: None,
    }
}

/// `shadowExpire` for an account whose last day is `last`: the day after,
/// in days since 1970-01-01.
pub fn shadow_expire(last: NaiveDate) -> String {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    ((last - epoch).num_days() + 1).to_string()
}

/// The last day of an account from its `shadowExpire`; none for -1/0/garbage.
pub fn last_day(value: &str) -> Option<NaiveDate> {
    let days: i64 = value.trim().parse().ok()?;
    if days <= 1 {
        return None;
    }
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    epoch.checked_add_days(Days::new(u64::try_from(days - 1).ok()?))
}

#[cfg(test)]
mod tests {
    use super::super::entry::entry;
    use super::*;
    use crate::targets::ldap::config::PosixConfig;

    fn account() -> Account {
        Account {
            username: "jmueller".into(),
            given_name: "Jürgen".into(),
            family_name: "Müller, Jürgen".into(),
            display_name: "Hans*)(uid=*".into(),
            email: "j@example.org".into(),
            department: None,
            groups: vec!["staff".into()],
            ou: None,
            expires: NaiveDate::from_ymd_opt(2026, 12, 31),
            enabled: true,
        }
    }

    #[test]
    fn expiry_is_the_day_after_the_last_day() {
        let last = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        assert_eq!(shadow_expire(last), "20819");
        assert_eq!(last_day("20819"), Some(last));
        assert_eq!(last_day("-1"), None);
        assert_eq!(last_day("0"), None);
        assert_eq!(last_day("x"), None);
    }

    #[test]
    fn new_entries_carry_names_literally() {
        let a = account();
        let posix = PosixConfig {
            uid_first: 10000,
            uid_last: 20000,
            gid_number: 500,
            home_directory: "/home/{username}".into(),
            login_shell: "/bin/bash".into(),
        };
        let attrs = new_entry(&NewAccount {
            account: &a,
            staff_id: "P1",
            password: Some("pw"),
            must_change: true,
            posix: Some((10001, &posix)),
            upn_suffix: "",
        });
        assert_eq!(NewEntry::get(&attrs, "cn"), ["Hans*)(uid=*"]);
        assert_eq!(NewEntry::get(&attrs, "sn"), ["Müller, Jürgen"]);
        assert_eq!(NewEntry::get(&attrs, "employeeNumber"), ["P1"]);
        assert_eq!(NewEntry::get(&attrs, "pwdReset"), ["TRUE"]);
        assert_eq!(NewEntry::get(&attrs, "homeDirectory"), ["/home/jmueller"]);
        assert_eq!(
            NewEntry::get(&attrs, "departmentNumber"),
            Vec::<String>::new()
        );
        assert_eq!(
            NewEntry::get(&attrs, "objectClass"),
            ["inetOrgPerson", "posixAccount", "shadowAccount", "top"]
        );
        assert_eq!(rdn("a+b"), "uid=a\\+b");
    }

    #[test]
    fn entries_parse_back() {
        let e = entry(
            "uid=jmueller,ou=People,dc=x",
            &[
                ("uid", &["jmueller"]),
                ("employeeNumber", &["P1"]),
                ("cn", &["Jürgen Müller"]),
                ("sn", &["Müller"]),
                ("mail", &["j@x"]),
                ("shadowExpire", &["20819"]),
                ("pwdAccountLockedTime", &[LOCKED]),
            ],
        );
        let found = parse(&e);
        assert_eq!(found.display_name, "Jürgen Müller");
        assert_eq!(found.staff_id.as_deref(), Some("P1"));
        assert_eq!(found.given_name, "");
        assert!(!found.enabled);
        assert_eq!(found.expires, NaiveDate::from_ymd_opt(2026, 12, 31));
    }
}
