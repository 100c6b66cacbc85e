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

use std::fmt;
use std::time::Duration;

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a duration: {reason}")]
pub struct DurationError {
    /// The input.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

/// Parses a duration made of `<integer><unit>` parts, units `d`, `h`, `m`, `s`
/// in decreasing order, each at most once: `90s`, `15m`, `2h30m`, `1d12h`.
/// Whitespace around it is ignored; inside it, it is an error.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason: &str| DurationError {
        input: input.to_string(),
        reason: reason.to_string(),
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
        let n: u64 = digits.parse().map_err(|_| err("the number is too large"))?;
        total = n
            .checked_mul(units[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("the duration is too large"))?;
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
    }
}
