//! The `openvpn` VPN target: per-person client certificates from the
//! organisation's CA, written as inline `.ovpn` files into the bundles.
//!
//! Like `wireguard-file`, its effect is the state store plus server files
//! written from it at the end of every apply:
//! - the CRL (`crl-verify`), re-issued when a certificate was revoked or its
//!   next update comes near;
//! - the `client-config-dir`, which pushes each client the address of its pool.
//!
//! Issuing happens where the other secrets are made (the executor's secrets
//! step): the client key goes only into the bundle; the state store gets the
//! serial and validity. The CA key is read from its file at apply time and
//! held in memory only.

pub mod ca;
pub mod ccd;
pub mod config;
pub mod crl;
pub mod easyrsa;
pub mod tls_crypt;
pub mod validity;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::Utc;

pub use ca::Authority;
pub use config::{KeyType, OpenvpnConfig};

use crate::apply::fsutil::{private_dir, write_atomic};
use crate::error::Problem;
use crate::plan::Observed;
use crate::settings::Settings;
use crate::state::Store;

/// What an apply needs of an openvpn target: the CA, ready to sign, and
/// what every client config embeds. `Debug` shows no secret.
pub struct OpenvpnServer {
    pub authority: Authority,
    /// The shared tls-crypt key (a secret).
    pub tls_crypt: String,
    pub config: OpenvpnConfig,
}

impl fmt::Debug for OpenvpnServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OpenvpnServer({:?}, {})",
            self.authority, self.config.remote
        )
    }
}

impl OpenvpnServer {
    /// A client certificate for `username`, valid to the end of the access
    /// (or `cert_days` without an end date), capped by the CA.
    pub fn issue_client(
        &self,
        username: &str,
        organisation: &str,
        access_end: Option<chrono::NaiveDate>,
        today: chrono::NaiveDate,
    ) -> Result<ca::Issued> {
        let not_after = validity::not_after(access_end, today, self.config.cert_days);
        Ok(self
            .authority
            .issue(username, organisation, self.config.key_type, not_after)?)
    }

    /// Load the CA and the tls-crypt key (created on the first apply).
    pub fn prepare(
        name: &str,
        config: &OpenvpnConfig,
        settings: &Settings,
    ) -> Result<OpenvpnServer> {
        let authority = Authority::load(
            &settings.path(&config.ca_cert),
            &settings.path(&config.ca_key),
        )
        .with_context(|| format!("target \"{name}\""))?;
        let tls_crypt = tls_crypt::ensure(&settings.out_path(&config.tls_crypt))
            .with_context(|| format!("target \"{name}\": tls_crypt"))?;
        Ok(OpenvpnServer {
            authority,
            tls_crypt,
            config: config.clone(),
        })
    }
}

/// The problems of the target's files, for `check`, `plan` and `apply` to
/// refuse early: CA certificate and key (readable, private, matching).
pub fn file_problems(
    name: &str,
    config: &OpenvpnConfig,
    settings_path: impl Fn(&Path) -> std::path::PathBuf,
    source: &str,
) -> Vec<Problem> {
    let at = |key: &str| format!("targets.{name}.{key}");
    let mut problems = Vec::new();
    if let Err(err) = Authority::load(
        &settings_path(&config.ca_cert),
        &settings_path(&config.ca_key),
    ) {
        let key = match err {
            ca::CaError::KeyMode { .. }
            | ca::CaError::Key { .. }
            | ca::CaError::Mismatch { .. } => "ca_key",
            ca::CaError::Read { ref path, .. } if *path == settings_path(&config.ca_key) => {
                "ca_key"
            }
            _ => "ca_cert",
        };
        problems.push(Problem::new(source, err.to_string()).column(at(key)));
    }
    problems
}

/// Add what the target holds to `observed`: the certificates come with the
/// store; here the server files are compared with it.
pub fn read(
    name: &str,
    config: &OpenvpnConfig,
    settings: &Settings,
    store: Option<&Store>,
    observed: &mut Observed,
) -> Result<()> {
    let certificates = match store {
        Some(store) => store.certificates(name)?,
        None => Vec::new(),
    };
    let now = Utc::now();
    let crl_path = settings.out_path(&config.crl);
    let pki = pki_entries(name, config, settings)?;
    let file = crl::read(&crl_path);
    let written = file.as_ref().ok().and_then(Option::as_ref);
    let due = crl::due_serials(&crl::revocations(&certificates, &pki, written, now));
    let expiring = file
        .as_ref()
        .ok()
        .and_then(|f| f.as_ref())
        .and_then(|f| f.next_update)
        .is_some_and(|next| next <= now + chrono::Duration::days(i64::from(config.crl_warn_days)));
    if let Some(why) = crl::staleness(file, &due, now, config.crl_warn_days) {
        if expiring {
            observed.crl_due.insert(
                name.to_string(),
                format!("target \"{name}\": the CRL {} {why}", crl_path.display()),
            );
        }
        observed
            .stale_files
            .insert(crl_path.display().to_string(), format!("CRL {why}"));
    }
    if let Some(store) = store {
        let expected = client_configs(name, config, store, &pki)?;
        let dir = settings.out_path(&config.client_config_dir);
        let missing = ccd::missing(&dir, &expected);
        if missing > 0 {
            observed.stale_files.insert(
                dir.display().to_string(),
                format!("{missing} client-config-dir file(s) missing or different"),
            );
        }
    }
    Ok(())
}

/// Planning a person's peer: a certificate is re-issued (an update with a
/// `certificate` change) when the access end moved or it lapses soon.
pub fn plan_peer(
    action: &mut crate::plan::Action,
    current: Option<&crate::plan::IssuedCert>,
    access_end: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
    config: &OpenvpnConfig,
) {
    if action.op == crate::plan::Op::Create {
        return;
    }
    if let Some(change) = validity::certificate_change(current, access_end, today, config) {
        action.changes.push(change);
        action.op = crate::plan::Op::Update;
    }
}

/// The server as the bundles name it, with the CA loaded to sign.
pub fn vpn_server(
    name: &str,
    config: &OpenvpnConfig,
    settings: &Settings,
) -> Result<crate::targets::VpnServer> {
    let server = OpenvpnServer::prepare(name, config, settings)?;
    // `host:port` for the letter; IPv6 hosts in brackets.
    let endpoint = if config.remote.contains(':') {
        format!("[{}]:{}", config.remote, config.port)
    } else {
        format!("{}:{}", config.remote, config.port)
    };
    Ok(crate::targets::VpnServer {
        endpoint,
        public_key: String::new(),
        network: config.address.trunc().to_string(),
        openvpn: Some(std::sync::Arc::new(server)),
    })
}

/// Write the server files from the state store: the client-config-dir, and
/// the CRL when it is missing, out of date or due.
pub fn write_files(
    name: &str,
    server: &OpenvpnServer,
    settings: &Settings,
    store: &Store,
) -> Result<()> {
    let config = &server.config;
    let certificates = store.certificates(name)?;
    let now = Utc::now();
    let crl_path = settings.out_path(&config.crl);
    let pki = pki_entries(name, config, settings)?;
    let file = crl::read(&crl_path);
    let written = file.as_ref().ok().and_then(Option::as_ref);
    let revocations = crl::revocations(&certificates, &pki, written, now);
    let due = crl::due_serials(&revocations);
    if crl::staleness(file.clone(), &due, now, config.crl_warn_days).is_some() {
        let pem = crl::build(&server.authority, &revocations, now, config.crl_days)
            .map_err(|why| anyhow::anyhow!("target \"{name}\": {why}"))?;
        if let Some(dir) = crl_path.parent().filter(|d| !d.is_dir()) {
            private_dir(dir, 0o700)?;
        }
        // The server re-reads it after dropping privileges: world-readable.
        write_atomic(&crl_path, pem.as_bytes(), Some(0o644))?;
    }
    let expected = client_configs(name, config, store, &pki)?;
    ccd::sync(&settings.out_path(&config.client_config_dir), &expected)?;
    Ok(())
}

/// The easy-rsa PKI's index, when the CA belongs to one; a PKI that cannot
/// be read stops the run (a line skipped could be a revocation).
pub fn pki_entries(
    name: &str,
    config: &OpenvpnConfig,
    settings: &Settings,
) -> Result<Vec<easyrsa::IndexEntry>> {
    match pki_folder(config, settings) {
        Some(pki) => read_pki(name, &pki),
        None => Ok(Vec::new()),
    }
}

/// The easy-rsa PKI folder of the CA, if it belongs to one.
fn pki_folder(config: &OpenvpnConfig, settings: &Settings) -> Option<std::path::PathBuf> {
    let configured = config.pki.as_deref().map(|p| settings.path(p));
    easyrsa::locate(configured, &settings.path(&config.ca_cert))
}

fn read_pki(name: &str, pki: &Path) -> Result<Vec<easyrsa::IndexEntry>> {
    easyrsa::read_index(pki).with_context(|| format!("target \"{name}\": pki"))
}

/// The valid certificates of the easy-rsa PKI, as peers `adopt` can take
/// over: the serial stands for the key, the common name is what names the
/// person, the address is the one a client-config-dir file already pushes
/// (else the person gets one from their pool). Of several valid
/// certificates with one common name the newest is the peer, the older
/// ones go with it (recorded, so that offboarding revokes them too).
pub fn existing_peers(
    name: &str,
    config: &OpenvpnConfig,
    settings: &Settings,
) -> Result<(String, Vec<crate::targets::ExistingPeer>)> {
    let Some(pki) = pki_folder(config, settings) else {
        return own_peers(config, settings);
    };
    let entries = read_pki(name, &pki)?;
    let now = Utc::now();
    let mut by_name: BTreeMap<String, Vec<&easyrsa::IndexEntry>> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.is_valid(now)) {
        if let Some(cn) = &entry.common_name {
            by_name.entry(cn.clone()).or_default().push(entry);
        }
    }
    let ccd = settings.out_path(&config.client_config_dir);
    let peers = by_name
        .into_iter()
        .map(|(cn, mut certs)| {
            certs.sort_by_key(|c| c.not_after);
            let newest = certs.pop().expect("a name has a certificate");
            let address = easyrsa::pushed_address(&ccd, &cn);
            crate::targets::ExistingPeer {
                public_key: newest.serial.clone(),
                allowed_ips: Vec::new(),
                address,
                has_psk: false,
                comments: vec![cn],
                certificates: certs
                    .iter()
                    .chain(std::iter::once(&newest))
                    .map(|c| (c.serial.clone(), c.not_after))
                    .collect(),
            }
        })
        .collect();
    Ok((pki.join(easyrsa::INDEX).display().to_string(), peers))
}

/// The clients homebase itself issued certificates to, after a lost state
/// store: its client-config-dir files name the person (first line) and the
/// address, the bundle on this machine holds the certificate (serial and
/// validity; the key stays in the bundle). A client without its bundle here
/// is not offered: its certificate is unknown, and apply issues a new one.
fn own_peers(
    config: &OpenvpnConfig,
    settings: &Settings,
) -> Result<(String, Vec<crate::targets::ExistingPeer>)> {
    let ccd = settings.out_path(&config.client_config_dir);
    let mut peers = Vec::new();
    for (file, id) in ccd::own_files(&ccd)? {
        let Some(secrets) =
            crate::apply::secrets::PersonSecrets::read(&settings.out_dir.join(&file))?
        else {
            continue;
        };
        let (Some(serial), Some(not_after)) = (secrets.ovpn_serial(), secrets.ovpn_not_after())
        else {
            continue;
        };
        peers.push(crate::targets::ExistingPeer {
            public_key: serial.clone(),
            allowed_ips: Vec::new(),
            address: easyrsa::pushed_address(&ccd, &file),
            has_psk: false,
            comments: vec![id],
            certificates: vec![(serial, not_after)],
        });
    }
    Ok((ccd.display().to_string(), peers))
}

/// Common name → client-config-dir file, for every peer of the target.
/// OpenVPN finds the file by the certificate's common name: the username
/// for certificates homebase issued, the name easy-rsa signed for adopted
/// ones (looked up by serial in the PKI's index).
fn client_configs(
    name: &str,
    config: &OpenvpnConfig,
    store: &Store,
    pki: &[easyrsa::IndexEntry],
) -> Result<BTreeMap<String, String>> {
    let usernames: BTreeMap<String, String> = store
        .persons()?
        .into_iter()
        .map(|(id, known)| (id, known.username))
        .collect();
    let adopted: BTreeMap<&str, &str> = pki
        .iter()
        .filter_map(|e| Some((e.serial.as_str(), e.common_name.as_deref()?)))
        .collect();
    Ok(store
        .peers(name)?
        .into_iter()
        .filter_map(|(id, peer, serial)| {
            let common_name = match (&peer.adopted_key, adopted.get(serial.as_str())) {
                (Some(_), Some(cn)) if ccd::is_file_name(cn) => cn.to_string(),
                _ => usernames.get(&id)?.clone(),
            };
            Some((common_name, ccd::render(&id, peer.address, config.address)))
        })
        .collect())
}
