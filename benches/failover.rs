//! Failover benchmark against the emulators (not a timed test).
//!
//! For each size N it seeds N fresh, isolated copies of the reference world
//! (`localstack/seed --suffix S`), writes N copies of the payments plan (each
//! renamed `payments-S`), and runs ONE failover over all N plans to
//! `us-east-1` through the library engine, with every cloud call metered
//! (`drctl::cloud::metered`). Per run it reports the wall time, the number of
//! cloud calls (total and by operation), the time spent inside calls, the
//! critical path through the step graph, and the engine's own overhead.
//!
//! ```text
//! cargo bench --bench failover                      # sizes 1,10,50, 3 repetitions
//! cargo bench --bench failover -- --sizes 1,10 --reps 1
//! cargo bench --bench failover -- --sizes 1 --state s3://bucket/prefix   # journals and locks on S3
//! DRCTL_BENCH_SIZES=1 DRCTL_BENCH_REPS=1 cargo bench --bench failover
//! ```
//!
//! Other knobs: `--parallelism P` (default 8; N=10 is also run with 1),
//! `--seed-jobs J` (seeds at once, default 4), `DRCTL_ENDPOINTS_FILE`.
//! The emulators are started with `localstack/up` if needed. See
//! `docs/performance.md` for the figures and how to read them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use drctl::cloud::metered::{Call, ContextHook, MeterLog, Metered};
use drctl::engine::{Engine, Reporter, RunOptions};
use drctl::journal::event::Event;
use drctl::journal::store::JournalStore;
use drctl::steps::StepFailure;
use drctl::steps::graph::Step;
use serde_json::Value;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const TARGET: &str = "us-east-1";
/// Context given to calls made outside any step (locks, approval and RPO
/// gates, the operator identity).
const OUTSIDE: &str = "(gates)";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[path = "support/mod.rs"]
mod support;

struct Args {
    sizes: Vec<usize>,
    reps: usize,
    parallelism: usize,
    seed_jobs: usize,
    /// `--state s3://bucket/prefix` (or gs://): journals and locks on a
    /// shared bucket instead of a local directory.
    state: Option<String>,
}

fn args() -> Result<Args, BoxError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut a = Args {
        sizes: env("DRCTL_BENCH_SIZES")
            .map(|s| support::parse_list(&s))
            .transpose()?
            .unwrap_or(vec![1, 10, 50]),
        reps: env("DRCTL_BENCH_REPS")
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(3),
        parallelism: 8,
        seed_jobs: 4,
        state: env("DRCTL_BENCH_STATE"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--sizes" => a.sizes = support::parse_list(&value()?)?,
            "--reps" => a.reps = value()?.parse()?,
            "--parallelism" => a.parallelism = value()?.parse()?,
            "--seed-jobs" => a.seed_jobs = value()?.parse()?,
            "--state" => a.state = Some(value()?),
            // `cargo bench` passes `--bench`; libtest-style filters are ignored.
            _ => {}
        }
    }
    a.reps = a.reps.max(1);
    a.seed_jobs = a.seed_jobs.max(1);
    Ok(a)
}

// ---------------------------------------------------------------------------
// Attributing calls to steps: the engine runs each step inside a tracing span
// `step` with a `step = <id>` field; this layer keeps that id with the span so
// the metering hook can ask which step is current when a call is made.

struct StepId(String);
struct StepLayer;

impl<S> Layer<S> for StepLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        struct V(Option<String>);
        impl Visit for V {
            fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
                if field.name() == "step" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
            fn record_str(&mut self, field: &Field, value: &str) {
                if field.name() == "step" {
                    self.0 = Some(value.to_string());
                }
            }
        }
        if attrs.metadata().name() != "step" {
            return;
        }
        let mut v = V(None);
        attrs.record(&mut v);
        if let (Some(step), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(StepId(step));
        }
    }
}

fn current_step() -> Option<String> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let span = registry.span(id)?;
            span.scope()
                .find_map(|s| s.extensions().get::<StepId>().map(|x| x.0.clone()))
        })
        .flatten()
}

fn install_tracing() {
    // Only drctl's own spans: the SDK's spans would cost time and say nothing here.
    let filter =
        tracing_subscriber::filter::filter_fn(|m: &Metadata<'_>| m.target().starts_with("drctl"));
    let subscriber = Registry::default().with(filter).with(StepLayer);
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
}

// ---------------------------------------------------------------------------
// A reporter that keeps each step's start, end and duration.

#[derive(Default)]
struct Timings {
    steps: Mutex<HashMap<String, StepTime>>,
}

#[derive(Clone, Copy)]
struct StepTime {
    start: Instant,
    elapsed: Option<Duration>,
    ok: bool,
}

impl Reporter for Timings {
    fn started(&self, step: &Step) {
        let t = StepTime {
            start: Instant::now(),
            elapsed: None,
            ok: false,
        };
        self.steps.lock().unwrap().insert(step.id.to_string(), t);
    }
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, elapsed: Duration) {
        if let Err(e) = result {
            eprintln!("bench: step {} failed: {e}", step.id);
        }
        if let Some(t) = self.steps.lock().unwrap().get_mut(&step.id.to_string()) {
            t.elapsed = Some(elapsed);
            t.ok = result.is_ok();
        }
    }
    fn note(&self, text: &str) {
        eprintln!("bench: note: {text}");
    }
}

// ---------------------------------------------------------------------------
// The emulator world.

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn endpoints_file() -> PathBuf {
    std::env::var_os("DRCTL_ENDPOINTS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("localstack/endpoints.env"))
}

async fn emulators_up() -> Result<(), BoxError> {
    let st = tokio::process::Command::new(repo().join("localstack/up"))
        .stdout(Stdio::null())
        .status()
        .await?;
    if !st.success() {
        return Err(format!("localstack/up failed ({st})").into());
    }
    Ok(())
}

async fn seed(suffix: String) -> Result<(), BoxError> {
    let out = tokio::process::Command::new(repo().join("localstack/seed"))
        .args(["--suffix", &suffix, "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "localstack/seed --suffix {suffix} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Seeds one world per suffix, `jobs` at a time.
async fn seed_all(suffixes: &[String], jobs: usize) -> Result<(), BoxError> {
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs));
    let mut set = tokio::task::JoinSet::new();
    for s in suffixes {
        let sem = sem.clone();
        let s = s.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            // The emulators sometimes answer 500 under load: try again.
            let mut tries = 0;
            loop {
                tries += 1;
                match seed(s.clone()).await {
                    Err(e) if tries < 3 => eprintln!("bench: retrying seed {s}: {e:.200}"),
                    r => break r,
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// The payments plan, renamed `payments-S`, for the world `seed --suffix S`
/// made (as `tests/it/cli.rs::suffixed_plans` does for the whole directory).
fn suffixed_payments(suffix: &str) -> Result<String, BoxError> {
    let mut t = std::fs::read_to_string(repo().join("plans/payments.toml"))?;
    for id in [
        "payments-db-use1",
        "payments-api-usw2",
        "payments-api-use1",
        "drctl-evidence-use1",
    ] {
        t = t.replace(&format!("\"{id}\""), &format!("\"{id}-{suffix}\""));
        t = t.replace(&format!("//{id}/"), &format!("//{id}-{suffix}/"));
    }
    t = t.replace("\"payments-db\"", &format!("\"payments-db-{suffix}\""));
    t = t.replace(
        "gs://drctl-evidence/",
        &format!("gs://drctl-evidence-{suffix}/"),
    );
    t = t.replace(".example.com.\"", &format!(".{suffix}.example.com.\""));
    t = t.replace("\"example.com.\"", &format!("\"{suffix}.example.com.\""));
    t = t.replace(
        "name = \"payments\"",
        &format!("name = \"payments-{suffix}\""),
    );
    Ok(t)
}

// ---------------------------------------------------------------------------
// One measured run.

struct RunStats {
    outcome: String,
    steps: usize,
    wall: Duration,
    /// From the start of `engine.run` to the first step's start.
    before_steps: Duration,
    calls: usize,
    errors: usize,
    call_time: Duration,
    /// Time of the run during which no cloud call was in flight.
    no_call: Duration,
    counts: BTreeMap<&'static str, usize>,
    /// Longest path through the step graph, by step wall time.
    cp_wall: Duration,
    /// Longest path through the step graph, by time inside the calls of each step.
    cp_calls: Duration,
    /// Steps on the critical path (by wall time).
    cp_steps: Vec<String>,
    /// Per step kind: (steps, total wall, total call time, calls).
    kinds: BTreeMap<String, (usize, Duration, Duration, usize)>,
    /// Calls made outside steps and their time.
    outside: (usize, Duration),
    /// Calls by step kind (or outside steps) and operation.
    kind_calls: BTreeMap<String, BTreeMap<&'static str, usize>>,
}

/// Length of the union of the calls' intervals (from `since` on): the time
/// during which at least one call was in flight.
fn busy(calls: &[Call], since: Instant) -> Duration {
    let mut spans: Vec<(Instant, Instant)> = calls
        .iter()
        .map(|c| (c.start.max(since), c.end.max(since)))
        .collect();
    spans.sort();
    let mut total = Duration::ZERO;
    let mut cur: Option<(Instant, Instant)> = None;
    for (s, e) in spans {
        match &mut cur {
            Some((_, ce)) if s <= *ce => *ce = (*ce).max(e),
            _ => {
                if let Some((cs, ce)) = cur {
                    total += ce - cs;
                }
                cur = Some((s, e));
            }
        }
    }
    if let Some((cs, ce)) = cur {
        total += ce - cs;
    }
    total
}

/// A step of the graph that ran, as journaled when the run started.
struct Node {
    id: String,
    deps: Vec<usize>,
}

/// The step graph of a run, from its journal.
async fn graph_of(store: &dyn JournalStore, run_id: &str) -> Result<Vec<Node>, BoxError> {
    let records = drctl::journal::read(store, run_id).await?;
    let steps = records
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { steps, .. } => Some(steps.clone()),
            _ => None,
        })
        .ok_or("the journal has no run-started record")?;
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    Ok(steps
        .iter()
        .map(|s| Node {
            id: s.id.to_string(),
            deps: s
                .deps
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect(),
        })
        .collect())
}

/// Longest path through the dependency graph, each step weighing `w[i]`.
fn longest_path(steps: &[Node], w: &[Duration]) -> (Duration, Vec<usize>) {
    fn finish(
        i: usize,
        steps: &[Node],
        w: &[Duration],
        memo: &mut Vec<Option<(Duration, Option<usize>)>>,
    ) -> Duration {
        if let Some((f, _)) = memo[i] {
            return f;
        }
        let mut best = (Duration::ZERO, None);
        for &d in &steps[i].deps {
            let f = finish(d, steps, w, memo);
            if f > best.0 || best.1.is_none() {
                best = (f, Some(d));
            }
        }
        let f = best.0 + w[i];
        memo[i] = Some((f, best.1));
        f
    }
    let mut memo = vec![None; steps.len()];
    let mut end = None;
    let mut total = Duration::ZERO;
    for i in 0..steps.len() {
        let f = finish(i, steps, w, &mut memo);
        if f > total || end.is_none() {
            total = f;
            end = Some(i);
        }
    }
    let mut path = Vec::new();
    let mut at = end;
    while let Some(i) = at {
        path.push(i);
        at = memo[i].and_then(|(_, p)| p);
    }
    path.reverse();
    (total, path)
}

fn step_kind(id: &str) -> String {
    let tail = id.split_once('/').map_or(id, |(_, t)| t);
    tail.split(':').next().unwrap_or(tail).to_string()
}

async fn measure(
    settings: &drctl::cloud::CloudSettings,
    n: usize,
    parallelism: usize,
    tag: &str,
    seed_jobs: usize,
    shared: Option<&str>,
) -> Result<RunStats, BoxError> {
    let suffixes: Vec<String> = (0..n).map(|i| format!("{tag}p{i}")).collect();
    let t = Instant::now();
    seed_all(&suffixes, seed_jobs).await?;
    eprintln!(
        "bench: seeded {n} world(s) in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let plan_dir = dir.path().join("plans");
    std::fs::create_dir_all(&plan_dir)?;
    std::fs::copy(repo().join("plans/tiers.toml"), plan_dir.join("tiers.toml"))?;
    for s in &suffixes {
        std::fs::write(
            plan_dir.join(format!("payments-{s}.toml")),
            suffixed_payments(s)?,
        )?;
    }
    let loaded = drctl::plan::load(std::slice::from_ref(&plan_dir));
    if loaded.plans.len() != n {
        return Err(format!(
            "expected {n} plans, loaded {}: {:?}",
            loaded.plans.len(),
            loaded.diagnostics
        )
        .into());
    }
    let plans = loaded.plans;

    let clouds = drctl::cloud::connect(settings).await?;
    let side_clouds = drctl::cloud::connect(&settings.single_attempt()).await?;
    let hook: ContextHook = Arc::new(|| Some(current_step().unwrap_or_else(|| OUTSIDE.into())));
    let (clouds, log): (_, MeterLog) = Metered::wrap_with_context(clouds, hook);
    let timings = Arc::new(Timings::default());
    let state_dir = dir.path().join("state");
    // Shared state goes through adapters of its own, unmetered: the call
    // counts stay those of the failover, and the wall time shows what the
    // state adds.
    let state = match shared {
        Some(url) => {
            let location = drctl::state::StateLocation::parse(url)?;
            let objects = drctl::cloud::connect(settings).await?.objects;
            support::ensure_state_bucket(objects.as_ref(), url, &endpoints_file()).await?;
            drctl::state::open(&location, objects, TARGET, Default::default()).await?
        }
        None => drctl::state::State::local(state_dir),
    };
    let store: Arc<dyn JournalStore> = state.journals.clone();
    let engine = Engine {
        clouds,
        side_clouds,
        store: store.clone(),
        locks: state.locks.clone(),
        reporter: timings.clone(),
        confirm: None,
        notify: None,
        waits: None,
        // A failover journals no inventory.
        inventory: None,
    };
    let mut opts = RunOptions::failover(TARGET);
    opts.parallelism = parallelism;
    opts.approve = Some("failover benchmark".into());

    let t0 = Instant::now();
    let report = engine.run(&plans, &opts).await?;
    let wall = t0.elapsed();

    let steps = graph_of(store.as_ref(), &report.run_id).await?;
    let times = timings.steps.lock().unwrap().clone();
    let calls: Vec<Call> = log.calls();
    let mut call_time_by_step: HashMap<&str, (Duration, usize)> = HashMap::new();
    for c in &calls {
        let e = call_time_by_step
            .entry(c.context.as_deref().unwrap_or(OUTSIDE))
            .or_default();
        e.0 += c.duration();
        e.1 += 1;
    }
    let w_wall: Vec<Duration> = steps
        .iter()
        .map(|s| times.get(&s.id).and_then(|t| t.elapsed).unwrap_or_default())
        .collect();
    let w_calls: Vec<Duration> = steps
        .iter()
        .map(|s| {
            call_time_by_step
                .get(s.id.as_str())
                .map(|x| x.0)
                .unwrap_or_default()
        })
        .collect();
    let (cp_wall, path) = longest_path(&steps, &w_wall);
    let (cp_calls, _) = longest_path(&steps, &w_calls);
    let mut kinds: BTreeMap<String, (usize, Duration, Duration, usize)> = BTreeMap::new();
    for (i, s) in steps.iter().enumerate() {
        let k = kinds.entry(step_kind(&s.id)).or_default();
        let (ct, cn) = call_time_by_step
            .get(s.id.as_str())
            .copied()
            .unwrap_or_default();
        k.0 += 1;
        k.1 += w_wall[i];
        k.2 += ct;
        k.3 += cn;
    }
    let mut kind_calls: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for c in &calls {
        let k = match c.context.as_deref() {
            None | Some(OUTSIDE) => OUTSIDE.to_string(),
            Some(step) => step_kind(step),
        };
        *kind_calls.entry(k).or_default().entry(c.label).or_insert(0) += 1;
    }
    let first_start = times.values().map(|t| t.start).min();
    let failed = times
        .values()
        .filter(|t| t.elapsed.is_some() && !t.ok)
        .count();
    if failed > 0 || report.outcome != drctl::journal::Outcome::Succeeded {
        eprintln!(
            "bench: run {} ended {} ({failed} failed steps)",
            report.run_id, report.outcome
        );
    }
    Ok(RunStats {
        outcome: report.outcome.to_string(),
        steps: steps.len(),
        wall,
        before_steps: first_start.map_or(wall, |s| s.saturating_duration_since(t0)),
        calls: calls.len(),
        errors: log.errors(),
        call_time: log.total_time(),
        no_call: wall.saturating_sub(busy(&calls, t0)),
        counts: log.counts(),
        cp_wall,
        cp_calls,
        cp_steps: path.iter().map(|&i| steps[i].id.clone()).collect(),
        kinds,
        outside: call_time_by_step
            .get(OUTSIDE)
            .map(|x| (x.1, x.0))
            .unwrap_or_default(),
        kind_calls,
    })
}

// ---------------------------------------------------------------------------
// Reporting.

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_n(mut v: Vec<usize>) -> usize {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

fn print_tables(groups: &[(usize, usize, Vec<RunStats>)], reps: usize) {
    println!();
    println!("### Failover to {TARGET}, median of {reps} run(s) (times in ms)\n");
    println!(
        "| plans | parallelism | steps | wall | before first step | calls | calls/plan | time in calls (sum) | critical path (step wall) | critical path (call time) | wall − CP | no call in flight | outcome |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (n, p, runs) in groups {
        let m = |f: &dyn Fn(&RunStats) -> Duration| median(runs.iter().map(f).collect());
        let calls = median_n(runs.iter().map(|r| r.calls).collect());
        let outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
        let ok = outcomes.iter().filter(|o| **o == "succeeded").count();
        println!(
            "| {n} | {p} | {} | {} | {} | {calls} | {:.1} | {} | {} | {} | {} | {} | {ok}/{} succeeded |",
            runs[0].steps,
            ms(m(&|r| r.wall)),
            ms(m(&|r| r.before_steps)),
            calls as f64 / *n as f64,
            ms(m(&|r| r.call_time)),
            ms(m(&|r| r.cp_wall)),
            ms(m(&|r| r.cp_calls)),
            ms(m(&|r| r.wall.saturating_sub(r.cp_wall))),
            ms(m(&|r| r.no_call)),
            runs.len(),
        );
    }

    println!("\n### Cloud calls by operation (first run of each row)\n");
    let labels: std::collections::BTreeSet<&str> = groups
        .iter()
        .flat_map(|(_, _, r)| r[0].counts.keys().copied())
        .collect();
    print!("| operation |");
    for (n, p, _) in groups {
        print!(" N={n} p={p} |");
    }
    println!();
    print!("|---|");
    for _ in groups {
        print!("---:|");
    }
    println!();
    for l in labels {
        print!("| `{l}` |");
        for (_, _, r) in groups {
            print!(" {} |", r[0].counts.get(l).copied().unwrap_or(0));
        }
        println!();
    }
    print!("| calls outside steps (gates) |");
    for (_, _, r) in groups {
        print!(" {} |", r[0].outside.0);
    }
    println!();
    print!("| failed calls |");
    for (_, _, r) in groups {
        print!(" {} |", r[0].errors);
    }
    println!();

    println!(
        "\n### Where the time goes, per step kind (first run of each row; mean per step, ms)\n"
    );
    println!(
        "| plans | parallelism | step kind | steps | wall/step | time in calls/step | calls/step |"
    );
    println!("|---:|---:|---|---:|---:|---:|---:|");
    for (n, p, runs) in groups {
        for (k, (c, wall, ct, calls)) in &runs[0].kinds {
            let c32 = (*c).max(1) as u32;
            println!(
                "| {n} | {p} | {k} | {c} | {} | {} | {:.1} |",
                ms(*wall / c32),
                ms(*ct / c32),
                *calls as f64 / *c as f64
            );
        }
    }

    if let Some((n, p, runs)) = groups.first() {
        println!("\n### Who makes which calls (N={n} p={p}, first run; all plans together)\n");
        println!("| step kind | calls |");
        println!("|---|---|");
        for (k, by) in &runs[0].kind_calls {
            let list: Vec<String> = by.iter().map(|(l, c)| format!("{l} ×{c}")).collect();
            println!("| {k} | {} |", list.join(", "));
        }
    }

    println!("\n### Critical path (by step wall time), first run of each row\n");
    for (n, p, runs) in groups {
        println!("- N={n} p={p}: {}", runs[0].cp_steps.join(" → "));
    }
}

fn main() -> Result<(), BoxError> {
    let a = args()?;
    install_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        emulators_up().await?;
        let vars = drctl::config::read_env_file(&endpoints_file())?;
        let settings = drctl::cloud::CloudSettings::from_vars(&vars);
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() % 100_000;
        let mut configs = Vec::new();
        for &n in &a.sizes {
            configs.push((n, a.parallelism));
            if n == 10 && a.parallelism != 1 {
                configs.push((n, 1));
            }
        }
        eprintln!(
            "bench: sizes {:?}, {} repetition(s), configurations (plans, parallelism) {configs:?}",
            a.sizes, a.reps
        );
        let mut groups = Vec::new();
        for (ci, &(n, p)) in configs.iter().enumerate() {
            let mut runs = Vec::new();
            for r in 0..a.reps {
                // A failover changes the world: every run gets fresh worlds.
                let tag = format!("b{stamp}c{ci}r{r}");
                let s = match measure(&settings, n, p, &tag, a.seed_jobs, a.state.as_deref()).await {
                    Ok(s) => s,
                    Err(e) => {
                        // Keep what was measured: report it, say what is missing.
                        eprintln!("bench: N={n} p={p} run {} abandoned: {e:.300}", r + 1);
                        break;
                    }
                };
                eprintln!(
                    "bench: N={n} p={p} run {}: wall {} ms, {} calls, {} ms in calls, critical path {} ms ({})",
                    r + 1,
                    ms(s.wall),
                    s.calls,
                    ms(s.call_time),
                    ms(s.cp_wall),
                    s.outcome
                );
                runs.push(s);
            }
            if !runs.is_empty() {
                groups.push((n, p, runs));
            }
        }
        print_tables(&groups, a.reps);
        Ok::<_, BoxError>(())
    })
}
