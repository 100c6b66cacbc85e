//! A shadow drill's ending: what stops it, and the cleanup that follows
//! whatever stopped it.
//!
//! A drill is not resumed like a failover: its figures would span the gap.
//! It stops on the operator's signal, on its maximum duration, or when a
//! failover preempts it (takes its lock), and then every resource its
//! journal names is removed, each removal proven and journaled. Schedule
//! slots live here too: a scheduled drill's slot runs at most once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::journal::RunFlags;
use crate::journal::event::{Event, Outcome, Record};
use crate::journal::{self, Journal, JournalError};
use crate::plan::Plan;
use crate::plan::duration::format_duration;
use crate::runs::replay::StepState;
use crate::runs::{RunReport, build_report, measure};
use crate::state::HeldLock;

use super::{Engine, EngineError, RunOptions};

/// How long a drill's cleanup may wait for deletions to be proven.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(10 * 60);

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

    /// A drill's ending, whatever ended it: cleans up every resource its
    /// journal names (each removal proven and journaled), then journals how
    /// the run ended. A preempted drill (its lock taken over) leaves the
    /// capacity it raised to the run that owns the plan now.
    /// A drill's steps have stopped (all ran, one failed, or `interrupted`
    /// says what stopped them): journals the interruption, reopening the
    /// journal first when a failover took the lock meanwhile, then cleans up.
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
        self.finish_drill(plans, opts, j).await
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

    pub(super) async fn finish_drill(
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
        let results = crate::cleanup::remove_all(
            &temps,
            &self.clouds,
            &run_id,
            |t| preempted && !t.drill_only(),
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
        j.append_outbox_results().await?;
        Ok(report)
    }
}
