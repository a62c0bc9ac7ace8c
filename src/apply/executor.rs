//! The executor: carries out a plan's actions in parallel, bounded per target,
//! retrying transient failures, journaling each completed action before the
//! actions that depend on it, and going on past failures.
//!
//! Per person: secrets first (into the bundle), then the directory account,
//! then VPN, devices and seats side by side, then the bundle. A failed step
//! skips the person's later steps; other persons go on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::bundle::BundleWriter;
use super::limit::Limits;
use super::progress::Progress;
use super::retry::{retry, RetryPolicy};
use super::secrets::{self, PersonSecrets};
use crate::input::Person;
use crate::plan::{Action, ActionTarget, Op, PersonPlan, PersonStatus, Resource};
use crate::profile::{Profile, VpnKind};
use crate::state::{Entry, EntryOutcome, Journal, ResourceKind, WriteOp};
use crate::targets::busy::Promise;
use crate::targets::{ActionContext, Target};

/// One failed action, for the summary.
#[derive(Debug, Clone)]
pub struct FailedAction {
    pub person_id: String,
    /// `ID (username)`, for messages.
    pub person: String,
    pub target: String,
    pub what: String,
    pub reason: String,
}

/// What became of one planned action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionResult {
    Done,
    Failed(String),
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub done: usize,
    pub failed: Vec<FailedAction>,
    /// Persons not started because the run was interrupted.
    pub not_started: usize,
    /// Their staff ids.
    pub not_started_ids: Vec<String>,
    /// Per staff id: the results of the actions that ran, by their index in
    /// the person's planned actions. An action without one was not reached
    /// (an earlier step of the person failed).
    pub results: BTreeMap<String, Vec<(usize, ActionResult)>>,
    /// Per target with a request gate: how its limit went.
    pub gates: Vec<(String, crate::adaptive::Snapshot)>,
}

/// A target's runtime: the connection and its bounds.
pub struct TargetRuntime {
    pub target: Target,
    pub limits: Limits,
}

/// Everything a person's task needs, shared.
pub struct Shared<'a> {
    pub journal: Journal,
    pub run_id: i64,
    pub targets: BTreeMap<String, TargetRuntime>,
    pub retry: RetryPolicy,
    pub progress: Progress,
    pub cancel: Arc<AtomicBool>,
    pub bundles: Arc<BundleWriter<'a>>,
    /// Low-priority threads that render and write the bundles.
    pub render: super::background::Background,
    /// Persons preparing their secrets at once (file work and key
    /// generation, off the runtime's workers): one per CPU, so that a wave of
    /// persons does not start a thread each.
    pub preparing: Semaphore,
    pub profiles: &'a crate::profile::ProfileSet,
    pub staff: BTreeMap<String, Person>,
}

/// Carry out every person's actions. Persons run concurrently (bounded); each
/// action waits for its target's permit.
pub async fn execute(shared: Arc<Shared<'static>>, persons: Vec<PersonPlan>) -> Outcome {
    let gate = Arc::new(Semaphore::new(512));
    let mut tasks = JoinSet::new();
    let mut outcome = Outcome::default();
    for person in persons.into_iter().filter(needs_work) {
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        if shared.cancel.load(Ordering::SeqCst) {
            outcome.not_started += 1;
            outcome.not_started_ids.push(person.id.clone());
            continue;
        }
        let holds = holds(&shared, &person);
        let shared = shared.clone();
        tasks.spawn(async move {
            let result = run_person(&shared, &person, holds).await;
            drop(permit);
            result
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(person) => {
                outcome.done += person.done;
                outcome.failed.extend(person.failed);
                outcome.results.insert(person.id, person.results);
            }
            Err(err) => outcome.failed.push(FailedAction {
                person_id: String::new(),
                person: "?".into(),
                target: "?".into(),
                what: "task".into(),
                reason: format!("internal error: {err}"),
            }),
        }
    }
    outcome
}

/// Per target that batches writes across persons: the promise of this
/// person's action there, taken as the person starts (see `Target::hold`).
fn holds(shared: &Shared<'static>, person: &PersonPlan) -> Holds {
    let mut holds = Holds::new();
    for action in &person.actions {
        let Some(name) = action.target.target() else {
            continue;
        };
        if let Some(hold) = shared.targets.get(name).and_then(|rt| rt.target.hold()) {
            holds.entry(name.to_string()).or_insert(hold);
        }
    }
    holds
}

type Holds = BTreeMap<String, Promise>;

/// Where the person's bundle is among their actions.
fn bundle_index(plan: &PersonPlan) -> Option<usize> {
    plan.actions
        .iter()
        .position(|a| matches!(a.resource, Resource::Bundle(_)))
}

fn needs_work(person: &PersonPlan) -> bool {
    person.has_changes()
        || (person.status == PersonStatus::Withdrawn
            && person.reason.is_some()
            && !person.actions.is_empty())
}

#[derive(Default)]
struct PersonOutcome {
    id: String,
    done: usize,
    failed: Vec<FailedAction>,
    results: Vec<(usize, ActionResult)>,
}

impl PersonOutcome {
    /// Record what became of `action` (one of `plan`'s actions).
    fn record(&mut self, plan: &PersonPlan, action: &Action, error: Option<String>) {
        let index = plan.actions.iter().position(|a| std::ptr::eq(a, action));
        let result = match error {
            None => {
                self.done += 1;
                ActionResult::Done
            }
            Some(reason) => {
                let what = describe(&action.resource);
                self.failed
                    .push(failure(plan, action.target.name(), &what, reason.clone()));
                ActionResult::Failed(reason)
            }
        };
        if let Some(index) = index {
            self.results.push((index, result));
        }
    }

    /// A failure of the person's bundle step (its secrets or its files).
    fn bundle_failed(&mut self, plan: &PersonPlan, what: &str, reason: String) {
        if let Some(index) = bundle_index(plan) {
            self.results
                .push((index, ActionResult::Failed(reason.clone())));
        }
        self.failed.push(failure(plan, "bundles", what, reason));
    }
}

async fn run_person(shared: &Shared<'static>, plan: &PersonPlan, holds: Holds) -> PersonOutcome {
    let mut out = PersonOutcome {
        id: plan.id.clone(),
        ..PersonOutcome::default()
    };
    let pin = WriteOp::PinPerson {
        id: plan.id.clone(),
        username: plan.username.clone(),
        display_name: plan.display_name.clone(),
        profile: plan.profile.clone(),
    };
    if plan.status == PersonStatus::Withdrawn {
        // Withdrawal: everything side by side, then mark the person withdrawn.
        let results = run_all(
            shared,
            plan,
            plan.actions
                .iter()
                .filter(|a| a.op != Op::Unchanged)
                .collect(),
            &Keys {
                public_key: None,
                secrets: &PersonSecrets::default(),
                new_secrets: false,
            },
            &holds,
        )
        .await;
        drop(holds);
        let ok = collect(&mut out, plan, results);
        if ok {
            let _ = shared
                .journal
                .write_all(vec![
                    pin,
                    WriteOp::SetWithdrawn {
                        id: plan.id.clone(),
                        withdrawn: true,
                    },
                ])
                .await;
        }
        return out;
    }

    let Some(profile) = shared.profiles.get(&plan.profile) else {
        out.failed.push(failure(
            plan,
            "profile",
            "profile",
            format!("profile \"{}\" is gone", plan.profile),
        ));
        return out;
    };
    let bundle = plan.actions.iter().find_map(|a| match &a.resource {
        Resource::Bundle(b) => Some(b),
        _ => None,
    });
    // Secrets: new ones into the bundle first; else those of the existing bundle.
    // File work blocks: let the runtime move other tasks off this thread.
    let fresh = bundle.is_some_and(|b| b.new_secrets);
    // An adopted peer keeps the key the person already has; homebase has no
    // private key for it and issues none.
    let adopted_key = plan.actions.iter().find_map(|a| match &a.resource {
        Resource::VpnPeer(p) if a.op != Op::Remove => p.adopted_key.clone(),
        _ => None,
    });
    // No bundle action: the person's delivered bundle is not on this machine
    // and keeps its secrets; what changes is done with none (the recorded
    // public key stays), and the bundle is marked for the machine that has it.
    let prepared = if bundle.is_some() {
        let preparing = shared.preparing.acquire().await;
        let prepared = tokio::task::block_in_place(|| {
            prepare_secrets(shared, plan, profile, fresh, adopted_key.is_some())
        });
        drop(preparing);
        prepared
    } else {
        Ok((PersonSecrets::default(), None))
    };
    let (secrets, issued) = match prepared {
        Ok(s) => s,
        Err(err) => {
            out.bundle_failed(plan, "secrets", format!("{err:#}"));
            return out;
        }
    };
    // The peer's public identity as its server's kind has it (a WireGuard
    // public key, a certificate serial), or the adopted one.
    let server = plan.actions.iter().find_map(|a| match &a.resource {
        Resource::VpnPeer(_) if a.op != Op::Remove => shared.bundles.servers.get(a.target.name()),
        _ => None,
    });
    let public_key = server.and_then(|s| s.identity(&secrets)).or(adopted_key);
    let rekey = bundle.is_some_and(|b| b.new_secrets);
    let keys = Keys {
        public_key: public_key.as_deref(),
        secrets: &secrets,
        new_secrets: rekey,
    };
    // A certificate just issued is recorded with the person, before any
    // other step, so a later offboarding can revoke it.
    let mut first = vec![
        pin,
        WriteOp::SetWithdrawn {
            id: plan.id.clone(),
            withdrawn: false,
        },
    ];
    first.extend(issued);
    if shared.journal.write_all(first).await.is_err() {
        out.failed.push(failure(
            plan,
            "state",
            "journal",
            "cannot write the state store".into(),
        ));
        return out;
    }

    // 1. The account, which everything else hangs on. A re-keyed person's
    // unchanged account gets the bundle's new password.
    let accounts: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.resource, Resource::Account(_)) && (a.op != Op::Unchanged || rekey))
        .collect();
    let results = run_all(shared, plan, accounts, &keys, &holds).await;
    // The person's work on targets that batch across persons is over.
    drop(holds);
    if !collect(&mut out, plan, results) {
        return out;
    }
    // 2. VPN, devices, seats. A re-keyed person's unchanged peer gets the new key.
    let rest: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| !matches!(a.resource, Resource::Account(_) | Resource::Bundle(_)))
        .filter(|a| a.op != Op::Unchanged || (rekey && matches!(a.resource, Resource::VpnPeer(_))))
        .collect();
    let results = run_all(shared, plan, rest, &keys, &Holds::new()).await;
    if !collect(&mut out, plan, results) {
        return out;
    }
    // 3. The bundle. One not written now is out of date only when it shows
    // something that changed.
    if bundle.is_none() {
        if !shows_a_change(shared, plan, profile) {
            return out;
        }
        let stale = WriteOp::MarkBundleStale {
            person_id: plan.id.clone(),
        };
        if shared.journal.write(stale).await.is_err() {
            out.failed.push(failure(
                plan,
                "state",
                "journal",
                "cannot write the state store".into(),
            ));
        }
    } else {
        let result = write_bundle(shared, plan, profile, &secrets).await;
        shared.progress.finished("bundles", result.is_ok());
        match result {
            Ok(()) => {
                out.done += 1;
                if let Some(index) = bundle_index(plan) {
                    out.results.push((index, ActionResult::Done));
                }
            }
            Err(err) => out.bundle_failed(plan, "bundle", format!("{err:#}")),
        }
    }
    out
}

/// The person's secrets for this run, and the record of a certificate
/// issued with them (serial and validity only).
fn prepare_secrets(
    shared: &Shared<'static>,
    plan: &PersonPlan,
    profile: &Profile,
    fresh: bool,
    adopted: bool,
) -> Result<(PersonSecrets, Option<WriteOp>)> {
    let dir = shared.bundles.dir(&plan.username);
    let existing = if fresh {
        None
    } else {
        PersonSecrets::read(&dir)?
    };
    let (mut secrets, mut changed) = match (fresh, existing) {
        (false, Some(existing)) => (existing, false),
        // Planned where the bundle was, applied where it is not: never new
        // secrets that nobody asked for.
        (false, None) if shared.bundles.sealed.is_some() => anyhow::bail!(
            "the bundle was delivered encrypted ({}) and homebase keeps no key to open it; issue new secrets with `homebase rotate {}`",
            shared.bundles.sealed_path(&plan.username).display(),
            plan.id
        ),
        (false, None) => anyhow::bail!(
            "the delivered bundle {} is not on this machine; apply where it is, or issue new secrets with `homebase rotate {}`",
            dir.display(),
            plan.id
        ),
        _ => {
            let wireguard = profile.vpn.kind == VpnKind::Wireguard && !adopted;
            let new = PersonSecrets {
                password: Some(secrets::password(&profile.account.password)),
                wg_private_key: wireguard.then(secrets::wg_private_key),
                wg_preshared_key: (wireguard && profile.vpn.preshared_key)
                    .then(secrets::preshared_key),
                ovpn_key: None,
                ovpn_cert: None,
            };
            (new, true)
        }
    };
    let issued = issue_certificate(shared, plan, &mut secrets)?;
    changed |= issued.is_some();
    if changed {
        shared.bundles.write_secrets(&plan.username, &secrets)?;
    }
    Ok((secrets, issued))
}

/// A new client certificate and key when the person's openvpn peer is new,
/// its certificate is due (a `certificate` change), or the bundle has none.
fn issue_certificate(
    shared: &Shared<'static>,
    plan: &PersonPlan,
    secrets: &mut PersonSecrets,
) -> Result<Option<WriteOp>> {
    let found = plan.actions.iter().find_map(|a| match &a.resource {
        Resource::VpnPeer(peer) if a.op != Op::Remove => shared
            .bundles
            .servers
            .get(a.target.name())
            .filter(|s| s.issues_certificates())
            .map(|server| (a, peer, server)),
        _ => None,
    });
    let Some((action, peer, server)) = found else {
        return Ok(None);
    };
    // An adopted certificate (easy-rsa's) stays the person's until renewal
    // is due: their own `.ovpn` keeps working; the bundle has no key for it.
    let renewal = action.changes.iter().any(|c| c.field == "certificate");
    let lacking = secrets.ovpn_cert.is_none() || secrets.ovpn_key.is_none();
    let due = action.op == Op::Create || renewal || (lacking && peer.adopted_key.is_none());
    if !due {
        return Ok(None);
    }
    let Some(cert) = server.issue_certificate(
        &plan.username,
        &shared.bundles.organisation.name,
        peer.expires,
        shared.bundles.today,
    ) else {
        return Ok(None);
    };
    let cert = cert?;
    secrets.ovpn_key = Some(B64.encode(&cert.key_der));
    secrets.ovpn_cert = Some(B64.encode(&cert.cert_der));
    Ok(Some(WriteOp::PutCertificate {
        target: action.target.name().to_string(),
        person_id: plan.id.clone(),
        serial: cert.serial.clone(),
        not_after: cert.not_after,
        access_end: peer.expires,
    }))
}

async fn write_bundle(
    shared: &Shared<'static>,
    plan: &PersonPlan,
    profile: &'static Profile,
    secrets: &PersonSecrets,
) -> Result<()> {
    let person = shared
        .staff
        .get(&plan.id)
        .ok_or_else(|| anyhow::anyhow!("person {} is not in the staff list", plan.id))?;
    let context = shared.bundles.context(plan, person, profile, secrets);
    let fingerprint = shared.bundles.fingerprint(&context);
    let (bundles, username) = (shared.bundles.clone(), plan.username.clone());
    let secrets = secrets.clone();
    shared
        .render
        .run(move || bundles.write(&username, profile, &context, &secrets))
        .await?;
    shared
        .journal
        .write_all(vec![
            WriteOp::SetBundle {
                person_id: plan.id.clone(),
                fingerprint,
            },
            entry(
                shared,
                plan,
                "bundles",
                &bundle_resource(plan),
                Op::Update,
                None,
            ),
        ])
        .await?;
    Ok(())
}

/// The person's keys for this run: the WireGuard public key for the state
/// store, and the secrets for the targets (never for the store).
struct Keys<'a> {
    public_key: Option<&'a str>,
    secrets: &'a PersonSecrets,
    /// The bundle gets new secrets in this run (a directory sets the password).
    new_secrets: bool,
}

/// Run actions concurrently; each result is (action, error message if failed).
async fn run_all<'p>(
    shared: &Shared<'static>,
    plan: &'p PersonPlan,
    actions: Vec<&'p Action>,
    keys: &Keys<'_>,
    holds: &Holds,
) -> Vec<(&'p Action, Option<String>)> {
    let futures = actions.into_iter().map(|action| async move {
        let promise = action.target.target().and_then(|name| holds.get(name));
        let result = run_action(shared, plan, action, keys, promise).await;
        let counter = match &action.target {
            ActionTarget::SeatPool(_) => "seats",
            ActionTarget::Target(_) | ActionTarget::Bundles => action.target.name(),
        };
        shared.progress.finished(counter, result.is_ok());
        (action, result.err())
    });
    futures::future::join_all(futures).await
}

/// Count results; false if any failed.
fn collect(
    out: &mut PersonOutcome,
    plan: &PersonPlan,
    results: Vec<(&Action, Option<String>)>,
) -> bool {
    let mut ok = true;
    for (action, error) in results {
        ok &= error.is_none();
        out.record(plan, action, error);
    }
    ok
}

async fn run_action(
    shared: &Shared<'static>,
    plan: &PersonPlan,
    action: &Action,
    keys: &Keys<'_>,
    promise: Option<&Promise>,
) -> Result<(), String> {
    let runtime = match &action.target {
        ActionTarget::Target(name) => shared.targets.get(name),
        ActionTarget::SeatPool(_) | ActionTarget::Bundles => None,
    };
    let context = ActionContext {
        person_id: &plan.id,
        username: &plan.username,
        person: shared.staff.get(&plan.id),
        action,
        secrets: keys.secrets,
        new_secrets: keys.new_secrets,
        profile: shared.profiles.get(&plan.profile),
        promise,
    };
    let (result, _tries) = match runtime {
        Some(rt) => {
            let _permit = rt
                .limits
                .in_flight
                .acquire()
                .await
                .map_err(|e| e.to_string())?;
            if let Some(rate) = &rt.limits.rate {
                rate.wait().await;
            }
            retry(&shared.retry, || rt.target.apply(&context)).await
        }
        // Seat pools are bookkeeping in the state store; bundles are
        // written by `write_bundle`, never here.
        None => (Ok(None), 1),
    };
    let mut ops = Vec::new();
    let error = match result {
        Ok(remote_id) => {
            ops.extend(state_ops(plan, action, keys.public_key, remote_id));
            None
        }
        Err(err) => Some(err.to_string()),
    };
    ops.push(entry(
        shared,
        plan,
        action.target.name(),
        &action.resource,
        action.op,
        error.clone(),
    ));
    shared
        .journal
        .write_all(ops)
        .await
        .map_err(|e| format!("cannot journal: {e}"))?;
    error.map_or(Ok(()), Err)
}

/// What the state store records after an action succeeded.
fn state_ops(
    plan: &PersonPlan,
    action: &Action,
    public_key: Option<&str>,
    remote_id: Option<String>,
) -> Vec<WriteOp> {
    let id = plan.id.clone();
    let target = action.target.name().to_string();
    match (&action.resource, action.op) {
        (Resource::Account(a), Op::Remove) => {
            let mut disabled = a.clone();
            disabled.enabled = false;
            vec![WriteOp::PutAccount {
                target,
                person_id: id,
                account: disabled,
                remote_id,
            }]
        }
        (Resource::Account(a), _) => vec![WriteOp::PutAccount {
            target,
            person_id: id,
            account: a.clone(),
            remote_id,
        }],
        // Revoking is a no-op on targets without certificates.
        (Resource::VpnPeer(_), Op::Remove) => vec![
            WriteOp::RemovePeer {
                target: target.clone(),
                person_id: id.clone(),
            },
            WriteOp::RevokeCertificates {
                target,
                person_id: id,
            },
        ],
        // Without a key of this run (the bundle is elsewhere) the recorded
        // public key stays.
        (Resource::VpnPeer(p), _) => match public_key {
            Some(public_key) => vec![WriteOp::PutPeer {
                target,
                person_id: id,
                peer: p.clone(),
                public_key: public_key.to_string(),
            }],
            None => vec![WriteOp::UpdatePeer {
                target,
                person_id: id,
                peer: p.clone(),
            }],
        },
        (Resource::Device(d), Op::Remove) => vec![WriteOp::ReleaseDevice {
            target,
            asset_tag: d.asset_tag.clone(),
        }],
        (Resource::Device(d), _) => vec![WriteOp::AssignDevice {
            target,
            person_id: id,
            device: d.clone(),
        }],
        (Resource::License(l), Op::Remove) => vec![WriteOp::RemoveSeat {
            pool: l.pool.clone(),
            person_id: id,
        }],
        (Resource::License(l), _) => vec![WriteOp::AddSeat {
            pool: l.pool.clone(),
            person_id: id,
        }],
        (Resource::Bundle(_), _) => Vec::new(),
    }
}

fn entry(
    shared: &Shared<'static>,
    plan: &PersonPlan,
    target: &str,
    resource: &Resource,
    op: Op,
    error: Option<String>,
) -> WriteOp {
    let (outcome, message) = match error {
        None => (EntryOutcome::Ok, describe(resource)),
        Some(reason) => (
            EntryOutcome::Failed,
            format!("{}: {reason}", describe(resource)),
        ),
    };
    WriteOp::Entry(Entry::new(
        shared.run_id,
        Some(&plan.id),
        target,
        ResourceKind::from(resource),
        op,
        outcome,
        message,
    ))
}

/// Whether the person's bundle, as the profile's templates render it, shows
/// a change of `plan` (everything counts when the templates cannot tell).
fn shows_a_change(shared: &Shared<'_>, plan: &PersonPlan, profile: &Profile) -> bool {
    let reads = shared.bundles.templates.profile_reads(profile);
    let shows = |path: &str| {
        reads
            .as_ref()
            .is_none_or(|r| crate::render::reads_path(r, path))
    };
    plan.actions
        .iter()
        .any(|a| crate::plan::bundle_shows_change(a, &shows))
}

fn bundle_resource(plan: &PersonPlan) -> Resource {
    plan.actions
        .iter()
        .find(|a| matches!(a.resource, Resource::Bundle(_)))
        .map_or_else(
            || {
                Resource::Bundle(crate::plan::Bundle {
                    path: plan.username.clone(),
                    new_secrets: false,
                })
            },
            |a| a.resource.clone(),
        )
}

fn describe(resource: &Resource) -> String {
    match resource {
        Resource::Account(a) => format!("account {}", a.username),
        Resource::VpnPeer(p) => format!("peer {}", p.address),
        Resource::Device(d) => format!("{} {}", d.kind, d.asset_tag),
        Resource::License(l) => format!("seat {}", l.pool),
        Resource::Bundle(b) => format!("bundle {}", b.path),
    }
}

fn failure(plan: &PersonPlan, target: &str, what: &str, reason: String) -> FailedAction {
    FailedAction {
        person_id: plan.id.clone(),
        person: format!("{} ({})", plan.id, plan.username),
        target: target.to_string(),
        what: what.to_string(),
        reason,
    }
}
