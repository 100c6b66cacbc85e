//! `restore`: point-in-time restore of the target region's instance into a new
//! instance, for databases whose strategy is `point-in-time-restore`.
//!
//! The new instance's id is derived from the run id, so a re-run after a crash
//! finds the instance it already asked for instead of creating a second one.
//! The RPO achieved is the gap between the failure time and the restore point.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};

use super::{Action, Cx, Planned, StepFailure, wait_for};
use crate::cloud::RestorePoint;

/// Restore one database resource in the target region.
pub struct Restore {
    /// Plan resource id.
    pub resource: String,
    /// Restore point; `None` = the latest restorable time.
    pub to_time: Option<chrono::DateTime<Utc>>,
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

#[async_trait]
impl Action for Restore {
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let d = cx
            .plan
            .spec
            .database(&self.resource)
            .expect("graph steps name plan resources");
        let source = &d.regions[cx.target];
        let target = restored_id(source, cx.run_id);
        let existing = cx
            .clouds
            .database
            .describe_instance(cx.target, &target)
            .await?;
        Ok(vec![Planned {
            call: "rds:RestoreDBInstanceToPointInTime".into(),
            resource: format!("{source} → {target}"),
            region: cx.target.into(),
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
        let d = cx
            .plan
            .spec
            .database(&self.resource)
            .expect("graph steps name plan resources");
        let t = cx.target;
        let source_id = &d.regions[t];
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
        let (point, restore_point, basis) = match self.to_time {
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
        };
        let existed = cx
            .clouds
            .database
            .describe_instance(t, &target_id)
            .await?
            .is_some();
        if !existed {
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
        Ok(json!({
            "instance": target_id,
            "source": source_id,
            "region": t,
            "restore_point": restore_point,
            "restore_point_source": if restore_point.is_some() { basis } else { "unknown: the provider reported no LatestRestorableTime" },
            "requested_at": Utc::now(),
            "endpoint": done.endpoint,
            "port": done.port,
            "already_existed": existed,
        }))
    }
}
