//! `drill-cloud-dns`: a drill's Cloud DNS. For each `[[cloud_dns]]` record
//! of the plan, a drill record set `drill-<short id>.<name>` in the same
//! managed zone, pointing where the record would point after a failover
//! (the target's value): one change adding it (Cloud DNS refuses an
//! addition whose name exists), polled until `done`, then read back. The
//! production record set is never changed: this measures a Cloud DNS
//! change's propagation without moving a user, and it is where the drill's
//! RTO clock stops, as `drill-dns` is for Route 53.
//!
//! The drill record is journaled ([`Temp::CloudRecord`]) before its change
//! is sent, so a crash leaves nothing unfound; the cleanup deletes it by
//! one change whose deletion is the set exactly as read, then reads that
//! nothing is left. A name that is not a drill's is never deleted.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::drill_names;
use super::leftovers::{Drill, Drilled, Left, Look, record_under};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, CloudRecordSet, Clouds};
use crate::journal::{CleanupResult, Temp};
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Create one Cloud DNS record's drill record set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillCloudDns {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The managed zone's name.
    pub zone: String,
    /// The production record's name (the drill record is named from it).
    pub name: String,
    /// Record type.
    pub rtype: String,
    /// TTL.
    pub ttl: i64,
    /// The target's value (what the record would hold after a failover).
    pub value: String,
    /// The target site's GCP region.
    pub region: String,
    /// Every `[[cloud_dns]]` name of the plan in the same managed zone,
    /// whatever its switch: what a sweep finds a drill's record sets under
    /// (not part of the step's identity: a journal's graph never names it).
    #[serde(skip)]
    pub swept: Vec<String>,
}

/// What the drill record publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillCloudDnsOutput {
    /// The drill record set's name.
    pub record: String,
    /// Its value.
    pub value: String,
    /// The change that added it (none: it was there already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    /// Seconds from the change's send to `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_seconds: Option<f64>,
}

impl StepOutput for DrillCloudDnsOutput {
    const KIND: KindName = KindName::DrillCloudDns;
}

/// Ends the drill's RTO clock: the drill record set `done` and read back.
pub const TRAITS: Traits = Traits {
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

/// A shadow drill makes a drill record for every records-mode Cloud DNS
/// record of the plan (`switch = "records"`).
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    // A data-plane record moves by its controls, not by a change: its
    // drill would rehearse those (not built yet), not Cloud DNS changes.
    let steps: Vec<DrillCloudDns> = (b.plan.spec.cloud_dns.iter())
        .filter(|r| r.switch == crate::plan::kinds::CloudSwitch::Records)
        .filter_map(|r| {
            Some(DrillCloudDns {
                swept: (b.plan.spec.cloud_dns.iter())
                    .filter(|o| (&o.project, &o.zone) == (&r.project, &r.zone))
                    .map(|o| o.name.clone())
                    .collect(),
                resource: r.id.clone(),
                project: r.project.clone(),
                zone: r.zone.clone(),
                name: r.name.clone(),
                rtype: r.rtype.clone(),
                ttl: r.ttl,
                value: r.target(b.target)?.to_string(),
                region: r.sites.gcp(b.target).to_string(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "create drill record drill-<id>.{} {} in Cloud DNS zone {} (project {}) pointing where a failover to {} would ({}), wait until done, read back (production records untouched)",
            s.name, s.rtype, s.zone, s.project, s.region, s.value
        );
        b.add(
            StepKind::DrillCloudDns(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudDns),
            vec![s.resource],
            description,
        );
    }
}

#[async_trait]
impl Drilled for DrillCloudDns {
    /// Drill record sets in the managed zone under one of the plan's
    /// names there (`drill-<short id>.<name>`: a record set carries no
    /// tags).
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let listed = look.record_sets(&self.project, &self.zone).await;
        let names = || self.swept.iter().map(String::as_str);
        (listed.iter())
            .filter_map(|r| {
                let drill = Drill::of_short(record_under(&r.name, names())?)?;
                let temp = Temp::CloudRecord {
                    project: self.project.clone(),
                    zone: self.zone.clone(),
                    name: r.name.clone(),
                    rtype: r.rtype.clone(),
                };
                Some(Left { temp, drill })
            })
            .collect()
    }
}

impl DrillCloudDns {
    fn wanted(&self, run_id: &str) -> CloudRecordSet {
        CloudRecordSet {
            name: drill_names::record_name(run_id, &self.name),
            rtype: self.rtype.clone(),
            ttl: self.ttl,
            rrdatas: vec![self.value.clone()],
            routed: false,
            primary_backup: None,
        }
    }

    async fn read(&self, cx: &Cx<'_>, name: &str) -> Result<Option<CloudRecordSet>, StepFailure> {
        Ok((cx.clouds.cloud_dns)
            .read_record_set(&self.project, &self.zone, name, &self.rtype)
            .await?)
    }
}

#[async_trait]
impl Action for DrillCloudDns {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("cloud dns zone {}", self.zone);
        match (cx.clouds.cloud_dns)
            .describe_zone(&self.project, &self.zone)
            .await
        {
            Ok(Some(z)) => vec![Finding::ok(
                &what,
                "global",
                format!("serves {}", z.dns_name),
            )],
            Ok(None) => vec![Finding::missing(&what, "global")],
            Err(e) => vec![Finding::unreadable(&what, "global", &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let want = self.wanted(cx.run_id);
        let have = self.read(cx, &want.name).await?;
        Ok(vec![Planned {
            call: "clouddns:changes.create".into(),
            resource: want.name.clone(),
            region: self.region.clone(),
            current: have
                .as_ref()
                .map_or("absent".into(), |h| h.rrdatas.join(" ")),
            desired: format!("{} {} (a drill record)", self.rtype, self.value),
            change: have.as_ref() != Some(&want),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let want = self.wanted(cx.run_id);
        let mut out = DrillCloudDnsOutput {
            record: want.name.clone(),
            value: self.value.clone(),
            ..DrillCloudDnsOutput::default()
        };
        let have = self.read(cx, &want.name).await?;
        if have.as_ref() != Some(&want) {
            cx.journal_temp(
                Temp::CloudRecord {
                    project: self.project.clone(),
                    zone: self.zone.clone(),
                    name: want.name.clone(),
                    rtype: self.rtype.clone(),
                },
                &self.resource,
                &self.region,
            )
            .await?;
            cx.fenced(
                &format!("clouddns:changes.create of drill record {}", want.name),
                &self.region,
            )
            .await?;
            let sent = Instant::now();
            let change = (cx.clouds.cloud_dns)
                .swap_record_sets(&self.project, &self.zone, &[(have.clone(), want.clone())])
                .await?;
            out.change = Some(change.id.clone());
            if !change.done {
                wait_for(
                    cx,
                    &format!("Cloud DNS change {} of {}", change.id, want.name),
                    || async {
                        let c = (cx.clouds.cloud_dns)
                            .dns_change(&self.project, &self.zone, &change.id)
                            .await?;
                        Ok(c.done.then_some(()))
                    },
                )
                .await?;
            }
            out.propagation_seconds = Some(sent.elapsed().as_secs_f64());
        }
        match self.read(cx, &want.name).await? {
            Some(back) if back == want => out.to_output(),
            other => Err(StepFailure::state(
                format!(
                    "drill record {} reads back as {:?}, not {}",
                    want.name,
                    other.map(|o| o.rrdatas),
                    self.value
                ),
                "run the drill again: the step reads first; its cleanup removes the drill record",
                &want.name,
                &self.region,
            )),
        }
    }
}

/// Removes drill record set `name`/`rtype` of `zone` (the cleanup): one
/// change deleting it as read, polled to `done`, then a read that finds
/// nothing. A name that is not a drill's is never touched.
pub async fn remove(
    clouds: &Clouds,
    (project, zone, name, rtype): (&str, &str, &str, &str),
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    if !name.starts_with(drill_names::RECORD_PREFIX) {
        return Ok((
            CleanupResult::NotOurs,
            format!("{name} is no drill's name: never deleted by a cleanup"),
        ));
    }
    let dns = &clouds.cloud_dns;
    let Some(have) = dns.read_record_set(project, zone, name, rtype).await? else {
        return Ok((
            CleanupResult::Absent,
            format!("resourceRecordSets.list finds no {name} {rtype} in {project}/{zone}"),
        ));
    };
    let change = dns.delete_record_set(project, zone, &have).await?;
    let done = poll_until(
        &format!("Cloud DNS change {} (deletion of {name})", change.id),
        poll,
        deadline,
        || async {
            let c = dns.dns_change(project, zone, &change.id).await?;
            Ok::<_, CloudError>(c.done.then_some(()))
        },
    )
    .await?;
    if done.is_none() {
        return Ok((
            CleanupResult::Failed,
            format!(
                "the deletion of {name} (change {}) was not done in time; run the cleanup again",
                change.id
            ),
        ));
    }
    match dns.read_record_set(project, zone, name, rtype).await? {
        None => Ok((
            CleanupResult::Removed,
            format!(
                "deleted (change {}, done); resourceRecordSets.list then found no {name} {rtype}",
                change.id
            ),
        )),
        Some(_) => Ok((
            CleanupResult::Failed,
            format!("{name} {rtype} is still in {project}/{zone} after its deletion"),
        )),
    }
}
