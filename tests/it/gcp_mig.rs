//! Regional managed instance groups (`[[instance_group]]`) against the
//! world's Google Cloud (`localstack/gcp_emu.py`, its Compute part
//! `gcp_emu_compute.py`), through Google's own crate: the adapter's reads,
//! writes and fence; a failover of `plans/gcp/orders-gcp.toml` to us-east4
//! that resizes the target's group and waits for its instances RUNNING
//! (the resize's operation is DONE long before), the home group untouched;
//! a group with an autoscaler raised by its minimum; a crash around the
//! step resumed with one resize sent.
//!
//! Each test seeds its own groups (and the plan's Cloud SQL pair) through
//! the emulator's admin API, and writes the plan renamed for them.

use std::path::Path;

use serde_json::json;

use crate::fixture::{Fixture, outputs, records};
use crate::world;

const PROJECT: &str = "drctl-emu";
const HOME: &str = "us-central1";
const TARGET: &str = "us-east4";
const STEP: &str = "orders-gcp/raise:orders-workers";

/// The calls the emulator saw whose path ends with `suffix`.
pub(crate) async fn calls(suffix: &str) -> usize {
    let calls = world::gcp_calls().await;
    calls
        .iter()
        .filter(|c| c["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
        .count()
}

/// The writes (PATCH) the emulator saw of autoscaler `name` (named in the
/// `autoscaler` query parameter of `regionAutoscalers.patch`).
async fn autoscaler_writes(name: &str) -> usize {
    let calls = world::gcp_calls().await;
    calls
        .iter()
        .filter(|c| c["method"] == "PATCH")
        .filter(|c| {
            c["path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/autoscalers"))
        })
        .filter(|c| c["query"]["autoscaler"] == name)
        .count()
}

/// A request id of this test world's own (Compute answers a repeated
/// request id with the operation it made the first time, across the shared
/// emulator: a fixed id would replay an earlier run's operation).
fn request_id(fx: &Fixture, n: u32) -> String {
    // The suffix's unique tail (its head is the test's fixed prefix).
    let tail = &fx.suffix.as_bytes()[fx.suffix.len().saturating_sub(6)..];
    let digits: String = tail.iter().map(|b| format!("{b:02x}")).collect();
    format!("6f1c2a5e-0000-5000-8{n:03}-{digits:0>12}")
}

pub(crate) struct Groups {
    pub(crate) home: String,
    pub(crate) target: String,
}

/// Seeds `fx`'s groups (home: 3 instances behind an autoscaler; target: 1,
/// with an autoscaler `(min, max)` when asked), Cloud SQL pair and Cloud
/// Run services and Cloud DNS zone, and writes `orders-gcp.toml` renamed
/// for them.
pub(crate) async fn seed(fx: &Fixture, target_autoscaler: Option<(u32, u32)>) -> Groups {
    let g = Groups {
        home: fx.id("orders-workers"),
        target: fx.id("orders-workers-use4"),
    };
    world::gcp_admin(
        "/emu/compute/groups",
        json!({"project": PROJECT, "region": HOME, "name": g.home, "size": 3,
               "autoscaler": {"name": format!("{}-as", g.home), "min": 3, "max": 12}}),
    )
    .await;
    let mut spec = json!({"project": PROJECT, "region": TARGET, "name": g.target, "size": 1});
    if let Some((min, max)) = target_autoscaler {
        spec["autoscaler"] = json!({"name": format!("{}-as", g.target), "min": min, "max": max});
    }
    world::gcp_admin("/emu/compute/groups", spec).await;
    let (primary, replica) = (fx.id("orders-sql"), fx.id("orders-sql-use4"));
    world::gcp_admin(
        "/emu/instances",
        json!({"project": PROJECT, "name": primary, "region": HOME}),
    )
    .await;
    world::gcp_admin(
        "/emu/instances",
        json!({"project": PROJECT, "name": replica, "region": TARGET,
               "masterInstanceName": primary, "drReplica": true, "lag": 1.0}),
    )
    .await;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
    let t = std::fs::read_to_string(src).expect("the GCP plan");
    let t = t
        .replace(
            "us-central1 = \"orders-sql\"",
            &format!("us-central1 = \"{primary}\""),
        )
        .replace(
            "us-east4 = \"orders-sql-use4\"",
            &format!("us-east4 = \"{replica}\""),
        )
        .replace(
            "us-central1 = \"orders-workers\"",
            &format!("us-central1 = \"{}\"", g.home),
        )
        .replace(
            "us-east4 = \"orders-workers-use4\"",
            &format!("us-east4 = \"{}\"", g.target),
        )
        .replace(
            "gs://drctl-evidence/",
            &format!("gs://{}/", fx.id("drctl-evidence")),
        );
    // The plan's Cloud Run services too (its failover raises them).
    let t = crate::gcp_run::renamed(&t, &crate::gcp_run::seed_api(fx).await);
    let t = crate::gcp_dns::renamed(&t, &crate::gcp_dns::seed_zone(fx).await);
    std::fs::write(fx.plans.path().join("orders-gcp.toml"), t).expect("write plan");
    g
}

async fn failover(fx: &Fixture, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "orders-gcp",
        "--to",
        TARGET,
        "--approve",
        "instance group test",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], &world::endpoints_file()).await
}

/// (target size, instances running) of `name` in `region`.
pub(crate) async fn read(region: &str, name: &str) -> (u32, usize) {
    let ig = world::instance_groups();
    let g = (ig.describe_mig(region, PROJECT, name).await)
        .expect("get")
        .unwrap_or_else(|| panic!("{name} exists"));
    let i = (ig.mig_instances(region, PROJECT, name).await).expect("listManagedInstances");
    (g.target_size, i.iter().filter(|i| i.running()).count())
}

/// The adapter through Google's crate: a missing group reads as absent,
/// a group with its autoscaler, a resize whose operation is DONE before
/// the instances run, Compute's refusal, and the fence at the wire.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_reads_resizes_and_is_fenced_through_googles_crate() {
    crate::needs_emulators!();
    let fx = Fixture::new("gmigadapt").await;
    let g = seed(&fx, None).await;
    let ig = world::instance_groups();
    assert_eq!(
        (ig.describe_mig(TARGET, PROJECT, "no-such-group").await)
            .expect("a missing group is no error"),
        None
    );
    let home = (ig.describe_mig(HOME, PROJECT, &g.home).await)
        .expect("get")
        .expect("exists");
    assert_eq!((home.target_size, home.stable), (3, true));
    let scaler = home
        .autoscaler
        .clone()
        .expect("the home group has an autoscaler");
    let a = (ig.mig_autoscaler(HOME, PROJECT, &scaler).await)
        .expect("autoscalers.get")
        .expect("exists");
    assert_eq!((a.min, a.max), (3, 12));

    let op = (ig.resize_mig(TARGET, PROJECT, &g.target, 2, &request_id(&fx, 1)))
        .await
        .expect("resize");
    let done = world::wait_for(
        &format!("the resize's operation {} to be DONE", op.name),
        world::PATIENCE,
        async || {
            let o = (ig.mig_operation(TARGET, PROJECT, &op.name).await)
                .map_err(|e| format!("operations.get: {e}"))?;
            if o.done {
                return Ok(o);
            }
            Err(format!("{o:?}"))
        },
    )
    .await;
    assert_eq!(done.error, None);
    // DONE when scheduled: the new instance does not run yet.
    let (size, running) = read(TARGET, &g.target).await;
    assert_eq!(
        (size, running),
        (2, 1),
        "the operation is DONE, the instance not RUNNING"
    );
    let i = (ig.mig_instances(TARGET, PROJECT, &g.target).await).expect("list");
    assert!(
        i.iter()
            .any(|i| i.action == "CREATING" && i.status.is_none()),
        "{i:?}"
    );

    let e = (ig.set_autoscaler_min(HOME, PROJECT, &scaler, 20, &request_id(&fx, 2)))
        .await
        .expect_err("a minimum above the maximum is refused");
    assert_eq!(e.kind, drctl::cloud::ErrorKind::Client, "{e:?}");

    let fence = drctl::cloud::wire::WireFence::new(|| Err("lease lost".to_string()));
    let (r, w) = fence
        .guard(async {
            (
                ig.describe_mig(TARGET, PROJECT, &g.target).await,
                (ig.resize_mig(TARGET, PROJECT, &g.target, 5, &request_id(&fx, 3))).await,
            )
        })
        .await;
    assert!(r.is_ok_and(|g| g.is_some()));
    assert_eq!(w.expect_err("fenced").kind, drctl::cloud::ErrorKind::Fenced);
    assert_eq!(
        calls(&format!("/instanceGroupManagers/{}/resize", g.target)).await,
        1
    );
}

/// `drctl failover --to us-east4`: the target's group is resized to 3 and
/// the step ends only with 3 instances RUNNING; the home group is not
/// written.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_resizes_the_target_group_and_waits_for_running_instances() {
    crate::needs_emulators!();
    let fx = Fixture::new("gmigfo").await;
    let g = seed(&fx, None).await;
    let runs = fx.runs();
    let o = failover(&fx, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(read(TARGET, &g.target).await, (3, 3));
    assert_eq!(read(HOME, &g.home).await, (3, 3));
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let out = outputs(&show, STEP);
    assert_eq!(
        (out["before"].as_u64(), out["after"].as_u64()),
        (Some(1), Some(3)),
        "{out:#}"
    );
    assert_eq!(out["serving"], 3, "{out:#}");
    assert_eq!(out["changed"], true);
    assert_eq!(show["report"]["outcome"], "succeeded");
    assert_eq!(
        calls(&format!("/instanceGroupManagers/{}/resize", g.target)).await,
        1
    );
    // The step read the instances after the operation was DONE.
    assert!(
        calls(&format!(
            "/instanceGroupManagers/{}/listManagedInstances",
            g.target
        ))
        .await
            >= 2
    );
    assert_eq!(
        calls(&format!("/instanceGroupManagers/{}/resize", g.home)).await,
        0
    );
    // No autoscaler of this world was written (other tests' worlds share the
    // emulator and its call log: only this world's autoscaler is counted).
    assert_eq!(
        autoscaler_writes(&format!("{}-as", g.home)).await,
        0,
        "no autoscaler was written"
    );
}

/// A target group behind an autoscaler: the failover raises the
/// autoscaler's minimum (one patch), never resizes the group.
#[tokio::test(flavor = "multi_thread")]
async fn a_group_with_an_autoscaler_is_raised_by_its_minimum() {
    crate::needs_emulators!();
    let fx = Fixture::new("gmigas").await;
    let g = seed(&fx, Some((1, 6))).await;
    let runs = fx.runs();
    let o = failover(&fx, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(read(TARGET, &g.target).await, (3, 3));
    let show = fx.show(&fx.new_run(&runs)).await;
    let out = outputs(&show, STEP);
    // The size before is the autoscaler's minimum.
    assert_eq!(out["before"], 1, "{out:#}");
    assert_eq!(
        calls(&format!("/instanceGroupManagers/{}/resize", g.target)).await,
        0
    );
    let a = (world::instance_groups())
        .mig_autoscaler(TARGET, PROJECT, &format!("{}-as", g.target))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(a.min, 3);
}

/// A crash right before and right after the step: `runs resume` finishes
/// the run with the group at its size and one resize sent.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_around_the_step_is_resumed_with_one_resize_sent() {
    crate::needs_emulators!();
    for when in ["before", "after"] {
        let fx = Fixture::new("gmigcrash").await;
        let g = seed(&fx, None).await;
        let runs = fx.runs();
        let point = format!("{when}:{STEP}");
        let o = failover(&fx, &["--inject-crash", &point]).await;
        assert_eq!(o.code, Some(1), "{point}: {}", o.all());
        assert!(o.err.contains("injected crash point"), "{}", o.all());
        let run = fx.new_run(&runs);
        let o = fx
            .drctl(&["runs", "resume", &run, "--output", "json"])
            .await;
        assert_eq!(o.code, Some(0), "{when}: {}", o.all());
        assert_eq!(read(TARGET, &g.target).await, (3, 3), "{when}");
        let show = fx.show(&run).await;
        assert_eq!(show["report"]["outcome"], "succeeded", "{when}");
        assert!(
            records(&show)
                .iter()
                .any(|r| r["event"]["type"] == "resumed")
        );
        assert_eq!(
            calls(&format!("/instanceGroupManagers/{}/resize", g.target)).await,
            1,
            "{when}: one resize"
        );
    }
}
