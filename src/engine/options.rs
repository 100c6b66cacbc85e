//! What a run is asked to do: the options the CLI builds from its flags,
//! and the fault-injection points.
//!
//! Kept apart from the engine's logic because every entry point (failover,
//! drill, schedule, resume) builds a [`RunOptions`] and none of them needs
//! to see how a run executes.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::journal::RunFlags;
use crate::journal::event::RunKind;
use crate::plan::Plan;
use crate::steps::graph::RunMode;
use crate::steps::side;

/// How long an emergency run has to be approved retroactively.
pub const RETROACTIVE_APPROVAL: Duration = Duration::from_secs(4 * 3600);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What kind of run (journaled, shown).
    pub kind: RunKind,
    /// The graph to run.
    pub mode: RunMode,
    /// Target region.
    pub target: String,
    /// Bound on concurrently running steps; 0: none of the engine's own
    /// (see [`RunOptions::slots`]).
    pub parallelism: usize,
    /// Show, change nothing.
    pub dry_run: bool,
    /// Data loss the operator accepts (covers lag above RPO, or unknown lag).
    pub accept_data_loss: Option<Duration>,
    /// When the disaster was declared (RTO is measured from here).
    pub declared_at: Option<DateTime<Utc>>,
    /// `--approve` with its reason.
    pub approve: Option<String>,
    /// Skip approval; record a deadline for retroactive approval.
    pub emergency: bool,
    /// Take over a lock whose holder is dead (or, with
    /// [`RunOptions::force_reason`], a live shared lease).
    pub force_unlock: bool,
    /// Why a live lease is taken over (`--force-unlock REASON`).
    pub force_reason: Option<String>,
    /// Window replica lag is read over.
    pub lag_window: Duration,
    /// How often the run looks again at what it waits for: polls, and a
    /// Route 53 zone still busy with an earlier change.
    pub pace: Pace,
    /// Per-step time limit; `None` = the tier's RTO.
    pub step_timeout: Option<Duration>,
    /// Bound on each optional read of a region the run moves away from.
    pub side_read_timeout: Duration,
    /// Fault injection (as in saga engines): stop the executor at a point
    /// as a crash would, to prove that resume works from there. Journaled in
    /// the run's flags. See [`CrashPoint`].
    pub inject_crash: Option<CrashPoint>,
    /// A drill's longest run before it aborts into cleanup (`None`: the
    /// tier's default, [`crate::steps::drill_names::default_max_duration`]).
    pub max_duration: Option<Duration>,
    /// Notified to stop a drill's steps and clean up (Ctrl-C, SIGTERM).
    pub interrupt: Option<Arc<tokio::sync::Notify>>,
    /// The schedule slot a scheduled drill runs for: part of the run's
    /// identity (journaled); a slot another run took is refused under the
    /// plan's lock, so a slot runs at most once.
    pub slot: Option<DateTime<Utc>>,
    /// Drill even inside a plan's `[drill] blackout` window.
    pub ignore_blackout: bool,
    /// Set when `drctl watch` starts the run: the decision it came from
    /// (journaled in the run's flags; reports start the RTO waterfall at
    /// its first failed observation).
    pub watch: Option<crate::journal::watch::WatchOrigin>,
    /// The run's id, when the caller chose it (`drctl watch` journals it
    /// with its decision before the run starts); else a new one.
    pub run_id: Option<String>,
    /// Run only as this approved preview (`--approve-preview HASH`): a
    /// fresh preview under the run's locks must have its hash, or the run
    /// is refused (the preview gate, `engine::preview`).
    pub approved_preview: Option<super::ApprovedPreview>,
}

/// Where to stop a run as a crash would (fault injection for crash/resume
/// tests and game days): `before:STEP` stops once the step's start is
/// journaled, before it acts; `after:STEP` once its success is journaled.
/// The executor stops there: steps in flight are dropped, nothing more is
/// journaled, and the plan locks stay taken, exactly what a dead process
/// leaves. Passed explicitly (`RunOptions::inject_crash`, the hidden
/// `--inject-crash` flag), never read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashPoint {
    /// Stop once the step's start is journaled, before it acts.
    Before(String),
    /// Stop once the step's success is journaled.
    After(String),
}

impl std::fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Before(s) => write!(f, "before:{s}"),
            Self::After(s) => write!(f, "after:{s}"),
        }
    }
}

impl CrashPoint {
    /// Parses `before:STEP` or `after:STEP`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            Some(("before", step)) => Some(Self::Before(step.to_string())),
            Some(("after", step)) => Some(Self::After(step.to_string())),
            _ => None,
        }
    }
}

/// How often a run looks again at what it waits for (`[pace]` in
/// `drctl.toml`).
///
/// The defaults suit AWS. They are settings, not constants, because the
/// right pace is the world's: a team with many zones may poll less often to
/// spare its Route 53 budget, and a game day against a time-compressed world
/// (the emulators behind the fault proxy's model at 1/60) must poll that
/// much faster, or its figures would measure drctl's polling, not the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Poll interval bounds while waiting: the first, doubled up to the longest.
    pub poll: (Duration, Duration),
    /// Waits on a zone still busy with an earlier change: the first,
    /// doubled up to the longest.
    pub busy_zone: (Duration, Duration),
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            poll: (Duration::from_millis(200), Duration::from_secs(10)),
            busy_zone: crate::cloud::dns_batch::BUSY_ZONE_WAITS,
        }
    }
}

impl RunOptions {
    /// These options at `pace`.
    pub fn with_pace(self, pace: &Pace) -> Self {
        Self {
            pace: *pace,
            ..self
        }
    }

    /// How many steps (and gate reads) may run at once: `parallelism`, or
    /// no bound of the engine's own when it is 0 (the API budgets then
    /// hold the calls).
    pub fn slots(&self) -> usize {
        match self.parallelism {
            0 => usize::MAX,
            n => n,
        }
    }

    /// Defaults for a failover to `target`.
    pub fn failover(target: &str) -> Self {
        Self {
            kind: RunKind::Failover,
            mode: RunMode::Failover { planned: false },
            target: target.into(),
            parallelism: 8,
            dry_run: false,
            accept_data_loss: None,
            declared_at: None,
            approve: None,
            emergency: false,
            force_unlock: false,
            force_reason: None,
            lag_window: Duration::from_secs(15 * 60),
            pace: Pace::default(),
            step_timeout: None,
            side_read_timeout: side::SIDE_READ_TIMEOUT,
            inject_crash: None,
            max_duration: None,
            interrupt: None,
            slot: None,
            ignore_blackout: false,
            watch: None,
            run_id: None,
            approved_preview: None,
        }
    }

    /// The flags that shaped the run, as its `run_started` record keeps
    /// them (a resume reads its mode, parallelism and step timeout back).
    pub(super) fn journaled_flags(&self, plans: &[Plan]) -> RunFlags {
        RunFlags {
            parallelism: Some(self.parallelism),
            mode: Some(self.mode.clone()),
            accept_data_loss_seconds: self.accept_data_loss.map(|d| d.as_secs()),
            approve: self.approve.clone(),
            emergency: self.emergency,
            force_unlock: self.force_unlock,
            force_unlock_reason: self.force_reason.clone(),
            lag_window_seconds: Some(self.lag_window.as_secs()),
            step_timeout_seconds: self.step_timeout.map(|d| d.as_secs()),
            inject_crash: self.inject_crash.as_ref().map(ToString::to_string),
            max_duration_seconds: self.max_duration.map(|d| d.as_secs()),
            schedule_slot: self.slot,
            not_drilled: self
                .mode
                .is_shadow_drill()
                .then(|| crate::runs::drill::not_drilled(plans)),
            watch: self.watch.clone(),
        }
    }
}
