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

/// Mutable state of the fake world; tests seed and inspect it directly.
#[derive(Debug, Default, Clone)]
pub struct FakeState {
    /// Messages published (SNS topic ARN or EventBridge bus, region, body).
    pub published: Vec<(String, String, String)>,
    /// Hosted zones by name (with trailing dot).
    pub zones: BTreeMap<String, HostedZone>,
    /// Records by zone id.
    pub records: BTreeMap<String, Vec<DnsRecord>>,
    /// Database instances by (region, id).
    pub databases: BTreeMap<(String, String), DbInstance>,
    /// Compute groups by (region, name).
    pub groups: BTreeMap<(String, String), ComputeGroup>,
    /// EKS managed node groups by (region, cluster, name).
    pub node_groups: BTreeMap<(String, String, String), NodeGroup>,
    /// ECS services by (region, cluster, name).
    pub ecs: BTreeMap<(String, String, String), EcsService>,
    /// ECS services whose tasks are still starting after a change of their
    /// desired count, by key: the reads left before they run (without the
    /// timed model: one read).
    pub ecs_settling: BTreeMap<(String, String, String), u32>,
    /// ECS services whose next change is armed to fail (the deployment
    /// circuit breaker), by key: the reason their deployment ends with.
    pub ecs_failures: BTreeMap<(String, String, String), String>,
    /// EKS updates by id: the node group's key, and the update.
    pub node_group_updates: BTreeMap<String, ((String, String, String), NodeGroupUpdate)>,
    /// Aurora DB clusters by (region, id).
    pub clusters: BTreeMap<(String, String), DbCluster>,
    /// Aurora global clusters by id.
    pub globals: BTreeMap<String, GlobalCluster>,
    /// The cluster each Aurora instance (in `databases`) belongs to, by
    /// (region, instance id).
    pub cluster_instances: BTreeMap<(String, String), String>,
    /// DB cluster snapshots by region.
    pub cluster_snapshots: Vec<(String, ClusterSnapshot)>,
    /// Global cluster moves the fake refuses, by operation
    /// (`FailoverGlobalCluster`): the error code it answers.
    pub refuse_moves: BTreeMap<String, String>,
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
    /// Regional managed instance groups by (project, region, name).
    pub migs: BTreeMap<(String, String, String), FakeMig>,
    /// Their regional operations by (project, region, name), with the
    /// effect each has when done: every `regionOperations.get` moves one
    /// on a step (not done, then done).
    pub mig_ops: BTreeMap<(String, String, String), (MigOperation, MigEffect)>,
    /// The operation each request id made (Compute's de-duplication).
    pub mig_requests: BTreeMap<String, (String, String, String)>,
    /// Cloud Run services by (project, region, name).
    pub run: BTreeMap<(String, String, String), RunService>,
    /// Cloud Run services whose change is reconciled, by (project,
    /// region, name): how many reads it has had (done at the second).
    pub run_ops: BTreeMap<(String, String, String), u32>,
    /// Cloud Run changes armed to fail, by (project, region, name): the
    /// message their `Ready` condition says.
    pub run_failures: BTreeMap<(String, String, String), String>,
    /// Cloud DNS managed zones by (project, zone): the DNS name each serves.
    pub cloud_zones: BTreeMap<(String, String), String>,
    /// Cloud DNS record sets by (project, zone, name, type), the name lower
    /// case.
    pub cloud_rrsets: BTreeMap<(String, String, String, String), CloudRecordSet>,
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
    /// The instance is deleted.
    Delete,
    /// The named replica becomes the instance's DR replica.
    DesignateDr(String),
}

/// A fake regional managed instance group: its target size, its instances
/// (each the reads it still takes to run, or the errors that keep it from
/// being created) and its autoscaler, when one is attached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeMig {
    /// `targetSize`.
    pub target_size: u32,
    /// Instances: (name, reads of the group left before it runs, errors).
    pub instances: Vec<(String, u32, Vec<String>)>,
    /// The autoscaler (name, min, max).
    pub autoscaler: Option<(String, u32, u32)>,
    /// The errors new instances fail with (none: they are created).
    pub failing: Vec<String>,
    /// Instances made so far (for their names).
    pub made: u32,
}

impl FakeMig {
    /// Sets the target size: new instances take `reads` reads to run,
    /// surplus ones go at once.
    fn set_target(&mut self, size: u32, reads: u32) {
        self.target_size = size;
        while (self.instances.len() as u32) < size {
            self.made += 1;
            let failing = self.failing.clone();
            self.instances
                .push((format!("vm-{:03}", self.made), reads, failing));
        }
        self.instances.truncate(size as usize);
    }

    fn view(&self, region: &str, name: &str) -> MigGroup {
        let running =
            |(_, left, errors): &&(String, u32, Vec<String>)| *left == 0 && errors.is_empty();
        let idle = self.instances.iter().filter(running).count() as u32;
        MigGroup {
            name: name.to_string(),
            region: region.to_string(),
            target_size: self.target_size,
            stable: idle == self.target_size && self.instances.len() as u32 == self.target_size,
            autoscaler: self.autoscaler.as_ref().map(|a| a.0.clone()),
            idle,
            creating: self.instances.len() as u32 - idle,
        }
    }
}

/// What a fake Compute operation does when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigEffect {
    /// The group's target size.
    Resize(u32),
    /// The autoscaler's minimum (the group is raised to it).
    AutoscalerMin(u32),
}

impl FakeState {
    /// The former primaries of DR failovers whose regions answer again
    /// rejoin: each a read replica of the new primary (not yet designated
    /// its DR replica: `drctl reprotect` does that).
    pub(crate) fn sql_rejoin(&mut self) {
        let pending = std::mem::take(&mut self.sql_rejoins);
        for (project, old, new) in pending {
            let key = |n: &str| (project.clone(), n.to_string());
            let back = (self.sql.get(&key(&old))).is_some_and(|o| {
                self.reach("sqladmin", "instances.get", &old, &o.region)
                    .is_ok()
            });
            if !back {
                self.sql_rejoins.push((project, old, new));
                continue;
            }
            if let Some(o) = self.sql.get_mut(&key(&old)) {
                o.role = DbRole::Replica(new.clone());
                o.dr_replica = false;
            }
            if let Some(n) = self.sql.get_mut(&key(&new))
                && !n.replicas.contains(&old)
            {
                n.replicas.push(old.clone());
            }
        }
    }

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

    /// Applies a done Cloud SQL operation's effect on instance `target`.
    fn sql_effect(&mut self, project: &str, target: &str, effect: &SqlEffect) {
        let key = |n: &str| (project.to_string(), n.to_string());
        if let SqlEffect::DesignateDr(replica) = effect {
            if let Some(r) = self.sql.get_mut(&key(replica))
                && r.role == DbRole::Replica(target.to_string())
            {
                r.dr_replica = true;
            }
            return;
        }
        if *effect == SqlEffect::Delete {
            if let Some(gone) = self.sql.remove(&key(target))
                && let DbRole::Replica(m) = gone.role
                && let Some(m) = self.sql.get_mut(&key(&m))
            {
                m.replicas.retain(|r| r != target);
            }
            return;
        }
        let Some(inst) = self.sql.get(&key(target)).cloned() else {
            if let SqlEffect::Clone(source) = effect
                && let Some(src) = self.sql.get(&key(source)).cloned()
            {
                let mut c = src;
                c.name = target.to_string();
                c.role = DbRole::Primary;
                c.replicas.clear();
                c.dr_replica = false;
                c.endpoint = Some(format!("{target}.fake.sql.goog"));
                self.sql.insert(key(target), c);
            }
            return;
        };
        let DbRole::Replica(master) = inst.role.clone() else {
            return;
        };
        let detach = |s: &mut FakeState, name: &str, from: &str| {
            if let Some(m) = s.sql.get_mut(&key(from)) {
                m.replicas.retain(|r| r != name);
            }
        };
        detach(self, target, &master);
        let others: Vec<String> = (self.sql.get(&key(&master)))
            .map(|m| m.replicas.clone())
            .unwrap_or_default();
        let new = self.sql.get_mut(&key(target)).expect("read above");
        new.role = DbRole::Primary;
        new.dr_replica = false;
        match effect {
            SqlEffect::Promote { failover: true } => {
                new.replicas = others.clone();
                for r in &others {
                    if let Some(x) = self.sql.get_mut(&key(r)) {
                        x.role = DbRole::Replica(target.to_string());
                    }
                }
                if let Some(m) = self.sql.get_mut(&key(&master)) {
                    m.replicas.clear();
                }
                self.sql_rejoins
                    .push((project.to_string(), master.clone(), target.to_string()));
            }
            SqlEffect::Switchover => {
                new.replicas = others.iter().cloned().chain([master.clone()]).collect();
                for r in &others {
                    if let Some(x) = self.sql.get_mut(&key(r)) {
                        x.role = DbRole::Replica(target.to_string());
                    }
                }
                if let Some(m) = self.sql.get_mut(&key(&master)) {
                    m.replicas.clear();
                    m.role = DbRole::Replica(target.to_string());
                    m.dr_replica = true;
                }
            }
            _ => {}
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
    #[allow(clippy::result_large_err)] // the adapters' own error type
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
        for key in t.completed("nodes:") {
            let mut parts = key["nodes:".len()..].splitn(3, '/');
            if let (Some(r), Some(c), Some(n)) = (parts.next(), parts.next(), parts.next()) {
                let k = (r.to_string(), c.to_string(), n.to_string());
                if let Some(g) = s.node_groups.get_mut(&k) {
                    g.status = "ACTIVE".into();
                }
                for (_, (of, u)) in s.node_group_updates.iter_mut() {
                    if *of == k && u.status == UpdateStatus::InProgress {
                        u.status = UpdateStatus::Successful;
                    }
                }
            }
        }
        for key in t.completed("ecs:") {
            let mut parts = key["ecs:".len()..].splitn(3, '/');
            if let (Some(r), Some(c), Some(n)) = (parts.next(), parts.next(), parts.next()) {
                let k = (r.to_string(), c.to_string(), n.to_string());
                s.ecs_settling.remove(&k);
                if let Some(svc) = s.ecs.get_mut(&k) {
                    settle_service(svc);
                }
            }
        }
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
        for key in t.completed("group:") {
            if let Some((r, name)) = key["group:".len()..].split_once('/')
                && let Some(g) = s.groups.get_mut(&(r.to_string(), name.to_string()))
            {
                g.in_service = g.capacity.desired;
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
            compute: me.clone(),
            node_groups: me.clone(),
            ecs: me.clone(),
            aurora: me.clone(),
            cloud_sql: me.clone(),
            cloud_run: me.clone(),
            cloud_dns: me.clone(),
            metrics: me.clone(),
            objects: me.clone(),
            identity: me.clone(),
            probe: me.clone(),
            resolver: me.clone(),
            publisher: me.clone(),
            instance_groups: me,
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

    /// Adds a compute group with all desired instances in service.
    pub fn add_group(&self, region: &str, name: &str, capacity: Capacity) {
        self.state().groups.insert(
            (region.into(), name.into()),
            ComputeGroup {
                name: name.into(),
                region: region.into(),
                capacity,
                in_service: capacity.desired,
                instances: capacity.desired,
                tags: Default::default(),
                status: None,
            },
        );
    }

    /// Adds an EKS managed node group, `ACTIVE` at `capacity`.
    pub fn add_node_group(&self, region: &str, cluster: &str, name: &str, capacity: Capacity) {
        self.state().node_groups.insert(
            (region.into(), cluster.into(), name.into()),
            NodeGroup {
                cluster: cluster.into(),
                name: name.into(),
                region: region.into(),
                capacity,
                status: "ACTIVE".into(),
                tags: Default::default(),
            },
        );
    }

    /// Adds an ECS service `cluster/name` in `region` running `desired`
    /// tasks, its rolling deployment completed.
    pub fn add_ecs_service(&self, region: &str, cluster: &str, name: &str, desired: u32) {
        self.state().ecs.insert(
            (region.into(), cluster.into(), name.into()),
            EcsService {
                cluster: cluster.into(),
                name: name.into(),
                region: region.into(),
                arn: format!("arn:aws:ecs:{region}:123456789012:service/{cluster}/{name}"),
                status: "ACTIVE".into(),
                desired,
                running: desired,
                pending: 0,
                deployments: vec![EcsDeployment {
                    id: format!("ecs-svc/fake-{cluster}-{name}"),
                    status: "PRIMARY".into(),
                    rollout: Some("COMPLETED".into()),
                    reason: None,
                    desired,
                    running: desired,
                    failed_tasks: 0,
                }],
                tags: BTreeMap::new(),
            },
        );
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

    /// Adds a regional managed instance group of `project` in `region` with
    /// `size` instances running, and an autoscaler `(name, min, max)`.
    pub fn add_mig(
        &self,
        project: &str,
        region: &str,
        name: &str,
        size: u32,
        autoscaler: Option<(&str, u32, u32)>,
    ) {
        let mut g = FakeMig {
            autoscaler: autoscaler.map(|(a, lo, hi)| (a.to_string(), lo, hi)),
            ..FakeMig::default()
        };
        g.set_target(size, 0);
        self.state().migs.insert(
            (project.to_string(), region.to_string(), name.to_string()),
            g,
        );
    }

    /// New instances of group `name` cannot be created: they stay
    /// `CREATING` with `errors` (as Compute's `lastAttempt.errors`).
    pub fn fail_mig_instances(&self, project: &str, region: &str, name: &str, errors: &[&str]) {
        if let Some(g) =
            self.state()
                .migs
                .get_mut(&(project.to_string(), region.to_string(), name.to_string()))
        {
            g.failing = errors.iter().map(|e| e.to_string()).collect();
        }
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
            },
        );
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

#[async_trait]
impl Dns for FakeCloud {
    async fn find_zone(&self, zone_name: &str) -> Result<Option<HostedZone>, CloudError> {
        self.tick("route53:ListHostedZonesByName", "global", zone_name)
            .await?;
        Ok(self.state().zones.get(&fqdn(zone_name)).cloned())
    }

    async fn read_records(
        &self,
        zone: &HostedZone,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        self.tick("route53:ListResourceRecordSets", "global", &zone.name)
            .await?;
        let s = self.state();
        let name = fqdn(name);
        Ok(s.records
            .get(&zone.id)
            .map(|rs| {
                rs.iter()
                    .filter(|r| r.name == name && r.rtype == rtype)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn apply_changes(
        &self,
        zone: &HostedZone,
        changes: &[DnsChange],
        _comment: &str,
    ) -> Result<ChangeInfo, CloudError> {
        self.tick_cost(
            "route53:ChangeResourceRecordSets",
            "global",
            &zone.name,
            1.0,
        )
        .await?;
        if let Some(t) = &self.timing
            && t.busy(&format!("zone:{}", zone.id))
        {
            return Err(CloudError::new(
                "route53",
                "ChangeResourceRecordSets",
                &zone.name,
                "global",
                ErrorKind::Throttled,
                "The request was rejected because Route 53 was still processing a prior request.",
            )
            .with_code("PriorRequestNotComplete"));
        }
        let mut s = self.state();
        if !s.zones.values().any(|z| z.id == zone.id) {
            return Err(not_found(
                "route53",
                "ChangeResourceRecordSets",
                &zone.name,
                "global",
            ));
        }
        let recs = s.records.entry(zone.id.clone()).or_default();
        // All or nothing, as Route 53: the batch applies to a copy, kept
        // only when every change in it was accepted.
        let applied = apply_batch(recs.clone(), changes).map_err(|message| {
            CloudError::new(
                "route53",
                "ChangeResourceRecordSets",
                &zone.name,
                "global",
                ErrorKind::Client,
                message,
            )
            .with_code("InvalidChangeBatch")
        })?;
        *recs = applied;
        s.change_counter += 1;
        let id = format!("CFAKE{}", s.change_counter);
        s.writes
            .push(format!("ChangeResourceRecordSets {}", zone.name));
        let in_sync = match &self.timing {
            None => true,
            Some(t) => {
                t.start(format!("zone:{}", zone.id), "route53:ChangeProcessing");
                t.start(format!("change:{id}"), "route53:ChangeResourceRecordSets");
                false
            }
        };
        Ok(ChangeInfo { id, in_sync })
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, CloudError> {
        self.tick("route53:GetChange", "global", change_id).await?;
        Ok(ChangeInfo {
            id: change_id.into(),
            in_sync: !self
                .timing
                .as_ref()
                .is_some_and(|t| t.busy(&format!("change:{change_id}"))),
        })
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, CloudError> {
        self.tick("route53:ListHealthChecks", "global", "*").await?;
        Ok(self.state().health_checks.clone())
    }

    async fn create_health_check(&self, want: &HealthCheck) -> Result<HealthCheck, CloudError> {
        self.tick("route53:CreateHealthCheck", "global", &want.id)
            .await?;
        let mut s = self.state();
        if let Some(h) = s
            .health_checks
            .iter()
            .find(|h| h.caller_reference == want.caller_reference)
        {
            return Ok(h.clone());
        }
        s.change_counter += 1;
        let made = HealthCheck {
            id: format!("hc-fake-{}", s.change_counter),
            ..want.clone()
        };
        s.health_checks.push(made.clone());
        s.writes
            .push(format!("CreateHealthCheck {}", want.caller_reference));
        Ok(made)
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), CloudError> {
        self.tick("route53:DeleteHealthCheck", "global", id).await?;
        let mut s = self.state();
        s.health_checks.retain(|h| h.id != id);
        s.writes.push(format!("DeleteHealthCheck {id}"));
        Ok(())
    }

    async fn list_records(
        &self,
        zone: &HostedZone,
        suffix: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        self.tick("route53:ListResourceRecordSets", "global", &zone.name)
            .await?;
        // Fully qualified and case-insensitive, like Route 53's names.
        let suffix = match suffix {
            "" => String::new(),
            s => fqdn(&s.to_ascii_lowercase()),
        };
        Ok(self
            .state()
            .records
            .get(&zone.id)
            .into_iter()
            .flatten()
            .filter(|r| fqdn(&r.name.to_ascii_lowercase()).ends_with(&suffix))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Database for FakeCloud {
    async fn describe_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbInstance>, CloudError> {
        self.tick("rds:DescribeDBInstances", region, id).await?;
        let s = self.state();
        s.reach("rds", "DescribeDBInstances", id, region)?;
        Ok(s.databases.get(&(region.into(), id.into())).cloned())
    }

    async fn promote_replica(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.tick("rds:PromoteReadReplica", region, id).await?;
        let mut s = self.state();
        s.reach("rds", "PromoteReadReplica", id, region)?;
        let inst = s
            .databases
            .get_mut(&(region.into(), id.into()))
            .ok_or_else(|| not_found("rds", "PromoteReadReplica", id, region))?;
        if inst.role == DbRole::Primary {
            return Err(CloudError::new(
                "rds",
                "PromoteReadReplica",
                id,
                region,
                ErrorKind::Client,
                "instance is not a read replica",
            )
            .with_code("InvalidDBInstanceState"));
        }
        inst.role = DbRole::Primary;
        inst.backup_retention_days = 1;
        if let Some(t) = &self.timing {
            inst.status = "modifying".into();
            t.start(format!("db:{region}/{id}"), "rds:PromoteReadReplica");
        }
        let arn = inst.arn.clone();
        for other in s.databases.values_mut() {
            other.replicas.retain(|r| r != &arn);
        }
        s.writes.push(format!("PromoteReadReplica {id}"));
        Ok(())
    }

    /// One call, as RDS makes it: the promotion's answer carries the
    /// instance (a second call after it could be throttled on its own, and
    /// a resend of both would promote twice).
    async fn promote_known(
        &self,
        region: &str,
        known: &DbInstance,
    ) -> Result<DbInstance, CloudError> {
        self.promote_replica(region, &known.id).await?;
        self.state()
            .databases
            .get(&(region.to_string(), known.id.clone()))
            .cloned()
            .ok_or_else(|| not_found("rds", "PromoteReadReplica", &known.id, region))
    }

    async fn create_replica(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        self.tick("rds:CreateDBInstanceReadReplica", region, id)
            .await?;
        let source = {
            let s = self.state();
            if s.databases.contains_key(&(region.into(), id.into())) {
                return Err(CloudError::new(
                    "rds",
                    "CreateDBInstanceReadReplica",
                    id,
                    region,
                    ErrorKind::Client,
                    "instance already exists",
                )
                .with_code("DBInstanceAlreadyExists"));
            }
            s.databases
                .values()
                .find(|d| d.arn == source_arn)
                .map(|d| (d.region.clone(), d.id.clone()))
        };
        let (sr, si) = source
            .ok_or_else(|| not_found("rds", "CreateDBInstanceReadReplica", source_arn, region))?;
        self.add_replica(region, id, (&sr, &si));
        if let Some(inst) = self
            .state()
            .databases
            .get_mut(&(region.to_string(), id.to_string()))
        {
            if let Some(c) = &placement.instance_class {
                inst.instance_class = Some(c.clone());
            }
            inst.kms_key_id = placement.kms_key_id.clone();
            inst.storage_encrypted = placement.kms_key_id.is_some();
            inst.subnet_group = placement.subnet_group.clone();
            inst.security_groups = placement.security_groups.clone();
            inst.multi_az = placement.multi_az.unwrap_or(false);
            inst.tags = placement.tags.clone();
            if let Some(t) = &self.timing {
                inst.status = "creating".into();
                t.start(
                    format!("db:{region}/{id}"),
                    "rds:CreateDBInstanceReadReplica",
                );
            }
        }
        self.state()
            .writes
            .push(format!("CreateDBInstanceReadReplica {id}"));
        Ok(())
    }

    async fn rename_instance(
        &self,
        region: &str,
        id: &str,
        new_id: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:ModifyDBInstance", region, id).await?;
        let mut s = self.state();
        let mut inst = s
            .databases
            .remove(&(region.into(), id.into()))
            .ok_or_else(|| not_found("rds", "ModifyDBInstance", id, region))?;
        let old_arn = inst.arn.clone();
        inst.id = new_id.into();
        inst.arn = format!("arn:aws:rds:{region}:123456789012:db:{new_id}");
        inst.endpoint = Some(format!("{new_id}.fake.{region}.rds.amazonaws.com"));
        let new_arn = inst.arn.clone();
        s.databases.insert((region.into(), new_id.into()), inst);
        for other in s.databases.values_mut() {
            for r in other.replicas.iter_mut().filter(|r| **r == old_arn) {
                *r = new_arn.clone();
            }
        }
        s.writes.push(format!("ModifyDBInstance {id} -> {new_id}"));
        Ok(())
    }

    async fn restore_to_point_in_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        _point: RestorePoint,
    ) -> Result<(), CloudError> {
        self.tick("rds:RestoreDBInstanceToPointInTime", region, target_id)
            .await?;
        let exists = self
            .state()
            .databases
            .contains_key(&(region.into(), source_id.into()));
        if !exists {
            return Err(not_found(
                "rds",
                "RestoreDBInstanceToPointInTime",
                source_id,
                region,
            ));
        }
        self.add_primary(region, target_id);
        if let Some(t) = &self.timing
            && let Some(i) = self
                .state()
                .databases
                .get_mut(&(region.to_string(), target_id.to_string()))
        {
            i.status = "creating".into();
            t.start(
                format!("db:{region}/{target_id}"),
                "rds:RestoreDBInstanceToPointInTime",
            );
        }
        self.state()
            .writes
            .push(format!("RestoreDBInstanceToPointInTime {target_id}"));
        Ok(())
    }

    async fn delete_instance(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.tick("rds:DeleteDBInstance", region, id).await?;
        let mut s = self.state();
        let Some(inst) = s.databases.remove(&(region.into(), id.into())) else {
            return Ok(());
        };
        s.cluster_instances.remove(&(region.into(), id.into()));
        for other in s.databases.values_mut() {
            other.replicas.retain(|r| r != &inst.arn);
        }
        s.writes.push(format!("DeleteDBInstance {id}"));
        Ok(())
    }

    async fn list_instances(&self, region: &str) -> Result<Vec<DbInstance>, CloudError> {
        self.tick("rds:DescribeDBInstances", region, "*").await?;
        let s = self.state();
        s.reach("rds", "DescribeDBInstances", "*", region)?;
        Ok(s.databases
            .values()
            .filter(|d| d.region == region)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Compute for FakeCloud {
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        self.tick("autoscaling:DescribeAutoScalingGroups", region, name)
            .await?;
        let s = self.state();
        s.reach("autoscaling", "DescribeAutoScalingGroups", name, region)?;
        Ok(s.groups.get(&(region.into(), name.into())).cloned())
    }

    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        self.tick("autoscaling:UpdateAutoScalingGroup", region, name)
            .await?;
        let mut s = self.state();
        s.reach("autoscaling", "UpdateAutoScalingGroup", name, region)?;
        let g = s
            .groups
            .get_mut(&(region.into(), name.into()))
            .ok_or_else(|| not_found("autoscaling", "UpdateAutoScalingGroup", name, region))?;
        g.capacity = capacity;
        g.instances = capacity.desired;
        match &self.timing {
            // New instances take their time to come into service; fewer
            // are in service at once.
            Some(t) if capacity.desired > g.in_service => {
                t.start(format!("group:{region}/{name}"), "autoscaling:InService");
            }
            _ => g.in_service = capacity.desired,
        }
        s.writes.push(format!("UpdateAutoScalingGroup {name}"));
        Ok(())
    }

    async fn tag_group(
        &self,
        region: &str,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.tick("autoscaling:CreateOrUpdateTags", region, name)
            .await?;
        let mut s = self.state();
        let g = s
            .groups
            .get_mut(&(region.into(), name.into()))
            .ok_or_else(|| not_found("autoscaling", "CreateOrUpdateTags", name, region))?;
        g.tags.extend(tags.clone());
        s.writes.push(format!("CreateOrUpdateTags {name}"));
        Ok(())
    }

    async fn untag_group(
        &self,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.tick("autoscaling:DeleteTags", region, name).await?;
        let mut s = self.state();
        let g = s
            .groups
            .get_mut(&(region.into(), name.into()))
            .ok_or_else(|| not_found("autoscaling", "DeleteTags", name, region))?;
        g.tags.retain(|k, _| !keys.contains(k));
        s.writes.push(format!("DeleteTags {name}"));
        Ok(())
    }
}

/// The fake's EKS: an update applies at once (its answer `Successful`, the
/// node group `ACTIVE`) unless the world is timed, where the node group is
/// `UPDATING` and the update `InProgress` until the model's draw for
/// `eks:NodegroupActive` completes.
#[async_trait]
impl NodeGroups for FakeCloud {
    async fn describe_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<NodeGroup>, CloudError> {
        self.tick("eks:DescribeNodegroup", region, name).await?;
        let s = self.state();
        s.reach("eks", "DescribeNodegroup", name, region)?;
        Ok(s.node_groups
            .get(&(region.into(), cluster.into(), name.into()))
            .cloned())
    }

    async fn scale_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<NodeGroupUpdate, CloudError> {
        self.tick("eks:UpdateNodegroupConfig", region, name).await?;
        let mut s = self.state();
        s.reach("eks", "UpdateNodegroupConfig", name, region)?;
        let key = (region.to_string(), cluster.to_string(), name.to_string());
        let g = s
            .node_groups
            .get_mut(&key)
            .ok_or_else(|| not_found("eks", "UpdateNodegroupConfig", name, region))?;
        g.capacity = capacity;
        let status = match &self.timing {
            Some(t) => {
                g.status = "UPDATING".into();
                t.start(
                    format!("nodes:{region}/{cluster}/{name}"),
                    "eks:NodegroupActive",
                );
                UpdateStatus::InProgress
            }
            None => UpdateStatus::Successful,
        };
        s.change_counter += 1;
        let update = NodeGroupUpdate {
            id: format!("fake-update-{}", s.change_counter),
            status,
            errors: Vec::new(),
        };
        s.node_group_updates
            .insert(update.id.clone(), (key, update.clone()));
        s.writes.push(format!("UpdateNodegroupConfig {name}"));
        Ok(update)
    }

    async fn describe_update(
        &self,
        region: &str,
        _cluster: &str,
        name: &str,
        id: &str,
    ) -> Result<NodeGroupUpdate, CloudError> {
        self.tick("eks:DescribeUpdate", region, name).await?;
        let s = self.state();
        s.reach("eks", "DescribeUpdate", name, region)?;
        s.node_group_updates
            .get(id)
            .map(|(_, u)| u.clone())
            .ok_or_else(|| not_found("eks", "DescribeUpdate", id, region))
    }
}

/// An ECS service whose tasks have started: running at its desired count.
fn settle_service(s: &mut EcsService) {
    s.running = s.desired;
    s.pending = 0;
    if let Some(d) = s.deployments.iter_mut().find(|d| d.status == "PRIMARY") {
        d.running = d.desired;
    }
}

/// The fake's ECS service of ARN `arn` (what tags go on), or ECS's error.
// The adapters' error type, which the fake's calls return.
#[allow(clippy::result_large_err)]
fn ecs_by_arn<'s>(
    s: &'s mut FakeState,
    op: &'static str,
    (region, arn): (&str, &str),
) -> Result<&'s mut EcsService, CloudError> {
    (s.ecs.values_mut())
        .find(|v| v.arn == arn)
        .ok_or_else(|| not_found("ecs", op, arn, region))
}

#[async_trait]
impl EcsServices for FakeCloud {
    async fn describe_service(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<EcsService>, CloudError> {
        self.tick("ecs:DescribeServices", region, name).await?;
        let mut s = self.state();
        s.reach("ecs", "DescribeServices", name, region)?;
        let key = (region.to_string(), cluster.to_string(), name.to_string());
        if self.timing.is_none()
            && let Some(left) = s.ecs_settling.get_mut(&key)
        {
            *left = left.saturating_sub(1);
            if *left == 0 {
                s.ecs_settling.remove(&key);
                if let Some(svc) = s.ecs.get_mut(&key) {
                    settle_service(svc);
                }
            }
        }
        Ok(s.ecs.get(&key).cloned())
    }

    async fn set_desired_count(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        desired: u32,
    ) -> Result<(), CloudError> {
        self.tick("ecs:UpdateService", region, name).await?;
        let mut s = self.state();
        s.reach("ecs", "UpdateService", name, region)?;
        let key = (region.to_string(), cluster.to_string(), name.to_string());
        let failure = s.ecs_failures.remove(&key);
        let svc =
            (s.ecs.get_mut(&key)).ok_or_else(|| not_found("ecs", "UpdateService", name, region))?;
        svc.desired = desired;
        svc.pending = desired.saturating_sub(svc.running);
        if let Some(d) = svc.deployments.iter_mut().find(|d| d.status == "PRIMARY") {
            d.desired = desired;
            if let Some(why) = &failure {
                d.rollout = Some("FAILED".into());
                d.reason = Some(why.clone());
                d.failed_tasks += 1;
            }
        }
        if failure.is_none() {
            match &self.timing {
                Some(t) => {
                    t.start(
                        format!("ecs:{region}/{cluster}/{name}"),
                        "ecs:ServiceStable",
                    );
                }
                None => {
                    s.ecs_settling.insert(key, 1);
                }
            }
        }
        s.writes.push(format!("UpdateService {cluster}/{name}"));
        Ok(())
    }

    async fn tag_service(
        &self,
        region: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.tick("ecs:TagResource", region, arn).await?;
        let mut s = self.state();
        s.reach("ecs", "TagResource", arn, region)?;
        let svc = ecs_by_arn(&mut s, "TagResource", (region, arn))?;
        svc.tags.extend(tags.clone());
        let name = format!("{}/{}", svc.cluster, svc.name);
        s.writes.push(format!("TagResource {name}"));
        Ok(())
    }

    async fn untag_service(
        &self,
        region: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.tick("ecs:UntagResource", region, arn).await?;
        let mut s = self.state();
        s.reach("ecs", "UntagResource", arn, region)?;
        let svc = ecs_by_arn(&mut s, "UntagResource", (region, arn))?;
        for k in keys {
            svc.tags.remove(k);
        }
        let name = format!("{}/{}", svc.cluster, svc.name);
        s.writes.push(format!("UntagResource {name}"));
        Ok(())
    }
}

/// A cluster of the fake world, as `add_global` makes it.
fn fake_cluster(region: &str, id: &str, global: Option<&str>) -> DbCluster {
    DbCluster {
        id: id.into(),
        arn: format!("arn:aws:rds:{region}:123456789012:cluster:{id}"),
        region: region.into(),
        engine: "aurora-postgresql".into(),
        status: "available".into(),
        endpoint: Some(format!("{id}.cluster-fake.{region}.rds.amazonaws.com")),
        reader_endpoint: Some(format!("{id}.cluster-ro-fake.{region}.rds.amazonaws.com")),
        global_cluster: global.map(str::to_string),
        backup_retention_days: 7,
        tags: BTreeMap::new(),
    }
}

/// A global cluster whose move is done: the target writes, the old
/// writer is a secondary (its snapshot kept when data loss was allowed).
fn settle_move(mut g: GlobalCluster) -> (GlobalCluster, Option<(String, String)>) {
    let Some(m) = g.moving.take() else {
        return (g, None);
    };
    let mut snapshot = None;
    for member in &mut g.members {
        if Some(&member.arn) == m.to.as_ref() {
            member.writer = true;
        } else if member.writer {
            member.writer = false;
            if m.data_loss_allowed {
                snapshot = Some((member.region.clone(), member.id.clone()));
            }
        }
    }
    g.status = "available".into();
    (g, snapshot)
}

impl FakeState {
    /// Keeps a settled move (and the unplanned failover's snapshot).
    fn after_move(&mut self, (g, snapshot): (GlobalCluster, Option<(String, String)>)) {
        if let Some((region, id)) = snapshot {
            self.change_counter += 1;
            let snap = ClusterSnapshot {
                id: format!("rds:unplanned-global-failover-{id}-{}", self.change_counter),
                cluster: id,
                created: Some(Utc::now()),
                kind: "automated".into(),
            };
            self.cluster_snapshots.push((region, snap));
        }
        self.globals.insert(g.id.clone(), g);
    }
}

/// Global databases: a move is done at once, unless the world is timed,
/// where the global cluster shows it under way until the model's draw
/// for `rds:SwitchoverGlobalCluster` (or `rds:FailoverGlobalCluster`)
/// completes. Moves named in `refuse_moves` are refused with their code.
impl FakeCloud {
    /// Starts a Cloud SQL operation `kind` on `target`: recorded as a
    /// write, `PENDING`, its effect applied when it is done.
    fn sql_start(
        &self,
        region: &str,
        project: &str,
        target: &str,
        call: &str,
        kind: &str,
        effect: SqlEffect,
    ) -> SqlOperation {
        let mut s = self.state();
        s.writes.push(format!("{call} {target}"));
        let n = s.sql_ops.len() + 1;
        let error = s
            .sql_failures
            .remove(&(target.to_string(), kind.to_string()));
        let op = SqlOperation {
            name: format!("op-{n:04}-{target}"),
            kind: kind.into(),
            target: target.into(),
            status: SqlOpStatus::Pending,
            error: None,
            inserted: Some(Utc::now()),
        };
        let _ = region;
        s.sql_ops.insert(
            (project.to_string(), op.name.clone()),
            (
                SqlOperation {
                    error: error.clone(),
                    ..op.clone()
                },
                effect,
            ),
        );
        op
    }

    #[allow(clippy::result_large_err)]
    fn sql_replica(
        s: &FakeState,
        region: &str,
        project: &str,
        name: &str,
        call: &'static str,
        dr: bool,
    ) -> Result<(), CloudError> {
        let refuse = |m: &str| {
            CloudError::new(
                "sqladmin",
                call,
                name,
                region,
                ErrorKind::Client,
                m.to_string(),
            )
            .with_code("FAILED_PRECONDITION")
        };
        let Some(i) = s.sql.get(&(project.to_string(), name.to_string())) else {
            return Err(CloudError::new(
                "sqladmin",
                call,
                name,
                region,
                ErrorKind::NotFound,
                "The Cloud SQL instance does not exist.",
            ));
        };
        if i.role == DbRole::Primary {
            return Err(refuse("The instance is not a read replica."));
        }
        if dr && !i.dr_replica {
            return Err(refuse("The replica is not its primary's DR replica."));
        }
        if (s.sql_ops.values()).any(|(o, _)| o.target == name && !o.is_done()) {
            return Err(CloudError::new(
                "sqladmin",
                call,
                name,
                region,
                ErrorKind::Client,
                "Operation failed because another operation was already in progress.",
            )
            .with_code("ABORTED"));
        }
        Ok(())
    }
}

impl FakeCloud {
    /// Seeds Cloud Run service `name` in `region`, serving its first
    /// revision with a service-level floor of `min`.
    pub fn add_run_service(&self, project: &str, region: &str, name: &str, min: u32) {
        self.state().run.insert(
            (project.into(), region.into(), name.into()),
            RunService {
                name: name.into(),
                region: region.into(),
                floor: min,
                min_instances: 0,
                max_instances: Some(100),
                generation: 1,
                observed_generation: 1,
                latest_created: format!("{name}-00001-aaa"),
                latest_ready: format!("{name}-00001-aaa"),
                ready_state: "CONDITION_SUCCEEDED".into(),
                ready_message: None,
                reconciling: false,
                etag: "e1".into(),
                labels: BTreeMap::new(),
            },
        );
    }

    /// Arms the next change of service `name` to fail with `message`.
    pub fn fail_run(&self, project: &str, region: &str, name: &str, message: &str) {
        self.state()
            .run_failures
            .insert((project.into(), region.into(), name.into()), message.into());
    }
}

/// A Cloud DNS record set's key in the fake.
fn rrset_key(
    project: &str,
    zone: &str,
    name: &str,
    rtype: &str,
) -> (String, String, String, String) {
    (
        project.to_string(),
        zone.to_string(),
        name.to_ascii_lowercase(),
        rtype.to_string(),
    )
}

impl FakeCloud {
    /// Adds Cloud DNS managed zone `zone` of `project`, serving `dns_name`.
    pub fn add_cloud_zone(&self, project: &str, zone: &str, dns_name: &str) {
        self.state()
            .cloud_zones
            .insert((project.into(), zone.into()), dns_name.into());
    }

    /// Puts record set `r` in Cloud DNS zone `zone` as it is (no change).
    pub fn put_cloud_record(&self, project: &str, zone: &str, r: CloudRecordSet) {
        let key = rrset_key(project, zone, &r.name, &r.rtype);
        self.state().cloud_rrsets.insert(key, r);
    }

    /// The record set `name`/`rtype` of Cloud DNS zone `zone`, as it is.
    pub fn cloud_record(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Option<CloudRecordSet> {
        let key = rrset_key(project, zone, name, rtype);
        self.state().cloud_rrsets.get(&key).cloned()
    }

    /// Arms another writer: right before the next change of `zone`, record
    /// set `r` is put there (so a change built on an earlier read no longer
    /// matches).
    pub fn race_cloud_record(&self, project: &str, zone: &str, r: CloudRecordSet) {
        self.state()
            .cloud_dns_races
            .insert((project.into(), zone.into()), r);
    }
}

#[async_trait]
impl CloudDns for FakeCloud {
    async fn describe_zone(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Option<CloudDnsZone>, CloudError> {
        self.tick("clouddns:managedZones.get", "global", zone)
            .await?;
        let s = self.state();
        s.reach("clouddns", "managedZones.get", zone, "global")?;
        Ok(
            (s.cloud_zones.get(&(project.to_string(), zone.to_string()))).map(|d| CloudDnsZone {
                name: zone.to_string(),
                dns_name: d.clone(),
            }),
        )
    }

    async fn read_record_set(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Option<CloudRecordSet>, CloudError> {
        self.tick("clouddns:resourceRecordSets.list", "global", name)
            .await?;
        let s = self.state();
        s.reach("clouddns", "resourceRecordSets.list", name, "global")?;
        if !s
            .cloud_zones
            .contains_key(&(project.to_string(), zone.to_string()))
        {
            return Err(CloudError::new(
                "clouddns",
                "resourceRecordSets.list",
                name,
                "global",
                ErrorKind::NotFound,
                format!("The 'parameters.managedZone' resource named '{zone}' does not exist."),
            )
            .with_code("NOT_FOUND"));
        }
        Ok(s.cloud_rrsets
            .get(&rrset_key(project, zone, name, rtype))
            .cloned())
    }

    async fn delete_record_set(
        &self,
        project: &str,
        zone: &str,
        deletion: &CloudRecordSet,
    ) -> Result<CloudDnsChange, CloudError> {
        self.tick("clouddns:changes.create", "global", &deletion.name)
            .await?;
        let mut s = self.state();
        s.reach("clouddns", "changes.create", &deletion.name, "global")?;
        let key = rrset_key(project, zone, &deletion.name, &deletion.rtype);
        if s.cloud_rrsets.get(&key) != Some(deletion) {
            return Err(CloudError::new(
                "clouddns",
                "changes.create",
                &deletion.name,
                "global",
                ErrorKind::Precondition,
                "Precondition not met for 'entity.change.deletions[0]'",
            )
            .with_code("FAILED_PRECONDITION"));
        }
        s.writes.push(format!("changes.create -{}", deletion.name));
        s.cloud_rrsets.remove(&key);
        Ok(s.cloud_change(project, zone))
    }

    async fn swap_record_set(
        &self,
        project: &str,
        zone: &str,
        deletion: Option<&CloudRecordSet>,
        addition: &CloudRecordSet,
    ) -> Result<CloudDnsChange, CloudError> {
        self.tick("clouddns:changes.create", "global", &addition.name)
            .await?;
        let mut s = self.state();
        s.reach("clouddns", "changes.create", &addition.name, "global")?;
        let refuse = |code: &str, m: String| {
            CloudError::new(
                "clouddns",
                "changes.create",
                &addition.name,
                "global",
                ErrorKind::Precondition,
                m,
            )
            .with_code(code)
        };
        if let Some(r) = s
            .cloud_dns_races
            .remove(&(project.to_string(), zone.to_string()))
        {
            let key = rrset_key(project, zone, &r.name, &r.rtype);
            s.cloud_rrsets.insert(key, r);
        }
        let same = |a: &CloudRecordSet, b: &CloudRecordSet| {
            let mut x = a.rrdatas.clone();
            let mut y = b.rrdatas.clone();
            x.sort();
            y.sort();
            a.ttl == b.ttl && x == y && a.routed == b.routed && a.primary_backup == b.primary_backup
        };
        let key = rrset_key(project, zone, &addition.name, &addition.rtype);
        let have = s.cloud_rrsets.get(&key).cloned();
        match (deletion, &have) {
            (Some(d), Some(h)) if same(d, h) => {}
            (Some(_), _) => {
                return Err(refuse(
                    "FAILED_PRECONDITION",
                    "Precondition not met for 'entity.change.deletions[0]'".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(refuse(
                    "ALREADY_EXISTS",
                    format!(
                        "The resource 'entity.change.additions[0]' named '{} ({})' already exists",
                        addition.name, addition.rtype
                    ),
                ));
            }
            (None, None) => {}
        }
        s.writes.push(format!("changes.create {}", addition.name));
        s.cloud_rrsets.insert(key, addition.clone());
        Ok(s.cloud_change(project, zone))
    }

    async fn dns_change(
        &self,
        project: &str,
        zone: &str,
        id: &str,
    ) -> Result<CloudDnsChange, CloudError> {
        self.tick("clouddns:changes.get", "global", id).await?;
        let mut s = self.state();
        s.reach("clouddns", "changes.get", id, "global")?;
        let key = (project.to_string(), zone.to_string(), id.to_string());
        let Some(reads) = s.cloud_changes.get(&key).copied() else {
            return Err(CloudError::new(
                "clouddns",
                "changes.get",
                id,
                "global",
                ErrorKind::NotFound,
                format!("The 'parameters.changeId' resource named '{id}' does not exist."),
            )
            .with_code("NOT_FOUND"));
        };
        s.cloud_changes.insert(key, reads + 1);
        Ok(CloudDnsChange {
            id: id.to_string(),
            done: reads >= 1,
        })
    }

    async fn pending_dns_changes(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudDnsChange>, CloudError> {
        self.tick("clouddns:changes.list", "global", zone).await?;
        let s = self.state();
        s.reach("clouddns", "changes.list", zone, "global")?;
        Ok((s.cloud_changes.iter())
            .filter(|((p, z, _), reads)| p == project && z == zone && **reads < 1)
            .map(|((_, _, id), _)| CloudDnsChange {
                id: id.clone(),
                done: false,
            })
            .collect())
    }
}

#[async_trait]
impl CloudRun for FakeCloud {
    async fn describe_run(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<RunService>, CloudError> {
        self.tick("run:services.get", region, name).await?;
        let mut s = self.state();
        s.reach("run", "services.get", name, region)?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        // A change goes on whoever reads: it ends at the second read.
        s.run_progress(&key);
        Ok(s.run.get(&key).cloned())
    }

    async fn set_run_floor(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
    ) -> Result<(), CloudError> {
        self.run_patch((region, project, name), Err(()), |svc| {
            svc.floor = min;
            svc.reconciling = true;
            svc.ready_state = "CONDITION_RECONCILING".into();
            svc.ready_message = None;
        })
        .await
    }

    async fn set_run_labels(
        &self,
        region: &str,
        project: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
        etag: &str,
    ) -> Result<(), CloudError> {
        self.run_patch((region, project, name), Ok(etag), |svc| {
            svc.labels = labels.clone();
            // Metadata: no rollout.
            svc.observed_generation = svc.generation;
        })
        .await
    }
}

impl FakeCloud {
    /// One `services.patch` of Cloud Run service `name`: refused when it
    /// is missing, when `etag` (`Ok`: a labels patch) is stale, or when it
    /// changes the floor (`Err`) while a change is reconciled (Cloud Run's
    /// 409); `change` makes the next generation.
    async fn run_patch(
        &self,
        (region, project, name): (&str, &str, &str),
        etag: Result<&str, ()>,
        change: impl FnOnce(&mut RunService),
    ) -> Result<(), CloudError> {
        self.tick("run:services.patch", region, name).await?;
        let mut s = self.state();
        s.reach("run", "services.patch", name, region)?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        let refuse = |kind, code: &str, m: &str| {
            CloudError::new("run", "services.patch", name, region, kind, m).with_code(code)
        };
        let Some(mut svc) = s.run.get(&key).cloned() else {
            return Err(refuse(
                ErrorKind::NotFound,
                "NOT_FOUND",
                "service not found",
            ));
        };
        let refused = match etag {
            Ok(e) => (e != svc.etag).then_some("the service changed since it was read"),
            Err(()) => (svc.reconciling).then_some("the service is being reconciled"),
        };
        if let Some(why) = refused {
            return Err(refuse(ErrorKind::Client, "ABORTED", why));
        }
        let what = if etag.is_ok() { "labels" } else { "scaling" };
        s.writes.push(format!("services.patch {what} {name}"));
        svc.generation += 1;
        svc.etag = format!("e{}", svc.generation);
        change(&mut svc);
        if svc.reconciling {
            s.run_ops.insert(key.clone(), 0);
        }
        s.run.insert(key, svc);
        Ok(())
    }
}

impl FakeState {
    /// Counts a read of Cloud Run service `key` while a change of it is
    /// reconciled, and ends the change at the second: the service's floor
    /// in effect, or, when a failure was armed, `Ready` failed naming it.
    fn run_progress(&mut self, key: &(String, String, String)) {
        let s = self;
        let Some(reads) = s.run_ops.get(key).copied() else {
            return;
        };
        if reads == 0 {
            s.run_ops.insert(key.clone(), 1);
            return;
        }
        s.run_ops.remove(key);
        let Some(svc) = s.run.get_mut(key) else {
            return;
        };
        svc.reconciling = false;
        svc.observed_generation = svc.generation;
        match s.run_failures.remove(key) {
            Some(m) => {
                svc.ready_state = "CONDITION_FAILED".into();
                svc.ready_message = Some(m);
            }
            None => svc.ready_state = "CONDITION_SUCCEEDED".into(),
        }
    }
}

#[async_trait]
impl CloudSql for FakeCloud {
    async fn describe_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<SqlInstance>, CloudError> {
        self.tick("sqladmin:instances.get", region, name).await?;
        let mut s = self.state();
        s.reach("sqladmin", "instances.get", name, region)?;
        s.sql_rejoin();
        Ok(s.sql.get(&(project.to_string(), name.to_string())).cloned())
    }

    async fn promote_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        failover: bool,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.promoteReplica", region, name)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.promoteReplica", name, region)?;
            Self::sql_replica(
                &s,
                region,
                project,
                name,
                "instances.promoteReplica",
                failover,
            )?;
        }
        Ok(self.sql_start(
            region,
            project,
            name,
            "instances.promoteReplica",
            "PROMOTE_REPLICA",
            SqlEffect::Promote { failover },
        ))
    }

    async fn switchover_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.switchover", region, name)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.switchover", name, region)?;
            Self::sql_replica(&s, region, project, name, "instances.switchover", true)?;
        }
        Ok(self.sql_start(
            region,
            project,
            name,
            "instances.switchover",
            "SWITCHOVER",
            SqlEffect::Switchover,
        ))
    }

    async fn designate_dr_sql(
        &self,
        region: &str,
        project: &str,
        primary: &str,
        replica: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.patch", region, primary)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.patch", primary, region)?;
            let follows = (s.sql.get(&(project.to_string(), replica.to_string())))
                .is_some_and(|r| r.role == DbRole::Replica(primary.to_string()));
            if !follows {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.patch",
                    primary,
                    region,
                    ErrorKind::Client,
                    format!("{replica} is not a read replica of {primary}"),
                ));
            }
        }
        Ok(self.sql_start(
            region,
            project,
            primary,
            "instances.patch",
            "UPDATE",
            SqlEffect::DesignateDr(replica.to_string()),
        ))
    }

    async fn clone_sql(
        &self,
        region: &str,
        project: &str,
        source: &str,
        target: &str,
        _point_in_time: Option<chrono::DateTime<Utc>>,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.clone", region, source)
            .await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.clone", source, region)?;
            if let Some(i) = s.sql.get(&(project.to_string(), source.to_string()))
                && i.role != DbRole::Primary
            {
                // Replicas keep no backups, which a clone is made from.
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.clone",
                    source,
                    region,
                    ErrorKind::Precondition,
                    "The requested operation is not valid for a replica instance.",
                ));
            }
            if s.sql
                .contains_key(&(project.to_string(), target.to_string()))
            {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.clone",
                    target,
                    region,
                    ErrorKind::Client,
                    "The Cloud SQL instance already exists.",
                ));
            }
        }
        Ok(self.sql_start(
            region,
            project,
            target,
            "instances.clone",
            "CLONE",
            SqlEffect::Clone(source.to_string()),
        ))
    }

    async fn delete_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:instances.delete", region, name).await?;
        {
            let s = self.state();
            s.reach("sqladmin", "instances.delete", name, region)?;
            if !s.sql.contains_key(&(project.to_string(), name.to_string())) {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.delete",
                    name,
                    region,
                    ErrorKind::NotFound,
                    "The Cloud SQL instance does not exist.",
                ));
            }
            if (s.sql_ops.values()).any(|(o, _)| o.target == name && !o.is_done()) {
                return Err(CloudError::new(
                    "sqladmin",
                    "instances.delete",
                    name,
                    region,
                    ErrorKind::Precondition,
                    "Operation failed because another operation was already in progress.",
                ));
            }
        }
        Ok(self.sql_start(
            region,
            project,
            name,
            "instances.delete",
            "DELETE",
            SqlEffect::Delete,
        ))
    }

    async fn recovery_window(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<RecoveryWindow, CloudError> {
        self.tick("sqladmin:instances.getLatestRecoveryTime", region, name)
            .await?;
        let s = self.state();
        s.reach("sqladmin", "instances.getLatestRecoveryTime", name, region)?;
        if !s.sql.contains_key(&(project.to_string(), name.to_string())) {
            return Err(CloudError::new(
                "sqladmin",
                "instances.getLatestRecoveryTime",
                name,
                region,
                ErrorKind::NotFound,
                "The Cloud SQL instance does not exist.",
            ));
        }
        let now = Utc::now();
        Ok(RecoveryWindow {
            earliest: Some(now - chrono::Duration::days(7)),
            latest: now - chrono::Duration::seconds(1),
        })
    }

    async fn operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.tick("sqladmin:operations.get", region, operation)
            .await?;
        let mut s = self.state();
        s.reach("sqladmin", "operations.get", operation, region)?;
        let key = (project.to_string(), operation.to_string());
        let Some((op, effect)) = s.sql_ops.get(&key).cloned() else {
            return Err(CloudError::new(
                "sqladmin",
                "operations.get",
                operation,
                region,
                ErrorKind::NotFound,
                "The Cloud SQL operation does not exist.",
            ));
        };
        let next = match op.status {
            SqlOpStatus::Pending => SqlOpStatus::Running,
            _ => SqlOpStatus::Done,
        };
        if next == SqlOpStatus::Done && !op.is_done() && op.error.is_none() {
            s.sql_effect(project, &op.target, &effect);
        }
        let op = SqlOperation { status: next, ..op };
        s.sql_ops.insert(key, (op.clone(), effect));
        let shown = if op.is_done() {
            op
        } else {
            SqlOperation { error: None, ..op }
        };
        Ok(shown)
    }

    async fn operations(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<SqlOperation>, CloudError> {
        self.tick("sqladmin:operations.list", region, name).await?;
        let s = self.state();
        s.reach("sqladmin", "operations.list", name, region)?;
        let mut out: Vec<SqlOperation> = (s.sql_ops.iter())
            .filter(|((p, _), (o, _))| p == project && o.target == name)
            .map(|(_, (o, _))| {
                if o.is_done() {
                    o.clone()
                } else {
                    SqlOperation {
                        error: None,
                        ..o.clone()
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| b.name.cmp(&a.name));
        Ok(out)
    }

    async fn sql_replica_lag(
        &self,
        region: &str,
        project: &str,
        name: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.tick("monitoring:timeSeries.list", region, name)
            .await?;
        let replica = {
            let s = self.state();
            s.reach("monitoring", "timeSeries.list", name, region)?;
            (s.sql.get(&(project.to_string(), name.to_string())))
                .is_some_and(|i| i.role != DbRole::Primary)
        };
        if !replica {
            // A primary publishes no replica_lag: no points, never a zero.
            return Ok(LagReading {
                max: None,
                latest: None,
                datapoints: 0,
                window,
            });
        }
        self.replica_lag(region, name, window).await
    }
}

#[async_trait]
impl GlobalDatabases for FakeCloud {
    async fn describe_global(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<GlobalCluster>, CloudError> {
        self.tick("rds:DescribeGlobalClusters", region, id).await?;
        let s = self.state();
        s.reach("rds", "DescribeGlobalClusters", id, region)?;
        Ok(s.globals.get(id).cloned())
    }

    async fn describe_cluster(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbCluster>, CloudError> {
        self.tick("rds:DescribeDBClusters", region, id).await?;
        let s = self.state();
        s.reach("rds", "DescribeDBClusters", id, region)?;
        Ok(s.clusters.get(&(region.into(), id.into())).cloned())
    }

    async fn switchover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:SwitchoverGlobalCluster", region, global)
            .await?;
        self.start_move("SwitchoverGlobalCluster", region, global, target_arn, false)
    }

    async fn failover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:FailoverGlobalCluster", region, global)
            .await?;
        self.start_move("FailoverGlobalCluster", region, global, target_arn, true)
    }

    async fn detach_cluster(
        &self,
        region: &str,
        global: &str,
        cluster_arn: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:RemoveFromGlobalCluster", region, global)
            .await?;
        let mut s = self.state();
        s.reach("rds", "RemoveFromGlobalCluster", cluster_arn, region)?;
        let (_, id) = parse_cluster_arn(cluster_arn);
        let c = s
            .clusters
            .get_mut(&(region.into(), id.clone()))
            .ok_or_else(|| not_found("rds", "RemoveFromGlobalCluster", cluster_arn, region))?;
        c.global_cluster = None;
        if let Some(g) = s.globals.get_mut(global) {
            g.members.retain(|m| m.arn != cluster_arn);
        }
        s.writes.push(format!("RemoveFromGlobalCluster {id}"));
        Ok(())
    }

    async fn cluster_snapshots(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<ClusterSnapshot>, CloudError> {
        self.tick("rds:DescribeDBClusterSnapshots", region, cluster)
            .await?;
        let s = self.state();
        s.reach("rds", "DescribeDBClusterSnapshots", cluster, region)?;
        Ok(s.cluster_snapshots
            .iter()
            .filter(|(r, snap)| r == region && snap.cluster == cluster)
            .map(|(_, snap)| snap.clone())
            .collect())
    }

    async fn delete_global(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.tick("rds:DeleteGlobalCluster", region, id).await?;
        let mut s = self.state();
        s.reach("rds", "DeleteGlobalCluster", id, region)?;
        if s.globals.get(id).is_some_and(|g| !g.members.is_empty()) {
            return Err(CloudError::new(
                "rds",
                "DeleteGlobalCluster",
                id,
                region,
                ErrorKind::Client,
                "the global cluster still has members",
            )
            .with_code("InvalidGlobalClusterStateFault"));
        }
        if s.globals.remove(id).is_some() {
            s.writes.push(format!("DeleteGlobalCluster {id}"));
        }
        Ok(())
    }

    async fn create_global(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:CreateGlobalCluster", region, id).await?;
        let mut s = self.state();
        s.reach("rds", "CreateGlobalCluster", id, region)?;
        if s.globals.contains_key(id) {
            return Err(CloudError::new(
                "rds",
                "CreateGlobalCluster",
                id,
                region,
                ErrorKind::Client,
                "a global cluster of that id exists",
            )
            .with_code("GlobalClusterAlreadyExistsFault"));
        }
        let (r, cid) = parse_cluster_arn(source_arn);
        let c = s
            .clusters
            .get_mut(&(r.clone(), cid.clone()))
            .ok_or_else(|| not_found("rds", "CreateGlobalCluster", source_arn, region))?;
        c.global_cluster = Some(id.to_string());
        let g = GlobalCluster {
            id: id.into(),
            arn: format!("arn:aws:rds::123456789012:global-cluster:{id}"),
            status: "available".into(),
            endpoint: Some(format!("{id}.global-fake.global.rds.amazonaws.com")),
            members: vec![GlobalMember {
                arn: source_arn.into(),
                writer: true,
                region: r,
                id: cid,
            }],
            moving: None,
        };
        s.globals.insert(id.into(), g);
        s.writes.push(format!("CreateGlobalCluster {id}"));
        Ok(())
    }

    async fn create_secondary(
        &self,
        region: &str,
        id: &str,
        global: &str,
        _engine: &str,
    ) -> Result<(), CloudError> {
        self.tick("rds:CreateDBCluster", region, id).await?;
        let mut s = self.state();
        s.reach("rds", "CreateDBCluster", id, region)?;
        if s.clusters.contains_key(&(region.into(), id.into())) {
            return Err(CloudError::new(
                "rds",
                "CreateDBCluster",
                id,
                region,
                ErrorKind::Client,
                "a cluster of that id exists",
            )
            .with_code("DBClusterAlreadyExistsFault"));
        }
        let c = fake_cluster(region, id, Some(global));
        let Some(g) = s.globals.get_mut(global) else {
            return Err(not_found("rds", "CreateDBCluster", global, region));
        };
        g.members.push(GlobalMember {
            arn: c.arn.clone(),
            writer: false,
            region: region.into(),
            id: id.into(),
        });
        s.clusters.insert((region.into(), id.into()), c);
        s.writes.push(format!("CreateDBCluster {id}"));
        Ok(())
    }

    async fn rename_cluster(&self, region: &str, id: &str, new_id: &str) -> Result<(), CloudError> {
        self.tick("rds:ModifyDBCluster", region, id).await?;
        let mut s = self.state();
        s.reach("rds", "ModifyDBCluster", id, region)?;
        let mut c = s
            .clusters
            .remove(&(region.into(), id.into()))
            .ok_or_else(|| not_found("rds", "ModifyDBCluster", id, region))?;
        let old_arn = c.arn.clone();
        c.id = new_id.into();
        c.arn = format!("arn:aws:rds:{region}:123456789012:cluster:{new_id}");
        c.endpoint = Some(format!("{new_id}.cluster-fake.{region}.rds.amazonaws.com"));
        for g in s.globals.values_mut() {
            for m in g.members.iter_mut().filter(|m| m.arn == old_arn) {
                m.arn = c.arn.clone();
                m.id = new_id.into();
            }
        }
        s.clusters.insert((region.into(), new_id.into()), c);
        s.writes.push(format!("ModifyDBCluster {id} -> {new_id}"));
        Ok(())
    }
    async fn clone_cluster(
        &self,
        region: &str,
        source: &str,
        target: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        const OP: &str = "RestoreDBClusterToPointInTime";
        self.tick("rds:RestoreDBClusterToPointInTime", region, target)
            .await?;
        let mut s = self.state();
        s.reach("rds", OP, target, region)?;
        if s.clusters.contains_key(&(region.into(), target.into())) {
            return Err(CloudError::new(
                "rds",
                OP,
                target,
                region,
                ErrorKind::Client,
                "DB cluster already exists",
            )
            .with_code("DBClusterAlreadyExistsFault"));
        }
        let engine = s
            .clusters
            .get(&(region.into(), source.into()))
            .map(|c| c.engine.clone())
            .ok_or_else(|| not_found("rds", OP, source, region))?;
        // A standalone cluster: a clone never joins its source's global
        // cluster, and carries only the tags it is given.
        let mut copy = fake_cluster(region, target, None);
        copy.engine = engine;
        copy.tags = tags.clone();
        if let Some(t) = &self.timing {
            copy.status = "creating".into();
            t.start(
                format!("cluster:{region}/{target}"),
                "rds:RestoreDBClusterToPointInTime",
            );
        }
        s.clusters.insert((region.into(), target.into()), copy);
        s.writes.push(format!("{OP} {target}"));
        Ok(())
    }

    async fn add_writer(
        &self,
        region: &str,
        cluster: &str,
        instance: &str,
        engine: &str,
        class: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        const OP: &str = "CreateDBInstance";
        self.tick("rds:CreateDBInstance", region, instance).await?;
        {
            let s = self.state();
            s.reach("rds", OP, instance, region)?;
            match s.clusters.get(&(region.into(), cluster.into())) {
                None => return Err(not_found("rds", OP, cluster, region)),
                Some(c) if !c.is_available() => {
                    return Err(CloudError::new(
                        "rds",
                        OP,
                        instance,
                        region,
                        ErrorKind::Client,
                        format!("DB cluster {cluster} is {}, not available", c.status),
                    )
                    .with_code("InvalidDBClusterStateFault"));
                }
                Some(_) => {}
            }
            if s.databases.contains_key(&(region.into(), instance.into())) {
                return Err(CloudError::new(
                    "rds",
                    OP,
                    instance,
                    region,
                    ErrorKind::Client,
                    "instance already exists",
                )
                .with_code("DBInstanceAlreadyExists"));
            }
        }
        self.add_primary(region, instance);
        let mut s = self.state();
        if let Some(i) = s.databases.get_mut(&(region.into(), instance.into())) {
            i.engine = engine.into();
            i.instance_class = Some(class.into());
            i.tags = tags.clone();
            i.backup_retention_days = 0;
            if let Some(t) = &self.timing {
                i.status = "creating".into();
                t.start(format!("db:{region}/{instance}"), "rds:CreateDBInstance");
            }
        }
        s.cluster_instances
            .insert((region.into(), instance.into()), cluster.into());
        s.writes.push(format!("{OP} {instance}"));
        Ok(())
    }

    async fn delete_cluster(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.tick("rds:DeleteDBCluster", region, id).await?;
        let mut s = self.state();
        s.reach("rds", "DeleteDBCluster", id, region)?;
        let members: Vec<(String, String)> = (s.cluster_instances.iter())
            .filter(|(k, c)| k.0 == region && c.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect();
        for key in members {
            s.cluster_instances.remove(&key);
            if s.databases.remove(&key).is_some() {
                s.writes.push(format!("DeleteDBInstance {}", key.1));
            }
        }
        if s.clusters.remove(&(region.into(), id.into())).is_some() {
            s.writes.push(format!("DeleteDBCluster {id}"));
        }
        Ok(())
    }

    async fn list_clusters(&self, region: &str) -> Result<Vec<DbCluster>, CloudError> {
        self.tick("rds:DescribeDBClusters", region, "*").await?;
        let s = self.state();
        s.reach("rds", "DescribeDBClusters", "*", region)?;
        Ok(s.clusters
            .values()
            .filter(|c| c.region == region)
            .cloned()
            .collect())
    }
}

impl FakeCloud {
    /// Starts moving `global`'s writer to `target_arn` (see the impl).
    #[allow(clippy::result_large_err)] // the adapters' own error type
    fn start_move(
        &self,
        op: &'static str,
        region: &str,
        global: &str,
        target_arn: &str,
        data_loss: bool,
    ) -> Result<(), CloudError> {
        let mut s = self.state();
        s.reach("rds", op, global, region)?;
        if let Some(code) = s.refuse_moves.get(op) {
            return Err(CloudError::new(
                "rds",
                op,
                global,
                region,
                ErrorKind::Client,
                format!("{code}: refused by the fake cloud"),
            )
            .with_code(code));
        }
        let mut g = s
            .globals
            .get(global)
            .cloned()
            .ok_or_else(|| not_found("rds", op, global, region))?;
        if g.moving.is_some() {
            return Err(CloudError::new(
                "rds",
                op,
                global,
                region,
                ErrorKind::Client,
                "the global cluster is already moving its writer",
            )
            .with_code("InvalidGlobalClusterStateFault"));
        }
        let target = g.members.iter().find(|m| m.arn == target_arn);
        if target.is_none_or(|m| m.writer) {
            return Err(CloudError::new(
                "rds",
                op,
                global,
                region,
                ErrorKind::Client,
                format!("{target_arn} is not a secondary of {global}"),
            )
            .with_code("InvalidParameterValue"));
        }
        g.moving = Some(GlobalMove {
            status: if data_loss {
                "failing-over"
            } else {
                "switching-over"
            }
            .into(),
            from: g.writer().map(|w| w.arn.clone()),
            to: Some(target_arn.into()),
            data_loss_allowed: data_loss,
        });
        g.status = g
            .moving
            .as_ref()
            .map(|m| m.status.clone())
            .unwrap_or_default();
        s.writes.push(format!("{op} {global}"));
        match &self.timing {
            Some(t) => {
                t.start(format!("global:{global}"), &format!("rds:{op}"));
                s.globals.insert(global.into(), g);
            }
            None => {
                let settled = settle_move(g);
                s.after_move(settled);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Metrics for FakeCloud {
    async fn replica_lag(
        &self,
        region: &str,
        db_id: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.tick("cloudwatch:GetMetricData", region, "ReplicaLag")
            .await?;
        let s = self.state();
        s.reach("cloudwatch", "GetMetricData", db_id, region)?;
        let points = s
            .lag
            .get(&(region.into(), db_id.into()))
            .cloned()
            .unwrap_or_default();
        let max = points
            .iter()
            .cloned()
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        Ok(LagReading {
            max: max.map(Duration::from_secs_f64),
            latest: points
                .last()
                .map(|v| (Duration::from_secs_f64(*v), Utc::now())),
            datapoints: points.len(),
            window,
        })
    }

    async fn cluster_lag(
        &self,
        region: &str,
        cluster: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.replica_lag(region, cluster, window).await
    }

    async fn alarms_firing(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<Vec<String>, CloudError> {
        self.tick("cloudwatch:DescribeAlarms", region, "*").await?;
        let s = self.state();
        s.reach("cloudwatch", "DescribeAlarms", "alarms", region)?;
        Ok(names
            .iter()
            .filter_map(|n| {
                let key = (region.to_string(), n.clone());
                if s.alarms_firing.contains(&key) {
                    Some(n.clone())
                } else if s.alarms_ok.contains(&key) {
                    None
                } else {
                    Some(format!("{n} (missing)"))
                }
            })
            .collect())
    }
}

#[async_trait]
impl ObjectStore for FakeCloud {
    async fn bucket_exists(&self, via: &str, bucket: &ObjectUrl) -> Result<bool, CloudError> {
        self.tick("s3:HeadBucket", via, &bucket.bucket).await?;
        let key = ObjectUrl {
            key: String::new(),
            ..bucket.clone()
        }
        .to_string();
        Ok(self.state().buckets.contains(&key))
    }

    async fn put(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, CloudError> {
        self.tick("s3:PutObject", via, &url.key).await?;
        let mut s = self.state();
        s.reach("s3", "PutObject", &url.to_string(), via)?;
        let key = url.to_string();
        if mode == PutMode::CreateOnly && s.objects.contains_key(&key) && !s.ignores_conditions {
            return Ok(PutOutcome::AlreadyExists);
        }
        let version = s.write_object(&key, body, self.store_now());
        s.writes.push(format!("PutObject {key}"));
        Ok(PutOutcome::Written(Some(version)))
    }

    async fn put_retained(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        retention: Option<Retention>,
    ) -> Result<Kept, CloudError> {
        self.tick("s3:PutObject", via, &url.key).await?;
        let outcome = self.put(via, url, body, PutMode::CreateOnly).await?;
        if let (Some(r), PutOutcome::Written(_)) = (retention, &outcome) {
            self.state().retained.insert(url.to_string(), r);
        }
        Ok(Kept {
            outcome,
            retained_until: None,
        })
    }

    async fn object_retention(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Retention>, CloudError> {
        if url.scheme == ObjectScheme::Gcs {
            return Ok(None);
        }
        self.tick("s3:GetObjectRetention", via, &url.key).await?;
        Ok(self.state().retained.get(&url.to_string()).copied())
    }

    async fn bucket_lock(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketLock, CloudError> {
        self.tick("s3:GetObjectLockConfiguration", via, &bucket.bucket)
            .await?;
        let key = ObjectUrl {
            key: String::new(),
            ..bucket.clone()
        }
        .to_string();
        Ok(match bucket.scheme {
            ObjectScheme::S3 => BucketLock {
                object_lock: Some(self.state().locked_buckets.contains(&key)),
                default_retention: None,
            },
            ObjectScheme::Gcs => BucketLock::default(),
        })
    }

    async fn get_versioned(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Versioned>, CloudError> {
        self.tick("s3:GetObject", via, &url.key).await?;
        let s = self.state();
        s.reach("s3", "GetObject", &url.to_string(), via)?;
        let key = url.to_string();
        Ok(s.objects.get(&key).map(|body| Versioned {
            body: body.clone(),
            version: s
                .object_versions
                .get(&key)
                .copied()
                .unwrap_or(0)
                .to_string(),
            times: StoreTimes {
                modified: s.object_modified.get(&key).copied(),
                answered: self.store_now(),
                resolution: Duration::ZERO,
            },
        }))
    }

    async fn replace_if(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        version: &str,
    ) -> Result<SwapOutcome, CloudError> {
        self.tick("s3:PutObject", via, &url.key).await?;
        let mut s = self.state();
        s.reach("s3", "PutObject", &url.to_string(), via)?;
        let key = url.to_string();
        let current = s.objects.contains_key(&key).then(|| {
            s.object_versions
                .get(&key)
                .copied()
                .unwrap_or(0)
                .to_string()
        });
        if current.as_deref() != Some(version) && !s.ignores_conditions {
            return Ok(SwapOutcome::Stale);
        }
        let version = s.write_object(&key, body, self.store_now());
        s.writes.push(format!("PutObject(if-match) {key}"));
        Ok(SwapOutcome::Swapped(version))
    }

    async fn list(
        &self,
        via: &str,
        prefix: &ObjectUrl,
        delimited: bool,
    ) -> Result<Listing, CloudError> {
        self.tick("s3:ListObjectsV2", via, "*").await?;
        let s = self.state();
        let base = ObjectUrl {
            key: String::new(),
            ..prefix.clone()
        }
        .to_string();
        let mut out = Listing::default();
        for url in s.objects.keys() {
            let Some(key) = url.strip_prefix(&base).and_then(|k| k.strip_prefix('/')) else {
                continue;
            };
            let Some(rest) = key.strip_prefix(prefix.key.as_str()) else {
                continue;
            };
            match rest.find('/').filter(|_| delimited) {
                Some(i) => {
                    let p = format!("{}{}", prefix.key, &rest[..=i]);
                    if out.prefixes.last() != Some(&p) {
                        out.prefixes.push(p);
                    }
                }
                None => out.keys.push(key.to_string()),
            }
        }
        Ok(out)
    }

    async fn delete(&self, via: &str, url: &ObjectUrl) -> Result<(), CloudError> {
        self.tick("s3:DeleteObject", via, &url.key).await?;
        let mut s = self.state();
        let key = url.to_string();
        s.objects.remove(&key);
        s.object_versions.remove(&key);
        s.object_modified.remove(&key);
        s.writes.push(format!("DeleteObject {key}"));
        Ok(())
    }

    async fn get(&self, via: &str, url: &ObjectUrl) -> Result<Option<Bytes>, CloudError> {
        self.tick("s3:GetObject", via, &url.key).await?;
        let s = self.state();
        s.reach("s3", "GetObject", &url.to_string(), via)?;
        Ok(s.objects.get(&url.to_string()).cloned())
    }

    async fn bucket_state(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketState, CloudError> {
        self.tick("s3:GetBucketVersioning", via, &bucket.bucket)
            .await?;
        let key = ObjectUrl {
            key: String::new(),
            ..bucket.clone()
        }
        .to_string();
        let s = self.state();
        Ok(match s.bucket_states.get(&key) {
            Some(b) => b.clone(),
            None => BucketState {
                exists: s.buckets.contains(&key),
                ..BucketState::default()
            },
        })
    }
}

#[async_trait]
impl Probe for FakeCloud {
    async fn get(
        &self,
        region: &str,
        url: &str,
        _timeout: Duration,
    ) -> Result<ProbeAnswer, CloudError> {
        self.tick("http:GET", region, url).await?;
        match self.state().probes.get(url).copied().flatten() {
            Some(status) => Ok(ProbeAnswer {
                status,
                elapsed_ms: 0,
                body_bytes: 0,
            }),
            None => Err(CloudError::new(
                "http",
                "GET",
                url,
                region,
                ErrorKind::Connection,
                "connection refused",
            )),
        }
    }
}

#[async_trait]
impl Resolver for FakeCloud {
    async fn resolve(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.tick("dns:query", "global", name).await?;
        let s = self.state();
        let Some(z) = s.zones.get(&fqdn(zone)) else {
            return Ok(Vec::new());
        };
        let name = fqdn(&name.to_ascii_lowercase());
        Ok(s.healthy_answer(&z.id, &name, rtype, 0)
            .unwrap_or_else(|| s.any_answer(&z.id, &name, rtype, 0)))
    }

    fn servers(&self) -> String {
        "the fake cloud's DNS".into()
    }
}

#[async_trait]
impl Identity for FakeCloud {
    async fn caller(&self, region: &str) -> Result<CallerIdentity, CloudError> {
        self.tick("sts:GetCallerIdentity", region, "caller").await?;
        Ok(CallerIdentity {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/fake-operator".into(),
            user_id: "AIDAFAKE".into(),
        })
    }
}

#[async_trait]
impl crate::cloud::Publisher for FakeCloud {
    async fn sns(
        &self,
        region: &str,
        topic: &str,
        _: &str,
        message: &str,
    ) -> Result<String, CloudError> {
        self.tick("sns:Publish", region, topic).await?;
        let mut s = self.state();
        s.published
            .push((topic.into(), region.into(), message.into()));
        Ok(format!("fake-msg-{}", s.published.len()))
    }

    async fn eventbridge(
        &self,
        region: &str,
        bus: &str,
        _: &str,
        detail: &str,
    ) -> Result<String, CloudError> {
        self.tick("events:PutEvents", region, bus).await?;
        let mut s = self.state();
        s.published.push((bus.into(), region.into(), detail.into()));
        Ok(format!("fake-evt-{}", s.published.len()))
    }
}

/// The reference world's short name of a region (`use1`).
#[cfg(test)]
fn region_tag(region: &str) -> &'static str {
    match region {
        "us-west-2" => "usw2",
        "us-east-1" => "use1",
        _ => "euw1",
    }
}

/// The reference world of `localstack/seed` and `plans/`, in memory
/// (payments and ledger served from us-west-2 with standbys in us-east-1,
/// and eu-west-1 for payments; checkout served from us-east-1 with
/// standbys in us-west-2 and eu-west-1): the one world the unit tests
/// of the engine, the fault loop and status share. `lags` are the ReplicaLag
/// datapoints of the payments and the ledger replica (and of orders'
/// Aurora secondaries).
#[cfg(test)]
pub(crate) fn reference_world(lags: (&[f64], &[f64])) -> FakeCloud {
    let cname = |name: &str, value: &str, set: Option<(&str, i64)>| DnsRecord {
        name: name.into(),
        rtype: "CNAME".into(),
        ttl: Some(60),
        values: vec![value.into()],
        set_identifier: set.map(|(s, _)| s.into()),
        weight: set.map(|(_, w)| w),
        routing: None,
    };
    let f = FakeCloud::new();
    f.add_zone("example.com.");
    for (db, lag) in [("payments-db", lags.0), ("ledger-db", lags.1)] {
        f.add_primary("us-west-2", db);
        f.add_replica("us-east-1", &format!("{db}-use1"), ("us-west-2", db));
        f.set_lag("us-east-1", &format!("{db}-use1"), lag);
    }
    // The third region: a payments replica at standby.
    f.add_replica(
        "eu-west-1",
        "payments-db-euw1",
        ("us-west-2", "payments-db"),
    );
    f.set_lag("eu-west-1", "payments-db-euw1", lags.0);
    // checkout: home us-east-1, standbys us-west-2 then eu-west-1. Its
    // data-plane setup (controls, health checks, failover records) is made
    // by the tests that need it, through `dns prepare`.
    f.add_primary("us-east-1", "checkout-db");
    for (region, id) in [
        ("us-west-2", "checkout-db-usw2"),
        ("eu-west-1", "checkout-db-euw1"),
    ] {
        f.add_replica(region, id, ("us-east-1", "checkout-db"));
        f.set_lag(region, id, &[2.0]);
    }
    for (region, name, min, desired, max) in [
        ("us-west-2", "payments-api-usw2", 2, 4, 8),
        ("us-east-1", "payments-api-use1", 0, 0, 8),
        ("eu-west-1", "payments-api-euw1", 0, 0, 8),
        ("us-west-2", "ledger-workers-usw2", 1, 2, 4),
        ("us-east-1", "ledger-workers-use1", 0, 0, 4),
        ("us-east-1", "checkout-web-use1", 2, 3, 6),
        ("us-west-2", "checkout-web-usw2", 0, 1, 6),
        ("eu-west-1", "checkout-web-euw1", 0, 1, 6),
    ] {
        f.add_group(region, name, Capacity { min, desired, max });
    }
    // orders: an Aurora global database written in us-west-2, an EKS
    // node group and an ECS service per region.
    f.add_global(
        "orders-global",
        &[
            ("us-west-2", "orders-usw2"),
            ("us-east-1", "orders-use1"),
            ("eu-west-1", "orders-euw1"),
        ],
    );
    for region in ["us-east-1", "eu-west-1"] {
        let id = format!("orders-{}", region_tag(region));
        f.set_lag(region, &id, lags.0);
    }
    for (region, min, desired, max) in [
        ("us-west-2", 2, 3, 6),
        ("us-east-1", 0, 0, 6),
        ("eu-west-1", 0, 0, 6),
    ] {
        let tag = region_tag(region);
        f.add_node_group(
            region,
            &format!("orders-eks-{tag}"),
            &format!("orders-nodes-{tag}"),
            Capacity { min, desired, max },
        );
        // The orders workers' ECS service: 4 tasks where it serves, 1 on
        // standby.
        let tasks = if desired > 0 { 4 } else { 1 };
        f.add_ecs_service(
            region,
            &format!("orders-ecs-{tag}"),
            "orders-workers",
            tasks,
        );
    }
    f.put_record(
        "example.com.",
        cname(
            "orders-db.example.com.",
            "orders-usw2.cluster-fake.us-west-2.rds.amazonaws.com",
            None,
        ),
    );
    f.put_record(
        "example.com.",
        cname("api.example.com.", "api-usw2.example.com.", None),
    );
    f.put_record(
        "example.com.",
        cname(
            "payments-db.example.com.",
            "payments-db.fake.us-west-2.rds.amazonaws.com",
            None,
        ),
    );
    for (set, w, v) in [
        ("us-west-2", 100, "ledger-usw2.example.com."),
        ("us-east-1", 0, "ledger-use1.example.com."),
    ] {
        f.put_record(
            "example.com.",
            cname("ledger.example.com.", v, Some((set, w))),
        );
    }
    f
}

/// How many reads of a fake group's instances a new instance takes to run.
const MIG_READS_TO_RUN: u32 = 2;

#[async_trait]
impl InstanceGroups for FakeCloud {
    async fn describe_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigGroup>, CloudError> {
        const OP: &str = "regionInstanceGroupManagers.get";
        self.tick("compute:regionInstanceGroupManagers.get", region, name)
            .await?;
        let s = self.state();
        s.reach("compute", OP, name, region)?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        Ok(s.migs.get(&key).map(|g| g.view(region, name)))
    }

    async fn mig_instances(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<MigInstance>, CloudError> {
        const OP: &str = "regionInstanceGroupManagers.listManagedInstances";
        self.tick(
            "compute:regionInstanceGroupManagers.listManagedInstances",
            region,
            name,
        )
        .await?;
        let mut s = self.state();
        s.reach("compute", OP, name, region)?;
        let key = (project.to_string(), region.to_string(), name.to_string());
        let Some(g) = s.migs.get_mut(&key) else {
            return Err(CloudError::new(
                "compute",
                OP,
                name,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/instanceGroupManagers/{name}' was not found"
                ),
            ));
        };
        let out = (g.instances.iter())
            .map(|(n, left, errors)| {
                let (action, status) = match (errors.is_empty(), *left) {
                    (false, _) => ("CREATING", None),
                    (true, 0) => ("NONE", Some("RUNNING".to_string())),
                    (true, 1) => ("VERIFYING", Some("RUNNING".to_string())),
                    (true, _) => ("CREATING", None),
                };
                MigInstance {
                    name: n.clone(),
                    action: action.into(),
                    status,
                    errors: errors.clone(),
                }
            })
            .collect();
        for (_, left, errors) in g.instances.iter_mut() {
            if errors.is_empty() {
                *left = left.saturating_sub(1);
            }
        }
        Ok(out)
    }

    async fn resize_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
        size: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        self.tick("compute:regionInstanceGroupManagers.resize", region, name)
            .await?;
        self.mig_start(
            (project, region, name),
            "regionInstanceGroupManagers.resize",
            MigEffect::Resize(size),
            request_id,
        )
    }

    async fn mig_autoscaler(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigAutoscaler>, CloudError> {
        self.tick("compute:regionAutoscalers.get", region, name)
            .await?;
        let s = self.state();
        s.reach("compute", "regionAutoscalers.get", name, region)?;
        Ok((s.migs.iter())
            .filter(|((p, r, _), _)| p == project && r == region)
            .find_map(|(_, g)| g.autoscaler.clone().filter(|a| a.0 == name))
            .map(|(name, min, max)| MigAutoscaler { name, min, max }))
    }

    async fn set_autoscaler_min(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        self.tick("compute:regionAutoscalers.patch", region, name)
            .await?;
        let group = {
            let s = self.state();
            (s.migs.iter())
                .find(|((p, r, _), g)| {
                    p == project
                        && r == region
                        && g.autoscaler.as_ref().is_some_and(|a| a.0 == name)
                })
                .map(|((_, _, g), _)| g.clone())
        };
        let Some(group) = group else {
            return Err(CloudError::new(
                "compute",
                "regionAutoscalers.patch",
                name,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/autoscalers/{name}' was not found"
                ),
            ));
        };
        self.mig_start(
            (project, region, &group),
            "regionAutoscalers.patch",
            MigEffect::AutoscalerMin(min),
            request_id,
        )
    }

    async fn mig_operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<MigOperation, CloudError> {
        const OP: &str = "regionOperations.get";
        self.tick("compute:regionOperations.get", region, operation)
            .await?;
        let mut s = self.state();
        s.reach("compute", OP, operation, region)?;
        let key = (
            project.to_string(),
            region.to_string(),
            operation.to_string(),
        );
        let Some((op, effect)) = s.mig_ops.get(&key).cloned() else {
            return Err(CloudError::new(
                "compute",
                OP,
                operation,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/operations/{operation}' was not found"
                ),
            ));
        };
        if op.done {
            return Ok(op);
        }
        // The group the operation acts on is named by the operation's kind
        // and the key it was stored under (`op.kind` carries it).
        let group = op.kind.rsplit(' ').next().unwrap_or_default().to_string();
        if let Some(g) = s
            .migs
            .get_mut(&(project.to_string(), region.to_string(), group))
        {
            match effect {
                MigEffect::Resize(n) => g.set_target(n, MIG_READS_TO_RUN),
                MigEffect::AutoscalerMin(min) => {
                    if let Some(a) = g.autoscaler.as_mut() {
                        a.1 = min;
                        let size = g.target_size.max(min).min(a.2);
                        g.set_target(size, MIG_READS_TO_RUN);
                    }
                }
            }
        }
        let done = MigOperation { done: true, ..op };
        s.mig_ops.insert(key, (done.clone(), effect));
        Ok(done)
    }
}

impl FakeCloud {
    /// Starts a Compute operation on group `(project, region, group)`:
    /// recorded as a write, not done; a request id seen before answers the
    /// operation it made.
    // Its callers return `CloudError` too.
    #[allow(clippy::result_large_err)]
    fn mig_start(
        &self,
        (project, region, group): (&str, &str, &str),
        call: &'static str,
        effect: MigEffect,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        let mut s = self.state();
        s.reach("compute", call, group, region)?;
        if let Some(key) = s.mig_requests.get(request_id).cloned()
            && let Some((op, _)) = s.mig_ops.get(&key)
        {
            return Ok(op.clone());
        }
        let key = (project.to_string(), region.to_string(), group.to_string());
        if !s.migs.contains_key(&key) {
            return Err(CloudError::new(
                "compute",
                call,
                group,
                region,
                ErrorKind::NotFound,
                format!(
                    "The resource 'projects/{project}/regions/{region}/instanceGroupManagers/{group}' was not found"
                ),
            ));
        }
        s.writes.push(format!("{call} {group}"));
        let n = s.mig_ops.len() + 1;
        let op = MigOperation {
            name: format!("operation-{n:04}"),
            kind: format!("compute.{call} {group}"),
            done: false,
            error: None,
        };
        let op_key = (project.to_string(), region.to_string(), op.name.clone());
        s.mig_ops.insert(op_key.clone(), (op.clone(), effect));
        s.mig_requests.insert(request_id.to_string(), op_key);
        Ok(op)
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
        let tag = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        c.compute
            .tag_group("us-east-1", "api", &tag(&[("a", "1"), ("b", "2")]))
            .await
            .unwrap();
        c.compute
            .tag_group("us-east-1", "api", &tag(&[("a", "3")]))
            .await
            .unwrap();
        let g = c
            .compute
            .describe_group("us-east-1", "api")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(g.tags, tag(&[("a", "3"), ("b", "2")]));
        assert_eq!(g.capacity, cap, "tags leave the capacity alone");
        c.compute
            .untag_group("us-east-1", "api", &["a".into(), "missing".into()])
            .await
            .unwrap();
        let g = c
            .compute
            .describe_group("us-east-1", "api")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(g.tags, tag(&[("b", "2")]));
        let err = c
            .compute
            .tag_group("us-west-2", "api", &tag(&[("a", "1")]))
            .await
            .unwrap_err();
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

    /// A floor patch is reconciled without a revision, then in effect; a
    /// labels patch carries the etag read (a stale one is refused) and
    /// starts no rollout; an armed failure fails the change, naming it.
    #[tokio::test]
    async fn a_run_floor_patch_is_reconciled_without_a_revision_or_fails_naming_why() {
        let fake = FakeCloud::new();
        fake.add_run_service("p", "us-east4", "api", 0);
        let c = fake.clouds();
        let r = &c.cloud_run;
        let read = || async {
            r.describe_run("us-east4", "p", "api")
                .await
                .unwrap()
                .unwrap()
        };
        r.set_run_floor("us-east4", "p", "api", 3).await.unwrap();
        let mid = read().await;
        assert!(mid.reconciling && !mid.serves() && mid.floor == 3);
        let svc = read().await;
        assert!(
            svc.serves() && svc.latest_ready == "api-00001-aaa",
            "{svc:?}"
        );

        let marks = BTreeMap::from([("drctl-drill-restore".to_string(), "0".to_string())]);
        let stale = r.set_run_labels("us-east4", "p", "api", &marks, "e1").await;
        assert_eq!(stale.unwrap_err().code.as_deref(), Some("ABORTED"));
        r.set_run_labels("us-east4", "p", "api", &marks, &svc.etag)
            .await
            .unwrap();
        let marked = read().await;
        assert!(marked.serves() && marked.labels == marks, "{marked:?}");

        fake.fail_run("p", "us-east4", "api", "Quota exceeded for instances.");
        r.set_run_floor("us-east4", "p", "api", 5).await.unwrap();
        read().await;
        let failed = read().await;
        assert!(failed.failed(), "{failed:?}");
        assert!(failed.ready_message.unwrap().contains("Quota exceeded"));
    }
}
