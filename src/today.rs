//! The day a plan is made for. It is today, unless `HOMEBASE_TODAY` pins it:
//! end dates, expiry warnings and profile lifetimes are all counted from this
//! one day, so pinning it makes a demonstration or a test show the same on
//! any calendar day. Real runs leave it unset.

use chrono::NaiveDate;

use crate::error::Failure;

/// The environment variable that pins the day (`YYYY-MM-DD`).
pub const PIN_VAR: &str = "HOMEBASE_TODAY";

/// The day plans are made for, and whether it was pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Today {
    pub day: NaiveDate,
    pub pinned: bool,
}

impl Today {
    /// Today's local date, or the day `HOMEBASE_TODAY` names. A value that is
    /// not a date is bad input (exit 2), never silently today.
    pub fn resolve() -> Result<Today, Failure> {
        match std::env::var_os(PIN_VAR) {
            None => Ok(Today::now()),
            Some(value) if value.is_empty() => Ok(Today::now()),
            Some(value) => {
                let text = value.to_string_lossy();
                parse(&text).map(|day| Today { day, pinned: true })
            }
        }
    }

    pub fn now() -> Today {
        Today {
            day: chrono::Local::now().date_naive(),
            pinned: false,
        }
    }
}

fn parse(text: &str) -> Result<NaiveDate, Failure> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        Failure::usage_with_hint(
            format!("{PIN_VAR}=\"{text}\" is not a date (expected YYYY-MM-DD)"),
            format!("unset {PIN_VAR} to plan for today"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_day_is_an_iso_date() {
        assert_eq!(
            parse("2026-12-04").ok(),
            NaiveDate::from_ymd_opt(2026, 12, 4)
        );
        assert_eq!(
            parse(" 2030-02-28\n").ok(),
            NaiveDate::from_ymd_opt(2030, 2, 28)
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_value() {
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "04.12.2026",
            "tomorrow",
            "2026-12-04T10:00",
        ] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.contains(bad) && err.contains("YYYY-MM-DD"), "{err}");
        }
    }
}
