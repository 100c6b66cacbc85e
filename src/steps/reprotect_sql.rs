//! `reprotect-sql`: after a failover, protect a `[[cloud_sql]]` resource
//! again: every other region's instance a read replica of the new primary,
//! and, for a DR pair, one of them designated its DR replica, so that the
//! next failover (or a failback's switchover) has a standby to move to.
//!
//! Cloud SQL, not drctl, turns a former primary into a replica: after a
//! DR replica failover the old primary rejoins as a replica of the new one
//! once its region answers, and a switchover swaps the roles itself. An
//! existing instance cannot be made a replica through the API, and a
//! deleted instance's name stays taken for days; so the step never
//! deletes or re-creates. It reads, waits (bounded, at the run's pace) for
//! a former primary to rejoin, designates the DR replica
//! (`instances.patch` of the primary's `failoverDrReplicaName`: the one
//! write, fenced, its operation polled to done, a running one found again
//! by a resumed run), and refuses, naming the fix, where only a person can
//! act: a plain (non-DR) promotion leaves a standalone old primary that a
//! new cross-region replica must replace. The decision is pure
//! ([`decide`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{DbRole, SqlInstance, SqlOperation};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, Phase, RunMode};

/// Protect one `[[cloud_sql]]` resource again from its primary in the
/// active region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReprotectSql {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The primary, in the active region.
    pub primary: String,
    /// The active site's GCP region (the run's target).
    pub active: String,
    /// Every other region's instance: (GCP region, name), in the plan's
    /// order of preference.
    pub copies: Vec<(String, String)>,
    /// Whether the pair is an Enterprise Plus DR pair (a replica must be
    /// designated the DR replica).
    pub dr_replica: bool,
}

/// What a reprotection publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReprotectSqlOutput {
    /// The primary.
    pub primary: String,
    /// Every other instance, a replica of it: `region/name`.
    pub replicas: Vec<String>,
    /// The DR replica, when the pair has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_replica: Option<String>,
    /// Set when it was designated by this step (its operation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Set when everything was protected already.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_protected: bool,
}

impl StepOutput for ReprotectSqlOutput {
    const KIND: KindName = KindName::ReprotectSql;
}

/// Follows a recovery; reversible (a designation is moved by another).
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &[
            "sqladmin:instances.get",
            "sqladmin:operations.list",
            "sqladmin:instances.patch",
        ],
        polls: Some("sqladmin:operations.get"),
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// A reprotection protects every promote-replica Cloud SQL resource.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode != RunMode::Reprotect {
        return;
    }
    let steps: Vec<ReprotectSql> = (b.plan.spec.cloud_sql.iter())
        .filter(|d| d.strategy == DbStrategy::PromoteReplica)
        .filter_map(|d| {
            let active = d.sites.gcp(b.target);
            Some(ReprotectSql {
                resource: d.id.clone(),
                project: d.project.clone(),
                primary: d.regions.get(active)?.clone(),
                active: active.to_string(),
                copies: (b.plan.regions().iter())
                    .map(|r| d.sites.gcp(r))
                    .filter(|r| *r != active)
                    .filter_map(|r| Some((r.to_string(), d.regions.get(r)?.clone())))
                    .collect(),
                dr_replica: d.dr_replica,
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "protect Cloud SQL {} in {} again: every other region's instance its replica (a former primary rejoins when its region is back){}",
            s.primary,
            s.active,
            if s.dr_replica {
                ", one designated its DR replica"
            } else {
                ""
            }
        );
        b.add(
            StepKind::ReprotectSql(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudSql),
            vec![s.resource],
            description,
        );
    }
}

/// Where the resource stands, as read: what the step does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Every copy replicates from the primary (and the DR replica is
    /// designated, for a DR pair).
    Protected {
        /// The DR replica, for a DR pair.
        dr: Option<String>,
    },
    /// Every copy replicates from the primary; this one (region, name) is
    /// to be designated the DR replica.
    Designate(String, String),
    /// A former primary has not rejoined yet: Cloud SQL does it when its
    /// region answers.
    Wait(String),
    /// Only a person can protect it; the message and the fix.
    Refuse(String, String),
}

/// Decides where the resource stands from the primary and each copy as
/// read (`None`: absent): pure.
pub fn decide(
    step: &ReprotectSql,
    primary: Option<&SqlInstance>,
    copies: &[(String, String, Option<SqlInstance>)],
) -> Standing {
    let (p, active) = (&step.primary, &step.active);
    match primary {
        None => {
            return Standing::Refuse(
                format!("Cloud SQL {p} does not exist in {active}"),
                "reprotect runs after a failover to that region: name the region the plan now serves from".into(),
            );
        }
        Some(i) if i.role != DbRole::Primary => {
            return Standing::Refuse(
                format!("Cloud SQL {p} in {active} is not a primary"),
                "reprotect runs after a failover to that region: `drctl status` shows where the plan serves".into(),
            );
        }
        Some(_) => {}
    }
    let mut dr = None;
    let mut first_replica = None;
    for (region, name, read) in copies {
        match read.as_ref().map(|c| &c.role) {
            None => {
                return Standing::Refuse(
                    format!("Cloud SQL {name} does not exist in {region}"),
                    format!(
                        "create a cross-region read replica of {p} in {region} (gcloud sql instances create NAME --master-instance-name={p} --region={region}) and name it in the plan: Cloud SQL keeps a deleted instance's name for days"
                    ),
                );
            }
            Some(DbRole::Replica(of)) if of == p => {
                if read.as_ref().is_some_and(|c| c.dr_replica) {
                    dr.get_or_insert_with(|| name.clone());
                }
                first_replica.get_or_insert((region.clone(), name.clone()));
            }
            Some(DbRole::Replica(of)) => {
                return Standing::Refuse(
                    format!("Cloud SQL {name} in {region} replicates from {of}, not from {p}"),
                    format!(
                        "promote or re-point it by hand, or create a replica of {p} in {region} and name it in the plan"
                    ),
                );
            }
            Some(DbRole::Primary) if step.dr_replica => {
                return Standing::Wait(format!(
                    "{name} in {region} is still a standalone primary: after a DR replica failover Cloud SQL makes the former primary a replica of {p} once {region} answers"
                ));
            }
            Some(DbRole::Primary) => {
                return Standing::Refuse(
                    format!(
                        "Cloud SQL {name} in {region} is a standalone primary (the former primary of a promotion), and an existing instance cannot be made a replica"
                    ),
                    format!(
                        "keep {name} for what never replicated, create a new cross-region replica of {p} in {region} (gcloud sql instances create NAME --master-instance-name={p} --region={region}) and name it in the plan, then run reprotect again"
                    ),
                );
            }
        }
    }
    match (step.dr_replica, dr, first_replica) {
        (true, None, Some((region, name))) => Standing::Designate(region, name),
        (true, dr, _) => Standing::Protected { dr },
        (false, _, _) => Standing::Protected { dr: None },
    }
}

impl ReprotectSql {
    async fn read(
        &self,
        cx: &Cx<'_>,
    ) -> Result<
        (
            Option<SqlInstance>,
            Vec<(String, String, Option<SqlInstance>)>,
        ),
        StepFailure,
    > {
        let sql = &cx.clouds.cloud_sql;
        let primary = sql
            .describe_sql(&self.active, &self.project, &self.primary)
            .await?;
        let mut copies = Vec::new();
        for (region, name) in &self.copies {
            let read = sql.describe_sql(region, &self.project, name).await?;
            copies.push((region.clone(), name.clone(), read));
        }
        Ok((primary, copies))
    }

    /// The designation's operation still under way on the primary (a
    /// resumed run's, or one whose answer was lost), if any.
    async fn running_update(&self, cx: &Cx<'_>) -> Result<Option<SqlOperation>, StepFailure> {
        let ops = (cx.clouds.cloud_sql)
            .operations(&self.active, &self.project, &self.primary)
            .await?;
        Ok(ops.into_iter().find(|o| o.kind == "UPDATE" && !o.is_done()))
    }

    /// When the primary was promoted: its newest `PROMOTE_REPLICA`'s time
    /// (`None`: not known, e.g. Cloud SQL no longer lists it).
    async fn promoted_at(&self, cx: &Cx<'_>) -> Result<Option<DateTime<Utc>>, StepFailure> {
        let ops = (cx.clouds.cloud_sql)
            .operations(&self.active, &self.project, &self.primary)
            .await?;
        Ok((ops.into_iter())
            .find(|o| o.kind == "PROMOTE_REPLICA")
            .and_then(|o| o.inserted))
    }

    /// Refuses when a former primary still standing alone will not rejoin:
    /// Cloud SQL's reconfiguration of it (`RECONFIGURE_OLD_PRIMARY`, which
    /// makes it a replica after a DR failover) since the primary's own
    /// promotion (`since`) ended with an error. One that is under way, or
    /// not started (its region is down), is waited for; so is any when the
    /// promotion's time is not known (an older incident's failure is not
    /// this one's).
    async fn refuse_failed_rejoin(
        &self,
        cx: &Cx<'_>,
        since: Option<DateTime<Utc>>,
        copies: &[(String, String, Option<SqlInstance>)],
    ) -> Result<(), StepFailure> {
        let Some(since) = since else {
            return Ok(());
        };
        let standing_alone = (copies.iter())
            .filter(|(_, _, c)| c.as_ref().is_some_and(|c| c.role == DbRole::Primary))
            .map(|(region, name, _)| (region, name));
        for (region, name) in standing_alone {
            let ops = (cx.clouds.cloud_sql)
                .operations(region, &self.project, name)
                .await?;
            let look = super::sql_moves::decide("RECONFIGURE_OLD_PRIMARY", Some(since), &ops);
            if let super::sql_moves::Look::Over(op) = look
                && let Some(e) = &op.error
            {
                return Err(StepFailure::state(
                    format!(
                        "Cloud SQL's reconfiguration of the former primary {name} in {region} (operation {}) failed: {e}; it will not rejoin as a replica of {}",
                        op.name, self.primary
                    ),
                    format!(
                        "read it with `gcloud sql operations describe {} --project {}`; keep {name} for what never replicated, create a new cross-region replica of {} in {region} and name it in the plan, then run reprotect again",
                        op.name, self.project, self.primary
                    ),
                    name,
                    region,
                ));
            }
        }
        Ok(())
    }

    async fn until_done(&self, cx: &Cx<'_>, name: &str) -> Result<SqlOperation, StepFailure> {
        let (p, r) = (self.project.as_str(), self.active.as_str());
        let op = wait_for(
            cx,
            &format!("Cloud SQL operation {name} on {} ({r})", self.primary),
            || async {
                let op = cx.clouds.cloud_sql.operation(r, p, name).await?;
                Ok(op.is_done().then_some(op))
            },
        )
        .await?;
        if let Some(e) = &op.error {
            return Err(StepFailure::state(
                format!(
                    "Cloud SQL operation {} ({}) on {} failed: {e}",
                    op.name, op.kind, self.primary
                ),
                format!(
                    "read it with `gcloud sql operations describe {} --project {p}`; run reprotect again once its cause is fixed",
                    op.name
                ),
                &self.primary,
                r,
            ));
        }
        Ok(op)
    }
}

#[async_trait]
impl Action for ReprotectSql {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let sql = &cx.clouds.cloud_sql;
        let mut out = Vec::new();
        for (region, name) in std::iter::once((&self.active, &self.primary))
            .chain(self.copies.iter().map(|(r, n)| (r, n)))
        {
            let what = format!("cloud sql {name}");
            out.push(match sql.describe_sql(region, &self.project, name).await {
                Ok(None) => Finding::missing(&what, region),
                Ok(Some(i)) => Finding::ok(&what, region, i.state.to_lowercase()),
                Err(e) => Finding::unreadable(&what, region, &e),
            });
        }
        out
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let (primary, copies) = self.read(cx).await?;
        let standing = decide(self, primary.as_ref(), &copies);
        let (desired, change) = match &standing {
            Standing::Protected { .. } => ("protected already".to_string(), false),
            Standing::Designate(r, n) => (format!("designate {n} ({r}) its DR replica"), true),
            Standing::Wait(why) => (format!("wait: {why}"), false),
            Standing::Refuse(m, _) => (format!("refused: {m}"), false),
        };
        Ok(vec![Planned {
            call: "sqladmin:instances.patch".into(),
            resource: self.primary.clone(),
            region: self.active.clone(),
            current: copies
                .iter()
                .map(|(r, n, c)| match c.as_ref().map(|c| &c.role) {
                    None => format!("{n} ({r}) absent"),
                    Some(DbRole::Primary) => format!("{n} ({r}) primary"),
                    Some(DbRole::Replica(of)) => format!("{n} ({r}) replica of {of}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            desired,
            change,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (p, r) = (self.project.as_str(), self.active.as_str());
        let mut out = ReprotectSqlOutput {
            primary: self.primary.clone(),
            ..ReprotectSqlOutput::default()
        };
        let mut acted = false;
        loop {
            let (primary, copies) = self.read(cx).await?;
            match decide(self, primary.as_ref(), &copies) {
                Standing::Protected { dr } => {
                    out.dr_replica = dr;
                    out.replicas = copies.iter().map(|(r, n, _)| format!("{r}/{n}")).collect();
                    out.already_protected = !acted;
                    break;
                }
                Standing::Refuse(message, hint) => {
                    return Err(StepFailure::state(message, hint, &self.primary, r));
                }
                Standing::Wait(why) => {
                    tracing::info!(instance = %self.primary, region = r, "{why}");
                    // Read once: the promotion's time does not move while
                    // the former primary is waited for.
                    let since = self.promoted_at(cx).await?;
                    self.refuse_failed_rejoin(cx, since, &copies).await?;
                    wait_for(cx, &why, || async {
                        let (primary, copies) = self.read(cx).await?;
                        self.refuse_failed_rejoin(cx, since, &copies).await?;
                        Ok(
                            (!matches!(decide(self, primary.as_ref(), &copies), Standing::Wait(_)))
                                .then_some(()),
                        )
                    })
                    .await?;
                }
                Standing::Designate(_, _) if acted => {
                    return Err(StepFailure::state(
                        format!(
                            "Cloud SQL operation {} is done, yet {} names no DR replica",
                            out.operation.as_deref().unwrap_or("?"),
                            self.primary
                        ),
                        "read the pair (`drctl status`) and run reprotect again: the step reads first",
                        &self.primary,
                        r,
                    ));
                }
                Standing::Designate(region, name) => {
                    let op = match self.running_update(cx).await? {
                        Some(op) => op,
                        None => {
                            cx.fenced(
                                &format!("sqladmin:instances.patch of {} (DR replica {name} in {region})", self.primary),
                                r,
                            )
                            .await?;
                            (cx.clouds.cloud_sql)
                                .designate_dr_sql(r, p, &self.primary, &name)
                                .await?
                        }
                    };
                    out.operation = Some(op.name.clone());
                    acted = true;
                    self.until_done(cx, &op.name).await?;
                }
            }
        }
        out.to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(dr: bool) -> ReprotectSql {
        ReprotectSql {
            resource: "orders-sql".into(),
            project: "p".into(),
            primary: "sql-use4".into(),
            active: "us-east4".into(),
            copies: vec![("us-central1".into(), "sql".into())],
            dr_replica: dr,
        }
    }

    fn inst(name: &str, role: DbRole, dr: bool) -> SqlInstance {
        SqlInstance {
            name: name.into(),
            region: String::new(),
            state: "RUNNABLE".into(),
            role,
            replicas: vec![],
            dr_replica: dr,
            edition: None,
            endpoint: None,
            write_endpoint: None,
        }
    }

    fn copy(role: Option<DbRole>, dr: bool) -> Vec<(String, String, Option<SqlInstance>)> {
        vec![(
            "us-central1".into(),
            "sql".into(),
            role.map(|r| inst("sql", r, dr)),
        )]
    }

    #[test]
    fn a_former_primary_is_waited_for_then_designated_then_protected() {
        let s = step(true);
        let p = inst("sql-use4", DbRole::Primary, false);
        assert!(matches!(
            decide(&s, Some(&p), &copy(Some(DbRole::Primary), false)),
            Standing::Wait(_)
        ));
        let rejoined = copy(Some(DbRole::Replica("sql-use4".into())), false);
        assert_eq!(
            decide(&s, Some(&p), &rejoined),
            Standing::Designate("us-central1".into(), "sql".into())
        );
        let designated = copy(Some(DbRole::Replica("sql-use4".into())), true);
        assert_eq!(
            decide(&s, Some(&p), &designated),
            Standing::Protected {
                dr: Some("sql".into())
            }
        );
    }

    #[test]
    fn what_only_a_person_can_fix_is_refused_with_the_fix() {
        let p = inst("sql-use4", DbRole::Primary, false);
        // A plain promotion's old primary: never made a replica by drctl.
        let Standing::Refuse(m, hint) =
            decide(&step(false), Some(&p), &copy(Some(DbRole::Primary), false))
        else {
            panic!("refused")
        };
        assert!(m.contains("standalone primary"), "{m}");
        assert!(hint.contains("--master-instance-name=sql-use4"), "{hint}");
        assert!(matches!(
            decide(&step(true), Some(&p), &copy(None, false)),
            Standing::Refuse(..)
        ));
        let replica = inst("sql-use4", DbRole::Replica("sql".into()), true);
        assert!(matches!(
            decide(
                &step(true),
                Some(&replica),
                &copy(Some(DbRole::Primary), false)
            ),
            Standing::Refuse(..)
        ));
        assert!(matches!(
            decide(&step(true), None, &[]),
            Standing::Refuse(..)
        ));
    }
}
