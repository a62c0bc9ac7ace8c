//! The Active Directory flavour (also Samba AD).
//!
//! - Accounts are `user` objects named `CN=<username>` with `sAMAccountName`
//!   (≤ 20 characters), `userPrincipalName` = username@upn_suffix, the staff
//!   id in `employeeID`, the name as written in `displayName`/`givenName`/`sn`.
//! - The first password goes to `unicodePwd` (quoted, UTF-16LE) in the add
//!   itself, which AD accepts only over an encrypted connection;
//!   `must_change_password` sets `pwdLastSet: 0`.
//! - `userAccountControl`: 512 (normal, enabled) or 514 (disabled); on updates
//!   only the disable bit (2) is flipped and other flags are kept.
//! - Expiry: `accountExpires` = the start (00:00 UTC) of the day after the
//!   last day, in 100 ns since 1601 (0 or 2^63-1: never).
//! - Groups: `member` of the group; the user's `memberOf` is read back (it
//!   needs no ranged retrieval of large groups).

use chrono::{Days, NaiveDate};
use ldap3::{Mod, SearchEntry};

use super::entry::{all, first, replace, replace_bytes, NewEntry, MANAGED_FIELDS};
use super::escape::dn_value;
use super::pool::Attrs;
use super::{Found, NewAccount};
use crate::plan::Account;

pub const ID_ATTR: &str = "employeeID";
pub const NAME_ATTR: &str = "sAMAccountName";
/// Every security principal: their sAMAccountNames are unique together.
pub const USER_FILTER: &str = "(|(sAMAccountName=*)(employeeID=*))";
pub const USER_ATTRS: &[&str] = &[
    "sAMAccountName",
    "employeeID",
    "givenName",
    "sn",
    "displayName",
    "mail",
    "department",
    "accountExpires",
    "userAccountControl",
    "memberOf",
    "userPrincipalName",
];
pub const UAC_ATTR: &str = "userAccountControl";
pub const UAC_NORMAL: u32 = 512;
pub const UAC_DISABLED: u32 = 2;
/// Seconds from 1601-01-01 to 1970-01-01.
const FILETIME_EPOCH: i64 = 11_644_473_600;

pub fn rdn(username: &str) -> String {
    format!("CN={}", dn_value(username))
}

pub fn new_entry(new: &NewAccount<'_>) -> Attrs {
    let a = new.account;
    let mut e = NewEntry::default();
    e.set_all(
        "objectClass",
        &["top", "person", "organizationalPerson", "user"],
    )
    .set("cn", a.username.as_str())
    .set("sAMAccountName", a.username.as_str())
    .set(
        "userPrincipalName",
        format!("{}@{}", a.username, new.upn_suffix),
    )
    .set("givenName", a.given_name.as_str())
    .set("sn", a.family_name.as_str())
    .set("displayName", a.display_name.as_str())
    .set("mail", a.email.as_str())
    .set_opt("department", a.department.as_deref())
    .set("employeeID", new.staff_id)
    .set_opt("accountExpires", a.expires.map(account_expires).as_deref());
    let mut uac = UAC_NORMAL;
    match new.password {
        Some(password) => {
            e.set("unicodePwd", unicode_pwd(password));
            if new.must_change {
                e.set("pwdLastSet", "0");
            }
        }
        // No password, no enabled account (AD refuses one anyway).
        None => uac |= UAC_DISABLED,
    }
    if !a.enabled {
        uac |= UAC_DISABLED;
    }
    e.set(UAC_ATTR, uac.to_string());
    e.into_attrs()
}

/// Modifications for one changed field of the plan.
pub fn field_mods(field: &str, a: &Account) -> Vec<Mod<Vec<u8>>> {
    match field {
        "given_name" => vec![replace("givenName", Some(&a.given_name))],
        "family_name" => vec![replace("sn", Some(&a.family_name))],
        "display_name" => vec![replace("displayName", Some(&a.display_name))],
        "email" => vec![replace("mail", Some(&a.email))],
        "department" => vec![replace("department", a.department.as_deref())],
        "expires" => vec![replace(
            "accountExpires",
            // AD has no "absent" here: never is 0.
            Some(&a.expires.map(account_expires).unwrap_or_else(|| "0".into())),
        )],
        _ => Vec::new(),
    }
}

/// Every managed attribute as the account wants it (taking over an entry of
/// an earlier, interrupted attempt); the account control is set separately.
pub fn all_mods(a: &Account, staff_id: &str) -> Vec<Mod<Vec<u8>>> {
    let mut mods: Vec<Mod<Vec<u8>>> = MANAGED_FIELDS
        .iter()
        .flat_map(|f| field_mods(f, a))
        .collect();
    mods.push(replace(ID_ATTR, Some(staff_id)));
    mods
}

/// The account control with the disable bit set or cleared.
pub fn uac_mods(current: u32, enabled: bool) -> Vec<Mod<Vec<u8>>> {
    let uac = if enabled {
        current & !UAC_DISABLED
    } else {
        current | UAC_DISABLED
    };
    vec![replace(UAC_ATTR, Some(&uac.to_string()))]
}

pub fn password_mods(password: &str, must_change: bool) -> Vec<Mod<Vec<u8>>> {
    let mut mods = vec![replace_bytes("unicodePwd", unicode_pwd(password))];
    if must_change {
        mods.push(replace("pwdLastSet", Some("0")));
    }
    mods
}

/// AD's password attribute value: the password in double quotes, UTF-16LE.
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

pub fn parse(entry: &SearchEntry) -> Found {
    let text = |name: &str| first(entry, name).unwrap_or_default().to_string();
    let uac: u32 = first(entry, UAC_ATTR)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(UAC_NORMAL);
    Found {
        dn: entry.dn.clone(),
        username: first(entry, NAME_ATTR).map(str::to_string),
        staff_id: first(entry, ID_ATTR).map(str::to_string),
        given_name: text("givenName"),
        family_name: text("sn"),
        display_name: text("displayName"),
        email: text("mail"),
        department: first(entry, "department").map(str::to_string),
        expires: first(entry, "accountExpires").and_then(last_day),
        enabled: uac & UAC_DISABLED == 0,
        member_of: all(entry, "memberOf")
            .into_iter()
            .map(str::to_string)
            .collect(),
        upn: first(entry, "userPrincipalName").map(str::to_string),
    }
}

/// `accountExpires` for an account whose last day is `last`.
pub fn account_expires(last: NaiveDate) -> String {
    let next = last
        .checked_add_days(Days::new(1))
        .unwrap_or(last)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp();
    ((next + FILETIME_EPOCH) * 10_000_000).to_string()
}

/// The last day from `accountExpires`. Half a day is taken off first, so a
/// midnight set in any time zone (as the admin tools do) gives the same day.
pub fn last_day(value: &str) -> Option<NaiveDate> {
    let ticks: i64 = value.trim().parse().ok()?;
    if ticks <= 0 || ticks == i64::MAX {
        return None;
    }
    let secs = ticks / 10_000_000 - FILETIME_EPOCH - 12 * 3600;
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.date_naive())
}

#[cfg(test)]
mod tests {
    use super::super::entry::entry;
    use super::*;

    #[test]
    fn passwords_are_quoted_utf16le() {
        assert_eq!(unicode_pwd("aß"), vec![b'"', 0, b'a', 0, 0xdf, 0, b'"', 0]);
    }

    #[test]
    fn expiry_round_trips() {
        let last = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let value = account_expires(last);
        // 2027-01-01T00:00:00Z
        assert_eq!(value, "134432352000000000");
        assert_eq!(last_day(&value), Some(last));
        // Midnight in Berlin (23:00 UTC the day before) is the same day.
        assert_eq!(last_day("134432316000000000"), Some(last));
        assert_eq!(last_day("0"), None);
        assert_eq!(last_day("9223372036854775807"), None);
    }

    #[test]
    fn new_users_are_enabled_with_a_password_only() {
        let a = Account {
            username: "jmueller".into(),
            given_name: "".into(),
            family_name: "Müller".into(),
            display_name: "Müller, Jürgen".into(),
            email: "j@x".into(),
            department: Some("IT".into()),
            groups: vec![],
            ou: None,
            expires: None,
            enabled: true,
        };
        let mut new = NewAccount {
            account: &a,
            staff_id: "P1",
            password: Some("pw"),
            must_change: true,
            posix: None,
            upn_suffix: "test.lan",
        };
        let attrs = new_entry(&new);
        assert_eq!(NewEntry::get(&attrs, UAC_ATTR), ["512"]);
        assert_eq!(NewEntry::get(&attrs, "pwdLastSet"), ["0"]);
        assert_eq!(
            NewEntry::get(&attrs, "userPrincipalName"),
            ["jmueller@test.lan"]
        );
        assert_eq!(NewEntry::get(&attrs, "givenName"), Vec::<String>::new());
        new.password = None;
        assert_eq!(NewEntry::get(&new_entry(&new), UAC_ATTR), ["514"]);
    }

    #[test]
    fn the_disable_bit_keeps_other_flags() {
        let flags = |mods: Vec<Mod<Vec<u8>>>| match &mods[0] {
            Mod::Replace(_, v) => String::from_utf8(v.iter().next().unwrap().clone()).unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(flags(uac_mods(512, false)), "514");
        assert_eq!(flags(uac_mods(66048, false)), "66050");
        assert_eq!(flags(uac_mods(514, true)), "512");
    }

    #[test]
    fn users_parse_back() {
        let e = entry(
            "CN=jmueller,CN=Users,DC=test,DC=lan",
            &[
                ("sAMAccountName", &["jmueller"]),
                ("employeeID", &["P1"]),
                ("userAccountControl", &["514"]),
                ("memberOf", &["CN=staff,CN=Users,DC=test,DC=lan"]),
                ("accountExpires", &["9223372036854775807"]),
            ],
        );
        let found = parse(&e);
        assert!(!found.enabled);
        assert_eq!(found.expires, None);
        assert_eq!(found.member_of.len(), 1);
    }
}
