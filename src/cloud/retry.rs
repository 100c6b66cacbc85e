//! Retries of our own, with jittered exponential backoff (the `backon` crate).
//!
//! The SDKs' built-in retries are switched off in [`super::aws`] so that one
//! policy, visible in logs and configurable, governs every call: transient
//! failures (throttling, 5xx, dropped connections) are retried, everything else
//! returns at once. Each retry is logged with the resource and region.
//!
//! Waiting for a resource to reach a state (a replica to become available, a
//! DNS change to be in sync) is the same machinery with another stop rule:
//! [`poll_until`] polls with doubling intervals until an answer or a deadline,
//! so every poll loop of the steps shares one implementation (and one
//! paused-time test) instead of hand-rolling its own.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::time::Instant;

use super::CloudError;

/// How transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: usize,
    /// First delay.
    pub min_delay: Duration,
    /// Ceiling of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }

    /// Runs `op` until it succeeds, fails permanently, or retries run out.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        op.retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(CloudError::is_transient)
            .notify(|err: &CloudError, delay: Duration| {
                tracing::warn!(
                    service = err.service,
                    operation = err.operation,
                    resource = %err.resource,
                    region = %err.region,
                    kind = ?err.kind,
                    delay_ms = delay.as_millis() as u64,
                    "transient cloud error, retrying: {}",
                    err.message
                );
            })
            .await
    }
}

/// One look of [`poll_until`] that found no answer.
enum Look<E> {
    /// Not yet: look again after a while, if time is left.
    NotYet,
    /// The probe failed: stop.
    Failed(E),
}

/// Calls `probe` until it answers `Some`, waiting between calls `first`, then
/// twice as long each time up to `longest` (`intervals`), never past
/// `deadline`. Returns the answer, or `None` when the deadline passed first
/// (after a last look at or past it); an error of the probe ends the wait
/// at once. `what` names the wait in the log.
///
/// Time is tokio's, so under paused time a test of a poll loop runs at once.
pub async fn poll_until<T, E, F, Fut>(
    what: &str,
    intervals: (Duration, Duration),
    deadline: impl Into<Instant>,
    mut probe: F,
) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    let deadline = deadline.into();
    let look = || {
        let answer = probe();
        async move {
            match answer.await {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(Look::NotYet),
                Err(e) => Err(Look::Failed(e)),
            }
        }
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(intervals.0)
        .with_max_delay(intervals.1)
        .with_factor(2.0)
        .without_max_times();
    let answer = look
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|look: &Look<E>| matches!(look, Look::NotYet) && Instant::now() < deadline)
        .adjust(|_, delay| delay.map(|d| d.min(deadline.saturating_duration_since(Instant::now()))))
        .notify(|_, delay: Duration| {
            tracing::info!(
                waiting_for = what,
                delay_ms = delay.as_millis() as u64,
                "waiting"
            );
        })
        .await;
    match answer {
        Ok(v) => Ok(Some(v)),
        Err(Look::NotYet) => Ok(None),
        Err(Look::Failed(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn err(kind: ErrorKind) -> CloudError {
        CloudError::new(
            "rds",
            "DescribeDBInstances",
            "db",
            "us-east-1",
            kind,
            "boom",
        )
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicUsize::new(0);
        let out = policy()
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(err(ErrorKind::Throttled))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let out: Result<(), _> = policy()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(err(ErrorKind::Client))
            })
            .await;
        assert_eq!(out.unwrap_err().kind, ErrorKind::Client);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retries_stop_after_the_limit() {
        let calls = AtomicUsize::new(0);
        let out: Result<(), _> = policy()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(err(ErrorKind::Server))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    /// The looks of a poll: at once, then after 1, 2, 4, 4, ... seconds (the
    /// last wait cut short by the deadline), and a last look at the deadline.
    #[tokio::test(start_paused = true)]
    async fn a_poll_doubles_its_interval_up_to_the_longest_and_stops_at_the_deadline() {
        let start = Instant::now();
        let looks = std::sync::Mutex::new(Vec::new());
        let out: Result<Option<()>, ()> = poll_until(
            "test",
            (Duration::from_secs(1), Duration::from_secs(4)),
            start + Duration::from_secs(13),
            || {
                looks.lock().unwrap().push(start.elapsed().as_secs());
                async { Ok(None) }
            },
        )
        .await;
        assert_eq!(out, Ok(None));
        assert_eq!(*looks.lock().unwrap(), [0, 1, 3, 7, 11, 13]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_returns_the_first_answer_and_stops_at_a_probe_error() {
        let start = Instant::now();
        let calls = AtomicUsize::new(0);
        let out: Result<Option<usize>, ()> = poll_until(
            "test",
            (Duration::from_secs(2), Duration::from_secs(60)),
            start + Duration::from_secs(3600),
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok((n == 2).then_some(n)) }
            },
        )
        .await;
        assert_eq!(out, Ok(Some(2)));
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        let out: Result<Option<()>, &str> = poll_until(
            "test",
            (Duration::from_secs(1), Duration::from_secs(1)),
            start + Duration::from_secs(3600),
            || async { Err("boom") },
        )
        .await;
        assert_eq!(out, Err("boom"));
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }
}
