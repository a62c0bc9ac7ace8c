//! `homebase check`: everything `plan` validates, without reading any target.
//! Offline by default (it runs where the targets cannot be reached, e.g. in
//! a merge request's pipeline); `--online` also connects to every target,
//! which judges the settings only a server can (a Snipe-IT status that is
//! not deployable, a refused bind), and changes nothing.

use anyhow::Result;

use super::load_persons;
use crate::cli::CheckArgs;
use crate::error::{ExitCode, Failure, Problems};
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &CheckArgs) -> Result<ExitCode> {
    let persons = load_persons(settings, &args.staff.files, args.staff.sheet.as_deref())?;
    // What `plan` reads offline besides the staff: the same refusal here.
    Problems(settings.target_file_problems())
        .into_result()
        .map_err(Failure::Invalid)?;
    super::note_extra_columns(settings, &persons);
    let profiles = crate::plan::assign_profiles(
        &persons,
        &settings.profiles,
        &settings.config.default_profile,
    )?;
    let mut per_profile = std::collections::BTreeMap::<&str, usize>::new();
    for profile in profiles {
        *per_profile.entry(profile.name.as_str()).or_default() += 1;
    }
    let counts: Vec<String> = per_profile
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    let ended: Vec<(String, chrono::NaiveDate)> = persons
        .iter()
        .filter_map(|p| {
            p.end
                .filter(|d| *d < settings.today.day)
                .map(|d| (p.id.clone(), d))
        })
        .collect();
    if !ended.is_empty() {
        settings
            .output
            .warn(crate::plan::not_provisioned(&ended).message);
    }
    if args.online {
        let connected = crate::targets::Connected::connect(settings)?;
        settings.output.info(format!(
            "targets: {} connected; their servers accept the settings",
            connected.len()
        ));
    }
    settings.output.info(format!(
        "ok: {} person(s) in {} file(s) ({}); configuration {}, {} profile(s), {} template(s) checked",
        persons.len(),
        args.staff.files.len(),
        counts.join(", "),
        settings.config_source,
        settings.profiles.profiles.len(),
        settings.templates.names().len()
    ));
    Ok(ExitCode::Success)
}
