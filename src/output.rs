//! How homebase talks to the user on stderr: verbosity, colour, progress mode.

use std::io::IsTerminal;

use crate::cli::{Color, GlobalArgs};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub verbose: u8,
    pub quiet: bool,
    /// Progress bars (a terminal, and not `--no-progress`); else plain lines.
    pub bars: bool,
    /// Colour in messages on stderr.
    pub color: bool,
    /// Colour in reports on stdout: decided for that stream, so that
    /// `plan > plan.txt` from a terminal writes no escape codes into the file.
    pub stdout_color: bool,
    /// `--yes`: do not ask.
    pub assume_yes: bool,
    /// Whether there is a terminal to ask on.
    pub can_ask: bool,
}

impl Output {
    pub fn from_args(args: &GlobalArgs) -> Output {
        let tty = std::io::stderr().is_terminal();
        let color_on = |terminal: bool| match args.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        };
        let color = color_on(tty);
        let stdout_color = color_on(std::io::stdout().is_terminal());
        Output {
            verbose: args.verbose,
            quiet: args.quiet,
            // `-vv` prints a line per request: bars would tear them.
            bars: tty && !args.no_progress && !args.quiet && args.verbose < 2,
            color,
            stdout_color,
            assume_yes: args.yes,
            can_ask: std::io::stdin().is_terminal() && tty,
        }
    }

    /// A normal message (hidden by `-q`).
    pub fn info(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{message}");
        }
    }

    /// Detail shown with `-v`.
    pub fn detail(&self, message: impl std::fmt::Display) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{message}");
        }
    }

    pub fn warn(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            if self.color {
                eprintln!("\x1b[33mwarning:\x1b[0m {message}");
            } else {
                eprintln!("warning: {message}");
            }
        }
    }
}

/// Write to stdout, letting a closed pipe end the program quietly (main maps it to 0).
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()
}
