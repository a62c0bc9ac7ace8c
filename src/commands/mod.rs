//! One module per command (being written).

use crate::cli::Cli;
use crate::error::ExitCode;

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let _ = cli;
    Ok(ExitCode::Success)
}
