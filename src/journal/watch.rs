//! What `drctl watch` journals: its observations as they change, the
//! quorum as it forms and dissolves, and each decision with its reasons
//! (docs/watch.md).
//!
//! A watcher's journal is a journal like a run's (hash-chained, in the
//! shared state under `watch/`), one per observer process, so that an
//! automatic failover can be audited afterwards: which observers saw the
//! region fail and when, when the quorum formed, why the target was judged
//! fit, who vetoed. Only changes are journaled (a steady healthy region
//! writes nothing), so a watcher that runs for months keeps a small
//! journal. A run that watch starts carries a [`WatchOrigin`] in its flags:
//! that is how a report's RTO waterfall starts at the first bad
//! observation instead of at the run's start.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One fact a watcher journals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum WatchFact {
    /// An observer began watching.
    Began {
        /// The plans it watches.
        plans: Vec<String>,
        /// Where it runs.
        host: String,
    },
    /// This observer's view of a region changed: it began failing, it
    /// reached the failure threshold, or it answered again.
    Observed {
        /// The region.
        region: String,
        /// Whether the observation passed.
        ok: bool,
        /// Failed observations in a row (0 when `ok`).
        failures: u32,
        /// What failed (or "healthy").
        detail: String,
    },
    /// Whether observers agree that a region is down changed.
    Quorum {
        /// The region.
        region: String,
        /// Observers that judge it down (fresh, not impaired, `failures` in a row).
        down: Vec<String>,
        /// Fresh observers that do not.
        up: Vec<String>,
        /// Observers left out: stale, impaired or unsigned, with why.
        ignored: Vec<String>,
        /// Votes required.
        quorum: u32,
        /// Whether the quorum is reached.
        reached: bool,
    },
    /// What watch decided for the plan (journaled when it changes).
    Decided {
        /// The outage episode (the plan's active region and the run that
        /// made it active): one proposal, one veto, one failover per episode.
        episode: String,
        /// The decision.
        decision: WatchDecision,
        /// Why, in a sentence.
        why: String,
        /// The region judged down.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// The failover's target, when one was chosen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// The exact command a person would run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        /// Propose mode: when the failover starts unless vetoed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<DateTime<Utc>>,
        /// The first failed observation of the episode (detection).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detected_at: Option<DateTime<Utc>>,
        /// The run watch started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
}

impl WatchFact {
    /// The fact in a line, for people (`runs show` of a watcher's journal).
    pub fn summary(&self) -> String {
        match self {
            Self::Began { plans, host } => {
                format!("began on {host}, watching {}", plans.join(", "))
            }
            Self::Observed {
                region,
                ok,
                failures,
                detail,
            } => {
                if *ok {
                    format!("{region} answers: {detail}")
                } else {
                    format!("{region} failed ({failures} in a row): {detail}")
                }
            }
            Self::Quorum {
                region,
                down,
                quorum,
                reached,
                ..
            } => format!(
                "{region}: {} of {quorum} needed judge it down{}",
                down.len(),
                if *reached { " (quorum reached)" } else { "" }
            ),
            Self::Decided {
                decision,
                why,
                run_id,
                ..
            } => format!(
                "{decision}: {why}{}",
                run_id
                    .as_ref()
                    .map(|r| format!(" (run {r})"))
                    .unwrap_or_default()
            ),
        }
    }
}

super::vocabulary::vocabulary! {
    /// What watch decided for a plan.
    WatchDecision {
        /// The active region answers.
        Healthy = "healthy",
        /// Some observer sees it failing; no quorum.
        Suspect = "suspect",
        /// Down by quorum; observe mode: people are told, nothing starts.
        RegionDown = "region_down",
        /// Down by quorum; a failover is proposed and starts after the veto window.
        Proposed = "proposed",
        /// Someone vetoed the episode's failover.
        Vetoed = "vetoed",
        /// Watch started the failover.
        Started = "started",
        /// The failover watch started did not run (the engine refused it,
        /// or it could not begin): a person decides.
        StartFailed = "start_failed",
        /// Down by quorum, but no standby is fit to take over.
        Unfit = "unfit",
        /// Down by quorum and fit, but the velocity cap is reached: proposed only.
        Capped = "capped",
        /// Another run holds the plan.
        Busy = "busy",
        /// Home has been healthy longer than the failover took: a failback is proposed (never started).
        FailbackProposed = "failback_proposed",
        /// Too few fresh observers to judge (the shared state, or the others, are out of reach).
        Blind = "blind",
    }
}

/// How a run came to be started by `drctl watch` (in its flags).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WatchOrigin {
    /// The observer that started it.
    pub observer: String,
    /// The watcher's journal, where the decision and its reasons are.
    pub journal: String,
    /// The outage episode.
    pub episode: String,
    /// The region judged down.
    pub region: String,
    /// `propose` or `auto`.
    pub mode: String,
    /// The first failed observation (the start of the RTO clock).
    pub detected_at: DateTime<Utc>,
    /// When the quorum of observers agreed.
    pub quorum_at: DateTime<Utc>,
    /// When the failover was decided (after the veto window, in propose mode).
    pub decided_at: DateTime<Utc>,
    /// The observers whose votes made the quorum.
    pub votes: Vec<String>,
}
