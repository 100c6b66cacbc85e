//! The capacity role's actions: what one generic failover step
//! (`steps::raise`), one generic drill step and its cleanup
//! (`steps::drill_raise`) and the sweep (`cleanup::sweep`) ask of a
//! capacity kind, so a new capacity kind is its table, its adapter and
//! this role: no step of its own, no `Temp` of its own, no sweep finder.
//!
//! # Why a role of its own, beside [`Groups`](super::Groups)
//!
//! [`Groups`](super::Groups) answers what the plan says of a resource's
//! groups: their names and sizes. A reader with a plan (a drill's look
//! for another drill's raise, the sweep, `watch`) reads a group through
//! these actions too, by the name `Groups::raised_group` gives it, so
//! every reader and every step read a group one way. These actions are
//! also asked where no plan is at hand: a drill's cleanup after a crash,
//! a sweep that found a mark on a group, know only the kind, the region
//! and the group's name as the journal or the mark records them. So they
//! are addressed by that name and reached through the kind
//! ([`ResourceKind::scaling`](super::ResourceKind::scaling), or a
//! resource's [`Scaled::scaling`](super::Scaled::scaling)), never through
//! a `match` on kinds.
//!
//! A group's size here is a [`Size`]: one count (an ECS service's desired
//! count, a Cloud Run service's floor) or three bounds (an Auto Scaling
//! group's min, desired and max), as the kind counts it. Each method is
//! the kind's to answer: none has a default.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::cloud::{Capacity, CloudError, Clouds, Size};

/// Where a change of a group's size stands, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    /// Nothing under way: the group serves what it reads.
    Settled,
    /// A change is being rolled out (its id, as the provider names it).
    Rolling(String),
    /// The last change failed: its id and the provider's reason.
    Failed {
        /// The change (an ECS deployment's id).
        id: String,
        /// Why, as the provider says it.
        reason: String,
    },
}

/// A group as the capacity role reads it, whatever the kind (kept by
/// preflight as its finding's facts, for the failover's step to act on
/// while fresh).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    /// What it is set to serve (an ECS service's desired count, an Auto
    /// Scaling group's three bounds).
    pub size: Size,
    /// What serves now (tasks running).
    pub serving: u32,
    /// Whether a change is under way, or failed.
    pub change: Change,
    /// The drill marks (tags, labels) on it: a drill's run, expiry and
    /// restore point, so any machine finds and returns a raise without the
    /// drill's journal (`steps::drill_names`).
    pub marks: BTreeMap<String, String>,
    /// What marks are put on (an ARN).
    pub handle: String,
    /// The provider's words for its state, for messages (`ACTIVE`).
    pub state: String,
    /// The most it can be set to serve, when something besides its size
    /// caps it (a managed instance group's autoscaler's maximum): a size
    /// above it is refused before any write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<u32>,
    /// The load balancers' target groups it is registered in (their ARNs),
    /// as its read names them (an Auto Scaling group's, an ECS service's):
    /// where traffic reaches it. Empty for a kind without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub balanced_by: Vec<String>,
    /// What those target groups count healthy, when the step that reads it
    /// waits through them (`steps::capacity::Group`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::cloud::TargetCount>,
}

impl Reading {
    /// What serves: its own count (instances in service, tasks running),
    /// and no more than any target group it was read through counts
    /// healthy (an instance in service that its load balancer sends
    /// nothing to does not serve).
    pub fn served(&self) -> u32 {
        (self.targets.iter())
            .map(|t| t.healthy)
            .fold(self.serving, u32::min)
    }

    /// Whether it serves `size` and nothing is under way: what a raise
    /// and a restore wait for.
    pub fn serves(&self, size: Size) -> bool {
        self.size == size && self.served() >= size.serving() && self.change == Change::Settled
    }
}

/// What a capacity kind's groups are, in words and calls: the same for
/// every group of the kind, so one value the kind gives
/// ([`Scaling::about`]) rather than a method for each.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// What a group of the kind is called in sentences (`ECS service`).
    pub noun: &'static str,
    /// What `status` calls its groups (`compute`, `nodes`).
    pub label: &'static str,
    /// Whether a group serves at a size of none (a request starts a Cloud
    /// Run instance): its standby's checks can pass at any size.
    pub serves_from_zero: bool,
    /// What its size counts (`tasks`).
    pub unit: &'static str,
    /// What to do when a group is missing (create it, or fix the plan).
    pub missing_hint: &'static str,
    /// Whether its groups carry marks (tags, labels) a drill can put on
    /// them: without, a drill's raise is found through its journal alone
    /// (a managed instance group carries none), and [`Scaling::mark`] is
    /// never called.
    pub carries_marks: bool,
    /// Whether its max is written with its size, to what the plan says
    /// for that state (a Kubernetes workload's HPA bounds, 1..1 at standby,
    /// 3..12 active): its max at standby below the active size is then the
    /// plan's, not a drift, and neither `status` nor preflight judges it
    /// (`steps::capacity::short_of`).
    pub max_follows: bool,
    /// Its calls.
    pub calls: ScalingCalls,
}

/// The API calls of a kind's actions, as the model of the clouds names
/// them (`ecs:UpdateService`): the steps' costs, previews and fences.
#[derive(Debug, Clone, Copy)]
pub struct ScalingCalls {
    /// The read.
    pub read: &'static str,
    /// The write of a size.
    pub set: &'static str,
    /// The write of marks.
    pub mark: &'static str,
    /// The removal of marks.
    pub unmark: &'static str,
    /// The calls a raise makes once (its read and its write).
    pub calls: &'static [&'static str],
    /// The model's slow operations a raise waits through.
    pub waits: &'static [&'static str],
}

/// The three bounds of `size` for a kind whose groups have three (an Auto
/// Scaling group, an EKS node group), or an error naming `call` (a model
/// label, `eks:UpdateNodegroupConfig`), the group and `region`: one count
/// there is another drctl's journal or a forged mark, and nothing is
/// guessed from it. The steps refuse a size of another shape before any
/// write (`steps::capacity::decide_size`); this is the kind's own guard.
pub fn bounds_of(
    size: Size,
    (call, group, region): (&'static str, &str, &str),
) -> Result<Capacity, CloudError> {
    match size {
        Size::Bounds(c) => Ok(c),
        Size::Count(n) => {
            let (service, operation) = super::call_parts(call);
            Err(CloudError::new(
                service,
                operation,
                group,
                region,
                crate::cloud::ErrorKind::Client,
                format!("a size of one count ({n}) where min/desired/max is wanted"),
            ))
        }
    }
}

/// A group's two names as its kind writes them (`form`: `cluster/service`,
/// `project/service`; each name at most `max` characters,
/// [`super::split_pair`]), or an error naming the value and `call` (a
/// model label, `ecs:UpdateService`) in `region`: what a journal or a
/// mark handed the role is checked before any call.
pub fn group_names<'a>(
    group: &'a str,
    max: usize,
    (call, region): (&'static str, &str),
    form: &str,
) -> Result<(&'a str, &'a str), CloudError> {
    super::split_pair(group, max).ok_or_else(|| {
        let (service, operation) = super::call_parts(call);
        CloudError::new(
            service,
            operation,
            group,
            region,
            crate::cloud::ErrorKind::Client,
            format!("`{group}` is not `{form}`"),
        )
    })
}

/// The capacity role's actions on one kind's groups, addressed by the
/// region and the name a journal records (`Groups::raised_group`).
#[async_trait]
pub trait Scaling: Sync {
    /// What the kind's groups are, in words and calls.
    fn about(&self) -> &'static About;
    /// The size of a group the plan sizes at `planned` (the kind's
    /// `Groups::active`, or its `Groups::standby`), as this kind counts
    /// it: one count or three bounds.
    fn size_of(&self, planned: Capacity) -> Size;
    /// The call a write of its size makes to the group read as `read` (an
    /// autoscaled managed instance group's minimum is its autoscaler's
    /// `patch`, not the group's `resize`): what a preview people approve
    /// shows, and what a fence names.
    fn set_call(&self, read: &Reading) -> &'static str;
    /// Reads group `group` in `region` (`Ok(None)`: it does not exist).
    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError>;
    /// Sets its size. `key` names this write (the run's, the group's and
    /// the size's, or a cleanup's own): a provider that takes a request id
    /// answers the same write sent again after a lost answer with what it
    /// did the first time. Returns the provider's operation to follow
    /// until it is done ([`Scaling::answers`]), when the write answers
    /// one; `None`: the write took effect when it was answered.
    async fn set(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
        size: Size,
        key: &str,
    ) -> Result<Option<String>, CloudError>;
    /// How its writes are answered: at once, or with a provider
    /// operation the step follows until it is done ([`super::Answers`]).
    fn answers(&self) -> super::Answers<'_>;
    /// Puts `marks` on it (`read` is its [`Scaling::read`]).
    async fn mark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError>;
    /// Takes the marks named `keys` off it.
    async fn unmark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError>;
    /// The command that returns group `group` in `region` to `size` by
    /// hand, for a cleanup that could not.
    fn manual(&self, region: &str, group: &str, size: Size) -> String;
}

/// The size a capacity kind's group has when no run has moved it: the
/// active size in the plan's home region, the standby size elsewhere.
pub fn normal<T: Copy>(home: &str, region: &str, (active, standby): (T, T)) -> T {
    if region == home { active } else { standby }
}
