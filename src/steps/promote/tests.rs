//! The promotion through the data role, on the fake cloud, for every kind
//! it covers: RDS read replicas and Cloud SQL replicas (the choice of move
//! is `plan::kinds::promoting`'s, tested there).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{Clouds, SqlOpStatus};
use crate::steps::LagAtPromotion;
use crate::steps::graph::RunMode;
use chrono::DateTime;

const P: &str = "drctl-emu";

/// The RPO a promotion's journal says, as measurement reads it.
fn rpo(
    resource: &str,
    out: Option<&serde_json::Value>,
    gate_lag: Option<f64>,
    origin: DateTime<Utc>,
    label: &str,
) -> (Option<f64>, String) {
    (TRAITS.rpo.expect("a promotion has an RPO"))(resource, out, gate_lag, origin, label)
}

#[test]
fn a_switchover_loses_nothing_and_an_unknown_lag_is_never_zero() {
    let origin = Utc::now();
    let out = |path, lag: Option<f64>| {
        serde_json::to_value(PromoteOutput {
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
        Some(&out(MovePath::Switchover, Some(4.0))),
        None,
        origin,
        "x",
    );
    assert_eq!(v, Some(0.0));
    let (v, basis) = rpo(
        "db",
        Some(&out(MovePath::DrFailover, Some(4.0))),
        None,
        origin,
        "x",
    );
    assert_eq!(v, Some(4.0), "{basis}");
    let (v, basis) = rpo("db", Some(&out(MovePath::Promote, None)), None, origin, "x");
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

/// The promote step of a failover of orders-gcp to us-east4.
async fn run_step(
    clouds: &Clouds,
    dr: bool,
    planned: bool,
    attempt: u32,
) -> Result<PromoteOutput, StepFailure> {
    let plan = plan(dr);
    let mode = RunMode::Failover { planned };
    let g = crate::steps::graph::compile_mode(&plan, "us-east4", &mode).unwrap();
    let step = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::Promote(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a promote step");
    assert_eq!(step.instance, "drctl-emu/orders-sql-use4");
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
    Ok(PromoteOutput::read(&v).expect("its outputs"))
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
    assert_eq!(out.path, Some(MovePath::Promote));
    assert_eq!(out.lag.seconds(), Some(1.5));
    assert_eq!(out.metric, "replica_lag + network_lag");
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    let warned = &out.warnings[0];
    assert!(
        warned.contains("was not demoted and stays writable"),
        "{warned}"
    );
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
    assert_eq!(again.path, Some(MovePath::Already));
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
    assert_eq!(out.path, Some(MovePath::DrFailover));
    assert_eq!(
        out.warnings,
        Vec::<String>::new(),
        "Cloud SQL demotes the old primary itself"
    );
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
    assert_eq!(out.path, Some(MovePath::Switchover));
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
    assert!(
        e.hint().starts_with(
            "read it with `gcloud sql operations describe op-0001-orders-sql-use4 --project drctl-emu`"
        ),
        "{}",
        e.hint()
    );
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
    assert_eq!(out.path, Some(MovePath::Promote));
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
        serde_json::to_value(PromoteOutput {
            instance: "orders-sql-use4".into(),
            region: "us-east4".into(),
            path: Some(path),
            source: Some("drctl-emu:orders-sql".into()),
            ..Default::default()
        })
        .unwrap()
    };
    // A retired `promote-sql` journal's warning, as it said it.
    let warn = RETIRED_SQL.warnings.expect("promote-sql has warnings");
    let said = warn(&out(MovePath::Promote));
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("the old primary drctl-emu:orders-sql was not demoted and stays writable"),
        "{said:?}"
    );
    assert!(said[0].contains("drctl reprotect refuses until it is"));
    for quiet in [
        MovePath::DrFailover,
        MovePath::Switchover,
        MovePath::Already,
    ] {
        assert!(warn(&out(quiet)).is_empty(), "{quiet:?}");
    }
}

fn payments() -> crate::plan::Plan {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/payments.toml");
    let loaded = crate::plan::load(&[path]);
    (loaded.plans.into_iter().next()).expect("payments")
}

/// The promote step of payments' failover to us-west-2, and the fake RDS
/// world it runs in: the primary in us-east-1, its replica in us-west-2.
fn rds_world() -> (FakeCloud, Promote) {
    let plan = payments();
    let mode = RunMode::Failover { planned: false };
    let g = crate::steps::graph::compile_mode(&plan, "us-west-2", &mode).unwrap();
    let step = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::Promote(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a promote step");
    let f = FakeCloud::new();
    let home = plan.spec.database[0].regions["us-east-1"].clone();
    f.add_primary("us-east-1", &home);
    f.add_replica("us-west-2", &step.instance, ("us-east-1", &home));
    f.set_lag("us-west-2", &step.instance, &[3.0, 2.5]);
    (f, step)
}

async fn run_rds(f: &FakeCloud, step: &Promote) -> Result<PromoteOutput, StepFailure> {
    let (clouds, plan, outputs) = (f.clouds(), payments(), BTreeMap::new());
    let cx = Cx {
        run_id: "20261127T220000Z-payments-a1",
        deadline: Instant::now() + Duration::from_secs(60),
        poll: (Duration::from_millis(1), Duration::from_millis(2)),
        ..Cx::for_test(&clouds, &plan, "us-west-2", &outputs, &[])
    };
    Ok(PromoteOutput::read(&step.run(&cx).await?).expect("its outputs"))
}

#[tokio::test]
async fn an_rds_replica_is_promoted_through_the_same_step_and_once() {
    let (f, step) = rds_world();
    assert_eq!(step.of, ResourceKind::Database);
    assert!(!step.dr_replica);
    let out = run_rds(&f, &step).await.expect("promoted");
    assert_eq!(out.path, Some(MovePath::Promote));
    assert_eq!(out.lag.seconds(), Some(2.5));
    assert_eq!(out.metric, "ReplicaLag");
    assert_eq!(out.operation, None, "RDS answers no operation");
    // The old primary stays writable: the run says so.
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].contains("was not demoted and is writable whenever its region answers"),
        "{:?}",
        out.warnings
    );
    assert!(out.source.is_some() && out.endpoint.is_some() && out.port.is_some());
    let (v, basis) = rpo(
        "db",
        Some(&serde_json::to_value(&out).unwrap()),
        None,
        Utc::now(),
        "x",
    );
    assert_eq!(v, Some(2.5));
    assert!(
        basis.contains("ReplicaLag read just before promotion (2 datapoints)"),
        "{basis}"
    );
    let promotions = |f: &FakeCloud| {
        (f.state().writes.iter())
            .filter(|c| c.starts_with("PromoteReadReplica"))
            .count()
    };
    assert_eq!(promotions(&f), 1);
    // A second run finds a primary: nothing is promoted again, and the
    // RPO gate's reading is the RPO.
    let again = run_rds(&f, &step).await.expect("done");
    assert_eq!(again.path, Some(MovePath::Already));
    assert_eq!(again.already_primary, Some(true));
    assert_eq!(promotions(&f), 1);
    let (v, basis) = rpo(
        "db",
        Some(&serde_json::to_value(&again).unwrap()),
        Some(4.0),
        Utc::now(),
        "x",
    );
    assert_eq!(v, Some(4.0));
    assert!(basis.contains("already a primary"), "{basis}");
}

#[tokio::test]
async fn a_missing_rds_replica_is_refused_with_the_kinds_hint() {
    let (f, mut step) = rds_world();
    step.instance = "payments-db-gone".into();
    let e = run_rds(&f, &step).await.expect_err("refused");
    let text = format!("{e} {}", e.hint());
    assert!(
        text.contains("database payments-db-gone does not exist in us-west-2"),
        "{text}"
    );
    assert!(text.contains("drctl reprotect"), "{text}");
}

#[test]
fn an_older_promote_and_a_retired_promote_sql_journal_read_their_values() {
    // What `promote-sql` journaled before it was retired.
    let old = serde_json::json!({
        "instance": "orders-sql-use4",
        "region": "us-east4",
        "project": "drctl-emu",
        "path": "promote",
        "why": "promote read replica orders-sql-use4 of orders-sql",
        "operation": "op-0001-orders-sql-use4",
        "source": "drctl-emu:orders-sql",
        "lag_seconds": 1.5,
        "lag_max_seconds": 2.0,
        "datapoints": 2,
        "endpoint": "orders-sql-use4.us-east4.fake.sql.goog"
    });
    // What `promote` journaled for RDS before the role: no path, no metric.
    let rds = serde_json::json!({
        "instance": "payments-db-usw2",
        "region": "us-west-2",
        "already_primary": true,
        "endpoint": "payments-db-usw2.example.rds.amazonaws.com",
        "port": 5432
    });
    let promote = crate::steps::KindName::Promote.traits();
    let (v, basis) = (promote.rpo.unwrap())("payments-db", Some(&rds), Some(3.0), Utc::now(), "x");
    assert_eq!(v, Some(3.0));
    assert!(
        basis.contains("ReplicaLag recorded by the RPO gate (the instance was already a primary"),
        "{basis}"
    );
    assert_eq!(
        (promote.endpoint.unwrap())(&rds).as_deref(),
        Some("payments-db-usw2.example.rds.amazonaws.com")
    );
    assert!((promote.warnings.unwrap())(&rds).is_empty());
    let retired = crate::steps::KindName::PromoteSql.traits();
    let (v, basis) = (retired.rpo.unwrap())("orders-sql", Some(&old), None, Utc::now(), "x");
    assert_eq!(v, Some(1.5));
    assert!(
        basis.contains("replica_lag read just before promotion"),
        "{basis}"
    );
    let warned = (retired.warnings.unwrap())(&old);
    assert!(
        warned[0].starts_with("Cloud SQL instance orders-sql-use4 in us-east4 was promoted"),
        "{warned:?}"
    );
    assert_eq!(
        (retired.endpoint.unwrap())(&old).as_deref(),
        Some("orders-sql-use4.us-east4.fake.sql.goog")
    );
    assert!(retired.irreversible.is_some());
}

#[test]
fn a_standby_primary_needs_reprotecting_and_a_replica_is_judged_by_its_lag() {
    let at = ("db-use1", "us-east-1");
    let primary = CopyRead::Found {
        primary: true,
        status: "available",
    };
    let p = standby_problems(at, primary, "payments", Some("lag".into()));
    assert_eq!(
        p,
        [
            "database db-use1 in us-east-1 is a primary, not a replica of the active region: run `drctl reprotect --plan payments`"
        ]
    );
    let replica = CopyRead::Found {
        primary: false,
        status: "modifying",
    };
    let p = standby_problems(at, replica, "payments", Some("lag".into()));
    assert_eq!(
        p,
        [
            "lag",
            "database db-use1 in us-east-1 is `modifying`, not available"
        ]
    );
    assert!(standby_problems(at, CopyRead::Unreachable, "payments", Some("lag".into())).is_empty());
}

#[test]
fn a_restore_source_needs_only_to_exist_and_be_available() {
    let restore = |copy| crate::steps::restore_standby_problems("db-use1", "us-east-1", copy);
    let primary = CopyRead::Found {
        primary: true,
        status: "available",
    };
    assert!(restore(primary).is_empty());
    assert_eq!(
        restore(CopyRead::Missing),
        ["database db-use1 does not exist in us-east-1"]
    );
    assert_eq!(
        restore(CopyRead::Unreadable),
        ["database db-use1 in us-east-1 could not be read"]
    );
}

/// The data role's promotion contract, for every kind whose role promotes
/// and every failover of the reference plans to a standby region: the one
/// step makes the standby copy a serving primary with one write, journals
/// the lag as the role's metric, and a second run writes nothing. A kind
/// given the role that no reference plan fails over fails here.
#[tokio::test]
async fn every_kind_whose_data_role_promotes_is_promoted_once_through_the_one_step() {
    let mut covered = std::collections::BTreeSet::new();
    for plan in crate::plan::reference_with_gcp() {
        let home = plan.home().to_string();
        for target in plan.regions().iter().filter(|r| **r != home) {
            for planned in [false, true] {
                let mode = RunMode::Failover { planned };
                let Ok(g) = crate::steps::graph::compile_mode(&plan, target, &mode) else {
                    continue;
                };
                for s in &g.steps {
                    let StepKind::Promote(step) = &s.kind else {
                        continue;
                    };
                    let f = FakeCloud::new();
                    crate::plan::kinds::seed_plan(&f, &plan);
                    let role = step.of.promoting().expect("compiled from its role");
                    let (clouds, outputs) = (f.clouds(), BTreeMap::new());
                    let cx = Cx {
                        run_id: "20261127T220000Z-contract-a1",
                        deadline: Instant::now() + Duration::from_secs(60),
                        poll: (Duration::from_millis(1), Duration::from_millis(2)),
                        ..Cx::for_test(&clouds, &plan, target, &outputs, &g.steps)
                    };
                    let before = f.state().writes.len();
                    let out = PromoteOutput::read(&step.run(&cx).await.expect("promoted"))
                        .expect("its outputs");
                    let moved = f.state().writes.len() - before;
                    let id = &s.id;
                    assert_eq!(moved, 1, "{id}: {:?}", f.state().writes);
                    assert!(
                        matches!(
                            out.path,
                            Some(MovePath::Promote | MovePath::DrFailover | MovePath::Switchover)
                        ),
                        "{id}: {out:?}"
                    );
                    assert_eq!(out.metric, role.about().metric, "{id}");
                    assert!(out.lag.seconds().is_some(), "{id}: the lag journaled");
                    assert!(out.endpoint.is_some(), "{id}: the new primary's endpoint");
                    let now = role.read(&clouds, &step.region, &step.instance).await;
                    let now = now.expect("read").expect("exists");
                    assert!(now.role == DbRole::Primary && now.ready, "{id}: {now:?}");
                    let again = PromoteOutput::read(&step.run(&cx).await.expect("done"))
                        .expect("its outputs");
                    assert_eq!(again.path, Some(MovePath::Already), "{id}");
                    assert_eq!(f.state().writes.len() - before, 1, "{id}: nothing again");
                    covered.insert(step.of);
                }
            }
        }
    }
    let promoting: std::collections::BTreeSet<ResourceKind> = (ResourceKind::ALL.iter().copied())
        .filter(|k| k.promoting().is_some())
        .collect();
    assert_eq!(covered, promoting);
}

/// A backup of the replica under way (no move of a promotion's): its key.
fn running_backup(f: &FakeCloud) -> (String, String) {
    let backup = crate::cloud::SqlOperation {
        name: "backup-1".into(),
        kind: "BACKUP_VOLUME".into(),
        target: "orders-sql-use4".into(),
        status: SqlOpStatus::Running,
        error: None,
        inserted: None,
    };
    let key = (P.to_string(), "backup-1".to_string());
    let effect = crate::cloud::fake::SqlEffect::OldPrimary;
    f.state().sql_ops.insert(key.clone(), (backup, effect));
    key
}

#[tokio::test]
async fn a_move_under_way_is_told_apart_from_another_operation() {
    let f = world(false);
    let key = running_backup(&f);
    let role = ResourceKind::CloudSql
        .promoting()
        .expect("Cloud SQL promotes");
    let (clouds, address) = (f.clouds(), "drctl-emu/orders-sql-use4");
    let found = role.under_way(&clouds, "us-east4", address).await;
    let found = found.expect("listed").expect("the backup");
    assert_eq!(
        (found.name.as_str(), found.path),
        ("backup-1", None),
        "no move of ours"
    );
    f.state()
        .sql_ops
        .get_mut(&key)
        .expect("the backup")
        .0
        .status = SqlOpStatus::Done;
    let sent = (clouds.cloud_sql)
        .promote_sql("us-east4", P, "orders-sql-use4", false)
        .await
        .expect("sent");
    let found = role.under_way(&clouds, "us-east4", address).await;
    let found = found.expect("listed").expect("the promotion");
    assert_eq!(
        (found.name.as_str(), found.path, found.done),
        (sent.name.as_str(), Some(MovePath::Promote), false)
    );
}

/// Cloud SQL takes one operation on an instance at a time (a move asked
/// during a backup is refused, `operationInProgress`): the step waits for
/// the other operation to end, then promotes, once.
#[tokio::test]
async fn another_operation_under_way_is_waited_for_before_the_move() {
    let f = world(false);
    running_backup(&f);
    let out = run_step(&f.clouds(), false, false, 1)
        .await
        .expect("promoted after the backup");
    assert_eq!(out.path, Some(MovePath::Promote));
    assert!(!out.resumed_operation);
    assert_eq!(
        f.state().writes,
        ["instances.promoteReplica orders-sql-use4"]
    );
    assert_eq!(role(&f, "orders-sql-use4").await, DbRole::Primary);
}

/// A resumed run records the move it found under way as the move it is: a
/// switchover as one, a DR replica's promotion with failover as a DR
/// failover; neither is sent again.
#[tokio::test]
async fn a_resumed_run_records_the_move_under_way_as_it_is() {
    let f = world(true);
    (f.clouds().cloud_sql)
        .switchover_sql("us-east4", P, "orders-sql-use4")
        .await
        .expect("sent before the crash");
    let out = run_step(&f.clouds(), true, true, 2).await.expect("resumed");
    assert_eq!(out.path, Some(MovePath::Switchover));
    assert!(out.resumed_operation && out.promoted_at.is_some());
    assert_eq!(f.state().writes, ["instances.switchover orders-sql-use4"]);

    let f = world(true);
    (f.clouds().cloud_sql)
        .promote_sql("us-east4", P, "orders-sql-use4", true)
        .await
        .expect("sent before the crash");
    let out = run_step(&f.clouds(), true, false, 2)
        .await
        .expect("resumed");
    assert_eq!(out.path, Some(MovePath::DrFailover));
    assert!(out.resumed_operation);
    assert_eq!(
        f.state().writes,
        ["instances.promoteReplica orders-sql-use4"]
    );
}

/// Preflight's read of moments ago is the step's first read (one request
/// fewer on the recovery path): a copy that changed since is acted on as
/// read, and the provider's refusal fails the step, to be run again; a
/// read older than that is not trusted, and the step reads.
#[tokio::test]
async fn a_fresh_preflight_read_is_acted_on_and_a_stale_one_read_again() {
    let (f, step) = rds_world();
    let (clouds, plan) = (f.clouds(), payments());
    let findings = {
        let outputs = BTreeMap::new();
        let cx = Cx::for_test(&clouds, &plan, "us-west-2", &outputs, &[]);
        step.preflight(&cx).await
    };
    assert!(findings[0].facts.is_object(), "{findings:?}");
    let with_preflight = |read_at: DateTime<Utc>| {
        let pre = crate::steps::PreflightOutput {
            checked: findings.clone(),
            read_at,
            notes: Vec::new(),
        };
        let id = format!("{}/preflight", plan.name());
        BTreeMap::from([(id, serde_json::to_value(&pre).expect("json"))])
    };
    // Promoted by someone else since preflight read it a replica.
    (clouds.database)
        .promote_replica("us-west-2", &step.instance)
        .await
        .expect("promoted by hand");
    for (read_at, acted_on) in [
        (Utc::now(), true),
        (Utc::now() - chrono::Duration::minutes(5), false),
    ] {
        let outputs = with_preflight(read_at);
        let cx = Cx {
            run_id: "20261127T220000Z-payments-a1",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(&clouds, &plan, "us-west-2", &outputs, &[])
        };
        let ran = step.run(&cx).await;
        if acted_on {
            let e = ran.expect_err("the provider refuses a promotion of a primary");
            assert!(e.to_string().contains("PromoteReadReplica"), "{e}");
        } else {
            let out = PromoteOutput::read(&ran.expect("read again")).expect("its outputs");
            assert_eq!(out.path, Some(MovePath::Already));
        }
    }
}

/// An Aurora global database's move through the same step: a managed
/// failover with its lag and the snapshot's warning, a switchover when
/// planned, a detach when the managed failover is refused, never a detach
/// in a planned run, and nothing asked of a home region that is down.
mod aurora {
    use super::*;

    fn orders() -> crate::plan::Plan {
        (crate::plan::reference().into_iter())
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
        f.set_lag("us-east-1", "orders-use1", &[2.0, 1.5]);
        f
    }

    /// The promote step of a failover of orders to us-east-1.
    async fn run_step(clouds: &Clouds, planned: bool) -> Result<PromoteOutput, StepFailure> {
        let v = with_step(clouds, planned, |step, cx| Box::pin(step.run(cx))).await?;
        Ok(PromoteOutput::read(&v).expect("its outputs"))
    }

    /// `act` on the promote step of the global database, as a failover
    /// (`planned`: a planned one) to us-east-1 compiles it.
    async fn with_step<T>(
        clouds: &Clouds,
        planned: bool,
        act: impl for<'a> FnOnce(
            &'a crate::steps::promote::Promote,
            &'a Cx<'a>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, StepFailure>> + Send + 'a>,
        >,
    ) -> Result<T, StepFailure> {
        let plan = orders();
        let mode = RunMode::Failover { planned };
        let g = crate::steps::graph::compile_mode(&plan, "us-east-1", &mode).unwrap();
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::Promote(s) if s.of == ResourceKind::GlobalDatabase => Some(s.clone()),
                _ => None,
            })
            .expect("a promote step of the global database");
        assert_eq!(step.instance, "orders-global/orders-use1");
        assert_eq!((step.dr_replica, step.planned), (true, planned));
        let outputs = BTreeMap::new();
        let cx = Cx {
            run_id: "20261125T060000Z-orders-a1",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(clouds, &plan, "us-east-1", &outputs, &g.steps)
        };
        act(&step, &cx).await
    }

    /// Issue 74, attack 4: the preview people approve named the managed
    /// failover only; when AWS refused it, the run detached the secondary
    /// (`RemoveFromGlobalCluster`), which nobody approved. The fallback is
    /// a row of the preview, so of its hash; a switchover has none.
    #[tokio::test]
    async fn the_preview_of_a_managed_failover_names_its_detach_fallback() {
        let f = world();
        let rows = with_step(&f.clouds(), false, |step, cx| Box::pin(step.preview(cx)))
            .await
            .unwrap();
        let calls: Vec<&str> = rows.iter().map(|r| r.call.as_str()).collect();
        assert_eq!(
            calls,
            ["rds:FailoverGlobalCluster", "rds:RemoveFromGlobalCluster"]
        );
        assert!(
            rows[1]
                .desired
                .starts_with("only if rds:FailoverGlobalCluster is refused"),
            "{rows:?}"
        );
        let planned = with_step(&f.clouds(), true, |step, cx| Box::pin(step.preview(cx)))
            .await
            .unwrap();
        assert_eq!(planned.len(), 1, "{planned:?}");
        assert!(f.state().writes.is_empty());
    }

    async fn writer(f: &FakeCloud) -> String {
        let g = (f.clouds().aurora)
            .describe_global("us-east-1", "orders-global")
            .await;
        let g = g.expect("read").expect("exists");
        g.writer().map(|w| w.id.clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn an_unplanned_failover_moves_the_writer_with_its_lag_and_warns_of_the_snapshot() {
        let f = world();
        let out = run_step(&f.clouds(), false).await.expect("fails over");
        assert_eq!(out.path, Some(MovePath::DrFailover));
        assert_eq!(writer(&f).await, "orders-use1");
        assert_eq!(out.lag.seconds(), Some(1.5));
        assert_eq!(out.lag.read_by.as_deref(), Some("promote"));
        assert_eq!(out.metric, "AuroraGlobalDBRPOLag");
        assert!(
            (out.warnings.iter()).any(|w| w.contains("rds:unplanned-global-failover-")
                && w.contains("old writer arn:aws:rds")),
            "{out:?}"
        );
        assert!(
            (out.endpoint.as_deref()).is_some_and(|e| e.starts_with("orders-use1.")),
            "{out:?}"
        );
        assert_eq!(f.state().writes, ["FailoverGlobalCluster orders-global"]);
        let (v, basis) = rpo(
            "orders-db",
            Some(&serde_json::to_value(&out).unwrap()),
            None,
            Utc::now(),
            "x",
        );
        assert_eq!(v, Some(1.5));
        assert!(
            basis.contains("AuroraGlobalDBRPOLag read just before the failover"),
            "{basis}"
        );
        // Run again (a resume): the target writes; nothing is sent.
        let again = run_step(&f.clouds(), false).await.expect("done");
        assert_eq!(again.path, Some(MovePath::Already));
        assert_eq!(f.state().writes.len(), 1);
    }

    #[tokio::test]
    async fn a_planned_failover_switches_over_and_loses_nothing() {
        let f = world();
        let out = run_step(&f.clouds(), true).await.expect("switches over");
        assert_eq!(out.path, Some(MovePath::Switchover));
        assert_eq!(writer(&f).await, "orders-use1");
        assert!(out.warnings.is_empty(), "{out:?}");
        assert!(
            f.state().cluster_snapshots.is_empty(),
            "no snapshot after a switchover"
        );
        assert_eq!(f.state().writes, ["SwitchoverGlobalCluster orders-global"]);
        let value = serde_json::to_value(&out).unwrap();
        assert_eq!(
            rpo("orders-db", Some(&value), None, Utc::now(), "x").0,
            Some(0.0)
        );
    }

    #[tokio::test]
    async fn a_refused_managed_failover_detaches_the_target_and_says_the_global_cluster_must_be_rebuilt()
     {
        let f = world();
        f.state().refuse_moves.insert(
            "FailoverGlobalCluster".into(),
            "InvalidGlobalClusterStateFault".into(),
        );
        let out = run_step(&f.clouds(), false).await.expect("detaches");
        assert_eq!(out.path, Some(MovePath::Detach));
        assert!(out.rebuild_needed);
        assert!(
            (out.why.iter())
                .any(|w| w.contains("refused") && w.contains("InvalidGlobalClusterStateFault")),
            "{:?}",
            out.why
        );
        assert!(
            (out.warnings.iter()).any(|w| w.contains("must be rebuilt")),
            "{out:?}"
        );
        let c = (f.clouds().aurora)
            .describe_cluster("us-east-1", "orders-use1")
            .await;
        let c = c.expect("read").expect("exists");
        assert_eq!(c.global_cluster, None, "standalone");
        assert_eq!(
            writer(&f).await,
            "orders-usw2",
            "the old writer is left alone"
        );
        // A resume finds it detached: done, nothing sent again.
        let again = run_step(&f.clouds(), false).await.expect("done");
        assert_eq!(again.path, Some(MovePath::Detach));
        assert_eq!(f.state().writes, ["RemoveFromGlobalCluster orders-use1"]);
    }

    #[tokio::test]
    async fn a_planned_run_does_not_detach_when_the_switchover_is_refused() {
        let f = world();
        f.state().refuse_moves.insert(
            "SwitchoverGlobalCluster".into(),
            "InvalidGlobalClusterStateFault".into(),
        );
        let e = run_step(&f.clouds(), true).await.expect_err("refused");
        assert!(
            e.summary().contains("InvalidGlobalClusterStateFault"),
            "{e}"
        );
        assert_eq!(writer(&f).await, "orders-usw2");
        assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
    }

    #[tokio::test]
    async fn with_the_home_region_dead_the_failover_is_asked_of_the_target_only() {
        let f = world();
        f.state().dead_regions.insert("us-west-2".into());
        let out = run_step(&f.clouds(), false).await.expect("fails over");
        assert_eq!(out.path, Some(MovePath::DrFailover));
        assert_eq!(writer(&f).await, "orders-use1");
    }

    /// A switchover asked before a crash, still under way when the run is
    /// resumed (a timed world: AWS takes its time): waited on, not asked
    /// again, and journaled as the switchover it is (its RPO 0 by design),
    /// with the lag read when the step found it.
    #[tokio::test(start_paused = true)]
    async fn a_resumed_switchover_under_way_is_waited_on_and_said_a_switchover() {
        let f = FakeCloud::timed(crate::cloud::model::Model::aws().unwrap(), 7);
        f.add_global(
            "orders-global",
            &[
                ("us-west-2", "orders-usw2"),
                ("us-east-1", "orders-use1"),
                ("eu-west-1", "orders-euw1"),
            ],
        );
        f.set_lag("us-east-1", "orders-use1", &[0.5]);
        let clouds = f.clouds();
        let arn = (clouds
            .aurora
            .describe_cluster("us-east-1", "orders-use1")
            .await)
            .expect("read")
            .expect("exists")
            .arn;
        (clouds.aurora)
            .switchover_global("us-east-1", "orders-global", &arn)
            .await
            .expect("asked before the crash");
        let plan = orders();
        let mode = RunMode::Failover { planned: true };
        let g = crate::steps::graph::compile_mode(&plan, "us-east-1", &mode).unwrap();
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::Promote(s) if s.of == ResourceKind::GlobalDatabase => Some(s.clone()),
                _ => None,
            })
            .expect("a promote step of the global database");
        let outputs = BTreeMap::new();
        let cx = Cx {
            run_id: "20261125T060000Z-orders-a1",
            deadline: Instant::now() + Duration::from_secs(3600),
            attempt: 2,
            ..Cx::for_test(&clouds, &plan, "us-east-1", &outputs, &g.steps)
        };
        let out = PromoteOutput::read(&step.run(&cx).await.expect("resumed")).expect("outputs");
        assert_eq!(out.path, Some(MovePath::Switchover), "{out:?}");
        assert!(out.resumed_operation && out.warnings.is_empty(), "{out:?}");
        assert_eq!(out.lag.seconds(), Some(0.5));
        assert_eq!(writer(&f).await, "orders-use1");
        assert_eq!(f.state().writes, ["SwitchoverGlobalCluster orders-global"]);
        let value = serde_json::to_value(&out).unwrap();
        assert_eq!(
            rpo("orders-db", Some(&value), None, Utc::now(), "x").0,
            Some(0.0)
        );
    }

    #[test]
    fn a_retired_switch_global_journal_reads_its_values() {
        let old = serde_json::json!({
            "cluster": "orders-use1",
            "region": "us-east-1",
            "global": "orders-global",
            "path": "failover",
            "why": ["an unplanned failover"],
            "old_writer": "arn:aws:rds::123456789012:cluster:orders-usw2",
            "lag_seconds": 2.0,
            "lag_datapoints": 3,
            "moved_at": "2026-11-25T06:00:00Z",
            "endpoint": "orders-use1.cluster-x.us-east-1.rds.amazonaws.com",
            "warnings": ["after an unplanned failover AWS keeps a snapshot"]
        });
        let read = PromoteOutput::read(&old).expect("reads");
        assert_eq!(read.instance, "orders-use1");
        assert_eq!(read.path, Some(MovePath::DrFailover));
        assert!(read.source.is_some() && read.promoted_at.is_some());
        let retired = crate::steps::KindName::SwitchGlobal.traits();
        let (v, basis) = (retired.rpo.unwrap())("orders-db", Some(&old), None, Utc::now(), "x");
        assert_eq!(v, Some(2.0));
        assert!(
            basis.contains("AuroraGlobalDBRPOLag read just before the failover (3 datapoints)"),
            "{basis}"
        );
        assert_eq!((retired.warnings.unwrap())(&old).len(), 1);
        assert!((retired.endpoint.unwrap())(&old).is_some());
        assert!(retired.irreversible.is_some());
    }
}
