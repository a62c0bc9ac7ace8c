//! `kind: openvpn` in homebase.yaml: where clients connect, the CA that signs
//! their certificates, and the server-side files homebase keeps (CRL,
//! tls-crypt key, client-config-dir).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Limits;
use crate::error::Problem;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenvpnConfig {
    /// Host name or address clients connect to (`remote` in the client config).
    pub remote: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// The server's own tunnel address with the network's prefix, e.g.
    /// `10.30.0.1/16`; profile pools must lie inside it.
    pub address: ipnet::IpNet,
    /// The CA certificate (PEM, relative to this file), e.g. from
    /// `homebase init --ca` or easy-rsa's `pki/ca.crt`.
    pub ca_cert: PathBuf,
    /// The CA's private key: unencrypted PKCS#8 PEM, mode 0600 (relative to this file).
    pub ca_key: PathBuf,
    /// The easy-rsa PKI the CA belongs to: its folder, holding `index.txt`
    /// (relative to this file). Default: the CA certificate's folder when it
    /// holds an `index.txt`, as easy-rsa's `pki/ca.crt` does. Its revoked
    /// certificates stay in homebase's CRL; `adopt` takes over its valid
    /// client certificates. homebase never writes to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki: Option<PathBuf>,
    /// Key type of the client keys homebase generates.
    #[serde(default)]
    pub key_type: KeyType,
    /// Days a client certificate is valid when the person has no end date
    /// (and the profile no `expiry_days`).
    #[serde(default = "default_cert_days")]
    pub cert_days: u32,
    /// Re-issue a certificate this many days before it lapses, if the
    /// person's access goes on.
    #[serde(default = "default_renew_days")]
    pub renew_days: u32,
    /// The certificate revocation list for the server's `crl-verify` (relative to `out`).
    #[serde(default = "default_crl")]
    pub crl: PathBuf,
    /// Days a CRL is valid. An expired CRL locks every client out.
    #[serde(default = "default_crl_days")]
    pub crl_days: u32,
    /// `plan` warns, and `apply` re-issues the CRL, this many days before it lapses.
    #[serde(default = "default_crl_warn_days")]
    pub crl_warn_days: u32,
    /// The shared tls-crypt key (relative to `out`), created on first apply (0600).
    #[serde(default = "default_tls_crypt")]
    pub tls_crypt: PathBuf,
    /// The server's `client-config-dir` (relative to `out`): one file per
    /// client with its `ifconfig-push` address from the profile's pool.
    #[serde(default = "default_ccd")]
    pub client_config_dir: PathBuf,
    #[serde(flatten)]
    pub limits: Limits,
}

/// Key algorithms for client keys and for a CA made by `homebase init --ca`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// ECDSA on NIST P-256: small, fast, supported by every OpenVPN 2.4+ client.
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384.
    EcdsaP384,
    /// RSA 3072 bits (128-bit security), for clients or policies that need RSA.
    Rsa3072,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa3072 => "rsa-3072",
        }
    }

    pub fn parse(text: &str) -> Option<KeyType> {
        [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa3072]
            .into_iter()
            .find(|k| k.name() == text)
    }
}

impl OpenvpnConfig {
    /// Mistakes found without reading any file (the files are checked by
    /// `settings`, which knows the configuration's folder).
    pub fn problems(&self, name: &str, source: &str) -> Vec<Problem> {
        let at = |key: &str| format!("targets.{name}.{key}");
        let mut problems = Vec::new();
        let remote = self.remote.trim();
        if remote.is_empty() || remote.contains(char::is_whitespace) {
            problems.push(
                Problem::new(source, format!("\"{}\" is not a host name", self.remote))
                    .column(at("remote"))
                    .expected("e.g. vpn.example.org or 203.0.113.7"),
            );
        }
        if self.port == 0 {
            problems.push(
                Problem::new(source, "port 0")
                    .column(at("port"))
                    .expected("the server's port, e.g. 1194"),
            );
        }
        if self.address.addr() == self.address.network() || self.address.prefix_len() >= 31 {
            problems.push(
                Problem::new(
                    source,
                    format!("{} is not a host address in a network", self.address),
                )
                .column(at("address"))
                .expected("the server's tunnel address with the prefix, e.g. 10.30.0.1/16"),
            );
        }
        for (key, days) in [("cert_days", self.cert_days), ("crl_days", self.crl_days)] {
            if days == 0 {
                problems.push(
                    Problem::new(source, format!("{key} is 0"))
                        .column(at(key))
                        .expected("a number of days above 0"),
                );
            }
        }
        if self.crl_warn_days >= self.crl_days {
            problems.push(
                Problem::new(
                    source,
                    format!(
                        "crl_warn_days ({}) is not below crl_days ({}): every run would re-issue the CRL",
                        self.crl_warn_days, self.crl_days
                    ),
                )
                .column(at("crl_warn_days")),
            );
        }
        problems
    }
}

fn default_port() -> u16 {
    1194
}
fn default_cert_days() -> u32 {
    365
}
fn default_renew_days() -> u32 {
    30
}
fn default_crl() -> PathBuf {
    PathBuf::from("server/openvpn/crl.pem")
}
fn default_crl_days() -> u32 {
    30
}
fn default_crl_warn_days() -> u32 {
    7
}
fn default_tls_crypt() -> PathBuf {
    PathBuf::from("server/openvpn/tls-crypt.key")
}
fn default_ccd() -> PathBuf {
    PathBuf::from("server/openvpn/ccd")
}
