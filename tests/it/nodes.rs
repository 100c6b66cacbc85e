//! EKS managed node groups (`[[node_group]]`) against moto's EKS, through
//! the reference plan `orders` (its node group beside the Aurora global
//! database its failovers and drills also move or copy): the
//! adapter's reads and update, a failover that scales the target's node
//! group up (and a failback that finds it already at size), `status`
//! showing each node group's size and status, a crash at the scaling
//! step resumed with the update sent once; a drill that raises the
//! standby's node group and returns it to its exact size (production's
//! never written), and a drill killed in its update whose node group a
//! resume, or a sweep on its state, returns.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use drctl::cloud::{Capacity, Change, Reading, Size};
use serde_json::Value;

use crate::fixture::{Fixture, Proxied, outputs, records};
use crate::proxy::{Fault, Match};
use crate::world::{self, HOME, STANDBY};

/// Region tags of the reference world's names (`localstack/seed`).
const TAGS: [(&str, &str); 3] = [
    ("us-west-2", "usw2"),
    ("us-east-1", "use1"),
    ("eu-west-1", "euw1"),
];

async fn fixture(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "orders.toml", &fx.suffix);
    fx
}

fn tag(region: &str) -> &'static str {
    TAGS.iter()
        .find(|(r, _)| *r == region)
        .map(|(_, t)| *t)
        .expect("a region of the world")
}

/// The node group of `region` in the fixture's world, read through the
/// adapter (the role's port for `[[node_group]]`): (min, desired, max) and
/// status.
async fn node_group(fx: &Fixture, region: &str) -> (Capacity, String) {
    let r = read(fx, region).await;
    let Size::Bounds(c) = r.size else {
        panic!("a node group has three bounds: {r:?}")
    };
    (c, r.state)
}

/// The node group of `region`, as the role's port reads it.
async fn read(fx: &Fixture, region: &str) -> Reading {
    let (cluster, group) = names(fx, region);
    let clouds = world::clouds().await;
    (clouds
        .capacity
        .get("node_group", region)
        .expect("the EKS adapter"))
    .read(region, &format!("{cluster}/{group}"))
    .await
    .expect("DescribeNodegroup")
    .unwrap_or_else(|| panic!("{cluster}/{group} exists in {region}"))
}

fn names(fx: &Fixture, region: &str) -> (String, String) {
    let t = tag(region);
    (
        fx.id(&format!("orders-eks-{t}")),
        fx.id(&format!("orders-nodes-{t}")),
    )
}

const ACTIVE_SIZE: Capacity = Capacity {
    min: 2,
    desired: 3,
    max: 6,
};
const STANDBY_SIZE: Capacity = Capacity {
    min: 0,
    desired: 0,
    max: 6,
};

async fn failover(fx: &Fixture, to: &str, endpoints: &Path, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "orders",
        "--to",
        to,
        "--approve",
        "node group test",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], endpoints).await
}

/// The adapter against moto: an unknown node group reads as absent, an
/// update of the scaling configuration is answered with its id and applied.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_reads_and_scales_a_node_group() {
    crate::needs_emulators!();
    let fx = Fixture::new("ngadapt").await;
    let clouds = world::clouds().await;
    let (cluster, group) = names(&fx, STANDBY);
    let port = clouds
        .capacity
        .get("node_group", STANDBY)
        .expect("the EKS adapter");
    let missing = port
        .read(STANDBY, &format!("{cluster}/no-such-nodes"))
        .await;
    assert_eq!(missing.expect("an unknown node group is no error"), None);
    let no_cluster = port
        .read(STANDBY, &format!("no-such-cluster/{group}"))
        .await;
    assert_eq!(no_cluster.expect("an unknown cluster is no error"), None);
    assert_eq!(
        node_group(&fx, STANDBY).await,
        (STANDBY_SIZE, "ACTIVE".into())
    );
    let whole = format!("{cluster}/{group}");
    let one = port.set(STANDBY, &whole, Size::Count(3), "k");
    let one = one
        .await
        .expect_err("one count where three bounds are wanted");
    assert!(one.to_string().contains("min/desired/max"), "{one}");
    // moto applies the update at once (real EKS answers InProgress, which
    // the read follows as the node group's status).
    let set = port.set(STANDBY, &whole, Size::Bounds(ACTIVE_SIZE), "k");
    assert_eq!(set.await.expect("UpdateNodegroupConfig"), None);
    assert_eq!(
        node_group(&fx, STANDBY).await,
        (ACTIVE_SIZE, "ACTIVE".into())
    );
    let now = read(&fx, STANDBY).await;
    assert_eq!((now.serving, &now.change), (3, &Change::Settled), "{now:?}");
    // As status shows it: EKS counts no ready nodes.
    let shown = port.describe(STANDBY, &whole).await;
    let shown = shown.expect("DescribeNodegroup").expect("the node group");
    assert_eq!(
        (shown.capacity, shown.status.as_deref()),
        (ACTIVE_SIZE, Some("ACTIVE"))
    );
    // A drill's marks: tags on the node group's ARN, read back with it,
    // and taken off by key (each key, not only the first).
    assert!(now.handle.contains(":nodegroup/"), "{now:?}");
    let marks = std::collections::BTreeMap::from([
        ("drctl:drill-run".to_string(), "r1".to_string()),
        ("drctl:drill-restore".to_string(), "0/0/6".to_string()),
    ]);
    port.mark(STANDBY, &now, &marks).await.expect("TagResource");
    let tagged = read(&fx, STANDBY).await.marks;
    assert_eq!(
        tagged.get("drctl:drill-restore").map(String::as_str),
        Some("0/0/6")
    );
    let keys: Vec<String> = marks.keys().cloned().collect();
    port.unmark(STANDBY, &now, &keys)
        .await
        .expect("UntagResource");
    let untagged = read(&fx, STANDBY).await.marks;
    assert!(
        !untagged.keys().any(|k| k.starts_with("drctl:")),
        "every mark taken off"
    );
}

/// A failover to the standby raises its node group to the active size and
/// waits for it ACTIVE; `status` shows each region's size and status; a
/// failback finds the home node group already at size and sends nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_scales_the_target_node_group_up_and_status_shows_the_sizes() {
    crate::needs_emulators!();
    let fx = fixture("ngfo").await;
    let proxied = Proxied::start(false).await;

    let st = fx
        .drctl(&["status", "--plan", "orders", "--output", "json"])
        .await;
    let v = st.json();
    let rows = |v: &Value| -> Vec<(String, String, String)> {
        v["plans"][0]["regions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| {
                let region = r["region"].as_str().unwrap_or_default().to_string();
                r["compute"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |g| {
                        (
                            region.clone(),
                            format!(
                                "{}/{}/{}",
                                g["capacity"]["min"],
                                g["capacity"]["desired"],
                                g["capacity"]["max"]
                            ),
                            g["status"].as_str().unwrap_or_default().to_string(),
                        )
                    })
            })
            .collect()
    };
    let before = rows(&v);
    assert!(
        before.contains(&(HOME.into(), "2/3/6".into(), "ACTIVE".into()))
            && before.contains(&(STANDBY.into(), "0/0/6".into(), "ACTIVE".into())),
        "{before:?}\n{}",
        st.all()
    );
    let text = fx.drctl(&["status", "--plan", "orders"]).await;
    let (cluster, group) = names(&fx, STANDBY);
    assert!(
        text.out.contains(&format!(
            "nodes    {cluster}/{group} 0/0/6 (min/desired/max), ACTIVE"
        )),
        "{}",
        text.all()
    );

    let runs = fx.runs();
    let o = failover(&fx, STANDBY, &proxied.endpoints(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(
        node_group(&fx, STANDBY).await,
        (ACTIVE_SIZE, "ACTIVE".into())
    );
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let out = outputs(&show, "orders/raise:orders-nodes");
    assert_eq!(out["changed"], true, "{out:#}");
    assert_eq!(out["after"]["desired"], 3);
    assert_eq!(out["serving"], 3, "{out:#}");
    let scaled = |p: &Proxied| {
        p.log()
            .iter()
            .filter(|l| l.contains("/update-config"))
            .count()
    };
    assert_eq!(scaled(&proxied), 1, "{:#?}", proxied.log());

    let after = rows(
        &fx.drctl(&["status", "--plan", "orders", "--output", "json"])
            .await
            .json(),
    );
    assert!(
        after.contains(&(STANDBY.into(), "2/3/6".into(), "ACTIVE".into())),
        "{after:?}"
    );

    // Back home: its node group never went down, so nothing is sent. The
    // plan's failover also moved the Aurora writer: the old writer, now a
    // secondary, must publish its lag before the RPO gate lets it back.
    crate::aurora::until_lag(&fx, HOME, "orders-usw2").await;
    let runs = fx.runs();
    let o = failover(&fx, HOME, &proxied.endpoints(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let back = fx.new_run(&runs);
    let out = outputs(&fx.show(&back).await, "orders/raise:orders-nodes");
    assert_eq!(out["changed"], false, "{out:#}");
    assert_eq!(scaled(&proxied), 1, "the failback sent no update");
    assert_eq!(node_group(&fx, HOME).await, (ACTIVE_SIZE, "ACTIVE".into()));
}

/// A crash before and after the scaling step: the resume finishes the run
/// with the node group ACTIVE at the active size and the update sent once.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_the_scaling_step_is_resumed_with_the_update_sent_once() {
    crate::needs_emulators!();
    for when in ["before", "after"] {
        let fx = fixture("ngcrash").await;
        let proxied = Proxied::start(false).await;
        let step = "orders/raise:orders-nodes";
        let point = format!("{when}:{step}");
        let o = failover(
            &fx,
            STANDBY,
            &proxied.endpoints(),
            &["--inject-crash", &point],
        )
        .await;
        assert_eq!(o.code, Some(1), "{point}: {}", o.all());
        assert!(o.err.contains("injected crash point"), "{}", o.all());
        let runs = fx.runs();
        assert_eq!(runs.len(), 1, "{runs:?}");
        let run = runs.into_iter().next().unwrap_or_default();
        let want = if when == "before" {
            STANDBY_SIZE
        } else {
            ACTIVE_SIZE
        };
        assert_eq!(node_group(&fx, STANDBY).await.0, want, "{point}");

        let o = fx
            .drctl_with(
                &["runs", "resume", &run, "--output", "json"],
                &[],
                &proxied.endpoints(),
            )
            .await;
        assert_eq!(o.code, Some(0), "{point}: {}", o.all());
        assert_eq!(
            node_group(&fx, STANDBY).await,
            (ACTIVE_SIZE, "ACTIVE".into()),
            "{point}"
        );
        let show = fx.show(&run).await;
        assert_eq!(show["report"]["outcome"], "succeeded", "{point}");
        let recs = records(&show);
        assert!(recs.iter().any(|r| r["event"]["type"] == "resumed"));
        let succeeded = recs
            .iter()
            .filter(|r| r["event"]["type"] == "step_succeeded" && r["event"]["step"] == step)
            .count();
        assert_eq!(succeeded, 1, "{point}");
        let sent = proxied
            .log()
            .iter()
            .filter(|l| l.contains("/update-config"))
            .count();
        assert_eq!(sent, 1, "{point}: {:#?}", proxied.log());
        assert_eq!(fx.audit(&run).await.code, Some(0), "{point}");
    }
}

/// Sets the fixture's node group in `region` to `size` (moto applies it at once).
async fn set_size(fx: &Fixture, region: &str, size: Capacity) {
    let (cluster, group) = names(fx, region);
    let clouds = world::clouds().await;
    (clouds
        .capacity
        .get("node_group", region)
        .expect("the EKS adapter"))
    .set(
        region,
        &format!("{cluster}/{group}"),
        Size::Bounds(size),
        "k",
    )
    .await
    .expect("UpdateNodegroupConfig");
}

/// The `update-config` calls the proxy saw for the fixture's node group
/// in `region`.
fn updates_of(fx: &Fixture, proxied: &Proxied, region: &str) -> usize {
    let (_, group) = names(fx, region);
    let path = format!("/node-groups/{group}/update-config");
    proxied.log().iter().filter(|l| l.contains(&path)).count()
}

/// A drill of the plan raises the standby's node group to the active size
/// (its size before journaled first), and its cleanup returns it to
/// exactly the size it had (here not the plan's standby size); production's
/// node group is never written; the verdict does not say the node group
/// was not rehearsed.
#[tokio::test(flavor = "multi_thread")]
async fn a_drill_raises_the_standby_node_group_and_cleanup_returns_its_exact_size() {
    crate::needs_emulators!();
    let fx = fixture("ngdrill").await;
    let proxied = Proxied::start(false).await;
    let odd = Capacity {
        min: 1,
        desired: 1,
        max: 4,
    };
    set_size(&fx, STANDBY, odd).await;
    let home = node_group(&fx, HOME).await;
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
    let verdict = j["drill"]["verdicts"][0].to_string();
    assert!(!verdict.contains("not rehearse"), "{verdict}");
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let out = outputs(&show, "orders/drill-raise:orders-nodes");
    assert_eq!(out["before"]["desired"], 1, "{out:#}");
    assert_eq!(out["raised_to"]["min"], 2, "{out:#}");
    assert_eq!(out["raised_to"]["desired"], 3, "{out:#}");
    assert_eq!(out["raised_to"]["max"], 6, "{out:#}");
    let recs = records(&show);
    let nodes = |resource: &Value| resource["type"] == "raised" && resource["kind"] == "nodegroup";
    let point = recs
        .iter()
        .position(|r| nodes(&r["event"]["resource"]))
        .expect("the restore point is journaled");
    assert_eq!(recs[point]["event"]["type"], "drill_resource");
    assert_eq!(recs[point]["event"]["resource"]["restore"]["max"], 4);
    let cleaned: Vec<&Value> = recs
        .iter()
        .filter(|r| r["event"]["type"] == "cleanup")
        .collect();
    assert!(
        cleaned
            .iter()
            .any(|r| nodes(&r["event"]["resource"]) && r["event"]["result"] == "restored"),
        "{cleaned:#?}"
    );
    assert_eq!(node_group(&fx, STANDBY).await, (odd, "ACTIVE".into()));
    assert_eq!(node_group(&fx, HOME).await, home);
    assert_eq!(
        updates_of(&fx, &proxied, STANDBY),
        2,
        "raised, then returned"
    );
    assert_eq!(
        updates_of(&fx, &proxied, HOME),
        0,
        "production is never written"
    );
    assert_eq!(fx.audit(&run).await.code, Some(0));
}

/// A drill killed (kill -9) inside its node group update: held by the
/// proxy before it reached EKS (`Hang`), or after EKS applied it with its
/// answer held (`DelayAnswer`). The restore point was journaled and marked
/// on the node group first, so `runs resume` (first case), `drill sweep`
/// on the drill's state (second case) and `drill sweep` with the state
/// gone (third case: the marks alone) return the node group to exactly its
/// size before.
#[tokio::test(flavor = "multi_thread")]
async fn a_drill_killed_in_its_node_group_update_is_returned_by_resume_or_sweep() {
    crate::needs_emulators!();
    for (fault, then) in [
        (Fault::Hang, "resume"),
        (Fault::DelayAnswer(Duration::from_secs(600)), "sweep"),
        (
            Fault::DelayAnswer(Duration::from_secs(600)),
            "sweep without the journal",
        ),
    ] {
        let fx = fixture("ngkill").await;
        let proxied = Proxied::start(false).await;
        let (_, group) = names(&fx, STANDBY);
        let update = Match::PathContains(format!("/node-groups/{group}/update-config"));
        proxied
            .proxy_for("AWS_ENDPOINT_URL_EKS")
            .inject(update.clone(), fault.clone(), 1);
        let runs = fx.runs();
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
        let eks = proxied.proxy_for("AWS_ENDPOINT_URL_EKS");
        world::wait_for(
            &format!("{then}: the drill's node group update"),
            world::PATIENCE,
            async || {
                if eks.requests(update.clone()) > 0 {
                    return Ok(());
                }
                world::running(&mut child, "the drill", "its update").await;
                Err(eks.log().join("\n"))
            },
        )
        .await;
        child.kill().await.expect("kill -9");
        let run = fx.new_run(&runs);
        let want = match fault {
            Fault::Hang => STANDBY_SIZE,
            _ => ACTIVE_SIZE,
        };
        assert_eq!(node_group(&fx, STANDBY).await.0, want, "{then}");

        if then == "resume" {
            let o = fx
                .drctl(&["runs", "resume", &run, "--output", "json"])
                .await;
            let j = o.json();
            assert_eq!(j["drill"]["cleanup"]["complete"], true, "{}", o.all());
            assert_eq!(j["drill"]["verdicts"][0]["verdict"], "FAIL", "{}", o.all());
        } else {
            if then == "sweep without the journal" {
                std::fs::remove_dir_all(fx.state_dir()).expect("remove the state");
            }
            let o = fx
                .drctl(&[
                    "drill", "sweep", "--plan", "orders", "--all", "--output", "json",
                ])
                .await;
            assert_eq!(o.code, Some(0), "{}", o.all());
            let cleaned = o.json()["cleaned"].as_array().cloned().unwrap_or_default();
            assert!(
                cleaned.iter().any(|c| c["resource"]["type"] == "raised"
                    && c["resource"]["kind"] == "nodegroup"
                    && c["resource"]["restore"]["desired"] == 0
                    && c["result"] == "restored"
                    && c["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains("read back"))),
                "{cleaned:#?}"
            );
        }
        assert_eq!(
            node_group(&fx, STANDBY).await,
            (STANDBY_SIZE, "ACTIVE".into()),
            "{then}"
        );
        assert_eq!(node_group(&fx, HOME).await.0, ACTIVE_SIZE, "{then}");
    }
}
