//! `reprotect`: after a failover, make a database's instance in another region
//! a read replica of the new primary again, so the plan is protected.
//!
//! The old primary in that region still holds data (possibly writes that never
//! replicated): it is renamed out of the way (`<id>-pre-<tag>`), never deleted,
//! and a fresh replica takes the plan's id. So is a replica that still follows
//! the old primary (a third region's): it holds nothing the new primary
//! lacks, but renaming costs nothing and deletes nothing. Every stage re-reads state first,
//! so a re-run after a crash picks up where the last one stopped; a create
//! whose answer was lost is not repeated (the adapter reads the instance
//! before it retries a create). Unlike a failover, a reprotection needs the
//! region it protects: that is what it writes to.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{DbInstance, DbRole, ReplicaPlacement};
use crate::steps::graph::{Builder, Phase, RunMode};

/// Reprotect one database resource in one region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reprotect {
    /// Plan resource id.
    pub resource: String,
    /// Instance id in the region to protect.
    pub instance: String,
    /// Region to protect.
    pub region: String,
    /// The primary's instance id in the active region.
    pub primary: String,
    /// The active region (the run's target).
    pub active: String,
}

/// Not part of a recovery (it follows one); reversible.
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &["rds:DescribeDBInstances", "rds:CreateDBInstanceReadReplica"],
        waits: &["rds:CreateDBInstanceReadReplica"],
        polls: Some("rds:DescribeDBInstances"),
    },
    ..Traits::RECOVERY
};

/// A reprotection protects every database in every other region.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode != RunMode::Reprotect {
        return;
    }
    let mut steps = Vec::new();
    for d in &b.plan.spec.database {
        for region in b.plan.regions().iter().filter(|r| *r != b.target) {
            steps.push(Reprotect {
                resource: d.id.clone(),
                instance: d.regions[region].clone(),
                region: region.clone(),
                primary: d.regions[b.target].clone(),
                active: b.target.to_string(),
            });
        }
    }
    for r in steps {
        let description = format!(
            "make {} in {} a read replica of {} in {} (an old primary is renamed, not deleted)",
            r.instance, r.region, r.primary, r.active
        );
        b.add(
            StepKind::Reprotect(r.clone()),
            Some(format!("{}@{}", r.resource, r.region)),
            Phase::of(crate::plan::spec::ResourceKind::Database),
            vec![r.resource],
            description,
        );
    }
}

/// The name an old primary is renamed to (stable per run).
pub fn parked_id(id: &str, run_id: &str) -> String {
    let tag: String = run_id
        .chars()
        .rev()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(4)
        .collect::<String>()
        .to_lowercase();
    let base: String = id.chars().take(63 - 9).collect();
    format!("{base}-pre-{tag}")
}

fn replica_of(inst: &DbInstance, primary: &DbInstance) -> bool {
    match &inst.role {
        DbRole::Replica(src) => src == &primary.arn || src == &primary.id,
        DbRole::Primary => false,
    }
}

impl Reprotect {
    async fn primary(&self, cx: &Cx<'_>) -> Result<DbInstance, StepFailure> {
        let (id, active) = (&self.primary, &self.active);
        match cx.clouds.database.describe_instance(active, id).await? {
            Some(p) if p.role == DbRole::Primary => Ok(p),
            Some(_) => Err(StepFailure::state(
                format!("{id} in {active} is not a primary"),
                "reprotect runs after a failover to that region",
                id,
                active,
            )),
            None => Err(StepFailure::state(
                format!("{id} does not exist in {active}"),
                "reprotect runs after a failover to that region",
                id,
                active,
            )),
        }
    }
}

/// What a reprotect step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReprotectOutput {
    /// The replica's id.
    pub instance: String,
    /// Its region.
    pub region: String,
    /// The primary's ARN it replicates from.
    pub source: String,
    /// Set when it was a replica of the primary already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub already_protected: Option<bool>,
    /// Where the new replica was placed, when one was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<ReplicaPlacement>,
    /// The name the old primary was parked under, when it was renamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_primary_renamed_to: Option<String>,
    /// The replica's endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl StepOutput for ReprotectOutput {
    const KIND: KindName = KindName::Reprotect;
}

#[async_trait]
impl Action for Reprotect {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("database {}", self.primary);
        let primary = match self.primary(cx).await {
            Ok(p) => Finding::ok(&what, &self.active, format!("primary ({})", p.status)),
            Err(e) => Finding::blocks(&what, &self.active, "not a primary", e.to_string()),
        };
        // The region to protect is written to: it must answer.
        let other = format!("database {}", self.instance);
        let protected = match cx
            .clouds
            .database
            .describe_instance(&self.region, &self.instance)
            .await
        {
            Ok(i) => Finding::ok(
                &other,
                &self.region,
                i.map_or("absent".into(), |i| format!("{:?}", i.role).to_lowercase()),
            ),
            Err(e) => Finding::blocks(
                &other,
                &self.region,
                "does not answer",
                format!(
                    "reprotect writes to {}, which does not answer: {}",
                    self.region, e.message
                ),
            ),
        };
        vec![primary, protected]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let primary = self.primary(cx).await?;
        let id = self.instance.clone();
        let cur = cx
            .clouds
            .database
            .describe_instance(&self.region, &id)
            .await?;
        let mut out = Vec::new();
        let current = cur.as_ref().map_or("absent".to_string(), |i| {
            format!("{:?}", i.role).to_lowercase()
        });
        let done = cur.as_ref().is_some_and(|i| replica_of(i, &primary));
        if let Some(old) = cur.as_ref().filter(|_| !done) {
            out.push(Planned {
                call: "rds:ModifyDBInstance (NewDBInstanceIdentifier)".into(),
                resource: format!("{id} → {}", parked_id(&id, cx.run_id)),
                region: self.region.clone(),
                current: match old.role {
                    DbRole::Primary => "old primary".into(),
                    DbRole::Replica(_) => "replica of an old primary".into(),
                },
                desired: "renamed, data kept".into(),
                change: true,
            });
        }
        out.push(Planned {
            call: "rds:CreateDBInstanceReadReplica".into(),
            resource: id,
            region: self.region.clone(),
            current,
            desired: format!("replica of {}", primary.arn),
            change: !done,
        });
        Ok(out)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let primary = self.primary(cx).await?;
        let (id, r) = (self.instance.as_str(), self.region.as_str());
        let db = &cx.clouds.database;
        let mut out = ReprotectOutput {
            instance: id.to_string(),
            region: r.to_string(),
            source: primary.arn.clone(),
            ..ReprotectOutput::default()
        };
        let cur = db.describe_instance(r, id).await?;
        if cur.as_ref().is_some_and(|i| replica_of(i, &primary)) {
            out.already_protected = Some(true);
        } else {
            let parked = parked_id(id, cx.run_id);
            // The new replica goes where the old primary was (network, key,
            // zones, class): read it now, or, when a crash came after the
            // rename, under the name it was parked as.
            let previous = match &cur {
                Some(i) => Some(i.clone()),
                None => db.describe_instance(r, &parked).await?,
            };
            let placement = ReplicaPlacement::like(previous.as_ref(), &primary);
            out.placement = Some(placement.clone());
            // An old primary, or (three regions and more) a replica of the
            // old primary: either way not a replica of the new one, and
            // parked rather than deleted.
            if let Some(old) = cur {
                if db.describe_instance(r, &parked).await?.is_none() {
                    cx.fenced(
                        &format!("rds:ModifyDBInstance renaming {} to {parked}", old.id),
                        r,
                    )
                    .await?;
                    db.rename_instance(r, &old.id, &parked).await?;
                }
                wait_for(
                    cx,
                    &format!("{id} ({r}) to be renamed to {parked}"),
                    || async {
                        let gone = db.describe_instance(r, id).await?.is_none();
                        let there = db
                            .describe_instance(r, &parked)
                            .await?
                            .is_some_and(|i| i.is_available());
                        Ok((gone && there).then_some(()))
                    },
                )
                .await?;
                out.old_primary_renamed_to = Some(parked);
            }
            // At most once, even when an attempt's answer is lost: the
            // adapter reads the instance before it repeats a create.
            cx.fenced(&format!("rds:CreateDBInstanceReadReplica {id}"), r)
                .await?;
            db.create_replica(r, id, &primary.arn, &placement).await?;
        }
        let inst = wait_for(
            cx,
            &format!("{id} ({r}) to be an available replica of {}", primary.id),
            || async {
                Ok(db
                    .describe_instance(r, id)
                    .await?
                    .filter(|i| i.is_available() && replica_of(i, &primary)))
            },
        )
        .await?;
        out.endpoint = inst.endpoint;
        out.to_output()
    }
}
