//! Readiness: where each plan stands now, and whether each standby region
//! could take over.
//!
//! Readiness is computed from live cloud state only (never from what drctl
//! believes it did), through the same adapter traits the engine uses, so an
//! SRE can run `drctl status` before deciding to fail over and trust it. All
//! reads for all plans run concurrently: during an outage seconds matter.

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use crate::cloud::{CloudError, Clouds, DbRole, LagReading, ObjectUrl};
use crate::plan::Plan;
use crate::plan::duration::format_duration;
use crate::plan::spec::{DbStrategy, DnsSpec, SwitchMode};

/// How far back replica lag is read.
pub const DEFAULT_LAG_WINDOW: Duration = Duration::from_secs(15 * 60);

/// How long one read may take before its region counts as unreachable.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How `status` reads.
#[derive(Debug, Clone, Copy)]
pub struct StatusOptions {
    /// Window replica lag is read over.
    pub lag_window: Duration,
    /// Bound on each read, retries included: a region whose reads run past
    /// it is shown as unreachable instead of holding the whole report up.
    pub read_timeout: Duration,
}

impl Default for StatusOptions {
    fn default() -> Self {
        Self {
            lag_window: DEFAULT_LAG_WINDOW,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// Runs one read under `limit`; running past it is a connection failure of
/// that read (so the region counts as unreachable).
async fn bounded<T>(
    limit: Duration,
    what: (&'static str, &'static str, &str, &str),
    read: impl std::future::Future<Output = Result<T, CloudError>>,
) -> Result<T, CloudError> {
    let (service, operation, resource, region) = what;
    match tokio::time::timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => Err(CloudError::new(
            service,
            operation,
            resource,
            region,
            crate::cloud::ErrorKind::Connection,
            format!("no answer within {}", format_duration(limit)),
        )),
    }
}

/// Whether a failed read means the region did not answer (as opposed to an
/// answer that refused us).
fn unreachable(e: &CloudError) -> bool {
    e.kind.is_transient()
}

/// Readiness of every plan.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// One entry per plan.
    pub plans: Vec<PlanStatus>,
}

impl StatusReport {
    /// Whether every plan is ready.
    pub fn all_ready(&self) -> bool {
        self.plans.iter().all(|p| p.ready)
    }
}

/// One plan's state.
#[derive(Debug, Clone, Serialize)]
pub struct PlanStatus {
    /// Plan name.
    pub plan: String,
    /// Tier name.
    pub tier: String,
    /// Tier RTO in seconds.
    pub rto_seconds: u64,
    /// Tier RPO in seconds.
    pub rpo_seconds: u64,
    /// Region that serves now (where the databases are primary, else where DNS points, else home).
    pub active_region: String,
    /// Where each DNS record points.
    pub dns: Vec<DnsStatus>,
    /// Per region: databases and compute.
    pub regions: Vec<RegionStatus>,
    /// Evidence destinations and whether their buckets exist.
    pub evidence: Vec<EvidenceStatus>,
    /// Whether every standby region is ready to take over.
    pub ready: bool,
    /// Why not, when not (plan-level problems; region problems are in `regions`).
    pub problems: Vec<String>,
    /// Drill cadence (last drill and verdict, overdue), from the journals;
    /// filled in by the caller that has the state (`None`: not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<crate::runs::schedule::Cadence>,
}

/// A DNS record's current state.
#[derive(Debug, Clone, Serialize)]
pub struct DnsStatus {
    /// Resource id.
    pub id: String,
    /// Record name.
    pub name: String,
    /// Current values (for weighted records: `set-id=weight:value`).
    pub values: Vec<String>,
    /// Region it points to, when recognisable.
    pub points_to: Option<String>,
}

/// One region of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    /// Region.
    pub region: String,
    /// `active` or `standby`.
    pub role: &'static str,
    /// Why the region's APIs did not answer, when some read of it did not
    /// (connection refused, timed out, 5xx after retries).
    pub unreachable: Option<String>,
    /// Databases in this region.
    pub databases: Vec<DbStatus>,
    /// Compute groups in this region.
    pub compute: Vec<ComputeStatus>,
    /// For a standby: what its health checks and buckets look like, as a
    /// failover's preflight would find them (see `steps::readiness`).
    pub checks: Vec<crate::steps::Finding>,
    /// For a standby: ready to take over.
    pub ready: bool,
    /// For a standby: why not.
    pub problems: Vec<String>,
}

/// A database instance's state.
#[derive(Debug, Clone, Serialize)]
pub struct DbStatus {
    /// Resource id.
    pub id: String,
    /// Instance id.
    pub instance: String,
    /// `primary`, `replica`, `missing`, `unreachable` or `unknown`.
    pub role: String,
    /// Replica source, for a replica.
    pub source: Option<String>,
    /// Provider status.
    pub state: Option<String>,
    /// Endpoint address.
    pub endpoint: Option<String>,
    /// Largest replica lag in the window, in seconds (`None` = unknown: no datapoints).
    pub lag_seconds: Option<f64>,
    /// Datapoints the lag was computed from.
    pub lag_datapoints: usize,
    /// Window the lag was read over, seconds.
    pub lag_window_seconds: u64,
    /// Whether the lag is within the tier's RPO (`None` when not a replica or unknown).
    pub within_rpo: Option<bool>,
}

/// A compute group's state.
#[derive(Debug, Clone, Serialize)]
pub struct ComputeStatus {
    /// Resource id.
    pub id: String,
    /// Group name.
    pub group: String,
    /// Whether the group exists.
    pub exists: bool,
    /// min/desired/max.
    pub capacity: Option<crate::cloud::Capacity>,
    /// Instances in service.
    pub in_service: Option<u32>,
}

/// An evidence destination.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceStatus {
    /// Destination URL.
    pub destination: String,
    /// Whether the bucket exists (`None` when the check failed).
    pub reachable: Option<bool>,
    /// Error, when the check failed.
    pub error: Option<String>,
}

fn err_line(e: &CloudError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Computes the readiness of `plans`.
pub async fn status(clouds: &Clouds, plans: &[Plan], opts: &StatusOptions) -> StatusReport {
    let plans = join_all(plans.iter().map(|p| plan_status(clouds, p, opts))).await;
    StatusReport { plans }
}

async fn plan_status(clouds: &Clouds, plan: &Plan, opts: &StatusOptions) -> PlanStatus {
    let spec = &plan.spec;
    let rpo = plan.tier.rpo;
    let window = opts.lag_window;
    let limit = opts.read_timeout;
    let mut problems = Vec::new();
    // Regions that did not answer some read: region → why.
    let mut dead: std::collections::BTreeMap<String, String> = Default::default();

    // Databases, every region, concurrently.
    let db_reads = spec.database.iter().flat_map(|d| {
        plan.regions().iter().map(move |region| async move {
            let inst_id = &d.regions[region];
            let what = (
                "rds",
                "DescribeDBInstances",
                inst_id.as_str(),
                region.as_str(),
            );
            let described = bounded(
                limit,
                what,
                clouds.database.describe_instance(region, inst_id),
            )
            .await;
            let lag = match &described {
                Ok(Some(i)) if matches!(i.role, DbRole::Replica(_)) => {
                    let what = (
                        "cloudwatch",
                        "GetMetricData",
                        inst_id.as_str(),
                        region.as_str(),
                    );
                    Some(
                        bounded(
                            limit,
                            what,
                            clouds.metrics.replica_lag(region, inst_id, window),
                        )
                        .await,
                    )
                }
                _ => None,
            };
            (d, region.clone(), described, lag)
        })
    });
    let groups = spec.compute.iter().flat_map(|g| {
        plan.regions().iter().map(move |region| async move {
            let name = &g.regions[region];
            let what = (
                "autoscaling",
                "DescribeAutoScalingGroups",
                name.as_str(),
                region.as_str(),
            );
            (
                g,
                region.clone(),
                bounded(limit, what, clouds.compute.describe_group(region, name)).await,
            )
        })
    });
    let via = plan.regions().get(1).unwrap_or(&plan.regions()[0]).as_str();
    let evidence = spec
        .evidence
        .iter()
        .flat_map(|e| e.destinations.iter())
        .map(|dest| async move {
            match ObjectUrl::parse(dest) {
                // Asked through a standby region: the home one may be down.
                Ok(url) => match bounded(
                    limit,
                    ("s3", "HeadBucket", dest.as_str(), via),
                    clouds.objects.bucket_exists(via, &url),
                )
                .await
                {
                    Ok(b) => EvidenceStatus {
                        destination: dest.clone(),
                        reachable: Some(b),
                        error: None,
                    },
                    Err(e) => EvidenceStatus {
                        destination: dest.clone(),
                        reachable: None,
                        error: Some(err_line(&e)),
                    },
                },
                Err(e) => EvidenceStatus {
                    destination: dest.clone(),
                    reachable: Some(false),
                    error: Some(e.to_string()),
                },
            }
        });
    // Health checks and buckets of each standby, as a failover to it would
    // find them (the kinds' own preflight), each bounded like every read.
    let standby_checks = plan.regions().iter().skip(1).map(|region| async move {
        let found = tokio::time::timeout(limit, crate::steps::readiness(clouds, plan, region))
            .await
            .unwrap_or_else(|_| {
                vec![crate::steps::Finding::blocks(
                    "checks and buckets",
                    region,
                    "no answer",
                    format!("no answer within {}", format_duration(limit)),
                )]
            });
        (region.clone(), found)
    });
    let (dbs, groups, evidence, checks) = futures::join!(
        join_all(db_reads),
        join_all(groups),
        join_all(evidence),
        join_all(standby_checks)
    );
    let checks: std::collections::BTreeMap<String, Vec<crate::steps::Finding>> =
        checks.into_iter().collect();

    let mut db_status: Vec<(String, DbStatus)> = Vec::new();
    let mut endpoints: Vec<(String, String, String)> = Vec::new(); // (db id, region, endpoint)
    for (d, region, described, lag) in dbs {
        let instance = d.regions[&region].clone();
        let mut st = DbStatus {
            id: d.id.clone(),
            instance: instance.clone(),
            role: "unknown".into(),
            source: None,
            state: None,
            endpoint: None,
            lag_seconds: None,
            lag_datapoints: 0,
            lag_window_seconds: window.as_secs(),
            within_rpo: None,
        };
        match described {
            Ok(Some(i)) => {
                st.role = match &i.role {
                    DbRole::Primary => "primary".into(),
                    DbRole::Replica(src) => {
                        st.source = Some(src.clone());
                        "replica".into()
                    }
                };
                st.state = Some(i.status.clone());
                st.endpoint = i.endpoint.clone();
                if let Some(ep) = &i.endpoint {
                    endpoints.push((d.id.clone(), region.clone(), ep.clone()));
                }
            }
            Ok(None) => st.role = "missing".into(),
            Err(e) if unreachable(&e) => {
                st.role = "unreachable".into();
                dead.entry(region.clone()).or_insert_with(|| err_line(&e));
            }
            Err(e) => problems.push(err_line(&e)),
        }
        match lag {
            Some(Ok(LagReading {
                max, datapoints, ..
            })) => {
                st.lag_seconds = max.map(|m| m.as_secs_f64());
                st.lag_datapoints = datapoints;
                st.within_rpo = max.map(|m| m <= rpo);
            }
            Some(Err(e)) if unreachable(&e) => {
                dead.entry(region.clone()).or_insert_with(|| err_line(&e));
            }
            Some(Err(e)) => problems.push(err_line(&e)),
            None => {}
        }
        db_status.push((region, st));
    }

    // DNS.
    let dns = join_all(
        spec.dns
            .iter()
            .map(|d| dns_status(clouds, plan, d, &endpoints)),
    )
    .await;
    let mut dns_status = Vec::new();
    for r in dns {
        match r {
            Ok(s) => dns_status.push(s),
            Err(e) => problems.push(e),
        }
    }

    // Active region: where databases are primary, else where DNS points, else home.
    let primaries: Vec<&str> = db_status
        .iter()
        .filter(|(_, s)| s.role == "primary")
        .map(|(r, _)| r.as_str())
        .collect();
    // Where DNS points wins (after a failover both copies may be primaries);
    // then where the databases are primary; then home.
    let active = plan
        .regions()
        .iter()
        .max_by_key(|r| {
            let votes = dns_status
                .iter()
                .filter(|d| d.points_to.as_deref() == Some(r.as_str()))
                .count();
            (
                votes,
                primaries.contains(&r.as_str()),
                std::cmp::Reverse(plan.regions().iter().position(|x| x == *r)),
            )
        })
        .cloned()
        .unwrap_or_else(|| plan.home().to_string());

    let mut regions = Vec::new();
    for region in plan.regions() {
        let is_active = *region == active;
        let databases: Vec<DbStatus> = db_status
            .iter()
            .filter(|(r, _)| r == region)
            .map(|(_, s)| s.clone())
            .collect();
        let compute: Vec<ComputeStatus> = groups
            .iter()
            .filter(|(_, r, _)| r == region)
            .map(|(g, _, res)| {
                let group = g.regions[region].clone();
                match res {
                    Ok(Some(cg)) => ComputeStatus {
                        id: g.id.clone(),
                        group,
                        exists: true,
                        capacity: Some(cg.capacity),
                        in_service: Some(cg.in_service),
                    },
                    Ok(None) => ComputeStatus {
                        id: g.id.clone(),
                        group,
                        exists: false,
                        capacity: None,
                        in_service: None,
                    },
                    Err(e) => {
                        if unreachable(e) {
                            dead.entry(region.clone()).or_insert_with(|| err_line(e));
                        } else {
                            problems.push(err_line(e));
                        }
                        ComputeStatus {
                            id: g.id.clone(),
                            group,
                            exists: false,
                            capacity: None,
                            in_service: None,
                        }
                    }
                }
            })
            .collect();
        let mut rp = Vec::new();
        if !is_active {
            for db in &databases {
                let spec_db = spec
                    .database(&db.id)
                    .expect("status rows come from the plan");
                match (spec_db.strategy, db.role.as_str()) {
                    (_, "missing") => rp.push(format!("database {} does not exist in {region}", db.instance)),
                    (_, "unknown") => rp.push(format!("database {} in {region} could not be read", db.instance)),
                    (_, "unreachable") => {}
                    (DbStrategy::PromoteReplica, "primary") => rp.push(format!(
                        "database {} in {region} is a primary, not a replica of the active region: run `drctl reprotect --plan {}`",
                        db.instance,
                        plan.name()
                    )),
                    (DbStrategy::PromoteReplica, _) => {
                        let check = crate::engine::gates::LagCheck {
                            instance: &db.instance,
                            region,
                            lag_seconds: db.lag_seconds,
                            window,
                            tier: &plan.tier.name,
                            rpo,
                            accepted: None,
                        };
                        let unknown = format!(
                            "no ReplicaLag datapoints in the last {}",
                            format_duration(window)
                        );
                        if let Some(problem) = check.problem(&unknown) {
                            rp.push(match db.lag_seconds {
                                None => format!("{problem}: a failover needs --accept-data-loss"),
                                Some(_) => problem,
                            });
                        }
                    }
                    (DbStrategy::PointInTimeRestore, _) => {}
                }
                if db.state.as_deref().is_some_and(|s| s != "available") {
                    rp.push(format!(
                        "database {} in {region} is `{}`, not available",
                        db.instance,
                        db.state.as_deref().unwrap_or_default()
                    ));
                }
            }
            for f in checks.get(region).into_iter().flatten() {
                if let Some(p) = &f.problem {
                    rp.push(format!("{} in {region}: {p}", f.resource));
                }
            }
            if let Some(why) = dead.get(region) {
                rp.push(format!(
                    "{region} does not answer ({why}): it cannot take over now"
                ));
            }
            for g in compute.iter().filter(|_| !dead.contains_key(region)) {
                if !g.exists {
                    rp.push(format!(
                        "compute group {} does not exist in {region}",
                        g.group
                    ));
                } else if let (Some(cap), Some(gs)) =
                    (g.capacity, spec.compute.iter().find(|c| c.id == g.id))
                    && cap.max < gs.active.desired
                {
                    rp.push(format!(
                        "compute group {} in {region} has max {} below the active capacity {}",
                        g.group, cap.max, gs.active.desired
                    ));
                }
            }
        }
        regions.push(RegionStatus {
            region: region.clone(),
            role: if is_active { "active" } else { "standby" },
            unreachable: dead.get(region).cloned(),
            checks: if is_active {
                Vec::new()
            } else {
                checks.get(region).cloned().unwrap_or_default()
            },
            ready: is_active || rp.is_empty(),
            problems: rp,
            databases,
            compute,
        });
    }
    for e in &evidence {
        if e.reachable == Some(false) {
            problems.push(format!(
                "evidence bucket of {} does not exist",
                e.destination
            ));
        } else if let Some(err) = &e.error {
            problems.push(err.clone());
        }
    }
    let ready = problems.is_empty() && regions.iter().all(|r| r.ready);
    PlanStatus {
        plan: plan.name().to_string(),
        tier: plan.tier.name.clone(),
        rto_seconds: plan.tier.rto.as_secs(),
        rpo_seconds: rpo.as_secs(),
        active_region: active,
        dns: dns_status,
        regions,
        evidence,
        ready,
        problems,
        drill: None,
    }
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

async fn dns_status(
    clouds: &Clouds,
    plan: &Plan,
    d: &DnsSpec,
    endpoints: &[(String, String, String)],
) -> Result<DnsStatus, String> {
    let zone = clouds
        .dns
        .find_zone(&d.zone)
        .await
        .map_err(|e| err_line(&e))?
        .ok_or_else(|| format!("hosted zone {} of record {} does not exist", d.zone, d.name))?;
    let records = clouds
        .dns
        .read_records(&zone, &d.name, &d.rtype)
        .await
        .map_err(|e| err_line(&e))?;
    if records.is_empty() {
        return Err(format!(
            "record {} {} does not exist in {}",
            d.name, d.rtype, d.zone
        ));
    }
    let region_of = |value: &str| -> Option<String> {
        match &d.follows {
            Some(db) => endpoints
                .iter()
                .find(|(id, _, ep)| id == db && same_name(ep, value))
                .map(|(_, r, _)| r.clone()),
            None => plan
                .regions()
                .iter()
                .find(|r| d.targets.get(*r).is_some_and(|t| same_name(t, value)))
                .cloned(),
        }
    };
    let (values, points_to) = match d.switch {
        SwitchMode::Weighted => {
            let values = records
                .iter()
                .map(|r| {
                    format!(
                        "{}={}:{}",
                        r.set_identifier.as_deref().unwrap_or("-"),
                        r.weight.unwrap_or(0),
                        r.values.join(",")
                    )
                })
                .collect();
            let top = records
                .iter()
                .filter(|r| r.weight.unwrap_or(0) > 0)
                .max_by_key(|r| r.weight);
            (
                values,
                top.and_then(|r| r.values.first())
                    .and_then(|v| region_of(v)),
            )
        }
        SwitchMode::Upsert => {
            let values: Vec<String> = records.iter().flat_map(|r| r.values.clone()).collect();
            let points = values.first().and_then(|v| region_of(v));
            (values, points)
        }
    };
    Ok(DnsStatus {
        id: d.id.clone(),
        name: d.name.clone(),
        values,
        points_to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::{Capacity, DnsRecord};

    fn plans() -> Vec<Plan> {
        crate::plan::reference()
    }

    fn cname(name: &str, value: &str) -> DnsRecord {
        DnsRecord {
            name: name.into(),
            rtype: "CNAME".into(),
            ttl: Some(60),
            values: vec![value.into()],
            set_identifier: None,
            weight: None,
        }
    }

    /// The reference world of `localstack/seed`, in memory.
    fn reference_world() -> FakeCloud {
        let f = FakeCloud::new();
        f.add_zone("example.com.");
        for (db, lag) in [("payments-db", 3.0), ("ledger-db", 1200.0)] {
            f.add_primary("us-west-2", db);
            f.add_replica("us-east-1", &format!("{db}-use1"), ("us-west-2", db));
            f.set_lag("us-east-1", &format!("{db}-use1"), &[lag / 2.0, lag]);
        }
        f.add_group(
            "us-west-2",
            "payments-api-usw2",
            Capacity {
                min: 2,
                desired: 4,
                max: 8,
            },
        );
        f.add_group(
            "us-east-1",
            "payments-api-use1",
            Capacity {
                min: 0,
                desired: 0,
                max: 8,
            },
        );
        f.add_group(
            "us-west-2",
            "ledger-workers-usw2",
            Capacity {
                min: 1,
                desired: 2,
                max: 4,
            },
        );
        f.add_group(
            "us-east-1",
            "ledger-workers-use1",
            Capacity {
                min: 0,
                desired: 0,
                max: 4,
            },
        );
        f.put_record(
            "example.com.",
            cname("api.example.com.", "api-usw2.example.com."),
        );
        f.put_record(
            "example.com.",
            cname(
                "payments-db.example.com.",
                "payments-db.fake.us-west-2.rds.amazonaws.com",
            ),
        );
        for (set, weight, value) in [
            ("us-west-2", 100, "ledger-usw2.example.com."),
            ("us-east-1", 0, "ledger-use1.example.com."),
        ] {
            f.put_record(
                "example.com.",
                DnsRecord {
                    set_identifier: Some(set.into()),
                    weight: Some(weight),
                    ..cname("ledger.example.com.", value)
                },
            );
        }
        f.state().buckets = vec![
            "s3://drctl-evidence-use1".into(),
            "gs://drctl-evidence".into(),
        ];
        f
    }

    #[tokio::test]
    async fn payments_is_ready_and_ledger_is_not_because_of_lag() {
        let world = reference_world();
        let report = status(&world.clouds(), &plans(), &StatusOptions::default()).await;
        let payments = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        assert!(payments.ready, "{payments:#?}");
        assert_eq!(payments.active_region, "us-west-2");
        assert_eq!(payments.dns[0].points_to.as_deref(), Some("us-west-2"));
        assert_eq!(payments.dns[1].points_to.as_deref(), Some("us-west-2"));
        let use1 = &payments.regions[1];
        assert_eq!(use1.databases[0].role, "replica");
        assert_eq!(use1.databases[0].lag_seconds, Some(3.0));
        assert_eq!(
            use1.compute[0].capacity,
            Some(Capacity {
                min: 0,
                desired: 0,
                max: 8
            })
        );

        let ledger = report.plans.iter().find(|p| p.plan == "ledger").unwrap();
        assert!(!ledger.ready);
        assert_eq!(ledger.dns[0].points_to.as_deref(), Some("us-west-2"));
        let problems = &ledger.regions[1].problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("20m") && problems[0].contains("RPO of 15m"),
            "{problems:?}"
        );
        assert!(!report.all_ready());
    }

    #[tokio::test]
    async fn unknown_lag_and_missing_resources_are_reasons() {
        let world = reference_world();
        world.state().lag.clear();
        world
            .state()
            .groups
            .remove(&("us-east-1".into(), "payments-api-use1".into()));
        world.state().buckets.clear();
        let report = status(&world.clouds(), &plans(), &StatusOptions::default()).await;
        let p = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        assert!(!p.ready);
        let why = p.regions[1].problems.join("\n");
        assert!(why.contains("unknown"), "{why}");
        assert!(why.contains("payments-api-use1 does not exist"), "{why}");
        assert!(
            p.problems.iter().any(|x| x.contains("evidence bucket")),
            "{:?}",
            p.problems
        );
    }

    #[tokio::test]
    async fn after_a_failover_the_old_home_is_the_standby() {
        let world = reference_world();
        world
            .clouds()
            .database
            .promote_replica("us-east-1", "payments-db-use1")
            .await
            .unwrap();
        let report = status(&world.clouds(), &plans(), &StatusOptions::default()).await;
        let p = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        // Both are primaries now: the home region is still listed first, so it is active,
        // and the promoted copy is reported as needing reprotection.
        assert!(!p.ready);
        assert!(
            p.regions[1].problems[0].contains("reprotect"),
            "{:?}",
            p.regions
        );
    }
}
