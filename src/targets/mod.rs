//! Targets: the systems homebase pushes to. Each kind reads what exists (for the
//! plan's diff) and carries out actions, saying whether a failure is transient.
//! A closed set of kinds (`TargetConfig`, `Target`), no plug-in registry.

pub mod busy;
pub mod common;
pub mod csv_stock;
mod error;
pub mod exec;
mod file_kinds;
pub mod ldap;
pub mod local_directory;
pub mod openvpn;
pub mod opnsense;
pub mod scim;
pub mod snipeit;
pub mod wg_portal;
pub mod wireguard;
pub mod wireguard_file;

use std::collections::BTreeMap;

use anyhow::{Context, Result};

pub use error::TargetError;

use crate::apply::secrets::PersonSecrets;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Area, Config, Limits};
use crate::error::Problem;
use crate::input::Person;
use crate::plan::{Action, Estimate, IssuedCert, Observed, Op, PersonPlan};
use crate::profile::Profile;
use crate::settings::Settings;
use crate::state::Store;
use crate::threads::joined;
pub use csv_stock::CsvInventory;
pub use local_directory::LocalDirectory;
pub use wireguard_file::WireguardFile;

/// The run's targets, connected once: the connections `observe` reads
/// through are the ones `apply` writes through (a server sees one health
/// check, one bind per pooled connection, per run).
pub struct Connected {
    // Declared before the runtime: the connections close while it still runs.
    targets: BTreeMap<String, Target>,
    runtime: tokio::runtime::Runtime,
}

impl Connected {
    /// Connect every configured target (and check its health) without
    /// changing anything.
    pub fn connect(settings: &Settings) -> Result<Connected> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let targets = runtime.block_on(async {
            let mut targets = BTreeMap::new();
            for (name, config) in &settings.config.targets {
                let started = std::time::Instant::now();
                targets.insert(name.clone(), Target::connect(name, config, settings).await?);
                settings.output.detail(format!(
                    "target \"{name}\" ({}): connected in {} ms",
                    config.kind(),
                    started.elapsed().as_millis()
                ));
            }
            anyhow::Ok(targets)
        })?;
        Ok(Connected { targets, runtime })
    }

    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// How many targets are connected.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Target> {
        self.targets.get(name)
    }

    /// The targets by name, for the executor, and the runtime they live on.
    pub fn into_parts(self) -> (BTreeMap<String, Target>, tokio::runtime::Runtime) {
        (self.targets, self.runtime)
    }

    /// What the state store and every target hold now. Read-only: creates nothing.
    ///
    /// The targets kept in local files are read each on a thread of its
    /// own: those that read only their own rows of the store start at once,
    /// the LDIF (compared with the accounts) once the store is read, while
    /// this thread looks for delivered bundles on disk. Then the servers,
    /// one after another.
    pub fn observe(&self, settings: &Settings) -> Result<Observed> {
        let store = Store::open_existing_read_only_at(&settings.state)?;
        let files: Vec<(&String, file_kinds::FileKind)> = self
            .targets
            .iter()
            .filter_map(|(name, target)| Some((name, target.files()?)))
            .collect();
        let before_store = Observed::default();
        let (mut observed, reads, bundles) = std::thread::scope(|scope| {
            let early: Vec<_> = files
                .iter()
                .map(|(name, kind)| {
                    let before_store = &before_store;
                    (!kind.compares_with_store()).then(|| {
                        scope.spawn(move || read_files(name, kind, settings, before_store))
                    })
                })
                .collect();
            let observed = match &store {
                Some(store) => store.observed()?,
                None => Observed::default(),
            };
            let (late, bundles) = std::thread::scope(|scope| {
                let observed = &observed;
                let late: Vec<_> = files
                    .iter()
                    .map(|(name, kind)| {
                        kind.compares_with_store().then(|| {
                            scope.spawn(move || read_files(name, kind, settings, observed))
                        })
                    })
                    .collect();
                let bundles = store
                    .as_ref()
                    .map(|store| delivered_bundles(store, observed, settings))
                    .transpose();
                (
                    late.into_iter().map(|l| l.map(joined)).collect::<Vec<_>>(),
                    bundles,
                )
            });
            let reads: Vec<_> = early
                .into_iter()
                .zip(late)
                .map(|(early, late)| early.map(joined).or(late))
                .collect();
            anyhow::Ok((observed, reads, bundles))
        })?;
        for ((name, _), read) in files.iter().zip(reads) {
            let Some(read) = read else { continue };
            let (part, took) = read.with_context(|| format!("cannot read target \"{name}\""))?;
            observed.absorb(part);
            read_detail(settings, &observed, name, took);
        }
        self.runtime.block_on(async {
            for (name, target) in &self.targets {
                if target.files().is_some() {
                    continue;
                }
                let started = std::time::Instant::now();
                target
                    .read(name, settings, store.as_ref(), &mut observed)
                    .await
                    .with_context(|| format!("cannot read target \"{name}\""))?;
                read_detail(settings, &observed, name, started.elapsed());
            }
            anyhow::Ok(())
        })?;
        if let Some(bundles) = bundles? {
            observed.absorb(bundles);
        }
        Ok(observed)
    }
}

/// A file kind read on its own thread, with its own store connection (a
/// connection is not shared between threads), and how long it took.
fn read_files(
    name: &str,
    kind: &file_kinds::FileKind,
    settings: &Settings,
    observed: &Observed,
) -> Result<(Observed, std::time::Duration)> {
    let started = std::time::Instant::now();
    let store = match kind.compares_with_store() {
        true => None,
        false => Store::open_existing_read_only_at(&settings.state)?,
    };
    let part = kind.read(name, settings, store.as_ref(), observed)?;
    Ok((part, started.elapsed()))
}

fn read_detail(settings: &Settings, observed: &Observed, name: &str, took: std::time::Duration) {
    settings.output.detail(format!(
        "target \"{name}\": read in {} ms: {}",
        took.as_millis(),
        observed_at(observed, name, settings.config.targets[name].area())
    ));
}

/// The bundles the store records as delivered, those of them on this
/// machine's disk (their secrets file is there: they can be rewritten), and
/// those to rewrite. Delivery is what the store records, not the disk.
fn delivered_bundles(store: &Store, observed: &Observed, settings: &Settings) -> Result<Observed> {
    let mut part = Observed::default();
    for (id, _) in store.bundle_fingerprints()? {
        if let Some(known) = observed.persons.get(&id) {
            let dir = settings.out_dir.join(&known.username);
            if dir.join(crate::apply::SECRETS_FILE).is_file() {
                part.bundles_here.insert(id.clone());
            }
        }
        part.bundles.insert(id);
    }
    part.stale_bundles = store.stale_bundles()?;
    Ok(part)
}

/// What clients of one VPN target need to know about the server, made ready
/// before any action of an apply (a bundle never names a key that does not exist).
#[derive(Debug, Clone)]
pub struct VpnServer {
    pub endpoint: String,
    /// WireGuard only.
    pub public_key: String,
    /// The tunnel network, routed through every split tunnel so the gateway answers.
    pub network: String,
    /// OpenVPN only: the CA that issues client certificates, the tls-crypt key.
    pub openvpn: Option<std::sync::Arc<openvpn::OpenvpnServer>>,
}

/// What a person's client config takes from the server and from their own
/// credentials, as the server's kind has it.
#[derive(Debug, Clone, Default)]
pub struct ClientSide {
    /// WireGuard: the server's public key.
    pub server_public_key: Option<String>,
    /// Adopted: the person's own key or certificate stays in use; the bundle
    /// has none to give.
    pub keeps_own_key: bool,
    /// OpenVPN: the CA, the person's certificate and key (PEM), the tls-crypt
    /// key, and the `remote`.
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub tls_crypt: Option<String>,
    pub remote_host: Option<String>,
    pub remote_port: Option<u16>,
}

impl VpnServer {
    /// What the person's client config holds of this server and of their
    /// `secrets`; `adopted` when the peer was taken over with its own key.
    pub fn client(
        &self,
        secrets: &crate::apply::secrets::PersonSecrets,
        adopted: bool,
    ) -> ClientSide {
        match self.openvpn.as_deref() {
            Some(ovpn) => ClientSide {
                server_public_key: None,
                keeps_own_key: adopted && secrets.ovpn_cert.is_none(),
                ca: Some(ovpn.authority.cert_pem.clone()),
                cert: secrets.ovpn_cert_pem(),
                key: secrets.ovpn_key_pem(),
                tls_crypt: Some(ovpn.tls_crypt.clone()),
                remote_host: Some(ovpn.config.remote.clone()),
                remote_port: Some(ovpn.config.port),
            },
            None => ClientSide {
                server_public_key: Some(self.public_key.clone()),
                keeps_own_key: adopted && secrets.wg_private_key.is_none(),
                ..ClientSide::default()
            },
        }
    }

    /// The public identity of the person's peer on this server: the
    /// WireGuard public key, or the serial of their certificate.
    pub fn identity(&self, secrets: &crate::apply::secrets::PersonSecrets) -> Option<String> {
        if self.issues_certificates() {
            secrets.ovpn_serial()
        } else {
            secrets.wg_public_key()
        }
    }

    /// Whether clients get a certificate of their own (OpenVPN).
    pub fn issues_certificates(&self) -> bool {
        self.openvpn.is_some()
    }

    /// A client certificate and key for a person, valid to the end of their
    /// access (capped by the CA); `None` for kinds without certificates.
    pub fn issue_certificate(
        &self,
        username: &str,
        organisation: &str,
        access_end: Option<chrono::NaiveDate>,
        today: chrono::NaiveDate,
    ) -> Option<Result<openvpn::ca::Issued>> {
        let server = self.openvpn.as_deref()?;
        Some(server.issue_client(username, organisation, access_end, today))
    }
}

/// The key type of a certificate authority `homebase init --ca` creates
/// for the kinds that issue client certificates (OpenVPN).
pub use openvpn::KeyType as CaKeyType;

/// A new certificate authority for `homebase init --ca`: (certificate PEM,
/// PKCS#8 key PEM), valid for `days`.
pub fn create_ca(
    common_name: &str,
    key_type: CaKeyType,
    days: u32,
) -> Result<(String, String), String> {
    openvpn::ca::create(common_name, key_type, days)
}

/// Whether `text` is a VPN peer's public key as `homebase adopt` reads
/// them from a mapping file (WireGuard: 32 bytes in base64).
pub fn is_peer_key(text: &str) -> bool {
    wireguard::dump::is_key(text)
}

/// A peer a VPN server already has, as `homebase adopt` matches it to persons.
#[derive(Debug, Clone)]
pub struct ExistingPeer {
    pub public_key: String,
    pub allowed_ips: Vec<String>,
    pub address: Option<std::net::IpAddr>,
    pub has_psk: bool,
    /// Comment lines above its `[Peer]` in the config file; for an
    /// easy-rsa certificate, its common name.
    pub comments: Vec<String>,
    /// For an easy-rsa certificate (`public_key` is then its serial): every
    /// valid certificate of its common name, (serial, not after), oldest
    /// first, this one last. Empty for WireGuard peers.
    pub certificates: Vec<(String, chrono::DateTime<chrono::Utc>)>,
}

/// An account a directory already holds, as `homebase adopt` matches it to
/// persons: its attributes as the plan compares them, the staff id it
/// carries, and the directory's own id for it (DN, SCIM id).
#[derive(Debug, Clone)]
pub struct ExistingAccount {
    pub staff_id: Option<String>,
    /// Active Directory's `userPrincipalName`: matched like an e-mail, and
    /// its name part like a username.
    pub principal: Option<String>,
    pub account: crate::plan::Account,
    pub remote_id: Option<String>,
}

/// What a directory's read found when every listed person was taken as on
/// our books: their accounts, then the entries with staff ids nobody listed.
fn existing_from_read(name: &str, mut observed: Observed) -> Vec<ExistingAccount> {
    let mut remote_ids = observed.remote_ids.remove(name).unwrap_or_default();
    let mut found: Vec<ExistingAccount> = observed
        .accounts
        .remove(name)
        .unwrap_or_default()
        .into_iter()
        .map(|(id, account)| ExistingAccount {
            principal: None,
            remote_id: remote_ids.remove(&id),
            staff_id: Some(id),
            account,
        })
        .collect();
    for (id, username) in observed.unmanaged_accounts.remove(name).unwrap_or_default() {
        found.push(ExistingAccount {
            principal: None,
            staff_id: Some(id),
            account: crate::plan::Account {
                username,
                given_name: String::new(),
                family_name: String::new(),
                display_name: String::new(),
                email: String::new(),
                department: None,
                groups: Vec::new(),
                ou: None,
                expires: None,
                enabled: true,
            },
            remote_id: None,
        });
    }
    found
}

/// The URL of a target that talks to a server, for reports.
fn server_url(settings: &Settings, name: &str) -> String {
    match settings.config.targets.get(name) {
        Some(TargetConfig::Ldap(c)) => c.url.clone(),
        Some(TargetConfig::Scim(c)) => c.url.clone(),
        _ => name.to_string(),
    }
}

/// A device a stock list or homebase's own export names as checked out.
#[derive(Debug, Clone)]
pub struct ExistingAssignment {
    pub asset_tag: String,
    /// A staff id or a username.
    pub holder: String,
    pub file: String,
    pub line: usize,
}

/// What an action needs besides itself: whose it is, and the secrets issued
/// for the person in this run (a directory sets the first password from them).
pub struct ActionContext<'a> {
    pub person_id: &'a str,
    pub username: &'a str,
    /// The person's row of the staff list; absent when withdrawing someone
    /// the list no longer names.
    pub person: Option<&'a Person>,
    pub action: &'a Action,
    pub secrets: &'a PersonSecrets,
    /// The person's bundle gets new secrets in this run: a directory sets
    /// the new password (also on an update or an otherwise unchanged account).
    pub new_secrets: bool,
    /// The person's profile, where it still exists (`delete_on_offboard`).
    pub profile: Option<&'a Profile>,
    /// The executor's promise of this action (see `Target::hold`).
    pub promise: Option<&'a busy::Promise>,
}

/// A target ready to read and to carry out actions. A closed set of kinds.
pub enum Target {
    /// Accounts in the state store, exported as LDIF after each apply.
    Local(LocalDirectory),
    /// A server file written from the state store after each apply.
    WireguardFile(WireguardFile),
    /// Stock from a CSV list; assignments in the state store.
    Csv(CsvInventory),
    /// Snipe-IT over its REST API.
    Snipeit(Box<snipeit::Snipeit>),
    /// A SCIM 2.0 service provider.
    Scim(scim::ScimTarget),
    /// An OpenLDAP or Active Directory server, through a connection pool.
    Ldap(Box<ldap::LdapTarget>),
    /// A command run per action.
    Exec(Box<exec::ExecTarget>),
    /// A running WireGuard interface, through `wg`.
    Wireguard(Box<wireguard::WireguardTarget>),
    /// Certificates issued in the secrets step; server files written from the store.
    Openvpn(Box<openvpn::OpenvpnConfig>),
    /// A WireGuard instance on an OPNsense firewall, through its REST API.
    Opnsense(Box<opnsense::OpnsenseTarget>),
    /// A WireGuard interface managed by wg-portal, through its REST API.
    WgPortal(Box<wg_portal::WgPortalTarget>),
}

impl Target {
    /// Connect (and, for remote kinds, check health) without changing anything.
    pub async fn connect(name: &str, config: &TargetConfig, settings: &Settings) -> Result<Target> {
        Ok(match config {
            TargetConfig::Local(local) => Target::Local(local.clone()),
            TargetConfig::WireguardFile(wg) => Target::WireguardFile(wg.clone()),
            TargetConfig::Csv(csv) => Target::Csv(csv.clone()),
            TargetConfig::Snipeit(config) => Target::Snipeit(Box::new(
                snipeit::Snipeit::connect(name, config, settings).await?,
            )),
            TargetConfig::Scim(scim) => {
                Target::Scim(scim::ScimTarget::connect(name, scim, settings).await?)
            }
            TargetConfig::Exec(cfg) => {
                Target::Exec(Box::new(exec::ExecTarget::connect(name, cfg, settings)))
            }
            TargetConfig::Ldap(cfg) => Target::Ldap(Box::new(
                ldap::LdapTarget::connect(name, cfg, settings).await?,
            )),
            TargetConfig::Wireguard(cfg) => Target::Wireguard(Box::new(
                wireguard::WireguardTarget::connect(name, cfg, settings).await?,
            )),
            TargetConfig::Openvpn(cfg) => Target::Openvpn(cfg.clone()),
            TargetConfig::Opnsense(cfg) => Target::Opnsense(Box::new(
                opnsense::OpnsenseTarget::connect(name, cfg, settings).await?,
            )),
            TargetConfig::WgPortal(cfg) => Target::WgPortal(Box::new(
                wg_portal::WgPortalTarget::connect(name, cfg, settings).await?,
            )),
        })
    }

    /// Add what this target holds to `observed`, for the plan's diff.
    pub async fn read(
        &self,
        name: &str,
        settings: &Settings,
        store: Option<&Store>,
        observed: &mut Observed,
    ) -> Result<()> {
        if let Some(files) = self.files() {
            let part = files.read(name, settings, store, observed)?;
            observed.absorb(part);
            return Ok(());
        }
        match self {
            // Read from their files above.
            Target::Local(_) | Target::WireguardFile(_) | Target::Csv(_) => {}
            Target::Snipeit(snipeit) => snipeit.read(observed).await?,
            Target::Scim(scim) => scim.read(name, observed).await?,
            Target::Ldap(target) => target.read(settings, observed).await?,
            // Its effect is recorded in the state store, which `observe`
            // reads; a `list_command` says what else the system holds.
            Target::Exec(target) => target.read(observed).await?,
            Target::Wireguard(target) => target.read(store, observed).await?,
            Target::Openvpn(cfg) => openvpn::read(name, cfg, settings, store, observed)?,
            Target::Opnsense(target) => target.read(observed),
            Target::WgPortal(target) => target.read(observed),
        }
        Ok(())
    }

    /// The VPN peers the server holds, with the comments of its config file,
    /// and where they were read from: what `homebase adopt` can take over.
    /// `None` for kinds that hold no peers.
    /// Whether what `existing_peers` gives are client certificates (named
    /// by common name) rather than peers.
    pub fn holds_certificates(&self) -> bool {
        matches!(self, Target::Openvpn(_))
    }

    pub async fn existing_peers(
        &self,
        name: &str,
        settings: &Settings,
    ) -> Result<Option<(String, Vec<ExistingPeer>)>> {
        match self {
            Target::WireguardFile(wg) => wireguard_file::existing_peers(wg, settings).map(Some),
            Target::Wireguard(target) => target.existing_peers().await.map(Some),
            Target::Openvpn(config) => openvpn::existing_peers(name, config, settings).map(Some),
            Target::Opnsense(target) => Ok(Some(target.existing_peers())),
            Target::WgPortal(target) => Ok(Some(target.existing_peers())),
            Target::Local(_)
            | Target::Csv(_)
            | Target::Snipeit(_)
            | Target::Scim(_)
            | Target::Ldap(_)
            | Target::Exec(_) => Ok(None),
        }
    }

    /// For directory kinds: the accounts `homebase adopt` can take over,
    /// and where they were read. `staff` is every listed person, by staff id;
    /// `wanted` the accounts the plan wants on this target, for what a kind
    /// cannot hold itself.
    pub async fn existing_accounts(
        &self,
        name: &str,
        settings: &Settings,
        staff: &BTreeMap<String, crate::plan::KnownPerson>,
        wanted: &BTreeMap<String, crate::plan::Account>,
    ) -> Result<Option<(String, Vec<ExistingAccount>)>> {
        match self {
            Target::Local(local) => {
                let path = settings.out_path(&local.ldif);
                let found = local_directory::read_ldif(&path, &local.base_dn)?.unwrap_or_default();
                Ok(Some((path.display().to_string(), found)))
            }
            Target::Ldap(target) => Ok(Some((
                server_url(settings, name),
                target.existing_accounts(settings, staff).await?,
            ))),
            Target::Scim(scim) => Ok(Some((
                server_url(settings, name),
                scim.existing_accounts(name, staff, wanted).await?,
            ))),
            Target::Exec(target) => target.existing_accounts().await,
            Target::WireguardFile(_)
            | Target::Wireguard(_)
            | Target::Csv(_)
            | Target::Snipeit(_)
            | Target::Openvpn(_)
            | Target::Opnsense(_)
            | Target::WgPortal(_) => Ok(None),
        }
    }

    /// For inventory kinds: the devices `homebase adopt` can record as
    /// checked out, and to whom.
    pub async fn existing_assignments(
        &self,
        name: &str,
        settings: &Settings,
    ) -> Result<Option<Vec<ExistingAssignment>>> {
        match self {
            Target::Snipeit(snipeit) => Ok(Some(snipeit.existing_assignments().await?)),
            Target::Csv(csv) => Ok(Some(
                csv_stock::existing_assignments(name, csv, settings)?
                    .into_iter()
                    .map(|(asset_tag, holder, file, line)| ExistingAssignment {
                        asset_tag,
                        holder,
                        file,
                        line,
                    })
                    .collect(),
            )),
            Target::Local(_)
            | Target::Ldap(_)
            | Target::Scim(_)
            | Target::WireguardFile(_)
            | Target::Wireguard(_)
            | Target::Exec(_)
            | Target::Openvpn(_)
            | Target::Opnsense(_)
            | Target::WgPortal(_) => Ok(None),
        }
    }

    /// For VPN kinds: the server as the bundles name it, made ready before
    /// any action (a new `wg0.conf` gets its key, the CA is loaded).
    pub fn vpn_server(
        &self,
        name: &str,
        settings: &Settings,
        store: &Store,
    ) -> Result<Option<VpnServer>> {
        Ok(match self {
            Target::WireguardFile(wg) => Some(wireguard_file::prepare(name, wg, settings, store)?),
            Target::Wireguard(live) => Some(live.vpn_server()?),
            Target::Openvpn(config) => Some(openvpn::vpn_server(name, config, settings)?),
            Target::Opnsense(target) => Some(target.vpn_server()),
            Target::WgPortal(target) => Some(target.vpn_server()),
            Target::Local(_)
            | Target::Csv(_)
            | Target::Snipeit(_)
            | Target::Scim(_)
            | Target::Ldap(_)
            | Target::Exec(_) => None,
        })
    }

    /// After the actions of an apply: the files that mirror the state store
    /// (LDIF, `wg0.conf`, CRL and client-config-dir), a live gateway's
    /// config file. `server` is what `vpn_server` made ready; `held`, the
    /// preshared keys this run sealed into encrypted bundles.
    pub async fn finish(
        &self,
        name: &str,
        settings: &Settings,
        store: &Store,
        server: Option<&VpnServer>,
        held: Option<&crate::apply::secrets::HeldPreshared>,
    ) -> Result<()> {
        match self {
            Target::Local(local) => local_directory::finish(name, local, settings, store),
            Target::WireguardFile(wg) => wireguard_file::finish(name, wg, settings, store, held),
            Target::Openvpn(_) => match server.and_then(|s| s.openvpn.as_deref()) {
                Some(server) => openvpn::write_files(name, server, settings, store),
                None => Ok(()),
            },
            // Live gateways keep what the run did across a restart.
            Target::Wireguard(live) => live.persist(store).await,
            Target::Csv(_) => csv_stock::finish(name, settings, store),
            // Each action's change is live before it succeeds (see `opnsense`).
            Target::Opnsense(_) => Ok(()),
            // wg-portal applies each change to the interface at once.
            Target::WgPortal(_) => Ok(()),
            // A group created twice by a held request loses its empty twin.
            Target::Scim(scim) => Ok(scim.settle_groups().await?),
            Target::Snipeit(_) | Target::Ldap(_) | Target::Exec(_) => Ok(()),
        }
    }

    /// The gate of this target's requests in flight, for kinds that send
    /// requests to a server.
    pub fn limiter(&self) -> Option<std::sync::Arc<crate::adaptive::Limiter>> {
        match self {
            Target::Scim(scim) => Some(scim.limiter()),
            Target::Ldap(ldap) => Some(ldap.limiter()),
            Target::Exec(_) => None,
            Target::Snipeit(snipeit) => Some(snipeit.limiter()),
            Target::Opnsense(target) => Some(target.limiter()),
            Target::WgPortal(target) => Some(target.limiter()),
            Target::Local(_)
            | Target::WireguardFile(_)
            | Target::Csv(_)
            | Target::Wireguard(_)
            | Target::Openvpn(_) => None,
        }
    }

    /// For kinds that batch writes across persons: the count of their
    /// actions at work, which a batch waits for (see `busy.rs`).
    fn busy_count(&self) -> Option<&busy::BusyCount> {
        match self {
            Target::Ldap(ldap) => Some(ldap.busy_count()),
            Target::Opnsense(target) => Some(target.busy_count()),
            Target::WgPortal(_) => None,
            Target::Exec(_) => None,
            Target::Local(_)
            | Target::WireguardFile(_)
            | Target::Csv(_)
            | Target::Snipeit(_)
            | Target::Scim(_)
            | Target::Wireguard(_)
            | Target::Openvpn(_) => None,
        }
    }

    /// A promise that a person's action on this target is coming, for kinds
    /// that batch writes across persons. Kept when the action starts;
    /// dropped when the person will not get to it.
    pub fn hold(&self) -> Option<busy::Promise> {
        self.busy_count()
            .map(|count| busy::Promise::new(count.busy()))
    }

    /// Whether the actions in flight need a bound of their own. Kinds that
    /// batch across persons gate every request (`limiter`) and do not: an
    /// action waiting for its batch sends nothing, and holding a place would
    /// keep the persons still to come out of the batch.
    pub fn bounds_actions(&self) -> bool {
        self.busy_count().is_none()
    }

    /// Carry out one action. `Ok(remote id)` where the system assigns one.
    /// The embedded kinds have nothing to call: the state store write that
    /// follows success is their effect.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        match self {
            Target::Local(_) | Target::WireguardFile(_) | Target::Csv(_) | Target::Openvpn(_) => {
                Ok(None)
            }
            Target::Snipeit(snipeit) => snipeit.apply(ctx).await,
            Target::Scim(scim) => scim.apply(ctx).await,
            Target::Ldap(target) => target.apply(ctx).await,
            Target::Exec(target) => target.apply(ctx).await,
            Target::Wireguard(target) => target.apply(ctx).await,
            Target::Opnsense(target) => target.apply(ctx).await,
            Target::WgPortal(target) => target.apply(ctx).await,
        }
    }
}

/// How long each rate-limited target takes for its part of the plan:
/// Snipe-IT by its requests and throttle, other targets by their actions
/// and `rate_limit`.
pub fn estimates(config: &Config, persons: &[PersonPlan]) -> Vec<Estimate> {
    let mut estimates = Vec::new();
    for (name, target) in &config.targets {
        match target {
            TargetConfig::Snipeit(snipeit) => {
                estimates.extend(snipeit::estimate(name, snipeit, persons));
            }
            TargetConfig::Opnsense(opnsense) => {
                estimates.extend(opnsense::estimate(name, opnsense, persons));
            }
            other @ (TargetConfig::Local(_)
            | TargetConfig::WgPortal(_)
            | TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Exec(_)
            | TargetConfig::Openvpn(_)) => {
                let Some(per_second) = other.limits().rate_limit.filter(|r| *r > 0.0) else {
                    continue;
                };
                let actions = persons
                    .iter()
                    .flat_map(|p| &p.actions)
                    .filter(|a| a.target.target() == Some(name.as_str()) && a.op != Op::Unchanged)
                    .count() as u64;
                if actions > 0 {
                    estimates.push(Estimate {
                        target: name.clone(),
                        kind: other.kind().to_string(),
                        requests: actions,
                        per_minute: per_second * 60.0,
                        minutes: actions as f64 / (per_second * 60.0),
                    });
                }
            }
        }
    }
    estimates
}

// ---- Registration: one line per kind in each list below. ----

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
    Wireguard(wireguard::WireguardLive),
    /// Device stock from a CSV file; assignments kept in the state store.
    Csv(CsvInventory),
    /// Snipe-IT: users, hardware checkout and checkin through its REST API.
    Snipeit(snipeit::SnipeitConfig),
    /// A SCIM 2.0 service provider (Entra ID, Okta, Keycloak, authentik …).
    Scim(scim::ScimConfig),
    /// Accounts in OpenLDAP or Active Directory, over LDAPS or StartTLS.
    Ldap(Box<ldap::LdapConfig>),
    /// A command per action, the action as JSON on stdin, for systems
    /// homebase does not know.
    Exec(exec::ExecConfig),
    /// OpenVPN: client certificates from the organisation's CA, inline `.ovpn`
    /// configs, a CRL on revocation.
    Openvpn(Box<openvpn::OpenvpnConfig>),
    /// A WireGuard instance on an OPNsense firewall (24.1 and later),
    /// through its REST API.
    Opnsense(Box<opnsense::OpnsenseConfig>),
    /// A WireGuard interface managed by wg-portal (v2), through its REST API.
    WgPortal(Box<wg_portal::WgPortalConfig>),
}

impl TargetConfig {
    pub fn area(&self) -> Area {
        match self {
            TargetConfig::Local(_) => Area::Directory,
            TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Openvpn(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_) => Area::Vpn,
            TargetConfig::Csv(_) | TargetConfig::Snipeit(_) => Area::Inventory,
            TargetConfig::Scim(_) => Area::Directory,
            TargetConfig::Ldap(_) => Area::Directory,
            TargetConfig::Exec(_) => Area::Directory,
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
            TargetConfig::Exec(_) => "exec",
            TargetConfig::Openvpn(_) => "openvpn",
            TargetConfig::Opnsense(_) => "opnsense",
            TargetConfig::WgPortal(_) => "wg-portal",
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
            TargetConfig::Exec(t) => &t.limits,
            TargetConfig::Openvpn(t) => &t.limits,
            TargetConfig::Opnsense(t) => &t.limits,
            TargetConfig::WgPortal(t) => &t.limits,
        }
    }

    /// What is wrong with the target's settings, found without the network
    /// (`check` reports it; `plan` and `apply` refuse to start). `resolve`
    /// makes a configured path absolute.
    pub fn problems(
        &self,
        name: &str,
        source: &str,
        resolve: &dyn Fn(&std::path::Path) -> std::path::PathBuf,
    ) -> Vec<Problem> {
        match self {
            TargetConfig::Snipeit(t) => t.problems(name, source),
            TargetConfig::Scim(t) => t.problems(name, source),
            TargetConfig::Ldap(t) => t.problems(name, source),
            TargetConfig::Exec(t) => t.problems(name, source),
            TargetConfig::Wireguard(t) => t.problems(name, source),
            TargetConfig::Opnsense(t) => t.problems(name, source),
            TargetConfig::WgPortal(t) => t.problems(name, source),
            TargetConfig::Openvpn(t) => {
                let mut problems = t.problems(name, source);
                // The CA files are read only when the settings themselves are sound.
                if problems.is_empty() {
                    problems = crate::targets::openvpn::file_problems(name, t, resolve, source);
                }
                problems
            }
            TargetConfig::Local(_) | TargetConfig::WireguardFile(_) | TargetConfig::Csv(_) => {
                Vec::new()
            }
        }
    }
}

/// What `observed` holds of target `name` (of `area`), in counts (for `-v`).
fn observed_at(observed: &Observed, name: &str, area: crate::config::Area) -> String {
    use crate::config::Area;
    match area {
        Area::Directory => format!(
            "{} managed account(s), {} unmanaged with a staff id, {} other name(s) taken",
            observed.accounts.get(name).map_or(0, BTreeMap::len),
            observed
                .unmanaged_accounts
                .get(name)
                .map_or(0, BTreeMap::len),
            observed.foreign_usernames.get(name).map_or(0, |f| f.len())
        ),
        Area::Vpn => format!(
            "{} managed peer(s), {} other address(es) in use",
            observed.peers.get(name).map_or(0, BTreeMap::len),
            observed.foreign_addresses.get(name).map_or(0, |f| f.len())
        ),
        Area::Inventory => {
            let items = observed.stock.get(name).map_or(&[][..], Vec::as_slice);
            let free = items
                .iter()
                .filter(|i| i.available && i.assigned_to.is_none())
                .count();
            format!("{} stock item(s), {free} free", items.len())
        }
        Area::Bundle => String::new(),
    }
}

impl TargetConfig {
    /// What is wrong with the local files the target reads at `plan` (the
    /// stock list), for `check`; other commands need not have them.
    pub fn file_problems(
        &self,
        name: &str,
        source: &str,
        resolve: &dyn Fn(&std::path::Path) -> std::path::PathBuf,
    ) -> Vec<Problem> {
        match self {
            TargetConfig::Csv(t) => csv_stock::problems(name, source, &resolve(&t.stock)),
            // Their files are checked with their settings, or written by homebase.
            TargetConfig::Local(_)
            | TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Exec(_)
            | TargetConfig::Openvpn(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_) => Vec::new(),
        }
    }

    /// The VPN server's own tunnel address with the network's prefix.
    pub fn vpn_address(&self) -> Option<ipnet::IpNet> {
        match self {
            TargetConfig::WireguardFile(wg) => Some(wg.address),
            TargetConfig::Wireguard(wg) => Some(wg.address),
            TargetConfig::Openvpn(ovpn) => Some(ovpn.address),
            TargetConfig::Opnsense(gw) => Some(gw.address),
            TargetConfig::WgPortal(gw) => Some(gw.address),
            TargetConfig::Local(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Exec(_) => None,
        }
    }

    /// The hard ceiling of actions (and requests) in flight:
    /// `max_concurrency` or the kind's own default, capped by `-j`.
    pub fn ceiling(&self, jobs: Option<usize>) -> usize {
        let limits = self.limits();
        match self {
            // The live WireGuard target batches concurrent peer changes into
            // one `wg` call, so it takes many at once.
            TargetConfig::Wireguard(_) if limits.max_concurrency.is_none() => {
                jobs.map_or(512, |j| j.min(512)).max(1)
            }
            TargetConfig::Local(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_)
            | TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Exec(_)
            | TargetConfig::Openvpn(_) => limits.ceiling(jobs),
        }
    }

    /// The kind's own step in planning a person's VPN peer on this target:
    /// OpenVPN re-issues a certificate when the access end moves or it lapses
    /// soon. `current` is what the state store has issued.
    pub fn plan_peer(
        &self,
        action: &mut Action,
        current: Option<&IssuedCert>,
        access_end: Option<chrono::NaiveDate>,
        today: chrono::NaiveDate,
    ) {
        match self {
            TargetConfig::Openvpn(ovpn) => {
                openvpn::plan_peer(action, current, access_end, today, ovpn)
            }
            TargetConfig::Local(_)
            | TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Exec(_) => {}
        }
    }

    /// Whether `homebase adopt` can take over this target's VPN peers.
    pub fn adopts_peers(&self) -> bool {
        match self {
            TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Openvpn(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_) => true,
            TargetConfig::Local(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Exec(_) => false,
        }
    }

    /// Whether `homebase adopt` can take over this target's accounts.
    pub fn adopts_accounts(&self) -> bool {
        match self {
            TargetConfig::Local(_) | TargetConfig::Scim(_) | TargetConfig::Ldap(_) => true,
            TargetConfig::Exec(exec) => exec.list_command.is_some(),
            TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Openvpn(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_) => false,
        }
    }

    /// Whether `homebase adopt` can record this target's checked-out devices.
    pub fn adopts_devices(&self) -> bool {
        match self {
            TargetConfig::Csv(_) | TargetConfig::Snipeit(_) => true,
            TargetConfig::Local(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Exec(_)
            | TargetConfig::Openvpn(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_) => false,
        }
    }

    /// The VPN protocol of a VPN target, as profiles name it (`vpn.kind`).
    pub fn vpn_protocol(&self) -> Option<&'static str> {
        match self {
            TargetConfig::WireguardFile(_)
            | TargetConfig::Wireguard(_)
            | TargetConfig::Opnsense(_)
            | TargetConfig::WgPortal(_) => Some("wireguard"),
            TargetConfig::Openvpn(_) => Some("openvpn"),
            TargetConfig::Local(_)
            | TargetConfig::Csv(_)
            | TargetConfig::Snipeit(_)
            | TargetConfig::Scim(_)
            | TargetConfig::Ldap(_)
            | TargetConfig::Exec(_) => None,
        }
    }
}
