//! A run's records and its late facts as one list: the one place where the
//! two meet (see [`crate::journal::late`] for why late facts are stored
//! beside the journal instead of in it).
//!
//! Every reader of a run (`runs show`, reports, `notify pending|flush`,
//! `runs approve`, `audit verify --evidence`, a resume's outbox, the end of
//! a run) reads the journal and the facts and merges them here, so that a
//! retroactive approval or a delivery made by another process counts the
//! same everywhere. The merged list is read-only: it is never written back
//! and never hash-checked as a chain (the chain is the journal's alone).
//! [`merge`] is pure; [`read`] is the one read of both that readers share.

use crate::journal::late::{Late, LateMark};
use crate::journal::{Event, JournalError, JournalStore, Record};

/// A run as every reader sees it.
#[derive(Debug, Clone)]
pub struct Merged {
    /// Its records and late facts, merged ([`merge`]).
    pub records: Vec<Record>,
    /// The hash of the journal's last record (where its chain ends).
    pub last_hash: String,
}

/// Reads run `run_id` as every reader sees it: its journal (verified: a
/// broken chain is [`JournalError::Broken`], and so, with public run keys
/// listed, is a journal not signed by one of them, which a writer of the
/// state could have forged) and the late facts beside it (with keys
/// listed, only those signed), merged. Stored objects that are not facts
/// of the run are left out here (`drctl audit verify` names them).
pub async fn read(store: &dyn JournalStore, run_id: &str) -> Result<Merged, JournalError> {
    let (records, last_hash) = crate::journal::read_authenticated_with_tip(store, run_id).await?;
    let facts = crate::journal::late::read(store, run_id).await?;
    for (id, why) in &facts.unreadable {
        tracing::warn!("run {run_id}: late fact {id} is left out: {why}");
    }
    Ok(Merged {
        records: merge(&records, &facts.facts),
        last_hash,
    })
}

/// The run's records with its late facts among them: each fact right after
/// the last record its writer had seen (facts seen at the same point in
/// time order), as a [`Record`] marked [`Record::late`] whose `seq` is the
/// number of records seen and whose `prev` is the hash of the last of them.
/// A notification the journal (or an earlier fact) already holds, by event
/// id, is left out: the run and another process journaled the same event.
pub fn merge(records: &[Record], late: &[Late]) -> Vec<Record> {
    if late.is_empty() {
        return records.to_vec();
    }
    let mut facts: Vec<&Late> = late.iter().collect();
    facts.sort_by(|a, b| (a.seen.records, a.at, &a.id).cmp(&(b.seen.records, b.at, &b.id)));
    let mut notified: std::collections::BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Notification { event, .. } => Some(event.id.as_str()),
            _ => None,
        })
        .collect();
    facts.retain(|f| match &f.event {
        Event::Notification { event, .. } => notified.insert(event.id.as_str()),
        _ => true,
    });
    let mut out = Vec::with_capacity(records.len() + facts.len());
    let mut facts = facts.into_iter().peekable();
    for r in records {
        while let Some(f) = facts.next_if(|f| f.seen.records <= r.seq) {
            out.push(as_record(f));
        }
        out.push(r.clone());
    }
    out.extend(facts.map(as_record));
    out
}

/// A late fact as a record of the merged view.
fn as_record(f: &Late) -> Record {
    Record {
        seq: f.seen.records,
        at: f.at,
        prev: f.seen.hash.clone(),
        event: f.event.clone(),
        fence: Default::default(),
        late: Some(LateMark {
            id: f.id.clone(),
            host: f.host.clone(),
            hash: f.hash.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::late::Seen;
    use crate::journal::notice::DeliveryResult;
    use crate::journal::{ApprovalDetail, Decision, GateName, Journal, MemoryStore, Outcome};
    use chrono::{Duration, Utc};
    use std::sync::Arc;

    fn emergency() -> Event {
        Event::Gate {
            plan: "payments".into(),
            gate: GateName::Approval,
            decision: Decision::Override,
            detail: serde_json::to_value(ApprovalDetail {
                emergency: Some(true),
                approve_by: Some(Utc::now() + Duration::hours(4)),
                ..Default::default()
            })
            .unwrap(),
        }
    }

    fn approved() -> Event {
        Event::Gate {
            plan: "payments".into(),
            gate: GateName::Approval,
            decision: Decision::Retroactive,
            detail: serde_json::json!({"approved_by": "arn:aws:iam::1:user/ana", "reason": "right call"}),
        }
    }

    fn resumed() -> Event {
        Event::Resumed {
            host: "h".into(),
            pid: 1,
            dropped_torn_line: None,
        }
    }

    fn fact(id: &str, seen: u64, event: Event) -> Late {
        Late {
            id: id.into(),
            run_id: "r".into(),
            at: Utc::now(),
            host: "other".into(),
            pid: 2,
            seen: Seen {
                records: seen,
                hash: format!("{seen:064}"),
            },
            event,
            hash: "f".repeat(64),
        }
    }

    fn record(seq: u64, event: Event) -> Record {
        Record {
            seq,
            at: Utc::now(),
            prev: String::new(),
            event,
            fence: Default::default(),
            late: None,
        }
    }

    fn notification(id: &str) -> Event {
        use crate::journal::notice::{CloudEvent, EventData, EventDetail, EventType, Severity};
        let event = CloudEvent {
            specversion: "1.0".into(),
            id: id.into(),
            source: "/drctl/runs/r".into(),
            kind: EventType::RunStarted,
            time: Utc::now(),
            subject: "payments".into(),
            datacontenttype: "application/json".into(),
            data: EventData {
                run_id: Some("r".into()),
                run_kind: None,
                plans: vec!["payments".into()],
                tier: None,
                target: None,
                operator: None,
                severity: Severity::Info,
                summary: "started".into(),
                record: None,
                detail: EventDetail::Test {
                    message: "m".into(),
                },
            },
        };
        Event::Notification {
            event: Box::new(event),
            sinks: vec!["ops".into()],
        }
    }

    #[test]
    fn each_fact_follows_the_last_record_its_writer_saw() {
        let records: Vec<Record> = (0..3).map(|i| record(i, resumed())).collect();
        let merged = merge(
            &records,
            &[
                fact("b", 2, approved()),
                fact("a", 1, approved()),
                fact("c", 9, approved()),
            ],
        );
        let shape: Vec<(u64, Option<&str>)> = merged
            .iter()
            .map(|r| (r.seq, r.late.as_ref().map(|l| l.id.as_str())))
            .collect();
        assert_eq!(
            shape,
            [
                (0, None),
                (1, Some("a")),
                (1, None),
                (2, Some("b")),
                (2, None),
                // Written after the records this reader read: at the end.
                (9, Some("c")),
            ]
        );
        let a = &merged[1];
        assert_eq!(a.prev, format!("{:064}", 1));
        assert_eq!(a.late.as_ref().unwrap().host, "other");
        assert_eq!(a.event, approved());
        assert_eq!(merge(&records, &[]), records);
    }

    #[test]
    fn a_notification_the_journal_already_holds_is_not_doubled() {
        let records = vec![record(0, resumed()), record(1, notification("evt_1"))];
        let merged = merge(
            &records,
            &[
                fact("a", 2, notification("evt_1")),
                fact("b", 2, notification("evt_2")),
                fact("c", 2, notification("evt_2")),
            ],
        );
        let ids: Vec<String> = merged
            .iter()
            .filter_map(|r| match &r.event {
                Event::Notification { event, .. } => Some(event.id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(ids, ["evt_1", "evt_2"]);
    }

    #[test]
    fn a_delivery_made_beside_the_journal_settles_what_is_owed() {
        let records = vec![record(0, resumed()), record(1, notification("evt_1"))];
        assert_eq!(crate::runs::deliveries::owed(&records).len(), 1);
        let delivered = Event::Delivery {
            id: "evt_1".into(),
            sink: "ops".into(),
            attempt: 1,
            result: DeliveryResult::Delivered,
            status: Some(204),
            detail: "accepted".into(),
            retry_at: None,
            host: "cron".into(),
        };
        let merged = merge(&records, &[fact("a", 2, delivered)]);
        assert!(crate::runs::deliveries::owed(&merged).is_empty());
    }

    /// The bug this pins: an approval given while the emergency run was
    /// still appending. Written beside the journal, the run's own appends
    /// go on unbroken, and the approval counts: the run's report no longer
    /// asks for it.
    #[tokio::test]
    async fn a_retroactive_approval_given_while_the_run_appends_counts_and_breaks_nothing() {
        let store = Arc::new(MemoryStore::new());
        let mut j = Journal::create(store.clone(), "r").await.unwrap();
        j.append(emergency()).await.unwrap();
        j.append(resumed()).await.unwrap();
        let report = |records: &[Record]| {
            crate::runs::report_from_records("r", records, &Default::default(), Outcome::Succeeded)
        };
        assert!(
            report(&crate::journal::read(store.as_ref(), "r").await.unwrap())
                .approve_by
                .is_some()
        );
        crate::journal::late::record(store.as_ref(), "r", "laptop", vec![approved()])
            .await
            .unwrap();
        for _ in 0..3 {
            j.append(resumed()).await.unwrap();
        }
        let records = crate::journal::read(store.as_ref(), "r").await.unwrap();
        assert_eq!(records.len(), 5, "the run's chain is whole");
        let facts = crate::journal::late::read(store.as_ref(), "r")
            .await
            .unwrap();
        let merged = merge(&records, &facts.facts);
        assert_eq!(merged.len(), 6);
        assert_eq!(merged[2].late.as_ref().unwrap().host, "laptop");
        let r = report(&merged);
        assert_eq!(r.approve_by, None, "approved: no deadline left");
        assert!(
            r.gates
                .iter()
                .any(|g| g.decision == Decision::Retroactive && g.plan == "payments")
        );
    }
}
