//! The capacity role's promise about drills, kept in one place for every
//! capacity kind: a drill never raises over another drill's raise that no
//! cleanup has returned, and a sweep finds such a raise on any kind.
//!
//! # Why one place
//!
//! A drill journals a raised group's restore point ([`Temp::raised_group`]
//! names the group whatever its kind) before it changes the group. Until a
//! cleanup of any run (the drill's own, a resume's, a sweep's) proves it
//! returned, the raise is still on the group. When each kind looked for
//! that itself, only EKS node groups did: a drill of a managed instance
//! group or a Cloud Run service raised over an earlier drill's leftovers
//! and journaled the raised size as its own restore point, so the group
//! never came back down, and a sweep could not find either. Here the
//! lookup goes through the plan's capacity role ([`Groups`]): its read,
//! its standby size and the name its journal records give it, for every
//! kind alike.
//!
//! The journals are read only when a standby group does not read at its
//! plan's standby size ([`Groups::at_standby`]): nothing else can carry a
//! raise still in effect, and a drill then costs no read of every journal.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Cx, Finding, StepFailure};
use crate::cloud::{CloudError, Clouds};
use crate::journal::event::{Event, Record, RunKind};
use crate::journal::{JournalError, JournalStore, RunFlags, Temp};
use crate::plan::Plan;
use crate::plan::kinds::{Groups, Shown};

/// A group a drill raised and no cleanup has returned yet, as the state's
/// journals tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftRaised {
    /// The drill.
    pub run: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// Its `--max-duration`, when it was given one.
    pub max_duration: Option<Duration>,
    /// The group and its restore point.
    pub temp: Temp,
}

/// Every group a drill of `journals` raised that no cleanup (the drill's
/// own, a resume's, a sweep's) has returned: the drills' restore points
/// less those a `cleanup` record of any run proved done (pure).
/// `journals`: each run's id and records.
pub fn left_raised_in(journals: &[(String, Vec<Record>)]) -> Vec<LeftRaised> {
    let returned: BTreeSet<&Temp> = (journals.iter().flat_map(|(_, records)| records))
        .filter_map(|r| match &r.event {
            Event::Cleanup {
                resource, result, ..
            } if result.done() => Some(resource),
            _ => None,
        })
        .collect();
    let mut out: Vec<LeftRaised> = Vec::new();
    for (run, records) in journals {
        let Some(Event::RunStarted {
            kind: RunKind::Drill,
            flags,
            ..
        }) = records.first().map(|r| &r.event)
        else {
            continue;
        };
        let started = records[0].at;
        let max_duration = RunFlags::of(flags)
            .ok()
            .and_then(|f| f.max_duration_seconds)
            .map(Duration::from_secs);
        for r in records {
            if let Event::DrillResource { resource: t, .. } = &r.event
                && t.raised_group().is_some()
                && !returned.contains(t)
                && !out.iter().any(|l| &l.temp == t && &l.run == run)
            {
                out.push(LeftRaised {
                    run: run.clone(),
                    started,
                    max_duration,
                    temp: t.clone(),
                });
            }
        }
    }
    out
}

/// Reads every journal of `store` but `except`'s (leniently: a line that
/// does not parse is skipped, this looks for evidence) and returns the
/// groups their drills left raised ([`left_raised_in`]). A journal that
/// vanished meanwhile is skipped.
pub async fn left_raised(
    store: &dyn JournalStore,
    except: &str,
) -> Result<Vec<LeftRaised>, JournalError> {
    let mut journals = Vec::new();
    for id in store.list().await? {
        if id == except {
            continue;
        }
        let text = match store.read(&id).await {
            Ok(t) => t,
            Err(JournalError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let records: Vec<Record> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        journals.push((id, records));
    }
    Ok(left_raised_in(&journals))
}

/// The capacity role of `plan`'s resource `id`, when it has one.
pub fn groups_of<'a>(plan: &'a Plan, id: &str) -> Option<&'a dyn Groups> {
    crate::plan::kinds::each(&plan.spec)
        .into_iter()
        .find(|r| r.id() == id)
        .and_then(|r| match r.shown() {
            Shown::Capacity(g) => Some(g),
            _ => None,
        })
}

/// Why a drill cannot tell whether another drill's raise is on a group.
#[derive(Debug, thiserror::Error)]
pub enum OtherDrillError {
    /// The group could not be read.
    #[error("{0}")]
    Cloud(#[from] CloudError),
    /// The journals could not be read.
    #[error("the journals cannot be read: {0}")]
    Journal(#[from] JournalError),
}

/// Another drill's raise still on resource `id`'s group in `region` (a
/// plan region, as a step's target names it), found through the capacity
/// role: `None` when the group reads at its standby size, is missing, or
/// no drill but `run` left a raise on it. One place for every capacity
/// kind's drill (its preflight and its step, before it journals anything).
pub async fn other_drill(
    clouds: &Clouds,
    journals: &dyn JournalStore,
    (plan, id): (&Plan, &str),
    region: &str,
    run: &str,
) -> Result<Option<LeftRaised>, OtherDrillError> {
    let Some(g) = groups_of(plan, id) else {
        return Ok(None);
    };
    let Some(read) = g.describe(clouds, region).await? else {
        return Ok(None);
    };
    if g.at_standby(&read) {
        return Ok(None);
    }
    let Some((at, name)) = g.raised_group(region) else {
        return Ok(None);
    };
    let left = left_raised(journals, run).await?;
    Ok(left
        .into_iter()
        .find(|l| l.temp.raised_group() == Some((at.as_str(), name.clone()))))
}

/// What a drill's refusal says of `other`'s raise on `what` in `region`.
pub fn refused(what: &str, region: &str, other: &LeftRaised) -> String {
    format!(
        "{what} in {region} is raised by drill {}, whose cleanup has not returned it yet",
        other.run
    )
}

/// What to do about `other`'s raise.
pub fn hint(other: &LeftRaised) -> String {
    format!(
        "`drctl runs resume {}` (or `drctl drill sweep`) returns what that drill left, then drill again",
        other.run
    )
}

/// [`other_drill`] of a drill step's context: its clouds, its journals
/// and its plan, leaving its own run out.
async fn other_drill_in(
    cx: &Cx<'_>,
    id: &str,
    region: &str,
) -> Result<Option<LeftRaised>, OtherDrillError> {
    let at = (cx.plan, id);
    other_drill(cx.clouds, cx.journal.as_ref(), at, region, cx.run_id).await
}

/// [`other_drill`] for a drill step's run: a read that fails refuses the
/// step before it journals or changes anything.
pub async fn other_drill_of(
    cx: &Cx<'_>,
    id: &str,
    region: &str,
    what: &str,
) -> Result<Option<LeftRaised>, StepFailure> {
    other_drill_in(cx, id, region).await.map_err(|e| {
        StepFailure::state(
            format!("whether another drill raised {what} in {region} cannot be read: {e}"),
            "nothing was changed; check the state (`drctl runs list`), then drill again",
            what,
            region,
        )
    })
}

/// [`other_drill`] for a drill's preflight: a finding that blocks when
/// another drill's raise is on the group (naming it and what returns it)
/// or when that cannot be read; `None` when the group is free.
pub async fn other_drill_finding(
    cx: &Cx<'_>,
    id: &str,
    region: &str,
    what: &str,
) -> Option<Finding> {
    match other_drill_in(cx, id, region).await {
        Ok(None) => None,
        Ok(Some(o)) => Some(Finding::blocks(
            what,
            region,
            "raised by another drill",
            format!("{}: {}", refused(what, region, &o), hint(&o)),
        )),
        Err(e) => Some(Finding::blocks(
            what,
            region,
            "unknown",
            format!("whether another drill raised it cannot be read: {e}"),
        )),
    }
}

/// A standby group of a plan that does not read at its standby size, as
/// a sweep looks for drills' raises: the plan, and the group as the
/// journals name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffStandby {
    /// The plan's name.
    pub plan: String,
    /// The region the group lives in, as the journals name it.
    pub region: String,
    /// The group's name, as the journals name it.
    pub group: String,
}

/// Every standby group of `plans` (every capacity kind, every region but
/// the plan's home) that does not read at its standby size; the reads
/// that failed beside them.
pub async fn off_standby(clouds: &Clouds, plans: &[Plan]) -> (Vec<OffStandby>, Vec<CloudError>) {
    let (mut off, mut errors) = (Vec::new(), Vec::new());
    for p in plans {
        for r in crate::plan::kinds::each(&p.spec) {
            let Shown::Capacity(g) = r.shown() else {
                continue;
            };
            for region in p.regions().iter().filter(|r| *r != p.home()) {
                let Some((at, group)) = g.raised_group(region) else {
                    continue;
                };
                match g.describe(clouds, region).await {
                    Ok(Some(read)) if !g.at_standby(&read) => off.push(OffStandby {
                        plan: p.name().to_string(),
                        region: at,
                        group,
                    }),
                    Ok(_) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    (off, errors)
}

/// Journal records for tests of what the journals leave raised.
#[cfg(test)]
pub(crate) mod testing {
    use crate::journal::event::{Event, Record, RunKind};

    /// A record of `event` at `at` (RFC 3339).
    pub fn record(at: &str, event: Event) -> Record {
        Record {
            seq: 0,
            at: at.parse().unwrap(),
            prev: "0".repeat(64),
            event,
            fence: Default::default(),
            late: None,
        }
    }

    /// Run `run`'s first record, at 03:00, with a 10-minute
    /// `--max-duration`.
    pub fn started(run: &str, kind: RunKind, target: &str) -> Record {
        record(
            "2026-11-25T03:00:00Z",
            Event::RunStarted {
                run_id: run.into(),
                kind,
                target: target.into(),
                plans: Vec::new(),
                operator: None,
                host: "h".into(),
                pid: 1,
                flags: serde_json::json!({"max_duration_seconds": 600}),
                declared_at: None,
                nonce: None,
                steps: Vec::new(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::record;
    use super::*;
    use crate::cloud::Capacity;
    use crate::journal::CleanupResult;
    use crate::journal::event::StepName;

    fn started(run: &str, kind: RunKind) -> Record {
        super::testing::started(run, kind, "us-east4")
    }

    fn temps() -> Vec<Temp> {
        vec![
            Temp::NodeCapacity {
                region: "us-west-2".into(),
                cluster: "c".into(),
                group: "g".into(),
                restore: Capacity {
                    min: 0,
                    desired: 0,
                    max: 2,
                },
            },
            Temp::MigSize {
                region: "us-east4".into(),
                project: "p".into(),
                group: "orders-mig".into(),
                autoscaler: None,
                restore: 1,
            },
            Temp::RunFloor {
                region: "us-east4".into(),
                project: "p".into(),
                service: "orders-api".into(),
                restore: 0,
            },
        ]
    }

    fn raised(t: &Temp) -> Record {
        record(
            "2026-11-25T03:00:01Z",
            Event::DrillResource {
                step: StepName::parse("orders/drill-mig:orders-mig").unwrap(),
                resource: t.clone(),
            },
        )
    }

    fn cleaned(t: &Temp, result: CleanupResult) -> Record {
        record(
            "2026-11-25T03:10:00Z",
            Event::Cleanup {
                resource: t.clone(),
                result,
                detail: String::new(),
            },
        )
    }

    /// Every capacity kind's raise is left raised until a cleanup of any
    /// run returns it; a failed cleanup proves nothing; a database a drill
    /// made is no raise; a failover's journal names none.
    #[test]
    fn every_capacity_kinds_raise_is_left_until_a_cleanup_of_any_run_returns_it() {
        let dead = "20261125T030000Z-orders-dead";
        for t in temps() {
            let journals = |rest: Vec<Record>, sweep: Vec<Record>| {
                let mut drill = vec![started(dead, RunKind::Drill), raised(&t)];
                drill.push(raised(&Temp::Database {
                    region: "us-east4".into(),
                    id: "drill-x".into(),
                }));
                drill.extend(rest);
                vec![
                    (dead.to_string(), drill),
                    ("sweep-1".to_string(), sweep),
                    (
                        "f1".to_string(),
                        vec![started("f1", RunKind::Failover), raised(&t)],
                    ),
                ]
            };
            let left = left_raised_in(&journals(vec![], vec![]));
            assert_eq!(left.len(), 1, "{t}: {left:?}");
            assert_eq!(
                (left[0].run.as_str(), left[0].max_duration),
                (dead, Some(Duration::from_secs(600)))
            );
            let failed = vec![cleaned(&t, CleanupResult::Failed)];
            assert_eq!(left_raised_in(&journals(failed, vec![])).len(), 1, "{t}");
            let restored = vec![cleaned(&t, CleanupResult::Restored)];
            assert!(
                left_raised_in(&journals(restored, vec![])).is_empty(),
                "{t}"
            );
            let swept = vec![
                started("sweep-1", RunKind::Sweep),
                cleaned(&t, CleanupResult::Restored),
            ];
            assert!(left_raised_in(&journals(vec![], swept)).is_empty(), "{t}");
        }
    }
}
