//! Observe: one round of reads of one plan, every region at once, each read
//! bounded. Nothing is judged here (that is `decide`); a read that does
//! not answer in time is recorded as what it is, a failed signal.
//!
//! The signals, per region: whether its API answers at all (a describe of
//! the plan's database, else a read of one of its capacity groups through
//! its kind's capacity role, the read a raise makes (for a managed
//! instance group its autoscaler and its instances too), made once,
//! without retries: a region that does not answer should cost the round
//! its timeout and no more), the plan's `[[check]]` probes, the CloudWatch
//! alarms `[watch] alarms` names, and for a region that holds a replica,
//! the replica's current lag.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;

use super::decide::Signals;
use crate::cloud::{CloudError, Clouds, DbRole, ErrorKind};
use crate::plan::Plan;
use crate::plan::duration::parse_duration;
use crate::plan::kinds::{self, Copies, RpoSource, Shown};
use crate::plan::watch::WatchRules;

/// The window lag is read over, and the highest datapoint in it is the
/// lag: as `drctl status` and the RPO gate read it, so that watch never
/// judges a target fit that the gate would then refuse.
const LAG_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Whether an error means the API did not answer (as opposed to an answer
/// we did not like: a missing instance, a denied call). Throttling is an
/// answer: it is account-wide, every observer would see it at once (the
/// application's own load can cause it), and it says the API is there.
fn unanswered(e: &CloudError) -> bool {
    matches!(e.kind, ErrorKind::Connection | ErrorKind::Server)
}

/// A read bounded by `timeout`: `Err(why)` when the API did not answer
/// (refused, reset, 5xx, throttled, or nothing within the timeout), else
/// its answer, which may be an error it answered with.
async fn bounded<T>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, CloudError>>,
) -> Result<Result<T, CloudError>, String> {
    match tokio::time::timeout(timeout, f).await {
        Ok(Err(e)) if unanswered(&e) => Err(e.summary()),
        Ok(answer) => Ok(answer),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// What the plan's databases in a region said.
struct Databases {
    /// Whether the region's API answered (any answer, even an error such
    /// as a missing instance, means it is there); `Ok` with no database.
    api: Result<(), String>,
    /// The highest lag of its replicas there.
    lag: Option<Duration>,
    /// Whether they are replicas (`Some(false)`: one is not, e.g. the old
    /// primary of a region failed away from, not yet reprotected; `None`:
    /// none was read).
    replica: Option<bool>,
}

/// The plan's databases in `region`, each described once: the API signal,
/// their roles, and their replicas' lag. A plan without a database there
/// asks a capacity group of its, of any kind, whether the API answers.
async fn databases(clouds: &Clouds, plan: &Plan, region: &str, timeout: Duration) -> Databases {
    let spec = &plan.spec;
    // Each resource's copy here, read through its kind; the lag through
    // its RPO source, as the gate reads it.
    let ids: Vec<(&str, &dyn Copies, Option<&dyn RpoSource>)> = (kinds::each(spec).into_iter())
        .filter_map(|r| match r.shown() {
            Shown::Data(c) => Some((c.copy(region)?, c, r.rpo_source())),
            Shown::Capacity(_) | Shown::Traffic(_) | Shown::Steps { .. } => None,
        })
        .collect();
    if ids.is_empty() {
        // A capacity group's read, through its kind's role, whatever the
        // kind: any answer means the region's API is there.
        let group = (kinds::each(spec).into_iter()).find_map(|r| match r.shown() {
            Shown::Capacity(g) => g.group(region).map(|_| g),
            _ => None,
        });
        let api = match group {
            Some(g) => {
                let call = g.scaling().about().calls.read;
                (bounded(timeout, call, g.read(clouds, region)).await).map(|_| ())
            }
            None => Ok(()),
        };
        return Databases {
            api,
            lag: None,
            replica: None,
        };
    }
    let reads = join_all(ids.iter().map(|&(_, copies, source)| async move {
        let answer = bounded(
            timeout,
            copies.about().read_call,
            copies.describe(clouds, region),
        )
        .await?;
        let Ok(Some(db)) = answer else {
            return Ok(None);
        };
        let replica = matches!(db.role, DbRole::Replica { .. });
        let lag = match source {
            Some(s) if replica => bounded(
                timeout,
                s.about().lag_call,
                s.lag(clouds, region, LAG_WINDOW),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|r| r.max.or(r.latest.map(|l| l.0))),
            _ => None,
        };
        Ok::<_, String>(Some((replica, lag)))
    }))
    .await;
    let api = match reads.iter().find_map(|r| r.as_ref().err()) {
        Some(why) if reads.iter().all(Result::is_err) => Err(why.clone()),
        _ => Ok(()),
    };
    let read: Vec<(bool, Option<Duration>)> = reads.into_iter().flatten().flatten().collect();
    Databases {
        api,
        lag: read.iter().filter_map(|r| r.1).max(),
        replica: (!read.is_empty()).then(|| read.iter().all(|r| r.0)),
    }
}

/// Reads one region's signals.
async fn region(
    clouds: &Clouds,
    plan: &Plan,
    rules: &WatchRules,
    region: &str,
    timeout: Duration,
) -> Signals {
    let spec = &plan.spec;
    let checks = join_all(spec.check.iter().filter_map(|c| {
        let url = c.regions.get(region)?.clone();
        let t = parse_duration(&c.timeout)
            .unwrap_or(Duration::from_secs(5))
            .min(timeout);
        let expect = c.expect_status;
        let id = c.id.clone();
        Some(async move {
            match clouds.probe.get(region, &url, t).await {
                Ok(a) if a.status == expect => Ok(()),
                Ok(a) => Err(format!("check {id}: HTTP {} (expected {expect})", a.status)),
                Err(e) => Err(format!("check {id}: {}", e.summary())),
            }
        })
    }));
    let alarms = async {
        let Some(names) = rules.alarms.get(region).filter(|n| !n.is_empty()) else {
            return (Vec::new(), Vec::new());
        };
        // Only an alarm in ALARM fails the observation. One that is missing
        // or cannot be read is the plan's setup, not the region's health:
        // every observer would see it at once, and a typo must never look
        // like an outage. It is reported beside the observation.
        match bounded(
            timeout,
            "cloudwatch:DescribeAlarms",
            clouds.metrics.alarms_firing(region, names),
        )
        .await
        {
            Ok(Ok(named)) => named
                .into_iter()
                .partition(|n: &String| !n.ends_with(" (missing)")),
            Ok(Err(e)) => (
                Vec::new(),
                vec![format!("alarms unreadable ({})", e.summary())],
            ),
            Err(e) => (Vec::new(), vec![format!("alarms unreadable ({e})")]),
        }
    };
    let (dbs, checks, (alarms, setup)) =
        tokio::join!(databases(clouds, plan, region, timeout), checks, alarms);
    Signals {
        api: dbs.api,
        checks,
        alarms,
        setup,
        lag: dbs.lag,
        lag_expected: dbs.replica == Some(true),
        replica: dbs.replica,
    }
}

/// One round: every region of `plan`, concurrently.
pub async fn observe(
    clouds: &Clouds,
    plan: &Plan,
    rules: &WatchRules,
    timeout: Duration,
) -> BTreeMap<String, Signals> {
    let reads = plan
        .regions()
        .iter()
        .map(|r| async move { (r.clone(), region(clouds, plan, rules, r, timeout).await) });
    join_all(reads).await.into_iter().collect()
}

/// Why this observer should not trust its own round: it reached no
/// region's API at all (its network, not three regions, is the likelier
/// fault). `None` when at least one region answered.
pub fn impaired(round: &BTreeMap<String, Signals>) -> Option<String> {
    if round.len() < 2 || round.values().any(|s| s.api.is_ok()) {
        return None;
    }
    Some(format!(
        "no region's API answered this observer ({})",
        round.keys().cloned().collect::<Vec<_>>().join(", ")
    ))
}
