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

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::scaling::{About, Change, Reading, Scaling, ScalingCalls};
use super::{CapacitySpec, Groups, Kind, Resource, Shown};
use crate::cloud::{
    Capacity, CloudError, Clouds, ComputeGroup, ErrorKind, NodeGroup, Size, UpdateStatus,
};
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
        target_groups: Vec::new(),
    }
}

#[async_trait]
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

/// The capacity role's actions on an EKS managed node group, named
/// `cluster/nodegroup` as the plan names it.
pub struct NodeScaling;

/// `cluster/nodegroup` as the two names ([`super::scaling::group_names`];
/// EKS names are at most 100 characters).
fn names<'a>(
    group: &'a str,
    (call, region): (&'static str, &str),
) -> Result<(&'a str, &'a str), CloudError> {
    super::scaling::group_names(group, 100, (call, region), "cluster/nodegroup")
}

/// Where a node group's change stands, by EKS's status (pure): an update
/// or its creation under way; `DEGRADED`, its health issues the reason
/// (launches that failed, named by the first issue's code); a node group
/// being deleted, or whose creation or deletion failed, cannot be scaled.
fn change_of(g: &NodeGroup) -> Change {
    match g.status.as_str() {
        "UPDATING" | "CREATING" => Change::Rolling(g.status.clone()),
        "DEGRADED" => Change::Failed {
            id: (g.health.first())
                .and_then(|h| h.split(':').next())
                .unwrap_or("DEGRADED")
                .to_string(),
            reason: if g.health.is_empty() {
                "EKS reports the node group DEGRADED and names no health issue".into()
            } else {
                g.health.join("; ")
            },
        },
        "DELETING" | "CREATE_FAILED" | "DELETE_FAILED" => Change::Failed {
            id: g.status.clone(),
            reason: format!("a node group {} cannot be scaled", g.status),
        },
        _ => Change::Settled,
    }
}

/// A node group as the capacity role reads it: EKS counts no ready
/// nodes, so what serves is its desired size once it is `ACTIVE`, none
/// before.
fn reading(g: NodeGroup) -> Reading {
    let state = match g.health.is_empty() {
        true => g.status.clone(),
        false => format!("{} ({})", g.status, g.health.join("; ")),
    };
    Reading {
        size: Size::Bounds(g.capacity),
        serving: if g.active() { g.capacity.desired } else { 0 },
        change: change_of(&g),
        state,
        handle: g.arn,
        marks: g.tags,
        ceiling: None,
        balanced_by: Vec::new(),
        targets: Vec::new(),
    }
}

#[async_trait]
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
            calls: ScalingCalls {
                kind: "node_group",
                read: "eks:DescribeNodegroup",
                set: "eks:UpdateNodegroupConfig",
                mark: "eks:TagResource",
                unmark: "eks:UntagResource",
                calls: &["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"],
                waits: &["eks:NodegroupActive"],
            },
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Bounds(planned)
    }

    fn set_call(&self, _: &Reading) -> &'static str {
        self.about().calls.set
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        let (cluster, name) = names(group, ("eks:DescribeNodegroup", region))?;
        let read = (clouds.node_groups)
            .describe_node_group(region, cluster, name)
            .await?;
        Ok(read.map(reading))
    }

    async fn set(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let (cluster, name) = names(group, ("eks:UpdateNodegroupConfig", region))?;
        let refused = |why: String| {
            let kind = ErrorKind::Client;
            CloudError::new("eks", "UpdateNodegroupConfig", name, region, kind, why)
        };
        let call = "eks:UpdateNodegroupConfig";
        let c = super::scaling::bounds_of(size, (call, name, region))?;
        let update = (clouds.node_groups)
            .scale_node_group(region, cluster, name, c)
            .await?;
        // An update EKS refused at once says so in its answer; one under
        // way is the node group's status, which the read follows.
        match update.status {
            UpdateStatus::Failed | UpdateStatus::Cancelled => Err(refused(format!(
                "update {} ended {:?}: {}",
                update.id,
                update.status,
                update.errors.join("; ")
            ))),
            UpdateStatus::InProgress | UpdateStatus::Successful => Ok(None),
        }
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }

    async fn mark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        (clouds.node_groups)
            .tag_node_group(region, &read.handle, marks)
            .await
    }

    async fn unmark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        (clouds.node_groups)
            .untag_node_group(region, &read.handle, keys)
            .await
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
