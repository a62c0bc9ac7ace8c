//! TLS for LDAPS and StartTLS: always verified, against the system's trust
//! store or the CA certificates of the target's `ca_file`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The client configuration for one target. Errors are for the admin.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            let mut found = 0;
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
                found += 1;
            }
            if found == 0 {
                return Err(format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
            if roots.is_empty() {
                return Err(
                    "the system's trust store has no CA certificates; name the directory's CA in `ca_file`"
                        .to_string(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
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
