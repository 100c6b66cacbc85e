//! Compiles a plan and a target region into the graph of steps a failover runs.
//!
//! The graph is data, not code: the same compiled graph is printed by
//! `drctl plan graph` (DOT or Mermaid), described by `drctl plan show`, and
//! (in the engine) executed with bounded concurrency. Keeping compilation
//! separate from execution means what people review is what runs.
//!
//! Shape for a failover to region R:
//! ```text
//! preflight ─┬─ scale <group> in R ─────┬─ check <probe> in R ─ switch-dns <zone> ─ verify-dns <zone> ─ evidence
//!            └─ promote <db> in R ──────┘
//! ```
//! DNS changes of one plan are grouped per hosted zone (one atomic change
//! batch each). Explicit `after` entries in the plan add edges between the
//! steps of the resources they name.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::Plan;
use crate::plan::spec::{DbStrategy, SwitchMode};

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum StepKind {
    /// Check the target exists, replica lag vs RPO, capacity, lock, approval.
    Preflight,
    /// Set a compute group to its active capacity.
    Scale {
        /// Group name in the target region.
        group: String,
    },
    /// Promote the target region's read replica.
    Promote {
        /// Instance id in the target region.
        instance: String,
    },
    /// Restore the target region's instance to a point in time.
    Restore {
        /// Source instance id in the target region.
        instance: String,
        /// Restore point; `None` = the latest restorable time.
        to_time: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Make the instance in `region` a read replica of the active primary again.
    Reprotect {
        /// Instance id in `region`.
        instance: String,
        /// Region to protect.
        region: String,
    },
    /// Probe an HTTP health check.
    Check {
        /// URL in the target region.
        url: String,
    },
    /// Submit one change batch for a hosted zone.
    SwitchDns {
        /// Zone name.
        zone: String,
        /// Record names changed.
        records: Vec<String>,
    },
    /// Wait for the batch to be INSYNC and read the records back.
    VerifyDns {
        /// Zone name.
        zone: String,
    },
    /// Capture before/after state, the journal and a manifest.
    Evidence,
}

/// One node of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Unique id, stable across runs: `<plan>/<kind>:<subject>`.
    pub id: String,
    /// Plan this step belongs to.
    pub plan: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
    /// Plan resource ids this step acts on.
    pub resources: Vec<String>,
    /// Indexes of steps that must finish first.
    pub deps: Vec<usize>,
    /// One line for people.
    pub description: String,
}

/// A compiled failover graph.
#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    /// Target region.
    pub target: String,
    /// Steps in a topological order.
    pub steps: Vec<Step>,
}

/// Why a graph cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The target is not one of the plan's regions.
    #[error("plan `{plan}` has no region `{region}`\n  hint: its regions are {regions}")]
    UnknownRegion {
        /// Plan.
        plan: String,
        /// Requested region.
        region: String,
        /// The plan's regions.
        regions: String,
    },
    /// The database is not in the plan.
    #[error("plan `{plan}` has no database `{database}`\n  hint: its databases are {known}")]
    UnknownDatabase {
        /// Plan.
        plan: String,
        /// Requested database.
        database: String,
        /// The plan's databases.
        known: String,
    },
}

/// Compiles the failover of `plan` to `target`.
pub fn compile(plan: &Plan, target: &str) -> Result<Graph, GraphError> {
    let spec = &plan.spec;
    if !plan.regions().iter().any(|r| r == target) {
        return Err(GraphError::UnknownRegion {
            plan: plan.name().into(),
            region: target.into(),
            regions: plan.regions().join(", "),
        });
    }
    let name = plan.name();
    let mut steps: Vec<Step> = Vec::new();
    let mut by_resource: BTreeMap<&str, usize> = BTreeMap::new();
    let push = |steps: &mut Vec<Step>,
                id: String,
                kind: StepKind,
                resources: Vec<String>,
                deps: Vec<usize>,
                description: String| {
        steps.push(Step {
            id: format!("{name}/{id}"),
            plan: name.to_string(),
            kind,
            resources,
            deps,
            description,
        });
        steps.len() - 1
    };

    let pre = push(
        &mut steps,
        "preflight".into(),
        StepKind::Preflight,
        vec![],
        vec![],
        format!(
            "check {target} is ready: resources exist, replica lag within RPO {}, approval",
            crate::plan::duration::Human(plan.tier.rpo)
        ),
    );

    let mut ready_steps = Vec::new();
    for g in &spec.compute {
        let group = g.regions[target].clone();
        let i = push(
            &mut steps,
            format!("scale:{}", g.id),
            StepKind::Scale {
                group: group.clone(),
            },
            vec![g.id.clone()],
            vec![pre],
            format!(
                "scale {group} in {target} to {}/{}/{} (min/desired/max)",
                g.active.min, g.active.desired, g.active.max
            ),
        );
        by_resource.insert(&g.id, i);
        ready_steps.push(i);
    }
    for d in &spec.database {
        let instance = d.regions[target].clone();
        let (kind, what) = match d.strategy {
            DbStrategy::PromoteReplica => (
                StepKind::Promote {
                    instance: instance.clone(),
                },
                format!(
                    "promote read replica {instance} in {target} to primary (cannot be undone)"
                ),
            ),
            DbStrategy::PointInTimeRestore => (
                StepKind::Restore {
                    instance: instance.clone(),
                    to_time: None,
                },
                format!("restore {instance} in {target} to a point in time, into a new instance"),
            ),
        };
        let i = push(
            &mut steps,
            format!(
                "{}:{}",
                if matches!(kind, StepKind::Promote { .. }) {
                    "promote"
                } else {
                    "restore"
                },
                d.id
            ),
            kind,
            vec![d.id.clone()],
            vec![pre],
            what,
        );
        by_resource.insert(&d.id, i);
        ready_steps.push(i);
    }
    let mut check_steps = Vec::new();
    for c in &spec.check {
        let url = c.regions[target].clone();
        let i = push(
            &mut steps,
            format!("check:{}", c.id),
            StepKind::Check { url: url.clone() },
            vec![c.id.clone()],
            if ready_steps.is_empty() {
                vec![pre]
            } else {
                ready_steps.clone()
            },
            format!("probe {url}, expect HTTP {}", c.expect_status),
        );
        by_resource.insert(&c.id, i);
        check_steps.push(i);
    }

    // DNS: one switch + verify per hosted zone.
    let mut zones: BTreeMap<String, Vec<&crate::plan::spec::DnsSpec>> = BTreeMap::new();
    for d in &spec.dns {
        zones
            .entry(d.zone.to_ascii_lowercase())
            .or_default()
            .push(d);
    }
    let mut verify_steps = Vec::new();
    for (zone, records) in &zones {
        let mut deps: Vec<usize> = ready_steps.iter().chain(&check_steps).copied().collect();
        if deps.is_empty() {
            deps.push(pre);
        }
        let changes: Vec<String> = records
            .iter()
            .map(|d| match (&d.follows, d.switch) {
                (Some(db), _) => format!("{} → endpoint of {db} in {target}", d.name),
                (None, SwitchMode::Upsert) => format!("{} → {}", d.name, d.targets[target]),
                (None, SwitchMode::Weighted) => {
                    format!("{} weights: {target}=100, others 0", d.name)
                }
            })
            .collect();
        let sw = push(
            &mut steps,
            format!("switch-dns:{zone}"),
            StepKind::SwitchDns {
                zone: zone.clone(),
                records: records.iter().map(|d| d.name.clone()).collect(),
            },
            records.iter().map(|d| d.id.clone()).collect(),
            deps,
            format!("one change batch in {zone}: {}", changes.join("; ")),
        );
        for d in records {
            by_resource.insert(&d.id, sw);
        }
        let v = push(
            &mut steps,
            format!("verify-dns:{zone}"),
            StepKind::VerifyDns { zone: zone.clone() },
            records.iter().map(|d| d.id.clone()).collect(),
            vec![sw],
            format!("wait for INSYNC in {zone} and read the records back"),
        );
        verify_steps.push(v);
    }
    let mut ev_deps = verify_steps.clone();
    if ev_deps.is_empty() {
        ev_deps = (1..steps.len()).collect();
    }
    if ev_deps.is_empty() {
        ev_deps.push(pre);
    }
    push(
        &mut steps,
        "evidence".into(),
        StepKind::Evidence,
        vec![],
        ev_deps,
        "store before/after state, the journal and a manifest".into(),
    );

    // Explicit `after` edges between resources' steps.
    for r in spec.resources() {
        let Some(&from) = by_resource.get(r.id) else {
            continue;
        };
        for dep in r.after {
            if let Some(&to) = by_resource.get(dep.as_str())
                && to != from
                && !steps[from].deps.contains(&to)
            {
                steps[from].deps.push(to);
            }
        }
    }
    for s in &mut steps {
        s.deps.sort_unstable();
        s.deps.dedup();
    }
    Ok(Graph {
        target: target.to_string(),
        steps,
    })
}

/// Compiles a point-in-time restore of database resource `database` in
/// `region` (the region it serves from now): restore into a new instance,
/// then repoint the plan's records that follow it, verify, keep evidence.
pub fn compile_restore(
    plan: &Plan,
    database: &str,
    region: &str,
    to_time: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Graph, GraphError> {
    let mut g = compile(plan, region)?;
    let Some(d) = plan.spec.database(database) else {
        return Err(GraphError::UnknownDatabase {
            plan: plan.name().into(),
            database: database.into(),
            known: plan
                .spec
                .database
                .iter()
                .map(|d| d.id.clone())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let instance = d.regions[region].clone();
    let when = to_time.map_or("the latest restorable time".to_string(), |t| t.to_rfc3339());
    // Keep preflight, the restore of this database, DNS records that follow it, evidence.
    let keep_dns: Vec<String> = plan
        .spec
        .dns
        .iter()
        .filter(|r| r.follows.as_deref() == Some(database))
        .map(|r| r.id.clone())
        .collect();
    let mut steps = Vec::new();
    let mut map = BTreeMap::new();
    for (i, s) in g.steps.iter().enumerate() {
        let keep = match &s.kind {
            StepKind::Preflight | StepKind::Evidence => true,
            StepKind::Promote { .. } | StepKind::Restore { .. } => {
                s.resources.iter().any(|r| r == database)
            }
            StepKind::SwitchDns { .. } | StepKind::VerifyDns { .. } => {
                s.resources.iter().any(|r| keep_dns.contains(r))
            }
            _ => false,
        };
        if keep {
            map.insert(i, steps.len());
            steps.push(s.clone());
        }
    }
    for s in &mut steps {
        if s.resources.iter().any(|r| r == database)
            && matches!(s.kind, StepKind::Promote { .. } | StepKind::Restore { .. })
        {
            s.id = format!("{}/restore:{database}", plan.name());
            s.kind = StepKind::Restore {
                instance: instance.clone(),
                to_time,
            };
            s.description =
                format!("restore {instance} in {region} to {when}, into a new instance");
        }
        if let StepKind::SwitchDns { records, zone } = &mut s.kind {
            records.retain(|name| {
                plan.spec
                    .dns
                    .iter()
                    .any(|r| &r.name == name && keep_dns.contains(&r.id))
            });
            s.description = format!(
                "one change batch in {zone}: {} → endpoint of the restored instance",
                records.join(", ")
            );
        }
        s.deps = s.deps.iter().filter_map(|d| map.get(d).copied()).collect();
    }
    // Anything left without a dependency (other than preflight) waits for the previous kept step.
    for (i, s) in steps.iter_mut().enumerate().skip(1) {
        if s.deps.is_empty() {
            s.deps.push(i - 1);
        }
    }
    g.steps = steps;
    Ok(g)
}

/// Compiles a reprotection: with the plan served from `active`, make each
/// database's instance in every other region a read replica of the active
/// primary again (the old primary is renamed out of the way, not deleted).
pub fn compile_reprotect(plan: &Plan, active: &str) -> Result<Graph, GraphError> {
    let mut g = compile(plan, active)?;
    let pre = g.steps.remove(0);
    let ev = g.steps.pop().expect("every graph ends with evidence");
    let mut steps = vec![pre];
    for d in &plan.spec.database {
        for region in plan.regions().iter().filter(|r| *r != active) {
            let instance = d.regions[region].clone();
            steps.push(Step {
                id: format!("{}/reprotect:{}@{region}", plan.name(), d.id),
                plan: plan.name().into(),
                kind: StepKind::Reprotect { instance: instance.clone(), region: region.clone() },
                resources: vec![d.id.clone()],
                deps: vec![0],
                description: format!("make {instance} in {region} a read replica of {} in {active} (an old primary is renamed, not deleted)", d.regions[active]),
            });
        }
    }
    let n = steps.len();
    steps.push(Step {
        deps: (1..n)
            .collect::<Vec<_>>()
            .into_iter()
            .chain((n == 1).then_some(0))
            .collect(),
        ..ev
    });
    g.steps = steps;
    Ok(g)
}

impl Graph {
    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph failover {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
        );
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "  s{i} [label=\"{}\\n{}\"];",
                escape(&s.id),
                escape(&s.description)
            );
        }
        for (i, s) in self.steps.iter().enumerate() {
            for d in &s.deps {
                let _ = writeln!(out, "  s{d} -> s{i};");
            }
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "  s{i}[\"{}<br/>{}\"]",
                s.id.replace('"', "#quot;"),
                s.description.replace('"', "#quot;")
            );
        }
        for (i, s) in self.steps.iter().enumerate() {
            for d in &s.deps {
                let _ = writeln!(out, "  s{d} --> s{i}");
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn reference(name: &str) -> Plan {
        let loaded = crate::plan::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans")]);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.plan(name).unwrap().clone()
    }

    #[test]
    fn payments_failover_has_the_documented_shape() {
        let g = compile(&reference("payments"), "us-east-1").unwrap();
        let ids: Vec<&str> = g.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "payments/preflight",
                "payments/scale:payments-api",
                "payments/promote:payments-db",
                "payments/switch-dns:example.com.",
                "payments/verify-dns:example.com.",
                "payments/evidence"
            ]
        );
        // Scale and promote are independent; DNS waits for both.
        assert_eq!(g.steps[1].deps, [0]);
        assert_eq!(g.steps[2].deps, [0]);
        assert_eq!(g.steps[3].deps, [1, 2]);
        assert_eq!(g.steps[5].deps, [4]);
        match &g.steps[3].kind {
            StepKind::SwitchDns { records, .. } => {
                assert_eq!(records, &["api.example.com.", "payments-db.example.com."])
            }
            k => panic!("unexpected {k:?}"),
        }
        assert!(g.to_dot().contains("s1 -> s3;"));
        assert!(g.to_mermaid().contains("s2 --> s3"));
    }

    #[test]
    fn restore_graph_restores_one_database_and_repoints_its_record() {
        let g = compile_restore(&reference("payments"), "payments-db", "us-west-2", None).unwrap();
        let ids: Vec<&str> = g.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "payments/preflight",
                "payments/restore:payments-db",
                "payments/switch-dns:example.com.",
                "payments/verify-dns:example.com.",
                "payments/evidence"
            ]
        );
        match &g.steps[2].kind {
            StepKind::SwitchDns { records, .. } => {
                assert_eq!(records, &["payments-db.example.com."])
            }
            k => panic!("unexpected {k:?}"),
        }
        assert_eq!(g.steps[2].deps, [1]);
        assert!(compile_restore(&reference("payments"), "nope", "us-west-2", None).is_err());
    }

    #[test]
    fn reprotect_graph_protects_every_other_region() {
        let g = compile_reprotect(&reference("payments"), "us-east-1").unwrap();
        let ids: Vec<&str> = g.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "payments/preflight",
                "payments/reprotect:payments-db@us-west-2",
                "payments/evidence"
            ]
        );
        assert_eq!(g.steps[2].deps, [1]);
    }

    #[test]
    fn unknown_target_region_is_refused() {
        let e = compile(&reference("ledger"), "eu-west-1").unwrap_err();
        assert!(e.to_string().contains("us-west-2, us-east-1"));
    }
}
