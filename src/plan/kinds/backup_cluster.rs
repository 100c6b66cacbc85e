//! `[[backup_cluster]]`: an Aurora cluster whose standby in the other
//! regions is its snapshots copied there (`CopyDBClusterSnapshot`), not a
//! running secondary: AWS's "backup and restore" for the tiers that pay
//! for no global database.
//!
//! Aurora replicates no automated backups across regions, so a cluster's
//! standby is its copied snapshots only, each restorable to the moment it
//! was taken. A failover restores the newest into a new cluster that takes
//! the plan's name for the target (`RestoreDBClusterFromSnapshot`, in the
//! subnet group and cluster parameter group the plan gives), then adds its
//! writer (`CreateDBInstance`, the plan's class) once the cluster is
//! available: Aurora restores a cluster's volume, never its instances. The
//! generic `restore` step does both, each once (the names are the plan's,
//! read before acting), and the RPO is the gap from the snapshot's time.
//! A drill restores the same way into a drill copy, measures it, and
//! deletes it with its writer.
//!
//! What is judged of the copies (the newest, their window, the one a
//! point needs) and of the region (the groups, the class, the key) is the
//! backup standbys' shared reading (`backups`); this file reads the
//! cluster's copies and makes its restores. Nothing here asks the region
//! the data comes from.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::backups::{
    InTheWay, KEY, Named, check_named, choose, drill_source, key_usable, kms_key, pick, point_age,
    rds_name, ready, said, standby_source,
};
use super::drilling::{
    CopySeen, Deleted, DrillAbout, Drilling, LagOf, Listing, Made, Refusable, Shadow,
};
use super::restoring::{
    Placement, Point, RESTORE_POINT_TAG, RESTORED_BY_TAG, RestoreAbout, Restored, Restoring, Source,
};
use super::{AURORA_DRILL, AuroraDrilling, Copies, CopyState, Kind, Resource, RpoSource, Shown};
use crate::cloud::{
    CloudError, Clouds, DbRole, ErrorKind, LagReading, ReplicaPlacement, Restorable, RestorePoint,
};
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

mod reprotecting;

/// A `[[backup_cluster]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupClusterSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// Engine, for people (`aurora-postgresql`); a restore keeps the
    /// snapshot's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The cluster per region: the primary's in the active region, the
    /// name a restore gives the new cluster in the others.
    pub regions: PerRegion,
    /// The DB subnet group a restore is placed in, per region (none: the
    /// region's default VPC, which production rarely uses).
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub subnet_groups: PerRegion,
    /// The DB cluster parameter group a restore is given, per region
    /// (none: the engine's default, which drops the primary's tuning).
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub cluster_parameter_groups: PerRegion,
    /// The class of the writer a restore adds (`db.r6g.large`,
    /// `db.serverless`): no snapshot says one.
    pub instance_class: String,
    /// A KMS key per region (ARN, id or alias of that region): what an
    /// encrypted cluster's snapshot is encrypted with when reprotect
    /// copies it there (a key cannot leave its region).
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub kms_keys: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

impl Kind for BackupClusterSpec {
    const KEYS: &'static [&'static str] = &[
        "id",
        "engine",
        "regions",
        "subnet_groups",
        "cluster_parameter_groups",
        "instance_class",
        "kms_keys",
        "after",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Data(super::DataRole {
        restoring: Some(&ClusterRestoring),
        promoting: None,
        drilling: Some(&ClusterDrilling),
        reprotecting: Some(&reprotecting::ClusterReprotecting),
    });
}

/// Whether `s` may be an RDS instance class (`db.` and a name).
fn instance_class(s: &str) -> bool {
    s.len() > 3 && s.starts_with("db.") && !s.contains(char::is_whitespace)
}

impl Resource for BackupClusterSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "backup_cluster {:<16} {} (restored from copied cluster snapshots{})",
            self.id,
            self.regions[region],
            (self.engine.as_deref())
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        s.region_values(
            (&self.id, &self.regions),
            rds_name,
            (
                "an Aurora DB cluster identifier",
                "a letter, then letters, digits and single hyphens, at most 63",
            ),
        );
        if !instance_class(&self.instance_class) {
            s.error(
                crate::path!["instance_class"],
                format!("`{}` is not an RDS instance class", self.instance_class),
                "a class offered for the engine, such as db.r6g.large or db.serverless",
            );
        }
        let named = [
            Named::group("subnet_groups", &self.subnet_groups, "a DB subnet group"),
            Named::rds(
                "cluster_parameter_groups",
                &self.cluster_parameter_groups,
                "a DB cluster parameter group",
            ),
            Named {
                key: "kms_keys",
                values: &self.kms_keys,
                noun: "a KMS key (ARN, id or alias)",
                valid: kms_key,
                hint: KEY,
            },
        ];
        let (kind, id) = ("backup_cluster", self.id.as_str());
        check_named(s, kind, id, &self.regions, "cluster", &named);
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
        if (w.fake.state().clusters).contains_key(&(home.to_string(), home_id.clone())) {
            return;
        }
        w.fake.add_cluster(home, home_id);
        let taken = chrono::Utc::now() - chrono::Duration::hours(6);
        for region in self.regions.keys().filter(|r| *r != home) {
            let at = crate::cloud::fake::BackupAt {
                region,
                source: home_id,
                from: home,
            };
            let nightly = format!("{home_id}-nightly");
            w.fake.add_restorable(at, Some(&nightly), taken);
        }
    }

    /// The cluster's restore (its writer is named after the run, which
    /// the simulation's floor does not know: the floor is the cluster's).
    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.regions.get(region).into_iter())
            .map(|id| format!("cluster:{region}/{id}"))
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

impl BackupClusterSpec {
    /// The clusters of the other regions, whose copied snapshots a restore
    /// in `region` reads (its home's, or after a failover the new one's).
    fn others(&self, region: &str) -> Vec<String> {
        super::backups::others(&self.regions, region)
    }
}

/// The name of the writer run `run_id`'s restore adds to cluster
/// `cluster` (at most 63 characters): stable per run, so that a resume
/// finds the writer an earlier attempt asked for, and never the name of a
/// writer that stayed with a cluster renamed out of the way (reprotect
/// renames a cluster, not its instances), nor production's.
pub fn writer_id(cluster: &str, run_id: &str) -> String {
    super::restoring::restored_id(&format!("{cluster}-writer"), run_id).replace("--", "-")
}

/// The age of the newest snapshot copied to a region is its copy's "lag":
/// what the RPO gate and `status` judge.
const CLUSTER_COPIES: super::CopiesAbout = super::CopiesAbout {
    section: "databases",
    read_call: "rds:DescribeDBClusters",
    maintenance_call: None,
    metric: "age of the newest restorable point",
    lag_call: "rds:DescribeDBClusterSnapshots",
    point: true,
};

#[async_trait]
impl Copies for BackupClusterSpec {
    fn about(&self) -> &'static super::CopiesAbout {
        &CLUSTER_COPIES
    }

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        Some(self)
    }

    fn copy(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(String::as_str)
    }

    fn dr_replica(&self) -> bool {
        false
    }

    fn restores(&self) -> bool {
        true
    }

    fn placement(&self, region: &str) -> Placement {
        Placement {
            from: self.others(region),
            place: ReplicaPlacement {
                instance_class: Some(self.instance_class.clone()),
                subnet_group: self.subnet_groups.get(region).cloned(),
                cluster_parameter_group: self.cluster_parameter_groups.get(region).cloned(),
                kms_key_id: self.kms_keys.get(region).cloned(),
                ..ReplicaPlacement::default()
            },
        }
    }

    fn copy_at(&self, region: &str) -> Option<(String, String)> {
        Some((region.to_string(), self.copy(region)?.to_string()))
    }

    /// The cluster when it exists (the active one, or one restored); else
    /// the copied snapshots it would be restored from, as a standby that
    /// is a copy of the cluster they were taken of.
    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<CopyState>, CloudError> {
        let Some(id) = self.copy(region) else {
            return Ok(None);
        };
        if let Some(c) = clouds.aurora.describe_cluster(region, id).await? {
            let headless = c.members.is_empty().then(|| {
                format!("{id} has no instance: nothing serves behind its endpoint until a writer is added (aws rds create-db-instance --db-cluster-identifier {id} ...)")
            });
            return Ok(Some(CopyState {
                role: DbRole::Primary,
                status: c.status,
                endpoint: c.endpoint,
                notes: headless.into_iter().collect(),
                moves_with_primary: false,
                own_names: Vec::new(),
                restored_by: c.tags.get(RESTORED_BY_TAG).cloned(),
            }));
        }
        let from = self.others(region);
        let Some(r) = pick(copies(clouds, region, &from).await?) else {
            return Ok(Some(CopyState {
                role: DbRole::Replica(from.join(", ")),
                status: "no-backups".into(),
                endpoint: None,
                notes: vec![format!(
                    "no cluster snapshots of {} copied to {region}",
                    from.join(", ")
                )],
                moves_with_primary: false,
                own_names: Vec::new(),
                restored_by: None,
            }));
        };
        Ok(Some(CopyState {
            role: DbRole::Replica(r.source.clone()),
            status: if r.ready { "available" } else { &r.status }.to_string(),
            endpoint: None,
            notes: vec![said(&r)],
            moves_with_primary: false,
            own_names: Vec::new(),
            restored_by: None,
        }))
    }

    async fn maintenance(&self, _: &Clouds, _: &str) -> Result<Option<Vec<String>>, CloudError> {
        Ok(None)
    }
}

#[async_trait]
impl RpoSource for BackupClusterSpec {
    /// The newest copied snapshot's age, now: one datapoint, whose time is
    /// the snapshot's.
    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let from = self.others(region);
        let found = pick(copies(clouds, region, &from).await?);
        let Some(point) = found.filter(|r| r.ready).and_then(|r| r.latest) else {
            let why = format!(
                "no restorable cluster snapshots of {} in {region}",
                from.join(", ")
            );
            return Err(super::no_copy(
                CLUSTER_COPIES.lag_call,
                &self.id,
                region,
                why,
            ));
        };
        Ok(point_age(point, window))
    }
}

/// Every cluster snapshot copied into `region` of any of `sources`, ready
/// or not.
async fn copies(
    clouds: &Clouds,
    region: &str,
    sources: &[String],
) -> Result<Vec<Restorable>, CloudError> {
    let mut all = Vec::new();
    for source in sources {
        all.extend(clouds.aurora.cluster_copies(region, source).await?);
    }
    Ok(all)
}

/// The data role's restore of a cluster's backup standby: its newest (or
/// the requested) snapshot copied into the target, restored into a new
/// cluster with the plan's name there, then its writer added; neither
/// answers an operation: both are read until available.
pub struct ClusterRestoring;

const CLUSTER_RESTORE: RestoreAbout = RestoreAbout {
    noun: "cluster backup standby",
    how: "from its copied cluster snapshots, into a new cluster with a writer",
    ready: "available, with an available writer",
    latest_from: "the newest cluster snapshot copied to the region (its SnapshotCreateTime)",
    no_window_hint: "copy its cluster snapshots into the region on a schedule (aws rds copy-db-cluster-snapshot --source-region ...)",
    call: "rds:RestoreDBClusterFromSnapshot",
    finish_call: Some("rds:CreateDBInstance"),
    calls: &[
        "rds:DescribeDBClusters",
        "rds:DescribeDBClusterSnapshots",
        "rds:DescribeDBSubnetGroups",
        "rds:DescribeDBClusterParameterGroups",
        "rds:DescribeOrderableDBInstanceOptions",
        "kms:DescribeKey",
        "rds:RestoreDBClusterFromSnapshot",
        "rds:DescribeDBInstances",
        "rds:CreateDBInstance",
    ],
    waits: &["rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance"],
    polls: "rds:DescribeDBClusters",
};

#[async_trait]
impl Restoring for ClusterRestoring {
    fn about(&self) -> &'static RestoreAbout {
        &CLUSTER_RESTORE
    }

    /// The plan's name in the target: the same for every run, so that a
    /// restore is made once whichever run or machine asks.
    fn restored(&self, source: &str, _run_id: &str) -> String {
        source.to_string()
    }

    async fn source(
        &self,
        clouds: &Clouds,
        region: &str,
        target: &str,
        placement: &Placement,
    ) -> Result<Option<Source>, CloudError> {
        let existing = clouds.aurora.describe_cluster(region, target).await?;
        let all = copies(clouds, region, &placement.from).await?;
        let in_the_way = existing.as_ref().map(|c| InTheWay {
            noun: "cluster",
            id: &c.id,
            status: &c.status,
            tags: &c.tags,
        });
        let from = placement.from.join(", ");
        let none = format!("no cluster snapshots of {from} copied to {region}");
        let place = &placement.place;
        let read = standby_source(clouds, region, in_the_way, all, place, none).await?;
        Ok(Some(read))
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
    ) -> Result<Option<Restored>, CloudError> {
        let Some(c) = clouds.aurora.describe_cluster(region, copy).await? else {
            return Ok(None);
        };
        // The writer: the cluster's member, else the one this restore
        // named after its run (asked for, not listed yet). An instance of
        // that name not made by the same restore is in the way, which
        // `finish` refuses.
        let restore = c.tags.get(RESTORED_BY_TAG);
        let named = restore.map(|run| writer_id(copy, run));
        let writer = match (c.is_available(), c.members.first().cloned().or(named)) {
            (true, Some(name)) => (clouds.database.describe_instance(region, &name).await?)
                .filter(|w| w.status != "deleting")
                .filter(|w| {
                    c.members.contains(&w.id)
                        || restore.is_some_and(|r| w.tags.get(RESTORED_BY_TAG) == Some(r))
                }),
            _ => None,
        };
        let point = super::restoring::marked_point(&c.tags, RESTORE_POINT_TAG);
        Ok(Some(match writer {
            Some(w) => Restored {
                ready: w.is_available(),
                finish_due: false,
                state: format!("cluster {}, writer {} {}", c.status, w.id, w.status),
                endpoint: c.endpoint,
                port: w.port,
                point,
            },
            None => Restored {
                ready: false,
                finish_due: c.is_available(),
                state: format!("cluster {}, no writer", c.status),
                endpoint: c.endpoint,
                port: None,
                point,
            },
        }))
    }

    async fn under_way(&self, _: &Clouds, _: &str, _: &str) -> Result<Option<String>, CloudError> {
        // The restore answers no operation: the new cluster exists (being
        // created) from the moment it was asked for.
        Ok(None)
    }

    async fn start(
        &self,
        clouds: &Clouds,
        region: &str,
        (_, copy): (&str, &str),
        point: Point,
        placement: &Placement,
    ) -> Result<Option<String>, CloudError> {
        restore(clouds, region, copy, point, placement).await?;
        Ok(None)
    }

    /// Adds the writer, in the plan's class, named after the run and
    /// carrying the restore's tags: one that exists already is this
    /// restore's when it carries this run's tag (unless it is being
    /// deleted), else someone else's, and refused.
    async fn finish(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
        placement: &Placement,
    ) -> Result<(), CloudError> {
        let tags = &placement.place.tags;
        let refuse = |writer: &str, why: String| {
            let kind = ErrorKind::Precondition;
            CloudError::new("rds", "CreateDBInstance", writer, region, kind, why)
        };
        let Some(run) = tags.get(RESTORED_BY_TAG) else {
            let why = format!("the restore of {copy} names no run to name its writer after");
            return Err(refuse(copy, why));
        };
        let writer = writer_id(copy, run);
        if let Some(w) = clouds.database.describe_instance(region, &writer).await? {
            return match (w.tags.get(RESTORED_BY_TAG) == Some(run), w.status.as_str()) {
                (true, "deleting") => Err(refuse(
                    &writer,
                    format!(
                        "the writer {writer} this restore added to {copy} is being deleted: start a new run once it is gone"
                    ),
                )),
                (true, _) => Ok(()),
                (false, _) => Err(refuse(
                    &writer,
                    format!(
                        "instance {writer} in {region} exists but is not the writer this restore added to {copy}: rename or delete it, then resume"
                    ),
                )),
            };
        }
        let c = (clouds.aurora.describe_cluster(region, copy).await?).ok_or_else(|| {
            let why = format!("the restored cluster {copy} is gone from {region}");
            super::no_copy("rds:CreateDBInstance", copy, region, why)
        })?;
        let class = (placement.place.instance_class.as_deref()).unwrap_or(super::WRITER_CLASS);
        (clouds.aurora)
            .add_writer(region, copy, &writer, &c.engine, class, tags)
            .await
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::AtOnce
    }
}

/// Restores `copy` in `region` at `point` from the snapshot copied there
/// of `placement.from` that holds it (the newest for the latest; the one
/// taken exactly then for a time, which `decide_point` checked is inside
/// their window), its key read again first. Says what it restored from.
async fn restore(
    clouds: &Clouds,
    region: &str,
    copy: &str,
    point: Point,
    placement: &Placement,
) -> Result<String, CloudError> {
    let all = ready(copies(clouds, region, &placement.from).await?);
    let Some(from) = choose(&all, point) else {
        let why = format!(
            "no cluster snapshot of {} copied to {region} was taken at the point asked for (a snapshot restores to its own time only)",
            placement.from.join(", ")
        );
        return Err(super::no_copy(CLUSTER_RESTORE.call, copy, region, why));
    };
    key_usable(clouds, region, from).await?;
    let Some(engine) = from.engine.as_deref() else {
        let why = format!("snapshot {} does not say its engine", from.id);
        return Err(super::no_copy(CLUSTER_RESTORE.call, copy, region, why));
    };
    let place = &placement.place;
    (clouds.aurora)
        .restore_cluster_snapshot(region, &from.id, copy, engine, place)
        .await?;
    Ok(format!("copied cluster snapshot {}", from.id))
}

/// The data role's drill copy of a cluster's backup standby: its newest
/// copied snapshot restored into a drill copy (tagged with the drill's
/// run), a writer added, measured from the snapshot's time, then deleted
/// with its writer: a restore test, production untouched. Its copies are
/// Aurora clusters, read, listed and deleted as an Aurora drill's are.
pub struct ClusterDrilling;

/// What a cluster backup standby's drill copy is, in words and calls.
pub const CLUSTER_DRILL: DrillAbout = DrillAbout {
    noun: "restored drill copy",
    describe: "restore the newest snapshot of {source}'s cluster copied to {region} into a drill copy, add a writer and check it serves (production and its snapshots are not touched)",
    make_call: "rds:RestoreDBClusterFromSnapshot",
    made: "a cluster restored from the newest copied snapshot, tagged with the drill's run",
    finish_call: Some("rds:CreateDBInstance"),
    makes: Some("writer"),
    finished: "a writable cluster (the drill's copy; deleted with its writer at cleanup)",
    delete_call: "rds:DeleteDBCluster",
    read_call: "DescribeDBClusters",
    deleted: AURORA_DRILL.deleted,
    manual: AURORA_DRILL.manual,
    lag_of: LagOf::Point,
    lag_call: "",
    from_standby: false,
    measured: "the gap from the time of the snapshot {copy} was restored from ({point}, the newest copied to {region}) to the request",
    tagged: true,
    calls: &[
        "rds:DescribeDBClusterSnapshots",
        "rds:RestoreDBClusterFromSnapshot",
        "rds:DescribeDBClusters",
        "rds:DescribeDBInstances",
        "rds:CreateDBInstance",
    ],
    waits: &["rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance"],
    polls: "rds:DescribeDBClusters",
};

#[async_trait]
impl Drilling for ClusterDrilling {
    fn about(&self) -> &'static DrillAbout {
        &CLUSTER_DRILL
    }

    fn base<'a>(&self, s: &Shadow<'a>) -> &'a str {
        s.standby
    }

    fn place(&self, s: &Shadow<'_>, name: &str) -> (String, String) {
        (s.region.to_string(), name.to_string())
    }

    async fn source(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError> {
        let found = pick(copies(clouds, s.region, &s.placement.from).await?);
        let none = (
            format!(
                "no cluster snapshots of {} copied to {}",
                s.placement.from.join(", "),
                s.region
            ),
            CLUSTER_RESTORE.no_window_hint.into(),
        );
        drill_source(clouds, s.region, found, &s.placement.place, none).await
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<CopySeen>, CloudError> {
        AuroraDrilling.read(clouds, region, address).await
    }

    async fn lag(
        &self,
        _: &Clouds,
        s: &Shadow<'_>,
        copy: &str,
        _: Duration,
    ) -> Result<LagReading, CloudError> {
        // Never asked: the RPO of a restore is its snapshot's gap.
        let why = format!("{copy}'s RPO is the gap from the snapshot it was restored from");
        Err(super::no_copy(CLUSTER_DRILL.make_call, copy, s.region, why))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        (region, address): (&str, &str),
        tags: &BTreeMap<String, String>,
    ) -> Result<Made, CloudError> {
        let found = pick(copies(clouds, region, &s.placement.from).await?);
        let Some(point) = found.filter(|r| r.ready).and_then(|r| r.latest) else {
            let why = format!("no restorable cluster snapshots of {} in {region}", s.home);
            return Err(super::no_copy(CLUSTER_DRILL.make_call, s.home, region, why));
        };
        let mut placement = s.placement.clone();
        placement.place.tags = tags.clone();
        let at = Point {
            ask: RestorePoint::At(point),
            known: Some(point),
            basis: CLUSTER_RESTORE.latest_from,
        };
        let asked = chrono::Utc::now();
        let from = restore(clouds, region, address, at, &placement).await?;
        Ok(Made {
            asked,
            point: Some(point),
            operation: None,
            from: Some(from),
        })
    }

    async fn finish(
        &self,
        clouds: &Clouds,
        at: (&str, &str),
        instance: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        AuroraDrilling.finish(clouds, at, instance, tags).await
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::AtOnce
    }

    fn listing(&self, s: &Shadow<'_>) -> String {
        AuroraDrilling.listing(s)
    }

    async fn list(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Listing, CloudError> {
        AuroraDrilling.list(clouds, s).await
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        at: (&str, &str),
        poll: (Duration, Duration),
        deadline: std::time::Instant,
    ) -> Result<Deleted, CloudError> {
        AuroraDrilling.delete(clouds, at, poll, deadline).await
    }
}

#[cfg(test)]
mod tests;
