//! `homebase.yaml`: the organisation, where things live, and the targets.
//!
//! Plain serde types; `settings` resolves relative paths and merges CLI flags.
//! The JSON Schema for editors is generated from these types (`homebase schema`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The embedded default configuration: every target works with no server.
pub const DEFAULT_CONFIG: &str = include_str!("../homebase.yaml");

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The organisation, as it appears in letters and generated addresses.
    #[serde(default)]
    pub organisation: Organisation,
    /// SQLite state store (relative paths are relative to this file).
    #[serde(default = "default_state")]
    pub state: PathBuf,
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
    pub targets: BTreeMap<String, TargetConfig>,
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
    /// Most actions in flight at once against this target (`-j` caps it too).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// Most requests per second against this target.
    #[serde(default)]
    pub rate_limit: Option<f64>,
}

/// A system homebase pushes to; the `kind` decides its area.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetConfig {
    /// Directory accounts kept in the state store and exported as LDIF.
    Local(LocalDirectory),
    /// A WireGuard server configuration file with one `[Peer]` per person.
    WireguardFile(WireguardFile),
    /// Device stock from a CSV file; assignments kept in the state store.
    Csv(CsvInventory),
    /// A SCIM 2.0 service provider (Entra ID, Okta, Keycloak, authentik …).
    Scim(ScimDirectory),
}

/// The three areas of SPEC.md "Targets".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

impl TargetConfig {
    pub fn area(&self) -> Area {
        match self {
            TargetConfig::Local(_) => Area::Directory,
            TargetConfig::WireguardFile(_) => Area::Vpn,
            TargetConfig::Csv(_) => Area::Inventory,
            TargetConfig::Scim(_) => Area::Directory,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::Local(_) => "local",
            TargetConfig::WireguardFile(_) => "wireguard-file",
            TargetConfig::Csv(_) => "csv",
            TargetConfig::Scim(_) => "scim",
        }
    }

    pub fn limits(&self) -> &Limits {
        match self {
            TargetConfig::Local(t) => &t.limits,
            TargetConfig::WireguardFile(t) => &t.limits,
            TargetConfig::Csv(t) => &t.limits,
            TargetConfig::Scim(t) => &t.limits,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalDirectory {
    /// LDIF export of all accounts (relative to `out`).
    #[serde(default = "default_ldif")]
    pub ldif: PathBuf,
    /// Base DN of the exported entries.
    #[serde(default = "default_base_dn")]
    pub base_dn: String,
    #[serde(flatten)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireguardFile {
    /// The server configuration file (relative to `out`), ready for `wg syncconf`.
    #[serde(default = "default_wg_path")]
    pub path: PathBuf,
    /// What clients connect to: `host:port`, `[v6]:port` or `v6` address with port.
    pub endpoint: String,
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    /// The server's own tunnel address with the pool's prefix, e.g. `10.20.0.1/16`.
    pub address: ipnet::IpNet,
    #[serde(flatten)]
    pub limits: Limits,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvInventory {
    /// Stock list: `asset_tag`, `serial`, `kind`, `model` (and optional `status`).
    pub stock: PathBuf,
    #[serde(flatten)]
    pub limits: Limits,
}

/// A SCIM 2.0 directory. The bearer token comes from an environment variable
/// or a file, never from the configuration or the command line.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimDirectory {
    /// Base URL of the SCIM API, e.g. `https://idp.example.org/scim/v2`.
    pub url: String,
    /// Environment variable holding the bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the bearer token (relative to this file); surrounding
    /// whitespace is ignored.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA certificates to trust instead of the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds one request may take, from connecting to the last byte.
    #[serde(default = "default_scim_timeout")]
    pub timeout_secs: f64,
    /// Seconds to establish a connection.
    #[serde(default = "default_scim_connect_timeout")]
    pub connect_timeout_secs: f64,
    /// Tries per request for timeouts, dropped connections, 429 and 5xx
    /// (the first included) before the action as a whole is retried.
    #[serde(default = "default_scim_request_tries")]
    pub request_tries: u32,
    /// Resources per page when reading; capped by the server's `maxResults`.
    #[serde(default = "default_scim_page_size")]
    pub page_size: usize,
    /// Create users through the Bulk endpoint when the server offers it.
    #[serde(default)]
    pub bulk: bool,
    /// Group members added or removed by one PATCH of a group, at most.
    #[serde(default = "default_scim_members_per_patch")]
    pub members_per_patch: usize,
    #[serde(flatten)]
    pub limits: Limits,
}

fn default_scim_timeout() -> f64 {
    30.0
}
fn default_scim_connect_timeout() -> f64 {
    10.0
}
fn default_scim_request_tries() -> u32 {
    3
}
fn default_scim_page_size() -> usize {
    500
}
fn default_scim_members_per_patch() -> usize {
    500
}

fn default_state() -> PathBuf {
    PathBuf::from(".homebase/state.db")
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
fn default_ldif() -> PathBuf {
    PathBuf::from("server/directory.ldif")
}
fn default_base_dn() -> String {
    "dc=example,dc=org".into()
}
fn default_wg_path() -> PathBuf {
    PathBuf::from("server/wg0.conf")
}
fn default_listen_port() -> u16 {
    51820
}
