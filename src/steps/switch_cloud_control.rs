//! `switch-cloud-control`: the data-plane switch of a `[[cloud_dns]]`
//! record with `switch = "health-check"` (its setup, `drctl dns prepare`,
//! is `cloud_dns_setup.rs`'s).
//!
//! Why no Cloud DNS call: Cloud DNS's API is the control plane, and the
//! control plane may be what is down when a failover is needed. The record
//! set carries a `primaryBackup` routing policy (primary: the home region's
//! value; backups: the other regions'), whose targets Cloud DNS
//! health-checks; each region's serving endpoint answers its health path
//! from that region's control object in Cloud Storage (drained: unhealthy;
//! unreadable: unhealthy, so it fails closed). Failing over to R writes R's
//! control to `serve` and every other region's to `drain`, and Cloud DNS's
//! answers follow the health of the targets.
//!
//! The writes are `switch-control`'s, through the same function
//! ([`write_controls`]): each control read with its generation, decided
//! (pure, `controls::decide`), written conditionally with the run's
//! fencing token, bounded; the target's must succeed, the others are best
//! effort (a region that does not answer is drained closed anyway).
//! `verify-cloud-resolution` then resolves the name until it answers the
//! target's value, and ends the RTO clock.
//!
//! `drctl dns prepare` ([`super::cloud_dns_setup::prepare`], calm days)
//! creates the controls that do not exist (home serve, the others drain;
//! an existing control's state is never overwritten) and makes the record
//! set carry the routing policy in one atomic Cloud DNS change whose
//! deletion is the set as read.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::cloud_dns_setup::{read_controls, wanted};
use super::controls::{SwitchControlOutput, health_check_records, planned, switch};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::plan::kinds::CloudDnsSpec;
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, Phase};

/// Write every health-check `[[cloud_dns]]` record's controls: the
/// target's GCP region serves, the others drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchCloudControl {
    /// The target's GCP region.
    pub region: String,
    /// The records switched.
    #[serde(serialize_with = "super::records::record_ids")]
    pub records: Vec<CloudDnsSpec>,
}

/// Part of the recovery: traffic moves here (the RTO clock ends at
/// `verify-cloud-resolution`).
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &["gcs:objects.get", "gcs:objects.insert"],
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// One switch per plan, over all its health-check Cloud DNS records.
pub fn compile(b: &mut Builder<'_>) {
    let records = health_check_records(b);
    let Some(first) = records.first() else {
        return;
    };
    // The target site's GCP region (plan::sites).
    let region = first.sites.gcp(b.target).to_string();
    let description = format!(
        "controls of {}: {region} serve, the other regions drain (Cloud Storage writes; no Cloud DNS API call)",
        super::records::joined_names(&records)
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::SwitchCloudControl(SwitchCloudControl { region, records }),
        None,
        Phase::of(ResourceKind::CloudDns),
        resources,
        description,
    );
}

impl StepOutput for SwitchCloudControlOutput {
    const KIND: KindName = KindName::SwitchCloudControl;
}

/// What `switch-cloud-control` publishes: `switch-control`'s output (every
/// control, the token, when the target's were written).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SwitchCloudControlOutput(pub SwitchControlOutput);

#[async_trait]
impl super::Ready for SwitchCloudControl {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        read_controls(cx, &self.records, &self.region).await
    }
}

#[async_trait]
impl Action for SwitchCloudControl {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        super::Ready::readiness(self, cx).await
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let found = read_controls(cx, &self.records, &self.region).await;
        let call =
            |_: &_| "gcs:objects.get + objects.insert ifGenerationMatch (no Cloud DNS call)".into();
        Ok(planned(wanted(&self.records, &self.region), found, call))
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let hint =
            "check the control objects in Cloud Storage (drctl status), then `drctl runs resume`";
        let wanted = wanted(&self.records, &self.region);
        let out = switch(cx, &wanted, &self.region, (hint, "its target")).await?;
        SwitchCloudControlOutput(out).to_output()
    }
}
