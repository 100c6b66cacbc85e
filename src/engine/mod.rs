//! The failover engine: gates, a bounded concurrent executor, the journal,
//! resume, and measurement.
//!
//! Semantics (see `docs/failover.md`):
//! * a step starts the moment its dependencies finish, at most `parallelism`
//!   at once, critical-tier plans first when the bound bites;
//! * every event is journaled (and fsynced) *before* the step it announces
//!   starts, so a crash at any point leaves a journal that `resume` can replay;
//! * on a failed step no new step starts, running ones finish, and the run
//!   prints what is done, what is not, and the exact resume command;
//! * gates (lock, approval, RPO) run before anything changes, and their
//!   decisions, including the replica lag, are journaled either way.
//!
//! This module holds the engine's face (its collaborators, errors, the dry
//! run) and [`Engine::run`], which reads as the run's phases in order:
//! prepare, `lock`, journal the start, [`gates`], then `executor`. A
//! crashed run continues through `resume`; a shadow drill ends through
//! `drill` whatever stops it; `options` holds what a run is asked to do, and
//! `preview` the dry run and the preview gate (a run held to an approved
//! preview's hash).

mod drill;
mod executor;
pub mod gates;
mod lock;
mod options;
mod preview;
mod resume;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use crate::cloud::Clouds;
use crate::journal::event::{Event, Outcome, PlanRef, StepRef};
use crate::journal::store::JournalStore;
use crate::journal::{self, Journal, JournalError};
use crate::plan::Plan;
use crate::runs::RunReport;
use crate::state::lock::{LockError, LockInfo};
use crate::state::{LockSet, LockStore};
use crate::steps::StepFailure;
use crate::steps::graph::{self, Step};

pub use crate::steps::graph::RunMode;
pub use drill::CLEANUP_BUDGET;
pub use executor::{LATE_STEP_BUDGET_DIVISOR, step_budget};
pub use options::{CrashPoint, Pace, RETROACTIVE_APPROVAL, RunOptions};
pub use preview::{
    ApprovedPreview, PREVIEW_DOCUMENT, PREVIEW_SCHEMA, PREVIEW_VALID_FOR, PreviewApproval,
    PreviewContext, PreviewGate, PreviewId, PreviewRow, hash as preview_hash,
    identify as preview_identity, is_hash as is_preview_hash,
};

use executor::RunCx;
use lock::{end_locks, release_all};

/// Receives progress events (the live view or plain lines).
pub trait Reporter: Send + Sync {
    /// A step started.
    fn started(&self, step: &Step);
    /// A step finished (`Err` = failed).
    fn finished(&self, step: &Step, result: Result<&Value, &StepFailure>, elapsed: Duration);
    /// A free-form note (gate decisions, lock takeovers).
    fn note(&self, text: &str);
    /// A running step started waiting for something (`what`: "payments-db-use1
    /// (us-east-1) to become the primary, available"). Called once per wait.
    fn waiting(&self, step: &Step, what: &str) {
        let _ = (step, what);
    }
}

/// Asks the operator to confirm (on a terminal); `None` when there is no terminal.
pub type Confirm = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The engine's collaborators.
#[derive(Clone)]
pub struct Engine {
    /// Cloud adapters.
    pub clouds: Clouds,
    /// The same adapters making one attempt per call (no retries), for the
    /// optional, bounded reads of regions that may be down ([`crate::steps::side`]).
    pub side_clouds: Clouds,
    /// Journal store.
    pub store: Arc<dyn JournalStore>,
    /// Plan locks (lock files, or leases on shared state).
    pub locks: Arc<dyn LockStore>,
    /// Progress sink.
    pub reporter: Arc<dyn Reporter>,
    /// Interactive confirmation, when on a terminal.
    pub confirm: Option<Confirm>,
    /// Notifications (`None`: nobody is told; nothing is journaled).
    pub notify: Option<Arc<crate::notify::Hub>>,
    /// The waits of the budgeted clouds (`clouds` wrapped by
    /// [`crate::cloud::metered::Metered::wrap_with_budgets`]), journaled
    /// per step; `None`: the clouds are not budgeted.
    pub waits: Option<crate::cloud::metered::Waits>,
    /// What a drill journals before its steps act: each plan's inventory
    /// as `status` reads it (`None`: nothing is journaled, and the plan
    /// cannot become verified by this drill; [`InventoryReader`]).
    pub inventory: Option<Arc<dyn InventoryReader>>,
}

/// Reads each plan's inventory now (`crate::status::verified`, which sits
/// above the engine and is handed in by the composition root): the facts
/// a drill proves a recovery of, compared by `status` later.
#[async_trait::async_trait]
pub trait InventoryReader: Send + Sync {
    /// Each plan's inventory, by plan name (bounded reads; a plan whose
    /// reads failed has facts that say so, never silence).
    async fn inventories(&self, clouds: &Clouds, plans: &[Plan]) -> Inventories;
}

/// Who and where a run is, from its start: its id (the caller's, else a
/// new one named after its plan, or `all`), this host and process.
fn me(plans: &[Plan], opts: &RunOptions) -> LockInfo {
    let label = match plans {
        [one] => one.name().to_string(),
        _ => "all".into(),
    };
    LockInfo::current(&(opts.run_id.clone()).unwrap_or_else(|| journal::new_run_id(&label)))
}

/// Each plan's inventory, by plan name.
pub type Inventories = BTreeMap<String, BTreeMap<String, String>>;

/// Journals each plan's inventory before the run's steps act: what a
/// drill proves a recovery of (`status` compares it later), or the
/// definition a failover or failback acted on (see `read_inventory`).
async fn journal_inventory(
    plans: &[Plan],
    mut read: Inventories,
    j: &mut Journal,
) -> Result<(), EngineError> {
    for p in plans {
        if let Some(items) = read.remove(p.name()) {
            j.append(Event::Inventory {
                plan: p.name().to_string(),
                items,
            })
            .await?;
        }
    }
    Ok(())
}

/// The longest a drill waits for its plans' inventory before it goes on
/// without it (the plans then cannot become verified by this drill).
pub const INVENTORY_BUDGET: Duration = Duration::from_secs(30);

/// Why a run did not complete normally.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A gate refused (exit 3).
    #[error("{0}")]
    Refused(Refusal),
    /// Invalid request (exit 2).
    #[error("{0}")]
    Invalid(Refusal),
    /// The journal failed (exit 1): nothing more is done without a journal.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The lock store failed.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The run stopped at an injected crash point (exit 1): its journal ends
    /// there and its locks stay taken, as after a crash.
    #[error(
        "stopped at the injected crash point {0}: the journal ends there, as after a crash; resume with `drctl runs resume {1}`"
    )]
    Crashed(CrashPoint, String),
}

/// Why the engine will not do what was asked: what is wrong, and what to
/// do about it, as fields. The CLI renders the two apart (`error:` and
/// `hint:` lines); its `Display` is the text journals have always held for
/// a refusal (`message`, then `\n  hint: ` and the hint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Refusal {
    /// A refusal without a hint.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    /// With what to do about it.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What is wrong, in one line (no hint, no detail).
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }

    /// Whether the text (message and hint) says `pat`.
    pub fn contains(&self, pat: &str) -> bool {
        self.to_string().contains(pat)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.hint {
            Some(h) => write!(f, "{}\n  hint: {h}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A refusal from text as journals hold it (`message\n  hint: hint`).
impl From<&str> for Refusal {
    fn from(text: &str) -> Self {
        match text.split_once("\n  hint: ") {
            Some((m, h)) => Self::new(m).hint(h),
            None => Self::new(text),
        }
    }
}

impl From<String> for Refusal {
    fn from(text: String) -> Self {
        Self::from(text.as_str())
    }
}

/// The refusal of a journal error, its hint apart.
fn unkeyed(e: &JournalError) -> Refusal {
    match e.hint() {
        Some(h) => Refusal::new(e.to_string()).hint(h),
        None => Refusal::new(e.to_string()),
    }
}

/// Compiles every plan's graph into one (step ids are prefixed by plan).
pub fn compile_all(plans: &[Plan], target: &str, mode: &RunMode) -> Result<Vec<Step>, EngineError> {
    let mut all: Vec<Step> = Vec::new();
    for p in plans {
        let g = graph::compile_mode(p, target, mode)
            .map_err(|e| EngineError::Invalid(e.to_string().into()))?;
        let offset = all.len();
        all.extend(g.steps.into_iter().map(|mut s| {
            s.deps.iter_mut().for_each(|d| *d += offset);
            s
        }));
    }
    Ok(all)
}

/// Who runs this, for the journal and the approval record.
struct Operator {
    /// The caller's identity (an ARN), when it could be read.
    arn: Option<String>,
    /// Why it could not be, when it could not.
    identity_error: Option<String>,
}

/// Refuses a drill inside a plan's `[drill] blackout` window (unless
/// `--ignore-blackout`).
fn refuse_in_blackout(plans: &[Plan], opts: &RunOptions) -> Result<(), EngineError> {
    if !matches!(opts.mode, RunMode::Drill { .. }) || opts.ignore_blackout {
        return Ok(());
    }
    let now = Utc::now();
    if let Some((plan, why)) = plans.iter().find_map(|p| {
        let why = p.spec.drill.as_ref()?.blackout_at(now)?;
        Some((p.name(), why))
    }) {
        return Err(EngineError::Refused(
            Refusal::new(format!("plan {plan} is in a {why}: no drill starts now"))
                .hint("wait for the window to close, or pass --ignore-blackout"),
        ));
    }
    Ok(())
}

/// The journal's view of the step graph: ids and dependencies by id (what
/// a resume must compile again).
fn step_refs(steps: &[Step]) -> Vec<StepRef> {
    steps
        .iter()
        .map(|s| StepRef {
            id: (&s.id).into(),
            deps: s.deps.iter().map(|d| (&steps[*d].id).into()).collect(),
            description: s.description.clone(),
        })
        .collect()
}

impl Engine {
    /// Runs a failover (or failback) of `plans` to `opts.target`: prepare
    /// (blackout, graph, run id), lock, journal the start, pass the gates,
    /// execute.
    pub async fn run(&self, plans: &[Plan], opts: &RunOptions) -> Result<RunReport, EngineError> {
        if opts.dry_run {
            return Err(EngineError::Invalid(
                "a dry run changes nothing: call Engine::preview, not Engine::run".into(),
            ));
        }
        let steps = compile_all(plans, &opts.target, &opts.mode)?;
        refuse_in_blackout(plans, opts)?;
        let me = me(plans, opts);
        // A run that could not sign its journal where keys are listed
        // would leave one nobody can verify: refused before any lock or
        // cloud read.
        self.may_write(&me.run_id)?;
        // A drill's inventory is read before its clock starts: the read is
        // not part of the recovery the drill measures.
        let inventory = self.read_inventory(plans, opts).await;
        // A takeover acts before the preview gate: it must be approved
        // before it happens.
        preview::takeover_approved(opts, plans, &self.store.keys().domain)
            .map_err(EngineError::Refused)?;
        // Locks first: two runs must never both pass the gates.
        let (locks, taken_over) = self.lock_run(plans, opts, &me).await?;
        let operator = self.operator(&opts.target).await;
        let mut j = match Journal::create(self.store.clone(), &me.run_id).await {
            Ok(j) => j,
            Err(e) => {
                release_all(&locks).await;
                return Err(e.into());
            }
        };
        // A drill is fenced on local state too: a failover may preempt it.
        if self.locks.fenced() || opts.mode.is_shadow_drill() {
            j.set_fence(Arc::new(LockSet(locks.clone())));
        }
        self.attach_outbox(&mut j, plans, &opts.target);
        self.journal_start(plans, opts, &steps, &mut j, &me, &operator)
            .await?;
        self.journal_takeovers(&mut j, &taken_over, opts.force_reason.as_deref())
            .await?;
        let (rpo_readings, zones_read, refusal) =
            (self.journal_gates(plans, opts, &mut j, &operator)).await?;
        if let Some(r) = refusal {
            j.append(Event::RunFinished {
                outcome: Outcome::Refused,
                summary: json!({"reason": r.to_string()}),
            })
            .await?;
            release_all(&locks).await;
            let note = format!("\n  (run {} journaled the decision)", me.run_id);
            let refused = match r.hint {
                Some(h) => Refusal::new(r.message).hint(format!("{h}{note}")),
                None => Refusal::new(format!("{}{note}", r.message)),
            };
            return Err(EngineError::Refused(refused));
        }
        if let Some(read) = inventory {
            journal_inventory(plans, read, &mut j).await?;
        }
        let report = self
            .execute(RunCx {
                plans,
                opts,
                steps: &steps,
                journal: j,
                outputs: BTreeMap::new(),
                attempts: BTreeMap::new(),
                clock_start: opts.declared_at.unwrap_or(me.started),
                rpo_readings: &rpo_readings,
                zones_read: &zones_read,
                locks: &locks,
            })
            .await;
        end_locks(&locks, &report).await;
        report
    }

    /// Refuses to write run `run_id`'s journal without the run key where
    /// public run keys are listed (invalid: a configuration to fix, exit 2).
    fn may_write(&self, run_id: &str) -> Result<(), EngineError> {
        self.store
            .keys()
            .may_write(run_id)
            .map_err(|e| EngineError::Invalid(unkeyed(&e)))
    }

    /// Installs the run's notifier on its journal, when sinks are
    /// configured; returns it.
    fn attach_outbox(
        &self,
        j: &mut Journal,
        plans: &[Plan],
        target: &str,
    ) -> Option<Arc<crate::notify::Notifier>> {
        let n = (self.notify.as_ref()?).notifier(&self.store, j.run_id(), plans, target)?;
        j.set_outbox(n.clone());
        Some(n)
    }

    /// Who runs this, for the journal and the approval record. Without it
    /// the run goes on (STS may be what is failing), and every approval
    /// says why its identity is missing.
    async fn operator(&self, target: &str) -> Operator {
        match self.clouds.identity.caller(target).await {
            Ok(id) => Operator {
                arn: Some(id.arn),
                identity_error: None,
            },
            Err(e) => {
                tracing::warn!("cannot read the operator identity (STS GetCallerIdentity): {e}");
                self.reporter.note(&format!(
                    "operator identity unknown (STS GetCallerIdentity failed: {}); approvals are recorded without it",
                    e.summary()
                ));
                Operator {
                    arn: None,
                    identity_error: Some(e.to_string()),
                }
            }
        }
    }

    /// What the run journals of its plans before its steps act. A drill:
    /// each plan's inventory as read now (`None`: no reader, or the read
    /// did not end within [`INVENTORY_BUDGET`], said on the progress sink;
    /// the drill goes on without it). A failover or failback: each plan's
    /// definition, from the plan alone (no cloud read on the recovery
    /// path), from which the report judges whether the plan was verified
    /// when the run began. Other runs: nothing.
    async fn read_inventory(&self, plans: &[Plan], opts: &RunOptions) -> Option<Inventories> {
        use journal::event::RunKind;
        match opts.kind {
            RunKind::Drill => {}
            RunKind::Failover | RunKind::Failback => {
                let own = |p: &Plan| (p.name().to_string(), crate::runs::verified::definition(p));
                return Some(plans.iter().map(own).collect());
            }
            _ => return None,
        }
        let reader = self.inventory.as_ref()?;
        let read = reader.inventories(&self.clouds, plans);
        match tokio::time::timeout(INVENTORY_BUDGET, read).await {
            Ok(read) => Some(read),
            Err(_) => {
                self.reporter.note(&format!(
                    "the plans' inventory did not read within {}s: this drill cannot make them verified",
                    INVENTORY_BUDGET.as_secs()
                ));
                None
            }
        }
    }

    /// Journals the run's start: who runs it and where, the flags that
    /// shaped it, its step graph, and the nonce its evidence carries.
    async fn journal_start(
        &self,
        plans: &[Plan],
        opts: &RunOptions,
        steps: &[Step],
        j: &mut Journal,
        me: &LockInfo,
        operator: &Operator,
    ) -> Result<(), EngineError> {
        j.append(Event::RunStarted {
            run_id: me.run_id.clone(),
            kind: opts.kind,
            target: opts.target.clone(),
            plans: plans.iter().map(PlanRef::of).collect(),
            operator: operator.arn.clone(),
            host: me.host.clone(),
            pid: me.pid,
            flags: json!(opts.journaled_flags(plans)),
            declared_at: opts.declared_at,
            steps: step_refs(steps),
            nonce: Some(journal::new_nonce()),
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod drill_gcp_tests;
#[cfg(test)]
mod drill_global_tests;
#[cfg(test)]
mod drill_tests;
#[cfg(test)]
mod fault_loop;
#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod protection_tests;
#[cfg(test)]
mod target_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trust_tests;
