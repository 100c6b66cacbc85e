//! `verify-resolution`: a data-plane switch is in effect when the plan's
//! names resolve to the target, asked of the zone's authoritative servers
//! (or the configured `dns_servers`), **N answers in a row**. No change
//! status, no record listing: both are the provider's control plane. One
//! step for every traffic kind whose switch is on the data plane (Route
//! 53's health-check records, Cloud DNS's `primaryBackup` records), each
//! record through its traffic role's verification by resolution
//! ([`Resolving`]): the value wanted, where it is asked, the health
//! checks' pace, and the setup read beside a wait that stays wrong.
//!
//! Why several answers: Route 53's health checkers are many and flip a
//! record's health only after consecutive results; one lucky answer while
//! they disagree is not a switch. The RTO clock stops at the *first* of the N
//! consecutive answers, which is when clients began to get the target.
//!
//! # Saying what it sees
//!
//! The wait is never silent: each new answer is told on the run's progress
//! line ("now: checkout-euw1..."), and every distinct answer, with when it
//! began and how often it came, is kept in the step's output ([`Seen`]).
//! When the answer **stays wrong** (`route53_setup::flip_after`: longer than the
//! health checks' failure threshold × request interval, the time they take
//! to see a drained control, plus the record's TTL; `dns prepare`'s pace
//! until the checks are read, which happens only then, so that a switch that
//! shows in time makes no Route 53 call), the step says so with what it can
//! read beside the wait, bounded and off the critical path: the controls
//! (data plane) and, where the provider's API answers, Route 53's records and health
//! checks, or Cloud DNS's record set and its routing policy
//! ([`Resolving::setup`]). When those show that the name cannot
//! resolve to the target (its record, its health check or a link of the
//! chain above it is missing), the step fails then, naming the gap and
//! `drctl dns prepare` as the fix, instead of waiting out the RTO budget;
//! otherwise it says so again every such period and goes on waiting.

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::resolution::{
    CONSECUTIVE_ANSWERS, VerifyResolutionOutput, names_target, records_of, resolve_record,
};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::plan::Plan;
use crate::plan::kinds::traffic::{Resolving, resolving};
use crate::steps::graph::{Builder, Phase};

/// Resolve every data-plane record until it answers the target's value N
/// times in a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyResolution {
    /// The records (their resource ids), each verified through its
    /// traffic role.
    pub records: Vec<String>,
    /// The provider failover the slowest of them waits through, as the
    /// model names it: the step's cost (they are waited on at once).
    #[serde(skip)]
    pub waits: &'static [&'static str],
}

/// Stops the RTO clock: clients are sent to the target once this holds.
/// Its wait is its records' kinds' ([`VerifyResolution::cost`]).
pub const TRAITS: Traits = Traits {
    rto_end: Some(super::traits::RESOLVED),
    time: Cost {
        calls: &[],
        waits: &["route53:HealthCheckFailover"],
        polls: Some("dns:query"),
    },
    converges: true,
    ..Traits::RECOVERY
};

/// A retired `verify-cloud-resolution`'s (Cloud DNS's records alone, now
/// this step): its journals still end the RTO clock.
pub const RETIRED_CLOUD: Traits = Traits {
    time: Cost {
        waits: &["clouddns:HealthCheckFailover"],
        ..TRAITS.time
    },
    ..TRAITS
};

/// One verification for every data-plane switch of the plan.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let records: Vec<&dyn Resolving> = resolving(b.plan).collect();
    if records.is_empty() {
        return;
    }
    let names: Vec<&str> = records.iter().map(|d| d.names().0).collect();
    let description = format!(
        "resolve {} until they answer {}'s values {CONSECUTIVE_ANSWERS} times in a row (no provider API call on the path)",
        names.join(", "),
        b.target
    );
    let resources: Vec<String> = records.iter().map(|d| d.id().to_string()).collect();
    let step = VerifyResolution {
        records: resources.clone(),
        waits: slowest(&records),
    };
    b.add(
        StepKind::VerifyResolution(step),
        None,
        Phase::Verify,
        resources,
        description,
    );
}

/// The wait of the record whose modelled failover is slowest (the records
/// are waited on at once, so the step takes the slowest one's time).
fn slowest(records: &[&dyn Resolving]) -> &'static [&'static str] {
    let model = crate::cloud::model::Model::aws().ok();
    let p90 = |waits: &[&str]| -> std::time::Duration {
        (waits.iter())
            .filter_map(|w| model.as_ref()?.duration(w).map(|d| d.p90()))
            .sum()
    };
    (records.iter().map(|d| d.waits()))
        .max_by_key(|w| p90(w))
        .unwrap_or(TRAITS.time.waits)
}

impl VerifyResolution {
    /// What it costs: no call, the slowest record's provider failover,
    /// resolution polled.
    pub fn cost(&self) -> Cost {
        Cost {
            waits: self.waits,
            ..TRAITS.time
        }
    }

    /// Its records, through their traffic roles, in plan order; one the
    /// plan no longer has fails the step, naming it.
    fn roles<'p>(&self, plan: &'p Plan) -> Result<Vec<&'p dyn Resolving>, StepFailure> {
        records_of(plan, &self.records, "global")
    }
}

impl StepOutput for VerifyResolutionOutput {
    const KIND: KindName = KindName::VerifyResolution;
}

#[async_trait]
impl Action for VerifyResolution {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    /// What each name answers now, asked of DNS (no provider API call),
    /// and the value it must answer.
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let mut out = Vec::new();
        for d in self.roles(cx.plan)? {
            let (name, rtype, _) = d.names();
            let resolver = &cx.clouds.resolver;
            let now = match resolver.resolve(d.resolver_zone(), name, rtype).await {
                Ok(v) => v,
                Err(e) => vec![format!("no answer ({})", e.kind.as_str())],
            };
            let want = d.answer(cx.target).unwrap_or("-").to_string();
            out.push(Planned {
                call: format!("dns:query {name} {rtype} at {}", resolver.servers()),
                resource: d.id().to_string(),
                region: "global".into(),
                change: !names_target(&now, &want),
                current: now.join(" "),
                desired: format!("{want} {CONSECUTIVE_ANSWERS} answers in a row"),
            });
        }
        Ok(out)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let roles = self.roles(cx.plan)?;
        let resolved =
            futures::future::try_join_all(roles.into_iter().map(|d| resolve_record(cx, d))).await?;
        let in_sync_at = (resolved.iter())
            .filter_map(|r| r.first_at)
            .max()
            .unwrap_or_else(Utc::now);
        let servers = cx.clouds.resolver.servers();
        VerifyResolutionOutput {
            in_sync_at,
            resolved,
            basis: format!(
                "names resolved to the target at {servers} ({CONSECUTIVE_ANSWERS} answers in a row; first of them)"
            ),
            servers,
            consecutive: CONSECUTIVE_ANSWERS,
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::super::dns_setup;
    use super::super::resolution::Resolved;
    use super::*;
    use crate::cloud::control::{Control, ControlState};
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::{ObjectUrl, PutMode};
    use crate::plan::Plan;
    use crate::plan::kinds::route53_setup::flip_after as stays_wrong_after;

    fn checkout() -> Plan {
        (crate::plan::reference().into_iter())
            .find(|p| p.name() == "checkout")
            .expect("checkout")
    }

    /// The reference world with checkout's setup made by `dns prepare`,
    /// and its controls switched to `serving`.
    async fn prepared(serving: &str) -> FakeCloud {
        let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
        let plan = checkout();
        dns_setup::prepare(&f.clouds(), &plan, None)
            .await
            .expect("dns prepare");
        for (region, url) in &plan.spec.dns[0].controls {
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
            }
            .body();
            f.clouds()
                .objects
                .put(
                    region,
                    &ObjectUrl::parse(url).expect("url"),
                    body.into(),
                    PutMode::Overwrite,
                )
                .await
                .expect("put control");
        }
        f
    }

    /// Resolves checkout's name for a failover to `target` (RTO budget 30
    /// min) on paused time: the result, what the progress line was told,
    /// and how long (on tokio's clock) it took.
    async fn verify(
        f: &FakeCloud,
        target: &str,
    ) -> (Result<Resolved, StepFailure>, Vec<String>, Duration) {
        let clouds = f.clouds();
        let plan = checkout();
        let outputs = BTreeMap::new();
        let g = crate::steps::graph::compile(&plan, target).expect("graph");
        let told = Mutex::new(Vec::new());
        let tell = |what: &str| told.lock().unwrap().push(what.to_string());
        let cx = Cx {
            run_id: "20261123T100000Z-checkout-ab01",
            deadline: std::time::Instant::now() + Duration::from_secs(30 * 60),
            poll: (Duration::from_secs(1), Duration::from_secs(2)),
            waiting: Some(&tell),
            ..Cx::for_test(&clouds, &plan, target, &outputs, &g.steps)
        };
        let t0 = tokio::time::Instant::now();
        let got = resolve_record(&cx, &plan.spec.dns[0]).await;
        let took = t0.elapsed();
        (got, told.into_inner().unwrap(), took)
    }

    #[tokio::test(start_paused = true)]
    async fn a_switch_that_resolves_keeps_what_it_saw() {
        let f = prepared("us-west-2").await;
        let (got, told, took) = verify(&f, "us-west-2").await;
        let got = got.expect("resolves");
        assert_eq!(got.values, ["checkout-usw2.example.com."]);
        assert_eq!(got.seen.len(), 1, "{got:?}");
        assert_eq!(got.seen[0].answers, CONSECUTIVE_ANSWERS);
        assert!(got.said.is_empty());
        assert_eq!(told.len(), 1, "one answer, told once: {told:?}");
        assert!(
            told[0].ends_with("now: checkout-usw2.example.com."),
            "{told:?}"
        );
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    /// Regression (issue 28, the demo's wait): the target's failover record
    /// was deleted (by the emulator's Route 53, deleting every set with its
    /// identifier) and the name answered the last region left. The step
    /// tells what the name resolves to at once, and fails once the answer
    /// has stayed wrong for the health checks' flip time plus the TTL,
    /// naming the missing record and the fix, instead of waiting out the
    /// 30-minute RTO budget.
    #[tokio::test(start_paused = true)]
    async fn a_missing_target_record_is_said_and_fails_early_not_after_the_rto_budget() {
        let f = prepared("us-west-2").await;
        {
            let mut s = f.state();
            for recs in s.records.values_mut() {
                recs.retain(|r| r.set_identifier.as_deref() != Some("us-west-2"));
            }
        }
        let (got, told, took) = verify(&f, "us-west-2").await;
        let e = got.expect_err("cannot resolve");
        let e = format!("{e} ({})", e.hint());
        let period = stays_wrong_after(&[], 60);
        assert!(took >= period && took < period * 2, "{took:?}");
        assert!(
            told.iter()
                .any(|t| t.contains("now: checkout-use1.example.com.")),
            "{told:?}"
        );
        for want in [
            "still does not resolve to checkout-usw2.example.com.",
            "it answered checkout-use1.example.com.",
            "us-east-1 drain",
            "us-west-2 serve",
            "record drctl-failover-1.checkout.example.com. CNAME [us-west-2] missing",
            "drctl dns prepare --plan checkout",
        ] {
            assert!(e.contains(want), "{want:?} in {e}");
        }
    }

    /// A setup in place whose health checks never move the answer (here the
    /// target's control was left drained): said every period with the
    /// controls, and the wait goes on to its own end, which repeats what was
    /// seen and said.
    #[tokio::test(start_paused = true)]
    async fn an_answer_that_stays_wrong_with_the_setup_in_place_is_said_and_waited_for() {
        let f = prepared("us-east-1").await;
        let (got, told, took) = verify(&f, "us-west-2").await;
        let e = got.expect_err("never resolves").to_string();
        let period = stays_wrong_after(&[], 60);
        assert!(took >= Duration::from_secs(30 * 60), "{took:?}");
        let said: Vec<&String> = told
            .iter()
            .filter(|t| t.contains("still does not"))
            .collect();
        assert!(
            said.len() as u64 >= (30 * 60) / period.as_secs() - 1,
            "said every {period:?}: {told:#?}"
        );
        assert!(said[0].contains("us-west-2 drain"), "{}", said[0]);
        assert!(
            said[0].contains("records and health checks in place"),
            "{}",
            said[0]
        );
        assert!(e.contains("it answered checkout-use1.example.com."), "{e}");
        assert!(e.contains("last said:"), "{e}");
    }

    /// Health checks slower than `dns prepare`'s (read where Route 53's
    /// API answers) get their own time before the answer is said to stay
    /// wrong: 3 × 30 s + the 60 s TTL.
    #[tokio::test(start_paused = true)]
    async fn slower_health_checks_get_their_time_before_the_answer_is_said_wrong() {
        let f = prepared("us-east-1").await;
        for h in &mut f.state().health_checks {
            h.interval = 30;
        }
        let (got, told, _) = verify(&f, "us-west-2").await;
        assert!(got.is_err());
        let said: Vec<&String> = told
            .iter()
            .filter(|t| t.contains("still does not"))
            .collect();
        assert!(said[0].contains("after 150 s"), "{said:#?}");
        assert!(said[0].contains("within 150 s"), "{said:#?}");
        assert!(said[1].contains("after 300 s"), "{said:#?}");
    }
}

/// The one step, compiled for every traffic kind.
#[cfg(test)]
mod compile_tests {
    use super::*;

    /// Every reference plan with a data-plane record (Route 53's and Cloud
    /// DNS's) gets one `verify-resolution` over exactly those records,
    /// costed at its kind's wait; a plan without gets none, and a drill
    /// none.
    #[test]
    fn every_data_plane_record_of_every_kind_is_verified_by_the_one_step() {
        let plans = (crate::plan::reference_with_gcp().into_iter())
            .chain([crate::plan::orders_gcp_health_checked()]);
        let mut waits = std::collections::BTreeSet::new();
        for plan in plans {
            let target = plan.regions()[1].clone();
            let g = crate::steps::graph::compile(&plan, &target).expect("graph");
            let steps: Vec<&VerifyResolution> = (g.steps.iter())
                .filter_map(|s| match &s.kind {
                    StepKind::VerifyResolution(v) => Some(v),
                    _ => None,
                })
                .collect();
            let want: Vec<String> = resolving(&plan).map(|d| d.id().to_string()).collect();
            if want.is_empty() {
                assert!(steps.is_empty(), "{}", plan.name());
                continue;
            }
            assert_eq!(steps.len(), 1, "{}", plan.name());
            assert_eq!(steps[0].records, want, "{}", plan.name());
            let drill = crate::steps::graph::RunMode::Drill {
                depth: crate::journal::event::DrillDepth::Shadow,
            };
            let d = crate::steps::graph::compile_mode(&plan, &target, &drill).expect("drill");
            assert!(
                !d.steps
                    .iter()
                    .any(|s| matches!(s.kind, StepKind::VerifyResolution(_))),
                "a drill verifies its own names ({})",
                plan.name()
            );
            let id = format!("{}/verify-resolution", plan.name());
            assert!(g.steps.iter().any(|s| s.id.to_string() == id), "{id}");
            let cost = StepKind::VerifyResolution(steps[0].clone()).time();
            assert_eq!(cost.polls, Some("dns:query"));
            waits.extend(cost.waits.iter().copied());
        }
        assert_eq!(
            waits.into_iter().collect::<Vec<_>>(),
            [
                "clouddns:HealthCheckFailover",
                "route53:HealthCheckFailover"
            ]
        );
    }
}

/// Cloud DNS's data-plane records, through the same step and wait.
#[cfg(test)]
mod cloud_dns_tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::super::resolution::Resolved;
    use super::*;
    use crate::cloud::control::{Control, ControlState};
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::{ObjectUrl, PutMode};
    use crate::plan::Plan;
    use crate::plan::kinds::traffic::Resolving;

    const TARGET: &str = "us-east4";

    /// The plan's world with `dns prepare` made (controls, routing
    /// policy), then its controls set so that `serving` serves.
    async fn prepared(plan: &Plan, serving: &str) -> FakeCloud {
        let f = FakeCloud::new();
        crate::plan::kinds::seed_plan(&f, plan);
        crate::steps::dns_setup::prepare(&f.clouds(), plan, None)
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
        let t0 = tokio::time::Instant::now();
        let got = resolve_record(&cx, d).await;
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
