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

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;

use super::error::JournalError;
use super::store::JournalStore;
use crate::sign::{PublicKey, SecretKey, VerifyError};

/// The purpose a record line is signed for.
pub const RECORD: &str = "journal-record";
/// The purpose a head is signed for.
pub const HEAD: &str = "journal-head";
/// The purpose a late fact is signed for.
pub const LATE: &str = "late-fact";

/// The run key as a journal's writers and readers hold it.
#[derive(Debug, Clone, Default)]
pub struct RunKeys {
    /// The secret half, when this process holds it: what it writes, it signs.
    pub signer: Option<SecretKey>,
    /// The public halves records, heads and late facts may be signed by
    /// (several during a rotation). Empty: signatures are not checked.
    pub listed: Vec<PublicKey>,
}

/// No keys: nothing signed, nothing checked (the stores' default).
pub static NO_KEYS: RunKeys = RunKeys {
    signer: None,
    listed: Vec::new(),
};

impl RunKeys {
    /// Keys from their parts.
    pub fn new(signer: Option<SecretKey>, listed: Vec<PublicKey>) -> Self {
        Self { signer, listed }
    }

    /// Whether signatures are checked (public keys are listed).
    pub fn checks(&self) -> bool {
        !self.listed.is_empty()
    }

    /// Refuses a writer of run `run_id`'s journal that would leave it
    /// unverifiable: public keys are listed and this process does not hold
    /// the run key.
    pub fn may_write(&self, run_id: &str) -> Result<(), JournalError> {
        if self.checks() && self.signer.is_none() {
            return Err(JournalError::Unkeyed {
                run_id: run_id.to_string(),
                detail: "[keys] run_public is configured, so every journal must be signed, and this process does not hold the run key".into(),
            });
        }
        Ok(())
    }
}

/// The bytes a record or late fact signature covers: the run id, a NUL,
/// the line as it reads without its signature.
fn message(run_id: &str, unsigned: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(run_id.len() + 1 + unsigned.len());
    m.extend_from_slice(run_id.as_bytes());
    m.push(0);
    m.extend_from_slice(unsigned.as_bytes());
    m
}

/// The last field of a signed line: `,"sig":"<signature>"}`.
const SIG_FIELD: &str = ",\"sig\":\"";

/// `line` (one JSON object, as serialized) with its signature for
/// `purpose` as its last field, `"sig"`.
pub fn sign_line(line: &str, purpose: &str, run_id: &str, key: &SecretKey) -> String {
    let sig = key.sign(purpose, &message(run_id, line));
    let body = line.strip_suffix('}').unwrap_or(line);
    format!("{body}{SIG_FIELD}{sig}\"}}")
}

/// A line without its signature, and the signature, when it ends with one.
/// A JSON string never holds an unescaped quote, so the last field is
/// found by text; the characters of a signature are checked so that a
/// line that merely ends like one is taken as unsigned.
pub fn split_signed(line: &str) -> (Cow<'_, str>, Option<&str>) {
    let Some(rest) = line.strip_suffix("\"}") else {
        return (Cow::Borrowed(line), None);
    };
    let Some(at) = rest.rfind(SIG_FIELD) else {
        return (Cow::Borrowed(line), None);
    };
    let sig = &rest[at + SIG_FIELD.len()..];
    let plausible = !sig.is_empty()
        && sig
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'+' | b'/' | b'='));
    if !plausible {
        return (Cow::Borrowed(line), None);
    }
    (Cow::Owned(format!("{}}}", &rest[..at])), Some(sig))
}

/// Checks a signed line of run `run_id` against `keys`: the signer's key id.
pub fn verify_line(
    keys: &[PublicKey],
    purpose: &str,
    run_id: &str,
    line: &str,
) -> Result<String, VerifyError> {
    let (unsigned, sig) = split_signed(line);
    crate::sign::verify(keys, purpose, &message(run_id, &unsigned), sig).map(PublicKey::id)
}

/// The key id a line's signature names, unchecked (what a reader without
/// listed keys can say).
pub fn line_signer(line: &str) -> Option<String> {
    split_signed(line)
        .1
        .and_then(crate::sign::signer_id)
        .map(str::to_string)
}

/// Why a signature was refused, in words for a journal's reader.
pub fn refusal(what: &str, e: &VerifyError) -> String {
    match e {
        VerifyError::Unsigned => format!(
            "{what} is not signed: written without the run key (anyone who can write the state could have written it)"
        ),
        VerifyError::Malformed => format!("{what} carries a malformed signature"),
        VerifyError::UnlistedKey(id) => {
            format!("{what} is signed by key {id}, which is not in [keys] run_public")
        }
        VerifyError::Mismatch(id) => format!(
            "{what}'s signature by key {id} does not verify: it was changed after it was signed"
        ),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_line_splits_back_into_its_bytes_and_verifies_only_for_its_run() {
        let k = SecretKey::generate();
        let line = r#"{"seq":0,"event":{"type":"interrupted","reason":"a \"sig\":\"x\"}"}}"#;
        let signed = sign_line(line, RECORD, "r1", &k);
        assert!(signed.ends_with("\"}"), "{signed}");
        let (unsigned, sig) = split_signed(&signed);
        assert_eq!(unsigned, line);
        assert!(sig.is_some());
        let keys = [k.public()];
        assert_eq!(
            verify_line(&keys, RECORD, "r1", &signed),
            Ok(k.public().id())
        );
        assert_eq!(line_signer(&signed), Some(k.public().id()));
        // Another run, another purpose, an edited line: refused.
        assert!(verify_line(&keys, RECORD, "r2", &signed).is_err());
        assert!(verify_line(&keys, HEAD, "r1", &signed).is_err());
        let edited = signed.replace("interrupted", "resumed");
        assert_eq!(
            verify_line(&keys, RECORD, "r1", &edited),
            Err(VerifyError::Mismatch(k.public().id()))
        );
        // An unsigned line is one, even when it ends like a string field.
        assert_eq!(split_signed(line).1, None);
        assert_eq!(
            verify_line(&keys, RECORD, "r1", line),
            Err(VerifyError::Unsigned)
        );
        let tricky = r#"{"a":"b","sig":"not a signature!"}"#;
        assert_eq!(split_signed(tricky).1, None);
    }

    #[test]
    fn a_writer_without_the_key_is_refused_only_where_keys_are_listed() {
        let k = SecretKey::generate();
        assert!(NO_KEYS.may_write("r").is_ok());
        assert!(RunKeys::new(Some(k.clone()), vec![]).may_write("r").is_ok());
        assert!(
            RunKeys::new(Some(k.clone()), vec![k.public()])
                .may_write("r")
                .is_ok()
        );
        let e = RunKeys::new(None, vec![k.public()])
            .may_write("r")
            .unwrap_err();
        assert!(e.to_string().contains("does not hold the run key"), "{e}");
    }
}
