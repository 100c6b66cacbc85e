//! A backup standby's reprotection: after a failover restored the data in
//! the active region, every other region becomes a backup standby of the
//! new primary again: the new primary's automated backups replicated into
//! it, so that a failback has something to restore from.
//!
//! An instance under the plan's name in such a region (the old primary,
//! which holds data that may never have reached the backups) is renamed
//! out of the way, never deleted: the name must be free for the next
//! restore there. The replication is asked of the region it goes to
//! (`StartDBInstanceAutomatedBackupsReplication`); a request whose answer
//! was lost is settled by reading the backups there, never sent twice.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::super::reprotecting::{
    Guarded, Kept, Made, Move, Parked, ReprotectAbout, Reprotecting, Standing, first_of,
    parked_warning, payload_of, protected_parked, role_words,
};
use crate::cloud::{CloudError, Clouds, DbInstance, DbRole, Restorable};

/// The data role's reprotection of a backup standby.
pub struct BackupReprotecting;

/// What a backup standby's reprotection is, in words and calls.
pub const BACKUP_REPROTECT: ReprotectAbout = ReprotectAbout {
    describe: "replicate the automated backups of {primary} in {active} into every other region (an old primary there stops replicating into {active} and is renamed, not deleted)",
    calls: &[
        "rds:DescribeDBInstances",
        "rds:DescribeDBInstanceAutomatedBackups",
        "rds:StopDBInstanceAutomatedBackupsReplication",
        "rds:ModifyDBInstance",
        "rds:StartDBInstanceAutomatedBackupsReplication",
    ],
    waits: &[],
    polls: "rds:DescribeDBInstanceAutomatedBackups",
};

/// How long the replicated backups are kept: RDS's default retention for
/// a new instance's backups, within the 1 to 35 days the call takes.
const RETENTION_DAYS: i32 = 7;

/// A backup standby's reprotection writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum BackupMove {
    /// Rename `from` to `to`, data kept.
    Rename { from: String, to: String },
    /// Replicate the backups of `source` (the primary's ARN) here,
    /// encrypted with `key` (a key of here; an encrypted primary's only).
    Replicate {
        source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// Stop replicating the backups of `source` (an old primary's ARN)
    /// here.
    Stop { source: String },
}

/// One region as read: its instance under the plan's name and under the
/// name it is parked as, the backups replicated into it, and what still
/// replicates from it into the active region.
pub struct Region {
    /// The instance, now and parked.
    pub copy: Parked<DbInstance>,
    /// The backups replicated into the region of the primary's name.
    pub backups: Vec<Restorable>,
    /// The backups the region's old primary still replicates into the
    /// active region (under the plan's name there: they would pass for
    /// the next standby's, older data looking fresh).
    pub stale: Vec<Restorable>,
}

/// What one region needs, or `None` when it is a backup standby of the
/// primary (pure).
fn region_next(
    primary: &DbInstance,
    active: &str,
    r: &Region,
    key: Option<&String>,
) -> Option<Standing> {
    let c = &r.copy;
    let (id, region, parked) = (&c.id, &c.region, &c.parked_id);
    let live = |b: &&Restorable| b.status != "retained";
    if let Some(source) = r.stale.iter().find(live).and_then(|b| b.source_arn.clone()) {
        let says = format!(
            "no more backups of {source} replicated into {active} (those there kept): the old primary's backups must not pass for the new one's"
        );
        let stop = BackupMove::Stop { source };
        let call = "rds:StopDBInstanceAutomatedBackupsReplication";
        let m = Move::new((id, active), call, ("replicating", says), &stop);
        return Some(Standing::Act(m));
    }
    match (&c.now, &c.parked) {
        (Some(_), Some(_)) => {
            return Some(Standing::Wait(format!(
                "{id} ({region}) to be renamed to {parked}"
            )));
        }
        (Some(old), None) => {
            let what = match &old.role {
                DbRole::Primary => "old primary",
                DbRole::Replica(_) => "a replica in the way",
            };
            let rename = BackupMove::Rename {
                from: id.clone(),
                to: parked.clone(),
            };
            let says = format!("{id} renamed {parked}, data kept: the name is the next restore's");
            let m = Move::new((id, region), "rds:ModifyDBInstance", (what, says), &rename);
            let warning = parked_warning(id, region, parked);
            return Some(Standing::Act(m.parking((region, id, parked), warning)));
        }
        (None, Some(p)) if !p.is_available() => {
            return Some(Standing::Wait(format!(
                "{id} ({region}) to be renamed to {parked} (now {})",
                p.status
            )));
        }
        (None, _) => {}
    }
    // The primary's own: by its ARN where RDS says it, else its name and
    // region.
    let ours = |b: &&Restorable| match &b.source_arn {
        Some(arn) => *arn == primary.arn,
        None => b.source == primary.id && b.source_region.as_deref() == Some(active),
    };
    let live = (r.backups.iter())
        .filter(ours)
        .find(|b| b.status != "retained");
    match live {
        Some(b) if b.ready => None,
        Some(b) => Some(Standing::Wait(format!(
            "the backups of {} replicated into {region} to be restorable (now {})",
            primary.id, b.status
        ))),
        None if primary.storage_encrypted && key.is_none() => Some(Standing::refuse(
            format!(
                "{} is encrypted: its backups replicated into {region} need a KMS key of {region}, which the plan does not name",
                primary.id
            ),
            format!(
                "name one in the plan (`kms_keys = {{ {region} = \"alias/...\" }}`), or start it by hand: aws rds start-db-instance-automated-backups-replication --region {region} --source-db-instance-arn {} --kms-key-id KEY_OF_{region}",
                primary.arn
            ),
            id,
            region,
        )),
        None => {
            // The key only for encrypted data: RDS encrypts nothing else.
            let key = key.filter(|_| primary.storage_encrypted).cloned();
            let under = (key.as_deref())
                .map(|k| format!(", encrypted with {k}"))
                .unwrap_or_default();
            let replicate = BackupMove::Replicate {
                source: primary.arn.clone(),
                key,
            };
            let says = format!(
                "the automated backups of {} replicated here, kept {RETENTION_DAYS} days{under}",
                primary.arn
            );
            let call = "rds:StartDBInstanceAutomatedBackupsReplication";
            let m = Move::new((id, region), call, ("no backups", says), &replicate);
            Some(Standing::Act(m))
        }
    }
}

/// Where a backup standby's reprotection stands (pure): the primary must
/// be one; then what the regions that are not protected need comes next.
pub fn backup_standing(
    g: &Guarded,
    primary: Option<&DbInstance>,
    regions: &[Region],
    made: Made<'_>,
) -> Standing {
    let (active, id) = (&g.primary.0, &g.primary.1);
    let hint = "reprotect runs after a failover to that region: `drctl status` shows where the plan serves";
    let primary = match primary {
        Some(p) if p.role == DbRole::Primary && p.is_available() => p,
        Some(p) => {
            let why = format!("{id} in {active} is {}", role_words(&p.role, &p.status));
            return Standing::refuse(why, hint, id, active);
        }
        None => {
            return Standing::refuse(format!("{id} does not exist in {active}"), hint, id, active);
        }
    };
    let each =
        (regions.iter()).map(|r| region_next(primary, active, r, g.keys.get(&r.copy.region)));
    if let Some(next) = first_of(each, made) {
        return next;
    }
    protected_parked(regions.iter().map(|r| &r.copy))
}

#[async_trait]
impl Reprotecting for BackupReprotecting {
    fn about(&self) -> &'static ReprotectAbout {
        &BACKUP_REPROTECT
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
        let mut regions = Vec::new();
        for (region, id) in &g.others {
            let read = |name: String| async move { db.describe_instance(region, &name).await };
            let copy = Parked::read((region, id), run_id, read).await?;
            let backups = db.replicated_backups(region, &g.primary.1).await?;
            let from_here = |b: &Restorable| b.source_region.as_deref() == Some(region);
            let stale = (db.replicated_backups(&g.primary.0, id).await?)
                .into_iter()
                .filter(from_here)
                .collect();
            regions.push(Region {
                copy,
                backups,
                stale,
            });
        }
        Ok(backup_standing(g, primary.as_ref(), &regions, made))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        _g: &Guarded,
        m: &Move,
    ) -> Result<Option<String>, CloudError> {
        let db = &clouds.database;
        match payload_of::<BackupMove>(m)? {
            BackupMove::Rename { from, to } => db.rename_instance(&m.region, &from, &to).await?,
            BackupMove::Replicate { source, key } => {
                let (region, days) = (&m.region, RETENTION_DAYS);
                (db.replicate_backups(region, &source, days, key.as_deref())).await?
            }
            BackupMove::Stop { source } => {
                (db.stop_replicating_backups(&m.region, &source)).await?
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

    async fn kept(&self, _: &Clouds, _: &Guarded, _: &str) -> Result<Vec<Kept>, CloudError> {
        // Nothing is kept beside a former primary: it is parked.
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::kinds::reprotecting::parked_id;

    fn inst(id: &str, role: DbRole, status: &str) -> DbInstance {
        let f = crate::cloud::fake::FakeCloud::new();
        f.add_primary("r", id);
        let mut i = f.state().databases[&("r".to_string(), id.to_string())].clone();
        (i.role, i.status) = (role, status.into());
        i
    }

    fn backups(status: &str) -> Restorable {
        Restorable {
            id: "arn:aws:rds:us-west-2:1:auto-backup:ab-x".into(),
            source: "archive-db".into(),
            source_arn: None,
            source_region: Some("us-east-1".into()),
            status: status.into(),
            ready: status != "pending",
            earliest: None,
            latest: None,
            kms_key_id: None,
            progress: None,
            engine: None,
            engine_version: None,
        }
    }

    fn guarded() -> Guarded {
        Guarded {
            primary: ("us-east-1".into(), "archive-db".into()),
            others: vec![("us-west-2".into(), "archive-db".into())],
            dr: false,
            keys: Default::default(),
        }
    }

    fn region(now: Option<DbInstance>, parked: Option<DbInstance>, b: &[&str]) -> Vec<Region> {
        vec![Region {
            copy: Parked {
                region: "us-west-2".into(),
                id: "archive-db".into(),
                now,
                parked_id: parked_id("archive-db", "run-0001"),
                parked,
            },
            backups: b.iter().map(|s| backups(s)).collect(),
            stale: Vec::new(),
        }]
    }

    fn next(p: &DbInstance, r: &[Region]) -> Standing {
        backup_standing(&guarded(), Some(p), r, &|_| false)
    }

    /// The old primary is parked first (the name is the next restore's),
    /// then the new primary's backups are replicated into its region,
    /// waited on while pending, protected once replicating; backups
    /// retained from before (the old home's own) count for nothing.
    #[test]
    fn the_old_primary_is_parked_then_the_new_primarys_backups_replicated_back() {
        let p = inst("archive-db", DbRole::Primary, "available");
        let old = inst("archive-db", DbRole::Primary, "available");
        let Standing::Act(m) = next(&p, &region(Some(old.clone()), None, &[])) else {
            panic!("a rename first")
        };
        assert_eq!(m.call, "rds:ModifyDBInstance");
        assert_eq!(
            m.parks.as_deref(),
            Some("us-west-2/archive-db -> archive-db-pre-1000")
        );
        let parked = inst("archive-db-pre-1000", DbRole::Primary, "available");
        let Standing::Act(m) = next(&p, &region(None, Some(parked.clone()), &["retained"])) else {
            panic!("a replication")
        };
        assert_eq!(m.call, "rds:StartDBInstanceAutomatedBackupsReplication");
        assert_eq!(m.region, "us-west-2");
        let pending = region(None, Some(parked.clone()), &["pending"]);
        assert!(matches!(next(&p, &pending), Standing::Wait(_)));
        let live = region(None, Some(parked), &["replicating"]);
        let Standing::Protected { parked, .. } = next(&p, &live) else {
            panic!("protected")
        };
        assert_eq!(parked.len(), 1, "the rename is said");
    }

    /// The old primary's backups still replicating into the active region
    /// carry the plan's name there: they are stopped first (asked of the
    /// active region), or the next failover back could restore them,
    /// older data under a fresh point.
    #[test]
    fn the_old_primarys_replication_into_the_active_region_is_stopped_first() {
        let p = inst("archive-db", DbRole::Primary, "available");
        let old = inst("archive-db", DbRole::Primary, "available");
        let mut r = region(Some(old), None, &[]);
        let stale = Restorable {
            source_arn: Some("arn:aws:rds:us-west-2:1:db:archive-db".into()),
            source_region: Some("us-west-2".into()),
            ..backups("replicating")
        };
        r[0].stale = vec![stale.clone()];
        let Standing::Act(m) = next(&p, &r) else {
            panic!("a stop first")
        };
        assert_eq!(
            (m.call.as_str(), m.region.as_str()),
            ("rds:StopDBInstanceAutomatedBackupsReplication", "us-east-1")
        );
        r[0].stale = vec![Restorable {
            status: "retained".into(),
            ..stale
        }];
        let Standing::Act(m) = next(&p, &r) else {
            panic!("then the rename")
        };
        assert_eq!(m.call, "rds:ModifyDBInstance");
    }

    /// An encrypted primary's backups need a key of the region they go
    /// to: without one in the plan's `kms_keys`, refused with the command;
    /// with one, replicated under it. An unencrypted primary's are sent
    /// with no key whatever the plan names.
    #[test]
    fn an_encrypted_primary_is_refused_without_a_key_of_the_region_and_replicated_with_one() {
        let mut p = inst("archive-db", DbRole::Primary, "available");
        p.storage_encrypted = true;
        let Standing::Refuse { hint, .. } = next(&p, &region(None, None, &[])) else {
            panic!("refused")
        };
        assert!(hint.contains("kms_keys = { us-west-2"), "{hint}");
        assert!(hint.contains("--kms-key-id"), "{hint}");
        let mut g = guarded();
        g.keys
            .insert("us-west-2".into(), "alias/archive-usw2".into());
        let made = |p: &DbInstance| {
            let Standing::Act(m) =
                backup_standing(&g, Some(p), &region(None, None, &[]), &|_| false)
            else {
                panic!("a replication")
            };
            payload_of::<BackupMove>(&m).unwrap()
        };
        let BackupMove::Replicate { key, .. } = made(&p) else {
            panic!("a replication")
        };
        assert_eq!(key.as_deref(), Some("alias/archive-usw2"));
        p.storage_encrypted = false;
        let BackupMove::Replicate { key, .. } = made(&p) else {
            panic!("a replication")
        };
        assert_eq!(key, None);
        let busy = inst("archive-db", DbRole::Primary, "creating");
        assert!(matches!(
            next(&busy, &region(None, None, &[])),
            Standing::Refuse { .. }
        ));
    }
}
