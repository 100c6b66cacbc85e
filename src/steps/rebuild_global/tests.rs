//! The rebuild on the fake cloud: after a detach, after a managed failover,
//! and run again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::cloud::Clouds;
use crate::cloud::fake::FakeCloud;

const RUN: &str = "20261125T070000Z-orders-b7c2";

fn orders() -> crate::plan::Plan {
    crate::plan::reference()
        .into_iter()
        .find(|p| p.name() == "orders")
        .expect("the reference orders plan")
}

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
    f
}

async fn run_step(clouds: &Clouds) -> Result<RebuildGlobalOutput, StepFailure> {
    let plan = orders();
    let g = crate::steps::graph::compile_mode(&plan, "us-east-1", &RunMode::Reprotect).unwrap();
    let step = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::RebuildGlobal(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a rebuild-global step");
    let outputs = BTreeMap::new();
    let cx = Cx {
        run_id: RUN,
        deadline: Instant::now() + Duration::from_secs(60),
        poll: (Duration::from_millis(1), Duration::from_millis(2)),
        ..Cx::for_test(clouds, &plan, "us-east-1", &outputs, &g.steps)
    };
    let v = step.run(&cx).await?;
    Ok(RebuildGlobalOutput::read(&v).expect("its outputs"))
}

async fn members(f: &FakeCloud) -> Vec<(String, bool)> {
    let g = (f
        .clouds()
        .aurora
        .describe_global("us-east-1", "orders-global")
        .await)
        .expect("read")
        .expect("exists");
    g.members.iter().map(|m| (m.id.clone(), m.writer)).collect()
}

#[tokio::test]
async fn after_a_detach_the_old_members_are_parked_and_the_global_cluster_is_made_again() {
    let f = world();
    let c = f.clouds();
    let arn = "arn:aws:rds:us-east-1:123456789012:cluster:orders-use1";
    c.aurora
        .detach_cluster("us-east-1", "orders-global", arn)
        .await
        .unwrap();
    f.state().writes.clear();

    let out = run_step(&c).await.expect("rebuilds");
    assert!(out.rebuilt, "{out:?}");
    let tag = "2c7b";
    assert_eq!(
        out.parked,
        [
            format!("eu-west-1/orders-euw1 -> orders-euw1-pre-{tag}"),
            format!("us-west-2/orders-usw2 -> orders-usw2-pre-{tag}"),
        ],
        "secondaries first, the old writer last"
    );
    assert_eq!(
        out.created,
        ["us-west-2/orders-usw2", "eu-west-1/orders-euw1"]
    );
    let mut m = members(&f).await;
    m.sort();
    assert_eq!(
        m,
        [
            ("orders-euw1".to_string(), false),
            ("orders-use1".to_string(), true),
            ("orders-usw2".to_string(), false),
        ]
    );
    // The old writer is kept, renamed, standalone.
    let old = (c
        .aurora
        .describe_cluster("us-west-2", &format!("orders-usw2-pre-{tag}"))
        .await)
        .unwrap()
        .expect("parked, not deleted");
    assert_eq!(old.global_cluster, None);
    assert!(
        out.warnings
            .iter()
            .any(|w| w.contains("writable on its own")),
        "{out:?}"
    );
    let writes = f.state().writes.clone();
    assert!(
        writes.contains(&"DeleteGlobalCluster orders-global".to_string()),
        "{writes:?}"
    );
    assert!(
        writes.contains(&"CreateGlobalCluster orders-global".to_string()),
        "{writes:?}"
    );

    // Run again: protected, nothing sent.
    f.state().writes.clear();
    let again = run_step(&c).await.expect("protected");
    assert!(again.already_protected, "{again:?}");
    assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
}

#[tokio::test]
async fn after_a_managed_failover_it_records_the_old_writers_snapshot_and_changes_nothing() {
    let f = world();
    let c = f.clouds();
    let arn = "arn:aws:rds:us-east-1:123456789012:cluster:orders-use1";
    c.aurora
        .failover_global("us-east-1", "orders-global", arn)
        .await
        .unwrap();
    f.state().writes.clear();
    let out = run_step(&c).await.expect("protected");
    assert!(out.already_protected);
    assert_eq!(out.failover_snapshots.len(), 1, "{out:?}");
    assert!(
        out.failover_snapshots[0]
            .starts_with("us-west-2/rds:unplanned-global-failover-orders-usw2-")
    );
    assert!(
        out.warnings[0].contains("expires with the cluster's backup retention"),
        "{out:?}"
    );
    assert!(f.state().writes.is_empty());
}

#[tokio::test]
async fn a_secondary_in_the_active_region_is_refused() {
    let f = world();
    let e = run_step(&f.clouds()).await.expect_err("not the writer");
    assert!(
        e.to_string().contains("is a secondary of orders-global"),
        "{e}"
    );
}

#[tokio::test]
async fn a_crash_after_parking_one_member_is_picked_up_where_it_stopped() {
    let f = world();
    let c = f.clouds();
    let arn = "arn:aws:rds:us-east-1:123456789012:cluster:orders-use1";
    c.aurora
        .detach_cluster("us-east-1", "orders-global", arn)
        .await
        .unwrap();
    // The first attempt parked eu-west-1's member, then died.
    let euw1 = "arn:aws:rds:eu-west-1:123456789012:cluster:orders-euw1";
    c.aurora
        .detach_cluster("eu-west-1", "orders-global", euw1)
        .await
        .unwrap();
    c.aurora
        .rename_cluster("eu-west-1", "orders-euw1", "orders-euw1-pre-2c7b")
        .await
        .unwrap();
    f.state().writes.clear();
    let out = run_step(&c).await.expect("rebuilds");
    assert!(out.rebuilt);
    let renames = (f.state().writes.iter())
        .filter(|w| w.starts_with("ModifyDBCluster"))
        .count();
    assert_eq!(
        renames,
        1,
        "only the old writer is renamed now: {:?}",
        f.state().writes
    );
}
