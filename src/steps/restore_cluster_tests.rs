//! The generic `restore` step on a cluster's backup standby
//! (`[[backup_cluster]]`, the reference `archive` plan's ledger): a
//! failover restores the newest cluster snapshot copied to the target
//! into the plan's name there, then adds its writer, each once, with the
//! home region down; a lost answer, a process gone between the two calls,
//! a region that lacks what a restore needs and names in the way, each
//! tried.

use std::collections::BTreeMap;

use super::restore::Restore;
use super::restore_backups_tests::{RUN, TARGET, archive, run, world};
use super::{Action, Cx, StepKind};
use crate::cloud::fake::FakeCloud;
use crate::cloud::metered::{Effect, Injection, Metered};
use crate::cloud::{Clouds, ErrorKind, RestoreNeed};
use crate::plan::Plan;
use crate::plan::kinds::restoring::RESTORED_BY_TAG;

const LEDGER: &str = "archive-ledger";
/// The writer this run's restore adds: named after the run.
const WRITER: &str = "archive-ledger-writer-r3cevih";

/// The failover's restore step of the ledger, and the graph.
fn step(plan: &Plan) -> (Restore, Vec<crate::steps::graph::Step>) {
    let g = crate::steps::graph::compile(plan, TARGET).unwrap();
    let s = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::Restore(r) if r.resource == LEDGER => Some(r.clone()),
            _ => None,
        })
        .expect("the ledger's restore step");
    (s, g.steps)
}

/// What the ledger's region asks of its restore's preflight.
async fn problems(clouds: &Clouds, plan: &Plan, s: &Restore) -> Vec<String> {
    let (_, graph) = step(plan);
    let outputs = BTreeMap::new();
    let cx = Cx {
        run_id: RUN,
        ..Cx::for_test(clouds, plan, TARGET, &outputs, &graph)
    };
    (s.preflight(&cx).await.into_iter())
        .filter_map(|f| f.problem)
        .collect()
}

fn snapshot_time(f: &FakeCloud) -> chrono::DateTime<chrono::Utc> {
    let s = f.state();
    let all = &s.restorables[&(TARGET.to_string(), LEDGER.to_string())];
    all.iter().filter_map(|r| r.latest).max().unwrap()
}

#[tokio::test]
async fn a_cluster_standby_fails_over_by_restoring_its_newest_snapshot_then_its_writer() {
    let plan = archive();
    let f = world(&plan);
    let (s, _) = step(&plan);
    assert_eq!((s.instance.as_str(), s.region.as_str()), (LEDGER, TARGET));
    assert_eq!(s.placement.from, [LEDGER]);
    let clouds = f.clouds();
    let taken = snapshot_time(&f);
    let out = run(&clouds, &plan, &s).await.expect("restored");
    assert_eq!(
        (out.instance.as_str(), out.already_existed),
        (LEDGER, false)
    );
    assert_eq!(out.restore_point, Some(taken), "the snapshot's own time");
    assert!(out.restore_point_source.contains("newest cluster snapshot"));
    assert!(
        (out.endpoint.as_deref()).is_some_and(|e| e.starts_with("archive-ledger.cluster-")),
        "the cluster's writer endpoint: {out:?}"
    );
    {
        let st = f.state();
        let (from, _, place) = &st.restored_from[&(TARGET.to_string(), LEDGER.to_string())];
        assert_eq!(from, "archive-ledger-nightly");
        assert_eq!(place.subnet_group.as_deref(), Some("archive-private-use1"));
        assert_eq!(
            place.cluster_parameter_group.as_deref(),
            Some("archive-apg16")
        );
        assert_eq!(
            st.writes,
            [
                "RestoreDBClusterFromSnapshot archive-ledger",
                "CreateDBInstance archive-ledger-writer-r3cevih"
            ]
        );
        let w = &st.databases[&(TARGET.to_string(), WRITER.to_string())];
        assert_eq!(w.instance_class.as_deref(), Some("db.r6g.large"));
        assert_eq!(w.tags.get(RESTORED_BY_TAG).map(String::as_str), Some(RUN));
        assert_eq!(
            st.cluster_instances[&(TARGET.to_string(), WRITER.to_string())],
            LEDGER
        );
    }
    // A re-run (a resume, from any machine) finds both and sends nothing;
    // the point is the one the restore marked on the cluster.
    let again = run(&clouds, &plan, &s).await.expect("found");
    assert!(again.already_existed);
    let whole = |t: chrono::DateTime<chrono::Utc>| t.timestamp();
    assert_eq!(again.restore_point.map(whole), Some(whole(taken)));
    assert_eq!(f.state().writes.len(), 2);
}

/// RDS made the writer, its answer was lost: the step fails, and its
/// re-run finds the one writer by the plan's name, never a second.
#[tokio::test]
async fn regression_a_lost_writer_answer_adds_one_writer_not_two() {
    let plan = archive();
    let f = world(&plan);
    let (s, _) = step(&plan);
    let lost = Injection {
        label: "rds:CreateDBInstance",
        nth: 1,
        effect: Effect::AnswerLost,
        kind: ErrorKind::Connection,
    };
    let (clouds, _) = Metered::wrap_with_faults(f.clouds(), vec![lost]);
    let e = run(&clouds, &plan, &s).await.unwrap_err();
    assert!(e.contains("CreateDBInstance"), "{e}");
    let again = run(&clouds, &plan, &s).await.expect("resumed");
    assert!(again.already_existed);
    let writers = (f.state().cluster_instances.keys())
        .filter(|(r, _)| r == TARGET)
        .count();
    assert_eq!(writers, 1);
    let writes = f.state().writes.clone();
    assert_eq!(writes.len(), 2, "{writes:?}");
}

/// The process that restored the cluster is gone before it added the
/// writer (the cluster was still being made): another process's resume
/// restores nothing again, adds the writer, and measures from the mark.
#[tokio::test]
async fn a_restore_killed_between_cluster_and_writer_is_finished_by_another_process() {
    let plan = archive();
    let f = world(&plan);
    let (s, _) = step(&plan);
    let gone = Injection {
        label: "rds:DescribeDBInstances",
        nth: 1,
        effect: Effect::Refused,
        kind: ErrorKind::Connection,
    };
    let (first, _) = Metered::wrap_with_faults(f.clouds(), vec![gone]);
    let e = run(&first, &plan, &s).await.unwrap_err();
    assert!(e.contains("DescribeDBInstances"), "{e}");
    assert_eq!(
        f.state().writes,
        ["RestoreDBClusterFromSnapshot archive-ledger"]
    );
    let taken = snapshot_time(&f);
    let out = run(&f.clouds(), &plan, &s).await.expect("finished");
    assert!(out.already_existed);
    let whole = |t: chrono::DateTime<chrono::Utc>| t.timestamp();
    assert_eq!(out.restore_point.map(whole), Some(whole(taken)));
    assert_eq!(
        f.state().writes,
        [
            "RestoreDBClusterFromSnapshot archive-ledger",
            "CreateDBInstance archive-ledger-writer-r3cevih"
        ]
    );
}

/// The target without the plan's cluster parameter group, and the class
/// not offered there: readiness names both with their fixes, and the
/// step refuses before it restores anything.
#[tokio::test]
async fn a_region_without_its_cluster_parameter_group_or_class_refuses_before_restoring() {
    let plan = archive();
    let f = world(&plan);
    let group = RestoreNeed::ClusterParameterGroup("archive-apg16".into());
    let class = RestoreNeed::InstanceClass {
        class: "db.r6g.large".into(),
        engine: "postgres".into(),
        version: Some("16.3".into()),
    };
    for need in [group, class] {
        let why = match need {
            RestoreNeed::InstanceClass { .. } => "is not offered",
            _ => "does not exist",
        };
        (f.state().lacking).insert((TARGET.into(), need), why.into());
    }
    let (s, _) = step(&plan);
    let clouds = f.clouds();
    assert_eq!(
        problems(&clouds, &plan, &s).await,
        [
            "DB cluster parameter group archive-apg16 does not exist in us-east-1",
            "instance class db.r6g.large for postgres 16.3 is not offered in us-east-1"
        ]
    );
    let e = run(&clouds, &plan, &s).await.unwrap_err();
    assert!(
        e.contains("archive-apg16") && e.contains("db.r6g.large"),
        "{e}"
    );
    let writes = f.state().writes.clone();
    assert!(writes.is_empty(), "{writes:?}");
}

/// A cluster under the plan's name that no restore of this run made (an
/// earlier failover's, before a failback) is in the way, never taken as
/// restored; a writer under the restore's writer name that is not this
/// restore's is refused, never adopted.
#[tokio::test]
async fn names_in_the_way_are_refused_not_adopted() {
    let plan = archive();
    let f = world(&plan);
    f.add_cluster(TARGET, LEDGER);
    let (s, _) = step(&plan);
    let clouds = f.clouds();
    assert_eq!(
        problems(&clouds, &plan, &s).await,
        [
            "cluster archive-ledger already exists in us-east-1 (available; no restore of drctl's made it)"
        ]
    );
    let e = run(&clouds, &plan, &s).await.unwrap_err();
    assert!(e.contains("no restore of drctl's made it"), "{e}");
    assert!(f.state().writes.is_empty());

    let g = world(&plan);
    g.add_primary(TARGET, WRITER);
    let e = run(&g.clouds(), &plan, &s).await.unwrap_err();
    assert!(e.contains("is not the writer this restore added"), "{e}");
    let writes = g.state().writes.clone();
    assert_eq!(writes, ["RestoreDBClusterFromSnapshot archive-ledger"]);
}
