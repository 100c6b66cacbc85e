//! Who owns a group a drill raised: the drill, which returns it to its
//! restore point, or a failover, which keeps it.
//!
//! A drill that lowered a group a failover had just raised would fight the
//! failover for capacity (and take instances from a region that is now
//! serving). So a group is lowered only on evidence that no failover took
//! it, and kept whenever that cannot be shown. The evidence, in order:
//!
//! * the drill's own journal: a failover's `lock_lost` record. The taker
//!   writes it best effort, so it proves a preemption; its absence proves
//!   nothing.
//! * the plan's lock (a lease on shared state, a lock file locally): still
//!   this drill's since it started (the drill owns the group), or taken
//!   from it (the lock records the holder's kind, whom it `displaced` and
//!   the `reason`): by a failover or failback (the failover owns it), or
//!   broken or taken by a run that is no failover (the drill owns it).
//! * when the lock cannot tell (released since, taken afresh by a resume,
//!   a local file removed when the failover ended): the journals of the
//!   runs started since the drill, where a failover whose graph scales the
//!   group says so in its first record.
//!
//! A sweep, which holds no lock, lowers a group only when the journal of
//! the drill its tags name is there, names the group, and no failover has
//! scaled the group since that drill started; or, for a kind the generic
//! `drill-raise` marks, when the group still carries that drill's marks
//! (every failover takes them off before it touches the group).
//!
//! Read → decide → act: the engine and the sweep read (the lock's status,
//! [`scalers_since`]); [`drill_capacity`] and [`swept_capacity`] decide,
//! pure; `steps::drill_raise::restore` acts on the decision.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::journal::event::{Event, Record, RunKind};
use crate::journal::{JournalStore, StepName};
use crate::runs::drill::{Scaler, journaled, preempted_by, scaler};
use crate::state::LockStatus;

pub use crate::steps::capacity::CapacityOwner;

/// How far apart two machines' clocks may be when their journals' times
/// are compared: a failover that started up to this long "before" a drill
/// (by its machine's clock) still counts as later.
pub const CLOCK_MARGIN: Duration = Duration::from_secs(60);

/// What the plan's lock says at the drill's cleanup.
#[derive(Debug, Clone, PartialEq)]
pub enum LockSeen {
    /// This drill holds it, confirmed with the store. `since_start`: held
    /// without a gap since the drill started (the drill's own process, or
    /// a resume that took it straight from the drill's earlier hold).
    Held {
        /// No other run can have held it since the drill started.
        since_start: bool,
    },
    /// Not this drill's any more: the lock as its store records it now.
    Lost(Box<LockStatus>),
    /// It could not be read.
    Unreadable(String),
}

/// The runs that scale a group, from the journals of the runs started
/// since a drill (see [`scalers_since`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Later {
    /// Not read: the lock decided alone.
    NotRead,
    /// Every run started since the drill that scales the group.
    Read(Vec<Scaler>),
    /// The journals could not be listed or read.
    Unreadable(String),
}

/// The journal of the drill a group's tags name, as a sweep found it.
#[derive(Debug, Clone, PartialEq)]
pub enum DrillJournal {
    /// No journal of that run in this state.
    Missing,
    /// It is there but could not be read.
    Unreadable(String),
    /// Its records.
    Read(Vec<Record>),
}

/// Whether a run of `kind` takes a group's capacity over (it scales the
/// target's groups for real).
fn takes_capacity(kind: RunKind) -> bool {
    matches!(kind, RunKind::Failover | RunKind::Failback)
}

fn earliest(since: DateTime<Utc>) -> DateTime<Utc> {
    since - chrono::Duration::from_std(CLOCK_MARGIN).unwrap_or_default()
}

/// What the drill's journal and the plan's lock decide alone; `None`
/// when the journals of later runs must be read.
fn by_lock(run_id: &str, plan: &str, lock: &LockSeen, own: &[Record]) -> Option<CapacityOwner> {
    if let Some(by) = preempted_by(own, plan) {
        return Some(CapacityOwner::Failover(format!(
            "failover run {by} preempted this drill on plan {plan} (its lock_lost record)"
        )));
    }
    match lock {
        LockSeen::Held { since_start: true } => Some(CapacityOwner::Drill(format!(
            "this drill has held the lock of plan {plan} since it started: no failover took the plan"
        ))),
        LockSeen::Held { since_start: false } => None,
        LockSeen::Unreadable(why) => Some(CapacityOwner::Unknown(format!(
            "the lock of plan {plan} cannot be read ({why}): a failover may have taken the plan"
        ))),
        LockSeen::Lost(st) => {
            let from_us = st.displaced.as_ref().is_some_and(|d| d.run_id == run_id);
            let why = st.reason.as_deref().unwrap_or("no reason recorded");
            let by = st
                .holder
                .as_ref()
                .map_or("(released since)".to_string(), |h| h.run_id.clone());
            match st.kind {
                Some(k) if from_us && takes_capacity(k) => Some(CapacityOwner::Failover(format!(
                    "{k} run {by} took the lock of plan {plan} from this drill ({why})"
                ))),
                Some(k) if from_us && st.holder.is_none() => Some(CapacityOwner::Drill(format!(
                    "the lock of plan {plan} was released or broken while a {k} run held it, not taken by a failover ({why})"
                ))),
                Some(k) if from_us => Some(CapacityOwner::Drill(format!(
                    "{k} run {by}, not a failover, took the lock of plan {plan} from this drill ({why})"
                ))),
                _ => None,
            }
        }
    }
}

/// Whether [`drill_capacity`] needs the journals of the runs started since
/// the drill (the drill's journal and the lock do not decide alone).
pub fn needs_journals(run_id: &str, plan: &str, lock: &LockSeen, own: &[Record]) -> bool {
    by_lock(run_id, plan, lock, own).is_none()
}

/// Who owns the capacity of a group drill `run_id` raised for `plan`, at
/// the drill's cleanup: from its own journal `own` (which began at
/// `since`), the plan's `lock`, and, when those do not decide, the runs
/// started since (`later`). Only evidence that no failover took the plan
/// makes it the drill's; in doubt it is [`CapacityOwner::Unknown`].
pub fn drill_capacity(
    run_id: &str,
    plan: &str,
    lock: &LockSeen,
    own: &[Record],
    later: &Later,
    since: DateTime<Utc>,
) -> CapacityOwner {
    if let Some(owner) = by_lock(run_id, plan, lock, own) {
        return owner;
    }
    let scalers = match later {
        Later::Read(s) => s,
        Later::Unreadable(why) => {
            return CapacityOwner::Unknown(format!(
                "the lock of plan {plan} does not say who took it since the drill started, and the journals cannot be read ({why})"
            ));
        }
        Later::NotRead => {
            return CapacityOwner::Unknown(format!(
                "the lock of plan {plan} does not say who took it since the drill started, and the journals were not read"
            ));
        }
    };
    if let Some(s) = scalers
        .iter()
        .find(|s| s.run_id != run_id && !s.refused && s.started >= earliest(since))
    {
        return CapacityOwner::Failover(format!(
            "{} run {} (started {}) scales this group",
            s.kind,
            s.run_id,
            s.started.to_rfc3339()
        ));
    }
    match lock {
        LockSeen::Lost(st) if st.holder.is_some() && st.kind.is_some_and(takes_capacity) => {
            CapacityOwner::Unknown(format!(
                "the lock of plan {plan} is held by {} run {}, which may own the group",
                st.kind.map(|k| k.to_string()).unwrap_or_default(),
                st.holder
                    .as_ref()
                    .map(|h| h.run_id.as_str())
                    .unwrap_or_default()
            ))
        }
        _ => CapacityOwner::Drill(format!(
            "no failover that scales this group has started since the drill did (the journals), and the lock of plan {plan} is {}",
            match lock {
                LockSeen::Held { .. } => "this drill's again".to_string(),
                LockSeen::Lost(st) => st.state.clone(),
                LockSeen::Unreadable(_) => "unreadable".to_string(),
            }
        )),
    }
}

/// The owner of a group several of a drill's plans share, from each
/// plan's decision: a failover's if any plan's failover took it, in doubt
/// if any is, the drill's only when it is the drill's for every plan;
/// `None` without a decision.
pub fn of_every_plan(decided: Vec<CapacityOwner>) -> Option<CapacityOwner> {
    let rank = |o: &CapacityOwner| match o {
        CapacityOwner::Failover(_) => 0,
        CapacityOwner::Unknown(_) => 1,
        CapacityOwner::Drill(_) => 2,
    };
    decided.into_iter().min_by_key(rank)
}

/// Who owns the capacity of `group` in `region` (a node group's
/// `cluster/nodegroup`), whose drill tags (or, for a node group, whose
/// drill's journal) name run `tag_run`, at a sweep: the drill (the sweep
/// lowers it) only when that
/// drill's journal is there and names the group, it was not preempted,
/// and no failover scaled the group since it started (`later`). A failover
/// that did makes the tags stale ([`CapacityOwner::Failover`]: removed,
/// capacity kept); without the journal, in doubt.
///
/// `marked`: the group carries drill `tag_run`'s marks now, as read right
/// before (a kind the generic `drill-raise` marks). Every failover takes
/// them off before it touches such a group (`steps::raise`), so while
/// they are on it no failover has: the drill owns it, journal or none.
pub fn swept_capacity(
    tag_run: &str,
    (region, group): (&str, &str),
    drill: &DrillJournal,
    later: &Later,
    marked: bool,
) -> CapacityOwner {
    let records = match drill {
        DrillJournal::Read(r) => r,
        _ if marked => return by_marks(tag_run, later),
        DrillJournal::Missing => {
            return CapacityOwner::Unknown(format!(
                "no journal of drill {tag_run} in this state (kept on another machine, or deleted), so whether a failover raised the group since cannot be read; if none did (`drctl runs list`), set it to its {} tag by hand",
                crate::steps::drill_names::RESTORE_TAG
            ));
        }
        DrillJournal::Unreadable(why) => {
            return CapacityOwner::Unknown(format!(
                "the journal of drill {tag_run} cannot be read ({why})"
            ));
        }
    };
    let first = records.first();
    let is_the_drill = first.is_some_and(|r| {
        matches!(&r.event, Event::RunStarted { run_id, kind: RunKind::Drill, .. } if run_id == tag_run)
    });
    let names_it =
        (journaled(records).iter()).any(|t| t.raised_group() == Some((region, group.to_string())));
    let (Some(first), true, true) = (first, is_the_drill, names_it) else {
        return CapacityOwner::Unknown(format!(
            "the journal of run {tag_run} is not that of a drill that raised {group} in {region}"
        ));
    };
    let since = first.at;
    let scaled = match later {
        Later::Read(scalers) => scalers
            .iter()
            .find(|s| s.run_id != tag_run && s.scaled.is_some_and(|t| t >= earliest(since))),
        _ => None,
    };
    if let Some(s) = scaled {
        return CapacityOwner::Failover(format!(
            "{} run {} scaled it at {}, after drill {tag_run} started: the drill's tags were stale",
            s.kind,
            s.run_id,
            s.scaled.map(|t| t.to_rfc3339()).unwrap_or_default()
        ));
    }
    if let Some(by) = records.iter().find_map(|r| match &r.event {
        Event::LockLost {
            by_run,
            preempted: true,
            ..
        } => Some(by_run.clone()),
        _ => None,
    }) {
        return CapacityOwner::Failover(format!(
            "failover run {by} preempted drill {tag_run}: the group is the failover's"
        ));
    }
    match read_since(tag_run, later) {
        Ok(_) => CapacityOwner::Drill(format!(
            "drill {tag_run}'s journal names it and no failover has scaled it since"
        )),
        Err(unknown) => unknown,
    }
}

/// The runs started since drill `tag_run` did, or why they are not known
/// (in doubt, the group is kept).
fn read_since<'a>(tag_run: &str, later: &'a Later) -> Result<&'a [Scaler], CapacityOwner> {
    match later {
        Later::Read(s) => Ok(s),
        Later::Unreadable(why) => Err(CapacityOwner::Unknown(format!(
            "the journals of the runs since drill {tag_run} started cannot be read ({why})"
        ))),
        Later::NotRead => Err(CapacityOwner::Unknown(format!(
            "the journals of the runs since drill {tag_run} started were not read"
        ))),
    }
}

/// Who owns a group that still carries drill `tag_run`'s marks, with no
/// journal of the drill to read: the drill, unless a failover or failback
/// of the group started since the drill did (`later`, read from the run
/// ids' times), which may not have reached its step yet; in doubt, kept.
fn by_marks(tag_run: &str, later: &Later) -> CapacityOwner {
    let scalers = match read_since(tag_run, later) {
        Ok(s) => s,
        Err(unknown) => return unknown,
    };
    match (scalers.iter()).find(|s| s.run_id != tag_run && takes_capacity(s.kind) && !s.refused) {
        Some(s) => CapacityOwner::Unknown(format!(
            "{} run {} of the group started after drill {tag_run}: it may own the group, whatever the marks say",
            s.kind, s.run_id
        )),
        None => CapacityOwner::Drill(format!(
            "it still carries drill {tag_run}'s marks, which every failover takes off before it touches the group, and no failover of it started since"
        )),
    }
}

/// The runs of `store` started since `since` (less [`CLOCK_MARGIN`]; run
/// ids begin with their start time, so only those are read) whose graph
/// scales the group of `steps` in `region` (see
/// [`crate::runs::drill::scale_steps`]), `except` the drill itself. The
/// journals are read as every reader of runs reads them
/// ([`crate::journal::runs`]: with run keys listed, a forged one is left
/// out); a journal that vanished meanwhile is skipped; one that cannot be
/// read makes the whole answer [`Later::Unreadable`]. So does a journal
/// left out (it does not verify) that might have scaled the group, read
/// for what it says: a failover's whose journal a writer of the state
/// broke, or a forgery; either way the owner is in doubt, and a group in
/// doubt is kept.
pub async fn scalers_since(
    store: &dyn JournalStore,
    since: DateTime<Utc>,
    steps: &[StepName],
    region: &str,
    except: &str,
) -> Later {
    let from = earliest(since).format("%Y%m%dT%H%M%SZ").to_string();
    // As every reader of runs reads them: with run keys listed, a journal
    // a writer of the state forged is left out (and named).
    let read = crate::journal::runs::read_runs(store, |id| {
        id != except && id.get(..16).is_some_and(|t| t >= from.as_str())
    })
    .await;
    let read = match read {
        Ok(read) => read,
        Err(e) => return Later::Unreadable(e.to_string()),
    };
    if let Some(line) = read.left_out_line() {
        tracing::warn!("capacity owner: {line}");
    }
    for (id, why) in &read.left_out {
        let said = crate::journal::runs::read_leniently(store, id).await;
        let may_scale = match &said {
            Ok(records) => may_have_scaled(records, steps, region),
            Err(crate::journal::JournalError::NotFound { .. }) => false,
            Err(_) => true,
        };
        if may_scale {
            return Later::Unreadable(format!(
                "run {id}, started since the drill, does not verify ({why}) and may have scaled the group"
            ));
        }
    }
    let mut found = Vec::new();
    for (_, records) in &read.runs {
        found.extend(scaler(records, steps, region));
    }
    Later::Read(found)
}

/// Whether a journal that does not verify, read for what it says, may have
/// scaled the group: unless every start it holds is shown to be of
/// something else. Every start is judged, not only the first, since a
/// writer of the state can put a start of its own in front of a real one;
/// a journal with no start that parses says nothing, and is in doubt.
fn may_have_scaled(records: &[Record], steps: &[StepName], region: &str) -> bool {
    let starts: Vec<usize> = (records.iter().enumerate())
        .filter(|(_, r)| matches!(r.event, Event::RunStarted { .. }))
        .map(|(i, _)| i)
        .collect();
    starts.is_empty()
        || starts
            .iter()
            .any(|i| scaler(&records[*i..], steps, region).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Temp;
    use crate::journal::event::{Outcome, StepRef};
    use crate::state::LockInfo;

    const DRILL: &str = "20261122T100000Z-payments-d1";
    const FAILOVER: &str = "20261122T100500Z-payments-f1";

    fn at(min: i64) -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(min)
    }

    fn rec(seq: u64, at: DateTime<Utc>, event: Event) -> Record {
        Record {
            seq,
            at,
            prev: "0".repeat(64),
            event,
            fence: Default::default(),
            late: None,
        }
    }

    fn step(id: &str) -> StepName {
        StepName::parse(id).unwrap()
    }

    fn started(run: &str, kind: RunKind, when: DateTime<Utc>, steps: &[&str]) -> Record {
        rec(
            0,
            when,
            Event::RunStarted {
                run_id: run.into(),
                kind,
                target: "us-east-1".into(),
                plans: Vec::new(),
                operator: None,
                host: "h".into(),
                pid: 1,
                flags: serde_json::json!({}),
                declared_at: None,
                nonce: None,
                steps: steps
                    .iter()
                    .map(|s| StepRef {
                        id: step(s),
                        deps: Vec::new(),
                        description: String::new(),
                    })
                    .collect(),
            },
        )
    }

    fn capacity() -> Temp {
        Temp::Capacity {
            region: "us-east-1".into(),
            group: "api-use1".into(),
        }
    }

    /// The drill's journal: started, its capacity journaled.
    fn drill_journal() -> Vec<Record> {
        vec![
            started(DRILL, RunKind::Drill, at(0), &["payments/drill-scale:api"]),
            rec(
                1,
                at(0),
                Event::DrillResource {
                    step: step("payments/drill-scale:api"),
                    resource: capacity(),
                },
            ),
        ]
    }

    fn lock_lost(preempted: bool) -> Record {
        rec(
            2,
            at(5),
            Event::LockLost {
                plan: "payments".into(),
                by_run: FAILOVER.into(),
                by_host: "h".into(),
                reason: "r".into(),
                token: 7,
                preempted,
            },
        )
    }

    fn info(run: &str) -> LockInfo {
        LockInfo {
            run_id: run.into(),
            host: "h".into(),
            pid: 1,
            started: at(0),
            pid_ns: None,
        }
    }

    /// The lock as its store shows it: held by `holder` (of `kind`), taken
    /// from `displaced`; `holder = None`: released.
    fn status(holder: Option<&str>, kind: RunKind, displaced: Option<&str>) -> LockSeen {
        LockSeen::Lost(Box::new(LockStatus {
            plan: "payments".into(),
            holder: holder.map(info),
            kind: Some(kind),
            acquired: None,
            renewed: None,
            lease_left_seconds: None,
            token: None,
            state: if holder.is_some() { "held" } else { "released" }.into(),
            displaced: displaced.map(info),
            reason: displaced.map(|_| "preempted: a failover takes precedence over a drill".into()),
            clocks: None,
        }))
    }

    fn scaler_of(run: &str, started: DateTime<Utc>, scaled: Option<DateTime<Utc>>) -> Scaler {
        Scaler {
            run_id: run.into(),
            kind: RunKind::Failover,
            started,
            scaled,
            refused: false,
        }
    }

    fn decide(lock: &LockSeen, own: &[Record], later: &Later) -> CapacityOwner {
        drill_capacity(DRILL, "payments", lock, own, later, at(0))
    }

    fn is_drill(o: &CapacityOwner) -> bool {
        matches!(o, CapacityOwner::Drill(_))
    }

    fn is_failover(o: &CapacityOwner) -> bool {
        matches!(o, CapacityOwner::Failover(_))
    }

    fn is_unknown(o: &CapacityOwner) -> bool {
        matches!(o, CapacityOwner::Unknown(_))
    }

    /// Regression: a preempted drill decided from the `lock_lost` record
    /// alone; when the taker could not write it, the drill lowered the
    /// group the failover now owned. The lease says who took it.
    #[test]
    fn regression_a_lease_taken_by_a_failover_keeps_the_capacity_without_lock_lost() {
        let own = drill_journal();
        let lock = status(Some(FAILOVER), RunKind::Failover, Some(DRILL));
        assert!(!needs_journals(DRILL, "payments", &lock, &own));
        let o = decide(&lock, &own, &Later::NotRead);
        assert!(is_failover(&o), "{o:?}");
        assert!(o.why().contains(FAILOVER), "{o:?}");
        // Also once the failover has ended and released the lease.
        let released = status(None, RunKind::Failover, Some(DRILL));
        assert!(is_failover(&decide(&released, &own, &Later::NotRead)));
    }

    #[test]
    fn a_lock_lost_record_alone_proves_a_preemption() {
        let mut own = drill_journal();
        own.push(lock_lost(true));
        let o = decide(&LockSeen::Unreadable("x".into()), &own, &Later::NotRead);
        assert!(is_failover(&o), "{o:?}");
        // A broken lock's record (not preempted) proves nothing by itself.
        let mut own = drill_journal();
        own.push(lock_lost(false));
        assert!(is_unknown(&decide(
            &LockSeen::Unreadable("x".into()),
            &own,
            &Later::NotRead
        )));
    }

    #[test]
    fn a_drill_that_held_its_lock_throughout_owns_the_group() {
        let own = drill_journal();
        let lock = LockSeen::Held { since_start: true };
        assert!(!needs_journals(DRILL, "payments", &lock, &own));
        assert!(is_drill(&decide(&lock, &own, &Later::NotRead)));
    }

    /// `drctl lock break` (the lease released, naming the drill) or a run
    /// that is no failover taking it: the drill returns what it raised.
    #[test]
    fn a_lock_broken_or_taken_by_no_failover_leaves_the_group_to_the_drill() {
        let own = drill_journal();
        let broken = status(None, RunKind::Drill, Some(DRILL));
        assert!(is_drill(&decide(&broken, &own, &Later::NotRead)));
        let by_restore = status(Some("r9"), RunKind::Restore, Some(DRILL));
        assert!(is_drill(&decide(&by_restore, &own, &Later::NotRead)));
    }

    #[test]
    fn an_unreadable_lock_keeps_the_capacity() {
        let own = drill_journal();
        let o = decide(&LockSeen::Unreadable("503".into()), &own, &Later::NotRead);
        assert!(is_unknown(&o), "{o:?}");
    }

    /// The lock says nothing of this drill (a local lock file removed when
    /// the failover ended, a lease released and taken by another, a resume
    /// that took a free lock): the journals decide.
    #[test]
    fn when_the_lock_cannot_tell_the_journals_decide_and_in_doubt_keep() {
        let own = drill_journal();
        let free = LockSeen::Lost(Box::new(LockStatus {
            state: "free".into(),
            holder: None,
            kind: None,
            displaced: None,
            reason: None,
            ..match status(None, RunKind::Drill, None) {
                LockSeen::Lost(s) => *s,
                _ => unreachable!(),
            }
        }));
        let resumed = LockSeen::Held { since_start: false };
        for lock in [&free, &resumed] {
            assert!(needs_journals(DRILL, "payments", lock, &own));
            let failover = Later::Read(vec![scaler_of(FAILOVER, at(5), None)]);
            assert!(is_failover(&decide(lock, &own, &failover)));
            assert!(is_drill(&decide(lock, &own, &Later::Read(Vec::new()))));
            assert!(is_unknown(&decide(
                lock,
                &own,
                &Later::Unreadable("list".into())
            )));
            assert!(is_unknown(&decide(lock, &own, &Later::NotRead)));
            // A failover refused at a gate changed nothing; one that ended
            // long before the drill is not a later one.
            let refused = Later::Read(vec![Scaler {
                refused: true,
                ..scaler_of(FAILOVER, at(5), None)
            }]);
            assert!(is_drill(&decide(lock, &own, &refused)));
            let earlier = Later::Read(vec![scaler_of(FAILOVER, at(-30), Some(at(-29)))]);
            assert!(is_drill(&decide(lock, &own, &earlier)));
        }
        // A failover holds the lock now (taken from someone else): without
        // its journal, in doubt.
        let other = status(Some(FAILOVER), RunKind::Failover, Some("someone"));
        assert!(is_unknown(&decide(&other, &own, &Later::Read(Vec::new()))));
    }

    #[test]
    fn a_group_plans_share_is_the_drills_only_when_it_is_for_every_plan() {
        let drill = || CapacityOwner::Drill("d".into());
        let failover = || CapacityOwner::Failover("f".into());
        let unknown = || CapacityOwner::Unknown("u".into());
        assert_eq!(of_every_plan(Vec::new()), None);
        assert_eq!(of_every_plan(vec![drill(), drill()]), Some(drill()));
        assert_eq!(of_every_plan(vec![drill(), unknown()]), Some(unknown()));
        assert_eq!(
            of_every_plan(vec![unknown(), failover(), drill()]),
            Some(failover())
        );
    }

    #[test]
    fn a_sweep_lowers_only_a_group_its_drill_journal_names_and_no_failover_scaled() {
        let none = Later::Read(Vec::new());
        let sweep = |drill: &DrillJournal, later: &Later| {
            swept_capacity(DRILL, ("us-east-1", "api-use1"), drill, later, false)
        };
        let journal = DrillJournal::Read(drill_journal());
        assert!(is_drill(&sweep(&journal, &none)));
        // No journal, or one that does not name the group: not lowered.
        assert!(is_unknown(&sweep(&DrillJournal::Missing, &none)));
        assert!(is_unknown(&sweep(
            &DrillJournal::Unreadable("x".into()),
            &none
        )));
        let other = DrillJournal::Read(drill_journal()[..1].to_vec());
        assert!(is_unknown(&sweep(&other, &none)));
        assert!(is_unknown(&swept_capacity(
            "20261122T100000Z-payments-zz",
            ("us-east-1", "api-use1"),
            &journal,
            &none,
            false
        )));
        // A group still marked by the drill (a kind `drill-raise` marks):
        // no failover has touched it, journal or none.
        let marked = |drill: &DrillJournal| {
            swept_capacity(DRILL, ("us-east-1", "api-use1"), drill, &none, true)
        };
        assert!(is_drill(&marked(&DrillJournal::Missing)));
        assert!(is_drill(&marked(&DrillJournal::Unreadable("x".into()))));
        // ... unless a failover of the group started since the drill, even
        // one that has not reached its step (it may be about to raise it).
        let starting = Later::Read(vec![scaler_of(FAILOVER, at(4), None)]);
        let o = swept_capacity(
            DRILL,
            ("us-east-1", "api-use1"),
            &DrillJournal::Missing,
            &starting,
            true,
        );
        assert!(is_unknown(&o) && o.why().contains(FAILOVER), "{o:?}");
        let unread = Later::Unreadable("x".into());
        let o = swept_capacity(
            DRILL,
            ("us-east-1", "api-use1"),
            &DrillJournal::Missing,
            &unread,
            true,
        );
        assert!(is_unknown(&o), "{o:?}");
        // A failover scaled it after the drill started: stale tags.
        let scaled = Later::Read(vec![scaler_of(FAILOVER, at(4), Some(at(5)))]);
        let o = sweep(&journal, &scaled);
        assert!(is_failover(&o) && o.why().contains(FAILOVER), "{o:?}");
        // One that started but never reached its scale step did not.
        let not_yet = Later::Read(vec![scaler_of(FAILOVER, at(4), None)]);
        assert!(is_drill(&sweep(&journal, &not_yet)));
        assert!(is_unknown(&sweep(&journal, &Later::Unreadable("x".into()))));
        // The drill's journal says a failover preempted it.
        let mut preempted = drill_journal();
        preempted.push(lock_lost(true));
        assert!(is_failover(&sweep(&DrillJournal::Read(preempted), &none)));
    }

    #[tokio::test]
    async fn scalers_since_reads_only_later_runs_that_scale_the_group() {
        let store = crate::journal::MemoryStore::new();
        let write = |run: &str, records: Vec<Record>| {
            let text: String = records
                .iter()
                .map(|r| serde_json::to_string(r).unwrap() + "\n")
                .collect();
            store.set_text(run, &text);
        };
        let scale = "payments/scale:api";
        write(DRILL, drill_journal());
        write(
            FAILOVER,
            vec![
                started(FAILOVER, RunKind::Failover, at(5), &[scale]),
                rec(
                    1,
                    at(6),
                    Event::StepStarted {
                        step: step(scale),
                        attempt: 1,
                    },
                ),
            ],
        );
        // Earlier than the drill, and one of another target's group.
        let old = "20261122T080000Z-payments-f0";
        write(
            old,
            vec![started(old, RunKind::Failover, at(-120), &[scale])],
        );
        let refused = "20261122T101000Z-payments-f2";
        write(
            refused,
            vec![
                started(refused, RunKind::Failover, at(10), &[scale]),
                rec(
                    1,
                    at(10),
                    Event::RunFinished {
                        outcome: Outcome::Refused,
                        summary: serde_json::json!({}),
                    },
                ),
            ],
        );
        let unrelated = "20261122T101500Z-orders-f3";
        write(
            unrelated,
            vec![started(
                unrelated,
                RunKind::Failover,
                at(15),
                &["orders/scale:web"],
            )],
        );
        let Later::Read(found) =
            scalers_since(&store, at(0), &[step(scale)], "us-east-1", DRILL).await
        else {
            panic!("readable")
        };
        let runs: Vec<(&str, bool, Option<DateTime<Utc>>)> = found
            .iter()
            .map(|s| (s.run_id.as_str(), s.refused, s.scaled))
            .collect();
        assert_eq!(
            runs,
            vec![(FAILOVER, false, Some(at(6))), (refused, true, None)]
        );
        // Another region's group is not this one.
        let Later::Read(none) =
            scalers_since(&store, at(0), &[step(scale)], "us-west-2", DRILL).await
        else {
            panic!("readable")
        };
        assert!(none.is_empty());
    }

    /// Issue 39, then issue 74 (attack 3): with run keys listed, a failover
    /// journal that does not verify (forged, its chain correct and
    /// unsigned; or a real one a writer of the state broke) decides nothing
    /// for the drill: when it might have scaled the group, the owner is in
    /// doubt and the group is kept; one of another group is left out; a
    /// signed failover is found.
    #[tokio::test]
    async fn an_unverified_failover_of_the_group_puts_its_owner_in_doubt() {
        use crate::journal::{Journal, Keyed, MemoryStore, RunKeys};
        use std::sync::Arc;
        let mem = Arc::new(MemoryStore::new());
        let key = crate::sign::SecretKey::generate();
        let keys = RunKeys::new(Some(key.clone()), vec![key.public()]);
        let keyed: Arc<dyn JournalStore> = Arc::new(Keyed::new(mem.clone(), keys));
        let plain: Arc<dyn JournalStore> = mem.clone();
        let scale = "payments/scale:api";
        let write = |store: Arc<dyn JournalStore>, run: &'static str, steps: &'static str| async move {
            let mut j = Journal::create(store, run).await.unwrap();
            let begun = started(run, RunKind::Failover, at(5), &[steps]);
            j.append(begun.event).await.unwrap();
            let attempt = Event::StepStarted {
                step: step(steps),
                attempt: 1,
            };
            j.append(attempt).await.unwrap();
            j.flush().await.unwrap();
        };
        let steps = [step(scale)];
        let owners = || scalers_since(keyed.as_ref(), at(0), &steps, "us-east-1", DRILL);
        write(
            plain.clone(),
            "20261122T100400Z-payments-eeee",
            "payments/scale:web",
        )
        .await;
        assert_eq!(owners().await, Later::Read(Vec::new()), "another group's");
        let signed = "20261122T100600Z-payments-aaaa";
        write(keyed.clone(), signed, scale).await;
        let Later::Read(found) = owners().await else {
            panic!("readable")
        };
        let runs: Vec<&str> = found.iter().map(|s| s.run_id.as_str()).collect();
        assert_eq!(runs, [signed]);
        let forged = "20261122T100500Z-payments-ffff";
        write(plain.clone(), forged, scale).await;
        let Later::Unreadable(why) = owners().await else {
            panic!("in doubt")
        };
        assert!(why.contains(forged), "{why}");
        // A start of another group put in front of a real failover's
        // (review): every start is judged, and the owner stays in doubt.
        let fronted = "20261122T100700Z-payments-bbbb";
        write(keyed.clone(), fronted, scale).await;
        let text = mem.text(fronted).unwrap();
        let fake = serde_json::to_string(&started(
            fronted,
            RunKind::Failover,
            at(7),
            &["payments/scale:web"],
        ))
        .unwrap();
        mem.set_text(fronted, &format!("{fake}\n{text}"));
        // (The forged one now of another group, so that the fronted one
        // is the one in doubt.)
        mem.set_text(forged, &format!("{fake}\n"));
        let Later::Unreadable(why) = owners().await else {
            panic!("in doubt")
        };
        assert!(why.contains(fronted), "{why}");
    }
}
