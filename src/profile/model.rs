//! A profile: a role's entitlements, after `extends` has been merged.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One profile file (`profiles/NAME.yaml`). The name is the file stem.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Set from the file name; not written in the file.
    #[serde(skip_deserializing, default)]
    pub name: String,
    /// What the profile is for, shown in reports. Not inherited.
    #[serde(default)]
    pub description: Option<String>,
    /// Another profile whose settings this one starts from (maps merge deeply,
    /// lists and scalars given here replace the parent's).
    #[serde(default)]
    pub extends: Option<String>,
    /// Among profiles whose `match` rules fit a person, the highest priority wins;
    /// ties go to the profile name that sorts first. Not inherited.
    #[serde(default)]
    pub priority: i32,
    /// A person fits when any rule fits; a rule fits when all its fields fit.
    /// A rule maps a field (`department`, `location`, `id`, `email`, `manager`,
    /// `phone`, `given_name`, `family_name`, or any staff column) to values;
    /// values compare case-insensitively and a trailing `*` matches by prefix.
    /// A `profile` column in the staff list overrides all rules. Not inherited.
    #[serde(default, rename = "match")]
    pub rules: Vec<MatchRule>,
    /// Profiles with `abstract: true` are only for `extends` and never assigned.
    /// Not inherited.
    #[serde(default, rename = "abstract")]
    pub is_abstract: bool,
    #[serde(default)]
    pub account: AccountSpec,
    #[serde(default)]
    pub vpn: VpnSpec,
    /// Devices handed out from the inventory's stock.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// Named seat pools from `homebase.yaml` `licenses:`.
    #[serde(default)]
    pub licenses: Vec<String>,
    /// Templates rendered into the person's bundle.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// The review report lists every changed person of this profile among
    /// what stands out (as it does for admin groups and full tunnels).
    #[serde(default)]
    pub sensitive: bool,
    /// The printed letter of this profile's persons (`homebase letters`).
    #[serde(default)]
    pub letter: LetterSpec,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LetterSpec {
    /// Whether the printed letter shows the first password (`true`, the
    /// PIN-letter practice) or leaves it out (`false`: the letter and the
    /// handover sheet say it is handed over separately). Unset:
    /// `bundles.letters.print_password` of homebase.yaml (default `true`).
    #[serde(default)]
    pub print_password: Option<bool>,
}

/// Field name (`department`, `location`, any staff column) → accepted values.
/// Values compare case-insensitively; a trailing `*` matches any suffix.
pub type MatchRule = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// Directory target name; default: the configuration's only directory target.
    #[serde(default)]
    pub target: Option<String>,
    /// Username pattern (minijinja, person fields as variables), then transliterated
    /// to ASCII, lowercased, reduced to `[a-z0-9._-]` and cut to `max_length`.
    #[serde(default = "default_username")]
    pub username: String,
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Organisational unit / container, relative to the directory's base.
    #[serde(default)]
    pub ou: Option<String>,
    /// Account lifetime when the person has no `end` date; none: no expiry.
    #[serde(default)]
    pub expiry_days: Option<u32>,
    #[serde(default)]
    pub password: PasswordPolicy,
    /// Force a password change at first login.
    #[serde(default = "yes")]
    pub must_change_password: bool,
    /// On offboarding, delete the account instead of disabling it.
    #[serde(default)]
    pub delete_on_offboard: bool,
}

impl Default for AccountSpec {
    fn default() -> Self {
        AccountSpec {
            target: None,
            username: default_username(),
            max_length: default_max_length(),
            groups: Vec::new(),
            ou: None,
            expiry_days: None,
            password: PasswordPolicy::default(),
            must_change_password: true,
            delete_on_offboard: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    #[serde(default = "default_password_length")]
    pub length: usize,
    /// Include at least one of each: lower, upper, digit, symbol (AD complexity).
    #[serde(default = "yes")]
    pub symbols: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            length: default_password_length(),
            symbols: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VpnKind {
    Wireguard,
    Openvpn,
    #[default]
    None,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tunnel {
    /// Only `allowed_ips` go through the tunnel.
    #[default]
    Split,
    /// All traffic goes through the tunnel.
    Full,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpnSpec {
    #[serde(default)]
    pub kind: VpnKind,
    /// VPN target name; default: the configuration's only VPN target.
    #[serde(default)]
    pub target: Option<String>,
    /// Address pool; one address per person, never the network or gateway address.
    #[serde(default)]
    pub pool: Option<IpNet>,
    #[serde(default)]
    pub tunnel: Tunnel,
    /// Networks routed through a split tunnel.
    #[serde(default)]
    pub allowed_ips: Vec<IpNet>,
    /// Write a full tunnel as `0.0.0.0/1, 128.0.0.0/1` (and `::/1, 8000::/1`),
    /// so the Windows client does not switch on its kill-switch.
    #[serde(default)]
    pub windows_full_tunnel_split: bool,
    #[serde(default)]
    pub dns: Vec<IpAddr>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub mtu: Option<u16>,
    /// Persistent keepalive in seconds.
    #[serde(default)]
    pub keepalive: Option<u16>,
    /// Give each peer a preshared key (post-quantum hedge).
    #[serde(default)]
    pub preshared_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    /// `notebook`, `monitor`, `headset`, … as in the stock list.
    pub kind: String,
    /// A specific model; absent: any model of the kind.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
}

fn default_username() -> String {
    "{{ given_name[:1] }}{{ family_name }}".into()
}
fn default_max_length() -> usize {
    20
}
fn default_password_length() -> usize {
    16
}
fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
