//! The choice (pure), and the step on the fake cloud.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::cloud::Clouds;
use crate::cloud::fake::FakeCloud;
use crate::cloud::metered::Metered;

const P: &str = "drctl-emu";
const SVC: &str = "orders-api";

fn service(min: u32) -> RunService {
    RunService {
        name: SVC.into(),
        region: "us-east4".into(),
        min_instances: min,
        max_instances: Some(100),
        generation: 1,
        observed_generation: 1,
        latest_created: "orders-api-00001-aaa".into(),
        latest_ready: "orders-api-00001-aaa".into(),
        ready_state: "CONDITION_SUCCEEDED".into(),
        ready_message: None,
        reconciling: false,
        etag: "e1".into(),
    }
}

#[test]
fn a_service_at_its_floor_and_serving_is_left_alone() {
    assert_eq!(decide(Some(&service(3)), 3), RunNext::Done);
}

#[test]
fn a_service_below_its_floor_is_patched_with_the_etag_read() {
    assert_eq!(
        decide(Some(&service(0)), 3),
        RunNext::Patch { etag: "e1".into() }
    );
    // At the floor, but its latest rollout failed: a new revision is tried.
    let mut f = service(3);
    f.ready_state = "CONDITION_FAILED".into();
    assert_eq!(decide(Some(&f), 3), RunNext::Patch { etag: "e1".into() });
}

#[test]
fn a_rollout_under_way_is_waited_for_never_patched_again() {
    let mut s = service(3);
    s.generation = 2;
    s.reconciling = true;
    s.ready_state = "CONDITION_RECONCILING".into();
    assert_eq!(decide(Some(&s), 3), RunNext::Settle);
    // Not yet observed (the generation ahead) is a rollout too.
    let mut s = service(0);
    s.generation = 2;
    assert_eq!(decide(Some(&s), 3), RunNext::Settle);
    assert!(matches!(decide(None, 3), RunNext::Refuse(_)));
}

fn plan() -> crate::plan::Plan {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
    let loaded = crate::plan::load(&[path]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.plans.into_iter().next().expect("orders-gcp")
}

fn world() -> FakeCloud {
    let f = FakeCloud::new();
    f.add_run_service(P, "us-central1", SVC, 3);
    f.add_run_service(P, "us-east4", SVC, 0);
    f
}

/// The scale-run step of a failover of orders-gcp to us-east4.
async fn run_step(clouds: &Clouds) -> Result<ScaleRunOutput, StepFailure> {
    let plan = plan();
    let g = crate::steps::graph::compile(&plan, "us-east4").unwrap();
    let step = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::ScaleRun(s) => Some(s.clone()),
            _ => None,
        })
        .expect("a scale-run step");
    assert_eq!((step.service.as_str(), step.min_instances), (SVC, 3));
    let outputs = BTreeMap::new();
    let cx = Cx {
        clouds,
        plan: &plan,
        target: "us-east4",
        run_id: "20261125T070000Z-orders-gcp-r1",
        outputs: &outputs,
        deadline: Instant::now() + Duration::from_secs(60),
        poll: (Duration::from_millis(1), Duration::from_millis(2)),
        journal: Arc::new(crate::journal::MemoryStore::new()),
        lag_window: Duration::from_secs(900),
        waiting: None,
        side: None,
        graph: &g.steps,
        rpo_readings: None,
        attempt: 1,
        drill_expires: None,
        render_report: None,
        fence: None,
        zone_batches: None,
        temps: None,
        control_read_timeout: crate::steps::dns_setup::SETUP_TIMEOUT,
    };
    let v = step.run(&cx).await?;
    Ok(ScaleRunOutput::read(&v).expect("its outputs"))
}

fn read(f: &FakeCloud, region: &str) -> RunService {
    f.state()
        .run
        .get(&(P.into(), region.into(), SVC.into()))
        .cloned()
        .expect("the service")
}

/// Raised: one patch (with the etag read), its operation followed, the new
/// revision serving at the floor; the home service untouched; run again,
/// nothing is sent.
#[tokio::test]
async fn the_target_service_is_raised_and_waited_on_until_it_serves() {
    let f = world();
    let (clouds, log) = Metered::wrap(f.clouds());
    let out = run_step(&clouds).await.expect("raised");
    assert_eq!((out.before, out.after, out.changed), (0, 3, true));
    assert_eq!(out.revision, "orders-api-00002-aaa");
    assert!(out.operation.is_some() && !out.waited_rollout);
    let s = read(&f, "us-east4");
    assert!(s.serves() && s.min_instances == 3, "{s:?}");
    assert_eq!(read(&f, "us-central1").generation, 1);
    let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
    let n = |l: &str| labels.iter().filter(|x| **x == l).count();
    assert_eq!(n("run:services.patch"), 1, "{labels:?}");
    assert!(n("run:operations.get") >= 1, "{labels:?}");

    let again = run_step(&clouds).await.expect("already at the floor");
    assert!(!again.changed && again.operation.is_none(), "{again:?}");
    assert_eq!(f.state().writes, ["services.patch orders-api"]);
}

/// A resumed run (the patch sent before a crash, the rollout still under
/// way) waits for that rollout instead of patching again.
#[tokio::test]
async fn a_rollout_found_under_way_is_waited_for_not_patched_again() {
    let f = world();
    let c = f.clouds();
    c.cloud_run
        .set_run_min_instances("us-east4", P, SVC, 3, Some("e1"))
        .await
        .expect("the first run's patch");
    let out = run_step(&c).await.expect("waited");
    assert!(out.waited_rollout && !out.changed, "{out:?}");
    assert_eq!(
        (out.after, out.revision.as_str()),
        (3, "orders-api-00002-aaa")
    );
    assert_eq!(f.state().writes, ["services.patch orders-api"]);
}

/// A failed rollout fails the step naming the revision and the Ready
/// condition's message; the old revision still serves.
#[tokio::test]
async fn a_failed_rollout_names_the_revision_and_the_message() {
    let f = world();
    f.fail_run(
        P,
        "us-east4",
        SVC,
        "The user-provided container failed to start.",
    );
    let e = run_step(&f.clouds()).await.expect_err("the rollout failed");
    let text = e.to_string();
    assert!(
        matches!(e, StepFailure::State { .. })
            && text.contains("orders-api-00002-aaa")
            && text.contains("container failed to start"),
        "{text}"
    );
    assert_eq!(read(&f, "us-east4").latest_ready, "orders-api-00001-aaa");
}

#[tokio::test]
async fn a_missing_service_is_a_state_failure_naming_it() {
    let f = FakeCloud::new();
    let e = run_step(&f.clouds()).await.expect_err("no service");
    assert!(
        e.to_string().contains("orders-api") && e.to_string().contains("us-east4"),
        "{e}"
    );
}
