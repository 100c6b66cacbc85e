//! Cloud SQL's drill copy (the data role's `Drilling`), beside the kind's
//! other roles: a clone of the home primary at its latest recovery time.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

use super::{SQL_RESTORE, SqlRestoring, sql_address, sql_names};
use crate::cloud::{CloudError, Clouds, LagReading};
use crate::plan::kinds::drilling::{
    CopySeen, CopyStage, Deleted, DrillAbout, Drilling, LagOf, Listed, Listing, Made, Refusable,
    Shadow,
};
use crate::plan::kinds::restoring::Restoring;

/// The data role's drill copy of Cloud SQL: a clone of the home primary at
/// its latest recovery time (`instances.clone` with
/// `cloneContext.pointInTime`), `RUNNABLE`, deleted at cleanup.
/// Production (the primary, its replicas, their roles) is only read.
///
/// # Why a clone of the primary, not of the standby
///
/// A Cloud SQL read replica cannot be cloned: replicas keep no backups
/// (`backupConfiguration` cannot be enabled on one) and a clone is made
/// from its source's backup and logs; Cloud SQL refuses it (the emulator
/// and the fake do too). So the drill clones what a clone can be taken of,
/// the primary, as the RDS drill reads from it: at its latest recovery
/// time, read right before the call. Cloud SQL keeps a clone in its
/// source's region, so the copy is in the home region: it rehearses the
/// data's recovery (its time and what it holds), not the standby region's
/// capacity, which `drill-raise` rehearses. The RPO is the gap from the
/// clone's point in time to its request (the logs not shipped yet). Cloud
/// SQL keeps no tags a drill writes: a clone is the drill's by its name.
pub struct SqlDrilling;

/// What a Cloud SQL drill copy is, in words and calls.
pub const SQL_DRILL: DrillAbout = DrillAbout {
    noun: "drill clone",
    describe: "clone Cloud SQL primary {source} ({source_region}) at its latest recovery time into a drill copy, wait until RUNNABLE ({standby} and the primary are not changed); deleted at cleanup",
    make_call: "sqladmin:instances.clone",
    made: "a drill copy cloned at the latest recovery time",
    finish_call: None,
    makes: None,
    finished: "RUNNABLE (deleted at cleanup)",
    delete_call: "sqladmin:instances.delete",
    read_call: "instances.get",
    deleted: "deleted (its operation ended)",
    manual: "gcloud sql instances delete {name} --project {project} (a drill's clone: its name starts with drill-)",
    lag_of: LagOf::Point,
    lag_call: "",
    from_standby: false,
    measured: "gap from the clone's point in time {point} (the latest recovery time of {source}) to its request",
    tagged: false,
    calls: SQL_RESTORE.calls,
    waits: SQL_RESTORE.waits,
    polls: SQL_RESTORE.polls,
};

/// What a drill says to do when the primary has no recovery window.
const NO_WINDOW: &str = "enable point-in-time recovery on the home primary (a drill clones it at its latest recovery time), then drill again";

/// Why Cloud SQL primary `source` in `region` (project `project`), read as
/// `primary`, cannot be cloned by a drill, and what to do; `None` when it
/// is a RUNNABLE primary. Pure.
pub fn clone_refusal(
    (project, source): (&str, &str),
    region: &str,
    primary: Option<&crate::cloud::SqlInstance>,
) -> Option<(String, String)> {
    let Some(primary) = primary else {
        return Some((
            format!("Cloud SQL instance {source} does not exist in project {project} ({region})"),
            "fix the instance's name in the plan".into(),
        ));
    };
    if let crate::cloud::DbRole::Replica(of) = &primary.role {
        return Some((
            format!(
                "{source} in {region} is a replica of {of}, not the primary: a drill clones the home primary (a replica keeps no backups to clone from)"
            ),
            "fail back first (the plan's home must hold its primary), then drill again".into(),
        ));
    }
    (!primary.is_runnable()).then(|| {
        (
            format!(
                "primary {source} in {region} is {}, not RUNNABLE",
                primary.state
            ),
            "drill again once it serves".into(),
        )
    })
}

impl SqlDrilling {
    /// The point the clone is made at: the primary's latest recovery time,
    /// read now; `Err((why, hint))` without one.
    async fn point(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError> {
        let role = &SqlRestoring;
        let Some(read) = role
            .source(clouds, s.home_region, s.home, s.placement)
            .await?
        else {
            return Ok(Err((
                format!("Cloud SQL instance {} does not exist", s.home),
                "fix the instance's name in the plan".into(),
            )));
        };
        Ok(
            match crate::plan::kinds::restoring::decide_point(role.about(), &read.window, None) {
                Ok(_) => Ok(format!("a RUNNABLE primary, {}", read.said)),
                Err((why, _)) => Err((why, NO_WINDOW.into())),
            },
        )
    }
}

#[async_trait]
impl Drilling for SqlDrilling {
    fn about(&self) -> &'static DrillAbout {
        &SQL_DRILL
    }

    fn base<'a>(&self, s: &Shadow<'a>) -> &'a str {
        s.standby.rsplit_once('/').map_or(s.standby, |(_, n)| n)
    }

    fn place(&self, s: &Shadow<'_>, name: &str) -> (String, String) {
        let project = s.home.rsplit_once('/').map_or("", |(p, _)| p);
        (s.home_region.to_string(), sql_address(project, name))
    }

    async fn source(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError> {
        let r = s.home_region;
        let (p, name) = sql_names(s.home, ("sqladmin:instances.get", r))?;
        let primary = clouds.cloud_sql.describe_sql(r, p, name).await?;
        match clone_refusal((p, name), r, primary.as_ref()) {
            Some(refused) => Ok(Err(refused)),
            None => self.point(clouds, s).await,
        }
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<CopySeen>, CloudError> {
        let (p, name) = sql_names(address, ("sqladmin:instances.get", region))?;
        if let Some(i) = clouds.cloud_sql.describe_sql(region, p, name).await? {
            let stage = match i.is_runnable() {
                true => CopyStage::Writable {
                    endpoint: i.endpoint,
                    port: None,
                },
                false => CopyStage::Making { operation: None },
            };
            return Ok(Some(CopySeen {
                tags: BTreeMap::new(),
                status: i.state,
                stage,
            }));
        }
        // A clone under way has no instance to read yet: its operation.
        let ops = clouds.cloud_sql.operations(region, p, name).await?;
        let making = ops.into_iter().find(|o| o.kind == "CLONE" && !o.is_done());
        Ok(making.map(|o| CopySeen {
            tags: BTreeMap::new(),
            status: format!("being cloned (operation {})", o.name),
            stage: CopyStage::Making {
                operation: Some(o.name),
            },
        }))
    }

    async fn lag(
        &self,
        _clouds: &Clouds,
        s: &Shadow<'_>,
        copy: &str,
        _window: Duration,
    ) -> Result<LagReading, CloudError> {
        let why = "a drill clone's RPO is its point in time, not a lag".to_string();
        Err(crate::plan::kinds::no_copy(
            "monitoring:timeSeries.list",
            copy,
            s.home_region,
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
        let role = &SqlRestoring;
        let call = ("sqladmin:instances.clone", region);
        let read = (role.source(clouds, region, s.home, s.placement).await?).ok_or_else(|| {
            let why = format!("Cloud SQL instance {} does not exist", s.home);
            crate::plan::kinds::no_copy(call.0, s.home, region, why)
        })?;
        let point = crate::plan::kinds::restoring::decide_point(role.about(), &read.window, None)
            .map_err(|(why, _)| crate::plan::kinds::no_copy(call.0, s.home, region, why))?;
        let asked = chrono::Utc::now();
        let operation = role
            .start(clouds, region, (s.home, address), point, s.placement)
            .await?;
        Ok(Made {
            asked,
            point: point.known,
            operation,
            from: None,
        })
    }

    async fn finish(
        &self,
        _clouds: &Clouds,
        _at: (&str, &str),
        _instance: &str,
        _tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        Ok(())
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::Operation(&super::SqlOperations)
    }

    fn listing(&self, s: &Shadow<'_>) -> String {
        let project = s.home.rsplit_once('/').map_or("", |(p, _)| p);
        format!("cloud sql instances {project}")
    }

    async fn list(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Listing, CloudError> {
        let project = s.home.rsplit_once('/').map_or("", |(p, _)| p);
        let list = clouds.cloud_sql.list_sql(project).await?;
        let unreachable = (list.unreachable.iter())
            .map(|(region, why)| {
                CloudError::new(
                    "sqladmin",
                    "instances.list",
                    project,
                    region,
                    crate::cloud::ErrorKind::Server,
                    format!("Cloud SQL could not reach this region, so its instances were not listed (REGION_UNREACHABLE: {why})"),
                )
            })
            .collect();
        let copies = (list.instances.into_iter())
            .map(|i| Listed {
                region: i.region,
                address: sql_address(project, &i.name),
                name: i.name,
                tags: BTreeMap::new(),
            })
            .collect();
        Ok(Listing {
            copies,
            unreachable,
        })
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        poll: (Duration, Duration),
        deadline: std::time::Instant,
    ) -> Result<Deleted, CloudError> {
        let (p, name) = sql_names(address, ("sqladmin:instances.delete", region))?;
        let sql = clouds.cloud_sql.as_ref();
        let at = (region, p, name);
        if let Some(late) = end_under_way(sql, at, (poll, deadline)).await? {
            return Ok(late);
        }
        let op = match sql.delete_sql(region, p, name).await {
            Ok(op) => op,
            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => {
                return Ok(Deleted::Gone(format!(
                    "{name} was gone when the delete reached Cloud SQL"
                )));
            }
            Err(e) => return Err(e),
        };
        let label = format!("operation {} (DELETE of {name})", op.name);
        let done = until_done(sql, (region, p), &label, &op.name, (poll, deadline)).await?;
        Ok(match done {
            None => Deleted::Failed(format!(
                "the delete of {name} (operation {}) did not end in time; run the cleanup again",
                op.name
            )),
            Some(o) if o.error.is_some() => Deleted::Failed(format!(
                "the delete of {name} (operation {}) failed: {}",
                op.name,
                o.error.unwrap_or_default()
            )),
            Some(_) => Deleted::Asked,
        })
    }
}

/// Waits until every operation still under way on `name` (a clone, or a
/// delete, of this name) has ended: Cloud SQL refuses a delete while an
/// operation runs on the instance. Returns the removal's answer when one
/// does not end by `deadline`.
async fn end_under_way(
    sql: &dyn crate::cloud::CloudSql,
    (region, project, name): (&str, &str, &str),
    (poll, deadline): ((Duration, Duration), std::time::Instant),
) -> Result<Option<Deleted>, CloudError> {
    let under_way: Vec<String> = (sql.operations(region, project, name).await?)
        .into_iter()
        .filter(|o| !o.is_done())
        .map(|o| o.name)
        .collect();
    for op in &under_way {
        let label = format!("operation {op} on {name} to end");
        let ended = until_done(sql, (region, project), &label, op, (poll, deadline)).await?;
        if ended.is_none() {
            return Ok(Some(Deleted::Failed(format!(
                "operation {op} on {name} did not end in time; run the cleanup again"
            ))));
        }
    }
    Ok(None)
}

/// Polls Cloud SQL operation `op` (waited for as `what`) until it is
/// done; `None` when it is not by `deadline`.
async fn until_done(
    sql: &dyn crate::cloud::CloudSql,
    (region, project): (&str, &str),
    what: &str,
    op: &str,
    (poll, deadline): ((Duration, Duration), std::time::Instant),
) -> Result<Option<crate::cloud::SqlOperation>, CloudError> {
    crate::cloud::retry::poll_until(what, poll, deadline, || async {
        let o = sql.operation(region, project, op).await?;
        Ok::<_, CloudError>(o.is_done().then_some(o))
    })
    .await
}
