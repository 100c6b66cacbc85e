//! A failover simulated: the engine itself, with its budgets and its
//! Route 53 queues, run against the timed fake cloud
//! ([`crate::cloud::fake::FakeCloud::timed`]) under virtual time.
//!
//! # Why
//!
//! The forecast ([`crate::forecast`]) adds up the model along the graph;
//! this runs the real thing against a world that takes the model's time
//! and throttles as AWS does, so the two can be checked against each other
//! (`benches/budget.rs`) and the engine's behaviour under AWS's limits
//! (no throttling error reaching a step, critical plans first, batches
//! per zone) can be tested without AWS. Under `tokio::time::pause` a run
//! of 200 plans with promotions of many minutes takes seconds of wall
//! time, and the same seed gives the same run.
//!
//! A test and benchmark tool: compiled for unit tests and with the
//! `testkit` feature (the integration tests and `benches/budget.rs` turn it
//! on), never by a plain `cargo build`; `drctl plan budget` needs only the
//! forecast.
//!
//! The world is built from the plans: each plan's home primary and its
//! replicas, its groups, zones, records, checks and evidence buckets, as a
//! plan expects to find them before a failover.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::cloud::budget::{Budgets, Limit};
use crate::cloud::fake::FakeCloud;
use crate::cloud::model::Model;
use crate::engine::{Engine, EngineError, Reporter, RunOptions};
use crate::journal::event::Outcome;
use crate::journal::store::MemoryStore;
use crate::plan::Plan;
use crate::plan::kinds;
use crate::runs::RunReport;
use crate::steps::StepFailure;
use crate::steps::graph::Step;

/// How to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The seed of the world's draws.
    pub seed: u64,
    /// The engine's step bound (0: none).
    pub parallelism: usize,
    /// The client-side budgets (`None`: the engine holds no budget, and
    /// only AWS's side throttles).
    pub budgets: Option<BTreeMap<(String, Option<String>), Limit>>,
    /// One engine per plan, each running its plan's steps one at a time,
    /// all at once against the same account: N runbooks, a script each.
    pub runbooks: bool,
}

impl SimOptions {
    /// drctl as it runs: the model's budgets, no step bound.
    pub fn drctl(model: &Model, seed: u64) -> Self {
        Self {
            seed,
            parallelism: 0,
            budgets: Some(model.bucket_limits()),
            runbooks: false,
        }
    }
}

/// What a simulated failover did, in virtual time.
#[derive(Debug, Clone, Default)]
pub struct SimOutcome {
    /// Each plan's RTO: from the run's start to the end of the step that
    /// stops its clock.
    pub rto: BTreeMap<String, Duration>,
    /// Whether every run succeeded.
    pub succeeded: bool,
    /// The steps that failed, with why.
    pub failed: Vec<(String, String)>,
    /// Calls AWS's side throttled, by label.
    pub throttled: BTreeMap<String, u64>,
    /// Route 53 change batches sent.
    pub changes: usize,
    /// The whole run, virtual time.
    pub wall: Duration,
    /// What no tool could beat in this very world: the slowest plan's own
    /// slow operations as drawn (its promotion or its instances coming
    /// into service, whichever is longer), then the quickest change to
    /// reach INSYNC; every call answered at once, every end seen at once.
    pub floor: Duration,
}

impl SimOutcome {
    /// The slowest plan's RTO.
    pub fn slowest(&self) -> Duration {
        self.rto.values().copied().max().unwrap_or_default()
    }
}

/// Runs `f` on a runtime whose clock is paused: sleeps take no wall time.
pub fn paused<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
        .block_on(f)
}

/// The world `plans` expect before a failover, timed from `model` and
/// `seed`: each resource seeded by its kind (`Resource::seed`), each
/// plan's evidence buckets, and the data-plane setup of the plans that
/// switch on the data plane.
pub async fn world_for(model: &'static Model, plans: &[Plan], seed: u64) -> FakeCloud {
    let f = FakeCloud::timed(model, seed);
    let mut prepare = Vec::new();
    for p in plans {
        if kinds::seed_plan(&f, p) {
            prepare.push(p.clone());
        }
        if let Some(e) = &p.spec.evidence {
            for dest in &e.destinations {
                if let Ok(u) = crate::cloud::ObjectUrl::parse(dest) {
                    let bucket = crate::cloud::ObjectUrl {
                        key: String::new(),
                        ..u
                    }
                    .to_string();
                    if !f.state().buckets.contains(&bucket) {
                        f.state().buckets.push(bucket);
                    }
                }
            }
        }
    }
    prepare.dedup_by(|a, b| a.name() == b.name());
    for p in &prepare {
        // The data-plane setup, made as `drctl dns prepare` makes it.
        let _ = crate::steps::dns_setup::prepare(&f.clouds(), p, None).await;
    }
    f
}

/// When each step ended, in virtual time.
#[derive(Default)]
struct Clock {
    ended: Mutex<Vec<(Step, Instant, Option<String>)>>,
}

impl Reporter for Clock {
    fn started(&self, _step: &Step) {}
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, _elapsed: Duration) {
        if let Ok(mut e) = self.ended.lock() {
            e.push((
                step.clone(),
                Instant::now(),
                result.err().map(|f| f.to_string()),
            ));
        }
    }
    fn note(&self, _text: &str) {}
}

/// Fails `plans` over to `target` in a timed world (call it under
/// [`paused`]).
pub async fn simulate(
    model: &'static Model,
    plans: &[Plan],
    target: &str,
    opts: &SimOptions,
) -> Result<SimOutcome, String> {
    let world = world_for(model, plans, opts.seed).await;
    // The evidence step runs after every RTO clock has stopped and takes
    // none of AWS's slow operations: the simulation leaves its uploads out.
    let plans: Vec<Plan> = plans
        .iter()
        .cloned()
        .map(|mut p| {
            p.spec.evidence = None;
            p
        })
        .collect();
    let plans = &plans[..];
    // Lock files of the simulated runs, in a directory of their own.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("drctl-sim-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let out = simulate_in(world, &dir, plans, target, opts).await;
    let _ = std::fs::remove_dir_all(&dir);
    out
}

async fn simulate_in(
    world: FakeCloud,
    dir: &std::path::Path,
    plans: &[Plan],
    target: &str,
    opts: &SimOptions,
) -> Result<SimOutcome, String> {
    let engine = |reporter: Arc<Clock>| sim_engine(&world, dir, opts, reporter);
    let run_opts = sim_run_options(target, opts);
    let start = Instant::now();
    let clock = Arc::new(Clock::default());
    let mut out = SimOutcome {
        succeeded: true,
        ..SimOutcome::default()
    };
    if opts.runbooks {
        // One script per plan: its own engine and queues, one step at a time.
        let one = RunOptions {
            parallelism: 1,
            ..run_opts.clone()
        };
        let runs = plans.iter().map(|p| {
            let e = engine(clock.clone());
            let one = one.clone();
            async move { e.run(std::slice::from_ref(p), &one).await }
        });
        for r in futures::future::join_all(runs).await {
            record_run(&mut out, r);
        }
    } else {
        let e = engine(clock.clone());
        record_run(&mut out, e.run(plans, &run_opts).await);
    }
    out.wall = start.elapsed();
    let ended = clock.ended.lock().map(|e| e.clone()).unwrap_or_default();
    record_steps(&mut out, &ended, start);
    if let Some(t) = world.timing() {
        out.throttled = t.throttled();
        out.floor = floor(plans, target, &t.drawn());
    }
    out.changes = world
        .state()
        .writes
        .iter()
        .filter(|w| w.starts_with("ChangeResourceRecordSets"))
        .count();
    Ok(out)
}

/// An engine on `world` for one simulated run, reporting to `reporter`:
/// metered by `opts`' budgets when it has them (else only AWS's side
/// throttles), with its locks in `dir` and nothing to confirm or notify.
fn sim_engine(
    world: &FakeCloud,
    dir: &std::path::Path,
    opts: &SimOptions,
    reporter: Arc<Clock>,
) -> Engine {
    let (clouds, waits) = match &opts.budgets {
        Some(limits) => {
            let (c, _, w) = crate::cloud::metered::Metered::wrap_with_budgets(
                world.clouds(),
                Budgets::new(limits.clone()),
            );
            (c, Some(w))
        }
        None => (world.clouds(), None),
    };
    Engine {
        side_clouds: clouds.clone(),
        clouds,
        store: Arc::new(MemoryStore::new()),
        locks: Arc::new(crate::state::local::LocalLocks::new(dir.to_path_buf())),
        reporter,
        confirm: None,
        notify: None,
        waits,
        // A failover journals no inventory.
        inventory: None,
    }
}

/// The options of a simulated failover to `target`: approved, accepting an
/// hour's data loss, with `opts`' step bound and a step timeout long
/// enough for any drawn slow operation.
fn sim_run_options(target: &str, opts: &SimOptions) -> RunOptions {
    RunOptions {
        approve: Some("simulation".into()),
        accept_data_loss: Some(Duration::from_secs(3600)),
        parallelism: opts.parallelism,
        step_timeout: Some(Duration::from_secs(6 * 3600)),
        ..RunOptions::failover(target)
    }
}

/// Adds one engine run's result to `out`: a run that did not succeed, or
/// could not run, makes the whole simulation unsuccessful.
fn record_run(out: &mut SimOutcome, r: Result<RunReport, EngineError>) {
    match r {
        Ok(report) => out.succeeded &= report.outcome == Outcome::Succeeded,
        Err(e) => {
            out.succeeded = false;
            out.failed.push(("(run)".into(), e.to_string()));
        }
    }
}

/// Adds the steps that `ended` (in virtual time, from `start`) to `out`:
/// each failed step with why, and each plan's RTO.
fn record_steps(out: &mut SimOutcome, ended: &[(Step, Instant, Option<String>)], start: Instant) {
    for (step, at, failed) in ended {
        if let Some(why) = failed {
            out.failed.push((step.id.to_string(), why.clone()));
        }
        let traits = step.kind.name().traits();
        if traits.ends_rto() || traits.recovery {
            let e = out.rto.entry(step.plan.clone()).or_default();
            let t = at.duration_since(start);
            // The clock stops at the step that ends it; a plan without one
            // stops at its last recovery step.
            if traits.ends_rto() || !has_end(ended, &step.plan) {
                *e = (*e).max(t);
            }
        }
    }
}

/// The floor of a run in its world ([`SimOutcome::floor`]) from the slow
/// operations the world drew.
fn floor(plans: &[Plan], target: &str, drawn: &[(String, Duration)]) -> Duration {
    let took = |key: String| {
        drawn
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, d)| *d)
            .max()
            .unwrap_or_default()
    };
    let insync = drawn
        .iter()
        .filter(|(k, _)| k.starts_with("change:"))
        .map(|(_, d)| *d)
        .min()
        .unwrap_or_default();
    plans
        .iter()
        .map(|p| {
            (kinds::each(&p.spec).into_iter())
                .flat_map(|r| r.slow_ops(target))
                .map(took)
                .max()
                .unwrap_or_default()
                + insync
        })
        .max()
        .unwrap_or_default()
}

/// Whether `plan` has a step that stops its RTO clock.
fn has_end(ended: &[(Step, Instant, Option<String>)], plan: &str) -> bool {
    ended
        .iter()
        .any(|(s, _, _)| s.plan == plan && s.kind.name().traits().ends_rto())
}

/// `n` copies of `plan`, each with its own names (`payments-3`, its
/// resources suffixed the same way), in `zones` zones: the plans of a
/// large account, for benchmarks and tests.
pub fn copies(plan: &Plan, n: usize, zones: usize) -> Vec<Plan> {
    (0..n)
        .map(|i| {
            let mut p = plan.clone();
            let tag = format!("-{i}");
            p.spec.plan.name = format!("{}{tag}", plan.name());
            let zone = format!("z{}.example.com.", i % zones.max(1));
            for r in kinds::each_mut(&mut p.spec) {
                r.rename(&tag, &zone);
            }
            p
        })
        .collect()
}

#[cfg(test)]
mod tests;
