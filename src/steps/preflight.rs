//! `preflight`: the target side of every step is ready before anything
//! changes.
//!
//! Gates (lock, approval, RPO) run before the graph in the engine; this step
//! asks every other step of the plan what it needs of the target region
//! ([`Action::preflight`]: the replica exists, the group can reach its
//! active capacity, the zone exists, the health checks pass, the target
//! bucket is versioned...) so that a missing piece stops the run before
//! anything changes, not halfway through. Only the target region is read:
//! the home region may be the one that is down.

use async_trait::async_trait;
use chrono::Utc;
use futures::future::join_all;
use serde::Serialize;
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, PreflightOutput, StepFailure, StepOutput, Traits,
};
use crate::plan::kinds::{self, Shown};
use crate::steps::graph::{Builder, Phase};

/// The preflight step (one per plan and run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preflight {
    /// Target region.
    pub region: String,
}

/// Bookkeeping, not recovery.
pub const TRAITS: Traits = Traits {
    warnings: Some(|v| {
        (serde_json::from_value::<PreflightOutput>(v.clone()).ok())
            .map_or_else(Vec::new, |o| o.notes)
    }),
    time: Cost {
        calls: &[
            "sts:GetCallerIdentity",
            "route53:ListHostedZonesByName",
            "rds:DescribeDBInstances",
            "autoscaling:DescribeAutoScalingGroups",
        ],
        ..Cost::NONE
    },
    ..Traits::OFF_PATH
};

/// One preflight per plan, in every mode.
pub fn compile(b: &mut Builder<'_>) {
    let description = format!(
        "check {} is ready: resources exist, replica lag within RPO {}, approval",
        b.target,
        crate::plan::duration::Human(b.plan.tier.rpo)
    );
    let step = Preflight {
        region: b.target.to_string(),
    };
    b.add(
        super::StepKind::Preflight(step),
        None,
        Phase::Preflight,
        vec![],
        description,
    );
}

/// Every other step's findings, asked concurrently.
async fn findings(cx: &Cx<'_>) -> Vec<Finding> {
    let others = cx
        .graph
        .iter()
        .filter(|s| s.kind.name() != KindName::Preflight);
    join_all(others.map(|s| s.kind.action().preflight(cx)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// What the data role says people should know of each of the plan's
/// copies in the target, read through the role for every data kind alike
/// ([`Copies::maintenance`]): the maintenance the provider will apply to
/// the copy a failover moves to (RDS, Aurora). A read that fails is said
/// as unread, never as "none", and never stops the run.
async fn data_notes(cx: &Cx<'_>) -> Vec<String> {
    let copies = (kinds::each(&cx.plan.spec).into_iter()).filter_map(|r| match r.shown() {
        Shown::Data(c) if c.about().maintenance_call.is_some() => Some(c),
        _ => None,
    });
    let reads = copies.map(|c| async move {
        let Some(copy) = c.copy(cx.target) else {
            return Vec::new();
        };
        let said = |m: &str| format!("{} ({copy} in {}): {m}", c.id(), cx.target);
        match c.maintenance(cx.clouds, cx.target).await {
            Ok(found) => found.unwrap_or_default().iter().map(|m| said(m)).collect(),
            Err(e) => vec![said(&format!(
                "pending maintenance not read: {}",
                e.message
            ))],
        }
    });
    join_all(reads).await.into_iter().flatten().collect()
}

#[async_trait]
impl Action for Preflight {
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(findings(cx)
            .await
            .into_iter()
            .map(|f| Planned {
                call: String::new(),
                resource: f.resource,
                region: f.region,
                current: f.state,
                desired: f
                    .problem
                    .map_or("ready".into(), |p| format!("ready (now: {p})")),
                change: false,
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let read_at = Utc::now();
        // Read beside the findings, so they add no time to the RTO.
        let (found, notes) = futures::join!(findings(cx), data_notes(cx));
        let problems: Vec<&Finding> = found.iter().filter(|f| f.problem.is_some()).collect();
        if !problems.is_empty() {
            let text: Vec<String> = problems
                .iter()
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.resource,
                        f.problem.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            let resources: Vec<&str> = problems.iter().map(|f| f.resource.as_str()).collect();
            // Each kind's own fix where it knows one, named by what it
            // mends; the general one for the rest.
            let general = "create or fix what is named (see terraform/), or fix the plan";
            let mut fixes: Vec<String> = (problems.iter())
                .filter_map(|f| Some(format!("{}: {}", f.resource, f.fix.as_deref()?)))
                .collect();
            if problems.iter().any(|f| f.fix.is_none()) {
                fixes.push(general.to_string());
            }
            let hint = format!("{}; nothing was changed", fixes.join("; "));
            return Err(StepFailure::state(
                format!("{} is not ready: {}", self.region, text.join("; ")),
                hint,
                &resources.join(", "),
                &self.region,
            ));
        }
        PreflightOutput {
            checked: found,
            read_at,
            notes,
        }
        .to_output()
    }
}
