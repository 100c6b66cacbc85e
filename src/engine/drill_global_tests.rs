//! A shadow drill of an Aurora global database (`drill-global`) through the
//! engine, against the in-memory cloud (the emulator test is
//! `tests/it/aurora_drill.rs`): the drill's RTO and RPO are measured on its
//! copy, cleanup removes the copy on every ending (a crash before the clone
//! included), a sweep from another machine finds a copy no journal of its
//! own names, and no member of the global cluster is ever changed.

use std::sync::Arc;
use std::time::Duration;

use super::tests::{drill_opts, engine};
use super::*;
use crate::cloud::Capacity;
use crate::cloud::fake::FakeCloud;
use crate::journal::store::MemoryStore;
use crate::journal::{CleanupResult, Temp};
use crate::steps::drill_names;

const STEP: &str = "orders/drill-copy:orders-db";

fn orders() -> Vec<Plan> {
    crate::plan::reference()
        .into_iter()
        .filter(|p| p.name() == "orders")
        .collect()
}

/// The orders world of `localstack/seed`: the global cluster's writer in
/// us-west-2, secondaries in us-east-1 (2 s behind) and eu-west-1, a node
/// group per region, and the record that follows the writer.
fn world() -> FakeCloud {
    let f = FakeCloud::new();
    f.add_global(
        "orders-global",
        &[
            ("us-west-2", "orders-usw2"),
            ("us-east-1", "orders-use1"),
            ("eu-west-1", "orders-euw1"),
        ],
    );
    f.set_lag("us-east-1", "orders-use1", &[2.0]);
    f.set_lag("eu-west-1", "orders-euw1", &[1.0]);
    // The record that follows the writer endpoint (the drill makes its own
    // drill record beside it).
    f.add_zone("example.com.");
    f.put_record(
        "example.com.",
        crate::cloud::DnsRecord::simple(
            "orders-db.example.com.".into(),
            "CNAME",
            Some(60),
            vec!["orders-usw2.cluster-fake.us-west-2.rds.amazonaws.com".into()],
        ),
    );
    for (region, tag, desired) in [
        ("us-west-2", "usw2", 3),
        ("us-east-1", "use1", 0),
        ("eu-west-1", "euw1", 0),
    ] {
        let min = if desired > 0 { 2 } else { 0 };
        f.add_node_group(
            region,
            &format!("orders-eks-{tag}"),
            &format!("orders-nodes-{tag}"),
            Capacity {
                min,
                desired,
                max: 6,
            },
        );
        let tasks = if desired > 0 { 4 } else { 1 };
        f.add_ecs_service(
            region,
            &format!("orders-ecs-{tag}"),
            "orders-workers",
            tasks,
        );
    }
    f
}

/// The global cluster and its members, as a drill must leave them.
fn production(f: &FakeCloud) -> String {
    let s = f.state();
    let members: Vec<&crate::cloud::DbCluster> = (s.clusters.values())
        .filter(|c| !c.id.starts_with("drill-"))
        .collect();
    format!("{:?}\n{members:?}", s.globals)
}

/// The drill's copies and instances still in the world.
fn leftovers(f: &FakeCloud) -> Vec<String> {
    let s = f.state();
    (s.clusters.keys().chain(s.databases.keys()))
        .filter(|(_, id)| id.starts_with("drill-"))
        .map(|(r, id)| format!("{r}/{id}"))
        .collect()
}

/// The cleanup record of the drill's copy.
fn cleaned_copy(d: &crate::runs::drill::DrillSummary) -> &crate::journal::Cleaned {
    d.cleanup
        .resources
        .iter()
        .find(|c| matches!(c.resource, Temp::Copy { .. }))
        .expect("the copy's cleanup record")
}

#[tokio::test]
async fn an_aurora_drill_measures_rto_and_rpo_on_its_copy_and_removes_it() {
    let f = world();
    let before = production(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let report = e.run(&orders(), &drill_opts()).await.unwrap();
    let m = &report.measures[0];
    assert_eq!(m.rpo.seconds, Some(2.0), "{:?}", m.rpo);
    assert!(
        m.rpo.basis.contains("AuroraGlobalDBRPOLag") && m.rpo.basis.contains("orders-use1"),
        "{}",
        m.rpo.basis
    );
    assert!(m.rto.seconds.is_some(), "{:?}", m.rto);
    let d = report.drill.as_ref().expect("a drill summary");
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    assert_eq!(cleaned_copy(d).result, CleanupResult::Removed);
    assert!(leftovers(&f).is_empty(), "{:?}", leftovers(&f));
    assert_eq!(production(&f), before, "production changed");
    // Only the drill's copy, the evidence, the drill's record and the
    // standby's node group (raised and restored) were written: never a
    // member of the global cluster, never the home node group.
    let writes = f.state().writes.clone();
    assert!(
        (writes.iter()).all(|w| w.contains(" drill-")
            || w.starts_with("PutObject ")
            || w == "ChangeResourceRecordSets example.com."
            || w.ends_with(" orders-eks-use1/orders-nodes-use1")
            || w.ends_with(" orders-ecs-use1/orders-workers")),
        "{writes:?}"
    );
    // The copy is journaled before its step starts.
    let text = store.read(&report.run_id).await.unwrap();
    let created = text.find("\"drill_resource\"").unwrap();
    let started = text
        .find(&format!("\"type\":\"step_started\",\"step\":\"{STEP}\""))
        .unwrap();
    assert!(created < started);
}

/// A crash once the step's start is journaled (its copy named in the
/// journal), before the clone: the resumed drill cleans up, finds nothing
/// to remove and says so; a crash after the step: the copy is removed.
#[tokio::test]
async fn a_crashed_aurora_drill_is_cleaned_up_on_resume_wherever_it_stopped() {
    for (at, want) in [
        (CrashPoint::Before(STEP.into()), CleanupResult::Absent),
        (CrashPoint::After(STEP.into()), CleanupResult::Removed),
    ] {
        let f = world();
        let before = production(&f);
        let dir = tempfile::tempdir().unwrap();
        let (e, _, _) = engine(&f, dir.path());
        let crash = RunOptions {
            inject_crash: Some(at.clone()),
            ..drill_opts()
        };
        let Err(EngineError::Crashed(_, run)) = e.run(&orders(), &crash).await else {
            panic!("the drill stops at {at}");
        };
        let cloned = !leftovers(&f).is_empty();
        assert_eq!(
            cloned,
            want == CleanupResult::Removed,
            "{at}: {:?}",
            leftovers(&f)
        );
        let r = e.resume(&run, &orders(), None).await.unwrap();
        let d = r.drill.as_ref().expect("a drill summary");
        assert!(d.cleanup.complete, "{at}: {:?}", d.cleanup);
        assert_eq!(cleaned_copy(d).result, want, "{at}");
        assert!(
            !d.verdicts[0].verdict.passed(),
            "{at}: a resumed drill never passes"
        );
        assert!(leftovers(&f).is_empty(), "{at}: {:?}", leftovers(&f));
        assert_eq!(production(&f), before, "{at}: production changed");
    }
}

/// A drill whose machine was lost after the clone: a sweep from another
/// machine (no journal of that drill in its state) finds the copy by its
/// tags once it has expired, and removes it with its writer; production's
/// members are not drill copies and are never found.
#[tokio::test]
async fn a_sweep_from_another_machine_removes_an_expired_copy_by_its_tags() {
    let f = world();
    let before = production(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(STEP.into())),
        ..drill_opts()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(&orders(), &crash).await else {
        panic!("the drill stops after its copy");
    };
    let copy = drill_names::temp_cluster_id(&run, "orders-use1");
    let plans = orders();
    let (found, errors) = crate::cleanup::sweep::find(
        &f.clouds(),
        &plans,
        &crate::journal::MemoryStore::new(),
        Utc::now(),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    let t = Temp::Copy {
        kind: crate::plan::spec::ResourceKind::GlobalDatabase,
        region: "us-east-1".into(),
        address: copy.clone(),
    };
    assert_eq!(
        found
            .iter()
            .map(|x| (&x.resource, x.expired))
            .collect::<Vec<_>>(),
        [(&t, false)],
        "found, not expired yet: a running drill is never swept"
    );
    let later = Utc::now() + chrono::Duration::days(2);
    let (found, _) = crate::cleanup::sweep::find(
        &f.clouds(),
        &plans,
        &crate::journal::MemoryStore::new(),
        later,
    )
    .await;
    assert_eq!(found[0].run.as_deref(), Some(run.as_str()));
    let cleaned = crate::cleanup::sweep::sweep(
        &f.clouds(),
        &found,
        &plans,
        &MemoryStore::new(),
        (Duration::from_millis(1), Duration::from_millis(5)),
    )
    .await;
    assert_eq!(cleaned.len(), 1, "{cleaned:?}");
    assert_eq!(cleaned[0].resource, t);
    assert_eq!(cleaned[0].result, CleanupResult::Removed, "{cleaned:?}");
    assert!(leftovers(&f).is_empty(), "{:?}", leftovers(&f));
    assert_eq!(production(&f), before, "production changed");
}

/// Regression (resume acted on an Aurora run's journaled endpoint): a
/// resume re-read the promoted database's endpoint for RDS only, so an
/// edited journal of a crashed Aurora failover pointed the record that
/// follows the global database wherever its editor liked. The switch
/// step's answer re-reads it now, as for every data kind.
#[tokio::test]
async fn regression_a_resume_of_an_aurora_run_acts_on_the_clouds_endpoint() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, store, _) = engine(&f, dir.path());
    let notes = Arc::new(super::tests::Notes::default());
    e.reporter = notes.clone();
    let step = "orders/promote:orders-db";
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(step.into())),
        ..super::tests::opts()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(&orders(), &crash).await else {
        panic!("the run stops after the switch");
    };
    super::tests::edit_endpoint(&store, &run, step, "attacker.example.net").await;
    let r = e
        .resume(&run, &orders(), Some(super::tests::opts()))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
    let real = (f
        .clouds()
        .aurora
        .describe_cluster("us-east-1", "orders-use1")
        .await)
        .unwrap()
        .and_then(|c| c.endpoint)
        .expect("the writer's endpoint");
    super::tests::followed_the_cloud(&f, "orders-db.example.com.", &real, &notes).await;
}
