//! What the journals say that `drctl watch` needs: where each plan serves
//! now, the run that put it there and how long that took, and how many
//! failovers watch itself started lately (its velocity cap). Pure functions
//! of records, like the rest of the read model: every observer that reads
//! the same shared state reaches the same answers, which is what makes an
//! outage *episode* a name they all agree on.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::journal::event::{Event, Outcome, Record, RunKind};
use crate::journal::payload::RunFlags;
use crate::journal::watch::{WatchDecision, WatchFact, WatchOrigin};

/// A failover or failback of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// The run.
    pub run_id: String,
    /// Failover or failback.
    pub kind: RunKind,
    /// Where it moved the plan.
    pub target: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub ended: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: Outcome,
    /// How `drctl watch` started it, if it did.
    pub watch: Option<WatchOrigin>,
}

impl Switch {
    /// How long it took, from the declared disaster (or its start) to its end.
    pub fn took(&self, declared: Option<DateTime<Utc>>) -> Option<Duration> {
        let from = declared.unwrap_or(self.started).min(self.started);
        self.ended.and_then(|e| (e - from).to_std().ok())
    }
}

/// Where a plan stands by its journals.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanHistory {
    /// The region it serves from: the target of its last succeeded
    /// failover or failback, else its home.
    pub active: String,
    /// That run (`None`: the plan never moved).
    pub last: Option<Switch>,
    /// A failover or failback of the plan that has not ended.
    pub running: Option<Switch>,
}

impl PlanHistory {
    /// The outage episode of the plan's active region: one name for every
    /// observer, the same until a run moves the plan.
    pub fn episode(&self, plan: &str) -> String {
        let since = self.last.as_ref().map_or("start", |s| s.run_id.as_str());
        format!("{plan}/{}/{since}", self.active)
    }
}

/// The switches of every run, in start order.
pub fn switches(runs: &[(String, Vec<Record>)]) -> Vec<(Vec<String>, Switch)> {
    let mut out: Vec<(Vec<String>, Switch)> = runs
        .iter()
        .filter_map(|(id, records)| {
            let first = records.first()?;
            let Event::RunStarted {
                kind,
                target,
                plans,
                flags,
                ..
            } = &first.event
            else {
                return None;
            };
            if !matches!(kind, RunKind::Failover | RunKind::Failback) {
                return None;
            }
            let end = records.iter().rev().find_map(|r| match &r.event {
                Event::RunFinished { outcome, .. } => Some((r.at, *outcome)),
                _ => None,
            });
            let watch = RunFlags::of(flags).ok().and_then(|f| f.watch);
            Some((
                plans.iter().map(|p| p.name.clone()).collect(),
                Switch {
                    run_id: id.clone(),
                    kind: *kind,
                    target: target.clone(),
                    started: first.at,
                    ended: end.map(|e| e.0),
                    outcome: end.map_or(Outcome::Unfinished, |e| e.1),
                    watch,
                },
            ))
        })
        .collect();
    out.sort_by_key(|(_, s)| s.started);
    out
}

/// Where `plan` (home `home`) stands, from every run's switches.
pub fn history(plan: &str, home: &str, switches: &[(Vec<String>, Switch)]) -> PlanHistory {
    let mine = || {
        switches
            .iter()
            .filter(move |(plans, _)| plans.iter().any(|p| p == plan))
            .map(|(_, s)| s)
    };
    let last = mine().rfind(|s| s.outcome.succeeded()).cloned();
    let running = mine().rfind(|s| s.outcome == Outcome::Unfinished).cloned();
    PlanHistory {
        active: last
            .as_ref()
            .map_or_else(|| home.to_string(), |s| s.target.clone()),
        last,
        running,
    }
}

/// Failovers `drctl watch` started at or after `since`, across all plans.
pub fn started_by_watch(switches: &[(Vec<String>, Switch)], since: DateTime<Utc>) -> usize {
    switches
        .iter()
        .filter(|(_, s)| s.watch.is_some() && s.started >= since)
        .count()
}

/// One decision of a watcher, as its journal keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    /// When.
    pub at: DateTime<Utc>,
    /// The observer.
    pub observer: String,
    /// The plan.
    pub plan: String,
    /// The decision.
    pub decision: WatchDecision,
    /// Why.
    pub why: String,
    /// The run it started, if any.
    pub run_id: Option<String>,
}

/// Every decision in a watcher's journal, in order.
pub fn decisions(records: &[Record]) -> Vec<DecisionRow> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Watch {
                observer,
                plan,
                fact,
            } => match fact.as_ref() {
                WatchFact::Decided {
                    decision,
                    why,
                    run_id,
                    ..
                } => Some(DecisionRow {
                    at: r.at,
                    observer: observer.clone(),
                    plan: plan.clone(),
                    decision: *decision,
                    why: why.clone(),
                    run_id: run_id.clone(),
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::PlanRef;

    fn run(
        id: &str,
        kind: RunKind,
        target: &str,
        at: i64,
        outcome: Option<Outcome>,
    ) -> (String, Vec<Record>) {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let mut records = vec![Record {
            seq: 0,
            at: t(at),
            prev: String::new(),
            event: Event::RunStarted {
                run_id: id.into(),
                kind,
                target: target.into(),
                plans: vec![PlanRef {
                    name: "payments".into(),
                    digest: String::new(),
                }],
                operator: None,
                host: "h".into(),
                pid: 1,
                flags: serde_json::json!({"mode": "failover"}),
                declared_at: None,
                steps: vec![],
            },
            fence: Default::default(),
        }];
        if let Some(o) = outcome {
            records.push(Record {
                seq: 1,
                at: t(at + 60),
                prev: String::new(),
                event: Event::RunFinished {
                    outcome: o,
                    summary: serde_json::json!({}),
                },
                fence: Default::default(),
            });
        }
        (id.into(), records)
    }

    #[test]
    fn the_active_region_is_the_last_succeeded_switch() {
        let runs = vec![
            run(
                "a",
                RunKind::Failover,
                "us-east-1",
                100,
                Some(Outcome::Succeeded),
            ),
            run(
                "b",
                RunKind::Failback,
                "us-west-2",
                200,
                Some(Outcome::Failed),
            ),
            run(
                "c",
                RunKind::Drill,
                "us-east-1",
                300,
                Some(Outcome::Succeeded),
            ),
        ];
        let h = history("payments", "us-west-2", &switches(&runs));
        assert_eq!(h.active, "us-east-1");
        assert_eq!(h.last.as_ref().unwrap().run_id, "a");
        assert_eq!(h.episode("payments"), "payments/us-east-1/a");
        assert_eq!(h.last.unwrap().took(None), Some(Duration::from_secs(60)));
        let none = history("payments", "us-west-2", &[]);
        assert_eq!(none.episode("payments"), "payments/us-west-2/start");
    }

    #[test]
    fn an_unended_switch_is_running() {
        let runs = vec![run("a", RunKind::Failover, "us-east-1", 100, None)];
        let h = history("payments", "us-west-2", &switches(&runs));
        assert_eq!(h.active, "us-west-2");
        assert_eq!(h.running.unwrap().run_id, "a");
    }
}
