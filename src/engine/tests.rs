//! Engine unit tests against the in-memory cloud (fast; the emulator tests in
//! `tests/it/failover.rs` run the same flows through the real adapters).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::cloud::DbRole;
use crate::cloud::fake::FakeCloud;
use crate::journal::event::{Decision, GateName, Record, RunKind};
use crate::journal::store::MemoryStore;
use crate::runs::replay::StepState;
use crate::runs::report_from_records;

#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<String>>, Mutex<Vec<String>>);

impl Recorder {
    /// What the engine said on the progress sink (`Reporter::note`).
    pub(super) fn notes(&self) -> Vec<String> {
        self.1.lock().unwrap().clone()
    }
}

impl Reporter for Recorder {
    fn started(&self, step: &Step) {
        self.0.lock().unwrap().push(format!("start {}", step.id));
    }
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, _: Duration) {
        self.0.lock().unwrap().push(format!(
            "{} {}",
            if result.is_ok() { "done" } else { "failed" },
            step.id
        ));
    }
    fn note(&self, text: &str) {
        self.1.lock().unwrap().push(text.to_string());
    }
}

/// The reference plans served from us-west-2 (payments and ledger): the
/// ones a failover to us-east-1 moves.
fn plans() -> Vec<Plan> {
    crate::plan::reference()
        .into_iter()
        .filter(|p| ["payments", "ledger"].contains(&p.name()))
        .collect()
}

/// The reference `payments` plan alone.
pub(super) fn payments() -> Vec<Plan> {
    plans()
        .into_iter()
        .filter(|p| p.name() == "payments")
        .collect()
}

pub(super) fn world() -> FakeCloud {
    crate::cloud::fake::reference_world((&[3.0], &[1200.0]))
}

pub(super) fn engine(
    f: &FakeCloud,
    dir: &std::path::Path,
) -> (Engine, Arc<MemoryStore>, Arc<Recorder>) {
    let store = Arc::new(MemoryStore::new());
    let rec = Arc::new(Recorder::default());
    let e = Engine {
        clouds: f.clouds(),
        side_clouds: f.clouds(),
        store: store.clone(),
        locks: std::sync::Arc::new(crate::state::local::LocalLocks::new(dir.to_path_buf())),
        reporter: rec.clone(),
        confirm: None,
        notify: None,
        waits: None,
        inventory: None,
    };
    (e, store, rec)
}

pub(super) fn opts() -> RunOptions {
    RunOptions {
        approve: Some("test".into()),
        pace: crate::engine::Pace {
            poll: (Duration::from_millis(1), Duration::from_millis(5)),
            ..Default::default()
        },
        ..RunOptions::failover("us-east-1")
    }
}

#[tokio::test]
async fn failover_of_all_plans_runs_critical_first_and_measures() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, rec) = engine(&f, dir.path());
    let o = RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        parallelism: 1,
        ..opts()
    };
    let report = e.run(&plans(), &o).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    // With one slot, every payments step (critical) that is ready runs before ledger's.
    let events = rec.0.lock().unwrap().clone();
    assert_eq!(events[0], "start payments/preflight");
    assert_eq!(events[2], "start payments/raise:payments-api", "{events:?}");
    let rpo: Vec<Option<f64>> = report.measures.iter().map(|m| m.rpo.seconds).collect();
    assert_eq!(rpo, [Some(3.0), Some(1200.0)]);
    assert_eq!(report.measures[1].rpo.met, Some(false));
    assert_eq!(
        f.state().databases[&("us-east-1".to_string(), "payments-db-use1".to_string())].role,
        DbRole::Primary
    );
}

/// Issue 40: maintenance AWS will apply to the copy a failover promotes is
/// said before the run moves to it, read through the data role in
/// preflight, and carried to the run's warnings; it never stops the run.
#[tokio::test]
async fn preflight_says_the_maintenance_pending_on_the_target_copy() {
    let f = world();
    let key = (
        "us-east-1".to_string(),
        crate::cloud::MaintenanceOf::Instance,
        "payments-db-use1".to_string(),
    );
    let pending = crate::cloud::PendingMaintenance {
        action: "system-update".into(),
        description: Some("Upgrade to the latest OS".into()),
        auto_applied_after: None,
        forced_apply: None,
        current_apply: None,
        opt_in: None,
    };
    f.state().maintenance.insert(key, vec![pending]);
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let payments: Vec<Plan> = (plans().into_iter())
        .filter(|p| p.name() == "payments")
        .collect();
    let report = e.run(&payments, &opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    let said = "payments-db (payments-db-use1 in us-east-1): pending maintenance `system-update` (no date set)";
    assert!(
        report.warnings.iter().any(|w| w.starts_with(said)),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn rpo_gate_refuses_and_journals_the_lag() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let ledger: Vec<Plan> = plans()
        .into_iter()
        .filter(|p| p.name() == "ledger")
        .collect();
    let err = e.run(&ledger, &opts()).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Refused(ref m) if m.contains("20m") && m.contains("RPO of 15m")),
        "{err}"
    );
    assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
    let id = store.list().await.unwrap().pop().unwrap();
    let text = store.read(&id).await.unwrap();
    assert!(
        text.contains("\"lag_seconds\":1200.0") && text.contains("\"decision\":\"refuse\""),
        "{text}"
    );
    // Accepting less than the lag is still refused; covering it passes.
    let short = RunOptions {
        accept_data_loss: Some(Duration::from_secs(600)),
        ..opts()
    };
    assert!(e.run(&ledger, &short).await.is_err());
    let enough = RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        ..opts()
    };
    assert_eq!(
        e.run(&ledger, &enough).await.unwrap().outcome,
        Outcome::Succeeded
    );
}

#[tokio::test]
async fn unknown_lag_needs_accept_data_loss() {
    let f = world();
    f.state().lag.clear();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let payments = payments();
    let err = e.run(&payments, &opts()).await.unwrap_err();
    assert!(err.to_string().contains("unknown"), "{err}");
    let ok = RunOptions {
        accept_data_loss: Some(Duration::from_secs(60)),
        ..opts()
    };
    let r = e.run(&payments, &ok).await.unwrap();
    assert_eq!(
        r.measures[0].rpo.seconds, None,
        "unknown lag is reported as unknown, never zero"
    );
}

#[tokio::test]
async fn approval_is_required_without_a_terminal() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let payments = payments();
    let o = RunOptions {
        approve: None,
        ..opts()
    };
    let err = e.run(&payments, &o).await.unwrap_err();
    assert!(err.to_string().contains("--approve"), "{err}");
    let o = RunOptions {
        approve: None,
        emergency: true,
        ..opts()
    };
    let r = e.run(&payments, &o).await.unwrap();
    assert!(r.approve_by.is_some());
}

#[tokio::test]
async fn a_failed_step_halts_and_resume_finishes_the_run() {
    let f = world();
    // The target group is missing: preflight fails, nothing else starts.
    let cap = f
        .state()
        .scaled
        .remove(&("compute", "us-east-1".into(), "payments-api-use1".into()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, rec) = engine(&f, dir.path());
    let payments = payments();
    let r = e.run(&payments, &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(
        rec.0.lock().unwrap().as_slice(),
        ["start payments/preflight", "failed payments/preflight"]
    );
    assert!(
        r.resume
            .as_deref()
            .unwrap()
            .starts_with("drctl runs resume ")
    );
    assert!(f.state().writes.is_empty());
    // Fix the world, resume: the run completes and the lock is free again.
    f.state().scaled.insert(
        ("compute", "us-east-1".into(), "payments-api-use1".into()),
        cap,
    );
    let r2 = e.resume(&r.run_id, &payments, Some(opts())).await.unwrap();
    assert_eq!(r2.outcome, Outcome::Succeeded);
    assert!(!dir.path().join("locks/payments.lock").exists());
    let again = e
        .resume(&r.run_id, &payments, Some(opts()))
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already finished"), "{again}");
}

#[tokio::test]
async fn dry_run_changes_nothing_and_lists_every_call() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let (rows, _) = e.preview(&plans(), &opts()).await.unwrap();
    assert!(f.state().writes.is_empty());
    assert!(store.list().await.unwrap().is_empty());
    let calls: Vec<String> = rows
        .iter()
        .flat_map(|r| r.calls.as_ref().unwrap().iter().map(|c| c.call.clone()))
        .collect();
    assert!(calls.iter().any(|c| c == "rds:PromoteReadReplica"));
    assert!(
        calls
            .iter()
            .any(|c| c == "autoscaling:UpdateAutoScalingGroup")
    );
}

#[tokio::test]
async fn reprotect_parks_the_old_primary_and_creates_a_replica() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let payments = payments();
    e.run(&payments, &opts()).await.unwrap();
    // The old primary's network and key, and an encrypted new primary.
    {
        let mut s = f.state();
        let old = s
            .databases
            .get_mut(&("us-west-2".to_string(), "payments-db".to_string()))
            .unwrap();
        old.subnet_group = Some("drctl-db-usw2".into());
        old.security_groups = vec!["sg-usw2".into()];
        old.multi_az = true;
        old.storage_encrypted = true;
        old.kms_key_id = Some("arn:aws:kms:us-west-2:123456789012:key/usw2".into());
        s.databases
            .get_mut(&("us-east-1".to_string(), "payments-db-use1".to_string()))
            .unwrap()
            .storage_encrypted = true;
    }
    let o = RunOptions {
        kind: RunKind::Reprotect,
        mode: RunMode::Reprotect,
        ..opts()
    };
    let r = e.run(&payments, &o).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded);
    let s = f.state();
    let home = &s.databases[&("us-west-2".to_string(), "payments-db".to_string())];
    assert!(
        matches!(&home.role, DbRole::Replica(src) if src.ends_with(":db:payments-db-use1")),
        "{home:?}"
    );
    // The new replica lands where the old primary was.
    assert_eq!(home.subnet_group.as_deref(), Some("drctl-db-usw2"));
    assert_eq!(home.security_groups, ["sg-usw2"]);
    assert!(home.multi_az);
    assert_eq!(
        home.kms_key_id.as_deref(),
        Some("arn:aws:kms:us-west-2:123456789012:key/usw2")
    );
    assert!(
        s.databases
            .keys()
            .any(|(r, id)| r == "us-west-2" && id.starts_with("payments-db-pre-"))
    );
}

/// The backup-standby calls of a wrapper of the fake's database, passed
/// through (the wrappers here change promotions or deletions only).
macro_rules! pass_backups {
    ($t:ty { $($own:tt)* }) => {
        #[async_trait::async_trait]
        impl crate::cloud::Database for $t {
        $($own)*
        async fn replicated_backups(
            &self,
            region: &str,
            source: &str,
        ) -> Result<Vec<crate::cloud::Restorable>, crate::cloud::CloudError> {
            self.0.replicated_backups(region, source).await
        }
        async fn snapshots_of(
            &self,
            region: &str,
            source: &str,
        ) -> Result<Vec<crate::cloud::Restorable>, crate::cloud::CloudError> {
            self.0.snapshots_of(region, source).await
        }
        async fn restore_backups(
            &self,
            region: &str,
            arn: &str,
            target: &str,
            point: crate::cloud::RestorePoint,
            place: &crate::cloud::ReplicaPlacement,
        ) -> Result<(), crate::cloud::CloudError> {
            self.0.restore_backups(region, arn, target, point, place).await
        }
        async fn restore_snapshot(
            &self,
            region: &str,
            snapshot: &str,
            target: &str,
            place: &crate::cloud::ReplicaPlacement,
        ) -> Result<(), crate::cloud::CloudError> {
            self.0.restore_snapshot(region, snapshot, target, place).await
        }
        async fn lacking(
            &self,
            region: &str,
            need: &crate::cloud::RestoreNeed,
        ) -> Result<Option<String>, crate::cloud::CloudError> {
            self.0.lacking(region, need).await
        }
        async fn replicate_backups(
            &self,
            region: &str,
            source_arn: &str,
            days: i32,
            key: Option<&str>,
        ) -> Result<(), crate::cloud::CloudError> {
            self.0.replicate_backups(region, source_arn, days, key).await
        }
        async fn stop_replicating_backups(
            &self,
            region: &str,
            source_arn: &str,
        ) -> Result<(), crate::cloud::CloudError> {
            self.0.stop_replicating_backups(region, source_arn).await
        }
        }
    };
}

/// The fake's database, whose promotions take `delay`.
struct SlowDatabase(Arc<dyn crate::cloud::Database>, Duration);

pass_backups! {
SlowDatabase {
    async fn describe_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<crate::cloud::DbInstance>, crate::cloud::CloudError> {
        self.0.describe_instance(region, id).await
    }
    async fn promote_replica(
        &self,
        region: &str,
        id: &str,
    ) -> Result<(), crate::cloud::CloudError> {
        tokio::time::sleep(self.1).await;
        self.0.promote_replica(region, id).await
    }
    async fn create_replica(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
        placement: &crate::cloud::ReplicaPlacement,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0
            .create_replica(region, id, source_arn, placement)
            .await
    }
    async fn rename_instance(
        &self,
        region: &str,
        id: &str,
        new_id: &str,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0.rename_instance(region, id, new_id).await
    }
    async fn delete_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0.delete_instance(region, id).await
    }
    async fn list_instances(
        &self,
        region: &str,
    ) -> Result<Vec<crate::cloud::DbInstance>, crate::cloud::CloudError> {
        self.0.list_instances(region).await
    }
    async fn pending_maintenance(
        &self,
        region: &str,
        of: crate::cloud::MaintenanceOf,
        id: &str,
    ) -> Result<Vec<crate::cloud::PendingMaintenance>, crate::cloud::CloudError> {
        self.0.pending_maintenance(region, of, id).await
    }
    async fn restore_to_point_in_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        point: crate::cloud::RestorePoint,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0
            .restore_to_point_in_time(region, source_id, target_id, point)
            .await
    }
}
}

/// The most steps running at once, from the reporter's start/finish events.
fn max_concurrent(events: &[String]) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for e in events {
        if e.starts_with("start ") {
            now += 1;
            max = max.max(now);
        } else {
            now -= 1;
        }
    }
    max
}

#[tokio::test(start_paused = true)]
async fn a_failed_step_lets_its_running_sibling_finish_and_starts_nothing_new() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, _, rec) = engine(&f, dir.path());
    // The group's size fails to be set, after a short while.
    let fail = Some("injected failure".to_string());
    let (wait, once) = (Duration::from_millis(20), false);
    f.hold(
        "autoscaling:UpdateAutoScalingGroup",
        crate::cloud::fake::Held { wait, fail, once },
    );
    e.clouds.database = Arc::new(SlowDatabase(
        e.clouds.database.clone(),
        Duration::from_millis(300),
    ));
    let payments = payments();
    let r = e.run(&payments, &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Failed);
    let events = rec.0.lock().unwrap().clone();
    // Scale fails while the promotion is still running; the promotion is let
    // finish (and is journaled), and nothing after them starts.
    let at = |s: &str| events.iter().position(|e| e == s);
    let failed = at("failed payments/raise:payments-api").expect("scale failed");
    let promoted = at("done payments/promote:payments-db").expect("promotion finished");
    assert!(failed < promoted, "{events:?}");
    assert_eq!(events.len(), 6, "nothing else started: {events:?}");
    assert_eq!(
        f.state().databases[&("us-east-1".to_string(), "payments-db-use1".to_string())].role,
        DbRole::Primary
    );
    let not_done: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.state != StepState::Succeeded)
        .map(|s| s.step.as_str())
        .collect();
    assert!(
        not_done.contains(&"payments/raise:payments-api"),
        "{not_done:?}"
    );
    assert!(
        not_done
            .iter()
            .any(|s| s.starts_with("payments/switch-dns")),
        "{not_done:?}"
    );
    assert!(r.resume.is_some());
}

#[tokio::test(start_paused = true)]
async fn parallelism_bounds_the_steps_running_at_once() {
    // (bound, fewest steps that must overlap, most that may)
    for (parallelism, least, most) in [(1, 1, 1), (2, 2, 2), (8, 3, 4)] {
        let f = world();
        let dir = tempfile::tempdir().unwrap();
        let (mut e, _, rec) = engine(&f, dir.path());
        e.clouds.database = Arc::new(SlowDatabase(
            e.clouds.database.clone(),
            Duration::from_millis(50),
        ));
        let o = RunOptions {
            accept_data_loss: Some(Duration::from_secs(1800)),
            parallelism,
            ..opts()
        };
        let r = e.run(&plans(), &o).await.unwrap();
        assert_eq!(r.outcome, Outcome::Succeeded);
        let events = rec.0.lock().unwrap().clone();
        // Two plans, each with a scale and a promote that are independent:
        // at most 4 steps can be ready together.
        let max = max_concurrent(&events);
        assert!(
            (least..=most).contains(&max),
            "parallelism {parallelism}: {max} at once: {events:?}"
        );
    }
}

#[test]
fn a_step_may_wait_for_what_is_left_of_the_rto_budget() {
    let rto = Duration::from_secs(15 * 60);
    let t0 = Utc::now();
    let at = |mins: i64| t0 + chrono::Duration::minutes(mins);
    assert_eq!(step_budget(rto, None, t0, t0), rto);
    assert_eq!(
        step_budget(rto, None, t0, at(5)),
        Duration::from_secs(10 * 60)
    );
    // Spent (a late declaration, a resume hours later): a quarter of the RTO.
    assert_eq!(step_budget(rto, None, t0, at(14)), rto / 4);
    assert_eq!(step_budget(rto, None, t0, at(600)), rto / 4);
    // --step-timeout wins.
    assert_eq!(
        step_budget(rto, Some(Duration::from_secs(2)), t0, at(600)),
        Duration::from_secs(2)
    );
}

/// An identity service that cannot answer.
struct NoIdentity;

#[async_trait::async_trait]
impl crate::cloud::Identity for NoIdentity {
    async fn caller(
        &self,
        _region: &str,
    ) -> Result<crate::cloud::CallerIdentity, crate::cloud::CloudError> {
        Err(crate::cloud::CloudError::new(
            "sts",
            "GetCallerIdentity",
            "caller",
            "us-east-1",
            crate::cloud::ErrorKind::Connection,
            "connection refused",
        ))
    }
}

#[tokio::test]
async fn an_approval_without_an_identity_says_why_it_has_none() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, store, _) = engine(&f, dir.path());
    e.clouds.identity = Arc::new(NoIdentity);
    let payments = payments();
    let r = e.run(&payments, &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded);
    let records = crate::journal::read(store.as_ref(), &r.run_id)
        .await
        .unwrap();
    let detail = records
        .iter()
        .find_map(|rec| match &rec.event {
            Event::Gate { gate, detail, .. } if *gate == GateName::Approval => Some(detail.clone()),
            _ => None,
        })
        .expect("an approval gate record");
    assert_eq!(detail["approved_by"], Value::Null, "{detail:#}");
    assert_eq!(detail["reason"], "test", "{detail:#}");
    assert!(
        detail["identity_error"]
            .as_str()
            .is_some_and(|e| e.contains("connection refused")),
        "{detail:#}"
    );
}

#[tokio::test]
async fn resume_cuts_a_torn_final_line_and_keeps_it_in_the_record() {
    let f = world();
    let cap = f
        .state()
        .scaled
        .remove(&("compute", "us-east-1".into(), "payments-api-use1".into()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let payments = payments();
    let r = e.run(&payments, &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Failed);
    // A crash in the middle of a write leaves a line without its newline.
    let torn = r#"{"seq":99,"at":"2026-11-22T10:00:00Z","prev":"ab"#;
    let text = store.text(&r.run_id).unwrap();
    store.set_text(&r.run_id, &format!("{text}{torn}"));
    f.state().scaled.insert(
        ("compute", "us-east-1".into(), "payments-api-use1".into()),
        cap,
    );
    let r2 = e.resume(&r.run_id, &payments, Some(opts())).await.unwrap();
    assert_eq!(r2.outcome, Outcome::Succeeded);
    let records = crate::journal::read(store.as_ref(), &r.run_id)
        .await
        .unwrap();
    let dropped: Vec<Option<String>> = records
        .iter()
        .filter_map(|rec| match &rec.event {
            Event::Resumed {
                dropped_torn_line, ..
            } => Some(dropped_torn_line.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, [Some(torn.to_string())]);
    let text = store.text(&r.run_id).unwrap();
    let v = crate::journal::verify(&r.run_id, &text);
    assert!(v.ok, "the chain verifies: {:?}", v.first_broken);
}

/// Regression: the RPO gate read the lag of a database that was already a
/// primary in the target (a re-run, a failback of a plan already home) and,
/// finding no datapoints, refused a run that would promote nothing.
#[tokio::test]
async fn regression_a_rerun_is_not_refused_for_the_lag_of_an_already_promoted_database() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let payments = payments();
    assert_eq!(
        e.run(&payments, &opts()).await.unwrap().outcome,
        Outcome::Succeeded
    );
    // A promoted instance replicates from nothing: its lag goes away.
    f.set_lag("us-east-1", "payments-db-use1", &[]);
    let again = e.run(&payments, &opts()).await.unwrap();
    assert_eq!(again.outcome, Outcome::Succeeded);
    let gates = serde_json::to_value(&again.gates).unwrap();
    let rpo = gates
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "rpo")
        .expect("an rpo gate");
    assert_eq!(
        rpo["detail"]["databases"][0]["already_primary"], true,
        "{rpo:#}"
    );
    assert_eq!(
        rpo["detail"]["databases"][0]["lag_seconds"],
        Value::Null,
        "{rpo:#}"
    );
}

#[tokio::test]
async fn rto_is_measured_from_the_declared_time() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let payments = payments();
    let declared = Utc::now() - chrono::Duration::minutes(20);
    let o = RunOptions {
        declared_at: Some(declared),
        ..opts()
    };
    let r = e.run(&payments, &o).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded);
    let rto = &r.measures[0].rto;
    let secs = rto.seconds.expect("measured");
    assert!((1200.0..1260.0).contains(&secs), "{rto:?}");
    assert!(rto.basis.contains("--declared-at"), "{rto:?}");
    // 20 minutes after the declaration is past the critical tier's 15m.
    assert_eq!(rto.met, Some(false), "{rto:?}");
}

/// Writes the golden journals (`src/journal/testdata/golden/`) with the
/// engine as it is: run by hand (`cargo test --lib write_golden_journals --
/// --ignored`) only when a new vocabulary must be pinned; the files already
/// there are what older versions wrote and must keep reading.
#[tokio::test]
#[ignore = "writes the golden journals; run by hand"]
async fn write_golden_journals() {
    use crate::cloud::ErrorKind;
    use crate::cloud::metered::{Effect, Injection, Metered};
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/journal/testdata/golden");
    std::fs::create_dir_all(&out).unwrap();
    let save = |name: &str, text: String| std::fs::write(out.join(name), text).unwrap();

    // 1. A failover that succeeded.
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let r = e.run(&payments(), &opts()).await.unwrap();
    save(
        "failover-succeeded.jsonl",
        store.read(&r.run_id).await.unwrap(),
    );

    // 2. A promotion whose call failed (not found), then resumed.
    let f = world();
    let (mut e, store, _) = engine(&f, dir.path());
    let (clouds, _) = Metered::wrap_with_faults(
        f.clouds(),
        vec![Injection {
            label: "rds:PromoteReadReplica",
            nth: 1,
            effect: Effect::Refused,
            kind: ErrorKind::NotFound,
        }],
    );
    e.clouds = clouds;
    let r = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Failed);
    e.clouds = f.clouds();
    e.resume(&r.run_id, &payments(), Some(opts()))
        .await
        .unwrap();
    save(
        "failover-failed-resumed.jsonl",
        store.read(&r.run_id).await.unwrap(),
    );

    // 3. Refused by the RPO gate (ledger lags 20 minutes).
    let f = world();
    let (e, store, _) = engine(&f, dir.path());
    let ledger: Vec<Plan> = plans()
        .into_iter()
        .filter(|p| p.name() == "ledger")
        .collect();
    let err = e.run(&ledger, &opts()).await.unwrap_err();
    let run = err.to_string();
    let run = run
        .split("(run ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    save("failover-refused.jsonl", store.read(run).await.unwrap());

    // 4. An emergency run, approved retroactively.
    let f = world();
    let (e, store, _) = engine(&f, dir.path());
    let o = RunOptions {
        approve: None,
        emergency: true,
        ..opts()
    };
    let r = e.run(&payments(), &o).await.unwrap();
    let (mut j, _) = Journal::open_for_append(store.clone(), &r.run_id)
        .await
        .unwrap();
    j.append(Event::Gate {
        plan: "payments".into(),
        gate: GateName::Approval,
        decision: Decision::Retroactive,
        detail: json!({"approved_by": "arn:aws:iam::123456789012:user/fake-operator", "reason": "golden"}),
    })
    .await
    .unwrap();
    save(
        "failover-emergency-approved.jsonl",
        store.read(&r.run_id).await.unwrap(),
    );

    // 5. A reprotection.
    let f = world();
    let (e, store, _) = engine(&f, dir.path());
    e.run(&payments(), &opts()).await.unwrap();
    let o = RunOptions {
        kind: RunKind::Reprotect,
        mode: RunMode::Reprotect,
        ..opts()
    };
    let r = e.run(&payments(), &o).await.unwrap();
    save(
        "reprotect-succeeded.jsonl",
        store.read(&r.run_id).await.unwrap(),
    );
}

/// Journals written by earlier versions (the vocabulary as strings, the
/// error kind written as `notfound`) still verify, read, replay and measure.
#[test]
fn golden_journals_of_earlier_versions_still_read() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/journal/testdata/golden");
    let expect = [
        ("failover-succeeded.jsonl", Outcome::Succeeded),
        ("failover-failed-resumed.jsonl", Outcome::Succeeded),
        ("failover-refused.jsonl", Outcome::Refused),
        ("failover-emergency-approved.jsonl", Outcome::Succeeded),
        ("reprotect-succeeded.jsonl", Outcome::Succeeded),
    ];
    for (name, outcome) in expect {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let run = text
            .lines()
            .next()
            .and_then(|l| serde_json::from_str::<Record>(l).ok())
            .and_then(|r| match r.event {
                Event::RunStarted { run_id, .. } => Some(run_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: first record is the run start"));
        assert!(
            crate::journal::verify(&run, &text).ok,
            "{name}: chain verifies"
        );
        let records: Vec<Record> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
            .collect();
        assert_eq!(
            crate::runs::replay::replay(&records).illegal,
            None,
            "{name}"
        );
        let finished = records.iter().rev().find_map(|r| match &r.event {
            Event::RunFinished { outcome, .. } => Some(*outcome),
            _ => None,
        });
        assert_eq!(finished, Some(outcome), "{name}");
        let targets = BTreeMap::from([
            ("payments".to_string(), (900, 300)),
            ("ledger".to_string(), (1800, 900)),
        ]);
        let report = report_from_records(&run, &records, &targets, outcome);
        if outcome == Outcome::Succeeded {
            assert!(
                report.measures.iter().all(|m| m.rto.seconds.is_some()),
                "{name}: {:?}",
                report.measures
            );
        }
    }
    // The old spelling of an error kind reads as the new one.
    let text = std::fs::read_to_string(dir.join("failover-failed-resumed.jsonl")).unwrap();
    assert!(text.contains(r#""kind":"notfound""#));
    let failed = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Record>(l).ok())
        .find_map(|r| match r.event {
            Event::StepFailed { error, .. } => Some(error.kind),
            _ => None,
        });
    assert_eq!(failed, Some(crate::journal::ErrorClass::NotFound));
}

/// Rewrites a journal's run-started record through `edit` and re-chains
/// every record after it (what an upgraded drctl or an edited plan look like
/// to a resume: a journal that verifies, with other contents).
async fn rewrite_start(store: &MemoryStore, run: &str, edit: impl Fn(&mut Event)) {
    let records = crate::journal::read(store, run).await.unwrap();
    let fresh = Arc::new(MemoryStore::new());
    let mut j = Journal::create(fresh.clone(), run).await.unwrap();
    for mut r in records {
        edit(&mut r.event);
        j.append(r.event).await.unwrap();
    }
    store.set_text(run, &fresh.text(run).unwrap());
    store.set_head(run, fresh.read_head(run).await.unwrap().as_deref());
}

#[tokio::test]
async fn resume_refuses_a_graph_that_changed_since_the_run_started() {
    let f = world();
    f.state()
        .scaled
        .remove(&("compute", "us-east-1".into(), "payments-api-use1".into()));
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let r = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Failed);
    rewrite_start(&store, &r.run_id, |ev| {
        if let Event::RunStarted { steps, .. } = ev {
            steps.retain(|s| !s.id.as_str().contains("/raise:"));
        }
    })
    .await;
    let err = e
        .resume(&r.run_id, &payments(), Some(opts()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("step graph differs") && err.contains("payments/raise:payments-api is new"),
        "{err}"
    );
}

#[tokio::test]
async fn resume_refuses_a_mode_it_cannot_read_instead_of_failing_over() {
    let f = world();
    f.state()
        .scaled
        .remove(&("compute", "us-east-1".into(), "payments-api-use1".into()));
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let r = e.run(&payments(), &opts()).await.unwrap();
    rewrite_start(&store, &r.run_id, |ev| {
        if let Event::RunStarted { flags, .. } = ev {
            flags["mode"] = json!({"mode": "teleport"});
        }
    })
    .await;
    let err = e
        .resume(&r.run_id, &payments(), Some(opts()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read") && err.contains("teleport"),
        "{err}"
    );
    assert!(f.state().writes.is_empty(), "nothing was done");
}

#[tokio::test]
async fn resume_refuses_a_journal_whose_step_records_break_the_grammar() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let r = e.run(&payments(), &opts()).await.unwrap();
    // A chained journal with a success that was never started.
    let (mut j, _) = Journal::open_for_append(store.clone(), &r.run_id)
        .await
        .unwrap();
    j.append(Event::StepSucceeded {
        step: "payments/scale:ghost".into(),
        outputs: json!({}),
    })
    .await
    .unwrap();
    rewrite_start(&store, &r.run_id, |ev| {
        if let Event::RunFinished { outcome, .. } = ev {
            *outcome = Outcome::Failed;
        }
    })
    .await;
    let err = e
        .resume(&r.run_id, &payments(), Some(opts()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("succeeded without a start") && err.contains("#"),
        "{err}"
    );
}

pub(super) fn drill_opts() -> RunOptions {
    RunOptions {
        kind: RunKind::Drill,
        mode: RunMode::Drill {
            depth: crate::steps::graph::DrillDepth::Shadow,
        },
        approve: None,
        ..opts()
    }
}

/// What a drill must leave as it found it in the fake world.
fn production(f: &FakeCloud) -> String {
    let s = f.state();
    let dbs: Vec<String> = s
        .databases
        .values()
        .filter(|d| !d.id.starts_with("drill-"))
        .map(|d| format!("{} {} {:?}", d.region, d.id, d.role))
        .collect();
    let groups: Vec<String> = (s.scaled.iter())
        .map(|((_, r, n), g)| format!("{r} {n} {} {:?}", g.bounds(), g.marks))
        .collect();
    let zones: Vec<String> = s.records.iter().map(|r| format!("{r:?}")).collect();
    format!("{dbs:?}\n{groups:?}\n{zones:?}")
}

#[tokio::test]
async fn regression_a_drill_without_a_lag_datapoint_is_unknown_never_a_pass() {
    let f = world();
    let before = production(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    // The temporary replica never gets a datapoint (the fake publishes
    // none): the step waits up to its budget, then goes on without one.
    let o = RunOptions {
        step_timeout: Some(Duration::from_millis(300)),
        ..drill_opts()
    };
    let report = e.run(&payments(), &o).await.unwrap();
    let d = report.drill.as_ref().expect("a drill summary");
    let v = &d.verdicts[0].verdict;
    assert!(
        matches!(v, crate::runs::drill::Verdict::Unknown(why) if why.contains("no lag datapoint of drill-")),
        "{v}"
    );
    assert!(!report.succeeded());
    assert_eq!(report.measures[0].rpo.seconds, None);
    assert!(report.measures[0].rto.seconds.is_some());
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    assert_eq!(production(&f), before, "production changed");
    assert!(
        f.state()
            .databases
            .keys()
            .all(|(_, id)| !id.starts_with("drill-")),
        "the temporary database is gone"
    );
    // The journal names each temporary resource before its step starts.
    let id = store.list().await.unwrap().pop().unwrap();
    let text = store.read(&id).await.unwrap();
    let created = text.find("\"drill_resource\"").unwrap();
    let started = text
        .find("\"type\":\"step_started\",\"step\":\"payments/drill-copy")
        .unwrap();
    assert!(created < started);
}

#[tokio::test]
async fn a_failing_drill_step_still_cleans_up_and_fails_the_verdict() {
    let f = world();
    let before = production(&f);
    // The zone is gone: the drill's DNS step fails after the database and
    // capacity were made.
    f.state().zones.clear();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let o = RunOptions {
        step_timeout: Some(Duration::from_millis(200)),
        ..drill_opts()
    };
    let report = e.run(&payments(), &o).await.unwrap();
    let d = report.drill.as_ref().unwrap();
    assert!(!d.verdicts[0].verdict.passed());
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(report.resume.is_none(), "nothing is left to resume");
    let s = f.state();
    assert!(s.databases.keys().all(|(_, id)| !id.starts_with("drill-")));
    let g = &s.scaled[&(
        "compute",
        "us-east-1".to_string(),
        "payments-api-use1".to_string(),
    )];
    assert_eq!(g.bounds().desired, 0);
    assert!(g.marks.is_empty(), "{:?}", g.marks);
    drop(s);
    let _ = before;
}

#[tokio::test(start_paused = true)]
async fn a_failover_preempts_a_running_drill_and_keeps_the_capacity_it_owns() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    // Waits for a lag datapoint that never comes: long enough to be preempted.
    let drill_opts = RunOptions {
        step_timeout: Some(Duration::from_secs(20)),
        ..drill_opts()
    };
    let plans = payments();
    let drill = tokio::time::timeout(Duration::from_secs(25), e.run(&plans, &drill_opts));
    let failover = async {
        // Once the temporary replica exists, fail over for real.
        for _ in 0..500 {
            if f.state()
                .databases
                .keys()
                .any(|(_, id)| id.starts_with("drill-"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        e.run(&plans, &opts()).await
    };
    let (report, failover) = tokio::join!(drill, failover);
    let failover = failover.unwrap();
    assert_eq!(failover.outcome, Outcome::Succeeded, "{failover:?}");
    let report = report.expect("the drill stops").unwrap();
    let d = report.drill.as_ref().unwrap();
    assert!(
        d.interrupted
            .as_deref()
            .is_some_and(|w| w.contains("preempted")),
        "{d:?}"
    );
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    {
        let s = f.state();
        assert!(s.databases.keys().all(|(_, id)| !id.starts_with("drill-")));
        // The failover's capacity stays: the drill did not scale it down.
        let g = &s.scaled[&(
            "compute",
            "us-east-1".to_string(),
            "payments-api-use1".to_string(),
        )];
        assert_eq!(g.bounds().desired, 4, "{g:?}");
        assert!(!g.marks.keys().any(|k| k.starts_with("drctl:drill")));
    }
    // Journaled in both runs.
    let runs = store.list().await.unwrap();
    let drill_text = store.read(&report.run_id).await.unwrap();
    assert!(drill_text.contains("\"lock_lost\"") && drill_text.contains("preempted"));
    let failover_text = store.read(&failover.run_id).await.unwrap();
    assert!(
        failover_text.contains("\"preempted_drill\":true"),
        "{runs:?}"
    );
}

/// Regression: any lost lock (a `lock break`, a forced takeover) made a
/// drill leave the group it raised at active capacity, as if a failover
/// owned it; only a failover's preemption does.
#[tokio::test(start_paused = true)]
async fn a_drill_whose_lock_is_broken_restores_the_capacity_it_raised() {
    let f = world();
    let before = production(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let drill_opts = RunOptions {
        step_timeout: Some(Duration::from_secs(20)),
        ..drill_opts()
    };
    let plans = payments();
    let drill = tokio::time::timeout(Duration::from_secs(25), e.run(&plans, &drill_opts));
    let breaker = async {
        for _ in 0..500 {
            if f.state()
                .databases
                .keys()
                .any(|(_, id)| id.starts_with("drill-"))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let by = crate::state::Holder::current("(drctl lock break)", RunKind::Failover);
        let was = e
            .locks
            .break_lock("payments", &by, "stuck drill")
            .await
            .unwrap()
            .unwrap();
        let run = was.holder.unwrap().run_id;
        crate::journal::append_to(
            store.clone(),
            &run,
            Event::LockLost {
                plan: "payments".into(),
                by_run: "(drctl lock break)".into(),
                by_host: "ops".into(),
                reason: "stuck drill".into(),
                token: was.token.unwrap_or(0),
                preempted: false,
            },
        )
        .await
        .unwrap();
    };
    let (report, ()) = tokio::join!(drill, breaker);
    let report = report.expect("the drill stops").unwrap();
    let d = report.drill.as_ref().unwrap();
    assert!(d.interrupted.is_some(), "{d:?}");
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    assert_eq!(production(&f), before, "the raised group is restored");
}

/// Regression: a drill that died after raising the standby group left its
/// tags (with the capacity to "restore") on it; after a failover scaled the
/// group for real, a sweep found those tags and scaled production down.
#[tokio::test]
async fn a_failover_takes_a_group_a_dead_drill_raised_and_a_sweep_leaves_it() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let key = (
        "compute",
        "us-east-1".to_string(),
        "payments-api-use1".to_string(),
    );
    let long_ago = Utc::now() - chrono::Duration::hours(3);
    {
        let mut s = f.state();
        let g = s.scaled.get_mut(&key).unwrap();
        g.marks = crate::steps::drill_names::tags(
            "20261122T010000Z-payments-dead",
            "gone/pid 1",
            long_ago,
        );
        g.marks.insert(
            crate::steps::drill_names::RESTORE_TAG.into(),
            format!("{}", g.bounds()),
        );
    }
    let plans = payments();
    let report = e.run(&plans, &opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let active = f.state().scaled[&key].bounds();
    assert_eq!(active.desired, 4);
    assert!(
        !f.state().scaled[&key]
            .marks
            .keys()
            .any(|k| k.starts_with("drctl:drill")),
        "the failover owns the group: the drill's tags are gone"
    );
    let (found, errors) =
        crate::cleanup::sweep::find(&f.clouds(), &plans, &MemoryStore::new(), Utc::now()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(found.is_empty(), "{found:?}");
    let cleaned = crate::cleanup::sweep::sweep(
        &f.clouds(),
        &found,
        &plans,
        &MemoryStore::new(),
        opts().pace.poll,
    )
    .await;
    assert!(cleaned.is_empty());
    assert_eq!(f.state().scaled[&key].bounds(), active);
}

/// The fake's database, whose deletions fail (a cleanup that cannot finish).
struct UndeletableDatabase(Arc<dyn crate::cloud::Database>);

pass_backups! {
UndeletableDatabase {
    async fn describe_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<crate::cloud::DbInstance>, crate::cloud::CloudError> {
        self.0.describe_instance(region, id).await
    }
    async fn promote_replica(
        &self,
        region: &str,
        id: &str,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0.promote_replica(region, id).await
    }
    async fn create_replica(
        &self,
        region: &str,
        id: &str,
        source_arn: &str,
        placement: &crate::cloud::ReplicaPlacement,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0
            .create_replica(region, id, source_arn, placement)
            .await
    }
    async fn rename_instance(
        &self,
        region: &str,
        id: &str,
        new_id: &str,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0.rename_instance(region, id, new_id).await
    }
    async fn restore_to_point_in_time(
        &self,
        region: &str,
        source_id: &str,
        target_id: &str,
        point: crate::cloud::RestorePoint,
    ) -> Result<(), crate::cloud::CloudError> {
        self.0
            .restore_to_point_in_time(region, source_id, target_id, point)
            .await
    }
    async fn delete_instance(
        &self,
        region: &str,
        id: &str,
    ) -> Result<(), crate::cloud::CloudError> {
        Err(crate::cloud::CloudError::new(
            "rds",
            "DeleteDBInstance",
            id,
            region,
            crate::cloud::ErrorKind::Auth,
            "not authorized to perform rds:DeleteDBInstance",
        ))
    }
    async fn list_instances(
        &self,
        region: &str,
    ) -> Result<Vec<crate::cloud::DbInstance>, crate::cloud::CloudError> {
        self.0.list_instances(region).await
    }
    async fn pending_maintenance(
        &self,
        region: &str,
        of: crate::cloud::MaintenanceOf,
        id: &str,
    ) -> Result<Vec<crate::cloud::PendingMaintenance>, crate::cloud::CloudError> {
        self.0.pending_maintenance(region, of, id).await
    }
}
}

#[tokio::test]
async fn a_cleanup_that_cannot_finish_lists_what_is_left_and_a_resume_finishes_it() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, _, _) = engine(&f, dir.path());
    e.clouds.database = Arc::new(UndeletableDatabase(e.clouds.database.clone()));
    let o = RunOptions {
        step_timeout: Some(Duration::from_millis(200)),
        ..drill_opts()
    };
    let report = e.run(&payments(), &o).await.unwrap();
    assert_eq!(report.outcome, Outcome::CleanupIncomplete);
    assert!(!report.succeeded());
    let d = report.drill.as_ref().unwrap();
    assert!(!d.cleanup.complete);
    assert_eq!(d.cleanup.left.len(), 1, "{:?}", d.cleanup.left);
    let left = &d.cleanup.left[0];
    assert!(matches!(left.resource, crate::journal::Temp::Copy { .. }));
    assert!(left.why.contains("not authorized"), "{}", left.why);
    assert!(
        left.how.contains("aws rds delete-db-instance"),
        "{}",
        left.how
    );
    // Everything else was cleaned up.
    let g = f.state().scaled[&(
        "compute",
        "us-east-1".to_string(),
        "payments-api-use1".to_string(),
    )]
        .clone();
    assert_eq!(g.bounds().desired, 0);
    let resume = report
        .resume
        .clone()
        .expect("a resume finishes the cleanup");
    assert!(resume.contains(&report.run_id));

    // The permission is fixed: a resume finishes the cleanup, and only that.
    let fixed = Engine {
        clouds: f.clouds(),
        ..e.clone()
    };
    let again = fixed
        .resume(&report.run_id, &payments(), None)
        .await
        .unwrap();
    let d = again.drill.as_ref().unwrap();
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    // Every step had run: the drill's own outcome stands, with its verdict
    // (no lag datapoint on the fake: UNKNOWN, never a PASS).
    assert_eq!(again.outcome, Outcome::Succeeded);
    assert!(!d.verdicts[0].verdict.passed());
    assert!(again.resume.is_none());
    assert!(
        f.state()
            .databases
            .keys()
            .all(|(_, id)| !id.starts_with("drill-"))
    );
}

/// The evidence step is handed the report renderer by the engine (it does
/// not import the report module): a run's pack holds the run's own report.
#[tokio::test]
async fn the_pack_holds_the_runs_report() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let report = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    let key = format!("gs://drctl-evidence/payments/{}/report.json", report.run_id);
    let report: Value = serde_json::from_slice(&f.state().objects[&key]).expect("json");
    assert_eq!(report["schema"], crate::report::SCHEMA);
    assert_eq!(report["scope"], serde_json::json!(["payments"]));
}

/// The reference `checkout` plan (home us-east-1, standbys us-west-2 then
/// eu-west-1, a data-plane switch).
pub(super) fn checkout() -> Vec<Plan> {
    plans_named("checkout")
}

pub(super) fn plans_named(name: &str) -> Vec<Plan> {
    crate::plan::reference()
        .into_iter()
        .filter(|p| p.name() == name)
        .collect()
}

/// The reference world with checkout's data-plane setup made the one way
/// it is made: `drctl dns prepare` (controls: home serves, the standbys
/// drain; a health check per control; the failover chain).
pub(super) async fn prepared_world() -> FakeCloud {
    let f = world();
    let made = crate::steps::dns_setup::prepare(&f.clouds(), &checkout()[0], None)
        .await
        .expect("dns prepare");
    assert!(
        made.iter().any(|p| p.resource.starts_with("record")),
        "{made:?}"
    );
    assert_eq!(f.state().health_checks.len(), 3);
    f
}

fn control_in(f: &FakeCloud, bucket: &str) -> crate::cloud::control::ControlState {
    let key = format!("s3://{bucket}/checkout/checkout");
    let body = f.state().objects[&key].clone();
    crate::cloud::control::Control::parse(&body)
        .unwrap_or_else(|| panic!("{key} is not a control"))
        .state
}

/// The outputs of the last success of the step whose id starts with `step`.
pub(super) async fn step_outputs(store: &MemoryStore, run: &str, step: &str) -> Value {
    let text = store.read(run).await.unwrap();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|r| {
            r["event"]["type"] == "step_succeeded"
                && r["event"]["step"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(step))
        })
        .map(|r| r["event"]["outputs"].clone())
        .unwrap_or_else(|| panic!("no success of {step} in {text}"))
}

/// Fails checkout over to `to` with us-east-1 (its home) dead, after `dns
/// prepare`: the run's report, the store and the world.
async fn checkout_with_home_dead(to: &str) -> (RunReport, Arc<MemoryStore>, FakeCloud) {
    let f = prepared_world().await;
    assert_eq!(
        f.clouds()
            .resolver
            .resolve("example.com.", "checkout.example.com.", "CNAME")
            .await
            .unwrap(),
        ["checkout-use1.example.com."],
        "prepared: home serves"
    );
    f.state().dead_regions.insert("us-east-1".into());
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let o = RunOptions {
        approve: Some("test".into()),
        pace: crate::engine::Pace {
            poll: (Duration::from_millis(1), Duration::from_millis(5)),
            ..Default::default()
        },
        ..RunOptions::failover(to)
    };
    let report = e.run(&checkout(), &o).await.unwrap();
    (report, store, f)
}

/// Asserts checkout moved to `to` and not to `other` (each `(region,
/// tag)`): the controls, what the name resolves to, the databases.
async fn assert_checkout_in(f: &FakeCloud, to: (&str, &str), other: (&str, &str)) {
    use crate::cloud::control::ControlState;
    let bucket = |tag: &str| format!("drctl-control-{tag}");
    assert_eq!(control_in(f, &bucket(to.1)), ControlState::Serve);
    assert_eq!(control_in(f, &bucket(other.1)), ControlState::Drain);
    // The dead home's control was not written: its health check fails closed.
    assert_eq!(control_in(f, "drctl-control-use1"), ControlState::Serve);
    let answer = f
        .clouds()
        .resolver
        .resolve("example.com.", "checkout.example.com.", "CNAME")
        .await
        .unwrap();
    assert_eq!(answer, [format!("checkout-{}.example.com.", to.1)]);
    let s = f.state();
    let role = |(region, tag): (&str, &str)| {
        s.databases[&(region.to_string(), format!("checkout-db-{tag}"))]
            .role
            .clone()
    };
    assert_eq!(role(to), DbRole::Primary);
    assert!(matches!(role(other), DbRole::Replica(_)));
}

#[tokio::test]
async fn checkout_fails_over_to_its_second_standby_with_its_home_dead() {
    let (report, store, f) = checkout_with_home_dead("eu-west-1").await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert_checkout_in(&f, ("eu-west-1", "euw1"), ("us-west-2", "usw2")).await;
    let out = step_outputs(&store, &report.run_id, "checkout/switch-control").await;
    let home = out["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["region"] == "us-east-1")
        .cloned()
        .expect("us-east-1's control is listed");
    assert!(
        home.to_string().contains("unreachable"),
        "us-east-1's control is recorded unreachable: {home:#}"
    );
    let s = f.state();
    let cap = |r: &str, n: &str| s.scaled[&("compute", r.to_string(), n.to_string())].bounds();
    assert_eq!(cap("eu-west-1", "checkout-web-euw1").desired, 3);
    assert_eq!(cap("us-west-2", "checkout-web-usw2").desired, 1);
    drop(s);
    let rto = &report.measures[0].rto;
    assert!(rto.seconds.is_some(), "{rto:?}");
    assert!(rto.basis.contains("resolved"), "{rto:?}");
    // The side read found the dead home unreachable, and read the other
    // standby too (the home did not answer, so it may not be the primary).
    let key = format!(
        "s3://drctl-evidence-euw1/checkout/{}/state.json",
        report.run_id
    );
    let state: Value = serde_json::from_slice(&f.state().objects[&key]).expect("state.json");
    let others = &state["other_regions"];
    assert!(
        others["us-east-1"]["databases"]["checkout-db"]["unreachable"].is_string(),
        "{others:#}"
    );
    assert_eq!(
        others["us-west-2"]["databases"]["checkout-db-usw2"]["role"]
            .as_str()
            .map(|r| r.starts_with("replica")),
        Some(true),
        "{others:#}"
    );
}

#[tokio::test]
async fn checkout_fails_over_to_its_first_standby_with_its_home_dead() {
    let (report, _, f) = checkout_with_home_dead("us-west-2").await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert_checkout_in(&f, ("us-west-2", "usw2"), ("eu-west-1", "euw1")).await;
    assert!(report.measures[0].rto.basis.contains("resolved"));
}

/// A failover of payments to us-east-1 reads the old home beside the run
/// and stops there: the third region's replica costs no request.
#[tokio::test]
async fn the_side_read_stops_at_the_region_failed_away_from() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let report = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    let key = format!(
        "s3://drctl-evidence-use1/payments/{}/state.json",
        report.run_id
    );
    let state: Value = serde_json::from_slice(&f.state().objects[&key]).expect("state.json");
    let others = state["other_regions"].as_object().expect("other regions");
    assert_eq!(
        others.keys().collect::<Vec<_>>(),
        ["us-west-2"],
        "{others:#?}"
    );
    assert_eq!(
        others["us-west-2"]["databases"]["payments-db"]["role"],
        "primary"
    );
}

/// Checkout's production data-plane setup in the fake world: its records,
/// health checks and controls, as they are.
fn checkout_setup(f: &FakeCloud) -> String {
    let s = f.state();
    let records: Vec<String> = (s.records.values().flatten())
        .filter(|r| !r.name.starts_with("drill-"))
        .map(|r| format!("{r:?}"))
        .collect();
    let checks: Vec<String> = (s.health_checks.iter())
        .filter(|h| !h.path.contains(".drill-"))
        .map(|h| format!("{h:?}"))
        .collect();
    let controls: Vec<String> = (s.objects.iter())
        .filter(|(k, _)| k.contains("drctl-control-") && !k.contains(".drill-"))
        .map(|(k, v)| format!("{k} {v:?}"))
        .collect();
    format!("{records:?}\n{checks:?}\n{controls:?}")
}

/// Every drill copy of checkout's setup still in the fake world.
fn checkout_copies(f: &FakeCloud) -> Vec<String> {
    let s = f.state();
    let mut left: Vec<String> = (s.records.values().flatten())
        .filter(|r| r.name.starts_with("drill-"))
        .map(|r| format!("record {} {:?}", r.name, r.set_identifier))
        .collect();
    left.extend(
        (s.health_checks.iter())
            .filter(|h| h.path.contains(".drill-"))
            .map(|h| format!("health check {}", h.path)),
    );
    left.extend(
        (s.objects.keys())
            .filter(|k| k.contains(".drill-"))
            .map(|k| format!("control {k}")),
    );
    left
}

#[tokio::test]
async fn a_checkout_drill_switches_drill_copies_and_leaves_the_data_plane_setup_as_it_was() {
    let f = prepared_world().await;
    let before = checkout_setup(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let o = RunOptions {
        target: "us-west-2".into(),
        step_timeout: Some(Duration::from_millis(300)),
        ..drill_opts()
    };
    let report = e.run(&checkout(), &o).await.unwrap();
    let step = |id: &str| report.steps.iter().find(|s| s.step == id).map(|s| s.state);
    assert_eq!(
        step("checkout/drill-control"),
        Some(StepState::Succeeded),
        "{report:#?}"
    );
    assert!(report.steps.iter().all(|s| !s.step.contains("drill-dns")));
    let out = step_outputs(&store, &report.run_id, "checkout/drill-control").await;
    let resolved = &out["resolved"][0];
    assert_eq!(resolved["values"][0], "checkout-usw2.example.com.", "{out}");
    let name = resolved["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("drill-") && name.ends_with(".checkout.example.com."),
        "{name}"
    );
    // Three controls, three health checks, a record name and its chain level.
    let d = report.drill.as_ref().expect("a drill summary");
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    let copies = (d.cleanup.resources.iter())
        .filter(|c| {
            use crate::journal::Temp;
            matches!(
                c.resource,
                Temp::Control { .. } | Temp::HealthCheck { .. } | Temp::Record { .. }
            ) && c.result == crate::journal::CleanupResult::Removed
        })
        .count();
    assert_eq!(copies, 8, "{:?}", d.cleanup.resources);
    assert_eq!(checkout_copies(&f), Vec::<String>::new());
    assert_eq!(checkout_setup(&f), before, "production's setup changed");
    // Production still answers with home.
    assert_eq!(
        f.clouds()
            .resolver
            .resolve("example.com.", "checkout.example.com.", "CNAME")
            .await
            .unwrap(),
        ["checkout-use1.example.com."]
    );
}

#[tokio::test]
async fn a_checkout_drill_without_its_data_plane_setup_fails_before_creating_anything() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let o = RunOptions {
        target: "us-west-2".into(),
        step_timeout: Some(Duration::from_millis(300)),
        ..drill_opts()
    };
    let err = match e.run(&checkout(), &o).await {
        Ok(r) => format!("{r:#?}"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("drctl dns prepare"), "{err}");
    assert_eq!(checkout_copies(&f), Vec::<String>::new());
}

/// A failover whose clouds hold a tight RDS budget (and whose first
/// promotion is throttled by the API anyway): the run succeeds, and each
/// wait is journaled before its step's end, with its cause.
#[tokio::test]
async fn throttling_is_a_journaled_wait_never_a_failed_step() {
    use crate::cloud::budget::{Budgets, Limit};
    use crate::cloud::metered::{Effect, Injection, Metered};
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, store, _) = engine(&f, dir.path());
    let (throttling, _) = Metered::wrap_with_faults(
        f.clouds(),
        vec![Injection {
            label: "rds:PromoteReadReplica",
            nth: 1,
            effect: Effect::Refused,
            kind: crate::cloud::ErrorKind::Throttled,
        }],
    );
    let budgets = Budgets::new([(
        ("rds".to_string(), None),
        Limit {
            burst: 2.0,
            rate: 20.0,
        },
    )]);
    let (clouds, _, waits) = Metered::wrap_with_budgets(throttling, budgets);
    e.clouds = clouds;
    e.waits = Some(waits);
    let report = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    let records = crate::journal::read(store.as_ref(), &report.run_id)
        .await
        .unwrap();
    let waited: Vec<(String, bool)> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Waited {
                call, throttled, ..
            } => Some((call.clone(), *throttled)),
            _ => None,
        })
        .collect();
    assert!(
        waited.contains(&("rds:PromoteReadReplica".to_string(), true)),
        "the throttled promotion is journaled as a wait: {waited:?}"
    );
    assert!(
        waited.iter().any(|(c, t)| c.starts_with("rds:") && !t),
        "calls waited for the RDS budget: {waited:?}"
    );
    // Each wait comes before its step's end record.
    let promote_end = records
        .iter()
        .position(|r| matches!(&r.event, Event::StepSucceeded { step, .. } if step.to_string().contains("promote")))
        .unwrap();
    let throttled_at = records
        .iter()
        .position(|r| {
            matches!(
                &r.event,
                Event::Waited {
                    throttled: true,
                    ..
                }
            )
        })
        .unwrap();
    assert!(throttled_at < promote_end);
}

/// A reporter that keeps the notes (what a run says beside its steps).
/// A reporter that keeps the notes a run says.
#[derive(Default)]
pub(super) struct Notes(pub(super) Mutex<Vec<String>>);

impl Reporter for Notes {
    fn started(&self, _: &Step) {}
    fn finished(&self, _: &Step, _: Result<&Value, &StepFailure>, _: Duration) {}
    fn note(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_string());
    }
}

/// What an editor of the state does to a crashed run's journal: rewrites
/// `step`'s journaled endpoint to `to` and re-chains the journal (no run
/// keys here: the chain alone cannot tell).
pub(super) async fn edit_endpoint(store: &MemoryStore, run: &str, step: &str, to: &str) {
    let records = crate::journal::read(store, run).await.unwrap();
    let fresh = Arc::new(MemoryStore::new());
    let mut j = Journal::create(fresh.clone(), run).await.unwrap();
    let mut edited = false;
    for mut r in records {
        if let Event::StepSucceeded { step: s, outputs } = &mut r.event
            && s.as_str() == step
        {
            outputs["endpoint"] = to.into();
            edited = true;
        }
        j.append(r.event).await.unwrap();
    }
    assert!(edited, "{step} succeeded in {run}");
    store.set_text(run, &fresh.text(run).unwrap());
    store.set_head(run, fresh.read_head(run).await.unwrap().as_deref());
}

/// After a resume of a run whose journaled endpoint was edited to
/// "attacker.example.net": record `name` names `real`, the cloud's
/// endpoint, and the run said that it acted on the cloud's.
pub(super) async fn followed_the_cloud(f: &FakeCloud, name: &str, real: &str, notes: &Notes) {
    let zone = (f.clouds().dns.find_zone("example.com.").await)
        .unwrap()
        .expect("the zone");
    let record = (f.clouds().dns.list_records(&zone, "").await)
        .unwrap()
        .into_iter()
        .find(|d| d.name == name)
        .expect("the record that follows the database");
    assert_eq!(record.values, [real.to_string()]);
    let notes = notes.0.lock().unwrap().clone();
    assert!(
        notes.iter().any(|n| n.contains("attacker.example.net")
            && n.contains(real)
            && n.contains("acting on the cloud's")),
        "{notes:#?}"
    );
}

/// Regression: a resume took the promoted database's endpoint from the
/// journal, so an edited journal of a crashed run pointed the database's
/// record wherever its editor liked. It reads the endpoint again and acts
/// on the cloud's, saying that the two disagree.
#[tokio::test]
async fn regression_a_resume_points_records_at_the_endpoint_read_again_not_the_journals() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, store, _) = engine(&f, dir.path());
    let notes = Arc::new(Notes::default());
    e.reporter = notes.clone();
    let promote = "payments/promote:payments-db";
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(promote.into())),
        ..opts()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(&payments(), &crash).await else {
        panic!("the run stops after the promotion");
    };
    edit_endpoint(&store, &run, promote, "attacker.example.net").await;

    let r = e.resume(&run, &payments(), Some(opts())).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded);
    let real = f.state().databases[&("us-east-1".to_string(), "payments-db-use1".to_string())]
        .endpoint
        .clone()
        .expect("an endpoint");
    followed_the_cloud(&f, "payments-db.example.com.", &real, &notes).await;
}

#[tokio::test]
async fn with_keys_listed_a_run_without_the_run_key_is_refused_before_any_lock() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, mem, _) = engine(&f, dir.path());
    let k = crate::sign::SecretKey::generate();
    e.store = Arc::new(crate::journal::Keyed::new(
        mem.clone(),
        crate::journal::RunKeys::new(None, vec![k.public()]),
    ));
    let err = e.run(&payments(), &opts()).await.unwrap_err();
    assert!(matches!(err, EngineError::Invalid(_)), "{err}");
    assert!(
        err.to_string().contains("does not hold the run key"),
        "{err}"
    );
    assert!(mem.list().await.unwrap().is_empty(), "no journal");
    assert!(!dir.path().join("locks/payments.lock").exists(), "no lock");
}

/// A run signed with the run key; its journal rewritten without the key
/// (records and head recomputed): resume refuses it, exit 3, before taking
/// a lock or acting.
#[tokio::test]
async fn regression_a_journal_rewritten_without_the_run_key_is_refused_by_resume() {
    let f = world();
    f.state()
        .scaled
        .remove(&("compute", "us-east-1".into(), "payments-api-use1".into()));
    let dir = tempfile::tempdir().unwrap();
    let (mut e, mem, _) = engine(&f, dir.path());
    let k = crate::sign::SecretKey::generate();
    e.store = Arc::new(crate::journal::Keyed::new(
        mem.clone(),
        crate::journal::RunKeys::new(Some(k.clone()), vec![k.public()]),
    ));
    let r = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(
        crate::journal::verify_stored(e.store.as_ref(), &r.run_id)
            .await
            .unwrap()
            .authenticated
    );
    rewrite_start(&mem, &r.run_id, |_| {}).await;
    let err = e
        .resume(&r.run_id, &payments(), Some(opts()))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Refused(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("refusing to resume") && text.contains("not signed"),
        "{text}"
    );
}

/// Regression: a Route 53 switch whose change's answer was lost (the
/// change in effect, judged by reading the records back) has no change
/// id to wait on, and Route 53 cannot list a zone's changes; the run's
/// RTO was still said to end at "the last DNS change in effect", a
/// moment no one saw. The basis now says the clock stopped at the
/// read-back, and why; a clean run's basis says nothing more.
#[tokio::test]
async fn regression_an_rto_whose_route53_change_was_never_seen_in_effect_said_it_was() {
    use crate::cloud::ErrorKind;
    use crate::cloud::metered::{Effect, Injection, Metered};
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, _, _) = engine(&f, dir.path());
    let (clouds, _) = Metered::wrap_with_faults(
        f.clouds(),
        vec![Injection {
            label: "route53:ChangeResourceRecordSets",
            nth: 1,
            effect: Effect::AnswerLost,
            kind: ErrorKind::Connection,
        }],
    );
    e.clouds = clouds;
    let r = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
    let rto = &r.measures[0].rto;
    assert!(rto.seconds.is_some(), "{rto:?}");
    let unseen = |rto: &crate::journal::notice::Measure| {
        assert!(
            rto.basis.contains(crate::steps::IN_EFFECT)
                && rto.basis.ends_with(crate::steps::UNCONFIRMED),
            "{rto:?}"
        );
        // Within the target, as far as anyone saw: not known to be met.
        assert_eq!(
            (rto.met, rto.target_seconds.is_some()),
            (None, true),
            "{rto:?}"
        );
    };
    unseen(rto);

    // A resumed switch whose records an earlier attempt may have switched:
    // the run stopped once `switch-dns` had started, then the records
    // moved (as the change that attempt sent would land), and the resumed
    // attempt finds nothing to send and no change to wait on.
    let f = world();
    let (mut e, _, _) = engine(&f, dir.path());
    let switch = "payments/switch-dns:example.com.";
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::Before(switch.into())),
        ..opts()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(&payments(), &crash).await else {
        panic!("the run stops as the switch starts");
    };
    let elsewhere = tempfile::tempdir().unwrap();
    let (landed, _, _) = engine(&f, elsewhere.path());
    let r = landed.run(&payments(), &opts()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
    e.clouds = f.clouds();
    let r = e.resume(&run, &payments(), Some(opts())).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
    unseen(&r.measures[0].rto);

    // Stopped before the switch sent anything, a resumed switch sends its
    // own change and waits on it; a clean run says nothing more.
    let f = world();
    let (e, _, _) = engine(&f, dir.path());
    let Err(EngineError::Crashed(_, run)) = e.run(&payments(), &crash).await else {
        panic!("the run stops as the switch starts");
    };
    let r = e.resume(&run, &payments(), Some(opts())).await.unwrap();
    let rto = &r.measures[0].rto;
    assert!(rto.basis.ends_with(crate::steps::IN_EFFECT), "{rto:?}");
    assert_eq!(rto.met, Some(true), "{rto:?}");
    let f = world();
    let (e, _, _) = engine(&f, dir.path());
    let clean = e.run(&payments(), &opts()).await.unwrap();
    let rto = &clean.measures[0].rto;
    assert!(rto.basis.ends_with(crate::steps::IN_EFFECT), "{rto:?}");
}

/// Regression (`a_failback_after_a_switchover_was_refused_for_an_unknown_lag`):
/// after a planned move, the old writer has published no lag yet, and the
/// failback's RPO gate refused it (exit 3) although a switchover loses
/// nothing. The gate judges the move the run makes: a planned failover and
/// its failback of an Aurora global database and of a Cloud SQL DR replica
/// pass with no lag anywhere, journaled as switchovers; an unplanned
/// failover with the lag unknown is still refused, and nothing moves.
#[tokio::test]
async fn regression_a_failback_after_a_switchover_was_refused_for_an_unknown_lag() {
    for (name, home, target) in [
        ("orders", "us-west-2", "us-east-1"),
        ("orders-gcp", "us-central1", "us-east4"),
    ] {
        let f = world();
        let plan: Vec<Plan> = (crate::plan::reference_with_gcp().into_iter())
            .filter(|p| p.name() == name)
            .collect();
        assert_eq!(plan.len(), 1, "{name}");
        // The plan on GCP seeded as the simulator seeds it; then no lag
        // anywhere: every copy's is unknown.
        crate::plan::kinds::seed_plan(&f, &plan[0]);
        f.state().lag.clear();
        let dir = tempfile::tempdir().unwrap();
        let (e, store, _) = engine(&f, dir.path());
        let unplanned = RunOptions {
            mode: RunMode::Failover { planned: false },
            ..RunOptions::failover(target)
        };
        let unplanned = RunOptions {
            approve: Some("test".into()),
            pace: opts().pace,
            ..unplanned
        };
        let err = e.run(&plan, &unplanned).await.unwrap_err();
        assert!(
            matches!(err, EngineError::Refused(ref m) if m.contains("unknown")),
            "{name}: {err}"
        );
        assert!(f.state().writes.is_empty(), "{name}: nothing moved");
        for (kind, to) in [(RunKind::Failover, target), (RunKind::Failback, home)] {
            let o = RunOptions {
                kind,
                mode: RunMode::Failover { planned: true },
                ..unplanned.clone()
            };
            let o = RunOptions {
                target: to.to_string(),
                ..o
            };
            let r = e.run(&plan, &o).await.unwrap();
            assert_eq!(r.outcome, Outcome::Succeeded, "{name} {kind:?}");
            let text = store.read(&r.run_id).await.unwrap();
            let gate = (text.lines())
                .filter_map(|l| serde_json::from_str::<Record>(l).ok())
                .find_map(|rec| match rec.event {
                    Event::Gate {
                        gate: GateName::Rpo,
                        decision,
                        detail,
                        ..
                    } => Some((decision, detail)),
                    _ => None,
                })
                .expect("an RPO gate");
            assert_eq!(gate.0, Decision::Pass, "{name} {kind:?}: {}", gate.1);
            let dbs = &gate.1["databases"];
            assert_eq!(dbs[0]["switchover"], true, "{name} {kind:?}: {}", gate.1);
            assert_eq!(
                dbs[0]["reading"],
                crate::engine::gates::SWITCHOVER_READING,
                "{name} {kind:?}"
            );
            assert_eq!(
                r.measures[0].rpo.seconds,
                Some(0.0),
                "{name} {kind:?}: 0 by design"
            );
        }
    }
}

/// The reference world whose next Route 53 change is stranded, and an
/// engine over it.
fn stranding(dir: &std::path::Path) -> (FakeCloud, Engine, Arc<MemoryStore>) {
    let f = world();
    f.state().strand_changes = 1;
    let (e, store, _) = engine(&f, dir);
    (f, e, store)
}

/// How many Route 53 changes the world was sent (stranded ones too).
fn route53_changes(f: &FakeCloud) -> usize {
    (f.state().writes.iter())
        .filter(|w| w.starts_with("ChangeResourceRecordSets"))
        .count()
}

/// The values of payments' `api.example.com.` record in the world.
fn api_values(f: &FakeCloud) -> Vec<String> {
    let s = f.state();
    let zone = s.zones["example.com."].id.clone();
    let api = (s.records[&zone].iter()).find(|r| r.name == "api.example.com.");
    api.map(|r| r.values.clone()).unwrap_or_default()
}

/// Returns once the run's switch sent the change the world strands.
async fn until_stranded(f: &FakeCloud) {
    while !f.state().writes.iter().any(|w| w.contains("(stranded)")) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Issue 75: a Route 53 change accepted just before the control plane
/// failed over to its accelerated-recovery copy is stranded: never applied,
/// never INSYNC. verify-dns waited for it until the step's deadline. Past
/// `STRANDED_AFTER` it reads the records, sends those not switched again,
/// once, journals the resend (`stranded`, `resent`), waits for it and reads
/// the records back.
#[tokio::test(start_paused = true)]
async fn a_stranded_route53_change_is_sent_again_once_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (f, e, store) = stranding(dir.path());
    let report = e.run(&payments(), &opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let out = step_outputs(&store, &report.run_id, "payments/verify-dns").await;
    let (stranded, resent) = (&out["stranded"], &out["resent"]);
    assert_eq!(stranded.as_array().map(Vec::len), Some(1), "{out:#}");
    assert_eq!(resent.as_array().map(Vec::len), Some(1), "{out:#}");
    assert_ne!(stranded[0], resent[0], "{out:#}");
    assert_eq!(route53_changes(&f), 2, "the change and its one resend");
    assert_eq!(
        api_values(&f),
        ["api-use1.example.com."],
        "switched by the resend"
    );
}

/// Issue 75: with the change stranded and Route 53's API gone (us-east-1
/// impaired, no accelerated recovery), nothing is sent again: the read
/// before the resend fails, and the change is waited on until the step's
/// deadline, as before; the run fails there, resumable.
#[tokio::test(start_paused = true)]
async fn a_stranded_change_is_not_sent_again_while_route53_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (f, e, _) = stranding(dir.path());
    let o = RunOptions {
        step_timeout: Some(Duration::from_secs(600)),
        ..opts()
    };
    let outage = async {
        // After the switch sent its change, before it is taken for
        // stranded.
        until_stranded(&f).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        f.state().dead_regions.insert("global".into());
    };
    let plans = payments();
    let (report, ()) = tokio::join!(e.run(&plans, &o), outage);
    let report = report.unwrap();
    assert_ne!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert_eq!(route53_changes(&f), 1, "nothing sent again");
}

/// Issue 75 (review): a resend must never overwrite a newer decision. The
/// record was changed by someone else while the switch's change was
/// stranded: nothing is sent again, and the step fails naming the record.
#[tokio::test(start_paused = true)]
async fn a_stranded_change_is_not_sent_again_over_a_record_changed_since() {
    let dir = tempfile::tempdir().unwrap();
    let (f, e, _) = stranding(dir.path());
    let someone = async {
        until_stranded(&f).await;
        let mut s = f.state();
        let zone = s.zones["example.com."].id.clone();
        let api = (s.records.get_mut(&zone).unwrap().iter_mut())
            .find(|r| r.name == "api.example.com.")
            .unwrap();
        api.values = vec!["maintenance.example.com.".into()];
    };
    let (plans, o) = (payments(), opts());
    let (report, ()) = tokio::join!(e.run(&plans, &o), someone);
    let report = report.unwrap();
    assert_ne!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let said = format!("{report:?}");
    assert!(
        said.contains("changed since the switch read them"),
        "{said}"
    );
    assert_eq!(route53_changes(&f), 1, "nothing sent again");
    assert_eq!(
        api_values(&f),
        ["maintenance.example.com."],
        "left as someone set it"
    );
}
