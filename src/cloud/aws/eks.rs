//! EKS: managed node groups, their scaling configuration and its updates.
//!
//! A node group is scaled by `UpdateNodegroupConfig` with a `scalingConfig`;
//! EKS answers with an update (id, status) that `DescribeUpdate` follows.
//! EKS names an unknown cluster, node group or update with
//! `ResourceNotFoundException`: that is [`ErrorKind::NotFound`].
//! moto 5.2 applies the update at once (its answer is already
//! `Successful`) and does not serve `DescribeUpdate` (an HTTP 404 page):
//! see `localstack/README.md`.
//!
//! The adapter implements the capacity role itself ([`Scaler`]): a node
//! group is a group named `cluster/nodegroup`, sized by three bounds, and
//! EKS's answer is read straight into the role's [`Reading`], tested here
//! on answers of EKS's shape and against moto (`tests/it/nodes.rs`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_eks::types::{NodegroupScalingConfig, Update, UpdateStatus as SdkStatus};

use super::{Call, Regional, Sdk, call};
use crate::cloud::metered::Wire;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{
    Capacity, Change, CloudError, ComputeGroup, ErrorKind, NodeGroup, NodeGroupUpdate, PairForm,
    Reading, Scaler, ScalingCalls, Size, UpdateStatus, bounds_of,
};

const SERVICE: &str = "eks";

/// What an update's answer means for the write (pure): one EKS refused at
/// once says so in its answer, named by its id, status and errors; one
/// under way is the node group's status, which the read follows.
fn answered(
    update: NodeGroupUpdate,
    name: &str,
    region: &str,
) -> Result<Option<String>, CloudError> {
    match update.status {
        UpdateStatus::Failed | UpdateStatus::Cancelled => Err(CloudError::of_call(
            CALLS.set,
            name,
            region,
            ErrorKind::Client,
            format!(
                "update {} ended {:?}: {}",
                update.id,
                update.status,
                update.errors.join("; ")
            ),
        )),
        UpdateStatus::InProgress | UpdateStatus::Successful => Ok(None),
    }
}

/// The calls of `[[node_group]]`'s capacity role.
pub const CALLS: ScalingCalls = ScalingCalls {
    kind: "node_group",
    read: "eks:DescribeNodegroup",
    set: "eks:UpdateNodegroupConfig",
    mark: "eks:TagResource",
    unmark: "eks:UntagResource",
    calls: &["eks:DescribeNodegroup", "eks:UpdateNodegroupConfig"],
    waits: &["eks:NodegroupActive"],
};

/// The capacity role over EKS managed node groups.
pub struct EksNodeGroups {
    clients: Regional<aws_sdk_eks::Client>,
    retry: RetryPolicy,
}

impl EksNodeGroups {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::eks),
            retry,
        }
    }
}

/// EKS's `ResourceNotFoundException` is a [`ErrorKind::NotFound`].
fn not_found(mut e: CloudError) -> CloudError {
    if e.code.as_deref() == Some("ResourceNotFoundException") {
        e.kind = ErrorKind::NotFound;
    }
    e
}

fn size(n: Option<i32>) -> u32 {
    n.unwrap_or(0).max(0) as u32
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// An SDK update as drctl reads it. A status this SDK does not know is
/// read as still in progress (the wait's deadline bounds it).
fn update_of(u: &Update) -> NodeGroupUpdate {
    let status = match u.status() {
        Some(SdkStatus::Successful) => UpdateStatus::Successful,
        Some(SdkStatus::Failed) => UpdateStatus::Failed,
        Some(SdkStatus::Cancelled) => UpdateStatus::Cancelled,
        _ => UpdateStatus::InProgress,
    };
    let errors = u
        .errors()
        .iter()
        .map(|e| {
            let code = e.error_code().map(|c| c.as_str()).unwrap_or("error");
            let msg = e.error_message().unwrap_or_default();
            let ids = e.resource_ids().join(", ");
            if ids.is_empty() {
                format!("{code}: {msg}")
            } else {
                format!("{code}: {msg} ({ids})")
            }
        })
        .collect();
    NodeGroupUpdate {
        id: u.id().unwrap_or_default().to_string(),
        status,
        errors,
    }
}

/// A node group read as a group of `status` (its size, and EKS's status
/// for "in service": EKS does not count ready nodes).
pub fn as_group(g: NodeGroup) -> ComputeGroup {
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

/// `cluster/nodegroup` as the two names, checked before any call (EKS
/// names are at most 100 characters).
pub fn names<'a>(
    group: &'a str,
    call: &'static str,
    region: &str,
) -> Result<(&'a str, &'a str), CloudError> {
    FORM.names(group, call, region)
}

/// EKS's `cluster/nodegroup`: names of at most 100 characters.
pub const FORM: PairForm = PairForm {
    max: 100,
    form: "cluster/nodegroup",
};

/// Where a node group's change stands, by EKS's status (pure): an update
/// or its creation under way; `DEGRADED`, its health issues the reason
/// (launches that failed, named by the first issue's code); a node group
/// being deleted, or whose creation or deletion failed, cannot be scaled.
pub fn change_of(g: &NodeGroup) -> Change {
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
pub fn reading(g: NodeGroup) -> Reading {
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
impl Scaler for EksNodeGroups {
    fn calls(&self) -> &'static ScalingCalls {
        &CALLS
    }

    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        Ok(self.node_group(wire, region, group).await?.map(reading))
    }

    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        Ok(self.node_group(wire, region, group).await?.map(as_group))
    }

    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let (cluster, name) = names(group, CALLS.set, region)?;
        let c = bounds_of(size, CALLS.set, name, region)?;
        let update = wire.call(CALLS.set, region, || {
            self.scale_node_group(region, cluster, name, c)
        });
        answered(update.await?, name, region)
    }

    async fn mark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let arn = &read.handle;
        (wire.call(CALLS.mark, region, || {
            self.tag_node_group(region, arn, marks)
        }))
        .await
    }

    async fn unmark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        let arn = &read.handle;
        (wire.call(CALLS.unmark, region, || {
            self.untag_node_group(region, arn, keys)
        }))
        .await
    }
}

impl EksNodeGroups {
    /// Node group `cluster/nodegroup` (`group`), read through `wire`.
    async fn node_group(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<NodeGroup>, CloudError> {
        let (cluster, name) = names(group, CALLS.read, region)?;
        (wire.call(CALLS.read, region, || {
            self.describe_node_group(region, cluster, name)
        }))
        .await
    }

    async fn describe_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<NodeGroup>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeNodegroup", name, region);
        let out = call(&self.retry, c, || {
            client
                .describe_nodegroup()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .send()
        })
        .await
        .map_err(not_found);
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(ng) = out.nodegroup() else {
            return Ok(None);
        };
        let sc = ng.scaling_config();
        Ok(Some(NodeGroup {
            cluster: cluster.to_string(),
            name: name.to_string(),
            region: region.to_string(),
            capacity: Capacity {
                min: size(sc.and_then(|s| s.min_size())),
                desired: size(sc.and_then(|s| s.desired_size())),
                max: size(sc.and_then(|s| s.max_size())),
            },
            status: ng
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            tags: ng
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            arn: ng.nodegroup_arn().unwrap_or_default().to_string(),
            health: (ng.health().map(|h| h.issues()).unwrap_or_default().iter())
                .map(|i| {
                    let code = i.code().map_or("unknown", |c| c.as_str());
                    format!("{code}: {}", i.message().unwrap_or("no message"))
                })
                .collect(),
        }))
    }

    async fn scale_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<NodeGroupUpdate, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "UpdateNodegroupConfig", name, region);
        let scaling = NodegroupScalingConfig::builder()
            .min_size(to_i32(capacity.min))
            .desired_size(to_i32(capacity.desired))
            .max_size(to_i32(capacity.max))
            .build();
        let out = call(&self.retry, c, || {
            client
                .update_nodegroup_config()
                .cluster_name(cluster)
                .nodegroup_name(name)
                .scaling_config(scaling.clone())
                .send()
        })
        .await
        .map_err(not_found)?;
        out.update().map(update_of).ok_or_else(|| {
            CloudError::new(
                SERVICE,
                "UpdateNodegroupConfig",
                name,
                region,
                ErrorKind::Server,
                "the answer carries no update",
            )
        })
    }

    async fn tag_node_group(
        &self,
        region: &str,
        arn: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        if tags.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "TagResource", arn, region);
        let tags: std::collections::HashMap<String, String> = tags.clone().into_iter().collect();
        call(&self.retry, c, || {
            client
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map_err(not_found)?;
        Ok(())
    }

    async fn untag_node_group(
        &self,
        region: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        if keys.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "UntagResource", arn, region);
        call(&self.retry, c, || {
            client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
        })
        .await
        .map_err(not_found)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node group as `DescribeNodegroup` answers it (the fields drctl
    /// reads), at 2/3/6 in `status` with `health` issues.
    fn answer(status: &str, health: &[&str]) -> NodeGroup {
        NodeGroup {
            cluster: "orders-eks-use1".into(),
            name: "orders-nodes-use1".into(),
            region: "us-east-1".into(),
            capacity: Capacity {
                min: 2,
                desired: 3,
                max: 6,
            },
            status: status.into(),
            tags: [("drctl:drill-run".to_string(), "r1".to_string())].into(),
            arn:
                "arn:aws:eks:us-east-1:123456789012:nodegroup/orders-eks-use1/orders-nodes-use1/8a"
                    .into(),
            health: health.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn an_active_node_group_serves_its_desired_size_and_nothing_is_under_way() {
        let r = reading(answer("ACTIVE", &[]));
        assert_eq!(r.size, Size::Bounds(answer("ACTIVE", &[]).capacity));
        assert_eq!(
            (r.serving, &r.change, r.state.as_str()),
            (3, &Change::Settled, "ACTIVE")
        );
        assert!(r.handle.contains(":nodegroup/"), "marks go on its ARN");
        assert_eq!(
            r.marks.get("drctl:drill-run").map(String::as_str),
            Some("r1")
        );
        assert!(r.serves(r.size));
    }

    #[test]
    fn an_update_under_way_rolls_and_serves_nothing_eks_counts_no_ready_nodes() {
        for status in ["UPDATING", "CREATING"] {
            let r = reading(answer(status, &[]));
            assert_eq!((r.serving, r.change), (0, Change::Rolling(status.into())));
        }
    }

    #[test]
    fn a_degraded_node_group_is_a_failed_change_named_by_its_first_health_issue() {
        let issues = [
            "AsgInstanceLaunchFailures: Could not launch On-Demand Instances (i-1)",
            "NodeCreationFailure: Instances failed to join the kubernetes cluster",
        ];
        let r = reading(answer("DEGRADED", &issues));
        assert_eq!(
            r.change,
            Change::Failed {
                id: "AsgInstanceLaunchFailures".into(),
                reason: issues.join("; "),
            }
        );
        assert!(
            r.state.starts_with("DEGRADED (AsgInstanceLaunchFailures"),
            "{}",
            r.state
        );
        // DEGRADED without an issue named still fails, and says so.
        let Change::Failed { id, reason } = change_of(&answer("DEGRADED", &[])) else {
            panic!("a degraded node group is a failed change")
        };
        assert_eq!(id, "DEGRADED");
        assert!(reason.contains("names no health issue"), "{reason}");
    }

    #[test]
    fn a_node_group_being_deleted_or_that_failed_to_be_made_cannot_be_scaled() {
        for status in ["DELETING", "CREATE_FAILED", "DELETE_FAILED"] {
            let Change::Failed { id, reason } = change_of(&answer(status, &[])) else {
                panic!("{status} is a failed change")
            };
            assert_eq!(id, status);
            assert!(reason.contains("cannot be scaled"), "{reason}");
        }
    }

    #[test]
    fn a_group_not_cluster_slash_nodegroup_is_refused_before_any_call() {
        assert_eq!(names("c/n", CALLS.read, "us-east-1").unwrap(), ("c", "n"));
        for bad in [
            "orders-nodes",
            "a/b/c",
            "",
            &format!("{}/n", "c".repeat(101)),
        ] {
            let e = names(bad, CALLS.set, "us-east-1").expect_err(bad);
            assert_eq!(e.kind, ErrorKind::Client, "{e}");
        }
        let e = bounds_of(Size::Count(3), CALLS.set, "n", "us-east-1").expect_err("one count");
        assert!(e.to_string().contains("min/desired/max"), "{e}");
    }

    /// `UpdateNodegroupConfig`'s answer, as the SDK parses it: an update
    /// EKS failed at once is the write's error, naming the update and each
    /// error with its resources; one in progress is followed by the read.
    #[test]
    fn an_update_eks_answers_failed_fails_the_write_naming_it() {
        use aws_sdk_eks::types::{ErrorDetail, NodegroupIssueCode};
        let failed = Update::builder()
            .id("u-1")
            .status(SdkStatus::Failed)
            .errors(
                ErrorDetail::builder()
                    .error_code(
                        NodegroupIssueCode::AsgInstanceLaunchFailures
                            .as_str()
                            .into(),
                    )
                    .error_message("no capacity")
                    .resource_ids("i-1")
                    .build(),
            )
            .build();
        let u = update_of(&failed);
        assert_eq!((u.id.as_str(), u.status), ("u-1", UpdateStatus::Failed));
        let e = answered(u, "nodes", "us-east-1").expect_err("a failed update");
        assert_eq!(
            (e.service, e.operation, e.kind),
            ("eks", "UpdateNodegroupConfig", ErrorKind::Client)
        );
        assert!(e.to_string().contains("update u-1 ended Failed"), "{e}");
        assert!(e.to_string().contains("no capacity (i-1)"), "{e}");
        let cancelled = Update::builder()
            .id("u-2")
            .status(SdkStatus::Cancelled)
            .build();
        assert!(answered(update_of(&cancelled), "nodes", "us-east-1").is_err());
        let going = Update::builder()
            .id("u-3")
            .status(SdkStatus::InProgress)
            .build();
        assert_eq!(
            answered(update_of(&going), "nodes", "us-east-1").unwrap(),
            None
        );
    }

    #[test]
    fn status_shows_its_bounds_and_eks_status_not_a_count_of_nodes() {
        let g = as_group(answer("UPDATING", &[]));
        assert_eq!(g.name, "orders-eks-use1/orders-nodes-use1");
        assert_eq!(
            (g.capacity.desired, g.in_service, g.status.as_deref()),
            (3, 0, Some("UPDATING"))
        );
    }
}
