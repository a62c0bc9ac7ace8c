//! Secrets generated at apply time: WireGuard keys, preshared keys, OpenVPN
//! client keys (with their certificates), first passwords. They go only into the person's bundle (a `.secrets` file, 0600,
//! beside the configs that embed them) — never into the state store, the plan,
//! a report, a log line or an error message. `Debug` is redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::rngs::OsRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::profile::PasswordPolicy;
use crate::targets::common::secret::Secret;

/// The name of the secrets file inside a bundle.
pub const SECRETS_FILE: &str = ".secrets";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct PersonSecrets {
    pub password: Option<String>,
    pub wg_private_key: Option<String>,
    pub wg_preshared_key: Option<String>,
    /// OpenVPN client key, PKCS#8 DER in base64 (one line in the file).
    pub ovpn_key: Option<String>,
    /// Its certificate, DER in base64: public, kept beside the key it belongs to.
    pub ovpn_cert: Option<String>,
}

impl fmt::Debug for PersonSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonSecrets(<redacted>)")
    }
}

impl PersonSecrets {
    /// The WireGuard public key that belongs to the private key, if any.
    pub fn wg_public_key(&self) -> Option<String> {
        self.wg_private_key.as_deref().and_then(public_key_of)
    }

    /// The OpenVPN client key as PEM, for the `<key>` block.
    pub fn ovpn_key_pem(&self) -> Option<String> {
        let der = B64.decode(self.ovpn_key.as_deref()?).ok()?;
        Some(crate::targets::common::pem::to_pem("PRIVATE KEY", &der))
    }

    /// The OpenVPN client certificate as PEM, for the `<cert>` block.
    pub fn ovpn_cert_pem(&self) -> Option<String> {
        let der = B64.decode(self.ovpn_cert.as_deref()?).ok()?;
        Some(crate::targets::common::pem::to_pem("CERTIFICATE", &der))
    }

    /// The serial (lower-case hex) of the OpenVPN client certificate.
    pub fn ovpn_serial(&self) -> Option<String> {
        let der = B64.decode(self.ovpn_cert.as_deref()?).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
        let raw = cert.raw_serial();
        let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
        Some(hex::encode(&raw[start..]))
    }

    /// The last moment the OpenVPN client certificate is valid.
    pub fn ovpn_not_after(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let der = B64.decode(self.ovpn_cert.as_deref()?).ok()?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
        chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
    }

    /// `key=value` lines for the bundle's secrets file.
    pub fn to_file(&self) -> String {
        let mut out = String::from("# homebase secrets of this bundle: keep this folder private\n");
        for (key, value) in [
            ("initial_password", &self.password),
            ("wireguard_private_key", &self.wg_private_key),
            ("wireguard_preshared_key", &self.wg_preshared_key),
            ("openvpn_key", &self.ovpn_key),
            ("openvpn_cert", &self.ovpn_cert),
        ] {
            if let Some(value) = value {
                out.push_str(&format!("{key}={value}\n"));
            }
        }
        out
    }

    pub fn from_file(text: &str) -> PersonSecrets {
        let mut secrets = PersonSecrets::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = Some(value.to_string());
            match key {
                "initial_password" => secrets.password = value,
                "wireguard_private_key" => secrets.wg_private_key = value,
                "wireguard_preshared_key" => secrets.wg_preshared_key = value,
                "openvpn_key" => secrets.ovpn_key = value,
                "openvpn_cert" => secrets.ovpn_cert = value,
                _ => {}
            }
        }
        secrets
    }

    /// The secrets of an existing bundle folder, if it has a secrets file.
    pub fn read(dir: &Path) -> Result<Option<PersonSecrets>> {
        let path = dir.join(SECRETS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(PersonSecrets::from_file(&text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Preshared keys issued in this run into encrypted bundles, by the peer's
/// public key: the server file needs them, and no bundle on disk can be read
/// for them. Part of the run's bundle writer, so they live as long as the
/// run and are wiped when it ends.
#[derive(Default)]
pub struct HeldPreshared(Mutex<BTreeMap<String, Secret>>);

impl HeldPreshared {
    pub fn hold(&self, public_key: &str, psk: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(public_key.to_string(), Secret::new(psk));
    }

    pub fn get(&self, public_key: &str) -> Option<Secret> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(public_key)
            .cloned()
    }
}

impl fmt::Debug for HeldPreshared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.lock().map_or(0, |held| held.len());
        write!(f, "HeldPreshared({count} key(s), <redacted>)")
    }
}

/// A new WireGuard private key (base64, as `wg genkey` prints it).
pub fn wg_private_key() -> String {
    let secret = StaticSecret::random_from_rng(OsRng);
    B64.encode(secret.to_bytes())
}

/// The public key of a base64 private key (as `wg pubkey` computes it).
pub fn public_key_of(private_b64: &str) -> Option<String> {
    let bytes: [u8; 32] = B64.decode(private_b64.trim()).ok()?.try_into().ok()?;
    let secret = StaticSecret::from(bytes);
    Some(B64.encode(PublicKey::from(&secret).as_bytes()))
}

/// A new preshared key (as `wg genpsk` prints it).
pub fn preshared_key() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"!#%+-=?@_";

/// A first password: unambiguous characters (no 0/O, 1/l/I), at least one of
/// each class so directory complexity rules (AD) accept it.
pub fn password(policy: &PasswordPolicy) -> String {
    let mut classes: Vec<&[u8]> = vec![LOWER, UPPER, DIGITS];
    if policy.symbols {
        classes.push(SYMBOLS);
    }
    let length = policy.length.max(classes.len()).max(8);
    let all: Vec<u8> = classes.iter().flat_map(|c| c.iter().copied()).collect();
    // ThreadRng is a CSPRNG seeded from the OS; OsRng would be one syscall per character.
    let mut rng = rand::thread_rng();
    let mut chars: Vec<u8> = classes
        .iter()
        .map(|c| c[rng.gen_range(0..c.len())])
        .collect();
    while chars.len() < length {
        chars.push(all[rng.gen_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    String::from_utf8(chars).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_wireguard_shaped_and_derive() {
        let private = wg_private_key();
        assert_eq!(B64.decode(&private).unwrap().len(), 32);
        let public = public_key_of(&private).unwrap();
        assert_eq!(public.len(), 44);
        assert_ne!(public, private);
        assert_eq!(public_key_of(&private), Some(public));
        assert_eq!(public_key_of("not base64"), None);
    }

    #[test]
    fn known_vector_matches_wg_pubkey() {
        // RFC 7748 §6.1: Alice's private key and public key.
        let private =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap();
        let public =
            hex::decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
                .unwrap();
        assert_eq!(
            public_key_of(&B64.encode(private)),
            Some(B64.encode(public))
        );
    }

    #[test]
    fn passwords_meet_the_policy() {
        let policy = PasswordPolicy {
            length: 16,
            symbols: true,
        };
        for _ in 0..200 {
            let p = password(&policy);
            assert_eq!(p.len(), 16);
            assert!(p.bytes().any(|b| LOWER.contains(&b)));
            assert!(p.bytes().any(|b| UPPER.contains(&b)));
            assert!(p.bytes().any(|b| DIGITS.contains(&b)));
            assert!(p.bytes().any(|b| SYMBOLS.contains(&b)));
        }
        assert_ne!(password(&policy), password(&policy));
    }

    #[test]
    fn secrets_file_round_trips_and_debug_is_redacted() {
        let s = PersonSecrets {
            password: Some("pw=with=equals".into()),
            wg_private_key: Some(wg_private_key()),
            wg_preshared_key: None,
            ovpn_key: Some(B64.encode(b"not really a key")),
            ovpn_cert: None,
        };
        assert_eq!(PersonSecrets::from_file(&s.to_file()), s);
        assert!(!format!("{s:?}").contains("pw"));
    }

    #[test]
    fn held_preshared_keys_are_found_by_public_key_and_never_printed() {
        let held = HeldPreshared::default();
        let psk = preshared_key();
        held.hold("PUBLIC", &psk);
        assert_eq!(
            held.get("PUBLIC").map(|s| s.expose().to_string()),
            Some(psk.clone())
        );
        assert!(held.get("OTHER").is_none());
        let shown = format!("{held:?}");
        assert!(
            shown.contains("1 key(s)") && !shown.contains(&psk),
            "{shown}"
        );
    }
}
