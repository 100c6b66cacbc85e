//! A run as its journal tells it: outcome, steps and timings, RTO/RPO per
//! plan, gate decisions, warnings, a drill's verdicts and cleanup.
//!
//! The engine returns one of these at the end of a run and `runs show`
//! rebuilds the same from the journal alone, through the same function, so
//! the two can never disagree.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::journal::{ApprovalDetail, Decision, Event, GateName, Outcome, Record, RunKind};
use crate::plan::Plan;

use super::measure;

/// One gate decision of a run (or of a dry run, which journals nothing
/// and has no time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateRecord {
    /// The plan.
    pub plan: String,
    /// Which gate.
    pub gate: GateName,
    /// What it decided.
    pub decision: Decision,
    /// What it read, as journaled (typed by [`crate::journal::RpoDetail`],
    /// [`ApprovalDetail`], [`crate::journal::LockOverride`]).
    pub detail: Value,
    /// When (absent in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Run id.
    pub run_id: String,
    /// What kind of run (absent only for a journal without a start).
    pub kind: Option<RunKind>,
    /// How it ended.
    pub outcome: Outcome,
    /// Target region.
    pub target: String,
    /// Steps and their timings.
    pub steps: Vec<measure::StepTiming>,
    /// RTO/RPO per plan.
    pub measures: Vec<measure::PlanMeasure>,
    /// Gate decisions.
    pub gates: Vec<GateRecord>,
    /// Command to continue a failed run.
    pub resume: Option<String>,
    /// Deadline for retroactive approval of an emergency run (absent once approved).
    pub approve_by: Option<DateTime<Utc>>,
    /// What the run left undone without failing (evidence a destination did
    /// not take), one sentence each.
    pub warnings: Vec<String>,
    /// A drill's verdicts and cleanup (drills only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<super::drill::DrillSummary>,
}

impl RunReport {
    /// Whether the run did what it was for: every step succeeded (evidence
    /// may still be incomplete, which is a warning, not a failure).
    pub fn succeeded(&self) -> bool {
        match &self.drill {
            // A drill succeeded when every plan passed and nothing is left.
            Some(d) => {
                self.outcome.succeeded()
                    && d.cleanup.complete
                    && d.verdicts.iter().all(|v| v.verdict.passed())
            }
            None => self.outcome.succeeded(),
        }
    }
}

/// Builds a report from a run's journal records.
pub fn build_report(
    run_id: &str,
    records: &[Record],
    plans: &[Plan],
    outcome: Outcome,
) -> RunReport {
    let targets = measure::targets(plans);
    report_from_records(run_id, records, &targets, outcome)
}

/// Builds a report from records alone (targets per plan name).
pub fn report_from_records(
    run_id: &str,
    records: &[Record],
    targets: &BTreeMap<String, (u64, u64)>,
    outcome: Outcome,
) -> RunReport {
    let (target, kind) = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { target, kind, .. } => Some((target.clone(), *kind)),
            _ => None,
        })
        .unzip();
    let gates: Vec<GateRecord> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Gate {
                plan,
                gate,
                decision,
                detail,
            } => Some(GateRecord {
                plan: plan.clone(),
                gate: *gate,
                decision: *decision,
                detail: detail.clone(),
                at: Some(r.at),
            }),
            _ => None,
        })
        .collect();
    let approved_later = gates.iter().any(|g| g.decision == Decision::Retroactive);
    let approve_by = gates
        .iter()
        .filter(|g| g.gate == GateName::Approval)
        .filter_map(|g| ApprovalDetail::of(&g.detail)?.approve_by)
        .min()
        .filter(|_| !approved_later);
    let steps = measure::timings(records);
    // The latest outputs of each step (a resume may have run it again).
    let mut latest: BTreeMap<&str, &Value> = BTreeMap::new();
    for r in records {
        if let Event::StepSucceeded { step, outputs } = &r.event {
            latest.insert(step.as_str(), outputs);
        }
    }
    let warnings = latest
        .iter()
        .flat_map(|(step, o)| crate::steps::step_warnings(step, o))
        .collect();
    let measures = measure::measure(records, targets);
    let drill = super::drill::summary(records, &measures, outcome);
    let resume = match &drill {
        // A drill resumes only to finish its cleanup.
        Some(d) => (outcome == Outcome::Unfinished || !d.cleanup.complete)
            .then(|| format!("drctl runs resume {run_id}")),
        None => outcome
            .resumable()
            .then(|| format!("drctl runs resume {run_id}")),
    };
    RunReport {
        warnings,
        drill,
        run_id: run_id.to_string(),
        kind,
        outcome,
        target: target.unwrap_or_default(),
        resume,
        measures,
        steps,
        gates,
        approve_by,
    }
}
