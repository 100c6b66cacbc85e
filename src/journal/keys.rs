//! The run key's rules for journal lines: the purposes a record, a head and
//! a late fact are signed for, how a line carries its signature, and who
//! may write ([`RunKeys::may_write`]). Kept apart from [`super::trust`]'s
//! store wrapper so that the chain (which verifies lines) and the store
//! trait (which carries the keys) can use them without depending on the
//! wrapper that depends on them (docs/state.md, "Who can forge what").
//!
//! A signature also binds the deployment ([`RunKeys::domain`]: `[keys]
//! domain`, else the state bucket's URL): the purpose signed is
//! `journal-record@<domain>`, so a journal one deployment signed (staging)
//! does not verify in another's state (production) even where both list
//! the same run key. Journals signed before signatures named their
//! deployment verify only where the operators say they may
//! (`[keys] accept_unbound`).

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
    /// The deployment signatures are bound to (`[keys] domain`, else the
    /// state bucket's URL); empty: none (a local state directory, tests).
    pub domain: String,
    /// Whether a signature bound to no deployment (made before signatures
    /// named one) still verifies (`[keys] accept_unbound`).
    pub accept_unbound: bool,
}

/// No keys: nothing signed, nothing checked (the stores' default).
pub static NO_KEYS: RunKeys = RunKeys {
    signer: None,
    listed: Vec::new(),
    domain: String::new(),
    accept_unbound: false,
};

impl RunKeys {
    /// Keys from their parts, bound to no deployment.
    pub fn new(signer: Option<SecretKey>, listed: Vec<PublicKey>) -> Self {
        Self {
            signer,
            listed,
            ..Self::default()
        }
    }

    /// These keys, their signatures bound to the deployment `domain`; with
    /// `accept_unbound`, signatures bound to none still verify.
    pub fn bound(mut self, domain: &str, accept_unbound: bool) -> Self {
        self.domain = domain.to_string();
        self.accept_unbound = accept_unbound;
        self
    }

    /// The purpose `base` ([`RECORD`], [`HEAD`], [`LATE`]) is signed for
    /// here: `<base>@<domain>`, or `base` when bound to no deployment.
    pub fn purpose(&self, base: &str) -> String {
        if self.domain.is_empty() {
            base.to_string()
        } else {
            format!("{base}@{}", self.domain)
        }
    }

    /// Checks `sig` over `message` for `base` against the listed keys:
    /// the key that signed. A signature that verifies only bound to no
    /// deployment is [`VerifyError::Unbound`], unless such are accepted.
    pub fn verify(
        &self,
        base: &str,
        message: &[u8],
        sig: Option<&str>,
    ) -> Result<&PublicKey, VerifyError> {
        let bound = crate::sign::verify(&self.listed, &self.purpose(base), message, sig);
        match bound {
            Err(VerifyError::Mismatch(id)) if !self.domain.is_empty() => {
                match crate::sign::verify(&self.listed, base, message, sig) {
                    Ok(k) if self.accept_unbound => Ok(k),
                    Ok(_) => Err(VerifyError::Unbound(id)),
                    Err(_) => Err(VerifyError::Mismatch(id)),
                }
            }
            other => other,
        }
    }

    /// Checks a signed line of run `run_id` for `base`: the signer's key id.
    pub fn verify_line(&self, base: &str, run_id: &str, line: &str) -> Result<String, VerifyError> {
        let (unsigned, sig) = split_signed(line);
        self.verify(base, &message(run_id, &unsigned), sig)
            .map(PublicKey::id)
    }

    /// `line` of run `run_id` signed for `base` with the run key, bound to
    /// this deployment; as it is when this process does not hold the key.
    pub fn sign_line(&self, line: &str, base: &str, run_id: &str) -> String {
        match &self.signer {
            Some(key) => sign_line(line, &self.purpose(base), run_id, key),
            None => line.to_string(),
        }
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
            "{what}'s signature by key {id} does not verify: it was changed after it was signed, or signed for another deployment (another `[keys] domain` or state)"
        ),
        VerifyError::Unbound(id) => format!(
            "{what} is signed by key {id} for no deployment: written before signatures named their deployment, or copied from another state (hint: `[keys] accept_unbound = true` reads journals written before; docs/security.md)"
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

    /// Regression (issue 39): a signature covered the run id and the line,
    /// not the deployment: a journal staging signed verified in
    /// production's state wherever both listed the same run key.
    #[test]
    fn regression_a_signature_did_not_name_its_deployment() {
        let k = SecretKey::generate();
        let line = r#"{"seq":0,"event":{"type":"started"}}"#;
        let keys = |domain: &str, accept: bool| {
            RunKeys::new(Some(k.clone()), vec![k.public()]).bound(domain, accept)
        };
        let staging = keys("s3://staging-state/drctl", false);
        let production = keys("s3://prod-state/drctl", false);
        let signed = staging.sign_line(line, RECORD, "r1");
        assert_eq!(
            staging.verify_line(RECORD, "r1", &signed),
            Ok(k.public().id())
        );
        let e = production.verify_line(RECORD, "r1", &signed).unwrap_err();
        assert_eq!(e, VerifyError::Mismatch(k.public().id()));
        assert!(refusal("the record", &e).contains("another deployment"));
        // Accepting unbound signatures does not accept another deployment's.
        let lenient = keys("s3://prod-state/drctl", true);
        assert!(lenient.verify_line(RECORD, "r1", &signed).is_err());
        // A line signed before signatures named a deployment: refused,
        // named as such, unless the operators accept those.
        let old = sign_line(line, RECORD, "r1", &k);
        let e = production.verify_line(RECORD, "r1", &old).unwrap_err();
        assert_eq!(e, VerifyError::Unbound(k.public().id()));
        assert!(refusal("the record", &e).contains("accept_unbound"));
        assert_eq!(lenient.verify_line(RECORD, "r1", &old), Ok(k.public().id()));
        // Bound to none (a local state directory), as before.
        let none = RunKeys::new(Some(k.clone()), vec![k.public()]);
        assert_eq!(none.verify_line(RECORD, "r1", &old), Ok(k.public().id()));
        assert_eq!(none.purpose(HEAD), HEAD);
        assert_eq!(
            production.purpose(HEAD),
            "journal-head@s3://prod-state/drctl"
        );
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
