//! `homebase rotate ID...`: new keys and passwords for the named persons (a
//! lost bundle, a suspected leak), and nothing else. The plan is the full
//! plan with those persons re-keyed, cut down to them: other persons' changes
//! wait for the next `apply`.

use std::collections::BTreeSet;

use anyhow::Result;

use super::apply::{command_line, execute};
use super::plan::{compute, PlanRequest};
use crate::cli::RotateArgs;
use crate::error::ExitCode;
use crate::plan::Rotation;
use crate::settings::Settings;

pub fn run(settings: &'static Settings, args: &RotateArgs) -> Result<ExitCode> {
    super::confirmable(&settings.output)?;
    let ids: BTreeSet<String> = args.ids.iter().cloned().collect();
    // Bad input is refused before anything is created, the lock file included.
    super::load_persons(settings, &args.files, args.sheet.as_deref())?;
    let _lock = super::lock(settings, args.lock_timeout)?;
    let request = PlanRequest {
        files: &args.files,
        sheet: args.sheet.as_deref(),
        prune: false,
        rotate: Rotation::Only(ids.clone()),
        withdraw: BTreeSet::new(),
    };
    let (mut plan, staff, connected) = compute(settings, &request)?;
    plan.persons.retain(|p| ids.contains(&p.id));
    plan.files.clear();
    plan.summary = crate::plan::summarize(&settings.config, &plan.persons);
    execute(
        settings,
        plan,
        staff,
        connected,
        command_line(),
        crate::cli::Format::Text,
        None,
    )
}
