//! The run journal: an append-only, hash-chained record of everything a run
//! does, and the trait of its storage.
//!
//! # Why a journal
//!
//! A failover must survive the machine running it: `drctl runs resume RUN`
//! replays the journal to learn which steps finished, which had started (and
//! must be re-checked against the cloud) and which never began. The same
//! records are the audit trail from which reports compute RTO and RPO. So a
//! record is written, and made durable, *before* the action it announces.
//!
//! # Why a hash chain, and what it does not do
//!
//! Each record is one JSON line carrying the SHA-256 of the previous line's
//! exact bytes ([`Record::prev`]); a head pointer beside the journal holds the
//! record count and the hash of the last line, replaced atomically after each
//! append. Together they detect any edited, deleted, inserted or reordered
//! record, and a truncated journal, **made by anyone who does not recompute
//! the hashes**: a text editor, a careless script, disk corruption. Someone
//! who can write the state *and* recomputes every hash (and the head) could
//! forge a consistent journal; so the writer also signs every record and
//! every head with the run key ([`trust`]), and verification with the
//! operators' public keys listed refuses what the key did not sign. Without
//! listed keys only the chain is checked, and `drctl audit verify` says the
//! journals are not authenticated. Also by design: a missing head
//! ([`HeadCheck::Absent`]) and a head one record behind
//! ([`HeadCheck::Behind`]) fail `drctl audit verify`, while a resume
//! accepts one record past the head (a crash between the append and the
//! head update leaves exactly that; with keys listed that record is signed
//! itself) and rewrites the head.
//!
//! # Crashes
//!
//! The store appends each line with one write and an fsync. A crash in the
//! middle of it can leave a torn final line (no newline). Readers report it
//! ([`read`] and [`verify`] say "torn final line"); [`Journal::open_for_append`]
//! cuts it off before appending, and says what it dropped
//! ([`Journal::torn_tail`]). Dropping it is safe: its append never returned,
//! so the engine never acted on it.
//!
//! # One writer
//!
//! Only the run that holds its plans appends to its journal (the plan lock
//! guarantees one such process; the stores refuse a second writer of the
//! same record). What other processes learn about a run while or after it
//! runs (a retroactive approval, a notification's delivery, an evidence
//! verification) is written beside the journal as late facts ([`late`]),
//! which readers merge with the records (`runs::late`).
//!
//! # Layout
//! * [`event`] defines the records and events, [`payload`] what they carry
//!   (a drill's [`Temp`], the gates' [`RpoDetail`], the run's [`RunFlags`]),
//!   [`step_name`] how a step is named;
//! * [`store`] holds the storage trait ([`JournalStore`]) and memory
//!   ([`MemoryStore`]); the directory and object stores are `crate::state`'s;
//! * [`chain`] verifies the chain and the head; [`keys`] and [`trust`] hold
//!   the run keys' rules and the store wrapper ([`Keyed`]) that signs and
//!   checks records and heads;
//! * [`late`] holds the facts stored beside a journal; [`runs`] is the one
//!   way readers of many runs read them;
//! * [`notice`] and [`watch`]: what notifications and `drctl watch` journal;
//! * [`error`] has [`JournalError`]. [`Fence`] is what a journal asks before
//!   each append (a plan lock's lease); [`Outbox`] what it tells of each
//!   record (the notifier).

#![warn(missing_docs)]

pub mod chain;
pub mod error;
pub mod event;
pub mod keys;
pub mod late;
pub mod notice;
pub mod payload;
pub mod runs;
pub mod step_name;
pub mod store;
pub mod trust;
mod vocabulary;
pub mod watch;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

pub use chain::{
    Broken, HeadCheck, Verification, ZERO_HASH, hash_line, verify, verify_with_head,
    verify_with_keys,
};
pub use error::JournalError;
pub use event::CleanupResult;
pub use event::{
    Decision, DrillDepth, ErrorClass, Event, GateName, Outcome, PlanRef, Record, RunKind, RunMode,
    StepError, StepRef,
};
pub use payload::{
    ApprovalDetail, Cleaned, DestinationCheck, LagReading, LockOverride, PlanCheck, Problem,
    ProblemKind, RpoDetail, RunFlags, Temp, only_unreadable,
};
pub use step_name::{BadStepName, StepName};
pub use store::{JournalStore, MemoryStore};
pub use trust::{Keyed, NO_KEYS, RunKeys};

/// A torn final line that [`Journal::open_for_append`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Its line number, from 1.
    pub line: usize,
    /// How many bytes were dropped.
    pub bytes: usize,
    /// The dropped text.
    pub text: String,
}

/// What a journal asks before each append when its run holds shared leases:
/// are they still ours? Returns each plan's fencing token (written into the
/// record), or why the append must be refused.
#[async_trait::async_trait]
pub trait Fence: Send + Sync {
    /// Checks the leases (`plan`: the one the record is about, whose lease
    /// must be confirmed with the store; `None`: all of them); `Err(detail)`
    /// refuses the append.
    async fn check(
        &self,
        plan: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, u64>, String>;

    /// What this process knows without asking the store (a lease lost at a
    /// renewal, or past its deadline).
    fn check_local(&self) -> Result<(), String>;

    /// The same for one plan's lease only: what the fence at the wire asks
    /// right before each transmission of a call made for `plan`
    /// ([`crate::cloud::wire`]). By default, every lease.
    fn check_plan_local(&self, plan: &str) -> Result<(), String> {
        let _ = plan;
        self.check_local()
    }

    /// How long the leases are certainly ours; an append that has not
    /// finished by then is abandoned. `None`: no limit.
    fn time_left(&self) -> Option<std::time::Duration>;
}

/// The plan a record is about, if it is about one (step records name their
/// step, whose id starts with the plan).
fn plan_of(event: &Event) -> Option<&str> {
    match event {
        Event::StepStarted { step, .. }
        | Event::StepSucceeded { step, .. }
        | Event::StepFailed { step, .. }
        | Event::DrillResource { step, .. } => Some(step.plan()),
        Event::Gate { plan, .. } => Some(plan),
        _ => None,
    }
}

/// The journal's outbox (see [`notice`]): told of every record appended,
/// it names the notification events to journal right after it, is handed
/// each one once journaled (to send it, never waiting), and gives back the
/// delivery results to journal. Implemented by `notify::Notifier`; the
/// journal only keeps the order: an event is on disk before it is sent.
pub trait Outbox: Send + Sync {
    /// The notification records owed for `record` (whose line hash is `hash`).
    fn observe(&self, record: &Record, hash: &str) -> Vec<Event>;
    /// A notification record was journaled: start delivering it.
    fn send(&self, record: &Record);
    /// Delivery results not yet journaled (taken).
    fn drain(&self) -> Vec<Event>;
}

/// An open journal to which records are appended, in order.
///
/// One writer per run (the plan lock guarantees it; every store refuses a
/// second writer of the same record with [`JournalError::Conflict`]).
/// Cheap to hold; every append goes straight to the store.
pub struct Journal {
    store: Arc<dyn JournalStore>,
    run_id: String,
    next_seq: u64,
    last_hash: String,
    /// Set while an append is in flight and left set when it fails: the
    /// journal's end is then unknown, so further appends are refused.
    poisoned: bool,
    torn_tail: Option<TornTail>,
    fence: Option<Arc<dyn Fence>>,
    /// The head write of the last record, when the store pipelines it.
    pending_head: Option<tokio::task::JoinHandle<Result<(), JournalError>>>,
    outbox: Option<Arc<dyn Outbox>>,
    /// The run keys: when this process holds the run key, every record and
    /// head is signed with it, bound to the deployment ([`trust`]).
    keys: RunKeys,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("run_id", &self.run_id)
            .field("next_seq", &self.next_seq)
            .field("last_hash", &self.last_hash)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Creates the journal of a new run (error if it exists).
    /// Refused, before anything is written, when public run keys are
    /// listed and this process does not hold the run key.
    pub async fn create(store: Arc<dyn JournalStore>, run_id: &str) -> Result<Self, JournalError> {
        store.keys().may_write(run_id)?;
        let keys = store.keys().clone();
        store.create(run_id).await?;
        store
            .write_head(run_id, &chain::bound_head_text(run_id, 0, ZERO_HASH, &keys))
            .await?;
        Ok(Self {
            store,
            run_id: run_id.to_string(),
            next_seq: 0,
            last_hash: ZERO_HASH.to_string(),
            poisoned: false,
            torn_tail: None,
            fence: None,
            pending_head: None,
            outbox: None,
            keys,
        })
    }

    /// Re-opens an existing journal for appending (resume): verifies the whole
    /// chain first and refuses a broken one; with public run keys listed
    /// (the store's [`JournalStore::keys`]), also every record's and the
    /// head's signature, and a missing head (records could have been removed
    /// from the end). A torn final line is cut off (see
    /// [`Journal::torn_tail`]); a missing (without keys) or one-behind head
    /// is rewritten. Refused when this process does not hold the run key
    /// while keys are listed or the journal's head is signed.
    /// Returns the journal and its records.
    pub async fn open_for_append(
        store: Arc<dyn JournalStore>,
        run_id: &str,
    ) -> Result<(Self, Vec<Record>), JournalError> {
        let keys = store.keys().clone();
        keys.may_write(run_id)?;
        let (text, head) = snapshot(store.as_ref(), run_id).await?;
        if keys.signer.is_none()
            && let Some(id) = head.as_deref().and_then(chain::head_signer)
        {
            return Err(JournalError::Unkeyed {
                run_id: run_id.to_string(),
                detail: format!(
                    "its records are signed with the run key {id}, which this process does not hold: what it appended could not be verified"
                ),
            });
        }
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        let (complete, torn) = text.split_at(keep);
        let checked = chain::authenticate(run_id, complete, head.as_deref(), &keys)
            .map_err(JournalError::Broken)?;
        // Lines past the head that are not the run's: its readers read the
        // records before them, but a record appended after them would not
        // be the journal's next line (the stores number records by line),
        // so this run cannot go on in this journal.
        if let Some(tail) = checked.verification.tail {
            return Err(JournalError::Broken(tail));
        }
        let records = checked.records;
        let torn_tail = if torn.is_empty() {
            None
        } else {
            store.truncate_torn_tail(run_id, keep as u64).await?;
            Some(TornTail {
                line: records.len() + 1,
                bytes: torn.len(),
                text: torn.to_string(),
            })
        };
        if checked.verification.head != HeadCheck::Matched {
            store
                .write_head(
                    run_id,
                    &chain::bound_head_text(
                        run_id,
                        records.len() as u64,
                        &checked.last_hash,
                        &keys,
                    ),
                )
                .await?;
        }
        let journal = Self {
            store,
            run_id: run_id.to_string(),
            next_seq: records.len() as u64,
            last_hash: checked.last_hash,
            poisoned: false,
            torn_tail,
            fence: None,
            pending_head: None,
            outbox: None,
            keys,
        };
        Ok((journal, records))
    }

    /// Appends an event; returns the record. Durable on return. With an
    /// outbox, the notifications it owes are journaled right after it.
    ///
    /// If the store fails, this handle refuses further appends
    /// ([`JournalError::Poisoned`]): re-open the journal to go on.
    pub async fn append(&mut self, event: Event) -> Result<Record, JournalError> {
        let record = self.append_one(event).await?;
        if let Some(outbox) = self.outbox.clone() {
            let notes = outbox.observe(&record, &self.last_hash);
            let results = outbox.drain();
            for note in notes {
                let written = self.append_one(note).await?;
                outbox.send(&written);
            }
            for result in results {
                self.append_one(result).await?;
            }
        }
        Ok(record)
    }

    /// Journals the delivery results the outbox holds (at a run's end,
    /// before its locks are released).
    pub async fn append_outbox_results(&mut self) -> Result<(), JournalError> {
        if let Some(outbox) = self.outbox.clone() {
            for result in outbox.drain() {
                self.append_one(result).await?;
            }
        }
        Ok(())
    }

    /// Appends one record, fenced, without the outbox.
    async fn append_one(&mut self, event: Event) -> Result<Record, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned {
                run_id: self.run_id.clone(),
            });
        }
        let Some(fence) = self.fence.clone() else {
            return self.append_inner(event).await;
        };
        let fenced = |detail| JournalError::Fenced {
            run_id: self.run_id.clone(),
            detail,
        };
        fence.check_local().map_err(fenced)?;
        let Some(limit) = fence.time_left() else {
            return self.append_inner(event).await;
        };
        // A store that does not answer must not hold the run past its lease.
        match tokio::time::timeout(limit, self.append_inner(event)).await {
            Ok(result) => result,
            Err(_) => {
                self.poisoned = true;
                Err(JournalError::Fenced {
                    run_id: self.run_id.clone(),
                    detail: format!(
                        "the state store did not answer within the {:.1} s left on the lease",
                        limit.as_secs_f64()
                    ),
                })
            }
        }
    }

    async fn append_inner(&mut self, event: Event) -> Result<Record, JournalError> {
        // The previous record's head write (pipelined on shared stores)
        // finishes while the lease is checked.
        let pending = self.pending_head.take();
        let settle = async {
            match pending {
                None => Ok(()),
                Some(task) => task.await.unwrap_or_else(|e| {
                    Err(JournalError::Corrupt {
                        run_id: self.run_id.clone(),
                        detail: format!("writing the head pointer did not finish: {e}"),
                    })
                }),
            }
        };
        let check = async {
            match &self.fence {
                Some(f) => f
                    .check(plan_of(&event))
                    .await
                    .map_err(|detail| JournalError::Fenced {
                        run_id: self.run_id.clone(),
                        detail,
                    }),
                None => Ok(Default::default()),
            }
        };
        let (settled, fence) = futures::join!(settle, check);
        if let Err(e) = settled {
            self.poisoned = true;
            return Err(e);
        }
        let fence = fence?;
        let ends_run = matches!(event, Event::RunFinished { .. });
        let record = Record {
            seq: self.next_seq,
            at: Utc::now(),
            prev: self.last_hash.clone(),
            event,
            fence,
            late: None,
        };
        let line = serde_json::to_string(&record).map_err(|source| JournalError::Encode {
            run_id: self.run_id.clone(),
            source,
        })?;
        let line = self.keys.sign_line(&line, trust::RECORD, &self.run_id);
        self.poisoned = true;
        self.store
            .append(&self.run_id, self.next_seq, &line)
            .await?;
        let hash = hash_line(&line);
        let head = chain::bound_head_text(&self.run_id, self.next_seq + 1, &hash, &self.keys);
        if self.store.pipelined_head() && !ends_run {
            // Off the critical path: the next append waits for it. Until
            // then the head is one record behind, which verification accepts
            // (a crash between a record and its head leaves exactly that).
            let store = self.store.clone();
            let run_id = self.run_id.clone();
            self.pending_head = Some(tokio::spawn(async move {
                store.write_head(&run_id, &head).await
            }));
        } else {
            self.store.write_head(&self.run_id, &head).await?;
        }
        self.next_seq += 1;
        self.last_hash = hash;
        self.poisoned = false;
        Ok(record)
    }

    /// Waits for a pipelined head write (see [`JournalStore::pipelined_head`]).
    pub async fn flush(&mut self) -> Result<(), JournalError> {
        match self.pending_head.take() {
            None => Ok(()),
            Some(task) => task.await.unwrap_or_else(|e| {
                Err(JournalError::Corrupt {
                    run_id: self.run_id.clone(),
                    detail: format!("writing the head pointer did not finish: {e}"),
                })
            }),
        }
    }

    /// From now on, tells `outbox` of every record appended (notifications).
    pub fn set_outbox(&mut self, outbox: Arc<dyn Outbox>) {
        self.outbox = Some(outbox);
    }

    /// From now on, asks `fence` before every append and writes its tokens
    /// into each record (a run holding shared leases).
    pub fn set_fence(&mut self, fence: Arc<dyn Fence>) {
        self.fence = Some(fence);
    }

    /// The fence this journal asks before each append, if any: the engine
    /// hands the same one to the steps, which ask it before each cloud write.
    pub fn fence(&self) -> Option<Arc<dyn Fence>> {
        self.fence.clone()
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The seq the next record will get (= the number of records).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Hash of the last record ([`ZERO_HASH`] when there is none).
    pub fn last_hash(&self) -> &str {
        &self.last_hash
    }

    /// The torn final line that [`Journal::open_for_append`] removed, if any
    /// (worth journaling or printing on resume).
    pub fn torn_tail(&self) -> Option<&TornTail> {
        self.torn_tail.as_ref()
    }
}

/// Appends one record to an existing journal that this process does not
/// hold open: another run's (a takeover or a `lock break` recorded where the
/// displaced run will see it). A lost race with that run's own writer is
/// retried on a fresh view, a few times; the head is written before it returns.
pub async fn append_to(
    store: Arc<dyn JournalStore>,
    run_id: &str,
    event: Event,
) -> Result<Record, JournalError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = async {
            let (mut j, _) = Journal::open_for_append(store.clone(), run_id).await?;
            let record = j.append(event.clone()).await?;
            j.flush().await?;
            Ok(record)
        }
        .await;
        match result {
            Err(JournalError::Conflict { .. }) if attempt < 3 => continue,
            other => return other,
        }
    }
}

/// Reads and verifies a journal's chain (and head); returns its records, or
/// [`JournalError::Broken`] at the first problem, a torn final line included.
pub async fn read(store: &dyn JournalStore, run_id: &str) -> Result<Vec<Record>, JournalError> {
    Ok(read_with_tip(store, run_id).await?.0)
}

/// [`read`], and the hash of the last record ([`ZERO_HASH`] when there is
/// none): where the chain ends, which the notifications a record owes name.
pub async fn read_with_tip(
    store: &dyn JournalStore,
    run_id: &str,
) -> Result<(Vec<Record>, String), JournalError> {
    let (text, head) = snapshot(store, run_id).await?;
    let checked = chain::check(run_id, &text, head.as_deref(), &NO_KEYS);
    match checked.verification.first_broken {
        Some(broken) => Err(JournalError::Broken(broken)),
        None => Ok((checked.records, checked.last_hash)),
    }
}

/// Verifies a stored journal, chain and head, and with public run keys
/// listed (the store's [`JournalStore::keys`]) every signature (for `drctl
/// audit verify`, and for readers that must not believe a journal a writer
/// of the state could have forged). Errors only when the journal cannot be
/// read; a broken chain is a result.
pub async fn verify_stored(
    store: &dyn JournalStore,
    run_id: &str,
) -> Result<Verification, JournalError> {
    let (text, head) = snapshot(store, run_id).await?;
    Ok(verify_with_keys(
        run_id,
        &text,
        head.as_deref(),
        store.keys(),
    ))
}

/// [`read`], authenticated: with public run keys listed (the store's), the
/// records only when every record and the head are signed by one of them,
/// and the head is there and names the last record or the one before.
/// Without listed keys, what [`read`] gives.
pub async fn read_authenticated(
    store: &dyn JournalStore,
    run_id: &str,
) -> Result<Vec<Record>, JournalError> {
    Ok(read_authenticated_with_tip(store, run_id).await?.0)
}

/// [`read_authenticated`], and the hash of the last record (as
/// [`read_with_tip`]).
pub async fn read_authenticated_with_tip(
    store: &dyn JournalStore,
    run_id: &str,
) -> Result<(Vec<Record>, String), JournalError> {
    let (text, head) = snapshot(store, run_id).await?;
    let checked = chain::authenticate(run_id, &text, head.as_deref(), store.keys())
        .map_err(JournalError::Broken)?;
    if let Some(tail) = &checked.verification.tail {
        tracing::warn!(
            "run {run_id}: line {} and after are not the run's ({}): read up to its head, {} record(s)",
            tail.line,
            tail.reason,
            checked.records.len()
        );
    }
    Ok((checked.records, checked.last_hash))
}

/// A journal's text and head as of one moment, while another process may be
/// appending (a run shown from another machine): the head is read before
/// and after the records, until it did not move. A writer writes record N+1
/// only once the head names N, and records are never removed, so with the
/// head unchanged the records read are the head's or one more (an append in
/// flight), which verification accepts.
pub async fn snapshot(
    store: &dyn JournalStore,
    run_id: &str,
) -> Result<(String, Option<String>), JournalError> {
    let mut before = store.read_head(run_id).await?;
    for attempt in 0..8u32 {
        let text = store.read(run_id).await?;
        let after = store.read_head(run_id).await?;
        if after == before {
            return Ok((text, after));
        }
        before = after;
        tokio::time::sleep(std::time::Duration::from_millis(5 << attempt.min(5))).await;
    }
    // Still moving (writers keep appending): the latest head, with the
    // records read after it cut to the head's count plus the one that may
    // be in flight, which is the journal as it was a moment earlier.
    // Records are never rewritten, so the prefix is exactly what was there.
    let text = store.read(run_id).await?;
    let count = before
        .as_deref()
        .and_then(|h| serde_json::from_str::<serde_json::Value>(h).ok())
        .and_then(|v| v["records"].as_u64());
    let text = match count {
        Some(n) => {
            let keep = usize::try_from(n).unwrap_or(usize::MAX).saturating_add(1);
            let mut cut = String::new();
            for line in text.split_inclusive('\n').take(keep) {
                cut.push_str(line);
            }
            cut
        }
        None => text,
    };
    Ok((text, before))
}

/// A fresh nonce: 128 random bits from the operating system's generator,
/// as 32 hex digits (a run's `run_started` carries one; its evidence
/// manifests repeat it).
pub fn new_nonce() -> String {
    use rand::{RngCore as _, TryRngCore as _};
    let mut b = [0u8; 16];
    if rand::rngs::OsRng.try_fill_bytes(&mut b).is_err() {
        rand::rng().fill_bytes(&mut b);
    }
    hex::encode(b)
}

/// How a run ended, from its last `run_finished` (unfinished without one).
pub fn outcome_of(records: &[Record]) -> event::Outcome {
    (records.iter().rev())
        .find_map(|r| match &r.event {
            Event::RunFinished { outcome, .. } => Some(*outcome),
            _ => None,
        })
        .unwrap_or(event::Outcome::Unfinished)
}

/// The region a journal's `run_started` record names as the run's target.
pub fn target_of(records: &[Record]) -> Option<&str> {
    records.iter().find_map(|r| match &r.event {
        Event::RunStarted { target, .. } => Some(target.as_str()),
        _ => None,
    })
}

/// The nonce a journal's `run_started` record carries, if any.
pub fn nonce_of(records: &[Record]) -> Option<&str> {
    records.iter().find_map(|r| match &r.event {
        Event::RunStarted { nonce, .. } => nonce.as_deref(),
        _ => None,
    })
}

/// New run id: sortable by time and unique, e.g.
/// `20261122T041530Z-payments-3f9a` (UTC start time to the second, the label
/// reduced to `a-z 0-9 -`, and 4 hex digits).
///
/// Within one process the suffix never repeats for 65,536 consecutive calls;
/// between processes it is random, so two runs with the same label started in
/// the same second collide with odds of 1 in 65,536, in which case
/// [`Journal::create`] reports [`JournalError::Exists`] and a retry gets a new id.
/// Ids made in the same second sort by label and suffix, not by creation order.
pub fn new_run_id(label: &str) -> String {
    // No repeat within 65,536 calls of a process.
    let suffix = unique_suffix(0x9e37, 0xffff);
    run_id_at(Utc::now(), label, suffix as u16)
}

/// A random suffix for an id, `mask` wide: a per-process random seed plus
/// the process's call count times `odd` (an odd multiplier permutes the
/// residues mod a power of two, so no suffix repeats within `mask + 1`
/// calls of a process).
pub(crate) fn unique_suffix(odd: u64, mask: u64) -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        // RandomState is keyed from the OS's randomness; mixing in time and
        // pid costs nothing and guards against a weak platform source.
        let mut hasher = RandomState::new().build_hasher();
        std::time::SystemTime::now().hash(&mut hasher);
        std::process::id().hash(&mut hasher);
        hasher.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    seed.wrapping_add(n.wrapping_mul(odd)) & mask
}

fn run_id_at(at: DateTime<Utc>, label: &str, suffix: u16) -> String {
    let mut clean = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            clean.push(c.to_ascii_lowercase());
        } else if !clean.is_empty() && !clean.ends_with('-') {
            clean.push('-');
        }
        if clean.len() >= 40 {
            break;
        }
    }
    let clean = clean.trim_end_matches('-');
    let clean = if clean.is_empty() { "run" } else { clean };
    format!("{}-{clean}-{suffix:04x}", at.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests;
