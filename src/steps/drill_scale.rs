//! `drill-scale`: prove the target region can reach active capacity. The
//! standby group is raised to the plan's active capacity and the step waits
//! until the instances are in service; cleanup returns the group exactly to
//! what it was (min, desired, max).
//!
//! What to return to is kept *on the group itself*, in the tag
//! [`drill_names::RESTORE_TAG`], written before the capacity changes (with the
//! drill's run, owner and expiry tags). So the restore point survives a
//! crash between the two calls, a lost journal, and a sweep from another
//! machine; and a re-run of the step never overwrites it with the raised
//! capacity. A group raised by another drill is left alone.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capacity::raised_bounds;
use super::drill_names;
use super::{
    Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits, wait_for,
};
use crate::cloud::{Capacity, CloudError, Clouds, ComputeGroup};
use crate::journal::{CleanupResult, Temp};
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Raise one compute resource's standby group in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillScale {
    /// Plan resource id.
    pub resource: String,
    /// Group name in the target region.
    pub group: String,
    /// Target region.
    pub region: String,
    /// Active capacity to reach.
    pub capacity: Capacity,
}

/// Part of the drill's recovery.
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    // The same calls and wait as a failover's scaling.
    time: super::capacity::ASG_RAISE,
};

/// A shadow drill raises every group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    let steps: Vec<DrillScale> = b
        .plan
        .spec
        .compute
        .iter()
        .map(|g| DrillScale {
            resource: g.id.clone(),
            group: g.regions[b.target].clone(),
            region: b.target.to_string(),
            capacity: g.active.into(),
        })
        .collect();
    for s in steps {
        let description = format!(
            "raise {} in {} to {} (min/desired/max), wait for instances in service; restored at cleanup",
            s.group, s.region, s.capacity
        );
        b.add(
            StepKind::DrillScale(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::Compute),
            vec![s.resource],
            description,
        );
    }
}

fn parse_capacity(s: &str) -> Option<Capacity> {
    let mut it = s.split('/').map(|v| v.trim().parse::<u32>().ok());
    let c = Capacity {
        min: it.next()??,
        desired: it.next()??,
        max: it.next()??,
    };
    it.next().is_none().then_some(c)
}

/// What a drill's scale step publishes: the group raised, from what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillScaleOutput {
    /// Group name.
    pub group: String,
    /// Region.
    pub region: String,
    /// The capacity to restore after the drill.
    pub before: Capacity,
    /// The capacity raised to.
    pub raised_to: Capacity,
    /// Instances in service after.
    pub in_service: u32,
}

impl StepOutput for DrillScaleOutput {
    const KIND: KindName = KindName::DrillScale;
}

impl DrillScale {
    /// The restore point group `g`'s tags hold for run `run_id` already
    /// (a step run again: never the raised capacity), or `None` when the
    /// step must tag it first (pure). Refuses a group another drill raised,
    /// or a restore tag that does not read as min/desired/max.
    // The error of `Action::run`, which returns what this gives.
    #[allow(clippy::result_large_err)]
    fn tagged_restore_point(
        &self,
        run_id: &str,
        g: &ComputeGroup,
    ) -> Result<Option<Capacity>, StepFailure> {
        let (r, name) = (self.region.as_str(), self.group.as_str());
        match (
            g.tags.get(drill_names::RUN_TAG),
            g.tags.get(drill_names::RESTORE_TAG),
        ) {
            (Some(run), Some(keep)) if run == run_id => {
                parse_capacity(keep).map(Some).ok_or_else(|| {
                    StepFailure::state(
                        format!(
                            "tag {} of {name} reads `{keep}`, not min/desired/max",
                            drill_names::RESTORE_TAG
                        ),
                        "set the group's capacity by hand and remove the drctl:drill-* tags",
                        name,
                        r,
                    )
                })
            }
            (Some(other), _) if other != run_id => Err(StepFailure::state(
                format!("{name} in {r} is raised by drill {other}"),
                "`drctl drill sweep` restores what an interrupted drill left, then drill again",
                name,
                r,
            )),
            _ => Ok(None),
        }
    }

    /// Tags the group with the drill's tags and `capacity` as its restore
    /// point (fenced), before anything changes its capacity.
    async fn tag_restore_point(&self, cx: &Cx<'_>, capacity: Capacity) -> Result<(), StepFailure> {
        let (r, name) = (self.region.as_str(), self.group.as_str());
        let mut tags = drill_names::tags(cx.run_id, &drill_names::owner(), cx.expires());
        tags.insert(
            drill_names::RESTORE_TAG.into(),
            format!("{}/{}/{}", capacity.min, capacity.desired, capacity.max),
        );
        cx.fenced(&format!("autoscaling:CreateOrUpdateTags of {name}"), r)
            .await?;
        cx.clouds.compute.tag_group(r, name, &tags).await?;
        Ok(())
    }
}

#[async_trait]
impl Action for DrillScale {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("compute {}", self.group);
        match cx
            .clouds
            .compute
            .describe_group(&self.region, &self.group)
            .await
        {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(g)) => match g.tags.get(drill_names::RUN_TAG) {
                Some(other) if other != cx.run_id => vec![Finding::blocks(
                    &what,
                    &self.region,
                    format!("raised by drill {other}"),
                    "another drill's capacity is still on the group: `drctl drill sweep` restores it",
                )],
                _ => vec![Finding::ok(
                    &what,
                    &self.region,
                    format!("{} ({} in service)", g.capacity, g.in_service),
                )],
            },
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let g = cx
            .clouds
            .compute
            .describe_group(&self.region, &self.group)
            .await?;
        let (current, to) = match &g {
            Some(g) => (
                g.capacity.to_string(),
                raised_bounds(g.capacity, self.capacity).to_string(),
            ),
            None => ("missing".into(), self.capacity.to_string()),
        };
        Ok(vec![
            Planned {
                call: "autoscaling:CreateOrUpdateTags".into(),
                resource: self.group.clone(),
                region: self.region.clone(),
                current: "no drill tags".into(),
                desired: format!(
                    "{} = {current} (the capacity to restore)",
                    drill_names::RESTORE_TAG
                ),
                change: true,
            },
            Planned {
                call: "autoscaling:UpdateAutoScalingGroup".into(),
                resource: self.group.clone(),
                region: self.region.clone(),
                current: current.clone(),
                desired: format!("{to}, instances in service; back to {current} at cleanup"),
                change: g.is_none_or(|g| raised_bounds(g.capacity, self.capacity) != g.capacity),
            },
        ])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (r, name) = (self.region.as_str(), self.group.as_str());
        let g = cx
            .clouds
            .compute
            .describe_group(r, name)
            .await?
            .ok_or_else(|| {
                StepFailure::state(
                    format!("compute group {name} does not exist in {r}"),
                    "fix the group name in the plan, or create the group (terraform/)",
                    name,
                    r,
                )
            })?;
        let before = match self.tagged_restore_point(cx.run_id, &g)? {
            Some(before) => before,
            None => {
                // The restore point goes on the group before anything changes.
                self.tag_restore_point(cx, g.capacity).await?;
                g.capacity
            }
        };
        let to = raised_bounds(before, self.capacity);
        if g.capacity != to {
            cx.fenced(&format!("autoscaling:UpdateAutoScalingGroup of {name}"), r)
                .await?;
            cx.clouds.compute.set_capacity(r, name, to).await?;
        }
        let want = to.desired;
        let now = wait_for(
            cx,
            &format!("{want} instances of {name} ({r}) in service"),
            || async {
                let g = cx.clouds.compute.describe_group(r, name).await?;
                Ok(g.filter(|g| g.in_service >= want))
            },
        )
        .await?;
        DrillScaleOutput {
            group: name.to_string(),
            region: r.to_string(),
            before,
            raised_to: to,
            in_service: now.in_service,
        }
        .to_output()
    }

    fn creates(&self, _run_id: &str) -> Vec<Temp> {
        vec![Temp::Capacity {
            region: self.region.clone(),
            group: self.group.clone(),
        }]
    }
}

pub use super::capacity::CapacityOwner;

/// Returns a group a drill raised to the capacity in its restore tag, then
/// removes the drill's tags, and reads it back to prove both.
/// `expected_run`: the drill that must have raised it (`None`: any, for a
/// sweep). `owner` says whether the drill may lower it: a failover's group
/// keeps its capacity and loses the drill's tags ([`CleanupResult::Kept`]);
/// an owner in doubt leaves both ([`CleanupResult::Failed`], saying why).
pub async fn restore(
    clouds: &Clouds,
    region: &str,
    group: &str,
    expected_run: Option<&str>,
    owner: &CapacityOwner,
) -> Result<(CleanupResult, String), CloudError> {
    let Some(g) = clouds.compute.describe_group(region, group).await? else {
        return Ok((
            CleanupResult::Absent,
            format!("group {group} does not exist in {region}"),
        ));
    };
    if let Some(answer) = not_ours_to_restore(group, expected_run, &g) {
        return Ok(answer);
    }
    let keys: Vec<String> = drill_names::TAGS.iter().map(|k| k.to_string()).collect();
    match owner {
        CapacityOwner::Drill(_) => {}
        CapacityOwner::Failover(why) => {
            clouds.compute.untag_group(region, group, &keys).await?;
            return Ok((
                CleanupResult::Kept,
                format!("left at {} ({why}); drill tags removed", g.capacity),
            ));
        }
        CapacityOwner::Unknown(why) => {
            return Ok((
                CleanupResult::Failed,
                format!(
                    "not lowered, drill tags kept: {why}; a failover may own the group, so its capacity {} stays until that is known",
                    g.capacity
                ),
            ));
        }
    }
    let Some(before) = g
        .tags
        .get(drill_names::RESTORE_TAG)
        .and_then(|t| parse_capacity(t))
    else {
        return Ok((
            CleanupResult::Failed,
            format!(
                "{group} has no readable {} tag: the capacity to return to is unknown",
                drill_names::RESTORE_TAG
            ),
        ));
    };
    if g.capacity != before {
        clouds.compute.set_capacity(region, group, before).await?;
    }
    clouds.compute.untag_group(region, group, &keys).await?;
    let after = clouds.compute.describe_group(region, group).await?;
    Ok(read_back(group, before, after.as_ref()))
}

/// The cleanup's answer for `group` (read as `g`) when it has no drill of
/// `expected_run`'s to undo (pure): no drill tag (never raised, or
/// restored before), or another drill's raise. `None`: restore it.
fn not_ours_to_restore(
    group: &str,
    expected_run: Option<&str>,
    g: &ComputeGroup,
) -> Option<(CleanupResult, String)> {
    let Some(tagged) = g.tags.get(drill_names::RUN_TAG) else {
        return Some((
            CleanupResult::Absent,
            format!(
                "{group} carries no drill tag (never raised, or restored before): {}",
                g.capacity
            ),
        ));
    };
    expected_run.is_some_and(|run| run != tagged).then(|| {
        (
            CleanupResult::NotOurs,
            format!("{group} is raised by drill {tagged}"),
        )
    })
}

/// The cleanup's answer from `group` as read back (`after`) once returned
/// to `before` and untagged (pure): restored only when it reads both.
fn read_back(
    group: &str,
    before: Capacity,
    after: Option<&ComputeGroup>,
) -> (CleanupResult, String) {
    match after {
        Some(a) if a.capacity == before && !a.tags.contains_key(drill_names::RUN_TAG) => (
            CleanupResult::Restored,
            format!("back to {before} (read back), drill tags removed"),
        ),
        Some(a) => (
            CleanupResult::Failed,
            format!("reads {} (want {before}) after the restore", a.capacity),
        ),
        None => (
            CleanupResult::Failed,
            format!("{group} vanished during the restore"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_never_lowers_a_bound() {
        let before = Capacity {
            min: 0,
            desired: 0,
            max: 8,
        };
        let active = Capacity {
            min: 2,
            desired: 4,
            max: 8,
        };
        assert_eq!(raised_bounds(before, active), active);
        let big = Capacity {
            min: 3,
            desired: 6,
            max: 10,
        };
        assert_eq!(raised_bounds(big, active), big);
    }

    #[test]
    fn restore_tags_round_trip() {
        assert_eq!(
            parse_capacity("0/0/8"),
            Some(Capacity {
                min: 0,
                desired: 0,
                max: 8
            })
        );
        assert_eq!(parse_capacity("0/0"), None);
        assert_eq!(parse_capacity("0/0/8/1"), None);
        assert_eq!(parse_capacity("a/b/c"), None);
    }
}
