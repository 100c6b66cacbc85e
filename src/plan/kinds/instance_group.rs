//! `[[instance_group]]`: a Compute Engine regional managed instance group
//! per GCP region, raised to its active size in the target by a failover
//! (`scale-mig`).
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

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::cloud_sql::valid_project;
use super::{Copies, Groups, Kind, Resource, RpoSource, Shown, SideRead};
use crate::cloud::{Capacity, CloudError, Clouds, ComputeGroup};
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
    const SCALING: Option<&'static dyn super::scaling::Scaling> = None;
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

    fn follows(&self) -> Option<&str> {
        None
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        let size = if region == plan.home() {
            self.active
        } else {
            self.standby
        };
        format!(
            "instance_group {:<16} {}/{} (normally {} instances)",
            self.id,
            self.project,
            self.regions[self.sites.gcp(region)],
            size.size
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        if !valid_project(&self.project) {
            s.error(
                path!["project"],
                format!(
                    "instance_group `{}`: `{}` is not a GCP project id",
                    self.id, self.project
                ),
                "6 to 30 lowercase letters, digits or hyphens, starting with a letter",
            );
        }
        for (region, name) in &self.regions {
            if !valid_group(name) {
                s.error(
                    path!["regions", region.as_str()],
                    format!(
                        "instance_group `{}` names `{name}` in {region}, not a managed instance group name",
                        self.id
                    ),
                    "1 to 63 lowercase letters, digits and hyphens, starting with a letter",
                );
            }
        }
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

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        None
    }

    fn side_read(&self) -> Option<SideRead<'_>> {
        // Instances of a managed group hold no data to lose.
        None
    }

    fn endpoint(&self) -> Option<&dyn Copies> {
        None
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        let home = self.sites.gcp(w.home);
        for (region, name) in &self.regions {
            let size = if region == home {
                self.active
            } else {
                self.standby
            };
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
    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        let region = self.sites.gcp(region);
        Some((region.to_string(), self.regions.get(region)?.clone()))
    }

    /// A drill raises the autoscaler's minimum (or, without one, the
    /// target size): [`Groups::describe`] shows a group without one
    /// between 0 and Compute's ceiling, so its target size is compared.
    fn at_standby(&self, read: &ComputeGroup) -> bool {
        let c = read.capacity;
        if c.min == 0 && c.max == MAX_REGIONAL_SIZE {
            c.desired == self.standby.size
        } else {
            c.min == self.standby.size
        }
    }

    fn resource(&self) -> &str {
        &self.id
    }

    fn label(&self) -> &'static str {
        "instances"
    }

    fn drilled(&self) -> bool {
        // `drill-mig` raises the standby group (and returns it).
        true
    }

    fn group(&self, region: &str) -> Option<&str> {
        self.regions.get(self.sites.gcp(region)).map(String::as_str)
    }

    fn active(&self) -> Capacity {
        let n = self.active.size;
        Capacity {
            min: n,
            desired: n,
            max: n,
        }
    }

    fn read_call(&self) -> &'static str {
        "compute:regionInstanceGroupManagers.get"
    }

    /// The group as `status` shows it: its target size between its
    /// autoscaler's bounds (without one, 0 and Compute's ceiling), the
    /// instances with nothing under way as in service.
    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let region = self.sites.gcp(region);
        let Some(name) = self.group(region) else {
            return Ok(None);
        };
        let ig = &clouds.instance_groups;
        let Some(g) = ig.describe_mig(region, &self.project, name).await? else {
            return Ok(None);
        };
        let (min, max) = match &g.autoscaler {
            Some(a) => match ig.mig_autoscaler(region, &self.project, a).await? {
                Some(a) => (a.min, a.max),
                None => (0, MAX_REGIONAL_SIZE),
            },
            None => (0, MAX_REGIONAL_SIZE),
        };
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
        }))
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
