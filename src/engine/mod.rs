//! The failover engine: gates, a bounded concurrent executor, the journal,
//! resume, and measurement.
//!
//! Semantics (see `docs/failover.md`):
//! * a step starts the moment its dependencies finish, at most `parallelism`
//!   at once, critical-tier plans first when the bound bites;
//! * every event is journaled (and fsynced) *before* the step it announces
//!   starts, so a crash at any point leaves a journal that `resume` can replay;
//! * on a failed step no new step starts, running ones finish, and the run
//!   prints what is done, what is not, and the exact resume command;
//! * gates (lock, approval, RPO) run before anything changes, and their
//!   decisions, including the replica lag, are journaled either way.

pub mod gates;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cloud::{Clouds, DbRole};
use crate::journal::event::{
    Decision, Event, GateName, Outcome, PlanRef, Record, RunKind, StepRef,
};
use crate::journal::store::JournalStore;
use crate::journal::{self, Journal, JournalError};
use crate::plan::duration::format_duration;
use crate::plan::spec::DbStrategy;
use crate::plan::{Approval, Plan};
use crate::runs::replay::{StepState, replay};
use crate::runs::{RunReport, build_report, measure};
use crate::state::lock::{LockError, LockInfo, hostname};
use crate::state::{HeldLock, Holder, LockSet, LockStore, Takeover};
use crate::steps::graph::{self, Step};
use crate::steps::{self, Cx, Planned, StepFailure, side};

/// How long an emergency run has to be approved retroactively.
pub const RETROACTIVE_APPROVAL: Duration = Duration::from_secs(4 * 3600);

pub use crate::steps::graph::RunMode;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What kind of run (journaled, shown).
    pub kind: RunKind,
    /// The graph to run.
    pub mode: RunMode,
    /// Target region.
    pub target: String,
    /// Bound on concurrently running steps.
    pub parallelism: usize,
    /// Show, change nothing.
    pub dry_run: bool,
    /// Data loss the operator accepts (covers lag above RPO, or unknown lag).
    pub accept_data_loss: Option<Duration>,
    /// When the disaster was declared (RTO is measured from here).
    pub declared_at: Option<DateTime<Utc>>,
    /// `--approve` with its reason.
    pub approve: Option<String>,
    /// Skip approval; record a deadline for retroactive approval.
    pub emergency: bool,
    /// Take over a lock whose holder is dead (or, with
    /// [`RunOptions::force_reason`], a live shared lease).
    pub force_unlock: bool,
    /// Why a live lease is taken over (`--force-unlock REASON`).
    pub force_reason: Option<String>,
    /// Window replica lag is read over.
    pub lag_window: Duration,
    /// Poll interval bounds while waiting.
    pub poll: (Duration, Duration),
    /// Per-step time limit; `None` = the tier's RTO.
    pub step_timeout: Option<Duration>,
    /// Bound on each optional read of a region the run moves away from.
    pub side_read_timeout: Duration,
    /// Fault injection (as in saga engines): stop the executor at a point
    /// as a crash would, to prove that resume works from there. Journaled in
    /// the run's flags. See [`CrashPoint`].
    pub inject_crash: Option<CrashPoint>,
    /// A drill's longest run before it aborts into cleanup (`None`: the
    /// tier's default, [`crate::steps::drill_names::default_max_duration`]).
    pub max_duration: Option<Duration>,
    /// Notified to stop a drill's steps and clean up (Ctrl-C, SIGTERM).
    pub interrupt: Option<Arc<tokio::sync::Notify>>,
    /// The schedule slot a scheduled drill runs for: part of the run's
    /// identity (journaled); a slot another run took is refused under the
    /// plan's lock, so a slot runs at most once.
    pub slot: Option<DateTime<Utc>>,
    /// Drill even inside a plan's `[drill] blackout` window.
    pub ignore_blackout: bool,
}

/// Where to stop a run as a crash would (fault injection for crash/resume
/// tests and game days): `before:STEP` stops once the step's start is
/// journaled, before it acts; `after:STEP` once its success is journaled.
/// The executor stops there: steps in flight are dropped, nothing more is
/// journaled, and the plan locks stay taken, exactly what a dead process
/// leaves. Passed explicitly (`RunOptions::inject_crash`, the hidden
/// `--inject-crash` flag), never read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashPoint {
    /// Stop once the step's start is journaled, before it acts.
    Before(String),
    /// Stop once the step's success is journaled.
    After(String),
}

impl std::fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Before(s) => write!(f, "before:{s}"),
            Self::After(s) => write!(f, "after:{s}"),
        }
    }
}

impl CrashPoint {
    /// Parses `before:STEP` or `after:STEP`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            Some(("before", step)) => Some(Self::Before(step.to_string())),
            Some(("after", step)) => Some(Self::After(step.to_string())),
            _ => None,
        }
    }
}

impl RunOptions {
    /// Defaults for a failover to `target`.
    pub fn failover(target: &str) -> Self {
        Self {
            kind: RunKind::Failover,
            mode: RunMode::Failover,
            target: target.into(),
            parallelism: 8,
            dry_run: false,
            accept_data_loss: None,
            declared_at: None,
            approve: None,
            emergency: false,
            force_unlock: false,
            force_reason: None,
            lag_window: Duration::from_secs(15 * 60),
            poll: (Duration::from_millis(200), Duration::from_secs(10)),
            step_timeout: None,
            side_read_timeout: side::SIDE_READ_TIMEOUT,
            inject_crash: None,
            max_duration: None,
            interrupt: None,
            slot: None,
            ignore_blackout: false,
        }
    }
}

/// Receives progress events (the live view or plain lines).
pub trait Reporter: Send + Sync {
    /// A step started.
    fn started(&self, step: &Step);
    /// A step finished (`Err` = failed).
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, elapsed: Duration);
    /// A free-form note (gate decisions, lock takeovers).
    fn note(&self, text: &str);
    /// A running step started waiting for something (`what`: "payments-db-use1
    /// (us-east-1) to become an available primary"). Called once per wait.
    fn waiting(&self, step: &Step, what: &str) {
        let _ = (step, what);
    }
}

/// The share of the tier's RTO a step may still wait once the run's RTO
/// budget is spent (a late `--declared-at`, a resume hours later): a quarter,
/// so that a late recovery can still finish, late, instead of timing out at
/// once.
pub const LATE_STEP_BUDGET_DIVISOR: u32 = 4;

/// How long a step started now may wait: `--step-timeout` when given, else
/// what is left of the RTO budget that started at `clock_start` (declared or
/// run start), never less than a quarter of the RTO.
pub fn step_budget(
    rto: Duration,
    step_timeout: Option<Duration>,
    clock_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Duration {
    if let Some(t) = step_timeout {
        return t;
    }
    let spent = (now - clock_start).to_std().unwrap_or(Duration::ZERO);
    rto.saturating_sub(spent)
        .max(rto / LATE_STEP_BUDGET_DIVISOR)
}

/// Asks the operator to confirm (on a terminal); `None` when there is no terminal.
pub type Confirm = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The engine's collaborators.
#[derive(Clone)]
pub struct Engine {
    /// Cloud adapters.
    pub clouds: Clouds,
    /// The same adapters making one attempt per call (no retries), for the
    /// optional, bounded reads of regions that may be down ([`side`]).
    pub side_clouds: Clouds,
    /// Journal store.
    pub store: Arc<dyn JournalStore>,
    /// Plan locks (lock files, or leases on shared state).
    pub locks: Arc<dyn LockStore>,
    /// Progress sink.
    pub reporter: Arc<dyn Reporter>,
    /// Interactive confirmation, when on a terminal.
    pub confirm: Option<Confirm>,
}

/// Why a run did not complete normally.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A gate refused (exit 3).
    #[error("{0}")]
    Refused(String),
    /// Invalid request (exit 2).
    #[error("{0}")]
    Invalid(String),
    /// The journal failed (exit 1): nothing more is done without a journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The lock store failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The run stopped at an injected crash point (exit 1): its journal ends
    /// there and its locks stay taken, as after a crash.
    #[error(
        "stopped at the injected crash point {0}: the journal ends there, as after a crash; resume with `drctl runs resume {1}`"
    )]
    Crashed(CrashPoint, String),
}

/// One row of a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewRow {
    /// Step id.
    pub step: String,
    /// What it does.
    pub description: String,
    /// Calls and state changes, or the error reading state.
    pub calls: Result<Vec<Planned>, String>,
}

/// Compiles every plan's graph into one (step ids are prefixed by plan).
pub fn compile_all(plans: &[Plan], target: &str, mode: &RunMode) -> Result<Vec<Step>, EngineError> {
    let mut all: Vec<Step> = Vec::new();
    for p in plans {
        let g = graph::compile_mode(p, target, mode)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let offset = all.len();
        all.extend(g.steps.into_iter().map(|mut s| {
            s.deps.iter_mut().for_each(|d| *d += offset);
            s
        }));
    }
    Ok(all)
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    fn cx<'a>(
        &'a self,
        plan: &'a Plan,
        graph: &'a [Step],
        opts: &'a RunOptions,
        run_id: &'a str,
        outputs: &'a BTreeMap<String, Value>,
        budget: Duration,
        waiting: Option<&'a (dyn Fn(&str) + Send + Sync)>,
    ) -> Cx<'a> {
        Cx {
            clouds: &self.clouds,
            plan,
            target: &opts.target,
            run_id,
            outputs,
            deadline: Instant::now() + budget,
            poll: opts.poll,
            journal: self.store.clone(),
            lag_window: opts.lag_window,
            waiting,
            side: None,
            graph,
            rpo_readings: None,
            attempt: 1,
            drill_expires: None,
            render_report: Some(crate::report::running_json),
        }
    }

    /// Dry run: every step, the API calls it would make, current → desired.
    pub async fn preview(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
    ) -> Result<(Vec<PreviewRow>, Vec<Value>), EngineError> {
        let steps = compile_all(plans, &opts.target, &opts.mode)?;
        let outputs = BTreeMap::new();
        let mut rows = Vec::new();
        for s in &steps {
            let plan = plans
                .iter()
                .find(|p| p.name() == s.plan)
                .expect("steps come from plans");
            let budget = opts.step_timeout.unwrap_or(plan.tier.rto);
            let graph = plan_graph(&steps, plan.name());
            let cx = self.cx(plan, graph, opts, "dry-run", &outputs, budget, None);
            let calls = s
                .kind
                .action()
                .preview(&cx)
                .await
                .map_err(|e| e.to_string());
            rows.push(PreviewRow {
                step: s.id.to_string(),
                description: s.description.clone(),
                calls,
            });
        }
        let mut gates = Vec::new();
        for p in plans {
            let (rpo, refusal) = self.rpo_gate(p, opts).await;
            gates.push(json!({"plan": p.name(), "gate": "rpo", "decision": if refusal.is_some() { "would refuse" } else { "would pass" }, "detail": rpo}));
            let approval = json!({"required": p.tier.approval == Approval::Required, "given": opts.approve.is_some() || opts.emergency});
            gates.push(json!({"plan": p.name(), "gate": "approval", "detail": approval}));
        }
        Ok((rows, gates))
    }

    /// Reads replica lag for the plan's promote-replica databases and decides.
    /// Returns (gate detail, refusal message).
    async fn rpo_gate(&self, plan: &Plan, opts: &RunOptions) -> (Value, Option<String>) {
        let rpo = plan.tier.rpo;
        if !opts.mode.fails_over() {
            return (
                json!({"applies": false, "why": "no replica is promoted: the RPO achieved is measured instead"}),
                None,
            );
        }
        let mut dbs = Vec::new();
        let mut refusals = Vec::new();
        for d in plan
            .spec
            .database
            .iter()
            .filter(|d| d.strategy == DbStrategy::PromoteReplica)
        {
            let id = &d.regions[&opts.target];
            let lag = self
                .clouds
                .metrics
                .replica_lag(&opts.target, id, opts.lag_window)
                .await;
            let read_at = Utc::now();
            let (lag_s, note) = match &lag {
                Ok(r) => (
                    r.max.map(|m| m.as_secs_f64()),
                    format!(
                        "{} datapoints over {}",
                        r.datapoints,
                        format_duration(opts.lag_window)
                    ),
                ),
                Err(e) => (None, e.message.clone()),
            };
            let check = gates::LagCheck {
                instance: id,
                region: &opts.target,
                lag_seconds: lag_s,
                window: opts.lag_window,
                tier: &plan.tier.name,
                rpo,
                accepted: opts.accept_data_loss,
            };
            let ok_by_lag = check.passes();
            // Already a primary (a re-run, a plan already served from the
            // target): nothing is promoted, so this run loses nothing and the
            // gate has nothing to guard. Asked only when the lag would refuse:
            // one request fewer on every failover's path.
            let already_primary = if ok_by_lag {
                None
            } else {
                Some(matches!(
                    self.clouds.database.describe_instance(&opts.target, id).await,
                    Ok(Some(i)) if i.role == DbRole::Primary
                ))
            };
            let ok = ok_by_lag || already_primary == Some(true);
            if !ok && let Some(problem) = check.problem(&note) {
                refusals.push(problem);
            }
            let (latest, points) = match &lag {
                Ok(r) => (r.latest.map(|(d, _)| d.as_secs_f64()), r.datapoints),
                Err(_) => (None, 0),
            };
            dbs.push(json!({"resource": d.id, "instance": id, "lag_seconds": lag_s, "latest_lag_seconds": latest, "datapoints": points, "read_at": read_at, "reading": note, "within_rpo": check.within_rpo(), "already_primary": already_primary, "accepted": ok}));
        }
        let detail = json!({"rpo_seconds": rpo.as_secs(), "accept_data_loss_seconds": opts.accept_data_loss.map(|a| a.as_secs()), "databases": dbs});
        let refusal = (!refusals.is_empty()).then(|| {
            format!(
                "plan {}: {}\n  hint: {}",
                plan.name(),
                refusals.join("; "),
                gates::RPO_HINT
            )
        });
        (detail, refusal)
    }

    /// Runs a failover (or failback) of `plans` to `opts.target`.
    pub async fn run(&self, plans: &[Plan], opts: &RunOptions) -> Result<RunReport, EngineError> {
        if opts.dry_run {
            return Err(EngineError::Invalid(
                "a dry run changes nothing: call Engine::preview, not Engine::run".into(),
            ));
        }
        let steps = compile_all(plans, &opts.target, &opts.mode)?;
        if matches!(opts.mode, RunMode::Drill { .. }) && !opts.ignore_blackout {
            let now = Utc::now();
            if let Some((plan, why)) = plans.iter().find_map(|p| {
                let why = p.spec.drill.as_ref()?.blackout_at(now)?;
                Some((p.name(), why))
            }) {
                return Err(EngineError::Refused(format!(
                    "plan {plan} is in a {why}: no drill starts now\n  hint: wait for the window to close, or pass --ignore-blackout"
                )));
            }
        }
        let label = if plans.len() == 1 {
            plans[0].name().to_string()
        } else {
            "all".into()
        };
        let run_id = journal::new_run_id(&label);
        let me = LockInfo {
            run_id: run_id.clone(),
            host: hostname(),
            pid: std::process::id(),
            started: Utc::now(),
        };

        // Locks first: two runs must never both pass the gates.
        let names: Vec<&str> = plans.iter().map(|p| p.name()).collect();
        let takeover = Takeover {
            force: opts.force_unlock,
            reason: opts.force_reason.as_deref(),
            ..Takeover::default()
        };
        let (locks, taken_over) = self.lock_plans(&names, &me, opts.kind, takeover).await?;
        // The displaced runs learn at once (a preempted drill waits for this
        // record to journal its cleanup after it), before anything here
        // that may be slow (identity, the journal's creation).
        for t in &taken_over {
            self.record_lock_lost(t, &me, opts.force_reason.as_deref())
                .await;
        }
        // Under the lock: has another run taken this slot already?
        if let Some(slot) = opts.slot {
            match self.slot_taken(&names, slot).await {
                Ok(None) => {}
                Ok(Some(by)) => {
                    release_all(&locks).await;
                    return Err(EngineError::Refused(format!(
                        "the slot {slot} of {} was taken by run {by}; a slot runs once",
                        names.join(", ")
                    )));
                }
                Err(e) => {
                    release_all(&locks).await;
                    return Err(e.into());
                }
            }
        }

        // Who runs this, for the journal and the approval record. Without it
        // the run goes on (STS may be what is failing), and every approval
        // says why its identity is missing.
        let (operator, identity_error) = match self.clouds.identity.caller(&opts.target).await {
            Ok(id) => (Some(id.arn), None),
            Err(e) => {
                tracing::warn!("cannot read the operator identity (STS GetCallerIdentity): {e}");
                self.reporter.note(&format!(
                    "operator identity unknown (STS GetCallerIdentity failed: {}); approvals are recorded without it",
                    e.to_string().lines().next().unwrap_or_default()
                ));
                (None, Some(e.to_string()))
            }
        };
        let mut j = match Journal::create(self.store.clone(), &run_id).await {
            Ok(j) => j,
            Err(e) => {
                release_all(&locks).await;
                return Err(e.into());
            }
        };
        // A drill is fenced on local state too: a failover may preempt it.
        if self.locks.fenced() || opts.mode.is_shadow_drill() {
            j.set_fence(Arc::new(LockSet(locks.clone())));
        }
        j.append(Event::RunStarted {
            run_id: run_id.clone(),
            kind: opts.kind,
            target: opts.target.clone(),
            plans: plans
                .iter()
                .map(|p| PlanRef {
                    name: p.name().into(),
                    digest: p.digest.clone(),
                })
                .collect(),
            operator: operator.clone(),
            host: me.host.clone(),
            pid: me.pid,
            flags: json!({
                "parallelism": opts.parallelism,
                "mode": opts.mode,
                "accept_data_loss_seconds": opts.accept_data_loss.map(|d| d.as_secs()),
                "approve": opts.approve,
                "emergency": opts.emergency,
                "force_unlock": opts.force_unlock,
                "force_unlock_reason": opts.force_reason,
                "lag_window_seconds": opts.lag_window.as_secs(),
                "step_timeout_seconds": opts.step_timeout.map(|d| d.as_secs()),
                "inject_crash": opts.inject_crash.as_ref().map(ToString::to_string),
                "max_duration_seconds": opts.max_duration.map(|d| d.as_secs()),
                "schedule_slot": opts.slot,
                "not_drilled": opts.mode.is_shadow_drill().then(|| crate::runs::drill::not_drilled(plans)),
            }),
            declared_at: opts.declared_at,
            steps: steps
                .iter()
                .map(|s| StepRef {
                    id: s.id.to_string(),
                    deps: s.deps.iter().map(|d| steps[*d].id.to_string()).collect(),
                    description: s.description.clone(),
                })
                .collect(),
        })
        .await?;
        for t in &taken_over {
            j.append(Event::Gate {
                plan: t.plan.clone(),
                gate: GateName::Lock,
                decision: Decision::Override,
                detail: json!({"force_unlock": !t.preempted, "preempted_drill": t.preempted, "previous_holder": t.holder, "holder_was_live": t.live, "reason": opts.force_reason, "token": t.token}),
            })
            .await?;
            self.reporter.note(&format!(
                "took over the lock of {} from {} {} {} (pid {} on {})",
                t.plan,
                if t.live { "live" } else { "dead" },
                if t.preempted { "drill" } else { "run" },
                t.holder.run_id,
                t.holder.pid,
                t.holder.host
            ));
        }

        // Gates: approvals one plan at a time (they may ask a person), then
        // every plan's replica lag read concurrently, journaled in plan order.
        let mut refusal = None;
        let mut approved = Vec::new();
        for p in plans {
            let (mut detail, refused) = self.approval_gate(p, opts, operator.as_deref());
            if let (Some(err), Some(d)) = (&identity_error, detail.as_object_mut())
                && d.get("required") == Some(&json!(true))
            {
                d.insert("identity_error".into(), json!(err));
            }
            j.append(Event::Gate {
                plan: p.name().into(),
                gate: GateName::Approval,
                decision: decision(&refused, &detail),
                detail,
            })
            .await?;
            match refused {
                Some(r) => {
                    refusal.get_or_insert(r);
                }
                None => approved.push(p),
            }
        }
        // Read concurrently, but no more at once than the run's parallelism:
        // hundreds of unbounded reads swamp a rate-limited API (and the
        // emulators) and delay every plan's first step.
        let readings: Vec<_> = futures::stream::iter(approved.iter())
            .map(|p| self.rpo_gate(p, opts))
            .buffered(opts.parallelism.max(1))
            .collect()
            .await;
        let mut rpo_readings = BTreeMap::new();
        for (p, (detail, refused)) in approved.iter().zip(readings) {
            rpo_readings.insert(p.name().to_string(), detail.clone());
            let dec = if refused.is_some() {
                Decision::Refuse
            } else if detail["databases"]
                .as_array()
                .is_some_and(|d| d.iter().any(|x| x["within_rpo"] != json!(true)))
            {
                Decision::Override
            } else {
                Decision::Pass
            };
            j.append(Event::Gate {
                plan: p.name().into(),
                gate: GateName::Rpo,
                decision: dec,
                detail,
            })
            .await?;
            if let Some(r) = refused {
                refusal.get_or_insert(r);
            }
        }
        if let Some(r) = refusal {
            j.append(Event::RunFinished {
                outcome: Outcome::Refused,
                summary: json!({"reason": r}),
            })
            .await?;
            release_all(&locks).await;
            return Err(EngineError::Refused(format!(
                "{r}\n  (run {run_id} journaled the decision)"
            )));
        }

        let report = self
            .execute(
                plans,
                opts,
                &steps,
                &mut j,
                BTreeMap::new(),
                &BTreeMap::new(),
                opts.declared_at.unwrap_or(me.started),
                &rpo_readings,
                &locks,
            )
            .await;
        end_locks(&locks, &report).await;
        report
    }

    /// Takes every plan's lock, in name order (so two runs over
    /// overlapping plans cannot deadlock), or none: on a refusal the locks
    /// already taken are released. Returns them and the holders taken over
    /// (to journal).
    async fn lock_plans(
        &self,
        names: &[&str],
        me: &LockInfo,
        kind: RunKind,
        takeover: Takeover<'_>,
    ) -> Result<(Vec<Arc<dyn HeldLock>>, Vec<TakenOver>), EngineError> {
        let mut names = names.to_vec();
        names.sort_unstable();
        names.dedup();
        let holder = Holder {
            info: me.clone(),
            kind,
        };
        let mut locks: Vec<Arc<dyn HeldLock>> = Vec::new();
        let mut taken_over = Vec::new();
        for name in names {
            let mut result = self.locks.acquire(name, &holder, takeover).await;
            let mut preempted = false;
            // A real failover always preempts a drill: the holder's own
            // journal (not its lock) says it is one.
            if let Err(LockError::Held { holder: h, .. }) = &result
                && matches!(kind, RunKind::Failover | RunKind::Failback)
                && self.is_shadow_drill_run(&h.run_id).await
            {
                let drill = h.run_id.clone();
                let t = Takeover {
                    preempt_run: Some(&drill),
                    ..takeover
                };
                result = self.locks.acquire(name, &holder, t).await;
                preempted = result.is_ok();
            }
            match result {
                Ok(acquired) => {
                    if let Some(d) = acquired.displaced {
                        taken_over.push(TakenOver {
                            plan: name.to_string(),
                            holder: d,
                            live: acquired.displaced_live,
                            token: acquired.lock.token(),
                            preempted,
                        });
                    }
                    locks.push(acquired.lock);
                }
                Err(LockError::Held {
                    plan,
                    holder,
                    alive,
                }) => {
                    release_all(&locks).await;
                    let shared = self.locks.fenced();
                    return Err(EngineError::Refused(format!(
                        "plan {plan} is locked by run {} (host {}, pid {}, started {}){}",
                        holder.run_id,
                        holder.host,
                        holder.pid,
                        holder.started,
                        match (alive, shared) {
                            (true, false) => "\n  hint: one run per plan at a time; watch it with `drctl runs show RUN`".to_string(),
                            (true, true) => format!(
                                "; its lease is live\n  hint: one run per plan at a time; watch it with `drctl runs show {}`; if its machine is gone, wait for the lease to expire and `drctl runs resume {}`, or take it now with --force-unlock \"REASON\"",
                                holder.run_id, holder.run_id
                            ),
                            (false, false) => format!(
                                "; that process is gone\n  hint: resume it with `drctl runs resume {}`, or take the lock over with --force-unlock",
                                holder.run_id
                            ),
                            (false, true) => format!(
                                "; its lease has expired\n  hint: resume it with `drctl runs resume {}` (from any machine), or take the lock over with --force-unlock",
                                holder.run_id
                            ),
                        }
                    )));
                }
                Err(e) => {
                    release_all(&locks).await;
                    return Err(e.into());
                }
            }
        }
        Ok((locks, taken_over))
    }

    /// Whether `run_id` is a shadow drill, from its journal's first record
    /// (a switchover drill is a real failover: it is not preempted).
    async fn is_shadow_drill_run(&self, run_id: &str) -> bool {
        let Ok(text) = self.store.read(run_id).await else {
            return false;
        };
        let Some(Ok(first)) = text.lines().next().map(serde_json::from_str::<Record>) else {
            return false;
        };
        matches!(first.event, Event::RunStarted { kind: RunKind::Drill, ref flags, .. }
            if serde_json::from_value::<RunMode>(flags["mode"].clone()).is_ok_and(|m| m.is_shadow_drill()))
    }

    /// Writes into the displaced run's own journal that its lock was taken
    /// (so both runs record the takeover). On shared state this record also
    /// fences it: its next append finds the record number taken. Best effort:
    /// a failure is a warning, never a reason to stop this run.
    async fn record_lock_lost(&self, t: &TakenOver, me: &LockInfo, reason: Option<&str>) {
        if t.holder.run_id == me.run_id {
            return;
        }
        let event = Event::LockLost {
            plan: t.plan.clone(),
            by_run: me.run_id.clone(),
            by_host: me.host.clone(),
            reason: if t.preempted {
                format!(
                    "preempted by failover run {}: a real failover takes precedence over a drill",
                    me.run_id
                )
            } else {
                reason
                    .unwrap_or("lock taken over (--force-unlock)")
                    .to_string()
            },
            token: t.token.unwrap_or(0),
            preempted: t.preempted,
        };
        if let Err(e) = journal::append_to(self.store.clone(), &t.holder.run_id, event).await {
            self.reporter.note(&format!(
                "could not record the takeover in the journal of run {}: {}",
                t.holder.run_id,
                e.to_string().lines().next().unwrap_or_default()
            ));
        }
    }

    fn approval_gate(
        &self,
        plan: &Plan,
        opts: &RunOptions,
        operator: Option<&str>,
    ) -> (Value, Option<String>) {
        if opts.mode.is_shadow_drill() {
            return (
                json!({"required": false, "why": "a shadow drill changes no production resource"}),
                None,
            );
        }
        // A switchover drill moves users: approval whatever the tier says.
        let switchover = matches!(opts.mode, RunMode::Drill { .. });
        if plan.tier.approval != Approval::Required && !switchover {
            return (json!({"required": false}), None);
        }
        if opts.emergency {
            let by =
                Utc::now() + chrono::Duration::from_std(RETROACTIVE_APPROVAL).unwrap_or_default();
            return (
                json!({"required": true, "emergency": true, "approve_by": by, "operator": operator}),
                None,
            );
        }
        if let Some(reason) = &opts.approve {
            return (
                json!({"required": true, "approved_by": operator, "reason": reason, "how": "--approve"}),
                None,
            );
        }
        if let Some(confirm) = &self.confirm {
            let q = format!(
                "{} of plan {} ({} tier) to {}? Type the plan name to confirm",
                opts.kind,
                plan.name(),
                plan.tier.name,
                opts.target
            );
            if confirm(&q) {
                return (
                    json!({"required": true, "approved_by": operator, "how": "interactive confirmation"}),
                    None,
                );
            }
            return (
                json!({"required": true, "how": "interactive confirmation", "confirmed": false}),
                Some(format!(
                    "plan {}: the operator did not confirm",
                    plan.name()
                )),
            );
        }
        (
            json!({"required": true, "approved": false}),
            Some(format!(
                "plan {} ({} tier) requires approval and there is no terminal to ask\n  hint: pass --approve \"REASON\" (recorded with your identity), or --emergency to approve retroactively within 4h",
                plan.name(),
                plan.tier.name
            )),
        )
    }

    /// Resumes run `run_id`: verifies the journal, skips finished steps,
    /// re-checks steps that had started (they are idempotent), continues.
    ///
    /// The plans' locks are taken first (a resume of the run that held them
    /// may take them back once their holder is gone or its lease expired),
    /// and only then is the journal opened: what is replayed is everything
    /// the previous holder wrote.
    pub async fn resume(
        &self,
        run_id: &str,
        plans_available: &[Plan],
        opts_override: Option<RunOptions>,
    ) -> Result<RunReport, EngineError> {
        let (names, kind) = self.run_plans(run_id).await?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let me = LockInfo {
            run_id: run_id.to_string(),
            host: hostname(),
            pid: std::process::id(),
            started: Utc::now(),
        };
        let takeover = Takeover {
            reclaim_run: Some(run_id),
            ..Takeover::default()
        };
        let (locks, _) = self.lock_plans(&names, &me, kind, takeover).await?;
        let report = self
            .resume_locked(run_id, plans_available, opts_override, &locks, &me)
            .await;
        end_locks(&locks, &report).await;
        report
    }

    /// The plans and kind of a run, from its first record (read leniently:
    /// the chain is verified when the journal is opened for appending).
    async fn run_plans(&self, run_id: &str) -> Result<(Vec<String>, RunKind), EngineError> {
        let text = self.store.read(run_id).await?;
        let first = text.lines().next().unwrap_or_default();
        match serde_json::from_str::<Record>(first).map(|r| r.event) {
            Ok(Event::RunStarted { plans, kind, .. }) => {
                Ok((plans.into_iter().map(|p| p.name).collect(), kind))
            }
            _ => Err(EngineError::Invalid(format!(
                "journal of {run_id} does not start with a run-started record\n  hint: `drctl audit verify {run_id}` checks its chain"
            ))),
        }
    }

    async fn resume_locked(
        &self,
        run_id: &str,
        plans_available: &[Plan],
        mut opts_override: Option<RunOptions>,
        locks: &[Arc<dyn HeldLock>],
        me: &LockInfo,
    ) -> Result<RunReport, EngineError> {
        let (mut j, records) = Journal::open_for_append(self.store.clone(), run_id).await?;
        if self.locks.fenced() {
            j.set_fence(Arc::new(LockSet(locks.to_vec())));
        }
        let replayed = replay(&records);
        if let Some(bad) = &replayed.illegal {
            return Err(EngineError::Invalid(format!(
                "{bad}: run {run_id} cannot be resumed from this journal\n  hint: `drctl audit verify {run_id}` checks its chain; start a new run"
            )));
        }
        let Some((kind, target, plan_refs, flags, declared_at, journaled_steps)) =
            records.iter().find_map(|r| match &r.event {
                Event::RunStarted {
                    kind,
                    target,
                    plans,
                    flags,
                    declared_at,
                    steps,
                    ..
                } => Some((
                    *kind,
                    target.clone(),
                    plans.clone(),
                    flags.clone(),
                    *declared_at,
                    Some(steps.clone()),
                )),
                _ => None,
            })
        else {
            return Err(EngineError::Invalid(format!(
                "journal of {run_id} has no run-started record"
            )));
        };
        let shadow = kind == RunKind::Drill
            && serde_json::from_value::<RunMode>(flags["mode"].clone())
                .is_ok_and(|m| m.is_shadow_drill());
        if shadow
            && records
                .iter()
                .any(|r| matches!(r.event, Event::RunFinished { .. }))
            && crate::runs::drill::cleanup_summary(&records).complete
        {
            return Err(EngineError::Invalid(format!(
                "drill {run_id} already ended and its cleanup is complete; nothing to resume\n  hint: start a new drill"
            )));
        }
        if let Some(Event::RunFinished { outcome, .. }) = records
            .iter()
            .rev()
            .map(|r| &r.event)
            .find(|e| matches!(e, Event::RunFinished { .. }))
            && !outcome.resumable()
        {
            return Err(EngineError::Invalid(format!(
                "run {run_id} already finished ({outcome}); nothing to resume"
            )));
        }
        let mut plans = Vec::new();
        for pr in &plan_refs {
            let Some(p) = plans_available.iter().find(|p| p.name() == pr.name) else {
                return Err(EngineError::Invalid(format!(
                    "plan {} of run {run_id} is no longer in the plan directory",
                    pr.name
                )));
            };
            if p.digest != pr.digest {
                return Err(EngineError::Invalid(format!(
                    "plan {} changed since run {run_id} started (digest {} → {})\n  hint: restore the plan file as it was (git) to resume; a run continues with the plan it started with",
                    pr.name,
                    &pr.digest[..12.min(pr.digest.len())],
                    &p.digest[..12.min(p.digest.len())]
                )));
            }
            plans.push(p.clone());
        }
        for p in &plans {
            for gate in [GateName::Approval, GateName::Rpo] {
                let passed = records.iter().any(|r| matches!(&r.event, Event::Gate { plan, gate: g, decision, .. } if plan == p.name() && *g == gate && *decision != Decision::Refuse));
                if !passed {
                    return Err(EngineError::Refused(format!(
                        "run {run_id} never passed the {gate} gate for plan {}; start a new run instead",
                        p.name()
                    )));
                }
            }
        }
        let mut opts = opts_override
            .take()
            .unwrap_or_else(|| RunOptions::failover(&target));
        opts.kind = kind;
        opts.target = target.clone();
        opts.declared_at = declared_at;
        if let Some(n) = flags["parallelism"].as_u64() {
            opts.parallelism = n as usize;
        }
        // The journaled mode decides what runs: one that cannot be read is
        // an error, never a failover by default.
        opts.mode = serde_json::from_value::<RunMode>(flags["mode"].clone()).map_err(|e| {
            EngineError::Invalid(format!(
                "run {run_id} journaled a mode this drctl cannot read ({e}): {}\n  hint: resume it with the drctl version that started it",
                flags["mode"]
            ))
        })?;
        if let Some(s) = flags["step_timeout_seconds"].as_u64() {
            opts.step_timeout = Some(Duration::from_secs(s));
        }
        let torn = j.torn_tail().cloned();
        if let Some(t) = &torn {
            self.reporter.note(&format!(
                "cut off a torn final line of the journal (line {}, {} bytes: a write interrupted by the crash, never acknowledged); it is kept in the resumed record",
                t.line, t.bytes
            ));
        }
        j.append(Event::Resumed {
            host: me.host.clone(),
            pid: me.pid,
            dropped_torn_line: torn.map(|t| t.text),
        })
        .await?;
        if shadow {
            // A drill is never continued after its process died (its
            // figures would span the gap): it is cleaned up and ended.
            let all_ran = journaled_steps.as_ref().is_some_and(|st| {
                st.iter().all(|s| {
                    replayed
                        .steps
                        .get(&s.id)
                        .is_some_and(|x| x.state == StepState::Succeeded)
                })
            });
            if !all_ran && crate::runs::drill::interrupted(&records).is_none() {
                j.append(Event::Interrupted {
                    reason: format!(
                        "the drill's process stopped before its steps ended; resumed on {} to clean up",
                        me.host
                    ),
                })
                .await?;
            }
            return self.finish_drill(&plans, &opts, &mut j).await;
        }
        let outputs: BTreeMap<String, Value> = replayed
            .steps
            .iter()
            .filter(|(_, s)| s.state == StepState::Succeeded)
            .filter_map(|(id, s)| Some((id.clone(), s.outputs.clone()?)))
            .collect();
        let attempts: BTreeMap<String, u32> = replayed
            .steps
            .iter()
            .map(|(id, s)| (id.clone(), s.attempt))
            .collect();
        // What the RPO gate read at the start (steps reuse a reading only
        // while it is fresh, so after a crash they read again).
        let rpo_readings: BTreeMap<String, Value> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Gate {
                    plan,
                    gate: GateName::Rpo,
                    detail,
                    ..
                } => Some((plan.clone(), detail.clone())),
                _ => None,
            })
            .collect();
        let steps = compile_all(&plans, &target, &opts.mode)?;
        if let Some(journaled) = &journaled_steps {
            graph_unchanged(run_id, journaled, &steps)?;
        }
        // The RTO clock started when the disaster was declared, or when the
        // run first started: a resume does not get a fresh budget.
        let clock_start = declared_at
            .or_else(|| records.first().map(|r| r.at))
            .unwrap_or_else(Utc::now);
        self.execute(
            &plans,
            &opts,
            &steps,
            &mut j,
            outputs,
            &attempts,
            clock_start,
            &rpo_readings,
            locks,
        )
        .await
    }

    /// Runs the graph; a drill whose lock is taken over meanwhile (a
    /// failover preempting it) still ends with its cleanup, journaled after
    /// the takeover's record.
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        steps: &[Step],
        j: &mut Journal,
        outputs: BTreeMap<String, Value>,
        earlier_attempts: &BTreeMap<String, u32>,
        clock_start: DateTime<Utc>,
        rpo_readings: &BTreeMap<String, Value>,
        locks: &[Arc<dyn HeldLock>],
    ) -> Result<RunReport, EngineError> {
        let result = self
            .execute_graph(
                plans,
                opts,
                steps,
                j,
                outputs,
                earlier_attempts,
                clock_start,
                rpo_readings,
                locks,
            )
            .await;
        let is_drill = opts.mode.is_shadow_drill();
        match result {
            Err(EngineError::Journal(JournalError::Fenced { detail, .. })) if is_drill => {
                *j = self.reopen_after_preemption(j.run_id()).await?;
                j.append(Event::Interrupted {
                    reason: format!("preempted: {detail}"),
                })
                .await?;
                self.finish_drill(plans, opts, j).await
            }
            other => other,
        }
    }

    /// The journal of a drill whose lock was taken over, opened again at its
    /// true end once the taker's `lock_lost` record is there (waited for a
    /// few seconds), without a fence: the lock is gone, and these records
    /// are the drill's own ending (its cleanup), which nobody else writes.
    async fn reopen_after_preemption(&self, run_id: &str) -> Result<Journal, EngineError> {
        for _ in 0..50 {
            let text = self.store.read(run_id).await.unwrap_or_default();
            if text.contains("\"type\":\"lock_lost\"") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (j, _) = Journal::open_for_append(self.store.clone(), run_id).await?;
        Ok(j)
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute_graph(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        steps: &[Step],
        j: &mut Journal,
        mut outputs: BTreeMap<String, Value>,
        earlier_attempts: &BTreeMap<String, u32>,
        clock_start: DateTime<Utc>,
        rpo_readings: &BTreeMap<String, Value>,
        locks: &[Arc<dyn HeldLock>],
    ) -> Result<RunReport, EngineError> {
        let run_id = j.run_id().to_string();
        let plan_of = |s: &Step| {
            plans
                .iter()
                .find(|p| p.name() == s.plan)
                .expect("steps come from plans")
        };
        // Finished steps are skipped; one that finished unsettled (evidence
        // some destination did not take) runs again.
        let mut done: BTreeSet<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                outputs
                    .get(&s.id.to_string())
                    .is_some_and(|o| steps::settled(s, o))
            })
            .map(|(i, _)| i)
            .collect();
        let mut started: BTreeSet<usize> = done.clone();
        let mut failed: Vec<(usize, StepFailure)> = Vec::new();
        let mut running = FuturesUnordered::new();
        let parallelism = opts.parallelism.max(1);
        let mut attempts: BTreeMap<usize, u32> = steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| earlier_attempts.get(&s.id.to_string()).map(|n| (i, *n)))
            .collect();
        let side = side::other_regions(
            self.side_clouds.clone(),
            plans,
            &opts.target,
            opts.side_read_timeout,
        );
        // Only a shadow drill stops on a signal and cleans up: a switchover
        // drill is a real failover, resumable like one.
        let is_drill = opts.mode.is_shadow_drill();
        let max_duration = self.max_duration(plans, opts);
        let drill_expires = is_drill.then(|| {
            clock_start
                + chrono::Duration::from_std(max_duration + crate::steps::drill_names::SWEEP_GRACE)
                    .unwrap_or_default()
        });
        let mut stop = self.stop_signal(opts, is_drill, clock_start, max_duration, locks);
        let mut interrupted: Option<String> = None;
        let mut temps: BTreeSet<crate::journal::Temp> = BTreeSet::new();
        loop {
            if failed.is_empty() {
                let mut ready: Vec<usize> = (0..steps.len())
                    .filter(|i| {
                        !started.contains(i) && steps[*i].deps.iter().all(|d| done.contains(d))
                    })
                    .collect();
                ready.sort_by_key(|i| (plan_of(&steps[*i]).tier.rank, *i));
                for i in ready {
                    if running.len() >= parallelism {
                        break;
                    }
                    // What the step may create, journaled before it acts.
                    for t in steps[i].kind.action().creates(&run_id) {
                        if temps.insert(t.clone()) {
                            j.append(Event::DrillResource {
                                step: steps[i].id.to_string(),
                                resource: t,
                            })
                            .await?;
                        }
                    }
                    let attempt = attempts.entry(i).or_insert(0);
                    *attempt += 1;
                    // Journaled and fsynced before the step begins.
                    j.append(Event::StepStarted {
                        step: steps[i].id.to_string(),
                        attempt: *attempt,
                    })
                    .await?;
                    started.insert(i);
                    if opts.inject_crash == Some(CrashPoint::Before(steps[i].id.to_string())) {
                        return Err(EngineError::Crashed(
                            CrashPoint::Before(steps[i].id.to_string()),
                            run_id,
                        ));
                    }
                    self.reporter.started(&steps[i]);
                    let snapshot = outputs.clone();
                    let plan = plan_of(&steps[i]);
                    let run_id = run_id.clone();
                    let budget =
                        step_budget(plan.tier.rto, opts.step_timeout, clock_start, Utc::now());
                    let side = side.clone();
                    let graph = plan_graph(steps, plan.name());
                    let attempt = attempts[&i];
                    running.push(async move {
                        let t0 = Instant::now();
                        let step = &steps[i];
                        let waiting = |what: &str| self.reporter.waiting(step, what);
                        let mut cx = self.cx(
                            plan,
                            graph,
                            opts,
                            &run_id,
                            &snapshot,
                            budget,
                            Some(&waiting),
                        );
                        cx.side = Some(side);
                        cx.rpo_readings = rpo_readings.get(plan.name());
                        cx.attempt = attempt;
                        cx.drill_expires = drill_expires;
                        let action = step.kind.action();
                        let span = tracing::info_span!("step", step = %step.id);
                        let result = tracing::Instrument::instrument(action.run(&cx), span).await;
                        (i, result, t0.elapsed())
                    });
                }
            }
            let next = tokio::select! {
                n = running.next() => n,
                reason = &mut stop, if interrupted.is_none() => {
                    interrupted = Some(reason);
                    None
                }
            };
            let Some((i, result, elapsed)) = next else {
                break;
            };
            match result {
                Ok(out) => {
                    self.reporter.finished(&steps[i], Ok(&out), elapsed);
                    j.append(Event::StepSucceeded {
                        step: steps[i].id.to_string(),
                        outputs: out.clone(),
                    })
                    .await?;
                    outputs.insert(steps[i].id.to_string(), out);
                    done.insert(i);
                    if opts.inject_crash == Some(CrashPoint::After(steps[i].id.to_string())) {
                        return Err(EngineError::Crashed(
                            CrashPoint::After(steps[i].id.to_string()),
                            run_id,
                        ));
                    }
                }
                Err(e) => {
                    self.reporter.finished(&steps[i], Err(&e), elapsed);
                    j.append(Event::StepFailed {
                        step: steps[i].id.to_string(),
                        error: e.to_record(),
                    })
                    .await?;
                    failed.push((i, e));
                }
            }
        }
        if is_drill {
            // Steps still in flight are dropped: what they may have created
            // is journaled, and cleanup reads the cloud before it acts.
            drop(running);
            if let Some(reason) = interrupted {
                self.reporter
                    .note(&format!("drill stopped: {reason}; cleaning up"));
                if locks.iter().any(|l| l.check_local().is_err()) {
                    *j = self.reopen_after_preemption(&run_id).await?;
                }
                j.append(Event::Interrupted { reason }).await?;
            }
            return self.finish_drill(plans, opts, j).await;
        }
        let records = journal::read(self.store.as_ref(), &run_id).await?;
        let unsettled = steps.iter().any(|s| {
            outputs
                .get(&s.id.to_string())
                .is_some_and(|o| !steps::settled(s, o))
        });
        let outcome = if !failed.is_empty() || done.len() != steps.len() {
            Outcome::Failed
        } else if unsettled {
            Outcome::EvidenceIncomplete
        } else {
            Outcome::Succeeded
        };
        let report = build_report(&run_id, &records, plans, outcome);
        j.append(Event::RunFinished {
            outcome,
            summary: json!({ "measures": report.measures, "not_done": report.steps.iter().filter(|s| s.state != StepState::Succeeded).map(|s| &s.step).collect::<Vec<_>>() }),
        })
        .await?;
        Ok(report)
    }
}

impl Engine {
    /// The run that took schedule slot `slot` of one of `plans`, if any:
    /// only runs started at or after the slot are read (run ids begin with
    /// their start time), and only their first record.
    pub async fn slot_taken(
        &self,
        plans: &[&str],
        slot: DateTime<Utc>,
    ) -> Result<Option<String>, JournalError> {
        let from = slot.format("%Y%m%dT%H%M%SZ").to_string();
        for id in self.store.list().await? {
            if id.get(..16).is_none_or(|t| t < from.as_str()) {
                continue;
            }
            let text = match self.store.read(&id).await {
                Ok(t) => t,
                Err(JournalError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let Some(first) = text.lines().next() else {
                continue;
            };
            let Ok(r) = serde_json::from_str::<Record>(first) else {
                continue;
            };
            if let Event::RunStarted {
                plans: ran, flags, ..
            } = &r.event
                && flags["schedule_slot"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                    == Some(slot)
                && ran.iter().any(|p| plans.contains(&p.name.as_str()))
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// A drill's longest run: `--max-duration`, else the plan's `[drill]
    /// max_duration`, else its tier's default (the shortest over the plans).
    fn max_duration(&self, plans: &[Plan], opts: &RunOptions) -> Duration {
        opts.max_duration.unwrap_or_else(|| {
            plans
                .iter()
                .map(crate::steps::drill_names::plan_max_duration)
                .min()
                .unwrap_or(Duration::from_secs(15 * 60))
        })
    }

    /// What stops a drill's steps: the operator (Ctrl-C, SIGTERM, through
    /// [`RunOptions::interrupt`]) or its maximum duration, counted from the
    /// run's start. Never resolves for other runs.
    fn stop_signal(
        &self,
        opts: &RunOptions,
        is_drill: bool,
        clock_start: DateTime<Utc>,
        max: Duration,
        locks: &[Arc<dyn HeldLock>],
    ) -> futures::future::BoxFuture<'static, String> {
        use futures::FutureExt as _;
        if !is_drill {
            return std::future::pending().boxed();
        }
        let left = (clock_start + chrono::Duration::from_std(max).unwrap_or_default() - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO);
        let interrupt = opts.interrupt.clone();
        let locks = locks.to_vec();
        async move {
            // Another run took a lock over (a failover preempting the drill).
            let lost = async {
                loop {
                    if let Some(why) = locks.iter().find_map(|l| l.check_local().err()) {
                        return why;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            };
            let operator = async {
                match interrupt {
                    Some(n) => n.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(left) => format!(
                    "the drill ran for its maximum duration ({}; --max-duration)",
                    format_duration(max)
                ),
                _ = operator => "stopped by the operator (Ctrl-C or SIGTERM)".to_string(),
                why = lost => format!("preempted: {why}"),
            }
        }
        .boxed()
    }

    /// A drill's ending, whatever ended it: cleans up every resource its
    /// journal names (each removal proven and journaled), then journals how
    /// the run ended. A preempted drill (its lock taken over) leaves the
    /// capacity it raised to the run that owns the plan now.
    async fn finish_drill(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        j: &mut Journal,
    ) -> Result<RunReport, EngineError> {
        let run_id = j.run_id().to_string();
        let records = journal::read(self.store.as_ref(), &run_id).await?;
        // Only a failover's preemption takes the raised capacity over; a
        // lock broken or forced by anyone else leaves the group the drill's
        // to restore.
        let preempted = records.iter().any(|r| {
            matches!(
                r.event,
                Event::LockLost {
                    preempted: true,
                    ..
                }
            )
        });
        let temps = crate::runs::drill::journaled(&records);
        if !temps.is_empty() {
            self.reporter.note(&format!(
                "drill cleanup: {} resource(s) to remove or restore",
                temps.len()
            ));
        }
        let deadline = Instant::now() + CLEANUP_BUDGET;
        let results = futures::future::join_all(temps.iter().map(|t| {
            crate::cleanup::remove(
                t,
                &self.clouds,
                &run_id,
                preempted && !t.drill_only(),
                opts.poll,
                deadline,
            )
        }))
        .await;
        for c in results {
            self.reporter.note(&format!(
                "cleanup: {}: {} ({})",
                c.resource, c.result, c.detail
            ));
            j.append(Event::Cleanup {
                resource: c.resource,
                result: c.result,
                detail: c.detail,
            })
            .await?;
        }
        let records = journal::read(self.store.as_ref(), &run_id).await?;
        let cleanup = crate::runs::drill::cleanup_summary(&records);
        let steps_ok = crate::runs::drill::interrupted(&records).is_none()
            && measure::timings(&records)
                .iter()
                .all(|s| s.state == StepState::Succeeded);
        let outcome = if !cleanup.complete {
            Outcome::CleanupIncomplete
        } else if steps_ok {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        let report = build_report(&run_id, &records, plans, outcome);
        j.append(Event::RunFinished {
            outcome,
            summary: json!({
                "measures": report.measures,
                "not_done": report.steps.iter().filter(|s| s.state != StepState::Succeeded).map(|s| &s.step).collect::<Vec<_>>(),
                "drill": report.drill,
            }),
        })
        .await?;
        Ok(report)
    }
}

/// How long a drill's cleanup may wait for deletions to be proven.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(10 * 60);

/// Refuses to resume when the graph compiled now is not the one journaled
/// at the start (a plan edited, or drctl upgraded, since the crash), saying
/// what changed.
fn graph_unchanged(run_id: &str, journaled: &[StepRef], now: &[Step]) -> Result<(), EngineError> {
    let then: BTreeMap<&str, &StepRef> = journaled.iter().map(|s| (s.id.as_str(), s)).collect();
    let ids: Vec<String> = now.iter().map(|s| s.id.to_string()).collect();
    let mut changes = Vec::new();
    for (s, id) in now.iter().zip(&ids) {
        match then.get(id.as_str()) {
            None => changes.push(format!("step {id} is new")),
            Some(t) => {
                let deps: Vec<String> = s.deps.iter().map(|d| ids[*d].clone()).collect();
                if deps != t.deps {
                    changes.push(format!(
                        "step {id} now waits for [{}] (was [{}])",
                        deps.join(", "),
                        t.deps.join(", ")
                    ));
                }
            }
        }
    }
    for t in journaled {
        if !ids.contains(&t.id) {
            changes.push(format!("step {} is gone", t.id));
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    Err(EngineError::Invalid(format!(
        "run {run_id} cannot be resumed: the step graph differs from the one it started with: {}\n  hint: the plan file or drctl changed since the run started; resume with the version that started it, or start a new run",
        changes.join("; ")
    )))
}

/// Locks taken over from dead runs: (plan, the dead holder).
/// A lock this run took from another holder.
struct TakenOver {
    plan: String,
    holder: LockInfo,
    live: bool,
    token: Option<u64>,
    /// A failover preempted a drill (no `--force-unlock` needed).
    preempted: bool,
}

/// The steps of plan `plan` within a run's graph (each plan's steps are
/// compiled one after the other, so they are contiguous).
fn plan_graph<'a>(steps: &'a [Step], plan: &str) -> &'a [Step] {
    let start = steps
        .iter()
        .position(|s| s.plan == plan)
        .unwrap_or(steps.len());
    let len = steps[start..].iter().take_while(|s| s.plan == plan).count();
    &steps[start..start + len]
}

fn decision(refused: &Option<String>, detail: &Value) -> Decision {
    if refused.is_some() {
        Decision::Refuse
    } else if detail["emergency"] == json!(true) {
        Decision::Override
    } else {
        Decision::Pass
    }
}

async fn release_all(locks: &[Arc<dyn HeldLock>]) {
    for l in locks {
        if let Err(e) = l.release().await {
            tracing::warn!("cannot release lock: {e}");
        }
    }
}

/// Releases the locks when a run ends, leaves them taken when it stopped at
/// an injected crash point (as a dead process leaves them).
async fn end_locks<T>(locks: &[Arc<dyn HeldLock>], result: &Result<T, EngineError>) {
    if matches!(result, Err(EngineError::Crashed(..))) {
        locks.iter().for_each(|l| l.abandon());
    } else {
        release_all(locks).await;
    }
}

#[cfg(test)]
mod fault_loop;
#[cfg(test)]
mod tests;
