//! `homebase apply`: plan under the state lock (or load a saved plan and check
//! it is not stale), confirm, carry it out, summarise. Exit 3 when some actions
//! failed or the run was interrupted: the rest is journaled and a re-run resumes.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Result;

use super::plan::{compute, load_plan, load_plan_with_digest, print_report, PlanRequest};
use crate::apply::{ApplyOptions, Outcome};
use crate::cli::{ApplyArgs, Format};
use crate::error::{ExitCode, Failure};
use crate::input::Person;
use crate::plan::{Plan, Rotation};
use crate::settings::Settings;
use crate::state::Store;
use crate::targets::Connected;

pub fn run(settings: &'static Settings, args: &ApplyArgs) -> Result<ExitCode> {
    let request = PlanRequest {
        files: &args.files,
        sheet: args.sheet.as_deref(),
        prune: args.prune,
        rotate: Rotation::from_flag(args.rotate.as_deref()),
        withdraw: BTreeSet::new(),
    };
    if args.dry_run {
        let (plan, _, _) = compute(settings, &request)?;
        print_report(settings, &plan, &args.report)?;
        return Ok(ExitCode::Success);
    }
    super::confirmable(&settings.output)?;
    // Bad input is refused before anything is created, the lock file included.
    let saved = args.plan.as_deref().map(load_plan).transpose()?;
    let staff_files: Vec<PathBuf> = match &saved {
        Some(plan) => plan.inputs.staff_files.iter().map(PathBuf::from).collect(),
        None => args.files.clone(),
    };
    super::load_persons(settings, &staff_files, args.sheet.as_deref())?;
    let _lock = super::lock(settings, args.lock_timeout)?;
    let (plan, staff, connected, digest) = match &args.plan {
        Some(path) => saved_plan(settings, path, args)?,
        None => {
            let (plan, staff, connected) = compute(settings, &request)?;
            (plan, staff, connected, None)
        }
    };
    // The report goes to its file only: the terminal gets the run's progress.
    super::plan::write_report(&plan, &args.report)?;
    execute_with_letters(
        settings,
        plan,
        staff,
        connected,
        command_line(),
        args.report.format,
        digest,
        args.letters.clone(),
    )
}

/// Carry out a plan computed under the lock; shared with `offboard` and
/// `rotate`. `Format::Json`: the run's result (`homebase.apply/v1`) on
/// stdout; the other formats concern `--report` only.
pub fn execute(
    settings: &'static Settings,
    plan: Plan,
    staff: Vec<Person>,
    connected: Connected,
    command: String,
    format: Format,
    plan_digest: Option<String>,
) -> Result<ExitCode> {
    execute_with_letters(
        settings,
        plan,
        staff,
        connected,
        command,
        format,
        plan_digest,
        None,
    )
}

/// [`execute`], and the letters of the bundles written as one PDF (`--letters`).
#[allow(clippy::too_many_arguments)]
pub fn execute_with_letters(
    settings: &'static Settings,
    plan: Plan,
    staff: Vec<Person>,
    connected: Connected,
    command: String,
    format: Format,
    plan_digest: Option<String>,
    letters: Option<PathBuf>,
) -> Result<ExitCode> {
    let output = settings.output;
    if !plan.has_changes() {
        output.info("nothing to do: the targets match the staff list");
        if format == Format::Json {
            print_json(&crate::report::outcome::json(&plan, None))?;
        }
        return Ok(ExitCode::Success);
    }
    let changes: usize = plan
        .summary
        .iter()
        .map(|s| s.create + s.update + s.remove)
        .sum();
    let persons = plan.persons.iter().filter(|p| p.has_changes()).count();
    for warning in &plan.warnings {
        output.warn(&warning.message);
    }
    // Rate-limited targets: how long to expect, before the answer.
    for estimate in &plan.estimates {
        output.info(format!(
            "{} ({}): {}",
            estimate.target,
            estimate.kind,
            crate::report::estimate_line(estimate)
        ));
    }
    if !output.assume_yes
        && !confirm(&format!(
            "apply {changes} change(s) for {persons} person(s)?"
        ))?
    {
        output.info("nothing was changed");
        return Ok(ExitCode::Failed);
    }
    let files = match plan.files.len() {
        0 => String::new(),
        n => format!(", rewriting {n} file(s)"),
    };
    output.info(format!(
        "applying {changes} change(s) for {persons} person(s){files}"
    ));
    let mut store = Store::open_at(&settings.state)?;
    // The plan goes into the run; the result needs it afterwards.
    let planned = (format == Format::Json).then(|| plan.clone());
    let outcome = crate::apply::run(
        settings,
        &mut store,
        plan,
        staff,
        connected,
        ApplyOptions {
            command,
            plan_digest,
            letters,
        },
    )?;
    if let Some(planned) = planned {
        print_json(&crate::report::outcome::json(&planned, Some(&outcome)))?;
    }
    summarize(settings, &outcome)
}

fn print_json(value: &serde_json::Value) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    Ok(())
}

fn summarize(settings: &Settings, outcome: &Outcome) -> Result<ExitCode> {
    let output = settings.output;
    output.info(format!(
        "done: {} action(s) completed, {} failed{}",
        outcome.done,
        outcome.failed.len(),
        if outcome.not_started > 0 {
            format!(
                ", {} person(s) not started (interrupted)",
                outcome.not_started
            )
        } else {
            String::new()
        }
    ));
    for (name, gate) in &outcome.gates {
        output.info(crate::apply::progress::settled(name, gate));
    }
    for failed in &outcome.failed {
        eprintln!(
            "failed: {} — {} {}: {}",
            crate::report::escape::terminal(&failed.person),
            failed.target,
            crate::report::escape::terminal(&failed.what),
            crate::report::escape::terminal(&failed.reason)
        );
    }
    if !outcome.failed.is_empty() || outcome.not_started > 0 {
        return Err(Failure::Partial {
            failed: outcome.failed.len(),
            not_started: outcome.not_started,
        }
        .into());
    }
    Ok(ExitCode::Success)
}

/// Load a saved plan and refuse it if its inputs or the targets changed
/// since; with the digest of the file, which the signed report names.
fn saved_plan(
    settings: &Settings,
    path: &std::path::Path,
    args: &ApplyArgs,
) -> Result<(Plan, Vec<Person>, Connected, Option<String>)> {
    let (saved, digest) = load_plan_with_digest(path)?;
    let files: Vec<PathBuf> = saved.inputs.staff_files.iter().map(PathBuf::from).collect();
    let request = PlanRequest {
        files: &files,
        sheet: args.sheet.as_deref(),
        prune: saved.prune,
        rotate: Rotation::from_flag(args.rotate.as_deref()),
        withdraw: BTreeSet::new(),
    };
    let (fresh, staff, connected) = compute(settings, &request)?;
    if fresh.inputs.digest != saved.inputs.digest {
        return Err(Failure::usage_with_hint(
            format!("stale plan {}: the staff files, configuration, profiles or templates changed since it was made", path.display()),
            "run `homebase plan --out` again and have the new plan reviewed",
        )
        .into());
    }
    if fresh.state_digest != saved.state_digest {
        return Err(Failure::usage_with_hint(
            format!(
                "stale plan {}: the state of the targets changed since it was made",
                path.display()
            ),
            "run `homebase plan --out` again and have the new plan reviewed",
        )
        .into());
    }
    settings.output.info(format!(
        "plan {digest} from {}: the digest its reviewed report names",
        path.display()
    ));
    Ok((saved, staff, connected, Some(digest)))
}

fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "ja" | "j"))
}

/// The command line for the audit log (no secrets are ever on it).
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
