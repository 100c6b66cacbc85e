//! Journals in a local directory: one JSON-lines file per run, appended and
//! fsynced before each action it announces.
//!
//! This is where a single machine's runs live (`--state DIR`); it sits in
//! `state/` beside the bucket stores and the lock files because choosing
//! where runs are kept is the state layer's job, while the journal itself
//! (`crate::journal`) only knows the [`JournalStore`] trait.
//!
//! # One writer at a time
//!
//! Each append takes an exclusive lock on the journal file (`flock`), reads
//! the `seq` of the last line, and writes only the record that comes next:
//! two processes that both think they write record N (a run and anything
//! else that opened its journal) can never both succeed; the second is
//! refused with [`JournalError::Conflict`], as a bucket refuses it, instead
//! of leaving two records N in the chain. The head pointer is moved under
//! the same lock, and only forward. Late facts
//! ([`crate::journal::late`]) are files of their own, created once, in
//! `<run>.late/`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::journal::JournalError;
use crate::journal::store::{
    JournalStore, MAX_JOURNAL_BYTES, MAX_RECORDS, check_line, check_torn_cut, late_exists,
    too_long, torn_tail_error, validate_run_id,
};

/// Journals as files: `<state_dir>/runs/<run_id>.jsonl`, with the head
/// pointer in `<state_dir>/runs/<run_id>.head`.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// A store rooted at the state directory (created on first use).
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            root: state_dir.into(),
        }
    }

    /// The directory holding the journals.
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// The file of a run's journal.
    pub fn journal_path(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(format!("{run_id}.jsonl"))
    }

    /// The file of a run's head pointer.
    pub fn head_path(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(format!("{run_id}.head"))
    }

    /// The directory of a run's late facts.
    pub fn late_dir(&self, run_id: &str) -> PathBuf {
        self.runs_dir().join(format!("{run_id}.late"))
    }
}

/// How long an append waits for another process's append to the same
/// journal (one write and an fsync) before it gives up.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes the exclusive lock of a journal file, waiting at most
/// [`LOCK_WAIT`] for another writer to finish its append.
fn lock_journal(file: &File, run_id: &str, path: &Path) -> Result<(), JournalError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let mut pause = std::time::Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Corrupt {
                    run_id: run_id.to_string(),
                    detail: format!(
                        "another process held the lock of {} for more than {} s; refusing to append",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    ),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", path)(e)),
        }
    }
}

/// The bytes of the last line of a file of `len > 0` bytes that ends with
/// a newline (without it), read backwards in chunks.
fn last_line(file: &mut File, len: u64) -> std::io::Result<Vec<u8>> {
    const CHUNK: u64 = 8192;
    let mut start = len - 1;
    let mut line: Vec<u8> = Vec::new();
    while start > 0 {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            chunk.drain(..=i);
            chunk.extend_from_slice(&line);
            return Ok(chunk);
        }
        chunk.extend_from_slice(&line);
        line = chunk;
        start = from;
    }
    Ok(line)
}

/// The record number the next line of a locked journal file must carry:
/// one past the last line's `seq` (0 for an empty file).
fn next_seq(file: &mut File, run_id: &str, path: &Path) -> Result<u64, JournalError> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    let len = file.metadata().map_err(io("inspect", path))?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::End(-1)).map_err(io("read", path))?;
    file.read_exact(&mut last).map_err(io("read", path))?;
    if last[0] != b'\n' {
        return Err(torn_tail_error(run_id));
    }
    let line = last_line(file, len).map_err(io("read", path))?;
    match serde_json::from_slice::<Seq>(&line) {
        Ok(r) => Ok(r.seq.saturating_add(1)),
        Err(_) => Err(JournalError::Corrupt {
            run_id: run_id.to_string(),
            detail: format!(
                "its last line is not a journal record, so the next record's number is unknown; refusing to append (`drctl audit verify {run_id}`)"
            ),
        }),
    }
}

/// The record count a head pointer names, if it names one.
fn head_records(head: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(head)
        .ok()?
        .get("records")?
        .as_u64()
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io {
        action,
        path,
        source,
    }
}

/// Fsyncs a directory so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Runs blocking file work off the async executor.
async fn blocking<T: Send + 'static>(
    path: PathBuf,
    f: impl FnOnce() -> Result<T, JournalError> + Send + 'static,
) -> Result<T, JournalError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(JournalError::Io {
            action: "finish writing",
            path,
            source: std::io::Error::other("the runtime shut down during the operation"),
        }),
    }
}

fn not_found_as(
    run_id: &str,
    action: &'static str,
    path: &Path,
    e: std::io::Error,
) -> JournalError {
    if e.kind() == std::io::ErrorKind::NotFound {
        JournalError::NotFound {
            run_id: run_id.to_string(),
        }
    } else {
        io(action, path)(e)
    }
}

#[async_trait]
impl JournalStore for FileStore {
    async fn create(&self, run_id: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        let (dir, path, run_id) = (
            self.runs_dir(),
            self.journal_path(run_id),
            run_id.to_string(),
        );
        let root = self.root.clone();
        blocking(path.clone(), move || {
            std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        JournalError::Exists {
                            run_id: run_id.clone(),
                        }
                    } else {
                        io("create", &path)(e)
                    }
                })?;
            file.sync_all().map_err(io("sync", &path))?;
            sync_dir(&dir).map_err(io("sync directory", &dir))?;
            // The runs directory itself may be new: make its entry durable too.
            sync_dir(&root).map_err(io("sync directory", &root))?;
            Ok(())
        })
        .await
    }

    async fn append(&self, run_id: &str, seq: u64, line: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        check_line(run_id, line)?;
        let path = self.journal_path(run_id);
        let run_id = run_id.to_string();
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        blocking(path.clone(), move || {
            let mut file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|e| not_found_as(&run_id, "open", &path, e))?;
            // Held until the file is closed (end of this closure): the
            // check of the last record and the write are one step for
            // every process that appends.
            lock_journal(&file, &run_id, &path)?;
            let next = next_seq(&mut file, &run_id, &path)?;
            if seq != next {
                return Err(JournalError::Conflict { run_id, seq });
            }
            // One buffer, so one write(2) for a regular file: O_APPEND puts it
            // at the end whatever the seek position; write_all only loops on a
            // short write (disk full), which leaves a torn tail the reader reports.
            file.write_all(&buf).map_err(io("append to", &path))?;
            file.sync_data().map_err(io("sync", &path))?;
            Ok(())
        })
        .await
    }

    async fn read(&self, run_id: &str) -> Result<String, JournalError> {
        validate_run_id(run_id)?;
        let path = self.journal_path(run_id);
        let run_id = run_id.to_string();
        blocking(path.clone(), move || {
            let file = File::open(&path).map_err(|e| not_found_as(&run_id, "read", &path, e))?;
            // Judged by its length, not loaded first; and read no more
            // than the bound (it may grow meanwhile).
            let len = (file.metadata()).map_or(0, |m| m.len());
            if len > MAX_JOURNAL_BYTES {
                return Err(too_long(&run_id, format!("{len} bytes")));
            }
            let mut bytes = Vec::new();
            (file.take(MAX_JOURNAL_BYTES + 1).read_to_end(&mut bytes))
                .map_err(|e| not_found_as(&run_id, "read", &path, e))?;
            if bytes.len() as u64 > MAX_JOURNAL_BYTES {
                return Err(too_long(&run_id, format!("over {MAX_JOURNAL_BYTES} bytes")));
            }
            if bytes.iter().filter(|b| **b == b'\n').count() > MAX_RECORDS {
                return Err(too_long(&run_id, format!("over {MAX_RECORDS} records")));
            }
            Ok(match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
            })
        })
        .await
    }

    async fn list(&self) -> Result<Vec<String>, JournalError> {
        let dir = self.runs_dir();
        blocking(dir.clone(), move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io("list", &dir)(e)),
            };
            let mut ids = Vec::new();
            for entry in entries {
                let entry = entry.map_err(io("list", &dir))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if let Some(id) = name.strip_suffix(".jsonl")
                    && validate_run_id(id).is_ok()
                {
                    ids.push(id.to_string());
                }
            }
            ids.sort();
            Ok(ids)
        })
        .await
    }

    /// Under the journal file's lock, and only forward: a head naming
    /// fewer records than the stored one is not written (a slow writer's
    /// head must not set back the one of the writer after it).
    async fn write_head(&self, run_id: &str, head: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        let (dir, path) = (self.runs_dir(), self.head_path(run_id));
        let journal = self.journal_path(run_id);
        let tmp = dir.join(format!("{run_id}.head.{}.tmp", std::process::id()));
        let head = head.to_string();
        let run_id = run_id.to_string();
        blocking(path.clone(), move || {
            let file =
                File::open(&journal).map_err(|e| not_found_as(&run_id, "open", &journal, e))?;
            lock_journal(&file, &run_id, &journal)?;
            let stored = match std::fs::read(&path) {
                Ok(bytes) => head_records(&bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(io("read", &path)(e)),
            };
            if matches!((stored, head_records(head.as_bytes())), (Some(s), Some(n)) if s >= n) {
                return Ok(());
            }
            let write = || -> Result<(), JournalError> {
                let mut file = File::create(&tmp).map_err(io("create", &tmp))?;
                file.write_all(head.as_bytes()).map_err(io("write", &tmp))?;
                file.sync_all().map_err(io("sync", &tmp))?;
                std::fs::rename(&tmp, &path).map_err(io("replace", &path))?;
                sync_dir(&dir).map_err(io("sync directory", &dir))
            };
            let result = write();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result
        })
        .await
    }

    async fn read_head(&self, run_id: &str) -> Result<Option<String>, JournalError> {
        validate_run_id(run_id)?;
        let path = self.head_path(run_id);
        blocking(path.clone(), move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        })
        .await
    }

    async fn truncate_torn_tail(&self, run_id: &str, keep: u64) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        let path = self.journal_path(run_id);
        let run_id = run_id.to_string();
        blocking(path.clone(), move || {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| not_found_as(&run_id, "open", &path, e))?;
            lock_journal(&file, &run_id, &path)?;
            let mut text = Vec::new();
            file.read_to_end(&mut text).map_err(io("read", &path))?;
            let keep = check_torn_cut(&run_id, &text, keep)?;
            file.set_len(keep as u64).map_err(io("truncate", &path))?;
            file.sync_all().map_err(io("sync", &path))?;
            Ok(())
        })
        .await
    }

    async fn put_late(&self, run_id: &str, id: &str, body: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        validate_run_id(id)?;
        let (runs, dir) = (self.runs_dir(), self.late_dir(run_id));
        let journal = self.journal_path(run_id);
        let path = dir.join(format!("{id}.json"));
        let (run_id, id, body) = (run_id.to_string(), id.to_string(), body.to_string());
        blocking(path.clone(), move || {
            if !journal.exists() {
                return Err(JournalError::NotFound { run_id });
            }
            let new_dir = !dir.exists();
            std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
            if new_dir {
                sync_dir(&runs).map_err(io("sync directory", &runs))?;
            }
            let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Our own earlier attempt, or another fact's id?
                    let there = std::fs::read(&path).map_err(io("read", &path))?;
                    return if there == body.as_bytes() {
                        Ok(())
                    } else {
                        Err(late_exists(&run_id, &id))
                    };
                }
                Err(e) => return Err(io("create", &path)(e)),
            };
            file.write_all(body.as_bytes())
                .map_err(io("write", &path))?;
            file.sync_all().map_err(io("sync", &path))?;
            sync_dir(&dir).map_err(io("sync directory", &dir))
        })
        .await
    }

    async fn read_late(&self, run_id: &str) -> Result<Vec<(String, String)>, JournalError> {
        validate_run_id(run_id)?;
        let dir = self.late_dir(run_id);
        blocking(dir.clone(), move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io("list", &dir)(e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.map_err(io("list", &dir))?;
                let name = entry.file_name();
                let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                    continue;
                };
                let path = entry.path();
                let bytes = std::fs::read(&path).map_err(io("read", &path))?;
                out.push((id.to_string(), String::from_utf8_lossy(&bytes).into_owned()));
            }
            out.sort();
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::MemoryStore;
    use std::sync::Arc;

    #[test]
    fn run_ids_that_could_escape_the_directory_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "-flag", "a b", "x\ny"] {
            assert!(
                matches!(validate_run_id(bad), Err(JournalError::InvalidRunId { .. })),
                "{bad:?}"
            );
        }
        validate_run_id("20261122T041530Z-payments-3f9a").unwrap();
    }

    #[tokio::test]
    async fn file_store_round_trip_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        assert!(store.list().await.unwrap().is_empty());
        store.create("b-run").await.unwrap();
        store.create("a-run").await.unwrap();
        assert!(matches!(
            store.create("a-run").await,
            Err(JournalError::Exists { .. })
        ));
        store.append("a-run", 0, r#"{"seq":0}"#).await.unwrap();
        store.append("a-run", 1, r#"{"seq":1}"#).await.unwrap();
        assert_eq!(
            store.read("a-run").await.unwrap(),
            "{\"seq\":0}\n{\"seq\":1}\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("runs/a-run.jsonl")).unwrap(),
            "{\"seq\":0}\n{\"seq\":1}\n"
        );
        assert_eq!(store.list().await.unwrap(), ["a-run", "b-run"]);
        assert_eq!(store.read_head("a-run").await.unwrap(), None);
        store.write_head("a-run", "h1").await.unwrap();
        store.write_head("a-run", "h2").await.unwrap();
        assert_eq!(
            store.read_head("a-run").await.unwrap().as_deref(),
            Some("h2")
        );
        // Only the journals and the head remain: no temporary files.
        let mut names: Vec<_> = std::fs::read_dir(store.runs_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a-run.head", "a-run.jsonl", "b-run.jsonl"]);
    }

    /// Issue 74, attack 11: a journal file was read whole, whatever its
    /// length, by every reader of runs. One of more records or bytes than
    /// drctl reads is damaged: judged by its length, left out and named.
    #[tokio::test]
    async fn a_journal_file_of_more_records_or_bytes_than_drctl_reads_is_left_out() {
        use crate::journal::runs::{Listed, read_listed};
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.create("r1").await.unwrap();
        let path = dir.path().join("runs/r1.jsonl");
        std::fs::write(&path, "{}\n".repeat(MAX_RECORDS + 1)).unwrap();
        let Listed::LeftOut(why) = read_listed(&store, "r1").await.unwrap() else {
            panic!("read a journal of {} lines", MAX_RECORDS + 1);
        };
        assert!(
            why.contains("records") && why.contains("more than drctl reads"),
            "{why}"
        );
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_JOURNAL_BYTES + 1).unwrap();
        let Listed::LeftOut(why) = read_listed(&store, "r1").await.unwrap() else {
            panic!("read a journal of {} bytes", MAX_JOURNAL_BYTES + 1);
        };
        assert!(why.contains("bytes"), "{why}");
        std::fs::write(&path, "{}\n".repeat(MAX_RECORDS)).unwrap();
        assert_eq!(store.read("r1").await.unwrap().lines().count(), MAX_RECORDS);
    }

    #[tokio::test]
    async fn missing_journals_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        assert!(matches!(
            store.read("nope").await,
            Err(JournalError::NotFound { .. })
        ));
        assert!(matches!(
            store.append("nope", 0, "x").await,
            Err(JournalError::NotFound { .. })
        ));
        let message = store.read("nope").await.unwrap_err().to_string();
        assert!(message.contains("drctl runs list"), "{message}");
    }

    #[tokio::test]
    async fn stores_refuse_newlines_and_appends_after_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let file = FileStore::new(dir.path());
        let memory = MemoryStore::new();
        let stores: [&dyn JournalStore; 2] = [&file, &memory];
        let whole = r#"{"seq":0}"#;
        for store in stores {
            store.create("r").await.unwrap();
            assert!(store.append("r", 0, "a\nb").await.is_err());
            store.append("r", 0, whole).await.unwrap();
        }
        std::fs::write(file.journal_path("r"), format!("{whole}\npart")).unwrap();
        memory.set_text("r", &format!("{whole}\npart"));
        for store in stores {
            let err = store.append("r", 1, "next").await.unwrap_err();
            assert!(err.to_string().contains("incomplete"), "{err}");
            // Cutting complete records or mid-line is refused; cutting the torn part is not.
            assert!(store.truncate_torn_tail("r", 0).await.is_err());
            assert!(store.truncate_torn_tail("r", 3).await.is_err());
            store.truncate_torn_tail("r", 10).await.unwrap();
            assert_eq!(store.read("r").await.unwrap(), format!("{whole}\n"));
            store.append("r", 1, "next").await.unwrap();
            assert_eq!(store.read("r").await.unwrap(), format!("{whole}\nnext\n"));
        }
    }

    /// The bug this pins: a second process appended record N to a run's
    /// journal while the run appended its own record N ("seq 7 follows seq
    /// 7"). Record N is now written by one of them only; the other is
    /// refused, and the chain stays whole.
    #[tokio::test]
    async fn a_second_writer_of_the_same_record_is_refused_and_the_chain_stays_whole() {
        use crate::journal::{Event, Journal};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn JournalStore> = Arc::new(FileStore::new(dir.path()));
        let resumed = || Event::Resumed {
            host: "h".into(),
            pid: 1,
            dropped_torn_line: None,
        };
        let mut run = Journal::create(store.clone(), "r").await.unwrap();
        run.append(resumed()).await.unwrap();
        let (mut other, _) = Journal::open_for_append(store.clone(), "r").await.unwrap();
        other.append(resumed()).await.unwrap();
        let err = run.append(resumed()).await.unwrap_err();
        assert!(
            matches!(err, JournalError::Conflict { seq: 1, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("already written by another process"),
            "{err}"
        );
        assert_eq!(
            crate::journal::read(store.as_ref(), "r")
                .await
                .unwrap()
                .len(),
            2
        );
        // A record number ahead of the end is refused as well.
        assert!(matches!(
            store.append("r", 7, r#"{"seq":7}"#).await,
            Err(JournalError::Conflict { seq: 7, .. })
        ));
        let v = crate::journal::verify_stored(store.as_ref(), "r")
            .await
            .unwrap();
        assert!(v.ok, "{v:?}");
    }

    /// Many writers, each re-opening the journal and appending as fast as
    /// it can, on threads of their own: every append either lands as the
    /// next record or is refused; the chain never breaks.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appenders_never_break_the_chain() {
        use crate::journal::{Event, Journal};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn JournalStore> = Arc::new(FileStore::new(dir.path()));
        Journal::create(store.clone(), "r").await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..4u32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut landed = 0;
                for _ in 0..15 {
                    let Ok((mut j, _)) = Journal::open_for_append(store.clone(), "r").await else {
                        continue;
                    };
                    let event = Event::Resumed {
                        host: format!("w{w}"),
                        pid: w,
                        dropped_torn_line: None,
                    };
                    match j.append(event).await {
                        Ok(_) => landed += 1,
                        Err(JournalError::Conflict { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                landed
            }));
        }
        let mut landed = 0;
        for t in tasks {
            landed += t.await.unwrap();
        }
        let v = crate::journal::verify_stored(store.as_ref(), "r")
            .await
            .unwrap();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.records, landed);
        assert!(landed > 0);
    }

    #[test]
    fn an_append_waits_for_the_lock_another_writer_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, "").unwrap();
        let held = File::open(&path).unwrap();
        held.lock().unwrap();
        let waiter = File::open(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let t = std::thread::spawn(move || {
            let r = lock_journal(&waiter, "r", &p);
            tx.send(()).unwrap();
            r
        });
        // Still waiting while the other holds it...
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        held.unlock().unwrap();
        // ...and through once it is released.
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_head_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.create("r").await.unwrap();
        let head = |n: u64| crate::journal::chain::head_text("r", n, crate::journal::ZERO_HASH);
        store.write_head("r", &head(3)).await.unwrap();
        store.write_head("r", &head(2)).await.unwrap();
        assert_eq!(store.read_head("r").await.unwrap(), Some(head(3)));
        store.write_head("r", &head(4)).await.unwrap();
        assert_eq!(store.read_head("r").await.unwrap(), Some(head(4)));
    }

    #[tokio::test]
    async fn late_facts_are_files_of_their_own_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        assert!(matches!(
            store.put_late("r", "a", "{}").await,
            Err(JournalError::NotFound { .. })
        ));
        store.create("r").await.unwrap();
        assert_eq!(store.read_late("r").await.unwrap(), []);
        store.put_late("r", "b", "two").await.unwrap();
        store.put_late("r", "a", "one").await.unwrap();
        // The same bytes again: a retry; other bytes: refused.
        store.put_late("r", "a", "one").await.unwrap();
        let err = store.put_late("r", "a", "other").await.unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(store.put_late("r", "../x", "x").await.is_err());
        assert_eq!(
            store.read_late("r").await.unwrap(),
            [
                ("a".to_string(), "one".to_string()),
                ("b".into(), "two".into())
            ]
        );
        assert!(dir.path().join("runs/r.late/a.json").exists());
        // The journal itself, and the list of runs, are untouched.
        assert_eq!(store.read("r").await.unwrap(), "");
        assert_eq!(store.list().await.unwrap(), ["r"]);
    }

    #[tokio::test]
    async fn file_store_replaces_invalid_utf8_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.create("r").await.unwrap();
        std::fs::write(store.journal_path("r"), b"ok\n\xff\n").unwrap();
        assert_eq!(store.read("r").await.unwrap(), "ok\n\u{fffd}\n");
    }
}
