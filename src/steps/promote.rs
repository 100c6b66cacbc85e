//! `promote`: promote the target region's read replica to a writable primary.
//!
//! Promotion cannot be undone: the old primary keeps its data but stops
//! replicating to this copy, and getting back means new replicas
//! (`drctl reprotect`) and a second failover (`drctl failback`). So the step
//! re-reads the instance first (an instance that is already a primary is not
//! promoted again), measures the replica lag right before promoting (the RPO
//! achieved), and waits until the instance is a primary and available.

use async_trait::async_trait;
use chrono::Utc;
use serde_json::{Value, json};

use super::{Action, Cx, Planned, StepFailure, wait_for};
use crate::cloud::DbRole;

/// Promote one database resource's replica in the target region.
pub struct Promote {
    /// Plan resource id.
    pub resource: String,
}

impl Promote {
    fn instance<'a>(&self, cx: &'a Cx<'_>) -> &'a str {
        let d = cx
            .plan
            .spec
            .database(&self.resource)
            .expect("graph steps name plan resources");
        d.regions[cx.target].as_str()
    }
}

#[async_trait]
impl Action for Promote {
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let id = self.instance(cx);
        let inst = cx.clouds.database.describe_instance(cx.target, id).await?;
        let current = match &inst {
            None => "missing".to_string(),
            Some(i) => match &i.role {
                DbRole::Primary => format!("primary ({})", i.status),
                DbRole::Replica(src) => format!("replica of {src} ({})", i.status),
            },
        };
        Ok(vec![Planned {
            call: "rds:PromoteReadReplica".into(),
            resource: id.into(),
            region: cx.target.into(),
            current,
            desired: "primary (available); cannot be undone".into(),
            change: inst.is_none_or(|i| i.role != DbRole::Primary),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let id = self.instance(cx);
        let t = cx.target;
        let inst = cx
            .clouds
            .database
            .describe_instance(t, id)
            .await?
            .ok_or_else(|| {
                StepFailure::state(
                    format!("database {id} does not exist in {t}"),
                    "create the replica (drctl reprotect) or fix the id in the plan",
                    id,
                    t,
                )
            })?;
        let mut out = json!({ "instance": id, "region": t });
        match &inst.role {
            DbRole::Primary => {
                tracing::info!(
                    instance = id,
                    region = t,
                    "already a primary; not promoting again"
                );
                out["already_primary"] = json!(true);
            }
            DbRole::Replica(source) => {
                if !inst.is_available() {
                    wait_for(
                        cx,
                        &format!("replica {id} ({t}) to be available before promotion"),
                        || async {
                            let i = cx.clouds.database.describe_instance(t, id).await?;
                            Ok(i.filter(|i| i.is_available()).map(|_| ()))
                        },
                    )
                    .await?;
                }
                let lag = cx.clouds.metrics.replica_lag(t, id, cx.lag_window).await?;
                out["source"] = json!(source);
                out["lag_seconds"] = json!(
                    lag.latest
                        .map(|(d, _)| d.as_secs_f64())
                        .or(lag.max.map(|d| d.as_secs_f64()))
                );
                out["lag_max_seconds"] = json!(lag.max.map(|d| d.as_secs_f64()));
                out["lag_datapoints"] = json!(lag.datapoints);
                out["lag_read_at"] = json!(Utc::now());
                cx.clouds.database.promote_replica(t, id).await?;
                out["promoted_at"] = json!(Utc::now());
            }
        }
        let done = wait_for(
            cx,
            &format!("{id} ({t}) to become an available primary"),
            || async {
                let i = cx.clouds.database.describe_instance(t, id).await?;
                Ok(i.filter(|i| i.role == DbRole::Primary && i.is_available()))
            },
        )
        .await?;
        out["endpoint"] = json!(done.endpoint);
        out["port"] = json!(done.port);
        Ok(out)
    }
}
