//! Planning on the shipped profiles and the default configuration, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use super::*;
use crate::config::{Config, DEFAULT_CONFIG};
use crate::input::Person;
use crate::profile::ProfileSet;

fn config() -> Config {
    serde_norway::from_str(DEFAULT_CONFIG).expect("default config")
}

fn person(id: &str, given: &str, family: &str, department: &str) -> Person {
    let mut person = Person::example(id, given, family);
    person.department = Some(department.into());
    person
}

fn stock(n: usize) -> Vec<StockItem> {
    let mut items = Vec::new();
    for (kind, prefix) in [("notebook", "NB"), ("monitor", "MON"), ("headset", "HS")] {
        for i in 0..n {
            items.push(StockItem {
                asset_tag: format!("{prefix}-{i:04}"),
                serial: format!("S{prefix}{i}"),
                kind: kind.into(),
                model: "M".into(),
                available: true,
                assigned_to: None,
            });
        }
    }
    items
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
}

fn plan(
    persons: &[Person],
    observed: &Observed,
    config: &Config,
) -> Result<Plan, crate::error::Problems> {
    plan_rotating(persons, observed, config, &Rotation::None)
}

fn plan_rotating(
    persons: &[Person],
    observed: &Observed,
    config: &Config,
    rotate: &Rotation,
) -> Result<Plan, crate::error::Problems> {
    plan_showing(persons, observed, config, rotate, &Default::default())
}

/// A plan whose bundles show what `reads` says (by default: everything).
fn plan_showing(
    persons: &[Person],
    observed: &Observed,
    config: &Config,
    rotate: &Rotation,
    reads: &crate::render::BundleReads,
) -> Result<Plan, crate::error::Problems> {
    let profiles = ProfileSet::load(None).expect("shipped profiles");
    build(PlanInput {
        persons,
        profiles: &profiles,
        config,
        observed,
        today: today(),
        prune: false,
        withdraw: &BTreeSet::new(),
        rotate,
        bundle_root: "out".into(),
        inputs: Inputs {
            staff_files: vec![],
            config: "test".into(),
            digest: "d".into(),
        },
        bundle_reads: reads,
    })
}

fn observed_with_stock(n: usize) -> Observed {
    let mut observed = Observed::default();
    observed.stock.insert("stock".into(), stock(n));
    observed
}

fn usernames(plan: &Plan) -> BTreeMap<String, String> {
    plan.persons
        .iter()
        .map(|p| (p.id.clone(), p.username.clone()))
        .collect()
}

#[test]
fn collisions_are_suffixed_independent_of_row_order() {
    let rows = vec![
        person("P3", "Jürgen", "Müller", "Bürgeramt"),
        person("P1", "Julia", "Müller", "Bürgeramt"),
        person("P2", "Jan", "Müller", "Bürgeramt"),
    ];
    let observed = observed_with_stock(10);
    let forward = usernames(&plan(&rows, &observed, &config()).unwrap());
    let mut reversed_rows = rows.clone();
    reversed_rows.reverse();
    let reversed = usernames(&plan(&reversed_rows, &observed, &config()).unwrap());
    assert_eq!(forward, reversed);
    assert_eq!(forward["P1"], "jmueller");
    assert_eq!(forward["P2"], "jmueller2");
    assert_eq!(forward["P3"], "jmueller3");
}

#[test]
fn directory_names_are_avoided_and_pinned_names_kept() {
    let mut observed = observed_with_stock(10);
    observed
        .foreign_usernames
        .insert("directory".into(), ["jmueller".to_string()].into());
    observed.persons.insert(
        "P9".into(),
        KnownPerson {
            username: "jm9".into(),
            display_name: "x".into(),
            profile: "office".into(),
            withdrawn: false,
            offboarded: false,
        },
    );
    let rows = vec![
        person("P1", "Jürgen", "Müller", "Bürgeramt"),
        person("P9", "Jürgen", "Müller", "Bürgeramt"),
    ];
    let names = usernames(&plan(&rows, &observed, &config()).unwrap());
    assert_eq!(names["P1"], "jmueller2");
    assert_eq!(names["P9"], "jm9");
}

#[test]
fn addresses_are_unique_and_skip_gateway_and_foreign() {
    let mut observed = observed_with_stock(50);
    observed
        .foreign_addresses
        .insert("wg0".into(), ["10.20.0.3".parse().unwrap()].into());
    let rows: Vec<Person> = (0..40)
        .map(|i| person(&format!("P{i:03}"), "A", &format!("N{i}"), "Bürgeramt"))
        .collect();
    let plan = plan(&rows, &observed, &config()).unwrap();
    let addresses: Vec<std::net::IpAddr> = plan
        .persons
        .iter()
        .flat_map(|p| &p.actions)
        .filter_map(|a| match &a.resource {
            Resource::VpnPeer(p) => Some(p.address),
            _ => None,
        })
        .collect();
    let unique: BTreeSet<_> = addresses.iter().collect();
    assert_eq!(addresses.len(), 40);
    assert_eq!(unique.len(), 40);
    for reserved in ["10.20.0.0", "10.20.0.1", "10.20.0.3"] {
        assert!(
            !unique.contains(&reserved.parse::<std::net::IpAddr>().unwrap()),
            "{reserved} was handed out"
        );
    }
}

#[test]
fn pool_exhaustion_is_a_plan_error() {
    // The admin profile's pool is a /24: 254 usable addresses, one is the gateway's? No:
    // the gateway 10.20.0.1 lies outside it, so 254 persons fit and the 255th does not.
    let rows: Vec<Person> = (0..255)
        .map(|i| {
            person(
                &format!("A{i:03}"),
                "A",
                &format!("Admin{i}"),
                "Informationstechnik",
            )
        })
        .collect();
    let mut config = config();
    config.licenses.values_mut().for_each(|l| l.seats = 1000);
    let err = plan(&rows, &observed_with_stock(1000), &config).unwrap_err();
    assert!(err.to_string().contains("exhausted"), "{err}");
    assert!(plan(&rows[..254], &observed_with_stock(1000), &config).is_ok());
}

#[test]
fn device_shortage_is_reported_per_kind() {
    let rows: Vec<Person> = (0..5)
        .map(|i| person(&format!("P{i}"), "A", &format!("N{i}"), "Bürgeramt"))
        .collect();
    let plan = plan(&rows, &observed_with_stock(3), &config()).unwrap();
    let shortages: Vec<&Warning> = plan
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Shortage)
        .collect();
    assert_eq!(shortages.len(), 3, "{shortages:?}");
    assert!(shortages.iter().all(
        |w| w.message.contains("2 × ") && w.persons == vec!["P3".to_string(), "P4".to_string()]
    ));
}

#[test]
fn second_plan_against_its_own_result_is_empty_and_changes_are_fields() {
    let rows = vec![person("P1", "Eva", "Groß", "Bürgeramt")];
    let first = plan(&rows, &observed_with_stock(2), &config()).unwrap();
    // What apply would record.
    let mut observed = observed_with_stock(2);
    record_applied(&mut observed, &first.persons[0]);
    observed.bundles.insert("P1".into());
    observed.bundles_here.insert("P1".into());
    let second = plan(&rows, &observed, &config()).unwrap();
    assert!(!second.has_changes(), "{:?}", second.persons[0].actions);

    let mut moved = rows.clone();
    moved[0].department = Some("Sozialamt".into());
    let third = plan(&moved, &observed, &config()).unwrap();
    let changed: Vec<&Action> = third.persons[0]
        .actions
        .iter()
        .filter(|a| a.op == Op::Update)
        .collect();
    assert_eq!(changed.len(), 2, "account update and bundle: {changed:?}");
    assert_eq!(
        changed[0].changes,
        vec![Change {
            field: "department".into(),
            from: Some("Bürgeramt".into()),
            to: Some("Sozialamt".into())
        }]
    );
}

/// Bundle actions of a person with every resource in place, as observed.
fn bundle_ops(plan: &Plan) -> Vec<(Op, bool)> {
    plan.persons[0]
        .actions
        .iter()
        .filter_map(|a| match &a.resource {
            Resource::Bundle(b) => Some((a.op, b.new_secrets)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_delivered_bundle_keeps_its_secrets_wherever_it_is() {
    let rows = vec![person("P1", "Anna", "Schmidt", "Bürgeramt")];
    let first = plan(&rows, &observed_with_stock(5), &config()).unwrap();
    assert_eq!(bundle_ops(&first), [(Op::Create, true)], "never delivered");
    let mut observed = observed_with_stock(5);
    record_applied(&mut observed, &first.persons[0]);
    // Delivered, not on this machine: a count, not a change.
    observed.bundles.insert("P1".into());
    let absent = plan(&rows, &observed, &config()).unwrap();
    assert!(!absent.has_changes(), "{:?}", absent.persons[0].actions);
    assert_eq!(absent.bundles_elsewhere, 1);

    // Its person's access changes: no bundle, so no new secrets.
    let mut moved = rows.clone();
    moved[0].department = Some("Sozialamt".into());
    let changed = plan(&moved, &observed, &config()).unwrap();
    assert!(changed.has_changes());
    assert!(bundle_ops(&changed).is_empty());
    assert_eq!(changed.bundles_elsewhere, 1);

    // Named for rotation: a new bundle with new secrets.
    let only = Rotation::Only(["P1".to_string()].into());
    let rotated = plan_rotating(&rows, &observed, &config(), &only).unwrap();
    assert_eq!(bundle_ops(&rotated), [(Op::Create, true)]);
    assert_eq!(rotated.bundles_elsewhere, 0);
    let other = Rotation::Only(["P2".to_string()].into());
    let not_named = plan_rotating(&rows, &observed, &config(), &other).unwrap();
    assert!(!not_named.has_changes());

    // Where the bundle is, an out-of-date one is rewritten with its secrets.
    observed.bundles_here.insert("P1".into());
    assert!(!plan(&rows, &observed, &config()).unwrap().has_changes());
    observed.stale_bundles.insert("P1".into());
    let stale = plan(&rows, &observed, &config()).unwrap();
    assert_eq!(bundle_ops(&stale), [(Op::Update, false)]);
}

#[test]
fn a_bundle_is_rewritten_only_for_a_change_it_shows() {
    let rows = vec![person("P1", "Anna", "Schmidt", "Bürgeramt")];
    let first = plan(&rows, &observed_with_stock(5), &config()).unwrap();
    let mut observed = observed_with_stock(5);
    record_applied(&mut observed, &first.persons[0]);
    observed.bundles.insert("P1".into());
    observed.bundles_here.insert("P1".into());
    let mut moved = rows.clone();
    moved[0].department = Some("Sozialamt".into());
    let office = first.persons[0].profile.clone();

    // Letters that print the department are rewritten.
    let mut reads = crate::render::BundleReads::default();
    reads
        .0
        .insert(office.clone(), ["person".to_string()].into());
    let shown = plan_showing(&moved, &observed, &config(), &Rotation::None, &reads).unwrap();
    assert_eq!(bundle_ops(&shown), [(Op::Update, false)]);

    // Letters that do not: the account changes, the bundle is left alone.
    reads.0.insert(
        office,
        ["person.display_name", "account.username", "account.email"]
            .map(String::from)
            .into(),
    );
    let hidden = plan_showing(&moved, &observed, &config(), &Rotation::None, &reads).unwrap();
    assert!(hidden.has_changes());
    assert!(
        bundle_ops(&hidden).is_empty(),
        "{:?}",
        hidden.persons[0].actions
    );
}

#[test]
fn a_suffixed_username_says_who_holds_the_name() {
    let mut observed = observed_with_stock(10);
    observed
        .foreign_usernames
        .insert("directory".into(), ["jmueller".to_string()].into());
    observed.username_holders.insert(
        "directory".into(),
        [(
            "jmueller".to_string(),
            "CN=jmueller,OU=Extern,DC=test,DC=lan".to_string(),
        )]
        .into(),
    );
    let rows = vec![
        person("P1", "Jürgen", "Müller", "Bürgeramt"),
        person("P2", "Jana", "Müller", "Bürgeramt"),
        person("P3", "Anna", "Schmidt", "Bürgeramt"),
    ];
    let plan = plan(&rows, &observed, &config()).unwrap();
    let why = |id: &str| {
        let p = plan.persons.iter().find(|p| p.id == id).unwrap();
        (p.username.clone(), p.username_reason.clone())
    };
    assert_eq!(
        why("P1"),
        (
            "jmueller2".into(),
            Some(
                "`jmueller` is held by CN=jmueller,OU=Extern,DC=test,DC=lan (target \"directory\")"
                    .into()
            )
        )
    );
    assert_eq!(
        why("P2"),
        (
            "jmueller3".into(),
            Some(
                "`jmueller` is held by CN=jmueller,OU=Extern,DC=test,DC=lan (target \"directory\")"
                    .into()
            )
        )
    );
    assert_eq!(why("P3"), ("aschmidt".into(), None));
}

#[test]
fn expired_persons_are_withdrawn_and_expiring_ones_warned() {
    let mut soon = person("P1", "A", "Soon", "Bürgeramt");
    soon.end = Some(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    let mut gone = person("P2", "B", "Gone", "Bürgeramt");
    gone.end = Some(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    let plan = plan(&[soon, gone], &observed_with_stock(5), &config()).unwrap();
    let p2 = plan.persons.iter().find(|p| p.id == "P2").unwrap();
    assert_eq!(p2.status, PersonStatus::Withdrawn);
    assert!(plan
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::Expiring && w.persons == vec!["P1".to_string()]));
}

/// What the targets and the store hold after `person`'s plan was applied as
/// staff id P1: the person known, each resource recorded where it went.
fn record_applied(observed: &mut Observed, person: &PersonPlan) {
    observed.persons.insert(
        "P1".into(),
        KnownPerson {
            username: person.username.clone(),
            display_name: person.display_name.clone(),
            profile: person.profile.clone(),
            withdrawn: false,
            offboarded: false,
        },
    );
    for action in &person.actions {
        match &action.resource {
            Resource::Account(a) => {
                observed
                    .accounts
                    .entry(action.target.name().to_string())
                    .or_default()
                    .insert("P1".into(), a.clone());
            }
            Resource::VpnPeer(peer) => {
                observed
                    .peers
                    .entry(action.target.name().to_string())
                    .or_default()
                    .insert("P1".into(), peer.clone());
            }
            Resource::Device(d) => {
                for item in observed.stock.get_mut("stock").unwrap() {
                    if item.asset_tag == d.asset_tag {
                        item.assigned_to = Some("P1".into());
                    }
                }
            }
            Resource::License(l) => {
                observed
                    .seats
                    .entry(l.pool.clone())
                    .or_default()
                    .insert("P1".into());
            }
            Resource::Bundle(_) => {}
        }
    }
}
