//! The journal on an object store: one immutable object per record.
//!
//! Layout under the state prefix:
//! * `runs/<run>/<seq>.json`: record `seq` (zero-padded to 10 digits, so
//!   that name order is record order), written create-only: two writers can
//!   never both write record N, so a journal cannot fork;
//! * `runs/<run>/head`: the head pointer, moved forward after each append
//!   by compare-and-swap (it detects a deleted last record, as the file
//!   store's head does);
//! * `runs/<run>/late/<id>.json`: the run's late facts
//!   ([`crate::journal::late`]), one create-only object each, written by
//!   processes that do not hold the run (so never racing its records).
//!
//! An object is written whole or not at all, so there is never a torn line.
//! A create-only write whose answer was lost and whose retry finds the object
//! compares the bytes: the same bytes are our own earlier attempt; other
//! bytes are another writer's record ([`JournalError::Conflict`]).
//!
//! Reading a run is one listing and then every record fetched concurrently
//! (bounded), not one request after another.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::cloud::{CloudError, ObjectStore, ObjectUrl, PutMode, PutOutcome, SwapOutcome};
use crate::journal::store::{
    MAX_JOURNAL_BYTES, MAX_RECORDS, late_exists, too_long, validate_run_id,
};
use crate::journal::{JournalError, JournalStore};

/// How many record reads are in flight at once when reading a run.
const READ_CONCURRENCY: usize = 32;

/// A head as this process last saw it: version, record count, bytes.
type CachedHead = (String, u64, Bytes);

/// [`JournalStore`] over S3 or GCS.
pub struct ObjectJournalStore {
    objects: Arc<dyn ObjectStore>,
    via: String,
    base: ObjectUrl,
    /// The version, record count and bytes of each head this process last
    /// wrote or read: the next head write swaps on it directly (one
    /// request). Only a hint: a stale version fails the swap and the head is
    /// read again; and since heads only move forward, a count below the
    /// cached one (or the same head again) needs no write at all.
    head_versions: std::sync::Mutex<std::collections::HashMap<String, CachedHead>>,
}

impl ObjectJournalStore {
    /// Writes `body` at `url` create-only: `true` when it is there as ours
    /// (written now, or by our own earlier attempt whose answer was lost:
    /// the same bytes), `false` when another writer's object holds the key.
    async fn create_once(&self, url: &ObjectUrl, body: &str) -> Result<bool, JournalError> {
        let body = Bytes::from(body.to_string());
        match self
            .objects
            .put(&self.via, url, body.clone(), PutMode::CreateOnly)
            .await
            .map_err(cloud)?
        {
            PutOutcome::Written(_) => Ok(true),
            PutOutcome::AlreadyExists => {
                let there = self.objects.get(&self.via, url).await.map_err(cloud)?;
                Ok(there.as_deref() == Some(body.as_ref()))
            }
        }
    }

    /// A store under `base` (`s3://bucket/prefix`), reached through `via`.
    pub fn new(objects: Arc<dyn ObjectStore>, via: &str, base: ObjectUrl) -> Self {
        Self {
            objects,
            via: via.to_string(),
            base,
            head_versions: Default::default(),
        }
    }

    fn head_version(&self, run_id: &str) -> Option<CachedHead> {
        self.head_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run_id)
            .cloned()
    }

    fn remember_head(
        &self,
        run_id: &str,
        version: Option<String>,
        count: Option<u64>,
        body: &Bytes,
    ) {
        let mut m = self.head_versions.lock().unwrap_or_else(|p| p.into_inner());
        match (version, count) {
            (Some(v), Some(c)) if !v.is_empty() => {
                // Never remember an older head than one already known.
                if m.get(run_id).is_none_or(|(_, known, _)| *known <= c) {
                    m.insert(run_id.to_string(), (v, c, body.clone()));
                }
            }
            _ => {
                m.remove(run_id);
            }
        }
    }

    fn run_prefix(&self, run_id: &str) -> ObjectUrl {
        let mut u = self.base.join(&format!("runs/{run_id}"));
        u.key.push('/');
        u
    }

    fn record_url(&self, run_id: &str, seq: u64) -> ObjectUrl {
        self.base.join(&format!("runs/{run_id}/{seq:010}.json"))
    }

    fn head_url(&self, run_id: &str) -> ObjectUrl {
        self.base.join(&format!("runs/{run_id}/head"))
    }

    fn late_prefix(&self, run_id: &str) -> ObjectUrl {
        let mut u = self.base.join(&format!("runs/{run_id}/late"));
        u.key.push('/');
        u
    }

    /// The record keys of a run, in order, with their seq.
    /// The record keys of run `run_id`, in order; a journal whose records
    /// the listing says hold more than [`MAX_RECORDS`] or
    /// [`MAX_JOURNAL_BYTES`] is judged so before any is read.
    async fn record_keys(&self, run_id: &str) -> Result<Vec<(u64, String)>, JournalError> {
        let prefix = self.run_prefix(run_id);
        let listing = self
            .objects
            .list(&self.via, &prefix, true)
            .await
            .map_err(cloud)?;
        let mut keys: Vec<(u64, String)> = (listing.keys.iter())
            .filter_map(|k| {
                let name = k.strip_prefix(&prefix.key)?;
                let seq: u64 = name.strip_suffix(".json")?.parse().ok()?;
                // Only the spelling drctl writes: `+5.json` or
                // `00000000005.json` would sort before the real record and
                // break the journal in front of its head (issue 74).
                (name == format!("{seq:010}.json")).then_some((seq, k.clone()))
            })
            .collect();
        if keys.len() > MAX_RECORDS {
            return Err(too_long(run_id, format!("{} records", keys.len())));
        }
        let bytes = listing.bytes_of(keys.iter().map(|(_, k)| k));
        if bytes > MAX_JOURNAL_BYTES {
            return Err(too_long(run_id, format!("{bytes} bytes")));
        }
        keys.sort();
        Ok(keys)
    }
}

fn cloud(source: CloudError) -> JournalError {
    JournalError::Cloud {
        source: Box::new(source),
    }
}

#[async_trait]
impl JournalStore for ObjectJournalStore {
    async fn create(&self, run_id: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        // The head is the journal's existence marker: create-only, so two
        // processes that drew the same run id cannot share a journal.
        // Unsigned: the journal replaces it with its own (signed) head of
        // the same count right after.
        let head = Bytes::from(crate::journal::chain::head_text(
            run_id,
            0,
            crate::journal::ZERO_HASH,
        ));
        match self
            .objects
            .put(
                &self.via,
                &self.head_url(run_id),
                head.clone(),
                PutMode::CreateOnly,
            )
            .await
            .map_err(cloud)?
        {
            PutOutcome::Written(v) => {
                self.remember_head(run_id, v, Some(0), &head);
                Ok(())
            }
            PutOutcome::AlreadyExists => Err(JournalError::Exists {
                run_id: run_id.to_string(),
            }),
        }
    }

    async fn append(&self, run_id: &str, seq: u64, line: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        if line.contains('\n') {
            return Err(JournalError::Corrupt {
                run_id: run_id.to_string(),
                detail: "refusing to append a line that contains a newline".into(),
            });
        }
        let url = self.record_url(run_id, seq);
        if self.create_once(&url, line).await? {
            Ok(())
        } else {
            Err(JournalError::Conflict {
                run_id: run_id.to_string(),
                seq,
            })
        }
    }

    async fn read(&self, run_id: &str) -> Result<String, JournalError> {
        validate_run_id(run_id)?;
        let keys = self.record_keys(run_id).await?;
        if keys.is_empty() && self.read_head(run_id).await?.is_none() {
            return Err(JournalError::NotFound {
                run_id: run_id.to_string(),
            });
        }
        let objects = &self.objects;
        let via = self.via.as_str();
        let base = &self.base;
        let bodies: Vec<Bytes> = futures::stream::iter(keys.into_iter().map(|(_, key)| {
            let url = ObjectUrl {
                key,
                ..base.clone()
            };
            async move {
                match objects.get(via, &url).await {
                    Ok(Some(b)) => Ok(b),
                    // Listed, then gone: the chain check reports the gap.
                    Ok(None) => Ok(Bytes::new()),
                    // Not a record drctl wrote: the journal is damaged
                    // (its readers leave it out and name it), not unread.
                    Err(e) if e.is_too_large() => Err(JournalError::Corrupt {
                        run_id: run_id.to_string(),
                        detail: format!("{}: {}", url, e.message),
                    }),
                    Err(e) => Err(cloud(e)),
                }
            }
        }))
        .buffered(READ_CONCURRENCY)
        // Stops reading once the bodies pass the bound: a journal of many
        // large objects is not read whole before it is judged.
        .try_fold(
            (Vec::new(), 0u64),
            |(mut bodies, total), b: Bytes| async move {
                let total = total + b.len() as u64;
                if total > MAX_JOURNAL_BYTES {
                    return Err(too_long(run_id, format!("over {total} bytes")));
                }
                bodies.push(b);
                Ok((bodies, total))
            },
        )
        .await?
        .0;
        let mut text = String::new();
        for b in bodies.iter().filter(|b| !b.is_empty()) {
            text.push_str(&String::from_utf8_lossy(b));
            text.push('\n');
        }
        Ok(text)
    }

    async fn list(&self) -> Result<Vec<String>, JournalError> {
        let mut prefix = self.base.join("runs");
        prefix.key.push('/');
        let listing = self
            .objects
            .list(&self.via, &prefix, true)
            .await
            .map_err(cloud)?;
        let mut runs: Vec<String> = listing
            .prefixes
            .iter()
            .filter_map(|p| {
                let id = p.strip_prefix(&prefix.key)?.trim_end_matches('/');
                validate_run_id(id).ok().map(|()| id.to_string())
            })
            .collect();
        runs.sort();
        Ok(runs)
    }

    /// The head only moves forward: it is replaced by compare-and-swap, and
    /// not at all when the stored one already names more records (a writer
    /// re-opening the journal while another's head write is in flight must
    /// not set it back), or is the same head. A head of the same count with
    /// other bytes (signed where the stored one is not: the one `create`
    /// wrote) replaces it.
    async fn write_head(&self, run_id: &str, head: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        let url = self.head_url(run_id);
        let count = |text: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v["records"].as_u64())
        };
        let new = count(head.as_bytes());
        let body = Bytes::from(head.to_string());
        // The common case: this process wrote the head last.
        if let (Some((version, known, known_body)), Some(n)) = (self.head_version(run_id), new) {
            if n < known || (n == known && known_body == body) {
                return Ok(());
            }
            if let SwapOutcome::Swapped(v) = self
                .objects
                .replace_if(&self.via, &url, body.clone(), &version)
                .await
                .map_err(cloud)?
            {
                self.remember_head(run_id, Some(v), new, &body);
                return Ok(());
            }
        }
        for _ in 0..8 {
            match self
                .objects
                .get_versioned(&self.via, &url)
                .await
                .map_err(cloud)?
            {
                None => match self
                    .objects
                    .put(&self.via, &url, body.clone(), PutMode::CreateOnly)
                    .await
                    .map_err(cloud)?
                {
                    PutOutcome::Written(v) => {
                        self.remember_head(run_id, v, new, &body);
                        return Ok(());
                    }
                    PutOutcome::AlreadyExists => continue,
                },
                Some(current) => {
                    if current.body == body
                        || matches!((count(&current.body), new), (Some(c), Some(n)) if c > n)
                    {
                        self.remember_head(
                            run_id,
                            Some(current.version),
                            count(&current.body),
                            &current.body,
                        );
                        return Ok(());
                    }
                    match self
                        .objects
                        .replace_if(&self.via, &url, body.clone(), &current.version)
                        .await
                        .map_err(cloud)?
                    {
                        SwapOutcome::Swapped(v) => {
                            self.remember_head(run_id, Some(v), new, &body);
                            return Ok(());
                        }
                        SwapOutcome::Stale => continue,
                    }
                }
            }
        }
        Err(JournalError::Corrupt {
            run_id: run_id.to_string(),
            detail: "the head kept changing while being written; another process is appending"
                .into(),
        })
    }

    async fn read_head(&self, run_id: &str) -> Result<Option<String>, JournalError> {
        validate_run_id(run_id)?;
        Ok(self
            .objects
            .get(&self.via, &self.head_url(run_id))
            .await
            .map_err(cloud)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn pipelined_head(&self) -> bool {
        true
    }

    async fn put_late(&self, run_id: &str, id: &str, body: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        validate_run_id(id)?;
        let mut url = self.late_prefix(run_id);
        url.key.push_str(&format!("{id}.json"));
        if self.create_once(&url, body).await? {
            Ok(())
        } else {
            Err(late_exists(run_id, id))
        }
    }

    async fn read_late(&self, run_id: &str) -> Result<Vec<(String, String)>, JournalError> {
        validate_run_id(run_id)?;
        let prefix = self.late_prefix(run_id);
        let listing = self
            .objects
            .list(&self.via, &prefix, true)
            .await
            .map_err(cloud)?;
        let ids: Vec<(String, String)> = (listing.keys.iter())
            .filter_map(|k| {
                let id = k.strip_prefix(&prefix.key)?.strip_suffix(".json")?;
                Some((id.to_string(), k.clone()))
            })
            .collect();
        // Late facts are few (an approval, deliveries): bounded as records.
        let bytes = listing.bytes_of(ids.iter().map(|(_, k)| k));
        if ids.len() > MAX_RECORDS || bytes > MAX_JOURNAL_BYTES {
            let what = format!("{} late facts, {bytes} bytes", ids.len());
            return Err(too_long(run_id, what));
        }
        let objects = &self.objects;
        let via = self.via.as_str();
        let base = &self.base;
        let mut out: Vec<(String, String)> =
            futures::stream::iter(ids.into_iter().map(|(id, key)| async move {
                let url = ObjectUrl {
                    key,
                    ..base.clone()
                };
                match objects.get(via, &url).await {
                    Ok(Some(b)) => Ok(Some((id, String::from_utf8_lossy(&b).into_owned()))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(cloud(e)),
                }
            }))
            .buffered(READ_CONCURRENCY)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await?;
        out.sort();
        Ok(out)
    }

    async fn truncate_torn_tail(&self, run_id: &str, keep: u64) -> Result<(), JournalError> {
        // Objects are never torn: the only cut allowed is none at all.
        let text = self.read(run_id).await?;
        if keep == text.len() as u64 {
            Ok(())
        } else {
            Err(JournalError::Corrupt {
                run_id: run_id.to_string(),
                detail: format!(
                    "refusing to cut a journal on object storage to {keep} of its {} bytes: its records are whole objects",
                    text.len()
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::journal::{Event, Journal};

    fn store(fake: &FakeCloud) -> Arc<ObjectJournalStore> {
        fake.state().buckets.push("s3://state".into());
        Arc::new(ObjectJournalStore::new(
            Arc::new(fake.clone()),
            "us-east-1",
            ObjectUrl::parse("s3://state/team").unwrap(),
        ))
    }

    fn resumed() -> Event {
        Event::Resumed {
            host: "h".into(),
            pid: 1,
            dropped_torn_line: None,
        }
    }

    /// Issue 74 (attack 3, on the object stores; review): a writer of the
    /// state put a record under a key drctl does not spell
    /// (`+0000000001.json`, `00000000001.json`), which sorted before the
    /// real one and broke the journal in front of its head, hiding the run
    /// from every authenticated reader. Only the spelling drctl writes is a
    /// record; the others are not read.
    #[tokio::test]
    async fn a_record_key_drctl_does_not_spell_is_not_a_record() {
        let fake = FakeCloud::default();
        let s = store(&fake);
        let mut j = Journal::create(s.clone(), "r1").await.unwrap();
        for _ in 0..3 {
            j.append(resumed()).await.unwrap();
        }
        j.flush().await.unwrap();
        for bogus in ["+000000001.json", "00000000001.json", "1.json"] {
            let url = ObjectUrl::parse(&format!("s3://state/team/runs/r1/{bogus}")).unwrap();
            let body = Bytes::from_static(b"{\"junk\":true}");
            (fake
                .put("us-east-1", &url, body, crate::cloud::PutMode::Overwrite)
                .await)
                .unwrap();
        }
        let records = crate::journal::read(s.as_ref(), "r1").await.unwrap();
        assert_eq!(records.len(), 3);
    }

    /// Issue 74, attack 11: every record of a journal was read, however
    /// many a writer of the state put under it, by every reader of runs in
    /// every round. A journal of more records, or more bytes, than drctl
    /// reads is damaged: not read whole, left out and named by every
    /// reader of many runs, which goes on.
    #[tokio::test]
    async fn a_journal_of_more_records_or_bytes_than_drctl_reads_is_left_out() {
        use crate::journal::runs::{Listed, read_listed};
        let fake = FakeCloud::default();
        let s = store(&fake);
        let mut j = Journal::create(s.clone(), "r1").await.unwrap();
        j.append(resumed()).await.unwrap();
        j.flush().await.unwrap();
        let put = |seq: usize, body: Bytes| {
            let url = format!("s3://state/team/runs/r1/{seq:010}.json");
            fake.state().objects.insert(url, body);
        };
        let junk = Bytes::from_static(b"{\"junk\":true}");
        for seq in 1..=MAX_RECORDS {
            put(seq, junk.clone());
        }
        let Listed::LeftOut(why) = read_listed(s.as_ref(), "r1").await.unwrap() else {
            panic!("read a journal of {} records", MAX_RECORDS + 1);
        };
        assert!(
            why.contains("records") && why.contains("more than drctl reads"),
            "{why}"
        );
        // Few records, many bytes: read no further than the bound.
        fake.state().objects.retain(|k, _| {
            !k.contains("/runs/r1/") || k.ends_with("0000000000.json") || k.ends_with(".head")
        });
        let big = Bytes::from(vec![b' '; 60 * 1024 * 1024]);
        for seq in 1..=5 {
            put(seq, big.clone());
        }
        let Listed::LeftOut(why) = read_listed(s.as_ref(), "r1").await.unwrap() else {
            panic!("read a journal of 300 MiB");
        };
        // Judged by the sizes its listing gives, before any body is read
        // (review: 32 bodies of up to 64 MiB were read at once first).
        assert!(why.contains(" bytes") && !why.contains("over "), "{why}");
    }

    #[tokio::test]
    async fn records_are_objects_and_read_back_as_a_verified_chain() {
        let fake = FakeCloud::default();
        let s = store(&fake);
        let mut j = Journal::create(s.clone(), "r1").await.unwrap();
        for _ in 0..12 {
            j.append(resumed()).await.unwrap();
        }
        let records = crate::journal::read(s.as_ref(), "r1").await.unwrap();
        assert_eq!(records.len(), 12);
        assert!(
            fake.state()
                .objects
                .contains_key("s3://state/team/runs/r1/0000000011.json")
        );
        assert_eq!(s.list().await.unwrap(), vec!["r1".to_string()]);
        assert!(matches!(
            Journal::create(s.clone(), "r1").await,
            Err(JournalError::Exists { .. })
        ));
    }

    #[tokio::test]
    async fn a_second_writer_of_the_same_record_is_refused_and_the_journal_does_not_fork() {
        let fake = FakeCloud::default();
        let s = store(&fake);
        let mut a = Journal::create(s.clone(), "r2").await.unwrap();
        a.append(resumed()).await.unwrap();
        let (mut b, _) = Journal::open_for_append(s.clone(), "r2").await.unwrap();
        b.append(resumed()).await.unwrap();
        let err = a.append(resumed()).await.unwrap_err();
        assert!(
            matches!(err, JournalError::Conflict { seq: 1, .. }),
            "{err}"
        );
        // a is poisoned; b goes on; the chain verifies.
        assert!(matches!(
            a.append(resumed()).await,
            Err(JournalError::Poisoned { .. })
        ));
        b.append(resumed()).await.unwrap();
        assert_eq!(
            crate::journal::read(s.as_ref(), "r2").await.unwrap().len(),
            3
        );
    }

    #[tokio::test]
    async fn a_retried_append_that_finds_its_own_bytes_succeeds() {
        let fake = FakeCloud::default();
        let s = store(&fake);
        s.create("r3").await.unwrap();
        s.append("r3", 0, "{\"x\":1}").await.unwrap();
        s.append("r3", 0, "{\"x\":1}").await.unwrap();
        assert!(matches!(
            s.append("r3", 0, "{\"x\":2}").await,
            Err(JournalError::Conflict { .. })
        ));
    }

    #[tokio::test]
    async fn late_facts_are_objects_beside_the_records_and_never_records() {
        let fake = FakeCloud::default();
        let s = store(&fake);
        let mut j = Journal::create(s.clone(), "r5").await.unwrap();
        j.append(resumed()).await.unwrap();
        s.put_late("r5", "b", "two").await.unwrap();
        s.put_late("r5", "a", "one").await.unwrap();
        s.put_late("r5", "a", "one").await.unwrap();
        assert!(s.put_late("r5", "a", "other").await.is_err());
        assert!(
            fake.state()
                .objects
                .contains_key("s3://state/team/runs/r5/late/a.json")
        );
        assert_eq!(
            s.read_late("r5").await.unwrap(),
            [
                ("a".to_string(), "one".to_string()),
                ("b".into(), "two".into())
            ]
        );
        // The run's records and its next append are untouched by them.
        j.append(resumed()).await.unwrap();
        j.flush().await.unwrap();
        assert_eq!(
            crate::journal::read(s.as_ref(), "r5").await.unwrap().len(),
            2
        );
        assert_eq!(s.list().await.unwrap(), ["r5"]);
        assert_eq!(s.read_late("r4").await.unwrap(), []);
    }

    #[tokio::test]
    async fn a_missing_run_is_not_found_and_a_deleted_last_record_is_caught_by_the_head() {
        let fake = FakeCloud::default();
        let s = store(&fake);
        assert!(matches!(
            s.read("nope").await,
            Err(JournalError::NotFound { .. })
        ));
        let mut j = Journal::create(s.clone(), "r4").await.unwrap();
        j.append(resumed()).await.unwrap();
        j.append(resumed()).await.unwrap();
        j.flush().await.unwrap();
        fake.state()
            .objects
            .remove("s3://state/team/runs/r4/0000000001.json");
        let v = crate::journal::verify_stored(s.as_ref(), "r4")
            .await
            .unwrap();
        assert!(!v.ok, "{v:?}");
    }
}
