//! `drill-raise`: the one drill step of every capacity kind that the
//! capacity role's actions serve: a shadow drill raises the standby's
//! group to the plan's active size, waits until it serves it, and its
//! cleanup ([`restore`]) returns it exactly to the size it read before.
//! Production's group, in the home region, is never touched.
//!
//! # Where the restore point lives
//!
//! Twice, before anything changes: the step reads the group, journals
//! [`Temp::Raised`] with the size it read (through [`Cx::journal_temp`]),
//! then marks the group itself (the drill's run, owner and expiry, and the
//! size to return to: `steps::drill_names`), and only then sets its size.
//! The drill's cleanup, `drctl runs resume` after a crash, and `drctl
//! drill sweep` return it from the journal; a sweep on a machine that has
//! no journal of the drill finds the group by its marks
//! (`cleanup::sweep`). A kind whose groups carry no marks (a managed
//! instance group: `About::carries_marks`) keeps its restore point in
//! the journal alone, and only a sweep that reads the journal returns it.
//!
//! # Another drill's raise is left alone
//!
//! A group marked by another drill, or (for a group at another size than
//! the plan's standby) named by another drill's journal as a raise no
//! cleanup returned ([`capacity::other_drill`]), is refused, naming that
//! drill, before this one journals or changes anything.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capacity::CapacityOwner;
use super::capacity::{self, Driver, Group, LeftRaised, Raising, Wrote};
use super::drill_names::{self, RESTORE_TAG, RUN_TAG};
use super::leftovers::{Drill, Drilled, Left, Look};
use super::{Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::cloud::{CloudError, Clouds, Size};
use crate::journal::event::{Event, Record};
use crate::journal::{CleanupResult, JournalError, Temp};
use crate::plan::kinds::scaling::Reading;
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, DrillDepth, RunMode};

/// Raise one capacity resource's standby group in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillRaise(pub Raising);

impl std::ops::Deref for DrillRaise {
    type Target = Raising;
    fn deref(&self) -> &Raising {
        &self.0
    }
}

/// Part of the drill's recovery; its calls are its resource kind's
/// (`capacity::cost_of`).
pub const TRAITS: Traits = capacity::GENERIC;

/// A shadow drill raises every such standby group of the plan in the
/// target.
pub fn compile(b: &mut Builder<'_>) {
    let shadow = RunMode::Drill {
        depth: DrillDepth::Shadow,
    };
    if *b.mode == shadow {
        let then = "wait until they serve; returned at cleanup";
        capacity::compile_raises(b, then, |r| StepKind::DrillRaise(DrillRaise(r)));
    }
}

/// What a drill's raise publishes: the group raised, from what.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillRaiseOutput {
    /// The group.
    pub group: String,
    /// Its region.
    pub region: String,
    /// Its size before (the restore point).
    pub before: Size,
    /// The size it was raised to.
    pub raised_to: Size,
    /// What served after.
    pub serving: u32,
    /// The write it made, when the group was below that size (its call and
    /// operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrote: Option<Wrote>,
}

impl StepOutput for DrillRaiseOutput {
    const KIND: KindName = KindName::DrillRaise;
}

/// What a drill does with the group it read (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaiseNext {
    /// Journal this size as the restore point, mark the group, then raise.
    Journal(Size),
    /// This run journaled its restore point already (a step run again):
    /// raise from it, never from the raised size.
    Resume(Size),
    /// It cannot be drilled now (why).
    Refuse(String),
}

/// Decides what a drill of run `run` does with `read` (pure). `ours`:
/// this run's journaled restore point; `journaled`: another drill whose
/// journal names a raise of the group that no cleanup returned.
pub fn decide_raise(
    read: &Reading,
    run: &str,
    ours: Option<Size>,
    journaled: Option<&LeftRaised>,
) -> RaiseNext {
    if let Some(before) = ours {
        return RaiseNext::Resume(before);
    }
    if let Some(other) = read.marks.get(RUN_TAG).filter(|r| *r != run) {
        return RaiseNext::Refuse(format!(
            "it carries the marks of drill {other}, whose cleanup has not returned it yet"
        ));
    }
    if let Some(o) = journaled {
        return RaiseNext::Refuse(format!(
            "drill {}'s journal names a raise of it that no cleanup returned",
            o.run
        ));
    }
    RaiseNext::Journal(read.size)
}

/// This run's restore point of `(kind, region, group)` in `records` (one
/// run's journal).
pub fn restore_point(records: &[Record], temp_of: impl Fn(Size) -> Temp) -> Option<Size> {
    records.iter().find_map(|r| match &r.event {
        Event::DrillResource {
            resource: t @ Temp::Raised { restore, .. },
            ..
        } if *t == temp_of(*restore) => Some(*restore),
        _ => None,
    })
}

impl DrillRaise {
    fn temp(&self, restore: Size) -> Temp {
        Temp::Raised {
            kind: self.of,
            region: self.region.clone(),
            group: self.group.clone(),
            restore,
        }
    }

    /// This run's journaled restore point (a step run again in the same run).
    async fn ours(&self, cx: &Cx<'_>) -> Result<Option<Size>, JournalError> {
        let records = capacity::records_of(cx.journal.as_ref(), cx.run_id).await?;
        Ok(records.and_then(|r| restore_point(&r, |n| self.temp(n))))
    }

    /// What the step would do with the group now, and the read (preflight
    /// and the step share it).
    async fn next(&self, cx: &Cx<'_>, g: &Group<'_>) -> Result<(Reading, RaiseNext), StepFailure> {
        let read = g.read(cx.clouds).await?.ok_or_else(|| g.missing())?;
        let journal_failure = |e: &dyn std::fmt::Display| {
            StepFailure::state(
                format!("whether another drill raised {g} cannot be read: {e}"),
                "nothing was changed; check the state (`drctl runs list`), then drill again",
                &self.group,
                &self.region,
            )
        };
        let ours = self.ours(cx).await.map_err(|e| journal_failure(&e))?;
        let journaled = match ours {
            Some(_) => None,
            None => {
                capacity::other_drill_of(cx, &self.resource, &self.region, &g.to_string()).await?
            }
        };
        let next = decide_raise(&read, cx.run_id, ours, journaled.as_ref());
        Ok((read, next))
    }
}

#[async_trait]
impl Action for DrillRaise {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let judged = match self.at() {
            Ok(g) => match self.next(cx, &g).await {
                Ok((r, RaiseNext::Refuse(why))) => Ok(Some((r, Some(why)))),
                // What the raise itself would refuse (a ceiling below the
                // active size) blocks before the drill starts, as a
                // failover's preflight does.
                Ok((r, _)) => {
                    let why = self.refusal(&r);
                    Ok(Some((r, why)))
                }
                Err(e) => Err(e.summary()),
            },
            Err(e) => Err(e.summary()),
        };
        vec![self.finding(judged)]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let g = self.at()?;
        let read = g.read(cx.clouds).await?;
        let (to, back) = match &read {
            Some(r) => (r.size.raised(self.size), r.size.to_string()),
            None => (self.size, "it".to_string()),
        };
        let desired = format!(
            "{to} {}, serving (the size before journaled and marked first); back to {back} at cleanup",
            g.scaling.about().unit
        );
        let mut p = self.planned(&g, read.as_ref(), desired);
        p.change = true;
        Ok(vec![p])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let g = self.at()?;
        let (read, next) = self.next(cx, &g).await?;
        let before = match next {
            RaiseNext::Refuse(why) => {
                return Err(StepFailure::state(
                    format!("{g}: {why}"),
                    "`drctl runs resume RUN` of that drill (or `drctl drill sweep`) returns what it left, then drill again",
                    &self.group,
                    &self.region,
                ));
            }
            RaiseNext::Resume(before) => before,
            RaiseNext::Journal(before) => {
                // The restore point is on disk before anything changes.
                cx.journal_temp(self.temp(before), &g.to_string(), &self.region)
                    .await?;
                before
            }
        };
        let by = Driver::Step(cx);
        // ... and on the group, for a sweep that has no journal of this
        // drill, before its size is touched.
        let mut marks = drill_names::tags(cx.run_id, &drill_names::owner(), cx.expires());
        marks.insert(RESTORE_TAG.to_string(), before.to_string());
        if g.scaling.about().carries_marks
            && !marks.iter().all(|(k, v)| read.marks.get(k) == Some(v))
        {
            let what = format!("{} of {}", g.scaling.about().calls.mark, self.group);
            by.fenced(&what, &self.region).await?;
            (g.scaling)
                .mark(cx.clouds, &self.region, &read, &marks)
                .await?;
        }
        let to = before.raised(self.size);
        let (_, after, wrote) = g.bring_to(&by, to, Some(read)).await?;
        DrillRaiseOutput {
            group: self.group.clone(),
            region: self.region.clone(),
            before,
            raised_to: to,
            serving: after.served(),
            wrote,
        }
        .to_output()
    }
}

#[async_trait]
impl Drilled for DrillRaise {
    /// The group, when it carries a drill's marks (`drill-raise` marks
    /// it before it raises it): the drill and the size to return to are
    /// in them. A kind whose groups take no marks has none to find: its
    /// drills' raises are found by their journals alone.
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let Some(scaling) = self.of.scaling().filter(|s| s.about().carries_marks) else {
            return Vec::new();
        };
        let read = match scaling.read(look.clouds(), &self.region, &self.group).await {
            Ok(Some(read)) => read,
            Ok(None) => return Vec::new(),
            Err(e) => {
                look.failed(e);
                return Vec::new();
            }
        };
        let Some((run, restore)) = marked(&read) else {
            return Vec::new();
        };
        let expires = drill_names::expiry(&read.marks);
        vec![Left {
            temp: self.temp(restore),
            drill: Drill::Tagged { run, expires },
        }]
    }
}

/// The restore point a group's marks hold, when a drill marked it: the
/// drill and the size (what a sweep finds without the journal).
pub fn marked(read: &Reading) -> Option<(String, Size)> {
    let run = read.marks.get(RUN_TAG)?.clone();
    // A size of another shape than the group's (a count on a group of
    // three bounds) is no restore point of this group's.
    let size = Size::parse(read.marks.get(RESTORE_TAG)?).filter(|s| s.same_shape(read.size))?;
    Some((run, size))
}

/// A group a drill raised, as its journal or its marks name it: its
/// kind, its region and its name (`Groups::raised_group`).
#[derive(Debug, Clone, Copy)]
pub struct RaisedGroup<'a> {
    /// Its kind.
    pub kind: ResourceKind,
    /// Its region.
    pub region: &'a str,
    /// Its name, as its kind's role addresses it.
    pub group: &'a str,
}

/// Whose return a cleanup makes: `run`, the drill that must have marked
/// the group (`None`: any drill, for a sweep); `owner`, whether that drill
/// may lower it.
#[derive(Clone, Copy)]
pub struct Claim<'a> {
    /// The drill that must have marked it.
    pub run: Option<&'a str>,
    /// Who owns the group now.
    pub owner: &'a CapacityOwner,
}

/// How a cleanup follows a change: its polling pace (first, most) and
/// when it stops waiting.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The first and the longest wait between reads.
    pub poll: (Duration, Duration),
    /// When it gives up.
    pub deadline: std::time::Instant,
}

/// A cleanup's failure: a cloud error is an error, anything else the
/// cleanup's result.
fn failed(e: StepFailure) -> Result<(CleanupResult, String), CloudError> {
    match e {
        StepFailure::Cloud(e) => Err(e),
        e => Ok((CleanupResult::Failed, e.summary())),
    }
}

/// What a cleanup does with a group `owner` says is not the drill's to
/// lower, or whose read says so (`None`: it is the drill's): a failover's
/// keeps its size and loses the drill's marks; in doubt, both stay.
async fn not_the_drills(
    g: &Group<'_>,
    by: &Driver<'_, '_>,
    read: &Reading,
    restore: Size,
    drill_marked: bool,
    owner: &CapacityOwner,
) -> Result<Option<(CleanupResult, String)>, CloudError> {
    let unit = g.scaling.about().unit;
    match owner {
        // The drill's marks go on before its raise and come off only when
        // a cleanup has returned the group or a failover took it (before
        // it touches the size): gone, with the size moved, a failover (or
        // a person) owns it now, whatever was decided before this read.
        CapacityOwner::Drill(_)
            if drill_marked && marked(read).is_none() && read.size != restore =>
        {
            Ok(Some((
                CleanupResult::Kept,
                format!(
                    "left at {} {unit}: the drill's marks are gone, so a failover (or a person) took the group since it was raised",
                    read.size
                ),
            )))
        }
        CapacityOwner::Drill(_) => Ok(None),
        CapacityOwner::Failover(why) => {
            if let Err(e) = g.unmark(by, read).await {
                return failed(e).map(Some);
            }
            let kept = format!(
                "left at {} {unit}, the drill's marks removed ({why})",
                read.size
            );
            Ok(Some((CleanupResult::Kept, kept)))
        }
        CapacityOwner::Unknown(why) => Ok(Some((
            CleanupResult::Failed,
            format!(
                "not lowered: {why}; a failover may own it, so its {} {unit} and the drill's marks stay until that is known",
                read.size
            ),
        ))),
    }
}

/// Returns group `group` of kind `of` in `region`, which a drill raised,
/// to `restore`, takes the drill's marks off and reads it back to prove
/// both. `run`: the drill that must have marked it (`None`: any, for a
/// sweep); a group marked by another drill is never touched. `owner` says
/// whether the drill may lower it: a failover's group keeps its size and
/// loses the drill's marks ([`CleanupResult::Kept`]); an owner in doubt
/// leaves both ([`CleanupResult::Failed`], saying why).
pub async fn restore(
    clouds: &Clouds,
    at: RaisedGroup<'_>,
    restore: Size,
    claim: Claim<'_>,
    pace: Pace,
) -> Result<(CleanupResult, String), CloudError> {
    restore_as(clouds, at, restore, claim, true, pace).await
}

/// [`restore`] of a group whose drill journaled its restore point but
/// marked nothing on it (`Temp::NodeCapacity`, `Temp::MigSize`: an older
/// drctl's `drill-nodes` and `drill-mig`): the same rules, but for the
/// marks, which were never there to be taken off by a failover; whose
/// owner it is rests on `owner` (the journals and the lock) alone.
pub async fn restore_unmarked(
    clouds: &Clouds,
    at: RaisedGroup<'_>,
    restore: Size,
    owner: &CapacityOwner,
    pace: Pace,
) -> Result<(CleanupResult, String), CloudError> {
    let claim = Claim { run: None, owner };
    restore_as(clouds, at, restore, claim, false, pace).await
}

/// Why a cleanup leaves group `read` alone before it decides whose it is
/// (pure): its restore point is a size of another shape, it carries
/// another drill's marks than `run`'s, or (for a drill that never marked,
/// `drill_marked` false) any drill's marks: that drill raised it since,
/// and its own cleanup returns it.
fn left_alone(
    read: &Reading,
    restore: Size,
    run: Option<&str>,
    drill_marked: bool,
) -> Option<(CleanupResult, String)> {
    if !restore.same_shape(read.size) {
        return Some((
            CleanupResult::Failed,
            format!(
                "left alone: its restore point {restore} is a size of another shape than its {}: another drctl's journal",
                read.size
            ),
        ));
    }
    let marked_by = read.marks.get(RUN_TAG)?;
    if let Some(want) = run.filter(|want| want != marked_by) {
        return Some((
            CleanupResult::Failed,
            format!("left alone: it carries the marks of drill {marked_by}, not of {want}"),
        ));
    }
    (!drill_marked).then(|| {
        (
            CleanupResult::NotOurs,
            format!(
                "left alone: drill {marked_by} has raised it since, and its cleanup returns it"
            ),
        )
    })
}

/// [`restore`], and [`restore_unmarked`] (`drill_marked` false: the drill
/// put no marks on the group).
async fn restore_as(
    clouds: &Clouds,
    RaisedGroup {
        kind,
        region,
        group,
    }: RaisedGroup<'_>,
    restore: Size,
    Claim { run, owner }: Claim<'_>,
    drill_marked: bool,
    Pace { poll, deadline }: Pace,
) -> Result<(CleanupResult, String), CloudError> {
    let g = match Group::of(kind, region, group) {
        Ok(g) => g,
        Err(e) => return Ok((CleanupResult::Failed, e.summary())),
    };
    let unit = g.scaling.about().unit;
    // A group of a kind that carries no marks was never marked, whatever
    // drctl raised it: whose it is rests on `owner` alone.
    let drill_marked = drill_marked && g.scaling.about().carries_marks;
    let Some(read) = g.read(clouds).await? else {
        return Ok((CleanupResult::Absent, format!("{g} does not exist")));
    };
    if let Some(left) = left_alone(&read, restore, run, drill_marked) {
        return Ok(left);
    }
    let by = Driver::Cleanup {
        clouds,
        poll,
        deadline,
    };
    let kept = not_the_drills(&g, &by, &read, restore, drill_marked, owner);
    if let Some(kept) = kept.await? {
        return Ok(kept);
    }
    let after = match g.bring_to(&by, restore, Some(read)).await {
        Ok((_, after, _)) => after,
        Err(e) => return failed(e),
    };
    if let Err(e) = g.unmark(&by, &after).await {
        return failed(e);
    }
    Ok(match g.read(clouds).await? {
        Some(r) if r.size == restore && marked(&r).is_none() => (
            CleanupResult::Restored,
            format!(
                "back to {restore} {unit}, marks removed (read back), {}",
                r.state
            ),
        ),
        Some(r) => (
            CleanupResult::Failed,
            format!(
                "reads {} {unit} (want {restore}) after the restore, {}",
                r.size, r.state
            ),
        ),
        None => (
            CleanupResult::Failed,
            format!("{g} vanished during the restore"),
        ),
    })
}

/// Returns a group whose drill journaled no restore point, only the group
/// (`Temp::Capacity`: an older drctl's `drill-scale` kept an Auto Scaling
/// group's restore point on the group alone, in its
/// [`RESTORE_TAG`] tag): the size is read from its marks, then [`restore`]
/// returns it under the same rules. A group with no drill mark was never
/// raised or was returned before; one whose restore mark does not read as
/// a size is left as it is.
pub async fn restore_from_marks(
    clouds: &Clouds,
    at: RaisedGroup<'_>,
    claim: Claim<'_>,
    pace: Pace,
) -> Result<(CleanupResult, String), CloudError> {
    let g = match Group::of(at.kind, at.region, at.group) {
        Ok(g) => g,
        Err(e) => return Ok((CleanupResult::Failed, e.summary())),
    };
    let Some(read) = g.read(clouds).await? else {
        return Ok((CleanupResult::Absent, format!("{g} does not exist")));
    };
    if !read.marks.contains_key(RUN_TAG) {
        return Ok((
            CleanupResult::Absent,
            format!(
                "{g} carries no drill mark (never raised, or returned before): {} {}",
                read.size,
                g.scaling.about().unit
            ),
        ));
    }
    let Some((_, size)) = marked(&read) else {
        return Ok((
            CleanupResult::Failed,
            format!("{g} has no readable {RESTORE_TAG} mark: the size to return to is unknown"),
        ));
    };
    restore(clouds, at, size, claim, pace).await
}

#[cfg(test)]
mod tests;
