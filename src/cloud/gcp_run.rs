//! Cloud Run adapter (the capacity role's port, [`Scaler`]) over Google's official
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

use std::collections::BTreeMap;

use super::gcp::gcp_clients;
use super::metered::Wire;
use super::retry::RetryPolicy;
use super::{
    Capacity, Change, CloudError, CloudSettings, ComputeGroup, ErrorKind, PairForm, Reading,
    RunService, Scaler, ScalingCalls, Size,
};

const SERVICE: &str = "run";
/// The update mask of a service-level floor patch (the crate's field
/// names; Google takes them in snake or camel case).
pub const FLOOR_MASK: &str = "scaling.min_instance_count";
/// The update mask of a labels patch (the whole map is replaced).
pub const LABELS_MASK: &str = "labels";

/// The calls of `[[cloud_run]]`'s capacity role: a floor and labels are
/// both a `services.patch` (of a different field).
pub const CALLS: ScalingCalls = ScalingCalls {
    kind: "cloud_run",
    read: "run:services.get",
    set: "run:services.patch",
    mark: "run:services.patch",
    unmark: "run:services.patch",
    calls: &["run:services.get", "run:services.patch"],
    waits: &["run:services.patch"],
};

/// `project/service`: a group's two names (a service's name is at most
/// 49 characters; a project's id fewer).
pub const FORM: PairForm = PairForm {
    max: 49,
    form: "project/service",
};

/// The capacity role's port ([`Scaler`]) over the Cloud Run Admin API v2.
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

/// The API's own calls, below the port: what the role's actions are made
/// of, and what the emulator suite checks Cloud Run's answers with
/// (`tests/it/gcp_run.rs`). drctl's steps go through the port.
impl GcpRun {
    /// Reads service `name` of `project` in `region` (`services.get`);
    /// `Ok(None)` when it does not exist.
    pub async fn describe_run(
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

    /// Sets the service-level floor, `scaling.minInstanceCount`, to `min`
    /// (`services.patch` with that update mask): no new revision.
    pub async fn set_run_floor(
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

    /// Replaces the service's labels with `labels` (`services.patch` with
    /// the update mask `labels`), conditional on `etag`: a service whose
    /// labels changed since they were read is refused, not overwritten.
    pub async fn set_run_labels(
        &self,
        region: &str,
        project: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
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

/// A service's status as `status` shows a group's: `ACTIVE` when its latest
/// revision serves, else what the service says (`RECONCILING`, `FAILED`
/// and the `Ready` condition's message, or its state).
pub fn status_of(s: &RunService) -> String {
    std::iter::once(state_of(s))
        .chain(notes_of(s))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What people should know of a service beside its state (pure): a
/// revision-level floor, which keeps more warm than the service's; and a
/// service with no minimum instance at either level, whose cross-region
/// service health Cloud Run cannot compute ("You must configure at least
/// one service-level or revision-level minimum instance per region to
/// calculate health": Google's Cloud Run service health documentation),
/// so that a global load balancer's automated failover does not see it.
pub fn notes_of(s: &RunService) -> Vec<String> {
    match (s.floor, s.min_instances) {
        (_, n @ 1..) => vec![format!(
            "revision floor {n} (template.scaling) keeps more warm"
        )],
        (0, 0) => vec![
            "no minimum instance: Cloud Run's service health (a global load balancer's cross-region failover) is not computed for this region; a floor of at least 1 turns it on"
                .into(),
        ],
        _ => Vec::new(),
    }
}

fn state_of(s: &RunService) -> String {
    if s.serves() {
        return "ACTIVE".into();
    }
    if s.reconciling || s.observed_generation < s.generation {
        return "RECONCILING".into();
    }
    let state = s.ready_state.trim_start_matches("CONDITION_");
    let state = if state.is_empty() { "NOT_READY" } else { state };
    match &s.ready_message {
        Some(m) => format!("{state}: {m}"),
        None => state.to_string(),
    }
}

/// Cloud Run's maximum instances when a service sets none.
pub const DEFAULT_MAX_INSTANCES: u32 = 100;

/// A service read as a group of `status`: its minimum instances as min and
/// desired (the floor a failover sets), its maximum instances as max (what
/// `status` asks of a standby: that it can reach the active floor, not that
/// it keeps it warm already), its status by [`status_of`].
pub fn as_group(s: RunService) -> ComputeGroup {
    let n = s.floor;
    ComputeGroup {
        status: Some(state_of(&s)),
        notes: notes_of(&s),
        target_groups: Vec::new(),
        name: s.name,
        region: s.region,
        capacity: Capacity {
            min: n,
            desired: n,
            max: s.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES),
        },
        in_service: 0,
        instances: 0,
        tags: s.labels,
    }
}

/// The prefix of drctl's labels on a service (Google's keys take no `:`).
const LABEL_PREFIX: &str = "drctl-drill-";
/// The prefix of drctl's drill tags (`steps::drill_names`).
const TAG_PREFIX: &str = "drctl:drill-";

/// A drill mark as a label Google takes (pure): the key with `-` for
/// `:`; the value lowered, `_` for `:` and for anything else outside the
/// labels' alphabet (a run id and an RFC 3339 expiry read back exactly
/// with [`mark_of`]).
pub fn label_of(key: &str, value: &str) -> (String, String) {
    let key = key.replacen(TAG_PREFIX, LABEL_PREFIX, 1);
    let value = (value.chars())
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '_',
        })
        .collect();
    (key, value)
}

/// A label of drctl's read back as its drill mark (pure; `None`: not
/// drctl's). A run id's and an expiry's `T` and `Z` (the only capitals
/// they have) and an expiry's colons come back.
pub fn mark_of(key: &str, value: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(LABEL_PREFIX)?;
    let stamp = |v: &str, at: &[usize]| -> String {
        (v.char_indices())
            .map(|(i, c)| match c {
                't' | 'z' if at.contains(&i) => c.to_ascii_uppercase(),
                _ => c,
            })
            .collect()
    };
    let value = match rest {
        // `20261122t041530z-drill-orders-3f9a`
        "run" => stamp(value, &[8, 15]),
        // `2026-11-22t04_15_30z`
        "expires" => stamp(value, &[10, 19]).replace('_', ":"),
        _ => value.to_string(),
    };
    Some((format!("{TAG_PREFIX}{rest}"), value))
}

/// A service as the capacity role reads it (pure): its size is the
/// service-level floor, serving once the latest revision serves; a change
/// not yet reconciled is under way, a failed one named by its generation.
pub fn reading(s: RunService, group: &str) -> Reading {
    let change = if s.failed() {
        Change::Failed {
            id: format!("generation {}", s.generation),
            reason: (s.ready_message.clone()).unwrap_or_else(|| "no reason given".into()),
        }
    } else if s.reconciling || s.observed_generation < s.generation {
        Change::Rolling(format!("generation {}", s.generation))
    } else {
        Change::Settled
    };
    Reading {
        size: Size::Count(s.floor),
        serving: if s.serves() { s.floor } else { 0 },
        change,
        marks: (s.labels.iter())
            .filter_map(|(k, v)| mark_of(k, v))
            .collect(),
        handle: group.to_string(),
        state: status_of(&s),
        ceiling: None,
        balanced_by: Vec::new(),
        targets: Vec::new(),
    }
}

impl GcpRun {
    /// Reads service `group` (`project/service`) through `wire`.
    async fn get(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<RunService>, CloudError> {
        let (project, name) = FORM.names(group, CALLS.read, region)?;
        let read = || self.describe_run(region, project, name);
        wire.call(CALLS.read, region, read).await
    }

    /// Rewrites the labels of service `group` (read fresh, so the etag
    /// guards what another writer changed meanwhile): `edit` gets them.
    async fn relabel(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        edit: impl FnOnce(&mut BTreeMap<String, String>) + Send,
    ) -> Result<(), CloudError> {
        let (project, name) = FORM.names(group, CALLS.mark, region)?;
        let Some(s) = self.get(wire, region, group).await? else {
            let kind = ErrorKind::NotFound;
            return Err(CloudError::of_call(
                CALLS.mark,
                name,
                region,
                kind,
                "service not found",
            ));
        };
        let mut labels = s.labels.clone();
        edit(&mut labels);
        if labels == s.labels {
            return Ok(());
        }
        let patch = || self.set_run_labels(region, project, name, &labels, &s.etag);
        wire.call(CALLS.mark, region, patch).await
    }
}

/// The capacity role over Cloud Run: services named `project/service`,
/// sized by their service-level floor, marked with labels.
#[async_trait]
impl Scaler for GcpRun {
    fn calls(&self) -> &'static ScalingCalls {
        &CALLS
    }

    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        Ok(self
            .get(wire, region, group)
            .await?
            .map(|s| reading(s, group)))
    }

    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        Ok(self.get(wire, region, group).await?.map(as_group))
    }

    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let (project, name) = FORM.names(group, CALLS.set, region)?;
        let patch = || self.set_run_floor(region, project, name, size.serving());
        wire.call(CALLS.set, region, patch).await?;
        Ok(None)
    }

    async fn mark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let add = |labels: &mut BTreeMap<String, String>| {
            labels.extend(marks.iter().map(|(k, v)| label_of(k, v)));
        };
        self.relabel(wire, region, &read.handle, add).await
    }

    async fn unmark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        let take = |labels: &mut BTreeMap<String, String>| {
            for k in keys {
                labels.remove(&label_of(k, "").0);
            }
        };
        self.relabel(wire, region, &read.handle, take).await
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

    fn service() -> RunService {
        RunService {
            name: "api".into(),
            region: "us-east4".into(),
            floor: 3,
            min_instances: 0,
            max_instances: Some(20),
            generation: 2,
            observed_generation: 2,
            latest_created: "api-00002-aaa".into(),
            latest_ready: "api-00002-aaa".into(),
            ready_state: "CONDITION_SUCCEEDED".into(),
            ready_message: None,
            reconciling: false,
            etag: "e2".into(),
            labels: BTreeMap::new(),
        }
    }

    #[test]
    fn a_serving_service_is_active_else_it_says_what_it_is() {
        let s = service();
        assert_eq!(status_of(&s), "ACTIVE");
        let g = as_group(s.clone());
        let mut unset = s.clone();
        unset.max_instances = None;
        assert_eq!(as_group(unset).capacity.max, DEFAULT_MAX_INSTANCES);
        assert_eq!(
            (g.capacity.min, g.capacity.desired, g.capacity.max),
            (3, 3, 20)
        );
        let mut r = s.clone();
        r.reconciling = true;
        r.ready_state = "CONDITION_RECONCILING".into();
        assert_eq!(status_of(&r), "RECONCILING");
        let mut f = s;
        f.ready_state = "CONDITION_FAILED".into();
        f.latest_ready = "api-00001-aaa".into();
        f.ready_message = Some("Revision 'api-00002-aaa' is not ready".into());
        assert_eq!(
            status_of(&f),
            "FAILED: Revision 'api-00002-aaa' is not ready"
        );
    }

    /// Either floor keeps service health computed; with neither, the
    /// service says so, in a note (never its state: `status` judges a
    /// standby by its state, and a floor of 0 is the plan's choice). A
    /// revision-level floor is a note too, not a state that is not ACTIVE.
    #[test]
    fn a_service_with_no_minimum_instance_says_its_health_is_not_computed() {
        let mut s = service();
        assert_eq!(notes_of(&s), Vec::<String>::new(), "the service floor");
        s.floor = 0;
        let none = notes_of(&s);
        assert!(
            none.len() == 1
                && none[0].starts_with("no minimum instance: Cloud Run's service health"),
            "{none:?}"
        );
        let g = as_group(s.clone());
        assert_eq!((g.status.as_deref(), &g.notes), (Some("ACTIVE"), &none));
        assert_eq!(status_of(&s), format!("ACTIVE; {}", none[0]));
        s.min_instances = 1;
        let revision = notes_of(&s);
        assert_eq!(
            revision,
            ["revision floor 1 (template.scaling) keeps more warm"]
        );
        let g = as_group(s);
        assert_eq!((g.status.as_deref(), g.notes), (Some("ACTIVE"), revision));
    }

    /// A drill's marks survive Google's label alphabet: the run id and
    /// the expiry come back exactly, so a sweep without the journal finds
    /// the drill and its deadline; the owner comes back lowered.
    #[test]
    fn drill_marks_round_trip_through_labels() {
        let now = chrono::Utc::now();
        let run = crate::journal::new_run_id("drill-orders-gcp");
        let expires = now + chrono::Duration::minutes(30);
        let mut tags = crate::steps::drill_names::tags(&run, "Host-1.example/pid 42", expires);
        tags.insert(crate::steps::drill_names::RESTORE_TAG.into(), "0".into());
        let labels: BTreeMap<String, String> = (tags.iter()).map(|(k, v)| label_of(k, v)).collect();
        for (k, v) in &labels {
            let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
            assert!(
                k.len() <= 63 && k.starts_with("drctl-drill-") && k.chars().all(ok),
                "{k}"
            );
            assert!(v.len() <= 63 && v.chars().all(ok), "{k}={v}");
        }
        let back: BTreeMap<String, String> =
            (labels.iter()).filter_map(|(k, v)| mark_of(k, v)).collect();
        let rt = crate::steps::drill_names::RUN_TAG;
        assert_eq!(back[rt], run);
        assert_eq!(
            crate::steps::drill_names::expiry(&back)
                .unwrap()
                .timestamp(),
            expires.timestamp()
        );
        assert_eq!(
            back[crate::steps::drill_names::OWNER_TAG],
            "host-1_example_pid_42"
        );
        assert_eq!(back[crate::steps::drill_names::RESTORE_TAG], "0");
        assert_eq!(mark_of("team", "payments"), None);
    }

    /// The size is the service's floor; a revision-level floor is named
    /// beside it; a failed change is named by its generation and reason.
    #[test]
    fn a_service_reads_its_floor_and_names_a_revision_floor_or_a_failure() {
        let mut s = service();
        s.min_instances = 2;
        let r = reading(s.clone(), "acme-orders/api");
        assert_eq!(
            (r.size, r.serving, r.change.clone()),
            (Size::Count(3), 3, Change::Settled)
        );
        assert!(r.state.contains("revision floor 2"), "{}", r.state);
        s.generation = 3;
        s.reconciling = true;
        assert_eq!(
            reading(s.clone(), "g").change,
            Change::Rolling("generation 3".into())
        );
        s.reconciling = false;
        s.observed_generation = 3;
        s.ready_state = "CONDITION_FAILED".into();
        s.ready_message = Some("Quota exceeded".into());
        let f = reading(s, "g");
        assert_eq!(
            (f.serving, f.change),
            (
                0,
                Change::Failed {
                    id: "generation 3".into(),
                    reason: "Quota exceeded".into()
                }
            )
        );
    }
}
