//! `homebase plan`: compute the plan from the staff list and what the targets
//! hold, print the report, optionally save it. Writes only `--out`/`--report`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::load_persons;
use crate::cli::{Format, PlanArgs, ReportArgs};
use crate::error::{ExitCode, Failure};
use crate::input::Person;
use crate::plan::{build, Inputs, Plan, PlanInput, Rotation};
use crate::settings::Settings;
use crate::targets::Connected;

/// What a plan is computed from, besides the settings.
pub struct PlanRequest<'a> {
    pub files: &'a [PathBuf],
    pub sheet: Option<&'a str>,
    pub prune: bool,
    pub rotate: Rotation,
    pub withdraw: BTreeSet<String>,
}

/// Read inputs and targets (read-only) and compute the plan. The connected
/// targets come back with it, for `apply` to carry it out through.
pub fn compute(
    settings: &Settings,
    request: &PlanRequest,
) -> Result<(Plan, Vec<Person>, Connected)> {
    // The staff files on a thread of their own while the targets are read;
    // their problems still come first.
    let (persons, state) = std::thread::scope(|scope| {
        let persons = scope.spawn(|| load_persons(settings, request.files, request.sheet));
        let state = Connected::connect(settings).and_then(|connected| {
            let observed = connected.observe(settings)?;
            Ok((connected, observed))
        });
        let persons = crate::threads::joined(persons);
        (persons, state)
    });
    let persons = persons?;
    super::note_extra_columns(settings, &persons);
    let listed: BTreeSet<&str> = persons.iter().map(|p| p.id.as_str()).collect();
    let unknown = request.rotate.unknown(&listed);
    if !unknown.is_empty() {
        return Err(Failure::usage_with_hint(
            format!(
                "cannot rotate {}: not in the staff list",
                unknown.join(", ")
            ),
            "name staff ids from the staff files (put `--rotate ID...` after the files)",
        )
        .into());
    }
    let (connected, observed) = state.context("cannot read the current state")?;
    let today = settings.today.day;
    let inputs = Inputs {
        staff_files: request
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect(),
        config: settings.config_source.clone(),
        digest: settings.inputs_digest(request.files)?,
    };
    let started = std::time::Instant::now();
    let plan = build(PlanInput {
        persons: &persons,
        profiles: &settings.profiles,
        config: &settings.config,
        observed: &observed,
        today,
        prune: request.prune,
        withdraw: &request.withdraw,
        rotate: &request.rotate,
        bundle_root: settings.out_dir.display().to_string(),
        bundle_reads: &settings.templates.bundle_reads(&settings.profiles),
        inputs,
    })
    .map_err(Failure::Invalid)?;
    settings.output.detail(format!(
        "planned {} person(s) in {} ms",
        plan.persons.len(),
        started.elapsed().as_millis()
    ));
    // Freeing what the targets hold (a tenth of a second at 100,000
    // persons) need not hold up the report.
    std::thread::spawn(move || drop(observed));
    Ok((plan, persons, connected))
}

pub fn run(settings: &Settings, args: &PlanArgs) -> Result<ExitCode> {
    let request = PlanRequest {
        files: &args.staff.files,
        sheet: args.staff.sheet.as_deref(),
        prune: args.prune,
        rotate: Rotation::None,
        withdraw: BTreeSet::new(),
    };
    let (plan, _, _) = compute(settings, &request)?;
    print_report(settings, &plan, &args.report)?;
    if let Some(out) = &args.out {
        let digest = save_plan(&plan, out)?;
        settings.output.info(format!(
            "plan {digest} saved to {}; apply it with `homebase apply --plan {}`",
            out.display(),
            out.display()
        ));
    }
    if args.detailed_exitcode && plan.has_changes() {
        return Ok(ExitCode::Changes);
    }
    Ok(ExitCode::Success)
}

/// The report on stdout, and into `--report FILE` if asked.
pub fn print_report(settings: &Settings, plan: &Plan, args: &ReportArgs) -> Result<()> {
    let listing = match settings.output.verbose {
        0 => crate::report::Listing::Brief,
        _ => crate::report::Listing::All,
    };
    // With a report file, the terminal gets the summary; the file has it all.
    let format = match args.report {
        Some(_) => Format::Text,
        None => args.format,
    };
    let stdout = crate::report::render(
        plan,
        format,
        listing,
        settings.output.stdout_color && format == Format::Text,
    );
    write_report(plan, args)?;
    crate::output::print_stdout(&stdout)?;
    Ok(())
}

/// The `--report FILE` of a plan, in the format its extension names.
pub fn write_report(plan: &Plan, args: &ReportArgs) -> Result<()> {
    if let Some(path) = &args.report {
        let format = crate::report::format_for_path(path, args.format);
        let text = crate::report::render(plan, format, crate::report::Listing::All, false);
        write_file(path, text.as_bytes())
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    Ok(())
}

/// The plan as `--format json` prints it: its SHA-256 is the digest the
/// reports name for the sign-off, which is returned.
pub fn save_plan(plan: &Plan, path: &Path) -> Result<String> {
    let json = crate::report::plan_json(plan);
    write_file(path, json.as_bytes())
        .with_context(|| format!("cannot write the plan {}", path.display()))?;
    Ok(crate::report::plan_digest(json.as_bytes()))
}

pub fn load_plan(path: &Path) -> Result<Plan> {
    Ok(load_plan_with_digest(path)?.0)
}

/// A saved plan and the SHA-256 of its bytes: the digest its reports name.
pub fn load_plan_with_digest(path: &Path) -> Result<(Plan, String)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read the plan {}", path.display()))?;
    let digest = crate::report::plan_digest(&bytes);
    let plan: Plan = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::usage(format!("{}: not a homebase plan: {e}", path.display())))?;
    if plan.schema != crate::plan::PLAN_SCHEMA {
        return Err(Failure::usage(format!(
            "{}: plan schema \"{}\" is not \"{}\"",
            path.display(),
            plan.schema,
            crate::plan::PLAN_SCHEMA
        ))
        .into());
    }
    Ok((plan, digest))
}

/// Write a whole file atomically (temp file in the same folder, then rename).
fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::apply::fsutil::write_atomic(path, bytes, None)
}
