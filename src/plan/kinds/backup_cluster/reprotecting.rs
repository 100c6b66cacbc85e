//! A cluster backup standby's reprotection: after a failover restored the
//! cluster in the active region, every other region becomes a standby of
//! the new cluster again: a snapshot of it copied there, so that a
//! failback has something to restore from.
//!
//! Aurora replicates no backups across regions, so one manual snapshot of
//! the new cluster is taken in the active region (`CreateDBClusterSnapshot`,
//! named after the run, so a resume finds it) and copied into each other
//! region (`CopyDBClusterSnapshot`, asked of the region it goes to, under
//! the plan's key there when the data is encrypted). Later copies are the
//! team's schedule's: drctl is not one, and `status` judges their age
//! against the RPO. Only a copy taken after the point the new cluster was
//! restored to protects: an older one (the old cluster's nightly copy,
//! under the same name) holds data the new cluster moved past.
//!
//! A cluster under the plan's name in such a region (the old primary,
//! which holds data that may never have reached a snapshot) is renamed out
//! of the way, never deleted: the name must be free for the next restore.
//! Every write is sent once; a lost answer is settled by reading.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::super::reprotecting::{
    Guarded, Kept, Made, Move, Parked, ReprotectAbout, Reprotecting, Standing, first_of,
    parked_warning, payload_of, protected_parked,
};
use super::super::restoring::{RESTORE_POINT_TAG, marked_point};
use crate::cloud::{CloudError, Clouds, ClusterSnapshot, DbCluster, Restorable};

/// The data role's reprotection of a cluster backup standby.
pub struct ClusterReprotecting;

/// What a cluster backup standby's reprotection is, in words and calls.
pub const CLUSTER_REPROTECT: ReprotectAbout = ReprotectAbout {
    describe: "take a snapshot of {primary} in {active} and copy it into every other region (an old cluster there is renamed, not deleted)",
    calls: &[
        "rds:DescribeDBClusters",
        "rds:DescribeDBClusterSnapshots",
        "rds:ModifyDBCluster",
        "rds:CreateDBClusterSnapshot",
        "rds:CopyDBClusterSnapshot",
    ],
    waits: &[],
    polls: "rds:DescribeDBClusterSnapshots",
};

/// A cluster reprotection's writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum ClusterMove {
    /// Rename cluster `from` to `to`, data kept.
    Rename { from: String, to: String },
    /// Take snapshot `snapshot` of the primary.
    Snapshot { snapshot: String },
    /// Copy the snapshot `source` (its ARN) here as `target`, encrypted
    /// with `key` (a key of here; an encrypted snapshot's only).
    Copy {
        source: String,
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

/// The snapshot a reprotection of run `run_id` takes of `primary`: one per
/// run, so that a resume finds it (at most 63 characters).
pub fn snapshot_id(primary: &str, run_id: &str) -> String {
    let tag: String = (run_id.chars().rev())
        .filter(|c| c.is_ascii_alphanumeric())
        .take(4)
        .collect::<String>()
        .to_lowercase();
    let base: String = primary.chars().take(63 - 15).collect();
    format!("{}-reprotect-{tag}", base.trim_end_matches('-'))
}

/// This run's snapshot of the primary in the active region: its name, and
/// the snapshot as read under it (`None`: not taken yet).
#[derive(Debug, Clone, Copy)]
pub struct Taken<'a> {
    /// The name it takes ([`snapshot_id`]).
    pub name: &'a str,
    /// The snapshot of that name, as read.
    pub snapshot: Option<&'a ClusterSnapshot>,
}

/// One other region as read: its cluster under the plan's name and under
/// the name it is parked as, and the snapshots of the primary copied in.
pub struct Region {
    /// The cluster, now and parked.
    pub copy: Parked<DbCluster>,
    /// The primary's snapshots copied into the region.
    pub copies: Vec<Restorable>,
}

/// What one region needs, or `None` when a copy of a snapshot of the
/// primary is restorable there (pure).
fn region_next(
    primary: &DbCluster,
    active: &str,
    r: &Region,
    taken: Taken<'_>,
    key: Option<&String>,
) -> Option<Standing> {
    let c = &r.copy;
    let (id, region, parked) = (&c.id, &c.region, &c.parked_id);
    match (&c.now, &c.parked) {
        (Some(_), Some(_)) => {
            return Some(Standing::Wait(format!(
                "{id} ({region}) to be renamed to {parked}"
            )));
        }
        (Some(old), None) => {
            let rename = ClusterMove::Rename {
                from: id.clone(),
                to: parked.clone(),
            };
            let says = format!("{id} renamed {parked}, data kept: the name is the next restore's");
            let now = format!("old cluster ({})", old.status);
            let m = Move::new((id, region), "rds:ModifyDBCluster", (&now, says), &rename);
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
    let restored = marked_point(&primary.tags, RESTORE_POINT_TAG);
    let ours = |s: &&Restorable| {
        s.source == primary.id
            && s.source_region.as_deref() == Some(active)
            && restored.is_none_or(|p| s.latest.is_some_and(|l| l > p))
    };
    let mine = r.copies.iter().filter(ours);
    if mine.clone().any(|s| s.ready) {
        return None;
    }
    if let Some(s) = mine.clone().next() {
        return Some(Standing::Wait(format!(
            "snapshot {} copied into {region} to be available (now {}{})",
            s.id,
            s.status,
            s.progress.map(|p| format!(", {p}%")).unwrap_or_default()
        )));
    }
    let name = taken.name;
    let Some(snap) = taken.snapshot else {
        let says = format!(
            "a snapshot of {} now, to copy into the other regions",
            primary.id
        );
        let m = ClusterMove::Snapshot {
            snapshot: name.to_string(),
        };
        let call = "rds:CreateDBClusterSnapshot";
        let pid = primary.id.as_str();
        return Some(Standing::Act(Move::new(
            (pid, active),
            call,
            ("no snapshot", says),
            &m,
        )));
    };
    let (Some(arn), "available") = (&snap.arn, snap.status.as_str()) else {
        return Some(Standing::Wait(format!(
            "snapshot {} of {} ({active}) to be available (now {})",
            snap.id, primary.id, snap.status
        )));
    };
    if snap.encrypted && key.is_none() {
        return Some(Standing::refuse(
            format!(
                "{} is encrypted: its snapshot copied into {region} needs a KMS key of {region}, which the plan does not name",
                primary.id
            ),
            format!(
                "name one in the plan (`kms_keys = {{ {region} = \"alias/...\" }}`), or copy it by hand: aws rds copy-db-cluster-snapshot --region {region} --source-region {active} --source-db-cluster-snapshot-identifier {arn} --target-db-cluster-snapshot-identifier {name} --kms-key-id KEY_OF_{region}"
            ),
            id,
            region,
        ));
    }
    // The key only for encrypted data: RDS encrypts nothing else.
    let key = key.filter(|_| snap.encrypted).cloned();
    let under = (key.as_deref())
        .map(|k| format!(", encrypted with {k}"))
        .unwrap_or_default();
    let copy = ClusterMove::Copy {
        source: arn.clone(),
        target: name.to_string(),
        key,
    };
    let says = format!("snapshot {arn} copied here as {name}{under}");
    let call = "rds:CopyDBClusterSnapshot";
    Some(Standing::Act(Move::new(
        (id, region),
        call,
        ("no copy", says),
        &copy,
    )))
}

/// Where a cluster reprotection stands (pure): the primary must be an
/// available, standalone cluster; then what the regions that are not
/// protected need comes next.
pub fn cluster_standing(
    g: &Guarded,
    primary: Option<&DbCluster>,
    regions: &[Region],
    taken: Taken<'_>,
    made: Made<'_>,
) -> Standing {
    let (active, id) = (&g.primary.0, &g.primary.1);
    let hint = "reprotect runs after a failover to that region: `drctl status` shows where the plan serves";
    let primary = match primary {
        Some(p) if p.is_available() && p.global_cluster.is_none() => p,
        Some(p) => {
            let why = match &p.global_cluster {
                Some(gc) => format!("{id} in {active} is a member of global cluster {gc}"),
                None => format!("{id} in {active} is {}, not available", p.status),
            };
            return Standing::refuse(why, hint, id, active);
        }
        None => {
            return Standing::refuse(format!("{id} does not exist in {active}"), hint, id, active);
        }
    };
    let each = (regions.iter())
        .map(|r| region_next(primary, active, r, taken, g.keys.get(&r.copy.region)));
    if let Some(next) = first_of(each, made) {
        return next;
    }
    protected_parked(regions.iter().map(|r| &r.copy))
}

#[async_trait]
impl Reprotecting for ClusterReprotecting {
    fn about(&self) -> &'static ReprotectAbout {
        &CLUSTER_REPROTECT
    }

    async fn standing(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        run_id: &str,
        made: Made<'_>,
    ) -> Result<Standing, CloudError> {
        let aurora = &clouds.aurora;
        let (active, id) = (&g.primary.0, &g.primary.1);
        let primary = aurora.describe_cluster(active, id).await?;
        let name = snapshot_id(id, run_id);
        let snaps = aurora.cluster_snapshots(active, id).await?;
        let taken = Taken {
            name: &name,
            snapshot: snaps.iter().find(|s| s.id == name),
        };
        let mut regions = Vec::new();
        for (region, other) in &g.others {
            let read = |n: String| async move { aurora.describe_cluster(region, &n).await };
            let copy = Parked::read((region, other), run_id, read).await?;
            let copies = aurora.cluster_copies(region, id).await?;
            regions.push(Region { copy, copies });
        }
        Ok(cluster_standing(g, primary.as_ref(), &regions, taken, made))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        m: &Move,
    ) -> Result<Option<String>, CloudError> {
        let aurora = &clouds.aurora;
        match payload_of::<ClusterMove>(m)? {
            ClusterMove::Rename { from, to } => {
                aurora.rename_cluster(&m.region, &from, &to).await?
            }
            ClusterMove::Snapshot { snapshot } => {
                (aurora.snapshot_cluster(&m.region, &g.primary.1, &snapshot)).await?
            }
            ClusterMove::Copy {
                source,
                target,
                key,
            } => {
                let key = key.as_deref();
                (aurora.copy_cluster_snapshot(&m.region, &source, &target, key)).await?
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
        let read = clouds.aurora.describe_cluster(region, id).await?;
        Ok(read.map_or("absent".into(), |c| format!("cluster ({})", c.status)))
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

    const RUN: &str = "20261130T050000Z-archive-r7";

    fn cluster(id: &str, status: &str) -> DbCluster {
        let f = crate::cloud::fake::FakeCloud::new();
        f.add_cluster("r", id);
        let mut c = f.state().clusters[&("r".to_string(), id.to_string())].clone();
        c.status = status.into();
        c
    }

    fn copy(status: &str) -> Restorable {
        Restorable {
            id: snapshot_id("archive-ledger", RUN),
            source: "archive-ledger".into(),
            source_arn: None,
            source_region: Some("us-east-1".into()),
            status: status.into(),
            ready: status == "available",
            earliest: None,
            latest: None,
            kms_key_id: None,
            progress: (status != "available").then_some(40),
            engine: Some("aurora-postgresql".into()),
            engine_version: None,
        }
    }

    fn snap(status: &str, encrypted: bool) -> ClusterSnapshot {
        let id = snapshot_id("archive-ledger", RUN);
        ClusterSnapshot {
            arn: Some(format!("arn:aws:rds:us-east-1:1:cluster-snapshot:{id}")),
            id,
            cluster: "archive-ledger".into(),
            created: None,
            kind: "manual".into(),
            status: status.into(),
            encrypted,
        }
    }

    fn guarded(key: Option<&str>) -> Guarded {
        Guarded {
            primary: ("us-east-1".into(), "archive-ledger".into()),
            others: vec![("us-west-2".into(), "archive-ledger".into())],
            dr: false,
            keys: key
                .map(|k| ("us-west-2".to_string(), k.to_string()))
                .into_iter()
                .collect(),
        }
    }

    fn region(now: Option<DbCluster>, parked: Option<DbCluster>, copies: &[&str]) -> Vec<Region> {
        vec![Region {
            copy: Parked {
                region: "us-west-2".into(),
                id: "archive-ledger".into(),
                now,
                parked_id: parked_id("archive-ledger", RUN),
                parked,
            },
            copies: copies.iter().map(|s| copy(s)).collect(),
        }]
    }

    /// This run's snapshot, not taken yet.
    fn none(name: &str) -> Taken<'_> {
        Taken {
            name,
            snapshot: None,
        }
    }

    fn next(g: &Guarded, r: &[Region], taken: Option<&ClusterSnapshot>) -> Standing {
        let p = cluster("archive-ledger", "available");
        let name = snapshot_id("archive-ledger", RUN);
        let taken = Taken {
            name: &name,
            snapshot: taken,
        };
        cluster_standing(g, Some(&p), r, taken, &|_| false)
    }

    /// The old cluster is parked first (the name is the next restore's),
    /// then a snapshot of the new one is taken, waited on, copied into the
    /// old home, waited on, and the region is protected once it is there.
    #[test]
    fn the_old_cluster_is_parked_then_a_snapshot_of_the_new_one_copied_back() {
        let g = guarded(None);
        let old = cluster("archive-ledger", "available");
        let Standing::Act(m) = next(&g, &region(Some(old), None, &[]), None) else {
            panic!("a rename first")
        };
        assert_eq!(m.call, "rds:ModifyDBCluster");
        assert_eq!(
            m.parks.as_deref(),
            Some("us-west-2/archive-ledger -> archive-ledger-pre-7rev")
        );
        let parked = || Some(cluster("archive-ledger-pre-7rev", "available"));
        let Standing::Act(m) = next(&g, &region(None, parked(), &[]), None) else {
            panic!("a snapshot")
        };
        assert_eq!(
            (m.call.as_str(), m.region.as_str(), m.resource.as_str()),
            ("rds:CreateDBClusterSnapshot", "us-east-1", "archive-ledger")
        );
        let creating = snap("creating", false);
        let waits = next(&g, &region(None, parked(), &[]), Some(&creating));
        assert!(matches!(waits, Standing::Wait(_)), "{waits:?}");
        let taken = snap("available", false);
        let Standing::Act(m) = next(&g, &region(None, parked(), &[]), Some(&taken)) else {
            panic!("a copy")
        };
        assert_eq!(
            (m.call.as_str(), m.region.as_str()),
            ("rds:CopyDBClusterSnapshot", "us-west-2")
        );
        assert!(!m.payload.to_string().contains("key"), "{}", m.payload);
        let copying = next(&g, &region(None, parked(), &["copying"]), Some(&taken));
        assert!(matches!(copying, Standing::Wait(w) if w.contains("40%")));
        let done = next(&g, &region(None, parked(), &["available"]), Some(&taken));
        let Standing::Protected { parked, .. } = done else {
            panic!("protected")
        };
        assert_eq!(parked.len(), 1, "the rename is said");
    }

    /// A copy of another cluster's snapshot (the old home's own, copied
    /// the other way before) protects nothing.
    #[test]
    fn only_a_copy_of_the_new_primarys_snapshot_protects() {
        let mut r = region(None, None, &["available"]);
        r[0].copies[0].source_region = Some("us-west-2".into());
        let Standing::Act(m) = next(&guarded(None), &r, None) else {
            panic!("a snapshot")
        };
        assert_eq!(m.call, "rds:CreateDBClusterSnapshot");
    }

    /// After a failback the region's copies under the cluster's name are
    /// the old cluster's (taken before the point the new one was restored
    /// to): they protect nothing, and a snapshot of the new one is taken.
    #[test]
    fn regression_a_copy_older_than_the_new_clusters_restore_point_passed_for_protection() {
        let g = guarded(None);
        let mut p = cluster("archive-ledger", "available");
        let point = chrono::Utc::now() - chrono::Duration::hours(1);
        p.tags
            .insert(RESTORE_POINT_TAG.into(), point.timestamp().to_string());
        let name = snapshot_id("archive-ledger", RUN);
        let mut r = region(None, None, &["available"]);
        r[0].copies[0].latest = Some(point - chrono::Duration::hours(6));
        let s = cluster_standing(&g, Some(&p), &r, none(&name), &|_| false);
        assert!(
            matches!(&s, Standing::Act(m) if m.call == "rds:CreateDBClusterSnapshot"),
            "{s:?}"
        );
        r[0].copies[0].latest = Some(point + chrono::Duration::minutes(5));
        let s = cluster_standing(&g, Some(&p), &r, none(&name), &|_| false);
        assert!(matches!(s, Standing::Protected { .. }), "{s:?}");
    }

    /// An encrypted snapshot's copy needs a key of the region it goes to:
    /// refused with the command without one, copied under it with one.
    #[test]
    fn an_encrypted_snapshot_is_refused_without_a_key_of_the_region_and_copied_with_one() {
        let taken = snap("available", true);
        let r = region(None, None, &[]);
        let Standing::Refuse { hint, .. } = next(&guarded(None), &r, Some(&taken)) else {
            panic!("refused")
        };
        assert!(hint.contains("kms_keys = { us-west-2"), "{hint}");
        let g = guarded(Some("alias/drctl-rds-usw2"));
        let Standing::Act(m) = next(&g, &r, Some(&taken)) else {
            panic!("copied")
        };
        assert!(
            m.payload.to_string().contains("alias/drctl-rds-usw2"),
            "{}",
            m.payload
        );
    }

    /// A primary that is not an available standalone cluster is refused.
    #[test]
    fn reprotect_refuses_a_primary_not_available_or_in_a_global_cluster() {
        let g = guarded(None);
        let name = snapshot_id("archive-ledger", RUN);
        let r = region(None, None, &[]);
        let mut p = cluster("archive-ledger", "available");
        p.global_cluster = Some("g".into());
        let s = cluster_standing(&g, Some(&p), &r, none(&name), &|_| false);
        assert!(matches!(s, Standing::Refuse { why, .. } if why.contains("global cluster g")));
        let s = cluster_standing(&g, None, &r, none(&name), &|_| false);
        assert!(matches!(s, Standing::Refuse { why, .. } if why.contains("does not exist")));
    }

    #[test]
    fn the_snapshot_is_named_after_the_run_within_rds_limits() {
        assert_eq!(
            snapshot_id("archive-ledger", RUN),
            "archive-ledger-reprotect-7rev"
        );
        assert!(snapshot_id(&"a".repeat(63), RUN).len() <= 63);
    }
}
