//! `homebase adopt STAFF... [--target NAME] [--mapping FILE.csv] [--all]`:
//! take over what the targets already hold — directory accounts, VPN peers,
//! checked-out devices — so that existing users keep their accounts, keys
//! and addresses, and `apply` never makes a second account.
//!
//! Each kind says what it holds through its adopt hook
//! (`Target::existing_accounts`, `existing_peers`, `existing_assignments`);
//! the matching is generic: accounts in `adopt/accounts.rs` (staff id, then
//! the mapping, then e-mail/UPN/username, then a unique full name), peers
//! here by the mapping (`public_key,staff_id`) or by a comment above their
//! `[Peer]` naming the person's staff id, email, username or full name;
//! OpenVPN certificates of an easy-rsa PKI the same way, by their common
//! name (the serial stands for the key: `public_key` in the mapping).
//! What matches is recorded in the state store; everything else stays
//! foreign: kept, never changed. Without `--yes` nothing is recorded.
//!
//! `--all` rebuilds a lost state store: every target, plus the bundles
//! still on this machine. A bundle whose WireGuard private key belongs to
//! the adopted peer makes it homebase's own again; a bundle found marks the
//! person delivered, so no new key or password is issued; the licence seats
//! the plan gives adopted persons are recorded (they are homebase's own
//! bookkeeping, with nothing outside to read them back from).
//!
//! The mapping is the admin's explicit word: a row that cannot be honoured
//! (unknown person, key or account; one key or account for two persons; an
//! address outside the person's pool) refuses the whole run with exit 2.
//! A match that cannot be honoured leaves its account or peer foreign, with
//! the reason in the report.

mod accounts;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::AdoptArgs;
use crate::error::{ExitCode, Failure, Problem, Problems};
use crate::plan::{
    build, is_assignable, ActionTarget, Device, Inputs, KnownPerson, Observed, Op, Peer,
    PersonPlan, PersonStatus, PlanInput, Resource,
};
use crate::settings::Settings;
use crate::state::{Entry, EntryOutcome, ResourceKind, RunInfo, RunOutcome, Store, WriteOp};
use crate::targets::{Connected, ExistingPeer as Existing};

/// How a peer was matched.
#[derive(Debug, Clone)]
enum Via {
    Mapping {
        line: usize,
    },
    Comment(String),
    /// An easy-rsa certificate's common name.
    CommonName(String),
}

struct Adopted<'p> {
    person: &'p PersonPlan,
    peer: Existing,
    /// The peer's address, or for a certificate without one the address the
    /// plan gives the person.
    address: std::net::IpAddr,
    via: Via,
}

#[derive(Default)]
struct TargetReport<'p> {
    source: String,
    total: usize,
    adopted: Vec<Adopted<'p>>,
    /// Already on our books with this key.
    known: usize,
    foreign: Vec<Existing>,
    /// Comment matches that could not be honoured: (peer, reason).
    refused: Vec<(Existing, String)>,
    /// The target holds certificates (named by common name), not peers.
    certificates: bool,
}

/// What each kind of target can give.
#[derive(Default)]
struct Chosen {
    accounts: Vec<String>,
    peers: Vec<String>,
    devices: Vec<String>,
}

/// Devices of one inventory target.
#[derive(Default)]
struct DeviceReport<'p> {
    total: usize,
    adopted: Vec<(&'p PersonPlan, Device)>,
    known: usize,
    /// (asset tag, why).
    refused: Vec<(String, String)>,
}

pub fn run(settings: &'static Settings, args: &AdoptArgs) -> Result<ExitCode> {
    let persons = super::load_persons(settings, &args.staff.files, args.staff.sheet.as_deref())?;
    let chosen = adoptable_targets(settings, args.target.as_deref())?;
    // Rows that cannot be read are reported with every other problem.
    let (mapping, mapping_problems) = match &args.mapping {
        Some(path) => read_mapping(path)?,
        None => (Vec::new(), Problems::default()),
    };
    let connected = Connected::connect(settings)?;
    let mut observed = connected.observe(settings)?;
    // What adopt takes over is what would otherwise stop the plan.
    observed.unmanaged_accounts.clear();
    let withdraw = BTreeSet::new();
    let plan = build(PlanInput {
        persons: &persons,
        profiles: &settings.profiles,
        config: &settings.config,
        observed: &observed,
        today: settings.today.day,
        prune: false,
        withdraw: &withdraw,
        rotate: &crate::plan::Rotation::None,
        bundle_root: settings.out_dir.display().to_string(),
        bundle_reads: &settings.templates.bundle_reads(&settings.profiles),
        inputs: Inputs {
            staff_files: Vec::new(),
            config: settings.config_source.clone(),
            digest: String::new(),
        },
    })
    .map_err(Failure::Invalid)?;
    let by_id: BTreeMap<&str, &PersonPlan> =
        plan.persons.iter().map(|p| (p.id.as_str(), p)).collect();
    let index = NameIndex::new(&plan.persons, &persons);
    let account_index = accounts::Index::new(&plan.persons, &persons);
    let pools: BTreeMap<String, Option<ipnet::IpNet>> = settings
        .profiles
        .profiles
        .iter()
        .map(|(name, profile)| (name.clone(), profile.vpn.pool))
        .collect();
    let store = Store::open_existing_read_only_at(&settings.state)?;

    let mut problems = mapping_problems;
    let mapping_source = args
        .mapping
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // A mapping row for a person not listed is refused before any matching.
    for row in &mapping {
        if !by_id.contains_key(row.staff_id.as_str()) {
            problems.push(
                Problem::new(
                    &mapping_source,
                    format!("staff id \"{}\" is not in the staff list", row.staff_id),
                )
                .at_line(row.line)
                .column("staff_id"),
            );
        }
    }
    for (line, column, why) in mapping_conflicts(&mapping) {
        problems.push(
            Problem::new(&mapping_source, why)
                .at_line(line)
                .column(column),
        );
    }

    // Accounts first: an adopted account's username names the bundle folder.
    let staff: BTreeMap<String, KnownPerson> = plan
        .persons
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                KnownPerson {
                    username: observed
                        .persons
                        .get(&p.id)
                        .map_or_else(|| p.username.clone(), |k| k.username.clone()),
                    display_name: p.display_name.clone(),
                    profile: p.profile.clone(),
                    withdrawn: false,
                    offboarded: false,
                },
            )
        })
        .collect();
    let mut account_reports = Vec::new();
    let mut used_rows = Vec::new();
    for name in &chosen.accounts {
        let target = connected
            .get(name)
            .with_context(|| format!("target \"{name}\" is not connected"))?;
        let wanted: BTreeMap<String, crate::plan::Account> = plan
            .persons
            .iter()
            .flat_map(|p| p.actions.iter().map(move |a| (p, a)))
            .filter(|(_, a)| a.target.target() == Some(name.as_str()))
            .filter_map(|(p, a)| match &a.resource {
                Resource::Account(account) => Some((p.id.clone(), account.clone())),
                _ => None,
            })
            .collect();
        let Some((source, existing)) = connected
            .runtime()
            .block_on(target.existing_accounts(name, settings, &staff, &wanted))?
        else {
            continue;
        };
        let report = accounts::match_accounts(
            name,
            source,
            existing,
            &account_index,
            &mapping,
            &observed,
            &mut used_rows,
        );
        account_reports.push((name.clone(), report));
    }
    // The username each adopted person keeps.
    let mut usernames: BTreeMap<&str, String> = BTreeMap::new();
    for (_, report) in &account_reports {
        for a in &report.adopted {
            usernames
                .entry(a.person.id.as_str())
                .or_insert_with(|| a.existing.account.username.clone());
        }
    }
    let username_of = |person: &PersonPlan| -> String {
        observed
            .persons
            .get(&person.id)
            .map(|k| k.username.clone())
            .or_else(|| usernames.get(person.id.as_str()).cloned())
            .unwrap_or_else(|| person.username.clone())
    };

    let mut reports = Vec::new();
    let mut mapped_keys = BTreeSet::new();
    for name in &chosen.peers {
        let target = connected
            .get(name)
            .with_context(|| format!("target \"{name}\" is not connected"))?;
        let (source, existing) = connected
            .runtime()
            .block_on(target.existing_peers(name, settings))?
            .with_context(|| format!("target \"{name}\" holds no VPN peers to adopt"))?;
        let recorded: BTreeMap<String, String> = match &store {
            Some(store) => store
                .peers(name)?
                .into_iter()
                .map(|(id, _, key)| (key, id))
                .collect(),
            None => BTreeMap::new(),
        };
        let has_peer: BTreeSet<&str> = recorded.values().map(String::as_str).collect();
        let mut report = TargetReport {
            source,
            total: existing.len(),
            certificates: target.holds_certificates(),
            ..TargetReport::default()
        };
        let mut candidates: Vec<(Existing, &PersonPlan, std::net::IpAddr, Via)> = Vec::new();
        for peer in existing {
            if recorded.contains_key(&peer.public_key) {
                report.known += 1;
                continue;
            }
            let mapped = mapping
                .iter()
                .find(|row| row.public_key.as_deref() == Some(peer.public_key.as_str()));
            if let Some(row) = mapped {
                mapped_keys.insert(peer.public_key.clone());
                let problem = |why: String| {
                    Problem::new(&mapping_source, why)
                        .at_line(row.line)
                        .column("staff_id")
                };
                // Unknown staff ids are refused above.
                if let Some(person) = by_id.get(row.staff_id.as_str()) {
                    match check(person, &peer, name, &has_peer, &pools) {
                        Ok(address) => candidates.push((
                            peer,
                            person,
                            address,
                            Via::Mapping { line: row.line },
                        )),
                        Err(why) => problems.push(problem(why)),
                    }
                }
                continue;
            }
            match index.find(&peer.comments) {
                Ok(Some((person, comment))) => {
                    let via = if peer.certificates.is_empty() {
                        Via::Comment(comment)
                    } else {
                        Via::CommonName(comment)
                    };
                    match check(person, &peer, name, &has_peer, &pools) {
                        Ok(address) => candidates.push((peer, person, address, via)),
                        Err(why) => report.refused.push((peer, why)),
                    }
                }
                Ok(None) => report.foreign.push(peer),
                Err(why) => report.refused.push((peer, why)),
            }
        }
        // One peer per person: a person claimed twice gets neither.
        let mut claims: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, person, _, _) in &candidates {
            *claims.entry(person.id.as_str()).or_default() += 1;
        }
        for (peer, person, address, via) in candidates {
            if claims[person.id.as_str()] == 1 {
                report.adopted.push(Adopted {
                    person,
                    peer,
                    address,
                    via,
                });
                continue;
            }
            let why = format!("several peers name {} ({})", person.id, person.username);
            match via {
                Via::Mapping { line } => problems.push(
                    Problem::new(&mapping_source, why)
                        .at_line(line)
                        .column("staff_id"),
                ),
                Via::Comment(_) | Via::CommonName(_) => report.refused.push((peer, why)),
            }
        }
        reports.push((name.clone(), report));
    }
    for row in &mapping {
        let unused_key = row
            .public_key
            .as_ref()
            .is_some_and(|k| !mapped_keys.contains(k));
        if unused_key {
            problems.push(
                Problem::new(&mapping_source, "no peer of the server has this public key")
                    .at_line(row.line)
                    .column("public_key"),
            );
        }
        if row.account.is_some() && !used_rows.contains(&row.line) {
            problems.push(
                Problem::new(
                    &mapping_source,
                    "no account without a staff id has this username or DN",
                )
                .at_line(row.line)
                .column("account"),
            );
        }
    }

    // Devices: by staff id, else by the username the person keeps.
    let mut device_reports = Vec::new();
    for name in &chosen.devices {
        let target = connected
            .get(name)
            .with_context(|| format!("target \"{name}\" is not connected"))?;
        let Some(found) = connected
            .runtime()
            .block_on(target.existing_assignments(name, settings))?
        else {
            continue;
        };
        let recorded = match &store {
            Some(store) => store.device_assignments(name)?,
            None => BTreeMap::new(),
        };
        device_reports.push((
            name.clone(),
            match_devices(
                name,
                found,
                &plan.persons,
                &username_of,
                &observed,
                &recorded,
            ),
        ));
    }

    // Bundles (--all): a bundle on disk is delivered; its WireGuard key,
    // when it belongs to the adopted peer, makes the peer ours again.
    let mut bundles: BTreeMap<&str, crate::apply::secrets::PersonSecrets> = BTreeMap::new();
    if args.all {
        for person in &plan.persons {
            if observed.bundles.contains(&person.id) {
                continue;
            }
            let dir = settings.out_dir.join(username_of(person));
            if let Some(secrets) = crate::apply::secrets::PersonSecrets::read(&dir)? {
                bundles.insert(person.id.as_str(), secrets);
            }
        }
    }

    problems.0.sort_by_key(|p| p.line);
    problems
        .0
        .dedup_by(|a, b| a.line == b.line && a.message == b.message);

    let mut out = render(&reports);
    out.push_str(&render_accounts(&account_reports));
    out.push_str(&render_devices(&device_reports));
    if args.all {
        let _ = writeln!(
            out,
            "bundles: {} found in {} (their keys and passwords are kept)",
            bundles.len(),
            settings.out_dir.display()
        );
    }
    crate::output::print_stdout(&out)?;
    if !problems.is_empty() {
        return Err(Failure::Invalid(problems).into());
    }
    let count: usize = reports.iter().map(|(_, r)| r.adopted.len()).sum::<usize>()
        + account_reports
            .iter()
            .map(|(_, r)| r.adopted.len())
            .sum::<usize>()
        + device_reports
            .iter()
            .map(|(_, r)| r.adopted.len())
            .sum::<usize>()
        + bundles.len();
    if !settings.output.assume_yes {
        settings.output.info(format!(
            "dry run: nothing recorded; run again with --yes to adopt {count} item(s)"
        ));
        return Ok(ExitCode::Success);
    }
    if count == 0 {
        settings.output.info("nothing to adopt");
        return Ok(ExitCode::Success);
    }
    let _lock = super::lock(settings, args.lock_timeout)?;
    let mut store = Store::open_at(&settings.state)?;
    let run = store.begin_run(&RunInfo::from_env(super::apply::command_line(), None))?;
    let journal = |person: &PersonPlan, target: &str, kind: ResourceKind, message: String| {
        WriteOp::Entry(Entry::new(
            run,
            Some(&person.id),
            target,
            kind,
            Op::Unchanged,
            EntryOutcome::Ok,
            message,
        ))
    };
    let mut ops = Vec::new();
    let mut pinned = BTreeSet::new();
    let mut pin = |ops: &mut Vec<WriteOp>, person: &PersonPlan| {
        if pinned.insert(person.id.clone()) {
            ops.push(WriteOp::PinPerson {
                id: person.id.clone(),
                username: username_of(person),
                display_name: person.display_name.clone(),
                profile: person.profile.clone(),
            });
        }
    };
    for (target, report) in &account_reports {
        for a in &report.adopted {
            pin(&mut ops, a.person);
            ops.push(WriteOp::PutAccount {
                target: target.clone(),
                person_id: a.person.id.clone(),
                account: a.existing.account.clone(),
                remote_id: a.existing.remote_id.clone(),
            });
            ops.push(journal(
                a.person,
                target,
                ResourceKind::Account,
                format!(
                    "adopted account {} (by {})",
                    a.existing.account.username,
                    a.via.describe()
                ),
            ));
        }
    }
    for (target, report) in &reports {
        for adopted in &report.adopted {
            let person = adopted.person;
            let address = adopted.address;
            pin(&mut ops, person);
            // The bundle on disk holds this peer's private key (or the
            // certificate homebase issued): ours again.
            let own = bundles.get(person.id.as_str()).is_some_and(|s| {
                let key = Some(adopted.peer.public_key.as_str());
                s.wg_public_key().as_deref() == key || s.ovpn_serial().as_deref() == key
            });
            let peer = Peer {
                address,
                preshared_key: adopted.peer.has_psk,
                expires: person.expires,
                adopted_key: (!own).then(|| adopted.peer.public_key.clone()),
                // The adoption is recorded, not planned: the tunnel mode is the
                // profile's, set when the plan is made.
                full_tunnel: false,
            };
            let public_key = adopted.peer.public_key.clone();
            ops.push(if own {
                WriteOp::PutPeer {
                    target: target.clone(),
                    person_id: person.id.clone(),
                    peer,
                    public_key,
                }
            } else {
                WriteOp::AdoptPeer {
                    target: target.clone(),
                    person_id: person.id.clone(),
                    peer,
                    public_key,
                }
            });
            // An easy-rsa certificate: recorded (serial and validity), oldest
            // first, so the newest is the person's and older ones of the same
            // name are revoked as superseded — offboarding must reach them all.
            for (serial, not_after) in &adopted.peer.certificates {
                ops.push(WriteOp::PutCertificate {
                    target: target.clone(),
                    person_id: person.id.clone(),
                    serial: serial.clone(),
                    not_after: *not_after,
                    access_end: person.expires,
                });
            }
            ops.push(journal(
                person,
                target,
                ResourceKind::VpnPeer,
                if adopted.peer.certificates.is_empty() {
                    format!("adopted peer {address}")
                } else {
                    format!(
                        "adopted certificate {} ({address})",
                        adopted.peer.public_key
                    )
                },
            ));
        }
    }
    for (target, report) in &device_reports {
        for (person, device) in &report.adopted {
            pin(&mut ops, person);
            ops.push(WriteOp::AssignDevice {
                target: target.clone(),
                person_id: person.id.clone(),
                device: device.clone(),
            });
            ops.push(journal(
                person,
                target,
                ResourceKind::Device,
                format!("adopted device {}", device.asset_tag),
            ));
        }
    }
    if args.all {
        for person in plan
            .persons
            .iter()
            .filter(|p| bundles.contains_key(p.id.as_str()))
        {
            pin(&mut ops, person);
            ops.push(WriteOp::SetBundle {
                person_id: person.id.clone(),
                fingerprint: "adopted".into(),
            });
            ops.push(journal(
                person,
                "bundles",
                ResourceKind::Bundle,
                "adopted the bundle on disk".into(),
            ));
        }
        // Seats: the plan's, for every person adopted in some way.
        for person in plan.persons.iter().filter(|p| pinned.contains(&p.id)) {
            for action in &person.actions {
                if let (ActionTarget::SeatPool(pool), Op::Create) = (&action.target, action.op) {
                    ops.push(WriteOp::AddSeat {
                        pool: pool.clone(),
                        person_id: person.id.clone(),
                    });
                }
            }
        }
    }
    store.write_all(&ops)?;
    store.finish_run(run, RunOutcome::Success, count as u64, 0)?;
    settings.output.info(format!(
        "adopted {count} item(s); `homebase apply` now provisions the rest and keeps these"
    ));
    Ok(ExitCode::Success)
}

/// Devices named as checked out, matched to persons by staff id or the
/// username they keep.
fn match_devices<'p>(
    target: &str,
    found: Vec<crate::targets::ExistingAssignment>,
    plans: &'p [PersonPlan],
    username_of: &dyn Fn(&PersonPlan) -> String,
    observed: &Observed,
    recorded: &BTreeMap<String, String>,
) -> DeviceReport<'p> {
    let stock: BTreeMap<&str, &crate::plan::StockItem> = observed
        .stock
        .get(target)
        .map(|items| items.iter().map(|i| (i.asset_tag.as_str(), i)).collect())
        .unwrap_or_default();
    let mut holders: BTreeMap<String, &'p PersonPlan> = BTreeMap::new();
    for plan in plans {
        holders.insert(normalize(&plan.id), plan);
        holders.insert(normalize(&username_of(plan)), plan);
    }
    let mut report = DeviceReport::default();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for a in found {
        let who = normalize(&a.holder);
        let at = if a.line > 0 {
            format!("{}:{}", a.file, a.line)
        } else {
            a.file.clone()
        };
        match seen.get(&a.asset_tag) {
            Some(first) if *first == who => continue,
            Some(first) => {
                report.refused.push((
                    a.asset_tag.clone(),
                    format!(
                        "{at}: assigned to \"{}\" here and to \"{first}\" before",
                        a.holder
                    ),
                ));
                report.adopted.retain(|(_, d)| d.asset_tag != a.asset_tag);
                continue;
            }
            None => {
                seen.insert(a.asset_tag.clone(), who.clone());
            }
        }
        report.total += 1;
        let Some(item) = stock.get(a.asset_tag.as_str()) else {
            report
                .refused
                .push((a.asset_tag.clone(), format!("{at}: not in the stock list")));
            continue;
        };
        if recorded.contains_key(&a.asset_tag) {
            report.known += 1;
            continue;
        }
        let Some(person) = holders.get(&who) else {
            report.refused.push((
                a.asset_tag.clone(),
                format!("{at}: \"{}\" is nobody listed", a.holder),
            ));
            continue;
        };
        report.adopted.push((
            person,
            Device {
                asset_tag: item.asset_tag.clone(),
                serial: item.serial.clone(),
                kind: item.kind.clone(),
                model: item.model.clone(),
            },
        ));
    }
    report
}

/// The targets to adopt from: the one named, or every one whose kind can.
fn adoptable_targets(settings: &Settings, named: Option<&str>) -> Result<Chosen> {
    let mut chosen = Chosen::default();
    let mut add = |name: &str, t: &crate::targets::TargetConfig| {
        if t.adopts_peers() {
            chosen.peers.push(name.to_string());
        } else if t.adopts_accounts() {
            chosen.accounts.push(name.to_string());
        } else if t.adopts_devices() {
            chosen.devices.push(name.to_string());
        } else {
            return false;
        }
        true
    };
    if let Some(name) = named {
        return match settings.config.targets.get(name) {
            Some(t) if add(name, t) => Ok(chosen),
            Some(t) => Err(Failure::usage(format!(
                "target \"{name}\" is a {} target; adopt takes accounts (local, ldap, scim), VPN peers (wireguard, wireguard-file), certificates (openvpn) and devices (csv, snipeit)",
                t.kind()
            ))
            .into()),
            None => Err(Failure::usage(format!("no target named \"{name}\" in the configuration")).into()),
        };
    }
    let mut any = false;
    for (name, t) in &settings.config.targets {
        any |= add(name, t);
    }
    if !any {
        return Err(Failure::usage("the configuration has no target that adopt can read").into());
    }
    Ok(chosen)
}

/// Whether `peer` can become `person`'s peer on `target`.
fn check(
    person: &PersonPlan,
    peer: &Existing,
    target: &str,
    has_peer: &BTreeSet<&str>,
    pools: &BTreeMap<String, Option<ipnet::IpNet>>,
) -> Result<std::net::IpAddr, String> {
    let who = format!("{} ({})", person.id, person.username);
    if person.status == PersonStatus::Withdrawn {
        return Err(format!(
            "{who} is withdrawn ({})",
            person.reason.as_deref().unwrap_or("")
        ));
    }
    let planned = person.actions.iter().find_map(|a| match &a.resource {
        Resource::VpnPeer(peer) if a.target.target() == Some(target) => Some(peer.address),
        _ => None,
    });
    let Some(planned) = planned else {
        return Err(format!(
            "the profile \"{}\" of {who} has no VPN access on \"{target}\"",
            person.profile
        ));
    };
    if has_peer.contains(person.id.as_str()) {
        return Err(format!("{who} has another peer on \"{target}\" already"));
    }
    // A certificate pushes no address of its own unless a client-config-dir
    // file did: then the person gets the one the plan gives them.
    let address = match peer.address {
        None if !peer.certificates.is_empty() => Some(planned),
        address => address,
    };
    let Some(address) = address else {
        return Err(format!(
            "the peer routes {} rather than one address",
            if peer.allowed_ips.is_empty() {
                "nothing".to_string()
            } else {
                peer.allowed_ips.join(", ")
            }
        ));
    };
    match pools.get(&person.profile).copied().flatten() {
        Some(pool) if is_assignable(pool, address) => Ok(address),
        Some(pool) => Err(format!(
            "{address} lies outside the pool {pool} of {who}'s profile \"{}\"",
            person.profile
        )),
        None => Err(format!(
            "the profile \"{}\" of {who} has no address pool",
            person.profile
        )),
    }
}

/// Staff ids, emails, usernames and full names → persons, for comments.
struct NameIndex<'p> {
    ids: BTreeMap<String, &'p PersonPlan>,
    names: BTreeMap<String, Vec<&'p PersonPlan>>,
}

fn normalize(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

impl<'p> NameIndex<'p> {
    fn new(plans: &'p [PersonPlan], persons: &[crate::input::Person]) -> NameIndex<'p> {
        let emails: BTreeMap<&str, &str> = persons
            .iter()
            .filter_map(|p| Some((p.id.as_str(), p.email.as_deref()?)))
            .collect();
        let mut index = NameIndex {
            ids: BTreeMap::new(),
            names: BTreeMap::new(),
        };
        for plan in plans {
            index.ids.insert(normalize(&plan.id), plan);
            index.ids.insert(normalize(&plan.username), plan);
            if let Some(email) = emails.get(plan.id.as_str()) {
                index.ids.insert(normalize(email), plan);
            }
            index
                .names
                .entry(normalize(&plan.display_name))
                .or_default()
                .push(plan);
        }
        index
    }

    /// The person a peer's comments name: `Ok(None)` when none does, `Err`
    /// when a name fits several persons.
    fn find(&self, comments: &[String]) -> Result<Option<(&'p PersonPlan, String)>, String> {
        for comment in comments {
            // `# homebase: P1`, `# staff_id = P1`, `# Name: Erika Muster`, or the bare value.
            let value = match comment.split_once([':', '=']) {
                Some((label, value))
                    if !label.trim().is_empty()
                        && label.trim().chars().all(|c| {
                            c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ' '
                        })
                        && label.trim().len() <= 20 =>
                {
                    value
                }
                _ => comment.as_str(),
            };
            let key = normalize(value);
            if key.is_empty() {
                continue;
            }
            if let Some(person) = self.ids.get(&key) {
                return Ok(Some((person, comment.clone())));
            }
            match self.names.get(&key).map(Vec::as_slice) {
                Some([person]) => return Ok(Some((person, comment.clone()))),
                Some(several) if several.len() > 1 => {
                    return Err(format!(
                        "the comment \"{comment}\" fits {} persons",
                        several.len()
                    ))
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

pub(crate) struct MappingRow {
    line: usize,
    /// A WireGuard peer's key…
    public_key: Option<String>,
    /// …or a directory account's username or DN.
    account: Option<String>,
    staff_id: String,
}

fn invalid(problem: Problem) -> anyhow::Error {
    Failure::Invalid(Problems(vec![problem])).into()
}

/// `staff_id` with `public_key` and/or `account` (header required, columns
/// in any order): which peer or account is whose. An unusable header is an
/// error; unusable rows come back as problems beside the usable ones.
fn read_mapping(path: &Path) -> Result<(Vec<MappingRow>, Problems)> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(Problem::new(&source, format!("cannot read: {e}"))))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| invalid(Problem::new(&source, e.to_string()).at_line(1)))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (key_at, account_at) = (column("public_key"), column("account"));
    let Some(id_at) = column("staff_id").filter(|_| key_at.is_some() || account_at.is_some())
    else {
        return Err(invalid(
            Problem::new(
                &source,
                "the header lacks staff_id, or both public_key and account",
            )
            .at_line(1)
            .expected("a header line `public_key,staff_id` or `account,staff_id`"),
        ));
    };
    let mut problems = Problems::default();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                problems.push(Problem::new(&source, e.to_string()).at_line(line));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let get = |at: Option<usize>| {
            at.and_then(|i| record.get(i))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let (public_key, account) = (get(key_at), get(account_at));
        let staff_id = get(Some(id_at)).unwrap_or_default();
        if record.len() != headers.len() {
            problems.push(
                Problem::new(
                    &source,
                    format!(
                        "{} field(s) where the header has {}",
                        record.len(),
                        headers.len()
                    ),
                )
                .at_line(line),
            );
            continue;
        }
        if let Some(key) = &public_key {
            if !crate::targets::is_peer_key(key) {
                problems.push(
                    Problem::new(&source, format!("\"{key}\" is not a WireGuard public key"))
                        .at_line(line)
                        .column("public_key")
                        .expected("44 characters of base64, as `wg show` prints it"),
                );
                continue;
            }
        }
        if public_key.is_none() && account.is_none() {
            problems.push(
                Problem::new(&source, "names neither a public key nor an account").at_line(line),
            );
            continue;
        }
        if staff_id.is_empty() {
            problems.push(
                Problem::new(&source, "empty staff id")
                    .at_line(line)
                    .column("staff_id"),
            );
            continue;
        }
        rows.push(MappingRow {
            line,
            public_key,
            account,
            staff_id,
        });
    }
    Ok((rows, problems))
}

/// Rows that contradict others: one key or account for two persons, two
/// keys or accounts for one person.
fn mapping_conflicts(rows: &[MappingRow]) -> Vec<(usize, &'static str, String)> {
    let mut conflicts = Vec::new();
    for (what, column, key_of) in [
        (
            "key",
            "public_key",
            (|r: &MappingRow| r.public_key.clone()) as fn(&MappingRow) -> Option<String>,
        ),
        ("account", "account", |r: &MappingRow| {
            r.account.as_deref().map(normalize)
        }),
    ] {
        let mut by_key: BTreeMap<String, &MappingRow> = BTreeMap::new();
        let mut by_id: BTreeMap<&str, &MappingRow> = BTreeMap::new();
        for row in rows {
            let Some(key) = key_of(row) else {
                continue;
            };
            if let Some(first) = by_key.insert(key.clone(), row) {
                if first.staff_id != row.staff_id {
                    conflicts.push((
                        row.line,
                        column,
                        format!(
                            "this {what} is mapped to {} on line {} and to {} here",
                            first.staff_id, first.line, row.staff_id
                        ),
                    ));
                }
            }
            if let Some(first) = by_id.insert(&row.staff_id, row) {
                if key_of(first).as_deref() != Some(key.as_str()) {
                    conflicts.push((
                        row.line,
                        column,
                        format!("{} has another {what} on line {}", row.staff_id, first.line),
                    ));
                }
            }
        }
    }
    conflicts
}

fn render_accounts(reports: &[(String, accounts::AccountReport)]) -> String {
    let mut out = String::new();
    for (name, r) in reports {
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        for a in &r.adopted {
            let via = match a.via {
                accounts::Via::Mapping { .. } => "mapping".to_string(),
                via => via.describe(),
            };
            *by.entry(via).or_default() += 1;
        }
        let by: Vec<String> = by.iter().map(|(via, n)| format!("{n} by {via}")).collect();
        let _ = writeln!(out, "{name}: {} accounts in {}", r.total, r.source);
        let _ = writeln!(
            out,
            "  adopt:        {}{}",
            r.adopted.len(),
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            }
        );
        let _ = writeln!(out, "  already ours: {}", r.known);
        let _ = writeln!(out, "  ambiguous:    {} (left alone)", r.ambiguous.len());
        for (account, why) in &r.ambiguous {
            let _ = writeln!(out, "    ? {account}: {why}");
        }
        let _ = writeln!(out, "  unmatched:    {} (foreign, left alone)", r.unmatched);
        for a in &r.adopted {
            let _ = writeln!(
                out,
                "  + {} {} by {}",
                a.person.id,
                accounts::label(&a.existing),
                a.via.describe()
            );
        }
    }
    out
}

fn render_devices(reports: &[(String, DeviceReport)]) -> String {
    let mut out = String::new();
    for (name, r) in reports {
        let _ = writeln!(out, "{name}: {} devices named as checked out", r.total);
        let _ = writeln!(out, "  adopt:        {}", r.adopted.len());
        let _ = writeln!(out, "  already ours: {}", r.known);
        let _ = writeln!(out, "  not adopted:  {}", r.refused.len());
        for (tag, why) in &r.refused {
            let _ = writeln!(out, "    {tag}: {why}");
        }
    }
    out
}

fn short(key: &str) -> &str {
    key.get(..8).unwrap_or(key)
}

fn render(reports: &[(String, TargetReport)]) -> String {
    let mut out = String::new();
    for (name, r) in reports {
        let by_mapping = r
            .adopted
            .iter()
            .filter(|a| matches!(a.via, Via::Mapping { .. }))
            .count();
        let certificates = r.certificates;
        let (items, matched_by) = if certificates {
            ("valid certificates", "common name")
        } else {
            ("peers", "comment")
        };
        let _ = writeln!(out, "{name}: {} {items} in {}", r.total, r.source);
        let _ = writeln!(
            out,
            "  adopt:        {} ({} by {matched_by}, {by_mapping} by mapping)",
            r.adopted.len(),
            r.adopted.len() - by_mapping
        );
        let _ = writeln!(out, "  already ours: {}", r.known);
        let _ = writeln!(
            out,
            "  foreign:      {} ({})",
            r.foreign.len() + r.refused.len(),
            if certificates {
                "kept valid: homebase neither renews nor revokes them"
            } else {
                "kept; their addresses are never handed out"
            }
        );
        for (peer, why) in &r.refused {
            let _ = writeln!(
                out,
                "    not adopted {}… {}: {why}",
                short(&peer.public_key),
                peer.address
                    .map_or_else(|| peer.allowed_ips.join(","), |a| a.to_string())
            );
        }
        for a in &r.adopted {
            let via = match &a.via {
                Via::Mapping { line } => format!("mapping line {line}"),
                Via::Comment(c) => format!("comment \"{c}\""),
                Via::CommonName(c) => format!("common name \"{c}\""),
            };
            let _ = writeln!(
                out,
                "  + {} {} {} {}… by {via}",
                a.person.id,
                a.person.username,
                a.address,
                short(&a.peer.public_key),
            );
            let older = a.peer.certificates.len().saturating_sub(1);
            if older > 0 {
                let _ = writeln!(
                    out,
                    "    {older} older valid certificate(s) of the same name: revoked as superseded in the next CRL"
                );
            }
        }
    }
    out
}
