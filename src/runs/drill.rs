//! A drill read from its journal: what it left behind, its cleanup, and a
//! verdict per plan.
//!
//! Pure functions of records, so that `runs show`, the schedule, status and
//! reports judge a drill alike, from the journal alone, on any machine.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::journal::event::{Event, Record};
use crate::journal::{Cleaned, Temp};
use crate::steps::drill_names::manual_removal;

/// Every temporary resource a drill's journal names, in the order cleanup
/// removes them ([`Temp::removal_rank`]: records first, then health checks,
/// controls, databases, capacity).
pub fn journaled(records: &[Record]) -> Vec<Temp> {
    let mut out: Vec<Temp> = Vec::new();
    for r in records {
        if let Event::DrillResource { resource, .. } = &r.event
            && !out.contains(resource)
        {
            out.push(resource.clone());
        }
    }
    out.sort_by_key(Temp::removal_rank);
    out
}

/// What is left of a drill after its cleanup, and how long cleanup took.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanupSummary {
    /// Every resource the drill journaled is removed, restored or absent.
    pub complete: bool,
    /// Whether cleanup ran at all yet.
    pub ran: bool,
    /// Seconds from the drill's last step (or interruption) to the last
    /// cleanup record, measured from the journal; `None` before cleanup.
    pub seconds: Option<f64>,
    /// The last cleanup record of each resource.
    pub resources: Vec<Cleaned>,
    /// What is left, each with how to remove it by hand.
    pub left: Vec<LeftBehind>,
}

/// A resource a drill could not remove.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftBehind {
    /// The resource.
    pub resource: Temp,
    /// Why (the last cleanup's detail, or "not cleaned up yet").
    pub why: String,
    /// The command or console action that removes it.
    pub how: String,
}

impl std::fmt::Display for LeftBehind {
    /// `RESOURCE (why); remove: HOW`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}); remove: {}", self.resource, self.why, self.how)
    }
}

/// A drill's own part of a run report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillSummary {
    /// How far the drill went.
    pub depth: String,
    /// PASS / FAIL / UNKNOWN per plan, with the reason.
    pub verdicts: Vec<PlanVerdict>,
    /// Why the drill's steps were stopped, when they were.
    pub interrupted: Option<String>,
    /// The cleanup.
    pub cleanup: CleanupSummary,
}

/// One plan's verdict in a drill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanVerdict {
    /// The plan.
    pub plan: String,
    /// Its verdict.
    #[serde(flatten)]
    pub verdict: crate::runs::drill::Verdict,
}

/// Why a drill's steps were stopped, from its journal.
pub fn interrupted(records: &[Record]) -> Option<String> {
    records.iter().rev().find_map(|r| match &r.event {
        Event::Interrupted { reason } => Some(reason.clone()),
        _ => None,
    })
}

/// The cleanup state of a drill, from its journal only.
pub fn cleanup_summary(records: &[Record]) -> CleanupSummary {
    let temps = journaled(records);
    let mut last: BTreeMap<Temp, Cleaned> = BTreeMap::new();
    let mut first_at = None;
    let mut last_at = None;
    for (i, r) in records.iter().enumerate() {
        if let Event::Cleanup {
            resource,
            result,
            detail,
        } = &r.event
        {
            if first_at.is_none() {
                // Cleanup starts where the record before it was written.
                first_at = Some(records[i.saturating_sub(1)].at);
            }
            last_at = Some(r.at);
            last.insert(
                resource.clone(),
                Cleaned {
                    resource: resource.clone(),
                    result: *result,
                    detail: detail.clone(),
                },
            );
        }
    }
    let left: Vec<LeftBehind> = temps
        .iter()
        .filter(|t| last.get(t).is_none_or(|c| !c.result.done()))
        .map(|t| LeftBehind {
            resource: t.clone(),
            why: last
                .get(t)
                .map_or("not cleaned up yet".to_string(), |c| c.detail.clone()),
            how: manual_removal(t),
        })
        .collect();
    CleanupSummary {
        complete: left.is_empty(),
        ran: first_at.is_some() || temps.is_empty(),
        seconds: first_at
            .zip(last_at)
            .map(|(a, b)| (b - a).num_milliseconds() as f64 / 1000.0),
        resources: temps.iter().filter_map(|t| last.get(t).cloned()).collect(),
        left,
    }
}

/// The resources of each plan a shadow drill does not rehearse (it copies
/// the RPO sources only, promoted replicas, and raises every capacity
/// kind's standby through the generic `drill-raise`; a record whose
/// traffic role says a drill does not rehearse it,
/// [`crate::plan::kinds::traffic::Points::drilled`]), journaled
/// with the run so that its verdict can say so without the plan file.
pub fn not_drilled(plans: &[crate::plan::Plan]) -> BTreeMap<String, Vec<String>> {
    use crate::plan::kinds::{self, Shown};
    plans
        .iter()
        .filter_map(|p| {
            let ids: Vec<String> = (kinds::each(&p.spec).into_iter())
                .filter(|r| match r.shown() {
                    Shown::Data(_) => r.rpo_source().is_none(),
                    // The generic drill step (`drill-raise`) raises every
                    // capacity kind's standby and returns it.
                    Shown::Capacity(_) => false,
                    Shown::Traffic(p) => !p.drilled(),
                    Shown::Steps { drilled } => !drilled,
                })
                .map(|r| r.id().to_string())
                .collect();
            (!ids.is_empty()).then(|| (p.name().to_string(), ids))
        })
        .collect()
}

/// What the drill's first record says it did not rehearse of `plan`.
fn not_drilled_of(records: &[Record], plan: &str) -> Vec<String> {
    match records.first().map(|r| &r.event) {
        Some(Event::RunStarted { flags, .. }) => crate::journal::RunFlags::of(flags)
            .ok()
            .and_then(|f| f.not_drilled?.remove(plan))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The verdict of one plan's drill: FAIL when interrupted or a step failed,
/// else from the RTO and RPO measured against the tier's targets; UNKNOWN
/// when a figure could not be measured (never a PASS by default).
pub fn verdict(
    records: &[Record],
    outcome: crate::journal::Outcome,
    plan: &str,
    m: Option<&crate::runs::measure::PlanMeasure>,
) -> crate::runs::drill::Verdict {
    let finished = outcome != crate::journal::Outcome::Unfinished;

    if let Some(why) = interrupted(records) {
        return Verdict::Fail(format!("interrupted: {why}"));
    }
    let timings = crate::runs::measure::timings(records);
    let mine = |s: &&crate::runs::measure::StepTiming| s.step.starts_with(&format!("{plan}/"));
    if let Some(f) = timings
        .iter()
        .filter(mine)
        .find(|s| s.state == crate::runs::replay::StepState::Failed)
    {
        let why = f.error.as_deref().unwrap_or("failed");
        return Verdict::Fail(format!(
            "step {} failed: {}",
            f.step,
            crate::journal::event::split_hint(why).0
        ));
    }
    if timings
        .iter()
        .filter(mine)
        .any(|s| s.state != crate::runs::replay::StepState::Succeeded)
    {
        return if finished {
            Verdict::Fail("not every step of the drill ran".into())
        } else {
            Verdict::Unknown("the drill has not finished".into())
        };
    }
    if matches!(
        outcome,
        crate::journal::Outcome::Failed | crate::journal::Outcome::Refused
    ) {
        return Verdict::Fail(format!("the drill ended {outcome}"));
    }
    let Some(m) = m else {
        return Verdict::Unknown("nothing was measured".into());
    };
    let skipped = not_drilled_of(records, plan);
    let verdict = Verdict::of_measures(m);
    // A pass says nothing of what the drill did not touch.
    match verdict {
        Verdict::Pass if !skipped.is_empty() => Verdict::Unknown(format!(
            "{}: a shadow drill does not rehearse it (a database restored point-in-time), so its recovery is not measured",
            skipped.join(", ")
        )),
        v => v,
    }
}

/// A drill's summary from its journal (`None` when the run is not a drill).
pub fn summary(
    records: &[Record],
    measures: &[crate::runs::measure::PlanMeasure],
    outcome: crate::journal::Outcome,
) -> Option<DrillSummary> {
    let (plans, flags) = records.iter().find_map(|r| match &r.event {
        Event::RunStarted {
            kind: crate::journal::RunKind::Drill,
            plans,
            flags,
            ..
        } => Some((plans, flags)),
        _ => None,
    })?;
    Some(DrillSummary {
        depth: crate::journal::RunFlags::of(flags)
            .ok()
            .and_then(|f| f.drill_depth())
            .unwrap_or_default()
            .as_str()
            .to_string(),
        verdicts: plans
            .iter()
            .map(|p| PlanVerdict {
                plan: p.name.clone(),
                verdict: verdict(
                    records,
                    outcome,
                    &p.name,
                    measures.iter().find(|m| m.plan == p.name),
                ),
            })
            .collect(),
        interrupted: interrupted(records),
        cleanup: cleanup_summary(records),
    })
}

/// Whether a drill proved what it was for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "reason", rename_all = "UPPERCASE")]
pub enum Verdict {
    /// It succeeded and met every target it could measure.
    Pass,
    /// It failed, or missed a target.
    Fail(String),
    /// It has not ended, or a target could not be measured.
    Unknown(String),
    /// A gate refused it before anything changed: it did not run.
    Refused(String),
}

impl std::fmt::Display for Verdict {
    /// `PASS`, `FAIL (why)`, `UNKNOWN (why)`, `REFUSED (why)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pass => f.write_str("PASS"),
            Self::Fail(why) => write!(f, "FAIL ({why})"),
            Self::Unknown(why) => write!(f, "UNKNOWN ({why})"),
            Self::Refused(why) => write!(f, "REFUSED ({why})"),
        }
    }
}

impl Verdict {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, Self::Pass)
    }

    /// The verdict of a run that ran to its end, from what it measured: a
    /// missed target fails, an unknown figure is unknown (never a pass), an
    /// RPO that does not apply (no database moved) passes.
    pub fn of_measures(m: &crate::runs::measure::PlanMeasure) -> Self {
        match (m.rto.met, m.rpo.met) {
            (Some(false), _) => Self::Fail(format!(
                "RTO {:.1}s above the target {}s",
                m.rto.seconds.unwrap_or_default(),
                m.rto.target_seconds.unwrap_or_default()
            )),
            (_, Some(false)) => Self::Fail(format!(
                "RPO {:.1}s above the target {}s",
                m.rpo.seconds.unwrap_or_default(),
                m.rpo.target_seconds.unwrap_or_default()
            )),
            (Some(true), Some(true)) => Self::Pass,
            (None, _) => Self::Unknown(format!("RTO unknown ({})", m.rto.basis)),
            (_, None) if m.rpo.basis.starts_with("not applicable") => Self::Pass,
            (_, None) => Self::Unknown(format!("RPO unknown ({})", m.rpo.basis)),
        }
    }
}

/// A run that scales a group a drill raised: a failover, failback or
/// switchover whose graph has that group's `raise` step (or an older
/// drctl's `scale` step: [`scale_steps_of`]), read from its journal. Such a run owns the group's capacity from the moment it starts
/// (it took the plan's lock); from `scaled` on it may have written it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scaler {
    /// The run.
    pub run_id: String,
    /// Its kind.
    pub kind: crate::journal::RunKind,
    /// When it started (its first record).
    pub started: chrono::DateTime<chrono::Utc>,
    /// When its scale step of the group first started, if it did.
    pub scaled: Option<chrono::DateTime<chrono::Utc>>,
    /// It was refused at a gate: it changed nothing.
    pub refused: bool,
}

/// The steps an older drctl named `scale`, `scale-nodes` or `scale-mig`
/// that set group `group` in `region` (an Auto Scaling group, an EKS node
/// group named `cluster/nodegroup`, a managed instance group named
/// `project/group`: a failover it journaled before the group's kind took
/// the generic `raise`): one per plan of `plans` with such a resource
/// whose group there is `group`.
fn legacy_scale_steps(
    plans: &[crate::plan::Plan],
    region: &str,
    group: &str,
) -> Vec<crate::journal::StepName> {
    use crate::steps::KindName;
    let step = |plan: &str, kind: KindName, id: &str| {
        let id = crate::steps::StepId::new(plan, kind, Some(id.to_string()));
        crate::journal::StepName::from(&id)
    };
    (plans.iter())
        .flat_map(|p| {
            let asg = (p.spec.compute.iter())
                .filter(|c| c.regions.get(region).is_some_and(|g| g == group))
                .map(|c| step(p.name(), KindName::Scale, &c.id));
            let nodes = (p.spec.node_group.iter())
                .filter(|g| g.regions.get(region).is_some_and(|v| v == group))
                .map(|g| step(p.name(), KindName::ScaleNodes, &g.id));
            let migs = (p.spec.instance_group.iter())
                .filter(|g| {
                    (g.regions.get(region)).is_some_and(|v| format!("{}/{v}", g.project) == group)
                })
                .map(|g| step(p.name(), KindName::ScaleMig, &g.id));
            asg.chain(nodes).chain(migs).collect::<Vec<_>>()
        })
        .collect()
}

/// The failover steps that set the group `temp` names (a raised group's
/// `raise` steps, and an older drctl's `scale`, `scale-nodes` and
/// `scale-mig` steps of an Auto Scaling group, an EKS node group and a
/// managed instance group), one per plan of `plans` whose resource there
/// is that group; none for a resource that is no raised group.
pub fn scale_steps_of(plans: &[crate::plan::Plan], temp: &Temp) -> Vec<crate::journal::StepName> {
    // An older Cloud Run floor: `raised_group` names it by its service
    // alone, and no older drctl scaled it with a step of its own.
    if let Temp::RunFloor {
        region,
        project,
        service,
        ..
    } = temp
    {
        return raise_steps(plans, region, &format!("{project}/{service}"));
    }
    let Some((region, group)) = temp.raised_group() else {
        return Vec::new();
    };
    let mut steps = raise_steps(plans, region, &group);
    steps.extend(legacy_scale_steps(plans, region, &group));
    steps
}

/// The generic `raise` steps of `plans` that set the group `group` in
/// `region`, found through each capacity resource's role (whatever its
/// kind).
fn raise_steps(
    plans: &[crate::plan::Plan],
    region: &str,
    group: &str,
) -> Vec<crate::journal::StepName> {
    let wanted = Some((region.to_string(), group.to_string()));
    plans
        .iter()
        .flat_map(|p| {
            crate::plan::kinds::each(&p.spec)
                .into_iter()
                .filter(|r| r.kind().scaling().is_some())
                .filter(|r| match r.shown() {
                    crate::plan::kinds::Shown::Capacity(g) => g.raised_group(region) == wanted,
                    _ => false,
                })
                .map(|r| {
                    crate::steps::StepId::new(
                        p.name(),
                        crate::steps::KindName::Raise,
                        Some(r.id().to_string()),
                    )
                })
        })
        .map(|id| crate::journal::StepName::from(&id))
        .collect()
}

/// One run's journal as a [`Scaler`] of the group whose steps are `steps`
/// (see [`scale_steps`]) in `region`; `None` when the run does not scale
/// it there (another target, another plan, a drill's copies).
pub fn scaler(
    records: &[Record],
    steps: &[crate::journal::StepName],
    region: &str,
) -> Option<Scaler> {
    let first = records.first()?;
    let Event::RunStarted {
        run_id,
        kind,
        target,
        steps: graph,
        ..
    } = &first.event
    else {
        return None;
    };
    if target != region || !graph.iter().any(|s| steps.contains(&s.id)) {
        return None;
    }
    Some(Scaler {
        run_id: run_id.clone(),
        kind: *kind,
        started: first.at,
        scaled: records.iter().find_map(|r| match &r.event {
            Event::StepStarted { step, .. } if steps.contains(step) => Some(r.at),
            _ => None,
        }),
        refused: records.iter().any(|r| {
            matches!(
                r.event,
                Event::RunFinished {
                    outcome: crate::journal::Outcome::Refused,
                    ..
                }
            )
        }),
    })
}

/// The failover run that preempted this drill on `plan`, as the drill's
/// own journal says (the taker's `lock_lost` record, written best effort:
/// its absence proves nothing).
pub fn preempted_by(records: &[Record], plan: &str) -> Option<String> {
    records.iter().find_map(|r| match &r.event {
        Event::LockLost {
            plan: p,
            by_run,
            preempted: true,
            ..
        } if p == plan => Some(by_run.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    /// Regression: a drill of a plan whose database restores point-in-time
    /// (not copied by a shadow drill) passed with "RPO not applicable".
    #[test]
    fn a_database_the_drill_did_not_rehearse_makes_a_pass_unknown() {
        use crate::runs::measure::{Measure, PlanMeasure};
        let started = |flags: serde_json::Value| Record {
            seq: 0,
            at: Utc::now(),
            prev: "0".repeat(64),
            event: Event::RunStarted {
                run_id: "r".into(),
                kind: crate::journal::RunKind::Drill,
                target: "us-east-1".into(),
                plans: Vec::new(),
                operator: None,
                host: "h".into(),
                pid: 1,
                flags,
                declared_at: None,
                nonce: None,
                steps: Vec::new(),
            },
            fence: Default::default(),
            late: None,
        };
        let measure = |basis: &str| Measure {
            seconds: None,
            target_seconds: Some(300),
            met: None,
            basis: basis.into(),
        };
        let m = PlanMeasure {
            plan: "ledger".into(),
            rto: Measure {
                seconds: Some(40.0),
                target_seconds: Some(900),
                met: Some(true),
                basis: "measured".into(),
            },
            rpo: measure("not applicable: this run promoted or restored no database"),
            restored: Vec::new(),
        };
        let ok = crate::journal::Outcome::Succeeded;
        let plain = [started(serde_json::json!({}))];
        assert_eq!(
            verdict(&plain, ok, "ledger", Some(&m)),
            crate::runs::drill::Verdict::Pass
        );
        let pitr = [started(
            serde_json::json!({"not_drilled": {"ledger": ["ledger-db"]}}),
        )];
        match verdict(&pitr, ok, "ledger", Some(&m)) {
            crate::runs::drill::Verdict::Unknown(why) => {
                assert!(
                    why.contains("ledger-db") && why.contains("not rehearse"),
                    "{why}"
                )
            }
            v => panic!("{v}"),
        }
    }

    /// Node groups are drilled (`drill-raise` raises the standby's): a
    /// drill's verdict no longer names them as not rehearsed; compute
    /// groups never were.
    #[test]
    fn a_drill_rehearses_node_groups_and_compute_groups() {
        let plans = crate::plan::reference();
        let skipped = not_drilled(&plans);
        assert_eq!(skipped.get("orders"), None, "{skipped:?}");
        assert!(
            !(skipped.values().flatten()).any(|id| id.ends_with("-api")
                || id.ends_with("-workers")
                || id.ends_with("-nodes")),
            "groups are drilled: {skipped:?}"
        );
    }

    /// A Cloud DNS record in records mode has its drill record; one on
    /// the data plane (`switch = "health-check"`) is not rehearsed yet, and
    /// the verdict says so rather than passing it over.
    #[test]
    fn a_data_plane_cloud_dns_record_is_named_as_not_rehearsed() {
        let dir = tempfile::tempdir().unwrap();
        let plan = |switch: &str| {
            let text = format!(
                "[plan]\nname = \"g\"\ntier = \"important\"\nregions = [\"us-central1\", \"us-east4\"]\n\n\
                 [[cloud_dns]]\nid = \"api-dns\"\nproject = \"acme-orders\"\nzone = \"orders-zone\"\n\
                 name = \"api.gcp.example.com.\"\ntype = \"A\"\n{switch}\
                 targets = {{ us-central1 = \"192.0.2.10\", us-east4 = \"192.0.2.20\" }}\n"
            );
            std::fs::write(dir.path().join("g.toml"), text).unwrap();
            let loaded = crate::plan::load(&[dir.path().join("g.toml")]);
            assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
            loaded.plans
        };
        assert_eq!(not_drilled(&plan("")).get("g"), None);
        let data_plane = plan(
            "switch = \"health-check\"\ncontrols = { us-central1 = \"gs://drctl-controls/usc1.json\", us-east4 = \"gs://drctl-controls/use4.json\" }\n",
        );
        assert_eq!(
            not_drilled(&data_plane).get("g").map(Vec::as_slice),
            Some(&["api-dns".to_string()][..])
        );
    }
}
