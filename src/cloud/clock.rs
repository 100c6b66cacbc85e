//! The wall clock, injectable.
//!
//! Leases are judged by wall time (another's lease against the state
//! store's clock, a holder's own against its own: docs/state.md, "Whose
//! clock") and by the monotonic clock (the holder's own deadline). The
//! monotonic side uses `tokio::time::Instant`, which tokio's paused time
//! already controls; the wall side goes through a [`Clock`], so that a test
//! can make both move together ([`TokioClock`]) and check lease expiry
//! without waiting for real time to pass. Production uses [`SystemClock`].
//!
//! It stands on the cloud floor because a store has a clock of its own:
//! the in-memory fake keeps one ([`super::fake::FakeCloud::with_store_clock`]),
//! so that a test can set the store's clock apart from the host's.

use std::fmt;

use chrono::{DateTime, Utc};

/// Where the current wall time comes from.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall time.
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock (`Utc::now`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time that moves with tokio's clock: a fixed start plus the tokio
/// time elapsed since. Under paused time (`#[tokio::test(start_paused =
/// true)]`) it moves only as tokio time is advanced, in step with timers and
/// `tokio::time::Instant`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `wall` now.
    pub fn starting_at(wall: DateTime<Utc>) -> Self {
        Self {
            wall,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    /// A clock that reads the machine's time now.
    fn default() -> Self {
        Self::starting_at(Utc::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.wall
            .checked_add_signed(elapsed)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_moves_only_with_tokio_time() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
    }
}
