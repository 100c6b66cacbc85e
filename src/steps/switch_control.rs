//! `switch-control`: a data-plane traffic switch, for every traffic kind
//! whose switch is on the data plane: Route 53's `switch = "health-check"`
//! records (failover records, each region's following a health check that
//! reads that region's control object, see [`crate::cloud::control`]) and
//! Cloud DNS's (a `primaryBackup` routing policy whose targets are
//! health-checked, each region's serving endpoint answering from its
//! control in Cloud Storage). Each record is read through its traffic role
//! ([`Points::controls`], [`Resolving`]): no `match` on kinds here.
//!
//! Failing over to R writes R's controls to `serve` and every other
//! region's to `drain`, **each through its own region's endpoint**, with
//! no DNS API call: Route 53's API is hosted in us-east-1 alone, Cloud
//! DNS's is a control plane, and this switch must work when either is
//! what is gone.
//!
//! Every write is bounded and they run concurrently. The target's controls
//! must be written (the switch fails otherwise); a control in a region that
//! does not answer is recorded and not waited for: its health check cannot
//! read it either, so that region is drained closed.
//!
//! A control is a compare-and-swap: read with its version, decided (pure,
//! [`super::controls::decide`]), then replaced `If-Match` that version
//! (a Cloud Storage generation), carrying the run's fencing token. A
//! control already written by a newer run (a higher token) is never
//! overwritten.
//!
//! `verify-resolution` then stops the RTO clock when the names resolve to
//! the target. Readiness reads the controls and each record's setup as
//! `drctl dns prepare` makes it (its kind's API, bounded, beside the path).

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::controls::{ControlRef, planned, read_controls, switch, wanted};
use super::{Action, Cost, Cx, Finding, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::plan::Plan;
use crate::plan::kinds::traffic::{Points, Resolving, resolving};
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, Phase};

/// Write every data-plane record's controls: the target serves, the
/// others drain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchControl {
    /// Target region.
    pub region: String,
    /// The records switched (their resource ids), each through its traffic
    /// role.
    pub records: Vec<String>,
    /// The calls it makes, by where its controls live (S3, Cloud
    /// Storage, or both).
    #[serde(skip)]
    pub calls: &'static [&'static str],
}

/// A switch of controls in S3.
const S3_CALLS: &[&str] = &["s3:PutObject", "s3:PutObject"];
/// A switch of controls in Cloud Storage.
const GCS_CALLS: &[&str] = &["gcs:objects.get", "gcs:objects.insert"];
/// A switch of controls in both (written at once).
const BOTH_CALLS: &[&str] = &[
    "s3:PutObject",
    "s3:PutObject",
    "gcs:objects.get",
    "gcs:objects.insert",
];

/// Part of the recovery: traffic moves here. Its calls are its controls'
/// ([`SwitchControl::cost`]).
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: S3_CALLS,
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// A retired `switch-cloud-control`'s (Cloud DNS's controls alone, now
/// this step).
pub const RETIRED_CLOUD: Traits = Traits {
    time: Cost {
        calls: GCS_CALLS,
        ..Cost::NONE
    },
    ..TRAITS
};

/// One switch per plan, over every data-plane record of every kind.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let records: Vec<&dyn Resolving> = resolving(b.plan).collect();
    if records.is_empty() {
        return;
    }
    let target = b.target.to_string();
    let others: Vec<&str> = (b.plan.regions().iter())
        .map(String::as_str)
        .filter(|r| *r != target)
        .collect();
    let names: Vec<&str> = records.iter().map(|d| d.names().0).collect();
    let description = format!(
        "controls of {}: {target} serve, {} drain (each through its own region; no DNS API call)",
        names.join(", "),
        others.join(", ")
    );
    let resources: Vec<String> = records.iter().map(|d| d.resource().to_string()).collect();
    let step = SwitchControl {
        region: target,
        records: resources.clone(),
        calls: calls_of(&records),
    };
    b.add(
        StepKind::SwitchControl(step),
        None,
        Phase::of(ResourceKind::Dns),
        resources,
        description,
    );
}

/// The calls of a switch of `records`' controls, by where they live.
fn calls_of(records: &[&dyn Resolving]) -> &'static [&'static str] {
    let urls: Vec<String> = (records.iter())
        .flat_map(|d| d.controls().into_iter().map(|c| c.url.to_string()))
        .collect();
    let gcs = urls.iter().any(|u| u.starts_with("gs://"));
    let s3 = urls.iter().any(|u| !u.starts_with("gs://"));
    match (s3, gcs) {
        (true, true) => BOTH_CALLS,
        (false, true) => GCS_CALLS,
        _ => S3_CALLS,
    }
}

impl SwitchControl {
    /// What it costs: its controls' reads and writes.
    pub fn cost(&self) -> Cost {
        Cost {
            calls: self.calls,
            ..Cost::NONE
        }
    }

    /// Its records, through their traffic roles, in plan order; a record
    /// the plan no longer has fails the step, naming it.
    #[allow(clippy::result_large_err)] // StepFailure, the steps' error
    fn roles<'p>(&self, plan: &'p Plan) -> Result<Vec<&'p dyn Resolving>, StepFailure> {
        let found: Vec<&dyn Resolving> = resolving(plan)
            .filter(|d| self.records.iter().any(|r| r == d.resource()))
            .collect();
        match (self.records.iter()).find(|r| !found.iter().any(|d| d.resource() == r.as_str())) {
            Some(gone) => Err(StepFailure::state(
                format!("the plan has no data-plane record `{gone}`"),
                "run the plan this run was started with",
                gone,
                &self.region,
            )),
            None => Ok(found),
        }
    }

    /// Its records as their traffic roles' reads.
    fn points<'p>(records: &[&'p dyn Resolving]) -> Vec<&'p dyn Points> {
        records.iter().map(|d| *d as &dyn Points).collect()
    }
}

#[async_trait]
impl super::Ready for SwitchControl {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let records = match self.roles(cx.plan) {
            Ok(r) => r,
            Err(e) => {
                return vec![Finding::blocks(
                    "data-plane records",
                    &self.region,
                    "missing",
                    e.to_string(),
                )];
            }
        };
        let points = Self::points(&records);
        let (mut out, setup) = futures::join!(
            read_controls(cx, &points),
            super::dns_setup::setup_findings(cx, &records)
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
        let points = Self::points(&self.roles(cx.plan)?);
        let found = read_controls(cx, &points).await;
        let call = |c: &ControlRef| {
            format!(
                "read + conditional write of {} via {} (no DNS API call)",
                c.url, c.region
            )
        };
        Ok(planned(wanted(&points, cx.target), found, call))
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let points = Self::points(&self.roles(cx.plan)?);
        let hint = "check the control objects in the target's region (drctl status), then `drctl runs resume`";
        (switch(cx, &wanted(&points, cx.target), hint).await?).to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reference plan with a data-plane record (Route 53's, Cloud
    /// DNS's) gets one `switch-control` over exactly those records, whose
    /// controls are each record's own, wanted serving in the target's
    /// site alone, and whose calls are the object store its controls live
    /// in; a plan without gets none.
    #[test]
    fn every_data_plane_record_of_every_kind_is_switched_by_the_one_step() {
        let plans = (crate::plan::reference_with_gcp().into_iter())
            .chain([crate::plan::orders_gcp_health_checked()]);
        let mut calls = std::collections::BTreeSet::new();
        for plan in plans {
            let target = plan.regions()[1].clone();
            let g = crate::steps::graph::compile(&plan, &target).expect("graph");
            let steps: Vec<&SwitchControl> = (g.steps.iter())
                .filter_map(|s| match &s.kind {
                    StepKind::SwitchControl(c) => Some(c),
                    _ => None,
                })
                .collect();
            let records: Vec<&dyn Resolving> = resolving(&plan).collect();
            if records.is_empty() {
                assert!(steps.is_empty(), "{}", plan.name());
                continue;
            }
            assert_eq!(steps.len(), 1, "{}", plan.name());
            let ids: Vec<&str> = records.iter().map(|d| d.resource()).collect();
            assert_eq!(steps[0].records, ids, "{}", plan.name());
            let points = SwitchControl::points(&records);
            let wanted = wanted(&points, &target);
            let count: usize = records.iter().map(|d| d.controls().len()).sum();
            assert_eq!(wanted.len(), count, "{}", plan.name());
            for d in &records {
                for c in d.controls() {
                    let (_, state) = (wanted.iter())
                        .find(|(w, _)| w.url == c.url && w.region == c.via)
                        .expect("each control wanted, through its own region");
                    let serves = *state == crate::cloud::control::ControlState::Serve;
                    assert_eq!(serves, c.site == target, "{}: {}", plan.name(), c.url);
                }
            }
            let cost = StepKind::SwitchControl(steps[0].clone()).time();
            calls.extend(cost.calls.iter().copied());
        }
        assert!(calls.contains("s3:PutObject"), "{calls:?}");
        assert!(calls.contains("gcs:objects.insert"), "{calls:?}");
    }
}
