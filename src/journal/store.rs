//! Where journals live: a narrow storage trait and an in-memory store for
//! tests. The directory and object-store (S3, GCS) stores implement it one
//! floor up, in `crate::state`.
//!
//! The trait is deliberately small (create, append a line, read, list, plus
//! the head pointer, torn-tail repair and the late facts beside a journal)
//! so that a store knows nothing of the engine; everything about records
//! and hashes lives above it in [`crate::journal`]. The store's hard promises are durability (when
//! `append` returns, the line survives a crash, because the engine acts on
//! the cloud only after the journal says it is about to) and one writer per
//! record (record N is written once, whoever tries).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::error::JournalError;

/// The most records a journal may hold for drctl to read it: a run
/// journals tens to a few thousand (a mass failover under throttling, with
/// a wait record per throttled call, some tens of thousands); far more is
/// not a run's, and read whole it would hold every reader of runs (issue
/// 74, attack 11). A store that holds more answers
/// [`JournalError::Corrupt`], which every reader of many runs leaves out
/// and names (the cleanup's owner: in doubt).
pub const MAX_RECORDS: usize = 200_000;

/// The most bytes a journal may hold for drctl to read it, for the same
/// reason (a record is under a kilobyte or a few).
pub const MAX_JOURNAL_BYTES: u64 = 256 * 1024 * 1024;

/// The error of a journal past [`MAX_RECORDS`] or [`MAX_JOURNAL_BYTES`]:
/// `what` says which, and how much.
pub fn too_long(run_id: &str, what: String) -> JournalError {
    JournalError::Corrupt {
        run_id: run_id.to_string(),
        detail: format!(
            "{what}: more than drctl reads of one journal ({MAX_RECORDS} records, {} MiB); read it with other tools",
            MAX_JOURNAL_BYTES / (1024 * 1024)
        ),
    }
}

/// Storage for journals, one per run, addressed by run id.
///
/// Lines are opaque to the store; it only guarantees that each `append` adds
/// exactly `line + "\n"` durably, in order.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Creates an empty journal; error if it already exists.
    async fn create(&self, run_id: &str) -> Result<(), JournalError>;
    /// Appends one line, record number `seq` (the newline is added by the
    /// store). Must be durable (flushed + fsynced) when it returns. Refuses a
    /// line containing a newline, and refuses to append after a torn
    /// (newline-less) final line. Every store also refuses a `seq` that is
    /// not the next record's, atomically with the write (one written by
    /// another writer meanwhile: [`JournalError::Conflict`]): two writers
    /// never both write record N, on one machine or several.
    async fn append(&self, run_id: &str, seq: u64, line: &str) -> Result<(), JournalError>;
    /// Reads the whole journal text (bytes that are not UTF-8 are replaced,
    /// which the hash chain then reports as a change).
    async fn read(&self, run_id: &str) -> Result<String, JournalError>;
    /// Lists run ids, oldest first (run ids start with their UTC start time,
    /// so name order is age order).
    async fn list(&self) -> Result<Vec<String>, JournalError>;
    /// Replaces the head pointer of a journal atomically and durably.
    async fn write_head(&self, run_id: &str, head: &str) -> Result<(), JournalError>;
    /// Reads the head pointer; `None` when there is none.
    async fn read_head(&self, run_id: &str) -> Result<Option<String>, JournalError>;
    /// Cuts the journal to its first `keep` bytes, durably. Only a torn final
    /// line may be removed: the store refuses when byte `keep - 1` is not a
    /// newline or when the removed bytes contain one (a complete record).
    async fn truncate_torn_tail(&self, run_id: &str, keep: u64) -> Result<(), JournalError>;

    /// Stores one late fact beside a journal ([`crate::journal::late`]),
    /// create-only, as `id`: durable when it returns. A second write of the
    /// same id with the same bytes succeeds (a retry whose answer was lost);
    /// with other bytes it is refused ([`late_exists`]).
    async fn put_late(&self, run_id: &str, id: &str, body: &str) -> Result<(), JournalError>;
    /// The late facts stored beside a journal, (id, body) in id order; none
    /// when there are none.
    async fn read_late(&self, run_id: &str) -> Result<Vec<(String, String)>, JournalError>;

    /// Whether the journal may write a record's head pointer in the
    /// background, finished before the next append (stores where a write is
    /// a network round trip). Default: no, the head is written at once.
    fn pipelined_head(&self) -> bool {
        false
    }

    /// The run keys journals are signed with and checked against
    /// ([`crate::journal::trust`]). Default: none (nothing signed, nothing
    /// checked); the commands wrap their store in [`crate::journal::trust::Keyed`].
    fn keys(&self) -> &crate::journal::keys::RunKeys {
        &crate::journal::keys::NO_KEYS
    }
}

/// Checks that `run_id` can safely name a file: 1-128 characters from
/// `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
pub fn validate_run_id(run_id: &str) -> Result<(), JournalError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 128
        && !run_id.starts_with(['.', '-'])
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(JournalError::InvalidRunId {
            run_id: run_id.to_string(),
        })
    }
}

/// Checks that cutting `text` to `keep` bytes removes only a partial line.
pub(crate) fn check_torn_cut(run_id: &str, text: &[u8], keep: u64) -> Result<usize, JournalError> {
    let corrupt = |detail: String| JournalError::Corrupt {
        run_id: run_id.to_string(),
        detail,
    };
    let keep = usize::try_from(keep)
        .ok()
        .filter(|k| *k <= text.len())
        .ok_or_else(|| {
            corrupt(format!(
                "cannot cut the journal to {keep} bytes: it has only {} bytes",
                text.len()
            ))
        })?;
    if keep > 0 && text[keep - 1] != b'\n' {
        return Err(corrupt(format!(
            "refusing to cut the journal at byte {keep}: that is not the end of a line"
        )));
    }
    if text[keep..].contains(&b'\n') {
        return Err(corrupt(format!(
            "refusing to cut the journal at byte {keep}: that would remove complete records"
        )));
    }
    Ok(keep)
}

pub(crate) fn check_line(run_id: &str, line: &str) -> Result<(), JournalError> {
    if line.contains('\n') {
        return Err(JournalError::Corrupt {
            run_id: run_id.to_string(),
            detail: "refusing to append a line that contains a newline".into(),
        });
    }
    Ok(())
}

/// A late fact's id taken by other bytes (ids are random: never by chance).
pub fn late_exists(run_id: &str, id: &str) -> JournalError {
    JournalError::Corrupt {
        run_id: run_id.to_string(),
        detail: format!("its late fact `{id}` already exists with other content"),
    }
}

pub(crate) fn torn_tail_error(run_id: &str) -> JournalError {
    JournalError::Corrupt {
        run_id: run_id.to_string(),
        detail: "its last line is incomplete (an interrupted write); refusing to append after it"
            .into(),
    }
}

#[derive(Debug, Default, Clone)]
struct MemJournal {
    text: String,
    head: Option<String>,
    late: BTreeMap<String, String>,
}

/// Journals in memory, for unit tests. Offers direct access to the text so
/// tests can simulate tampering and torn writes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    journals: Mutex<BTreeMap<String, MemJournal>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The raw text of a journal, if it exists.
    pub fn text(&self, run_id: &str) -> Option<String> {
        self.lock().get(run_id).map(|j| j.text.clone())
    }

    /// Replaces the raw text of a journal (creating it if needed), as a
    /// tamperer or a crash would.
    pub fn set_text(&self, run_id: &str, text: &str) {
        self.lock().entry(run_id.to_string()).or_default().text = text.to_string();
    }

    /// Replaces (or with `None`, deletes) the head pointer of a journal.
    pub fn set_head(&self, run_id: &str, head: Option<&str>) {
        self.lock().entry(run_id.to_string()).or_default().head = head.map(str::to_string);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MemJournal>> {
        // A panic elsewhere cannot leave the map half-updated: every update is one assignment.
        self.journals.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<T>(
        &self,
        run_id: &str,
        f: impl FnOnce(&mut MemJournal) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        validate_run_id(run_id)?;
        match self.lock().get_mut(run_id) {
            Some(journal) => f(journal),
            None => Err(JournalError::NotFound {
                run_id: run_id.to_string(),
            }),
        }
    }
}

#[async_trait]
impl JournalStore for MemoryStore {
    async fn create(&self, run_id: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        let mut journals = self.lock();
        if journals.contains_key(run_id) {
            return Err(JournalError::Exists {
                run_id: run_id.to_string(),
            });
        }
        journals.insert(run_id.to_string(), MemJournal::default());
        Ok(())
    }

    async fn append(&self, run_id: &str, seq: u64, line: &str) -> Result<(), JournalError> {
        check_line(run_id, line)?;
        self.with(run_id, |j| {
            if !j.text.is_empty() && !j.text.ends_with('\n') {
                return Err(torn_tail_error(run_id));
            }
            // Record N is the journal's N+1st line: a writer that is not
            // at the end is refused, as the other stores refuse it.
            if j.text.lines().count() as u64 != seq {
                return Err(JournalError::Conflict {
                    run_id: run_id.to_string(),
                    seq,
                });
            }
            j.text.push_str(line);
            j.text.push('\n');
            Ok(())
        })
    }

    async fn read(&self, run_id: &str) -> Result<String, JournalError> {
        self.with(run_id, |j| Ok(j.text.clone()))
    }

    async fn list(&self) -> Result<Vec<String>, JournalError> {
        Ok(self.lock().keys().cloned().collect())
    }

    async fn write_head(&self, run_id: &str, head: &str) -> Result<(), JournalError> {
        self.with(run_id, |j| {
            j.head = Some(head.to_string());
            Ok(())
        })
    }

    async fn read_head(&self, run_id: &str) -> Result<Option<String>, JournalError> {
        self.with(run_id, |j| Ok(j.head.clone()))
    }

    async fn truncate_torn_tail(&self, run_id: &str, keep: u64) -> Result<(), JournalError> {
        self.with(run_id, |j| {
            let keep = check_torn_cut(run_id, j.text.as_bytes(), keep)?;
            j.text.truncate(keep);
            Ok(())
        })
    }

    async fn put_late(&self, run_id: &str, id: &str, body: &str) -> Result<(), JournalError> {
        validate_run_id(id)?;
        self.with(run_id, |j| match j.late.get(id) {
            Some(there) if there == body => Ok(()),
            Some(_) => Err(late_exists(run_id, id)),
            None => {
                j.late.insert(id.to_string(), body.to_string());
                Ok(())
            }
        })
    }

    async fn read_late(&self, run_id: &str) -> Result<Vec<(String, String)>, JournalError> {
        self.with(run_id, |j| {
            Ok(j.late.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        })
    }
}
