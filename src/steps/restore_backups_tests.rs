//! The generic `restore` step on a backup standby (`[[backup_database]]`,
//! the reference `archive` plan; `[[cloud_sql_backup]]`, `archive-gcp`): a
//! failover restores the target's newest restorable point into the plan's
//! name there, once, with the home region down; a lost answer, a resume
//! and a region that lacks what a restore needs, each tried.

use std::collections::BTreeMap;

use super::restore::{Restore, RestoreOutput};
use super::{Action, Cx, StepKind, StepOutput};
use crate::cloud::fake::{BackupAt, FakeCloud};
use crate::cloud::metered::{Effect, Injection, Metered};
use crate::cloud::{Clouds, ErrorKind, RestoreNeed, RestorePoint};
use crate::plan::Plan;
use crate::plan::kinds::restoring::RESTORED_BY_TAG;

pub(super) const TARGET: &str = "us-east-1";
pub(super) const RUN: &str = "20261130T040000Z-archive-c3";

pub(super) fn archive() -> Plan {
    (crate::plan::reference().into_iter())
        .find(|p| p.name() == "archive")
        .expect("the reference archive plan")
}

/// The archive world with its home region down: only us-east-1 answers.
pub(super) fn world(plan: &Plan) -> FakeCloud {
    let f = FakeCloud::new();
    crate::plan::kinds::seed_plan(&f, plan);
    f.state().dead_regions.insert("us-west-2".into());
    f
}

/// The failover's restore step of `archive-db`.
fn step(plan: &Plan) -> (Restore, Vec<crate::steps::graph::Step>) {
    let g = crate::steps::graph::compile(plan, TARGET).unwrap();
    assert!(
        !g.steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::Promote(_))),
        "a backup standby is restored, never promoted"
    );
    let s = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::Restore(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a restore step");
    (s, g.steps)
}

pub(super) async fn run(
    clouds: &Clouds,
    plan: &Plan,
    s: &Restore,
) -> Result<RestoreOutput, String> {
    let outputs = BTreeMap::new();
    let cx = Cx {
        run_id: RUN,
        ..Cx::for_test(clouds, plan, TARGET, &outputs, &[])
    };
    let out = s.run(&cx).await.map_err(|e| e.summary())?;
    Ok(RestoreOutput::read(&out).expect("its outputs"))
}

fn newest_point(f: &FakeCloud) -> chrono::DateTime<chrono::Utc> {
    let s = f.state();
    let all = &s.restorables[&(TARGET.to_string(), "archive-db".to_string())];
    all.iter().filter_map(|r| r.latest).max().unwrap()
}

#[tokio::test]
async fn a_backup_standby_fails_over_by_restoring_its_newest_point_once_with_home_down() {
    let plan = archive();
    let f = world(&plan);
    let (s, _) = step(&plan);
    assert_eq!(
        (s.instance.as_str(), s.region.as_str()),
        ("archive-db", TARGET)
    );
    assert_eq!(s.placement.from, ["archive-db"]);
    let clouds = f.clouds();
    let point = newest_point(&f);
    let out = run(&clouds, &plan, &s).await.expect("restored");
    assert_eq!(
        (out.instance.as_str(), out.already_existed),
        ("archive-db", false)
    );
    assert_eq!(out.restore_point, Some(point), "{out:?}");
    assert!(out.restore_point_source.contains("newest restorable point"));
    assert!(out.endpoint.is_some());
    {
        let st = f.state();
        let (from, asked, place) =
            &st.restored_from[&(TARGET.to_string(), "archive-db".to_string())];
        assert!(from.starts_with("arn:aws:rds:us-east-1:"), "{from}");
        assert_eq!(
            *asked,
            Some(RestorePoint::At(point)),
            "the point read, asked exactly"
        );
        assert_eq!(place.subnet_group.as_deref(), Some("archive-private-use1"));
        assert_eq!(place.instance_class.as_deref(), Some("db.t3.micro"));
        assert_eq!(
            place.tags.get(RESTORED_BY_TAG).map(String::as_str),
            Some(RUN)
        );
        assert_eq!(st.writes, ["RestoreDBInstanceToPointInTime archive-db"]);
    }
    // A re-run (a resume, from any machine) finds the instance by the
    // plan's name and sends nothing; it knows the point from the mark the
    // restore left on the instance, not from a later read of the backups.
    let again = run(&clouds, &plan, &s).await.expect("found");
    assert!(again.already_existed);
    let whole = |t: chrono::DateTime<chrono::Utc>| t.timestamp();
    assert_eq!(
        again.restore_point.map(whole),
        Some(whole(point)),
        "{again:?}"
    );
    assert!(again.restore_point_source.contains("restore-point"));
    let writes = f.state().writes.clone();
    assert_eq!(writes.len(), 1, "{writes:?}");
}

/// RDS answered, the answer was lost: the step fails, and its re-run
/// finds the one instance the call made, never a second.
#[tokio::test]
async fn regression_a_lost_restore_answer_makes_one_instance_not_two() {
    let plan = archive();
    let f = world(&plan);
    let (s, _) = step(&plan);
    let lost = Injection {
        label: "rds:RestoreDBInstanceToPointInTime",
        nth: 1,
        effect: Effect::AnswerLost,
        kind: ErrorKind::Connection,
    };
    let (clouds, _) = Metered::wrap_with_faults(f.clouds(), vec![lost]);
    let e = run(&clouds, &plan, &s).await.unwrap_err();
    assert!(e.contains("RestoreDBInstanceToPointInTime"), "{e}");
    let again = run(&clouds, &plan, &s).await.expect("found");
    assert!(again.already_existed);
    let made: Vec<_> = (f.state().databases.keys())
        .filter(|(r, _)| r == TARGET)
        .cloned()
        .collect();
    assert_eq!(made, [(TARGET.to_string(), "archive-db".to_string())]);
    assert_eq!(f.state().writes.len(), 1);
}

/// The target without the plan's subnet group: readiness names it, and
/// the step refuses before it restores anything.
#[tokio::test]
async fn a_region_without_its_subnet_group_refuses_before_restoring() {
    let plan = archive();
    let f = world(&plan);
    f.state().lacking.insert(
        (
            "us-east-1".into(),
            RestoreNeed::SubnetGroup("archive-private-use1".into()),
        ),
        "does not exist".into(),
    );
    let (s, graph) = step(&plan);
    let clouds = f.clouds();
    let outputs = BTreeMap::new();
    let cx = Cx::for_test(&clouds, &plan, TARGET, &outputs, &graph);
    let found = s.preflight(&cx).await;
    let problems: Vec<&str> = found.iter().filter_map(|f| f.problem.as_deref()).collect();
    assert_eq!(
        problems,
        ["DB subnet group archive-private-use1 does not exist in us-east-1"]
    );
    let e = run(&clouds, &plan, &s).await.unwrap_err();
    assert!(e.contains("archive-private-use1"), "{e}");
    let writes = f.state().writes.clone();
    assert!(writes.is_empty(), "{writes:?}");
}

/// With no backups replicated, only its copied snapshots: the newest
/// snapshot is restored, and the point is when it was taken.
#[tokio::test]
async fn with_only_copied_snapshots_the_newest_is_restored_at_its_time() {
    let plan = archive();
    let f = world(&plan);
    let key = (TARGET.to_string(), "archive-db".to_string());
    f.state()
        .restorables
        .get_mut(&key)
        .unwrap()
        .retain(|r| !r.id.starts_with("arn:"));
    let taken = newest_point(&f);
    let (s, _) = step(&plan);
    let out = run(&f.clouds(), &plan, &s).await.expect("restored");
    assert_eq!(out.restore_point, Some(taken));
    let st = f.state();
    let (from, asked, _) = &st.restored_from[&key];
    assert_eq!((from.as_str(), *asked), ("archive-db-nightly", None));
    assert_eq!(st.writes, ["RestoreDBInstanceFromDBSnapshot archive-db"]);
}

/// After a failback, the instance an earlier failover restored in
/// us-east-1 still held the plan's name there: a new failover would have
/// found it and taken it as restored, serving data as old as that run's
/// point. Only this run's restore is its own; another's is in the way.
#[tokio::test]
async fn regression_a_failover_after_a_failback_took_an_earlier_runs_restore_as_its_own() {
    let plan = archive();
    let f = world(&plan);
    f.add_primary(TARGET, "archive-db");
    let key = (TARGET.to_string(), "archive-db".to_string());
    let earlier = (
        RESTORED_BY_TAG.to_string(),
        "20261101T000000Z-archive-aa".to_string(),
    );
    f.state()
        .databases
        .get_mut(&key)
        .unwrap()
        .tags
        .extend([earlier]);
    let (s, graph) = step(&plan);
    let clouds = f.clouds();
    let outputs = BTreeMap::new();
    let cx = Cx {
        run_id: RUN,
        ..Cx::for_test(&clouds, &plan, TARGET, &outputs, &graph)
    };
    let found = s.preflight(&cx).await;
    let problems: Vec<&str> = found.iter().filter_map(|f| f.problem.as_deref()).collect();
    assert_eq!(
        problems,
        [
            "instance archive-db already exists in us-east-1 (available; restored by run 20261101T000000Z-archive-aa, not this one)"
        ]
    );
    // Nor does the step itself take it as made (a run whose preflight
    // passed before the instance came).
    let e = run(&clouds, &plan, &s).await.unwrap_err();
    assert!(
        e.contains("restored by run 20261101T000000Z-archive-aa"),
        "{e}"
    );
    let writes = f.state().writes.clone();
    assert!(writes.is_empty(), "{writes:?}");
}

/// A requested time the replicated backups hold is restorable though a
/// copied snapshot is newer than their latest point: the window is every
/// ready copy's together, and the restore is asked of the backups.
#[tokio::test]
async fn a_time_inside_the_backups_window_is_restored_though_a_snapshot_is_newer() {
    let plan = archive();
    let f = world(&plan);
    let key = (TARGET.to_string(), "archive-db".to_string());
    let backups_latest = {
        let mut st = f.state();
        let all = st.restorables.get_mut(&key).unwrap();
        let b = all.iter_mut().find(|r| r.id.starts_with("arn:")).unwrap();
        b.latest = b.latest.map(|t| t - chrono::Duration::hours(12));
        b.latest.unwrap()
    };
    let fresh = BackupAt {
        region: TARGET,
        source: "archive-db",
        from: "us-west-2",
    };
    f.add_restorable(fresh, Some("archive-db-fresh"), chrono::Utc::now());
    let asked = backups_latest - chrono::Duration::hours(1);
    let mut s = step(&plan).0;
    s.to_time = Some(asked);
    let out = run(&f.clouds(), &plan, &s).await.expect("restored");
    assert_eq!(out.restore_point, Some(asked));
    let st = f.state();
    let (from, point, _) = &st.restored_from[&key];
    assert!(from.starts_with("arn:"), "{from}");
    assert_eq!(*point, Some(RestorePoint::At(asked)));
}

// ---- Cloud SQL (`plans/gcp/archive-gcp.toml`)

const GCP_TARGET: &str = "us-east4";
const GCP_RUN: &str = "20261130T050000Z-archive-gcp-d4";

fn archive_gcp() -> Plan {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/archive-gcp.toml");
    let loaded = crate::plan::load(&[path]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.plans.into_iter().next().expect("archive-gcp")
}

fn gcp_world(plan: &Plan) -> FakeCloud {
    let f = FakeCloud::new();
    crate::plan::kinds::seed_plan(&f, plan);
    f.state().dead_regions.insert("us-central1".into());
    f
}

fn gcp_step(plan: &Plan) -> Restore {
    let g = crate::steps::graph::compile(plan, GCP_TARGET).unwrap();
    (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::Restore(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a restore step")
}

async fn gcp_run(f: &FakeCloud, plan: &Plan, s: &Restore) -> Result<RestoreOutput, String> {
    let (clouds, outputs) = (f.clouds(), BTreeMap::new());
    let cx = Cx {
        run_id: GCP_RUN,
        ..Cx::for_test(&clouds, plan, GCP_TARGET, &outputs, &[])
    };
    let out = s.run(&cx).await.map_err(|e| e.summary())?;
    Ok(RestoreOutput::read(&out).expect("its outputs"))
}

#[tokio::test]
async fn a_failover_restores_the_newest_backup_kept_in_the_target_once() {
    let plan = archive_gcp();
    let f = gcp_world(&plan);
    let older = chrono::Utc::now() - chrono::Duration::days(1);
    let kept = BackupAt {
        region: GCP_TARGET,
        source: "archive-sql",
        from: "us-central1",
    };
    f.add_sql_backup("drctl-emu", kept, older);
    let key = (GCP_TARGET.to_string(), "archive-sql".to_string());
    let newest = (f.state().sql_backups[&key].iter())
        .filter_map(|b| b.latest)
        .max();
    let s = gcp_step(&plan);
    assert_eq!(s.instance, "drctl-emu/archive-sql-use4");
    let out = gcp_run(&f, &plan, &s).await.expect("restored");
    assert_eq!(out.restore_point, newest, "{out:?}");
    assert!(out.operation.is_some(), "the restore's operation followed");
    let made = f.state().sql[&("drctl-emu".to_string(), "archive-sql-use4".to_string())].clone();
    assert_eq!(made.region, GCP_TARGET);
    // The run's mark, as Cloud SQL takes a label (lowercase, no `:`).
    let label = made.labels.get("drctl-restored-by").cloned();
    assert_eq!(label.as_deref(), Some("20261130t050000z-archive-gcp-d4"));
    // A resume finds it and sends nothing; the point is the one marked.
    let again = gcp_run(&f, &plan, &s).await.expect("found");
    assert!(again.already_existed);
    let whole = |t: chrono::DateTime<chrono::Utc>| t.timestamp();
    assert_eq!(again.restore_point.map(whole), newest.map(whole));
    let writes = f.state().writes.clone();
    assert_eq!(writes, ["instances.restoreBackup archive-sql-use4"]);
}

#[tokio::test]
async fn another_runs_instance_under_the_name_is_refused_and_no_backup_is_said() {
    let plan = archive_gcp();
    let f = gcp_world(&plan);
    f.add_sql("drctl-emu", GCP_TARGET, "archive-sql-use4", None, false);
    let s = gcp_step(&plan);
    let e = gcp_run(&f, &plan, &s).await.unwrap_err();
    assert!(e.contains("no restore of drctl's made it"), "{e}");
    let writes = f.state().writes.clone();
    assert!(writes.is_empty(), "{writes:?}");
    // No backup kept in the target: readiness says so, and the lag is
    // unknown, never zero.
    let bare = FakeCloud::new();
    bare.add_sql("drctl-emu", "us-central1", "archive-sql", None, false);
    let clouds = bare.clouds();
    let db = &plan.spec.cloud_sql_backup[0];
    let e = (crate::plan::kinds::RpoSource::lag(
        db,
        &clouds,
        GCP_TARGET,
        std::time::Duration::from_secs(900),
    )
    .await)
        .unwrap_err();
    assert!(
        e.message
            .contains("no backups of archive-sql kept in us-east4"),
        "{e}"
    );
    let outputs = BTreeMap::new();
    let cx = Cx::for_test(&clouds, &plan, GCP_TARGET, &outputs, &[]);
    let found = s.preflight(&cx).await;
    assert!(
        found.iter().any(|f| f
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("no backups"))),
        "{found:?}"
    );
}

/// Backups kept elsewhere than the target (a newer one in the home
/// region) are no standby's there; and a time between backups is no
/// point a restore could make: refused before any call.
#[tokio::test]
async fn only_a_backup_kept_in_the_target_is_restored_and_only_to_its_own_point() {
    let plan = archive_gcp();
    let f = gcp_world(&plan);
    let home = BackupAt {
        region: "us-central1",
        source: "archive-sql",
        from: "us-central1",
    };
    f.add_sql_backup("drctl-emu", home, chrono::Utc::now());
    let key = (GCP_TARGET.to_string(), "archive-sql".to_string());
    let kept = (f.state().sql_backups[&key].iter())
        .filter_map(|b| b.latest)
        .max();
    let s = gcp_step(&plan);
    let mut between = s.clone();
    between.to_time = kept.map(|t| t - chrono::Duration::minutes(1));
    let e = gcp_run(&f, &plan, &between).await.unwrap_err();
    assert!(e.contains("before the earliest restorable time"), "{e}");
    let writes = f.state().writes.clone();
    assert!(writes.is_empty(), "{writes:?}");
    let out = gcp_run(&f, &plan, &s).await.expect("restored");
    assert_eq!(out.restore_point, kept, "the one kept in {GCP_TARGET}");
}
