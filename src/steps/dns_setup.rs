//! The setup of a data-plane switch (`switch = "health-check"`): the
//! control objects, the health checks that read them and the failover
//! records that follow the checks. Made on a calm day by `drctl dns prepare`
//! (or terraform, in the same shape), checked by preflight and `status`
//! where Route 53's API answers.
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
//! drained (a dead region fails closed anyway).
//!
//! # The setup check, record by record
//!
//! Where Route 53's API answers, preflight and `status` compare the zone
//! with what [`prepare`] makes ([`gaps`], pure, read in the kinds' layer,
//! `plan::kinds::route53_setup`, where the traffic role's verification
//! reads it too): each region's failover
//! record present (name, type, set identifier) and following a health check
//! that reads that region's control, each link of the chain present. A gap
//! is named, with `drctl dns prepare --plan P` as the fix. It blocks a
//! failover to a region only when that region's answer depends on it (its
//! own record or health check, or a link of the chain above it): without it
//! the name cannot resolve to the target, and the run would only wait.
//! Other gaps are shown and do not block (an absent record of a drained
//! region takes nothing away from the target).
//!
//! # Why the setup check never blocks when the API does not answer
//!
//! Reading records and health checks is Route 53's control plane, in
//! us-east-1 alone. When it does not answer, the setup is "not verifiable",
//! said plainly, and a failover goes on: what it needs (the controls, the
//! DNS answers) is all data plane.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Cx, Finding};
use crate::cloud::control::{self, Control, ControlState};
use crate::cloud::{
    CloudError, Clouds, DnsChange, HealthCheck, HostedZone, ObjectUrl, PutMode, PutOutcome,
};
use crate::plan::Plan;
pub use crate::plan::kinds::route53_setup::{
    NOT_VERIFIABLE, SetupRead, by_zone, failover_records, gaps, level_name, read_setup,
    read_setup_bounded, reading,
};
use crate::plan::kinds::route53_setup::{find_zone, fqdn, same_record};
pub use crate::plan::kinds::traffic::Gap;
use crate::plan::kinds::traffic::{Resolving, SetupSeen};
use crate::plan::spec::{DnsSpec, SwitchMode};

/// How long a run's setup check may wait for Route 53's API (beside the
/// recovery path: a short bound; `status` uses its own read timeout, see
/// [`super::Cx::control_read_timeout`]).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The caller reference of a region's health check for a record: stable
/// for the same control, new when the control moves (Route 53 refuses to
/// reuse a reference with another configuration).
pub fn reference(plan: &str, d: &DnsSpec, region: &str) -> String {
    use sha2::Digest;
    let url = d.controls.get(region).map(String::as_str).unwrap_or("");
    let digest = hex::encode(sha2::Sha256::digest(url.as_bytes()));
    let mut r = format!("drctl-{plan}-{}-{region}", d.id);
    r.truncate(55);
    format!("{r}-{}", &digest[..8])
}

/// One thing `dns prepare` did or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prepared {
    /// What (`control s3://...`, `health check drctl-...`, `record api. PRIMARY`).
    pub resource: String,
    /// Where.
    pub region: String,
    /// `created`, `exists`, `updated`.
    pub action: String,
}

/// Makes the setup of every health-check record of `plan`: controls (home
/// serves, the others drain; existing controls are left as they are),
/// health checks (by caller reference, so never twice) and the failover
/// records (one UPSERT batch per zone). Idempotent. Control plane: for calm
/// days. `s3_endpoint` is the S3 endpoint override the health checks must
/// read through (an emulator), if any.
pub async fn prepare(
    clouds: &Clouds,
    plan: &Plan,
    s3_endpoint: Option<&str>,
) -> Result<Vec<Prepared>, CloudError> {
    let records: Vec<&DnsSpec> = plan
        .spec
        .dns
        .iter()
        .filter(|d| d.switch == SwitchMode::HealthCheck)
        .collect();
    let regions = plan.regions().to_vec();
    let mut out = Vec::new();
    let existing = clouds.dns.list_health_checks().await?;
    let mut by_zone_changes: BTreeMap<String, Vec<DnsChange>> = BTreeMap::new();
    for d in &records {
        let mut ids = BTreeMap::new();
        for region in &regions {
            let Some(url) = d.controls.get(region) else {
                continue;
            };
            let url = control_url(url, region)?;
            out.push(place_control(clouds, &regions, region, &url).await?);
            let want = control::health_check(
                &reference(plan.name(), d, region),
                region,
                &url,
                s3_endpoint,
            );
            let (id, prepared) = ensure_health_check(clouds, &existing, d, region, &want).await?;
            out.push(prepared);
            ids.insert(region.clone(), id);
        }
        let zone = d.zone.to_ascii_lowercase();
        for r in failover_records(d, &regions, &ids) {
            by_zone_changes
                .entry(zone.clone())
                .or_default()
                .push(DnsChange::Upsert(r));
        }
    }
    for (zone, changes) in by_zone_changes {
        out.extend(upsert_zone(clouds, plan, &zone, changes).await?);
    }
    Ok(out)
}

/// A region's control URL from the plan, as an error of the control's
/// write when it does not parse.
// The adapters' error type, which `dns prepare` returns.
#[allow(clippy::result_large_err)]
fn control_url(url: &str, region: &str) -> Result<ObjectUrl, CloudError> {
    ObjectUrl::parse(url).map_err(|e| {
        CloudError::new(
            "s3",
            "PutObject",
            url,
            region,
            crate::cloud::ErrorKind::Client,
            e.to_string(),
        )
    })
}

/// Creates `region`'s control at `url` if there is none (home serves, the
/// others drain); an existing control is left as it is.
async fn place_control(
    clouds: &Clouds,
    regions: &[String],
    region: &str,
    url: &ObjectUrl,
) -> Result<Prepared, CloudError> {
    let state = if regions.first().map(String::as_str) == Some(region) {
        ControlState::Serve
    } else {
        ControlState::Drain
    };
    Ok(Prepared {
        resource: format!("control {url}"),
        region: region.to_string(),
        action: create_control(clouds, region, url, state).await?,
    })
}

/// Writes a control holding `state` at `url` in `region`, create-only: an
/// existing control is left as it is, whatever it holds. Returns what
/// `dns prepare` reports of it (shared by both clouds' prepare).
pub(super) async fn create_control(
    clouds: &Clouds,
    region: &str,
    url: &ObjectUrl,
    state: ControlState,
) -> Result<String, CloudError> {
    let body = Control {
        state,
        token: 0,
        run: "prepare".into(),
        at: chrono::Utc::now(),
    }
    .body();
    Ok(
        match clouds
            .objects
            .put(region, url, body.into(), PutMode::CreateOnly)
            .await?
        {
            PutOutcome::Written(_) => format!("created ({state})"),
            PutOutcome::AlreadyExists => "exists (left as it is)".into(),
        },
    )
}

/// The id of a health check reading `d`'s control in `region`: an existing
/// one (`dns prepare`'s or terraform's), else `want` created.
async fn ensure_health_check(
    clouds: &Clouds,
    existing: &[HealthCheck],
    d: &DnsSpec,
    region: &str,
    want: &HealthCheck,
) -> Result<(String, Prepared), CloudError> {
    let (hc, action) = match reading(existing, d, region) {
        Some(h) => (h.clone(), "exists"),
        None => (clouds.dns.create_health_check(want).await?, "created"),
    };
    let prepared = Prepared {
        resource: format!("health check {} ({})", hc.id, hc.caller_reference),
        region: region.to_string(),
        action: action.into(),
    };
    Ok((hc.id, prepared))
}

/// Applies the UPSERTs of one zone that are not there yet, in one batch.
async fn upsert_zone(
    clouds: &Clouds,
    plan: &Plan,
    zone: &str,
    changes: Vec<DnsChange>,
) -> Result<Vec<Prepared>, CloudError> {
    let z = find_zone(clouds, zone).await?;
    let todo = missing(clouds, &z, changes, "").await?;
    let out = changes_desc(&todo)
        .into_iter()
        .map(|c| Prepared {
            resource: c,
            region: "global".into(),
            action: "upserted".into(),
        })
        .collect();
    if !todo.is_empty() {
        clouds
            .dns
            .apply_changes(
                &z,
                &todo,
                &format!("drctl dns prepare --plan {}", plan.name()),
            )
            .await?;
    }
    Ok(out)
}

/// The UPSERTs of `changes` whose record is not in the zone as wanted
/// (read first: a re-run after a crash changes nothing already there).
/// `suffix` bounds the listing (`""`: the whole zone).
pub async fn missing(
    clouds: &Clouds,
    z: &HostedZone,
    changes: Vec<DnsChange>,
    suffix: &str,
) -> Result<Vec<DnsChange>, CloudError> {
    let current = clouds.dns.list_records(z, suffix).await?;
    Ok(changes
        .into_iter()
        .filter(|ch| {
            let w = ch.record();
            !current.iter().any(|c| {
                fqdn(&c.name) == w.name
                    && c.rtype.eq_ignore_ascii_case(&w.rtype)
                    && c.set_identifier == w.set_identifier
                    && same_record(c, w)
            })
        })
        .collect())
}

fn changes_desc(changes: &[DnsChange]) -> Vec<String> {
    changes
        .iter()
        .map(DnsChange::record)
        .map(|r| {
            format!(
                "record {} {} [{}]",
                r.name,
                r.rtype,
                r.set_identifier.as_deref().unwrap_or("-")
            )
        })
        .collect()
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
                "{}: {name} cannot resolve to {target} without it; {fix} (its API answers)",
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
    let limit = cx.control_read_timeout;
    let reads = records.iter().map(|d| async move {
        let seen = d.setup(cx.clouds, cx.plan, cx.target, limit).await;
        finding(d.names().0, cx.target, &seen)
    });
    futures::future::join_all(reads).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{DnsRecord, FailoverRole};

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
