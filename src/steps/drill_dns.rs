//! `drill-dns`: a drill's DNS. For every record of the plan in one hosted
//! zone, a drill record `drill-<short id>.<name>` is created pointing where
//! the real record would point after a failover (the target's value, or the
//! drill's temporary database endpoint for a record that follows a
//! database); the step waits for INSYNC and reads the records back.
//! Production records are never changed: this measures DNS change
//! propagation without moving a single user, and it is where the drill's
//! RTO clock stops.
//!
//! A `switch = "health-check"` record is not this kind's: `drill-control`
//! rehearses its data-plane switch instead.
//!
//! Drill records are found again by their names (the short id holds the
//! drill's start; see [`crate::steps::drill_names`]), and removed by an exact DELETE
//! followed by a read that finds nothing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::drill_names;
use super::leftovers::{Drilled, Left, Look, records_under};
use super::records::{desired, matches, route53, show, zone, zone_finding};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, Clouds, DnsChange, DnsRecord};
use crate::journal::{CleanupResult, Temp};
use crate::plan::kinds::traffic::Switching;
use crate::plan::spec::{DnsSpec, SwitchMode};
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Create the drill records of every plan record in one zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillDns {
    /// Zone name.
    pub zone: String,
    /// Target region.
    pub region: String,
    /// The plan's records in the zone.
    #[serde(serialize_with = "super::records::record_names")]
    pub records: Vec<DnsSpec>,
    /// Every `[[dns]]` name of the plan in the zone, whatever its switch:
    /// what a sweep finds a drill's records under (not part of the step's
    /// identity: a journal's graph never names it).
    #[serde(skip)]
    pub swept: Vec<String>,
}

/// Ends the drill's RTO clock: the drill records INSYNC and read back.
pub const TRAITS: Traits = Traits {
    rto_end: Some(super::traits::INSYNC),
    time: Cost {
        calls: &[
            "route53:ListHostedZonesByName",
            "route53:ChangeResourceRecordSets",
            "route53:ListResourceRecordSets",
        ],
        waits: &["route53:ChangeResourceRecordSets"],
        polls: Some("route53:GetChange"),
    },
    ..Traits::RECOVERY
};

/// A shadow drill creates drill records in each zone of the plan.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    let mut zones: BTreeMap<String, Vec<DnsSpec>> = BTreeMap::new();
    // A data-plane switch's records are `drill-control`'s.
    for d in (b.plan.spec.dns.iter()).filter(|d| d.switch != SwitchMode::HealthCheck) {
        zones
            .entry(d.zone.to_ascii_lowercase())
            .or_default()
            .push(d.clone());
    }
    for (zone, records) in zones {
        let resources = records.iter().map(|d| d.id.clone()).collect();
        let description = format!(
            "create drill records drill-<id>.<name> in {zone} for {} pointing where a failover to {} would, wait for INSYNC, read back (production records untouched)",
            super::records::joined_names(&records),
            b.target
        );
        b.add(
            StepKind::DrillDns(DrillDns {
                swept: zone_names(b, &zone),
                zone: zone.clone(),
                region: b.target.to_string(),
                records,
            }),
            Some(zone),
            Phase::of(crate::plan::spec::ResourceKind::Dns),
            resources,
            description,
        );
    }
}

/// Every `[[dns]]` name of the plan in `zone`, whatever its switch.
fn zone_names(b: &Builder<'_>, zone: &str) -> Vec<String> {
    (b.plan.spec.dns.iter())
        .filter(|d| d.zone.eq_ignore_ascii_case(zone))
        .map(|d| d.name.clone())
        .collect()
}

impl DrillDns {
    /// The drill records this run creates: one per plan record name (a
    /// weighted record's drill copy is a simple record with the target's
    /// value).
    async fn wanted(&self, cx: &Cx<'_>) -> Result<Vec<DnsRecord>, StepFailure> {
        let records: Vec<&dyn Switching> =
            (self.records.iter()).map(|d| d as &dyn Switching).collect();
        let real = desired(cx, &records).await?;
        let mut out: Vec<DnsRecord> = Vec::new();
        for r in real {
            if r.set_identifier.is_some() && r.weight != Some(100) {
                continue;
            }
            let name = drill_names::record_name(cx.run_id, &r.name);
            if out.iter().any(|o| o.name == name && o.rtype == r.rtype) {
                continue;
            }
            out.push(DnsRecord {
                name,
                set_identifier: None,
                weight: None,
                ..r
            });
        }
        Ok(out)
    }
}

/// What a drill's DNS step publishes: when its records were INSYNC (the
/// drill's RTO clock stops there).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillDnsOutput {
    /// The zone.
    pub zone: String,
    /// The change batch.
    pub change_id: String,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When it was INSYNC.
    pub in_sync_at: DateTime<Utc>,
    /// The drill records created.
    pub records: Vec<DnsRecord>,
}

impl StepOutput for DrillDnsOutput {
    const KIND: KindName = KindName::DrillDns;
}

#[async_trait]
impl Action for DrillDns {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        vec![zone_finding(cx, route53(&self.zone)).await]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(self
            .records
            .iter()
            .map(|d| Planned {
                call: "route53:ChangeResourceRecordSets".into(),
                resource: drill_names::record_name(cx.run_id, &d.name),
                region: "global".into(),
                current: "absent".into(),
                desired: format!(
                    "{} {} → {} (a drill copy of {}; deleted at cleanup)",
                    d.rtype,
                    d.ttl,
                    match &d.follows {
                        Some(db) => format!("the drill's temporary {db} endpoint"),
                        None => d.targets.get(cx.target).cloned().unwrap_or_default(),
                    },
                    d.name
                ),
                change: true,
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let z = zone(cx, &self.zone).await?;
        let want = self.wanted(cx).await?;
        let changes: Vec<DnsChange> = want.iter().cloned().map(DnsChange::Upsert).collect();
        cx.fenced(
            &format!("route53:ChangeResourceRecordSets in {}", self.zone),
            "global",
        )
        .await?;
        let info = cx
            .clouds
            .dns
            .apply_changes(
                &z,
                &changes,
                &format!(
                    "drctl drill {}: {} to {}",
                    cx.run_id,
                    cx.plan.name(),
                    cx.target
                ),
            )
            .await?;
        let submitted_at = Utc::now();
        if !info.in_sync {
            wait_for(
                cx,
                &format!("Route 53 change {} in {} to be INSYNC", info.id, self.zone),
                || async {
                    let s = cx.clouds.dns.change_status(&info.id).await?;
                    Ok(s.in_sync.then_some(()))
                },
            )
            .await?;
        }
        let in_sync_at = Utc::now();
        let wanted: Vec<(String, String)> = want
            .iter()
            .map(|w| (w.name.clone(), w.rtype.clone()))
            .collect();
        let read = cx.clouds.dns.read_many(&z, &wanted).await?;
        let mut wrong = Vec::new();
        for w in &want {
            let cur = read
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(&w.name) && r.rtype == w.rtype)
                .cloned();
            if !matches(&cur, w) {
                wrong.push(format!(
                    "{} is {} (expected {})",
                    w.name,
                    show(&cur),
                    show(&Some(w.clone()))
                ));
            }
        }
        if !wrong.is_empty() {
            return Err(StepFailure::state(
                format!(
                    "drill records in {} did not read back: {}",
                    self.zone,
                    wrong.join("; ")
                ),
                "inspect the zone; the drill's cleanup removes what it created",
                &self.zone,
                "global",
            ));
        }
        DrillDnsOutput {
            zone: z.name,
            change_id: info.id,
            submitted_at,
            in_sync_at,
            records: want,
        }
        .to_output()
    }

    fn creates(&self, run_id: &str) -> Vec<Temp> {
        self.records
            .iter()
            .map(|d| Temp::Record {
                zone: self.zone.clone(),
                name: drill_names::record_name(run_id, &d.name),
                rtype: d.rtype.clone(),
            })
            .collect()
    }
}

#[async_trait]
impl Drilled for DrillDns {
    /// Drill records in the zone under one of the plan's names there
    /// (`drill-<short id>.<name>`: a record carries no tags).
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let listed = look.zone_records(&self.zone).await;
        records_under(&listed, &self.zone, self.swept.iter().map(String::as_str))
    }
}

/// Deletes a drill record (every set of that name and type) and reads the
/// zone again to prove it is gone. Only names under the drill prefix are
/// ever deleted.
pub async fn remove(
    clouds: &Clouds,
    zone_name: &str,
    name: &str,
    rtype: &str,
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    if !name.starts_with(drill_names::RECORD_PREFIX) {
        return Ok((
            CleanupResult::NotOurs,
            format!("{name} is not a drill record name"),
        ));
    }
    let Some(z) = clouds.dns.find_zone(zone_name).await? else {
        return Ok((
            CleanupResult::Absent,
            format!("zone {zone_name} does not exist"),
        ));
    };
    let found = clouds.dns.read_records(&z, name, rtype).await?;
    if found.is_empty() {
        return Ok((
            CleanupResult::Absent,
            format!("ListResourceRecordSets finds no {name} {rtype}"),
        ));
    }
    let changes: Vec<DnsChange> = found.into_iter().map(DnsChange::Delete).collect();
    let info = clouds
        .dns
        .apply_changes(&z, &changes, "drctl drill cleanup")
        .await?;
    let in_sync = info.in_sync || wait_in_sync(clouds, &info.id, poll, deadline).await?;
    let left = clouds.dns.read_records(&z, name, rtype).await?;
    Ok(if left.is_empty() {
        (
            CleanupResult::Removed,
            format!(
                "deleted (change {}{}); ListResourceRecordSets then found no {name} {rtype}",
                info.id,
                if in_sync {
                    ", INSYNC"
                } else {
                    ", not yet INSYNC"
                }
            ),
        )
    } else {
        (
            CleanupResult::Failed,
            format!("{name} {rtype} still reads {} after the delete", left.len()),
        )
    })
}

/// Waits for DNS change `id`, just applied and not yet in sync, to be
/// INSYNC: the first look after one interval (the change's own answer was
/// the look at once), then at doubling intervals until `deadline`.
async fn wait_in_sync(
    clouds: &Clouds,
    id: &str,
    (first, longest): (Duration, Duration),
    deadline: Instant,
) -> Result<bool, CloudError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(false);
    }
    tokio::time::sleep(first.min(left)).await;
    let in_sync = poll_until(
        &format!("DNS change {id} to be in sync"),
        (first.saturating_mul(2).min(longest), longest),
        deadline,
        || async { Ok(clouds.dns.change_status(id).await?.in_sync.then_some(())) },
    )
    .await?;
    Ok(in_sync.is_some())
}
