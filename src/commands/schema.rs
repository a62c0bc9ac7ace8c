//! `homebase schema config|profile|plan`: the JSON Schemas for editors and scripts.

use anyhow::Result;

use crate::cli::{SchemaArgs, SchemaKind};
use crate::error::ExitCode;

pub fn run(args: &SchemaArgs) -> Result<ExitCode> {
    let schema = match args.kind {
        SchemaKind::Config => crate::schema::config_schema(),
        SchemaKind::Profile => crate::schema::profile_schema(),
        SchemaKind::Plan => crate::schema::plan_schema(),
    };
    crate::output::print_stdout(&schema)?;
    Ok(ExitCode::Success)
}
