//! RTO and RPO achieved, computed from a run's journal only.
//!
//! Reports are computed from journals, never from memory, so `drctl runs show`
//! a month later gives the same figures the run printed. Every figure says what
//! it was measured from; what cannot be measured is `None` ("unknown"), never 0.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::event::{Event, Record};

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
    /// `succeeded`, `failed`, `started` (never finished) or `not-run`.
    pub state: String,
    /// First start.
    pub started: Option<DateTime<Utc>>,
    /// End (success or failure).
    pub ended: Option<DateTime<Utc>>,
    /// Error message, when failed.
    pub error: Option<String>,
}

/// Per-step timings in graph order.
pub fn timings(records: &[Record]) -> Vec<StepTiming> {
    let mut order: Vec<String> = Vec::new();
    let mut map: BTreeMap<String, StepTiming> = BTreeMap::new();
    for r in records {
        if let Event::RunStarted { steps, .. } = &r.event {
            for s in steps {
                order.push(s.id.clone());
                map.insert(
                    s.id.clone(),
                    StepTiming {
                        step: s.id.clone(),
                        state: "not-run".into(),
                        started: None,
                        ended: None,
                        error: None,
                    },
                );
            }
        }
    }
    for r in records {
        match &r.event {
            Event::StepStarted { step, .. } => {
                if let Some(t) = map.get_mut(step) {
                    t.started.get_or_insert(r.at);
                    t.state = "started".into();
                }
            }
            Event::StepSucceeded { step, .. } => {
                if let Some(t) = map.get_mut(step) {
                    t.ended = Some(r.at);
                    t.state = "succeeded".into();
                    t.error = None;
                }
            }
            Event::StepFailed { step, error } => {
                if let Some(t) = map.get_mut(step) {
                    t.ended = Some(r.at);
                    t.state = "failed".into();
                    t.error = Some(error.message.clone());
                }
            }
            _ => {}
        }
    }
    order.into_iter().filter_map(|id| map.remove(&id)).collect()
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
            && gate == "rpo"
            && let Some(dbs) = detail["databases"].as_array()
        {
            for d in dbs {
                gate_lag.insert(
                    (
                        plan.clone(),
                        d["resource"].as_str().unwrap_or_default().to_string(),
                    ),
                    d["lag_seconds"].as_f64(),
                );
            }
        }
    }
    let steps: Vec<String> = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { steps, .. } => Some(steps.iter().map(|s| s.id.clone()).collect()),
            _ => None,
        })
        .unwrap_or_default();

    plans
        .iter()
        .map(|p| {
            let (rto_t, rpo_t) = targets.get(&p.name).copied().unzip();
            let prefix = format!("{}/", p.name);
            let mine: Vec<&String> = steps.iter().filter(|s| s.starts_with(&prefix)).collect();
            let all_done = mine.iter().filter(|s| !s.ends_with("/evidence")).all(|s| outputs.contains_key(s.as_str()));
            // RTO: last DNS change in sync (checks precede DNS in the graph), else the last non-evidence step.
            let dns_end = mine
                .iter()
                .filter(|s| s.contains("/verify-dns:"))
                .filter_map(|s| outputs.get(s.as_str()))
                .map(|(o, at)| o["in_sync_at"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()).unwrap_or(*at))
                .max();
            let any_dns = mine.iter().any(|s| s.contains("/verify-dns:"));
            let last_end = mine.iter().filter(|s| !s.ends_with("/evidence")).filter_map(|s| outputs.get(s.as_str()).map(|(_, at)| *at)).max();
            let rto = if !all_done {
                Measure { seconds: None, target_seconds: rto_t, met: None, basis: "unknown: the run has not completed its recovery steps".into() }
            } else {
                let (end, what) = if any_dns { (dns_end, "the last DNS change INSYNC and read back") } else { (last_end, "the last recovery step's end") };
                let secs = end.map(|e| (e - origin).num_milliseconds() as f64 / 1000.0);
                Measure {
                    seconds: secs,
                    target_seconds: rto_t,
                    met: secs.zip(rto_t).map(|(s, t)| s <= t as f64),
                    basis: format!("measured from {origin_label} ({origin}) to {what}"),
                }
            };

            // RPO: worst data-loss window over the plan's databases.
            let mut worst: Option<f64> = Some(0.0);
            let mut bases = Vec::new();
            let mut any_db = false;
            for s in &mine {
                let Some(res) = s.strip_prefix(&format!("{}/promote:", p.name)).or_else(|| s.strip_prefix(&format!("{}/restore:", p.name))) else { continue };
                any_db = true;
                let out = outputs.get(s.as_str()).map(|(o, _)| *o);
                let (value, basis) = if s.contains("/restore:") {
                    match out.and_then(|o| o["restore_point"].as_str()).and_then(|t| t.parse::<DateTime<Utc>>().ok()) {
                        Some(point) => (Some(((origin - point).num_milliseconds() as f64 / 1000.0).max(0.0)), format!("{res}: gap from restore point {point} to {origin_label}")),
                        None if out.is_none() => (None, format!("{res}: unknown (the restore has not completed)")),
                        None => (None, format!("{res}: unknown (no restore point reported)")),
                    }
                } else {
                    match out.and_then(|o| o["lag_seconds"].as_f64()) {
                        Some(l) => (Some(l), format!("{res}: ReplicaLag read just before promotion ({} datapoints)", out.and_then(|o| o["lag_datapoints"].as_u64()).unwrap_or(0))),
                        None => match gate_lag.get(&(p.name.clone(), res.to_string())).copied().flatten() {
                            Some(l) if out.is_some() => (Some(l), format!("{res}: ReplicaLag recorded by the RPO gate (the instance was already a primary when the step ran)")),
                            _ if out.is_none() => (None, format!("{res}: unknown (the promotion has not completed)")),
                            _ => (None, format!("{res}: unknown (no ReplicaLag datapoints at promotion)")),
                        },
                    }
                };
                bases.push(basis);
                worst = match (worst, value) {
                    (Some(w), Some(v)) => Some(w.max(v)),
                    _ => None,
                };
            }
            let rpo = if any_db {
                Measure { seconds: worst, target_seconds: rpo_t, met: worst.zip(rpo_t).map(|(s, t)| s <= t as f64), basis: bases.join("; ") }
            } else {
                Measure { seconds: None, target_seconds: rpo_t, met: None, basis: "not applicable: this run promoted or restored no database".into() }
            };
            PlanMeasure { plan: p.name.clone(), rto, rpo }
        })
        .collect()
}
