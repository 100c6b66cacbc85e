//! Regional managed instance groups (the capacity role's port, [`Scaler`]) over Google's
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
//!   [`Scaler::operation`] and then the instances themselves with the
//!   run's pace.
//!
//! The adapter implements the capacity role itself ([`Scaler`]): a group
//! is named `project/group`, sized by its autoscaler's minimum when it has
//! one (a resize would be undone by it) and else by its target size, and
//! read straight into the role's [`Reading`]. How Compute's answers map to
//! a reading, and which write a size takes ([`write_of`]), are tested here
//! on answers of Compute's shape, and against the emulator by the
//! emulator suite (`tests/it/gcp_mig.rs`).

use super::gcp::{gax_error, gax_not_found};
use async_trait::async_trait;
use google_cloud_compute_v1::client::{
    RegionAutoscalers, RegionInstanceGroupManagers, RegionOperations,
};
use google_cloud_compute_v1::model;
use tokio::sync::OnceCell;

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::gcp::gcp_clients;
use super::metered::Wire;
use super::retry::RetryPolicy;
use super::{
    Capacity, Change, CloudError, CloudSettings, ComputeGroup, ErrorKind, MigAutoscaler, MigGroup,
    MigInstance, MigOperation, PairForm, Reading, Scaler, ScalingCalls, Size,
};

const SERVICE: &str = "compute";

const GET: &str = "compute:regionInstanceGroupManagers.get";
const AUTOSCALER_GET: &str = "compute:regionAutoscalers.get";
const INSTANCES: &str = "compute:regionInstanceGroupManagers.listManagedInstances";
const RESIZE: &str = "compute:regionInstanceGroupManagers.resize";
const OPERATION: &str = "compute:regionOperations.get";
/// The write of an autoscaled group's size: its autoscaler's minimum.
pub const AUTOSCALER_PATCH: &str = "compute:regionAutoscalers.patch";

/// The most instances a regional managed instance group holds (Compute
/// Engine: "a regional MIG can contain up to 2,000 VMs"): the ceiling of a
/// group without an autoscaler.
pub const MAX_REGIONAL_SIZE: u32 = 2000;

/// The calls of `[[instance_group]]`'s capacity role. Its groups take no
/// labels: no mark is ever written.
pub const CALLS: ScalingCalls = ScalingCalls {
    kind: "instance_group",
    read: GET,
    set: RESIZE,
    mark: "",
    unmark: "",
    calls: &[
        GET,
        AUTOSCALER_GET,
        INSTANCES,
        RESIZE,
        AUTOSCALER_PATCH,
        OPERATION,
    ],
    waits: &[RESIZE],
};

/// `project/group`: a group's two names (Compute's names are at most 63
/// characters).
pub const FORM: PairForm = PairForm {
    max: 63,
    form: "project/group",
};

/// The capacity role's port ([`Scaler`]) over Compute Engine v1.
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

/// Compute's own calls, below the port: what the role's actions are made
/// of, and what the emulator suite checks Compute's answers with
/// (`tests/it/gcp_mig.rs`). drctl's steps go through the port.
impl GcpMig {
    /// Reads group `name` of `project` in `region`; `Ok(None)` when it does
    /// not exist.
    pub async fn describe_mig(
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

    /// Lists its instances, every page.
    pub async fn mig_instances(
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

    /// Resizes it to `size` (`resize`, carrying `request_id`): the operation
    /// Compute answers.
    pub async fn resize_mig(
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

    /// Reads autoscaler `name`; `Ok(None)` when it does not exist.
    pub async fn mig_autoscaler(
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

    /// Sets autoscaler `name`'s minimum (`patch`, carrying `request_id`).
    pub async fn set_autoscaler_min(
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

    /// Reads regional operation `operation`.
    pub async fn mig_operation(
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

/// The `requestId` of the write named `key`: a UUID (Compute takes only
/// those) derived from it, so the same write is the same request.
pub fn request_id(key: &str) -> String {
    let h = Sha256::digest(format!("drctl/{key}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50; // version 5 (name-based)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x = hex::encode(b);
    let parts = [&x[..8], &x[8..12], &x[12..16], &x[16..20], &x[20..]];
    parts.join("-")
}

/// A group as the role reads it (pure): sized by its autoscaler's minimum
/// when it has one (its maximum the read's ceiling), serving the instances
/// running with nothing under way.
///
/// A group Compute does not call stable is no change under way to wait
/// out before a write: a group whose instances cannot start (a zone out of
/// stock) or are being recreated (autohealing) may stay so for good, and a
/// raise must still be sent, a drill's return still made (it removes the
/// instances that fail). What serves is counted from the instances, and
/// stability is said in the state.
pub fn mig_reading(
    group: &str,
    g: &MigGroup,
    scaler: Option<&MigAutoscaler>,
    instances: &[MigInstance],
) -> Reading {
    let running = instances.iter().filter(|i| i.running()).count() as u32;
    let errors: Vec<String> = (instances.iter())
        .filter(|i| !i.errors.is_empty())
        .map(|i| format!("{}: {}", i.name, i.errors.join("; ")))
        .collect();
    let mut state = format!("target size {}", g.target_size);
    if let Some(a) = scaler {
        state.push_str(&format!(
            ", autoscaler {} min {} max {}",
            a.name, a.min, a.max
        ));
    }
    state.push_str(&format!(
        ", {running} running, {}",
        if g.stable { "stable" } else { "not stable" }
    ));
    if !errors.is_empty() {
        state.push_str(&format!("; its instances' errors: {}", errors.join(" | ")));
    }
    Reading {
        size: Size::Count(scaler.map_or(g.target_size, |a| a.min)),
        serving: running,
        change: Change::Settled,
        marks: BTreeMap::new(),
        handle: group.to_string(),
        state,
        ceiling: scaler.map(|a| a.max),
        balanced_by: Vec::new(),
        targets: Vec::new(),
    }
}

/// A group as `status` shows it: its target size between its autoscaler's
/// bounds (without one, 0 and Compute's ceiling), the instances with
/// nothing under way as in service, and notes for people.
pub fn shown(g: MigGroup, scaler: Option<&MigAutoscaler>) -> ComputeGroup {
    let (min, max) = scaler.map_or((0, MAX_REGIONAL_SIZE), |a| (a.min, a.max));
    // Which autoscaler sizes it (a failover raises its minimum), and a
    // group Compute does not call stable (instances being created or
    // recreated), as the role's reading says them.
    let mut notes: Vec<String> = (scaler.iter())
        .map(|a| format!("autoscaler {} {}..{}", a.name, a.min, a.max))
        .collect();
    if !g.stable {
        notes.push("not stable: instances are being created or recreated".into());
    }
    ComputeGroup {
        name: g.name,
        region: g.region,
        capacity: Capacity {
            min,
            desired: g.target_size,
            max,
        },
        in_service: g.idle,
        instances: g.idle + g.creating,
        tags: Default::default(),
        status: None,
        notes,
        target_groups: Vec::new(),
    }
}

/// The write that sizes a group at `n` (pure): its autoscaler's minimum
/// when it has one (a resize would be undone by it), refused when the
/// autoscaler's maximum is below `n`; else its target size. `Ok` names
/// the call and what it writes (the autoscaler's name, or the group's).
pub fn write_of<'a>(
    group: &'a str,
    scaler: Option<&'a MigAutoscaler>,
    n: u32,
) -> Result<(&'static str, &'a str), String> {
    match scaler {
        Some(a) if a.max < n => Err(format!(
            "autoscaler {} allows at most {} instances, below {n}",
            a.name, a.max
        )),
        Some(a) => Ok((AUTOSCALER_PATCH, &a.name)),
        None => Ok((RESIZE, group)),
    }
}

/// What a mark on a managed instance group answers: Compute's groups take
/// no labels (the kind says so, and no step asks).
fn no_labels(region: &str, group: &str) -> CloudError {
    let why = "a managed instance group takes no labels: its drill is found through its journal";
    err(
        "regionInstanceGroupManagers.patch",
        group,
        region,
        ErrorKind::Client,
        why.into(),
    )
}

impl GcpMig {
    /// Group `group` (`project/group`) in `region` and its autoscaler, when
    /// it names one (`Ok(None)`: no group), through `wire`. An autoscaler
    /// it names that does not exist is an error: nothing acts on a group
    /// half known.
    async fn group(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<(MigGroup, Option<MigAutoscaler>)>, CloudError> {
        let (project, name) = FORM.names(group, GET, region)?;
        let read = || self.describe_mig(region, project, name);
        let Some(g) = wire.call(GET, region, read).await? else {
            return Ok(None);
        };
        let Some(a) = &g.autoscaler else {
            return Ok(Some((g, None)));
        };
        let read = || self.mig_autoscaler(region, project, a);
        let scaler = (wire.call(AUTOSCALER_GET, region, read).await?).ok_or_else(|| {
            let why = format!("group {name} names autoscaler {a}, which does not exist");
            CloudError::of_call(AUTOSCALER_GET, a, region, ErrorKind::NotFound, why)
        })?;
        Ok(Some((g, Some(scaler))))
    }
}

/// The capacity role over Compute Engine: regional managed instance
/// groups named `project/group`, sized by their autoscaler's minimum or
/// their target size; every write answers an operation the step follows.
#[async_trait]
impl Scaler for GcpMig {
    fn calls(&self) -> &'static ScalingCalls {
        &CALLS
    }

    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        let Some((g, scaler)) = self.group(wire, region, group).await? else {
            return Ok(None);
        };
        let (project, name) = FORM.names(group, INSTANCES, region)?;
        let list = || self.mig_instances(region, project, name);
        let instances = wire.call(INSTANCES, region, list).await?;
        Ok(Some(mig_reading(group, &g, scaler.as_ref(), &instances)))
    }

    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let read = self.group(wire, region, group).await?;
        Ok(read.map(|(g, scaler)| shown(g, scaler.as_ref())))
    }

    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        key: &str,
    ) -> Result<Option<String>, CloudError> {
        let (project, name) = FORM.names(group, RESIZE, region)?;
        let Some((_, scaler)) = self.group(wire, region, group).await? else {
            let why = format!("group {name} does not exist (project {project})");
            return Err(CloudError::of_call(
                RESIZE,
                name,
                region,
                ErrorKind::NotFound,
                why,
            ));
        };
        let n = size.serving();
        let (call, target) = write_of(name, scaler.as_ref(), n).map_err(|why| {
            CloudError::of_call(AUTOSCALER_PATCH, group, region, ErrorKind::Client, why)
        })?;
        let op = if call == AUTOSCALER_PATCH {
            let id = request_id(&format!("{key}/min"));
            let patch = || self.set_autoscaler_min(region, project, target, n, &id);
            wire.call(call, region, patch).await?
        } else {
            let id = request_id(key);
            let resize = || self.resize_mig(region, project, target, n, &id);
            wire.call(call, region, resize).await?
        };
        match (op.done, op.error) {
            (false, _) => Ok(Some(op.name)),
            (true, None) => Ok(None),
            (true, Some(why)) => {
                let why = format!("operation {} failed: {why}", op.name);
                Err(CloudError::of_call(
                    call,
                    name,
                    region,
                    ErrorKind::Client,
                    why,
                ))
            }
        }
    }

    async fn operation(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        op: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        let (project, _) = FORM.names(group, OPERATION, region)?;
        let read = || self.mig_operation(region, project, op);
        let o = wire.call(OPERATION, region, read).await?;
        Ok(o.done.then(|| o.error.map_or(Ok(()), Err)))
    }

    async fn mark(
        &self,
        _: &Wire,
        region: &str,
        read: &Reading,
        _: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        Err(no_labels(region, &read.handle))
    }

    async fn unmark(
        &self,
        _: &Wire,
        region: &str,
        read: &Reading,
        _: &[String],
    ) -> Result<(), CloudError> {
        Err(no_labels(region, &read.handle))
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

    fn group(target: u32, stable: bool, autoscaler: Option<&str>) -> MigGroup {
        MigGroup {
            name: "w".into(),
            region: "us-east4".into(),
            target_size: target,
            stable,
            autoscaler: autoscaler.map(str::to_string),
            idle: 0,
            creating: 0,
        }
    }

    fn instance(action: &str, status: Option<&str>, errors: &[&str]) -> MigInstance {
        MigInstance {
            name: format!("vm-{action}"),
            action: action.into(),
            status: status.map(str::to_string),
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_group_is_sized_by_its_autoscalers_minimum_and_capped_by_its_maximum() {
        let running = [instance("NONE", Some("RUNNING"), &[])];
        let plain = mig_reading("p/w", &group(1, true, None), None, &running);
        assert_eq!((plain.size, plain.ceiling), (Size::Count(1), None));
        let a = MigAutoscaler {
            name: "w-as".into(),
            min: 2,
            max: 5,
        };
        let scaled = mig_reading("p/w", &group(4, true, Some("w-as")), Some(&a), &running);
        assert_eq!((scaled.size, scaled.ceiling), (Size::Count(2), Some(5)));
        assert!(
            scaled.state.contains("autoscaler w-as min 2 max 5"),
            "{}",
            scaled.state
        );
        assert!(scaled.marks.is_empty(), "a group carries no marks");
    }

    /// Regression (review): a group that is not stable (an instance that
    /// cannot start) was a change under way, so a raise waited for it to
    /// end before it wrote, and a drill's return never wrote at all.
    #[test]
    fn a_group_serves_its_running_instances_stable_or_not_and_names_their_errors() {
        let instances = [
            instance("NONE", Some("RUNNING"), &[]),
            instance("VERIFYING", Some("RUNNING"), &[]),
            instance("CREATING", None, &["QUOTA_EXCEEDED: CPUS"]),
        ];
        let r = mig_reading("p/w", &group(3, false, None), None, &instances);
        assert_eq!(
            r.serving, 1,
            "only an instance running with nothing under way"
        );
        assert_eq!(
            r.change,
            Change::Settled,
            "no change to wait out before a write"
        );
        assert!(!r.serves(Size::Count(3)), "{r:?}");
        assert!(r.state.contains("not stable"), "{}", r.state);
        assert!(
            r.state.contains("vm-CREATING: QUOTA_EXCEEDED: CPUS"),
            "{}",
            r.state
        );
        let settled = mig_reading("p/w", &group(1, true, None), None, &instances[..1]);
        assert!(settled.serves(Size::Count(1)), "{settled:?}");
    }

    #[test]
    fn a_request_id_is_a_uuid_stable_for_the_same_write() {
        let id = request_id("run-1/us-east4/p/w/3");
        assert_eq!(id, request_id("run-1/us-east4/p/w/3"));
        assert_ne!(id, request_id("run-2/us-east4/p/w/3"));
        assert_ne!(id, request_id("run-1/us-east4/p/w/3/min"));
        let parts: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
        assert!(
            id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(&id[14..15], "5", "a name-based UUID: {id}");
    }

    /// With an autoscaler, a size is its minimum, refused above its
    /// maximum before any write; without one, the group's target size.
    #[test]
    fn a_size_is_written_as_the_autoscalers_minimum_or_the_groups_target_size() {
        let a = MigAutoscaler {
            name: "w-as".into(),
            min: 1,
            max: 4,
        };
        assert_eq!(write_of("w", Some(&a), 3), Ok((AUTOSCALER_PATCH, "w-as")));
        assert_eq!(write_of("w", None, 3), Ok((RESIZE, "w")));
        let why = write_of("w", Some(&a), 5).unwrap_err();
        assert!(why.contains("w-as allows at most 4"), "{why}");
    }

    /// `status`'s view: the target size between the autoscaler's bounds,
    /// or between none and Compute's ceiling of a regional group; the
    /// autoscaler and a group that is not stable in its notes.
    #[test]
    fn a_group_is_shown_between_its_autoscalers_bounds_or_computes_ceiling() {
        let mut g = group(3, true, None);
        (g.idle, g.creating) = (2, 1);
        let plain = shown(g.clone(), None);
        assert_eq!(
            (
                plain.capacity.min,
                plain.capacity.desired,
                plain.capacity.max
            ),
            (0, 3, MAX_REGIONAL_SIZE)
        );
        assert_eq!((plain.in_service, plain.instances), (2, 3));
        let a = MigAutoscaler {
            name: "w-as".into(),
            min: 2,
            max: 6,
        };
        assert!(plain.notes.is_empty(), "{:?}", plain.notes);
        let scaled = shown(g.clone(), Some(&a));
        assert_eq!((scaled.capacity.min, scaled.capacity.max), (2, 6));
        assert_eq!(scaled.notes, ["autoscaler w-as 2..6"]);
        g.stable = false;
        let unstable = shown(g, None);
        assert!(unstable.notes[0].starts_with("not stable"), "{unstable:?}");
    }
}
