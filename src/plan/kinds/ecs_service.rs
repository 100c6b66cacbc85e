//! `[[ecs_service]]`: an ECS service per region, named with its cluster
//! (`cluster/service`), raised to its active desired count in the target
//! by a failover, through the capacity role alone.
//!
//! A service is sized by its desired count (`UpdateService`); ECS starts
//! the tasks under its `PRIMARY` deployment, and the raise is done when
//! the service runs the count with no rollout under way. A deployment
//! whose circuit breaker gave up (`rolloutState` `FAILED`) fails the step,
//! naming the deployment and ECS's reason. A drill's marks are tags on the
//! service, so a sweep finds a raise without the drill's journal.
//!
//! This kind is the capacity role's proof: its table (here), its adapter
//! (`cloud::aws::ecs`) and its role ([`Groups`] and [`Scaling`]) are all it
//! has; the generic steps (`steps::raise`, `steps::drill_raise`), the
//! cleanup and the sweep do the rest.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::scaling::{About, Change, Reading, Scaling, ScalingCalls};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::{Capacity, CloudError, Clouds, ComputeGroup, EcsService, Size};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// ECS's quota of tasks per service: a service has no maximum of its own,
/// so its groups read this as their ceiling.
pub const TASKS_PER_SERVICE: u32 = 5_000;

/// An `[[ecs_service]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcsServiceSpec {
    /// Resource id.
    pub id: String,
    /// Desired count (tasks) in the active region.
    pub active: u32,
    /// Desired count (tasks) in standby regions.
    pub standby: u32,
    /// `cluster/service` per region.
    pub regions: PerRegion,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Whether a raise counts only what the load balancers' target groups
    /// it is registered in say healthy (default true; `false` for a group
    /// whose target groups must not gate a failover).
    #[serde(default = "super::yes", skip_serializing_if = "super::is_true")]
    pub wait_for_targets: bool,
}

/// Splits `cluster/service` into its two names (`None`: not of that form;
/// ECS names are 1-255 letters, digits, hyphens and underscores).
pub fn split(value: &str) -> Option<(&str, &str)> {
    super::split_pair(value, 255)
}

/// `cluster/service` as the two names ([`super::scaling::group_names`]).
fn names<'a>(
    group: &'a str,
    (call, region): (&'static str, &str),
) -> Result<(&'a str, &'a str), CloudError> {
    super::scaling::group_names(group, 255, (call, region), "cluster/service")
}

impl EcsServiceSpec {
    /// The cluster and service in `region`, when the plan names them.
    pub fn in_region(&self, region: &str) -> Option<(&str, &str)> {
        self.regions.get(region).and_then(|v| split(v))
    }
}

impl Kind for EcsServiceSpec {
    const KEYS: &'static [&'static str] = &[
        "id",
        "active",
        "standby",
        "regions",
        "after",
        "wait_for_targets",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] = &[];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Capacity(&EcsScaling);
}

impl Resource for EcsServiceSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        let n = super::scaling::normal(plan.home(), region, (self.active, self.standby));
        let s = if n == 1 { "" } else { "s" };
        format!(
            "ecs_service {:<18} {} (normally {n} task{s})",
            self.id, self.regions[region]
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        s.region_values(
            (&self.id, &self.regions),
            |v| split(v).is_some(),
            (
                "`cluster/service`",
                "write the ECS cluster and its service: `orders-ecs-use1/orders-workers`",
            ),
        );
        if self.active == 0 {
            s.error(
                path!["active"],
                format!("ecs_service `{}` has an active desired count of 0", self.id),
                "a failover would set the target's service to no tasks; give the count that serves production",
            );
        }
        for (key, n) in [("active", self.active), ("standby", self.standby)] {
            if n > TASKS_PER_SERVICE {
                s.error(
                    path![key],
                    format!(
                        "ecs_service `{}` {key} desired count {n} is above ECS's {TASKS_PER_SERVICE} tasks per service",
                        self.id
                    ),
                    "ECS refuses more tasks than its quota per service; split the service",
                );
            }
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Capacity(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        for region in self.regions.keys() {
            let n = super::scaling::normal(w.home, region, (self.active, self.standby));
            if let Some((cluster, service)) = self.in_region(region) {
                w.fake.add_ecs_service(region, cluster, service, n);
            }
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.in_region(region).into_iter())
            .map(|(cluster, service)| format!("ecs:{region}/{cluster}/{service}"))
            .collect()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        for v in self.regions.values_mut() {
            if let Some((cluster, service)) = split(v) {
                *v = format!("{cluster}{tag}/{service}{tag}");
            }
        }
    }
}

/// A service's size as a group of `status`: its desired count, between no
/// minimum and ECS's quota.
fn capacity(desired: u32) -> Capacity {
    Capacity {
        min: 0,
        desired,
        max: TASKS_PER_SERVICE,
    }
}

/// A service read as a group of `status` (tasks running are in service).
fn as_group(s: EcsService) -> ComputeGroup {
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
impl Groups for EcsServiceSpec {
    fn exclusive(&self) -> bool {
        false
    }

    fn waits_for_targets(&self) -> bool {
        self.wait_for_targets
    }

    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        let (cluster, service) = self.in_region(region)?;
        Some((region.to_string(), format!("{cluster}/{service}")))
    }

    fn group(&self, region: &str) -> Option<&str> {
        self.regions.get(region).map(String::as_str)
    }

    fn standby(&self) -> Capacity {
        capacity(self.standby)
    }

    fn active(&self) -> Capacity {
        capacity(self.active)
    }

    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        match self.in_region(region) {
            Some((cluster, service)) => Ok(clouds
                .ecs
                .describe_service(region, cluster, service)
                .await?
                .map(as_group)),
            None => Ok(None),
        }
    }
}

/// The capacity role's actions on ECS services (`cluster/service`).
pub struct EcsScaling;

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

fn reading(s: EcsService) -> Reading {
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

#[async_trait]
impl Scaling for EcsScaling {
    fn about(&self) -> &'static About {
        &About {
            noun: "ECS service",
            unit: "tasks",
            missing_hint: "create it (terraform/ecs.tf) or fix `cluster/service` in the plan",
            label: "service",
            serves_from_zero: false,
            carries_marks: true,
            max_follows: false,
            calls: ScalingCalls {
                read: "ecs:DescribeServices",
                set: "ecs:UpdateService",
                mark: "ecs:TagResource",
                unmark: "ecs:UntagResource",
                calls: &["ecs:DescribeServices", "ecs:UpdateService"],
                waits: &["ecs:ServiceStable"],
            },
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Count(planned.desired)
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
        let (cluster, service) = names(group, ("ecs:DescribeServices", region))?;
        let read = clouds
            .ecs
            .describe_service(region, cluster, service)
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
        let (cluster, service) = names(group, ("ecs:UpdateService", region))?;
        clouds
            .ecs
            .set_desired_count(region, cluster, service, size.serving())
            .await?;
        Ok(None)
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
        clouds.ecs.tag_service(region, &read.handle, marks).await
    }

    async fn unmark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        clouds.ecs.untag_service(region, &read.handle, keys).await
    }

    fn manual(&self, region: &str, group: &str, size: Size) -> String {
        let (cluster, service) = split(group).unwrap_or((group, group));
        format!(
            "aws ecs update-service --region {region} --cluster {cluster} --service {service} --desired-count {size}, then remove its drctl:drill-* tags (aws ecs untag-resource)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::EcsDeployment;

    #[test]
    fn a_region_names_a_cluster_and_its_service() {
        assert_eq!(
            split("orders-ecs-use1/orders-workers"),
            Some(("orders-ecs-use1", "orders-workers"))
        );
        let long = "a".repeat(256);
        for bad in [
            "orders-workers",
            "/s",
            "c/",
            "a/b/c",
            "a b/c",
            "",
            &format!("{long}/s"),
        ] {
            assert_eq!(split(bad), None, "{bad}");
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
