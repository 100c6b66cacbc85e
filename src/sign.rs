//! Ed25519 keys: who may speak for whom.
//!
//! Anything drctl trusts from shared state (an observer's report, a
//! journal's head, an evidence manifest) is only as good as who could have
//! written it. A bucket writer can write any bytes, so the bytes must carry
//! proof of their author: a signature by a key whose public half the
//! operators listed. Signatures rather than a shared MAC, so that whoever
//! *checks* (an observer reading journal heads, an auditor verifying
//! evidence) needs only public keys and cannot forge what it checks.
//!
//! Every signature is made over a *purpose* and the message
//! (`drctl/v1/<purpose>\0<message>`), so a signature made for one kind of
//! object (a report) can never be replayed as another (a journal head).
//!
//! Text forms (one line each, safe in TOML, environment variables and JSON):
//! - a public key: `ed25519:<base64 of the 32-byte key>`;
//! - a secret key: `ed25519-secret:<base64 of the 32-byte seed>`, or a
//!   PKCS#8 PEM file as `openssl genpkey -algorithm ed25519` writes it;
//! - a signature: `ed25519:<key id>:<base64 of the 64-byte signature>`,
//!   where the key id (first 16 hex digits of the key's SHA-256) lets a
//!   verifier holding several keys (a rotation) pick the right one and say
//!   which key signed.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why a key could not be loaded or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not a key of the expected form.
    #[error("{what}: {why} (expected {expected})")]
    Malformed {
        /// Where the text came from (a setting's name, a file).
        what: String,
        /// What is wrong with it.
        why: String,
        /// The form that was expected.
        expected: &'static str,
    },
    /// A key file could not be read.
    #[error("cannot read the key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file others may read or write, or its group write (as ssh
    /// refuses a private key readable by others: whoever can read it can
    /// sign as its holder).
    #[error(
        "the key file {path} is open to others (mode {mode:o}): only its owner (and its group, to read) may have it"
    )]
    Open {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// There is no signature at all.
    #[error("not signed")]
    Unsigned,
    /// The signature text is not of the form `ed25519:<key id>:<signature>`.
    #[error("the signature is malformed")]
    Malformed,
    /// Signed by a key that is not among the listed ones.
    #[error("signed by key {0}, which is not listed")]
    UnlistedKey(String),
    /// A listed key's signature that does not match the bytes.
    #[error("the signature by key {0} does not verify (the bytes were changed)")]
    Mismatch(String),
    /// A listed key's signature of the bytes for no deployment, where
    /// signatures must name this one (`crate::journal::RunKeys::verify`).
    #[error("the signature by key {0} names no deployment")]
    Unbound(String),
}

/// A public key: what operators list to say who may sign.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses `ed25519:<base64>` or a PEM `PUBLIC KEY` block; `what` names
    /// the source in the error.
    pub fn parse(text: &str, what: &str) -> Result<Self, KeyError> {
        const EXPECTED: &str = "ed25519:<base64 of 32 bytes> (drctl watch keygen prints one)";
        let bad = |why: &str| KeyError::Malformed {
            what: what.to_string(),
            why: why.to_string(),
            expected: EXPECTED,
        };
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            use ed25519_dalek::pkcs8::DecodePublicKey as _;
            return ed25519_dalek::VerifyingKey::from_public_key_pem(text)
                .map(Self)
                .map_err(|e| bad(&format!("not an Ed25519 public key PEM ({e})")));
        }
        let arr = bytes32(text, "ed25519:").map_err(bad)?;
        ed25519_dalek::VerifyingKey::from_bytes(&arr)
            .map(Self)
            .map_err(|_| bad("not a point of the curve"))
    }

    /// The key's text form, `ed25519:<base64>`.
    pub fn to_text(&self) -> String {
        format!("ed25519:{}", B64.encode(self.0.as_bytes()))
    }

    /// A short, stable name of the key: the first 16 hex digits of its SHA-256.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0.as_bytes())[..8])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A secret key: it signs. Never printed (its `Debug` shows the key id).
#[derive(Clone)]
pub struct SecretKey(ed25519_dalek::SigningKey);

impl SecretKey {
    /// A new random key pair (from the operating system's generator).
    pub fn generate() -> Self {
        use rand::{RngCore as _, TryRngCore as _};
        let mut seed = [0u8; 32];
        if rand::rngs::OsRng.try_fill_bytes(&mut seed).is_err() {
            // No OS generator answered: the thread's CSPRNG (seeded by it).
            rand::rng().fill_bytes(&mut seed);
        }
        let k = ed25519_dalek::SigningKey::from_bytes(&seed);
        seed.fill(0);
        Self(k)
    }

    /// Parses `ed25519-secret:<base64 seed>` or a PKCS#8 PEM `PRIVATE KEY`.
    pub fn parse(text: &str, what: &str) -> Result<Self, KeyError> {
        const EXPECTED: &str = "ed25519-secret:<base64 of 32 bytes> or a PKCS#8 PEM \
                                (`drctl watch keygen` or `openssl genpkey -algorithm ed25519`)";
        let bad = |why: &str| KeyError::Malformed {
            what: what.to_string(),
            why: why.to_string(),
            expected: EXPECTED,
        };
        let text = text.trim();
        if text.starts_with("-----BEGIN") {
            use ed25519_dalek::pkcs8::DecodePrivateKey as _;
            return ed25519_dalek::SigningKey::from_pkcs8_pem(text)
                .map(Self)
                .map_err(|e| bad(&format!("not an Ed25519 private key PEM ({e})")));
        }
        let arr = bytes32(text, "ed25519-secret:").map_err(bad)?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&arr)))
    }

    /// The secret's text form, `ed25519-secret:<base64 seed>`.
    pub fn to_text(&self) -> String {
        format!("ed25519-secret:{}", B64.encode(self.0.to_bytes()))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message` for `purpose`: `ed25519:<key id>:<base64 signature>`.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> String {
        let sig = self.0.sign(&framed(purpose, message));
        format!(
            "ed25519:{}:{}",
            self.public().id(),
            B64.encode(sig.to_bytes())
        )
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public().id())
    }
}

/// The 32 bytes of a one-line key text `<prefix><base64>`, or why not.
fn bytes32(text: &str, prefix: &str) -> Result<[u8; 32], &'static str> {
    let b64 = text.strip_prefix(prefix).ok_or(if prefix == "ed25519:" {
        "does not start with `ed25519:`"
    } else {
        "does not start with `ed25519-secret:`"
    })?;
    let bytes = B64.decode(b64).map_err(|_| "not base64")?;
    bytes.try_into().map_err(|_| "not 32 bytes long")
}

/// The bytes actually signed: the purpose, a NUL, the message.
fn framed(purpose: &str, message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(10 + purpose.len() + 1 + message.len());
    v.extend_from_slice(b"drctl/v1/");
    v.extend_from_slice(purpose.as_bytes());
    v.push(0);
    v.extend_from_slice(message);
    v
}

/// The key id a signature names, if it is well formed.
pub fn signer_id(signature: &str) -> Option<&str> {
    let rest = signature.strip_prefix("ed25519:")?;
    let (id, _) = rest.split_once(':')?;
    Some(id)
}

/// Checks `signature` over `message` for `purpose` against `keys`; on
/// success, the key that signed.
pub fn verify<'k>(
    keys: &'k [PublicKey],
    purpose: &str,
    message: &[u8],
    signature: Option<&str>,
) -> Result<&'k PublicKey, VerifyError> {
    let Some(signature) = signature.filter(|s| !s.is_empty()) else {
        return Err(VerifyError::Unsigned);
    };
    let rest = signature
        .strip_prefix("ed25519:")
        .ok_or(VerifyError::Malformed)?;
    let (id, sig) = rest.split_once(':').ok_or(VerifyError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| VerifyError::Malformed)?;
    let sig = ed25519_dalek::Signature::from_slice(&sig).map_err(|_| VerifyError::Malformed)?;
    let Some(key) = keys.iter().find(|k| k.id() == id) else {
        return Err(VerifyError::UnlistedKey(id.chars().take(16).collect()));
    };
    key.0
        .verify(&framed(purpose, message), &sig)
        .map(|()| key)
        .map_err(|_| VerifyError::Mismatch(key.id()))
}

/// Loads a secret key from `file` when given, else from the environment
/// variable `env`; `None` when neither holds one.
pub fn load_secret(env: &str, file: Option<&Path>) -> Result<Option<SecretKey>, KeyError> {
    if let Some(path) = file {
        let text = read_secret_file(path)?;
        return SecretKey::parse(&text, &path.display().to_string()).map(Some);
    }
    match std::env::var(env) {
        Ok(t) if !t.trim().is_empty() => SecretKey::parse(&t, &format!("${env}")).map(Some),
        _ => Ok(None),
    }
}

/// The text of secret key file `path`, refused when others may read or
/// write it, or its group write it (on Unix; `chmod 600` fixes it), as ssh
/// refuses such a private key. Unlike ssh, a group may read it: Kubernetes
/// mounts a secret volume's files group-readable (0440) whenever the pod
/// sets `fsGroup`, whatever `defaultMode` says, and the pod's own group is
/// not others.
pub fn read_secret_file(path: &Path) -> Result<String, KeyError> {
    let file = |source| KeyError::File {
        path: path.to_path_buf(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_err(file)?.permissions().mode() & 0o777;
        if mode & 0o027 != 0 {
            return Err(KeyError::Open {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    std::fs::read_to_string(path).map_err(file)
}

/// Parses a list of public keys; `what` names the setting in errors.
pub fn parse_publics(texts: &[String], what: &str) -> Result<Vec<PublicKey>, KeyError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| PublicKey::parse(t, &format!("{what}[{i}]")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_key_and_only_for_its_purpose_and_bytes() {
        let k = SecretKey::generate();
        let keys = vec![k.public()];
        let s = k.sign("head", b"abc");
        assert_eq!(verify(&keys, "head", b"abc", Some(&s)).unwrap(), &keys[0]);
        assert_eq!(
            verify(&keys, "head", b"abd", Some(&s)),
            Err(VerifyError::Mismatch(keys[0].id()))
        );
        assert_eq!(
            verify(&keys, "report", b"abc", Some(&s)),
            Err(VerifyError::Mismatch(keys[0].id()))
        );
        assert_eq!(
            verify(&keys, "head", b"abc", None),
            Err(VerifyError::Unsigned)
        );
        assert_eq!(
            verify(&keys, "head", b"abc", Some("ed25519:zz")),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn a_key_that_is_not_listed_is_named_and_refused() {
        let listed = SecretKey::generate();
        let other = SecretKey::generate();
        let s = other.sign("report", b"x");
        assert_eq!(
            verify(&[listed.public()], "report", b"x", Some(&s)),
            Err(VerifyError::UnlistedKey(other.public().id()))
        );
        assert_eq!(signer_id(&s), Some(other.public().id().as_str()));
    }

    #[test]
    fn several_listed_keys_during_a_rotation_each_verify() {
        let old = SecretKey::generate();
        let new = SecretKey::generate();
        let keys = vec![old.public(), new.public()];
        for k in [&old, &new] {
            let s = k.sign("report", b"x");
            assert_eq!(
                verify(&keys, "report", b"x", Some(&s)).unwrap(),
                &k.public()
            );
        }
    }

    #[test]
    fn text_forms_round_trip_and_bad_text_is_a_clear_error() {
        let k = SecretKey::generate();
        let again = SecretKey::parse(&k.to_text(), "t").unwrap();
        assert_eq!(again.public(), k.public());
        let p = PublicKey::parse(&k.public().to_text(), "t").unwrap();
        assert_eq!(p, k.public());
        let e = PublicKey::parse("ed25519:AAAA", "[keys] run_public[0]").unwrap_err();
        assert!(e.to_string().contains("run_public[0]"), "{e}");
        assert!(e.to_string().contains("32 bytes"), "{e}");
        assert!(SecretKey::parse("hunter2", "x").is_err());
        assert!(!format!("{k:?}").contains(&k.to_text()));
    }

    #[test]
    fn an_openssl_pem_key_is_read() {
        // `openssl genpkey -algorithm ed25519` (RFC 8410 test vector's seed).
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let k = SecretKey::parse(pem, "pem").unwrap();
        let s = k.sign("p", b"m");
        assert!(verify(&[k.public()], "p", b"m", Some(&s)).is_ok());
    }

    /// Regression (issue 39): a key file anyone on the host could read was
    /// taken: its holder's signatures were everyone's. As ssh does, a file
    /// open to others (or writable by its group) is refused, naming the
    /// mode; a group may read it (a Kubernetes secret with `fsGroup`).
    #[cfg(unix)]
    #[test]
    fn regression_a_key_file_open_to_others_was_taken() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.key");
        std::fs::write(&path, SecretKey::generate().to_text()).unwrap();
        for open in [0o644, 0o604, 0o660, 0o606, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(open)).unwrap();
            let e = load_secret("DRCTL_NO_SUCH_VARIABLE", Some(&path)).unwrap_err();
            assert!(
                matches!(e, KeyError::Open { mode, .. } if mode == open),
                "{e}"
            );
            assert!(e.to_string().contains(&format!("{open:o}")), "{e}");
        }
        for closed in [0o600, 0o400, 0o440, 0o640] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(closed)).unwrap();
            assert!(
                load_secret("DRCTL_NO_SUCH_VARIABLE", Some(&path))
                    .unwrap()
                    .is_some()
            );
        }
    }
}
