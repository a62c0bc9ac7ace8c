//! `homebase init DIR`: scaffold a working setup from what homebase ships.

use std::path::PathBuf;

use anyhow::Result;

use crate::apply::fsutil::write_atomic;
use crate::cli::InitArgs;
use crate::error::{ExitCode, Failure};

const STAFF: &str = include_str!("../../examples/staff.csv");
const INVENTORY: &str = include_str!("../../examples/inventory.csv");

pub fn run(args: &InitArgs) -> Result<ExitCode> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    // The shipped configuration, pointed at the profiles and templates written beside it.
    let config = crate::config::DEFAULT_CONFIG.replacen(
        "\ntargets:",
        "\n# Profiles and templates of this folder (without these lines: the shipped ones).\nprofiles: profiles\ntemplates: templates\n\ntargets:",
        1,
    );
    files.push(("homebase.yaml".into(), config));
    for (name, text) in crate::profile::SHIPPED {
        files.push((
            PathBuf::from("profiles").join(format!("{name}.yaml")),
            (*text).to_string(),
        ));
    }
    for (name, text) in crate::render::SHIPPED {
        files.push((PathBuf::from("templates").join(name), (*text).to_string()));
    }
    files.push((
        "schema/config.schema.json".into(),
        crate::schema::config_schema(),
    ));
    files.push((
        "schema/profile.schema.json".into(),
        crate::schema::profile_schema(),
    ));
    files.push(("examples/staff.csv".into(), STAFF.to_string()));
    files.push(("examples/inventory.csv".into(), INVENTORY.to_string()));

    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| args.dir.join(rel))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(Failure::usage_with_hint(
            format!(
                "{} file(s) exist already: {}",
                existing.len(),
                existing.join(", ")
            ),
            "use `homebase init --force` to overwrite them",
        )
        .into());
    }
    for (rel, text) in &files {
        write_atomic(&args.dir.join(rel), text.as_bytes(), None)?;
    }
    eprintln!(
        "wrote {} files to {}; next: `cd {} && homebase check examples/staff.csv && homebase plan examples/staff.csv`",
        files.len(),
        args.dir.display(),
        args.dir.display()
    );
    Ok(ExitCode::Success)
}
