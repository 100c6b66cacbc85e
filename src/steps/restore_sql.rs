//! `restore-sql`: a point-in-time restore of the target region's Cloud SQL
//! instance, as Cloud SQL makes one: a clone (`instances.clone` with
//! `cloneContext.pointInTime`) into a new instance, for `[[cloud_sql]]`
//! resources whose strategy is `point-in-time-restore`.
//!
//! The point is the latest the instance can be restored to, read right
//! before the call (`getLatestRecoveryTime`): a clone asked at a later point
//! is refused by Cloud SQL. The RPO is the gap from that point to the RTO
//! origin. The new instance's name is derived from the run id, and a
//! resumed run first looks for the clone's operation under way
//! (`operations.list` of the new name) or the clone done, so the clone is
//! asked for once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits, wait_for,
};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, Phase};

/// Restore one `[[cloud_sql]]` resource's instance in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreSql {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The instance restored from, in the target region.
    pub instance: String,
    /// Target region.
    pub region: String,
}

/// What a Cloud SQL restore publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreSqlOutput {
    /// The new instance.
    pub instance: String,
    /// The instance cloned from.
    pub source: String,
    /// Region.
    pub region: String,
    /// The point in time cloned at (the RPO is measured from it).
    pub restore_point: Option<DateTime<Utc>>,
    /// The clone's Cloud SQL operation, when the step made or found one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Whether the new instance existed already (a re-run).
    pub already_existed: bool,
    /// Its DNS name as Cloud SQL reports it, else its primary IP.
    pub endpoint: Option<String>,
}

impl StepOutput for RestoreSqlOutput {
    const KIND: KindName = KindName::RestoreSql;
}

/// Part of the recovery; where the RPO is read (the restore point).
pub const TRAITS: Traits = Traits {
    endpoint: Some(|v| RestoreSqlOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: super::copies::SQL_CLONE,
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
        .and_then(RestoreSqlOutput::read)
        .and_then(|o| o.restore_point);
    let what = "the clone's point in time";
    super::copies::restore_rpo(
        resource,
        (out.is_some(), point),
        what,
        (origin, origin_label),
    )
}

/// The name of the instance a run clones `source` into: stable per run,
/// at most 98 characters (Cloud SQL's limit with its project prefix).
pub fn clone_name(source: &str, run_id: &str) -> String {
    super::restored_id(source, run_id)
}

/// A failover restores every point-in-time-restore Cloud SQL resource.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<RestoreSql> = (b.plan.spec.cloud_sql.iter())
        .filter(|d| d.strategy == DbStrategy::PointInTimeRestore)
        .filter_map(|d| {
            Some(RestoreSql {
                resource: d.id.clone(),
                project: d.project.clone(),
                instance: d.regions.get(d.sites.gcp(b.target))?.clone(),
                region: d.sites.gcp(b.target).to_string(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "restore Cloud SQL {} in {} to its latest recovery time, as a clone into a new instance",
            s.instance, s.region
        );
        b.add(
            StepKind::RestoreSql(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudSql),
            vec![s.resource],
            description,
        );
    }
}

#[async_trait]
impl super::Writes for RestoreSql {
    async fn endpoint_now(
        &self,
        clouds: &crate::cloud::Clouds,
        run_id: &str,
    ) -> super::EndpointNow {
        // The clone the run made, named from the plan and the run.
        let target = clone_name(&self.instance, run_id);
        let (r, p) = (&self.region, &self.project);
        let read = clouds.cloud_sql.describe_sql(r, p, &target).await;
        let found = read.map(|i| i.map(|i| (i.endpoint, None)));
        super::EndpointNow::of(&target, r, found)
    }
}

#[async_trait]
impl super::Ready for RestoreSql {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        self.preflight(cx).await
    }
}

#[async_trait]
impl Action for RestoreSql {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("cloud sql {}", self.instance);
        let sql = &cx.clouds.cloud_sql;
        match sql
            .recovery_window(&self.region, &self.project, &self.instance)
            .await
        {
            Ok(w) => vec![Finding::ok(
                &what,
                &self.region,
                format!("restorable up to {}", w.latest.to_rfc3339()),
            )],
            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => {
                vec![Finding::missing(&what, &self.region)]
            }
            Err(e) => vec![Finding::blocks(
                &what,
                &self.region,
                "not restorable",
                e.message.clone(),
            )],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let target = clone_name(&self.instance, cx.run_id);
        let existing = (cx.clouds.cloud_sql)
            .describe_sql(&self.region, &self.project, &target)
            .await?;
        Ok(vec![Planned {
            call: "sqladmin:instances.clone".into(),
            resource: format!("{} → {target}", self.instance),
            region: self.region.clone(),
            current: existing
                .as_ref()
                .map_or("absent".into(), |i| i.state.clone()),
            desired: "a new instance cloned at the latest recovery time, RUNNABLE".into(),
            change: existing.is_none(),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (p, r, source) = (
            self.project.as_str(),
            self.region.as_str(),
            self.instance.as_str(),
        );
        let sql = &cx.clouds.cloud_sql;
        let target = clone_name(source, cx.run_id);
        let mut out = RestoreSqlOutput {
            instance: target.clone(),
            source: source.to_string(),
            region: r.to_string(),
            ..RestoreSqlOutput::default()
        };
        let existing = sql.describe_sql(r, p, &target).await?;
        let under_way = match &existing {
            Some(_) => None,
            None => (sql.operations(r, p, &target).await?)
                .into_iter()
                .find(|o| o.kind == "CLONE"),
        };
        out.already_existed = existing.is_some() || under_way.is_some();
        let op = match under_way {
            Some(op) => Some(op),
            None if existing.is_none() => {
                let w = sql.recovery_window(r, p, source).await.map_err(|e| {
                    if e.kind == crate::cloud::ErrorKind::NotFound {
                        StepFailure::state(
                            format!("Cloud SQL instance {source} does not exist in {r}"),
                            "fix the instance's name in the plan",
                            source,
                            r,
                        )
                    } else {
                        e.into()
                    }
                })?;
                out.restore_point = Some(w.latest);
                cx.fenced(
                    &format!("sqladmin:instances.clone of {source} into {target}"),
                    r,
                )
                .await?;
                Some(sql.clone_sql(r, p, source, &target, Some(w.latest)).await?)
            }
            None => None,
        };
        if let Some(op) = op {
            out.operation = Some(op.name.clone());
            let done = wait_for(
                cx,
                &format!("Cloud SQL operation {} (clone into {target})", op.name),
                || async {
                    let o = sql.operation(r, p, &op.name).await?;
                    Ok(o.is_done().then_some(o))
                },
            )
            .await?;
            if let Some(e) = done.error {
                return Err(StepFailure::state(
                    format!(
                        "Cloud SQL operation {} (CLONE of {source} into {target}) failed: {e}",
                        done.name
                    ),
                    "run the failover again once its cause is fixed",
                    source,
                    r,
                ));
            }
        }
        let done = wait_for(
            cx,
            &format!("cloned instance {target} ({r}) to be RUNNABLE"),
            || async { Ok((sql.describe_sql(r, p, &target).await?).filter(|i| i.is_runnable())) },
        )
        .await?;
        out.endpoint = done.endpoint;
        out.to_output()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::steps::graph::RunMode;

    #[tokio::test]
    async fn a_failover_clones_the_target_at_its_latest_recovery_time_once() {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
        let loaded = crate::plan::load(&[path]);
        let mut plan = loaded.plans.into_iter().next().expect("orders-gcp");
        plan.spec.cloud_sql[0].strategy = DbStrategy::PointInTimeRestore;
        plan.spec.cloud_sql[0].dr_replica = false;
        let f = FakeCloud::new();
        f.add_sql("drctl-emu", "us-east4", "orders-sql-use4", None, false);
        let mode = RunMode::Failover { planned: false };
        let g = crate::steps::graph::compile_mode(&plan, "us-east4", &mode).unwrap();
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::RestoreSql(s) => Some(s.clone()),
                _ => None,
            })
            .expect("a restore-sql step");
        assert!(
            !g.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::PromoteSql(_)))
        );
        let clouds = f.clouds();
        let outputs = BTreeMap::new();
        let cx = Cx {
            run_id: "20261125T060000Z-orders-gcp-b2",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(&clouds, &plan, "us-east4", &outputs, &g.steps)
        };
        let out = RestoreSqlOutput::read(&step.run(&cx).await.expect("restored")).unwrap();
        assert_eq!(out.instance, clone_name("orders-sql-use4", cx.run_id));
        assert!(out.restore_point.is_some() && out.operation.is_some());
        assert!(!out.already_existed);
        // Run again (a resume): the clone exists, nothing is sent.
        let again = RestoreSqlOutput::read(&step.run(&cx).await.expect("found")).unwrap();
        assert!(again.already_existed);
        assert_eq!(f.state().writes.len(), 1, "{:?}", f.state().writes);
    }

    #[test]
    fn the_rpo_is_the_gap_from_the_point_in_time_and_unknown_without_one() {
        let origin = Utc::now();
        let point = origin - chrono::Duration::seconds(30);
        let out = serde_json::to_value(RestoreSqlOutput {
            restore_point: Some(point),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(rpo("db", Some(&out), None, origin, "x").0, Some(30.0));
        let none = serde_json::to_value(RestoreSqlOutput::default()).unwrap();
        assert_eq!(rpo("db", Some(&none), None, origin, "x").0, None);
    }
}
