//! `homebase.yaml`: the organisation, where things live, and the targets.
//!
//! Plain serde types; `settings` resolves relative paths and merges CLI flags.
//! The JSON Schema for editors is generated from these types (`homebase schema`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Problem;

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

/// A system homebase pushes to; the `kind` decides its area.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum TargetConfig {
    /// Directory accounts kept in the state store and exported as LDIF.
    Local(LocalDirectory),
    /// A WireGuard server configuration file with one `[Peer]` per person.
    WireguardFile(WireguardFile),
    /// A running WireGuard interface, managed with `wg` (locally or through a
    /// command prefix such as `ssh gw sudo`), its config file kept in step.
    Wireguard(WireguardLive),
    /// Device stock from a CSV file; assignments kept in the state store.
    Csv(CsvInventory),
    /// Snipe-IT: users, hardware checkout and checkin through its REST API.
    Snipeit(SnipeitConfig),
    /// A SCIM 2.0 service provider (Entra ID, Okta, Keycloak, authentik …).
    Scim(ScimDirectory),
    /// Accounts in OpenLDAP or Active Directory, over LDAPS or StartTLS.
    Ldap(Box<crate::targets::ldap::LdapConfig>),
    /// OpenVPN: client certificates from the organisation's CA, inline `.ovpn`
    /// configs, a CRL on revocation.
    Openvpn(Box<crate::targets::openvpn::OpenvpnConfig>),
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
            TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Openvpn(_) => Area::Vpn,
            TargetConfig::Csv(_) | TargetConfig::Snipeit(_) => Area::Inventory,
            TargetConfig::Scim(_) => Area::Directory,
            TargetConfig::Ldap(_) => Area::Directory,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TargetConfig::Local(_) => "local",
            TargetConfig::WireguardFile(_) => "wireguard-file",
            TargetConfig::Wireguard(_) => "wireguard",
            TargetConfig::Csv(_) => "csv",
            TargetConfig::Snipeit(_) => "snipeit",
            TargetConfig::Scim(_) => "scim",
            TargetConfig::Ldap(_) => "ldap",
            TargetConfig::Openvpn(_) => "openvpn",
        }
    }

    pub fn limits(&self) -> &Limits {
        match self {
            TargetConfig::Local(t) => &t.limits,
            TargetConfig::WireguardFile(t) => &t.limits,
            TargetConfig::Wireguard(t) => &t.limits,
            TargetConfig::Csv(t) => &t.limits,
            TargetConfig::Scim(t) => &t.limits,
            TargetConfig::Snipeit(t) => &t.limits,
            TargetConfig::Ldap(t) => &t.limits,
            TargetConfig::Openvpn(t) => &t.limits,
        }
    }

    /// What is wrong with the target's settings, found without the network
    /// (`check` reports it; `plan` and `apply` refuse to start).
    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        match self {
            TargetConfig::Snipeit(t) => t.problems(name, source),
            TargetConfig::Ldap(t) => t.problems(name, source),
            TargetConfig::Wireguard(t) => t.problems(name, source),
            TargetConfig::Openvpn(t) => t.problems(name, source),
            TargetConfig::Local(_)
            | TargetConfig::WireguardFile(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Scim(_) => Vec::new(),
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

impl TargetConfig {
    /// The VPN server's own tunnel address with the network's prefix.
    pub fn vpn_address(&self) -> Option<ipnet::IpNet> {
        match self {
            TargetConfig::WireguardFile(wg) => Some(wg.address),
            TargetConfig::Wireguard(wg) => Some(wg.address),
            TargetConfig::Openvpn(ovpn) => Some(ovpn.address),
            _ => None,
        }
    }

    /// The hard ceiling of actions (and requests) in flight:
    /// `max_concurrency` or the kind's own default, capped by `-j`.
    pub fn ceiling(&self, jobs: Option<usize>) -> usize {
        let limits = self.limits();
        match (self, limits.max_concurrency) {
            // The live WireGuard target batches concurrent peer changes into
            // one `wg` call, so it takes many at once.
            (TargetConfig::Wireguard(_), None) => jobs.map_or(512, |j| j.min(512)).max(1),
            _ => limits.ceiling(jobs),
        }
    }
}

/// A WireGuard server's running interface. Every value here is passed as an
/// argument through `command` (ssh joins arguments into a shell line), so
/// names and paths are restricted to characters no shell interprets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WireguardLive {
    /// The interface on the gateway, e.g. `wg0`.
    pub interface: String,
    /// What clients connect to: `host:port`, `[v6]:port` or `v6` address with port.
    pub endpoint: String,
    /// The port clients use when `endpoint` names none.
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    /// The server's own tunnel address with the pool's prefix, e.g. `10.20.0.1/16`.
    pub address: ipnet::IpNet,
    /// The gateway's `wg-quick` file (e.g. `/etc/wireguard/wg0.conf`), kept
    /// in step after every apply so that a restart keeps the peers. A path
    /// on the machine the commands run on; relative to this file when local.
    pub config_path: PathBuf,
    /// Prefix of every command, e.g. `[ssh, vpn-gw-1, sudo]` or
    /// `[ip, netns, exec, vpn]`; empty: run `wg` here.
    #[serde(default)]
    pub command: Vec<String>,
    /// Seconds one command may take.
    #[serde(default = "default_command_timeout")]
    pub timeout_seconds: u64,
    #[serde(flatten)]
    pub limits: Limits,
}

impl WireguardLive {
    fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = Vec::new();
        let iface_ok = !self.interface.is_empty()
            && self.interface.len() <= 15
            && self
                .interface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_=+.-".contains(&b));
        if !iface_ok {
            problems.push(
                Problem::new(
                    source,
                    format!("\"{}\" is not an interface name", self.interface),
                )
                .column(at("interface"))
                .expected("1 to 15 of A-Z a-z 0-9 _ = + . -"),
            );
        }
        let path = self.config_path.to_string_lossy();
        if path.is_empty()
            || !path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-+@".contains(&b))
        {
            problems.push(
                Problem::new(source, format!("\"{path}\" is not a plain path"))
                    .column(at("config_path"))
                    .expected("a path of A-Z a-z 0-9 / . _ - + @ (it is passed through `command`)"),
            );
        }
        if self.command.iter().any(|part| part.is_empty()) {
            problems.push(
                Problem::new(source, "an empty word in the command prefix")
                    .column(at("command"))
                    .expected("e.g. [ssh, vpn-gw-1, sudo]"),
            );
        }
        if self.timeout_seconds == 0 {
            problems.push(
                Problem::new(source, "a timeout of 0 seconds")
                    .column(at("timeout_seconds"))
                    .expected("a number of seconds above 0"),
            );
        }
        problems
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvInventory {
    /// Stock list: `asset_tag`, `serial`, `kind`, `model` (and optional `status`).
    pub stock: PathBuf,
    #[serde(flatten)]
    pub limits: Limits,
}

/// A Snipe-IT instance as an inventory target. The API token is read from
/// `token_env` or `token_file` when homebase connects; it is never written
/// anywhere and never part of a message.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnipeitConfig {
    /// Base URL of Snipe-IT, e.g. `https://assets.example.org` (the API lies
    /// below `/api/v1`). `http://` only for 127.0.0.1, `::1` or localhost.
    pub url: String,
    /// Environment variable that holds the API token (a personal access token).
    #[serde(default)]
    pub token_env: Option<String>,
    /// File that holds the API token (relative to this file); its first line counts.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The API user's throttle: Snipe-IT's `API_THROTTLE_PER_MINUTE`, 120 by
    /// default. homebase paces every request of the target to just under it.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// PEM file of the CA certificates to trust instead of the system's
    /// (relative to this file). TLS is always verified.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds one request may take in all.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Seconds to wait for a connection.
    #[serde(default = "default_connect_timeout_seconds")]
    pub connect_timeout_seconds: u64,
    /// The status label of assets that may be handed out, e.g. `Ready to Deploy`;
    /// absent: every asset whose status is deployable.
    #[serde(default)]
    pub status: Option<String>,
    /// Device kinds as profiles name them (`notebook`, `monitor` …) → which
    /// Snipe-IT assets are of that kind, by category and/or model name.
    pub kinds: BTreeMap<String, SnipeitKind>,
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

/// Which assets are of one device kind: by category, by model, or by model
/// within the category when both are given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnipeitKind {
    /// Category name(s), e.g. `Notebooks`.
    #[serde(default)]
    pub category: Names,
    /// Model name(s), e.g. `ThinkPad T14 Gen 5`.
    #[serde(default)]
    pub model: Names,
}

/// One name or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Many(Vec::new())
    }
}

impl Names {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Names::One(name) => std::slice::from_ref(name),
            Names::Many(names) => names,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl SnipeitConfig {
    fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = Vec::new();
        match reqwest::Url::parse(&self.url) {
            Ok(url) if url.scheme() == "https" => {}
            Ok(url)
                if url.scheme() == "http"
                    && matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost")) => {}
            Ok(url) if url.scheme() == "http" => problems.push(
                Problem::new(source, "plain http would send the API token in the clear")
                    .column(at("url"))
                    .expected("an https:// URL (http:// only for 127.0.0.1, ::1 or localhost)"),
            ),
            Ok(_) | Err(_) => problems.push(
                Problem::new(source, format!("\"{}\" is not a URL", self.url))
                    .column(at("url"))
                    .expected("e.g. https://assets.example.org"),
            ),
        }
        match (&self.token_env, &self.token_file) {
            (Some(_), None) | (None, Some(_)) => {}
            (None, None) => problems.push(
                Problem::new(source, "no API token configured")
                    .column(at("token_env"))
                    .expected(
                        "`token_env: VARIABLE` or `token_file: PATH` (never the token itself)",
                    ),
            ),
            (Some(_), Some(_)) => problems.push(
                Problem::new(source, "both token_env and token_file are set")
                    .column(at("token_env"))
                    .expected("one of them"),
            ),
        }
        if self.requests_per_minute == 0 {
            problems.push(
                Problem::new(source, "requests_per_minute is 0")
                    .column(at("requests_per_minute"))
                    .expected("Snipe-IT's API_THROTTLE_PER_MINUTE, 120 by default"),
            );
        }
        if self.timeout_seconds == 0 || self.connect_timeout_seconds == 0 {
            problems.push(
                Problem::new(source, "a timeout of 0 seconds")
                    .column(at("timeout_seconds"))
                    .expected("a number of seconds above 0"),
            );
        }
        if self.kinds.is_empty() {
            problems.push(
                Problem::new(source, "no device kinds mapped to Snipe-IT assets")
                    .column(at("kinds"))
                    .expected("e.g. `kinds: {notebook: {category: Notebooks}}`"),
            );
        }
        for (kind, select) in &self.kinds {
            if select.category.is_empty() && select.model.is_empty() {
                problems.push(
                    Problem::new(source, format!("kind \"{kind}\" selects no assets"))
                        .column(at(&format!("kinds.{kind}")))
                        .expected("`category:` and/or `model:` names"),
                );
            }
        }
        problems
    }
}

fn default_requests_per_minute() -> u32 {
    120
}
fn default_timeout_seconds() -> u64 {
    30
}
fn default_connect_timeout_seconds() -> u64 {
    10
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
fn default_command_timeout() -> u64 {
    60
}
