//! What templates see. Typed, so every shipped template can be rendered against
//! a sample in tests and at `check` time, and secrets are only ever placed here
//! at apply time (never in plans or reports).

use std::collections::BTreeMap;

use serde::Serialize;

/// The context of every template: `person`, `account`, `vpn`, `devices`, …
#[derive(Debug, Clone, Serialize)]
pub struct BundleContext {
    pub organisation: OrganisationCtx,
    pub person: PersonCtx,
    pub profile: ProfileCtx,
    pub account: AccountCtx,
    /// Absent for profiles with `vpn.kind: none`.
    pub vpn: Option<VpnCtx>,
    pub devices: Vec<DeviceCtx>,
    pub licenses: Vec<String>,
    /// ISO date the bundle was generated.
    pub generated: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrganisationCtx {
    pub name: String,
    pub domain: String,
    pub helpdesk: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonCtx {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    pub email: Option<String>,
    pub department: Option<String>,
    pub phone: Option<String>,
    pub location: Option<String>,
    pub manager: Option<String>,
    /// ISO dates.
    pub start: Option<String>,
    pub end: Option<String>,
    /// Unknown staff columns, by header as written.
    pub extra: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileCtx {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountCtx {
    pub username: String,
    pub email: String,
    pub groups: Vec<String>,
    /// ISO date, if the account expires.
    pub expires: Option<String>,
    pub must_change_password: bool,
    /// The first password; only at apply time, only into the bundle.
    /// `None` when rendering for `check` or when the password was not (re)issued.
    pub initial_password: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VpnCtx {
    /// `wireguard` or `openvpn`.
    pub kind: String,
    /// The person's tunnel address with prefix length, e.g. `10.20.0.7/32`.
    pub address: String,
    /// Client `AllowedIPs` as written into the config (already split for Windows if asked).
    pub allowed_ips: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub mtu: Option<u16>,
    pub keepalive: Option<u16>,
    /// `host:port`, IPv6 hosts in brackets.
    pub endpoint: String,
    /// WireGuard only.
    pub server_public_key: Option<String>,
    /// Secrets: present only at apply time.
    pub private_key: Option<String>,
    pub preshared_key: Option<String>,
    /// OpenVPN only: PEM blocks for the inline config.
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub tls_crypt: Option<String>,
    /// OpenVPN `remote` host and port.
    pub remote_host: Option<String>,
    pub remote_port: Option<u16>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceCtx {
    pub kind: String,
    pub model: String,
    pub asset_tag: String,
    pub serial: String,
}
