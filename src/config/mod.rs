//! `homebase.yaml`: the organisation, where things live, and the targets.
//!
//! Plain serde types; `settings` resolves relative paths and merges CLI flags.
//! The JSON Schema for editors is generated from these types (`homebase schema`).

mod problems;

pub use problems::config_problems;

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The embedded default configuration: every target works with no server.
pub const DEFAULT_CONFIG: &str = include_str!("../../homebase.yaml");

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The organisation, as it appears in letters and generated addresses.
    #[serde(default)]
    pub organisation: Organisation,
    /// The state store: a SQLite file (relative paths are relative to this
    /// file), or PostgreSQL (`postgres://USER@HOST:PORT/DB`, or `url:` with
    /// `schema:`, `ca_file:`, `password_env:`/`password_file:`). `HOMEBASE_STATE`
    /// replaces the path or URL.
    #[serde(default)]
    pub state: crate::state::StateConfig,
    /// Where per-person bundles and server files are written.
    #[serde(default = "default_out")]
    pub out: PathBuf,
    /// Folder of profile files; absent: the shipped profiles embedded in homebase.
    #[serde(default)]
    pub profiles: Option<PathBuf>,
    /// Folder of templates; absent: the shipped templates. A file here overrides
    /// the shipped template of the same name.
    #[serde(default)]
    pub templates: Option<PathBuf>,
    /// The profile for persons whom no `profile` column and no match rule assign.
    #[serde(default = "default_profile")]
    pub default_profile: String,
    /// Extra column names of the staff files: header as written → field
    /// (`id`, `given_name`, `family_name`, `email`, `department`, `profile`,
    /// `phone`, `location`, `manager`, `start`, `end`).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Named license seat pools that profiles draw from.
    #[serde(default)]
    pub licenses: BTreeMap<String, LicensePool>,
    /// Warn this many days before an account expires.
    #[serde(default = "default_warn_days")]
    pub warn_expiry_days: u32,
    /// The systems homebase pushes to, by name.
    #[serde(default)]
    pub targets: BTreeMap<String, crate::targets::TargetConfig>,
    /// How bundles leave this machine: encrypted, and as printed letters.
    #[serde(default)]
    pub bundles: Bundles,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundles {
    /// age recipients (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`): when set, each
    /// bundle is written only as `OUT/USERNAME.tar.age`, encrypted to all of
    /// them, plus one `OUT/bundles-run-N.tar.age` of every bundle of the run.
    /// No plaintext secret is written to disk.
    #[serde(default)]
    pub encrypt_to: Vec<String>,
    /// The printed letters (`homebase letters`).
    #[serde(default)]
    pub letters: Letters,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Letters {
    /// DIN 5008 form of the window envelope's address field: `a` (address
    /// field 27 mm from the top) or `b` (45 mm, the usual one).
    #[serde(default)]
    pub form: DinForm,
    /// Sort letters by `department` (default) or `location`.
    #[serde(default)]
    pub by: LetterOrder,
    /// Whether the first password is printed in the letter (the PIN-letter
    /// practice) or handed over separately, for profiles that do not say
    /// (a profile's `letter.print_password` decides for its persons).
    #[serde(default = "yes")]
    pub print_password: bool,
}

fn yes() -> bool {
    true
}

impl Default for Letters {
    fn default() -> Self {
        Letters {
            form: DinForm::default(),
            by: LetterOrder::default(),
            print_password: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DinForm {
    A,
    #[default]
    B,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum LetterOrder {
    #[default]
    Department,
    Location,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub name: String,
    /// Mail domain for persons without an `email` column, and the UPN suffix.
    pub domain: String,
    /// Who to call for help, printed in the welcome letter.
    #[serde(default)]
    pub helpdesk: Option<String>,
}

impl Default for Organisation {
    fn default() -> Self {
        Organisation {
            name: "Example City Administration".into(),
            domain: "example.org".into(),
            helpdesk: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LicensePool {
    /// Seats bought.
    pub seats: u32,
    #[serde(default)]
    pub description: Option<String>,
}

/// Limits every target accepts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Most actions (and requests) in flight at once against this target
    /// (`-j` caps it too): the ceiling of the adaptive limit.
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Most requests per second against this target.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Find the requests in flight the server takes best while running,
    /// below the ceiling (default). `false`: always the ceiling.
    #[serde(default)]
    pub adaptive: Option<bool>,
}

impl Limits {
    /// The ceiling when neither `max_concurrency` nor `-j` sets one: room
    /// for a server behind latency when adaptive, a cautious fixed number
    /// when not.
    pub const ADAPTIVE_CEILING: usize = 64;
    pub const FIXED_DEFAULT: usize = 16;

    pub fn adaptive(&self) -> bool {
        self.adaptive.unwrap_or(true)
    }

    /// The hard ceiling of requests in flight: `max_concurrency` capped by `-j`.
    pub fn ceiling(&self, jobs: Option<usize>) -> usize {
        let default = if self.adaptive() {
            Limits::ADAPTIVE_CEILING
        } else {
            Limits::FIXED_DEFAULT
        };
        match (self.max_concurrency, jobs) {
            (Some(m), Some(j)) => m.min(j),
            (Some(n), None) | (None, Some(n)) => n,
            (None, None) => default,
        }
        .max(1)
    }
}

/// The three areas of targets (docs/contract.md, "Targets"), and the bundles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    Directory,
    Vpn,
    Inventory,
    /// Not a target: the per-person bundle folders homebase writes itself.
    Bundle,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Directory => "directory",
            Area::Vpn => "vpn",
            Area::Inventory => "inventory",
            Area::Bundle => "bundle",
        }
    }
}

fn default_out() -> PathBuf {
    PathBuf::from("out")
}
fn default_profile() -> String {
    "office".into()
}
fn default_warn_days() -> u32 {
    14
}

/// The 1-based line of a key path (`["targets", "dir", "url"]`) in a YAML
/// file of block mappings, for messages: the deepest key of the path that is
/// written there (a missing key points at its parent).
pub fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    let mut from = 0;
    let mut parent_indent: Option<usize> = None;
    for key in path {
        let mut hit = None;
        for (index, line) in lines.iter().enumerate().skip(from) {
            let body = line.trim_start();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let indent = line.len() - body.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            if body
                .strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
            {
                hit = Some((index, indent));
                break;
            }
        }
        let Some((index, indent)) = hit else {
            break;
        };
        found = Some(index + 1);
        from = index + 1;
        parent_indent = Some(indent);
    }
    found
}

#[cfg(test)]
mod line_tests {
    use super::line_of;

    #[test]
    fn key_paths_find_their_line() {
        let text = "state: x\ntargets:\n  # the directory\n  dir:\n    kind: scim\n    url: http://a\n  wg0:\n    url: y\n";
        assert_eq!(line_of(text, &["targets", "dir", "url"]), Some(6));
        assert_eq!(line_of(text, &["targets", "wg0", "url"]), Some(8));
        // A key the target does not write: the target's own line.
        assert_eq!(line_of(text, &["targets", "dir", "token_env"]), Some(4));
        assert_eq!(line_of(text, &["nothing"]), None);
    }
}
