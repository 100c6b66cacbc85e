//! Cloud SQL's reprotection: every other region's instance a read replica
//! of the new primary, and, for a DR pair, one of them designated its DR
//! replica, so that the next failover (or a failback's switchover) has a
//! standby to move to.
//!
//! Cloud SQL, not drctl, turns a former primary into a replica: after a
//! DR replica failover the old primary rejoins as a replica of the new one
//! once its region answers, and a switchover swaps the roles itself. An
//! existing instance cannot be made a replica through the API, and a
//! deleted instance's name stays taken for days; so the reprotection
//! never deletes or re-creates. It reads, waits for a former primary to
//! rejoin (refusing once Cloud SQL's reconfiguration of it has failed),
//! designates the DR replica (`instances.patch` of the primary's
//! `failoverDrReplicaName`: the one write, its operation followed to done,
//! a running one waited on by a resumed run), and refuses, naming the fix,
//! where only a person can act: a plain (non-DR) promotion leaves a
//! standalone old primary that a new cross-region replica must replace.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::moves::{Look, decide as find_move};
use super::sql_names;
use crate::cloud::{CloudError, Clouds, DbRole, SqlInstance, SqlOperation};
use crate::plan::kinds::reprotecting::{
    Guard, Guarded, Kept, Made, Move, ReprotectAbout, Reprotecting, Standing, role_words,
};

/// The data role's reprotection of Cloud SQL instances.
pub struct SqlReprotecting;

/// How the Cloud SQL instance at `address` (`project/instance`) in
/// `region` reads, in words (`primary (runnable)`, `absent`).
pub async fn sql_words(clouds: &Clouds, region: &str, address: &str) -> Result<String, CloudError> {
    let (project, name) = sql_names(address, (READ, region))?;
    let read = clouds.cloud_sql.describe_sql(region, project, name).await?;
    Ok(read.map_or("absent".into(), |i| {
        role_words(&i.role, &i.state.to_lowercase())
    }))
}

/// What Cloud SQL's reprotection is, in words and calls.
pub const SQL_REPROTECT: ReprotectAbout = ReprotectAbout {
    describe: "protect Cloud SQL {primary} in {active} again: every other region's instance its replica (a former primary rejoins when its region is back), a DR pair's DR replica designated",
    calls: &[
        "sqladmin:instances.get",
        "sqladmin:operations.list",
        "sqladmin:instances.patch",
    ],
    waits: &[],
    polls: "sqladmin:operations.get",
};

const READ: &str = "sqladmin:instances.get";

/// What the read says, before any operation is read (pure's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Every copy replicates from the primary (the DR replica, for a DR
    /// pair).
    Protected(Option<String>),
    /// Every copy replicates from the primary; this one (region, name) is
    /// to be designated the DR replica.
    Designate(String, String),
    /// A former primary has not rejoined yet.
    Wait(String),
    /// Only a person can protect it: the message and the fix, and the
    /// instance and region it names (`None`: the primary).
    Refuse(String, String, Option<(String, String)>),
}

/// Where the pair stands from the primary and each copy as read
/// (`(region, name, read)`, `None`: absent): pure.
pub fn decide(
    (p, active, dr_pair): (&str, &str, bool),
    primary: Option<&SqlInstance>,
    copies: &[(String, String, Option<SqlInstance>)],
) -> Base {
    match primary {
        None => {
            return Base::Refuse(
                format!("Cloud SQL {p} does not exist in {active}"),
                "reprotect runs after a failover to that region: name the region the plan now serves from".into(),
                None,
            );
        }
        Some(i) if i.role != DbRole::Primary => {
            return Base::Refuse(
                format!("Cloud SQL {p} in {active} is not a primary"),
                "reprotect runs after a failover to that region: `drctl status` shows where the plan serves".into(),
                None,
            );
        }
        Some(_) => {}
    }
    let mut dr = None;
    let mut first_replica = None;
    for (region, name, read) in copies {
        let at = || Some((name.clone(), region.clone()));
        let create = format!(
            "create a cross-region read replica of {p} in {region} (gcloud sql instances create NAME --master-instance-name={p} --region={region}) and name it in the plan"
        );
        match read.as_ref().map(|c| &c.role) {
            None => {
                return Base::Refuse(
                    format!("Cloud SQL {name} does not exist in {region}"),
                    format!("{create}: Cloud SQL keeps a deleted instance's name for days"),
                    at(),
                );
            }
            Some(DbRole::Replica(of)) if of == p => {
                if read.as_ref().is_some_and(|c| c.dr_replica) {
                    dr.get_or_insert_with(|| name.clone());
                }
                first_replica.get_or_insert((region.clone(), name.clone()));
            }
            Some(DbRole::Replica(of)) => {
                return Base::Refuse(
                    format!("Cloud SQL {name} in {region} replicates from {of}, not from {p}"),
                    format!("promote or re-point it by hand, or {create}"),
                    at(),
                );
            }
            Some(DbRole::Primary) if dr_pair => {
                return Base::Wait(format!(
                    "{name} in {region} is still a standalone primary: after a DR replica failover Cloud SQL makes the former primary a replica of {p} once {region} answers"
                ));
            }
            Some(DbRole::Primary) => {
                return Base::Refuse(
                    format!(
                        "Cloud SQL {name} in {region} is a standalone primary (the former primary of a promotion), and an existing instance cannot be made a replica"
                    ),
                    format!(
                        "keep {name} for what never replicated, {create}, then run reprotect again"
                    ),
                    at(),
                );
            }
        }
    }
    match (dr_pair, dr, first_replica) {
        (true, None, Some((region, name))) => Base::Designate(region, name),
        (true, dr, _) => Base::Protected(dr),
        (false, _, _) => Base::Protected(None),
    }
}

/// A refusal when Cloud SQL's reconfiguration of former primary `name`
/// (`RECONFIGURE_OLD_PRIMARY`, which makes it a replica after a DR
/// failover) since the primary's promotion (`since`) failed: it will not
/// rejoin. One under way, or not started (its region is down), is waited
/// for; so is any when the promotion's time is not known (an older
/// incident's failure is not this one's). Pure.
pub fn failed_rejoin(
    (project, primary): (&str, &str),
    (region, name): (&str, &str),
    since: Option<DateTime<Utc>>,
    ops: &[SqlOperation],
) -> Option<Standing> {
    let since = since?;
    let Look::Over(op) = find_move("RECONFIGURE_OLD_PRIMARY", Some(since), ops) else {
        return None;
    };
    let e = op.error.as_ref()?;
    Some(Standing::refuse(
        format!(
            "Cloud SQL's reconfiguration of the former primary {name} in {region} (operation {}) failed: {e}; it will not rejoin as a replica of {primary}",
            op.name
        ),
        format!(
            "read it with `gcloud sql operations describe {} --project {project}`; keep {name} for what never replicated, create a new cross-region replica of {primary} in {region} and name it in the plan, then run reprotect again",
            op.name
        ),
        name,
        region,
    ))
}

/// The designation's write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Designate {
    project: String,
    primary: String,
    replica: String,
}

type Read = (
    Option<SqlInstance>,
    Vec<(String, String, Option<SqlInstance>)>,
);

impl SqlReprotecting {
    async fn read(clouds: &Clouds, g: &Guarded) -> Result<(String, Read), CloudError> {
        let sql = &clouds.cloud_sql;
        let (active, address) = (&g.primary.0, &g.primary.1);
        let (project, p) = sql_names(address, (READ, active))?;
        let primary = sql.describe_sql(active, project, p).await?;
        let mut copies = Vec::new();
        for (region, address) in &g.others {
            let (_, name) = sql_names(address, (READ, region))?;
            let read = sql.describe_sql(region, project, name).await?;
            copies.push((region.clone(), name.to_string(), read));
        }
        Ok((project.to_string(), (primary, copies)))
    }

    /// A former primary still standing alone that will not rejoin, if any.
    async fn rejoin_failed(
        clouds: &Clouds,
        (project, p): (&str, &str),
        ops: &[SqlOperation],
        copies: &[(String, String, Option<SqlInstance>)],
    ) -> Result<Option<Standing>, CloudError> {
        // When the primary was promoted: its newest PROMOTE_REPLICA's time.
        let since = (ops.iter())
            .find(|o| o.kind == "PROMOTE_REPLICA")
            .and_then(|o| o.inserted);
        let alone = (copies.iter())
            .filter(|(_, _, c)| c.as_ref().is_some_and(|c| c.role == DbRole::Primary));
        for (region, name, _) in alone {
            let theirs = clouds.cloud_sql.operations(region, project, name).await?;
            let failed = failed_rejoin((project, p), (region, name), since, &theirs);
            if failed.is_some() {
                return Ok(failed);
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl Reprotecting for SqlReprotecting {
    fn about(&self) -> &'static ReprotectAbout {
        &SQL_REPROTECT
    }

    async fn standing(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        _run_id: &str,
        _made: Made<'_>,
    ) -> Result<Standing, CloudError> {
        let (project, (primary, copies)) = Self::read(clouds, g).await?;
        let active = g.primary.0.as_str();
        let p = g.primary.1.rsplit_once('/').map_or("", |(_, p)| p);
        let ops = || clouds.cloud_sql.operations(active, &project, p);
        Ok(match decide((p, active, g.dr), primary.as_ref(), &copies) {
            Base::Protected(dr) => Standing::Protected {
                copies: (copies.iter())
                    .map(|(region, name, read)| Guard {
                        region: region.clone(),
                        address: super::sql_address(&project, name),
                        endpoint: read.as_ref().and_then(|r| r.endpoint.clone()),
                    })
                    .collect(),
                dr,
                // Cloud SQL keeps a former primary itself, as a replica.
                parked: Vec::new(),
            },
            Base::Refuse(why, hint, at) => {
                let (name, region) = at.unwrap_or_else(|| (p.into(), active.into()));
                Standing::refuse(why, hint, &name, &region)
            }
            Base::Wait(why) => {
                let ops = ops().await?;
                let failed = Self::rejoin_failed(clouds, (&project, p), &ops, &copies);
                failed.await?.unwrap_or(Standing::Wait(why))
            }
            Base::Designate(region, name) => {
                // One of ours still under way (a resumed run's, or one
                // whose answer was lost) is waited on, not sent again.
                let ops = ops().await?;
                match ops.iter().find(|o| o.kind == "UPDATE" && !o.is_done()) {
                    Some(op) => Standing::Follow {
                        operation: op.name.clone(),
                        what: format!("the designation of {name} ({region}) as the DR replica"),
                        resource: p.to_string(),
                        region: active.to_string(),
                    },
                    None => {
                        let says = format!("designate {name} ({region}) its DR replica");
                        let designate = Designate {
                            project: project.clone(),
                            primary: p.to_string(),
                            replica: name,
                        };
                        let call = "sqladmin:instances.patch";
                        let now = ("no DR replica", says);
                        Standing::Act(Move::new((p, active), call, now, &designate))
                    }
                }
            }
        })
    }

    async fn make(
        &self,
        clouds: &Clouds,
        _g: &Guarded,
        m: &Move,
    ) -> Result<Option<String>, CloudError> {
        let d: Designate = crate::plan::kinds::reprotecting::payload_of(m)?;
        let op = (clouds.cloud_sql)
            .designate_dr_sql(&m.region, &d.project, &d.primary, &d.replica)
            .await?;
        Ok(Some(op.name))
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::Operation(&super::SqlOperations)
    }

    async fn read_one(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<String, CloudError> {
        sql_words(clouds, region, address).await
    }

    async fn kept(
        &self,
        _clouds: &Clouds,
        _g: &Guarded,
        _run_id: &str,
    ) -> Result<Vec<Kept>, CloudError> {
        // A former primary is kept by Cloud SQL itself, as a replica.
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIR: (&str, &str, bool) = ("sql-use4", "us-east4", true);

    fn inst(name: &str, role: DbRole, dr: bool) -> SqlInstance {
        SqlInstance {
            name: name.into(),
            region: String::new(),
            state: "RUNNABLE".into(),
            role,
            replicas: vec![],
            dr_replica: dr,
            edition: None,
            endpoint: None,
            write_endpoint: None,
            labels: Default::default(),
            backup_location: None,
        }
    }

    fn copy(role: Option<DbRole>, dr: bool) -> Vec<(String, String, Option<SqlInstance>)> {
        vec![(
            "us-central1".into(),
            "sql".into(),
            role.map(|r| inst("sql", r, dr)),
        )]
    }

    #[test]
    fn a_former_primary_is_waited_for_then_designated_then_protected() {
        let p = inst("sql-use4", DbRole::Primary, false);
        assert!(matches!(
            decide(PAIR, Some(&p), &copy(Some(DbRole::Primary), false)),
            Base::Wait(_)
        ));
        let rejoined = copy(Some(DbRole::Replica("sql-use4".into())), false);
        assert_eq!(
            decide(PAIR, Some(&p), &rejoined),
            Base::Designate("us-central1".into(), "sql".into())
        );
        let designated = copy(Some(DbRole::Replica("sql-use4".into())), true);
        assert_eq!(
            decide(PAIR, Some(&p), &designated),
            Base::Protected(Some("sql".into()))
        );
    }

    #[test]
    fn what_only_a_person_can_fix_is_refused_with_the_fix() {
        let p = inst("sql-use4", DbRole::Primary, false);
        let plain = ("sql-use4", "us-east4", false);
        // A plain promotion's old primary: never made a replica by drctl.
        let Base::Refuse(m, hint, _) = decide(plain, Some(&p), &copy(Some(DbRole::Primary), false))
        else {
            panic!("refused")
        };
        assert!(m.contains("standalone primary"), "{m}");
        assert!(hint.contains("--master-instance-name=sql-use4"), "{hint}");
        assert!(matches!(
            decide(PAIR, Some(&p), &copy(None, false)),
            Base::Refuse(..)
        ));
        let replica = inst("sql-use4", DbRole::Replica("sql".into()), true);
        assert!(matches!(
            decide(PAIR, Some(&replica), &copy(Some(DbRole::Primary), false)),
            Base::Refuse(..)
        ));
        assert!(matches!(decide(PAIR, None, &[]), Base::Refuse(..)));
    }
}
