//! `restore`: point-in-time restore of the target region's instance into a new
//! instance, for databases whose strategy is `point-in-time-restore` (in a
//! failover) and for `drctl restore` (one database, at a chosen time).
//!
//! The new instance's id is derived from the run id, so a re-run after a crash
//! finds the instance it already asked for instead of creating a second one.
//! The RPO achieved is the gap between the failure time and the restore point.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{DbInstance, RestorePoint};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, Phase, RunMode};

/// Restore one database resource in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restore {
    /// Plan resource id.
    pub resource: String,
    /// Source instance id in the target region.
    pub instance: String,
    /// Target region.
    pub region: String,
    /// Restore point; `None` = the latest restorable time.
    pub to_time: Option<DateTime<Utc>>,
}

/// What a restore publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreOutput {
    /// The restored instance.
    pub instance: String,
    /// The instance restored from.
    pub source: String,
    /// Region.
    pub region: String,
    /// The point restored to (the RPO is measured from it), when known.
    pub restore_point: Option<DateTime<Utc>>,
    /// Where the restore point came from.
    pub restore_point_source: String,
    /// When the restore was asked for (or found done).
    pub requested_at: DateTime<Utc>,
    /// The restored instance's endpoint.
    pub endpoint: Option<String>,
    /// Its port.
    pub port: Option<i32>,
    /// Whether it existed already (a re-run).
    pub already_existed: bool,
}

impl StepOutput for RestoreOutput {
    const KIND: KindName = KindName::Restore;
}

/// Part of the recovery; where the RPO is read (the restore point).
pub const TRAITS: Traits = Traits {
    endpoint: Some(|v| RestoreOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: Cost {
        calls: &[
            "rds:DescribeDBInstances",
            "rds:RestoreDBInstanceToPointInTime",
        ],
        waits: &["rds:RestoreDBInstanceToPointInTime"],
        polls: Some("rds:DescribeDBInstances"),
    },
    ..Traits::RECOVERY
};

/// The RPO of a restore: from the restore point to the RTO origin.
fn rpo(
    resource: &str,
    out: Option<&Value>,
    _gate_lag: Option<f64>,
    origin: DateTime<Utc>,
    origin_label: &str,
) -> (Option<f64>, String) {
    let point = out
        .and_then(RestoreOutput::read)
        .and_then(|o| o.restore_point);
    let what = "restore point";
    super::copies::restore_rpo(
        resource,
        (out.is_some(), point),
        what,
        (origin, origin_label),
    )
}

/// A failover restores every point-in-time-restore database; a restore run,
/// the one database it names.
pub fn compile(b: &mut Builder<'_>) {
    let (wanted, to_time): (Vec<&str>, _) = match b.mode {
        m if m.fails_over() => (
            b.plan
                .spec
                .database
                .iter()
                .filter(|d| d.strategy == DbStrategy::PointInTimeRestore)
                .map(|d| d.id.as_str())
                .collect(),
            None,
        ),
        RunMode::Restore { database, to_time } => (vec![database.as_str()], *to_time),
        RunMode::Failover { .. } | RunMode::Reprotect | RunMode::Drill { .. } => return,
    };
    let steps: Vec<Restore> = wanted
        .into_iter()
        .filter_map(|id| b.plan.spec.database(id))
        .map(|d| Restore {
            resource: d.id.clone(),
            instance: d.regions[b.target].clone(),
            region: b.target.to_string(),
            to_time,
        })
        .collect();
    for r in steps {
        let when = r
            .to_time
            .map_or("the latest restorable time".to_string(), |t| t.to_rfc3339());
        let description = format!(
            "restore {} in {} to {when}, into a new instance",
            r.instance, r.region
        );
        b.add(
            StepKind::Restore(r.clone()),
            Some(r.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::Database),
            vec![r.resource],
            description,
        );
    }
}

/// The id of the instance a run restores `source` into (stable per run, <= 63 chars).
pub fn restored_id(source: &str, run_id: &str) -> String {
    let tag: String = run_id
        .chars()
        .rev()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(6)
        .collect::<String>()
        .to_lowercase();
    let base: String = source.chars().take(63 - 10).collect();
    format!("{base}-r{tag}")
}

impl Restore {
    /// Decides what to restore `source` (as read) to (pure): the requested
    /// time, else its latest restorable time; refuses a source with
    /// backups off, or a time after its latest restorable time. Returns
    /// the point to ask for, the point known (the RPO is measured from
    /// it), and where that came from.
    // The error of `Action::run`, which returns what this gives.
    #[allow(clippy::result_large_err)]
    fn restore_point(
        &self,
        source: &DbInstance,
    ) -> Result<(RestorePoint, Option<DateTime<Utc>>, &'static str), StepFailure> {
        let (t, source_id) = (self.region.as_str(), self.instance.as_str());
        if source.backup_retention_days == 0 {
            return Err(StepFailure::state(
                format!(
                    "{source_id} in {t} has automated backups off: no point-in-time restore is possible"
                ),
                "enable backups (backup_retention_period > 0) or use promote-replica",
                source_id,
                t,
            ));
        }
        Ok(match self.to_time {
            Some(at) => {
                if let Some(latest) = source.latest_restorable_time
                    && at > latest
                {
                    return Err(StepFailure::state(
                        format!("{at} is after {source_id}'s latest restorable time {latest}"),
                        "pick an earlier --to-time, or --latest",
                        source_id,
                        t,
                    ));
                }
                (RestorePoint::At(at), Some(at), "the requested --to-time")
            }
            None => (
                RestorePoint::Latest,
                source.latest_restorable_time,
                "LatestRestorableTime reported by the provider",
            ),
        })
    }

    /// Why the copy this restore starts from, as `status` read it in a
    /// standby region, could not be used now (missing, unreadable, not
    /// available); whether it can be restored at all (backups on) is
    /// [`Action::readiness`]'s to say.
    pub fn standby_problems(&self, copy: super::copies::CopyRead<'_>) -> Vec<String> {
        super::copies::copy_problems(&self.instance, &self.region, copy, Vec::new())
    }
}

#[async_trait]
impl super::Writes for Restore {
    async fn endpoint_now(
        &self,
        clouds: &crate::cloud::Clouds,
        run_id: &str,
    ) -> super::EndpointNow {
        // The instance the run restored, named from the plan and the run.
        let id = super::restored_id(&self.instance, run_id);
        let read = clouds.database.describe_instance(&self.region, &id).await;
        let found = read.map(|i| i.map(|i| (i.endpoint, i.port)));
        super::EndpointNow::of(&id, &self.region, found)
    }
}

#[async_trait]
impl super::Ready for Restore {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        // `status` shows the instance; whether it can be restored (backups
        // on) is this kind's to say.
        self.preflight(cx).await
    }
}

#[async_trait]
impl Action for Restore {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("database {}", self.instance);
        match cx
            .clouds
            .database
            .describe_instance(&self.region, &self.instance)
            .await
        {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(i)) if i.backup_retention_days == 0 => vec![Finding::blocks(
                &what,
                &self.region,
                i.status.clone(),
                "automated backups are off: no point-in-time restore is possible",
            )],
            Ok(Some(i)) => vec![Finding::ok(
                &what,
                &self.region,
                format!(
                    "{}, backups kept {} days",
                    i.status, i.backup_retention_days
                ),
            )],
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let target = restored_id(&self.instance, cx.run_id);
        let existing = cx
            .clouds
            .database
            .describe_instance(&self.region, &target)
            .await?;
        Ok(vec![Planned {
            call: "rds:RestoreDBInstanceToPointInTime".into(),
            resource: format!("{} → {target}", self.instance),
            region: self.region.clone(),
            current: existing
                .as_ref()
                .map_or("absent".into(), |i| i.status.clone()),
            desired: format!(
                "new instance restored to {}, available",
                self.to_time
                    .map_or("the latest restorable time".to_string(), |t| t.to_rfc3339())
            ),
            change: existing.is_none(),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let t = self.region.as_str();
        let source_id = self.instance.as_str();
        let target_id = restored_id(source_id, cx.run_id);
        let source = cx
            .clouds
            .database
            .describe_instance(t, source_id)
            .await?
            .ok_or_else(|| {
                StepFailure::state(
                    format!("database {source_id} does not exist in {t}"),
                    "fix the id in the plan",
                    source_id,
                    t,
                )
            })?;
        let (point, restore_point, basis) = self.restore_point(&source)?;
        let existed = cx
            .clouds
            .database
            .describe_instance(t, &target_id)
            .await?
            .is_some();
        if !existed {
            cx.fenced(
                &format!("rds:RestoreDBInstanceToPointInTime into {target_id}"),
                t,
            )
            .await?;
            cx.clouds
                .database
                .restore_to_point_in_time(t, source_id, &target_id, point)
                .await?;
        }
        let done = wait_for(
            cx,
            &format!("restored instance {target_id} ({t}) to be available"),
            || async {
                Ok(cx
                    .clouds
                    .database
                    .describe_instance(t, &target_id)
                    .await?
                    .filter(|i| i.is_available()))
            },
        )
        .await?;
        RestoreOutput {
            instance: target_id,
            source: source_id.to_string(),
            region: t.to_string(),
            restore_point,
            restore_point_source: if restore_point.is_some() {
                basis
            } else {
                "unknown: the provider reported no LatestRestorableTime"
            }
            .to_string(),
            requested_at: Utc::now(),
            endpoint: done.endpoint,
            port: done.port,
            already_existed: existed,
        }
        .to_output()
    }
}
