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
    /// Only in the printed letter (`letter.pdf.j2`): a first password was
    /// issued but the profile keeps it out of the letter
    /// (`letter.print_password: false`), so it is handed over separately.
    pub password_separate: bool,
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
    /// WireGuard: the peer was adopted; the person keeps the private (and
    /// preshared) key of their existing config, which homebase never had.
    pub keeps_own_key: bool,
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

impl BundleContext {
    /// A context with every optional value filled: what a full bundle sees.
    /// Keys and certificates are well-formed placeholders, never real secrets.
    pub fn sample() -> BundleContext {
        BundleContext {
            organisation: OrganisationCtx {
                name: "Stadtverwaltung Musterstadt".into(),
                domain: "musterstadt.example".into(),
                helpdesk: Some("IT-Service, Tel. 0800 123 456 (Mo–Fr 7–19 Uhr)".into()),
            },
            person: PersonCtx {
                id: "100231".into(),
                given_name: "Erika".into(),
                family_name: "Mustermann".into(),
                display_name: "Erika Mustermann".into(),
                email: Some("erika.mustermann@musterstadt.example".into()),
                department: Some("Bürgeramt".into()),
                phone: Some("+49 123 4567-890".into()),
                location: Some("Rathaus, Zimmer 1.12".into()),
                manager: Some("Hans Schmidt".into()),
                start: Some("2025-03-01".into()),
                end: Some("2025-12-31".into()),
                extra: BTreeMap::from([("Kostenstelle".to_string(), "4711".to_string())]),
            },
            profile: ProfileCtx {
                name: "office".into(),
                description: Some("Büroarbeitsplatz im Homeoffice".into()),
            },
            account: AccountCtx {
                username: "emustermann".into(),
                email: "erika.mustermann@musterstadt.example".into(),
                groups: vec!["staff".into(), "homeoffice".into()],
                expires: Some("2025-12-31".into()),
                must_change_password: true,
                initial_password: Some("Sample-Only-7qX!t2".into()),
                password_separate: false,
            },
            vpn: Some(VpnCtx {
                kind: "wireguard".into(),
                address: "10.20.0.7/32".into(),
                allowed_ips: vec!["10.0.0.0/8".into(), "172.16.0.0/12".into()],
                dns: vec!["10.20.0.1".into()],
                dns_search: vec!["musterstadt.example".into()],
                mtu: Some(1380),
                keepalive: Some(25),
                endpoint: "vpn.musterstadt.example:51820".into(),
                server_public_key: Some("SAMPLEserverPUBLICkeyAAAAAAAAAAAAAAAAAAAAAA=".into()),
                private_key: Some("SAMPLEclientPRIVATEkeyAAAAAAAAAAAAAAAAAAAAA=".into()),
                preshared_key: Some("SAMPLEpresharedKEYAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
                keeps_own_key: false,
                ca: Some(pem("CERTIFICATE", "sample CA")),
                cert: Some(pem("CERTIFICATE", "sample client certificate")),
                key: Some(pem("PRIVATE KEY", "sample client key")),
                tls_crypt: Some(pem("OpenVPN Static key V1", "sample tls-crypt key")),
                remote_host: Some("vpn.musterstadt.example".into()),
                remote_port: Some(1194),
            }),
            devices: vec![
                DeviceCtx {
                    kind: "notebook".into(),
                    model: "Lenovo ThinkPad T14 Gen 4".into(),
                    asset_tag: "MS-NB-00421".into(),
                    serial: "PF4X9K2L".into(),
                },
                DeviceCtx {
                    kind: "monitor".into(),
                    model: "Dell P2423D".into(),
                    asset_tag: "MS-MON-01177".into(),
                    serial: "CN-0F3R8T-74445".into(),
                },
                DeviceCtx {
                    kind: "headset".into(),
                    model: "Jabra Evolve2 40".into(),
                    asset_tag: "MS-HS-00893".into(),
                    serial: "J40-2231-0893".into(),
                },
            ],
            licenses: vec!["office-suite".into(), "vpn-client".into()],
            generated: "2025-03-01".into(),
        }
    }

    /// A context with every optional value absent (a person with one name, no
    /// e-mail column, no helpdesk, no devices, no secrets issued), and a VPN
    /// whose own optional values are absent too.
    pub fn sample_sparse() -> BundleContext {
        let full = BundleContext::sample();
        BundleContext {
            organisation: OrganisationCtx {
                helpdesk: None,
                ..full.organisation
            },
            person: PersonCtx {
                id: "100232".into(),
                given_name: String::new(),
                family_name: "Mustermann".into(),
                display_name: "Mustermann".into(),
                email: None,
                department: None,
                phone: None,
                location: None,
                manager: None,
                start: None,
                end: None,
                extra: BTreeMap::new(),
            },
            profile: ProfileCtx {
                name: "office".into(),
                description: None,
            },
            account: AccountCtx {
                username: "mustermann".into(),
                email: "mustermann@musterstadt.example".into(),
                groups: Vec::new(),
                expires: None,
                must_change_password: false,
                initial_password: None,
                password_separate: false,
            },
            vpn: Some(VpnCtx {
                kind: "wireguard".into(),
                address: "10.20.0.8/32".into(),
                allowed_ips: vec!["0.0.0.0/0".into()],
                dns: Vec::new(),
                dns_search: Vec::new(),
                mtu: None,
                keepalive: None,
                endpoint: "vpn.musterstadt.example:51820".into(),
                server_public_key: None,
                private_key: None,
                preshared_key: None,
                keeps_own_key: false,
                ca: None,
                cert: None,
                key: None,
                tls_crypt: None,
                remote_host: None,
                remote_port: None,
            }),
            devices: Vec::new(),
            licenses: Vec::new(),
            generated: full.generated,
        }
    }

    /// The contexts `Templates::check` renders every template against, each
    /// with a label for problems: full, without optional values, without VPN.
    pub fn samples() -> Vec<(&'static str, BundleContext)> {
        let no_vpn = BundleContext {
            vpn: None,
            ..BundleContext::sample_sparse()
        };
        vec![
            ("the full sample", BundleContext::sample()),
            (
                "the sample without optional values",
                BundleContext::sample_sparse(),
            ),
            ("the sample without VPN", no_vpn),
        ]
    }
}

/// A PEM block around a placeholder body (base64 of `label`).
fn pem(kind: &str, label: &str) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(label.as_bytes());
    format!("-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n")
}
