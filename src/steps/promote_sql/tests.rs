//! The choice of path (pure), and the step on the fake cloud.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::cloud::Clouds;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{SqlOpStatus, SqlOperation};
use crate::steps::LagAtPromotion;

const P: &str = "drctl-emu";

fn step(dr: bool, planned: bool) -> PromoteSql {
    PromoteSql {
        resource: "orders-sql".into(),
        project: P.into(),
        instance: "orders-sql-use4".into(),
        region: "us-east4".into(),
        dr_replica: dr,
        planned,
    }
}

fn replica(dr: bool) -> SqlInstance {
    SqlInstance {
        name: "orders-sql-use4".into(),
        region: "us-east4".into(),
        state: "RUNNABLE".into(),
        role: DbRole::Replica("orders-sql".into()),
        replicas: Vec::new(),
        dr_replica: dr,
        edition: Some("ENTERPRISE_PLUS".into()),
        endpoint: None,
        write_endpoint: None,
    }
}

fn op(kind: &str, status: SqlOpStatus) -> SqlOperation {
    SqlOperation {
        name: "op-1".into(),
        kind: kind.into(),
        target: "orders-sql-use4".into(),
        status,
        error: None,
        inserted: None,
    }
}

fn path_of(d: &SqlDecision) -> Option<SqlPath> {
    match d {
        SqlDecision::Act { path, .. } => Some(*path),
        _ => None,
    }
}

#[test]
fn the_path_follows_the_replica_and_the_run() {
    assert_eq!(
        path_of(&decide(&step(false, false), Some(&replica(false)), &[])),
        Some(SqlPath::Promote)
    );
    assert_eq!(
        path_of(&decide(&step(false, true), Some(&replica(false)), &[])),
        Some(SqlPath::Promote),
        "a planned run of a plain replica promotes it"
    );
    assert_eq!(
        path_of(&decide(&step(true, false), Some(&replica(true)), &[])),
        Some(SqlPath::DrFailover)
    );
    assert_eq!(
        path_of(&decide(&step(true, true), Some(&replica(true)), &[])),
        Some(SqlPath::Switchover)
    );
}

#[test]
fn an_operation_of_ours_under_way_is_waited_on_and_others_are_not() {
    let running = [op("PROMOTE_REPLICA", SqlOpStatus::Running)];
    assert!(matches!(
        decide(&step(false, false), Some(&replica(false)), &running),
        SqlDecision::Wait { ref operation, .. } if operation == "op-1"
    ));
    let done = [op("PROMOTE_REPLICA", SqlOpStatus::Done)];
    assert_eq!(
        path_of(&decide(&step(false, false), Some(&replica(false)), &done)),
        Some(SqlPath::Promote)
    );
    let backup = [op("BACKUP_VOLUME", SqlOpStatus::Running)];
    assert_eq!(
        path_of(&decide(&step(false, false), Some(&replica(false)), &backup)),
        Some(SqlPath::Promote)
    );
}

#[test]
fn a_primary_is_done_a_missing_one_refused_and_a_plan_that_names_a_dr_replica_wrongly_too() {
    let mut primary = replica(false);
    primary.role = DbRole::Primary;
    assert!(matches!(
        decide(&step(false, false), Some(&primary), &[]),
        SqlDecision::Done { .. }
    ));
    assert!(matches!(
        decide(&step(false, false), None, &[]),
        SqlDecision::Refuse { .. }
    ));
    assert!(matches!(
        decide(&step(true, false), Some(&replica(false)), &[]),
        SqlDecision::Refuse { .. }
    ));
    let mut busy = replica(false);
    busy.state = "MAINTENANCE".into();
    assert!(matches!(
        decide(&step(false, false), Some(&busy), &[]),
        SqlDecision::WaitRunnable { .. }
    ));
}

#[test]
fn a_switchover_loses_nothing_and_an_unknown_lag_is_never_zero() {
    let origin = Utc::now();
    let out = |path, lag: Option<f64>| {
        serde_json::to_value(PromoteSqlOutput {
            path: Some(path),
            lag: LagRecord {
                reading: Some(LagAtPromotion {
                    lag_seconds: lag,
                    lag_max_seconds: lag,
                    lag_read_at: None,
                }),
                ..LagRecord::default()
            },
            ..Default::default()
        })
        .unwrap()
    };
    let (v, _) = rpo(
        "db",
        Some(&out(SqlPath::Switchover, Some(4.0))),
        None,
        origin,
        "x",
    );
    assert_eq!(v, Some(0.0));
    let (v, basis) = rpo(
        "db",
        Some(&out(SqlPath::DrFailover, Some(4.0))),
        None,
        origin,
        "x",
    );
    assert_eq!(v, Some(4.0), "{basis}");
    let (v, basis) = rpo("db", Some(&out(SqlPath::Promote, None)), None, origin, "x");
    assert_eq!(v, None, "unknown is never zero: {basis}");
    let (v, _) = rpo("db", None, Some(1.0), origin, "x");
    assert_eq!(v, None);
}

fn plan(dr: bool) -> crate::plan::Plan {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
    let loaded = crate::plan::load(&[path]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let mut p = loaded.plans.into_iter().next().expect("orders-gcp");
    p.spec.cloud_sql[0].dr_replica = dr;
    p
}

fn world(dr: bool) -> FakeCloud {
    let f = FakeCloud::new();
    f.add_sql(P, "us-central1", "orders-sql", None, false);
    f.add_sql(P, "us-east4", "orders-sql-use4", Some("orders-sql"), dr);
    f.set_lag("us-east4", "orders-sql-use4", &[2.0, 1.5]);
    f
}

/// The promote-sql step of a failover of orders-gcp to us-east4.
async fn run_step(
    clouds: &Clouds,
    dr: bool,
    planned: bool,
    attempt: u32,
) -> Result<PromoteSqlOutput, StepFailure> {
    let plan = plan(dr);
    let mode = RunMode::Failover { planned };
    let g = crate::steps::graph::compile_mode(&plan, "us-east4", &mode).unwrap();
    let step = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::PromoteSql(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a promote-sql step");
    assert_eq!((step.dr_replica, step.planned), (dr, planned));
    let outputs = BTreeMap::new();
    let cx = Cx {
        run_id: "20261125T060000Z-orders-gcp-a1",
        deadline: Instant::now() + Duration::from_secs(60),
        poll: (Duration::from_millis(1), Duration::from_millis(2)),
        attempt,
        ..Cx::for_test(clouds, &plan, "us-east4", &outputs, &g.steps)
    };
    let v = step.run(&cx).await?;
    Ok(PromoteSqlOutput::read(&v).expect("its outputs"))
}

async fn role(f: &FakeCloud, name: &str) -> DbRole {
    (f.clouds().cloud_sql.describe_sql("us-east4", P, name).await)
        .expect("read")
        .expect("exists")
        .role
}

#[tokio::test]
async fn a_replica_is_promoted_and_its_lag_is_the_rpo() {
    let f = world(false);
    let out = run_step(&f.clouds(), false, false, 1)
        .await
        .expect("promoted");
    assert_eq!(out.path, Some(SqlPath::Promote));
    assert_eq!(out.lag.seconds(), Some(1.5));
    assert_eq!(out.operation.as_deref(), Some("op-0001-orders-sql-use4"));
    assert_eq!(
        out.endpoint.as_deref(),
        Some("orders-sql-use4.us-east4.fake.sql.goog")
    );
    assert_eq!(role(&f, "orders-sql-use4").await, DbRole::Primary);
    assert_eq!(
        f.state().writes,
        ["instances.promoteReplica orders-sql-use4"]
    );
    // Run again (a second failover): a primary is not promoted again.
    let again = run_step(&f.clouds(), false, false, 1).await.expect("done");
    assert_eq!(again.path, Some(SqlPath::Already));
    assert_eq!(f.state().writes.len(), 1);
}

#[tokio::test]
async fn a_dr_replica_fails_over_and_takes_its_primarys_replicas() {
    let f = world(true);
    f.add_sql(
        P,
        "europe-west1",
        "orders-sql-euw1",
        Some("orders-sql"),
        false,
    );
    let out = run_step(&f.clouds(), true, false, 1)
        .await
        .expect("failed over");
    assert_eq!(out.path, Some(SqlPath::DrFailover));
    assert_eq!(role(&f, "orders-sql-use4").await, DbRole::Primary);
    assert_eq!(
        role(&f, "orders-sql-euw1").await,
        DbRole::Replica("orders-sql-use4".into())
    );
}

#[tokio::test]
async fn a_planned_run_switches_a_dr_replica_over_and_loses_nothing() {
    let f = world(true);
    let out = run_step(&f.clouds(), true, true, 1)
        .await
        .expect("switched");
    assert_eq!(out.path, Some(SqlPath::Switchover));
    assert_eq!(f.state().writes, ["instances.switchover orders-sql-use4"]);
    assert_eq!(
        role(&f, "orders-sql").await,
        DbRole::Replica("orders-sql-use4".into()),
        "the old primary is the DR replica now"
    );
    let (v, _) = rpo(
        "orders-sql",
        Some(&serde_json::to_value(&out).unwrap()),
        None,
        Utc::now(),
        "x",
    );
    assert_eq!(v, Some(0.0));
}

#[tokio::test]
async fn an_operation_that_fails_is_named() {
    let f = world(false);
    f.fail_sql(
        "orders-sql-use4",
        "PROMOTE_REPLICA",
        "INTERNAL_ERROR: disk full",
    );
    let e = run_step(&f.clouds(), false, false, 1)
        .await
        .expect_err("the operation failed");
    let text = e.to_string();
    assert!(text.contains("op-0001-orders-sql-use4"), "{text}");
    assert!(text.contains("disk full"), "{text}");
    assert!(matches!(
        role(&f, "orders-sql-use4").await,
        DbRole::Replica(_)
    ));
}

#[tokio::test]
async fn a_resumed_run_waits_on_the_operation_under_way_and_sends_nothing_again() {
    let f = world(false);
    // The first run sent the promotion and crashed before it was done.
    let first = (f.clouds().cloud_sql)
        .promote_sql("us-east4", P, "orders-sql-use4", false)
        .await
        .expect("sent");
    assert_eq!(first.status, SqlOpStatus::Pending);
    let out = run_step(&f.clouds(), false, false, 2)
        .await
        .expect("resumed");
    assert_eq!(out.operation.as_deref(), Some(first.name.as_str()));
    assert!(out.resumed_operation);
    assert_eq!(out.path, Some(SqlPath::Promote));
    assert_eq!(
        f.state().writes,
        ["instances.promoteReplica orders-sql-use4"],
        "promoteReplica sent once"
    );
    assert_eq!(role(&f, "orders-sql-use4").await, DbRole::Primary);
}

/// A plain promotion leaves the old primary writable beside the new one:
/// the run's warnings (and so its report and notifications) say so; a DR
/// failover or a switchover, after which Cloud SQL demotes or rejoins the
/// old primary itself, says nothing.
#[test]
fn a_plain_promotion_warns_that_the_old_primary_stays_writable() {
    let out = |path| {
        serde_json::to_value(PromoteSqlOutput {
            instance: "orders-sql-use4".into(),
            region: "us-east4".into(),
            path: Some(path),
            source: Some("drctl-emu:orders-sql".into()),
            ..Default::default()
        })
        .unwrap()
    };
    let warn = TRAITS.warnings.expect("promote-sql has warnings");
    let said = warn(&out(SqlPath::Promote));
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("the old primary drctl-emu:orders-sql was not demoted and stays writable"),
        "{said:?}"
    );
    assert!(said[0].contains("drctl reprotect refuses until it is"));
    for quiet in [SqlPath::DrFailover, SqlPath::Switchover, SqlPath::Already] {
        assert!(warn(&out(quiet)).is_empty(), "{quiet:?}");
    }
}
