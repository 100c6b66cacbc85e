//! Drills never fight a failover for capacity, against the in-memory cloud
//! (the emulator tests in `tests/it/drill.rs` run the same through the
//! CLI): a preempted drill decides from the plan's lock, not from the
//! taker's best-effort `lock_lost` record, that the group it raised is the
//! failover's; a sweep lowers a group only on its drill's journal, never
//! after a failover scaled it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::tests::{Recorder, drill_opts, engine, opts, payments, world};
use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::{Capacity, ObjectUrl};
use crate::journal::store::MemoryStore;
use crate::journal::{Cleaned, CleanupResult, JournalError, JournalStore, Temp};
use crate::state::LockStore;

/// Journals in memory whose appends of a `lock_lost` record fail: the
/// taker's best-effort write into the displaced drill's journal is lost.
pub(super) struct NoLockLost(pub(super) Arc<MemoryStore>);

#[async_trait]
impl JournalStore for NoLockLost {
    async fn create(&self, run_id: &str) -> Result<(), JournalError> {
        self.0.create(run_id).await
    }
    async fn append(&self, run_id: &str, seq: u64, line: &str) -> Result<(), JournalError> {
        if line.contains("\"type\":\"lock_lost\"") {
            return Err(JournalError::Io {
                action: "append to",
                path: run_id.into(),
                source: std::io::Error::other("the store refused the write"),
            });
        }
        self.0.append(run_id, seq, line).await
    }
    async fn read(&self, run_id: &str) -> Result<String, JournalError> {
        self.0.read(run_id).await
    }
    async fn list(&self) -> Result<Vec<String>, JournalError> {
        self.0.list().await
    }
    async fn write_head(&self, run_id: &str, head: &str) -> Result<(), JournalError> {
        self.0.write_head(run_id, head).await
    }
    async fn read_head(&self, run_id: &str) -> Result<Option<String>, JournalError> {
        self.0.read_head(run_id).await
    }
    async fn truncate_torn_tail(&self, run_id: &str, keep: u64) -> Result<(), JournalError> {
        self.0.truncate_torn_tail(run_id, keep).await
    }
    async fn put_late(&self, run_id: &str, id: &str, body: &str) -> Result<(), JournalError> {
        self.0.put_late(run_id, id, body).await
    }
    async fn read_late(&self, run_id: &str) -> Result<Vec<(String, String)>, JournalError> {
        self.0.read_late(run_id).await
    }
}

/// Group `key` in the fake's role model.
fn scaled(f: &FakeCloud, key: &(&'static str, String, String)) -> crate::cloud::fake::FakeGroup {
    f.state().scaled[key].clone()
}

/// The standby's Auto Scaling group, as the fake's role model keys it.
fn standby_group() -> (&'static str, String, String) {
    (
        "compute",
        "us-east-1".to_string(),
        "payments-api-use1".to_string(),
    )
}

/// Whether the standby group carries a drill's tags (it was raised).
fn raised_by_drill(f: &FakeCloud) -> bool {
    scaled(f, &standby_group())
        .marks
        .contains_key(crate::steps::drill_names::RUN_TAG)
}

/// A drill preempted by a failover whose `lock_lost` record never reaches
/// the drill's journal, with the failover's removal of the drill's tags
/// held until after the drill's cleanup: the drill must leave the group at
/// the failover's capacity. `locks` makes the plan locks on the fake.
async fn preempted_without_lock_lost(
    locks: impl Fn(&FakeCloud, &std::path::Path) -> Arc<dyn LockStore>,
) {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let memory = Arc::new(MemoryStore::new());
    // The failover's scale step taking the drill's tags off is held for
    // two minutes before it is sent: the drill's cleanup runs meanwhile,
    // while the group still carries its tags.
    let (wait, fail, once) = (Duration::from_secs(120), None, true);
    f.hold(
        "autoscaling:DeleteTags",
        crate::cloud::fake::Held { wait, fail, once },
    );
    let e = Engine {
        clouds: f.clouds(),
        store: Arc::new(NoLockLost(memory.clone())),
        locks: locks(&f, dir.path()),
        reporter: Arc::new(Recorder::default()),
        ..e
    };
    // Waits for a lag datapoint that never comes: long enough to be preempted.
    let drill_opts = RunOptions {
        step_timeout: Some(Duration::from_secs(20)),
        ..drill_opts()
    };
    let plans = payments();
    let drill = tokio::time::timeout(Duration::from_secs(600), e.run(&plans, &drill_opts));
    let failover = async {
        // Once the drill has raised the group, fail over for real.
        for _ in 0..5_000 {
            if raised_by_drill(&f) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(raised_by_drill(&f), "the drill raised the group");
        e.run(&plans, &opts()).await
    };
    let (drill, failover) = tokio::join!(drill, failover);
    let failover = failover.unwrap();
    assert_eq!(failover.outcome, Outcome::Succeeded, "{failover:?}");
    let drill = drill.expect("the drill stops").unwrap();
    let d = drill.drill.as_ref().unwrap();
    assert!(
        d.interrupted
            .as_deref()
            .is_some_and(|w| w.contains("preempted")),
        "{d:?}"
    );
    let text = memory.text(&drill.run_id).unwrap();
    assert!(
        !text.contains("\"lock_lost\""),
        "the taker's record was lost: {text}"
    );
    let capacity = d
        .cleanup
        .resources
        .iter()
        .find(|c| matches!(c.resource, Temp::Raised { .. }))
        .expect("the capacity was cleaned up");
    assert_eq!(capacity.result, CleanupResult::Kept, "{capacity:?}");
    assert!(capacity.detail.contains(&failover.run_id), "{capacity:?}");
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    let s = f.state();
    let g = &s.scaled[&standby_group()];
    assert_eq!(
        g.bounds().desired,
        4,
        "the failover's capacity stays: {g:?}"
    );
    assert!(
        !g.marks.keys().any(|k| k.starts_with("drctl:drill")),
        "{g:?}"
    );
}

/// Regression: a preempted drill decided from the failover's best-effort
/// `lock_lost` record alone; when that record was lost, its cleanup set
/// the group the failover owned back to its pre-drill size (the failover,
/// finding it already raised, did not set it again). Local lock files.
#[tokio::test(start_paused = true)]
async fn regression_preempted_drill_cleanup_lowered_the_failovers_group() {
    preempted_without_lock_lost(|_, dir| {
        Arc::new(crate::state::local::LocalLocks::new(dir.to_path_buf()))
    })
    .await;
}

/// The same on shared state: the lease records who displaced the drill.
#[tokio::test(start_paused = true)]
async fn regression_preempted_drill_cleanup_lowered_the_failovers_group_on_leases() {
    preempted_without_lock_lost(|f, _| {
        f.state().buckets.push("s3://state".into());
        Arc::new(
            crate::state::lease::LeaseLocks::new(
                Arc::new(f.clone()),
                "us-east-1",
                ObjectUrl::parse("s3://state/team").unwrap(),
                crate::state::LeaseTimes::default(),
            )
            .with_clock(Arc::new(crate::state::clock::TokioClock::default())),
        )
    })
    .await;
}

/// Regression: a failover that scaled a group a dead drill had raised, but
/// could not remove the drill's tags, left them for `drctl drill sweep`,
/// which set the group back to its pre-drill size. The sweep reads the
/// journals: a failover scaled it after the drill started, so the tags are
/// stale and come off, and the capacity stays. Without the drill's journal
/// and before any failover, its marks return it.
#[tokio::test]
async fn regression_a_sweep_set_a_failovers_group_back_to_its_pre_drill_size() {
    let f = world();
    let key = standby_group();
    let before = f.state().scaled[&key].bounds();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let plans = payments();
    // A drill that dies right after raising the group.
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After(
            "payments/drill-raise:payments-api".into(),
        )),
        ..drill_opts()
    };
    let crashed = e.run(&plans, &crash).await;
    assert!(
        matches!(crashed, Err(EngineError::Crashed(..))),
        "{crashed:?}"
    );
    let tags = f.state().scaled[&key].marks.clone();
    let drill_run = tags[crate::steps::drill_names::RUN_TAG].clone();
    let drill_journal = store.text(&drill_run).unwrap();
    // Expired (as a sweep --all would see it), nothing else touched yet.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let sweep = async |journals: &dyn JournalStore| {
        let (found, errors) =
            crate::cleanup::sweep::find(&f.clouds(), &plans, journals, later).await;
        assert!(errors.is_empty(), "{errors:?}");
        let groups: Vec<_> = found
            .into_iter()
            .filter(|x| matches!(x.resource, Temp::Raised { .. }))
            .collect();
        crate::cleanup::sweep::sweep(&f.clouds(), &groups, &plans, journals, opts().pace.poll).await
    };
    // No journal of that drill (another state): the drill's marks stand
    // in for it (no failover took them off, and the plan's data is not
    // written in the group's region): returned to the size they hold.
    let raised = f.state().scaled[&key].bounds();
    assert_ne!(raised, before);
    let cleaned = sweep(&MemoryStore::new()).await;
    assert_eq!(cleaned.len(), 1, "{cleaned:?}");
    assert_eq!(cleaned[0].result, CleanupResult::Restored, "{cleaned:?}");
    assert_eq!(f.state().scaled[&key].bounds(), before);
    // The drill's raise and marks again, as the crash left them.
    {
        let mut s = f.state();
        let g = s.scaled.get_mut(&key).unwrap();
        (g.size, g.marks) = (crate::cloud::Size::Bounds(raised), tags.clone());
        (g.serving, g.starting) = (raised.desired, 0);
    }
    // A failover takes the plan (preempting the dead drill) and scales the
    // group; its removal of the drill's tags is then undone, as when it
    // could not remove them.
    let failover = e.run(&plans, &opts()).await.unwrap();
    assert_eq!(failover.outcome, Outcome::Succeeded, "{failover:?}");
    assert!(
        !raised_by_drill(&f),
        "the failover removed the drill's tags"
    );
    f.state().scaled.get_mut(&key).unwrap().marks = tags.clone();
    let cleaned = sweep(store.as_ref()).await;
    assert_eq!(cleaned.len(), 1, "{cleaned:?}");
    assert_eq!(cleaned[0].result, CleanupResult::Kept, "{cleaned:?}");
    assert!(cleaned[0].detail.contains(&failover.run_id), "{cleaned:?}");
    assert!(cleaned[0].detail.contains("stale"), "{cleaned:?}");
    let g = f.state().scaled[&key].clone();
    assert_eq!(g.bounds(), raised, "not lowered: {g:?}");
    assert!(
        !g.marks.keys().any(|k| k.starts_with("drctl:drill")),
        "{g:?}"
    );

    // Control: the same drill's tags with its journal as the drill left
    // it and no failover since are the drill's: lowered.
    let only_drill = MemoryStore::new();
    only_drill.set_text(&drill_run, &drill_journal);
    f.state().scaled.get_mut(&key).unwrap().marks = tags;
    let cleaned = sweep(&only_drill).await;
    assert_eq!(cleaned[0].result, CleanupResult::Restored, "{cleaned:?}");
    assert_eq!(f.state().scaled[&key].bounds(), before);
}

/// The reference `orders` plan, its node groups seeded in the fake world:
/// the home region's at its active size, the standbys' at theirs. The rest
/// of what the plan names is the reference world's (`world()`): the
/// `orders-global` Aurora global cluster written in us-west-2, its
/// secondaries' lag, and the `orders-db.example.com.` record that follows
/// the writer.
pub(super) fn orders(f: &FakeCloud) -> Vec<Plan> {
    let plans: Vec<Plan> = crate::plan::reference()
        .into_iter()
        .filter(|p| p.name() == "orders")
        .collect();
    let p = &plans[0];
    assert!(
        f.state().globals.contains_key("orders-global"),
        "the world holds the plan's global cluster"
    );
    for ng in &p.spec.node_group {
        for region in p.regions() {
            let (cluster, group) = ng.in_region(region).expect("cluster/nodegroup");
            let size = if region == p.home() {
                ng.active
            } else {
                ng.standby
            };
            f.add_node_group(region, cluster, group, size.into());
        }
    }
    for svc in &p.spec.ecs_service {
        for region in p.regions() {
            let (cluster, service) = svc.in_region(region).expect("cluster/service");
            let tasks = if region == p.home() {
                svc.active
            } else {
                svc.standby
            };
            f.add_ecs_service(region, cluster, service, tasks);
        }
    }
    plans
}

/// The cleanups of raised ECS services among `cleaned`, and how many
/// others there are.
fn split_services(cleaned: &[Cleaned]) -> (Vec<&Cleaned>, usize) {
    let ecs: Vec<&Cleaned> = (cleaned.iter())
        .filter(|c| {
            matches!(
                c.resource,
                Temp::Raised {
                    kind: crate::plan::spec::ResourceKind::EcsService,
                    ..
                }
            )
        })
        .collect();
    let rest = cleaned.len() - ecs.len();
    (ecs, rest)
}

/// Each region's node group size.
fn node_sizes(f: &FakeCloud) -> Vec<(String, Capacity)> {
    (f.state().scaled.iter())
        .filter(|((kind, _, _), _)| *kind == "node_group")
        .map(|((_, region, _), g)| (region.clone(), bounds(g.size)))
        .collect()
}

/// A node group's three bounds.
fn bounds(size: crate::cloud::Size) -> Capacity {
    let crate::cloud::Size::Bounds(c) = size else {
        panic!("a node group has three bounds: {size}")
    };
    c
}

/// The drill copies (of the orders global cluster's members, and their
/// writer instances) still in the world, as `region/id`.
fn drill_copies(f: &FakeCloud) -> Vec<String> {
    let s = f.state();
    (s.clusters.keys().chain(s.databases.keys()))
        .filter(|(_, id)| id.starts_with("drill-"))
        .map(|(r, id)| format!("{r}/{id}"))
        .collect()
}

/// The Aurora copy drill `run` makes of the standby's member.
fn copy_of(run: &str) -> String {
    crate::steps::drill_names::temp_cluster_id(run, "orders-use1")
}

/// What a sweep found, by kind: `cluster ID` for a drill copy,
/// `node_capacity` for a node group's restore point.
fn kinds(found: &[crate::cleanup::sweep::Found]) -> Vec<String> {
    (found.iter())
        .map(|x| match &x.resource {
            Temp::Copy { address, .. } => format!("cluster {address}"),
            Temp::Raised {
                kind: crate::plan::spec::ResourceKind::NodeGroup,
                ..
            } => "node_capacity".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// The one cleanup record of the node group's restore point.
fn node_cleanup(cleaned: &[crate::journal::Cleaned]) -> &crate::journal::Cleaned {
    let mut nodes = (cleaned.iter()).filter(|c| is_nodes(&c.resource));
    let one = nodes.next().expect("the node group's cleanup record");
    assert!(nodes.next().is_none(), "{cleaned:?}");
    one
}

/// Whether `t` is the restore point of a node group.
fn is_nodes(t: &Temp) -> bool {
    matches!(
        t,
        Temp::Raised {
            kind: crate::plan::spec::ResourceKind::NodeGroup,
            ..
        }
    )
}

const ORDERS_STANDBY: (&str, &str, &str) = ("us-east-1", "orders-eks-use1", "orders-nodes-use1");

fn orders_standby(f: &FakeCloud) -> Capacity {
    let (r, c, g) = ORDERS_STANDBY;
    bounds(f.state().scaled[&("node_group", r.to_string(), format!("{c}/{g}"))].size)
}

/// A shadow drill of a plan with a node group raises the standby's node
/// group to the active size (its size before journaled before the update),
/// its cleanup returns it to exactly that size, production's node group is
/// never written, and the verdict no longer says the node group was not
/// rehearsed.
#[tokio::test]
async fn a_node_group_drill_raises_the_standby_and_its_cleanup_returns_it() {
    let f = world();
    let plans = orders(&f);
    let before = node_sizes(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let report = e.run(&plans, &drill_opts()).await.unwrap();
    let d = report.drill.as_ref().expect("a drill summary");
    assert!(d.cleanup.complete, "{:?}", d.cleanup);
    let verdict = d.verdicts[0].verdict.to_string();
    assert!(!verdict.contains("not rehearse"), "{verdict}");
    assert_eq!(node_sizes(&f), before);
    let text = store.text(&report.run_id).unwrap();
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
    let started = at("\"type\":\"step_started\",\"step\":\"orders/drill-raise:orders-nodes\"");
    let point = at("\"type\":\"raised\",\"kind\":\"nodegroup\"");
    let ended = at("\"type\":\"step_succeeded\",\"step\":\"orders/drill-raise:orders-nodes\"");
    assert!(started < point && point < ended, "{text}");
    let records = crate::journal::read(store.as_ref(), &report.run_id)
        .await
        .unwrap();
    let out = records
        .iter()
        .find_map(|r| match &r.event {
            crate::journal::event::Event::StepSucceeded { step, outputs }
                if *step == "orders/drill-raise:orders-nodes" =>
            {
                <crate::steps::drill_raise::DrillRaiseOutput as crate::steps::StepOutput>::read(
                    outputs,
                )
            }
            _ => None,
        })
        .expect("the drill-raise step's outputs");
    let active = Capacity {
        min: 2,
        desired: 3,
        max: 6,
    };
    assert_eq!(out.raised_to, crate::cloud::Size::Bounds(active));
    assert_eq!(out.before, crate::cloud::Size::Bounds(orders_standby(&f)));
    let cleaned = &d.cleanup.resources;
    assert!(
        cleaned
            .iter()
            .any(|c| is_nodes(&c.resource) && c.result == CleanupResult::Restored),
        "{cleaned:?}"
    );
    let writes = f.state().writes.clone();
    let scaled: Vec<&String> = (writes.iter())
        .filter(|w| w.starts_with("eks:UpdateNodegroupConfig"))
        .collect();
    assert_eq!(
        scaled,
        vec![
            "eks:UpdateNodegroupConfig orders-eks-use1/orders-nodes-use1",
            "eks:UpdateNodegroupConfig orders-eks-use1/orders-nodes-use1"
        ],
        "raised, then returned; production's never written"
    );
    // Besides the standby's node group, only the drill's Aurora copy, its
    // record and the evidence were written: never a member of the global
    // cluster, never the home node group; the copy is gone.
    assert!(
        (writes.iter()).all(|w| w.contains(" drill-")
            || w.starts_with("PutObject ")
            || w == "ChangeResourceRecordSets example.com."
            || w.ends_with(" orders-eks-use1/orders-nodes-use1")
            || w.ends_with(" orders-ecs-use1/orders-workers")),
        "{writes:?}"
    );
    assert!(drill_copies(&f).is_empty(), "{:?}", drill_copies(&f));
}

/// A node group drill that dies right after raising the standby: `runs
/// resume` cleans up from the journal's restore point (the node group back
/// at its size, the verdict FAIL); a sweep with the drill's journal (the
/// shared state, from another machine) finds it and returns it too; one
/// without the journal finds it by its marks.
#[tokio::test]
async fn a_crashed_node_group_drill_is_returned_by_a_resume_or_a_sweep_with_its_journal() {
    for how in ["resume", "sweep"] {
        let f = world();
        let plans = orders(&f);
        let before = node_sizes(&f);
        let dir = tempfile::tempdir().unwrap();
        let (e, store, _) = engine(&f, dir.path());
        let crash = RunOptions {
            inject_crash: Some(CrashPoint::After("orders/drill-raise:orders-nodes".into())),
            ..drill_opts()
        };
        let crashed = e.run(&plans, &crash).await;
        let Err(EngineError::Crashed(_, run)) = crashed else {
            panic!("{crashed:?}");
        };
        assert_eq!(orders_standby(&f).desired, 3, "{how}: raised");
        if how == "resume" {
            let report = e.resume(&run, &plans, Some(drill_opts())).await.unwrap();
            let d = report.drill.as_ref().unwrap();
            assert!(d.cleanup.complete, "{:?}", d.cleanup);
            assert!(!d.verdicts[0].verdict.passed());
        } else {
            let later = chrono::Utc::now() + chrono::Duration::days(1);
            // The drill had cloned its Aurora copy before it died (the
            // copy is found by its tags, journal or not).
            let copy = copy_of(&run);
            assert!(
                drill_copies(&f).contains(&format!("us-east-1/{copy}")),
                "{:?}",
                drill_copies(&f)
            );
            let (found, errors) =
                crate::cleanup::sweep::find(&f.clouds(), &plans, &MemoryStore::new(), later).await;
            assert!(errors.is_empty(), "{errors:?}");
            // The node group `drill-raise` raised is found by its marks
            // (`steps::drill_raise`), journal or not; so is the ECS
            // service, when the drill got that far, left out here.
            let not_marked = |found: &[crate::cleanup::sweep::Found]| {
                let mut k: Vec<String> = (kinds(found).into_iter())
                    .filter(|k| !k.starts_with("Raised { kind: EcsService"))
                    .collect();
                k.sort();
                k
            };
            assert_eq!(
                not_marked(&found),
                [format!("cluster {copy}"), "node_capacity".to_string()],
                "without the journal, the node group by its marks"
            );
            let (found, errors) =
                crate::cleanup::sweep::find(&f.clouds(), &plans, store.as_ref(), later).await;
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(
                not_marked(&found),
                [format!("cluster {copy}"), "node_capacity".to_string()],
                "{found:?}"
            );
            assert!(
                (found.iter()).all(|x| x.run.as_deref() == Some(run.as_str()) && x.expired),
                "{found:?}"
            );
            let cleaned = crate::cleanup::sweep::sweep(
                &f.clouds(),
                &found,
                &plans,
                store.as_ref(),
                opts().pace.poll,
            )
            .await;
            // The ECS service raised beside the node group, when the drill
            // got that far, is returned too (`steps::drill_raise`).
            let (ecs, rest) = split_services(&cleaned);
            assert_eq!(rest, 2, "{cleaned:?}");
            assert!(
                ecs.iter().all(|c| c.result == CleanupResult::Restored),
                "{cleaned:?}"
            );
            let nodes = node_cleanup(&cleaned);
            assert_eq!(nodes.result, CleanupResult::Restored, "{cleaned:?}");
            assert!(
                (cleaned.iter()).any(|c| matches!(c.resource, Temp::Copy { .. })
                    && c.result == CleanupResult::Removed),
                "{cleaned:?}"
            );
        }
        assert_eq!(node_sizes(&f), before, "{how}");
        assert!(drill_copies(&f).is_empty(), "{how}: {:?}", drill_copies(&f));
    }
}

/// A failover that scaled the standby node group after a drill raised it
/// and died owns it: a sweep with the drill's journal leaves it at the
/// failover's size.
#[tokio::test]
async fn a_sweep_leaves_a_node_group_a_failover_scaled_after_the_drill() {
    let f = world();
    let plans = orders(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After("orders/drill-raise:orders-nodes".into())),
        ..drill_opts()
    };
    assert!(e.run(&plans, &crash).await.is_err());
    // A failover takes the plan (preempting the dead drill) and scales
    // the node group, already at its size.
    let report = e.run(&plans, &opts()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:?}");
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let (found, _) = crate::cleanup::sweep::find(&f.clouds(), &plans, store.as_ref(), later).await;
    let cleaned = crate::cleanup::sweep::sweep(
        &f.clouds(),
        &found,
        &plans,
        store.as_ref(),
        opts().pace.poll,
    )
    .await;
    // The node group is the failover's, kept (and so is the ECS service,
    // when the drill raised it before it died); the drill's Aurora copy
    // (cloned before it died) is removed.
    let (ecs, rest) = split_services(&cleaned);
    assert_eq!(rest, 2, "{cleaned:?}");
    assert!(
        ecs.iter().all(|c| c.result == CleanupResult::Kept),
        "{cleaned:?}"
    );
    assert_eq!(
        node_cleanup(&cleaned).result,
        CleanupResult::Kept,
        "{cleaned:?}"
    );
    assert!(
        (cleaned.iter())
            .any(|c| matches!(c.resource, Temp::Copy { .. }) && c.result == CleanupResult::Removed),
        "{cleaned:?}"
    );
    assert!(drill_copies(&f).is_empty(), "{:?}", drill_copies(&f));
    assert_eq!(orders_standby(&f).desired, 3);
}

/// A drill whose inventory read does not end within its budget goes on
/// without one, and says so (paused time: the budget passes at once).
#[tokio::test(start_paused = true)]
async fn a_drill_whose_inventory_does_not_read_goes_on_without_one() {
    struct Never;
    #[async_trait]
    impl InventoryReader for Never {
        async fn inventories(
            &self,
            _: &crate::cloud::Clouds,
            _: &[Plan],
        ) -> BTreeMap<String, BTreeMap<String, String>> {
            std::future::pending().await
        }
    }
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, rec) = engine(&f, dir.path());
    let e = Engine {
        inventory: Some(Arc::new(Never)),
        ..e
    };
    let o = RunOptions {
        step_timeout: Some(Duration::from_millis(300)),
        ..drill_opts()
    };
    let report = e.run(&payments(), &o).await.unwrap();
    assert!(report.drill.as_ref().unwrap().cleanup.complete);
    let id = store.list().await.unwrap().pop().unwrap();
    assert!(!store.read(&id).await.unwrap().contains("\"inventory\""));
    let notes = rec.notes();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("cannot make them verified")),
        "{notes:?}"
    );
}
