//! `verify-cloud-resolution`: a health-check `[[cloud_dns]]` switch is in
//! effect when the name resolves to the target's value, asked of the
//! world's DNS (the settings' `dns_servers`, else the zone's NS servers),
//! N answers in a row; it ends the RTO clock.
//!
//! Why resolution and not Cloud DNS's API: the switch
//! (`switch-cloud-control`) made no Cloud DNS call because the control
//! plane may be what is down; what clients see is what the name servers
//! answer. The loop is `verify-resolution`'s
//! ([`super::resolution::resolve_until`]): same streak, same
//! pauses, same clock rule (the first of the N answers); and so is the
//! wait beside it ([`super::resolution::watch`]): once the answer stays
//! wrong, the controls and, where Cloud DNS's API answers, the record
//! set's routing policy are read (the kind's answer to
//! [`super::resolution::Watched`]), and a set that cannot answer the
//! target fails the step then instead of at the end of the RTO budget.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::resolution::{
    Asked, CONSECUTIVE_ANSWERS, Resolved, Streak, VerifyResolutionOutput, resolve_until, watch,
};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::plan::kinds::CloudDnsSpec;
use crate::steps::graph::{Builder, Phase};

/// Resolve every health-check Cloud DNS record until it answers the
/// target's value N times in a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyCloudResolution {
    /// The target's GCP region.
    pub region: String,
    /// The records.
    #[serde(serialize_with = "super::records::record_names")]
    pub records: Vec<CloudDnsSpec>,
}

/// Stops the RTO clock: clients are sent to the target once this holds.
pub const TRAITS: Traits = Traits {
    rto_end: Some(super::traits::RESOLVED),
    time: Cost {
        calls: &[],
        waits: &["clouddns:HealthCheckFailover"],
        polls: Some("dns:query"),
    },
    converges: true,
    ..Traits::RECOVERY
};

/// One verification per plan with health-check Cloud DNS records.
pub fn compile(b: &mut Builder<'_>) {
    let records = super::controls::health_check_records(b);
    let Some(first) = records.first() else {
        return;
    };
    let region = first.sites.gcp(b.target).to_string();
    let description = format!(
        "resolve {} until they answer {region}'s values {CONSECUTIVE_ANSWERS} times in a row (no Cloud DNS API call on the path)",
        super::records::joined_names(&records)
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::VerifyCloudResolution(VerifyCloudResolution { region, records }),
        None,
        Phase::Verify,
        resources,
        description,
    );
}

/// What it publishes: `verify-resolution`'s output (`in_sync_at` is the
/// RTO clock's end).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct VerifyCloudResolutionOutput(pub VerifyResolutionOutput);

impl StepOutput for VerifyCloudResolutionOutput {
    const KIND: KindName = KindName::VerifyCloudResolution;
}

impl VerifyCloudResolution {
    async fn one(&self, cx: &Cx<'_>, d: &CloudDnsSpec) -> Result<Resolved, StepFailure> {
        let Some(target) = d.targets.get(&self.region) else {
            return Err(StepFailure::state(
                format!("cloud_dns `{}` has no target for {}", d.id, self.region),
                "add the region's value to the record's targets",
                &d.id,
                &self.region,
            ));
        };
        let hint = format!(
            "read the controls (drctl status) and the record's routing policy (`gcloud dns record-sets describe {} --type {} --zone {} --project {}`); `drctl dns prepare --plan {}` makes what is missing",
            d.name,
            d.rtype,
            d.zone,
            d.project,
            cx.plan.name()
        );
        let asked = Asked {
            id: &d.id,
            zone: d.resolver_zone(),
            name: &d.name,
            rtype: &d.rtype,
            target,
            hint: &hint,
        };
        let streak = Mutex::new(Streak::default());
        let started = tokio::time::Instant::now();
        let beside = watch(cx, d, target, &streak, started);
        resolve_until(cx, &asked, &streak, started, beside).await
    }
}

#[async_trait]
impl Action for VerifyCloudResolution {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let mut out = Vec::new();
        for d in &self.records {
            let now = cx
                .clouds
                .resolver
                .resolve(d.resolver_zone(), &d.name, &d.rtype)
                .await
                .map(|v| v.join(" "))
                .unwrap_or_else(|e| format!("no answer ({})", e.kind.as_str()));
            let want = d.targets.get(&self.region).cloned().unwrap_or_default();
            out.push(Planned {
                call: format!(
                    "dns:query at {} (no Cloud DNS call on the path)",
                    cx.clouds.resolver.servers()
                ),
                resource: format!("{} {}", d.name, d.rtype),
                region: self.region.clone(),
                change: !super::resolution::names_target(
                    &now.split(' ').map(String::from).collect::<Vec<_>>(),
                    &want,
                ),
                current: now,
                desired: want,
            });
        }
        Ok(out)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let all = futures::future::join_all(self.records.iter().map(|d| self.one(cx, d))).await;
        let resolved: Vec<Resolved> = all.into_iter().collect::<Result<_, _>>()?;
        let in_sync_at: DateTime<Utc> = (resolved.iter())
            .filter_map(|r| r.first_at)
            .max()
            .unwrap_or_else(Utc::now);
        VerifyCloudResolutionOutput(VerifyResolutionOutput {
            in_sync_at,
            resolved,
            servers: cx.clouds.resolver.servers(),
            consecutive: CONSECUTIVE_ANSWERS,
            basis: format!(
                "resolution: every name answered {}'s value {CONSECUTIVE_ANSWERS} times in a row (Cloud DNS primaryBackup, no API call on the path)",
                self.region
            ),
        })
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::super::resolution::Watched;
    use super::*;
    use crate::cloud::control::{Control, ControlState};
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::{ObjectUrl, PutMode};
    use crate::plan::Plan;

    const TARGET: &str = "us-east4";

    /// The plan's world with `dns prepare` made (controls, routing
    /// policy), then its controls set so that `serving` serves.
    async fn prepared(plan: &Plan, serving: &str) -> FakeCloud {
        let f = FakeCloud::new();
        crate::plan::kinds::seed_plan(&f, plan);
        super::super::cloud_dns_setup::prepare(&f.clouds(), plan)
            .await
            .expect("dns prepare");
        for (region, url) in &plan.spec.cloud_dns[0].controls {
            let state = if region == serving {
                ControlState::Serve
            } else {
                ControlState::Drain
            };
            let body = Control {
                state,
                token: 1,
                run: "test".into(),
                at: Utc::now(),
            };
            let url = ObjectUrl::parse(url).expect("url");
            (f.clouds().objects)
                .put(region, &url, body.body().into(), PutMode::Overwrite)
                .await
                .expect("put control");
        }
        f
    }

    /// Another writer puts the record's set back as home's address with no
    /// `primaryBackup` policy: plain, or (`routed`) under another routing
    /// policy.
    fn home_set_without_policy(f: &FakeCloud, plan: &Plan, routed: bool) {
        let d = &plan.spec.cloud_dns[0];
        let set = crate::cloud::CloudRecordSet {
            name: d.name.clone(),
            rtype: d.rtype.clone(),
            ttl: d.ttl,
            rrdatas: vec!["10.0.1.1".into()],
            routed,
            primary_backup: None,
        };
        f.put_cloud_record(&d.project, &d.zone, set);
    }

    /// Resolves the plan's record for a failover to us-east4 (RTO budget
    /// 30 min) on paused time: the result, what the progress line was
    /// told, and how long (on tokio's clock) it took.
    async fn verify(
        f: &FakeCloud,
        plan: &Plan,
    ) -> (Result<Resolved, StepFailure>, Vec<String>, Duration) {
        let clouds = f.clouds();
        let outputs = BTreeMap::new();
        let g = crate::steps::graph::compile(plan, TARGET).expect("graph");
        let told = Mutex::new(Vec::new());
        let tell = |what: &str| told.lock().unwrap().push(what.to_string());
        let cx = Cx {
            run_id: "20261127T100000Z-orders-gcp-ab01",
            deadline: std::time::Instant::now() + Duration::from_secs(30 * 60),
            poll: (Duration::from_secs(1), Duration::from_secs(2)),
            waiting: Some(&tell),
            ..Cx::for_test(&clouds, plan, TARGET, &outputs, &g.steps)
        };
        let d = &plan.spec.cloud_dns[0];
        let step = VerifyCloudResolution {
            region: TARGET.into(),
            records: vec![d.clone()],
        };
        let t0 = tokio::time::Instant::now();
        let got = step.one(&cx, d).await;
        let took = t0.elapsed();
        (got, told.into_inner().unwrap(), took)
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_whose_target_serves_resolves_at_once() {
        let plan = crate::plan::orders_gcp_health_checked();
        let f = prepared(&plan, TARGET).await;
        let (got, told, took) = verify(&f, &plan).await;
        let got = got.expect("resolves");
        assert_eq!(got.values, ["10.0.2.2"]);
        assert!(got.said.is_empty(), "{got:?}");
        assert!(told[0].ends_with("now: 10.0.2.2"), "{told:?}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    /// Regression: a health-check Cloud DNS record's wait was silent and
    /// waited out the whole RTO budget (30 minutes here) even when its
    /// record set had lost the routing policy (`dns prepare` undone: a
    /// plain record answering home's address), which no control can move.
    /// It now reads beside the wait, as Route 53's does: once the answer
    /// has stayed wrong for the checks' flip time plus the TTL, it says
    /// what it answered, the controls and the record set, and fails
    /// naming the missing policy and `dns prepare`.
    #[tokio::test(start_paused = true)]
    async fn regression_a_cloud_dns_record_without_its_policy_fails_early_not_after_the_rto_budget()
    {
        let plan = crate::plan::orders_gcp_health_checked();
        let f = prepared(&plan, TARGET).await;
        let d = &plan.spec.cloud_dns[0];
        home_set_without_policy(&f, &plan, false);
        let (got, told, took) = verify(&f, &plan).await;
        let e = got.expect_err("cannot resolve");
        let e = format!("{e} ({})", e.hint());
        let period = d.assumed_flip() + Duration::from_secs(d.ttl as u64);
        assert!(took >= period && took < period * 2, "{took:?}");
        for want in [
            "still does not resolve to 10.0.2.2",
            "it answered 10.0.1.1",
            "us-central1 drain",
            "us-east4 serve",
            "record orders.gcp.example.com. A primaryBackup absent",
            "drctl dns prepare --plan orders-gcp",
        ] {
            assert!(e.contains(want), "{want:?} in {e}");
        }
        assert!(
            told.iter().any(|t| t.contains("still does not")),
            "{told:?}"
        );
    }

    /// The policy in place but the target's control left drained (the
    /// answer stays home's): said every period with the controls, and the
    /// wait goes on to its own end.
    #[tokio::test(start_paused = true)]
    async fn an_answer_that_stays_wrong_with_the_policy_in_place_is_said_and_waited_for() {
        let plan = crate::plan::orders_gcp_health_checked();
        let f = prepared(&plan, "us-central1").await;
        let (got, told, took) = verify(&f, &plan).await;
        let e = got.expect_err("never resolves").to_string();
        let d = &plan.spec.cloud_dns[0];
        let period = d.assumed_flip() + Duration::from_secs(d.ttl as u64);
        assert!(took >= Duration::from_secs(30 * 60), "{took:?}");
        let said: Vec<&String> = (told.iter())
            .filter(|t| t.contains("still does not"))
            .collect();
        assert!(
            said.len() as u64 >= (30 * 60) / period.as_secs() - 1,
            "said every {period:?}: {told:#?}"
        );
        assert!(said[0].contains("us-east4 drain"), "{}", said[0]);
        assert!(
            said[0].contains("the record set's primaryBackup policy in place"),
            "{}",
            said[0]
        );
        assert!(e.contains("it answered 10.0.1.1"), "{e}");
        assert!(e.contains("last said:"), "{e}");
    }

    /// A managed zone that is gone is a gap no control mends: the step
    /// fails once the answer has stayed wrong, naming the zone.
    #[tokio::test(start_paused = true)]
    async fn a_missing_zone_fails_early_naming_it() {
        let plan = crate::plan::orders_gcp_health_checked();
        let f = prepared(&plan, TARGET).await;
        f.state().cloud_zones.clear();
        let (got, _, took) = verify(&f, &plan).await;
        let e = got.expect_err("cannot resolve");
        let e = format!("{e} ({})", e.hint());
        assert!(took < Duration::from_secs(5 * 60), "{took:?}");
        assert!(
            e.contains("managed zone orders-zone (project drctl-emu) missing"),
            "{e}"
        );
    }

    /// A set with another routing policy (geo or weighted), which `dns
    /// prepare` refuses to replace, fails early with its own fix: remove
    /// that policy or switch by records, not `dns prepare` alone.
    #[tokio::test(start_paused = true)]
    async fn a_set_with_another_routing_policy_names_its_own_fix() {
        let plan = crate::plan::orders_gcp_health_checked();
        let f = prepared(&plan, TARGET).await;
        home_set_without_policy(&f, &plan, true);
        let (got, _, _) = verify(&f, &plan).await;
        let e = got.expect_err("cannot resolve");
        let e = format!("{e} ({})", e.hint());
        for want in [
            "primaryBackup replaced by another routing policy (geo or weighted)",
            "remove the record set's other routing policy or set switch = \"records\"",
        ] {
            assert!(e.contains(want), "{want:?} in {e}");
        }
    }
}
