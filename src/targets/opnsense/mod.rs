//! The `opnsense` VPN target: peers of a WireGuard instance on an OPNsense
//! firewall, through its REST API (what homebase relies on is in
//! docs/opnsense.md).
//!
//! - `connect` reads the key and secret, lists the instances (the health
//!   check: a refused key stops `plan` before anything happens) and the
//!   peers, and checks the instance against `homebase.yaml`: the bundles
//!   name the instance's own public key, endpoint and network.
//! - `read`: addresses of peers homebase does not manage are never handed
//!   out; our peers the firewall lacks or holds differently are drift.
//! - `apply` saves one peer (`set_client` by a uuid homebase derives from
//!   the staff id: a retry finds its own peer) or deletes it; then the
//!   action waits until every action of the target in flight has saved,
//!   and one `service/reconfigure` makes them all live. An action succeeds
//!   only when its change is live: a failed reconfigure fails every action
//!   it carried, by person, and the re-run saves and reconfigures again.

mod client;
mod config;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use anyhow::Result;
use ipnet::IpNet;
use reqwest::Url;
use sha2::{Digest, Sha256};

use self::client::{ApiError, Client, ClientBody, ClientRow, ServerRow};
pub use self::config::OpnsenseConfig;
use crate::error::Failure;
use crate::plan::{Estimate, Observed, Op, PersonPlan, Resource};
use crate::settings::Settings;
use crate::state::Store;
use crate::targets::busy::BusyCount;
use crate::targets::common::batch::{Batches, Linger};
use crate::targets::common::wg_quick::reserve;
use crate::targets::{ActionContext, ExistingPeer, TargetError, VpnServer};

pub struct OpnsenseTarget {
    name: String,
    config: OpnsenseConfig,
    client: Client,
    instance: ServerRow,
    /// The instance's network, as the bundles route it.
    network: IpNet,
    /// The peers when homebase connected.
    snapshot: Vec<ClientRow>,
    /// Staff id → public key, as the state store had them when the run began.
    recorded: BTreeMap<String, String>,
    busy: BusyCount,
    reconfigures: Batches<String, ()>,
}

impl OpnsenseTarget {
    pub fn limiter(&self) -> std::sync::Arc<crate::adaptive::Limiter> {
        self.client.limiter().clone()
    }

    pub fn busy_count(&self) -> &BusyCount {
        &self.busy
    }

    /// Read the credentials, find the instance, read its peers; changes nothing.
    pub async fn connect(
        name: &str,
        config: &OpnsenseConfig,
        settings: &Settings,
    ) -> Result<OpnsenseTarget> {
        let read = |source: crate::targets::common::SecretSource<'_>| {
            source
                .read(name, |p| settings.path(p), |var| std::env::var(var).ok())
                .map_err(Failure::usage)
        };
        let key = read(config.key_source())?;
        let secret = read(config.secret_source())?;
        let base = Url::parse(&config.url).map_err(|e| {
            Failure::usage(format!("target \"{name}\": url \"{}\": {e}", config.url))
        })?;
        let ca_file = config.ca_file.as_deref().map(|p| settings.path(p));
        let http = crate::targets::common::http::client(ca_file.as_deref(), &config.timeouts)
            .map_err(|e| Failure::usage(format!("target \"{name}\": {e}")))?;
        let ceiling = match config.limits.max_concurrency {
            Some(_) => config.limits.ceiling(settings.jobs),
            None => config.limits.ceiling(settings.jobs).min(DEFAULT_CEILING),
        };
        let limiter = crate::adaptive::Limiter::new(ceiling, config.limits.adaptive());
        let client = Client::new(http, &base, key, secret, limiter)
            .with_trace(crate::targets::common::Trace::new(name, &settings.output));
        let servers = client
            .servers()
            .await
            .map_err(|e| refused(name, &config.url, e))?;
        let Some(instance) = servers.iter().find(|s| s.name == config.instance).cloned() else {
            let known: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
            return Err(Failure::usage_with_hint(
                format!(
                    "target \"{name}\": OPNsense has no WireGuard instance \"{}\"",
                    config.instance
                ),
                format!("its instances are: {}", known.join(", ")),
            )
            .into());
        };
        let network = check_instance(name, config, &instance)?;
        let snapshot = client
            .clients()
            .await
            .map_err(|e| refused(name, &config.url, e))?;
        let mut recorded = BTreeMap::new();
        if let Some(store) = Store::open_existing_read_only_at(&settings.state)? {
            recorded = store
                .peers(name)?
                .into_iter()
                .map(|(id, _, key)| (id, key))
                .collect();
        }
        let busy = BusyCount::default();
        Ok(OpnsenseTarget {
            name: name.to_string(),
            config: config.clone(),
            client,
            instance,
            network,
            snapshot,
            recorded,
            reconfigures: Batches::new(
                usize::MAX,
                Linger::UntilSettled {
                    busy: busy.clone(),
                    settle: RECONFIGURE_SETTLE,
                },
            ),
            busy,
        })
    }

    /// The bundles' view of the gateway: the instance's key, endpoint and network.
    pub fn vpn_server(&self) -> VpnServer {
        let endpoint = match self.instance.endpoint.trim() {
            "" => self.config.endpoint.as_str(),
            own => own,
        };
        VpnServer {
            endpoint: crate::targets::wireguard_file::client_endpoint(endpoint, self.listen_port()),
            public_key: self.instance.pubkey.clone(),
            network: self.network.to_string(),
            openvpn: None,
        }
    }

    fn listen_port(&self) -> u16 {
        self.instance
            .port
            .trim()
            .parse()
            .unwrap_or(self.config.listen_port)
    }

    /// The peers of the instance, for `homebase adopt`: the peer's name is
    /// what it matches to persons.
    pub fn existing_peers(&self) -> (String, Vec<ExistingPeer>) {
        let peers = self
            .snapshot
            .iter()
            .filter(|p| p.in_instance(&self.instance.uuid))
            .map(|p| {
                let nets = p.networks();
                ExistingPeer {
                    public_key: p.pubkey.clone(),
                    allowed_ips: nets.iter().map(ToString::to_string).collect(),
                    address: nets.iter().find(|n| is_host(n)).map(IpNet::addr),
                    has_psk: !p.psk.is_empty(),
                    comments: vec![p.name.clone()],
                    certificates: Vec::new(),
                }
            })
            .collect();
        (
            format!(
                "OPNsense instance {} ({})",
                self.config.instance, self.config.url
            ),
            peers,
        )
    }

    /// The uuid of the person's peer: the one holding their recorded key
    /// (a peer `adopt` took over keeps its own), else homebase's own.
    fn uuid_of(&self, person_id: &str) -> String {
        self.recorded
            .get(person_id)
            .and_then(|key| {
                self.snapshot
                    .iter()
                    .find(|p| &p.pubkey == key && p.in_instance(&self.instance.uuid))
            })
            .map_or_else(|| peer_uuid(&self.name, person_id), |p| p.uuid.clone())
    }

    /// Foreign addresses, and our peers the firewall lacks or holds differently.
    pub fn read(&self, observed: &mut Observed) {
        let ours: BTreeSet<String> = self
            .recorded
            .keys()
            .chain(observed.persons.keys())
            .map(|id| self.uuid_of(id))
            .collect();
        let keys: BTreeSet<&str> = self.recorded.values().map(String::as_str).collect();
        let mut foreign = BTreeSet::new();
        for peer in self
            .snapshot
            .iter()
            .filter(|p| !ours.contains(&p.uuid) && !keys.contains(p.pubkey.as_str()))
        {
            reserve(&mut foreign, &peer.networks());
        }
        observed
            .foreign_addresses
            .entry(self.name.clone())
            .or_default()
            .extend(foreign);

        let recorded = observed.peers.get(&self.name).cloned().unwrap_or_default();
        let drift = observed.peer_drift.entry(self.name.clone()).or_default();
        for (id, peer) in &recorded {
            let uuid = self.uuid_of(id);
            let key = self.recorded.get(id);
            let expected = host_net(peer.address);
            let why = match self.snapshot.iter().find(|p| p.uuid == uuid) {
                None => Some("missing on the firewall"),
                Some(live) if key.is_some_and(|k| *k != live.pubkey) => {
                    Some("another public key on the firewall")
                }
                Some(live) if live.networks() != [expected] => {
                    Some("another address on the firewall")
                }
                Some(live) if !live.in_instance(&self.instance.uuid) => {
                    Some("not a peer of the instance on the firewall")
                }
                Some(live) if live.enabled != "1" => Some("disabled on the firewall"),
                Some(live)
                    if peer.adopted_key.is_none() && live.psk.is_empty() == peer.preshared_key =>
                {
                    Some("another preshared key setting on the firewall")
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                drift.insert(id.clone(), why.to_string());
            }
        }
    }

    /// Save one peer change, then wait for the reconfigure that makes it live.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let Resource::VpnPeer(peer) = &ctx.action.resource else {
            return Ok(None);
        };
        // At work for the length of this call (not while the executor waits
        // to retry it): the executor's promise is kept.
        let busy = self.busy.busy();
        if let Some(promise) = ctx.promise {
            promise.keep();
        }
        let uuid = self.uuid_of(ctx.person_id);
        let named = |e: ApiError| -> TargetError {
            match e {
                ApiError::Validation(message) => TargetError::permanent(format!(
                    "{}: OPNsense refused the peer of {} ({}): {message}",
                    self.name, ctx.username, ctx.person_id
                )),
                other => {
                    let err = TargetError::from(other);
                    match err {
                        TargetError::Transient {
                            message,
                            retry_after,
                        } => TargetError::Transient {
                            message: format!("{}: {message}", self.name),
                            retry_after,
                        },
                        TargetError::Permanent { message } => {
                            TargetError::permanent(format!("{}: {message}", self.name))
                        }
                    }
                }
            }
        };
        match ctx.action.op {
            Op::Unchanged => return Ok(Some(uuid)),
            Op::Remove => {
                if !self.recorded.contains_key(ctx.person_id)
                    && !self.snapshot.iter().any(|p| p.uuid == uuid)
                {
                    return Ok(None);
                }
                self.client.del_client(&uuid).await.map_err(named)?;
            }
            Op::Create | Op::Update => {
                let own = ctx.secrets.wg_public_key();
                let public_key = own
                    .clone()
                    .or_else(|| peer.adopted_key.clone())
                    .or_else(|| self.recorded.get(ctx.person_id).cloned())
                    .ok_or_else(|| {
                        TargetError::permanent(format!(
                            "no WireGuard key for {} (bundle without a private key)",
                            ctx.person_id
                        ))
                    })?;
                // Without a key of this run the peer keeps its preshared key.
                let psk = match (own.is_some(), peer.preshared_key) {
                    (false, _) => None,
                    (true, false) => Some(""),
                    (true, true) => match ctx.secrets.wg_preshared_key.as_deref() {
                        Some(psk) => Some(psk),
                        None => {
                            return Err(TargetError::permanent(format!(
                            "the profile asks for a preshared key, and the bundle of {} has none",
                            ctx.person_id
                        )))
                        }
                    },
                };
                let address = host_net(peer.address).to_string();
                let name = peer_name(ctx.username, ctx.person_id);
                let body = ClientBody {
                    enabled: "1",
                    name: &name,
                    pubkey: &public_key,
                    psk,
                    tunneladdress: &address,
                    servers: &self.instance.uuid,
                    keepalive: String::new(),
                };
                self.client.set_client(&uuid, &body).await.map_err(named)?;
            }
        }
        let tickets = self
            .reconfigures
            .enqueue([("reconfigure".to_string(), ctx.person_id.to_string())]);
        // Queued before this action stops counting as at work: the
        // reconfigure sent the moment it does carries it.
        let _parked = busy.park();
        let write = |_: String, people: Vec<String>| async move {
            let result = self.client.reconfigure().await.map_err(|e| {
                TargetError::permanent(format!(
                    "{}: saved on the firewall but not live: service/reconfigure failed: {e}; \
                     re-run to apply it",
                    self.name
                ))
            });
            vec![result; people.len()]
        };
        for result in self.reconfigures.wait(tickets, write).await {
            result.map_err(|e| match e {
                TargetError::Transient {
                    message,
                    retry_after,
                } => TargetError::Transient {
                    message: format!("{}: {message}", self.name),
                    retry_after,
                },
                other => other,
            })?;
        }
        Ok((ctx.action.op != Op::Remove).then_some(uuid))
    }
}

/// How long a reconfigure waits for more saved changes once every action
/// in flight has saved: persons start as others finish, and each
/// reconfigure reloads the instance.
const RECONFIGURE_SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// Requests in flight at most, unless `max_concurrency` says otherwise:
/// OPNsense writes its configuration under one lock, so more wait there.
const DEFAULT_CEILING: usize = 8;

/// The uuid homebase gives a person's peer on target `name`: stable, in
/// the version-4 form OPNsense accepts for a new item.
pub fn peer_uuid(name: &str, person_id: &str) -> String {
    let digest = Sha256::digest(format!("homebase peer\0{name}\0{person_id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A peer's name: username and staff id, in the characters OPNsense allows
/// (`[0-9a-zA-Z._-]`, at most 64); the staff id is what `adopt` and people read.
pub fn peer_name(username: &str, person_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let id = clean(person_id);
    let room = 64usize.saturating_sub(id.len() + 1);
    let user: String = clean(username).chars().take(room).collect();
    if user.is_empty() {
        id.chars().take(64).collect()
    } else {
        format!("{user}-{id}")
    }
}

fn host_net(address: IpAddr) -> IpNet {
    IpNet::from(address)
}

fn is_host(net: &IpNet) -> bool {
    net.prefix_len() == net.max_prefix_len()
}

/// The instance as the bundles need it, against `homebase.yaml`: its key,
/// its tunnel address, its endpoint. A difference names both values.
fn check_instance(name: &str, config: &OpnsenseConfig, instance: &ServerRow) -> Result<IpNet> {
    let mut differences = Vec::new();
    let own: Vec<IpNet> = client::split(&instance.tunneladdress)
        .filter_map(|n| n.parse().ok())
        .collect();
    if !own.contains(&config.address) {
        differences.push(format!(
            "targets.{name}.address is {}, the instance \"{}\" has tunnel address {}",
            config.address,
            instance.name,
            if own.is_empty() {
                "none".to_string()
            } else {
                instance.tunneladdress.clone()
            }
        ));
    }
    let port = instance.port.trim().parse().unwrap_or(config.listen_port);
    let ours = crate::targets::wireguard_file::client_endpoint(&config.endpoint, port);
    if !instance.endpoint.trim().is_empty() {
        let theirs = crate::targets::wireguard_file::client_endpoint(&instance.endpoint, port);
        if !theirs.eq_ignore_ascii_case(&ours) {
            differences.push(format!(
                "targets.{name}.endpoint is {ours}, the instance \"{}\" has endpoint {theirs}",
                instance.name
            ));
        }
    }
    if !crate::targets::is_peer_key(instance.pubkey.trim()) {
        differences.push(format!(
            "the instance \"{}\" has no public key yet (save it once in OPNsense)",
            instance.name
        ));
    }
    if !differences.is_empty() {
        return Err(Failure::usage_with_hint(
            format!(
                "target \"{name}\": the bundles would not fit the firewall: {}",
                differences.join("; ")
            ),
            "make homebase.yaml say what the OPNsense instance has (VPN → WireGuard → Instances)",
        )
        .into());
    }
    Ok(config.address.trunc())
}

/// What a refused or failed health check tells the admin.
fn refused(name: &str, url: &str, err: ApiError) -> anyhow::Error {
    match err {
        ApiError::Unauthorized(_) => Failure::usage_with_hint(
            format!("target \"{name}\": {err}"),
            "check the key and secret in key_env/key_file and secret_env/secret_file \
             (System → Access → Users → API keys)",
        )
        .into(),
        ApiError::Forbidden { .. } => Failure::usage_with_hint(
            format!("target \"{name}\": {err}"),
            "give the API key's user the privilege \"VPN: WireGuard\"",
        )
        .into(),
        other => anyhow::Error::new(other).context(format!(
            "target \"{name}\": cannot read the WireGuard settings of {url}"
        )),
    }
}

/// Requests the plan sends to an OPNsense target, and how long that takes
/// at the configured pace of configuration writes.
pub fn estimate(name: &str, config: &OpnsenseConfig, persons: &[PersonPlan]) -> Option<Estimate> {
    let writes = persons
        .iter()
        .flat_map(|p| &p.actions)
        .filter(|a| a.target.target() == Some(name) && a.op != Op::Unchanged)
        .count() as u64;
    (writes > 0).then(|| {
        // The saves, and one reconfigure per wave of 512 persons.
        let requests = writes + writes.div_ceil(512);
        let per_minute = f64::from(config.writes_per_minute.max(1));
        Estimate {
            target: name.to_string(),
            kind: "opnsense".to_string(),
            requests,
            per_minute,
            minutes: requests as f64 / per_minute,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_stable_version_4_and_per_target() {
        let a = peer_uuid("gw", "P100001");
        assert_eq!(a, peer_uuid("gw", "P100001"));
        assert_ne!(a, peer_uuid("gw", "P100002"));
        assert_ne!(a, peer_uuid("gw2", "P100001"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!("89ab".contains(&parts[3][..1]));
    }

    #[test]
    fn names_keep_to_what_opnsense_allows() {
        assert_eq!(peer_name("tmeyer", "P100001"), "tmeyer-P100001");
        assert_eq!(peer_name("j.o'neil", "P 7"), "j.o_neil-P_7");
        let long = peer_name(&"x".repeat(80), "P100001");
        assert_eq!(long.len(), 64);
        assert!(long.ends_with("-P100001"));
    }
}
