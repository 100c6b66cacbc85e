//! Readiness: where each plan stands now, and whether each standby region
//! could take over.
//!
//! Readiness is computed from live cloud state only (never from what drctl
//! believes it did), through the same adapter traits the engine uses, so an
//! SRE can run `drctl status` before deciding to fail over and trust it. All
//! reads for all plans run concurrently: during an outage seconds matter.
//!
//! Reading (`read`: concurrent, each read bounded) and deciding (`assess`:
//! pure) are apart, so the rules are tested on plain data, and each resource
//! kind's readiness rule is the one its step kind owns (a data copy's,
//! `steps::promote_standby_problems` and `steps::restore_standby_problems`;
//! a capacity group's, `steps::capacity::standby_problems`). [`matrix`]
//! turns the reads into the readiness matrix of `status --html`;
//! [`verified`] says whether a plan is still what its last passing drill
//! proved, and hands the engine the drill's inventory reader.

mod assess;
pub mod matrix;
mod read;
pub mod verified;

use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use crate::cloud::Clouds;
use crate::plan::Plan;

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
    /// The regions the plan's data may be in (`[plan] allowed_regions`;
    /// empty: no limit): a failover goes nowhere else.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_regions: Vec<String>,
    /// Where each DNS record points.
    pub dns: Vec<DnsStatus>,
    /// Each data-plane control (a `switch = "health-check"` record's, per
    /// region), read through its own region: what it says now.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<crate::steps::placement::ControlReading>,
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
    /// Whether the plan and the world still match its last passing drill
    /// ([`verified`]); filled in with the cadence (`None`: not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<verified::Verified>,
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
    /// Why its switch needs a control plane that one region's outage
    /// takes down (a Route 53 zone without accelerated recovery, switched
    /// by records, needs us-east-1's): said beside the switch, never a
    /// reason it is not ready. `None`: it does not (a data-plane switch, a
    /// zone whose changes resume without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_depends: Option<String>,
}

/// One region of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct RegionStatus {
    /// Region.
    pub region: String,
    /// The GCP region paired with it, in a plan on both clouds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp_region: Option<String>,
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
    /// For a standby: the forecast RTO of a failover to it, from the
    /// model of the providers' times (`drctl plan budget`): estimated,
    /// never measured. `None`: the model cannot forecast the plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rto_forecast: Option<RtoForecast>,
}

/// A standby's forecast RTO against the tier's ([`RegionStatus::rto_forecast`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RtoForecast {
    /// The median, seconds.
    pub p50_seconds: f64,
    /// The 90th percentile, seconds.
    pub p90_seconds: f64,
    /// The tier's RTO, seconds.
    pub target_seconds: f64,
    /// Always `estimated`: from the model, not a measurement.
    pub basis: &'static str,
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
    /// Whether the endpoint follows the primary (a Cloud SQL write
    /// endpoint: `CopyState::moves_with_primary`).
    #[serde(skip)]
    pub endpoint_moves: bool,
    /// The copy's other names, its own alone (`CopyState::own_names`).
    #[serde(skip)]
    pub own_names: Vec<String>,
    /// The run whose restore made the copy (`CopyState::restored_by`).
    #[serde(skip)]
    pub restored_by: Option<String>,
    /// Largest replica lag in the window, in seconds (`None` = unknown: no datapoints).
    pub lag_seconds: Option<f64>,
    /// Datapoints the lag was computed from.
    pub lag_datapoints: usize,
    /// Window the lag was read over, seconds.
    pub lag_window_seconds: u64,
    /// Whether the lag is within the tier's RPO (`None` when not a replica or unknown).
    pub within_rpo: Option<bool>,
    /// The newest point a backup standby can be restored to here, when
    /// its "lag" is that point's age (`CopiesAbout::point`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restorable_point: Option<chrono::DateTime<chrono::Utc>>,
    /// What people should know of it beside its state: the maintenance
    /// its provider will apply to a replica (`DescribePendingMaintenanceActions`),
    /// a restart that could come in the middle of a failover. Said, never a
    /// reason the standby cannot take over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A compute group's state.
#[derive(Debug, Clone, Serialize)]
pub struct ComputeStatus {
    /// Resource id.
    pub id: String,
    /// What it is called (`compute`: an Auto Scaling group; `nodes`: an
    /// EKS managed node group, named `cluster/nodegroup`).
    pub label: &'static str,
    /// Group name.
    pub group: String,
    /// Whether the group exists.
    pub exists: bool,
    /// min/desired/max.
    pub capacity: Option<crate::cloud::Capacity>,
    /// Instances in service (`None` for a group that reports a status
    /// instead).
    pub in_service: Option<u32>,
    /// The provider's status of the group, when it has one (an EKS node
    /// group's `ACTIVE`, `UPDATING`, `DEGRADED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Why this group could not take over now, in a standby that answers
    /// (its kind's judgement; among its region's `problems` too): the
    /// readiness matrix's capacity cell reads them here, not by matching
    /// the region's text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// What people should know of it beside its state, as its kind read it
    /// (a Cloud Run service whose service health cannot be computed): said,
    /// never a reason it cannot take over.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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

/// Computes the readiness of `plans`: every plan is read concurrently
/// (`read`), then judged (`assess`).
pub async fn status(clouds: &Clouds, plans: &[Plan], opts: &StatusOptions) -> StatusReport {
    let plans = join_all(plans.iter().map(|plan| async move {
        let reading = read::read_plan(clouds, plan, opts).await;
        assess::assess(plan, opts.lag_window, reading)
    }))
    .await;
    StatusReport { plans }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Capacity;
    use crate::cloud::fake::FakeCloud;

    fn plans() -> Vec<Plan> {
        crate::plan::reference()
    }

    /// The reference world of `localstack/seed`, in memory.
    fn reference_world() -> FakeCloud {
        let f = crate::cloud::fake::reference_world((&[1.5, 3.0], &[600.0, 1200.0]));
        f.state().buckets = vec![
            "s3://drctl-evidence-use1".into(),
            "gs://drctl-evidence".into(),
        ];
        f
    }

    /// A plan's data residency is in its status (its JSON names it; a plan
    /// without one names none). The words: `cli::status`'s tests.
    #[tokio::test]
    async fn status_shows_a_plans_allowed_regions() {
        let world = reference_world();
        let mut plans = plans();
        let payments = plans.iter_mut().find(|p| p.name() == "payments").unwrap();
        let allowed: Vec<String> = payments.spec.plan.regions.clone();
        payments.spec.plan.allowed_regions = allowed.clone();
        let report = status(&world.clouds(), &plans, &StatusOptions::default()).await;
        let shown = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        assert_eq!(shown.allowed_regions, allowed);
        let json = serde_json::to_value(&report).unwrap();
        let ledger = (json["plans"].as_array().unwrap().iter())
            .find(|p| p["plan"] == "ledger")
            .unwrap();
        assert!(ledger.get("allowed_regions").is_none(), "{ledger}");
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

    /// Issue 75: a switch by records on a Route 53 zone without
    /// accelerated recovery needs us-east-1's control plane; `status` and
    /// the readiness matrix say so beside the switch (never a reason it is
    /// not ready), and stop saying it once the zone has it. A data-plane
    /// switch (checkout's) changes no record: nothing is said of it.
    #[tokio::test]
    async fn a_switch_by_records_says_when_it_needs_us_east_1() {
        let world = reference_world();
        let plans = plans();
        let report = status(&world.clouds(), &plans, &StatusOptions::default()).await;
        let payments = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        assert!(payments.ready, "{payments:#?}");
        for d in &payments.dns {
            let why = d.switch_depends.as_deref().unwrap_or_default();
            assert!(
                why.contains("no accelerated recovery (not reported by GetHostedZone)")
                    && why.contains("us-east-1")
                    && why.contains("--enable-accelerated-recovery"),
                "{d:#?}"
            );
        }
        let row = matrix::rows(&report)
            .into_iter()
            .find(|r| r.plan == "payments")
            .unwrap();
        let traffic = row.cells.iter().find(|c| c.check == "traffic").unwrap();
        assert_eq!(traffic.mark, matrix::Mark::Ok, "{traffic:?}");
        assert!(
            traffic
                .why
                .iter()
                .any(|w| w.contains("needs Route 53's control plane in us-east-1")),
            "{traffic:?}"
        );
        let checkout = report.plans.iter().find(|p| p.plan == "checkout").unwrap();
        assert!(
            checkout.dns.iter().all(|d| d.switch_depends.is_none()),
            "{checkout:#?}"
        );
        // The zone's accelerated recovery enabled: nothing to say.
        {
            let mut s = world.state();
            let ids: Vec<String> = s.zones.values().map(|z| z.id.clone()).collect();
            for id in ids {
                let f = crate::cloud::ZoneFeatures {
                    accelerated_recovery: Some("ENABLED".into()),
                    failure: None,
                };
                s.zone_features.insert(id, f);
            }
        }
        let report = status(&world.clouds(), &plans, &StatusOptions::default()).await;
        let payments = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        assert!(
            payments.dns.iter().all(|d| d.switch_depends.is_none()),
            "{payments:#?}"
        );
    }

    /// Maintenance AWS will apply to a standby replica (an RDS instance,
    /// an Aurora secondary cluster and its instances) is said under it, in the text and the
    /// JSON, and leaves the standby ready: a note, not a problem.
    #[tokio::test]
    async fn pending_maintenance_on_a_standby_is_said_and_blocks_nothing() {
        use crate::cloud::{MaintenanceOf, PendingMaintenance};
        let world = reference_world();
        let upgrade = |action: &str| PendingMaintenance {
            action: action.into(),
            description: Some("New Operating System update is available".into()),
            auto_applied_after: "2026-12-01T00:00:00Z".parse().ok(),
            forced_apply: "2027-01-15T00:00:00Z".parse().ok(),
            current_apply: None,
            opt_in: None,
        };
        let key = |of, id: &str| ("us-east-1".to_string(), of, id.to_string());
        world.state().maintenance.insert(
            key(MaintenanceOf::Instance, "payments-db-use1"),
            vec![upgrade("system-update")],
        );
        world.state().maintenance.insert(
            key(MaintenanceOf::Cluster, "orders-use1"),
            vec![upgrade("db-upgrade")],
        );
        // An action on the secondary's instance, which the cluster filter
        // does not list: read per member.
        (world.state().cluster_instances).insert(
            ("us-east-1".into(), "orders-use1-a".into()),
            "orders-use1".into(),
        );
        world.state().maintenance.insert(
            key(MaintenanceOf::Instance, "orders-use1-a"),
            vec![upgrade("system-update")],
        );
        let report = status(&world.clouds(), &plans(), &StatusOptions::default()).await;
        let payments = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        assert!(payments.ready, "{payments:#?}");
        let db = &payments.regions[1].databases[0];
        assert_eq!(
            db.notes,
            [
                "pending maintenance `system-update` (auto-applied after 2026-12-01, forced on 2027-01-15): New Operating System update is available: it may restart it, promote it then or not"
            ]
        );
        assert!(
            payments.regions[0].databases[0].notes.is_empty(),
            "the primary is not asked"
        );
        let orders = report.plans.iter().find(|p| p.plan == "orders").unwrap();
        let notes: Vec<&String> = (orders.regions.iter())
            .flat_map(|r| r.databases.iter().flat_map(|d| d.notes.iter()))
            .collect();
        assert!(
            notes.len() == 2
                && notes[0].contains("`db-upgrade`")
                && notes[1]
                    .starts_with("instance orders-use1-a: pending maintenance `system-update`"),
            "{notes:?}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert!(
            json.to_string()
                .contains("pending maintenance `system-update`")
        );
    }

    #[tokio::test]
    async fn unknown_lag_and_missing_resources_are_reasons() {
        let world = reference_world();
        world.state().lag.clear();
        world
            .state()
            .scaled
            .remove(&("compute", "us-east-1".into(), "payments-api-use1".into()));
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

    /// Three regions, one of them dead: the dead one is shown unreachable
    /// (never missing), the two that answer are read as usual, and the plan
    /// is not ready, since that standby could not take over now.
    #[tokio::test]
    async fn three_regions_with_one_dead_show_it_unreachable_and_read_the_others() {
        let world = reference_world();
        world.state().dead_regions.insert("eu-west-1".into());
        let report = status(&world.clouds(), &plans(), &StatusOptions::default()).await;
        let p = report.plans.iter().find(|p| p.plan == "payments").unwrap();
        let regions: Vec<&str> = p.regions.iter().map(|r| r.region.as_str()).collect();
        assert_eq!(regions, ["us-west-2", "us-east-1", "eu-west-1"]);
        assert_eq!(p.active_region, "us-west-2");
        let (use1, euw1) = (&p.regions[1], &p.regions[2]);
        assert!(use1.ready, "{use1:#?}");
        assert_eq!(use1.databases[0].lag_seconds, Some(3.0));
        assert!(euw1.unreachable.is_some(), "{euw1:#?}");
        assert_eq!(euw1.role, "standby");
        assert_eq!(euw1.databases[0].role, "unreachable");
        assert!(
            euw1.problems
                .iter()
                .any(|x| x.contains("eu-west-1 does not answer")),
            "{:?}",
            euw1.problems
        );
        assert!(!p.ready);
        // ledger has no eu-west-1: untouched by its outage.
        let ledger = report.plans.iter().find(|p| p.plan == "ledger").unwrap();
        assert!(ledger.regions.iter().all(|r| r.unreachable.is_none()));
    }

    /// checkout (data-plane switch, home us-east-1) after `dns prepare`,
    /// with its first standby dead: the names still resolve home, the dead
    /// standby is unreachable and the other one ready.
    #[tokio::test]
    async fn checkout_with_a_dead_standby_resolves_home_and_shows_it_unreachable() {
        let world = reference_world();
        world
            .state()
            .buckets
            .push("s3://drctl-evidence-euw1".into());
        let checkout: Vec<Plan> = plans()
            .into_iter()
            .filter(|p| p.name() == "checkout")
            .collect();
        crate::steps::dns_setup::prepare(&world.clouds(), &checkout[0], None)
            .await
            .expect("dns prepare");
        world.state().dead_regions.insert("us-west-2".into());
        let report = status(&world.clouds(), &checkout, &StatusOptions::default()).await;
        let p = &report.plans[0];
        assert_eq!(p.active_region, "us-east-1", "{p:#?}");
        assert_eq!(p.dns[0].values, ["checkout-use1.example.com."]);
        assert_eq!(p.dns[0].points_to.as_deref(), Some("us-east-1"));
        let usw2 = &p.regions[1];
        assert_eq!(usw2.region, "us-west-2");
        assert!(usw2.unreachable.is_some(), "{usw2:#?}");
        let euw1 = &p.regions[2];
        assert!(euw1.unreachable.is_none(), "{euw1:#?}");
        assert_eq!(euw1.databases[0].role, "replica");
        assert!(euw1.ready, "{:?}", euw1.problems);
        assert!(!p.ready);
    }

    /// Regression (status showed a Cloud DNS record only through its
    /// step's readiness): every traffic kind's record is a row of where it
    /// points, read through the traffic role, as a `[[dns]]` record's is.
    #[tokio::test(start_paused = true)]
    async fn status_shows_where_a_cloud_dns_record_points() {
        let plans = crate::plan::reference_with_gcp();
        let model = crate::cloud::model::Model::aws().unwrap();
        let world = crate::sim::world_for(model, &plans, 1).await;
        let report = status(&world.clouds(), &plans, &StatusOptions::default()).await;
        let p = (report.plans.iter().find(|p| p.plan == "orders-gcp")).expect("the GCP plan");
        let plan = plans.iter().find(|q| q.name() == "orders-gcp").unwrap();
        let d = &plan.spec.cloud_dns[0];
        let row = (p.dns.iter().find(|r| r.id == d.id)).unwrap_or_else(|| panic!("{p:#?}"));
        assert_eq!(row.points_to.as_deref(), Some(plan.home()), "{row:?}");
        assert_eq!(row.values, [d.targets[d.sites.gcp(plan.home())].clone()]);
    }

    /// Issue 75: each target group a group is registered in is shown under
    /// it with what it counts healthy, read as a raise reads it.
    #[tokio::test]
    async fn status_says_what_each_target_group_counts() {
        let arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/payments-web/73e2d6bc24d8a067";
        let world = reference_world();
        world.attach_target_group("us-east-1", "payments-api-use1", arn);
        world.fail_targets(arn, Some("Target.FailedHealthChecks"));
        let report = status(&world.clouds(), &plans(), &StatusOptions::default()).await;
        let notes: Vec<String> = (report.plans.iter())
            .flat_map(|p| p.regions.iter())
            .flat_map(|r| r.compute.iter())
            .flat_map(|g| g.notes.clone())
            .collect();
        assert!(
            notes
                .iter()
                .any(|n| n == "target group payments-web: 0 of 0 healthy"),
            "{notes:?}"
        );
    }
}
