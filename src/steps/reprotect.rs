//! `reprotect`: after a failover, make every other region's copy of a
//! data resource follow the new primary again, through its kind's data
//! role ([`Reprotecting`]): RDS read replicas made again (an old primary
//! renamed out of the way, never deleted); an Aurora global database's
//! members its secondaries again (rebuilt after a detach); Cloud SQL's
//! former primary waited for until it rejoins, and a DR pair's DR replica
//! designated.
//!
//! # Why one step, and why a loop
//!
//! Each kind's reprotection was a step kind of its own (`reprotect` for
//! RDS alone, `rebuild-global` and `reprotect-sql`, the last two retired),
//! each with its own loop, fences and waits. Here they are written once,
//! as a reconciler: the kind reads the cloud and says where the resource
//! stands (pure in its module); the step makes the one move asked for,
//! fenced, then reads again, until the copies follow the primary, a
//! person must act (refused, naming the fix), or the step's time is out.
//! So for every kind:
//! - every write is fenced, and made once per reading that asks for it: a
//!   move asked for again is waited on until the cloud shows it (a rename,
//!   a create that is not listed yet), and refused once the operation it
//!   answered is done;
//! - a re-run after a crash picks up where the last one stopped: it reads
//!   before it acts, and a copy parked under this run's name is found;
//! - the output says every move made, every copy renamed out of the way,
//!   what the provider kept of a former primary, and what people must do.
//!
//! Unlike a failover, a reprotection needs the regions it protects: that
//! is what it writes to (preflight refuses a region that does not answer).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::plan::kinds::reprotecting::{Guard, Guarded, Move, Reprotecting, Standing};
use crate::plan::kinds::{Shown, each};
use crate::plan::spec::ResourceKind;
use crate::steps::graph::{Builder, RunMode};

/// Reprotect one data resource from its primary in the active region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reprotect {
    /// Plan resource id.
    pub resource: String,
    /// Its kind, whose data role reprotects.
    pub of: ResourceKind,
    /// The primary and the copies it protects.
    #[serde(flatten)]
    pub guarded: Guarded,
}

/// One write a reprotection made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Moved {
    /// The provider's call.
    pub call: String,
    /// What it changed.
    pub resource: String,
    /// Its region.
    pub region: String,
    /// What it made of it.
    pub says: String,
    /// When it was sent.
    pub at: Option<DateTime<Utc>>,
    /// The provider's operation it answered, followed to done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// What the call was sent with, as the kind keeps it (a new RDS
    /// replica's placement: class, network, key, zones), for evidence.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub sent: Value,
}

impl Moved {
    fn is(&self, m: &Move) -> bool {
        (self.call == m.call && self.resource == m.resource)
            && (self.region == m.region && self.says == m.says)
    }
}

/// What a reprotection publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReprotectOutput {
    /// The resource's kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of: Option<ResourceKind>,
    /// The primary (or writer), as its kind addresses it.
    pub primary: String,
    /// Its region.
    pub active: String,
    /// Every other region's copy, following it.
    pub protected: Vec<Guard>,
    /// The designated DR replica, for a DR pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_replica: Option<String>,
    /// Set when every copy followed the primary already: nothing written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_protected: bool,
    /// Every write made, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<Moved>,
    /// Operations found under way and followed to done (a resumed run's,
    /// or one whose answer was lost): sent before, not again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub followed: Vec<String>,
    /// Copies renamed out of the way, data kept: `region/id -> new id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<String>,
    /// What the provider kept of a former primary (an Aurora unplanned
    /// failover's snapshot): `region/id`, evidence of what never
    /// replicated.
    #[serde(
        default,
        alias = "failover_snapshots",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub kept: Vec<String>,
    /// What people must know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl StepOutput for ReprotectOutput {
    const KIND: KindName = KindName::Reprotect;
}

impl ReprotectOutput {
    /// Move `m`, when it was made already.
    fn made(&self, m: &Move) -> Option<&Moved> {
        self.moves.iter().find(|x| x.is(m))
    }

    /// Whether operation `op` was followed or answered by a move already.
    fn knows(&self, op: &str) -> bool {
        self.followed.iter().any(|f| f == op)
            || (self.moves.iter()).any(|m| m.operation.as_deref() == Some(op))
    }

    /// What `s` waits for, when it is a wait: a wait the kind says; a move
    /// made already that the cloud does not show yet (a rename settling, a
    /// create not listed yet), never sent twice; an operation followed to
    /// done that a listing still shows running. A move made whose
    /// operation is done is no wait: it is refused.
    fn waits_on(&self, s: &Standing) -> Option<String> {
        match s {
            Standing::Wait(why) => Some(why.clone()),
            Standing::Act(m) => (self.made(m)?.operation.is_none())
                .then(|| format!("{} ({}) to show: {}", m.resource, m.region, m.says)),
            Standing::Follow { operation, .. } => (self.knows(operation))
                .then(|| format!("operation {operation} to be listed as done")),
            Standing::Protected { .. } | Standing::Refuse { .. } => None,
        }
    }
}

/// Follows a recovery; not itself undone. Its cost is its kind's role's
/// ([`cost_of`]); its warnings are the output's (the retired
/// `rebuild-global` and `reprotect-sql` read the same way).
pub const TRAITS: Traits = Traits {
    warnings: Some(|v| {
        ReprotectOutput::read(v)
            .map(|o| o.warnings)
            .unwrap_or_default()
    }),
    ..Traits::RECOVERY
};

/// A reprotection of a resource of kind `of`: its role's calls.
pub fn cost_of(of: ResourceKind) -> Cost {
    (of.reprotecting()).map_or(TRAITS.time, |r| {
        let a = r.about();
        Cost::of_role(a.calls, a.waits, a.polls)
    })
}

/// A reprotection protects every data resource whose kind's role
/// reprotects and that is kept in sync by replication (one restored from
/// backups keeps no replicas), from its copy in the target.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode != RunMode::Reprotect {
        return;
    }
    let mut steps = Vec::new();
    for r in each(&b.plan.spec) {
        let (Shown::Data(copies), Some(role)) = (r.shown(), r.kind().reprotecting()) else {
            continue;
        };
        let (Some(_), Some(primary)) = (copies.rpo_source(), copies.copy_at(b.target)) else {
            continue;
        };
        let others: Vec<(String, String)> = (b.plan.regions().iter())
            .filter(|region| *region != b.target)
            .filter_map(|region| copies.copy_at(region))
            .collect();
        if others.is_empty() {
            continue;
        }
        let description = (role.about().describe)
            .replace("{primary}", &primary.1)
            .replace("{active}", &primary.0);
        let keys = (others.iter())
            .filter_map(|(region, _)| {
                let key = copies.placement(region).place.kms_key_id?;
                Some((region.clone(), key))
            })
            .collect();
        let guarded = Guarded {
            primary,
            others,
            dr: copies.dr_replica(),
            keys,
        };
        let step = Reprotect {
            resource: r.id().to_string(),
            of: r.kind(),
            guarded,
        };
        steps.push((step, description));
    }
    b.add_each(steps, StepKind::Reprotect, |s| (s.resource.clone(), s.of));
}

/// The step's failure where only a person can go on: why, the fix, and
/// the resource and region it names.
fn refused((why, hint): (String, String), (resource, region): (&str, &str)) -> StepFailure {
    StepFailure::state(why, hint, resource, region)
}

impl Reprotect {
    fn role(&self) -> Result<&'static dyn Reprotecting, StepFailure> {
        self.of.reprotecting().ok_or_else(|| {
            StepFailure::state(
                format!(
                    "[[{}]] resources are not reprotected by drctl",
                    self.of.table()
                ),
                "protect them by hand",
                &self.resource,
                &self.guarded.primary.0,
            )
        })
    }

    /// Reads where the reprotection stands, the moves `made` so far said
    /// to the kind (`reprotecting::Made`).
    async fn read(
        &self,
        cx: &Cx<'_>,
        role: &dyn Reprotecting,
        out: &ReprotectOutput,
    ) -> Result<Standing, StepFailure> {
        let made = |m: &Move| out.made(m).is_some();
        Ok(role
            .standing(cx.clouds, &self.guarded, cx.run_id, &made)
            .await?)
    }

    /// Reads until the reprotection stands otherwise than waiting
    /// ([`ReprotectOutput::waits_on`]).
    async fn wait(
        &self,
        cx: &Cx<'_>,
        role: &dyn Reprotecting,
        what: &str,
        out: &ReprotectOutput,
    ) -> Result<Standing, StepFailure> {
        tracing::info!(resource = %self.resource, "waiting for {what}");
        wait_for(cx, what, || async {
            let s = self.read(cx, role, out).await?;
            Ok(out.waits_on(&s).is_none().then_some(s))
        })
        .await
    }

    /// Follows operation `op` (`what` it does, on `resource` in `region`)
    /// until it is done; its failure is the step's, naming it.
    async fn follow(
        &self,
        cx: &Cx<'_>,
        role: &dyn Reprotecting,
        op: &str,
        (what, resource, region): (&str, &str, &str),
    ) -> Result<(), StepFailure> {
        let waiting = format!("operation {op} ({what}) to be done");
        let done = wait_for(cx, &waiting, || async {
            let (r, address) = &self.guarded.primary;
            Ok(role.answers().stands(cx.clouds, (r, address), op).await?)
        })
        .await?;
        done.map_err(|why| {
            let failed = format!("operation {op} ({what}) on {resource} ({region}) failed: {why}");
            let hint = "run reprotect again once its cause is fixed: the step reads first";
            refused((failed, hint.into()), (resource, region))
        })
    }

    /// Makes move `m` once, fenced, and records it.
    async fn make(
        &self,
        cx: &Cx<'_>,
        role: &dyn Reprotecting,
        m: Move,
        out: &mut ReprotectOutput,
    ) -> Result<(), StepFailure> {
        cx.fenced(
            &format!("{} of {}: {}", m.call, m.resource, m.says),
            &m.region,
        )
        .await?;
        let at = Utc::now();
        let op = role.make(cx.clouds, &self.guarded, &m).await?;
        if let Some(op) = &op {
            let what = format!("{}: {}", m.call, m.says);
            self.follow(cx, role, op, (&what, &m.resource, &m.region))
                .await?;
        }
        tracing::info!(resource = %m.resource, region = %m.region, "{}: {}", m.call, m.says);
        out.parked.extend(m.parks);
        out.warnings.extend(m.warning);
        out.moves.push(Moved {
            call: m.call,
            resource: m.resource,
            region: m.region,
            says: m.says,
            at: Some(at),
            operation: op,
            sent: m.payload,
        });
        Ok(())
    }

    /// Once protected: what the provider kept of a former primary, and
    /// the output.
    async fn protected(
        &self,
        cx: &Cx<'_>,
        role: &dyn Reprotecting,
        (copies, dr, parked): (Vec<Guard>, Option<String>, Vec<(String, String)>),
        mut out: ReprotectOutput,
    ) -> Result<Value, StepFailure> {
        // A copy renamed before a crash is said as one renamed now is.
        for (at, warning) in parked {
            if !out.parked.contains(&at) {
                out.parked.push(at);
                out.warnings.push(warning);
            }
        }
        let kept = role.kept(cx.clouds, &self.guarded, cx.run_id).await?;
        for k in kept {
            out.kept.push(k.at);
            out.warnings.push(k.warning);
        }
        out.already_protected = out.moves.is_empty() && out.followed.is_empty();
        out.protected = copies;
        out.dr_replica = dr;
        out.to_output()
    }
}

#[async_trait]
impl Action for Reprotect {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let role = match self.role() {
            Ok(r) => r,
            Err(e) => {
                let (what, region) = (&self.resource, &self.guarded.primary.0);
                return vec![Finding::blocks(
                    what,
                    region,
                    "no reprotection",
                    e.to_string(),
                )];
            }
        };
        let mut out = Vec::new();
        let mut answered = true;
        let each = std::iter::once(&self.guarded.primary).chain(&self.guarded.others);
        for (region, address) in each {
            let what = format!("{} {address}", self.of.table());
            out.push(match role.read_one(cx.clouds, region, address).await {
                Ok(state) => Finding::ok(&what, region, state),
                Err(e) => {
                    answered = false;
                    // The regions it protects are written to: they must answer.
                    let why = format!(
                        "reprotect writes to {region}, which does not answer: {}",
                        e.message
                    );
                    Finding::blocks(&what, region, "does not answer", why)
                }
            });
        }
        if answered {
            let read = self.read(cx, role, &ReprotectOutput::default()).await;
            if let Ok(Standing::Refuse {
                why,
                hint,
                resource,
                region,
            }) = read
            {
                let what = format!("{} {resource}", self.of.table());
                out.push(Finding::blocks(
                    what,
                    &region,
                    "refused",
                    format!("{why}; {hint}"),
                ));
            }
        }
        out
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let role = self.role()?;
        let (active, primary) = (&self.guarded.primary.0, &self.guarded.primary.1);
        let standing = self.read(cx, role, &ReprotectOutput::default()).await?;
        let goal = |current: String, change: bool| Planned {
            call: role.about().calls.join(", "),
            resource: primary.clone(),
            region: active.clone(),
            current,
            desired: format!("every other region's copy follows {primary}"),
            change,
        };
        Ok(match standing {
            Standing::Protected { .. } => vec![goal("protected already".into(), false)],
            Standing::Wait(why) => vec![goal(format!("waiting: {why}"), true)],
            Standing::Follow { what, .. } => {
                vec![goal(format!("under way: {what}"), true)]
            }
            Standing::Refuse { why, .. } => vec![goal(format!("refused: {why}"), false)],
            // The next move, then the goal: what follows it is read from
            // the cloud once it is made.
            Standing::Act(m) => vec![
                Planned {
                    call: m.call,
                    resource: m.resource,
                    region: m.region,
                    current: m.now,
                    desired: m.says,
                    change: true,
                },
                goal("then read again".into(), true),
            ],
        })
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        self.reconcile(cx, self.role()?).await
    }
}

impl Reprotect {
    /// Read, decide (the role's), act once, read again: until protected,
    /// refused, or out of time.
    async fn reconcile(&self, cx: &Cx<'_>, role: &dyn Reprotecting) -> Result<Value, StepFailure> {
        let mut out = ReprotectOutput {
            of: Some(self.of),
            primary: self.guarded.primary.1.clone(),
            active: self.guarded.primary.0.clone(),
            ..ReprotectOutput::default()
        };
        let mut standing = self.read(cx, role, &out).await?;
        loop {
            if let Some(what) = out.waits_on(&standing) {
                standing = self.wait(cx, role, &what, &out).await?;
                continue;
            }
            standing = match standing {
                Standing::Protected { copies, dr, parked } => {
                    return self.protected(cx, role, (copies, dr, parked), out).await;
                }
                Standing::Refuse {
                    why,
                    hint,
                    resource,
                    region,
                } => return Err(refused((why, hint), (&resource, &region))),
                Standing::Follow {
                    operation,
                    what,
                    resource,
                    region,
                } => {
                    self.follow(cx, role, &operation, (&what, &resource, &region))
                        .await?;
                    out.followed.push(operation);
                    self.read(cx, role, &out).await?
                }
                Standing::Act(m) => {
                    if let Some(op) = out.made(&m).and_then(|x| x.operation.as_ref()) {
                        let again = format!(
                            "{} of {} ({}) is done (operation {op}), yet the cloud still asks for it: {}",
                            m.call, m.resource, m.region, m.says
                        );
                        let hint = "read it (`drctl status`) and run reprotect again: the step reads first";
                        return Err(refused((again, hint.into()), (&m.resource, &m.region)));
                    }
                    self.make(cx, role, m, &mut out).await?;
                    self.read(cx, role, &out).await?
                }
                Standing::Wait(why) => self.wait(cx, role, &why, &out).await?,
            };
        }
    }
}

#[cfg(test)]
mod tests;
