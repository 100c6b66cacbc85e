//! The local directory's plan locks ([`PlanLock`] files) behind [`LockStore`].
//!
//! A local lock has no lease and no fencing token: its holder's liveness is
//! its process (see [`crate::state::lock`]), and only processes on this
//! machine share the directory.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{Acquired, HeldLock, Holder, LockStatus, LockStore, Takeover};
use crate::state::lock::holder_alive;
use crate::state::lock::{LockError, LockFile, PlanLock};

/// [`LockStore`] of lock files in `<state_dir>/locks/`.
pub struct LocalLocks {
    dir: PathBuf,
}

impl LocalLocks {
    /// Locks of the state directory `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn lock_path(&self, plan: &str) -> PathBuf {
        self.dir.join("locks").join(format!("{plan}.lock"))
    }

    /// The lock file of `plan`: `None` when there is none, or when it
    /// cannot be parsed (then nobody can be shown to hold it).
    fn read(&self, plan: &str) -> Result<Option<LockFile>, LockError> {
        let path = self.lock_path(plan);
        match std::fs::read(&path) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }
}

struct HeldFile {
    plan: String,
    lock: Mutex<Option<PlanLock>>,
}

#[async_trait]
impl HeldLock for HeldFile {
    fn plan(&self) -> &str {
        &self.plan
    }
    fn token(&self) -> Option<u64> {
        None
    }
    async fn check(&self) -> Result<(), String> {
        self.check_local()
    }
    fn check_local(&self) -> Result<(), String> {
        // Another run may have taken the lock file over (a failover
        // preempting a drill): the file then holds its holder, not ours.
        match &*self.lock.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(l) if !l.still_ours() => Err(format!(
                "the lock of plan {} was taken over by another run",
                self.plan
            )),
            _ => Ok(()),
        }
    }
    fn time_left(&self) -> Option<std::time::Duration> {
        None
    }
    async fn release(&self) -> Result<(), LockError> {
        let lock = self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
        lock.map_or(Ok(()), PlanLock::release)
    }
    fn abandon(&self) {
        if let Some(l) = self.lock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            l.abandon();
        }
    }
}

#[async_trait]
impl LockStore for LocalLocks {
    async fn acquire(
        &self,
        plan: &str,
        me: &Holder,
        takeover: Takeover<'_>,
    ) -> Result<Acquired, LockError> {
        let (lock, dead) =
            PlanLock::acquire_as(&self.dir, plan, me.info.clone(), Some(me.kind), takeover)?;
        Ok(Acquired {
            lock: Arc::new(HeldFile {
                plan: plan.to_string(),
                lock: Mutex::new(Some(lock)),
            }),
            displaced_live: dead.is_some() && takeover.preempt_run.is_some(),
            displaced: dead,
        })
    }

    async fn status(&self, plans: &[String]) -> Result<Vec<LockStatus>, LockError> {
        plans
            .iter()
            .try_for_each(|p| crate::state::lock::check_plan_name(p))?;
        let names: Vec<String> = if plans.is_empty() {
            let dir = self.dir.join("locks");
            let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_str()?
                            .strip_suffix(".lock")
                            .map(str::to_string)
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(source) => {
                    return Err(LockError::Io {
                        action: "list",
                        path: dir,
                        source,
                    });
                }
            };
            names.sort();
            names
        } else {
            plans.to_vec()
        };
        names
            .into_iter()
            .map(|plan| {
                let file = self.read(&plan)?;
                let state = match &file {
                    None => "free",
                    Some(f) if holder_alive(&f.info) => "held",
                    Some(_) => "dead",
                };
                let (holder, kind, displaced, reason) = match file {
                    Some(f) => (Some(f.info), f.kind, f.displaced, f.reason),
                    None => (None, None, None, None),
                };
                Ok(LockStatus {
                    plan,
                    acquired: holder.as_ref().map(|h| h.started),
                    holder,
                    kind,
                    renewed: None,
                    lease_left_seconds: None,
                    token: None,
                    state: state.into(),
                    displaced,
                    reason,
                    clocks: None,
                })
            })
            .collect()
    }

    async fn break_lock(
        &self,
        plan: &str,
        by: &Holder,
        reason: &str,
    ) -> Result<Option<LockStatus>, LockError> {
        let before = self.status(&[plan.to_string()]).await?.pop();
        if before.as_ref().is_some_and(|s| s.holder.is_some()) {
            let path = self.lock_path(plan);
            tracing::warn!(plan, by = %by.info.run_id, reason, "breaking the local lock");
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(LockError::Io {
                        action: "remove",
                        path,
                        source,
                    });
                }
            }
        }
        Ok(before.filter(|s| s.holder.is_some()))
    }

    fn fenced(&self) -> bool {
        false
    }
}
