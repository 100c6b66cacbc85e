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
use super::resolution::records_of;
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
    let resources: Vec<String> = records.iter().map(|d| d.id().to_string()).collect();
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

    /// Its records, through their traffic roles, in plan order.
    fn roles<'p>(&self, plan: &'p Plan) -> Result<Vec<&'p dyn Resolving>, StepFailure> {
        records_of(plan, &self.records, &self.region)
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
            let ids: Vec<&str> = records.iter().map(|d| d.id()).collect();
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

/// Readiness of a Cloud DNS data-plane record, through its role: its
/// policy's gaps refuse a failover at preflight, and an API that never
/// answers is said, bounded, never a block.
#[cfg(test)]
mod readiness_tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::{CloudDns, CloudDnsChange, CloudDnsZone, CloudError, CloudRecordSet};

    const TARGET: &str = "us-east4";

    /// The health-checked orders-gcp world, `dns prepare` made.
    async fn prepared() -> (FakeCloud, Plan) {
        let plan = crate::plan::orders_gcp_health_checked();
        let f = FakeCloud::new();
        crate::plan::kinds::seed_plan(&f, &plan);
        crate::steps::dns_setup::prepare(&f.clouds(), &plan, None)
            .await
            .expect("dns prepare");
        (f, plan)
    }

    /// The plan's `switch-control`'s readiness for a failover to us-east4.
    async fn readiness(clouds: &crate::cloud::Clouds, plan: &Plan) -> Vec<Finding> {
        let g = crate::steps::graph::compile(plan, TARGET).expect("graph");
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::SwitchControl(c) => Some(c.clone()),
                _ => None,
            })
            .expect("a switch-control");
        let outputs = BTreeMap::new();
        let cx = Cx::for_test(clouds, plan, TARGET, &outputs, &g.steps);
        super::super::Ready::readiness(&step, &cx).await
    }

    fn setup_of(found: &[Finding]) -> &Finding {
        (found.iter())
            .find(|f| f.resource.starts_with("data-plane switch setup of"))
            .expect("the setup's finding")
    }

    #[tokio::test]
    async fn a_prepared_cloud_dns_record_is_ready_and_says_its_policy_is_in_place() {
        let (f, plan) = prepared().await;
        let found = readiness(&f.clouds(), &plan).await;
        assert!(found.iter().all(|f| f.problem.is_none()), "{found:#?}");
        let setup = setup_of(&found);
        assert_eq!(
            setup.state,
            "the record set's primaryBackup policy in place"
        );
        let controls = found
            .iter()
            .filter(|f| f.resource.starts_with("control gs://"));
        assert_eq!(controls.count(), 2, "{found:#?}");
    }

    /// Regression: a health-check Cloud DNS record whose set had lost its
    /// policy passed preflight (only Route 53's setup was checked there),
    /// and the failover wrote the controls before its wait found that the
    /// name could never answer the target. Preflight now refuses it,
    /// naming the gap and the fix.
    #[tokio::test]
    async fn regression_a_cloud_dns_record_without_its_policy_passed_preflight() {
        let (f, plan) = prepared().await;
        let d = &plan.spec.cloud_dns[0];
        let plain = CloudRecordSet {
            name: d.name.clone(),
            rtype: d.rtype.clone(),
            ttl: d.ttl,
            rrdatas: vec!["10.0.1.1".into()],
            routed: false,
            primary_backup: None,
        };
        f.put_cloud_record(&d.project, &d.zone, plain);
        let found = readiness(&f.clouds(), &plan).await;
        let setup = setup_of(&found);
        let problem = setup.problem.as_deref().expect("blocks");
        for want in [
            "primaryBackup absent: the record set answers its own values",
            "cannot resolve to us-east4 without it",
            "drctl dns prepare --plan orders-gcp",
        ] {
            assert!(problem.contains(want), "{want:?} in {problem}");
        }
    }

    /// A Cloud DNS whose API never answers (the control plane gone).
    struct Hung;

    fn not_asked(op: &'static str) -> CloudError {
        let kind = crate::cloud::ErrorKind::Client;
        CloudError::new("clouddns", op, "-", "global", kind, "not asked")
    }

    #[async_trait]
    impl CloudDns for Hung {
        async fn describe_zone(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<CloudDnsZone>, CloudError> {
            std::future::pending().await
        }
        async fn read_record_set(
            &self,
            _: &str,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<Option<CloudRecordSet>, CloudError> {
            std::future::pending().await
        }
        async fn list_record_sets(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Vec<CloudRecordSet>, CloudError> {
            Err(not_asked("resourceRecordSets.list"))
        }
        async fn swap_record_sets(
            &self,
            _: &str,
            _: &str,
            _: &[(Option<CloudRecordSet>, CloudRecordSet)],
        ) -> Result<CloudDnsChange, CloudError> {
            Err(not_asked("changes.create"))
        }
        async fn delete_record_set(
            &self,
            _: &str,
            _: &str,
            _: &CloudRecordSet,
        ) -> Result<CloudDnsChange, CloudError> {
            Err(not_asked("changes.create"))
        }
        async fn dns_change(
            &self,
            _: &str,
            _: &str,
            _: &str,
        ) -> Result<CloudDnsChange, CloudError> {
            Err(not_asked("changes.get"))
        }
        async fn pending_dns_changes(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Vec<CloudDnsChange>, CloudError> {
            Err(not_asked("changes.list"))
        }
    }

    /// Cloud DNS's API is beside the path: one that never answers makes
    /// the setup "not verifiable" after the read bound, and the failover
    /// is not blocked for it (its controls, data plane, still read).
    #[tokio::test(start_paused = true)]
    async fn a_cloud_dns_api_that_never_answers_is_not_verifiable_and_blocks_nothing() {
        let (f, plan) = prepared().await;
        let mut clouds = f.clouds();
        clouds.cloud_dns = Arc::new(Hung);
        let started = tokio::time::Instant::now();
        let found = readiness(&clouds, &plan).await;
        let took = started.elapsed();
        assert!(found.iter().all(|f| f.problem.is_none()), "{found:#?}");
        let setup = setup_of(&found);
        assert!(
            setup
                .state
                .starts_with("setup not verifiable: Cloud DNS's API did not answer within"),
            "{}",
            setup.state
        );
        let bound = crate::steps::dns_setup::SETUP_TIMEOUT;
        assert!(
            took >= bound && took < bound + Duration::from_secs(1),
            "{took:?}"
        );
    }
}
