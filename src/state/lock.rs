//! One active run per plan: a lock file per plan in `<state_dir>/locks/`.
//!
//! Two runs acting on the same plan at once would fight over the same
//! replicas and records, so the second is refused (exit 3) with the holder's
//! run id, host and start time. A lock whose holder crashed stays behind; it
//! is taken over only explicitly (`--force-unlock`) or by a resume of the very
//! run that held it, and never while its holder's process is alive. Takeover
//! is what the journal must record, so [`PlanLock::acquire`] returns the dead
//! holder it displaced.
//!
//! The file holds its holder, the holder's kind of run and, for a lock
//! taken over, whom it displaced and why ([`LockFile`]), as a lease does:
//! a preempted drill reads from the lock itself who took it.
//!
//! Creation is atomic: the lock's contents are written and fsynced in a
//! temporary file that is then hard-linked to the lock name (which fails if
//! the lock exists), so nobody ever sees a lock without its holder's details.
//! Takeover first moves the dead lock aside and checks that what it moved is
//! still the lock it judged dead, then competes for a fresh lock like anyone
//! else: of two processes taking over at once, exactly one wins.
//!
//! Limits: liveness is known only for holders on this host and in this
//! PID namespace (through `/proc/<pid>` on Linux); a holder on another
//! host, in another PID namespace under the same host name (another
//! container), or any holder on a system without `/proc`, is treated as
//! alive. A recycled pid makes a dead
//! holder look alive (refusing is the safe side of that mistake).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Takeover;
use super::files::sync_dir;
use crate::journal::RunKind;

/// Who holds a plan lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The holding run.
    pub run_id: String,
    /// Host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it took the lock.
    pub started: DateTime<Utc>,
    /// Its PID namespace (`/proc/self/ns/pid`, `pid:[4026531836]`), where
    /// the system says: two containers may share a host name while their
    /// pids name different processes. Absent in locks written before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<String>,
}

impl LockInfo {
    /// This process, now, for `run_id`.
    pub fn current(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            host: hostname(),
            pid: std::process::id(),
            started: Utc::now(),
            pid_ns: pid_namespace(),
        }
    }

    /// Whether this holder's pid names a process this host's view of
    /// processes can judge: on this host and, where both namespaces are
    /// known, in this process's PID namespace.
    fn judged_here(&self) -> bool {
        self.host == hostname()
            && match (&self.pid_ns, pid_namespace()) {
                (Some(theirs), Some(ours)) => *theirs == ours,
                (Some(_), None) => false,
                (None, _) => true,
            }
    }
}

/// This process's PID namespace, as the system names it (Linux).
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(link.to_string_lossy().into_owned())
}

/// What a lock file holds: its holder and, when it took the lock over from
/// another run, whom it displaced and why (so that a preempted drill can
/// read who took its lock from the lock itself). Files written before these
/// fields existed hold the holder only, and read as such.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    /// The holder.
    #[serde(flatten)]
    pub info: LockInfo,
    /// What kind of run holds it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RunKind>,
    /// The holder it took the lock from, if it took it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub displaced: Option<LockInfo>,
    /// Why it took the lock over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl LockFile {
    /// The file's bytes: JSON and a newline.
    fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Taking or releasing a plan lock failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds the lock.
    #[error("{}", held_message(plan, holder, *alive))]
    Held {
        /// The plan.
        plan: String,
        /// The holder.
        holder: LockInfo,
        /// false = the holder process is dead: use `--force-unlock`.
        alive: bool,
    },
    /// Not a plan name (a path, `..`, an upper-case letter...): refused
    /// before any lock file or object is touched.
    #[error(
        "`{plan}` is not a plan name\n  hint: plan names are lowercase letters, digits and hyphens (at most 63), as each plan's `name` says; `drctl plan show` lists them"
    )]
    BadName {
        /// What was given.
        plan: String,
    },
    /// A file operation failed (or the plan name cannot name a file).
    #[error(
        "cannot {action} the lock file {path}: {source}\n  hint: check that the state directory exists and is writable (--state-dir / DRCTL_STATE_DIR)"
    )]
    Io {
        /// What was being done.
        action: &'static str,
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Refuses a name that is not a plan's: every lock path and object key is
/// made from it, so `../x` must never reach one.
pub fn check_plan_name(plan: &str) -> Result<(), LockError> {
    if crate::plan::is_plan_name(plan) {
        Ok(())
    } else {
        Err(LockError::BadName {
            plan: plan.to_string(),
        })
    }
}

fn held_message(plan: &str, holder: &LockInfo, alive: bool) -> String {
    let who = format!(
        "plan `{plan}` is locked by run `{}` (host {}, pid {}, since {})",
        holder.run_id,
        holder.host,
        holder.pid,
        holder.started.format("%Y-%m-%d %H:%M:%SZ")
    );
    if alive {
        let other_host = !holder.judged_here();
        format!(
            "{who}{}\n  hint: one run per plan at a time; wait for it to finish (`drctl runs show {}`){}",
            if other_host {
                ", which runs on another host (or in another PID namespace of this one)"
            } else {
                ""
            },
            holder.run_id,
            if other_host {
                "; if that host is gone, check that the run is not running and use --force-unlock"
            } else {
                ""
            }
        )
    } else {
        format!(
            "{who}, whose process is no longer running\n  hint: `drctl runs resume {}` continues that run; to start a new one instead, use --force-unlock",
            holder.run_id
        )
    }
}

/// A held plan lock. Released (file removed) by [`PlanLock::release`]; drop
/// also removes it, best effort.
#[derive(Debug)]
pub struct PlanLock {
    path: PathBuf,
    contents: Vec<u8>,
    info: LockInfo,
    released: bool,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name(dir: &Path, plan: &str, kind: &str) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{plan}.lock.{}.{n}.{kind}", std::process::id()))
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LockError {
    let path = path.to_path_buf();
    move |source| LockError::Io {
        action,
        path,
        source,
    }
}

/// Creates `path` with `contents` atomically; `AlreadyExists` when it exists.
fn create_lock(dir: &Path, plan: &str, path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = temp_name(dir, plan, "tmp");
    let write = |p: &Path| -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(p)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write(&tmp)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
        // A file system without hard links: create in place (a reader may
        // briefly see an empty lock, which it treats as unreadable).
        Err(_) => write(path)?,
    }
    sync_dir(dir)
}

/// Whether a holder's process may still be running: a holder whose pid
/// this process cannot judge (another host, another PID namespace) is.
pub(crate) fn holder_alive(holder: &LockInfo) -> bool {
    !holder.judged_here() || pid_alive(holder.pid)
}

#[cfg(target_os = "linux")]
fn pid_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    if !Path::new("/proc/self").exists() {
        return true; // no /proc: cannot tell, so assume alive
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; only its exit status is left to collect.
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

#[cfg(not(target_os = "linux"))]
fn pid_alive(_pid: u32) -> bool {
    true
}

/// The holder named by a lock file's bytes, and whether it is alive.
fn holder_of(seen: &[u8]) -> (LockInfo, bool) {
    match serde_json::from_slice::<LockInfo>(seen) {
        Ok(holder) => {
            let alive = holder_alive(&holder);
            (holder, alive)
        }
        // Unreadable (damaged, or written in place without hard links):
        // nobody can be shown to own it; only --force-unlock takes it.
        Err(_) => (
            LockInfo {
                run_id: "(unreadable lock file)".into(),
                host: "(unknown)".into(),
                pid: 0,
                started: DateTime::<Utc>::UNIX_EPOCH,
                pid_ns: None,
            },
            false,
        ),
    }
}

/// Whether `me` may take over the lock of `holder`.
fn may_take(
    holder: &LockInfo,
    alive: bool,
    me: &LockInfo,
    force: bool,
    reclaim_run: Option<&str>,
    preempt_run: Option<&str>,
) -> bool {
    // A resume of the run that holds it may take it when that run's process
    // is dead, or when it is this very process (the run's executor stopped,
    // as at an injected crash point, and this process now resumes it).
    let own_run = reclaim_run == Some(holder.run_id.as_str());
    let this_process =
        holder.pid == std::process::id() && holder.host == hostname() && me.run_id == holder.run_id;
    // A failover preempting a drill takes the drill's lock, live or not.
    let preempt = preempt_run.is_some_and(|r| r == holder.run_id);
    (!alive && (force || own_run)) || (own_run && this_process) || preempt
}

/// Moves the lock at `path`, judged from its bytes `seen`, aside and removes
/// it. `false` when it was no longer there or no longer `seen` (someone
/// replaced it meanwhile: theirs is put back), so the caller looks again.
fn move_aside(dir: &Path, plan: &str, path: &Path, seen: &[u8]) -> Result<bool, LockError> {
    let stale = temp_name(dir, plan, "stale");
    match std::fs::rename(path, &stale) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("move aside", path)(e)),
    }
    let moved = std::fs::read(&stale).map_err(io("read", &stale))?;
    if moved != seen {
        let _ = std::fs::hard_link(&stale, path);
        let _ = std::fs::remove_file(&stale);
        return Ok(false);
    }
    std::fs::remove_file(&stale).map_err(io("remove", &stale))?;
    Ok(true)
}

impl PlanLock {
    /// Takes the lock of `plan` in `<state_dir>/locks/<plan>.lock` (contents =
    /// `me` as JSON, fsynced).
    ///
    /// If held: [`LockError::Held`] with the holder; `alive` is true when the
    /// holder is on this host and its pid exists (another host counts as
    /// alive). `force` takes over a lock whose holder is dead, never a live
    /// one; `reclaim_run = Some(id)` lets a resume of run `id` take over its
    /// own dead lock without force. Returns the lock and the dead holder
    /// taken over, if any (to journal it).
    pub fn acquire(
        state_dir: &Path,
        plan: &str,
        me: LockInfo,
        force: bool,
        reclaim_run: Option<&str>,
        preempt_run: Option<&str>,
    ) -> Result<(PlanLock, Option<LockInfo>), LockError> {
        let takeover = Takeover {
            force,
            reason: None,
            reclaim_run,
            preempt_run,
        };
        Self::acquire_as(state_dir, plan, me, None, takeover)
    }

    /// [`PlanLock::acquire`] for a run of `kind`, under `takeover`: a lock
    /// taken over records whom it displaced and why ([`LockFile`]).
    pub fn acquire_as(
        state_dir: &Path,
        plan: &str,
        me: LockInfo,
        kind: Option<RunKind>,
        takeover: Takeover<'_>,
    ) -> Result<(PlanLock, Option<LockInfo>), LockError> {
        check_plan_name(plan)?;
        let dir = state_dir.join("locks");
        let path = dir.join(format!("{plan}.lock"));
        std::fs::create_dir_all(&dir).map_err(io("create the directory of", &path))?;
        let mut file = LockFile {
            info: me,
            kind,
            displaced: None,
            reason: None,
        };
        let mut taken_over = None;
        // Each round either succeeds, fails for good, or saw the lock change
        // under it (released, replaced); a few rounds settle any real race.
        for _ in 0..8 {
            let contents = file.encode().map_err(|e| LockError::Io {
                action: "encode",
                path: path.clone(),
                source: e.into(),
            })?;
            match create_lock(&dir, plan, &path, &contents) {
                Ok(()) => {
                    let lock = PlanLock {
                        path,
                        contents,
                        info: file.info,
                        released: false,
                    };
                    return Ok((lock, taken_over));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("create", &path)(e)),
            }
            let seen = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io("read", &path)(e)),
            };
            let (holder, alive) = holder_of(&seen);
            if !may_take(
                &holder,
                alive,
                &file.info,
                takeover.force,
                takeover.reclaim_run,
                takeover.preempt_run,
            ) {
                return Err(LockError::Held {
                    plan: plan.to_string(),
                    holder,
                    alive,
                });
            }
            if move_aside(&dir, plan, &path, &seen)? {
                file.reason = Some(super::takeover_reason(&takeover, &holder.run_id));
                file.displaced = Some(holder.clone());
                taken_over = Some(holder);
            }
        }
        Err(LockError::Io {
            action: "take",
            path,
            source: std::io::Error::other(
                "the lock kept changing while being taken; another drctl is competing for it, try again",
            ),
        })
    }

    /// Whether the lock file still holds what this lock wrote (another run
    /// may have taken it over since).
    pub fn still_ours(&self) -> bool {
        std::fs::read(&self.path).is_ok_and(|b| b == self.contents)
    }

    /// The holder details written in the lock.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Leaves the lock file in place, as a process that died would: a
    /// resume of the same run takes it over (see [`PlanLock::acquire`]).
    pub fn abandon(mut self) {
        self.released = true;
    }

    /// Removes the lock, if it is still ours.
    pub fn release(mut self) -> Result<(), LockError> {
        self.released = true;
        self.remove_if_ours()
    }

    fn remove_if_ours(&self) -> Result<(), LockError> {
        match std::fs::read(&self.path) {
            Ok(bytes) if bytes == self.contents => {}
            Ok(_) => {
                tracing::warn!(
                    lock = %self.path.display(),
                    run_id = %self.info.run_id,
                    "the plan lock was taken over by another run; leaving it in place"
                );
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("read", &self.path)(e)),
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("remove", &self.path)(e)),
        }
        if let Some(dir) = self.path.parent() {
            sync_dir(dir).map_err(io("sync the directory of", &self.path))?;
        }
        Ok(())
    }
}

impl Drop for PlanLock {
    fn drop(&mut self) {
        if !self.released {
            let _ = self.remove_if_ours();
        }
    }
}

static HOST_OVERRIDE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Names this machine for the rest of the process (locks, journals). The
/// first call wins.
pub fn set_hostname(name: &str) {
    let _ = HOST_OVERRIDE.set(name.to_string());
}

/// This host's name: `/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `unknown`.
///
/// [`set_hostname`] (the `host` setting) overrides it: a name that tells
/// machines apart where the system's does not (containers, cloned VMs).
pub fn hostname() -> String {
    if let Some(h) = HOST_OVERRIDE.get() {
        return h.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(run_id: &str) -> LockInfo {
        LockInfo::current(run_id)
    }

    /// A pid that existed a moment ago and has exited (and been reaped).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn write_lock(state: &Path, plan: &str, holder: &LockInfo) {
        std::fs::create_dir_all(state.join("locks")).unwrap();
        std::fs::write(
            state.join(format!("locks/{plan}.lock")),
            serde_json::to_vec(holder).unwrap(),
        )
        .unwrap();
    }

    fn dead_holder(run_id: &str) -> LockInfo {
        LockInfo {
            pid: dead_pid(),
            ..me(run_id)
        }
    }

    #[test]
    fn acquire_writes_the_holder_and_release_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, taken) =
            PlanLock::acquire(dir.path(), "payments", me("r1"), false, None, None).unwrap();
        assert!(taken.is_none());
        let path = dir.path().join("locks/payments.lock");
        assert_eq!(lock.path(), path);
        let stored: LockInfo = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(&stored, lock.info());
        assert_eq!(stored.pid, std::process::id());
        lock.release().unwrap();
        assert!(!path.exists());
        // Nothing else is left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("locks")).unwrap().count(),
            0
        );
    }

    #[test]
    fn drop_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        {
            let _lock =
                PlanLock::acquire(dir.path(), "payments", me("r1"), false, None, None).unwrap();
            assert!(dir.path().join("locks/payments.lock").exists());
        }
        assert!(!dir.path().join("locks/payments.lock").exists());
    }

    #[test]
    fn a_second_acquire_sees_a_live_holder_even_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let (_lock, _) =
            PlanLock::acquire(dir.path(), "payments", me("r1"), false, None, None).unwrap();
        for (force, reclaim) in [
            (false, None),
            (true, None),
            (true, Some("r1")),
            (false, Some("r1")),
        ] {
            match PlanLock::acquire(dir.path(), "payments", me("r2"), force, reclaim, None) {
                Err(LockError::Held {
                    plan,
                    holder,
                    alive,
                }) => {
                    assert_eq!(plan, "payments");
                    assert_eq!(holder.run_id, "r1");
                    assert_eq!(holder.pid, std::process::id());
                    assert!(alive);
                }
                other => panic!("expected Held, got {other:?}"),
            }
        }
        let message = PlanLock::acquire(dir.path(), "payments", me("r2"), false, None, None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("locked by run `r1`"), "{message}");
        assert!(message.contains("hint:"), "{message}");
        // Another plan is independent.
        PlanLock::acquire(dir.path(), "orders", me("r2"), false, None, None).unwrap();
    }

    #[test]
    fn a_dead_holder_is_reported_and_only_force_takes_it_over() {
        let dir = tempfile::tempdir().unwrap();
        let holder = dead_holder("r1");
        write_lock(dir.path(), "payments", &holder);
        match PlanLock::acquire(dir.path(), "payments", me("r2"), false, None, None) {
            Err(e @ LockError::Held { alive: false, .. }) => {
                assert!(e.to_string().contains("--force-unlock"), "{e}");
            }
            other => panic!("expected a dead holder, got {other:?}"),
        }
        let (lock, taken) =
            PlanLock::acquire(dir.path(), "payments", me("r2"), true, None, None).unwrap();
        assert_eq!(taken, Some(holder));
        let stored: LockInfo =
            serde_json::from_slice(&std::fs::read(lock.path()).unwrap()).unwrap();
        assert_eq!(stored.run_id, "r2");
        lock.release().unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("locks")).unwrap().count(),
            0
        );
    }

    #[test]
    fn pids_that_never_existed_are_dead() {
        let dir = tempfile::tempdir().unwrap();
        let holder = LockInfo {
            pid: 999_999_999,
            ..me("r1")
        };
        write_lock(dir.path(), "payments", &holder);
        assert!(matches!(
            PlanLock::acquire(dir.path(), "payments", me("r2"), false, None, None),
            Err(LockError::Held { alive: false, .. })
        ));
    }

    #[test]
    fn reclaim_works_only_for_the_same_run() {
        let dir = tempfile::tempdir().unwrap();
        let holder = dead_holder("r1");
        write_lock(dir.path(), "payments", &holder);
        assert!(matches!(
            PlanLock::acquire(dir.path(), "payments", me("r2"), false, Some("r2"), None),
            Err(LockError::Held { alive: false, .. })
        ));
        let (lock, taken) =
            PlanLock::acquire(dir.path(), "payments", me("r1"), false, Some("r1"), None).unwrap();
        assert_eq!(taken, Some(holder));
        assert_eq!(lock.info().run_id, "r1");
    }

    /// Regression (issue 39): a holder in another PID namespace under the
    /// same host name (two containers sharing one) was judged by this
    /// namespace's `/proc`, so a live holder whose pid is unused here was
    /// taken as dead and its lock taken over.
    #[test]
    fn regression_a_holder_in_another_pid_namespace_was_taken_as_dead() {
        let dir = tempfile::tempdir().unwrap();
        let holder = LockInfo {
            pid: dead_pid(),
            pid_ns: Some("pid:[1]".into()),
            ..me("r1")
        };
        write_lock(dir.path(), "payments", &holder);
        match PlanLock::acquire(dir.path(), "payments", me("r2"), true, None, None) {
            Err(e @ LockError::Held { alive: true, .. }) => {
                assert!(e.to_string().contains("PID namespace"), "{e}");
            }
            other => panic!("expected a live holder, got {other:?}"),
        }
        // The same pid in this namespace, or in a lock written before the
        // namespace was recorded, is judged here: dead.
        for pid_ns in [pid_namespace(), None] {
            let holder = LockInfo {
                pid: dead_pid(),
                pid_ns,
                ..me("r1")
            };
            assert!(!holder_alive(&holder), "{holder:?}");
        }
    }

    #[test]
    fn a_holder_on_another_host_counts_as_alive() {
        let dir = tempfile::tempdir().unwrap();
        let holder = LockInfo {
            host: format!("{}-elsewhere", hostname()),
            pid: dead_pid(),
            ..me("r1")
        };
        write_lock(dir.path(), "payments", &holder);
        match PlanLock::acquire(dir.path(), "payments", me("r2"), true, None, None) {
            Err(e @ LockError::Held { alive: true, .. }) => {
                assert!(e.to_string().contains("another host"), "{e}");
            }
            other => panic!("expected a live holder, got {other:?}"),
        }
    }

    #[test]
    fn an_unreadable_lock_needs_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("locks")).unwrap();
        std::fs::write(dir.path().join("locks/payments.lock"), "").unwrap();
        assert!(matches!(
            PlanLock::acquire(dir.path(), "payments", me("r2"), false, Some("r2"), None),
            Err(LockError::Held { alive: false, .. })
        ));
        let (_lock, taken) =
            PlanLock::acquire(dir.path(), "payments", me("r2"), true, None, None).unwrap();
        assert_eq!(taken.unwrap().pid, 0);
    }

    #[test]
    fn release_leaves_a_lock_that_another_run_took_over() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, _) =
            PlanLock::acquire(dir.path(), "payments", me("r1"), false, None, None).unwrap();
        let other = dead_holder("r9");
        write_lock(dir.path(), "payments", &other);
        lock.release().unwrap();
        assert!(dir.path().join("locks/payments.lock").exists());
    }

    #[test]
    fn unsafe_plan_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for plan in ["", "../x", "a/b", ".x", "X", "a..b", "-a"] {
            assert!(matches!(
                PlanLock::acquire(dir.path(), plan, me("r1"), false, None, None),
                Err(LockError::BadName { .. })
            ));
        }
        // Nothing was created for any of them.
        assert!(!dir.path().join("locks").exists());
    }

    /// A lock taken over says whom it displaced and why, so that the
    /// displaced run can read it from the lock itself (a preempted drill
    /// deciding who owns the capacity it raised).
    #[test]
    fn a_lock_taken_over_records_whom_it_displaced_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let drill = dead_holder("drill-1");
        write_lock(dir.path(), "payments", &drill);
        let takeover = Takeover {
            preempt_run: Some("drill-1"),
            ..Takeover::default()
        };
        let (lock, taken) = PlanLock::acquire_as(
            dir.path(),
            "payments",
            me("failover-1"),
            Some(RunKind::Failover),
            takeover,
        )
        .unwrap();
        assert_eq!(taken.as_ref(), Some(&drill));
        let file: LockFile = serde_json::from_slice(&std::fs::read(lock.path()).unwrap()).unwrap();
        assert_eq!(file.info.run_id, "failover-1");
        assert_eq!(file.kind, Some(RunKind::Failover));
        assert_eq!(file.displaced, Some(drill));
        assert!(file.reason.unwrap().contains("preempted"));
        assert!(lock.still_ours());
        // A lock taken fresh displaced nobody; an older file (holder only)
        // still reads, as a holder of unknown kind.
        let (other, _) = PlanLock::acquire_as(
            dir.path(),
            "orders",
            me("r2"),
            Some(RunKind::Drill),
            Takeover::default(),
        )
        .unwrap();
        let file: LockFile = serde_json::from_slice(&std::fs::read(other.path()).unwrap()).unwrap();
        assert_eq!((file.displaced, file.reason), (None, None));
        let old: LockFile =
            serde_json::from_slice(&serde_json::to_vec(&me("r3")).unwrap()).unwrap();
        assert_eq!((old.info.run_id.as_str(), old.kind), ("r3", None));
    }

    #[test]
    fn hostname_is_never_empty() {
        assert!(!hostname().is_empty());
    }
}
