//! Board objects signed and opened under the operators' trust: who may
//! sign what ([`Trust`]: the listed observers, their places and keys, the
//! people's keys, the starters), the envelope an object is stored in
//! ([`seal`]) and what a reader learns of its signer ([`open`]).
//!
//! Why apart from the board's rules (`shared.rs`): anyone who can write to
//! the state's bucket can write any bytes on the board, so every object
//! carries its writer's signature, and every reader judges an object by
//! who signed it. The signature covers the object's board key and its
//! bytes, for a purpose per kind of object (`watch-report`,
//! `watch-proposal`, ...): a signed object copied to another key (another
//! observer's report, another episode's proposal, another window's
//! velocity slot) does not verify. This module is that one rule; what a
//! reader does with an object that does not verify is the board's.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sign::{PublicKey, SecretKey, VerifyError};

/// An observer the operators listed (`[[watch.observers]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Its name: what its reports, proposals and claims must name.
    pub name: String,
    /// Where it runs, when given (a quorum spans distinct places).
    pub place: Option<String>,
    /// The keys it may sign with (several during a rotation).
    pub keys: Vec<PublicKey>,
}

/// Whose signatures count on the board.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// The listed observers.
    pub observers: Vec<Listed>,
    /// The people's keys (the operators' run keys): they may sign vetoes.
    pub people: Vec<PublicKey>,
    /// The listed observers that alone may propose and claim a start (the
    /// starter principals, `[watch] starters`); they do not vote. Empty:
    /// every listed observer may.
    pub starters: Vec<String>,
}

impl Trust {
    /// Whether `name` may propose and claim the start of a failover: a
    /// starter, or any listed observer where no starter is named.
    pub fn may_start(&self, name: &str) -> bool {
        self.starters.is_empty() || self.starters.iter().any(|s| s == name)
    }

    /// Whether `name` is a starter (it does not vote).
    pub fn is_starter(&self, name: &str) -> bool {
        self.starters.iter().any(|s| s == name)
    }

    /// The listed observer named `name`.
    pub fn listed(&self, name: &str) -> Option<&Listed> {
        self.observers.iter().find(|o| o.name == name)
    }

    /// Each listed observer's place: its `place`, or its own name (an
    /// observer whose place is not given is a place of its own).
    pub fn places(&self) -> BTreeMap<String, String> {
        self.observers
            .iter()
            .map(|o| {
                let place = o.place.clone().unwrap_or_else(|| o.name.clone());
                (o.name.clone(), place)
            })
            .collect()
    }

    /// The keys a veto may be signed with: the people's and the observers'.
    pub fn keys_for_vetoes(&self) -> Vec<PublicKey> {
        self.keys(Kind::Veto)
    }

    /// The listed observer holding the key named `id`.
    fn owner(&self, id: &str) -> Option<&Listed> {
        self.observers
            .iter()
            .find(|o| o.keys.iter().any(|k| k.id() == id))
    }

    /// The keys that may sign an object of `kind`.
    fn keys(&self, kind: Kind) -> Vec<PublicKey> {
        let mut keys: Vec<PublicKey> = self
            .observers
            .iter()
            .flat_map(|o| o.keys.iter().cloned())
            .collect();
        if kind == Kind::Veto {
            keys.extend(self.people.iter().cloned());
        }
        keys
    }
}

/// Who signed an object that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// A listed observer.
    Observer(String),
    /// A person, with the operators' run key (its id).
    Person(String),
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Observer(n) => write!(f, "observer {n}"),
            Self::Person(id) => write!(f, "the run key {id}"),
        }
    }
}

/// The kinds of board objects: each signed for a purpose of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Report,
    Proposal,
    Veto,
    Start,
    Velocity,
    Marker,
}

impl Kind {
    /// The kind of the object at board key `key`.
    fn of(key: &str) -> Self {
        let file = key.rsplit('/').next().unwrap_or(key);
        if key.starts_with("reports/") {
            Self::Report
        } else if key.starts_with("velocity/") {
            Self::Velocity
        } else if file == "proposal.json" {
            Self::Proposal
        } else if file == "veto.json" {
            Self::Veto
        } else if file == "start.json" {
            Self::Start
        } else {
            Self::Marker
        }
    }

    /// The signature's purpose (`crate::sign`'s framing).
    fn purpose(self) -> &'static str {
        match self {
            Self::Report => "watch-report",
            Self::Proposal => "watch-proposal",
            Self::Veto => "watch-veto",
            Self::Start => "watch-start",
            Self::Velocity => "watch-velocity",
            Self::Marker => "watch-marker",
        }
    }
}

/// A signed object as stored: the object's JSON text and its signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    /// The object, as JSON text.
    payload: String,
    /// `ed25519:<key id>:<signature>` over the board key and the payload;
    /// empty: unsigned (a veto by a person without a key).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    signature: String,
}

/// What is signed: the board key, a newline, the payload.
fn message(key: &str, payload: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(key.len() + 1 + payload.len());
    m.extend_from_slice(key.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(payload.as_bytes());
    m
}

/// The bytes stored at board key `key` for `value`, signed with `signer`
/// (unsigned without one). Deterministic: the same writer's same object
/// has the same bytes, which is how a create-only write recognizes its
/// own ([`create_once`]).
pub fn seal<T: Serialize>(signer: Option<&SecretKey>, key: &str, value: &T) -> Bytes {
    let payload = serde_json::to_string(value).unwrap_or_default();
    let signature = signer
        .map(|k| k.sign(Kind::of(key).purpose(), &message(key, &payload)))
        .unwrap_or_default();
    Bytes::from(serde_json::to_vec(&Envelope { payload, signature }).unwrap_or_default())
}

/// An object read back from the board.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened<T> {
    /// The object, when its bytes are one.
    pub value: Option<T>,
    /// Who signed it, or why that is not known.
    pub signer: Result<Signer, String>,
}

/// Reads the object stored at `key`: its value and who signed it.
pub fn open<T: DeserializeOwned>(trust: &Trust, key: &str, body: &[u8]) -> Opened<T> {
    let kind = Kind::of(key);
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        // Not an envelope: unsigned (as an older drctl wrote it), or junk.
        return Opened {
            value: serde_json::from_slice(body).ok(),
            signer: Err("not signed".into()),
        };
    };
    let value = serde_json::from_str(&env.payload).ok();
    let keys = trust.keys(kind);
    let signer = match crate::sign::verify(
        &keys,
        kind.purpose(),
        &message(key, &env.payload),
        Some(&env.signature),
    ) {
        Ok(k) => Ok(match trust.owner(&k.id()) {
            Some(o) => Signer::Observer(o.name.clone()),
            None => Signer::Person(k.id()),
        }),
        Err(VerifyError::Unsigned) => Err("not signed".into()),
        Err(VerifyError::Malformed) => Err("its signature is malformed".into()),
        Err(VerifyError::UnlistedKey(id)) if trust.people.iter().any(|k| k.id() == id) => Err(
            format!("signed by the run key {id}, which may sign vetoes only"),
        ),
        Err(VerifyError::UnlistedKey(id)) => {
            Err(format!("signed by key {id}, which is not listed"))
        }
        Err(VerifyError::Mismatch(id) | VerifyError::Unbound(id)) => {
            let who = trust.owner(&id).map_or_else(
                || "the run key".to_string(),
                |o| format!("{}'s key", o.name),
            );
            Err(format!(
                "bad signature: {who} {id} did not sign these bytes here (changed, or copied from another object)"
            ))
        }
    };
    Opened { value, signer }
}

/// Whether `signer` is the listed observer `name`, or why not.
pub(super) fn by_observer(signer: &Result<Signer, String>, name: &str) -> Result<(), String> {
    match signer {
        Ok(Signer::Observer(n)) if n == name => Ok(()),
        Ok(Signer::Observer(n)) => Err(format!("signed by {n}'s key over another name ({name})")),
        Ok(Signer::Person(id)) => Err(format!("signed by the run key {id}, not an observer's")),
        Err(why) => Err(why.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_object_is_signed_for_a_purpose_of_its_own() {
        let kinds = [
            "reports/p/a.json",
            "episodes/p/r/s/0/proposal.json",
            "episodes/p/r/s/0/veto.json",
            "episodes/p/r/s/0/start.json",
            "velocity/1/0.json",
            "episodes/p/r/s/0/closed-a.json",
        ]
        .map(|k| Kind::of(k).purpose());
        let mut distinct = kinds.to_vec();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), kinds.len(), "{kinds:?}");
    }
}
