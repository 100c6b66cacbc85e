//! The forecast of a failover's RTO from the step graph and the model of
//! AWS in time (`drctl plan budget`, `failover --dry-run`, and the
//! predicted RTO that reports put beside the achieved one).
//!
//! # Why
//!
//! The RTO of a mass failover is set by AWS, not by the engine: the
//! promotions and the instances coming into service take minutes, the
//! calls of every plan share the account's rate limits, and Route 53 takes
//! one change per zone at a time. Before an outage, a team wants to know
//! whether its tier targets hold when fifty plans go at once, and which
//! limit binds. This answers from the graph each plan compiles to and the
//! model (`src/cloud/aws_model.toml`) alone, with no cloud call and no
//! engine run, so it is cheap enough to show in every dry run and report.
//!
//! # How
//!
//! Each step kind says what it costs ([`crate::steps::Cost`]): the calls it
//! makes, the slow operations it waits through, the call it polls with.
//! Monte Carlo draws (seeded, so the same plans give the same forecast)
//! walk each plan's graph to the step that stops its RTO clock, adding per
//! step its calls' latency, its waits and the delay before a poll notices
//! the end. What the shared limits add is then laid on top, each term
//! computed from the whole run: the calls every plan makes at the start
//! against each bucket's burst and rate (served in tier order), polls
//! slowed when they outrun a bucket, Route 53 batches per zone, and the
//! engine's own step bound. The largest term is the binding constraint,
//! said in a sentence. The lower bound takes the same draws with every call
//! answered at once, no poll delay and no bound of the engine's: what no
//! tool could beat under these limits.
//!
//! The figures are estimates from a model, and say so; the simulation of
//! the same run on the timed fake cloud (`benches/budget.rs`) is what they
//! are checked against.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::cloud::budget::Limit;
use crate::cloud::model::Model;
use crate::plan::Plan;
use crate::steps::graph::{RunMode, Step, compile_mode};
use crate::steps::{Cost, KindName};

/// The engine's polling while it waits, as [`crate::engine::RunOptions`]
/// sets it by default: from 200 ms, doubling, to 10 s.
pub const POLL: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(10));

/// What to forecast.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The plans that fail over.
    pub plans: &'a [Plan],
    /// The region they fail over to.
    pub target: &'a str,
    /// What kind of run (a failover; a drill's graph differs).
    pub mode: RunMode,
    /// How many plans fail over at once in the account (the limits are
    /// shared by all of them); at least the plans given. More than given:
    /// the given plans stand for the rest, in turn.
    pub plans_at_once: usize,
    /// The engine's step bound (0: none).
    pub parallelism: usize,
    /// The engine's poll interval bounds.
    pub poll: (Duration, Duration),
    /// The API buckets, by (service, API) (the model's, or `[[budget]]`).
    pub limits: BTreeMap<(String, Option<String>), Limit>,
    /// Monte Carlo draws.
    pub samples: usize,
    /// The seed of the draws.
    pub seed: u64,
}

impl<'a> Request<'a> {
    /// A forecast of `plans` to `target`, alone in the account, with the
    /// model's limits and the engine's defaults.
    pub fn new(model: &Model, plans: &'a [Plan], target: &'a str) -> Self {
        Self {
            plans,
            target,
            mode: RunMode::Failover { planned: false },
            plans_at_once: plans.len(),
            parallelism: 0,
            poll: POLL,
            limits: model.bucket_limits(),
            samples: 400,
            seed: 1,
        }
    }
}

/// A median and a 90th percentile, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The median.
    pub p50_seconds: f64,
    /// The 90th percentile.
    pub p90_seconds: f64,
}

/// One plan's forecast.
#[derive(Debug, Clone, Serialize)]
pub struct PlanForecast {
    /// The plan.
    pub plan: String,
    /// Its tier.
    pub tier: String,
    /// Its RTO target, seconds.
    pub target_seconds: f64,
    /// Its RTO, forecast.
    pub rto: Spread,
    /// Whether the RTO target holds at p90.
    pub met_at_p90: bool,
    /// Its longest chain at the medians, step by step.
    pub chain: Vec<String>,
}

/// Something the shared limits or the engine add to the RTO.
#[derive(Debug, Clone, Serialize)]
pub struct Term {
    /// What (`rds in us-east-1`, `Route 53 zone example.com.`, `parallelism`).
    pub name: String,
    /// What kind of limit adds it.
    #[serde(skip)]
    pub of: TermOf,
    /// What it adds to the slowest plan, seconds.
    pub adds_seconds: f64,
    /// Why, in a sentence.
    pub detail: String,
}

/// What kind of limit a [`Term`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermOf {
    /// An API bucket, at the start of the run (every plan's first calls).
    Bucket,
    /// An API bucket, while the plans poll.
    Polls,
    /// Route 53's one change per zone at a time.
    Zones,
    /// The engine's step bound (`--parallelism`).
    Parallelism,
}

/// The forecast of a failover.
#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    /// Per plan, in the order given.
    pub plans: Vec<PlanForecast>,
    /// The run's RTO: its slowest plan's.
    pub run: Spread,
    /// What no tool could beat under these limits, at the median (seconds).
    pub lower_bound_seconds: f64,
    /// How many plans share the limits.
    pub plans_at_once: usize,
    /// What the limits and the engine add, largest first.
    pub terms: Vec<Term>,
    /// The binding constraint, in a sentence.
    pub binding: String,
    /// The figures' basis.
    pub basis: String,
}

/// Why there is no forecast.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForecastError {
    /// A plan does not compile to the target.
    #[error("{0}")]
    Graph(String),
    /// No plan given.
    #[error("no plan to forecast")]
    Empty,
}

/// One plan's graph, as the forecast walks it.
struct Walk {
    plan: String,
    tier: String,
    rank: u8,
    rto_target: f64,
    steps: Vec<Step>,
    /// The steps whose end stops the RTO clock (their latest end).
    ends: Vec<usize>,
}

impl Walk {
    fn new(plan: &Plan, target: &str, mode: &RunMode) -> Result<Self, ForecastError> {
        let g =
            compile_mode(plan, target, mode).map_err(|e| ForecastError::Graph(e.to_string()))?;
        let kind = |s: &Step| s.kind.name();
        let mut ends: Vec<usize> = (0..g.steps.len())
            .filter(|&i| kind(&g.steps[i]).traits().ends_rto())
            .collect();
        if ends.is_empty() {
            ends = (0..g.steps.len())
                .filter(|&i| kind(&g.steps[i]).traits().recovery)
                .collect();
        }
        Ok(Self {
            plan: plan.name().to_string(),
            tier: plan.tier.name.clone(),
            rank: plan.tier.rank,
            rto_target: plan.tier.rto.as_secs_f64(),
            steps: g.steps,
            ends,
        })
    }

    /// Per step, the widest spread (p90 − p50, seconds, by `spread`) of a
    /// slow operation some step before it waits through; 0 for a step
    /// that nothing slow precedes (it starts with the run).
    fn after_waits(&self, spread: &dyn Fn(&str) -> f64) -> Vec<f64> {
        let n = self.steps.len();
        let mut out = vec![0.0_f64; n];
        for _ in 0..n.max(1) {
            let mut changed = false;
            for i in 0..n {
                let v = self.steps[i]
                    .deps
                    .iter()
                    .map(|&d| {
                        let own = self
                            .cost(d)
                            .waits
                            .iter()
                            .map(|op| spread(op))
                            .fold(0.0, f64::max);
                        own.max(out[d])
                    })
                    .fold(0.0, f64::max);
                if v > out[i] {
                    out[i] = v;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        out
    }

    fn cost(&self, i: usize) -> Cost {
        self.steps[i].kind.time()
    }

    /// The longest path to the RTO's end with `dur` per step: (seconds, the chain).
    fn longest(&self, dur: &[f64]) -> (f64, Vec<usize>) {
        let n = self.steps.len();
        let mut end = vec![0.0; n];
        let mut from: Vec<Option<usize>> = vec![None; n];
        // Steps come in an order where dependencies precede (the graph's
        // topological order); settle by repeated passes to be safe.
        for _ in 0..n.max(1) {
            let mut changed = false;
            for i in 0..n {
                let (start, by) = self.steps[i]
                    .deps
                    .iter()
                    .map(|&d| (end[d], Some(d)))
                    .fold((0.0, None), |a, b| if b.0 > a.0 { b } else { a });
                let e = start + dur[i];
                if (e - end[i]).abs() > 1e-9 {
                    end[i] = e;
                    from[i] = by;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let Some(&last) = self
            .ends
            .iter()
            .max_by(|a, b| end[**a].total_cmp(&end[**b]))
        else {
            return (0.0, Vec::new());
        };
        let mut chain = vec![last];
        while let Some(Some(p)) = chain.last().map(|&c| from[c]) {
            chain.push(p);
        }
        chain.reverse();
        (end[last], chain)
    }
}

/// The draws of one step: its calls' latency, its waits, and (with
/// `lag`) the poll delay after each wait.
fn draw_step(model: &Model, cost: &Cost, rng: &mut StdRng, lag: Option<f64>) -> f64 {
    let call = |label: &str, rng: &mut StdRng| {
        model
            .latency(label)
            .map(|d| d.sample(rng).as_secs_f64())
            .unwrap_or(0.0)
    };
    let mut t: f64 = cost.calls.iter().map(|c| call(c, rng)).sum();
    for w in cost.waits {
        t += model
            .duration(w)
            .map(|d| d.sample(rng).as_secs_f64())
            .unwrap_or(0.0);
        if let Some(interval) = lag {
            use rand::Rng as _;
            t += rng.random_range(0.0..=interval.max(0.0));
        }
    }
    t
}

/// The p50 and p90 of `xs`.
fn spread(mut xs: Vec<f64>) -> Spread {
    if xs.is_empty() {
        return Spread {
            p50_seconds: 0.0,
            p90_seconds: 0.0,
        };
    }
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    Spread {
        p50_seconds: at(0.5),
        p90_seconds: at(0.9),
    }
}

/// The bucket a call spends from: (service, region).
fn bucket_of(label: &str, target: &str) -> (String, String) {
    let service = label.split_once(':').map_or(label, |(s, _)| s);
    let region = if service == "route53" || service == "dns" {
        "global"
    } else {
        target
    };
    (service.to_string(), region.to_string())
}

/// The engine's polls while waiting `wait` seconds: doubling from the
/// first interval to the last, then at the last.
fn polls_during(wait: f64, poll: (Duration, Duration)) -> f64 {
    let (mut at, mut n) = (0.0, 0.0);
    let mut i = poll.0.as_secs_f64().max(0.001);
    let last = poll.1.as_secs_f64().max(i);
    while at < wait && i < last {
        at += i;
        n += 1.0;
        i *= 2.0;
    }
    if at < wait {
        n += ((wait - at) / last).ceil();
    }
    n
}

/// Forecasts the RTO of a failover of `req.plans` to `req.target`: read
/// what the plans ask (their graphs, and what those ask of the shared
/// limits), then decide what the limits and the engine add, draw, and say
/// which constraint binds. Every phase is pure.
pub fn forecast(model: &Model, req: &Request<'_>) -> Result<Forecast, ForecastError> {
    let walks = read_walks(req)?;
    let at_once = req.plans_at_once.max(walks.len());
    // The plans that share the limits: the given ones, in turn, up to `at_once`.
    let all: Vec<&Walk> = (0..at_once).map(|i| &walks[i % walks.len()]).collect();
    let demand = Demand::read(model, req, &all);
    let added = Added::decide(model, req, &demand, at_once);
    let drawn = draw_all(model, req, &walks, &all, &added);
    Ok(decide(model, req, &walks, added, drawn, at_once))
}

/// Each plan's graph to the target, as the forecast walks it.
fn read_walks(req: &Request<'_>) -> Result<Vec<Walk>, ForecastError> {
    if req.plans.is_empty() {
        return Err(ForecastError::Empty);
    }
    req.plans
        .iter()
        .map(|p| Walk::new(p, req.target, &req.mode))
        .collect()
}

/// The median of `op` in the model, seconds (0 for one it does not time).
fn p50(model: &Model, op: &str) -> f64 {
    model.duration(op).map_or(0.0, |d| d.p50().as_secs_f64())
}

/// What every plan of the run asks of the shared limits.
struct Demand {
    /// The calls that come at the start, per bucket (service, region): the
    /// rank of the plan that makes each, and its weight.
    calls: BTreeMap<(String, String), Vec<(u8, f64)>>,
    /// The polls per second while the slow operations run, per bucket.
    poll_rate: BTreeMap<(String, String), f64>,
    /// Per hosted zone: the plans that switch records in it, and the
    /// records a batch must carry (a DELETE and a CREATE per record).
    zones: BTreeMap<String, (BTreeSet<String>, usize)>,
    /// The steps that wait on AWS, each with its waits' medians (seconds).
    long: Vec<f64>,
}

impl Demand {
    /// What `all` ask: every plan's first calls (its preflight, and the
    /// calls each step makes before its first wait) at once, its polls
    /// while it waits, its Route 53 records per zone.
    fn read(model: &Model, req: &Request<'_>, all: &[&Walk]) -> Self {
        let mut calls: BTreeMap<(String, String), Vec<(u8, f64)>> = BTreeMap::new();
        let mut poll_rate: BTreeMap<(String, String), f64> = BTreeMap::new();
        let spread_of = |op: &str| {
            model
                .duration(op)
                .map_or(0.0, |d| (d.p90_seconds - d.p50_seconds).max(0.0))
        };
        for w in all {
            let after = w.after_waits(&spread_of);
            for (i, &spread) in after.iter().enumerate() {
                let cost = w.cost(i);
                // A step after a slow operation starts when that operation
                // ends, and those ends spread over the operation's spread:
                // its calls do not come all at once, and only some of its
                // polls run at the same time as the other plans'.
                let at_once = if spread <= 0.0 {
                    1.0
                } else {
                    let own: f64 = cost.waits.iter().map(|op| p50(model, op)).sum();
                    (own / spread).min(1.0)
                };
                if at_once >= 1.0 {
                    for c in cost.calls {
                        calls
                            .entry(bucket_of(c, req.target))
                            .or_default()
                            .push((w.rank, 1.0));
                    }
                }
                if let Some(poll) = cost.polls {
                    let wait: f64 = cost.waits.iter().map(|op| p50(model, op)).sum();
                    let n = polls_during(wait, req.poll);
                    if wait > 0.0 {
                        *poll_rate.entry(bucket_of(poll, req.target)).or_default() +=
                            at_once * n / wait;
                    }
                }
            }
        }
        let mut zones: BTreeMap<String, (BTreeSet<String>, usize)> = BTreeMap::new();
        for (n, w) in all.iter().enumerate() {
            for s in &w.steps {
                if s.kind.name() == KindName::SwitchDns {
                    let zone = s.id.subject.clone().unwrap_or_default();
                    let e = zones.entry(zone).or_default();
                    e.0.insert(format!("{}#{n}", w.plan));
                    // A compare-and-swap per record: a DELETE and a CREATE.
                    e.1 += 2 * s.resources.len().max(1);
                }
            }
        }
        let long = all
            .iter()
            .flat_map(|w| (0..w.steps.len()).map(|i| w.cost(i)))
            .map(|c| c.waits.iter().map(|op| p50(model, op)).sum::<f64>())
            .filter(|&t| t > 0.0)
            .collect();
        Self {
            calls,
            poll_rate,
            zones,
            long,
        }
    }
}

/// What the shared limits and the engine add to the run, decided from
/// its [`Demand`].
struct Added {
    /// Each term, in the order decided.
    terms: Vec<Term>,
    /// Per plan rank, the start delay the buckets force on it.
    start_delay: BTreeMap<u8, f64>,
    /// How much later than the poll interval an end is noticed (polls
    /// that outrun their bucket).
    lag_factor: f64,
    /// What the Route 53 queue adds to the last plan of a shared zone.
    zone_extra: f64,
    /// What the engine's step bound adds.
    bound_extra: f64,
}

impl Added {
    fn decide(model: &Model, req: &Request<'_>, demand: &Demand, at_once: usize) -> Self {
        let mut terms = Vec::new();
        let start_delay = bucket_terms(req, demand, at_once, &mut terms);
        let lag_factor = poll_terms(req, demand, &mut terms);
        let zone_extra = zone_term(model, demand, &mut terms);
        let bound_extra = bound_term(req, demand, &mut terms);
        Self {
            terms,
            start_delay,
            lag_factor,
            zone_extra,
            bound_extra,
        }
    }

    /// The longest start delay the rate limits force (the buckets' terms).
    fn max_forced(&self) -> f64 {
        (self.terms.iter())
            .filter(|t| t.of == TermOf::Bucket)
            .map(|t| t.adds_seconds)
            .fold(0.0, f64::max)
    }
}

/// The bucket a limit has for `service` (service-wide).
fn limit_of(req: &Request<'_>, service: &str) -> Option<Limit> {
    req.limits.get(&(service.to_string(), None)).copied()
}

/// What the buckets force at the start: every plan's first calls at once,
/// served in tier order against each bucket's burst and rate. Returns the
/// start delay per plan rank.
fn bucket_terms(
    req: &Request<'_>,
    demand: &Demand,
    at_once: usize,
    terms: &mut Vec<Term>,
) -> BTreeMap<u8, f64> {
    let mut start_delay: BTreeMap<u8, f64> = BTreeMap::new();
    for ((service, region), calls) in &demand.calls {
        let Some(limit) = limit_of(req, service) else {
            continue;
        };
        let total: f64 = calls.iter().map(|c| c.1).sum();
        let forced = ((total - limit.burst) / limit.rate).max(0.0);
        let ranks: BTreeSet<u8> = calls.iter().map(|c| c.0).collect();
        for r in ranks {
            let before: f64 = calls.iter().filter(|c| c.0 <= r).map(|c| c.1).sum();
            let d = ((before - limit.burst) / limit.rate).max(0.0);
            let e = start_delay.entry(r).or_default();
            *e = e.max(d);
        }
        if forced > 0.0 {
            terms.push(Term {
                name: format!("{service} in {region}"),
                of: TermOf::Bucket,
                adds_seconds: forced,
                detail: format!(
                    "{service} in {region}: {total:.0} calls of {at_once} plans against a burst of {:.0} and {:.0}/s: the last waits {}",
                    limit.burst,
                    limit.rate,
                    show(forced)
                ),
            });
        }
    }
    start_delay
}

/// Polls that outrun their bucket notice an end later. Returns by how
/// much the poll interval stretches.
fn poll_terms(req: &Request<'_>, demand: &Demand, terms: &mut Vec<Term>) -> f64 {
    let poll_last = req.poll.1.as_secs_f64();
    let mut lag_factor: f64 = 1.0;
    for ((service, region), rate) in &demand.poll_rate {
        if let Some(limit) = limit_of(req, service)
            && *rate > limit.rate
        {
            let f = rate / limit.rate;
            lag_factor = lag_factor.max(f);
            terms.push(Term {
                name: format!("{service} polls in {region}"),
                of: TermOf::Polls,
                adds_seconds: poll_last * (f - 1.0) / 2.0,
                detail: format!(
                    "{service} in {region}: the plans' polls ask {rate:.1}/s of a bucket of {:.0}/s, so each end is noticed about {} later",
                    limit.rate,
                    show(poll_last * (f - 1.0) / 2.0)
                ),
            });
        }
    }
    lag_factor
}

/// Route 53: one change per zone at a time; what queued meanwhile goes
/// together, in as few batches as the limits allow. Returns what the
/// queue adds to the last plan of a shared zone.
fn zone_term(model: &Model, demand: &Demand, terms: &mut Vec<Term>) -> f64 {
    let zones = &demand.zones;
    let processing = p50(model, "route53:ChangeProcessing");
    let mut zone_extra: f64 = 0.0;
    let mut batches_total = 0;
    for (plans, records) in zones.values() {
        let batches = records.div_ceil(model.route53.max_records_per_batch.max(1));
        batches_total += batches;
        // The last plan to be ready may wait for the change in flight,
        // then for the batches before its own.
        let extra = if plans.len() > 1 {
            processing * batches as f64
        } else {
            0.0
        };
        zone_extra = zone_extra.max(extra);
    }
    if !zones.is_empty() {
        let plans: BTreeSet<&String> = zones.values().flat_map(|z| &z.0).collect();
        terms.push(Term {
            name: "route53 change batches".into(),
            of: TermOf::Zones,
            adds_seconds: zone_extra,
            detail: format!(
                "Route 53 change rate: {} plan{} share{} {} zone{}; {} batch{} at least (one change per zone at a time, {} records a batch); +{}",
                plans.len(),
                if plans.len() == 1 { "" } else { "s" },
                if plans.len() == 1 { "s" } else { "" },
                zones.len(),
                if zones.len() == 1 { "" } else { "s" },
                batches_total,
                if batches_total == 1 { "" } else { "es" },
                model.route53.max_records_per_batch,
                show(zone_extra)
            ),
        });
    }
    zone_extra
}

/// The engine's step bound: steps that wait on AWS hold their slot.
/// Returns what the bound adds.
fn bound_term(req: &Request<'_>, demand: &Demand, terms: &mut Vec<Term>) -> f64 {
    let long = &demand.long;
    if req.parallelism == 0 || long.len() <= req.parallelism {
        return 0.0;
    }
    let rounds = long.len().div_ceil(req.parallelism) as f64;
    let mean = long.iter().sum::<f64>() / long.len() as f64;
    let bound_extra = (rounds - 1.0) * mean;
    terms.push(Term {
        name: "parallelism".into(),
        of: TermOf::Parallelism,
        adds_seconds: bound_extra,
        detail: format!(
            "--parallelism {}: {} steps that wait on AWS run {} at a time, in {} rounds; +{} (0, the default, sets no bound)",
            req.parallelism,
            long.len(),
            req.parallelism,
            rounds,
            show(bound_extra)
        ),
    });
    bound_extra
}

/// The draws: every plan at once, `samples` times.
struct Drawn {
    /// Per given plan, its RTO in each draw.
    per_plan: Vec<Vec<f64>>,
    /// The run's RTO (its slowest plan's) in each draw.
    run: Vec<f64>,
    /// The same draws with every call answered and every end seen at once.
    bound: Vec<f64>,
}

fn draw_all(
    model: &Model,
    req: &Request<'_>,
    walks: &[Walk],
    all: &[&Walk],
    added: &Added,
) -> Drawn {
    let mut rng = StdRng::seed_from_u64(req.seed);
    let lag = req.poll.1.as_secs_f64() * added.lag_factor;
    let mut out = Drawn {
        per_plan: vec![Vec::new(); walks.len()],
        run: Vec::new(),
        bound: Vec::new(),
    };
    for _ in 0..req.samples.max(1) {
        let mut slowest: f64 = 0.0;
        let mut slowest_bound: f64 = 0.0;
        for (n, w) in all.iter().enumerate() {
            let mut fast = Vec::with_capacity(w.steps.len());
            let mut real = Vec::with_capacity(w.steps.len());
            for i in 0..w.steps.len() {
                let cost = w.cost(i);
                // The same draws with and without the poll delay.
                let mut r1 = rng.clone();
                fast.push(draw_waits_only(model, &cost, &mut r1));
                real.push(draw_step(model, &cost, &mut rng, Some(lag)));
            }
            let delay = added.start_delay.get(&w.rank).copied().unwrap_or(0.0);
            let (t, _) = w.longest(&real);
            let t = t + delay + added.zone_extra + added.bound_extra;
            let (b, _) = w.longest(&fast);
            slowest = slowest.max(t);
            slowest_bound = slowest_bound.max(b);
            if n < walks.len() {
                out.per_plan[n].push(t);
            }
        }
        out.run.push(slowest);
        out.bound.push(slowest_bound);
    }
    out
}

/// The forecast from the draws and the terms: each plan's spread and its
/// chain at the medians, the lower bound, the binding constraint.
fn decide(
    model: &Model,
    req: &Request<'_>,
    walks: &[Walk],
    added: Added,
    drawn: Drawn,
    at_once: usize,
) -> Forecast {
    // What the limits force at the least (every call at once, no polls).
    let lower_bound = spread(drawn.bound).p50_seconds + added.max_forced();
    let plans: Vec<PlanForecast> = walks
        .iter()
        .zip(drawn.per_plan)
        .map(|(w, xs)| {
            let rto = spread(xs);
            let medians: Vec<f64> = (0..w.steps.len())
                .map(|i| {
                    let c = w.cost(i);
                    c.waits.iter().map(|op| p50(model, op)).sum::<f64>()
                        + c.calls.len() as f64 * p50(model, crate::cloud::model::CALL)
                })
                .collect();
            let (_, chain) = w.longest(&medians);
            PlanForecast {
                plan: w.plan.clone(),
                tier: w.tier.clone(),
                target_seconds: w.rto_target,
                met_at_p90: rto.p90_seconds <= w.rto_target,
                rto,
                chain: chain.iter().map(|&i| w.steps[i].id.to_string()).collect(),
            }
        })
        .collect();
    let mut terms = added.terms;
    terms.sort_by(|a, b| b.adds_seconds.total_cmp(&a.adds_seconds));
    let run = spread(drawn.run);
    let binding = binding(model, walks, &plans, &terms, at_once, run.p50_seconds);
    Forecast {
        plans,
        run,
        lower_bound_seconds: lower_bound,
        plans_at_once: at_once,
        terms,
        binding,
        basis: format!(
            "estimated from the model of AWS in time (src/cloud/aws_model.toml; durations are estimates unless AWS publishes them) over {} draws, seed {}; not measured",
            req.samples.max(1),
            req.seed
        ),
    }
}

/// A step's waits alone: what it takes with every call answered at once
/// and its end noticed at once.
fn draw_waits_only(model: &Model, cost: &Cost, rng: &mut StdRng) -> f64 {
    // Skip the calls' draws as `draw_step` makes them, so that the waits
    // draw the same numbers.
    for c in cost.calls {
        if let Some(d) = model.latency(c) {
            let _ = d.sample(rng);
        }
    }
    cost.waits
        .iter()
        .map(|w| {
            model
                .duration(w)
                .map(|d| d.sample(rng).as_secs_f64())
                .unwrap_or(0.0)
        })
        .sum()
}

/// The binding constraint in a sentence: the largest term when the limits
/// add more than the slowest wait's spread, else the slowest wait on the
/// slowest plan's chain.
fn binding(
    model: &Model,
    walks: &[Walk],
    plans: &[PlanForecast],
    terms: &[Term],
    at_once: usize,
    run_p50: f64,
) -> String {
    let slowest = plans
        .iter()
        .zip(walks)
        .max_by(|a, b| a.0.rto.p50_seconds.total_cmp(&b.0.rto.p50_seconds));
    let chain_op = slowest.and_then(|(_, w)| {
        w.steps
            .iter()
            .flat_map(|s| s.kind.time().waits.iter())
            .filter_map(|op| model.duration(op))
            .max_by(|a, b| a.p50_seconds.total_cmp(&b.p50_seconds))
    });
    let owner = chain_op.map_or("AWS", |d| crate::cloud::model::provider(&d.operation));
    let wait = chain_op.map(|d| {
        format!(
            "{} (median {}, p90 {}, {})",
            d.operation,
            show(d.p50_seconds),
            show(d.p90_seconds),
            match d.basis {
                crate::cloud::model::Basis::Published => "published",
                crate::cloud::model::Basis::Estimate => "an estimate",
            }
        )
    });
    // A limit binds when it adds more than half of what AWS's own time
    // takes on the slowest chain; otherwise AWS's own time does.
    let added: f64 = terms.iter().map(|t| t.adds_seconds).sum();
    let own = (run_p50 - added).max(0.0);
    let top = terms.first().filter(|t| t.adds_seconds >= 1.0);
    match (top, wait) {
        (Some(t), Some(w)) if t.adds_seconds * 2.0 >= own => {
            format!(
                "{} (with {at_once} plans at once); then the slowest wait, {w}",
                t.detail
            )
        }
        (_, Some(w)) => match slowest {
            Some((p, _)) => format!(
                "{owner}'s own time: {w} on {}'s chain ({}); the shared limits add {} at most",
                p.plan,
                p.chain.join(" → "),
                show(terms.first().map_or(0.0, |t| t.adds_seconds))
            ),
            None => format!("{owner}'s own time: {w}"),
        },
        (Some(t), None) => t.detail.clone(),
        (None, None) => "nothing in these plans waits on AWS".into(),
    }
}

/// Seconds as people read them (`38 s`, `5m 12s`).
pub fn show(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests;
