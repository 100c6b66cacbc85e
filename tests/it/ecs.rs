//! ECS services (`[[ecs_service]]`) against moto's ECS with the world's
//! extension (`localstack/moto_ext.py`: tasks start after a delay, a
//! deployment can be armed to fail), through the reference plan `orders`:
//! the capacity role's contract over the emulators, for the kind that has
//! nothing but its table, its adapter and its role. The adapter's reads,
//! writes and tags; a failover that raises the target's service and waits
//! until its tasks run (and a resume after a crash at the step, the update
//! sent once); a deployment that fails, named; a drill that raises the
//! standby and returns it exactly, production never written; a drill
//! killed inside its raise, returned by a sweep on another machine that
//! has no journal of it, from the marks on the service alone.

use std::process::Stdio;
use std::time::Duration;

use drctl::cloud::{Change, Reading, Size};
use serde_json::{Value, json};

use crate::fixture::{Fixture, Proxied, outputs, records};
use crate::proxy::{Fault, Match};
use crate::world::{self, HOME, STANDBY};

const ACTIVE: u32 = 4;
const STANDBY_TASKS: u32 = 1;
const STEP: &str = "orders/raise:orders-workers";

fn tag(region: &str) -> &'static str {
    match region {
        "us-west-2" => "usw2",
        "us-east-1" => "use1",
        "eu-west-1" => "euw1",
        other => panic!("{other} is no region of the world"),
    }
}

/// A fixture with the `orders` plan (suffixed, as its world is).
async fn fixture(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "orders.toml", &fx.suffix);
    fx
}

/// The fixture's cluster and service in `region`.
fn names(fx: &Fixture, region: &str) -> (String, String) {
    (
        fx.id(&format!("orders-ecs-{}", tag(region))),
        fx.id("orders-workers"),
    )
}

/// A service as the capacity role's port reads it, in ECS's words.
#[derive(Debug)]
struct Service {
    desired: u32,
    running: u32,
    tags: std::collections::BTreeMap<String, String>,
    read: Reading,
}

/// The fixture's service in `region`, read through the adapter (the
/// role's port for `[[ecs_service]]`).
async fn service(fx: &Fixture, region: &str) -> Service {
    let (cluster, name) = names(fx, region);
    let clouds = world::clouds().await;
    let port = clouds
        .capacity
        .get("ecs_service", region)
        .expect("the ECS adapter");
    let read = port
        .read(region, &format!("{cluster}/{name}"))
        .await
        .expect("DescribeServices")
        .unwrap_or_else(|| panic!("{cluster}/{name} exists in {region}"));
    let Size::Count(desired) = read.size else {
        panic!("a service is sized by one count: {read:?}")
    };
    Service {
        desired,
        running: read.serving,
        tags: read.marks.clone(),
        read,
    }
}

/// Posts `body` to the world's ECS control (`/_drctl/ecs/...` on moto).
async fn ecs_admin(path: &str, body: Value) -> Value {
    let moto = world::vars()
        .get("AWS_ENDPOINT_URL_ECS")
        .cloned()
        .expect("AWS_ENDPOINT_URL_ECS is not in localstack/endpoints.env: rerun localstack/up");
    let r = reqwest::Client::new()
        .post(format!("{moto}/_drctl/ecs/{path}"))
        .json(&body)
        .send()
        .await
        .expect("moto answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("JSON")
}

/// The UpdateService calls the proxy saw signed for `region`.
fn updates_in(proxied: &Proxied, region: &str) -> usize {
    (proxied.log().iter())
        .filter(|l| l.contains("UpdateService") && l.contains(&format!("[{region}]")))
        .count()
}

async fn failover(fx: &Fixture, proxied: &Proxied, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "orders",
        "--to",
        STANDBY,
        "--approve",
        "ecs test",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], &proxied.endpoints()).await
}

/// The adapter against moto: an unknown service or cluster reads as
/// absent; a new desired count reads at once while the tasks start later
/// (running follows after the world's delay); tags go on and come off.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_reads_scales_and_tags_a_service() {
    crate::needs_emulators!();
    let fx = Fixture::new("ecsadapt").await;
    let clouds = world::clouds().await;
    let (cluster, name) = names(&fx, STANDBY);
    let ecs = clouds
        .capacity
        .get("ecs_service", STANDBY)
        .expect("the ECS adapter");
    let group = format!("{cluster}/{name}");
    let none = ecs
        .read(STANDBY, &format!("{cluster}/no-such-service"))
        .await;
    assert_eq!(none.expect("an unknown service is no error"), None);
    let none = ecs.read(STANDBY, &format!("no-such-cluster/{name}")).await;
    assert_eq!(none.expect("an unknown cluster is no error"), None);
    let bad = ecs.read(STANDBY, "no slash").await;
    let bad = bad.expect_err("a group not `cluster/service` is refused before any call");
    assert_eq!(bad.kind, drctl::cloud::ErrorKind::Client, "{bad}");
    let s = service(&fx, STANDBY).await;
    assert_eq!((s.desired, s.running), (STANDBY_TASKS, STANDBY_TASKS));
    assert!(s.read.state.starts_with("ACTIVE, "), "{s:?}");
    assert!(s.read.handle.starts_with("arn:aws:ecs:"), "{s:?}");
    assert_eq!(s.read.change, Change::Settled, "a COMPLETED rollout: {s:?}");
    let shown = ecs
        .describe(STANDBY, &group)
        .await
        .expect("DescribeServices");
    let shown = shown.expect("the service, as status shows it");
    assert_eq!(
        (
            shown.capacity.desired,
            shown.capacity.max,
            shown.status.as_deref()
        ),
        (STANDBY_TASKS, 5_000, Some("ACTIVE"))
    );
    let err = ecs
        .set(
            STANDBY,
            &format!("{cluster}/no-such-service"),
            Size::Count(2),
            "k",
        )
        .await;
    let err = err.expect_err("UpdateService of a missing service");
    assert_eq!(err.kind, drctl::cloud::ErrorKind::NotFound, "{err}");

    ecs.set(STANDBY, &group, Size::Count(3), "k")
        .await
        .expect("UpdateService");
    let now = service(&fx, STANDBY).await;
    assert_eq!(now.desired, 3);
    world::wait_for(
        "the service's three tasks running",
        world::PATIENCE,
        async || {
            let s = service(&fx, STANDBY).await;
            if s.running == 3 {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        },
    )
    .await;

    let tags = [("drctl:drill-run".to_string(), "r1".to_string())].into();
    ecs.mark(STANDBY, &now.read, &tags)
        .await
        .expect("TagResource");
    assert_eq!(
        service(&fx, STANDBY)
            .await
            .tags
            .get("drctl:drill-run")
            .map(String::as_str),
        Some("r1")
    );
    ecs.unmark(STANDBY, &now.read, &["drctl:drill-run".into()])
        .await
        .expect("UntagResource");
    let tags = service(&fx, STANDBY).await.tags;
    assert!(!tags.contains_key("drctl:drill-run"), "{tags:?}");
}

/// A failover raises the standby's service to its active count and waits
/// until the tasks run (the world starts them after a delay); the step's
/// output says what it did; `status` shows each region's service; the
/// home service is never written. A crash before or after the step is
/// resumed with the update sent once.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_raises_the_target_service_and_a_crash_at_the_step_is_resumed_once() {
    crate::needs_emulators!();
    let fx = fixture("ecsfo").await;
    let proxied = Proxied::start(false).await;
    let st = fx.drctl(&["status", "--plan", "orders"]).await;
    let (cluster, name) = names(&fx, STANDBY);
    assert!(
        st.out
            .contains(&format!("service  {cluster}/{name} 0/1/5000")),
        "{}",
        st.all()
    );
    let runs = fx.runs();
    let o = failover(&fx, &proxied, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let s = service(&fx, STANDBY).await;
    assert_eq!((s.desired, s.running), (ACTIVE, ACTIVE), "{s:?}");
    let run = fx.new_run(&runs);
    let out = outputs(&fx.show(&run).await, STEP);
    assert_eq!(
        (
            out["before"].as_u64(),
            out["after"].as_u64(),
            out["serving"].as_u64(),
            out["changed"].as_bool()
        ),
        (Some(1), Some(4), Some(4), Some(true)),
        "{out:#}"
    );
    assert_eq!(updates_in(&proxied, STANDBY), 1, "{:#?}", proxied.log());
    assert_eq!(
        updates_in(&proxied, HOME),
        0,
        "the home service is never written"
    );

    // A crash around the step, resumed: the service is raised once.
    for when in ["before", "after"] {
        let fx = fixture("ecscrash").await;
        let proxied = Proxied::start(false).await;
        let point = format!("{when}:{STEP}");
        let o = failover(&fx, &proxied, &["--inject-crash", &point]).await;
        assert_eq!(o.code, Some(1), "{point}: {}", o.all());
        let run = fx.runs().into_iter().next().expect("the crashed run");
        let o = fx
            .drctl_with(
                &["runs", "resume", &run, "--output", "json"],
                &[],
                &proxied.endpoints(),
            )
            .await;
        assert_eq!(o.code, Some(0), "{point}: {}", o.all());
        let s = service(&fx, STANDBY).await;
        assert_eq!((s.desired, s.running), (ACTIVE, ACTIVE), "{point}");
        assert_eq!(
            updates_in(&proxied, STANDBY),
            1,
            "{point}: {:#?}",
            proxied.log()
        );
        let recs = records(&fx.show(&run).await);
        let succeeded = (recs.iter())
            .filter(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == STEP)
            .count();
        assert_eq!(succeeded, 1, "{point}");
        assert_eq!(fx.audit(&run).await.code, Some(0), "{point}");
    }
}

/// A deployment whose circuit breaker gives up fails the failover at the
/// step, naming the deployment and ECS's reason, and says how to resume.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_deployment_fails_the_failover_naming_it() {
    crate::needs_emulators!();
    let fx = fixture("ecsfail").await;
    let proxied = Proxied::start(false).await;
    let (cluster, name) = names(&fx, STANDBY);
    let armed = ecs_admin(
        "fail",
        json!({"region": STANDBY, "cluster": cluster, "service": name}),
    )
    .await;
    assert!(armed["armed"].is_object(), "{armed}");
    let o = failover(&fx, &proxied, &[]).await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    let all = o.all();
    assert!(all.contains("ecs-svc/"), "names the deployment: {all}");
    assert!(all.contains("circuit breaker"), "gives ECS's reason: {all}");
    assert!(all.contains("runs resume"), "says how to go on: {all}");
    let s = service(&fx, STANDBY).await;
    assert_eq!((s.desired, s.running), (ACTIVE, STANDBY_TASKS), "{s:?}");
    ecs_admin(
        "clear",
        json!({"region": STANDBY, "cluster": cluster, "service": name}),
    )
    .await;
}

/// A drill raises the standby's service to the active count with its
/// count before journaled and marked first, and its cleanup returns it to
/// exactly that count, its marks gone; production's service is never
/// written; the verdict does not say the service was not rehearsed.
#[tokio::test(flavor = "multi_thread")]
async fn a_drill_raises_the_standby_service_and_cleanup_returns_it_exactly() {
    crate::needs_emulators!();
    let fx = fixture("ecsdrill").await;
    let proxied = Proxied::start(false).await;
    let (cluster, name) = names(&fx, STANDBY);
    // Not the plan's standby count: the cleanup returns what it read.
    let clouds = world::clouds().await;
    (clouds
        .capacity
        .get("ecs_service", STANDBY)
        .expect("the ECS adapter"))
    .set(STANDBY, &format!("{cluster}/{name}"), Size::Count(2), "k")
    .await
    .expect("UpdateService");
    world::wait_for("two tasks running", world::PATIENCE, async || {
        let s = service(&fx, STANDBY).await;
        if s.running == 2 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let runs = fx.runs();
    let o = fx
        .drctl_with(
            &[
                "drill", "--plan", "orders", "--to", STANDBY, "--output", "json",
            ],
            &[],
            &proxied.endpoints(),
        )
        .await;
    let j = o.json();
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", o.all());
    assert!(
        !j["drill"]["verdicts"][0]
            .to_string()
            .contains("not rehearse"),
        "{}",
        o.all()
    );
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let out = outputs(&show, "orders/drill-raise:orders-workers");
    assert_eq!(
        (out["before"].as_u64(), out["raised_to"].as_u64()),
        (Some(2), Some(4)),
        "{out:#}"
    );
    let recs = records(&show);
    let point = (recs.iter())
        .position(|r| ecs_raise(&r["event"]["resource"]))
        .expect("the restore point is journaled");
    assert_eq!(recs[point]["event"]["resource"]["restore"], 2);
    assert!(
        (recs.iter()).any(|r| r["event"]["type"] == "cleanup"
            && ecs_raise(&r["event"]["resource"])
            && r["event"]["result"] == "restored"),
        "{recs:#?}"
    );
    let s = service(&fx, STANDBY).await;
    assert_eq!(s.desired, 2);
    assert!(
        !s.tags.keys().any(|k| k.starts_with("drctl:")),
        "{:?}",
        s.tags
    );
    assert_eq!(updates_in(&proxied, STANDBY), 2, "raised, then returned");
    assert_eq!(updates_in(&proxied, HOME), 0, "production is never written");
    assert_eq!(service(&fx, HOME).await.desired, ACTIVE);
    assert_eq!(fx.audit(&run).await.code, Some(0));
}

/// Regression (issue 38): a sweep found a raised group of the newer kinds
/// only through its drill's journal. A drill killed (kill -9) after ECS
/// applied its raise (the answer held by the proxy) leaves its marks on
/// the service: a sweep on another machine, with an empty state of its
/// own, finds the service by them and returns it to its count before.
#[tokio::test(flavor = "multi_thread")]
async fn regression_a_sweep_without_the_drills_journal_returns_a_killed_drills_raise() {
    crate::needs_emulators!();
    let fx = fixture("ecskill").await;
    let proxied = Proxied::start(false).await;
    let update = Match::Action("UpdateService");
    let ecs = proxied.proxy_for("AWS_ENDPOINT_URL_ECS");
    ecs.inject(
        update.clone(),
        Fault::DelayAnswer(Duration::from_secs(600)),
        1,
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never", "--plans"])
        .arg(fx.plans.path())
        .arg("--endpoints")
        .arg(proxied.endpoints())
        .args(fx.state_args())
        .args(["drill", "--plan", "orders", "--to", STANDBY])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .envs(world::run_key_env())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn drctl");
    world::wait_for("the drill's UpdateService", world::PATIENCE, async || {
        if ecs.requests(update.clone()) > 0 {
            return Ok(());
        }
        world::running(&mut child, "the drill", "its raise").await;
        Err(ecs.log().join("\n"))
    })
    .await;
    child.kill().await.expect("kill -9");
    let s = service(&fx, STANDBY).await;
    assert_eq!(s.desired, ACTIVE, "ECS applied the raise: {s:?}");
    assert!(s.tags.contains_key("drctl:drill-restore"), "{:?}", s.tags);

    // Another machine: the same plans, a state of its own (no journal).
    let o = fx.sweep_elsewhere("orders", &world::endpoints_file()).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let cleaned = o.json()["cleaned"].as_array().cloned().unwrap_or_default();
    assert!(
        cleaned.iter().any(|c| ecs_raise(&c["resource"])
            && c["resource"]["restore"] == STANDBY_TASKS
            && c["result"] == "restored"),
        "{cleaned:#?}"
    );
    let s = service(&fx, STANDBY).await;
    assert_eq!(s.desired, STANDBY_TASKS);
    assert!(
        !s.tags.keys().any(|k| k.starts_with("drctl:")),
        "{:?}",
        s.tags
    );
    assert_eq!(service(&fx, HOME).await.desired, ACTIVE);
}

/// A drill whose raise fails (the deployment's circuit breaker gives up):
/// the drill fails naming the deployment, and its cleanup still returns
/// the service to its count before and takes its marks off.
#[tokio::test(flavor = "multi_thread")]
async fn a_drill_whose_raise_fails_is_returned_by_its_cleanup() {
    crate::needs_emulators!();
    let fx = fixture("ecsdfail").await;
    let (cluster, name) = names(&fx, STANDBY);
    let armed = ecs_admin(
        "fail",
        json!({"region": STANDBY, "cluster": cluster, "service": name}),
    )
    .await;
    assert!(armed["armed"].is_object(), "{armed}");
    let o = fx
        .drctl(&[
            "drill", "--plan", "orders", "--to", STANDBY, "--output", "json",
        ])
        .await;
    let j = o.json();
    assert_eq!(j["drill"]["verdicts"][0]["verdict"], "FAIL", "{}", o.all());
    assert!(
        o.all().contains("ecs-svc/"),
        "names the deployment: {}",
        o.all()
    );
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", o.all());
    let s = service(&fx, STANDBY).await;
    assert_eq!(
        (s.desired, s.running),
        (STANDBY_TASKS, STANDBY_TASKS),
        "{s:?}"
    );
    assert!(
        !s.tags.keys().any(|k| k.starts_with("drctl:")),
        "{:?}",
        s.tags
    );
}

/// Whether a journaled drill resource is an ECS service's raise (the
/// orders plan's drill also raises its EKS node group).
fn ecs_raise(resource: &Value) -> bool {
    resource["type"] == "raised" && resource["kind"] == "ecsservice"
}
