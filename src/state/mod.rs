//! Where runs and locks live: a local directory (the default) or a bucket
//! shared by a team (`s3://bucket/prefix`, `gs://bucket/prefix`).
//!
//! # Why shared state
//!
//! During an outage two on-call engineers on two laptops must never both
//! fail the same plan over; a run started on a laptop that then dies must be
//! resumable from another machine; a drill scheduler and a report built
//! elsewhere must see each other's runs. A directory on one machine can do
//! none of that, so the journal and the per-plan lock can live in an object
//! store that every machine reaches.
//!
//! # What the object store must do, and what drctl does not rely on
//!
//! Two primitives carry everything: *create-only* writes (S3
//! `If-None-Match: *`, GCS `ifGenerationMatch=0`) and *compare-and-swap* on
//! the version one read (S3 `If-Match: <etag>`, GCS
//! `ifGenerationMatch=<generation>`). Conditional deletes are not used:
//! neither emulator honours them and real stores differ. Some S3-compatible
//! stores silently ignore conditional headers, which would make every
//! guarantee here a lie, so [`open`] probes the bucket first and refuses one
//! that does not honour both ([`StateError::Unsafe`]).
//!
//! # Layout
//! * this file: [`StateLocation`] and [`open`] (with the store probe), and
//!   the [`LockStore`]/[`HeldLock`] traits the engine takes locks through;
//! * [`files`]: journals in a directory ([`FileStore`]); [`objects`]: the
//!   journal on an object store, one immutable object per record;
//! * [`lock`]: one run per plan on one machine, lock files ([`PlanLock`]);
//!   [`local`]: those lock files behind [`LockStore`];
//! * [`lease`]: plan locks on an object store, leases with fencing tokens,
//!   renewed in the background;
//! * [`board`]: small shared objects beside the journals, for `drctl watch`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cloud::{CloudError, ObjectStore, ObjectUrl, PutMode, PutOutcome, SwapOutcome};
use crate::journal::{Fence, JournalStore, RunKind};

pub mod board;
/// The wall clock, injectable (it stands on the cloud floor, where the
/// fake store keeps one too).
pub use crate::cloud::clock;
pub mod files;
pub mod lease;
pub mod local;
pub mod lock;
pub mod objects;

pub use files::FileStore;
pub use lock::{LockError, LockInfo, PlanLock, hostname};

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// A local directory: `<dir>/runs`, `<dir>/locks`.
    Dir(PathBuf),
    /// A bucket and prefix shared by a team.
    Bucket(ObjectUrl),
}

impl StateLocation {
    /// Parses `s3://bucket/prefix`, `gs://bucket/prefix`, or a directory path.
    pub fn parse(s: &str) -> Result<Self, StateError> {
        if s.starts_with("s3://") || s.starts_with("gs://") {
            let url =
                ObjectUrl::parse(s.trim_end_matches('/')).map_err(|e| StateError::Location {
                    location: s.to_string(),
                    detail: e.to_string(),
                })?;
            Ok(Self::Bucket(url))
        } else if s.contains("://") {
            Err(StateError::Location {
                location: s.to_string(),
                detail: "only s3:// and gs:// URLs, or a local directory".into(),
            })
        } else {
            Ok(Self::Dir(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "{}", d.display()),
            Self::Bucket(u) => write!(f, "{u}"),
        }
    }
}

/// How long a lease lasts and how much margin for clocks to leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// Lease length; renewed every third of it.
    pub length: Duration,
    /// Margin for clocks and delays between machines: a lease is taken over
    /// only `length + skew` after its last write by the store's clock, and
    /// its holder stops starting steps `skew` before `length` has passed
    /// since its last renewal by its own. A host whose clock is off the
    /// store's by more than this is warned.
    pub skew: Duration,
}

impl Default for LeaseTimes {
    fn default() -> Self {
        Self {
            length: Duration::from_secs(60),
            skew: Duration::from_secs(10),
        }
    }
}

/// The state could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The location does not parse.
    #[error("`{location}` is not a state location: {detail}")]
    Location {
        /// The input.
        location: String,
        /// Why.
        detail: String,
    },
    /// The bucket does not honour conditional writes.
    #[error("refusing the state bucket {location}: {detail}")]
    Unsafe {
        /// The bucket.
        location: String,
        /// What the probe saw.
        detail: String,
    },
    /// The store failed.
    #[error("cannot use the state bucket {location}: {}", source.summary())]
    Cloud {
        /// The bucket.
        location: String,
        /// Why.
        #[source]
        source: Box<CloudError>,
    },
}

impl StateError {
    /// What to do about it (the message is one line; the CLI renders the
    /// hint apart).
    pub fn hint(&self) -> String {
        match self {
            Self::Location { .. } => "use a directory, s3://bucket/prefix or gs://bucket/prefix (--state, DRCTL_STATE, `state` in drctl.toml)".into(),
            Self::Unsafe { .. } => "drctl's locks and journals need create-only writes and compare-and-swap (S3 If-None-Match/If-Match, GCS ifGenerationMatch); use AWS S3 or Google Cloud Storage, or a local --state directory".into(),
            Self::Cloud { source, .. } => source.hint().into(),
        }
    }
}

/// The state of one command: journals and locks.
#[derive(Clone)]
pub struct State {
    /// Where it lives.
    pub location: StateLocation,
    /// The journals.
    pub journals: Arc<dyn JournalStore>,
    /// Notices that belong to no run (a plan's overdue drill): journals of
    /// their own, beside the runs' (`notices/`), so that they are delivered
    /// from an outbox like a run's events without showing as runs.
    pub notices: Arc<dyn JournalStore>,
    /// The journals of `drctl watch` observers (`watch/`): their
    /// observations as they change and their decisions.
    pub watch: Arc<dyn JournalStore>,
    /// Small shared objects beside the journals (`watch/board/`): each
    /// observer's latest observations, each outage episode's proposal, veto
    /// and start claim.
    pub board: Arc<dyn board::Board>,
    /// The plan locks.
    pub locks: Arc<dyn LockStore>,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Local state in a directory (no probe, no cloud).
    pub fn local(dir: PathBuf) -> Self {
        Self {
            location: StateLocation::Dir(dir.clone()),
            journals: Arc::new(FileStore::new(&dir)),
            notices: Arc::new(FileStore::new(dir.join("notices"))),
            watch: Arc::new(FileStore::new(dir.join("watch"))),
            board: Arc::new(board::DirBoard::new(dir.join("watch").join("board"))),
            locks: Arc::new(local::LocalLocks::new(dir)),
        }
    }
}

/// Opens the state at `location`. A bucket is reached through `via` (the
/// region the command works in: a failover's target) and probed once for
/// conditional writes; a bucket that ignores them is refused.
pub async fn open(
    location: &StateLocation,
    objects: Arc<dyn ObjectStore>,
    via: &str,
    times: LeaseTimes,
) -> Result<State, StateError> {
    if let StateLocation::Bucket(base) = location {
        probe(objects.as_ref(), via, base).await?;
    }
    Ok(open_for_reading(location, objects, via, times))
}

/// Opens the state at `location` for a command that only reads it
/// (`runs list|show`, `audit verify` without recording, `report`, `lock
/// status`, `notify pending`, `watch status`): the bucket is not probed,
/// since the probe writes and a reader's safety does not rest on
/// conditional writes. So these commands write nothing, and run with
/// read-only credentials (an auditor's).
pub fn open_for_reading(
    location: &StateLocation,
    objects: Arc<dyn ObjectStore>,
    via: &str,
    times: LeaseTimes,
) -> State {
    match location {
        StateLocation::Dir(dir) => State::local(dir.clone()),
        StateLocation::Bucket(base) => State {
            location: location.clone(),
            journals: Arc::new(objects::ObjectJournalStore::new(
                objects.clone(),
                via,
                base.clone(),
            )),
            notices: Arc::new(objects::ObjectJournalStore::new(
                objects.clone(),
                via,
                base.join("notices"),
            )),
            watch: Arc::new(objects::ObjectJournalStore::new(
                objects.clone(),
                via,
                base.join("watch"),
            )),
            board: Arc::new(board::ObjectBoard::new(
                objects.clone(),
                via,
                base.join("watch/board"),
            )),
            locks: Arc::new(lease::LeaseLocks::new(objects, via, base.clone(), times)),
        },
    }
}

/// Checks that the bucket refuses a second create-only write and a
/// compare-and-swap on a stale version (some S3-compatible stores ignore
/// the headers and let both through).
pub async fn probe(
    objects: &dyn ObjectStore,
    via: &str,
    base: &ObjectUrl,
) -> Result<(), StateError> {
    let location = base.to_string();
    let cloud = |source| StateError::Cloud {
        location: location.clone(),
        source: Box::new(source),
    };
    let unsafe_ = |detail: &str| StateError::Unsafe {
        location: location.clone(),
        detail: detail.to_string(),
    };
    let url = base.join(&format!(
        "probe/{}-{}.json",
        crate::state::hostname(),
        crate::journal::new_run_id("probe")
    ));
    let body = |n: u8| Bytes::from(format!("{{\"probe\":{n}}}"));
    let first = objects
        .put(via, &url, body(1), PutMode::CreateOnly)
        .await
        .map_err(cloud)?;
    let result = async {
        let PutOutcome::Written(Some(v1)) = first else {
            return Err(unsafe_(
                "a create-only write of a new object was refused or returned no version",
            ));
        };
        let again = objects
            .put(via, &url, body(2), PutMode::CreateOnly)
            .await
            .map_err(cloud)?;
        if again != PutOutcome::AlreadyExists {
            return Err(unsafe_(
                "a second create-only write of the same object succeeded (If-None-Match / ifGenerationMatch=0 is ignored)",
            ));
        }
        let v2 = match objects
            .replace_if(via, &url, body(3), &v1)
            .await
            .map_err(cloud)?
        {
            SwapOutcome::Swapped(v2) => v2,
            SwapOutcome::Stale => {
                return Err(unsafe_(
                    "a compare-and-swap with the current version was refused",
                ));
            }
        };
        if v2 == v1 {
            return Err(unsafe_("a replaced object kept its version"));
        }
        match objects
            .replace_if(via, &url, body(4), &v1)
            .await
            .map_err(cloud)?
        {
            SwapOutcome::Stale => Ok(()),
            SwapOutcome::Swapped(_) => Err(unsafe_(
                "a compare-and-swap with a stale version succeeded (If-Match / ifGenerationMatch is ignored)",
            )),
        }
    }
    .await;
    if let Err(e) = objects.delete(via, &url).await {
        tracing::debug!("cannot delete the state probe object {url}: {e}");
    }
    result
}

/// Who takes a lock: the journal's lock holder (run, host, pid, start) and
/// what kind of run it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The run, its host and pid, and when it took (or asked for) the lock.
    #[serde(flatten)]
    pub info: LockInfo,
    /// What kind of run.
    pub kind: RunKind,
}

impl Holder {
    /// This process, now, for run `run_id` of `kind`.
    pub fn current(run_id: &str, kind: RunKind) -> Self {
        Self {
            info: LockInfo::current(run_id),
            kind,
        }
    }
}

/// May an acquisition take a lock over?
#[derive(Debug, Clone, Copy, Default)]
pub struct Takeover<'a> {
    /// `--force-unlock`: take a dead (expired) holder's lock; with a reason,
    /// a live one too.
    pub force: bool,
    /// The reason given with `--force-unlock` (required for a live lease).
    pub reason: Option<&'a str>,
    /// A resume of this run may take its own dead lock.
    pub reclaim_run: Option<&'a str>,
    /// A failover preempting this drill run takes its lock, live or not
    /// (the engine has read from the run's journal that it is a drill).
    pub preempt_run: Option<&'a str>,
}

/// A lock taken.
pub struct Acquired {
    /// The lock, held until released.
    pub lock: Arc<dyn HeldLock>,
    /// The holder it displaced, if any (to journal).
    pub displaced: Option<LockInfo>,
    /// Whether the displaced holder was live (a forced takeover).
    pub displaced_live: bool,
}

/// What `drctl lock status` shows of one plan's lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockStatus {
    /// The plan.
    pub plan: String,
    /// The holder, when held.
    pub holder: Option<LockInfo>,
    /// The holding run's kind, when known.
    pub kind: Option<RunKind>,
    /// When it was taken.
    pub acquired: Option<DateTime<Utc>>,
    /// When it was last renewed (leases).
    pub renewed: Option<DateTime<Utc>>,
    /// Lease time left in seconds (negative: expired); `None` for local locks.
    pub lease_left_seconds: Option<i64>,
    /// The fencing token (leases).
    pub token: Option<u64>,
    /// `held`, `expired`, `released`, `dead` (local: holder process gone).
    pub state: String,
    /// The holder this lock was taken from, when it was taken over (a
    /// failover preempting a drill, `--force-unlock`, a resume) or broken:
    /// what a displaced run reads to learn who took its lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub displaced: Option<LockInfo>,
    /// Why it was taken over or broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How this host's clock and the lease writer's compared with the
    /// store's at this read; `None` for local locks, free plans and stores
    /// whose answers say nothing of time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clocks: Option<ClockSkew>,
}

/// The clocks a read of a lease compared (`drctl lock status`): the
/// store's, this host's and the clock of whoever last wrote the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockSkew {
    /// The store's clock when it answered (its HTTP `Date`).
    pub store_time: DateTime<Utc>,
    /// This host's clock minus the store's, in milliseconds (positive: this
    /// host runs ahead). Good to about the store's resolution (one second
    /// for HTTP dates) plus the request's latency.
    pub host_skew_ms: i64,
    /// The clock of the lease's last writer (its holder, or whoever
    /// released or broke it) minus the store's at that write, in
    /// milliseconds; `None` when the store did not say when it wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer_skew_ms: Option<i64>,
    /// This host's clock is off the store's by more than `lease_skew`
    /// (beyond the measurement's resolution): it is warned, and leases are
    /// still judged by the store's clock.
    pub host_off: bool,
    /// Whether expiry was judged by the store's clock; `false` when the
    /// store did not say when it last wrote the lease (then by the lease's
    /// `renewed` against this host's clock).
    pub judged_by_store: bool,
}

/// Why a lock was taken from the run `displaced` under `takeover`, as the
/// lock records it (a lease's `reason`, a local lock file's).
pub(crate) fn takeover_reason(takeover: &Takeover<'_>, displaced: &str) -> String {
    takeover.reason.map(str::to_string).unwrap_or_else(|| {
        if takeover.preempt_run == Some(displaced) {
            "preempted: a failover takes precedence over a drill".to_string()
        } else if takeover.reclaim_run == Some(displaced) {
            "resumed after its lease expired".to_string()
        } else {
            "took over an expired lease (--force-unlock)".to_string()
        }
    })
}

/// Per-plan locks: one active run per plan.
#[async_trait]
pub trait LockStore: Send + Sync {
    /// Takes the lock of `plan` for `me`. A live holder refuses
    /// ([`LockError::Held`], exit 3) unless `takeover` allows it.
    async fn acquire(
        &self,
        plan: &str,
        me: &Holder,
        takeover: Takeover<'_>,
    ) -> Result<Acquired, LockError>;

    /// The locks of `plans` (every known lock when empty).
    async fn status(&self, plans: &[String]) -> Result<Vec<LockStatus>, LockError>;

    /// Breaks the lock of `plan` (`drctl lock break`): marks it released
    /// whoever holds it. Returns what it was.
    async fn break_lock(
        &self,
        plan: &str,
        by: &Holder,
        reason: &str,
    ) -> Result<Option<LockStatus>, LockError>;

    /// Whether holders must be fenced (shared leases).
    fn fenced(&self) -> bool;
}

/// A lock held by this process.
#[async_trait]
pub trait HeldLock: Send + Sync {
    /// The plan.
    fn plan(&self) -> &str;
    /// The fencing token (leases only).
    fn token(&self) -> Option<u64>;
    /// Whether it is still ours, confirmed with the store: `Err(why)` when
    /// lost or not renewed in time.
    async fn check(&self) -> Result<(), String>;
    /// The same from what this process knows (lost at a renewal, or past
    /// its deadline), without asking the store.
    fn check_local(&self) -> Result<(), String>;
    /// How long it is certainly ours (leases); `None`: no limit.
    fn time_left(&self) -> Option<Duration>;
    /// Releases it (only if still ours).
    async fn release(&self) -> Result<(), LockError>;
    /// Leaves it in place, as a process that died would.
    fn abandon(&self);
}

/// The leases a run holds, as one [`Fence`] for its journal.
pub struct LockSet(pub Vec<Arc<dyn HeldLock>>);

#[async_trait]
impl Fence for LockSet {
    /// Every lease's local deadline is checked (free); the store is asked
    /// about the record's own plan's lease only (or all of them for a record
    /// about the whole run), so that an append costs one read, not one per
    /// plan of the run.
    async fn check(&self, plan: Option<&str>) -> Result<BTreeMap<String, u64>, String> {
        let confirm = |l: &Arc<dyn HeldLock>| plan.is_none_or(|p| p == l.plan());
        for l in self.0.iter().filter(|l| !confirm(l)) {
            l.check_local()?;
        }
        let checks =
            futures::future::join_all(self.0.iter().filter(|l| confirm(l)).map(|l| l.check()))
                .await;
        if let Some(Err(e)) = checks.into_iter().find(Result::is_err) {
            return Err(e);
        }
        Ok(self
            .0
            .iter()
            .filter_map(|l| l.token().map(|t| (l.plan().to_string(), t)))
            .collect())
    }

    fn check_local(&self) -> Result<(), String> {
        self.0.iter().try_for_each(|l| l.check_local())
    }

    fn check_plan_local(&self, plan: &str) -> Result<(), String> {
        self.0
            .iter()
            .filter(|l| l.plan() == plan)
            .try_for_each(|l| l.check_local())
    }

    fn time_left(&self) -> Option<std::time::Duration> {
        self.0.iter().filter_map(|l| l.time_left()).min()
    }
}
