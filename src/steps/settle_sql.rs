//! `settle-sql`: follow Cloud SQL's side of a move on the old primary.
//!
//! Cloud SQL finishes a move on the old primary in an operation of its own:
//! a promotion's effect there (`RECONFIGURE_OLD_PRIMARY`, which after a DR
//! failover makes the former primary a replica of the new one) runs
//! asynchronously once the replica's `PROMOTE_REPLICA` is done, and a
//! switchover has its part there (`SWITCHOVER_TO_REPLICA`). `promote`
//! ends at the replica's operation, so a run would call itself done while
//! the old side is still being changed, or has failed.
//!
//! This step follows that operation, beside the recovery: it comes after
//! the traffic moved, among the verify steps and scheduled after those
//! that end the RTO (it is last in compile order), so the RTO never waits
//! on it; the evidence step does (it keeps what the step found), bounded
//! by the resource's `old_primary_wait`. The old primary lives in
//! the region failed away from, which may not answer: then the step does
//! not fail the run, it ends **pending**, named in the run's warnings,
//! report and notifications, and the run ends `pending`, which `drctl runs
//! resume` picks up (this step runs again; [`Action::settled`]) and
//! `drctl reprotect` waits for. A failed operation is said the same way,
//! with Cloud SQL's error; reprotect refuses until it is dealt with.
//!
//! What to follow is the plan's: the old primary is the plan's instance
//! that `promote` found the target replicating from (a name the plan
//! does not have is not followed), and the operation is the newest of the
//! move's kind on it started since the promotion. The decision over what
//! is read is pure ([`decide`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::copies::PromoteOutput;
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, Settled, StepFailure, StepKind, StepOutput,
    Traits,
};
use crate::plan::kinds::sql_moves::{Look, decide, old_side_kind};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, Phase};

/// Follow the old primary's side of one `[[cloud_sql]]` resource's move.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettleSql {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The target's instance (the new primary).
    pub instance: String,
    /// Every other region's instance: (GCP region, name), the plan's.
    pub others: Vec<(String, String)>,
    /// How long to follow the operation (`old_primary_wait`), in seconds.
    pub wait_seconds: u64,
}

/// Where the old primary's side stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OldSide {
    /// Its operation is done.
    Done,
    /// Its operation ended with an error.
    Failed,
    /// Still under way, or its region did not answer, when the wait ended.
    Pending,
    /// Nothing of this run's to follow (no move was made, or the old
    /// primary is not the plan's).
    #[default]
    Nothing,
}

/// What the step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SettleSqlOutput {
    /// The plan resource.
    pub resource: String,
    /// The old primary, when there is one to follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_primary: Option<String>,
    /// Its GCP region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_region: Option<String>,
    /// The kind of operation followed (`RECONFIGURE_OLD_PRIMARY`,
    /// `SWITCHOVER_TO_REPLICA`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation_type: Option<String>,
    /// The operation, once found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Where it stands.
    pub state: OldSide,
    /// Why, in a sentence.
    pub why: String,
    /// Cloud SQL's error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl StepOutput for SettleSqlOutput {
    const KIND: KindName = KindName::SettleSql;
}

/// What people must know of an old side not settled (pure).
fn old_side_warning(o: &SettleSqlOutput) -> Option<String> {
    let old = format!(
        "Cloud SQL's {} of the old primary {} in {}{}",
        o.operation_type.as_deref().unwrap_or("operation"),
        o.old_primary.as_deref().unwrap_or("?"),
        o.old_region.as_deref().unwrap_or("?"),
        o.operation
            .as_deref()
            .map(|n| format!(" (operation {n})"))
            .unwrap_or_default()
    );
    match o.state {
        OldSide::Pending => Some(format!(
            "{old} is pending: {}; the recovery is done, and Cloud SQL finishes it when that region answers: `drctl runs resume` follows it again, and `drctl reprotect` waits for it",
            o.why
        )),
        OldSide::Failed => Some(format!(
            "{old} failed: {}; the new primary serves, but the old one was not reconfigured: read it with `gcloud sql operations describe`, and fix it before `drctl reprotect` (which refuses until then)",
            o.error.as_deref().unwrap_or(&o.why)
        )),
        OldSide::Done | OldSide::Nothing => None,
    }
}

/// Beside the recovery (after the traffic moved; nothing waits on it).
pub const TRAITS: Traits = Traits {
    warnings: Some(|v| {
        SettleSqlOutput::read(v)
            .and_then(|o| old_side_warning(&o))
            .into_iter()
            .collect()
    }),
    time: Cost {
        calls: &["sqladmin:operations.list"],
        polls: Some("sqladmin:operations.list"),
        ..Cost::NONE
    },
    ..Traits::OFF_PATH
};

/// Every promote-replica `[[cloud_sql]]` resource whose failover
/// `promote` moves gets its old side followed.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<SettleSql> = (b.plan.spec.cloud_sql.iter())
        .filter(|d| d.strategy == DbStrategy::PromoteReplica)
        .filter_map(|d| {
            let target = d.sites.gcp(b.target);
            Some(SettleSql {
                resource: d.id.clone(),
                project: d.project.clone(),
                instance: d.regions.get(target)?.clone(),
                others: (d.regions.iter())
                    .filter(|(r, _)| r.as_str() != target)
                    .map(|(r, n)| (r.clone(), n.clone()))
                    .collect(),
                wait_seconds: d.old_primary_wait().as_secs(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "follow Cloud SQL's side of the move on {}'s old primary (up to {} s; pending if its region does not answer)",
            s.resource, s.wait_seconds
        );
        // No resources: nothing on the recovery path is ordered after it
        // (`after` edges would put a traffic step behind it, and the RTO
        // with it).
        b.add(
            StepKind::SettleSql(s.clone()),
            Some(s.resource.clone()),
            Phase::Verify,
            Vec::new(),
            description,
        );
    }
}

/// What is followed: the old primary, its region and the operation kind.
struct Followed {
    old: String,
    region: String,
    kind: &'static str,
    since: Option<DateTime<Utc>>,
}

impl SettleSql {
    /// What to follow, from the promotion's outputs and the plan's names
    /// (`Err`: nothing to follow, and why).
    fn followed(&self, cx: &Cx<'_>) -> Result<Followed, String> {
        let Some(p) = cx.output_of::<PromoteOutput>(Some(&self.resource)) else {
            return Err("the promotion's outputs are not in the run".into());
        };
        let Some(kind) = p.path.and_then(old_side_kind) else {
            return Err(format!(
                "{} was a primary already when the run looked: no move of this run's",
                self.instance
            ));
        };
        let Some(source) = p.source else {
            return Err("the promotion did not name the instance it replicated from".into());
        };
        // `project:instance` after a switchover, as Cloud SQL names it.
        let bare = source.rsplit(':').next().unwrap_or(&source);
        let Some((region, old)) = self.others.iter().find(|(_, n)| n == bare) else {
            return Err(format!(
                "{source}, the instance {} replicated from, is not one of the plan's: not followed",
                self.instance
            ));
        };
        Ok(Followed {
            old: old.clone(),
            region: region.clone(),
            kind,
            since: p.promoted_at,
        })
    }

    /// One bounded look: the old primary's operations until the move's is
    /// found (`known`: none yet), then that operation.
    async fn look(&self, cx: &Cx<'_>, f: &Followed, known: Option<&str>) -> Result<Look, String> {
        let bound = cx.control_read_timeout;
        let sql = &cx.clouds.cloud_sql;
        let read = async {
            Ok::<_, crate::cloud::CloudError>(match known {
                None => decide(
                    f.kind,
                    f.since,
                    &sql.operations(&f.region, &self.project, &f.old).await?,
                ),
                Some(name) => {
                    let op = sql.operation(&f.region, &self.project, name).await?;
                    match op.is_done() {
                        true => Look::Over(op),
                        false => Look::Running(op),
                    }
                }
            })
        };
        match tokio::time::timeout(bound, read).await {
            Ok(Ok(look)) => Ok(look),
            // A region that does not answer, or an answer that says
            // something else is wrong (a permission): pending either way (a
            // resume reads again), said for what it is.
            Ok(Err(e)) if e.kind.is_transient() => {
                Err(format!("its region did not answer ({})", e.message))
            }
            Ok(Err(e)) => Err(format!("its operations could not be read ({})", e.message)),
            Err(_) => Err(format!(
                "its region did not answer within {} ms",
                bound.as_millis()
            )),
        }
    }

    /// Follows the operation until it is over or the wait has passed (never
    /// past the run's deadline), at the run's pace; a read that fails ends
    /// it pending at once.
    async fn follow(&self, cx: &Cx<'_>, f: &Followed, out: &mut SettleSqlOutput) {
        let wait = Duration::from_secs(self.wait_seconds);
        let until =
            (tokio::time::Instant::now() + wait).min(tokio::time::Instant::from_std(cx.deadline));
        let what = format!("{} of the old primary {}", f.kind, f.old);
        // The operation once found (its name is what the next look reads).
        let found = std::sync::Mutex::new(None::<String>);
        let known = || found.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let over = crate::cloud::retry::poll_until(&what, cx.poll, until, || async {
            let look = self.look(cx, f, known().as_deref()).await?;
            if let Some(tell) = cx.waiting.filter(|_| known().is_none()) {
                tell(&what);
            }
            Ok::<_, String>(match look {
                Look::Over(op) => Some(op),
                Look::Running(op) => {
                    *found.lock().unwrap_or_else(|e| e.into_inner()) = Some(op.name);
                    None
                }
                Look::NotYet => None,
            })
        })
        .await;
        out.operation = known();
        match over {
            Err(why) => {
                out.state = OldSide::Pending;
                out.why = why;
            }
            Ok(Some(op)) => {
                out.operation = Some(op.name);
                out.state = match op.error {
                    Some(_) => OldSide::Failed,
                    None => OldSide::Done,
                };
                out.error = op.error;
                out.why = format!("{} of {} is over", f.kind, f.old);
            }
            Ok(None) => {
                out.state = OldSide::Pending;
                out.why = match &out.operation {
                    Some(_) => format!("still under way after {} s", wait.as_secs()),
                    None => format!("not started after {} s", wait.as_secs()),
                };
            }
        }
    }
}

#[async_trait]
impl Action for SettleSql {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // The old primary may be down: nothing of it stops a failover.
        Vec::new()
    }

    async fn preview(&self, _cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(vec![Planned {
            call: "sqladmin:operations.list".into(),
            resource: (self.others.iter().map(|(_, n)| n.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            region: (self.others.iter().map(|(r, _)| r.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
            current: "-".into(),
            desired: format!(
                "the old primary's side of the move (RECONFIGURE_OLD_PRIMARY or SWITCHOVER_TO_REPLICA) followed for up to {} s after the traffic moved; pending, not failed, if its region does not answer",
                self.wait_seconds
            ),
            change: false,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let mut out = SettleSqlOutput {
            resource: self.resource.clone(),
            ..SettleSqlOutput::default()
        };
        match self.followed(cx) {
            Err(why) => out.why = why,
            Ok(f) => {
                out.old_primary = Some(f.old.clone());
                out.old_region = Some(f.region.clone());
                out.operation_type = Some(f.kind.to_string());
                self.follow(cx, &f, &mut out).await;
                tracing::info!(
                    resource = %self.resource,
                    old = %f.old,
                    state = ?out.state,
                    "{}",
                    out.why
                );
            }
        }
        out.to_output()
    }

    fn settled(&self, outputs: &Value) -> Settled {
        match SettleSqlOutput::read(outputs).map(|o| o.state) {
            Some(OldSide::Pending) => Settled::Pending,
            _ => Settled::Yes,
        }
    }
}

#[cfg(test)]
mod tests;
