//! Human durations as plans write them: `90s`, `15m`, `1h`, `2h30m`, `7d`.
//!
//! Plans are read by people under stress; one compact, unambiguous notation
//! (no bare numbers, no fractional units) avoids "was that seconds or minutes?".
//!
//! [`parse_duration`] is the one reader of durations: plan files, `tiers.*`,
//! `drctl.toml` and `DRCTL_*` settings, and every command-line flag (as
//! clap's `value_parser`) go through it, so a duration means the same
//! wherever it is written. Spaces around one are ignored everywhere alike
//! (`" 5m "` is `5m`); spaces inside one are refused (`2h 30m`).
//!
//! Every duration is at most [`MAX_DURATION`] (3650 days, ten years): no
//! recovery objective, drill, watch or retry lasts longer, and the bound
//! keeps every later sum or product of durations, and every
//! `Instant`/`DateTime` they are added to, far from overflow. A longer one
//! is a typo (`50000000000000d`) and is refused here, where its position is
//! still known. The time arithmetic fed by input ([`after`], [`before`],
//! [`instant_after`], [`from_secs_f64`]) saturates instead of panicking, so
//! that a value from elsewhere (a server's answer, a journal) cannot crash a
//! process either.

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// The longest duration accepted anywhere: 3650 days (ten years).
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError {
    /// The input.
    pub input: String,
    /// What is wrong.
    pub reason: String,
    /// Whether it parsed but is longer than [`MAX_DURATION`].
    pub too_long: bool,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.too_long {
            write!(f, "`{}` is {}", self.input, self.reason)
        } else {
            write!(f, "`{}` is not a duration: {}", self.input, self.reason)
        }
    }
}

impl std::error::Error for DurationError {}

impl DurationError {
    /// What to do about it: the notation, or the bound.
    pub fn hint(&self) -> &'static str {
        if self.too_long {
            "durations are at most 3650d (ten years); is a digit or the unit wrong?"
        } else {
            "durations are written like 90s, 15m, 1h, 2h30m or 7d"
        }
    }
}

/// Parses a duration made of `<integer><unit>` parts, units `d`, `h`, `m`, `s`
/// in decreasing order, each at most once: `90s`, `15m`, `2h30m`, `1d12h`.
/// Whitespace around it is ignored; inside it, it is an error. At most
/// [`MAX_DURATION`].
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason: &str| DurationError {
        input: input.to_string(),
        reason: reason.to_string(),
        too_long: false,
    };
    let too_long = || DurationError {
        input: input.to_string(),
        reason: format!(
            "longer than {} (ten years), the longest duration drctl accepts",
            format_duration(MAX_DURATION)
        ),
        too_long: true,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty; write e.g. 90s, 15m, 1h or 2h30m"));
    }
    let units: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_unit = None::<usize>;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(idx) = units.iter().position(|(u, _)| *u == c) else {
            return Err(err(&format!(
                "unexpected `{c}`; units are d, h, m and s (e.g. 2h30m)"
            )));
        };
        if digits.is_empty() {
            return Err(err(&format!("unit `{c}` has no number before it")));
        }
        if last_unit.is_some_and(|l| idx <= l) {
            return Err(err(
                "units must appear once each, largest first (e.g. 1h30m)",
            ));
        }
        // Only digits: a parse error is a number beyond u64.
        let n: u64 = digits.parse().map_err(|_| too_long())?;
        total = n
            .checked_mul(units[idx].1)
            .and_then(|v| total.checked_add(v))
            .filter(|t| *t <= MAX_DURATION.as_secs())
            .ok_or_else(too_long)?;
        digits.clear();
        last_unit = Some(idx);
    }
    if !digits.is_empty() {
        return Err(err(&format!(
            "`{digits}` has no unit; write {digits}s, {digits}m or {digits}h"
        )));
    }
    Ok(Duration::from_secs(total))
}

/// `at + d`, or the latest time there is when that is beyond it.
pub fn after(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `at - d`, or the earliest time there is when that is before it.
pub fn before(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `at + d` on the monotonic clock; a `d` the clock cannot hold counts
/// as [`MAX_DURATION`] (a deadline ten years away is never reached).
pub fn instant_after(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(d.min(MAX_DURATION)))
        .unwrap_or(at)
}

/// Seconds as a duration, for a number read from elsewhere (a metric, a
/// server's answer): negative is zero; too large, infinite or not a number
/// is [`Duration::MAX`] (a gate comparing it refuses, as it should).
pub fn from_secs_f64(secs: f64) -> Duration {
    if secs <= 0.0 {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

/// Formats a duration in the same notation (`2h30m`, `90s` → `1m30s`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// A duration that prints in plan notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2h30m").unwrap(), Duration::from_secs(9000));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration(" 0s ").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_bad_forms_with_a_reason() {
        for bad in [
            "",
            "15",
            "m",
            "1x",
            "30m1h",
            "1h1h",
            "1.5h",
            "-5m",
            "99999999999999999999d",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(!e.reason.is_empty(), "{bad}");
        }
        assert!(parse_duration("15").unwrap_err().reason.contains("15m"));
    }

    /// `50000000000000d` parsed (it fits a u64 of seconds) and panicked
    /// `plan validate` where it was multiplied; every unit is capped here.
    #[test]
    fn regression_huge_durations_are_refused_at_the_cap() {
        assert_eq!(parse_duration("3650d"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("87600h"), Ok(MAX_DURATION));
        for bad in [
            "50000000000000d",
            "3650d1s",
            "3651d",
            "87601h",
            "5256001m",
            "315360001s",
            "18446744073709551615s",
            "18446744073709551616s",
            "213503982334601d",
            "99999999999999999999999999d",
            "1d99999999999999999999h",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.too_long, "{bad}: {e}");
            assert!(e.reason.contains("3650d"), "{bad}: {e}");
            assert!(e.hint().contains("ten years"), "{bad}");
        }
        assert!(!parse_duration("soon").unwrap_err().too_long);
    }

    #[test]
    fn time_arithmetic_saturates() {
        let now = Utc::now();
        assert_eq!(after(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(before(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(
            after(DateTime::<Utc>::MAX_UTC, Duration::from_secs(1)),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            after(now, Duration::from_secs(60)),
            now + chrono::Duration::seconds(60)
        );
        assert_eq!(
            before(now, Duration::from_secs(60)),
            now - chrono::Duration::seconds(60)
        );
        let i = Instant::now();
        assert!(instant_after(i, Duration::MAX) >= i + MAX_DURATION);
        assert_eq!(
            instant_after(i, Duration::from_secs(5)),
            i + Duration::from_secs(5)
        );
        assert_eq!(from_secs_f64(f64::NAN), Duration::MAX);
        assert_eq!(from_secs_f64(-3.0), Duration::ZERO);
        assert_eq!(from_secs_f64(f64::INFINITY), Duration::MAX);
        assert_eq!(from_secs_f64(1e300), Duration::MAX);
        assert_eq!(from_secs_f64(1.5), Duration::from_millis(1500));
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_secs(9000)), "2h30m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0u64..10_000_000) {
            let d = Duration::from_secs(secs);
            prop_assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = parse_duration(&s);
        }

        /// Any number with any unit, up to u64::MAX and beyond: a duration
        /// within the cap, or a refusal that says so.
        #[test]
        fn huge_numbers_are_capped_never_a_panic(
            n in prop_oneof![any::<u64>(), u64::MAX - 1000..=u64::MAX, 0u64..400_000_000],
            unit in prop::sample::select(vec!["d", "h", "m", "s"]),
            extra in proptest::option::of("[0-9]{1,30}"),
        ) {
            let text = format!("{n}{}{unit}", extra.unwrap_or_default());
            match parse_duration(&text) {
                Ok(d) => prop_assert!(d <= MAX_DURATION, "{text}"),
                Err(e) => prop_assert!(e.too_long, "{text}: {e}"),
            }
        }
    }
}
