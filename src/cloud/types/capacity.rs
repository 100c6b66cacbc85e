//! The capacity groups' types: a group's size (`Capacity`, the capacity
//! role's `Size`), and the AWS groups as read (Auto Scaling groups, ECS
//! services, EKS node groups and their updates). Apart from
//! `types/mod.rs` so that each file stays one reader's size; re-exported
//! there.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Capacity of a compute group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Capacity {
    /// Minimum size.
    pub min: u32,
    /// Desired size.
    pub desired: u32,
    /// Maximum size.
    pub max: u32,
}

impl Capacity {
    /// A capacity of `n` at each bound: what a plan that sizes a group by
    /// one count (a managed instance group's size, a Cloud Run floor)
    /// means by it.
    pub const fn exactly(n: u32) -> Self {
        Capacity {
            min: n,
            desired: n,
            max: n,
        }
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.min, self.desired, self.max)
    }
}

/// A group's size as the capacity role counts it, whatever its kind: one
/// count (an ECS service's desired count, a Cloud Run service's floor) or
/// three bounds (min, desired, max: an Auto Scaling group).
///
/// Written as a journal and a mark write it: a count as a number (`3`),
/// three bounds as `min/desired/max` in a mark and as a table in a journal;
/// read back exactly either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// One count.
    Count(u32),
    /// Three bounds.
    Bounds(Capacity),
}

impl Size {
    /// What the group is set to serve: the count, or the desired bound.
    pub fn serving(self) -> u32 {
        match self {
            Self::Count(n) => n,
            Self::Bounds(c) => c.desired,
        }
    }

    /// The size a raise of a group at `self` aims at, given the active
    /// size `active`: the active size, never below what the group already
    /// is, bound by bound (neither a failover nor a drill lowers a group:
    /// one scaled out beyond the plan, by an autoscaler or by hand, serves
    /// more than the plan asks). A count against bounds (a journal of
    /// another drctl) aims at `active`.
    pub fn raised(self, active: Size) -> Size {
        match (self, active) {
            (Self::Count(a), Self::Count(b)) => Self::Count(a.max(b)),
            (Self::Bounds(before), Self::Bounds(active)) => {
                let max = before.max.max(active.max);
                Self::Bounds(Capacity {
                    min: before.min.max(active.min),
                    desired: before.desired.max(active.desired).min(max),
                    max,
                })
            }
            (_, active) => active,
        }
    }

    /// Whether `other` is counted as this is: both one count, or both
    /// three bounds.
    pub fn same_shape(self, other: Size) -> bool {
        matches!(
            (self, other),
            (Self::Count(_), Self::Count(_)) | (Self::Bounds(_), Self::Bounds(_))
        )
    }

    /// Reads a size as [`Size`]'s `Display` writes it (`3`, `1/3/5`).
    pub fn parse(s: &str) -> Option<Size> {
        let mut it = s.split('/').map(|v| v.trim().parse::<u32>().ok());
        let first = it.next()??;
        let Some(desired) = it.next() else {
            return Some(Self::Count(first));
        };
        let c = Capacity {
            min: first,
            desired: desired?,
            max: it.next()??,
        };
        it.next().is_none().then_some(Self::Bounds(c))
    }
}

impl Default for Size {
    /// No count: what a step's output that lacks a size reads as.
    fn default() -> Self {
        Self::Count(0)
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Bounds(c) => write!(f, "{c}"),
        }
    }
}

/// A compute group and its instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeGroup {
    /// Group name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Configured capacity.
    pub capacity: Capacity,
    /// Instances in service (healthy and serving).
    pub in_service: u32,
    /// All instances, in any lifecycle state.
    pub instances: u32,
    /// The group's tags (a drill keeps the capacity to restore in them).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// The provider's status of the group, when it has one (an EKS node
    /// group's `ACTIVE`, `UPDATING`; `None` for an Auto Scaling group,
    /// whose instances in service say it instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What people should know of the group beside its state, as its kind
    /// reads it (a Cloud Run service with no minimum instance, whose
    /// cross-region service health Google cannot compute): said by
    /// `status` and preflight, never a reason it cannot take over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The load balancers' target groups it is registered in (their ARNs):
    /// what counts it healthy where traffic reaches it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<String>,
}

/// A load balancer's target group as it counts its targets
/// (`DescribeTargetHealth`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetCount {
    /// Its ARN.
    pub arn: String,
    /// Targets it sends traffic to (`healthy`).
    pub healthy: u32,
    /// Targets registered in it, in any state.
    pub registered: u32,
    /// The others, by their state and reason (`unhealthy:
    /// Target.FailedHealthChecks`), with how many.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub reasons: std::collections::BTreeMap<String, u32>,
    /// Why it could not be read, when it could not: none of its targets
    /// counts healthy then (unknown is not healthy), and it is said so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

impl TargetCount {
    /// Its name, as its ARN ends (`targetgroup/web/73e2d6bc24d8a067` ->
    /// `web`).
    pub fn name(&self) -> &str {
        let tail = self
            .arn
            .rsplit_once("targetgroup/")
            .map_or(self.arn.as_str(), |(_, t)| t);
        tail.split('/').next().unwrap_or(tail)
    }

    /// In words: `target group web: 1 of 4 healthy (3 unhealthy:
    /// Target.FailedHealthChecks)`.
    pub fn said(&self) -> String {
        if let Some(why) = &self.unread {
            return format!("target group {}: not read ({why})", self.name());
        }
        let others: Vec<String> = (self.reasons.iter())
            .map(|(why, n)| format!("{n} {why}"))
            .collect();
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(" ({})", others.join(", "))
        };
        format!(
            "target group {}: {} of {} healthy{others}",
            self.name(),
            self.healthy,
            self.registered
        )
    }
}

/// An ECS service as read (`DescribeServices` with its tags).
///
/// A service is sized by its desired count alone (what `UpdateService`
/// sets); ECS then starts or stops tasks, and its deployments say how far
/// that went: the `PRIMARY` deployment carries the rollout's state
/// (`IN_PROGRESS`, `COMPLETED`, `FAILED` with its reason, set by the
/// deployment circuit breaker), an `ACTIVE` one is an older deployment
/// still being drained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsService {
    /// The cluster it runs in.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Its ARN (what tags are put on).
    pub arn: String,
    /// ECS's status of the service (`ACTIVE`, `DRAINING`, `INACTIVE`).
    pub status: String,
    /// Tasks it should run.
    pub desired: u32,
    /// Tasks running.
    pub running: u32,
    /// Tasks starting.
    pub pending: u32,
    /// Its deployments, the `PRIMARY` one first as ECS lists it.
    pub deployments: Vec<EcsDeployment>,
    /// The service's tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// The target groups its load balancers register its tasks in
    /// (`loadBalancers[].targetGroupArn`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_groups: Vec<String>,
}

/// One deployment of an ECS service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcsDeployment {
    /// Its id (`ecs-svc/1234...`).
    pub id: String,
    /// `PRIMARY` (the newest), `ACTIVE` (older, draining) or `INACTIVE`.
    pub status: String,
    /// The rollout's state (`IN_PROGRESS`, `COMPLETED`, `FAILED`), when
    /// ECS reports one (rolling updates only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<String>,
    /// Why the rollout is in its state, as ECS says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Tasks it should run.
    pub desired: u32,
    /// Its tasks running.
    pub running: u32,
    /// Its tasks that failed to start.
    pub failed_tasks: u32,
}

impl EcsService {
    /// Whether ECS reports it `ACTIVE` (not being deleted).
    pub fn active(&self) -> bool {
        self.status.eq_ignore_ascii_case("ACTIVE")
    }

    /// Its `PRIMARY` deployment, when it has one.
    pub fn primary(&self) -> Option<&EcsDeployment> {
        self.deployments.iter().find(|d| d.status == "PRIMARY")
    }
}

/// An EKS managed node group as read (`DescribeNodegroup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGroup {
    /// The EKS cluster it belongs to.
    pub cluster: String,
    /// Node group name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Its scaling configuration (min/desired/max nodes).
    pub capacity: Capacity,
    /// EKS's status (`ACTIVE`, `UPDATING`, `DEGRADED`, ...).
    pub status: String,
    /// The node group's tags.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Its ARN (what tags go on).
    #[serde(default)]
    pub arn: String,
    /// The health issues EKS reports on it (`code: message`), what a
    /// `DEGRADED` node group's launches failed of.
    #[serde(default)]
    pub health: Vec<String>,
}

impl NodeGroup {
    /// Whether EKS reports it `ACTIVE` (no update in flight, healthy).
    pub fn active(&self) -> bool {
        self.status.eq_ignore_ascii_case("ACTIVE")
    }
}

/// Where an EKS update stands (`DescribeUpdate`'s `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpdateStatus {
    /// Still being applied.
    InProgress,
    /// Applied.
    Successful,
    /// Refused or failed; its errors say why.
    Failed,
    /// Cancelled before it applied.
    Cancelled,
}

/// An EKS update (`UpdateNodegroupConfig`'s answer, `DescribeUpdate`'s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeGroupUpdate {
    /// The update's id.
    pub id: String,
    /// Where it stands.
    pub status: UpdateStatus,
    /// Its errors, as `code: message (resources)` (empty unless failed).
    pub errors: Vec<String>,
}
