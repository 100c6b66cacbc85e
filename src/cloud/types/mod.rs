//! Domain types shared by every cloud adapter.
//!
//! They carry only what drctl reasons about, so that an adapter for another
//! provider can fill them without pretending to be AWS.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod capacity;
mod gcp;
pub use capacity::*;
pub use gcp::*;

/// A hosted zone, as found by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostedZone {
    /// Provider id (Route 53: `Z0123...`, without the `/hostedzone/` prefix).
    pub id: String,
    /// Fully qualified zone name with a trailing dot.
    pub name: String,
}

/// A Route 53 hosted zone's features, as `GetHostedZone` answers them
/// (`HostedZone.Features`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneFeatures {
    /// Its accelerated recovery's status, in Route 53's words (`ENABLED`,
    /// `ENABLING`, `DISABLED`, `ENABLE_FAILED`, ...); `None`: the answer
    /// carries none (a zone that never had the feature, or an emulator).
    pub accelerated_recovery: Option<String>,
    /// Why enabling or disabling it failed, when Route 53 says.
    pub failure: Option<String>,
}

/// A Route 53 record-set protection: while it exists, Route 53 refuses
/// any change that creates, updates or deletes a record set of its name
/// and type, whatever the set identifier, for every principal
/// (`InvalidChangeBatch`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Protection {
    /// The protected name (lowercase, with its final dot).
    pub name: String,
    /// The protected type (`A`).
    pub rtype: String,
    /// Why, as whoever made it wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl Protection {
    /// Whether it holds changes to record sets named `name` of `rtype`.
    pub fn covers(&self, name: &str, rtype: &str) -> bool {
        let norm = |n: &str| n.trim_end_matches('.').to_ascii_lowercase();
        norm(&self.name) == norm(name) && self.rtype.eq_ignore_ascii_case(rtype)
    }

    /// The protection in words: `payments.example.com. A ("freeze")`.
    pub fn said(&self) -> String {
        match &self.comment {
            Some(c) => format!("{} {} (comment: {c:?})", self.name, self.rtype),
            None => format!("{} {} (no comment)", self.name, self.rtype),
        }
    }
}

impl ZoneFeatures {
    /// Whether the zone's changes resume without us-east-1's control plane
    /// (about an hour after an impairment of it): accelerated recovery is
    /// enabled.
    pub fn recovers_without_us_east_1(&self) -> bool {
        self.accelerated_recovery.as_deref() == Some("ENABLED")
    }
}

/// One DNS record set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// Fully qualified name with a trailing dot.
    pub name: String,
    /// Record type (`CNAME`, `A`, ...).
    pub rtype: String,
    /// Time to live in seconds.
    pub ttl: Option<i64>,
    /// Values (targets) of the record.
    pub values: Vec<String>,
    /// Set identifier of a weighted or failover record.
    pub set_identifier: Option<String>,
    /// Weight of a weighted record.
    pub weight: Option<i64>,
    /// Failover role, health check and alias target of a record set that
    /// Route 53's data plane answers for by health (a data-plane switch's
    /// records); `None` for plain and weighted records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
}

impl DnsRecord {
    /// A plain record set: no set identifier, weight or routing.
    pub fn simple(name: String, rtype: &str, ttl: Option<i64>, values: Vec<String>) -> Self {
        Self {
            name,
            rtype: rtype.to_string(),
            ttl,
            values,
            set_identifier: None,
            weight: None,
            routing: None,
        }
    }
}

/// How Route 53's data plane picks a record set by health.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    /// `PRIMARY` or `SECONDARY` of a failover pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<FailoverRole>,
    /// The health check the record set follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
    /// The name in the same zone this record set is an alias of (its
    /// `values` are then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Whether the alias is healthy only while its target is.
    #[serde(default)]
    pub evaluate_target_health: bool,
    /// The hosted zone of the alias target, as read (an alias of a load
    /// balancer or a distribution names that service's zone); `None`: the
    /// record's own zone. A DELETE must name it exactly as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_zone: Option<String>,
}

/// The role of a record set in a Route 53 failover pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FailoverRole {
    /// Answered while its health check passes.
    Primary,
    /// Answered while the primary is unhealthy and this one is not.
    Secondary,
}

impl FailoverRole {
    /// Route 53's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "PRIMARY",
            Self::Secondary => "SECONDARY",
        }
    }
}

/// A Route 53 health check that reads a data-plane control object over
/// HTTP(S) and passes while the body holds `search` (`HTTP_STR_MATCH`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// Provider id (empty before creation).
    #[serde(default)]
    pub id: String,
    /// Idempotency key: the same reference never creates a second check.
    pub caller_reference: String,
    /// `HTTP_STR_MATCH` or `HTTPS_STR_MATCH`.
    pub check_type: String,
    /// IP address to connect to (an endpoint override), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Host name: connected to when there is no IP, else sent as `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// TCP port.
    pub port: u16,
    /// Path of the GET, from `/`.
    pub path: String,
    /// What the first 5,120 bytes of the body must contain.
    pub search: String,
    /// Seconds between checks (10 or 30).
    pub interval: u16,
    /// Consecutive results that flip the status.
    pub failure_threshold: u16,
}

/// One change in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", content = "record", rename_all = "UPPERCASE")]
pub enum DnsChange {
    /// Create or replace the record.
    Upsert(DnsRecord),
    /// Delete the record (it must match exactly: values, TTL, weight).
    Delete(DnsRecord),
    /// Create the record (refused when the set exists).
    Create(DnsRecord),
}

impl DnsChange {
    /// A compare-and-swap of one record set: DELETE exactly what was read
    /// and CREATE `want`, in the same batch (CREATE alone when nothing was
    /// read). A batch is all-or-nothing, so when the set changed since the
    /// read the provider refuses the whole batch instead of overwriting a
    /// newer decision. An alias set (read without a TTL) is swapped the
    /// same way: its DELETE names the alias target as read (zone, name,
    /// target health), which is what Route 53 matches it by.
    pub fn swap(read: Option<&DnsRecord>, want: &DnsRecord) -> Vec<DnsChange> {
        match read {
            None => vec![DnsChange::Create(want.clone())],
            Some(r) => vec![
                DnsChange::Delete(r.clone()),
                DnsChange::Create(want.clone()),
            ],
        }
    }

    /// The record it changes.
    pub fn record(&self) -> &DnsRecord {
        match self {
            DnsChange::Upsert(r) | DnsChange::Delete(r) | DnsChange::Create(r) => r,
        }
    }

    /// What it counts toward Route 53's limit of 1,000 records per batch:
    /// its values, twice for an UPSERT.
    pub fn counted_records(&self) -> usize {
        let values = self.record().values.len().max(1);
        match self {
            DnsChange::Upsert(_) => 2 * values,
            DnsChange::Delete(_) | DnsChange::Create(_) => values,
        }
    }
}

/// Status of a submitted change batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeInfo {
    /// Provider change id (without the `/change/` prefix).
    pub id: String,
    /// Whether the change has propagated to every authoritative server.
    pub in_sync: bool,
}

/// The role of a database instance in its replication topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "role", content = "source")]
pub enum DbRole {
    /// A writable primary (possibly with replicas).
    Primary,
    /// A read replica of the given source (id or ARN, as the provider reports it).
    Replica(String),
}

/// What a maintenance read is about: an RDS instance or a cluster
/// (an Aurora cluster, a global database's member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MaintenanceOf {
    /// A DB instance (the `db-instance-id` filter).
    Instance,
    /// A DB cluster (the `db-cluster-id` filter).
    Cluster,
}

/// Maintenance AWS will apply to a resource
/// (`DescribePendingMaintenanceActions`' `PendingMaintenanceAction`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMaintenance {
    /// What (`system-update`, `db-upgrade`, `hardware-maintenance`,
    /// `ca-certificate-rotation`, ...).
    pub action: String,
    /// AWS's words for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Applied in the next maintenance window after this date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_applied_after: Option<DateTime<Utc>>,
    /// Applied at this date whatever the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_apply: Option<DateTime<Utc>>,
    /// When it is applied now (the sooner of the dates, or as opted in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_apply: Option<DateTime<Utc>>,
    /// The opt-in (`immediate`, `next-maintenance`, `undo-opt-in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_in: Option<String>,
}

impl PendingMaintenance {
    /// In a sentence, for `status` and preflight (pure).
    pub fn say(&self) -> String {
        let day = |t: &DateTime<Utc>| t.format("%Y-%m-%d").to_string();
        let mut when = Vec::new();
        if let Some(t) = &self.current_apply {
            when.push(format!("applies {}", day(t)));
        }
        if let Some(t) = &self.auto_applied_after {
            when.push(format!("auto-applied after {}", day(t)));
        }
        if let Some(t) = &self.forced_apply {
            when.push(format!("forced on {}", day(t)));
        }
        if let Some(o) = &self.opt_in {
            when.push(format!("opted in: {o}"));
        }
        let when = match when.is_empty() {
            true => "no date set".to_string(),
            false => when.join(", "),
        };
        let what = (self.description.as_deref())
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        format!(
            "pending maintenance `{}` ({when}){what}: it may restart it, promote it then or not",
            self.action
        )
    }
}

/// A database instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbInstance {
    /// Instance identifier.
    pub id: String,
    /// Provider ARN.
    pub arn: String,
    /// Region the instance lives in.
    pub region: String,
    /// Engine name (`postgres`, `mysql`, ...).
    pub engine: String,
    /// Instance class (`db.t3.micro`, ...).
    pub instance_class: Option<String>,
    /// Provider status (`available`, `modifying`, `creating`, ...).
    pub status: String,
    /// DNS address of the endpoint, when there is one yet.
    pub endpoint: Option<String>,
    /// Port of the endpoint.
    pub port: Option<i32>,
    /// Primary or replica of what.
    pub role: DbRole,
    /// Identifiers (or ARNs) of this instance's read replicas.
    pub replicas: Vec<String>,
    /// Automated backup retention in days (0 = off: no point-in-time restore).
    pub backup_retention_days: i32,
    /// Latest time the instance can be restored to, when backups are on.
    pub latest_restorable_time: Option<DateTime<Utc>>,
    /// Whether its storage is encrypted.
    pub storage_encrypted: bool,
    /// KMS key of its storage, when encrypted.
    pub kms_key_id: Option<String>,
    /// DB subnet group (the network it lives in).
    pub subnet_group: Option<String>,
    /// VPC security group ids.
    pub security_groups: Vec<String>,
    /// Whether it is deployed across availability zones.
    pub multi_az: bool,
    /// The instance's tags (drills find their temporary instances by them).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
}

impl DbInstance {
    /// Whether the instance accepts connections (`available`).
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }
}

/// Where and how a new read replica is placed: what the provider would
/// otherwise default (its default network, no encryption key of ours, a
/// single zone). Empty fields are left to the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaPlacement {
    /// Instance class.
    pub instance_class: Option<String>,
    /// KMS key in the replica's region (needed for an encrypted source in
    /// another region: a key cannot leave its region).
    pub kms_key_id: Option<String>,
    /// DB subnet group in the replica's region.
    pub subnet_group: Option<String>,
    /// DB parameter group in the new instance's region (none: the
    /// engine's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// Option group in the new instance's region (a restore's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    /// DB cluster parameter group in the new cluster's region (an Aurora
    /// restore's; none: the engine's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_parameter_group: Option<String>,
    /// VPC security group ids in the replica's region.
    pub security_groups: Vec<String>,
    /// Deploy across availability zones.
    pub multi_az: Option<bool>,
    /// Tags the new replica is created with (a drill's run id, owner and
    /// expiry), so that it can be found without a journal.
    pub tags: std::collections::BTreeMap<String, String>,
}

impl ReplicaPlacement {
    /// The placement of a replica of `source` that takes the place of
    /// `previous` (the instance that held the id in that region, e.g. an old
    /// primary set aside): its network, encryption key, zones and class, so
    /// that the new replica lands where the infrastructure put the old one.
    /// Without a previous instance, only the source's class is carried over.
    /// The key is asked for only when the source is encrypted: an encrypted
    /// replica of an unencrypted source cannot be made.
    pub fn like(previous: Option<&DbInstance>, source: &DbInstance) -> Self {
        let Some(prev) = previous else {
            return Self {
                instance_class: source.instance_class.clone(),
                ..Self::default()
            };
        };
        Self {
            instance_class: prev
                .instance_class
                .clone()
                .or_else(|| source.instance_class.clone()),
            kms_key_id: prev.kms_key_id.clone().filter(|_| source.storage_encrypted),
            subnet_group: prev.subnet_group.clone(),
            security_groups: prev.security_groups.clone(),
            multi_az: Some(prev.multi_az),
            ..Self::default()
        }
    }
}

/// What a backup standby restores from in the Region it recovers into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupFrom {
    /// The instance's automated backups replicated into the Region
    /// (`StartDBInstanceAutomatedBackupsReplication`): any point in their
    /// restore window.
    AutomatedBackups,
    /// Its snapshots copied into the Region (`CopyDBSnapshot`): the newest.
    Snapshots,
}

/// A restorable copy of an instance's data in a Region, as read there:
/// its replicated automated backups (with their restore window), or one
/// copied snapshot (restorable to the moment it was taken).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restorable {
    /// What a restore names it by: the backups' ARN, or the snapshot's
    /// identifier.
    pub id: String,
    /// The instance it holds the data of (`DBInstanceIdentifier`).
    pub source: String,
    /// That instance's ARN, when the provider says it (replicated
    /// backups: `DBInstanceArn`): two instances of one name told apart,
    /// such as an old primary renamed out of the way and its successor.
    pub source_arn: Option<String>,
    /// The Region that instance lives in, when the provider says it.
    pub source_region: Option<String>,
    /// Its status in the provider's words (`replicating`, `available`,
    /// `pending`).
    pub status: String,
    /// Whether a restore can start from it now.
    pub ready: bool,
    /// The earliest point it restores to (a snapshot: when it was taken).
    pub earliest: Option<DateTime<Utc>>,
    /// The latest point it restores to (a snapshot: when it was taken).
    pub latest: Option<DateTime<Utc>>,
    /// Whether its data is encrypted, and with which key of this Region.
    pub kms_key_id: Option<String>,
    /// How far a copy still under way is, in percent, when said.
    pub progress: Option<i32>,
    /// The engine its data is of (`postgres`), when said: a restore
    /// keeps it, so the instance class asked for must be offered for it.
    #[serde(default)]
    pub engine: Option<String>,
    /// That engine's version, when said.
    #[serde(default)]
    pub engine_version: Option<String>,
}

/// Something a restore into a Region needs to find there, which the
/// Region may lack: the things a restore names (its network, its
/// parameter and option groups, its class) and the key the data is
/// encrypted with. A kind asks [`crate::cloud::Database::lacking`] for
/// each before it restores, and `status` names what is missing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RestoreNeed {
    /// A DB subnet group, by name.
    SubnetGroup(String),
    /// A DB parameter group, by name.
    ParameterGroup(String),
    /// A DB cluster parameter group (an Aurora cluster's), by name.
    ClusterParameterGroup(String),
    /// An option group, by name.
    OptionGroup(String),
    /// An instance class offered for an engine (and version).
    InstanceClass {
        /// The class (`db.r6g.large`).
        class: String,
        /// The engine (`postgres`).
        engine: String,
        /// Its version, when known.
        version: Option<String>,
    },
    /// A KMS key, by ARN or id: it must exist and be enabled.
    KmsKey(String),
}

impl RestoreNeed {
    /// The API operation that reads it (what the meter records).
    pub fn call(&self) -> &'static str {
        match self {
            Self::SubnetGroup(_) => "rds:DescribeDBSubnetGroups",
            Self::ParameterGroup(_) => "rds:DescribeDBParameterGroups",
            Self::ClusterParameterGroup(_) => "rds:DescribeDBClusterParameterGroups",
            Self::OptionGroup(_) => "rds:DescribeOptionGroups",
            Self::InstanceClass { .. } => "rds:DescribeOrderableDBInstanceOptions",
            Self::KmsKey(_) => "kms:DescribeKey",
        }
    }
}

impl std::fmt::Display for RestoreNeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SubnetGroup(n) => write!(f, "DB subnet group {n}"),
            Self::ParameterGroup(n) => write!(f, "DB parameter group {n}"),
            Self::ClusterParameterGroup(n) => write!(f, "DB cluster parameter group {n}"),
            Self::OptionGroup(n) => write!(f, "option group {n}"),
            Self::InstanceClass {
                class,
                engine,
                version,
            } => match version {
                Some(v) => write!(f, "instance class {class} for {engine} {v}"),
                None => write!(f, "instance class {class} for {engine}"),
            },
            Self::KmsKey(k) => write!(f, "KMS key {k}"),
        }
    }
}

/// Where a point-in-time restore should land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestorePoint {
    /// The latest restorable time the provider offers.
    Latest,
    /// An explicit time.
    At(DateTime<Utc>),
}

/// An Aurora DB cluster as read (`DescribeDBClusters`): a member of a
/// global database in one region, or a standalone cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCluster {
    /// Cluster identifier.
    pub id: String,
    /// Provider ARN.
    pub arn: String,
    /// Region it lives in.
    pub region: String,
    /// Engine (`aurora-postgresql`, `aurora-mysql`).
    pub engine: String,
    /// Provider status (`available`, `failing-over`, ...).
    pub status: String,
    /// Its writer endpoint (the cluster endpoint), when it has one.
    pub endpoint: Option<String>,
    /// Its reader endpoint.
    pub reader_endpoint: Option<String>,
    /// The global cluster it belongs to, as it reports it (id or ARN),
    /// `None` when standalone.
    pub global_cluster: Option<String>,
    /// Automated backup retention in days (how long an unplanned
    /// failover's snapshot of it is kept).
    pub backup_retention_days: i32,
    /// The cluster's tags (drills find their copies by them).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Its DB instances' identifiers (`DBClusterMembers`): maintenance
    /// is also pending per instance.
    #[serde(default)]
    pub members: Vec<String>,
}

impl DbCluster {
    /// Whether the provider reports it `available`.
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }
}

/// One member cluster of a global database (`GlobalClusterMembers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalMember {
    /// The member cluster's ARN.
    pub arn: String,
    /// Whether it is the global database's writer.
    pub writer: bool,
    /// Its region, read from its ARN.
    pub region: String,
    /// Its cluster identifier, read from its ARN.
    pub id: String,
}

/// A writer move under way (`FailoverState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalMove {
    /// `pending`, `switching-over`, `failing-over`, `cancelling`.
    pub status: String,
    /// The writer it moves from (ARN).
    pub from: Option<String>,
    /// The member it moves to (ARN).
    pub to: Option<String>,
    /// Whether data loss was allowed (an unplanned failover).
    pub data_loss_allowed: bool,
}

/// A member's region and id, read from its ARN
/// (`arn:aws:rds:REGION:ACCOUNT:cluster:ID`).
pub fn parse_cluster_arn(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [_, _, _, region, _, _, id, ..] => (region.to_string(), id.to_string()),
        _ => (String::new(), arn.to_string()),
    }
}

/// An Aurora global database as read (`DescribeGlobalClusters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalCluster {
    /// Global cluster identifier.
    pub id: String,
    /// Provider ARN.
    pub arn: String,
    /// Provider status (`available`, `switching-over`, `failing-over`).
    pub status: String,
    /// Its global writer endpoint, when the provider gives one.
    pub endpoint: Option<String>,
    /// Its member clusters.
    pub members: Vec<GlobalMember>,
    /// The writer move under way, if any.
    pub moving: Option<GlobalMove>,
}

impl GlobalCluster {
    /// The member that writes.
    pub fn writer(&self) -> Option<&GlobalMember> {
        self.members.iter().find(|m| m.writer)
    }

    /// The member cluster `id` in `region`.
    pub fn member(&self, region: &str, id: &str) -> Option<&GlobalMember> {
        self.members
            .iter()
            .find(|m| m.region == region && m.id.eq_ignore_ascii_case(id))
    }
}

/// A DB cluster snapshot as read (`DescribeDBClusterSnapshots`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// Snapshot identifier (`rds:unplanned-global-failover-...`).
    pub id: String,
    /// The cluster it is of.
    pub cluster: String,
    /// When it was taken.
    pub created: Option<DateTime<Utc>>,
    /// `automated` or `manual`.
    pub kind: String,
    /// Its status (`creating`, `available`, `copying`).
    #[serde(default)]
    pub status: String,
    /// Its ARN: what a copy into another Region names as its source.
    #[serde(default)]
    pub arn: Option<String>,
    /// Whether its data is encrypted (a copy into another Region then
    /// needs a key of that Region).
    #[serde(default)]
    pub encrypted: bool,
}

/// A replica-lag reading over a time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagReading {
    /// Largest lag seen in the window; `None` when there was no datapoint.
    pub max: Option<Duration>,
    /// The most recent datapoint and its timestamp.
    pub latest: Option<(Duration, DateTime<Utc>)>,
    /// Number of datapoints in the window.
    pub datapoints: usize,
    /// The window that was read.
    pub window: Duration,
}

/// Scheme of an object URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectScheme {
    /// Amazon S3 (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
}

impl ObjectScheme {
    /// The call that asks whether a bucket exists
    /// ([`crate::cloud::ObjectStore::bucket_exists`]), as the meter, the
    /// call log and messages name it: S3's `HeadBucket`; on Cloud
    /// Storage, a list of at most one object (`objects.list`, which
    /// answers 404 for a missing bucket).
    pub fn bucket_probe(self) -> &'static str {
        match self {
            Self::S3 => "s3:HeadBucket",
            Self::Gcs => "gcs:objects.list",
        }
    }
}

/// An object (or bucket, or prefix) address: `s3://bucket/key` or `gs://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectUrl {
    /// Which store.
    pub scheme: ObjectScheme,
    /// Bucket name.
    pub bucket: String,
    /// Key (empty for a bucket); never starts with `/`.
    pub key: String,
}

/// Why an object URL did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{url}` is not an object URL: {reason} (expected s3://bucket/prefix or gs://bucket/prefix)"
)]
pub struct ObjectUrlError {
    /// The input.
    pub url: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ObjectUrl {
    /// Parses `s3://bucket/key` or `gs://bucket/key`.
    pub fn parse(url: &str) -> Result<Self, ObjectUrlError> {
        let err = |reason| ObjectUrlError {
            url: url.to_string(),
            reason,
        };
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("s3://") {
            (ObjectScheme::S3, rest)
        } else if let Some(rest) = url.strip_prefix("gs://") {
            (ObjectScheme::Gcs, rest)
        } else {
            return Err(err("unknown scheme"));
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(err("empty bucket name"));
        }
        let valid = bucket.len() >= 3
            && bucket.len() <= 63
            && bucket.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | '_')
            })
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid {
            return Err(err(
                "bucket names are 3-63 characters of lowercase letters, digits, '-' and '.'",
            ));
        }
        Ok(Self {
            scheme,
            bucket: bucket.to_string(),
            key: key.trim_start_matches('/').to_string(),
        })
    }

    /// The same bucket with `key` appended (joined with `/`).
    pub fn join(&self, key: &str) -> Self {
        let key = key.trim_start_matches('/');
        let joined = if self.key.is_empty() {
            key.to_string()
        } else {
            format!("{}/{}", self.key.trim_end_matches('/'), key)
        };
        Self {
            key: joined,
            ..self.clone()
        }
    }
}

impl fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            ObjectScheme::S3 => "s3",
            ObjectScheme::Gcs => "gs",
        };
        if self.key.is_empty() {
            write!(f, "{scheme}://{}", self.bucket)
        } else {
            write!(f, "{scheme}://{}/{}", self.bucket, self.key)
        }
    }
}

/// How to write an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Only create: never replace an existing object (conditional write).
    CreateOnly,
}

/// An S3 Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Deletable or replaceable only with `s3:BypassGovernanceRetention`.
    Governance,
    /// Deletable or replaceable by nobody until it expires.
    Compliance,
}

impl LockMode {
    /// The word S3 uses (`GOVERNANCE`, `COMPLIANCE`).
    pub fn as_s3(self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }
}

/// The retention an evidence object is written under: kept unchanged
/// until `until` in `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// How strictly.
    pub mode: LockMode,
    /// Until when.
    pub until: chrono::DateTime<chrono::Utc>,
}

/// What a bucket keeps by itself, as its store describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BucketLock {
    /// S3 Object Lock enabled on the bucket; `None` where the store has no
    /// such setting (GCS) or it could not be read.
    pub object_lock: Option<bool>,
    /// The bucket's default retention (S3 Object Lock rule): mode and days.
    pub default_retention: Option<(LockMode, u32)>,
}

/// What a retained, create-only write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Written, or already there (never replaced).
    pub outcome: PutOutcome,
    /// Until when the store says it keeps the object unchanged (GCS: the
    /// bucket's retention policy), when it says.
    pub retained_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a put did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutOutcome {
    /// The object was written; its version for compare-and-swap (S3's ETag,
    /// GCS's generation) when the provider returned one.
    Written(Option<String>),
    /// [`PutMode::CreateOnly`] found an object already there.
    AlreadyExists,
}

/// An object read together with its version, for compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The object's bytes.
    pub body: bytes::Bytes,
    /// Its version: S3's ETag (quotes included, as `If-Match` wants it) or
    /// GCS's generation (decimal).
    pub version: String,
    /// What the answer said of the store's clock.
    pub times: StoreTimes,
}

/// The store's clock, as one answer showed it. Leases are judged by it
/// (another's lease expires by the store's time, never by its holder's
/// clock or ours: docs/state.md, "Whose clock").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreTimes {
    /// When the store last wrote the object, by its own clock (S3's
    /// `Last-Modified`, GCS's, the object's `updated`); `None` when it
    /// did not say.
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
    /// The store's clock when it answered (the HTTP `Date` header); `None`
    /// when it did not say.
    pub answered: Option<chrono::DateTime<chrono::Utc>>,
    /// How finely both are given, cut down to it: one second for HTTP
    /// dates (the true time lies within a second after the one given).
    pub resolution: std::time::Duration,
}

/// What a swap ([`crate::cloud::ObjectStore::replace_if`]) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwapOutcome {
    /// Replaced; the new version.
    Swapped(String),
    /// The object is no longer at the expected version (or is gone, or S3
    /// reported a concurrent conditional write): read it again.
    Stale,
}

/// One page-merged listing under a prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Full keys of the objects directly under the prefix (all of them when
    /// the listing is not delimited), in name order.
    pub keys: Vec<String>,
    /// With a `/` delimiter: the "directories" (common prefixes, ending in `/`).
    pub prefixes: Vec<String>,
    /// Each key's size in bytes, where the listing says it: a reader of
    /// many objects judges what it would read before reading it.
    pub sizes: std::collections::BTreeMap<String, u64>,
}

impl Listing {
    /// The bytes the listing says `keys` hold (a key it gives no size for
    /// counts none).
    pub fn bytes_of<'a>(&self, keys: impl IntoIterator<Item = &'a String>) -> u64 {
        keys.into_iter()
            .filter_map(|k| self.sizes.get(k))
            .fold(0u64, |a, b| a.saturating_add(*b))
    }
}

/// What a bucket's replication setup looks like (what `[[bucket]]` checks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    /// Whether the bucket exists (and is visible to our credentials).
    pub exists: bool,
    /// Where it lives: the S3 region, or the GCS location (`US-EAST1`,
    /// `US`, `NAM4`...).
    pub location: Option<String>,
    /// GCS location type (`region`, `dual-region`, `multi-region`).
    pub location_type: Option<String>,
    /// Object versioning on; `None` when it could not be read.
    pub versioning: Option<bool>,
    /// Replication rules (S3); `None` when not applicable or unreadable,
    /// empty when the bucket has none.
    pub replication: Option<Vec<ReplicationRule>>,
}

/// One replication rule of a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationRule {
    /// Rule id.
    pub id: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Destination bucket (an ARN `arn:aws:s3:::name`, or a name).
    pub destination: String,
}

impl ReplicationRule {
    /// Whether the rule replicates into bucket `name`.
    pub fn targets(&self, name: &str) -> bool {
        self.destination == name || self.destination.rsplit(":::").next() == Some(name)
    }
}

/// What an HTTP health probe answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// HTTP status.
    pub status: u16,
    /// How long the answer took.
    pub elapsed_ms: u64,
    /// The body's length in bytes. The body itself is never kept: it is
    /// whatever the service chose to say, and an answer goes into errors,
    /// journals, reports and notifications (`cloud::http`).
    pub body_bytes: u64,
}

/// The identity our credentials resolve to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    /// Account id.
    pub account: String,
    /// Principal ARN.
    pub arn: String,
    /// Unique user id.
    pub user_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_urls_parse_and_print() {
        let u = ObjectUrl::parse("s3://drctl-evidence-use1/payments").unwrap();
        assert_eq!(u.scheme, ObjectScheme::S3);
        assert_eq!(u.bucket, "drctl-evidence-use1");
        assert_eq!(u.key, "payments");
        assert_eq!(u.to_string(), "s3://drctl-evidence-use1/payments");
        assert_eq!(
            u.join("run-1/journal.jsonl").to_string(),
            "s3://drctl-evidence-use1/payments/run-1/journal.jsonl"
        );
        let g = ObjectUrl::parse("gs://drctl-evidence").unwrap();
        assert_eq!(g.scheme, ObjectScheme::Gcs);
        assert_eq!(g.key, "");
        assert_eq!(g.join("a").to_string(), "gs://drctl-evidence/a");
    }

    #[test]
    fn bad_object_urls_are_rejected() {
        for bad in [
            "http://x/y",
            "s3://",
            "s3:///key",
            "gs://UPPER/x",
            "s3://ab",
            "s3://-bad",
        ] {
            assert!(ObjectUrl::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    fn instance(encrypted: bool) -> DbInstance {
        DbInstance {
            id: "db".into(),
            arn: "arn:aws:rds:us-west-2:1:db:db".into(),
            region: "us-west-2".into(),
            engine: "postgres".into(),
            instance_class: Some("db.r6g.large".into()),
            status: "available".into(),
            endpoint: None,
            port: None,
            role: DbRole::Primary,
            replicas: vec![],
            backup_retention_days: 7,
            latest_restorable_time: None,
            storage_encrypted: encrypted,
            kms_key_id: encrypted.then(|| "key-usw2".into()),
            subnet_group: Some("net-usw2".into()),
            security_groups: vec!["sg-1".into()],
            multi_az: true,
            tags: Default::default(),
        }
    }

    #[test]
    fn a_replica_is_placed_like_the_instance_it_replaces() {
        let prev = instance(true);
        let p = ReplicaPlacement::like(Some(&prev), &instance(true));
        assert_eq!(p.kms_key_id.as_deref(), Some("key-usw2"));
        assert_eq!(p.subnet_group.as_deref(), Some("net-usw2"));
        assert_eq!(p.security_groups, ["sg-1"]);
        assert_eq!(p.multi_az, Some(true));
        assert_eq!(p.instance_class.as_deref(), Some("db.r6g.large"));
        // An unencrypted source cannot have an encrypted replica: no key asked.
        let p = ReplicaPlacement::like(Some(&prev), &instance(false));
        assert_eq!(p.kms_key_id, None);
        // Nothing to copy: only the source's class.
        let p = ReplicaPlacement::like(None, &instance(true));
        assert_eq!(
            p,
            ReplicaPlacement {
                instance_class: Some("db.r6g.large".into()),
                ..Default::default()
            }
        );
    }
}
