//! `homebase offboard ID...`: withdraw persons now — disable the account,
//! remove VPN peers, check devices in, free seats — without a staff list.

use std::collections::BTreeSet;

use anyhow::Result;

use crate::cli::OffboardArgs;
use crate::error::{ExitCode, Failure};
use crate::plan::{build, Inputs, PlanInput};
use crate::settings::Settings;
use crate::state::Store;

pub fn run(settings: &'static Settings, args: &OffboardArgs) -> Result<ExitCode> {
    if !args.dry_run {
        super::confirmable(&settings.output)?;
    }
    let _lock = (!args.dry_run)
        .then(|| super::lock(settings, args.lock_timeout))
        .transpose()?;
    let connected = crate::targets::Connected::connect(settings)?;
    let observed = connected.observe(settings)?;
    super::require_known(&observed, &args.ids)?;
    if args.undo {
        let mut store = Store::open_at(&settings.state)?;
        for id in &args.ids {
            store.set_offboarded(id, false)?;
        }
        settings.output.info(format!(
            "re-admitted {} person(s); the next `homebase apply` provisions them if the staff list names them",
            args.ids.len()
        ));
        return Ok(ExitCode::Success);
    }
    let withdraw: BTreeSet<String> = args.ids.iter().cloned().collect();
    let mut plan = build(PlanInput {
        persons: &[],
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
            digest: settings.inputs_digest(&[])?,
        },
    })
    .map_err(Failure::Invalid)?;
    plan.persons.retain(|p| withdraw.contains(&p.id));
    plan.warnings.clear();
    if args.dry_run {
        crate::output::print_stdout(&crate::report::render(
            &plan,
            crate::cli::Format::Text,
            crate::report::Listing::Changes,
            settings.output.stdout_color,
        ))?;
        return Ok(ExitCode::Success);
    }
    // The intent first: even if a withdrawal fails now, later plans keep withdrawing.
    let mut store = Store::open_at(&settings.state)?;
    for id in &withdraw {
        store.set_offboarded(id, true)?;
    }
    drop(store);
    super::apply::execute(
        settings,
        plan,
        Vec::new(),
        connected,
        super::apply::command_line(),
        crate::cli::Format::Text,
    )
}
