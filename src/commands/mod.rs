//! One module per command; each takes the resolved settings and its own arguments.

mod adopt;
mod apply;
mod check;
mod help;
mod init;
mod letters;
mod offboard;
mod plan;
mod rotate;
mod schema;
mod state;
mod status;

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::error::{ExitCode, Failure};
use crate::input::{load_staff, Person};
use crate::settings::Settings;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(&args),
        Command::Schema(args) => schema::run(&args),
        Command::Completions(args) => help::completions(args.shell),
        Command::Man => help::man(),
        Command::Check(args) => check::run(&Settings::resolve(&cli.global)?, &args),
        Command::Plan(args) => plan::run(&Settings::resolve(&cli.global)?, &args),
        Command::Apply(args) => apply::run(leak(Settings::resolve(&cli.global)?), &args),
        Command::Status(args) => status::run(&Settings::resolve(&cli.global)?, &args),
        Command::Offboard(args) => offboard::run(leak(Settings::resolve(&cli.global)?), &args),
        Command::Adopt(args) => adopt::run(leak(Settings::resolve(&cli.global)?), &args),
        Command::Rotate(args) => rotate::run(leak(Settings::resolve(&cli.global)?), &args),
        Command::Letters(args) => letters::run(&Settings::resolve(&cli.global)?, &args),
        Command::State(command) => state::run(&Settings::resolve(&cli.global)?, &command),
    }
}

/// Refuse staff ids homebase never provisioned (a typo must not pass silently).
fn require_known(observed: &crate::plan::Observed, ids: &[String]) -> Result<()> {
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| !observed.persons.contains_key(*id))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Failure::usage_with_hint(
        format!("not provisioned by homebase: {}", unknown.join(", ")),
        "`homebase status` lists who is",
    )
    .into())
}

/// The run lock of the state store, waiting up to `wait`. A lock another
/// run holds is exit 2: nothing was changed, and the message names the holder.
fn lock(settings: &Settings, wait: Option<std::time::Duration>) -> Result<crate::state::StateLock> {
    crate::state::StateLock::acquire_at(&settings.state, wait).map_err(|err| match err {
        crate::state::StateError::Locked { .. } => Failure::usage_with_hint(
            format!("{err}; nothing was changed"),
            "run again when it is done, or with --lock-timeout 10m to wait for it",
        )
        .into(),
        other => anyhow::Error::from(other),
    })
}

/// Changes need `--yes` or a terminal to confirm on: a job that forgot
/// `--yes` must neither hang on a prompt nor change things unasked.
fn confirmable(output: &crate::output::Output) -> Result<()> {
    if output.assume_yes || output.can_ask {
        return Ok(());
    }
    Err(Failure::usage_with_hint(
        "no terminal to confirm the changes on; nothing was changed",
        "review the plan (`homebase plan`), then run again with --yes",
    )
    .into())
}

/// Settings live as long as the process: applying shares them with many tasks.
fn leak(settings: Settings) -> &'static Settings {
    Box::leak(Box::new(settings))
}

/// Say once which staff columns homebase keeps only for the templates, so
/// that a column it does not know is never dropped without a word.
fn note_extra_columns(settings: &Settings, persons: &[Person]) {
    let extra: std::collections::BTreeSet<&str> = persons
        .iter()
        .flat_map(|p| p.extra.keys().map(String::as_str))
        .collect();
    if !extra.is_empty() {
        let names: Vec<String> = extra.iter().map(|n| format!("\"{n}\"")).collect();
        settings.output.info(format!(
            "note: staff column(s) kept for templates, not used by homebase: {}",
            names.join(", ")
        ));
    }
}

/// Read and validate the staff files, and check every person gets a profile:
/// all problems of all files at once.
fn load_persons(
    settings: &Settings,
    files: &[PathBuf],
    sheet: Option<&str>,
) -> Result<Vec<Person>> {
    let mut options = settings.input.clone();
    options.sheet = sheet.map(str::to_string);
    let persons = load_staff(files, &options).map_err(Failure::Invalid)?;
    crate::plan::assign_profiles(
        &persons,
        &settings.profiles,
        &settings.config.default_profile,
    )
    .map_err(Failure::Invalid)?;
    Ok(persons)
}
