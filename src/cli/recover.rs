//! `drctl restore`, `drctl reprotect` and `drctl failback`.
//!
//! All three start journaled, measured runs through the same engine as
//! `failover`; they differ in the graph they compile. The region they act in
//! is read from live state (where the plan's DNS points now), never assumed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use super::failover::{RunArgs, engine, execute, finish, render_report};
use super::{CliError, Exit, Output, load_plans, outln, select};
use drctl::config::Settings;
use drctl::engine::RunMode;
use drctl::journal::RunKind;
use drctl::plan::Plan;
use drctl::status::{DEFAULT_LAG_WINDOW, StatusOptions, status};

/// `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Plan.
    #[arg(long)]
    pub plan: String,
    /// Data resource id of the plan: a `[[database]]` or a `[[cloud_sql]]`
    /// (any kind whose copies are restored to a point in time).
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

async fn one_plan(settings: &Settings, name: &str) -> Result<Plan, CliError> {
    let loaded = load_plans(settings, &[name.to_string()])?;
    Ok(select(&loaded, Some(name))?[0].clone())
}

/// Where a plan stands, as `restore`, `reprotect` and `failback` need it.
struct Whereabouts {
    /// The region the plan serves from now.
    active: String,
    /// Whether every other region's databases are replicas of it.
    protected: bool,
    /// Other regions that did not answer, with why.
    unreachable: Vec<(String, String)>,
}

/// How long `reprotect`/`failback` wait for a region before calling it down:
/// they need every region, and should say so at once rather than retry.
const REGION_READ_TIMEOUT: Duration = Duration::from_secs(3);

async fn where_now(settings: &Settings, plan: &Plan) -> Result<Whereabouts, CliError> {
    let clouds = drctl::cloud::connect(&settings.cloud).await?;
    let opts = StatusOptions {
        lag_window: DEFAULT_LAG_WINDOW,
        read_timeout: REGION_READ_TIMEOUT,
    };
    let report = status(&clouds, std::slice::from_ref(plan), &opts).await;
    let p = &report.plans[0];
    let others = p.regions.iter().filter(|r| r.region != p.active_region);
    Ok(Whereabouts {
        active: p.active_region.clone(),
        protected: others.clone().all(|r| {
            let roles: Vec<(&str, &str)> = (r.databases.iter())
                .map(|d| (d.id.as_str(), d.role.as_str()))
                .collect();
            protects(plan, &roles)
        }),
        unreachable: others
            .filter_map(|r| r.unreachable.clone().map(|why| (r.region.clone(), why)))
            .collect(),
    })
}

/// Whether a region's data copies, read as `(resource, role)`, protect
/// the plan (pure): the copy of every resource kept in sync by replication
/// is a replica there; one restored from backups keeps none, and a
/// reprotection makes none of it.
fn protects(plan: &Plan, roles: &[(&str, &str)]) -> bool {
    let replicated = |id: &str| (plan.spec.resource(id)).is_some_and(|r| r.rpo_source().is_some());
    (roles.iter())
        .filter(|(id, _)| replicated(id))
        .all(|(_, role)| *role == "replica")
}

/// Refuses a run that needs regions that do not answer (exit 1), saying so.
fn needs_every_region(what: &str, plan: &Plan, w: &Whereabouts) -> Result<(), CliError> {
    if w.unreachable.is_empty() {
        return Ok(());
    }
    let dead: Vec<String> = w
        .unreachable
        .iter()
        .map(|(r, why)| format!("{r} ({why})"))
        .collect();
    Err(CliError::failed(format!(
        "{what} of plan {} re-creates replicas in every other region, and {} does not answer; nothing was changed",
        plan.name(),
        dead.join(", "),
    ))
    .hint(format!(
        "the plan still serves from {}; run `drctl {what} --plan {}` again once the region is back (`drctl status` shows it)",
        w.active,
        plan.name()
    )))
}

/// The engine of a run of one plan's own (restore, reprotect, failback)
/// working in `region`, bounded by the plan's RTO, asking before it acts.
async fn plan_engine(
    settings: &Settings,
    plan: &Plan,
    region: &str,
    dry_run: bool,
) -> Result<drctl::engine::Engine, CliError> {
    engine(settings, Some(region), dry_run, Some(plan.tier.rto), true).await
}

/// Runs `restore`.
pub async fn restore(a: RestoreArgs, settings: &Settings) -> Result<Exit, CliError> {
    let plan = one_plan(settings, &a.plan).await?;
    let region = match a.region {
        Some(r) => r,
        None => where_now(settings, &plan).await?.active,
    };
    let mode = RunMode::Restore {
        database: a.database.clone(),
        to_time: a.to_time,
    };
    let opts = a
        .run
        .options(RunKind::Restore, mode, &region, &settings.pace);
    let engine = plan_engine(settings, &plan, &region, a.run.dry_run).await?;
    execute(&engine, &[plan], &opts, a.run.output).await
}

/// Runs `reprotect`.
pub async fn reprotect(a: PlanRunArgs, settings: &Settings) -> Result<Exit, CliError> {
    let plan = one_plan(settings, &a.plan).await?;
    let w = where_now(settings, &plan).await?;
    needs_every_region("reprotect", &plan, &w)?;
    let opts = a.run.options(
        RunKind::Reprotect,
        RunMode::Reprotect,
        &w.active,
        &settings.pace,
    );
    let engine = plan_engine(settings, &plan, &w.active, a.run.dry_run).await?;
    execute(&engine, &[plan], &opts, a.run.output).await
}

/// Runs `failback`: reprotect when needed, then fail over to the home region.
///
/// With `--output json`, stdout holds one document, the last run's (or the
/// refusal's): the reprotection's summary goes to stderr with its progress.
pub async fn failback(a: PlanRunArgs, settings: &Settings) -> Result<Exit, CliError> {
    let plan = one_plan(settings, &a.plan).await?;
    let home = plan.home().to_string();
    let w = where_now(settings, &plan).await?;
    needs_every_region("failback", &plan, &w)?;
    let (active, protected) = (w.active, w.protected);
    if active == home && protected {
        let message = format!(
            "plan {} already serves from its home region {home} and is protected: nothing to fail back",
            plan.name()
        );
        match a.run.output {
            Output::Json => outln!(
                "{:#}",
                serde_json::json!({"kind": "failback", "outcome": "nothing to do", "plan": plan.name(), "target": home, "message": message})
            ),
            Output::Text => outln!("{message}"),
        }
        return Ok(Exit::Ok);
    }
    let engine = plan_engine(settings, &plan, &home, a.run.dry_run).await?;
    if !protected {
        super::errln!(
            "plan {} is not protected in every region: reprotecting from {active} first",
            plan.name()
        );
        let opts = a.run.options(
            RunKind::Reprotect,
            RunMode::Reprotect,
            &active,
            &settings.pace,
        );
        // Already home: the reprotection is all there is to do.
        let only = a.run.dry_run || active == home;
        let code = if only || a.run.output == Output::Text {
            execute(&engine, std::slice::from_ref(&plan), &opts, a.run.output).await?
        } else {
            // stdout's one document will be the failback's: this summary goes to stderr.
            match engine.run(std::slice::from_ref(&plan), &opts).await {
                Ok(report) if report.succeeded() => {
                    super::err!("{}", render_report(&report));
                    Exit::Ok
                }
                other => return finish(other, a.run.output),
            }
        };
        if code != Exit::Ok || only {
            if code == Exit::Ok && !a.run.dry_run {
                super::errln!(
                    "plan {} already serves from its home region {home}: nothing to fail over",
                    plan.name()
                );
            }
            return Ok(code);
        }
    }
    let opts = a.run.options(
        RunKind::Failback,
        RunMode::Failover { planned: true },
        &home,
        &settings.pace,
    );
    execute(&engine, &[plan], &opts, a.run.output).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payments() -> Plan {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/payments.toml");
        let loaded = drctl::plan::load(&[path]);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.plans.into_iter().next().expect("payments")
    }

    /// Regression (`a_plan_with_a_restored_database_was_never_protected`):
    /// a database restored from backups is no replica anywhere, and a
    /// reprotection makes none of it; counted, it kept `failback`
    /// reprotecting for ever. Only replicated resources count.
    #[test]
    fn a_plan_with_a_restored_database_was_never_protected() {
        let mut plan = payments();
        let id = plan.spec.database[0].id.clone();
        assert!(protects(&plan, &[(&id, "replica")]));
        assert!(!protects(&plan, &[(&id, "primary")]));
        plan.spec.database[0].strategy = drctl::plan::kinds::DbStrategy::PointInTimeRestore;
        assert!(protects(&plan, &[(&id, "primary")]));
    }
}
