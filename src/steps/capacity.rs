//! The capacity role's promise about drills, kept in one place for every
//! capacity kind: a drill never raises over another drill's raise that no
//! cleanup has returned, and a sweep finds such a raise on any kind.
//!
//! # Why one place
//!
//! A drill journals a raised group's restore point ([`Temp::raised_group`]
//! names the group whatever its kind) before it changes the group. Until a
//! cleanup of any run (the drill's own, a resume's, a sweep's) proves it
//! returned, the raise is still on the group. When each kind looked for
//! that itself, only EKS node groups did: a drill of a managed instance
//! group or a Cloud Run service raised over an earlier drill's leftovers
//! and journaled the raised size as its own restore point, so the group
//! never came back down, and a sweep could not find either. Here the
//! lookup goes through the plan's capacity role ([`Groups`]): the name its
//! journal records, the plan's standby size, and the kind's read of the
//! group, the same read the raise and its cleanup make
//! ([`Scaling::read`]), for every kind alike.
//!
//! The journals are read only when a standby group does not read at its
//! plan's standby size (`at_standby`, on `dyn Groups`): nothing else can
//! carry a raise still in effect, and a drill then costs no read of every
//! journal.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};

use super::{Cost, Cx, Finding, Planned, StepFailure, Traits, wait_for};
use crate::cloud::{Capacity, CloudError, Clouds, Size, TargetCount};
use crate::journal::event::{Event, Record, RunKind};
use crate::journal::{JournalError, JournalStore, RunFlags, Temp};
use crate::plan::Plan;
use crate::plan::kinds::scaling::{Change, Reading, Scaling};
use crate::plan::kinds::{Groups, Shown};
use crate::plan::spec::ResourceKind;
use crate::steps::drill_names;
use crate::steps::graph::Builder;

/// Why a capacity group `group` of kind `label` (`compute`) in standby
/// `region`, as `status` read it (`None`: it does not exist), could not
/// take over at the plan's `active` size: its max below the active desired
/// size ([`short_of`]; pure; the one rule `status` judges every capacity
/// kind's read by).
pub fn standby_problems(
    (label, group, region): (&str, &str, &str),
    scaling: &dyn Scaling,
    active: Capacity,
    read: Option<Capacity>,
) -> Vec<String> {
    match read {
        None => vec![format!("{label} group {group} does not exist in {region}")],
        Some(cap) => (short_of(scaling, cap, active).into_iter())
            .map(|why| format!("{label} group {group} in {region} has {why}"))
            .collect(),
    }
}

/// Why a group of three bounds at `read` is not ready to be raised to
/// `active` (pure): its max below the active desired size, a sign its
/// configuration drifted from the plan. `status` judges a standby by it,
/// and a failover's preflight blocks on it, so both say the same. A kind
/// whose max follows its size (`About::max_follows`: an HPA's bounds the
/// plan sets apart at standby) is not judged by it.
pub fn short_of(scaling: &dyn Scaling, read: Capacity, active: Capacity) -> Option<String> {
    let drifted = read.max < active.desired && !scaling.about().max_follows;
    drifted.then(|| {
        format!(
            "max {} below the active capacity {}",
            read.max, active.desired
        )
    })
}

/// Who brings a group to a size, and how it waits (every capacity kind's
/// steps and their cleanup share it): a step (its
/// context: each write fenced, its deadline, the live view told what it
/// waits for), or a drill's cleanup or a sweep (their own polling and
/// deadline; their writes are not fenced, as no cleanup write is).
pub(crate) enum Driver<'a, 'c> {
    /// A step's run.
    Step(&'a Cx<'c>),
    /// A drill's cleanup, or a sweep.
    Cleanup {
        /// Cloud adapters.
        clouds: &'a Clouds,
        /// Polling interval bounds while waiting.
        poll: (Duration, Duration),
        /// Give up waiting at this instant.
        deadline: std::time::Instant,
    },
}

impl Driver<'_, '_> {
    pub(crate) fn clouds(&self) -> &Clouds {
        match self {
            Self::Step(cx) => cx.clouds,
            Self::Cleanup { clouds, .. } => clouds,
        }
    }

    /// The name of a write of `want` to `group` (`Scaling::set`'s key):
    /// a step's is its run's, the group's and the size's, so the same
    /// write sent again (a lost answer, a resume after a crash) is the same
    /// write, made once (`engine::fault_loop` proves it for every call of
    /// every step); a cleanup's carries the time, so another drill's return
    /// to the same size is never taken for it. Its cost: a resumed run
    /// whose group someone lowered meanwhile gets the first write's answer
    /// back within the provider's window, and says another writer changed
    /// the group rather than write again.
    pub(crate) fn write_key(&self, group: &Group<'_>, want: Size) -> String {
        let at = format!("{}/{}/{want}", group.region, group.name);
        match self {
            Self::Step(cx) => format!("{}/{at}", cx.run_id),
            Self::Cleanup { .. } => {
                format!("cleanup/{at}/{}", chrono::Utc::now().timestamp_micros())
            }
        }
    }

    pub(crate) async fn fenced(&self, what: &str, region: &str) -> Result<(), StepFailure> {
        if let Self::Step(cx) = self {
            cx.fenced(what, region).await?;
        }
        Ok(())
    }

    /// Polls `probe` until it yields `Some` (see [`wait_for`]).
    pub(crate) async fn wait<T, F, Fut>(&self, what: &str, probe: F) -> Result<T, StepFailure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, StepFailure>>,
    {
        match self {
            Self::Step(cx) => wait_for(cx, what, probe).await,
            Self::Cleanup { poll, deadline, .. } => {
                super::until_some((what, None), *poll, *deadline, probe).await
            }
        }
    }
}

/// A group a drill raised and no cleanup has returned yet, as the state's
/// journals tell it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftRaised {
    /// The drill.
    pub run: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// Its `--max-duration`, when it was given one.
    pub max_duration: Option<Duration>,
    /// The group and its restore point.
    pub temp: Temp,
}

/// Every group a drill of `journals` raised that no cleanup (the drill's
/// own, a resume's, a sweep's) has returned: the drills' restore points
/// less those a `cleanup` record of any run proved done (pure).
/// `journals`: each run's id and records.
pub fn left_raised_in(journals: &[(String, Vec<Record>)]) -> Vec<LeftRaised> {
    let returned: BTreeSet<&Temp> = (journals.iter().flat_map(|(_, records)| records))
        .filter_map(|r| match &r.event {
            Event::Cleanup {
                resource, result, ..
            } if result.done() => Some(resource),
            _ => None,
        })
        .collect();
    let mut out: Vec<LeftRaised> = Vec::new();
    for (run, records) in journals {
        let Some(Event::RunStarted {
            kind: RunKind::Drill,
            flags,
            ..
        }) = records.first().map(|r| &r.event)
        else {
            continue;
        };
        let started = records[0].at;
        let max_duration = RunFlags::of(flags)
            .ok()
            .and_then(|f| f.max_duration_seconds)
            .map(Duration::from_secs);
        for r in records {
            if let Event::DrillResource { resource: t, .. } = &r.event
                && t.raised_group().is_some()
                && !returned.contains(t)
                && !out.iter().any(|l| &l.temp == t && &l.run == run)
            {
                out.push(LeftRaised {
                    run: run.clone(),
                    started,
                    max_duration,
                    temp: t.clone(),
                });
            }
        }
    }
    out
}

/// Run `run`'s records in `store`, as every reader of runs reads them
/// ([`crate::journal::runs`]: with run keys listed, only when signed by
/// one of them; else leniently, a line that does not parse skipped: these
/// readers look for evidence, and a damaged chain still says what it
/// says); `None`: no journal of it (vanished, kept elsewhere, or, with
/// keys listed, not signed: a writer of the state could have forged it).
pub async fn records_of(
    store: &dyn JournalStore,
    run: &str,
) -> Result<Option<Vec<Record>>, JournalError> {
    match crate::journal::runs::read_listed(store, run).await? {
        crate::journal::runs::Listed::Read(records) => Ok(Some(records)),
        crate::journal::runs::Listed::LeftOut(why) => {
            tracing::warn!(run, "journal left out: {why}");
            Ok(None)
        }
        crate::journal::runs::Listed::Gone => Ok(None),
    }
}

/// Reads every journal of `store` but `except`'s as every reader of runs
/// does ([`crate::journal::runs`]) and returns the groups their drills
/// left raised ([`left_raised_in`]).
pub async fn left_raised(
    store: &dyn JournalStore,
    except: &str,
) -> Result<Vec<LeftRaised>, JournalError> {
    let read = crate::journal::runs::read_runs(store, |id| id != except).await?;
    if let Some(line) = read.left_out_line() {
        tracing::warn!("{line}");
    }
    let journals = read.runs;
    Ok(left_raised_in(&journals))
}

/// The capacity role of `plan`'s resource `id`, when it has one.
pub fn groups_of<'a>(plan: &'a Plan, id: &str) -> Option<&'a dyn Groups> {
    crate::plan::kinds::each(&plan.spec)
        .into_iter()
        .find(|r| r.id() == id)
        .and_then(|r| match r.shown() {
            Shown::Capacity(g) => Some(g),
            _ => None,
        })
}

/// Why a drill cannot tell whether another drill's raise is on a group.
#[derive(Debug, thiserror::Error)]
pub enum OtherDrillError {
    /// The group could not be read.
    #[error("{0}")]
    Cloud(#[from] CloudError),
    /// The journals could not be read.
    #[error("the journals cannot be read: {0}")]
    Journal(#[from] JournalError),
}

/// Another drill's raise still on resource `id`'s group in `region` (a
/// plan region, as a step's target names it), found through the capacity
/// role: `None` when the group reads at its standby size, is missing, or
/// no drill but `run` left a raise on it. One place for every capacity
/// kind's drill (its preflight and its step, before it journals anything).
pub async fn other_drill(
    clouds: &Clouds,
    journals: &dyn JournalStore,
    (plan, id): (&Plan, &str),
    region: &str,
    run: &str,
) -> Result<Option<LeftRaised>, OtherDrillError> {
    let Some(g) = groups_of(plan, id) else {
        return Ok(None);
    };
    let Some((at, name)) = raised_off_standby(clouds, g, region).await? else {
        return Ok(None);
    };
    let left = left_raised(journals, run).await?;
    Ok(left
        .into_iter()
        .find(|l| l.temp.raised_group() == Some((at.as_str(), name.clone()))))
}

/// Group `g`'s name in `region` (a plan region) as the journals record
/// a raise of it, when the group reads through its kind's capacity role
/// at another size than the plan's standby one (`None`: no group there,
/// missing, or at its standby size): what a drill and the sweep ask
/// before they read the journals.
async fn raised_off_standby(
    clouds: &Clouds,
    g: &dyn Groups,
    region: &str,
) -> Result<Option<(String, String)>, CloudError> {
    let Some((at, name)) = g.raised_group(region) else {
        return Ok(None);
    };
    let read = g.scaling().read(clouds, &at, &name).await?;
    Ok(read.filter(|r| !g.at_standby(r)).map(|_| (at, name)))
}

/// What a drill's refusal says of `other`'s raise on `what` in `region`.
pub fn refused(what: &str, region: &str, other: &LeftRaised) -> String {
    format!(
        "{what} in {region} is raised by drill {}, whose cleanup has not returned it yet",
        other.run
    )
}

/// What to do about `other`'s raise.
pub fn hint(other: &LeftRaised) -> String {
    format!(
        "`drctl runs resume {}` (or `drctl drill sweep`) returns what that drill left, then drill again",
        other.run
    )
}

/// [`other_drill`] of a drill step's context: its clouds, its journals
/// and its plan, leaving its own run out.
async fn other_drill_in(
    cx: &Cx<'_>,
    id: &str,
    region: &str,
) -> Result<Option<LeftRaised>, OtherDrillError> {
    let at = (cx.plan, id);
    other_drill(cx.clouds, cx.journal.as_ref(), at, region, cx.run_id).await
}

/// [`other_drill`] for a drill step's run: a read that fails refuses the
/// step before it journals or changes anything.
pub async fn other_drill_of(
    cx: &Cx<'_>,
    id: &str,
    region: &str,
    what: &str,
) -> Result<Option<LeftRaised>, StepFailure> {
    other_drill_in(cx, id, region).await.map_err(|e| {
        StepFailure::state(
            format!("whether another drill raised {what} in {region} cannot be read: {e}"),
            "nothing was changed; check the state (`drctl runs list`), then drill again",
            what,
            region,
        )
    })
}

/// A standby group of a plan that does not read at its standby size, as
/// a sweep looks for drills' raises: the plan, and the group as the
/// journals name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffStandby {
    /// The plan's name.
    pub plan: String,
    /// The region the group lives in, as the journals name it.
    pub region: String,
    /// The group's name, as the journals name it.
    pub group: String,
}

/// Every standby group of `plans` (every capacity kind, every region but
/// the plan's home) that does not read at its standby size; the reads
/// that failed beside them.
pub async fn off_standby(clouds: &Clouds, plans: &[Plan]) -> (Vec<OffStandby>, Vec<CloudError>) {
    let (mut off, mut errors) = (Vec::new(), Vec::new());
    for p in plans {
        for r in crate::plan::kinds::each(&p.spec) {
            let Shown::Capacity(g) = r.shown() else {
                continue;
            };
            for region in p.regions().iter().filter(|r| *r != p.home()) {
                match raised_off_standby(clouds, g, region).await {
                    Ok(Some((at, group))) => off.push(OffStandby {
                        plan: p.name().to_string(),
                        region: at,
                        group,
                    }),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    (off, errors)
}

/// Who owns the capacity of a group a drill raised, as decided (from the
/// plan's lock and the journals, `crate::cleanup::owner`) right before the
/// drill's cleanup or a sweep returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapacityOwner {
    /// The drill: the group goes back to its restore tag.
    Drill(String),
    /// A failover owns it now (or will): the capacity stays, the drill's
    /// tags come off so that no later cleanup or sweep lowers it.
    Failover(String),
    /// Neither can be shown: the capacity stays and so do the drill's tags
    /// (the restore point), for a later cleanup, a sweep or an operator.
    Unknown(String),
}

impl CapacityOwner {
    /// Why it was decided so.
    pub fn why(&self) -> &str {
        match self {
            Self::Drill(w) | Self::Failover(w) | Self::Unknown(w) => w,
        }
    }
}

/// What a generic capacity step is: part of the recovery, reversible;
/// its calls are its resource kind's ([`cost_of`]).
pub const GENERIC: Traits = Traits::RECOVERY;

/// What a generic capacity step of resource kind `of` costs: its role's
/// read and write, the wait until the group serves, polled with the read.
pub fn cost_of(of: ResourceKind) -> Cost {
    let cost = |s: &dyn crate::plan::kinds::scaling::Scaling| {
        let c = s.about().calls;
        Cost::of_role(c.calls, c.waits, c.read)
    };
    of.scaling().map_or(GENERIC.time, cost)
}

/// What a generic capacity step raises: one capacity resource's group in
/// the run's target (the parameters of `raise` and `drill-raise`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raising {
    /// Plan resource id.
    pub resource: String,
    /// Its kind (whose capacity role acts).
    pub of: ResourceKind,
    /// The group in the target, as its kind names it.
    pub group: String,
    /// The region the group lives in.
    pub region: String,
    /// The active size to reach.
    pub size: Size,
    /// The same resource's groups in the plan's other regions, lowered to
    /// their standby size after the raise, bounded and beside the run (a
    /// group that must serve in one region at a time, `Groups::exclusive`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<Elsewhere>,
    /// The plan opted out of counting what the group's load balancers
    /// say (`wait_for_targets = false`): the raise counts its own members
    /// in service alone.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_targets: bool,
}

/// A group a failover lowers in a region it leaves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Elsewhere {
    /// Its region.
    pub region: String,
    /// Its name, as its kind names it.
    pub group: String,
    /// Its standby size.
    pub size: Size,
}

/// How long a failover tries to lower a group in a region it leaves: once,
/// this long at most, so a region that does not answer costs no more.
pub const ELSEWHERE_BOUND: Duration = Duration::from_secs(10);

impl Raising {
    /// Lowers each group of [`Raising::elsewhere`] to its standby size, each
    /// once and within [`ELSEWHERE_BOUND`]; what came of each, in words (a
    /// region that did not answer is said, with the command that does it by
    /// hand, and fails nothing).
    pub(crate) async fn lower_elsewhere(&self, by: &Driver<'_, '_>) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.elsewhere {
            let lowered = async {
                let g = Group::of(self.of, &e.region, &e.group)?;
                let read = g.read(by.clouds()).await?.ok_or_else(|| g.missing())?;
                if read.size == e.size {
                    return Ok(false);
                }
                g.bring_to(by, e.size, Some(read)).await.map(|_| true)
            };
            let manual = (self.of.scaling())
                .map(|s| s.manual(&e.region, &e.group, e.size))
                .unwrap_or_default();
            let failed = |why: String| {
                format!(
                    "could not set {} to {} in {}: {why}; do it when it answers: {manual}",
                    e.group, e.size, e.region
                )
            };
            out.push(match tokio::time::timeout(ELSEWHERE_BOUND, lowered).await {
                Ok(Ok(true)) => format!("set {} to {} in {}", e.group, e.size, e.region),
                Ok(Ok(false)) => format!("{} was already {} in {}", e.group, e.size, e.region),
                Ok(Err(why)) => failed(why.summary()),
                Err(_) => failed(format!("no answer within {}s", ELSEWHERE_BOUND.as_secs())),
            });
        }
        out
    }

    /// The group, through its kind's role, read through its target
    /// groups unless the plan opted out.
    pub fn at(&self) -> Result<Group<'_>, StepFailure> {
        let g = Group::of(self.of, &self.region, &self.group)?;
        Ok(Group {
            through_targets: !self.ignore_targets,
            ..g
        })
    }

    /// A preflight's finding of the group: `read` is its read with why
    /// the step would refuse it (`None`: it would not), or why it could
    /// not be read.
    pub fn finding(&self, read: Result<Option<(Reading, Option<String>)>, String>) -> Finding {
        let (noun, unit) = match self.at() {
            Ok(g) => (g.scaling.about().noun, g.scaling.about().unit),
            Err(e) => return Finding::blocks(&self.group, &self.region, "unknown", e.summary()),
        };
        let what = format!("{noun} {}", self.group);
        match read {
            Ok(None) => Finding::missing(&what, &self.region),
            Ok(Some((r, Some(why)))) => Finding::blocks(&what, &self.region, r.state, why),
            // The read is kept: a failover's step acts on it while it is
            // fresh (one request fewer on its path, `fresh_read`).
            Ok(Some((r, None))) => {
                let targets: String = (r.targets.iter())
                    .map(|t| format!("; {}", t.said()))
                    .collect();
                let state = format!("{} {unit}, {}{targets}", r.size, r.state);
                let finding = match r.targets.iter().any(|t| t.unread.is_some()) {
                    // Said, never a reason to stop: the raise waits on it,
                    // and names it if it never counts healthy.
                    true => Finding::unknown(&what, &self.region, state),
                    false => Finding::ok(&what, &self.region, state),
                };
                finding.with_facts(&r)
            }
            Err(why) => Finding::blocks(&what, &self.region, "could not be read", why),
        }
    }

    /// Why a preflight blocks on group `r` (pure), the failover's and the
    /// drill's alike: a raise of it would be refused (a size of another
    /// shape, above its ceiling, a failed change), or a group of three
    /// bounds is short of the active size ([`short_of`], what `status`
    /// judges a standby by).
    pub fn refusal(&self, r: &Reading) -> Option<String> {
        match decide_size(Some(r), r.size.raised(self.size)) {
            SizeNext::Refuse(why) => Some(why),
            _ => match (r.size, self.size, self.of.scaling()) {
                (Size::Bounds(now), Size::Bounds(active), Some(s)) => short_of(s, now, active),
                _ => None,
            },
        }
    }

    /// The read preflight made of the group moments ago in this run, when
    /// it is fresh ([`Cx::preflight_facts`]): a step acts on it rather than
    /// read again (setting a size is idempotent, and the marks it names
    /// were on the group then).
    pub fn fresh_read(&self, cx: &Cx<'_>, g: &Group<'_>) -> Option<Reading> {
        cx.preflight_facts(&format!("{} {}", g.scaling.about().noun, self.group))
    }

    /// A preview of its write: `read` as it is now, `desired` in words.
    pub fn planned(&self, g: &Group<'_>, read: Option<&Reading>, desired: String) -> Planned {
        let unit = g.scaling.about().unit;
        Planned {
            call: (read.map_or(g.scaling.about().calls.set, |r| g.scaling.set_call(r))).into(),
            resource: self.group.clone(),
            region: self.region.clone(),
            current: read.map_or("missing".into(), |r| {
                format!("{} {unit}, {}", r.size, r.state)
            }),
            desired,
            change: read
                .is_none_or(|r| decide_size(Some(r), r.size.raised(self.size)) != SizeNext::Done),
        }
    }
}

/// Adds one step a group to the builder for every capacity resource of
/// its plan whose kind the capacity role's actions serve, in the target:
/// the generic steps' one list (a drill's leaves out the groups that must
/// serve in one region at a time, `Groups::exclusive`). `then` ends each description; `step`
/// makes the step of a group.
pub(crate) fn compile_raises(
    b: &mut Builder<'_>,
    then: &str,
    step: impl Fn(Raising) -> super::StepKind,
) {
    let mut found = Vec::new();
    for r in crate::plan::kinds::each(&b.plan.spec) {
        let (Shown::Capacity(g), Some(scaling)) = (r.shown(), r.kind().scaling()) else {
            continue;
        };
        let Some((region, group)) = g.raised_group(b.target) else {
            continue;
        };
        let drill = matches!(b.mode, crate::steps::graph::RunMode::Drill { .. });
        if drill && g.exclusive() {
            continue;
        }
        let size = scaling.size_of(g.active());
        // One region at a time: a failover lowers the others, where they
        // answer, once the target serves.
        let elsewhere: Vec<Elsewhere> = (g.exclusive().then(|| r.regions()).flatten().into_iter())
            .flat_map(|regions| regions.keys())
            .filter(|other| other.as_str() != b.target)
            .filter_map(|other| g.raised_group(other))
            .map(|(region, group)| Elsewhere {
                region,
                group,
                size: scaling.size_of(g.standby()),
            })
            .collect();
        let mut description = format!(
            "raise {} {group} in {region} to {size} {}, {then}",
            scaling.about().noun,
            scaling.about().unit
        );
        for e in &elsewhere {
            description += &format!(
                "; then set it to {} in {} where it answers",
                e.size, e.region
            );
        }
        let raising = Raising {
            resource: r.id().to_string(),
            of: r.kind(),
            group,
            region,
            size,
            elsewhere,
            ignore_targets: !g.waits_for_targets(),
        };
        found.push((raising, description));
    }
    b.add_each(found, step, |r| (r.resource.clone(), r.of));
}

/// The write a step made to a group, as its output says it: the call, as
/// the preview and the fence name it, and the provider's operation, when
/// the write answers one (a managed instance group's: follow it in the
/// provider's console or CLI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wrote {
    /// The call (`compute:regionInstanceGroupManagers.resize`,
    /// `compute:regionAutoscalers.patch`, `ecs:UpdateService`, ...).
    pub call: String,
    /// The provider's operation it answered, when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

/// How long a read of a target group's health may take: it never holds
/// the read of the group it counts (an unread one counts none healthy).
pub const TARGETS_BOUND: Duration = Duration::from_secs(10);

/// What each target group of `arns` in `region` counts healthy, read
/// together, each within [`TARGETS_BOUND`]: one that could not be read is
/// said as unread (none of its targets healthy: unknown is not healthy),
/// never a failed read of the group. The raise's and `status`'s one way.
pub async fn target_counts(clouds: &Clouds, region: &str, arns: &[String]) -> Vec<TargetCount> {
    let reads = arns.iter().map(|arn| async move {
        let read = tokio::time::timeout(TARGETS_BOUND, clouds.balancers.target_health(region, arn));
        let unread = match read.await {
            Ok(Ok(count)) => return count,
            Ok(Err(e)) => e.summary(),
            Err(_) => format!("no answer within {}s", TARGETS_BOUND.as_secs()),
        };
        TargetCount {
            arn: arn.clone(),
            unread: Some(unread),
            ..TargetCount::default()
        }
    });
    futures::future::join_all(reads).await
}

/// What a group's read says to do to bring it to a size (pure): the one
/// rule of the generic capacity steps and their cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeNext {
    /// At the size, serving it, nothing under way.
    Done,
    /// A change is under way (after a crash likely ours): wait for it to
    /// end, then decide again.
    Settle,
    /// At the size, its tasks still starting: wait until they serve.
    Serve,
    /// Set the size.
    Set,
    /// It cannot be brought there (why).
    Refuse(String),
}

/// Decides what bringing `read` to `want` does (pure).
pub fn decide_size(read: Option<&Reading>, want: Size) -> SizeNext {
    let Some(r) = read else {
        return SizeNext::Refuse("it does not exist".into());
    };
    if !r.size.same_shape(want) {
        return SizeNext::Refuse(format!(
            "it reads {}, a size of another shape than {want}: another drctl's journal or mark",
            r.size
        ));
    }
    if let Some(most) = r.ceiling.filter(|most| want.serving() > *most) {
        return SizeNext::Refuse(format!(
            "it can be set to serve at most {most} (its state: {}), below {want}",
            r.state
        ));
    }
    match &r.change {
        // A change to another size is a new attempt; at the size, what
        // serves decides: the size served is done whatever the last
        // rollout says, one short of it is that rollout's failure.
        Change::Failed { .. } if r.size != want => SizeNext::Set,
        Change::Failed { .. } if r.served() >= want.serving() => SizeNext::Done,
        Change::Failed { id, reason } => {
            SizeNext::Refuse(format!("its last change, {id}, failed: {reason}"))
        }
        Change::Rolling(_) => SizeNext::Settle,
        Change::Settled if r.size != want => SizeNext::Set,
        Change::Settled if r.served() >= want.serving() => SizeNext::Done,
        Change::Settled => SizeNext::Serve,
    }
}

/// A group of a kind the generic capacity steps raise, as they address it.
#[derive(Clone, Copy)]
pub struct Group<'a> {
    /// The kind's actions.
    pub scaling: &'a dyn Scaling,
    /// Its region.
    pub region: &'a str,
    /// Its name, as journals and marks name it.
    pub name: &'a str,
    /// Whether a read of it also reads the target groups it is registered
    /// in (`Reading::targets`), so that what serves is what its load
    /// balancers count healthy: a raise's and a drill's; not a cleanup's,
    /// which returns a size and waits on no traffic.
    pub through_targets: bool,
}

impl std::fmt::Display for Group<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.scaling.about().noun,
            self.name,
            self.region
        )
    }
}

impl<'a> Group<'a> {
    /// Group `name` of kind `of` in `region`, reached through its kind's
    /// role (refused when the kind has none: a journal of another drctl).
    pub fn of(of: ResourceKind, region: &'a str, name: &'a str) -> Result<Self, StepFailure> {
        let scaling = of.scaling().ok_or_else(|| {
            StepFailure::state(
                format!("{} has no capacity role in this drctl", of.table()),
                "act on it with the drctl that started the run",
                name,
                region,
            )
        })?;
        Ok(Self {
            scaling,
            region,
            name,
            through_targets: false,
        })
    }
}

impl Group<'_> {
    /// Reads it, and (`through_targets`) what each target group it is
    /// registered in counts healthy, read together.
    pub async fn read(&self, clouds: &Clouds) -> Result<Option<Reading>, CloudError> {
        let Some(mut read) = self.scaling.read(clouds, self.region, self.name).await? else {
            return Ok(None);
        };
        if self.through_targets {
            read.targets = target_counts(clouds, self.region, &read.balanced_by).await;
        }
        Ok(Some(read))
    }

    /// The failure of a step that finds it missing.
    pub fn missing(&self) -> StepFailure {
        StepFailure::state(
            format!("{self} does not exist"),
            self.scaling.about().missing_hint,
            self.name,
            self.region,
        )
    }

    /// Takes the drill marks off `read` (fenced): a failover that owns
    /// the group, or a cleanup that returned it. Returns the keys removed.
    pub(crate) async fn unmark(
        &self,
        by: &Driver<'_, '_>,
        read: &Reading,
    ) -> Result<Vec<String>, StepFailure> {
        let keys: Vec<String> = (drill_names::TAGS.iter())
            .filter(|k| read.marks.contains_key(**k))
            .map(|k| k.to_string())
            .collect();
        if !keys.is_empty() {
            let what = format!("{} of {}", self.scaling.about().calls.unmark, self.name);
            by.fenced(&what, self.region).await?;
            (self.scaling)
                .unmark(by.clouds(), self.region, read, &keys)
                .await?;
        }
        Ok(keys)
    }

    /// Brings it to `want` and waits until it serves `want` with nothing
    /// under way: read, decide ([`decide_size`], pure), one fenced write,
    /// wait. The failover's step, the drill's and the drill's cleanup share
    /// it. Returns the read before, the read after, and the write it made
    /// (`None`: none was needed).
    /// `first`: a read of it made just before, if any (one request fewer).
    pub(crate) async fn bring_to(
        &self,
        by: &Driver<'_, '_>,
        want: Size,
        first: Option<Reading>,
    ) -> Result<(Reading, Reading, Option<Wrote>), StepFailure> {
        let clouds = by.clouds();
        let before = match first {
            Some(r) => r,
            None => self.read(clouds).await?.ok_or_else(|| self.missing())?,
        };
        let (mut now, mut wrote) = (before.clone(), None);
        loop {
            match decide_size(Some(&now), want) {
                SizeNext::Done => break,
                // A cleanup returns the size; what serves at it (a node
                // group left DEGRADED by its launches, a failed rollout)
                // is not its to wait on: the raise is undone.
                SizeNext::Refuse(_)
                    if matches!(by, Driver::Cleanup { .. })
                        && now.size == want
                        && matches!(now.change, Change::Failed { .. }) =>
                {
                    break;
                }
                SizeNext::Refuse(why) => {
                    return Err(StepFailure::state(
                        format!("{self}: {why}"),
                        "read its events (the provider's console or CLI), fix the cause, then resume: the step reads it first",
                        self.name,
                        self.region,
                    ));
                }
                SizeNext::Set if wrote.is_some() => {
                    return Err(StepFailure::state(
                        format!(
                            "{self} reads {} {} after drctl set {want}",
                            now.size,
                            self.scaling.about().unit
                        ),
                        "another writer changed it (an autoscaler?): look at it, then resume",
                        self.name,
                        self.region,
                    ));
                }
                SizeNext::Set => {
                    let call = self.scaling.set_call(&now);
                    let what = format!("{call} of {}", self.name);
                    by.fenced(&what, self.region).await?;
                    let key = by.write_key(self, want);
                    let operation = (self.scaling)
                        .set(clouds, self.region, self.name, want, &key)
                        .await?;
                    if let Some(op) = &operation {
                        self.operation_done(by, op).await?;
                    }
                    wrote = Some(Wrote {
                        call: call.to_string(),
                        operation,
                    });
                    now = self.settled(by, want).await?;
                }
                SizeNext::Settle | SizeNext::Serve => now = self.settled(by, want).await?,
            }
        }
        Ok((before, now, wrote))
    }

    /// Waits until the provider's operation `op` of a write is done; one
    /// that failed fails the step naming it and the provider's reason.
    async fn operation_done(&self, by: &Driver<'_, '_>, op: &str) -> Result<(), StepFailure> {
        let what = format!("operation {op} on {self}");
        let ended = by
            .wait(&what, || async {
                let at = (self.region, self.name);
                Ok(self.scaling.answers().stands(by.clouds(), at, op).await?)
            })
            .await?;
        ended.map_err(|why| {
            StepFailure::state(
                format!("{self}: operation {op} failed: {why}"),
                "fix the cause (a quota, the instance template), then resume: the step reads it first",
                self.name,
                self.region,
            )
        })
    }

    /// Waits until it serves `want`, or its change ended otherwise (at
    /// another size, or failed), and returns that read.
    async fn settled(&self, by: &Driver<'_, '_>, want: Size) -> Result<Reading, StepFailure> {
        let what = format!(
            "{} {} serving in {self}",
            want.serving(),
            self.scaling.about().unit
        );
        let waited = by
            .wait(&what, || async {
                let r = self
                    .read(by.clouds())
                    .await?
                    .ok_or_else(|| self.missing())?;
                let ended = match &r.change {
                    Change::Failed { .. } => true,
                    Change::Rolling(_) => false,
                    Change::Settled => r.size != want || r.served() >= want.serving(),
                };
                Ok(ended.then_some(r))
            })
            .await;
        match waited {
            // What keeps it from serving, as its last read says (a managed
            // instance group's instances' errors): a read that fails here
            // changes nothing of the timeout.
            Err(StepFailure::Timeout { what, waited }) => {
                let last = match self.read(by.clouds()).await {
                    Ok(Some(r)) => {
                        let targets: String = (r.targets.iter())
                            .filter(|t| t.healthy < want.serving())
                            .map(|t| format!("; {}", t.said()))
                            .collect();
                        format!(
                            "; it reads {} {}, {}{targets}",
                            r.size,
                            self.scaling.about().unit,
                            r.state
                        )
                    }
                    _ => String::new(),
                };
                Err(StepFailure::Timeout {
                    what: format!("{what}{last}"),
                    waited,
                })
            }
            other => other,
        }
    }
}

/// Journal records for tests of what the journals leave raised.
#[cfg(test)]
pub(crate) mod testing {
    use crate::journal::event::{Event, Record, RunKind};

    /// A record of `event` at `at` (RFC 3339).
    pub fn record(at: &str, event: Event) -> Record {
        Record {
            seq: 0,
            at: at.parse().unwrap(),
            prev: "0".repeat(64),
            event,
            fence: Default::default(),
            late: None,
        }
    }

    /// Run `run`'s first record, at 03:00, with a 10-minute
    /// `--max-duration`.
    pub fn started(run: &str, kind: RunKind, target: &str) -> Record {
        record(
            "2026-11-25T03:00:00Z",
            Event::RunStarted {
                run_id: run.into(),
                kind,
                target: target.into(),
                plans: Vec::new(),
                operator: None,
                host: "h".into(),
                pid: 1,
                flags: serde_json::json!({"max_duration_seconds": 600}),
                declared_at: None,
                nonce: None,
                steps: Vec::new(),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::testing::record;
    use super::*;
    use crate::cloud::Capacity;
    use crate::journal::CleanupResult;
    use crate::journal::event::StepName;

    fn started(run: &str, kind: RunKind) -> Record {
        super::testing::started(run, kind, "us-east4")
    }

    fn temps() -> Vec<Temp> {
        vec![
            Temp::NodeCapacity {
                region: "us-west-2".into(),
                cluster: "c".into(),
                group: "g".into(),
                restore: Capacity {
                    min: 0,
                    desired: 0,
                    max: 2,
                },
            },
            Temp::MigSize {
                region: "us-east4".into(),
                project: "p".into(),
                group: "orders-mig".into(),
                autoscaler: None,
                restore: 1,
            },
            Temp::RunFloor {
                region: "us-east4".into(),
                project: "p".into(),
                service: "orders-api".into(),
                restore: 0,
            },
        ]
    }

    fn raised(t: &Temp) -> Record {
        record(
            "2026-11-25T03:00:01Z",
            Event::DrillResource {
                step: StepName::parse("orders/drill-mig:orders-mig").unwrap(),
                resource: t.clone(),
            },
        )
    }

    fn cleaned(t: &Temp, result: CleanupResult) -> Record {
        record(
            "2026-11-25T03:10:00Z",
            Event::Cleanup {
                resource: t.clone(),
                result,
                detail: String::new(),
            },
        )
    }

    /// Every capacity kind's raise is left raised until a cleanup of any
    /// run returns it; a failed cleanup proves nothing; a database a drill
    /// made is no raise; a failover's journal names none.
    #[test]
    fn every_capacity_kinds_raise_is_left_until_a_cleanup_of_any_run_returns_it() {
        let dead = "20261125T030000Z-orders-dead";
        for t in temps() {
            let journals = |rest: Vec<Record>, sweep: Vec<Record>| {
                let mut drill = vec![started(dead, RunKind::Drill), raised(&t)];
                drill.push(raised(&Temp::Database {
                    region: "us-east4".into(),
                    id: "drill-x".into(),
                }));
                drill.extend(rest);
                vec![
                    (dead.to_string(), drill),
                    ("sweep-1".to_string(), sweep),
                    (
                        "f1".to_string(),
                        vec![started("f1", RunKind::Failover), raised(&t)],
                    ),
                ]
            };
            let left = left_raised_in(&journals(vec![], vec![]));
            assert_eq!(left.len(), 1, "{t}: {left:?}");
            assert_eq!(
                (left[0].run.as_str(), left[0].max_duration),
                (dead, Some(Duration::from_secs(600)))
            );
            let failed = vec![cleaned(&t, CleanupResult::Failed)];
            assert_eq!(left_raised_in(&journals(failed, vec![])).len(), 1, "{t}");
            let restored = vec![cleaned(&t, CleanupResult::Restored)];
            assert!(
                left_raised_in(&journals(restored, vec![])).is_empty(),
                "{t}"
            );
            let swept = vec![
                started("sweep-1", RunKind::Sweep),
                cleaned(&t, CleanupResult::Restored),
            ];
            assert!(left_raised_in(&journals(vec![], swept)).is_empty(), "{t}");
        }
    }

    /// A load balancer's API that never answers is a target group said
    /// unread after [`TARGETS_BOUND`], counting none healthy; one that
    /// answers is counted beside it.
    #[tokio::test(start_paused = true)]
    async fn a_target_group_that_never_answers_is_unread_at_its_bound() {
        struct Hung;
        #[async_trait::async_trait]
        impl crate::cloud::Balancers for Hung {
            async fn target_health(&self, _: &str, arn: &str) -> Result<TargetCount, CloudError> {
                if arn == "answers" {
                    return Ok(TargetCount {
                        arn: arn.into(),
                        healthy: 2,
                        registered: 2,
                        ..TargetCount::default()
                    });
                }
                std::future::pending().await
            }
        }
        let mut clouds = crate::cloud::fake::FakeCloud::new().clouds();
        clouds.balancers = std::sync::Arc::new(Hung);
        let started = tokio::time::Instant::now();
        let arns = ["hangs".to_string(), "answers".to_string()];
        let counts = target_counts(&clouds, "us-east-1", &arns).await;
        assert_eq!(started.elapsed(), TARGETS_BOUND);
        assert_eq!(
            (counts[0].healthy, counts[0].unread.as_deref()),
            (0, Some("no answer within 10s"))
        );
        assert_eq!((counts[1].healthy, counts[1].unread.as_deref()), (2, None));
    }
}
