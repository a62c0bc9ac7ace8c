//! The one place where `homebase adopt` matches what a target already holds
//! to persons of the staff list, the same for every kind: by the staff id
//! the account carries, then by the mapping file, then by e-mail (UPN) or
//! username, then by full name when exactly one person and one account
//! have it. A match that fits several persons, or a person claimed by
//! several accounts, is listed as ambiguous — never guessed.

use std::collections::BTreeMap;

use crate::input::Person;
use crate::plan::{Observed, PersonPlan, PersonStatus};
use crate::targets::ExistingAccount;

use super::{normalize, MappingRow};

/// How an account was matched to its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Via {
    StaffId,
    Mapping {
        line: usize,
    },
    Email,
    /// Active Directory's `userPrincipalName`, as an e-mail or by its name part.
    Principal,
    Username,
    FullName,
}

impl Via {
    pub fn describe(self) -> String {
        match self {
            Via::StaffId => "staff id".into(),
            Via::Mapping { line } => format!("mapping line {line}"),
            Via::Email => "e-mail".into(),
            Via::Principal => "userPrincipalName".into(),
            Via::Username => "username".into(),
            Via::FullName => "full name".into(),
        }
    }
}

pub struct Adopted<'p> {
    pub person: &'p PersonPlan,
    pub existing: ExistingAccount,
    pub via: Via,
}

#[derive(Default)]
pub struct AccountReport<'p> {
    pub source: String,
    pub total: usize,
    pub adopted: Vec<Adopted<'p>>,
    /// Already on our books.
    pub known: usize,
    /// (account, why): fits several persons, or its person is claimed twice.
    pub ambiguous: Vec<(String, String)>,
    /// Matches nobody listed: left alone.
    pub unmatched: usize,
}

/// Persons by what an account may carry of them.
pub struct Index<'p> {
    by_id: BTreeMap<&'p str, &'p PersonPlan>,
    by_email: BTreeMap<String, Vec<&'p PersonPlan>>,
    by_username: BTreeMap<String, Vec<&'p PersonPlan>>,
    by_name: BTreeMap<String, Vec<&'p PersonPlan>>,
}

impl<'p> Index<'p> {
    pub fn new(plans: &'p [PersonPlan], persons: &[Person]) -> Index<'p> {
        let emails: BTreeMap<&str, &str> = persons
            .iter()
            .filter_map(|p| Some((p.id.as_str(), p.email.as_deref()?)))
            .collect();
        let mut index = Index {
            by_id: BTreeMap::new(),
            by_email: BTreeMap::new(),
            by_username: BTreeMap::new(),
            by_name: BTreeMap::new(),
        };
        for plan in plans {
            index.by_id.insert(plan.id.as_str(), plan);
            if let Some(email) = emails.get(plan.id.as_str()) {
                index
                    .by_email
                    .entry(normalize(email))
                    .or_default()
                    .push(plan);
            }
            index
                .by_username
                .entry(normalize(&plan.username))
                .or_default()
                .push(plan);
            index
                .by_name
                .entry(normalize(&plan.display_name))
                .or_default()
                .push(plan);
        }
        index
    }

    pub fn person(&self, id: &str) -> Option<&'p PersonPlan> {
        self.by_id.get(id).copied()
    }
}

/// What an account's label is in reports: its username, else its id.
pub fn label(existing: &ExistingAccount) -> String {
    if existing.account.username.is_empty() {
        existing.remote_id.clone().unwrap_or_default()
    } else {
        existing.account.username.clone()
    }
}

/// Match the accounts of one directory target. Mapping rows that name an
/// account of this target are marked used in `used_rows`.
pub fn match_accounts<'p>(
    target: &str,
    source: String,
    existing: Vec<ExistingAccount>,
    index: &Index<'p>,
    mapping: &[MappingRow],
    observed: &Observed,
    used_rows: &mut Vec<usize>,
) -> AccountReport<'p> {
    let ours = observed.accounts.get(target);
    let known_usernames: Vec<String> = ours
        .map(|a| a.values().map(|a| normalize(&a.username)).collect())
        .unwrap_or_default();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for e in &existing {
        *names.entry(normalize(&e.account.display_name)).or_default() += 1;
    }
    let mut report = AccountReport {
        source,
        total: existing.len(),
        ..AccountReport::default()
    };
    let mut candidates: Vec<(ExistingAccount, &'p PersonPlan, Via)> = Vec::new();
    for e in existing {
        let username = normalize(&e.account.username);
        if !username.is_empty() && known_usernames.contains(&username) {
            report.known += 1;
            continue;
        }
        let found = find(&e, index, mapping, &names, used_rows);
        match found {
            Found::One(person, via) => candidates.push((e, person, via)),
            Found::Several(why) => report.ambiguous.push((label(&e), why)),
            Found::Nobody => report.unmatched += 1,
        }
    }
    let mut claims: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, person, _) in &candidates {
        *claims.entry(person.id.as_str()).or_default() += 1;
    }
    for (e, person, via) in candidates {
        let who = format!("{} ({})", person.id, person.display_name);
        if claims[person.id.as_str()] > 1 {
            report
                .ambiguous
                .push((label(&e), format!("{who} is matched by several accounts")));
        } else if ours.is_some_and(|a| a.contains_key(&person.id)) {
            report.ambiguous.push((
                label(&e),
                format!("{who} has another account on \"{target}\" already"),
            ));
        } else if person.status == PersonStatus::Withdrawn {
            report
                .ambiguous
                .push((label(&e), format!("{who} is withdrawn")));
        } else {
            report.adopted.push(Adopted {
                person,
                existing: e,
                via,
            });
        }
    }
    report.adopted.sort_by(|a, b| a.person.id.cmp(&b.person.id));
    report
}

enum Found<'p> {
    One(&'p PersonPlan, Via),
    Several(String),
    Nobody,
}

fn one<'p>(persons: Option<&Vec<&'p PersonPlan>>, via: Via, what: &str) -> Found<'p> {
    match persons.map(Vec::as_slice) {
        Some([person]) => Found::One(person, via),
        Some(several) if several.len() > 1 => Found::Several(format!(
            "its {what} fits {} persons ({})",
            several.len(),
            several
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => Found::Nobody,
    }
}

fn find<'p>(
    e: &ExistingAccount,
    index: &Index<'p>,
    mapping: &[MappingRow],
    names: &BTreeMap<String, usize>,
    used_rows: &mut Vec<usize>,
) -> Found<'p> {
    // A staff id is the directory's own word: a foreign one is someone else.
    if let Some(id) = e.staff_id.as_deref().filter(|id| !id.is_empty()) {
        return match index.person(id) {
            Some(person) => Found::One(person, Via::StaffId),
            None => Found::Nobody,
        };
    }
    let username = normalize(&e.account.username);
    let remote = e.remote_id.as_deref().map(normalize).unwrap_or_default();
    for row in mapping {
        let Some(account) = row.account.as_deref().map(normalize) else {
            continue;
        };
        if account == username || (!remote.is_empty() && account == remote) {
            used_rows.push(row.line);
            // Unknown staff ids were refused before any matching.
            if let Some(person) = index.person(&row.staff_id) {
                return Found::One(person, Via::Mapping { line: row.line });
            }
        }
    }
    let email = normalize(&e.account.email);
    if !email.is_empty() {
        match one(index.by_email.get(&email), Via::Email, "e-mail") {
            Found::Nobody => {}
            found => return found,
        }
    }
    // AD: the UPN is often the e-mail address; else its name part is the
    // logon name of another naming rule.
    let principal = e.principal.as_deref().map(normalize).unwrap_or_default();
    if !principal.is_empty() {
        match one(
            index.by_email.get(&principal),
            Via::Principal,
            "userPrincipalName",
        ) {
            Found::Nobody => {}
            found => return found,
        }
        let name_part = principal.split('@').next().unwrap_or_default().to_string();
        if !name_part.is_empty() && name_part != username {
            match one(
                index.by_username.get(&name_part),
                Via::Principal,
                "userPrincipalName",
            ) {
                Found::Nobody => {}
                found => return found,
            }
        }
    }
    if !username.is_empty() {
        match one(index.by_username.get(&username), Via::Username, "username") {
            Found::Nobody => {}
            found => return found,
        }
    }
    let name = normalize(&e.account.display_name);
    if name.is_empty() {
        return Found::Nobody;
    }
    if names.get(&name).copied().unwrap_or(0) > 1 {
        return match index.by_name.get(&name) {
            Some(persons) if !persons.is_empty() => Found::Several(format!(
                "{} accounts have the name \"{}\"",
                names[&name], e.account.display_name
            )),
            _ => Found::Nobody,
        };
    }
    one(index.by_name.get(&name), Via::FullName, "full name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Account;

    fn plan(id: &str, username: &str, name: &str) -> PersonPlan {
        PersonPlan {
            id: id.into(),
            username: username.into(),
            display_name: name.into(),
            profile: "office".into(),
            department: None,
            expires: None,
            status: PersonStatus::New,
            reason: None,
            username_reason: None,
            sensitive: false,
            actions: Vec::new(),
        }
    }

    fn account(username: &str, name: &str, email: &str, staff_id: Option<&str>) -> ExistingAccount {
        ExistingAccount {
            principal: None,
            staff_id: staff_id.map(String::from),
            account: Account {
                username: username.into(),
                given_name: String::new(),
                family_name: String::new(),
                display_name: name.into(),
                email: email.into(),
                department: None,
                groups: Vec::new(),
                ou: None,
                expires: None,
                enabled: true,
            },
            remote_id: Some(format!("uid={username},dc=example")),
        }
    }

    fn persons() -> (Vec<PersonPlan>, Vec<Person>) {
        let plans = vec![
            plan("P1", "jmueller", "Jürgen Müller"),
            plan("P2", "emuster", "Erika Muster"),
            plan("P3", "omuster", "Otto Muster"),
            plan("P4", "akoch", "Anna Koch"),
            plan("P5", "lweber", "Lena Weber"),
        ];
        let mut people: Vec<Person> = plans
            .iter()
            .map(|p| {
                let (given, family) = p.display_name.split_once(' ').unwrap();
                Person::example(&p.id, given, family)
            })
            .collect();
        people[1].email = Some("Erika.Muster@example.org".into());
        (plans, people)
    }

    fn run(existing: Vec<ExistingAccount>, mapping: &[MappingRow]) -> Vec<(String, String)> {
        let (plans, people) = persons();
        let index = Index::new(&plans, &people);
        let mut used = Vec::new();
        let report = match_accounts(
            "dir",
            "test".into(),
            existing,
            &index,
            mapping,
            &Observed::default(),
            &mut used,
        );
        let mut out: Vec<(String, String)> = report
            .adopted
            .iter()
            .map(|a| (a.person.id.clone(), a.via.describe()))
            .collect();
        out.extend(
            report
                .ambiguous
                .iter()
                .map(|(label, why)| (format!("? {label}"), why.clone())),
        );
        out.push(("unmatched".into(), report.unmatched.to_string()));
        out
    }

    #[test]
    fn an_ad_principal_name_matches_as_an_e_mail_or_by_its_name_part() {
        let with_upn = |username: &str, upn: &str| {
            let mut a = account(username, "", "", None);
            a.principal = Some(upn.into());
            a
        };
        let got = run(
            vec![
                // The UPN is the person's address (the mail attribute is empty).
                with_upn("EMuster01", "erika.muster@EXAMPLE.org"),
                // Another logon name; the UPN's name part is the username.
                with_upn("X1234", "akoch@ad.example.org"),
                // Nobody's.
                with_upn("X9999", "nobody@ad.example.org"),
            ],
            &[],
        );
        assert_eq!(
            got,
            vec![
                ("P2".to_string(), "userPrincipalName".to_string()),
                ("P4".to_string(), "userPrincipalName".to_string()),
                ("unmatched".to_string(), "1".to_string()),
            ]
        );
    }

    #[test]
    fn staff_id_then_mapping_then_email_username_and_a_unique_name() {
        let mapping = [MappingRow {
            line: 2,
            public_key: None,
            account: Some("Legacy.A".into()),
            staff_id: "P4".into(),
        }];
        let got = run(
            vec![
                account("mueller.j", "J M", "", Some("P1")),
                account("e.m", "Someone", "erika.muster@example.org", None),
                account("omuster", "", "", None),
                account("legacy.a", "", "", None),
                account("weber", "Lena Weber", "", None),
                // A staff id nobody listed is someone else's, whatever its name.
                account("x", "Anna Koch", "", Some("P99")),
            ],
            &mapping,
        );
        assert_eq!(
            got,
            [
                ("P1".to_string(), "staff id".to_string()),
                ("P2".into(), "e-mail".into()),
                ("P3".into(), "username".into()),
                ("P4".into(), "mapping line 2".into()),
                ("P5".into(), "full name".into()),
                ("unmatched".into(), "1".into()),
            ]
        );
    }

    #[test]
    fn ambiguous_matches_are_listed_never_guessed() {
        let got = run(
            vec![
                // Two accounts with one person's name: neither is hers.
                account("lw1", "Lena Weber", "", None),
                account("lw2", "Lena Weber", "", None),
                // Two accounts claiming one person: neither is adopted.
                account("a", "", "", Some("P1")),
                account("jmueller", "", "", None),
            ],
            &[],
        );
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got
            .iter()
            .all(|(who, _)| who.starts_with('?') || who == "unmatched"));
        assert!(
            got[0].1.contains("2 accounts have the name \"Lena Weber\""),
            "{got:?}"
        );
        assert!(got[2]
            .1
            .contains("P1 (Jürgen Müller) is matched by several accounts"));
    }
}
