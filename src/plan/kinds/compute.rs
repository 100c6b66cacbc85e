//! `[[compute]]`: an Auto Scaling group per region, raised to its active
//! capacity in the target by a failover.
//!
//! A capacity kind of the generic steps (`steps::raise`,
//! `steps::drill_raise`): its size is three bounds (min, desired, max),
//! set by one `UpdateAutoScalingGroup`; it serves once as many instances
//! as desired are in service; a drill's marks are the group's tags.

use serde::{Deserialize, Serialize};

use super::scaling::{About, Reading, Scaling};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::aws::autoscaling::CALLS;
use crate::cloud::{Capacity, Size};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// Min/desired/max capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacitySpec {
    /// Minimum.
    pub min: u32,
    /// Desired.
    pub desired: u32,
    /// Maximum.
    pub max: u32,
}

impl From<CapacitySpec> for Capacity {
    fn from(c: CapacitySpec) -> Self {
        Self {
            min: c.min,
            desired: c.desired,
            max: c.max,
        }
    }
}

/// A `[[compute]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeSpec {
    /// Resource id.
    pub id: String,
    /// Capacity in the active region.
    pub active: CapacitySpec,
    /// Capacity in standby regions.
    pub standby: CapacitySpec,
    /// Auto Scaling group name per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Whether a raise counts only what the load balancers' target groups
    /// it is registered in say healthy (default true; `false` for a group
    /// whose target groups must not gate a failover).
    #[serde(default = "super::yes", skip_serializing_if = "super::is_true")]
    pub wait_for_targets: bool,
}

/// The keys of a capacity table.
const CAPACITY: &[&str] = &["min", "desired", "max"];

impl Kind for ComputeSpec {
    const KEYS: &'static [&'static str] = &[
        "id",
        "active",
        "standby",
        "regions",
        "after",
        "wait_for_targets",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] =
        &[("active", CAPACITY), ("standby", CAPACITY)];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Capacity(&AsgScaling);
}

impl Resource for ComputeSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        let cap = super::scaling::normal(plan.home(), region, (self.active, self.standby));
        format!(
            "compute  {:<22} {} (normally {}/{}/{})",
            self.id, self.regions[region], cap.min, cap.desired, cap.max
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        for (key, cap) in [("active", self.active), ("standby", self.standby)] {
            if !(cap.min <= cap.desired && cap.desired <= cap.max) {
                s.error(
                    path![key],
                    format!(
                        "compute `{}` {key} capacity {}/{}/{} is not min <= desired <= max",
                        self.id, cap.min, cap.desired, cap.max
                    ),
                    "Auto Scaling refuses a desired capacity outside [min, max]",
                );
            }
        }
        if self.active.desired == 0 {
            s.error(
                path!["active", "desired"],
                format!("compute `{}` has an active desired capacity of 0", self.id),
                "a failover would scale the target region to nothing; give the capacity that serves production",
            );
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Capacity(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        for (region, name) in &self.regions {
            let cap = super::scaling::normal(w.home, region, (self.active, self.standby));
            w.fake.add_group(region, name, cap.into());
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.raised_group(region).into_iter())
            .map(|(at, group)| crate::cloud::fake::slow_key(CALLS.kind, &at, &group))
            .collect()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        for v in self.regions.values_mut() {
            v.push_str(tag);
        }
    }
}

impl Groups for ComputeSpec {
    fn exclusive(&self) -> bool {
        false
    }

    fn waits_for_targets(&self) -> bool {
        self.wait_for_targets
    }

    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        Some((region.to_string(), self.regions.get(region)?.clone()))
    }

    fn group(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(String::as_str)
    }

    fn standby(&self) -> Capacity {
        self.standby.into()
    }

    fn active(&self) -> Capacity {
        self.active.into()
    }
}

/// The capacity role's actions on an Auto Scaling group, named as the plan
/// names it.
pub struct AsgScaling;

impl Scaling for AsgScaling {
    fn about(&self) -> &'static About {
        &About {
            noun: "Auto Scaling group",
            // Of three bounds (`2/4/8 instances`): min/desired/max.
            unit: "instances",
            missing_hint: "create it (terraform/compute.tf) or fix the group's name in the plan",
            label: "compute",
            serves_from_zero: false,
            carries_marks: true,
            max_follows: false,
            calls: CALLS,
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Bounds(planned)
    }

    fn set_call(&self, _: &Reading) -> &'static str {
        self.about().calls.set
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }

    fn manual(&self, region: &str, group: &str, size: Size) -> String {
        let bounds = match size {
            Size::Bounds(c) => format!(
                "--min-size {} --desired-capacity {} --max-size {}",
                c.min, c.desired, c.max
            ),
            Size::Count(n) => format!("--desired-capacity {n}"),
        };
        format!(
            "aws autoscaling update-auto-scaling-group --region {region} --auto-scaling-group-name {group} {bounds}, then remove its drctl:drill-* tags (aws autoscaling delete-tags)"
        )
    }
}
