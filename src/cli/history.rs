//! The drill history as commands read it: each plan's cadence from the
//! journals of the settings' state, and the plans' targets the journals
//! are measured against. Apart from the commands that show it (`status`,
//! `schedule`, `runs`, a failover's preview), so none of them imports
//! another for it.

use std::collections::BTreeMap;

use super::CliError;
use drctl::config::Settings;
use drctl::runs::schedule::{self, Cadence};

/// Each plan's RTO and RPO targets in seconds, by plan name, from every
/// plan file of the settings (the journals' runs are measured against them).
pub fn targets(settings: &Settings) -> BTreeMap<String, (u64, u64)> {
    let loaded =
        drctl::plan::load_with(std::slice::from_ref(&settings.plans), &settings.sink_rules);
    drctl::runs::measure::targets(&loaded.plans)
}

/// Each plan's drill cadence now, from the journals of the settings' state
/// (reached through `via`, with `clouds` when the caller has them).
pub async fn cadence(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    via: Option<&str>,
    clouds: Option<&drctl::cloud::Clouds>,
) -> Result<Vec<Cadence>, CliError> {
    cadence_at(settings, plans, (via, clouds), chrono::Utc::now()).await
}

/// Each plan's drill cadence as it was at `at`, from the drills that
/// started before it (what a run that began at `at` was judged by).
pub async fn cadence_at(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    (via, clouds): (Option<&str>, Option<&drctl::cloud::Clouds>),
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Cadence>, CliError> {
    let state = super::open_state(settings, via, clouds).await?;
    let targets = targets(settings);
    let mut drills = Vec::new();
    let read = super::read_runs(state.journals.as_ref()).await?;
    for (id, records) in read.runs {
        if schedule::usable(&records) {
            drills.extend(schedule::drill_runs(
                &id,
                &records,
                read.authenticated,
                &targets,
            ));
        }
    }
    drills.retain(|d| d.started < at);
    Ok(schedule::cadence(plans, &drills, at))
}
