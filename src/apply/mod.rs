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

pub use executor::{FailedAction, Outcome};
pub use secrets::SECRETS_FILE;

use crate::config::TargetConfig;
use crate::input::Person;
use crate::plan::{ActionTarget, Op, Plan};
use crate::settings::Settings;
use crate::state::{RunInfo, RunOutcome, Store};
use crate::targets::{local_directory, openvpn, wireguard_file, Connected, Target};
use bundle::{BundleWriter, VpnServer};
use executor::{Shared, TargetRuntime};

pub struct ApplyOptions {
    pub command: String,
    pub rotate: bool,
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
    let mut servers = prepare_vpn_servers(settings, store)?;
    let (mut connected, runtime) = connected.into_parts();
    let mut targets = BTreeMap::new();
    for (name, config) in &settings.config.targets {
        let limits = config.limits();
        let target = connected
            .remove(name)
            .with_context(|| format!("target \"{name}\" is not connected"))?;
        if let (Target::Wireguard(live), TargetConfig::Wireguard(wg)) = (&target, config) {
            servers.insert(
                name.clone(),
                VpnServer {
                    endpoint: wireguard_file::client_endpoint(&wg.endpoint, wg.listen_port),
                    public_key: live.public_key()?,
                    network: wg.address.trunc().to_string(),
                    openvpn: None,
                },
            );
        }
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
    let projection_servers = servers.clone();
    let run_id = store.begin_run(&RunInfo::from_env(
        options.command,
        Some(plan.inputs.digest.clone()),
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
        rotate: options.rotate,
    });

    let mut outcome = runtime.block_on(async {
        let cancel = cancel.clone();
        let output = settings.output;
        tokio::spawn(async move {
            if wait_for_interrupt().await {
                cancel.store(true, Ordering::SeqCst);
                output.warn("interrupted: finishing the actions in flight, starting no new ones");
            }
        });
        executor::execute(shared.clone(), plan.persons).await
    });
    shared.progress.finish();
    outcome.gates = limiters
        .iter()
        .map(|(name, limiter)| (name.clone(), limiter.snapshot()))
        .collect();
    let shared = Arc::into_inner(shared);
    journal.close()?;
    write_projections(settings, store, &projection_servers)?;
    // Live gateways keep what the run did across a restart.
    let persisted = runtime.block_on(async {
        for runtime_target in shared.iter().flat_map(|s| s.targets.values()) {
            if let Target::Wireguard(live) = &runtime_target.target {
                live.persist(store).await?;
            }
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
    persisted?;
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

/// Make sure every WireGuard server file has its private key before any bundle
/// names the server's public key: written now if the file is new.
fn prepare_vpn_servers(settings: &Settings, store: &Store) -> Result<BTreeMap<String, VpnServer>> {
    let mut servers = BTreeMap::new();
    for (name, config) in &settings.config.targets {
        if let TargetConfig::Openvpn(ovpn) = config {
            let server = openvpn::OpenvpnServer::prepare(name, ovpn, settings)?;
            servers.insert(
                name.clone(),
                VpnServer {
                    endpoint: openvpn_endpoint(&ovpn.remote, ovpn.port),
                    public_key: String::new(),
                    network: ovpn.address.trunc().to_string(),
                    openvpn: Some(Arc::new(server)),
                },
            );
            continue;
        }
        let TargetConfig::WireguardFile(wg) = config else {
            continue;
        };
        let path = settings.out_path(&wg.path);
        let existing = std::fs::read_to_string(&path)
            .ok()
            .map(|t| wireguard_file::ServerFile::parse(&t));
        let private_key = match existing.as_ref().and_then(|f| f.private_key.clone()) {
            Some(key) => key,
            None => {
                let key = secrets::wg_private_key();
                write_server_file(settings, store, name, wg, &key)?;
                key
            }
        };
        let public_key = secrets::public_key_of(&private_key).with_context(|| {
            format!(
                "{}: the server's PrivateKey is not a WireGuard key",
                path.display()
            )
        })?;
        servers.insert(
            name.clone(),
            VpnServer {
                endpoint: wireguard_file::endpoint(wg),
                public_key,
                network: wg.address.trunc().to_string(),
                openvpn: None,
            },
        );
    }
    Ok(servers)
}

/// `host:port` for the letter; IPv6 hosts in brackets.
fn openvpn_endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Files that mirror the state store, rewritten after every apply.
fn write_projections(
    settings: &Settings,
    store: &Store,
    servers: &BTreeMap<String, VpnServer>,
) -> Result<()> {
    for (name, config) in &settings.config.targets {
        match config {
            TargetConfig::Openvpn(_) => {
                if let Some(server) = servers.get(name).and_then(|s| s.openvpn.as_deref()) {
                    openvpn::write_files(name, server, settings, store)?;
                }
            }
            TargetConfig::WireguardFile(wg) => {
                let path = settings.out_path(&wg.path);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let key = wireguard_file::ServerFile::parse(&text)
                    .private_key
                    .unwrap_or_else(secrets::wg_private_key);
                write_server_file(settings, store, name, wg, &key)?;
            }
            TargetConfig::Local(local) => {
                let accounts = store.accounts(name)?;
                let ldif = local_directory::render_ldif(&local.base_dn, &accounts);
                fsutil::write_if_changed(
                    &settings.out_path(&local.ldif),
                    ldif.as_bytes(),
                    Some(0o644),
                )?;
            }
            TargetConfig::Csv(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Wireguard(_) => {}
        }
    }
    Ok(())
}

/// The server file from the store's peers. Preshared keys come from the file
/// as it was, or (new peers) from the person's bundle; foreign peers are kept.
fn write_server_file(
    settings: &Settings,
    store: &Store,
    name: &str,
    wg: &crate::config::WireguardFile,
    private_key: &str,
) -> Result<()> {
    let path = settings.out_path(&wg.path);
    let old = std::fs::read_to_string(&path)
        .map(|t| wireguard_file::ServerFile::parse(&t))
        .unwrap_or_default();
    let mut psks = old.preshared_keys();
    let peers = store.peers(name)?;
    let ours: std::collections::BTreeSet<String> =
        peers.iter().map(|(_, _, key)| key.clone()).collect();
    let usernames: BTreeMap<String, String> = store
        .persons()?
        .into_iter()
        .map(|(id, known)| (id, known.username))
        .collect();
    for (id, peer, key) in &peers {
        if peer.preshared_key && !psks.contains_key(key) {
            if let Some(username) = usernames.get(id) {
                if let Some(secrets) =
                    secrets::PersonSecrets::read(&settings.out_dir.join(username))?
                {
                    if secrets.wg_public_key().as_deref() == Some(key.as_str()) {
                        if let Some(psk) = secrets.wg_preshared_key {
                            psks.insert(key.clone(), psk);
                        }
                    }
                }
            }
        }
    }
    let server_peers: Vec<wireguard_file::ServerPeer> = peers
        .iter()
        .map(|(id, peer, key)| wireguard_file::ServerPeer {
            person: id,
            username: usernames.get(id).map_or("", String::as_str),
            public_key: key,
            preshared_key: if peer.preshared_key {
                psks.get(key).map(String::as_str)
            } else {
                None
            },
            address: peer.address,
        })
        .collect();
    let foreign: Vec<wireguard_file::FilePeer> = old
        .peers
        .into_iter()
        .filter(|p| p.person.is_none() && !ours.contains(&p.public_key))
        .collect();
    let text = wireguard_file::render(wg, private_key, &server_peers, &foreign);
    if let Some(dir) = path.parent() {
        fsutil::private_dir(dir, 0o700)?;
    }
    fsutil::write_if_changed(&path, text.as_bytes(), Some(0o600))?;
    Ok(())
}
