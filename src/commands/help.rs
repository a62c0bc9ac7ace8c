//! `homebase completions SHELL` and `homebase man`: shell completions and the
//! manual page, generated from the clap definition the parser uses.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::ExitCode;

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "homebase", &mut script);
    crate::output::print_stdout(&String::from_utf8_lossy(&script))?;
    Ok(ExitCode::Success)
}

pub fn man() -> Result<ExitCode> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    crate::output::print_stdout(&String::from_utf8_lossy(&page))?;
    Ok(ExitCode::Success)
}
