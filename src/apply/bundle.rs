//! Per-person bundles: `out/<username>/` (0700) with the VPN client config and
//! its QR code, the welcome letter and the handover sheet (files 0600, written
//! atomically, untouched when their content is the same).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::NaiveDate;

use super::fsutil::{private_dir, write_if_changed};
use super::secrets::{PersonSecrets, SECRETS_FILE};
use crate::config::Organisation;
use crate::input::Person;
use crate::plan::{digest::InputDigest, Op, PersonPlan, Resource};
use crate::profile::{Profile, Tunnel, VpnKind};
use crate::render::*;

pub use crate::targets::VpnServer;

pub struct BundleWriter<'a> {
    pub templates: &'a Templates,
    pub organisation: &'a Organisation,
    pub out_dir: PathBuf,
    pub servers: BTreeMap<String, VpnServer>,
    pub today: NaiveDate,
}

impl BundleWriter<'_> {
    pub fn dir(&self, username: &str) -> PathBuf {
        // Usernames are `[a-z0-9._-]` without leading dots (plan::username), so
        // this never leaves the output folder.
        self.out_dir.join(username)
    }

    /// Write the secrets file first: whatever is journaled after it can be recovered.
    pub fn write_secrets(&self, username: &str, secrets: &PersonSecrets) -> Result<()> {
        let dir = self.dir(username);
        // Made with its parents (the output folder too, if new), all 0700.
        private_dir(&dir, 0o700)?;
        write_if_changed(
            &dir.join(SECRETS_FILE),
            secrets.to_file().as_bytes(),
            Some(0o600),
        )?;
        Ok(())
    }

    /// The template context of a person after the plan is carried out.
    pub fn context(
        &self,
        plan: &PersonPlan,
        person: &Person,
        profile: &Profile,
        secrets: &PersonSecrets,
    ) -> BundleContext {
        let mut account = None;
        let mut peer = None;
        let mut devices = Vec::new();
        let mut licenses = Vec::new();
        for action in plan.actions.iter().filter(|a| a.op != Op::Remove) {
            match &action.resource {
                Resource::Account(a) => account = Some(a.clone()),
                Resource::VpnPeer(p) => peer = Some((action.target.name().to_string(), p.clone())),
                Resource::Device(d) => devices.push(DeviceCtx {
                    kind: d.kind.clone(),
                    model: d.model.clone(),
                    asset_tag: d.asset_tag.clone(),
                    serial: d.serial.clone(),
                }),
                Resource::License(l) => licenses.push(l.pool.clone()),
                Resource::Bundle(_) => {}
            }
        }
        let vpn = peer.and_then(|(target, p)| {
            let server = self.servers.get(&target)?;
            let spec = &profile.vpn;
            let bits = if p.address.is_ipv4() { 32 } else { 128 };
            let allowed_ips = match spec.tunnel {
                Tunnel::Full if spec.windows_full_tunnel_split => {
                    ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]
                        .map(String::from)
                        .to_vec()
                }
                Tunnel::Full => vec!["0.0.0.0/0".into(), "::/0".into()],
                Tunnel::Split => {
                    let mut nets: Vec<String> = vec![server.network.clone()];
                    nets.extend(spec.allowed_ips.iter().map(ToString::to_string));
                    nets.dedup();
                    nets
                }
            };
            let client = server.client(secrets, p.adopted_key.is_some());
            Some(VpnCtx {
                kind: match spec.kind {
                    VpnKind::Openvpn => "openvpn".into(),
                    _ => "wireguard".into(),
                },
                address: format!("{}/{bits}", p.address),
                allowed_ips,
                dns: spec.dns.iter().map(ToString::to_string).collect(),
                dns_search: spec.dns_search.clone(),
                mtu: spec.mtu,
                keepalive: spec.keepalive,
                endpoint: server.endpoint.clone(),
                server_public_key: client.server_public_key,
                private_key: secrets.wg_private_key.clone(),
                preshared_key: if p.preshared_key {
                    secrets.wg_preshared_key.clone()
                } else {
                    None
                },
                keeps_own_key: client.keeps_own_key,
                ca: client.ca,
                cert: client.cert,
                key: client.key,
                tls_crypt: client.tls_crypt,
                remote_host: client.remote_host,
                remote_port: client.remote_port,
            })
        });
        let account = account.unwrap_or_else(|| crate::plan::Account {
            username: plan.username.clone(),
            given_name: person.given_name.clone(),
            family_name: person.family_name.clone(),
            display_name: plan.display_name.clone(),
            email: String::new(),
            department: None,
            groups: Vec::new(),
            ou: None,
            expires: None,
            enabled: true,
        });
        BundleContext {
            organisation: OrganisationCtx {
                name: self.organisation.name.clone(),
                domain: self.organisation.domain.clone(),
                helpdesk: self.organisation.helpdesk.clone(),
            },
            person: PersonCtx {
                id: person.id.clone(),
                given_name: person.given_name.clone(),
                family_name: person.family_name.clone(),
                display_name: person.display_name(),
                email: person.email.clone(),
                department: person.department.clone(),
                phone: person.phone.clone(),
                location: person.location.clone(),
                manager: person.manager.clone(),
                start: person.start.map(|d| d.to_string()),
                end: person.end.map(|d| d.to_string()),
                extra: person.extra.clone(),
            },
            profile: ProfileCtx {
                name: profile.name.clone(),
                description: profile.description.clone(),
            },
            account: AccountCtx {
                username: account.username,
                email: account.email,
                groups: account.groups,
                expires: account.expires.map(|d| d.to_string()),
                must_change_password: profile.account.must_change_password,
                initial_password: secrets.password.clone(),
            },
            vpn,
            devices,
            licenses,
            generated: self.today.to_string(),
        }
    }

    /// Digest of what the bundle says, secrets left out (it goes into the state store).
    pub fn fingerprint(&self, context: &BundleContext) -> String {
        let mut public = context.clone();
        public.account.initial_password = None;
        if let Some(vpn) = &mut public.vpn {
            vpn.private_key = None;
            vpn.preshared_key = None;
            vpn.key = None;
            vpn.tls_crypt = None;
        }
        let mut digest = InputDigest::default();
        digest.part("context", &serde_json::to_vec(&public).unwrap_or_default());
        digest.part("templates", self.templates.fingerprint().as_bytes());
        digest.finish()
    }

    /// Render the profile's artifacts into the bundle. Files whose content is
    /// unchanged are not touched.
    pub fn write(&self, username: &str, profile: &Profile, context: &BundleContext) -> Result<()> {
        let dir = self.dir(username);
        if !dir.is_dir() {
            private_dir(&dir, 0o700)?;
        }
        let value = Templates::value(context);
        for artifact in &profile.artifacts {
            if artifact.starts_with("wireguard") && context.vpn.is_none() {
                continue;
            }
            let text = self
                .templates
                .render_value(artifact, &value)
                .with_context(|| format!("template {artifact} for {username}"))?;
            let name = artifact.strip_suffix(".j2").unwrap_or(artifact);
            write_file(&dir, name, text.as_bytes())?;
            if name == "wireguard.conf" {
                let png = super::qr::png(&super::qr::config_for_phone(&text))?;
                write_file(&dir, "wireguard-qr.png", &png)?;
            }
        }
        Ok(())
    }
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    write_if_changed(&dir.join(name), bytes, Some(0o600))?;
    Ok(())
}
