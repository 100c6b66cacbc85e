//! Auto Scaling: groups, their capacity and their tags.
//!
//! Tags are written with `PropagateAtLaunch=false`: they describe the group
//! (a drill keeps the capacity to restore in them), not its instances.
//! A `ValidationError` saying "not found" (how Auto Scaling answers a call
//! on an unknown group) is reported as not found. moto 5.2.5 answers
//! CreateOrUpdateTags and DeleteTags on an unknown group with an HTTP 500
//! instead, which is retried and then reported as a server error.

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{LifecycleState, Tag};

use super::{Call, Regional, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{Capacity, CloudError, ComputeGroup, ErrorKind};

const SERVICE: &str = "autoscaling";

/// [`crate::cloud::Compute`] over Auto Scaling.
pub struct AutoScalingCompute {
    clients: Regional<aws_sdk_autoscaling::Client>,
    retry: RetryPolicy,
}

impl AutoScalingCompute {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::autoscaling),
            retry,
        }
    }
}

/// Auto Scaling reports an unknown group as a generic `ValidationError`
/// ("AutoScalingGroup name not found ..."): that is a [`ErrorKind::NotFound`].
fn group_not_found(mut e: CloudError) -> CloudError {
    if e.code.as_deref() == Some("ValidationError")
        && e.message.to_ascii_lowercase().contains("not found")
    {
        e.kind = ErrorKind::NotFound;
    }
    e
}

fn count(n: Option<i32>) -> u32 {
    n.unwrap_or(0).max(0) as u32
}

#[async_trait]
impl crate::cloud::Compute for AutoScalingCompute {
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeAutoScalingGroups", name, region);
        let out = call(&self.retry, c, || {
            client
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(name)
                .send()
        })
        .await?;
        // An unknown name is not an error here: the list is just empty.
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
        else {
            return Ok(None);
        };
        let in_service = g
            .instances()
            .iter()
            .filter(|i| {
                i.lifecycle_state() == Some(&LifecycleState::InService)
                    && i.health_status()
                        .is_some_and(|h| h.eq_ignore_ascii_case("healthy"))
            })
            .count() as u32;
        Ok(Some(ComputeGroup {
            name: name.to_string(),
            region: region.to_string(),
            capacity: Capacity {
                min: count(g.min_size()),
                desired: count(g.desired_capacity()),
                max: count(g.max_size()),
            },
            in_service,
            instances: g.instances().len() as u32,
            tags: g
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
            status: None,
            notes: Vec::new(),
            target_groups: (g.target_group_arns().iter()).map(String::clone).collect(),
        }))
    }

    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "UpdateAutoScalingGroup", name, region);
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let out = call(&self.retry, c, || {
            client
                .update_auto_scaling_group()
                .auto_scaling_group_name(name)
                .min_size(to_i32(capacity.min))
                .max_size(to_i32(capacity.max))
                .desired_capacity(to_i32(capacity.desired))
                .send()
        })
        .await;
        out.map(|_| ()).map_err(group_not_found)
    }

    async fn tag_group(
        &self,
        region: &str,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        if tags.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CreateOrUpdateTags", name, region);
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .value(v)
                    .propagate_at_launch(false)
                    .build()
            })
            .collect();
        call(&self.retry, c, || {
            client
                .create_or_update_tags()
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map_err(group_not_found)?;
        Ok(())
    }

    async fn untag_group(
        &self,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        if keys.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DeleteTags", name, region);
        let tags: Vec<Tag> = keys
            .iter()
            .map(|k| {
                Tag::builder()
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .build()
            })
            .collect();
        call(&self.retry, c, || {
            client.delete_tags().set_tags(Some(tags.clone())).send()
        })
        .await
        .map_err(group_not_found)?;
        Ok(())
    }
}
