//! `drctl restore`, `drctl reprotect` and `drctl failback`.
//!
//! All three start journaled, measured runs through the same engine as
//! `failover`; they differ in the graph they compile. The region they act in
//! is read from live state (where the plan's DNS points now), never assumed.

use chrono::{DateTime, Utc};
use clap::Args;

use super::failover::{RunArgs, engine, execute, finish, render_report};
use super::{Exit, Output, load_plans, select};
use drctl::config::Settings;
use drctl::engine::RunMode;
use drctl::plan::Plan;
use drctl::status::{DEFAULT_LAG_WINDOW, status};

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Plan.
    #[arg(long)]
    pub plan: String,
    /// Database resource id of the plan.
    #[arg(long)]
    pub database: String,
    /// Restore point (RFC 3339).
    #[arg(
        long,
        value_name = "TIME",
        conflicts_with = "latest",
        required_unless_present = "latest"
    )]
    pub to_time: Option<DateTime<Utc>>,
    /// Restore to the latest restorable time.
    #[arg(long)]
    pub latest: bool,
    /// Region to restore in (default: the region the plan serves from now).
    #[arg(long)]
    pub region: Option<String>,
    /// Run flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `reprotect` and `failback`.
#[derive(Debug, Args)]
pub struct PlanRunArgs {
    /// Plan.
    #[arg(long)]
    pub plan: String,
    /// Run flags.
    #[command(flatten)]
    pub run: RunArgs,
}

async fn one_plan(settings: &Settings, name: &str) -> Result<Plan, Exit> {
    let loaded = load_plans(settings, &[])?;
    Ok(select(&loaded, Some(name))?[0].clone())
}

/// The region the plan serves from now, and whether every other region's
/// databases are replicas of it.
async fn where_now(settings: &Settings, plan: &Plan) -> anyhow::Result<(String, bool)> {
    let clouds = drctl::cloud::connect(&settings.cloud).await?;
    let report = status(&clouds, std::slice::from_ref(plan), DEFAULT_LAG_WINDOW).await;
    let p = &report.plans[0];
    let protected = p
        .regions
        .iter()
        .filter(|r| r.region != p.active_region)
        .all(|r| r.databases.iter().all(|d| d.role == "replica"));
    Ok((p.active_region.clone(), protected))
}

/// Runs `restore`.
pub async fn restore(a: RestoreArgs, settings: &Settings) -> anyhow::Result<Exit> {
    let plan = match one_plan(settings, &a.plan).await {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let region = match a.region {
        Some(r) => r,
        None => where_now(settings, &plan).await?.0,
    };
    let mode = RunMode::Restore {
        database: a.database.clone(),
        to_time: a.to_time,
    };
    let opts = a.run.options("restore", mode, &region);
    let engine = engine(settings, Some(plan.tier.rto), true).await?;
    execute(&engine, &[plan], &opts, a.run.output).await
}

/// Runs `reprotect`.
pub async fn reprotect(a: PlanRunArgs, settings: &Settings) -> anyhow::Result<Exit> {
    let plan = match one_plan(settings, &a.plan).await {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let (active, _) = where_now(settings, &plan).await?;
    let opts = a.run.options("reprotect", RunMode::Reprotect, &active);
    let engine = engine(settings, Some(plan.tier.rto), true).await?;
    execute(&engine, &[plan], &opts, a.run.output).await
}

/// Runs `failback`: reprotect when needed, then fail over to the home region.
///
/// With `--output json`, stdout holds one document, the last run's (or the
/// refusal's): the reprotection's summary goes to stderr with its progress.
pub async fn failback(a: PlanRunArgs, settings: &Settings) -> anyhow::Result<Exit> {
    let plan = match one_plan(settings, &a.plan).await {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let home = plan.home().to_string();
    let (active, protected) = where_now(settings, &plan).await?;
    if active == home && protected {
        let message = format!(
            "plan {} already serves from its home region {home} and is protected: nothing to fail back",
            plan.name()
        );
        match a.run.output {
            Output::Json => println!(
                "{:#}",
                serde_json::json!({"kind": "failback", "outcome": "nothing to do", "plan": plan.name(), "target": home, "message": message})
            ),
            Output::Text => println!("{message}"),
        }
        return Ok(Exit::Ok);
    }
    let engine = engine(settings, Some(plan.tier.rto), true).await?;
    if !protected {
        eprintln!(
            "plan {} is not protected in every region: reprotecting from {active} first",
            plan.name()
        );
        let opts = a.run.options("reprotect", RunMode::Reprotect, &active);
        // Already home: the reprotection is all there is to do.
        let only = a.run.dry_run || active == home;
        let code = if only || a.run.output == Output::Text {
            execute(&engine, std::slice::from_ref(&plan), &opts, a.run.output).await?
        } else {
            // stdout's one document will be the failback's: this summary goes to stderr.
            match engine.run(std::slice::from_ref(&plan), &opts).await {
                Ok(report) if report.outcome == "succeeded" => {
                    eprint!("{}", render_report(&report));
                    Exit::Ok
                }
                other => return finish(other, a.run.output),
            }
        };
        if code != Exit::Ok || only {
            if code == Exit::Ok && !a.run.dry_run {
                eprintln!(
                    "plan {} already serves from its home region {home}: nothing to fail over",
                    plan.name()
                );
            }
            return Ok(code);
        }
    }
    let opts = a.run.options("failback", RunMode::Failover, &home);
    execute(&engine, &[plan], &opts, a.run.output).await
}
