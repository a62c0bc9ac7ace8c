//! `homebase status [ID...]`: who has what, from the state store; `--history`
//! lists the applies (who, when, from which plan, with what outcome).

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Format, StatusArgs};
use crate::config::Area;
use crate::error::{ExitCode, Failure};
use crate::report::escape::terminal;
use crate::report::table::Table;
use crate::settings::Settings;
use crate::state::Store;

#[derive(Serialize)]
struct PersonStatus {
    id: String,
    username: String,
    display_name: String,
    profile: String,
    withdrawn: bool,
    accounts: Vec<AccountStatus>,
    vpn: Vec<PeerStatus>,
    devices: Vec<DeviceStatus>,
    seats: Vec<String>,
}

#[derive(Serialize)]
struct AccountStatus {
    target: String,
    enabled: bool,
    expires: Option<String>,
}

#[derive(Serialize)]
struct PeerStatus {
    target: String,
    address: String,
}

#[derive(Serialize)]
struct DeviceStatus {
    target: String,
    asset_tag: String,
}

pub fn run(settings: &Settings, args: &StatusArgs) -> Result<ExitCode> {
    if args.refresh {
        return Err(Failure::usage("`status --refresh` needs a remote target; the embedded targets are the state store itself").into());
    }
    let Some(store) = Store::open_existing_read_only_at(&settings.state)? else {
        settings.output.info(format!(
            "no state store at {}: nothing provisioned yet",
            settings.state
        ));
        return Ok(ExitCode::Success);
    };
    if args.history {
        return history(&store, args.format);
    }
    let observed = store.observed()?;
    let mut devices: BTreeMap<String, Vec<DeviceStatus>> = BTreeMap::new();
    for (name, target) in &settings.config.targets {
        if target.area() == Area::Inventory {
            for (asset_tag, person) in store.device_assignments(name)? {
                devices.entry(person).or_default().push(DeviceStatus {
                    target: name.clone(),
                    asset_tag,
                });
            }
        }
    }
    super::require_known(&observed, &args.ids)?;
    let persons: Vec<PersonStatus> = observed
        .persons
        .iter()
        .filter(|(id, _)| args.ids.is_empty() || args.ids.contains(id))
        .map(|(id, known)| PersonStatus {
            id: id.clone(),
            username: known.username.clone(),
            display_name: known.display_name.clone(),
            profile: known.profile.clone(),
            withdrawn: known.withdrawn,
            accounts: observed
                .accounts
                .iter()
                .filter_map(|(target, accounts)| {
                    accounts.get(id).map(|a| AccountStatus {
                        target: target.clone(),
                        enabled: a.enabled,
                        expires: a.expires.map(|d| d.to_string()),
                    })
                })
                .collect(),
            vpn: observed
                .peers
                .iter()
                .filter_map(|(target, peers)| {
                    peers.get(id).map(|p| PeerStatus {
                        target: target.clone(),
                        address: p.address.to_string(),
                    })
                })
                .collect(),
            devices: devices.remove(id).unwrap_or_default(),
            seats: observed
                .seats
                .iter()
                .filter(|(_, h)| h.contains(id))
                .map(|(pool, _)| pool.clone())
                .collect(),
        })
        .collect();
    let active = persons.iter().filter(|p| !p.withdrawn).count();
    let summary = format!(
        "{} person(s) on record, {} active, {} withdrawn",
        persons.len(),
        active,
        persons.len() - active
    );
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&serde_json::json!({
            "schema": "homebase.status/v1",
            "persons": persons,
        }))?,
        Format::Text => {
            let mut out = format!("{summary}\n");
            for p in &persons {
                let [id, username, name, profile, account, vpn, devices] = cells(p);
                let _ = writeln!(
                    out,
                    "{} {} \"{}\" [{}] {} · vpn {} · devices {}",
                    terminal(&id),
                    username,
                    terminal(&name),
                    profile,
                    account,
                    vpn,
                    devices
                );
            }
            out
        }
        Format::Md | Format::Html => {
            let table = Table {
                title: "homebase status".into(),
                summary,
                headers: vec![
                    "id", "username", "name", "profile", "account", "vpn", "devices",
                ],
                rows: persons.iter().map(|p| cells(p).to_vec()).collect(),
            };
            match args.format {
                Format::Md => table.markdown(),
                _ => table.html(),
            }
        }
    };
    crate::output::print_stdout(&text)?;
    Ok(ExitCode::Success)
}

/// A person's line: id, username, name, profile, account, VPN, devices.
fn cells(p: &PersonStatus) -> [String; 7] {
    let dash = |items: Vec<String>| match items.is_empty() {
        true => "—".to_string(),
        false => items.join(", "),
    };
    let account = p.accounts.first().map_or("no account".to_string(), |a| {
        let state = if a.enabled { "enabled" } else { "disabled" };
        match &a.expires {
            Some(e) => format!("{state} until {e}"),
            None => state.to_string(),
        }
    });
    let account = match p.withdrawn {
        true => format!("{account}, withdrawn"),
        false => account,
    };
    [
        p.id.clone(),
        p.username.clone(),
        p.display_name.clone(),
        p.profile.clone(),
        account,
        dash(
            p.vpn
                .iter()
                .map(|v| format!("{} {}", v.target, v.address))
                .collect(),
        ),
        dash(p.devices.iter().map(|d| d.asset_tag.clone()).collect()),
    ]
}

fn history(store: &Store, format: Format) -> Result<ExitCode> {
    let runs = store.history(100)?;
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&serde_json::json!({
            "schema": "homebase.history/v1",
            "runs": runs.iter().map(|r| serde_json::json!({
                "id": r.id,
                "started": r.info.started.to_rfc3339(),
                "finished": r.finished.map(|f| f.to_rfc3339()),
                "user": r.info.user,
                "host": r.info.host,
                "ci_job": r.info.ci_job,
                "command": r.info.command,
                "plan_digest": r.info.plan_digest,
                "outcome": r.outcome.map(|o| o.name()),
                "ok": r.journaled_ok,
                "failed": r.journaled_failed,
            })).collect::<Vec<_>>(),
        }))?,
        Format::Text => {
            let mut out = String::new();
            for r in &runs {
                let _ = writeln!(
                    out,
                    "#{} {} {}@{}{} {} — {} ok, {} failed — {}",
                    r.id,
                    r.info.started.format("%Y-%m-%d %H:%M:%S UTC"),
                    terminal(&r.info.user),
                    terminal(&r.info.host),
                    r.info
                        .ci_job
                        .as_deref()
                        .map(|j| format!(" ({j})"))
                        .unwrap_or_default(),
                    r.outcome.map_or("unfinished", |o| o.name()),
                    r.journaled_ok,
                    r.journaled_failed,
                    terminal(&r.info.command)
                );
            }
            if runs.is_empty() {
                out.push_str("no applies recorded yet\n");
            }
            out
        }
        Format::Md | Format::Html => {
            let table = Table {
                title: "homebase apply history".into(),
                summary: format!("{} apply run(s), newest first", runs.len()),
                headers: vec![
                    "run", "started", "by", "ci job", "outcome", "ok", "failed", "command",
                ],
                rows: runs
                    .iter()
                    .map(|r| {
                        vec![
                            format!("#{}", r.id),
                            r.info.started.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                            format!("{}@{}", r.info.user, r.info.host),
                            r.info.ci_job.clone().unwrap_or_default(),
                            r.outcome.map_or("unfinished", |o| o.name()).to_string(),
                            r.journaled_ok.to_string(),
                            r.journaled_failed.to_string(),
                            r.info.command.clone(),
                        ]
                    })
                    .collect(),
            };
            match format {
                Format::Md => table.markdown(),
                _ => table.html(),
            }
        }
    };
    crate::output::print_stdout(&text)?;
    Ok(ExitCode::Success)
}
