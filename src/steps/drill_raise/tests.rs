//! The capacity role's contract, run against every kind the generic
//! capacity steps serve (the in-memory cloud): a failover raises the
//! target's group and waits until it serves; a drill raises the standby,
//! journals and marks its restore point before any change, and its cleanup
//! returns it exactly; a rerun is idempotent; another drill's raise is
//! left alone; a failed change is named; a sweep finds a raise by its
//! marks with the journal gone; a failover takes a drill's marks off.
//! The same promises over the emulators: `tests/it/ecs.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::*;
use crate::cloud::fake::FakeCloud;
use crate::journal::{Journal, MemoryStore, StepName};
use crate::plan::Plan;
use crate::steps::graph::Step;
use crate::steps::raise::{Raise, RaiseOutput};

const RUN: &str = "20261125T040000Z-orders-ecs-d1";
const REGION: &str = "us-east-1";
const CLUSTER: &str = "orders-ecs-use1";
const SERVICE: &str = "orders-workers";
const GROUP: &str = "orders-ecs-use1/orders-workers";
const STANDBY: u32 = 1;
const ACTIVE: u32 = 4;

fn orders() -> Plan {
    crate::plan::reference()
        .into_iter()
        .find(|p| p.name() == "orders")
        .expect("the reference orders plan")
}

/// Every kind the generic capacity steps serve: the contract runs on each.
#[test]
fn the_generic_steps_serve_every_kind_with_a_scaling_role_and_only_those() {
    let kinds: Vec<ResourceKind> = (ResourceKind::ALL.iter().copied())
        .filter(|k| k.scaling().is_some())
        .collect();
    assert_eq!(kinds, vec![ResourceKind::EcsService]);
    let plan = orders();
    let g = crate::steps::graph::compile(&plan, REGION).unwrap();
    let raises: Vec<&Raise> = (g.steps.iter())
        .filter_map(|s| match &s.kind {
            StepKind::Raise(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(raises.len(), 1);
    assert_eq!(
        (raises[0].of, raises[0].group.as_str(), raises[0].size),
        (ResourceKind::EcsService, GROUP, ACTIVE)
    );
    // Its cost is its kind's, every label in the model.
    let cost = g
        .steps
        .iter()
        .find(|s| matches!(s.kind, StepKind::Raise(_)))
        .unwrap();
    assert_eq!(cost.kind.time().waits, &["ecs:ServiceStable"]);
}

fn world() -> FakeCloud {
    let fake = FakeCloud::new();
    fake.add_ecs_service(REGION, CLUSTER, SERVICE, STANDBY);
    // Production's service, which a drill never touches.
    fake.add_ecs_service("us-west-2", "orders-ecs-usw2", SERVICE, ACTIVE);
    fake
}

fn service(fake: &FakeCloud) -> crate::cloud::EcsService {
    fake.state().ecs[&(REGION.into(), CLUSTER.into(), SERVICE.into())].clone()
}

/// Changes the standby service in the fake's world, as another actor would.
fn change_service(fake: &FakeCloud, change: impl FnOnce(&mut crate::cloud::EcsService)) {
    let mut s = fake.state();
    change(
        (s.ecs
            .get_mut(&(REGION.into(), CLUSTER.into(), SERVICE.into())))
        .unwrap(),
    );
}

fn writes(fake: &FakeCloud, op: &str) -> usize {
    (fake.state().writes.iter())
        .filter(|w| w.starts_with(op))
        .count()
}

/// The drill's journal: what the step journals goes in it, as the executor
/// appends it; `writes_then` keeps how many cloud writes the fake had seen
/// when each record was written.
struct Recording {
    journal: tokio::sync::Mutex<Journal>,
    fake: FakeCloud,
    writes_then: std::sync::Mutex<Vec<usize>>,
}

#[async_trait]
impl crate::steps::TempJournal for Recording {
    async fn journal(&self, temp: Temp) -> Result<(), String> {
        (self.writes_then.lock().unwrap()).push(self.fake.state().writes.len());
        let step = StepName::parse("orders/drill-raise:orders-workers").unwrap();
        (self.journal.lock().await)
            .append(Event::DrillResource {
                step,
                resource: temp,
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

async fn recording(store: &Arc<MemoryStore>, fake: &FakeCloud, run: &str) -> Arc<Recording> {
    let j = Journal::create(store.clone(), run).await.unwrap();
    Arc::new(Recording {
        journal: tokio::sync::Mutex::new(j),
        fake: fake.clone(),
        writes_then: Default::default(),
    })
}

fn graph(plan: &Plan, drill: bool) -> Vec<Step> {
    let mode = if drill {
        RunMode::Drill {
            depth: DrillDepth::Shadow,
        }
    } else {
        RunMode::Failover { planned: false }
    };
    crate::steps::graph::compile_mode(plan, REGION, &mode)
        .unwrap()
        .steps
}

/// Runs `kind` (a step of `steps`) as run `run` against `fake`.
async fn run(
    fake: &FakeCloud,
    store: &Arc<MemoryStore>,
    rec: Option<Arc<Recording>>,
    run: &str,
    (plan, steps, kind): (&Plan, &[Step], &StepKind),
) -> Result<Value, StepFailure> {
    let clouds = fake.clouds();
    let outputs = BTreeMap::new();
    let temps: Option<Arc<dyn crate::steps::TempJournal>> = match rec {
        Some(r) => Some(r),
        None => None,
    };
    let cx = Cx {
        clouds: &clouds,
        plan,
        target: REGION,
        run_id: run,
        outputs: &outputs,
        deadline: Instant::now() + Duration::from_secs(3600),
        poll: (Duration::from_secs(5), Duration::from_secs(30)),
        journal: store.clone(),
        lag_window: Duration::from_secs(900),
        waiting: None,
        side: None,
        graph: steps,
        rpo_readings: None,
        attempt: 1,
        drill_expires: None,
        render_report: None,
        fence: None,
        zone_batches: None,
        temps,
        control_read_timeout: crate::steps::dns_setup::SETUP_TIMEOUT,
    };
    kind.action().run(&cx).await
}

fn step_of(steps: &[Step], raise: bool) -> StepKind {
    (steps.iter())
        .find(|s| match s.kind {
            StepKind::Raise(_) => raise,
            StepKind::DrillRaise(_) => !raise,
            _ => false,
        })
        .map(|s| s.kind.clone())
        .expect("a generic capacity step")
}

async fn drill(
    fake: &FakeCloud,
    store: &Arc<MemoryStore>,
    run_id: &str,
) -> Result<Value, StepFailure> {
    let plan = orders();
    let steps = graph(&plan, true);
    let kind = step_of(&steps, false);
    let rec = recording(store, fake, run_id).await;
    run(fake, store, Some(rec), run_id, (&plan, &steps, &kind)).await
}

async fn journaled(store: &MemoryStore, run_id: &str) -> Vec<Temp> {
    let records = crate::journal::read(store, run_id).await.unwrap();
    crate::runs::drill::journaled(&records)
}

async fn restore_as(
    fake: &FakeCloud,
    temp: &Temp,
    run_id: Option<&str>,
    owner: &CapacityOwner,
) -> (CleanupResult, String) {
    let Temp::Raised {
        kind,
        region,
        group,
        restore: back,
    } = temp
    else {
        panic!("a raised group: {temp}");
    };
    restore(
        &fake.clouds(),
        (*kind, region, group),
        *back,
        (run_id, owner),
        (Duration::from_secs(5), Duration::from_secs(30)),
        Instant::now() + Duration::from_secs(3600),
    )
    .await
    .unwrap()
}

fn drill_owns() -> CapacityOwner {
    CapacityOwner::Drill("the test's drill".into())
}

/// A failover sets the desired count once and waits until the tasks run
/// (the fake starts them a read later); a second run changes nothing.
#[tokio::test(start_paused = true)]
async fn a_failover_raises_the_target_and_waits_until_it_serves_and_a_rerun_sends_nothing() {
    let fake = world();
    let store = Arc::new(MemoryStore::new());
    let plan = orders();
    let steps = graph(&plan, false);
    let kind = step_of(&steps, true);
    let out = run(&fake, &store, None, "f1", (&plan, &steps, &kind))
        .await
        .unwrap();
    let out: RaiseOutput = serde_json::from_value(out).unwrap();
    assert_eq!(
        (out.before, out.after, out.serving, out.changed),
        (STANDBY, ACTIVE, ACTIVE, true)
    );
    let s = service(&fake);
    assert_eq!((s.desired, s.running), (ACTIVE, ACTIVE));
    assert_eq!(writes(&fake, "UpdateService"), 1);
    let again = run(&fake, &store, None, "f1", (&plan, &steps, &kind))
        .await
        .unwrap();
    let again: RaiseOutput = serde_json::from_value(again).unwrap();
    assert!(!again.changed);
    assert_eq!(
        writes(&fake, "UpdateService"),
        1,
        "idempotent: nothing sent again"
    );
}

/// A failover never lowers a service running more than the plan's active
/// count (scaled out by an autoscaler or by hand): nothing is sent.
#[tokio::test(start_paused = true)]
async fn a_failover_never_lowers_a_service_above_its_active_count() {
    let fake = FakeCloud::new();
    fake.add_ecs_service(REGION, CLUSTER, SERVICE, ACTIVE + 3);
    let store = Arc::new(MemoryStore::new());
    let plan = orders();
    let steps = graph(&plan, false);
    let kind = step_of(&steps, true);
    let out = run(&fake, &store, None, "f1", (&plan, &steps, &kind))
        .await
        .unwrap();
    let out: RaiseOutput = serde_json::from_value(out).unwrap();
    assert_eq!((out.after, out.changed), (ACTIVE + 3, false));
    assert_eq!(writes(&fake, "UpdateService"), 0);
}

/// A deployment the circuit breaker failed fails the step, naming the
/// deployment and ECS's reason; nothing is retried blindly.
#[tokio::test(start_paused = true)]
async fn a_failed_deployment_fails_the_raise_naming_its_id_and_reason() {
    let fake = world();
    let key = (REGION.to_string(), CLUSTER.to_string(), SERVICE.to_string());
    (fake.state().ecs_failures).insert(
        key,
        "tasks failed to start: CannotPullContainerError".into(),
    );
    let store = Arc::new(MemoryStore::new());
    let plan = orders();
    let steps = graph(&plan, false);
    let kind = step_of(&steps, true);
    let err = run(&fake, &store, None, "f1", (&plan, &steps, &kind))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ecs-svc/fake-orders-ecs-use1-orders-workers"),
        "{text}"
    );
    assert!(text.contains("CannotPullContainerError"), "{text}");
    assert_eq!(writes(&fake, "UpdateService"), 1);
}

/// A drill journals the size it read and marks the service before it
/// changes its size; it raises the standby to the active size; its cleanup
/// returns it to exactly the size before (not the plan's standby) and
/// takes the marks off; production's service never changes.
#[tokio::test(start_paused = true)]
async fn a_drill_journals_and_marks_first_and_cleanup_returns_the_exact_size() {
    let fake = FakeCloud::new();
    fake.add_ecs_service(REGION, CLUSTER, SERVICE, 2);
    fake.add_ecs_service("us-west-2", "orders-ecs-usw2", SERVICE, ACTIVE);
    let store = Arc::new(MemoryStore::new());
    let out = drill(&fake, &store, RUN).await.unwrap();
    let out: DrillRaiseOutput = serde_json::from_value(out).unwrap();
    assert_eq!(
        (out.before, out.raised_to, out.serving),
        (2, ACTIVE, ACTIVE)
    );
    let temps = journaled(&store, RUN).await;
    assert_eq!(
        temps,
        vec![Temp::Raised {
            kind: ResourceKind::EcsService,
            region: REGION.into(),
            group: GROUP.into(),
            restore: 2,
        }]
    );
    let w = fake.state().writes.clone();
    let (tag, update) = (
        w.iter().position(|w| w.starts_with("TagResource")).unwrap(),
        w.iter()
            .position(|w| w.starts_with("UpdateService"))
            .unwrap(),
    );
    assert!(tag < update, "marked before raised: {w:?}");
    let s = service(&fake);
    assert_eq!(s.tags.get(RUN_TAG).map(String::as_str), Some(RUN));
    assert_eq!(s.tags.get(RESTORE_TAG).map(String::as_str), Some("2"));
    let (result, detail) = restore_as(&fake, &temps[0], Some(RUN), &drill_owns()).await;
    assert_eq!(result, CleanupResult::Restored, "{detail}");
    let s = service(&fake);
    assert_eq!((s.desired, s.running), (2, 2));
    assert!(
        !s.tags.keys().any(|k| k.starts_with("drctl:")),
        "{:?}",
        s.tags
    );
    let prod = &fake.state().ecs[&("us-west-2".into(), "orders-ecs-usw2".into(), SERVICE.into())];
    assert_eq!(prod.desired, ACTIVE);
    assert!(prod.tags.is_empty());
}

/// A drill's step run again in the same run (a resume) raises from its
/// journaled restore point, never from the raised size, and journals it
/// once.
#[tokio::test(start_paused = true)]
async fn a_rerun_of_the_drill_step_keeps_the_first_restore_point() {
    let fake = world();
    let store = Arc::new(MemoryStore::new());
    drill(&fake, &store, RUN).await.unwrap();
    let plan = orders();
    let steps = graph(&plan, true);
    let kind = step_of(&steps, false);
    // The same run's journal, reopened as a resume does.
    let (reopened, _) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    let rec = Arc::new(Recording {
        journal: tokio::sync::Mutex::new(reopened),
        fake: fake.clone(),
        writes_then: Default::default(),
    });
    let out = run(&fake, &store, Some(rec), RUN, (&plan, &steps, &kind))
        .await
        .unwrap();
    let out: DrillRaiseOutput = serde_json::from_value(out).unwrap();
    assert_eq!(out.before, STANDBY);
    assert_eq!(journaled(&store, RUN).await.len(), 1);
    assert_eq!(writes(&fake, "UpdateService"), 1);
}

/// A drill killed after its journal record and before anything else is
/// returned exactly (the size it read): the cleanup sends no size change.
#[tokio::test(start_paused = true)]
async fn a_crash_after_the_restore_point_is_journaled_is_restored_exactly() {
    let fake = world();
    let store = Arc::new(MemoryStore::new());
    let rec = recording(&store, &fake, RUN).await;
    let temp = Temp::Raised {
        kind: ResourceKind::EcsService,
        region: REGION.into(),
        group: GROUP.into(),
        restore: STANDBY,
    };
    crate::steps::TempJournal::journal(rec.as_ref(), temp.clone())
        .await
        .unwrap();
    let (result, detail) = restore_as(&fake, &temp, Some(RUN), &drill_owns()).await;
    assert_eq!(result, CleanupResult::Restored, "{detail}");
    assert_eq!(writes(&fake, "UpdateService"), 0);
}

/// Another drill's marks on the standby: this drill refuses, naming it,
/// before it journals or changes anything; its cleanup of a group marked
/// by another drill never touches it.
#[tokio::test(start_paused = true)]
async fn a_service_another_drill_marked_is_left_alone() {
    let fake = world();
    let other = "20261125T030000Z-orders-ecs-dead";
    change_service(&fake, |svc| {
        svc.desired = ACTIVE;
        svc.running = ACTIVE;
        svc.tags.insert(RUN_TAG.into(), other.into());
        svc.tags.insert(RESTORE_TAG.into(), STANDBY.to_string());
    });
    let store = Arc::new(MemoryStore::new());
    let err = drill(&fake, &store, RUN).await.unwrap_err().to_string();
    assert!(err.contains(other), "{err}");
    assert!(journaled(&store, RUN).await.is_empty());
    assert_eq!(
        writes(&fake, "UpdateService") + writes(&fake, "TagResource"),
        0
    );
    let temp = Temp::Raised {
        kind: ResourceKind::EcsService,
        region: REGION.into(),
        group: GROUP.into(),
        restore: STANDBY,
    };
    let (result, detail) = restore_as(&fake, &temp, Some(RUN), &drill_owns()).await;
    assert_eq!(result, CleanupResult::Failed, "{detail}");
    assert!(detail.contains(other), "{detail}");
    assert_eq!(service(&fake).desired, ACTIVE);
}

/// A failover that finds a dead drill's marks takes them off before it
/// touches the size: a later cleanup (owner: the failover) keeps the
/// failover's size, and a sweep finds nothing to lower.
#[tokio::test(start_paused = true)]
async fn a_failover_takes_a_dead_drills_marks_off_and_keeps_its_raise() {
    let fake = world();
    let store = Arc::new(MemoryStore::new());
    drill(&fake, &store, RUN).await.unwrap();
    let plan = orders();
    let steps = graph(&plan, false);
    let kind = step_of(&steps, true);
    let out = run(&fake, &store, None, "f1", (&plan, &steps, &kind))
        .await
        .unwrap();
    let out: RaiseOutput = serde_json::from_value(out).unwrap();
    assert_eq!(
        out.drill_marks_removed.len(),
        4,
        "{:?}",
        out.drill_marks_removed
    );
    let w = fake.state().writes.clone();
    assert!(w.last().unwrap().starts_with("UntagResource"), "{w:?}");
    let temp = &journaled(&store, RUN).await[0];
    let failover = CapacityOwner::Failover("failover f1 scaled it".into());
    let (result, detail) = restore_as(&fake, temp, Some(RUN), &failover).await;
    assert_eq!(result, CleanupResult::Kept, "{detail}");
    assert_eq!(service(&fake).desired, ACTIVE);
    let (found, errors) = crate::cleanup::sweep::find(
        &fake.clouds(),
        &[plan],
        store.as_ref(),
        chrono::Utc::now() + chrono::Duration::days(3),
    )
    .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        !found
            .iter()
            .any(|f| matches!(f.resource, Temp::Raised { .. })),
        "nothing marked is left: {found:?}"
    );
}

/// Regression (issue 38): a sweep found a raised managed instance group or
/// Cloud Run floor only through its drill's journal. A service raised by
/// `drill-raise` is found by its marks with every journal gone, as expired
/// once its mark says so, and returned to the size the mark holds.
#[tokio::test(start_paused = true)]
async fn regression_a_sweep_finds_a_raised_service_by_its_marks_with_the_journal_gone() {
    let fake = world();
    let store = Arc::new(MemoryStore::new());
    drill(&fake, &store, RUN).await.unwrap();
    assert_eq!(service(&fake).desired, ACTIVE);
    let empty = MemoryStore::new();
    let plans = [orders()];
    let now = chrono::Utc::now();
    let (found, errors) = crate::cleanup::sweep::find(&fake.clouds(), &plans, &empty, now).await;
    assert!(errors.is_empty(), "{errors:?}");
    let raised: Vec<_> = (found.iter())
        .filter(|f| matches!(f.resource, Temp::Raised { .. }))
        .collect();
    assert_eq!(raised.len(), 1, "{found:?}");
    assert_eq!(raised[0].run.as_deref(), Some(RUN));
    assert!(!raised[0].expired, "a day's expiry has not passed");
    let later = now + chrono::Duration::days(2);
    let (found, _) = crate::cleanup::sweep::find(&fake.clouds(), &plans, &empty, later).await;
    let f = (found.iter())
        .find(|f| matches!(f.resource, Temp::Raised { .. }))
        .unwrap();
    assert!(f.expired);
    // The sweep decides the owner with no journal: the marks say no
    // failover has touched the service since the drill.
    let poll = (Duration::from_secs(5), Duration::from_secs(30));
    let cleaned = crate::cleanup::sweep::sweep(&fake.clouds(), &found, &plans, &empty, poll).await;
    let c = (cleaned.iter())
        .find(|c| matches!(c.resource, Temp::Raised { .. }))
        .unwrap();
    assert_eq!(c.result, CleanupResult::Restored, "{cleaned:?}");
    assert_eq!(service(&fake).desired, STANDBY);
    assert!(!service(&fake).tags.keys().any(|k| k.starts_with("drctl:")));
}

/// The pure rules: a size change under way is waited on, never sent
/// again; a failed one refuses; a drill never lowers.
#[test]
fn the_decisions_are_pure() {
    use crate::plan::kinds::scaling::Change;
    use crate::steps::capacity::{SizeNext, decide_size};
    let r = |size, serving, change| Reading {
        size,
        serving,
        change,
        marks: BTreeMap::new(),
        handle: "arn".into(),
        state: "ACTIVE".into(),
    };
    assert_eq!(
        decide_size(None, 4),
        SizeNext::Refuse("it does not exist".into())
    );
    assert_eq!(
        decide_size(Some(&r(1, 1, Change::Settled)), 4),
        SizeNext::Set
    );
    assert_eq!(
        decide_size(Some(&r(4, 1, Change::Settled)), 4),
        SizeNext::Serve
    );
    assert_eq!(
        decide_size(Some(&r(4, 4, Change::Settled)), 4),
        SizeNext::Done
    );
    assert_eq!(
        decide_size(Some(&r(1, 1, Change::Rolling("d".into()))), 4),
        SizeNext::Settle
    );
    let failed = Change::Failed {
        id: "d".into(),
        reason: "why".into(),
    };
    assert!(
        matches!(decide_size(Some(&r(4, 1, failed.clone())), 4), SizeNext::Refuse(w) if w.contains("why"))
    );
    // A cleanup after a failed raise sets the size back; a size served is
    // done whatever the last rollout said.
    assert_eq!(
        decide_size(Some(&r(4, 1, failed.clone())), 1),
        SizeNext::Set
    );
    assert_eq!(decide_size(Some(&r(1, 1, failed)), 1), SizeNext::Done);
    assert_eq!(raised(2, 4), 4);
    assert_eq!(raised(6, 4), 6);
    let mut marked = r(1, 1, Change::Settled);
    assert_eq!(
        decide_raise(&marked, RUN, None, None),
        RaiseNext::Journal(1)
    );
    assert_eq!(
        decide_raise(&marked, RUN, Some(2), None),
        RaiseNext::Resume(2)
    );
    marked.marks.insert(RUN_TAG.into(), "other".into());
    assert!(
        matches!(decide_raise(&marked, RUN, None, None), RaiseNext::Refuse(w) if w.contains("other"))
    );
    marked.marks.insert(RUN_TAG.into(), RUN.into());
    assert_eq!(
        decide_raise(&marked, RUN, None, None),
        RaiseNext::Journal(1)
    );
}

/// Marks forged on the service that serves (by whoever may tag it, with
/// no drill behind them): a sweep finds them, expired, and lowers nothing:
/// marks stand in for a journal only away from where the plan's data is
/// written.
#[tokio::test(start_paused = true)]
async fn a_sweep_never_lowers_the_serving_service_on_forged_marks() {
    let fake = crate::cloud::fake::reference_world((&[1.0], &[1.0]));
    let home = (
        "us-west-2".to_string(),
        "orders-ecs-usw2".to_string(),
        SERVICE.to_string(),
    );
    {
        let mut s = fake.state();
        let svc = s.ecs.get_mut(&home).unwrap();
        svc.tags = crate::steps::drill_names::tags(
            "20261101T000000Z-orders-forged",
            "someone",
            chrono::Utc::now() - chrono::Duration::days(1),
        );
        svc.tags.insert(RESTORE_TAG.into(), "0".into());
    }
    let plans = [orders()];
    let empty = MemoryStore::new();
    let now = chrono::Utc::now();
    let (found, _) = crate::cleanup::sweep::find(&fake.clouds(), &plans, &empty, now).await;
    assert!(
        found.iter().any(|f| f.expired
            && matches!(&f.resource, Temp::Raised { region, .. } if region == "us-west-2")),
        "{found:?}"
    );
    let poll = (Duration::from_secs(5), Duration::from_secs(30));
    let cleaned = crate::cleanup::sweep::sweep(&fake.clouds(), &found, &plans, &empty, poll).await;
    let c = (cleaned.iter())
        .find(|c| matches!(c.resource, Temp::Raised { .. }))
        .unwrap();
    assert_eq!(c.result, CleanupResult::Failed, "{cleaned:?}");
    assert_eq!(
        fake.state().ecs[&home].desired,
        ACTIVE,
        "production is not lowered"
    );
    assert_eq!(writes(&fake, "UpdateService"), 0);
}

/// A cleanup that was told the group is the drill's, but whose read right
/// before the write finds the drill's marks gone and the size moved (a
/// failover took them off and raised it meanwhile): it keeps the group.
#[tokio::test(start_paused = true)]
async fn regression_a_cleanup_decided_before_a_failover_took_the_group_lowered_it() {
    let fake = world();
    let store = Arc::new(MemoryStore::new());
    drill(&fake, &store, RUN).await.unwrap();
    let temp = journaled(&store, RUN).await.remove(0);
    // The failover's raise: marks off first, then its size.
    change_service(&fake, |svc| {
        svc.tags.clear();
        svc.desired = ACTIVE + 1;
        svc.running = ACTIVE + 1;
    });
    let updates = writes(&fake, "UpdateService");
    let (result, detail) = restore_as(&fake, &temp, None, &drill_owns()).await;
    assert_eq!(result, CleanupResult::Kept, "{detail}");
    assert_eq!(service(&fake).desired, ACTIVE + 1);
    assert_eq!(writes(&fake, "UpdateService"), updates);
}

/// A dead drill that marked the standby and died before its raise: the
/// failover takes the marks off before it sets the count, in that order.
#[tokio::test(start_paused = true)]
async fn a_failover_takes_a_drills_marks_off_before_it_sets_the_count() {
    let fake = world();
    change_service(&fake, |svc| {
        svc.tags = crate::steps::drill_names::tags(RUN, "gone/pid 1", chrono::Utc::now());
        svc.tags.insert(RESTORE_TAG.into(), STANDBY.to_string());
    });
    let store = Arc::new(MemoryStore::new());
    let plan = orders();
    let steps = graph(&plan, false);
    let kind = step_of(&steps, true);
    run(&fake, &store, None, "f1", (&plan, &steps, &kind))
        .await
        .unwrap();
    let w = fake.state().writes.clone();
    let untag = w
        .iter()
        .position(|w| w.starts_with("UntagResource"))
        .unwrap();
    let update = w
        .iter()
        .position(|w| w.starts_with("UpdateService"))
        .unwrap();
    assert!(untag < update, "marks off first: {w:?}");
    assert_eq!(service(&fake).desired, ACTIVE);
}
