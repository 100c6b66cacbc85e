//! Auto Scaling: groups and their capacity.

use async_trait::async_trait;
use aws_sdk_autoscaling::types::LifecycleState;

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
        let c = Call {
            service: SERVICE,
            operation: "DescribeAutoScalingGroups",
            resource: name,
            region,
        };
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
        }))
    }

    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call {
            service: SERVICE,
            operation: "UpdateAutoScalingGroup",
            resource: name,
            region,
        };
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
        match out {
            Ok(_) => Ok(()),
            // Auto Scaling reports an unknown group as a generic
            // `ValidationError` ("AutoScalingGroup name not found ...").
            Err(mut e)
                if e.code.as_deref() == Some("ValidationError")
                    && e.message.to_ascii_lowercase().contains("not found") =>
            {
                e.kind = ErrorKind::NotFound;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}
