//! Regional managed instance groups ([`InstanceGroups`]) over Google's
//! official `google-cloud-compute-v1`, built with only the three clients
//! drctl calls (region instance group managers, region autoscalers, region
//! operations: the crate is huge with its defaults).
//!
//! * Clients are built as the Cloud SQL adapter builds its own
//!   ([`super::gcp_sql`]): at [`CloudSettings::gcp_endpoint`] (an emulator,
//!   `localstack/gcp_emu.py`) with anonymous credentials when it is set,
//!   else at Google's endpoint with Application Default Credentials; on
//!   first use, so a plan without an `[[instance_group]]` never needs them.
//!   Errors are classified by the one mapping of every Google crate
//!   ([`super::gcp::classify_gax`]).
//! * Reads are retried by the crate, bounded to drctl's [`RetryPolicy`].
//!   Writes (`resize`, an autoscaler's `patch`) are not retried by the
//!   crate (no idempotency it can see) and carry a `requestId`: Compute
//!   answers a request id it has seen with the operation it made, so a
//!   resumed step that sends its write again does not make it twice.
//! * The fence at the wire ([`super::wire`]) is asked right before each
//!   write is handed to the crate, as for Cloud SQL (docs/state.md,
//!   fenced calls).
//! * A write answers a regional operation that is `DONE` when the change is
//!   scheduled; the crate's poller is not used: the step polls
//!   [`InstanceGroups::mig_operation`] and then the instances themselves
//!   with the run's pace.

use super::gcp::{gax_error, gax_not_found};
use async_trait::async_trait;
use google_cloud_compute_v1::client::{
    RegionAutoscalers, RegionInstanceGroupManagers, RegionOperations,
};
use google_cloud_compute_v1::model;
use tokio::sync::OnceCell;

use super::gcp::gcp_clients;
use super::retry::RetryPolicy;
use super::{
    CloudError, CloudSettings, ErrorKind, InstanceGroups, MigAutoscaler, MigGroup, MigInstance,
    MigOperation,
};

const SERVICE: &str = "compute";

/// [`InstanceGroups`] over Compute Engine v1.
pub struct GcpMig {
    endpoint: Option<String>,
    retry: RetryPolicy,
    inner: OnceCell<Inner>,
}

struct Inner {
    groups: RegionInstanceGroupManagers,
    autoscalers: RegionAutoscalers,
    operations: RegionOperations,
}

fn err(op: &'static str, res: &str, region: &str, kind: ErrorKind, m: String) -> CloudError {
    CloudError::new(SERVICE, op, res, region, kind, m)
}

/// The last segment of a Compute URL (`.../autoscalers/a` is `a`).
pub fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn count(n: Option<i32>) -> u32 {
    u32::try_from(n.unwrap_or(0)).unwrap_or(0)
}

/// The domain's view of a group Compute described.
pub fn group_of(g: &model::InstanceGroupManager, region: &str) -> MigGroup {
    let status = g.status.as_ref();
    let actions = g.current_actions.as_ref();
    MigGroup {
        name: g.name.clone().unwrap_or_default(),
        region: region.to_string(),
        target_size: count(g.target_size),
        stable: status.and_then(|s| s.is_stable).unwrap_or(false),
        autoscaler: (status.and_then(|s| s.autoscaler.as_deref()))
            .filter(|a| !a.is_empty())
            .map(|a| last_segment(a).to_string()),
        idle: count(actions.and_then(|a| a.none)),
        creating: count(actions.and_then(|a| a.creating))
            + count(actions.and_then(|a| a.creating_without_retries)),
    }
}

/// The domain's view of an instance of a group.
pub fn instance_of(i: &model::ManagedInstance) -> MigInstance {
    let errors = (i.last_attempt.as_ref())
        .and_then(|a| a.errors.as_ref())
        .map(|e| {
            (e.errors.iter())
                .map(|x| {
                    let code = x.code.as_deref().unwrap_or_default();
                    let message = x.message.as_deref().unwrap_or_default();
                    match (code.is_empty(), message.is_empty()) {
                        (false, false) => format!("{code}: {message}"),
                        (true, _) => message.to_string(),
                        (false, true) => code.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let name = i
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| last_segment(i.instance.as_deref().unwrap_or_default()).to_string());
    MigInstance {
        name,
        action: (i.current_action.as_ref())
            .and_then(|a| a.name())
            .unwrap_or("UNKNOWN")
            .to_string(),
        status: (i.instance_status.as_ref())
            .and_then(|s| s.name())
            .map(str::to_string),
        errors,
    }
}

/// The domain's view of a regional operation.
pub fn operation_of(o: &model::Operation) -> MigOperation {
    let error = (o.error.as_ref())
        .filter(|e| !e.errors.is_empty())
        .map(|e| {
            (e.errors.iter())
                .map(|x| {
                    format!(
                        "{}: {}",
                        x.code.as_deref().unwrap_or("ERROR"),
                        x.message.as_deref().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        });
    MigOperation {
        name: o.name.clone().unwrap_or_default(),
        kind: o.operation_type.clone().unwrap_or_default(),
        done: (o.status.as_ref()).and_then(|s| s.name()) == Some("DONE"),
        error,
    }
}

impl GcpMig {
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
                let fail = |kind, m: String| err(op, res, region, kind, m);
                Ok(
                    gcp_clients!(self.endpoint.as_deref(), &self.retry, fail => Inner {
                        groups: RegionInstanceGroupManagers,
                        autoscalers: RegionAutoscalers,
                        operations: RegionOperations,
                    }),
                )
            })
            .await
    }
}

#[async_trait]
impl InstanceGroups for GcpMig {
    async fn describe_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigGroup>, CloudError> {
        const OP: &str = "regionInstanceGroupManagers.get";
        let inner = self.inner(OP, name, region).await?;
        match (inner.groups.get())
            .set_project(project)
            .set_region(region)
            .set_instance_group_manager(name)
            .send()
            .await
        {
            Ok(g) => Ok(Some(group_of(&g, region))),
            Err(e) if gax_not_found(&e) => Ok(None),
            Err(e) => Err(gax_error(SERVICE, OP, (name, region), &e)),
        }
    }

    async fn mig_instances(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Vec<MigInstance>, CloudError> {
        const OP: &str = "regionInstanceGroupManagers.listManagedInstances";
        let inner = self.inner(OP, name, region).await?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        // Every page (a regional group lists at most 500 a page).
        loop {
            let r = (inner.groups.list_managed_instances())
                .set_project(project)
                .set_region(region)
                .set_instance_group_manager(name)
                .set_or_clear_page_token(token.clone())
                .send()
                .await
                .map_err(|e| gax_error(SERVICE, OP, (name, region), &e))?;
            out.extend(r.managed_instances.iter().map(instance_of));
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    async fn resize_mig(
        &self,
        region: &str,
        project: &str,
        name: &str,
        size: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        const OP: &str = "regionInstanceGroupManagers.resize";
        let inner = self.inner(OP, name, region).await?;
        let size = i32::try_from(size).map_err(|_| {
            err(
                OP,
                name,
                region,
                ErrorKind::Client,
                format!("size {size} is out of range"),
            )
        })?;
        super::gcp::gax_write(
            (SERVICE, OP),
            (name, region),
            (inner.groups.resize())
                .set_project(project)
                .set_region(region)
                .set_instance_group_manager(name)
                .set_size(size)
                .set_request_id(request_id)
                .send(),
            operation_of,
        )
        .await
    }

    async fn mig_autoscaler(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<MigAutoscaler>, CloudError> {
        const OP: &str = "regionAutoscalers.get";
        let inner = self.inner(OP, name, region).await?;
        match (inner.autoscalers.get())
            .set_project(project)
            .set_region(region)
            .set_autoscaler(name)
            .send()
            .await
        {
            Ok(a) => {
                let p = a.autoscaling_policy.as_ref();
                Ok(Some(MigAutoscaler {
                    name: a.name.clone().unwrap_or_else(|| name.to_string()),
                    min: count(p.and_then(|p| p.min_num_replicas)),
                    max: count(p.and_then(|p| p.max_num_replicas)),
                }))
            }
            Err(e) if gax_not_found(&e) => Ok(None),
            Err(e) => Err(gax_error(SERVICE, OP, (name, region), &e)),
        }
    }

    async fn set_autoscaler_min(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
        request_id: &str,
    ) -> Result<MigOperation, CloudError> {
        const OP: &str = "regionAutoscalers.patch";
        let inner = self.inner(OP, name, region).await?;
        let min = i32::try_from(min).map_err(|_| {
            err(
                OP,
                name,
                region,
                ErrorKind::Client,
                format!("minimum {min} is out of range"),
            )
        })?;
        let body = model::Autoscaler::new()
            .set_name(name)
            .set_autoscaling_policy(model::AutoscalingPolicy::new().set_min_num_replicas(min));
        super::gcp::gax_write(
            (SERVICE, OP),
            (name, region),
            (inner.autoscalers.patch())
                .set_project(project)
                .set_region(region)
                .set_autoscaler(name)
                .set_request_id(request_id)
                .set_body(body)
                .send(),
            operation_of,
        )
        .await
    }

    async fn mig_operation(
        &self,
        region: &str,
        project: &str,
        operation: &str,
    ) -> Result<MigOperation, CloudError> {
        const OP: &str = "regionOperations.get";
        let inner = self.inner(OP, operation, region).await?;
        (inner.operations.get())
            .set_project(project)
            .set_region(region)
            .set_operation(operation)
            .send()
            .await
            .map(|o| operation_of(&o))
            .map_err(|e| gax_error(SERVICE, OP, (operation, region), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_knows_the_reads_from_the_writes_by_their_names() {
        for read in [
            "regionInstanceGroupManagers.get",
            "regionInstanceGroupManagers.listManagedInstances",
            "regionAutoscalers.get",
            "regionOperations.get",
        ] {
            assert!(super::super::wire::is_read(read), "{read}");
        }
        for write in [
            "regionInstanceGroupManagers.resize",
            "regionAutoscalers.patch",
        ] {
            assert!(!super::super::wire::is_read(write), "{write}");
        }
    }

    #[test]
    fn a_group_read_names_its_autoscaler_and_counts_its_instances() {
        let g = model::InstanceGroupManager::new()
            .set_name("orders-workers")
            .set_target_size(3)
            .set_current_actions(
                model::InstanceGroupManagerActionsSummary::new()
                    .set_creating(1)
                    .set_creating_without_retries(1)
                    .set_none(1),
            )
            .set_status(
                model::InstanceGroupManagerStatus::new()
                    .set_is_stable(false)
                    .set_autoscaler("https://www.googleapis.com/compute/v1/projects/p/regions/us-east4/autoscalers/w-as"),
            );
        let read = group_of(&g, "us-east4");
        assert_eq!(
            (read.target_size, read.stable, read.idle, read.creating),
            (3, false, 1, 2)
        );
        assert_eq!(read.autoscaler.as_deref(), Some("w-as"));
        // Nothing said is not stable, and no autoscaler.
        let bare = group_of(&model::InstanceGroupManager::new(), "us-east4");
        assert!(!bare.stable && bare.autoscaler.is_none());
    }

    #[test]
    fn an_operation_is_done_only_when_compute_says_done_and_names_its_errors() {
        let o = model::Operation::new()
            .set_name("operation-1")
            .set_status(model::operation::Status::Running);
        assert!(!operation_of(&o).done);
        let o = o.set_status(model::operation::Status::Done).set_error(
            model::operation::Error::new().set_errors([model::operation::error::Errors::new()
                .set_code("QUOTA_EXCEEDED")
                .set_message("Quota 'CPUS' exceeded.")]),
        );
        let read = operation_of(&o);
        assert!(read.done);
        assert_eq!(
            read.error.as_deref(),
            Some("QUOTA_EXCEEDED: Quota 'CPUS' exceeded.")
        );
    }
}
