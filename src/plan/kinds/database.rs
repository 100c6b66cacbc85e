//! `[[database]]`: an RDS instance per region, failed over by promoting the
//! target's cross-region read replica, or by restoring the target's
//! instance to a point in time.
//!
//! Its copies are the instances; a promoted replica is where the RPO is
//! read (`ReplicaLag`), what a failover reads of the regions it leaves, and
//! what a record that `follows` it points at (the primary's endpoint).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::drilling::{
    CopySeen, CopyStage, Deleted, DrillAbout, Drilling, LagOf, Listing, Made, Refusable, Shadow,
};
use super::promoting::{Candidate, MovePath, Operation, PromoteAbout, Promoting, Started};
use super::restoring::{Placement, Point, RestoreAbout, Restored, Restoring, Source, Window};
use super::{Copies, CopyState, Kind, Resource, RpoSource, Shown};
use crate::cloud::{CloudError, Clouds, DbInstance, DbRole, LagReading, ReplicaPlacement};
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

mod reprotecting;

/// How a database moves to another region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbStrategy {
    /// Promote the cross-region read replica in the target region.
    PromoteReplica,
    /// Restore the target region's instance to a point in time, into a new instance.
    PointInTimeRestore,
}

/// A `[[database]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// Engine, for people (`postgres`, `mysql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Failover strategy.
    pub strategy: DbStrategy,
    /// Instance identifier per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

impl Kind for DatabaseSpec {
    const KEYS: &'static [&'static str] = &["id", "engine", "strategy", "regions", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Data(super::DataRole {
        restoring: Some(&RdsRestoring),
        promoting: Some(&RdsPromoting),
        drilling: Some(&RdsDrilling),
        reprotecting: Some(&reprotecting::RdsReprotecting),
    });
}

impl Resource for DatabaseSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "database {:<22} {} ({}{})",
            self.id,
            self.regions[region],
            match self.strategy {
                DbStrategy::PromoteReplica => "promote-replica",
                DbStrategy::PointInTimeRestore => "point-in-time-restore",
            },
            self.engine
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }

    fn check(&self, _: &mut Scope<'_, '_, '_>) {
        // Nothing beyond its region map: the strategy is typed, and
        // whether a replica or its backups exist is preflight's to read.
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Data(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        let home = w.home;
        let Some(home_id) = self.regions.get(home) else {
            return;
        };
        let key = (home.to_string(), home_id.clone());
        if w.fake.state().databases.contains_key(&key) {
            return;
        }
        w.fake.add_primary(home, home_id);
        for (region, id) in self.regions.iter().filter(|(r, _)| *r != home) {
            match self.strategy {
                DbStrategy::PromoteReplica => {
                    w.fake.add_replica(region, id, (home, home_id));
                    w.fake.set_lag(region, id, &[1.0]);
                }
                // What a restore starts from in its region.
                DbStrategy::PointInTimeRestore => w.fake.add_primary(region, id),
            }
        }
        w.fake.set_lag(home, home_id, &[1.0]);
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.regions.get(region).into_iter())
            .map(|id| format!("db:{region}/{id}"))
            .collect()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        for v in self.regions.values_mut() {
            v.push_str(tag);
        }
    }
}

const DATABASE_COPIES: super::CopiesAbout = super::CopiesAbout {
    section: "databases",
    read_call: "rds:DescribeDBInstances",
    maintenance_call: Some(super::RDS_MAINTENANCE),
    metric: "ReplicaLag",
    lag_call: "cloudwatch:GetMetricData",
    point: false,
};

#[async_trait]
impl Copies for DatabaseSpec {
    fn about(&self) -> &'static super::CopiesAbout {
        &DATABASE_COPIES
    }

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        (self.strategy == DbStrategy::PromoteReplica).then_some(self as &dyn RpoSource)
    }

    fn copy(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(String::as_str)
    }

    fn dr_replica(&self) -> bool {
        false
    }

    fn restores(&self) -> bool {
        self.rpo_source().is_none()
    }

    fn placement(&self, _region: &str) -> super::restoring::Placement {
        super::restoring::Placement::default()
    }

    fn copy_at(&self, region: &str) -> Option<(String, String)> {
        Some((region.to_string(), self.copy(region)?.to_string()))
    }

    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<CopyState>, CloudError> {
        let Some(id) = self.copy(region) else {
            return Ok(None);
        };
        let found = clouds.database.describe_instance(region, id).await?;
        Ok(found.map(|i| CopyState {
            role: i.role,
            status: i.status,
            endpoint: i.endpoint,
            notes: Vec::new(),
            moves_with_primary: false,
            own_names: Vec::new(),
            restored_by: None,
        }))
    }

    async fn maintenance(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<Vec<String>>, CloudError> {
        let of = crate::cloud::MaintenanceOf::Instance;
        super::rds_maintenance(clouds, region, of, self.copy(region)).await
    }
}

#[async_trait]
impl RpoSource for DatabaseSpec {
    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let Some(id) = self.copy(region) else {
            let why = format!("database {} has no instance in {region}", self.id);
            return Err(super::no_copy(self.about().lag_call, &self.id, region, why));
        };
        clouds.metrics.replica_lag(region, id, window).await
    }
}

/// The data role's point-in-time restore of RDS instances: restored into
/// a new instance (`RestoreDBInstanceToPointInTime`), which answers no
/// operation: the new instance is read until it is available.
pub struct RdsRestoring;

const RDS_RESTORE: RestoreAbout = RestoreAbout {
    noun: "database",
    how: "into a new instance",
    ready: "available",
    latest_from: "LatestRestorableTime reported by the provider",
    no_window_hint: "enable automated backups (backup_retention_period > 0) or use promote-replica",
    call: "rds:RestoreDBInstanceToPointInTime",
    finish_call: None,
    calls: &[
        "rds:DescribeDBInstances",
        "rds:RestoreDBInstanceToPointInTime",
    ],
    waits: &["rds:RestoreDBInstanceToPointInTime"],
    polls: "rds:DescribeDBInstances",
};

#[async_trait]
impl Restoring for RdsRestoring {
    fn about(&self) -> &'static RestoreAbout {
        &RDS_RESTORE
    }

    fn restored(&self, source: &str, run_id: &str) -> String {
        super::restoring::restored_id(source, run_id)
    }

    async fn source(
        &self,
        clouds: &Clouds,
        region: &str,
        source: &str,
        _placement: &Placement,
    ) -> Result<Option<Source>, CloudError> {
        let found = clouds.database.describe_instance(region, source).await?;
        Ok(found.map(|i| {
            let days = i.backup_retention_days;
            Source {
                said: format!("{}, backups kept {days} days", i.status),
                window: if days == 0 {
                    Err("automated backups are off".to_string())
                } else {
                    Ok(Window {
                        earliest: None,
                        latest: i.latest_restorable_time,
                    })
                },
                lacks: Vec::new(),
            }
        }))
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
    ) -> Result<Option<Restored>, CloudError> {
        let found = clouds.database.describe_instance(region, copy).await?;
        Ok(found.map(|i| Restored {
            ready: i.is_available(),
            finish_due: false,
            state: i.status,
            endpoint: i.endpoint,
            port: i.port,
            point: None,
        }))
    }

    async fn under_way(&self, _: &Clouds, _: &str, _: &str) -> Result<Option<String>, CloudError> {
        // The restore answers no operation: the new instance exists (being
        // created) from the moment it was asked for.
        Ok(None)
    }

    async fn start(
        &self,
        clouds: &Clouds,
        region: &str,
        (source, copy): (&str, &str),
        point: Point,
        _placement: &Placement,
    ) -> Result<Option<String>, CloudError> {
        (clouds.database)
            .restore_to_point_in_time(region, source, copy, point.ask)
            .await?;
        Ok(None)
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }
}

/// The data role's promotion of RDS read replicas: `PromoteReadReplica`,
/// which answers the instance (no operation to follow): a promotion under
/// way shows as `modifying`, read until it is an available primary.
pub struct RdsPromoting;

/// What an RDS promotion is, in words and calls.
const RDS_PROMOTE: PromoteAbout = PromoteAbout {
    noun: "database",
    replica: "read replica",
    ready: "available",
    metric: "ReplicaLag",
    promote_call: "rds:PromoteReadReplica",
    switchover_call: None,
    missing_hint: "create the replica (drctl reprotect) or fix the id in the plan",
    designate: "an RDS read replica has no DR replica role: fail over by promotion",
    inspect_operation: "aws rds describe-db-instances --db-instance-identifier {operation}",
    detach_call: None,
    // RDS leaves the source of a promoted replica as it was: a primary,
    // writable again once its region answers.
    warnings: &[(
        MovePath::Promote,
        "database {instance} in {region} was promoted to a standalone primary: the old primary {source} was not demoted and is writable whenever its region answers; stop writes to it there (drctl reprotect renames it out of the way, its data kept, and makes a fresh replica of {instance} in its place)",
    )],
    calls: &[
        "rds:DescribeDBInstances",
        "cloudwatch:GetMetricData",
        "rds:PromoteReadReplica",
    ],
    waits: &["rds:PromoteReadReplica"],
    polls: "rds:DescribeDBInstances",
};

/// An instance as a promotion reads it; the instance itself is kept for
/// the call (its ARN tags the promotion).
fn candidate(i: DbInstance) -> Candidate {
    Candidate {
        role: i.role.clone(),
        ready: i.is_available(),
        state: i.status.clone(),
        dr_designated: false,
        blocked: None,
        switch_blocked: None,
        detached: false,
        endpoint: i.endpoint.clone(),
        port: i.port,
        kept: serde_json::to_value(&i).unwrap_or_default(),
    }
}

#[async_trait]
impl Promoting for RdsPromoting {
    fn about(&self) -> &'static PromoteAbout {
        &RDS_PROMOTE
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<Candidate>, CloudError> {
        let found = clouds.database.describe_instance(region, address).await?;
        Ok(found.map(candidate))
    }

    async fn under_way(
        &self,
        _: &Clouds,
        _: &str,
        _: &str,
    ) -> Result<Option<Operation>, CloudError> {
        // A promotion answers no operation: one under way shows in the
        // instance's status, which the step reads.
        Ok(None)
    }

    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        clouds.metrics.replica_lag(region, address, window).await
    }

    fn fallback(&self, _: MovePath, _: &CloudError) -> Option<MovePath> {
        None
    }

    fn may_fall_back(&self, _: MovePath) -> Option<MovePath> {
        None
    }

    async fn start(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        _path: MovePath,
        known: &Candidate,
    ) -> Result<Started, CloudError> {
        let kept = serde_json::from_value::<DbInstance>(known.kept.clone())
            .inspect_err(|e| {
                tracing::debug!(address, "no instance kept from the read ({e}): reading it")
            })
            .ok();
        let instance = match kept {
            Some(i) => i,
            None => {
                (clouds.database.describe_instance(region, address).await?).ok_or_else(|| {
                    let why = format!("database {address} is gone");
                    super::no_copy(RDS_PROMOTE.promote_call, address, region, why)
                })?
            }
        };
        let answered = clouds.database.promote_known(region, &instance).await?;
        Ok(Started::Answered(candidate(answered)))
    }

    async fn operation(
        &self,
        _: &Clouds,
        _: &str,
        _: &str,
        op: &str,
    ) -> Result<Operation, CloudError> {
        // Never asked: a promotion answers no operation.
        Ok(Operation {
            name: op.to_string(),
            kind: "PromoteReadReplica".into(),
            path: Some(MovePath::Promote),
            inserted: None,
            done: true,
            error: None,
        })
    }
}

/// The data role's drill copy of RDS databases: a temporary read replica
/// of the home primary in the drill's target, placed like the real
/// replica there (one zone), its `ReplicaLag` read, then promoted. The
/// real replica is never changed: promoting one replica has no effect on
/// the other replicas of the same source.
pub struct RdsDrilling;

/// What an RDS drill copy is, in words and calls.
pub const RDS_DRILL: DrillAbout = DrillAbout {
    noun: "temporary replica",
    describe: "create a temporary replica of {source} ({source_region}) in {region}, read its lag, promote it and check it is writable ({standby} is not touched)",
    make_call: "rds:CreateDBInstanceReadReplica",
    made: "a temporary replica of the home primary, tagged with the drill's run",
    finish_call: Some("rds:PromoteReadReplica"),
    makes: None,
    finished: "a writable primary (the drill's copy; deleted at cleanup)",
    delete_call: "rds:DeleteDBInstance",
    read_call: "DescribeDBInstances",
    deleted: "deleted",
    manual: "aws rds delete-db-instance --region {region} --db-instance-identifier {name} --skip-final-snapshot",
    lag_of: LagOf::Copy,
    lag_call: "cloudwatch:GetMetricData",
    from_standby: false,
    measured: "ReplicaLag of the drill's temporary replica {copy} at promotion",
    tagged: true,
    calls: &[
        "rds:DescribeDBInstances",
        "rds:CreateDBInstanceReadReplica",
        "rds:PromoteReadReplica",
    ],
    waits: &["rds:CreateDBInstanceReadReplica", "rds:PromoteReadReplica"],
    polls: "rds:DescribeDBInstances",
};

#[async_trait]
impl Drilling for RdsDrilling {
    fn about(&self) -> &'static DrillAbout {
        &RDS_DRILL
    }

    fn base<'a>(&self, s: &Shadow<'a>) -> &'a str {
        s.standby
    }

    fn place(&self, s: &Shadow<'_>, name: &str) -> (String, String) {
        (s.region.to_string(), name.to_string())
    }

    async fn source(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError> {
        let (r, home) = (s.home_region, s.home);
        Ok(match clouds.database.describe_instance(r, home).await? {
            None => Err((
                format!("home primary {home} does not exist in {r}"),
                "fix the database ids in the plan (drctl plan validate)".into(),
            )),
            Some(i) if !i.is_available() => Err((
                format!("home primary {home} in {r} is {}, not available", i.status),
                "a drill replicates from the home primary: drill again once it is available".into(),
            )),
            Some(_) => Ok("available (the drill replicates from it)".into()),
        })
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<CopySeen>, CloudError> {
        let found = clouds.database.describe_instance(region, address).await?;
        Ok(found.map(|i| {
            let stage = match (&i.role, i.is_available()) {
                (DbRole::Replica(_), false) => CopyStage::Making { operation: None },
                (DbRole::Replica(_), true) => CopyStage::Made,
                (DbRole::Primary, false) => CopyStage::Finishing,
                (DbRole::Primary, true) => CopyStage::Writable {
                    endpoint: i.endpoint.clone(),
                    port: i.port,
                },
            };
            CopySeen {
                tags: i.tags,
                status: i.status,
                stage,
            }
        }))
    }

    async fn lag(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        copy: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        clouds.metrics.replica_lag(s.region, copy, window).await
    }

    async fn make(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        (region, address): (&str, &str),
        tags: &BTreeMap<String, String>,
    ) -> Result<Made, CloudError> {
        let (home, r) = (s.home, s.home_region);
        let source = (clouds.database.describe_instance(r, home).await?).ok_or_else(|| {
            let why = format!("home primary {home} does not exist in {r}");
            super::no_copy("rds:CreateDBInstanceReadReplica", home, r, why)
        })?;
        // Placed like the real replica (network, key, class), one zone.
        let real = clouds.database.describe_instance(region, s.standby).await?;
        let mut placement = ReplicaPlacement::like(real.as_ref(), &source);
        placement.multi_az = Some(false);
        placement.tags = tags.clone();
        let asked = chrono::Utc::now();
        (clouds.database)
            .create_replica(region, address, &source.arn, &placement)
            .await?;
        Ok(Made {
            asked,
            point: None,
            operation: None,
            from: None,
        })
    }

    async fn finish(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        _instance: &str,
        _tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        clouds.database.promote_replica(region, address).await
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }

    fn listing(&self, s: &Shadow<'_>) -> String {
        format!("rds instances {}", s.region)
    }

    async fn list(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Listing, CloudError> {
        let listed = clouds.database.list_instances(s.region).await?;
        let each = listed.into_iter().map(|i| (i.id, i.tags));
        Ok(Listing::tagged(s.region, each))
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        _poll: (Duration, Duration),
        _deadline: std::time::Instant,
    ) -> Result<Deleted, CloudError> {
        super::gone_or_asked(
            clouds.database.delete_instance(region, address).await,
            address,
            "RDS",
        )
    }
}
