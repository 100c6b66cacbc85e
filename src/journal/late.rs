//! Late facts: what is learned about a run by a process that does not hold
//! it, stored beside its journal instead of in it.
//!
//! # Why beside, not in
//!
//! A journal has one writer: the process that holds the run's plans (the
//! engine, a resume). Anyone else who appended to it (a retroactive
//! approval while an emergency failover still runs, `notify flush` from
//! cron, an evidence verification while a failed run is being resumed)
//! would race that writer for the next record number: on a directory two
//! records with the same `seq` break the chain, on a bucket the owner's
//! own next record is refused and its run ends. So such facts are written
//! as **one create-only object per fact** next to the journal
//! (`runs/<run>.late/<id>.json` in a directory, `runs/<run>/late/<id>.json`
//! in a bucket). Two late writers never collide (each fact has its own,
//! random id), and the owner never sees them while it appends.
//!
//! # What may be late
//!
//! Only facts that change no step of the run ([`is_late`]): a retroactive
//! approval, a notification journaled by someone who is not the run (its
//! id is derived from the records, so a copy the run writes too is the same
//! event), a delivery attempt's result, an evidence verification. The
//! events keep the journal's vocabulary ([`Event`]); readers see the run's
//! records and its late facts as one list, merged in one place of the read
//! model (`runs::late::merge`).
//!
//! # Integrity
//!
//! A late fact names the journal as its writer saw it ([`Seen`]: the record
//! count and the hash of the last record), so it is anchored in the hash
//! chain: [`verify`] (run by `drctl audit verify`) refuses a fact whose
//! anchor is not a point of the chain. Facts are not chained among
//! themselves (they are written concurrently, by design): an edited fact is
//! caught only by the store's versioning, and a deleted one is not caught.
//! The approvals and deliveries they hold are records of what was decided
//! and sent, not of what the run did; what the run did stays in the chain.
//!
//! A writer that holds the run key signs each fact as it signs records
//! ([`super::trust`]); with public run keys listed, a fact that is not
//! signed by one of them is not read as a fact (it is listed among the
//! unreadable, which `drctl audit verify` reports): a forged retroactive
//! approval counts for nothing. A writer without the key is refused where
//! keys are listed, as a run's writer is.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::chain::{self, ZERO_HASH, hash_line};
use super::event::{Decision, Event, GateName};
use super::trust;
use super::{JournalError, JournalStore};

/// The journal as a late fact's writer saw it: where the fact stands in
/// the run's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// How many records the journal held.
    pub records: u64,
    /// The hash of the last of them ([`ZERO_HASH`] when none).
    pub hash: String,
}

/// One late fact, as stored (one JSON object per object or file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Late {
    /// Its id, which is also its object's name: the UTC time, the kind and
    /// a random suffix (`20261122T041530.123456Z-approval-3f9a1c2e`), so that
    /// ids sort by time and two writers never choose the same one.
    pub id: String,
    /// The run it is about.
    pub run_id: String,
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The host that wrote it.
    pub host: String,
    /// The writer's process id.
    pub pid: u32,
    /// The journal as the writer saw it.
    pub seen: Seen,
    /// The fact, in the journal's vocabulary (one of [`is_late`]'s).
    pub event: Event,
    /// The SHA-256 of the stored bytes (set when read; not stored).
    #[serde(skip)]
    pub hash: String,
}

pub use super::event::LateMark;

/// Whether `event` may be written as a late fact: it changes no step of
/// the run, so the run's own writer never needs to have seen it.
pub fn is_late(event: &Event) -> bool {
    match event {
        Event::Gate { gate, decision, .. } => {
            *gate == GateName::Approval && *decision == Decision::Retroactive
        }
        Event::Notification { .. } | Event::Delivery { .. } | Event::EvidenceVerified { .. } => {
            true
        }
        _ => false,
    }
}

/// The kind part of a fact's id.
fn kind_of(event: &Event) -> &'static str {
    match event {
        Event::Gate { .. } => "approval",
        Event::Notification { .. } => "notification",
        Event::Delivery { .. } => "delivery",
        Event::EvidenceVerified { .. } => "evidence",
        _ => "fact",
    }
}

/// A new fact id: sortable by time, unique (a random 32-bit suffix, never
/// repeated within a process for 2^32 calls).
fn new_id(at: DateTime<Utc>, event: &Event) -> String {
    let suffix = super::unique_suffix(0x9e37_79b9, 0xffff_ffff);
    format!(
        "{}-{}-{suffix:08x}",
        at.format("%Y%m%dT%H%M%S%.6fZ"),
        kind_of(event)
    )
}

/// Records `events` as late facts of run `run_id` (one object each, in
/// order), anchored at the journal as it stands now. Refused when an event
/// may not be late, or when the journal is missing, its chain is broken,
/// or (public run keys listed) it is not signed by one of them: nothing
/// recorded beside a journal that cannot be trusted could be.
/// `host`: the writer's host name.
pub async fn record(
    store: &dyn JournalStore,
    run_id: &str,
    host: &str,
    events: Vec<Event>,
) -> Result<Vec<Late>, JournalError> {
    if let Some(e) = events.iter().find(|e| !is_late(e)) {
        return Err(JournalError::Corrupt {
            run_id: run_id.to_string(),
            detail: format!(
                "a {} record is written by the run itself, never beside its journal",
                kind_of(e)
            ),
        });
    }
    if events.is_empty() {
        return Ok(Vec::new());
    }
    store.keys().may_write(run_id)?;
    let signer = store.keys().signer.as_ref();
    let (seen, head_signer) = seen(store, run_id).await?;
    if let (None, Some(id)) = (signer, head_signer) {
        return Err(JournalError::Unkeyed {
            run_id: run_id.to_string(),
            detail: format!(
                "its journal is signed with the run key {id}, which this process does not hold: a fact it wrote beside it could not be verified"
            ),
        });
    }
    if seen.records == 0 {
        return Err(JournalError::Corrupt {
            run_id: run_id.to_string(),
            detail: "the run has no record yet: nothing can be recorded beside it".into(),
        });
    }
    let mut out = Vec::new();
    for event in events {
        let at = Utc::now();
        let mut fact = Late {
            id: new_id(at, &event),
            run_id: run_id.to_string(),
            at,
            host: host.to_string(),
            pid: std::process::id(),
            seen: seen.clone(),
            event,
            hash: String::new(),
        };
        let body = serde_json::to_string(&fact).map_err(|source| JournalError::Encode {
            run_id: run_id.to_string(),
            source,
        })?;
        let body = store.keys().sign_line(&body, trust::LATE, run_id);
        store.put_late(run_id, &fact.id, &body).await?;
        fact.hash = hash_line(&body);
        out.push(fact);
    }
    Ok(out)
}

/// The journal as it stands: its complete records (a torn final line, an
/// append in flight, is not part of it yet) and the hash of the last; and
/// the key its head names, if it is signed.
async fn seen(
    store: &dyn JournalStore,
    run_id: &str,
) -> Result<(Seen, Option<String>), JournalError> {
    let (text, head) = super::snapshot(store, run_id).await?;
    let keep = text.rfind('\n').map_or(0, |i| i + 1);
    // With run keys listed, a fact is anchored only in a journal signed by
    // one of them: a signed fact beside a forged journal would lend it the
    // operators' word (an approval, a delivery of its notifications).
    let checked = chain::authenticate(run_id, &text[..keep], head.as_deref(), store.keys())
        .map_err(JournalError::Broken)?;
    let signer = head.as_deref().and_then(chain::head_signer);
    Ok((
        Seen {
            records: checked.records.len() as u64,
            hash: checked.last_hash,
        },
        signer,
    ))
}

/// The late facts of one run, as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The facts that parse, in id (time) order.
    pub facts: Vec<Late>,
    /// The stored objects that are not facts of this run: (id, why).
    pub unreadable: Vec<(String, String)>,
}

/// Reads the late facts beside run `run_id`'s journal (none when there are
/// none). With public run keys listed (the store's), a fact not signed by
/// one of them is unreadable, not a fact.
pub async fn read(store: &dyn JournalStore, run_id: &str) -> Result<Facts, JournalError> {
    let mut out = Facts::default();
    let keys = store.keys();
    for (id, body) in store.read_late(run_id).await? {
        let signed = if !keys.checks() {
            Ok(())
        } else {
            keys.verify_line(trust::LATE, run_id, &body)
                .map(|_| ())
                .map_err(|e| trust::refusal("it", &e))
        };
        match signed.and_then(|()| parse(run_id, &id, &body)) {
            Ok(fact) => out.facts.push(fact),
            Err(why) => out.unreadable.push((id, why)),
        }
    }
    Ok(out)
}

/// One stored fact: parsed, and checked to be what its name and place say.
fn parse(run_id: &str, id: &str, body: &str) -> Result<Late, String> {
    let mut fact: Late = serde_json::from_str(body).map_err(|e| format!("not a late fact: {e}"))?;
    if fact.id != id {
        return Err(format!("it names itself `{}`", fact.id));
    }
    if fact.run_id != run_id {
        return Err(format!("it is about run `{}`", fact.run_id));
    }
    if !is_late(&fact.event) {
        return Err(format!(
            "a {} record can only be written by the run itself",
            kind_of(&fact.event)
        ));
    }
    fact.hash = hash_line(body);
    Ok(fact)
}

/// A late fact that `drctl audit verify` does not accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LateProblem {
    /// The fact's id.
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks run `run_id`'s late facts against its journal text (read after
/// the facts, so that every honest fact's anchor is in it): each must
/// parse, and name a point of the chain, by record count and hash.
pub fn verify(run_id: &str, text: &str, facts: &Facts) -> Vec<LateProblem> {
    let hashes = chain_hashes(text);
    let mut out: Vec<LateProblem> = facts
        .unreadable
        .iter()
        .map(|(id, why)| LateProblem {
            id: id.clone(),
            reason: why.clone(),
        })
        .collect();
    for f in &facts.facts {
        if let Some(reason) = unanchored(&hashes, f) {
            out.push(LateProblem {
                id: f.id.clone(),
                reason: format!("run {run_id}: {reason}"),
            });
        }
    }
    out
}

/// The facts of `facts` anchored in the chain of `text` (see [`verify`]):
/// the ones a report may count.
pub fn anchored(text: &str, facts: &[Late]) -> Vec<Late> {
    let hashes = chain_hashes(text);
    facts
        .iter()
        .filter(|f| unanchored(&hashes, f).is_none())
        .cloned()
        .collect()
}

/// The hash of the journal's end after each complete line: [`ZERO_HASH`],
/// then each line's hash (a torn final line is no point of the chain).
fn chain_hashes(text: &str) -> Vec<String> {
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut hashes = vec![ZERO_HASH.to_string()];
    hashes.extend(complete.lines().map(hash_line));
    hashes
}

/// Why fact `f` names no point of the chain whose ends are `hashes`.
fn unanchored(hashes: &[String], f: &Late) -> Option<String> {
    let at = usize::try_from(f.seen.records).unwrap_or(usize::MAX);
    match hashes.get(at) {
        None => Some(format!(
            "it follows record {} of the journal, which has only {} records",
            f.seen.records,
            hashes.len() - 1
        )),
        Some(h) if *h != f.seen.hash => Some(format!(
            "the journal's record {} is not the one it followed (hash {} there, {} in the fact)",
            f.seen.records,
            short(h),
            short(&f.seen.hash)
        )),
        Some(_) => None,
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::notice::DeliveryResult;
    use crate::journal::{Journal, MemoryStore};
    use std::sync::Arc;

    fn approval() -> Event {
        Event::Gate {
            plan: "payments".into(),
            gate: GateName::Approval,
            decision: Decision::Retroactive,
            detail: serde_json::json!({"approved_by": "arn:aws:iam::1:user/ana", "reason": "right call"}),
        }
    }

    fn delivery() -> Event {
        Event::Delivery {
            id: "evt_r_0_started".into(),
            sink: "ops".into(),
            attempt: 1,
            result: DeliveryResult::Delivered,
            status: Some(204),
            detail: "accepted".into(),
            retry_at: None,
            host: "h".into(),
        }
    }

    fn resumed() -> Event {
        Event::Resumed {
            host: "h".into(),
            pid: 1,
            dropped_torn_line: None,
        }
    }

    #[tokio::test]
    async fn facts_are_anchored_where_the_writer_saw_the_journal_and_verify() {
        let store = Arc::new(MemoryStore::new());
        let mut j = Journal::create(store.clone(), "r").await.unwrap();
        j.append(resumed()).await.unwrap();
        j.append(resumed()).await.unwrap();
        let written = record(store.as_ref(), "r", "h", vec![approval(), delivery()])
            .await
            .unwrap();
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].seen.records, 2);
        assert_eq!(written[0].seen.hash, j.last_hash());
        assert_ne!(written[0].id, written[1].id);
        // The run goes on appending: nothing collides, and the facts still
        // anchor in the longer chain.
        j.append(resumed()).await.unwrap();
        let facts = read(store.as_ref(), "r").await.unwrap();
        assert_eq!(facts.facts.len(), 2);
        assert!(facts.unreadable.is_empty());
        assert_eq!(facts.facts[0].hash.len(), 64);
        assert_eq!(
            facts.facts.iter().map(|f| &f.event).collect::<Vec<_>>(),
            [&approval(), &delivery()]
        );
        let text = store.text("r").unwrap();
        assert_eq!(verify("r", &text, &facts), []);
        assert_eq!(anchored(&text, &facts.facts), facts.facts);
        assert_eq!(
            crate::journal::read(store.as_ref(), "r")
                .await
                .unwrap()
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn a_fact_that_names_no_point_of_the_chain_is_refused_by_verify() {
        let store = Arc::new(MemoryStore::new());
        let mut j = Journal::create(store.clone(), "r").await.unwrap();
        j.append(resumed()).await.unwrap();
        record(store.as_ref(), "r", "h", vec![approval()])
            .await
            .unwrap();
        let mut facts = read(store.as_ref(), "r").await.unwrap();
        let text = store.text("r").unwrap();
        facts.facts[0].seen.hash = "ab".repeat(32);
        let problems = verify("r", &text, &facts);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(anchored(&text, &facts.facts), []);
        assert!(
            problems[0].reason.contains("not the one it followed"),
            "{problems:?}"
        );
        facts.facts[0].seen.records = 5;
        assert!(
            verify("r", &text, &facts)[0]
                .reason
                .contains("only 1 records")
        );
    }

    #[tokio::test]
    async fn only_facts_that_change_no_step_may_be_late_and_never_beside_a_broken_journal() {
        let store = Arc::new(MemoryStore::new());
        let mut j = Journal::create(store.clone(), "r").await.unwrap();
        j.append(resumed()).await.unwrap();
        let err = record(store.as_ref(), "r", "h", vec![resumed()])
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("written by the run itself"),
            "{err}"
        );
        let refuse = Event::Gate {
            plan: "payments".into(),
            gate: GateName::Approval,
            decision: Decision::Refuse,
            detail: serde_json::Value::Null,
        };
        assert!(!is_late(&refuse));
        assert!(
            record(store.as_ref(), "nope", "h", vec![approval()])
                .await
                .is_err()
        );
        let text = store.text("r").unwrap();
        store.set_text("r", &text.replace("resumed", "interrupted"));
        assert!(matches!(
            record(store.as_ref(), "r", "h", vec![approval()]).await,
            Err(JournalError::Broken(_))
        ));
    }

    #[tokio::test]
    async fn a_stored_object_that_is_not_a_fact_of_the_run_is_unreadable_not_merged() {
        let store = Arc::new(MemoryStore::new());
        let mut j = Journal::create(store.clone(), "r").await.unwrap();
        // Nothing is late before the run's first record.
        assert!(
            record(store.as_ref(), "r", "h", vec![approval()])
                .await
                .is_err()
        );
        j.append(resumed()).await.unwrap();
        store.put_late("r", "x", "{not json").await.unwrap();
        let mut other = record(store.as_ref(), "r", "h", vec![approval()])
            .await
            .unwrap();
        other[0].id = "y".into();
        other[0].run_id = "another".into();
        store
            .put_late("r", "y", &serde_json::to_string(&other[0]).unwrap())
            .await
            .unwrap();
        let facts = read(store.as_ref(), "r").await.unwrap();
        assert_eq!(facts.facts.len(), 1);
        let ids: Vec<&str> = facts.unreadable.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["x", "y"]);
        assert!(facts.unreadable[1].1.contains("about run `another`"));
        assert_eq!(verify("r", &store.text("r").unwrap(), &facts).len(), 2);
    }
}
