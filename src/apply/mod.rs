//! Applying a plan: lock, journal, execute, then write the files that are
//! projections of the state store (server `wg0.conf`, directory LDIF).

mod background;
mod bundle;
mod executor;
pub mod fsutil;
mod limit;
pub mod progress;
pub mod qr;
pub(crate) mod retry;
pub mod sealed;
pub mod secrets;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

pub use executor::{ActionResult, FailedAction, Outcome};
pub use secrets::SECRETS_FILE;

use crate::input::Person;
use crate::plan::{ActionTarget, Op, Plan};
use crate::settings::Settings;
use crate::state::{RunInfo, RunOutcome, Store};
use crate::targets::Connected;
use bundle::BundleWriter;
use executor::{Shared, TargetRuntime};

pub struct ApplyOptions {
    pub command: String,
    /// The SHA-256 of the saved plan file run (`apply --plan`), for the
    /// audit; without one, the digest of the plan's inputs.
    pub plan_digest: Option<String>,
    /// `apply --letters FILE.pdf`: the letters of the bundles written.
    pub letters: Option<std::path::PathBuf>,
}

/// Carry out `plan` (computed under the caller's lock) against `store`.
pub fn run(
    settings: &'static Settings,
    store: &mut Store,
    plan: Plan,
    staff: Vec<Person>,
    connected: Connected,
    options: ApplyOptions,
) -> Result<Outcome> {
    let (mut connected, runtime) = connected.into_parts();
    // Every VPN server is ready (its key, its CA) before a bundle names it.
    let mut servers = BTreeMap::new();
    for (name, target) in &connected {
        if let Some(server) = target.vpn_server(name, settings, store)? {
            servers.insert(name.clone(), server);
        }
    }
    let mut targets = BTreeMap::new();
    for (name, config) in &settings.config.targets {
        let limits = config.limits();
        let target = connected
            .remove(name)
            .with_context(|| format!("target \"{name}\" is not connected"))?;
        // A kind that gates its requests and batches across persons bounds
        // what the server sees, not how many persons wait for a batch.
        let ceiling = match target.bounds_actions() {
            true => config.ceiling(settings.jobs),
            false => tokio::sync::Semaphore::MAX_PERMITS,
        };
        targets.insert(
            name.clone(),
            TargetRuntime {
                target,
                limits: limit::Limits::new(ceiling, limits.rate_limit),
            },
        );
    }
    let finish_servers = servers.clone();
    let run_id = store.begin_run(&RunInfo::from_env(
        options.command,
        Some(
            options
                .plan_digest
                .unwrap_or_else(|| plan.inputs.digest.clone()),
        ),
    ))?;
    let journal = store.journal()?;
    let mut totals: BTreeMap<String, u64> = BTreeMap::new();
    for action in plan
        .persons
        .iter()
        .flat_map(|p| &p.actions)
        .filter(|a| a.op != Op::Unchanged)
    {
        let name = match &action.target {
            ActionTarget::SeatPool(_) => "seats".to_string(),
            ActionTarget::Target(_) | ActionTarget::Bundles => action.target.name().to_string(),
        };
        *totals.entry(name).or_default() += 1;
    }

    let limiters: BTreeMap<String, Arc<crate::adaptive::Limiter>> = targets
        .iter()
        .filter_map(|(name, rt)| Some((name.clone(), rt.target.limiter()?)))
        .collect();
    let cancel = Arc::new(AtomicBool::new(false));
    let shared = Arc::new(Shared {
        journal: journal.clone(),
        run_id,
        targets,
        retry: retry::RetryPolicy::from_env(),
        progress: progress::Progress::new(&settings.output, &totals, limiters.clone()),
        cancel: cancel.clone(),
        bundles: Arc::new(BundleWriter {
            templates: &settings.templates,
            organisation: &settings.config.organisation,
            out_dir: settings.out_dir.clone(),
            servers,
            today: plan.today,
            sealed: settings
                .recipients
                .as_ref()
                .map(|recipients| bundle::Sealing {
                    recipients,
                    run: sealed::RunArchive::new(
                        recipients,
                        settings
                            .out_dir
                            .join(format!("bundles-run-{run_id}.tar.age")),
                    ),
                    preshared: secrets::HeldPreshared::default(),
                }),
            letters: options
                .letters
                .is_some()
                .then(|| std::sync::Mutex::new(Vec::new())),
        }),
        render: background::Background::new(),
        preparing: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        ),
        profiles: &settings.profiles,
        staff: staff.into_iter().map(|p| (p.id.clone(), p)).collect(),
    });

    let mut outcome = runtime.block_on(async {
        let cancel = cancel.clone();
        let output = settings.output;
        let watcher = shared.clone();
        let watch = tokio::spawn(async move {
            if wait_for_interrupt().await {
                cancel.store(true, Ordering::SeqCst);
                watcher.progress.say(
                    &output,
                    "interrupted: finishing the actions in flight, starting no new ones",
                );
            }
        });
        let outcome = executor::execute(shared.clone(), plan.persons).await;
        // The watcher holds `shared`; it must be gone before `shared` is
        // taken apart below (awaiting an aborted task waits for its drop).
        watch.abort();
        let _ = watch.await;
        outcome
    });
    shared.progress.finish();
    // The helpdesk's archive of the run: sealed even when interrupted, so
    // what was written is in it.
    let archive = match &shared.bundles.sealed {
        Some(sealing) => sealing.run.finish(),
        None => Ok(None),
    };
    if let Ok(Some(path)) = &archive {
        settings.output.info(format!(
            "bundles of this run, encrypted: {}",
            path.display()
        ));
    }
    let printed = match (&options.letters, &shared.bundles.letters) {
        (Some(path), Some(letters)) => {
            let letters = std::mem::take(&mut *letters.lock().unwrap_or_else(|e| e.into_inner()));
            write_letters(settings, letters, path)
        }
        _ => Ok(()),
    };
    outcome.gates = limiters
        .iter()
        .map(|(name, limiter)| (name.clone(), limiter.snapshot()))
        .collect();
    let shared = Arc::into_inner(shared);
    journal.close()?;
    // Files that mirror the state store, live gateways' files, CRLs.
    let finished = runtime.block_on(async {
        let held = shared
            .as_ref()
            .and_then(|s| s.bundles.sealed.as_ref())
            .map(|sealing| &sealing.preshared);
        for (name, runtime_target) in shared.iter().flat_map(|s| &s.targets) {
            runtime_target
                .target
                .finish(name, settings, store, finish_servers.get(name), held)
                .await
                .with_context(|| format!("target \"{name}\""))?;
        }
        anyhow::Ok(())
    });
    let interrupted = cancel.load(Ordering::SeqCst);
    let result = if interrupted {
        RunOutcome::Interrupted
    } else if outcome.failed.is_empty() {
        RunOutcome::Success
    } else {
        RunOutcome::Partial
    };
    store.finish_run(
        run_id,
        result,
        outcome.done as u64,
        outcome.failed.len() as u64,
    )?;
    finished?;
    archive.context("the encrypted archive of the run")?;
    printed?;
    Ok(outcome)
}

/// The letters PDF at `path`: encrypted (`PATH.age`) when bundles are.
pub fn write_letters(
    settings: &Settings,
    letters: Vec<crate::letters::Letter>,
    path: &std::path::Path,
) -> Result<()> {
    write_letters_with(settings, letters, path, &settings.config.bundles.letters)
}

/// [`write_letters`] with the letter settings given.
pub fn write_letters_with(
    settings: &Settings,
    letters: Vec<crate::letters::Letter>,
    path: &std::path::Path,
    letters_config: &crate::config::Letters,
) -> Result<()> {
    if letters.is_empty() {
        settings
            .output
            .info("letters: no bundle was written, so no letter");
        return Ok(());
    }
    let options = crate::letters::Options {
        by: letters_config.by,
        form: letters_config.form,
        print_password: letters_config.print_password,
    };
    let count = letters.len();
    let printed = crate::letters::print(&settings.templates, letters, &options).map_err(|e| {
        crate::error::Failure::Invalid(crate::error::Problems(vec![crate::error::Problem::new(
            crate::letters::TEMPLATE,
            e.to_string(),
        )]))
    })?;
    if !printed.unsorted.is_empty() {
        settings.output.warn(format!(
            "letters: {} person(s) have no {}; printed last, by name: {}",
            printed.unsorted.len(),
            match options.by {
                crate::config::LetterOrder::Department => "department",
                crate::config::LetterOrder::Location => "location",
            },
            printed.unsorted.join(", ")
        ));
    }
    let written = match &settings.recipients {
        Some(recipients) => {
            let mut name = path.as_os_str().to_owned();
            if path.extension().is_none_or(|e| e != "age") {
                name.push(".age");
            }
            let target = std::path::PathBuf::from(name);
            sealed::write_encrypted(&target, recipients, &printed.pdf)?;
            target
        }
        None => {
            fsutil::write_if_changed(path, &printed.pdf, Some(0o600))?;
            path.to_path_buf()
        }
    };
    settings.output.info(format!(
        "letters: {count} person(s), {} page(s) in {}",
        printed.pages,
        written.display()
    ));
    Ok(())
}

/// Every provisioned person's letter, from the plan and the bundles on this
/// machine (`homebase letters`); the ids of persons whose bundle is not here.
pub fn letters_of(
    settings: &Settings,
    plan: &Plan,
    staff: &[Person],
    connected: &Connected,
    store: &Store,
) -> Result<(Vec<crate::letters::Letter>, Vec<String>)> {
    let mut servers = BTreeMap::new();
    for name in settings.config.targets.keys() {
        if let Some(target) = connected.get(name) {
            if let Some(server) = target.vpn_server(name, settings, store)? {
                servers.insert(name.clone(), server);
            }
        }
    }
    let writer = BundleWriter {
        templates: &settings.templates,
        organisation: &settings.config.organisation,
        out_dir: settings.out_dir.clone(),
        servers,
        today: plan.today,
        sealed: None,
        letters: None,
    };
    let staff: BTreeMap<&str, &Person> = staff.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut letters = Vec::new();
    let mut missing = Vec::new();
    for person_plan in &plan.persons {
        if person_plan.status == crate::plan::PersonStatus::Withdrawn {
            continue;
        }
        let (Some(person), Some(profile)) = (
            staff.get(person_plan.id.as_str()),
            settings.profiles.get(&person_plan.profile),
        ) else {
            continue;
        };
        let Some(secrets) = secrets::PersonSecrets::read(&writer.dir(&person_plan.username))?
        else {
            missing.push(person_plan.id.clone());
            continue;
        };
        let context = writer.context(person_plan, person, profile, &secrets);
        letters.push(writer.letter(profile, context)?);
    }
    Ok((letters, missing))
}

/// Ctrl-C or SIGTERM.
async fn wait_for_interrupt() -> bool {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return tokio::signal::ctrl_c().await.is_ok(),
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.is_ok(),
        _ = term.recv() => true,
    }
}
