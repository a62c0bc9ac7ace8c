//! The certificate revocation list for the server's `crl-verify`: every
//! revoked certificate that has not expired yet, signed by the CA, valid for
//! `crl_days`. OpenVPN refuses every client once the CRL's next update has
//! passed, so it is re-issued `crl_warn_days` before that.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rcgen::{CertificateRevocationListParams, RevocationReason, RevokedCertParams};

use super::ca::{offset, timestamp, Authority};
use super::easyrsa::IndexEntry;
use crate::state::Certificate;

/// What an existing CRL file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFile {
    pub next_update: Option<DateTime<Utc>>,
    /// Revoked serials, lower-case hex.
    pub serials: BTreeSet<String>,
    /// What it lists, with when and why.
    pub entries: Vec<Revocation>,
}

/// Read a CRL file: `Ok(None)` when there is none, `Err` when it is not a CRL.
pub fn read(path: &Path) -> Result<Option<CrlFile>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes).map_err(|_| "not a PEM file")?;
    let (_, crl) =
        x509_parser::parse_x509_crl(&pem.contents).map_err(|e| format!("not a CRL ({e})"))?;
    Ok(Some(CrlFile {
        next_update: crl.next_update().map(|t| timestamp(t.timestamp())),
        serials: crl
            .iter_revoked_certificates()
            .map(|r| serial_hex(r.raw_serial()))
            .collect(),
        entries: crl
            .iter_revoked_certificates()
            .map(|r| Revocation {
                serial: serial_hex(r.raw_serial()),
                at: timestamp(r.revocation_date.timestamp()),
                reason: reason(r.reason_code().map_or(0, |(_, code)| code.0)),
            })
            .collect(),
    }))
}

/// The CRL reason code's number as rcgen names it (unknown ones as unspecified).
fn reason(code: u8) -> RevocationReason {
    match code {
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => RevocationReason::Unspecified,
    }
}

/// One certificate a CRL lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Lower-case hex, as homebase records serials.
    pub serial: String,
    pub at: DateTime<Utc>,
    pub reason: RevocationReason,
}

/// What a CRL must list: every revoked certificate that has not expired —
/// homebase's own (from the state store), those of the easy-rsa PKI the CA
/// belongs to (`pki`), and whatever the CRL on disk (`written`) lists that
/// the state store does not know: a lost and rebuilt state store, or an
/// adopted PKI, never un-revokes anyone.
pub fn revocations(
    certificates: &[Certificate],
    pki: &[IndexEntry],
    written: Option<&CrlFile>,
    now: DateTime<Utc>,
) -> Vec<Revocation> {
    let own = certificates
        .iter()
        .filter(|c| c.not_after > now)
        .filter_map(|c| {
            Some(Revocation {
                serial: c.serial.clone(),
                at: c.revoked?,
                reason: if c.superseded {
                    RevocationReason::Superseded
                } else {
                    RevocationReason::CessationOfOperation
                },
            })
        });
    let foreign = pki.iter().filter(|e| e.not_after > now).filter_map(|e| {
        let (at, reason) = e.revoked?;
        Some(Revocation {
            serial: e.serial.clone(),
            at,
            reason,
        })
    });
    let known: BTreeSet<&str> = certificates.iter().map(|c| c.serial.as_str()).collect();
    let kept = written
        .into_iter()
        .flat_map(|crl| &crl.entries)
        .filter(|r| !known.contains(r.serial.as_str()))
        .cloned();
    let mut seen = BTreeSet::new();
    own.chain(foreign)
        .chain(kept)
        .filter(|r| seen.insert(r.serial.clone()))
        .collect()
}

/// The serials a CRL must list.
pub fn due_serials(revocations: &[Revocation]) -> BTreeSet<String> {
    revocations.iter().map(|r| r.serial.clone()).collect()
}

/// Why the CRL file must be written again, if it must.
pub fn staleness(
    file: Result<Option<CrlFile>, String>,
    due: &BTreeSet<String>,
    now: DateTime<Utc>,
    warn_days: u32,
) -> Option<String> {
    match file {
        Err(why) => Some(format!("unreadable: {why}")),
        Ok(None) => Some("missing".into()),
        Ok(Some(crl)) => match crl.next_update {
            None => Some("has no next update".into()),
            Some(next) if next <= now + Duration::days(i64::from(warn_days)) => Some(format!(
                "its next update is due on {} (within {warn_days} days); an expired CRL locks every client out",
                next.format("%Y-%m-%d %H:%M UTC")
            )),
            Some(_) if &crl.serials != due => Some(format!(
                "lists {} revoked certificate(s), the state store {}",
                crl.serials.len(),
                due.len()
            )),
            Some(_) => None,
        },
    }
}

/// A new CRL (PEM) listing `revocations`.
pub fn build(
    authority: &Authority,
    revocations: &[Revocation],
    now: DateTime<Utc>,
    days: u32,
) -> Result<String, String> {
    let revoked_certs = revocations
        .iter()
        .filter_map(|r| {
            let serial = hex::decode(&r.serial).ok()?;
            Some(RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(&serial),
                revocation_time: offset(r.at),
                reason_code: Some(r.reason),
                invalidity_date: None,
            })
        })
        .collect();
    // The CRL number must only grow: the issue time in seconds does.
    let number = now.timestamp().max(1).to_be_bytes();
    let params = CertificateRevocationListParams {
        this_update: offset(now - Duration::minutes(5)),
        next_update: offset(now + Duration::days(i64::from(days))),
        crl_number: rcgen::SerialNumber::from_slice(&number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: authority.key_id(),
    };
    let crl = params
        .signed_by(authority.issuer())
        .map_err(|e| format!("cannot sign the CRL: {e}"))?;
    crl.pem().map_err(|e| e.to_string())
}

/// Lower-case hex without leading zero bytes (DER may add one for the sign).
fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    hex::encode(&raw[start..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use x509_parser::prelude::*;

    fn authority(dir: &Path) -> Authority {
        let (cert, key) = super::super::ca::create("CRL Test CA", Default::default(), 30).unwrap();
        std::fs::write(dir.join("ca.crt"), cert).unwrap();
        std::fs::write(dir.join("ca.key"), key).unwrap();
        std::fs::set_permissions(dir.join("ca.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        Authority::load(&dir.join("ca.crt"), &dir.join("ca.key")).unwrap()
    }

    fn cert(serial: &str, days: i64, revoked: bool) -> Certificate {
        let now = Utc::now();
        Certificate {
            serial: serial.into(),
            person_id: "P1".into(),
            not_after: now + Duration::days(days),
            access_end: None,
            revoked: revoked.then_some(now),
            superseded: false,
        }
    }

    #[test]
    fn lists_revoked_unexpired_certificates_signed_by_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = authority(dir.path());
        let now = Utc::now();
        let certs = [
            cert("0a01", 10, true),
            cert("0b02", 10, false),
            cert("0c03", -1, true),
        ];
        let revoked = revocations(&certs, &[], None, now);
        let pem = build(&ca, &revoked, now, 30).unwrap();
        std::fs::write(dir.path().join("crl.pem"), &pem).unwrap();
        let file = read(&dir.path().join("crl.pem")).unwrap().unwrap();
        assert_eq!(file.serials, BTreeSet::from(["0a01".to_string()]));
        assert_eq!(file.serials, due_serials(&revoked));
        let next = file.next_update.unwrap();
        assert!((next - (now + Duration::days(30))).num_seconds().abs() < 2);
        // Signed by the CA's key.
        let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents;
        let (_, crl) = parse_x509_crl(&der).unwrap();
        let ca_der = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes())
            .unwrap()
            .1
            .contents;
        let ca_cert = X509Certificate::from_der(&ca_der).unwrap().1;
        assert_eq!(crl.issuer(), ca_cert.subject());
        crl.verify_signature(ca_cert.public_key()).unwrap();
    }

    #[test]
    fn keeps_what_easy_rsa_revoked_beside_homebases_own() {
        let now = Utc::now();
        let pki = crate::targets::openvpn::easyrsa::parse_index(
            "R\t491231235959Z\t200101000000Z,keyCompromise\t0A01\tunknown\t/CN=a\n\
             R\t200101000000Z\t190101000000Z\t0D04\tunknown\t/CN=expired\n\
             V\t491231235959Z\t\t0E05\tunknown\t/CN=valid\n",
        )
        .unwrap();
        let certs = [cert("0a01", 10, true), cert("0b02", 10, true)];
        let revoked = revocations(&certs, &pki, None, now);
        // Each serial once; an expired one and a valid one not at all.
        assert_eq!(
            due_serials(&revoked),
            BTreeSet::from(["0a01".to_string(), "0b02".to_string()])
        );
        let only_pki = revocations(&[], &pki, None, now);
        assert_eq!(only_pki.len(), 1);
        assert_eq!(only_pki[0].reason, RevocationReason::KeyCompromise);
        assert_eq!(only_pki[0].at.to_rfc3339(), "2020-01-01T00:00:00+00:00");
    }

    #[test]
    fn a_crl_keeps_what_it_listed_that_the_state_store_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let ca = authority(dir.path());
        let now = Utc::now();
        // Written before the state store was lost: two revocations.
        let before = [cert("0a01", 10, true), cert("0b02", 10, true)];
        let pem = build(&ca, &revocations(&before, &[], None, now), now, 30).unwrap();
        std::fs::write(dir.path().join("crl.pem"), &pem).unwrap();
        let written = read(&dir.path().join("crl.pem")).unwrap().unwrap();
        assert_eq!(written.entries.len(), 2);
        assert_eq!(
            written.entries[0].reason,
            RevocationReason::CessationOfOperation
        );
        // The rebuilt store knows 0b02 as valid again (re-adopted), not 0a01.
        let after = [cert("0b02", 10, false)];
        let due = due_serials(&revocations(&after, &[], Some(&written), now));
        assert_eq!(due, BTreeSet::from(["0a01".to_string()]));
    }

    #[test]
    fn is_stale_when_missing_out_of_date_or_due() {
        let now = Utc::now();
        let due = BTreeSet::from(["0a".to_string()]);
        let fresh = |days: i64, serials: &[&str]| {
            Ok(Some(CrlFile {
                next_update: Some(now + Duration::days(days)),
                serials: serials.iter().map(|s| s.to_string()).collect(),
                entries: Vec::new(),
            }))
        };
        assert_eq!(staleness(fresh(30, &["0a"]), &due, now, 7), None);
        assert!(staleness(Ok(None), &due, now, 7)
            .unwrap()
            .contains("missing"));
        assert!(staleness(Err("x".into()), &due, now, 7)
            .unwrap()
            .contains("unreadable"));
        assert!(staleness(fresh(30, &[]), &due, now, 7)
            .unwrap()
            .contains("lists 0"));
        assert!(staleness(fresh(5, &["0a"]), &due, now, 7)
            .unwrap()
            .contains("next update is due"));
    }
}
