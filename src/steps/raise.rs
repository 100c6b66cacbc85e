//! `raise`: the one failover step of every capacity kind that the
//! capacity role's actions serve ([`Scaling`]): set the target's group to
//! its active size and wait until it serves it.
//!
//! Read, decide, act, through the role alone: the group is read, the pure
//! [`capacity::decide_size`] says what to do (nothing, wait for a change
//! under way, set) to bring it to the active size (never lower than it is:
//! [`Size::raised`](crate::cloud::Size::raised)), one fenced write sets the size, and the step waits
//! until the group serves it with nothing under way. A change the provider
//! reports failed (an ECS deployment's circuit breaker) fails the step,
//! naming the change and the provider's reason. A drill's marks on the
//! group (a drill that raised it and died, or was preempted by this
//! failover) come off first, before the size is set and waited on, so no
//! later cleanup or sweep lowers a group the failover owns.
//!
//! The step knows its resource's kind only to reach its role
//! (`ResourceKind::scaling`): a new capacity kind needs no step here.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capacity::{self, Driver, Raising, Wrote};
use super::{Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::cloud::Size;
use crate::steps::graph::Builder;

/// Raise one capacity resource's group in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raise(pub Raising);

impl std::ops::Deref for Raise {
    type Target = Raising;
    fn deref(&self) -> &Raising {
        &self.0
    }
}

/// Part of the recovery; reversible (set the size back). Its calls are its
/// resource kind's (`capacity::cost_of`).
pub const TRAITS: Traits = capacity::GENERIC;

/// A failover raises every such group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if b.mode.fails_over() {
        capacity::compile_raises(b, "wait until they serve", |r| StepKind::Raise(Raise(r)));
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
    pub before: Size,
    /// Its size after.
    pub after: Size,
    /// What served after.
    pub serving: u32,
    /// Whether this step set the size.
    pub changed: bool,
    /// The write it made, when it set the size (its call and operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrote: Option<Wrote>,
    /// A drill's marks taken off the group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drill_marks_removed: Vec<String>,
    /// What came of lowering it in the plan's other regions (a group that
    /// must serve in one region at a time): set, already so, or not
    /// reached, with the command that does it by hand.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<String>,
}

impl StepOutput for RaiseOutput {
    const KIND: KindName = KindName::Raise;
}

#[async_trait]
impl Action for Raise {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let read = match self.at() {
            Ok(g) => g.read(cx.clouds).await.map_err(|e| e.message),
            Err(e) => Err(e.summary()),
        };
        let judged = read.map(|r| {
            r.map(|r| {
                let why = self.refusal(&r);
                (r, why)
            })
        });
        vec![self.finding(judged)]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let g = self.at()?;
        let read = g.read(cx.clouds).await?;
        let to = read
            .as_ref()
            .map_or(self.size, |r| r.size.raised(self.size));
        let desired = format!("{to} {}, serving", g.scaling.about().unit);
        Ok(vec![self.planned(&g, read.as_ref(), desired)])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let g = self.at()?;
        let by = Driver::Step(cx);
        let first = match self.fresh_read(cx, &g) {
            Some(read) => read,
            None => g.read(cx.clouds).await?.ok_or_else(|| g.missing())?,
        };
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
        let want = first.size.raised(self.size);
        let (before, after, wrote) = g.bring_to(&by, want, Some(first)).await?;
        let elsewhere = self.lower_elsewhere(&by).await;
        for said in elsewhere.iter().filter(|s| s.starts_with("could not")) {
            tracing::warn!(group = self.group, "{said}");
        }
        RaiseOutput {
            group: self.group.clone(),
            region: self.region.clone(),
            before: before.size,
            after: after.size,
            serving: after.served(),
            changed: wrote.is_some(),
            wrote,
            drill_marks_removed: removed,
            elsewhere,
        }
        .to_output()
    }
}
