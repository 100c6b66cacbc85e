//! Shadow drills of the GCP kinds (`drill-copy`, `drill-raise`)
//! on the in-memory cloud, through the engine: a drill of
//! `plans/gcp/orders-gcp.toml` leaves production as it was and nothing of
//! its own behind; so does a drill that dies after any of its steps, once
//! `runs resume` cleaned it up; and a cleanup run again changes nothing.
//! (`tests/it/gcp_drill.rs` runs the same against the emulator.)

use super::tests::{drill_opts, engine};
use super::*;
use crate::cloud::fake::FakeCloud;
use std::sync::Arc;

use crate::journal::{CleanupResult, JournalStore, Temp};
use crate::plan::spec::ResourceKind;

const TARGET: &str = "us-east4";

fn orders_gcp() -> Vec<Plan> {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
    let loaded = crate::plan::load(&[path]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.plans
}

/// The plan's world as its kinds seed it: the Cloud SQL primary in
/// us-central1 and its DR replica in us-east4, each region's group and
/// service at its size.
fn world(plans: &[Plan]) -> FakeCloud {
    let f = FakeCloud::new();
    for p in plans {
        crate::plan::kinds::seed_plan(&f, p);
    }
    f
}

fn gcp_drill() -> RunOptions {
    RunOptions {
        target: TARGET.into(),
        ..drill_opts()
    }
}

/// Production as a drill must leave it: every instance's role and
/// replicas, every group's size, every service's floor.
fn production(f: &FakeCloud) -> Vec<String> {
    let s = f.state();
    let sql = (s.sql.values()).map(|i| format!("sql {} {:?} {:?}", i.name, i.role, i.replicas));
    // Every capacity kind's groups (the plan's managed instance groups
    // and Cloud Run services), in the fake's one model.
    let groups = (s.scaled.iter()).map(|((kind, r, n), g)| format!("{kind} {r}/{n} {}", g.size));
    sql.chain(groups).collect()
}

fn clones(f: &FakeCloud) -> Vec<String> {
    (f.state().sql.values())
        .filter(|i| i.name.starts_with("drill-"))
        .map(|i| i.name.clone())
        .collect()
}

#[tokio::test]
async fn a_shadow_drill_of_orders_gcp_leaves_production_and_nothing_behind() {
    let plans = orders_gcp();
    let f = world(&plans);
    let before = production(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let report = e.run(&plans, &gcp_drill()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let d = report.drill.as_ref().expect("a drill summary");
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    let kinds: Vec<&str> = (d.cleanup.resources.iter())
        .map(|c| match c.resource {
            Temp::Copy { .. } => "clone",
            Temp::Raised {
                kind: ResourceKind::InstanceGroup,
                ..
            } => "mig",
            Temp::Raised { .. } => "run",
            Temp::Record {
                kind: ResourceKind::CloudDns,
                ..
            } => "record",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["record", "clone", "run", "mig"],
        "{:?}",
        d.cleanup.resources
    );
    assert!(
        (d.cleanup.resources.iter())
            .all(|c| matches!(c.result, CleanupResult::Removed | CleanupResult::Restored)),
        "{:?}",
        d.cleanup.resources
    );
    assert_eq!(production(&f), before);
    assert!(clones(&f).is_empty(), "{:?}", clones(&f));
    // The drill raised the standby, cloned the primary, and wrote nothing
    // of production's else.
    let writes = f.state().writes.clone();
    for w in [
        "instances.clone drill-",
        "instances.delete drill-",
        "regionInstanceGroupManagers.resize drctl-emu/orders-workers-use4",
        "run:services.patch drctl-emu/orders-api",
    ] {
        assert!(writes.iter().any(|x| x.contains(w)), "{w}: {writes:?}");
    }
    assert!(
        !writes.iter().any(|x| x.contains("promoteReplica")
            || x.contains("switchover")
            || x.contains(" orders-workers ")),
        "{writes:?}"
    );
    // The RPO was measured from the clone's point in time.
    let text = store.text(&report.run_id).unwrap();
    assert!(text.contains("\"type\":\"copy\""), "{text}");
    let verdict = d.verdicts[0].verdict.to_string();
    assert!(!verdict.contains("not rehearse"), "{verdict}");
    let m = &report.measures[0];
    assert!(m.rpo.seconds.is_some(), "{m:?}");
    assert!(m.rpo.basis.contains("point in time"), "{m:?}");
}

/// A drill that dies right after each of its steps, then `runs resume`:
/// the cleanup removes the clone and returns the group and the service;
/// a second resume (a cleanup run twice) changes nothing.
#[tokio::test]
async fn a_drill_crashed_after_each_step_is_cleaned_up_by_a_resume_and_again_is_a_no_op() {
    for step in [
        "orders-gcp/drill-copy:orders-sql",
        "orders-gcp/drill-raise:orders-workers",
        "orders-gcp/drill-raise:orders-api",
    ] {
        let plans = orders_gcp();
        let f = world(&plans);
        let before = production(&f);
        let dir = tempfile::tempdir().unwrap();
        let (e, _, _) = engine(&f, dir.path());
        let crash = RunOptions {
            inject_crash: Some(CrashPoint::After(step.into())),
            ..gcp_drill()
        };
        let crashed = e.run(&plans, &crash).await;
        let Err(EngineError::Crashed(_, run)) = crashed else {
            panic!("{step}: {crashed:?}");
        };
        assert_ne!(production(&f), before, "{step}: something was raised");
        let report = e.resume(&run, &plans, Some(gcp_drill())).await.unwrap();
        let d = report.drill.as_ref().unwrap();
        assert!(d.cleanup.complete, "{step}: {:?}", d.cleanup);
        assert!(!d.verdicts[0].verdict.passed(), "{step}");
        assert_eq!(production(&f), before, "{step}");
        assert!(clones(&f).is_empty(), "{step}: {:?}", clones(&f));
        let writes = f.state().writes.len();
        let again = e.resume(&run, &plans, Some(gcp_drill())).await;
        if let Ok(again) = again {
            let d = again.drill.as_ref().unwrap();
            assert!(d.cleanup.complete, "{step}: {:?}", d.cleanup);
        }
        assert_eq!(
            f.state().writes.len(),
            writes,
            "{step}: a second cleanup writes nothing"
        );
        assert_eq!(production(&f), before, "{step}");
    }
}

/// The cleanup functions on their own, run twice: the second finds the
/// clone absent and the group and service at their restore points, and
/// sends nothing.
#[tokio::test]
async fn each_gcp_cleanup_run_twice_is_a_no_op() {
    let plans = orders_gcp();
    let f = world(&plans);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(
            "orders-gcp/drill-raise:orders-workers".into(),
        )),
        ..gcp_drill()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(&plans, &crash).await else {
        panic!("crashed");
    };
    let records = crate::journal::read(store.as_ref(), &run).await.unwrap();
    let temps = crate::runs::drill::journaled(&records);
    assert_eq!(temps.len(), 3, "{temps:?}");
    let poll = (Duration::from_millis(1), Duration::from_millis(5));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let owner = crate::cleanup::CapacityOwner::Drill("the test's".into());
    let clouds = f.clouds();
    let first: Vec<CleanupResult> = futures::future::join_all(
        (temps.iter()).map(|t| crate::cleanup::remove(t, &clouds, &run, &owner, poll, deadline)),
    )
    .await
    .into_iter()
    .map(|c| c.result)
    .collect();
    assert_eq!(
        first,
        [
            CleanupResult::Removed,
            CleanupResult::Restored,
            CleanupResult::Restored
        ]
    );
    let writes = f.state().writes.len();
    let second: Vec<CleanupResult> = futures::future::join_all(
        (temps.iter()).map(|t| crate::cleanup::remove(t, &clouds, &run, &owner, poll, deadline)),
    )
    .await
    .into_iter()
    .map(|c| c.result)
    .collect();
    assert_eq!(
        second,
        [
            CleanupResult::Absent,
            CleanupResult::Restored,
            CleanupResult::Restored
        ]
    );
    assert_eq!(f.state().writes.len(), writes);
}

/// Regression (`drill-mig` and `drill-run` raised over another drill's
/// raise; both are `drill-raise` now): a drill that died with the standby
/// group and service raised
/// left them raised; a second drill, from another machine on the same
/// state, journaled the raised sizes as its own restore points, so its
/// cleanup would have kept them raised, and a sweep could not find them.
/// Now the second drill refuses them naming the first, journals no
/// restore point of theirs, and a sweep finds both by the first's journal.
#[tokio::test]
async fn regression_drill_mig_and_drill_run_raised_over_another_drills_raise() {
    let plans = orders_gcp();
    let f = world(&plans);
    let before = production(&f);
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (e, store, _) = engine(&f, one.path());
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(
            "orders-gcp/drill-raise:orders-workers".into(),
        )),
        ..gcp_drill()
    };
    let Err(EngineError::Crashed(_, dead)) = e.run(&plans, &crash).await else {
        panic!("crashed");
    };
    let raised = production(&f);
    assert_ne!(raised, before, "the dead drill raised the standby");

    // Another machine (its own locks), the same state.
    let (other, shared, _) = engine(&f, two.path());
    let text = store.text(&dead).unwrap();
    shared.create(&dead).await.unwrap();
    for (seq, line) in text.lines().enumerate() {
        shared.append(&dead, seq as u64, line).await.unwrap();
    }
    let second = other.run(&plans, &gcp_drill()).await;
    let said = format!("{second:?}");
    // Its preflight names the dead drill on both, by the service's marks
    // and by the group's journal.
    for group in [
        "Cloud Run service drctl-emu/orders-api: it carries the marks of drill",
        "managed instance group drctl-emu/orders-workers-use4: drill",
    ] {
        assert!(
            said.contains(group) && said.contains(&dead),
            "{group}: {said}"
        );
    }
    for run in shared.list().await.unwrap() {
        if run == dead {
            continue;
        }
        let records = crate::journal::read(shared.as_ref(), &run).await.unwrap();
        let mine = crate::runs::drill::journaled(&records);
        assert!(
            !mine.iter().any(|t| matches!(t, Temp::Raised { .. })),
            "the second drill journaled another's raise as its restore point: {mine:?}"
        );
    }
    assert_eq!(
        production(&f),
        raised,
        "the dead drill's raise is left alone"
    );

    // A sweep finds both by the dead drill's journal, once it expired.
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let (found, errors) =
        crate::cleanup::sweep::find(&f.clouds(), &plans, shared.as_ref(), later).await;
    assert!(errors.is_empty(), "{errors:?}");
    for kind in [ResourceKind::InstanceGroup, ResourceKind::CloudRun] {
        let hit = found.iter().find(|x| {
            matches!(x.resource, Temp::Raised { kind: k, .. } if k == kind)
                && x.run.as_deref() == Some(dead.as_str())
        });
        assert!(hit.is_some_and(|x| x.expired), "{kind:?}: {found:?}");
    }
    // The dead drill's resume returns them to what they were.
    e.resume(&dead, &plans, Some(gcp_drill())).await.unwrap();
    assert_eq!(production(&f), before);
}

/// Regression (resume acted on a Cloud SQL run's journaled endpoint): a
/// resume re-read the promoted database's endpoint for RDS only, so a
/// crashed Cloud SQL failover went on with whatever endpoint an editor of
/// its journal wrote. The promotion step's answer re-reads it now, and the
/// resumed run's outputs carry the cloud's.
#[tokio::test]
async fn regression_a_resume_of_a_cloud_sql_run_acts_on_the_clouds_endpoint() {
    let plans = orders_gcp();
    let f = world(&plans);
    let dir = tempfile::tempdir().unwrap();
    let (mut e, store, _) = engine(&f, dir.path());
    let notes = Arc::new(super::tests::Notes::default());
    e.reporter = notes.clone();
    let step = "orders-gcp/promote:orders-sql";
    let failover = || RunOptions {
        target: TARGET.into(),
        ..super::tests::opts()
    };
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(step.into())),
        ..failover()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(&plans, &crash).await else {
        panic!("the run stops after the promotion");
    };
    super::tests::edit_endpoint(&store, &run, step, "attacker.example.net").await;
    let r = e.resume(&run, &plans, Some(failover())).await.unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded, "{r:?}");
    let sql = &plans[0].spec.cloud_sql[0];
    let name = &sql.regions[TARGET];
    let real = (f
        .clouds()
        .cloud_sql
        .describe_sql(TARGET, &sql.project, name)
        .await)
        .unwrap()
        .and_then(|i| i.endpoint)
        .expect("the new primary's endpoint");
    let notes = notes.0.lock().unwrap().clone();
    assert!(
        notes.iter().any(|n| n.contains("attacker.example.net")
            && n.contains(&format!("the cloud says {real}: acting on the cloud's"))),
        "{notes:#?}"
    );
}

/// Runs a GCP drill of `plans` (with `max_duration`, if any) that dies
/// right after its Cloud SQL clone; returns its run id and its state.
async fn drill_dead_after_its_clone(
    f: &FakeCloud,
    plans: &[crate::plan::Plan],
    max_duration: Option<Duration>,
) -> (String, Arc<crate::journal::MemoryStore>) {
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(f, dir.path());
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After("orders-gcp/drill-copy:orders-sql".into())),
        max_duration,
        ..gcp_drill()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(plans, &crash).await else {
        panic!("crashed");
    };
    (run, store)
}

/// Regression (a Cloud SQL drill clone was found only by its drill's
/// journal: a sweep without it left the clone running, and billed, for
/// ever): a drill that died right after its clone, its journal gone, is
/// swept by the clone's name once the name's time plus the plan's budget
/// has passed; an instance named like a drill's copy of an instance no
/// plan has, or with no drill's time in its name, is not ours.
#[tokio::test]
async fn regression_a_sweep_finds_a_cloud_sql_clone_by_its_name_with_the_journal_gone() {
    let plans = orders_gcp();
    let f = world(&plans);
    let (run, _) = drill_dead_after_its_clone(&f, &plans, None).await;
    let clone = match clones(&f).as_slice() {
        [one] => one.clone(),
        other => panic!("one clone: {other:?}"),
    };
    let short = crate::steps::drill_names::short_id(&run);
    f.add_sql(
        "drctl-emu",
        "us-central1",
        &format!("drill-{short}-someone-elses"),
        None,
        false,
    );
    f.add_sql(
        "drctl-emu",
        "us-central1",
        "drill-not-a-time-orders-sql-use4",
        None,
        false,
    );
    let gone = crate::journal::MemoryStore::new();
    let clones_found = |found: &[crate::cleanup::sweep::Found]| -> Vec<(String, bool)> {
        (found.iter())
            .filter_map(|x| match &x.resource {
                Temp::Copy { address, .. } => Some((
                    address.rsplit('/').next().unwrap_or_default().to_string(),
                    x.expired,
                )),
                _ => None,
            })
            .collect()
    };
    let (found, errors) =
        crate::cleanup::sweep::find(&f.clouds(), &plans, &gone, chrono::Utc::now()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        clones_found(&found),
        [(clone.clone(), false)],
        "not expired yet"
    );
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let (found, _) = crate::cleanup::sweep::find(&f.clouds(), &plans, &gone, later).await;
    assert_eq!(clones_found(&found), [(clone.clone(), true)]);
    let poll = (Duration::from_millis(1), Duration::from_millis(5));
    let cleaned = crate::cleanup::sweep::sweep(&f.clouds(), &found, &plans, &gone, poll).await;
    let c = (cleaned.iter())
        .find(|c| matches!(&c.resource, Temp::Copy { address, .. } if address.ends_with(&format!("/{clone}"))))
        .expect("the clone swept");
    assert_eq!(c.result, CleanupResult::Removed, "{cleaned:?}");
    let left = clones(&f);
    assert_eq!(left.len(), 2, "only the drill's clone went: {left:?}");
    assert!(!left.contains(&clone), "{left:?}");
}

/// Regression (an untagged drill resource expired by its plan's budget):
/// a drill run with a `--max-duration` above its plan's (ten days here),
/// crashed after its clone, keeps the clone past the plan's budget while
/// its journal is in the state and says its own; with the journal gone,
/// the plan's budget is all a sweep knows.
#[tokio::test]
async fn regression_a_long_drills_clone_is_kept_for_its_journaled_max_duration() {
    let mut plans = orders_gcp();
    // Its data and records alone: no raised group's marks or journaled
    // raise to say the drill's end, only its journal's flags.
    plans[0].spec.instance_group.clear();
    plans[0].spec.cloud_run.clear();
    let f = world(&plans);
    let ten_days = Duration::from_secs(10 * 86_400);
    let (_, store) = drill_dead_after_its_clone(&f, &plans, Some(ten_days)).await;
    let budget = crate::steps::drill_names::plan_max_duration(&plans[0]);
    assert!(budget < Duration::from_secs(86_400), "{budget:?}");
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let clone_expired = |found: &[crate::cleanup::sweep::Found]| {
        (found.iter())
            .find(|x| matches!(x.resource, Temp::Copy { .. }))
            .map(|x| x.expired)
    };
    let (found, errors) =
        crate::cleanup::sweep::find(&f.clouds(), &plans, store.as_ref(), later).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(clone_expired(&found), Some(false), "its own ten days");
    let gone = crate::journal::MemoryStore::new();
    let (found, _) = crate::cleanup::sweep::find(&f.clouds(), &plans, &gone, later).await;
    assert_eq!(clone_expired(&found), Some(true), "the plan's budget");
    let after = chrono::Utc::now() + chrono::Duration::days(11);
    let (found, _) = crate::cleanup::sweep::find(&f.clouds(), &plans, store.as_ref(), after).await;
    assert_eq!(clone_expired(&found), Some(true), "past its own");
}

/// A journal never shortens an untagged resource's life: a drill's
/// journal saying one minute (as a writer of the state could forge for a
/// live drill's short id) leaves its clone to the plan's budget.
#[tokio::test]
async fn a_journal_shorter_than_the_plans_budget_does_not_expire_a_clone_early() {
    let mut plans = orders_gcp();
    plans[0].spec.instance_group.clear();
    plans[0].spec.cloud_run.clear();
    let f = world(&plans);
    let minute = Duration::from_secs(60);
    let (_, store) = drill_dead_after_its_clone(&f, &plans, Some(minute)).await;
    let budget = crate::steps::drill_names::plan_max_duration(&plans[0]);
    assert!(budget >= Duration::from_secs(15 * 60), "{budget:?}");
    let soon = chrono::Utc::now() + chrono::Duration::minutes(10);
    let (found, errors) =
        crate::cleanup::sweep::find(&f.clouds(), &plans, store.as_ref(), soon).await;
    assert!(errors.is_empty(), "{errors:?}");
    let clone = (found.iter())
        .find(|x| matches!(x.resource, Temp::Copy { .. }))
        .expect("the clone found");
    assert!(!clone.expired, "{clone:?}");
}

/// Regression (`instances.list`'s warnings were not read): a clone in a
/// region Cloud SQL says it could not reach is not taken for none: the
/// sweep names the region among those that did not answer, and finds the
/// clone once the region is back.
#[tokio::test]
async fn regression_a_sweep_says_a_region_cloud_sql_could_not_list() {
    let plans = orders_gcp();
    let f = world(&plans);
    drill_dead_after_its_clone(&f, &plans, None).await;
    let region = match (f.state().sql.values())
        .filter(|i| i.name.starts_with("drill-"))
        .map(|i| i.region.clone())
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] => one.clone(),
        other => panic!("one clone: {other:?}"),
    };
    let gone = crate::journal::MemoryStore::new();
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let is_clone = |x: &crate::cleanup::sweep::Found| matches!(x.resource, Temp::Copy { .. });
    f.state().dead_regions.insert(region.clone());
    let (found, errors) = crate::cleanup::sweep::find(&f.clouds(), &plans, &gone, later).await;
    assert!(!found.iter().any(is_clone), "{found:?}");
    let said = (errors.iter())
        .find(|e| e.operation == "instances.list")
        .unwrap_or_else(|| panic!("the unlisted region said: {errors:?}"));
    assert_eq!(&*said.region, region.as_str());
    assert!(said.message.contains("REGION_UNREACHABLE"), "{said:?}");
    f.state().dead_regions.remove(&region);
    let (found, errors) = crate::cleanup::sweep::find(&f.clouds(), &plans, &gone, later).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(found.iter().filter(|x| is_clone(x)).count(), 1, "{found:?}");
}

/// Regression (a Cloud DNS drill record set was found only by its drill's
/// journal): a drill that died right after its drill record set, its
/// journal gone, has the set swept by its name once it expired; the
/// production record set and a `drill-` name under another record are
/// left alone.
#[tokio::test]
async fn regression_a_sweep_finds_a_cloud_dns_drill_record_by_its_name_with_the_journal_gone() {
    let plans = orders_gcp();
    let f = world(&plans);
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(
            "orders-gcp/drill-dns:drctl-emu/orders-zone".into(),
        )),
        ..gcp_drill()
    };
    let Err(EngineError::Crashed(_, run)) = e.run(&plans, &crash).await else {
        panic!("crashed");
    };
    let drill = crate::steps::drill_names::record_name(&run, "orders.gcp.example.com.");
    let short = crate::steps::drill_names::short_id(&run);
    let foreign = format!("drill-{short}.other.gcp.example.com.");
    let sets = |f: &FakeCloud| -> Vec<String> {
        (f.state().cloud_rrsets.values())
            .map(|r| r.name.clone())
            .collect()
    };
    {
        let mut s = f.state();
        let mut r = (s.cloud_rrsets.values())
            .find(|r| r.name == drill)
            .cloned()
            .unwrap_or_else(|| panic!("the drill's record set {drill}"));
        r.name = foreign.clone();
        let key = (
            "drctl-emu".into(),
            "orders-zone".into(),
            foreign.clone(),
            r.rtype.clone(),
        );
        s.cloud_rrsets.insert(key, r);
    }
    let gone = crate::journal::MemoryStore::new();
    let records = |found: &[crate::cleanup::sweep::Found]| -> Vec<(String, bool)> {
        (found.iter())
            .filter_map(|x| match &x.resource {
                Temp::Record { name, .. } => Some((name.clone(), x.expired)),
                _ => None,
            })
            .collect()
    };
    let now = chrono::Utc::now();
    let (found, errors) = crate::cleanup::sweep::find(&f.clouds(), &plans, &gone, now).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(records(&found), [(drill.clone(), false)], "not expired yet");
    let later = now + chrono::Duration::days(2);
    let (found, _) = crate::cleanup::sweep::find(&f.clouds(), &plans, &gone, later).await;
    assert_eq!(records(&found), [(drill.clone(), true)]);
    let poll = (Duration::from_millis(1), Duration::from_millis(5));
    let cleaned = crate::cleanup::sweep::sweep(&f.clouds(), &found, &plans, &gone, poll).await;
    let c = (cleaned.iter())
        .find(|c| matches!(c.resource, Temp::Record { .. }))
        .expect("the record set swept");
    assert_eq!(c.result, CleanupResult::Removed, "{cleaned:?}");
    let left = sets(&f);
    assert!(!left.contains(&drill), "{left:?}");
    assert!(
        left.contains(&foreign),
        "another record's drill name stays: {left:?}"
    );
    assert!(
        left.iter().any(|n| n == "orders.gcp.example.com."),
        "production's record set stays: {left:?}"
    );
}

/// Regression: the in-memory cloud's name servers answered Route 53's
/// zones alone, so a health-check `[[cloud_dns]]` record never resolved
/// there and its failover waited out its budget in its resolution check
/// (then `verify-cloud-resolution`, now every kind's `verify-resolution`).
/// Now it answers a `primaryBackup` record set as Cloud DNS does, from the
/// health of each serving address's control: after `dns prepare` the name
/// answers home's address; a failover drains home and serves the target,
/// and the name answers the target's address, with no Cloud DNS call.
#[tokio::test]
async fn regression_a_health_check_cloud_dns_failover_resolves_on_the_in_memory_cloud() {
    let plans = vec![crate::plan::orders_gcp_health_checked()];
    let f = world(&plans);
    let clouds = f.clouds();
    let ask = || {
        clouds
            .resolver
            .resolve("gcp.example.com.", "orders.gcp.example.com.", "A")
    };
    assert_eq!(
        ask().await.unwrap(),
        ["10.0.1.1"],
        "the plain record, as seeded"
    );
    crate::steps::dns_setup::prepare(&clouds, &plans[0], None)
        .await
        .unwrap();
    let d = &plans[0].spec.cloud_dns[0];
    let set = f.cloud_record(&d.project, &d.zone, &d.name, &d.rtype);
    assert!(set.and_then(|s| s.primary_backup).is_some(), "prepared");
    assert_eq!(ask().await.unwrap(), ["10.0.1.1"], "home serves");
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let dns_calls = |f: &FakeCloud| {
        (f.state().writes.iter())
            .filter(|w| w.starts_with("changes.create"))
            .count()
    };
    let before = dns_calls(&f);
    let failover = RunOptions {
        target: TARGET.into(),
        ..super::tests::opts()
    };
    let report = e.run(&plans, &failover).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    assert_eq!(ask().await.unwrap(), ["10.0.2.2"], "the target serves");
    assert_eq!(dns_calls(&f), before, "no Cloud DNS change");
    let text = store.text(&report.run_id).unwrap();
    assert!(text.contains("orders-gcp/verify-resolution"), "{text}");
    // The RTO ends where the names resolved, said so (not a Route 53
    // change INSYNC: `regression_a_cloud_dns_runs_rto_was_said_to_end_at_a_route53_insync`).
    let rto = &report.measures[0].rto.basis;
    assert!(rto.ends_with(crate::steps::RESOLVED), "{rto}");
    // A dead target region's address fails closed: the name answers no
    // healthy backup, so Cloud DNS answers the primary.
    f.state().dead_regions.insert(TARGET.into());
    assert_eq!(ask().await.unwrap(), ["10.0.1.1"]);
}

/// The RTO of a run whose clock a Cloud DNS step stops was said to end at
/// "the last DNS change INSYNC and read back", a Route 53 change's end:
/// the measure chose its wording by matching one step kind
/// (`verify-resolution`), so a Cloud DNS change (`switch-cloud-dns`,
/// `drill-cloud-dns`) and a Cloud DNS resolution check were all said as
/// Route 53's. Each kind now says its own end (`Traits::rto_end`), and
/// the basis is the one of the step that ended last.
#[tokio::test]
async fn regression_a_cloud_dns_runs_rto_was_said_to_end_at_a_route53_insync() {
    let plans = orders_gcp();
    let f = world(&plans);
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let drill = e.run(&plans, &gcp_drill()).await.unwrap();
    assert_eq!(drill.outcome, Outcome::Succeeded, "{drill:?}");
    let rto = &drill.measures[0].rto.basis;
    assert!(rto.ends_with(crate::steps::DRILL_IN_EFFECT), "{rto}");
    assert!(rto.contains("Cloud DNS done"), "{rto}");
    let failover = RunOptions {
        target: "us-east4".into(),
        ..super::tests::opts()
    };
    let report = e.run(&plans, &failover).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let rto = &report.measures[0].rto.basis;
    assert!(rto.ends_with(crate::steps::IN_EFFECT), "{rto}");
    assert!(rto.contains("Cloud DNS done"), "{rto}");
}

/// Issue 74, attack 3, as the issue found it: a failover raised the
/// standby managed instance group after a drill raised it and died; a
/// writer of the state with no key appended one junk line to the
/// failover's journal. The failover dropped out of the cleanup owner's
/// view, and `drill sweep`, finding the group by the dead drill's journal
/// alone (a managed instance group carries no marks), lowered it in the
/// region now serving. The failover's records up to its signed head are
/// read, and the group is kept at the failover's size (and a journal that
/// does not verify at all, but may have scaled it, keeps it in doubt:
/// `cleanup::owner`).
#[tokio::test]
async fn regression_a_junk_line_on_a_failovers_journal_made_a_sweep_lower_its_group() {
    let plans = orders_gcp();
    let f = world(&plans);
    let dir = tempfile::tempdir().unwrap();
    let (mut e, mem, _) = engine(&f, dir.path());
    // Keys listed; and the failover's best-effort `lock_lost` in the dead
    // drill's journal is lost (as when the drill's lease had run out and
    // the failover took a free lock): its journal is all that says it.
    let key = crate::sign::SecretKey::generate();
    e.store = Arc::new(crate::journal::Keyed::new(
        Arc::new(super::drill_tests::NoLockLost(mem.clone())),
        crate::journal::RunKeys::new(Some(key.clone()), vec![key.public()]),
    ));
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(
            "orders-gcp/drill-raise:orders-workers".into(),
        )),
        ..gcp_drill()
    };
    let Err(EngineError::Crashed(_, _)) = e.run(&plans, &crash).await else {
        panic!("crashed after the raise");
    };
    let failover = RunOptions {
        target: TARGET.into(),
        ..super::tests::opts()
    };
    let report = e.run(&plans, &failover).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let groups = |f: &FakeCloud| {
        (production(f).into_iter())
            .filter(|p| !p.starts_with("sql"))
            .collect::<Vec<_>>()
    };
    let serving = groups(&f);
    let text = mem.text(&report.run_id).unwrap();
    mem.set_text(&report.run_id, &format!("{text}{{\"seq\":999}}\n"));
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let store = e.store.clone();
    let (found, _) = crate::cleanup::sweep::find(&f.clouds(), &plans, store.as_ref(), later).await;
    let poll = super::tests::opts().pace.poll;
    let cleaned =
        crate::cleanup::sweep::sweep(&f.clouds(), &found, &plans, store.as_ref(), poll).await;
    let mig = (cleaned.iter()).find(|c| {
        matches!(
            c.resource,
            Temp::Raised {
                kind: ResourceKind::InstanceGroup,
                ..
            }
        )
    });
    assert!(
        mig.is_none_or(|c| c.result == CleanupResult::Kept),
        "{cleaned:?}"
    );
    assert_eq!(groups(&f), serving, "the serving region kept its size");
}
