//! API budgets: AWS's published rate limits, kept on our side of the wire.
//!
//! # Why
//!
//! During a regional event everyone fails over at once, and the APIs'
//! limits (Route 53's account bucket of 10 requests/s, RDS's 12/s per
//! account and region, ...) set the floor of a mass failover's RTO. A call
//! the API throttles costs a round trip, a backoff and a retry, and enough
//! of them fail a step. So drctl keeps one token bucket per (account,
//! region, service), and per API where AWS publishes one, shared by every
//! plan of a run: a call takes its tokens *before* it is sent, waiting when
//! there are none; under contention the most critical tier is served first;
//! and a throttling answer halves the bucket's rate (it recovers over a
//! minute without another), so that our estimate of the limit follows the
//! real one, as the SDK's adaptive retry mode and TCP's congestion control
//! do. The waits are returned to the caller with their cause, to be
//! journaled: throttling is a wait, never an error that fails a step.
//!
//! The limits come from [`super::model`] (published figures, with their
//! sources), overridable in `drctl.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Who a call is made for: the tier rank of its plan (0, critical, first)
/// and the step, set by the engine's executor around each step
/// ([`Scope::run`]); calls made outside a step rank last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The plan's tier rank.
    pub rank: u8,
    /// The step's id.
    pub step: Option<String>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

impl Scope {
    /// The scope of the task this runs in.
    pub fn current() -> Self {
        SCOPE.try_with(Clone::clone).unwrap_or(Self {
            rank: u8::MAX,
            step: None,
        })
    }

    /// Runs `f` in this scope.
    pub async fn run<F: std::future::Future>(self, f: F) -> F::Output {
        SCOPE.scope(self, f).await
    }
}

/// A token bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    /// Bucket capacity: what may be spent at once.
    pub burst: f64,
    /// Refill per second: what may be spent indefinitely.
    pub rate: f64,
}

/// Which bucket: an account's service in a region (`region` is `global`
/// for Route 53), and one API of it where AWS publishes a bucket per API.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// The account.
    pub account: String,
    /// The region (`global` for account-wide services).
    pub region: String,
    /// The service (`route53`, `rds`, ...).
    pub service: String,
    /// The API operation, for a per-API bucket.
    pub api: Option<String>,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.api {
            Some(api) => write!(f, "{}:{} in {}", self.service, api, self.region),
            None => write!(f, "{} in {}", self.service, self.region),
        }
    }
}

/// What taking tokens cost: how long the call waited, and for which bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grant {
    /// Time spent waiting for tokens.
    pub waited: Duration,
    /// The bucket waited on longest, with its limit as it stood
    /// (`route53 in global: 10.0/s, burst 50`); `None` when nothing was waited for.
    pub cause: Option<String>,
}

/// How long a halved rate takes to recover fully without another throttle.
const RECOVERY: Duration = Duration::from_secs(60);
/// The lowest a bucket's rate is shrunk to, as a fraction of its limit.
const FLOOR: f64 = 0.1;

#[derive(Debug)]
struct Bucket {
    limit: Limit,
    tokens: f64,
    at: Instant,
    /// Rate multiplier after throttling (`FLOOR..=1`), and when it was last cut.
    factor: f64,
    cut_at: Option<Instant>,
    /// Waiters, by (rank, arrival): the first is served first.
    queue: BTreeSet<(u8, u64)>,
}

impl Bucket {
    fn new(limit: Limit, now: Instant) -> Self {
        Self {
            limit,
            tokens: limit.burst,
            at: now,
            factor: 1.0,
            cut_at: None,
            queue: BTreeSet::new(),
        }
    }

    /// The rate multiplier now: back to 1 over [`RECOVERY`] after a cut.
    fn factor(&self, now: Instant) -> f64 {
        match self.cut_at {
            None => 1.0,
            Some(cut) => {
                let since = now.saturating_duration_since(cut).as_secs_f64();
                (self.factor + (1.0 - self.factor) * (since / RECOVERY.as_secs_f64())).min(1.0)
            }
        }
    }

    fn rate(&self, now: Instant) -> f64 {
        (self.limit.rate * self.factor(now)).max(1e-6)
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate(now)).min(self.limit.burst);
        self.at = now;
    }

    fn describe(&self, key: &Key, now: Instant) -> String {
        format!(
            "{key}: {:.1}/s, burst {:.0}{}",
            self.rate(now),
            self.limit.burst,
            if self.factor(now) < 1.0 {
                " (shrunk after throttling)"
            } else {
                ""
            }
        )
    }
}

#[derive(Debug, Default)]
struct State {
    buckets: BTreeMap<Key, Bucket>,
    seq: u64,
}

/// The budgets of one run (or one process): every bucket, shared.
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    limits: Arc<BTreeMap<(String, Option<String>), Limit>>,
    state: Arc<Mutex<State>>,
}

/// Removes a waiter from its queue when its call is dropped while waiting.
struct Waiting<'a> {
    budgets: &'a Budgets,
    key: &'a Key,
    entry: (u8, u64),
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done
            && let Ok(mut s) = self.budgets.state.lock()
            && let Some(b) = s.buckets.get_mut(self.key)
        {
            b.queue.remove(&self.entry);
        }
    }
}

impl Budgets {
    /// Budgets with these limits, by (service, API); `None` for the API is
    /// the service-wide bucket. A call with no limit of its own is not held.
    pub fn new(limits: impl IntoIterator<Item = ((String, Option<String>), Limit)>) -> Self {
        Self {
            limits: Arc::new(limits.into_iter().collect()),
            state: Arc::default(),
        }
    }

    /// The buckets a call of `api` of `service` in `region` spends from:
    /// the service-wide one and the API's own, where they are limited.
    pub fn keys(&self, account: &str, region: &str, service: &str, api: &str) -> Vec<Key> {
        [None, Some(api.to_string())]
            .into_iter()
            .filter(|a| self.limits.contains_key(&(service.to_string(), a.clone())))
            .map(|api| Key {
                account: account.to_string(),
                region: region.to_string(),
                service: service.to_string(),
                api,
            })
            .collect()
    }

    /// Takes `cost` tokens from each bucket of `keys` (in a fixed order),
    /// waiting for them; `rank` orders waiters (0, the critical tier, first).
    pub async fn acquire(&self, keys: &[Key], rank: u8, cost: f64) -> Grant {
        let mut grant = Grant::default();
        let mut longest = Duration::ZERO;
        let mut sorted: Vec<&Key> = keys.iter().collect();
        sorted.sort();
        for key in sorted {
            let (waited, cause) = self.take(key, rank, cost).await;
            grant.waited += waited;
            if waited > longest {
                longest = waited;
                grant.cause = cause;
            }
        }
        grant
    }

    async fn take(&self, key: &Key, rank: u8, cost: f64) -> (Duration, Option<String>) {
        let Some(limit) = self
            .limits
            .get(&(key.service.clone(), key.api.clone()))
            .copied()
        else {
            return (Duration::ZERO, None);
        };
        let start = Instant::now();
        let entry = {
            let Ok(mut s) = self.state.lock() else {
                return (Duration::ZERO, None);
            };
            s.seq += 1;
            let seq = s.seq;
            let b = s
                .buckets
                .entry(key.clone())
                .or_insert_with(|| Bucket::new(limit, start));
            b.queue.insert((rank, seq));
            (rank, seq)
        };
        let mut guard = Waiting {
            budgets: self,
            key,
            entry,
            done: false,
        };
        let mut cause = None;
        loop {
            let now = Instant::now();
            let wait = {
                let Ok(mut s) = self.state.lock() else {
                    guard.done = true;
                    return (Duration::ZERO, None);
                };
                let Some(b) = s.buckets.get_mut(key) else {
                    guard.done = true;
                    return (Duration::ZERO, None);
                };
                b.refill(now);
                let need = cost.min(b.limit.burst);
                let first = b.queue.first() == Some(&entry);
                // A hair of tolerance: refills are floating point.
                if first && b.tokens + 1e-9 >= need {
                    b.tokens = (b.tokens - need).max(0.0);
                    b.queue.remove(&entry);
                    guard.done = true;
                    return (now.saturating_duration_since(start), cause);
                }
                if cause.is_none() {
                    cause = Some(b.describe(key, now));
                }
                // The first waits for its tokens; the others for their place
                // in the queue's worth of tokens, then look again (an earlier
                // tier arriving meanwhile moves them back). Waking each
                // waiter once a token would cost hundreds of waiters a
                // wake-up per token.
                let ahead = b.queue.range(..entry).count() as f64;
                let missing = if first {
                    need - b.tokens
                } else {
                    (ahead + 1.0) * need - b.tokens
                };
                Duration::from_secs_f64((missing / b.rate(now)).max(0.001))
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// The bucket of `key`, made on first use and refilled to `now`;
    /// `None` when the key has no limit.
    fn refilled<'s>(&self, s: &'s mut State, key: &Key, now: Instant) -> Option<&'s mut Bucket> {
        let limit = self
            .limits
            .get(&(key.service.clone(), key.api.clone()))
            .copied()?;
        let b = s
            .buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::new(limit, now));
        b.refill(now);
        Some(b)
    }

    /// Takes `cost` tokens from each bucket of `keys` now, or none when one
    /// of them is short: what AWS's side of a limit does (the timed fake
    /// cloud throttles a call this refuses). `Err` names the bucket.
    pub fn try_take(&self, keys: &[Key], cost: f64) -> Result<(), String> {
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return Ok(());
        };
        let mut held = Vec::new();
        for key in keys {
            let Some(b) = self.refilled(&mut s, key, now) else {
                continue;
            };
            if b.tokens + 1e-9 < cost.min(b.limit.burst) {
                return Err(b.describe(key, now));
            }
            held.push(key.clone());
        }
        for key in held {
            if let Some(b) = s.buckets.get_mut(&key) {
                b.tokens -= cost.min(b.limit.burst);
            }
        }
        Ok(())
    }

    /// The API throttled a call of `keys` anyway (another client shares the
    /// account, or the limit is lower than published): halve the rate and
    /// empty the bucket; it recovers over a minute without another.
    pub fn throttled(&self, keys: &[Key]) {
        let now = Instant::now();
        let Ok(mut s) = self.state.lock() else {
            return;
        };
        for key in keys {
            let Some(b) = self.refilled(&mut s, key, now) else {
                continue;
            };
            b.factor = (b.factor(now) * 0.5).max(FLOOR);
            b.cut_at = Some(now);
            b.tokens = 0.0;
        }
    }

    /// A bucket's rate now (tests, `plan budget`).
    pub fn rate(&self, key: &Key) -> Option<f64> {
        let now = Instant::now();
        let s = self.state.lock().ok()?;
        match s.buckets.get(key) {
            Some(b) => Some(b.rate(now)),
            None => self
                .limits
                .get(&(key.service.clone(), key.api.clone()))
                .map(|l| l.rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> Budgets {
        Budgets::new([
            (
                ("route53".to_string(), None),
                Limit {
                    burst: 50.0,
                    rate: 10.0,
                },
            ),
            (
                ("route53".to_string(), Some("CreateHealthCheck".to_string())),
                Limit {
                    burst: 50.0,
                    rate: 0.5,
                },
            ),
        ])
    }

    fn keys(b: &Budgets, api: &str) -> Vec<Key> {
        b.keys("111122223333", "global", "route53", api)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_the_rate_holds() {
        let b = budgets();
        let k = keys(&b, "ChangeResourceRecordSets");
        assert_eq!(k.len(), 1, "no bucket of its own: the account's only");
        let t0 = Instant::now();
        for _ in 0..50 {
            assert_eq!(b.acquire(&k, 1, 1.0).await.waited, Duration::ZERO);
        }
        let g = b.acquire(&k, 1, 1.0).await;
        assert_eq!(g.waited, Duration::from_millis(100), "{g:?}");
        assert!(
            g.cause
                .as_deref()
                .is_some_and(|c| c.starts_with("route53 in global: 10.0/s, burst 50")),
            "{g:?}"
        );
        for _ in 0..9 {
            b.acquire(&k, 1, 1.0).await;
        }
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_spends_from_its_api_bucket_too() {
        let b = budgets();
        let k = keys(&b, "CreateHealthCheck");
        assert_eq!(k.len(), 2);
        for _ in 0..50 {
            b.acquire(&k, 1, 1.0).await;
        }
        // The API's bucket (0.5/s) binds, not the account's (10/s).
        let g = b.acquire(&k, 1, 1.0).await;
        assert_eq!(g.waited, Duration::from_secs(2), "{g:?}");
        assert!(g.cause.unwrap().contains("CreateHealthCheck"));
    }

    #[tokio::test(start_paused = true)]
    async fn under_contention_the_critical_tier_goes_first() {
        let b = budgets();
        let k = keys(&b, "ChangeResourceRecordSets");
        for _ in 0..50 {
            b.acquire(&k, 1, 1.0).await;
        }
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Standard-tier calls queue first; critical ones arrive after.
        for (i, rank) in [(0, 2u8), (1, 2), (2, 2), (3, 0), (4, 0)] {
            let (b, k, order) = (b.clone(), k.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                b.acquire(&k, rank, 1.0).await;
                order.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [3, 4, 0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_rate_until_it_recovers() {
        let b = budgets();
        let k = keys(&b, "ChangeResourceRecordSets");
        b.throttled(&k);
        assert_eq!(b.rate(&k[0]), Some(5.0));
        b.throttled(&k);
        assert_eq!(b.rate(&k[0]), Some(2.5));
        // The bucket was emptied: the next call waits at the shrunk rate.
        let g = b.acquire(&k, 1, 1.0).await;
        assert_eq!(g.waited, Duration::from_millis(400), "{g:?}");
        assert!(g.cause.unwrap().contains("shrunk after throttling"));
        tokio::time::sleep(RECOVERY).await;
        assert_eq!(b.rate(&k[0]), Some(10.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_dropped_while_waiting_leaves_the_queue() {
        let b = budgets();
        let k = keys(&b, "ChangeResourceRecordSets");
        for _ in 0..50 {
            b.acquire(&k, 1, 1.0).await;
        }
        let first = tokio::time::timeout(Duration::from_millis(10), b.acquire(&k, 0, 1.0)).await;
        assert!(first.is_err(), "it had to wait, and was given up");
        // The next caller is not stuck behind the dropped one.
        let g = b.acquire(&k, 1, 1.0).await;
        assert!(g.waited <= Duration::from_millis(100), "{g:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_without_a_limit_is_not_held() {
        let b = budgets();
        let k = b.keys("1", "us-east-1", "sts", "GetCallerIdentity");
        assert!(k.is_empty());
        assert_eq!(b.acquire(&k, 0, 1.0).await, Grant::default());
    }
}
