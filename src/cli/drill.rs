//! `drctl drill`: rehearse a failover on drill copies, measured, always
//! cleaned up; `drctl drill sweep`: remove what interrupted drills left.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::failover::{RunArgs, engine, execute};
use super::{CliError, Exit, Output, load_plans, out, outln, select};
use drctl::cleanup::sweep::{self, Found};
use drctl::config::Settings;
use drctl::engine::RunMode;
use drctl::journal::RunKind;
use drctl::journal::event::{Event, Outcome};
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
    /// tags and names, no journal needed; a raised EKS node group by its
    /// drill's journal in the state) and remove them.
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
pub async fn run(a: DrillArgs, settings: &Settings) -> Result<Exit, CliError> {
    if let Some(DrillCommand::Sweep(s)) = a.command {
        return run_sweep(s, settings).await;
    }
    let (Some(plan_name), Some(to)) = (a.plan.as_deref(), a.to.as_deref()) else {
        return Err(
            CliError::invalid("a drill needs --plan PLAN and --to REGION").hint(
                "`drctl drill --plan payments --to us-east-1`; `drctl schedule list` shows the plans",
            ),
        );
    };
    let loaded = load_plans(settings, &[plan_name.to_string()])?;
    let plans: Vec<Plan> = select(&loaded, Some(plan_name))?
        .into_iter()
        .cloned()
        .collect();
    let plan = &plans[0];
    let to = plan.site(to).unwrap_or(to);
    if a.depth == DrillDepth::Switchover && a.run.approve_preview.is_some() {
        // Its preview is its failover's; the reprotections and failback
        // after it depend on what the failover leaves, so they cannot be
        // previewed, nor approved, before it runs.
        return Err(CliError::invalid(
            "a switchover drill cannot run as an approved preview: its way back (a reprotection, a failback home, a reprotection) cannot be previewed before its failover has run, so an approval would not cover it",
        )
        .hint(format!(
            "approve each run as it comes: `drctl failover --plan {plan_name} --to {to} --dry-run`, then `drctl reprotect` and `drctl failback` with their own previews; or drill without --approve-preview"
        )));
    }
    if plan.home() == to {
        return Err(CliError::invalid(format!(
            "{to} is the home region of plan {plan_name}: a drill rehearses a failover to a standby"
        ))
        .hint(format!(
            "its standbys are {}",
            plan.regions()[1..].join(", ")
        )));
    }
    let mut opts = a.run.options(
        RunKind::Drill,
        RunMode::Drill { depth: a.depth },
        to,
        &settings.pace,
    );
    opts.max_duration = a.max_duration;
    opts.ignore_blackout = a.ignore_blackout;
    let interrupt = Arc::new(tokio::sync::Notify::new());
    opts.interrupt = Some(interrupt.clone());
    if !opts.dry_run {
        let depth = a.depth;
        tokio::spawn(async move {
            loop {
                super::stop_signal().await;
                if depth == DrillDepth::Switchover {
                    // A real failover is not abandoned halfway on a signal:
                    // it goes on (a crash would leave it resumable anyway).
                    super::errln!(
                        "drctl: a switchover drill is a real failover and does not stop on a signal; it goes on (if this process is killed, `drctl runs resume` continues it)"
                    );
                    continue;
                }
                super::errln!("drctl: stopping the drill and cleaning up (this takes a moment)...");
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

/// Waits up to three minutes for a first lag datapoint of every RPO
/// source of `plan` (a promoted replica's `ReplicaLag`) in `region` whose
/// lag the failback's RPO gate reads: not a copy that switches over
/// (the gate passes it unread).
async fn wait_for_lag(engine: &drctl::engine::Engine, plan: &Plan, region: &str, window: Duration) {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let sources = drctl::plan::kinds::promoting::rpo_sources(&plan.spec, true)
        .into_iter()
        .filter(|(_, switchover)| !switchover)
        .map(|(source, _)| source);
    for source in sources {
        let id = source.copy(region).unwrap_or_default();
        let mut told = false;
        while std::time::Instant::now() < deadline {
            match source.lag(&engine.clouds, region, window).await {
                Ok(r) if r.datapoints > 0 => break,
                _ => {}
            }
            if !told {
                super::errln!(
                    "switchover drill: waiting for the first {} of {id} ({region}) before failing back",
                    source.about().metric
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
) -> Result<Exit, CliError> {
    let (to, home) = (opts.target.as_str(), plan.home());
    super::errln!(
        "warning: a switchover drill is DISRUPTIVE: a real failover of plan {} to {to}, then a reprotection and a failback to {home}; users move twice",
        plan.name()
    );
    let plans = std::slice::from_ref(plan);
    if opts.dry_run {
        let code = execute(engine, plans, opts, output).await?;
        if output == Output::Text {
            outln!(
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
    let (mut ok, mut not_run) = (drill.succeeded(), None);
    // Back home only after a failover that completed: a failed one is
    // resumed (`drctl runs resume`), never failed back half-done.
    if drill.outcome.succeeded() {
        let back = back_home(engine, plan, opts, &mut reports).await;
        ok &= back.is_ok();
        not_run = back.err().flatten();
    }
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "drill": reports[0],
                "failback": reports[1..],
                "back_home": ok && reports.len() == 4,
            }))?
        ),
        Output::Text => {
            for r in &reports {
                out!("{}", super::failover::render_report(r));
            }
        }
    }
    if let Some(e) = not_run {
        return Err(e);
    }
    Ok(if ok && reports.len() == 4 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// After a switchover drill's failover: a reprotection from the target, a
/// failback home and a reprotection from home, each a run of its own, their
/// reports pushed to `reports`. `Err` when one failed (with why, when it
/// did not even run); the rest are not started.
async fn back_home(
    engine: &drctl::engine::Engine,
    plan: &Plan,
    opts: &drctl::engine::RunOptions,
    reports: &mut Vec<drctl::runs::RunReport>,
) -> Result<(), Option<CliError>> {
    let (to, home) = (opts.target.as_str(), plan.home());
    let plans = std::slice::from_ref(plan);
    // Protected again at the end: the region failed back from gets
    // replicas of home again, as before the drill.
    let back = [
        (RunKind::Reprotect, RunMode::Reprotect, to),
        (RunKind::Failback, RunMode::Failover { planned: true }, home),
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
            // Never an approved preview (refused at the start): the way
            // back is not previewed, and must not be refused halfway (the
            // plan would be left away from home, unprotected).
            approved_preview: None,
            ..opts.clone()
        };
        match engine.run(plans, &o).await {
            Ok(r) => {
                let failed = !r.succeeded();
                reports.push(r);
                if failed {
                    return Err(None);
                }
            }
            Err(e) => {
                let e = CliError::from(e);
                return Err(Some(CliError {
                    code: Exit::Failed,
                    message: format!("the switchover drill's {kind} did not run: {}", e.message),
                    ..e
                }));
            }
        }
    }
    Ok(())
}

async fn run_sweep(a: SweepArgs, settings: &Settings) -> Result<Exit, CliError> {
    let loaded = load_plans(settings, &[])?;
    let plans: Vec<Plan> = select(&loaded, a.plan.as_deref())?
        .into_iter()
        .cloned()
        .collect();
    let clouds = drctl::cloud::connect(&settings.cloud).await?;
    let now = chrono::Utc::now();
    // The journals name what carries no tags (a raised node group).
    let state = if a.dry_run {
        super::open_state_to_read(settings, Some(&clouds)).await?
    } else {
        super::open_state(settings, None, Some(&clouds)).await?
    };
    let (mut found, errors) = sweep::find(&clouds, &plans, state.journals.as_ref(), now).await;
    if a.all {
        found.iter_mut().for_each(|f| f.expired = true);
    }
    for e in &errors {
        super::errln!(
            "warning: could not search for drill resources: {}",
            e.summary()
        );
    }
    if a.dry_run {
        match a.output {
            Output::Json => outln!(
                "{:#}",
                json!({"dry_run": true, "found": found, "unsearched": errors.iter().map(|e| e.to_string()).collect::<Vec<_>>()})
            ),
            Output::Text => out!("{}", render_found(&found, true)),
        }
        return Ok(if errors.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        });
    }
    let (run_id, cleaned, outcome) = swept(&state, &clouds, &plans, a.all, &found, &errors).await?;
    match a.output {
        Output::Json => outln!(
            "{:#}",
            json!({"run_id": run_id, "outcome": outcome, "found": found, "cleaned": cleaned})
        ),
        Output::Text => {
            out!("{}", render_found(&found, false));
            for c in &cleaned {
                outln!("  {}: {} ({})", c.resource, c.result, c.detail);
            }
            for c in cleaned.iter().filter(|c| !c.result.done()) {
                outln!(
                    "  left: {}; remove it with: {}",
                    c.resource,
                    drctl::steps::drill_names::manual_removal(&c.resource)
                );
            }
            outln!("sweep {run_id}: {outcome}");
        }
    }
    Ok(if outcome == Outcome::Succeeded {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Removes what `found` holds that expired, journaled as a run of its own
/// (a sweep): its id, what was done to each resource, and the outcome.
async fn swept(
    state: &drctl::state::State,
    clouds: &drctl::cloud::Clouds,
    plans: &[Plan],
    all: bool,
    found: &[Found],
    errors: &[drctl::cloud::CloudError],
) -> Result<(String, Vec<drctl::journal::Cleaned>, Outcome), CliError> {
    // Journaled as a run of its own.
    let run_id = drctl::journal::new_run_id("sweep");
    let started = (run_id.as_str(), RunKind::Sweep, "all");
    let flags = json!({"all": all, "found": found});
    let mut j = super::start_own_run(&state.journals, started, plans, flags).await?;
    let cleaned = sweep::sweep(
        clouds,
        found,
        plans,
        state.journals.as_ref(),
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
    Ok((run_id, cleaned, outcome))
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
