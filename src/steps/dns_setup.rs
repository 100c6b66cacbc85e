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
//! # Why the setup check never blocks
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
    CloudError, Clouds, DnsChange, DnsRecord, FailoverRole, HealthCheck, HostedZone, ObjectUrl,
    PutMode, PutOutcome, Routing,
};
use crate::plan::Plan;
use crate::plan::spec::{DnsSpec, SwitchMode};

/// How long the setup check may wait for Route 53's API.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(2);

/// What a finding says when Route 53's API does not answer.
pub const NOT_VERIFIABLE: &str =
    "setup not verifiable: Route 53 API unreachable (control plane, us-east-1)";

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

/// The health check that follows `d`'s control in `region`, whoever made
/// it (`dns prepare`, terraform): one that reads that object and looks for
/// [`control::SERVE_MARKER`]. Found by what it checks, not by its caller
/// reference, which terraform cannot set.
pub(super) fn reading<'a>(
    checks: &'a [HealthCheck],
    d: &DnsSpec,
    region: &str,
) -> Option<&'a HealthCheck> {
    let url = ObjectUrl::parse(d.controls.get(region)?).ok()?;
    checks.iter().find(|h| {
        h.search == control::SERVE_MARKER
            && control::control_of(h).is_some_and(|(r, u)| r == region && u == url)
    })
}

/// The name of level `k` of a record's failover chain (level 0 is the name).
pub fn level_name(name: &str, k: usize) -> String {
    let name = fqdn(name);
    if k == 0 {
        name
    } else {
        format!("drctl-failover-{k}.{name}")
    }
}

fn fqdn(n: &str) -> String {
    let n = n.to_ascii_lowercase();
    if n.ends_with('.') { n } else { format!("{n}.") }
}

/// The failover records of `d` over `regions` (home first), given each
/// region's health-check id (pure).
pub fn failover_records(
    d: &DnsSpec,
    regions: &[String],
    checks: &BTreeMap<String, String>,
) -> Vec<DnsRecord> {
    let leaf = |level: usize, region: &str, role: FailoverRole| DnsRecord {
        name: level_name(&d.name, level),
        rtype: d.rtype.clone(),
        ttl: Some(d.ttl),
        values: vec![d.targets.get(region).cloned().unwrap_or_default()],
        set_identifier: Some(region.to_string()),
        weight: None,
        routing: Some(Routing {
            failover: Some(role),
            health_check_id: checks.get(region).cloned(),
            alias: None,
            evaluate_target_health: false,
            alias_zone: None,
        }),
    };
    let n = regions.len();
    if n < 2 {
        return regions
            .iter()
            .map(|r| leaf(0, r, FailoverRole::Primary))
            .collect();
    }
    let mut out = Vec::new();
    for k in 0..n - 1 {
        out.push(leaf(k, &regions[k], FailoverRole::Primary));
        if k == n - 2 {
            out.push(leaf(k, &regions[n - 1], FailoverRole::Secondary));
        } else {
            out.push(DnsRecord {
                name: level_name(&d.name, k),
                rtype: d.rtype.clone(),
                ttl: None,
                values: Vec::new(),
                set_identifier: Some(format!("drctl-failover-{}", k + 1)),
                weight: None,
                routing: Some(Routing {
                    failover: Some(FailoverRole::Secondary),
                    health_check_id: None,
                    alias: Some(level_name(&d.name, k + 1)),
                    evaluate_target_health: true,
                    alias_zone: None,
                }),
            });
        }
    }
    out
}

/// Whether a record read from Route 53 is the one wanted (ids aside from the
/// health check, which must match).
fn same_record(a: &DnsRecord, b: &DnsRecord) -> bool {
    let ra = a.routing.clone().unwrap_or_default();
    let rb = b.routing.clone().unwrap_or_default();
    ra.failover == rb.failover
        && ra.health_check_id == rb.health_check_id
        && ra.alias.as_deref().map(fqdn) == rb.alias.as_deref().map(fqdn)
        && (ra.alias.is_some() || super::switch_dns::same_values(&a.values, &b.values))
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
            let url = ObjectUrl::parse(url).map_err(|e| {
                CloudError::new(
                    "s3",
                    "PutObject",
                    url,
                    region,
                    crate::cloud::ErrorKind::Client,
                    e.to_string(),
                )
            })?;
            let state = if Some(region) == regions.first() {
                ControlState::Serve
            } else {
                ControlState::Drain
            };
            let body = Control {
                state,
                token: 0,
                run: "prepare".into(),
                at: chrono::Utc::now(),
            }
            .body();
            let action = match clouds
                .objects
                .put(region, &url, body.into(), PutMode::CreateOnly)
                .await?
            {
                PutOutcome::Written(_) => format!("created ({state})"),
                PutOutcome::AlreadyExists => "exists (left as it is)".into(),
            };
            out.push(Prepared {
                resource: format!("control {url}"),
                region: region.clone(),
                action,
            });
            let want = control::health_check(
                &reference(plan.name(), d, region),
                region,
                &url,
                s3_endpoint,
            );
            let (hc, action) = match reading(&existing, d, region) {
                Some(h) => (h.clone(), "exists"),
                None => (clouds.dns.create_health_check(&want).await?, "created"),
            };
            out.push(Prepared {
                resource: format!("health check {} ({})", hc.id, hc.caller_reference),
                region: region.clone(),
                action: action.into(),
            });
            ids.insert(region.clone(), hc.id);
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
        let z = find_zone(clouds, &zone).await?;
        let todo = missing(clouds, &z, changes, "").await?;
        for c in &changes_desc(&todo) {
            out.push(Prepared {
                resource: c.clone(),
                region: "global".into(),
                action: "upserted".into(),
            });
        }
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
                fqdn(&c.name) == w.name && c.set_identifier == w.set_identifier && same_record(c, w)
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

async fn find_zone(clouds: &Clouds, zone: &str) -> Result<HostedZone, CloudError> {
    clouds.dns.find_zone(zone).await?.ok_or_else(|| {
        CloudError::new(
            "route53",
            "ListHostedZonesByName",
            zone,
            "global",
            crate::cloud::ErrorKind::NotFound,
            "the hosted zone does not exist",
        )
    })
}

/// Checks the setup (control plane, bounded): records and health checks as
/// [`prepare`] makes them. Never blocks: a missing piece is a problem, an
/// API that does not answer is [`NOT_VERIFIABLE`].
pub async fn setup_findings(cx: &Cx<'_>, records: &[DnsSpec]) -> Vec<Finding> {
    match tokio::time::timeout(SETUP_TIMEOUT, check_setup(cx.clouds, cx.plan, records)).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) if e.kind.is_transient() => vec![Finding::ok(
            "data-plane switch setup",
            "global",
            NOT_VERIFIABLE,
        )],
        Ok(Err(e)) => vec![Finding::ok(
            "data-plane switch setup",
            "global",
            format!("setup not verifiable: {}", e.summary()),
        )],
        Err(_) => vec![Finding::ok(
            "data-plane switch setup",
            "global",
            NOT_VERIFIABLE,
        )],
    }
}

async fn check_setup(
    clouds: &Clouds,
    plan: &Plan,
    records: &[DnsSpec],
) -> Result<Vec<Finding>, CloudError> {
    let checks = clouds.dns.list_health_checks().await?;
    let regions = plan.regions().to_vec();
    let mut out = Vec::new();
    for (zone, ds) in by_zone(records) {
        let z = find_zone(clouds, &zone).await?;
        let current = clouds.dns.list_records(&z, "").await?;
        for d in ds {
            let mut ids = BTreeMap::new();
            let mut missing = Vec::new();
            for region in &regions {
                match reading(&checks, d, region) {
                    Some(h) => {
                        ids.insert(region.clone(), h.id.clone());
                    }
                    None => missing.push(format!("health check of {region}")),
                }
            }
            for w in failover_records(d, &regions, &ids) {
                if !current.iter().any(|c| {
                    fqdn(&c.name) == w.name
                        && c.set_identifier == w.set_identifier
                        && same_record(c, &w)
                }) {
                    missing.push(format!(
                        "record {} [{}]",
                        w.name,
                        w.set_identifier.as_deref().unwrap_or("-")
                    ));
                }
            }
            let what = format!("data-plane switch setup of {}", d.name);
            out.push(if missing.is_empty() {
                Finding::ok(&what, "global", "records and health checks in place")
            } else {
                Finding::ok(
                    &what,
                    "global",
                    format!(
                        "incomplete: {} missing or different; run `drctl dns prepare --plan {}`",
                        missing.join(", "),
                        plan.name()
                    ),
                )
            });
        }
    }
    Ok(out)
}

/// The records of a plan by zone (lower case), for the setup checks.
pub fn by_zone(records: &[DnsSpec]) -> BTreeMap<String, Vec<&DnsSpec>> {
    let mut zones: BTreeMap<String, Vec<&DnsSpec>> = BTreeMap::new();
    for d in records {
        zones
            .entry(d.zone.to_ascii_lowercase())
            .or_default()
            .push(d);
    }
    zones
}

#[cfg(test)]
mod tests {
    use super::*;

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
