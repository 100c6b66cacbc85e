//! Where each notification of a run stands, read from its journal: which
//! events are owed to which sinks, and what each delivery attempt did.
//!
//! Part of the read model because `runs show`, `notify pending`, reports
//! (the `notification_undelivered` finding) and the notifier itself must
//! all agree on it, and all of it is a pure function of records.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::journal::notice::{CloudEvent, DeliveryResult};
use crate::journal::{Event, Record};

/// One event still owed to one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct Owed {
    /// The event, as journaled.
    pub event: CloudEvent,
    /// The sink's name.
    pub sink: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last attempt's detail.
    pub last: Option<String>,
    /// When the next attempt is due (`None`: now).
    pub retry_at: Option<DateTime<Utc>>,
}

/// What happened to one event at one sink, in the end or so far.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryState {
    /// The event's id and type.
    pub id: String,
    /// Its type.
    pub kind: String,
    /// The sink.
    pub sink: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last result (`None`: never tried).
    pub result: Option<DeliveryResult>,
    /// The last attempt's detail.
    pub detail: String,
    /// When the event was journaled.
    pub journaled_at: DateTime<Utc>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Every (event, sink) of a journal and where its delivery stands.
pub fn deliveries(records: &[Record]) -> Vec<DeliveryState> {
    let mut out: Vec<DeliveryState> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in records {
        match &r.event {
            Event::Notification { event, sinks } => {
                for s in sinks {
                    if index.contains_key(&(event.id.clone(), s.clone())) {
                        continue;
                    }
                    index.insert((event.id.clone(), s.clone()), out.len());
                    out.push(DeliveryState {
                        id: event.id.clone(),
                        kind: event.kind.as_str().to_string(),
                        sink: s.clone(),
                        attempts: 0,
                        result: None,
                        detail: String::new(),
                        journaled_at: r.at,
                        delivered_at: None,
                    });
                }
            }
            Event::Delivery {
                id,
                sink,
                attempt,
                result,
                detail,
                ..
            } => {
                if let Some(&i) = index.get(&(id.clone(), sink.clone())) {
                    let d = &mut out[i];
                    if d.result == Some(DeliveryResult::Delivered) {
                        continue;
                    }
                    d.attempts = d.attempts.max(*attempt);
                    d.result = Some(*result);
                    d.detail = detail.clone();
                    if *result == DeliveryResult::Delivered {
                        d.delivered_at = Some(r.at);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// What a journal still owes: each journaled event not yet delivered to,
/// nor given up at, each of its sinks.
pub fn owed(records: &[Record]) -> Vec<Owed> {
    let mut retry: BTreeMap<(String, String), Option<DateTime<Utc>>> = BTreeMap::new();
    for r in records {
        if let Event::Delivery {
            id, sink, retry_at, ..
        } = &r.event
        {
            retry.insert((id.clone(), sink.clone()), *retry_at);
        }
    }
    let events: BTreeMap<String, &CloudEvent> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Notification { event, .. } => Some((event.id.clone(), event.as_ref())),
            _ => None,
        })
        .collect();
    deliveries(records)
        .into_iter()
        .filter(|d| d.result.is_none() || d.result == Some(DeliveryResult::Failed))
        .filter_map(|d| {
            let event = CloudEvent::clone(events.get(&d.id)?);
            Some(Owed {
                retry_at: retry
                    .get(&(d.id.clone(), d.sink.clone()))
                    .copied()
                    .flatten(),
                event,
                attempts: d.attempts,
                last: (!d.detail.is_empty()).then_some(d.detail),
                sink: d.sink,
            })
        })
        .collect()
}
