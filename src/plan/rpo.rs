//! The RPO rule: may a failover promote a copy whose lag is what was read
//! (or unknown), under the tier's RPO and the data loss an operator
//! accepted?
//!
//! One rule in one place, on the floor below everything that judges a lag:
//! the RPO gate before a failover promotes anything and `drctl status` (both
//! through `engine::gates::LagCheck`, which adds the sentence) and `drctl
//! watch` when it judges whether a standby is fit to take over. If they
//! judged apart, watch could start a failover the gate then refuses, or an
//! operator could read "ready" in one place and "refused" in another.

use std::time::Duration;

/// Whether a copy whose lag is `lag` (`None`: unknown) may be promoted
/// under `rpo`: its lag is within the RPO, or the operator accepted losing
/// up to `accepted` (absolute: the lag must be at most that much), which
/// also covers an unknown lag.
pub fn allows(lag: Option<Duration>, rpo: Duration, accepted: Option<Duration>) -> bool {
    match (lag, accepted) {
        (Some(l), _) if l <= rpo => true,
        (Some(l), Some(a)) => l <= a,
        (None, Some(_)) => true,
        (_, None) => false,
    }
}

/// Whether a known lag is within the RPO (`None`: unknown).
pub fn within(lag: Option<Duration>, rpo: Duration) -> Option<bool> {
    lag.map(|l| l <= rpo)
}

/// What a loss accepted *beyond* the RPO (`[watch] accept_data_loss`)
/// accepts in the gate's terms (`--accept-data-loss`, absolute).
pub fn accepted_beyond(rpo: Duration, beyond: Duration) -> Duration {
    rpo.saturating_add(beyond)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RPO: Duration = Duration::from_secs(300);

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_lag_within_the_rpo_is_allowed_without_acceptance() {
        assert!(allows(Some(s(300)), RPO, None));
        assert!(allows(Some(s(0)), RPO, None));
        assert_eq!(within(Some(s(300)), RPO), Some(true));
    }

    #[test]
    fn a_lag_above_the_rpo_needs_an_acceptance_that_covers_it() {
        assert!(!allows(Some(s(301)), RPO, None));
        assert!(!allows(Some(s(900)), RPO, Some(s(600))));
        assert!(allows(Some(s(900)), RPO, Some(s(900))));
        assert_eq!(within(Some(s(301)), RPO), Some(false));
    }

    #[test]
    fn an_unknown_lag_needs_any_acceptance() {
        assert!(!allows(None, RPO, None));
        assert!(allows(None, RPO, Some(Duration::ZERO)));
        assert_eq!(within(None, RPO), None);
    }

    /// Watch's `accept_data_loss` is a loss beyond the RPO; the gate takes
    /// an absolute one: converted, they allow the same lags.
    #[test]
    fn a_loss_accepted_beyond_the_rpo_allows_up_to_their_sum() {
        let accepted = Some(accepted_beyond(RPO, s(60)));
        assert!(allows(Some(s(360)), RPO, accepted));
        assert!(!allows(Some(s(361)), RPO, accepted));
        assert_eq!(accepted_beyond(Duration::MAX, s(1)), Duration::MAX);
    }
}
