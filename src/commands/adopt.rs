//! `homebase adopt STAFF... [--target NAME] [--mapping FILE.csv]`: take over
//! the peers a WireGuard server already has (its running interface, or its
//! `wg0.conf`), so that existing users keep their keys and addresses.
//!
//! A peer is matched to a person by the CSV mapping (`public_key,staff_id`),
//! else by a comment above its `[Peer]` naming the person's staff id, email,
//! username or full name. What matches is recorded in the state store as
//! the person's peer, marked adopted: homebase never had its private key and
//! issues none. Everything else stays foreign: kept, its address never
//! handed out. Without `--yes` nothing is recorded (a dry run).
//!
//! The mapping is the admin's explicit word: a row that cannot be honoured
//! (unknown person or key, two persons for one key, an address outside the
//! person's pool) refuses the whole run with exit 2. A comment that cannot be
//! honoured leaves its peer foreign, with the reason in the report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::AdoptArgs;
use crate::error::{ExitCode, Failure, Problem, Problems};
use crate::plan::{
    build, is_assignable, Inputs, Peer, PersonPlan, PersonStatus, PlanInput, Resource,
};
use crate::settings::Settings;
use crate::state::{RunInfo, RunOutcome, Store, WriteOp};
use crate::targets::TargetConfig;
use crate::targets::{Connected, ExistingPeer as Existing};

/// How a peer was matched.
#[derive(Debug, Clone)]
enum Via {
    Mapping { line: usize },
    Comment(String),
}

struct Adopted<'p> {
    person: &'p PersonPlan,
    peer: Existing,
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
}

pub fn run(settings: &'static Settings, args: &AdoptArgs) -> Result<ExitCode> {
    let persons = super::load_persons(settings, &args.staff.files, args.staff.sheet.as_deref())?;
    let targets = adoptable_targets(settings, args.target.as_deref())?;
    let mapping = match &args.mapping {
        Some(path) => read_mapping(path)?,
        None => Vec::new(),
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
    let pools: BTreeMap<String, Option<ipnet::IpNet>> = settings
        .profiles
        .profiles
        .iter()
        .map(|(name, profile)| (name.clone(), profile.vpn.pool))
        .collect();
    let store = Store::open_existing_read_only_at(&settings.state)?;

    let mut problems = Problems::default();
    let mapping_source = args
        .mapping
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut reports = Vec::new();
    let mut mapped_keys = BTreeSet::new();
    for name in &targets {
        let target = connected
            .get(name)
            .with_context(|| format!("target \"{name}\" is not connected"))?;
        let (source, existing) = connected
            .runtime()
            .block_on(target.existing_peers(settings))?
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
            ..TargetReport::default()
        };
        let mut candidates: Vec<(Existing, &PersonPlan, Via)> = Vec::new();
        for peer in existing {
            if recorded.contains_key(&peer.public_key) {
                report.known += 1;
                continue;
            }
            let mapped = mapping.iter().find(|row| row.public_key == peer.public_key);
            if let Some(row) = mapped {
                mapped_keys.insert(row.public_key.clone());
                let problem = |why: String| {
                    Problem::new(&mapping_source, why)
                        .at_line(row.line)
                        .column("staff_id")
                };
                match by_id.get(row.staff_id.as_str()) {
                    None => problems.push(problem(format!(
                        "staff id \"{}\" is not in the staff list",
                        row.staff_id
                    ))),
                    Some(person) => match check(person, &peer, name, &has_peer, &pools) {
                        Ok(()) => candidates.push((peer, person, Via::Mapping { line: row.line })),
                        Err(why) => problems.push(problem(why)),
                    },
                }
                continue;
            }
            match index.find(&peer.comments) {
                Ok(Some((person, comment))) => {
                    match check(person, &peer, name, &has_peer, &pools) {
                        Ok(()) => candidates.push((peer, person, Via::Comment(comment))),
                        Err(why) => report.refused.push((peer, why)),
                    }
                }
                Ok(None) => report.foreign.push(peer),
                Err(why) => report.refused.push((peer, why)),
            }
        }
        // One peer per person: a person claimed twice gets neither.
        let mut claims: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, person, _) in &candidates {
            *claims.entry(person.id.as_str()).or_default() += 1;
        }
        for (peer, person, via) in candidates {
            if claims[person.id.as_str()] == 1 {
                report.adopted.push(Adopted { person, peer, via });
                continue;
            }
            let why = format!("several peers name {} ({})", person.id, person.username);
            match via {
                Via::Mapping { line } => problems.push(
                    Problem::new(&mapping_source, why)
                        .at_line(line)
                        .column("staff_id"),
                ),
                Via::Comment(_) => report.refused.push((peer, why)),
            }
        }
        reports.push((name.clone(), report));
    }
    for row in mapping
        .iter()
        .filter(|r| !mapped_keys.contains(&r.public_key))
    {
        problems.push(
            Problem::new(&mapping_source, "no peer of the server has this public key")
                .at_line(row.line)
                .column("public_key"),
        );
    }
    for (line, why) in mapping_conflicts(&mapping) {
        problems.push(
            Problem::new(&mapping_source, why)
                .at_line(line)
                .column("public_key"),
        );
    }
    problems.0.sort_by_key(|p| p.line);
    problems
        .0
        .dedup_by(|a, b| a.line == b.line && a.message == b.message);

    crate::output::print_stdout(&render(&reports))?;
    if !problems.is_empty() {
        return Err(Failure::Invalid(problems).into());
    }
    let count: usize = reports.iter().map(|(_, r)| r.adopted.len()).sum();
    if !settings.output.assume_yes {
        settings.output.info(format!(
            "dry run: nothing recorded; run again with --yes to adopt {count} peer(s)"
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
    let mut ops = Vec::new();
    for (target, report) in &reports {
        for adopted in &report.adopted {
            let person = adopted.person;
            let address = adopted
                .peer
                .address
                .context("an adopted peer has an address")?;
            ops.push(WriteOp::PinPerson {
                id: person.id.clone(),
                username: person.username.clone(),
                display_name: person.display_name.clone(),
                profile: person.profile.clone(),
            });
            ops.push(WriteOp::AdoptPeer {
                target: target.clone(),
                person_id: person.id.clone(),
                peer: Peer {
                    address,
                    preshared_key: adopted.peer.has_psk,
                    expires: person.expires,
                    adopted_key: Some(adopted.peer.public_key.clone()),
                },
                public_key: adopted.peer.public_key.clone(),
            });
        }
    }
    store.write_all(&ops)?;
    store.finish_run(run, RunOutcome::Success, count as u64, 0)?;
    settings.output.info(format!(
        "adopted {count} peer(s); `homebase apply` now provisions the rest and keeps these keys"
    ));
    Ok(ExitCode::Success)
}

/// The WireGuard targets to adopt from: the one named, or all of them.
fn adoptable_targets(settings: &Settings, named: Option<&str>) -> Result<Vec<String>> {
    let wireguard = |t: &TargetConfig| t.adopts_peers();
    if let Some(name) = named {
        return match settings.config.targets.get(name) {
            Some(t) if wireguard(t) => Ok(vec![name.to_string()]),
            Some(t) => Err(Failure::usage(format!(
                "target \"{name}\" is a {} target; adopt takes peers of wireguard or wireguard-file targets",
                t.kind()
            ))
            .into()),
            None => Err(Failure::usage(format!("no target named \"{name}\" in the configuration")).into()),
        };
    }
    let all: Vec<String> = settings
        .config
        .targets
        .iter()
        .filter(|(_, t)| wireguard(t))
        .map(|(n, _)| n.clone())
        .collect();
    if all.is_empty() {
        return Err(
            Failure::usage("the configuration has no WireGuard target to adopt from").into(),
        );
    }
    Ok(all)
}

/// Whether `peer` can become `person`'s peer on `target`.
fn check(
    person: &PersonPlan,
    peer: &Existing,
    target: &str,
    has_peer: &BTreeSet<&str>,
    pools: &BTreeMap<String, Option<ipnet::IpNet>>,
) -> Result<(), String> {
    let who = format!("{} ({})", person.id, person.username);
    if person.status == PersonStatus::Withdrawn {
        return Err(format!(
            "{who} is withdrawn ({})",
            person.reason.as_deref().unwrap_or("")
        ));
    }
    let planned = person
        .actions
        .iter()
        .any(|a| matches!(a.resource, Resource::VpnPeer(_)) && a.target.target() == Some(target));
    if !planned {
        return Err(format!(
            "the profile \"{}\" of {who} has no WireGuard access on \"{target}\"",
            person.profile
        ));
    }
    if has_peer.contains(person.id.as_str()) {
        return Err(format!("{who} has another peer on \"{target}\" already"));
    }
    let Some(address) = peer.address else {
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
        Some(pool) if is_assignable(pool, address) => Ok(()),
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

struct MappingRow {
    line: usize,
    public_key: String,
    staff_id: String,
}

/// `public_key,staff_id` (header required, columns in any order).
fn read_mapping(path: &Path) -> Result<Vec<MappingRow>> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::Invalid(Problems(vec![Problem::new(
            &source,
            format!("cannot read: {e}"),
        )]))
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| {
            Failure::Invalid(Problems(vec![
                Problem::new(&source, e.to_string()).at_line(1)
            ]))
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(key_at), Some(id_at)) = (column("public_key"), column("staff_id")) else {
        return Err(Failure::Invalid(Problems(vec![Problem::new(
            &source,
            "the header lacks public_key or staff_id",
        )
        .at_line(1)
        .expected("a header line `public_key,staff_id`")]))
        .into());
    };
    let mut problems = Problems::default();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record
            .map_err(|e| Failure::Invalid(Problems(vec![Problem::new(&source, e.to_string())])))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let public_key = record.get(key_at).unwrap_or_default().to_string();
        let staff_id = record.get(id_at).unwrap_or_default().to_string();
        if !crate::targets::is_peer_key(&public_key) {
            problems.push(
                Problem::new(
                    &source,
                    format!("\"{public_key}\" is not a WireGuard public key"),
                )
                .at_line(line)
                .column("public_key")
                .expected("44 characters of base64, as `wg show` prints it"),
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
            staff_id,
        });
    }
    problems.into_result().map_err(Failure::Invalid)?;
    Ok(rows)
}

/// Rows that contradict others: one key for two persons, two keys for one person.
fn mapping_conflicts(rows: &[MappingRow]) -> Vec<(usize, String)> {
    let mut conflicts = Vec::new();
    let mut by_key: BTreeMap<&str, &MappingRow> = BTreeMap::new();
    let mut by_id: BTreeMap<&str, &MappingRow> = BTreeMap::new();
    for row in rows {
        if let Some(first) = by_key.insert(&row.public_key, row) {
            if first.staff_id != row.staff_id {
                conflicts.push((
                    row.line,
                    format!(
                        "this key is mapped to {} on line {} and to {} here",
                        first.staff_id, first.line, row.staff_id
                    ),
                ));
            }
        }
        if let Some(first) = by_id.insert(&row.staff_id, row) {
            if first.public_key != row.public_key {
                conflicts.push((
                    row.line,
                    format!("{} has another key on line {}", row.staff_id, first.line),
                ));
            }
        }
    }
    conflicts
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
        let _ = writeln!(out, "{name}: {} peers in {}", r.total, r.source);
        let _ = writeln!(
            out,
            "  adopt:        {} ({} by comment, {by_mapping} by mapping)",
            r.adopted.len(),
            r.adopted.len() - by_mapping
        );
        let _ = writeln!(out, "  already ours: {}", r.known);
        let _ = writeln!(
            out,
            "  foreign:      {} (kept; their addresses are never handed out)",
            r.foreign.len() + r.refused.len()
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
            };
            let _ = writeln!(
                out,
                "  + {} {} {} {}… by {via}",
                a.person.id,
                a.person.username,
                a.peer.address.map(|a| a.to_string()).unwrap_or_default(),
                short(&a.peer.public_key),
            );
        }
    }
    out
}
