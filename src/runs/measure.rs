//! RTO and RPO achieved, computed from a run's journal only.
//!
//! Reports are computed from journals, never from memory, so `drctl runs show`
//! a month later gives the same figures the run printed. Every figure says what
//! it was measured from; what cannot be measured is `None` ("unknown"), never 0.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::event::{Event, Record};
use crate::runs::replay::{StepState, replay};
use crate::steps::StepId;

pub use crate::journal::notice::Measure;

/// Each plan's RTO and RPO targets in seconds, by name: what
/// [`measure`] judges a run against.
pub fn targets(plans: &[crate::plan::Plan]) -> BTreeMap<String, (u64, u64)> {
    plans
        .iter()
        .map(|p| {
            (
                p.name().to_string(),
                (p.tier.rto.as_secs(), p.tier.rpo.as_secs()),
            )
        })
        .collect()
}

/// Measurements of one plan in a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanMeasure {
    /// Plan.
    pub plan: String,
    /// Recovery time achieved.
    pub rto: Measure,
    /// Recovery point achieved (data loss window).
    pub rpo: Measure,
    /// What its steps restored from backups (a drill's: a restore test).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<crate::steps::Restored>,
}

/// Timing of one step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepTiming {
    /// Step id.
    pub step: String,
    /// Where it stands.
    pub state: StepState,
    /// First start.
    pub started: Option<DateTime<Utc>>,
    /// End (success or failure).
    pub ended: Option<DateTime<Utc>>,
    /// Error message, when failed.
    pub error: Option<String>,
}

/// Per-step timings in graph order, read through [`replay`] (records after
/// an illegal one are not used).
pub fn timings(records: &[Record]) -> Vec<StepTiming> {
    let replayed = replay(records);
    let order: Vec<String> = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { steps, .. } => {
                Some(steps.iter().map(|s| s.id.to_string()).collect())
            }
            _ => None,
        })
        .unwrap_or_default();
    order
        .into_iter()
        .map(|id| {
            let s = replayed.steps.get(&id).cloned().unwrap_or_default();
            StepTiming {
                step: id,
                state: s.state,
                started: s.started,
                ended: s.ended,
                error: s.error.map(|e| e.message),
            }
        })
        .collect()
}

/// What measurement needs of a run's journal, read once.
struct RunFacts<'r> {
    /// Where the RTO clock starts, and what that instant is.
    origin: DateTime<Utc>,
    origin_label: &'static str,
    /// Each succeeded step's (latest) outputs and when it ended.
    outputs: BTreeMap<&'r str, (&'r serde_json::Value, DateTime<Utc>)>,
    /// The RPO gate's lag per (plan, database).
    gate_lag: BTreeMap<(String, String), Option<f64>>,
    /// The journaled graph, with each step's id parsed: what a step is
    /// (ends the RTO clock, measures the RPO) is its kind's knowledge, not
    /// a pattern in its id.
    steps: Vec<(String, StepId)>,
    /// Per plan, why its journaled graph cannot be read (a step of a kind
    /// this drctl does not know), naming the record: its figures are unknown.
    unreadable: BTreeMap<String, String>,
}

impl<'r> RunFacts<'r> {
    /// Reads the facts of a run; `None` without a start record. Also
    /// returns the run's plans.
    fn read(records: &'r [Record]) -> Option<(Self, Vec<crate::journal::PlanRef>)> {
        let (start, declared, plans, steps) = records.iter().find_map(|r| match &r.event {
            Event::RunStarted {
                declared_at,
                plans,
                steps,
                ..
            } => Some((r, *declared_at, plans.clone(), steps)),
            _ => None,
        })?;
        let (steps, unreadable) = parse_graph(start.seq, steps);
        let outputs = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::StepSucceeded { step, outputs } => Some((step.as_str(), (outputs, r.at))),
                _ => None,
            })
            .collect();
        let mut gate_lag = BTreeMap::new();
        for r in records {
            if let Event::Gate {
                plan, gate, detail, ..
            } = &r.event
                && *gate == crate::journal::GateName::Rpo
                && let Some(rpo) = crate::journal::RpoDetail::of(detail)
            {
                for d in rpo.databases() {
                    gate_lag.insert((plan.clone(), d.resource.clone()), d.lag_seconds);
                }
            }
        }
        let facts = Self {
            origin: declared.unwrap_or(start.at),
            origin_label: if declared.is_some() {
                "--declared-at"
            } else {
                "run start"
            },
            outputs,
            gate_lag,
            steps,
            unreadable,
        };
        Some((facts, plans))
    }

    /// The plan's steps: (journaled id, parsed id).
    fn of_plan(&self, plan: &str) -> Vec<(&str, &StepId)> {
        self.steps
            .iter()
            .filter(|(_, id)| id.plan == plan)
            .map(|(raw, id)| (raw.as_str(), id))
            .collect()
    }

    /// What the succeeded steps of `mine` restored from backups, each as
    /// its kind reads its outputs.
    fn restored(&self, mine: &[(&str, &StepId)]) -> Vec<crate::steps::Restored> {
        (mine.iter())
            .filter_map(|(raw, id)| {
                let read = id.kind.traits().restored?;
                read(self.outputs.get(raw)?.0)
            })
            .collect()
    }

    /// When step `id` ended the clock: its INSYNC time, else its end.
    fn ended_at(&self, id: &str) -> Option<DateTime<Utc>> {
        let (o, at) = self.outputs.get(id)?;
        Some(crate::steps::InSync::of(o).unwrap_or(*at))
    }

    /// The plan's RTO: to the last step that ends the clock (DNS in effect,
    /// read back; checks precede it in the graph), else the last recovery
    /// step; unknown until every recovery step has ended.
    fn rto_of(&self, mine: &[(&str, &StepId)], target: Option<u64>) -> Measure {
        let of = |pick: fn(&StepId) -> bool| -> Vec<&str> {
            mine.iter()
                .filter(|(_, i)| pick(i))
                .map(|(r, _)| *r)
                .collect()
        };
        let recovery = of(|i| i.kind.traits().recovery);
        let clock = of(|i| i.kind.traits().ends_rto());
        if !recovery.iter().all(|s| self.outputs.contains_key(s)) {
            return Measure {
                seconds: None,
                target_seconds: target,
                met: None,
                basis: "unknown: the run has not completed its recovery steps".into(),
            };
        }
        let (end, what, caveat) = if clock.is_empty() {
            (
                recovery
                    .iter()
                    .filter_map(|s| self.outputs.get(s).map(|(_, at)| *at))
                    .max(),
                "the last recovery step's end",
                None,
            )
        } else {
            // The clock's end is the last of its steps', said as that
            // step's kind says its end; what any of their outputs say of
            // an end not seen is said too.
            let steps = mine.iter().filter(|(s, _)| clock.contains(s));
            let ends = (steps.clone()).filter_map(|(s, i)| Some((self.ended_at(s)?, i)));
            let last = ends.max_by_key(|(at, _)| *at);
            let what =
                (last.and_then(|(_, i)| i.kind.traits().rto_end)).unwrap_or(crate::steps::INSYNC);
            let caveat = steps
                .filter_map(|(s, i)| i.kind.traits().rto_caveat?(self.outputs.get(s)?.0))
                .next();
            (last.map(|(at, _)| at), what, caveat)
        };
        let secs = end.map(|e| (e - self.origin).num_milliseconds() as f64 / 1000.0);
        let said = caveat.map_or_else(String::new, |c| format!("; {c}"));
        // An end not seen is a lower bound: over the target it missed it,
        // within it nothing is known.
        let met = secs
            .zip(target)
            .map(|(s, t)| s <= t as f64)
            .filter(|met| caveat.is_none() || !met);
        Measure {
            seconds: secs,
            target_seconds: target,
            met,
            basis: format!(
                "measured from {} ({}) to {what}{said}",
                self.origin_label, self.origin
            ),
        }
    }

    /// The plan's RPO: the worst data-loss window over its databases, each
    /// read the way its step's kind says; not applicable without one.
    fn rpo_of(&self, plan: &str, mine: &[(&str, &StepId)], target: Option<u64>) -> Measure {
        let mut worst: Option<f64> = Some(0.0);
        let mut bases = Vec::new();
        for (raw, id) in mine {
            let Some(read) = id.kind.traits().rpo else {
                continue;
            };
            let res = id.subject.as_deref().unwrap_or_default();
            let out = self.outputs.get(raw).map(|(o, _)| *o);
            let lag = self
                .gate_lag
                .get(&(plan.to_string(), res.to_string()))
                .copied()
                .flatten();
            let (value, basis) = read(res, out, lag, self.origin, self.origin_label);
            bases.push(basis);
            worst = match (worst, value) {
                (Some(w), Some(v)) => Some(w.max(v)),
                _ => None,
            };
        }
        if bases.is_empty() {
            return Measure {
                seconds: None,
                target_seconds: target,
                met: None,
                basis: "not applicable: this run promoted or restored no database".into(),
            };
        }
        Measure {
            seconds: worst,
            target_seconds: target,
            met: worst.zip(target).map(|(s, t)| s <= t as f64),
            basis: bases.join("; "),
        }
    }
}

/// The journaled graph (record `seq`) with each step's id read as a
/// [`StepId`]; a step of a kind this drctl does not know makes its plan's
/// graph unreadable, with a reason naming the record.
fn parse_graph(
    seq: u64,
    steps: &[crate::journal::StepRef],
) -> (Vec<(String, StepId)>, BTreeMap<String, String>) {
    let mut parsed = Vec::new();
    let mut unreadable = BTreeMap::new();
    for s in steps {
        match StepId::try_from(&s.id) {
            Ok(id) => parsed.push((s.id.to_string(), id)),
            Err(e) => {
                unreadable
                    .entry(s.id.plan().to_string())
                    .or_insert_with(|| format!("journal record #{seq} (run_started): {e}"));
            }
        }
    }
    (parsed, unreadable)
}

/// Measures each plan of a run from its journal.
/// `targets` maps plan name → (RTO, RPO) targets in seconds.
pub fn measure(records: &[Record], targets: &BTreeMap<String, (u64, u64)>) -> Vec<PlanMeasure> {
    let Some((facts, plans)) = RunFacts::read(records) else {
        return Vec::new();
    };
    plans
        .iter()
        .map(|p| {
            let (rto_t, rpo_t) = targets.get(&p.name).copied().unzip();
            let mine = facts.of_plan(&p.name);
            if let Some(why) = facts.unreadable.get(&p.name) {
                let unknown = |target_seconds| Measure {
                    seconds: None,
                    target_seconds,
                    met: None,
                    basis: format!("unknown: {why}"),
                };
                return PlanMeasure {
                    plan: p.name.clone(),
                    rto: unknown(rto_t),
                    rpo: unknown(rpo_t),
                    restored: Vec::new(),
                };
            }
            PlanMeasure {
                plan: p.name.clone(),
                rto: facts.rto_of(&mine, rto_t),
                rpo: facts.rpo_of(&p.name, &mine, rpo_t),
                restored: facts.restored(&mine),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::{PlanRef, RunKind, StepRef};

    /// Regression: a journaled step of a kind this drctl does not know was
    /// parsed with `.ok()` and silently left out of the measurement; its
    /// plan's figures are now unknown, saying which record and id.
    #[test]
    fn a_step_of_an_unknown_kind_makes_its_plan_unknown_naming_the_record() {
        let step = |id: &str| StepRef {
            id: id.into(),
            deps: Vec::new(),
            description: String::new(),
        };
        let start = Record {
            seq: 0,
            at: Utc::now(),
            prev: String::new(),
            event: Event::RunStarted {
                run_id: "r".into(),
                kind: RunKind::Failover,
                target: "us-west-2".into(),
                plans: vec![PlanRef {
                    name: "p".into(),
                    digest: String::new(),
                }],
                operator: None,
                host: "h".into(),
                pid: 1,
                flags: serde_json::Value::Null,
                declared_at: None,
                nonce: None,
                steps: vec![step("p/preflight"), step("p/teleport:db")],
            },
            fence: Default::default(),
            late: None,
        };
        let m = measure(&[start], &BTreeMap::from([("p".to_string(), (60, 5))]));
        assert_eq!(m.len(), 1);
        for x in [&m[0].rto, &m[0].rpo] {
            assert_eq!((x.seconds, x.met), (None, None));
            assert!(
                x.basis.contains("record #0") && x.basis.contains("unknown step kind `teleport`"),
                "{}",
                x.basis
            );
        }
    }
}
