//! Verified TLS for every target and the PostgreSQL state: rustls on ring, against the system's trust
//! store or the CA certificates of the target's `ca_file`. No way to turn
//! verification off.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The client configuration of one target (or the state's server). Errors
/// are for the admin.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    format!("{} is not a PEM certificate file: {e}", path.display())
                })?;
                roots.add(cert).map_err(|e| {
                    format!(
                        "{}: a certificate is not usable as a CA: {e}",
                        path.display()
                    )
                })?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
        }
        None => {
            // Unreadable system certificates are skipped, as browsers do; a
            // server whose CA is missing then fails its handshake with
            // "unknown issuer", which names the fix (`ca_file`).
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(
                    "the system's trust store has no CA certificates; name the server's CA in `ca_file`"
                        .into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = client_config(Some(&path)).err().unwrap();
        assert!(err.contains("no PEM certificate"), "{err}");
        let err = client_config(Some(&dir.path().join("missing.pem")))
            .err()
            .unwrap();
        assert!(err.contains("cannot read the CA file"), "{err}");
    }
}
