//! Applying a plan: lock, journal, execute, then write the files that are
//! projections of the state store (server `wg0.conf`, directory LDIF).

mod background;
mod bundle;
mod executor;
pub mod fsutil;
mod limit;
pub mod progress;
mod qr;
pub(crate) mod retry;
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
    outcome.gates = limiters
        .iter()
        .map(|(name, limiter)| (name.clone(), limiter.snapshot()))
        .collect();
    let shared = Arc::into_inner(shared);
    journal.close()?;
    // Files that mirror the state store, live gateways' files, CRLs.
    let finished = runtime.block_on(async {
        for (name, runtime_target) in shared.iter().flat_map(|s| &s.targets) {
            runtime_target
                .target
                .finish(name, settings, store, finish_servers.get(name))
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
    Ok(outcome)
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
