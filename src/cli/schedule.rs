//! `drctl schedule list`: each plan's drill cadence, from the journals;
//! `drctl schedule run`: one pass (or `--loop`) that starts each drill whose
//! slot is due, at most once per slot across every scheduler sharing the
//! state (the slot is part of the run's identity, checked under the plan's
//! lock), recording skipped and missed slots.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::json;

use super::{CliError, Exit, Output, load_plans, out, outln};
use drctl::config::Settings;
use drctl::engine::{Engine, EngineError, RunMode};
use drctl::journal::RunKind;
use drctl::journal::event::{Event, Outcome};
use drctl::plan::Plan;
use drctl::plan::duration::parse_duration;
use drctl::runs::schedule::{self, Cadence, SlotAction};
use drctl::steps::graph::DrillDepth;

/// `schedule` subcommands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Per plan: the last drill and its verdict, the next slot, and whether a
    /// passing drill is overdue (exit 1 when any plan is: alert on it).
    List {
        /// Only this plan.
        #[arg(long)]
        plan: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// One pass: start each plan's drill whose slot is due (to its first
    /// standby region), each slot at most once; a slot missed by more than
    /// --catch-up is recorded as missed. Made to be called every minute
    /// (cron, a systemd timer, a Kubernetes CronJob: docs/schedule.md).
    Run {
        /// Only this plan.
        #[arg(long)]
        plan: Option<String>,
        /// How late a slot may still run, once, as a catch-up.
        #[arg(long, value_parser = parse_duration, default_value = "1h", value_name = "DUR")]
        catch_up: Duration,
        /// Keep running: one pass every --every until Ctrl-C or SIGTERM.
        #[arg(long = "loop")]
        looping: bool,
        /// Time between passes with --loop.
        #[arg(long, value_parser = parse_duration, default_value = "1m", value_name = "DUR")]
        every: Duration,
    },
}

/// Runs a `schedule` command.
pub async fn run(cmd: ScheduleCommand, settings: &Settings) -> Result<Exit, CliError> {
    let (plan, output) = match cmd {
        ScheduleCommand::List { plan, output } => (plan, output),
        ScheduleCommand::Run {
            plan,
            catch_up,
            looping,
            every,
        } => return run_passes(settings, plan.as_deref(), catch_up, looping, every).await,
    };
    let loaded = load_plans(settings, &[])?;
    let plans = super::select(&loaded, plan.as_deref())?
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let rows = super::history::cadence(settings, &plans, None, None).await?;
    let overdue = rows.iter().any(|r| r.overdue);
    if let Err(e) = super::notify::overdue(settings, &plans, &rows).await {
        super::errln!("warning: cannot notify of overdue drills: {e}");
    }
    let listed = listed(&plans, &rows, Utc::now());
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"plans": listed, "overdue": overdue})
            )?
        ),
        Output::Text => out!("{}", render(&listed)),
    }
    Ok(if overdue { Exit::Failed } else { Exit::Ok })
}

/// A plan's row of `schedule list`: its cadence, and whether it is
/// verified by its definition and its last passing drill's age (the
/// report's rule; `drctl status` also compares the cloud).
#[derive(serde::Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    cadence: &'a Cadence,
    verified: drctl::runs::verified::Verified,
}

/// Each row of `rows` with its plan's verified state at `now`.
fn listed<'a>(plans: &[Plan], rows: &'a [Cadence], now: DateTime<Utc>) -> Vec<Listed<'a>> {
    (rows.iter())
        .filter_map(|c| {
            let plan = plans.iter().find(|p| p.name() == c.plan)?;
            let verified = drctl::runs::verified::by_definition(plan, c, now);
            Some(Listed {
                cadence: c,
                verified,
            })
        })
        .collect()
}

fn render(rows: &[Listed<'_>]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    for Listed {
        cadence: r,
        verified,
    } in rows
    {
        let last = r.last_said();
        let next = r
            .next_slot
            .map(|t| format!("next {}", t.format("%Y-%m-%d %H:%MZ")))
            .unwrap_or_else(|| "no schedule".into());
        let _ = writeln!(
            o,
            "{:<20} {:<10} {}  {}  {last}  {next}",
            r.plan,
            r.tier,
            if r.overdue { "OVERDUE" } else { "ok     " },
            if verified.verified {
                "verified    "
            } else {
                "NOT VERIFIED"
            }
        );
        if let Some(note) = &r.note {
            let _ = writeln!(o, "{:<20} {note}", "");
        }
        if let Some(why) = &verified.reason {
            let _ = writeln!(o, "{:<20} not verified: {why}", "");
        }
    }
    o
}

async fn run_passes(
    settings: &Settings,
    plan: Option<&str>,
    catch_up: Duration,
    looping: bool,
    every: Duration,
) -> Result<Exit, CliError> {
    let loaded = load_plans(settings, &[])?;
    let plans = super::select(&loaded, plan)?
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let engine = super::failover::engine(settings, None, false, None, false).await?;
    // Ctrl-C or SIGTERM (cron's kill, systemd's stop, a pod's termination):
    // the running drill stops and cleans up before the process exits, and
    // no further drill starts.
    let stop = Stop::default();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            super::stop_signal().await;
            super::errln!(
                "drctl: stopping; a running drill cleans up first (this takes a moment)..."
            );
            stop.stopping.store(true, Ordering::SeqCst);
            stop.interrupt.notify_one();
            stop.between_passes.notify_one();
        });
    }
    if !looping {
        tell_overdue(settings, &plans).await;
        return pass(&engine, &plans, catch_up, &stop, &settings.pace).await;
    }
    loop {
        tell_overdue(settings, &plans).await;
        match pass(&engine, &plans, catch_up, &stop, &settings.pace).await {
            Err(e) if e.closed_pipe => return Err(e),
            Err(e) => super::errln!("schedule pass failed: {e}"),
            Ok(_) => {}
        }
        if stop.stopping.load(Ordering::SeqCst) {
            return Ok(Exit::Ok);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.between_passes.notified() => return Ok(Exit::Ok),
        }
    }
}

/// Tells the sinks of every overdue plan (once per plan and due time);
/// a failure to is a warning, never the pass's outcome.
async fn tell_overdue(settings: &Settings, plans: &[Plan]) {
    if settings.notify.is_empty() && plans.iter().all(|p| p.spec.notify.is_empty()) {
        return;
    }
    let told = async {
        let rows = super::history::cadence(settings, plans, None, None).await?;
        super::notify::overdue(settings, plans, &rows).await
    };
    if let Err(e) = told.await {
        super::errln!("warning: cannot notify of overdue drills: {e}");
    }
}

/// How a stop signal reaches a pass: the running drill's interrupt, and a
/// flag that no further drill starts.
#[derive(Clone, Default)]
struct Stop {
    interrupt: Arc<Notify>,
    between_passes: Arc<Notify>,
    stopping: Arc<AtomicBool>,
}

/// One pass: decides every plan's slot and acts on it.
async fn pass(
    engine: &Engine,
    plans: &[Plan],
    catch_up: Duration,
    stop: &Stop,
    pace: &drctl::engine::Pace,
) -> Result<Exit, CliError> {
    let now = Utc::now();
    let mut taken = BTreeMap::new();
    for (id, records) in super::read_runs(engine.store.as_ref()).await?.runs {
        let Some(slot) = schedule::slot_of(&records) else {
            continue;
        };
        if let Some(Event::RunStarted { plans, .. }) = records.first().map(|r| &r.event) {
            for p in plans {
                taken.insert((p.name.clone(), slot), id.clone());
            }
        }
    }
    let mut exit = Exit::Ok;
    for d in schedule::due(plans, &taken, now, catch_up) {
        let Some(plan) = plans.iter().find(|p| p.name() == d.plan) else {
            continue;
        };
        match d.action {
            SlotAction::Unscheduled { why } => outln!("{}: not scheduled ({why})", d.plan),
            SlotAction::Taken { slot, by } => {
                outln!("{}: slot {slot} already taken by run {by}", d.plan)
            }
            SlotAction::Blackout { slot, why } => {
                let id = record(engine, plan, slot, format!("skipped: {why}")).await?;
                outln!(
                    "{}: slot {slot} skipped ({why}); recorded as run {id}",
                    d.plan
                );
            }
            SlotAction::Missed { slot } => {
                let id = record(
                    engine,
                    plan,
                    slot,
                    format!(
                        "missed: the slot passed more than {} ago (--catch-up)",
                        drctl::plan::duration::format_duration(catch_up)
                    ),
                )
                .await?;
                outln!("{}: slot {slot} missed; recorded as run {id}", d.plan);
            }
            SlotAction::Start { slot, catch_up } => {
                if start(engine, plan, slot, catch_up, stop, pace).await? == Exit::Failed {
                    exit = Exit::Failed;
                }
            }
        }
    }
    Ok(exit)
}

/// Starts the drill of a due slot (unless stopping); a slot refused
/// because another scheduler or run holds the plan is skipped, recorded.
async fn start(
    engine: &Engine,
    plan: &Plan,
    slot: DateTime<Utc>,
    catch_up: bool,
    stop: &Stop,
    pace: &drctl::engine::Pace,
) -> Result<Exit, CliError> {
    if stop.stopping.load(Ordering::SeqCst) {
        outln!("{}: slot {slot} not started (stopping)", plan.name());
        return Ok(Exit::Ok);
    }
    let Some(target) = plan.regions().get(1).cloned() else {
        outln!("{}: no standby region to drill", plan.name());
        return Ok(Exit::Ok);
    };
    let mut opts = drctl::engine::RunOptions::failover(&target).with_pace(pace);
    opts.kind = RunKind::Drill;
    opts.mode = RunMode::Drill {
        depth: DrillDepth::Shadow,
    };
    opts.slot = Some(slot);
    opts.interrupt = Some(stop.interrupt.clone());
    outln!(
        "{}: starting the drill of slot {slot}{} to {target}",
        plan.name(),
        if catch_up { " (catch-up)" } else { "" }
    );
    match engine.run(std::slice::from_ref(plan), &opts).await {
        Ok(report) => {
            out!("{}", super::failover::render_report(&report));
            if !report.succeeded() {
                return Ok(Exit::Failed);
            }
        }
        Err(EngineError::Refused(why)) => {
            // Another scheduler took the slot (or is running
            // it); else another run holds the plan: skip.
            // The holder may be the other scheduler's drill of
            // this very slot, whose first record follows its
            // lock by moments: look for it a little while.
            let names = [plan.name()];
            let mut taken = engine.slot_taken(&names, slot).await?;
            for _ in 0..20 {
                if taken.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                taken = engine.slot_taken(&names, slot).await?;
            }
            match taken {
                Some(by) => outln!(
                    "{}: slot {slot} taken by run {by} (another scheduler)",
                    plan.name()
                ),
                None => {
                    let first = why.summary().to_string();
                    let id = record(engine, plan, slot, format!("skipped: {first}")).await?;
                    outln!(
                        "{}: slot {slot} skipped ({first}); recorded as run {id}",
                        plan.name()
                    );
                }
            }
        }
        Err(e) => {
            super::errln!(
                "{}: the drill of slot {slot} did not start: {e}",
                plan.name()
            );
            return Ok(Exit::Failed);
        }
    }

    Ok(Exit::Ok)
}

/// Records a slot that did not run (skipped or missed) as a run of its
/// own, so that it is taken and reports show it.
async fn record(
    engine: &Engine,
    plan: &Plan,
    slot: DateTime<Utc>,
    reason: String,
) -> Result<String, CliError> {
    let run_id = drctl::journal::new_run_id(&format!("{}-slot", plan.name()));
    let target = plan.regions().get(1).cloned().unwrap_or_default();
    let flags = json!({"schedule_slot": slot, "mode": {"mode": "drill", "depth": "shadow"}});
    let started = (run_id.as_str(), RunKind::Drill, target.as_str());
    let plans = std::slice::from_ref(plan);
    let mut j = super::start_own_run(&engine.store, started, plans, flags).await?;
    j.append(Event::RunFinished {
        outcome: Outcome::Refused,
        summary: json!({ "reason": reason }),
    })
    .await?;
    Ok(run_id)
}
