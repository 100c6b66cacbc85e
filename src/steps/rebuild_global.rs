//! `rebuild-global`: after a failover, protect an Aurora global database
//! again: every other region's member a secondary of the cluster that now
//! writes.
//!
//! After a switchover, or a managed failover once the old writer's region
//! is back, AWS has done it: the old writer rejoined as a secondary. The
//! step finds that, and records what AWS kept of the old writer after an
//! unplanned failover (its `rds:unplanned-global-failover-...` snapshot,
//! which expires with the cluster's backup retention).
//!
//! After a detach the writer is a standalone cluster, and the global
//! cluster it left still holds the other members, the old writer among
//! them (still writable, with whatever never replicated). The step then
//! rebuilds: each old member leaves the old global cluster and is renamed
//! out of the way (`<id>-pre-<tag>`: renamed, never deleted, as `reprotect`
//! parks an old RDS primary); the empty global cluster is deleted and made
//! again, under the plan's id, from the cluster that writes; and a new,
//! headless secondary (storage replication needs no instance) takes each
//! member's id. Every stage reads first, so a re-run after a crash picks
//! up where the last one stopped; every write is fenced. Like `reprotect`,
//! it needs every region it writes to.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    parked_id, wait_for,
};
use crate::cloud::{DbCluster, GlobalCluster};
use crate::steps::graph::{Builder, Phase, RunMode};

/// Protect one global database again from its member in the active region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RebuildGlobal {
    /// Plan resource id.
    pub resource: String,
    /// The global cluster.
    pub global: String,
    /// The member that writes, in the active region.
    pub writer: String,
    /// The active region (the run's target).
    pub active: String,
    /// Every other region's member: (region, cluster id).
    pub members: Vec<(String, String)>,
}

/// What a rebuild publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RebuildGlobalOutput {
    /// The global cluster.
    pub global: String,
    /// The cluster that writes.
    pub writer: String,
    /// Set when every member was a secondary of the writer already.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub already_protected: bool,
    /// Old members renamed out of the way: `region/id -> new id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parked: Vec<String>,
    /// Set when the global cluster was made again from the writer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebuilt: bool,
    /// New secondaries made: `region/id`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<String>,
    /// Snapshots AWS kept of an old writer after an unplanned failover:
    /// `region/snapshot id` (evidence of what never replicated).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failover_snapshots: Vec<String>,
    /// What people must know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl StepOutput for RebuildGlobalOutput {
    const KIND: KindName = KindName::RebuildGlobal;
}

/// Follows a recovery; not itself undone.
pub const TRAITS: Traits = Traits {
    warnings: Some(|v| {
        RebuildGlobalOutput::read(v)
            .map(|o| o.warnings)
            .unwrap_or_default()
    }),
    time: Cost {
        calls: &[
            "rds:DescribeGlobalClusters",
            "rds:DescribeDBClusters",
            "rds:DescribeDBClusterSnapshots",
        ],
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// A reprotection protects every global database of the plan.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode != RunMode::Reprotect {
        return;
    }
    let steps: Vec<RebuildGlobal> = (b.plan.spec.global_database.iter())
        .filter_map(|d| {
            Some(RebuildGlobal {
                resource: d.id.clone(),
                global: d.global_cluster.clone(),
                writer: d.regions.get(b.target)?.clone(),
                active: b.target.to_string(),
                members: (b.plan.regions().iter())
                    .filter(|r| *r != b.target)
                    .filter_map(|r| Some((r.clone(), d.regions.get(r)?.clone())))
                    .collect(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "protect global cluster {} again from {} in {}: every other member a secondary (after a detach: old members renamed, the global cluster made again)",
            s.global, s.writer, s.active
        );
        b.add(
            StepKind::RebuildGlobal(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::GlobalDatabase),
            vec![s.resource],
            description,
        );
    }
}

/// Where a global database stands, as read: what the rebuild has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The writer writes for the global cluster and every member is a
    /// secondary of it.
    Protected,
    /// The writer writes for the global cluster; these members (region,
    /// id) are missing from it.
    Missing(Vec<(String, String)>),
    /// The writer is standalone: rebuild.
    Detached,
    /// The writer is a secondary: this is not where the plan serves.
    NotWriter,
}

/// Decides where the global database stands: pure.
pub fn standing(step: &RebuildGlobal, writer: &DbCluster, g: Option<&GlobalCluster>) -> Standing {
    let in_g = g.and_then(|g| g.member(&step.active, &step.writer));
    // Not in the global cluster: detached (standalone, or its detach still
    // settling, which the rebuild's reads wait out).
    let _ = writer;
    match in_g {
        None => Standing::Detached,
        Some(m) if !m.writer => Standing::NotWriter,
        Some(_) => {
            let missing: Vec<(String, String)> = (step.members.iter())
                .filter(|(r, id)| g.and_then(|g| g.member(r, id)).is_none())
                .cloned()
                .collect();
            if missing.is_empty() {
                Standing::Protected
            } else {
                Standing::Missing(missing)
            }
        }
    }
}

impl RebuildGlobal {
    async fn writer(&self, cx: &Cx<'_>) -> Result<DbCluster, StepFailure> {
        let (id, r) = (&self.writer, &self.active);
        match cx.clouds.aurora.describe_cluster(r, id).await? {
            Some(c) if c.is_available() => Ok(c),
            Some(c) => Err(StepFailure::state(
                format!("cluster {id} in {r} is `{}`, not available", c.status),
                "wait until it is available, then run reprotect again",
                id,
                r,
            )),
            None => Err(StepFailure::state(
                format!("cluster {id} does not exist in {r}"),
                "reprotect runs after a failover to that region",
                id,
                r,
            )),
        }
    }

    /// Records the unplanned failovers' snapshots of each other member
    /// (or of it parked), warning that they expire.
    async fn snapshots(
        &self,
        cx: &Cx<'_>,
        out: &mut RebuildGlobalOutput,
    ) -> Result<(), StepFailure> {
        for (r, id) in &self.members {
            let parked = parked_id(id, cx.run_id);
            for name in [id, &parked] {
                let snaps = cx.clouds.aurora.cluster_snapshots(r, name).await?;
                for s in snaps
                    .iter()
                    .filter(|s| s.id.starts_with("rds:unplanned-global-failover-"))
                {
                    let at = format!("{r}/{}", s.id);
                    if out.failover_snapshots.contains(&at) {
                        continue;
                    }
                    out.warnings.push(format!(
                        "snapshot {} of {name} in {r} holds what never replicated before an unplanned failover; it is an automated snapshot and expires with the cluster's backup retention: copy it (rds copy-db-cluster-snapshot) to keep it",
                        s.id
                    ));
                    out.failover_snapshots.push(at);
                }
            }
        }
        Ok(())
    }

    /// Takes member `id` in `r` out of the old global cluster and renames
    /// it out of the way (data kept).
    async fn park(
        &self,
        cx: &Cx<'_>,
        r: &str,
        id: &str,
        out: &mut RebuildGlobalOutput,
    ) -> Result<(), StepFailure> {
        let aurora = &cx.clouds.aurora;
        let parked = parked_id(id, cx.run_id);
        let Some(c) = aurora.describe_cluster(r, id).await? else {
            return Ok(());
        };
        if c.global_cluster.is_some() {
            cx.fenced(&format!("rds:RemoveFromGlobalCluster of {id}"), r)
                .await?;
            aurora.detach_cluster(r, &self.global, &c.arn).await?;
            wait_for(
                cx,
                &format!("{id} ({r}) to leave {}", self.global),
                || async {
                    Ok(aurora
                        .describe_cluster(r, id)
                        .await?
                        .filter(|c| c.global_cluster.is_none() && c.is_available())
                        .map(|_| ()))
                },
            )
            .await?;
        }
        if aurora.describe_cluster(r, &parked).await?.is_none() {
            cx.fenced(&format!("rds:ModifyDBCluster renaming {id} to {parked}"), r)
                .await?;
            aurora.rename_cluster(r, id, &parked).await?;
        }
        wait_for(
            cx,
            &format!("{id} ({r}) to be renamed to {parked}"),
            || async {
                let gone = aurora.describe_cluster(r, id).await?.is_none();
                let there = aurora
                    .describe_cluster(r, &parked)
                    .await?
                    .is_some_and(|c| c.is_available());
                Ok((gone && there).then_some(()))
            },
        )
        .await?;
        out.parked.push(format!("{r}/{id} -> {parked}"));
        out.warnings.push(format!(
            "{id} in {r} was renamed {parked}, data kept: it no longer replicates and is writable on its own; stop anything that writes to it, and delete it once what it holds is saved"
        ));
        Ok(())
    }

    /// Rebuilds after a detach: parks every old member of global cluster
    /// `g` (secondaries first: a global cluster's writer leaves last),
    /// then makes the global cluster again from `writer`.
    async fn rebuild(
        &self,
        cx: &Cx<'_>,
        writer: &DbCluster,
        g: Option<&GlobalCluster>,
        out: &mut RebuildGlobalOutput,
    ) -> Result<(), StepFailure> {
        let mut order = self.members.clone();
        if let Some(old) = g.and_then(|g| g.writer()) {
            order.sort_by_key(|(r, id)| *r == old.region && *id == old.id);
        }
        for (r, id) in &order {
            self.park(cx, r, id, out).await?;
        }
        self.remake(cx, writer, out).await
    }

    /// Makes member `id` in `r` a new, headless secondary of the global
    /// cluster, unless one is there; a standalone cluster under its id (a
    /// detach elsewhere) is parked first, like an old member, data kept.
    async fn make_secondary(
        &self,
        cx: &Cx<'_>,
        writer: &DbCluster,
        (r, id): (&str, &str),
        out: &mut RebuildGlobalOutput,
    ) -> Result<(), StepFailure> {
        let aurora = &cx.clouds.aurora;
        if let Some(c) = aurora.describe_cluster(r, id).await?
            && c.global_cluster.is_none()
        {
            self.park(cx, r, id, out).await?;
        }
        if aurora.describe_cluster(r, id).await?.is_none() {
            cx.fenced(&format!("rds:CreateDBCluster {id}"), r).await?;
            aurora
                .create_secondary(r, id, &self.global, &writer.engine)
                .await?;
            out.created.push(format!("{r}/{id}"));
        }
        Ok(())
    }

    /// Waits until the writer writes for the global cluster and every
    /// other member is an available secondary of it.
    async fn until_protected(&self, cx: &Cx<'_>) -> Result<(), StepFailure> {
        let aurora = &cx.clouds.aurora;
        let (a, gid) = (self.active.as_str(), self.global.as_str());
        wait_for(
            cx,
            &format!(
                "every member of {gid} to be an available secondary of {}",
                self.writer
            ),
            || async {
                let Some(g) = aurora.describe_global(a, gid).await? else {
                    return Ok(None);
                };
                for (r, id) in &self.members {
                    let ok = g.member(r, id).is_some_and(|m| !m.writer)
                        && aurora
                            .describe_cluster(r, id)
                            .await?
                            .is_some_and(|c| c.is_available());
                    if !ok {
                        return Ok(None);
                    }
                }
                Ok(g.member(a, &self.writer)
                    .is_some_and(|m| m.writer)
                    .then_some(()))
            },
        )
        .await
    }

    /// Makes the global cluster again from the writer (after deleting the
    /// old one, empty by now).
    async fn remake(
        &self,
        cx: &Cx<'_>,
        writer: &DbCluster,
        out: &mut RebuildGlobalOutput,
    ) -> Result<(), StepFailure> {
        let (a, g) = (self.active.as_str(), self.global.as_str());
        let aurora = &cx.clouds.aurora;
        if let Some(old) = aurora.describe_global(a, g).await? {
            if old.member(a, &self.writer).is_some_and(|m| m.writer) {
                return Ok(());
            }
            if !old.members.is_empty() {
                let left: Vec<String> = (old.members.iter())
                    .map(|m| format!("{}/{}", m.region, m.id))
                    .collect();
                return Err(StepFailure::state(
                    format!(
                        "global cluster {g} still has members the plan does not name: {}",
                        left.join(", ")
                    ),
                    "remove them from the global cluster (or name them in the plan), then run reprotect again",
                    g,
                    a,
                ));
            }
            cx.fenced(&format!("rds:DeleteGlobalCluster {g}"), a)
                .await?;
            aurora.delete_global(a, g).await?;
        }
        cx.fenced(&format!("rds:CreateGlobalCluster {g}"), a)
            .await?;
        aurora.create_global(a, g, &writer.arn).await?;
        out.rebuilt = true;
        Ok(())
    }
}

#[async_trait]
impl Action for RebuildGlobal {
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let mut out = Vec::new();
        let what = format!("aurora cluster {}", self.writer);
        out.push(match self.writer(cx).await {
            Ok(c) => Finding::ok(
                &what,
                &self.active,
                format!(
                    "available ({})",
                    c.global_cluster.as_deref().unwrap_or("standalone")
                ),
            ),
            Err(e) => Finding::blocks(&what, &self.active, "not usable", e.to_string()),
        });
        // The regions it protects are written to: they must answer.
        for (r, id) in &self.members {
            let what = format!("aurora cluster {id}");
            out.push(match cx.clouds.aurora.describe_cluster(r, id).await {
                Ok(c) => Finding::ok(&what, r, c.map_or("absent".into(), |c| c.status)),
                Err(e) => Finding::blocks(
                    &what,
                    r,
                    "does not answer",
                    format!(
                        "reprotect writes to {r}, which does not answer: {}",
                        e.message
                    ),
                ),
            });
        }
        out
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let writer = self.writer(cx).await?;
        let g = cx
            .clouds
            .aurora
            .describe_global(&self.active, &self.global)
            .await?;
        let st = standing(self, &writer, g.as_ref());
        let (desired, change) = match &st {
            Standing::Protected => ("protected already".to_string(), false),
            Standing::NotWriter => ("refused: not the writer".to_string(), false),
            Standing::Missing(m) => (format!("{} secondaries to make", m.len()), true),
            Standing::Detached => (
                "old members renamed, the global cluster made again, new secondaries".to_string(),
                true,
            ),
        };
        Ok(vec![Planned {
            call: "rds:CreateGlobalCluster, rds:CreateDBCluster".into(),
            resource: self.global.clone(),
            region: self.active.clone(),
            current: format!("{st:?}").to_lowercase(),
            desired,
            change,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let writer = self.writer(cx).await?;
        let aurora = &cx.clouds.aurora;
        let mut out = RebuildGlobalOutput {
            global: self.global.clone(),
            writer: self.writer.clone(),
            ..RebuildGlobalOutput::default()
        };
        let g = aurora.describe_global(&self.active, &self.global).await?;
        let missing = match standing(self, &writer, g.as_ref()) {
            Standing::Protected => {
                out.already_protected = true;
                self.snapshots(cx, &mut out).await?;
                return out.to_output();
            }
            Standing::NotWriter => {
                return Err(StepFailure::state(
                    format!(
                        "{} in {} is a secondary of {}, not its writer",
                        self.writer, self.active, self.global
                    ),
                    "reprotect runs from the region the plan serves from (drctl status)",
                    &self.writer,
                    &self.active,
                ));
            }
            Standing::Missing(m) => m,
            Standing::Detached => {
                self.rebuild(cx, &writer, g.as_ref(), &mut out).await?;
                self.members.clone()
            }
        };
        for (r, id) in &missing {
            self.make_secondary(cx, &writer, (r, id), &mut out).await?;
        }
        self.until_protected(cx).await?;
        self.snapshots(cx, &mut out).await?;
        out.to_output()
    }
}

#[cfg(test)]
mod tests;
