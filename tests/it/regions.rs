//! Three regions in the emulator world (issue 17 §2): `checkout` (home
//! us-east-1, standbys us-west-2 then eu-west-1, a data-plane switch) fails
//! over to its **second** standby, and `status` reads three regions with
//! one of them dead.
//!
//! The setup a data-plane switch needs (controls, health checks, failover
//! records) is made the one way it is made: `drctl dns prepare`. What the
//! names resolve to is asked of the emulator world's DNS data plane
//! (`DRCTL_DNS_SERVER` in the endpoints file); a world without one cannot
//! verify a data-plane switch by resolution, and the assertions that need
//! it say so and are skipped.

use drctl::cloud::control::{Control, ControlState};
use drctl::cloud::{DbRole, ObjectUrl};
use serde_json::Value;

use crate::fixture::{Fixture, Proxied};
use crate::proxy::{Fault, Match};
use crate::world::{self, HOME, STANDBY, THIRD};

/// A seeded world with the checkout plan beside payments and ledger, and
/// its data-plane setup made by `drctl dns prepare --plan checkout`.
pub(crate) async fn checkout_world(prefix: &str) -> Fixture {
    let fx = Fixture::new(prefix).await;
    crate::cli::add_suffixed_plan(fx.plans.path(), "checkout.toml", &fx.suffix);
    let ran = fx
        .drctl(&["dns", "prepare", "--plan", "checkout", "--output", "json"])
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let done = ran.json().to_string();
    for tag in ["use1", "usw2", "euw1"] {
        assert!(
            done.contains(&fx.id(&format!("drctl-control-{tag}"))),
            "prepare made or found {tag}'s control: {done}"
        );
    }
    fx
}

/// The DNS data plane's address, when the world has one.
fn dns_server() -> Option<String> {
    world::vars()
        .iter()
        .find(|(k, _)| k.as_str() == "DRCTL_DNS_SERVER" || k.as_str() == "DRCTL_DNS_SERVERS")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

/// The state of `region`'s checkout control, read through that region.
async fn control(fx: &Fixture, region: &str, tag: &str) -> Option<ControlState> {
    let bucket = fx.id(&format!("drctl-control-{tag}"));
    let url = ObjectUrl::parse(&format!("s3://{bucket}/checkout/checkout")).expect("url");
    let body = world::clouds()
        .await
        .objects
        .get(region, &url)
        .await
        .expect("GetObject")?;
    Control::parse(&body).map(|c| c.state)
}

async fn role(region: &str, id: &str) -> DbRole {
    world::clouds()
        .await
        .database
        .describe_instance(region, id)
        .await
        .expect("DescribeDBInstances")
        .unwrap_or_else(|| panic!("{id} exists in {region}"))
        .role
}

async fn capacity(region: &str, group: &str) -> (i32, i32, i32) {
    let out = world::sdk()
        .await
        .autoscaling(region)
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    let g = &out.auto_scaling_groups()[0];
    (
        g.min_size().unwrap_or(-1),
        g.desired_capacity().unwrap_or(-1),
        g.max_size().unwrap_or(-1),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_fails_over_to_its_second_standby() {
    crate::needs_emulators!();
    let fx = checkout_world("reg3").await;
    // Before: home serves, both standbys drain.
    assert_eq!(
        control(&fx, STANDBY, "use1").await,
        Some(ControlState::Serve)
    );
    assert_eq!(control(&fx, HOME, "usw2").await, Some(ControlState::Drain));
    assert_eq!(control(&fx, THIRD, "euw1").await, Some(ControlState::Drain));

    let before = fx.runs();
    let server = dns_server();
    let mut args = vec![
        "failover",
        "--plan",
        "checkout",
        "--to",
        THIRD,
        "--approve",
        "integration test",
    ];
    if server.is_none() {
        // verify-resolution would ask the zone's own (unreachable) servers
        // for the rest of the RTO budget: bound it.
        args.extend(["--step-timeout", "15s"]);
    }
    let ran = fx.drctl(&args).await;
    match &server {
        Some(_) => assert_eq!(ran.code, Some(0), "{}", ran.all()),
        None => eprintln!(
            "SKIPPED: the run's exit code and the resolution checks: the endpoints \
             file names no DRCTL_DNS_SERVER (the DNS data plane), so the switch \
             cannot be verified by resolution (exit {:?})",
            ran.code
        ),
    }

    // The world, read back without drctl's run: eu-west-1 took over.
    assert_eq!(
        role(THIRD, &fx.id("checkout-db-euw1")).await,
        DbRole::Primary
    );
    assert!(matches!(
        role(HOME, &fx.id("checkout-db-usw2")).await,
        DbRole::Replica(_)
    ));
    assert_eq!(
        capacity(THIRD, &fx.id("checkout-web-euw1")).await,
        (2, 3, 6)
    );
    assert_eq!(capacity(HOME, &fx.id("checkout-web-usw2")).await, (0, 1, 6));
    assert_eq!(control(&fx, THIRD, "euw1").await, Some(ControlState::Serve));
    assert_eq!(control(&fx, HOME, "usw2").await, Some(ControlState::Drain));
    assert_eq!(
        control(&fx, STANDBY, "use1").await,
        Some(ControlState::Drain)
    );
    // payments and ledger were not part of it.
    assert!(matches!(
        role(THIRD, &fx.id("payments-db-euw1")).await,
        DbRole::Replica(_)
    ));

    let Some(server) = server else { return };
    let run = fx.new_run(&before);
    let show = fx.show(&run).await;
    let resolved = crate::fixture::records(&show)
        .into_iter()
        .rev()
        .find(|r| {
            r["event"]["type"] == "step_succeeded"
                && r["event"]["step"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("checkout/verify-resolution"))
        })
        .map(|r| r["event"]["outputs"].clone())
        .unwrap_or(Value::Null);
    assert!(
        resolved.to_string().contains(&fx.host("checkout-euw1")),
        "verify-resolution saw {} at {server}: {resolved:#}",
        fx.host("checkout-euw1")
    );
    let answer = world::clouds()
        .await
        .resolver
        .resolve(&fx.zone, &fx.host("checkout"), "CNAME")
        .await
        .expect("resolve");
    assert_eq!(answer, [fx.host("checkout-euw1")], "asked of {server}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_three_regions_with_one_dead() {
    crate::needs_emulators!();
    let fx = checkout_world("reg3st").await;
    // us-west-2 goes silent: every request signed for it is dropped.
    let proxied = Proxied::start(false).await;
    for var in ["AWS_ENDPOINT_URL_ROUTE_53", "AWS_ENDPOINT_URL_RDS"] {
        proxied
            .proxy_for(var)
            .inject(Match::Region(HOME), Fault::Drop, usize::MAX);
    }
    let endpoints = proxied.endpoints_with(|k, v| match k {
        "AWS_REGION" | "AWS_DEFAULT_REGION" => Some(STANDBY.to_string()),
        _ => Some(v.to_string()),
    });
    let t0 = std::time::Instant::now();
    let ran = fx
        .drctl_with(
            // Long enough for the live regions' reads on a busy emulator
            // (CloudWatch took over 3 s beside a cold build and a suite).
            &["status", "--output", "json", "--read-timeout", "10s"],
            &[],
            &endpoints,
        )
        .await;
    // Unbounded, the dropped reads would wait for the SDK's 30 s attempt
    // timeout; the bound leaves a busy machine room above the 10 s.
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(25),
        "bounded by the read timeout: {:?}",
        t0.elapsed()
    );
    let report = ran.json();
    let plan = |name: &str| {
        report["plans"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["plan"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no plan {name}: {report:#}"))
    };
    let region = |p: &Value, r: &str| {
        p["regions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["region"] == r))
            .cloned()
            .unwrap_or_else(|| panic!("no region {r}: {p:#}"))
    };
    for name in ["payments", "checkout"] {
        let p = plan(name);
        let regions: Vec<&str> = (p["regions"].as_array().into_iter().flatten())
            .filter_map(|r| r["region"].as_str())
            .collect();
        assert_eq!(regions.len(), 3, "{p:#}");
        assert!(
            region(&p, HOME)["unreachable"].is_string(),
            "{name}: {HOME} is unreachable: {p:#}"
        );
    }
    // payments: home dead, the two standbys read as usual: it can fail
    // over, so it is ready.
    let payments = plan("payments");
    assert_eq!(payments["ready"], true, "{payments:#}");
    for r in [STANDBY, THIRD] {
        let standby = region(&payments, r);
        assert_eq!(standby["unreachable"], Value::Null, "{payments:#}");
        assert_eq!(standby["databases"][0]["role"], "replica", "{payments:#}");
    }
    // checkout: home alive and active, us-west-2 dead, eu-west-1 ready.
    let checkout = plan("checkout");
    assert_eq!(checkout["active_region"], STANDBY, "{checkout:#}");
    assert_eq!(checkout["ready"], false, "a standby is dead: {checkout:#}");
    let euw1 = region(&checkout, THIRD);
    assert_eq!(euw1["unreachable"], Value::Null, "{checkout:#}");
    assert_eq!(euw1["databases"][0]["role"], "replica", "{checkout:#}");
    assert_eq!(euw1["ready"], true, "{checkout:#}");
    if dns_server().is_some() {
        assert_eq!(
            checkout["dns"][0]["points_to"], STANDBY,
            "checkout resolves home: {checkout:#}"
        );
    } else {
        eprintln!("SKIPPED: checkout's DNS answer: no DRCTL_DNS_SERVER in the endpoints file");
    }
}
