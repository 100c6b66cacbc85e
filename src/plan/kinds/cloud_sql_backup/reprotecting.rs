//! A Cloud SQL backup standby's reprotection: after a failover restored
//! the data in the active region, the new primary's backups are kept
//! where a failback restores from (`instances.patch` of its
//! `settings.backupConfiguration.location`), and one on-demand backup is
//! taken there at once (`backups.insertBackup`), so that a failback need
//! not wait for the next automated backup. Each write's operation is
//! followed to done; a resumed run finds one under way and follows it,
//! never sending it twice.
//!
//! Cloud SQL renames no instance: an old primary in another region keeps
//! the plan's name there, which a failback's restore takes. The
//! reprotection never deletes it (it may hold writes no backup has): it
//! says so, and what to do, as something kept.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::super::cloud_sql::reprotecting::sql_words;
use super::super::cloud_sql::sql_names;
use super::super::reprotecting::{
    Guard, Guarded, Kept, Made, Move, ReprotectAbout, Reprotecting, Standing, payload_of,
    role_words,
};
use crate::cloud::gcp_sql::kept_in;
use crate::cloud::{CloudError, Clouds, DbRole, Restorable, SqlInstance, SqlOperation};

/// The data role's reprotection of a Cloud SQL backup standby.
pub struct SqlBackupReprotecting;

/// What a Cloud SQL backup standby's reprotection is, in words and calls.
pub const SQL_BACKUP_REPROTECT: ReprotectAbout = ReprotectAbout {
    describe: "keep the backups of Cloud SQL {primary} in {active} where a failback restores them (its backup location), one taken there now",
    calls: &[
        "sqladmin:instances.get",
        "sqladmin:backups.list",
        "sqladmin:operations.list",
        "sqladmin:instances.patch",
        "sqladmin:backups.insertBackup",
    ],
    waits: &[],
    polls: "sqladmin:operations.get",
};

const READ: &str = "sqladmin:instances.get";

/// A Cloud SQL backup standby's reprotection writes, each of the primary
/// (the guarded one: its project and name are the step's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum SqlBackupMove {
    /// Keep its backups in `location` from now on.
    KeepIn { location: String },
    /// Take a backup of it kept in `location`.
    Backup { location: String },
}

/// Where the primary's backups must be kept for the other regions (pure):
/// the one other region; for several, the multi-region that holds them
/// all (`us`, `eu`, `asia`), else the first (a failback to the others
/// would find none: said by [`Reprotecting::kept`]).
fn location_for(others: &[&str]) -> String {
    let multi = ["us", "eu", "asia"]
        .into_iter()
        .find(|m| others.iter().all(|r| kept_in(m, r)));
    match (others, multi) {
        ([one], _) => one.to_string(),
        (_, Some(m)) => m.to_string(),
        _ => others.first().map(|r| r.to_string()).unwrap_or_default(),
    }
}

/// What the primary's reprotection reads.
pub struct Read<'a> {
    /// The primary, as read in the active region.
    pub primary: Option<&'a SqlInstance>,
    /// Its backups kept in the location, as read from the first other
    /// region.
    pub kept: &'a [Restorable],
    /// An operation of its still under way (an update or a backup).
    pub under_way: Option<&'a SqlOperation>,
}

/// Where the reprotection stands (pure): the primary must be a running
/// primary; then its backups kept in `location`, then one backup there.
fn standing(g: &Guarded, location: &str, read: Read<'_>) -> Standing {
    let (active, address) = (&g.primary.0, &g.primary.1);
    let name = address
        .rsplit_once('/')
        .map_or(address.as_str(), |(_, n)| n);
    let hint = "reprotect runs after a failover to that region: `drctl status` shows where the plan serves";
    let p = match read.primary {
        Some(p) if p.role == DbRole::Primary && p.state == "RUNNABLE" => p,
        Some(p) => {
            let why = format!(
                "{name} in {active} is {}",
                role_words(&p.role, &p.state.to_lowercase())
            );
            return Standing::refuse(why, hint, name, active);
        }
        None => {
            let why = format!("Cloud SQL instance {name} does not exist in {active}");
            return Standing::refuse(why, hint, name, active);
        }
    };
    if let Some(op) = read.under_way {
        return Standing::Follow {
            operation: op.name.clone(),
            what: format!("{} of {name}", op.kind.to_lowercase()),
            resource: name.to_string(),
            region: active.clone(),
        };
    }
    let location = location.to_string();
    if p.backup_location.as_deref() != Some(location.as_str()) {
        let now = p
            .backup_location
            .as_deref()
            .unwrap_or("the default location");
        let says = format!("the backups of {name} kept in {location} from now on");
        let keep = SqlBackupMove::KeepIn { location };
        let call = "sqladmin:instances.patch";
        let m = Move::new(
            (name, active),
            call,
            (&format!("kept in {now}"), says),
            &keep,
        );
        return Standing::Act(m);
    }
    if !read.kept.iter().any(|b| b.ready) {
        let says = format!("a backup of {name} kept in {location}: a point a failback restores");
        let backup = SqlBackupMove::Backup { location };
        let call = "sqladmin:backups.insertBackup";
        let m = Move::new((name, active), call, ("no backup there", says), &backup);
        return Standing::Act(m);
    }
    Standing::Protected {
        copies: (g.others.iter())
            .map(|(region, address)| Guard {
                region: region.clone(),
                address: address.clone(),
                endpoint: None,
            })
            .collect(),
        dr: None,
        parked: Vec::new(),
    }
}

#[async_trait]
impl Reprotecting for SqlBackupReprotecting {
    fn about(&self) -> &'static ReprotectAbout {
        &SQL_BACKUP_REPROTECT
    }

    async fn standing(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        _run_id: &str,
        _made: Made<'_>,
    ) -> Result<Standing, CloudError> {
        let (active, address) = (&g.primary.0, &g.primary.1);
        let (project, name) = sql_names(address, (READ, active))?;
        let sql = &clouds.cloud_sql;
        let primary = sql.describe_sql(active, project, name).await?;
        let others: Vec<&str> = g.others.iter().map(|(r, _)| r.as_str()).collect();
        let location = location_for(&others);
        // Read where the backups are kept (the first other region, held
        // by the location): the backups list answers for every location.
        let first = others.first().copied().unwrap_or(active);
        let kept = sql.sql_backups(first, project, name).await?;
        let ops = sql.operations(active, project, name).await?;
        let mine = |o: &&SqlOperation| matches!(o.kind.as_str(), "UPDATE" | "BACKUP_VOLUME");
        let read = Read {
            primary: primary.as_ref(),
            kept: &kept,
            under_way: ops.iter().filter(mine).find(|o| !o.is_done()),
        };
        Ok(standing(g, &location, read))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        m: &Move,
    ) -> Result<Option<String>, CloudError> {
        let (project, name) = sql_names(&g.primary.1, (READ, &m.region))?;
        let sql = &clouds.cloud_sql;
        let op = match payload_of::<SqlBackupMove>(m)? {
            SqlBackupMove::KeepIn { location } => {
                (sql.keep_sql_backups_in(&m.region, project, name, &location)).await?
            }
            SqlBackupMove::Backup { location } => {
                (sql.backup_sql(&m.region, project, name, &location)).await?
            }
        };
        Ok(Some(op.name))
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::Operation(&super::super::cloud_sql::SqlOperations)
    }

    async fn read_one(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<String, CloudError> {
        sql_words(clouds, region, address).await
    }

    /// An old primary under the plan's name in another region: Cloud SQL
    /// renames nothing, so it is in the way of a failback's restore.
    async fn kept(&self, clouds: &Clouds, g: &Guarded, _: &str) -> Result<Vec<Kept>, CloudError> {
        let mut out = Vec::new();
        for (region, address) in &g.others {
            let (project, name) = sql_names(address, (READ, region))?;
            if clouds
                .cloud_sql
                .describe_sql(region, project, name)
                .await?
                .is_some()
            {
                out.push(Kept {
                    at: format!("{region}/{name}"),
                    warning: format!(
                        "{name} in {region} (the old primary) holds the name a failback restores into, and writes on its own: Cloud SQL renames no instance, and drctl deletes no data; keep what it holds that no backup has (gcloud sql export sql {name} gs://... --project {project}), then delete it (gcloud sql instances delete {name} --project {project}) before failing back"
                    ),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn primary(location: Option<&str>) -> SqlInstance {
        let f = crate::cloud::fake::FakeCloud::new();
        f.add_sql("p", "us-east4", "archive-sql-use4", None, false);
        let mut i = f.state().sql[&("p".to_string(), "archive-sql-use4".to_string())].clone();
        i.backup_location = location.map(str::to_string);
        i
    }

    fn guarded() -> Guarded {
        Guarded {
            primary: ("us-east4".into(), "p/archive-sql-use4".into()),
            others: vec![("us-west1".into(), "p/archive-sql".into())],
            dr: false,
            keys: Default::default(),
        }
    }

    fn backup(ready: bool) -> Restorable {
        Restorable {
            id: "projects/p/backups/1".into(),
            source: "archive-sql-use4".into(),
            source_arn: None,
            source_region: Some("us-east4".into()),
            status: if ready { "SUCCESSFUL" } else { "ENQUEUED" }.into(),
            ready,
            earliest: None,
            latest: None,
            kms_key_id: None,
            progress: None,
            engine: None,
            engine_version: None,
        }
    }

    fn next(p: Option<&SqlInstance>, kept: &[Restorable], op: Option<&SqlOperation>) -> Standing {
        let read = Read {
            primary: p,
            kept,
            under_way: op,
        };
        standing(&guarded(), "us-west1", read)
    }

    /// The location first, then one backup there, then protected; an
    /// operation under way is followed, never sent again; a primary that
    /// is not running refuses.
    #[test]
    fn the_location_then_a_backup_there_then_protected_and_an_operation_under_way_is_followed() {
        let p = primary(None);
        let Standing::Act(m) = next(Some(&p), &[], None) else {
            panic!("the location first")
        };
        assert_eq!(m.call, "sqladmin:instances.patch");
        let SqlBackupMove::KeepIn { location, .. } = payload_of(&m).unwrap() else {
            panic!("a location")
        };
        assert_eq!(location, "us-west1");
        let p = primary(Some("us-west1"));
        let Standing::Act(m) = next(Some(&p), &[backup(false)], None) else {
            panic!("then a backup")
        };
        assert_eq!(m.call, "sqladmin:backups.insertBackup");
        assert!(matches!(
            next(Some(&p), &[backup(true)], None),
            Standing::Protected { .. }
        ));
        let op = SqlOperation {
            name: "op-1".into(),
            kind: "BACKUP_VOLUME".into(),
            target: "archive-sql-use4".into(),
            status: crate::cloud::SqlOpStatus::Running,
            error: None,
            inserted: None,
        };
        let Standing::Follow { operation, .. } = next(Some(&p), &[], Some(&op)) else {
            panic!("followed")
        };
        assert_eq!(operation, "op-1");
        let mut down = p.clone();
        down.state = "MAINTENANCE".into();
        assert!(matches!(
            next(Some(&down), &[], None),
            Standing::Refuse { .. }
        ));
        assert!(matches!(next(None, &[], None), Standing::Refuse { .. }));
    }

    /// One other region: that region; several in one multi-region: it;
    /// several across: the first.
    #[test]
    fn the_location_is_the_one_other_region_else_the_multi_region_holding_them() {
        assert_eq!(location_for(&["us-west1"]), "us-west1");
        assert_eq!(location_for(&["us-west1", "us-east4"]), "us");
        assert_eq!(location_for(&["europe-west1", "us-east4"]), "europe-west1");
    }
}
