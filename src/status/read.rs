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
use crate::cloud::{
    CloudError, Clouds, ComputeGroup, DbInstance, DbRole, DnsRecord, LagReading, ObjectUrl,
};
use crate::plan::Plan;
use crate::plan::duration::format_duration;
use crate::plan::spec::DnsSpec;
use crate::steps::Finding;
use crate::steps::placement::{self, bounded};

/// What was read of one plan, as it came back.
#[derive(Debug)]
pub(super) struct PlanReading {
    /// Each database in each region, database-major, in plan order.
    pub dbs: Vec<DbRead>,
    /// Each compute group in each region, group-major, in plan order.
    pub groups: Vec<GroupRead>,
    /// Each DNS record of the plan, in plan order.
    pub dns: Vec<DnsRead>,
    /// Each evidence destination, in plan order.
    pub evidence: Vec<BucketRead>,
    /// Per standby region: what the kinds' own readiness found (health
    /// checks, buckets, restorability).
    pub checks: BTreeMap<String, Vec<Finding>>,
}

/// One database instance in one region.
#[derive(Debug)]
pub(super) struct DbRead {
    /// Plan resource id.
    pub id: String,
    /// Region.
    pub region: String,
    /// Instance id in that region.
    pub instance: String,
    /// The instance (`None`: it does not exist).
    pub described: Result<Option<DbInstance>, CloudError>,
    /// Its replica lag, read only when it is a replica.
    pub lag: Option<Result<LagReading, CloudError>>,
}

/// One compute group in one region.
#[derive(Debug)]
pub(super) struct GroupRead {
    /// Plan resource id.
    pub id: String,
    /// Region.
    pub region: String,
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

/// Reads everything `status` shows of `plan`, concurrently.
pub(super) async fn read_plan(clouds: &Clouds, plan: &Plan, opts: &StatusOptions) -> PlanReading {
    let spec = &plan.spec;
    let limit = opts.read_timeout;
    let dbs = spec.database.iter().flat_map(|d| {
        plan.regions()
            .iter()
            .map(move |region| read_db(clouds, opts, &d.id, region, &d.regions[region]))
    });
    let groups = spec.compute.iter().flat_map(|g| {
        plan.regions().iter().map(move |region| async move {
            let name = g.regions[region].as_str();
            let what = (
                "autoscaling",
                "DescribeAutoScalingGroups",
                name,
                region.as_str(),
            );
            GroupRead {
                id: g.id.clone(),
                region: region.clone(),
                group: bounded(limit, what, clouds.compute.describe_group(region, name)).await,
            }
        })
    });
    let dns = spec.dns.iter().map(|d| read_dns(clouds, limit, d));
    // Asked through a standby region: the home one may be down.
    let via = plan.regions().get(1).unwrap_or(&plan.regions()[0]).as_str();
    let evidence = spec
        .evidence
        .iter()
        .flat_map(|e| e.destinations.iter())
        .map(|dest| read_bucket(clouds, limit, via, dest));
    let checks = plan.regions().iter().skip(1).map(|region| async move {
        (
            region.clone(),
            read_checks(clouds, plan, region, limit).await,
        )
    });
    let (dbs, groups, dns, evidence, checks) = futures::join!(
        join_all(dbs),
        join_all(groups),
        join_all(dns),
        join_all(evidence),
        join_all(checks)
    );
    PlanReading {
        dbs,
        groups,
        dns,
        evidence,
        checks: checks.into_iter().collect(),
    }
}

/// One database instance, and its lag when it is a replica.
async fn read_db(
    clouds: &Clouds,
    opts: &StatusOptions,
    id: &str,
    region: &str,
    instance: &str,
) -> DbRead {
    let limit = opts.read_timeout;
    let described = placement::read_instance(clouds, limit, region, instance).await;
    let lag = match &described {
        Ok(Some(i)) if matches!(i.role, DbRole::Replica(_)) => Some(
            bounded(
                limit,
                ("cloudwatch", "GetMetricData", instance, region),
                clouds
                    .metrics
                    .replica_lag(region, instance, opts.lag_window),
            )
            .await,
        ),
        _ => None,
    };
    DbRead {
        id: id.to_string(),
        region: region.to_string(),
        instance: instance.to_string(),
        described,
        lag,
    }
}

/// One DNS record's sets (through [`placement`], as `watch` reads them).
async fn read_dns(clouds: &Clouds, limit: Duration, d: &DnsSpec) -> DnsRead {
    placement::read_records(clouds, limit, d).await
}

/// Whether one evidence destination's bucket exists, asked through `via`.
async fn read_bucket(clouds: &Clouds, limit: Duration, via: &str, dest: &str) -> BucketRead {
    let exists = match ObjectUrl::parse(dest) {
        Ok(url) => Ok(bounded(
            limit,
            ("s3", "HeadBucket", dest, via),
            clouds.objects.bucket_exists(via, &url),
        )
        .await),
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
    tokio::time::timeout(limit, crate::steps::readiness(clouds, plan, region))
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
