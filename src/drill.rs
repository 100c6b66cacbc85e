//! Drills: what a drill creates, how each thing is found again, and how it
//! is removed.
//!
//! A drill rehearses a failover on *drill copies* (a temporary replica
//! promoted in the target region, the standby group raised, a drill DNS
//! record) so that production is never changed. What makes that safe is
//! that everything a drill creates can be found and removed on every way a
//! drill can end, including the ones where the process that created it is
//! gone:
//!
//! * each temporary resource is a [`Temp`], journaled (`drill_resource`)
//!   *before* the call that may create it, so a crash between the call and
//!   its answer still leaves the resource named in the journal;
//! * each is also findable without a journal: databases and groups carry
//!   the tags [`RUN_TAG`], [`OWNER_TAG`] and [`EXPIRES_TAG`]; a raised group
//!   keeps the capacity to restore in [`RESTORE_TAG`]; drill DNS records are
//!   named `drill-<short id>.<name>` where the short id holds the drill's
//!   start time (see [`short_id`]);
//! * removal is the kind's own knowledge (`steps::drill_*`), reached
//!   through [`Temp::remove`], and every removal is proven by a read that
//!   finds nothing left (or the capacity back as it was).
//!
//! The engine runs the cleanup after the graph on every ending (success, a
//! failed step, Ctrl-C, `--max-duration`), and `drctl runs resume` runs it
//! for a drill whose process died. `drctl drill sweep` ([`sweep`]) finds
//! what no journal names (a laptop lost mid-drill) by tags and names.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cloud::Clouds;
pub use crate::journal::event::CleanupResult;
use crate::journal::event::{Event, Record};

/// Tag naming the drill run that created (or raised) a resource.
pub const RUN_TAG: &str = "drctl:drill-run";
/// Tag naming who ran the drill (host, and operator when known).
pub const OWNER_TAG: &str = "drctl:drill-owner";
/// Tag holding the instant after which a sweep may remove the resource.
pub const EXPIRES_TAG: &str = "drctl:drill-expires";
/// Tag on a raised group: the capacity to restore, `min/desired/max`.
pub const RESTORE_TAG: &str = "drctl:drill-restore";
/// Every tag a drill puts on a resource (what cleanup, and a failover
/// taking a raised group over, remove).
pub const TAGS: [&str; 4] = [RUN_TAG, OWNER_TAG, EXPIRES_TAG, RESTORE_TAG];
/// Prefix of every drill DNS record's first label.
pub const RECORD_PREFIX: &str = "drill-";

/// How long after its expiry a drill resource is left alone by a sweep
/// when the run that made it may still be cleaning up.
pub const SWEEP_GRACE: Duration = Duration::from_secs(5 * 60);

/// A resource a drill created or changed, to be removed (or restored).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Temp {
    /// A temporary database instance (replica, then promoted).
    Database {
        /// Region.
        region: String,
        /// Instance id.
        id: String,
    },
    /// A compute group raised to its active capacity; restored from its
    /// [`RESTORE_TAG`].
    Capacity {
        /// Region.
        region: String,
        /// Group name.
        group: String,
    },
    /// A drill DNS record.
    Record {
        /// Hosted zone name.
        zone: String,
        /// Fully qualified record name.
        name: String,
        /// Record type.
        rtype: String,
    },
}

impl std::fmt::Display for Temp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database { region, id } => write!(f, "database {id} ({region})"),
            Self::Capacity { region, group } => write!(f, "capacity of group {group} ({region})"),
            Self::Record { zone, name, rtype } => write!(f, "record {name} {rtype} (zone {zone})"),
        }
    }
}

impl Temp {
    /// Whether removing it only removes what the drill made (never a
    /// resource a real failover may now own): a preempted drill removes
    /// only these.
    pub fn drill_only(&self) -> bool {
        !matches!(self, Self::Capacity { .. })
    }

    /// The command that removes it by hand, for when cleanup cannot.
    pub fn manual_removal(&self) -> String {
        match self {
            Self::Database { region, id } => format!(
                "aws rds delete-db-instance --region {region} --db-instance-identifier {id} --skip-final-snapshot"
            ),
            Self::Capacity { region, group } => format!(
                "read the tag {RESTORE_TAG} of group {group} (aws autoscaling describe-tags --region {region}), then aws autoscaling update-auto-scaling-group --region {region} --auto-scaling-group-name {group} --min-size MIN --desired-capacity DESIRED --max-size MAX"
            ),
            Self::Record { zone, name, rtype } => format!(
                "delete the {rtype} record {name} in hosted zone {zone} (aws route53 change-resource-record-sets, action DELETE)"
            ),
        }
    }

    /// Removes (or restores) it and proves it with a read afterwards.
    /// `run_id` is the drill's: a resource tagged by another run is never
    /// touched. `keep_capacity` leaves a raised group as it is (a failover
    /// preempted the drill and owns it now) and only removes the drill's tags.
    pub async fn remove(
        &self,
        clouds: &Clouds,
        run_id: &str,
        keep_capacity: bool,
        poll: (Duration, Duration),
        deadline: std::time::Instant,
    ) -> Cleaned {
        let result = match self {
            Self::Database { region, id } => {
                crate::steps::drill_database::remove(
                    clouds,
                    region,
                    id,
                    Some(run_id),
                    poll,
                    deadline,
                )
                .await
            }
            Self::Capacity { region, group } => {
                crate::steps::drill_scale::restore(
                    clouds,
                    region,
                    group,
                    Some(run_id),
                    keep_capacity,
                )
                .await
            }
            Self::Record { zone, name, rtype } => {
                crate::steps::drill_dns::remove(clouds, zone, name, rtype, poll, deadline).await
            }
        };
        match result {
            Ok((result, detail)) => Cleaned {
                resource: self.clone(),
                result,
                detail,
            },
            Err(e) => Cleaned {
                resource: self.clone(),
                result: CleanupResult::Failed,
                detail: e.to_string(),
            },
        }
    }
}

/// The cleanup of one resource, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleaned {
    /// The resource.
    pub resource: Temp,
    /// What happened.
    pub result: CleanupResult,
    /// What the proof read found, or why it failed.
    pub detail: String,
}

/// The short id of a drill run, used in names: the start time and the
/// run id's random suffix, lower case (`20261122t1920z-ab12`). A sweep reads
/// the start back from it ([`started_from_short_id`]).
pub fn short_id(run_id: &str) -> String {
    let stamp = run_id.get(..16).unwrap_or(run_id);
    let suffix = run_id.rsplit('-').next().unwrap_or_default();
    format!("{}-{suffix}", stamp.to_ascii_lowercase())
}

/// When the drill whose short id is `short` started.
pub fn started_from_short_id(short: &str) -> Option<DateTime<Utc>> {
    let stamp = short.get(..16)?.to_ascii_uppercase();
    NaiveDateTime::parse_from_str(&stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The id of a drill's temporary database for instance `base` (RDS ids:
/// at most 63 letters, digits and hyphens, starting with a letter, no
/// double hyphen, not ending in one). A name too long keeps its start and
/// ends with a digest of the whole base instead, so that two long bases
/// never share a temporary id.
pub fn temp_database_id(run_id: &str, base: &str) -> String {
    const MAX: usize = 63;
    let clean = |s: String| {
        let mut id = s.to_ascii_lowercase();
        id.retain(|c| c.is_ascii_alphanumeric() || c == '-');
        while id.contains("--") {
            id = id.replace("--", "-");
        }
        id
    };
    let id = clean(format!("drill-{}-{base}", short_id(run_id)));
    if id.len() <= MAX {
        return id.trim_end_matches('-').to_string();
    }
    use sha2::Digest as _;
    let digest = hex::encode(&sha2::Sha256::digest(base.as_bytes())[..4]);
    let mut head = id;
    head.truncate(MAX - digest.len() - 1);
    format!("{}-{digest}", head.trim_end_matches('-'))
}

/// The name of a drill's DNS record for the plan's record `name`.
pub fn record_name(run_id: &str, name: &str) -> String {
    let name = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    format!("{RECORD_PREFIX}{}.{name}", short_id(run_id))
}

/// The tags every drill resource carries.
pub fn tags(run_id: &str, owner: &str, expires: DateTime<Utc>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (RUN_TAG.to_string(), run_id.to_string()),
        (OWNER_TAG.to_string(), owner.to_string()),
        (
            EXPIRES_TAG.to_string(),
            expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ])
}

/// Who runs a drill, for the owner tag: host and process.
pub fn owner() -> String {
    format!(
        "{}/pid {}",
        crate::journal::lock::hostname(),
        std::process::id()
    )
}

/// When a drill resource tagged `tags` expires, if it says.
pub fn expiry(tags: &BTreeMap<String, String>) -> Option<DateTime<Utc>> {
    tags.get(EXPIRES_TAG)?.parse().ok()
}

/// The longest a drill of a plan of this tier may run before it aborts into
/// cleanup, unless `--max-duration` says otherwise: twice the RTO, at least
/// 15 minutes (the temporary replica alone takes minutes on RDS).
pub fn default_max_duration(rto: Duration) -> Duration {
    (rto * 2).max(Duration::from_secs(15 * 60))
}

/// A plan's drill budget without `--max-duration`: its `[drill]
/// max_duration`, else its tier's default.
pub fn plan_max_duration(plan: &crate::plan::Plan) -> Duration {
    plan.spec
        .drill
        .as_ref()
        .and_then(|d| d.max_duration())
        .unwrap_or_else(|| default_max_duration(plan.tier.rto))
}

/// Every temporary resource a drill's journal names, in the order cleanup
/// removes them: records first (they point at the database), then
/// databases, then capacity.
pub fn journaled(records: &[Record]) -> Vec<Temp> {
    let mut out: Vec<Temp> = Vec::new();
    for r in records {
        if let Event::DrillResource { resource, .. } = &r.event
            && !out.contains(resource)
        {
            out.push(resource.clone());
        }
    }
    let rank = |t: &Temp| match t {
        Temp::Record { .. } => 0,
        Temp::Database { .. } => 1,
        Temp::Capacity { .. } => 2,
    };
    out.sort_by_key(rank);
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
    pub verdict: crate::schedule::Verdict,
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
            how: t.manual_removal(),
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

/// The databases of each plan a shadow drill does not rehearse (it copies
/// only promote-replica databases), journaled with the run so that its
/// verdict can say so without the plan file.
pub fn not_drilled(plans: &[crate::plan::Plan]) -> BTreeMap<String, Vec<String>> {
    plans
        .iter()
        .filter_map(|p| {
            let ids: Vec<String> = p
                .spec
                .database
                .iter()
                .filter(|d| d.strategy != crate::plan::spec::DbStrategy::PromoteReplica)
                .map(|d| d.id.clone())
                .collect();
            (!ids.is_empty()).then(|| (p.name().to_string(), ids))
        })
        .collect()
}

/// What the drill's first record says it did not rehearse of `plan`.
fn not_drilled_of(records: &[Record], plan: &str) -> Vec<String> {
    match records.first().map(|r| &r.event) {
        Some(Event::RunStarted { flags, .. }) => flags["not_drilled"][plan]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
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
    m: Option<&crate::engine::measure::PlanMeasure>,
) -> crate::schedule::Verdict {
    let finished = outcome != crate::journal::Outcome::Unfinished;
    use crate::schedule::Verdict;
    if let Some(why) = interrupted(records) {
        return Verdict::Fail(format!("interrupted: {why}"));
    }
    let timings = crate::engine::measure::timings(records);
    let mine = |s: &&crate::engine::measure::StepTiming| s.step.starts_with(&format!("{plan}/"));
    if let Some(f) = timings
        .iter()
        .filter(mine)
        .find(|s| s.state == crate::journal::replay::StepState::Failed)
    {
        let why = f.error.as_deref().unwrap_or("failed");
        return Verdict::Fail(format!(
            "step {} failed: {}",
            f.step,
            why.lines().next().unwrap_or(why)
        ));
    }
    if timings
        .iter()
        .filter(mine)
        .any(|s| s.state != crate::journal::replay::StepState::Succeeded)
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
    // A pass says nothing of databases the drill did not touch.
    match verdict {
        Verdict::Pass if !skipped.is_empty() => Verdict::Unknown(format!(
            "{} restored point-in-time, which a shadow drill does not rehearse: its recovery is not measured",
            skipped.join(", ")
        )),
        v => v,
    }
}

/// A drill's summary from its journal (`None` when the run is not a drill).
pub fn summary(
    records: &[Record],
    measures: &[crate::engine::measure::PlanMeasure],
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
        depth: flags["mode"]["depth"]
            .as_str()
            .unwrap_or("shadow")
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

pub mod sweep;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_carry_the_start_time_back() {
        let run = "20261122T192005Z-payments-ab12";
        assert_eq!(short_id(run), "20261122t192005z-ab12");
        assert_eq!(
            started_from_short_id(&short_id(run)),
            Some("2026-11-22T19:20:05Z".parse().unwrap())
        );
        assert_eq!(started_from_short_id("nonsense"), None);
    }

    #[test]
    fn temp_database_ids_are_valid_rds_ids() {
        let run = "20261122T192005Z-payments-ab12";
        let id = temp_database_id(run, "payments-db");
        assert_eq!(id, "drill-20261122t192005z-ab12-payments-db");
        let long = temp_database_id(run, &"x".repeat(80));
        assert!(long.len() <= 63 && !long.ends_with('-'));
        // Regression: two long bases that share their first 63 characters
        // once shared one temporary id.
        let a = temp_database_id(run, &format!("{}-a", "payments-db-use1-".repeat(3)));
        let b = temp_database_id(run, &format!("{}-b", "payments-db-use1-".repeat(3)));
        assert_ne!(a, b);
        assert!(a.len() <= 63 && b.len() <= 63);
        assert!(!temp_database_id(run, "a--b-").contains("--"));
    }

    #[test]
    fn drill_records_sit_under_the_real_name() {
        let run = "20261122T192005Z-payments-ab12";
        assert_eq!(
            record_name(run, "api.example.com"),
            "drill-20261122t192005z-ab12.api.example.com."
        );
    }

    #[test]
    fn only_capacity_is_shared_with_a_failover() {
        let db = Temp::Database {
            region: "r".into(),
            id: "i".into(),
        };
        let cap = Temp::Capacity {
            region: "r".into(),
            group: "g".into(),
        };
        assert!(db.drill_only());
        assert!(!cap.drill_only());
        let json = serde_json::to_string(&db).unwrap();
        assert_eq!(json, r#"{"type":"database","region":"r","id":"i"}"#);
    }

    /// Regression: a drill of a plan whose database restores point-in-time
    /// (not copied by a shadow drill) passed with "RPO not applicable".
    #[test]
    fn a_database_the_drill_did_not_rehearse_makes_a_pass_unknown() {
        use crate::engine::measure::{Measure, PlanMeasure};
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
                steps: Vec::new(),
            },
            fence: Default::default(),
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
        };
        let ok = crate::journal::Outcome::Succeeded;
        let plain = [started(serde_json::json!({}))];
        assert_eq!(
            verdict(&plain, ok, "ledger", Some(&m)),
            crate::schedule::Verdict::Pass
        );
        let pitr = [started(
            serde_json::json!({"not_drilled": {"ledger": ["ledger-db"]}}),
        )];
        match verdict(&pitr, ok, "ledger", Some(&m)) {
            crate::schedule::Verdict::Unknown(why) => {
                assert!(
                    why.contains("ledger-db") && why.contains("not rehearse"),
                    "{why}"
                )
            }
            v => panic!("{v}"),
        }
    }
}
