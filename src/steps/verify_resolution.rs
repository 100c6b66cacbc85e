//! `verify-resolution`: a data-plane switch is in effect when the plan's
//! names resolve to the target, asked of the zone's authoritative servers
//! (or the configured `dns_servers`), **N answers in a row**. No change
//! status, no record listing: both are Route 53's control plane.
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
//! When the answer **stays wrong** ([`stays_wrong_after`]: longer than the
//! health checks' failure threshold × request interval, the time they take
//! to see a drained control, plus the record's TTL; `dns prepare`'s pace
//! until the checks are read, which happens only then, so that a switch that
//! shows in time makes no Route 53 call), the step says so with what it can
//! read beside the wait, bounded and off the critical path: the controls
//! (data plane) and, where Route 53's API answers, the records and health
//! checks ([`dns_setup::gaps`]). When those show that the name cannot
//! resolve to the target (its record, its health check or a link of the
//! chain above it is missing), the step fails then, naming the gap and
//! `drctl dns prepare` as the fix, instead of waiting out the RTO budget;
//! otherwise it says so again every such period and goes on waiting.

use async_trait::async_trait;
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::controls::data_plane_records;
use super::resolution::{CONSECUTIVE_ANSWERS, VerifyResolutionOutput, resolve_record};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::plan::spec::DnsSpec;
use crate::steps::graph::{Builder, Phase};

/// Resolve every data-plane record until it names the target N times in a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyResolution {
    /// The records.
    #[serde(serialize_with = "super::records::record_names")]
    pub records: Vec<DnsSpec>,
}

/// Stops the RTO clock: clients are sent to the target once this holds.
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

/// One verification per data-plane switch.
pub fn compile(b: &mut Builder<'_>) {
    let records = data_plane_records(b);
    if records.is_empty() {
        return;
    }
    let description = format!(
        "resolve {} at the zone's authoritative servers until they name {} {CONSECUTIVE_ANSWERS} times in a row",
        super::records::joined_names(&records),
        b.target
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::VerifyResolution(VerifyResolution { records }),
        None,
        Phase::Verify,
        resources,
        description,
    );
}

impl StepOutput for VerifyResolutionOutput {
    const KIND: KindName = KindName::VerifyResolution;
}

#[async_trait]
impl Action for VerifyResolution {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(self
            .records
            .iter()
            .map(|d| Planned {
                call: format!(
                    "DNS query {} {} to {}",
                    d.name,
                    d.rtype,
                    cx.clouds.resolver.servers()
                ),
                resource: d.name.clone(),
                region: "global".into(),
                current: "-".into(),
                desired: format!(
                    "{} {CONSECUTIVE_ANSWERS} answers in a row",
                    d.targets.get(cx.target).cloned().unwrap_or_default()
                ),
                change: false,
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let resolved =
            futures::future::try_join_all(self.records.iter().map(|d| resolve_record(cx, d)))
                .await?;
        let in_sync_at = resolved
            .iter()
            .filter_map(|r| r.first_at)
            .max()
            .unwrap_or_else(Utc::now);
        VerifyResolutionOutput {
            in_sync_at,
            resolved,
            servers: cx.clouds.resolver.servers(),
            consecutive: CONSECUTIVE_ANSWERS,
            basis: format!(
                "names resolved to the target at {} ({CONSECUTIVE_ANSWERS} answers in a row; first of them)",
                cx.clouds.resolver.servers()
            ),
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
    use super::super::resolution::{Resolved, stays_wrong_after};
    use super::*;
    use crate::cloud::control::{Control, ControlState};
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::{ObjectUrl, PutMode};
    use crate::plan::Plan;

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
