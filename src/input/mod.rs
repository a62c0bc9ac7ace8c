//! Staff files: CSV/TSV (delimiter and encoding detected), XLSX, YAML and JSON,
//! read into [`Person`] records with every problem reported in one pass.

mod columns;
mod dates;
mod decode;
mod email;
mod person;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use person::{Field, Origin, Person};

use crate::error::Problems;

/// How to read staff files, from the configuration and the command line.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Extra header names (compared case-insensitively) → field, from `columns:`.
    pub columns: BTreeMap<String, Field>,
    /// XLSX sheet; default the first.
    pub sheet: Option<String>,
}

/// Read every staff file, validate every record, and check ids and emails are
/// unique across all files. Either all persons, or every problem found.
pub fn load_staff(paths: &[PathBuf], options: &InputOptions) -> Result<Vec<Person>, Problems> {
    let _ = (paths, options);
    todo!("input::load_staff")
}
