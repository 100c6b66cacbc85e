//! Journals in a local directory: one JSON-lines file per run, appended and
//! fsynced before each action it announces.
//!
//! This is where a single machine's runs live (`--state DIR`); it sits in
//! `state/` beside the bucket stores and the lock files because choosing
//! where runs are kept is the state layer's job, while the journal itself
//! (`crate::journal`) only knows the [`JournalStore`] trait.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::journal::JournalError;
use crate::journal::store::{
    JournalStore, check_line, check_torn_cut, torn_tail_error, validate_run_id,
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

    async fn append(&self, run_id: &str, _seq: u64, line: &str) -> Result<(), JournalError> {
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
            let len = file.metadata().map_err(io("inspect", &path))?.len();
            if len > 0 {
                let mut last = [0u8; 1];
                file.seek(SeekFrom::End(-1)).map_err(io("read", &path))?;
                file.read_exact(&mut last).map_err(io("read", &path))?;
                if last[0] != b'\n' {
                    return Err(torn_tail_error(&run_id));
                }
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
            let bytes =
                std::fs::read(&path).map_err(|e| not_found_as(&run_id, "read", &path, e))?;
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

    async fn write_head(&self, run_id: &str, head: &str) -> Result<(), JournalError> {
        validate_run_id(run_id)?;
        let (dir, path) = (self.runs_dir(), self.head_path(run_id));
        let tmp = dir.join(format!("{run_id}.head.{}.tmp", std::process::id()));
        let head = head.to_string();
        blocking(path.clone(), move || {
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
            let mut text = Vec::new();
            file.read_to_end(&mut text).map_err(io("read", &path))?;
            let keep = check_torn_cut(&run_id, &text, keep)?;
            file.set_len(keep as u64).map_err(io("truncate", &path))?;
            file.sync_all().map_err(io("sync", &path))?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::MemoryStore;

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
        store.append("a-run", 0, "one").await.unwrap();
        store.append("a-run", 0, "two").await.unwrap();
        assert_eq!(store.read("a-run").await.unwrap(), "one\ntwo\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("runs/a-run.jsonl")).unwrap(),
            "one\ntwo\n"
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
        for store in stores {
            store.create("r").await.unwrap();
            assert!(store.append("r", 0, "a\nb").await.is_err());
            store.append("r", 0, "whole").await.unwrap();
        }
        std::fs::write(file.journal_path("r"), "whole\npart").unwrap();
        memory.set_text("r", "whole\npart");
        for store in stores {
            let err = store.append("r", 0, "next").await.unwrap_err();
            assert!(err.to_string().contains("incomplete"), "{err}");
            // Cutting complete records or mid-line is refused; cutting the torn part is not.
            assert!(store.truncate_torn_tail("r", 0).await.is_err());
            assert!(store.truncate_torn_tail("r", 3).await.is_err());
            store.truncate_torn_tail("r", 6).await.unwrap();
            assert_eq!(store.read("r").await.unwrap(), "whole\n");
            store.append("r", 0, "next").await.unwrap();
            assert_eq!(store.read("r").await.unwrap(), "whole\nnext\n");
        }
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
