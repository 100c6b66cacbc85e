//! Time in the fake cloud: AWS's latencies, its rate limits as AWS applies
//! them (a call over a bucket is throttled, not held), and the slow
//! operations of a failover (a promotion, a change reaching INSYNC,
//! instances coming into service), all drawn from the model
//! ([`super::model`]) under tokio's clock.
//!
//! # Why
//!
//! The engine's budgets, its Route 53 batching and `drctl plan budget`'s
//! predictions only mean something against a world that takes time and
//! refuses calls the way AWS does. Under `tokio::time::pause` a failover
//! of 200 plans with minutes-long promotions runs in seconds of wall time,
//! and from a seed the same draws come out every time, so a benchmark or a
//! prediction can be repeated exactly. The fake keeps its state; this
//! keeps only *when* things happen.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::time::Instant;

use super::budget::Budgets;
use super::model::Model;
use super::{CloudError, ErrorKind};

/// The clock, the draws and AWS's side of the limits of one timed world.
#[derive(Debug)]
pub struct Timing {
    model: &'static Model,
    rng: Mutex<StdRng>,
    /// AWS's buckets: a call finding its bucket empty is throttled.
    server: Budgets,
    /// When each started slow operation completes, by key
    /// (`db:REGION/ID`, `scaled:KIND REGION NAME`, `change:ID`, `zone:ID`).
    until: Mutex<BTreeMap<String, Instant>>,
    /// Calls throttled so far, by label.
    throttled: Mutex<BTreeMap<String, u64>>,
    /// Every slow operation started, with its draw, in order.
    drawn: Mutex<Vec<(String, Duration)>>,
}

impl Timing {
    /// A timed world drawing from `model` with `seed`.
    pub fn new(model: &'static Model, seed: u64) -> Self {
        Self {
            model,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            server: Budgets::new(model.bucket_limits()),
            until: Mutex::default(),
            throttled: Mutex::default(),
            drawn: Mutex::default(),
        }
    }

    /// One draw of how long `operation` takes (zero for one the model
    /// does not time).
    pub fn draw(&self, operation: &str) -> Duration {
        match (self.model.duration(operation), self.rng.lock()) {
            (Some(d), Ok(mut rng)) => d.sample(&mut *rng),
            _ => Duration::ZERO,
        }
    }

    /// One draw of how long a call of `label` takes to answer.
    pub fn latency(&self, label: &str) -> Duration {
        match (self.model.latency(label), self.rng.lock()) {
            (Some(d), Ok(mut rng)) => d.sample(&mut *rng),
            _ => Duration::ZERO,
        }
    }

    /// A call of `label` (`service:Operation`) to `region` arrives: it takes
    /// its latency, then spends `cost` from AWS's buckets, or is throttled
    /// (as AWS answers: `Throttling`, a transient error) when one is empty.
    pub async fn call(
        &self,
        label: &'static str,
        region: &str,
        resource: &str,
        cost: f64,
    ) -> Result<(), CloudError> {
        tokio::time::sleep(self.latency(label)).await;
        let (service, api) = label.split_once(':').unwrap_or((label, ""));
        let keys = self.server.keys("", region, service, api);
        self.server.try_take(&keys, cost).map_err(|bucket| {
            if let Ok(mut t) = self.throttled.lock() {
                *t.entry(label.to_string()).or_default() += 1;
            }
            CloudError::new(
                service,
                api,
                resource,
                region,
                ErrorKind::Throttled,
                format!("Rate exceeded ({bucket})"),
            )
            .with_code("Throttling")
        })
    }

    /// Starts a slow operation under `key`: it completes after a draw of
    /// `operation`. Returns when.
    pub fn start(&self, key: String, operation: &str) -> Instant {
        let took = self.draw(operation);
        let at = Instant::now() + took;
        if let Ok(mut d) = self.drawn.lock() {
            d.push((key.clone(), took));
        }
        if let Ok(mut u) = self.until.lock() {
            u.insert(key, at);
        }
        at
    }

    /// Every slow operation started so far, by key (`db:REGION/ID`,
    /// `scaled:KIND REGION NAME`, `change:ID`, `zone:ID`), with how long it took.
    pub fn drawn(&self) -> Vec<(String, Duration)> {
        self.drawn.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Whether the operation under `key` is still under way.
    pub fn busy(&self, key: &str) -> bool {
        let now = Instant::now();
        self.until
            .lock()
            .map(|u| u.get(key).is_some_and(|at| *at > now))
            .unwrap_or(false)
    }

    /// The operations with keys starting with `prefix` that have completed
    /// since they were started, removed from the watch list.
    pub fn completed(&self, prefix: &str) -> Vec<String> {
        let now = Instant::now();
        let Ok(mut u) = self.until.lock() else {
            return Vec::new();
        };
        let done: Vec<String> = u
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &done {
            u.remove(k);
        }
        done
    }

    /// Calls AWS's side has throttled so far, by label.
    pub fn throttled(&self) -> BTreeMap<String, u64> {
        self.throttled.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> Timing {
        Timing::new(Model::aws().unwrap(), 7)
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_over_the_route53_bucket_is_throttled_and_the_next_second_refills_it() {
        let t = timing();
        // Sixty calls at once: a burst of 50, plus what refills while they
        // take their latency.
        let answers = futures::future::join_all(
            (0..60).map(|_| t.call("route53:GetChange", "global", "C1", 1.0)),
        )
        .await;
        let refused = answers.iter().filter(|a| a.is_err()).count();
        assert!((1..=10).contains(&refused), "{refused}");
        let e = t
            .call("route53:GetChange", "global", "C1", 50.0)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert_eq!(e.code.as_deref(), Some("Throttling"));
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(
            t.call("route53:GetChange", "global", "C1", 50.0)
                .await
                .is_ok()
        );
        assert!(t.throttled()["route53:GetChange"] >= 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_operation_completes_after_its_draw() {
        let t = timing();
        let at = t.start("db:us-east-1/x".into(), "rds:PromoteReadReplica");
        assert!(t.busy("db:us-east-1/x"));
        assert!(t.completed("db:").is_empty());
        tokio::time::sleep_until(at).await;
        assert!(!t.busy("db:us-east-1/x"));
        assert_eq!(t.completed("db:"), ["db:us-east-1/x"]);
        assert!(t.completed("db:").is_empty());
    }

    #[test]
    fn the_same_seed_draws_the_same_durations() {
        let (a, b) = (timing(), timing());
        for _ in 0..5 {
            assert_eq!(
                a.draw("rds:PromoteReadReplica"),
                b.draw("rds:PromoteReadReplica")
            );
        }
    }
}
