//! A shadow drill of an Aurora global database (`drill-global`) against the
//! emulators: moto (through `localstack/moto_ext.py`) clones the target's
//! secondary into a standalone copy, the lag publisher's
//! `AuroraGlobalDBRPOLag` of the secondary is the drill's RPO, cleanup
//! removes the copy and its writer, a sweep from another machine removes
//! the copy a lost drill left, and no member of the global cluster changes.
//!
//! Each test seeds its own copy of the orders global cluster
//! (`localstack/seed --suffix`: `orders-global-SUFFIX`, its writer in
//! us-west-2, secondaries in us-east-1 and eu-west-1 tagged 2 s behind).

use std::path::Path;

use drctl::steps::drill_names;
use serde_json::Value;

use crate::fixture::{Fixture, outputs};
use crate::proxy::{Fault, Match};
use crate::world::{self, STANDBY};

/// The members of the reference orders global cluster, by region.
const MEMBERS: [(&str, &str); 3] = [
    ("us-west-2", "orders-usw2"),
    ("us-east-1", "orders-use1"),
    ("eu-west-1", "orders-euw1"),
];

/// Writes `plans/orders.toml`'s global database, renamed for the fixture's
/// world, as the plan `orders` (its node groups left out: they are another
/// test's).
fn add_orders(dir: &Path, suffix: &str) {
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let t = std::fs::read_to_string(plans.join("orders.toml")).expect("reference plan");
    let mut t = t
        .split("[[node_group]]")
        .next()
        .expect("the plan before its node groups")
        .to_string();
    for base in ["orders-global", "orders-usw2", "orders-use1", "orders-euw1"] {
        t = t.replace(&format!("\"{base}\""), &format!("\"{base}-{suffix}\""));
    }
    t = t.replace(
        "//drctl-evidence-use1/",
        &format!("//drctl-evidence-use1-{suffix}/"),
    );
    std::fs::write(dir.join("orders.toml"), t).expect("write plan");
}

async fn fixture(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    add_orders(fx.plans.path(), &fx.suffix);
    fx
}

/// The global cluster and each member as the adapter reads them (through
/// the standby's endpoint): what a drill must leave as it was.
async fn production(fx: &Fixture) -> Vec<String> {
    let clouds = world::clouds().await;
    let global = fx.id("orders-global");
    let g = clouds
        .aurora
        .describe_global(STANDBY, &global)
        .await
        .expect("DescribeGlobalClusters")
        .unwrap_or_else(|| panic!("{global} exists"));
    let mut out: Vec<String> = (g.members.iter())
        .map(|m| format!("member {} {} writer={}", m.region, m.id, m.writer))
        .collect();
    out.sort();
    out.push(format!("global {} {}", g.id, g.status));
    for (region, base) in MEMBERS {
        let c = clouds
            .aurora
            .describe_cluster(region, &fx.id(base))
            .await
            .expect("DescribeDBClusters")
            .unwrap_or_else(|| panic!("{base} exists in {region}"));
        out.push(format!(
            "cluster {region} {} {} {:?}",
            c.id, c.status, c.global_cluster
        ));
    }
    out
}

/// The drill's copy of the standby's secondary and its writer, where they
/// are still there.
async fn leftovers(fx: &Fixture, run: &str) -> Vec<String> {
    let clouds = world::clouds().await;
    let member = fx.id("orders-use1");
    let copy = drill_names::temp_cluster_id(run, &member);
    let writer = drill_names::temp_writer_id(run, &member);
    let mut out = Vec::new();
    if let Some(c) =
        (clouds.aurora.describe_cluster(STANDBY, &copy).await).expect("DescribeDBClusters")
    {
        out.push(format!("cluster {} {}", c.id, c.status));
    }
    if let Some(i) =
        (clouds.database.describe_instance(STANDBY, &writer).await).expect("DescribeDBInstances")
    {
        out.push(format!("instance {} {}", i.id, i.status));
    }
    out
}

/// The cleanup (or sweep) results of `cleaned` for the drill's copy.
fn copy_results(cleaned: &Value) -> Vec<String> {
    (cleaned.as_array().into_iter().flatten())
        .filter(|c| c["resource"]["type"] == "copy")
        .map(|c| c["result"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `drctl drill` of the orders plan to the standby: the secondary is
/// cloned into a writable copy (its writer endpoint in the step's
/// outputs), the drill's RPO is the secondary's AuroraGlobalDBRPOLag (the
/// 2 s the seed tagged), its RTO is measured, cleanup removes the copy and
/// its writer, and the global cluster's members and writer are unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aurora_drill_measures_rto_and_rpo_on_a_copy_and_removes_it() {
    crate::needs_emulators!();
    let fx = fixture("agdrill").await;
    let before = production(&fx).await;
    let ran = fx
        .drctl(&[
            "drill", "--plan", "orders", "--to", STANDBY, "--output", "json",
        ])
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let j = ran.json();
    assert_eq!(j["outcome"], "succeeded", "{}", ran.all());
    assert_eq!(j["drill"]["verdicts"][0]["verdict"], "PASS", "{j:#}");
    let m = &j["measures"][0];
    assert!(m["rto"]["seconds"].as_f64().is_some_and(|s| s > 0.0), "{m}");
    assert_eq!(m["rpo"]["seconds"].as_f64(), Some(2.0), "{m}");
    let basis = m["rpo"]["basis"].as_str().unwrap_or_default();
    assert!(
        basis.contains("AuroraGlobalDBRPOLag") && basis.contains(&fx.id("orders-use1")),
        "{m}"
    );
    let cleanup = &j["drill"]["cleanup"];
    assert_eq!(cleanup["complete"], true, "{cleanup}");
    assert_eq!(
        copy_results(&cleanup["resources"]),
        ["removed"],
        "{cleanup}"
    );

    let run = j["run_id"].as_str().expect("run id");
    let shown = fx.show(run).await;
    let step = "orders/drill-copy:orders-db";
    let out = outputs(&shown, step);
    let member = fx.id("orders-use1");
    assert_eq!(
        out["copy"],
        drill_names::temp_cluster_id(run, &member),
        "{out}"
    );
    let source = format!("{}/{member}", fx.id("orders-global"));
    assert_eq!(out["source"], source.as_str(), "{out}");
    assert!(
        out["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with(out["copy"].as_str().unwrap_or("?"))),
        "the copy's writer endpoint: {out}"
    );
    let text = fx.journal_text(run).await;
    let named = text.find("\"drill_resource\"").expect("drill_resource");
    let started = text
        .find(&format!("\"type\":\"step_started\",\"step\":\"{step}\""))
        .expect("the step is journaled");
    assert!(named < started, "the copy is named before its step starts");

    assert_eq!(leftovers(&fx, run).await, Vec::<String>::new());
    assert_eq!(production(&fx).await, before, "production changed");
}

/// A drill whose machine was lost after the clone (a crash after the step,
/// then the state removed): a sweep from elsewhere finds the copy by its
/// tags and removes it with its writer; production is as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_removes_the_copy_a_lost_aurora_drill_left() {
    crate::needs_emulators!();
    let fx = fixture("agsweep").await;
    let before = production(&fx).await;
    let runs = fx.runs();
    let ran = fx
        .drctl(&[
            "drill",
            "--plan",
            "orders",
            "--to",
            STANDBY,
            "--inject-crash",
            "after:orders/drill-copy:orders-db",
        ])
        .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let run = fx.new_run(&runs);
    let left = leftovers(&fx, &run).await;
    assert_eq!(left.len(), 2, "the copy and its writer: {left:?}");
    std::fs::remove_dir_all(fx.state_dir()).expect("remove state");

    let swept = fx
        .drctl(&[
            "drill", "sweep", "--plan", "orders", "--all", "--output", "json",
        ])
        .await;
    assert_eq!(swept.code, Some(0), "{}", swept.all());
    let cleaned = &swept.json()["cleaned"];
    assert_eq!(copy_results(cleaned), ["removed"], "{cleaned}");
    assert_eq!(leftovers(&fx, &run).await, Vec::<String>::new());
    assert_eq!(production(&fx).await, before, "production changed");
}

/// The adapter's drill calls against moto: a clone of a secondary is a
/// standalone cluster with the drill's tags (listed with them, as a sweep
/// reads them), a second clone under the same name is refused (only an
/// answer lost after a clone that took effect is taken as done), a writer
/// joins it, and a deletion takes the writer and the cluster, a second
/// deletion finding nothing is done. Every deletion goes by one rule
/// (`aws::delete_once`): the writer's, refused after an attempt that
/// failed before it reached RDS, is not taken as done while the writer
/// stands; the writer's and the cluster's, their answers lost after moto
/// acted, are read back and not sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_clones_lists_and_deletes_a_drill_copy() {
    crate::needs_emulators!();
    let fx = Fixture::new("agadapt").await;
    let before = production(&fx).await;
    let (proxy, clouds) = crate::adapters::proxied(|s| &mut s.rds_endpoint).await;
    let run = format!("20261125T040000Z-orders-{}", fx.suffix);
    let member = fx.id("orders-use1");
    let copy = drill_names::temp_cluster_id(&run, &member);
    let writer = drill_names::temp_writer_id(&run, &member);
    let tags = drill_names::tags(&run, "it/pid 1", chrono::Utc::now());
    let aurora = &clouds.aurora;
    aurora
        .clone_cluster(STANDBY, &member, &copy, &tags)
        .await
        .expect("RestoreDBClusterToPointInTime");
    let c = aurora
        .describe_cluster(STANDBY, &copy)
        .await
        .expect("DescribeDBClusters")
        .expect("the copy exists");
    assert_eq!(c.global_cluster, None, "standalone: {c:?}");
    assert_eq!(c.tags, tags, "only the drill's tags: {c:?}");
    let again = aurora
        .clone_cluster(STANDBY, &member, &copy, &tags)
        .await
        .expect_err("a second clone under the name");
    assert_eq!(
        again.code.as_deref(),
        Some("DBClusterAlreadyExistsFault"),
        "{again}"
    );
    let listed = aurora.list_clusters(STANDBY).await.expect("list");
    assert!(
        listed.iter().any(|l| l.id == copy && l.tags == tags),
        "{listed:?}"
    );
    aurora
        .add_writer(
            STANDBY,
            &copy,
            &writer,
            &c.engine,
            drctl::plan::kinds::WRITER_CLASS,
            &tags,
        )
        .await
        .expect("CreateDBInstance");
    let w = clouds
        .database
        .describe_instance(STANDBY, &writer)
        .await
        .expect("DescribeDBInstances")
        .expect("the writer exists");
    assert_eq!(w.tags, tags);
    // A 503 that never reached RDS, then a refusal (as RDS refuses an
    // instance being modified): the refusal says nothing of the first
    // attempt, and the writer still stands. The writer is deleted through
    // RDS's adapter here, Aurora's member deletion's one function.
    let delete = Match::Action("DeleteDBInstance");
    proxy.inject(delete.clone(), Fault::Status(503), 1);
    let refusal = Fault::Error {
        status: 400,
        code: "InvalidDBInstanceState",
    };
    proxy.inject(delete.clone(), refusal, 1);
    let refused = (clouds.database.delete_instance(STANDBY, &writer).await)
        .expect_err("a refusal is not a deletion while the writer stands");
    assert_eq!(refused.code.as_deref(), Some("InvalidDBInstanceState"));
    assert_eq!(proxy.unspent(), 0, "{:#?}", proxy.log());
    let still = clouds.database.describe_instance(STANDBY, &writer).await;
    assert!(matches!(still, Ok(Some(_))), "{still:?}");
    // Both answers lost after moto acted: each deletion sent once.
    let cluster = Match::Action("DeleteDBCluster");
    proxy.inject(delete.clone(), Fault::DropAfterForward, 1);
    proxy.inject(cluster.clone(), Fault::DropAfterForward, 1);
    aurora
        .delete_cluster(STANDBY, &copy)
        .await
        .expect("DeleteDBInstance, DeleteDBCluster");
    assert_eq!(proxy.unspent(), 0, "{:#?}", proxy.log());
    let sent = (proxy.forwarded(delete), proxy.forwarded(cluster));
    assert_eq!(sent, (1, 1), "each sent once: {:#?}", proxy.log());
    assert_eq!(leftovers(&fx, &run).await, Vec::<String>::new());
    aurora
        .delete_cluster(STANDBY, &copy)
        .await
        .expect("gone is done");
    assert_eq!(production(&fx).await, before, "production changed");
}
