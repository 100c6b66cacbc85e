//! The emulator world shared by every integration test.
//!
//! ```ignore
//! let clouds = world::clouds().await;          // real adapters, emulator endpoints
//! let zone = world::unique("zone");            // names never collide
//! let sdk = world::sdk().await;                // raw SDK clients for fixtures
//! let seeded = world::seed(&world::unique("s")); // isolated copy of the reference world
//! ```
//!
//! The first call of [`settings`] in a test process makes sure the emulators
//! run: it reuses the world described by `localstack/endpoints.env` when its
//! endpoints answer, and otherwise runs `localstack/up` (which starts
//! LocalStack, moto and fake-gcs-server and rewrites that file). The process
//! environment is never modified: settings are read from the file.
//!
//! The emulators are shared by tests running in parallel and are never reset,
//! so every test names its resources with [`unique`].
//!
//! **Opt-in.** The emulator tests run only when `DRCTL_IT=1` is set
//! (`scripts/test` sets it), so that a plain `cargo test` stays fast and
//! never starts containers. Each such test begins with
//! [`needs_emulators!`](crate::needs_emulators), which returns early (with
//! one line on stderr) when the variable is unset; and [`vars`], the one
//! door to the emulators, refuses to start them without it, so a test that
//! lacks the guard fails saying so instead of starting them.

#![allow(dead_code)] // each test module uses its own part of the fixture

use std::collections::BTreeMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drctl::cloud::retry::RetryPolicy;
use drctl::cloud::{CloudSettings, Clouds};

/// Region the emulator world calls home (`AWS_REGION` of the endpoints file).
pub const HOME: &str = "us-west-2";
/// The standby region of the reference plans.
pub const STANDBY: &str = "us-east-1";
/// The reference world's third region (a payments standby; checkout's second standby).
pub const THIRD: &str = "eu-west-1";

pub(crate) fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The variables a test run may take from its own environment rather than
/// the world's endpoints file: another Google emulator
/// (`DRCTL_GCP_ENDPOINT`, a developer's own `gcp_emu.py` beside the shared
/// world) and another DNS answerer (`DRCTL_DNS_SERVER`, a developer's own
/// `dnsplane.py`).
pub const OVERRIDES: &[&str] = &["DRCTL_GCP_ENDPOINT", "DRCTL_DNS_SERVER"];

/// The [`OVERRIDES`] set in this process's environment.
fn overridden() -> Vec<(&'static str, String)> {
    (OVERRIDES.iter())
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| (*k, v))
        })
        .collect()
}

/// `localstack/endpoints.env`, written by `localstack/up`; with
/// `DRCTL_GCP_ENDPOINT` or `DRCTL_DNS_SERVER` in the test's environment
/// naming another Google emulator or DNS answerer (a developer's own, beside
/// the shared world), a copy of it under `target/` with those values, so
/// the seed, drctl and the tests' own clients all call them.
pub fn endpoints_file() -> PathBuf {
    let file = repo_path("localstack/endpoints.env");
    let over = overridden();
    if over.is_empty() {
        return file;
    }
    let Ok(text) = std::fs::read_to_string(&file) else {
        return file;
    };
    let lines: Vec<String> = over.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if lines.iter().all(|l| text.lines().any(|t| t.trim() == l)) {
        return file;
    }
    let mut out: Vec<&str> = (text.lines())
        .filter(|l| {
            let l = l.trim_start().trim_start_matches("export ");
            !over.iter().any(|(k, _)| l.starts_with(&format!("{k}=")))
        })
        .collect();
    out.extend(lines.iter().map(String::as_str));
    let tag: String = (lines.join("-").chars())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let derived = repo_path(&format!("target/it-endpoints-{tag}.env"));
    // Written whole and renamed: tests in parallel each write the same.
    let tmp = derived.with_extension(format!("{}.tmp", unique("e")));
    std::fs::write(&tmp, out.join("\n") + "\n").expect("write the derived endpoints file");
    std::fs::rename(&tmp, &derived).expect("rename the derived endpoints file");
    derived
}

/// An endpoints file in `dir` shaped like `localstack/endpoints.env` whose
/// endpoints are a closed local port: for commands that must give their
/// answer before calling any cloud, without the emulators.
pub fn offline_endpoints(dir: &Path) -> PathBuf {
    let closed = "http://127.0.0.1:9";
    let mut text = String::from(
        "AWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\nAWS_DEFAULT_REGION=us-west-2\nAWS_REGION=us-west-2\n",
    );
    for service in [
        "ROUTE_53",
        "S3",
        "CLOUDWATCH",
        "STS",
        "RDS",
        "AUTO_SCALING",
        "EC2",
    ] {
        text.push_str(&format!("AWS_ENDPOINT_URL_{service}={closed}\n"));
    }
    text.push_str(&format!("DRCTL_GCS_ENDPOINT={closed}\n"));
    let path = dir.join("offline-endpoints.env");
    std::fs::write(&path, text).expect("write the offline endpoints file");
    path
}

/// A retry policy for tests: quick, and still exercising retries.
pub fn test_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    }
}

/// Reads the endpoints file with drctl's own parser (the one `--endpoints` uses).
fn read_env_file(path: &Path) -> Option<BTreeMap<String, String>> {
    drctl::config::read_env_file(path).ok()
}

/// Whether every endpoint in `vars` accepts TCP connections.
fn endpoints_answer(vars: &BTreeMap<String, String>) -> bool {
    let urls: Vec<&String> = vars
        .iter()
        .filter(|(k, _)| k.starts_with("AWS_ENDPOINT_URL") || k.as_str() == "DRCTL_GCS_ENDPOINT")
        .map(|(_, v)| v)
        .collect();
    !urls.is_empty()
        && urls.iter().all(|url| {
            let host_port = url
                .split("://")
                .nth(1)
                .unwrap_or(url)
                .split('/')
                .next()
                .unwrap_or_default();
            host_port
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .is_some_and(|addr| {
                    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok()
                })
        })
}

/// The variable that opts in to the emulator tests.
pub const OPT_IN: &str = "DRCTL_IT";

/// Whether the emulator tests are opted in (`DRCTL_IT` set, not `0`).
pub fn enabled() -> bool {
    std::env::var(OPT_IN).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Returns from the calling test, saying so in one line, unless the emulator
/// tests are opted in (see the module documentation).
#[macro_export]
macro_rules! needs_emulators {
    () => {
        if !$crate::world::enabled() {
            eprintln!("skipped: set DRCTL_IT=1 (scripts/test does)");
            return;
        }
    };
}

/// The variables of the running world (starting it if needed): what a child
/// process (the drctl binary, the aws CLI) needs in its environment.
pub fn vars() -> &'static BTreeMap<String, String> {
    static VARS: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    VARS.get_or_init(|| {
        assert!(
            enabled(),
            "this test uses the emulators but does not start with `needs_emulators!()`; \
             the emulator tests are opt-in: set DRCTL_IT=1 (scripts/test does)"
        );
        let file = endpoints_file();
        if let Some(vars) = read_env_file(&file).filter(endpoints_answer) {
            return gcp_override(vars);
        }
        let up = repo_path("localstack/up");
        eprintln!("world: starting the emulators with {}", up.display());
        let out = Command::new(&up)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", up.display()));
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}\n{}",
            up.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let vars = read_env_file(&file)
            .unwrap_or_else(|| panic!("{} did not write {}", up.display(), file.display()));
        assert!(
            endpoints_answer(&vars),
            "the endpoints in {} do not answer after {}",
            file.display(),
            up.display()
        );
        gcp_override(vars)
    })
}

/// The variables with the [`OVERRIDES`] taken from this process's
/// environment when set there: a test run against an emulator or DNS
/// answerer of its own (a changed `gcp_emu.py` or `dnsplane.py` started
/// from a worktree) rather than the world's. Commands get the same through [`gcp_endpoints_file`].
fn gcp_override(mut vars: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for (k, v) in overridden() {
        vars.insert(k.into(), v);
    }
    vars
}

/// The world's Google Cloud endpoint (`localstack/gcp_emu.py`); a world
/// started before it existed has none (rerun `localstack/up`).
pub fn gcp_endpoint() -> String {
    vars()
        .get("DRCTL_GCP_ENDPOINT")
        .cloned()
        .expect("DRCTL_GCP_ENDPOINT is not in localstack/endpoints.env: rerun localstack/up")
}

/// Posts `body` to the GCP emulator's admin path `path` (`/emu/...`: a
/// seed, a lag, an armed failure) and returns its answer.
pub async fn gcp_admin(path: &str, body: serde_json::Value) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", gcp_endpoint()))
        .json(&body)
        .send()
        .await
        .expect("the GCP emulator answers");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("JSON")
}

/// Every API call the GCP emulator has seen (`/emu/calls`: method, path,
/// query and a write's body), for a test to count its own.
pub async fn gcp_calls() -> Vec<serde_json::Value> {
    let v: serde_json::Value = reqwest::get(format!("{}/emu/calls", gcp_endpoint()))
        .await
        .expect("calls")
        .json()
        .await
        .expect("JSON");
    v["calls"].as_array().cloned().unwrap_or_default()
}

/// An endpoints file for a drctl command: the world's, with the GCP
/// endpoint of [`vars`] (an emulator of the test run's own, when
/// `DRCTL_GCP_ENDPOINT` is set), written in `dir`.
pub fn gcp_endpoints_file(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(endpoints_file()).unwrap_or_default();
    let gcp = vars()
        .get("DRCTL_GCP_ENDPOINT")
        .cloned()
        .unwrap_or_default();
    let mut out: String = text
        .lines()
        .filter(|l| !l.starts_with("DRCTL_GCP_ENDPOINT="))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("DRCTL_GCP_ENDPOINT={gcp}\n"));
    let path = dir.join("endpoints.env");
    std::fs::write(&path, out).expect("write the endpoints file");
    path
}

/// The run key of this test process, made once: every drctl the suite
/// starts against a fixture signs its journals and evidence manifests with
/// it and lists its public half ([`run_key_env`]), so the signed path
/// (docs/state.md, "Who can forge what") is the one the suite exercises.
pub fn run_key() -> &'static drctl::sign::SecretKey {
    static KEY: OnceLock<drctl::sign::SecretKey> = OnceLock::new();
    KEY.get_or_init(drctl::sign::SecretKey::generate)
}

/// The environment that gives a drctl process [`run_key`]: its secret
/// half (`DRCTL_RUN_KEY`) and its public half listed (`DRCTL_RUN_PUBLIC`).
pub fn run_key_env() -> [(&'static str, String); 2] {
    [
        ("DRCTL_RUN_KEY", run_key().to_text()),
        ("DRCTL_RUN_PUBLIC", run_key().public().to_text()),
    ]
}

/// Settings that point every adapter at the emulators (with [`test_retry`]).
pub fn settings() -> CloudSettings {
    static SETTINGS: OnceLock<CloudSettings> = OnceLock::new();
    SETTINGS
        .get_or_init(|| CloudSettings {
            retry: test_retry(),
            ..CloudSettings::from_vars(vars())
        })
        .clone()
}

/// A fresh name: `prefix`, then the process id, a per-process counter and a
/// few characters from the clock; lowercase letters, digits and hyphens
/// only, so it is a valid bucket, database, group or DNS label.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let clock = base36(nanos / 1_000 % 36u64.pow(4));
    format!(
        "{}-{}{}{}",
        prefix.to_ascii_lowercase(),
        base36(u64::from(std::process::id())),
        base36(n),
        clock
    )
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Runs `localstack/seed --suffix SUFFIX --json` against the world and
/// returns its JSON: an isolated copy of the reference world (zone
/// `SUFFIX.example.com.`, ids such as `payments-db-SUFFIX`). Seeding is
/// idempotent: a seed that fails (moto answering a burst of concurrent
/// seeds with an HTTP 500, LocalStack answering after the seed's read
/// timeout) is run again, as [`tried`] does, for at most
/// [`FIXTURE_TRIES`]. Blocking: call it from `spawn_blocking` in async
/// code.
pub fn seed(suffix: &str) -> serde_json::Value {
    seed_with(suffix, &[])
}

/// [`seed`] with more of the seed's arguments (`--kubernetes`).
pub fn seed_with(suffix: &str, extra: &[&str]) -> serde_json::Value {
    vars();
    let t0 = std::time::Instant::now();
    let mut pause = Duration::from_millis(300);
    let mut tries = 0;
    loop {
        tries += 1;
        match seed_once(suffix, extra) {
            Ok(v) => return v,
            Err(e) if t0.elapsed() + pause < FIXTURE_TRIES => {
                eprintln!("seeding {suffix} failed (try {tries}), again: {e}");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => panic!(
                "seeding {suffix}: still failing after {tries} tries in {:?}: {e}",
                t0.elapsed()
            ),
        }
    }
}

fn seed_once(suffix: &str, extra: &[&str]) -> Result<serde_json::Value, String> {
    let mut args = vec!["--suffix", suffix, "--json"];
    args.extend_from_slice(extra);
    // One served seeding process for the binary ([`crate::seeder`]); the
    // command itself when there is none.
    if let Some(answer) = crate::seeder::seed(&args) {
        return answer.map_err(|e| format!("seed --suffix {suffix} failed:\n{e}"));
    }
    let script = repo_path("localstack/seed");
    let out = Command::new(&script)
        .args(&args)
        .env("DRCTL_ENDPOINTS_FILE", endpoints_file())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    if !out.status.success() {
        return Err(format!(
            "{} --suffix {suffix} failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{} printed no JSON ({e}):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// How long a fixture's creation is tried again ([`tried`]) before the
/// test fails: a moto busy with the other tests' creations answers
/// some of them with an HTTP 500 for as long as the burst lasts, and a
/// LocalStack loaded by a whole suite now and then answers a seed's call
/// after its 30 s read timeout (one failed seed can take a minute or two).
pub const FIXTURE_TRIES: Duration = Duration::from_secs(300);

/// Makes a fixture with `call`, again and again while it fails (moto now
/// and then answers a burst of concurrent creations with an HTTP 500),
/// for at most [`FIXTURE_TRIES`]; panics naming `what` and the last error.
pub async fn tried<T, E, F>(what: &str, mut call: impl FnMut() -> F) -> T
where
    E: std::fmt::Debug,
    F: std::future::Future<Output = Result<T, E>>,
{
    let t0 = std::time::Instant::now();
    let mut pause = Duration::from_millis(300);
    let mut tries = 0;
    loop {
        tries += 1;
        match call().await {
            Ok(v) => return v,
            Err(e) if t0.elapsed() + pause < FIXTURE_TRIES => {
                eprintln!("{what} failed (try {tries}), again: {e:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => panic!(
                "{what}: still failing after {tries} tries in {:?}: {e:?}",
                t0.elapsed()
            ),
        }
    }
}

/// How long a test waits for a process it started (drctl, mostly) to reach
/// the point it asserts, or for the world to show it: the test's patience,
/// not an expectation (an idle fast machine takes seconds; a slow one under
/// the whole suite's load several times as long).
pub const PATIENCE: Duration = Duration::from_secs(180);

/// How often [`wait_for`] asks again.
pub const POLL: Duration = Duration::from_millis(100);

/// Waits until `check` gives `Ok` (and returns it), asking again every
/// [`POLL`], for at most `bound`; see [`wait_for_every`].
pub async fn wait_for<T>(
    what: &str,
    bound: Duration,
    check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    wait_for_every(what, bound, POLL, check).await
}

/// Waits until `check` gives `Ok` (and returns it), asking again every
/// `every`, for at most `bound`. `Err` is a not-yet that says what was seen
/// instead; a try that has not ended by the bound is one too (it is cut
/// short). At the bound it panics naming `what`, the time waited and what
/// the last try said. The bound is the test's patience, not a guess at how
/// long the thing takes: make it generous (a slow machine under load takes
/// several times longer than a fast idle one).
pub async fn wait_for_every<T>(
    what: &str,
    bound: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let t0 = std::time::Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let left = bound.saturating_sub(t0.elapsed());
        let last = match tokio::time::timeout(left, check()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(not_yet)) => not_yet,
            Err(_) => "(the last try was still running at the bound)".to_string(),
        };
        if t0.elapsed() >= bound {
            panic!(
                "waited {:?} ({tries} tries) for {what}; the last try saw: {last}",
                t0.elapsed()
            );
        }
        tokio::time::sleep(every.min(bound.saturating_sub(t0.elapsed()))).await;
    }
}

/// For the checks of [`wait_for`] on something a started process does:
/// panics when `child` has ended (nothing more can come), saying that
/// `name` ended before `what`, with its status and what it said on its
/// piped stdout and stderr; returns while it runs.
pub async fn running(child: &mut tokio::process::Child, name: &str, what: &str) {
    use tokio::io::AsyncReadExt;
    let Ok(Some(status)) = child.try_wait() else {
        return;
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_end(&mut out).await;
    }
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_end(&mut err).await;
    }
    panic!(
        "{name} ended ({status}) before {what}\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
}

/// Creates a postgres primary with backups on in `region`, straight at
/// the emulator; returns its ARN. Tried again while it fails ([`tried`]):
/// moto now and then answers a burst of concurrent creations with an HTTP
/// 500.
pub async fn create_primary(region: &str, id: &str) -> String {
    let rds = sdk().await.rds(region);
    let out = tried(&format!("create db instance {id}"), || {
        rds.create_db_instance()
            .db_instance_identifier(id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .master_username("drctl")
            .master_user_password("not-a-secret-1")
            .allocated_storage(20)
            .backup_retention_period(7)
            .send()
    })
    .await;
    out.db_instance()
        .and_then(|d| d.db_instance_arn())
        .expect("arn")
        .to_string()
}

/// Creates a hosted zone named `name`, straight at the emulator.
pub async fn create_zone(name: &str) -> drctl::cloud::HostedZone {
    let out = sdk()
        .await
        .route53()
        .create_hosted_zone()
        .name(name)
        .caller_reference(unique("ref"))
        .send()
        .await
        .expect("create hosted zone");
    let id = out.hosted_zone().expect("zone").id();
    drctl::cloud::HostedZone {
        id: id.trim_start_matches("/hostedzone/").to_string(),
        name: format!("{}.", name.trim_end_matches('.')),
    }
}

/// Cloud Run's own API at the world's endpoint, below the capacity
/// role's port: what a test reads a service's floor and labels with.
pub fn cloud_run() -> drctl::cloud::gcp_run::GcpRun {
    drctl::cloud::gcp_run::GcpRun::new(&settings())
}

/// Compute Engine's own API at the world's endpoint, below the capacity
/// role's port: what a test reads a managed instance group with.
pub fn instance_groups() -> drctl::cloud::gcp_mig::GcpMig {
    drctl::cloud::gcp_mig::GcpMig::new(&settings())
}

/// The real adapters, pointed at the emulators.
pub async fn clouds() -> Clouds {
    drctl::cloud::connect(&settings())
        .await
        .expect("adapters build from the emulator settings")
}

/// Raw SDK clients configured exactly like the adapters' (same endpoints,
/// credentials, timeouts), for creating fixtures: `sdk().await.rds(HOME)`.
pub async fn sdk() -> drctl::cloud::aws::Sdk {
    drctl::cloud::aws::Sdk::load(&settings()).await
}

/// The fake-gcs-server endpoint (`DRCTL_GCS_ENDPOINT`).
pub fn gcs_endpoint() -> String {
    settings()
        .gcs_endpoint
        .expect("DRCTL_GCS_ENDPOINT is set in the endpoints file")
}

/// Creates a GCS bucket through the emulator's JSON API (bucket
/// administration is gRPC in the storage crate, which no emulator speaks).
pub async fn create_gcs_bucket(name: &str) {
    let url = format!("{}/storage/v1/b?project=test-project", gcs_endpoint());
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(format!(r#"{{"name":"{name}"}}"#))
        .send()
        .await
        .expect("fake-gcs-server answers");
    assert!(
        resp.status().is_success(),
        "creating gs://{name}: HTTP {}",
        resp.status()
    );
}

/// Runs `cleanup` to the end on a runtime and thread of its own: fixtures are
/// dropped inside or outside a test's runtime, and while unwinding from a
/// failed assertion.
pub fn run_cleanup<F>(cleanup: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(cleanup);
    })
    .join();
}

/// The last `n` lines of the file at `path` (a process's log), for a
/// failure message.
pub fn log_tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Waits (at most `bound`) until the process `name`, started with its
/// stdout piped and its stderr into `log`, says it is ready: prints a line
/// for which `ready` gives `Some` (returned). Panics naming the process and
/// its log (with the log's end) when it ends first or has not said so in
/// time; it is killed then. What it prints later is read and dropped.
pub fn ready_line<T: Send + 'static>(
    name: &str,
    child: &mut std::process::Child,
    log: &Path,
    bound: Duration,
    ready: impl Fn(&str) -> Option<T> + Send + 'static,
) -> T {
    use std::io::BufRead;
    let stdout = (child.stdout.take()).unwrap_or_else(|| panic!("{name}: its stdout is not piped"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut said = Vec::new();
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // Once it said so, the rest is drained (a full pipe would stop it).
            let Some(sender) = &tx else { continue };
            match ready(&line) {
                Some(v) => {
                    let _ = sender.send(Ok(v));
                    tx = None;
                }
                None => said.push(line),
            }
        }
        if let Some(tx) = tx {
            let _ = tx.send(Err(said.join("\n")));
        }
    });
    let why = match rx.recv_timeout(bound) {
        Ok(Ok(v)) => return v,
        Ok(Err(said)) => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            format!("it ended ({status}) without saying it was ready; its stdout:\n{said}")
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            format!("it did not say it was ready within {bound:?} (killed)")
        }
    };
    panic!(
        "{name}: {why}\n--- its log, {} (end):\n{}",
        log.display(),
        log_tail(log, 40)
    );
}

/// The Auto Scaling calls the tests make, through the capacity role's port
/// of `[[compute]]` (its adapter implements the role; there is no Auto
/// Scaling trait of its own).
pub trait Asg {
    /// The `[[compute]]` adapter.
    fn asg(&self) -> drctl::cloud::Port<'_>;
}

impl Asg for drctl::cloud::Clouds {
    fn asg(&self) -> drctl::cloud::Port<'_> {
        (self.capacity.get("compute", "-")).expect("the Auto Scaling adapter")
    }
}

/// An Auto Scaling group's reads and writes in the words of its API.
#[allow(async_fn_in_trait)]
pub trait AsgCalls {
    /// `DescribeAutoScalingGroups` of group `name`, as `status` shows it.
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<drctl::cloud::ComputeGroup>, drctl::cloud::CloudError>;
    /// `UpdateAutoScalingGroup` to `capacity`.
    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: drctl::cloud::Capacity,
    ) -> Result<(), drctl::cloud::CloudError>;
    /// `CreateOrUpdateTags` (after a read, which names what tags go on).
    async fn tag_group(
        &self,
        region: &str,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), drctl::cloud::CloudError>;
    /// `DeleteTags` of `keys` (after a read).
    async fn untag_group(
        &self,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), drctl::cloud::CloudError>;
}

impl AsgCalls for drctl::cloud::Port<'_> {
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<drctl::cloud::ComputeGroup>, drctl::cloud::CloudError> {
        self.describe(region, name).await
    }

    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: drctl::cloud::Capacity,
    ) -> Result<(), drctl::cloud::CloudError> {
        let size = drctl::cloud::Size::Bounds(capacity);
        self.set(region, name, size, "it").await.map(|_| ())
    }

    async fn tag_group(
        &self,
        region: &str,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), drctl::cloud::CloudError> {
        let read = self.read(region, name).await?;
        self.mark(region, &named(read, name), tags).await
    }

    async fn untag_group(
        &self,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), drctl::cloud::CloudError> {
        let read = self.read(region, name).await?;
        self.unmark(region, &named(read, name), keys).await
    }
}

/// A group's reading, or one that names only `name` (a group that does
/// not exist: the write then gets the provider's own answer).
fn named(read: Option<drctl::cloud::Reading>, name: &str) -> drctl::cloud::Reading {
    read.unwrap_or_else(|| drctl::cloud::Reading {
        size: drctl::cloud::Size::Count(0),
        serving: 0,
        change: drctl::cloud::Change::Settled,
        marks: Default::default(),
        handle: name.to_string(),
        state: String::new(),
        ceiling: None,
        balanced_by: Vec::new(),
        targets: Vec::new(),
    })
}
