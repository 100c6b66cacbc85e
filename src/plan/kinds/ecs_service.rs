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
//! This kind is the capacity role's proof: its table and what is its own
//! of the role ([`Groups`] and [`Scaling`]: words, size, the command by
//! hand) are here, and its adapter (`cloud::aws::ecs`) implements the
//! role's port itself; the generic steps (`steps::raise`,
//! `steps::drill_raise`), the cleanup and the sweep do the rest.

use serde::{Deserialize, Serialize};

use super::scaling::{About, Reading, Scaling};
use super::{Groups, Kind, Resource, Shown};
pub use crate::cloud::aws::ecs::TASKS_PER_SERVICE;
use crate::cloud::aws::ecs::{CALLS, capacity};
use crate::cloud::{Capacity, Size};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

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
    crate::cloud::aws::ecs::FORM.split(value)
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
        (self.raised_group(region).into_iter())
            .map(|(at, group)| crate::cloud::fake::slow_key(CALLS.kind, &at, &group))
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
}

/// The capacity role's actions on ECS services (`cluster/service`).
pub struct EcsScaling;

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
            calls: CALLS,
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Count(planned.desired)
    }

    fn set_call(&self, _: &Reading) -> &'static str {
        self.about().calls.set
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
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
}
