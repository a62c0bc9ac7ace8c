//! Dates as HR lists write them: ISO `2026-03-31` or German `31.03.2026`
//! (also `31.3.2026`), optionally followed by a time that is ignored.

use chrono::{Datelike, NaiveDate};

/// What dates look like, for messages.
pub(super) const DATE_FORMATS: &str = "a date like 2026-03-31 or 31.03.2026";

/// Why a value is not a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DateError {
    /// Not written like a date at all.
    Malformed,
    /// Written like a date, but the calendar has no such day; says why.
    Impossible(String),
    /// A year no staff list means (a typo like `0226`).
    OutOfRange,
}

pub(super) const MIN_YEAR: i32 = 1900;
pub(super) const MAX_YEAR: i32 = 2199;

/// Parse a trimmed date value.
pub(super) fn parse_date(value: &str) -> Result<NaiveDate, DateError> {
    let date = strip_time(value);
    let (year, month, day) = if let Some(parts) = split3(date, '-') {
        // ISO: 2026-03-31
        match parts {
            [y, m, d]
                if y.len() == 4 && (1..=2).contains(&m.len()) && (1..=2).contains(&d.len()) =>
            {
                (y, m, d)
            }
            _ => return Err(DateError::Malformed),
        }
    } else if let Some(parts) = split3(date, '.') {
        // German: 31.03.2026 or 31.3.2026
        match parts {
            [d, m, y]
                if y.len() == 4 && (1..=2).contains(&m.len()) && (1..=2).contains(&d.len()) =>
            {
                (y, m, d)
            }
            _ => return Err(DateError::Malformed),
        }
    } else {
        return Err(DateError::Malformed);
    };
    let (Some(year), Some(month), Some(day)) = (digits(year), digits(month), digits(day)) else {
        return Err(DateError::Malformed);
    };
    let year = year as i32;
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err(DateError::OutOfRange);
    }
    if !(1..=12).contains(&month) {
        return Err(DateError::Impossible(format!("there is no month {month}")));
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| {
        DateError::Impossible(format!(
            "{} {year} has {} days",
            MONTHS[month as usize - 1],
            days_in_month(year, month)
        ))
    })
}

/// A date-only prefix of a value that may carry a time: `2026-03-31T00:00:00`,
/// `2026-03-31 08:00`, `31.03.2026 00:00`.
fn strip_time(value: &str) -> &str {
    match value.split_once(['T', ' ']) {
        Some((date, time))
            if !time.is_empty()
                && time
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b":.Z+-".contains(&b))
                && time.contains(':') =>
        {
            date
        }
        _ => value,
    }
}

fn split3(value: &str, separator: char) -> Option<[&str; 3]> {
    let mut parts = value.split(separator);
    let first = parts.next()?;
    let (second, third) = (parts.next()?, parts.next()?);
    match parts.next() {
        Some(_) => Some(["", "", ""]), // four parts: malformed, but this separator was meant
        None => Some([first, second, third]),
    }
}

fn digits(part: &str) -> Option<u32> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    #[test]
    fn iso_and_german_dates() {
        assert_eq!(parse_date("2026-03-31"), Ok(date(2026, 3, 31)));
        assert_eq!(parse_date("2026-3-1"), Ok(date(2026, 3, 1)));
        assert_eq!(parse_date("31.03.2026"), Ok(date(2026, 3, 31)));
        assert_eq!(parse_date("31.3.2026"), Ok(date(2026, 3, 31)));
        assert_eq!(parse_date("1.3.2026"), Ok(date(2026, 3, 1)));
        assert_eq!(parse_date("29.02.2028"), Ok(date(2028, 2, 29)));
    }

    #[test]
    fn a_time_after_the_date_is_ignored() {
        assert_eq!(parse_date("2026-03-31T00:00:00"), Ok(date(2026, 3, 31)));
        assert_eq!(parse_date("2026-03-31 08:30"), Ok(date(2026, 3, 31)));
        assert_eq!(parse_date("31.03.2026 00:00"), Ok(date(2026, 3, 31)));
        assert_eq!(parse_date("2026-03-31T00:00:00Z"), Ok(date(2026, 3, 31)));
    }

    #[test]
    fn impossible_dates_say_why() {
        assert_eq!(
            parse_date("31.02.2026"),
            Err(DateError::Impossible("February 2026 has 28 days".into()))
        );
        assert_eq!(
            parse_date("29.02.2026"),
            Err(DateError::Impossible("February 2026 has 28 days".into()))
        );
        assert_eq!(
            parse_date("2026-04-31"),
            Err(DateError::Impossible("April 2026 has 30 days".into()))
        );
        assert_eq!(
            parse_date("01.13.2026"),
            Err(DateError::Impossible("there is no month 13".into()))
        );
        assert_eq!(
            parse_date("00.12.2026"),
            Err(DateError::Impossible("December 2026 has 31 days".into()))
        );
    }

    #[test]
    fn malformed_dates() {
        for value in [
            "",
            "März 2026",
            "31/03/2026",
            "03/31/2026",
            "31.03.26",
            "2026-03",
            "2026-03-31-1",
            "1.2.3.2026",
            "31.03.2026x",
            "2026-03-31 noon",
            "+2026-03-31",
            "٣١.٠٣.٢٠٢٦",
            "46112",
        ] {
            assert_eq!(parse_date(value), Err(DateError::Malformed), "{value}");
        }
    }

    #[test]
    fn implausible_years() {
        assert_eq!(parse_date("31.03.0226"), Err(DateError::OutOfRange));
        assert_eq!(parse_date("2260-03-31"), Err(DateError::OutOfRange));
    }
}
