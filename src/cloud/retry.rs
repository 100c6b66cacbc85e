//! Retries of our own, with jittered exponential backoff (the `backon` crate).
//!
//! The SDKs' built-in retries are switched off in [`super::aws`] so that one
//! policy, visible in logs and configurable, governs every call: transient
//! failures (throttling, 5xx, dropped connections) are retried, everything else
//! returns at once. Each retry is logged with the resource and region.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

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
}
