//! Cloud Run (`[[cloud_run]]`) against the world's Google Cloud
//! (`localstack/gcp_emu.py`, its Cloud Run part `gcp_emu_run.py`),
//! through Google's own crate (`google-cloud-run-v2`): the adapter's read,
//! patch and operation; a failover of `plans/gcp/orders-gcp.toml` to
//! us-east4 raising the service's minimum instances until its revision
//! serves (us-central1's untouched); a crash around the step resumed with
//! one patch sent.
//!
//! Each test seeds its own services (`orders-api-SUFFIX` in us-central1 and
//! in us-east4) through the emulator's admin API; a failover's also the
//! plan's Cloud SQL pair (`crate::gcp_sql::seed`).

use serde_json::json;

use crate::fixture::{Fixture, outputs, records};
use crate::proxy::Match;
use crate::world;

const PROJECT: &str = "drctl-emu";
const HOME: &str = "us-central1";
const TARGET: &str = "us-east4";
const STEP: &str = "orders-gcp/scale-run:orders-api";

/// The emulator's record of the calls made with `method` on service `name`
/// in `region`.
async fn calls(method: &str, region: &str, name: &str) -> usize {
    let calls = world::gcp_calls().await;
    calls
        .iter()
        .filter(|c| {
            c["method"] == method
                && c["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/locations/{region}/services/{name}")))
        })
        .count()
}

/// Seeds the plan's Cloud Run services for `fx` (`orders-api-SUFFIX` in
/// us-central1 at its active 3 min instances, in us-east4 at 0) and
/// returns their name.
pub(crate) async fn seed_api(fx: &Fixture) -> String {
    let name = fx.id("orders-api");
    seed_service(HOME, &name, 3).await;
    seed_service(TARGET, &name, 0).await;
    name
}

/// The GCP plan's text with its Cloud Run service renamed to `name`.
pub(crate) fn renamed(plan: &str, name: &str) -> String {
    plan.replace(
        "{ us-central1 = \"orders-api\", us-east4 = \"orders-api\" }",
        &format!("{{ us-central1 = \"{name}\", us-east4 = \"{name}\" }}"),
    )
}

/// Seeds service `name` in `region` at `min` minimum instances.
async fn seed_service(region: &str, name: &str, min: u32) {
    world::gcp_admin(
        "/emu/run/services",
        json!({"project": PROJECT, "location": region, "name": name,
               "minInstanceCount": min, "maxInstanceCount": 20}),
    )
    .await;
}

/// The adapter through Google's crate: an unknown service reads as
/// absent; a seeded one serves; a patch of its minimum instances (with the
/// etag read) answers an operation followed until done, and the service
/// then serves its new revision at the new minimum; a stale etag is
/// refused as Cloud Run words it.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_patches_min_instances_and_follows_the_rollout() {
    crate::needs_emulators!();
    let fx = Fixture::new("grunadapt").await;
    let name = fx.id("orders-api-use4");
    seed_service(TARGET, &name, 0).await;
    let run = world::clouds().await.cloud_run;
    assert_eq!(
        run.describe_run(HOME, PROJECT, "no-such-service")
            .await
            .expect("a missing service is no error"),
        None
    );
    let before = (run.describe_run(TARGET, PROJECT, &name).await)
        .expect("services.get")
        .expect("exists");
    assert_eq!(
        (before.name.as_str(), before.region.as_str()),
        (name.as_str(), TARGET)
    );
    assert_eq!((before.min_instances, before.max_instances), (0, Some(20)));
    assert!(before.serves(), "{before:?}");

    let op = (run
        .set_run_min_instances(TARGET, PROJECT, &name, 3, Some(&before.etag))
        .await)
        .expect("services.patch");
    assert!(!op.done, "{op:?}");
    assert!(op.name.starts_with(&format!(
        "projects/{PROJECT}/locations/{TARGET}/operations/"
    )));
    let during = (run.describe_run(TARGET, PROJECT, &name).await)
        .expect("get")
        .expect("exists");
    assert!(during.reconciling && !during.serves(), "{during:?}");
    assert_eq!(during.min_instances, 3);

    let done = world::wait_for(
        &format!("the rollout's operation {} to be done", op.name),
        world::PATIENCE,
        async || {
            let o = (run.run_operation(TARGET, &op.name).await)
                .map_err(|e| format!("operations.get: {e}"))?;
            if o.done {
                return Ok(o);
            }
            Err(format!("{o:?}"))
        },
    )
    .await;
    assert_eq!(done.error, None, "{done:?}");
    let after = (run.describe_run(TARGET, PROJECT, &name).await)
        .expect("get")
        .expect("exists");
    assert!(after.serves(), "{after:?}");
    assert_eq!(after.min_instances, 3);
    assert_ne!(after.latest_ready, before.latest_ready);
    assert!(after.generation > before.generation);

    let e = run
        .set_run_min_instances(TARGET, PROJECT, &name, 4, Some(&before.etag))
        .await
        .expect_err("a stale etag is refused");
    assert_eq!(e.code.as_deref(), Some("ABORTED"), "{e:?}");
    assert_eq!(calls("PATCH", TARGET, &name).await, 2);
}

async fn read(region: &str, name: &str) -> drctl::cloud::RunService {
    (world::clouds().await.cloud_run)
        .describe_run(region, PROJECT, name)
        .await
        .expect("services.get")
        .unwrap_or_else(|| panic!("{name} exists in {region}"))
}

async fn failover(fx: &Fixture, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "orders-gcp",
        "--to",
        TARGET,
        "--approve",
        "cloud run test",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], &world::endpoints_file()).await
}

/// `drctl failover --to us-east4`: the us-east4 service's minimum
/// instances are raised to 3 with one patch, the step waits until the new
/// revision serves; us-central1's service is untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_raises_the_target_service_and_waits_until_it_serves() {
    crate::needs_emulators!();
    let fx = Fixture::new("grunfo").await;
    crate::gcp_sql::seed(&fx, 1.0).await;
    let name = fx.id("orders-api");
    let home_before = read(HOME, &name).await;
    // `status` reads the standby service as a capacity: cold (0 min
    // instances) but able to reach the floor (max 20), so ready.
    let st = fx.drctl(&["status", "--plan", "orders-gcp"]).await;
    assert!(
        st.out.contains(&format!(
            "cloud run {name} 0/0/20 (min/desired/max), ACTIVE"
        )) && st.out.contains("[standby]: ready"),
        "{}",
        st.all()
    );
    let runs = fx.runs();
    let o = failover(&fx, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let s = read(TARGET, &name).await;
    assert!(s.serves() && s.min_instances == 3, "{s:?}");
    assert_eq!(s.generation, 2, "{s:?}");
    let show = fx.show(&fx.new_run(&runs)).await;
    assert_eq!(show["report"]["outcome"], "succeeded");
    let out = outputs(&show, STEP);
    assert_eq!(
        (out["before"].as_u64(), out["after"].as_u64()),
        (Some(0), Some(3)),
        "{out:#}"
    );
    assert_eq!(out["changed"], true, "{out:#}");
    assert_eq!(out["revision"], s.latest_ready.as_str(), "{out:#}");
    assert_eq!(calls("PATCH", TARGET, &name).await, 1);
    assert_eq!(calls("PATCH", HOME, &name).await, 0);
    assert_eq!(read(HOME, &name).await, home_before);
}

/// A crash before and after the step (`--inject-crash`), and a kill -9
/// with its patch in flight: `runs resume` finishes the run with the
/// service serving at 3 min instances and `services.patch` sent once (the
/// resumed step finds the rollout under way on the service and waits on
/// it).
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_around_the_step_is_resumed_with_one_patch_sent() {
    crate::needs_emulators!();
    for when in ["before", "after", "kill"] {
        let fx = Fixture::new("gruncrash").await;
        crate::gcp_sql::seed(&fx, 1.0).await;
        let name = fx.id("orders-api");
        let runs = fx.runs();
        let (run, o) = if when == "kill" {
            let service = format!("/locations/{TARGET}/services/{name}");
            let proxied = crate::fixture::Proxied::start(false).await;
            crate::gcp_sql::resumed_while_under_way(
                &fx,
                &proxied,
                Match::MethodPath("PATCH", service.clone()),
                Match::MethodPath("GET", service),
                async || calls("PATCH", TARGET, &name).await,
            )
            .await
        } else {
            let point = format!("{when}:{STEP}");
            let o = failover(&fx, &["--inject-crash", &point]).await;
            assert_eq!(o.code, Some(1), "{point}: {}", o.all());
            assert!(o.err.contains("injected crash point"), "{}", o.all());
            let run = fx.new_run(&runs);
            let o = fx
                .drctl(&["runs", "resume", &run, "--output", "json"])
                .await;
            (run, o)
        };
        assert_eq!(o.code, Some(0), "{when}: {}", o.all());
        let s = read(TARGET, &name).await;
        assert!(s.serves() && s.min_instances == 3, "{when}: {s:?}");
        let show = fx.show(&run).await;
        assert_eq!(show["report"]["outcome"], "succeeded", "{when}");
        assert!(
            records(&show)
                .iter()
                .any(|r| r["event"]["type"] == "resumed")
        );
        assert_eq!(
            calls("PATCH", TARGET, &name).await,
            1,
            "{when}: services.patch sent once"
        );
        if when == "kill" {
            let out = outputs(&show, STEP);
            assert_eq!(out["waited_rollout"], true, "{out:#}");
        }
    }
}
