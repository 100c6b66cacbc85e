//! Step kinds: one file per kind, each reading cloud state before acting.
//!
//! Every step is idempotent: it first reads the resource (is the replica
//! already a primary? is the group already at capacity? does the record already
//! point at the target?) and acts only when needed, so any step can be run
//! again after a crash. Steps never share mutable state: a step publishes
//! outputs (JSON) that the engine journals, and later steps read them from
//! [`Cx::outputs`], which on resume is rebuilt from the journal.
//!
//! Each step also has a *preview*: the API calls it would make and each
//! resource's current → desired state, which is what `--dry-run` prints.

mod check;
mod evidence;
mod preflight;
mod promote;
mod reprotect;
mod restore;
mod scale;
mod switch_dns;
mod verify_dns;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::cloud::{CloudError, Clouds};
use crate::graph::{Step, StepKind};
use crate::journal::store::JournalStore;
use crate::plan::Plan;

/// What a step may look at.
pub struct Cx<'a> {
    /// Cloud adapters.
    pub clouds: &'a Clouds,
    /// The plan the step belongs to.
    pub plan: &'a Plan,
    /// Target region.
    pub target: &'a str,
    /// Run id.
    pub run_id: &'a str,
    /// Outputs of finished steps, by step id.
    pub outputs: &'a BTreeMap<String, Value>,
    /// Give up waiting at this instant.
    pub deadline: Instant,
    /// Polling interval bounds while waiting.
    pub poll: (Duration, Duration),
    /// Journal store (the evidence step copies the journal).
    pub journal: Arc<dyn JournalStore>,
    /// The window replica lag is read over.
    pub lag_window: Duration,
    /// Told what the step waits for, when it starts waiting (the live view).
    pub waiting: Option<&'a (dyn Fn(&str) + Send + Sync)>,
    /// What the run's other regions looked like, read beside the run (see
    /// [`crate::engine::side`]); `None` in a dry run.
    pub side: Option<SideReads>,
}

/// Reads of the regions a run moves away from, made once and bounded, beside
/// the run: a JSON object per plan name. Shared, so that any step can await
/// it without making the reads twice.
pub type SideReads = futures::future::Shared<futures::future::BoxFuture<'static, Value>>;

/// What an evidence step's outputs say it could not store, one sentence per
/// destination (nothing for other steps' outputs).
pub fn evidence_gaps(step: &str, outputs: &Value) -> Vec<String> {
    evidence::Evidence::gaps(step, outputs)
}

/// Whether a step's journaled outputs leave nothing to do. A step that
/// succeeded but is not settled (evidence that some destination did not take)
/// ends the run "succeeded, evidence incomplete", and a resume runs it again.
pub fn settled(step: &Step, outputs: &Value) -> bool {
    match step.kind {
        StepKind::Evidence => evidence::Evidence::settled(outputs),
        _ => true,
    }
}

impl Cx<'_> {
    /// The outputs of this plan's step `local_id` (e.g. `promote:payments-db`).
    pub fn output(&self, local_id: &str) -> Option<&Value> {
        self.outputs
            .get(&format!("{}/{local_id}", self.plan.name()))
    }
}

/// Why a step failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepFailure {
    /// A cloud call failed (after retries, when transient).
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// Waiting ran out of time.
    #[error(
        "timed out after {} waiting for {what}\n  hint: a step may wait for what is left of the tier's RTO budget (at least a quarter of the RTO), or --step-timeout; check the resource in the console, then resume the run", crate::plan::duration::format_duration(*waited)
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
    },
    /// The world is not in a state the step can work from.
    #[error("{message}\n  hint: {hint}")]
    State {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: String,
        /// Resource.
        resource: String,
        /// Region.
        region: String,
    },
}

impl StepFailure {
    /// A state failure.
    pub fn state(
        message: impl Into<String>,
        hint: impl Into<String>,
        resource: &str,
        region: &str,
    ) -> Self {
        Self::State {
            message: message.into(),
            hint: hint.into(),
            resource: resource.to_string(),
            region: region.to_string(),
        }
    }

    /// The journal's serializable form.
    pub fn to_record(&self) -> crate::journal::event::StepError {
        let (kind, transient, resource, region) = match self {
            Self::Cloud(e) => (
                format!("{:?}", e.kind).to_lowercase(),
                e.is_transient(),
                Some(e.resource.clone()),
                Some(e.region.clone()),
            ),
            Self::Timeout { .. } => ("timeout".to_string(), true, None, None),
            Self::State {
                resource, region, ..
            } => (
                "state".to_string(),
                false,
                Some(resource.clone()),
                Some(region.clone()),
            ),
        };
        crate::journal::event::StepError {
            message: self.to_string(),
            kind,
            transient,
            resource,
            region,
        }
    }
}

/// One API call a step would make, and the state it would change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Planned {
    /// `service:Operation`, e.g. `rds:PromoteReadReplica`; empty when nothing is to be done.
    pub call: String,
    /// Resource.
    pub resource: String,
    /// Region (`global` for Route 53).
    pub region: String,
    /// Current state, as read now.
    pub current: String,
    /// Desired state.
    pub desired: String,
    /// Whether a change is needed (false: already in the desired state).
    pub change: bool,
}

/// A step's behaviour.
#[async_trait]
pub trait Action: Send + Sync {
    /// Reads state and describes what `run` would do, without changing anything.
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure>;
    /// Brings the world to the step's desired state; returns outputs to journal.
    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure>;
}

/// The action for a compiled step.
pub fn action_for(step: &Step) -> Box<dyn Action> {
    match &step.kind {
        StepKind::Preflight => Box::new(preflight::Preflight),
        StepKind::Scale { .. } => Box::new(scale::Scale {
            resource: step.resources[0].clone(),
        }),
        StepKind::Promote { .. } => Box::new(promote::Promote {
            resource: step.resources[0].clone(),
        }),
        StepKind::Restore { to_time, .. } => Box::new(restore::Restore {
            resource: step.resources[0].clone(),
            to_time: *to_time,
        }),
        StepKind::Reprotect { region, .. } => Box::new(reprotect::Reprotect {
            resource: step.resources[0].clone(),
            region: region.clone(),
        }),
        StepKind::Check { .. } => Box::new(check::Check {
            resource: step.resources[0].clone(),
        }),
        StepKind::SwitchDns { zone, .. } => Box::new(switch_dns::SwitchDns { zone: zone.clone() }),
        StepKind::VerifyDns { zone } => Box::new(verify_dns::VerifyDns { zone: zone.clone() }),
        StepKind::Evidence => Box::new(evidence::Evidence),
    }
}

/// Polls `probe` with growing intervals until it yields `Some`, or the
/// deadline passes (then [`StepFailure::Timeout`] naming `what`).
pub async fn wait_for<T, F, Fut>(cx: &Cx<'_>, what: &str, mut probe: F) -> Result<T, StepFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, StepFailure>>,
{
    let started = Instant::now();
    let mut delay = cx.poll.0;
    let mut told = false;
    loop {
        if let Some(v) = probe().await? {
            return Ok(v);
        }
        if !told {
            told = true;
            if let Some(tell) = cx.waiting {
                tell(what);
            }
        }
        let now = Instant::now();
        if now >= cx.deadline {
            return Err(StepFailure::Timeout {
                what: what.to_string(),
                waited: now - started,
            });
        }
        tracing::info!(
            waiting_for = what,
            delay_ms = delay.as_millis() as u64,
            "waiting"
        );
        tokio::time::sleep(delay.min(cx.deadline - now)).await;
        delay = (delay * 2).min(cx.poll.1);
    }
}
