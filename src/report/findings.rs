//! Findings: what in a report needs someone's attention, each with its
//! severity, the run or plan it is about, an owner and what to do.
//!
//! Derived from the report's rows alone (so from journals only), in one
//! place, so that the Markdown, HTML, JSON and JUnit renderings list the
//! same findings in the same order.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{PlanSection, RunRow};
use crate::journal::event::{Outcome, RunKind};

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Recovery did not work, evidence cannot be trusted, or something is
    /// left running: act now.
    High,
    /// Something is unproven or late.
    Medium,
    /// Worth knowing.
    Low,
}

/// What kind of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A journal does not verify (edited, truncated, reordered; with run
    /// keys listed, not signed by one of them).
    BrokenChain,
    /// A run halted on a failed step.
    FailedRun,
    /// A run has no end (still running, or its process died).
    UnfinishedRun,
    /// An RTO or RPO target was missed.
    MissedTarget,
    /// The RPO of a run that ended could not be measured.
    UnknownRpo,
    /// The RTO of a run that ended could not be measured.
    UnknownRto,
    /// An emergency run was not approved by its deadline.
    ApprovalOverdue,
    /// An emergency run was approved after its deadline.
    ApprovedLate,
    /// A drill could not remove everything it made.
    CleanupIncomplete,
    /// A run's evidence did not reach every destination.
    EvidenceIncomplete,
    /// A run recovered, but a cloud's side of the move on the old region
    /// (a Cloud SQL old primary's reconfiguration) was still under way.
    OldSidePending,
    /// The last `audit verify --evidence` found an evidence object missing
    /// or altered.
    EvidenceMismatch,
    /// No passing drill within the tier's interval.
    DrillOverdue,
    /// A notification of the run did not reach a sink.
    NotificationUndelivered,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// How urgent.
    pub severity: Severity,
    /// What kind.
    pub kind: Kind,
    /// The plan it is about, when one.
    pub plan: Option<String>,
    /// The run it is about, when one.
    pub run: Option<String>,
    /// What was found.
    pub message: String,
    /// Who should act: the plan's owner, else the run's operator.
    pub owner: Option<String>,
    /// What to do about it.
    pub action: String,
}

/// Every finding of `sections`, plus one per journal that cannot be read
/// as a run or that does not verify and has no row (`unreadable`: run id
/// and what is wrong), most severe first.
pub fn derive(
    sections: &[PlanSection],
    unreadable: &[(String, String)],
    now: DateTime<Utc>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in sections {
        for r in &s.runs {
            of_run(s, r, now, &mut out);
        }
        if s.cadence.overdue {
            out.push(Finding {
                severity: if s.tier == "critical" {
                    Severity::High
                } else {
                    Severity::Medium
                },
                kind: Kind::DrillOverdue,
                plan: Some(s.plan.clone()),
                run: None,
                message: s.cadence.note.clone().unwrap_or_else(|| {
                    format!("no passing drill of {} within its tier's interval", s.plan)
                }),
                owner: s.owner.clone(),
                action: format!(
                    "run `drctl drill --plan {} --to {}` (or check `drctl schedule list`)",
                    s.plan,
                    s.regions.get(1).map_or("STANDBY", String::as_str)
                ),
            });
        }
    }
    for (run, message) in unreadable {
        out.push(Finding {
            severity: Severity::High,
            kind: Kind::BrokenChain,
            plan: None,
            run: Some(run.clone()),
            message: message.clone(),
            owner: None,
            action: format!(
                "`drctl audit verify {run}`, and compare it with the run's evidence copies"
            ),
        });
    }
    out.sort_by(|a, b| {
        (a.severity, a.kind, &a.plan, &a.run).cmp(&(b.severity, b.kind, &b.plan, &b.run))
    });
    out
}

/// A finding of one run before its plan, run and owner are filled in.
struct Draft {
    severity: Severity,
    kind: Kind,
    message: String,
    action: String,
}

impl Draft {
    fn new(severity: Severity, kind: Kind, message: String, action: String) -> Self {
        Self {
            severity,
            kind,
            message,
            action,
        }
    }
}

/// One rule over a run whose journal verifies.
type Check = fn(&PlanSection, &RunRow, DateTime<Utc>) -> Vec<Draft>;

/// The rules over a run whose journal verifies, in the order their
/// findings are listed (before sorting by severity and kind).
const CHECKS: [Check; 9] = [
    failed_or_unfinished,
    missed_targets,
    unknown_figures,
    emergency,
    cleanup,
    evidence_mismatch,
    evidence_incomplete,
    old_side_pending,
    notification_undelivered,
];

/// Someone was not told: a notification still owed, or given up.
fn notification_undelivered(_: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    if r.notifications_undelivered.is_empty() {
        return Vec::new();
    }
    vec![Draft::new(
        Severity::Medium,
        Kind::NotificationUndelivered,
        format!(
            "{} notification(s) of {} not delivered: {}",
            r.notifications_undelivered.len(),
            r.run_id,
            r.notifications_undelivered.join("; ")
        ),
        format!(
            "check the sink (`drctl notify test`), then `drctl notify flush --run {}`",
            r.run_id
        ),
    )]
}

fn of_run(s: &PlanSection, r: &RunRow, now: DateTime<Utc>, out: &mut Vec<Finding>) {
    let owner = s.owner.clone().or_else(|| r.operator.clone());
    // Nothing else in a journal that does not verify can be believed.
    let drafts = if r.chain.ok {
        CHECKS.iter().flat_map(|check| check(s, r, now)).collect()
    } else {
        vec![broken_chain(r)]
    };
    out.extend(drafts.into_iter().map(|d| Finding {
        severity: d.severity,
        kind: d.kind,
        plan: Some(s.plan.clone()),
        run: Some(r.run_id.clone()),
        message: d.message,
        owner: owner.clone(),
        action: d.action,
    }));
}

/// `drctl runs resume RUN`, quoted.
fn resume(r: &RunRow) -> String {
    format!("`drctl runs resume {}`", r.run_id)
}

/// A step failed (the run halted, or a drill went on to its cleanup).
fn step_failed(r: &RunRow) -> bool {
    r.outcome == Outcome::Failed || !r.errors.is_empty()
}

fn broken_chain(r: &RunRow) -> Draft {
    Draft::new(
        Severity::High,
        Kind::BrokenChain,
        format!(
            "the journal of {} ({}) does not verify: {}; its figures are not used",
            r.run_id,
            r.kind,
            r.chain.problem.as_deref().unwrap_or("broken")
        ),
        format!(
            "`drctl audit verify {}`, and compare it with the run's evidence copies",
            r.run_id
        ),
    )
}

fn failed_or_unfinished(_: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    let real = !matches!(r.kind, RunKind::Drill | RunKind::Sweep);
    if step_failed(r) {
        return vec![Draft::new(
            if real {
                Severity::High
            } else {
                Severity::Medium
            },
            Kind::FailedRun,
            format!(
                "{} {} halted: {}",
                r.kind,
                r.run_id,
                r.errors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| r.verdict.to_string())
            ),
            if r.kind == RunKind::Drill {
                "fix the cause, then drill again".into()
            } else {
                format!("fix the cause, then {}", resume(r))
            },
        )];
    }
    if r.outcome != Outcome::Unfinished {
        return Vec::new();
    }
    vec![Draft::new(
        Severity::Medium,
        Kind::UnfinishedRun,
        format!(
            "{} {} has no end in its journal (still running, or its process died)",
            r.kind, r.run_id
        ),
        format!(
            "`drctl runs show {}`; if nobody runs it, {}",
            r.run_id,
            resume(r)
        ),
    )]
}

fn missed_targets(s: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    [("RTO", &r.rto), ("RPO", &r.rpo)]
        .into_iter()
        .filter(|(_, m)| m.met == Some(false))
        .map(|(what, m)| {
            Draft::new(
                Severity::High,
                Kind::MissedTarget,
                format!(
                    "{what} {:.1}s above the {} target of {}s ({} {})",
                    m.seconds.unwrap_or_default(),
                    s.tier,
                    m.target_seconds.unwrap_or_default(),
                    r.kind,
                    r.run_id
                ),
                if what == "RTO" {
                    format!(
                        "find which step took the time (`drctl runs show {}`) and fix it, or change the tier's target with whoever owns it",
                        r.run_id
                    )
                } else {
                    "find why the replica lagged (`drctl status` shows its lag now) and fix replication, or change the tier's target with whoever owns it".into()
                },
            )
        })
        .collect()
}

fn unknown_figures(_: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    let ended = matches!(
        r.outcome,
        Outcome::Succeeded
            | Outcome::EvidenceIncomplete
            | Outcome::Pending
            | Outcome::CleanupIncomplete
    );
    if !ended || step_failed(r) || matches!(r.kind, RunKind::Sweep | RunKind::Reprotect) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if r.rpo.seconds.is_none() && !r.rpo.basis.starts_with("not applicable") {
        out.push(Draft::new(
            Severity::Medium,
            Kind::UnknownRpo,
            format!("RPO of {} {} unknown: {}", r.kind, r.run_id, r.rpo.basis),
            "make sure replica lag is published (CloudWatch ReplicaLag) where the run reads it"
                .into(),
        ));
    }
    if r.rto.seconds.is_none() {
        out.push(Draft::new(
            Severity::Medium,
            Kind::UnknownRto,
            format!("RTO of {} {} unknown: {}", r.kind, r.run_id, r.rto.basis),
            format!("`drctl runs show {}`", r.run_id),
        ));
    }
    out
}

fn emergency(_: &PlanSection, r: &RunRow, now: DateTime<Utc>) -> Vec<Draft> {
    let Some(e) = r.emergency.as_ref().filter(|e| e.overdue) else {
        return Vec::new();
    };
    let deadline = e.approve_by.map_or("?".into(), |t| t.to_rfc3339());
    vec![match e.approved_at {
        None => Draft::new(
            Severity::High,
            Kind::ApprovalOverdue,
            format!(
                "emergency {} {} is not approved, and its deadline {deadline} has passed ({} late)",
                r.kind,
                r.run_id,
                e.approve_by
                    .map(|t| crate::plan::duration::format_duration(
                        (now - t).to_std().unwrap_or_default()
                    ))
                    .unwrap_or_default()
            ),
            format!(
                "`drctl runs approve {} --reason \"...\"` by someone allowed to",
                r.run_id
            ),
        ),
        Some(at) => Draft::new(
            Severity::Medium,
            Kind::ApprovedLate,
            format!(
                "emergency {} {} was approved at {} by {}, after its deadline {deadline}",
                r.kind,
                r.run_id,
                at.to_rfc3339(),
                e.approved_by.as_deref().unwrap_or("(unknown)"),
            ),
            "review why the approval was late".into(),
        ),
    }]
}

fn cleanup(_: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    // A drill's own report (in its evidence pack) is made before its
    // cleanup: pending there, not incomplete.
    let Some(c) = r
        .cleanup
        .as_ref()
        .filter(|c| !c.complete && r.outcome != Outcome::Unfinished && r.as_of.is_none())
    else {
        return Vec::new();
    };
    vec![Draft::new(
        Severity::High,
        Kind::CleanupIncomplete,
        format!(
            "drill {} left {} resource(s): {}",
            r.run_id,
            c.left.len(),
            c.left
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        format!(
            "{} finishes the cleanup (or `drctl drill sweep`)",
            resume(r)
        ),
    )]
}

fn evidence_mismatch(_: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    let Some(c) = r.evidence_check.as_ref().filter(|c| !c.problems.is_empty()) else {
        return Vec::new();
    };
    // An object the store did not give says nothing of its bytes: not a
    // sign of tampering, but evidence not proven either.
    if crate::evidence::only_unreadable(&c.problems) {
        return vec![Draft::new(
            Severity::Medium,
            Kind::EvidenceMismatch,
            format!(
                "the evidence of {} {} could not be read in full when verified {} (no sign of tampering: the store did not give the bytes): {}",
                r.kind,
                r.run_id,
                c.at.format("%Y-%m-%d %H:%M:%SZ"),
                c.problems
                    .iter()
                    .map(|p| p.object.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            format!(
                "`drctl audit verify --evidence {}` again; if an object stays unreadable, read it with another client and compare it with its manifest",
                r.run_id
            ),
        )];
    }
    vec![Draft::new(
        Severity::High,
        Kind::EvidenceMismatch,
        format!(
            "the evidence of {} {} does not match (verified {}{}): {}",
            r.kind,
            r.run_id,
            c.at.format("%Y-%m-%d %H:%M:%SZ"),
            c.by.as_ref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default(),
            c.problems
                .iter()
                .map(|p| format!("{}: {}", p.object, p.problem))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        format!(
            "`drctl audit verify --evidence {}` names each object now; restore it from another destination's copy (the manifests hold every digest) and find who changed it (the bucket's access logs)",
            r.run_id
        ),
    )]
}

fn old_side_pending(_: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    if r.outcome != Outcome::Pending {
        return Vec::new();
    }
    vec![Draft::new(
        Severity::Low,
        Kind::OldSidePending,
        format!(
            "{} recovered, but a cloud's side of the move on the old region was still under way when it ended: {}",
            r.run_id,
            r.warnings.join("; ")
        ),
        format!(
            "{} follows it once that region answers; `drctl reprotect` waits for it",
            resume(r)
        ),
    )]
}

fn evidence_incomplete(_: &PlanSection, r: &RunRow, _: DateTime<Utc>) -> Vec<Draft> {
    if r.outcome != Outcome::EvidenceIncomplete {
        return Vec::new();
    }
    vec![Draft::new(
        Severity::Medium,
        Kind::EvidenceIncomplete,
        format!(
            "the evidence of {} did not reach every destination: {}",
            r.run_id,
            r.warnings.join("; ")
        ),
        format!("{} writes the missing copies", resume(r)),
    )]
}
