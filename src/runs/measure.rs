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

/// One measured figure against its target.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Measure {
    /// Seconds achieved; `None` = unknown.
    pub seconds: Option<f64>,
    /// Tier target in seconds.
    pub target_seconds: Option<u64>,
    /// Whether the target was met; `None` when unknown.
    pub met: Option<bool>,
    /// What the figure was measured from.
    pub basis: String,
}

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
            Event::RunStarted { steps, .. } => Some(steps.iter().map(|s| s.id.clone()).collect()),
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

/// Measures each plan of a run from its journal.
/// `targets` maps plan name → (RTO, RPO) targets in seconds.
pub fn measure(records: &[Record], targets: &BTreeMap<String, (u64, u64)>) -> Vec<PlanMeasure> {
    let Some((start_at, declared, plans)) = records.iter().find_map(|r| match &r.event {
        Event::RunStarted {
            declared_at, plans, ..
        } => Some((r.at, *declared_at, plans.clone())),
        _ => None,
    }) else {
        return Vec::new();
    };
    let origin = declared.unwrap_or(start_at);
    let origin_label = if declared.is_some() {
        "--declared-at"
    } else {
        "run start"
    };
    let outputs: BTreeMap<&str, (&serde_json::Value, DateTime<Utc>)> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepSucceeded { step, outputs } => Some((step.as_str(), (outputs, r.at))),
            _ => None,
        })
        .collect();
    let mut gate_lag: BTreeMap<(String, String), Option<f64>> = BTreeMap::new();
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
    // The journaled graph, with each step's id parsed: what a step is (ends
    // the RTO clock, measures the RPO) is its kind's knowledge, not a
    // pattern in its id.
    let steps: Vec<(String, Option<StepId>)> = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { steps, .. } => Some(
                steps
                    .iter()
                    .map(|s| (s.id.clone(), s.id.parse::<StepId>().ok()))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    let ended_at = |id: &str| -> Option<DateTime<Utc>> {
        let (o, at) = outputs.get(id)?;
        Some(crate::steps::InSync::of(o).unwrap_or(*at))
    };

    plans
        .iter()
        .map(|p| {
            let (rto_t, rpo_t) = targets.get(&p.name).copied().unzip();
            let mine: Vec<(&str, &StepId)> = steps
                .iter()
                .filter_map(|(raw, id)| {
                    id.as_ref()
                        .filter(|i| i.plan == p.name)
                        .map(|i| (raw.as_str(), i))
                })
                .collect();
            let recovery: Vec<&str> = mine
                .iter()
                .filter(|(_, i)| i.kind.traits().recovery)
                .map(|(r, _)| *r)
                .collect();
            let all_done = recovery.iter().all(|s| outputs.contains_key(s));
            // RTO: the last step that ends the clock (DNS in effect, read
            // back; checks precede it in the graph), else the last recovery step.
            let clock: Vec<&str> = mine
                .iter()
                .filter(|(_, i)| i.kind.traits().ends_rto)
                .map(|(r, _)| *r)
                .collect();
            let rto = if !all_done {
                Measure {
                    seconds: None,
                    target_seconds: rto_t,
                    met: None,
                    basis: "unknown: the run has not completed its recovery steps".into(),
                }
            } else {
                let (end, what) = if clock.is_empty() {
                    (
                        recovery
                            .iter()
                            .filter_map(|s| outputs.get(s).map(|(_, at)| *at))
                            .max(),
                        "the last recovery step's end",
                    )
                } else {
                    (
                        clock.iter().filter_map(|s| ended_at(s)).max(),
                        "the last DNS change INSYNC and read back",
                    )
                };
                let secs = end.map(|e| (e - origin).num_milliseconds() as f64 / 1000.0);
                Measure {
                    seconds: secs,
                    target_seconds: rto_t,
                    met: secs.zip(rto_t).map(|(s, t)| s <= t as f64),
                    basis: format!("measured from {origin_label} ({origin}) to {what}"),
                }
            };

            // RPO: worst data-loss window over the plan's databases, each
            // read the way its step's kind says.
            let mut worst: Option<f64> = Some(0.0);
            let mut bases = Vec::new();
            let mut any_db = false;
            for (raw, id) in &mine {
                let Some(read) = id.kind.traits().rpo else {
                    continue;
                };
                any_db = true;
                let res = id.subject.as_deref().unwrap_or_default();
                let out = outputs.get(raw).map(|(o, _)| *o);
                let lag = gate_lag
                    .get(&(p.name.clone(), res.to_string()))
                    .copied()
                    .flatten();
                let (value, basis) = read(res, out, lag, origin, origin_label);
                bases.push(basis);
                worst = match (worst, value) {
                    (Some(w), Some(v)) => Some(w.max(v)),
                    _ => None,
                };
            }
            let rpo = if any_db {
                Measure {
                    seconds: worst,
                    target_seconds: rpo_t,
                    met: worst.zip(rpo_t).map(|(s, t)| s <= t as f64),
                    basis: bases.join("; "),
                }
            } else {
                Measure {
                    seconds: None,
                    target_seconds: rpo_t,
                    met: None,
                    basis: "not applicable: this run promoted or restored no database".into(),
                }
            };
            PlanMeasure {
                plan: p.name.clone(),
                rto,
                rpo,
            }
        })
        .collect()
}
