//! RDS's reprotection: every other region's instance a read replica of
//! the new primary again.
//!
//! The old primary in a region still holds data (possibly writes that
//! never replicated): it is renamed out of the way (`<id>-pre-<tag>`),
//! never deleted, and a fresh replica takes the plan's id, placed where
//! the old one was (network, key, zones, class). So is a replica that
//! still follows the old primary (a third region's): it holds nothing the
//! new primary lacks, but renaming costs nothing and deletes nothing. A
//! create whose answer was lost is not repeated: the adapter reads the
//! instance before it retries a create. Unlike a failover, a
//! reprotection needs the regions it protects: that is what it writes to.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::super::reprotecting::{
    Guard, Guarded, Kept, Made, Move, Parked, ReprotectAbout, Reprotecting, Standing, first_of,
    parked_warning, parks, payload_of,
};
use crate::cloud::{CloudError, Clouds, DbInstance, DbRole, ReplicaPlacement};

/// The data role's reprotection of RDS instances.
pub struct RdsReprotecting;

/// What RDS's reprotection is, in words and calls.
pub const RDS_REPROTECT: ReprotectAbout = ReprotectAbout {
    describe: "make every other region's instance a read replica of {primary} in {active} (an old primary is renamed, not deleted)",
    calls: &[
        "rds:DescribeDBInstances",
        "rds:ModifyDBInstance",
        "rds:CreateDBInstanceReadReplica",
    ],
    waits: &["rds:CreateDBInstanceReadReplica"],
    polls: "rds:DescribeDBInstances",
};

/// One region's instance, as read: under the plan's id and under the
/// name it is parked as.
pub type RdsCopy = Parked<DbInstance>;

/// An RDS reprotection's writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum RdsMove {
    /// Rename `from` to `to`, data kept.
    Rename { from: String, to: String },
    /// Create read replica `id` of `source` (the primary's ARN), placed.
    Replica {
        id: String,
        source: String,
        placement: ReplicaPlacement,
    },
}

fn replica_of(inst: &DbInstance, primary: &DbInstance) -> bool {
    match &inst.role {
        DbRole::Replica(src) => src == &primary.arn || src == &primary.id,
        DbRole::Primary => false,
    }
}

/// What people must know of `old`, renamed out of the way: an old primary
/// takes writes on its own; a replica still follows an old primary.
fn warning_of(
    old: &DbInstance,
    (id, r, parked): (&str, &str, &str),
    primary: &DbInstance,
) -> String {
    match &old.role {
        DbRole::Primary => parked_warning(id, r, parked),
        DbRole::Replica(of) => format!(
            "{id} in {r} was renamed {parked}: it still replicates from {of}, not from {}; delete it once the new replica serves",
            primary.id
        ),
    }
}

/// What one region's copy needs, or `None` when it protects the primary
/// (pure).
fn copy_next(primary: &DbInstance, c: &RdsCopy) -> Option<Standing> {
    let (id, r, parked) = (&c.id, &c.region, &c.parked_id);
    match (&c.now, &c.parked) {
        (Some(i), _) if replica_of(i, primary) && i.is_available() => None,
        (Some(i), _) if replica_of(i, primary) => Some(Standing::Wait(format!(
            "{id} ({r}) to be an available replica of {} (now {})",
            primary.id, i.status
        ))),
        (Some(_), Some(_)) => Some(Standing::Wait(format!(
            "{id} ({r}) to be renamed to {parked}"
        ))),
        (Some(old), None) => {
            let what = match &old.role {
                DbRole::Primary => "old primary",
                DbRole::Replica(_) => "replica of an old primary",
            };
            let warning = warning_of(old, (id, r, parked), primary);
            let rename = RdsMove::Rename {
                from: id.clone(),
                to: parked.clone(),
            };
            let says = format!("{id} renamed {parked}, data kept");
            let m = Move::new((id, r), "rds:ModifyDBInstance", (what, says), &rename);
            Some(Standing::Act(m.parking((r, id, parked), warning)))
        }
        (None, Some(p)) if !p.is_available() => Some(Standing::Wait(format!(
            "{id} ({r}) to be renamed to {parked} (now {})",
            p.status
        ))),
        (None, previous) => {
            // The new replica goes where the old primary was (network,
            // key, zones, class), read under the name it is parked as.
            let placement = ReplicaPlacement::like(previous.as_ref(), primary);
            let create = RdsMove::Replica {
                id: id.clone(),
                source: primary.arn.clone(),
                placement,
            };
            let says = format!("a read replica of {}", primary.arn);
            let call = "rds:CreateDBInstanceReadReplica";
            Some(Standing::Act(Move::new(
                (id, r),
                call,
                ("absent", says),
                &create,
            )))
        }
    }
}

/// Where an RDS reprotection stands, from the primary and each region's
/// instance as read (pure): what the regions that are not protected need
/// comes next ([`first_of`]).
pub fn rds_standing(
    g: &Guarded,
    primary: Option<&DbInstance>,
    copies: &[RdsCopy],
    made: Made<'_>,
) -> Standing {
    let (active, id) = (&g.primary.0, &g.primary.1);
    let hint = "reprotect runs after a failover to that region: `drctl status` shows where the plan serves";
    let primary = match primary {
        Some(p) if p.role == DbRole::Primary => p,
        Some(_) => {
            return Standing::refuse(
                format!("{id} in {active} is not a primary"),
                hint,
                id,
                active,
            );
        }
        None => {
            return Standing::refuse(format!("{id} does not exist in {active}"), hint, id, active);
        }
    };
    if let Some(next) = first_of(copies.iter().map(|c| copy_next(primary, c)), made) {
        return next;
    }
    let guard = |c: &RdsCopy| Guard {
        region: c.region.clone(),
        address: c.id.clone(),
        endpoint: c.now.as_ref().and_then(|i| i.endpoint.clone()),
    };
    let parked = (copies.iter())
        .filter_map(|c| Some((c, c.parked.as_ref()?)))
        .map(|(c, p)| {
            let (id, r, to) = (c.id.as_str(), c.region.as_str(), c.parked_id.as_str());
            (parks(r, id, to), warning_of(p, (id, r, to), primary))
        })
        .collect();
    Standing::Protected {
        copies: copies.iter().map(guard).collect(),
        dr: None,
        parked,
    }
}

#[async_trait]
impl Reprotecting for RdsReprotecting {
    fn about(&self) -> &'static ReprotectAbout {
        &RDS_REPROTECT
    }

    async fn standing(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        run_id: &str,
        made: Made<'_>,
    ) -> Result<Standing, CloudError> {
        let db = &clouds.database;
        let primary = db.describe_instance(&g.primary.0, &g.primary.1).await?;
        let mut copies = Vec::new();
        for (region, id) in &g.others {
            let read = |name: String| async move { db.describe_instance(region, &name).await };
            copies.push(Parked::read((region, id), run_id, read).await?);
        }
        Ok(rds_standing(g, primary.as_ref(), &copies, made))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        _g: &Guarded,
        m: &Move,
    ) -> Result<Option<String>, CloudError> {
        let db = &clouds.database;
        match payload_of::<RdsMove>(m)? {
            RdsMove::Rename { from, to } => db.rename_instance(&m.region, &from, &to).await?,
            RdsMove::Replica {
                id,
                source,
                placement,
            } => {
                db.create_replica(&m.region, &id, &source, &placement)
                    .await?;
            }
        }
        Ok(None)
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }

    async fn read_one(
        &self,
        clouds: &Clouds,
        region: &str,
        id: &str,
    ) -> Result<String, CloudError> {
        super::super::reprotecting::rds_words(clouds, region, id).await
    }

    async fn kept(
        &self,
        _clouds: &Clouds,
        _g: &Guarded,
        _run_id: &str,
    ) -> Result<Vec<Kept>, CloudError> {
        // RDS keeps nothing of a former primary beside it: it is parked.
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, role: DbRole, status: &str) -> DbInstance {
        DbInstance {
            id: id.into(),
            arn: format!("arn:aws:rds:r:1:db:{id}"),
            region: "r".into(),
            engine: "postgres".into(),
            instance_class: None,
            status: status.into(),
            endpoint: None,
            port: None,
            role,
            replicas: vec![],
            backup_retention_days: 7,
            latest_restorable_time: None,
            storage_encrypted: false,
            kms_key_id: None,
            subnet_group: None,
            security_groups: vec![],
            multi_az: false,
            tags: Default::default(),
        }
    }

    fn rds_standing_(g: &Guarded, p: Option<&DbInstance>, c: &[RdsCopy]) -> Standing {
        rds_standing(g, p, c, &|_| false)
    }

    fn guarded() -> Guarded {
        Guarded {
            primary: ("us-west-2".into(), "db-usw2".into()),
            others: vec![("us-east-1".into(), "db-use1".into())],
            dr: false,
            keys: Default::default(),
        }
    }

    fn copy(now: Option<DbInstance>, parked: Option<DbInstance>) -> Vec<RdsCopy> {
        vec![RdsCopy {
            region: "us-east-1".into(),
            id: "db-use1".into(),
            now,
            parked_id: "db-use1-pre-0001".into(),
            parked,
        }]
    }

    /// The old primary is renamed, then (renamed and available) a replica
    /// takes its id where it was, then it is waited on until available.
    #[test]
    fn an_old_primary_is_parked_then_replaced_by_a_replica_of_the_new_one() {
        let g = guarded();
        let p = inst("db-usw2", DbRole::Primary, "available");
        let old = inst("db-use1", DbRole::Primary, "available");
        let Standing::Act(m) = rds_standing_(&g, Some(&p), &copy(Some(old.clone()), None)) else {
            panic!("a rename")
        };
        assert_eq!(m.call, "rds:ModifyDBInstance");
        assert_eq!(
            m.parks.as_deref(),
            Some("us-east-1/db-use1 -> db-use1-pre-0001")
        );
        assert!(m.warning.is_some());
        let renaming = copy(Some(old.clone()), Some(old.clone()));
        assert!(matches!(
            rds_standing_(&g, Some(&p), &renaming),
            Standing::Wait(_)
        ));
        let parked = inst("db-use1-pre-0001", DbRole::Primary, "modifying");
        let settling = copy(None, Some(parked.clone()));
        assert!(matches!(
            rds_standing_(&g, Some(&p), &settling),
            Standing::Wait(_)
        ));
        let parked = inst("db-use1-pre-0001", DbRole::Primary, "available");
        let Standing::Act(m) = rds_standing_(&g, Some(&p), &copy(None, Some(parked))) else {
            panic!("a create")
        };
        assert_eq!(m.call, "rds:CreateDBInstanceReadReplica");
        let replica = inst("db-use1", DbRole::Replica(p.arn.clone()), "creating");
        let making = copy(Some(replica), None);
        assert!(matches!(
            rds_standing_(&g, Some(&p), &making),
            Standing::Wait(_)
        ));
        let replica = inst("db-use1", DbRole::Replica(p.arn.clone()), "available");
        assert!(matches!(
            rds_standing_(&g, Some(&p), &copy(Some(replica), None)),
            Standing::Protected { .. }
        ));
    }

    #[test]
    fn a_primary_that_is_not_one_is_refused() {
        let g = guarded();
        let r = inst("db-usw2", DbRole::Replica("x".into()), "available");
        assert!(matches!(
            rds_standing_(&g, Some(&r), &[]),
            Standing::Refuse { .. }
        ));
        assert!(matches!(
            rds_standing_(&g, None, &[]),
            Standing::Refuse { .. }
        ));
    }
}
