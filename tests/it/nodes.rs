//! EKS managed node groups (`[[node_group]]`) against moto's EKS: the
//! adapter's reads and update, a failover that scales the target's node
//! group up (and a failback that finds it already at size), `status`
//! showing each node group's size and status, and a crash at the scaling
//! step resumed with the update sent once.

use std::path::Path;

use drctl::cloud::{Capacity, UpdateStatus};
use serde_json::Value;

use crate::fixture::{Fixture, Proxied, outputs, records};
use crate::world::{self, HOME, STANDBY};

/// Region tags of the reference world's names (`localstack/seed`).
const TAGS: [(&str, &str); 3] = [
    ("us-west-2", "usw2"),
    ("us-east-1", "use1"),
    ("eu-west-1", "euw1"),
];

/// Writes `plans/orders-nodes.toml` into the fixture's plans, renamed for
/// its world.
fn add_orders_nodes(dir: &Path, suffix: &str) {
    let plans = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut t = std::fs::read_to_string(plans.join("orders-nodes.toml")).expect("reference plan");
    for (_, tag) in TAGS {
        for base in ["orders-eks", "orders-nodes"] {
            let name = format!("{base}-{tag}");
            t = t.replace(&format!("{name}/"), &format!("{name}-{suffix}/"));
            t = t.replace(&format!("{name}\""), &format!("{name}-{suffix}\""));
        }
    }
    t = t.replace(
        "//drctl-evidence-use1/",
        &format!("//drctl-evidence-use1-{suffix}/"),
    );
    std::fs::write(dir.join("orders-nodes.toml"), t).expect("write plan");
}

async fn fixture(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    add_orders_nodes(fx.plans.path(), &fx.suffix);
    fx
}

fn tag(region: &str) -> &'static str {
    TAGS.iter()
        .find(|(r, _)| *r == region)
        .map(|(_, t)| *t)
        .expect("a region of the world")
}

/// The node group of `region` in the fixture's world, read through the
/// adapter: (min, desired, max) and status.
async fn node_group(fx: &Fixture, region: &str) -> (Capacity, String) {
    let (cluster, group) = names(fx, region);
    let g = world::clouds()
        .await
        .node_groups
        .describe_node_group(region, &cluster, &group)
        .await
        .expect("DescribeNodegroup")
        .unwrap_or_else(|| panic!("{cluster}/{group} exists in {region}"));
    (g.capacity, g.status)
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
        "orders-nodes",
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
    let missing = clouds
        .node_groups
        .describe_node_group(STANDBY, &cluster, "no-such-nodes")
        .await
        .expect("an unknown node group is no error");
    assert_eq!(missing, None);
    let no_cluster = clouds
        .node_groups
        .describe_node_group(STANDBY, "no-such-cluster", &group)
        .await
        .expect("an unknown cluster is no error");
    assert_eq!(no_cluster, None);
    assert_eq!(
        node_group(&fx, STANDBY).await,
        (STANDBY_SIZE, "ACTIVE".into())
    );
    let u = clouds
        .node_groups
        .scale_node_group(STANDBY, &cluster, &group, ACTIVE_SIZE)
        .await
        .expect("UpdateNodegroupConfig");
    assert!(!u.id.is_empty());
    // moto applies the update at once (real EKS answers InProgress).
    assert_eq!(u.status, UpdateStatus::Successful, "{u:?}");
    assert_eq!(
        node_group(&fx, STANDBY).await,
        (ACTIVE_SIZE, "ACTIVE".into())
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
        .drctl(&["status", "--plan", "orders-nodes", "--output", "json"])
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
    let text = fx.drctl(&["status", "--plan", "orders-nodes"]).await;
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
    let out = outputs(&show, "orders-nodes/scale-nodes:orders-nodes");
    assert_eq!(out["changed"], true, "{out:#}");
    assert_eq!(out["status"], "ACTIVE");
    assert_eq!(out["after"]["desired"], 3);
    assert!(
        out["update"].as_str().is_some_and(|u| !u.is_empty()),
        "{out:#}"
    );
    let scaled = |p: &Proxied| {
        p.log()
            .iter()
            .filter(|l| l.contains("/update-config"))
            .count()
    };
    assert_eq!(scaled(&proxied), 1, "{:#?}", proxied.log());

    let after = rows(
        &fx.drctl(&["status", "--plan", "orders-nodes", "--output", "json"])
            .await
            .json(),
    );
    assert!(
        after.contains(&(STANDBY.into(), "2/3/6".into(), "ACTIVE".into())),
        "{after:?}"
    );

    // Back home: its node group never went down, so nothing is sent.
    let runs = fx.runs();
    let o = failover(&fx, HOME, &proxied.endpoints(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let back = fx.new_run(&runs);
    let out = outputs(
        &fx.show(&back).await,
        "orders-nodes/scale-nodes:orders-nodes",
    );
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
        let step = "orders-nodes/scale-nodes:orders-nodes";
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
