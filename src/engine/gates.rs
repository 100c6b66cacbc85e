//! The gates' rules: what a replica's lag means against a tier's RPO, and
//! the one sentence that says so.
//!
//! The RPO gate (before a failover promotes anything) and `drctl status`
//! (is a standby ready?) must judge a lag alike and say it in the same
//! words, or an operator reads "ready" in one place and "refused" in the
//! other. So the rule is here once, pure: it takes what was read and decides;
//! the reads stay with their callers.

use std::time::Duration;

use crate::plan::duration::format_duration;

/// One replica's lag as read, and what it is judged against.
#[derive(Debug, Clone, Copy)]
pub struct LagCheck<'a> {
    /// The replica's instance id.
    pub instance: &'a str,
    /// The region it is in (the failover's target).
    pub region: &'a str,
    /// Its lag (the maximum over the window), when any datapoint was read.
    pub lag_seconds: Option<f64>,
    /// The window the lag was read over.
    pub window: Duration,
    /// The tier's name and RPO.
    pub tier: &'a str,
    /// The tier's RPO.
    pub rpo: Duration,
    /// `--accept-data-loss`, when given.
    pub accepted: Option<Duration>,
}

impl LagCheck<'_> {
    /// Whether the lag is within the RPO (`None`: unknown).
    pub fn within_rpo(&self) -> Option<bool> {
        self.lag_seconds
            .map(|l| Duration::from_secs_f64(l) <= self.rpo)
    }

    /// Whether a failover may promote this replica on its lag alone: within
    /// the RPO, or covered by `--accept-data-loss` (which also covers an
    /// unknown lag).
    pub fn passes(&self) -> bool {
        match (self.lag_seconds, self.accepted) {
            (Some(l), _) if Duration::from_secs_f64(l) <= self.rpo => true,
            (Some(l), Some(a)) => Duration::from_secs_f64(l) <= a,
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }

    /// What is wrong with the lag, in one sentence, or `None` when it
    /// passes. `unknown` says why an unknown lag is unknown.
    pub fn problem(&self, unknown: &str) -> Option<String> {
        if self.passes() {
            return None;
        }
        Some(match self.lag_seconds {
            Some(l) => format!(
                "replica lag of {} in {} is {} (max over the last {}), above the {} tier's RPO of {}{}",
                self.instance,
                self.region,
                format_duration(Duration::from_secs_f64(l.round())),
                format_duration(self.window),
                self.tier,
                format_duration(self.rpo),
                self.accepted
                    .map(|a| format!(", and above --accept-data-loss {}", format_duration(a)))
                    .unwrap_or_default()
            ),
            None => format!(
                "replica lag of {} in {} is unknown ({unknown})",
                self.instance, self.region
            ),
        })
    }
}

/// The hint of an RPO refusal.
pub const RPO_HINT: &str = "data written in that window would be lost; to accept it, re-run with --accept-data-loss DUR (at least the lag)";

#[cfg(test)]
mod tests {
    use super::*;

    fn check(lag: Option<f64>, accepted: Option<u64>) -> LagCheck<'static> {
        LagCheck {
            instance: "db-use1",
            region: "us-east-1",
            lag_seconds: lag,
            window: Duration::from_secs(900),
            tier: "critical",
            rpo: Duration::from_secs(300),
            accepted: accepted.map(Duration::from_secs),
        }
    }

    #[test]
    fn a_lag_within_the_rpo_passes_and_says_nothing() {
        assert!(check(Some(3.0), None).passes());
        assert_eq!(check(Some(3.0), None).problem("x"), None);
        assert_eq!(check(Some(3.0), None).within_rpo(), Some(true));
    }

    #[test]
    fn a_lag_above_the_rpo_is_refused_unless_accepted() {
        let c = check(Some(1200.0), None);
        assert!(!c.passes());
        assert_eq!(
            c.problem("x").as_deref(),
            Some(
                "replica lag of db-use1 in us-east-1 is 20m (max over the last 15m), above the critical tier's RPO of 5m"
            )
        );
        assert!(check(Some(1200.0), Some(1800)).passes());
        let short = check(Some(1200.0), Some(600))
            .problem("x")
            .unwrap_or_default();
        assert!(
            short.ends_with(", and above --accept-data-loss 10m"),
            "{short}"
        );
    }

    #[test]
    fn an_unknown_lag_is_never_within_and_needs_acceptance() {
        let c = check(None, None);
        assert_eq!(c.within_rpo(), None);
        assert_eq!(
            c.problem("no datapoints").as_deref(),
            Some("replica lag of db-use1 in us-east-1 is unknown (no datapoints)")
        );
        assert!(check(None, Some(1)).passes());
    }
}
