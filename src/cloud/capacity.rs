//! The narrow traits of the AWS capacity groups a failover raises: Auto
//! Scaling groups, EKS managed node groups and ECS services (the capacity
//! role's kinds `[[compute]]`, `[[node_group]]` and `[[ecs_service]]` act
//! through them). Apart from `cloud/mod.rs` so that each file stays one
//! reader's size; re-exported there, where every other trait lives.

use async_trait::async_trait;

use super::{
    Capacity, CloudError, ComputeGroup, EcsService, NodeGroup, NodeGroupUpdate, Workload,
    WorkloadRef,
};

/// Auto Scaling-style compute groups.
#[async_trait]
pub trait Compute: Send + Sync {
    /// Describes one group; `Ok(None)` when it does not exist in `region`.
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ComputeGroup>, CloudError>;

    /// Sets the group's minimum, desired and maximum capacity in one call.
    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError>;

    /// Adds or replaces tags on the group (CreateOrUpdateTags, not
    /// propagated to instances).
    async fn tag_group(
        &self,
        region: &str,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError>;

    /// Removes the tags named `keys` from the group (absent keys are fine).
    async fn untag_group(
        &self,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), CloudError>;
}

/// EKS managed node groups: their scaling configuration and its updates.
#[async_trait]
pub trait NodeGroups: Send + Sync {
    /// Describes node group `name` of `cluster`; `Ok(None)` when it (or its
    /// cluster) does not exist in `region`.
    async fn describe_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<NodeGroup>, CloudError>;

    /// Sets the node group's min, desired and max size in one update
    /// (`UpdateNodegroupConfig` with `scalingConfig`); the update as EKS
    /// answered it.
    async fn scale_node_group(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<NodeGroupUpdate, CloudError>;

    /// Puts `tags` on the node group `arn` names (`TagResource`).
    async fn tag_node_group(
        &self,
        region: &str,
        arn: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError>;

    /// Takes the tags named `keys` off the node group `arn` names
    /// (`UntagResource`).
    async fn untag_node_group(
        &self,
        region: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), CloudError>;
}

/// ECS services: their desired count, deployments and tags.
///
/// A service is named by its cluster and its name (`DescribeServices`
/// answers a service it does not know as a failure of the call, not an
/// error: that is `Ok(None)`); tags go on its ARN.
#[async_trait]
pub trait EcsServices: Send + Sync {
    /// Describes service `name` of `cluster` with its tags; `Ok(None)`
    /// when it (or its cluster) does not exist in `region`.
    async fn describe_service(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<EcsService>, CloudError>;

    /// Sets the service's desired count (`UpdateService` with
    /// `desiredCount` only: no new deployment).
    async fn set_desired_count(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        desired: u32,
    ) -> Result<(), CloudError>;

    /// Adds or replaces tags on the service (`TagResource` of `arn`).
    async fn tag_service(
        &self,
        region: &str,
        arn: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError>;

    /// Removes the tags named `keys` from the service (`UntagResource`;
    /// absent keys are fine).
    async fn untag_service(
        &self,
        region: &str,
        arn: &str,
        keys: &[String],
    ) -> Result<(), CloudError>;
}

/// Kubernetes workloads in a cluster drctl reaches (a kubeconfig context,
/// an EKS or a GKE cluster): their replicas, the HPA that scales them, a
/// CronJob's suspension, and drctl's marks as annotations. `region` is the
/// region the plan places the cluster in (for messages and the meter).
#[async_trait]
pub trait Workloads: Send + Sync {
    /// Reads the workload and the HPA that targets it; `Ok(None)` when the
    /// workload does not exist (its namespace neither).
    async fn describe_workload(
        &self,
        region: &str,
        workload: &WorkloadRef,
    ) -> Result<Option<Workload>, CloudError>;

    /// Sets its replicas through its `scale` subresource (a CronJob:
    /// `spec.suspend`, false for one, true for none).
    async fn scale_workload(
        &self,
        region: &str,
        workload: &WorkloadRef,
        replicas: u32,
    ) -> Result<(), CloudError>;

    /// Sets the bounds of the HPA named `autoscaler` in its namespace.
    async fn bound_autoscaler(
        &self,
        region: &str,
        workload: &WorkloadRef,
        autoscaler: &str,
        bounds: (u32, u32),
    ) -> Result<(), CloudError>;

    /// Puts drctl's marks on the workload as annotations (`Some`) or takes
    /// them off (`None`), named as drctl's tags name them.
    async fn annotate_workload(
        &self,
        region: &str,
        workload: &WorkloadRef,
        marks: &std::collections::BTreeMap<String, Option<String>>,
    ) -> Result<(), CloudError>;
}
