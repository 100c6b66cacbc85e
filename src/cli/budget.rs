//! `drctl plan budget`: the forecast of a failover's RTO under AWS's API
//! limits, shown on its own and by `failover --dry-run`.

use std::fmt::Write as _;

use clap::Args;

use super::{CliError, Exit, Output, load_plans, out, outln, select};
use drctl::cloud::model::Model;
use drctl::config::Settings;
use drctl::forecast::{Forecast, Request, forecast, show};
use drctl::plan::Plan;

/// `plan budget`.
#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// The region to fail over to.
    #[arg(long)]
    pub to: String,
    /// Only these plans (repeatable; default: every plan that has the region).
    #[arg(long, value_name = "PLAN")]
    pub plan: Vec<String>,
    /// How many plans fail over at once in the account, sharing its limits
    /// (default: the plans given). More than given: they stand for the rest.
    #[arg(long, value_name = "N")]
    pub plans_at_once: Option<usize>,
    /// The run's step bound, as `failover --parallelism` (0: none).
    #[arg(long, default_value_t = 0)]
    pub parallelism: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Runs `plan budget`.
pub fn run(a: BudgetArgs, settings: &Settings) -> Result<Exit, CliError> {
    let loaded = load_plans(settings, &[])?;
    let mut plans: Vec<Plan> = Vec::new();
    if a.plan.is_empty() {
        plans.extend(
            select(&loaded, None)?
                .into_iter()
                .filter(|p| p.site(&a.to).is_some())
                .cloned(),
        );
    } else {
        for name in &a.plan {
            plans.extend(select(&loaded, Some(name))?.into_iter().cloned());
        }
    }
    let to = super::target_site(&plans, &a.to)?;
    let at_once = a.plans_at_once.unwrap_or(plans.len());
    let f = forecast_for(settings, &plans, &to, at_once, a.parallelism)?;
    match a.output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&f)?),
        Output::Text => out!("{}", render(&f, &to)),
    }
    Ok(Exit::Ok)
}

/// The forecast of `plans` failing over to `to`, with `at_once` plans
/// sharing the account's limits (the team's `[[budget]]`, else the model's).
pub fn forecast_for(
    settings: &Settings,
    plans: &[Plan],
    to: &str,
    at_once: usize,
    parallelism: usize,
) -> Result<Forecast, CliError> {
    let model = Model::aws().map_err(CliError::invalid)?;
    let req = Request {
        plans_at_once: at_once,
        parallelism,
        limits: settings.budgets.clone(),
        ..Request::new(model, plans, to)
    };
    forecast(model, &req).map_err(CliError::invalid_input)
}

/// The forecast as people read it: per plan, the run, the binding
/// constraint in a sentence, what each limit adds, and the basis.
pub fn render(f: &Forecast, to: &str) -> String {
    let mut o = String::new();
    let many = if f.plans_at_once > f.plans.len() {
        format!(" (as {} plans failing over at once)", f.plans_at_once)
    } else {
        String::new()
    };
    let _ = writeln!(
        o,
        "forecast: failover of {} plan{} to {to}{many}",
        f.plans.len(),
        if f.plans.len() == 1 { "" } else { "s" }
    );
    let width = f
        .plans
        .iter()
        .map(|p| p.plan.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        o,
        "  {:<width$}  {:<10} {:>10} {:>9} {:>9}",
        "plan", "tier", "RTO target", "p50", "p90"
    );
    for p in &f.plans {
        let _ = writeln!(
            o,
            "  {:<width$}  {:<10} {:>10} {:>9} {:>9}  {}",
            p.plan,
            p.tier,
            show(p.target_seconds),
            show(p.rto.p50_seconds),
            show(p.rto.p90_seconds),
            if p.met_at_p90 {
                "within target at p90"
            } else {
                "OVER target at p90"
            }
        );
    }
    let _ = writeln!(
        o,
        "  run (its slowest plan): p50 {}, p90 {}; lower bound {} (no tool could do better under these limits)",
        show(f.run.p50_seconds),
        show(f.run.p90_seconds),
        show(f.lower_bound_seconds)
    );
    let _ = writeln!(o, "binding constraint: {}", f.binding);
    for t in f.terms.iter().filter(|t| t.adds_seconds > 0.0) {
        let _ = writeln!(o, "  + {}", t.detail);
    }
    let _ = writeln!(o, "basis: {}", f.basis);
    o
}
