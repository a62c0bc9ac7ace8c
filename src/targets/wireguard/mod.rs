//! The `wireguard` VPN target: a running interface on a gateway, changed
//! peer by peer with `wg` (locally or through a command prefix such as
//! `ssh vpn-gw-1 sudo`), other peers and live sessions left alone. After
//! every apply the gateway's `wg-quick` file is rewritten from the state
//! store and the interface, so that a restart keeps what homebase did.
//!
//! The state store records our peers (public keys only). Preshared keys live
//! on the interface and in the person's bundle; the file gets them from the
//! interface.

pub mod batch;
pub mod command;
mod config;
pub mod dump;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use ipnet::IpNet;

pub use self::config::WireguardLive;
use crate::plan::{Observed, Op, Resource};
use crate::settings::Settings;
use crate::state::Store;
use crate::targets::common::wg_quick::{self, reserve, ConfFile, ConfPeer, ManagedPeer};
use crate::targets::{ActionContext, ExistingPeer, TargetError};
use batch::{Batcher, Change, PresharedKey};
use command::Runner;
use dump::Dump;

pub struct WireguardTarget {
    name: String,
    config: WireguardLive,
    /// `config_path`, resolved against the configuration's folder.
    config_path: String,
    runner: Runner,
    /// The interface when homebase connected (for the plan's diff).
    snapshot: Dump,
    /// Staff id → public key, as the state store had them when the run began:
    /// the key a new one replaces, or a withdrawal removes.
    recorded: BTreeMap<String, String>,
    batcher: Batcher,
}

impl WireguardTarget {
    /// Reach the gateway and read the interface; changes nothing.
    pub async fn connect(
        name: &str,
        config: &WireguardLive,
        settings: &Settings,
    ) -> Result<WireguardTarget> {
        let mut target = WireguardTarget {
            name: name.to_string(),
            config: config.clone(),
            config_path: settings.path(&config.config_path).display().to_string(),
            runner: Runner::new(
                &config.command,
                Duration::from_secs(config.timeout_seconds.max(1)),
            )
            .with_trace(crate::targets::common::Trace::new(name, &settings.output)),
            snapshot: Dump::default(),
            recorded: BTreeMap::new(),
            batcher: Batcher::default(),
        };
        target.snapshot = target.dump().await?;
        if let Some(store) = Store::open_existing_read_only_at(&settings.state)? {
            target.recorded = store
                .peers(name)?
                .into_iter()
                .map(|(id, _, key)| (id, key))
                .collect();
        }
        Ok(target)
    }

    /// `wg show IFACE dump`, parsed.
    pub async fn dump(&self) -> Result<Dump> {
        let text = self
            .runner
            .run(&["wg", "show", &self.config.interface, "dump"], None)
            .await
            .with_context(|| self.context("cannot read the interface"))?;
        Dump::parse(&text).with_context(|| self.context("cannot read the interface"))
    }

    /// The gateway's config file; `None` when there is none yet.
    pub async fn read_file(&self) -> Result<Option<String>> {
        match self.runner.run(&["cat", &self.config_path], None).await {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.is_missing_file() => Ok(None),
            Err(e) => Err(e).with_context(|| self.context("cannot read the config file")),
        }
    }

    fn context(&self, what: &str) -> String {
        format!(
            "wireguard target \"{}\" (interface {}): {what}",
            self.name, self.config.interface
        )
    }

    /// The interface's peers, with the comments of its config file (what
    /// `homebase adopt` matches to persons), and where they were read from.
    pub async fn existing_peers(&self) -> Result<(String, Vec<ExistingPeer>)> {
        let file = ConfFile::parse(&self.read_file().await?.unwrap_or_default());
        let peers = self
            .snapshot
            .peers
            .iter()
            .map(|p| ExistingPeer {
                public_key: p.public_key.clone(),
                allowed_ips: p.allowed_ips.iter().map(ToString::to_string).collect(),
                address: p.host_address(),
                has_psk: p.preshared_key.is_some(),
                comments: file
                    .peer(&p.public_key)
                    .map(|f| f.comments.clone())
                    .unwrap_or_default(),
                certificates: Vec::new(),
            })
            .collect();
        Ok((
            format!(
                "interface {} ({})",
                self.config.interface,
                self.config.config_path.display()
            ),
            peers,
        ))
    }

    /// The interface as read when connecting.
    pub fn snapshot(&self) -> &Dump {
        &self.snapshot
    }

    /// The gateway as the bundles name it.
    pub fn vpn_server(&self) -> Result<crate::targets::VpnServer> {
        Ok(crate::targets::VpnServer {
            endpoint: crate::targets::wireguard_file::client_endpoint(
                &self.config.endpoint,
                self.config.listen_port,
            ),
            public_key: self.public_key()?,
            network: self.config.address.trunc().to_string(),
            openvpn: None,
        })
    }

    /// The server's public key, which every client config names.
    pub fn public_key(&self) -> Result<String> {
        self.snapshot.public_key.clone().ok_or_else(|| {
            anyhow!(
                "{}",
                self.context(
                    "the interface has no private key yet; bring it up from its config \
                     (`wg-quick up`) or set one with `wg set IFACE private-key FILE`"
                )
            )
        })
    }

    /// Foreign addresses, and our peers the interface lacks or holds
    /// differently, and whether the config file is behind.
    pub async fn read(&self, store: Option<&Store>, observed: &mut Observed) -> Result<()> {
        let recorded = match store {
            Some(store) => store.peers(&self.name)?,
            None => Vec::new(),
        };
        let ours: BTreeSet<&str> = recorded.iter().map(|(_, _, k)| k.as_str()).collect();
        let text = self.read_file().await?;
        let file = ConfFile::parse(text.as_deref().unwrap_or_default());

        let mut foreign = BTreeSet::new();
        for peer in self
            .snapshot
            .peers
            .iter()
            .filter(|p| !ours.contains(p.public_key.as_str()))
        {
            reserve(&mut foreign, &peer.allowed_ips);
        }
        for peer in file.peers.iter().filter(|p| {
            p.homebase_id().is_none() && !p.public_key.as_deref().is_some_and(|k| ours.contains(k))
        }) {
            let nets: Vec<IpNet> = peer
                .allowed_ips
                .iter()
                .filter_map(|n| parse_net(n))
                .collect();
            reserve(&mut foreign, &nets);
        }
        observed
            .foreign_addresses
            .entry(self.name.clone())
            .or_default()
            .extend(foreign);

        let drift = observed.peer_drift.entry(self.name.clone()).or_default();
        for (id, peer, key) in &recorded {
            let bits = if peer.address.is_ipv4() { 32 } else { 128 };
            let expected = IpNet::new(peer.address, bits).ok();
            let why = match self.snapshot.peer(key) {
                None => Some("missing on the interface"),
                Some(live) if live.allowed_ips.as_slice() != expected.as_slice() => {
                    Some("another address on the interface")
                }
                Some(live)
                    if peer.adopted_key.is_none()
                        && live.preshared_key.is_some() != peer.preshared_key =>
                {
                    Some("another preshared key setting on the interface")
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                drift.insert(id.clone(), why.to_string());
            }
        }

        if let Some(store) = store {
            let expected = self.render_file(store, &self.snapshot, text.as_deref())?;
            if text.as_deref() != Some(expected.as_str()) && !recorded.is_empty() {
                observed.stale_files.insert(
                    format!("{} ({})", self.config_path, self.name),
                    "does not match the peers of the state store and the interface".into(),
                );
            }
        }
        Ok(())
    }

    /// Carry out one peer action on the interface (batched with others).
    pub async fn apply(&self, ctx: &ActionContext<'_>) -> Result<Option<String>, TargetError> {
        let Resource::VpnPeer(peer) = &ctx.action.resource else {
            return Ok(None);
        };
        let recorded = self.recorded.get(ctx.person_id);
        let change = if ctx.action.op == Op::Remove {
            let Some(key) = recorded else {
                return Ok(None);
            };
            Change::Remove {
                public_key: key.clone(),
            }
        } else {
            let own = ctx.secrets.wg_public_key();
            // No key of this run: the person's delivered bundle is elsewhere
            // and keeps the key the interface already has.
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
            let preshared_key = if own.is_none() {
                PresharedKey::Keep
            } else if peer.preshared_key {
                match &ctx.secrets.wg_preshared_key {
                    Some(psk) => PresharedKey::Set(dump::Secret::new(psk.clone())),
                    None => {
                        return Err(TargetError::permanent(format!(
                            "the profile asks for a preshared key, and the bundle of {} has none",
                            ctx.person_id
                        )))
                    }
                }
            } else {
                PresharedKey::Clear
            };
            Change::Put {
                replaces: recorded.filter(|k| **k != public_key).cloned(),
                public_key,
                address: peer.address,
                preshared_key,
            }
        };
        self.batcher
            .submit(&self.runner, &self.config.interface, change)
            .await
            .map_err(|e| match e {
                TargetError::Transient {
                    message,
                    retry_after,
                } => TargetError::Transient {
                    message: format!("{}: {message}", self.name),
                    retry_after,
                },
                TargetError::Permanent { message } => TargetError::Permanent {
                    message: format!("{}: {message}", self.name),
                },
            })?;
        Ok(None)
    }

    /// Rewrite the gateway's config file from the state store and the
    /// interface, if it differs: atomically (a temp file renamed over it), 0600.
    pub async fn persist(&self, store: &Store) -> Result<()> {
        let live = self.dump().await?;
        let text = self.read_file().await?;
        let new = self.render_file(store, &live, text.as_deref())?;
        if text.as_deref() == Some(new.as_str()) {
            return Ok(());
        }
        let temp = format!("{}.homebase-new", self.config_path);
        self.runner
            .run(
                &["install", "-m", "600", "/dev/stdin", &temp],
                Some(new.as_bytes()),
            )
            .await
            .with_context(|| self.context("cannot write the config file"))?;
        self.runner
            .run(&["mv", "-f", &temp, &self.config_path], None)
            .await
            .with_context(|| self.context("cannot write the config file"))?;
        Ok(())
    }

    /// The config file as it should be: the `[Interface]` section as it was
    /// (made from the interface when there is no file), our peers from the
    /// store with the interface's preshared keys, hand-made peers as written.
    fn render_file(&self, store: &Store, live: &Dump, text: Option<&str>) -> Result<String> {
        let file = ConfFile::parse(text.unwrap_or_default());
        let peers = store.peers(&self.name)?;
        let ours: BTreeSet<&str> = peers.iter().map(|(_, _, k)| k.as_str()).collect();
        let usernames: BTreeMap<String, String> = store
            .persons()?
            .into_iter()
            .map(|(id, known)| (id, known.username))
            .collect();
        let has_interface = file
            .interface
            .iter()
            .any(|l| l.trim().eq_ignore_ascii_case("[Interface]"));
        let interface = if has_interface {
            file.interface.clone()
        } else {
            let mut lines = vec![
                "# Written by homebase. Peers tagged `# homebase:` are managed; others are kept."
                    .to_string(),
                "[Interface]".to_string(),
                format!("Address = {}", self.config.address),
            ];
            if let Some(port) = live.listen_port {
                lines.push(format!("ListenPort = {port}"));
            }
            if let Some(key) = &live.private_key {
                lines.push(format!("PrivateKey = {}", key.expose()));
            }
            lines
        };
        let managed: Vec<ManagedPeer> = peers
            .iter()
            .map(|(id, peer, key)| ManagedPeer {
                person: id,
                username: usernames.get(id).map_or("", String::as_str),
                public_key: key,
                preshared_key: live
                    .peer(key)
                    .map(|p| p.preshared_key.as_ref())
                    .unwrap_or_else(|| file.peer(key).and_then(|p| p.preshared_key.as_ref())),
                address: peer.address,
            })
            .collect();
        let foreign: Vec<&ConfPeer> = file
            .peers
            .iter()
            .filter(|p| {
                p.homebase_id().is_none()
                    && !p.public_key.as_deref().is_some_and(|k| ours.contains(k))
            })
            .collect();
        Ok(wg_quick::render(&interface, &managed, &foreign))
    }
}

fn parse_net(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}
