//! `restore`: the one point-in-time restore step of every data kind whose
//! data role restores ([`Restoring`]): the target region's copy restored
//! into a new copy (an RDS instance; a Cloud SQL clone), for resources
//! whose strategy is `point-in-time-restore` (in a failover) and for
//! `drctl restore` (one resource, at a chosen time).
//!
//! Read, decide, act, through the role alone: the new copy is read first
//! (its name is derived from the run id, so a re-run after a crash finds
//! the copy it already asked for, or the provider's operation making it,
//! instead of asking for a second); else the source and its window are
//! read, the pure [`decide_point`] says what to restore to (the requested
//! time inside the window, else its latest point), one fenced call starts
//! the restore, and the step waits until the new copy serves. The RPO
//! achieved is the gap from the point restored to the RTO origin; a re-run
//! that did not ask for the restore itself knows the point only when a
//! time was requested, and says the RPO is unknown otherwise, never a
//! later point read again.
//!
//! The step knows its resource's kind only to reach its role
//! (`ResourceKind::restoring`): a new data kind needs no step here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::plan::kinds::restoring::{
    Placement, Point, RESTORE_POINT_TAG, RESTORED_BY_TAG, RestoreAbout, Restored, Restoring,
    decide_point,
};
use crate::plan::kinds::{ResourceKind, Shown};
use crate::steps::graph::{Builder, RunMode};

pub use crate::plan::kinds::restoring::restored_id;

/// Restore one data resource's copy in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Restore {
    /// Plan resource id.
    pub resource: String,
    /// Its kind (whose data role restores).
    pub of: ResourceKind,
    /// The copy restored from, in the target, as its kind addresses it
    /// (`project/instance` for Cloud SQL).
    pub instance: String,
    /// The region the copy lives in.
    pub region: String,
    /// Restore point; `None` = the latest restorable time.
    pub to_time: Option<DateTime<Utc>>,
    /// Whose backups, and where the new copy goes, as the plan says (a
    /// backup standby's; empty for a restore beside its source).
    #[serde(skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
}

/// What a restore publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RestoreOutput {
    /// The restored copy.
    pub instance: String,
    /// The copy restored from.
    pub source: String,
    /// Region.
    pub region: String,
    /// The point restored to (the RPO is measured from it), when known.
    pub restore_point: Option<DateTime<Utc>>,
    /// Where the restore point came from.
    pub restore_point_source: String,
    /// When the restore was asked for (a re-run that found it: when it
    /// looked).
    pub requested_at: DateTime<Utc>,
    /// The provider's operation making the copy, when the step started or
    /// found one (a Cloud SQL clone's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The restored copy's endpoint.
    pub endpoint: Option<String>,
    /// Its port.
    pub port: Option<i32>,
    /// Whether it existed already, or was being made (a re-run).
    pub already_existed: bool,
}

impl StepOutput for RestoreOutput {
    const KIND: KindName = KindName::Restore;
}

/// Part of the recovery; where the RPO is read (the restore point). Its
/// calls are its resource kind's ([`cost_of`]).
pub const TRAITS: Traits = Traits {
    endpoint: Some(|v| RestoreOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    ..Traits::RECOVERY
};

/// What a restore of resource kind `of` costs: its role's calls, the wait
/// for the new copy, polled with the role's read.
pub fn cost_of(of: ResourceKind) -> Cost {
    let cost = |a: &RestoreAbout| Cost::of_role(a.calls, a.waits, a.polls);
    (of.restoring()).map_or(TRAITS.time, |r| cost(r.about()))
}

/// The RPO of a restore: from the restore point to the RTO origin.
pub(super) fn rpo(
    resource: &str,
    out: Option<&Value>,
    _gate_lag: Option<f64>,
    origin: DateTime<Utc>,
    origin_label: &str,
) -> (Option<f64>, String) {
    let read = out.and_then(RestoreOutput::read);
    // A point the output says is unknown says why (a re-run that did not
    // ask for the restore itself).
    if let Some(o) = read.as_ref().filter(|o| o.restore_point.is_none())
        && o.restore_point_source.starts_with("unknown")
    {
        return (None, format!("{resource}: {}", o.restore_point_source));
    }
    let point = read.and_then(|o| o.restore_point);
    let what = "restore point";
    super::copies::restore_rpo(
        resource,
        (out.is_some(), point),
        what,
        (origin, origin_label),
    )
}

/// A failover restores every point-in-time-restore resource of a kind
/// whose data role restores; a restore run, the one resource it names.
pub fn compile(b: &mut Builder<'_>) {
    let (named, to_time) = match b.mode {
        m if m.fails_over() => (None, None),
        RunMode::Restore { database, to_time } => (Some(database.as_str()), *to_time),
        RunMode::Failover { .. } | RunMode::Reprotect | RunMode::Drill { .. } => return,
    };
    let mut steps = Vec::new();
    for r in crate::plan::kinds::each(&b.plan.spec) {
        let (Shown::Data(copies), Some(role)) = (r.shown(), r.kind().restoring()) else {
            continue;
        };
        let wanted = match named {
            Some(id) => r.id() == id,
            None => copies.restores(),
        };
        let Some((region, instance)) = copies.copy_at(b.target).filter(|_| wanted) else {
            continue;
        };
        let step = Restore {
            resource: r.id().to_string(),
            of: r.kind(),
            placement: copies.placement(&region),
            instance,
            region,
            to_time,
        };
        let when = to_time.map_or("the latest restorable time".to_string(), |t| t.to_rfc3339());
        let how = role.about().how;
        let description = format!(
            "restore {} in {} to {when}, {how}",
            step.instance, step.region
        );
        steps.push((step, description));
    }
    b.add_each(steps, StepKind::Restore, |s| (s.resource.clone(), s.of));
}

/// Why the copy a restore starts from, as `status` read it in a standby
/// region, could not be used now (missing, unreadable, not available);
/// whether it can be restored at all (its window) is the step's readiness
/// to say.
pub fn standby_problems(
    instance: &str,
    region: &str,
    copy: super::copies::CopyRead<'_>,
) -> Vec<String> {
    super::copies::copy_problems(instance, region, copy, Vec::new())
}

impl Restore {
    /// Its kind's data role.
    fn role(&self) -> Result<&'static dyn Restoring, StepFailure> {
        self.of.restoring().ok_or_else(|| {
            StepFailure::state(
                format!(
                    "a [[{}]] resource is not restored to a point in time",
                    self.of.table()
                ),
                "this journal was written by another drctl: run the failover with this one",
                &self.resource,
                &self.region,
            )
        })
    }

    /// Its placement, with the run that restores: the new copy carries
    /// it where its kind tags, so a resume takes the copy as its own and
    /// a later run does not.
    fn placed(&self, run_id: &str) -> Placement {
        let mut placement = self.placement.clone();
        let by = (RESTORED_BY_TAG.to_string(), run_id.to_string());
        placement.place.tags.extend([by]);
        placement
    }

    /// What findings and failures call the source.
    fn what(&self, role: &dyn Restoring) -> String {
        format!("{} {}", role.about().noun, self.instance)
    }
}

#[async_trait]
impl super::Writes for Restore {
    async fn endpoint_now(
        &self,
        clouds: &crate::cloud::Clouds,
        run_id: &str,
    ) -> super::EndpointNow {
        let Some(role) = self.of.restoring() else {
            let read = Ok(None);
            return super::EndpointNow::of(&self.instance, &self.region, read);
        };
        // The copy the run restored, named from the plan and the run.
        let copy = role.restored(&self.instance, run_id);
        let read = role.read(clouds, &self.region, &copy).await;
        let found = read.map(|c| c.map(|c| (c.endpoint, c.port)));
        super::EndpointNow::of(&copy, &self.region, found)
    }
}

#[async_trait]
impl super::Ready for Restore {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        // `status` shows the copy; whether it can be restored (its
        // window) is this step's to say.
        self.preflight(cx).await
    }
}

/// One point-in-time restore of a data kind's copy, through the kind's
/// data role ([`Restoring`]): the source and the new copy, addressed as
/// the kind addresses them, in one region. What the generic `restore`
/// step does: read the source's window, decide the point (pure:
/// [`decide_point`]), start the restore fenced, follow its operation, wait
/// until the copy serves.
struct RestoreOf<'a> {
    /// The kind's role.
    pub role: &'a dyn Restoring,
    /// Where the source is, and the copy is made.
    pub region: &'a str,
    /// The copy restored from.
    pub source: &'a str,
    /// The new copy.
    pub copy: &'a str,
    /// What the new copy is called while it is waited for (`restored
    /// copy`, `drill clone`).
    pub noun: &'a str,
    /// What to do when the source has no point to restore to, when the
    /// step knows better than its kind's hint (a drill is no failover:
    /// "use promote-replica" is no advice there).
    pub no_window_hint: Option<&'a str>,
    /// Whose backups, and where the copy goes.
    pub placement: &'a Placement,
}

impl RestoreOf<'_> {
    /// Reads the source and decides the point (`requested`, else its
    /// latest), then starts the restore, fenced: the point, the provider's
    /// operation (when the call answers one) and when it was asked for.
    pub async fn start(
        &self,
        cx: &Cx<'_>,
        requested: Option<DateTime<Utc>>,
    ) -> Result<(Point, Option<String>, DateTime<Utc>), StepFailure> {
        let (r, source, copy) = (self.region, self.source, self.copy);
        let a = self.role.about();
        let what = format!("{} {source}", a.noun);
        let read = (self
            .role
            .source(cx.clouds, r, source, self.placement)
            .await?)
            .ok_or_else(|| {
                StepFailure::state(
                    format!("{what} does not exist in {r}"),
                    "fix its name in the plan",
                    source,
                    r,
                )
            })?;
        // What the region lacks refuses before any call, each named.
        if !read.lacks.is_empty() {
            let (why, fix): (Vec<_>, Vec<_>) = read.lacks.into_iter().unzip();
            let why = format!("{what} cannot be restored in {r}: {}", why.join("; "));
            return Err(StepFailure::state(why, fix.join("; "), source, r));
        }
        let point = decide_point(a, &read.window, requested).map_err(|(why, hint)| {
            let hint = self
                .no_window_hint
                .filter(|_| read.window.is_err())
                .map_or(hint, String::from);
            StepFailure::state(format!("{what} in {r}: {why}"), hint, source, r)
        })?;
        cx.fenced(&format!("{} of {source} into {copy}", a.call), r)
            .await?;
        // The point, marked on the copy where its kind marks copies: a
        // resume that did not ask for the restore reads it back.
        let mut placement = self.placement.clone();
        if let Some(t) = point.known {
            let mark = (RESTORE_POINT_TAG.to_string(), t.timestamp().to_string());
            placement.place.tags.extend([mark]);
        }
        let at = Utc::now();
        let names = (source, copy);
        let op = (self.role.start(cx.clouds, r, names, point, &placement)).await?;
        Ok((point, op, at))
    }

    /// Follows the provider's operation `op` making the copy until it
    /// ends; a failed one fails the step, naming it, the provider's reason
    /// and `hint` (what to do then).
    pub async fn follow(&self, cx: &Cx<'_>, op: &str, hint: &str) -> Result<(), StepFailure> {
        let (r, copy) = (self.region, self.copy);
        let what = format!(
            "{} operation {op} ({} into {copy}, {r})",
            self.role.about().call,
            self.source
        );
        let done = wait_for(cx, &what, || async {
            Ok(self.role.answers().stands(cx.clouds, (r, copy), op).await?)
        })
        .await?;
        done.map_err(|e| StepFailure::state(format!("{what} failed: {e}"), hint, copy, r))
    }

    /// Reads the new copy until it serves; one made that needs the kind's
    /// finishing call (an Aurora cluster without its writer) gets it,
    /// fenced, once per attempt (the kind reads before it acts, so a
    /// resume does not ask twice).
    pub async fn until_ready(&self, cx: &Cx<'_>) -> Result<Restored, StepFailure> {
        let (r, copy) = (self.region, self.copy);
        let a = self.role.about();
        let finished = std::sync::atomic::AtomicBool::new(false);
        wait_for(
            cx,
            &format!("{} {copy} ({r}) to be {}", self.noun, a.ready),
            || async {
                let read = self.role.read(cx.clouds, r, copy).await?;
                if let (Some(c), Some(call)) = (&read, a.finish_call)
                    && c.finish_due
                    && !finished.swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    cx.fenced(&format!("{call} of {copy}"), r).await?;
                    (self.role.finish(cx.clouds, r, copy, self.placement)).await?;
                }
                Ok(read.filter(|c| c.ready))
            },
        )
        .await
    }
}

#[async_trait]
impl Action for Restore {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let role = match self.role() {
            Ok(r) => r,
            Err(e) => {
                return vec![Finding::blocks(
                    &self.instance,
                    &self.region,
                    "unknown",
                    e.summary(),
                )];
            }
        };
        let (what, region) = (self.what(role), self.region.as_str());
        let placed = self.placed(cx.run_id);
        let read = role.source(cx.clouds, region, &self.instance, &placed);
        match read.await {
            Ok(None) => vec![Finding::missing(&what, region)],
            Ok(Some(s)) if !s.lacks.is_empty() => (s.lacks.iter())
                .map(|(why, fix)| Finding::blocks(&what, region, &s.said, why).with_fix(fix))
                .collect(),
            Ok(Some(s)) => match decide_point(role.about(), &s.window, self.to_time) {
                Ok(_) => vec![Finding::ok(&what, region, s.said)],
                Err((why, _)) => vec![Finding::blocks(&what, region, s.said, why)],
            },
            Err(e) => vec![Finding::unreadable(&what, region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let role = self.role()?;
        let copy = role.restored(&self.instance, cx.run_id);
        let existing = role.read(cx.clouds, &self.region, &copy).await?;
        let when =
            (self.to_time).map_or("the latest restorable time".to_string(), |t| t.to_rfc3339());
        let a = role.about();
        Ok(vec![Planned {
            call: a.call.into(),
            resource: format!("{} → {copy}", self.instance),
            region: self.region.clone(),
            current: existing
                .as_ref()
                .map_or("absent".into(), |c| c.state.clone()),
            desired: format!("a new copy restored to {when}, {}", a.ready),
            change: existing.is_none(),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let role = self.role()?;
        let (r, source) = (self.region.as_str(), self.instance.as_str());
        let copy = role.restored(source, cx.run_id);
        let placed = self.placed(cx.run_id);
        let at = RestoreOf {
            role,
            region: r,
            source,
            copy: &copy,
            noun: "restored copy",
            no_window_hint: None,
            placement: &placed,
        };
        let mut out = RestoreOutput {
            instance: copy.clone(),
            source: source.to_string(),
            region: r.to_string(),
            requested_at: Utc::now(),
            // A re-run that finds the copy knows its point only when one
            // was asked for.
            restore_point: self.to_time,
            restore_point_source: match self.to_time {
                Some(_) => "the requested --to-time",
                None => "unknown: the restore was asked for by an earlier attempt of this run",
            }
            .to_string(),
            ..RestoreOutput::default()
        };
        let existing = role.read(cx.clouds, r, &copy).await?;
        if existing.is_some() {
            // Found under its name: this run's restore (a resume) only. A
            // kind whose copies carry the run (a backup standby's) says
            // another's is in the way, and it is never taken as made.
            let read = role.source(cx.clouds, r, source, &placed).await?;
            let lacks = read.map(|s| s.lacks).unwrap_or_default();
            if !lacks.is_empty() {
                let (why, fix): (Vec<_>, Vec<_>) = lacks.into_iter().unzip();
                return Err(StepFailure::state(why.join("; "), fix.join("; "), &copy, r));
            }
        }
        let under_way = match existing {
            Some(_) => None,
            None => role.under_way(cx.clouds, r, &copy).await?,
        };
        out.already_existed = existing.is_some() || under_way.is_some();
        out.operation = match under_way {
            Some(op) => Some(op),
            None if existing.is_none() => {
                let (point, op, asked) = at.start(cx, self.to_time).await?;
                out.restore_point = point.known;
                out.restore_point_source = point.basis.to_string();
                out.requested_at = asked;
                op
            }
            None => None,
        };
        if let Some(op) = &out.operation {
            let hint = "start a new run once its cause is fixed: a resume of this one finds the failed operation again";
            at.follow(cx, op, hint).await?;
        }
        let done = at.until_ready(cx).await?;
        // A resume that found the copy: the point its restore marked on it.
        if let (None, Some(marked)) = (out.restore_point, done.point) {
            out.restore_point = Some(marked);
            out.restore_point_source =
                "the point the restore marked on the copy (tag drctl:restore-point)".into();
        }
        out.endpoint = done.endpoint;
        out.port = done.port;
        out.to_output()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::plan::spec::DbStrategy;
    use crate::steps::graph::{RunMode, compile_mode, compile_restore};

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
                StepKind::Restore(s) => Some(s.clone()),
                _ => None,
            })
            .expect("a restore step");
        assert!(
            !g.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Promote(_)))
        );
        let clouds = f.clouds();
        let outputs = BTreeMap::new();
        let cx = Cx {
            run_id: "20261125T060000Z-orders-gcp-b2",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(&clouds, &plan, "us-east4", &outputs, &g.steps)
        };
        let out = RestoreOutput::read(&step.run(&cx).await.expect("restored")).unwrap();
        assert_eq!(
            out.instance,
            format!("drctl-emu/{}", restored_id("orders-sql-use4", cx.run_id))
        );
        assert_eq!(step.of, crate::plan::kinds::ResourceKind::CloudSql);
        assert!(out.restore_point.is_some() && out.operation.is_some());
        assert!(!out.already_existed);
        // Cloned at the latest recovery time read right before, which
        // the RPO is measured from.
        let name = restored_id("orders-sql-use4", cx.run_id);
        assert_eq!(f.state().clone_points[&name], out.restore_point);
        // Run again (a resume): the clone exists, nothing is sent.
        let again = RestoreOutput::read(&step.run(&cx).await.expect("found")).unwrap();
        assert!(again.already_existed);
        assert_eq!(f.state().writes.len(), 1, "{:?}", f.state().writes);
    }

    #[test]
    fn the_rpo_is_the_gap_from_the_point_in_time_and_unknown_without_one() {
        let origin = Utc::now();
        let point = origin - chrono::Duration::seconds(30);
        let out = serde_json::to_value(RestoreOutput {
            restore_point: Some(point),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(rpo("db", Some(&out), None, origin, "x").0, Some(30.0));
        let none = serde_json::to_value(RestoreOutput::default()).unwrap();
        assert_eq!(rpo("db", Some(&none), None, origin, "x").0, None);
    }

    fn orders_gcp() -> crate::plan::Plan {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
        (crate::plan::load(&[path]).plans.into_iter().next()).expect("orders-gcp")
    }

    fn rds(to_time: Option<DateTime<Utc>>) -> Restore {
        Restore {
            placement: Default::default(),
            resource: "db".into(),
            of: ResourceKind::Database,
            instance: "db-use1".into(),
            region: "us-east-1".into(),
            to_time,
        }
    }

    async fn run(f: &FakeCloud, step: &Restore) -> Result<RestoreOutput, StepFailure> {
        let (clouds, plan, outputs) = (f.clouds(), orders_gcp(), BTreeMap::new());
        let cx = Cx {
            run_id: "20261127T190000Z-payments-a1",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(&clouds, &plan, "us-east-1", &outputs, &[])
        };
        Ok(RestoreOutput::read(&step.run(&cx).await?).expect("an output"))
    }

    /// A resumed restore read the source's latest restorable time again
    /// and took it for the point it had restored to: a later point than
    /// the one asked for, so an RPO smaller than the one achieved. A re-run
    /// that finds the copy now says the point is unknown (no request of its
    /// own), and its RPO is unknown, never a later figure.
    #[tokio::test]
    async fn regression_a_resumed_restore_claimed_a_later_point_than_it_restored() {
        let f = FakeCloud::new();
        f.add_primary("us-east-1", "db-use1");
        let first = run(&f, &rds(None)).await.expect("restored");
        let point = first
            .restore_point
            .expect("the latest point, read before the call");
        assert!(!first.already_existed);
        assert_eq!(first.restore_point_source, RDS_LATEST);
        // Time passes: the source's latest point moves on.
        let later = point + chrono::Duration::minutes(5);
        let key = ("us-east-1".to_string(), "db-use1".to_string());
        f.state()
            .databases
            .get_mut(&key)
            .unwrap()
            .latest_restorable_time = Some(later);
        let again = run(&f, &rds(None)).await.expect("found");
        assert!(again.already_existed);
        assert_eq!(again.restore_point, None, "{again:?}");
        assert!(again.restore_point_source.starts_with("unknown"));
        let out = serde_json::to_value(&again).unwrap();
        assert_eq!(rpo("db", Some(&out), None, later, "x").0, None);
        let writes = f.state().writes.clone();
        assert_eq!(writes.len(), 1, "asked for once: {writes:?}");
        // A re-run of a restore to a requested time knows its point: the
        // time asked for (the journaled step's, the same on every attempt).
        let asked = point - chrono::Duration::minutes(1);
        let with_time = run(&f, &rds(Some(asked))).await.expect("found");
        assert!(with_time.already_existed);
        assert_eq!(with_time.restore_point, Some(asked));
        assert_eq!(with_time.restore_point_source, "the requested --to-time");
    }

    const RDS_LATEST: &str = "LatestRestorableTime reported by the provider";

    fn sql(project: &str) -> Restore {
        Restore {
            placement: Default::default(),
            resource: "orders-sql".into(),
            of: ResourceKind::CloudSql,
            instance: format!("{project}/orders-sql"),
            region: "us-central1".into(),
            to_time: None,
        }
    }

    /// A resumed Cloud SQL restore whose clone is still being made finds
    /// the operation (no second clone), follows it, and says its point is
    /// unknown; a project scoped by a domain (`example.com:proj`) is
    /// addressed as any other.
    #[tokio::test]
    async fn a_resumed_clone_under_way_is_followed_not_asked_again_in_a_domain_scoped_project() {
        let f = FakeCloud::new();
        let project = "example.com:drctl-emu";
        f.add_sql(project, "us-central1", "orders-sql", None, false);
        let step = sql(project);
        let role = ResourceKind::CloudSql.restoring().unwrap();
        let copy = role.restored(&step.instance, "20261127T190000Z-payments-a1");
        let (_, name) = copy.rsplit_once('/').unwrap();
        let effect = crate::cloud::fake::SqlEffect::Clone("orders-sql".into());
        let op = f.state().start_sql_op(project, name, "CLONE", effect);
        let out = run(&f, &step).await.expect("followed");
        assert!(out.already_existed);
        assert_eq!(out.operation.as_deref(), Some(op.name.as_str()));
        assert_eq!(
            (out.instance.as_str(), out.restore_point),
            (copy.as_str(), None)
        );
        assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
        let json = serde_json::to_value(&out).unwrap();
        let (seconds, basis) = rpo("orders-sql", Some(&json), None, Utc::now(), "x");
        assert_eq!(seconds, None);
        assert!(basis.contains("asked for by an earlier attempt"), "{basis}");
    }

    /// A clone whose operation ends failed fails the step naming the
    /// operation and Cloud SQL's reason, and says a new run (not a resume,
    /// which finds the failed operation again) is the way on.
    #[tokio::test]
    async fn a_failed_clone_names_its_operation_and_a_new_run() {
        let f = FakeCloud::new();
        f.add_sql("drctl-emu", "us-central1", "orders-sql", None, false);
        let name = restored_id("orders-sql", "20261127T190000Z-payments-a1");
        f.fail_sql(&name, "CLONE", "quota exceeded");
        let e = run(&f, &sql("drctl-emu")).await.expect_err("failed");
        let (summary, hint) = match &e {
            StepFailure::State { message, hint, .. } => (message.clone(), hint.clone()),
            other => panic!("{other:?}"),
        };
        assert!(
            summary.contains("sqladmin:instances.clone operation op-"),
            "{summary}"
        );
        assert!(summary.contains("quota exceeded"), "{summary}");
        assert!(hint.starts_with("start a new run"), "{hint}");
    }

    /// Preflight says what a run would refuse, before any write: a time
    /// after the window, or no window at all.
    #[tokio::test]
    async fn preflight_blocks_a_time_outside_the_window_and_passes_one_inside() {
        let f = FakeCloud::new();
        f.add_primary("us-east-1", "db-use1");
        let (clouds, plan, outputs) = (f.clouds(), orders_gcp(), BTreeMap::new());
        let cx = Cx::for_test(&clouds, &plan, "us-east-1", &outputs, &[]);
        let key = ("us-east-1".to_string(), "db-use1".to_string());
        let latest = f.state().databases[&key].latest_restorable_time.unwrap();
        let late = rds(Some(latest + chrono::Duration::seconds(1)))
            .preflight(&cx)
            .await;
        let why = late[0].problem.as_deref().unwrap_or_default();
        assert!(why.contains("after the latest restorable time"), "{late:?}");
        // The window's own edge is inside it.
        let inside = rds(Some(latest)).preflight(&cx).await;
        assert_eq!(inside[0].problem, None, "{inside:?}");
        assert!(
            inside[0].state.contains("backups kept 7 days"),
            "{inside:?}"
        );
        assert!(f.state().writes.is_empty());
    }

    #[tokio::test]
    async fn a_source_without_backups_or_a_time_outside_its_window_is_refused_before_any_write() {
        let f = FakeCloud::new();
        f.add_primary("us-east-1", "db-use1");
        let key = ("us-east-1".to_string(), "db-use1".to_string());
        let latest = f.state().databases[&key].latest_restorable_time.unwrap();
        let late = run(&f, &rds(Some(latest + chrono::Duration::minutes(1)))).await;
        let e = late.expect_err("after the window").summary();
        assert!(e.contains("after the latest restorable time"), "{e}");
        f.state()
            .databases
            .get_mut(&key)
            .unwrap()
            .backup_retention_days = 0;
        let e = run(&f, &rds(None)).await.expect_err("no backups").summary();
        assert!(e.contains("automated backups are off"), "{e}");
        // Cloud SQL: a time before the instance's recovery window.
        f.add_sql("drctl-emu", "us-central1", "orders-sql", None, false);
        let sql = Restore {
            placement: Default::default(),
            resource: "orders-sql".into(),
            of: ResourceKind::CloudSql,
            instance: "drctl-emu/orders-sql".into(),
            region: "us-central1".into(),
            to_time: Some(Utc::now() - chrono::Duration::days(30)),
        };
        let e = run(&f, &sql)
            .await
            .expect_err("before the window")
            .summary();
        assert!(e.contains("before the earliest restorable time"), "{e}");
        assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
    }

    /// `drctl restore` takes any resource whose kind's data role restores:
    /// a Cloud SQL instance, at a chosen time, through the same step; a
    /// resource of another kind is refused naming the ones it takes.
    #[test]
    fn a_restore_run_takes_a_cloud_sql_resource_through_the_one_step() {
        let plan = orders_gcp();
        let at = Utc::now() - chrono::Duration::minutes(10);
        let g = compile_restore(&plan, "orders-sql", "us-central1", Some(at)).unwrap();
        let kinds: Vec<String> = g.steps.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(
            kinds,
            [
                "orders-gcp/preflight",
                "orders-gcp/restore:orders-sql",
                "orders-gcp/evidence"
            ]
        );
        let step = g.steps[1].kind.clone();
        let StepKind::Restore(r) = step else {
            panic!("{step:?}")
        };
        assert_eq!(
            (r.of, r.instance.as_str(), r.region.as_str(), r.to_time),
            (
                ResourceKind::CloudSql,
                "drctl-emu/orders-sql",
                "us-central1",
                Some(at)
            )
        );
        assert_eq!(
            StepKind::Restore(r).time().calls,
            crate::plan::kinds::ResourceKind::CloudSql
                .restoring()
                .unwrap()
                .about()
                .calls
        );
        let e = compile_restore(&plan, "orders-workers", "us-central1", None).unwrap_err();
        assert!(e.to_string().contains("orders-sql"), "{e}");
        // A failover of a promote-replica plan restores nothing.
        let mode = RunMode::Failover { planned: false };
        let g = compile_mode(&plan, "us-east4", &mode).unwrap();
        assert!(
            !g.steps
                .iter()
                .any(|s| matches!(s.kind, StepKind::Restore(_)))
        );
    }
}
