//! The human units SST's component arguments use: durations such as
//! `"10 seconds"`, sizes such as `"1024 MB"`, and access log retention.

use std::time::Duration;

/// Parses SST's `Duration` strings: `"<number> <unit>"` where unit is
/// second(s), minute(s), hour(s) or day(s); `ms` is accepted for tests.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_quantity(text)?;
    let seconds_per_unit = match unit {
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "second" | "seconds" | "s" => 1.0,
        "minute" | "minutes" => 60.0,
        "hour" | "hours" => 3600.0,
        "day" | "days" => 86_400.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in \"{text}\" (expected seconds, minutes, hours or days, e.g. \"10 seconds\")"
            ));
        }
    };
    let seconds = number * seconds_per_unit;
    if seconds > MAX_DURATION.as_secs_f64() {
        return Err(format!(
            "\"{text}\" is longer than wsgate's maximum duration of 10 years"
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("\"{text}\": {e}"))
}

/// The longest duration any key takes: far beyond every quota, and small
/// enough that deadlines computed from it never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);
/// The largest size any key takes (1 TB).
pub const MAX_SIZE: u64 = 1 << 40;

/// Parses a size such as `"128 KB"` or `"1024 MB"`. As in AWS's quotas,
/// KB and MB are binary (1 KB = 1024 bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_quantity(text)?;
    let bytes_per_unit: f64 = match unit {
        "B" | "bytes" => 1.0,
        "KB" | "KiB" => 1024.0,
        "MB" | "MiB" => 1024.0 * 1024.0,
        "GB" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in \"{text}\" (expected B, KB, MB or GB, e.g. \"128 KB\")"
            ));
        }
    };
    let bytes = (number * bytes_per_unit).round();
    if bytes > MAX_SIZE as f64 {
        return Err(format!(
            "\"{text}\" is larger than wsgate's maximum size of 1 TB"
        ));
    }
    Ok(bytes as u64)
}

fn split_quantity(text: &str) -> Result<(f64, &str), String> {
    let mut parts = text.split_whitespace();
    let (Some(number), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "\"{text}\" is not of the form \"<number> <unit>\", e.g. \"10 seconds\""
        ));
    };
    let number: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("\"{number}\" in \"{text}\" is not a non-negative number"))?;
    Ok((number, unit))
}

/// SST's `accessLog.retention` values, exactly.
pub const RETENTION_VALUES: &[&str] = &[
    "1 day",
    "3 days",
    "5 days",
    "1 week",
    "2 weeks",
    "1 month",
    "2 months",
    "3 months",
    "4 months",
    "5 months",
    "6 months",
    "1 year",
    "13 months",
    "18 months",
    "2 years",
    "3 years",
    "5 years",
    "6 years",
    "7 years",
    "8 years",
    "9 years",
    "10 years",
    "forever",
];

/// How long access log files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Days(u32),
    Forever,
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Retention::Days(1) => f.write_str("1 day"),
            Retention::Days(days) => write!(f, "{days} days"),
            Retention::Forever => f.write_str("forever"),
        }
    }
}

/// Parses a retention string; anything outside SST's enum is an error that
/// lists the allowed values.
pub fn parse_retention(text: &str) -> Result<Retention, String> {
    if !RETENTION_VALUES.contains(&text) {
        return Err(format!(
            "\"{text}\" is not a retention SST accepts; use one of: {}",
            RETENTION_VALUES
                .iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if text == "forever" {
        return Ok(Retention::Forever);
    }
    let (number, unit) = split_quantity(text)?;
    let per_unit = match unit {
        "day" | "days" => 1.0,
        "week" | "weeks" => 7.0,
        "month" | "months" => 30.0,
        _ => 365.0,
    };
    Ok(Retention::Days((number * per_unit) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10 seconds"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1 minute"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2 hours"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("250 ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("10")
                .unwrap_err()
                .contains("<number> <unit>")
        );
        assert!(parse_duration("ten seconds").is_err());
        assert!(parse_duration("-1 seconds").is_err());
        assert!(
            parse_duration("10 fortnights")
                .unwrap_err()
                .contains("fortnights")
        );
    }

    #[test]
    fn huge_quantities_are_errors_not_panics() {
        for text in ["1e300 seconds", "1e19 days", "3651 days", "1e300 ms"] {
            let error = parse_duration(text).unwrap_err();
            assert!(error.contains("maximum duration"), "{text}: {error}");
        }
        assert_eq!(parse_duration("3650 days"), Ok(MAX_DURATION));
        assert!(parse_duration("inf seconds").is_err());
        assert!(parse_duration("NaN seconds").is_err());
        for text in ["1e300 GB", "2048 GB"] {
            assert!(
                parse_size(text).unwrap_err().contains("maximum size"),
                "{text}"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128 KB"), Ok(128 * 1024));
        assert_eq!(parse_size("1024 MB"), Ok(1 << 30));
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn retention_is_sst_enum() {
        assert_eq!(parse_retention("1 month"), Ok(Retention::Days(30)));
        assert_eq!(parse_retention("1 week"), Ok(Retention::Days(7)));
        assert_eq!(parse_retention("forever"), Ok(Retention::Forever));
        let err = parse_retention("4 days").unwrap_err();
        assert!(
            err.contains("\"3 days\"") && err.contains("\"forever\""),
            "{err}"
        );
    }
}
