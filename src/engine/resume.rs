//! Resume: continue a run from its journal after a crash, on this machine
//! or another.
//!
//! The journal is the only truth about what the run did: it names the
//! plans (which must be unchanged, digest for digest), the gates passed,
//! the flags, the step graph (which must compile the same again), and every
//! step's outcome. Finished steps are skipped, started ones run again (they
//! are idempotent), and the RTO clock keeps running from the first start. A
//! shadow drill is not continued: it is cleaned up and ended.
//!
//! It is not the truth about the world. A resume verifies the journal
//! first (its chain, and with public run keys listed every signature and
//! the head) and refuses one that does not verify (exit 3): a journal a
//! writer of the state rewrote is not acted on. And what later steps act on
//! that an earlier step read from the cloud (the promoted or restored
//! database's endpoint, which `switch-dns` points records at) is read again
//! before the run goes on ([`Engine::reread_endpoints`]); the journal's
//! value is only a cross-check, and a disagreement is said.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::journal::RpoDetail;
use crate::journal::RunFlags;
use crate::journal::event::{Decision, Event, GateName, PlanRef, Record, RunKind, StepRef};
use crate::journal::{HeadCheck, Journal, JournalError, Verification};
use crate::plan::Plan;
use crate::runs::RunReport;
use crate::runs::replay::{Replay, StepState, replay};
use crate::state::lock::LockInfo;
use crate::state::{LockSet, Takeover};
use crate::steps::graph::Step;

use super::drill::DrillLocks;
use super::executor::RunCx;
use super::lock::end_locks;
use super::{Engine, EngineError, Refusal, RunOptions, compile_all};

/// What a run's `run_started` record says it started as.
struct Started {
    kind: RunKind,
    target: String,
    plans: Vec<PlanRef>,
    flags: Value,
    declared_at: Option<DateTime<Utc>>,
    steps: Vec<StepRef>,
}

impl Started {
    /// A shadow drill (a switchover drill resumes like a failover).
    fn is_shadow_drill(&self) -> bool {
        self.kind == RunKind::Drill
            && RunFlags::of(&self.flags).is_ok_and(|f| f.mode.is_some_and(|m| m.is_shadow_drill()))
    }
}

impl Engine {
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
        // Before anything is locked or read for action: the journal
        // verifies, signatures included where keys are listed.
        self.may_write(run_id)?;
        self.verify_for_resume(run_id).await?;
        let (names, kind) = self.run_plans(run_id).await?;
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let me = LockInfo::current(run_id);
        let takeover = Takeover {
            reclaim_run: Some(run_id),
            ..Takeover::default()
        };
        let (locks, taken) = self.lock_plans(&names, &me, kind, takeover).await?;
        // A lock taken straight from this run's own earlier hold has been
        // this run's throughout (what a drill's cleanup needs to know).
        let held = DrillLocks {
            locks: &locks,
            since_start: taken
                .iter()
                .filter(|t| t.holder.run_id == run_id)
                .map(|t| t.plan.clone())
                .collect(),
        };
        let report = self
            .resume_locked(run_id, plans_available, opts_override, &held, &me)
            .await;
        end_locks(&locks, &report).await;
        report
    }

    /// Refuses to resume a journal that does not verify: its chain, and
    /// with public run keys listed every signature and the head
    /// ([`resume_refusal`]). A torn final line is not a break here: the
    /// resume cuts it off.
    async fn verify_for_resume(&self, run_id: &str) -> Result<(), EngineError> {
        let keys = self.store.keys();
        let (text, head) = crate::journal::snapshot(self.store.as_ref(), run_id).await?;
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        let v = crate::journal::verify_with_keys(run_id, complete, head.as_deref(), keys);
        if let Some(r) = resume_refusal(&v, keys.checks()) {
            return Err(EngineError::Refused(r));
        }
        if !keys.checks() {
            self.reporter.note(&format!(
                "the journal of {run_id} is not authenticated (no [keys] run_public): its chain verifies, and what the run acts on is read again from the cloud"
            ));
        }
        Ok(())
    }

    /// Reads again, from the cloud, the endpoint of each database a
    /// replayed step made the writer (later steps point records at it),
    /// through the step's own answer ([`crate::steps::Writes::endpoint_now`]:
    /// every data kind, RDS, Aurora and Cloud SQL alike), and puts it in
    /// the outputs in place of the journal's; a disagreement is said. A
    /// database that cannot be read now loses its journaled endpoint: the
    /// step that needs it reads it itself (and fails saying why). What is
    /// read is named by the plan (and the run id), never by the journal.
    async fn reread_endpoints(
        &self,
        run_id: &str,
        steps: &[Step],
        outputs: &mut BTreeMap<String, Value>,
    ) {
        for step in steps {
            let id = step.id.to_string();
            let Some(out) = outputs.get_mut(&id) else {
                continue;
            };
            let Some(writes) = step.kind.writes() else {
                continue;
            };
            let read =
                tokio::time::timeout(ENDPOINT_READ, writes.endpoint_now(&self.clouds, run_id));
            let (subject, fresh) = match read.await {
                Ok(now) => (now.subject, now.read.map_err(|e| e.summary())),
                Err(_) => (
                    format!("the writer of {id}"),
                    Err(format!("no answer within {} s", ENDPOINT_READ.as_secs())),
                ),
            };
            let journaled = out["endpoint"].as_str().map(str::to_string);
            let (endpoint, note) = cross_check(&subject, journaled.as_deref(), fresh);
            match endpoint {
                Some((ep, port)) => {
                    out["endpoint"] = ep.into();
                    if let Some(p) = port {
                        out["port"] = p.into();
                    }
                }
                None => {
                    if let Some(o) = out.as_object_mut() {
                        o.remove("endpoint");
                        o.remove("port");
                    }
                }
            }
            if let Some(note) = note {
                tracing::warn!(step = %id, "{note}");
                self.reporter.note(&format!("{id}: {note}"));
            }
        }
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
            _ => Err(EngineError::Invalid(
                Refusal::new(format!(
                    "journal of {run_id} does not start with a run-started record"
                ))
                .hint(format!("`drctl audit verify {run_id}` checks its chain")),
            )),
        }
    }

    /// Takes a resumed run's notifications up: journals those a crash kept
    /// from being written, and sends everything still owed (same ids).
    async fn resume_outbox(
        &self,
        j: &mut Journal,
        records: &[crate::journal::Record],
        plans: &[Plan],
        target: &str,
    ) -> Result<(), EngineError> {
        let Some(n) = self.attach_outbox(j, plans, target) else {
            return Ok(());
        };
        // Deliveries (and notifications) recorded beside the journal by
        // other processes count: what they delivered is not sent again
        // (unless they cannot be read: then at least once, same ids).
        let facts = match crate::journal::late::read(self.store.as_ref(), j.run_id()).await {
            Ok(f) => f.facts,
            Err(e) => {
                tracing::warn!("the late facts of run {} are not read: {e}", j.run_id());
                Vec::new()
            }
        };
        let records = crate::runs::late::merge(records, &facts);
        for e in n.prime(&records, j.last_hash()) {
            let written = j.append(e).await?;
            crate::journal::Outbox::send(n.as_ref(), &written);
        }
        n.resend(&records);
        Ok(())
    }

    /// Resumes `run_id` under its plans' locks: reads its journal, checks
    /// the plans and the graph are the ones it started with, rebuilds what
    /// its steps did, and continues.
    async fn resume_locked(
        &self,
        run_id: &str,
        plans_available: &[Plan],
        opts_override: Option<RunOptions>,
        held: &DrillLocks<'_>,
        me: &LockInfo,
    ) -> Result<RunReport, EngineError> {
        let locks = held.locks;
        // Verified again under the locks: what is replayed is what was
        // verified (the previous holder may have written meanwhile).
        let (mut j, records) = Journal::open_for_append(self.store.clone(), run_id)
            .await
            .map_err(|e| match e {
                JournalError::Broken(b) => EngineError::Refused(broken_refusal(
                    run_id,
                    &format!("line {}: {}", b.line, b.reason),
                )),
                JournalError::Unkeyed { .. } => EngineError::Invalid(super::unkeyed(&e)),
                e => e.into(),
            })?;
        if self.locks.fenced() {
            j.set_fence(Arc::new(LockSet(locks.to_vec())));
        }
        let replayed = replay(&records);
        let started = resumable(run_id, &records, &replayed)?;
        let plans = unchanged_plans(run_id, &started.plans, plans_available)?;
        self.resume_outbox(&mut j, &records, &plans, &started.target)
            .await?;
        gates_passed(run_id, &records, &plans)?;
        let opts = resumed_options(run_id, opts_override, &started)?;
        self.journal_resumed(&mut j, me).await?;
        if started.is_shadow_drill() {
            // A drill is never continued after its process died (its
            // figures would span the gap): it is cleaned up and ended.
            if !all_ran(&started.steps, &replayed)
                && crate::runs::drill::interrupted(&records).is_none()
            {
                j.append(Event::Interrupted {
                    reason: format!(
                        "the drill's process stopped before its steps ended; resumed on {} to clean up",
                        me.host
                    ),
                })
                .await?;
            }
            return self.finish_drill(&plans, &opts, &mut j, held).await;
        }
        let (mut outputs, attempts) = done_so_far(&replayed);
        let rpo_readings = rpo_readings(&records);
        let steps = compile_all(&plans, &started.target, &opts.mode)?;
        graph_unchanged(run_id, &started.steps, &steps)?;
        self.reread_endpoints(run_id, &steps, &mut outputs).await;
        // The RTO clock started when the disaster was declared, or when the
        // run first started: a resume does not get a fresh budget.
        let clock_start = started
            .declared_at
            .or_else(|| records.first().map(|r| r.at))
            .unwrap_or_else(Utc::now);
        self.execute(RunCx {
            plans: &plans,
            opts: &opts,
            steps: &steps,
            journal: j,
            outputs,
            attempts,
            clock_start,
            rpo_readings: &rpo_readings,
            // Read again: a protection may have been made since.
            zones_read: &BTreeMap::new(),
            locks,
        })
        .await
    }

    /// Journals the resume (host, pid), and the torn final line cut off
    /// the journal, if the crash left one.
    async fn journal_resumed(&self, j: &mut Journal, me: &LockInfo) -> Result<(), EngineError> {
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
        Ok(())
    }
}

/// How long a resume waits for the re-read of one database's endpoint
/// before it leaves the read to the step that needs it.
const ENDPOINT_READ: Duration = Duration::from_secs(30);

/// Why a journal that verified as `v` may not be resumed (`keyed`: public
/// run keys are listed): it does not verify (a signature included), or,
/// with keys, its head is missing (records removed from the end would not
/// show). A head one record behind is what a crash leaves: resumed.
fn resume_refusal(v: &Verification, keyed: bool) -> Option<Refusal> {
    if let Some(b) = &v.first_broken {
        return Some(broken_refusal(
            &v.run_id,
            &format!("line {}: {}", b.line, b.reason),
        ));
    }
    if keyed && v.head == HeadCheck::Absent {
        return Some(broken_refusal(
            &v.run_id,
            "its head pointer is missing, so records removed from its end would not show",
        ));
    }
    None
}

/// The refusal to resume run `run_id`, whose journal does not verify for
/// `why`.
fn broken_refusal(run_id: &str, why: &str) -> Refusal {
    Refusal::new(format!(
        "refusing to resume run {run_id}: its journal does not verify ({why}); it may have been rewritten, and nothing in it is acted on"
    ))
    .hint(format!(
        "`drctl audit verify {run_id}` shows what is wrong; compare the journal with its evidence copy (docs/evidence.md); start a new run, which reads the world afresh"
    ))
}

/// What to do with a replayed step's endpoint of `subject` (`id
/// (region)`): the journal says `journaled`, the cloud just said `fresh` (endpoint and
/// port; `Ok(None)`: no endpoint now; `Err`: it could not be read). Acts
/// on the cloud's: (the endpoint and port to put in the outputs, `None` to
/// take the journal's out), and a note when they disagree or the read
/// failed.
#[allow(clippy::type_complexity)]
fn cross_check(
    subject: &str,
    journaled: Option<&str>,
    fresh: Result<Option<(String, Option<i32>)>, String>,
) -> (Option<(String, Option<i32>)>, Option<String>) {
    let said = journaled.unwrap_or("nothing");
    match fresh {
        Ok(Some((ep, port))) => {
            let note = (journaled != Some(ep.as_str())).then(|| {
                format!(
                    "the journal says the endpoint of {subject} is {said}, the cloud says {ep}: acting on the cloud's"
                )
            });
            (Some((ep, port)), note)
        }
        Ok(None) => (
            None,
            Some(format!(
                "{subject} has no endpoint now (the journal says {said}): the step that needs it reads it again"
            )),
        ),
        Err(e) => (
            None,
            Some(format!(
                "the endpoint of {subject} could not be read again ({e}); the journal's ({said}) is not used: the step that needs it reads it itself"
            )),
        ),
    }
}

/// What the journal says the run started as, when it can be resumed: its
/// records are legal, and it has not ended (a failover's end that is not
/// resumable, or a drill's end with its cleanup complete).
fn resumable(run_id: &str, records: &[Record], replayed: &Replay) -> Result<Started, EngineError> {
    if let Some(bad) = &replayed.illegal {
        return Err(EngineError::Invalid(
            Refusal::new(format!(
                "{bad}: run {run_id} cannot be resumed from this journal"
            ))
            .hint(format!(
                "`drctl audit verify {run_id}` checks its chain; start a new run"
            )),
        ));
    }
    let Some(started) = records.iter().find_map(|r| match &r.event {
        Event::RunStarted {
            kind,
            target,
            plans,
            flags,
            declared_at,
            steps,
            ..
        } => Some(Started {
            kind: *kind,
            target: target.clone(),
            plans: plans.clone(),
            flags: flags.clone(),
            declared_at: *declared_at,
            steps: steps.clone(),
        }),
        _ => None,
    }) else {
        return Err(EngineError::Invalid(Refusal::new(format!(
            "journal of {run_id} has no run-started record"
        ))));
    };
    if started.is_shadow_drill()
        && records
            .iter()
            .any(|r| matches!(r.event, Event::RunFinished { .. }))
        && crate::runs::drill::cleanup_summary(records).complete
    {
        return Err(EngineError::Invalid(
            Refusal::new(format!(
                "drill {run_id} already ended and its cleanup is complete; nothing to resume"
            ))
            .hint("start a new drill"),
        ));
    }
    if let Some(Event::RunFinished { outcome, .. }) = records
        .iter()
        .rev()
        .map(|r| &r.event)
        .find(|e| matches!(e, Event::RunFinished { .. }))
        && !outcome.resumable()
    {
        return Err(EngineError::Invalid(Refusal::new(format!(
            "run {run_id} already finished ({outcome}); nothing to resume"
        ))));
    }
    Ok(started)
}

/// The run's plans from the plan directory, each as it was when the run
/// started (same digest): a run continues with the plans it started with.
fn unchanged_plans(
    run_id: &str,
    refs: &[PlanRef],
    available: &[Plan],
) -> Result<Vec<Plan>, EngineError> {
    let mut plans = Vec::new();
    for pr in refs {
        let Some(p) = available.iter().find(|p| p.name() == pr.name) else {
            return Err(EngineError::Invalid(Refusal::new(format!(
                "plan {} of run {run_id} is no longer in the plan directory",
                pr.name
            ))));
        };
        if p.digest != pr.digest {
            return Err(EngineError::Invalid(
                Refusal::new(format!(
                    "plan {} changed since run {run_id} started (digest {} → {})",
                    pr.name,
                    &pr.digest[..12.min(pr.digest.len())],
                    &p.digest[..12.min(p.digest.len())]
                ))
                .hint("restore the plan file as it was (git) to resume; a run continues with the plan it started with"),
            ));
        }
        plans.push(p.clone());
    }
    Ok(plans)
}

/// Refuses to resume a run that never passed every plan's approval and
/// RPO gates.
fn gates_passed(run_id: &str, records: &[Record], plans: &[Plan]) -> Result<(), EngineError> {
    for p in plans {
        for gate in [GateName::Approval, GateName::Rpo] {
            let passed = records.iter().any(|r| matches!(&r.event, Event::Gate { plan, gate: g, decision, .. } if plan == p.name() && *g == gate && *decision != Decision::Refuse));
            if !passed {
                return Err(EngineError::Refused(Refusal::new(format!(
                    "run {run_id} never passed the {gate} gate for plan {}; start a new run instead",
                    p.name()
                ))));
            }
        }
    }
    Ok(())
}

/// The options the run continues with: the caller's (or a failover's
/// defaults), with what the journal fixed at the start (kind, target,
/// declared time, parallelism, mode, step timeout).
fn resumed_options(
    run_id: &str,
    opts_override: Option<RunOptions>,
    started: &Started,
) -> Result<RunOptions, EngineError> {
    // The journaled mode decides what runs: one that cannot be read is
    // an error, never a failover by default.
    let unreadable = |why: String| {
        EngineError::Invalid(
            Refusal::new(format!(
                "run {run_id} journaled a mode this drctl cannot read ({why}): {}",
                started.flags
            ))
            .hint("resume it with the drctl version that started it"),
        )
    };
    let flags = RunFlags::of(&started.flags).map_err(unreadable)?;
    let mut opts = opts_override.unwrap_or_else(|| RunOptions::failover(&started.target));
    opts.kind = started.kind;
    opts.target = started.target.clone();
    opts.declared_at = started.declared_at;
    if let Some(n) = flags.parallelism {
        opts.parallelism = n;
    }
    opts.mode = flags.mode.ok_or_else(|| unreadable("no mode".into()))?;
    if let Some(s) = flags.step_timeout_seconds {
        opts.step_timeout = Some(Duration::from_secs(s));
    }
    Ok(opts)
}

/// Whether every journaled step succeeded.
fn all_ran(journaled: &[StepRef], replayed: &Replay) -> bool {
    journaled.iter().all(|s| {
        replayed
            .steps
            .get(s.id.as_str())
            .is_some_and(|x| x.state == StepState::Succeeded)
    })
}

/// Outputs of succeeded steps and attempts of every step, by step id.
type DoneSoFar = (BTreeMap<String, Value>, BTreeMap<String, u32>);

/// What the replayed steps did: the outputs of those that succeeded, and
/// every step's attempts so far.
fn done_so_far(replayed: &Replay) -> DoneSoFar {
    let outputs = replayed
        .steps
        .iter()
        .filter(|(_, s)| s.state == StepState::Succeeded)
        .filter_map(|(id, s)| Some((id.clone(), s.outputs.clone()?)))
        .collect();
    let attempts = replayed
        .steps
        .iter()
        .map(|(id, s)| (id.clone(), s.attempt))
        .collect();
    (outputs, attempts)
}

/// What the RPO gate read at the start, by plan (steps reuse a reading
/// only while it is fresh, so after a crash they read again).
fn rpo_readings(records: &[Record]) -> BTreeMap<String, RpoDetail> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Gate {
                plan,
                gate: GateName::Rpo,
                detail,
                ..
            } => Some((plan.clone(), RpoDetail::of(detail)?)),
            _ => None,
        })
        .collect()
}

/// Refuses to resume when the graph compiled now is not the one journaled
/// at the start (a plan edited, or drctl upgraded, since the crash), saying
/// what changed.
pub(super) fn graph_unchanged(
    run_id: &str,
    journaled: &[StepRef],
    now: &[Step],
) -> Result<(), EngineError> {
    let then: BTreeMap<&str, &StepRef> = journaled.iter().map(|s| (s.id.as_str(), s)).collect();
    let ids: Vec<String> = now.iter().map(|s| s.id.to_string()).collect();
    let mut changes = Vec::new();
    for (s, id) in now.iter().zip(&ids) {
        match then.get(id.as_str()) {
            None => changes.push(format!("step {id} is new")),
            Some(t) => {
                let deps: Vec<String> = s.deps.iter().map(|d| ids[*d].clone()).collect();
                if deps.iter().ne(t.deps.iter().map(|d| d.as_str())) {
                    changes.push(format!(
                        "step {id} now waits for [{}] (was [{}])",
                        deps.join(", "),
                        t.deps
                            .iter()
                            .map(|d| d.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }
    for t in journaled {
        if !ids.iter().any(|i| t.id == i.as_str()) {
            changes.push(format!("step {} is gone", t.id));
        }
    }
    if changes.is_empty() {
        return Ok(());
    }
    Err(EngineError::Invalid(
        Refusal::new(format!(
            "run {run_id} cannot be resumed: the step graph differs from the one it started with: {}",
            changes.join("; ")
        ))
        .hint("the plan file or drctl changed since the run started; resume with the version that started it, or start a new run"),
    ))
}
