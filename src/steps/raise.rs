//! `raise`: the one failover step of every capacity kind that the
//! capacity role's actions serve ([`Scaling`]): set the target's group to
//! its active size and wait until it serves it.
//!
//! Read, decide, act, through the role alone: the group is read, the pure
//! [`capacity::decide_size`] says what to do (nothing, wait for a change
//! under way, set), one fenced write sets the size, and the step waits
//! until the group serves it with nothing under way. A change the provider
//! reports failed (an ECS deployment's circuit breaker) fails the step,
//! naming the change and the provider's reason. A drill's marks on the
//! group (a drill that raised it and died, or was preempted by this
//! failover) come off first, before the size is set and waited on, so no
//! later cleanup or sweep lowers a group the failover owns.
//!
//! The step knows its resource's kind only to reach its role
//! ([`ResourceKind::scaling`]): a new capacity kind needs no step here.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capacity::{self, Driver, Group, SizeNext, decide_size};
use super::{Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, Phase};

/// Raise one capacity resource's group in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raise {
    /// Plan resource id.
    pub resource: String,
    /// Its kind (whose capacity role acts).
    pub of: ResourceKind,
    /// The group in the target, as its kind names it.
    pub group: String,
    /// The region the group lives in.
    pub region: String,
    /// The active size to reach.
    pub size: u32,
}

/// Part of the recovery; reversible (set the size back). Its calls are its
/// resource kind's (`capacity::cost_of`).
pub const TRAITS: Traits = capacity::GENERIC;

/// A failover raises every such group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    for t in capacity::raised_in_target(b) {
        let description = format!(
            "raise {} {} in {} to {} {}, wait until they serve",
            t.scaling.noun(),
            t.group,
            t.region,
            t.size,
            t.scaling.unit()
        );
        let s = Raise {
            resource: t.resource.clone(),
            of: t.of,
            group: t.group,
            region: t.region,
            size: t.size,
        };
        b.add(
            StepKind::Raise(s),
            Some(t.resource.clone()),
            Phase::of(t.of),
            vec![t.resource],
            description,
        );
    }
}

/// What a raise publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RaiseOutput {
    /// The group.
    pub group: String,
    /// Its region.
    pub region: String,
    /// Its size before.
    pub before: u32,
    /// Its size after.
    pub after: u32,
    /// What served after.
    pub serving: u32,
    /// Whether this step set the size.
    pub changed: bool,
    /// A drill's marks taken off the group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drill_marks_removed: Vec<String>,
}

impl StepOutput for RaiseOutput {
    const KIND: KindName = KindName::Raise;
}

impl Raise {
    /// The group, through its kind's role (`None`: the kind has none, a
    /// journal of another drctl).
    // The error of `Action::run`, which returns what this gives.
    #[allow(clippy::result_large_err)]
    fn at(&self) -> Result<Group<'_>, StepFailure> {
        Group::of(self.of, &self.region, &self.group)
    }
}

#[async_trait]
impl Action for Raise {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads the group itself (through the kind's `Groups`).
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let g = match self.at() {
            Ok(g) => g,
            Err(e) => {
                return vec![Finding::blocks(
                    &self.group,
                    &self.region,
                    "unknown",
                    e.summary(),
                )];
            }
        };
        let what = format!("{} {}", g.scaling.noun(), self.group);
        match g.read(cx.clouds).await {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(r)) => match decide_size(Some(&r), self.size) {
                SizeNext::Refuse(why) => vec![Finding::blocks(&what, &self.region, r.state, why)],
                _ => vec![Finding::ok(
                    &what,
                    &self.region,
                    format!("{} {}, {}", r.size, g.scaling.unit(), r.state),
                )],
            },
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let g = self.at()?;
        let read = g.read(cx.clouds).await?;
        let unit = g.scaling.unit();
        Ok(vec![Planned {
            call: g.scaling.calls().set.into(),
            resource: self.group.clone(),
            region: self.region.clone(),
            current: read.as_ref().map_or("missing".into(), |r| {
                format!("{} {unit}, {}", r.size, r.state)
            }),
            desired: format!("{} {unit}, serving", self.size),
            change: decide_size(read.as_ref(), self.size) != SizeNext::Done,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let g = self.at()?;
        let by = Driver::Step(cx);
        let first = g.read(cx.clouds).await?.ok_or_else(|| g.missing())?;
        // Whatever a drill's marks say, the group is the failover's from
        // here on: they come off before the size is touched, so neither a
        // wait that fails nor a crash leaves them for a cleanup or a sweep
        // to lower the group the failover raised.
        let removed = g.unmark(&by, &first).await?;
        if !removed.is_empty() {
            tracing::info!(
                group = self.group,
                region = self.region,
                "removed a drill's marks: the failover owns the group"
            );
        }
        let (before, after, changed) = g.bring_to(&by, self.size, Some(first)).await?;
        RaiseOutput {
            group: self.group.clone(),
            region: self.region.clone(),
            before: before.size,
            after: after.size,
            serving: after.serving,
            changed,
            drill_marks_removed: removed,
        }
        .to_output()
    }
}
