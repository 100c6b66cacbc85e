//! The compliance controls a report maps its runs to: which run is evidence
//! for which control, and what is missing for each plan in scope.
//!
//! The controls are the ones auditors of DR ask about (SOC 2, ISO/IEC
//! 27001:2022, DORA, NIST SP 800-53, PCI DSS 4.0). Each is reduced to a
//! test drctl can decide from journals: "a passing test of every plan within
//! a year", "a measured RPO", "drills on a schedule". The mapping is an aid
//! to the auditor, not a certification: the wording of each requirement is
//! kept beside the test so that the reader can judge the reduction.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{PlanSection, RunRow, Window};
use crate::journal::event::RunKind;

/// Whether the journals give a control what it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every plan in scope has evidence.
    Evidenced,
    /// Some plan has none (see `missing`).
    Gap,
}

/// One control and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Control {
    /// The control's id in its framework.
    pub id: &'static str,
    /// The framework.
    pub framework: &'static str,
    /// What the control asks, in short.
    pub requirement: &'static str,
    /// How drctl decides it from journals.
    pub test: &'static str,
    /// Evidenced or gap.
    pub status: Status,
    /// The runs that are evidence for it.
    pub evidence: Vec<String>,
    /// What is missing, one sentence per plan.
    pub missing: Vec<String>,
}

fn tested(r: &RunRow) -> bool {
    matches!(
        r.kind,
        RunKind::Drill | RunKind::Failover | RunKind::Failback | RunKind::Restore
    ) && r.verdict.passed()
}

/// A control decided plan by plan: `evidence` picks a plan's runs that
/// count, `gap` says what is missing when none does.
fn per_plan(
    sections: &[PlanSection],
    evidence: impl Fn(&PlanSection) -> Vec<String>,
    gap: impl Fn(&PlanSection) -> String,
) -> (Status, Vec<String>, Vec<String>) {
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    for s in sections {
        let e = evidence(s);
        if e.is_empty() {
            missing.push(gap(s));
        }
        runs.extend(e);
    }
    runs.sort();
    runs.dedup();
    let status = if missing.is_empty() && !sections.is_empty() {
        Status::Evidenced
    } else {
        Status::Gap
    };
    (status, runs, missing)
}

/// Passing tests of `s` since `since`: in the window's rows, or its last
/// passing drill (which the cadence knows whatever the window).
fn passes_since(s: &PlanSection, since: DateTime<Utc>) -> Vec<String> {
    let mut out: Vec<String> = s
        .runs
        .iter()
        .filter(|r| tested(r) && r.started >= since)
        .map(|r| r.run_id.clone())
        .collect();
    if let Some(d) = &s.cadence.last_passing
        && d.started >= since
        && !out.contains(&d.run_id)
    {
        out.push(d.run_id.clone());
    }
    out
}

/// What a control's rules are judged against: the report's window, and
/// the start of "the last 365 days".
struct Period {
    window: Window,
    year: DateTime<Utc>,
}

/// One control as a row of rules: which runs of a plan are its evidence,
/// and what to say when a plan has none.
struct Rule {
    id: &'static str,
    framework: &'static str,
    requirement: &'static str,
    test: &'static str,
    evidence: fn(&PlanSection, &Period) -> Vec<String>,
    gap: fn(&PlanSection, &Period) -> String,
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The ids of `s`'s runs that `keep` accepts.
fn runs_where(s: &PlanSection, keep: impl Fn(&RunRow) -> bool) -> Vec<String> {
    s.runs
        .iter()
        .filter(|r| keep(r))
        .map(|r| r.run_id.clone())
        .collect()
}

/// Every control, in the order a report lists them.
const RULES: [Rule; 7] = [
    Rule {
        id: "A1.3",
        framework: "SOC 2 (2017 TSC)",
        requirement: "The entity tests recovery plan procedures supporting system recovery to meet its objectives.",
        test: "every plan has a passing drill, failover or restore in the report's window",
        evidence: |s, _| runs_where(s, tested),
        gap: |s, p| {
            format!(
                "no passing drill or failover of {} ({}) between {} and {}",
                s.plan,
                s.tier,
                day(p.window.from),
                day(p.window.to)
            )
        },
    },
    Rule {
        id: "A.5.30",
        framework: "ISO/IEC 27001:2022",
        requirement: "ICT readiness shall be planned, implemented, maintained and tested based on business continuity objectives.",
        test: "every plan has a passing drill within its tier's drill interval",
        evidence: |s, _| {
            if s.cadence.overdue {
                Vec::new()
            } else {
                s.cadence
                    .last_passing
                    .iter()
                    .map(|d| d.run_id.clone())
                    .collect()
            }
        },
        gap: |s, _| {
            format!(
                "{}: {}",
                s.plan,
                s.cadence
                    .note
                    .clone()
                    .unwrap_or_else(|| "no passing drill within the tier's interval".into())
            )
        },
    },
    Rule {
        id: "Art. 11(6)",
        framework: "DORA (EU) 2022/2554",
        requirement: "Financial entities shall test the ICT business continuity plans at least yearly.",
        test: "every plan has a passing test in the last 365 days",
        evidence: |s, p| passes_since(s, p.year),
        gap: |s, _| {
            format!(
                "no passing drill or failover of {} plan {} in the last 365 days",
                s.tier, s.plan
            )
        },
    },
    Rule {
        id: "Art. 12",
        framework: "DORA (EU) 2022/2554",
        requirement: "Backup policies and restoration and recovery procedures and methods, tested periodically.",
        test: "every plan with a database has a run whose RPO was measured in the window",
        evidence: |s, _| runs_where(s, |r| r.rpo.seconds.is_some() && r.chain.ok),
        gap: |s, _| {
            format!(
                "no measured RPO (data-loss window) for {} in the window",
                s.plan
            )
        },
    },
    Rule {
        id: "Art. 24-25",
        framework: "DORA (EU) 2022/2554",
        requirement: "A sound and comprehensive digital operational resilience testing programme, tests run on a schedule.",
        test: "every plan has a [drill] schedule and a scheduled drill ran in the window",
        evidence: |s, _| runs_where(s, |r| r.kind == RunKind::Drill && r.schedule_slot.is_some()),
        gap: |s, _| match &s.cadence.schedule {
            None => format!("{} has no [drill] schedule", s.plan),
            Some(cron) => format!(
                "no scheduled drill of {} ran in the window (schedule {cron})",
                s.plan
            ),
        },
    },
    Rule {
        id: "CP-4",
        framework: "NIST SP 800-53 Rev. 5",
        requirement: "Test the contingency plan to determine its effectiveness; review the results and take corrective action.",
        test: "every plan has a drill in the window (its result and findings are in this report)",
        evidence: |s, _| runs_where(s, |r| r.kind == RunKind::Drill && r.chain.ok),
        gap: |s, _| format!("no drill of {} in the window", s.plan),
    },
    Rule {
        id: "12.10.2",
        framework: "PCI DSS 4.0",
        requirement: "The security incident response plan is reviewed and tested at least once every 12 months.",
        test: "every plan has a passing test in the last 365 days",
        evidence: |s, p| passes_since(s, p.year),
        gap: |s, _| format!("no passing test of {} in the last 12 months", s.plan),
    },
];

/// Maps the report's plans to every control.
pub fn map(sections: &[PlanSection], window: Window, now: DateTime<Utc>) -> Vec<Control> {
    let period = Period {
        window,
        year: now - Duration::days(365),
    };
    RULES
        .iter()
        .map(|rule| {
            let (status, evidence, missing) = per_plan(
                sections,
                |s| (rule.evidence)(s, &period),
                |s| (rule.gap)(s, &period),
            );
            Control {
                id: rule.id,
                framework: rule.framework,
                requirement: rule.requirement,
                test: rule.test,
                status,
                evidence,
                missing,
            }
        })
        .collect()
}
