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
    /// Print the JSON Schema of homebase.yaml or of profiles (for editors)
    Schema(SchemaArgs),
    /// Print a shell completion script (e.g. `homebase completions bash > /etc/bash_completion.d/homebase`)
    Completions(CompletionsArgs),
    /// Print the manual page (roff; `homebase man | man -l -`)
    Man,
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
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// Report format on stdout (and in --report)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the report to FILE (format from --format, else from the extension)
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
    /// Issue new keys and passwords for the persons in the plan
    #[arg(long)]
    pub rotate: bool,
    /// Withdraw access of persons no longer in the staff list
    #[arg(long)]
    pub prune: bool,
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
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    #[command(flatten)]
    pub staff: StaffArgs,
    /// Only this WireGuard target [default: every wireguard and wireguard-file target]
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// CSV `public_key,staff_id`: which peer is whose, before any comment match
    #[arg(long, value_name = "FILE.csv")]
    pub mapping: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Config,
    Profile,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(value_enum)]
    pub kind: SchemaKind,
}
