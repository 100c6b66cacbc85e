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

#[async_trait]
impl Dns for Metered {
    async fn find_zone(&self, zone_name: &str) -> Result<Option<HostedZone>, CloudError> {
        self.meter("route53:ListHostedZonesByName", "global", || {
            self.inner.dns.find_zone(zone_name)
        })
        .await
    }

    async fn read_records(
        &self,
        zone: &HostedZone,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        self.meter("route53:ListResourceRecordSets", "global", || {
            self.inner.dns.read_records(zone, name, rtype)
        })
        .await
    }

    async fn read_many(
        &self,
        zone: &HostedZone,
        wanted: &[(String, String)],
    ) -> Result<Vec<DnsRecord>, CloudError> {
        self.meter("route53:ListResourceRecordSets", "global", || {
            self.inner.dns.read_many(zone, wanted)
        })
        .await
    }

    async fn apply_changes(
        &self,
        zone: &HostedZone,
        changes: &[DnsChange],
        comment: &str,
    ) -> Result<ChangeInfo, CloudError> {
        self.meter("route53:ChangeResourceRecordSets", "global", || {
            self.inner.dns.apply_changes(zone, changes, comment)
        })
        .await
    }

    async fn change_status(&self, change_id: &str) -> Result<ChangeInfo, CloudError> {
        self.meter("route53:GetChange", "global", || {
            self.inner.dns.change_status(change_id)
        })
        .await
    }

    async fn list_health_checks(&self) -> Result<Vec<HealthCheck>, CloudError> {
        self.meter("route53:ListHealthChecks", "global", || {
            self.inner.dns.list_health_checks()
        })
        .await
    }

    async fn create_health_check(&self, want: &HealthCheck) -> Result<HealthCheck, CloudError> {
        self.meter("route53:CreateHealthCheck", "global", || {
            self.inner.dns.create_health_check(want)
        })
        .await
    }

    async fn delete_health_check(&self, id: &str) -> Result<(), CloudError> {
        self.meter("route53:DeleteHealthCheck", "global", || {
            self.inner.dns.delete_health_check(id)
        })
        .await
    }

    async fn list_records(
        &self,
        zone: &HostedZone,
        suffix: &str,
    ) -> Result<Vec<DnsRecord>, CloudError> {
        self.meter("route53:ListResourceRecordSets", "global", || {
            self.inner.dns.list_records(zone, suffix)
        })
        .await
    }
}

#[async_trait]
impl Database for Metered {
    async fn describe_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbInstance>, CloudError> {
        self.meter("rds:DescribeDBInstances", region, || {
            self.inner.database.describe_instance(region, id)
        })
        .await
    }

    async fn promote_replica(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.meter("rds:PromoteReadReplica", region, || {
            self.inner.database.promote_replica(region, id)
        })
        .await
    }

    async fn promote_known(
        &self,
        region: &str,
        known: &DbInstance,
    ) -> Result<DbInstance, CloudError> {
        self.meter("rds:PromoteReadReplica", region, || {
            self.inner.database.promote_known(region, known)
        })
        .await
    }

    async fn create_replica(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
        placement: &ReplicaPlacement,
    ) -> Result<(), CloudError> {
        self.meter("rds:CreateDBInstanceReadReplica", region, || {
            self.inner
                .database
                .create_replica(region, id, source_arn, placement)
        })
        .await
    }

    async fn rename_instance(
        &self,
        region: &str,
        id: &str,
        new_id: &str,
    ) -> Result<(), CloudError> {
        self.meter("rds:ModifyDBInstance", region, || {
            self.inner.database.rename_instance(region, id, new_id)
        })
        .await
    }

    async fn restore_to_point_in_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        point: RestorePoint,
    ) -> Result<(), CloudError> {
        self.meter("rds:RestoreDBInstanceToPointInTime", region, || {
            self.inner
                .database
                .restore_to_point_in_time(region, source_id, target_id, point)
        })
        .await
    }

    async fn delete_instance(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.meter("rds:DeleteDBInstance", region, || {
            self.inner.database.delete_instance(region, id)
        })
        .await
    }

    async fn list_instances(&self, region: &str) -> Result<Vec<DbInstance>, CloudError> {
        self.meter("rds:DescribeDBInstances", region, || {
            self.inner.database.list_instances(region)
        })
        .await
    }
}

#[async_trait]
impl CloudDns for Metered {
    async fn describe_zone(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Option<CloudDnsZone>, CloudError> {
        self.meter("clouddns:managedZones.get", "global", || {
            self.inner.cloud_dns.describe_zone(project, zone)
        })
        .await
    }

    async fn read_record_set(
        &self,
        project: &str,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Option<CloudRecordSet>, CloudError> {
        self.meter("clouddns:resourceRecordSets.list", "global", || {
            self.inner
                .cloud_dns
                .read_record_set(project, zone, name, rtype)
        })
        .await
    }

    async fn delete_record_set(
        &self,
        project: &str,
        zone: &str,
        deletion: &CloudRecordSet,
    ) -> Result<CloudDnsChange, CloudError> {
        self.meter("clouddns:changes.create", "global", || {
            self.inner
                .cloud_dns
                .delete_record_set(project, zone, deletion)
        })
        .await
    }

    async fn swap_record_set(
        &self,
        project: &str,
        zone: &str,
        deletion: Option<&CloudRecordSet>,
        addition: &CloudRecordSet,
    ) -> Result<CloudDnsChange, CloudError> {
        self.meter("clouddns:changes.create", "global", || {
            self.inner
                .cloud_dns
                .swap_record_set(project, zone, deletion, addition)
        })
        .await
    }

    async fn dns_change(
        &self,
        project: &str,
        zone: &str,
        id: &str,
    ) -> Result<CloudDnsChange, CloudError> {
        self.meter("clouddns:changes.get", "global", || {
            self.inner.cloud_dns.dns_change(project, zone, id)
        })
        .await
    }

    async fn pending_dns_changes(
        &self,
        project: &str,
        zone: &str,
    ) -> Result<Vec<CloudDnsChange>, CloudError> {
        self.meter("clouddns:changes.list", "global", || {
            self.inner.cloud_dns.pending_dns_changes(project, zone)
        })
        .await
    }
}

#[async_trait]
impl CloudRun for Metered {
    async fn describe_run(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<RunService>, CloudError> {
        self.meter("run:services.get", region, || {
            self.inner.cloud_run.describe_run(region, project, name)
        })
        .await
    }

    async fn set_run_min_instances(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
        etag: Option<&str>,
    ) -> Result<RunOperation, CloudError> {
        self.meter("run:services.patch", region, || {
            self.inner
                .cloud_run
                .set_run_min_instances(region, project, name, min, etag)
        })
        .await
    }

    async fn run_operation(
        &self,
        region: &str,
        operation: &str,
    ) -> Result<RunOperation, CloudError> {
        self.meter("run:operations.get", region, || {
            self.inner.cloud_run.run_operation(region, operation)
        })
        .await
    }
}

#[async_trait]
impl CloudSql for Metered {
    async fn describe_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<SqlInstance>, CloudError> {
        self.meter("sqladmin:instances.get", region, || {
            self.inner.cloud_sql.describe_sql(region, project, name)
        })
        .await
    }

    async fn promote_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        failover: bool,
    ) -> Result<SqlOperation, CloudError> {
        self.meter("sqladmin:instances.promoteReplica", region, || {
            self.inner
                .cloud_sql
                .promote_sql(region, project, name, failover)
        })
        .await
    }

    async fn switchover_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.meter("sqladmin:instances.switchover", region, || {
            self.inner.cloud_sql.switchover_sql(region, project, name)
        })
        .await
    }

    async fn designate_dr_sql(
        &self,
        region: &str,
        project: &str,
        primary: &str,
        replica: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.meter("sqladmin:instances.patch", region, || {
            (self.inner.cloud_sql).designate_dr_sql(region, project, primary, replica)
        })
        .await
    }

    async fn clone_sql(
        &self,
        region: &str,
        project: &str,
        source: &str,
        target: &str,
        point_in_time: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SqlOperation, CloudError> {
        self.meter("sqladmin:instances.clone", region, || {
            self.inner
                .cloud_sql
                .clone_sql(region, project, source, target, point_in_time)
        })
        .await
    }

    async fn delete_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.meter("sqladmin:instances.delete", region, || {
            self.inner.cloud_sql.delete_sql(region, project, name)
        })
        .await
    }

    async fn recovery_window(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<RecoveryWindow, CloudError> {
        self.meter("sqladmin:instances.getLatestRecoveryTime", region, || {
            self.inner.cloud_sql.recovery_window(region, project, name)
        })
        .await
    }

    async fn operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<SqlOperation, CloudError> {
        self.meter("sqladmin:operations.get", region, || {
            self.inner.cloud_sql.operation(region, project, operation)
        })
        .await
    }

    async fn operations(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<SqlOperation>, CloudError> {
        self.meter("sqladmin:operations.list", region, || {
            self.inner.cloud_sql.operations(region, project, name)
        })
        .await
    }

    async fn sql_replica_lag(
        &self,
        region: &str,
        project: &str,
        name: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.meter("monitoring:timeSeries.list", region, || {
            self.inner
                .cloud_sql
                .sql_replica_lag(region, project, name, window)
        })
        .await
    }
}

#[async_trait]
impl GlobalDatabases for Metered {
    async fn describe_global(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<GlobalCluster>, CloudError> {
        self.meter("rds:DescribeGlobalClusters", region, || {
            self.inner.aurora.describe_global(region, id)
        })
        .await
    }

    async fn describe_cluster(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<DbCluster>, CloudError> {
        self.meter("rds:DescribeDBClusters", region, || {
            self.inner.aurora.describe_cluster(region, id)
        })
        .await
    }

    async fn switchover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        self.meter("rds:SwitchoverGlobalCluster", region, || {
            self.inner
                .aurora
                .switchover_global(region, global, target_arn)
        })
        .await
    }

    async fn failover_global(
        &self,
        region: &str,
        global: &str,
        target_arn: &str,
    ) -> Result<(), CloudError> {
        self.meter("rds:FailoverGlobalCluster", region, || {
            self.inner
                .aurora
                .failover_global(region, global, target_arn)
        })
        .await
    }

    async fn detach_cluster(
        &self,
        region: &str,
        global: &str,
        cluster_arn: &str,
    ) -> Result<(), CloudError> {
        self.meter("rds:RemoveFromGlobalCluster", region, || {
            self.inner
                .aurora
                .detach_cluster(region, global, cluster_arn)
        })
        .await
    }

    async fn cluster_snapshots(
        &self,
        region: &str,
        cluster: &str,
    ) -> Result<Vec<ClusterSnapshot>, CloudError> {
        self.meter("rds:DescribeDBClusterSnapshots", region, || {
            self.inner.aurora.cluster_snapshots(region, cluster)
        })
        .await
    }

    async fn clone_cluster(
        &self,
        region: &str,
        source: &str,
        target: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.meter("rds:RestoreDBClusterToPointInTime", region, || {
            self.inner
                .aurora
                .clone_cluster(region, source, target, tags)
        })
        .await
    }

    async fn add_writer(
        &self,
        region: &str,
        cluster: &str,
        instance: &str,
        engine: &str,
        class: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.meter("rds:CreateDBInstance", region, || {
            self.inner
                .aurora
                .add_writer(region, cluster, instance, engine, class, tags)
        })
        .await
    }

    async fn delete_cluster(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.meter("rds:DeleteDBCluster", region, || {
            self.inner.aurora.delete_cluster(region, id)
        })
        .await
    }

    async fn list_clusters(&self, region: &str) -> Result<Vec<DbCluster>, CloudError> {
        self.meter("rds:DescribeDBClusters", region, || {
            self.inner.aurora.list_clusters(region)
        })
        .await
    }
    async fn delete_global(&self, region: &str, id: &str) -> Result<(), CloudError> {
        self.meter("rds:DeleteGlobalCluster", region, || {
            self.inner.aurora.delete_global(region, id)
        })
        .await
    }

    async fn create_global(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
    ) -> Result<(), CloudError> {
        self.meter("rds:CreateGlobalCluster", region, || {
            self.inner.aurora.create_global(region, id, source_arn)
        })
        .await
    }

    async fn create_secondary(
        &self,
        region: &str,
        id: &str,
        global: &str,
        engine: &str,
    ) -> Result<(), CloudError> {
        self.meter("rds:CreateDBCluster", region, || {
            self.inner
                .aurora
                .create_secondary(region, id, global, engine)
        })
        .await
    }

    async fn rename_cluster(&self, region: &str, id: &str, new_id: &str) -> Result<(), CloudError> {
        self.meter("rds:ModifyDBCluster", region, || {
            self.inner.aurora.rename_cluster(region, id, new_id)
        })
        .await
    }
}

#[async_trait]
impl NodeGroups for Metered {
    async fn describe_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<NodeGroup>, CloudError> {
        self.meter("eks:DescribeNodegroup", region, || {
            self.inner
                .node_groups
                .describe_node_group(region, cluster, name)
        })
        .await
    }

    async fn scale_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<NodeGroupUpdate, CloudError> {
        self.meter("eks:UpdateNodegroupConfig", region, || {
            self.inner
                .node_groups
                .scale_node_group(region, cluster, name, capacity)
        })
        .await
    }

    async fn describe_update(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        id: &str,
    ) -> Result<NodeGroupUpdate, CloudError> {
        self.meter("eks:DescribeUpdate", region, || {
            self.inner
                .node_groups
                .describe_update(region, cluster, name, id)
        })
        .await
    }
}

#[async_trait]
impl EcsServices for Metered {
    async fn describe_service(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<EcsService>, CloudError> {
        self.meter("ecs:DescribeServices", region, || {
            self.inner.ecs.describe_service(region, cluster, name)
        })
        .await
    }

    async fn set_desired_count(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        desired: u32,
    ) -> Result<(), CloudError> {
        self.meter("ecs:UpdateService", region, || {
            self.inner
                .ecs
                .set_desired_count(region, cluster, name, desired)
        })
        .await
    }

    async fn tag_service(
        &self,
        region: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.meter("ecs:TagResource", region, || {
            self.inner.ecs.tag_service(region, arn, tags)
        })
        .await
    }

    async fn untag_service(
        &self,
        region: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.meter("ecs:UntagResource", region, || {
            self.inner.ecs.untag_service(region, arn, keys)
        })
        .await
    }
}

#[async_trait]
impl Compute for Metered {
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        self.meter("autoscaling:DescribeAutoScalingGroups", region, || {
            self.inner.compute.describe_group(region, name)
        })
        .await
    }

    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        self.meter("autoscaling:UpdateAutoScalingGroup", region, || {
            self.inner.compute.set_capacity(region, name, capacity)
        })
        .await
    }

    async fn tag_group(
        &self,
        region: &str,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.meter("autoscaling:CreateOrUpdateTags", region, || {
            self.inner.compute.tag_group(region, name, tags)
        })
        .await
    }

    async fn untag_group(
        &self,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.meter("autoscaling:DeleteTags", region, || {
            self.inner.compute.untag_group(region, name, keys)
        })
        .await
    }
}

#[async_trait]
impl Metrics for Metered {
    async fn replica_lag(
        &self,
        region: &str,
        db_id: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.meter("cloudwatch:GetMetricData", region, || {
            self.inner.metrics.replica_lag(region, db_id, window)
        })
        .await
    }

    async fn cluster_lag(
        &self,
        region: &str,
        cluster: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        self.meter("cloudwatch:GetMetricData", region, || {
            self.inner.metrics.cluster_lag(region, cluster, window)
        })
        .await
    }

    async fn alarms_firing(
        &self,
        region: &str,
        names: &[String],
    ) -> Result<Vec<String>, CloudError> {
        self.meter("cloudwatch:DescribeAlarms", region, || {
            self.inner.metrics.alarms_firing(region, names)
        })
        .await
    }
}

#[async_trait]
impl ObjectStore for Metered {
    async fn bucket_exists(&self, via: &str, bucket: &ObjectUrl) -> Result<bool, CloudError> {
        let label = object_label(bucket, "s3:HeadBucket", "gcs:buckets.get");
        self.meter(label, via, || self.inner.objects.bucket_exists(via, bucket))
            .await
    }

    async fn put(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, CloudError> {
        let label = object_label(url, "s3:PutObject", "gcs:objects.insert");
        self.meter(label, via, || {
            self.inner.objects.put(via, url, body.clone(), mode)
        })
        .await
    }

    async fn put_retained(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        retention: Option<Retention>,
    ) -> Result<Kept, CloudError> {
        let label = object_label(url, "s3:PutObject", "gcs:objects.insert");
        self.meter(label, via, || {
            self.inner
                .objects
                .put_retained(via, url, body.clone(), retention)
        })
        .await
    }

    async fn bucket_lock(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketLock, CloudError> {
        let label = object_label(bucket, "s3:GetObjectLockConfiguration", "gcs:buckets.get");
        self.meter(label, via, || self.inner.objects.bucket_lock(via, bucket))
            .await
    }

    async fn object_retention(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Retention>, CloudError> {
        let label = object_label(url, "s3:GetObjectRetention", "gcs:objects.get");
        self.meter(label, via, || self.inner.objects.object_retention(via, url))
            .await
    }

    async fn get(&self, via: &str, url: &ObjectUrl) -> Result<Option<Bytes>, CloudError> {
        let label = object_label(url, "s3:GetObject", "gcs:objects.get");
        self.meter(label, via, || self.inner.objects.get(via, url))
            .await
    }

    async fn bucket_state(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketState, CloudError> {
        let label = object_label(bucket, "s3:GetBucketReplication", "gcs:buckets.get");
        self.meter(label, via, || self.inner.objects.bucket_state(via, bucket))
            .await
    }

    async fn get_versioned(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Versioned>, CloudError> {
        let label = object_label(url, "s3:GetObject", "gcs:objects.get");
        self.meter(label, via, || self.inner.objects.get_versioned(via, url))
            .await
    }

    async fn replace_if(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        version: &str,
    ) -> Result<SwapOutcome, CloudError> {
        let label = object_label(url, "s3:PutObject", "gcs:objects.insert");
        self.meter(label, via, || {
            self.inner
                .objects
                .replace_if(via, url, body.clone(), version)
        })
        .await
    }

    async fn list(
        &self,
        via: &str,
        prefix: &ObjectUrl,
        delimited: bool,
    ) -> Result<Listing, CloudError> {
        let label = object_label(prefix, "s3:ListObjectsV2", "gcs:objects.list");
        self.meter(label, via, || {
            self.inner.objects.list(via, prefix, delimited)
        })
        .await
    }

    async fn delete(&self, via: &str, url: &ObjectUrl) -> Result<(), CloudError> {
        let label = object_label(url, "s3:DeleteObject", "gcs:objects.delete");
        self.meter(label, via, || self.inner.objects.delete(via, url))
            .await
    }
}

#[async_trait]
impl Resolver for Metered {
    async fn resolve(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.meter("dns:query", "global", || {
            self.inner.resolver.resolve(zone, name, rtype)
        })
        .await
    }

    fn servers(&self) -> String {
        self.inner.resolver.servers()
    }
}

#[async_trait]
impl Probe for Metered {
    async fn get(
        &self,
        region: &str,
        url: &str,
        timeout: Duration,
    ) -> Result<ProbeAnswer, CloudError> {
        self.meter("http:GET", region, || {
            self.inner.probe.get(region, url, timeout)
        })
        .await
    }
}

#[async_trait]
impl Identity for Metered {
    async fn caller(&self, region: &str) -> Result<CallerIdentity, CloudError> {
        self.meter("sts:GetCallerIdentity", region, || {
            self.inner.identity.caller(region)
        })
        .await
    }
}

#[async_trait]
impl crate::cloud::Publisher for Metered {
    async fn sns(
        &self,
        region: &str,
        topic: &str,
        subject: &str,
        message: &str,
    ) -> Result<String, CloudError> {
        self.meter("sns:Publish", region, || {
            self.inner.publisher.sns(region, topic, subject, message)
        })
        .await
    }

    async fn eventbridge(
        &self,
        region: &str,
        bus: &str,
        detail_type: &str,
        detail: &str,
    ) -> Result<String, CloudError> {
        self.meter("events:PutEvents", region, || {
            self.inner
                .publisher
                .eventbridge(region, bus, detail_type, detail)
        })
        .await
    }
}

#[async_trait]
impl InstanceGroups for Metered {
    async fn describe_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigGroup>, CloudError> {
        self.meter("compute:regionInstanceGroupManagers.get", region, || {
            self.inner
                .instance_groups
                .describe_mig(region, project, name)
        })
        .await
    }

    async fn mig_instances(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<MigInstance>, CloudError> {
        self.meter(
            "compute:regionInstanceGroupManagers.listManagedInstances",
            region,
            || {
                self.inner
                    .instance_groups
                    .mig_instances(region, project, name)
            },
        )
        .await
    }

    async fn resize_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
        size: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        self.meter("compute:regionInstanceGroupManagers.resize", region, || {
            (self.inner.instance_groups).resize_mig(region, project, name, size, request_id)
        })
        .await
    }

    async fn mig_autoscaler(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigAutoscaler>, CloudError> {
        self.meter("compute:regionAutoscalers.get", region, || {
            self.inner
                .instance_groups
                .mig_autoscaler(region, project, name)
        })
        .await
    }

    async fn set_autoscaler_min(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        self.meter("compute:regionAutoscalers.patch", region, || {
            (self.inner.instance_groups).set_autoscaler_min(region, project, name, min, request_id)
        })
        .await
    }

    async fn mig_operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<MigOperation, CloudError> {
        self.meter("compute:regionOperations.get", region, || {
            self.inner
                .instance_groups
                .mig_operation(region, project, operation)
        })
        .await
    }
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
        c.compute.describe_group("us-east-1", "api").await.unwrap();
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
        c.compute
            .tag_group("us-east-1", "api", &tags)
            .await
            .unwrap();
        c.compute
            .untag_group("us-east-1", "api", &["k".into()])
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
