//! Command-line types only: what the user typed, before any validation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "homebase",
    version,
    about = "Turn a staff list into working remote workplaces: accounts, VPN access and devices",
    propagate_version = true,
    after_long_help = "Exit codes:\n  0  success, or nothing to do\n  1  the run failed and nothing more can be said\n  2  bad input (usage, configuration, staff file, profile, template): nothing was changed\n  3  partial: some actions failed after retries, or the run was interrupted; the rest is\n     journaled and a re-run resumes\n  4  plan --detailed-exitcode: the plan has changes\n\nEnvironment:\n  NO_COLOR          no colour (as --color never)\n  HOMEBASE_TODAY    YYYY-MM-DD: plan as if it were that day (end dates, expiry\n                    warnings, profile lifetimes); for tests and demonstrations,\n                    never for real runs"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file [default: ./homebase.yaml, else the embedded defaults]
    #[arg(short = 'c', long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Most actions in flight per target (a ceiling for each target's own limit)
    #[arg(short = 'j', long, global = true, value_name = "N")]
    pub jobs: Option<usize>,
    /// More detail on stderr (repeat for more)
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// No progress bars; plain lines only
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Keep staff-file columns that look like a misspelt known one (e.g.
    /// "departmnt") as extra columns instead of refusing the file
    #[arg(long, global = true)]
    pub allow_extra_columns: bool,
    /// Colour on stderr and in text reports
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Do not ask for confirmation (CI has no terminal and never gets a prompt)
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// Encrypt bundles to this age recipient (`age1…`, `ssh-ed25519 …`,
    /// `ssh-rsa …`); repeatable; adds to `bundles.encrypt_to`
    #[arg(long, global = true, value_name = "KEY")]
    pub recipient: Vec<String>,
    /// Encrypt bundles to the recipients in FILE, one a line (as `age -R`)
    #[arg(long, global = true, value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Md,
    Html,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold homebase.yaml, profiles/, templates/ and an example staff list
    Init(InitArgs),
    /// Parse and validate staff files, profiles, templates and config (no network)
    Check(CheckArgs),
    /// Compare the staff list with the targets and report what would change
    Plan(PlanArgs),
    /// Carry out the plan, in parallel, and write per-person bundles
    Apply(ApplyArgs),
    /// What is provisioned for whom
    Status(StatusArgs),
    /// Withdraw access: disable accounts, remove VPN peers, check devices back in
    Offboard(OffboardArgs),
    /// Take over what already exists in the targets, matched to persons
    Adopt(AdoptArgs),
    /// New keys and passwords for named persons (lost bundle, suspected leak)
    Rotate(RotateArgs),
    /// Move the state between SQLite and PostgreSQL, or dump it as JSON
    #[command(subcommand)]
    State(StateCommand),
    /// Print the JSON Schema of homebase.yaml or of profiles (for editors)
    Schema(SchemaArgs),
    /// Print a shell completion script (e.g. `homebase completions bash > /etc/bash_completion.d/homebase`)
    Completions(CompletionsArgs),
    /// Print the manual page (roff; `homebase man | man -l -`)
    Man,
    /// Every listed person's welcome letter and handover sheet as one A4 PDF
    /// (DIN 5008 window envelope, one person per sheet, fonts embedded),
    /// from the bundles on this machine
    Letters(LettersArgs),
}

#[derive(Debug, Args)]
pub struct LettersArgs {
    #[command(flatten)]
    pub staff: StaffArgs,
    /// Sort by this field [default: `bundles.letters.by`, else department];
    /// persons without it come last, by name
    #[arg(long, value_enum)]
    pub by: Option<crate::config::LetterOrder>,
    /// The PDF to write (0600: it may hold first passwords); with
    /// `--recipient`/`bundles.encrypt_to` written encrypted as FILE.age
    #[arg(long, value_name = "FILE.pdf", default_value = "letters.pdf")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to scaffold
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files that exist
    #[arg(long)]
    pub force: bool,
    /// Also create an OpenVPN CA (pki/ca.crt, pki/ca.key 0600) and an `openvpn` target using it
    #[arg(long)]
    pub ca: bool,
    /// Key type of the new CA: ecdsa-p256, ecdsa-p384 or rsa-3072
    #[arg(long, default_value = "ecdsa-p256", requires = "ca", value_parser = parse_key_type)]
    pub ca_key_type: crate::targets::CaKeyType,
}

fn parse_key_type(text: &str) -> Result<crate::targets::CaKeyType, String> {
    crate::targets::CaKeyType::parse(text)
        .ok_or_else(|| "expected ecdsa-p256, ecdsa-p384 or rsa-3072".to_string())
}

#[derive(Debug, Args, Clone)]
pub struct StaffArgs {
    /// Staff files: CSV/TSV, XLSX, YAML or JSON
    #[arg(value_name = "STAFF", required = true)]
    pub files: Vec<PathBuf>,
    /// XLSX sheet to read [default: the first]
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub staff: StaffArgs,
    /// Also connect to every target, read nothing and change nothing: the
    /// settings only a server can judge (credentials, a Snipe-IT status that
    /// must be deployable, a SCIM server's capabilities) are checked too
    #[arg(long)]
    pub online: bool,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Report format on stdout, or of the --report file
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE (format from --format, else from the extension);
    /// stdout then gets the text summary
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub staff: StaffArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Save the plan for `apply --plan`
    #[arg(long, value_name = "PLAN")]
    pub out: Option<PathBuf>,
    /// Exit 0 when nothing changes, 4 when the plan has changes
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Withdraw access of persons no longer in the staff list
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Staff files (or use --plan)
    #[arg(value_name = "STAFF", required_unless_present = "plan")]
    pub files: Vec<PathBuf>,
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Apply a saved plan; refused when its inputs or targets changed since
    #[arg(long, value_name = "PLAN", conflicts_with = "files")]
    pub plan: Option<PathBuf>,
    /// Only plan (same as `homebase plan`)
    #[arg(long)]
    pub dry_run: bool,
    /// Issue new keys and passwords: for everybody listed, or only for the
    /// staff ids named (lost bundle, suspected leak). Without it, a delivered
    /// bundle keeps its secrets even when it is not on this machine
    #[arg(long, value_name = "ID", num_args = 0.., value_delimiter = ',')]
    pub rotate: Option<Vec<String>>,
    /// Withdraw access of persons no longer in the staff list
    #[arg(long)]
    pub prune: bool,
    /// Wait this long for another run's lock (`90s`, `10m`, `1h`) instead of exiting 2
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
    /// Also print the letters of the bundles written in this run into one
    /// A4 PDF (as `homebase letters`); encrypted as FILE.age when bundles are
    #[arg(long, value_name = "FILE.pdf")]
    pub letters: Option<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only these persons (staff ids)
    pub ids: Vec<String>,
    /// Show the audit history of applies
    #[arg(long)]
    pub history: bool,
    /// Also ask the targets (not only the state store)
    #[arg(long)]
    pub refresh: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct OffboardArgs {
    /// Staff ids to withdraw
    #[arg(required = true)]
    pub ids: Vec<String>,
    /// Only show what would be withdrawn
    #[arg(long)]
    pub dry_run: bool,
    /// Re-admit offboarded persons: the next apply provisions them again if listed
    #[arg(long, conflicts_with = "dry_run")]
    pub undo: bool,
    /// Wait this long for another run's lock (`90s`, `10m`, `1h`) instead of exiting 2
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    #[command(flatten)]
    pub staff: StaffArgs,
    /// Only this target [default: every target whose kind adopt can read]
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub target: Option<String>,
    /// CSV `staff_id` with `public_key` or `account` (username or DN): which
    /// peer or account is whose, before e-mail, username, name or comment matches
    #[arg(long, value_name = "FILE.csv")]
    pub mapping: Option<std::path::PathBuf>,
    /// Rebuild a lost state store: every target, plus the bundles on this
    /// machine (their keys and passwords are kept)
    #[arg(long)]
    pub all: bool,
    /// Wait this long for another run's lock (`90s`, `10m`, `1h`) instead of exiting 2
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Staff ids whose keys and passwords are issued anew
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<String>,
    /// The staff files that list them (their bundles are written from them)
    #[arg(long = "staff", value_name = "STAFF", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// XLSX sheet to read [default: the first]
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
    /// Wait this long for another run's lock (`90s`, `10m`, `1h`) instead of exiting 2
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy the whole state into an empty store (a SQLite path or a postgres:// URL),
    /// verified by a digest of the content
    Migrate(MigrateArgs),
    /// Write the whole state as JSON (a backup; it holds no secrets)
    Dump(DumpArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The new store: a SQLite file, or postgres://USER@HOST:PORT/DB?schema=S
    /// (password from PGPASSWORD or a password file; CA from sslrootcert= or PGSSLROOTCERT)
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Wait this long for another run's lock (`90s`, `10m`, `1h`) instead of exiting 2
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Write to FILE (0600) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `90s`, `10m`, `1h`, `500ms`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 90s, 10m, 1h)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(std::time::Duration::from_millis(n)),
        _ => return Err(format!("{text:?} is not a duration (like 90s, 10m, 1h)")),
    };
    Ok(std::time::Duration::from_secs(seconds))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Config,
    Profile,
    /// A saved plan (`plan --out`, `plan --format json`)
    Plan,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(value_enum)]
    pub kind: SchemaKind,
}
