//! `[[global_database]]`: an Aurora Global Database, named by its global
//! cluster and its member cluster in each region, failed over by moving
//! the global writer to the target's member through the data role's one
//! `promote` step ([`AuroraPromoting`]): a switchover when the run is
//! planned, a managed failover with data loss allowed when not, a detach
//! when that failover is refused.
//!
//! Its copies are the member clusters: the writer is the primary, every
//! other member a replica of it. A secondary's RPO is read from the
//! `AuroraGlobalDBRPOLag` it publishes (else `AuroraGlobalDBReplicationLag`),
//! by the same gate and the same rule as an RDS replica's `ReplicaLag`; a
//! record that `follows` it points at the target member's writer endpoint.
//! A plan that would rather use the global writer endpoint (which AWS moves
//! with the writer) names it in a record that does not follow.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::drilling::{
    CopySeen, CopyStage, Deleted, DrillAbout, Drilling, LagOf, Listing, Made, Refusable, Shadow,
};
use super::promoting::{Candidate, MovePath, Operation, PromoteAbout, Promoting, Started};
use super::{Copies, CopyState, Kind, Resource, RpoSource, Shown};
use crate::cloud::{CloudError, Clouds, DbCluster, DbRole, GlobalCluster, LagReading};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

mod reprotecting;

/// A `[[global_database]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalDatabaseSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// The global cluster's identifier.
    pub global_cluster: String,
    /// Engine, for people (`aurora-postgresql`, `aurora-mysql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// The member DB cluster's identifier per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

impl Kind for GlobalDatabaseSpec {
    const KEYS: &'static [&'static str] = &["id", "global_cluster", "engine", "regions", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Data(super::DataRole {
        restoring: None,
        promoting: Some(&AuroraPromoting),
        drilling: Some(&AuroraDrilling),
        reprotecting: Some(&reprotecting::AuroraReprotecting),
    });
}

/// Whether `name` is an RDS cluster identifier: 1 to 63 letters, digits or
/// hyphens, starting with a letter, no two hyphens in a row, not ending
/// with one.
pub fn valid_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !name.contains("--")
        && !name.ends_with('-')
}

impl Resource for GlobalDatabaseSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "global_database {:<15} {} (member of {}{})",
            self.id,
            self.regions[region],
            self.global_cluster,
            self.engine
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        let hint =
            "1 to 63 letters, digits or hyphens, starting with a letter (as RDS names clusters)";
        if !valid_identifier(&self.global_cluster) {
            s.error(
                path!["global_cluster"],
                format!(
                    "global_database `{}`: `{}` is not a global cluster identifier",
                    self.id, self.global_cluster
                ),
                hint,
            );
        }
        s.region_values(
            (&self.id, &self.regions),
            valid_identifier,
            ("a DB cluster identifier", hint),
        );
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Data(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        if w.fake.state().globals.contains_key(&self.global_cluster) {
            return;
        }
        let home = w.home;
        let mut members: Vec<(&str, &str)> = (self.regions.get(home).into_iter())
            .map(|id| (home, id.as_str()))
            .collect();
        members.extend(
            (self.regions.iter())
                .filter(|(r, _)| *r != home)
                .map(|(r, id)| (r.as_str(), id.as_str())),
        );
        w.fake.add_global(&self.global_cluster, &members);
        for (region, id) in members.iter().skip(1) {
            w.fake.set_lag(region, id, &[1.0]);
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        vec![format!("global:{}", self.global_cluster)]
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        self.global_cluster.push_str(tag);
        for v in self.regions.values_mut() {
            v.push_str(tag);
        }
    }
}

const GLOBAL_DATABASE_COPIES: super::CopiesAbout = super::CopiesAbout {
    section: "global databases",
    read_call: "rds:DescribeDBClusters",
    maintenance_call: Some(super::RDS_MAINTENANCE),
    metric: "AuroraGlobalDBRPOLag",
    lag_call: "cloudwatch:GetMetricData",
    point: false,
};

#[async_trait]
impl Copies for GlobalDatabaseSpec {
    fn about(&self) -> &'static super::CopiesAbout {
        &GLOBAL_DATABASE_COPIES
    }

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        Some(self)
    }

    fn copy(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(String::as_str)
    }

    /// Addressed `global/cluster`: a move is the global cluster's, to the
    /// member.
    fn copy_at(&self, region: &str) -> Option<(String, String)> {
        let member = self.copy(region)?;
        Some((
            region.to_string(),
            format!("{}/{member}", self.global_cluster),
        ))
    }

    /// Every secondary of a global database takes over its writer's role
    /// (a managed failover, or a switchover when planned).
    fn dr_replica(&self) -> bool {
        true
    }

    fn restores(&self) -> bool {
        false
    }

    fn placement(&self, _region: &str) -> super::restoring::Placement {
        super::restoring::Placement::default()
    }

    /// The member cluster, and its role as the global cluster (read in the
    /// same region) says: the writer, or a secondary of it; a cluster no
    /// longer in the global cluster (detached) is a primary of its own.
    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<CopyState>, CloudError> {
        let Some(id) = self.copy(region) else {
            return Ok(None);
        };
        let Some(c) = clouds.aurora.describe_cluster(region, id).await? else {
            return Ok(None);
        };
        let role = match &c.global_cluster {
            None => DbRole::Primary,
            Some(_) => {
                let g = clouds
                    .aurora
                    .describe_global(region, &self.global_cluster)
                    .await?;
                match g.as_ref().and_then(|g| Some((g, g.member(region, id)?))) {
                    Some((_, m)) if m.writer => DbRole::Primary,
                    Some((g, _)) => DbRole::Replica(
                        g.writer()
                            .map(|w| w.arn.clone())
                            .unwrap_or_else(|| g.arn.clone()),
                    ),
                    // Its global cluster does not list it: detached.
                    None => DbRole::Primary,
                }
            }
        };
        Ok(Some(CopyState {
            role,
            status: c.status,
            endpoint: c.endpoint,
            notes: Vec::new(),
            moves_with_primary: false,
            own_names: Vec::new(),
            restored_by: None,
        }))
    }

    async fn maintenance(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<Vec<String>>, CloudError> {
        let Some(id) = self.copy(region) else {
            return Ok(None);
        };
        let of = crate::cloud::MaintenanceOf::Cluster;
        let mut said = super::rds_maintenance(clouds, region, of, Some(id)).await?;
        // The cluster filter lists the cluster's own actions only: those
        // on its instances (an OS update) are read per instance.
        let members: Vec<String> = (clouds.aurora.describe_cluster(region, id).await?)
            .map(|c| c.members)
            .unwrap_or_default();
        for m in members {
            let of = crate::cloud::MaintenanceOf::Instance;
            let found = super::rds_maintenance(clouds, region, of, Some(&m)).await?;
            (said.get_or_insert_with(Vec::new))
                .extend((found.into_iter().flatten()).map(|n| format!("instance {m}: {n}")));
        }
        Ok(said)
    }
}

#[async_trait]
impl RpoSource for GlobalDatabaseSpec {
    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let Some(id) = self.copy(region) else {
            let why = format!(
                "global_database {} has no member cluster in {region}",
                self.id
            );
            return Err(super::no_copy(self.about().lag_call, &self.id, region, why));
        };
        clouds.metrics.cluster_lag(region, id, window).await
    }
}

/// The data role's move of an Aurora global database's writer to the
/// target's member, asked of the target's region only (never the home
/// region, which may be down): `SwitchoverGlobalCluster` when planned (the
/// secondaries catch up first; nothing is lost), `FailoverGlobalCluster`
/// with data loss allowed when not, and, when AWS refuses that failover
/// (the global cluster's state, an engine that does not support it),
/// `RemoveFromGlobalCluster` of the member, which then writes on its own
/// ([`Promoting::fallback`]). A move answers no operation: the global
/// cluster's read says one under way and when it is over.
pub struct AuroraPromoting;

/// What a global database's move is, in words and calls.
const AURORA_PROMOTE: PromoteAbout = PromoteAbout {
    noun: "aurora cluster",
    replica: "global database secondary",
    ready: "available",
    metric: "AuroraGlobalDBRPOLag",
    promote_call: "rds:FailoverGlobalCluster",
    switchover_call: Some("rds:SwitchoverGlobalCluster"),
    missing_hint: "fix the member's id in the plan, or add a secondary cluster of the global database in the region",
    designate: "every member of a global database is a standby",
    inspect_operation: "aws rds describe-global-clusters --global-cluster-identifier {operation}",
    detach_call: Some("rds:RemoveFromGlobalCluster"),
    warnings: &[
        (
            MovePath::DrFailover,
            "after an unplanned failover AWS keeps a snapshot of the old writer's volume (rds:unplanned-global-failover-...) in its region when it comes back; it expires with that cluster's backup retention: copy it to keep what never replicated (drctl reprotect records its name) (old writer {source})",
        ),
        (
            MovePath::Detach,
            "{instance} in {region} was detached from its global cluster and writes on its own: the global cluster must be rebuilt toward the other regions (drctl reprotect)",
        ),
    ],
    calls: &[
        "rds:DescribeDBClusters",
        "rds:DescribeGlobalClusters",
        "cloudwatch:GetMetricData",
        "rds:FailoverGlobalCluster",
    ],
    waits: &["rds:FailoverGlobalCluster"],
    polls: "rds:DescribeGlobalClusters",
};

/// `global/cluster` as its two names, or an error naming `call`.
fn global_names<'a>(
    address: &'a str,
    (call, region): (&'static str, &str),
) -> Result<(&'a str, &'a str), CloudError> {
    match address.split_once('/') {
        Some((g, c)) if valid_identifier(g) && valid_identifier(c) => Ok((g, c)),
        _ => Err(super::bad_address(call, address, region, "global/cluster")),
    }
}

/// The member `c` (cluster `c_id` of global cluster `g_id`) as a move
/// reads it, from the global cluster's read in its region (pure): the
/// writer with no move under way is the primary; a member found standalone
/// was detached before; a global cluster that cannot be read, is missing,
/// does not list the member or moves its writer elsewhere blocks the move
/// (but an unanswered read: a failover is still tried, a planned
/// switchover cannot be).
fn member_candidate(
    (g_id, c_id, r): (&str, &str, &str),
    c: DbCluster,
    global: Result<Option<GlobalCluster>, CloudError>,
) -> Candidate {
    let mut out = Candidate {
        role: DbRole::Primary,
        ready: c.is_available(),
        state: c.status.clone(),
        dr_designated: true,
        blocked: None,
        switch_blocked: None,
        detached: false,
        endpoint: c.endpoint.clone(),
        port: None,
        kept: serde_json::json!({ "arn": c.arn }),
    };
    let standalone = c.global_cluster.is_none();
    let read = match global {
        Ok(read) => read,
        Err(e) if e.kind.is_transient() => {
            out.detached = standalone;
            if !standalone {
                // Its writer is not known: what it followed is unknown.
                out.role = DbRole::Replica(String::new());
                out.switch_blocked = Some((
                    format!("a planned switchover of {g_id} needs the global cluster's API, which does not answer in {r}: {}", e.summary()),
                    "fail over without --planned (a managed failover or a detach, within the tier's RPO), or retry when the API answers".into(),
                ));
            }
            return out;
        }
        Err(e) => {
            return blocked(
                out,
                format!(
                    "global cluster {g_id} could not be read in {r}: {}",
                    e.summary()
                ),
                "check the credentials' rds:DescribeGlobalClusters permission (terraform/iam.tf)",
            );
        }
    };
    let member = read.as_ref().and_then(|g| g.member(r, c_id));
    match (&read, member) {
        // Standalone: detached before (a global cluster that still lists
        // it as a secondary has not caught up yet).
        (_, None) if standalone => out.detached = true,
        (Some(_), Some(m)) if standalone && !m.writer => out.detached = true,
        (None, _) => {
            return blocked(
                out,
                format!("global cluster {g_id} does not exist (asked in {r}), yet {c_id} names it"),
                "fix the global cluster's id in the plan; a cluster being detached names it for a moment: resume in a minute",
            );
        }
        (Some(_), None) => {
            let names = c.global_cluster.as_deref().unwrap_or_default();
            return blocked(
                out,
                format!(
                    "cluster {c_id} in {r} is not a member of global cluster {g_id}, yet reports one ({names})"
                ),
                "a detach may be under way: resume in a minute; otherwise fix the plan",
            );
        }
        (Some(g), Some(m)) => return as_member(out, (g_id, c_id), g, m),
    }
    out
}

/// `out`, member `m` of global cluster `g` (pure): the primary when it
/// writes with no move under way; blocked while the writer moves
/// elsewhere; else a secondary of the writer a move leaves, or of the
/// writer listed (never itself; unknown when none is).
fn as_member(
    mut out: Candidate,
    (g_id, c_id): (&str, &str),
    g: &GlobalCluster,
    m: &crate::cloud::GlobalMember,
) -> Candidate {
    let moving = g.moving.as_ref();
    if let Some(mv) = moving.filter(|mv| mv.to.as_deref() != Some(&m.arn)) {
        let to = mv.to.as_deref().unwrap_or("?");
        return blocked(
            out,
            format!(
                "global cluster {g_id} is moving its writer to {to} ({}), not to {c_id}",
                mv.status
            ),
            "another operator or AWS is moving it: wait until it is done, then look at `drctl status` before failing over again",
        );
    }
    if !m.writer || moving.is_some() {
        let from = moving.and_then(|mv| mv.from.clone());
        let writer = (g.writer().filter(|w| w.arn != m.arn)).map(|w| w.arn.clone());
        out.role = DbRole::Replica(from.or(writer).unwrap_or_default());
    }
    out
}

/// `out`, blocked for `message` with `hint`: never the primary (a wait
/// until it writes does not end on it).
fn blocked(mut out: Candidate, message: String, hint: &str) -> Candidate {
    out.role = DbRole::Replica(String::new());
    out.blocked = Some((message, hint.to_string()));
    out
}

/// A global cluster's move to member `arn` under way, as an operation.
fn move_to(g: &GlobalCluster, arn: &str) -> Option<Operation> {
    let mv = g
        .moving
        .as_ref()
        .filter(|mv| mv.to.as_deref() == Some(arn))?;
    Some(Operation {
        name: g.id.clone(),
        kind: mv.status.clone(),
        path: Some(match mv.data_loss_allowed {
            true => MovePath::DrFailover,
            false => MovePath::Switchover,
        }),
        inserted: None,
        done: false,
        error: None,
    })
}

#[async_trait]
impl Promoting for AuroraPromoting {
    fn about(&self) -> &'static PromoteAbout {
        &AURORA_PROMOTE
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<Candidate>, CloudError> {
        let (g, c) = global_names(address, ("rds:DescribeDBClusters", region))?;
        let Some(cluster) = clouds.aurora.describe_cluster(region, c).await? else {
            return Ok(None);
        };
        let global = clouds.aurora.describe_global(region, g).await;
        Ok(Some(member_candidate((g, c, region), cluster, global)))
    }

    async fn under_way(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<Operation>, CloudError> {
        let (g, c) = global_names(address, ("rds:DescribeGlobalClusters", region))?;
        // A global cluster that does not answer says nothing under way:
        // the move is tried (the read said why it may be refused).
        let Ok(Some(global)) = clouds.aurora.describe_global(region, g).await else {
            return Ok(None);
        };
        let arn = global.member(region, c).map(|m| m.arn.clone());
        Ok(arn.and_then(|arn| move_to(&global, &arn)))
    }

    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let (_, c) = global_names(address, ("cloudwatch:GetMetricData", region))?;
        clouds.metrics.cluster_lag(region, c, window).await
    }

    /// Only a refusal (the global cluster's state, an operation it does not
    /// support) detaches: a call that went unanswered fails the step, to be
    /// tried again, never an irreversible detach on a blip.
    fn fallback(&self, path: MovePath, refused: &CloudError) -> Option<MovePath> {
        (refused.kind == crate::cloud::ErrorKind::Client)
            .then(|| self.may_fall_back(path))
            .flatten()
    }

    fn may_fall_back(&self, path: MovePath) -> Option<MovePath> {
        (path == MovePath::DrFailover).then_some(MovePath::Detach)
    }

    async fn start(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        path: MovePath,
        known: &Candidate,
    ) -> Result<Started, CloudError> {
        let (g, c) = global_names(address, (AURORA_PROMOTE.promote_call, region))?;
        let arn = match known.kept["arn"].as_str() {
            Some(arn) => arn.to_string(),
            None => (clouds.aurora.describe_cluster(region, c).await?)
                .map(|c| c.arn)
                .ok_or_else(|| {
                    let why = format!("cluster {c} is gone");
                    super::no_copy(AURORA_PROMOTE.promote_call, c, region, why)
                })?,
        };
        let aurora = &clouds.aurora;
        match path {
            MovePath::Switchover => aurora.switchover_global(region, g, &arn).await?,
            MovePath::Detach => {
                // The failover refused may be a move that ended between
                // the reads: a member that writes, or that a move is
                // under way to, is never detached.
                let now = aurora.describe_global(region, g).await?;
                let member = now.as_ref().and_then(|n| n.member(region, c));
                let moved = member.is_some_and(|m| {
                    m.writer || now.as_ref().and_then(|n| move_to(n, &m.arn)).is_some()
                });
                if !moved {
                    aurora.detach_cluster(region, g, &arn).await?;
                }
            }
            MovePath::Promote | MovePath::DrFailover | MovePath::Already => {
                aurora.failover_global(region, g, &arn).await?
            }
        }
        Ok(Started::Pending)
    }

    async fn operation(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
        op: &str,
    ) -> Result<Operation, CloudError> {
        let (_, c) = global_names(address, ("rds:DescribeGlobalClusters", region))?;
        let global = clouds.aurora.describe_global(region, op).await?;
        let arn = (global.as_ref())
            .and_then(|g| g.member(region, c))
            .map(|m| m.arn.clone());
        let under_way = global
            .as_ref()
            .zip(arn)
            .and_then(|(g, arn)| move_to(g, &arn));
        Ok(under_way.unwrap_or(Operation {
            name: op.to_string(),
            kind: "move".into(),
            path: None,
            inserted: None,
            done: true,
            error: None,
        }))
    }
}

/// The class of a drill copy's writer instance: the smallest
/// memory-optimized class Aurora global databases take for both engines.
/// The drill measures how long the target's side takes to serve from a
/// copy of its data, not the copy's performance, and the plan names no
/// class.
pub const WRITER_CLASS: &str = "db.r6g.large";

/// The data role's drill copy of Aurora global databases. A switchover
/// moves production's writer (users move twice, and back), so a shadow
/// drill rehearses the target's side on a copy: the global cluster's
/// secondary in the target is cloned (`RestoreDBClusterToPointInTime`,
/// copy-on-write, latest restorable time) into a standalone cluster
/// tagged with the drill's run, and a writer instance is added to it
/// (Aurora clones a volume, never its instances). No member of the global
/// cluster is changed: the secondary is only read, and its clone is no
/// member. The RPO is the secondary's lag right before the clone
/// (`AuroraGlobalDBRPOLag`, else `AuroraGlobalDBReplicationLag`): the copy
/// holds what the secondary had.
pub struct AuroraDrilling;

/// What an Aurora drill copy is, in words and calls.
pub const AURORA_DRILL: DrillAbout = DrillAbout {
    noun: "drill copy",
    describe: "clone {standby} ({region}, a secondary of the global cluster) into a drill copy, read its lag, add a writer and check the copy is writable ({standby} and every member of the global cluster are not touched)",
    make_call: "rds:RestoreDBClusterToPointInTime",
    made: "a copy-on-write clone of the secondary, standalone, tagged with the drill's run",
    finish_call: Some("rds:CreateDBInstance"),
    makes: Some("writer"),
    finished: "the copy with its writer available (deleted with it at cleanup)",
    delete_call: "rds:DeleteDBCluster",
    read_call: "DescribeDBClusters",
    deleted: "deleted with its instances",
    manual: "aws rds describe-db-clusters --region {region} --db-cluster-identifier {name} (its DBClusterMembers), then for each member aws rds delete-db-instance --region {region} --db-instance-identifier INSTANCE --skip-final-snapshot, then aws rds delete-db-cluster --region {region} --db-cluster-identifier {name} --skip-final-snapshot",
    lag_of: LagOf::Source,
    lag_call: "cloudwatch:GetMetricData",
    from_standby: true,
    measured: "Aurora global lag (AuroraGlobalDBRPOLag, else AuroraGlobalDBReplicationLag) of the secondary {source} ({region}) right before it was cloned into the drill's copy {copy}",
    tagged: true,
    calls: &[
        "rds:DescribeDBClusters",
        "rds:DescribeGlobalClusters",
        "cloudwatch:GetMetricData",
        "rds:RestoreDBClusterToPointInTime",
        "rds:DescribeDBInstances",
        "rds:CreateDBInstance",
    ],
    waits: &["rds:RestoreDBClusterToPointInTime", "rds:CreateDBInstance"],
    polls: "rds:DescribeDBClusters",
};

/// What to do about a secondary that cannot be cloned.
const SOURCE_HINT: &str = "drill to a region where the global cluster has an available secondary (`drctl status` shows each member's role), or fix the member cluster ids in the plan";

/// Why the member `member` of global cluster `global` in `region` cannot
/// be cloned by a drill, as read (`cluster`: the member's own read, `g`: the
/// global cluster's through `region`); `None` when it can: it exists, is a
/// secondary of `global`, and is available. Pure.
pub fn source_problem(
    (global, member): (&str, &str),
    region: &str,
    cluster: Option<&DbCluster>,
    g: Option<&GlobalCluster>,
) -> Option<String> {
    let Some(cluster) = cluster else {
        return Some(format!(
            "member cluster {member} of global cluster {global} does not exist in {region}"
        ));
    };
    let Some(g) = g else {
        return Some(format!(
            "global cluster {global} does not exist (read through {region}), so {member} in {region} is no secondary of it"
        ));
    };
    match g.member(region, member) {
        None => Some(format!(
            "cluster {member} in {region} is not a member of global cluster {global} (detached?): a shadow drill clones a secondary of it"
        )),
        Some(m) if m.writer => Some(format!(
            "cluster {member} in {region} is the writer of global cluster {global}: a shadow drill clones a secondary, and the target's member is the writer"
        )),
        Some(_) if !cluster.is_available() => Some(format!(
            "cluster {member} in {region} (a secondary of {global}) is {}, not available",
            cluster.status
        )),
        Some(_) => None,
    }
}

/// Where a drill copy `c` stands, with its writer `writer` as read (pure):
/// a copy that joined a global cluster can never be written.
pub fn copy_stage(c: &DbCluster, writer: Option<&crate::cloud::DbInstance>) -> CopyStage {
    if let Some(g) = &c.global_cluster {
        return CopyStage::Broken(format!(
            "the drill copy {} in {} reports membership of global cluster {g}: a clone must be a standalone cluster (the provider joined it to its source's; cleanup removes it, check the global cluster's members)",
            c.id, c.region
        ));
    }
    match (c.is_available(), c.members.is_empty(), writer) {
        (false, true, _) => CopyStage::Making { operation: None },
        (true, true, _) => CopyStage::Made,
        (true, false, Some(w)) if w.is_available() => CopyStage::Writable {
            endpoint: c.endpoint.clone(),
            port: w.port,
        },
        _ => CopyStage::Finishing,
    }
}

#[async_trait]
impl Drilling for AuroraDrilling {
    fn about(&self) -> &'static DrillAbout {
        &AURORA_DRILL
    }

    fn base<'a>(&self, s: &Shadow<'a>) -> &'a str {
        s.standby.split_once('/').map_or(s.standby, |(_, c)| c)
    }

    fn place(&self, s: &Shadow<'_>, name: &str) -> (String, String) {
        (s.region.to_string(), name.to_string())
    }

    async fn source(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Refusable, CloudError> {
        let t = s.region;
        let (g_id, member) = global_names(s.standby, ("rds:DescribeDBClusters", t))?;
        let cluster = clouds.aurora.describe_cluster(t, member).await?;
        let g = match &cluster {
            Some(_) => clouds.aurora.describe_global(t, g_id).await?,
            None => None,
        };
        Ok(
            match source_problem((g_id, member), t, cluster.as_ref(), g.as_ref()) {
                Some(why) => Err((why, SOURCE_HINT.into())),
                None => Ok(format!(
                    "available, a secondary of {g_id} (the drill clones it)"
                )),
            },
        )
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<CopySeen>, CloudError> {
        let Some(c) = clouds.aurora.describe_cluster(region, address).await? else {
            return Ok(None);
        };
        let writer = match c.members.first() {
            Some(w) => clouds.database.describe_instance(region, w).await?,
            None => None,
        };
        let stage = copy_stage(&c, writer.as_ref());
        Ok(Some(CopySeen {
            tags: c.tags,
            status: c.status,
            stage,
        }))
    }

    async fn lag(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        _copy: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let t = s.region;
        let (_, member) = global_names(s.standby, ("cloudwatch:GetMetricData", t))?;
        clouds.metrics.cluster_lag(t, member, window).await
    }

    async fn make(
        &self,
        clouds: &Clouds,
        s: &Shadow<'_>,
        (region, address): (&str, &str),
        tags: &BTreeMap<String, String>,
    ) -> Result<Made, CloudError> {
        let call = ("rds:RestoreDBClusterToPointInTime", region);
        let (_, member) = global_names(s.standby, call)?;
        let asked = chrono::Utc::now();
        (clouds.aurora)
            .clone_cluster(region, member, address, tags)
            .await?;
        Ok(Made {
            asked,
            point: None,
            operation: None,
            from: None,
        })
    }

    async fn finish(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        instance: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        // A writer sent by an earlier attempt whose member the copy does
        // not list yet is not asked for again.
        if let Some(w) = clouds.database.describe_instance(region, instance).await? {
            return match super::drilling::same_drill(tags, &w.tags) {
                true => Ok(()),
                false => Err(CloudError::new(
                    "rds",
                    "CreateDBInstance",
                    instance,
                    region,
                    crate::cloud::ErrorKind::Precondition,
                    format!(
                        "database {instance} in {region} exists but is not the writer of the drill's copy {address}"
                    ),
                )),
            };
        }
        let c = (clouds.aurora.describe_cluster(region, address).await?).ok_or_else(|| {
            let why = format!("the drill copy {address} is gone from {region}");
            super::no_copy("rds:CreateDBInstance", address, region, why)
        })?;
        (clouds.aurora)
            .add_writer(region, address, instance, &c.engine, WRITER_CLASS, tags)
            .await
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }

    fn listing(&self, s: &Shadow<'_>) -> String {
        format!("aurora clusters {}", s.region)
    }

    async fn list(&self, clouds: &Clouds, s: &Shadow<'_>) -> Result<Listing, CloudError> {
        let listed = clouds.aurora.list_clusters(s.region).await?;
        let each = listed.into_iter().map(|c| (c.id, c.tags));
        Ok(Listing::tagged(s.region, each))
    }

    async fn delete(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        _poll: (Duration, Duration),
        _deadline: std::time::Instant,
    ) -> Result<Deleted, CloudError> {
        super::gone_or_asked(
            clouds.aurora.delete_cluster(region, address).await,
            address,
            "RDS",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{ErrorKind, GlobalMember, GlobalMove};
    use crate::plan::kinds::promoting::{Decision, Move, decide};

    fn cluster(global: Option<&str>) -> DbCluster {
        DbCluster {
            id: "orders-use1".into(),
            arn: "arn:aws:rds:us-east-1:1:cluster:orders-use1".into(),
            region: "us-east-1".into(),
            engine: "aurora-postgresql".into(),
            status: "available".into(),
            endpoint: Some("orders-use1.cluster-x.us-east-1.rds.amazonaws.com".into()),
            reader_endpoint: None,
            global_cluster: global.map(str::to_string),
            backup_retention_days: 7,
            tags: Default::default(),
            members: Vec::new(),
        }
    }

    fn global(target_writes: bool, moving: Option<GlobalMove>) -> GlobalCluster {
        let m = |region: &str, id: &str, writer| GlobalMember {
            arn: format!("arn:aws:rds:{region}:1:cluster:{id}"),
            writer,
            region: region.into(),
            id: id.into(),
        };
        GlobalCluster {
            id: "orders-global".into(),
            arn: "g".into(),
            status: "available".into(),
            endpoint: None,
            members: vec![
                m("us-west-2", "orders-usw2", !target_writes),
                m("us-east-1", "orders-use1", target_writes),
            ],
            moving,
        }
    }

    const AT: (&str, &str, &str) = ("orders-global", "orders-use1", "us-east-1");

    /// What the one promote step decides for the member read so.
    fn decided(
        c: DbCluster,
        g: Result<Option<GlobalCluster>, CloudError>,
        planned: bool,
    ) -> Decision {
        let read = member_candidate(AT, c, g);
        let m = Move {
            about: &AURORA_PROMOTE,
            address: "orders-global/orders-use1",
            region: "us-east-1",
            dr_replica: true,
            planned,
        };
        decide(&m, Some(&read), None)
    }

    fn error(kind: ErrorKind) -> CloudError {
        CloudError::new(
            "rds",
            "DescribeGlobalClusters",
            "orders-global",
            "us-east-1",
            kind,
            "no",
        )
    }

    #[test]
    fn a_secondary_fails_over_unplanned_and_switches_over_planned_and_a_writer_is_done() {
        let secondary = || Ok(Some(global(false, None)));
        let act = |d: Decision| match d {
            Decision::Act { path, .. } => Some(path),
            _ => None,
        };
        assert_eq!(
            act(decided(cluster(Some("g")), secondary(), false)),
            Some(MovePath::DrFailover)
        );
        assert_eq!(
            act(decided(cluster(Some("g")), secondary(), true)),
            Some(MovePath::Switchover)
        );
        let d = decided(cluster(Some("g")), Ok(Some(global(true, None))), false);
        assert!(
            matches!(
                d,
                Decision::Done {
                    path: MovePath::Already,
                    ..
                }
            ),
            "{d:?}"
        );
        // Standalone: detached before, whether the global API answers or not.
        let mut without = global(false, None);
        without.members.retain(|m| m.id != "orders-use1");
        for g in [Ok(Some(without)), Err(error(ErrorKind::Connection))] {
            let d = decided(cluster(None), g, false);
            assert!(
                matches!(
                    d,
                    Decision::Done {
                        path: MovePath::Detach,
                        ..
                    }
                ),
                "{d:?}"
            );
        }
    }

    #[test]
    fn an_unanswered_global_read_tries_the_managed_failover_and_a_planned_run_refuses() {
        let unanswered = || Err(error(ErrorKind::Connection));
        let d = decided(cluster(Some("g")), unanswered(), false);
        assert!(
            matches!(
                d,
                Decision::Act {
                    path: MovePath::DrFailover,
                    ..
                }
            ),
            "{d:?}"
        );
        let Decision::Refuse { message, hint } = decided(cluster(Some("g")), unanswered(), true)
        else {
            panic!("a planned switchover needs the API");
        };
        assert!(
            message.contains("needs the global cluster's API"),
            "{message}"
        );
        assert!(hint.contains("without --planned"), "{hint}");
    }

    #[test]
    fn a_refused_read_a_missing_global_a_stranger_or_a_move_elsewhere_refuses() {
        let refused = decided(cluster(Some("g")), Err(error(ErrorKind::Client)), false);
        assert!(
            matches!(&refused, Decision::Refuse { hint, .. } if hint.contains("rds:DescribeGlobalClusters")),
            "{refused:?}"
        );
        let missing = decided(cluster(Some("g")), Ok(None), false);
        assert!(
            matches!(&missing, Decision::Refuse { message, .. } if message.contains("does not exist")),
            "{missing:?}"
        );
        let mut other = global(false, None);
        other.members.retain(|m| m.id != "orders-use1");
        let stranger = decided(cluster(Some("g")), Ok(Some(other)), false);
        assert!(
            matches!(&stranger, Decision::Refuse { message, .. } if message.contains("is not a member")),
            "{stranger:?}"
        );
        let elsewhere = GlobalMove {
            status: "failing-over".into(),
            from: None,
            to: Some("arn:aws:rds:eu-west-1:1:cluster:orders-euw1".into()),
            data_loss_allowed: true,
        };
        let d = decided(
            cluster(Some("g")),
            Ok(Some(global(false, Some(elsewhere)))),
            false,
        );
        assert!(
            matches!(&d, Decision::Refuse { message, .. } if message.contains("not to orders-use1")),
            "{d:?}"
        );
    }

    #[test]
    fn a_move_to_the_target_is_an_operation_under_way_until_the_writer_settles() {
        let toward = GlobalMove {
            status: "switching-over".into(),
            from: None,
            to: Some("arn:aws:rds:us-east-1:1:cluster:orders-use1".into()),
            data_loss_allowed: false,
        };
        // Even with the target listed as writer mid-move, it is not the
        // primary until the move is over.
        let g = global(true, Some(toward));
        let read = member_candidate(AT, cluster(Some("g")), Ok(Some(g.clone())));
        assert!(matches!(read.role, DbRole::Replica(_)), "{read:?}");
        let op = move_to(&g, "arn:aws:rds:us-east-1:1:cluster:orders-use1").expect("a move");
        assert_eq!((op.path, op.done), (Some(MovePath::Switchover), false));
        assert_eq!(
            move_to(&g, "arn:aws:rds:us-west-2:1:cluster:orders-usw2"),
            None
        );
    }

    #[test]
    fn an_address_is_global_then_cluster_and_anything_else_is_refused_before_a_call() {
        let at = ("rds:DescribeDBClusters", "us-east-1");
        assert_eq!(
            global_names("orders-global/orders-use1", at).unwrap(),
            ("orders-global", "orders-use1")
        );
        for bad in [
            "orders-use1",
            "orders-global/",
            "/orders-use1",
            "a/b/c",
            "orders_global/x",
        ] {
            assert!(global_names(bad, at).is_err(), "{bad}");
        }
    }

    #[test]
    fn cluster_identifiers_follow_rds_rules() {
        for ok in ["orders-global", "a", "orders-use1", &"a".repeat(63)] {
            assert!(valid_identifier(ok), "{ok}");
        }
        for bad in [
            "",
            "1orders",
            "orders--x",
            "orders-",
            "orders_x",
            &"a".repeat(64),
        ] {
            assert!(!valid_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn a_drill_clones_a_secondary_anything_else_is_refused_with_why() {
        let fake = crate::cloud::fake::FakeCloud::new();
        fake.add_global(
            "orders-global",
            &[("us-west-2", "orders-usw2"), ("us-east-1", "orders-use1")],
        );
        let s = fake.state();
        let g = s.globals.get("orders-global");
        let member = |r: &str, id: &str| s.clusters.get(&(r.to_string(), id.to_string())).cloned();
        let ids = ("orders-global", "orders-use1");
        let use1 = member("us-east-1", "orders-use1");
        assert_eq!(source_problem(ids, "us-east-1", use1.as_ref(), g), None);
        let usw2 = member("us-west-2", "orders-usw2");
        let writer = ("orders-global", "orders-usw2");
        let why = source_problem(writer, "us-west-2", usw2.as_ref(), g).unwrap();
        assert!(why.contains("is the writer"), "{why}");
        let why = source_problem(ids, "us-east-1", None, g).unwrap();
        assert!(why.contains("does not exist in us-east-1"), "{why}");
        let why = source_problem(ids, "us-east-1", use1.as_ref(), None).unwrap();
        assert!(
            why.contains("global cluster orders-global does not exist"),
            "{why}"
        );
        let mut detached = use1.clone().unwrap();
        detached.id = "orders-other".into();
        let other = ("orders-global", "orders-other");
        let why = source_problem(other, "us-east-1", Some(&detached), g).unwrap();
        assert!(why.contains("not a member"), "{why}");
        let mut busy = use1.clone().unwrap();
        busy.status = "modifying".into();
        let why = source_problem(ids, "us-east-1", Some(&busy), g).unwrap();
        assert!(why.contains("is modifying, not available"), "{why}");
    }

    /// A drill copy is made, then made writable by its writer; one that
    /// joined a global cluster never serves writes.
    #[test]
    fn a_drill_copys_stage_follows_its_cluster_and_writer() {
        let mut c = cluster(None);
        c.id = "drill-c".into();
        c.status = "creating".into();
        assert_eq!(copy_stage(&c, None), CopyStage::Making { operation: None });
        c.status = "available".into();
        assert_eq!(copy_stage(&c, None), CopyStage::Made);
        c.members = vec!["drill-c-writer".into()];
        assert_eq!(copy_stage(&c, None), CopyStage::Finishing);
        let fake = crate::cloud::fake::FakeCloud::new();
        fake.add_primary("us-east-1", "drill-c-writer");
        let mut w = fake.state().databases[&("us-east-1".into(), "drill-c-writer".into())].clone();
        (w.status, w.port) = ("creating".into(), Some(5432));
        assert_eq!(copy_stage(&c, Some(&w)), CopyStage::Finishing);
        w.status = "available".into();
        assert_eq!(
            copy_stage(&c, Some(&w)),
            CopyStage::Writable {
                endpoint: c.endpoint.clone(),
                port: Some(5432)
            }
        );
        c.global_cluster = Some("orders-global".into());
        assert!(
            matches!(copy_stage(&c, Some(&w)), CopyStage::Broken(why) if why.contains("standalone"))
        );
    }
}
