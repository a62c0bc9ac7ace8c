//! `homebase schema config|profile`: the JSON Schema for editors.

use anyhow::Result;

use crate::cli::{SchemaArgs, SchemaKind};
use crate::error::ExitCode;

pub fn run(args: &SchemaArgs) -> Result<ExitCode> {
    let schema = match args.kind {
        SchemaKind::Config => crate::schema::config_schema(),
        SchemaKind::Profile => crate::schema::profile_schema(),
    };
    crate::output::print_stdout(&schema)?;
    Ok(ExitCode::Success)
}
