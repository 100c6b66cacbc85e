//! The home region is down: `drctl failover` must not need it.
//!
//! Every request signed for the home region (us-west-2) is answered the way a
//! dead region answers, by [`FaultProxy`]s in front of LocalStack and moto
//! that match the SigV4 credential scope: the connection is reset (endpoints
//! refusing) or the request is never answered (endpoints gone silent). Each
//! test then runs the real binary and asserts that the failover exits 0,
//! fast (no retry storm into the dead region), that the world is switched
//! (read back without the proxies), and that nothing on the run's path went
//! to the dead region: what did go there is only the bounded, optional reads
//! of its "before" state, and the evidence records them as unreachable.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drctl::cloud::DbRole;
use serde_json::Value;

use crate::fixture::{Fixture, Proxied};
use crate::proxy::{Fault, Match};
use crate::world::{self, HOME, STANDBY};

/// Wall-time bound of a failover with the home region down, on the
/// emulators. A run that waited on a dead region that never answers waits
/// for the SDK's 30 s attempt timeout; a healthy one takes about 1 s on an
/// idle machine (docs/performance.md), and 7.5 to 11.4 s on shared state
/// while a cold build and a second emulator world shared the 2 cores (a
/// bound of 6 s failed there). The bound sits below the hang with room for
/// such a machine. A retry storm is caught by what the test counts, not by
/// time: the requests that reached the dead region (only the bounded side
/// reads may).
const FAST: Duration = Duration::from_secs(20);

/// What shared state may add to [`FAST`]: the store probe, the lease, two
/// requests per journal record (about 35 requests to the emulated S3 for one
/// plan; docs/performance.md has the measured figure), and one read of the
/// lease before each cloud write (`Cx::fenced`, six for one plan).
const SHARED_STATE_ALLOWANCE: Duration = Duration::from_millis(1000);

/// Every AWS emulator behind a proxy that takes one region down, and an
/// endpoints file that points drctl at the proxies.
struct DeadRegion {
    proxied: Proxied,
    default_region: Option<String>,
    endpoints: PathBuf,
}

impl DeadRegion {
    /// Takes `region` down with `fault`. `default_region`: the region the
    /// endpoints file names as `AWS_REGION` (`None`: none, so the SDK reads
    /// it from the AWS config file the caller points `AWS_CONFIG_FILE` at).
    async fn new(region: &'static str, fault: Fault, default_region: Option<&str>) -> Self {
        let proxied = Proxied::start(false).await;
        for var in ["AWS_ENDPOINT_URL_ROUTE_53", "AWS_ENDPOINT_URL_RDS"] {
            proxied
                .proxy_for(var)
                .inject(Match::Region(region), fault.clone(), usize::MAX);
        }
        let mut dead = Self {
            proxied,
            default_region: default_region.map(str::to_string),
            endpoints: PathBuf::new(),
        };
        dead.endpoints = dead.endpoints_file(None);
        dead
    }

    /// An endpoints file through the proxies with the default region set
    /// (or left out), and with `gcs` as the GCS endpoint when given.
    fn endpoints_file(&self, gcs: Option<&str>) -> PathBuf {
        self.proxied.endpoints_with(|k, v| match k {
            "AWS_REGION" | "AWS_DEFAULT_REGION" => self.default_region.clone(),
            "DRCTL_GCS_ENDPOINT" => Some(gcs.unwrap_or(v).to_string()),
            _ => Some(v.to_string()),
        })
    }

    /// Another endpoints file, the same but for the GCS endpoint.
    fn with_gcs(&self, url: &str) -> PathBuf {
        self.endpoints_file(Some(url))
    }

    /// Requests that went to `region`, through either AWS proxy.
    fn requests_to(&self, region: &'static str) -> Vec<String> {
        let tag = format!("[{region}]");
        self.proxied
            .log()
            .into_iter()
            .filter(|l| l.contains(&tag))
            .collect()
    }
}

/// Runs `failover --to us-east-1` for the fixture's payments plan through
/// `dead`'s endpoints, with `env` added, and checks what the issue asks of
/// it: exit 0, under [`FAST`], the world switched, no call of the run's own
/// path to the home region. Returns the run's JSON report.
async fn fails_over_without_home(fx: &Fixture, dead: &DeadRegion, env: &[(&str, &str)]) -> Value {
    let before = fx.runs();
    let t0 = Instant::now();
    let ran = fx
        .drctl_with(
            &[
                "failover",
                "--plan",
                "payments",
                "--to",
                STANDBY,
                "--approve",
                "home region down",
                "--output",
                "json",
            ],
            env,
            &dead.endpoints,
        )
        .await;
    let took = t0.elapsed();
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let bound = if fx.shared.is_some() {
        FAST + SHARED_STATE_ALLOWANCE
    } else {
        FAST
    };
    assert!(
        took < bound,
        "a failover with the home region down took {took:?} (bound {bound:?}): a retry storm?\n{}\nrequests to {HOME}:\n{}",
        ran.all(),
        dead.requests_to(HOME).join("\n")
    );
    let report = ran.json();
    assert_eq!(report["outcome"], "succeeded", "{}", ran.all());

    // The world, read back directly (not through the proxies).
    let snap = fx.snapshot().await;
    assert!(
        snap.records[&format!("api.{} CNAME", fx.zone.trim_end_matches('.'))]
            .starts_with(&fx.host("api-use1").trim_end_matches('.').to_string()),
        "api record not switched: {:?}",
        snap.records
    );
    let db = world::clouds()
        .await
        .database
        .describe_instance(STANDBY, &fx.id("payments-db-use1"))
        .await
        .expect("describe")
        .expect("the standby database exists");
    assert_eq!(
        db.role,
        DbRole::Primary,
        "the replica in {STANDBY} was promoted"
    );
    assert_eq!(
        snap.groups[&fx.id("payments-api-use1")],
        (2, 4, 8),
        "the standby group is at active capacity"
    );

    // Only the side reads of the old region's state went there: one
    // DescribeDBInstances and one DescribeAutoScalingGroups, nothing else
    // (no STS, no S3, no CloudWatch, no change).
    let home_calls = dead.requests_to(HOME);
    assert!(
        home_calls.len() <= 2
            && home_calls
                .iter()
                .all(|l| l.contains("DescribeDBInstances")
                    || l.contains("DescribeAutoScalingGroups")),
        "calls of the run's path went to the dead region:\n{}",
        home_calls.join("\n")
    );

    // The evidence says what the old region looked like: unreachable.
    let run = fx.new_run(&before);
    let journal = fx.journal_text(&run).await;
    assert!(!journal.is_empty(), "no journal for {run}");
    assert!(
        journal.contains("\"unreachable\""),
        "the evidence step's outputs record the home region as unreachable"
    );
    report
}

fn config_file_naming(dir: &Path, region: &str) -> PathBuf {
    let path = dir.join("config");
    std::fs::write(&path, format!("[default]\nregion = {region}\n")).expect("write AWS config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_succeeds_fast_when_the_home_region_refuses_connections() {
    crate::needs_emulators!();
    let fx = Fixture::new("deadrst").await;
    let dead = DeadRegion::new(HOME, Fault::Reset, Some(STANDBY)).await;
    fails_over_without_home(&fx, &dead, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_succeeds_fast_when_the_home_region_never_answers() {
    crate::needs_emulators!();
    let fx = Fixture::new("deadhang").await;
    let dead = DeadRegion::new(HOME, Fault::Hang, Some(STANDBY)).await;
    fails_over_without_home(&fx, &dead, &[]).await;
}

/// The bug this pins: with the default region (here from the AWS config
/// file) being the dead one, STS and the evidence bucket's HeadBucket went
/// there, retried for about 17 s, and the run failed at the evidence step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_does_not_call_the_default_region_when_it_is_the_dead_one() {
    crate::needs_emulators!();
    let fx = Fixture::new("deaddef").await;
    let dead = DeadRegion::new(HOME, Fault::Reset, None).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file_naming(dir.path(), HOME);
    let config = config.to_str().expect("utf-8 path");
    let env = [
        ("AWS_CONFIG_FILE", config),
        ("AWS_REGION", ""),
        ("AWS_DEFAULT_REGION", ""),
    ];
    let report = fails_over_without_home(&fx, &dead, &env).await;
    // STS answered in the target region: the approval names the operator.
    let approval = report["gates"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["gate"] == "approval"))
        .cloned()
        .unwrap_or_default();
    assert!(
        approval["detail"]["approved_by"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "the operator identity came from STS in {STANDBY}: {approval}"
    );
}

/// An evidence destination that does not answer does not fail the run: it
/// ends "succeeded, evidence incomplete" (exit 0, a warning naming the
/// destination), and `drctl runs resume` stores what is missing once the
/// destination is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_destination_down_is_a_warning_and_resume_completes_it() {
    crate::needs_emulators!();
    let fx = Fixture::new("evgap").await;
    if fx.shared.as_deref().is_some_and(|s| s.starts_with("gs://")) {
        // This test takes GCS down, which would take a gs:// state with it.
        return;
    }
    let dead = DeadRegion::new(HOME, Fault::Reset, Some(STANDBY)).await;
    // GCS down: its endpoint refuses connections (a port nobody listens on).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let gcs_down = dead.with_gcs(&format!("http://{closed}"));
    let before = fx.runs();
    let t0 = Instant::now();
    let ran = fx
        .failover_payments_via(&gcs_down, &["--output", "json"])
        .await;
    let took = t0.elapsed();
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let report = ran.json();
    assert_eq!(report["outcome"], "evidence_incomplete", "{}", ran.all());
    // The destination that refuses connections costs one retry budget,
    // on either state (regression: on shared state, a fenced write's
    // every retry was the Google client's whole budget: 79 s).
    assert!(
        took < Duration::from_secs(45),
        "the failover took {took:?}:\n{}",
        ran.all()
    );
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("gs://drctl-evidence-"),
        "the warning names the GCS destination: {warnings}"
    );
    assert!(
        !warnings.contains("s3://"),
        "the S3 destination answered: {warnings}"
    );
    let run = fx.new_run(&before);
    assert!(
        report["resume"].as_str().is_some_and(|r| r.contains(&run)),
        "the report says how to finish it: {report}"
    );

    // The destination is back: resume writes the missing evidence only.
    let resumed = fx
        .drctl_with(
            &["runs", "resume", &run, "--output", "json"],
            &[],
            &dead.endpoints,
        )
        .await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
    assert_eq!(resumed.json()["outcome"], "succeeded", "{}", resumed.all());
    // Written by the step's second attempt, in a pack of its own.
    let url = drctl::cloud::ObjectUrl::parse(
        &fx.manifest_url(&format!("gs://drctl-evidence-{}/payments", fx.suffix), &run)
            .await
            .expect("the journal records the GCS pack"),
    )
    .expect("url");
    assert!(url.key.contains("/attempt-2/"), "{url}");
    let manifest = world::clouds()
        .await
        .objects
        .get(STANDBY, &url)
        .await
        .expect("read the manifest");
    assert!(
        manifest.is_some(),
        "the manifest is on GCS after the resume"
    );
    assert_eq!(fx.audit(&run).await.code, Some(0), "the chain verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_dead_home_region_as_unreachable_and_the_standby_ready() {
    crate::needs_emulators!();
    let fx = Fixture::new("deadst").await;
    let dead = DeadRegion::new(HOME, Fault::Hang, Some(HOME)).await;
    let t0 = Instant::now();
    let ran = fx
        .drctl_with(
            &[
                "status",
                "--plan",
                "payments",
                "--output",
                "json",
                // Long enough for the standby's reads on a busy emulator
                // (its CloudWatch takes seconds under a whole suite).
                "--read-timeout",
                "8s",
            ],
            &[],
            &dead.endpoints,
        )
        .await;
    // Unbounded, a hung read waits for the SDK's attempt timeout (30 s);
    // the bound leaves a busy machine room above the 8 s read timeout.
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "bounded by the read timeout: {:?}",
        t0.elapsed()
    );
    let report = ran.json();
    let plan = &report["plans"][0];
    let region = |r: &str| {
        plan["regions"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["region"] == r))
            .cloned()
            .unwrap_or_default()
    };
    assert!(
        region(HOME)["unreachable"].is_string(),
        "{HOME} shows as unreachable: {plan:#}"
    );
    let standby = region(STANDBY);
    assert_eq!(standby["unreachable"], Value::Null, "{plan:#}");
    assert_eq!(
        standby["databases"][0]["role"], "replica",
        "the standby's readiness is still computed: {plan:#}"
    );
    assert_eq!(standby["ready"], true, "{plan:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reprotect_with_the_old_region_down_fails_fast_and_says_why() {
    crate::needs_emulators!();
    let fx = Fixture::new("deadrep").await;
    // Fail over for real first (home alive), then take the home region down.
    let ran = fx.failover_payments(&[]).await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let dead = DeadRegion::new(HOME, Fault::Reset, Some(STANDBY)).await;
    let before = fx.runs();
    let t0 = Instant::now();
    let ran = fx
        .drctl_with(&["reprotect", "--plan", "payments"], &[], &dead.endpoints)
        .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    // Fast is below the SDK's 30 s attempt timeout that a wait on the dead
    // region would reach, with room for a machine busy with the suite.
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "fails fast: {:?}",
        t0.elapsed()
    );
    assert!(
        ran.err.contains(HOME)
            && ran.err.contains("does not answer")
            && ran.err.contains("nothing was changed"),
        "says which region it needs and that nothing changed:\n{}",
        ran.all()
    );
    assert_eq!(fx.runs(), before, "no run was started");
}

// ------------------------------------------------- Route 53's API down too

/// What the emulator world's DNS data plane answers for `name` (CNAME), over
/// UDP, asked directly (not through drctl's code).
async fn cname_of(name: &str) -> Vec<String> {
    use crate::dnsplane::{Proto, Reply, ask, resolver};
    match ask(
        &resolver(Proto::Udp),
        name,
        hickory_resolver::proto::rr::RecordType::CNAME,
    )
    .await
    {
        Reply::Records(r, _) => r,
        other => vec![format!("{other:?}")],
    }
}

/// Polls the CNAME of `name` until it names `want` (dnsplane refreshes
/// every second and probes every test's health checks: slower on a busy
/// machine), or panics at the bound.
async fn resolves_to(name: &str, want: &str) {
    world::wait_for_every(
        &format!("{name} to resolve to {want} (localstack/.run/dnsplane.log says why not)"),
        Duration::from_secs(90),
        Duration::from_millis(250),
        async || {
            let got = cname_of(name).await;
            if got.len() == 1 && got[0].eq_ignore_ascii_case(want) {
                return Ok(());
            }
            Err(format!("{got:?}"))
        },
    )
    .await;
}

/// A checkout world through proxies, set up by `drctl dns prepare` with the
/// health checks reading the controls *through the proxy* (so a region the
/// proxy drops is a region the health checkers cannot reach), serving from
/// its home (us-east-1) before anything breaks.
async fn prepared_checkout(prefix: &str) -> (Fixture, Proxied, PathBuf) {
    let mut fx = Fixture::new(prefix).await;
    // The suite's shared-state bucket lives in us-east-1, a region these
    // tests take down: a team keeps its state outside the regions it fails
    // away from (docs/state.md), so these runs keep theirs on local disk.
    fx.shared = None;
    crate::cli::add_suffixed_plan(fx.plans.path(), "checkout.toml", &fx.suffix);
    let proxied = Proxied::start(false).await;
    let endpoints = proxied.endpoints_with(|_, v| Some(v.to_string()));
    let prep = fx
        .drctl_with(&["dns", "prepare", "--plan", "checkout"], &[], &endpoints)
        .await;
    assert_eq!(prep.code, Some(0), "{}", prep.all());
    resolves_to(&fx.host("checkout"), &fx.host("checkout-use1")).await;
    (fx, proxied, endpoints)
}

/// Drops every request of `m` at every proxy.
fn drop_all(proxied: &Proxied, m: Match) {
    for p in &proxied.proxies {
        p.inject(m.clone(), Fault::Reset, usize::MAX);
    }
}

/// Runs `failover --plan checkout --to target` and checks that it exits 0
/// and that the names resolve to the target; returns the run's report.
async fn checkout_fails_over(fx: &Fixture, endpoints: &Path, target: &str, host: &str) -> Value {
    let ran = fx
        .drctl_with(
            &[
                "failover", "--plan", "checkout", "--to", target, "--output", "json",
            ],
            &[],
            endpoints,
        )
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let report = ran.json();
    assert_eq!(report["outcome"], "succeeded", "{}", ran.all());
    resolves_to(&fx.host("checkout"), &fx.host(host)).await;
    report
}

/// How many requests each proxy has seen so far.
fn marks(proxied: &Proxied) -> Vec<usize> {
    proxied.proxies.iter().map(|p| p.log().len()).collect()
}

/// The requests each proxy saw after `marks`.
fn since(proxied: &Proxied, marks: &[usize]) -> Vec<String> {
    (proxied.proxies.iter().zip(marks))
        .flat_map(|(p, m)| p.log().split_off(*m))
        .collect()
}

/// Route 53's API requests (its REST paths), whatever their region.
fn route53_calls(proxied: &Proxied) -> Vec<String> {
    proxied
        .log()
        .into_iter()
        .filter(|l| l.contains(" /2013-04-01/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_fails_over_when_us_east_1_is_down_and_route53s_api_with_it() {
    crate::needs_emulators!();
    let (fx, proxied, endpoints) = prepared_checkout("dpdown").await;
    let marks = marks(&proxied);
    // Every request signed for us-east-1 (Route 53's API included, as on
    // AWS), and the health checkers' reads of us-east-1's control.
    drop_all(&proxied, Match::Region("us-east-1"));
    let t0 = Instant::now();
    let report = checkout_fails_over(&fx, &endpoints, "us-west-2", "checkout-usw2").await;
    let took = t0.elapsed();
    let run = since(&proxied, &marks);
    // Route 53's API: only preflight's optional setup check (bounded reads,
    // "setup not verifiable" when they fail); no change, no GetChange.
    let r53: Vec<&String> = run
        .iter()
        .filter(|l| l.contains(" /2013-04-01/"))
        .filter(|l| !l.starts_with("GET ") || l.contains("/change/"))
        .collect();
    assert!(r53.is_empty(), "Route 53 API calls on the path: {r53:?}");
    // What went to us-east-1: the bounded side reads of its state, the drain
    // of its control (recorded unreachable) and the health checkers' reads.
    let east: Vec<&String> = run
        .iter()
        .filter(|l| l.contains("[us-east-1]"))
        .filter(|l| !(l.starts_with("GET ") && l.contains("/checkout/checkout")))
        .filter(|l| !l.contains("DescribeDBInstances") && !l.contains("DescribeAutoScalingGroups"))
        .filter(|l| !l.contains("drctl-control-use1"))
        .filter(|l| !(l.starts_with("GET ") && l.contains(" /2013-04-01/")))
        .collect();
    assert!(
        east.is_empty(),
        "the run's own path went to us-east-1: {east:?}"
    );
    assert!(
        report
            .to_string()
            .contains("to the names resolved to the target at the zone's DNS servers"),
        "the RTO is measured to the resolved answers: {report}"
    );
    eprintln!(
        "checkout failover with us-east-1 and Route 53's API down: {took:?}, {} requests",
        run.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route53s_api_down_alone_moves_checkout_and_refuses_payments_before_promoting() {
    crate::needs_emulators!();
    let (fx, proxied, endpoints) = prepared_checkout("r53down").await;
    drop_all(&proxied, Match::PathContains("/2013-04-01/".into()));
    checkout_fails_over(&fx, &endpoints, "us-west-2", "checkout-usw2").await;

    // Records mode cannot: it refuses at preflight, before the promotion.
    let marks = marks(&proxied);
    let ran = fx.failover_payments_via(&endpoints, &[]).await;
    assert_ne!(ran.code, Some(0), "{}", ran.all());
    assert!(
        ran.all().contains("Route 53's API does not answer") && ran.all().contains("health-check"),
        "the refusal names the cause and the data-plane mode: {}",
        ran.all()
    );
    let promoted = since(&proxied, &marks)
        .into_iter()
        .filter(|l| l.contains("PromoteReadReplica"))
        .count();
    assert_eq!(promoted, 0, "nothing was promoted: {}", ran.all());
    assert!(
        !route53_calls(&proxied).is_empty(),
        "the proxy saw the API calls it dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_fails_over_to_eu_west_1_while_us_west_2_is_down() {
    crate::needs_emulators!();
    let (fx, proxied, endpoints) = prepared_checkout("euw1").await;
    drop_all(&proxied, Match::Region("us-west-2"));
    checkout_fails_over(&fx, &endpoints, "eu-west-1", "checkout-euw1").await;
}

/// Regression (`status_named_the_s3_call_for_a_gcs_bucket_that_did_not_answer`):
/// with Cloud Storage silent, `status` said of the plan's `gs://` evidence
/// destination "s3 HeadBucket on gs://… failed: no answer within 5s": the
/// bound's label was fixed to S3. It names the call that was made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_the_gcs_call_that_did_not_answer() {
    crate::needs_emulators!();
    let fx = Fixture::new("gcsmute").await;
    if fx.shared.as_deref().is_some_and(|s| s.starts_with("gs://")) {
        // This test silences GCS, which would take a gs:// state with it.
        return;
    }
    let proxied = Proxied::start(true).await;
    proxied
        .proxy_for("DRCTL_GCS_ENDPOINT")
        .inject(Match::Any, Fault::Hang, usize::MAX);
    let t0 = Instant::now();
    let st = fx
        .drctl_with(&["status", "--plan", "payments"], &[], &proxied.endpoints())
        .await;
    let text = st.all();
    let line = (text.lines())
        .find(|l| l.contains("gs://") && l.contains("no answer within"))
        .unwrap_or_else(|| panic!("the silent gs:// destination is named: {text}"));
    assert!(line.contains("gcs objects.list"), "{line}");
    assert!(!text.contains("s3 HeadBucket on gs://"), "{text}");
    assert!(t0.elapsed() < Duration::from_secs(60), "bounded: {text}");
}
