//! ECS: services, their desired count, deployments and tags.
//!
//! A service is sized by `UpdateService` with `desiredCount` alone, which
//! starts no new deployment: ECS starts (or stops) tasks under the
//! `PRIMARY` deployment, whose `runningCount` climbs to the new count; a
//! rolling deployment's `rolloutState` turns `FAILED` (with its reason)
//! when the deployment circuit breaker gives up. `DescribeServices`
//! answers an unknown service as a `MISSING` failure inside a successful
//! answer and an unknown cluster with `ClusterNotFoundException`: both are
//! "no such service" here. Tags are read with `include=TAGS` and written
//! on the service's ARN.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecs::types::{Deployment, Service, ServiceField, Tag};

use super::{Call, Regional, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{CloudError, EcsDeployment, EcsService, ErrorKind};

const SERVICE: &str = "ecs";

/// [`crate::cloud::EcsServices`] over ECS.
pub struct EcsApi {
    clients: Regional<aws_sdk_ecs::Client>,
    retry: RetryPolicy,
}

impl EcsApi {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::ecs),
            retry,
        }
    }
}

/// ECS's names for what does not exist are [`ErrorKind::NotFound`].
fn not_found(mut e: CloudError) -> CloudError {
    if matches!(
        e.code.as_deref(),
        Some("ClusterNotFoundException" | "ServiceNotFoundException")
    ) {
        e.kind = ErrorKind::NotFound;
    }
    e
}

fn count(n: i32) -> u32 {
    n.max(0) as u32
}

fn deployment_of(d: &Deployment) -> EcsDeployment {
    EcsDeployment {
        id: d.id().unwrap_or_default().to_string(),
        status: d.status().unwrap_or_default().to_string(),
        rollout: d.rollout_state().map(|r| r.as_str().to_string()),
        reason: d.rollout_state_reason().map(str::to_string),
        desired: count(d.desired_count()),
        running: count(d.running_count()),
        failed_tasks: count(d.failed_tasks()),
    }
}

fn service_of(s: &Service, region: &str, cluster: &str, name: &str) -> EcsService {
    EcsService {
        cluster: cluster.to_string(),
        name: name.to_string(),
        region: region.to_string(),
        arn: s.service_arn().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        desired: count(s.desired_count()),
        running: count(s.running_count()),
        pending: count(s.pending_count()),
        deployments: s.deployments().iter().map(deployment_of).collect(),
        target_groups: (s.load_balancers().iter())
            .filter_map(|lb| lb.target_group_arn().map(str::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        tags: (s.tags().iter())
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}

#[async_trait]
impl crate::cloud::EcsServices for EcsApi {
    async fn describe_service(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
    ) -> Result<Option<EcsService>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeServices", name, region);
        let out = call(&self.retry, c, || {
            client
                .describe_services()
                .cluster(cluster)
                .services(name)
                .include(ServiceField::Tags)
                .send()
        })
        .await
        .map_err(not_found);
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // A service deleted long ago is still described, INACTIVE: it is
        // as good as missing (ECS refuses to update it).
        Ok((out.services().iter())
            .find(|s| s.service_name() == Some(name) || s.service_arn() == Some(name))
            .map(|s| service_of(s, region, cluster, name))
            .filter(|s| !s.status.eq_ignore_ascii_case("INACTIVE")))
    }

    async fn set_desired_count(
        &self,
        region: &str,
        cluster: &str,
        name: &str,
        desired: u32,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "UpdateService", name, region);
        let n = i32::try_from(desired).unwrap_or(i32::MAX);
        call(&self.retry, c, || {
            client
                .update_service()
                .cluster(cluster)
                .service(name)
                .desired_count(n)
                .send()
        })
        .await
        .map_err(not_found)?;
        Ok(())
    }

    async fn tag_service(
        &self,
        region: &str,
        arn: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        if tags.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "TagResource", arn, region);
        let tags: Vec<Tag> = (tags.iter())
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
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

    async fn untag_service(
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
