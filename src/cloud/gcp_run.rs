//! Cloud Run adapter ([`CloudRun`]) over Google's official
//! `google-cloud-run-v2` (the Cloud Run Admin API v2's `Services` client:
//! `services.get`, `services.patch`).
//!
//! Why the service-level floor and not traffic, nor the revision's floor:
//! a Cloud Run service in a standby region already serves (it scales to
//! zero); what a failover must change is the floor it keeps warm. Google
//! recommends the service-level minimum (`scaling.minInstanceCount`,
//! the crate's `ServiceScaling`), which takes effect without deploying a
//! revision, over the revision-level one (`template.scaling`), which
//! rolls a new revision out on every change, a rollout that can fail
//! mid-incident, and advises against combining the two
//! (<https://cloud.google.com/run/docs/configuring/min-instances>). So a
//! write here is one patch of that field alone; a drill's marks are the
//! service's labels, written whole under the etag read.
//!
//! * The client is built as the Cloud SQL adapter builds its own
//!   ([`super::gcp_sql`]): at [`CloudSettings::gcp_endpoint`] with anonymous
//!   credentials when set (the emulator, `localstack/gcp_emu_run.py`),
//!   else at Google's endpoint with Application Default Credentials; on
//!   first use, so a plan with no Cloud Run needs no GCP credentials.
//! * Reads are retried by the crate within drctl's [`RetryPolicy`]; a
//!   patch is sent once (a lost answer is settled by the service's read,
//!   never by sending it again), after the fence at the wire ([`super::wire`]) is asked
//!   right before it is handed to the crate (docs/state.md, fenced calls).
//! * The patch's long-running operation is not polled (nor the crate's
//!   `poller()` used): the service's read says whether the change is
//!   still reconciled and whether it failed, and the steps read it with
//!   the run's pace and budget.

use super::gcp::{gax_error, gax_not_found};
use async_trait::async_trait;
use google_cloud_run_v2::client::Services;
use google_cloud_run_v2::model;
use tokio::sync::OnceCell;

use super::gcp::gcp_clients;
use super::retry::RetryPolicy;
use super::{CloudError, CloudRun, CloudSettings, ErrorKind, RunService};

const SERVICE: &str = "run";
/// The update mask of a service-level floor patch (the crate's field
/// names; Google takes them in snake or camel case).
pub const FLOOR_MASK: &str = "scaling.min_instance_count";
/// The update mask of a labels patch (the whole map is replaced).
pub const LABELS_MASK: &str = "labels";

/// [`CloudRun`] over the Cloud Run Admin API v2.
pub struct GcpRun {
    endpoint: Option<String>,
    retry: RetryPolicy,
    inner: OnceCell<Services>,
}

fn err(
    operation: &'static str,
    resource: &str,
    region: &str,
    kind: ErrorKind,
    message: impl Into<String>,
) -> CloudError {
    CloudError::new(SERVICE, operation, resource, region, kind, message)
}

/// The last segment of a resource name (`…/services/api` -> `api`).
pub fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// `projects/{project}/locations/{region}/services/{name}`.
pub fn service_name(project: &str, region: &str, name: &str) -> String {
    format!("projects/{project}/locations/{region}/services/{name}")
}

/// The domain's view of a service the API described.
pub fn service_of(s: &model::Service, region: &str) -> RunService {
    let scaling = s.template.as_ref().and_then(|t| t.scaling.as_ref());
    let count = |n: i32| u32::try_from(n).unwrap_or(0);
    let ready = (s.terminal_condition.as_ref())
        .filter(|c| c.r#type == "Ready")
        .or_else(|| s.conditions.iter().find(|c| c.r#type == "Ready"));
    RunService {
        name: short(&s.name).to_string(),
        region: region.to_string(),
        floor: s
            .scaling
            .as_ref()
            .map_or(0, |x| count(x.min_instance_count)),
        min_instances: scaling.map_or(0, |x| count(x.min_instance_count)),
        max_instances: scaling
            .and_then(|x| u32::try_from(x.max_instance_count).ok())
            .filter(|n| *n > 0),
        generation: s.generation,
        observed_generation: s.observed_generation,
        latest_created: short(&s.latest_created_revision).to_string(),
        latest_ready: short(&s.latest_ready_revision).to_string(),
        ready_state: ready.and_then(|c| c.state.name()).unwrap_or("").to_string(),
        ready_message: ready.map(|c| c.message.clone()).filter(|m| !m.is_empty()),
        reconciling: s.reconciling,
        etag: s.etag.clone(),
        labels: (s.labels.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

impl GcpRun {
    /// Builds the adapter; nothing is resolved until the first call.
    pub fn new(settings: &CloudSettings) -> Self {
        Self {
            endpoint: settings.gcp_endpoint.clone(),
            retry: settings.retry,
            inner: OnceCell::new(),
        }
    }

    async fn client(
        &self,
        op: &'static str,
        res: &str,
        region: &str,
    ) -> Result<&Services, CloudError> {
        self.inner
            .get_or_try_init(|| async {
                let fail = |kind, m: String| err(op, res, region, kind, m);
                Ok(gcp_clients!(self.endpoint.as_deref(), &self.retry, fail => Services))
            })
            .await
    }
}

#[async_trait]
impl CloudRun for GcpRun {
    async fn describe_run(
        &self,
        region: &str,
        project: &str,
        name: &str,
    ) -> Result<Option<RunService>, CloudError> {
        const OP: &str = "services.get";
        let client = self.client(OP, name, region).await?;
        match client
            .get_service()
            .set_name(service_name(project, region, name))
            .send()
            .await
        {
            Ok(s) => Ok(Some(service_of(&s, region))),
            Err(e) if gax_not_found(&e) => Ok(None),
            Err(e) => Err(gax_error(SERVICE, OP, (name, region), &e)),
        }
    }

    async fn set_run_floor(
        &self,
        region: &str,
        project: &str,
        name: &str,
        min: u32,
    ) -> Result<(), CloudError> {
        let scaling = model::ServiceScaling::new()
            .set_min_instance_count(i32::try_from(min).unwrap_or(i32::MAX));
        let service = model::Service::new()
            .set_name(service_name(project, region, name))
            .set_scaling(scaling);
        self.patch((region, name), service, FLOOR_MASK).await
    }

    async fn set_run_labels(
        &self,
        region: &str,
        project: &str,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
        etag: &str,
    ) -> Result<(), CloudError> {
        let service = model::Service::new()
            .set_name(service_name(project, region, name))
            .set_labels(labels.clone())
            .set_etag(etag);
        self.patch((region, name), service, LABELS_MASK).await
    }
}

impl GcpRun {
    /// Sends one patch of `service` with `mask`, once, after the fence.
    async fn patch(
        &self,
        (region, name): (&str, &str),
        service: model::Service,
        mask: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "services.patch";
        let client = self.client(OP, name, region).await?;
        let send = (client.update_service())
            .set_service(service)
            .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths([mask]))
            .send();
        super::gcp::gax_write((SERVICE, OP), (name, region), send, |_| ()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(state: model::condition::State, message: &str) -> model::Condition {
        model::Condition::new()
            .set_type("Ready")
            .set_state(state)
            .set_message(message)
    }

    #[test]
    fn a_service_read_names_its_revisions_short_and_says_whether_it_serves() {
        let base = model::Service::new()
            .set_name("projects/p/locations/us-east4/services/api")
            .set_generation(2)
            .set_observed_generation(2)
            .set_latest_created_revision(
                "projects/p/locations/us-east4/services/api/revisions/api-00002-abc",
            )
            .set_latest_ready_revision(
                "projects/p/locations/us-east4/services/api/revisions/api-00002-abc",
            )
            .set_template(
                model::RevisionTemplate::new()
                    .set_scaling(model::RevisionScaling::new().set_min_instance_count(3)),
            )
            .set_scaling(model::ServiceScaling::new().set_min_instance_count(2))
            .set_labels([("drctl-drill-restore", "1")])
            .set_terminal_condition(condition(model::condition::State::ConditionSucceeded, ""));
        let s = service_of(&base, "us-east4");
        assert_eq!(
            (s.name.as_str(), s.floor, s.min_instances, s.max_instances),
            ("api", 2, 3, None)
        );
        assert_eq!(s.labels["drctl-drill-restore"], "1");
        assert_eq!(s.latest_ready, "api-00002-abc");
        assert!(s.serves() && !s.failed());

        let failed = base
            .clone()
            .set_latest_ready_revision(
                "projects/p/locations/us-east4/services/api/revisions/api-00001-xyz",
            )
            .set_terminal_condition(condition(
                model::condition::State::ConditionFailed,
                "Revision 'api-00002-abc' is not ready and cannot serve traffic.",
            ));
        let f = service_of(&failed, "us-east4");
        assert!(!f.serves() && f.failed());
        assert_eq!(f.ready_state, "CONDITION_FAILED");
        assert!(f.ready_message.unwrap().contains("api-00002-abc"));

        // A generation not yet observed neither serves nor failed.
        let pending = service_of(&base.clone().set_generation(3), "us-east4");
        assert!(!pending.serves() && !pending.failed());
        // No Ready condition at all: not serving (unknown is never ready).
        let bare = service_of(
            &base.set_terminal_condition(model::Condition::new()),
            "us-east4",
        );
        assert_eq!(bare.ready_state, "");
        assert!(!bare.serves());
    }
}
