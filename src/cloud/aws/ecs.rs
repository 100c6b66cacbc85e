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
//!
//! The adapter implements the capacity role itself ([`Scaler`]): a service
//! is a group named `cluster/service`, sized by its desired count, and its
//! answer is read straight into the role's [`Reading`]. How ECS's answer
//! maps to a reading is tested here on answers of ECS's shape, and against
//! moto by the emulator suite (`tests/it/ecs.rs`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ecs::types::{Deployment, Service, ServiceField, Tag};

use super::{Call, Regional, Sdk, call};
use crate::cloud::metered::Wire;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{
    Capacity, Change, CloudError, ComputeGroup, EcsDeployment, EcsService, ErrorKind, PairForm,
    Reading, Scaler, ScalingCalls, Size,
};

const SERVICE: &str = "ecs";

/// ECS's quota of tasks per service: a service has no maximum of its own,
/// so its groups read this as their ceiling.
pub const TASKS_PER_SERVICE: u32 = 5_000;

/// The calls of `[[ecs_service]]`'s capacity role.
pub const CALLS: ScalingCalls = ScalingCalls {
    kind: "ecs_service",
    read: "ecs:DescribeServices",
    set: "ecs:UpdateService",
    mark: "ecs:TagResource",
    unmark: "ecs:UntagResource",
    calls: &["ecs:DescribeServices", "ecs:UpdateService"],
    waits: &["ecs:ServiceStable"],
};

/// The capacity role over ECS: services named `cluster/service`.
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

/// `cluster/service` as the two names, checked before any call (a journal
/// or a mark handed it; ECS names are 1-255 letters, digits, hyphens and
/// underscores).
pub fn names<'a>(
    group: &'a str,
    call: &'static str,
    region: &str,
) -> Result<(&'a str, &'a str), CloudError> {
    FORM.names(group, call, region)
}

/// ECS's `cluster/service`: names of 1-255 letters, digits, hyphens and
/// underscores.
pub const FORM: PairForm = PairForm {
    max: 255,
    form: "cluster/service",
};

/// Where a service's size change stands (pure). A change of the desired
/// count starts no deployment: ECS starts or stops tasks under the
/// deployments it has, so a deployment in progress is someone's code
/// rollout, not drctl's change, and is neither waited on nor written
/// around (the service's running count says when the count serves). A
/// deployment whose rollout `FAILED` (the circuit breaker gave up; with
/// rollback on, the failed one is no longer `PRIMARY`) is a failure,
/// named by its id and ECS's reason.
pub fn change_of(s: &EcsService) -> Change {
    match (s.deployments.iter()).find(|d| d.rollout.as_deref() == Some("FAILED")) {
        Some(d) => Change::Failed {
            id: d.id.clone(),
            reason: (d.reason.clone()).unwrap_or_else(|| "no reason given".into()),
        },
        None => Change::Settled,
    }
}

/// A service as the capacity role reads it (pure).
pub fn reading(s: EcsService) -> Reading {
    Reading {
        size: Size::Count(s.desired),
        serving: s.running,
        change: change_of(&s),
        handle: s.arn,
        state: format!("{}, {} running, {} pending", s.status, s.running, s.pending),
        marks: s.tags,
        ceiling: None,
        balanced_by: s.target_groups,
        targets: Vec::new(),
    }
}

/// A service's size as a group of `status`: its desired count, between no
/// minimum and ECS's quota.
pub fn capacity(desired: u32) -> Capacity {
    Capacity {
        min: 0,
        desired,
        max: TASKS_PER_SERVICE,
    }
}

/// A service read as a group of `status` (pure; tasks running are in
/// service).
pub fn as_group(s: EcsService) -> ComputeGroup {
    ComputeGroup {
        name: format!("{}/{}", s.cluster, s.name),
        region: s.region,
        capacity: capacity(s.desired),
        in_service: s.running,
        instances: s.running + s.pending,
        tags: s.tags,
        status: Some(s.status),
        notes: Vec::new(),
        target_groups: s.target_groups,
    }
}

#[async_trait]
impl Scaler for EcsApi {
    fn calls(&self) -> &'static ScalingCalls {
        &CALLS
    }

    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        Ok(self.service(wire, region, group).await?.map(reading))
    }

    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        Ok(self.service(wire, region, group).await?.map(as_group))
    }

    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let (cluster, service) = names(group, CALLS.set, region)?;
        let n = size.serving();
        (wire.call(CALLS.set, region, || {
            self.set_desired_count(region, cluster, service, n)
        }))
        .await?;
        Ok(None)
    }

    async fn mark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let arn = &read.handle;
        (wire.call(CALLS.mark, region, || self.tag_service(region, arn, marks))).await
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
            self.untag_service(region, arn, keys)
        }))
        .await
    }
}

impl EcsApi {
    /// Service `cluster/service` (`group`), read through `wire`.
    async fn service(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<EcsService>, CloudError> {
        let (cluster, service) = names(group, CALLS.read, region)?;
        (wire.call(CALLS.read, region, || {
            self.describe_service(region, cluster, service)
        }))
        .await
    }
}

impl EcsApi {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `DescribeServices`' answer, as the SDK parses it: a service whose
    /// rolling deployment's circuit breaker gave up, registered twice in one
    /// target group, tagged.
    #[test]
    fn a_described_service_reads_its_counts_failed_rollout_target_groups_and_tags() {
        use aws_sdk_ecs::types::{DeploymentRolloutState, LoadBalancer};
        let tg = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/workers/1";
        let answer = Service::builder()
            .service_name("orders-workers")
            .service_arn("arn:aws:ecs:us-east-1:1:service/orders-ecs-use1/orders-workers")
            .status("ACTIVE")
            .desired_count(4)
            .running_count(1)
            .pending_count(3)
            .deployments(
                Deployment::builder()
                    .id("ecs-svc/2")
                    .status("PRIMARY")
                    .rollout_state(DeploymentRolloutState::Failed)
                    .rollout_state_reason("tasks failed to start")
                    .desired_count(4)
                    .running_count(1)
                    .failed_tasks(3)
                    .build(),
            )
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(tg)
                    .container_port(80)
                    .build(),
            )
            .load_balancers(
                LoadBalancer::builder()
                    .target_group_arn(tg)
                    .container_port(81)
                    .build(),
            )
            .tags(Tag::builder().key("drctl:drill-run").value("r1").build())
            .build();
        let s = service_of(&answer, "us-east-1", "orders-ecs-use1", "orders-workers");
        assert_eq!(s.primary().map(|d| d.failed_tasks), Some(3));
        let r = reading(s);
        assert_eq!((r.size, r.serving), (Size::Count(4), 1));
        assert_eq!(
            r.change,
            Change::Failed {
                id: "ecs-svc/2".into(),
                reason: "tasks failed to start".into()
            }
        );
        assert_eq!(r.balanced_by, [tg], "one target group, however many ports");
        assert_eq!(
            r.marks.get("drctl:drill-run").map(String::as_str),
            Some("r1")
        );
        assert_eq!(r.state, "ACTIVE, 1 running, 3 pending");
        assert!(r.handle.ends_with("service/orders-ecs-use1/orders-workers"));
    }

    #[test]
    fn a_group_not_cluster_slash_service_is_refused_before_any_call() {
        assert_eq!(names("c/s", CALLS.read, "us-east-1").unwrap(), ("c", "s"));
        for bad in [
            "orders-workers",
            "a/b/c",
            "",
            "a b/c",
            &format!("{}/s", "c".repeat(256)),
        ] {
            let e = names(bad, CALLS.set, "us-east-1").expect_err(bad);
            assert_eq!(
                (e.operation, e.kind),
                ("UpdateService", ErrorKind::Client),
                "{e}"
            );
        }
    }

    fn service(deployments: Vec<EcsDeployment>) -> EcsService {
        EcsService {
            cluster: "c".into(),
            name: "s".into(),
            region: "us-east-1".into(),
            arn: "arn".into(),
            status: "ACTIVE".into(),
            desired: 4,
            running: 1,
            pending: 3,
            deployments,
            target_groups: Vec::new(),
            tags: BTreeMap::new(),
        }
    }

    fn deployment(id: &str, status: &str, rollout: Option<&str>, running: u32) -> EcsDeployment {
        EcsDeployment {
            id: id.into(),
            status: status.into(),
            rollout: rollout.map(str::to_string),
            reason: rollout.map(|r| format!("ECS deployment {id} {r}")),
            desired: 4,
            running,
            failed_tasks: 0,
        }
    }

    #[test]
    fn a_failed_rollout_is_named_by_its_deployment_and_reason_and_a_code_rollout_is_not_waited_on()
    {
        let s = service(vec![deployment("d1", "PRIMARY", Some("FAILED"), 1)]);
        assert_eq!(
            change_of(&s),
            Change::Failed {
                id: "d1".into(),
                reason: "ECS deployment d1 FAILED".into()
            }
        );
        // With rollback on, the failed deployment is no longer PRIMARY.
        let s = service(vec![
            deployment("d0", "PRIMARY", Some("IN_PROGRESS"), 1),
            deployment("d1", "ACTIVE", Some("FAILED"), 0),
        ]);
        assert!(matches!(change_of(&s), Change::Failed { id, .. } if id == "d1"));
        // Someone's code rollout under way: no change of drctl's.
        let s = service(vec![deployment("d1", "PRIMARY", Some("IN_PROGRESS"), 1)]);
        assert_eq!(change_of(&s), Change::Settled);
        let s = service(vec![
            deployment("d2", "PRIMARY", Some("COMPLETED"), 4),
            deployment("d1", "ACTIVE", None, 2),
        ]);
        assert_eq!(change_of(&s), Change::Settled);
        // No rollout state (not a rolling deployment): settled.
        assert_eq!(change_of(&service(vec![])), Change::Settled);
    }

    #[test]
    fn a_reading_serves_only_at_its_size_with_nothing_under_way() {
        let mut r = reading(service(vec![deployment(
            "d1",
            "PRIMARY",
            Some("COMPLETED"),
            4,
        )]));
        assert!(!r.serves(Size::Count(4)), "1 of 4 running");
        r.serving = 4;
        assert!(r.serves(Size::Count(4)));
        assert!(!r.serves(Size::Count(5)));
        r.change = Change::Rolling("d1".into());
        assert!(!r.serves(Size::Count(4)));
    }
}
