//! The Google Cloud kinds' domain types: Cloud SQL instances and their
//! operations, managed instance groups, Cloud Run services and Cloud DNS
//! record sets, as much of each as a failover reasons about.

use super::*;

/// A Cloud SQL instance, as the Cloud SQL Admin API describes it: what a
/// failover needs of it (its role, its state, where it serves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlInstance {
    /// The instance's name (unique in its project).
    pub name: String,
    /// Its GCP region (`us-central1`).
    pub region: String,
    /// Cloud SQL's state (`RUNNABLE`, `MAINTENANCE`, `FAILED`, ...).
    pub state: String,
    /// A primary, or a replica of the instance named (its bare name: Cloud
    /// SQL answers `project:instance` after a switchover).
    pub role: DbRole,
    /// Its read replicas' names, for a primary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<String>,
    /// Whether it is its primary's disaster-recovery replica (Enterprise
    /// Plus `replicationCluster.drReplica`): one that can fail over
    /// (`promoteReplica` with `failover`) and switch over.
    #[serde(default)]
    pub dr_replica: bool,
    /// Its edition (`ENTERPRISE`, `ENTERPRISE_PLUS`), when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<String>,
    /// Its DNS name, when Cloud SQL reports one, else its primary IP
    /// address: what a record that follows it points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The write endpoint of its replication cluster, when Cloud SQL
    /// reports one (`replicationCluster.psaWriteEndpoint`, else
    /// `writeEndpoint`): a name Cloud SQL itself moves to the cluster's
    /// primary at a switchover or DR failover, the same on the primary and
    /// its DR replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_endpoint: Option<String>,
    /// Its user labels (`settings.userLabels`): a restore's mark of the
    /// run that made it.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Where its backups are kept when not the default
    /// (`settings.backupConfiguration.location`: a region or a
    /// multi-region), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_location: Option<String>,
}

impl SqlInstance {
    /// What a record that follows it names: its cluster's write endpoint
    /// where one exists (it follows the primary with no DNS change), else
    /// its own endpoint.
    pub fn followed_endpoint(&self) -> Option<String> {
        self.write_endpoint
            .clone()
            .or_else(|| self.endpoint.clone())
    }

    /// Whether it serves (`RUNNABLE`).
    pub fn is_runnable(&self) -> bool {
        self.state == "RUNNABLE"
    }
}

/// A project's Cloud SQL instances as `instances.list` answered them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlList {
    /// The instances it listed.
    pub instances: Vec<SqlInstance>,
    /// The regions it said it could not reach (its `REGION_UNREACHABLE`
    /// warnings), each with the warning's message: the list lacks their
    /// instances.
    pub unreachable: Vec<(String, String)>,
}

/// Where a Cloud SQL operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlOpStatus {
    /// Accepted, not started.
    Pending,
    /// Under way.
    Running,
    /// Over: done, or failed when it carries an error.
    Done,
    /// A status this version of drctl does not know: not done.
    Unknown,
}

/// A Cloud SQL operation: every write of the Admin API answers one, which
/// the caller polls (`operations.get`) until it is `DONE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqlOperation {
    /// Its name, unique in the project: what `operations.get` takes.
    pub name: String,
    /// What it does (`PROMOTE_REPLICA`, `SWITCHOVER`, `CLONE`, ...).
    pub kind: String,
    /// The instance it acts on.
    pub target: String,
    /// Where it stands.
    pub status: SqlOpStatus,
    /// Why it failed, when it is done and failed (Cloud SQL's messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inserted: Option<DateTime<Utc>>,
}

impl SqlOperation {
    /// Whether it is over (done or failed).
    pub fn is_done(&self) -> bool {
        self.status == SqlOpStatus::Done
    }
}

/// How far back an instance can be restored (`getLatestRecoveryTime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryWindow {
    /// The earliest point in time, when reported.
    pub earliest: Option<DateTime<Utc>>,
    /// The latest point in time a clone can be made at.
    pub latest: DateTime<Utc>,
}

/// A regional managed instance group, as Compute Engine reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigGroup {
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// The number of instances it is asked to keep (`targetSize`).
    pub target_size: u32,
    /// Whether every instance is up to date and idle (`status.isStable`).
    pub stable: bool,
    /// The autoscaler attached to it, by name (`status.autoscaler`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<String>,
    /// Instances with no action under way (`currentActions.none`).
    pub idle: u32,
    /// Instances being created (`currentActions.creating`, with and
    /// without retries).
    pub creating: u32,
}

/// One instance of a managed instance group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigInstance {
    /// Its name.
    pub name: String,
    /// What the group is doing to it (`NONE`, `CREATING`, `VERIFYING`, ...).
    pub action: String,
    /// Its status (`RUNNING`, ...); `None` while it is being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The errors of the group's last attempt at it (`code: message`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl MigInstance {
    /// Whether it serves: running with nothing under way.
    pub fn running(&self) -> bool {
        self.action == "NONE" && self.status.as_deref() == Some("RUNNING")
    }
}

/// A regional autoscaler's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigAutoscaler {
    /// Its name.
    pub name: String,
    /// `autoscalingPolicy.minNumReplicas`.
    pub min: u32,
    /// `autoscalingPolicy.maxNumReplicas`.
    pub max: u32,
}

/// A Compute Engine regional operation (what `resize` and an autoscaler's
/// `patch` answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigOperation {
    /// Its name: what `regionOperations.get` takes.
    pub name: String,
    /// What it does (`compute.regionInstanceGroupManagers.resize`, ...).
    pub kind: String,
    /// Whether it is `DONE` (scheduled: not that the instances run).
    pub done: bool,
    /// Why it failed, when it is done and failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A Cloud Run service as read (`services.get`, Cloud Run Admin v2): what
/// a failover sizes (the service-level minimum instances, which take effect
/// without a new revision), the revision-level floor that adds to it, its
/// labels (where a drill's marks live) and whether it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunService {
    /// The service's short name.
    pub name: String,
    /// Its region (the API's location).
    pub region: String,
    /// The service-level floor, `scaling.minInstanceCount` (0 when
    /// unset): what drctl sets.
    pub floor: u32,
    /// The revision-level floor, `template.scaling.minInstanceCount` (0
    /// when unset): every revision in the traffic split keeps this many
    /// warm besides the service's floor; Google advises against setting
    /// both.
    pub min_instances: u32,
    /// `template.scaling.maxInstanceCount` (`None` when unset: Cloud Run's
    /// default).
    pub max_instances: Option<u32>,
    /// The spec's generation.
    pub generation: i64,
    /// The generation Cloud Run last reconciled.
    pub observed_generation: i64,
    /// The short name of the revision the latest spec created.
    pub latest_created: String,
    /// The short name of the latest revision that serves.
    pub latest_ready: String,
    /// The `Ready` condition's state (`CONDITION_SUCCEEDED`,
    /// `CONDITION_RECONCILING`, `CONDITION_FAILED`, ...; `""` when absent).
    pub ready_state: String,
    /// The `Ready` condition's message, when it has one (why it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_message: Option<String>,
    /// Whether Cloud Run is still rolling the spec out.
    pub reconciling: bool,
    /// The service's etag (a patch that carries it is refused if the
    /// service changed since).
    pub etag: String,
    /// Its labels (a drill's marks among them, `drctl-drill-*`).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl RunService {
    /// Whether its latest spec serves: observed, not reconciling, `Ready`,
    /// and the latest revision created is the one that serves.
    pub fn serves(&self) -> bool {
        !self.reconciling
            && self.observed_generation >= self.generation
            && self.ready_state == "CONDITION_SUCCEEDED"
            && !self.latest_created.is_empty()
            && self.latest_created == self.latest_ready
    }

    /// Whether its latest rollout failed (`Ready` is `CONDITION_FAILED` for
    /// the generation asked for).
    pub fn failed(&self) -> bool {
        !self.reconciling
            && self.observed_generation >= self.generation
            && self.ready_state == "CONDITION_FAILED"
    }
}

/// A Cloud DNS record set as read (`resourceRecordSets.list` filtered by
/// name and type): what a `[[cloud_dns]]` switch swaps, and what its
/// change deletes exactly as read (Cloud DNS's compare-and-swap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudRecordSet {
    /// Its fully qualified name (`orders.gcp.example.com.`).
    pub name: String,
    /// Its type (`CNAME`, `A`).
    pub rtype: String,
    /// Its TTL in seconds.
    pub ttl: i64,
    /// Its values, as Cloud DNS keeps them.
    pub rrdatas: Vec<String>,
    /// Whether it carries a routing policy (geo, weighted, primary/backup):
    /// a records-mode switch refuses to swap such a record for a plain one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub routed: bool,
    /// Its `primaryBackup` routing policy, when that is the policy it
    /// carries (a health-check `[[cloud_dns]]`'s; `routed` is then set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_backup: Option<PrimaryBackup>,
}

/// A Cloud DNS `primaryBackup` routing policy as drctl writes and reads it:
/// the primary's health-checked external endpoints, the backups (one geo
/// item per region, its rrdatas health-checked), and the Compute health
/// check that probes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryBackup {
    /// `primaryTargets.externalEndpoints`: the home region's value.
    pub primary: Vec<String>,
    /// `backupGeoTargets.items`, in order.
    pub backups: Vec<BackupItem>,
    /// `healthCheck`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<String>,
}

/// One backup of a [`PrimaryBackup`]: a region and its values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupItem {
    /// The item's `location` (a GCP region).
    pub location: String,
    /// Its values: written as its health-checked external endpoints (read
    /// back as those and any plain rrdatas).
    pub rrdatas: Vec<String>,
}

/// A Cloud DNS change (`changes.create`, `changes.get`): its id in its
/// zone and whether Cloud DNS has sent it to its name servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudDnsChange {
    /// Its id in the managed zone (a sequence number, as a string).
    pub id: String,
    /// `status` is `done` (else `pending`).
    pub done: bool,
}

/// A Cloud DNS managed zone as read (`managedZones.get`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudDnsZone {
    /// Its name (`orders-zone`).
    pub name: String,
    /// The DNS name it serves (`gcp.example.com.`).
    pub dns_name: String,
}
