//! The one way every reader of many runs reads them: `runs list`,
//! `schedule list|run` and the drill slot check, `watch`, the cleanup's
//! owner, a drill's look for another's raise and the sweep. One run read
//! with its late facts is `runs::late::read`, which authenticates the same
//! way.
//!
//! # Why one way
//!
//! A writer of the state (a bucket's `PutObject`, a shell on the state
//! directory) can write a journal whose hash chain is correct: SHA-256 has
//! no key. Only the run key's signatures tell the operators' journals from
//! such a forgery, and a reader that parses lines instead believes it: a
//! forged line that claims a plan's next drill slot stops its scheduled
//! drills; a forged expired drill makes a sweep lower a group a failover
//! raised. So with public run keys listed (the store's
//! [`JournalStore::keys`]), every journal is read only when every record
//! and its head are signed by one of them ([`super::read_authenticated`]);
//! the others are left out, and named with why, for the command to say.
//! Without keys listed nothing can be authenticated: journals are read
//! leniently, every line that parses (`drctl audit verify` judges chains).

use super::{JournalError, JournalStore, Record};

/// One journal as a reader of many runs takes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Listed {
    /// Its records (authenticated when keys are listed).
    Read(Vec<Record>),
    /// It does not verify against the listed keys: why.
    LeftOut(String),
    /// It vanished between the listing and the read.
    Gone,
}

/// Reads run `id` of `store` as every reader of many runs does (the
/// module's rule).
pub async fn read_listed(store: &dyn JournalStore, id: &str) -> Result<Listed, JournalError> {
    if store.keys().checks() {
        return match super::read_authenticated(store, id).await {
            Ok(records) => Ok(Listed::Read(records)),
            Err(JournalError::Broken(b)) => Ok(Listed::LeftOut(b.to_string())),
            // Damaged (a record object larger than drctl reads): left out
            // and named, so that it does not stop every reader of runs.
            Err(e @ JournalError::Corrupt { .. }) => Ok(Listed::LeftOut(e.to_string())),
            Err(JournalError::NotFound { .. }) => Ok(Listed::Gone),
            Err(e) => Err(e),
        };
    }
    match read_leniently(store, id).await {
        Ok(records) => Ok(Listed::Read(records)),
        Err(JournalError::NotFound { .. }) => Ok(Listed::Gone),
        Err(e @ JournalError::Corrupt { .. }) => Ok(Listed::LeftOut(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Every line of run `id` that parses as a record, believed or not: what
/// a journal says, for a reader that must know what a journal it could
/// not authenticate might have been (the cleanup's owner, in doubt).
pub async fn read_leniently(
    store: &dyn JournalStore,
    id: &str,
) -> Result<Vec<Record>, JournalError> {
    let text = store.read(id).await?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// The runs of a store as read, oldest first, and the journals left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runs {
    /// Each run read: its id and records.
    pub runs: Vec<(String, Vec<Record>)>,
    /// Each journal that does not verify against the listed keys: its id
    /// and why.
    pub left_out: Vec<(String, String)>,
    /// Whether the runs were read against listed run keys (`false`: none
    /// is listed, and every journal that parses was read, believed or not).
    pub authenticated: bool,
}

impl Runs {
    /// One line naming the journals left out, for a warning (`None`: none
    /// was).
    pub fn left_out_line(&self) -> Option<String> {
        if self.left_out.is_empty() {
            return None;
        }
        let named: Vec<String> = (self.left_out.iter())
            .map(|(id, why)| format!("{id} ({why})"))
            .collect();
        Some(format!(
            "{} journal(s) left out: not signed by a listed key, so possibly forged by a writer of the state: {}",
            self.left_out.len(),
            named.join("; ")
        ))
    }
}

/// Every run of `store` whose id `wanted` takes (run ids begin with their
/// start time, so a reader of recent runs reads only those), read
/// concurrently as [`read_listed`] reads one.
pub async fn read_runs(
    store: &dyn JournalStore,
    wanted: impl Fn(&str) -> bool,
) -> Result<Runs, JournalError> {
    use futures::StreamExt as _;
    let ids: Vec<String> = (store.list().await?.into_iter())
        .filter(|id| wanted(id))
        .collect();
    let read: Vec<(String, Result<Listed, JournalError>)> =
        futures::stream::iter(ids.into_iter().map(|id| async move {
            let listed = read_listed(store, &id).await;
            (id, listed)
        }))
        .buffered(16)
        .collect()
        .await;
    let mut out = Runs {
        authenticated: store.keys().checks(),
        ..Runs::default()
    };
    for (id, listed) in read {
        match listed? {
            Listed::Read(records) => out.runs.push((id, records)),
            Listed::LeftOut(why) => out.left_out.push((id, why)),
            Listed::Gone => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::journal::{Event, Journal, Keyed, MemoryStore, RunKeys};
    use crate::sign::SecretKey;

    fn finished() -> Event {
        Event::RunFinished {
            outcome: crate::journal::Outcome::Succeeded,
            summary: serde_json::Value::Null,
        }
    }

    /// A keyed store over `mem`, and the key that signs through it.
    fn keyed(mem: &Arc<MemoryStore>) -> Arc<dyn JournalStore> {
        let key = SecretKey::generate();
        let keys = RunKeys::new(Some(key.clone()), vec![key.public()]);
        Arc::new(Keyed::new(mem.clone(), keys))
    }

    /// A journal written without the run key (a bucket writer's), its
    /// chain and head correct, is left out and named when keys are
    /// listed; the signed one is read; without keys both are.
    #[tokio::test]
    async fn an_unsigned_journal_is_left_out_and_named_when_keys_are_listed() {
        let mem = Arc::new(MemoryStore::new());
        let store = keyed(&mem);
        let mut signed = Journal::create(store.clone(), "20261126T010000Z-orders-aaaa")
            .await
            .unwrap();
        signed.append(finished()).await.unwrap();
        signed.flush().await.unwrap();
        let plain: Arc<dyn JournalStore> = mem.clone();
        let mut forged = Journal::create(plain.clone(), "20261126T020000Z-orders-ffff")
            .await
            .unwrap();
        forged.append(finished()).await.unwrap();
        forged.flush().await.unwrap();

        let runs = read_runs(store.as_ref(), |_| true).await.unwrap();
        let read: Vec<&str> = runs.runs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(read, ["20261126T010000Z-orders-aaaa"]);
        assert_eq!(runs.left_out.len(), 1);
        assert_eq!(runs.left_out[0].0, "20261126T020000Z-orders-ffff");
        let line = runs.left_out_line().unwrap();
        assert!(line.contains("20261126T020000Z-orders-ffff"), "{line}");

        let lenient = read_runs(plain.as_ref(), |_| true).await.unwrap();
        assert_eq!(lenient.runs.len(), 2);
        assert!(lenient.left_out.is_empty() && lenient.left_out_line().is_none());
        let recent = read_runs(store.as_ref(), |id| id >= "20261126T015000Z")
            .await
            .unwrap();
        assert!(recent.runs.is_empty() && recent.left_out.len() == 1);
    }

    /// Issue 74, attack 3: one junk line appended after a failover's last
    /// record (by a writer of the state, with no key) left the whole run
    /// out of every authenticated reader: the cleanup's owner no longer saw
    /// the failover, and a sweep lowered the group it had raised. Records
    /// up to the signed head stand whatever follows; the tail is named by
    /// `audit verify`, and the run cannot be appended to past it. A junk
    /// line before the head's record still breaks the journal.
    #[tokio::test]
    async fn regression_one_junk_line_after_a_runs_last_record_hid_the_run() {
        let mem = Arc::new(MemoryStore::new());
        let store = keyed(&mem);
        let id = "20261126T010000Z-payments-f1";
        let mut j = Journal::create(store.clone(), id).await.unwrap();
        j.append(finished()).await.unwrap();
        j.append(finished()).await.unwrap();
        j.flush().await.unwrap();
        drop(j);
        let signed = mem.text(id).unwrap();
        for junk in ["not json", "{\"seq\":2}", ""] {
            mem.set_text(id, &format!("{signed}{junk}\n"));
            let runs = read_runs(store.as_ref(), |_| true).await.unwrap();
            assert!(runs.left_out.is_empty(), "{junk:?}: {:?}", runs.left_out);
            assert_eq!(runs.runs.len(), 1);
            assert_eq!(runs.runs[0].1.len(), 2, "{junk:?}: both records read");
            let (text, head) = crate::journal::snapshot(mem.as_ref(), id).await.unwrap();
            let v =
                crate::journal::chain::verify_with_keys(id, &text, head.as_deref(), store.keys());
            assert!(
                !v.ok && v.authenticated && v.first_broken.is_none(),
                "{v:?}"
            );
            let tail = v.tail.as_ref().expect("the tail is named");
            assert_eq!(tail.line, 3);
            let problem = v.audit_problem().expect("audit names it");
            assert!(problem.contains("line 3 and after"), "{problem}");
            let resumed = Journal::open_for_append(store.clone(), id).await;
            assert!(
                matches!(resumed, Err(JournalError::Broken(ref b)) if b.line == 3),
                "{junk:?}"
            );
        }
        // Before the head's last record: not a tail, the journal is broken.
        let mut lines: Vec<&str> = signed.lines().collect();
        lines.insert(1, "not json");
        mem.set_text(id, &format!("{}\n", lines.join("\n")));
        let runs = read_runs(store.as_ref(), |_| true).await.unwrap();
        assert_eq!(runs.left_out.len(), 1);
    }
}
