//! Cloud Run (`[[cloud_run]]`) against the world's Google Cloud
//! (`localstack/gcp_emu.py`, its Cloud Run part `gcp_emu_run.py`),
//! through Google's own crate (`google-cloud-run-v2`): the adapter's read
//! and its two patches (the service-level floor, the labels); a failover
//! of `plans/gcp/orders-gcp.toml` to us-east4 raising the service's floor
//! through the capacity role until it is in effect, with no revision
//! deployed (us-central1's untouched); a crash around the step resumed
//! with one patch sent; a drill's raise found by its labels and returned
//! by a sweep that has no journal of it.
//!
//! Each test seeds its own services (`orders-api-SUFFIX` in us-central1 and
//! in us-east4) through the emulator's admin API; a failover's also the
//! plan's Cloud SQL pair (`crate::gcp_sql::seed`).

use std::collections::BTreeMap;

use serde_json::json;

use crate::fixture::{Fixture, outputs, records};
use crate::proxy::Match;
use crate::world;

const PROJECT: &str = "drctl-emu";
const HOME: &str = "us-central1";
const TARGET: &str = "us-east4";
const STEP: &str = "orders-gcp/raise:orders-api";

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
/// us-central1 at its active floor of 3, in us-east4 at 0) and returns
/// their name.
pub(crate) async fn seed_api(fx: &Fixture) -> String {
    let name = fx.id("orders-api");
    seed_service(HOME, &name, 3, 0).await;
    seed_service(TARGET, &name, 0, 0).await;
    name
}

/// The GCP plan's text with its Cloud Run service renamed to `name`.
pub(crate) fn renamed(plan: &str, name: &str) -> String {
    plan.replace(
        "{ us-central1 = \"orders-api\", us-east4 = \"orders-api\" }",
        &format!("{{ us-central1 = \"{name}\", us-east4 = \"{name}\" }}"),
    )
}

/// Seeds service `name` in `region` at a service-level floor of `min`
/// (and a revision-level floor of `revision_min`).
async fn seed_service(region: &str, name: &str, min: u32, revision_min: u32) {
    world::gcp_admin(
        "/emu/run/services",
        json!({"project": PROJECT, "location": region, "name": name,
               "minInstanceCount": min, "revisionMinInstanceCount": revision_min,
               "maxInstanceCount": 20}),
    )
    .await;
}

/// The adapter through Google's crate: an unknown service reads as
/// absent; a seeded one serves; a floor patch is reconciled without a
/// revision (a second one meanwhile is refused, as Cloud Run refuses it)
/// and then in effect; a labels patch with the etag read is taken whole, a
/// stale etag and a label Google's rules refuse are refused as Cloud Run
/// words them.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_sets_the_service_floor_and_labels() {
    crate::needs_emulators!();
    let fx = Fixture::new("grunadapt").await;
    let name = fx.id("orders-api-use4");
    seed_service(TARGET, &name, 0, 1).await;
    let run = world::cloud_run();
    assert_eq!(
        run.describe_run(HOME, PROJECT, "no-such-service")
            .await
            .expect("a missing service is no error"),
        None
    );
    let before = read(TARGET, &name).await;
    assert_eq!(
        (before.name.as_str(), before.region.as_str()),
        (name.as_str(), TARGET)
    );
    assert_eq!(
        (before.floor, before.min_instances, before.max_instances),
        (0, 1, Some(20))
    );
    assert!(before.serves() && before.labels.is_empty(), "{before:?}");

    (run.set_run_floor(TARGET, PROJECT, &name, 3).await).expect("services.patch");
    let during = read(TARGET, &name).await;
    assert!(during.reconciling && !during.serves(), "{during:?}");
    assert_eq!(during.floor, 3);
    let e = (run.set_run_floor(TARGET, PROJECT, &name, 4).await)
        .expect_err("a floor patch while one is reconciled is refused");
    assert_eq!(e.code.as_deref(), Some("ABORTED"), "{e:?}");

    let after = world::wait_for("the floor to be in effect", world::PATIENCE, async || {
        let s = read(TARGET, &name).await;
        if s.serves() {
            return Ok(s);
        }
        Err(format!("{s:?}"))
    })
    .await;
    assert_eq!((after.floor, after.min_instances), (3, 1), "{after:?}");
    assert_eq!(
        after.latest_ready, before.latest_ready,
        "no revision deployed"
    );
    assert!(after.generation > before.generation);

    let marks = BTreeMap::from([("drctl-drill-restore".to_string(), "0".to_string())]);
    (run.set_run_labels(TARGET, PROJECT, &name, &marks, &after.etag)
        .await)
        .expect("a labels patch");
    let marked = read(TARGET, &name).await;
    assert_eq!(marked.labels, marks);
    assert!(marked.serves(), "metadata: no rollout: {marked:?}");
    let stale = (run.set_run_labels(TARGET, PROJECT, &name, &BTreeMap::new(), &after.etag))
        .await
        .expect_err("a stale etag is refused");
    assert_eq!(stale.code.as_deref(), Some("ABORTED"), "{stale:?}");
    let bad = BTreeMap::from([("drctl:drill-run".to_string(), "X".to_string())]);
    let e = (run.set_run_labels(TARGET, PROJECT, &name, &bad, &marked.etag))
        .await
        .expect_err("Google's label rules");
    assert_eq!(e.code.as_deref(), Some("INVALID_ARGUMENT"), "{e:?}");
    assert_eq!(read(TARGET, &name).await.labels, marks);

    // Through the role's port: the floor is the size, a drill's marks go
    // on as labels in Google's alphabet and read back exactly, then off.
    let clouds = world::clouds().await;
    let port = clouds.capacity.get("cloud_run", TARGET).expect("the port");
    let group = format!("{PROJECT}/{name}");
    let r = (port.read(TARGET, &group).await)
        .expect("read")
        .expect("exists");
    assert_eq!(
        (r.size, r.serving),
        (drctl::cloud::Size::Count(3), 3),
        "{r:?}"
    );
    let run = "20261130T010000Z-orders-gcp-1a2b".to_string();
    let drill = BTreeMap::from([("drctl:drill-run".to_string(), run.clone())]);
    (port.mark(TARGET, &r, &drill).await).expect("mark");
    let marked = port.read(TARGET, &group).await.unwrap().unwrap();
    assert_eq!(
        marked.marks.get("drctl:drill-run"),
        Some(&run),
        "{marked:?}"
    );
    let keys = ["drctl:drill-run".to_string()];
    (port.unmark(TARGET, &marked, &keys).await).expect("unmark");
    let clean = port.read(TARGET, &group).await.unwrap().unwrap();
    assert!(!clean.marks.contains_key("drctl:drill-run"), "{clean:?}");
    assert_eq!(
        read(TARGET, &name).await.labels,
        marks,
        "others' labels kept"
    );

    // After a lost lease nothing leaves: a read still answers; a floor and
    // labels are refused at the wire, and the service reads as it was.
    let fence = drctl::cloud::wire::WireFence::new(|| Err("lease lost".to_string()));
    let (r, set, mark) = fence
        .guard(async {
            (
                port.read(TARGET, &group).await,
                port.set(TARGET, &group, drctl::cloud::Size::Count(7), "k")
                    .await,
                port.mark(TARGET, &clean, &drill).await,
            )
        })
        .await;
    assert!(r.is_ok_and(|r| r.is_some()));
    for e in [set.map(drop), mark] {
        assert_eq!(e.expect_err("fenced").kind, drctl::cloud::ErrorKind::Fenced);
    }
    let after = read(TARGET, &name).await;
    assert_eq!((after.floor, &after.labels), (3, &marks), "{after:?}");
}

async fn read(region: &str, name: &str) -> drctl::cloud::RunService {
    world::cloud_run()
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

/// `drctl failover --to us-east4`: the us-east4 service's floor is raised
/// to 3 with one patch of the service-level field (no revision deployed),
/// the step waits until it is in effect; us-central1's service is
/// untouched.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_raises_the_target_service_and_waits_until_it_serves() {
    crate::needs_emulators!();
    let fx = Fixture::new("grunfo").await;
    crate::gcp_sql::seed(&fx, 1.0).await;
    let name = fx.id("orders-api");
    let home_before = read(HOME, &name).await;
    let target_before = read(TARGET, &name).await;
    // `status` reads the standby service as a capacity: cold (0 min
    // instances) but able to reach the floor (max 20), so ready; with no
    // minimum instance, a note says Cloud Run's service health is off
    // there (a note, not a problem).
    let st = fx.drctl(&["status", "--plan", "orders-gcp"]).await;
    assert!(
        st.out.contains(&format!(
            "cloud run {name} 0/0/20 (min/desired/max), ACTIVE\n      note: no minimum instance: Cloud Run's service health"
        )) && st.out.contains("[standby]: ready"),
        "{}",
        st.all()
    );
    assert_eq!(
        st.out.matches("note: no minimum instance").count(),
        1,
        "the home service keeps 3 warm: {}",
        st.all()
    );
    let runs = fx.runs();
    let o = failover(&fx, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let s = read(TARGET, &name).await;
    assert!(s.serves() && s.floor == 3, "{s:?}");
    assert_eq!(s.generation, target_before.generation + 1, "{s:?}");
    assert_eq!(
        (s.latest_ready.as_str(), s.min_instances),
        (target_before.latest_ready.as_str(), 0),
        "no revision deployed, the revision's floor untouched"
    );
    let show = fx.show(&fx.new_run(&runs)).await;
    assert_eq!(show["report"]["outcome"], "succeeded");
    let out = outputs(&show, STEP);
    assert_eq!(
        (out["before"].as_u64(), out["after"].as_u64()),
        (Some(0), Some(3)),
        "{out:#}"
    );
    assert_eq!(
        (out["changed"].as_bool(), out["serving"].as_u64()),
        (Some(true), Some(3)),
        "{out:#}"
    );
    assert_eq!(calls("PATCH", TARGET, &name).await, 1);
    assert_eq!(calls("PATCH", HOME, &name).await, 0);
    assert_eq!(read(HOME, &name).await, home_before);
}

/// A crash before and after the step (`--inject-crash`), and a kill -9
/// with its patch in flight: `runs resume` finishes the run with the
/// service's floor of 3 in effect and `services.patch` sent once (the
/// resumed step finds the change at the size on the service, reconciled
/// or under way, and waits on it).
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
        assert!(s.serves() && s.floor == 3, "{when}: {s:?}");
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
            assert_eq!(
                out["changed"], false,
                "the resumed step sent nothing: {out:#}"
            );
        }
    }
}

/// Regression (issue 38: a sweep found a raised Cloud Run floor only
/// through the drill's journal). A drill that dies right after raising the
/// standby service's floor leaves its marks on the service as labels: a
/// sweep on another machine, with a state of its own (no journal of the
/// drill), finds the service by them, returns its floor to what it was
/// and takes the labels off; the home service is never written.
#[tokio::test(flavor = "multi_thread")]
async fn regression_a_sweep_without_the_drills_journal_returns_a_raised_cloud_run_floor() {
    crate::needs_emulators!();
    let fx = Fixture::new("grunsweep").await;
    crate::gcp_mig::seed(&fx, None).await;
    let name = fx.id("orders-api");
    let ep = tempfile::tempdir().expect("tempdir");
    let endpoints = world::gcp_endpoints_file(ep.path());
    let o = fx
        .drctl_with(
            &[
                "drill",
                "--plan",
                "orders-gcp",
                "--to",
                TARGET,
                "--inject-crash",
                "after:orders-gcp/drill-raise:orders-api",
            ],
            &[],
            &endpoints,
        )
        .await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    let raised = read(TARGET, &name).await;
    assert_eq!(raised.floor, 3, "{raised:?}");
    assert_eq!(
        raised.labels.get("drctl-drill-restore").map(String::as_str),
        Some("0"),
        "{raised:?}"
    );

    let o = fx.sweep_elsewhere("orders-gcp", &endpoints).await;
    let cleaned = o.json()["cleaned"].as_array().cloned().unwrap_or_default();
    assert!(
        cleaned.iter().any(|c| c["resource"]["type"] == "raised"
            && c["resource"]["kind"] == "cloudrun"
            && c["resource"]["restore"] == 0
            && c["result"] == "restored"),
        "{}\n{cleaned:#?}",
        o.all()
    );
    let s = read(TARGET, &name).await;
    assert_eq!(s.floor, 0, "{s:?}");
    assert!(
        !s.labels.keys().any(|k| k.starts_with("drctl-drill-")),
        "{s:?}"
    );
    assert_eq!(calls("PATCH", HOME, &name).await, 0);
}
