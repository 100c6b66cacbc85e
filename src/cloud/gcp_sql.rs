//! Cloud SQL adapter ([`CloudSql`]) over Google's official crates:
//! `google-cloud-sql-v1` (the Cloud SQL Admin API: instances, operations)
//! and `google-cloud-monitoring-v3` (a replica's `replica_lag`).
//!
//! * Clients are built as the GCS adapter builds its own ([`super::gcp`]):
//!   with [`CloudSettings::gcp_endpoint`] set (an emulator, such as
//!   `localstack/gcp_emu.py`, serving both APIs) at that endpoint with
//!   anonymous credentials; otherwise at Google's endpoints with Application
//!   Default Credentials (workload identity federation included). They are
//!   built on first use: a plan with no Cloud SQL never needs GCP
//!   credentials.
//! * Reads are retried by the crates, bounded to drctl's [`RetryPolicy`]
//!   (its attempts, within [`super::gcp::RETRY_TIME_LIMIT`]). Writes
//!   (`promoteReplica`, `switchover`, `clone`) are not idempotent, so the
//!   crates never retry them, and neither does drctl: each is sent once,
//!   and a run that lost its answer finds the operation again with
//!   `operations.list` ([`CloudSql::operations`]).
//! * The fence at the wire ([`super::wire`]): the crates have no hook
//!   before a transmission, so the adapter asks the fence right before it
//!   hands each write to the crate. The crate sends it at once (one
//!   attempt); the window left is the crate's own connection set-up
//!   (docs/state.md, fenced calls).
//! * A Cloud SQL write answers an operation the crate does not poll: the
//!   step polls [`CloudSql::operation`] with the run's pace.

use super::gcp::{gax_error, gax_not_found};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use google_cloud_monitoring_v3::client::MetricService;
use google_cloud_sql_v1::client::{SqlBackupsService, SqlInstancesService, SqlOperationsService};
use google_cloud_sql_v1::model;
use tokio::sync::OnceCell;

use super::gcp::gcp_clients;
use super::retry::RetryPolicy;
use super::{
    CloudError, CloudSettings, CloudSql, DbRole, ErrorKind, LagReading, RecoveryWindow,
    ReplicaPlacement, Restorable, SqlInstance, SqlList, SqlOpStatus, SqlOperation,
};

/// The pages of an instance's operations a resumed run reads, newest first,
/// looking for the one it started.
const OPERATION_PAGES: usize = 5;
/// The pages of a project's instances a sweep reads (Cloud SQL answers at
/// most 500 a page).
const LIST_PAGES: usize = 20;
const SERVICE: &str = "sqladmin";
/// The metric a Cloud SQL replica's lag is read from (seconds, a gauge):
/// how far its applying is behind what it has received.
pub const LAG_METRIC: &str = "cloudsql.googleapis.com/database/replication/replica_lag";
/// What the replica has not received yet (seconds, a gauge: the time from
/// the primary's log to the replica's receiving thread). Google publishes
/// it for MySQL replicas; where an engine publishes none, the lag is
/// `replica_lag` alone.
pub const NETWORK_LAG_METRIC: &str = "cloudsql.googleapis.com/database/replication/network_lag";

/// [`CloudSql`] over the Cloud SQL Admin API and Cloud Monitoring.
pub struct GcpSql {
    endpoint: Option<String>,
    retry: RetryPolicy,
    inner: OnceCell<Inner>,
}

struct Inner {
    instances: SqlInstancesService,
    operations: SqlOperationsService,
    backups: SqlBackupsService,
    metrics: MetricService,
}

fn err(
    service: &'static str,
    operation: &'static str,
    resource: &str,
    region: &str,
    kind: ErrorKind,
    message: impl Into<String>,
) -> CloudError {
    CloudError::new(service, operation, resource, region, kind, message)
}

fn to_time(t: &google_cloud_wkt::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.seconds(), u32::try_from(t.nanos()).unwrap_or(0))
}

fn from_time(t: DateTime<Utc>) -> google_cloud_wkt::Timestamp {
    google_cloud_wkt::Timestamp::clamp(
        t.timestamp(),
        i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    )
}

/// An instance's name from a reference to it: Cloud SQL names a replica's
/// primary `instance`, or `project:instance` (after a switchover, as
/// recorded on Google Cloud: localstack/contract/sql-switchover_http.log).
pub fn bare_name(reference: &str) -> &str {
    reference.rsplit(':').next().unwrap_or(reference)
}

/// The regions a list's warnings say Cloud SQL could not reach
/// (`REGION_UNREACHABLE`: "the returned result set may be incomplete"),
/// each with its message, added to `out` once each.
fn unreachable_of(warnings: &[model::ApiWarning], out: &mut Vec<(String, String)>) {
    use model::api_warning::SqlApiWarningCode;
    for w in warnings {
        if w.code != SqlApiWarningCode::RegionUnreachable {
            continue;
        }
        let region = if w.region.is_empty() {
            "unknown region".to_string()
        } else {
            w.region.clone()
        };
        if !out.iter().any(|(r, _)| *r == region) {
            out.push((region, w.message.clone()));
        }
    }
}

/// The domain's view of an instance the API described.
pub fn instance_of(i: &model::DatabaseInstance) -> SqlInstance {
    let role = if i.master_instance_name.is_empty() {
        DbRole::Primary
    } else {
        DbRole::Replica(bare_name(&i.master_instance_name).to_string())
    };
    let ip = (i.ip_addresses.iter())
        .find(|a| a.r#type.name() == Some("PRIMARY"))
        .or(i.ip_addresses.first())
        .map(|a| a.ip_address.clone());
    let dns = i.dns_name.clone().filter(|d| !d.is_empty());
    let cluster = (i.replication_cluster.as_ref()).map(|c| c.psa_write_endpoint.clone());
    let write = (cluster.filter(|w| !w.is_empty()))
        .or_else(|| i.write_endpoint.clone().filter(|w| !w.is_empty()))
        .map(|w| w.trim_end_matches('.').to_string());
    SqlInstance {
        name: i.name.clone(),
        region: i.region.clone(),
        state: i.state.name().unwrap_or("UNKNOWN").to_string(),
        role,
        replicas: i.replica_names.clone(),
        dr_replica: i.replication_cluster.as_ref().is_some_and(|c| c.dr_replica),
        edition: (i.settings.as_ref())
            .and_then(|s| s.edition.name())
            .map(str::to_string),
        endpoint: dns.map(|d| d.trim_end_matches('.').to_string()).or(ip),
        write_endpoint: write,
        labels: (i.settings.as_ref())
            .map(|s| s.user_labels.clone().into_iter().collect())
            .unwrap_or_default(),
        backup_location: (i.settings.as_ref())
            .and_then(|s| s.backup_configuration.as_ref())
            .map(|b| b.location.clone())
            .filter(|l| !l.is_empty()),
    }
}

/// A backup in drctl's terms, once `SUCCESSFUL`. Its point is the start
/// of its interval: Google says every write before `startTime` is in the
/// backup and none after `endTime`, so the start is the point no write
/// is lost before (the end would understate the RPO by the backup's
/// length).
pub fn backup_of(b: &model::Backup) -> Restorable {
    let state = b.state.name().unwrap_or("UNKNOWN").to_string();
    let end = (b.backup_interval.as_ref())
        .and_then(|i| i.start_time.as_ref())
        .and_then(to_time);
    Restorable {
        id: b.name.clone(),
        source: b.instance.clone(),
        source_arn: None,
        source_region: (b.instance_settings.as_ref())
            .map(|i| i.region.clone())
            .filter(|r| !r.is_empty()),
        ready: state == "SUCCESSFUL",
        status: state,
        earliest: end,
        latest: end,
        kms_key_id: Some(b.kms_key.clone()).filter(|k| !k.is_empty()),
        progress: None,
        engine: Some(b.database_version.name().unwrap_or("UNKNOWN").to_string()),
        engine_version: None,
    }
}

/// Whether a backup kept in `location` (a region, or one of Cloud SQL's
/// multi-regions `us`, `eu`, `asia`) is kept in `region` (pure).
pub fn kept_in(location: &str, region: &str) -> bool {
    let multi = match region.split('-').next() {
        Some("us") => "us",
        Some("europe") => "eu",
        Some("asia") => "asia",
        _ => "",
    };
    location == region || (!multi.is_empty() && location == multi)
}

/// The domain's view of an operation the API answered.
pub fn operation_of(o: &model::Operation) -> SqlOperation {
    let status = match o.status.name() {
        Some("PENDING") => SqlOpStatus::Pending,
        Some("RUNNING") => SqlOpStatus::Running,
        Some("DONE") => SqlOpStatus::Done,
        _ => SqlOpStatus::Unknown,
    };
    let error = o.error.as_ref().filter(|e| !e.errors.is_empty()).map(|e| {
        (e.errors.iter())
            .map(|x| match (x.code.is_empty(), x.message.is_empty()) {
                (false, false) => format!("{}: {}", x.code, x.message),
                (true, false) => x.message.clone(),
                _ => x.code.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
    SqlOperation {
        name: o.name.clone(),
        kind: o.operation_type.name().unwrap_or("UNKNOWN").to_string(),
        target: o.target_id.clone(),
        status,
        error,
        inserted: o.insert_time.as_ref().and_then(to_time),
    }
}

/// The replica's whole delay behind its primary from the two series (pure):
/// what it has not applied of what it received (`apply`, `replica_lag`)
/// plus what it has not received (`network`, `network_lag`). Each figure is
/// the sum of the two at their worst in the window (the largest, and the
/// latest of each), an upper bound on the data a promotion now would lose;
/// with no `network` points it is `replica_lag` alone, and with no `apply`
/// points it is unknown (never zero).
pub fn delay_of(
    apply: &[(DateTime<Utc>, f64)],
    network: &[(DateTime<Utc>, f64)],
    window: Duration,
) -> LagReading {
    let a = lag_of(apply, window);
    if network.is_empty() || a.datapoints == 0 {
        return a;
    }
    let n = lag_of(network, window);
    let add = |x: Option<Duration>, y: Option<Duration>| match (x, y) {
        (Some(x), Some(y)) => Some(x + y),
        (x, _) => x,
    };
    LagReading {
        max: add(a.max, n.max),
        latest: match (a.latest, n.latest) {
            (Some((x, tx)), Some((y, ty))) => Some((x + y, tx.min(ty))),
            (x, _) => x,
        },
        datapoints: a.datapoints,
        window,
    }
}

/// A lag reading from the points of the series Monitoring answered
/// (seconds; newest first as Monitoring sends them, but not relied on).
pub fn lag_of(points: &[(DateTime<Utc>, f64)], window: Duration) -> LagReading {
    let max = (points.iter().map(|(_, v)| *v))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let latest = points.iter().max_by_key(|(t, _)| *t);
    LagReading {
        max: max.map(|v| Duration::from_secs_f64(v.max(0.0))),
        latest: latest.map(|(t, v)| (Duration::from_secs_f64(v.max(0.0)), *t)),
        datapoints: points.len(),
        window,
    }
}

impl GcpSql {
    /// Builds the adapter; nothing is resolved until the first call.
    pub fn new(settings: &CloudSettings) -> Self {
        Self {
            endpoint: settings.gcp_endpoint.clone(),
            retry: settings.retry,
            inner: OnceCell::new(),
        }
    }

    async fn inner(&self, op: &'static str, res: &str, region: &str) -> Result<&Inner, CloudError> {
        self.inner
            .get_or_try_init(|| async {
                let fail = |kind, m: String| err(SERVICE, op, res, region, kind, m);
                Ok(
                    gcp_clients!(self.endpoint.as_deref(), &self.retry, fail => Inner {
                        instances: SqlInstancesService,
                        operations: SqlOperationsService,
                        backups: SqlBackupsService,
                        metrics: MetricService,
                    }),
                )
            })
            .await
    }
}

impl GcpSql {
    /// The instance as the API answers it (`instances.get`; `Ok(None)`
    /// when it does not exist).
    async fn get(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<model::DatabaseInstance>, CloudError> {
        const OP: &str = "instances.get";
        let inner = self.inner(OP, name, region).await?;
        match (inner.instances.get())
            .set_project(project)
            .set_instance(name)
            .send()
            .await
        {
            Ok(i) => Ok(Some(i)),
            Err(e) if gax_not_found(&e) => Ok(None),
            Err(e) => Err(gax_error(SERVICE, OP, (name, region), &e)),
        }
    }
}

#[async_trait]
impl CloudSql for GcpSql {
    async fn describe_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<SqlInstance>, CloudError> {
        Ok(self
            .get(region, project, name)
            .await?
            .as_ref()
            .map(instance_of))
    }

    async fn list_sql(&self, project: &str) -> Result<SqlList, CloudError> {
        const OP: &str = "instances.list";
        let inner = self.inner(OP, project, "global").await?;
        let mut out = SqlList::default();
        let mut token = String::new();
        // A project's instances, a page at a time, up to a bound: a sweep
        // reads them all, and a project of more than this many pages is
        // no drill's to look through in one go (it says so).
        for _ in 0..LIST_PAGES {
            let r = (inner.instances.list())
                .set_project(project)
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| gax_error(SERVICE, OP, (project, "global"), &e))?;
            out.instances.extend(r.items.iter().map(instance_of));
            unreachable_of(&r.warnings, &mut out.unreachable);
            if r.next_page_token.is_empty() {
                return Ok(out);
            }
            token = r.next_page_token;
        }
        Err(err(
            SERVICE,
            OP,
            project,
            "global",
            ErrorKind::Client,
            format!("more than {LIST_PAGES} pages of instances: not all were read"),
        ))
    }

    async fn promote_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        failover: bool,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "instances.promoteReplica";
        let inner = self.inner(OP, name, region).await?;
        super::gcp::gax_write(
            (SERVICE, OP),
            (name, region),
            (inner.instances.promote_replica())
                .set_project(project)
                .set_instance(name)
                .set_failover(failover)
                .send(),
            operation_of,
        )
        .await
    }

    async fn switchover_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "instances.switchover";
        let inner = self.inner(OP, name, region).await?;
        super::gcp::gax_write(
            (SERVICE, OP),
            (name, region),
            (inner.instances.switchover())
                .set_project(project)
                .set_instance(name)
                .send(),
            operation_of,
        )
        .await
    }

    async fn designate_dr_sql(
        &self,
        region: &str,
        project: &str,
        primary: &str,
        replica: &str,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "instances.patch";
        let inner = self.inner(OP, primary, region).await?;
        let body = google_cloud_sql_v1::model::DatabaseInstance::new().set_replication_cluster(
            google_cloud_sql_v1::model::ReplicationCluster::new()
                .set_failover_dr_replica_name(replica),
        );
        super::gcp::gax_write(
            (SERVICE, OP),
            (primary, region),
            (inner.instances.patch())
                .set_project(project)
                .set_instance(primary)
                .set_body(body)
                .send(),
            operation_of,
        )
        .await
    }

    async fn keep_sql_backups_in(
        &self,
        region: &str,
        project: &str,
        name: &str,
        location: &str,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "instances.patch";
        let inner = self.inner(OP, name, region).await?;
        // The instance's own backup configuration with the location set:
        // a patch replaces the backup configuration it is given whole, so
        // one sent bare would turn off what was on (point-in-time
        // recovery, the retention).
        let read = self.get(region, project, name).await?.ok_or_else(|| {
            let why = "the instance does not exist";
            err(SERVICE, OP, name, region, ErrorKind::NotFound, why)
        })?;
        let now = (read.settings.and_then(|s| s.backup_configuration))
            .unwrap_or_default()
            .set_enabled(true)
            .set_location(location);
        let body = model::DatabaseInstance::new()
            .set_settings(model::Settings::new().set_backup_configuration(now));
        super::gcp::gax_write(
            (SERVICE, OP),
            (name, region),
            (inner.instances.patch())
                .set_project(project)
                .set_instance(name)
                .set_body(body)
                .send(),
            operation_of,
        )
        .await
    }

    async fn backup_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
        location: &str,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "backups.insertBackup";
        let inner = self.inner(OP, name, region).await?;
        let backup = model::Backup::new()
            .set_instance(name)
            .set_location(location)
            .set_description("drctl reprotect: a restorable point kept where a failback restores");
        super::gcp::gax_write(
            (SERVICE, OP),
            (name, region),
            (inner.backups.create_backup())
                .set_parent(format!("projects/{project}"))
                .set_backup(backup)
                .send(),
            operation_of,
        )
        .await
    }

    async fn clone_sql(
        &self,
        region: &str,
        project: &str,
        source: &str,
        target: &str,
        point_in_time: Option<DateTime<Utc>>,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "instances.clone";
        let inner = self.inner(OP, source, region).await?;
        let mut ctx = model::CloneContext::new().set_destination_instance_name(target);
        if let Some(t) = point_in_time {
            ctx = ctx.set_point_in_time(from_time(t));
        }
        super::gcp::gax_write(
            (SERVICE, OP),
            (source, region),
            (inner.instances.clone())
                .set_project(project)
                .set_instance(source)
                .set_body(model::InstancesCloneRequest::new().set_clone_context(ctx))
                .send(),
            operation_of,
        )
        .await
    }

    async fn sql_backups(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<Restorable>, CloudError> {
        const OP: &str = "backups.list";
        let inner = self.inner(OP, name, region).await?;
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..LIST_PAGES {
            let r = (inner.backups.list_backups())
                .set_parent(format!("projects/{project}"))
                .set_filter(format!("instance=\"{name}\""))
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| gax_error(SERVICE, OP, (name, region), &e))?;
            // Kept in `region`, or in the multi-region that holds it (Google's
            // default backup location): a backup elsewhere is no standby's here.
            let here = (r.backups.iter()).filter(|b| kept_in(&b.location, region));
            out.extend(here.filter(|b| b.instance == name).map(backup_of));
            if r.next_page_token.is_empty() {
                break;
            }
            token = r.next_page_token;
        }
        out.sort_by_key(|b| std::cmp::Reverse(b.latest));
        Ok(out)
    }

    async fn restore_sql_backup(
        &self,
        region: &str,
        project: &str,
        target: &str,
        backup: &str,
        settings: &ReplicaPlacement,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "instances.restoreBackup";
        let inner = self.inner(OP, target, region).await?;
        let mut s = model::Settings::new().set_user_labels(settings.tags.clone());
        if let Some(tier) = &settings.instance_class {
            s = s.set_tier(tier);
        }
        let new = model::DatabaseInstance::new()
            .set_region(region)
            .set_settings(s);
        let body = model::InstancesRestoreBackupRequest::new()
            .set_backup(backup)
            .set_restore_instance_settings(new);
        super::gcp::gax_write(
            (SERVICE, OP),
            (target, region),
            (inner.instances.restore_backup())
                .set_project(project)
                .set_instance(target)
                .set_body(body)
                .send(),
            operation_of,
        )
        .await
    }

    async fn delete_sql(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "instances.delete";
        let inner = self.inner(OP, name, region).await?;
        super::gcp::gax_write(
            (SERVICE, OP),
            (name, region),
            (inner.instances.delete())
                .set_project(project)
                .set_instance(name)
                .send(),
            operation_of,
        )
        .await
    }

    async fn recovery_window(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<RecoveryWindow, CloudError> {
        const OP: &str = "instances.getLatestRecoveryTime";
        let inner = self.inner(OP, name, region).await?;
        let r = (inner.instances.get_latest_recovery_time())
            .set_project(project)
            .set_instance(name)
            .send()
            .await
            .map_err(|e| gax_error(SERVICE, OP, (name, region), &e))?;
        let latest = (r.latest_recovery_time.as_ref())
            .and_then(to_time)
            .ok_or_else(|| {
                err(
                    SERVICE,
                    OP,
                    name,
                    region,
                    ErrorKind::Client,
                    "the answer names no latest recovery time",
                )
            })?;
        Ok(RecoveryWindow {
            earliest: r.earliest_recovery_time.as_ref().and_then(to_time),
            latest,
        })
    }

    async fn operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<SqlOperation, CloudError> {
        const OP: &str = "operations.get";
        let inner = self.inner(OP, operation, region).await?;
        (inner.operations.get())
            .set_project(project)
            .set_operation(operation)
            .send()
            .await
            .map(|o| operation_of(&o))
            .map_err(|e| gax_error(SERVICE, OP, (operation, region), &e))
    }

    async fn operations(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<SqlOperation>, CloudError> {
        const OP: &str = "operations.list";
        let inner = self.inner(OP, name, region).await?;
        let mut out = Vec::new();
        let mut token = String::new();
        // Newest first: the operation a crashed run started is on the first
        // page; the next few are read too, and no more (an instance's
        // history is long, and older operations cannot be this run's).
        for _ in 0..OPERATION_PAGES {
            let r = (inner.operations.list())
                .set_project(project)
                .set_instance(name)
                .set_page_token(token)
                .send()
                .await
                .map_err(|e| gax_error(SERVICE, OP, (name, region), &e))?;
            out.extend(r.items.iter().map(operation_of));
            if r.next_page_token.is_empty() {
                break;
            }
            token = r.next_page_token;
        }
        Ok(out)
    }

    async fn sql_replica_lag(
        &self,
        region: &str,
        project: &str,
        name: &str,
        window: Duration,
    ) -> Result<LagReading, CloudError> {
        // One metric type per list (Monitoring's rule): both read at once.
        let (apply, network) = tokio::try_join!(
            self.series((region, project, name), LAG_METRIC, window),
            self.series((region, project, name), NETWORK_LAG_METRIC, window),
        )?;
        Ok(delay_of(&apply, &network, window))
    }
}

impl GcpSql {
    /// The points of `metric` for instance `name` over the last `window`.
    async fn series(
        &self,
        (region, project, name): (&str, &str, &str),
        metric: &str,
        window: Duration,
    ) -> Result<Vec<(DateTime<Utc>, f64)>, CloudError> {
        const OP: &str = "timeSeries.list";
        let inner = self.inner(OP, name, region).await?;
        let end = Utc::now();
        let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::zero());
        let filter = format!(
            "metric.type = \"{metric}\" AND resource.labels.database_id = \"{project}:{name}\""
        );
        let r = (inner.metrics.list_time_series())
            .set_name(format!("projects/{project}"))
            .set_filter(filter)
            .set_interval(
                google_cloud_monitoring_v3::model::TimeInterval::new()
                    .set_start_time(from_time(start))
                    .set_end_time(from_time(end)),
            )
            .send()
            .await
            .map_err(|e| gax_error("monitoring", OP, (name, region), &e))?;
        let points: Vec<(DateTime<Utc>, f64)> = (r.time_series.iter())
            .flat_map(|s| s.points.iter())
            .filter_map(|p| {
                let v = p.value.as_ref()?;
                let v = v
                    .double_value()
                    .copied()
                    .or_else(|| v.int64_value().map(|i| *i as f64))?;
                let t = p.interval.as_ref()?.end_time.as_ref().and_then(to_time)?;
                Some((t, v))
            })
            .collect();
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backup kept in the region, or in the multi-region holding it, is
    /// the region's; one elsewhere is not.
    #[test]
    fn a_backup_is_kept_in_its_region_or_the_multi_region_holding_it() {
        assert!(kept_in("us-east4", "us-east4"));
        assert!(kept_in("us", "us-east4"));
        assert!(kept_in("eu", "europe-west1"));
        assert!(!kept_in("us-central1", "us-east4"));
        assert!(!kept_in("eu", "us-east4"));
        assert!(!kept_in("us", "northamerica-northeast1"));
    }

    /// A list's `REGION_UNREACHABLE` warnings name the regions its
    /// instances may be missing from, once each; other warnings are not
    /// such a region.
    #[test]
    fn a_lists_unreachable_regions_are_read_from_its_warnings() {
        use model::api_warning::SqlApiWarningCode;
        let w = |code, region: &str| {
            model::ApiWarning::new()
                .set_code(code)
                .set_region(region)
                .set_message(format!("{region} is unreachable"))
        };
        let warnings = [
            w(SqlApiWarningCode::RegionUnreachable, "us-east4"),
            w(SqlApiWarningCode::MaxResultsExceedsLimit, "us-central1"),
            w(SqlApiWarningCode::RegionUnreachable, "us-east4"),
            w(SqlApiWarningCode::RegionUnreachable, ""),
        ];
        let mut out = vec![("us-west1".to_string(), "seen".to_string())];
        unreachable_of(&warnings, &mut out);
        let regions: Vec<&str> = out.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(regions, ["us-west1", "us-east4", "unknown region"]);
        assert_eq!(out[1].1, "us-east4 is unreachable");
    }

    #[test]
    fn a_primary_named_with_its_project_is_named_bare() {
        assert_eq!(bare_name("proj:orders-sql"), "orders-sql");
        assert_eq!(bare_name("orders-sql"), "orders-sql");
    }

    /// Issue 40: `replica_lag` measures only the apply delay; what the
    /// replica has not received (`network_lag`) adds to it. The RPO is the
    /// two added; with no network series, apply alone; with no apply
    /// series, unknown (never the network's figure alone, never zero).
    #[test]
    fn the_delay_is_apply_plus_network_and_unknown_stays_unknown() {
        let t0 = Utc::now();
        let w = Duration::from_secs(300);
        let t1 = t0 - chrono::Duration::seconds(60);
        let apply = [(t0, 2.0), (t1, 3.0)];
        let network = [(t0, 40.0), (t1, 10.0)];
        let r = delay_of(&apply, &network, w);
        assert_eq!(r.max, Some(Duration::from_secs(43)));
        assert_eq!(r.latest, Some((Duration::from_secs(42), t0)));
        assert_eq!(r.datapoints, 2);
        assert_eq!(delay_of(&apply, &[], w), lag_of(&apply, w));
        let unknown = delay_of(&[], &network, w);
        assert_eq!((unknown.max, unknown.latest), (None, None));
    }

    /// Issue 40: the write endpoint is read where Cloud SQL puts it
    /// (`replicationCluster.psaWriteEndpoint`, else `writeEndpoint`), and a
    /// record that follows the instance names it, not the instance's own
    /// DNS name; an instance with neither is followed by its own name.
    #[test]
    fn the_write_endpoint_is_what_a_record_follows() {
        let own = "abc.us-east4.sql.goog.";
        let psa = "103uufa2svq8u.2rb3qdj9tkf4d.global.sql-psa.goog.";
        let cluster = model::ReplicationCluster::new().set_psa_write_endpoint(psa);
        let i = model::DatabaseInstance::new()
            .set_name("orders-sql-use4")
            .set_dns_name(own)
            .set_replication_cluster(cluster.clone().set_dr_replica(true));
        let read = instance_of(&i);
        assert_eq!(read.endpoint.as_deref(), Some(own.trim_end_matches('.')));
        assert_eq!(
            read.write_endpoint.as_deref(),
            Some(psa.trim_end_matches('.'))
        );
        assert_eq!(read.followed_endpoint(), read.write_endpoint);
        let top = model::DatabaseInstance::new()
            .set_dns_name(own)
            .set_write_endpoint(psa);
        assert_eq!(instance_of(&top).write_endpoint, read.write_endpoint);
        let empty = i.set_replication_cluster(model::ReplicationCluster::new());
        let plain = instance_of(&empty);
        assert_eq!(plain.write_endpoint, None);
        assert_eq!(plain.followed_endpoint(), plain.endpoint);
    }

    #[test]
    fn no_points_is_an_unknown_lag_never_zero() {
        let r = lag_of(&[], Duration::from_secs(300));
        assert_eq!((r.max, r.latest, r.datapoints), (None, None, 0));
        let t0 = Utc::now();
        let r = lag_of(
            &[(t0, 2.0), (t0 - chrono::Duration::seconds(60), 9.0)],
            Duration::from_secs(300),
        );
        assert_eq!(r.max, Some(Duration::from_secs(9)));
        assert_eq!(r.latest, Some((Duration::from_secs(2), t0)));
    }
}
