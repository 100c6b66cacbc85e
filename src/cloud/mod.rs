//! Narrow, domain-level cloud traits and their implementations.
//!
//! Why narrow traits instead of passing SDK clients around: the engine and the
//! readiness check speak about *promoting a replica* or *reading a record*, not
//! about `PromoteReadReplicaInput`. Keeping the SDK behind these traits gives
//! three things at once:
//!
//! * one implementation per provider ([`aws`] for Route 53, RDS and Aurora,
//!   Auto Scaling, EKS, ECS, S3, CloudWatch, STS, SNS and EventBridge;
//!   [`gcp`] for Google Cloud Storage, [`gcp_sql`] for Cloud SQL and its lag
//!   in Cloud Monitoring, [`gcp_mig`] for Compute Engine's regional managed
//!   instance groups, [`gcp_run`] for Cloud Run, [`gcp_dns`] for Cloud DNS)
//!   that is tested against real emulators on loopback;
//! * an in-memory `fake` (the `testkit` feature) for fast unit tests of the
//!   logic above the cloud;
//! * one place ([`retry`]) where transient failures are retried with jittered
//!   backoff and permanent ones are not, so every caller behaves the same.
//!
//! Every method takes the region it acts in explicitly: a recovery plan spans
//! regions, and an error must always name the resource *and* the region.
//!
//! # Layout
//! * this file: one trait per service ([`Dns`], [`Database`], [`CloudSql`],
//!   ...), bundled in [`Clouds`], one field a trait, which
//!   [`connect`] builds; [`types`]: the domain types they speak;
//! * `capacity.rs` holds the capacity role's port, [`Scaler`]: no capacity
//!   kind has a service trait; its adapter implements the role, one line of
//!   `capacity_adapters!` here registers it, and [`Clouds::capacity`] holds
//!   it by kind;
//! * [`error`]: one error type, classified once; [`CloudSettings`]:
//!   endpoints and credentials, read once; [`ObjectRouter`]: each URL to the
//!   store of its scheme;
//! * [`metered`]: the decorator every run's calls go through (counts, fault
//!   injection, and the API budgets of [`budget`]); [`wire`]: the fence
//!   asked right before each transmission of a mutating call;
//!   [`dns_batch`]: Route 53 changes of many plans, one queue per zone;
//! * [`model`]: the model of AWS in time (`aws_model.toml`) the forecast
//!   reads, and `timing`, the fake's time under it (test kit);
//! * [`control`], [`resolve`], [`http`]: a data-plane switch's controls,
//!   DNS answers read fresh, HTTP probes; [`clock`]: the wall clock.

pub mod aws;
pub mod budget;
mod capacity;
pub mod clock;
pub mod control;
pub mod dns_batch;
pub mod error;
#[cfg(any(test, feature = "testkit"))]
pub mod fake;
pub mod gcp;
pub mod gcp_dns;
pub mod gcp_mig;
pub mod gcp_run;
pub mod gcp_sql;
pub mod http;
pub mod k8s;
pub mod metered;
pub mod model;
pub mod resolve;
pub mod retry;
mod router;
mod settings;
#[cfg(any(test, feature = "testkit"))]
pub mod timing;
pub mod types;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use capacity::{
    Change, PairForm, Port, Reading, Scaler, Scalers, ScalingCalls, bounds_of, split_pair,
};

/// The capacity kinds' adapters, one line a kind: its calls (the plan
/// table it serves, and the fake's model serves the same kinds,
/// [`CAPACITY_KINDS`]) and how a bundle makes it from the settings and the
/// AWS SDK. A new capacity kind is its module above and its line here.
macro_rules! capacity_adapters {
    ($( $calls:path => |$settings:ident, $sdk:ident| $make:expr; )*) => {
        /// The calls of every capacity kind, each served by its adapter.
        pub const CAPACITY_KINDS: &[&ScalingCalls] = &[$(&$calls),*];

        /// A bundle's capacity adapters (nothing is resolved until a call).
        pub fn capacity_adapters(settings: &CloudSettings, sdk: &aws::Sdk) -> Scalers {
            Scalers::of([$({
                let ($settings, $sdk) = (settings, sdk);
                Arc::new($make) as Arc<dyn Scaler>
            }),*])
        }
    };
}

capacity_adapters! {
    aws::autoscaling::CALLS => |s, sdk| aws::autoscaling::AutoScalingCompute::new(sdk.clone(), s.retry);
    aws::ecs::CALLS => |s, sdk| aws::ecs::EcsApi::new(sdk.clone(), s.retry);
    aws::eks::CALLS => |s, sdk| aws::eks::EksNodeGroups::new(sdk.clone(), s.retry);
    k8s::CALLS => |s, sdk| k8s::Kube::new(s, Some(sdk.clone()));
    gcp_run::CALLS => |s, _sdk| gcp_run::GcpRun::new(s);
    gcp_mig::CALLS => |s, _sdk| gcp_mig::GcpMig::new(s);
}

/// The largest object drctl reads from a bucket: 64 MiB. Every object it
/// reads is one it writes (a journal record or head, a board object, an
/// evidence manifest), each far smaller; a bigger one is someone else's,
/// and read whole it would take every watcher's memory (each reads the
/// state every round). Refused by its declared length before its body is
/// read, and while reading when no length is declared or it lies.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// Why an object of `len` bytes (declared, or read so far) is not read
/// (`None`: it may be).
pub fn object_too_large(len: u64) -> Option<String> {
    (len > MAX_OBJECT_BYTES).then(|| {
        format!(
            "{TOO_LARGE} {} MiB drctl reads ({len} bytes or more): not one drctl wrote",
            MAX_OBJECT_BYTES / (1024 * 1024)
        )
    })
}

/// How [`object_too_large`]'s refusal begins ([`CloudError::is_too_large`]).
const TOO_LARGE: &str = "the object is larger than the";

impl CloudError {
    /// Whether this is the refusal of an object larger than drctl reads
    /// ([`object_too_large`]): not a failure to reach the store, but an
    /// object that is not drctl's.
    pub fn is_too_large(&self) -> bool {
        self.kind == ErrorKind::Client && self.message.starts_with(TOO_LARGE)
    }
}
pub use error::{CloudError, ErrorKind};
pub use router::ObjectRouter;
pub use settings::CloudSettings;
pub use types::*;

/// Route 53-style DNS: hosted zones, record sets, atomic change batches.
#[async_trait]
pub trait Dns: Send + Sync {
    /// Finds the hosted zone whose name is `zone_name` (with or without the
    /// trailing dot). `Ok(None)` when no such zone exists.
    async fn find_zone(&self, zone_name: &str) -> Result<Option<HostedZone>, CloudError>;

    /// The zone's features (`GetHostedZone`): whether its changes resume
    /// without us-east-1's control plane (accelerated recovery).
    async fn zone_features(&self, zone: &HostedZone) -> Result<ZoneFeatures, CloudError>;

    /// The zone's record-set protections (`ListResourceRecordSetProtections`,
    /// every page): the names and types Route 53 refuses to change.
    async fn protections(&self, zone: &HostedZone) -> Result<Vec<Protection>, CloudError>;

    /// Reads every record set named `name` of type `rtype` in the zone
    /// (several for weighted or failover records, told apart by set identifier).
    async fn read_records(
        &self,
        zone: &HostedZone,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<DnsRecord>, CloudError>;

    /// Reads the record sets of every `(name, type)` in `wanted` at once:
    /// one listing of the zone where it is small enough, so that a plan's
    /// records cost one request, not one each. The default reads them one
    /// by one.
    async fn read_many(
        &self,
        zone: &HostedZone,
        wanted: &[(String, String)],
    ) -> Result<Vec<DnsRecord>, CloudError> {
        let mut out = Vec::new();
        for (name, rtype) in wanted {
            out.extend(self.read_records(zone, name, rtype).await?);
        }
        Ok(out)
    }

    /// Submits all `changes` for one zone as a single atomic change batch.
    async fn apply_changes(
        &self,
        zone: &HostedZone,
        changes: &[DnsChange],
        comment: &str,
    ) -> Result<ChangeInfo, CloudError>;

    /// Reads the propagation status of a submitted change batch.
    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, CloudError>;

    /// Lists every health check of the account (a data-plane switch's setup
    /// is checked against them). Control plane: hosted in us-east-1.
    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, CloudError>;

    /// Creates a health check; the same `caller_reference` never creates a
    /// second one. Control plane: for calm days (`drctl dns prepare`).
    async fn create_health_check(&self, want: &HealthCheck) -> Result<HealthCheck, CloudError>;

    /// Deletes a health check; an absent one is not an error. Control
    /// plane: a drill's cleanup removes its own checks with it.
    async fn delete_health_check(&self, id: &str) -> Result<(), CloudError>;

    /// Lists every record set of the zone whose name ends with `suffix`
    /// (fully qualified; `""` lists the whole zone), following pagination.
    /// A drill sweep finds drill records by their names with it.
    async fn list_records(
        &self,
        zone: &HostedZone,
        suffix: &str,
    ) -> Result<Vec<DnsRecord>, CloudError>;
}

/// RDS-style managed databases: instances, read replicas, restores.
#[async_trait]
pub trait Database: Send + Sync {
    /// Describes one instance; `Ok(None)` when it does not exist in `region`.
    async fn describe_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbInstance>, CloudError>;

    /// Promotes a read replica to a standalone, writable primary.
    async fn promote_replica(&self, region: &str, id: &str) -> Result<(), CloudError>;

    /// Promotes the read replica `known`, as the caller has just read it:
    /// no read of its own before the call, and the instance as the
    /// promotion's answer describes it, so that the caller need not
    /// describe it again. Its role is `Primary` only when the answer shows
    /// the promotion done; otherwise the caller waits for it. The default
    /// promotes, then reads.
    async fn promote_known(
        &self,
        region: &str,
        known: &DbInstance,
    ) -> Result<DbInstance, CloudError> {
        self.promote_replica(region, &known.id).await?;
        self.describe_instance(region, &known.id)
            .await?
            .ok_or_else(|| {
                CloudError::new(
                    "rds",
                    "DescribeDBInstances",
                    &known.id,
                    region,
                    ErrorKind::NotFound,
                    "the promoted instance is gone",
                )
            })
    }

    /// Creates a read replica `id` in `region` of the instance `source_arn`
    /// (which may live in another region), placed as `placement` says.
    async fn create_replica(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError>;

    /// Renames an instance (its endpoint changes with it); used to keep an old
    /// primary, data intact, out of the way of a new replica with its id.
    async fn rename_instance(&self, region: &str, id: &str, new_id: &str)
    -> Result<(), CloudError>;

    /// Restores `source_id` into a new instance `target_id` in the same region,
    /// at `point` (a time, or the latest restorable time).
    async fn restore_to_point_in_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        point: RestorePoint,
    ) -> Result<(), CloudError>;

    /// The automated backups of instance `source` replicated into `region`
    /// from another Region (`DescribeDBInstanceAutomatedBackups`; the
    /// region's own instances' backups are left out): what a backup
    /// standby restores to a point in time from.
    async fn replicated_backups(
        &self,
        region: &str,
        source: &str,
    ) -> Result<Vec<Restorable>, CloudError>;

    /// The manual snapshots of instance `source` in `region`
    /// (`DescribeDBSnapshots`: those copied there from its Region, and
    /// those taken there), newest first.
    async fn snapshots_of(&self, region: &str, source: &str)
    -> Result<Vec<Restorable>, CloudError>;

    /// Restores the replicated automated backups `backups_arn` into a new
    /// instance `target_id` of `region` at `point`, placed as `placement`
    /// says (`RestoreDBInstanceToPointInTime` with
    /// `SourceDBInstanceAutomatedBackupsArn`). Once: a lost answer is
    /// settled by reading `target_id`.
    async fn restore_backups(
        &self,
        region: &str,
        backups_arn: &str,
        target_id: &str,
        point: RestorePoint,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError>;

    /// Restores snapshot `snapshot` of `region` into a new instance
    /// `target_id` there (`RestoreDBInstanceFromDBSnapshot`). Once.
    async fn restore_snapshot(
        &self,
        region: &str,
        snapshot: &str,
        target_id: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError>;

    /// Starts replicating the automated backups of instance `source_arn`
    /// (another region's) into `region`, kept `retention_days`
    /// (`StartDBInstanceAutomatedBackupsReplication`, asked of the
    /// destination): what makes a region a backup standby again after a
    /// failover. An encrypted source's backups need `kms_key_id`, a key
    /// of `region`. Once: a lost answer is settled by reading the backups.
    async fn replicate_backups(
        &self,
        region: &str,
        source_arn: &str,
        retention_days: i32,
        kms_key_id: Option<&str>,
    ) -> Result<(), CloudError>;

    /// Stops replicating the automated backups of instance `source_arn`
    /// into `region` (`StopDBInstanceAutomatedBackupsReplication`, asked
    /// of the destination): what was replicated is kept (`retained`), and
    /// no newer point arrives. An old primary set aside must stop: its
    /// backups carry the plan's name and would look like the standby's.
    async fn stop_replicating_backups(
        &self,
        region: &str,
        source_arn: &str,
    ) -> Result<(), CloudError>;

    /// What `region` says of `need`, which a restore there asks for:
    /// `None` when it is there and usable; else why not, as a phrase that
    /// follows its name (`does not exist`, `is PendingDeletion`, `is not
    /// offered`). One read, named by [`RestoreNeed::call`].
    async fn lacking(&self, region: &str, need: &RestoreNeed)
    -> Result<Option<String>, CloudError>;

    /// Deletes an instance without a final snapshot (a drill's temporary
    /// instance). Deleting one that does not exist is not an error: the call
    /// is safe to repeat. The deletion may take time: read the instance
    /// until it is gone to prove it.
    async fn delete_instance(&self, region: &str, id: &str) -> Result<(), CloudError>;

    /// Every instance in `region` with its tags (following pagination), for
    /// a sweep that finds leftovers by tag. Roles are not resolved: only
    /// `id`, `arn`, `status`, `tags` and the replica source are meaningful.
    async fn list_instances(&self, region: &str) -> Result<Vec<DbInstance>, CloudError>;

    /// The maintenance AWS will apply to instance or cluster `id` in
    /// `region` (`DescribePendingMaintenanceActions`; empty: none).
    async fn pending_maintenance(
        &self,
        region: &str,
        of: MaintenanceOf,
        id: &str,
    ) -> Result<Vec<PendingMaintenance>, CloudError>;
}

/// Aurora global databases: their member clusters and the three ways a
/// failover moves the writer (a switchover, a managed failover, a detach).
///
/// A global cluster is described through any region's endpoint: a failover
/// asks the target region's, never the home's that may be down.
#[async_trait]
pub trait GlobalDatabases: Send + Sync {
    /// Describes global cluster `id`, asking `region`'s endpoint; `Ok(None)`
    /// when it does not exist.
    async fn describe_global(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<GlobalCluster>, CloudError>;

    /// Describes DB cluster `id` in `region`; `Ok(None)` when it does not
    /// exist.
    async fn describe_cluster(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbCluster>, CloudError>;

    /// A planned switchover of global cluster `global` to the member
    /// `target_arn` (`SwitchoverGlobalCluster`, asked in `region`): the
    /// secondaries catch up first, no data is lost.
    async fn switchover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError>;

    /// An unplanned failover of global cluster `global` to the member
    /// `target_arn` (`FailoverGlobalCluster` with `AllowDataLoss`, asked
    /// in `region`): the target writes at once with what it has.
    async fn failover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError>;

    /// Detaches the member `cluster_arn` from global cluster `global`
    /// (`RemoveFromGlobalCluster`, asked in the member's `region`): it
    /// becomes a standalone, writable cluster.
    async fn detach_cluster(
        &self,
        region: &str,
        global: &str,
        cluster_arn: &str,
    ) -> Result<(), CloudError>;

    /// The snapshots of cluster `cluster` in `region`
    /// (`DescribeDBClusterSnapshots`), automated and manual.
    async fn cluster_snapshots(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<ClusterSnapshot>, CloudError>;

    /// The snapshots of cluster `cluster` copied into `region` from another
    /// Region (`DescribeDBClusterSnapshots`: a copy keeps its cluster's
    /// identifier and names its source snapshot's ARN), ready or not,
    /// newest first: what a cluster's backup standby restores from. A
    /// snapshot taken in `region` itself is left out.
    async fn cluster_copies(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<Restorable>, CloudError>;

    /// Restores cluster snapshot `snapshot` of `region` into the new,
    /// standalone cluster `target` there (`RestoreDBClusterFromSnapshot`
    /// with the snapshot's `engine`), placed as `placement` says (subnet
    /// group, cluster parameter group, security groups, tags); the data
    /// keeps the snapshot's key. The volume only: its writer is
    /// [`GlobalDatabases::add_writer`], once the cluster is available.
    /// Sent at most once, as [`GlobalDatabases::clone_cluster`].
    async fn restore_cluster_snapshot(
        &self,
        region: &str,
        snapshot: &str,
        target: &str,
        engine: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError>;

    /// Takes a manual snapshot `snapshot` of cluster `cluster` in `region`
    /// (`CreateDBClusterSnapshot`): what a reprotection copies into the
    /// other regions. Sent at most once: a snapshot of that name found
    /// after a lost answer is the call's effect.
    async fn snapshot_cluster(
        &self,
        region: &str,
        cluster: &str,
        snapshot: &str,
    ) -> Result<(), CloudError>;

    /// Copies the cluster snapshot `source_arn` (another Region's) into
    /// `region` as `target` (`CopyDBClusterSnapshot`, asked of the
    /// destination), encrypted with `kms_key_id`, a key of `region` (an
    /// encrypted source's copy needs one). Sent at most once, as
    /// [`GlobalDatabases::snapshot_cluster`].
    async fn copy_cluster_snapshot(
        &self,
        region: &str,
        source_arn: &str,
        target: &str,
        kms_key_id: Option<&str>,
    ) -> Result<(), CloudError>;

    /// Deletes global cluster `id`, which has no members left
    /// (`DeleteGlobalCluster`, asked in `region`); gone is done.
    async fn delete_global(&self, region: &str, id: &str) -> Result<(), CloudError>;

    /// Makes global cluster `id` with the cluster `source_arn` as its
    /// writer (`CreateGlobalCluster` with `SourceDBClusterIdentifier`,
    /// asked in the source's `region`); sent at most once.
    async fn create_global(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
    ) -> Result<(), CloudError>;

    /// Makes cluster `id` in `region` a new, headless secondary of global
    /// cluster `global` (`CreateDBCluster` with `GlobalClusterIdentifier`
    /// and the writer's engine); sent at most once.
    async fn create_secondary(
        &self,
        region: &str,
        id: &str,
        global: &str,
        engine: &str,
    ) -> Result<(), CloudError>;

    /// Renames cluster `id` to `new_id` (`ModifyDBCluster` with
    /// `NewDBClusterIdentifier`, applied at once): an old member, data
    /// intact, out of the way of a new secondary with its id.
    async fn rename_cluster(&self, region: &str, id: &str, new_id: &str) -> Result<(), CloudError>;
    /// Clones cluster `source` in `region` into the new, standalone cluster
    /// `target`, tagged `tags` (`RestoreDBClusterToPointInTime` with
    /// `RestoreType` copy-on-write and `UseLatestRestorableTime`): a drill's
    /// copy of a global database's secondary, which the secondary itself
    /// never notices. Sent at most once: after an answer lost on the way
    /// back, a `target` that exists is the call's effect.
    async fn clone_cluster(
        &self,
        region: &str,
        source: &str,
        target: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError>;

    /// Adds the instance `instance` (engine `engine`, class `class`, tagged
    /// `tags`) to cluster `cluster` in `region` (`CreateDBInstance` with
    /// `DBClusterIdentifier`); the first instance of a cluster is its
    /// writer. Aurora restores (and clones) a cluster's volume only, never
    /// its instances, and refuses to create one before the cluster is
    /// available: until then nothing serves behind the cluster's endpoint.
    /// Sent at most once, as [`GlobalDatabases::clone_cluster`].
    async fn add_writer(
        &self,
        region: &str,
        cluster: &str,
        instance: &str,
        engine: &str,
        class: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError>;

    /// Deletes cluster `id` in `region` and every instance in it
    /// (`DeleteDBInstance` of each member, then `DeleteDBCluster`, no final
    /// snapshots): Aurora refuses to delete a cluster whose instances are
    /// not being deleted. Idempotent: a cluster or instance already gone,
    /// or already being deleted, is done. Returns once the deletions are
    /// asked for; the caller reads until the cluster is gone.
    async fn delete_cluster(&self, region: &str, id: &str) -> Result<(), CloudError>;

    /// Every DB cluster in `region`, with its tags (`DescribeDBClusters`,
    /// every page): how a sweep finds a drill's copies without a journal.
    async fn list_clusters(&self, region: &str) -> Result<Vec<DbCluster>, CloudError>;
}

/// Cloud SQL (the Cloud SQL Admin API v1) and its replicas' lag (Cloud
/// Monitoring): what a failover of a `[[cloud_sql]]` resource calls.
///
/// Cloud SQL's API is global (one endpoint for every region); every method
/// still names the `region` of the instance it is about, which errors and
/// the meter carry. Every write answers a [`SqlOperation`] that the caller
/// polls with [`CloudSql::operation`] until it is done: the crate does not.
/// Writes are sent once (no retry: a lost answer is found again with
/// [`CloudSql::operations`]).
#[async_trait]
pub trait CloudSql: Send + Sync {
    /// Describes instance `name` of `project` (`instances.get`);
    /// `Ok(None)` when it does not exist.
    async fn describe_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<SqlInstance>, CloudError>;

    /// Every instance of `project`, in every region (`instances.list`, all
    /// its pages): what a sweep looks through for a drill's clone whose
    /// journal is gone (its name says the drill and what it copied). The
    /// regions Cloud SQL could not reach are in the answer, never dropped:
    /// a list without them is not "no clone there".
    async fn list_sql(&self, project: &str) -> Result<SqlList, CloudError>;

    /// Promotes the read replica `name` to a standalone primary
    /// (`instances.promoteReplica`); with `failover`, an Enterprise Plus
    /// DR replica's failover: it takes over its primary's role and
    /// replicas.
    async fn promote_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        failover: bool,
    ) -> Result<SqlOperation, CloudError>;

    /// A planned switchover to the DR replica `name`
    /// (`instances.switchover`): the roles swap, no data is lost.
    async fn switchover_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError>;

    /// Designates `replica` the DR replica of its primary `primary`
    /// (`instances.patch` of the primary's
    /// `replicationCluster.failoverDrReplicaName`): what a switchover and a
    /// replica failover need, and what a reprotection after a failover
    /// sets again.
    async fn designate_dr_sql(
        &self,
        region: &str,
        project: &str,
        primary: &str,
        replica: &str,
    ) -> Result<SqlOperation, CloudError>;

    /// The backups of instance `name` kept in `region` (`backups.list`
    /// filtered on the instance, those whose `location` is `region`
    /// kept), newest first: what a backup standby there restores from.
    async fn sql_backups(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<Restorable>, CloudError>;

    /// Restores backup `backup` (`projects/P/backups/UID`) into the new
    /// instance `target` in `region`, of tier `tier` when given (else the
    /// backup's), labelled `labels` (`instances.restoreBackup` with
    /// `restoreInstanceSettings`). Not retried: a run that lost its
    /// answer finds the operation again with `operations.list`.
    async fn restore_sql_backup(
        &self,
        region: &str,
        project: &str,
        target: &str,
        backup: &str,
        settings: &ReplicaPlacement,
    ) -> Result<SqlOperation, CloudError>;

    /// Keeps the backups of instance `name` in `location` from now on (a
    /// region, or a multi-region: `instances.patch` of its
    /// `settings.backupConfiguration.location`, backups on): what makes
    /// that region a backup standby of it. Not retried: a run that lost
    /// its answer reads the instance and its operations.
    async fn keep_sql_backups_in(
        &self,
        region: &str,
        project: &str,
        name: &str,
        location: &str,
    ) -> Result<SqlOperation, CloudError>;

    /// Takes an on-demand backup of instance `name` kept in `location`
    /// (`backups.insertBackup`): a restorable point there now, not at the
    /// next automated backup. Not retried.
    async fn backup_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        location: &str,
    ) -> Result<SqlOperation, CloudError>;

    /// Clones instance `source` into the new instance `target`
    /// (`instances.clone`), at `point_in_time` when given (else now).
    async fn clone_sql(
        &self,
        region: &str,
        project: &str,
        source: &str,
        target: &str,
        point_in_time: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SqlOperation, CloudError>;

    /// Deletes instance `name` (`instances.delete`): a drill's clone, at
    /// its cleanup. Answers the delete's operation; Cloud SQL answers
    /// not-found (an error of kind `NotFound`) when it is gone already.
    async fn delete_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError>;

    /// How far back instance `name` can be restored
    /// (`getLatestRecoveryTime`).
    async fn recovery_window(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<RecoveryWindow, CloudError>;

    /// Reads operation `operation` of `project` (`operations.get`).
    async fn operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<SqlOperation, CloudError>;

    /// The operations on instance `name`, newest first (`operations.list`,
    /// its first pages): how a resumed run finds the one it started.
    async fn operations(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<SqlOperation>, CloudError>;

    /// Reads the `replica_lag` of replica `name` over the last `window`
    /// (Cloud Monitoring's `cloudsql.googleapis.com/database/replication/replica_lag`
    /// of `database_id = "project:name"`, seconds): the maximum, the latest
    /// point and how many there were.
    async fn sql_replica_lag(
        &self,
        region: &str,
        project: &str,
        name: &str,
        window: std::time::Duration,
    ) -> Result<LagReading, CloudError>;
}

/// Cloud DNS (the Cloud DNS API v1): one record set of a managed zone,
/// read and swapped, what a failover of a `[[cloud_dns]]` resource calls.
///
/// Cloud DNS is global: errors name the region `global`. A swap is one
/// atomic change whose deletion is the record set exactly as read, so a
/// record that changed since the read is refused (412 `conditionNotMet`)
/// rather than overwritten; it is sent once (no retry: a run that lost its
/// answer reads the record set, which says whether it was taken).
#[async_trait]
pub trait CloudDns: Send + Sync {
    /// Reads managed zone `zone` of `project` (`managedZones.get`);
    /// `Ok(None)` when it does not exist.
    async fn describe_zone(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Option<CloudDnsZone>, CloudError>;

    /// Reads the record set `name`/`rtype` of `zone`
    /// (`resourceRecordSets.list` with that name and type); `Ok(None)`
    /// when there is none.
    async fn read_record_set(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Option<CloudRecordSet>, CloudError>;

    /// Every record set of `zone` (`resourceRecordSets.list`, all its
    /// pages): what a sweep looks through for a drill's record set whose
    /// journal is gone (its name says the drill and the record it copies).
    async fn list_record_sets(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudRecordSet>, CloudError>;

    /// One atomic change of `zone` (`changes.create`): for each swap,
    /// deletes the record set exactly as read (`None`: it did not exist)
    /// and adds the wanted one. Refused whole when any deletion no longer
    /// matches, or an addition's name and type exist already.
    async fn swap_record_sets(
        &self,
        project: &str,
        zone: &str,
        swaps: &[(Option<CloudRecordSet>, CloudRecordSet)],
    ) -> Result<CloudDnsChange, CloudError>;

    /// One change of `zone` (`changes.create`) that deletes `deletion`
    /// (exactly as read) and adds nothing: a drill record's removal.
    /// Refused when the record set no longer matches.
    async fn delete_record_set(
        &self,
        project: &str,
        zone: &str,
        deletion: &CloudRecordSet,
    ) -> Result<CloudDnsChange, CloudError>;

    /// Reads change `id` of `zone` (`changes.get`).
    async fn dns_change(
        &self,
        project: &str,
        zone: &str,
        id: &str,
    ) -> Result<CloudDnsChange, CloudError>;

    /// The changes of `zone` still `pending`, among its most recent
    /// ([`gcp_dns::RECENT_CHANGES`], `changes.list` by change sequence,
    /// descending): what a resumed switch waits on when it finds its record
    /// already switched.
    async fn pending_dns_changes(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudDnsChange>, CloudError>;
}

/// CloudWatch-style metrics, read only.
#[async_trait]
pub trait Metrics: Send + Sync {
    /// Reads the `ReplicaLag` of database `db_id` in `region` over the last
    /// `window`: the maximum, the latest datapoint and how many there were.
    async fn replica_lag(
        &self,
        region: &str,
        db_id: &str,
        window: std::time::Duration,
    ) -> Result<LagReading, CloudError>;

    /// Reads the lag of Aurora cluster `cluster`, a global database's
    /// secondary in `region`, behind its writer over the last `window`:
    /// `AuroraGlobalDBRPOLag`, else `AuroraGlobalDBReplicationLag` where
    /// that is what the engine publishes (milliseconds, read as seconds).
    async fn cluster_lag(
        &self,
        region: &str,
        cluster: &str,
        window: std::time::Duration,
    ) -> Result<LagReading, CloudError>;

    /// Which of the CloudWatch alarms `names` in `region` are in ALARM
    /// (DescribeAlarms). An alarm that does not exist is reported as
    /// `"NAME (missing)"`: a watch that names it expects it to be there.
    async fn alarms_firing(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<Vec<String>, CloudError>;
}

/// Object storage (S3 or GCS), addressed by [`ObjectUrl`].
///
/// Every call names `via`: the region the caller works in (a failover's
/// target). An S3 bucket lives in one region, and finding out which one is a
/// request of its own: it is asked *through `via`*, never through a default
/// region that may be the one that is down; the object calls then go to the
/// bucket's own region. GCS has one global endpoint and ignores `via`.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Whether the bucket exists and is reachable with our credentials.
    async fn bucket_exists(&self, via: &str, bucket: &ObjectUrl) -> Result<bool, CloudError>;

    /// Writes an object. With [`PutMode::CreateOnly`] an existing object is
    /// left untouched and [`PutOutcome::AlreadyExists`] is returned.
    async fn put(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, CloudError>;

    /// Reads an object; `Ok(None)` when it does not exist.
    async fn get(&self, via: &str, url: &ObjectUrl) -> Result<Option<Bytes>, CloudError>;

    /// Writes an evidence object, create-only, under `retention` when given
    /// (S3 Object Lock: only on a bucket that has it enabled). An existing
    /// object is left untouched ([`PutOutcome::AlreadyExists`]).
    async fn put_retained(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        retention: Option<Retention>,
    ) -> Result<Kept, CloudError>;

    /// Whether the bucket keeps objects by itself: S3 Object Lock and its
    /// default retention. GCS answers with nothing here (its retention
    /// policy shows on each written object, see [`Kept`]).
    async fn bucket_lock(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketLock, CloudError>;

    /// The Object Lock retention an object is kept under now (S3
    /// `GetObjectRetention`): `Ok(None)` when it has none, its bucket has
    /// no Object Lock, or it does not exist. GCS answers `Ok(None)` (a
    /// bucket's retention policy is not kept per object).
    async fn object_retention(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Retention>, CloudError>;

    /// Reads what `[[bucket]]` checks: existence, location, versioning and
    /// replication rules.
    async fn bucket_state(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketState, CloudError>;

    /// Reads an object with its version (for [`ObjectStore::replace_if`]);
    /// `Ok(None)` when it does not exist.
    async fn get_versioned(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Versioned>, CloudError>;

    /// Replaces an object only if it is still at `version` (S3 `If-Match`,
    /// GCS `ifGenerationMatch`): compare-and-swap.
    async fn replace_if(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        version: &str,
    ) -> Result<SwapOutcome, CloudError>;

    /// Lists the objects under `prefix` (every page). With `delimited`, only
    /// those directly under it, plus the common prefixes up to the next `/`.
    async fn list(
        &self,
        via: &str,
        prefix: &ObjectUrl,
        delimited: bool,
    ) -> Result<Listing, CloudError>;

    /// Deletes an object, unconditionally; an absent object is not an error.
    /// (Neither emulator honours conditional deletes, and real stores
    /// differ: nothing in drctl relies on one.)
    async fn delete(&self, via: &str, url: &ObjectUrl) -> Result<(), CloudError>;
}

/// Asks DNS what a name resolves to, as clients see it: the zone's
/// authoritative servers (or the configured ones), never a cache and never
/// Route 53's API. A data-plane switch verifies itself with it.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// The values `name` (in hosted zone `zone`) resolves to for `rtype`,
    /// as one fresh answer: CNAME targets or addresses, as written in the
    /// zone. Empty when the name has no such record.
    async fn resolve(&self, zone: &str, name: &str, rtype: &str)
    -> Result<Vec<String>, CloudError>;

    /// Who is asked, for messages ("127.0.0.1:8053", "the zone's NS servers").
    fn servers(&self) -> String;
}

/// HTTP health probes (`[[check]]`): one GET, no retries (the caller
/// decides whether and when to ask again), bounded by `timeout`. A probe
/// that gets no answer (refused, reset, timed out) is a
/// [`ErrorKind::Connection`] error naming the URL and region.
#[async_trait]
pub trait Probe: Send + Sync {
    /// GETs `url` (a service in `region`) and returns its answer.
    async fn get(
        &self,
        region: &str,
        url: &str,
        timeout: std::time::Duration,
    ) -> Result<ProbeAnswer, CloudError>;
}

/// Who are we? (STS GetCallerIdentity.)
///
/// Asked in a named region: STS has regional endpoints, and during a
/// failover the configured default region may be the one that is down.
#[async_trait]
pub trait Identity: Send + Sync {
    /// Returns the identity the credentials resolve to, asking STS in `region`.
    async fn caller(&self, region: &str) -> Result<CallerIdentity, CloudError>;
}

/// The set of adapters one command works with.
#[derive(Clone)]
pub struct Clouds {
    /// DNS (Route 53).
    pub dns: Arc<dyn Dns>,
    /// Databases (RDS).
    pub database: Arc<dyn Database>,
    /// The capacity kinds' adapters on the role's port ([`Scaler`]), by
    /// kind (`ecs_service`).
    pub capacity: Scalers,
    /// Load balancers' target groups (Elastic Load Balancing v2).
    pub balancers: Arc<dyn Balancers>,
    /// Aurora global databases.
    pub aurora: Arc<dyn GlobalDatabases>,
    /// Cloud SQL (and its lag in Cloud Monitoring).
    pub cloud_sql: Arc<dyn CloudSql>,
    /// Cloud DNS record sets.
    pub cloud_dns: Arc<dyn CloudDns>,
    /// Metrics (CloudWatch).
    pub metrics: Arc<dyn Metrics>,
    /// Object storage (S3 and GCS, chosen by URL scheme).
    pub objects: Arc<dyn ObjectStore>,
    /// Caller identity (STS).
    pub identity: Arc<dyn Identity>,
    /// HTTP health probes.
    pub probe: Arc<dyn Probe>,
    /// DNS questions (a data-plane switch's verification).
    pub resolver: Arc<dyn Resolver>,
    /// Notification publishing (SNS, EventBridge).
    pub publisher: Arc<dyn Publisher>,
}

/// Load balancers' target groups: how many of a group's members traffic
/// reaches. Read by the capacity steps for every kind whose reading names
/// target groups (`Reading::balanced_by`), not by a kind of its own.
#[async_trait::async_trait]
pub trait Balancers: Send + Sync {
    /// The health of the targets of target group `arn` in `region`
    /// (`DescribeTargetHealth`).
    async fn target_health(&self, region: &str, arn: &str) -> Result<TargetCount, CloudError>;
}

/// Publishes notification events to AWS services in a given region, so a
/// run tells people through its target region when its home is gone.
#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    /// SNS Publish to `topic_arn` in `region`; the message id.
    async fn sns(
        &self,
        region: &str,
        topic_arn: &str,
        subject: &str,
        message: &str,
    ) -> Result<String, CloudError>;
    /// EventBridge PutEvents of one entry on `bus` in `region`; the event id.
    async fn eventbridge(
        &self,
        region: &str,
        bus: &str,
        detail_type: &str,
        detail: &str,
    ) -> Result<String, CloudError>;
}

impl std::fmt::Debug for Clouds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clouds").finish_non_exhaustive()
    }
}

/// An HTTP date (`Date`, `Last-Modified`: `Wed, 25 Nov 2026 02:10:01 GMT`),
/// when it is one.
pub(crate) fn http_date(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Builds every adapter (AWS for DNS, databases, compute, metrics, identity
/// and `s3://`; GCS for `gs://`) from `settings`; see [`aws::clouds`].
/// With a `call_log`, every call is also appended to it
/// ([`metered::MeterLog::appending_to`]).
pub async fn connect(settings: &CloudSettings) -> Result<Clouds, CloudError> {
    let clouds = aws::clouds(settings).await?;
    let Some(path) = &settings.call_log else {
        return Ok(clouds);
    };
    let log = metered::MeterLog::appending_to(path).map_err(|e| {
        CloudError::new(
            "drctl",
            "call_log",
            path.display().to_string(),
            "-",
            ErrorKind::Client,
            format!("cannot open the call log: {e}"),
        )
    })?;
    Ok(metered::Metered::wrap_into(clouds, log))
}
