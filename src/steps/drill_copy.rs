//! `drill-copy`: a shadow drill's data, rehearsed on a copy through the
//! kind's data role ([`Drilling`]): a temporary RDS replica of the home
//! primary, promoted; a clone of an Aurora global database's secondary
//! with a writer added; a Cloud SQL clone of the home primary at its
//! latest recovery time. Production is only read.
//!
//! # Why one step
//!
//! Each kind's drill was a step kind of its own (`drill-database`,
//! `drill-global`, `drill-sql`, retired), and each kept part of a drill's
//! promise. Here it is written once, for every kind whose role drills:
//! - a copy found under the drill's name that is not the drill's (another
//!   drill's tags, none) is refused by name, never used or removed;
//! - a copy found made (a re-run, after a crash) is not made again, and
//!   the output says that the reading taken before it is lost;
//! - each call that changes anything is fenced;
//! - the measured RPO says what it was read from ([`DrillAbout::measured`])
//!   or that it is unknown (never 0): the copy's lag before it is made
//!   writable, the standby's right before it is copied (the first
//!   datapoint, waited for up to [`LAG_WAIT`]), or the gap from the point
//!   a clone was made at to its request;
//! - the copy is named from the run id alone and journaled before the
//!   step starts ([`Action::creates`]), so a crash between a call and its
//!   answer still leaves it named for cleanup; cleanup ([`remove`]) and
//!   `drctl drill sweep` (by its tags or name, from any machine) delete it
//!   only when it is a drill's, and prove it gone with a read.
//!
//! What each kind does stays its own (`plan::kinds::drilling`): where the
//! copy lives, how it is read, made, made writable, listed and deleted.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::copies::LagRecord;
use super::leftovers::{Drill, Drilled, Left, Look, copy_short, keep};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    drill_names, wait_for,
};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, Clouds, LagReading};
use crate::journal::{CleanupResult, Temp};
use crate::plan::kinds::drilling::{
    CopySeen, CopyStage, Deleted, DrillAbout, Drilling, LagOf, Shadow,
};
use crate::plan::kinds::restoring::Placement;
use crate::plan::kinds::{Shown, each};
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, DrillDepth, RunMode};

/// How long a drill waits for a first lag datapoint (RDS publishes
/// `ReplicaLag` about once a minute).
pub const LAG_WAIT: Duration = Duration::from_secs(150);

/// Rehearse one data resource's recovery on a copy of its data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillCopy {
    /// Plan resource id.
    pub resource: String,
    /// Its kind (whose data role makes the copy).
    pub of: ResourceKind,
    /// The home region.
    pub home_region: String,
    /// The home copy, as the kind addresses copies.
    pub home: String,
    /// The drill's target region.
    pub region: String,
    /// The standby copy in the target (only read).
    pub standby: String,
    /// Whose backups, and where a copy made in the target goes, as the
    /// plan says (a backup standby's; empty for the other kinds).
    #[serde(skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
}

/// What a drill's copy step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DrillCopyOutput {
    /// The kind whose role made the copy (`None` in an older journal,
    /// whose retired kind says it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<ResourceKind>,
    /// The drill's copy, as its kind addresses it (a retired
    /// `drill-global`'s `cluster`).
    #[serde(alias = "cluster")]
    pub copy: String,
    /// What the kind made for it (an Aurora copy's writer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Its region.
    pub region: String,
    /// What it was made from.
    pub source: String,
    /// Where that is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_region: Option<String>,
    /// The standby in the target, not touched (a retired
    /// `drill-database`'s `replica_untouched`).
    #[serde(alias = "replica_untouched", skip_serializing_if = "Option::is_none")]
    pub untouched: Option<String>,
    /// Set when the copy was there already (a re-run, after an attempt
    /// whose outputs were lost).
    #[serde(
        alias = "already_promoted",
        alias = "already_cloned",
        alias = "already_existed",
        skip_serializing_if = "Option::is_none"
    )]
    pub already: Option<bool>,
    /// The lag read as the RPO, when the kind's RPO is a lag.
    #[serde(flatten)]
    pub lag: LagRecord,
    /// The point in time the copy holds, when made at one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<DateTime<Utc>>,
    /// What the copy was restored from, when restored from backups (a
    /// backup standby's: the drill is a restore test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// When the copy was asked for (a retired `drill-global`'s
    /// `cloned_at`).
    #[serde(alias = "cloned_at", skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<DateTime<Utc>>,
    /// The provider's operation making it, when one answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// When it was asked to be made writable (a retired
    /// `drill-database`'s `promoted_at`).
    #[serde(alias = "promoted_at", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When it was seen writable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writable_at: Option<DateTime<Utc>>,
    /// What the RPO was measured from, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<String>,
    /// Its endpoint.
    pub endpoint: Option<String>,
    /// Its port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

impl StepOutput for DrillCopyOutput {
    const KIND: KindName = KindName::DrillCopy;
}

/// Part of the drill's recovery, and where its RPO is read. Not
/// irreversible: what it changes is the drill's own copy.
pub const TRAITS: Traits = Traits {
    endpoint: Some(|v| DrillCopyOutput::read(v)?.endpoint),
    rpo: Some(|r, out, _, _, _| rpo_of(r, out.map(read_output), None)),
    restored: Some(|v| {
        let out = DrillCopyOutput::read(v)?;
        Some(crate::steps::Restored {
            from: out.restored_from?,
            point: out.restore_point,
        })
    }),
    time: Cost {
        calls: &[],
        waits: &[],
        polls: None,
    },
    ..Traits::RECOVERY
};

/// The retired `drill-database` (an RDS temporary replica): its journals
/// read through the one output.
pub const RETIRED_RDS: Traits = Traits {
    endpoint: Some(|v| read_retired(v).endpoint),
    rpo: Some(|r, out, _, _, _| rpo_of(r, out.map(read_retired), Some(ResourceKind::Database))),
    ..TRAITS
};

/// The retired `drill-global` (a clone of an Aurora secondary).
pub const RETIRED_GLOBAL: Traits = Traits {
    endpoint: Some(|v| read_retired(v).endpoint),
    rpo: Some(|r, out, _, _, _| {
        rpo_of(r, out.map(read_retired), Some(ResourceKind::GlobalDatabase))
    }),
    ..TRAITS
};

/// The retired `drill-sql` (a clone of the Cloud SQL primary).
pub const RETIRED_SQL: Traits = Traits {
    endpoint: Some(|v| read_retired(v).endpoint),
    rpo: Some(|r, out, _, _, _| rpo_of(r, out.map(read_retired), Some(ResourceKind::CloudSql))),
    ..TRAITS
};

/// This kind's output as journaled (an unreadable one reads as empty).
fn read_output(v: &Value) -> DrillCopyOutput {
    DrillCopyOutput::read(v).unwrap_or_default()
}

/// A retired kind's output: its `instance` is the copy, unless it named
/// the copy `cluster` (a retired `drill-global`, whose `instance` is the
/// writer).
fn read_retired(v: &Value) -> DrillCopyOutput {
    let mut v = v.clone();
    if let Some(map) = v.as_object_mut()
        && !map.contains_key("cluster")
        && let Some(copy) = map.remove("instance")
    {
        map.insert("copy".into(), copy);
    }
    serde_json::from_value(v).unwrap_or_default()
}

/// What a drill copy's calls cost: its kind's role's.
pub fn cost_of(of: ResourceKind) -> Cost {
    let cost = |a: &DrillAbout| Cost::of_role(a.calls, a.waits, a.polls);
    (of.drilling()).map_or(TRAITS.time, |d| cost(d.about()))
}

/// What the RPO was measured from, by the kind's template (pure).
fn measured(about: &DrillAbout, out: &DrillCopyOutput) -> String {
    let point = out.restore_point.map(|p| p.to_string()).unwrap_or_default();
    about
        .measured
        .replace("{copy}", &out.copy)
        .replace("{source}", &out.source)
        .replace("{region}", &out.region)
        .replace("{point}", &point)
}

/// The drill's RPO of `resource` from its output `out` (pure): the gap
/// from the copy's point in time to its request, else the lag read;
/// unknown (never 0) without either, saying why. `of` names the kind
/// where an older journal does not.
fn rpo_of(
    resource: &str,
    out: Option<DrillCopyOutput>,
    of: Option<ResourceKind>,
) -> (Option<f64>, String) {
    let about = |o: Option<ResourceKind>| o.or(of).and_then(|k| k.drilling()).map(|d| d.about());
    let Some(out) = out else {
        let noun = about(None).map_or("copy", |a| a.noun);
        return (
            None,
            format!("{resource}: unknown (the drill's {noun} was not made writable)"),
        );
    };
    let about = about(out.of);
    let said = match (&out.measured, about) {
        (Some(m), _) => m.clone(),
        (None, Some(a)) => measured(a, &out),
        (None, None) => "the drill copy's reading".into(),
    };
    if let (Some(point), Some(asked)) = (out.restore_point, out.requested_at) {
        let gap = ((asked - point).num_milliseconds() as f64 / 1000.0).max(0.0);
        return (Some(gap), format!("{resource}: {said}"));
    }
    match out.lag.seconds() {
        Some(l) => (
            Some(l),
            format!("{resource}: {said} ({} datapoints)", out.lag.count()),
        ),
        None => (
            None,
            format!(
                "{resource}: unknown ({})",
                (out.lag.note.as_deref()).unwrap_or("no reading of the drill's copy")
            ),
        ),
    }
}

/// The copy `out` describes, seen writable now: when it was found made,
/// the reading taken before it is lost (unknown, never 0); what its RPO
/// was measured from, when it was (pure but for the time).
fn settle(a: &DrillAbout, out: &mut DrillCopyOutput) {
    out.writable_at = Some(Utc::now());
    let read = out.lag.seconds().is_some() || out.restore_point.is_some();
    if out.already.is_some() && !read {
        out.lag.note.get_or_insert_with(|| {
            "made by an earlier attempt whose outputs were not journaled: the reading taken before it is lost".into()
        });
    }
    if read {
        out.measured = Some(measured(a, out));
    }
}

/// A shadow drill rehearses every data resource whose kind's role drills
/// and whose strategy keeps a standby in sync, with a copy in the home
/// region and in the target.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    let mut steps = Vec::new();
    for r in each(&b.plan.spec) {
        let (Shown::Data(copies), Some(role)) = (r.shown(), r.kind().drilling()) else {
            continue;
        };
        let home = copies.copy_at(b.plan.home());
        let (Some(_), Some((home_region, home)), Some((region, standby))) =
            (copies.rpo_source(), home, copies.copy_at(b.target))
        else {
            continue;
        };
        let step = DrillCopy {
            resource: r.id().to_string(),
            of: r.kind(),
            placement: copies.placement(&region),
            home_region,
            home,
            region,
            standby,
        };
        let description = step.describe(role.about());
        steps.push((step, description));
    }
    b.add_each(steps, StepKind::DrillCopy, |s| (s.resource.clone(), s.of));
}

/// What a drill does with its copy as read (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// It is not the drill's, or can never serve: refuse, saying why.
    Refuse(String),
    /// Make it.
    Make,
    /// Wait on it.
    Wait,
    /// Make it writable.
    Finish,
    /// It serves writes.
    Done {
        /// Its endpoint.
        endpoint: Option<String>,
        /// Its port.
        port: Option<i32>,
    },
}

/// Decides (pure) what a drill of run `run` does with its copy `address`
/// in `region`, read as `seen`: refused when it is not the drill's (for a
/// kind that tags, its run tag names another run or none), made when
/// absent, waited on while made or made writable, finished when made, done
/// when writable.
pub fn next(
    about: &DrillAbout,
    (region, address): (&str, &str),
    run: &str,
    seen: Option<&CopySeen>,
) -> Next {
    let Some(seen) = seen else {
        return Next::Make;
    };
    let tagged = seen.tags.get(drill_names::RUN_TAG).map(String::as_str);
    if about.tagged && tagged != Some(run) {
        return Next::Refuse(format!(
            "{} {address} in {region} exists but is not this drill's",
            about.noun
        ));
    }
    match &seen.stage {
        CopyStage::Making { .. } | CopyStage::Finishing => Next::Wait,
        CopyStage::Made => Next::Finish,
        CopyStage::Writable { endpoint, port } => Next::Done {
            endpoint: endpoint.clone(),
            port: *port,
        },
        CopyStage::Broken(why) => Next::Refuse(why.clone()),
    }
}

/// What to do about a copy a drill cannot use.
const NOT_OURS_HINT: &str = "remove it (`drctl drill sweep`), then start a new drill";

impl DrillCopy {
    /// The resource as its kind's role addresses it.
    fn shadow(&self) -> Shadow<'_> {
        Shadow {
            home_region: &self.home_region,
            home: &self.home,
            region: &self.region,
            standby: &self.standby,
            placement: &self.placement,
        }
    }

    /// Its kind's role (every step is compiled from a kind that has one).
    fn role(&self) -> Result<&'static dyn Drilling, StepFailure> {
        self.of.drilling().ok_or_else(|| {
            StepFailure::state(
                format!("{} makes no drill copy", self.of.table()),
                "run the drill with the drctl that started it",
                &self.resource,
                &self.region,
            )
        })
    }

    /// The step's description, from the kind's template.
    fn describe(&self, about: &DrillAbout) -> String {
        about
            .describe
            .replace("{source_region}", &self.home_region)
            .replace("{source}", &self.home)
            .replace("{region}", &self.region)
            .replace("{standby}", &self.standby)
    }

    /// What the copy is made from, and where.
    fn source(&self, about: &DrillAbout) -> (&str, &str) {
        match about.from_standby {
            true => (&self.standby, &self.region),
            false => (&self.home, &self.home_region),
        }
    }

    /// The copy of run `run_id`: its region and address, and the name of
    /// what the kind makes for it (an Aurora copy's writer).
    pub fn copy_of(&self, role: &dyn Drilling, run_id: &str) -> ((String, String), String) {
        let base = role.base(&self.shadow());
        let name = drill_names::temp_database_id(run_id, base);
        let instance = drill_names::temp_database_id(run_id, &format!("{base}-writer"));
        (role.place(&self.shadow(), &name), instance)
    }

    /// Reads the source and refuses one that cannot be copied; a read that
    /// fails says which region a drill needs.
    async fn check_source(&self, cx: &Cx<'_>, role: &dyn Drilling) -> Result<(), StepFailure> {
        let (source, r) = self.source(role.about());
        let read = role.source(cx.clouds, &self.shadow()).await.map_err(|e| {
            StepFailure::state(
                format!(
                    "a shadow drill copies {source} and cannot read it: {}",
                    e.message
                ),
                format!("a drill needs {r} to answer; during an outage run `drctl failover`"),
                source,
                r,
            )
        })?;
        read.map(|_| ())
            .map_err(|(why, hint)| StepFailure::state(why, hint, source, r))
    }

    /// Checks the source, reads the standby's lag where that is the RPO,
    /// then makes the copy, fenced.
    async fn make(
        &self,
        cx: &Cx<'_>,
        role: &dyn Drilling,
        (r, address): (&str, &str),
        out: &mut DrillCopyOutput,
    ) -> Result<(), StepFailure> {
        let a = role.about();
        self.check_source(cx, role).await?;
        if a.lag_of == LagOf::Source {
            self.read_lag(cx, role, address, out).await;
        }
        let tags = drill_names::tags(cx.run_id, &drill_names::owner(), cx.expires());
        cx.fenced(&format!("{} {address}", a.make_call), r).await?;
        let made = (role.make(cx.clouds, &self.shadow(), (r, address), &tags)).await?;
        out.requested_at = Some(made.asked);
        out.restore_point = made.point;
        out.operation = made.operation;
        out.restored_from = made.from;
        Ok(())
    }

    /// Reads the copy's lag where that is the RPO, then makes it writable,
    /// fenced.
    async fn finish(
        &self,
        cx: &Cx<'_>,
        role: &dyn Drilling,
        (r, address): (&str, &str),
        out: &mut DrillCopyOutput,
    ) -> Result<(), StepFailure> {
        let a = role.about();
        if a.lag_of == LagOf::Copy {
            self.read_lag(cx, role, address, out).await;
        }
        let Some(call) = a.finish_call else {
            return Ok(());
        };
        let tags = drill_names::tags(cx.run_id, &drill_names::owner(), cx.expires());
        let instance = out.instance.clone().unwrap_or_default();
        cx.fenced(&format!("{call} of {address}"), r).await?;
        (role.finish(cx.clouds, (r, address), &instance, &tags)).await?;
        out.finished_at = Some(Utc::now());
        Ok(())
    }

    /// Waits (up to [`LAG_WAIT`], within the step's budget) for a first
    /// datapoint of the lag that is the RPO, and journals it, or why there
    /// is none.
    async fn read_lag(
        &self,
        cx: &Cx<'_>,
        role: &dyn Drilling,
        copy: &str,
        out: &mut DrillCopyOutput,
    ) {
        let a = role.about();
        let (of, r) = match a.lag_of {
            LagOf::Source => (self.standby.as_str(), self.region.as_str()),
            _ => (copy, out.region.as_str()),
        };
        let what = format!("a lag datapoint of {of} ({r})");
        let s = self.shadow();
        let read =
            first_datapoint(cx, &what, || role.lag(cx.clouds, &s, copy, cx.lag_window)).await;
        match read {
            Ok(Some(reading)) => out.lag = LagRecord::read_now(&reading, None),
            Ok(None) => {
                out.lag.datapoints = Some(0);
                out.lag.note = Some(format!(
                    "no lag datapoint of {of} within {}",
                    crate::plan::duration::format_duration(LAG_WAIT)
                ));
            }
            Err(e) => {
                out.lag.note = Some(format!("the lag of {of} could not be read: {}", e.message));
            }
        }
    }

    /// What the step publishes before it acts: the copy `(r, address)`,
    /// what the kind makes for it (`instance`), what it is made from.
    fn output(
        &self,
        a: &DrillAbout,
        (r, address): (&str, &str),
        instance: String,
    ) -> DrillCopyOutput {
        let (source, source_region) = self.source(a);
        DrillCopyOutput {
            of: Some(self.of),
            copy: address.to_string(),
            instance: a.makes.map(|_| instance),
            region: r.to_string(),
            source: source.to_string(),
            source_region: Some(source_region.to_string()),
            untouched: Some(self.standby.clone()),
            ..DrillCopyOutput::default()
        }
    }

    /// Follows the provider's operation `op` making the copy until it
    /// ends; a failed one fails the step, naming it and the provider's
    /// reason.
    async fn follow(
        &self,
        cx: &Cx<'_>,
        role: &dyn Drilling,
        (r, address): (&str, &str),
        op: &str,
    ) -> Result<(), StepFailure> {
        let call = role.about().make_call;
        let what = format!("{call} operation {op} ({address}, {r})");
        let done = wait_for(cx, &what, || async {
            Ok(role.answers().stands(cx.clouds, (r, address), op).await?)
        })
        .await?;
        done.map_err(|e| {
            let hint = "the drill's cleanup deletes what it left; fix the cause (for a clone, the source's backups and point-in-time recovery), then drill again";
            StepFailure::state(format!("{what} failed: {e}"), hint, address, r)
        })
    }
}

#[async_trait]
impl Action for DrillCopy {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let Ok(role) = self.role() else {
            return Vec::new();
        };
        let (source, r) = self.source(role.about());
        let what = format!("{} {source}", self.of.table());
        vec![match role.source(cx.clouds, &self.shadow()).await {
            Ok(Ok(said)) => Finding::ok(&what, r, said),
            Ok(Err((why, hint))) => {
                Finding::blocks(&what, r, "cannot be copied", format!("{why}; {hint}"))
            }
            Err(e) => Finding::unreadable(&what, r, &e),
        }]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let role = self.role()?;
        let a = role.about();
        let ((r, address), _) = self.copy_of(role, cx.run_id);
        let current = match role.source(cx.clouds, &self.shadow()).await? {
            Ok(said) => format!("source {}: {said}", self.source(a).0),
            Err((why, _)) => why,
        };
        let existing = role.read(cx.clouds, &r, &address).await?;
        let row = |call: &str, current: String, desired: &str, change| Planned {
            call: call.into(),
            resource: address.clone(),
            region: r.clone(),
            current,
            desired: desired.into(),
            change,
        };
        let lag = row(
            a.lag_call,
            "as read then".into(),
            "lag read (the drill's RPO)",
            false,
        );
        let mut out = Vec::new();
        if a.lag_of == LagOf::Source {
            out.push(lag.clone());
        }
        let status = existing
            .as_ref()
            .map_or("absent".into(), |c| c.status.clone());
        out.push(row(
            a.make_call,
            format!("{status}; {current}"),
            a.made,
            existing.is_none(),
        ));
        if a.lag_of == LagOf::Copy {
            out.push(lag);
        }
        if let Some(call) = a.finish_call {
            out.push(row(call, "made".into(), a.finished, true));
        }
        let delete = "gone (cleanup, proven by a read)";
        out.push(row(a.delete_call, "the drill's copy".into(), delete, true));
        Ok(out)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let role = self.role()?;
        let a = role.about();
        let ((r, address), instance) = self.copy_of(role, cx.run_id);
        let at = (r.as_str(), address.as_str());
        let mut out = self.output(a, at, instance);
        let mut seen = role.read(cx.clouds, &r, &address).await?;
        if let Some(s) = &seen {
            out.already = Some(true);
            if let CopyStage::Making { operation } = &s.stage {
                out.operation.clone_from(operation);
            }
        }
        // Whether it was made (or found), the operation making it
        // followed, and the finishing call made: each once.
        let (mut made, mut followed, mut finished) = (out.already.is_some(), false, false);
        loop {
            match next(a, at, cx.run_id, seen.as_ref()) {
                Next::Refuse(why) => {
                    return Err(StepFailure::state(why, NOT_OURS_HINT, &address, &r));
                }
                Next::Make if !made => {
                    self.make(cx, role, at, &mut out).await?;
                    made = true;
                    seen = role.read(cx.clouds, &r, &address).await?;
                    continue;
                }
                Next::Finish if !finished => {
                    self.finish(cx, role, at, &mut out).await?;
                    finished = true;
                }
                Next::Done { endpoint, port } => {
                    (out.endpoint, out.port) = (endpoint, port);
                    break;
                }
                // Made, but not read yet (a listing behind its create), or
                // gone since: waited for, to the step's deadline.
                Next::Make | Next::Wait | Next::Finish => {
                    // The provider's operation making it, followed to its
                    // end once: its failure is the step's.
                    if let (Some(op), false) = (out.operation.clone(), followed) {
                        self.follow(cx, role, at, &op).await?;
                        followed = true;
                        seen = role.read(cx.clouds, &r, &address).await?;
                        continue;
                    }
                }
            }
            let what = format!("{} {address} ({r}) to be writable", a.noun);
            seen = wait_for(cx, &what, || async {
                let read = role.read(cx.clouds, &r, &address).await?;
                Ok(match next(a, at, cx.run_id, read.as_ref()) {
                    Next::Wait => None,
                    Next::Finish if finished => None,
                    Next::Make if made => None,
                    _ => Some(read),
                })
            })
            .await?;
        }
        settle(a, &mut out);
        out.to_output()
    }

    fn creates(&self, run_id: &str) -> Vec<Temp> {
        let Ok(role) = self.role() else {
            return Vec::new();
        };
        let ((region, address), _) = self.copy_of(role, run_id);
        vec![Temp::Copy {
            kind: self.of,
            region,
            address,
        }]
    }
}

#[async_trait]
impl Drilled for DrillCopy {
    /// The drill copies in the kind's listing, by their drill tags (or,
    /// for a kind whose copies carry none, by their names), named as this
    /// step names its copy for that drill.
    async fn leftovers(&self, look: &Look<'_>) -> Vec<Left> {
        let Ok(role) = self.role() else {
            return Vec::new();
        };
        let s = self.shadow();
        let listed = look.copies(role, &s).await;
        let tagged = role.about().tagged;
        let each = listed.iter().map(|c| {
            let drill = match tagged {
                true => Drill::of_tags(&c.tags),
                false => copy_short(&c.name).and_then(Drill::of_short),
            };
            let temp = Temp::Copy {
                kind: self.of,
                region: c.region.clone(),
                address: c.address.clone(),
            };
            (drill, c.address.as_str(), temp)
        });
        keep(each, |address, run| self.copy_of(role, run).0.1 == address)
    }
}

/// Waits (up to [`LAG_WAIT`], within the step's budget) for a reading of
/// a lag with at least one datapoint, read by `read`; `what` names it for
/// the live view when the first look finds none. `Ok(None)`: none came.
pub async fn first_datapoint<F, Fut>(
    cx: &Cx<'_>,
    what: &str,
    read: F,
) -> Result<Option<LagReading>, CloudError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<LagReading, CloudError>>,
{
    let until = (Instant::now() + LAG_WAIT).min(cx.deadline);
    super::poll_telling((what, cx.waiting), cx.poll, until, || {
        let read = &read;
        async move { Ok::<_, CloudError>(Some(read().await?).filter(|r| r.datapoints > 0)) }
    })
    .await
}

/// Deletes a drill's copy `(kind, region, address)` through its kind's
/// role and reads until it is gone. `expected_run`: the drill that must
/// have tagged it (`None`: any drill, for a sweep). A copy that is no
/// drill's (no drill tag; for a kind that tags none, no drill's name), or
/// another drill's when one is expected, is never touched.
pub async fn remove(
    clouds: &Clouds,
    (kind, region, address): (ResourceKind, &str, &str),
    expected_run: Option<&str>,
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    let Some(role) = kind.drilling() else {
        let why = format!(
            "{} makes no drill copy: {address} left as it is",
            kind.table()
        );
        return Ok((CleanupResult::Failed, why));
    };
    let a = role.about();
    let Some(seen) = role.read(clouds, region, address).await? else {
        return Ok((
            CleanupResult::Absent,
            format!("{} finds no {address} in {region}", a.read_call),
        ));
    };
    if let Some(refused) = not_ours(a, address, &seen, expected_run) {
        return Ok((CleanupResult::NotOurs, refused));
    }
    match role
        .delete(clouds, (region, address), poll, deadline)
        .await?
    {
        Deleted::Asked => {}
        Deleted::Gone(why) => return Ok((CleanupResult::Absent, why)),
        Deleted::Failed(why) => return Ok((CleanupResult::Failed, why)),
    }
    // The status of the copy at the last look that still found it.
    let last = Mutex::new(String::new());
    let gone = poll_until(&format!("{address} to be deleted"), poll, deadline, || {
        let last = &last;
        async move {
            Ok(match role.read(clouds, region, address).await? {
                None => Some(()),
                Some(s) => {
                    *last.lock().unwrap_or_else(|p| p.into_inner()) = s.status;
                    None
                }
            })
        }
    })
    .await?;
    Ok(match gone {
        Some(()) => (
            CleanupResult::Removed,
            format!(
                "{}; {} then found no {address} in {region}",
                a.deleted, a.read_call
            ),
        ),
        None => (
            CleanupResult::Failed,
            format!(
                "deletion requested, but {address} is still there ({}); it may finish on its own",
                last.into_inner().unwrap_or_else(|p| p.into_inner())
            ),
        ),
    })
}

/// Why the copy `address` read as `seen` is not this removal's (pure): no
/// drill tag, or another drill's when `expected` names one; for a kind
/// whose copies carry no tags, the same by its name: no drill's name, or
/// another drill's short id.
fn not_ours(
    about: &DrillAbout,
    address: &str,
    seen: &CopySeen,
    expected: Option<&str>,
) -> Option<String> {
    if !about.tagged {
        let name = address.rsplit_once('/').map_or(address, |(_, n)| n);
        return match (copy_short(name), expected) {
            (None, _) => Some(format!(
                "{address} is no drill's name: never deleted by a cleanup"
            )),
            (Some(short), Some(run)) if short != drill_names::short_id(run) => {
                Some(format!("{address} belongs to drill {short}"))
            }
            _ => None,
        };
    }
    match (seen.tags.get(drill_names::RUN_TAG), expected) {
        (None, _) => Some(format!(
            "{address} carries no {} tag: not a drill's",
            drill_names::RUN_TAG
        )),
        (Some(tagged), Some(run)) if tagged != run => {
            Some(format!("{address} belongs to drill {tagged}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
