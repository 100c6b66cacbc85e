//! Who may write a journal: the run key.
//!
//! # Why signatures, and why on every record
//!
//! The hash chain and the head catch every edit made by someone who does
//! not recompute the hashes. A writer of the state (a bucket's `PutObject`,
//! a shell on the state directory) can recompute them: SHA-256 has no key.
//! So the journal writer also **signs**, with the run key (Ed25519,
//! [`crate::sign`]) that the operators hold:
//!
//! * every record line carries a signature of its own bytes and run id
//!   (`"sig"`, the line's last field), so a record appended by anyone
//!   without the key is seen, the last one included (a head one record
//!   behind, which a crash leaves, covers nothing by itself);
//! * every head carries a signature of its run id, record count and last
//!   hash, so records removed from the end are seen too (short of putting
//!   back an older signed head: see docs/state.md, "Who can forge what").
//!
//! Verifiers need only the public halves (`[keys] run_public`): an auditor
//! or an observer that checks journals cannot write one.
//!
//! # Where the keys travel
//!
//! With the store ([`JournalStore::keys`]): the commands open the state
//! once and wrap its journal store in [`Keyed`], so that every writer of a
//! run's journal (a run, a resume, a takeover's record, a late fact) signs
//! with the same key, and every verifier that reads through the store knows
//! the listed keys, without one more parameter on every path.
//!
//! # A writer without the key
//!
//! A process that does not hold the run key while public keys are listed
//! would write journals nobody can verify: it is refused before it writes
//! ([`RunKeys::may_write`]), and so is one that would append unsigned
//! records to a journal that is signed.

use std::sync::Arc;

use async_trait::async_trait;

use super::error::JournalError;
pub use super::keys::{
    HEAD, LATE, NO_KEYS, RECORD, RunKeys, line_signer, refusal, sign_line, split_signed,
    verify_line,
};
use super::store::JournalStore;

/// A journal store that holds the run keys: every journal written through
/// it is signed with the secret half, and every verification through it
/// checks against the listed public halves.
pub struct Keyed {
    inner: Arc<dyn JournalStore>,
    keys: RunKeys,
}

impl Keyed {
    /// `inner` with `keys`.
    pub fn new(inner: Arc<dyn JournalStore>, keys: RunKeys) -> Self {
        Self { inner, keys }
    }
}

#[async_trait]
impl JournalStore for Keyed {
    async fn create(&self, run_id: &str) -> Result<(), JournalError> {
        self.inner.create(run_id).await
    }
    async fn append(&self, run_id: &str, seq: u64, line: &str) -> Result<(), JournalError> {
        self.inner.append(run_id, seq, line).await
    }
    async fn read(&self, run_id: &str) -> Result<String, JournalError> {
        self.inner.read(run_id).await
    }
    async fn list(&self) -> Result<Vec<String>, JournalError> {
        self.inner.list().await
    }
    async fn write_head(&self, run_id: &str, head: &str) -> Result<(), JournalError> {
        self.inner.write_head(run_id, head).await
    }
    async fn read_head(&self, run_id: &str) -> Result<Option<String>, JournalError> {
        self.inner.read_head(run_id).await
    }
    async fn truncate_torn_tail(&self, run_id: &str, keep: u64) -> Result<(), JournalError> {
        self.inner.truncate_torn_tail(run_id, keep).await
    }
    async fn put_late(&self, run_id: &str, id: &str, body: &str) -> Result<(), JournalError> {
        self.inner.put_late(run_id, id, body).await
    }
    async fn read_late(&self, run_id: &str) -> Result<Vec<(String, String)>, JournalError> {
        self.inner.read_late(run_id).await
    }
    fn pipelined_head(&self) -> bool {
        self.inner.pipelined_head()
    }
    fn keys(&self) -> &RunKeys {
        &self.keys
    }
}
