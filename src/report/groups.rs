//! The one grouping every report format prints: persons whose actions have
//! the same shape collapse into one group with a count, and what a reviewer
//! must look at (withdrawals, updates, shortages, expiry, adoptions, re-keys,
//! sensitive access) comes first, person by person.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::{Action, Op, PersonPlan, PersonStatus, Plan, Resource, WarningKind};

/// Why a group is there, in the order the reports show them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// Access withdrawn: offboarded, expired, pruned, never provisioned.
    Withdraw,
    /// Attributes that change, with before → after per person.
    Update,
    /// Persons who get fewer devices than their profile names.
    Shortage,
    /// Access ends within the warning window.
    Expiring,
    /// Further accounts with the person's staff id that homebase does not manage.
    Unmanaged,
    /// A peer taken over with a key homebase never had.
    Adopted,
    /// New keys and password for a person who has them already.
    Rekey,
    /// Administrative group memberships, an administrators' profile or one
    /// marked `sensitive: true`, full tunnels.
    Sensitive,
    /// Nothing stands out: new persons of one shape.
    New,
    /// Nothing stands out: further changes of one shape.
    Changed,
    /// No change at all.
    Unchanged,
}

impl GroupKind {
    /// The word the reports and the HTML filter use.
    pub fn name(self) -> &'static str {
        match self {
            GroupKind::Withdraw => "withdraw",
            GroupKind::Update => "update",
            GroupKind::Shortage => "shortage",
            GroupKind::Expiring => "expiring",
            GroupKind::Unmanaged => "unmanaged",
            GroupKind::Adopted => "adopted",
            GroupKind::Rekey => "rekey",
            GroupKind::Sensitive => "sensitive",
            GroupKind::New => "new",
            GroupKind::Changed => "changed",
            GroupKind::Unchanged => "unchanged",
        }
    }

    /// Whether a reviewer must look at each person of such a group.
    pub fn is_exception(self) -> bool {
        self < GroupKind::New
    }
}

/// Persons whose planned actions have one shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Group {
    pub kind: GroupKind,
    /// Whether this group stands out (listed person by person).
    pub exception: bool,
    pub profile: String,
    /// The shape in words: `new office: create account …, peer on wg0 …`.
    pub title: String,
    pub count: usize,
    pub persons: Vec<Member>,
}

/// A person of a group, with what is particular to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Member {
    pub id: String,
    /// Before → after per attribute, the reason of a withdrawal, the expiry date…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Group and profile names containing this are administrative access.
const SENSITIVE_GROUP_MARK: &str = "admin";

/// The groups of a plan: exceptions first, then by size.
pub fn group(plan: &Plan) -> Vec<Group> {
    let flagged = |kind: WarningKind| -> BTreeSet<&str> {
        plan.warnings
            .iter()
            .filter(|w| w.kind == kind)
            .flat_map(|w| w.persons.iter().map(String::as_str))
            .collect()
    };
    let shortage = flagged(WarningKind::Shortage);
    let expiring = flagged(WarningKind::Expiring);
    let unmanaged = flagged(WarningKind::Unmanaged);

    let mut groups: BTreeMap<(GroupKind, String, String), Draft> = BTreeMap::new();
    for person in &plan.persons {
        let id = person.id.as_str();
        let (kind, detail) = if person.status == PersonStatus::Withdrawn {
            (GroupKind::Withdraw, person.reason.clone())
        } else if let Some(changes) = update_detail(person) {
            (GroupKind::Update, Some(changes))
        } else if shortage.contains(id) {
            (GroupKind::Shortage, Some(shortage_detail(plan, id)))
        } else if expiring.contains(id) {
            (
                GroupKind::Expiring,
                person.expires.map(|d| format!("access ends {d}")),
            )
        } else if unmanaged.contains(id) {
            (
                GroupKind::Unmanaged,
                Some("further accounts with this staff id".into()),
            )
        } else if let Some(key) = adopted_key(person) {
            (GroupKind::Adopted, Some(format!("keeps its key {key}")))
        } else if is_rekey(person) {
            (GroupKind::Rekey, Some("new keys and password".into()))
        } else if let Some(why) = sensitive_detail(person) {
            (GroupKind::Sensitive, Some(why))
        } else {
            let kind = match person.status {
                PersonStatus::New => GroupKind::New,
                PersonStatus::Unchanged => GroupKind::Unchanged,
                _ if !person.has_changes() => GroupKind::Unchanged,
                _ => GroupKind::Changed,
            };
            // A new name with a suffix says who holds the plain one.
            let detail = person
                .username_reason
                .as_ref()
                .map(|why| format!("username {}: {why}", person.username));
            (kind, detail)
        };
        let shape = shape(person);
        let draft = groups
            .entry((kind, person.profile.clone(), shape.clone()))
            .or_insert_with(|| Draft {
                shape,
                persons: Vec::new(),
                addresses: BTreeMap::new(),
            });
        draft.persons.push(Member {
            id: person.id.clone(),
            detail,
        });
        for action in person.actions.iter().filter(|a| a.op == Op::Create) {
            if let Resource::VpnPeer(peer) = &action.resource {
                let range = draft
                    .addresses
                    .entry(action.target.to_string())
                    .or_insert((peer.address, peer.address));
                range.0 = range.0.min(peer.address);
                range.1 = range.1.max(peer.address);
            }
        }
    }
    let mut out: Vec<Group> = groups
        .into_iter()
        .map(|((kind, profile, _), draft)| {
            let mut title = format!("{} {profile}: {}", status_word(kind), draft.shape);
            for (target, (low, high)) in &draft.addresses {
                if low == high {
                    title.push_str(&format!("; {target} address {low}"));
                } else {
                    title.push_str(&format!("; {target} addresses {low} – {high}"));
                }
            }
            Group {
                kind,
                exception: kind.is_exception(),
                profile,
                title,
                count: draft.persons.len(),
                persons: draft.persons,
            }
        })
        .collect();
    // Exceptions first (their kinds come first), each kind biggest first.
    out.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.title.cmp(&b.title))
    });
    out
}

struct Draft {
    shape: String,
    persons: Vec<Member>,
    /// Per VPN target, the lowest and highest new address.
    addresses: BTreeMap<String, (IpAddr, IpAddr)>,
}

fn status_word(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Withdraw => "withdraw",
        GroupKind::Update => "update",
        GroupKind::New => "new",
        GroupKind::Unchanged => "unchanged",
        GroupKind::Changed => "change",
        GroupKind::Shortage => "short of devices",
        GroupKind::Expiring => "expiring",
        GroupKind::Unmanaged => "unmanaged accounts",
        GroupKind::Adopted => "adopted",
        GroupKind::Rekey => "re-key",
        GroupKind::Sensitive => "sensitive",
    }
}

/// The shape of a person's actions, without what differs between persons
/// (usernames, addresses, asset tags): `create account (groups: …), …`.
fn shape(person: &PersonPlan) -> String {
    let changed: Vec<&Action> = person
        .actions
        .iter()
        .filter(|a| a.op != Op::Unchanged)
        .collect();
    if changed.is_empty() {
        return match person.status {
            PersonStatus::Withdrawn => "nothing provisioned to withdraw".into(),
            _ => "no changes".into(),
        };
    }
    let mut parts: Vec<String> = Vec::new();
    // Devices and seats read as one phrase per op and target.
    let mut devices: BTreeMap<(Op, String), Vec<String>> = BTreeMap::new();
    let mut seats: BTreeMap<Op, Vec<String>> = BTreeMap::new();
    for action in &changed {
        // Creating is what a plan mostly does: only other ops are named.
        let op = verb(action.op);
        match &action.resource {
            Resource::Account(account) if action.op == Op::Create => parts.push(format!(
                "{op}account on {} (groups: {})",
                action.target,
                account.groups.join(", ")
            )),
            Resource::Account(_) => parts.push(format!(
                "{op}account on {}{}",
                action.target,
                fields(action)
            )),
            Resource::VpnPeer(peer) => parts.push(format!(
                "{op}peer on {}{}{}{}",
                action.target,
                if peer.full_tunnel {
                    " (full tunnel)"
                } else {
                    ""
                },
                if peer.preshared_key {
                    " with preshared key"
                } else {
                    ""
                },
                fields(action)
            )),
            Resource::Device(device) => devices
                .entry((action.op, action.target.to_string()))
                .or_default()
                .push(device.kind.clone()),
            Resource::License(license) => seats
                .entry(action.op)
                .or_default()
                .push(license.pool.clone()),
            Resource::Bundle(bundle) if bundle.new_secrets => {
                parts.push(format!("{op}bundle with new keys and password"))
            }
            Resource::Bundle(_) => parts.push(format!("{op}bundle")),
        }
    }
    for ((op, target), kinds) in devices {
        parts.push(format!("{}{} on {target}", verb(op), counted(&kinds)));
    }
    for (op, pools) in seats {
        parts.push(format!(
            "{}{} seat(s) ({})",
            verb(op),
            pools.len(),
            pools.join(", ")
        ));
    }
    parts.join(", ")
}

/// `update `, `remove `; nothing for create.
fn verb(op: Op) -> String {
    match op {
        Op::Create => String::new(),
        other => format!("{} ", other.name()),
    }
}

/// ` (department, ou)`: the fields an update touches.
fn fields(action: &Action) -> String {
    if action.changes.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = action.changes.iter().map(|c| c.field.as_str()).collect();
    format!(" ({})", names.join(", "))
}

/// `notebook + 2 monitor + headset`, in the order first named.
fn counted(kinds: &[String]) -> String {
    let mut order: Vec<(&str, usize)> = Vec::new();
    for kind in kinds {
        match order.iter_mut().find(|(k, _)| k == kind) {
            Some(entry) => entry.1 += 1,
            None => order.push((kind, 1)),
        }
    }
    order
        .iter()
        .map(|(k, n)| match n {
            1 => k.to_string(),
            n => format!("{n} {k}"),
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// `department: Kämmerei → Stadtkasse; expires: …` over all updated actions.
fn update_detail(person: &PersonPlan) -> Option<String> {
    let changes: Vec<String> = person
        .actions
        .iter()
        .filter(|a| a.op == Op::Update)
        .flat_map(|a| {
            a.changes.iter().map(move |c| {
                format!(
                    "{} {}: {} → {}",
                    a.target,
                    c.field,
                    c.from.as_deref().unwrap_or("—"),
                    c.to.as_deref().unwrap_or("—")
                )
            })
        })
        .collect();
    (!changes.is_empty()).then(|| changes.join("; "))
}

/// What the person lacks, from the shortage warnings that name them.
fn shortage_detail(plan: &Plan, id: &str) -> String {
    let lacking: Vec<&str> = plan
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Shortage && w.persons.iter().any(|p| p == id))
        .map(|w| w.message.as_str())
        .collect();
    lacking.join("; ")
}

fn adopted_key(person: &PersonPlan) -> Option<&str> {
    person.actions.iter().find_map(|a| match &a.resource {
        Resource::VpnPeer(peer) if a.op != Op::Unchanged => peer.adopted_key.as_deref(),
        _ => None,
    })
}

/// New secrets for someone who had them: a lost bundle, a rotation.
fn is_rekey(person: &PersonPlan) -> bool {
    person.status != PersonStatus::New
        && person.actions.iter().any(|a| {
            a.op != Op::Unchanged && matches!(&a.resource, Resource::Bundle(b) if b.new_secrets)
        })
}

/// Why a changed person's access is sensitive, all reasons in one line:
/// `groups it-admins, vpn-admins` a changed account carries, `admin profile`
/// for a profile named so, `sensitive profile` for one marked
/// `sensitive: true`, `full tunnel on wg0` for a changed full-tunnel peer.
fn sensitive_detail(person: &PersonPlan) -> Option<String> {
    if !person.has_changes() {
        return None;
    }
    let mut reasons = Vec::new();
    let groups: Vec<&str> = person
        .actions
        .iter()
        .filter_map(|a| match &a.resource {
            Resource::Account(account) => Some(&account.groups),
            _ => None,
        })
        .flatten()
        .filter(|g| g.to_ascii_lowercase().contains(SENSITIVE_GROUP_MARK))
        .map(String::as_str)
        .collect();
    if !groups.is_empty() {
        reasons.push(format!("groups {}", groups.join(", ")));
    } else if person
        .profile
        .to_ascii_lowercase()
        .contains(SENSITIVE_GROUP_MARK)
    {
        reasons.push(format!("{} profile", person.profile));
    }
    if person.sensitive {
        reasons.push("sensitive profile".into());
    }
    for action in person.actions.iter().filter(|a| a.op != Op::Remove) {
        if let Resource::VpnPeer(peer) = &action.resource {
            if peer.full_tunnel {
                reasons.push(format!("full tunnel on {}", action.target));
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The staff ids of each kind, for filters: every person is in one group.
pub fn kind_of(groups: &[Group]) -> BTreeMap<&str, GroupKind> {
    groups
        .iter()
        .flat_map(|g| g.persons.iter().map(move |m| (m.id.as_str(), g.kind)))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{
        Account, ActionTarget, Bundle, Change, Device, Inputs, License, Peer, Warning,
    };

    fn account(groups: &[&str]) -> Resource {
        Resource::Account(Account {
            username: "u".into(),
            given_name: "G".into(),
            family_name: "F".into(),
            display_name: "G F".into(),
            email: "u@example.org".into(),
            department: Some("Kämmerei".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ou: None,
            expires: None,
            enabled: true,
        })
    }

    fn action(target: ActionTarget, op: Op, resource: Resource) -> Action {
        Action {
            target,
            op,
            resource,
            changes: Vec::new(),
            remote_id: None,
        }
    }

    /// A new office worker: account, peer, notebook + monitor, a seat, a bundle.
    pub(crate) fn newcomer(id: &str, address: &str, groups: &[&str]) -> PersonPlan {
        let t = |n: &str| ActionTarget::Target(n.into());
        let device = |kind: &str| {
            Resource::Device(Device {
                asset_tag: format!("{kind}-{id}"),
                serial: format!("S{id}"),
                kind: kind.into(),
                model: "M".into(),
            })
        };
        PersonPlan {
            id: id.into(),
            username: id.to_lowercase(),
            display_name: format!("Person {id}"),
            profile: "office".into(),
            department: Some("Kämmerei".into()),
            expires: None,
            status: PersonStatus::New,
            reason: None,
            username_reason: None,
            sensitive: false,
            actions: vec![
                action(t("directory"), Op::Create, account(groups)),
                action(
                    t("wg0"),
                    Op::Create,
                    Resource::VpnPeer(Peer {
                        address: address.parse().expect("address"),
                        preshared_key: false,
                        expires: None,
                        adopted_key: None,
                        full_tunnel: false,
                    }),
                ),
                action(t("stock"), Op::Create, device("notebook")),
                action(t("stock"), Op::Create, device("monitor")),
                action(
                    ActionTarget::SeatPool("office-suite".into()),
                    Op::Create,
                    Resource::License(License {
                        pool: "office-suite".into(),
                    }),
                ),
                action(
                    ActionTarget::Bundles,
                    Op::Create,
                    Resource::Bundle(Bundle {
                        path: format!("out/{id}"),
                        new_secrets: true,
                    }),
                ),
            ],
        }
    }

    pub(crate) fn plan(persons: Vec<PersonPlan>, warnings: Vec<Warning>) -> Plan {
        Plan {
            schema: crate::plan::PLAN_SCHEMA.into(),
            homebase_version: "test".into(),
            today: chrono::NaiveDate::from_ymd_opt(2026, 12, 4).expect("day"),
            inputs: Inputs {
                staff_files: vec![],
                config: String::new(),
                digest: String::new(),
            },
            state_digest: String::new(),
            prune: false,
            summary: vec![],
            warnings,
            capacity: vec![],
            estimates: vec![],
            persons,
            bundles_elsewhere: 0,
            files: vec![],
        }
    }

    fn ids(group: &Group) -> Vec<&str> {
        group.persons.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn one_shape_is_one_group_with_a_count_and_the_address_range() {
        let persons = (1..=30)
            .map(|i| newcomer(&format!("P{i}"), &format!("10.20.0.{}", i + 1), &["staff"]))
            .collect();
        let groups = group(&plan(persons, vec![]));
        assert_eq!(groups.len(), 1, "{groups:#?}");
        let g = &groups[0];
        assert_eq!((g.kind, g.count, g.exception), (GroupKind::New, 30, false));
        assert_eq!(
            g.title,
            "new office: account on directory (groups: staff), peer on wg0, bundle with new keys and password, \
             notebook + monitor on stock, 1 seat(s) (office-suite); wg0 addresses 10.20.0.2 – 10.20.0.31"
        );
    }

    #[test]
    fn what_stands_out_comes_first_each_person_once() {
        let mut persons: Vec<PersonPlan> = (1..=6)
            .map(|i| newcomer(&format!("P{i}"), &format!("10.20.0.{i}"), &["staff"]))
            .collect();
        persons.push(newcomer("A1", "10.20.192.1", &["staff", "vpn-admins"]));
        let mut moved = newcomer("U1", "10.20.0.50", &["staff"]);
        moved.status = PersonStatus::Changed;
        for a in &mut moved.actions {
            a.op = Op::Unchanged;
        }
        moved.actions[0].op = Op::Update;
        moved.actions[0].changes = vec![Change {
            field: "department".into(),
            from: Some("Kämmerei".into()),
            to: Some("Stadtkasse".into()),
        }];
        persons.push(moved);
        let mut gone = newcomer("W1", "10.20.0.60", &["staff"]);
        gone.status = PersonStatus::Withdrawn;
        gone.reason = Some("offboarded".into());
        for a in &mut gone.actions {
            a.op = Op::Remove;
        }
        persons.push(gone);
        let mut rekeyed = newcomer("R1", "10.20.0.70", &["staff"]);
        rekeyed.status = PersonStatus::Changed;
        for a in &mut rekeyed.actions {
            if !matches!(a.resource, Resource::Bundle(_)) {
                a.op = Op::Unchanged;
            }
        }
        persons.push(rekeyed);
        let warnings = vec![
            Warning {
                kind: WarningKind::Expiring,
                message: "1 account(s) expire within 14 days".into(),
                persons: vec!["P2".into()],
            },
            Warning {
                kind: WarningKind::Shortage,
                message: "stock: 1 × monitor (M) missing from stock; 1 person(s) get none".into(),
                persons: vec!["P3".into()],
            },
        ];
        let groups = group(&plan(persons, warnings));
        let kinds: Vec<GroupKind> = groups.iter().map(|g| g.kind).collect();
        assert_eq!(
            kinds,
            [
                GroupKind::Withdraw,
                GroupKind::Update,
                GroupKind::Shortage,
                GroupKind::Expiring,
                GroupKind::Rekey,
                GroupKind::Sensitive,
                GroupKind::New,
            ]
        );
        assert_eq!(ids(&groups[0]), ["W1"]);
        assert_eq!(groups[0].persons[0].detail.as_deref(), Some("offboarded"));
        assert!(groups[0]
            .title
            .starts_with("withdraw office: remove account"));
        assert_eq!(
            groups[1].persons[0].detail.as_deref(),
            Some("directory department: Kämmerei → Stadtkasse")
        );
        assert_eq!(
            groups[1].title,
            "update office: update account on directory (department)"
        );
        assert!(groups[2].persons[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("monitor"));
        assert_eq!(ids(&groups[3]), ["P2"]);
        assert_eq!(ids(&groups[4]), ["R1"]);
        assert_eq!(
            groups[5].persons[0].detail.as_deref(),
            Some("groups vpn-admins")
        );
        assert_eq!(ids(&groups[6]), ["P1", "P4", "P5", "P6"]);
        assert!(groups.iter().take(6).all(|g| g.exception));
        let total: usize = groups.iter().map(|g| g.count).sum();
        assert_eq!(total, 10, "every person in exactly one group");
    }

    #[test]
    fn full_tunnels_and_profiles_marked_sensitive_stand_out_with_their_shape() {
        let full = |id: &str, address: &str| {
            let mut p = newcomer(id, address, &["staff"]);
            p.profile = "field".into();
            for a in &mut p.actions {
                if let Resource::VpnPeer(peer) = &mut a.resource {
                    peer.full_tunnel = true;
                }
            }
            p
        };
        let mut marked = newcomer("M1", "10.20.0.9", &["staff"]);
        marked.profile = "council".into();
        marked.sensitive = true;
        let split = newcomer("S1", "10.20.0.2", &["staff"]);
        let groups = group(&plan(
            vec![
                full("F1", "10.20.128.1"),
                full("F2", "10.20.128.2"),
                marked,
                split,
            ],
            vec![],
        ));
        let field = groups.iter().find(|g| g.profile == "field").expect("field");
        assert_eq!(field.kind, GroupKind::Sensitive);
        assert_eq!(field.count, 2);
        assert!(
            field.title.contains("peer on wg0 (full tunnel)"),
            "{}",
            field.title
        );
        assert_eq!(
            field.persons[0].detail.as_deref(),
            Some("full tunnel on wg0")
        );
        let council = groups
            .iter()
            .find(|g| g.profile == "council")
            .expect("council");
        assert_eq!(council.kind, GroupKind::Sensitive);
        assert_eq!(
            council.persons[0].detail.as_deref(),
            Some("sensitive profile")
        );
        let office = groups
            .iter()
            .find(|g| g.profile == "office")
            .expect("office");
        assert_eq!(office.kind, GroupKind::New);
        assert!(!office.title.contains("full tunnel"));
        // Unchanged full-tunnel persons are not exceptions: nothing to review.
        let mut settled = full("F3", "10.20.128.3");
        settled.status = PersonStatus::Unchanged;
        for a in &mut settled.actions {
            a.op = Op::Unchanged;
        }
        assert_eq!(
            group(&plan(vec![settled], vec![]))[0].kind,
            GroupKind::Unchanged
        );
    }

    #[test]
    fn an_administrators_profile_is_sensitive_even_without_admin_groups() {
        let mut admin = newcomer("A1", "10.20.192.1", &["staff"]);
        admin.profile = "admin".into();
        let groups = group(&plan(vec![admin], vec![]));
        assert_eq!(groups[0].kind, GroupKind::Sensitive);
        assert_eq!(
            groups[0].persons[0].detail.as_deref(),
            Some("admin profile")
        );
    }

    #[test]
    fn unchanged_persons_are_one_quiet_group() {
        let mut same = newcomer("P1", "10.20.0.2", &["staff"]);
        same.status = PersonStatus::Unchanged;
        for a in &mut same.actions {
            a.op = Op::Unchanged;
        }
        let groups = group(&plan(vec![same], vec![]));
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].kind, GroupKind::Unchanged);
        assert_eq!(groups[0].title, "unchanged office: no changes");
        assert!(!groups[0].exception);
    }
}
