//! Compiles a plan, a target region and a run mode into the graph of steps
//! a run executes.
//!
//! The graph is data, not code: the same compiled graph is printed by
//! `drctl plan graph` (DOT or Mermaid), described by `drctl plan show`,
//! journaled at the start of a run (and compared again on resume), and (in
//! the engine) executed with bounded concurrency. Keeping compilation
//! separate from execution means what people review is what runs.
//!
//! Which steps exist is each step kind's own knowledge: every step kind's
//! module in [`crate::steps`] has a `compile` function that adds its steps
//! to a [`Builder`], each in a [`Phase`]. The builder then derives the
//! edges, so no kind needs to know about another:
//!
//! * a step waits for every step of its plan in the nearest earlier phase
//!   that has any (preflight → raise/promote/restore → checks → traffic
//!   switch → its verification → evidence);
//! * explicit `after` entries in the plan add edges between the steps of the
//!   resources they name.
//!
//! Shape for a failover to region R:
//! ```text
//! preflight ─┬─ raise <group> in R ─────┬─ check <probe> in R ─ switch-dns <zone> ─ verify-dns <zone> ─ evidence
//!            └─ promote <db> in R ──────┘
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::plan::Plan;
pub use crate::steps::{KindName, StepId, StepKind};

pub use crate::journal::{DrillDepth, RunMode};

/// Where a step sits in a run: a step waits for the nearest earlier phase
/// of its plan that has steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Checks before anything changes.
    Preflight,
    /// Bring the target's capacity and data up (raise, promote, restore...).
    Prepare,
    /// Probe what will serve.
    Check,
    /// Move traffic.
    Switch,
    /// Read back what moved.
    Verify,
    /// Keep evidence.
    Evidence,
}

impl Phase {
    /// The phase of a resource's steps: its kind's stage in the order every
    /// failover follows (`plan::spec::Stage`), so that the graph and the
    /// plan's validation cannot disagree on it.
    pub fn of(kind: crate::plan::spec::ResourceKind) -> Phase {
        use crate::plan::spec::Stage;
        match kind.stage() {
            Some(Stage::Ready) => Phase::Prepare,
            Some(Stage::Probe) => Phase::Check,
            Some(Stage::Traffic) => Phase::Switch,
            None => Phase::Verify,
        }
    }
}

/// One node of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Unique id, stable across runs: `<plan>/<kind>:<subject>`.
    pub id: StepId,
    /// Plan this step belongs to.
    pub plan: String,
    /// What it does, with its parameters.
    #[serde(flatten)]
    pub kind: StepKind,
    /// Where it sits.
    pub phase: Phase,
    /// Plan resource ids this step acts on.
    pub resources: Vec<String>,
    /// Indexes of steps that must finish first.
    pub deps: Vec<usize>,
    /// One line for people.
    pub description: String,
}

/// A compiled graph.
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
        /// The plan's resources `restore` takes (its data kinds' whose
        /// copies are restored to a point in time).
        known: String,
    },
}

/// Collects the steps the kinds add for one plan, target and mode.
pub struct Builder<'p> {
    /// The plan.
    pub plan: &'p Plan,
    /// Target region.
    pub target: &'p str,
    /// The run mode.
    pub mode: &'p RunMode,
    steps: Vec<Step>,
}

impl<'p> Builder<'p> {
    /// Adds a step of `kind` acting on `resources`; `subject` names it
    /// within its kind (`None` for one-per-plan kinds).
    pub fn add(
        &mut self,
        kind: StepKind,
        subject: Option<String>,
        phase: Phase,
        resources: Vec<String>,
        description: String,
    ) {
        self.steps.push(Step {
            id: StepId::new(self.plan.name(), kind.name(), subject),
            plan: self.plan.name().to_string(),
            kind,
            phase,
            resources,
            deps: Vec::new(),
            description,
        });
    }

    /// Adds one step per resource, each of `steps` with its description:
    /// `of` names the resource and its kind, the step's subject and the
    /// resource it acts on, its phase its kind's (a per-resource step of a
    /// role: a raise, a promotion, a restore, a drill copy, a
    /// reprotection).
    pub fn add_each<S>(
        &mut self,
        steps: Vec<(S, String)>,
        kind: impl Fn(S) -> StepKind,
        of: impl Fn(&S) -> (String, crate::plan::spec::ResourceKind),
    ) {
        self.add_all(steps, kind, |s| {
            let (id, resource_kind) = of(s);
            (id.clone(), vec![id], Phase::of(resource_kind))
        });
    }

    /// Adds each of `steps` with its description: `of` says its subject,
    /// the resources it acts on and its phase (a step per zone: a switch,
    /// a drill's records).
    pub fn add_all<S>(
        &mut self,
        steps: Vec<(S, String)>,
        kind: impl Fn(S) -> StepKind,
        of: impl Fn(&S) -> (String, Vec<String>, Phase),
    ) {
        for (s, description) in steps {
            let (subject, resources, phase) = of(&s);
            self.add(kind(s), Some(subject), phase, resources, description);
        }
    }

    /// The steps added so far.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Orders the steps by phase and derives the edges.
    fn finish(self) -> Vec<Step> {
        let mut steps = self.steps;
        steps.sort_by_key(|s| s.phase);
        let phases: Vec<Phase> = steps.iter().map(|s| s.phase).collect();
        for i in 0..steps.len() {
            let earlier = phases[..i].iter().rev().find(|p| **p < phases[i]).copied();
            steps[i].deps = match earlier {
                Some(e) => (0..i).filter(|j| phases[*j] == e).collect(),
                None => Vec::new(),
            };
        }
        // Explicit `after` edges between resources' steps.
        let mut by_resource: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, s) in steps.iter().enumerate() {
            for r in &s.resources {
                by_resource.entry(r.as_str()).or_default().push(i);
            }
        }
        let mut extra: Vec<(usize, usize)> = Vec::new();
        for r in self.plan.spec.resources() {
            let (Some(from), false) = (by_resource.get(r.id), r.after.is_empty()) else {
                continue;
            };
            for dep in r.after {
                let to_steps = by_resource.get(dep.as_str()).map_or(&[][..], Vec::as_slice);
                // Two resources one step moves together (two data-plane
                // records of one `switch-control` and `verify-resolution`,
                // whatever their kinds) have no order between them: an
                // edge from one of those steps to another would wait on
                // itself through the phases.
                if from.iter().any(|f| to_steps.contains(f)) {
                    continue;
                }
                for &to in to_steps {
                    for &f in from {
                        if to != f {
                            extra.push((f, to));
                        }
                    }
                }
            }
        }
        for (f, to) in extra {
            steps[f].deps.push(to);
        }
        for s in &mut steps {
            s.deps.sort_unstable();
            s.deps.dedup();
        }
        steps
    }
}

/// Compiles the run of `plan` to `target` in `mode`.
pub fn compile_mode(plan: &Plan, target: &str, mode: &RunMode) -> Result<Graph, GraphError> {
    if !plan.regions().iter().any(|r| r == target) {
        return Err(GraphError::UnknownRegion {
            plan: plan.name().into(),
            region: target.into(),
            regions: plan.regions().join(", "),
        });
    }
    if let RunMode::Restore { database, .. } = mode {
        // What `drctl restore` takes: a resource of a kind whose data role
        // restores (an RDS `[[database]]`, a `[[cloud_sql]]`).
        let restorable: Vec<&str> = (crate::plan::kinds::each(&plan.spec).into_iter())
            .filter(|r| r.kind().restoring().is_some())
            .map(|r| r.id())
            .collect();
        if !restorable.contains(&database.as_str()) {
            return Err(GraphError::UnknownDatabase {
                plan: plan.name().into(),
                database: database.clone(),
                known: restorable.join(", "),
            });
        }
    }
    let mut b = Builder {
        plan,
        target,
        mode,
        steps: Vec::new(),
    };
    crate::steps::compile_kinds(&mut b);
    Ok(Graph {
        target: target.to_string(),
        steps: b.finish(),
    })
}

/// Compiles the failover of `plan` to `target`.
pub fn compile(plan: &Plan, target: &str) -> Result<Graph, GraphError> {
    compile_mode(plan, target, &RunMode::Failover { planned: false })
}

/// Compiles a point-in-time restore of database resource `database` in
/// `region` (the region it serves from now): restore into a new instance,
/// then repoint the plan's records that follow it, verify, keep evidence.
pub fn compile_restore(
    plan: &Plan,
    database: &str,
    region: &str,
    to_time: Option<DateTime<Utc>>,
) -> Result<Graph, GraphError> {
    let mode = RunMode::Restore {
        database: database.to_string(),
        to_time,
    };
    compile_mode(plan, region, &mode)
}

/// Compiles a reprotection: with the plan served from `active`, make each
/// database's instance in every other region a read replica of the active
/// primary again (the old primary is renamed out of the way, not deleted).
pub fn compile_reprotect(plan: &Plan, active: &str) -> Result<Graph, GraphError> {
    compile_mode(plan, active, &RunMode::Reprotect)
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
                escape(&s.id.to_string()),
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
                s.id.to_string().replace('"', "#quot;"),
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

    /// Whether every step can run: each waits only on steps that can
    /// (Kahn's order over the dependencies).
    fn acyclic(steps: &[Step]) -> bool {
        let mut done = vec![false; steps.len()];
        loop {
            let ready: Vec<usize> = (0..steps.len())
                .filter(|&i| !done[i] && steps[i].deps.iter().all(|&d| done[d]))
                .collect();
            if ready.is_empty() {
                return done.iter().all(|d| *d);
            }
            for i in ready {
                done[i] = true;
            }
        }
    }

    /// Regression: two data-plane records one `switch-control` and one
    /// `verify-resolution` move together, one `after` the other, made the
    /// switch wait on the verification that waits on the switch: neither
    /// ran (the merge of the traffic kinds' steps made it reachable across
    /// Route 53 and Cloud DNS). An `after` between resources of one step
    /// now adds no edge; the graph has an order.
    #[test]
    fn regression_an_after_between_records_of_one_switch_waited_on_itself() {
        let mut plan = (crate::plan::reference().into_iter())
            .find(|p| p.name() == "checkout")
            .expect("checkout");
        let first = plan.spec.dns[0].clone();
        let mut second = first.clone();
        second.id = format!("{}-2", first.id);
        second.name = format!("two.{}", first.name);
        second.after = vec![first.id.clone()];
        plan.spec.dns.push(second);
        let g = compile(&plan, "us-west-2").expect("graph");
        assert!(acyclic(&g.steps), "{:#?}", g.steps);
        let switch = (g.steps.iter())
            .find(|s| s.id.to_string() == "checkout/switch-control")
            .expect("the switch");
        assert_eq!(switch.resources.len(), 2, "{switch:?}");
    }

    fn reference(name: &str) -> Plan {
        let loaded = crate::plan::load(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans")]);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.plan(name).unwrap().clone()
    }

    #[test]
    fn payments_failover_has_the_documented_shape() {
        let g = compile(&reference("payments"), "us-east-1").unwrap();
        let ids: Vec<String> = g.steps.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "payments/preflight",
                "payments/raise:payments-api",
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
            StepKind::SwitchDns(s) => {
                assert_eq!(s.records, ["api.example.com.", "payments-db.example.com."])
            }
            k => panic!("unexpected {k:?}"),
        }
        assert!(g.to_dot().contains("s1 -> s3;"));
        assert!(g.to_mermaid().contains("s2 --> s3"));
    }

    #[test]
    fn restore_graph_restores_one_database_and_repoints_its_record() {
        let g = compile_restore(&reference("payments"), "payments-db", "us-west-2", None).unwrap();
        let ids: Vec<String> = g.steps.iter().map(|s| s.id.to_string()).collect();
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
            StepKind::SwitchDns(s) => assert_eq!(s.records, ["payments-db.example.com."]),
            k => panic!("unexpected {k:?}"),
        }
        assert_eq!(g.steps[2].deps, [1]);
        assert!(compile_restore(&reference("payments"), "nope", "us-west-2", None).is_err());
    }

    #[test]
    fn reprotect_graph_protects_every_other_region() {
        let g = compile_reprotect(&reference("payments"), "us-east-1").unwrap();
        let ids: Vec<String> = g.steps.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "payments/preflight",
                "payments/reprotect:payments-db",
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
