//! The `wg-portal` VPN target: peers of an interface that wg-portal (v2)
//! manages, through its REST API v1 (what homebase relies on is in
//! docs/wg-portal.md).
//!
//! - `connect` reads the token, reads the interface (the health check: a
//!   refused token stops `plan` before anything happens) and its peers, and
//!   checks the interface against `homebase.yaml`: the bundles name the
//!   interface's own public key, endpoint and network.
//! - `read`: addresses of peers homebase does not manage are never handed
//!   out; our peers the interface lacks or holds differently are drift.
//! - `apply` creates, replaces (PUT; a new key re-identifies the peer) or
//!   deletes one peer. wg-portal applies every change to the interface at
//!   once: there is nothing to make live afterwards.
//!
//! A wg-portal peer is identified by its public key; homebase marks its
//! own with `homebase: STAFF-ID` in the notes.

mod client;
mod config;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use ipnet::IpNet;
use reqwest::Url;

use self::client::{ApiError, Client, ConfigOption, Interface, Peer};
pub use self::config::WgPortalConfig;
use crate::error::Failure;
use crate::plan::{Observed, Op, Resource};
use crate::settings::Settings;
use crate::state::Store;
use crate::targets::common::wg_quick::reserve;
use crate::targets::{ActionContext, ExistingPeer, TargetError, VpnServer};

pub struct WgPortalTarget {
    name: String,
    config: WgPortalConfig,
    client: Client,
    interface: Interface,
    network: IpNet,
    /// The interface's peers when homebase connected, by public key.
    snapshot: BTreeMap<String, Peer>,
    /// Staff id → public key, as the state store had them when the run began.
    recorded: BTreeMap<String, String>,
}

impl WgPortalTarget {
    pub fn limiter(&self) -> std::sync::Arc<crate::adaptive::Limiter> {
        self.client.limiter().clone()
    }

    /// Read the token, the interface and its peers; changes nothing.
    pub async fn connect(
        name: &str,
        config: &WgPortalConfig,
        settings: &Settings,
    ) -> Result<WgPortalTarget> {
        let token = config
            .token_source()
            .read(name, |p| settings.path(p), |var| std::env::var(var).ok())
            .map_err(Failure::usage)?;
        let base = Url::parse(&config.url).map_err(|e| {
            Failure::usage(format!("target \"{name}\": url \"{}\": {e}", config.url))
        })?;
        let ca_file = config.ca_file.as_deref().map(|p| settings.path(p));
        let http = crate::targets::common::http::client(ca_file.as_deref(), &config.timeouts)
            .map_err(|e| Failure::usage(format!("target \"{name}\": {e}")))?;
        let limiter = crate::adaptive::Limiter::new(
            config.limits.ceiling(settings.jobs),
            config.limits.adaptive(),
        );
        let client = Client::new(http, &base, &config.user, token, limiter)
            .with_trace(crate::targets::common::Trace::new(name, &settings.output));
        let interface = client
            .interface(&config.interface)
            .await
            .map_err(|e| refused(name, config, e))?;
        let network = check_interface(name, config, &interface)?;
        let snapshot = client
            .peers(&config.interface)
            .await
            .map_err(|e| refused(name, config, e))?
            .into_iter()
            .map(|p| (p.identifier.clone(), p))
            .collect();
        let mut recorded = BTreeMap::new();
        if let Some(store) = Store::open_existing_read_only_at(&settings.state)? {
            recorded = store
                .peers(name)?
                .into_iter()
                .map(|(id, _, key)| (id, key))
                .collect();
        }
        Ok(WgPortalTarget {
            name: name.to_string(),
            config: config.clone(),
            client,
            interface,
            network,
            snapshot,
            recorded,
        })
    }

    /// The bundles' view of the gateway: the interface's key, endpoint and network.
    pub fn vpn_server(&self) -> VpnServer {
        let endpoint = match self.interface.peer_def_endpoint.trim() {
            "" => self.config.endpoint.as_str(),
            own => own,
        };
        let port = match self.interface.listen_port {
            0 => self.config.listen_port,
            port => port,
        };
        VpnServer {
            endpoint: crate::targets::wireguard_file::client_endpoint(endpoint, port),
            public_key: self.interface.public_key.clone(),
            network: self.network.to_string(),
            openvpn: None,
        }
    }

    /// The interface's peers, for `homebase adopt`: display name and notes
    /// are what it matches to persons.
    pub fn existing_peers(&self) -> (String, Vec<ExistingPeer>) {
        let peers = self
            .snapshot
            .values()
            .map(|p| {
                let nets = p.networks();
                ExistingPeer {
                    public_key: p.identifier.clone(),
                    allowed_ips: nets.iter().map(ToString::to_string).collect(),
                    address: nets
                        .iter()
                        .find(|n| n.prefix_len() == n.max_prefix_len())
                        .map(IpNet::addr),
                    has_psk: !p.preshared_key.is_empty(),
                    comments: [&p.display_name, &p.notes]
                        .into_iter()
                        .filter(|c| !c.is_empty())
                        .cloned()
                        .collect(),
                    certificates: Vec::new(),
                }
            })
            .collect();
        (
            format!(
                "wg-portal interface {} ({})",
                self.config.interface, self.config.url
            ),
            peers,
        )
    }

    /// Foreign addresses, and our peers the interface lacks or holds differently.
    pub fn read(&self, observed: &mut Observed) {
        let keys: BTreeSet<&str> = self.recorded.values().map(String::as_str).collect();
        let mut foreign = BTreeSet::new();
        for peer in self.snapshot.values() {
            let marked = staff_id_of(peer).is_some_and(|id| observed.persons.contains_key(id));
            if !keys.contains(peer.identifier.as_str()) && !marked {
                reserve(&mut foreign, &peer.networks());
            }
        }
        observed
            .foreign_addresses
            .entry(self.name.clone())
            .or_default()
            .extend(foreign);

        let recorded = observed.peers.get(&self.name).cloned().unwrap_or_default();
        let drift = observed.peer_drift.entry(self.name.clone()).or_default();
        for (id, peer) in &recorded {
            let live = self.recorded.get(id).and_then(|k| self.snapshot.get(k));
            let why = match live {
                None => Some("missing on the interface"),
                Some(live) if live.networks() != [IpNet::from(peer.address)] => {
                    Some("another address on the interface")
                }
                Some(live) if live.disabled => Some("disabled in wg-portal"),
                Some(live)
                    if peer.adopted_key.is_none()
                        && live.preshared_key.is_empty() == peer.preshared_key =>
                {
                    Some("another preshared key setting on the interface")
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                drift.insert(id.clone(), why.to_string());
            }
        }
    }

    /// Carry out one peer action.
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let Resource::VpnPeer(peer) = &ctx.action.resource else {
            return Ok(None);
        };
        let recorded = self.recorded.get(ctx.person_id);
        let named = |e: ApiError| -> TargetError {
            let refused = matches!(e, ApiError::Conflict(_) | ApiError::Refused { .. });
            match TargetError::from(e) {
                TargetError::Permanent { message } if refused => TargetError::permanent(format!(
                    "{}: the peer of {} ({}): {message}",
                    self.name, ctx.username, ctx.person_id
                )),
                TargetError::Permanent { message } => {
                    TargetError::permanent(format!("{}: {message}", self.name))
                }
                TargetError::Transient {
                    message,
                    retry_after,
                } => TargetError::Transient {
                    message: format!("{}: {message}", self.name),
                    retry_after,
                },
            }
        };
        match ctx.action.op {
            Op::Unchanged => Ok(recorded.cloned()),
            Op::Remove => {
                if let Some(key) = recorded {
                    self.client.delete_peer(key).await.map_err(named)?;
                }
                Ok(None)
            }
            Op::Create | Op::Update => {
                let own = ctx.secrets.wg_public_key();
                let public_key = own
                    .clone()
                    .or_else(|| peer.adopted_key.clone())
                    .or_else(|| recorded.cloned())
                    .ok_or_else(|| {
                        TargetError::permanent(format!(
                            "no WireGuard key for {} (bundle without a private key)",
                            ctx.person_id
                        ))
                    })?;
                // The peer the interface holds for this person now, if any.
                let current = recorded
                    .or(peer.adopted_key.as_ref())
                    .and_then(|k| self.snapshot.get(k));
                let preshared_key = match (own.is_some(), peer.preshared_key) {
                    (false, _) => current.map(|c| c.preshared_key.clone()).unwrap_or_default(),
                    (true, false) => String::new(),
                    (true, true) => ctx.secrets.wg_preshared_key.clone().ok_or_else(|| {
                        TargetError::permanent(format!(
                            "the profile asks for a preshared key, and the bundle of {} has none",
                            ctx.person_id
                        ))
                    })?,
                };
                let body = Peer {
                    identifier: current
                        .map_or_else(|| public_key.clone(), |c| c.identifier.clone()),
                    display_name: display_name(ctx.username, ctx.person_id),
                    user_identifier: current
                        .map(|c| c.user_identifier.clone())
                        .unwrap_or_default(),
                    interface_identifier: self.config.interface.clone(),
                    disabled: false,
                    disabled_reason: String::new(),
                    notes: format!("homebase: {}", ctx.person_id),
                    allowed_ips: ConfigOption {
                        value: self.interface.peer_def_allowed_ips.clone(),
                        overridable: true,
                    },
                    extra_allowed_ips: Vec::new(),
                    preshared_key,
                    private_key: String::new(),
                    public_key: public_key.clone(),
                    mode: "client".to_string(),
                    addresses: vec![IpNet::from(peer.address).to_string()],
                };
                match current {
                    Some(c) => self
                        .client
                        .update_peer(&c.identifier, &body)
                        .await
                        .map_err(named)?,
                    None => match self.client.create_peer(&body).await {
                        Ok(()) => {}
                        // A retry after a lost answer finds the peer it made.
                        Err(ApiError::Conflict(message)) => {
                            let found = self.client.peer(&public_key).await.map_err(named)?;
                            if found.interface_identifier != self.config.interface
                                || staff_id_of(&found) != Some(ctx.person_id)
                            {
                                return Err(named(ApiError::Conflict(message)));
                            }
                            self.client
                                .update_peer(&public_key, &body)
                                .await
                                .map_err(named)?;
                        }
                        Err(e) => return Err(named(e)),
                    },
                }
                Ok(Some(public_key))
            }
        }
    }
}

/// The staff id of a peer homebase made (`homebase: ID` in its notes).
fn staff_id_of(peer: &Peer) -> Option<&str> {
    peer.notes
        .strip_prefix("homebase: ")
        .map(str::trim)
        .filter(|id| !id.is_empty())
}

/// `username (STAFF-ID)`, within wg-portal's 64 characters.
fn display_name(username: &str, person_id: &str) -> String {
    let suffix = format!(" ({person_id})");
    let room = 64usize.saturating_sub(suffix.chars().count());
    let user: String = username.chars().take(room).collect();
    format!("{user}{suffix}").chars().take(64).collect()
}

/// The interface against `homebase.yaml`: its key, address and endpoint.
fn check_interface(name: &str, config: &WgPortalConfig, interface: &Interface) -> Result<IpNet> {
    let mut differences = Vec::new();
    let own: Vec<IpNet> = interface
        .addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if !own.contains(&config.address) {
        differences.push(format!(
            "targets.{name}.address is {}, the interface \"{}\" has address {}",
            config.address,
            config.interface,
            if own.is_empty() {
                "none".to_string()
            } else {
                interface.addresses.join(", ")
            }
        ));
    }
    let port = match interface.listen_port {
        0 => config.listen_port,
        port => port,
    };
    if !interface.peer_def_endpoint.trim().is_empty() {
        let ours = crate::targets::wireguard_file::client_endpoint(&config.endpoint, port);
        let theirs =
            crate::targets::wireguard_file::client_endpoint(&interface.peer_def_endpoint, port);
        if !theirs.eq_ignore_ascii_case(&ours) {
            differences.push(format!(
                "targets.{name}.endpoint is {ours}, the interface \"{}\" has endpoint {theirs}",
                config.interface
            ));
        }
    }
    if !crate::targets::is_peer_key(interface.public_key.trim()) {
        differences.push(format!(
            "the interface \"{}\" has no public key",
            config.interface
        ));
    }
    if !differences.is_empty() {
        return Err(Failure::usage_with_hint(
            format!(
                "target \"{name}\": the bundles would not fit the interface: {}",
                differences.join("; ")
            ),
            "make homebase.yaml say what the wg-portal interface has",
        )
        .into());
    }
    Ok(config.address.trunc())
}

fn refused(name: &str, config: &WgPortalConfig, err: ApiError) -> anyhow::Error {
    match err {
        ApiError::Unauthorized(_) => Failure::usage_with_hint(
            format!("target \"{name}\": {err}"),
            "check `user` and the API token in token_env/token_file (wg-portal: the user's profile, API access)",
        )
        .into(),
        ApiError::Forbidden(_) => Failure::usage_with_hint(
            format!("target \"{name}\": {err}"),
            "homebase needs a wg-portal admin user",
        )
        .into(),
        ApiError::NotFound(_) => Failure::usage(format!(
            "target \"{name}\": wg-portal has no interface \"{}\"",
            config.interface
        ))
        .into(),
        other => anyhow::Error::new(other).context(format!(
            "target \"{name}\": cannot read interface {} of {}",
            config.interface, config.url
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_fit_and_carry_the_staff_id() {
        assert_eq!(display_name("tmeyer", "P100001"), "tmeyer (P100001)");
        let long = display_name(&"x".repeat(80), "P100001");
        assert_eq!(long.chars().count(), 64);
        assert!(long.ends_with("(P100001)"));
        let peer = Peer {
            notes: "homebase: P100001".into(),
            ..Peer::default()
        };
        assert_eq!(staff_id_of(&peer), Some("P100001"));
    }
}
