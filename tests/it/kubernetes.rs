//! Kubernetes workloads (`[[kubernetes]]`) against the world's real control
//! planes (`localstack/kube/up`: kube-apiserver v1.37.2 with RBAC,
//! kube-controller-manager and kube-scheduler, one per region; kwok plays
//! the kubelet of their fake nodes), through the reference plan `catalog`.
//! drctl runs as the world's `drctl` user, bound to
//! `deploy/kubernetes/drctl-role.yaml`'s Role and nothing else; the tests
//! look and meddle as the admin.
//!
//! A failover raises the target's Deployment (and its HPA's bounds), its
//! StatefulSet and resumes its CronJob, and waits for available pods; with
//! the home region's API server gone it finishes without it; a workload
//! whose pods never become ready fails the step, named with its condition;
//! a crash at a step is resumed by another process that reads the cluster
//! first; a drill raises the standby and returns it, production untouched,
//! and a sweep finds a killed drill's raise by its annotations; the Role
//! less one verb stops the run before anything moves, naming the verb.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use drctl::cloud::{Capacity, Size};

use crate::fixture::{Fixture, Ran, outputs, records};
use crate::world::{self, HOME, STANDBY};

const WEB: &str = "catalog/raise:catalog-web";

/// The kubeconfig the world wrote (`KUBECONFIG` in its endpoints file).
fn kubeconfig() -> std::path::PathBuf {
    (world::vars().get("KUBECONFIG").cloned())
        .expect("KUBECONFIG is not in localstack/endpoints.env: rerun localstack/up")
        .into()
}

/// A client of `region`'s control plane as the world's admin.
async fn admin(region: &str) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = Kubeconfig::read_from(kubeconfig()).expect("the world's kubeconfig");
    let options = KubeConfigOptions {
        context: Some(format!("{region}-admin")),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kc, &options)
        .await
        .expect("the admin context");
    kube::Client::try_from(config).expect("a client")
}

/// A fixture with the `catalog` plan and its namespace `catalog-SUFFIX`
/// seeded in every region's control plane.
async fn fixture(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    let suffix = fx.suffix.clone();
    tokio::task::spawn_blocking(move || world::seed_with(&suffix, &["--kubernetes"]))
        .await
        .expect("seeded");
    crate::cli::add_suffixed_plan(fx.plans.path(), "catalog.toml", &fx.suffix);
    fx
}

fn ns(fx: &Fixture) -> String {
    fx.id("catalog")
}

async fn web(fx: &Fixture, region: &str) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(admin(region).await, &ns(fx));
    api.get("catalog-web").await.expect("catalog-web")
}

async fn cache(fx: &Fixture, region: &str) -> StatefulSet {
    let api: Api<StatefulSet> = Api::namespaced(admin(region).await, &ns(fx));
    api.get("catalog-cache").await.expect("catalog-cache")
}

async fn hpa(fx: &Fixture, region: &str) -> (i32, i32) {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(admin(region).await, &ns(fx));
    let h = api.get("catalog-web").await.expect("the HPA");
    (h.spec.min_replicas.unwrap_or(1), h.spec.max_replicas)
}

async fn cron_suspended(fx: &Fixture, region: &str) -> bool {
    let api: Api<CronJob> = Api::namespaced(admin(region).await, &ns(fx));
    let c = api.get("catalog-reindex").await.expect("catalog-reindex");
    c.spec.suspend.unwrap_or(false)
}

fn replicas(d: &Deployment) -> (i32, i32) {
    let spec = d.spec.replicas.unwrap_or(1);
    let available = (d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    (spec, available)
}

fn drill_annotations(d: &Deployment) -> Vec<String> {
    (d.metadata.annotations.iter().flatten())
        .filter(|(k, _)| k.starts_with("drctl.dev/"))
        .map(|(k, _)| k.clone())
        .collect()
}

async fn failover(fx: &Fixture, extra: &[&str]) -> Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "catalog",
        "--to",
        STANDBY,
        "--approve",
        "k8s test",
    ];
    args.extend_from_slice(extra);
    fx.drctl(&args).await
}

/// The adapter as the `drctl` user: a workload reads with its HPA; an
/// unknown one reads as absent; a scale and an annotation go through the
/// fence and read back.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_reads_scales_and_annotates_a_workload() {
    crate::needs_emulators!();
    let fx = fixture("k8sadapt").await;
    let clouds = world::clouds().await;
    let group = format!("{}/deployment/catalog-web@context:{STANDBY}", ns(&fx));
    let port = clouds
        .capacity
        .get("kubernetes", STANDBY)
        .expect("the port");
    let read = (port.read(STANDBY, &group).await)
        .expect("read")
        .expect("it exists");
    let bounds = |min, desired, max| Size::Bounds(Capacity { min, desired, max });
    // Replicas 0 inside its HPA's 1..1.
    assert_eq!(read.size, bounds(1, 0, 1), "{read:?}");
    let shown = (port.describe(STANDBY, &group).await).unwrap().unwrap();
    assert!(
        shown.notes.iter().any(|n| n == "HPA catalog-web 1..1"),
        "{shown:?}"
    );
    let none = group.replace("catalog-web@", "nope@");
    assert_eq!(port.read(STANDBY, &none).await.expect("no error"), None);

    // A raise writes the HPA's bounds, then the replicas.
    (port.set(STANDBY, &group, bounds(2, 2, 4), "k").await).expect("scale");
    let marks = [("drctl:drill-run".to_string(), "r1".to_string())].into();
    (port.mark(STANDBY, &read, &marks).await).expect("annotate");
    world::wait_for("two available", world::PATIENCE, async || {
        let r = port.read(STANDBY, &group).await.unwrap().unwrap();
        if r.serves(bounds(2, 2, 4)) {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    // Bounds where the workload has no HPA: refused before any write.
    let cache = format!("{}/statefulset/catalog-cache@context:{STANDBY}", ns(&fx));
    let e = (port.set(STANDBY, &cache, bounds(1, 2, 5), "k").await).unwrap_err();
    assert!(e.to_string().contains("no HPA"), "{e}");
    let cache_read = port.read(STANDBY, &cache).await.unwrap().unwrap();
    assert_eq!(
        cache_read.size,
        bounds(1, 1, 1),
        "untouched: {cache_read:?}"
    );

    // After a lost lease nothing leaves: a read still answers; a scale (its
    // HPA first) and an annotation are refused at the wire, and the
    // workload reads as it was.
    let before = port.read(STANDBY, &group).await.unwrap().unwrap();
    let fence = drctl::cloud::wire::WireFence::new(|| Err("lease lost".to_string()));
    let (read, set, mark) = fence
        .guard(async {
            (
                port.read(STANDBY, &group).await,
                port.set(STANDBY, &group, bounds(3, 5, 6), "k2").await,
                port.mark(STANDBY, &before, &marks).await,
            )
        })
        .await;
    assert!(read.is_ok_and(|r| r.is_some()));
    for e in [set.map(drop), mark] {
        assert_eq!(e.expect_err("fenced").kind, drctl::cloud::ErrorKind::Fenced);
    }
    let after = port.read(STANDBY, &group).await.unwrap().unwrap();
    assert_eq!((after.size, &after.marks), (before.size, &before.marks));
    let d = web(&fx, STANDBY).await;
    assert_eq!(
        drill_annotations(&d),
        vec!["drctl.dev/drill-run".to_string()]
    );
}

/// A failover raises the target's workloads (the Deployment from 0 with
/// its HPA's bounds, the StatefulSet from 1, the CronJob resumed), after
/// the node group they run on, and waits until their pods are available;
/// the journal says what each step did; the home region is not written.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_raises_the_targets_workloads_and_waits_for_ready_pods() {
    crate::needs_emulators!();
    let fx = fixture("k8sfo").await;
    let st = fx.drctl(&["status", "--plan", "catalog"]).await;
    assert!(
        st.out.contains("catalog-web@context:us-east-1"),
        "{}",
        st.all()
    );
    let runs = fx.runs();
    let o = failover(&fx, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(replicas(&web(&fx, STANDBY).await), (3, 3));
    assert_eq!(hpa(&fx, STANDBY).await, (3, 12));
    let c = cache(&fx, STANDBY).await;
    assert_eq!(c.spec.replicas, Some(3));
    assert_eq!(
        c.status.as_ref().and_then(|s| s.available_replicas),
        Some(3)
    );
    assert!(!cron_suspended(&fx, STANDBY).await, "resumed in the target");
    assert!(
        cron_suspended(&fx, HOME).await,
        "suspended in the region it left"
    );
    // Home's workloads: as they were.
    assert_eq!(replicas(&web(&fx, HOME).await).0, 3);
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let cron = outputs(&show, "catalog/raise:catalog-reindex");
    let said = cron["elsewhere"][0].as_str().unwrap_or("");
    assert!(said.starts_with("set "), "{cron:#}");
    let out = outputs(&show, WEB);
    assert_eq!(out["serving"].as_u64(), Some(3), "{out:#}");
    assert_eq!(out["changed"].as_bool(), Some(true), "{out:#}");
    let recs = records(&show);
    let order = |step: &str| {
        (recs.iter())
            .position(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == step)
            .unwrap_or_else(|| panic!("{step} succeeded: {recs:#?}"))
    };
    assert!(
        order("catalog/raise:catalog-nodes") < order(WEB),
        "nodes first"
    );
    assert_eq!(fx.audit(&run).await.code, Some(0));
}

/// With the home region's API server gone (its kubeconfig context points
/// at a port nobody answers), the failover finishes: it never waits on it.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_with_the_home_api_server_gone_finishes_without_it() {
    crate::needs_emulators!();
    let fx = fixture("k8sdown").await;
    let dir = tempfile::tempdir().expect("dir");
    let kc = std::fs::read_to_string(kubeconfig()).expect("kubeconfig");
    let server = (kc.lines())
        .skip_while(|l| !l.contains(&format!("name: {HOME}")))
        .find(|l| l.trim_start().starts_with("server:"))
        .expect("home's server")
        .trim()
        .trim_start_matches("server:")
        .trim()
        .to_string();
    let gone = dir.path().join("kubeconfig");
    std::fs::write(&gone, kc.replace(&server, "https://127.0.0.1:9")).expect("write");
    let env = std::fs::read_to_string(world::endpoints_file()).expect("endpoints");
    let env: String = (env.lines())
        .map(|l| match l.starts_with("KUBECONFIG=") {
            true => format!("KUBECONFIG={}\n", gone.display()),
            false => format!("{l}\n"),
        })
        .collect();
    let endpoints = dir.path().join("endpoints.env");
    std::fs::write(&endpoints, env).expect("write");
    let t0 = std::time::Instant::now();
    let o = fx
        .drctl_with(
            &[
                "failover",
                "--plan",
                "catalog",
                "--to",
                STANDBY,
                "--approve",
                "home gone",
            ],
            &[],
            &endpoints,
        )
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert!(
        t0.elapsed() < Duration::from_secs(180),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(replicas(&web(&fx, STANDBY).await), (3, 3));
    assert!(!cron_suspended(&fx, STANDBY).await);
    // What it could not suspend where it left, said, with the command.
    let all = o.all();
    assert!(all.contains("could not set") && all.contains(HOME), "{all}");
    assert!(
        all.contains("suspend"),
        "the command that does it by hand: {all}"
    );
    let run = fx.runs().into_iter().next().expect("the run");
    let cron = outputs(&fx.show(&run).await, "catalog/raise:catalog-reindex");
    let said = cron["elsewhere"][0].as_str().unwrap_or("");
    assert!(said.starts_with("could not"), "{cron:#}");
}

/// A Deployment whose rollout gave up (a template no node can run, its
/// progress deadline passed): the failover refuses at its preflight,
/// naming the workload and its condition's reason and message.
#[tokio::test(flavor = "multi_thread")]
async fn a_workload_whose_rollout_gave_up_is_named_with_its_condition() {
    crate::needs_emulators!();
    let fx = fixture("k8sstuck").await;
    let api: Api<Deployment> = Api::namespaced(admin(STANDBY).await, &ns(&fx));
    let pp = PatchParams::default();
    let one = json!({"spec": {"replicas": 1}});
    api.patch("catalog-web", &pp, &Patch::Merge(&one))
        .await
        .expect("scale");
    let stuck = json!({"spec": {"progressDeadlineSeconds": 3,
        "template": {"spec": {"nodeSelector": {"drctl.dev/no-such-node": "x"}}}}});
    api.patch("catalog-web", &pp, &Patch::Merge(&stuck))
        .await
        .expect("patch");
    world::wait_for("the deadline to pass", world::PATIENCE, async || {
        let d = api.get("catalog-web").await.expect("read");
        let gave_up = (d
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter())
        .any(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
        if gave_up {
            Ok(())
        } else {
            Err("progressing".to_string())
        }
    })
    .await;
    let o = failover(&fx, &["--step-timeout", "30s"]).await;
    assert_ne!(o.code, Some(0), "{}", o.all());
    let all = o.all();
    assert!(all.contains("catalog-web"), "names the workload: {all}");
    assert!(
        all.contains("ProgressDeadlineExceeded"),
        "its condition: {all}"
    );
    assert!(all.contains("timed out progressing"), "its message: {all}");
}

/// A Deployment raised from 0 whose pods can never be scheduled (a node
/// selector no node has): the step waits no longer than it may, then
/// fails naming the workload and why it is not available.
#[tokio::test(flavor = "multi_thread")]
async fn a_workload_that_never_becomes_ready_fails_the_step_naming_why() {
    crate::needs_emulators!();
    let fx = fixture("k8snever").await;
    let api: Api<Deployment> = Api::namespaced(admin(STANDBY).await, &ns(&fx));
    let never =
        json!({"spec": {"template": {"spec": {"nodeSelector": {"drctl.dev/no-such-node": "x"}}}}});
    (api.patch(
        "catalog-web",
        &PatchParams::default(),
        &Patch::Merge(&never),
    )
    .await)
        .expect("patch");
    let o = failover(&fx, &["--step-timeout", "20s"]).await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    let all = o.all();
    assert!(all.contains("catalog-web"), "names the workload: {all}");
    assert!(all.contains("0/3 available"), "what it reads: {all}");
    assert!(all.contains("MinimumReplicasUnavailable"), "why: {all}");
    assert!(all.contains("runs resume"), "says how to go on: {all}");
}

/// A crash before and after the web step: `runs resume` from another
/// process reads the cluster first and finishes, the step succeeding once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_a_raise_is_resumed_by_another_process_that_reads_the_cluster_first() {
    crate::needs_emulators!();
    for when in ["before", "after"] {
        let fx = fixture("k8scrash").await;
        let point = format!("{when}:{WEB}");
        let o = failover(&fx, &["--inject-crash", &point]).await;
        assert_eq!(o.code, Some(1), "{point}: {}", o.all());
        let run = fx.runs().into_iter().next().expect("the crashed run");
        let o = fx
            .drctl(&["runs", "resume", &run, "--output", "json"])
            .await;
        assert_eq!(o.code, Some(0), "{point}: {}", o.all());
        assert_eq!(replicas(&web(&fx, STANDBY).await), (3, 3), "{point}");
        let recs = records(&fx.show(&run).await);
        let succeeded = (recs.iter())
            .filter(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == WEB)
            .count();
        assert_eq!(succeeded, 1, "{point}");
        assert_eq!(fx.audit(&run).await.code, Some(0), "{point}");
    }
}

/// A drill raises the standby's Deployment and StatefulSet, marked, and
/// returns them to their standby sizes, marks gone; the CronJob is left
/// suspended (it must run in one region at a time); nothing in the home
/// region is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_drill_raises_the_standby_workloads_and_returns_them() {
    crate::needs_emulators!();
    let fx = fixture("k8sdrill").await;
    let home_before = web(&fx, HOME).await.metadata.generation;
    let runs = fx.runs();
    let o = fx
        .drctl(&[
            "drill", "--plan", "catalog", "--to", STANDBY, "--output", "json",
        ])
        .await;
    let j = o.json();
    assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", o.all());
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let out = outputs(&show, "catalog/drill-raise:catalog-web");
    assert_eq!(
        out["raised_to"],
        json!({"min": 3, "desired": 3, "max": 12}),
        "{out:#}"
    );
    assert_eq!(out["serving"].as_u64(), Some(3), "{out:#}");
    let d = web(&fx, STANDBY).await;
    assert_eq!(replicas(&d).0, 0);
    assert!(
        drill_annotations(&d).is_empty(),
        "{:?}",
        d.metadata.annotations
    );
    assert_eq!(hpa(&fx, STANDBY).await, (1, 1));
    assert_eq!(cache(&fx, STANDBY).await.spec.replicas, Some(1));
    assert!(
        cron_suspended(&fx, STANDBY).await,
        "a drill never resumes a CronJob"
    );
    let home = web(&fx, HOME).await;
    assert_eq!(
        home.metadata.generation, home_before,
        "production's spec is as it was"
    );
    let managers: Vec<_> = (home.metadata.managed_fields.iter().flatten())
        .filter_map(|f| f.manager.clone())
        .collect();
    assert!(
        !managers.iter().any(|m| m == "drctl"),
        "drctl never wrote it: {managers:?}"
    );
    assert_eq!(fx.audit(&run).await.code, Some(0));
}

/// A drill killed inside its raise (after the web Deployment was raised)
/// leaves its annotations: a sweep on another machine, with no journal of
/// it, finds the Deployment by them and returns it.
#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_returns_a_killed_drills_raise_from_its_annotations() {
    crate::needs_emulators!();
    let fx = fixture("k8skill").await;
    let point = "after:catalog/drill-raise:catalog-web";
    let o = fx
        .drctl(&[
            "drill",
            "--plan",
            "catalog",
            "--to",
            STANDBY,
            "--inject-crash",
            point,
        ])
        .await;
    assert_eq!(o.code, Some(1), "{}", o.all());
    let d = web(&fx, STANDBY).await;
    assert_eq!(replicas(&d).0, 3, "raised: {:?}", d.spec);
    assert!(!drill_annotations(&d).is_empty(), "marked");
    let o = fx
        .sweep_elsewhere("catalog", &world::endpoints_file())
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let d = web(&fx, STANDBY).await;
    assert_eq!(replicas(&d).0, 0, "returned");
    assert!(
        drill_annotations(&d).is_empty(),
        "{:?}",
        d.metadata.annotations
    );
    assert_eq!(hpa(&fx, STANDBY).await, (1, 1));
}

/// drctl under exactly the shipped Role succeeds (the failover above);
/// under that Role less one verb (patch on deployments/scale), the
/// failover refuses before anything moves, naming the verb and resource.
#[tokio::test(flavor = "multi_thread")]
async fn the_role_less_one_verb_stops_the_run_before_anything_moves() {
    crate::needs_emulators!();
    let fx = fixture("k8srbac").await;
    let roles: Api<Role> = Api::namespaced(admin(STANDBY).await, &ns(&fx));
    let mut role = roles.get("drctl").await.expect("the Role");
    for rule in role.rules.iter_mut().flatten() {
        let scale = |r: &String| r == "deployments/scale" || r == "statefulsets/scale";
        if rule.resources.iter().flatten().any(scale) {
            rule.resources = Some(vec!["statefulsets/scale".into()]);
        }
    }
    role.metadata.managed_fields = None;
    roles
        .replace("drctl", &Default::default(), &role)
        .await
        .expect("the Role less one verb");
    let db = world::clouds()
        .await
        .database
        .describe_instance(STANDBY, &fx.id("catalog-db-use1"))
        .await
        .expect("read")
        .expect("the replica");
    let o = failover(&fx, &[]).await;
    assert_ne!(o.code, Some(0), "{}", o.all());
    let all = o.all();
    assert!(
        all.contains("patch") && all.contains("deployments/scale"),
        "{all}"
    );
    let after = world::clouds()
        .await
        .database
        .describe_instance(STANDBY, &fx.id("catalog-db-use1"))
        .await
        .expect("read")
        .expect("the replica");
    assert_eq!(after.role, db.role, "the database was not promoted");
    assert_eq!(replicas(&web(&fx, STANDBY).await).0, 0);
}

/// A plan naming a namespace that does not exist: `status` says which;
/// the failover refuses before acting.
#[tokio::test(flavor = "multi_thread")]
async fn a_plan_naming_a_missing_namespace_is_refused_before_acting() {
    crate::needs_emulators!();
    let fx = fixture("k8smiss").await;
    let path = fx.plans.path().join("catalog.toml");
    let plan = std::fs::read_to_string(&path).expect("plan");
    std::fs::write(
        &path,
        plan.replacen(
            &format!("namespace = \"{}\"", ns(&fx)),
            "namespace = \"nowhere\"",
            1,
        ),
    )
    .expect("write");
    let st = fx.drctl(&["status", "--plan", "catalog"]).await;
    assert!(st.all().contains("nowhere"), "{}", st.all());
    let o = failover(&fx, &[]).await;
    assert_ne!(o.code, Some(0), "{}", o.all());
    assert_eq!(replicas(&web(&fx, STANDBY).await).0, 0);
}
