//! Finding the old primary's operation (pure), and the step on the fake
//! cloud after a promotion: followed to done, pending with its region
//! down, failed with Cloud SQL's error, bounded, and never a name the plan
//! does not have.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{Clouds, SqlOpStatus, SqlOperation};
use crate::plan::kinds::sql_moves::MovePath;
use crate::steps::graph::RunMode;

const P: &str = "drctl-emu";

fn op(name: &str, kind: &str, status: SqlOpStatus, at: Option<DateTime<Utc>>) -> SqlOperation {
    SqlOperation {
        name: name.into(),
        kind: kind.into(),
        target: "orders-sql".into(),
        status,
        error: None,
        inserted: at,
    }
}

#[test]
fn the_newest_operation_of_the_moves_kind_since_the_promotion_is_the_one() {
    let promoted = Utc::now();
    let k = "RECONFIGURE_OLD_PRIMARY";
    let old = op(
        "old",
        k,
        SqlOpStatus::Done,
        Some(promoted - chrono::TimeDelta::hours(3)),
    );
    assert_eq!(decide(k, Some(promoted), &[]), Look::NotYet);
    assert_eq!(
        decide(k, Some(promoted), std::slice::from_ref(&old)),
        Look::NotYet,
        "a former move's operation is not this run's"
    );
    let other = op(
        "other",
        "BACKUP_VOLUME",
        SqlOpStatus::Running,
        Some(promoted),
    );
    let ours = op("ours", k, SqlOpStatus::Running, Some(promoted));
    assert_eq!(
        decide(
            k,
            Some(promoted),
            &[other.clone(), ours.clone(), old.clone()]
        ),
        Look::Running(ours.clone())
    );
    let done = SqlOperation {
        status: SqlOpStatus::Done,
        ..ours
    };
    assert_eq!(
        decide(k, Some(promoted), &[other, done.clone(), old]),
        Look::Over(done)
    );
    // Within the clocks' slack, and with no time known, it counts.
    let early = op(
        "early",
        k,
        SqlOpStatus::Done,
        Some(promoted - chrono::TimeDelta::seconds(30)),
    );
    assert_eq!(
        decide(k, Some(promoted), std::slice::from_ref(&early)),
        Look::Over(early.clone())
    );
    assert_eq!(
        decide(k, None, std::slice::from_ref(&early)),
        Look::Over(early)
    );
}

#[test]
fn each_move_has_its_old_side_kind() {
    assert_eq!(
        old_side_kind(MovePath::Promote),
        Some("RECONFIGURE_OLD_PRIMARY")
    );
    assert_eq!(
        old_side_kind(MovePath::DrFailover),
        Some("RECONFIGURE_OLD_PRIMARY")
    );
    assert_eq!(
        old_side_kind(MovePath::Switchover),
        Some("SWITCHOVER_TO_REPLICA")
    );
    assert_eq!(old_side_kind(MovePath::Already), None);
}

fn plan(wait: &str) -> crate::plan::Plan {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
    let loaded = crate::plan::load(&[path]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let mut p = loaded.plans.into_iter().next().expect("orders-gcp");
    p.spec.cloud_sql[0].dr_replica = true;
    p.spec.cloud_sql[0].old_primary_wait = Some(wait.into());
    p
}

fn world() -> FakeCloud {
    let f = FakeCloud::new();
    f.add_sql(P, "us-central1", "orders-sql", None, false);
    f.add_sql(P, "us-east4", "orders-sql-use4", Some("orders-sql"), true);
    f.set_lag("us-east4", "orders-sql-use4", &[1.0]);
    f
}

/// A failover (`planned`: a switchover) of orders-gcp to us-east4 on `f`:
/// its graph and the outputs of the steps run so far.
struct Run {
    plan: crate::plan::Plan,
    graph: Vec<crate::steps::graph::Step>,
    outputs: BTreeMap<String, Value>,
}

impl Run {
    fn new(planned: bool, wait: &str) -> Self {
        Self::of(RunMode::Failover { planned }, wait)
    }

    fn of(mode: RunMode, wait: &str) -> Self {
        let plan = plan(wait);
        let g = crate::steps::graph::compile_mode(&plan, "us-east4", &mode).unwrap();
        Run {
            plan,
            graph: g.steps,
            outputs: BTreeMap::new(),
        }
    }

    fn step(&self, name: KindName) -> crate::steps::graph::Step {
        (self.graph.iter())
            .find(|s| s.kind.name() == name)
            .unwrap_or_else(|| panic!("a {name} step"))
            .clone()
    }

    /// Runs the graph's step of kind `name`; its journaled outputs.
    async fn run(&mut self, f: &FakeCloud, name: KindName) -> Value {
        self.try_run(f, name).await.expect("the step")
    }

    /// Runs the graph's step of kind `name`.
    async fn try_run(&mut self, f: &FakeCloud, name: KindName) -> Result<Value, StepFailure> {
        let clouds: Clouds = f.clouds();
        let step = self.step(name);
        let cx = Cx {
            run_id: "20261126T060000Z-orders-gcp-a1",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(&clouds, &self.plan, "us-east4", &self.outputs, &self.graph)
        };
        let v = step.kind.action().run(&cx).await?;
        self.outputs.insert(step.id.to_string(), v.clone());
        Ok(v)
    }
}

/// Promotes, then follows the old side; `between` runs in between.
async fn settle(
    f: &FakeCloud,
    planned: bool,
    wait: &str,
    between: impl FnOnce(&FakeCloud),
) -> (Run, SettleSqlOutput, Value) {
    let mut run = Run::new(planned, wait);
    let settle = run.step(KindName::SettleSql);
    assert!(settle.resources.is_empty(), "nothing is ordered after it");
    assert_eq!(settle.phase, Phase::Verify, "after the traffic moved");
    run.run(f, KindName::Promote).await;
    between(f);
    let v = run.run(f, KindName::SettleSql).await;
    (run, SettleSqlOutput::read(&v).expect("its outputs"), v)
}

fn settled(v: &Value) -> Settled {
    let s = Run::new(false, "2m").step(KindName::SettleSql);
    s.kind.action().settled(v)
}

#[tokio::test]
async fn a_dr_failovers_reconfiguration_of_the_old_primary_is_followed_to_done() {
    let f = world();
    let (_, out, v) = settle(&f, false, "2m", |_| {}).await;
    assert_eq!(out.state, OldSide::Done, "{out:?}");
    assert_eq!(out.old_primary.as_deref(), Some("orders-sql"));
    assert_eq!(out.old_region.as_deref(), Some("us-central1"));
    assert_eq!(
        out.operation_type.as_deref(),
        Some("RECONFIGURE_OLD_PRIMARY")
    );
    assert!(out.operation.is_some(), "{out:?}");
    assert_eq!((TRAITS.warnings.unwrap())(&v), Vec::<String>::new());
    assert_eq!(settled(&v), Settled::Yes);
}

#[tokio::test]
async fn a_switchovers_part_on_the_old_primary_is_followed() {
    let f = world();
    let (_, out, _) = settle(&f, true, "2m", |_| {}).await;
    assert_eq!(
        (out.state, out.operation_type.as_deref()),
        (OldSide::Done, Some("SWITCHOVER_TO_REPLICA")),
        "{out:?}"
    );
}

#[tokio::test]
async fn with_the_old_region_down_the_old_side_is_pending_until_a_resume_finds_it_done() {
    let f = world();
    let (mut run, out, v) = settle(&f, false, "2m", |f| {
        f.state().dead_regions.insert("us-central1".into());
    })
    .await;
    assert_eq!(out.state, OldSide::Pending, "{out:?}");
    assert!(out.why.starts_with("its region did not answer"), "{out:?}");
    assert_eq!(settled(&v), Settled::Pending);
    let warnings = (TRAITS.warnings.unwrap())(&v);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .contains("RECONFIGURE_OLD_PRIMARY of the old primary orders-sql in us-central1")
            && warnings[0].contains("is pending")
            && warnings[0].contains("drctl runs resume"),
        "{warnings:?}"
    );
    assert_eq!(
        Settled::outcome([Settled::Yes, Settled::Pending]),
        Some(crate::journal::Outcome::Pending)
    );
    assert_eq!(
        Settled::outcome([Settled::Pending, Settled::EvidenceMissing]),
        Some(crate::journal::Outcome::EvidenceIncomplete),
        "missing evidence is said first"
    );
    assert_eq!(Settled::outcome([Settled::Yes]), None);
    // The step again (a resume), the region back: followed to done.
    f.state().dead_regions.remove("us-central1");
    let again = SettleSqlOutput::read(&run.run(&f, KindName::SettleSql).await).unwrap();
    assert_eq!(again.state, OldSide::Done, "{again:?}");
}

#[tokio::test]
async fn a_failed_reconfiguration_is_named_with_cloud_sqls_error() {
    let f = world();
    f.fail_sql(
        "orders-sql",
        "RECONFIGURE_OLD_PRIMARY",
        "INTERNAL_ERROR: disk gone",
    );
    let (_, out, v) = settle(&f, false, "2m", |_| {}).await;
    assert_eq!(out.state, OldSide::Failed, "{out:?}");
    assert!(
        out.error
            .as_deref()
            .is_some_and(|e| e.contains("disk gone")),
        "{out:?}"
    );
    assert_eq!(settled(&v), Settled::Yes, "nothing a resume could do");
    let warnings = (TRAITS.warnings.unwrap())(&v);
    assert!(
        warnings.len() == 1 && warnings[0].contains("failed: INTERNAL_ERROR: disk gone"),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn the_wait_is_bounded_and_an_operation_still_under_way_is_pending() {
    let f = world();
    let (_, out, v) = settle(&f, false, "0s", |_| {}).await;
    assert_eq!(out.state, OldSide::Pending, "{out:?}");
    assert_eq!(out.why, "still under way after 0 s");
    assert_eq!(settled(&v), Settled::Pending);
}

#[tokio::test]
async fn an_old_primary_the_plan_does_not_name_is_not_followed() {
    let f = world();
    let mut run = Run::new(false, "2m");
    run.run(&f, KindName::Promote).await;
    // The promotion's journaled source edited to another instance.
    let id = run.step(KindName::Promote).id.to_string();
    let promoted = run.outputs.get_mut(&id).expect("promoted");
    promoted["source"] = "someone-elses-db".into();
    let writes = f.state().writes.clone();
    let v = run.run(&f, KindName::SettleSql).await;
    let out = SettleSqlOutput::read(&v).unwrap();
    assert_eq!(out.state, OldSide::Nothing, "{out:?}");
    assert!(out.why.contains("is not one of the plan's"), "{out:?}");
    assert_eq!(f.state().writes, writes, "the step never writes");
}

#[tokio::test]
async fn nothing_is_followed_when_the_target_was_a_primary_already() {
    let f = FakeCloud::new();
    f.add_sql(P, "us-central1", "orders-sql", None, false);
    f.add_sql(P, "us-east4", "orders-sql-use4", None, false);
    let (_, out, v) = settle(&f, false, "2m", |_| {}).await;
    assert_eq!(out.state, OldSide::Nothing, "{out:?}");
    assert!(out.why.contains("was a primary already"), "{out:?}");
    assert_eq!(settled(&v), Settled::Yes);
}

/// A failed reconfiguration leaves the old primary standing alone, and
/// reprotect refuses, naming the operation and its error, rather than
/// waiting for a rejoin that will not come.
#[tokio::test]
async fn reprotect_refuses_an_old_primary_whose_reconfiguration_failed() {
    let f = world();
    f.fail_sql(
        "orders-sql",
        "RECONFIGURE_OLD_PRIMARY",
        "INTERNAL_ERROR: disk gone",
    );
    let (_, out, _) = settle(&f, false, "2m", |_| {}).await;
    assert_eq!(out.state, OldSide::Failed, "{out:?}");
    let mut reprotect = Run::of(RunMode::Reprotect, "2m");
    let err = (reprotect.try_run(&f, KindName::Reprotect).await)
        .expect_err("refused")
        .to_string();
    assert!(
        err.contains("reconfiguration of the former primary orders-sql in us-central1")
            && err.contains("disk gone"),
        "{err}"
    );
}

/// A promotion found under way by a resumed run still names the old
/// primary and when it was asked for: its old side is followed.
#[tokio::test]
async fn after_a_resumed_promotion_the_old_side_is_still_followed() {
    let f = world();
    // The first attempt's call went out; its answer was lost (the process
    // died): the operation is under way when the step runs again.
    let sent = (f.clouds().cloud_sql)
        .promote_sql("us-east4", P, "orders-sql-use4", true)
        .await
        .expect("sent");
    let (run, out, _) = settle(&f, false, "2m", |_| {}).await;
    let id = run.step(KindName::Promote).id.to_string();
    let promoted = &run.outputs[&id];
    assert_eq!(
        (
            promoted["operation"].as_str(),
            promoted["resumed_operation"].as_bool()
        ),
        (Some(sent.name.as_str()), Some(true)),
        "{promoted:#}"
    );
    assert_eq!(promoted["source"], "orders-sql", "{promoted:#}");
    assert_eq!(
        (out.state, out.old_primary.as_deref()),
        (OldSide::Done, Some("orders-sql")),
        "{out:?}"
    );
}
