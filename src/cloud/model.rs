//! A model of AWS in time: the API rate limits AWS publishes and the
//! durations of the slow operations of a failover, as data
//! (`aws_model.toml`, every figure with its source, estimates marked).
//!
//! # Why
//!
//! On the emulators every call answers in milliseconds and nothing is
//! ever throttled, so the engine's behaviour under AWS's real limits (a
//! mass failover during a regional event) cannot be seen there. The
//! in-memory cloud, the budgets ([`super::budget`]) and `drctl plan budget`
//! read this one model, so that simulations under virtual time, the
//! engine's defaults and the predictions agree, and a figure that changes
//! is changed in one place.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use serde::Deserialize;

use super::budget::Limit;

/// The model as the file writes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    /// Token buckets.
    #[serde(rename = "limit")]
    pub limits: Vec<LimitSpec>,
    /// Route 53's change batches.
    pub route53: Route53Batches,
    /// Slow operations.
    #[serde(rename = "duration")]
    pub durations: Vec<DurationSpec>,
    /// The services of calls that are not AWS API calls.
    #[serde(default)]
    pub outside_aws: OutsideAws,
}

/// Services steps call that are not AWS APIs (DNS queries, HTTP probes):
/// no bucket, the latency of any call.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutsideAws {
    /// Their names (`dns`, `http`).
    pub services: Vec<String>,
}

/// Whether a figure is published or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// AWS publishes it (the source says so).
    Published,
    /// Our estimate (the note says from what).
    Estimate,
}

/// One token bucket.
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSpec {
    /// The service (`route53`, `rds`, ...).
    pub service: String,
    /// The API operation; empty for the service-wide bucket.
    #[serde(default)]
    pub api: String,
    /// `account` or `account-region`.
    pub scope: String,
    /// What a token is (`requests`, `changes`).
    pub unit: String,
    /// Bucket capacity.
    pub burst: f64,
    /// Refill per second.
    pub rate: f64,
    /// Published or estimated.
    pub basis: Basis,
    /// Where the figure comes from.
    pub source: String,
    /// What the source says.
    #[serde(default)]
    pub note: String,
}

/// Route 53's `ChangeResourceRecordSets` batches.
#[derive(Debug, Clone, Deserialize)]
pub struct Route53Batches {
    /// Records per batch at most.
    pub max_records_per_batch: usize,
    /// Characters of record values per batch at most.
    pub max_chars_per_batch: usize,
    /// How many records an UPSERT counts as.
    pub upsert_weight: usize,
    /// One change per hosted zone in flight (a second gets `PriorRequestNotComplete`).
    pub one_change_in_flight_per_zone: bool,
    /// Where the figures come from.
    pub source: String,
}

/// How long an operation takes.
#[derive(Debug, Clone, Deserialize)]
pub struct DurationSpec {
    /// What is timed (`rds:PromoteReadReplica`, ...).
    pub operation: String,
    /// `lognormal` (from p50 and p90) or `fixed` (p50).
    pub distribution: String,
    /// The median, in seconds.
    pub p50_seconds: f64,
    /// The 90th percentile, in seconds.
    pub p90_seconds: f64,
    /// Published or estimated.
    pub basis: Basis,
    /// Where the figure comes from.
    pub source: String,
    /// What it is based on.
    #[serde(default)]
    pub note: String,
}

/// The z-score of the 90th percentile of a standard normal distribution.
const Z90: f64 = 1.281_551_565_545;

impl DurationSpec {
    /// The median.
    pub fn p50(&self) -> Duration {
        Duration::from_secs_f64(self.p50_seconds.max(0.0))
    }

    /// The 90th percentile.
    pub fn p90(&self) -> Duration {
        Duration::from_secs_f64(self.p90_seconds.max(self.p50_seconds).max(0.0))
    }

    /// One draw from the distribution.
    pub fn sample(&self, rng: &mut impl rand::Rng) -> Duration {
        use rand_distr::Distribution as _;
        if self.distribution != "lognormal"
            || self.p50_seconds <= 0.0
            || self.p90_seconds <= self.p50_seconds
        {
            return self.p50();
        }
        let mu = self.p50_seconds.ln();
        let sigma = (self.p90_seconds.ln() - mu) / Z90;
        match rand_distr::LogNormal::new(mu, sigma) {
            Ok(d) => Duration::from_secs_f64(d.sample(rng)),
            Err(_) => self.p50(),
        }
    }
}

/// The duration every call takes to answer, unless its operation has one
/// of its own (`latency:` and its label).
pub const CALL: &str = "api:call";

/// The prefix of a call's own latency in the model (`latency:s3:PutObject`).
pub const LATENCY: &str = "latency:";

/// The text of the model.
pub const TEXT: &str = include_str!("aws_model.toml");

static MODEL: LazyLock<Result<Model, String>> =
    LazyLock::new(|| toml::from_str(TEXT).map_err(|e| format!("src/cloud/aws_model.toml: {e}")));

/// The Google APIs among the model's services (an operation is
/// `service:Method`); every other service is AWS's.
const GOOGLE_SERVICES: &[&str] = &[
    "sqladmin",
    "monitoring",
    "compute",
    "run",
    "clouddns",
    "gcs",
];

/// Whose time an operation takes, as sentences name it: `Google Cloud`
/// for a Google API's (`sqladmin:instances.promoteReplica`), else `AWS`.
pub fn provider(operation: &str) -> &'static str {
    let service = operation.split(':').next().unwrap_or_default();
    if GOOGLE_SERVICES.contains(&service) {
        "Google Cloud"
    } else {
        "AWS"
    }
}

impl Model {
    /// The model of AWS this build carries (`Err`: the file does not read,
    /// which a unit test rules out).
    pub fn aws() -> Result<&'static Model, String> {
        MODEL.as_ref().map_err(Clone::clone)
    }

    /// The buckets, by (service, API; `None` service-wide), for [`super::budget::Budgets`].
    pub fn bucket_limits(&self) -> BTreeMap<(String, Option<String>), Limit> {
        self.limits
            .iter()
            .filter(|l| l.unit == "requests")
            .map(|l| {
                (
                    (
                        l.service.clone(),
                        (!l.api.is_empty()).then(|| l.api.clone()),
                    ),
                    Limit {
                        burst: l.burst,
                        rate: l.rate,
                    },
                )
            })
            .collect()
    }

    /// A bucket that counts something other than requests (Route 53's
    /// record changes: `unit = "changes"`).
    pub fn bucket_of(&self, service: &str, unit: &str) -> Option<&LimitSpec> {
        self.limits
            .iter()
            .find(|l| l.service == service && l.unit == unit)
    }

    /// How long `operation` takes.
    pub fn duration(&self, operation: &str) -> Option<&DurationSpec> {
        self.durations.iter().find(|d| d.operation == operation)
    }

    /// How long a call of `label` (`service:Operation`) takes to answer:
    /// its own latency ([`LATENCY`]), else any call's ([`CALL`]).
    pub fn latency(&self, label: &str) -> Option<&DurationSpec> {
        self.duration(&format!("{LATENCY}{label}"))
            .or_else(|| self.duration(CALL))
    }

    /// Whether the model knows a call of `label` (`service:Operation`):
    /// its service has a bucket, the call has a latency of its own, or the
    /// service is one outside AWS. A step whose cost names a call the model
    /// does not know is forecast without its bucket.
    pub fn knows_call(&self, label: &str) -> bool {
        let Some((service, operation)) = label.split_once(':') else {
            return false;
        };
        !operation.is_empty()
            && (self.limits.iter().any(|l| l.service == service)
                || self.duration(&format!("{LATENCY}{label}")).is_some()
                || self.outside_aws.services.iter().any(|s| s == service))
    }

    /// The same world with time running `1 / scale` times faster
    /// (`scale = 1.0 / 60.0`: a five-minute promotion takes five seconds):
    /// every duration multiplied by `scale`, every bucket's refill divided
    /// by it, its capacity kept (a burst is a count of calls, not a time).
    /// So a run against the scaled world meets the same waits and the same
    /// throttling, in the same order, as against AWS, only sooner; this is
    /// how the fault proxy shows the model on the emulators at 1/60.
    pub fn at_scale(&self, scale: f64) -> Model {
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        let mut m = self.clone();
        for l in &mut m.limits {
            l.rate /= scale;
        }
        for d in &mut m.durations {
            d.p50_seconds *= scale;
            d.p90_seconds *= scale;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    /// The forecast named a Cloud SQL promotion "AWS's own time": every
    /// Google operation in the model is Google Cloud's, every other AWS's.
    #[test]
    fn regression_a_google_operation_was_called_aws_time() {
        let m = Model::aws().unwrap();
        for d in &m.durations {
            let google = d.source.contains("cloud.google.com");
            let want = if google { "Google Cloud" } else { "AWS" };
            assert_eq!(provider(&d.operation), want, "{d:?}");
        }
        assert_eq!(provider("rds:PromoteReadReplica"), "AWS");
        assert_eq!(provider("run:services.patch"), "Google Cloud");
    }

    #[test]
    fn the_model_reads_and_every_figure_has_a_source() {
        let m = Model::aws().unwrap();
        for l in &m.limits {
            assert!(l.source.starts_with("https://"), "{l:?}");
            assert!(l.burst >= 1.0 && l.rate > 0.0, "{l:?}");
        }
        for d in &m.durations {
            assert!(d.source.starts_with("https://"), "{d:?}");
            assert!(d.p90_seconds >= d.p50_seconds, "{d:?}");
        }
        assert!(m.route53.max_records_per_batch > 0);
        let route53 = m.bucket_limits()[&("route53".to_string(), None)];
        assert_eq!((route53.burst, route53.rate), (50.0, 10.0));
        assert!(m.duration("rds:PromoteReadReplica").is_some());
    }

    #[test]
    fn a_scaled_model_is_faster_by_its_scale_and_keeps_its_bursts() {
        let m = Model::aws().unwrap();
        let fast = m.at_scale(1.0 / 60.0);
        let promote = |m: &Model| m.duration("rds:PromoteReadReplica").unwrap().p50_seconds;
        assert!((promote(&fast) - promote(m) / 60.0).abs() < 1e-9);
        let route53 = |m: &Model| m.bucket_limits()[&("route53".to_string(), None)];
        assert_eq!(route53(&fast).burst, route53(m).burst);
        assert!((route53(&fast).rate - route53(m).rate * 60.0).abs() < 1e-9);
        // A scale that means nothing leaves the model as it is.
        for bad in [0.0, -1.0, f64::NAN] {
            assert_eq!(promote(&m.at_scale(bad)), promote(m));
        }
    }

    #[test]
    fn a_lognormal_draw_has_its_median_and_its_90th_percentile() {
        let d = DurationSpec {
            operation: "x".into(),
            distribution: "lognormal".into(),
            p50_seconds: 300.0,
            p90_seconds: 540.0,
            basis: Basis::Estimate,
            source: "https://example.com".into(),
            note: String::new(),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut draws: Vec<f64> = (0..20_000)
            .map(|_| d.sample(&mut rng).as_secs_f64())
            .collect();
        draws.sort_by(f64::total_cmp);
        let p50 = draws[10_000];
        let p90 = draws[18_000];
        assert!((p50 - 300.0).abs() < 10.0, "{p50}");
        assert!((p90 - 540.0).abs() < 20.0, "{p90}");
        // The same seed, the same draws.
        let mut a = rand::rngs::StdRng::seed_from_u64(1);
        let mut b = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(d.sample(&mut a), d.sample(&mut b));
    }
}
