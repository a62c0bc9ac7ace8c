//! The organisation's CA: loaded from its certificate and key files (or
//! created by `homebase init --ca`), it issues one client certificate per
//! person and signs the CRL.
//!
//! The CA key and the client keys never leave this module except as the
//! client key handed to the person's bundle; errors name files, never content.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};

use super::config::KeyType;

/// What is wrong with the CA files, named by path.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is accessible by others (mode {mode:04o}); the CA key must be private: `chmod 600 {}`", path.display(), path.display())]
    KeyMode { path: PathBuf, mode: u32 },
    #[error("{}: {why}", path.display())]
    Key { path: PathBuf, why: String },
    #[error("{}: {why}", path.display())]
    Cert { path: PathBuf, why: String },
    #[error("{} does not belong to the CA certificate {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot issue a certificate: {0}")]
    Issue(String),
}

/// A CA ready to sign. `Debug` shows the subject only.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate as PEM, for the clients' `<ca>` block.
    pub cert_pem: String,
    pub subject: String,
    pub not_after: DateTime<Utc>,
    /// The CA's subject key identifier, for the CRL's authority key identifier.
    key_id: rcgen::KeyIdMethod,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authority({}, until {})", self.subject, self.not_after)
    }
}

/// A client certificate with its new key (PKCS#8 DER: a secret).
pub struct Issued {
    pub cert_der: Vec<u8>,
    pub key_der: Vec<u8>,
    pub serial: String,
    pub not_after: DateTime<Utc>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Issued({}, until {})", self.serial, self.not_after)
    }
}

impl Authority {
    /// Load and cross-check the CA certificate and key.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Authority, CaError> {
        let key = load_key(key_path)?;
        let cert_text = std::fs::read(cert_path).map_err(|source| CaError::Read {
            path: cert_path.to_path_buf(),
            source,
        })?;
        let cert_err = |why: String| CaError::Cert {
            path: cert_path.to_path_buf(),
            why,
        };
        let (_, pem) = x509_parser::pem::parse_x509_pem(&cert_text)
            .map_err(|_| cert_err("not a PEM certificate".into()))?;
        let cert = pem
            .parse_x509()
            .map_err(|e| cert_err(format!("not an X.509 certificate ({e})")))?;
        if !cert.is_ca() {
            return Err(cert_err(
                "not a CA certificate (basicConstraints CA:TRUE is missing)".into(),
            ));
        }
        let usage = cert
            .key_usage()
            .map_err(|e| cert_err(format!("unreadable key usage ({e})")))?;
        if let Some(usage) = usage {
            if !usage.value.key_cert_sign() || !usage.value.crl_sign() {
                return Err(cert_err(
                    "the CA's key usage does not allow signing certificates and CRLs (keyCertSign, cRLSign)".into(),
                ));
            }
        }
        let not_after = timestamp(cert.validity().not_after.timestamp());
        if not_after <= Utc::now() {
            return Err(cert_err(format!(
                "the CA certificate expired on {}",
                not_after.date_naive()
            )));
        }
        if cert.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
            return Err(CaError::Mismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            });
        }
        let subject = cert.subject().to_string();
        let key_id = cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                    Some(rcgen::KeyIdMethod::PreSpecified(id.0.to_vec()))
                }
                _ => None,
            })
            .unwrap_or(rcgen::KeyIdMethod::Sha256);
        let issuer = Issuer::from_ca_cert_der(&pem.contents.clone().into(), key)
            .map_err(|e| cert_err(format!("cannot use the CA certificate ({e})")))?;
        Ok(Authority {
            issuer,
            cert_pem: to_pem("CERTIFICATE", &pem.contents),
            subject,
            not_after,
            key_id,
        })
    }

    /// A client certificate for `username` with a new key of `key_type`,
    /// valid until `not_after` (or the CA's end, whichever comes first).
    pub fn issue(
        &self,
        username: &str,
        organisation: &str,
        key_type: KeyType,
        not_after: DateTime<Utc>,
    ) -> Result<Issued, CaError> {
        let key = generate_key(key_type).map_err(CaError::Issue)?;
        let not_after = not_after.min(self.not_after);
        let serial = random_serial();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, username);
        if !organisation.is_empty() {
            name.push(DnType::OrganizationName, organisation);
        }
        params.distinguished_name = name;
        // Backdated a little: a server clock slightly behind must not refuse it.
        params.not_before = offset(Utc::now() - chrono::Duration::hours(1));
        params.not_after = offset(not_after);
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if key_type == KeyType::Rsa3072 {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        // The server's `remote-cert-tls client` checks this.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| CaError::Issue(e.to_string()))?;
        Ok(Issued {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            serial: hex::encode(serial),
            not_after,
        })
    }

    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    pub fn key_id(&self) -> rcgen::KeyIdMethod {
        self.key_id.clone()
    }
}

/// A new self-signed CA for `homebase init --ca`: (certificate PEM, key PEM).
pub fn create(common_name: &str, key_type: KeyType, days: u32) -> Result<(String, String), String> {
    let key = generate_key(key_type)?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    let now = Utc::now();
    params.not_before = offset(now - chrono::Duration::hours(1));
    params.not_after = offset(now + chrono::Duration::days(i64::from(days)));
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A new private key. ring makes ECDSA keys; RSA keys come from the `rsa`
/// crate (ring cannot generate them) and are signed with by ring.
pub fn generate_key(key_type: KeyType) -> Result<KeyPair, String> {
    match key_type {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa3072 => {
            use rsa::pkcs8::EncodePrivateKey;
            use rsa::Generate;
            // `Generate` makes 3072-bit keys with e = 65537 from the OS RNG.
            let key = rsa::PrivateKey::generate();
            let der = key
                .to_pkcs8_der()
                .map_err(|e| format!("cannot encode an RSA key: {e}"))?;
            KeyPair::try_from(der.as_bytes())
        }
    }
    .map_err(|e| format!("cannot generate a {} key: {e}", key_type.name()))
}

fn load_key(path: &Path) -> Result<KeyPair, CaError> {
    let read_err = |source| CaError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mode = std::fs::metadata(path)
        .map_err(read_err)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(CaError::KeyMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let key_err = |why: &str| CaError::Key {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    // ring reads PKCS#8 only; say how to convert the other common forms.
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(key_err("the key is encrypted; homebase needs it unencrypted (its file mode protects it): `openssl pkey -in KEY -out KEY.new`"));
    }
    if text.contains("BEGIN EC PRIVATE KEY") || text.contains("BEGIN RSA PRIVATE KEY") {
        return Err(key_err("the key is in the traditional EC/RSA format; homebase reads PKCS#8 (`BEGIN PRIVATE KEY`): `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.new`"));
    }
    if !text.contains("BEGIN PRIVATE KEY") {
        return Err(key_err(
            "not a PEM private key (expected `-----BEGIN PRIVATE KEY-----`)",
        ));
    }
    KeyPair::from_pem(&text)
        .map_err(|_| key_err("not a key homebase can sign with (ECDSA P-256/P-384 or RSA, PKCS#8)"))
}

/// 16 random bytes, positive and without a leading zero byte, so the hex
/// form is the same however a tool prints the serial.
fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f).max(1);
    serial
}

pub use crate::targets::common::pem::to_pem;

pub(super) fn offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

pub(super) fn timestamp(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use x509_parser::prelude::*;

    /// A CA made by `create`, written as files (key 0600).
    fn ca_files(dir: &Path, key_type: KeyType) -> (PathBuf, PathBuf) {
        let (cert, key) = create("Test VPN CA", key_type, 30).unwrap();
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (cert_path, key_path)
    }

    fn issued_cert(issued: &Issued) -> X509Certificate<'_> {
        X509Certificate::from_der(&issued.cert_der).unwrap().1
    }

    #[test]
    fn issues_client_certificates_the_ca_signed() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = ca_files(dir.path(), KeyType::EcdsaP256);
        let ca = Authority::load(&cert_path, &key_path).unwrap();
        let until = Utc::now() + chrono::Duration::days(10);
        let issued = ca
            .issue("emustermann", "Musterstadt", KeyType::EcdsaP256, until)
            .unwrap();
        let cert = issued_cert(&issued);
        let ca_der = x509_parser::pem::parse_x509_pem(&std::fs::read(&cert_path).unwrap())
            .unwrap()
            .1
            .contents;
        let ca_cert = X509Certificate::from_der(&ca_der).unwrap().1;
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(cert.issuer(), ca_cert.subject());
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(cn, "emustermann");
        assert_eq!(cert.validity().not_after.timestamp(), until.timestamp());
        assert!(!cert.is_ca());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert_eq!(hex::encode(cert.raw_serial()), issued.serial);
        // The key is the certificate's, and a new one every time.
        let key = KeyPair::try_from(issued.key_der.as_slice()).unwrap();
        assert_eq!(
            cert.public_key().raw,
            rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
        );
        let again = ca
            .issue("emustermann", "", KeyType::EcdsaP256, until)
            .unwrap();
        assert_ne!(again.serial, issued.serial);
        assert_ne!(again.key_der, issued.key_der);
        assert!(!format!("{issued:?}").contains(&B64.encode(&issued.key_der)[..20]));
    }

    #[test]
    fn validity_is_capped_by_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = ca_files(dir.path(), KeyType::EcdsaP384);
        let ca = Authority::load(&cert_path, &key_path).unwrap();
        let issued = ca
            .issue(
                "a",
                "",
                KeyType::EcdsaP256,
                Utc::now() + chrono::Duration::days(3650),
            )
            .unwrap();
        assert_eq!(issued.not_after, ca.not_after);
        assert_eq!(
            issued_cert(&issued).validity().not_after.timestamp(),
            ca.not_after.timestamp()
        );
    }

    #[test]
    fn rsa_keys_for_clients_and_cas() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = ca_files(dir.path(), KeyType::Rsa3072);
        let ca = Authority::load(&cert_path, &key_path).unwrap();
        let issued = ca
            .issue(
                "r",
                "",
                KeyType::Rsa3072,
                Utc::now() + chrono::Duration::days(1),
            )
            .unwrap();
        let cert = issued_cert(&issued);
        assert_eq!(
            cert.public_key().algorithm.algorithm,
            x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION
        );
        let ca_der = x509_parser::pem::parse_x509_pem(&std::fs::read(&cert_path).unwrap())
            .unwrap()
            .1
            .contents;
        let ca_cert = X509Certificate::from_der(&ca_der).unwrap().1;
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
    }

    #[test]
    fn unusable_ca_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = ca_files(dir.path(), KeyType::EcdsaP256);
        let err = |r: Result<Authority, CaError>| r.unwrap_err().to_string();

        let missing = err(Authority::load(&dir.path().join("nope.crt"), &key_path));
        assert!(missing.contains("nope.crt"), "{missing}");

        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let open = err(Authority::load(&cert_path, &key_path));
        assert!(
            open.contains("0640") && open.contains("chmod 600"),
            "{open}"
        );
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let key_text = std::fs::read_to_string(&key_path).unwrap();
        std::fs::write(&key_path, key_text.replace("PRIVATE KEY", "EC PRIVATE KEY")).unwrap();
        let sec1 = err(Authority::load(&cert_path, &key_path));
        assert!(sec1.contains("PKCS#8") && sec1.contains("ca.key"), "{sec1}");
        std::fs::write(&key_path, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n").unwrap();
        assert!(err(Authority::load(&cert_path, &key_path)).contains("encrypted"));

        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = ca_files(other.path(), KeyType::EcdsaP256);
        let mismatch = err(Authority::load(&cert_path, &other_key));
        assert!(mismatch.contains("does not belong"), "{mismatch}");

        // A client certificate is not a CA.
        std::fs::write(&key_path, &key_text).unwrap();
        let ca = Authority::load(&cert_path, &key_path).unwrap();
        let issued = ca
            .issue(
                "x",
                "",
                KeyType::EcdsaP256,
                Utc::now() + chrono::Duration::days(1),
            )
            .unwrap();
        std::fs::write(
            dir.path().join("client.crt"),
            to_pem("CERTIFICATE", &issued.cert_der),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("client.key"),
            to_pem("PRIVATE KEY", &issued.key_der),
        )
        .unwrap();
        std::fs::set_permissions(
            dir.path().join("client.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let not_ca = err(Authority::load(
            &dir.path().join("client.crt"),
            &dir.path().join("client.key"),
        ));
        assert!(not_ca.contains("not a CA certificate"), "{not_ca}");
        // No error quotes key material.
        for e in [open, sec1, mismatch, not_ca] {
            assert!(!e.contains("MII") && !e.contains(&key_text[30..60]), "{e}");
        }
    }
}
