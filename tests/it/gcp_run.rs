//! Cloud Run (`[[cloud_run]]`) against the world's Google Cloud
//! (`localstack/gcp_emu.py`, its Cloud Run part `gcp_emu_run.py`),
//! through Google's own crate (`google-cloud-run-v2`): the adapter's read,
//! patch and operation.
//!
//! Each test seeds its own services (`orders-api-SUFFIX` in us-central1 and
//! in us-east4) through the emulator's admin API.

use serde_json::{Value, json};

use crate::fixture::Fixture;
use crate::world;

const PROJECT: &str = "drctl-emu";
const HOME: &str = "us-central1";
const TARGET: &str = "us-east4";

/// The world's Google Cloud endpoint; a world started before it existed
/// has none (rerun `localstack/up`).
fn gcp() -> String {
    world::vars()
        .get("DRCTL_GCP_ENDPOINT")
        .cloned()
        .expect("DRCTL_GCP_ENDPOINT is not in localstack/endpoints.env: rerun localstack/up")
}

async fn admin(path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", gcp()))
        .json(&body)
        .send()
        .await
        .expect("the GCP emulator answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("JSON")
}

/// The emulator's record of the calls made with `method` on service `name`.
async fn calls(method: &str, name: &str) -> usize {
    let v: Value = reqwest::get(format!("{}/emu/calls", gcp()))
        .await
        .expect("calls")
        .json()
        .await
        .expect("JSON");
    (v["calls"].as_array().into_iter().flatten())
        .filter(|c| {
            c["method"] == method
                && c["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/services/{name}")))
        })
        .count()
}

/// Seeds service `name` in `region` at `min` minimum instances.
async fn seed_service(region: &str, name: &str, min: u32) {
    admin(
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

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let o = run
            .run_operation(TARGET, &op.name)
            .await
            .expect("operations.get");
        if o.done {
            break o;
        }
        assert!(std::time::Instant::now() < deadline, "never done: {o:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
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
    assert_eq!(calls("PATCH", &name).await, 2);
}
