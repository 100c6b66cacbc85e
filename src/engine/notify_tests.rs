//! Notifications from engine runs, against the in-memory cloud: the fake's
//! SNS publisher is the sink (the emulator tests in `tests/it/notify.rs`
//! use real receivers). Every event a run owes is journaled before it is
//! sent, each attempt's result is journaled, a crash between the two writes
//! loses nothing, and a resume sends what is owed with the same id.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::cloud::fake::FakeCloud;
use crate::journal::notice::{CloudEvent, DeliveryResult, EventType};
use crate::journal::store::MemoryStore;
use crate::plan::notify::NotifySpec;

fn sns_sink(events: &[&str]) -> NotifySpec {
    let events = events
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    toml::from_str(&format!(
        "name = \"ops\"\nkind = \"sns\"\ntopic_arn = \"arn:aws:sns:{{region}}:000000000000:drctl\"\nevents = [{events}]"
    ))
    .unwrap()
}

fn engine_with(
    f: &FakeCloud,
    dir: &std::path::Path,
    sink: NotifySpec,
) -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let hub = crate::notify::Hub::new(
        vec![sink],
        Arc::new(|_| None),
        Some(f.clouds().publisher),
        "test-host",
    );
    let e = Engine {
        clouds: f.clouds(),
        side_clouds: f.clouds(),
        store: store.clone(),
        locks: Arc::new(crate::state::local::LocalLocks::new(dir.to_path_buf())),
        reporter: Arc::new(NoReport),
        confirm: None,
        notify: Some(Arc::new(hub)),
        waits: None,
        inventory: None,
    };
    (e, store)
}

struct NoReport;
impl Reporter for NoReport {
    fn started(&self, _: &Step) {}
    fn finished(&self, _: &Step, _: Result<&serde_json::Value, &StepFailure>, _: Duration) {}
    fn note(&self, _: &str) {}
}

fn payments() -> Vec<Plan> {
    crate::plan::reference()
        .into_iter()
        .filter(|p| p.name() == "payments")
        .collect()
}

fn opts() -> RunOptions {
    RunOptions {
        approve: Some("test".into()),
        pace: crate::engine::Pace {
            poll: (Duration::from_millis(1), Duration::from_millis(5)),
            ..Default::default()
        },
        ..RunOptions::failover("us-east-1")
    }
}

/// The events published so far, parsed.
fn published(f: &FakeCloud) -> Vec<(String, CloudEvent)> {
    (f.state().published.iter())
        .map(|(topic, region, body)| {
            assert_eq!(topic, &format!("arn:aws:sns:{region}:000000000000:drctl"));
            (region.clone(), serde_json::from_str(body).unwrap())
        })
        .collect()
}

/// The run's records, with the late facts beside its journal (results
/// journaled after the run, by the hub's settle) merged in.
async fn records(store: &MemoryStore, run: &str) -> Vec<crate::journal::Record> {
    crate::runs::late::read(store, run).await.unwrap().records
}

#[tokio::test]
async fn a_failover_journals_its_events_before_sending_them_in_the_target_region() {
    let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
    let dir = tempfile::tempdir().unwrap();
    let (e, store) = engine_with(&f, dir.path(), sns_sink(&[]));
    let report = e.run(&payments(), &opts()).await.unwrap();
    let hub = e.notify.clone().unwrap();
    let left = hub.settle(Duration::from_secs(5)).await;
    assert!(left.is_empty(), "{left:?}");

    let recs = records(&store, &report.run_id).await;
    let journaled: Vec<&CloudEvent> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::Notification { event, .. } => Some(event.as_ref()),
            _ => None,
        })
        .collect();
    let kinds: Vec<EventType> = journaled.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventType::RunStarted, EventType::RunFinished]);
    // Each notification follows the record it reports, and names its hash.
    for (i, r) in recs.iter().enumerate() {
        if let Event::Notification { event, .. } = &r.event {
            let at = event.data.record.as_ref().unwrap();
            let source = recs.iter().position(|x| x.seq == at.seq).unwrap();
            assert!(source < i);
            assert_eq!(
                recs[source + 1].prev,
                at.hash,
                "the hash of record {}",
                at.seq
            );
        }
    }
    let sent = published(&f);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|(region, _)| region == "us-east-1"));
    let ids: BTreeSet<&str> = sent.iter().map(|(_, e)| e.id.as_str()).collect();
    assert_eq!(ids, journaled.iter().map(|e| e.id.as_str()).collect());
    let finished = sent
        .iter()
        .find(|(_, e)| e.kind == EventType::RunFinished)
        .unwrap();
    let detail = serde_json::to_value(&finished.1.data.detail).unwrap();
    assert_eq!(detail["outcome"], "succeeded");
    assert!(detail["plans"][0]["rto"]["seconds"].is_number(), "{detail}");
    assert_eq!(detail["plans"][0]["rto"]["target_seconds"], 900);
    // Every delivery is journaled as delivered, and nothing is owed.
    let delivered = recs
        .iter()
        .filter(|r| {
            matches!(
                r.event,
                Event::Delivery {
                    result: DeliveryResult::Delivered,
                    ..
                }
            )
        })
        .count();
    assert_eq!(delivered, 2);
    assert!(crate::notify::owed(&recs).is_empty());
}

#[tokio::test]
async fn a_sink_that_wants_nothing_of_a_run_leaves_its_journal_as_it_was() {
    let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
    let dir = tempfile::tempdir().unwrap();
    let (e, store) = engine_with(&f, dir.path(), sns_sink(&["dev.drctl.drill.verdict"]));
    let report = e.run(&payments(), &opts()).await.unwrap();
    let recs = records(&store, &report.run_id).await;
    assert!(
        !recs
            .iter()
            .any(|r| matches!(r.event, Event::Notification { .. } | Event::Delivery { .. })),
        "nothing is journaled for a sink that wants none of it"
    );
    assert!(f.state().published.is_empty());
}

#[tokio::test]
async fn regression_a_crash_between_a_record_and_its_notification_loses_no_event() {
    let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
    let dir = tempfile::tempdir().unwrap();
    let (e, store) = engine_with(&f, dir.path(), sns_sink(&[]));
    let report = e.run(&payments(), &opts()).await.unwrap();
    let run = report.run_id.clone();
    // Cut the journal back to just before the run.finished notification
    // was written: the process died between the two writes.
    let recs = records(&store, &run).await;
    let cut = recs
        .iter()
        .position(|r| matches!(&r.event, Event::Notification { event, .. } if event.kind == EventType::RunFinished))
        .unwrap();
    let text = store.read(&run).await.unwrap();
    let kept: Vec<&str> = text.lines().take(cut).collect();
    store.set_text(&run, &format!("{}\n", kept.join("\n")));
    store.set_head(&run, None);
    f.state().published.clear();

    // The next process that opens the run (here: the hub's settle) journals
    // the missing notification, with the id it would have had, and sends it.
    let hub = crate::notify::Hub::new(
        vec![sns_sink(&[])],
        Arc::new(|_| None),
        Some(f.clouds().publisher),
        "other-host",
    );
    let n = hub
        .notifier(
            &(store.clone() as Arc<dyn JournalStore>),
            &run,
            &payments(),
            "us-east-1",
        )
        .unwrap();
    let (mut j, all) = crate::journal::Journal::open_for_append(store.clone(), &run)
        .await
        .unwrap();
    let missing = n.prime(&all, j.last_hash());
    assert_eq!(missing.len(), 1, "{missing:?}");
    let Event::Notification { event, .. } = &missing[0] else {
        panic!("{missing:?}")
    };
    assert_eq!(event.kind, EventType::RunFinished);
    let first_id = recs
        .iter()
        .find_map(|r| match &r.event {
            Event::Notification { event, .. } if event.kind == EventType::RunFinished => {
                Some(event.id.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        event.id, first_id,
        "the same id as the lost write would have had"
    );
    for m in missing {
        j.append(m).await.unwrap();
    }
    j.flush().await.unwrap();
    drop(j);
    let recs = records(&store, &run).await;
    n.flush(&recs, true, Duration::ZERO).await;
    crate::journal::late::record(store.as_ref(), &run, "other-host", n.take_results())
        .await
        .unwrap();
    // Whatever the cut took (the lost notification, and any delivery result
    // journaled after it) is sent again with its journaled id: at least once.
    let sent = published(&f);
    assert!(sent.iter().any(|(_, e)| e.id == first_id), "{sent:?}");
    let journaled: BTreeSet<String> = records(&store, &run)
        .await
        .iter()
        .filter_map(|r| match &r.event {
            Event::Notification { event, .. } => Some(event.id.clone()),
            _ => None,
        })
        .collect();
    assert!(sent.iter().all(|(_, e)| journaled.contains(&e.id)));
    assert!(crate::notify::owed(&records(&store, &run).await).is_empty());
}

#[tokio::test]
async fn a_run_refused_for_want_of_approval_says_the_exact_command_that_approves() {
    let f = crate::cloud::fake::reference_world((&[3.0], &[1200.0]));
    let dir = tempfile::tempdir().unwrap();
    let (e, store) = engine_with(&f, dir.path(), sns_sink(&["dev.drctl.run.approval_needed"]));
    let o = RunOptions {
        approve: None,
        ..opts()
    };
    let err = e.run(&payments(), &o).await.unwrap_err();
    assert!(matches!(err, EngineError::Refused(_)), "{err}");
    e.notify
        .clone()
        .unwrap()
        .settle(Duration::from_secs(5))
        .await;
    let run = store.list().await.unwrap().pop().unwrap();
    let sent = published(&f);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (region, event) = &sent[0];
    assert_eq!(region, "us-east-1");
    assert_eq!(event.kind, EventType::ApprovalNeeded);
    let detail = serde_json::to_value(&event.data.detail).unwrap();
    assert_eq!(
        detail["command"],
        "drctl failover --to us-east-1 --plan payments --approve \"<reason>\""
    );
    assert_eq!(event.data.run_id.as_deref(), Some(run.as_str()));
}
