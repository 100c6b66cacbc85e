//! Cloud DNS (`[[cloud_dns]]`) against the world's Google Cloud
//! (`localstack/gcp_emu.py`, its Cloud DNS part `gcp_emu_dns.py`), through
//! Google's own crate (`google-cloud-dns-v1`): the adapter's read and
//! compare-and-swap; a failover of `plans/gcp/orders-gcp.toml` to us-east4
//! switching `orders.gcp.example.com.` from us-central1's API to us-east4's
//! in one change (`switch-dns`, the same step as Route 53's, through the
//! traffic role), waited on until done (`verify-dns`), and `status`
//! reading it there through the traffic role;
//! a second run sending none; a record changed between the
//! read and the change refused and named, not overwritten; a kill -9 after
//! the change was sent resumed without a second change.
//!
//! Health-check mode (`switch = "health-check"`): `dns prepare` then a
//! failover of a plan of one such A record resolves to us-east4's address
//! at the world's DNS (`dnsplane.py`, which answers the GCP emulator's
//! zones and reads the targets' health from their controls) with no
//! `/dns/v1` call; a second failover writes nothing; a crash after the
//! control write resumes without a second write. These need a dnsplane that
//! answers Cloud DNS zones (started by `localstack/up` with
//! `DRCTL_DNS_GCP`); `DRCTL_DNS_SERVER` in the test's environment names
//! one of the developer's own (tests/it/world.rs).
//!
//! Each test has its own managed zone (`orders-zone-SUFFIX`, seeded through
//! the emulator's admin API) and counts only the calls on it; the
//! health-check tests also their own bucket and serving addresses.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::fixture::{Fixture, outputs, records};
use crate::world;

const PROJECT: &str = "drctl-emu";
const TARGET: &str = "us-east4";
const NAME: &str = "orders.gcp.example.com.";
const HOME_VALUE: &str = "orders-api-usc1.example.com.";
const TARGET_VALUE: &str = "orders-api-use4.example.com.";
/// The failover's switch of `zone` (its records-mode records, in one change).
fn switch_step(zone: &str) -> String {
    format!("orders-gcp/switch-dns:{PROJECT}/{zone}")
}

/// Its verification (the wait until done, and the read-back).
fn verify_step(zone: &str) -> String {
    format!("orders-gcp/verify-dns:{PROJECT}/{zone}")
}

/// Puts the orders record in `zone` as it is (another writer).
async fn put_record(zone: &str, value: &str) {
    world::gcp_admin(
        "/emu/dns/records",
        json!({"project": PROJECT, "zone": zone, "name": NAME, "type": "CNAME",
               "ttl": 60, "rrdatas": [value]}),
    )
    .await;
}

/// Seeds `fx`'s managed zone (`orders-zone-SUFFIX`, gcp.example.com.) with
/// the orders record at us-central1's value, and returns its name.
pub(crate) async fn seed_zone(fx: &Fixture) -> String {
    let zone = fx.id("orders-zone");
    world::gcp_admin(
        "/emu/dns/zones",
        json!({"project": PROJECT, "name": zone, "dnsName": "gcp.example.com."}),
    )
    .await;
    put_record(&zone, HOME_VALUE).await;
    zone
}

/// The GCP plan's text with its Cloud DNS zone renamed to `zone`.
pub(crate) fn renamed(plan: &str, zone: &str) -> String {
    plan.replace("zone = \"orders-zone\"", &format!("zone = \"{zone}\""))
}

/// The emulator's record of the calls made with `method` on `zone`'s
/// changes (`changes.create` is a POST there).
async fn changes(zone: &str) -> usize {
    let calls = world::gcp_calls().await;
    calls
        .iter()
        .filter(|c| {
            c["method"] == "POST"
                && c["path"].as_str().is_some_and(|p| {
                    p == format!("/dns/v1/projects/{PROJECT}/managedZones/{zone}/changes")
                })
        })
        .count()
}

async fn read(zone: &str) -> Option<drctl::cloud::CloudRecordSet> {
    (world::clouds().await.cloud_dns)
        .read_record_set(PROJECT, zone, NAME, "CNAME")
        .await
        .expect("resourceRecordSets.list")
}

fn value(r: Option<drctl::cloud::CloudRecordSet>) -> Vec<String> {
    r.map(|r| r.rrdatas).unwrap_or_default()
}

async fn failover(fx: &Fixture, extra: &[&str]) -> crate::fixture::Ran {
    let mut args = vec![
        "failover",
        "--plan",
        "orders-gcp",
        "--to",
        TARGET,
        "--approve",
        "cloud dns test",
    ];
    args.extend_from_slice(extra);
    fx.drctl_with(&args, &[], &world::endpoints_file()).await
}

/// Where `drctl status --plan orders-gcp` says the record points: its row,
/// read through the traffic role over the world's Cloud DNS.
async fn status_points(fx: &Fixture) -> Option<String> {
    let st = fx
        .drctl(&["status", "--plan", "orders-gcp", "--output", "json"])
        .await;
    let v = st.json();
    let rows = v["plans"][0]["dns"].as_array()?;
    let row = rows.iter().find(|d| d["id"] == "orders-dns")?;
    row["points_to"].as_str().map(str::to_string)
}

/// The adapter through Google's crate: the zone and record read; a swap
/// deleting the record as read lands and its change is followed to done; a
/// swap built on a stale read is refused as Cloud DNS words it.
#[tokio::test(flavor = "multi_thread")]
async fn the_adapter_swaps_the_record_as_read_and_refuses_a_stale_one() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdnsadapt").await;
    let zone = seed_zone(&fx).await;
    let dns = world::clouds().await.cloud_dns;
    let z = (dns.describe_zone(PROJECT, &zone).await)
        .expect("managedZones.get")
        .expect("exists");
    assert_eq!(z.dns_name, "gcp.example.com.");
    assert_eq!(
        dns.describe_zone(PROJECT, "no-such-zone")
            .await
            .expect("no error"),
        None
    );
    let before = read(&zone).await.expect("seeded");
    assert_eq!(before.rrdatas, [HOME_VALUE]);
    let mut want = before.clone();
    want.rrdatas = vec![TARGET_VALUE.into()];
    let c = (dns
        .swap_record_sets(PROJECT, &zone, &[(Some(before.clone()), want.clone())])
        .await)
        .expect("changes.create");
    assert_eq!(value(read(&zone).await), [TARGET_VALUE]);
    world::wait_for(
        &format!("change {} to be done", c.id),
        world::PATIENCE,
        async || {
            let got = (dns.dns_change(PROJECT, &zone, &c.id).await)
                .map_err(|e| format!("changes.get: {e}"))?;
            if got.done {
                return Ok(());
            }
            Err(format!("{got:?}"))
        },
    )
    .await;
    let e = (dns
        .swap_record_sets(PROJECT, &zone, &[(Some(before.clone()), want.clone())])
        .await)
        .expect_err("a stale deletion is refused");
    assert_eq!(e.code.as_deref(), Some("FAILED_PRECONDITION"), "{e:?}");
    assert!(drctl::cloud::gcp_dns::is_conflict(&e));
    assert_eq!(changes(&zone).await, 2);
}

/// `drctl failover --to us-east4` switches the record in one change and
/// waits until it is done; a second failover sends no change.
#[tokio::test(flavor = "multi_thread")]
async fn a_failover_switches_the_record_once_and_a_second_run_sends_nothing() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdnsfo").await;
    crate::gcp_sql::seed(&fx, 1.0).await;
    let zone = fx.id("orders-zone");
    assert_eq!(value(read(&zone).await), [HOME_VALUE]);
    assert_eq!(status_points(&fx).await.as_deref(), Some("us-central1"));
    let runs = fx.runs();
    let o = failover(&fx, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    assert_eq!(value(read(&zone).await), [TARGET_VALUE]);
    // `status` reads the record through the traffic role, as watch does.
    assert_eq!(status_points(&fx).await.as_deref(), Some(TARGET));
    let show = fx.show(&fx.new_run(&runs)).await;
    assert_eq!(show["report"]["outcome"], "succeeded");
    let out = outputs(&show, &switch_step(&zone));
    assert_eq!(out["changed"], 1, "{out:#}");
    assert_eq!(out["before"][0]["values"], json!([HOME_VALUE]), "{out:#}");
    assert_eq!(out["after"][0]["values"], json!([TARGET_VALUE]), "{out:#}");
    assert_eq!(
        out["change_ids"].as_array().map(Vec::len),
        Some(1),
        "{out:#}"
    );
    let verified = outputs(&show, &verify_step(&zone));
    assert_eq!(verified["change_ids"], out["change_ids"], "{verified:#}");
    assert_eq!(changes(&zone).await, 1);

    let runs = fx.runs();
    let again = failover(&fx, &[]).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    let show = fx.show(&fx.new_run(&runs)).await;
    let out = outputs(&show, &switch_step(&zone));
    assert_eq!(out["changed"], 0, "{out:#}");
    assert_eq!(changes(&zone).await, 1, "a second run sends no change");
    assert_eq!(value(read(&zone).await), [TARGET_VALUE]);
}

/// Someone moves the record after drctl read it and before its change
/// (armed in the emulator: `/emu/dns/race` puts it right before the zone's
/// next change): Cloud DNS refuses the change (its deletion no longer
/// matches), the step reads the record again and fails naming record, zone
/// and project; the other writer's value stands. The adapter alone refuses
/// a swap built on a stale read the same way.
#[tokio::test(flavor = "multi_thread")]
async fn a_record_changed_between_read_and_change_is_refused_and_named() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdnscas").await;
    crate::gcp_sql::seed(&fx, 1.0).await;
    let zone = fx.id("orders-zone");
    world::gcp_admin(
        "/emu/dns/race",
        json!({"project": PROJECT, "zone": zone, "name": NAME, "type": "CNAME",
               "ttl": 60, "rrdatas": ["someone-else.example.com."]}),
    )
    .await;
    let o = failover(&fx, &[]).await;
    assert_ne!(o.code, Some(0), "{}", o.all());
    let all = o.all();
    assert!(
        [
            NAME,
            zone.as_str(),
            PROJECT,
            "someone-else.example.com.",
            "nothing was overwritten"
        ]
        .iter()
        .all(|w| all.contains(w)),
        "{all}"
    );
    assert_eq!(value(read(&zone).await), ["someone-else.example.com."]);
    assert_eq!(
        changes(&zone).await,
        1,
        "one change sent, refused, none after"
    );

    // The adapter: a swap from a read made before another writer's change.
    let dns = world::clouds().await.cloud_dns;
    put_record(&zone, HOME_VALUE).await;
    let read_by_drctl = read(&zone).await.expect("seeded");
    put_record(&zone, "someone-else.example.com.").await;
    let mut want = read_by_drctl.clone();
    want.rrdatas = vec![TARGET_VALUE.into()];
    let e = (dns
        .swap_record_sets(
            PROJECT,
            &zone,
            &[(Some(read_by_drctl.clone()), want.clone())],
        )
        .await)
        .expect_err("refused");
    assert!(drctl::cloud::gcp_dns::is_conflict(&e), "{e:?}");
    assert_eq!(value(read(&zone).await), ["someone-else.example.com."]);
}

/// A kill -9 after the change was sent (while Cloud DNS still says it is
/// pending): `runs resume` finishes the run with the record at us-east4's
/// value and no second change (the resumed step reads the record first, and
/// waits on the zone's change if it is still pending).
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_change_was_sent_is_resumed_without_a_second_change() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdnscrash").await;
    crate::gcp_sql::seed(&fx, 1.0).await;
    let zone = fx.id("orders-zone");
    let runs = fx.runs();
    // A slow change, so the kill lands while it is pending.
    world::gcp_admin("/emu/dns/config", json!({"changeSeconds": 4})).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_drctl"))
        .args(["--color", "never", "--plans"])
        .arg(fx.plans.path())
        .arg("--endpoints")
        .arg(world::endpoints_file())
        .args(fx.state_args())
        .args(["failover", "--plan", "orders-gcp", "--to", TARGET])
        .args(["--approve", "cloud dns test"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .envs(world::run_key_env())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn drctl");
    world::wait_for_every(
        &format!("drctl's change of {zone}"),
        world::PATIENCE,
        Duration::from_millis(20),
        async || {
            if changes(&zone).await > 0 {
                return Ok(());
            }
            world::running(&mut child, "drctl failover", "its change").await;
            Err("no change yet".into())
        },
    )
    .await;
    child.kill().await.expect("kill -9");
    world::gcp_admin("/emu/dns/config", json!({"changeSeconds": 1})).await;
    assert_eq!(value(read(&zone).await), [TARGET_VALUE]);
    let run = fx.new_run(&runs);
    let o = fx
        .drctl(&["runs", "resume", &run, "--output", "json"])
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let show = fx.show(&run).await;
    assert_eq!(show["report"]["outcome"], "succeeded");
    assert!(
        records(&show)
            .iter()
            .any(|r| r["event"]["type"] == "resumed")
    );
    // Killed before the switch was journaled, the resumed switch found the
    // record switched and left the zone's pending change to the wait;
    // killed after, the resume began at the wait. Either way one change,
    // waited on and read back.
    let out = outputs(&show, &switch_step(&zone));
    let sent = out["change_ids"].as_array().map_or(0, Vec::len);
    let pending = out["pending"].as_array().map_or(0, Vec::len);
    assert!(sent + pending <= 1, "{out:#}");
    let verified = outputs(&show, &verify_step(&zone));
    assert!(verified["in_sync_at"].is_string(), "{verified:#}");
    assert_eq!(changes(&zone).await, 1, "changes.create sent once");
    assert_eq!(value(read(&zone).await), [TARGET_VALUE]);
}

// ------------------------------------------------------------ health-check mode

/// A plan of one health-check `[[cloud_dns]]` A record, in `fx`'s own zone,
/// name, serving addresses and control objects (tests run in parallel on
/// the same emulators and dnsplane, whose health map is keyed by address).
struct HealthCheckWorld {
    plans: tempfile::TempDir,
    zone: String,
    name: String,
    home_value: String,
    target_value: String,
    controls: [(String, String); 2],
}

const HC_PLAN: &str = "orders-hc";
const HC_STEP: &str = "orders-hc/switch-control";

/// Seeds the zone (empty), the bucket and dnsplane's health map (each
/// serving address → its region's control) and writes the plan.
async fn health_check_world(fx: &Fixture) -> HealthCheckWorld {
    let tag = fx.id("hc").to_ascii_lowercase();
    let zone = fx.id("hc-zone").to_ascii_lowercase();
    let dns_name = format!("{tag}.gcp.example.com.");
    world::gcp_admin(
        "/emu/dns/zones",
        json!({"project": PROJECT, "name": zone, "dnsName": dns_name}),
    )
    .await;
    let bucket = format!("drctl-it-{tag}");
    world::create_gcs_bucket(&bucket).await;
    // Addresses of this test alone: dnsplane's health map is global.
    let n = fx
        .suffix
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let (a, b) = ((n >> 8) % 250 + 1, n % 250 + 1);
    let home_value = format!("10.{a}.{b}.1");
    let target_value = format!("10.{a}.{b}.2");
    let controls = [
        (
            "us-central1".to_string(),
            format!("gs://{bucket}/orders/us-central1.json"),
        ),
        (
            "us-east4".to_string(),
            format!("gs://{bucket}/orders/us-east4.json"),
        ),
    ];
    for (addr, (_, url)) in [&home_value, &target_value].into_iter().zip(&controls) {
        world::gcp_admin("/emu/dns/health", json!({"address": addr, "control": url})).await;
    }
    let name = format!("orders.{dns_name}");
    let plan = format!(
        r#"[plan]
name = "{HC_PLAN}"
description = "Orders on GCP, its name switched by health (no Cloud DNS call)"
owner = "orders-team@example.com"
tier = "important"
regions = ["us-central1", "us-east4"]

[[cloud_dns]]
id = "orders-dns"
project = "{PROJECT}"
zone = "{zone}"
name = "{name}"
type = "A"
ttl = 0
targets = {{ us-central1 = "{home_value}", us-east4 = "{target_value}" }}
switch = "health-check"
controls = {{ us-central1 = "{}", us-east4 = "{}" }}
health_check = "projects/{PROJECT}/global/healthChecks/orders-api"
"#,
        controls[0].1, controls[1].1
    );
    let plans = tempfile::tempdir().expect("plans dir");
    std::fs::write(plans.path().join("orders-hc.toml"), plan).expect("write the plan");
    HealthCheckWorld {
        plans,
        zone,
        name,
        home_value,
        target_value,
        controls,
    }
}

impl HealthCheckWorld {
    async fn drctl(&self, fx: &Fixture, args: &[&str]) -> crate::fixture::Ran {
        fx.drctl_in(self.plans.path(), args, &[], &world::endpoints_file())
            .await
    }

    async fn failover(&self, fx: &Fixture, extra: &[&str]) -> crate::fixture::Ran {
        let mut args = vec![
            "failover",
            "--plan",
            HC_PLAN,
            "--to",
            TARGET,
            "--approve",
            "cloud dns health-check test",
        ];
        args.extend_from_slice(extra);
        self.drctl(fx, &args).await
    }

    /// Every control's (state, generation).
    async fn controls(&self) -> Vec<(String, String)> {
        let objects = world::clouds().await.objects;
        let mut out = Vec::new();
        for (region, url) in &self.controls {
            let u = drctl::cloud::ObjectUrl::parse(url).expect("url");
            let v = (objects.get_versioned(region, &u).await)
                .expect("read the control")
                .expect("the control exists");
            let c = drctl::cloud::control::Control::parse(&v.body).expect("a control");
            out.push((c.state.to_string(), v.version));
        }
        out
    }

    /// Calls on this zone through Cloud DNS's API (`/dns/v1`).
    async fn api_calls(&self) -> usize {
        self.api_calls_where(|_| true).await
    }

    /// Calls on this zone through Cloud DNS's API that are not reads.
    async fn api_writes(&self) -> usize {
        self.api_calls_where(|c| c["method"] != "GET").await
    }

    async fn api_calls_where(&self, keep: impl Fn(&serde_json::Value) -> bool) -> usize {
        let calls = world::gcp_calls().await;
        let prefix = format!("/dns/v1/projects/{PROJECT}/managedZones/{}", self.zone);
        calls
            .iter()
            .filter(|c| c["path"].as_str().is_some_and(|p| p.starts_with(&prefix)))
            .filter(|c| keep(c))
            .count()
    }

    /// What the name resolves to now: a query that got no answer is an
    /// error, said, never read as "no address".
    async fn resolves(&self) -> Result<Vec<String>, String> {
        (world::clouds().await.resolver)
            .resolve("gcp.example.com.", &self.name, "A")
            .await
            .map_err(|e| e.to_string())
    }

    /// Waits until the name resolves to `value` alone, up to 90 s: one
    /// query may go unanswered on a loaded machine (regression
    /// `regression_a_health_check_record_without_its_policy_fails_early_naming_it`
    /// read an unanswered query as no address in one CI). A name that
    /// resolves elsewhere all that time still fails, naming what it said.
    async fn resolves_to(&self, value: &str) {
        world::wait_for_every(
            &format!("{} to resolve to {value}", self.name),
            Duration::from_secs(90),
            Duration::from_millis(200),
            async || match self.resolves().await {
                Ok(got) if got == [value] => Ok(()),
                Ok(got) => Err(format!("{got:?}")),
                Err(e) => Err(e),
            },
        )
        .await
    }
}

/// `dns prepare` makes the controls (home serve, us-east4 drain) and the
/// routing policy, and a second prepare changes nothing; a failover to
/// us-east4 then writes the controls and resolves to us-east4's address
/// with no Cloud DNS API call; a second failover writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_health_check_failover_resolves_to_the_target_with_no_cloud_dns_call() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdnshc").await;
    let w = health_check_world(&fx).await;
    let o = w
        .drctl(
            &fx,
            &["dns", "prepare", "--plan", HC_PLAN, "--output", "json"],
        )
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let all = o.all();
    assert!(
        all.contains("created (serve)") && all.contains("created (drain)"),
        "{all}"
    );
    let rs = (world::clouds().await.cloud_dns)
        .read_record_set(PROJECT, &w.zone, &w.name, "A")
        .await
        .expect("read")
        .expect("the record set exists");
    let pb = rs.primary_backup.expect("a primaryBackup policy");
    assert_eq!(pb.primary, std::slice::from_ref(&w.home_value));
    assert_eq!(pb.backups[0].rrdatas, std::slice::from_ref(&w.target_value));
    let again = w
        .drctl(
            &fx,
            &["dns", "prepare", "--plan", HC_PLAN, "--output", "json"],
        )
        .await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    let again_all = again.all();
    assert!(
        !again_all.contains("created") && !again_all.contains("updated"),
        "{again_all}"
    );
    let prepared = w.controls().await;
    assert_eq!(prepared[0].0, "serve");
    assert_eq!(prepared[1].0, "drain");
    // dnsplane answers the home's address while it serves.
    w.resolves_to(&w.home_value).await;

    let (calls, writes) = (w.api_calls().await, w.api_writes().await);
    let runs = fx.runs();
    let o = w.failover(&fx, &[]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    // Preflight's setup check reads the record set once (bounded, beside
    // the path: not verifiable, never a block, when the API does not
    // answer); the switch and its verification make no call at all.
    assert_eq!(
        w.api_calls().await,
        calls + 1,
        "one Cloud DNS read in a failover: preflight's"
    );
    assert_eq!(w.api_writes().await, writes, "no Cloud DNS write");
    w.resolves_to(&w.target_value).await;
    let show = fx.show(&fx.new_run(&runs)).await;
    assert_eq!(show["report"]["outcome"], "succeeded");
    let out = outputs(&show, HC_STEP);
    let outcomes: Vec<&str> = (out["controls"].as_array().into_iter().flatten())
        .map(|c| c["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["written", "written"], "{out:#}");
    let switched = w.controls().await;
    assert_eq!(switched[0].0, "drain");
    assert_eq!(switched[1].0, "serve");

    let runs = fx.runs();
    let again = w.failover(&fx, &[]).await;
    assert_eq!(again.code, Some(0), "{}", again.all());
    let show = fx.show(&fx.new_run(&runs)).await;
    let out = outputs(&show, HC_STEP);
    let outcomes: Vec<&str> = (out["controls"].as_array().into_iter().flatten())
        .map(|c| c["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["already_set", "already_set"], "{out:#}");
    assert_eq!(
        w.controls().await,
        switched,
        "a second failover writes nothing"
    );
    assert_eq!(w.api_calls().await, calls + 2, "one read a failover");
    assert_eq!(w.api_writes().await, writes, "no Cloud DNS write");
}

/// A crash right after the controls were written (journaled): `runs
/// resume` finishes the run, resolving to us-east4, with no second write
/// (the controls' generations unchanged) and no Cloud DNS API call but
/// preflight's one read.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_the_control_write_is_resumed_without_a_second_write() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdnshccrash").await;
    let w = health_check_world(&fx).await;
    let o = w.drctl(&fx, &["dns", "prepare", "--plan", HC_PLAN]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let calls = w.api_calls().await;
    let runs = fx.runs();
    let point = format!("after:{HC_STEP}");
    let o = w.failover(&fx, &["--inject-crash", &point]).await;
    assert_ne!(o.code, Some(0), "{}", o.all());
    let written = w.controls().await;
    assert_eq!(written[1].0, "serve");
    let run = fx.new_run(&runs);
    let o = fx
        .drctl_in(
            w.plans.path(),
            &["runs", "resume", &run, "--output", "json"],
            &[],
            &world::endpoints_file(),
        )
        .await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    let show = fx.show(&run).await;
    assert_eq!(show["report"]["outcome"], "succeeded");
    assert_eq!(w.controls().await, written, "no second write");
    // The run's preflight read the record set once, before the crash; the
    // resumed run does not run it again.
    assert_eq!(w.api_calls().await, calls + 1, "one Cloud DNS read");
    w.resolves_to(&w.target_value).await;
}

/// Regression: a health-check record whose set has lost its routing
/// policy (a plain record at home's address, `dns prepare` undone by
/// another writer) cannot resolve to the target whatever the controls say,
/// and the failover's resolution check (then `verify-cloud-resolution`)
/// waited out the whole RTO budget in silence. Its wait learned to read
/// the set beside it and fail early; now preflight reads it first, through
/// Google's crate (one bounded read; no change is sent), and refuses the
/// failover before any control is written, naming the missing policy and
/// `dns prepare`, as Route 53's missing records are.
#[tokio::test(flavor = "multi_thread")]
async fn regression_a_health_check_record_without_its_policy_fails_early_naming_it() {
    crate::needs_emulators!();
    let fx = Fixture::new("gdnshcgap").await;
    let w = health_check_world(&fx).await;
    let o = w.drctl(&fx, &["dns", "prepare", "--plan", HC_PLAN]).await;
    assert_eq!(o.code, Some(0), "{}", o.all());
    world::gcp_admin(
        "/emu/dns/records",
        json!({"project": PROJECT, "zone": w.zone, "name": w.name, "type": "A",
               "ttl": 0, "rrdatas": [w.home_value]}),
    )
    .await;
    let changes_before = changes(&w.zone).await;
    let calls = w.api_calls().await;
    let controls = w.controls().await;
    let started = std::time::Instant::now();
    let o = w.failover(&fx, &[]).await;
    let took = started.elapsed();
    assert_ne!(o.code, Some(0), "{}", o.all());
    let all = o.all();
    for want in [
        "orders-hc/preflight",
        "us-east4 is not ready",
        "primaryBackup absent: the record set answers its own values",
        "cannot resolve to us-east4 without it",
        &format!("drctl dns prepare --plan {HC_PLAN}"),
    ] {
        assert!(all.contains(want), "{want:?} in {all}");
    }
    // Refused at once, not after the flip time or the RTO budget.
    assert!(took < Duration::from_secs(60), "{took:?}");
    assert_eq!(w.api_calls().await, calls + 1, "the set was read once");
    assert_eq!(changes(&w.zone).await, changes_before, "no change sent");
    assert_eq!(w.controls().await, controls, "no control written");
    w.resolves_to(&w.home_value).await;
}
