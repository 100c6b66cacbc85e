//! EKS: managed node groups, their scaling configuration and its updates.
//!
//! A node group is scaled by `UpdateNodegroupConfig` with a `scalingConfig`;
//! EKS answers with an update (id, status) that `DescribeUpdate` follows.
//! EKS names an unknown cluster, node group or update with
//! `ResourceNotFoundException`: that is [`ErrorKind::NotFound`].
//! moto 5.2 applies the update at once (its answer is already
//! `Successful`) and does not serve `DescribeUpdate` (an HTTP 404 page):
//! see `localstack/README.md`.

use async_trait::async_trait;
use aws_sdk_eks::types::{NodegroupScalingConfig, Update, UpdateStatus as SdkStatus};

use super::{Call, Regional, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{Capacity, CloudError, ErrorKind, NodeGroup, NodeGroupUpdate, UpdateStatus};

const SERVICE: &str = "eks";

/// [`crate::cloud::NodeGroups`] over EKS.
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

#[async_trait]
impl crate::cloud::NodeGroups for EksNodeGroups {
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
