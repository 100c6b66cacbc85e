//! `[[instance_group]]`: a Compute Engine regional managed instance group
//! per GCP region, raised to its active size in the target by a failover
//! (the generic `raise`) and by a shadow drill (`drill-raise`), through
//! the capacity role's answers here ([`MigScaling`]).
//!
//! Why its own kind rather than a `[[compute]]` with a provider key: a
//! managed instance group is sized by one number (its target size), or,
//! when an autoscaler is attached, by the autoscaler's minimum (a resize
//! would be undone by the autoscaler); its writes answer operations that
//! are done when the change is *scheduled*, so a failover waits on the
//! instances themselves. Its answers to `status` are the kind-neutral
//! [`Groups`] of `[[compute]]` and `[[node_group]]`: the group's size and
//! the instances that serve, a standby judged by whether its ceiling (the
//! autoscaler's maximum, else Compute's limit of a regional group) lets a
//! failover reach the active size.
//!
//! # What the capacity role asks that only this kind answers
//!
//! - **A write is an operation.** `resize` and an autoscaler's `patch`
//!   answer a regional operation; the role's steps follow it
//!   ([`Scaling::answers`]) until it is done, then read the instances.
//! - **A write carries a request id** (a UUID derived from the step's
//!   write key, [`request_id`]): Compute answers one it has seen with the
//!   operation it made then, so a write resent after a lost answer is not
//!   made twice.
//! - **Serving is read from the instances** (`listManagedInstances`): a
//!   group serves as many as run with nothing under way; whether Compute
//!   calls it stable is no change to wait out before a write (it may
//!   never be, with instances that cannot start), and their last
//!   attempt's errors are in the read's state, so a wait that ends names
//!   what kept them from running.
//! - **No marks.** Compute's managed instance groups take no labels, so
//!   a drill's raise is found through its journal alone
//!   ([`About::carries_marks`](super::scaling::About::carries_marks) is false): a sweep without the drill's
//!   journal cannot see it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::scaling::{About, Change, Reading, Scaling, ScalingCalls};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::{
    Capacity, CloudError, Clouds, ComputeGroup, ErrorKind, MigAutoscaler, MigGroup, MigInstance,
    Size,
};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// The most instances a regional managed instance group holds (Compute
/// Engine: "a regional MIG can contain up to 2,000 VMs"): the ceiling of a
/// group without an autoscaler.
pub const MAX_REGIONAL_SIZE: u32 = 2000;

/// A group's size: its target size, or its autoscaler's minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigSize {
    /// Instances.
    pub size: u32,
}

/// A `[[instance_group]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceGroupSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// The GCP project that holds the groups.
    pub project: String,
    /// Size in the active region (with an autoscaler: its minimum).
    pub active: MigSize,
    /// Size in standby regions (with an autoscaler: its minimum).
    pub standby: MigSize,
    /// The regional managed instance group's name per GCP region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The plan's sites (set when the plan is loaded): which of its
    /// copies, named by GCP region, a site of the plan means.
    #[serde(skip)]
    pub sites: crate::plan::sites::Sites,
}

const SIZE: &[&str] = &["size"];

impl Kind for InstanceGroupSpec {
    const KEYS: &'static [&'static str] =
        &["id", "project", "active", "standby", "regions", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] =
        &[("active", SIZE), ("standby", SIZE)];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Gcp;
    const ROLE: super::Role = super::Role::Capacity(&MigScaling);
}

/// Whether `name` is a Compute Engine resource name: 1 to 63 lowercase
/// letters, digits or hyphens, starting with a letter, not ending with a
/// hyphen (RFC 1035).
pub fn valid_group(name: &str) -> bool {
    crate::plan::sites::gcp_name(name, 1..=63)
}

impl Resource for InstanceGroupSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        let size = super::scaling::normal(plan.home(), region, (self.active, self.standby));
        format!(
            "instance_group {:<16} {}/{} (normally {} instances)",
            self.id,
            self.project,
            self.regions[self.sites.gcp(region)],
            size.size
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        super::cloud_sql::check_project(s, &self.id, &self.project);
        s.region_values(
            (&self.id, &self.regions),
            valid_group,
            (
                "a managed instance group name",
                "1 to 63 lowercase letters, digits and hyphens, starting with a letter",
            ),
        );
        if self.active.size == 0 {
            s.error(
                path!["active", "size"],
                format!("instance_group `{}` has an active size of 0", self.id),
                "a failover would leave the target's group empty; give the size that serves production",
            );
        }
        for (key, size) in [("active", self.active), ("standby", self.standby)] {
            if size.size > MAX_REGIONAL_SIZE {
                s.error(
                    path![key, "size"],
                    format!(
                        "instance_group `{}` {key} size {} is above {MAX_REGIONAL_SIZE}",
                        self.id, size.size
                    ),
                    "a regional managed instance group holds at most 2,000 instances",
                );
            }
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Capacity(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        let home = self.sites.gcp(w.home);
        for (region, name) in &self.regions {
            let size = super::scaling::normal(home, region, (self.active, self.standby));
            w.fake.add_mig(&self.project, region, name, size.size, None);
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        // Its instances are read until they run, not timed by the model.
        Vec::new()
    }

    fn attach_sites(&mut self, sites: &crate::plan::sites::Sites) {
        self.sites = sites.clone();
    }

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        for v in self.regions.values_mut() {
            v.push_str(&tag.to_lowercase());
        }
    }
}

#[async_trait]
impl Groups for InstanceGroupSpec {
    fn exclusive(&self) -> bool {
        false
    }

    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        let region = self.sites.gcp(region);
        let name = self.regions.get(region)?;
        Some((region.to_string(), format!("{}/{name}", self.project)))
    }

    fn group(&self, region: &str) -> Option<&str> {
        self.regions.get(self.sites.gcp(region)).map(String::as_str)
    }

    fn standby(&self) -> Capacity {
        Capacity::exactly(self.standby.size)
    }

    fn active(&self) -> Capacity {
        Capacity::exactly(self.active.size)
    }

    /// The group as `status` shows it: its target size between its autoscaler's
    /// bounds (without one, 0 and Compute's ceiling), the instances with
    /// nothing under way as in service. Read as the role's actions read it
    /// ([`MigScaling::group`]): a group naming an autoscaler that does not
    /// exist is an error here too, not a group without one.
    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let region = self.sites.gcp(region);
        let Some(name) = self.group(region) else {
            return Ok(None);
        };
        let Some((g, scaler)) = MigScaling::group(clouds, (region, &self.project, name)).await?
        else {
            return Ok(None);
        };
        let (min, max) = scaler.map_or((0, MAX_REGIONAL_SIZE), |a| (a.min, a.max));
        Ok(Some(ComputeGroup {
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
            notes: Vec::new(),
            target_groups: Vec::new(),
        }))
    }
}

/// The capacity role's actions on regional managed instance groups
/// (`project/group`): the size is the autoscaler's minimum when the group
/// has one (a resize would be undone by it), else its target size.
pub struct MigScaling;

const GET: &str = "compute:regionInstanceGroupManagers.get";
const RESIZE: &str = "compute:regionInstanceGroupManagers.resize";
const OPERATION: &str = "compute:regionOperations.get";
const AUTOSCALER_PATCH: &str = "compute:regionAutoscalers.patch";

/// `project/group` as the two names ([`super::scaling::PairForm`]).
fn names<'a>(
    group: &'a str,
    (call, region): (&'static str, &str),
) -> Result<(&'a str, &'a str), CloudError> {
    let form = super::scaling::PairForm {
        max: 63,
        form: "project/group",
    };
    form.names(group, call, region)
}

/// The error of a resource that is not there, as Compute names it.
fn not_found(call: &'static str, name: &str, region: &str, what: String) -> CloudError {
    let (service, operation) = super::call_parts(call);
    CloudError::new(service, operation, name, region, ErrorKind::NotFound, what)
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

impl MigScaling {
    /// Group `name` of `project` in `region` and its autoscaler, when it
    /// names one (`Ok(None)`: no group). An autoscaler it names that does
    /// not exist is an error: nothing acts on a group half known.
    async fn group(
        clouds: &Clouds,
        (region, project, name): (&str, &str, &str),
    ) -> Result<Option<(MigGroup, Option<MigAutoscaler>)>, CloudError> {
        let ig = &clouds.instance_groups;
        let Some(g) = ig.describe_mig(region, project, name).await? else {
            return Ok(None);
        };
        let scaler = match &g.autoscaler {
            Some(a) => Some(
                ig.mig_autoscaler(region, project, a)
                    .await?
                    .ok_or_else(|| {
                        let why =
                            format!("group {name} names autoscaler {a}, which does not exist");
                        not_found("compute:regionAutoscalers.get", a, region, why)
                    })?,
            ),
            None => None,
        };
        Ok(Some((g, scaler)))
    }
}

/// Compute Engine's regional operations, which a resize and an
/// autoscaler's patch answer.
#[async_trait]
impl super::Operations for MigScaling {
    async fn operation(
        &self,
        clouds: &Clouds,
        (region, group): (&str, &str),
        op: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        let (project, _) = names(group, (OPERATION, region))?;
        let o = (clouds.instance_groups)
            .mig_operation(region, project, op)
            .await?;
        Ok(o.done.then(|| o.error.map_or(Ok(()), Err)))
    }
}

#[async_trait]
impl Scaling for MigScaling {
    fn about(&self) -> &'static About {
        &About {
            noun: "managed instance group",
            unit: "instances",
            missing_hint: "create it (terraform/), or fix `project` and the group's name in the plan",
            label: "instances",
            serves_from_zero: false,
            carries_marks: false,
            max_follows: false,
            calls: ScalingCalls {
                kind: "instance_group",
                read: GET,
                set: RESIZE,
                // It carries no marks: never called.
                mark: "",
                unmark: "",
                calls: &[
                    GET,
                    "compute:regionAutoscalers.get",
                    "compute:regionInstanceGroupManagers.listManagedInstances",
                    RESIZE,
                    AUTOSCALER_PATCH,
                    OPERATION,
                ],
                waits: &[RESIZE],
            },
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Count(planned.desired)
    }

    fn set_call(&self, read: &Reading) -> &'static str {
        // Only a group with an autoscaler reads with a ceiling (its
        // maximum), and its size is the autoscaler's minimum.
        match read.ceiling {
            Some(_) => AUTOSCALER_PATCH,
            None => RESIZE,
        }
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        let (project, name) = names(group, (GET, region))?;
        let Some((g, scaler)) = Self::group(clouds, (region, project, name)).await? else {
            return Ok(None);
        };
        let instances = (clouds.instance_groups)
            .mig_instances(region, project, name)
            .await?;
        Ok(Some(mig_reading(group, &g, scaler.as_ref(), &instances)))
    }

    async fn set(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
        size: Size,
        key: &str,
    ) -> Result<Option<String>, CloudError> {
        let (project, name) = names(group, (RESIZE, region))?;
        let Some((_, scaler)) = Self::group(clouds, (region, project, name)).await? else {
            let why = format!("group {name} does not exist (project {project})");
            return Err(not_found(RESIZE, name, region, why));
        };
        let (n, ig) = (size.serving(), &clouds.instance_groups);
        let (call, op) = match scaler {
            Some(a) if a.max < n => {
                let why = format!(
                    "autoscaler {} allows at most {} instances, below {n}",
                    a.name, a.max
                );
                let (service, operation) = super::call_parts(AUTOSCALER_PATCH);
                let kind = ErrorKind::Client;
                return Err(CloudError::new(
                    service, operation, &a.name, region, kind, why,
                ));
            }
            Some(a) => {
                let id = request_id(&format!("{key}/min"));
                let op = ig.set_autoscaler_min(region, project, &a.name, n, &id);
                (AUTOSCALER_PATCH, op.await?)
            }
            None => {
                let id = request_id(key);
                (RESIZE, ig.resize_mig(region, project, name, n, &id).await?)
            }
        };
        match (op.done, op.error) {
            (false, _) => Ok(Some(op.name)),
            (true, None) => Ok(None),
            (true, Some(why)) => {
                let (service, operation) = super::call_parts(call);
                let why = format!("operation {} failed: {why}", op.name);
                Err(CloudError::new(
                    service,
                    operation,
                    name,
                    region,
                    ErrorKind::Client,
                    why,
                ))
            }
        }
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::Operation(self)
    }

    async fn mark(
        &self,
        _: &Clouds,
        region: &str,
        read: &Reading,
        _: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        Err(no_labels(region, &read.handle))
    }

    async fn unmark(
        &self,
        _: &Clouds,
        region: &str,
        read: &Reading,
        _: &[String],
    ) -> Result<(), CloudError> {
        Err(no_labels(region, &read.handle))
    }

    fn manual(&self, region: &str, group: &str, size: Size) -> String {
        let (project, name) = super::split_pair(group, 63).unwrap_or((group, group));
        format!(
            "gcloud compute instance-groups managed resize {name} --region {region} --project {project} --size {size} (with an autoscaler: gcloud compute instance-groups managed update-autoscaling {name} --region {region} --project {project} --min-num-replicas {size})"
        )
    }
}

/// What a mark on a managed instance group answers: Compute's groups take
/// no labels ([`About::carries_marks`](super::scaling::About::carries_marks) says so, and no step asks).
fn no_labels(region: &str, group: &str) -> CloudError {
    let why = "a managed instance group takes no labels: its drill is found through its journal";
    CloudError::new(
        "compute",
        "regionInstanceGroupManagers.patch",
        group,
        region,
        ErrorKind::Client,
        why,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn names_follow_computes_rules() {
        for ok in ["orders-workers", "a", "w1"] {
            assert!(valid_group(ok), "{ok}");
        }
        for bad in ["", "Orders", "1w", "w-", "w_x", &"a".repeat(64)] {
            assert!(!valid_group(bad), "{bad}");
        }
    }
}
