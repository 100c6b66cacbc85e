//! Which events a run's journal owes to people: a pure function of its
//! records.
//!
//! Each journal record that people must hear of (a run started, a step
//! failed, an approval is needed, the run ended, a lock was taken over,
//! evidence no longer matches) maps to one or two [`CloudEvent`]s whose id
//! is derived from the run and the record's position. Being pure and
//! derived, the mapping is used twice: when the engine appends a record
//! (the event is journaled right after it), and when a run is opened again
//! after a crash that fell between the two writes, so that no event is
//! ever lost and none gets a second id.

use std::collections::BTreeMap;

use crate::journal::notice::{
    CloudEvent, EventData, EventDetail, EventType, PlanFigures, PlanVerdict, RecordRef,
    SPEC_VERSION, Severity, event_id,
};
use crate::journal::{
    ApprovalDetail, Decision, Event, GateName, Outcome, Record, RunFlags, RunKind, StepError,
    StepName,
};

/// What the plans say that a journal does not: each plan's tier and its
/// RTO/RPO targets in seconds (from the loaded plans; a plan not loaded
/// here is reported without them).
#[derive(Debug, Clone, Default)]
pub struct PlanInfo {
    /// Plan → (tier name, RTO target s, RPO target s).
    pub plans: BTreeMap<String, (String, u64, u64)>,
}

impl PlanInfo {
    /// From loaded plans.
    pub fn of(plans: &[crate::plan::Plan]) -> Self {
        Self {
            plans: plans
                .iter()
                .map(|p| {
                    (
                        p.name().to_string(),
                        (
                            p.tier.name.clone(),
                            p.tier.rto.as_secs(),
                            p.tier.rpo.as_secs(),
                        ),
                    )
                })
                .collect(),
        }
    }

    fn targets(&self) -> BTreeMap<String, (u64, u64)> {
        (self.plans.iter())
            .map(|(n, (_, rto, rpo))| (n.clone(), (*rto, *rpo)))
            .collect()
    }

    /// The most demanding tier among these plans (the smallest RTO).
    fn tier_of(&self, names: &[String]) -> Option<String> {
        names
            .iter()
            .filter_map(|n| self.plans.get(n))
            .min_by_key(|(_, rto, _)| *rto)
            .map(|(t, _, _)| t.clone())
    }
}

/// The facts of a run's first record that every event repeats.
struct Run<'r> {
    run_id: &'r str,
    kind: RunKind,
    target: &'r str,
    plans: Vec<String>,
    operator: Option<&'r str>,
    host: &'r str,
    flags: Option<RunFlags>,
    steps: usize,
    declared_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl<'r> Run<'r> {
    fn read(records: &'r [Record]) -> Option<Self> {
        records.iter().find_map(|r| match &r.event {
            Event::RunStarted {
                run_id,
                kind,
                target,
                plans,
                operator,
                host,
                flags,
                steps,
                declared_at,
                ..
            } => Some(Run {
                run_id,
                kind: *kind,
                target,
                plans: plans.iter().map(|p| p.name.clone()).collect(),
                operator: operator.as_deref(),
                host,
                flags: RunFlags::of(flags).ok(),
                steps: steps.len(),
                declared_at: *declared_at,
            }),
            _ => None,
        })
    }

    /// A real move of production traffic (a failover or failback, not a
    /// drill, restore or reprotection).
    fn moves_traffic(&self) -> bool {
        matches!(self.kind, RunKind::Failover | RunKind::Failback)
    }

    /// How loud a failure or a needed approval is: critical when traffic
    /// moves, else a warning.
    fn loud(&self) -> Severity {
        if self.moves_traffic() {
            Severity::Critical
        } else {
            Severity::Warning
        }
    }

    fn mode(&self) -> String {
        match (self.flags.as_ref().and_then(|f| f.mode.as_ref()), self.kind) {
            (Some(crate::journal::RunMode::Drill { depth }), _) => {
                format!("{} drill", depth.as_str())
            }
            (_, kind) => kind.as_str().to_string(),
        }
    }
}

/// The events record `i` of a run's journal owes (none for most records).
/// `hash` is that record's line hash (the next record's `prev`).
pub fn for_record(records: &[Record], i: usize, hash: &str, info: &PlanInfo) -> Vec<CloudEvent> {
    let (Some(record), Some(run)) = (records.get(i), Run::read(records)) else {
        return Vec::new();
    };
    let built: Vec<Built> = match &record.event {
        Event::RunStarted { .. } => vec![started(&run)],
        Event::Gate {
            plan,
            gate: GateName::Approval,
            decision,
            detail,
        } => approval(&run, plan, *decision, detail)
            .into_iter()
            .collect(),
        Event::StepFailed { step, error } => vec![step_failed(&run, step, error)],
        Event::RunFinished { outcome, .. } => finished(&run, &records[..=i], *outcome, info),
        Event::LockLost {
            plan,
            by_run,
            by_host,
            reason,
            ..
        } => vec![lock_broken(plan, by_run, by_host, reason)],
        Event::EvidenceVerified { plans: checks, .. } => {
            mismatch(&run, checks).into_iter().collect()
        }
        _ => Vec::new(),
    };
    // A late fact (merged from beside the journal) is named by its own
    // hash; its seq is where it stands in the chain, which keeps its id stable.
    let at = RecordRef {
        seq: record.seq,
        hash: record
            .late
            .as_ref()
            .map_or(hash, |l| l.hash.as_str())
            .to_string(),
    };
    built
        .into_iter()
        .map(|b| cloud_event(&run, record, &at, info, b))
        .collect()
}

/// The CloudEvent of `built`, owed by `record` (named by `at`) of `run`.
fn cloud_event(
    run: &Run<'_>,
    record: &Record,
    at: &RecordRef,
    info: &PlanInfo,
    (kind, severity, summary, detail): Built,
) -> CloudEvent {
    CloudEvent {
        specversion: SPEC_VERSION.into(),
        id: event_id(run.run_id, record.seq, kind),
        source: format!("/drctl/runs/{}", run.run_id),
        kind,
        time: record.at,
        subject: run.plans.join(","),
        datacontenttype: "application/json".into(),
        data: EventData {
            run_id: Some(run.run_id.to_string()),
            run_kind: Some(run.kind.as_str().to_string()),
            plans: run.plans.clone(),
            tier: info.tier_of(&run.plans),
            target: Some(run.target.to_string()),
            operator: run.operator.map(str::to_string),
            severity,
            summary,
            record: Some(at.clone()),
            detail,
        },
    }
}

/// `run.step_failed`: which step, why, and the command that resumes the run.
fn step_failed(run: &Run<'_>, step: &StepName, error: &StepError) -> Built {
    (
        EventType::StepFailed,
        run.loud(),
        format!("step {step} failed: {}", error.summary()),
        EventDetail::StepFailed {
            step: step.to_string(),
            error: error.summary().to_string(),
            class: error.kind.as_str().to_string(),
            hint: error.hint().map(str::to_string),
            command: format!("drctl runs resume {}", run.run_id),
        },
    )
}

/// `lock.broken`: the lock of `plan` was taken over by another run.
fn lock_broken(plan: &str, by_run: &str, by_host: &str, reason: &str) -> Built {
    (
        EventType::LockBroken,
        Severity::Warning,
        format!("the lock of {plan} was taken over by run {by_run} on {by_host}: {reason}"),
        EventDetail::LockBroken {
            plan: plan.to_string(),
            by_run: by_run.to_string(),
            by_host: by_host.to_string(),
            reason: reason.to_string(),
        },
    )
}

/// `run.started`.
fn started(run: &Run<'_>) -> Built {
    (
        EventType::RunStarted,
        if run.moves_traffic() {
            Severity::Critical
        } else {
            Severity::Info
        },
        format!(
            "{} of {} to {} started",
            run.mode(),
            run.plans.join(", "),
            run.target
        ),
        EventDetail::Started {
            mode: run.mode(),
            declared_at: run.declared_at,
            steps: run.steps,
            host: run.host.to_string(),
        },
    )
}

/// `evidence.mismatch`, when a verification found a pack that no longer
/// matches.
fn mismatch(run: &Run<'_>, checks: &[crate::journal::PlanCheck]) -> Option<Built> {
    let problems: Vec<String> = checks
        .iter()
        .flat_map(|c| {
            c.destinations.iter().flat_map(move |d| {
                d.problems.iter().map(move |p| {
                    format!("{} {}: {} ({})", c.plan, d.destination, p.problem, p.object)
                })
            })
        })
        .collect();
    if problems.is_empty() {
        return None;
    }
    // Objects that could not be read say nothing of the bytes: told, but
    // not as the tampering a mismatch is.
    let all = (checks.iter()).flat_map(|c| c.destinations.iter().flat_map(|d| &d.problems));
    let (severity, summary) = match crate::journal::only_unreadable(all) {
        true => (
            Severity::Warning,
            format!(
                "the evidence of run {} could not be read in full when verified: {} object(s) unreadable (no sign of tampering; verify again)",
                run.run_id,
                problems.len()
            ),
        ),
        false => (
            Severity::Critical,
            format!(
                "the evidence of run {} no longer matches its journal: {} problem(s)",
                run.run_id,
                problems.len()
            ),
        ),
    };
    Some((
        EventType::EvidenceMismatch,
        severity,
        summary,
        EventDetail::EvidenceMismatch { problems },
    ))
}

/// An approval gate's record that asks for an approval: why, the exact
/// command that gives it, and the deadline of a retroactive approval.
fn approval(
    run: &Run<'_>,
    plan: &str,
    decision: Decision,
    detail: &serde_json::Value,
) -> Option<Built> {
    let d = ApprovalDetail::of(detail)?;
    let built = |why: String, command: String, approve_by| {
        (
            EventType::ApprovalNeeded,
            run.loud(),
            format!("{} of {plan} needs approval: {why}", run.mode()),
            EventDetail::ApprovalNeeded {
                plan: plan.to_string(),
                why,
                command,
                approve_by,
            },
        )
    };
    if d.emergency == Some(true) && decision == Decision::Override {
        return Some(built(
            "an emergency run goes on now and must be approved afterwards".into(),
            format!(
                "drctl runs approve {} --reason \"<why this failover was right>\"",
                run.run_id
            ),
            d.approve_by,
        ));
    }
    if decision == Decision::Refuse && d.approved == Some(false) {
        let verb = match run.kind {
            RunKind::Failback => "failback",
            RunKind::Drill => "drill",
            _ => "failover",
        };
        return Some(built(
            d.why
                .unwrap_or_else(|| format!("the {} tier requires approval", run.kind)),
            format!(
                "drctl {verb} --to {} --plan {plan} --approve \"<reason>\"",
                run.target
            ),
            None,
        ));
    }
    None
}

type Built = (EventType, Severity, String, EventDetail);

/// A finished run's events: `run.finished` with the figures achieved, and
/// a drill's `drill.verdict`.
fn finished(run: &Run<'_>, records: &[Record], outcome: Outcome, info: &PlanInfo) -> Vec<Built> {
    let measures = crate::runs::measure::measure(records, &info.targets());
    let severity = match outcome {
        o if o.succeeded() => Severity::Info,
        Outcome::Refused => Severity::Warning,
        _ if run.moves_traffic() => Severity::Critical,
        _ => Severity::Warning,
    };
    let figures: Vec<PlanFigures> = measures
        .iter()
        .map(|m| PlanFigures {
            plan: m.plan.clone(),
            rto: m.rto.clone(),
            rpo: m.rpo.clone(),
        })
        .collect();
    let rto_text = figures
        .iter()
        .map(|f| match f.rto.seconds {
            Some(s) => format!("{} RTO {s:.1}s", f.plan),
            None => format!("{} RTO unknown", f.plan),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = vec![(
        EventType::RunFinished,
        severity,
        format!(
            "{} of {} to {} {outcome}{}",
            run.mode(),
            run.plans.join(", "),
            run.target,
            if rto_text.is_empty() {
                String::new()
            } else {
                format!(" ({rto_text})")
            }
        ),
        EventDetail::Finished {
            outcome: outcome.as_str().to_string(),
            plans: figures,
        },
    )];
    if let Some(drill) = crate::runs::drill::summary(records, &measures, outcome) {
        let plans: Vec<PlanVerdict> = drill
            .verdicts
            .iter()
            .map(|v| {
                let text = v.verdict.to_string();
                let (verdict, reason) = match text.split_once(" (") {
                    Some((v, r)) => (v.to_string(), vec![r.trim_end_matches(')').to_string()]),
                    None => (text, Vec::new()),
                };
                PlanVerdict {
                    plan: v.plan.clone(),
                    verdict: verdict.to_ascii_lowercase(),
                    reasons: reason,
                }
            })
            .collect();
        let passed = drill.verdicts.iter().all(|v| v.verdict.passed());
        out.push((
            EventType::DrillVerdict,
            if passed {
                Severity::Info
            } else {
                Severity::Warning
            },
            format!(
                "{} drill of {}: {}",
                drill.depth,
                run.plans.join(", "),
                if passed { "PASS" } else { "FAIL" }
            ),
            EventDetail::DrillVerdict { passed, plans },
        ));
    }
    out
}

/// Every event a journal owes, in record order (`last_hash`: the hash of
/// the last record, which no later record names).
pub fn expected(records: &[Record], last_hash: &str, info: &PlanInfo) -> Vec<CloudEvent> {
    (0..records.len())
        .flat_map(|i| {
            let hash = records.get(i + 1).map_or(last_hash, |r| r.prev.as_str());
            for_record(records, i, hash, info)
        })
        .collect()
}

/// The id of the notice journal of a plan's overdue drill: one per plan and
/// due time, so the event is journaled (and sent) once however many
/// machines run `schedule`.
pub fn overdue_journal(plan: &str, due: Option<chrono::DateTime<chrono::Utc>>) -> String {
    match due {
        Some(d) => format!("overdue-{plan}-{}", d.format("%Y%m%dT%H%M%SZ")),
        None => format!("overdue-{plan}-never"),
    }
}

/// A notice about one plan that belongs to no run (an overdue drill, a
/// decision of `drctl watch`): the CloudEvent every sink receives, its id
/// from the notice journal that carries it (so a re-send keeps it).
#[derive(Debug, Clone)]
pub struct PlanNotice<'a> {
    /// The plan.
    pub plan: &'a crate::plan::Plan,
    /// The notice journal.
    pub journal: &'a str,
    /// `/drctl/schedule`, `/drctl/watch`.
    pub source: &'static str,
    /// The event type.
    pub kind: EventType,
    /// How loud.
    pub severity: Severity,
    /// Where SNS and EventBridge publish.
    pub target: Option<String>,
    /// A line for people.
    pub summary: String,
    /// The type's details.
    pub detail: EventDetail,
}

impl PlanNotice<'_> {
    /// The CloudEvent, at `now`.
    pub fn event(self, now: chrono::DateTime<chrono::Utc>) -> CloudEvent {
        let plan = self.plan.name().to_string();
        CloudEvent {
            specversion: SPEC_VERSION.into(),
            id: event_id(self.journal, 0, self.kind),
            source: self.source.into(),
            kind: self.kind,
            time: now,
            subject: plan.clone(),
            datacontenttype: "application/json".into(),
            data: EventData {
                run_id: None,
                run_kind: None,
                plans: vec![plan],
                tier: Some(self.plan.tier.name.clone()),
                target: self.target,
                operator: None,
                severity: self.severity,
                summary: self.summary,
                record: None,
                detail: self.detail,
            },
        }
    }
}

/// `schedule.overdue`: a plan has no passing drill within its tier's
/// interval (`last`: its last passing drill's start; `due`: when one was
/// due; `target`: where SNS and EventBridge publish, its first standby).
pub fn overdue(
    plan: &crate::plan::Plan,
    last: Option<chrono::DateTime<chrono::Utc>>,
    due: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    why: &str,
) -> CloudEvent {
    PlanNotice {
        plan,
        journal: &overdue_journal(plan.name(), due),
        source: "/drctl/schedule",
        kind: EventType::ScheduleOverdue,
        severity: Severity::Warning,
        target: plan.regions().get(1).cloned(),
        summary: format!("the drill of {} is overdue: {why}", plan.name()),
        detail: EventDetail::Overdue {
            plan: plan.name().to_string(),
            last_drill: last,
            due: due.unwrap_or(now),
        },
    }
    .event(now)
}
