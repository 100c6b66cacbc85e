//! An in-memory cloud for fast unit tests of the logic above the adapters.
//!
//! It models just enough behaviour (replicas, promotion, capacities, weighted
//! records, conditional writes) to exercise readiness and the engine without
//! a network. It is *not* a substitute for the emulator tests in `tests/it`,
//! which run the real adapters against real emulators.
//!
//! A test tool, not part of the shipped library: it is compiled for unit
//! tests and with the `testkit` feature (integration tests, benches, the
//! simulator), never by a plain `cargo build`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;

use super::*;

mod aws_db;
mod balancers;
pub use groups::{FakeGroup, Held, slow_key};
mod dns;
mod groups;
mod services;
mod sql;
#[cfg(test)]
mod world;

use aws_db::{fake_cluster, settle_move};
#[cfg(test)]
pub(crate) use world::reference_world;

/// Where the fake keeps a backup: the region it is kept in, the
/// instance it holds the data of, and that instance's region.
#[derive(Debug, Clone, Copy)]
pub struct BackupAt<'a> {
    /// The region the backup is kept in.
    pub region: &'a str,
    /// The instance whose data it holds.
    pub source: &'a str,
    /// That instance's region.
    pub from: &'a str,
}

/// Mutable state of the fake world; tests seed and inspect it directly.
#[derive(Debug, Default, Clone)]
pub struct FakeState {
    /// Messages published (SNS topic ARN or EventBridge bus, region, body).
    pub published: Vec<(String, String, String)>,
    /// Hosted zones by name (with trailing dot).
    pub zones: BTreeMap<String, HostedZone>,
    /// Records by zone id.
    pub records: BTreeMap<String, Vec<DnsRecord>>,
    /// Hosted zones' features by zone id (absent: none reported, as the
    /// emulators answer).
    pub zone_features: BTreeMap<String, ZoneFeatures>,
    /// Record-set protections, by zone id (`protect`).
    pub protections: BTreeMap<String, Vec<Protection>>,
    /// How many of the next Route 53 changes are stranded: accepted and
    /// answered `PENDING`, never applied and never `INSYNC`, as a change
    /// accepted just before the control plane failed over to its
    /// accelerated-recovery copy.
    pub strand_changes: u32,
    /// The changes stranded so far (ids).
    pub stranded: std::collections::BTreeSet<String>,
    /// Database instances by (region, id).
    pub databases: BTreeMap<(String, String), DbInstance>,
    /// Target groups whose targets fail their health checks, by ARN, with
    /// the reason each reports (`fail_targets`); every other target group
    /// counts what serves behind it healthy.
    pub failing_targets: BTreeMap<String, String>,
    /// The groups of the capacity kinds on the role's port, by kind,
    /// region and name (`groups.rs`).
    pub scaled: BTreeMap<(&'static str, String, String), groups::FakeGroup>,
    /// Calls of the kinds on the port held back, by label (`groups.rs`).
    pub held: BTreeMap<&'static str, groups::Held>,
    /// Aurora DB clusters by (region, id).
    pub clusters: BTreeMap<(String, String), DbCluster>,
    /// Aurora global clusters by id.
    pub globals: BTreeMap<String, GlobalCluster>,
    /// The cluster each Aurora instance (in `databases`) belongs to, by
    /// (region, instance id).
    pub cluster_instances: BTreeMap<(String, String), String>,
    /// DB cluster snapshots by region.
    pub cluster_snapshots: Vec<(String, ClusterSnapshot)>,
    /// Clusters (region, id) whose storage is encrypted: their snapshots
    /// are, and a copy of them into another Region needs a key there.
    pub encrypted_clusters: std::collections::BTreeSet<(String, String)>,
    /// Global cluster moves the fake refuses, by operation
    /// (`FailoverGlobalCluster`): the error code it answers.
    pub refuse_moves: BTreeMap<String, String>,
    /// Maintenance AWS will apply, by (region, instance or cluster, id).
    pub maintenance: BTreeMap<(String, MaintenanceOf, String), Vec<PendingMaintenance>>,
    /// Replica lag datapoints (seconds) by (region, db id); an Aurora
    /// secondary's by (region, cluster id).
    pub lag: BTreeMap<(String, String), Vec<f64>>,
    /// CloudWatch alarms in ALARM, by (region, name); an alarm absent here
    /// but in `alarms_ok` is OK; absent from both, missing.
    pub alarms_firing: std::collections::BTreeSet<(String, String)>,
    /// CloudWatch alarms that exist and are OK, by (region, name).
    pub alarms_ok: std::collections::BTreeSet<(String, String)>,
    /// Objects by URL.
    pub objects: BTreeMap<String, Bytes>,
    /// Buckets by `scheme://bucket`.
    pub buckets: Vec<String>,
    /// Bucket states by `scheme://bucket` (buckets listed in `buckets`
    /// and absent here exist with nothing else known).
    pub bucket_states: BTreeMap<String, BucketState>,
    /// What each probed URL answers: a status, or `None` for no answer
    /// (refused). URLs not here refuse.
    pub probes: BTreeMap<String, Option<u16>>,
    /// Every mutating call, in order, as `Operation resource`.
    pub writes: Vec<String>,
    /// Cloud SQL backups, by (location, instance): what a Cloud SQL
    /// backup standby restores from.
    pub sql_backups: BTreeMap<(String, String), Vec<Restorable>>,
    /// What a backup standby restores from: replicated automated backups
    /// and copied snapshots, by (region, source instance).
    pub restorables: BTreeMap<(String, String), Vec<Restorable>>,
    /// What a region lacks for a restore, by (region, need), with what
    /// the provider says of it (`does not exist`, `is PendingDeletion`):
    /// every other need is taken as there.
    pub lacking: BTreeMap<(String, crate::cloud::RestoreNeed), String>,
    /// What each instance restored from backups was restored from and
    /// how: (backups ARN or snapshot, point asked, placement), by
    /// (region, new instance).
    pub restored_from: BTreeMap<(String, String), (String, Option<RestorePoint>, ReplicaPlacement)>,
    /// The point in time each Cloud SQL clone was asked at, by the new
    /// instance's name (`None`: the source's present state).
    pub clone_points: BTreeMap<String, Option<chrono::DateTime<chrono::Utc>>>,
    /// Behave like an S3-compatible store that silently ignores
    /// conditional-write headers (what the state store's probe must refuse).
    pub ignores_conditions: bool,
    /// Buckets (`s3://name`) with S3 Object Lock enabled.
    pub locked_buckets: std::collections::BTreeSet<String>,
    /// The retention each retained object was written under, by URL.
    pub retained: BTreeMap<String, Retention>,
    /// Route 53 health checks.
    pub health_checks: Vec<HealthCheck>,
    /// Cloud SQL instances by (project, name).
    pub sql: BTreeMap<(String, String), SqlInstance>,
    /// Former primaries of a DR replica failover, (project, old, new): each
    /// rejoins as a read replica of the new primary once its region
    /// answers, as Cloud SQL does (see [`FakeState::sql_rejoin`]).
    pub sql_rejoins: Vec<(String, String, String)>,
    /// Cloud SQL operations by (project, name), with the effect each has
    /// when it is done: every `operations.get` moves one on a step
    /// (`PENDING`, `RUNNING`, `DONE`).
    pub sql_ops: BTreeMap<(String, String), (SqlOperation, SqlEffect)>,
    /// Cloud SQL operations armed to fail, by (instance, operation type):
    /// the error they end with.
    pub sql_failures: BTreeMap<(String, String), String>,
    /// Cloud SQL instances (by project and name) without point-in-time
    /// recovery: `getLatestRecoveryTime` refuses them, as Cloud SQL does.
    pub sql_no_pitr: std::collections::BTreeSet<(String, String)>,
    /// Cloud DNS managed zones by (project, zone): the DNS name each serves.
    pub cloud_zones: BTreeMap<(String, String), String>,
    /// Cloud DNS record sets by (project, zone, name, type), the name lower
    /// case.
    pub cloud_rrsets: BTreeMap<(String, String, String, String), CloudRecordSet>,
    /// The control object each health-checked serving address answers
    /// its health path from, with its GCP region
    /// ([`FakeCloud::serve_control_at`]).
    pub cloud_controls: BTreeMap<String, (String, ObjectUrl)>,
    /// Cloud DNS changes by (project, zone, id): the reads each has had
    /// (`done` at the second).
    pub cloud_changes: BTreeMap<(String, String, String), u32>,
    /// Another writer armed for the next Cloud DNS change of a zone, by
    /// (project, zone): the record set it puts there first (a change made
    /// between a switch's read and its own).
    pub cloud_dns_races: BTreeMap<(String, String), CloudRecordSet>,
    /// Regions whose endpoints do not answer: object, database, group and
    /// metric calls there fail, and health checks of controls there fail
    /// closed.
    pub dead_regions: std::collections::BTreeSet<String>,
    /// Calls (`(service, operation)`, in every region) refused with the
    /// reason given, as a role without their permission is: an error no
    /// retry helps.
    pub refused: BTreeMap<(String, String), String>,
    change_counter: u64,
    object_versions: BTreeMap<String, u64>,
    /// When each object was last written, by the store's clock (only with
    /// [`FakeCloud::with_store_clock`]).
    object_modified: BTreeMap<String, chrono::DateTime<Utc>>,
}

/// What a fake Cloud SQL operation does when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlEffect {
    /// A replica becomes a primary (with `failover`, its primary's other
    /// replicas follow it).
    Promote {
        /// A DR failover.
        failover: bool,
    },
    /// The DR replica and its primary swap roles.
    Switchover,
    /// A new instance, cloned from the named source.
    Clone(String),
    /// A new instance restored from a backup of `source`, in `region`,
    /// labelled `labels`.
    Restore {
        /// The instance the backup is of.
        source: String,
        /// Where the new instance is.
        region: String,
        /// Its user labels.
        labels: BTreeMap<String, String>,
    },
    /// The instance is deleted.
    Delete,
    /// The named replica becomes the instance's DR replica.
    DesignateDr(String),
    /// The instance's backups are kept in the location named from now on.
    KeepBackupsIn(String),
    /// An on-demand backup of the instance, kept in the location named.
    Backup(String),
    /// The old primary's side of a promotion or a switchover
    /// (`RECONFIGURE_OLD_PRIMARY`, `SWITCHOVER_TO_REPLICA`): its effect is
    /// the move's own (a DR failover's rejoin waits for its region).
    OldPrimary,
}

impl FakeState {
    /// A new change of `zone`, `pending` (its id the zone's next sequence
    /// number, as Cloud DNS numbers them).
    fn cloud_change(&mut self, project: &str, zone: &str) -> CloudDnsChange {
        let id = (self.cloud_changes.keys())
            .filter(|(p, z, _)| p == project && z == zone)
            .count()
            + 1;
        self.cloud_changes
            .insert((project.into(), zone.into(), id.to_string()), 0);
        CloudDnsChange {
            id: id.to_string(),
            done: false,
        }
    }

    /// Stores an object, written `at` by the store's clock (when it has
    /// one), and gives it a new version.
    fn write_object(
        &mut self,
        key: &str,
        body: Bytes,
        at: Option<chrono::DateTime<Utc>>,
    ) -> String {
        self.change_counter += 1;
        let v = self.change_counter;
        self.objects.insert(key.to_string(), body);
        self.object_versions.insert(key.to_string(), v);
        match at {
            Some(at) => self.object_modified.insert(key.to_string(), at),
            None => self.object_modified.remove(key),
        };
        v.to_string()
    }
}

impl FakeState {
    /// An error when `region` is dead (its endpoints do not answer).
    fn reach(
        &self,
        service: &'static str,
        op: &'static str,
        res: &str,
        region: &str,
    ) -> Result<(), CloudError> {
        if self.dead_regions.contains(region) {
            return Err(CloudError::new(
                service,
                op,
                res,
                region,
                ErrorKind::Connection,
                "connection refused: the region is down in the fake cloud",
            ));
        }
        if let Some(why) = self.refused.get(&(service.to_string(), op.to_string())) {
            return Err(CloudError::new(
                service,
                op,
                res,
                region,
                ErrorKind::Auth,
                why,
            ));
        }
        Ok(())
    }

    /// Whether Route 53 would find health check `id` healthy: its control
    /// object, read from its own region, holds the search string.
    fn healthy(&self, id: &str) -> bool {
        let Some(h) = self.health_checks.iter().find(|h| h.id == id) else {
            return false;
        };
        let Some((region, url)) = super::control::control_of(h) else {
            return false;
        };
        !self.dead_regions.contains(&region)
            && self
                .objects
                .get(&url.to_string())
                .is_some_and(|b| String::from_utf8_lossy(b).contains(&h.search))
    }

    /// What Route 53 answers for `name` when some record set of it is
    /// healthy; `None` when none is.
    fn healthy_answer(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
        depth: u8,
    ) -> Option<Vec<String>> {
        let sets: Vec<&DnsRecord> = self
            .records
            .get(zone)?
            .iter()
            .filter(|r| {
                fqdn(&r.name.to_ascii_lowercase()) == name && r.rtype.eq_ignore_ascii_case(rtype)
            })
            .collect();
        let ok = |r: &DnsRecord| {
            let route = r.routing.clone().unwrap_or_default();
            route
                .health_check_id
                .as_deref()
                .is_none_or(|h| self.healthy(h))
                && match (&route.alias, route.evaluate_target_health) {
                    (Some(t), true) if depth < 8 => {
                        self.healthy_answer(zone, t, rtype, depth + 1).is_some()
                    }
                    _ => true,
                }
        };
        let failover = |role| {
            sets.iter()
                .find(|r| r.routing.as_ref().and_then(|x| x.failover) == Some(role))
                .copied()
        };
        if let Some(primary) = failover(FailoverRole::Primary) {
            let pick = [Some(primary), failover(FailoverRole::Secondary)]
                .into_iter()
                .flatten()
                .find(|r| ok(r))?;
            return Some(self.values(zone, pick, rtype, depth));
        }
        let healthy: Vec<&&DnsRecord> = sets.iter().filter(|r| ok(r)).collect();
        let best = healthy.iter().max_by_key(|r| r.weight.unwrap_or(0))?;
        Some(self.values(zone, best, rtype, depth))
    }

    fn values(&self, zone: &str, r: &DnsRecord, rtype: &str, depth: u8) -> Vec<String> {
        match r.routing.as_ref().and_then(|x| x.alias.clone()) {
            Some(t) if depth < 8 => self
                .healthy_answer(zone, &t, rtype, depth + 1)
                .unwrap_or_else(|| self.any_answer(zone, &t, rtype, depth + 1)),
            Some(_) => Vec::new(),
            None => r.values.clone(),
        }
    }

    /// Route 53's answer when no record set is healthy: the primary of a
    /// failover pair, else every record set (all unhealthy counts as all
    /// healthy).
    fn any_answer(&self, zone: &str, name: &str, rtype: &str, depth: u8) -> Vec<String> {
        let sets: Vec<&DnsRecord> = self
            .records
            .get(zone)
            .into_iter()
            .flatten()
            .filter(|r| {
                fqdn(&r.name.to_ascii_lowercase()) == name && r.rtype.eq_ignore_ascii_case(rtype)
            })
            .collect();
        let primary = sets
            .iter()
            .find(|r| r.routing.as_ref().and_then(|x| x.failover) == Some(FailoverRole::Primary));
        match primary {
            Some(p) => self.values(zone, p, rtype, depth),
            None => sets
                .iter()
                .flat_map(|r| self.values(zone, r, rtype, depth))
                .collect(),
        }
    }
}

/// The fake cloud; cheap to clone (shared state).
#[derive(Debug, Default, Clone)]
pub struct FakeCloud {
    state: Arc<Mutex<FakeState>>,
    /// Time as AWS takes it (`None`: every call answers at once and
    /// nothing is ever throttled or slow).
    timing: Option<Arc<super::timing::Timing>>,
    /// The object store's clock (`None`: its answers say nothing of time,
    /// as a store without `Date` or `Last-Modified` would).
    store_clock: Option<Arc<dyn super::clock::Clock>>,
}

fn not_found(service: &'static str, op: &'static str, res: &str, region: &str) -> CloudError {
    CloudError::new(
        service,
        op,
        res,
        region,
        ErrorKind::NotFound,
        "not found in the fake cloud",
    )
}

/// A change batch applied to a zone's records, as Route 53 judges it: a
/// DELETE must match a set exactly (values, TTL, weight), a CREATE must not
/// find its set; the first refusal says why (the caller keeps nothing).
fn apply_batch(mut recs: Vec<DnsRecord>, changes: &[DnsChange]) -> Result<Vec<DnsRecord>, String> {
    let same = |a: &DnsRecord, b: &DnsRecord| {
        a.name == b.name && a.rtype == b.rtype && a.set_identifier == b.set_identifier
    };
    for change in changes {
        match change {
            DnsChange::Upsert(r) => {
                recs.retain(|x| !same(x, r));
                recs.push(r.clone());
            }
            DnsChange::Delete(r) => match recs.iter().position(|x| same(x, r)) {
                Some(i) if &recs[i] == r => {
                    recs.remove(i);
                }
                Some(_) => {
                    return Err(format!(
                        "Tried to delete resource record set [name='{}', type='{}'] but the values provided do not match the current values",
                        r.name, r.rtype
                    ));
                }
                None => {
                    return Err(format!(
                        "Tried to delete resource record set [name='{}', type='{}'] but it was not found",
                        r.name, r.rtype
                    ));
                }
            },
            DnsChange::Create(r) => {
                if recs.iter().any(|x| same(x, r)) {
                    return Err(format!(
                        "Tried to create resource record set [name='{}', type='{}'] but it already exists",
                        r.name, r.rtype
                    ));
                }
                recs.push(r.clone());
            }
        }
    }
    Ok(recs)
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

impl FakeCloud {
    /// An empty world in which AWS takes time: every call its latency,
    /// AWS's rate limits (a call over them is throttled), and the slow
    /// operations of a failover their draws, all from `model` and `seed`
    /// under tokio's clock ([`super::timing`]). Run it under
    /// `tokio::time::pause`.
    pub fn timed(model: &'static super::model::Model, seed: u64) -> Self {
        Self {
            timing: Some(Arc::new(super::timing::Timing::new(model, seed))),
            ..Self::default()
        }
    }

    /// The same world whose object store keeps time by `clock`: each
    /// object's last write and each read's answer carry it
    /// ([`StoreTimes`], at full resolution), as S3's and GCS's
    /// `Last-Modified` and `Date` do.
    pub fn with_store_clock(self, clock: Arc<dyn super::clock::Clock>) -> Self {
        Self {
            store_clock: Some(clock),
            ..self
        }
    }

    /// The store's clock now, when it keeps one.
    fn store_now(&self) -> Option<chrono::DateTime<Utc>> {
        self.store_clock.as_ref().map(|c| c.now())
    }

    /// The timing of a timed world.
    pub fn timing(&self) -> Option<&super::timing::Timing> {
        self.timing.as_deref()
    }

    /// A call arrives (see [`FakeCloud::tick_cost`]).
    async fn tick(&self, label: &'static str, region: &str, res: &str) -> Result<(), CloudError> {
        self.tick_cost(label, region, res, 1.0).await
    }

    /// A call of `label` (`rds:DescribeDBInstances`) on `res` in
    /// `region` enters the world as every adapter call does: it takes its
    /// time ([`FakeCloud::tick`]), then reaches the region unless it is
    /// down or the call refused ([`FakeState::reach`]); the state is
    /// answered locked, for the call to read or change.
    async fn enter(
        &self,
        label: &'static str,
        region: &str,
        res: &str,
    ) -> Result<MutexGuard<'_, FakeState>, CloudError> {
        self.tick(label, region, res).await?;
        let (service, operation) = label.split_once(':').unwrap_or(("", label));
        let s = self.state();
        s.reach(service, operation, res, region)?;
        Ok(s)
    }

    /// In a timed world, a call of `label` takes its latency and spends
    /// `cost` from AWS's buckets (or is throttled), and what completed
    /// meanwhile shows (promotions, instances in service).
    async fn tick_cost(
        &self,
        label: &'static str,
        region: &str,
        res: &str,
        cost: f64,
    ) -> Result<(), CloudError> {
        // The fence at the wire, as the real adapters have it: a write made
        // under a lease no longer certainly ours is never "sent".
        let (service, operation) = label.split_once(':').unwrap_or(("", label));
        if let Err(f) = super::wire::check_before_transmit(operation) {
            return Err(CloudError::new(
                service,
                operation,
                res,
                region,
                ErrorKind::Fenced,
                f.detail,
            ));
        }
        let Some(t) = &self.timing else {
            return Ok(());
        };
        t.call(label, region, res, cost).await?;
        let mut s = self.state();
        for key in t.completed("db:") {
            if let Some((r, id)) = key["db:".len()..].split_once('/')
                && let Some(i) = s.databases.get_mut(&(r.to_string(), id.to_string()))
            {
                i.status = "available".into();
            }
        }
        s.settle_scaled(&t.completed("scaled:"));
        for key in t.completed("cluster:") {
            if let Some((r, id)) = key["cluster:".len()..].split_once('/')
                && let Some(c) = s.clusters.get_mut(&(r.to_string(), id.to_string()))
            {
                c.status = "available".into();
            }
        }
        for key in t.completed("global:") {
            let id = &key["global:".len()..];
            if let Some(g) = s.globals.get(id).cloned() {
                let settled = settle_move(g);
                s.after_move(settled);
            }
        }
        Ok(())
    }

    /// An empty world.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state for seeding or inspection.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The set of adapters backed by this world.
    pub fn clouds(&self) -> Clouds {
        let me = Arc::new(self.clone());
        Clouds {
            dns: me.clone(),
            database: me.clone(),
            capacity: self.scalers(),
            balancers: me.clone(),
            aurora: me.clone(),
            cloud_sql: me.clone(),
            cloud_dns: me.clone(),
            metrics: me.clone(),
            objects: me.clone(),
            identity: me.clone(),
            probe: me.clone(),
            resolver: me.clone(),
            publisher: me,
        }
    }

    /// Whether a hosted zone named `name` (with or without its trailing dot) exists.
    pub fn has_zone(&self, name: &str) -> bool {
        self.state().zones.contains_key(&fqdn(name))
    }

    /// Adds a hosted zone and returns it.
    pub fn add_zone(&self, name: &str) -> HostedZone {
        let mut s = self.state();
        let zone = HostedZone {
            id: format!("ZFAKE{}", s.zones.len() + 1),
            name: fqdn(name),
        };
        s.zones.insert(zone.name.clone(), zone.clone());
        zone
    }

    /// Protects record sets `name` of `rtype` in the zone named `zone`, as
    /// someone would with `CreateResourceRecordSetProtections`.
    pub fn protect(&self, zone: &str, name: &str, rtype: &str, comment: Option<&str>) {
        let mut s = self.state();
        let id = s.zones[&fqdn(zone)].id.clone();
        s.protections.entry(id).or_default().push(Protection {
            name: fqdn(name),
            rtype: rtype.to_ascii_uppercase(),
            comment: comment.map(str::to_string),
        });
    }

    /// Adds (or replaces) a record in the zone named `zone`.
    pub fn put_record(&self, zone: &str, record: DnsRecord) {
        let mut s = self.state();
        let id = s.zones[&fqdn(zone)].id.clone();
        let recs = s.records.entry(id).or_default();
        recs.retain(|r| {
            !(r.name == record.name
                && r.rtype == record.rtype
                && r.set_identifier == record.set_identifier)
        });
        recs.push(record);
    }

    /// Adds a primary database instance.
    pub fn add_primary(&self, region: &str, id: &str) {
        let inst = DbInstance {
            id: id.into(),
            arn: format!("arn:aws:rds:{region}:123456789012:db:{id}"),
            region: region.into(),
            engine: "postgres".into(),
            instance_class: Some("db.t3.micro".into()),
            status: "available".into(),
            endpoint: Some(format!("{id}.fake.{region}.rds.amazonaws.com")),
            port: Some(5432),
            role: DbRole::Primary,
            replicas: vec![],
            backup_retention_days: 7,
            latest_restorable_time: Some(Utc::now()),
            storage_encrypted: false,
            kms_key_id: None,
            subnet_group: None,
            security_groups: vec![],
            multi_az: false,
            tags: Default::default(),
        };
        self.state()
            .databases
            .insert((region.into(), id.into()), inst);
    }

    /// Adds `at.source`'s automated backups, replicated into `at.region`
    /// from `at.from` and restorable up to `latest` (seven days back), or a
    /// copied snapshot `snapshot` taken at `latest` (`Some(name)`).
    pub fn add_restorable(
        &self,
        at: BackupAt<'_>,
        snapshot: Option<&str>,
        latest: chrono::DateTime<Utc>,
    ) {
        let BackupAt {
            region,
            source,
            from,
        } = at;
        let r = Restorable {
            id: match snapshot {
                Some(name) => name.to_string(),
                None => format!("arn:aws:rds:{region}:123456789012:auto-backup:ab-{source}"),
            },
            source: source.into(),
            source_arn: (snapshot.is_none())
                .then(|| format!("arn:aws:rds:{from}:123456789012:db:{source}")),
            source_region: Some(from.into()),
            status: if snapshot.is_some() {
                "available"
            } else {
                "replicating"
            }
            .into(),
            ready: true,
            earliest: Some(if snapshot.is_some() {
                latest
            } else {
                latest - chrono::Duration::days(7)
            }),
            latest: Some(latest),
            kms_key_id: None,
            progress: None,
            engine: Some("postgres".into()),
            engine_version: Some("16.3".into()),
        };
        let mut s = self.state();
        let all = (s.restorables)
            .entry((region.into(), source.into()))
            .or_default();
        all.retain(|x| x.id != r.id);
        all.push(r);
    }

    /// Adds a read replica of `source` (region, id).
    pub fn add_replica(&self, region: &str, id: &str, source: (&str, &str)) {
        let mut s = self.state();
        let src_key = (source.0.to_string(), source.1.to_string());
        let src_arn = s.databases[&src_key].arn.clone();
        let arn = format!("arn:aws:rds:{region}:123456789012:db:{id}");
        if let Some(src) = s.databases.get_mut(&src_key) {
            src.replicas.push(arn.clone());
        }
        s.databases.insert(
            (region.into(), id.into()),
            DbInstance {
                id: id.into(),
                arn,
                region: region.into(),
                engine: "postgres".into(),
                instance_class: Some("db.t3.micro".into()),
                status: "available".into(),
                endpoint: Some(format!("{id}.fake.{region}.rds.amazonaws.com")),
                port: Some(5432),
                role: DbRole::Replica(src_arn),
                replicas: vec![],
                backup_retention_days: 0,
                latest_restorable_time: None,
                storage_encrypted: false,
                kms_key_id: None,
                subnet_group: None,
                security_groups: vec![],
                multi_az: false,
                tags: Default::default(),
            },
        );
    }

    /// The endpoint of the copy `id` in `region` (a database instance), as
    /// the world names it.
    pub fn endpoint_of(&self, region: &str, id: &str) -> Option<String> {
        let s = self.state();
        let key = (region.to_string(), id.to_string());
        match s.databases.get(&key) {
            Some(i) => i.endpoint.clone(),
            None => s.clusters.get(&key)?.endpoint.clone(),
        }
    }

    /// Registers group `name` in `region` (an Auto Scaling group, an ECS
    /// service `cluster/service`) in target group `arn`, as
    /// `AttachLoadBalancerTargetGroups` (or a service's load balancer) does.
    pub fn attach_target_group(&self, region: &str, name: &str, arn: &str) {
        let mut s = self.state();
        let g = (s.scaled.iter_mut())
            .find(|((_, r, n), _)| r == region && n == name)
            .expect("a group of a kind on the role's port");
        g.1.balanced_by.push(arn.into());
    }

    /// Makes target group `arn`'s targets fail their health checks with
    /// `reason` (`Target.FailedHealthChecks`), or pass again (`None`).
    pub fn fail_targets(&self, arn: &str, reason: Option<&str>) {
        let mut s = self.state();
        match reason {
            Some(r) => s.failing_targets.insert(arn.into(), r.into()),
            None => s.failing_targets.remove(arn),
        };
    }

    /// Adds a standalone Aurora cluster `id` in `region` with its writer
    /// (`{id}-writer`), available.
    pub fn add_cluster(&self, region: &str, id: &str) {
        let writer = format!("{id}-writer");
        self.add_primary(region, &writer);
        let mut s = self.state();
        let mut c = fake_cluster(region, id, None);
        c.members = vec![writer.clone()];
        s.clusters.insert((region.to_string(), id.to_string()), c);
        s.cluster_instances
            .insert((region.to_string(), writer), id.to_string());
    }

    /// Adds an Aurora global cluster `global` whose writer is the first
    /// of `members` (region, cluster id) and whose secondaries are the rest.
    pub fn add_global(&self, global: &str, members: &[(&str, &str)]) {
        let mut s = self.state();
        let mut gc = GlobalCluster {
            id: global.into(),
            arn: format!("arn:aws:rds::123456789012:global-cluster:{global}"),
            status: "available".into(),
            endpoint: Some(format!("{global}.global-fake.global.rds.amazonaws.com")),
            members: Vec::new(),
            moving: None,
        };
        for (i, (region, id)) in members.iter().enumerate() {
            let c = fake_cluster(region, id, Some(global));
            gc.members.push(GlobalMember {
                arn: c.arn.clone(),
                writer: i == 0,
                region: region.to_string(),
                id: id.to_string(),
            });
            s.clusters.insert((region.to_string(), id.to_string()), c);
        }
        s.globals.insert(global.into(), gc);
    }

    /// Adds a Cloud SQL instance of `project` in `region`, `RUNNABLE`: a
    /// primary, or a replica of `master` (its DR replica with `dr`).
    pub fn add_sql(&self, project: &str, region: &str, name: &str, master: Option<&str>, dr: bool) {
        let mut s = self.state();
        if let Some(m) = master
            && let Some(p) = s.sql.get_mut(&(project.to_string(), m.to_string()))
            && !p.replicas.iter().any(|r| r == name)
        {
            p.replicas.push(name.to_string());
        }
        s.sql.insert(
            (project.to_string(), name.to_string()),
            SqlInstance {
                name: name.into(),
                region: region.into(),
                state: "RUNNABLE".into(),
                role: master.map_or(DbRole::Primary, |m| DbRole::Replica(m.into())),
                replicas: Vec::new(),
                dr_replica: dr && master.is_some(),
                edition: Some("ENTERPRISE_PLUS".into()),
                endpoint: Some(format!("{name}.{region}.fake.sql.goog")),
                write_endpoint: None,
                labels: Default::default(),
                backup_location: None,
            },
        );
    }

    /// Adds a SUCCESSFUL backup of Cloud SQL instance `at.source` (of
    /// `at.from`, its region) kept in `at.region`, taken at `taken`;
    /// returns its name.
    pub fn add_sql_backup(
        &self,
        project: &str,
        at: BackupAt<'_>,
        taken: chrono::DateTime<Utc>,
    ) -> String {
        let BackupAt {
            region: location,
            source: instance,
            from,
        } = at;
        let name = format!("projects/{project}/backups/{}", taken.timestamp_millis());
        let b = Restorable {
            id: name.clone(),
            source: instance.into(),
            source_arn: None,
            source_region: Some(from.into()),
            status: "SUCCESSFUL".into(),
            ready: true,
            earliest: Some(taken),
            latest: Some(taken),
            kms_key_id: None,
            progress: None,
            engine: Some("POSTGRES_16".into()),
            engine_version: None,
        };
        let key = (location.to_string(), instance.to_string());
        self.state().sql_backups.entry(key).or_default().push(b);
        name
    }

    /// Gives Cloud SQL instances `names` of `project` (a primary and its DR
    /// replica) the write endpoint `name`, as Cloud SQL shows a replication
    /// cluster's on each member.
    pub fn set_sql_write_endpoint(&self, project: &str, names: &[&str], name: &str) {
        let mut s = self.state();
        for n in names {
            if let Some(i) = s.sql.get_mut(&(project.to_string(), n.to_string())) {
                i.write_endpoint = Some(name.to_string());
            }
        }
    }

    /// Arms the next Cloud SQL operation `kind` (`PROMOTE_REPLICA`) on
    /// instance `name` to end done with `error`.
    pub fn fail_sql(&self, name: &str, kind: &str, error: &str) {
        self.state()
            .sql_failures
            .insert((name.into(), kind.into()), error.into());
    }

    /// Records replica-lag datapoints (seconds) for a database (or an
    /// Aurora secondary cluster).
    pub fn set_lag(&self, region: &str, db: &str, seconds: &[f64]) {
        self.state()
            .lag
            .insert((region.into(), db.into()), seconds.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn promotion_turns_a_replica_into_a_primary() {
        let fake = FakeCloud::new();
        fake.add_primary("us-west-2", "db");
        fake.add_replica("us-east-1", "db-use1", ("us-west-2", "db"));
        let c = fake.clouds();
        let r = c
            .database
            .describe_instance("us-east-1", "db-use1")
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(r.role, DbRole::Replica(_)));
        c.database
            .promote_replica("us-east-1", "db-use1")
            .await
            .unwrap();
        let r = c
            .database
            .describe_instance("us-east-1", "db-use1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.role, DbRole::Primary);
        let p = c
            .database
            .describe_instance("us-west-2", "db")
            .await
            .unwrap()
            .unwrap();
        assert!(p.replicas.is_empty());
        assert!(
            c.database
                .promote_replica("us-east-1", "db-use1")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_tagged_replica_is_listed_and_deleted_from_its_source() {
        let fake = FakeCloud::new();
        fake.add_primary("us-west-2", "db");
        fake.add_primary("us-east-1", "other");
        let c = fake.clouds();
        let src = c
            .database
            .describe_instance("us-west-2", "db")
            .await
            .unwrap()
            .unwrap();
        let tags = BTreeMap::from([("drctl:drill".to_string(), "run-1".to_string())]);
        let placement = ReplicaPlacement {
            tags: tags.clone(),
            ..Default::default()
        };
        c.database
            .create_replica("us-east-1", "drill-db", &src.arn, &placement)
            .await
            .unwrap();
        let r = c
            .database
            .describe_instance("us-east-1", "drill-db")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.tags, tags);
        assert_eq!(r.role, DbRole::Replica(src.arn.clone()));

        let mut listed = c.database.list_instances("us-east-1").await.unwrap();
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        let ids: Vec<_> = listed.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["drill-db", "other"], "only the region's instances");
        assert_eq!(listed[0].tags, tags);
        assert!(listed[1].tags.is_empty());

        c.database
            .delete_instance("us-east-1", "drill-db")
            .await
            .unwrap();
        assert_eq!(
            c.database
                .describe_instance("us-east-1", "drill-db")
                .await
                .unwrap(),
            None
        );
        let src = c
            .database
            .describe_instance("us-west-2", "db")
            .await
            .unwrap()
            .unwrap();
        assert!(src.replicas.is_empty(), "{:?}", src.replicas);
        // Deleting again (or anything absent) is fine, and writes nothing.
        c.database
            .delete_instance("us-east-1", "drill-db")
            .await
            .unwrap();
        let deletes = fake
            .state()
            .writes
            .iter()
            .filter(|w| w.starts_with("DeleteDBInstance"))
            .count();
        assert_eq!(deletes, 1);
    }

    #[tokio::test]
    async fn group_tags_are_added_replaced_and_removed() {
        let fake = FakeCloud::new();
        let cap = Capacity {
            min: 1,
            desired: 2,
            max: 3,
        };
        fake.add_group("us-east-1", "api", cap);
        let c = fake.clouds();
        let port = c.capacity.get("compute", "us-east-1").unwrap();
        let tag = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let read = port.read("us-east-1", "api").await.unwrap().unwrap();
        let marks = tag(&[("a", "1"), ("b", "2")]);
        port.mark("us-east-1", &read, &marks).await.unwrap();
        port.mark("us-east-1", &read, &tag(&[("a", "3")]))
            .await
            .unwrap();
        let g = port.read("us-east-1", "api").await.unwrap().unwrap();
        assert_eq!(g.marks, tag(&[("a", "3"), ("b", "2")]));
        assert_eq!(g.size, Size::Bounds(cap), "tags leave the capacity alone");
        let keys = ["a".into(), "missing".into()];
        port.unmark("us-east-1", &read, &keys).await.unwrap();
        let g = port.read("us-east-1", "api").await.unwrap().unwrap();
        assert_eq!(g.marks, tag(&[("b", "2")]));
        let err = port.mark("us-west-2", &read, &marks).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn records_are_listed_by_name_suffix() {
        let fake = FakeCloud::new();
        let zone = fake.add_zone("example.com");
        let rec = |name: &str| {
            DnsRecord::simple(
                name.into(),
                "CNAME",
                Some(60),
                vec!["target.example.net".into()],
            )
        };
        for name in [
            "a.drill-1.example.com.",
            "b.drill-1.example.com.",
            "a.drill-2.example.com.",
            "api.example.com.",
        ] {
            fake.put_record("example.com", rec(name));
        }
        let names = |recs: Vec<DnsRecord>| {
            let mut n: Vec<String> = recs.into_iter().map(|r| r.name).collect();
            n.sort();
            n
        };
        let c = fake.clouds();
        assert_eq!(
            names(
                c.dns
                    .list_records(&zone, "drill-1.example.com.")
                    .await
                    .unwrap()
            ),
            ["a.drill-1.example.com.", "b.drill-1.example.com."]
        );
        // Trailing dot and case do not matter.
        assert_eq!(
            names(
                c.dns
                    .list_records(&zone, "DRILL-2.example.com")
                    .await
                    .unwrap()
            ),
            ["a.drill-2.example.com."]
        );
        assert_eq!(c.dns.list_records(&zone, "").await.unwrap().len(), 4);
        assert!(
            c.dns
                .list_records(&zone, "nothing.example.com.")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn create_only_puts_never_overwrite() {
        let fake = FakeCloud::new();
        let c = fake.clouds();
        let u = ObjectUrl::parse("s3://bucket-a/k").unwrap();
        assert!(matches!(
            c.objects
                .put(
                    "us-east-1",
                    &u,
                    Bytes::from_static(b"1"),
                    PutMode::CreateOnly
                )
                .await
                .unwrap(),
            PutOutcome::Written(_)
        ));
        assert_eq!(
            c.objects
                .put(
                    "us-east-1",
                    &u,
                    Bytes::from_static(b"2"),
                    PutMode::CreateOnly
                )
                .await
                .unwrap(),
            PutOutcome::AlreadyExists
        );
        assert_eq!(
            c.objects.get("us-east-1", &u).await.unwrap().unwrap(),
            Bytes::from_static(b"1")
        );
    }

    /// Cloud DNS's name servers in the fake: a plain set answers its
    /// values; a `primaryBackup` answers its primary while one of its
    /// addresses' controls serves, else the first backup item with a
    /// healthy address (in order), else the primary; an address with no
    /// control, a drained or missing control, or a dead region is
    /// unhealthy. Names, types and the zone's name in any case.
    #[tokio::test]
    async fn cloud_dns_answers_a_primary_backup_by_its_addresses_controls() {
        let f = FakeCloud::new();
        f.add_cloud_zone("p", "z", "Gcp.Example.com.");
        let item = |location: &str, v: &str| BackupItem {
            location: location.into(),
            rrdatas: vec![v.into()],
        };
        let set = |name: &str, pb: Option<PrimaryBackup>| CloudRecordSet {
            name: name.into(),
            rtype: "A".into(),
            ttl: 30,
            rrdatas: if pb.is_none() {
                vec!["10.9.9.9".into()]
            } else {
                Vec::new()
            },
            routed: pb.is_some(),
            primary_backup: pb,
        };
        f.put_cloud_record("p", "z", set("plain.gcp.example.com.", None));
        f.put_cloud_record(
            "p",
            "z",
            set(
                "api.gcp.example.com.",
                Some(PrimaryBackup {
                    primary: vec!["10.0.1.1".into()],
                    backups: vec![item("us-west1", "10.0.3.3"), item("us-east4", "10.0.2.2")],
                    health_check: None,
                }),
            ),
        );
        let url = |k: &str| ObjectUrl::parse(&format!("gs://ctl/{k}")).unwrap();
        f.serve_control_at("10.0.1.1", "us-central1", &url("usc1"));
        f.serve_control_at("10.0.2.2", "us-east4", &url("use4"));
        // 10.0.3.3 has no control: never healthy.
        let put = |k: &str, serve: bool| {
            let body = if serve { "state=serve" } else { "state=drain" };
            f.state()
                .objects
                .insert(url(k).to_string(), body.as_bytes().to_vec().into());
        };
        let ask = |name: &'static str| {
            let c = f.clouds();
            async move {
                c.resolver
                    .resolve("gcp.example.com", name, "a")
                    .await
                    .unwrap()
            }
        };
        assert_eq!(ask("PLAIN.gcp.example.com").await, ["10.9.9.9"]);
        assert_eq!(ask("none.gcp.example.com.").await, Vec::<String>::new());
        assert_eq!(
            ask("api.gcp.example.com.").await,
            ["10.0.1.1"],
            "all unhealthy: the primary"
        );
        put("usc1", true);
        put("use4", true);
        assert_eq!(ask("api.gcp.example.com.").await, ["10.0.1.1"]);
        put("usc1", false);
        assert_eq!(
            ask("api.gcp.example.com.").await,
            ["10.0.2.2"],
            "past the backup without a control"
        );
        f.state().dead_regions.insert("us-east4".into());
        assert_eq!(ask("api.gcp.example.com.").await, ["10.0.1.1"]);
    }
}
