//! An Aurora global database's reprotection: every other region's member
//! a secondary of the cluster that now writes.
//!
//! After a switchover, or a managed failover once the old writer's region
//! is back, AWS has done it: the old writer rejoined as a secondary. The
//! reprotection finds that, and says what AWS kept of the old writer after
//! an unplanned failover (its `rds:unplanned-global-failover-...`
//! snapshot, which expires with the cluster's backup retention).
//!
//! After a detach the writer is a standalone cluster, and the global
//! cluster it left still holds the other members, the old writer among
//! them (still writable, with whatever never replicated). It then
//! rebuilds: each old member leaves the old global cluster and is renamed
//! out of the way (`<id>-pre-<tag>`: renamed, never deleted, as RDS parks
//! an old primary), secondaries first (a global cluster's writer leaves
//! last); the empty global cluster is deleted and made again, under the
//! plan's id, from the cluster that writes; and a new, headless secondary
//! (storage replication needs no instance) takes each member's id.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::super::reprotecting::{
    Guard, Guarded, Kept, Made, Move, Parked, ReprotectAbout, Reprotecting, Standing, first_of,
    parked_id, parked_warning, parks, payload_of,
};
use super::global_names;
use crate::cloud::{CloudError, Clouds, DbCluster, GlobalCluster};

/// The data role's reprotection of Aurora global databases.
pub struct AuroraReprotecting;

/// What an Aurora global database's reprotection is, in words and calls.
pub const AURORA_REPROTECT: ReprotectAbout = ReprotectAbout {
    describe: "protect the global database again from its writer {primary} (global cluster/writer) in {active}: every other member a secondary (after a detach: old members renamed, the global cluster made again)",
    calls: &[
        "rds:DescribeGlobalClusters",
        "rds:DescribeDBClusters",
        "rds:RemoveFromGlobalCluster",
        "rds:ModifyDBCluster",
        "rds:DeleteGlobalCluster",
        "rds:CreateGlobalCluster",
        "rds:CreateDBCluster",
        "rds:DescribeDBClusterSnapshots",
    ],
    waits: &["rds:CreateDBCluster"],
    polls: "rds:DescribeDBClusters",
};

const READ: &str = "rds:DescribeDBClusters";

/// One region's member, as read: under the plan's id and under the name
/// it is parked as.
pub type Member = Parked<DbCluster>;

/// A global database as a reprotection reads it.
#[derive(Debug, Clone)]
pub struct AuroraRead {
    /// The global cluster's id.
    pub global_id: String,
    /// The cluster that writes, in the active region.
    pub writer: Option<DbCluster>,
    /// The global cluster, read in the active region.
    pub global: Option<GlobalCluster>,
    /// Every other region's member.
    pub members: Vec<Member>,
}

/// An Aurora reprotection's writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AuroraMove {
    /// Take member `arn` out of global cluster `global`.
    Leave { global: String, arn: String },
    /// Rename `from` to `to`, data kept.
    Rename { from: String, to: String },
    /// Delete the empty global cluster.
    DeleteGlobal { global: String },
    /// Make the global cluster again from the writer `source`.
    CreateGlobal { global: String, source: String },
    /// Make `id` a new, headless secondary of `global`.
    Secondary {
        id: String,
        global: String,
        engine: String,
    },
}

/// What a member in the way needs to be out of it (pure): to leave the
/// global cluster, to settle, to be renamed, or nothing (`None`: nothing
/// under its id).
fn park_next(m: &Member, gid: &str) -> Option<Standing> {
    let (id, r, parked) = (&m.id, &m.region, &m.parked_id);
    match (&m.now, &m.parked) {
        (Some(c), _) if c.global_cluster.is_some() => {
            let leave = AuroraMove::Leave {
                global: gid.into(),
                arn: c.arn.clone(),
            };
            let says = (c.status.as_str(), format!("{id} leaves {gid}, data kept"));
            let call = "rds:RemoveFromGlobalCluster";
            Some(Standing::Act(Move::new((id, r), call, says, &leave)))
        }
        (Some(c), _) if !c.is_available() => Some(Standing::Wait(format!(
            "{id} ({r}) to settle out of {gid} (now {})",
            c.status
        ))),
        (Some(_), Some(_)) => Some(Standing::Wait(format!(
            "{id} ({r}) to be renamed to {parked}"
        ))),
        (Some(_), None) => {
            let rename = AuroraMove::Rename {
                from: id.clone(),
                to: parked.clone(),
            };
            let says = ("standalone", format!("{id} renamed {parked}, data kept"));
            let m = Move::new((id, r), "rds:ModifyDBCluster", says, &rename);
            Some(Standing::Act(
                m.parking((r, id, parked), parked_warning(id, r, parked)),
            ))
        }
        (None, Some(p)) if !p.is_available() => Some(Standing::Wait(format!(
            "{id} ({r}) to be renamed to {parked} (now {})",
            p.status
        ))),
        (None, _) => None,
    }
}

/// What a member of a global cluster that the writer writes for needs
/// (pure): nothing, a wait, to be parked (a standalone cluster under its
/// id), or a new secondary.
fn join_next(m: &Member, g: &GlobalCluster, writer: &DbCluster) -> Option<Standing> {
    let (id, r) = (&m.id, &m.region);
    let waiting = |why: &str| Some(Standing::Wait(format!("{id} ({r}) {why}")));
    match (g.member(r, id), &m.now) {
        (Some(_), Some(c)) if c.is_available() => None,
        (Some(_), _) => waiting(&format!("to be an available secondary of {}", writer.id)),
        (None, Some(c)) => match c.global_cluster.as_deref() {
            None => park_next(m, &g.id),
            Some(other) if !other.eq_ignore_ascii_case(&g.id) => Some(Standing::refuse(
                format!(
                    "{id} in {r} is a member of global cluster {other}, not of {}",
                    g.id
                ),
                format!(
                    "remove it from {other} (or name another cluster for {r} in the plan), then run reprotect again"
                ),
                id,
                r,
            )),
            Some(_) => waiting(&format!("to join {}", g.id)),
        },
        (None, None) => park_next(m, &g.id).or_else(|| {
            let make = AuroraMove::Secondary {
                id: id.clone(),
                global: g.id.clone(),
                engine: writer.engine.clone(),
            };
            let says = ("absent", format!("a headless secondary of {}", g.id));
            Some(Standing::Act(Move::new(
                (id, r),
                "rds:CreateDBCluster",
                says,
                &make,
            )))
        }),
    }
}

/// After a detach (pure): every old member parked (secondaries first: a
/// global cluster's writer leaves last), then the global cluster deleted
/// (empty) and made again from the writer.
fn rebuild_next(read: &AuroraRead, writer: &DbCluster, active: &str) -> Standing {
    let gid = &read.global_id;
    // Members the plan does not name are refused before anything moves:
    // AWS keeps the old writer in while any secondary is attached.
    let named = |m: &crate::cloud::GlobalMember| {
        (read.members.iter()).any(|x| x.region == m.region && x.id.eq_ignore_ascii_case(&m.id))
    };
    let others: Vec<String> = (read.global.iter().flat_map(|g| &g.members))
        .filter(|m| !named(m))
        .map(|m| format!("{}/{}", m.region, m.id))
        .collect();
    if !others.is_empty() {
        return Standing::refuse(
            format!(
                "global cluster {gid} has members the plan does not name: {}",
                others.join(", ")
            ),
            "remove them from the global cluster (or name them in the plan), then run reprotect again",
            gid,
            active,
        );
    }
    let mut order: Vec<&Member> = read.members.iter().collect();
    if let Some(old) = read.global.as_ref().and_then(GlobalCluster::writer) {
        order.sort_by_key(|m| m.region == old.region && m.id.eq_ignore_ascii_case(&old.id));
    }
    if let Some(next) = order.iter().find_map(|m| park_next(m, gid)) {
        return next;
    }
    let Some(old) = &read.global else {
        let make = AuroraMove::CreateGlobal {
            global: gid.clone(),
            source: writer.arn.clone(),
        };
        let says = ("absent", format!("made again from {}", writer.id));
        return Standing::Act(Move::new(
            (gid, active),
            "rds:CreateGlobalCluster",
            says,
            &make,
        ));
    };
    if !old.members.is_empty() {
        // Named members still leaving: their park waits them out.
        return Standing::Wait(format!("every member to leave {gid}"));
    }
    let delete = AuroraMove::DeleteGlobal {
        global: gid.clone(),
    };
    let says = (
        "empty",
        "deleted, to be made again from the writer".to_string(),
    );
    Standing::Act(Move::new(
        (gid, active),
        "rds:DeleteGlobalCluster",
        says,
        &delete,
    ))
}

/// Every member a secondary: the copies, and those found parked.
fn protected(read: &AuroraRead) -> Standing {
    let gid = &read.global_id;
    Standing::Protected {
        copies: (read.members.iter())
            .map(|m| Guard {
                region: m.region.clone(),
                address: format!("{gid}/{}", m.id),
                endpoint: m.now.as_ref().and_then(|c| c.reader_endpoint.clone()),
            })
            .collect(),
        dr: None,
        parked: (read.members.iter())
            .filter(|m| m.parked.is_some())
            .map(|m| {
                let (id, r, to) = (&m.id, &m.region, &m.parked_id);
                (parks(r, id, to), parked_warning(id, r, to))
            })
            .collect(),
    }
}

/// Whether a global cluster is between states: being made or deleted,
/// or moving its writer.
fn settling(g: &GlobalCluster) -> bool {
    const PASSING: &[&str] = &[
        "creating",
        "deleting",
        "modifying",
        "failing-over",
        "switching-over",
        "upgrading",
    ];
    g.moving.is_some() || PASSING.contains(&g.status.as_str())
}

/// Where an Aurora reprotection stands, as read (pure); `made` says which
/// moves the step made already.
pub fn aurora_standing(g: &Guarded, read: &AuroraRead, made: Made<'_>) -> Standing {
    let (active, gid) = (&g.primary.0, &read.global_id);
    let w = g.primary.1.split_once('/').map_or("", |(_, w)| w);
    let writer = match &read.writer {
        Some(c) if c.is_available() => c,
        // A passing state (modifying, backing up, maintenance): waited out.
        Some(c) => {
            return Standing::Wait(format!(
                "cluster {w} in {active} to be available (now {})",
                c.status
            ));
        }
        None => {
            return Standing::refuse(
                format!("cluster {w} does not exist in {active}"),
                "reprotect runs after a failover to that region",
                w,
                active,
            );
        }
    };
    let global = read.global.as_ref();
    // A global cluster being made, deleted or moving its writer is waited
    // out before anything is written (a re-run after a crash finds it so).
    if let Some(gl) = global.filter(|gl| settling(gl)) {
        return Standing::Wait(format!(
            "global cluster {gid} to settle (now {})",
            gl.status
        ));
    }
    match global.and_then(|gl| gl.member(active, w).map(|m| (gl, m.writer))) {
        // Not in the global cluster: detached (standalone, or its detach
        // still settling, which the rebuild's reads wait out).
        None => rebuild_next(read, writer, active),
        Some((_, false)) => Standing::refuse(
            format!("{w} in {active} is a secondary of {gid}, not its writer"),
            "reprotect runs from the region the plan serves from (drctl status)",
            w,
            active,
        ),
        Some((gl, true)) => {
            let each = read.members.iter().map(|m| join_next(m, gl, writer));
            first_of(each, made).unwrap_or_else(|| protected(read))
        }
    }
}

#[async_trait]
impl Reprotecting for AuroraReprotecting {
    fn about(&self) -> &'static ReprotectAbout {
        &AURORA_REPROTECT
    }

    async fn standing(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        run_id: &str,
        made: Made<'_>,
    ) -> Result<Standing, CloudError> {
        let aurora = &clouds.aurora;
        let active = g.primary.0.as_str();
        let (gid, w) = global_names(&g.primary.1, (READ, active))?;
        let mut read = AuroraRead {
            global_id: gid.to_string(),
            writer: aurora.describe_cluster(active, w).await?,
            global: aurora.describe_global(active, gid).await?,
            members: Vec::new(),
        };
        for (region, address) in &g.others {
            let (_, id) = global_names(address, (READ, region))?;
            let describe =
                |name: String| async move { aurora.describe_cluster(region, &name).await };
            read.members
                .push(Parked::read((region, id), run_id, describe).await?);
        }
        Ok(aurora_standing(g, &read, made))
    }

    async fn make(
        &self,
        clouds: &Clouds,
        _g: &Guarded,
        m: &Move,
    ) -> Result<Option<String>, CloudError> {
        let (aurora, r) = (&clouds.aurora, m.region.as_str());
        match payload_of::<AuroraMove>(m)? {
            AuroraMove::Leave { global, arn } => aurora.detach_cluster(r, &global, &arn).await?,
            AuroraMove::Rename { from, to } => aurora.rename_cluster(r, &from, &to).await?,
            AuroraMove::DeleteGlobal { global } => aurora.delete_global(r, &global).await?,
            AuroraMove::CreateGlobal { global, source } => {
                aurora.create_global(r, &global, &source).await?;
            }
            AuroraMove::Secondary { id, global, engine } => {
                aurora.create_secondary(r, &id, &global, &engine).await?;
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
        address: &str,
    ) -> Result<String, CloudError> {
        let (_, id) = global_names(address, (READ, region))?;
        let read = clouds.aurora.describe_cluster(region, id).await?;
        Ok(read.map_or("absent".into(), |c| {
            let of = c.global_cluster.as_deref().unwrap_or("standalone");
            format!("{} ({of})", c.status)
        }))
    }

    async fn kept(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        run_id: &str,
    ) -> Result<Vec<Kept>, CloudError> {
        let mut out: Vec<Kept> = Vec::new();
        for (r, address) in &g.others {
            let (_, id) = global_names(address, (READ, r))?;
            let parked = parked_id(id, run_id);
            for name in [id, parked.as_str()] {
                let snaps = clouds.aurora.cluster_snapshots(r, name).await?;
                let failovers =
                    (snaps.iter()).filter(|s| s.id.starts_with("rds:unplanned-global-failover-"));
                for s in failovers {
                    let at = format!("{r}/{}", s.id);
                    if out.iter().any(|k| k.at == at) {
                        continue;
                    }
                    out.push(Kept {
                        at,
                        warning: format!(
                            "snapshot {} of {name} in {r} holds what never replicated before an unplanned failover; it is an automated snapshot and expires with the cluster's backup retention: copy it (rds copy-db-cluster-snapshot) to keep it",
                            s.id
                        ),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::GlobalMember;

    fn cluster(region: &str, id: &str, global: Option<&str>) -> DbCluster {
        DbCluster {
            id: id.into(),
            arn: format!("arn:aws:rds:{region}:1:cluster:{id}"),
            region: region.into(),
            engine: "aurora-postgresql".into(),
            status: "available".into(),
            endpoint: None,
            reader_endpoint: None,
            global_cluster: global.map(str::to_string),
            backup_retention_days: 1,
            tags: Default::default(),
            members: vec![],
        }
    }

    fn member(region: &str, id: &str, writer: bool) -> GlobalMember {
        GlobalMember {
            arn: format!("arn:aws:rds:{region}:1:cluster:{id}"),
            writer,
            region: region.into(),
            id: id.into(),
        }
    }

    /// After a detach: the writer us-east-1's, the old global cluster
    /// still holding us-west-2's old writer (and `extra`).
    fn detached(status: &str, extra: bool) -> (Guarded, AuroraRead) {
        let g = Guarded {
            primary: ("us-east-1".into(), "og/w-use1".into()),
            others: vec![("us-west-2".into(), "og/w-usw2".into())],
            dr: false,
            keys: Default::default(),
        };
        let mut members = vec![member("us-west-2", "w-usw2", true)];
        if extra {
            members.push(member("ap-southeast-1", "w-apse1", false));
        }
        let read = AuroraRead {
            global_id: "og".into(),
            writer: Some(cluster("us-east-1", "w-use1", None)),
            global: Some(GlobalCluster {
                id: "og".into(),
                arn: "arn:og".into(),
                status: status.into(),
                endpoint: None,
                members,
                moving: None,
            }),
            members: vec![Member {
                region: "us-west-2".into(),
                id: "w-usw2".into(),
                now: Some(cluster("us-west-2", "w-usw2", Some("og"))),
                parked_id: "w-usw2-pre-0001".into(),
                parked: None,
            }],
        };
        (g, read)
    }

    /// A global cluster between states (a re-run right after a create or a
    /// delete) is waited out; members the plan does not name are refused
    /// before anything moves; otherwise the old writer leaves first.
    #[test]
    fn a_settling_global_cluster_is_waited_out_and_unnamed_members_refused_first() {
        let none = |_: &Move| false;
        let (g, read) = detached("creating", false);
        assert!(matches!(
            aurora_standing(&g, &read, &none),
            Standing::Wait(_)
        ));
        let (g, read) = detached("available", true);
        let Standing::Refuse { why, .. } = aurora_standing(&g, &read, &none) else {
            panic!("refused")
        };
        assert!(why.contains("ap-southeast-1/w-apse1"), "{why}");
        let (g, read) = detached("available", false);
        let Standing::Act(m) = aurora_standing(&g, &read, &none) else {
            panic!("a move")
        };
        assert_eq!(m.call, "rds:RemoveFromGlobalCluster");
    }

    /// With the writer writing for the global cluster, a member in another
    /// global cluster is refused, naming it; one joining this one is
    /// waited for.
    #[test]
    fn a_member_of_another_global_cluster_is_refused() {
        let none = |_: &Move| false;
        let (g, mut read) = detached("available", false);
        if let Some(gl) = read.global.as_mut() {
            gl.members = vec![member("us-east-1", "w-use1", true)];
        }
        read.writer = Some(cluster("us-east-1", "w-use1", Some("og")));
        read.members[0].now = Some(cluster("us-west-2", "w-usw2", Some("elsewhere")));
        let Standing::Refuse { why, region, .. } = aurora_standing(&g, &read, &none) else {
            panic!("refused")
        };
        assert!(why.contains("elsewhere") && region == "us-west-2", "{why}");
        read.members[0].now = Some(cluster("us-west-2", "w-usw2", Some("og")));
        assert!(matches!(
            aurora_standing(&g, &read, &none),
            Standing::Wait(_)
        ));
    }

    /// A writer in a passing state is waited for, not refused.
    #[test]
    fn a_writer_not_available_yet_is_waited_for() {
        let none = |_: &Move| false;
        let (g, mut read) = detached("available", false);
        if let Some(w) = read.writer.as_mut() {
            w.status = "modifying".into();
        }
        assert!(matches!(
            aurora_standing(&g, &read, &none),
            Standing::Wait(_)
        ));
    }
}
