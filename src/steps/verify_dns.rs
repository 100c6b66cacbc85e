//! `verify-dns`: wait until the zone's change batches are INSYNC, then read
//! the records back and fail unless they are what `switch-dns` set.
//!
//! A step of its own (not the tail of `switch-dns`) so that the journal tells
//! "submitted" from "in effect": a crash between the two resumes by waiting,
//! not by submitting again, and the RTO clock stops at the read-back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::records::SwitchDnsOutput;
use super::records::{current, desired, matches, show, zone};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{DnsRecord, HostedZone};
use crate::plan::spec::DnsSpec;
use crate::steps::graph::{Builder, Phase};

/// Wait for the switch to be INSYNC and read it back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyDns {
    /// Zone name.
    pub zone: String,
    /// The records switched (read back against the same desired state).
    #[serde(skip)]
    pub records: Vec<DnsSpec>,
}

/// Stops the RTO clock: traffic is in the target once this reads back.
pub const TRAITS: Traits = Traits {
    rto_end: Some(super::traits::INSYNC),
    time: Cost {
        calls: &["route53:ListResourceRecordSets"],
        waits: &["route53:ChangeResourceRecordSets"],
        polls: Some("route53:GetChange"),
    },
    converges: true,
    ..Traits::RECOVERY
};

/// One verification per switch.
pub fn compile(b: &mut Builder<'_>) {
    let switches: Vec<(String, Vec<DnsSpec>, Vec<String>)> = b
        .steps()
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::SwitchDns(sw) => {
                Some((sw.zone.clone(), sw.records.clone(), s.resources.clone()))
            }
            _ => None,
        })
        .collect();
    for (zone, records, resources) in switches {
        let description = format!("wait for INSYNC in {zone} and read the records back");
        b.add(
            StepKind::VerifyDns(VerifyDns {
                zone: zone.clone(),
                records,
            }),
            Some(zone),
            Phase::Verify,
            resources,
            description,
        );
    }
}

/// What a zone's verification publishes: when the change was INSYNC (the
/// RTO clock stops there) and the records read back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyDnsOutput {
    /// The zone.
    pub zone: String,
    /// The changes waited for.
    pub change_ids: Vec<String>,
    /// When they were INSYNC.
    pub in_sync_at: DateTime<Utc>,
    /// The records read back.
    pub records: Vec<Option<DnsRecord>>,
}

impl StepOutput for VerifyDnsOutput {
    const KIND: KindName = KindName::VerifyDns;
}

#[async_trait]
impl Action for VerifyDns {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // The switch step of the same zone reports the zone.
        Vec::new()
    }

    async fn preview(&self, _cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(vec![Planned {
            call: "route53:GetChange, route53:ListResourceRecordSets".into(),
            resource: self.zone.clone(),
            region: "global".into(),
            current: "-".into(),
            desired: "change INSYNC, records read back as switched".into(),
            change: false,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let switch = cx.output_of::<SwitchDnsOutput>(Some(&self.zone));
        let ids: Vec<String> = switch
            .as_ref()
            .map(|s| s.change_ids.clone())
            .unwrap_or_default();
        // Already INSYNC in the change's own answer: nothing to poll.
        let polled = if switch.as_ref().is_some_and(|s| s.in_sync) {
            &[][..]
        } else {
            &ids[..]
        };
        for id in polled {
            wait_for(
                cx,
                &format!("Route 53 change {id} in {} to be INSYNC", self.zone),
                || async {
                    let info = cx.clouds.dns.change_status(id).await?;
                    Ok(info.in_sync.then_some(()))
                },
            )
            .await?;
        }
        let in_sync_at = Utc::now();
        // The zone the switch used (ids do not change), else read it.
        let z = match switch.filter(|s| !s.zone_id.is_empty() && !s.zone.is_empty()) {
            Some(s) => HostedZone {
                id: s.zone_id,
                name: s.zone,
            },
            None => zone(cx, &self.zone).await?,
        };
        let want = desired(cx, &self.records).await?;
        let cur = current(cx, &z, &want).await?;
        let wrong: Vec<String> = want
            .iter()
            .zip(&cur)
            .filter(|(w, c)| !matches(c, w))
            .map(|(w, c)| {
                format!(
                    "{} is {} (expected {})",
                    w.name,
                    show(c),
                    show(&Some(w.clone()))
                )
            })
            .collect();
        if !wrong.is_empty() {
            return Err(StepFailure::state(
                format!(
                    "records in {} did not read back as switched: {}",
                    self.zone,
                    wrong.join("; ")
                ),
                "someone else may be changing the zone; inspect it, then `drctl runs resume`",
                &self.zone,
                "global",
            ));
        }
        VerifyDnsOutput {
            zone: self.zone.clone(),
            change_ids: ids,
            in_sync_at,
            records: cur,
        }
        .to_output()
    }
}
