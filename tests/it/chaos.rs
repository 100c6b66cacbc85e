//! The suite's two longest `drctl watch` tests, started first.
//!
//! libtest starts tests in the order of their names, six at a time here
//! (`scripts/test`). Under `watch::` these two (about 90 s and 55 s on this
//! 2-core machine) were among the last to start, and ran on alone for the
//! last minute of the suite while the other test threads sat idle. Named
//! `chaos::`, they start in the suite's first half, beside the rest, and
//! the suite ends about 40 s sooner (docs/performance.md). Their scenarios,
//! observers and assertions are `watch`'s, unchanged.

/// The chaos matrix of docs/watch.md: three observers in each scenario
/// (the home dies and recovers, one observer partitioned, a flapping
/// region, an unfit target, racing observers, a veto, the velocity cap),
/// with no false and no missed failover.
#[tokio::test]
async fn three_observers_pass_the_chaos_matrix_with_no_false_and_no_missed_failover() {
    crate::needs_emulators!();
    crate::watch::chaos_matrix().await;
}

/// Regression: the answer to the winning observer's start claim on S3 is
/// lost after S3 took it; the failover still starts exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn regression_lost_claim_answer_read_as_another_observers_claim() {
    crate::needs_emulators!();
    crate::watch::lost_claim_answer().await;
}
