//! A metering wrapper: records every cloud call a command makes.
//!
//! Like the dry-run, cache and retry wrappers of a backup tool's backends,
//! metering is cross-cutting behaviour kept out of the adapters: [`Metered`]
//! wraps a whole [`Clouds`] bundle and forwards each call unchanged, noting
//! its label (`service:Operation`, the API operation the adapter method
//! stands for), when it started and ended, and whether it succeeded.
//!
//! The same decorator injects faults ([`Metered::wrap_with_faults`]): the
//! Nth call of an operation fails, either before it reaches the cloud or
//! after it took effect with its answer lost. Saga engines make fault
//! injection part of their API so that tests can loop it over every step;
//! this is drctl's version, and it needs no test-only branch in an adapter.
//!
//! The log can also be a file instead of memory ([`MeterLog::appending_to`]):
//! `call_log` in `drctl.toml` (`DRCTL_CALL_LOG`) has every command append
//! one line per cloud call to it, which is how an operator (and
//! `tests/it/iam.rs`) learns which API operations a command needs, to
//! compare them with an IAM policy.
//!
//! One recorded call is one adapter call: it includes the adapter's own
//! retries, and a few adapter methods make more than one HTTP request (for
//! example a paginated listing). The counts therefore measure what the engine
//! and the steps *ask for*, which is what their overhead is made of.
//!
//! ```no_run
//! # async fn demo(clouds: drctl::cloud::Clouds) {
//! use drctl::cloud::metered::Metered;
//! let (clouds, log) = Metered::wrap(clouds);
//! // ... run something with `clouds` ...
//! for (label, n) in log.counts() {
//!     println!("{label}: {n} calls");
//! }
//! println!("time inside calls: {:?}", log.total_time());
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::*;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `service:Operation`, e.g. `rds:PromoteReadReplica`.
    pub label: &'static str,
    /// The region the call was made in (`global` for Route 53; for object
    /// storage, the region the bucket was reached through).
    pub region: String,
    /// When the call was made.
    pub start: Instant,
    /// When it returned.
    pub end: Instant,
    /// Whether it returned `Ok`.
    pub ok: bool,
    /// What the caller was doing, as told by the context hook (see
    /// [`Metered::wrap_with_context`]); `None` without a hook or outside any
    /// known context.
    pub context: Option<String>,
}

impl Call {
    /// Time spent inside the call.
    pub fn duration(&self) -> Duration {
        self.end.saturating_duration_since(self.start)
    }
}

/// Tells, at the moment of a call, what the caller is doing (for example
/// the id of the engine step whose tracing span is current).
pub type ContextHook = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// The shared record of calls; cheap to clone.
#[derive(Clone, Default)]
pub struct MeterLog {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Where each call is appended instead ([`MeterLog::appending_to`]).
    file: Option<Arc<Mutex<std::fs::File>>>,
}

impl std::fmt::Debug for MeterLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterLog")
            .field("calls", &self.lock().len())
            .finish()
    }
}

impl MeterLog {
    fn lock(&self) -> MutexGuard<'_, Vec<Call>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A log that appends each call to the file at `path` (created when
    /// missing) as one line, `service:Operation<TAB>region<TAB>ok|failed`,
    /// and keeps nothing in memory (a long `drctl watch` makes calls without
    /// end). Each line is one write to a file opened for appending, so
    /// several processes may share the file.
    pub fn appending_to(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            calls: Arc::default(),
            file: Some(Arc::new(Mutex::new(file))),
        })
    }

    fn push(&self, call: Call) {
        let Some(file) = &self.file else {
            self.lock().push(call);
            return;
        };
        let line = format!(
            "{}\t{}\t{}\n",
            call.label,
            call.region,
            if call.ok { "ok" } else { "failed" }
        );
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = std::io::Write::write_all(&mut *f, line.as_bytes()) {
            tracing::warn!("cannot append to the call log: {e}");
        }
    }

    /// Every call so far, in the order they returned.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().clone()
    }

    /// How many calls so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no call was made yet.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Number of calls per label.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for c in self.lock().iter() {
            *out.entry(c.label).or_insert(0) += 1;
        }
        out
    }

    /// Number of failed calls.
    pub fn errors(&self) -> usize {
        self.lock().iter().filter(|c| !c.ok).count()
    }

    /// Sum of the time spent inside calls (concurrent calls add up, so this
    /// can exceed the wall time).
    pub fn total_time(&self) -> Duration {
        self.lock().iter().map(Call::duration).sum()
    }

    /// Forgets every call recorded so far.
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// When an injected fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The call fails without reaching the cloud.
    Refused,
    /// The call reaches the cloud and takes effect; its answer is lost, and
    /// the caller gets the error.
    AnswerLost,
}

/// A fault to inject: the `nth` call (from 1) labelled `label` fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// `service:Operation`, as in [`Call::label`].
    pub label: &'static str,
    /// Which call of that label, from 1.
    pub nth: usize,
    /// Before or after the call takes effect.
    pub effect: Effect,
    /// How the call fails.
    pub kind: ErrorKind,
}

/// A call that waited for its API's budget, or was throttled anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// `service:Operation`.
    pub label: &'static str,
    /// The region it was made in.
    pub region: String,
    /// The step it was made for ([`super::budget::Scope`]), if any.
    pub step: Option<String>,
    /// How long it waited.
    pub waited: Duration,
    /// Why: the bucket and its limit, or the API's throttling answer.
    pub cause: String,
    /// The API throttled it (it was sent again after the wait).
    pub throttled: bool,
}

/// Throttling answers in a row before a call gives up: each one halves
/// the bucket and waits, so this many means minutes of waiting; the
/// step's own time limit usually ends it first.
const MAX_THROTTLES: usize = 20;

/// The metering wrapper around a [`Clouds`] bundle.
pub struct Metered {
    inner: Clouds,
    log: MeterLog,
    context: Option<ContextHook>,
    faults: Vec<Injection>,
    seen: Mutex<BTreeMap<&'static str, usize>>,
    budgets: Option<super::budget::Budgets>,
    waits: Arc<Mutex<WaitsByStep>>,
}

impl Metered {
    /// Wraps `clouds`: the returned bundle forwards every call to `clouds`
    /// and records it in the returned log.
    pub fn wrap(clouds: Clouds) -> (Clouds, MeterLog) {
        Self::build(clouds, None, Vec::new())
    }

    /// Like [`Metered::wrap`], recording into `log` (a file's:
    /// [`MeterLog::appending_to`]).
    pub fn wrap_into(clouds: Clouds, log: MeterLog) -> Clouds {
        Self::bundle(Arc::new(Self {
            inner: clouds,
            log,
            context: None,
            faults: Vec::new(),
            seen: Mutex::new(BTreeMap::new()),
            budgets: None,
            waits: Arc::default(),
        }))
    }

    /// Like [`Metered::wrap`], and asks `hook` at each call what the caller
    /// is doing; the answer is kept in [`Call::context`].
    pub fn wrap_with_context(clouds: Clouds, hook: ContextHook) -> (Clouds, MeterLog) {
        Self::build(clouds, Some(hook), Vec::new())
    }

    /// Like [`Metered::wrap`], and fails the calls `faults` name (a failed
    /// call is recorded with `ok: false`, like any other).
    pub fn wrap_with_faults(clouds: Clouds, faults: Vec<Injection>) -> (Clouds, MeterLog) {
        Self::build(clouds, None, faults)
    }

    /// Like [`Metered::wrap`], and holds every call to `budgets` (AWS's
    /// published limits, on our side of the wire): a call waits for its
    /// tokens, most critical tier first ([`super::budget::Scope`]), and a
    /// throttling answer shrinks the bucket and is sent again after the
    /// wait instead of failing. The waits are kept for the journal
    /// ([`Waits::take`]).
    pub fn wrap_with_budgets(
        clouds: Clouds,
        budgets: super::budget::Budgets,
    ) -> (Clouds, MeterLog, Waits) {
        let log = MeterLog::default();
        let waits = Waits::default();
        let me = Arc::new(Self {
            inner: clouds,
            log: log.clone(),
            context: None,
            faults: Vec::new(),
            seen: Mutex::new(BTreeMap::new()),
            budgets: Some(budgets),
            waits: waits.0.clone(),
        });
        (Self::bundle(me), log, waits)
    }

    fn bundle(me: Arc<Self>) -> Clouds {
        Clouds {
            dns: me.clone(),
            database: me.clone(),
            capacity: (me.inner.capacity).metered(|w| w.and(me.clone())),
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

    fn build(
        clouds: Clouds,
        context: Option<ContextHook>,
        faults: Vec<Injection>,
    ) -> (Clouds, MeterLog) {
        let log = MeterLog::default();
        let me = Arc::new(Self {
            inner: clouds,
            log: log.clone(),
            context,
            faults,
            seen: Mutex::new(BTreeMap::new()),
            budgets: None,
            waits: Arc::default(),
        });
        (Self::bundle(me), log)
    }

    async fn meter<T, F, Fut>(
        &self,
        label: &'static str,
        region: &str,
        mut call: F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let Some(budgets) = &self.budgets else {
            return self.once(label, region, &mut call).await;
        };
        let (service, api) = label.split_once(':').unwrap_or((label, ""));
        let keys = budgets.keys("", region, service, api);
        let scope = super::budget::Scope::current();
        let mut throttles = 0;
        loop {
            let grant = budgets.acquire(&keys, scope.rank, 1.0).await;
            if let Some(cause) = grant.cause.filter(|_| !grant.waited.is_zero()) {
                self.wait(label, region, &scope, grant.waited, cause, false);
            }
            let result = self.once(label, region, &mut call).await;
            match &result {
                // A zone still busy with an earlier change is no sign of
                // the rate: its caller waits for the zone (the run's
                // Route 53 queue), the bucket stays as it is.
                Err(e)
                    if e.kind == ErrorKind::Throttled
                        && e.code.as_deref() != Some("PriorRequestNotComplete")
                        && throttles < MAX_THROTTLES =>
                {
                    throttles += 1;
                    budgets.throttled(&keys);
                    let cause = format!(
                        "throttled by the API ({}): its bucket is halved",
                        e.summary()
                    );
                    self.wait(label, region, &scope, Duration::ZERO, cause, true);
                }
                _ => return result,
            }
        }
    }

    fn wait(
        &self,
        label: &'static str,
        region: &str,
        scope: &super::budget::Scope,
        waited: Duration,
        cause: String,
        throttled: bool,
    ) {
        if let Ok(mut w) = self.waits.lock() {
            w.entry(scope.step.clone()).or_default().push(Wait {
                label,
                region: region.to_string(),
                step: scope.step.clone(),
                waited,
                cause,
                throttled,
            });
        }
    }

    /// One call, metered, with its injected fault if any.
    async fn once<T, F, Fut>(
        &self,
        label: &'static str,
        region: &str,
        call: &mut F,
    ) -> Result<T, CloudError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let context = self.context.as_ref().and_then(|h| h());
        let fault = self.fault_for(label);
        let start = Instant::now();
        let result = match fault {
            Some(f) if f.effect == Effect::Refused => Err(injected(f, region)),
            Some(f) => match call().await {
                Ok(_) => Err(injected(f, region)),
                Err(e) => Err(e),
            },
            None => call().await,
        };
        let end = Instant::now();
        self.log.push(Call {
            label,
            region: region.to_string(),
            start,
            end,
            ok: result.is_ok(),
            context,
        });
        result
    }
}

/// The waits of a budgeted bundle, not yet journaled.
#[derive(Debug, Clone, Default)]
pub struct Waits(Arc<Mutex<WaitsByStep>>);

/// Waits by the step that made them (`None`: outside any step), so that a
/// step's end takes its own without going through everyone's.
type WaitsByStep = BTreeMap<Option<String>, Vec<Wait>>;

impl Waits {
    /// Takes the waits made for `step` (every wait with `None`).
    pub fn take(&self, step: Option<&str>) -> Vec<Wait> {
        let Ok(mut w) = self.0.lock() else {
            return Vec::new();
        };
        match step {
            Some(step) => w.remove(&Some(step.to_string())).unwrap_or_default(),
            None => std::mem::take(&mut *w).into_values().flatten().collect(),
        }
    }
}

impl Metered {
    /// The injection for this call of `label`, if any (counts the call).
    fn fault_for(&self, label: &'static str) -> Option<&Injection> {
        if self.faults.is_empty() {
            return None;
        }
        let n = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let n = seen.entry(label).or_insert(0);
            *n += 1;
            *n
        };
        self.faults.iter().find(|f| f.label == label && f.nth == n)
    }
}

/// The error an injection makes.
fn injected(f: &Injection, region: &str) -> CloudError {
    let label: &'static str = f.label;
    let (service, operation) = label.split_once(':').unwrap_or(("-", label));
    CloudError::new(
        service,
        operation,
        format!("call {} of {}", f.nth, f.label),
        region,
        f.kind,
        format!("injected fault ({:?})", f.effect),
    )
}

fn object_label(url: &ObjectUrl, s3: &'static str, gcs: &'static str) -> &'static str {
    match url.scheme {
        ObjectScheme::S3 => s3,
        ObjectScheme::Gcs => gcs,
    }
}

/// Declares the metered form of every call of one narrow trait, one line
/// a call: `name(&self, args) -> T = (label, region);`. Each becomes a
/// method that holds the call's budget, records it and injects its fault
/// ([`Metered::meter`]) around the same method of the wrapped bundle's
/// field; `label` and `region` may use the arguments (an object's label
/// follows its URL's scheme). What is not a call (`Resolver::servers`)
/// goes in `@extra { .. }` as written.
///
/// # Why a declaration
///
/// This file was a hand-written copy of every adapter method (976 lines
/// that only passed calls on), and grew with every call added: a line
/// here is all a new call costs the meter.
macro_rules! metered {
    (
        $trait:path => $field:ident;
        $( $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty = ($label:expr, $region:expr); )*
        $( @extra { $($extra:item)* } )?
    ) => {
        #[async_trait]
        impl $trait for Metered {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> Result<$ret, CloudError> {
                    // Each argument is cloned into every try (a reference
                    // stays a reference): the meter may call again.
                    self.meter($label, $region, || {
                        self.inner.$field.$name($(Clone::clone(&$arg)),*)
                    })
                    .await
                }
            )*
            $( $($extra)* )?
        }
    };
}

metered! {
    Dns => dns;
    find_zone(&self, zone_name: &str) -> Option<HostedZone> = ("route53:ListHostedZonesByName", "global");
    zone_features(&self, zone: &HostedZone) -> ZoneFeatures = ("route53:GetHostedZone", "global");
    protections(&self, zone: &HostedZone) -> Vec<Protection> = ("route53:ListResourceRecordSetProtections", "global");
    read_records(&self, zone: &HostedZone, name: &str, rtype: &str) -> Vec<DnsRecord> = ("route53:ListResourceRecordSets", "global");
    read_many(&self, zone: &HostedZone, wanted: &[(String, String)]) -> Vec<DnsRecord> = ("route53:ListResourceRecordSets", "global");
    apply_changes(&self, zone: &HostedZone, changes: &[DnsChange], comment: &str) -> ChangeInfo = ("route53:ChangeResourceRecordSets", "global");
    change_status(&self, change_id: &str) -> ChangeInfo = ("route53:GetChange", "global");
    list_health_checks(&self) -> Vec<HealthCheck> = ("route53:ListHealthChecks", "global");
    create_health_check(&self, want: &HealthCheck) -> HealthCheck = ("route53:CreateHealthCheck", "global");
    delete_health_check(&self, id: &str) -> () = ("route53:DeleteHealthCheck", "global");
    list_records(&self, zone: &HostedZone, suffix: &str) -> Vec<DnsRecord> = ("route53:ListResourceRecordSets", "global");
}

metered! {
    Database => database;
    describe_instance(&self, region: &str, id: &str) -> Option<DbInstance> = ("rds:DescribeDBInstances", region);
    promote_replica(&self, region: &str, id: &str) -> () = ("rds:PromoteReadReplica", region);
    promote_known(&self, region: &str, known: &DbInstance) -> DbInstance = ("rds:PromoteReadReplica", region);
    create_replica(&self, region: &str, id: &str, source_arn: &str, placement: &ReplicaPlacement) -> () = ("rds:CreateDBInstanceReadReplica", region);
    rename_instance(&self, region: &str, id: &str, new_id: &str) -> () = ("rds:ModifyDBInstance", region);
    restore_to_point_in_time(&self, region: &str, source_id: &str, target_id: &str, point: RestorePoint) -> () = ("rds:RestoreDBInstanceToPointInTime", region);
    delete_instance(&self, region: &str, id: &str) -> () = ("rds:DeleteDBInstance", region);
    replicated_backups(&self, region: &str, source: &str) -> Vec<Restorable> = ("rds:DescribeDBInstanceAutomatedBackups", region);
    snapshots_of(&self, region: &str, source: &str) -> Vec<Restorable> = ("rds:DescribeDBSnapshots", region);
    restore_backups(&self, region: &str, backups_arn: &str, target_id: &str, point: RestorePoint, placement: &ReplicaPlacement) -> () = ("rds:RestoreDBInstanceToPointInTime", region);
    restore_snapshot(&self, region: &str, snapshot: &str, target_id: &str, placement: &ReplicaPlacement) -> () = ("rds:RestoreDBInstanceFromDBSnapshot", region);
    lacking(&self, region: &str, need: &RestoreNeed) -> Option<String> = (need.call(), region);
    replicate_backups(&self, region: &str, source_arn: &str, retention_days: i32, kms_key_id: Option<&str>) -> () = ("rds:StartDBInstanceAutomatedBackupsReplication", region);
    stop_replicating_backups(&self, region: &str, source_arn: &str) -> () = ("rds:StopDBInstanceAutomatedBackupsReplication", region);
    list_instances(&self, region: &str) -> Vec<DbInstance> = ("rds:DescribeDBInstances", region);
    pending_maintenance(&self, region: &str, of: MaintenanceOf, id: &str) -> Vec<PendingMaintenance> = ("rds:DescribePendingMaintenanceActions", region);
}

metered! {
    CloudDns => cloud_dns;
    describe_zone(&self, project: &str, zone: &str) -> Option<CloudDnsZone> = ("clouddns:managedZones.get", "global");
    read_record_set(&self, project: &str, zone: &str, name: &str, rtype: &str) -> Option<CloudRecordSet> = ("clouddns:resourceRecordSets.list", "global");
    list_record_sets(&self, project: &str, zone: &str) -> Vec<CloudRecordSet> = ("clouddns:resourceRecordSets.list", "global");
    delete_record_set(&self, project: &str, zone: &str, deletion: &CloudRecordSet) -> CloudDnsChange = ("clouddns:changes.create", "global");
    swap_record_sets(&self, project: &str, zone: &str, swaps: &[(Option<CloudRecordSet>, CloudRecordSet)]) -> CloudDnsChange = ("clouddns:changes.create", "global");
    dns_change(&self, project: &str, zone: &str, id: &str) -> CloudDnsChange = ("clouddns:changes.get", "global");
    pending_dns_changes(&self, project: &str, zone: &str) -> Vec<CloudDnsChange> = ("clouddns:changes.list", "global");
}

metered! {
    CloudSql => cloud_sql;
    describe_sql(&self, region: &str, project: &str, name: &str) -> Option<SqlInstance> = ("sqladmin:instances.get", region);
    list_sql(&self, project: &str) -> SqlList = ("sqladmin:instances.list", "global");
    promote_sql(&self, region: &str, project: &str, name: &str, failover: bool) -> SqlOperation = ("sqladmin:instances.promoteReplica", region);
    switchover_sql(&self, region: &str, project: &str, name: &str) -> SqlOperation = ("sqladmin:instances.switchover", region);
    clone_sql(&self, region: &str, project: &str, source: &str, target: &str, point_in_time: Option<chrono::DateTime<chrono::Utc>>) -> SqlOperation = ("sqladmin:instances.clone", region);
    delete_sql(&self, region: &str, project: &str, name: &str) -> SqlOperation = ("sqladmin:instances.delete", region);
    recovery_window(&self, region: &str, project: &str, name: &str) -> RecoveryWindow = ("sqladmin:instances.getLatestRecoveryTime", region);
    operation(&self, region: &str, project: &str, operation: &str) -> SqlOperation = ("sqladmin:operations.get", region);
    operations(&self, region: &str, project: &str, name: &str) -> Vec<SqlOperation> = ("sqladmin:operations.list", region);
    sql_replica_lag(&self, region: &str, project: &str, name: &str, window: Duration) -> LagReading = ("monitoring:timeSeries.list", region);
    designate_dr_sql(&self, region: &str, project: &str, primary: &str, replica: &str) -> SqlOperation = ("sqladmin:instances.patch", region);
    sql_backups(&self, region: &str, project: &str, name: &str) -> Vec<Restorable> = ("sqladmin:backups.list", region);
    restore_sql_backup(&self, region: &str, project: &str, target: &str, backup: &str, settings: &ReplicaPlacement) -> SqlOperation = ("sqladmin:instances.restoreBackup", region);
    keep_sql_backups_in(&self, region: &str, project: &str, name: &str, location: &str) -> SqlOperation = ("sqladmin:instances.patch", region);
    backup_sql(&self, region: &str, project: &str, name: &str, location: &str) -> SqlOperation = ("sqladmin:backups.insertBackup", region);
}

metered! {
    GlobalDatabases => aurora;
    describe_global(&self, region: &str, id: &str) -> Option<GlobalCluster> = ("rds:DescribeGlobalClusters", region);
    describe_cluster(&self, region: &str, id: &str) -> Option<DbCluster> = ("rds:DescribeDBClusters", region);
    switchover_global(&self, region: &str, global: &str, target_arn: &str) -> () = ("rds:SwitchoverGlobalCluster", region);
    failover_global(&self, region: &str, global: &str, target_arn: &str) -> () = ("rds:FailoverGlobalCluster", region);
    detach_cluster(&self, region: &str, global: &str, cluster_arn: &str) -> () = ("rds:RemoveFromGlobalCluster", region);
    cluster_snapshots(&self, region: &str, cluster: &str) -> Vec<ClusterSnapshot> = ("rds:DescribeDBClusterSnapshots", region);
    cluster_copies(&self, region: &str, cluster: &str) -> Vec<Restorable> = ("rds:DescribeDBClusterSnapshots", region);
    snapshot_cluster(&self, region: &str, cluster: &str, snapshot: &str) -> () = ("rds:CreateDBClusterSnapshot", region);
    copy_cluster_snapshot(&self, region: &str, source_arn: &str, target: &str, kms_key_id: Option<&str>) -> () = ("rds:CopyDBClusterSnapshot", region);
    restore_cluster_snapshot(&self, region: &str, snapshot: &str, target: &str, engine: &str, placement: &ReplicaPlacement) -> () = ("rds:RestoreDBClusterFromSnapshot", region);
    clone_cluster(&self, region: &str, source: &str, target: &str, tags: &std::collections::BTreeMap<String, String>) -> () = ("rds:RestoreDBClusterToPointInTime", region);
    add_writer(&self, region: &str, cluster: &str, instance: &str, engine: &str, class: &str, tags: &std::collections::BTreeMap<String, String>) -> () = ("rds:CreateDBInstance", region);
    delete_cluster(&self, region: &str, id: &str) -> () = ("rds:DeleteDBCluster", region);
    list_clusters(&self, region: &str) -> Vec<DbCluster> = ("rds:DescribeDBClusters", region);
    delete_global(&self, region: &str, id: &str) -> () = ("rds:DeleteGlobalCluster", region);
    create_global(&self, region: &str, id: &str, source_arn: &str) -> () = ("rds:CreateGlobalCluster", region);
    create_secondary(&self, region: &str, id: &str, global: &str, engine: &str) -> () = ("rds:CreateDBCluster", region);
    rename_cluster(&self, region: &str, id: &str, new_id: &str) -> () = ("rds:ModifyDBCluster", region);
}

/// The meters an adapter on a role's port sends each of its API calls
/// through, innermost first: the port's adapter asks [`Wire::call`] for
/// every call it makes (an action may take several), so the
/// meter counts, budgets and faults each call as it does a service
/// trait's, and the adapter needs no decorator of its own.
#[derive(Clone, Default)]
pub struct Wire(Vec<Arc<Metered>>);

impl Wire {
    /// This wire inside `outer` as well.
    fn and(&self, outer: Arc<Metered>) -> Self {
        let mut meters = self.0.clone();
        meters.push(outer);
        Self(meters)
    }

    /// Makes one API call, labelled `label` (`ecs:UpdateService`) in
    /// `region`, through every meter: `call` may be sent again (a budget's
    /// throttling answer), so it makes the request afresh each time.
    pub async fn call<T, F, Fut>(
        &self,
        label: &'static str,
        region: &str,
        call: F,
    ) -> Result<T, CloudError>
    where
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, CloudError>> + Send,
        T: Send,
    {
        through(&self.0, label, region, &call).await
    }
}

/// `call` through `meters`, the outermost (the last wrapped) first.
fn through<'a, T, F, Fut>(
    meters: &'a [Arc<Metered>],
    label: &'static str,
    region: &'a str,
    call: &'a F,
) -> futures::future::BoxFuture<'a, Result<T, CloudError>>
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<T, CloudError>> + Send + 'a,
    T: Send + 'a,
{
    match meters.split_last() {
        None => Box::pin(call()),
        Some((outer, inner)) => {
            Box::pin(outer.meter(label, region, move || through(inner, label, region, call)))
        }
    }
}

metered! {
    Balancers => balancers;
    target_health(&self, region: &str, arn: &str) -> TargetCount = ("elasticloadbalancing:DescribeTargetHealth", region);
}

metered! {
    Metrics => metrics;
    replica_lag(&self, region: &str, db_id: &str, window: Duration) -> LagReading = ("cloudwatch:GetMetricData", region);
    cluster_lag(&self, region: &str, cluster: &str, window: Duration) -> LagReading = ("cloudwatch:GetMetricData", region);
    alarms_firing(&self, region: &str, names: &[String]) -> Vec<String> = ("cloudwatch:DescribeAlarms", region);
}

metered! {
    ObjectStore => objects;
    bucket_exists(&self, via: &str, bucket: &ObjectUrl) -> bool = (bucket.scheme.bucket_probe(), via);
    put(&self, via: &str, url: &ObjectUrl, body: Bytes, mode: PutMode) -> PutOutcome = (object_label(url, "s3:PutObject", "gcs:objects.insert"), via);
    put_retained(&self, via: &str, url: &ObjectUrl, body: Bytes, retention: Option<Retention>) -> Kept = (object_label(url, "s3:PutObject", "gcs:objects.insert"), via);
    bucket_lock(&self, via: &str, bucket: &ObjectUrl) -> BucketLock = (object_label(bucket, "s3:GetObjectLockConfiguration", "gcs:buckets.get"), via);
    object_retention(&self, via: &str, url: &ObjectUrl) -> Option<Retention> = (object_label(url, "s3:GetObjectRetention", "gcs:objects.get"), via);
    get(&self, via: &str, url: &ObjectUrl) -> Option<Bytes> = (object_label(url, "s3:GetObject", "gcs:objects.get"), via);
    bucket_state(&self, via: &str, bucket: &ObjectUrl) -> BucketState = (object_label(bucket, "s3:GetBucketReplication", "gcs:buckets.get"), via);
    get_versioned(&self, via: &str, url: &ObjectUrl) -> Option<Versioned> = (object_label(url, "s3:GetObject", "gcs:objects.get"), via);
    replace_if(&self, via: &str, url: &ObjectUrl, body: Bytes, version: &str) -> SwapOutcome = (object_label(url, "s3:PutObject", "gcs:objects.insert"), via);
    list(&self, via: &str, prefix: &ObjectUrl, delimited: bool) -> Listing = (object_label(prefix, "s3:ListObjectsV2", "gcs:objects.list"), via);
    delete(&self, via: &str, url: &ObjectUrl) -> () = (object_label(url, "s3:DeleteObject", "gcs:objects.delete"), via);
}

metered! {
    Resolver => resolver;
    resolve(&self, zone: &str, name: &str, rtype: &str) -> Vec<String> = ("dns:query", "global");
    @extra {
        fn servers(&self) -> String {
            self.inner.resolver.servers()
        }
    }
}

metered! {
    Probe => probe;
    get(&self, region: &str, url: &str, timeout: Duration) -> ProbeAnswer = ("http:GET", region);
}

metered! {
    Identity => identity;
    caller(&self, region: &str) -> CallerIdentity = ("sts:GetCallerIdentity", region);
}

metered! {
    crate::cloud::Publisher => publisher;
    sns(&self, region: &str, topic: &str, subject: &str, message: &str) -> String = ("sns:Publish", region);
    eventbridge(&self, region: &str, bus: &str, detail_type: &str, detail: &str) -> String = ("events:PutEvents", region);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::fake::FakeCloud;

    /// A call log is a file of one line per call, appended to (two
    /// processes, or two commands in a row, share it); nothing is kept in
    /// memory.
    #[tokio::test]
    async fn a_call_log_appends_one_line_per_call_and_keeps_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.log");
        std::fs::write(&path, "earlier\tus-east-1\tok\n").unwrap();
        let fake = FakeCloud::new();
        fake.add_primary("us-west-2", "db");
        let log = MeterLog::appending_to(&path).unwrap();
        let c = Metered::wrap_into(fake.clouds(), log.clone());
        c.database
            .describe_instance("us-west-2", "db")
            .await
            .unwrap();
        assert!(c.database.promote_replica("us-west-2", "db").await.is_err());
        assert!(log.is_empty(), "nothing in memory");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier\tus-east-1\tok\n\
             rds:DescribeDBInstances\tus-west-2\tok\n\
             rds:PromoteReadReplica\tus-west-2\tfailed\n"
        );
    }

    /// A port's calls go through the wire of every meter the bundle is
    /// wrapped in (a run's budget around a test's faults): each is
    /// counted once per meter, and a fault armed in the inner one strikes
    /// after the call took effect, as a lost answer does, whatever wraps it.
    #[tokio::test]
    async fn a_ports_calls_go_through_every_meter_each_counted_and_faulted_at_the_wire() {
        let fake = FakeCloud::new();
        fake.add_ecs_service("us-east-1", "c", "s", 1);
        let lost = Injection {
            label: "ecs:UpdateService",
            nth: 1,
            effect: Effect::AnswerLost,
            kind: ErrorKind::Connection,
        };
        let (inner, faults) = Metered::wrap_with_faults(fake.clouds(), vec![lost]);
        let (c, outer) = Metered::wrap(inner);
        let port = c.capacity.get("ecs_service", "us-east-1").unwrap();
        let read = port.read("us-east-1", "c/s").await.unwrap().unwrap();
        let err = (port.set("us-east-1", "c/s", Size::Count(3), "k").await).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Connection, "{err}");
        let marks = BTreeMap::from([("drctl:drill-run".to_string(), "r".to_string())]);
        port.mark("us-east-1", &read, &marks).await.unwrap();
        // The write took effect though its answer was lost.
        let now = port.read("us-east-1", "c/s").await.unwrap().unwrap();
        assert_eq!((now.size, now.marks), (Size::Count(3), marks));
        let labels = |log: &MeterLog| log.calls().iter().map(|c| c.label).collect::<Vec<_>>();
        let each = [
            "ecs:DescribeServices",
            "ecs:UpdateService",
            "ecs:TagResource",
            "ecs:DescribeServices",
        ];
        assert_eq!(labels(&faults), each);
        assert_eq!(labels(&outer), each);
        assert!(
            !outer.calls()[1].ok,
            "the lost answer is a failed call outside too"
        );
    }

    #[tokio::test]
    async fn every_call_is_forwarded_and_recorded() {
        let fake = FakeCloud::new();
        fake.add_primary("us-west-2", "db");
        fake.add_replica("us-east-1", "db-use1", ("us-west-2", "db"));
        let (c, log) = Metered::wrap(fake.clouds());
        assert!(log.is_empty());

        let r = c.database.describe_instance("us-east-1", "db-use1").await;
        assert!(matches!(r, Ok(Some(_))));
        c.database
            .promote_replica("us-east-1", "db-use1")
            .await
            .unwrap();
        // The wrapped world really changed.
        assert_eq!(fake.state().writes, vec!["PromoteReadReplica db-use1"]);
        // A second promotion fails, and the failure is recorded as such.
        assert!(
            c.database
                .promote_replica("us-east-1", "db-use1")
                .await
                .is_err()
        );
        c.identity.caller("us-east-1").await.unwrap();

        let calls = log.calls();
        let labels: Vec<_> = calls.iter().map(|c| c.label).collect();
        assert_eq!(
            labels,
            [
                "rds:DescribeDBInstances",
                "rds:PromoteReadReplica",
                "rds:PromoteReadReplica",
                "sts:GetCallerIdentity"
            ]
        );
        assert_eq!(
            calls.iter().map(|c| c.ok).collect::<Vec<_>>(),
            [true, true, false, true]
        );
        assert!(
            calls
                .iter()
                .all(|c| c.end >= c.start && c.context.is_none())
        );
        assert_eq!(log.len(), 4);
        assert_eq!(log.errors(), 1);
        assert_eq!(log.counts()["rds:PromoteReadReplica"], 2);
        assert_eq!(log.counts()["sts:GetCallerIdentity"], 1);
        assert_eq!(
            log.total_time(),
            calls.iter().map(Call::duration).sum::<Duration>()
        );
        log.clear();
        assert!(log.is_empty());
    }

    #[tokio::test]
    async fn labels_name_the_service_of_each_object_url() {
        let fake = FakeCloud::new();
        let (c, log) = Metered::wrap(fake.clouds());
        let s3 = ObjectUrl::parse("s3://bucket-a/k").unwrap();
        let gs = ObjectUrl::parse("gs://bucket-b/k").unwrap();
        c.objects
            .put(
                "us-east-1",
                &s3,
                Bytes::from_static(b"1"),
                PutMode::CreateOnly,
            )
            .await
            .unwrap();
        c.objects.get("us-east-1", &gs).await.unwrap();
        let port = c.capacity.get("compute", "us-east-1").unwrap();
        port.read("us-east-1", "api").await.unwrap();
        let labels: Vec<_> = log.calls().iter().map(|c| c.label).collect();
        assert_eq!(
            labels,
            [
                "s3:PutObject",
                "gcs:objects.get",
                "autoscaling:DescribeAutoScalingGroups"
            ]
        );
    }

    #[tokio::test]
    async fn sweep_calls_are_labelled_with_their_operations() {
        let fake = FakeCloud::new();
        let zone = fake.add_zone("example.com.");
        fake.add_group(
            "us-east-1",
            "api",
            Capacity {
                min: 0,
                desired: 0,
                max: 1,
            },
        );
        let (c, log) = Metered::wrap(fake.clouds());
        c.dns.list_records(&zone, "").await.unwrap();
        c.database.list_instances("us-east-1").await.unwrap();
        c.database
            .delete_instance("us-east-1", "gone")
            .await
            .unwrap();
        let tags = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let port = c.capacity.get("compute", "us-east-1").unwrap();
        let read = port.read("us-east-1", "api").await.unwrap().unwrap();
        port.mark("us-east-1", &read, &tags).await.unwrap();
        port.unmark("us-east-1", &read, &["k".into()])
            .await
            .unwrap();
        c.aurora.list_clusters("us-east-1").await.unwrap();
        c.aurora.delete_cluster("us-east-1", "gone").await.unwrap();
        let labels: Vec<_> = log.calls().iter().map(|c| c.label).collect();
        assert_eq!(
            labels,
            [
                "route53:ListResourceRecordSets",
                "rds:DescribeDBInstances",
                "rds:DeleteDBInstance",
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:DeleteTags",
                "rds:DescribeDBClusters",
                "rds:DeleteDBCluster"
            ]
        );
        assert_eq!(log.errors(), 0);
    }

    #[tokio::test]
    async fn the_context_hook_is_asked_at_each_call() {
        let fake = FakeCloud::new();
        let zone = fake.add_zone("example.com.");
        let hook: ContextHook = Arc::new(|| Some("plan/switch-dns:example.com.".into()));
        let (c, log) = Metered::wrap_with_context(fake.clouds(), hook);
        let found = c.dns.find_zone("example.com").await.unwrap();
        assert_eq!(found, Some(zone));
        let calls = log.calls();
        assert_eq!(calls[0].label, "route53:ListHostedZonesByName");
        assert_eq!(
            calls[0].context.as_deref(),
            Some("plan/switch-dns:example.com.")
        );
    }
}
