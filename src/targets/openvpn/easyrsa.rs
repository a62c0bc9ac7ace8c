//! An existing easy-rsa PKI beside the CA: its `index.txt` says which client
//! certificates the CA signed and which it revoked. homebase reads it, never
//! writes it:
//! - `adopt` records the valid certificates whose common name names a person,
//!   so they keep their working `.ovpn` until renewal is due;
//! - the CRL homebase writes lists every certificate easy-rsa revoked, so
//!   nobody revoked before homebase came (or revoked with easy-rsa since)
//!   gets access back.
//!
//! `index.txt` is OpenSSL's `ca` database, one certificate per line with six
//! tab-separated fields: status (`V` valid, `R` revoked, `E` expired), expiry
//! time, revocation time (`R` only, optionally `,reason`), serial in hex,
//! file name (easy-rsa writes `unknown`), subject in OpenSSL's one-line form
//! (`/CN=tmeyer`). Times are UTCTime (`YYMMDDHHMMSSZ`, years 50–99 are 19xx)
//! or, from 2050 on, GeneralizedTime (`YYYYMMDDHHMMSSZ`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use rcgen::RevocationReason;

/// The index file of the PKI, relative to the PKI folder.
pub const INDEX: &str = "index.txt";

/// A line of `index.txt` that cannot be read: the whole index is refused,
/// since a skipped line could be a revocation.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {why}")]
pub struct IndexError {
    pub path: String,
    /// 0 when the file itself cannot be read.
    pub line: usize,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Valid,
    Revoked,
    Expired,
}

/// One certificate the CA signed, as the index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub status: Status,
    pub not_after: DateTime<Utc>,
    /// When and why it was revoked (`R` lines).
    pub revoked: Option<(DateTime<Utc>, RevocationReason)>,
    /// Lower-case hex without leading zero bytes, as homebase records serials.
    pub serial: String,
    /// The subject's last `CN`, if it has one.
    pub common_name: Option<String>,
}

impl IndexEntry {
    /// Valid by the index and by the clock.
    pub fn is_valid(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Valid && self.not_after > now
    }
}

/// The PKI folder for a CA certificate: `configured`, or the CA
/// certificate's own folder when it holds an `index.txt` (easy-rsa keeps
/// `ca.crt` there), so pointing `ca_cert` at `pki/ca.crt` is enough.
pub fn locate(configured: Option<PathBuf>, ca_cert: &Path) -> Option<PathBuf> {
    configured.or_else(|| {
        ca_cert
            .parent()
            .filter(|dir| dir.join(INDEX).is_file())
            .map(Path::to_path_buf)
    })
}

/// Every entry of `<pki>/index.txt`, in file order.
pub fn read_index(pki: &Path) -> Result<Vec<IndexEntry>, IndexError> {
    let path = pki.join(INDEX);
    let text = std::fs::read_to_string(&path).map_err(|e| IndexError {
        path: path.display().to_string(),
        line: 0,
        why: format!("cannot read the easy-rsa index ({e})"),
    })?;
    parse_index(&text).map_err(|(line, why)| IndexError {
        path: path.display().to_string(),
        line,
        why,
    })
}

/// Parse the text of an index; errors are (line, what is wrong).
pub fn parse_index(text: &str) -> Result<Vec<IndexEntry>, (usize, String)> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if line.trim().is_empty() {
            continue;
        }
        entries.push(parse_line(line).map_err(|why| (number, why))?);
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Result<IndexEntry, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [status, expiry, revocation, serial, _file, subject] = fields[..] else {
        return Err(format!(
            "expected 6 tab-separated fields (status, expiry, revocation, serial, file, subject), found {}",
            fields.len()
        ));
    };
    let status = match status {
        "V" => Status::Valid,
        "R" => Status::Revoked,
        "E" => Status::Expired,
        other => return Err(format!("status \"{other}\": expected V, R or E")),
    };
    let not_after = time(expiry).map_err(|why| format!("expiry: {why}"))?;
    let revoked = match (status, revocation) {
        (Status::Revoked, "") => {
            return Err("a revoked certificate without a revocation time".into())
        }
        (Status::Revoked, text) => {
            // `time[,reason[,data]]`: `keyTime` and `holdInstruction` carry data.
            let mut parts = text.split(',');
            let at = time(parts.next().unwrap_or_default())
                .map_err(|why| format!("revocation time: {why}"))?;
            Some((at, reason_code(parts.next().unwrap_or_default())?))
        }
        _ => None,
    };
    Ok(IndexEntry {
        status,
        not_after,
        revoked,
        serial: serial_hex(serial).ok_or_else(|| format!("serial \"{serial}\" is not hex"))?,
        common_name: common_name(subject),
    })
}

/// `YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ`, always UTC.
fn time(text: &str) -> Result<DateTime<Utc>, String> {
    let bad = || format!("\"{text}\" is not a time like 290309055314Z");
    let digits = text.strip_suffix('Z').ok_or_else(bad)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (year, rest) = match digits.len() {
        12 => {
            let yy: i32 = digits[..2].parse().map_err(|_| bad())?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        14 => (digits[..4].parse().map_err(|_| bad())?, &digits[4..]),
        _ => return Err(bad()),
    };
    let part = |i: usize| rest[i..i + 2].parse::<u32>().map_err(|_| bad());
    let (month, day) = (part(0)?, part(2)?);
    let (hour, minute, second) = (part(4)?, part(6)?, part(8)?);
    NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .map(|t| t.and_utc())
        .ok_or_else(bad)
}

/// OpenSSL's names of the CRL reason codes; empty means none given.
fn reason_code(name: &str) -> Result<RevocationReason, String> {
    Ok(match name {
        "" | "unspecified" => RevocationReason::Unspecified,
        "keyCompromise" | "keyTime" => RevocationReason::KeyCompromise,
        "CACompromise" | "CAkeyTime" => RevocationReason::CaCompromise,
        "affiliationChanged" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessationOfOperation" => RevocationReason::CessationOfOperation,
        // A hold is a revocation until it is lifted (easy-rsa cannot lift it).
        "certificateHold" | "holdInstruction" => RevocationReason::CertificateHold,
        "removeFromCRL" => RevocationReason::RemoveFromCrl,
        other => return Err(format!("unknown revocation reason \"{other}\"")),
    })
}

/// Lower-case hex without leading zero bytes (the form `crl::read` gives).
pub fn serial_hex(text: &str) -> Option<String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut hex = text.to_ascii_lowercase();
    if hex.len() % 2 == 1 {
        hex.insert(0, '0');
    }
    while hex.len() > 2 && hex.starts_with("00") {
        hex.drain(..2);
    }
    Some(hex)
}

/// The value of the last `/CN=` of a one-line subject. OpenSSL does not
/// escape `/` in values, so a value runs up to the next `/KEY=`.
fn common_name(subject: &str) -> Option<String> {
    let start = subject.rfind("/CN=")? + 4;
    let rest = &subject[start..];
    let end = rest
        .match_indices('/')
        .map(|(i, _)| i)
        .find(|&i| {
            let key = rest[i + 1..].split('=').next().unwrap_or("");
            rest[i + 1..].contains('=')
                && !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .unwrap_or(rest.len());
    let cn = rest[..end].trim();
    (!cn.is_empty()).then(|| cn.to_string())
}

/// The address a client-config-dir file pushes (`ifconfig-push ADDR MASK`),
/// for a certificate adopted together with its address.
pub fn pushed_address(ccd: &Path, common_name: &str) -> Option<std::net::IpAddr> {
    if !super::ccd::is_file_name(common_name) {
        return None;
    }
    let text = std::fs::read_to_string(ccd.join(common_name)).ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("ifconfig-push") | Some("ifconfig-ipv6-push") => words
                .next()
                .and_then(|a| a.split('/').next())
                .and_then(|a| a.parse().ok()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX_TEXT: &str =
        "V\t290309055314Z\t\tB120D660BFE37566E51860915D452E49\tunknown\t/CN=user1\n\
R\t290309055314Z\t261205055315Z\t7628349A4A4C32A3A53CF2F83363BC86\tunknown\t/CN=user2\n\
R\t290309055314Z\t261205055315Z,keyCompromise\t00A1\tunknown\t/C=DE/O=Stadt/CN=a/b c\n\
E\t201231235959Z\t\t0F\tunknown\t/CN=old\n\
V\t20600101000000Z\t\t01\tunknown\t/O=x\n";

    #[test]
    fn reads_what_easy_rsa_writes() {
        let entries = parse_index(INDEX_TEXT).unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0].status, Status::Valid);
        assert_eq!(entries[0].serial, "b120d660bfe37566e51860915d452e49");
        assert_eq!(entries[0].common_name.as_deref(), Some("user1"));
        assert_eq!(
            entries[0].not_after.to_rfc3339(),
            "2029-03-09T05:53:14+00:00"
        );
        let (at, reason) = entries[1].revoked.unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-05T05:53:15+00:00");
        assert_eq!(reason, RevocationReason::Unspecified);
        // A leading zero byte goes, a `/` inside a value stays.
        assert_eq!(entries[2].serial, "a1");
        assert_eq!(entries[2].common_name.as_deref(), Some("a/b c"));
        assert_eq!(
            entries[2].revoked.unwrap().1,
            RevocationReason::KeyCompromise
        );
        assert_eq!(entries[3].status, Status::Expired);
        assert_eq!(
            entries[4].not_after.to_rfc3339(),
            "2060-01-01T00:00:00+00:00"
        );
        assert_eq!(entries[4].common_name, None);
        let now: DateTime<Utc> = "2026-12-05T00:00:00Z".parse().unwrap();
        assert!(entries[0].is_valid(now));
        assert!(!entries[1].is_valid(now));
    }

    #[test]
    fn a_broken_line_is_named_by_its_number() {
        let cases = [
            ("V\t290309055314Z\t\tB1\tunknown\n", "6 tab-separated"),
            ("X\t290309055314Z\t\tB1\tunknown\t/CN=a\n", "status \"X\""),
            ("V\t2903090553Z\t\tB1\tunknown\t/CN=a\n", "expiry"),
            (
                "R\t290309055314Z\t\tB1\tunknown\t/CN=a\n",
                "without a revocation time",
            ),
            (
                "R\t290309055314Z\t261205055315Z,oops\tB1\tunknown\t/CN=a\n",
                "reason \"oops\"",
            ),
            ("V\t290309055314Z\t\tXYZ\tunknown\t/CN=a\n", "not hex"),
            ("V\t291309055314Z\t\tB1\tunknown\t/CN=a\n", "expiry"),
        ];
        for (line, want) in cases {
            let text = format!("V\t290309055314Z\t\t01\tunknown\t/CN=ok\n\n{line}");
            let (number, why) = parse_index(&text).unwrap_err();
            assert_eq!(number, 3, "{line:?}");
            assert!(why.contains(want), "{line:?}: {why}");
        }
    }

    #[test]
    fn the_index_beside_the_ca_certificate_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        assert_eq!(locate(None, &ca), None);
        std::fs::write(dir.path().join(INDEX), "").unwrap();
        assert_eq!(locate(None, &ca), Some(dir.path().to_path_buf()));
        let other = PathBuf::from("/elsewhere");
        assert_eq!(locate(Some(other.clone()), &ca), Some(other));
    }

    #[test]
    fn a_ccd_file_gives_the_pushed_address() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("tmeyer"),
            "# made by hand\nifconfig-push 10.30.4.7 255.255.0.0\n",
        )
        .unwrap();
        assert_eq!(
            pushed_address(dir.path(), "tmeyer"),
            Some("10.30.4.7".parse().unwrap())
        );
        assert_eq!(pushed_address(dir.path(), "nobody"), None);
        assert_eq!(pushed_address(dir.path(), "../tmeyer"), None);
    }
}
