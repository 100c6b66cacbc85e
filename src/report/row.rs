//! One run's row of the report: its outcome judged as of the report's
//! time, its measured RTO and RPO against the targets, its gates and
//! overrides, its verdict and what it owes (notifications, evidence).
//! Apart from the report's assembly (`mod.rs`), which only gathers rows.

use super::*;

/// The row of run `r` for `plan`; `running`: the run is making this report
/// itself (see [`of_running`]).
pub(super) fn row(
    r: &ReadRun<'_>,
    plan: &str,
    targets: &BTreeMap<String, (u64, u64)>,
    now: DateTime<Utc>,
    running: bool,
) -> RunRow {
    let records = &*judged_records(r, running);
    let first = &records[0];
    let Event::RunStarted {
        kind,
        target,
        operator,
        host,
        flags,
        declared_at,
        ..
    } = &first.event
    else {
        unreachable!("rows are made of runs that start with run_started")
    };
    let (outcome, as_of) = judged_outcome(records, running, now);
    let ended = ended_at(records, outcome, as_of.is_some());
    let report = crate::runs::report_from_records(&r.journal.run_id, records, targets, outcome);
    let measured = report.measures.iter().find(|m| m.plan == plan).cloned();
    let (rto, rpo) = row_measures(r, measured.as_ref(), targets.get(plan).copied());
    let verdict = row_verdict(r, (*kind, records, outcome), plan, measured.as_ref());
    let mine = |s: &&StepTiming| s.step.starts_with(&format!("{plan}/"));
    let steps: Vec<StepTiming> = report.steps.iter().filter(mine).cloned().collect();
    let gates = Gates::of(records, plan, now);
    let mut warnings = report.warnings.clone();
    warnings.extend(gates.warnings);
    let flags = crate::journal::RunFlags::of(flags).ok();
    let watch = (flags.as_ref().and_then(|f| f.watch.as_ref())).map(|origin| {
        let declared = declared_at.unwrap_or(first.at);
        crate::runs::watch::waterfall(origin, &steps, restored_at(declared, &rto))
    });
    let depth = (flags.as_ref().and_then(|f| f.drill_depth())).map(|d| d.as_str().to_string());
    RunRow {
        run_id: r.journal.run_id.clone(),
        kind: *kind,
        depth: (*kind == RunKind::Drill).then(|| depth.clone()).flatten(),
        schedule_slot: flags.and_then(|f| f.schedule_slot),
        started: first.at,
        declared_at: *declared_at,
        ended,
        duration_seconds: ended.map(|e| (e - first.at).num_milliseconds() as f64 / 1000.0),
        target: target.clone(),
        operator: operator.clone(),
        host: host.clone(),
        approvals: gates.approvals,
        emergency: gates.emergency,
        outcome,
        rto,
        rpo,
        verdict,
        errors: step_errors(&steps),
        warnings,
        // A run reporting on itself is still telling people: judged later.
        notifications_undelivered: if running {
            Vec::new()
        } else {
            undelivered(records)
        },
        cleanup: report.drill.as_ref().map(|d| d.cleanup.clone()),
        chain: r.chain.clone(),
        steps,
        // A run refused before anything changed has nothing to undo.
        rollback_scope: (outcome != Outcome::Refused)
            .then(|| rollback_scope(*kind, depth.as_deref()))
            .flatten(),
        as_of,
        evidence_check: EvidenceCheck::last(records, plan),
        watch,
        predicted_rto: None,
        verified_at_start: None,
    }
}

/// The records a row is judged from. The report a run makes of itself is
/// judged as the run stood when its evidence step began: that step,
/// running while the report is made, is left out of the view (not counted
/// as a step that never ran).
fn judged_records<'r>(r: &'r ReadRun<'_>, running: bool) -> std::borrow::Cow<'r, [Record]> {
    if running {
        std::borrow::Cow::Owned(before_evidence(&r.records))
    } else {
        std::borrow::Cow::Borrowed(&r.records)
    }
}

/// A row's verdict: judged from the run's records, or unknown when its
/// journal does not verify (its figures cannot be trusted).
fn row_verdict(
    r: &ReadRun<'_>,
    (kind, records, outcome): (RunKind, &[Record], Outcome),
    plan: &str,
    measured: Option<&crate::runs::measure::PlanMeasure>,
) -> Verdict {
    if r.chain.ok {
        return verdict(kind, records, outcome, plan, measured);
    }
    Verdict::Unknown(format!(
        "the journal does not verify ({}): its figures cannot be trusted",
        r.chain.problem.as_deref().unwrap_or("broken")
    ))
}

/// When service was restored: the measured RTO after the declaration,
/// when there is one.
fn restored_at(declared: DateTime<Utc>, rto: &Measure) -> Option<DateTime<Utc>> {
    rto.seconds
        .map(|secs| declared + chrono::Duration::milliseconds((secs * 1000.0) as i64))
}

/// Each notification of the run not delivered to a sink: still owed, or
/// given up after its retry schedule.
fn undelivered(records: &[Record]) -> Vec<String> {
    use crate::journal::notice::DeliveryResult as R;
    crate::runs::deliveries::deliveries(records)
        .into_iter()
        .filter(|d| d.result != Some(R::Delivered))
        .map(|d| {
            format!(
                "{} ({}) to {}: {} after {} attempt(s){}",
                d.kind,
                d.id,
                d.sink,
                if d.result == Some(R::GaveUp) {
                    "given up"
                } else {
                    "still owed"
                },
                d.attempts,
                if d.detail.is_empty() {
                    String::new()
                } else {
                    format!("; last: {}", d.detail)
                }
            )
        })
        .collect()
}

/// How the run of `records` ended, and for the report a run makes of
/// itself (`running`) how it stands: every step before evidence has ended,
/// so it is judged by them, and the second value says so.
fn judged_outcome(
    records: &[Record],
    running: bool,
    now: DateTime<Utc>,
) -> (Outcome, Option<String>) {
    let outcome = outcome_of(records);
    if !running || outcome != Outcome::Unfinished {
        return (outcome, None);
    }
    let failed = crate::runs::measure::timings(records)
        .iter()
        .any(|s| s.state == crate::runs::replay::StepState::Failed);
    let outcome = if failed {
        Outcome::Failed
    } else {
        Outcome::Succeeded
    };
    let as_of = format!(
        "made by the run itself at {}, while storing its evidence: the steps before evidence had ended; its final record comes after",
        now.format("%Y-%m-%d %H:%M:%S UTC")
    );
    (outcome, Some(as_of))
}

/// The run's end: its (last) run_finished record, not its last record (a
/// retroactive approval or an evidence verification comes later); none
/// while it runs (`as_of`: judged as it stands).
fn ended_at(records: &[Record], outcome: Outcome, as_of: bool) -> Option<DateTime<Utc>> {
    if outcome == Outcome::Unfinished || as_of {
        return None;
    }
    records.iter().rev().find_map(|l| match l.event {
        Event::RunFinished { .. } => Some(l.at),
        _ => None,
    })
}

/// A row's RTO and RPO: as measured when the chain verifies, else not
/// trusted; unknown when nothing measured them. `targets`: the plan's
/// (RTO, RPO) targets in seconds.
fn row_measures(
    r: &ReadRun<'_>,
    measured: Option<&crate::runs::measure::PlanMeasure>,
    targets: Option<(u64, u64)>,
) -> (Measure, Measure) {
    let (rto_t, rpo_t) = targets.unzip();
    let unmeasured = |target: Option<u64>, basis: String| Measure {
        seconds: None,
        target_seconds: target,
        met: None,
        basis,
    };
    match (measured, r.chain.ok) {
        (Some(m), true) => (m.rto.clone(), m.rpo.clone()),
        (_, false) => {
            let basis = format!(
                "not trusted: the journal does not verify ({})",
                r.chain.problem.as_deref().unwrap_or("broken")
            );
            (unmeasured(rto_t, basis.clone()), unmeasured(rpo_t, basis))
        }
        _ => {
            let basis = "unknown: nothing in the journal measures it".to_string();
            (unmeasured(rto_t, basis.clone()), unmeasured(rpo_t, basis))
        }
    }
}

/// Failed steps' errors, first line each.
fn step_errors(steps: &[StepTiming]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| {
            s.error
                .as_ref()
                .map(|e| format!("{}: {}", s.step, split_hint(e).0))
        })
        .collect()
}

/// What a run's gate decisions for one plan tell its row.
#[derive(Default)]
struct Gates {
    /// The approval gate's decisions, in order.
    approvals: Vec<Approval>,
    /// An emergency run's retroactive approval.
    emergency: Option<Emergency>,
    /// Gates overridden (RPO accepted, lock taken over).
    warnings: Vec<String>,
}

impl Gates {
    /// The gate decisions of `plan` in `records`, judged at `now`.
    fn of(records: &[Record], plan: &str, now: DateTime<Utc>) -> Self {
        let mut g = Self::default();
        for rec in records {
            let Event::Gate {
                plan: p,
                gate,
                decision,
                detail,
            } = &rec.event
            else {
                continue;
            };
            if p != plan {
                continue;
            }
            match gate {
                GateName::Approval => g.approval(rec.at, *decision, detail),
                GateName::Rpo if *decision == Decision::Override => {
                    g.warnings.push(rpo_override(detail))
                }
                GateName::Lock if *decision == Decision::Override => {
                    g.warnings.push(lock_override(detail))
                }
                _ => {}
            }
        }
        if let Some(e) = g.emergency.as_mut() {
            e.overdue = match (e.approve_by, e.approved_at) {
                (Some(by), Some(at)) => at > by,
                (Some(by), None) => now > by,
                (None, _) => false,
            };
        }
        g
    }

    /// One decision of the approval gate, at `at`.
    fn approval(&mut self, at: DateTime<Utc>, decision: Decision, detail: &serde_json::Value) {
        let d = ApprovalDetail::of(detail).unwrap_or_default();
        let by = d.approver().map(str::to_string);
        self.approvals.push(Approval {
            decision,
            at,
            required: d.required.unwrap_or(true),
            by: by.clone(),
            reason: d.reason.clone(),
            how: d.how.clone().or_else(|| d.why.clone()).or_else(|| {
                (decision == Decision::Retroactive).then(|| "drctl runs approve".into())
            }),
        });
        if d.emergency == Some(true) {
            self.emergency.get_or_insert(Emergency {
                approve_by: d.approve_by,
                approved_at: None,
                approved_by: None,
                overdue: false,
            });
        }
        if decision == Decision::Retroactive
            && let Some(e) = self.emergency.as_mut()
        {
            e.approved_at.get_or_insert(at);
            e.approved_by = e.approved_by.take().or(by);
        }
    }
}

/// The warning of an overridden RPO gate: the databases beyond the RPO.
fn rpo_override(detail: &serde_json::Value) -> String {
    let beyond: Vec<String> = RpoDetail::of(detail)
        .iter()
        .flat_map(|d| d.databases())
        .filter(|x| x.within_rpo != Some(true))
        .map(|x| {
            format!(
                "{} lag {}",
                x.resource,
                x.lag_seconds
                    .map_or("unknown".into(), |l| format!("{l:.0}s"))
            )
        })
        .collect();
    format!(
        "RPO gate overridden (--accept-data-loss): {}",
        beyond.join(", ")
    )
}

/// The warning of an overridden lock gate: whose lock, and why.
fn lock_override(detail: &serde_json::Value) -> String {
    let d = LockOverride::of(detail).unwrap_or_default();
    let holder = if d.previous_holder.run_id.is_empty() {
        "?"
    } else {
        &d.previous_holder.run_id
    };
    format!(
        "lock taken over from run {holder}{}",
        if d.preempted_drill {
            " (a drill, preempted)".to_string()
        } else {
            d.reason
                .map(|r| format!(" (--force-unlock: {r})"))
                .unwrap_or_default()
        }
    )
}

/// `records` without the evidence steps: their records, and their nodes in
/// the journaled graph (see [`of_running`]).
fn before_evidence(records: &[Record]) -> Vec<Record> {
    use crate::steps::KindName;
    let evidence = |id: &crate::journal::StepName| id.kind() == KindName::Evidence.as_str();
    records
        .iter()
        .filter(|r| match &r.event {
            Event::StepStarted { step, .. }
            | Event::StepSucceeded { step, .. }
            | Event::StepFailed { step, .. } => !evidence(step),
            _ => true,
        })
        .cloned()
        .map(|mut r| {
            if let Event::RunStarted { steps, .. } = &mut r.event {
                steps.retain(|s| !evidence(&s.id));
                for s in steps.iter_mut() {
                    s.deps.retain(|d| !evidence(d));
                }
            }
            r
        })
        .collect()
}

/// Why a refused run did not run, for `plan`: the gate of `plan` that
/// refused (when one did; else another plan's gate stopped the run) and the
/// run's reason, first line.
pub(super) fn refusal(records: &[Record], plan: &str) -> String {
    let gate = records.iter().find_map(|r| match &r.event {
        Event::Gate {
            plan: p,
            gate,
            decision: Decision::Refuse,
            ..
        } if p == plan => Some(*gate),
        _ => None,
    });
    let reason = records.iter().rev().find_map(|r| match &r.event {
        Event::RunFinished { summary, .. } => summary["reason"]
            .as_str()
            .map(|s| split_hint(s).0.to_string()),
        _ => None,
    });
    match (gate, reason) {
        (Some(g), Some(why)) => format!("the {g} gate refused: {why}"),
        (Some(g), None) => format!("the {g} gate refused"),
        (None, Some(why)) => why,
        (None, None) => "refused by a gate".into(),
    }
}
