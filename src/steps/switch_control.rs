//! `switch-control`: a data-plane traffic switch. The plan's
//! `switch = "health-check"` records are Route 53 failover records, each
//! region's following a health check that reads that region's control
//! object (see [`crate::cloud::control`]). Failing over to R writes R's
//! controls to `serve` and every other region's to `drain`, **each through
//! its own region's endpoint**, with no Route 53 API call: Route 53's API is
//! hosted in us-east-1 alone, and this switch must work when us-east-1 is the
//! region that is gone.
//!
//! Every write is bounded and they run concurrently. The target's controls
//! must be written (the switch fails otherwise); a control in a region that
//! does not answer is recorded and not waited for: its health check cannot
//! read it either, so that region is drained closed.
//!
//! A control is a compare-and-swap: read with its version, decided (pure,
//! [`super::controls::decide`]), then replaced `If-Match` that version, carrying the run's
//! fencing token. A control already written by a newer run (a higher
//! token) is never overwritten.
//!
//! `verify-resolution` then stops the RTO clock when the names resolve to
//! the target at the zone's authoritative servers.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::controls::{ControlRef, data_plane_records, planned, read_controls, switch, wanted};
use super::{Action, Cost, Cx, Finding, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::plan::spec::{DnsSpec, ResourceKind};
use crate::steps::graph::{Builder, Phase};

/// Write every health-check record's controls: the target serves, the
/// others drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchControl {
    /// Target region.
    pub region: String,
    /// The records switched (the plan's `health-check` entries).
    #[serde(serialize_with = "super::records::record_ids")]
    pub records: Vec<DnsSpec>,
}

/// Part of the recovery: traffic moves here.
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &["s3:PutObject", "s3:PutObject"],
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// One switch per plan, over all its health-check records.
pub fn compile(b: &mut Builder<'_>) {
    let records = data_plane_records(b);
    if records.is_empty() {
        return;
    }
    let target = b.target.to_string();
    let others: Vec<&str> = (b.plan.regions().iter())
        .map(String::as_str)
        .filter(|r| *r != target)
        .collect();
    let description = format!(
        "controls of {}: {target} serve, {} drain (each through its own region; no Route 53 API call)",
        super::records::joined_names(&records),
        others.join(", ")
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::SwitchControl(SwitchControl {
            region: target,
            records,
        }),
        None,
        Phase::of(ResourceKind::Dns),
        resources,
        description,
    );
}

#[async_trait]
impl super::Ready for SwitchControl {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let (mut out, setup) = futures::join!(
            read_controls(cx, &self.records),
            super::dns_setup::setup_findings(cx, &self.records)
        );
        out.extend(setup);
        out
    }
}

#[async_trait]
impl Action for SwitchControl {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        super::Ready::readiness(self, cx).await
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let found = read_controls(cx, &self.records).await;
        let call = |c: &ControlRef| {
            format!(
                "s3:GetObject + PutObject If-Match via {} (no Route 53 call)",
                c.region
            )
        };
        Ok(planned(wanted(&self.records, cx.target), found, call))
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let hint = "check the control buckets in the target region (drctl status), then `drctl runs resume`";
        let wanted = wanted(&self.records, cx.target);
        (switch(cx, &wanted, cx.target, (hint, "its health check")).await?).to_output()
    }
}
