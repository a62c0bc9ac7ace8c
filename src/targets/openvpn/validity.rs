//! How long a client certificate is valid, and when the plan re-issues it.
//! Pure: the day is an input.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};

use super::config::OpenvpnConfig;
use crate::plan::{Change, IssuedCert};

/// The last moment of access: the end of the person's last day (UTC), or
/// `cert_days` from today when the access has no end.
pub fn not_after(access_end: Option<NaiveDate>, today: NaiveDate, cert_days: u32) -> DateTime<Utc> {
    let day = access_end.unwrap_or(today + Days::new(u64::from(cert_days)));
    let last = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default();
    day.and_time(last).and_utc()
}

/// The change that re-issues the person's certificate, if one is due:
/// none yet, the access end moved, or it lapses within `renew_days` while
/// the access goes on. `None`: the current certificate stays.
pub fn certificate_change(
    current: Option<&IssuedCert>,
    access_end: Option<NaiveDate>,
    today: NaiveDate,
    config: &OpenvpnConfig,
) -> Option<Change> {
    let change = |from: Option<String>, to: String| Change {
        field: "certificate".into(),
        from,
        to: Some(to),
    };
    let Some(cert) = current else {
        return Some(change(None, "issue".into()));
    };
    let was = Some(format!("{} valid until {}", cert.serial, cert.not_after));
    if cert.access_end != access_end {
        let until = access_end.map_or_else(|| "no end".to_string(), |d| d.to_string());
        return Some(change(was, format!("re-issue: access ends {until}")));
    }
    let renew_from = cert.not_after - Days::new(u64::from(config.renew_days));
    let outlives = access_end.is_none_or(|end| end > cert.not_after);
    if today >= renew_from && outlives {
        return Some(change(was, "re-issue: lapses soon".into()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OpenvpnConfig {
        serde_norway::from_str(
            "remote: vpn.example.org\naddress: 10.30.0.1/16\nca_cert: ca.crt\nca_key: ca.key\n",
        )
        .unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn cert(not_after: &str, access_end: Option<&str>) -> IssuedCert {
        IssuedCert {
            serial: "0a".into(),
            not_after: day(not_after),
            access_end: access_end.map(day),
        }
    }

    #[test]
    fn validity_ends_with_the_persons_last_day_or_the_default_lifetime() {
        let today = day("2026-01-10");
        assert_eq!(
            not_after(Some(day("2026-06-30")), today, 365).to_rfc3339(),
            "2026-06-30T23:59:59+00:00"
        );
        assert_eq!(not_after(None, today, 30).date_naive(), day("2026-02-09"));
    }

    #[test]
    fn reissues_only_when_due() {
        let c = config();
        let today = day("2026-01-10");
        assert!(
            certificate_change(None, None, today, &c).is_some(),
            "none yet"
        );
        let fits = cert("2026-06-30", Some("2026-06-30"));
        assert_eq!(
            certificate_change(Some(&fits), Some(day("2026-06-30")), today, &c),
            None
        );
        // The end date moved: the certificate follows it.
        let moved = certificate_change(Some(&fits), Some(day("2026-09-30")), today, &c).unwrap();
        assert_eq!(moved.field, "certificate");
        assert!(moved.to.unwrap().contains("2026-09-30"));
        // A certificate that ends with the access is not renewed near its end.
        let last_days = day("2026-06-20");
        assert_eq!(
            certificate_change(Some(&fits), Some(day("2026-06-30")), last_days, &c),
            None
        );
        // No end date: renewed within renew_days (30) of lapsing, not before.
        let open = cert("2026-02-15", None);
        assert_eq!(
            certificate_change(Some(&open), None, day("2026-01-10"), &c),
            None
        );
        assert!(certificate_change(Some(&open), None, day("2026-01-20"), &c).is_some());
        // Capped by the CA's end while the access goes on: renewed near it.
        let capped = cert("2026-02-15", Some("2030-01-01"));
        assert!(certificate_change(
            Some(&capped),
            Some(day("2030-01-01")),
            day("2026-01-20"),
            &c
        )
        .is_some());
    }
}
