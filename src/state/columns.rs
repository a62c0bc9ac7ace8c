//! How values are written into columns and read back. Text everywhere, so the
//! file stays readable with the `sqlite3` shell.

use std::net::IpAddr;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

use super::StateError;

/// UTC instant as RFC 3339 with milliseconds; sorts like the time it stands for.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StateError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|err| corrupt("timestamp", text, err))
}

pub fn date(date: Option<NaiveDate>) -> Option<String> {
    date.map(|d| d.format("%Y-%m-%d").to_string())
}

pub fn parse_date(text: Option<String>) -> Result<Option<NaiveDate>, StateError> {
    text.map(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|err| corrupt("date", &t, err)))
        .transpose()
}

pub fn parse_address(text: &str) -> Result<IpAddr, StateError> {
    text.parse()
        .map_err(|err| corrupt("VPN address", text, err))
}

pub fn groups(groups: &[String]) -> Result<String, StateError> {
    serde_json::to_string(groups).map_err(|err| corrupt("group list", "", err))
}

pub fn parse_groups(text: &str) -> Result<Vec<String>, StateError> {
    serde_json::from_str(text).map_err(|err| corrupt("group list", text, err))
}

pub fn corrupt(what: &str, text: &str, err: impl std::fmt::Display) -> StateError {
    StateError::Corrupt {
        what: what.to_string(),
        detail: format!("{text:?}: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T08:15:30.250Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2026-03-01T08:15:30.250Z");
        assert_eq!(parse_timestamp(&timestamp(at)).unwrap(), at);

        let day = NaiveDate::from_ymd_opt(2026, 12, 31);
        assert_eq!(parse_date(date(day)).unwrap(), day);
        assert_eq!(parse_date(None).unwrap(), None);

        let list = vec!["vpn-users".to_string(), "a,b \"c\"".to_string()];
        assert_eq!(parse_groups(&groups(&list).unwrap()).unwrap(), list);
    }

    #[test]
    fn unreadable_values_are_corrupt_errors() {
        let err = parse_date(Some("31.12.2026".into())).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("31.12.2026"), "{err}");
        assert!(parse_address("10.0.0.300").is_err());
    }
}
