//! Drill cadence: for each plan, its last drill and verdict, the next slot
//! of its `[drill] schedule`, and whether it is **overdue** (no passing drill
//! within its tier's `drill_interval`).
//!
//! Computed from journals only (local or shared state), so the scheduler on
//! a server, an engineer's laptop and a report agree on what was drilled.
//! This module is pure: it takes the plans, one summary per drill run, and
//! the time, and returns rows; reading the journals is the caller's job.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::Event;
use crate::journal::event::{Outcome, Record, RunKind};
use crate::plan::Plan;
use crate::runs::drill::Verdict;
use crate::runs::replay;

/// One drill run of one plan, as its journal tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillRun {
    /// The run.
    pub run_id: String,
    /// The plan it drilled.
    pub plan: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// How it ended (`unfinished` while running or after a crash).
    pub outcome: Outcome,
    /// PASS / FAIL / UNKNOWN with the reason.
    pub verdict: Verdict,
    /// The plan's inventory the drill journaled before its steps acted
    /// (`None`: it journaled none), what `status` compares the plan with.
    #[serde(skip)]
    pub inventory: Option<BTreeMap<String, String>>,
    /// The region it drilled a failover to: what it proved is a failover
    /// there, not to another standby.
    #[serde(default)]
    pub target: String,
    /// How deep (`shadow`, `switchover`; empty when its journal did not
    /// say): what it proved.
    #[serde(default)]
    pub depth: String,
    /// Whether its journal was read against listed run keys: `false`, no
    /// key is listed, and anyone who can write the state could have
    /// written it (so a "verified" it makes says so).
    #[serde(default)]
    pub authenticated: bool,
    /// Set when it restored the plan's data from backups: a restore test,
    /// what it restored and the RTO and RPO it achieved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreTest>,
}

/// A drill that restored a plan's data from backups, as the auditors'
/// "restore last night's backup in the other region" asks: from what, to
/// which point, in how long, losing how much.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreTest {
    /// What each of its data resources was restored from, and to which
    /// point (`point` unknown: `None`).
    pub restored: Vec<crate::steps::Restored>,
    /// The RTO the drill achieved.
    pub rto: crate::runs::measure::Measure,
    /// The RPO it achieved (the gap from the point restored).
    pub rpo: crate::runs::measure::Measure,
}

/// The cadence of one plan.
#[derive(Debug, Clone, Serialize)]
pub struct Cadence {
    /// The plan.
    pub plan: String,
    /// Its tier.
    pub tier: String,
    /// The tier's longest allowed time between passing drills, in seconds.
    pub interval_seconds: u64,
    /// The `[drill] schedule`, if any.
    pub schedule: Option<String>,
    /// The newest drill of the plan, if any.
    pub last: Option<DrillRun>,
    /// The newest passing drill, if any.
    pub last_passing: Option<DrillRun>,
    /// The next slot of the schedule after now.
    pub next_slot: Option<DateTime<Utc>>,
    /// When a passing drill is due at the latest (last pass + interval;
    /// `None` when there never was one).
    pub due_by: Option<DateTime<Utc>>,
    /// No passing drill within the interval.
    pub overdue: bool,
    /// Why it is overdue, or a problem with the schedule.
    pub note: Option<String>,
}

impl Cadence {
    /// The newest drill in words (`last drill 2026-11-25 02:00Z pass`, or
    /// `never drilled`), as `status` and `schedule` say it.
    pub fn last_said(&self) -> String {
        match &self.last {
            None => "never drilled".to_string(),
            Some(d) => format!(
                "last drill {} {}",
                d.started.format("%Y-%m-%d %H:%MZ"),
                &d.verdict
            ),
        }
    }
}

/// Summarises a run's records as drills of its plans (none when the run is
/// not a drill); `authenticated`: whether they were read against listed
/// run keys ([`DrillRun::authenticated`]).
pub fn drill_runs(
    run_id: &str,
    records: &[Record],
    authenticated: bool,
    targets: &BTreeMap<String, (u64, u64)>,
) -> Vec<DrillRun> {
    let Some((started, plans, target, depth)) = records.iter().find_map(|r| match &r.event {
        Event::RunStarted {
            kind: RunKind::Drill,
            plans,
            target,
            flags,
            ..
        } => {
            let depth = (crate::journal::payload::RunFlags::of(flags).ok())
                .and_then(|f| f.drill_depth())
                .map(|d| d.as_str().to_string())
                .unwrap_or_default();
            Some((r.at, plans.clone(), target.clone(), depth))
        }
        _ => None,
    }) else {
        return Vec::new();
    };
    let outcome = crate::journal::outcome_of(records);
    // A slot recorded as skipped or missed is not a drill that ran.
    if outcome == Outcome::Refused {
        return Vec::new();
    }
    let measures = crate::runs::measure::measure(records, targets);
    plans
        .iter()
        .map(|p| {
            let m = measures.iter().find(|m| m.plan == p.name);
            let verdict = crate::runs::drill::verdict(records, outcome, &p.name, m);
            let inventory = records.iter().find_map(|r| match &r.event {
                Event::Inventory { plan, items } if *plan == p.name => Some(items.clone()),
                _ => None,
            });
            DrillRun {
                run_id: run_id.to_string(),
                plan: p.name.clone(),
                started,
                outcome,
                verdict,
                inventory,
                target: target.clone(),
                depth: depth.clone(),
                authenticated,
                restore_test: m.filter(|m| !m.restored.is_empty()).map(|m| RestoreTest {
                    restored: m.restored.clone(),
                    rto: m.rto.clone(),
                    rpo: m.rpo.clone(),
                }),
            }
        })
        .collect()
}

/// The cadence of every plan at `now`, from the drill runs of every plan.
pub fn cadence(plans: &[Plan], drills: &[DrillRun], now: DateTime<Utc>) -> Vec<Cadence> {
    plans
        .iter()
        .map(|plan| {
            let mine: Vec<&DrillRun> = drills.iter().filter(|d| d.plan == plan.name()).collect();
            let last = mine.iter().max_by_key(|d| d.started).map(|d| (*d).clone());
            let last_passing = mine
                .iter()
                .filter(|d| d.verdict.passed())
                .max_by_key(|d| d.started)
                .map(|d| (*d).clone());
            let interval = plan.tier.drill_interval;
            let due_by = last_passing.as_ref().and_then(|d| {
                chrono::Duration::from_std(interval)
                    .ok()
                    .and_then(|i| d.started.checked_add_signed(i))
            });
            let schedule = plan.spec.drill.as_ref().map(|d| d.schedule.clone());
            let (next_slot, schedule_note) = match &schedule {
                None => (None, None),
                Some(expr) => match crate::plan::cron::parse_cron(expr) {
                    Ok(cron) => match cron.find_next_occurrence(&now, false) {
                        Ok(t) => (Some(t), None),
                        Err(e) => (
                            None,
                            Some(format!("schedule `{expr}` has no next slot: {e}")),
                        ),
                    },
                    Err(e) => (None, Some(format!("schedule `{expr}` does not parse: {e}"))),
                },
            };
            let overdue = due_by.is_none_or(|due| due < now);
            let note = if overdue {
                Some(match &last_passing {
                    None => format!(
                        "no passing drill on record (the {} tier asks for one every {})",
                        plan.tier.name,
                        crate::plan::duration::format_duration(interval)
                    ),
                    Some(d) => format!(
                        "last passing drill {} is older than the {} tier's interval of {}",
                        d.run_id,
                        plan.tier.name,
                        crate::plan::duration::format_duration(interval)
                    ),
                })
            } else {
                schedule_note
            };
            Cadence {
                plan: plan.name().to_string(),
                tier: plan.tier.name.clone(),
                interval_seconds: interval.as_secs(),
                schedule,
                last,
                last_passing,
                next_slot,
                due_by,
                overdue,
                note,
            }
        })
        .collect()
}

/// What `drctl schedule run` does with one plan's latest slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SlotAction {
    /// Start the drill of this slot (`catch_up`: the slot passed a while ago).
    Start {
        /// The slot.
        slot: DateTime<Utc>,
        /// Whether it runs late, as the one catch-up of a missed slot.
        catch_up: bool,
    },
    /// The slot was already taken (run, skipped or recorded missed).
    Taken {
        /// The slot.
        slot: DateTime<Utc>,
        /// The run that took it.
        by: String,
    },
    /// The slot passed longer ago than the catch-up deadline: record it missed.
    Missed {
        /// The slot.
        slot: DateTime<Utc>,
    },
    /// The slot falls in a `[drill] blackout` window: record it skipped.
    Blackout {
        /// The slot.
        slot: DateTime<Utc>,
        /// Which window.
        why: String,
    },
    /// No schedule, or one that does not parse.
    Unscheduled {
        /// Why.
        why: String,
    },
}

/// One plan's decision in a `schedule run` pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotDecision {
    /// The plan.
    pub plan: String,
    /// What to do.
    #[serde(flatten)]
    pub action: SlotAction,
}

/// The slot a drill run was started for, from its first record's flags.
pub fn slot_of(records: &[Record]) -> Option<DateTime<Utc>> {
    records.iter().find_map(|r| match &r.event {
        Event::RunStarted { flags, .. } => crate::journal::RunFlags::of(flags).ok()?.schedule_slot,
        _ => None,
    })
}

/// Decides, for each plan, what a `schedule run` pass at `now` does with the
/// plan's latest slot (the last occurrence of its cron at or before now):
/// start it when no run has taken it, as a catch-up when it is older than
/// a minute but within `catch_up`; record it missed when older than that.
/// `taken` maps (plan, slot) to the run that took it. A slot runs at most
/// once: the run's slot is part of its identity, checked again under the
/// plan's lock before the drill starts.
pub fn due(
    plans: &[Plan],
    taken: &BTreeMap<(String, DateTime<Utc>), String>,
    now: DateTime<Utc>,
    catch_up: std::time::Duration,
) -> Vec<SlotDecision> {
    plans
        .iter()
        .map(|plan| {
            let blackout = plan.spec.drill.as_ref().and_then(|d| d.blackout_at(now));
            let action = match plan.spec.drill.as_ref().map(|d| d.schedule.as_str()) {
                None => SlotAction::Unscheduled {
                    why: "no [drill] schedule".into(),
                },
                Some(expr) => match crate::plan::cron::parse_cron(expr) {
                    Err(e) => SlotAction::Unscheduled {
                        why: format!("schedule `{expr}` does not parse: {e}"),
                    },
                    Ok(cron) => match cron.find_previous_occurrence(&now, true) {
                        Err(e) => SlotAction::Unscheduled {
                            why: format!("schedule `{expr}` has no slot before now: {e}"),
                        },
                        Ok(slot) => match taken.get(&(plan.name().to_string(), slot)) {
                            Some(by) => SlotAction::Taken {
                                slot,
                                by: by.clone(),
                            },
                            None if blackout.is_some() => SlotAction::Blackout {
                                slot,
                                why: blackout.clone().unwrap_or_default(),
                            },
                            None => {
                                let late = (now - slot).to_std().unwrap_or_default();
                                if late > catch_up {
                                    SlotAction::Missed { slot }
                                } else {
                                    SlotAction::Start {
                                        slot,
                                        catch_up: late > std::time::Duration::from_secs(60),
                                    }
                                }
                            }
                        },
                    },
                },
            };
            SlotDecision {
                plan: plan.name().to_string(),
                action,
            }
        })
        .collect()
}

/// Whether a journal's replay is sane enough to summarise (a broken journal
/// is not evidence of a drill).
pub fn usable(records: &[Record]) -> bool {
    replay::replay(records).illegal.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn plans() -> Vec<Plan> {
        crate::plan::reference()
    }

    fn drill(plan: &str, at: DateTime<Utc>, verdict: Verdict) -> DrillRun {
        DrillRun {
            run_id: format!("{}-{plan}", at.format("%Y%m%dT%H%M%SZ")),
            plan: plan.into(),
            started: at,
            outcome: Outcome::Succeeded,
            verdict,
            inventory: None,
            target: "us-east-1".into(),
            depth: "shadow".into(),
            authenticated: true,
            restore_test: None,
        }
    }

    #[test]
    fn a_due_slot_starts_once_then_is_taken_and_an_old_one_is_missed() {
        let ps = plans();
        let hour = std::time::Duration::from_secs(3600);
        // Monday 2026-11-23 03:00:20 UTC: payments' slot (03:00 MON) is due.
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 20).unwrap();
        let slot = Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap();
        let d = due(&ps, &BTreeMap::new(), now, hour);
        let payments = d.iter().find(|d| d.plan == "payments").unwrap();
        assert_eq!(
            payments.action,
            SlotAction::Start {
                slot,
                catch_up: false
            }
        );
        // Taken by a run: never again.
        let taken = BTreeMap::from([(("payments".to_string(), slot), "run-a".to_string())]);
        let d = due(&ps, &taken, now, hour);
        assert!(matches!(
            d.iter().find(|d| d.plan == "payments").unwrap().action,
            SlotAction::Taken { .. }
        ));
        // 40 minutes late: a catch-up; two hours late: missed.
        let late = Utc.with_ymd_and_hms(2026, 11, 23, 3, 40, 0).unwrap();
        assert_eq!(
            due(&ps, &BTreeMap::new(), late, hour)
                .into_iter()
                .find(|d| d.plan == "payments")
                .unwrap()
                .action,
            SlotAction::Start {
                slot,
                catch_up: true
            }
        );
        let later = Utc.with_ymd_and_hms(2026, 11, 23, 5, 0, 0).unwrap();
        assert_eq!(
            due(&ps, &BTreeMap::new(), later, hour)
                .into_iter()
                .find(|d| d.plan == "payments")
                .unwrap()
                .action,
            SlotAction::Missed { slot }
        );
    }

    #[test]
    fn a_slot_in_a_blackout_window_is_skipped() {
        let mut ps = plans();
        let payments = ps.iter_mut().find(|p| p.name() == "payments").unwrap();
        let drill = payments.spec.drill.as_mut().unwrap();
        // Every Monday from 00:00 for 6 hours: covers the 03:00 slot.
        drill.blackout.push(crate::plan::spec::BlackoutSpec {
            start: "0 0 * * MON".into(),
            length: "6h".into(),
            reason: Some("weekly freeze".into()),
        });
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 20).unwrap();
        let d = due(
            &ps,
            &BTreeMap::new(),
            now,
            std::time::Duration::from_secs(3600),
        );
        match &d.iter().find(|d| d.plan == "payments").unwrap().action {
            SlotAction::Blackout { why, .. } => assert!(why.contains("weekly freeze"), "{why}"),
            other => panic!("{other:?}"),
        }
        // The window closes at 06:00: from then on, no blackout.
        let drill = ps
            .iter()
            .find(|p| p.name() == "payments")
            .unwrap()
            .spec
            .drill
            .as_ref()
            .unwrap();
        let inside = Utc.with_ymd_and_hms(2026, 11, 23, 5, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 23, 6, 0, 0).unwrap();
        assert!(drill.blackout_at(inside).is_some());
        assert!(drill.blackout_at(after).is_none());
    }

    #[test]
    fn a_plan_never_drilled_is_overdue_and_its_next_slot_follows_the_cron() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap(); // a Sunday
        let rows = cadence(&plans(), &[], now);
        let payments = rows.iter().find(|r| r.plan == "payments").unwrap();
        assert!(payments.overdue);
        assert!(
            payments
                .note
                .as_deref()
                .unwrap()
                .contains("no passing drill")
        );
        // "0 3 * * MON": Monday 2026-11-23 03:00 UTC.
        assert_eq!(
            payments.next_slot,
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap())
        );
    }

    #[test]
    fn only_a_passing_drill_within_the_interval_keeps_a_plan_current() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let plans = plans();
        let interval = plans
            .iter()
            .find(|p| p.name() == "payments")
            .unwrap()
            .tier
            .drill_interval;
        let recent = now - chrono::Duration::from_std(interval / 2).unwrap();
        let old = now - chrono::Duration::from_std(interval * 2).unwrap();
        // A recent failed drill does not count; an old pass is too old.
        let drills = [
            drill("payments", recent, Verdict::Fail("RTO missed".into())),
            drill("payments", old, Verdict::Pass),
        ];
        let row = cadence(&plans, &drills, now)
            .into_iter()
            .find(|r| r.plan == "payments")
            .unwrap();
        assert!(row.overdue, "{row:?}");
        assert_eq!(row.last.as_ref().unwrap().started, recent);
        assert_eq!(row.last_passing.as_ref().unwrap().started, old);
        assert!(row.note.unwrap().contains("older than"));
        // A recent pass does.
        let drills = [drill("payments", recent, Verdict::Pass)];
        let row = cadence(&plans, &drills, now)
            .into_iter()
            .find(|r| r.plan == "payments")
            .unwrap();
        assert!(!row.overdue, "{row:?}");
        assert!(row.due_by.unwrap() > now);
    }

    #[test]
    fn runs_that_are_not_drills_are_not_drills() {
        let rec = Record {
            seq: 0,
            at: Utc::now(),
            prev: crate::journal::ZERO_HASH.into(),
            event: Event::RunStarted {
                run_id: "r".into(),
                kind: RunKind::Failover,
                target: "us-east-1".into(),
                plans: vec![crate::journal::PlanRef {
                    name: "payments".into(),
                    digest: "d".into(),
                }],
                operator: None,
                host: "h".into(),
                pid: 1,
                flags: serde_json::json!({}),
                declared_at: None,
                nonce: None,
                steps: vec![],
            },
            fence: Default::default(),
            late: None,
        };
        assert!(drill_runs("r", std::slice::from_ref(&rec), true, &BTreeMap::new()).is_empty());
        let mut drill = rec;
        if let Event::RunStarted { kind, .. } = &mut drill.event {
            *kind = RunKind::Drill;
        }
        let runs = drill_runs("r", &[drill], true, &BTreeMap::new());
        assert_eq!(runs.len(), 1);
        assert!(matches!(runs[0].verdict, Verdict::Unknown(_)), "{runs:?}");
    }
}
