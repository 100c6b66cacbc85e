//! `[[cloud_sql_backup]]`: a Cloud SQL instance whose standby in the
//! other regions is its backups kept there (a backup location: automated
//! backups with `backupConfiguration.location`, or on-demand ones made
//! with a `location`), not a running replica.
//!
//! A failover restores the newest `SUCCESSFUL` backup kept in the target
//! region into a new instance there that takes the plan's name
//! (`instances.restoreBackup` with `restoreInstanceSettings`: its region,
//! the plan's tier, and the label of the run that restored it): the
//! generic `restore` step does it once, follows its operation, and
//! measures the RPO from the backup's point (its interval's start). A drill restores the same into
//! a drill copy and deletes it. Only the target region is read: the
//! backups list answers for every location, and the one kept there is
//! taken.
//!
//! What is the kind's own is here; how a restore is asked for and
//! followed is `restoring`'s and the generic steps'.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::cloud_sql::{SqlDrilling, SqlOperations, check_project, sql_names, valid_instance};
use super::drilling::{
    CopySeen, CopyStage, Deleted, DrillAbout, Drilling, LagOf, Listing, Made, Refusable, Shadow,
};
use super::restoring::{
    Placement, Point, RESTORE_POINT_TAG, RESTORED_BY_TAG, RestoreAbout, Restored, Restoring,
    Source, Window,
};
use super::{Copies, CopyState, Kind, Resource, RpoSource, Shown, sql_address};
use crate::cloud::{
    CloudError, Clouds, DbRole, LagReading, ReplicaPlacement, Restorable, SqlInstance,
};
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

mod reprotecting;

/// A `[[cloud_sql_backup]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudSqlBackupSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// The GCP project that holds the instances and their backups.
    pub project: String,
    /// Engine, for people (`postgres`, `mysql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The instance's name per GCP region: the primary's in the active
    /// region, the name a restore gives the new instance in the others.
    pub regions: PerRegion,
    /// The machine tier a restore asks for (none: the backup's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The plan's sites (set when the plan is loaded).
    #[serde(skip)]
    pub sites: crate::plan::sites::Sites,
}

impl Kind for CloudSqlBackupSpec {
    const KEYS: &'static [&'static str] = &["id", "project", "engine", "regions", "tier", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Gcp;
    const ROLE: super::Role = super::Role::Data(super::DataRole {
        restoring: Some(&SqlBackupRestoring),
        promoting: None,
        drilling: Some(&SqlBackupDrilling),
        reprotecting: Some(&reprotecting::SqlBackupReprotecting),
    });
}

/// Cloud SQL's label for the run that restored an instance: a label key
/// takes no `:`, and a value only lowercase letters, digits, `_` and `-`.
const RESTORED_BY_LABEL: &str = "drctl-restored-by";

/// Cloud SQL's label for the point an instance was restored to.
const RESTORE_POINT_LABEL: &str = "drctl-restore-point";

/// A run id as a label value (lowercase; what a label takes).
fn label_value(run: &str) -> String {
    (run.chars())
        .map(|c| match c.to_ascii_lowercase() {
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' => c,
            _ => '_',
        })
        .take(63)
        .collect()
}

impl Resource for CloudSqlBackupSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "cloud_sql_backup {:<14} {}/{} (restored from its backups kept here{})",
            self.id,
            self.project,
            self.regions[self.sites.gcp(region)],
            self.engine
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        check_project(s, &self.id, &self.project);
        s.region_values(
            (&self.id, &self.regions),
            valid_instance,
            (
                "a Cloud SQL instance name",
                "lowercase letters, digits and hyphens, starting with a letter (as Cloud SQL names instances)",
            ),
        );
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Data(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        let home = self.sites.gcp(w.home);
        let Some(primary) = self.regions.get(home) else {
            return;
        };
        let key = (self.project.clone(), primary.clone());
        if w.fake.state().sql.contains_key(&key) {
            return;
        }
        w.fake.add_sql(&self.project, home, primary, None, false);
        let taken = Utc::now() - chrono::Duration::minutes(10);
        for region in self.regions.keys().filter(|r| *r != home) {
            let at = crate::cloud::fake::BackupAt {
                region,
                source: primary,
                from: home,
            };
            w.fake.add_sql_backup(&self.project, at, taken);
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        Vec::new()
    }

    fn attach_sites(&mut self, sites: &crate::plan::sites::Sites) {
        self.sites = sites.clone();
    }

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        for v in self.regions.values_mut() {
            v.push_str(&tag.to_lowercase());
        }
    }
}

impl CloudSqlBackupSpec {
    /// The instances of the other regions, whose backups a restore in GCP
    /// region `gcp` reads.
    fn others(&self, gcp: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, name) in self.regions.iter().filter(|(r, _)| *r != gcp) {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }
}

/// The newest backup kept in `region` of any of `sources`: the newest
/// `SUCCESSFUL` one, else (none is) the newest, to say why not.
async fn newest(
    clouds: &Clouds,
    region: &str,
    project: &str,
    sources: &[String],
) -> Result<Option<Restorable>, CloudError> {
    let all = kept(clouds, region, project, sources).await?;
    let best = |rs: Vec<&Restorable>| rs.into_iter().max_by_key(|r| r.latest).cloned();
    let ready = best(all.iter().filter(|r| r.ready).collect());
    Ok(ready.or_else(|| best(all.iter().collect())))
}

/// Every backup kept in `region` of `sources`.
async fn kept(
    clouds: &Clouds,
    region: &str,
    project: &str,
    sources: &[String],
) -> Result<Vec<Restorable>, CloudError> {
    let mut all = Vec::new();
    for source in sources {
        all.extend(
            clouds
                .cloud_sql
                .sql_backups(region, project, source)
                .await?,
        );
    }
    Ok(all)
}

/// A backup in a sentence.
fn said(b: &Restorable) -> String {
    let at = (b.latest)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "unknown".into());
    format!("backup {} of {} ({}): taken {at}", b.id, b.source, b.status)
}

/// The age of the newest backup's point (its interval's start) is the
/// standby's "lag".
const SQL_BACKUP_COPIES: super::CopiesAbout = super::CopiesAbout {
    section: "cloud sql",
    read_call: "sqladmin:instances.get",
    maintenance_call: None,
    metric: "age of the newest backup kept in the region",
    lag_call: "sqladmin:backups.list",
    point: true,
};

#[async_trait]
impl Copies for CloudSqlBackupSpec {
    fn about(&self) -> &'static super::CopiesAbout {
        &SQL_BACKUP_COPIES
    }

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        Some(self)
    }

    fn copy(&self, region: &str) -> Option<&str> {
        self.regions.get(self.sites.gcp(region)).map(String::as_str)
    }

    fn copy_at(&self, region: &str) -> Option<(String, String)> {
        let name = self.copy(region)?;
        let gcp = self.sites.gcp(region).to_string();
        Some((gcp, sql_address(&self.project, name)))
    }

    fn dr_replica(&self) -> bool {
        false
    }

    fn restores(&self) -> bool {
        true
    }

    fn placement(&self, region: &str) -> Placement {
        Placement {
            from: self.others(self.sites.gcp(region)),
            place: ReplicaPlacement {
                instance_class: self.tier.clone(),
                ..ReplicaPlacement::default()
            },
        }
    }

    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<CopyState>, CloudError> {
        let Some(name) = self.copy(region) else {
            return Ok(None);
        };
        let gcp = self.sites.gcp(region);
        let sql = &clouds.cloud_sql;
        if let Some(i) = sql.describe_sql(gcp, &self.project, name).await? {
            return Ok(Some(CopyState {
                role: i.role.clone(),
                status: super::cloud_sql::status_of(&i.state),
                endpoint: i.endpoint,
                notes: Vec::new(),
                moves_with_primary: false,
                own_names: Vec::new(),
                restored_by: i.labels.get(RESTORED_BY_LABEL).cloned(),
            }));
        }
        let others = self.others(gcp);
        let found = newest(clouds, gcp, &self.project, &others).await?;
        let (role, status, notes) = match &found {
            None => (
                DbRole::Replica(others.join(", ")),
                "no-backups".to_string(),
                vec![format!("no backups of {} kept in {gcp}", others.join(", "))],
            ),
            Some(b) => (
                DbRole::Replica(b.source.clone()),
                if b.ready { "available" } else { &b.status }.to_string(),
                vec![said(b)],
            ),
        };
        Ok(Some(CopyState {
            role,
            status,
            endpoint: None,
            notes,
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
impl RpoSource for CloudSqlBackupSpec {
    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let gcp = self.sites.gcp(region);
        let others = self.others(gcp);
        let found = newest(clouds, gcp, &self.project, &others).await?;
        let Some(point) = found.filter(|b| b.ready).and_then(|b| b.latest) else {
            let why = format!("no backups of {} kept in {gcp}", others.join(", "));
            return Err(super::no_copy(
                SQL_BACKUP_COPIES.lag_call,
                &self.id,
                gcp,
                why,
            ));
        };
        let age = (Utc::now() - point).to_std().unwrap_or_default();
        Ok(LagReading {
            max: Some(age),
            latest: Some((age, point)),
            datapoints: 1,
            window,
        })
    }
}

/// The data role's restore of a Cloud SQL backup standby.
pub struct SqlBackupRestoring;

const SQL_BACKUP_RESTORE: RestoreAbout = RestoreAbout {
    noun: "Cloud SQL backup standby",
    how: "from its newest backup kept in the region, into a new instance",
    ready: "RUNNABLE",
    latest_from: "the end of the newest backup kept in the region (backupInterval.endTime)",
    no_window_hint: "keep backups in the region: set the instance's backup location (gcloud sql instances patch NAME --backup-location=REGION) or make one there (gcloud sql backups create --instance NAME --location REGION)",
    call: "sqladmin:instances.restoreBackup",
    finish_call: None,
    calls: &[
        "sqladmin:instances.get",
        "sqladmin:backups.list",
        "sqladmin:operations.list",
        "sqladmin:instances.restoreBackup",
    ],
    waits: &["sqladmin:instances.restoreBackup"],
    polls: "sqladmin:operations.get",
};

/// Why an instance found under the plan's name is in the way of this
/// run's restore: it is not one this run restored (its label), with the
/// fix; `None` when it is this run's (a resume).
fn in_the_way(i: &SqlInstance, region: &str, run: Option<&String>) -> Option<(String, String)> {
    let by = i.labels.get(RESTORED_BY_LABEL);
    if run.is_some() && by == run {
        return None;
    }
    let whose = match by {
        Some(other) => format!("restored by run {other}, not this one"),
        None => "no restore of drctl's made it".into(),
    };
    Some((
        format!("instance {} already exists in {region} ({}; {whose})", i.name, i.state),
        "if the plan serves from it (a failover to this region ran already: `drctl status`), nothing is to be restored; else delete it (Cloud SQL renames no instance, and keeps a deleted one's name from reuse for up to a week: give the plan another name for this region meanwhile)".into(),
    ))
}

#[async_trait]
impl Restoring for SqlBackupRestoring {
    fn about(&self) -> &'static RestoreAbout {
        &SQL_BACKUP_RESTORE
    }

    /// The plan's name in the target: the same for every run.
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
        let (p, name) = sql_names(target, ("sqladmin:backups.list", region))?;
        let run = placement
            .place
            .tags
            .get(RESTORED_BY_TAG)
            .map(|r| label_value(r));
        let existing = clouds.cloud_sql.describe_sql(region, p, name).await?;
        let lacks: Vec<(String, String)> = (existing.as_ref())
            .and_then(|i| in_the_way(i, region, run.as_ref()))
            .into_iter()
            .collect();
        if let Some(i) = existing.filter(|_| lacks.is_empty()) {
            let said = format!("{} restored already ({})", i.name, i.state);
            let window = Ok(Window::default());
            return Ok(Some(Source {
                said,
                window,
                lacks,
            }));
        }
        let found = kept(clouds, region, p, &placement.from).await?;
        let ready: Vec<&Restorable> = found.iter().filter(|b| b.ready).collect();
        let from = placement.from.join(", ");
        let newest = found.iter().max_by_key(|b| b.latest);
        let (said, window) = match (newest, ready.is_empty()) {
            (None, _) => (
                format!("no backups of {from} kept in {region}"),
                Err(format!("no backups of {from} kept in {region}")),
            ),
            (Some(b), true) => (said(b), Err(format!("backup {} is {}", b.id, b.status))),
            // A backup restores its own point only, and the newest is
            // the one restored: a time between backups is no point a
            // restore could make, so the window is that one point.
            (Some(b), false) => {
                let newest = ready.iter().filter_map(|b| b.latest).max();
                let window = Window {
                    earliest: newest,
                    latest: newest,
                };
                (said(b), Ok(window))
            }
        };
        Ok(Some(Source {
            said,
            window,
            lacks,
        }))
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
    ) -> Result<Option<Restored>, CloudError> {
        let (p, name) = sql_names(copy, ("sqladmin:instances.get", region))?;
        let found = clouds.cloud_sql.describe_sql(region, p, name).await?;
        Ok(found.map(|i| Restored {
            ready: i.is_runnable(),
            finish_due: false,
            point: super::restoring::marked_point(&i.labels, RESTORE_POINT_LABEL),
            state: i.state,
            endpoint: i.endpoint,
            port: None,
        }))
    }

    async fn under_way(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
    ) -> Result<Option<String>, CloudError> {
        let (p, name) = sql_names(copy, ("sqladmin:operations.list", region))?;
        // Only one still under way: the name is the plan's, so an ended
        // restore into it may be another run's (failed, or its instance
        // deleted since), never this one's to follow.
        let ops = clouds.cloud_sql.operations(region, p, name).await?;
        let restore = (ops.into_iter()).find(|o| o.kind == "RESTORE_VOLUME" && !o.is_done());
        Ok(restore.map(|o| o.name))
    }

    async fn start(
        &self,
        clouds: &Clouds,
        region: &str,
        (_, copy): (&str, &str),
        point: Point,
        placement: &Placement,
    ) -> Result<Option<String>, CloudError> {
        let (p, name) = sql_names(copy, ("sqladmin:instances.restoreBackup", region))?;
        let at = SqlAddress {
            region,
            project: p,
            name,
        };
        restore(clouds, at, point, placement).await.map(Some)
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::Operation(&SqlOperations)
    }
}

/// A Cloud SQL instance as a restore makes it: its region, project and
/// name.
#[derive(Clone, Copy)]
struct SqlAddress<'a> {
    region: &'a str,
    project: &'a str,
    name: &'a str,
}

/// Restores the backup whose end is `point` (the newest when none is
/// known) into instance `name`, labelled with the run as Cloud SQL takes
/// labels; answers the operation.
async fn restore(
    clouds: &Clouds,
    at: SqlAddress<'_>,
    point: Point,
    placement: &Placement,
) -> Result<String, CloudError> {
    let SqlAddress {
        region,
        project,
        name,
    } = at;
    let all = kept(clouds, region, project, &placement.from).await?;
    let ready = all.iter().filter(|b| b.ready);
    let chosen = match point.known {
        Some(t) => ready
            .filter(|b| b.latest == Some(t))
            .max_by_key(|b| b.latest),
        None => ready.max_by_key(|b| b.latest),
    };
    let Some(backup) = chosen else {
        let why = format!(
            "no backup of {} kept in {region} ends at the point asked for",
            placement.from.join(", ")
        );
        return Err(super::no_copy(SQL_BACKUP_RESTORE.call, name, region, why));
    };
    let mut settings = placement.place.clone();
    settings.tags = (placement.place.tags.iter())
        .map(|(k, v)| match k.as_str() {
            RESTORED_BY_TAG => (RESTORED_BY_LABEL.to_string(), label_value(v)),
            RESTORE_POINT_TAG => (RESTORE_POINT_LABEL.to_string(), label_value(v)),
            _ => (label_value(k), label_value(v)),
        })
        .collect();
    let sql = &clouds.cloud_sql;
    let op = (sql.restore_sql_backup(region, project, name, &backup.id, &settings)).await?;
    Ok(op.name)
}

/// The data role's drill copy of a Cloud SQL backup standby: the newest
/// backup kept in the drill's target restored into a drill copy there,
/// measured from the backup's point (its interval's start), deleted at cleanup (as a Cloud SQL
/// drill clone is: by its name).
pub struct SqlBackupDrilling;

/// What a Cloud SQL backup standby's drill copy is, in words and calls.
pub const SQL_BACKUP_DRILL: DrillAbout = DrillAbout {
    noun: "restored drill copy",
    describe: "restore the newest backup of {source} kept in {region} into a drill copy and wait until RUNNABLE (production and its backups are not touched); deleted at cleanup",
    make_call: "sqladmin:instances.restoreBackup",
    made: "a drill copy restored from the newest backup kept in the region",
    finish_call: None,
    makes: None,
    finished: "RUNNABLE (deleted at cleanup)",
    delete_call: "sqladmin:instances.delete",
    read_call: "instances.get",
    deleted: "deleted (its operation ended)",
    manual: "gcloud sql instances delete {name} --project {project} (a drill's copy: its name starts with drill-)",
    lag_of: LagOf::Point,
    lag_call: "",
    from_standby: false,
    measured: "gap from the point of the backup {copy} was restored from ({point}, the start of the newest kept in {region}: every write before it is in it) to the request",
    tagged: false,
    calls: SQL_BACKUP_RESTORE.calls,
    waits: SQL_BACKUP_RESTORE.waits,
    polls: SQL_BACKUP_RESTORE.polls,
};

#[async_trait]
impl Drilling for SqlBackupDrilling {
    fn about(&self) -> &'static DrillAbout {
        &SQL_BACKUP_DRILL
    }

    fn base<'a>(&self, s: &Shadow<'a>) -> &'a str {
        s.standby.rsplit_once('/').map_or(s.standby, |(_, n)| n)
    }

    fn place(&self, s: &Shadow<'_>, name: &str) -> (String, String) {
        let project = s.home.rsplit_once('/').map_or("", |(p, _)| p);
        (s.region.to_string(), sql_address(project, name))
    }

    async fn source(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError> {
        let project = s.home.rsplit_once('/').map_or("", |(p, _)| p);
        let found = newest(clouds, s.region, project, &s.placement.from).await?;
        Ok(match found {
            None => Err((
                format!(
                    "no backups of {} kept in {}",
                    s.placement.from.join(", "),
                    s.region
                ),
                SQL_BACKUP_RESTORE.no_window_hint.into(),
            )),
            Some(b) if !b.ready => Err((
                format!("backup {} is {}", b.id, b.status),
                "drill again once it is SUCCESSFUL".into(),
            )),
            Some(b) => Ok(said(&b)),
        })
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<CopySeen>, CloudError> {
        let (p, name) = sql_names(address, ("sqladmin:instances.get", region))?;
        let found = clouds.cloud_sql.describe_sql(region, p, name).await?;
        Ok(found.map(|i| CopySeen {
            tags: BTreeMap::new(),
            stage: match i.is_runnable() {
                true => CopyStage::Writable {
                    endpoint: i.endpoint.clone(),
                    port: None,
                },
                false => CopyStage::Making { operation: None },
            },
            status: i.state,
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
        let why = format!("{copy}'s RPO is the gap from the backup it was restored from");
        Err(super::no_copy(
            SQL_BACKUP_DRILL.make_call,
            copy,
            s.region,
            why,
        ))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        (region, address): (&str, &str),
        _tags: &BTreeMap<String, String>,
    ) -> Result<Made, CloudError> {
        let (p, name) = sql_names(address, (SQL_BACKUP_DRILL.make_call, region))?;
        let found = newest(clouds, region, p, &s.placement.from).await?;
        let ready = found.filter(|b| b.ready);
        let Some((point, backup)) = ready.and_then(|b| Some((b.latest?, b.id))) else {
            let why = format!("no backups of {} kept in {region}", s.home);
            return Err(super::no_copy(
                SQL_BACKUP_DRILL.make_call,
                s.home,
                region,
                why,
            ));
        };
        let at = Point {
            ask: crate::cloud::RestorePoint::At(point),
            known: Some(point),
            basis: SQL_BACKUP_RESTORE.latest_from,
        };
        let asked = Utc::now();
        let copy = SqlAddress {
            region,
            project: p,
            name,
        };
        let op = restore(clouds, copy, at, s.placement).await?;
        Ok(Made {
            asked,
            point: Some(point),
            operation: Some(op),
            from: Some(format!("backup {backup}")),
        })
    }

    async fn finish(
        &self,
        _: &Clouds,
        _: (&str, &str),
        _: &str,
        _: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        Ok(())
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::Operation(&SqlOperations)
    }

    fn listing(&self, s: &Shadow<'_>) -> String {
        SqlDrilling.listing(s)
    }

    async fn list(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Listing, CloudError> {
        SqlDrilling.list(clouds, s).await
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        at: (&str, &str),
        poll: (Duration, Duration),
        deadline: std::time::Instant,
    ) -> Result<Deleted, CloudError> {
        SqlDrilling.delete(clouds, at, poll, deadline).await
    }
}

#[cfg(test)]
mod tests;
