//! Tests of the chain, the journal handle and run ids.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use proptest::prelude::*;
use serde_json::json;

use super::*;

const RUN: &str = "20261122T041530Z-payments-3f9a";

fn started() -> Event {
    Event::RunStarted {
        run_id: RUN.into(),
        kind: RunKind::Failover,
        target: "us-east-1".into(),
        plans: vec![PlanRef {
            name: "payments".into(),
            digest: "ab".repeat(32),
        }],
        operator: Some("arn:aws:iam::123456789012:user/oncall".into()),
        host: "ops-1".into(),
        pid: 4242,
        flags: json!({"dry_run": false, "parallelism": 4}),
        declared_at: None,
        nonce: None,
        steps: vec![StepRef {
            id: "payments/promote-db".into(),
            deps: vec!["payments/preflight".into()],
            description: "promote the replica — café ✓".into(),
        }],
    }
}

/// The events of a small run: 6 records.
fn events() -> Vec<Event> {
    vec![
        started(),
        Event::Gate {
            plan: "payments".into(),
            gate: GateName::Rpo,
            decision: Decision::Pass,
            detail: json!({"lag_seconds": 2}),
        },
        Event::StepStarted {
            step: "payments/promote-db".into(),
            attempt: 1,
        },
        Event::StepFailed {
            step: "payments/promote-db".into(),
            error: StepError {
                message: "Throttling".into(),
                kind: ErrorClass::Throttled,
                transient: true,
                resource: Some("payments-db".into()),
                region: Some("us-east-1".into()),
            },
        },
        Event::StepSucceeded {
            step: "payments/promote-db".into(),
            outputs: json!({"endpoint": "db.us-east-1.example"}),
        },
        Event::RunFinished {
            outcome: Outcome::Succeeded,
            summary: json!({"rto_seconds": 312}),
        },
    ]
}

async fn written(store: &Arc<MemoryStore>) -> Vec<Record> {
    let mut journal = Journal::create(store.clone(), RUN).await.unwrap();
    let mut records = Vec::new();
    for event in events() {
        records.push(journal.append(event).await.unwrap());
    }
    records
}

/// A valid journal's text and head.
async fn sample() -> (Arc<MemoryStore>, String, String) {
    let store = Arc::new(MemoryStore::new());
    written(&store).await;
    let text = store.text(RUN).unwrap();
    let head = store.read_head(RUN).await.unwrap().unwrap();
    (store, text, head)
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn join(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn first_broken(v: &Verification) -> &Broken {
    assert!(!v.ok, "expected a broken chain: {v:?}");
    v.first_broken.as_ref().unwrap()
}

#[tokio::test]
async fn append_and_read_round_trip() {
    let store = Arc::new(MemoryStore::new());
    let records = written(&store).await;
    assert_eq!(records.len(), 6);
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert_eq!(records[0].prev, ZERO_HASH);
    let text = store.text(RUN).unwrap();
    let stored = lines(&text);
    for (i, record) in records.iter().enumerate().skip(1) {
        assert_eq!(record.prev, hash_line(&stored[i - 1]));
    }
    assert_eq!(read(store.as_ref(), RUN).await.unwrap(), records);
    assert_eq!(
        events(),
        records.into_iter().map(|r| r.event).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_valid_journal_verifies() {
    let (store, text, head) = sample().await;
    let v = verify(RUN, &text);
    assert!(v.ok, "{v:?}");
    assert_eq!(v.records, 6);
    assert_eq!(v.head, HeadCheck::Absent);
    let v = verify_with_head(RUN, &text, Some(&head));
    assert!(v.ok && v.head == HeadCheck::Matched, "{v:?}");
    assert_eq!(verify_stored(store.as_ref(), RUN).await.unwrap(), v);
    // Empty journals too, with or without a head.
    assert!(verify(RUN, "").ok);
    let empty_head = chain::head_text(RUN, 0, ZERO_HASH);
    assert!(verify_with_head(RUN, "", Some(&empty_head)).ok);
}

#[tokio::test]
async fn an_edited_middle_record_breaks_the_next_line() {
    let (_, text, head) = sample().await;
    let mut l = lines(&text);
    assert!(l[1].contains(r#""lag_seconds":2"#));
    l[1] = l[1].replace(r#""lag_seconds":2"#, r#""lag_seconds":1"#);
    for v in [
        verify(RUN, &join(&l)),
        verify_with_head(RUN, &join(&l), Some(&head)),
    ] {
        let b = first_broken(&v);
        assert_eq!((b.line, b.seq), (3, Some(2)), "{b:?}");
        assert!(
            b.reason.contains("prev hash does not match line 2"),
            "{b:?}"
        );
        assert_eq!(v.records, 2);
    }
}

#[tokio::test]
async fn an_edited_last_record_is_caught_by_the_head() {
    let (_, text, head) = sample().await;
    let mut l = lines(&text);
    l[5] = l[5].replace("succeeded", "failed");
    // The chain alone cannot see it: that is what the head is for.
    assert!(verify(RUN, &join(&l)).ok);
    let v = verify_with_head(RUN, &join(&l), Some(&head));
    let b = first_broken(&v);
    assert_eq!((b.line, b.seq), (6, Some(5)), "{b:?}");
    assert!(b.reason.contains("differs from the head"), "{b:?}");
    assert_eq!(v.head, HeadCheck::Mismatch);
    assert_eq!(v.records, 5);
}

#[tokio::test]
async fn a_deleted_middle_line_is_detected() {
    let (_, text, head) = sample().await;
    let mut l = lines(&text);
    l.remove(2);
    let v = verify_with_head(RUN, &join(&l), Some(&head));
    let b = first_broken(&v);
    assert_eq!((b.line, b.seq), (3, Some(3)), "{b:?}");
    assert_eq!(b.reason, "seq 3 follows seq 1 (a record was deleted)");
}

#[tokio::test]
async fn a_deleted_last_line_is_caught_by_the_head() {
    let (_, text, head) = sample().await;
    let mut l = lines(&text);
    l.pop();
    assert!(verify(RUN, &join(&l)).ok);
    let v = verify_with_head(RUN, &join(&l), Some(&head));
    let b = first_broken(&v);
    assert_eq!((b.line, b.seq), (6, Some(5)), "{b:?}");
    assert!(b.reason.contains("deleted"), "{b:?}");
    // Deleting every line is caught too.
    let v = verify_with_head(RUN, "", Some(&head));
    assert_eq!(first_broken(&v).line, 1);
}

#[tokio::test]
async fn reordered_lines_are_detected() {
    let (_, text, head) = sample().await;
    let mut l = lines(&text);
    l.swap(2, 3);
    let v = verify_with_head(RUN, &join(&l), Some(&head));
    let b = first_broken(&v);
    assert_eq!((b.line, b.seq), (3, Some(3)), "{b:?}");
    assert!(b.reason.contains("out of order"), "{b:?}");
}

#[tokio::test]
async fn inserted_lines_are_detected() {
    let (_, text, head) = sample().await;
    let l = lines(&text);
    // A forged line copied from a real one, or made up.
    let forged = Record {
        seq: 2,
        at: Utc::now(),
        prev: hash_line(&l[1]),
        event: Event::StepSucceeded {
            step: "payments/promote-db".into(),
            outputs: json!({}),
        },
        fence: Default::default(),
        late: None,
    };
    let forged_line = serde_json::to_string(&forged).unwrap();
    // Even with a correct prev and seq, the line after it no longer follows.
    let mut with_forged = l.clone();
    with_forged.insert(2, forged_line.clone());
    let v = verify_with_head(RUN, &join(&with_forged), Some(&head));
    let b = first_broken(&v);
    assert_eq!((b.line, b.seq), (4, Some(2)), "{b:?}");
    assert!(b.reason.contains("inserted"), "{b:?}");
    // A forged line with a wrong prev fails on itself.
    let mut bad = forged.clone();
    bad.prev = hash_line("something else");
    let mut with_bad = l.clone();
    with_bad.insert(2, serde_json::to_string(&bad).unwrap());
    let b = first_broken(&verify(RUN, &join(&with_bad))).clone();
    assert_eq!((b.line, b.seq), (3, Some(2)), "{b:?}");
    // A duplicated line.
    let mut dup = l.clone();
    dup.insert(3, l[2].clone());
    assert_eq!(first_broken(&verify(RUN, &join(&dup))).line, 4);
}

#[tokio::test]
async fn a_torn_final_line_is_reported() {
    let (_, text, head) = sample().await;
    let torn = format!("{text}{{\"seq\":6,\"at\":\"2026-");
    let v = verify_with_head(RUN, &torn, Some(&head));
    // Past a head that covers every complete line: a tail, the records
    // stand (issue 74); without a head it breaks the journal.
    assert!(!v.ok && v.first_broken.is_none(), "{v:?}");
    let b = v.tail.as_ref().expect("a tail");
    assert_eq!(b.line, 7);
    assert!(b.reason.contains("torn final line"), "{b:?}");
    assert_eq!(v.records, 6);
    let b = first_broken(&verify(RUN, &torn)).clone();
    assert_eq!(b.line, 7);
    // A complete record that lost its newline is torn too.
    let l = lines(&text);
    let no_newline = format!("{}{}", join(&l[..5]), l[5]);
    let b = first_broken(&verify(RUN, &no_newline)).clone();
    assert_eq!((b.line, b.seq), (6, Some(5)));
    assert!(b.reason.contains("torn"), "{b:?}");
}

#[test]
fn garbage_lines_are_reported() {
    let b = first_broken(&verify(RUN, "not json\n")).clone();
    assert_eq!(b.line, 1);
    assert!(b.reason.starts_with("not valid JSON"), "{b:?}");
    let b = first_broken(&verify(RUN, "{\"seq\":0}\n")).clone();
    assert!(b.reason.starts_with("not a journal record"), "{b:?}");
    let b = first_broken(&verify(RUN, "\n")).clone();
    assert_eq!(b.reason, "empty line");
}

#[tokio::test]
async fn a_head_of_another_run_or_garbage_is_a_mismatch() {
    let (_, text, _) = sample().await;
    let l = lines(&text);
    let other = chain::head_text("other-run", 6, &hash_line(&l[5]));
    assert!(
        first_broken(&verify_with_head(RUN, &text, Some(&other)))
            .reason
            .contains("other-run")
    );
    assert!(!verify_with_head(RUN, &text, Some("garbage")).ok);
    // Two records past the head: not something a crash leaves.
    let stale = chain::head_text(RUN, 4, &hash_line(&l[3]));
    let b = first_broken(&verify_with_head(RUN, &text, Some(&stale))).clone();
    assert_eq!(b.line, 6);
}

#[tokio::test]
async fn read_refuses_a_broken_journal() {
    let (store, text, _) = sample().await;
    let mut l = lines(&text);
    l[0] = l[0].replace("us-east-1", "eu-west-1");
    store.set_text(RUN, &join(&l));
    match read(store.as_ref(), RUN).await {
        Err(JournalError::Broken(b)) => assert_eq!(b.line, 2),
        other => panic!("expected Broken, got {other:?}"),
    }
    let message = read(store.as_ref(), RUN).await.unwrap_err().to_string();
    assert!(
        message.contains(RUN) && message.contains("line 2"),
        "{message}"
    );
    assert!(matches!(
        read(store.as_ref(), "missing").await,
        Err(JournalError::NotFound { .. })
    ));
}

#[tokio::test]
async fn open_for_append_continues_the_chain() {
    let (store, _, _) = sample().await;
    let (mut journal, records) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(journal.next_seq(), 6);
    assert!(journal.torn_tail().is_none());
    let record = journal
        .append(Event::Resumed {
            host: "ops-2".into(),
            pid: 7,
            dropped_torn_line: None,
        })
        .await
        .unwrap();
    assert_eq!(record.seq, 6);
    assert_eq!(
        journal.last_hash(),
        hash_line(lines(&store.text(RUN).unwrap())[6].as_str())
    );
    assert_eq!(read(store.as_ref(), RUN).await.unwrap().len(), 7);
    assert!(matches!(
        Journal::create(store.clone(), RUN).await,
        Err(JournalError::Exists { .. })
    ));
}

#[tokio::test]
async fn open_for_append_refuses_a_broken_chain() {
    let (store, text, _) = sample().await;
    let mut l = lines(&text);
    l.remove(1);
    store.set_text(RUN, &join(&l));
    match Journal::open_for_append(store.clone(), RUN).await {
        Err(JournalError::Broken(b)) => assert_eq!(b.line, 2),
        other => panic!("expected Broken, got {other:?}"),
    }
    // Nothing was changed.
    assert_eq!(store.text(RUN).unwrap(), join(&l));
}

#[tokio::test]
async fn open_for_append_cuts_a_torn_tail_and_says_so() {
    let (store, text, _) = sample().await;
    let tail = "{\"seq\":6,\"at\":\"20";
    store.set_text(RUN, &format!("{text}{tail}"));
    let (mut journal, records) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(
        journal.torn_tail(),
        Some(&TornTail {
            line: 7,
            bytes: tail.len(),
            text: tail.into()
        })
    );
    assert_eq!(store.text(RUN).unwrap(), text);
    journal
        .append(Event::Resumed {
            host: "h".into(),
            pid: 1,
            dropped_torn_line: None,
        })
        .await
        .unwrap();
    let v = verify_stored(store.as_ref(), RUN).await.unwrap();
    assert!(
        v.ok && v.records == 7 && v.head == HeadCheck::Matched,
        "{v:?}"
    );
}

#[tokio::test]
async fn open_for_append_refuses_a_torn_tail_after_a_broken_chain() {
    let (store, text, _) = sample().await;
    let mut l = lines(&text);
    l[2] = l[2].replace("promote-db", "promote-dc");
    store.set_text(RUN, &format!("{}{{\"seq\"", join(&l)));
    assert!(matches!(
        Journal::open_for_append(store.clone(), RUN).await,
        Err(JournalError::Broken(_))
    ));
}

#[tokio::test]
async fn a_head_one_behind_is_accepted_and_repaired() {
    let (store, text, _) = sample().await;
    let l = lines(&text);
    // As if the process died between the append and the head update.
    store.set_head(RUN, Some(&chain::head_text(RUN, 5, &hash_line(&l[4]))));
    let v = verify_stored(store.as_ref(), RUN).await.unwrap();
    assert!(v.ok && v.head == HeadCheck::Behind, "{v:?}");
    let (_journal, records) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(
        verify_stored(store.as_ref(), RUN).await.unwrap().head,
        HeadCheck::Matched
    );
    // Without a head: accepted (and reported), then rewritten on open.
    store.set_head(RUN, None);
    assert_eq!(
        verify_stored(store.as_ref(), RUN).await.unwrap().head,
        HeadCheck::Absent
    );
    Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(
        verify_stored(store.as_ref(), RUN).await.unwrap().head,
        HeadCheck::Matched
    );
}

/// A store whose head writes fail on demand.
struct FailingHead {
    inner: MemoryStore,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl JournalStore for FailingHead {
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
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(JournalError::Io {
                action: "replace",
                path: "head".into(),
                source: std::io::Error::other("disk full"),
            });
        }
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
}

#[tokio::test]
async fn a_failed_write_poisons_the_handle_until_reopened() {
    let store = Arc::new(FailingHead {
        inner: MemoryStore::new(),
        fail: false.into(),
    });
    let mut journal = Journal::create(store.clone(), RUN).await.unwrap();
    journal.append(started()).await.unwrap();
    store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let step = Event::StepStarted {
        step: "p/s".into(),
        attempt: 1,
    };
    assert!(matches!(
        journal.append(step.clone()).await,
        Err(JournalError::Io { .. })
    ));
    store.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(
        journal.append(step.clone()).await,
        Err(JournalError::Poisoned { .. })
    ));
    // The record that reached the store is kept; the head is repaired on reopen.
    let (mut journal, records) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(records.len(), 2);
    journal.append(step).await.unwrap();
    assert_eq!(read(store.as_ref(), RUN).await.unwrap().len(), 3);
}

#[tokio::test]
async fn file_store_journal_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JournalStore> = Arc::new(crate::state::FileStore::new(dir.path()));
    let mut journal = Journal::create(store.clone(), RUN).await.unwrap();
    for event in events().into_iter().take(3) {
        journal.append(event).await.unwrap();
    }
    drop(journal);
    // A crash mid-write, then a resume.
    let path = dir.path().join(format!("runs/{RUN}.jsonl"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":3,");
    std::fs::write(&path, &text).unwrap();
    // Its readers read the records its head covers (the torn rest is a
    // tail, issue 74); the resume cuts it off.
    assert_eq!(read(store.as_ref(), RUN).await.unwrap().len(), 3);
    let (mut journal, records) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(journal.torn_tail().unwrap().bytes, 9);
    for event in events().into_iter().skip(3) {
        journal.append(event).await.unwrap();
    }
    let records = read(store.as_ref(), RUN).await.unwrap();
    assert_eq!(records.len(), 6);
    assert_eq!(store.list().await.unwrap(), [RUN]);
    let head = std::fs::read_to_string(dir.path().join(format!("runs/{RUN}.head"))).unwrap();
    assert!(head.contains("\"records\":6"), "{head}");
}

#[test]
fn run_ids_look_right_and_are_unique() {
    let ids: Vec<String> = (0..1000).map(|_| new_run_id("Payments API")).collect();
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    for id in &ids {
        store::validate_run_id(id).unwrap();
        let (stamp, rest) = id.split_once('-').unwrap();
        let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").unwrap();
        assert!(
            (Utc::now().naive_utc() - at).num_seconds().abs() < 60,
            "{id}"
        );
        let (label, suffix) = rest.rsplit_once('-').unwrap();
        assert_eq!(label, "payments-api");
        assert!(suffix.len() == 4 && suffix.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

#[test]
fn run_ids_sort_by_time() {
    let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // Later ids sort later whatever their label and suffix.
    let ids = [
        run_id_at(t("2026-01-02T03:04:05Z"), "zeta", 0xffff),
        run_id_at(t("2026-01-02T03:04:06Z"), "alpha", 0x0000),
        run_id_at(t("2026-01-02T10:00:00Z"), "alpha", 0x0000),
        run_id_at(t("2026-11-22T04:15:30Z"), "payments", 0x3f9a),
        run_id_at(t("2027-01-01T00:00:00Z"), "a", 0x0001),
    ];
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, ids);
    assert_eq!(ids[3], "20261122T041530Z-payments-3f9a");
    let now = new_run_id("x");
    assert!(ids[0] < now);
}

#[test]
fn run_id_labels_are_made_safe() {
    let t = DateTime::<Utc>::UNIX_EPOCH;
    assert_eq!(run_id_at(t, "../../etc", 1), "19700101T000000Z-etc-0001");
    assert_eq!(run_id_at(t, "", 1), "19700101T000000Z-run-0001");
    assert_eq!(run_id_at(t, "--", 1), "19700101T000000Z-run-0001");
    assert_eq!(
        run_id_at(t, "Ünïcode plan", 1),
        "19700101T000000Z-n-code-plan-0001"
    );
    let long = run_id_at(t, &"a".repeat(500), 1);
    assert!(long.len() < 70, "{long}");
}

/// A valid journal's text and head, built once for the byte-flip tests.
fn fixture() -> &'static (String, String) {
    static FIXTURE: OnceLock<(String, String)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (_, text, head) = rt.block_on(sample());
        (text, head)
    })
}

fn flip(text: &str, index: usize, xor: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[index] ^= xor;
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn flipping_any_bit_of_any_byte_is_detected() {
    let (text, head) = fixture();
    assert!(verify_with_head(RUN, text, Some(head)).ok);
    for index in 0..text.len() {
        for bit in 0..8 {
            let changed = flip(text, index, 1 << bit);
            assert!(
                !verify_with_head(RUN, &changed, Some(head)).ok,
                "undetected: byte {index} bit {bit}"
            );
        }
    }
    for index in 0..head.len() {
        for bit in 0..8 {
            let changed = flip(head, index, 1 << bit);
            assert!(
                !verify_with_head(RUN, text, Some(&changed)).ok,
                "undetected in head: byte {index} bit {bit}"
            );
        }
    }
}

proptest! {
    #[test]
    fn flipping_a_byte_is_detected(index in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let (text, head) = fixture();
        let changed = flip(text, index.index(text.len()), xor);
        let v = verify_with_head(RUN, &changed, Some(head));
        prop_assert!(!v.ok);
        prop_assert!(v.first_broken.is_some());
    }

    #[test]
    fn flipping_a_head_byte_is_detected(index in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let (text, head) = fixture();
        let changed = flip(head, index.index(head.len()), xor);
        prop_assert!(!verify_with_head(RUN, text, Some(&changed)).ok);
    }
}

/// A fence whose token is set by the test (a holder, then a taker).
struct Token(std::sync::atomic::AtomicU64);

#[async_trait]
impl crate::journal::Fence for Token {
    async fn check(
        &self,
        _plan: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, u64>, String> {
        Ok([(
            "payments".to_string(),
            self.0.load(std::sync::atomic::Ordering::SeqCst),
        )]
        .into())
    }
    fn check_local(&self) -> Result<(), String> {
        Ok(())
    }
    fn time_left(&self) -> Option<std::time::Duration> {
        None
    }
}

#[tokio::test]
async fn a_record_with_a_lower_fencing_token_than_an_earlier_one_breaks_the_chain() {
    let store = Arc::new(MemoryStore::new());
    let mut j = Journal::create(store.clone(), RUN).await.unwrap();
    let fence = Arc::new(Token(std::sync::atomic::AtomicU64::new(7)));
    j.set_fence(fence.clone());
    j.append(started()).await.unwrap();
    fence.0.store(9, std::sync::atomic::Ordering::SeqCst);
    j.append(events()[1].clone()).await.unwrap();
    let records = crate::journal::read(store.as_ref(), RUN).await.unwrap();
    assert_eq!(records[0].fence["payments"], 7);
    assert_eq!(records[1].fence["payments"], 9);
    // A process that lost its lease (token 8) writes after the taker (9).
    fence.0.store(8, std::sync::atomic::Ordering::SeqCst);
    j.append(events()[2].clone()).await.unwrap();
    let v = crate::journal::verify_stored(store.as_ref(), RUN)
        .await
        .unwrap();
    let b = first_broken(&v);
    assert_eq!(b.line, 3, "{b:?}");
    assert!(b.reason.contains("fencing token 8"), "{b:?}");
}

#[tokio::test]
async fn records_without_leases_carry_no_fence_field() {
    let store = Arc::new(MemoryStore::new());
    written(&store).await;
    assert!(!store.text(RUN).unwrap().contains("\"fence\""));
}

/// Regression: a step id that is not `plan/kind[:subject]` in a journal on
/// disk (here one whose chain is intact: a buggy writer) used to be read as
/// any string and dropped later where it did not parse; reading it is now an
/// error naming the run, the line and the id.
#[tokio::test]
async fn a_malformed_step_id_in_a_journal_on_disk_is_an_error_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JournalStore> = Arc::new(crate::state::FileStore::new(dir.path()));
    let mut journal = Journal::create(store.clone(), RUN).await.unwrap();
    journal.append(started()).await.unwrap();
    journal
        .append(Event::StepStarted {
            step: StepName::from_parts("", "promote-db", None),
            attempt: 1,
        })
        .await
        .unwrap();
    drop(journal);
    let e = read(store.as_ref(), RUN).await.unwrap_err();
    let Err(JournalError::Broken(b)) = read(store.as_ref(), RUN).await else {
        panic!("expected Broken, got {e:?}");
    };
    assert_eq!(b.line, 2, "{b:?}");
    let message = e.to_string();
    for part in [RUN, "line 2", "`/promote-db` is not a step id", "no plan"] {
        assert!(message.contains(part), "{part}: {message}");
    }
}

/// A memory store holding `keys`, and the memory store itself (to tamper).
fn keyed(keys: RunKeys) -> (Arc<MemoryStore>, Arc<dyn JournalStore>) {
    let mem = Arc::new(MemoryStore::new());
    let store: Arc<dyn JournalStore> = Arc::new(Keyed::new(mem.clone(), keys));
    (mem, store)
}

/// Writes the sample run through `store`.
async fn written_to(store: &Arc<dyn JournalStore>) {
    let mut j = Journal::create(store.clone(), RUN).await.unwrap();
    for event in events().into_iter().take(5) {
        j.append(event).await.unwrap();
    }
}

#[tokio::test]
async fn a_journal_written_with_the_run_key_verifies_against_it_and_resumes() {
    let k = crate::sign::SecretKey::generate();
    let (mem, store) = keyed(RunKeys::new(Some(k.clone()), vec![k.public()]));
    written_to(&store).await;
    let v = verify_stored(store.as_ref(), RUN).await.unwrap();
    assert!(v.ok && v.authenticated, "{v:?}");
    assert_eq!(v.signer, Some(k.public().id()));
    assert!(
        mem.text(RUN)
            .unwrap()
            .lines()
            .all(|l| l.contains("\"sig\":\"ed25519:"))
    );
    let (mut j, records) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(records.len(), 5);
    j.append(events().pop().unwrap()).await.unwrap();
    assert_eq!(
        read_authenticated(store.as_ref(), RUN).await.unwrap().len(),
        6
    );
}

#[tokio::test]
async fn regression_a_journal_rewritten_without_the_key_is_refused_by_resume_and_verify() {
    let k = crate::sign::SecretKey::generate();
    let (mem, store) = keyed(RunKeys::new(Some(k.clone()), vec![k.public()]));
    written_to(&store).await;
    // The forger rewrites the promoted endpoint and recomputes every hash
    // and the head, as a bucket writer can; it has no key.
    let forged = Arc::new(MemoryStore::new());
    let mut j = Journal::create(forged.clone(), RUN).await.unwrap();
    for mut event in events().into_iter().take(5) {
        if let Event::StepSucceeded { outputs, .. } = &mut event {
            *outputs = json!({"endpoint": "evil.example"});
        }
        j.append(event).await.unwrap();
    }
    mem.set_text(RUN, &forged.text(RUN).unwrap());
    mem.set_head(RUN, forged.read_head(RUN).await.unwrap().as_deref());
    // The chain alone says ok: that is the attack.
    assert!(verify_stored(forged.as_ref(), RUN).await.unwrap().ok);
    let v = verify_stored(store.as_ref(), RUN).await.unwrap();
    assert!(!v.ok && !v.authenticated, "{v:?}");
    assert!(first_broken(&v).reason.contains("not signed"), "{v:?}");
    let err = Journal::open_for_append(store.clone(), RUN)
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Broken(_)), "{err}");
    assert!(read_authenticated(store.as_ref(), RUN).await.is_err());
}

#[tokio::test]
async fn with_keys_listed_a_missing_head_is_refused_by_resume() {
    let k = crate::sign::SecretKey::generate();
    let (mem, store) = keyed(RunKeys::new(Some(k.clone()), vec![k.public()]));
    written_to(&store).await;
    mem.set_head(RUN, None);
    let err = Journal::open_for_append(store.clone(), RUN)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("head pointer is missing"), "{err}");
    // A crash between a record and its head (one behind) still resumes:
    // that record carries its own signature.
    let text = mem.text(RUN).unwrap();
    let l = lines(&text);
    mem.set_head(
        RUN,
        Some(&chain::signed_head_text(
            RUN,
            4,
            &hash_line(&l[3]),
            Some(&k),
        )),
    );
    let (_, records) = Journal::open_for_append(store.clone(), RUN).await.unwrap();
    assert_eq!(records.len(), 5);
    assert_eq!(
        verify_stored(store.as_ref(), RUN).await.unwrap().head,
        HeadCheck::Matched
    );
}

#[tokio::test]
async fn a_writer_without_the_run_key_writes_nothing_where_keys_are_listed_or_the_journal_is_signed()
 {
    let k = crate::sign::SecretKey::generate();
    let (mem, unkeyed) = keyed(RunKeys::new(None, vec![k.public()]));
    let err = Journal::create(unkeyed.clone(), RUN).await.unwrap_err();
    assert!(matches!(err, JournalError::Unkeyed { .. }), "{err}");
    assert!(mem.text(RUN).is_none(), "nothing written");
    // A signed journal, then a process with no keys at all resumes it.
    let signing: Arc<dyn JournalStore> = Arc::new(Keyed::new(
        mem.clone(),
        RunKeys::new(Some(k.clone()), vec![]),
    ));
    written_to(&signing).await;
    let bare: Arc<dyn JournalStore> = mem.clone();
    let err = Journal::open_for_append(bare.clone(), RUN)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&k.public().id()), "{err}");
    let fact = Event::EvidenceVerified {
        by: None,
        host: "h".into(),
        plans: vec![],
    };
    let err = late::record(bare.as_ref(), RUN, "h", vec![fact])
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&k.public().id()), "{err}");
    let err = late::record(
        unkeyed.as_ref(),
        RUN,
        "h",
        vec![Event::EvidenceVerified {
            by: None,
            host: "h".into(),
            plans: vec![],
        }],
    )
    .await
    .unwrap_err();
    assert!(matches!(err, JournalError::Unkeyed { .. }), "{err}");
}

#[tokio::test]
async fn late_facts_are_signed_and_an_unsigned_one_is_not_read_as_a_fact_where_keys_are_listed() {
    let k = crate::sign::SecretKey::generate();
    let (mem, store) = keyed(RunKeys::new(Some(k.clone()), vec![k.public()]));
    written_to(&store).await;
    let fact = Event::EvidenceVerified {
        by: None,
        host: "h".into(),
        plans: vec![],
    };
    let written = late::record(store.as_ref(), RUN, "h", vec![fact])
        .await
        .unwrap();
    // A forger without the key puts an unsigned copy beside it, under an
    // id of its own (drctl itself refuses to write one: see above).
    let (id, body) = mem.read_late(RUN).await.unwrap().remove(0);
    assert_eq!(id, written[0].id);
    let forged_id = format!("{id}0");
    let unsigned = trust::split_signed(&body).0.replace(&id, &forged_id);
    mem.put_late(RUN, &forged_id, &unsigned).await.unwrap();
    let bare: Arc<dyn JournalStore> = mem.clone();
    let facts = late::read(store.as_ref(), RUN).await.unwrap();
    assert_eq!(facts.facts.len(), 1);
    assert_eq!(facts.unreadable.len(), 1);
    assert!(facts.unreadable[0].1.contains("not signed"), "{facts:?}");
    // Without listed keys both read.
    assert_eq!(late::read(bare.as_ref(), RUN).await.unwrap().facts.len(), 2);
}
