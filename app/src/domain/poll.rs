//! How often the poller reads a vendor's reconciliation API.

use std::fmt;

use thiserror::Error;

use super::excerpt;

/// A vendor's own poll interval, 10 seconds to a day. Written as seconds ("300") or with a
/// unit: "90s", "5m", "2h" (also "5 min", "2 hours"). Vendors without one are polled on the
/// server's schedule (`[poller] interval_secs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PollInterval(u32);

/// Why a poll interval was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PollIntervalError {
    #[error("poll interval {0:?} is not a number of seconds, or a number with s, m or h (such as 90s, 5m, 1h)")]
    Unreadable(String),
    #[error("poll interval {0} is shorter than {min} seconds; vendors limit how often their API may be read", min = PollInterval::MIN_SECS)]
    TooShort(String),
    #[error("poll interval {0} is longer than a day ({max} seconds); webhooks lost for longer would go unnoticed", max = PollInterval::MAX_SECS)]
    TooLong(String),
}

impl PollInterval {
    pub const MIN_SECS: u32 = 10;
    pub const MAX_SECS: u32 = 86_400;

    pub fn from_secs(secs: u64) -> Result<PollInterval, PollIntervalError> {
        if secs < u64::from(Self::MIN_SECS) {
            return Err(PollIntervalError::TooShort(format!("{secs} s")));
        }
        if secs > u64::from(Self::MAX_SECS) {
            return Err(PollIntervalError::TooLong(format!("{secs} s")));
        }
        Ok(PollInterval(secs as u32))
    }

    pub fn parse(input: &str) -> Result<PollInterval, PollIntervalError> {
        let text = input.trim().to_ascii_lowercase();
        let unreadable = || PollIntervalError::Unreadable(excerpt(input));
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let unit = match unit.trim() {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600,
            _ => return Err(unreadable()),
        };
        let count: u64 = digits.parse().map_err(|_| unreadable())?;
        Self::from_secs(count.saturating_mul(unit))
    }

    pub fn secs(self) -> u32 {
        self.0
    }
}

/// The shortest exact way to say it: "90 s", "5 min", "2 h", "1 h 30 min".
impl fmt::Display for PollInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe_secs(u64::from(self.0), f)
    }
}

/// Says a number of seconds the way [`PollInterval`] displays (for the server-wide default too).
pub fn describe_secs(secs: u64, f: &mut impl fmt::Write) -> fmt::Result {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if s != 0 {
        return if secs < 60 {
            write!(f, "{secs} s")
        } else {
            write!(f, "{} min {s} s", secs / 60)
        };
    }
    match (h, m) {
        (0, m) => write!(f, "{m} min"),
        (h, 0) => write!(f, "{h} h"),
        (h, m) => write!(f, "{h} h {m} min"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seconds_and_units() {
        for (text, secs) in [
            ("300", 300),
            (" 90s ", 90),
            ("5m", 300),
            ("5 min", 300),
            ("2h", 7200),
            ("1 HOUR", 3600),
            ("10", 10),
            ("24h", 86_400),
        ] {
            assert_eq!(PollInterval::parse(text).unwrap().secs(), secs, "{text}");
        }
    }

    #[test]
    fn refuses_what_is_unreadable_or_out_of_range() {
        assert!(matches!(
            PollInterval::parse("soon"),
            Err(PollIntervalError::Unreadable(_))
        ));
        assert!(matches!(
            PollInterval::parse("5 days"),
            Err(PollIntervalError::Unreadable(_))
        ));
        assert!(matches!(
            PollInterval::parse("-5"),
            Err(PollIntervalError::Unreadable(_))
        ));
        assert!(matches!(
            PollInterval::parse(""),
            Err(PollIntervalError::Unreadable(_))
        ));
        assert!(matches!(
            PollInterval::parse("9"),
            Err(PollIntervalError::TooShort(_))
        ));
        assert!(matches!(
            PollInterval::parse("25h"),
            Err(PollIntervalError::TooLong(_))
        ));
        assert!(matches!(
            PollInterval::parse("99999999999999999999h"),
            Err(PollIntervalError::Unreadable(_) | PollIntervalError::TooLong(_))
        ));
        let message = PollInterval::parse("9").unwrap_err().to_string();
        assert!(
            message.starts_with("poll interval 9 s is shorter than 10 seconds"),
            "{message}"
        );
    }

    #[test]
    fn displays_exactly() {
        let shown = |secs| PollInterval::from_secs(secs).unwrap().to_string();
        assert_eq!(shown(45), "45 s");
        assert_eq!(shown(90), "1 min 30 s");
        assert_eq!(shown(300), "5 min");
        assert_eq!(shown(3600), "1 h");
        assert_eq!(shown(5400), "1 h 30 min");
        // What has one unit reads back as the same interval.
        for secs in [10, 45, 600, 3600, 86_400] {
            let interval = PollInterval::from_secs(secs).unwrap();
            assert_eq!(PollInterval::parse(&interval.to_string()), Ok(interval));
        }
    }
}
