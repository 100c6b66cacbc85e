//! `verify-dns`: wait until the zone's change batches are INSYNC, then read
//! the records back and fail unless they are what `switch-dns` set.
//!
//! A step of its own (not the tail of `switch-dns`) so that the journal tells
//! "submitted" from "in effect": a crash between the two resumes by waiting,
//! not by submitting again, and the RTO clock stops at the read-back.

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};

use super::switch_dns::{current, desired, matches, show, zone};
use super::{Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, Traits, wait_for};
use crate::cloud::HostedZone;
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
    recovery: true,
    ends_rto: true,
    irreversible: false,
    rpo: None,
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

#[async_trait]
impl Action for VerifyDns {
    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads this kind's resources itself, in more detail.
        Vec::new()
    }

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
        let switch = cx
            .output(KindName::SwitchDns, &self.zone)
            .cloned()
            .unwrap_or(Value::Null);
        let ids: Vec<String> = switch["change_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        // Already INSYNC in the change's own answer: nothing to poll.
        let polled = if switch["in_sync"] == json!(true) {
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
        let z = match serde_json::from_value::<HostedZone>(
            json!({"id": switch["zone_id"], "name": switch["zone"]}),
        ) {
            Ok(z) => z,
            Err(_) => zone(cx, &self.zone).await?,
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
        Ok(
            json!({ "zone": self.zone, "change_ids": ids, "in_sync_at": in_sync_at, "records": cur }),
        )
    }
}
