//! `[[cloud_sql]]`: a Google Cloud SQL instance per GCP region, failed over
//! by promoting the target's cross-region read replica (`promote`), or,
//! for an Enterprise Plus DR replica (`dr_replica = true`), by its replica
//! failover (`promoteReplica` with `failover`), or a switchover when the run
//! is planned; or restored as a clone at a point in time.
//!
//! Its copies are the instances, read with their role as Cloud SQL reports
//! it (`masterInstanceName`, `replicaNames`). A replica's RPO is read from
//! Cloud Monitoring's `replica_lag` by the same gate and the same rule as an
//! RDS replica's `ReplicaLag` (no points: unknown, never zero); a record
//! that `follows` it points at the target instance's DNS name as Cloud SQL
//! reports it, else its primary IP address.
//!
//! Why its own kind rather than a `[[database]]` with a provider key: its
//! instances are named by project and name (not region and id), its writes
//! answer operations to poll, and its failover has three paths (promote,
//! DR failover, switchover) that RDS has not; the kind-neutral answers
//! ([`Copies`], [`RpoSource`]) are what let the gate, `status`, `watch` and
//! DNS take it without knowing it is Google's.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::promoting::{Candidate, MovePath, Operation, PromoteAbout, Promoting, Started};
use super::restoring::{Placement, Point, RestoreAbout, Restored, Restoring, Source, Window};
use super::{Copies, CopyState, DbStrategy, Kind, Resource, RpoSource, Shown};
use crate::cloud::{CloudError, Clouds, LagReading};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

mod drilling;
pub mod moves;
pub(super) mod reprotecting;
pub use drilling::{SQL_DRILL, SqlDrilling};

/// A `[[cloud_sql]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudSqlSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// The GCP project that holds the instances.
    pub project: String,
    /// Engine, for people (`postgres`, `mysql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Failover strategy (`promote-replica`, `point-in-time-restore`).
    pub strategy: DbStrategy,
    /// Whether the target's replica is its primary's Enterprise Plus DR
    /// replica: a failover is then the replica failover
    /// (`promoteReplica` with `failover`), a planned run a switchover.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dr_replica: bool,
    /// The instance's name per GCP region.
    pub regions: PerRegion,
    /// How long a run follows Cloud SQL's side of a move on the old
    /// primary (`RECONFIGURE_OLD_PRIMARY`, `SWITCHOVER_TO_REPLICA`) before
    /// it ends with that side pending ([`DEFAULT_OLD_PRIMARY_WAIT`];
    /// `0s`: one look). The recovery does not wait on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_primary_wait: Option<String>,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The plan's sites (set when the plan is loaded): which of its
    /// copies, named by GCP region, a site of the plan means.
    #[serde(skip)]
    pub sites: crate::plan::sites::Sites,
}

impl Kind for CloudSqlSpec {
    const KEYS: &'static [&'static str] = &[
        "id",
        "project",
        "engine",
        "strategy",
        "dr_replica",
        "regions",
        "old_primary_wait",
        "after",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Gcp;
    const ROLE: super::Role = super::Role::Data(super::DataRole {
        restoring: Some(&SqlRestoring),
        promoting: Some(&SqlPromoting),
        drilling: Some(&SqlDrilling),
        reprotecting: Some(&reprotecting::SqlReprotecting),
    });
}

/// How long a run follows the old primary's side of a move when the plan
/// does not say (`old_primary_wait`).
pub const DEFAULT_OLD_PRIMARY_WAIT: Duration = Duration::from_secs(120);

impl CloudSqlSpec {
    /// How long a run follows the old primary's side of a move
    /// (`old_primary_wait`, checked when the plan loads).
    pub fn old_primary_wait(&self) -> Duration {
        (self.old_primary_wait.as_deref())
            .and_then(|d| crate::plan::duration::parse_duration(d).ok())
            .unwrap_or(DEFAULT_OLD_PRIMARY_WAIT)
    }
}

/// Whether `name` is a Cloud SQL instance name: 1 to 98 lowercase letters,
/// digits or hyphens, starting with a letter, not ending with a hyphen.
pub fn valid_instance(name: &str) -> bool {
    crate::plan::sites::gcp_name(name, 1..=98)
}

/// Reports `project` at the resource's `project` key when it is no GCP
/// project id ([`valid_project`]).
pub fn check_project(s: &mut Scope<'_, '_, '_>, id: &str, project: &str) {
    if !valid_project(project) {
        let message = format!("{} `{id}`: `{project}` is not a GCP project id", s.table());
        s.error(
            path!["project"],
            message,
            "6 to 30 lowercase letters, digits or hyphens, starting with a letter",
        );
    }
}

/// Whether `project` is a GCP project id: 6 to 30 lowercase letters,
/// digits or hyphens, starting with a letter, not ending with a hyphen
/// (a domain-scoped `example.com:proj` is taken too).
pub fn valid_project(project: &str) -> bool {
    let (domain, id) = match project.split_once(':') {
        Some((domain, id)) => (Some(domain), id),
        None => (None, project),
    };
    let domain_ok = |d: &str| {
        !d.is_empty()
            && !d.starts_with(['.', '-'])
            && (d.chars())
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    };
    domain.is_none_or(domain_ok) && crate::plan::sites::gcp_name(id, 6..=30)
}

impl Resource for CloudSqlSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, _: &Plan, region: &str) -> String {
        format!(
            "cloud_sql {:<21} {}/{} ({}{}{})",
            self.id,
            self.project,
            self.regions[self.sites.gcp(region)],
            match self.strategy {
                DbStrategy::PromoteReplica => "promote-replica",
                DbStrategy::PointInTimeRestore => "point-in-time-restore",
            },
            if self.dr_replica { ", DR replica" } else { "" },
            self.engine
                .as_deref()
                .map(|e| format!(", {e}"))
                .unwrap_or_default()
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        if let Some(Err(e)) =
            (self.old_primary_wait.as_deref()).map(crate::plan::duration::parse_duration)
        {
            s.error(path!["old_primary_wait"], e.to_string(), e.hint());
        }
        check_project(s, &self.id, &self.project);
        s.region_values(
            (&self.id, &self.regions),
            valid_instance,
            (
                "a Cloud SQL instance name",
                "lowercase letters, digits and hyphens, starting with a letter (as Cloud SQL names instances)",
            ),
        );
        if self.dr_replica && self.strategy != DbStrategy::PromoteReplica {
            s.error(
                path!["dr_replica"],
                format!(
                    "cloud_sql `{}`: `dr_replica` needs `strategy = \"promote-replica\"`",
                    self.id
                ),
                "a DR replica fails over by promotion; remove `dr_replica` for a point-in-time restore",
            );
        }
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
        for (region, name) in self.regions.iter().filter(|(r, _)| *r != home) {
            match self.strategy {
                DbStrategy::PromoteReplica => {
                    w.fake
                        .add_sql(&self.project, region, name, Some(primary), self.dr_replica);
                    w.fake.set_lag(region, name, &[1.0]);
                }
                DbStrategy::PointInTimeRestore => {
                    w.fake.add_sql(&self.project, region, name, None, false);
                }
            }
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        // Its operations are polled to done, not timed by the model.
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

/// Cloud SQL's state as the kind-neutral status: `RUNNABLE` is
/// `available` (what readiness asks of any copy), any other state its
/// name in lowercase.
pub fn status_of(state: &str) -> String {
    match state {
        "RUNNABLE" => "available".into(),
        other => other.to_lowercase(),
    }
}

/// What `status` says of a copy whose replication cluster has write
/// endpoint `name` (Cloud SQL moves it to the primary at a switchover or
/// DR failover, not at a plain promotion).
pub fn write_endpoint_note(name: &str, id: &str) -> String {
    format!(
        "write endpoint {name}: Cloud SQL moves it to the primary at a switchover or DR failover; a record that follows {id} names it"
    )
}

const CLOUD_SQL_COPIES: super::CopiesAbout = super::CopiesAbout {
    section: "cloud sql",
    read_call: "sqladmin:instances.get",
    maintenance_call: None,
    metric: "replica_lag + network_lag",
    lag_call: "monitoring:timeSeries.list",
    point: false,
};

#[async_trait]
impl Copies for CloudSqlSpec {
    fn about(&self) -> &'static super::CopiesAbout {
        &CLOUD_SQL_COPIES
    }

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        (self.strategy == DbStrategy::PromoteReplica).then_some(self as &dyn RpoSource)
    }

    fn copy(&self, region: &str) -> Option<&str> {
        self.regions.get(self.sites.gcp(region)).map(String::as_str)
    }

    fn copy_at(&self, region: &str) -> Option<(String, String)> {
        let name = self.copy(region)?;
        Some((
            self.sites.gcp(region).to_string(),
            sql_address(&self.project, name),
        ))
    }

    fn dr_replica(&self) -> bool {
        self.dr_replica
    }

    fn restores(&self) -> bool {
        self.rpo_source().is_none()
    }

    fn placement(&self, _region: &str) -> super::restoring::Placement {
        super::restoring::Placement::default()
    }

    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<CopyState>, CloudError> {
        let Some(name) = self.copy(region) else {
            return Ok(None);
        };
        let found = (clouds.cloud_sql)
            .describe_sql(self.sites.gcp(region), &self.project, name)
            .await?;
        Ok(found.map(|i| CopyState {
            endpoint: i.followed_endpoint(),
            notes: (i.write_endpoint.iter())
                .map(|w| write_endpoint_note(w, &self.id))
                .collect(),
            moves_with_primary: i.write_endpoint.is_some(),
            own_names: (i.write_endpoint.as_ref())
                .and(i.endpoint.clone())
                .into_iter()
                .collect(),
            restored_by: None,
            role: i.role,
            status: status_of(&i.state),
        }))
    }

    /// Not read: Cloud SQL's own schedule (`scheduledMaintenance` on the
    /// instance) is not modelled yet, and unknown is not "none".
    async fn maintenance(
        &self,
        _clouds: &Clouds,
        _region: &str,
    ) -> Result<Option<Vec<String>>, CloudError> {
        Ok(None)
    }
}

#[async_trait]
impl RpoSource for CloudSqlSpec {
    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let Some(name) = self.copy(region) else {
            let why = format!("cloud_sql {} has no instance in {region}", self.id);
            return Err(super::no_copy(self.about().lag_call, &self.id, region, why));
        };
        (clouds.cloud_sql)
            .sql_replica_lag(self.sites.gcp(region), &self.project, name, window)
            .await
    }
}

/// A Cloud SQL instance's address, as a step records it: `project/instance`.
pub fn sql_address(project: &str, name: &str) -> String {
    format!("{project}/{name}")
}

/// The data role's point-in-time restore of Cloud SQL instances, as Cloud
/// SQL makes one: a clone (`instances.clone` with
/// `cloneContext.pointInTime`) into a new instance, at a point inside the
/// source's recovery window (`getLatestRecoveryTime`, read right before
/// the call: a clone asked at a later point is refused). The clone answers
/// an operation, found again by a resumed run in `operations.list` of the
/// new name, so the clone is asked for once.
pub struct SqlRestoring;

/// What a Cloud SQL clone at a point in time is, in words and calls: a
/// point-in-time restore's and a drill's copy alike.
pub const SQL_RESTORE: RestoreAbout = RestoreAbout {
    noun: "cloud sql",
    how: "as a clone into a new instance",
    ready: "RUNNABLE",
    latest_from: "the latest recovery time Cloud SQL reported (getLatestRecoveryTime)",
    no_window_hint: "enable point-in-time recovery on the instance, or use promote-replica",
    call: "sqladmin:instances.clone",
    finish_call: None,
    calls: &[
        "sqladmin:instances.get",
        "sqladmin:instances.getLatestRecoveryTime",
        "sqladmin:operations.list",
        "sqladmin:instances.clone",
    ],
    waits: &["sqladmin:instances.clone"],
    polls: "sqladmin:operations.get",
};

/// `project/instance` as its two names (a domain-scoped project,
/// `example.com:proj`, taken too: split at the last `/`), or an error
/// naming `call`: what a journal handed the role is checked before any
/// call.
pub(super) fn sql_names<'a>(
    address: &'a str,
    (call, region): (&'static str, &str),
) -> Result<(&'a str, &'a str), CloudError> {
    match address.rsplit_once('/') {
        Some((p, name)) if valid_project(p) && valid_instance(name) => Ok((p, name)),
        _ => Err(super::bad_address(
            call,
            address,
            region,
            "project/instance",
        )),
    }
}

#[async_trait]
impl Restoring for SqlRestoring {
    fn about(&self) -> &'static RestoreAbout {
        &SQL_RESTORE
    }

    fn restored(&self, source: &str, run_id: &str) -> String {
        match source.rsplit_once('/') {
            Some((project, name)) => {
                sql_address(project, &super::restoring::restored_id(name, run_id))
            }
            None => super::restoring::restored_id(source, run_id),
        }
    }

    async fn source(
        &self,
        clouds: &Clouds,
        region: &str,
        source: &str,
        _placement: &Placement,
    ) -> Result<Option<Source>, CloudError> {
        let (p, name) = sql_names(source, ("sqladmin:instances.getLatestRecoveryTime", region))?;
        match clouds.cloud_sql.recovery_window(region, p, name).await {
            Ok(w) => Ok(Some(Source {
                said: format!("restorable up to {}", w.latest.to_rfc3339()),
                window: Ok(Window {
                    earliest: w.earliest,
                    latest: Some(w.latest),
                }),
                lacks: Vec::new(),
            })),
            Err(e) if e.kind == crate::cloud::ErrorKind::NotFound => Ok(None),
            // Cloud SQL refuses the read of an instance without
            // point-in-time recovery (`pitrNotEnabled`): that is its answer.
            Err(e)
                if matches!(
                    e.kind,
                    crate::cloud::ErrorKind::Client | crate::cloud::ErrorKind::Precondition
                ) =>
            {
                Ok(Some(Source {
                    said: "not restorable".into(),
                    window: Err(e.message),
                    lacks: Vec::new(),
                }))
            }
            Err(e) => Err(e),
        }
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
            state: i.state,
            endpoint: i.endpoint,
            port: None,
            point: None,
        }))
    }

    async fn under_way(
        &self,
        clouds: &Clouds,
        region: &str,
        copy: &str,
    ) -> Result<Option<String>, CloudError> {
        let (p, name) = sql_names(copy, ("sqladmin:operations.list", region))?;
        let ops = clouds.cloud_sql.operations(region, p, name).await?;
        Ok(ops.into_iter().find(|o| o.kind == "CLONE").map(|o| o.name))
    }

    async fn start(
        &self,
        clouds: &Clouds,
        region: &str,
        (source, copy): (&str, &str),
        point: Point,
        _placement: &Placement,
    ) -> Result<Option<String>, CloudError> {
        let (p, from) = sql_names(source, ("sqladmin:instances.clone", region))?;
        let (_, into) = sql_names(copy, ("sqladmin:instances.clone", region))?;
        // Cloud SQL has no "latest" to ask for: the point read right
        // before (the window's latest) is named.
        let at = match point.ask {
            crate::cloud::RestorePoint::At(t) => Some(t),
            crate::cloud::RestorePoint::Latest => point.known,
        };
        let op = (clouds.cloud_sql)
            .clone_sql(region, p, from, into, at)
            .await?;
        Ok(Some(op.name))
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::Operation(&SqlOperations)
    }
}

/// Cloud SQL's operations, read by every role's write that answers one
/// but a promotion's (whose `operation` says more): a restore, a drill's
/// clone, a reprotection's move. A failed one says how to read it in
/// full.
pub struct SqlOperations;

#[async_trait]
impl super::Operations for SqlOperations {
    async fn operation(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        op: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        let (project, _) = sql_names(address, ("sqladmin:operations.get", region))?;
        let read = clouds.cloud_sql.operation(region, project, op).await?;
        Ok(read.is_done().then(|| match read.error {
            Some(e) => Err(format!(
                "{e}; read it with `gcloud sql operations describe {} --project {project}`",
                read.name
            )),
            None => Ok(()),
        }))
    }
}

/// The data role's promotion of Cloud SQL replicas: `promoteReplica`
/// (with `failover` for its primary's designated DR replica) or, in a
/// planned move of a DR replica, `switchover`. Each answers an operation,
/// found again by a resumed run among the instance's operations, so a
/// move is asked for once.
pub struct SqlPromoting;

/// What a Cloud SQL move is, in words and calls.
pub const SQL_PROMOTE: PromoteAbout = PromoteAbout {
    noun: "Cloud SQL instance",
    replica: "Cloud SQL replica",
    ready: "RUNNABLE",
    metric: "replica_lag + network_lag",
    promote_call: "sqladmin:instances.promoteReplica",
    switchover_call: Some("sqladmin:instances.switchover"),
    missing_hint: "fix the instance's name in the plan, or create the cross-region replica",
    designate: "gcloud sql instances patch {primary} --failover-dr-replica-name={replica} --project {project}",
    inspect_operation: "gcloud sql operations describe {operation} --project {project}",
    detach_call: None,
    warnings: &[(
        MovePath::Promote,
        "Cloud SQL instance {instance} in {region} was promoted to a standalone primary: the old primary {source} was not demoted and stays writable, an independent primary beside it; stop writes to it, and replace it with a replica of {instance} (drctl reprotect refuses until it is, so that there are never two writable primaries)",
    )],
    calls: &[
        "sqladmin:instances.get",
        "sqladmin:operations.list",
        "monitoring:timeSeries.list",
        "sqladmin:instances.promoteReplica",
    ],
    waits: &["sqladmin:instances.promoteReplica"],
    polls: "sqladmin:operations.get",
};

/// The operations a move makes (and so a resumed run waits on).
const MOVES: [&str; 2] = ["PROMOTE_REPLICA", "SWITCHOVER"];

/// A Cloud SQL operation as the role says it.
fn as_operation(o: crate::cloud::SqlOperation) -> Operation {
    Operation {
        path: match o.kind.as_str() {
            "SWITCHOVER" => Some(MovePath::Switchover),
            "PROMOTE_REPLICA" => Some(MovePath::Promote),
            _ => None,
        },
        done: o.is_done(),
        name: o.name,
        kind: o.kind,
        inserted: o.inserted,
        error: o.error,
    }
}

#[async_trait]
impl Promoting for SqlPromoting {
    fn about(&self) -> &'static PromoteAbout {
        &SQL_PROMOTE
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<Candidate>, CloudError> {
        let (p, name) = sql_names(address, ("sqladmin:instances.get", region))?;
        let found = clouds.cloud_sql.describe_sql(region, p, name).await?;
        Ok(found.map(|i| Candidate {
            ready: i.is_runnable(),
            endpoint: i.followed_endpoint(),
            dr_designated: i.dr_replica,
            blocked: None,
            switch_blocked: None,
            detached: false,
            role: i.role,
            state: i.state,
            port: None,
            kept: serde_json::Value::Null,
        }))
    }

    async fn under_way(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<Option<Operation>, CloudError> {
        let (p, name) = sql_names(address, ("sqladmin:operations.list", region))?;
        let ops = clouds.cloud_sql.operations(region, p, name).await?;
        // Ours first; else any other under way, which Cloud SQL finishes
        // before it takes a move (`operationInProgress`).
        let running: Vec<_> = ops.into_iter().filter(|o| !o.is_done()).collect();
        let ours = running
            .iter()
            .position(|o| MOVES.contains(&o.kind.as_str()));
        Ok(ours
            .or((!running.is_empty()).then_some(0))
            .map(|i| as_operation(running[i].clone())))
    }

    async fn lag(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        let (p, name) = sql_names(address, ("monitoring:timeSeries.list", region))?;
        (clouds.cloud_sql)
            .sql_replica_lag(region, p, name, window)
            .await
    }

    fn fallback(&self, _: MovePath, _: &CloudError) -> Option<MovePath> {
        None
    }

    fn may_fall_back(&self, _: MovePath) -> Option<MovePath> {
        None
    }

    async fn start(
        &self,
        clouds: &Clouds,
        (region, address): (&str, &str),
        path: MovePath,
        _known: &Candidate,
    ) -> Result<Started, CloudError> {
        let (p, name) = sql_names(address, (SQL_PROMOTE.promote_call, region))?;
        let sql = &clouds.cloud_sql;
        let op = match path {
            MovePath::Switchover => sql.switchover_sql(region, p, name).await?,
            _ => (sql.promote_sql(region, p, name, path == MovePath::DrFailover)).await?,
        };
        Ok(Started::Operation(op.name))
    }

    async fn operation(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
        op: &str,
    ) -> Result<Operation, CloudError> {
        let (p, _) = sql_names(address, ("sqladmin:operations.get", region))?;
        Ok(as_operation(
            clouds.cloud_sql.operation(region, p, op).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cloud_sqls_rules() {
        for ok in ["orders-sql", "a", "orders-sql-use4"] {
            assert!(valid_instance(ok), "{ok}");
        }
        for bad in ["", "Orders", "1orders", "orders-", "orders_sql"] {
            assert!(!valid_instance(bad), "{bad}");
        }
        for ok in ["drctl-emu", "my-project-123", "example.com:my-proj"] {
            assert!(valid_project(ok), "{ok}");
        }
        for bad in ["short", "My-Project", "proj-", &"a".repeat(31)] {
            assert!(!valid_project(bad), "{bad}");
        }
        // A domain-scoped project's domain is checked too: an address a
        // step splits at its last `/` is never a project with one in it.
        for bad in [
            ":my-proj",
            "a:b:my-proj",
            "Ex/ample:my-proj",
            ".example.com:my-proj",
        ] {
            assert!(!valid_project(bad), "{bad}");
        }
    }

    /// Issue 40: where the instances have a write endpoint, it is what a
    /// record follows, and each instance's own DNS name is a name of that
    /// copy alone (a record an older drctl set to it still points there).
    #[tokio::test]
    async fn a_copy_with_a_write_endpoint_keeps_its_own_name_as_its_alone() {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
        let loaded = crate::plan::load(&[path]);
        let plan = loaded.plans.into_iter().next().expect("orders-gcp");
        let sql = &plan.spec.cloud_sql[0];
        let p = sql.project.clone();
        let f = crate::cloud::fake::FakeCloud::new();
        f.add_sql(&p, "us-central1", "orders-sql", None, false);
        f.add_sql(&p, "us-east4", "orders-sql-use4", Some("orders-sql"), true);
        let clouds = f.clouds();
        let before = sql.describe(&clouds, "us-east4").await.unwrap().unwrap();
        assert!(!before.moves_with_primary && before.own_names.is_empty());
        let own = before.endpoint.clone().expect("its own name");
        let wep = "x1.y2.global.sql-psa.goog";
        f.set_sql_write_endpoint(&p, &["orders-sql", "orders-sql-use4"], wep);
        let after = sql.describe(&clouds, "us-east4").await.unwrap().unwrap();
        assert_eq!(after.endpoint.as_deref(), Some(wep));
        assert!(after.moves_with_primary);
        assert_eq!(after.own_names, vec![own]);
    }

    #[test]
    fn runnable_is_available_and_other_states_are_named() {
        assert_eq!(status_of("RUNNABLE"), "available");
        assert_eq!(status_of("MAINTENANCE"), "maintenance");
    }

    #[test]
    fn a_drill_clones_a_runnable_primary_and_never_a_replica() {
        use super::drilling::clone_refusal;
        use crate::cloud::{DbRole, SqlInstance};
        let inst = |role: DbRole, state: &str| SqlInstance {
            name: "orders-sql".into(),
            region: "us-central1".into(),
            state: state.into(),
            role,
            replicas: Vec::new(),
            dr_replica: false,
            edition: None,
            endpoint: None,
            write_endpoint: None,
            labels: Default::default(),
            backup_location: None,
        };
        let at = ("drctl-emu", "orders-sql");
        let primary = inst(DbRole::Primary, "RUNNABLE");
        assert_eq!(clone_refusal(at, "us-central1", Some(&primary)), None);
        let replica = inst(DbRole::Replica("orders-sql-use4".into()), "RUNNABLE");
        let (why, hint) = clone_refusal(at, "us-central1", Some(&replica)).expect("refused");
        assert!(
            why.contains("us-central1") && hint.contains("fail back"),
            "{why}"
        );
        let busy = inst(DbRole::Primary, "MAINTENANCE");
        let (why, _) = clone_refusal(at, "us-central1", Some(&busy)).expect("refused");
        assert!(why.contains("MAINTENANCE, not RUNNABLE"), "{why}");
        let (why, hint) = clone_refusal(at, "us-central1", None).expect("refused");
        assert!(why.contains("does not exist in project drctl-emu"), "{why}");
        assert!(hint.contains("name in the plan"), "{hint}");
    }
}
