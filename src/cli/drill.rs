//! `drctl drill`: rehearse a failover on drill copies, measured, always
//! cleaned up; `drctl drill sweep`: remove what interrupted drills left.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::failover::{RunArgs, engine, execute};
use super::{Exit, Output, load_plans, select};
use drctl::cleanup::sweep::{self, Found};
use drctl::config::Settings;
use drctl::engine::RunMode;
use drctl::journal::event::{Event, Outcome, PlanRef};
use drctl::journal::{Journal, RunKind};
use drctl::plan::Plan;
use drctl::plan::duration::parse_duration;
use drctl::steps::graph::DrillDepth;

/// `drill`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DrillArgs {
    /// Sweep instead of drilling.
    #[command(subcommand)]
    pub command: Option<DrillCommand>,
    /// The plan to drill.
    #[arg(long)]
    pub plan: Option<String>,
    /// The standby region to drill.
    #[arg(long)]
    pub to: Option<String>,
    /// How far the drill goes: `shadow` (drill copies only, production
    /// untouched) or `switchover` (a real failover then a failback: disruptive,
    /// needs --approve).
    #[arg(long, value_enum, default_value_t)]
    pub depth: DrillDepth,
    /// Abort into cleanup after this long (default: twice the tier's RTO, at least 15m).
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub max_duration: Option<Duration>,
    /// Drill even inside the plan's `[drill] blackout` window.
    #[arg(long)]
    pub ignore_blackout: bool,
    /// Run flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `drill` subcommands.
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Find expired drill resources in every region of every plan (by their
    /// tags and names, no journal needed) and remove them.
    Sweep(SweepArgs),
}

/// `drill sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Only these plans (default: every plan).
    #[arg(long)]
    pub plan: Option<String>,
    /// List what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove drill resources that have not expired yet (only when no
    /// drill of these plans is running: `drctl lock status` tells).
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// Runs `drill` or `drill sweep`.
pub async fn run(a: DrillArgs, settings: &Settings) -> anyhow::Result<Exit> {
    if let Some(DrillCommand::Sweep(s)) = a.command {
        return run_sweep(s, settings).await;
    }
    let (Some(plan_name), Some(to)) = (a.plan.as_deref(), a.to.as_deref()) else {
        eprintln!(
            "error: a drill needs --plan PLAN and --to REGION\n  hint: `drctl drill --plan payments --to us-east-1`; `drctl schedule list` shows the plans"
        );
        return Ok(Exit::Invalid);
    };
    let loaded = match load_plans(settings, &[]) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plans: Vec<Plan> = match select(&loaded, Some(plan_name)) {
        Ok(p) => p.into_iter().cloned().collect(),
        Err(code) => return Ok(code),
    };
    let plan = &plans[0];
    if plan.home() == to {
        eprintln!(
            "error: {to} is the home region of plan {plan_name}: a drill rehearses a failover to a standby\n  hint: its standbys are {}",
            plan.regions()[1..].join(", ")
        );
        return Ok(Exit::Invalid);
    }
    let mut opts = a
        .run
        .options(RunKind::Drill, RunMode::Drill { depth: a.depth }, to);
    opts.max_duration = a.max_duration;
    opts.ignore_blackout = a.ignore_blackout;
    let interrupt = Arc::new(tokio::sync::Notify::new());
    opts.interrupt = Some(interrupt.clone());
    if !opts.dry_run {
        let depth = a.depth;
        tokio::spawn(async move {
            loop {
                wait_for_stop_signal().await;
                if depth == DrillDepth::Switchover {
                    // A real failover is not abandoned halfway on a signal:
                    // it goes on (a crash would leave it resumable anyway).
                    eprintln!(
                        "drctl: a switchover drill is a real failover and does not stop on a signal; it goes on (if this process is killed, `drctl runs resume` continues it)"
                    );
                    continue;
                }
                eprintln!("drctl: stopping the drill and cleaning up (this takes a moment)...");
                interrupt.notify_one();
                return;
            }
        });
    }
    let budget = Some(plan.tier.rto);
    let engine = engine(settings, Some(to), a.run.dry_run, budget, true).await?;
    if a.depth == DrillDepth::Switchover {
        return switchover(&engine, plan, &opts, a.run.output).await;
    }
    execute(&engine, &plans, &opts, a.run.output).await
}

/// Waits up to three minutes for a first `ReplicaLag` datapoint of every
/// promote-replica database of `plan` in `region`.
async fn wait_for_lag(engine: &drctl::engine::Engine, plan: &Plan, region: &str, window: Duration) {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    for d in plan
        .spec
        .database
        .iter()
        .filter(|d| d.strategy == drctl::plan::spec::DbStrategy::PromoteReplica)
    {
        let id = &d.regions[region];
        let mut told = false;
        while std::time::Instant::now() < deadline {
            match engine.clouds.metrics.replica_lag(region, id, window).await {
                Ok(r) if r.datapoints > 0 => break,
                _ => {}
            }
            if !told {
                eprintln!(
                    "switchover drill: waiting for the first ReplicaLag of {id} ({region}) before failing back"
                );
                told = true;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// A switchover drill: a real failover to the target, journaled as the
/// drill (its RTO and RPO are the drill's), then a reprotection from the
/// target, a failback home and a reprotection from home (protected as
/// before), each a run of its own. Disruptive: users
/// move twice; approval is required whatever the tier says.
async fn switchover(
    engine: &drctl::engine::Engine,
    plan: &Plan,
    opts: &drctl::engine::RunOptions,
    output: Output,
) -> anyhow::Result<Exit> {
    let (to, home) = (opts.target.as_str(), plan.home());
    eprintln!(
        "warning: a switchover drill is DISRUPTIVE: a real failover of plan {} to {to}, then a reprotection and a failback to {home}; users move twice",
        plan.name()
    );
    let plans = std::slice::from_ref(plan);
    if opts.dry_run {
        let code = execute(engine, plans, opts, output).await?;
        if output == Output::Text {
            println!(
                "then: drctl reprotect --plan {p} (from {to}), drctl failback --plan {p} (to {home}) and drctl reprotect --plan {p} (from {home}), previewed once the failover is done",
                p = plan.name()
            );
        }
        return Ok(code);
    }
    let drill = engine.run(plans, opts).await;
    let drill = match drill {
        Ok(r) => r,
        Err(e) => return super::failover::finish(Err(e), output),
    };
    let mut reports = vec![drill.clone()];
    let mut ok = drill.succeeded();
    // Back home only after a failover that completed: a failed one is
    // resumed (`drctl runs resume`), never failed back half-done.
    if drill.outcome.succeeded() {
        // Protected again at the end: the region failed back from gets
        // replicas of home again, as before the drill.
        let back = [
            (RunKind::Reprotect, RunMode::Reprotect, to),
            (RunKind::Failback, RunMode::Failover, home),
            (RunKind::Reprotect, RunMode::Reprotect, home),
        ];
        for (kind, mode, target) in back {
            if kind == RunKind::Failback {
                // The replicas reprotect just made at home publish their
                // first ReplicaLag within about a minute: the failback's RPO
                // gate needs it, so wait for it (bounded) rather than refuse.
                wait_for_lag(engine, plan, home, opts.lag_window).await;
            }
            let o = drctl::engine::RunOptions {
                kind,
                mode,
                target: target.to_string(),
                slot: None,
                interrupt: None,
                ..opts.clone()
            };
            match engine.run(plans, &o).await {
                Ok(r) => {
                    ok &= r.succeeded();
                    let stop = !r.succeeded();
                    reports.push(r);
                    if stop {
                        break;
                    }
                }
                Err(e) => {
                    eprintln!("error: the switchover drill's {kind} did not run: {e}");
                    ok = false;
                    break;
                }
            }
        }
    }
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "drill": reports[0],
                "failback": reports[1..],
                "back_home": ok && reports.len() == 4,
            }))?
        ),
        Output::Text => {
            for r in &reports {
                print!("{}", super::failover::render_report(r));
            }
        }
    }
    Ok(if ok && reports.len() == 4 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run_sweep(a: SweepArgs, settings: &Settings) -> anyhow::Result<Exit> {
    let loaded = match load_plans(settings, &[]) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plans: Vec<Plan> = match select(&loaded, a.plan.as_deref()) {
        Ok(p) => p.into_iter().cloned().collect(),
        Err(code) => return Ok(code),
    };
    let clouds = drctl::cloud::connect(&settings.cloud).await?;
    let now = chrono::Utc::now();
    let (mut found, errors) = sweep::find(&clouds, &plans, now).await;
    if a.all {
        found.iter_mut().for_each(|f| f.expired = true);
    }
    for e in &errors {
        eprintln!(
            "warning: could not search {} ({}) for drill resources: {}",
            e.resource,
            e.region,
            e.message.lines().next().unwrap_or_default()
        );
    }
    if a.dry_run {
        match a.output {
            Output::Json => println!(
                "{:#}",
                json!({"dry_run": true, "found": found, "unsearched": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()})
            ),
            Output::Text => print!("{}", render_found(&found, true)),
        }
        return Ok(if errors.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        });
    }
    // Journaled as a run of its own.
    let state = super::open_state(settings, None, Some(&clouds)).await?;
    let run_id = drctl::journal::new_run_id("sweep");
    let mut j = Journal::create(state.journals.clone(), &run_id).await?;
    j.append(Event::RunStarted {
        run_id: run_id.clone(),
        kind: RunKind::Sweep,
        target: "all".into(),
        plans: plans
            .iter()
            .map(|p| PlanRef {
                name: p.name().into(),
                digest: p.digest.clone(),
            })
            .collect(),
        operator: None,
        host: drctl::state::lock::hostname(),
        pid: std::process::id(),
        flags: json!({"all": a.all, "found": found}),
        declared_at: None,
        steps: Vec::new(),
    })
    .await?;
    let cleaned = sweep::sweep(
        &clouds,
        &found,
        (Duration::from_millis(200), Duration::from_secs(10)),
    )
    .await;
    for c in &cleaned {
        j.append(Event::Cleanup {
            resource: c.resource.clone(),
            result: c.result,
            detail: c.detail.clone(),
        })
        .await?;
    }
    let failed = cleaned.iter().filter(|c| !c.result.done()).count();
    let outcome = if failed == 0 && errors.is_empty() {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    j.append(Event::RunFinished {
        outcome,
        summary: json!({"removed": cleaned, "not_expired": found.iter().filter(|f| !f.expired).collect::<Vec<_>>(), "unsearched": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()}),
    })
    .await?;
    match a.output {
        Output::Json => println!(
            "{:#}",
            json!({"run_id": run_id, "outcome": outcome, "found": found, "cleaned": cleaned})
        ),
        Output::Text => {
            print!("{}", render_found(&found, false));
            for c in &cleaned {
                println!("  {}: {} ({})", c.resource, c.result, c.detail);
            }
            for c in cleaned.iter().filter(|c| !c.result.done()) {
                println!(
                    "  left: {}; remove it with: {}",
                    c.resource,
                    drctl::steps::drill_names::manual_removal(&c.resource)
                );
            }
            println!("sweep {run_id}: {outcome}");
        }
    }
    Ok(if outcome == Outcome::Succeeded {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn render_found(found: &[Found], dry_run: bool) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    if found.is_empty() {
        let _ = writeln!(o, "no drill resources found");
        return o;
    }
    for f in found {
        let _ = writeln!(
            o,
            "{} {} (drill {}, expires {}){}",
            if f.expired { "expired:" } else { "live:   " },
            f.resource,
            f.run.as_deref().unwrap_or("named by its record"),
            f.expires.map_or("unknown".into(), |e| e.to_rfc3339()),
            if f.expired && dry_run {
                " — would be removed"
            } else if !f.expired {
                " — left alone until it expires"
            } else {
                ""
            }
        );
    }
    o
}
