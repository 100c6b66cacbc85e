//! `[[backup_database]]`: an RDS instance whose standby in the other
//! regions is its backups, not a running copy: AWS's "backup and restore"
//! strategy, for the tiers that pay for no replica.
//!
//! In each region but the active one the standby is what RDS keeps there
//! of the active instance: its automated backups replicated across
//! regions (`StartDBInstanceAutomatedBackupsReplication`), restorable to
//! any point of their window, and its snapshots copied there
//! (`CopyDBSnapshot`), each restorable to the moment it was taken. A
//! failover restores the newest point of either into a new instance that
//! takes the plan's name for the target (`RestoreDBInstanceToPointInTime`
//! from the backups' ARN, or `RestoreDBInstanceFromDBSnapshot`), in the
//! subnet group and class the plan gives: the generic `restore` step does
//! it, once (the name is the plan's, read before acting), and the RPO is
//! the gap from the point restored to. Before that the RPO gate judges
//! the newest point's age; `status` names it, and what the region lacks.
//! A drill restores the same way into a drill copy, measures it, and
//! deletes it.
//!
//! Nothing here asks the region the data comes from: the backups and the
//! snapshots are read where they were copied to.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::backups::{
    InTheWay, KEY, Named, check_named, choose, drill_source, key_usable, kms_key, pick, point_age,
    rds_name, ready, said, standby_source,
};
use super::drilling::{
    CopySeen, CopyStage, Deleted, DrillAbout, Drilling, LagOf, Listing, Made, Refusable, Shadow,
};
use super::restoring::{
    Placement, Point, RESTORE_POINT_TAG, RESTORED_BY_TAG, RestoreAbout, Restored, Restoring, Source,
};
use super::{Copies, CopyState, Kind, Resource, RpoSource, Shown};
use crate::cloud::{
    CloudError, Clouds, DbRole, LagReading, ReplicaPlacement, Restorable, RestorePoint,
};
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

mod reprotecting;

/// A `[[backup_database]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupDatabaseSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// Engine, for people (`postgres`, `mysql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The instance per region: the primary's in the active region, the
    /// name a restore gives the new instance in the others.
    pub regions: PerRegion,
    /// The DB subnet group a restore is placed in, per region (none: the
    /// region's default VPC, which production rarely uses).
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub subnet_groups: PerRegion,
    /// The DB parameter group a restore is given, per region (none: the
    /// engine's default group, which drops any tuning of the primary's).
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub parameter_groups: PerRegion,
    /// The option group a restore is given, per region (none: the
    /// engine's default).
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub option_groups: PerRegion,
    /// The instance class a restore asks for (none: the backup's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_class: Option<String>,
    /// A KMS key per region (ARN, id or alias of that region): what the
    /// backups of an encrypted primary are encrypted with when reprotect
    /// replicates them there (a key cannot leave its region).
    #[serde(default, skip_serializing_if = "PerRegion::is_empty")]
    pub kms_keys: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

impl Kind for BackupDatabaseSpec {
    const KEYS: &'static [&'static str] = &[
        "id",
        "engine",
        "regions",
        "subnet_groups",
        "parameter_groups",
        "option_groups",
        "instance_class",
        "kms_keys",
        "after",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Data(super::DataRole {
        restoring: Some(&BackupRestoring),
        promoting: None,
        drilling: Some(&BackupDrilling),
        reprotecting: Some(&reprotecting::BackupReprotecting),
    });
}

impl Resource for BackupDatabaseSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "backup_database {:<15} {} (restored from replicated backups or copied snapshots{})",
            self.id,
            self.regions[region],
            self.engine
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        s.region_values(
            (&self.id, &self.regions),
            rds_name,
            (
                "an RDS instance identifier",
                "a letter, then letters, digits and single hyphens, at most 63",
            ),
        );
        let named = [
            Named::group("subnet_groups", &self.subnet_groups, "a DB subnet group"),
            Named::rds(
                "parameter_groups",
                &self.parameter_groups,
                "a DB parameter group",
            ),
            Named::rds("option_groups", &self.option_groups, "an option group"),
            Named {
                key: "kms_keys",
                values: &self.kms_keys,
                noun: "a KMS key (ARN, id or alias)",
                valid: kms_key,
                hint: KEY,
            },
        ];
        let (kind, id) = ("backup_database", self.id.as_str());
        check_named(s, kind, id, &self.regions, "instance", &named);
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
        let now = Utc::now();
        for region in self.regions.keys().filter(|r| *r != home) {
            let at = crate::cloud::fake::BackupAt {
                region,
                source: home_id,
                from: home,
            };
            w.fake
                .add_restorable(at, None, now - chrono::Duration::minutes(5));
            let nightly = format!("{home_id}-nightly");
            let taken = now - chrono::Duration::hours(6);
            w.fake.add_restorable(at, Some(&nightly), taken);
        }
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

impl BackupDatabaseSpec {
    /// The instances of the other regions, whose backups a restore in
    /// `region` reads (its home's, or after a failover the new primary's).
    fn others(&self, region: &str) -> Vec<String> {
        super::backups::others(&self.regions, region)
    }
}

/// The age of the newest point that the copy can be restored to is its
/// "lag": what the RPO gate and `status` judge.
const BACKUP_COPIES: super::CopiesAbout = super::CopiesAbout {
    section: "databases",
    read_call: "rds:DescribeDBInstances",
    maintenance_call: None,
    metric: "age of the newest restorable point",
    lag_call: "rds:DescribeDBInstanceAutomatedBackups",
    point: true,
};

#[async_trait]
impl Copies for BackupDatabaseSpec {
    fn about(&self) -> &'static super::CopiesAbout {
        &BACKUP_COPIES
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
                instance_class: self.instance_class.clone(),
                subnet_group: self.subnet_groups.get(region).cloned(),
                parameter_group: self.parameter_groups.get(region).cloned(),
                option_group: self.option_groups.get(region).cloned(),
                kms_key_id: self.kms_keys.get(region).cloned(),
                ..ReplicaPlacement::default()
            },
        }
    }

    fn copy_at(&self, region: &str) -> Option<(String, String)> {
        Some((region.to_string(), self.copy(region)?.to_string()))
    }

    /// The instance when it exists (the active one, or one restored);
    /// else the backups it would be restored from, as a standby that is
    /// a copy of what they were taken from.
    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<CopyState>, CloudError> {
        let Some(id) = self.copy(region) else {
            return Ok(None);
        };
        if let Some(i) = clouds.database.describe_instance(region, id).await? {
            return Ok(Some(CopyState {
                role: i.role,
                status: i.status,
                endpoint: i.endpoint,
                notes: Vec::new(),
                moves_with_primary: false,
                own_names: Vec::new(),
                restored_by: i.tags.get(RESTORED_BY_TAG).cloned(),
            }));
        }
        let found = newest(clouds, region, &self.others(region)).await?;
        let Some(r) = found else {
            return Ok(Some(CopyState {
                role: DbRole::Replica(self.others(region).join(", ")),
                status: "no-backups".into(),
                endpoint: None,
                notes: vec![format!(
                    "no replicated automated backups or copied snapshots of {} in {region}",
                    self.others(region).join(", ")
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
impl RpoSource for BackupDatabaseSpec {
    /// The newest restorable point's age, now: one datapoint, whose time
    /// is that point.
    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let found = newest(clouds, region, &self.others(region)).await?;
        let Some(point) = found.filter(|r| r.ready).and_then(|r| r.latest) else {
            let why = format!(
                "no restorable backups or snapshots of {} in {region}",
                self.others(region).join(", ")
            );
            return Err(super::no_copy(
                BACKUP_COPIES.lag_call,
                &self.id,
                region,
                why,
            ));
        };
        Ok(point_age(point, window))
    }
}

/// Every restorable copy in `region` of any of `sources`: their
/// replicated automated backups and their snapshots there, ready or not.
async fn copies(
    clouds: &Clouds,
    region: &str,
    sources: &[String],
) -> Result<Vec<Restorable>, CloudError> {
    let mut all = Vec::new();
    for source in sources {
        all.extend(clouds.database.replicated_backups(region, source).await?);
        all.extend(clouds.database.snapshots_of(region, source).await?);
    }
    Ok(all)
}

/// The newest restorable copy in `region` of any of `sources`: the
/// newest ready one, else (none ready) the newest, to say why not.
async fn newest(
    clouds: &Clouds,
    region: &str,
    sources: &[String],
) -> Result<Option<Restorable>, CloudError> {
    Ok(pick(copies(clouds, region, sources).await?))
}

/// The data role's restore of a backup standby: the newest (or the
/// requested) point of the backups replicated into the target, or its
/// newest copied snapshot, restored into a new instance with the plan's
/// name there, which answers no operation: it is read until available.
pub struct BackupRestoring;

const BACKUP_RESTORE: RestoreAbout = RestoreAbout {
    noun: "backup standby",
    how: "from its replicated backups or copied snapshots, into a new instance",
    ready: "available",
    latest_from: "the newest restorable point of the backups in the region (RestoreWindow.LatestTime, or the snapshot's SnapshotCreateTime)",
    no_window_hint: "replicate its automated backups into the region (aws rds start-db-instance-automated-backups-replication) or copy its snapshots there (aws rds copy-db-snapshot)",
    call: "rds:RestoreDBInstanceToPointInTime",
    finish_call: None,
    calls: &[
        "rds:DescribeDBInstances",
        "rds:DescribeDBInstanceAutomatedBackups",
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBSubnetGroups",
        "rds:DescribeDBParameterGroups",
        "rds:DescribeOptionGroups",
        "rds:DescribeOrderableDBInstanceOptions",
        "kms:DescribeKey",
        "rds:RestoreDBInstanceToPointInTime",
    ],
    waits: &["rds:RestoreDBInstanceToPointInTime"],
    polls: "rds:DescribeDBInstances",
};

#[async_trait]
impl Restoring for BackupRestoring {
    fn about(&self) -> &'static RestoreAbout {
        &BACKUP_RESTORE
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
        let existing = clouds.database.describe_instance(region, target).await?;
        let all = copies(clouds, region, &placement.from).await?;
        let in_the_way = existing.as_ref().map(|i| InTheWay {
            noun: "instance",
            id: &i.id,
            status: &i.status,
            tags: &i.tags,
        });
        let none = format!(
            "no replicated automated backups or copied snapshots of {} in {region}",
            placement.from.join(", ")
        );
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
        let found = clouds.database.describe_instance(region, copy).await?;
        Ok(found.map(|i| Restored {
            ready: i.is_available(),
            finish_due: false,
            point: super::restoring::marked_point(&i.tags, RESTORE_POINT_TAG),
            state: i.status,
            endpoint: i.endpoint,
            port: i.port,
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
        (_, copy): (&str, &str),
        point: Point,
        placement: &Placement,
    ) -> Result<Option<String>, CloudError> {
        restore(clouds, region, copy, point, placement).await?;
        Ok(None)
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::AtOnce
    }
}

/// Restores `copy` in `region` at `point` from the newest restorable copy
/// of `placement.from` there that holds it: the replicated backups when
/// their window does (any point), else the newest snapshot taken at or
/// before it (the point `decide_point` chose is a snapshot's own time when
/// a snapshot is newest). Says what it restored from.
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
            "no restorable copy of {} in {region} holds the point asked for",
            placement.from.join(", ")
        );
        return Err(super::no_copy(BACKUP_RESTORE.call, copy, region, why));
    };
    let db = &clouds.database;
    key_usable(clouds, region, from).await?;
    match from.id.starts_with("arn:") {
        // The point known, asked for exactly: the RPO measured from it is
        // the one restored (the latest, asked for as such, may be later).
        true => {
            let at = point.known.map_or(point.ask, RestorePoint::At);
            (db.restore_backups(region, &from.id, copy, at, &placement.place)).await?;
            Ok(format!("replicated automated backups {}", from.id))
        }
        false => {
            (db.restore_snapshot(region, &from.id, copy, &placement.place)).await?;
            Ok(format!("copied snapshot {}", from.id))
        }
    }
}

/// The data role's drill copy of a backup standby: a restore of the
/// target's newest restorable point into a drill copy (tagged with the
/// drill's run), measured from that point, then deleted: what the
/// auditors call a restore test, production untouched.
pub struct BackupDrilling;

/// What a backup standby's drill copy is, in words and calls.
pub const BACKUP_DRILL: DrillAbout = DrillAbout {
    noun: "restored drill copy",
    describe: "restore the newest point of {source}'s backups in {region} into a drill copy and check it serves (production and its backups are not touched)",
    make_call: "rds:RestoreDBInstanceToPointInTime",
    made: "an instance restored from the backups in the region, tagged with the drill's run",
    finish_call: None,
    makes: None,
    finished: "a writable instance (the drill's copy; deleted at cleanup)",
    delete_call: "rds:DeleteDBInstance",
    read_call: "DescribeDBInstances",
    deleted: "deleted",
    manual: "aws rds delete-db-instance --region {region} --db-instance-identifier {name} --skip-final-snapshot",
    lag_of: LagOf::Point,
    lag_call: "",
    from_standby: false,
    measured: "the gap from the point {copy} was restored to ({point}, the newest in {region}) to the request",
    tagged: true,
    calls: &[
        "rds:DescribeDBInstanceAutomatedBackups",
        "rds:DescribeDBSnapshots",
        "rds:RestoreDBInstanceToPointInTime",
    ],
    waits: &["rds:RestoreDBInstanceToPointInTime"],
    polls: "rds:DescribeDBInstances",
};

#[async_trait]
impl Drilling for BackupDrilling {
    fn about(&self) -> &'static DrillAbout {
        &BACKUP_DRILL
    }

    fn base<'a>(&self, s: &Shadow<'a>) -> &'a str {
        s.standby
    }

    fn place(&self, s: &Shadow<'_>, name: &str) -> (String, String) {
        (s.region.to_string(), name.to_string())
    }

    async fn source(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError> {
        let found = newest(clouds, s.region, &s.placement.from).await?;
        let none = (
            format!(
                "no replicated automated backups or copied snapshots of {} in {}",
                s.placement.from.join(", "),
                s.region
            ),
            BACKUP_RESTORE.no_window_hint.into(),
        );
        drill_source(clouds, s.region, found, &s.placement.place, none).await
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<CopySeen>, CloudError> {
        let found = clouds.database.describe_instance(region, address).await?;
        Ok(found.map(|i| {
            let stage = match i.is_available() {
                false => CopyStage::Making { operation: None },
                true => CopyStage::Writable {
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
        _: &Clouds,
        s: &Shadow<'_>,
        copy: &str,
        _: Duration,
    ) -> Result<LagReading, CloudError> {
        // Never asked: the RPO of a restore is its point's gap.
        let why = format!("{copy}'s RPO is the gap from the point it was restored to");
        Err(super::no_copy(BACKUP_DRILL.make_call, copy, s.region, why))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        (region, address): (&str, &str),
        tags: &BTreeMap<String, String>,
    ) -> Result<Made, CloudError> {
        let found = newest(clouds, region, &s.placement.from).await?;
        let Some(point) = found.filter(|r| r.ready).and_then(|r| r.latest) else {
            let why = format!("no restorable backups of {} in {region}", s.home);
            return Err(super::no_copy(BACKUP_DRILL.make_call, s.home, region, why));
        };
        let mut placement = s.placement.clone();
        placement.place.tags = tags.clone();
        // One zone: a drill copy is measured, not served from.
        placement.place.multi_az = Some(false);
        let at = Point {
            ask: RestorePoint::At(point),
            known: Some(point),
            basis: BACKUP_RESTORE.latest_from,
        };
        let asked = Utc::now();
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
        _: &Clouds,
        _: (&str, &str),
        _: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        // Never asked: a restored instance is writable as made.
        Ok(())
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::AtOnce
    }

    // Its copies are RDS instances in the target, listed and deleted as
    // the RDS drill copy's are.
    fn listing(&self, s: &Shadow<'_>) -> String {
        super::RdsDrilling.listing(s)
    }

    async fn list(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Listing, CloudError> {
        super::RdsDrilling.list(clouds, s).await
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        at: (&str, &str),
        poll: (Duration, Duration),
        deadline: std::time::Instant,
    ) -> Result<Deleted, CloudError> {
        super::RdsDrilling.delete(clouds, at, poll, deadline).await
    }
}

#[cfg(test)]
mod tests;
