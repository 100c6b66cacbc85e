//! `drill-dns`: a drill's DNS, whatever the records-mode traffic kind (a
//! Route 53 hosted zone, a Cloud DNS managed zone). For every such record
//! of the plan in one zone, a drill record set `drill-<short id>.<name>` is
//! made pointing where the real record would point after a failover (the
//! target's value, or the drill's temporary copy's endpoint for a record
//! that follows a data resource; a weighted record's drill copy is a plain
//! record with the target's value), in one change of the zone through its
//! kind's zone changes ([`ZoneApi`](crate::plan::kinds::traffic::ZoneApi));
//! the step waits until the change is in effect (Route 53's INSYNC, Cloud
//! DNS's `done`) and reads the records back. Production records are never
//! changed: this measures a DNS change's propagation without moving a
//! single user, and it is where the drill's RTO clock stops.
//!
//! A data-plane record (`switch = "health-check"`) is not this step's:
//! `drill-control` rehearses Route 53's data-plane switch instead.
//!
//! The drill records are journaled ([`Temp::Record`], by kind) before
//! the change is sent, so a crash leaves nothing unfound; they are found
//! again without the journal by their names (the short id holds the
//! drill's start; see [`crate::steps::drill_names`]), and removed
//! ([`remove`]) by a change deleting each exactly as read, followed by a
//! read that finds nothing. A name that is not a drill's is never deleted.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::drill_names;
use super::leftovers::{Drilled, Left, Look, records_under};
use super::records::{
    await_changes, desired, mismatches, no_value, records_of, send, swaps, zone_finding, zone_now,
};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, Clouds, DnsRecord};
use crate::journal::{CleanupResult, Temp};
use crate::plan::kinds::traffic::{Switching, Zone, ZoneCalls, by_zone, switching};
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Make the drill records of every records-mode record of the plan in one
/// zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillDns {
    /// The zone, as its kind names the step's subject.
    pub zone: String,
    /// Target region.
    pub region: String,
    /// The plan's records in the zone, by name.
    pub records: Vec<String>,
    /// Their plan ids.
    #[serde(skip)]
    pub ids: Vec<String>,
    /// Every name of the plan's records of the zone's kind in the zone,
    /// whatever its switch: what a sweep finds a drill's records under
    /// (not part of the step's identity: a journal's graph never names it).
    #[serde(skip)]
    pub swept: Vec<String>,
    /// The zone kind's calls (the step's cost).
    #[serde(skip)]
    pub calls: ZoneCalls,
    /// The zone's kind, project and name, as a journaled drill record
    /// names them (what it makes is journaled before the plan is read).
    #[serde(skip)]
    pub kind: ResourceKind,
    /// The zone's project, where its kind has them.
    #[serde(skip)]
    pub project: String,
    /// The zone's name.
    #[serde(skip)]
    pub zone_name: String,
    /// Each record's name and type.
    #[serde(skip)]
    pub named: Vec<(String, String)>,
}

/// Ends the drill's RTO clock: the drill records' change in effect and
/// read back (its calls are its zone kind's: [`DrillDns::cost`]).
pub const TRAITS: Traits = Traits {
    rto_end: Some(super::traits::DRILL_IN_EFFECT),
    ..Traits::RECOVERY
};

/// What the retired `drill-cloud-dns` (one Cloud DNS record's drill record
/// set) cost, and where its journals stop the drill's RTO clock.
pub const RETIRED_CLOUD: Traits = Traits {
    rto_end: Some("the drill record set's Cloud DNS change done and read back"),
    time: Cost {
        calls: &[
            "clouddns:resourceRecordSets.list",
            "clouddns:changes.create",
        ],
        polls: Some("clouddns:changes.get"),
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// A shadow drill makes drill records in each zone of the plan's
/// records-mode records.
pub fn compile(b: &mut Builder<'_>) {
    let shadow = RunMode::Drill {
        depth: DrillDepth::Shadow,
    };
    if *b.mode != shadow {
        return;
    }
    let zones = by_zone(switching(b.plan));
    let target = b.target;
    let steps: Vec<(DrillDns, String)> = (zones.into_iter())
        .map(|(zone, records)| {
            let z = records[0].zone();
            let names: Vec<String> = records.iter().map(|d| d.names().0.to_string()).collect();
            let description = format!(
                "create drill records drill-<id>.<name> in {} zone {zone} for {} pointing where a failover to {target} would, wait until in effect, read back (production records untouched)",
                z.api.provider(),
                names.join(", ")
            );
            let step = DrillDns {
                region: target.to_string(),
                ids: records.iter().map(|d| d.id().to_string()).collect(),
                swept: swept_names(b, z),
                calls: z.api.calls(),
                kind: z.api.kind(),
                project: z.project.to_string(),
                zone_name: z.name.to_ascii_lowercase(),
                named: (records.iter())
                    .map(|d| (d.names().0.to_string(), d.names().1.to_string()))
                    .collect(),
                records: names,
                zone,
            };
            (step, description)
        })
        .collect();
    b.add_all(steps, StepKind::DrillDns, |s| {
        (s.zone.clone(), s.ids.clone(), Phase::Switch)
    });
}

/// Every name of the plan's traffic records in zone `z`, whatever its
/// switch (a drill of an earlier version of the plan, of another switch
/// mode, named its records so too).
fn swept_names(b: &Builder<'_>, z: Zone<'_>) -> Vec<String> {
    (crate::steps::placement::records(b.plan))
        .filter(|p| p.names().2.eq_ignore_ascii_case(z.name))
        .map(|p| p.names().0.to_string())
        .collect()
}

impl DrillDns {
    /// What it costs: its zone kind's reads, change, wait and poll.
    pub fn cost(&self) -> Cost {
        Cost {
            calls: self.calls.switch,
            waits: self.calls.waits,
            polls: Some(self.calls.poll),
        }
    }

    /// The drill records this run makes: one per plan record name (a
    /// weighted record's drill copy is a plain record with the target's
    /// value).
    async fn wanted(
        &self,
        cx: &Cx<'_>,
        records: &[&dyn Switching],
    ) -> Result<Vec<DnsRecord>, StepFailure> {
        let real = desired(cx, records).await?;
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

/// What a drill's DNS step publishes: when its records were in effect (the
/// drill's RTO clock stops there).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillDnsOutput {
    /// The zone.
    pub zone: String,
    /// The change (the last, where the provider's limits asked for more
    /// than one; empty when the records were there already).
    pub change_id: String,
    /// When it was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When it was in effect.
    pub in_sync_at: DateTime<Utc>,
    /// The drill records made.
    pub records: Vec<DnsRecord>,
}

impl StepOutput for DrillDnsOutput {
    const KIND: KindName = KindName::DrillDns;
}

#[async_trait]
impl Action for DrillDns {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        match records_of(cx.plan, &self.ids, &self.zone) {
            Ok(records) => vec![zone_finding(cx, records[0].zone()).await],
            Err(e) => vec![Finding::blocks(
                &self.zone,
                "global",
                "not in the plan",
                e.to_string(),
            )],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let records = records_of(cx.plan, &self.ids, &self.zone)?;
        // A record that follows a data resource points at the drill's copy,
        // made by the drill; every other one has its value in the plan.
        let fixed: Vec<DnsRecord> = (records.iter())
            .filter(|d| d.follows().is_none())
            .flat_map(|d| d.wanted(cx.plan, cx.target, None))
            .collect();
        no_value(&fixed, cx.target)?;
        let call = self.calls.switch.last().copied().unwrap_or_default();
        Ok((records.iter())
            .map(|d| {
                let (name, rtype, _) = d.names();
                Planned {
                    call: call.into(),
                    resource: drill_names::record_name(cx.run_id, name),
                    region: "global".into(),
                    current: "absent".into(),
                    desired: format!(
                        "{rtype} → {} (a drill copy of {name}; deleted at cleanup)",
                        match d.follows() {
                            Some(db) => format!("the drill's temporary {db} endpoint"),
                            None => d.change(cx.target),
                        }
                    ),
                    change: true,
                }
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let records = records_of(cx.plan, &self.ids, &self.zone)?;
        let z = records[0].zone();
        let found = zone_now(cx, z).await?;
        let want = self.wanted(cx, &records).await?;
        let cur = z.api.read(cx.clouds, z, &found, &want).await?;
        let made = swaps(&want, &cur);
        let mut change_id = String::new();
        let submitted_at = Utc::now();
        if !made.is_empty() {
            let sent = send(cx, (z, &found), &made, false).await?;
            if let Some(e) = sent.error {
                return Err(e.into());
            }
            let polled: &[String] = if sent.in_effect {
                &[]
            } else {
                &sent.change_ids
            };
            await_changes(cx, z, polled).await?;
            change_id = sent.change_ids.last().cloned().unwrap_or_default();
        }
        let in_sync_at = Utc::now();
        let back = z.api.read(cx.clouds, z, &found, &want).await?;
        let wrong = mismatches(&want, &back);
        if !wrong.is_empty() {
            return Err(StepFailure::state(
                format!(
                    "drill records in {} did not read back: {}",
                    self.zone,
                    wrong.join("; ")
                ),
                "run the drill again: the step reads first; its cleanup removes what it created",
                &self.zone,
                "global",
            ));
        }
        DrillDnsOutput {
            zone: found.dns_name,
            change_id,
            submitted_at,
            in_sync_at,
            records: want,
        }
        .to_output()
    }

    fn creates(&self, run_id: &str) -> Vec<Temp> {
        let mut out: Vec<Temp> = Vec::new();
        for (name, rtype) in &self.named {
            let t = Temp::Record {
                kind: self.kind,
                project: self.project.clone(),
                zone: self.zone_name.clone(),
                name: drill_names::record_name(run_id, name),
                rtype: rtype.clone(),
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }
}

#[async_trait]
impl Drilled for DrillDns {
    /// Drill records in the zone under one of the plan's names there
    /// (`drill-<short id>.<name>`: a record carries no tags).
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let Some(z) = Zone::of(self.kind, &self.project, &self.zone_name) else {
            return Vec::new();
        };
        let listed = look.zone_sets(z).await;
        records_under(&listed, z, self.swept.iter().map(String::as_str))
    }
}

/// Deletes drill record `name`/`rtype` of zone `z` (every set of that name
/// and type, each exactly as read) and reads the zone again to prove it is
/// gone. Only names under the drill prefix are ever deleted.
pub async fn remove(
    clouds: &Clouds,
    z: Zone<'_>,
    (name, rtype): (&str, &str),
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    if !name.starts_with(drill_names::RECORD_PREFIX) {
        return Ok((
            CleanupResult::NotOurs,
            format!("{name} is not a drill record name"),
        ));
    }
    let subject = z.subject();
    let Some(found) = z.api.find(clouds, z).await? else {
        return Ok((
            CleanupResult::Absent,
            format!("{} zone {subject} does not exist", z.api.provider()),
        ));
    };
    let sets = z.api.sets(clouds, z, &found, (name, rtype)).await?;
    if sets.is_empty() {
        return Ok((
            CleanupResult::Absent,
            format!("{} finds no {name} {rtype} in {subject}", z.api.provider()),
        ));
    }
    let (id, in_effect) = z.api.delete(clouds, z, &found, &sets).await?;
    let in_effect = in_effect || wait_in_effect(clouds, z, &id, poll, deadline).await?;
    let left = z.api.sets(clouds, z, &found, (name, rtype)).await?;
    Ok(if left.is_empty() {
        let state = if in_effect {
            "in effect"
        } else {
            "not yet in effect"
        };
        (
            CleanupResult::Removed,
            format!(
                "deleted (change {id}, {state}); a read then found no {name} {rtype} in {subject}"
            ),
        )
    } else {
        (
            CleanupResult::Failed,
            format!(
                "{name} {rtype} still reads {} in {subject} after the delete",
                left.len()
            ),
        )
    })
}

/// Waits for change `id` of zone `z`, just sent and not yet in effect: the
/// first look after one interval (the change's own answer was the look at
/// once), then at doubling intervals until `deadline`.
async fn wait_in_effect(
    clouds: &Clouds,
    z: Zone<'_>,
    id: &str,
    (first, longest): (Duration, Duration),
    deadline: Instant,
) -> Result<bool, CloudError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(false);
    }
    tokio::time::sleep(first.min(left)).await;
    let done = poll_until(
        &format!("{} change {id} to be in effect", z.api.provider()),
        (first.saturating_mul(2).min(longest), longest),
        deadline,
        || async { Ok(z.api.in_effect(clouds, z, id).await?.then_some(())) },
    )
    .await?;
    Ok(done.is_some())
}
