//! A mass failover under AWS's API limits, simulated (not a timed test).
//!
//! For 1, 10, 50 and 200 plans (copies of the reference `payments` plan,
//! each with its own resources) spread over 1, 5 and 20 hosted zones, it
//! fails every plan over to `us-east-1` on the timed fake cloud
//! (`drctl::sim`: the model's latencies, AWS's side of its rate limits,
//! promotions, INSYNC and instances in service drawn from the model) under
//! virtual time, with several seeds, and reports:
//!
//! * drctl's simulated RTO of the slowest plan (median over the seeds);
//! * the lower bound from the model (`drctl::forecast`: the longest chain
//!   of AWS's own waits plus what the rate limits force; no tool beats it);
//! * the forecast (`drctl plan budget`) of the same run, and its error
//!   against the simulation;
//! * the same plans run as N independent sequential runbooks (a script per
//!   plan, one step at a time, no queue shared across plans, the SDK's
//!   way of meeting a throttle), sharing the account's limits;
//! * calls AWS's side throttled, and steps that failed.
//!
//! ```text
//! cargo bench --profile dev --bench budget                   # the whole table
//! cargo bench --profile dev --bench budget -- --sizes 50 --zones 1 --seeds 3
//! ```
//!
//! `docs/performance.md` ("Fifty plans at once") has the table and how to
//! read it. Exit 1 when a goal is missed (50 plans beyond 1.2× the lower
//! bound, a forecast beyond ±20 %, a failed step at 200 plans).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use drctl::cloud::model::Model;
use drctl::forecast::{Request, forecast};
use drctl::plan::Plan;
use drctl::sim::{SimOptions, copies, paused, simulate};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TARGET: &str = "us-east-1";

#[path = "support/mod.rs"]
mod support;

struct Args {
    sizes: Vec<usize>,
    zones: Vec<usize>,
    seeds: u64,
    runbooks: bool,
}

fn args() -> Result<Args, BoxError> {
    let mut a = Args {
        sizes: vec![1, 10, 50, 200],
        zones: vec![1, 5, 20],
        seeds: 5,
        runbooks: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--sizes" => a.sizes = support::parse_list(&it.next().ok_or("--sizes N,N")?)?,
            "--zones" => a.zones = support::parse_list(&it.next().ok_or("--zones N,N")?)?,
            "--seeds" => a.seeds = it.next().ok_or("--seeds N")?.parse()?,
            "--no-runbooks" => a.runbooks = false,
            // cargo bench passes --bench.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One row of the table.
struct Row {
    plans: usize,
    zones: usize,
    /// The slowest plan's RTO, median over the seeds.
    simulated: f64,
    /// The lower bound of each seed's own world, median over the seeds.
    floor: f64,
    /// Simulated ÷ floor, median over the seeds (paired by seed).
    ratio: f64,
    /// The forecast's lower bound (from the model, not a world).
    lower: f64,
    /// Per plan RTO over every plan and seed: (p50, p90), simulated.
    per_plan: (f64, f64),
    /// Per plan RTO, forecast: (p50, p90).
    forecast: (f64, f64),
    /// N runbooks: the slowest plan ÷ its world's lower bound, median.
    runbooks: Option<f64>,
    throttled: u64,
    failed: usize,
    batches: f64,
    wall: Duration,
}

fn quantile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(((xs.len().max(1) - 1) as f64 * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

fn row(
    model: &'static Model,
    payments: &Plan,
    n: usize,
    zones: usize,
    a: &Args,
) -> Result<Row, BoxError> {
    let plans = copies(payments, n, zones);
    let wall = Instant::now();
    let (mut sim, mut books, mut batches) = (Vec::new(), Vec::new(), Vec::new());
    let (mut floors, mut ratios, mut every) = (Vec::new(), Vec::new(), Vec::new());
    let (mut throttled, mut failed) = (0, 0);
    for seed in 1..=a.seeds {
        let out = paused(simulate(
            model,
            &plans,
            TARGET,
            &SimOptions::drctl(model, seed),
        ))?;
        failed += out.failed.len();
        throttled += out.throttled.values().sum::<u64>();
        sim.push(secs(out.slowest()));
        floors.push(secs(out.floor));
        ratios.push(secs(out.slowest()) / secs(out.floor).max(1e-9));
        every.extend(out.rto.values().map(|d| secs(*d)));
        batches.push(out.changes as f64);
        if a.runbooks {
            let opts = SimOptions {
                runbooks: true,
                ..SimOptions::drctl(model, seed)
            };
            let out = paused(simulate(model, &plans, TARGET, &opts))?;
            books.push(secs(out.slowest()) / secs(out.floor).max(1e-9));
        }
    }
    // The forecast of the run: a plan's RTO (every copy alike) with n at once.
    let f = forecast(model, &Request::new(model, &plans, TARGET))?;
    let one = f.plans.first().ok_or("no plan forecast")?;
    Ok(Row {
        plans: n,
        zones,
        simulated: median(sim),
        floor: median(floors),
        ratio: median(ratios),
        lower: f.lower_bound_seconds,
        per_plan: (quantile(&mut every, 0.5), quantile(&mut every, 0.9)),
        forecast: (one.rto.p50_seconds, one.rto.p90_seconds),
        runbooks: a.runbooks.then(|| median(books)),
        throttled,
        failed,
        batches: median(batches),
        wall: wall.elapsed(),
    })
}

fn main() -> Result<(), BoxError> {
    let a = args()?;
    let model = Model::aws()?;
    let loaded = drctl::plan::load(&[PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/plans"))]);
    let payments = loaded
        .plans
        .iter()
        .find(|p| p.name() == "payments")
        .ok_or("plans/payments.toml did not load")?
        .clone();
    println!(
        "| plans | zones | slowest plan, drctl (s) | its world's lower bound (s) | ÷ lower bound | N runbooks, ÷ their lower bound | per plan p50 / p90, simulated (s) | forecast p50 / p90 (s) | forecast error | forecast lower bound (s) | batches | throttled by AWS | failed steps | wall (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut missed = Vec::new();
    for &n in &a.sizes {
        for &z in &a.zones {
            if z > n {
                continue;
            }
            let r = row(model, &payments, n, z, &a)?;
            let err = |f: f64, s: f64| (f - s) / s.max(1e-9);
            let (e50, e90) = (
                err(r.forecast.0, r.per_plan.0),
                err(r.forecast.1, r.per_plan.1),
            );
            println!(
                "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {:.0} / {:.0} | {:.0} / {:.0} | {:+.0} % / {:+.0} % | {:.0} | {:.0} | {} | {} | {:.1} |",
                r.plans,
                r.zones,
                r.simulated,
                r.floor,
                r.ratio,
                r.runbooks.map_or("-".into(), |b| format!("{b:.2}")),
                r.per_plan.0,
                r.per_plan.1,
                r.forecast.0,
                r.forecast.1,
                e50 * 100.0,
                e90 * 100.0,
                r.lower,
                r.batches,
                r.throttled,
                r.failed,
                r.wall.as_secs_f64()
            );
            if n == 50 && r.ratio > 1.2 {
                missed.push(format!(
                    "{n} plans in {z} zones: {:.2}× the lower bound",
                    r.ratio
                ));
            }
            for (q, e) in [("p50", e50), ("p90", e90)] {
                if e.abs() > 0.2 {
                    missed.push(format!(
                        "{n} plans in {z} zones: forecast {q} off by {:+.0} %",
                        e * 100.0
                    ));
                }
            }
            if n == 200 && r.failed > 0 {
                missed.push(format!("{n} plans in {z} zones: {} failed steps", r.failed));
            }
        }
    }
    println!(
        "\nmedians over {} seeds (per plan: every plan of every seed); virtual time from the model (src/cloud/aws_model.toml), simulated, not measured on AWS",
        a.seeds
    );
    if !missed.is_empty() {
        eprintln!("goals missed:\n  {}", missed.join("\n  "));
        std::process::exit(1);
    }
    Ok(())
}
