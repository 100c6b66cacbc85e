//! The setup of a data-plane switch (`switch = "health-check"`), every
//! traffic kind's: the control objects and what reads them (Route 53's
//! health checks and the failover records that follow them; Cloud DNS's
//! `primaryBackup` routing policy). Made on a calm day by `drctl dns
//! prepare` ([`prepare`], each record through its kind's
//! `Resolving::prepare`; or terraform, in the same shape), checked by
//! preflight and `status` ([`setup_findings`]) where the kind's API
//! answers.
//!
//! # The records
//!
//! Route 53 failover records come in pairs, so more than two regions form a
//! chain. With the plan's regions r0, r1, ... (home first), level k's name
//! has a PRIMARY for rk (its health check) and a SECONDARY that is either the
//! last region (its health check) or an alias, evaluated for health, of
//! level k+1 (`drctl-failover-K.<name>`). Every region has a PRIMARY-or-
//! SECONDARY record with its own health check, and the name answers with the
//! first region in plan order whose control serves. A switch makes exactly
//! one region serve, so the order matters only if a control could not be
//! drained (a dead region fails closed anyway). Cloud DNS answers the first
//! healthy item of its policy, in the same order.
//!
//! # The setup check, record by record
//!
//! Where the kind's API answers, preflight and `status` compare its setup
//! with what `dns prepare` makes (Route 53's [`gaps`], Cloud DNS's
//! `policy_gaps`, pure, in the kinds' layer, where the traffic role's
//! verification reads them too): for Route 53, each region's failover
//! record present (name, type, set identifier) and following a health check
//! that reads that region's control, each link of the chain present; for
//! Cloud DNS, the record set's policy reaching the target. A gap is named,
//! with the kind's fix (`drctl dns prepare --plan P`). It blocks a
//! failover to a region only when that region's answer depends on it (its
//! own record or health check, or a link of the chain above it): without it
//! the name cannot resolve to the target, and the run would only wait.
//! Other gaps are shown and do not block (an absent record of a drained
//! region takes nothing away from the target).
//!
//! # Why the setup check never blocks when the API does not answer
//!
//! Reading records and health checks is the control plane (Route 53's is
//! in us-east-1 alone). When it does not answer, the setup is "not
//! verifiable", said plainly, and a failover goes on: what it needs (the
//! controls, the DNS answers) is all data plane.

use std::time::Duration;

use super::{Cx, Finding};
use crate::cloud::{CloudError, Clouds};
use crate::plan::Plan;
pub use crate::plan::kinds::route53_setup::{
    NOT_VERIFIABLE, SetupRead, by_zone, failover_records, gaps, level_name, missing, read_setup,
    read_setup_bounded, reading, reference,
};
pub use crate::plan::kinds::traffic::{Gap, Prepared};
use crate::plan::kinds::traffic::{Resolving, SetupReads, SetupSeen, resolving};

/// How long a run's setup check may wait for a DNS provider's API (beside
/// the recovery path: a short bound; `status` uses its own read timeout, see
/// [`super::Cx::control_read_timeout`]).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(2);

/// `drctl dns prepare` for `plan`: every data-plane record's setup, each
/// through its traffic role ([`Resolving::prepare`]: Route 53's controls,
/// health checks and failover records; Cloud DNS's controls and routing
/// policy). Idempotent. Its provider's API, the control plane: for calm
/// days. `s3_endpoint`: the S3 endpoint override the health checks must
/// read through (an emulator), if any.
pub async fn prepare(
    clouds: &Clouds,
    plan: &Plan,
    s3_endpoint: Option<&str>,
) -> Result<Vec<Prepared>, CloudError> {
    let mut out = Vec::new();
    for d in resolving(plan) {
        out.extend(d.prepare(clouds, plan, s3_endpoint).await?);
    }
    Ok(out)
}

/// What the setup check says of one record (name `name`), from its setup
/// as its kind read it (pure): every kind's, Route 53's records and health
/// checks as Cloud DNS's routing policy. A gap the target's answer depends
/// on blocks, with the kind's fix; others are shown; a setup that could
/// not be read is said, never a block.
pub fn finding(name: &str, target: &str, seen: &SetupSeen) -> Finding {
    let what = format!("data-plane switch setup of {name}");
    let found = match &seen.gaps {
        Ok(found) => found,
        Err(why) => return Finding::ok(&what, "global", why.clone()),
    };
    if found.is_empty() {
        return Finding::ok(&what, "global", seen.in_place);
    }
    let all: Vec<String> = found.iter().map(Gap::to_string).collect();
    let fix = &seen.fix;
    let needed: Vec<String> = (found.iter().filter(|g| g.needed))
        .map(Gap::to_string)
        .collect();
    if needed.is_empty() {
        Finding::ok(
            &what,
            "global",
            format!(
                "incomplete: {} (a failover to {target} does not depend on it); {fix}",
                all.join("; ")
            ),
        )
    } else {
        Finding::blocks(
            &what,
            "global",
            format!("incomplete: {}", all.join("; ")),
            format!(
                "{}: {name} cannot resolve to {target} without it; {fix}",
                needed.join("; ")
            ),
        )
    }
}

/// Checks the setup of each of `records` (each through its kind's
/// verification by resolution, [`Resolving::setup`]: its API, the control
/// plane, bounded), for a failover to `cx.target`: a gap the target's
/// answer depends on blocks (the run could only wait), others are shown.
/// An API that does not answer is said ([`NOT_VERIFIABLE`] for Route
/// 53's), never a block.
pub async fn setup_findings(cx: &Cx<'_>, records: &[&dyn Resolving]) -> Vec<Finding> {
    let reads = SetupReads::default();
    let at = cx.setup_at(&reads);
    let checks = records.iter().map(|d| async move {
        let seen = d.setup(at).await;
        finding(d.names().0, cx.target, &seen)
    });
    futures::future::join_all(checks).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cloud::control;
    use crate::cloud::{DnsRecord, FailoverRole, HealthCheck, ObjectUrl};
    use crate::plan::spec::{DnsSpec, SwitchMode};

    /// A Route 53 setup read with `gaps`, as `DnsSpec`'s role says it.
    fn seen(plan: &str, gaps: Vec<Gap>) -> SetupSeen {
        SetupSeen {
            gaps: Ok(gaps),
            flip: None,
            in_place: "records and health checks in place",
            fix: format!("run `drctl dns prepare --plan {plan}`"),
        }
    }

    fn spec(regions: &[&str]) -> DnsSpec {
        DnsSpec {
            id: "web".into(),
            zone: "example.com.".into(),
            name: "web.example.com.".into(),
            rtype: "CNAME".into(),
            ttl: 60,
            switch: SwitchMode::HealthCheck,
            targets: regions
                .iter()
                .map(|r| (r.to_string(), format!("web-{r}.example.com.")))
                .collect(),
            follows: None,
            controls: regions
                .iter()
                .map(|r| (r.to_string(), format!("s3://ctl-{r}/web")))
                .collect(),
            after: Vec::new(),
        }
    }

    #[test]
    fn two_regions_make_one_failover_pair() {
        let regions = vec!["us-west-2".to_string(), "us-east-1".to_string()];
        let recs = failover_records(
            &spec(&["us-west-2", "us-east-1"]),
            &regions,
            &BTreeMap::new(),
        );
        assert_eq!(recs.len(), 2);
        assert!(recs.iter().all(|r| r.name == "web.example.com."));
        assert_eq!(
            recs[0].routing.as_ref().and_then(|r| r.failover),
            Some(FailoverRole::Primary)
        );
        assert_eq!(recs[1].values, ["web-us-east-1.example.com."]);
    }

    #[test]
    fn three_regions_chain_through_an_alias_and_each_region_has_a_checked_record() {
        let regions: Vec<String> = ["us-east-1", "us-west-2", "eu-west-1"]
            .map(String::from)
            .to_vec();
        let ids = regions
            .iter()
            .map(|r| (r.clone(), format!("hc-{r}")))
            .collect();
        let recs = failover_records(
            &spec(&["us-east-1", "us-west-2", "eu-west-1"]),
            &regions,
            &ids,
        );
        assert_eq!(recs.len(), 4);
        let alias = &recs[1];
        assert_eq!(
            alias
                .routing
                .as_ref()
                .and_then(|r| r.alias.clone())
                .as_deref(),
            Some("drctl-failover-1.web.example.com.")
        );
        for r in &regions {
            assert!(recs.iter().any(
                |x| x.routing.as_ref().and_then(|y| y.health_check_id.clone())
                    == Some(format!("hc-{r}"))
            ));
        }
    }

    /// Each region's health check (reading its control, as `dns prepare`
    /// makes it) and the failover records that follow them.
    fn made(regions: &[String]) -> (DnsSpec, Vec<HealthCheck>, Vec<DnsRecord>) {
        let d = spec(&regions.iter().map(String::as_str).collect::<Vec<_>>());
        let checks: Vec<HealthCheck> = regions
            .iter()
            .map(|r| {
                let url = ObjectUrl::parse(&d.controls[r]).expect("url");
                HealthCheck {
                    id: format!("hc-{r}"),
                    ..control::health_check(&reference("web", &d, r), r, &url, None)
                }
            })
            .collect();
        let ids = checks
            .iter()
            .zip(regions)
            .map(|(h, r)| (r.clone(), h.id.clone()))
            .collect();
        let records = failover_records(&d, regions, &ids);
        (d, checks, records)
    }

    fn three() -> Vec<String> {
        ["us-east-1", "us-west-2", "eu-west-1"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn a_setup_as_prepare_makes_it_has_no_gap_for_any_target() {
        let regions = three();
        let (d, checks, records) = made(&regions);
        for target in &regions {
            assert_eq!(gaps(&d, &regions, target, &checks, &records), []);
        }
        let f = finding(&d.name, "us-west-2", &seen("web", vec![]));
        assert_eq!(f.problem, None);
        assert_eq!(f.state, "records and health checks in place");
    }

    /// Regression (issue 28): the emulator's Route 53 deleted every set with
    /// the identifiers of ledger's weighted switch (`us-east-1`,
    /// `us-west-2`), checkout's PRIMARY records among them. The check names
    /// each missing record; a failover to us-west-2 (whose record is gone)
    /// is blocked with `dns prepare` as the fix, one to eu-west-1 (whose
    /// record and chain link remain) is not.
    #[test]
    fn deleted_primaries_are_named_and_block_only_the_targets_that_need_them() {
        let regions = three();
        let (d, checks, mut records) = made(&regions);
        records.retain(|r| !matches!(r.set_identifier.as_deref(), Some("us-east-1" | "us-west-2")));
        let to_west = gaps(&d, &regions, "us-west-2", &checks, &records);
        assert_eq!(
            to_west,
            [
                Gap {
                    what: "record web.example.com. CNAME [us-east-1]".into(),
                    how: "missing".into(),
                    needed: false,
                },
                Gap {
                    what: "record drctl-failover-1.web.example.com. CNAME [us-west-2]".into(),
                    how: "missing".into(),
                    needed: true,
                },
            ]
        );
        let f = finding(&d.name, "us-west-2", &seen("checkout", to_west.clone()));
        let problem = f.problem.expect("blocks");
        assert!(
            problem
                .starts_with("record drctl-failover-1.web.example.com. CNAME [us-west-2] missing:"),
            "{problem}"
        );
        assert!(
            problem.contains("drctl dns prepare --plan checkout"),
            "{problem}"
        );
        assert!(f.state.contains("[us-east-1] missing"), "{}", f.state);

        let to_eu = gaps(&d, &regions, "eu-west-1", &checks, &records);
        assert!(to_eu.iter().all(|g| !g.needed), "{to_eu:?}");
        let f = finding(&d.name, "eu-west-1", &seen("checkout", to_eu.clone()));
        assert_eq!(f.problem, None);
        assert!(
            f.state
                .starts_with("incomplete: record web.example.com. CNAME [us-east-1] missing")
        );
        assert!(
            f.state.contains("drctl dns prepare --plan checkout"),
            "{}",
            f.state
        );
        // A failback home needs its own PRIMARY.
        assert!(gaps(&d, &regions, "us-east-1", &checks, &records)[0].needed);
    }

    #[test]
    fn the_chain_above_the_target_and_its_health_check_are_needed() {
        let regions = three();
        let (d, checks, records) = made(&regions);
        // The link from level 0 to level 1 is gone: us-west-2 and
        // eu-west-1 depend on it, us-east-1 does not.
        let unlinked: Vec<DnsRecord> = (records.iter())
            .filter(|r| r.set_identifier.as_deref() != Some("drctl-failover-1"))
            .cloned()
            .collect();
        for (target, needed) in [
            ("us-east-1", false),
            ("us-west-2", true),
            ("eu-west-1", true),
        ] {
            let g = gaps(&d, &regions, target, &checks, &unlinked);
            assert_eq!(g.len(), 1, "{g:?}");
            assert_eq!(g[0].needed, needed, "{target}: {g:?}");
        }
        // eu-west-1's health check is gone: its record follows a check that
        // no longer reads its control.
        let fewer: Vec<HealthCheck> = (checks.iter())
            .filter(|h| h.id != "hc-eu-west-1")
            .cloned()
            .collect();
        let g = gaps(&d, &regions, "eu-west-1", &fewer, &records);
        assert!(g.iter().all(|g| g.needed), "{g:?}");
        assert_eq!(g[0].what, "health check of eu-west-1");
        assert!(
            g[1].how.contains("does not read its region's control"),
            "{g:?}"
        );
        assert!(
            gaps(&d, &regions, "us-west-2", &fewer, &records)
                .iter()
                .all(|g| !g.needed)
        );
    }

    #[test]
    fn a_record_may_follow_any_check_that_reads_its_control() {
        let regions = three();
        let (d, mut checks, mut records) = made(&regions);
        // terraform's check of us-west-2's control, beside prepare's.
        let mut tf = checks[1].clone();
        tf.id = "hc-terraform".into();
        checks.push(tf);
        for r in &mut records {
            if r.set_identifier.as_deref() == Some("us-west-2")
                && let Some(routing) = &mut r.routing
            {
                routing.health_check_id = Some("hc-terraform".into());
            }
        }
        assert_eq!(gaps(&d, &regions, "us-west-2", &checks, &records), []);
        // A record that follows no health check is always healthy.
        for r in &mut records {
            if let Some(routing) = &mut r.routing {
                routing.health_check_id = None;
            }
        }
        let g = gaps(&d, &regions, "us-west-2", &checks, &records);
        assert_eq!(g.len(), 3, "{g:?}");
        assert!(g.iter().all(|g| g.how.contains("always healthy")), "{g:?}");
    }

    #[test]
    fn a_reference_is_stable_and_fits_route53s_64_characters() {
        let d = spec(&["us-west-2"]);
        let a = reference(
            "a-very-long-plan-name-that-goes-on-and-on",
            &d,
            "ap-southeast-2",
        );
        assert!(a.len() <= 64, "{a}");
        assert_eq!(
            a,
            reference(
                "a-very-long-plan-name-that-goes-on-and-on",
                &d,
                "ap-southeast-2"
            )
        );
    }
}
