//! Per-person bundles: `out/<username>/` (0700) with the VPN client config and
//! its QR code, the welcome letter and the handover sheet (files 0600, written
//! atomically, untouched when their content is the same).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::NaiveDate;

use super::fsutil::{private_dir, write_if_changed, write_new};
use super::sealed::{write_sealed, Recipients, RunArchive};
use super::secrets::{HeldPreshared, PersonSecrets, SECRETS_FILE};
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
    /// Set: bundles are written only encrypted (`bundles.encrypt_to`).
    pub sealed: Option<Sealing<'a>>,
    /// Set (`apply --letters`): the letters of the bundles written, for the PDF.
    pub letters: Option<std::sync::Mutex<Vec<crate::letters::Letter>>>,
}

/// Where encrypted bundles go: one archive a person, one of the whole run.
pub struct Sealing<'a> {
    pub recipients: &'a Recipients,
    pub run: RunArchive<'a>,
    /// The preshared keys sealed this run, for the server file.
    pub preshared: HeldPreshared,
}

impl BundleWriter<'_> {
    pub fn dir(&self, username: &str) -> PathBuf {
        // Usernames are `[a-z0-9._-]` without leading dots (plan::username), so
        // this never leaves the output folder.
        self.out_dir.join(username)
    }

    /// The encrypted bundle of a person (`bundles.encrypt_to`).
    pub fn sealed_path(&self, username: &str) -> PathBuf {
        self.out_dir.join(format!("{username}.tar.age"))
    }

    /// Write the secrets file first: whatever is journaled after it can be
    /// recovered. Encrypted, it is the person's archive with only the
    /// secrets, replaced by the whole bundle once it is rendered.
    pub fn write_secrets(&self, username: &str, secrets: &PersonSecrets) -> Result<()> {
        if let Some(sealing) = &self.sealed {
            private_dir(&self.out_dir, 0o700)?;
            if let (Some(public), Some(psk)) = (secrets.wg_public_key(), &secrets.wg_preshared_key)
            {
                sealing.preshared.hold(&public, psk);
            }
            let entries = [(SECRETS_FILE.to_string(), secrets.to_file().into_bytes())];
            return write_sealed(
                &self.sealed_path(username),
                sealing.recipients,
                username,
                &entries,
            );
        }
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
                password_separate: false,
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
    pub fn write(
        &self,
        username: &str,
        profile: &Profile,
        context: &BundleContext,
        secrets: &PersonSecrets,
    ) -> Result<()> {
        let files = self.render(username, profile, context)?;
        if let Some(letters) = &self.letters {
            let letter = self.letter(profile, context.clone())?;
            letters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(letter);
        }
        if let Some(sealing) = &self.sealed {
            let mut entries = vec![(SECRETS_FILE.to_string(), secrets.to_file().into_bytes())];
            entries.extend(files);
            write_sealed(
                &self.sealed_path(username),
                sealing.recipients,
                username,
                &entries,
            )?;
            return sealing.run.add(username, &entries);
        }
        let dir = self.dir(username);
        if !dir.is_dir() {
            private_dir(&dir, 0o700)?;
        }
        for (name, bytes) in &files {
            write_file(&dir, name, bytes)?;
        }
        Ok(())
    }

    /// The printed letter of a bundle: its context and WireGuard config.
    pub fn letter(
        &self,
        profile: &Profile,
        context: BundleContext,
    ) -> Result<crate::letters::Letter> {
        let template = profile
            .artifacts
            .iter()
            .find(|a| a.starts_with("wireguard"));
        let wireguard = match (template, &context.vpn) {
            (Some(template), Some(vpn)) if vpn.private_key.is_some() => Some(
                self.templates
                    .render(template, &context)
                    .with_context(|| format!("template {template}"))?,
            ),
            _ => None,
        };
        Ok(crate::letters::Letter {
            context,
            wireguard,
            print_password: profile.letter.print_password,
        })
    }

    /// The files of a bundle, in memory: file name and content.
    fn render(
        &self,
        username: &str,
        profile: &Profile,
        context: &BundleContext,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = Vec::new();
        let mut value = Templates::value(context);
        // The client config first: the letters show its QR code
        // (`wireguard_qr`, a PNG data URI, defined only when there is one).
        let (configs, letters): (Vec<&String>, Vec<&String>) = profile
            .artifacts
            .iter()
            .partition(|a| a.starts_with("wireguard"));
        for artifact in configs {
            if context.vpn.is_none() {
                continue;
            }
            let text = self
                .templates
                .render_value(artifact, &value)
                .with_context(|| format!("template {artifact} for {username}"))?;
            let name = artifact.strip_suffix(".j2").unwrap_or(artifact);
            if name == "wireguard.conf" {
                let png = super::qr::png(&super::qr::config_for_phone(&text))?;
                let uri = format!(
                    "data:image/png;base64,{}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &png)
                );
                // Base64 and `data:image/png;base64,` only: nothing to escape.
                let uri = minijinja::Value::from_safe_string(uri);
                value = minijinja::context! { wireguard_qr => uri, ..value };
                files.push(("wireguard-qr.png".to_string(), png));
            }
            files.push((name.to_string(), text.into_bytes()));
        }
        for artifact in letters {
            let text = self
                .templates
                .render_value(artifact, &value)
                .with_context(|| format!("template {artifact} for {username}"))?;
            let name = artifact.strip_suffix(".j2").unwrap_or(artifact);
            files.push((name.to_string(), text.into_bytes()));
        }
        Ok(files)
    }
}

/// A bundle's file: written in place when it is new (the journal records the
/// bundle complete only after all its files), else replaced atomically if
/// its content changed.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    if !write_new(&path, bytes, 0o600)? {
        write_if_changed(&path, bytes, Some(0o600))?;
    }
    Ok(())
}
