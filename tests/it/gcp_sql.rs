//! Cloud SQL (`[[cloud_sql]]`) against the world's Google Cloud
//! (`localstack/gcp_emu.py`), through Google's own crates: the adapter's
//! reads, operations and lag; a failover of `plans/gcp/orders-gcp.toml`
//! to us-east4 with its RPO measured from `replica_lag`; the RPO gate's
//! refusal on a large lag; the home region (us-central1) dropped at the
//! fault proxy; a crash around the step resumed with `promoteReplica` sent
//! once.
//!
//! Each test seeds its own pair (`orders-sql-SUFFIX` in us-central1,
//! `orders-sql-use4-SUFFIX` its DR replica in us-east4) and the plan's
//! Cloud Run services (`orders-api-SUFFIX`) through the emulator's admin
//! API, and writes the plan renamed for them.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use drctl::cloud::DbRole;
use serde_json::json;

use crate::fixture::{Fixture, Proxied, outputs, records};
use crate::proxy::{Fault, Gate, Match};
use crate::world;

const PROJECT: &str = "drctl-emu";
const HOME: &str = "us-central1";
const TARGET: &str = "us-east4";
const STEP: &str = "orders-gcp/promote:orders-sql";

/// The emulator's record of the calls made on `instance` with `suffix` in
/// their path (`/promoteReplica`).
async fn calls(instance: &str, suffix: &str) -> usize {
    let calls = world::gcp_calls().await;
    calls
        .iter()
        .filter(|c| {
            c["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!("/instances/{instance}{suffix}")))
        })
        .count()
}

pub(crate) struct Pair {
    pub(crate) primary: String,
    pub(crate) replica: String,
}

/// Seeds the pair for `fx` (the replica's lag `lag` seconds, its points
/// stamped 5 s back) and the plan's Cloud Run services
/// ([`crate::gcp_run::seed_api`]), and writes `orders-gcp.toml` renamed
/// for them.
pub(crate) async fn seed(fx: &Fixture, lag: f64) -> Pair {
    let pair = Pair {
        primary: fx.id("orders-sql"),
        replica: fx.id("orders-sql-use4"),
    };
    world::gcp_admin(
        "/emu/instances",
        json!({"project": PROJECT, "name": pair.primary, "region": HOME}),
    )
    .await;
    world::gcp_admin(
        "/emu/instances",
        json!({"project": PROJECT, "name": pair.replica, "region": TARGET,
               "masterInstanceName": pair.primary, "drReplica": true, "lag": lag}),
    )
    .await;
    world::gcp_admin(
        "/emu/lag",
        json!({"project": PROJECT, "name": pair.replica, "seconds": lag, "ago": 5}),
    )
    .await;
    // The plan's managed instance groups, this test's own (raise).
    let (home, target) = (fx.id("orders-workers"), fx.id("orders-workers-use4"));
    for (name, region, size) in [(&home, HOME, 3), (&target, TARGET, 1)] {
        world::gcp_admin(
            "/emu/compute/groups",
            json!({"project": PROJECT, "region": region, "name": name, "size": size}),
        )
        .await;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/gcp/orders-gcp.toml");
    let t = std::fs::read_to_string(src).expect("the GCP plan");
    let t = t
        .replace(
            "us-central1 = \"orders-workers\"",
            &format!("us-central1 = \"{home}\""),
        )
        .replace(
            "us-east4 = \"orders-workers-use4\"",
            &format!("us-east4 = \"{target}\""),
        )
        .replace(
            "us-central1 = \"orders-sql\"",
            &format!("us-central1 = \"{}\"", pair.primary),
        )
        .replace(
            "us-east4 = \"orders-sql-use4\"",
            &format!("us-east4 = \"{}\"", pair.replica),
        )
        .replace(
            "gs://drctl-evidence/",
            &format!("gs://{}/", fx.id("drctl-evidence")),
        );
    let t = crate::gcp_run::renamed(&t, &crate::gcp_run::seed_api(fx).await);
    // The plan's Cloud DNS record, in this test's own managed zone.
    let t = crate::gcp_dns::renamed(&t, &crate::gcp_dns::seed_zone(fx).await);
    std::fs::write(fx.plans.path().join("orders-gcp.toml"), t).expect("write plan");
    pair
}

async fn role(name: &str) -> DbRole {
    (world::clouds().await.cloud_sql)
        .describe_sql(TARGET, PROJECT, name)
        .await
        .expect("instances.get")
        .unwrap_or_else(|| panic!("{name} exists"))
        .role
}

async fn failover(fx: &Fixture, endpoints: &Path, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "orders-gcp",
        "--to",
        TARGET,
        "--approve",
        "cloud sql test",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], endpoints).await
}

/// The adapter through Google's crates: an unknown instance reads as
/// absent, the pair with its roles, the replica's lag from Monitoring, a
/// primary's lag unknown (no points, never zero), and a refused promotion
/// as Google words it.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_reads_instances_lag_and_refusals_through_googles_crates() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqladapt").await;
    let pair = seed(&fx, 2.5).await;
    let sql = world::clouds().await.cloud_sql;
    assert_eq!(
        sql.describe_sql(HOME, PROJECT, "no-such-instance")
            .await
            .expect("a missing instance is no error"),
        None
    );
    let p = (sql.describe_sql(HOME, PROJECT, &pair.primary).await)
        .expect("get")
        .expect("exists");
    assert_eq!(
        (p.role, p.state.as_str(), p.region.as_str()),
        (DbRole::Primary, "RUNNABLE", HOME)
    );
    assert_eq!(p.replicas, std::slice::from_ref(&pair.replica));
    let r = (sql.describe_sql(TARGET, PROJECT, &pair.replica).await)
        .expect("get")
        .expect("exists");
    assert_eq!(r.role, DbRole::Replica(pair.primary.clone()));
    assert!(r.dr_replica);
    assert!(
        r.endpoint
            .as_deref()
            .is_some_and(|e| e.ends_with(".sql.goog")),
        "{r:?}"
    );

    let lag = (sql.sql_replica_lag(TARGET, PROJECT, &pair.replica, Duration::from_secs(300)))
        .await
        .expect("timeSeries.list");
    assert!(lag.datapoints >= 1, "{lag:?}");
    assert_eq!(lag.latest.map(|(d, _)| d.as_secs_f64()), Some(2.5));
    let none = (sql.sql_replica_lag(HOME, PROJECT, &pair.primary, Duration::from_secs(300)))
        .await
        .expect("timeSeries.list");
    assert_eq!(
        (none.datapoints, none.max),
        (0, None),
        "unknown, never zero"
    );

    let e = sql
        .promote_sql(HOME, PROJECT, &pair.primary, false)
        .await
        .expect_err("a primary is not promoted");
    assert_eq!(e.code.as_deref(), Some("FAILED_PRECONDITION"), "{e:?}");
    let w = (sql.recovery_window(HOME, PROJECT, &pair.primary).await).expect("recovery time");
    assert!(w.earliest.is_some_and(|e| e < w.latest));

    // The fence at the wire: under a lease no longer ours the write is not
    // handed to the crate (nothing reaches the emulator); reads still go.
    let fence = drctl::cloud::wire::WireFence::new(|| Err("lease lost".to_string()));
    let (read, write) = fence
        .guard(async {
            (
                sql.describe_sql(TARGET, PROJECT, &pair.replica).await,
                sql.promote_sql(TARGET, PROJECT, &pair.replica, true).await,
            )
        })
        .await;
    assert!(read.is_ok_and(|r| r.is_some()));
    let e = write.expect_err("fenced");
    assert_eq!(e.kind, drctl::cloud::ErrorKind::Fenced, "{e:?}");
    assert_eq!(calls(&pair.replica, "/promoteReplica").await, 0);
}

/// `drctl failover --to us-east4`: the DR replica fails over
/// (`promoteReplica` with `failover=true`), the step waits on the
/// operation until DONE, and the run's RPO is the replica_lag read before.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_promotes_the_dr_replica_with_its_lag_as_the_rpo() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqlfo").await;
    let pair = seed(&fx, 3.5).await;
    let runs = fx.runs();
    let o = failover(&fx, &world::endpoints_file(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(role(&pair.replica).await, DbRole::Primary);
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let out = outputs(&show, STEP);
    assert_eq!(out["path"], "dr-failover", "{out:#}");
    assert_eq!(out["lag_seconds"], 3.5, "{out:#}");
    assert!(out["operation"].as_str().is_some_and(|o| !o.is_empty()));
    assert_eq!(show["report"]["outcome"], "succeeded");
    let rpo = &show["report"]["measures"][0]["rpo"];
    assert_eq!(rpo["seconds"].as_f64(), Some(3.5), "{:#}", show["report"]);
    assert!(
        rpo["basis"]
            .as_str()
            .is_some_and(|b| b.contains("replica_lag")),
        "{rpo:#}"
    );
    assert_eq!(calls(&pair.replica, "/promoteReplica").await, 1);
}

/// The old primary's zone down (the emulator holds its operations): the
/// failover succeeds (exit 0) with Cloud SQL's reconfiguration of the old
/// primary pending after the plan's `old_primary_wait`, named in the run's
/// warnings and outcome (`pending`); the old primary has not rejoined.
/// With the zone back, `runs resume` follows the same operation to done
/// and the run ends succeeded, the old primary a replica of the new one;
/// a second resume has nothing left to do.
#[tokio::test(flavor = "multi_thread")]
async fn with_the_old_primarys_zone_down_the_failover_ends_pending_and_a_resume_settles_it() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqlold").await;
    let pair = seed(&fx, 1.0).await;
    let plan = fx.plans.path().join("orders-gcp.toml");
    let t = std::fs::read_to_string(&plan).expect("the plan");
    let t = t.replacen(
        "dr_replica = true\n",
        "dr_replica = true\nold_primary_wait = \"2s\"\n",
        1,
    );
    assert!(t.contains("old_primary_wait"), "{t}");
    std::fs::write(&plan, t).expect("write plan");
    let outage = |down: bool| {
        world::gcp_admin(
            "/emu/outage",
            json!({"project": PROJECT, "name": pair.primary, "down": down}),
        )
    };
    outage(true).await;
    let runs = fx.runs();
    let endpoints = world::endpoints_file();
    let o = failover(&fx, &endpoints, &["--output", "json"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let j = o.json();
    assert_eq!(j["outcome"], "pending", "{j:#}");
    let old_side = format!(
        "RECONFIGURE_OLD_PRIMARY of the old primary {} in {HOME}",
        pair.primary
    );
    let warned = (j["warnings"].as_array().expect("warnings").iter())
        .filter_map(|w| w.as_str())
        .any(|w| w.contains(&old_side) && w.contains("is pending"));
    assert!(warned, "{j:#}");
    assert_eq!(role(&pair.replica).await, DbRole::Primary);
    assert_eq!(role(&pair.primary).await, DbRole::Primary, "not rejoined");
    let run = fx.new_run(&runs);
    let settle = "orders-gcp/settle-sql:orders-sql";
    let pending = outputs(&fx.show(&run).await, settle);
    assert_eq!(pending["state"], "pending", "{pending:#}");
    let operation = pending["operation"].as_str().expect("found").to_string();

    outage(false).await;
    let args = ["runs", "resume", &run, "--output", "json"];
    let o = fx.drctl_with(&args, &[], &endpoints).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(o.json()["outcome"], "succeeded", "{}", o.all());
    let done = outputs(&fx.show(&run).await, settle);
    assert_eq!(
        (&done["state"], done["operation"].as_str()),
        (&json!("done"), Some(operation.as_str())),
        "{done:#}"
    );
    assert_eq!(
        role(&pair.primary).await,
        DbRole::Replica(pair.replica.clone())
    );
    assert_eq!(
        calls(&pair.replica, "/promoteReplica").await,
        1,
        "sent once"
    );
    let o = fx.drctl_with(&args, &[], &endpoints).await;
    assert_ne!(o.code, Some(0), "nothing left: {}", o.all());
    assert!(o.all().contains("nothing to resume"), "{}", o.all());
}

/// `status --plan orders-gcp --output json`: where the record `id`
/// points, and the notes on the Cloud SQL copy in `region`.
async fn status_of(fx: &Fixture, id: &str, region: &str) -> (Option<String>, Vec<String>) {
    let st = fx
        .drctl(&["status", "--plan", "orders-gcp", "--output", "json"])
        .await;
    let v = st.json();
    let p = &v["plans"][0];
    let dns = (p["dns"].as_array().into_iter().flatten()).find(|d| d["id"] == id);
    let points = dns.and_then(|d| d["points_to"].as_str().map(str::to_string));
    let notes = (p["regions"].as_array().into_iter().flatten())
        .filter(|r| r["region"] == region || r["gcp_region"] == region)
        .flat_map(|r| r["databases"].as_array().cloned().unwrap_or_default())
        .flat_map(|d| d["notes"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    (points, notes)
}

/// Issue 40: the pair's cluster has a write endpoint
/// (`replicationCluster.psaWriteEndpoint`). A Route 53 record that
/// follows the database is switched to the write endpoint, not the DR
/// replica's own name; the name resolves (the world's DNS, as a client
/// asks it) to the new primary's address after a planned failover (a
/// switchover); `status` says the record points at the target, where the
/// primary is, and names the write endpoint.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_that_follows_a_write_endpoint_resolves_to_the_new_primary_after_a_switchover() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqlwep").await;
    let pair = seed(&fx, 0.5).await;
    let given = world::gcp_admin(
        "/emu/sql/write-endpoints",
        json!({"project": PROJECT, "name": pair.primary}),
    )
    .await;
    let endpoint = given["name"]
        .as_str()
        .expect("a write endpoint")
        .to_string();
    let name = fx.host("orders-db");
    let plan = fx.plans.path().join("orders-gcp.toml");
    let mut t = std::fs::read_to_string(&plan).expect("the plan");
    t.push_str(&format!(
        "\n[[dns]]\nid = \"orders-db\"\nzone = \"{}\"\nname = \"{name}\"\ntype = \"CNAME\"\nttl = 5\nswitch = \"upsert\"\nfollows = \"orders-sql\"\n",
        fx.zone
    ));
    std::fs::write(&plan, t).expect("write plan");
    let (_, notes) = status_of(&fx, "orders-db", TARGET).await;
    let said = endpoint.trim_end_matches('.');
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&format!("write endpoint {said}"))),
        "{notes:?}"
    );

    let o = failover(&fx, &world::endpoints_file(), &["--planned"]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(role(&pair.replica).await, DbRole::Primary);
    let resolver = world::clouds().await.resolver;
    let cname = resolver
        .resolve(&fx.zone, &name, "CNAME")
        .await
        .expect("the record");
    assert_eq!(cname.len(), 1, "{cname:?}");
    assert!(
        cname[0].trim_end_matches('.').eq_ignore_ascii_case(said),
        "the record names the write endpoint: {cname:?}"
    );
    let new_primary = (world::clouds().await.cloud_sql)
        .describe_sql(TARGET, PROJECT, &pair.replica)
        .await
        .expect("instances.get")
        .expect("the new primary");
    let url = format!(
        "{}/v1/projects/{PROJECT}/instances/{}",
        world::gcp_endpoint(),
        pair.replica
    );
    let raw: serde_json::Value = (reqwest::get(url).await.expect("instances.get"))
        .json()
        .await
        .expect("JSON");
    let ip = raw["ipAddresses"][0]["ipAddress"]
        .as_str()
        .expect("its address")
        .to_string();
    assert_eq!(new_primary.write_endpoint.as_deref(), Some(said));
    let zone = "global.sql-psa.goog.";
    let mut answer = Vec::new();
    for _ in 0..40 {
        answer = resolver
            .resolve(zone, &endpoint, "A")
            .await
            .unwrap_or_default();
        if answer == [ip.clone()] {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        answer,
        [ip],
        "the write endpoint resolves to the new primary"
    );
    let (points, _) = status_of(&fx, "orders-db", TARGET).await;
    assert_eq!(
        points.as_deref(),
        Some(TARGET),
        "status: where the primary is"
    );
}

/// A lag beyond the tier's RPO: the gate refuses and nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn the_rpo_gate_refuses_a_large_lag() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqlgate").await;
    let pair = seed(&fx, 7200.0).await;
    let o = failover(&fx, &world::endpoints_file(), &[]).await;
    assert_eq!(o.code, Some(3), "refused by the RPO gate: {}", o.all());
    assert!(
        o.err
            .contains(&format!("replica lag of {} in {TARGET}", pair.replica)),
        "{}",
        o.all()
    );
    assert_eq!(calls(&pair.replica, "/promoteReplica").await, 0);
    assert!(matches!(role(&pair.replica).await, DbRole::Replica(_)));
}

/// Issue 40: `replica_lag` measures only what the replica received and has
/// not applied; what it has not received yet is `network_lag`. A replica
/// applying at once (1 s) but two hours behind on the network was let
/// through the RPO gate. The delay is the two added: refused, nothing sent.
#[tokio::test(flavor = "multi_thread")]
async fn regression_the_rpo_gate_let_through_a_network_lag_replica_lag_hides() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqlnet").await;
    let pair = seed(&fx, 1.0).await;
    world::gcp_admin(
        "/emu/lag",
        json!({"project": PROJECT, "name": pair.replica, "seconds": 7200.0,
               "metric": "network_lag", "ago": 5}),
    )
    .await;
    let o = failover(&fx, &world::endpoints_file(), &[]).await;
    assert_eq!(o.code, Some(3), "refused by the RPO gate: {}", o.all());
    assert!(
        o.err
            .contains(&format!("replica lag of {} in {TARGET}", pair.replica)),
        "{}",
        o.all()
    );
    assert_eq!(calls(&pair.replica, "/promoteReplica").await, 0);
    assert!(matches!(role(&pair.replica).await, DbRole::Replica(_)));
}

/// The home region down: Google's APIs are global endpoints, so the proxy
/// drops every request about us-central1: its Compute and Cloud Run paths
/// (`/regions/us-central1/`, `/locations/us-central1/`) and the home
/// instance's (its name in the path, `/instances/NAME` and
/// `/instances/NAME/...`). `drctl failover --to us-east4` of the whole GCP
/// plan reads and acts in us-east4 only and succeeds (the replica
/// promoted, the group resized, the service's floor raised); the side read
/// of the home instance fails bounded.
#[tokio::test(flavor = "multi_thread")]
async fn the_gcp_plan_fails_over_with_us_central1_dropped_at_the_proxy() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqldown").await;
    let pair = seed(&fx, 1.0).await;
    let proxied = Proxied::start(false).await;
    let gcp = proxied.proxy_for("DRCTL_GCP_ENDPOINT");
    for tail in ["?", "/"] {
        gcp.inject(
            Match::PathContains(format!("/instances/{}{tail}", pair.primary)),
            Fault::Drop,
            usize::MAX,
        );
    }
    for path in [format!("/regions/{HOME}/"), format!("/locations/{HOME}/")] {
        gcp.inject(Match::PathContains(path), Fault::Drop, usize::MAX);
    }
    let runs = fx.runs();
    let o = failover(&fx, &proxied.endpoints(), &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(role(&pair.replica).await, DbRole::Primary);
    let group = world::instance_groups()
        .describe_mig(TARGET, PROJECT, &fx.id("orders-workers-use4"))
        .await
        .expect("the target's group")
        .expect("exists");
    assert_eq!(group.target_size, 3, "{group:?}");
    let api = world::cloud_run()
        .describe_run(TARGET, PROJECT, &fx.id("orders-api"))
        .await
        .expect("the target's service")
        .expect("exists");
    assert_eq!(api.floor, 3, "{api:?}");
    let home_writes: Vec<String> = (proxied.writes().into_iter())
        .filter(|l| l.contains(HOME) || l.contains(&format!("/instances/{}/", pair.primary)))
        .collect();
    assert!(home_writes.is_empty(), "{home_writes:#?}");
    let show = fx.show(&fx.new_run(&runs)).await;
    assert_eq!(outputs(&show, STEP)["path"], "dr-failover");
    let sent: Vec<String> = gcp.log();
    assert!(
        sent.iter()
            .any(|l| l.contains(&format!("/instances/{}/promoteReplica", pair.replica))),
        "{sent:#?}"
    );
}

/// Fails over orders-gcp through `proxied` with `write` (the step's first
/// write) held at the proxy, and kills drctl (kill -9) with it in flight;
/// then resumes the run through the same proxy, holding the resume's `read`
/// (its step's first read of the resource) until the held write has gone
/// through to the emulator (`arrived`, the emulator's count of it, says
/// when). The resumed step so reads the resource while the operation that
/// write started is under way, however long drctl takes to start: the
/// emulator ends an operation 2 s after it began (a setting of the whole
/// world), and a slow machine under load can take that long to start
/// drctl. Returns the run and what the resume said.
pub(crate) async fn resumed_while_under_way(
    fx: &Fixture,
    proxied: &Proxied,
    write: Match,
    read: Match,
    arrived: impl AsyncFn() -> usize,
) -> (String, crate::fixture::Ran) {
    let gcp = proxied.proxy_for("DRCTL_GCP_ENDPOINT");
    let written = Gate::new();
    gcp.inject(write.clone(), Fault::Hold(written.clone()), 1);
    let runs = fx.runs();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never", "--plans"])
        .arg(fx.plans.path())
        .arg("--endpoints")
        .arg(proxied.endpoints())
        .args(fx.state_args())
        .args(["failover", "--plan", "orders-gcp", "--to", TARGET])
        .args(["--approve", "crash test"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .envs(world::run_key_env())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn drctl");
    world::wait_for(
        &format!("drctl's {write:?} at the proxy"),
        world::PATIENCE,
        async || {
            if gcp.requests(write.clone()) > 0 {
                return Ok(());
            }
            world::running(&mut child, "drctl failover", "its write").await;
            Err(gcp.log().join("\n"))
        },
    )
    .await;
    child.kill().await.expect("kill -9");
    assert_eq!(arrived().await, 0, "killed with its {write:?} in flight");
    let run = fx.new_run(&runs);
    let reads = gcp.requests(read.clone());
    let readable = Gate::new();
    gcp.inject(read.clone(), Fault::Hold(readable.clone()), 1);
    let endpoints = proxied.endpoints();
    let args = ["runs", "resume", &run, "--output", "json"];
    let (resumed, ()) = tokio::join!(fx.drctl_with(&args, &[], &endpoints), async {
        world::wait_for(
            &format!("the resume's {read:?} at the proxy"),
            world::PATIENCE,
            async || {
                if gcp.requests(read.clone()) > reads {
                    return Ok(());
                }
                Err(gcp.log().join("\n"))
            },
        )
        .await;
        written.open();
        world::wait_for(
            &format!("the killed run's {write:?} at the emulator"),
            world::PATIENCE,
            async || match arrived().await {
                0 => Err("not yet".into()),
                _ => Ok(()),
            },
        )
        .await;
        readable.open();
    });
    (run, resumed)
}

/// A crash before and after the step (`--inject-crash`), and a kill -9
/// with the promotion in flight: `runs resume` finishes the run with the
/// replica promoted and `promoteReplica` sent once (the resumed step
/// finds the operation under way with `operations.list`).
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_around_the_step_is_resumed_with_promote_replica_sent_once() {
    crate::needs_emulators!();
    for when in ["before", "after", "kill"] {
        let fx = Fixture::new("gsqlcrash").await;
        let pair = seed(&fx, 1.0).await;
        let runs = fx.runs();
        let (run, o) = if when == "kill" {
            // The step lists the operations only while the replica is
            // one: the listing is the read held.
            let proxied = Proxied::start(false).await;
            resumed_while_under_way(
                &fx,
                &proxied,
                Match::PathContains(format!("/instances/{}/promoteReplica", pair.replica)),
                Match::PathContains(format!("instance={}", pair.replica)),
                async || calls(&pair.replica, "/promoteReplica").await,
            )
            .await
        } else {
            let point = format!("{when}:{STEP}");
            let o = failover(&fx, &world::endpoints_file(), &["--inject-crash", &point]).await;
            assert_eq!(o.code, Some(1), "{point}: {}", o.all());
            assert!(o.err.contains("injected crash point"), "{}", o.all());
            let run = fx.new_run(&runs);
            let o = fx
                .drctl(&["runs", "resume", &run, "--output", "json"])
                .await;
            (run, o)
        };
        assert_eq!(o.code, Some(0), "{when}: {}", o.all());
        assert_eq!(role(&pair.replica).await, DbRole::Primary, "{when}");
        let show = fx.show(&run).await;
        assert_eq!(show["report"]["outcome"], "succeeded", "{when}");
        let recs = records(&show);
        assert!(recs.iter().any(|r| r["event"]["type"] == "resumed"));
        assert_eq!(
            calls(&pair.replica, "/promoteReplica").await,
            1,
            "{when}: promoteReplica sent once"
        );
        if when == "kill" {
            let out = outputs(&show, STEP);
            assert_eq!(out["resumed_operation"], true, "{out:#}");
        }
    }
}

/// `drctl restore` of a `[[cloud_sql]]` resource, through the data role's
/// one `restore` step: a time before the instance's recovery window is
/// refused at preflight, naming the window, with no clone asked for; a
/// time inside it is cloned at that point (`cloneContext.pointInTime`, as
/// the emulator checks against the window) into a new RUNNABLE instance,
/// the RPO measured from the requested point; the source is untouched.
#[tokio::test(flavor = "multi_thread")]
async fn restore_clones_a_cloud_sql_instance_at_a_chosen_time_inside_its_window() {
    crate::needs_emulators!();
    let fx = Fixture::new("gsqlrst").await;
    let pair = seed(&fx, 1.0).await;
    let restore = |at: String| {
        let fx = &fx;
        async move {
            let args = [
                "restore",
                "--plan",
                "orders-gcp",
                "--database",
                "orders-sql",
                "--region",
                HOME,
                "--to-time",
                &at,
                "--approve",
                "restore test",
                "--output",
                "json",
            ];
            fx.drctl(&args).await
        }
    };
    // Before its window (the emulator's opens at the instance's
    // `createTime`, a day back).
    let early = chrono::Utc::now() - chrono::Duration::days(2);
    let runs = fx.runs();
    let o = restore(early.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).await;
    // Failed at preflight (exit 1), naming the window, nothing changed.
    assert_eq!(o.code, Some(1), "{}", o.all());
    assert!(
        o.all().contains("before the earliest restorable time")
            && o.all().contains("nothing was changed"),
        "{}",
        o.all()
    );
    assert_eq!(
        calls(&pair.primary, "/clone").await,
        0,
        "no clone asked for"
    );
    let _ = fx.new_run(&runs);

    // Inside it.
    let point = chrono::Utc::now() - chrono::Duration::hours(1);
    let point = point.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let runs = fx.runs();
    let o = restore(point.clone()).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let run = fx.new_run(&runs);
    let show = fx.show(&run).await;
    let out = outputs(&show, "orders-gcp/restore:orders-sql");
    let clone = out["instance"]
        .as_str()
        .expect("the new instance")
        .to_string();
    let name = clone
        .strip_prefix(&format!("{PROJECT}/"))
        .expect("project/instance");
    assert!(name.starts_with(&format!("{}-r", pair.primary)), "{out:#}");
    assert_eq!(
        out["source"],
        format!("{PROJECT}/{}", pair.primary),
        "{out:#}"
    );
    assert_eq!(
        out["restore_point"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok()),
        Some(point.parse().ok()),
        "{out:#}"
    );
    assert_eq!(out["restore_point_source"], "the requested --to-time");
    assert!(
        out["operation"].as_str().is_some_and(|o| !o.is_empty()),
        "{out:#}"
    );
    assert_eq!(calls(&pair.primary, "/clone").await, 1);
    // Cloned at that point, as the request carried it.
    let asked: Vec<serde_json::Value> = (world::gcp_calls().await.into_iter())
        .filter(|c| {
            (c["path"].as_str()).is_some_and(|p| p.ends_with(&format!("/{}/clone", pair.primary)))
        })
        .collect();
    let first = asked
        .first()
        .expect("the clone's call, in the emulator's log");
    let sent = first["body"]["cloneContext"]["pointInTime"]
        .as_str()
        .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok());
    assert_eq!(sent, point.parse().ok(), "{asked:#?}");
    let sql = world::clouds().await.cloud_sql;
    let made = (sql.describe_sql(HOME, PROJECT, name).await)
        .expect("get")
        .expect("the clone exists");
    assert_eq!(
        (made.state.as_str(), made.role),
        ("RUNNABLE", DbRole::Primary)
    );
    assert_eq!(
        out["endpoint"],
        made.endpoint.as_deref().expect("an endpoint"),
        "{out:#}"
    );
    let source = (sql.describe_sql(HOME, PROJECT, &pair.primary).await)
        .expect("get")
        .expect("the source stays");
    assert_eq!(source.replicas, std::slice::from_ref(&pair.replica));
    // The RPO: from the point (an hour back) to the run's start.
    let rpo = &show["report"]["measures"][0]["rpo"];
    assert!(
        rpo["basis"]
            .as_str()
            .is_some_and(|b| b.contains("gap from restore point")),
        "{rpo:#}"
    );
    let seconds = rpo["seconds"].as_f64().expect("measured");
    assert!((3590.0..3700.0).contains(&seconds), "{rpo:#}");
}
