//! Route 53's side of a data-plane switch's setup: the failover records
//! and health checks `drctl dns prepare` makes ([`failover_records`],
//! pure), `dns prepare` itself for one record (controls create-only,
//! health checks by caller reference, the records not already there in
//! one batch), how a zone read differs from them ([`gaps`], pure) and the
//! read itself ([`read_setup_bounded`]: Route 53's API is the control
//! plane, us-east-1 alone, so it is bounded and its failure says why the
//! setup is not verifiable). The chain of records, and why a gap blocks
//! only the failover whose answer depends on it, are `steps::dns_setup`'s
//! to tell.
//!
//! Why here, under the steps: it is the kind's answer to the traffic
//! role's verification by resolution ([`Resolving`]): the wait, readiness,
//! `status` and `dns prepare` read and make a Route 53 record's setup
//! through it, one read of a plan's setup for all its records.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use crate::cloud::control::{self, ControlState};
use crate::cloud::{
    CloudError, Clouds, DnsChange, DnsRecord, FailoverRole, HealthCheck, HostedZone, ObjectUrl,
    Routing,
};
use crate::plan::Plan;
use crate::plan::kinds::DnsSpec;
use crate::plan::kinds::SwitchMode;
use crate::plan::kinds::traffic::{
    Gap, Prepared, Resolving, SetupAt, SetupSeen, create_control, same_values,
};

/// What a finding says when Route 53's API does not answer.
pub const NOT_VERIFIABLE: &str =
    "setup not verifiable: Route 53 API unreachable (control plane, us-east-1)";

/// The health check that follows `d`'s control in `region`, whoever made
/// it (`dns prepare`, terraform): one that reads that object and looks for
/// [`control::SERVE_MARKER`]. Found by what it checks, not by its caller
/// reference, which terraform cannot set.
pub fn reading<'a>(
    checks: &'a [HealthCheck],
    d: &DnsSpec,
    region: &str,
) -> Option<&'a HealthCheck> {
    readers(checks, d, region).into_iter().next()
}

/// Every health check that follows `d`'s control in `region` ([`reading`]
/// is the first): a record may follow any of them (one made by `dns
/// prepare`, one by terraform).
pub fn readers<'a>(checks: &'a [HealthCheck], d: &DnsSpec, region: &str) -> Vec<&'a HealthCheck> {
    let Some(url) = d
        .controls
        .get(region)
        .and_then(|u| ObjectUrl::parse(u).ok())
    else {
        return Vec::new();
    };
    checks
        .iter()
        .filter(|h| {
            h.search == control::SERVE_MARKER
                && control::control_of(h).is_some_and(|(r, u)| r == region && u == url)
        })
        .collect()
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

/// A DNS name in lower case with its trailing dot.
pub fn fqdn(n: &str) -> String {
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
pub fn same_record(a: &DnsRecord, b: &DnsRecord) -> bool {
    let ra = a.routing.clone().unwrap_or_default();
    let rb = b.routing.clone().unwrap_or_default();
    ra.failover == rb.failover
        && ra.health_check_id == rb.health_check_id
        && ra.alias.as_deref().map(fqdn) == rb.alias.as_deref().map(fqdn)
        && (ra.alias.is_some() || same_values(&a.values, &b.values))
}

/// The hosted zone `zone`, not found as an error of its lookup.
pub async fn find_zone(clouds: &Clouds, zone: &str) -> Result<HostedZone, CloudError> {
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

/// The level of an alias link of the chain, from its set identifier
/// (`drctl-failover-K` links level K-1 to level K).
fn link_level(set_identifier: Option<&str>) -> Option<usize> {
    let k: usize = set_identifier?
        .strip_prefix("drctl-failover-")?
        .parse()
        .ok()?;
    k.checked_sub(1)
}

/// How a record read from the zone differs from the one wanted (`None`:
/// it is as wanted). `followers`: the health checks that read the
/// record's region's control, any of which it may follow.
fn differs(have: &DnsRecord, want: &DnsRecord, followers: &[&HealthCheck]) -> Option<String> {
    let rh = have.routing.clone().unwrap_or_default();
    let rw = want.routing.clone().unwrap_or_default();
    if rh.failover != rw.failover {
        return Some(format!(
            "is {}, not {}",
            rh.failover
                .map_or("not a failover record".into(), |r| format!("{r:?}")
                    .to_uppercase()),
            rw.failover
                .map_or("-".into(), |r| format!("{r:?}").to_uppercase())
        ));
    }
    if let Some(alias) = &rw.alias {
        if rh.alias.as_deref().map(fqdn) != Some(fqdn(alias)) {
            return Some(format!(
                "aliases {}, not {}",
                rh.alias.as_deref().unwrap_or("nothing"),
                fqdn(alias)
            ));
        }
        if !rh.evaluate_target_health {
            return Some("does not evaluate its target's health".into());
        }
        return None;
    }
    if !same_values(&have.values, &want.values) {
        return Some(format!(
            "answers {}, not {}",
            have.values.join(", "),
            want.values.join(", ")
        ));
    }
    match &rh.health_check_id {
        None => Some("follows no health check (always healthy)".into()),
        Some(id) if followers.iter().any(|h| &h.id == id) => None,
        Some(id) => Some(format!(
            "follows health check {id}, which does not read its region's control"
        )),
    }
}

/// The gaps of `d`'s setup over `regions` (home first) for a failover to
/// `target`, given every health check of the account and every record of
/// the zone (pure; see the module documentation).
pub fn gaps(
    d: &DnsSpec,
    regions: &[String],
    target: &str,
    checks: &[HealthCheck],
    current: &[DnsRecord],
) -> Vec<Gap> {
    let n = regions.len();
    // The level whose records answer with the target: its PRIMARY, or the
    // last level's SECONDARY for the last region.
    let target_level = regions
        .iter()
        .position(|r| r == target)
        .map(|t| t.min(n.saturating_sub(2)));
    let mut out = Vec::new();
    let mut ids = BTreeMap::new();
    let mut followers: BTreeMap<&str, Vec<&HealthCheck>> = BTreeMap::new();
    for region in regions {
        let found = readers(checks, d, region);
        match found.first() {
            Some(h) => {
                ids.insert(region.clone(), h.id.clone());
            }
            None => out.push(Gap {
                what: format!("health check of {region}"),
                how: format!(
                    "missing (none reads {})",
                    d.controls.get(region).map_or("its control", String::as_str)
                ),
                needed: region == target,
            }),
        }
        followers.insert(region.as_str(), found);
    }
    for w in failover_records(d, regions, &ids) {
        let set = w.set_identifier.as_deref();
        let needed = set == Some(target)
            || link_level(set)
                .zip(target_level)
                .is_some_and(|(k, t)| k < t);
        let have = current.iter().find(|c| {
            fqdn(&c.name) == w.name
                && c.rtype.eq_ignore_ascii_case(&w.rtype)
                && c.set_identifier.as_deref() == set
        });
        let how = match have {
            None => Some("missing".to_string()),
            Some(c) => differs(
                c,
                &w,
                followers
                    .get(set.unwrap_or_default())
                    .map_or(&[][..], Vec::as_slice),
            ),
        };
        if let Some(how) = how {
            out.push(Gap {
                what: format!("record {} {} [{}]", w.name, w.rtype, set.unwrap_or("-")),
                how,
                needed,
            });
        }
    }
    out
}

/// What Route 53's API shows of a setup: every health check, and the
/// records of each zone (lower case).
#[derive(Debug, Clone, Default)]
pub struct SetupRead {
    /// Every health check of the account.
    pub checks: Vec<HealthCheck>,
    /// Every record of each zone.
    pub zones: BTreeMap<String, Vec<DnsRecord>>,
}

impl SetupRead {
    /// The gaps of `d`'s setup for a failover of `plan` to `target`.
    pub fn gaps(&self, plan: &Plan, d: &DnsSpec, target: &str) -> Vec<Gap> {
        let current = self
            .zones
            .get(&d.zone.to_ascii_lowercase())
            .map_or(&[][..], Vec::as_slice);
        gaps(d, plan.regions(), target, &self.checks, current)
    }

    /// The health checks that read `d`'s controls, per region.
    pub fn followers(&self, plan: &Plan, d: &DnsSpec) -> Vec<(String, HealthCheck)> {
        (plan.regions().iter())
            .flat_map(|r| {
                readers(&self.checks, d, r)
                    .into_iter()
                    .map(|h| (r.clone(), h.clone()))
            })
            .collect()
    }
}

/// Reads the setup of `records` from Route 53's API (control plane; the
/// caller bounds it).
pub async fn read_setup(clouds: &Clouds, records: &[DnsSpec]) -> Result<SetupRead, CloudError> {
    let checks = clouds.dns.list_health_checks().await?;
    let mut zones = BTreeMap::new();
    for zone in by_zone(records).into_keys() {
        let z = find_zone(clouds, &zone).await?;
        zones.insert(zone, clouds.dns.list_records(&z, "").await?);
    }
    Ok(SetupRead { checks, zones })
}

/// [`read_setup`] bounded by `limit` (the context's
/// `Cx::control_read_timeout`); `Err` says why the setup is not
/// verifiable.
pub async fn read_setup_bounded(
    clouds: &Clouds,
    records: &[DnsSpec],
    limit: Duration,
) -> Result<SetupRead, String> {
    match tokio::time::timeout(limit, read_setup(clouds, records)).await {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(e)) if e.kind.is_transient() => Err(NOT_VERIFIABLE.into()),
        Ok(Err(e)) => Err(format!("setup not verifiable: {}", e.summary())),
        Err(_) => Err(NOT_VERIFIABLE.into()),
    }
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

/// `dns prepare` for one data-plane record over the plan's regions (home
/// first): each region's control (home serves, the others drain; an
/// existing control is left as it is) and the health check reading it
/// (an existing one, `dns prepare`'s or terraform's, else made, by caller
/// reference, so never twice), then its failover records in one UPSERT
/// batch of its zone, those not already there.
async fn prepare_record(
    clouds: &Clouds,
    plan: &Plan,
    d: &DnsSpec,
    s3_endpoint: Option<&str>,
) -> Result<Vec<Prepared>, CloudError> {
    let regions = plan.regions().to_vec();
    let existing = clouds.dns.list_health_checks().await?;
    let mut out = Vec::new();
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
    let changes = (failover_records(d, &regions, &ids).into_iter())
        .map(DnsChange::Upsert)
        .collect();
    out.extend(upsert_zone(clouds, plan, &d.zone.to_ascii_lowercase(), changes).await?);
    Ok(out)
}

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

/// A region's control URL from the plan, as an error of the control's
/// write when it does not parse.
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

/// The changes as `dns prepare` reports them.
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

/// How long health checks take to see a drained control (pure): the
/// slowest of `checks` (failure threshold × request interval; `dns
/// prepare`'s own when there are none) plus `ttl`.
pub fn flip_after(checks: &[HealthCheck], ttl: i64) -> Duration {
    let flip = |h: &HealthCheck| u64::from(h.failure_threshold) * u64::from(h.interval);
    let slowest = (checks.iter().map(flip).max())
        .unwrap_or(u64::from(control::CHECK_FAILURES) * u64::from(control::CHECK_INTERVAL));
    Duration::from_secs(slowest.saturating_add(u64::try_from(ttl).unwrap_or(0)))
}

/// A data-plane record is verified by resolution: the target's value;
/// beside the wait, where Route 53's API answers, the records and health
/// checks `dns prepare` makes ([`gaps`]), whose pace the wait takes.
#[async_trait]
impl Resolving for DnsSpec {
    fn waits(&self) -> &'static [&'static str] {
        &["route53:HealthCheckFailover"]
    }

    fn resolver_zone(&self) -> &str {
        &self.zone
    }

    fn answer(&self, target: &str) -> Option<&str> {
        self.targets.get(target).map(String::as_str)
    }

    fn ttl(&self) -> i64 {
        self.ttl
    }

    fn assumed_flip(&self) -> Duration {
        flip_after(&[], 0)
    }

    fn hint(&self, _plan: &str) -> String {
        "see the controls and health checks (drctl status); a control that could not be drained keeps its region answering".into()
    }

    async fn prepare(
        &self,
        clouds: &Clouds,
        plan: &Plan,
        s3_endpoint: Option<&str>,
    ) -> Result<Vec<Prepared>, CloudError> {
        prepare_record(clouds, plan, self, s3_endpoint).await
    }

    /// One read of the plan's Route 53 setup (every data-plane record's
    /// zone and the account's health checks), shared by its records.
    async fn setup(&self, at: SetupAt<'_>) -> SetupSeen {
        let read = at
            .reads
            .once("route53", || async {
                let mut records: Vec<DnsSpec> = (at.plan.spec.dns.iter())
                    .filter(|d| d.switch == SwitchMode::HealthCheck)
                    .cloned()
                    .collect();
                // A drill's record, renamed, is read with the plan's.
                if !records
                    .iter()
                    .any(|d| d.id == self.id && d.name == self.name)
                {
                    records.push(self.clone());
                }
                read_setup_bounded(at.clouds, &records, at.limit).await
            })
            .await;
        let read = read.as_ref().as_ref();
        let flip = read.ok().map(|read| {
            let followers: Vec<HealthCheck> = (read.followers(at.plan, self).into_iter())
                .map(|(_, h)| h)
                .collect();
            flip_after(&followers, 0)
        });
        let plan = at.plan;
        SetupSeen {
            gaps: (read.map(|read| read.gaps(plan, self, at.target))).map_err(Clone::clone),
            flip,
            in_place: "records and health checks in place",
            fix: format!(
                "run `drctl dns prepare --plan {}` (it restores the records and health checks and leaves the controls as a run set them)",
                plan.name()
            ),
        }
    }
}
