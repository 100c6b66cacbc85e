//! CloudWatch: the `ReplicaLag` metric of RDS replicas, and the state of the alarms a plan's `[watch]` names.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use chrono::Utc;

use super::{Call, Regional, Sdk, call, from_chrono, to_chrono};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{CloudError, LagReading};

const SERVICE: &str = "cloudwatch";
/// Resolution of the lag series, in seconds.
const PERIOD: i32 = 60;

/// [`crate::cloud::Metrics`] over CloudWatch.
pub struct CloudWatchMetrics {
    clients: Regional<aws_sdk_cloudwatch::Client>,
    retry: RetryPolicy,
}

impl CloudWatchMetrics {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::cloudwatch),
            retry,
        }
    }

    /// Reads `metric` (namespace `AWS/RDS`, dimension `dimension` =
    /// `id`) over the last `window`, each value times `scale` in seconds.
    async fn lag_metric(
        &self,
        region: &str,
        metric: &str,
        dimension: &str,
        id: &str,
        scale: f64,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "GetMetricData", id, region);
        let end = Utc::now();
        // `window` is a flag's (at most ten years, as every duration): the
        // subtraction is checked all the same.
        let start = chrono::Duration::from_std(window)
            .ok()
            .and_then(|w| end.checked_sub_signed(w))
            .unwrap_or(end - chrono::Duration::hours(1));
        let query = lag_query(metric, dimension, id);
        let mut points: Vec<(f64, chrono::DateTime<Utc>)> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = call(&self.retry, c, || {
                client
                    .get_metric_data()
                    .metric_data_queries(query.clone())
                    .start_time(from_chrono(start))
                    .end_time(from_chrono(end))
                    .scan_by(ScanBy::TimestampDescending)
                    .set_next_token(token.clone())
                    .send()
            })
            .await?;
            for r in out.metric_data_results() {
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    // A non-finite value is no reading (and would not fit a Duration).
                    if !v.is_finite() {
                        continue;
                    }
                    if let Some(t) = to_chrono(t) {
                        points.push((*v * scale, t));
                    }
                }
            }
            match out.next_token() {
                Some(t) if !t.is_empty() && Some(t) != token.as_deref() => {
                    token = Some(t.to_string())
                }
                _ => break,
            }
        }
        Ok(lag_reading(&points, window))
    }
}

/// The query of `metric` (namespace `AWS/RDS`, dimension `dimension` =
/// `id`): its maximum per [`PERIOD`].
fn lag_query(metric: &str, dimension: &str, id: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id("lag")
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("AWS/RDS")
                        .metric_name(metric)
                        .dimensions(Dimension::builder().name(dimension).value(id).build())
                        .build(),
                )
                .period(PERIOD)
                .stat("Maximum")
                .build(),
        )
        .return_data(true)
        .build()
}

/// The reading of `points` (seconds, when) over `window`: their largest
/// and their latest value.
fn lag_reading(points: &[(f64, chrono::DateTime<Utc>)], window: Duration) -> LagReading {
    // The service's numbers: a lag too large for a Duration is the
    // largest one, never a panic.
    let secs = |v: f64| Duration::try_from_secs_f64(v.max(0.0)).unwrap_or(Duration::MAX);
    let max = points
        .iter()
        .map(|p| p.0)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let latest = points.iter().max_by_key(|p| p.1).map(|p| (secs(p.0), p.1));
    LagReading {
        max: max.map(secs),
        latest,
        datapoints: points.len(),
        window,
    }
}

#[async_trait]
impl crate::cloud::Metrics for CloudWatchMetrics {
    async fn replica_lag(
        &self,
        region: &str,
        db_id: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.lag_metric(
            region,
            "ReplicaLag",
            "DBInstanceIdentifier",
            db_id,
            1.0,
            window,
        )
        .await
    }

    async fn cluster_lag(
        &self,
        region: &str,
        cluster: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        // Aurora publishes both in milliseconds on each secondary cluster;
        // RPOLag (PostgreSQL) is the data a failover would lose, the
        // replication lag (both engines) the fallback.
        let mut last = None;
        for metric in ["AuroraGlobalDBRPOLag", "AuroraGlobalDBReplicationLag"] {
            let r = self
                .lag_metric(
                    region,
                    metric,
                    "DBClusterIdentifier",
                    cluster,
                    0.001,
                    window,
                )
                .await?;
            if r.datapoints > 0 {
                return Ok(r);
            }
            last = Some(r);
        }
        Ok(last.unwrap_or(LagReading {
            max: None,
            latest: None,
            datapoints: 0,
            window,
        }))
    }

    async fn alarms_firing(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<Vec<String>, CloudError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.clients.get(region);
        let joined = names.join(",");
        let c = Call::new(SERVICE, "DescribeAlarms", &joined, region);
        let out = call(&self.retry, c, || {
            client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .send()
        })
        .await?;
        let states: std::collections::BTreeMap<&str, &str> = out
            .metric_alarms()
            .iter()
            .filter_map(|a| Some((a.alarm_name()?, a.state_value()?.as_str())))
            .collect();
        Ok(names
            .iter()
            .filter_map(|n| match states.get(n.as_str()) {
                Some(&"ALARM") => Some(n.clone()),
                Some(_) => None,
                None => Some(format!("{n} (missing)")),
            })
            .collect())
    }
}
