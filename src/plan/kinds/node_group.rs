//! `[[node_group]]`: an EKS managed node group per region, named with its
//! cluster (`cluster/nodegroup`), raised to its active size in the target
//! by a failover.
//!
//! A managed node group is sized by its scaling configuration (min, desired
//! and max nodes), set by `UpdateNodegroupConfig` and applied by EKS as an
//! update; its own status (`ACTIVE`, `UPDATING`, `DEGRADED`) says whether
//! it serves. A self-managed node group is an Auto Scaling group: that is
//! `[[compute]]`.
//!
//! A capacity kind of the generic steps (`steps::raise`,
//! `steps::drill_raise`): its size is three bounds; it serves once EKS
//! reports it `ACTIVE` at the size; a drill's marks are its tags
//! (`TagResource` on its ARN).

use serde::{Deserialize, Serialize};

use super::scaling::{About, Reading, Scaling};
use super::{CapacitySpec, Groups, Kind, Resource, Shown};
use crate::cloud::aws::eks::CALLS;
use crate::cloud::{Capacity, Size};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// A `[[node_group]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeGroupSpec {
    /// Resource id.
    pub id: String,
    /// Size (nodes) in the active region.
    pub active: CapacitySpec,
    /// Size (nodes) in standby regions.
    pub standby: CapacitySpec,
    /// `cluster/nodegroup` per region: the EKS cluster and its managed
    /// node group.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// The keys of a size table.
const SIZE: &[&str] = &["min", "desired", "max"];

/// Splits `cluster/nodegroup` into its two names (`None`: not of that form).
pub fn split(value: &str) -> Option<(&str, &str)> {
    super::split_pair(value, usize::MAX)
}

impl NodeGroupSpec {
    /// The cluster and node group in `region`, when the plan names them.
    pub fn in_region(&self, region: &str) -> Option<(&str, &str)> {
        self.regions.get(region).and_then(|v| split(v))
    }
}

impl Kind for NodeGroupSpec {
    const KEYS: &'static [&'static str] = &["id", "active", "standby", "regions", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] =
        &[("active", SIZE), ("standby", SIZE)];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Capacity(&NodeScaling);
}

impl Resource for NodeGroupSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        let cap = super::scaling::normal(plan.home(), region, (self.active, self.standby));
        format!(
            "node_group {:<20} {} (normally {}/{}/{} nodes)",
            self.id, self.regions[region], cap.min, cap.desired, cap.max
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        s.region_values(
            (&self.id, &self.regions),
            |v| split(v).is_some(),
            (
                "`cluster/nodegroup`",
                "write the EKS cluster and its managed node group: `orders-eks/orders-nodes`",
            ),
        );
        for (key, cap) in [("active", self.active), ("standby", self.standby)] {
            if !(cap.min <= cap.desired && cap.desired <= cap.max) {
                s.error(
                    path![key],
                    format!(
                        "node_group `{}` {key} size {}/{}/{} is not min <= desired <= max",
                        self.id, cap.min, cap.desired, cap.max
                    ),
                    "EKS refuses a scaling configuration with desired outside [min, max]",
                );
            }
            if cap.max == 0 {
                s.error(
                    path![key, "max"],
                    format!("node_group `{}` {key} max size is 0", self.id),
                    "EKS requires a node group's max size of at least 1",
                );
            }
        }
        if self.active.desired == 0 {
            s.error(
                path!["active", "desired"],
                format!("node_group `{}` has an active desired size of 0", self.id),
                "a failover would scale the target's node group to nothing; give the size that serves production",
            );
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Capacity(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        for region in self.regions.keys() {
            let cap = super::scaling::normal(w.home, region, (self.active, self.standby));
            if let Some((cluster, group)) = self.in_region(region) {
                w.fake.add_node_group(region, cluster, group, cap.into());
            }
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
            if let Some((cluster, group)) = split(v) {
                *v = format!("{cluster}{tag}/{group}{tag}");
            }
        }
    }
}

impl Groups for NodeGroupSpec {
    fn exclusive(&self) -> bool {
        false
    }

    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        let (cluster, group) = self.in_region(region)?;
        Some((region.to_string(), format!("{cluster}/{group}")))
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

/// The capacity role's actions on an EKS managed node group, named
/// `cluster/nodegroup` as the plan names it.
pub struct NodeScaling;

impl Scaling for NodeScaling {
    fn about(&self) -> &'static About {
        &About {
            noun: "EKS node group",
            unit: "nodes",
            missing_hint: "create it (terraform/eks.tf) or fix `cluster/nodegroup` in the plan",
            label: "nodes",
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
        let (cluster, name) = split(group).unwrap_or((group, group));
        let config = match size {
            Size::Bounds(c) => format!(
                "minSize={},desiredSize={},maxSize={}",
                c.min, c.desired, c.max
            ),
            Size::Count(n) => format!("desiredSize={n}"),
        };
        format!(
            "aws eks update-nodegroup-config --region {region} --cluster-name {cluster} --nodegroup-name {name} --scaling-config {config}, then remove its drctl:drill-* tags (aws eks untag-resource)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_names_a_cluster_and_its_node_group() {
        assert_eq!(
            split("orders-eks/orders-nodes"),
            Some(("orders-eks", "orders-nodes"))
        );
        assert_eq!(split("a_b/c-1"), Some(("a_b", "c-1")));
        for bad in ["orders-nodes", "/nodes", "eks/", "a/b/c", "a b/c", ""] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
