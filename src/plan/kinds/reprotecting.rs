//! The data role's reprotection: what the one generic `reprotect` step
//! (`steps::reprotect`) asks of a data kind whose copies in the other
//! regions must follow the new primary again after a failover (RDS read
//! replicas made again, the old primary renamed out of the way; an Aurora
//! global database's members made its secondaries again, rebuilt after a
//! detach; Cloud SQL's former primary waited for until it rejoins, and the
//! DR replica designated).
//!
//! # Why a reconciler
//!
//! Each kind's reprotection was a step kind of its own, each with its own
//! loop, fences, waits and output; the promise that every stage reads the
//! cloud first (so that a re-run after a crash picks up where the last one
//! stopped, and a write whose answer was lost is not sent twice) was
//! written three times. A kind now answers only where its reprotection
//! stands, as read ([`Reprotecting::standing`]: the read is the kind's,
//! the decision a pure function in its module), and how to make the one
//! move it asks for ([`Reprotecting::make`]). The step owns the loop:
//! read, decide, act once (fenced), read again, until protected, refused,
//! or out of time. Every method is the kind's to answer: none has a
//! default.
//!
//! Nothing here deletes data: a copy in the way (an old primary, a
//! replica of it) is renamed out of the way ([`parked_id`]), kept.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloud::{CloudError, Clouds};

/// What a data kind's reprotection is, in words and calls.
#[derive(Debug, Clone, Copy)]
pub struct ReprotectAbout {
    /// What it protects, in a plan step's description, with `{primary}`
    /// and `{active}` for the names (`make every other region's instance
    /// a read replica of {primary} in {active}`).
    pub describe: &'static str,
    /// The calls a reprotection makes once.
    pub calls: &'static [&'static str],
    /// The model's slow operations it waits through.
    pub waits: &'static [&'static str],
    /// The call its waits poll.
    pub polls: &'static str,
}

/// What one reprotection protects: the primary in the active region and
/// the copy of every other region, each as its kind's steps address it
/// (`project/instance` for Cloud SQL, `global/member` for Aurora).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guarded {
    /// The primary (or writer): its region and address.
    pub primary: (String, String),
    /// Every other region's copy: (region, address), in plan order.
    pub others: Vec<(String, String)>,
    /// Whether the plan names one of them its primary's designated DR
    /// replica (Cloud SQL Enterprise Plus).
    pub dr: bool,
    /// The KMS key the plan names for a region's copy, by region
    /// (`kms_keys`): what an encrypted primary's copy there is encrypted
    /// with, a key of that region.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub keys: std::collections::BTreeMap<String, String>,
}

/// A copy that protects the primary, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// Its region.
    pub region: String,
    /// Its address.
    pub address: String,
    /// Its endpoint, when the provider says one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// One write a reprotection asks for: what the step fences, sends once
/// through [`Reprotecting::make`], and records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Move {
    /// The provider's call (`rds:ModifyDBInstance`), as fences, previews
    /// and costs name it.
    pub call: String,
    /// What it changes (an address).
    pub resource: String,
    /// Its region.
    pub region: String,
    /// What it is now, as read.
    pub now: String,
    /// What the move makes of it, in a sentence.
    pub says: String,
    /// Set when it renames a copy out of the way, data kept:
    /// `region/address -> new name`.
    pub parks: Option<String>,
    /// What people must know once it is made.
    pub warning: Option<String>,
    /// What the kind sends its call with: opaque to the step.
    pub payload: Value,
}

impl Move {
    /// The move `call` makes of `resource` in `region`: what it is `now`
    /// and what it `says` it makes of it, sent with `payload`.
    pub fn new(
        (resource, region): (&str, &str),
        call: &str,
        (now, says): (&str, String),
        payload: &impl Serialize,
    ) -> Move {
        Move {
            call: call.into(),
            resource: resource.into(),
            region: region.into(),
            now: now.into(),
            says,
            parks: None,
            warning: None,
            payload: serde_json::to_value(payload).unwrap_or_default(),
        }
    }

    /// The move as a rename of the copy `id` in `region` out of the way, as
    /// `parked`, with what people must know once it is made.
    pub fn parking(self, (region, id, parked): (&str, &str, &str), warning: String) -> Move {
        Move {
            parks: Some(parks(region, id, parked)),
            warning: Some(warning),
            ..self
        }
    }
}

/// How a rename out of the way is named, in a move and in the copies a
/// later read finds renamed: one text, so that a resume matches them.
pub fn parks(region: &str, id: &str, parked: &str) -> String {
    format!("{region}/{id} -> {parked}")
}

/// Where a reprotection stands, as its kind read and decided it.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Every other region's copy follows the primary (and, for a DR pair,
    /// one is its designated DR replica).
    Protected {
        /// The copies.
        copies: Vec<Guard>,
        /// The designated DR replica, for a DR pair.
        dr: Option<String>,
        /// Copies found renamed out of the way under this run's name (a
        /// rename made before a crash is said too): `region/id -> new
        /// id`, with what people must do about it.
        parked: Vec<(String, String)>,
    },
    /// Something under way must end first (a rename, a create, a former
    /// primary rejoining): what is waited for.
    Wait(String),
    /// One write to make.
    Act(Move),
    /// A provider operation of a reprotection's still under way (a
    /// resumed run's, or one whose answer was lost): followed to done,
    /// never sent again; its failure is the step's.
    Follow {
        /// The operation's name.
        operation: String,
        /// What it does, in a sentence.
        what: String,
        /// The resource it is on.
        resource: String,
        /// Its region.
        region: String,
    },
    /// Only a person can go on: why, the fix, and the resource and
    /// region errors name.
    Refuse {
        /// Why.
        why: String,
        /// What to do.
        hint: String,
        /// The resource it names.
        resource: String,
        /// Its region.
        region: String,
    },
}

impl Standing {
    /// A refusal of `resource` in `region`.
    pub fn refuse(
        why: impl Into<String>,
        hint: impl Into<String>,
        resource: &str,
        region: &str,
    ) -> Self {
        Standing::Refuse {
            why: why.into(),
            hint: hint.into(),
            resource: resource.to_string(),
            region: region.to_string(),
        }
    }
}

/// Whether a move was made already in this step (the cloud does not show
/// it yet): such a move is a wait, not a write.
pub type Made<'a> = &'a (dyn Fn(&Move) -> bool + Sync);

/// What comes next of the copies' own next steps (pure): a refusal
/// first (nothing else may be done), then a write not `made` yet
/// (independent copies are worked on side by side, not one after
/// another's wait), then a wait (a write made already is one); `None`
/// when every copy is protected.
pub fn first_of(
    each: impl IntoIterator<Item = Option<Standing>>,
    made: Made<'_>,
) -> Option<Standing> {
    let all: Vec<Standing> = each.into_iter().flatten().collect();
    let rank = |s: &Standing| match s {
        Standing::Refuse { .. } => 0,
        Standing::Act(m) if made(m) => 2,
        Standing::Act(_) | Standing::Follow { .. } => 1,
        Standing::Wait(_) => 2,
        Standing::Protected { .. } => 3,
    };
    all.into_iter().min_by_key(rank)
}

/// What the provider kept of a former primary that people must know (an
/// Aurora unplanned failover's snapshot): where it is, and why it matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// `region/id`.
    pub at: String,
    /// What people must do about it.
    pub warning: String,
}

/// The data role's reprotection of one kind.
#[async_trait]
pub trait Reprotecting: Sync {
    /// The kind's words and calls.
    fn about(&self) -> &'static ReprotectAbout;
    /// Reads the primary and every copy and says where the reprotection
    /// stands; `run_id` names what a copy in the way is renamed to, and
    /// `made` says which moves the step made already ([`first_of`]).
    async fn standing(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        run_id: &str,
        made: Made<'_>,
    ) -> Result<Standing, CloudError>;
    /// Makes `m`, one write [`Reprotecting::standing`] asked for; answers
    /// the provider's operation, when the call answers one.
    async fn make(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        m: &Move,
    ) -> Result<Option<String>, CloudError>;
    /// How its writes are answered: at once, or with a provider
    /// operation the step follows until it is done ([`super::Answers`]).
    fn answers(&self) -> super::Answers<'_>;
    /// What the primary or a copy at `address` in `region` is, in words
    /// (`primary (available)`, `absent`), for preflight: a region that
    /// does not answer cannot be written to.
    async fn read_one(
        &self,
        clouds: &Clouds,
        region: &str,
        address: &str,
    ) -> Result<String, CloudError>;
    /// What the provider kept of a former primary, read once protected
    /// (reads only).
    async fn kept(
        &self,
        clouds: &Clouds,
        g: &Guarded,
        run_id: &str,
    ) -> Result<Vec<Kept>, CloudError>;
}

/// One region's copy as a reprotection reads it: under the plan's id and
/// under the name it is parked as in this run ([`parked_id`]), so a
/// reprotection that crashed after a rename picks up where it stood. An
/// RDS instance and an Aurora member cluster are read alike.
#[derive(Debug, Clone)]
pub struct Parked<T> {
    /// Its region.
    pub region: String,
    /// The plan's id.
    pub id: String,
    /// The copy under it.
    pub now: Option<T>,
    /// The name it is parked as in this run.
    pub parked_id: String,
    /// The copy under that name.
    pub parked: Option<T>,
}

impl<T> Parked<T> {
    /// Reads copy `id` of `region` and its parked name in run `run_id`
    /// with `describe(name)`, a read in `region`.
    pub async fn read<F, Fut>(
        (region, id): (&str, &str),
        run_id: &str,
        describe: F,
    ) -> Result<Self, CloudError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, CloudError>>,
    {
        let parked_id = parked_id(id, run_id);
        Ok(Self {
            now: describe(id.to_string()).await?,
            parked: describe(parked_id.clone()).await?,
            region: region.to_string(),
            id: id.to_string(),
            parked_id,
        })
    }
}

/// Every copy of `copies` protects the primary (a backup standby's: no
/// endpoint, no DR pair); those found renamed out of the way in this run
/// are said, with the warning a parked copy carries.
pub fn protected_parked<'a, T: 'a>(
    copies: impl Iterator<Item = &'a Parked<T>> + Clone,
) -> Standing {
    let parked = (copies.clone())
        .filter(|c| c.parked.is_some())
        .map(|c| {
            let (id, region, to) = (&c.id, &c.region, &c.parked_id);
            (parks(region, id, to), parked_warning(id, region, to))
        })
        .collect();
    Standing::Protected {
        copies: copies
            .map(|c| Guard {
                region: c.region.clone(),
                address: c.id.clone(),
                endpoint: None,
            })
            .collect(),
        dr: None,
        parked,
    }
}

/// The name a copy in the way is renamed to (stable per run): `<id>-pre-`
/// and the run id's last four letters or digits, within RDS's 63.
pub fn parked_id(id: &str, run_id: &str) -> String {
    let tag: String = run_id
        .chars()
        .rev()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(4)
        .collect::<String>()
        .to_lowercase();
    let base: String = id.chars().take(63 - 9).collect();
    format!("{base}-pre-{tag}")
}

/// A database copy's role and state in words, as preflight shows it
/// (`primary (available)`, `replica of db (creating)`).
pub fn role_words(role: &crate::cloud::DbRole, state: &str) -> String {
    match role {
        crate::cloud::DbRole::Primary => format!("primary ({state})"),
        crate::cloud::DbRole::Replica(of) => format!("replica of {of} ({state})"),
    }
}

/// An RDS instance's role and state in words, as read (`absent` when
/// there is none): what the RDS kinds' [`Reprotecting::read_one`] says.
pub async fn rds_words(clouds: &Clouds, region: &str, id: &str) -> Result<String, CloudError> {
    let read = clouds.database.describe_instance(region, id).await?;
    Ok(read.map_or("absent".into(), |i| role_words(&i.role, &i.status)))
}

/// The warning a copy renamed out of the way carries: it no longer
/// replicates and takes writes on its own.
pub fn parked_warning(id: &str, region: &str, parked: &str) -> String {
    format!(
        "{id} in {region} was renamed {parked}, data kept: it no longer replicates and is writable on its own; stop anything that writes to it, and delete it once what it holds is saved"
    )
}

/// `m`'s payload as the kind's own type, or an error naming the call
/// (a move the kind did not make: never from a step).
pub fn payload_of<T: serde::de::DeserializeOwned>(m: &Move) -> Result<T, CloudError> {
    serde_json::from_value(m.payload.clone()).map_err(|e| {
        CloudError::new(
            "drctl",
            "reprotect",
            &m.resource,
            &m.region,
            crate::cloud::ErrorKind::Client,
            format!("not a move of this kind ({}): {e}", m.call),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(says: &str) -> Option<Standing> {
        Some(Standing::Act(Move {
            call: "x:Write".into(),
            resource: "r".into(),
            region: "g".into(),
            now: String::new(),
            says: says.into(),
            parks: None,
            warning: None,
            payload: Value::Null,
        }))
    }

    /// A refusal comes first, then a write not made yet, then a wait (a
    /// write made already is one); nothing left: protected.
    #[test]
    fn a_refusal_then_a_new_write_then_a_wait_come_next() {
        let none = |_: &Move| false;
        let wait = || Some(Standing::Wait("w".into()));
        let refuse = || Some(Standing::refuse("no", "fix", "r", "g"));
        assert!(matches!(
            first_of([wait(), act("a"), refuse()], &none),
            Some(Standing::Refuse { .. })
        ));
        assert!(matches!(
            first_of([wait(), act("a")], &none),
            Some(Standing::Act(_))
        ));
        // "a" was made and the cloud does not show it yet: "b", another
        // copy's, goes first rather than behind it.
        let made_a = |m: &Move| m.says == "a";
        let Some(Standing::Act(m)) = first_of([act("a"), act("b")], &made_a) else {
            panic!("a write")
        };
        assert_eq!(m.says, "b");
        assert!(matches!(
            first_of([act("a"), None], &made_a),
            Some(Standing::Act(_))
        ));
        assert!(first_of([None, None], &none).is_none());
    }

    #[test]
    fn a_parked_name_is_stable_per_run_and_fits_rds() {
        let run = "20261125T070000Z-payments-AB12";
        assert_eq!(parked_id("payments-db", run), "payments-db-pre-21ba");
        assert_eq!(parked_id("payments-db", run), parked_id("payments-db", run));
        let long = "a".repeat(63);
        assert_eq!(parked_id(&long, run).len(), 63);
    }
}
