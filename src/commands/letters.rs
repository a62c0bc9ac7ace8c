//! `homebase letters STAFF...`: the welcome letters and handover sheets of
//! the listed persons as one PDF, from the plan (what is provisioned) and the
//! bundles on this machine (their first passwords and VPN keys). Changes
//! nothing but the PDF.

use std::collections::BTreeSet;

use anyhow::Result;

use super::plan::{compute, PlanRequest};
use crate::cli::LettersArgs;
use crate::error::{ExitCode, Failure};
use crate::plan::Rotation;
use crate::settings::Settings;
use crate::state::Store;

pub fn run(settings: &Settings, args: &LettersArgs) -> Result<ExitCode> {
    let request = PlanRequest {
        files: &args.staff.files,
        sheet: args.staff.sheet.as_deref(),
        prune: false,
        rotate: Rotation::from_flag(None),
        withdraw: BTreeSet::new(),
    };
    let (plan, staff, connected) = compute(settings, &request)?;
    if let Some(change) = plan.persons.iter().find(|p| p.has_changes()) {
        return Err(Failure::usage_with_hint(
            format!(
                "the staff list is not applied yet ({} has changes); letters would not match what is provisioned",
                change.id
            ),
            "run `homebase apply` first, or `homebase apply --letters FILE.pdf`",
        )
        .into());
    }
    let store = Store::open_at(&settings.state)?;
    let (letters, missing) = crate::apply::letters_of(settings, &plan, &staff, &connected, &store)?;
    if !missing.is_empty() {
        let sealed = settings.recipients.is_some()
            || plan.persons.iter().any(|p| {
                settings
                    .out_dir
                    .join(format!("{}.tar.age", p.username))
                    .is_file()
            });
        let hint = if sealed {
            "bundles are encrypted: print the letters while they are written, with `apply --letters FILE.pdf`"
        } else {
            "print them where the bundles are, or issue new ones with `homebase rotate ID --staff FILE`"
        };
        return Err(Failure::usage_with_hint(
            format!(
                "no bundle on this machine for {} person(s): {}{}",
                missing.len(),
                missing[..missing.len().min(10)].join(", "),
                if missing.len() > 10 { ", …" } else { "" }
            ),
            hint,
        )
        .into());
    }
    let mut settings_by = settings.config.bundles.letters.clone();
    if let Some(by) = args.by {
        settings_by.by = by;
    }
    crate::apply::write_letters_with(settings, letters, &args.out, &settings_by)?;
    Ok(ExitCode::Success)
}
