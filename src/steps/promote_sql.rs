//! `promote-sql`: make the target region's Cloud SQL replica the primary.
//!
//! Three paths, chosen from what the step reads in the target region (the
//! choice is pure: [`decide`]):
//!
//! - **promote** (`promoteReplica`): a cross-region read replica becomes a
//!   standalone primary. It cannot be undone; the old primary keeps its
//!   data and stops replicating to it.
//! - **DR failover** (`promoteReplica` with `failover=true`) when the plan
//!   names the replica its primary's Enterprise Plus DR replica
//!   (`dr_replica = true`) and the run is not planned: the replica takes
//!   over its primary's role and replicas at once, with what it has.
//! - **switchover** (`switchover`) for a DR replica when the run is planned
//!   (a failback, a switchover drill, `failover --planned`): the roles swap,
//!   nothing is lost, and the old primary becomes the DR replica.
//!
//! Every write answers a Cloud SQL operation, which the crate does not
//! poll: the step polls `operations.get` with the run's pace and budget
//! ([`wait_for`]) until it is `DONE`, and fails naming it when it ends with
//! an error. The engine has no journal of a step's progress before its
//! end, so a step resumed after a crash (or after losing the call's
//! answer) asks Cloud SQL instead: it lists the instance's operations
//! (`operations.list`) and waits on one of its own kinds still under way
//! rather than calling again; an instance already primary is done. The
//! operation's name is journaled with the step's outputs.
//!
//! The RPO is the replica's `replica_lag` read right before the call (the
//! RPO gate's reading while it is fresh, as `promote` does); a switchover's
//! is 0 by design.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::copies::LagRecord;
use super::sql_moves::{PromoteSqlOutput, SqlPath};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{DbRole, SqlInstance, SqlOperation};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, Phase, RunMode};

/// Promote one `[[cloud_sql]]` resource's replica in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromoteSql {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The instance in the target region.
    pub instance: String,
    /// Target region.
    pub region: String,
    /// The plan names it its primary's Enterprise Plus DR replica.
    pub dr_replica: bool,
    /// A planned move (switchover for a DR replica) rather than a failover.
    pub planned: bool,
}

/// What the step does, and why ([`decide`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlDecision {
    /// Nothing: the target is a primary already.
    Done {
        /// Why.
        why: String,
    },
    /// An operation of ours is under way on the target: wait on it.
    Wait {
        /// Its name.
        operation: String,
        /// Why.
        why: String,
    },
    /// The target is a replica that does not serve yet: wait for it.
    WaitRunnable {
        /// Why.
        why: String,
    },
    /// Make the call.
    Act {
        /// Which.
        path: SqlPath,
        /// Why.
        why: String,
    },
    /// Refuse: the world is not in a state the step can work from.
    Refuse {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
}

/// The kinds of operation the step makes (and so waits on when found).
const OURS: [&str; 2] = ["PROMOTE_REPLICA", "SWITCHOVER"];

/// Decides what to do from the facts read: the target instance and its
/// operations (newest first). Pure.
pub fn decide(
    step: &PromoteSql,
    target: Option<&SqlInstance>,
    operations: &[SqlOperation],
) -> SqlDecision {
    let (name, r) = (&step.instance, &step.region);
    let Some(target) = target else {
        return SqlDecision::Refuse {
            message: format!(
                "Cloud SQL instance {name} does not exist in project {} ({r})",
                step.project
            ),
            hint: "fix the instance's name in the plan, or create the cross-region replica".into(),
        };
    };
    if let Some(op) = (operations.iter()).find(|o| !o.is_done() && OURS.contains(&o.kind.as_str()))
    {
        return SqlDecision::Wait {
            operation: op.name.clone(),
            why: format!(
                "operation {} ({}) is already under way on {name}: waiting on it, not calling again",
                op.name, op.kind
            ),
        };
    }
    let DbRole::Replica(primary) = &target.role else {
        return SqlDecision::Done {
            why: format!("{name} in {r} is a primary already; not promoting again"),
        };
    };
    if !target.is_runnable() {
        return SqlDecision::WaitRunnable {
            why: format!("replica {name} is {}, not RUNNABLE", target.state),
        };
    }
    if step.dr_replica && !target.dr_replica {
        return SqlDecision::Refuse {
            message: format!(
                "the plan names {name} the DR replica of {primary}, but Cloud SQL does not (its replicationCluster says otherwise)"
            ),
            hint: format!(
                "designate it (gcloud sql instances patch {primary} --failover-dr-replica-name={name}), or remove `dr_replica` from the plan for a plain promotion"
            ),
        };
    }
    match (step.dr_replica, step.planned) {
        (true, true) => SqlDecision::Act {
            path: SqlPath::Switchover,
            why: format!(
                "a planned move: switchover of {primary} to its DR replica {name} (nothing is lost; {primary} becomes the DR replica)"
            ),
        },
        (true, false) => SqlDecision::Act {
            path: SqlPath::DrFailover,
            why: format!(
                "an unplanned failover: {name}, {primary}'s DR replica, takes over (promoteReplica with failover; data loss within the lag the RPO gate allowed)"
            ),
        },
        (false, _) => SqlDecision::Act {
            path: SqlPath::Promote,
            why: format!(
                "promote read replica {name} of {primary} to a standalone primary (cannot be undone)"
            ),
        },
    }
}

impl StepOutput for PromoteSqlOutput {
    const KIND: KindName = KindName::PromoteSql;
}

/// What people must know after a plain promotion (not a DR failover nor a
/// switchover): Cloud SQL leaves the old primary as it was, writable, an
/// independent primary beside the new one (pure; the run's report and
/// notifications carry it).
fn plain_promotion_warning(o: &PromoteSqlOutput) -> Option<String> {
    if o.path != Some(SqlPath::Promote) {
        return None;
    }
    let old = match &o.source {
        Some(source) => format!("the old primary {source}"),
        None => "the old primary".to_string(),
    };
    Some(format!(
        "Cloud SQL instance {} in {} was promoted to a standalone primary: {old} was not demoted and stays writable, an independent primary beside it; stop writes to it, and replace it with a replica of {} (drctl reprotect refuses until it is, so that there are never two writable primaries)",
        o.instance, o.region, o.instance
    ))
}

/// Part of the recovery, irreversible (but for a switchover), and where
/// the RPO is read.
pub const TRAITS: Traits = Traits {
    warnings: Some(|v| {
        PromoteSqlOutput::read(v)
            .map(|o| plain_promotion_warning(&o).into_iter().collect())
            .unwrap_or_default()
    }),
    irreversible: Some(
        "a promotion or a DR failover cannot be undone: failing back means a new cross-region replica of the new primary (gcloud sql instances create --master-instance-name; drctl reprotect does not make Cloud SQL replicas yet), then a failover back; a planned switchover of a DR replica is switched back by another",
    ),
    endpoint: Some(|v| PromoteSqlOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: Cost {
        calls: &[
            "sqladmin:instances.get",
            "sqladmin:operations.list",
            "monitoring:timeSeries.list",
            "sqladmin:instances.promoteReplica",
        ],
        waits: &["sqladmin:instances.promoteReplica"],
        polls: Some("sqladmin:operations.get"),
    },
    ..Traits::RECOVERY
};

/// The RPO: 0 by design for a switchover; the `replica_lag` read right
/// before a promotion or a DR failover; the RPO gate's when the step found
/// the target a primary already; unknown otherwise (never zero).
fn rpo(
    resource: &str,
    out: Option<&Value>,
    gate_lag: Option<f64>,
    _origin: DateTime<Utc>,
    _origin_label: &str,
) -> (Option<f64>, String) {
    let Some(out) = out.map(|o| PromoteSqlOutput::read(o).unwrap_or_default()) else {
        return (
            None,
            format!("{resource}: unknown (the promotion has not completed)"),
        );
    };
    let lag = out.lag.seconds();
    let n = out.lag.count();
    match (out.path, lag) {
        (Some(SqlPath::Switchover), _) => (
            Some(0.0),
            format!(
                "{resource}: 0 by design of a Cloud SQL switchover (the DR replica catches up before the roles swap; not measured{})",
                lag.map(|l| format!("; replica_lag before it: {l:.3} s"))
                    .unwrap_or_default()
            ),
        ),
        (_, Some(l)) => (
            Some(l),
            format!("{resource}: replica_lag read just before the promotion ({n} datapoints)"),
        ),
        (_, None) => match gate_lag {
            Some(l) => (
                Some(l),
                format!(
                    "{resource}: replica_lag recorded by the RPO gate (no reading at the promotion)"
                ),
            ),
            None => (
                None,
                format!("{resource}: unknown (no replica_lag points at the promotion)"),
            ),
        },
    }
}

/// A failover promotes every promote-replica Cloud SQL resource of the
/// plan; a planned one switches a DR replica over.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let planned = matches!(
        b.mode,
        RunMode::Failover { planned: true } | RunMode::Drill { .. }
    );
    let steps: Vec<PromoteSql> = (b.plan.spec.cloud_sql.iter())
        .filter(|d| d.strategy == DbStrategy::PromoteReplica)
        .filter_map(|d| {
            Some(PromoteSql {
                resource: d.id.clone(),
                project: d.project.clone(),
                instance: d.regions.get(d.sites.gcp(b.target))?.clone(),
                region: d.sites.gcp(b.target).to_string(),
                dr_replica: d.dr_replica,
                planned,
            })
        })
        .collect();
    for s in steps {
        let description = match (s.dr_replica, s.planned) {
            (true, true) => format!(
                "switch Cloud SQL over to DR replica {} in {} (planned: nothing lost)",
                s.instance, s.region
            ),
            (true, false) => format!(
                "fail Cloud SQL over to DR replica {} in {} (cannot be undone)",
                s.instance, s.region
            ),
            (false, _) => format!(
                "promote Cloud SQL replica {} in {} to primary (cannot be undone)",
                s.instance, s.region
            ),
        };
        b.add(
            StepKind::PromoteSql(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudSql),
            vec![s.resource],
            description,
        );
    }
}

impl PromoteSql {
    async fn read(&self, cx: &Cx<'_>) -> Result<Option<SqlInstance>, StepFailure> {
        Ok((cx.clouds.cloud_sql)
            .describe_sql(&self.region, &self.project, &self.instance)
            .await?)
    }

    /// The replica's lag before the call: the RPO gate's reading of moments
    /// ago on this run's path while fresh, else a read now.
    async fn record_lag(&self, cx: &Cx<'_>, out: &mut PromoteSqlOutput) -> Result<(), StepFailure> {
        let (p, r, name) = (&self.project, &self.region, &self.instance);
        let read = || (cx.clouds.cloud_sql).sql_replica_lag(r, p, name, cx.lag_window);
        out.lag = LagRecord::before_move(cx, &self.resource, "promote-sql", read).await?;
        Ok(())
    }

    /// Polls operation `name` until it is done; fails naming it when it
    /// ended with an error.
    async fn until_done(&self, cx: &Cx<'_>, name: &str) -> Result<SqlOperation, StepFailure> {
        let (p, r) = (self.project.as_str(), self.region.as_str());
        let op = wait_for(
            cx,
            &format!("Cloud SQL operation {name} on {} ({r})", self.instance),
            || async {
                let op = cx.clouds.cloud_sql.operation(r, p, name).await?;
                Ok(op.is_done().then_some(op))
            },
        )
        .await?;
        if let Some(e) = &op.error {
            return Err(StepFailure::state(
                format!(
                    "Cloud SQL operation {} ({}) on {} failed: {e}",
                    op.name, op.kind, self.instance
                ),
                format!(
                    "read it with `gcloud sql operations describe {} --project {p}`; run the failover again once its cause is fixed (the step reads the instance first)",
                    op.name
                ),
                &self.instance,
                r,
            ));
        }
        Ok(op)
    }

    /// Waits until the replica is `RUNNABLE` (it cannot be promoted
    /// before).
    async fn until_runnable(&self, cx: &Cx<'_>) -> Result<(), StepFailure> {
        let (name, r) = (self.instance.as_str(), self.region.as_str());
        wait_for(
            cx,
            &format!("replica {name} ({r}) to be RUNNABLE"),
            || async {
                let i = self.read(cx).await?;
                Ok(i.filter(|i| i.is_runnable()).map(|_| ()))
            },
        )
        .await
    }

    /// Waits on `operation`, a move of the instance already under way (a
    /// resumed run, a lost answer), and records it in `out` as this step's
    /// move, its path read from the operation's kind.
    async fn resume(
        &self,
        cx: &Cx<'_>,
        operation: &str,
        why: String,
        out: &mut PromoteSqlOutput,
    ) -> Result<(), StepFailure> {
        let op = self.until_done(cx, operation).await?;
        out.operation = Some(op.name.clone());
        out.resumed_operation = true;
        // When the move was asked for (the old side is followed from then).
        out.promoted_at = out.promoted_at.or(op.inserted);
        out.path = Some(match op.kind.as_str() {
            "SWITCHOVER" => SqlPath::Switchover,
            _ if self.dr_replica => SqlPath::DrFailover,
            _ => SqlPath::Promote,
        });
        out.why = why;
        Ok(())
    }

    /// Sends the move `path` says (a switchover, else a promotion, with
    /// `failover` for a DR replica), fenced first; returns its operation.
    async fn send(&self, cx: &Cx<'_>, path: SqlPath) -> Result<String, StepFailure> {
        let (p, r, name) = (
            self.project.as_str(),
            self.region.as_str(),
            self.instance.as_str(),
        );
        let call = match path {
            SqlPath::Switchover => "sqladmin:instances.switchover",
            _ => "sqladmin:instances.promoteReplica",
        };
        cx.fenced(&format!("{call} of {name}"), r).await?;
        let sql = &cx.clouds.cloud_sql;
        let op = match path {
            SqlPath::Switchover => sql.switchover_sql(r, p, name).await?,
            _ => {
                sql.promote_sql(r, p, name, path == SqlPath::DrFailover)
                    .await?
            }
        };
        Ok(op.name)
    }

    /// Waits until the instance is a runnable primary; its endpoint.
    async fn until_primary(&self, cx: &Cx<'_>) -> Result<SqlInstance, StepFailure> {
        wait_for(
            cx,
            &format!(
                "{} ({}) to be a RUNNABLE primary",
                self.instance, self.region
            ),
            || async {
                let i = self.read(cx).await?;
                Ok(i.filter(|i| i.role == DbRole::Primary && i.is_runnable()))
            },
        )
        .await
    }
}

#[async_trait]
impl super::Writes for PromoteSql {
    async fn endpoint_now(&self, clouds: &crate::cloud::Clouds, _: &str) -> super::EndpointNow {
        let (r, p, name) = (&self.region, &self.project, &self.instance);
        let read = clouds.cloud_sql.describe_sql(r, p, name).await;
        let found = read.map(|i| i.map(|i| (i.followed_endpoint(), None)));
        super::EndpointNow::of(name, r, found)
    }
}

#[async_trait]
impl Action for PromoteSql {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("cloud sql {}", self.instance);
        let read = (cx.clouds.cloud_sql)
            .describe_sql(&self.region, &self.project, &self.instance)
            .await;
        match read {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(i)) => {
                let role = match &i.role {
                    DbRole::Primary => "primary".to_string(),
                    DbRole::Replica(p) => format!(
                        "replica of {p}{}",
                        if i.dr_replica { ", DR replica" } else { "" }
                    ),
                };
                vec![Finding::ok(
                    &what,
                    &self.region,
                    format!("{} ({role})", i.state.to_lowercase()),
                )]
            }
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let i = self.read(cx).await?;
        let d = decide(self, i.as_ref(), &[]);
        let (call, change) = match &d {
            SqlDecision::Act { path, .. } => (
                match path {
                    SqlPath::Switchover => "sqladmin:instances.switchover",
                    _ => "sqladmin:instances.promoteReplica",
                },
                true,
            ),
            _ => ("sqladmin:instances.promoteReplica", false),
        };
        Ok(vec![Planned {
            call: call.into(),
            resource: self.instance.clone(),
            region: self.region.clone(),
            current: match &i {
                None => "missing".into(),
                Some(i) => match &i.role {
                    DbRole::Primary => format!("primary ({})", i.state),
                    DbRole::Replica(p) => format!("replica of {p} ({})", i.state),
                },
            },
            desired: match d {
                SqlDecision::Act { why, .. } | SqlDecision::Done { why } => why,
                SqlDecision::Wait { why, .. } | SqlDecision::WaitRunnable { why } => why,
                SqlDecision::Refuse { message, .. } => message,
            },
            change,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (p, r, name) = (
            self.project.as_str(),
            self.region.as_str(),
            self.instance.as_str(),
        );
        let mut out = PromoteSqlOutput {
            instance: name.to_string(),
            region: r.to_string(),
            project: p.to_string(),
            ..PromoteSqlOutput::default()
        };
        let mut acted = false;
        loop {
            let target = self.read(cx).await?;
            // Our own operations still under way (a resumed run, a lost
            // answer): only a replica can have one worth waiting on.
            let ops = match &target {
                Some(i) if i.role != DbRole::Primary => {
                    cx.clouds.cloud_sql.operations(r, p, name).await?
                }
                _ => Vec::new(),
            };
            match decide(self, target.as_ref(), &ops) {
                SqlDecision::Refuse { message, hint } => {
                    return Err(StepFailure::state(message, hint, name, r));
                }
                SqlDecision::Done { why } => {
                    out.path.get_or_insert(SqlPath::Already);
                    if out.why.is_empty() {
                        out.why = why;
                    }
                    break;
                }
                SqlDecision::WaitRunnable { why } => {
                    tracing::info!(instance = name, region = r, "{why}");
                    self.until_runnable(cx).await?;
                }
                SqlDecision::Wait { operation, why } => {
                    tracing::info!(instance = name, region = r, "{why}");
                    if let Some(DbRole::Replica(src)) = target.as_ref().map(|t| &t.role) {
                        out.source = Some(src.clone());
                    }
                    self.resume(cx, &operation, why, &mut out).await?;
                    acted = true;
                }
                SqlDecision::Act { .. } if acted => {
                    return Err(StepFailure::state(
                        format!(
                            "Cloud SQL operation {} is done, yet {name} is still a replica",
                            out.operation.as_deref().unwrap_or("?")
                        ),
                        "read the instance (`drctl status`) and run the failover again: the step reads first",
                        name,
                        r,
                    ));
                }
                SqlDecision::Act { path, why } => {
                    if let Some(DbRole::Replica(src)) = target.as_ref().map(|t| &t.role) {
                        out.source = Some(src.clone());
                    }
                    self.record_lag(cx, &mut out).await?;
                    let op = self.send(cx, path).await?;
                    out.promoted_at = Some(Utc::now());
                    out.operation = Some(op.clone());
                    out.path = Some(path);
                    out.why = why;
                    acted = true;
                    self.until_done(cx, &op).await?;
                }
            }
        }
        let done = self.until_primary(cx).await?;
        out.endpoint = done.followed_endpoint();
        out.to_output()
    }
}

#[cfg(test)]
mod tests;
