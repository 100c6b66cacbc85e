//! Aurora Global Database (`[[global_database]]`) against the world's moto
//! (with its SwitchoverGlobalCluster and FailoverGlobalCluster,
//! `localstack/moto_ext.py`): a planned failover (a switchover) and its
//! failback, an unplanned failover with its measured RPO and the old
//! writer's snapshot, the RPO gate refusing on the Aurora lag, the home
//! region down (the managed failover asked of the target only), the detach
//! when the managed failover is refused, and a crash around the move.

use std::path::Path;

use drctl::cloud::GlobalCluster;
use serde_json::Value;

use crate::fixture::{Fixture, Proxied, outputs, records};
use crate::proxy::{Fault, Match};
use crate::world::{self, HOME, STANDBY};

const STEP: &str = "orders/promote:orders-db";

async fn fixture(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "orders.toml", &fx.suffix);
    fx
}

/// The global cluster, read through the adapter in the standby region.
async fn global(fx: &Fixture) -> GlobalCluster {
    world::clouds()
        .await
        .aurora
        .describe_global(STANDBY, &fx.id("orders-global"))
        .await
        .expect("DescribeGlobalClusters")
        .expect("the global cluster exists")
}

async fn writer(fx: &Fixture) -> String {
    let g = global(fx).await;
    g.writer().map(|w| w.id.clone()).unwrap_or_default()
}

async fn failover(fx: &Fixture, to: &str, endpoints: &Path, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "orders",
        "--to",
        to,
        "--approve",
        "aurora test",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], endpoints).await
}

/// Waits (bounded) until the member in `region` publishes its Aurora lag:
/// a new secondary (an old writer after a switchover) gets its first
/// datapoint from the world's lag publisher within about 10 s on an idle
/// machine (a round of the publisher takes longer on a busy one), as
/// Aurora publishes one for a secondary, and the failback's RPO gate
/// needs it.
pub async fn until_lag(fx: &Fixture, region: &str, base: &str) {
    let clouds = world::clouds().await;
    let id = fx.id(base);
    world::wait_for_every(
        &format!(
            "AuroraGlobalDBRPOLag for {id} in {region} (localstack/.run/lagpub.log says why not)"
        ),
        std::time::Duration::from_secs(120),
        std::time::Duration::from_secs(1),
        async || {
            let lag = (clouds.metrics)
                .cluster_lag(region, &id, std::time::Duration::from_secs(900))
                .await
                .map_err(|e| format!("GetMetricData: {e}"))?;
            if lag.datapoints > 0 {
                return Ok(());
            }
            Err(format!("{lag:?}"))
        },
    )
    .await;
}

/// The orders measure of a run's JSON report.
fn measure(report: &Value) -> Value {
    report["measures"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["plan"] == "orders"))
        .cloned()
        .unwrap_or_else(|| panic!("no orders measure: {report:#}"))
}

/// `status --plan orders` as (region, cluster, role) of each member.
async fn roles(fx: &Fixture) -> Vec<(String, String, String)> {
    let st = fx
        .drctl(&["status", "--plan", "orders", "--output", "json"])
        .await;
    let v = st.json();
    let mut out = Vec::new();
    for r in v["plans"][0]["regions"].as_array().into_iter().flatten() {
        for d in r["databases"].as_array().into_iter().flatten() {
            out.push((
                r["region"].as_str().unwrap_or_default().to_string(),
                d["instance"].as_str().unwrap_or_default().to_string(),
                d["role"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// Marks the member `base` in `region` as one whose Aurora lag the world
/// never publishes (its `drctl:replica-lag` tag `none`,
/// `localstack/lag_publisher.py`): its lag stays unknown, as an old writer's
/// is right after a switchover, before Aurora's first datapoint.
async fn lag_unpublished(fx: &Fixture, region: &str, base: &str) {
    let rds = world::sdk().await.rds(region);
    let id = fx.id(base);
    let read = (rds.describe_db_clusters().db_cluster_identifier(&id).send())
        .await
        .expect("DescribeDBClusters");
    let arn = (read.db_clusters().first())
        .and_then(|c| c.db_cluster_arn())
        .expect("the member's ARN")
        .to_string();
    let tag = aws_sdk_rds::types::Tag::builder()
        .key("drctl:replica-lag")
        .value("none")
        .build();
    (rds.add_tags_to_resource()
        .resource_name(arn)
        .tags(tag)
        .send())
    .await
    .expect("AddTagsToResource");
}

/// The failback's RPO gate, as its run journaled it: it passed the
/// switchover with its lag unread, and said so.
async fn failback_gate_passed_the_switchover(fx: &Fixture, run: &str) {
    let show = fx.show(run).await;
    let gate = crate::fixture::gates(&show, "rpo");
    let dbs = &gate[0]["detail"]["databases"];
    assert_eq!(gate[0]["decision"], "pass", "{gate:#?}");
    assert_eq!(dbs[0]["switchover"], true, "{gate:#?}");
    assert_eq!(dbs[0]["lag_seconds"], Value::Null, "{gate:#?}");
    assert!(
        dbs[0]["reading"]
            .as_str()
            .is_some_and(|r| r.contains("no data loss by design")),
        "{gate:#?}"
    );
}

/// A planned failover switches the global cluster over (RPO 0 by design),
/// `status` shows the new writer and the secondaries' lag, and a failback
/// switches it back.
///
/// Regression (`a_failback_after_a_switchover_was_refused_for_an_unknown_lag`):
/// the old writer, a secondary since the switchover, had published no
/// Aurora lag yet, and the failback's RPO gate refused it (exit 3) as an
/// unknown lag although a switchover loses nothing. This test waited for
/// that datapoint, which hid it; now the old writer publishes none at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_planned_failover_switches_over_and_the_failback_switches_back() {
    crate::needs_emulators!();
    let fx = fixture("agplan").await;
    let proxied = Proxied::start(false).await;
    lag_unpublished(&fx, HOME, "orders-usw2").await;
    assert_eq!(writer(&fx).await, fx.id("orders-usw2"));
    let before = roles(&fx).await;
    assert!(
        before.contains(&(HOME.into(), fx.id("orders-usw2"), "primary".into()))
            && before.contains(&(STANDBY.into(), fx.id("orders-use1"), "replica".into())),
        "{before:?}"
    );

    let runs = fx.runs();
    let o = failover(&fx, STANDBY, &proxied.endpoints(), &["--planned"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(writer(&fx).await, fx.id("orders-use1"));
    let run = fx.new_run(&runs);
    let out = outputs(&fx.show(&run).await, STEP);
    assert_eq!(out["path"], "switchover", "{out:#}");
    assert!(
        out["endpoint"].as_str().is_some_and(|e| !e.is_empty()),
        "{out:#}"
    );
    let m = measure(&o.json());
    assert_eq!(m["rpo"]["seconds"].as_f64(), Some(0.0), "{m:#}");
    assert!(
        m["rpo"]["basis"]
            .as_str()
            .unwrap_or_default()
            .contains("by design"),
        "{m:#}"
    );
    assert_eq!(proxied.forwarded("SwitchoverGlobalCluster"), 1);
    assert_eq!(proxied.forwarded("FailoverGlobalCluster"), 0);

    let after = roles(&fx).await;
    assert!(
        after.contains(&(STANDBY.into(), fx.id("orders-use1"), "primary".into()))
            && after.contains(&(HOME.into(), fx.id("orders-usw2"), "replica".into())),
        "{after:?}"
    );

    let runs = fx.runs();
    let o = fx
        .drctl_with(
            &["failback", "--plan", "orders", "--approve", "aurora test"],
            &[],
            &proxied.endpoints(),
        )
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(writer(&fx).await, fx.id("orders-usw2"));
    failback_gate_passed_the_switchover(&fx, &fx.new_run(&runs)).await;
    assert_eq!(proxied.forwarded("SwitchoverGlobalCluster"), 2);
    assert_eq!(proxied.forwarded("FailoverGlobalCluster"), 0);
}

/// An unplanned failover fails over with data loss allowed: the RPO is the
/// AuroraGlobalDBRPOLag read before it (2 s in the seeded world), the run
/// warns of the old writer's snapshot, and AWS's snapshot is there.
#[tokio::test(flavor = "multi_thread")]
async fn an_unplanned_failover_measures_its_rpo_from_the_aurora_lag() {
    crate::needs_emulators!();
    let fx = fixture("agfail").await;
    let proxied = Proxied::start(false).await;
    let runs = fx.runs();
    let o = failover(&fx, STANDBY, &proxied.endpoints(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(writer(&fx).await, fx.id("orders-use1"));
    let run = fx.new_run(&runs);
    let out = outputs(&fx.show(&run).await, STEP);
    assert_eq!(out["path"], "dr-failover", "{out:#}");
    assert_eq!(out["lag_seconds"].as_f64(), Some(2.0), "{out:#}");
    assert!(
        out["warnings"].as_array().into_iter().flatten().any(|w| w
            .as_str()
            .unwrap_or_default()
            .contains("rds:unplanned-global-failover-")),
        "{out:#}"
    );
    let m = measure(&o.json());
    assert_eq!(m["rpo"]["seconds"].as_f64(), Some(2.0), "{m:#}");
    assert_eq!(m["rpo"]["met"], true, "{m:#}");
    assert!(
        m["rpo"]["basis"]
            .as_str()
            .unwrap_or_default()
            .contains("AuroraGlobalDBRPOLag"),
        "{m:#}"
    );
    assert_eq!(proxied.forwarded("FailoverGlobalCluster"), 1);
    let snaps = world::clouds()
        .await
        .aurora
        .cluster_snapshots(HOME, &fx.id("orders-usw2"))
        .await
        .expect("DescribeDBClusterSnapshots");
    assert!(
        snaps
            .iter()
            .any(|s| s.id.starts_with("rds:unplanned-global-failover-")),
        "{snaps:?}"
    );
    assert_eq!(fx.audit(&run).await.code, Some(0));
}

/// The RPO gate reads the Aurora lag of the target member and refuses
/// when it is above the tier's RPO; nothing moves.
#[tokio::test(flavor = "multi_thread")]
async fn the_rpo_gate_refuses_an_aurora_failover_on_its_lag() {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    crate::needs_emulators!();
    let fx = fixture("aggate").await;
    let cluster = fx.id("orders-use1");
    let datum = MetricDatum::builder()
        .metric_name("AuroraGlobalDBRPOLag")
        .dimensions(
            Dimension::builder()
                .name("DBClusterIdentifier")
                .value(&cluster)
                .build(),
        )
        // A few seconds back: CloudWatch's end time is exclusive, and a
        // point stamped this very second may fall outside the gate's read.
        .timestamp(aws_smithy_types::DateTime::from_secs(
            chrono::Utc::now().timestamp() - 5,
        ))
        .value(3_600_000.0)
        .unit(StandardUnit::Milliseconds)
        .build();
    world::sdk()
        .await
        .cloudwatch(STANDBY)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(datum)
        .send()
        .await
        .expect("put metric data");
    let o = fx
        .drctl(&[
            "failover",
            "--plan",
            "orders",
            "--to",
            STANDBY,
            "--approve",
            "gate",
        ])
        .await;
    assert_eq!(o.code, Some(3), "{}", o.all());
    assert!(o.err.contains(&cluster), "the member is named: {}", o.all());
    assert!(o.err.contains("is 1h"), "the lag is named: {}", o.all());
    assert!(o.err.contains("RPO of 15m"), "{}", o.all());
    assert_eq!(writer(&fx).await, fx.id("orders-usw2"), "nothing moved");
}

/// The home region's endpoints gone: the managed failover is asked of the
/// target region and nothing of the run's path goes to the home region;
/// then, with the managed failover refused as well, the target is
/// detached, and the run says the global cluster must be rebuilt.
#[tokio::test(flavor = "multi_thread")]
async fn with_home_down_the_failover_asks_the_target_only_and_a_refusal_detaches() {
    crate::needs_emulators!();
    for refused in [false, true] {
        let fx = fixture("aghome").await;
        let proxied = Proxied::start(false).await;
        for var in [
            "AWS_ENDPOINT_URL_RDS",
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            "AWS_ENDPOINT_URL_EKS",
        ] {
            proxied
                .proxy_for(var)
                .inject(Match::Region(HOME), Fault::Reset, usize::MAX);
        }
        if refused {
            proxied.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
                Match::Action("FailoverGlobalCluster"),
                Fault::Error {
                    status: 400,
                    code: "InvalidGlobalClusterStateFault",
                },
                usize::MAX,
            );
        }
        let runs = fx.runs();
        let o = failover(&fx, STANDBY, &proxied.endpoints(), &[]).await;
        assert_eq!(o.code, Some(0), "refused={refused}: {}", o.all());
        let run = fx.new_run(&runs);
        let out = outputs(&fx.show(&run).await, STEP);
        let c = world::clouds()
            .await
            .aurora
            .describe_cluster(STANDBY, &fx.id("orders-use1"))
            .await
            .expect("read")
            .expect("exists");
        if refused {
            assert_eq!(out["path"], "detach", "{out:#}");
            assert_eq!(out["rebuild_needed"], true, "{out:#}");
            assert_eq!(c.global_cluster, None, "standalone after the detach");
            let text = o.all();
            assert!(text.contains("must be rebuilt"), "{text}");
        } else {
            assert_eq!(out["path"], "dr-failover", "{out:#}");
            assert_eq!(writer(&fx).await, fx.id("orders-use1"));
        }
        assert!(
            out["lag_seconds"].as_f64().is_some(),
            "the RPO was read in the target: {out:#}"
        );
        // The move was asked of the target region only.
        let home_moves: Vec<String> = proxied
            .log()
            .into_iter()
            .filter(|l| l.contains(&format!("[{HOME}]")) && l.contains("GlobalCluster"))
            .collect();
        assert!(home_moves.is_empty(), "{home_moves:#?}");
        if refused {
            rebuilt_then_failed_back(&fx).await;
        }
    }
}

/// After the detach, with the home region back: reprotect rebuilds the
/// global cluster from the detached writer (the old members renamed, data
/// kept; new secondaries under their ids), and a failback switches the
/// writer home.
async fn rebuilt_then_failed_back(fx: &Fixture) {
    let runs = fx.runs();
    let o = fx
        .drctl(&["reprotect", "--plan", "orders", "--approve", "aurora test"])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let run = fx.new_run(&runs);
    let out = outputs(&fx.show(&run).await, "orders/reprotect:orders-db");
    let calls: Vec<&str> = (out["moves"].as_array().into_iter().flatten())
        .filter_map(|m| m["call"].as_str())
        .collect();
    assert!(calls.contains(&"rds:CreateGlobalCluster"), "{out:#}");
    assert_eq!(out["parked"].as_array().map(Vec::len), Some(2), "{out:#}");
    let g = global(fx).await;
    let mut members: Vec<(String, bool)> =
        g.members.iter().map(|m| (m.id.clone(), m.writer)).collect();
    members.sort();
    let mut want = vec![
        (fx.id("orders-euw1"), false),
        (fx.id("orders-use1"), true),
        (fx.id("orders-usw2"), false),
    ];
    want.sort();
    assert_eq!(members, want);
    // The old writer, renamed, kept its data: it still exists, standalone.
    let parked = out["parked"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .find(|p| p.starts_with(&format!("{HOME}/")))
        .and_then(|p| p.split(" -> ").nth(1))
        .expect("the old writer parked")
        .to_string();
    let old = world::clouds()
        .await
        .aurora
        .describe_cluster(HOME, &parked)
        .await
        .expect("read")
        .expect("parked, not deleted");
    assert_eq!(old.global_cluster, None);

    // The rebuilt secondary at home publishes no lag: the failback is a
    // switchover all the same (the regression above, after a rebuild).
    lag_unpublished(fx, HOME, "orders-usw2").await;
    let runs = fx.runs();
    let o = fx
        .drctl(&["failback", "--plan", "orders", "--approve", "aurora test"])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(writer(fx).await, fx.id("orders-usw2"));
    failback_gate_passed_the_switchover(fx, &fx.new_run(&runs)).await;
}

/// A crash before and after the move: the resume finishes the run with the
/// target writing and the managed failover sent once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_around_the_move_is_resumed_with_the_failover_sent_once() {
    crate::needs_emulators!();
    for when in ["before", "after"] {
        let fx = fixture("agcrash").await;
        let proxied = Proxied::start(false).await;
        let point = format!("{when}:{STEP}");
        let o = failover(
            &fx,
            STANDBY,
            &proxied.endpoints(),
            &["--inject-crash", &point],
        )
        .await;
        assert_eq!(o.code, Some(1), "{point}: {}", o.all());
        let runs = fx.runs();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let run = runs.into_iter().next().unwrap_or_default();
        let o = fx
            .drctl_with(
                &["runs", "resume", &run, "--output", "json"],
                &[],
                &proxied.endpoints(),
            )
            .await;
        assert_eq!(o.code, Some(0), "{point}: {}", o.all());
        assert_eq!(writer(&fx).await, fx.id("orders-use1"), "{point}");
        let show = fx.show(&run).await;
        assert_eq!(show["report"]["outcome"], "succeeded", "{point}");
        let succeeded = records(&show)
            .iter()
            .filter(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == STEP)
            .count();
        assert_eq!(succeeded, 1, "{point}");
        assert_eq!(
            proxied.forwarded("FailoverGlobalCluster"),
            1,
            "{point}: {:#?}",
            proxied.log()
        );
        assert_eq!(fx.audit(&run).await.code, Some(0), "{point}");
    }
}

/// The managed failover's answer lost on the way back (moto acted, the
/// connection closed): the adapter reads the global cluster, finds the
/// move toward the target, and never sends it again.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_whose_answer_is_lost_is_read_back_and_not_sent_again() {
    crate::needs_emulators!();
    let fx = fixture("aglost").await;
    let proxied = Proxied::start(false).await;
    proxied.proxy_for("AWS_ENDPOINT_URL_RDS").inject(
        Match::Action("FailoverGlobalCluster"),
        Fault::DropAfterForward,
        1,
    );
    let o = failover(&fx, STANDBY, &proxied.endpoints(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(writer(&fx).await, fx.id("orders-use1"));
    assert_eq!(
        proxied.forwarded("FailoverGlobalCluster"),
        1,
        "sent once: {:#?}",
        proxied.log()
    );
}
