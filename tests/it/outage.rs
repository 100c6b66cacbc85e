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

/// Wall-time bound of a failover with the home region down, on the emulators.
const FAST: Duration = Duration::from_secs(2);

/// What shared state may add to [`FAST`]: the store probe, the lease, and
/// two requests per journal record (about 35 requests to the emulated S3
/// for one plan; docs/performance.md has the measured figure).
const SHARED_STATE_ALLOWANCE: Duration = Duration::from_millis(500);

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
    let ran = fx
        .failover_payments_via(&gcs_down, &["--output", "json"])
        .await;
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let report = ran.json();
    assert_eq!(report["outcome"], "evidence_incomplete", "{}", ran.all());
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
    let url = drctl::cloud::ObjectUrl::parse(&format!(
        "gs://drctl-evidence-{}/payments/{run}/manifest.json",
        fx.suffix
    ))
    .expect("url");
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
                "--read-timeout",
                "1s",
            ],
            &[],
            &dead.endpoints,
        )
        .await;
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "bounded by the read timeout"
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
    assert!(
        t0.elapsed() < Duration::from_secs(6),
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
