//! The plans' locks, taken before any gate: two runs must never both pass
//! the gates for one plan.
//!
//! Taking them is all or nothing, in name order (two runs over overlapping
//! plans cannot deadlock); a real failover preempts a shadow drill; every
//! holder displaced learns it in its own journal. A run stopped at an
//! injected crash point leaves its locks taken, as a dead process would.

use std::sync::Arc;

use serde_json::json;

use crate::journal::RunFlags;
use crate::journal::event::{Decision, Event, GateName, RunKind};
use crate::journal::{self, Journal};
use crate::plan::Plan;
use crate::state::lock::{LockError, LockInfo};
use crate::state::{Acquired, HeldLock, Holder, Takeover};

use super::{Engine, EngineError, Refusal, RunOptions};

/// A lock this run took from another holder.
pub(super) struct TakenOver {
    /// The plan whose lock was taken.
    pub(super) plan: String,
    /// The holder displaced.
    pub(super) holder: LockInfo,
    /// Whether that holder was alive (its lease live).
    pub(super) live: bool,
    /// The fencing token of the lock now held.
    pub(super) token: Option<u64>,
    /// A failover preempted a drill (no `--force-unlock` needed).
    pub(super) preempted: bool,
}

/// The locks a run holds, and the holders it took them from (to journal).
pub(super) type Locked = (Vec<Arc<dyn HeldLock>>, Vec<TakenOver>);

impl Engine {
    /// Takes a new run's locks (taking over those `--force-unlock` allows,
    /// preempting drills), tells each displaced run, and refuses a schedule
    /// slot another run took: checked under the lock, so a slot runs once.
    pub(super) async fn lock_run(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        me: &LockInfo,
    ) -> Result<Locked, EngineError> {
        let names: Vec<&str> = plans.iter().map(|p| p.name()).collect();
        let takeover = Takeover {
            force: opts.force_unlock,
            reason: opts.force_reason.as_deref(),
            ..Takeover::default()
        };
        let (locks, taken_over) = self.lock_plans(&names, me, opts.kind, takeover).await?;
        // The displaced runs learn at once (a preempted drill waits for this
        // record to journal its cleanup after it), before anything here
        // that may be slow (identity, the journal's creation).
        for t in &taken_over {
            self.record_lock_lost(t, me, opts.force_reason.as_deref())
                .await;
            // Its `lock.broken` is owed by its journal: journaled (and
            // handed to a flush) when this process settles.
            let displaced: Vec<Plan> = plans
                .iter()
                .filter(|p| p.name() == t.plan)
                .cloned()
                .collect();
            if let Some(hub) = &self.notify {
                hub.notifier(&self.store, &t.holder.run_id, &displaced, &opts.target);
            }
        }
        let Some(slot) = opts.slot else {
            return Ok((locks, taken_over));
        };
        match self.slot_taken(&names, slot).await {
            Ok(None) => Ok((locks, taken_over)),
            Ok(Some(by)) => {
                release_all(&locks).await;
                Err(EngineError::Refused(Refusal::new(format!(
                    "the slot {slot} of {} was taken by run {by}; a slot runs once",
                    names.join(", ")
                ))))
            }
            Err(e) => {
                release_all(&locks).await;
                Err(e.into())
            }
        }
    }

    /// Journals the lock gate: each lock taken over, from whom, and why.
    pub(super) async fn journal_takeovers(
        &self,
        j: &mut Journal,
        taken_over: &[TakenOver],
        reason: Option<&str>,
    ) -> Result<(), EngineError> {
        for t in taken_over {
            j.append(Event::Gate {
                plan: t.plan.clone(),
                gate: GateName::Lock,
                decision: Decision::Override,
                detail: json!({"force_unlock": !t.preempted, "preempted_drill": t.preempted, "previous_holder": t.holder, "holder_was_live": t.live, "reason": reason, "token": t.token}),
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
        Ok(())
    }

    /// Takes every plan's lock, in name order (so two runs over
    /// overlapping plans cannot deadlock), or none: on a refusal the locks
    /// already taken are released. Returns them and the holders taken over
    /// (to journal).
    pub(super) async fn lock_plans(
        &self,
        names: &[&str],
        me: &LockInfo,
        kind: RunKind,
        takeover: Takeover<'_>,
    ) -> Result<Locked, EngineError> {
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
            match self.acquire_one(name, &holder, takeover).await {
                Ok((acquired, preempted)) => {
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
                Err(e) => {
                    release_all(&locks).await;
                    return Err(self.lock_refusal(e));
                }
            }
        }
        Ok((locks, taken_over))
    }

    /// Takes one plan's lock; a real failover finding it held by a shadow
    /// drill takes it over (the holder's own journal, not its lock, says it
    /// is one). Returns the lock and whether a drill was preempted.
    async fn acquire_one(
        &self,
        name: &str,
        holder: &Holder,
        takeover: Takeover<'_>,
    ) -> Result<(Acquired, bool), LockError> {
        let result = self.locks.acquire(name, holder, takeover).await;
        if let Err(LockError::Held { holder: h, .. }) = &result
            && matches!(holder.kind, RunKind::Failover | RunKind::Failback)
            && self.is_shadow_drill_run(&h.run_id).await
        {
            let drill = h.run_id.clone();
            let t = Takeover {
                preempt_run: Some(&drill),
                ..takeover
            };
            return self.locks.acquire(name, holder, t).await.map(|a| (a, true));
        }
        result.map(|a| (a, false))
    }

    /// The refusal a lock that could not be taken becomes, with what to do
    /// about the holder (watch it, wait, resume it, or take it over).
    fn lock_refusal(&self, e: LockError) -> EngineError {
        let LockError::Held {
            plan,
            holder,
            alive,
        } = e
        else {
            return e.into();
        };
        let id = &holder.run_id;
        let (state, hint) = match (alive, self.locks.fenced()) {
            (true, false) => (
                String::new(),
                "one run per plan at a time; watch it with `drctl runs show RUN`".to_string(),
            ),
            (true, true) => (
                "; its lease is live".to_string(),
                format!(
                    "one run per plan at a time; watch it with `drctl runs show {id}`; if its machine is gone, wait for the lease to expire and `drctl runs resume {id}`, or take it now with --force-unlock \"REASON\""
                ),
            ),
            (false, false) => (
                "; that process is gone".to_string(),
                format!(
                    "resume it with `drctl runs resume {id}`, or take the lock over with --force-unlock"
                ),
            ),
            (false, true) => (
                "; its lease has expired".to_string(),
                format!(
                    "resume it with `drctl runs resume {id}` (from any machine), or take the lock over with --force-unlock"
                ),
            ),
        };
        EngineError::Refused(
            Refusal::new(format!(
                "plan {plan} is locked by run {} (host {}, pid {}, started {}){state}",
                holder.run_id, holder.host, holder.pid, holder.started,
            ))
            .hint(hint),
        )
    }

    /// Whether `run_id` is a shadow drill, from its journal's first record
    /// (a switchover drill is a real failover: it is not preempted), read
    /// as every reader of runs reads it ([`crate::journal::runs`]): with run
    /// keys listed, a journal not signed by one of them is no shadow drill,
    /// so a failover rewritten to look like one is not preempted.
    pub(super) async fn is_shadow_drill_run(&self, run_id: &str) -> bool {
        let Ok(crate::journal::runs::Listed::Read(records)) =
            crate::journal::runs::read_listed(self.store.as_ref(), run_id).await
        else {
            return false;
        };
        let Some(first) = records.into_iter().next() else {
            return false;
        };
        matches!(first.event, Event::RunStarted { kind: RunKind::Drill, ref flags, .. }
            if RunFlags::of(flags).is_ok_and(|f| f.mode.is_some_and(|m| m.is_shadow_drill())))
    }

    /// Writes into the displaced run's own journal that its lock was taken
    /// (so both runs record the takeover). On shared state this record also
    /// fences it: its next append finds the record number taken. Best effort:
    /// a failure is a warning, never a reason to stop this run.
    pub(super) async fn record_lock_lost(
        &self,
        t: &TakenOver,
        me: &LockInfo,
        reason: Option<&str>,
    ) {
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
        // Bounded: this is on the taker's (a failover's) recovery path, and
        // the displaced run learns of the takeover from the lease anyway.
        let append = journal::append_to(self.store.clone(), &t.holder.run_id, event);
        match tokio::time::timeout(LOCK_LOST_WAIT, append).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => self.reporter.note(&format!(
                "could not record the takeover in the journal of run {}: {}",
                t.holder.run_id, e
            )),
            Err(_) => self.reporter.note(&format!(
                "gave up recording the takeover in the journal of run {} after {} s (the lease says it anyway)",
                t.holder.run_id,
                LOCK_LOST_WAIT.as_secs()
            )),
        }
    }
}

/// How long a taker waits to record the takeover in the displaced run's
/// journal before it goes on without.
const LOCK_LOST_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Releases every lock (a failure is a warning: the run has ended anyway).
pub(super) async fn release_all(locks: &[Arc<dyn HeldLock>]) {
    for l in locks {
        if let Err(e) = l.release().await {
            tracing::warn!("cannot release lock: {e}");
        }
    }
}

/// Releases the locks when a run ends, leaves them taken when it stopped at
/// an injected crash point (as a dead process leaves them).
pub(super) async fn end_locks<T>(locks: &[Arc<dyn HeldLock>], result: &Result<T, EngineError>) {
    if matches!(result, Err(EngineError::Crashed(..))) {
        locks.iter().for_each(|l| l.abandon());
    } else {
        release_all(locks).await;
    }
}
