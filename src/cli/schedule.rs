//! `drctl schedule list`: each plan's drill cadence, from the journals.

use clap::Subcommand;

use super::{Exit, Output, load_plans};
use drctl::config::Settings;
use drctl::schedule::{self, Cadence};

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
}

/// Runs a `schedule` command.
pub async fn run(cmd: ScheduleCommand, settings: &Settings) -> anyhow::Result<Exit> {
    let ScheduleCommand::List { plan, output } = cmd;
    let loaded = match load_plans(settings, &[]) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let plans = match super::select(&loaded, plan.as_deref()) {
        Ok(p) => p.into_iter().cloned().collect::<Vec<_>>(),
        Err(code) => return Ok(code),
    };
    let rows = cadence(settings, &plans, None, None).await?;
    let overdue = rows.iter().any(|r| r.overdue);
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"plans": rows, "overdue": overdue}))?
        ),
        Output::Text => print!("{}", render(&rows)),
    }
    Ok(if overdue { Exit::Failed } else { Exit::Ok })
}

/// Each plan's drill cadence now, from the journals of the settings' state
/// (reached through `via`, with `clouds` when the caller has them).
pub async fn cadence(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    via: Option<&str>,
    clouds: Option<&drctl::cloud::Clouds>,
) -> anyhow::Result<Vec<Cadence>> {
    let state = super::open_state(settings, via, clouds).await?;
    let targets = super::runs::targets(settings);
    let mut drills = Vec::new();
    for (id, records) in super::runs::read_all(state.journals.as_ref()).await? {
        if schedule::usable(&records) {
            drills.extend(schedule::drill_runs(&id, &records, &targets));
        }
    }
    Ok(schedule::cadence(plans, &drills, chrono::Utc::now()))
}

fn render(rows: &[Cadence]) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    for r in rows {
        let last = match &r.last {
            None => "never drilled".to_string(),
            Some(d) => format!(
                "last drill {} {}",
                d.started.format("%Y-%m-%d %H:%MZ"),
                &d.verdict
            ),
        };
        let next = r
            .next_slot
            .map(|t| format!("next {}", t.format("%Y-%m-%d %H:%MZ")))
            .unwrap_or_else(|| "no schedule".into());
        let _ = writeln!(
            o,
            "{:<20} {:<10} {}  {last}  {next}",
            r.plan,
            r.tier,
            if r.overdue { "OVERDUE" } else { "ok     " }
        );
        if let Some(note) = &r.note {
            let _ = writeln!(o, "{:<20} {note}", "");
        }
    }
    o
}
