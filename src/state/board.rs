//! The board: small named objects that several processes read and write
//! beside the journals (`watch/board/` in the state), for what is neither
//! a run nor a lock: each observer's latest observations, and an outage
//! episode's proposal, veto and start claim (docs/watch.md).
//!
//! Two writes are enough: `put` replaces (an observer's own latest report,
//! only ever written by that observer), and `create` writes only when
//! nothing is there (S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`, a
//! hard link on a directory), which is how one proposal, one veto and one
//! start claim per episode are settled among observers that race.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::cloud::{ObjectStore, ObjectUrl, PutMode, PutOutcome};

/// A board operation failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {key} on the state's board ({location}): {detail}")]
pub struct BoardError {
    /// What was done (`read`, `write`, `list`).
    pub op: &'static str,
    /// The key.
    pub key: String,
    /// The state location.
    pub location: String,
    /// Why.
    pub detail: String,
}

/// Small shared objects by key (`a/b/c.json`).
#[async_trait]
pub trait Board: Send + Sync {
    /// Writes `key`, replacing what is there.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BoardError>;
    /// Writes `key` only when nothing is there: `false` when something was.
    async fn create(&self, key: &str, body: Bytes) -> Result<bool, BoardError>;
    /// Reads `key`; `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BoardError>;
    /// The keys under `prefix` (ending in `/`), every depth, in name order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, BoardError>;
}

/// A board in a local directory (observers on one machine).
#[derive(Debug, Clone)]
pub struct DirBoard {
    root: PathBuf,
}

impl DirBoard {
    /// The board under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn err(&self, op: &'static str, key: &str, e: impl std::fmt::Display) -> BoardError {
        BoardError {
            op,
            key: key.to_string(),
            location: self.root.display().to_string(),
            detail: e.to_string(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, BoardError> {
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(self.err("use", key, "not a board key"));
        }
        Ok(self.root.join(key))
    }

    /// Writes `body` beside `path` under a unique name, fsynced.
    async fn staged(&self, path: &std::path::Path, body: &[u8]) -> std::io::Result<PathBuf> {
        use tokio::io::AsyncWriteExt as _;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = path.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            crate::journal::new_run_id("b")
        ));
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(body).await?;
        f.sync_all().await?;
        Ok(tmp)
    }
}

#[async_trait]
impl Board for DirBoard {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BoardError> {
        let path = self.path(key)?;
        let tmp = self
            .staged(&path, &body)
            .await
            .map_err(|e| self.err("write", key, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| self.err("write", key, e))
    }

    async fn create(&self, key: &str, body: Bytes) -> Result<bool, BoardError> {
        let path = self.path(key)?;
        let tmp = self
            .staged(&path, &body)
            .await
            .map_err(|e| self.err("write", key, e))?;
        // A hard link is created whole or not at all, and never replaces.
        let linked = tokio::fs::hard_link(&tmp, &path).await;
        let _ = tokio::fs::remove_file(&tmp).await;
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(self.err("write", key, e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BoardError> {
        match tokio::fs::read(self.path(key)?).await {
            Ok(b) => Ok(Some(Bytes::from(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err("read", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BoardError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.root.join(prefix.trim_end_matches('/'))];
        while let Some(dir) = dirs.pop() {
            let mut rd = match tokio::fs::read_dir(&dir).await {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err("list", prefix, e)),
            };
            while let Some(entry) = rd
                .next_entry()
                .await
                .map_err(|e| self.err("list", prefix, e))?
            {
                let path = entry.path();
                let is_dir = entry
                    .file_type()
                    .await
                    .map_err(|e| self.err("list", prefix, e))?
                    .is_dir();
                if is_dir {
                    dirs.push(path);
                } else if let Ok(rel) = path.strip_prefix(&self.root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if !key.contains(".tmp-") {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A board in a bucket (observers on several machines).
#[derive(Clone)]
pub struct ObjectBoard {
    objects: Arc<dyn ObjectStore>,
    via: String,
    base: ObjectUrl,
}

impl ObjectBoard {
    /// The board under `base`, reached through region `via`.
    pub fn new(objects: Arc<dyn ObjectStore>, via: &str, base: ObjectUrl) -> Self {
        Self {
            objects,
            via: via.to_string(),
            base,
        }
    }

    fn err(&self, op: &'static str, key: &str, e: &crate::cloud::CloudError) -> BoardError {
        BoardError {
            op,
            key: key.to_string(),
            location: self.base.to_string(),
            detail: e.summary(),
        }
    }
}

#[async_trait]
impl Board for ObjectBoard {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BoardError> {
        self.objects
            .put(&self.via, &self.base.join(key), body, PutMode::Overwrite)
            .await
            .map(|_| ())
            .map_err(|e| self.err("write", key, &e))
    }

    async fn create(&self, key: &str, body: Bytes) -> Result<bool, BoardError> {
        match self
            .objects
            .put(&self.via, &self.base.join(key), body, PutMode::CreateOnly)
            .await
        {
            Ok(PutOutcome::AlreadyExists) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(self.err("write", key, &e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BoardError> {
        self.objects
            .get(&self.via, &self.base.join(key))
            .await
            .map_err(|e| self.err("read", key, &e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BoardError> {
        let listing = self
            .objects
            .list(&self.via, &self.base.join(prefix), false)
            .await
            .map_err(|e| self.err("list", prefix, &e))?;
        let base = format!("{}/", self.base.key.trim_end_matches('/'));
        let mut keys: Vec<String> = listing
            .keys
            .into_iter()
            .map(|k| k.strip_prefix(&base).map(str::to_string).unwrap_or(k))
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// A board in memory (tests, and observers in one process).
#[derive(Debug, Default)]
pub struct MemoryBoard {
    objects: std::sync::Mutex<std::collections::BTreeMap<String, Bytes>>,
}

#[async_trait]
impl Board for MemoryBoard {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BoardError> {
        if let Ok(mut o) = self.objects.lock() {
            o.insert(key.to_string(), body);
        }
        Ok(())
    }

    async fn create(&self, key: &str, body: Bytes) -> Result<bool, BoardError> {
        let mut o = self.objects.lock().map_err(|_| BoardError {
            op: "write",
            key: key.to_string(),
            location: "memory".into(),
            detail: "poisoned".into(),
        })?;
        if o.contains_key(key) {
            return Ok(false);
        }
        o.insert(key.to_string(), body);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BoardError> {
        Ok(self.objects.lock().ok().and_then(|o| o.get(key).cloned()))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BoardError> {
        Ok(self
            .objects
            .lock()
            .map(|o| {
                o.keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_board_creates_once_and_lists_every_depth() {
        let dir = tempfile::tempdir().unwrap();
        let b = DirBoard::new(dir.path().to_path_buf());
        assert!(
            b.create("e/1/proposal.json", Bytes::from("a"))
                .await
                .unwrap()
        );
        assert!(
            !b.create("e/1/proposal.json", Bytes::from("b"))
                .await
                .unwrap()
        );
        assert_eq!(b.get("e/1/proposal.json").await.unwrap().unwrap(), "a");
        b.put("o/x.json", Bytes::from("1")).await.unwrap();
        b.put("o/x.json", Bytes::from("2")).await.unwrap();
        assert_eq!(b.get("o/x.json").await.unwrap().unwrap(), "2");
        assert_eq!(b.list("e/").await.unwrap(), ["e/1/proposal.json"]);
        assert_eq!(b.list("nothing/").await.unwrap(), Vec::<String>::new());
        assert!(b.get("../etc/passwd").await.is_err());
    }
}
