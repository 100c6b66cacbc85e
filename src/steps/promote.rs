//! `promote`: promote the target region's read replica to a writable primary.
//!
//! Promotion cannot be undone: the old primary keeps its data but stops
//! replicating to this copy, and getting back means new replicas
//! (`drctl reprotect`) and a second failover (`drctl failback`). So the step
//! re-reads the instance first (an instance that is already a primary is not
//! promoted again), measures the replica lag right before promoting (the RPO
//! achieved), and waits until the instance is a primary and available.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::copies::{CopyRead, LagRecord, copy_problems};
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{DbInstance, DbRole};
use crate::plan::spec::DbStrategy;
use crate::steps::graph::{Builder, Phase};

/// Promote one database resource's replica in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Promote {
    /// Plan resource id.
    pub resource: String,
    /// Instance id in the target region.
    pub instance: String,
    /// Target region.
    pub region: String,
}

/// What a promotion publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromoteOutput {
    /// Instance id.
    pub instance: String,
    /// Region.
    pub region: String,
    /// Set when the instance was a primary already (nothing promoted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_primary: Option<bool>,
    /// What it replicated from, when it was a replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The replica lag right before promotion (the RPO), when it was a replica.
    #[serde(flatten)]
    pub lag: LagRecord,
    /// When the promotion was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<DateTime<Utc>>,
    /// The primary's endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Its port.
    #[serde(default)]
    pub port: Option<i32>,
}

impl StepOutput for PromoteOutput {
    const KIND: KindName = KindName::Promote;
}

/// What preflight keeps of the instance for the step (see [`Cx::preflight_facts`]).
#[derive(Serialize, Deserialize)]
struct InstanceFacts {
    instance: DbInstance,
}

/// Part of the recovery, irreversible, and where the RPO is read.
pub const TRAITS: Traits = Traits {
    irreversible: Some(
        "a promotion cannot be undone: failing back means re-creating replicas (drctl reprotect)",
    ),
    endpoint: Some(|v| PromoteOutput::read(v)?.endpoint),
    rpo: Some(rpo),
    time: Cost {
        calls: &[
            "rds:DescribeDBInstances",
            "cloudwatch:GetMetricData",
            "rds:PromoteReadReplica",
        ],
        waits: &["rds:PromoteReadReplica"],
        polls: Some("rds:DescribeDBInstances"),
    },
    ..Traits::RECOVERY
};

/// The RPO of a promotion: the replica lag read just before it, else the
/// lag the RPO gate journaled (the instance was already a primary).
fn rpo(
    resource: &str,
    out: Option<&Value>,
    gate_lag: Option<f64>,
    _origin: DateTime<Utc>,
    _origin_label: &str,
) -> (Option<f64>, String) {
    let out = out.map(|o| PromoteOutput::read(o).unwrap_or_default());
    let lag = |o: &PromoteOutput| o.lag.seconds();
    match out.as_ref().and_then(lag) {
        Some(l) => (
            Some(l),
            format!(
                "{resource}: ReplicaLag read just before promotion ({} datapoints)",
                out.as_ref().map_or(0, |o| o.lag.count())
            ),
        ),
        None => match gate_lag {
            Some(l) if out.is_some() => (
                Some(l),
                format!(
                    "{resource}: ReplicaLag recorded by the RPO gate (the instance was already a primary when the step ran)"
                ),
            ),
            _ if out.is_none() => (
                None,
                format!("{resource}: unknown (the promotion has not completed)"),
            ),
            _ => (
                None,
                format!("{resource}: unknown (no ReplicaLag datapoints at promotion)"),
            ),
        },
    }
}

/// A failover promotes every promote-replica database of the plan.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<Promote> = b
        .plan
        .spec
        .database
        .iter()
        .filter(|d| d.strategy == DbStrategy::PromoteReplica)
        .map(|d| Promote {
            resource: d.id.clone(),
            instance: d.regions[b.target].clone(),
            region: b.target.to_string(),
        })
        .collect();
    for p in steps {
        let description = format!(
            "promote read replica {} in {} to primary (cannot be undone)",
            p.instance, p.region
        );
        b.add(
            StepKind::Promote(p.clone()),
            Some(p.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::Database),
            vec![p.resource],
            description,
        );
    }
}

impl Promote {
    /// Why this replica, as `status` read it in a standby region, could not
    /// be promoted now: this kind's readiness rule, pure. A primary there
    /// needs reprotecting; a replica's lag is judged by the RPO rule the gate
    /// uses (`lag_problem`, computed by the caller, which sits above this
    /// layer).
    pub fn standby_problems(
        &self,
        copy: CopyRead<'_>,
        plan: &str,
        lag_problem: Option<String>,
    ) -> Vec<String> {
        let (instance, region) = (&self.instance, &self.region);
        let strategy = match copy {
            CopyRead::Found { primary: true, .. } => vec![format!(
                "database {instance} in {region} is a primary, not a replica of the active region: run `drctl reprotect --plan {plan}`"
            )],
            CopyRead::Found { primary: false, .. } => lag_problem.into_iter().collect(),
            _ => Vec::new(),
        };
        copy_problems(instance, region, copy, strategy)
    }
}

impl Promote {
    /// The instance as it is now: preflight's read of moments ago while it
    /// is fresh (the provider refuses to promote a primary, so a state that
    /// changed since fails the call, and a re-run reads again), else a read.
    async fn current(&self, cx: &Cx<'_>) -> Result<DbInstance, StepFailure> {
        let (id, t) = (self.instance.as_str(), self.region.as_str());
        let fresh = cx
            .preflight_facts::<InstanceFacts>(&format!("database {id}"))
            .map(|f| f.instance);
        if let Some(i) = fresh {
            return Ok(i);
        }
        cx.clouds
            .database
            .describe_instance(t, id)
            .await?
            .ok_or_else(|| {
                StepFailure::state(
                    format!("database {id} does not exist in {t}"),
                    "create the replica (drctl reprotect) or fix the id in the plan",
                    id,
                    t,
                )
            })
    }

    /// The replica's lag at promotion: the RPO gate's reading of moments
    /// ago on this run's path while it is fresh, else a read now.
    async fn record_lag(&self, cx: &Cx<'_>, out: &mut PromoteOutput) -> Result<(), StepFailure> {
        let (id, t) = (self.instance.as_str(), self.region.as_str());
        let read = || cx.clouds.metrics.replica_lag(t, id, cx.lag_window);
        out.lag = LagRecord::before_move(cx, &self.resource, "promote", read).await?;
        Ok(())
    }

    /// Waits until the instance is an available primary.
    async fn until_primary(&self, cx: &Cx<'_>) -> Result<DbInstance, StepFailure> {
        let (id, t) = (self.instance.as_str(), self.region.as_str());
        wait_for(
            cx,
            &format!("{id} ({t}) to become an available primary"),
            || async {
                let i = cx.clouds.database.describe_instance(t, id).await?;
                Ok(i.filter(|i| i.role == DbRole::Primary && i.is_available()))
            },
        )
        .await
    }
}

#[async_trait]
impl super::Writes for Promote {
    async fn endpoint_now(&self, clouds: &crate::cloud::Clouds, _: &str) -> super::EndpointNow {
        let read = clouds
            .database
            .describe_instance(&self.region, &self.instance)
            .await;
        let found = read.map(|i| i.map(|i| (i.endpoint, i.port)));
        super::EndpointNow::of(&self.instance, &self.region, found)
    }
}

#[async_trait]
impl Action for Promote {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("database {}", self.instance);
        match cx
            .clouds
            .database
            .describe_instance(&self.region, &self.instance)
            .await
        {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(i)) => vec![
                Finding::ok(
                    &what,
                    &self.region,
                    format!("{} ({:?})", i.status, i.role).to_lowercase(),
                )
                .with_facts(&InstanceFacts { instance: i }),
            ],
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let inst = cx
            .clouds
            .database
            .describe_instance(&self.region, &self.instance)
            .await?;
        let current = match &inst {
            None => "missing".to_string(),
            Some(i) => match &i.role {
                DbRole::Primary => format!("primary ({})", i.status),
                DbRole::Replica(src) => format!("replica of {src} ({})", i.status),
            },
        };
        Ok(vec![Planned {
            call: "rds:PromoteReadReplica".into(),
            resource: self.instance.clone(),
            region: self.region.clone(),
            current,
            desired: "primary (available); cannot be undone".into(),
            change: inst.is_none_or(|i| i.role != DbRole::Primary),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (id, t) = (self.instance.as_str(), self.region.as_str());
        let inst = self.current(cx).await?;
        let mut out = PromoteOutput {
            instance: id.to_string(),
            region: t.to_string(),
            ..PromoteOutput::default()
        };
        let done = match &inst.role {
            DbRole::Primary if inst.is_available() => {
                tracing::info!(
                    instance = id,
                    region = t,
                    "already a primary; not promoting again"
                );
                out.already_primary = Some(true);
                inst.clone()
            }
            DbRole::Primary => {
                out.already_primary = Some(true);
                self.until_primary(cx).await?
            }
            DbRole::Replica(source) => {
                if !inst.is_available() {
                    wait_for(
                        cx,
                        &format!("replica {id} ({t}) to be available before promotion"),
                        || async {
                            let i = cx.clouds.database.describe_instance(t, id).await?;
                            Ok(i.filter(|i| i.is_available()).map(|_| ()))
                        },
                    )
                    .await?;
                }
                out.source = Some(source.clone());
                self.record_lag(cx, &mut out).await?;
                // The promotion's answer says whether it is done (an
                // emulator promotes at once); RDS answers `modifying`, and
                // then the step waits for an available primary.
                cx.fenced(&format!("rds:PromoteReadReplica of {id}"), t)
                    .await?;
                let answered = cx.clouds.database.promote_known(t, &inst).await?;
                out.promoted_at = Some(Utc::now());
                if answered.role == DbRole::Primary && answered.is_available() {
                    answered
                } else {
                    self.until_primary(cx).await?
                }
            }
        };
        out.endpoint = done.endpoint;
        out.port = done.port;
        out.to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promote() -> Promote {
        Promote {
            resource: "db".into(),
            instance: "db-use1".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn a_standby_primary_needs_reprotecting_and_a_replica_is_judged_by_its_lag() {
        let primary = CopyRead::Found {
            primary: true,
            status: "available",
        };
        let p = promote().standby_problems(primary, "payments", Some("lag".into()));
        assert_eq!(
            p,
            [
                "database db-use1 in us-east-1 is a primary, not a replica of the active region: run `drctl reprotect --plan payments`"
            ]
        );
        let replica = CopyRead::Found {
            primary: false,
            status: "modifying",
        };
        let p = promote().standby_problems(replica, "payments", Some("lag".into()));
        assert_eq!(
            p,
            [
                "lag",
                "database db-use1 in us-east-1 is `modifying`, not available"
            ]
        );
        assert!(
            (promote().standby_problems(CopyRead::Unreachable, "payments", Some("lag".into())))
                .is_empty()
        );
    }

    #[test]
    fn a_restore_source_needs_only_to_exist_and_be_available() {
        let restore = |copy| crate::steps::restore_standby_problems("db-use1", "us-east-1", copy);
        let primary = CopyRead::Found {
            primary: true,
            status: "available",
        };
        assert!(restore(primary).is_empty());
        assert_eq!(
            restore(CopyRead::Missing),
            ["database db-use1 does not exist in us-east-1"]
        );
        assert_eq!(
            restore(CopyRead::Unreadable),
            ["database db-use1 in us-east-1 could not be read"]
        );
    }
}
