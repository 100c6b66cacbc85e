//! `[[node_group]]`: an EKS managed node group per region, named with its
//! cluster (`cluster/nodegroup`), raised to its active size in the target
//! by a failover.
//!
//! A managed node group is sized by its scaling configuration (min, desired
//! and max nodes), set by `UpdateNodegroupConfig` and applied by EKS as an
//! update; its own status (`ACTIVE`, `UPDATING`, `DEGRADED`) says whether
//! it serves. A self-managed node group is an Auto Scaling group: that is
//! `[[compute]]`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{CapacitySpec, Copies, Groups, Kind, Resource, RpoSource, Shown, SideRead};
use crate::cloud::{Capacity, CloudError, Clouds, ComputeGroup, NodeGroup};
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
    const SCALING: Option<&'static dyn super::scaling::Scaling> = None;
}

impl Resource for NodeGroupSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn follows(&self) -> Option<&str> {
        None
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        let cap = if region == plan.home() {
            self.active
        } else {
            self.standby
        };
        format!(
            "node_group {:<20} {} (normally {}/{}/{} nodes)",
            self.id, self.regions[region], cap.min, cap.desired, cap.max
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        for (region, value) in &self.regions {
            if split(value).is_none() {
                s.error(
                    path!["regions", region.as_str()],
                    format!(
                        "node_group `{}` names `{value}` in {region}, not `cluster/nodegroup`",
                        self.id
                    ),
                    "write the EKS cluster and its managed node group: `orders-eks/orders-nodes`",
                );
            }
        }
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

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        None
    }

    fn side_read(&self) -> Option<SideRead<'_>> {
        // Nodes hold no data to lose.
        None
    }

    fn endpoint(&self) -> Option<&dyn Copies> {
        None
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        for region in self.regions.keys() {
            let cap = if region == w.home {
                self.active
            } else {
                self.standby
            };
            if let Some((cluster, group)) = self.in_region(region) {
                w.fake.add_node_group(region, cluster, group, cap.into());
            }
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.in_region(region).into_iter())
            .map(|(cluster, group)| format!("nodes:{region}/{cluster}/{group}"))
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

/// A node group read as a group of `status` (its size, and EKS's status
/// for "in service": EKS does not count ready nodes).
fn as_group(g: NodeGroup) -> ComputeGroup {
    ComputeGroup {
        name: format!("{}/{}", g.cluster, g.name),
        region: g.region,
        capacity: g.capacity,
        in_service: 0,
        instances: 0,
        tags: g.tags,
        status: Some(g.status),
        notes: Vec::new(),
    }
}

#[async_trait]
impl Groups for NodeGroupSpec {
    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        let (cluster, group) = self.in_region(region)?;
        Some((region.to_string(), format!("{cluster}/{group}")))
    }

    fn at_standby(&self, read: &ComputeGroup) -> bool {
        read.capacity == self.standby.into()
    }

    fn resource(&self) -> &str {
        &self.id
    }

    fn label(&self) -> &'static str {
        "nodes"
    }

    fn drilled(&self) -> bool {
        // `drill-nodes` raises the standby's node group and restores it.
        true
    }

    fn group(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(String::as_str)
    }

    fn active(&self) -> Capacity {
        self.active.into()
    }

    fn read_call(&self) -> &'static str {
        "eks:DescribeNodegroup"
    }

    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        match self.in_region(region) {
            Some((cluster, group)) => Ok(clouds
                .node_groups
                .describe_node_group(region, cluster, group)
                .await?
                .map(as_group)),
            None => Ok(None),
        }
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
