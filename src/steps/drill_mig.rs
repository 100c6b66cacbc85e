//! `drill-mig`: prove the target region's regional managed instance group
//! can reach its active size. A shadow drill raises the standby group to
//! the plan's active size (or its autoscaler's minimum to it), waits until
//! the group is stable with that many instances `RUNNING` (as `scale-mig`
//! waits: the same code), and its cleanup returns it to the size (or
//! minimum) it had. Production's group, in the home region, is not touched.
//!
//! # Where the restore point lives
//!
//! In the drill's journal alone (a managed instance group carries no marks): the
//! step reads the group (and its autoscaler), journals [`Temp::MigSize`]
//! with what it read through [`Cx::journal_temp`], and only then writes.
//! A crash between the record and the write leaves a restore point equal
//! to the size (the cleanup sends nothing); a crash after it leaves the
//! size to return to. A step run again in the same run raises from the
//! restore point it journaled, never from the raised size. The cleanup
//! (the drill's own, or `drctl runs resume` after a crash) returns the
//! group only when the drill still owns it (`cleanup::owner`: a failover's
//! `scale-mig` since keeps it).
//!
//! Read, decide, act: [`decide_raise`] (pure) says what to journal; the
//! raise itself is `scale-mig`'s (its pure `decide`, its `requestId`s, its
//! wait), and the restore re-reads before it writes.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capacity::CapacityOwner;
use super::capacity::{self, LeftRaised};
use super::scale_mig::{MigNext, ScaleMig, ScaleMigOutput, decide, request_id};
use super::{Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, Clouds, InstanceGroups, MigAutoscaler, MigGroup, MigOperation};
use crate::journal::event::{Event, Record};
use crate::journal::{CleanupResult, JournalError, Temp};
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Raise one `[[instance_group]]`'s standby group in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillMig {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The group in the target region.
    pub group: String,
    /// Target region.
    pub region: String,
    /// The active size to reach.
    pub size: u32,
}

/// Part of the drill's recovery.
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    time: super::scale_mig::TRAITS.time,
};

/// A shadow drill raises every instance group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    let steps: Vec<DrillMig> = (b.plan.spec.instance_group.iter())
        .filter_map(|g| {
            Some(DrillMig {
                resource: g.id.clone(),
                project: g.project.clone(),
                group: g.regions.get(g.sites.gcp(b.target))?.clone(),
                region: g.sites.gcp(b.target).to_string(),
                size: g.active.size,
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "raise managed instance group {} in {} to {} instances (its autoscaler's minimum when it has one), wait until they run; restored at cleanup",
            s.group, s.region, s.size
        );
        b.add(
            StepKind::DrillMig(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::InstanceGroup),
            vec![s.resource],
            description,
        );
    }
}

/// What a drill's instance group step publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillMigOutput {
    /// The restore point journaled before the raise.
    pub restore: u32,
    /// The autoscaler whose minimum was raised, when the group has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<String>,
    /// The raise, as `scale-mig` reports it.
    pub raised: ScaleMigOutput,
}

impl StepOutput for DrillMigOutput {
    const KIND: KindName = KindName::DrillMig;
}

/// What a drill does with the group it read (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigRaise {
    /// Journal this restore point, then raise.
    Journal(Temp),
    /// This run journaled its restore point already (a step run again):
    /// raise, never journaling the raised size.
    Resume(Temp),
    /// It cannot be raised to the active size (why).
    Refuse(String),
}

/// Decides what the drill does with `group` and its `autoscaler` read in
/// `region` of `project`; `ours`: the restore point this run journaled
/// already; `other`: another drill's raise still on the group (pure).
pub fn decide_raise(
    (region, project): (&str, &str),
    group: &MigGroup,
    autoscaler: Option<&MigAutoscaler>,
    want: u32,
    (ours, other): (Option<Temp>, Option<&LeftRaised>),
) -> MigRaise {
    if let MigNext::Refuse(why) = decide(group, autoscaler, want) {
        return MigRaise::Refuse(why);
    }
    if let Some(t) = ours {
        return MigRaise::Resume(t);
    }
    if let Some(o) = other {
        let what = format!("instance group {}", group.name);
        return MigRaise::Refuse(capacity::refused(&what, region, o));
    }
    MigRaise::Journal(Temp::MigSize {
        region: region.to_string(),
        project: project.to_string(),
        group: group.name.clone(),
        autoscaler: autoscaler.map(|a| a.name.clone()),
        restore: autoscaler.map_or(group.target_size, |a| a.min),
    })
}

/// The first drill resource this run journaled that `mine` picks (a step
/// run again in the same run finds its own restore point).
pub async fn journaled_by_run(
    cx: &Cx<'_>,
    mine: impl Fn(&Temp) -> bool,
) -> Result<Option<Temp>, JournalError> {
    let text = match cx.journal.read(cx.run_id).await {
        Ok(t) => t,
        Err(JournalError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .find_map(|r| match r.event {
            Event::DrillResource { resource, .. } if mine(&resource) => Some(resource),
            _ => None,
        }))
}

impl DrillMig {
    fn scale(&self) -> ScaleMig {
        ScaleMig {
            resource: self.resource.clone(),
            project: self.project.clone(),
            group: self.group.clone(),
            region: self.region.clone(),
            size: self.size,
        }
    }

    fn what(&self) -> String {
        format!("instance group {}", self.group)
    }

    fn mine(&self, t: &Temp) -> bool {
        matches!(t, Temp::MigSize { region, project, group, .. }
            if (region, project, group) == (&self.region, &self.project, &self.group))
    }
}

#[async_trait]
impl Action for DrillMig {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let mut found = self.scale().preflight(cx).await;
        let what = self.what();
        if let Some(f) =
            capacity::other_drill_finding(cx, &self.resource, &self.region, &what).await
        {
            found.push(f);
        }
        found
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let mut p = self.scale().preview(cx).await?;
        for x in &mut p {
            x.desired = format!(
                "{} (the size before journaled first); back to it at cleanup",
                x.desired
            );
        }
        Ok(p)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let scale = self.scale();
        let (group, autoscaler) = scale.read(cx).await?;
        let ours = journaled_by_run(cx, |t| self.mine(t)).await.map_err(|e| {
            StepFailure::state(
                format!("the drill's journal cannot be read: {e}"),
                "nothing was changed; check the state, then drill again",
                &self.group,
                &self.region,
            )
        })?;
        let other = match ours {
            Some(_) => None,
            None => {
                capacity::other_drill_of(cx, &self.resource, &self.region, &self.what()).await?
            }
        };
        let at = (self.region.as_str(), self.project.as_str());
        let read = (ours, other.as_ref());
        let temp = match decide_raise(at, &group, autoscaler.as_ref(), self.size, read) {
            MigRaise::Refuse(why) => {
                let hint = match &other {
                    Some(o) => capacity::hint(o),
                    None => "raise the autoscaler's maximum (or lower the plan's active size), then drill again".into(),
                };
                return Err(StepFailure::state(why, hint, &self.group, &self.region));
            }
            MigRaise::Resume(t) => t,
            MigRaise::Journal(t) => {
                // The restore point is on disk before anything changes.
                let what = format!("instance group {}", self.group);
                cx.journal_temp(t.clone(), &what, &self.region).await?;
                t
            }
        };
        let Temp::MigSize {
            restore,
            autoscaler,
            ..
        } = temp
        else {
            unreachable!("decide_raise answers a group's size")
        };
        let raised = ScaleMigOutput::read(&scale.run(cx).await?).ok_or_else(|| {
            StepFailure::state(
                "scale-mig's outputs did not read back",
                "report this; the drill's cleanup returns the group",
                &self.group,
                &self.region,
            )
        })?;
        DrillMigOutput {
            restore,
            autoscaler,
            raised,
        }
        .to_output()
    }
}

/// Returns group `group` (region, project, group), which drill `run` (a
/// sweep: `None`) raised, to `restore`: its autoscaler's minimum when
/// `autoscaler` names one, else its target size; reads it back to prove
/// it. `owner` says whether the drill may lower it: a failover's group
/// keeps its size ([`CleanupResult::Kept`]); an owner in doubt leaves it
/// ([`CleanupResult::Failed`], saying why).
#[allow(clippy::too_many_arguments)]
pub async fn restore(
    clouds: &Clouds,
    run: Option<&str>,
    (region, project, group): (&str, &str, &str),
    autoscaler: Option<&str>,
    restore: u32,
    owner: &CapacityOwner,
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    let ig = clouds.instance_groups.as_ref();
    let Some(g) = ig.describe_mig(region, project, group).await? else {
        return Ok((
            CleanupResult::Absent,
            format!("group {group} does not exist in {region}"),
        ));
    };
    let scaler = read_autoscaler(ig, (region, project), autoscaler).await?;
    let read = (&g, autoscaler.is_some(), scaler.as_ref());
    if let Some(answer) = answer_before_write((region, group), read, restore, owner) {
        return Ok(answer);
    }
    let id = restore_request_id(run, (region, group), restore);
    let at = (region, project, group);
    let (name, done) =
        send_restore(ig, at, scaler.as_ref(), restore, &id, (poll, deadline)).await?;
    if let Some(failed) = operation_failed(&name, group, done) {
        return Ok(failed);
    }
    let back = read_back(ig, at, autoscaler, restore, (poll, deadline)).await?;
    Ok(match back {
        Some(at) => (
            CleanupResult::Restored,
            format!("back to {at} (read back), operation {name}"),
        ),
        None => (
            CleanupResult::Failed,
            format!("group {group} did not read back at {restore} after operation {name}"),
        ),
    })
}

/// Reads the autoscaler the journal named (`autoscaler`) in `region` of
/// `project`; `None` when it named none (the group is sized directly).
async fn read_autoscaler(
    ig: &dyn InstanceGroups,
    (region, project): (&str, &str),
    autoscaler: Option<&str>,
) -> Result<Option<MigAutoscaler>, CloudError> {
    match autoscaler {
        Some(a) => ig.mig_autoscaler(region, project, a).await,
        None => Ok(None),
    }
}

/// What the cleanup of `group` in `region` answers before it writes
/// anything (pure), from the group `g` as read, whether the journal named
/// an autoscaler (`named`) and the autoscaler as read (`scaler`): a
/// vanished autoscaler, a group the drill does not own, or one already at
/// `restore`. `None`: the drill owns the group and it must be lowered.
fn answer_before_write(
    (region, group): (&str, &str),
    (g, named, scaler): (&MigGroup, bool, Option<&MigAutoscaler>),
    restore: u32,
    owner: &CapacityOwner,
) -> Option<(CleanupResult, String)> {
    if named && scaler.is_none() {
        return Some((
            CleanupResult::Failed,
            format!(
                "the autoscaler of group {group} in {region} is gone: its minimum cannot be returned to {restore}"
            ),
        ));
    }
    let now_at = match scaler {
        Some(a) => format!("autoscaler {} min {}", a.name, a.min),
        None => format!("target size {}", g.target_size),
    };
    match owner {
        CapacityOwner::Drill(_) => {}
        CapacityOwner::Failover(why) => {
            return Some((CleanupResult::Kept, format!("left at {now_at} ({why})")));
        }
        CapacityOwner::Unknown(why) => {
            return Some((
                CleanupResult::Failed,
                format!(
                    "not lowered: {why}; a failover may own the group, so it stays at {now_at} until that is known (the drill's journal keeps {restore} to return to)"
                ),
            ));
        }
    }
    let current = scaler.map_or(g.target_size, |a| a.min);
    (current == restore).then(|| (CleanupResult::Restored, format!("at {now_at} (read back)")))
}

/// A request id of this cleanup's own: Compute answers one it has seen
/// with the operation it made then (another drill's restore to the same
/// size must not be taken for this one), so it carries the time.
fn restore_request_id(run: Option<&str>, (region, group): (&str, &str), restore: u32) -> String {
    request_id(
        run.unwrap_or("sweep"),
        &format!(
            "{region}/{group}/restore/{restore}/{}",
            chrono::Utc::now().timestamp_micros()
        ),
    )
}

/// Sends the restore (the autoscaler's minimum when the group has one,
/// else its size) with request id `id`, and polls Compute's operation
/// until it is done. Returns the operation's name and the operation once
/// done (`None`: it did not end by `deadline`).
async fn send_restore(
    ig: &dyn InstanceGroups,
    (region, project, group): (&str, &str, &str),
    scaler: Option<&MigAutoscaler>,
    restore: u32,
    id: &str,
    (poll, deadline): ((Duration, Duration), Instant),
) -> Result<(String, Option<MigOperation>), CloudError> {
    let op = match scaler {
        Some(a) => {
            ig.set_autoscaler_min(region, project, &a.name, restore, id)
                .await?
        }
        None => ig.resize_mig(region, project, group, restore, id).await?,
    };
    let name = op.name.clone();
    if op.done {
        return Ok((name, Some(op)));
    }
    let done = poll_until(
        &format!("Compute operation {name} on {group}"),
        poll,
        deadline,
        || async {
            let o = ig.mig_operation(region, project, &name).await?;
            Ok::<_, CloudError>(o.done.then_some(o))
        },
    )
    .await?;
    Ok((name, done))
}

/// The cleanup's answer when restore operation `name` on `group` did not
/// end in time or ended in an error (pure); `None` when it succeeded.
fn operation_failed(
    name: &str,
    group: &str,
    done: Option<MigOperation>,
) -> Option<(CleanupResult, String)> {
    match done {
        None => Some((
            CleanupResult::Failed,
            format!("operation {name} on {group} did not end in time; run the cleanup again"),
        )),
        Some(o) if o.error.is_some() => Some((
            CleanupResult::Failed,
            format!(
                "operation {name} on {group} failed: {}",
                o.error.unwrap_or_default()
            ),
        )),
        Some(_) => None,
    }
}

/// Polls the group (and the autoscaler the journal named) until it reads
/// back at `restore`: the autoscaler's minimum, else a stable target size.
/// Returns what it reads at (`None`: not by `deadline`).
async fn read_back(
    ig: &dyn InstanceGroups,
    (region, project, group): (&str, &str, &str),
    autoscaler: Option<&str>,
    restore: u32,
    (poll, deadline): ((Duration, Duration), Instant),
) -> Result<Option<String>, CloudError> {
    poll_until(
        &format!("group {group} ({region}) back at {restore}"),
        poll,
        deadline,
        || async {
            let a = read_autoscaler(ig, (region, project), autoscaler).await?;
            let g = ig.describe_mig(region, project, group).await?;
            Ok::<_, CloudError>(match (g, a) {
                (Some(_), Some(a)) if a.min == restore => Some(format!("autoscaler min {restore}")),
                (Some(g), None) if g.target_size == restore && g.stable => {
                    Some(format!("target size {restore}, stable"))
                }
                _ => None,
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(target: u32, autoscaler: Option<&str>) -> MigGroup {
        MigGroup {
            name: "orders-workers-use4".into(),
            region: "us-east4".into(),
            target_size: target,
            stable: true,
            autoscaler: autoscaler.map(str::to_string),
            idle: target,
            creating: 0,
        }
    }

    #[test]
    fn the_restore_point_is_the_size_or_the_autoscalers_minimum_read_before() {
        let at = ("us-east4", "drctl-emu");
        let MigRaise::Journal(t) = decide_raise(at, &group(1, None), None, 3, (None, None)) else {
            panic!("journaled first");
        };
        assert!(
            matches!(
                &t,
                Temp::MigSize {
                    restore: 1,
                    autoscaler: None,
                    ..
                }
            ),
            "{t:?}"
        );
        let a = MigAutoscaler {
            name: "w-as".into(),
            min: 2,
            max: 8,
        };
        let MigRaise::Journal(t) =
            decide_raise(at, &group(4, Some("w-as")), Some(&a), 3, (None, None))
        else {
            panic!("journaled first");
        };
        assert!(
            matches!(&t, Temp::MigSize { restore: 2, autoscaler: Some(n), .. } if n == "w-as"),
            "{t:?}"
        );
        // A step run again raises from what it journaled, not the raised size.
        let again = decide_raise(at, &group(3, None), None, 3, (Some(t.clone()), None));
        assert_eq!(again, MigRaise::Resume(t));
        let low = MigAutoscaler { max: 2, ..a };
        assert!(matches!(
            decide_raise(at, &group(1, Some("w-as")), Some(&low), 3, (None, None)),
            MigRaise::Refuse(_)
        ));
    }
}
