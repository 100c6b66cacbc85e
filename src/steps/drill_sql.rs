//! `drill-sql`: rehearse a `[[cloud_sql]]` failover on a drill copy. A
//! shadow drill clones the home primary at its latest recovery time
//! (`instances.clone` with `cloneContext.pointInTime`) into the instance
//! `drill-<short id>-<standby replica>`, waits on the clone's operation
//! and until the copy is `RUNNABLE`, and its cleanup deletes it
//! (`instances.delete`). Production (the primary, its replicas, their
//! roles) is only read.
//!
//! # Why a clone of the primary, not of the standby
//!
//! AWS's `drill-database` copies the home primary (a temporary replica of
//! it, promoted) and `drill-global` clones the target's Aurora secondary.
//! A Cloud SQL read replica cannot be cloned: replicas keep no backups
//! (`backupConfiguration` cannot be enabled on one) and a clone is made
//! from its source's backup and logs; Cloud SQL refuses it (the emulator
//! and the fake do too). So the drill clones what a clone can be taken of,
//! the primary, as `drill-database` reads from it: at its latest recovery
//! time, read right before the call. Cloud SQL keeps a clone in its
//! source's region, so the copy is in the home region: it rehearses the
//! data's recovery (its time and what it holds), not the standby region's
//! capacity, which `drill-raise` rehearses.
//!
//! # Measured
//!
//! The RPO is the gap from the clone's point in time to the moment it was
//! asked for (what a recovery then would have lost: the logs not shipped
//! yet). The step's time to `RUNNABLE` is in the drill's RTO.
//!
//! # Crash safety
//!
//! The clone is named from the run id and the standby replica alone, and
//! the engine journals it ([`Temp::SqlClone`], from [`Action::creates`])
//! before the step starts, so a crash between the call and its answer
//! still leaves it named. The clone's operation is in the step's outputs;
//! a step run again (or a cleanup after a crash) finds a clone under way
//! by listing the new name's operations (`operations.list`) and waits on
//! it instead of cloning again. The cleanup deletes only the name the run
//! made (`drill-<this drill's short id>-…`), waiting first for a clone
//! still under way, and proves the removal with `instances.get`.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::copies::RestoreOf;
use super::leftovers::{Drill, Drilled, Left, Look, copy_short, keep};
use super::{
    Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits, drill_names,
};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, CloudSql, Clouds, DbRole, ErrorKind, SqlInstance, SqlOperation};
use crate::journal::{CleanupResult, Temp};
use crate::plan::kinds::restoring::{Restoring, decide_point};
use crate::plan::kinds::{SqlRestoring, sql_address};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Clone one `[[cloud_sql]]` resource's primary for a shadow drill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillSql {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The primary cloned (the home region's instance).
    pub source: String,
    /// The home region (where the primary, and so the clone, is).
    pub source_region: String,
    /// The standby replica in the target region (its name names the clone).
    pub replica: String,
    /// Target region.
    pub region: String,
}

/// Part of the drill's recovery; where its RPO is read.
pub const TRAITS: Traits = Traits {
    endpoint: Some(|v| DrillSqlOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: super::copies::SQL_CLONE,
    ..Traits::RECOVERY
};

/// What a drill's Cloud SQL step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillSqlOutput {
    /// The drill's clone.
    pub instance: String,
    /// The primary it was cloned from.
    pub source: String,
    /// The clone's region (its source's).
    pub region: String,
    /// The point in time cloned at (the latest recovery time, read right
    /// before the call).
    pub restore_point: Option<DateTime<Utc>>,
    /// When the clone was asked for.
    pub requested_at: Option<DateTime<Utc>>,
    /// The clone's operation, when the step made or found one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Whether the clone (or its operation) was there already (a re-run).
    pub already_existed: bool,
    /// The clone's DNS name as Cloud SQL reports it, else its primary IP.
    pub endpoint: Option<String>,
}

impl StepOutput for DrillSqlOutput {
    const KIND: KindName = KindName::DrillSql;
}

/// The drill's RPO: the gap from the clone's point in time to its request;
/// unknown (never 0) without both.
fn rpo(
    resource: &str,
    out: Option<&Value>,
    _gate_lag: Option<f64>,
    _origin: DateTime<Utc>,
    _origin_label: &str,
) -> (Option<f64>, String) {
    let Some(out) = out.map(|o| DrillSqlOutput::read(o).unwrap_or_default()) else {
        return (
            None,
            format!("{resource}: unknown (the drill's clone has not completed)"),
        );
    };
    match (out.restore_point, out.requested_at) {
        (Some(point), Some(asked)) => (
            Some(((asked - point).num_milliseconds() as f64 / 1000.0).max(0.0)),
            format!(
                "{resource}: gap from the clone's point in time {point} (the latest recovery time of {}) to its request",
                out.source
            ),
        ),
        _ => (
            None,
            format!(
                "{resource}: unknown (the clone was found made already; the recovery time read before it is lost)"
            ),
        ),
    }
}

/// A shadow drill clones every promote-replica Cloud SQL resource's
/// primary.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    let home = b.plan.home().to_string();
    let steps: Vec<DrillSql> = (b.plan.spec.cloud_sql.iter())
        .filter(|d| d.strategy == DbStrategy::PromoteReplica)
        .filter_map(|d| {
            Some(DrillSql {
                resource: d.id.clone(),
                project: d.project.clone(),
                source: d.regions.get(d.sites.gcp(&home))?.clone(),
                source_region: d.sites.gcp(&home).to_string(),
                replica: d.regions.get(d.sites.gcp(b.target))?.clone(),
                region: d.sites.gcp(b.target).to_string(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "clone Cloud SQL primary {} ({}) at its latest recovery time into a drill copy, wait until RUNNABLE ({} and the primary are not changed); deleted at cleanup",
            s.source, s.source_region, s.replica
        );
        b.add(
            StepKind::DrillSql(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudSql),
            vec![s.resource],
            description,
        );
    }
}

/// What a drill says to do when the primary has no recovery window.
const NO_WINDOW: &str = "enable point-in-time recovery on the home primary (a drill clones it at its latest recovery time), then drill again";

/// What the step does with what it read (pure: [`decide`]).
#[derive(Debug, Clone, PartialEq)]
pub enum CloneNext {
    /// The clone exists (a re-run): wait until it is RUNNABLE.
    Exists,
    /// Its clone operation is under way: wait on it.
    Wait(String),
    /// Clone the primary.
    Clone,
    /// The primary cannot be cloned now.
    Refuse {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
}

/// Decides from the clone's read, its operations (newest first) and the
/// primary's read. Pure.
pub fn decide(
    step: &DrillSql,
    clone: Option<&SqlInstance>,
    operations: &[SqlOperation],
    primary: Option<&SqlInstance>,
) -> CloneNext {
    if clone.is_some() {
        return CloneNext::Exists;
    }
    if let Some(op) = (operations.iter()).find(|o| o.kind == "CLONE" && !o.is_done()) {
        return CloneNext::Wait(op.name.clone());
    }
    let (source, r) = (&step.source, &step.source_region);
    let Some(primary) = primary else {
        return CloneNext::Refuse {
            message: format!(
                "Cloud SQL instance {source} does not exist in project {} ({r})",
                step.project
            ),
            hint: "fix the instance's name in the plan".into(),
        };
    };
    if let DbRole::Replica(of) = &primary.role {
        return CloneNext::Refuse {
            message: format!(
                "{source} in {r} is a replica of {of}, not the primary: a drill clones the home primary (a replica keeps no backups to clone from)"
            ),
            hint: "fail back first (the plan's home must hold its primary), then drill again"
                .into(),
        };
    }
    if !primary.is_runnable() {
        return CloneNext::Refuse {
            message: format!("primary {source} in {r} is {}, not RUNNABLE", primary.state),
            hint: "drill again once it serves".into(),
        };
    }
    CloneNext::Clone
}

impl DrillSql {
    /// The drill's clone in run `run_id`.
    pub fn clone_name(&self, run_id: &str) -> String {
        drill_names::temp_database_id(run_id, &self.replica)
    }

    fn what(&self) -> String {
        format!("cloud sql {}", self.source)
    }

    /// Preflight's word on the primary's recovery window, read as the
    /// clone reads it: without one, the clone would be refused.
    async fn window_finding(&self, cx: &Cx<'_>, what: String) -> Vec<Finding> {
        let r = self.source_region.as_str();
        let source = sql_address(&self.project, &self.source);
        let role = &SqlRestoring;
        match role.source(cx.clouds, r, &source).await {
            Ok(None) => vec![Finding::missing(&what, r)],
            Ok(Some(s)) => match decide_point(role.about(), &s.window, None) {
                Ok(_) => vec![Finding::ok(
                    &what,
                    r,
                    format!("a RUNNABLE primary, {}", s.said),
                )],
                Err((why, _)) => vec![Finding::blocks(
                    &what,
                    r,
                    s.said,
                    format!("{why}; {NO_WINDOW}"),
                )],
            },
            Err(e) => vec![Finding::unreadable(&what, r, &e)],
        }
    }

    /// The drill's clone of the primary into `name`, through Cloud SQL's
    /// data role (a point-in-time restore's clone: the same calls).
    fn restore_of<'a>(&'a self, source: &'a str, name: &'a str) -> RestoreOf<'a> {
        RestoreOf {
            role: &SqlRestoring,
            region: &self.source_region,
            source,
            copy: name,
            noun: "drill clone",
            no_window_hint: Some(NO_WINDOW),
        }
    }
}

#[async_trait]
impl Action for DrillSql {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = self.what();
        let sql = &cx.clouds.cloud_sql;
        let r = &self.source_region;
        let primary = match sql.describe_sql(r, &self.project, &self.source).await {
            Ok(p) => p,
            Err(e) => return vec![Finding::unreadable(&what, r, &e)],
        };
        match decide(self, None, &[], primary.as_ref()) {
            CloneNext::Refuse { .. } if primary.is_none() => vec![Finding::missing(&what, r)],
            CloneNext::Refuse { message, hint } => vec![Finding::blocks(
                &what,
                r,
                primary.map_or("missing".into(), |p| p.state),
                format!("{message}; {hint}"),
            )],
            _ => self.window_finding(cx, what).await,
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let name = self.clone_name(cx.run_id);
        let existing = (cx.clouds.cloud_sql)
            .describe_sql(&self.source_region, &self.project, &name)
            .await?;
        Ok(vec![Planned {
            call: "sqladmin:instances.clone".into(),
            resource: format!("{} → {name}", self.source),
            region: self.source_region.clone(),
            current: existing
                .as_ref()
                .map_or("absent".into(), |i| i.state.clone()),
            desired:
                "a drill copy cloned at the latest recovery time, RUNNABLE; deleted at cleanup"
                    .into(),
            change: existing.is_none(),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (p, r, source) = (
            self.project.as_str(),
            self.source_region.as_str(),
            self.source.as_str(),
        );
        let sql = &cx.clouds.cloud_sql;
        let name = self.clone_name(cx.run_id);
        let mut out = DrillSqlOutput {
            instance: name.clone(),
            source: source.to_string(),
            region: r.to_string(),
            ..DrillSqlOutput::default()
        };
        let clone = sql.describe_sql(r, p, &name).await?;
        let operations = match &clone {
            Some(_) => Vec::new(),
            None => sql.operations(r, p, &name).await?,
        };
        let primary = match (&clone, operations.is_empty()) {
            (None, true) => sql.describe_sql(r, p, source).await?,
            _ => None,
        };
        let (source, name) = (sql_address(p, source), sql_address(p, &name));
        let at = self.restore_of(&source, &name);
        let op = match decide(self, clone.as_ref(), &operations, primary.as_ref()) {
            CloneNext::Refuse { message, hint } => {
                return Err(StepFailure::state(message, hint, &self.source, r));
            }
            CloneNext::Exists => {
                out.already_existed = true;
                None
            }
            CloneNext::Wait(op) => {
                out.already_existed = true;
                Some(op)
            }
            // At the primary's latest recovery time, read right before the
            // (fenced) call: the drill's RPO is measured from it.
            CloneNext::Clone => {
                let (point, op, asked) = at.start(cx, None).await?;
                out.restore_point = point.known;
                out.requested_at = Some(asked);
                op
            }
        };
        if let Some(op) = op {
            out.operation = Some(op.clone());
            let hint = "the drill's cleanup deletes what it left; fix the cause (the primary's backups and point-in-time recovery), then drill again";
            at.follow(cx, &op, hint).await?;
        }
        let done = at.until_ready(cx).await?;
        out.endpoint = done.endpoint;
        out.to_output()
    }

    fn creates(&self, run_id: &str) -> Vec<Temp> {
        vec![Temp::SqlClone {
            region: self.source_region.clone(),
            project: self.project.clone(),
            name: self.clone_name(run_id),
        }]
    }
}

#[async_trait]
impl Drilled for DrillSql {
    /// Clones in the project named as this step names its copy of the
    /// target's replica: Cloud SQL keeps no tags a drill writes, so by the
    /// name alone (`drill-<short id>-<instance>`).
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let listed = look.sql_instances(&self.project).await;
        let each = listed.iter().map(|i| {
            let temp = Temp::SqlClone {
                region: i.region.clone(),
                project: self.project.clone(),
                name: i.name.clone(),
            };
            (
                copy_short(&i.name).and_then(Drill::of_short),
                &*i.name,
                temp,
            )
        });
        keep(each, |name, run| self.clone_name(run) == name)
    }
}

/// Deletes a drill's clone `name` and reads until it is gone; a clone
/// still being made is waited for first (a crash mid-clone), and an
/// instance already gone is done. Only drill names (`drill-…`) are
/// deleted: the name comes from the drill's journal, made from its run id.
pub async fn remove(
    clouds: &Clouds,
    (region, project, name): (&str, &str, &str),
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    if !name.starts_with(drill_names::RECORD_PREFIX) {
        return Ok((
            CleanupResult::NotOurs,
            format!("{name} is no drill's name: never deleted by a cleanup"),
        ));
    }
    let sql = clouds.cloud_sql.as_ref();
    let at = (region, project, name);
    if let Some(late) = end_under_way(sql, at, (poll, deadline)).await? {
        return Ok(late);
    }
    if sql.describe_sql(region, project, name).await?.is_none() {
        return Ok((
            CleanupResult::Absent,
            format!("instances.get finds no {name} in project {project}"),
        ));
    }
    let op = match sql.delete_sql(region, project, name).await {
        Ok(op) => op,
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Ok((
                CleanupResult::Absent,
                format!("{name} was gone when the delete reached Cloud SQL"),
            ));
        }
        Err(e) => return Err(e),
    };
    let label = format!("operation {} (DELETE of {name})", op.name);
    let done = until_done(sql, (region, project), &label, &op.name, (poll, deadline)).await?;
    if let Some(failed) = delete_failed(name, &op.name, done) {
        return Ok(failed);
    }
    let gone = poll_until(&format!("{name} to be gone"), poll, deadline, || async {
        Ok::<_, CloudError>(
            (sql.describe_sql(region, project, name).await?)
                .is_none()
                .then_some(()),
        )
    })
    .await?;
    Ok(match gone {
        Some(()) => (
            CleanupResult::Removed,
            format!(
                "deleted (operation {}); instances.get finds no {name}",
                op.name
            ),
        ),
        None => (
            CleanupResult::Failed,
            format!("{name} is still listed after its delete ({})", op.name),
        ),
    })
}

/// Waits until every operation still under way on `name` (a clone, or a
/// delete, of this name) has ended: Cloud SQL refuses a delete while an
/// operation runs on the instance. Returns the cleanup's answer when one
/// does not end by `deadline`.
async fn end_under_way(
    sql: &dyn CloudSql,
    (region, project, name): (&str, &str, &str),
    (poll, deadline): ((Duration, Duration), Instant),
) -> Result<Option<(CleanupResult, String)>, CloudError> {
    let under_way: Vec<String> = (sql.operations(region, project, name).await?)
        .into_iter()
        .filter(|o| !o.is_done())
        .map(|o| o.name)
        .collect();
    for op in &under_way {
        let label = format!("operation {op} on {name} to end");
        let ended = until_done(sql, (region, project), &label, op, (poll, deadline)).await?;
        if ended.is_none() {
            return Ok(Some((
                CleanupResult::Failed,
                format!("operation {op} on {name} did not end in time; run the cleanup again"),
            )));
        }
    }
    Ok(None)
}

/// Polls Cloud SQL operation `op` (waited for as `what`) until it is
/// done; `None` when it is not by `deadline`.
async fn until_done(
    sql: &dyn CloudSql,
    (region, project): (&str, &str),
    what: &str,
    op: &str,
    (poll, deadline): ((Duration, Duration), Instant),
) -> Result<Option<SqlOperation>, CloudError> {
    poll_until(what, poll, deadline, || async {
        let o = sql.operation(region, project, op).await?;
        Ok::<_, CloudError>(o.is_done().then_some(o))
    })
    .await
}

/// The cleanup's answer when the delete of `name` (operation `op`) did
/// not end in time or ended in an error (pure); `None` when it succeeded.
fn delete_failed(
    name: &str,
    op: &str,
    done: Option<SqlOperation>,
) -> Option<(CleanupResult, String)> {
    match done {
        None => Some((
            CleanupResult::Failed,
            format!(
                "the delete of {name} (operation {op}) did not end in time; run the cleanup again"
            ),
        )),
        Some(o) if o.error.is_some() => Some((
            CleanupResult::Failed,
            format!(
                "the delete of {name} (operation {op}) failed: {}",
                o.error.unwrap_or_default()
            ),
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step() -> DrillSql {
        DrillSql {
            resource: "orders-sql".into(),
            project: "drctl-emu".into(),
            source: "orders-sql".into(),
            source_region: "us-central1".into(),
            replica: "orders-sql-use4".into(),
            region: "us-east4".into(),
        }
    }

    fn inst(role: DbRole, state: &str) -> SqlInstance {
        SqlInstance {
            name: "orders-sql".into(),
            region: "us-central1".into(),
            state: state.into(),
            role,
            replicas: Vec::new(),
            dr_replica: false,
            edition: None,
            endpoint: None,
            write_endpoint: None,
        }
    }

    fn op(kind: &str, status: crate::cloud::SqlOpStatus) -> SqlOperation {
        SqlOperation {
            name: "op-1".into(),
            kind: kind.into(),
            target: "x".into(),
            status,
            error: None,
            inserted: None,
        }
    }

    #[test]
    fn a_drill_clones_a_runnable_primary_once_and_never_a_replica() {
        use crate::cloud::SqlOpStatus::{Done, Running};
        let s = step();
        let primary = inst(DbRole::Primary, "RUNNABLE");
        assert_eq!(decide(&s, None, &[], Some(&primary)), CloneNext::Clone);
        // A re-run: the clone exists, or its operation is under way.
        assert_eq!(
            decide(&s, Some(&primary), &[], Some(&primary)),
            CloneNext::Exists
        );
        assert_eq!(
            decide(&s, None, &[op("CLONE", Running)], Some(&primary)),
            CloneNext::Wait("op-1".into())
        );
        assert_eq!(
            decide(&s, None, &[op("CLONE", Done)], Some(&primary)),
            CloneNext::Clone
        );
        let replica = inst(DbRole::Replica("orders-sql-use4".into()), "RUNNABLE");
        let CloneNext::Refuse { message, hint } = decide(&s, None, &[], Some(&replica)) else {
            panic!("a replica is not cloned");
        };
        assert!(
            message.contains("us-central1") && hint.contains("fail back"),
            "{message}"
        );
        assert!(matches!(
            decide(&s, None, &[], Some(&inst(DbRole::Primary, "MAINTENANCE"))),
            CloneNext::Refuse { .. }
        ));
        assert!(matches!(
            decide(&s, None, &[], None),
            CloneNext::Refuse { .. }
        ));
    }

    #[test]
    fn the_rpo_is_the_gap_to_the_request_and_unknown_without_the_reading() {
        let asked = Utc::now();
        let out = serde_json::to_value(DrillSqlOutput {
            restore_point: Some(asked - chrono::Duration::seconds(2)),
            requested_at: Some(asked),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(rpo("db", Some(&out), None, asked, "x").0, Some(2.0));
        let found = serde_json::to_value(DrillSqlOutput {
            already_existed: true,
            ..Default::default()
        })
        .unwrap();
        let (v, why) = rpo("db", Some(&found), Some(0.0), asked, "x");
        assert_eq!(v, None, "{why}");
        assert_eq!(rpo("db", None, None, asked, "x").0, None);
    }

    /// A primary without point-in-time recovery has nothing a clone can be
    /// made from: preflight says so with a drill's advice (not a
    /// failover's "use promote-replica"), and a run refuses before any
    /// write, naming the same.
    #[tokio::test]
    async fn a_primary_without_point_in_time_recovery_is_refused_with_a_drills_advice() {
        use crate::cloud::fake::FakeCloud;
        let f = FakeCloud::new();
        f.add_sql("drctl-emu", "us-central1", "orders-sql", None, false);
        let (clouds, outputs) = (f.clouds(), std::collections::BTreeMap::new());
        let plan = crate::plan::orders_gcp_health_checked();
        let cx = Cx::for_test(&clouds, &plan, "us-east4", &outputs, &[]);
        let ok = step().preflight(&cx).await;
        assert_eq!(ok[0].problem, None, "{ok:?}");
        assert!(ok[0].state.contains("restorable up to"), "{ok:?}");
        (f.state().sql_no_pitr).insert(("drctl-emu".into(), "orders-sql".into()));
        let found = step().preflight(&cx).await;
        let why = found[0].problem.clone().unwrap_or_default();
        assert!(
            why.contains("not enabled") && why.contains(NO_WINDOW),
            "{found:?}"
        );
        assert!(!why.contains("promote-replica"), "{why}");
        let Err(StepFailure::State { hint, .. }) = step().run(&cx).await else {
            panic!("refused")
        };
        assert_eq!(hint, NO_WINDOW);
        assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
    }
}
