//! The executor: a bounded concurrent scheduler over the run's step graph.
//!
//! A step starts the moment its dependencies finish, at most `parallelism`
//! at once, critical-tier plans first when the bound bites. Every event is
//! journaled (and fsynced) before the step it announces starts, so a crash
//! at any point leaves a journal that resume can replay. On a failed step no
//! new step starts, running ones finish, and the run ends Failed.
//!
//! Everything a run's execution needs travels in one [`RunCx`], built once
//! by `run` (fresh) or `resume` (rebuilt from the journal), so both enter
//! the executor the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::{Value, json};

use crate::cloud::wire::WireFence;
use crate::journal::RpoDetail;
use crate::journal::event::{Event, Outcome};
use crate::journal::{self, Journal, JournalError, StepName, Temp};
use crate::plan::Plan;
use crate::runs::replay::StepState;
use crate::runs::{RunReport, build_report};
use crate::state::HeldLock;
use crate::steps::graph::Step;
use crate::steps::{self, Cx, SideReads, StepFailure, side};

use super::{CrashPoint, Engine, EngineError, RunOptions};

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

/// The steps of plan `plan` within a run's graph (each plan's steps are
/// compiled one after the other, so they are contiguous).
pub(super) fn plan_graph<'a>(steps: &'a [Step], plan: &str) -> &'a [Step] {
    let start = steps
        .iter()
        .position(|s| s.plan == plan)
        .unwrap_or(steps.len());
    let len = steps[start..].iter().take_while(|s| s.plan == plan).count();
    &steps[start..start + len]
}

/// Everything the executor needs for one run, built once by `run` (fresh)
/// or `resume` (from the journal).
pub(super) struct RunCx<'a> {
    /// The run's plans.
    pub(super) plans: &'a [Plan],
    /// What the run was asked to do.
    pub(super) opts: &'a RunOptions,
    /// Every plan's steps, in one graph ([`super::compile_all`]).
    pub(super) steps: &'a [Step],
    /// The run's journal, open for appending.
    pub(super) journal: Journal,
    /// Outputs of the steps already done, by step id (a resume's replay).
    pub(super) outputs: BTreeMap<String, Value>,
    /// Attempts already made, by step id (a resume's replay).
    pub(super) attempts: BTreeMap<String, u32>,
    /// Where the RTO clock starts: the declared disaster, or the run's start.
    pub(super) clock_start: DateTime<Utc>,
    /// What the RPO gate read, by plan (steps reuse a fresh reading).
    pub(super) rpo_readings: &'a BTreeMap<String, RpoDetail>,
    /// What the protections gate read of each plan's zones (preflight uses
    /// it while fresh).
    pub(super) zones_read: &'a BTreeMap<String, crate::plan::kinds::traffic::ZonesRead>,
    /// The plans' locks, held for the run.
    pub(super) locks: &'a [Arc<dyn HeldLock>],
}

/// A step's request to journal a drill resource it named after a read
/// ([`steps::TempJournal`]): the step, the resource, and where to answer
/// once the record is written (or why it is not).
type TempRequest = (
    StepName,
    Temp,
    tokio::sync::oneshot::Sender<Result<(), String>>,
);

/// One step's [`steps::TempJournal`]: its records go through the
/// scheduling loop, the journal's one writer, which answers once each is
/// written.
struct StepTemps {
    step: StepName,
    to_loop: tokio::sync::mpsc::UnboundedSender<TempRequest>,
}

#[async_trait::async_trait]
impl steps::TempJournal for StepTemps {
    async fn journal(&self, temp: Temp) -> Result<(), String> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.to_loop
            .send((self.step.clone(), temp, answer))
            .map_err(|_| "the run's steps have stopped: its journal takes no more".to_string())?;
        answered
            .await
            .map_err(|_| "the run's steps stopped before it was written".to_string())?
    }
}

/// The unchanging part of a run as its steps see it (copied into each).
#[derive(Clone, Copy)]
struct Env<'a> {
    plans: &'a [Plan],
    opts: &'a RunOptions,
    steps: &'a [Step],
    run_id: &'a str,
    clock_start: DateTime<Utc>,
    rpo_readings: &'a BTreeMap<String, RpoDetail>,
    zones_read: &'a BTreeMap<String, crate::plan::kinds::traffic::ZonesRead>,
    side: &'a SideReads,
    drill_expires: Option<DateTime<Utc>>,
    /// The journal's fence, handed to every step's [`Cx::fenced`].
    fence: Option<&'a Arc<dyn journal::Fence>>,
    /// The run's Route 53 queues, handed to every step.
    zone_batches: Option<&'a Arc<crate::cloud::dns_batch::Coalescer>>,
    /// Where steps send the drill resources they journal themselves.
    temps: &'a tokio::sync::mpsc::UnboundedSender<TempRequest>,
}

impl<'a> Env<'a> {
    fn plan_of(&self, s: &Step) -> &'a Plan {
        self.plans
            .iter()
            .find(|p| p.name() == s.plan)
            .expect("steps come from plans")
    }
}

/// The outputs a step of `plan` reads: its own plan's (step ids start with
/// the plan's name and `/`), not every plan's, so that starting a step
/// costs the size of its plan, not of the run.
fn outputs_of(all: &BTreeMap<String, Value>, plan: &str) -> BTreeMap<String, Value> {
    let prefix = format!("{plan}/");
    all.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A step that ended: its index, its result, how long it ran.
type Ended = (usize, Result<Value, StepFailure>, Duration);

/// Journals a drill resource a running step named (once per resource,
/// like those the engine journals before a step starts).
async fn journal_temp(
    j: &mut Journal,
    sched: &mut Schedule,
    step: StepName,
    temp: Temp,
) -> Result<(), EngineError> {
    if sched.temps.insert(temp.clone()) {
        j.append(Event::DrillResource {
            step,
            resource: temp,
        })
        .await?;
    }
    Ok(())
}

/// Journals the drill resource of a running step's `request` ([`journal_temp`])
/// and answers the step whether it is written; a journal that refused it
/// ends the run.
async fn answer_temp(
    j: &mut Journal,
    sched: &mut Schedule,
    (step, temp, answer): TempRequest,
) -> Result<(), EngineError> {
    let written = journal_temp(j, sched, step, temp).await;
    let _ = answer.send(written.as_ref().map(|_| ()).map_err(|e| e.to_string()));
    written
}

/// The run's Route 53 queues: one per zone for every plan of the run
/// (none without the AWS model).
fn zone_queues(run_id: &str, opts: &RunOptions) -> Option<Arc<crate::cloud::dns_batch::Coalescer>> {
    crate::cloud::model::Model::aws().ok().map(|m| {
        Arc::new(
            crate::cloud::dns_batch::Coalescer::new(m.route53.clone(), run_id, &opts.target)
                .with_busy_waits(opts.pace.busy_zone),
        )
    })
}

/// The executor's bookkeeping over the graph.
struct Schedule {
    done: BTreeSet<usize>,
    started: BTreeSet<usize>,
    failed: Vec<(usize, StepFailure)>,
    attempts: BTreeMap<usize, u32>,
    /// What steps may create, journaled once each.
    temps: BTreeSet<Temp>,
    outputs: BTreeMap<String, Value>,
}

impl Schedule {
    fn new(
        steps: &[Step],
        outputs: BTreeMap<String, Value>,
        earlier: &BTreeMap<String, u32>,
    ) -> Self {
        // Finished steps are skipped; one that finished unsettled (evidence
        // some destination did not take, an old side still pending) runs
        // again.
        let done: BTreeSet<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                outputs
                    .get(&s.id.to_string())
                    .is_some_and(|o| steps::settled(s, o) == steps::Settled::Yes)
            })
            .map(|(i, _)| i)
            .collect();
        let attempts = steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| earlier.get(&s.id.to_string()).map(|n| (i, *n)))
            .collect();
        Self {
            started: done.clone(),
            done,
            failed: Vec::new(),
            attempts,
            temps: BTreeSet::new(),
            outputs,
        }
    }

    /// The steps not started whose dependencies are done, critical tier
    /// first, then in graph order.
    fn ready(&self, env: Env<'_>) -> Vec<usize> {
        let mut ready: Vec<usize> = (0..env.steps.len())
            .filter(|i| {
                !self.started.contains(i)
                    && env.steps[*i].deps.iter().all(|d| self.done.contains(d))
            })
            .collect();
        ready.sort_by_key(|i| (env.plan_of(&env.steps[*i]).tier.rank, *i));
        ready
    }

    /// How the run ended once no step runs: failed (a step failed or never
    /// ran), what a step left unsettled says (evidence incomplete, the old
    /// side pending), or succeeded.
    fn outcome(&self, steps: &[Step]) -> Outcome {
        let unsettled = (steps.iter())
            .filter_map(|s| Some(steps::settled(s, self.outputs.get(&s.id.to_string())?)));
        if !self.failed.is_empty() || self.done.len() != steps.len() {
            Outcome::Failed
        } else {
            steps::Settled::outcome(unsettled).unwrap_or(Outcome::Succeeded)
        }
    }
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cx<'a>(
        &'a self,
        plan: &'a Plan,
        graph: &'a [Step],
        opts: &'a RunOptions,
        run_id: &'a str,
        outputs: &'a BTreeMap<String, Value>,
        budget: Duration,
        waiting: crate::steps::Tell<'a>,
    ) -> Cx<'a> {
        Cx {
            clouds: &self.clouds,
            plan,
            target: &opts.target,
            run_id,
            outputs,
            deadline: crate::plan::duration::instant_after(Instant::now(), budget),
            poll: opts.pace.poll,
            journal: self.store.clone(),
            lag_window: opts.lag_window,
            waiting,
            side: None,
            graph,
            rpo_readings: None,
            zones_read: None,
            attempt: 1,
            drill_expires: None,
            render_report: Some(crate::report::running_json),
            fence: None,
            zone_batches: None,
            temps: None,
            control_read_timeout: crate::steps::dns_setup::SETUP_TIMEOUT,
        }
    }

    /// Runs the graph; a drill whose lock is taken over meanwhile (a
    /// failover preempting it) still ends with its cleanup, journaled after
    /// the takeover's record.
    pub(super) async fn execute(&self, mut rc: RunCx<'_>) -> Result<RunReport, EngineError> {
        let result = self.execute_graph(&mut rc).await;
        match result {
            Err(EngineError::Journal(JournalError::Fenced { detail, .. }))
                if rc.opts.mode.is_shadow_drill() =>
            {
                let j = &mut rc.journal;
                *j = self.reopen_after_preemption(j.run_id()).await?;
                j.append(Event::Interrupted {
                    reason: format!("preempted: {detail}"),
                })
                .await?;
                let held = super::drill::DrillLocks::since_start(rc.locks);
                self.finish_drill(rc.plans, rc.opts, j, &held).await
            }
            other => other,
        }
    }

    /// The scheduling loop: starts every ready step within the bound,
    /// journals each as it ends, until none is running and none can start
    /// (or a drill's stop signal fires); then ends the run.
    async fn execute_graph(&self, rc: &mut RunCx<'_>) -> Result<RunReport, EngineError> {
        let run_id = rc.journal.run_id().to_string();
        let opts = rc.opts;
        let side = side::other_regions(
            self.side_clouds.clone(),
            rc.plans,
            &opts.target,
            opts.side_read_timeout,
        );
        // Only a shadow drill stops on a signal and cleans up: a switchover
        // drill is a real failover, resumable like one.
        let is_drill = opts.mode.is_shadow_drill();
        let max_duration = self.max_duration(rc.plans, opts);
        let drill_expires = is_drill.then(|| {
            crate::plan::duration::after(
                rc.clock_start,
                max_duration.saturating_add(crate::steps::drill_names::SWEEP_GRACE),
            )
        });
        let fence = rc.journal.fence();
        let zone_batches = zone_queues(&run_id, opts);
        let (temps, mut temp_requests) = tokio::sync::mpsc::unbounded_channel();
        let env = Env {
            temps: &temps,
            plans: rc.plans,
            opts,
            steps: rc.steps,
            run_id: &run_id,
            clock_start: rc.clock_start,
            rpo_readings: rc.rpo_readings,
            zones_read: rc.zones_read,
            side: &side,
            drill_expires,
            fence: fence.as_ref(),
            zone_batches: zone_batches.as_ref(),
        };
        let mut sched = Schedule::new(rc.steps, std::mem::take(&mut rc.outputs), &rc.attempts);
        let mut stop = self.stop_signal(opts, is_drill, rc.clock_start, max_duration, rc.locks);
        let mut interrupted: Option<String> = None;
        let mut running = FuturesUnordered::new();
        let parallelism = opts.slots();
        loop {
            if sched.failed.is_empty() {
                for i in sched.ready(env) {
                    if running.len() >= parallelism {
                        break;
                    }
                    let attempt = self.start_step(env, &mut rc.journal, &mut sched, i).await?;
                    let snapshot = outputs_of(&sched.outputs, &env.steps[i].plan);
                    running.push(self.step_future(env, i, snapshot, attempt));
                }
            }
            let next = tokio::select! {
                n = running.next() => n,
                Some(request) = temp_requests.recv() => {
                    answer_temp(&mut rc.journal, &mut sched, request).await?;
                    continue;
                }
                reason = &mut stop, if interrupted.is_none() => {
                    interrupted = Some(reason);
                    None
                }
            };
            let Some(ended) = next else {
                break;
            };
            self.finish_step(env, &mut rc.journal, &mut sched, ended)
                .await?;
        }
        if is_drill {
            // Steps still in flight are dropped: what they may have created
            // is journaled, and cleanup reads the cloud before it acts.
            drop(running);
            return self
                .halt_drill(rc.plans, opts, &mut rc.journal, rc.locks, interrupted)
                .await;
        }
        self.finish_run(env, &mut rc.journal, &sched).await
    }

    /// Journals step `i`'s start (and, before it, what it may create), and
    /// stops there at an injected `before:` crash point. Returns its attempt.
    async fn start_step(
        &self,
        env: Env<'_>,
        j: &mut Journal,
        sched: &mut Schedule,
        i: usize,
    ) -> Result<u32, EngineError> {
        let step = &env.steps[i];
        // What the step may create, journaled before it acts.
        for t in step.kind.action().creates(env.run_id) {
            if sched.temps.insert(t.clone()) {
                j.append(Event::DrillResource {
                    step: (&step.id).into(),
                    resource: t,
                })
                .await?;
            }
        }
        let attempt = sched.attempts.entry(i).or_insert(0);
        *attempt += 1;
        let attempt = *attempt;
        // Journaled and fsynced before the step begins.
        j.append(Event::StepStarted {
            step: (&step.id).into(),
            attempt,
        })
        .await?;
        sched.started.insert(i);
        if env.opts.inject_crash == Some(CrashPoint::Before(step.id.to_string())) {
            return Err(EngineError::Crashed(
                CrashPoint::Before(step.id.to_string()),
                env.run_id.to_string(),
            ));
        }
        self.reporter.started(step);
        Ok(attempt)
    }

    /// Step `i` running, over a snapshot of the outputs so far, within what
    /// is left of its RTO budget.
    fn step_future<'a>(
        &'a self,
        env: Env<'a>,
        i: usize,
        snapshot: BTreeMap<String, Value>,
        attempt: u32,
    ) -> impl Future<Output = Ended> + 'a {
        let plan = env.plan_of(&env.steps[i]);
        let budget = step_budget(
            plan.tier.rto,
            env.opts.step_timeout,
            env.clock_start,
            Utc::now(),
        );
        let side = env.side.clone();
        let graph = plan_graph(env.steps, plan.name());
        async move {
            let t0 = Instant::now();
            let step = &env.steps[i];
            let waiting = |what: &str| self.reporter.waiting(step, what);
            let mut cx = self.cx(
                plan,
                graph,
                env.opts,
                env.run_id,
                &snapshot,
                budget,
                Some(&waiting),
            );
            cx.side = Some(side);
            cx.rpo_readings = env.rpo_readings.get(plan.name());
            cx.zones_read = env.zones_read.get(plan.name());
            cx.attempt = attempt;
            cx.drill_expires = env.drill_expires;
            cx.fence = env.fence.cloned();
            cx.zone_batches = env.zone_batches.cloned();
            cx.temps = Some(Arc::new(StepTemps {
                step: (&step.id).into(),
                to_loop: env.temps.clone(),
            }));
            let action = step.kind.action();
            let span = tracing::info_span!("step", step = %step.id);
            // Its calls take their API budget in its plan's tier order.
            let scope = crate::cloud::budget::Scope {
                rank: plan.tier.rank,
                step: Some(step.id.to_string()),
            };
            let run = scope.run(tracing::Instrument::instrument(action.run(&cx), span));
            // Every mutating call it makes is fenced at the wire by its
            // plan's lease, right before each transmission attempt.
            let result = match env.fence {
                Some(fence) => {
                    let (fence, name) = (fence.clone(), plan.name().to_string());
                    let bound = fence.clone();
                    WireFence::new(move || fence.check_plan_local(&name))
                        .bounded(move || bound.time_left())
                        .guard(run)
                        .await
                }
                None => run.await,
            };
            (i, result, t0.elapsed())
        }
    }

    /// Journals the waits for API budgets the step's calls made.
    async fn journal_waits(&self, j: &mut Journal, step: &Step) -> Result<(), EngineError> {
        let Some(waits) = &self.waits else {
            return Ok(());
        };
        for w in waits.take(Some(&step.id.to_string())) {
            j.append(Event::Waited {
                step: (&step.id).into(),
                call: w.label.to_string(),
                region: w.region,
                waited_ms: u64::try_from(w.waited.as_millis()).unwrap_or(u64::MAX),
                cause: w.cause,
                throttled: w.throttled,
            })
            .await?;
        }
        Ok(())
    }

    /// Journals how a step ended and keeps its outputs; stops there at an
    /// injected `after:` crash point.
    async fn finish_step(
        &self,
        env: Env<'_>,
        j: &mut Journal,
        sched: &mut Schedule,
        (i, result, elapsed): Ended,
    ) -> Result<(), EngineError> {
        let step = &env.steps[i];
        self.journal_waits(j, step).await?;
        match result {
            Ok(out) => {
                self.reporter.finished(step, Ok(&out), elapsed);
                j.append(Event::StepSucceeded {
                    step: (&step.id).into(),
                    outputs: out.clone(),
                })
                .await?;
                sched.outputs.insert(step.id.to_string(), out);
                sched.done.insert(i);
                if env.opts.inject_crash == Some(CrashPoint::After(step.id.to_string())) {
                    return Err(EngineError::Crashed(
                        CrashPoint::After(step.id.to_string()),
                        env.run_id.to_string(),
                    ));
                }
            }
            // A step refused by its fence changed nothing; the journal would
            // refuse its record too: the run ends as a fenced append ends it.
            Err(e) if matches!(e, StepFailure::Fenced { .. }) => {
                self.reporter.finished(step, Err(&e), elapsed);
                let detail = crate::journal::event::split_hint(&e.to_string())
                    .0
                    .to_string();
                return Err(EngineError::Journal(JournalError::Fenced {
                    run_id: env.run_id.to_string(),
                    detail,
                }));
            }
            Err(e) => {
                self.reporter.finished(step, Err(&e), elapsed);
                j.append(Event::StepFailed {
                    step: (&step.id).into(),
                    error: e.to_record(),
                })
                .await?;
                sched.failed.push((i, e));
            }
        }
        Ok(())
    }

    /// Ends a run whose steps have stopped: its outcome and measures,
    /// journaled.
    async fn finish_run(
        &self,
        env: Env<'_>,
        j: &mut Journal,
        sched: &Schedule,
    ) -> Result<RunReport, EngineError> {
        // Authenticated, as every reader reads a run: its report is built
        // from what it reads back.
        let records = journal::read_authenticated(self.store.as_ref(), env.run_id).await?;
        // With what others recorded beside the journal meanwhile (a
        // retroactive approval given while the run went on), so that the
        // run's own report says it is approved; without it when it cannot
        // be read (the run's end does not depend on it).
        let records = match journal::late::read(self.store.as_ref(), env.run_id).await {
            Ok(late) => crate::runs::late::merge(&records, &late.facts),
            Err(e) => {
                tracing::warn!("the late facts of run {} are not read: {e}", env.run_id);
                records
            }
        };
        let outcome = sched.outcome(env.steps);
        let report = build_report(env.run_id, &records, env.plans, outcome);
        j.append(Event::RunFinished {
            outcome,
            summary: json!({ "measures": report.measures, "not_done": report.steps.iter().filter(|s| s.state != StepState::Succeeded).map(|s| &s.step).collect::<Vec<_>>() }),
        })
        .await?;
        j.append_outbox_results().await?;
        Ok(report)
    }
}
