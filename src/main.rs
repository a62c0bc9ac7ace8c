//! homebase: parse the command line, run the command, map the outcome to an exit code.

use std::io::Write;

use clap::Parser;

use homebase::error::{ExitCode, Failure};
use homebase::{cli, commands};

/// mimalloc instead of glibc's malloc: a plan of 100,000 persons is millions
/// of small strings and maps, and glibc spent a quarter of the plan's time
/// allocating, freeing and consolidating them (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cli::Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(err) => report_error(&err),
    };
    std::process::exit(code as i32);
}

/// Print an error chain the way users read it, and pick the exit code.
fn report_error(err: &anyhow::Error) -> ExitCode {
    // A closed stdout (`homebase plan | head`) is not an error.
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return ExitCode::Success;
        }
    }
    let failure = err.chain().find_map(|e| e.downcast_ref::<Failure>());
    let mut stderr = std::io::stderr().lock();
    match failure {
        Some(Failure::Changes) => return ExitCode::Changes,
        Some(Failure::Invalid(problems)) => {
            let _ = writeln!(stderr, "{problems}");
            let _ = writeln!(
                stderr,
                "error: {}",
                failure.map(ToString::to_string).unwrap_or_default()
            );
        }
        _ => {
            let _ = writeln!(stderr, "error: {err:#}");
        }
    }
    if let Some(Failure::Usage {
        hint: Some(hint), ..
    }) = failure
    {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    failure.map_or(ExitCode::Failed, Failure::exit_code)
}
