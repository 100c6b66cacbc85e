//! The run key's rules for journal lines: the purposes a record, a head and
//! a late fact are signed for, how a line carries its signature, and who
//! may write ([`RunKeys::may_write`]). Kept apart from [`super::trust`]'s
//! store wrapper so that the chain (which verifies lines) and the store
//! trait (which carries the keys) can use them without depending on the
//! wrapper that depends on them (docs/state.md, "Who can forge what").

use std::borrow::Cow;

use super::error::JournalError;
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
