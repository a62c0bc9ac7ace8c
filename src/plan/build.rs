//! Compute the plan: desired state from persons × profiles, diffed against
//! what is observed. Pure: no I/O, no clock (the day is an input).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use chrono::{Days, NaiveDate};
use minijinja::Environment;

use super::address::{is_assignable, PoolAllocator};
use super::model::*;
use super::observed::{Observed, StockItem};
use super::rotation::Rotation;
use super::username::{normalize, Taken};
use crate::config::{Area, Config};
use crate::error::{Problem, Problems};
use crate::input::Person;
use crate::profile::{Profile, ProfileSet, Tunnel, VpnKind};
use crate::render::BundleReads;

/// Everything a plan is computed from.
pub struct PlanInput<'a> {
    pub persons: &'a [Person],
    pub profiles: &'a ProfileSet,
    pub config: &'a Config,
    pub observed: &'a Observed,
    pub today: NaiveDate,
    /// Withdraw persons on our books who are missing from the list.
    pub prune: bool,
    /// Staff ids to withdraw now (`offboard`).
    pub withdraw: &'a BTreeSet<String>,
    /// Whose keys and passwords are issued anew (`--rotate`, `homebase rotate`).
    pub rotate: &'a Rotation,
    /// The bundles folder as shown in the plan (`out`).
    pub bundle_root: String,
    pub inputs: Inputs,
    /// What each profile's bundle shows: a change it does not show leaves
    /// the bundle as it is.
    pub bundle_reads: &'a BundleReads,
}

/// The profile of every person, or a problem on the person's line for each
/// one that has none.
pub fn assign_profiles<'p>(
    persons: &[Person],
    profiles: &'p ProfileSet,
    default: &str,
) -> Result<Vec<&'p Profile>, Problems> {
    let mut problems = Problems::default();
    let mut chosen = Vec::with_capacity(persons.len());
    for person in persons {
        match profiles.choose(person, default) {
            Ok(profile) => chosen.push(profile),
            Err(why) => problems.push(
                Problem::new(&person.origin.file, why)
                    .at_line(person.origin.line)
                    .column("profile"),
            ),
        }
    }
    problems.into_result().map(|()| chosen)
}

/// The target of `area` a profile section names, or the configuration's only one.
pub fn resolve_target<'c>(
    config: &'c Config,
    area: Area,
    named: Option<&str>,
) -> Result<&'c str, String> {
    if let Some(name) = named {
        return match config.targets.get_key_value(name) {
            Some((key, target)) if target.area() == area => Ok(key),
            Some((_, target)) => Err(format!(
                "target \"{name}\" is a {} target ({}), not a {} target",
                target.area().name(),
                target.kind(),
                area.name()
            )),
            None => Err(format!("no target named \"{name}\" in the configuration")),
        };
    }
    let mut of_area = config.targets.iter().filter(|(_, t)| t.area() == area);
    match (of_area.next(), of_area.next()) {
        (Some((name, _)), None) => Ok(name),
        (None, _) => Err(format!("the configuration has no {} target", area.name())),
        (Some(_), Some(_)) => Err(format!(
            "the configuration has several {} targets; name one with `target:`",
            area.name()
        )),
    }
}

/// Per-person work order: pinned persons first, then by staff id.
struct Ordered<'a> {
    person: &'a Person,
    profile: &'a Profile,
}

/// Persons about to get an account in a directory that already holds one
/// carrying their staff id, not on our books (made by hand, or before the
/// state store was lost): the new one would be their second. An error on the
/// person's line that names the existing account and `homebase adopt`.
fn second_accounts(
    observed: &Observed,
    plans: &[PersonPlan],
    persons: &[Person],
    problems: &mut Problems,
) {
    let origins: BTreeMap<&str, &Person> = persons.iter().map(|p| (p.id.as_str(), p)).collect();
    for plan in plans {
        for action in plan.actions.iter().filter(|a| a.op == Op::Create) {
            let target = action.target.name();
            let existing = observed
                .unmanaged_accounts
                .get(target)
                .and_then(|accounts| accounts.get(&plan.id));
            let (Resource::Account(_), Some(existing), Some(person)) =
                (&action.resource, existing, origins.get(plan.id.as_str()))
            else {
                continue;
            };
            problems.push(
                Problem::new(
                    &person.origin.file,
                    format!(
                        "{} ({}) already has the account \"{existing}\" in directory \"{target}\", carrying their staff id but not managed by homebase; a new account would be a second one",
                        plan.id, plan.display_name
                    ),
                )
                .at_line(person.origin.line)
                .expected(format!(
                    "`homebase adopt {} --target {target}` to take the account over (or remove it)",
                    person.origin.file
                )),
            );
        }
    }
}

pub fn build(input: PlanInput<'_>) -> Result<Plan, Problems> {
    // The state's digest (its JSON through SHA-256) is computed beside the plan.
    let observed = input.observed;
    std::thread::scope(|scope| {
        let digest = scope.spawn(|| super::digest::observed_digest(observed));
        let plan = plan_of(input);
        let digest = crate::threads::joined(digest);
        plan.map(|plan| Plan {
            state_digest: digest,
            ..plan
        })
    })
}

/// The plan, all but its state digest.
fn plan_of(input: PlanInput<'_>) -> Result<Plan, Problems> {
    let config = input.config;
    let observed = input.observed;
    let mut problems = Problems::default();
    // The address pools and the stock are indexed on a second thread while
    // the persons get their profiles, their order and their usernames.
    let (indexes, named) = std::thread::scope(|scope| {
        let indexes = scope.spawn(|| (Pools::new(config, observed), Stock::new(observed)));
        let named = assign_profiles(input.persons, input.profiles, &config.default_profile).map(
            |profiles| {
                let mut ordered: Vec<Ordered> = input
                    .persons
                    .iter()
                    .zip(profiles)
                    .map(|(person, profile)| Ordered { person, profile })
                    .collect();
                ordered.sort_by(|a, b| a.person.id.cmp(&b.person.id));
                let usernames = decide_usernames(&ordered, observed, &mut problems);
                (ordered, usernames)
            },
        );
        let indexes = crate::threads::joined(indexes);
        (indexes, named)
    });
    let (ordered, usernames) = named?;
    let (mut pools, mut stock) = indexes;
    let (usernames, username_reasons): (Vec<String>, Vec<Option<String>>) =
        usernames.into_iter().unzip();
    let mut warnings = Vec::new();
    let mut expiring = Vec::new();
    let mut ended = Vec::new();
    let mut still_listed = Vec::new();
    // Seat pool → how many persons hold or get a seat of it.
    let mut seats: BTreeMap<&str, u64> = BTreeMap::new();
    let mut persons = Vec::with_capacity(ordered.len());
    let mut elsewhere = 0;

    for ((entry, username), username_reason) in ordered.iter().zip(&usernames).zip(username_reasons)
    {
        let person = entry.person;
        let profile = entry.profile;
        let targets = match profile_targets(config, profile) {
            Ok(t) => t,
            Err(why) => {
                problems.push(
                    Problem::new(
                        &person.origin.file,
                        format!("profile \"{}\": {why}", profile.name),
                    )
                    .at_line(person.origin.line)
                    .column("profile"),
                );
                continue;
            }
        };
        let account = desired_account(
            person,
            profile,
            username,
            config,
            observed,
            &targets,
            input.today,
        );
        let offboarded_earlier = observed
            .persons
            .get(&person.id)
            .is_some_and(|k| k.offboarded);
        let reason = if input.withdraw.contains(&person.id) {
            Some("offboarded".to_string())
        } else if offboarded_earlier {
            still_listed.push(person.id.clone());
            Some("offboarded earlier, still in the staff list".to_string())
        } else {
            account
                .expires
                .filter(|d| *d < input.today)
                .map(|d| format!("expired on {d}"))
        };
        let rotate = input.rotate.includes(&person.id);
        let mut actions = Vec::new();
        if let Some(reason) = reason {
            actions = withdrawal(&person.id, observed);
            // Nothing to withdraw: never provisioned, and now never will be.
            if actions.is_empty() && !offboarded_earlier {
                if let Some(day) = account.expires.filter(|d| *d < input.today) {
                    ended.push((person.id.clone(), day));
                }
            }
            persons.push(PersonPlan {
                id: person.id.clone(),
                username: username.clone(),
                display_name: person.display_name(),
                profile: profile.name.clone(),
                department: person.department.clone(),
                expires: account.expires,
                status: PersonStatus::Withdrawn,
                sensitive: false,
                reason: Some(reason),
                username_reason: None,
                actions,
            });
            continue;
        }
        if let Some(expires) = account.expires {
            if expires <= input.today + Days::new(u64::from(config.warn_expiry_days)) {
                expiring.push(person.id.clone());
            }
        }

        // Directory account.
        let current = observed
            .accounts
            .get(&targets.directory)
            .and_then(|a| a.get(&person.id));
        let unstored = observed.unstored_fields.get(&targets.directory);
        actions.push(diff_account(
            &targets.directory,
            current,
            account.clone(),
            unstored,
        ));

        // VPN peer: the chosen target, and removal from any other.
        for (target, peers) in &observed.peers {
            if Some(target) != targets.vpn.as_ref() {
                if let Some(peer) = peers.get(&person.id) {
                    actions.push(removal(
                        ActionTarget::Target(target.clone()),
                        Resource::VpnPeer(peer.clone()),
                    ));
                }
            }
        }
        if let (Some(target), VpnKind::Wireguard | VpnKind::Openvpn) =
            (&targets.vpn, profile.vpn.kind)
        {
            match pools.peer_for(target, profile, &person.id, account.expires, rotate) {
                Ok(mut action) => {
                    if let Some(kind) = config.targets.get(target) {
                        let current = observed
                            .certificates
                            .get(target)
                            .and_then(|c| c.get(&person.id));
                        kind.plan_peer(&mut action, current, account.expires, input.today);
                    }
                    actions.push(action)
                }
                Err(why) => problems.push(
                    Problem::new(
                        &person.origin.file,
                        format!("profile \"{}\": {why}", profile.name),
                    )
                    .at_line(person.origin.line),
                ),
            }
        }

        // Devices.
        if let Some(target) = &targets.inventory {
            actions.extend(stock.devices_for(target, &person.id, profile));
        }

        // License seats.
        for (n, pool) in profile.licenses.iter().enumerate() {
            let held = observed
                .seats
                .get(pool)
                .is_some_and(|s| s.contains(&person.id));
            // A pool named twice in a profile is still one seat.
            if !profile.licenses[..n].contains(pool) {
                *seats.entry(pool).or_default() += 1;
            }
            let op = if held { Op::Unchanged } else { Op::Create };
            actions.push(Action {
                target: ActionTarget::SeatPool(pool.clone()),
                op,
                resource: Resource::License(License { pool: pool.clone() }),
                changes: Vec::new(),
                remote_id: None,
            });
        }
        for (pool, holders) in &observed.seats {
            if holders.contains(&person.id) && !profile.licenses.contains(pool) {
                actions.push(removal(
                    ActionTarget::SeatPool(pool.clone()),
                    Resource::License(License { pool: pool.clone() }),
                ));
            }
        }

        let shows = |path: &str| input.bundle_reads.shows(&profile.name, path);
        match bundle_action(observed, &person.id, &actions, rotate, &shows) {
            BundlePlan::Write { op, new_secrets } => actions.push(Action {
                target: ActionTarget::Bundles,
                op,
                resource: Resource::Bundle(Bundle {
                    path: format!("{}/{username}", input.bundle_root),
                    new_secrets,
                }),
                changes: Vec::new(),
                remote_id: None,
            }),
            BundlePlan::Elsewhere => elsewhere += 1,
            BundlePlan::Keep => {}
        }

        let known = observed.persons.get(&person.id);
        let status = if known.is_none_or(|k| k.withdrawn) {
            PersonStatus::New
        } else if actions.iter().any(|a| a.op != Op::Unchanged) {
            PersonStatus::Changed
        } else {
            PersonStatus::Unchanged
        };
        persons.push(PersonPlan {
            id: person.id.clone(),
            username: username.clone(),
            display_name: person.display_name(),
            profile: profile.name.clone(),
            department: person.department.clone(),
            expires: account.expires,
            status,
            reason: None,
            username_reason,
            sensitive: profile.sensitive,
            actions,
        });
    }

    // Persons on our books who are no longer listed.
    let listed: BTreeSet<&str> = input.persons.iter().map(|p| p.id.as_str()).collect();
    let mut dropped = Vec::new();
    for (id, known) in &observed.persons {
        if listed.contains(id.as_str()) || known.withdrawn && !input.withdraw.contains(id) {
            continue;
        }
        if input.prune || input.withdraw.contains(id) {
            pools.release(id);
            persons.push(PersonPlan {
                id: id.clone(),
                username: known.username.clone(),
                display_name: known.display_name.clone(),
                profile: known.profile.clone(),
                department: None,
                expires: None,
                status: PersonStatus::Withdrawn,
                sensitive: false,
                reason: Some(if input.withdraw.contains(id) {
                    "offboarded".into()
                } else {
                    "no longer in the staff list".into()
                }),
                username_reason: None,
                actions: withdrawal(id, observed),
            });
        } else {
            // Not listed, not withdrawn: they keep what they hold, and the
            // capacity counts it.
            pools.keep(id, input.profiles.get(&known.profile));
            stock.keep(id);
            for (pool, holders) in &observed.seats {
                if holders.contains(id) {
                    *seats.entry(pool).or_default() += 1;
                }
            }
            dropped.push(id.clone());
        }
    }
    second_accounts(observed, &persons, input.persons, &mut problems);
    problems.into_result()?;

    if !dropped.is_empty() {
        warnings.push(Warning {
            kind: WarningKind::Dropped,
            message: format!(
                "{} person(s) provisioned earlier are no longer in the staff list; `plan --prune` withdraws their access",
                dropped.len()
            ),
            persons: dropped,
        });
    }
    if !still_listed.is_empty() {
        warnings.push(Warning {
            kind: WarningKind::Offboarded,
            message: format!(
                "{} offboarded person(s) are still in the staff list and stay withdrawn; `homebase offboard --undo ID` re-admits",
                still_listed.len()
            ),
            persons: still_listed,
        });
    }
    for (target, fields) in &observed.unstored_fields {
        warnings.push(Warning {
            kind: WarningKind::NotStored,
            message: format!(
                "directory \"{target}\": {} not stored by this server (its schema does not declare it); homebase leaves it out",
                fields.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            persons: Vec::new(),
        });
    }
    for message in observed.crl_due.values() {
        warnings.push(Warning {
            kind: WarningKind::Crl,
            message: format!("{message}; `homebase apply` re-issues it"),
            persons: Vec::new(),
        });
    }
    if !ended.is_empty() {
        warnings.push(not_provisioned(&ended));
    }
    if !expiring.is_empty() {
        warnings.push(Warning {
            kind: WarningKind::Expiring,
            message: format!(
                "{} account(s) expire within {} days",
                expiring.len(),
                config.warn_expiry_days
            ),
            persons: expiring,
        });
    }
    warnings.extend(stock.shortages());
    let mut capacity = pools.capacity();
    capacity.extend(stock.capacity());
    for (&pool, &used) in &seats {
        let total = config.licenses.get(pool).map_or(0, |p| u64::from(p.seats));
        capacity.push(usage("seats", pool, used, total));
        if used > total {
            warnings.push(Warning {
                kind: WarningKind::Shortage,
                message: format!(
                    "license \"{pool}\": {} seat(s) missing ({used} needed, {total} bought)",
                    used - total
                ),
                persons: Vec::new(),
            });
        }
    }
    for c in &capacity {
        if c.percent > 90.0 && c.used <= c.total {
            warnings.push(Warning {
                kind: WarningKind::Capacity,
                message: format!(
                    "{} \"{}\" is {:.1} % used ({} of {})",
                    c.kind, c.name, c.percent, c.used, c.total
                ),
                persons: Vec::new(),
            });
        }
    }

    for (target, duplicates) in &observed.duplicate_accounts {
        let examples: Vec<String> = duplicates
            .iter()
            .take(3)
            .map(|(id, names)| format!("{id}: {}", names.join(", ")))
            .collect();
        warnings.push(Warning {
            kind: WarningKind::Unmanaged,
            message: format!(
                "directory \"{target}\": {} person(s) have further accounts carrying their staff id beside the one homebase manages ({}{}); offboarding disables them too — remove them if they are not needed",
                duplicates.len(),
                examples.join("; "),
                if duplicates.len() > 3 { "; …" } else { "" }
            ),
            persons: duplicates.keys().cloned().collect(),
        });
    }
    for person in &mut persons {
        for action in &mut person.actions {
            action.remote_id = observed
                .remote_ids
                .get(action.target.name())
                .and_then(|ids| ids.get(&person.id))
                .cloned();
        }
    }
    persons.sort_by(|a, b| a.id.cmp(&b.id));
    let summary = summarize(config, &persons);
    let estimates = crate::targets::estimates(config, &persons);
    Ok(Plan {
        schema: PLAN_SCHEMA.to_string(),
        homebase_version: env!("CARGO_PKG_VERSION").to_string(),
        today: input.today,
        inputs: input.inputs,
        state_digest: String::new(),
        prune: input.prune,
        summary,
        warnings,
        capacity,
        estimates,
        persons,
        bundles_elsewhere: elsewhere,
        files: observed
            .stale_files
            .iter()
            .map(|(path, reason)| FileRepair {
                path: path.clone(),
                reason: reason.clone(),
            })
            .collect(),
    })
}

/// What happens to a listed person's bundle.
#[derive(Debug, PartialEq, Eq)]
enum BundlePlan {
    Write {
        op: Op,
        new_secrets: bool,
    },
    /// Delivered, and nothing of it needs to change.
    Keep,
    /// Delivered, not on this machine, and no new secrets are due: left as
    /// it is (if the person's access changes, it is marked out of date for
    /// the machine that has it).
    Elsewhere,
}

/// Delivery is recorded, not inferred from the disk (docs/contract.md, "Secrets"): a
/// bundle completed once keeps its keys and password until `--rotate`, even
/// when this machine never had it (a CI runner) or its folder was deleted
/// after handover. New secrets only for a bundle never completed, on
/// request, or when access is created anew or needs a new secret (a new
/// account or peer, a new certificate, a preshared key switched on).
fn bundle_action(
    observed: &Observed,
    id: &str,
    actions: &[Action],
    rotate: bool,
    shows: &dyn Fn(&str) -> bool,
) -> BundlePlan {
    let delivered = observed.bundles.contains(id);
    let here = observed.bundles_here.contains(id);
    let changed = actions.iter().any(|a| bundle_shows_change(a, shows));
    let fresh = actions.iter().any(|a| {
        a.op == Op::Create && matches!(a.resource, Resource::Account(_) | Resource::VpnPeer(_))
    });
    if !delivered {
        return BundlePlan::Write {
            op: Op::Create,
            new_secrets: true,
        };
    }
    if here {
        let stale = observed.stale_bundles.contains(id);
        return if changed || rotate || stale {
            BundlePlan::Write {
                op: Op::Update,
                new_secrets: rotate || fresh,
            }
        } else {
            BundlePlan::Keep
        };
    }
    let new_secret = actions.iter().any(|a| {
        matches!(a.resource, Resource::VpnPeer(_))
            && a.changes.iter().any(|c| {
                c.field == "certificate"
                    || (c.field == "preshared_key" && c.to.as_deref() == Some("true"))
            })
    });
    if rotate || fresh || new_secret {
        BundlePlan::Write {
            op: Op::Create,
            new_secrets: true,
        }
    } else {
        BundlePlan::Elsewhere
    }
}

/// Whether carrying out `action` changes what the person's bundle says. An
/// account update changes it only in fields the bundle's templates read
/// (`shows`: a department the letters do not print is no reason to rewrite
/// them); anything else that changes, does.
pub fn bundle_shows_change(action: &Action, shows: &dyn Fn(&str) -> bool) -> bool {
    if action.op == Op::Unchanged {
        return false;
    }
    if action.op != Op::Update || !matches!(action.resource, Resource::Account(_)) {
        return true;
    }
    action.changes.iter().any(|change| {
        let paths: &[&str] = match change.field.as_str() {
            "given_name" => &["person.given_name"],
            "family_name" => &["person.family_name"],
            "display_name" => &["person.display_name"],
            "department" => &["person.department"],
            "email" => &["account.email", "person.email"],
            "expires" => &["account.expires", "person.end"],
            "groups" => &["account.groups"],
            "username" => &["account.username"],
            // Where the entry lives and its lock are not in the bundle.
            "ou" | "enabled" => &[],
            _ => return true,
        };
        paths.iter().any(|p| shows(p))
    })
}

/// The targets a profile's sections go to.
struct ProfileTargets {
    directory: String,
    vpn: Option<String>,
    inventory: Option<String>,
}

fn profile_targets(config: &Config, profile: &Profile) -> Result<ProfileTargets, String> {
    let directory =
        resolve_target(config, Area::Directory, profile.account.target.as_deref())?.to_string();
    let vpn = match profile.vpn.kind {
        VpnKind::None => None,
        _ => Some(resolve_target(config, Area::Vpn, profile.vpn.target.as_deref())?.to_string()),
    };
    let inventory = if profile.devices.is_empty() {
        None
    } else {
        Some(resolve_target(config, Area::Inventory, None)?.to_string())
    };
    Ok(ProfileTargets {
        directory,
        vpn,
        inventory,
    })
}

/// Each person's username, and for a new name that is not the pattern's
/// own, why: who holds that one.
fn decide_usernames(
    ordered: &[Ordered],
    observed: &Observed,
    problems: &mut Problems,
) -> Vec<(String, Option<String>)> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Names taken: by anyone in any directory, and pinned to persons on our books.
    let mut taken = Taken::default();
    for name in observed.foreign_usernames.values().flatten() {
        taken.insert(name.clone());
    }
    // Who holds each name on our books, by lower-case name: a collision's
    // reason is looked up, not searched for among every known person.
    let mut ours: HashMap<String, (&str, &str)> = HashMap::new();
    for (id, known) in &observed.persons {
        let name = known.username.to_lowercase();
        ours.insert(name.clone(), (id.as_str(), known.display_name.as_str()));
        taken.insert(name);
    }
    // Names given to new persons of this plan, to whom.
    let mut given: BTreeMap<String, &Person> = BTreeMap::new();
    // Each pattern compiled once, not once per person.
    let mut compiled: BTreeMap<&str, Result<minijinja::Template, String>> = BTreeMap::new();
    ordered
        .iter()
        .map(|entry| {
            if let Some(known) = observed.persons.get(&entry.person.id) {
                return (known.username.clone(), None);
            }
            let spec = &entry.profile.account;
            let template = compiled.entry(spec.username.as_str()).or_insert_with(|| {
                env.template_from_str(&spec.username)
                    .map_err(|e| e.to_string())
            });
            let rendered = match template {
                Ok(template) => template
                    .render(pattern_context(entry.person))
                    .map_err(|e| e.to_string()),
                Err(err) => Err(err.clone()),
            };
            let raw = match rendered {
                Ok(raw) => raw,
                Err(err) => {
                    problems.push(
                        Problem::new(
                            format!("profile {}", entry.profile.name),
                            format!("username pattern `{}`: {err}", spec.username),
                        )
                        .key("account.username"),
                    );
                    String::new()
                }
            };
            let base = normalize(&raw, spec.max_length);
            let name = taken.first_free(&base, spec.max_length);
            let reason = (name != base).then(|| {
                format!(
                    "`{base}` is {}",
                    holder_of(&base, observed, &ours, &given).unwrap_or_else(|| "taken".into())
                )
            });
            taken.insert(name.clone());
            given.insert(name.clone(), entry.person);
            (name, reason)
        })
        .collect()
}

/// Who holds `name` (lower-case): a person on our books, an account a
/// target named, or a new person of this plan who came first.
fn holder_of(
    name: &str,
    observed: &Observed,
    ours: &HashMap<String, (&str, &str)>,
    given: &BTreeMap<String, &Person>,
) -> Option<String> {
    if let Some((id, display_name)) = ours.get(name) {
        return Some(format!("held by {id} ({display_name})"));
    }
    for (target, holders) in &observed.username_holders {
        if let Some(holder) = holders.get(name) {
            return Some(format!("held by {holder} (target \"{target}\")"));
        }
    }
    if let Some(person) = given.get(name) {
        return Some(format!(
            "given to {} ({}), who comes first by staff id",
            person.id,
            person.display_name()
        ));
    }
    observed
        .foreign_usernames
        .iter()
        .find(|(_, names)| names.contains(name))
        .map(|(target, _)| format!("held by an account on target \"{target}\""))
}

/// Variables of the username pattern: the person's fields as strings.
fn pattern_context(person: &Person) -> BTreeMap<&str, minijinja::Value> {
    let opt = |v: &Option<String>| minijinja::Value::from(v.clone().unwrap_or_default());
    let mut ctx = BTreeMap::new();
    ctx.insert("id", minijinja::Value::from(person.id.clone()));
    ctx.insert(
        "given_name",
        minijinja::Value::from(person.given_name.clone()),
    );
    ctx.insert(
        "family_name",
        minijinja::Value::from(person.family_name.clone()),
    );
    ctx.insert("email", opt(&person.email));
    ctx.insert("department", opt(&person.department));
    ctx.insert("location", opt(&person.location));
    ctx
}

/// Persons in the staff list whose access ended before it was ever given:
/// said by name, so that nobody drops out of a run without a word.
pub fn not_provisioned(ended: &[(String, NaiveDate)]) -> Warning {
    const NAMED: usize = 5;
    let mut named: Vec<String> = ended
        .iter()
        .take(NAMED)
        .map(|(id, day)| format!("{id} ended {day}"))
        .collect();
    if ended.len() > NAMED {
        named.push(format!("{} more", ended.len() - NAMED));
    }
    Warning {
        kind: WarningKind::NotProvisioned,
        message: format!(
            "{} person(s) in the staff list are not provisioned, their end date has passed: {}",
            ended.len(),
            named.join(", ")
        ),
        persons: ended.iter().map(|(id, _)| id.clone()).collect(),
    }
}

fn desired_account(
    person: &Person,
    profile: &Profile,
    username: &str,
    config: &Config,
    observed: &Observed,
    targets: &ProfileTargets,
    today: NaiveDate,
) -> Account {
    let spec = &profile.account;
    let current = observed
        .accounts
        .get(&targets.directory)
        .and_then(|a| a.get(&person.id));
    // Without an end date, the profile's lifetime counts from the first run and
    // then stays put: a daily re-run must not move it.
    let expires = person.end.or_else(|| {
        spec.expiry_days.map(|days| {
            current.and_then(|c| c.expires).unwrap_or_else(|| {
                person.start.filter(|s| *s > today).unwrap_or(today) + Days::new(u64::from(days))
            })
        })
    });
    let mut groups = spec.groups.clone();
    groups.sort();
    groups.dedup();
    Account {
        username: username.to_string(),
        given_name: person.given_name.clone(),
        family_name: person.family_name.clone(),
        display_name: person.display_name(),
        email: person
            .email
            .clone()
            .unwrap_or_else(|| format!("{username}@{}", config.organisation.domain)),
        department: person.department.clone(),
        groups,
        ou: spec.ou.clone(),
        expires,
        enabled: true,
    }
}

/// `unstored`: fields the target does not store, never a change.
fn diff_account(
    target: &str,
    current: Option<&Account>,
    desired: Account,
    unstored: Option<&BTreeSet<String>>,
) -> Action {
    let Some(current) = current else {
        return Action {
            target: ActionTarget::Target(target.to_string()),
            op: Op::Create,
            resource: Resource::Account(desired),
            changes: Vec::new(),
            remote_id: None,
        };
    };
    let mut changes = Vec::new();
    let mut field = |name: &str, from: Option<String>, to: Option<String>| {
        if from != to && !unstored.is_some_and(|u| u.contains(name)) {
            changes.push(Change {
                field: name.to_string(),
                from,
                to,
            });
        }
    };
    field(
        "given_name",
        Some(current.given_name.clone()),
        Some(desired.given_name.clone()),
    );
    field(
        "family_name",
        Some(current.family_name.clone()),
        Some(desired.family_name.clone()),
    );
    field(
        "display_name",
        Some(current.display_name.clone()),
        Some(desired.display_name.clone()),
    );
    field(
        "email",
        Some(current.email.clone()),
        Some(desired.email.clone()),
    );
    field(
        "department",
        current.department.clone(),
        desired.department.clone(),
    );
    field(
        "groups",
        Some(current.groups.join(", ")),
        Some(desired.groups.join(", ")),
    );
    field("ou", current.ou.clone(), desired.ou.clone());
    field(
        "expires",
        current.expires.map(|d| d.to_string()),
        desired.expires.map(|d| d.to_string()),
    );
    field(
        "enabled",
        Some(current.enabled.to_string()),
        Some(desired.enabled.to_string()),
    );
    let op = if changes.is_empty() {
        Op::Unchanged
    } else {
        Op::Update
    };
    Action {
        target: ActionTarget::Target(target.to_string()),
        op,
        resource: Resource::Account(desired),
        changes,
        remote_id: None,
    }
}

fn removal(target: ActionTarget, resource: Resource) -> Action {
    Action {
        target,
        op: Op::Remove,
        resource,
        changes: Vec::new(),
        remote_id: None,
    }
}

/// Remove everything a person holds: account (disabled), peers, devices, seats.
fn withdrawal(id: &str, observed: &Observed) -> Vec<Action> {
    let mut actions = Vec::new();
    for (target, accounts) in &observed.accounts {
        if let Some(account) = accounts.get(id) {
            let op = if account.enabled {
                Op::Remove
            } else {
                Op::Unchanged
            };
            let mut disabled = account.clone();
            disabled.enabled = false;
            actions.push(Action {
                target: ActionTarget::Target(target.clone()),
                op,
                resource: Resource::Account(disabled),
                changes: Vec::new(),
                remote_id: None,
            });
        }
    }
    for (target, peers) in &observed.peers {
        if let Some(peer) = peers.get(id) {
            actions.push(removal(
                ActionTarget::Target(target.clone()),
                Resource::VpnPeer(peer.clone()),
            ));
        }
    }
    for (target, items) in &observed.stock {
        for item in items
            .iter()
            .filter(|i| i.assigned_to.as_deref() == Some(id))
        {
            actions.push(removal(
                ActionTarget::Target(target.clone()),
                Resource::Device(device_of(item)),
            ));
        }
    }
    for (pool, holders) in &observed.seats {
        if holders.contains(id) {
            actions.push(removal(
                ActionTarget::SeatPool(pool.clone()),
                Resource::License(License { pool: pool.clone() }),
            ));
        }
    }
    actions
}

fn device_of(item: &StockItem) -> Device {
    Device {
        asset_tag: item.asset_tag.clone(),
        serial: item.serial.clone(),
        kind: item.kind.clone(),
        model: item.model.clone(),
    }
}

fn usage(kind: &str, name: &str, used: u64, total: u64) -> Capacity {
    let percent = if total == 0 {
        100.0
    } else {
        used as f64 * 100.0 / total as f64
    };
    Capacity {
        kind: kind.to_string(),
        name: name.to_string(),
        used,
        total,
        percent: (percent * 10.0).round() / 10.0,
    }
}

pub fn summarize(config: &Config, persons: &[PersonPlan]) -> Vec<TargetSummary> {
    // By name first: the summary lists targets, pools and bundles alphabetically.
    let mut by_target: BTreeMap<(&str, &ActionTarget), TargetSummary> = BTreeMap::new();
    for action in persons.iter().flat_map(|p| &p.actions) {
        let key = (action.target.name(), &action.target);
        let entry = by_target.entry(key).or_insert_with(|| {
            let (kind, area) = match &action.target {
                ActionTarget::Target(name) => match config.targets.get(name) {
                    Some(t) => (t.kind().to_string(), t.area()),
                    None => ("unknown".to_string(), action.area()),
                },
                ActionTarget::SeatPool(_) => ("license".to_string(), Area::Inventory),
                ActionTarget::Bundles => ("bundle".to_string(), Area::Bundle),
            };
            TargetSummary {
                target: action.target.name().to_string(),
                kind,
                area,
                create: 0,
                update: 0,
                remove: 0,
                unchanged: 0,
            }
        });
        match action.op {
            Op::Create => entry.create += 1,
            Op::Update => entry.update += 1,
            Op::Remove => entry.remove += 1,
            Op::Unchanged => entry.unchanged += 1,
        }
    }
    by_target.into_values().collect()
}

/// Address pools per VPN target: what is used, and the allocators.
struct Pools<'a> {
    observed: &'a Observed,
    /// Per target: every address in use or reserved (server address, foreign peers,
    /// every managed peer, and what this plan hands out).
    used: BTreeMap<String, BTreeSet<IpAddr>>,
    allocators: BTreeMap<(String, ipnet::IpNet), PoolAllocator>,
}

impl<'a> Pools<'a> {
    fn new(config: &Config, observed: &'a Observed) -> Pools<'a> {
        let mut used: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
        for (name, target) in &config.targets {
            if let Some(address) = target.vpn_address() {
                used.entry(name.clone()).or_default().insert(address.addr());
            }
        }
        for (target, addrs) in &observed.foreign_addresses {
            used.entry(target.clone()).or_default().extend(addrs);
        }
        for (target, peers) in &observed.peers {
            used.entry(target.clone())
                .or_default()
                .extend(peers.values().map(|p| p.address));
        }
        Pools {
            observed,
            used,
            allocators: BTreeMap::new(),
        }
    }

    fn peer_for(
        &mut self,
        target: &str,
        profile: &Profile,
        id: &str,
        expires: Option<NaiveDate>,
        rotate: bool,
    ) -> Result<Action, String> {
        let pool = profile.vpn.pool.ok_or("vpn.pool is not set")?;
        let current = self.observed.peers.get(target).and_then(|p| p.get(id));
        let used = self.used.entry(target.to_string()).or_default();
        // Every pool in use is in the capacity, also when nobody new needs one.
        let alloc = self
            .allocators
            .entry((target.to_string(), pool))
            .or_insert_with(|| PoolAllocator::new(pool));
        let address = match current {
            Some(peer) if is_assignable(pool, peer.address) => peer.address,
            _ => {
                let addr = alloc.next_free(used).ok_or_else(|| {
                    format!("address pool {pool} of VPN target \"{target}\" is exhausted ({} usable addresses)", alloc.size)
                })?;
                used.insert(addr);
                addr
            }
        };
        // An adopted peer keeps its key (and so its preshared key, which the
        // person's own config holds) until `--rotate` issues homebase's own.
        let adopted_key = current
            .and_then(|c| c.adopted_key.clone())
            .filter(|_| !rotate);
        let preshared_key = match (&adopted_key, current) {
            (Some(_), Some(current)) => current.preshared_key,
            _ => profile.vpn.preshared_key,
        };
        let desired = Peer {
            address,
            preshared_key,
            expires,
            adopted_key,
            full_tunnel: profile.vpn.tunnel == Tunnel::Full,
        };
        let Some(current) = current else {
            return Ok(Action {
                target: ActionTarget::Target(target.to_string()),
                op: Op::Create,
                resource: Resource::VpnPeer(desired),
                changes: Vec::new(),
                remote_id: None,
            });
        };
        let mut changes = Vec::new();
        if current.address != desired.address {
            changes.push(Change {
                field: "address".into(),
                from: Some(current.address.to_string()),
                to: Some(desired.address.to_string()),
            });
        }
        if current.preshared_key != desired.preshared_key {
            changes.push(Change {
                field: "preshared_key".into(),
                from: Some(current.preshared_key.to_string()),
                to: Some(desired.preshared_key.to_string()),
            });
        }
        if current.expires != desired.expires {
            changes.push(Change {
                field: "expires".into(),
                from: current.expires.map(|d| d.to_string()),
                to: desired.expires.map(|d| d.to_string()),
            });
        }
        if let Some(why) = self.observed.peer_drift.get(target).and_then(|d| d.get(id)) {
            changes.push(Change {
                field: "server".into(),
                from: Some(why.clone()),
                to: Some("as recorded".into()),
            });
        }
        let op = if changes.is_empty() {
            Op::Unchanged
        } else {
            Op::Update
        };
        Ok(Action {
            target: ActionTarget::Target(target.to_string()),
            op,
            resource: Resource::VpnPeer(desired),
            changes,
            remote_id: None,
        })
    }

    /// A person who keeps their peers: their pools count in the capacity.
    fn keep(&mut self, id: &str, profile: Option<&Profile>) {
        let Some(pool) = profile.and_then(|p| p.vpn.pool) else {
            return;
        };
        for (target, peers) in &self.observed.peers {
            if peers.contains_key(id) {
                self.allocators
                    .entry((target.clone(), pool))
                    .or_insert_with(|| PoolAllocator::new(pool));
            }
        }
    }

    /// A person withdrawn: their addresses are free after this plan.
    fn release(&mut self, id: &str) {
        for (target, peers) in &self.observed.peers {
            if let (Some(peer), Some(used)) = (peers.get(id), self.used.get_mut(target)) {
                used.remove(&peer.address);
            }
        }
    }

    fn capacity(&self) -> Vec<Capacity> {
        self.allocators
            .iter()
            .map(|((target, pool), alloc)| {
                let used = self.used.get(target).map_or(0, |u| {
                    u.iter().filter(|a| is_assignable(*pool, **a)).count()
                });
                usage(
                    "address-pool",
                    &format!("{target} {pool}"),
                    used as u64,
                    alloc.size,
                )
            })
            .collect()
    }
}

/// Device stock per inventory target: free items by (kind, model), holders, shortages.
struct Stock<'a> {
    observed: &'a Observed,
    free: BTreeMap<String, BTreeMap<(String, String), VecDeque<&'a StockItem>>>,
    /// Per target, the items each person holds, in stock order.
    held: BTreeMap<&'a str, std::collections::HashMap<&'a str, Vec<&'a StockItem>>>,
    /// (target, kind, model or "any model") → persons who got too few.
    missing: BTreeMap<(String, String, String), (u64, Vec<String>)>,
    assigned: BTreeMap<(String, String), u64>,
}

impl<'a> Stock<'a> {
    fn new(observed: &'a Observed) -> Stock<'a> {
        let mut free: BTreeMap<String, BTreeMap<(String, String), VecDeque<&StockItem>>> =
            BTreeMap::new();
        for (target, items) in &observed.stock {
            let mut sorted: Vec<&StockItem> = items
                .iter()
                .filter(|i| i.available && i.assigned_to.is_none())
                .collect();
            sorted.sort_by(|a, b| a.asset_tag.cmp(&b.asset_tag));
            let by_model = free.entry(target.clone()).or_default();
            for item in sorted {
                by_model
                    .entry((item.kind.clone(), item.model.clone()))
                    .or_default()
                    .push_back(item);
            }
        }
        let mut held: BTreeMap<&str, std::collections::HashMap<&str, Vec<&StockItem>>> =
            BTreeMap::new();
        for (target, items) in &observed.stock {
            let by_person = held.entry(target.as_str()).or_default();
            for item in items {
                if let Some(id) = item.assigned_to.as_deref() {
                    by_person.entry(id).or_default().push(item);
                }
            }
        }
        Stock {
            observed,
            free,
            held,
            missing: BTreeMap::new(),
            assigned: BTreeMap::new(),
        }
    }

    /// A person who keeps their devices: they count as used.
    fn keep(&mut self, id: &str) {
        for (target, by_person) in &self.held {
            for item in by_person.get(id).into_iter().flatten() {
                *self
                    .assigned
                    .entry((target.to_string(), item.kind.clone()))
                    .or_default() += 1;
            }
        }
    }

    fn devices_for(&mut self, target: &str, id: &str, profile: &Profile) -> Vec<Action> {
        let mut held: Vec<&StockItem> = self
            .held
            .get(target)
            .and_then(|by_person| by_person.get(id))
            .cloned()
            .unwrap_or_default();
        held.sort_by(|a, b| a.asset_tag.cmp(&b.asset_tag));
        let mut actions = Vec::new();
        for spec in &profile.devices {
            let fits = |item: &StockItem| {
                item.kind == spec.kind && spec.model.as_ref().is_none_or(|m| *m == item.model)
            };
            for _ in 0..spec.count {
                if let Some(pos) = held.iter().position(|i| fits(i)) {
                    let item = held.remove(pos);
                    *self
                        .assigned
                        .entry((target.to_string(), item.kind.clone()))
                        .or_default() += 1;
                    actions.push(Action {
                        target: ActionTarget::Target(target.to_string()),
                        op: Op::Unchanged,
                        resource: Resource::Device(device_of(item)),
                        changes: Vec::new(),
                        remote_id: None,
                    });
                    continue;
                }
                let queues = self.free.entry(target.to_string()).or_default();
                let taken = queues
                    .iter_mut()
                    .filter(|((kind, model), q)| {
                        *kind == spec.kind
                            && spec.model.as_ref().is_none_or(|m| m == model)
                            && !q.is_empty()
                    })
                    .find_map(|(_, q)| q.pop_front());
                match taken {
                    Some(item) => {
                        *self
                            .assigned
                            .entry((target.to_string(), item.kind.clone()))
                            .or_default() += 1;
                        actions.push(Action {
                            target: ActionTarget::Target(target.to_string()),
                            op: Op::Create,
                            resource: Resource::Device(device_of(item)),
                            changes: Vec::new(),
                            remote_id: None,
                        });
                    }
                    None => {
                        let model = spec.model.clone().unwrap_or_else(|| "any model".into());
                        let entry = self
                            .missing
                            .entry((target.to_string(), spec.kind.clone(), model))
                            .or_default();
                        entry.0 += 1;
                        if entry.1.last().map(String::as_str) != Some(id) {
                            entry.1.push(id.to_string());
                        }
                    }
                }
            }
        }
        // Devices the profile no longer asks for go back.
        for item in held {
            actions.push(removal(
                ActionTarget::Target(target.to_string()),
                Resource::Device(device_of(item)),
            ));
        }
        actions
    }

    fn shortages(&self) -> Vec<Warning> {
        self.missing
            .iter()
            .map(|((target, kind, model), (count, persons))| Warning {
                kind: WarningKind::Shortage,
                message: format!("{target}: {count} × {kind} ({model}) missing from stock; {} person(s) get none", persons.len()),
                persons: persons.clone(),
            })
            .collect()
    }

    fn capacity(&self) -> Vec<Capacity> {
        let mut totals: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (target, items) in &self.observed.stock {
            for item in items
                .iter()
                .filter(|i| i.available || i.assigned_to.is_some())
            {
                *totals
                    .entry((target.clone(), item.kind.clone()))
                    .or_default() += 1;
            }
        }
        totals
            .into_iter()
            .map(|((target, kind), total)| {
                let used = self
                    .assigned
                    .get(&(target.clone(), kind.clone()))
                    .copied()
                    .unwrap_or(0);
                usage("stock", &format!("{target} {kind}"), used, total)
            })
            .collect()
    }
}
