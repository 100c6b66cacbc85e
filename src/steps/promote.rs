//! `promote`: the one promotion step of every data kind whose data role
//! promotes ([`Promoting`]): the target region's standby copy made the
//! primary, for resources whose strategy is `promote-replica` (an RDS read
//! replica promoted; a Cloud SQL replica promoted, or, as its primary's
//! designated DR replica, failed over to, or switched over to when the
//! run is planned) and for every Aurora global database (its writer moved
//! to the target's member: a switchover when planned, a managed failover
//! when not, a detach when that failover is refused).
//!
//! A promotion cannot be undone (a switchover is switched back by
//! another): the old primary stops replicating to this copy, and getting
//! back means new replicas and a second failover. So the step reads
//! before it acts, through the role alone: the copy (preflight's read of
//! moments ago while it is fresh), then a move of ours still under way on
//! it (a resumed run, a lost answer: waited on, never asked again); the
//! pure [`decide`] says what to do; the lag right before the call is
//! journaled (the RPO achieved); one fenced call; the provider's
//! operation followed when it answers one; and the step waits until the
//! copy is a serving primary, whose endpoint it publishes.
//!
//! The step knows its resource's kind only to reach its role
//! (`ResourceKind::promoting`): a new data kind needs no step here.

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::copies::{CopyRead, LagRecord, PromoteOutput, copy_problems};
use super::{
    Action, Cost, Cx, Finding, Planned, StepFailure, StepKind, StepOutput, Traits, wait_for,
};
use crate::cloud::DbRole;
use crate::plan::kinds::promoting::{
    Candidate, Decision, Move, MovePath, Operation, PromoteAbout, Promoting, Started, decide,
};
use crate::plan::kinds::{ResourceKind, Shown};
use crate::steps::graph::Builder;

/// Promote one data resource's standby copy in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Promote {
    /// Plan resource id.
    pub resource: String,
    /// Its kind (whose data role promotes).
    pub of: ResourceKind,
    /// The copy in the target, as its kind addresses it
    /// (`project/instance` for Cloud SQL).
    pub instance: String,
    /// The region the copy lives in.
    pub region: String,
    /// The plan names it its primary's designated DR replica.
    pub dr_replica: bool,
    /// A planned move (a DR replica is switched over) rather than a
    /// failover.
    pub planned: bool,
}

/// What preflight keeps of the copy for the step (see [`Cx::preflight_facts`]).
#[derive(Serialize, Deserialize)]
struct CopyFacts {
    copy: Candidate,
}

/// Part of the recovery, irreversible (but for a switchover), and where
/// the RPO is read. Its calls are its resource kind's ([`cost_of`]).
pub const TRAITS: Traits = Traits {
    warnings: Some(|v| {
        PromoteOutput::read(v)
            .map(|o| o.warnings)
            .unwrap_or_default()
    }),
    irreversible: Some(
        "a promotion, a failover or a detach cannot be undone: failing back means new replicas of the new primary (drctl reprotect: RDS replicas re-created, an Aurora global database rebuilt; for Cloud SQL, gcloud sql instances create --master-instance-name until drctl reprotect makes its replicas), then a failover back; a planned switchover is switched back by another",
    ),
    endpoint: Some(|v| PromoteOutput::read(v)?.endpoint),
    // A journal that names no metric is an RDS promotion's.
    rpo: Some(|r, out, gate, _, _| rpo_of("ReplicaLag", r, out, gate)),
    ..Traits::RECOVERY
};

/// The retired `promote-sql`: its journals read as a promotion's, their
/// warning (which it did not journal) and RPO said as Cloud SQL's are.
pub const RETIRED_SQL: Traits = Traits {
    warnings: Some(|v| {
        let read = PromoteOutput::read(v);
        read.map(|o| warnings_of(&crate::plan::kinds::SQL_PROMOTE, &o))
            .unwrap_or_default()
    }),
    rpo: Some(|r, out, gate, _, _| rpo_of("replica_lag", r, out, gate)),
    ..TRAITS
};

/// The retired `switch-global`: its journals read as a promotion's (its
/// `cluster`, `old_writer` and `moved_at` by their new names), their RPO
/// said as an Aurora global database's is.
pub const RETIRED_GLOBAL: Traits = Traits {
    rpo: Some(|r, out, gate, _, _| rpo_of("AuroraGlobalDBRPOLag", r, out, gate)),
    ..TRAITS
};

/// What a promotion of resource kind `of` costs: its role's calls, the
/// wait, polled with the role's read or operation.
pub fn cost_of(of: ResourceKind) -> Cost {
    let cost = |a: &PromoteAbout| Cost::of_role(a.calls, a.waits, a.polls);
    (of.promoting()).map_or(TRAITS.time, |p| cost(p.about()))
}

/// What people must know after the move `o` made, by the kind's
/// templates for it (pure; the run's report and notifications carry it).
fn warnings_of(about: &PromoteAbout, o: &PromoteOutput) -> Vec<String> {
    let source = o.source.as_deref().unwrap_or("unknown");
    (about.warnings.iter())
        .filter(|(path, _)| o.path == Some(*path))
        .map(|(_, text)| {
            (text.replace("{instance}", &o.instance))
                .replace("{region}", &o.region)
                .replace("{source}", source)
        })
        .collect()
}

/// The RPO: 0 by design for a switchover; the lag read right before a
/// promotion or a DR failover; the RPO gate's when the step read none (the
/// copy was a primary already); unknown otherwise, never zero.
fn rpo_of(
    metric: &str,
    resource: &str,
    out: Option<&Value>,
    gate_lag: Option<f64>,
) -> (Option<f64>, String) {
    let Some(out) = out.map(|o| PromoteOutput::read(o).unwrap_or_default()) else {
        return (
            None,
            format!("{resource}: unknown (the promotion has not completed)"),
        );
    };
    let metric = if out.metric.is_empty() {
        metric
    } else {
        &out.metric
    };
    let lag = out.lag.seconds();
    let already = out.path == Some(MovePath::Already) || out.already_primary == Some(true);
    match (out.path, lag, gate_lag) {
        (Some(MovePath::Switchover), _, _) => (
            Some(0.0),
            format!(
                "{resource}: 0 by design of a switchover (the DR replica catches up before the roles swap; not measured{})",
                lag.map(|l| format!("; {metric} before it: {l:.3} s"))
                    .unwrap_or_default()
            ),
        ),
        (path, Some(l), _) => (
            Some(l),
            format!(
                "{resource}: {metric} read just before {} ({} datapoints)",
                match path {
                    Some(MovePath::DrFailover) => "the failover",
                    Some(MovePath::Detach) => "the detach",
                    _ => "promotion",
                },
                out.lag.count()
            ),
        ),
        (_, None, Some(l)) => (
            Some(l),
            if already {
                format!(
                    "{resource}: {metric} recorded by the RPO gate (the instance was already a primary when the step ran)"
                )
            } else {
                format!(
                    "{resource}: {metric} recorded by the RPO gate (no reading at the promotion)"
                )
            },
        ),
        (_, None, None) => (
            None,
            format!("{resource}: unknown (no {metric} datapoints at promotion)"),
        ),
    }
}

/// A failover promotes the target's copy of every promote-replica
/// resource of a kind whose data role promotes; a planned one switches a
/// DR replica over.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let planned = b.mode.is_planned();
    let mut steps = Vec::new();
    for r in crate::plan::kinds::each(&b.plan.spec) {
        let (Shown::Data(copies), Some(role)) = (r.shown(), r.kind().promoting()) else {
            continue;
        };
        // An RPO source is a copy kept in sync: its strategy promotes
        // (a restore's copies are none).
        if copies.rpo_source().is_none() {
            continue;
        }
        let Some((region, instance)) = copies.copy_at(b.target) else {
            continue;
        };
        let step = Promote {
            resource: r.id().to_string(),
            of: r.kind(),
            instance,
            region,
            dr_replica: copies.dr_replica(),
            planned,
        };
        let description = step.describe(role.about());
        steps.push((step, description));
    }
    b.add_each(steps, StepKind::Promote, |s| (s.resource.clone(), s.of));
}

/// Why a copy to be promoted, as `status` read it in a standby region,
/// could not be promoted now: the readiness rule of every kind that
/// promotes, pure. A primary there needs reprotecting; a replica's lag is
/// judged by the RPO rule the gate uses (`lag_problem`, computed by the
/// caller, which sits above this layer).
pub fn standby_problems(
    (instance, region): (&str, &str),
    copy: CopyRead<'_>,
    plan: &str,
    lag_problem: Option<String>,
) -> Vec<String> {
    let strategy = match copy {
        CopyRead::Found { primary: true, .. } => vec![format!(
            "database {instance} in {region} is a primary, not a replica of the active region: run `drctl reprotect --plan {plan}`"
        )],
        CopyRead::Found { primary: false, .. } => lag_problem.into_iter().collect(),
        _ => Vec::new(),
    };
    copy_problems(instance, region, copy, strategy)
}

impl Promote {
    /// The step's line in a plan's steps.
    fn describe(&self, a: &PromoteAbout) -> String {
        let (x, r) = (&self.instance, &self.region);
        match (self.dr_replica, self.planned) {
            (true, true) => format!(
                "switch over to {} {x} in {r} (planned: nothing lost)",
                a.replica
            ),
            (true, false) => format!(
                "fail over to {} {x} in {r} (data loss allowed within the RPO; cannot be undone)",
                a.replica
            ),
            (false, _) => format!(
                "promote {} {x} in {r} to primary (cannot be undone)",
                a.replica
            ),
        }
    }

    /// Its kind's data role.
    fn role(&self) -> Result<&'static dyn Promoting, StepFailure> {
        self.of.promoting().ok_or_else(|| {
            StepFailure::state(
                format!(
                    "internal error: a promote step of a [[{}]] resource, whose data role does not promote",
                    self.of.table()
                ),
                "report it: promote steps are compiled only for kinds whose role promotes",
                &self.resource,
                &self.region,
            )
        })
    }

    /// The facts [`decide`] takes besides what was read.
    fn moving<'a>(&'a self, about: &'a PromoteAbout) -> Move<'a> {
        Move {
            about,
            address: &self.instance,
            region: &self.region,
            dr_replica: self.dr_replica,
            planned: self.planned,
        }
    }

    /// What findings call the copy.
    fn what(&self, about: &PromoteAbout) -> String {
        format!("{} {}", about.noun, self.instance)
    }

    /// The call a move makes.
    fn call(about: &PromoteAbout, path: MovePath) -> &'static str {
        match (path, about.switchover_call, about.detach_call) {
            (MovePath::Switchover, Some(call), _) | (MovePath::Detach, _, Some(call)) => call,
            _ => about.promote_call,
        }
    }

    /// The copy as it is now: preflight's read of moments ago while it is
    /// fresh (the provider refuses to promote a primary, so a state that
    /// changed since fails the call, and a re-run reads again), else a
    /// read.
    async fn current(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
    ) -> Result<Option<Candidate>, StepFailure> {
        let fresh = cx.preflight_facts::<CopyFacts>(&self.what(role.about()));
        if let Some(f) = fresh {
            return Ok(Some(f.copy));
        }
        Ok(role.read(cx.clouds, &self.region, &self.instance).await?)
    }

    /// Waits until the copy is read as `want` says (`what`, for the
    /// progress line and a timeout).
    async fn until(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
        what: &str,
        want: fn(&Candidate) -> bool,
    ) -> Result<Candidate, StepFailure> {
        let (x, r) = (self.instance.as_str(), self.region.as_str());
        wait_for(cx, what, || async {
            let c = role.read(cx.clouds, r, x).await?;
            Ok(c.filter(want))
        })
        .await
    }

    /// Waits until the copy is a serving primary.
    async fn until_primary(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
    ) -> Result<Candidate, StepFailure> {
        let (x, r, ready) = (&self.instance, &self.region, role.about().ready);
        let what = format!("{x} ({r}) to become the primary, {ready}");
        let want = |c: &Candidate| c.role == DbRole::Primary && c.ready && c.blocked.is_none();
        self.until(cx, role, &what, want).await
    }

    /// Polls operation `name` until it is over, whatever its end.
    async fn until_over(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
        name: &str,
    ) -> Result<Operation, StepFailure> {
        let (x, r) = (self.instance.as_str(), self.region.as_str());
        wait_for(cx, &format!("operation {name} on {x} ({r})"), || async {
            let op = role.operation(cx.clouds, r, x, name).await?;
            Ok(op.done.then_some(op))
        })
        .await
    }

    /// Polls operation `name` until it is over; fails naming it when it
    /// ended with an error.
    async fn until_done(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
        name: &str,
    ) -> Result<Operation, StepFailure> {
        let (x, r) = (self.instance.as_str(), self.region.as_str());
        let op = self.until_over(cx, role, name).await?;
        if let Some(e) = &op.error {
            let about = role.about();
            let project = x.rsplit_once('/').map_or("", |(p, _)| p);
            let inspect = (about.inspect_operation)
                .replace("{operation}", &op.name)
                .replace("{project}", project);
            return Err(StepFailure::state(
                format!(
                    "operation {} ({}) on {} {x} failed: {e}",
                    op.name, op.kind, about.noun
                ),
                format!(
                    "read it with `{inspect}`; run the failover again once its cause is fixed (the step reads the copy first)"
                ),
                x,
                r,
            ));
        }
        Ok(op)
    }

    /// A move that ended (`out` says which) with the copy still a replica.
    fn still_a_replica(&self, out: &PromoteOutput) -> StepFailure {
        let x = &self.instance;
        StepFailure::state(
            format!(
                "the move of {x} is over ({}), yet it is still a replica",
                out.operation.as_deref().unwrap_or("answered")
            ),
            "read it (`drctl status`) and run the failover again: the step reads first",
            x,
            &self.region,
        )
    }

    /// Waits on `op`, a move of the copy already under way (a resumed run,
    /// a lost answer), and records it in `out` as this step's move.
    async fn resume(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
        op: &Operation,
        out: &mut PromoteOutput,
    ) -> Result<(), StepFailure> {
        // The move as found under way (its end may not say which it was).
        let found = op.path;
        self.record_lag(cx, role, out).await;
        let op = self.until_done(cx, role, &op.name).await?;
        out.operation = Some(op.name.clone());
        out.resumed_operation = true;
        // When the move was asked for (the old side is followed from then).
        out.promoted_at = out.promoted_at.or(op.inserted);
        out.path = Some(match op.path.or(found) {
            Some(MovePath::Promote) | None if self.dr_replica => MovePath::DrFailover,
            Some(path) => path,
            None => MovePath::Promote,
        });
        Ok(())
    }

    /// Makes the move `path`: the lag first (the RPO; one that cannot be
    /// read is unknown, said, never a reason to stop a failover the gate
    /// let through), then the fenced call, or the kind's fallback when
    /// the call is refused so; follows the operation it answers.
    async fn act(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
        (path, known): (MovePath, &Candidate),
        out: &mut PromoteOutput,
    ) -> Result<After, StepFailure> {
        let x = self.instance.as_str();
        self.record_lag(cx, role, out).await;
        out.promoted_at = Some(Utc::now());
        out.path = Some(path);
        let started = match self.start(cx, role, path, known).await {
            Err(StepFailure::Cloud(e)) => match role.fallback(path, &e) {
                Some(instead) => {
                    let then = match instead {
                        MovePath::Detach => format!("detaching {x} to write on its own"),
                        other => format!("{other:?}").to_lowercase(),
                    };
                    let call = Self::call(role.about(), path);
                    out.why
                        .push(format!("the {call} was refused ({}): {then}", e.summary()));
                    out.path = Some(instead);
                    self.start(cx, role, instead, known).await?
                }
                None => return Err(StepFailure::Cloud(e)),
            },
            other => other?,
        };
        Ok(match started {
            Started::Operation(op) => {
                out.operation = Some(op.clone());
                self.until_done(cx, role, &op).await?;
                After::ReadAgain
            }
            Started::Answered(c) => After::Moved(Some(Box::new(c))),
            Started::Pending => After::Moved(None),
        })
    }

    /// The copy's lag right before its move (the RPO): the gate's reading
    /// while fresh, else a read; one that cannot be read is unknown, said,
    /// never a reason to stop a failover the gate let through.
    async fn record_lag(&self, cx: &Cx<'_>, role: &dyn Promoting, out: &mut PromoteOutput) {
        let (x, r) = (self.instance.as_str(), self.region.as_str());
        let read = || role.lag(cx.clouds, r, x, cx.lag_window);
        match LagRecord::before_move(cx, &self.resource, "promote", read).await {
            Ok(lag) => out.lag = lag,
            Err(e) => out.warnings.push(format!(
                "the lag of {x} in {r} could not be read before the move: the RPO is the gate's reading, or unknown ({})",
                e.summary()
            )),
        }
    }

    /// The fenced call of move `path`.
    async fn start(
        &self,
        cx: &Cx<'_>,
        role: &dyn Promoting,
        path: MovePath,
        known: &Candidate,
    ) -> Result<Started, StepFailure> {
        let (x, r) = (self.instance.as_str(), self.region.as_str());
        let call = Self::call(role.about(), path);
        cx.fenced(&format!("{call} of {x}"), r).await?;
        Ok(role.start(cx.clouds, (r, x), path, known).await?)
    }
}

#[async_trait]
impl super::Writes for Promote {
    async fn endpoint_now(&self, clouds: &crate::cloud::Clouds, _: &str) -> super::EndpointNow {
        let Some(role) = self.of.promoting() else {
            return super::EndpointNow::of(&self.instance, &self.region, Ok(None));
        };
        let read = role.read(clouds, &self.region, &self.instance).await;
        let found = read.map(|c| c.map(|c| (c.endpoint, c.port)));
        super::EndpointNow::of(&self.instance, &self.region, found)
    }
}

/// A copy's role and state, in a line.
fn said(c: &Candidate) -> String {
    let role = match &c.role {
        DbRole::Primary => "primary".to_string(),
        DbRole::Replica(p) if c.dr_designated => format!("replica of {p}, DR replica"),
        DbRole::Replica(p) => format!("replica of {p}"),
    };
    format!("{role} ({})", c.state)
}

#[async_trait]
impl Action for Promote {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let role = match self.role() {
            Ok(r) => r,
            Err(e) => {
                let (x, r) = (&self.instance, &self.region);
                return vec![Finding::blocks(x, r, "unknown", e.summary())];
            }
        };
        let (what, r) = (self.what(role.about()), self.region.as_str());
        match role.read(cx.clouds, r, &self.instance).await {
            Ok(None) => vec![Finding::missing(&what, r)],
            Ok(Some(c)) => {
                vec![
                    Finding::ok(&what, r, said(&c).to_lowercase())
                        .with_facts(&CopyFacts { copy: c }),
                ]
            }
            Err(e) => vec![Finding::unreadable(&what, r, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let role = self.role()?;
        let about = role.about();
        let target = role.read(cx.clouds, &self.region, &self.instance).await?;
        // A move under way is waited on; a replica that does not serve yet
        // is waited for, then moved: the preview says the move.
        let under_way = match &target {
            Some(c) if c.role != DbRole::Primary => {
                role.under_way(cx.clouds, &self.region, &self.instance)
                    .await?
            }
            _ => None,
        };
        let once_ready = target.clone().map(|c| Candidate { ready: true, ..c });
        let decided = decide(&self.moving(about), once_ready.as_ref(), under_way.as_ref());
        let (call, change, desired, path) = match decided {
            Decision::Act { path, why } => (Self::call(about, path), true, why, Some(path)),
            Decision::Done { why, .. }
            | Decision::WaitReady { why }
            | Decision::Wait { why, .. }
            | Decision::WaitOther { why, .. } => (about.promote_call, false, why, None),
            Decision::Refuse { message, .. } => (about.promote_call, false, message, None),
        };
        let current = target.as_ref().map_or("missing".into(), said);
        let planned = |call: &str, desired: String, change: bool| Planned {
            call: call.into(),
            resource: self.instance.clone(),
            region: self.region.clone(),
            current: current.clone(),
            desired,
            change,
        };
        let mut rows = vec![planned(call, desired, change)];
        // What it may do instead, if the move is refused: approved with it.
        if let Some(fallback) = path.and_then(|p| role.may_fall_back(p)) {
            let instead = format!("{fallback:?}").to_lowercase();
            let desired = format!("only if {call} is refused: {instead} instead");
            rows.push(planned(Self::call(about, fallback), desired, true));
        }
        Ok(rows)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let role = self.role()?;
        let about = role.about();
        let (x, r) = (self.instance.as_str(), self.region.as_str());
        let mut out = PromoteOutput {
            instance: x.to_string(),
            region: r.to_string(),
            metric: about.metric.to_string(),
            ..PromoteOutput::default()
        };
        let mut target = self.current(cx, role).await?;
        let mut acted = false;
        let done = loop {
            // Only a replica can have a move of ours under way.
            let under_way = match &target {
                Some(c) if c.role != DbRole::Primary => role.under_way(cx.clouds, r, x).await?,
                _ => None,
            };
            if let Some(DbRole::Replica(src)) = target.as_ref().map(|t| &t.role) {
                out.source = Some(src.clone())
                    .filter(|s| !s.is_empty())
                    .or(out.source.take());
            }
            match decide(&self.moving(about), target.as_ref(), under_way.as_ref()) {
                Decision::Refuse { message, hint } => {
                    return Err(StepFailure::state(message, hint, x, r));
                }
                Decision::Done { path, why } => {
                    out.path.get_or_insert(path);
                    if out.why.is_empty() {
                        out.why.push(why);
                    }
                    break target.filter(|c| c.ready);
                }
                Decision::WaitReady { why } => {
                    tracing::info!(instance = x, region = r, "{why}");
                    let what = format!("replica {x} ({r}) to be {} before promotion", about.ready);
                    self.until(cx, role, &what, |c| c.ready).await?;
                }
                Decision::Wait { operation, why } => {
                    tracing::info!(instance = x, region = r, "{why}");
                    out.why.push(why);
                    self.resume(cx, role, &operation, &mut out).await?;
                    acted = true;
                }
                Decision::WaitOther { operation, why } => {
                    tracing::info!(instance = x, region = r, "{why}");
                    let over = self.until_over(cx, role, &operation.name).await?;
                    if let Some(e) = over.error {
                        tracing::info!(instance = x, operation = over.name, "it ended failed: {e}");
                    }
                }
                Decision::Act { .. } if acted => return Err(self.still_a_replica(&out)),
                Decision::Act { path, why } => {
                    // `decide` acts on a copy it read, never a missing one.
                    let Some(known) = target.as_ref() else {
                        let missing = format!("{} {x} does not exist in {r}", about.noun);
                        return Err(StepFailure::state(missing, about.missing_hint, x, r));
                    };
                    out.why.push(why);
                    acted = true;
                    // The answer shows the promotion done (an emulator
                    // promotes at once), else the step waits for it; a
                    // followed operation's end is read again.
                    if let After::Moved(c) = self.act(cx, role, (path, known), &mut out).await? {
                        break c
                            .map(|c| *c)
                            .filter(|c| c.role == DbRole::Primary && c.ready);
                    }
                }
            }
            target = role.read(cx.clouds, r, x).await?;
        };
        let done = match done {
            Some(c) => c,
            None => self.until_primary(cx, role).await?,
        };
        finish(out, done, about).to_output()
    }
}

/// Where a move left the step.
enum After {
    /// Its operation is over: read the copy again.
    ReadAgain,
    /// Asked: the copy as the answer showed it, when it did; the step
    /// waits until it is a serving primary.
    Moved(Option<Box<Candidate>>),
}

/// What the step publishes once `done`, the copy, serves as the primary.
fn finish(mut out: PromoteOutput, done: Candidate, about: &PromoteAbout) -> PromoteOutput {
    if out.path == Some(MovePath::Already) {
        out.already_primary = Some(true);
    }
    out.rebuild_needed = out.path == Some(MovePath::Detach);
    let warnings = warnings_of(about, &out);
    out.warnings.extend(warnings);
    out.endpoint = done.endpoint;
    out.port = done.port;
    out
}

#[cfg(test)]
mod tests;
