//! Read: everything `status` needs of one plan, all at once.
//!
//! Every read of every region runs concurrently, each bounded by the read
//! timeout, so one region that does not answer costs the report that
//! timeout and no more (during an outage seconds matter). Nothing here
//! decides anything: the reads are kept as they came back, errors included,
//! for [`super::assess`] to judge.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;

use super::StatusOptions;
use crate::cloud::{CloudError, Clouds, ComputeGroup, DbRole, DnsRecord, LagReading, ObjectUrl};
use crate::plan::Plan;
use crate::plan::duration::format_duration;
use crate::plan::kinds::traffic;
use crate::plan::kinds::{self, Copies, CopyState, Groups, RpoSource, Shown};
use crate::steps::Finding;
use crate::steps::placement::{self, bounded};

/// What was read of one plan, as it came back.
#[derive(Debug)]
pub(super) struct PlanReading {
    /// Each copy of data ([`Shown::Data`]) in each region,
    /// resource-major, in plan order.
    pub dbs: Vec<DbRead>,
    /// Each group ([`Shown::Capacity`]) in each region, resource-major,
    /// in plan order.
    pub groups: Vec<GroupRead>,
    /// Each record ([`Shown::Traffic`]), in plan order
    /// ([`placement::records`]).
    pub dns: Vec<DnsRead>,
    /// Each evidence destination, in plan order.
    pub evidence: Vec<BucketRead>,
    /// Per standby region: what the kinds' own readiness found (health
    /// checks, buckets, restorability).
    pub checks: BTreeMap<String, Vec<Finding>>,
    /// Each data-plane control, each through its own region (as `watch`
    /// reads them: [`placement::controls`]).
    pub controls: Vec<placement::ControlReading>,
    /// Each records-mode zone of the plan ([`traffic::ZoneApi::subject`]): why its
    /// switch needs a control plane one region's outage takes down
    /// ([`traffic::ZoneApi::depends`]; `None`: it does not), or why that could not
    /// be read.
    pub depends: BTreeMap<String, Option<String>>,
}

/// One copy of a resource's data in one region (a database instance),
/// read through its kind.
#[derive(Debug)]
pub(super) struct DbRead {
    /// Plan resource id.
    pub id: String,
    /// Region.
    pub region: String,
    /// The copy's id in that region.
    pub instance: String,
    /// The copy (`None`: it does not exist).
    pub described: Result<Option<CopyState>, CloudError>,
    /// Its lag, read only when it is a replica of an RPO source.
    pub lag: Option<Result<LagReading, CloudError>>,
    /// What people should know of it (the maintenance its provider will
    /// apply to a replica), each in a sentence.
    pub notes: Vec<String>,
}

/// One group of a resource with capacity in one region.
#[derive(Debug)]
pub(super) struct GroupRead {
    /// Plan resource id.
    pub id: String,
    /// Region.
    pub region: String,
    /// The group's name there.
    pub name: String,
    /// What `status` calls it (`compute`, `nodes`).
    pub label: &'static str,
    /// The group (`None`: it does not exist).
    pub group: Result<Option<ComputeGroup>, CloudError>,
}

/// One DNS record of the plan: its record sets, `None` when its zone does
/// not exist.
pub(super) type DnsRead = Result<Option<Vec<DnsRecord>>, CloudError>;

/// One evidence destination.
#[derive(Debug)]
pub(super) struct BucketRead {
    /// Destination URL, as the plan spells it.
    pub destination: String,
    /// Whether its bucket exists; `Err(why)` when the URL does not parse
    /// (then nothing was asked).
    pub exists: Result<Result<bool, CloudError>, String>,
}

/// Reads everything `status` shows of `plan`, concurrently: each
/// resource as its kind says it is shown ([`Shown`]).
pub(super) async fn read_plan(clouds: &Clouds, plan: &Plan, opts: &StatusOptions) -> PlanReading {
    let limit = opts.read_timeout;
    let mut dbs = Vec::new();
    let mut groups = Vec::new();
    for r in kinds::each(&plan.spec) {
        match r.shown() {
            Shown::Data(copies) => dbs.extend(
                (plan.regions().iter())
                    .map(|region| read_db(clouds, opts, copies, r.rpo_source(), region)),
            ),
            Shown::Capacity(g) => groups
                .extend((plan.regions().iter()).map(|region| read_group(clouds, limit, g, region))),
            Shown::Traffic(_) | Shown::Steps { .. } => {}
        }
    }
    let dns = placement::records(plan).map(|d| d.read(clouds, limit));
    // Asked through a standby region: the home one may be down.
    let via = plan.regions().get(1).unwrap_or(&plan.regions()[0]).as_str();
    let evidence = (plan.spec.evidence.iter())
        .flat_map(|e| e.destinations.iter())
        .map(|dest| read_bucket(clouds, limit, via, dest));
    let checks = plan.regions().iter().skip(1).map(|region| async move {
        (
            region.clone(),
            read_checks(clouds, plan, region, limit).await,
        )
    });
    let zones = traffic::by_zone(traffic::switching(plan));
    let depends = (zones.into_iter())
        .filter_map(|(subject, records)| Some((subject, records.first()?.zone())))
        .map(|(subject, zone)| async move { (subject, read_depends(clouds, limit, zone).await) });
    let (dbs, groups, dns, evidence, checks, controls, depends) = futures::join!(
        join_all(dbs),
        join_all(groups),
        join_all(dns),
        join_all(evidence),
        join_all(checks),
        placement::controls(clouds, plan, limit),
        join_all(depends)
    );
    PlanReading {
        dbs,
        groups,
        dns,
        evidence,
        checks: checks.into_iter().collect(),
        controls,
        depends: depends.into_iter().collect(),
    }
}

/// Why a records-mode switch of `zone` needs a control plane that one
/// region's outage takes down ([`traffic::ZoneApi::depends`]), bounded; a read that
/// failed is said as such (what it would have said is not known).
async fn read_depends(clouds: &Clouds, limit: Duration, zone: traffic::Zone<'_>) -> Option<String> {
    let api = zone.api;
    let find = bounded(
        limit,
        ("dns", "zone", zone.name, "global"),
        api.find(clouds, zone),
    );
    let read = match find.await {
        Ok(Some(found)) => {
            let depends = api.depends(clouds, zone, &found);
            bounded(limit, ("dns", "zone", zone.name, "global"), depends).await
        }
        // A missing zone is said by its records' rows.
        Ok(None) => return None,
        Err(e) => Err(e),
    };
    read.unwrap_or_else(|e| {
        Some(format!(
            "whether a switch of zone {} needs one region's control plane could not be read: {}",
            zone.name,
            e.summary()
        ))
    })
}

/// One group of a capacity resource in one region (its read's call, for
/// the bound, is its capacity role's).
async fn read_group(clouds: &Clouds, limit: Duration, g: &dyn Groups, region: &str) -> GroupRead {
    let name = g.group(region).unwrap_or_default();
    let (service, operation) = kinds::call_parts(g.scaling().about().calls.read);
    let what = (service, operation, name, region);
    let mut group = bounded(limit, what, g.describe(clouds, region)).await;
    // What the target groups it is registered in count healthy, read as a
    // raise reads them (`capacity::target_counts`): said, never a reason
    // on its own (a standby at zero has none to count).
    if let Ok(Some(read)) = &mut group {
        let waited = if g.waits_for_targets() {
            ""
        } else {
            " (not waited on: wait_for_targets = false)"
        };
        let counts = crate::steps::capacity::target_counts(clouds, region, &read.target_groups);
        for count in counts.await {
            read.notes.push(format!("{}{waited}", count.said()));
        }
    }
    GroupRead {
        id: g.id().to_string(),
        region: region.to_string(),
        name: name.to_string(),
        label: g.label(),
        group,
    }
}

/// One copy in one region, and its lag when it is a replica of an RPO
/// source.
async fn read_db(
    clouds: &Clouds,
    opts: &StatusOptions,
    copies: &dyn Copies,
    rpo: Option<&dyn RpoSource>,
    region: &str,
) -> DbRead {
    let limit = opts.read_timeout;
    let instance = copies.copy(region).unwrap_or_default();
    let (service, operation) = kinds::call_parts(copies.about().read_call);
    let described = bounded(
        limit,
        (service, operation, instance, region),
        copies.describe(clouds, region),
    )
    .await;
    let lag = match (&described, rpo) {
        (Ok(Some(c)), Some(source)) if matches!(c.role, DbRole::Replica(_)) => {
            let (service, operation) = kinds::call_parts(source.about().lag_call);
            Some(
                bounded(
                    limit,
                    (service, operation, instance, region),
                    source.lag(clouds, region, opts.lag_window),
                )
                .await,
            )
        }
        _ => None,
    };
    // What the provider will apply to a standby copy (a replica): said,
    // never a reason it cannot take over.
    let maintenance = match (&described, copies.about().maintenance_call) {
        (Ok(Some(c)), Some(call)) if matches!(c.role, DbRole::Replica(_)) => {
            let (service, operation) = kinds::call_parts(call);
            bounded(
                limit,
                (service, operation, instance, region),
                copies.maintenance(clouds, region),
            )
            .await
            .unwrap_or_else(|e| Some(vec![format!("pending maintenance not read: {}", e.message)]))
            .unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let notes = (described.iter().flatten())
        .flat_map(|c| c.notes.iter().cloned())
        .chain(maintenance)
        .collect();
    DbRead {
        id: copies.id().to_string(),
        region: region.to_string(),
        instance: instance.to_string(),
        described,
        lag,
        notes,
    }
}

/// Whether one evidence destination's bucket exists, asked through `via`.
async fn read_bucket(clouds: &Clouds, limit: Duration, via: &str, dest: &str) -> BucketRead {
    let exists = match ObjectUrl::parse(dest) {
        Ok(url) => {
            let (service, call) = kinds::call_parts(url.scheme.bucket_probe());
            Ok(bounded(
                limit,
                (service, call, dest, via),
                clouds.objects.bucket_exists(via, &url),
            )
            .await)
        }
        Err(e) => Err(e.to_string()),
    };
    BucketRead {
        destination: dest.to_string(),
        exists,
    }
}

/// Health checks and buckets of one standby, as a failover to it would find
/// them (the kinds' own readiness), bounded like every read.
async fn read_checks(clouds: &Clouds, plan: &Plan, region: &str, limit: Duration) -> Vec<Finding> {
    // The setup's own bound is shorter, so a slow Route 53 API is said as
    // "not verifiable" (its own answer) rather than cut by this one.
    let setup = limit * 3 / 4;
    tokio::time::timeout(limit, crate::steps::readiness(clouds, plan, region, setup))
        .await
        .unwrap_or_else(|_| {
            vec![Finding::blocks(
                "checks and buckets",
                region,
                "no answer",
                format!("no answer within {}", format_duration(limit)),
            )]
        })
}
