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
//!   write key, `cloud::gcp_mig::request_id`): Compute answers one it has seen with the
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

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::scaling::{About, Reading, Scaling};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::gcp_mig::{AUTOSCALER_PATCH, CALLS, FORM};
use crate::cloud::{Capacity, CloudError, Clouds, Size};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

pub use crate::cloud::gcp_mig::MAX_REGIONAL_SIZE;

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
            // Every instance running, no autoscaler; every write answers
            // an operation, as Compute's do.
            let group = format!("{}/{name}", self.project);
            let (n, max) = (size.size, MAX_REGIONAL_SIZE);
            w.fake
                .add_scaled(&CALLS, region, &group, Size::Count(n), max);
            w.fake.with_scaled(CALLS.kind, region, &group, |g| {
                (g.handle, g.status) = (group.clone(), None);
                g.operations = Some("compute:regionOperations.get");
            });
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.raised_group(region).into_iter())
            .map(|(at, group)| crate::cloud::fake::slow_key(CALLS.kind, &at, &group))
            .collect()
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
}

/// The capacity role's actions on regional managed instance groups
/// (`project/group`): the size is the autoscaler's minimum when the group
/// has one (a resize would be undone by it), else its target size.
pub struct MigScaling;

/// Compute Engine's regional operations, which a resize and an
/// autoscaler's patch answer, read through the kind's adapter.
#[async_trait]
impl super::Operations for MigScaling {
    async fn operation(
        &self,
        clouds: &Clouds,
        (region, group): (&str, &str),
        op: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        (self.port(clouds, region)?)
            .operation(region, group, op)
            .await
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
            calls: CALLS,
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
            None => CALLS.set,
        }
    }

    fn answers(&self) -> super::Answers<'_> {
        super::Answers::Operation(self)
    }

    fn manual(&self, region: &str, group: &str, size: Size) -> String {
        let (project, name) = FORM.split(group).unwrap_or((group, group));
        format!(
            "gcloud compute instance-groups managed resize {name} --region {region} --project {project} --size {size} (with an autoscaler: gcloud compute instance-groups managed update-autoscaling {name} --region {region} --project {project} --min-num-replicas {size})"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
