//! `switch-global`: move an Aurora global database's writer to the
//! target region's member cluster.
//!
//! There are three ways, and the step chooses from what it reads in the
//! target region (never in the home region, which may be down):
//!
//! - **switchover** (`SwitchoverGlobalCluster`) when the run is planned (a
//!   failback, a switchover drill, `failover --planned`): AWS catches the
//!   secondaries up first, so nothing is lost, and the old writer becomes
//!   a secondary. RPO 0 by the operation's design.
//! - **managed failover** (`FailoverGlobalCluster` with `AllowDataLoss`)
//!   when it is not: the target writes at once with what it has. What it
//!   may lose is the lag the RPO gate read and allowed; AWS keeps a
//!   snapshot of the old writer's volume when its region comes back.
//! - **detach** (`RemoveFromGlobalCluster` of the target's member, asked
//!   in the target region) when the managed failover is refused (the
//!   global cluster's state, an engine that does not support it). A call
//!   that goes unanswered fails the step, to be tried again: an
//!   irreversible detach is never made on a blip. The target
//!   becomes a standalone, writable cluster, and the global cluster must be
//!   rebuilt (`drctl reprotect`); the run and the report say so.
//!
//! The choice is pure ([`decide`]): the facts read, in; a decision with its
//! reason, out. The reason is journaled with the outputs. Every write is
//! fenced at the wire, and the step is idempotent: a re-run (after a crash,
//! from another machine) reads the global cluster again and finds the move
//! under way (waits), done (the target writes, or is detached), or not
//! started (decides again).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::copies::LagRecord;
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{CloudError, DbCluster, GlobalCluster, GlobalMember, GlobalMove};
use crate::steps::graph::{Builder, Phase, RunMode};

/// Move one global database's writer to its member in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchGlobal {
    /// Plan resource id.
    pub resource: String,
    /// The global cluster.
    pub global: String,
    /// The member cluster in the target region.
    pub cluster: String,
    /// Target region.
    pub region: String,
    /// A planned move (switchover, no data lost) rather than a failover.
    pub planned: bool,
}

/// How the writer moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GlobalPath {
    /// `SwitchoverGlobalCluster`: planned, nothing lost.
    Switchover,
    /// `FailoverGlobalCluster` with data loss allowed.
    Failover,
    /// `RemoveFromGlobalCluster`: the target detached and standalone.
    Detach,
    /// Nothing to do: the target already writes.
    Already,
}

impl GlobalPath {
    /// The call it makes (`None`: none).
    pub fn call(self) -> Option<&'static str> {
        match self {
            Self::Switchover => Some("rds:SwitchoverGlobalCluster"),
            Self::Failover => Some("rds:FailoverGlobalCluster"),
            Self::Detach => Some("rds:RemoveFromGlobalCluster"),
            Self::Already => None,
        }
    }
}

/// What the step does, and why ([`decide`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing: the target writes already (`path` says how it came to).
    Done {
        /// [`GlobalPath::Already`], or [`GlobalPath::Detach`] for a target
        /// found standalone (a detach that happened before).
        path: GlobalPath,
        /// Why.
        why: String,
    },
    /// A move toward the target is under way: wait for it.
    Wait {
        /// Why.
        why: String,
    },
    /// Make the move.
    Act {
        /// Which.
        path: GlobalPath,
        /// Why.
        why: String,
    },
    /// Refuse: the world is not in a state the step can work from.
    Refuse {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
    },
}

/// The global cluster as read in the target region.
#[derive(Debug, Clone)]
pub enum GlobalRead {
    /// Read (`None`: it does not exist).
    Read(Option<GlobalCluster>),
    /// The read was refused (denied, a bad request): the API answers.
    Refused(String),
    /// The API did not answer (unreachable, timed out, 5xx).
    Unanswered(String),
}

impl GlobalRead {
    /// The read's result, sorted by what a failover can do after it.
    pub fn of(r: Result<Option<GlobalCluster>, CloudError>) -> Self {
        match r {
            Ok(g) => Self::Read(g),
            Err(e) if e.kind.is_transient() => Self::Unanswered(e.summary()),
            Err(e) => Self::Refused(e.summary()),
        }
    }
}

/// Decides what to do from the facts read: pure.
pub fn decide(step: &SwitchGlobal, target: Option<&DbCluster>, global: &GlobalRead) -> Decision {
    let (g_id, c_id, r) = (&step.global, &step.cluster, &step.region);
    let Some(target) = target else {
        return Decision::Refuse {
            message: format!("cluster {c_id} does not exist in {r}"),
            hint: format!(
                "fix the member's id in the plan, or add a secondary cluster of {g_id} in {r}"
            ),
        };
    };
    let read = match global {
        GlobalRead::Read(g) => g.as_ref(),
        GlobalRead::Refused(e) => {
            return Decision::Refuse {
                message: format!("global cluster {g_id} could not be read in {r}: {e}"),
                hint: "check the credentials' rds:DescribeGlobalClusters permission (terraform/iam.tf)".into(),
            };
        }
        GlobalRead::Unanswered(e) => return decide_unanswered(step, target, e),
    };
    let member = read.and_then(|g| g.member(r, c_id));
    match (read, member) {
        (_, None) if target.global_cluster.is_none() => Decision::Done {
            path: GlobalPath::Detach,
            why: format!("{c_id} is standalone (detached from {g_id} before)"),
        },
        (None, _) => Decision::Refuse {
            message: format!(
                "global cluster {g_id} does not exist (asked in {r}), yet {c_id} names it"
            ),
            hint: "fix the global cluster's id in the plan; a cluster being detached names it for a moment: resume in a minute".into(),
        },
        (Some(_), None) => Decision::Refuse {
            message: format!(
                "cluster {c_id} in {r} is not a member of global cluster {g_id}, yet reports one ({})",
                target.global_cluster.as_deref().unwrap_or_default()
            ),
            hint: "a detach may be under way: resume in a minute; otherwise fix the plan".into(),
        },
        (Some(g), Some(m)) => decide_member(step, g, m),
    }
}

/// What to do when the global cluster's API did not answer the read
/// (`e`) in the target region (pure): a target found standalone was
/// detached before; a planned move cannot go on without the API; an
/// unplanned one tries the managed failover (a detach if it is refused).
fn decide_unanswered(step: &SwitchGlobal, target: &DbCluster, e: &str) -> Decision {
    let (g_id, c_id, r) = (&step.global, &step.cluster, &step.region);
    if target.global_cluster.is_none() {
        return Decision::Done {
            path: GlobalPath::Detach,
            why: format!(
                "{c_id} is standalone (detached from {g_id} before; the global cluster's API does not answer: {e})"
            ),
        };
    }
    if step.planned {
        return Decision::Refuse {
            message: format!(
                "a planned switchover of {g_id} needs the global cluster's API, which does not answer in {r}: {e}"
            ),
            hint: "fail over without --planned (a managed failover or a detach, within the tier's RPO), or retry when the API answers".into(),
        };
    }
    Decision::Act {
        path: GlobalPath::Failover,
        why: format!(
            "an unplanned failover: the global cluster's API did not answer a read in {r} ({e}); trying the managed failover of {g_id} to {c_id} (a detach if it is refused)"
        ),
    }
}

/// What to do when the target is member `m` of global cluster `g` (pure):
/// wait for a move to it under way, refuse a move elsewhere, nothing when
/// it writes already, else a switchover (planned) or a managed failover.
fn decide_member(step: &SwitchGlobal, g: &GlobalCluster, m: &GlobalMember) -> Decision {
    let (g_id, c_id, r) = (&step.global, &step.cluster, &step.region);
    if let Some(mv) = &g.moving {
        return decide_moving(step, mv, m);
    }
    if m.writer {
        return Decision::Done {
            path: GlobalPath::Already,
            why: format!("{c_id} in {r} already writes for {g_id}"),
        };
    }
    if step.planned {
        Decision::Act {
            path: GlobalPath::Switchover,
            why: format!(
                "a planned move: switchover of {g_id} to {c_id} (the secondaries catch up first; nothing is lost)"
            ),
        }
    } else {
        Decision::Act {
            path: GlobalPath::Failover,
            why: format!(
                "an unplanned failover: {g_id} fails over to {c_id} with data loss allowed (within the lag the RPO gate allowed)"
            ),
        }
    }
}

/// What to do while the global cluster moves its writer (`mv`) (pure):
/// wait when it moves to the target member `m`, refuse when elsewhere.
fn decide_moving(step: &SwitchGlobal, mv: &GlobalMove, m: &GlobalMember) -> Decision {
    let (g_id, c_id) = (&step.global, &step.cluster);
    if mv.to.as_deref() == Some(m.arn.as_str()) {
        Decision::Wait {
            why: format!(
                "{g_id} is already moving its writer to {c_id} ({}{})",
                mv.status,
                if mv.data_loss_allowed {
                    ", data loss allowed"
                } else {
                    ""
                }
            ),
        }
    } else {
        Decision::Refuse {
            message: format!(
                "global cluster {g_id} is moving its writer to {} ({}), not to {c_id}",
                mv.to.as_deref().unwrap_or("?"),
                mv.status
            ),
            hint: "another operator or AWS is moving it: wait until it is done, then look at `drctl status` before failing over again".into(),
        }
    }
}

/// What a global database's move publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SwitchGlobalOutput {
    /// The member cluster that writes now.
    pub cluster: String,
    /// Its region.
    pub region: String,
    /// The global cluster.
    pub global: String,
    /// How the writer moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<GlobalPath>,
    /// Why that way (each path tried, in order).
    pub why: Vec<String>,
    /// The writer before the move (ARN), when the global cluster said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_writer: Option<String>,
    /// The target's lag right before the move (the RPO of a failover or
    /// a detach).
    #[serde(flatten)]
    pub lag: LagRecord,
    /// When the move was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_at: Option<DateTime<Utc>>,
    /// The member's writer endpoint (what a record that follows it names).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The global writer endpoint, which AWS moves with the writer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_endpoint: Option<String>,
    /// Set after a detach: the global cluster must be rebuilt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebuild_needed: bool,
    /// What people must know (the unplanned failover's snapshot).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl StepOutput for SwitchGlobalOutput {
    const KIND: KindName = KindName::SwitchGlobal;
}

/// Part of the recovery, irreversible, and where the RPO is read.
pub const TRAITS: Traits = Traits {
    warnings: Some(|v| {
        SwitchGlobalOutput::read(v)
            .map(|o| o.warnings)
            .unwrap_or_default()
    }),
    irreversible: Some(
        "a failover or a detach cannot be undone: failing back is a switchover after drctl reprotect rebuilds the secondaries",
    ),
    endpoint: Some(|v| SwitchGlobalOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: Cost {
        calls: &[
            "rds:DescribeDBClusters",
            "rds:DescribeGlobalClusters",
            "cloudwatch:GetMetricData",
            "rds:FailoverGlobalCluster",
        ],
        waits: &["rds:FailoverGlobalCluster"],
        polls: Some("rds:DescribeGlobalClusters"),
    },
    ..Traits::RECOVERY
};

/// The RPO of the move: 0 by design for a switchover; the lag read right
/// before a failover or a detach; unknown otherwise.
fn rpo(
    resource: &str,
    out: Option<&Value>,
    gate_lag: Option<f64>,
    _origin: DateTime<Utc>,
    _origin_label: &str,
) -> (Option<f64>, String) {
    let Some(out) = out.map(|o| SwitchGlobalOutput::read(o).unwrap_or_default()) else {
        return (
            None,
            format!("{resource}: unknown (the move has not completed)"),
        );
    };
    let lag = out.lag.seconds();
    let n = out.lag.count();
    match (out.path, lag) {
        (Some(GlobalPath::Switchover), _) => (
            Some(0.0),
            format!(
                "{resource}: 0 by design of SwitchoverGlobalCluster (the secondaries catch up before the writer moves; not measured{})",
                lag.map(|l| format!("; AuroraGlobalDBRPOLag before it: {l:.3} s"))
                    .unwrap_or_default()
            ),
        ),
        (Some(p @ (GlobalPath::Failover | GlobalPath::Detach)), Some(l)) => (
            Some(l),
            format!(
                "{resource}: AuroraGlobalDBRPOLag read just before the {} ({n} datapoints)",
                if p == GlobalPath::Failover {
                    "managed failover"
                } else {
                    "detach"
                }
            ),
        ),
        (_, Some(l)) => (
            Some(l),
            format!(
                "{resource}: AuroraGlobalDBRPOLag read when the step found the move done ({n} datapoints)"
            ),
        ),
        (_, None) => match gate_lag {
            Some(l) => (
                Some(l),
                format!(
                    "{resource}: AuroraGlobalDBRPOLag recorded by the RPO gate (no reading at the move)"
                ),
            ),
            None => (
                None,
                format!("{resource}: unknown (no AuroraGlobalDBRPOLag datapoints at the move)"),
            ),
        },
    }
}

/// A failover moves every global database of the plan; a planned one
/// (failback, switchover drill, `--planned`) switches over.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let planned = matches!(
        b.mode,
        RunMode::Failover { planned: true } | RunMode::Drill { .. }
    );
    let steps: Vec<SwitchGlobal> = (b.plan.spec.global_database.iter())
        .filter_map(|d| {
            Some(SwitchGlobal {
                resource: d.id.clone(),
                global: d.global_cluster.clone(),
                cluster: d.regions.get(b.target)?.clone(),
                region: b.target.to_string(),
                planned,
            })
        })
        .collect();
    for s in steps {
        let description = if s.planned {
            format!(
                "switch global cluster {} over to {} in {} (planned: nothing lost)",
                s.global, s.cluster, s.region
            )
        } else {
            format!(
                "fail global cluster {} over to {} in {} (data loss allowed within the RPO; a detach if the global API cannot be used; cannot be undone)",
                s.global, s.cluster, s.region
            )
        };
        b.add(
            StepKind::SwitchGlobal(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::GlobalDatabase),
            vec![s.resource],
            description,
        );
    }
}

impl SwitchGlobal {
    /// Reads the target member and the global cluster (in the target).
    async fn read(&self, cx: &Cx<'_>) -> Result<(Option<DbCluster>, GlobalRead), StepFailure> {
        let aurora = &cx.clouds.aurora;
        let target = aurora.describe_cluster(&self.region, &self.cluster).await?;
        let global = GlobalRead::of(aurora.describe_global(&self.region, &self.global).await);
        Ok((target, global))
    }

    /// The target's lag right before the move: the RPO gate's reading of
    /// moments ago on this run's path while it is fresh, else a read now
    /// (a lag that cannot be read is unknown, never zero).
    async fn record_lag(&self, cx: &Cx<'_>, out: &mut SwitchGlobalOutput) {
        let (t, id) = (&self.region, &self.cluster);
        let read = || cx.clouds.metrics.cluster_lag(t, id, cx.lag_window);
        match LagRecord::before_move(cx, &self.resource, "switch-global", read).await {
            Ok(lag) => out.lag = lag,
            Err(e) => out.warnings.push(format!(
                "the lag of {id} in {t} could not be read before the move: the RPO is unknown ({})",
                e.summary()
            )),
        }
    }

    /// Makes the move `path`; an unplanned failover the API refuses (or
    /// does not answer) falls back to a detach, said in `why`.
    async fn act(
        &self,
        cx: &Cx<'_>,
        path: GlobalPath,
        target: &DbCluster,
        out: &mut SwitchGlobalOutput,
    ) -> Result<GlobalPath, StepFailure> {
        let (t, g, arn) = (self.region.as_str(), self.global.as_str(), &target.arn);
        let aurora = &cx.clouds.aurora;
        out.moved_at = Some(Utc::now());
        match path {
            GlobalPath::Switchover => {
                cx.fenced(&format!("rds:SwitchoverGlobalCluster of {g}"), t)
                    .await?;
                aurora.switchover_global(t, g, arn).await?;
                Ok(path)
            }
            GlobalPath::Failover => {
                cx.fenced(&format!("rds:FailoverGlobalCluster of {g}"), t)
                    .await?;
                match aurora.failover_global(t, g, arn).await {
                    Ok(()) => Ok(path),
                    // Only a refusal (the global cluster's state, an
                    // operation it does not support) detaches: a call that
                    // went unanswered fails the step, to be tried again,
                    // never an irreversible detach on a blip.
                    Err(e) if e.kind != crate::cloud::ErrorKind::Client => Err(e.into()),
                    Err(e) => {
                        out.why.push(format!(
                            "the managed failover was refused ({}): detaching {} to write on its own",
                            e.summary(),
                            self.cluster
                        ));
                        self.detach(cx, target).await?;
                        Ok(GlobalPath::Detach)
                    }
                }
            }
            GlobalPath::Detach => {
                self.detach(cx, target).await?;
                Ok(path)
            }
            GlobalPath::Already => Ok(path),
        }
    }

    async fn detach(&self, cx: &Cx<'_>, target: &DbCluster) -> Result<(), StepFailure> {
        let (t, g) = (self.region.as_str(), self.global.as_str());
        cx.fenced(
            &format!("rds:RemoveFromGlobalCluster of {}", self.cluster),
            t,
        )
        .await?;
        cx.clouds.aurora.detach_cluster(t, g, &target.arn).await?;
        Ok(())
    }

    /// Waits until the target writes: the global cluster's writer (no move
    /// under way), or standalone after a detach; and available.
    async fn until_writer(
        &self,
        cx: &Cx<'_>,
        path: GlobalPath,
    ) -> Result<(DbCluster, Option<GlobalCluster>), StepFailure> {
        let (t, id) = (self.region.as_str(), self.cluster.as_str());
        let what = match path {
            GlobalPath::Detach => format!("{id} ({t}) to be detached, standalone and available"),
            _ => format!(
                "{id} ({t}) to be the writer of {} and available",
                self.global
            ),
        };
        wait_for(cx, &what, || async {
            let Some(c) = cx.clouds.aurora.describe_cluster(t, id).await? else {
                return Ok(None);
            };
            if !c.is_available() {
                return Ok(None);
            }
            if path == GlobalPath::Detach {
                return Ok(c.global_cluster.is_none().then_some((c, None)));
            }
            let g = cx.clouds.aurora.describe_global(t, &self.global).await?;
            let writes = g
                .as_ref()
                .is_some_and(|g| g.moving.is_none() && g.member(t, id).is_some_and(|m| m.writer));
            Ok(writes.then_some((c, g)))
        })
        .await
    }
}

#[async_trait]
impl super::Writes for SwitchGlobal {
    async fn endpoint_now(&self, clouds: &crate::cloud::Clouds, _: &str) -> super::EndpointNow {
        let (r, id) = (&self.region, &self.cluster);
        let read = clouds.aurora.describe_cluster(r, id).await;
        let found = read.map(|c| c.map(|c| (c.endpoint, None)));
        super::EndpointNow::of(id, r, found)
    }
}

#[async_trait]
impl Action for SwitchGlobal {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("aurora cluster {}", self.cluster);
        let (t, id) = (self.region.as_str(), self.cluster.as_str());
        match cx.clouds.aurora.describe_cluster(t, id).await {
            Ok(None) => vec![Finding::missing(&what, t)],
            Ok(Some(c)) if !c.is_available() => vec![Finding::blocks(
                &what,
                t,
                c.status.clone(),
                format!("cluster {id} in {t} is `{}`, not available", c.status),
            )],
            Ok(Some(c)) => vec![Finding::ok(
                &what,
                t,
                match &c.global_cluster {
                    Some(g) => format!("available, member of {g}"),
                    None => "available, standalone".to_string(),
                },
            )],
            Err(e) => vec![Finding::unreadable(&what, t, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let (target, global) = self.read(cx).await?;
        let current = match (&target, &global) {
            (None, _) => "missing".to_string(),
            (Some(c), GlobalRead::Read(Some(g))) => match g.member(&self.region, &c.id) {
                Some(m) if m.writer => format!("writer of {} ({})", g.id, c.status),
                Some(_) => format!(
                    "secondary of {} (writer {}) ({})",
                    g.id,
                    g.writer().map(|w| w.id.as_str()).unwrap_or("?"),
                    c.status
                ),
                None => format!("not a member of {} ({})", g.id, c.status),
            },
            (Some(c), _) => format!(
                "{} ({})",
                c.global_cluster.as_deref().unwrap_or("standalone"),
                c.status
            ),
        };
        let d = decide(self, target.as_ref(), &global);
        let (call, desired, change) = match &d {
            Decision::Act { path, why } => (path.call().unwrap_or("-"), why.clone(), true),
            Decision::Wait { why } => ("rds:DescribeGlobalClusters", why.clone(), false),
            Decision::Done { why, .. } => ("-", why.clone(), false),
            Decision::Refuse { message, .. } => ("-", format!("refused: {message}"), false),
        };
        Ok(vec![Planned {
            call: call.into(),
            resource: self.cluster.clone(),
            region: self.region.clone(),
            current,
            desired,
            change,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (target, global) = self.read(cx).await?;
        let mut out = SwitchGlobalOutput {
            cluster: self.cluster.clone(),
            region: self.region.clone(),
            global: self.global.clone(),
            ..SwitchGlobalOutput::default()
        };
        if let GlobalRead::Read(Some(g)) = &global {
            out.old_writer = g.writer().map(|w| w.arn.clone());
        }
        let decision = decide(self, target.as_ref(), &global);
        tracing::info!(cluster = %self.cluster, region = %self.region, ?decision, "switch-global");
        let path = match decision {
            Decision::Refuse { message, hint } => {
                return Err(StepFailure::state(
                    message,
                    hint,
                    &self.cluster,
                    &self.region,
                ));
            }
            Decision::Done { path, why } => {
                out.why.push(why);
                path
            }
            Decision::Wait { why } => {
                out.why.push(why);
                self.record_lag(cx, &mut out).await;
                match &global {
                    GlobalRead::Read(Some(g))
                        if g.moving.as_ref().is_some_and(|m| !m.data_loss_allowed) =>
                    {
                        GlobalPath::Switchover
                    }
                    _ => GlobalPath::Failover,
                }
            }
            Decision::Act { path, why } => {
                out.why.push(why);
                self.record_lag(cx, &mut out).await;
                let Some(target) = &target else {
                    return Err(StepFailure::state(
                        format!("cluster {} does not exist in {}", self.cluster, self.region),
                        "fix the member's id in the plan",
                        &self.cluster,
                        &self.region,
                    ));
                };
                self.act(cx, path, target, &mut out).await?
            }
        };
        out.path = Some(path);
        let (cluster, g) = self.until_writer(cx, path).await?;
        out.endpoint = cluster.endpoint.clone();
        out.global_endpoint = g.and_then(|g| g.endpoint);
        match path {
            GlobalPath::Detach => {
                out.rebuild_needed = true;
                out.warnings.push(format!(
                    "{} in {} was detached from {} and writes on its own: the global cluster must be rebuilt toward the other regions (drctl reprotect)",
                    self.cluster, self.region, self.global
                ));
            }
            GlobalPath::Failover => out.warnings.push(format!(
                "after an unplanned failover AWS keeps a snapshot of the old writer's volume (rds:unplanned-global-failover-...) in its region when it comes back; it expires with that cluster's backup retention: copy it to keep what never replicated (drctl reprotect records its name){}",
                out.old_writer
                    .as_deref()
                    .map(|w| format!(" (old writer {w})"))
                    .unwrap_or_default()
            )),
            GlobalPath::Switchover | GlobalPath::Already => {}
        }
        out.to_output()
    }
}

#[cfg(test)]
mod tests;
