//! A shadow drill's ending: what stops it, and the cleanup that follows
//! whatever stopped it.
//!
//! A drill is not resumed like a failover: its figures would span the gap.
//! It stops on the operator's signal, on its maximum duration, or when a
//! failover preempts it (takes its lock), and then every resource its
//! journal names is removed, each removal proven and journaled. Schedule
//! slots live here too: a scheduled drill's slot runs at most once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::cleanup::CapacityOwner;
use crate::journal::RunFlags;
use crate::journal::event::{Event, Outcome, Record};
use crate::journal::{self, Journal, JournalError, Temp};
use crate::plan::Plan;
use crate::plan::duration::format_duration;
use crate::runs::replay::StepState;
use crate::runs::{RunReport, build_report, measure};
use crate::state::HeldLock;

use super::{Engine, EngineError, RunOptions};

/// How long a drill's cleanup may wait for deletions to be proven.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(10 * 60);

/// The plan locks a drill's cleanup reads to decide who owns what it raised.
pub(super) struct DrillLocks<'a> {
    /// The locks this process holds (or held) for the drill's plans.
    pub(super) locks: &'a [Arc<dyn HeldLock>],
    /// The plans whose lock this drill has held without a gap since it
    /// started: no other run can have held them meanwhile.
    pub(super) since_start: Vec<String>,
}

impl<'a> DrillLocks<'a> {
    /// The locks of the drill's own process, taken when it started.
    pub(super) fn since_start(locks: &'a [Arc<dyn HeldLock>]) -> Self {
        Self {
            locks,
            since_start: locks.iter().map(|l| l.plan().to_string()).collect(),
        }
    }
}

impl Engine {
    /// The run that took schedule slot `slot` of one of `plans`, if any:
    /// only runs started at or after the slot are read (run ids begin with
    /// their start time), and of those only their first record counts.
    pub async fn slot_taken(
        &self,
        plans: &[&str],
        slot: DateTime<Utc>,
    ) -> Result<Option<String>, JournalError> {
        let from = slot.format("%Y%m%dT%H%M%SZ").to_string();
        // Read as every reader of runs reads them: with run keys listed, a
        // journal a writer of the state forged to claim the slot is left
        // out (and named), so it cannot stop the plan's scheduled drill.
        let read = crate::journal::runs::read_runs(self.store.as_ref(), |id| {
            id.get(..16).is_some_and(|t| t >= from.as_str())
        })
        .await?;
        if let Some(line) = read.left_out_line() {
            tracing::warn!("schedule slot check: {line}");
        }
        for (id, records) in read.runs {
            let Some(r) = records.first() else {
                continue;
            };
            if let Event::RunStarted {
                plans: ran, flags, ..
            } = &r.event
                && RunFlags::of(flags).is_ok_and(|f| f.schedule_slot == Some(slot))
                && ran.iter().any(|p| plans.contains(&p.name.as_str()))
            {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// A drill's longest run: `--max-duration`, else the plan's `[drill]
    /// max_duration`, else its tier's default (the shortest over the plans).
    pub(super) fn max_duration(&self, plans: &[Plan], opts: &RunOptions) -> Duration {
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
    pub(super) fn stop_signal(
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
        let left = (crate::plan::duration::after(clock_start, max) - Utc::now())
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

    /// A drill's steps have stopped (all ran, one failed, or `interrupted`
    /// says what stopped them): journals the interruption, reopening the
    /// journal first when a failover took the lock meanwhile, then cleans up
    /// ([`Engine::finish_drill`]; this process has held `locks` since the
    /// drill started).
    pub(super) async fn halt_drill(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        j: &mut Journal,
        locks: &[Arc<dyn HeldLock>],
        interrupted: Option<String>,
    ) -> Result<RunReport, EngineError> {
        if let Some(reason) = interrupted {
            self.reporter
                .note(&format!("drill stopped: {reason}; cleaning up"));
            if locks.iter().any(|l| l.check_local().is_err()) {
                *j = self.reopen_after_preemption(j.run_id()).await?;
            }
            j.append(Event::Interrupted { reason }).await?;
        }
        let held = DrillLocks::since_start(locks);
        self.finish_drill(plans, opts, j, &held).await
    }

    /// The journal of a drill whose lock was taken over, opened again at its
    /// true end once the taker's `lock_lost` record is there (waited for a
    /// few seconds), without a fence: the lock is gone, and these records
    /// are the drill's own ending (its cleanup), which nobody else writes.
    pub(super) async fn reopen_after_preemption(
        &self,
        run_id: &str,
    ) -> Result<Journal, EngineError> {
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

    /// Who owns each group in `groups` (all raised by drill `run_id`),
    /// read now: the drill's journal (`at_start`, or as it is now), each
    /// owning plan's lock and, when those do not tell, the journals of the
    /// runs started since the drill. A group several plans share is the
    /// drill's only when it is the drill's for each.
    async fn capacity_owners(
        &self,
        plans: &[Plan],
        run_id: &str,
        at_start: &[Record],
        held: &DrillLocks<'_>,
        groups: Vec<Temp>,
    ) -> BTreeMap<Temp, CapacityOwner> {
        use crate::cleanup::owner::{self, Later};
        // A taker's `lock_lost` may have come since cleanup began. Read as
        // every reader reads a run, authenticated: cleanup acts on what it
        // reads back, and a writer of the state without the run key must
        // not be able to steer it.
        let own = journal::read_authenticated(self.store.as_ref(), run_id)
            .await
            .unwrap_or_else(|_| at_start.to_vec());
        let since = own.first().map_or_else(Utc::now, |r| r.at);
        let mut locks: BTreeMap<String, owner::LockSeen> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for t in groups {
            let Some((region, group)) = t.raised_group() else {
                continue;
            };
            let steps = crate::runs::drill::scale_steps_of(plans, &t);
            let mut owning: Vec<&str> = steps.iter().map(|s| s.plan()).collect();
            owning.dedup();
            let mut decided = Vec::new();
            for plan in owning {
                if !locks.contains_key(plan) {
                    let seen = self.lock_seen(plan, held).await;
                    locks.insert(plan.to_string(), seen);
                }
                let lock = &locks[plan];
                let later = if owner::needs_journals(run_id, plan, lock, &own) {
                    owner::scalers_since(self.store.as_ref(), since, &steps, region, run_id).await
                } else {
                    Later::NotRead
                };
                decided.push(owner::drill_capacity(
                    run_id, plan, lock, &own, &later, since,
                ));
            }
            let owner = owner::of_every_plan(decided).unwrap_or_else(|| {
                CapacityOwner::Unknown(format!(
                    "{group} in {region} is the group of none of the drill's plans"
                ))
            });
            self.reporter.note(&format!(
                "drill cleanup: {t}: {} ({})",
                match owner {
                    CapacityOwner::Drill(_) => "the drill's to restore",
                    CapacityOwner::Failover(_) => "a failover's: kept",
                    CapacityOwner::Unknown(_) => "owner in doubt: kept",
                },
                owner.why()
            ));
            out.insert(t, owner);
        }
        out
    }

    /// What `plan`'s lock says to the drill's cleanup: still held by this
    /// drill (confirmed with the store), or as its store records it now.
    async fn lock_seen(
        &self,
        plan: &str,
        held: &DrillLocks<'_>,
    ) -> crate::cleanup::owner::LockSeen {
        use crate::cleanup::owner::LockSeen;
        if let Some(l) = held.locks.iter().find(|l| l.plan() == plan)
            && l.check().await.is_ok()
        {
            return LockSeen::Held {
                since_start: held.since_start.iter().any(|p| p == plan),
            };
        }
        match self.locks.status(&[plan.to_string()]).await {
            Ok(mut s) => s.pop().map_or_else(
                || LockSeen::Unreadable("the store returned no status".into()),
                |st| LockSeen::Lost(Box::new(st)),
            ),
            Err(e) => LockSeen::Unreadable(e.to_string()),
        }
    }

    /// A drill's ending, whatever ended it: cleans up every resource its
    /// journal names (each removal proven and journaled), then journals how
    /// the run ended. A group it raised is lowered only when the drill
    /// still owns it: decided right before, from the plan's lock (`held`)
    /// and the journals ([`crate::cleanup::owner`]); a failover's keeps
    /// its capacity, and in doubt it is kept too.
    pub(super) async fn finish_drill(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        j: &mut Journal,
        held: &DrillLocks<'_>,
    ) -> Result<RunReport, EngineError> {
        let run_id = j.run_id().to_string();
        let records = journal::read_authenticated(self.store.as_ref(), &run_id).await?;
        let temps = crate::runs::drill::journaled(&records);
        if !temps.is_empty() {
            self.reporter.note(&format!(
                "drill cleanup: {} resource(s) to remove or restore",
                temps.len()
            ));
        }
        let deadline = Instant::now() + CLEANUP_BUDGET;
        let results = crate::cleanup::remove_all(
            &temps,
            &self.clouds,
            &run_id,
            async |groups: Vec<Temp>| {
                self.capacity_owners(plans, &run_id, &records, held, groups)
                    .await
            },
            opts.pace.poll,
            deadline,
        )
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
        let records = journal::read_authenticated(self.store.as_ref(), &run_id).await?;
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
        j.append_outbox_results().await?;
        Ok(report)
    }
}
