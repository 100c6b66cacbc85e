//! Plan locks on an object store: leases with fencing tokens.
//!
//! One object per plan, `locks/<plan>.json`, holds a [`Lease`]: the holder
//! (run, host, pid, kind), when it was acquired and last renewed, its length,
//! a fencing token, and whether it was released. Every change is conditional,
//! so two processes can never both believe they hold it:
//!
//! * **acquire**: create-only when there is no lease object; otherwise a
//!   compare-and-swap on the version read, allowed when the lease is released,
//!   expired (its last write + length + skew has passed, by the store's
//!   clock), or forced. Of two takers only one swap succeeds; the other
//!   reads again and sees the winner.
//! * **renew**: every third of the lease, a compare-and-swap on the version
//!   this holder last wrote. A renewal that cannot get through leaves the
//!   holder's local deadline (`sent + length - skew`, on the monotonic clock)
//!   where it was; past it, [`HeldLock::check`] fails and the run starts no
//!   new step.
//! * **release**: a compare-and-swap that marks the lease released, keeping
//!   the object and its token. Nothing is ever deleted, conditional deletes
//!   are not relied on (see [`crate::state`]), and the next holder takes the
//!   released lease by compare-and-swap.
//!
//! **Fencing.** The token only grows: each new holder takes
//! `max(previous + 1, now in ms)`, so even a lease object deleted by hand does
//! not reset it. Every journal append first reads the lease and refuses when
//! the token or holder is no longer ours ([`HeldLock::check`]), and carries
//! the token in the record (a lower token later in a chain breaks it); the
//! journal's create-only records refuse a second writer of the same record.
//! A process that slept through its lease therefore cannot write into a run
//! that someone else now owns.
//!
//! **Whose clock.** Another's lease is judged by the store's clock, never by
//! its holder's (who stamped `renewed`) nor by ours: the store says when it
//! last wrote the lease object (S3's and GCS's `Last-Modified`) and what time
//! it is (the answer's `Date`), and the lease has expired when the second is
//! past the first + length + skew ([`Lease::judge`]). A holder whose clock
//! runs slow therefore does not see its live lease broken early, and a taker
//! whose clock runs fast does not break it either. Each read also measures
//! this host's clock against the store's ([`ClockSkew`], shown by `drctl
//! lock status`); a host more than `lease_skew` off is warned. A store whose
//! answers say nothing of time leaves the judgement to the lease's
//! `renewed` and this host's clock, as before. The holder itself needs no
//! other clock: its own deadline is on its own clocks (below).
//!
//! **Time.** Wall time comes from an injected [`Clock`] and the holder's
//! deadline from `tokio::time::Instant`, so tests check expiry and renewal on
//! tokio's paused time ([`super::clock::TokioClock`]) instead of sleeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::clock::{Clock, SystemClock};
use super::{Acquired, ClockSkew, HeldLock, Holder, LeaseTimes, LockStatus, LockStore, Takeover};
use crate::cloud::{
    CloudError, ObjectStore, ObjectUrl, PutMode, PutOutcome, StoreTimes, SwapOutcome, Versioned,
};
use crate::journal::RunKind;
use crate::plan::duration::after;
use crate::state::lock::{LockError, LockInfo, check_plan_name};

/// How long a release may wait for the store.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest lease length honoured when reading a lease (ten years).
const MAX_LEASE_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// The lease object of one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The plan.
    pub plan: String,
    /// Who holds (or last held) it.
    pub holder: Holder,
    /// A random id of the holding process's hold (so that a holder can tell
    /// its own lease from one taken by the same run on another machine).
    pub hold_id: String,
    /// When this holder acquired it.
    pub acquired: DateTime<Utc>,
    /// When it was last renewed (the holder's clock).
    pub renewed: DateTime<Utc>,
    /// Lease length in seconds.
    pub lease_seconds: u64,
    /// The fencing token: only grows.
    pub token: u64,
    /// Released by its holder (or broken): free to take.
    #[serde(default)]
    pub released: bool,
    /// Why it was taken over or broken, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The holder it displaced, if it took a lease that was not released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub displaced: Option<Holder>,
}

impl Lease {
    /// Its length (a hostile length is clamped, never a panic).
    fn length(&self) -> Duration {
        Duration::from_secs(self.lease_seconds.min(MAX_LEASE_SECONDS))
    }

    /// This lease judged on one clock, as `reading` saw it. The store's,
    /// when its answer said both when it last wrote the lease and what time
    /// it is: the write's time is taken at the end of its resolution and
    /// the answer's at its start, so that a lease is never judged to end
    /// early. Otherwise the holder's `renewed` against this host's clock.
    pub fn judge(&self, reading: &Reading) -> Judged {
        match (reading.store.modified, reading.store.answered) {
            (Some(written), Some(answered)) => Judged {
                now: answered,
                ends: after(after(written, reading.store.resolution), self.length()),
                by_store: true,
            },
            _ => Judged {
                now: reading.local,
                ends: after(self.renewed, self.length()),
                by_store: false,
            },
        }
    }
}

/// What one read of a lease showed of the clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// This host's clock when the answer had arrived.
    pub local: DateTime<Utc>,
    /// The store's: when it last wrote the lease, when it answered.
    pub store: StoreTimes,
}

impl Reading {
    /// This host's clock minus the store's (positive: this host runs
    /// ahead), the store's time taken mid-way through its resolution; `None`
    /// when the answer did not say what time it was.
    pub fn host_skew(&self) -> Option<chrono::Duration> {
        let answered = self.store.answered?;
        Some(self.local - after(answered, self.store.resolution / 2))
    }

    /// Whether this host's clock is off the store's by more than `margin`
    /// beyond what the measurement can tell (the store's resolution).
    pub fn host_off(&self, margin: Duration) -> bool {
        let limit = chrono::Duration::from_std(margin + self.store.resolution)
            .unwrap_or(chrono::Duration::MAX);
        self.host_skew().is_some_and(|d| d.abs() > limit)
    }

    /// The clocks this read compared, for `lock status`.
    fn skew(&self, lease: &Lease, judged: &Judged, margin: Duration) -> Option<ClockSkew> {
        let store_time = self.store.answered?;
        let host = self.host_skew()?;
        let half = self.store.resolution / 2;
        Some(ClockSkew {
            store_time,
            host_skew_ms: host.num_milliseconds(),
            writer_skew_ms: self
                .store
                .modified
                .map(|m| (lease.renewed - after(m, half)).num_milliseconds()),
            host_off: self.host_off(margin),
            judged_by_store: judged.by_store,
        })
    }
}

/// A lease's end and the time it is judged at, on one clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// Now, on that clock.
    pub now: DateTime<Utc>,
    /// When its length runs out, on that clock (its last write + length).
    pub ends: DateTime<Utc>,
    /// Whether that clock is the store's.
    pub by_store: bool,
}

impl Judged {
    /// Whether `lease` (judged here) is live: not released, and `skew` of
    /// margin after its end not yet reached.
    pub fn live(&self, lease: &Lease, skew: Duration) -> bool {
        !lease.released && self.now < after(self.ends, skew)
    }
}

/// Warns, once per `warned`, that this host's clock is more than
/// `margin` off the store's.
fn warn_if_off(warned: &AtomicBool, reading: &Reading, margin: Duration) {
    if !reading.host_off(margin) || warned.swap(true, Ordering::Relaxed) {
        return;
    }
    let skew = reading.host_skew().unwrap_or_default();
    tracing::warn!(
        host_skew_ms = skew.num_milliseconds(),
        "this host's clock is {:.1} s {} the state store's, more than lease_skew ({} s): leases are judged by the store's clock, but this host's times (in journals and reports) are off; synchronise its clock (NTP)",
        skew.num_milliseconds().unsigned_abs() as f64 / 1000.0,
        if skew > chrono::Duration::zero() {
            "ahead of"
        } else {
            "behind"
        },
        margin.as_secs()
    );
}

/// [`LockStore`] of leases on an object store.
pub struct LeaseLocks {
    objects: Arc<dyn ObjectStore>,
    via: String,
    base: ObjectUrl,
    times: LeaseTimes,
    clock: Arc<dyn Clock>,
    /// Whether this host was warned of its clock already.
    warned: Arc<AtomicBool>,
}

impl LeaseLocks {
    /// Leases under `base` (`s3://bucket/prefix`), reached through `via`,
    /// on the machine's clock.
    pub fn new(
        objects: Arc<dyn ObjectStore>,
        via: &str,
        base: ObjectUrl,
        times: LeaseTimes,
    ) -> Self {
        Self {
            objects,
            via: via.to_string(),
            base,
            times,
            clock: Arc::new(SystemClock),
            warned: Arc::default(),
        }
    }

    /// The same leases judged and stamped by `clock` (a test's paused clock).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    fn url(&self, plan: &str) -> ObjectUrl {
        self.base.join(&format!("locks/{plan}.json"))
    }

    fn cloud_error(&self, plan: &str, action: &'static str, e: CloudError) -> LockError {
        store_error(&self.url(plan), action, e)
    }

    /// The lease of `plan`, its version and what the read showed of the
    /// clocks (this host warned when its clock is off the store's).
    async fn read(&self, plan: &str) -> Result<Option<(Lease, String, Reading)>, LockError> {
        let url = self.url(plan);
        let read = self
            .objects
            .get_versioned(&self.via, &url)
            .await
            .map_err(|e| self.cloud_error(plan, "read", e))?;
        let local = self.clock.now();
        match read {
            None => Ok(None),
            Some(Versioned {
                body,
                version,
                times,
            }) => {
                let reading = Reading {
                    local,
                    store: times,
                };
                warn_if_off(&self.warned, &reading, self.times.skew);
                Ok(Some((self.parse(plan, &body), version, reading)))
            }
        }
    }

    /// A lease object's bytes as a lease.
    fn parse(&self, plan: &str, body: &[u8]) -> Lease {
        // Unreadable: nobody can be shown to own it. Treated as a live lease
        // of an unknown holder (only --force-unlock takes it).
        serde_json::from_slice::<Lease>(body).unwrap_or_else(|e| Lease {
            plan: plan.to_string(),
            holder: Holder {
                info: LockInfo {
                    run_id: format!("(unreadable lease: {e})"),
                    host: "(unknown)".into(),
                    pid: 0,
                    started: DateTime::<Utc>::UNIX_EPOCH,
                    pid_ns: None,
                },
                kind: RunKind::Failover,
            },
            hold_id: String::new(),
            acquired: DateTime::<Utc>::UNIX_EPOCH,
            renewed: self.clock.now(),
            lease_seconds: MAX_LEASE_SECONDS,
            token: 0,
            released: false,
            reason: None,
            displaced: None,
        })
    }

    fn status_of(&self, lease: &Lease, reading: &Reading) -> LockStatus {
        let judged = lease.judge(reading);
        let left = judged.ends - judged.now;
        LockStatus {
            plan: lease.plan.clone(),
            holder: (!lease.released).then(|| lease.holder.info.clone()),
            kind: Some(lease.holder.kind),
            acquired: Some(lease.acquired),
            renewed: Some(lease.renewed),
            lease_left_seconds: Some(left.num_seconds()),
            token: Some(lease.token),
            state: if lease.released {
                "released"
            } else if judged.live(lease, self.times.skew) {
                "held"
            } else {
                "expired"
            }
            .into(),
            displaced: lease.displaced.as_ref().map(|d| d.info.clone()),
            reason: lease.reason.clone(),
            clocks: reading.skew(lease, &judged, self.times.skew),
        }
    }
}

/// A store failure on the lease object at `url`, as a lock error.
fn store_error(url: &ObjectUrl, action: &'static str, e: CloudError) -> LockError {
    LockError::Io {
        action,
        path: url.to_string().into(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn encode(lease: &Lease) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(lease).unwrap_or_default())
}

fn next_token(previous: Option<u64>, now: DateTime<Utc>) -> u64 {
    let now_ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    previous.map_or(now_ms, |p| p.saturating_add(1).max(now_ms))
}

fn hold_id() -> String {
    crate::journal::new_run_id("hold")
}

impl LeaseLocks {
    /// The holder that taking `current` over displaces, and whether its lease
    /// was live; `None` when there is no lease or it was released. A lease
    /// that may not be taken is [`LockError::Held`].
    fn displaces(
        &self,
        plan: &str,
        current: Option<(&Lease, &Reading)>,
        takeover: &Takeover<'_>,
    ) -> Result<Option<(Holder, bool)>, LockError> {
        let Some((lease, reading)) = current.filter(|(l, _)| !l.released) else {
            return Ok(None);
        };
        // A holder on this machine whose process is gone is known dead: no
        // need to wait for its lease to run out.
        let dead_here = lease.holder.info.host == crate::state::hostname()
            && !crate::state::lock::holder_alive(&lease.holder.info);
        let live = lease.judge(reading).live(lease, self.times.skew) && !dead_here;
        if !may_take(&lease.holder.info, takeover, live) {
            return Err(LockError::Held {
                plan: plan.to_string(),
                holder: lease.holder.info.clone(),
                alive: live,
            });
        }
        Ok(Some((lease.holder.clone(), live)))
    }

    /// Writes `lease` over the lease object last read at `version` (create-only
    /// when there was none) and returns the version written; `None` when
    /// another writer won the race (read again).
    async fn write_taken(
        &self,
        plan: &str,
        lease: &Lease,
        version: Option<&str>,
    ) -> Result<Option<String>, LockError> {
        let url = self.url(plan);
        let body = encode(lease);
        let written = match version {
            None => match self
                .objects
                .put(&self.via, &url, body, PutMode::CreateOnly)
                .await
                .map_err(|e| self.cloud_error(plan, "create", e))?
            {
                PutOutcome::Written(v) => v,
                // Lost the race, or our own write whose answer was lost.
                PutOutcome::AlreadyExists => None,
            },
            Some(version) => match self
                .objects
                .replace_if(&self.via, &url, body, version)
                .await
                .map_err(|e| self.cloud_error(plan, "take", e))?
            {
                SwapOutcome::Swapped(v) => Some(v),
                SwapOutcome::Stale => None,
            },
        };
        match written {
            Some(v) if !v.is_empty() => Ok(Some(v)),
            // Not shown to be ours (a lost race, a lost answer, or a store
            // that returns no version, which cannot be renewed safely): read
            // the version back and keep it only if the lease is ours.
            _ => Ok(match self.read(plan).await? {
                Some((l, v, _)) if l == *lease => Some(v),
                _ => None,
            }),
        }
    }
}

/// Whether a taker with `takeover` may take the lease of `holder` (not
/// released), given whether that lease is `live`.
fn may_take(holder: &LockInfo, takeover: &Takeover<'_>, live: bool) -> bool {
    let own_run = takeover.reclaim_run == Some(holder.run_id.as_str());
    // This very process resuming its own run (its executor stopped, as at an
    // injected crash point).
    let this_process =
        own_run && holder.pid == std::process::id() && holder.host == crate::state::hostname();
    let preempted = takeover.preempt_run == Some(holder.run_id.as_str());
    if this_process || preempted {
        true
    } else if live {
        takeover.force && takeover.reason.is_some()
    } else {
        takeover.force || own_run
    }
}

#[async_trait]
impl LockStore for LeaseLocks {
    async fn acquire(
        &self,
        plan: &str,
        me: &Holder,
        takeover: Takeover<'_>,
    ) -> Result<Acquired, LockError> {
        check_plan_name(plan)?;
        // Each round either wins, fails for good, or lost a race (the lease
        // changed between the read and the write): read again.
        for _ in 0..8 {
            let current = self.read(plan).await?;
            // The new lease is stamped by this host's clock (its holder's);
            // the old one was judged by the store's.
            let now = self.clock.now();
            let (lease_now, version_now) = match &current {
                Some((l, v, _)) => (Some(l), Some(v.as_str())),
                None => (None, None),
            };
            let displaced =
                self.displaces(plan, current.as_ref().map(|(l, _, r)| (l, r)), &takeover)?;
            let lease = Lease {
                plan: plan.to_string(),
                holder: me.clone(),
                hold_id: hold_id(),
                acquired: now,
                renewed: now,
                lease_seconds: self.times.length.as_secs().max(1),
                token: next_token(lease_now.map(|l| l.token), now),
                released: false,
                reason: displaced
                    .as_ref()
                    .map(|(d, _)| super::takeover_reason(&takeover, &d.info.run_id)),
                displaced: displaced.as_ref().map(|(d, _)| d.clone()),
            };
            let sent = Instant::now();
            let Some(version) = self.write_taken(plan, &lease, version_now).await? else {
                continue;
            };
            return Ok(Acquired {
                lock: HeldLease::start(self, lease, version, sent),
                displaced_live: displaced.as_ref().is_some_and(|(_, live)| *live),
                displaced: displaced.map(|(d, _)| d.info),
            });
        }
        Err(LockError::Io {
            action: "take",
            path: self.url(plan).to_string().into(),
            source: std::io::Error::other(
                "the lease kept changing while being taken; another drctl is competing for it, try again",
            ),
        })
    }

    async fn status(&self, plans: &[String]) -> Result<Vec<LockStatus>, LockError> {
        plans.iter().try_for_each(|p| check_plan_name(p))?;
        let names: Vec<String> = if plans.is_empty() {
            let mut prefix = self.base.join("locks");
            prefix.key.push('/');
            let listing = self
                .objects
                .list(&self.via, &prefix, true)
                .await
                .map_err(|e| self.cloud_error("*", "list", e))?;
            listing
                .keys
                .iter()
                .filter_map(|k| {
                    k.strip_prefix(&prefix.key)?
                        .strip_suffix(".json")
                        .map(str::to_string)
                })
                .collect()
        } else {
            plans.to_vec()
        };
        let reads = futures::future::join_all(names.iter().map(|p| self.read(p))).await;
        let mut out = Vec::new();
        for (plan, read) in names.iter().zip(reads) {
            out.push(match read? {
                Some((lease, _, reading)) => self.status_of(&lease, &reading),
                None => LockStatus {
                    plan: plan.clone(),
                    holder: None,
                    kind: None,
                    acquired: None,
                    renewed: None,
                    lease_left_seconds: None,
                    token: None,
                    state: "free".into(),
                    displaced: None,
                    reason: None,
                    clocks: None,
                },
            });
        }
        Ok(out)
    }

    async fn break_lock(
        &self,
        plan: &str,
        by: &Holder,
        reason: &str,
    ) -> Result<Option<LockStatus>, LockError> {
        check_plan_name(plan)?;
        let url = self.url(plan);
        for _ in 0..8 {
            let Some((lease, version, reading)) = self.read(plan).await? else {
                return Ok(None);
            };
            let now = self.clock.now();
            let before = self.status_of(&lease, &reading);
            if lease.released {
                return Ok(Some(before));
            }
            // Released, with a higher token: the broken holder's next append
            // is refused, and the next taker gets a higher token still.
            let broken = Lease {
                token: next_token(Some(lease.token), now),
                released: true,
                reason: Some(format!(
                    "broken by {} on {}: {reason}",
                    by.info.run_id, by.info.host
                )),
                displaced: Some(lease.holder.clone()),
                renewed: now,
                ..lease
            };
            match self
                .objects
                .replace_if(&self.via, &url, encode(&broken), &version)
                .await
                .map_err(|e| self.cloud_error(plan, "break", e))?
            {
                SwapOutcome::Swapped(_) => return Ok(Some(before)),
                SwapOutcome::Stale => continue,
            }
        }
        Err(LockError::Io {
            action: "break",
            path: url.to_string().into(),
            source: std::io::Error::other("the lease kept changing; try again"),
        })
    }

    fn fenced(&self) -> bool {
        true
    }
}

/// What a held lease knows about itself.
struct HoldState {
    lease: Lease,
    version: String,
    /// Past this instant the lease may be someone else's: start nothing.
    deadline: Instant,
    /// Set when a renewal found the lease taken.
    lost: Option<String>,
    done: bool,
}

/// A lease held by this process, renewed in the background.
pub struct HeldLease {
    objects: Arc<dyn ObjectStore>,
    via: String,
    plan: String,
    url: ObjectUrl,
    times: LeaseTimes,
    clock: Arc<dyn Clock>,
    warned: Arc<AtomicBool>,
    state: Mutex<HoldState>,
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl HeldLease {
    fn start(locks: &LeaseLocks, lease: Lease, version: String, sent: Instant) -> Arc<Self> {
        let held = Arc::new(Self {
            objects: locks.objects.clone(),
            via: locks.via.clone(),
            plan: lease.plan.clone(),
            url: locks.url(&lease.plan),
            times: locks.times,
            clock: locks.clock.clone(),
            warned: locks.warned.clone(),
            state: Mutex::new(HoldState {
                deadline: deadline(sent, locks.times),
                lease,
                version,
                lost: None,
                done: false,
            }),
            renewer: Mutex::new(None),
        });
        let weak = Arc::downgrade(&held);
        let period = (locks.times.length / 3).max(Duration::from_millis(200));
        let task = tokio::spawn(renew_loop(weak, period));
        *held.renewer.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        held
    }

    fn hold(&self) -> std::sync::MutexGuard<'_, HoldState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop_renewing(&self) {
        if let Some(t) = self
            .renewer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
    }

    /// Writes `released` over our lease. A stale version is not proof that
    /// the lease was taken: the renewal aborted by [`Self::stop_renewing`]
    /// may have landed after we stopped listening, leaving our own lease
    /// under a newer version. Then the release is retried on that version
    /// (else the lease of a finished run would block the next run until it
    /// expired).
    async fn release_swaps(
        &self,
        lease: &Lease,
        released: &Lease,
        mut version: String,
    ) -> Result<(), LockError> {
        for _ in 0..4 {
            match self
                .objects
                .replace_if(&self.via, &self.url, encode(released), &version)
                .await
                .map_err(|e| store_error(&self.url, "release", e))?
            {
                SwapOutcome::Swapped(_) => return Ok(()),
                SwapOutcome::Stale => {
                    let now = self
                        .objects
                        .get_versioned(&self.via, &self.url)
                        .await
                        .map_err(|e| store_error(&self.url, "release", e))?;
                    match now {
                        Some(Versioned {
                            body, version: v, ..
                        }) if serde_json::from_slice::<Lease>(&body).is_ok_and(|l| {
                            l.hold_id == lease.hold_id && l.token == lease.token && !l.released
                        }) =>
                        {
                            version = v;
                        }
                        // Taken over meanwhile (not ours to release), released
                        // (our own write whose answer was lost), or deleted.
                        _ => return Ok(()),
                    }
                }
            }
        }
        Ok(())
    }

    /// One renewal: compare-and-swap on the version we hold.
    async fn renew(&self) {
        let (lease, version) = {
            let s = self.hold();
            if s.done || s.lost.is_some() {
                return;
            }
            let mut lease = s.lease.clone();
            lease.renewed = self.clock.now();
            (lease, s.version.clone())
        };
        let sent = Instant::now();
        let result = self
            .objects
            .replace_if(&self.via, &self.url, encode(&lease), &version)
            .await;
        let outcome = match result {
            Ok(SwapOutcome::Swapped(v)) => Ok(v),
            Ok(SwapOutcome::Stale) => {
                match self.objects.get_versioned(&self.via, &self.url).await {
                    // Our own renewal whose answer was lost (or a 409 race we won).
                    Ok(Some(Versioned { body, version, .. }))
                        if serde_json::from_slice::<Lease>(&body).is_ok_and(|l| l == lease) =>
                    {
                        Ok(version)
                    }
                    Ok(Some(Versioned { body, .. })) => {
                        let now = serde_json::from_slice::<Lease>(&body).ok();
                        let mut s = self.hold();
                        s.lost = Some(match now {
                            Some(l) if l.hold_id != lease.hold_id => format!(
                                "the lock of plan {} was taken over by run {} on {} (token {}{})",
                                lease.plan,
                                l.holder.info.run_id,
                                l.holder.info.host,
                                l.token,
                                l.reason.map(|r| format!(": {r}")).unwrap_or_default()
                            ),
                            Some(l) if l.released => format!(
                                "the lock of plan {} was broken ({})",
                                lease.plan,
                                l.reason.unwrap_or_default()
                            ),
                            _ => format!(
                                "the lease of plan {} was changed by someone else",
                                lease.plan
                            ),
                        });
                        return;
                    }
                    Ok(None) => {
                        self.hold().lost =
                            Some(format!("the lease of plan {} was deleted", lease.plan));
                        return;
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(v) => {
                let mut s = self.hold();
                s.version = v;
                s.lease = lease;
                s.deadline = deadline(sent, self.times);
            }
            Err(e) => tracing::warn!(
                plan = %lease.plan,
                "cannot renew the lease (will retry): {}",
                e.summary()
            ),
        }
    }
}

fn deadline(sent: Instant, times: LeaseTimes) -> Instant {
    sent + times.length.saturating_sub(times.skew)
}

async fn renew_loop(held: Weak<HeldLease>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(h) = held.upgrade() else { return };
        h.renew().await;
        if h.hold().lost.is_some() {
            return;
        }
    }
}

#[async_trait]
impl HeldLock for HeldLease {
    fn plan(&self) -> &str {
        &self.plan
    }

    fn token(&self) -> Option<u64> {
        Some(self.hold().lease.token)
    }

    fn check_local(&self) -> Result<(), String> {
        let s = self.hold();
        if let Some(lost) = &s.lost {
            return Err(lost.clone());
        }
        // The monotonic clock stands still while the host sleeps (suspend,
        // some frozen VMs); the wall clock does not. Either one past the
        // deadline ends it.
        let wall_deadline = crate::plan::duration::after(
            s.lease.renewed,
            self.times.length.saturating_sub(self.times.skew),
        );
        if Instant::now() >= s.deadline || self.clock.now() >= wall_deadline {
            return Err(format!(
                "the lease of plan {} was last confirmed more than {} s ago (a renewal got no answer from the state bucket, or this process was paused); it may be someone else's now, so nothing more is started or sent",
                s.lease.plan,
                self.times.length.saturating_sub(self.times.skew).as_secs()
            ));
        }
        Ok(())
    }

    fn time_left(&self) -> Option<Duration> {
        Some(
            self.hold()
                .deadline
                .saturating_duration_since(Instant::now()),
        )
    }

    async fn check(&self) -> Result<(), String> {
        self.check_local()?;
        let (hold_id, token, plan) = {
            let s = self.hold();
            (s.lease.hold_id.clone(), s.lease.token, s.lease.plan.clone())
        };
        // The store's word, not only our memory: someone may have forced it.
        let read = self.objects.get_versioned(&self.via, &self.url).await;
        if let Ok(Some(v)) = &read {
            let reading = Reading {
                local: self.clock.now(),
                store: v.times,
            };
            warn_if_off(&self.warned, &reading, self.times.skew);
        }
        match read {
            Ok(Some(Versioned { body, .. })) => match serde_json::from_slice::<Lease>(&body) {
                // The read itself took time: a process paused while it
                // waited for the answer may have outlived its lease since
                // the first check, whatever the store said back then.
                Ok(l) if l.hold_id == hold_id && l.token == token && !l.released => {
                    self.check_local()
                }
                Ok(l) => {
                    let why = if l.released {
                        format!(
                            "the lock of plan {plan} was broken ({})",
                            l.reason.unwrap_or_default()
                        )
                    } else {
                        format!(
                            "the lock of plan {plan} is now held by run {} on {} (fencing token {} > ours {token})",
                            l.holder.info.run_id, l.holder.info.host, l.token
                        )
                    };
                    self.hold().lost = Some(why.clone());
                    Err(why)
                }
                Err(e) => Err(format!("the lease of plan {plan} is unreadable: {e}")),
            },
            Ok(None) => {
                let why = format!("the lease of plan {plan} was deleted");
                self.hold().lost = Some(why.clone());
                Err(why)
            }
            Err(e) => Err(format!(
                "cannot read the lease of plan {plan} to check it is still ours: {}",
                e.summary()
            )),
        }
    }

    async fn release(&self) -> Result<(), LockError> {
        self.stop_renewing();
        let (lease, version) = {
            let mut s = self.hold();
            if s.done || s.lost.is_some() {
                s.done = true;
                return Ok(());
            }
            s.done = true;
            (s.lease.clone(), s.version.clone())
        };
        let released = Lease {
            released: true,
            renewed: self.clock.now(),
            ..lease.clone()
        };
        // Bounded: a store that does not answer must not keep a finished
        // run from exiting (its lease then simply expires).
        let attempt = self.release_swaps(&lease, &released, version);
        let Ok(result) = tokio::time::timeout(RELEASE_TIMEOUT, attempt).await else {
            tracing::warn!(
                plan = %lease.plan,
                "the state store did not answer the release; the lease will expire"
            );
            return Ok(());
        };
        result
    }

    fn abandon(&self) {
        self.stop_renewing();
        self.hold().done = true;
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.stop_renewing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::state::clock::TokioClock;

    /// A fake store whose clock reads the machine's time plus `store_ms`
    /// and follows tokio's (paused in the tests of expiry and renewal, so
    /// that no test waits for real time).
    fn store_at(store_ms: i64) -> FakeCloud {
        FakeCloud::default().with_store_clock(shifted(store_ms))
    }

    fn shifted(ms: i64) -> Arc<TokioClock> {
        Arc::new(TokioClock::starting_at(
            Utc::now() + chrono::Duration::milliseconds(ms),
        ))
    }

    /// Leases on `fake`, on a clock that follows tokio's.
    fn locks(fake: &FakeCloud, length: u64, skew: u64) -> LeaseLocks {
        locks_at(fake, length, skew, 0)
    }

    /// Leases on `fake` from a host whose clock reads the machine's time
    /// plus `host_ms`.
    fn locks_at(fake: &FakeCloud, length: u64, skew: u64, host_ms: i64) -> LeaseLocks {
        if !fake.state().buckets.iter().any(|b| b == "s3://state") {
            fake.state().buckets.push("s3://state".into());
        }
        LeaseLocks::new(
            Arc::new(fake.clone()),
            "us-east-1",
            ObjectUrl::parse("s3://state/team").unwrap(),
            LeaseTimes {
                length: Duration::from_millis(length),
                skew: Duration::from_millis(skew),
            },
        )
        .with_clock(shifted(host_ms))
    }

    fn me(run: &str) -> Holder {
        Holder::current(run, RunKind::Failover)
    }

    #[tokio::test]
    async fn a_live_lease_refuses_a_second_taker_and_naming_the_holder() {
        let fake = store_at(0);
        let l = locks(&fake, 60_000, 1_000);
        let a = l
            .acquire("payments", &me("run-a"), Takeover::default())
            .await
            .unwrap();
        let err = l
            .acquire("payments", &me("run-b"), Takeover::default())
            .await
            .err()
            .unwrap();
        match err {
            LockError::Held { holder, alive, .. } => {
                assert_eq!(holder.run_id, "run-a");
                assert!(alive);
            }
            e => panic!("{e}"),
        }
        // Force without a reason does not take a live lease; with one it does.
        let forced = Takeover {
            force: true,
            ..Default::default()
        };
        assert!(l.acquire("payments", &me("run-b"), forced).await.is_err());
        let b = l
            .acquire(
                "payments",
                &me("run-b"),
                Takeover {
                    force: true,
                    reason: Some("laptop of run-a is gone"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(b.displaced_live);
        assert!(b.lock.token().unwrap() > a.lock.token().unwrap());
        // The displaced holder's next check fails: fenced.
        let why = a.lock.check().await.unwrap_err();
        assert!(why.contains("run-b"), "{why}");
        b.lock.check().await.unwrap();
        // Releasing the lost lease leaves the new holder's in place.
        a.lock.release().await.unwrap();
        b.lock.check().await.unwrap();
    }

    #[tokio::test]
    async fn a_released_lease_is_taken_with_a_higher_token() {
        let fake = store_at(0);
        let l = locks(&fake, 60_000, 1_000);
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        let t1 = a.lock.token().unwrap();
        a.lock.release().await.unwrap();
        let b = l.acquire("p", &me("b"), Takeover::default()).await.unwrap();
        assert!(b.displaced.is_none());
        assert!(b.lock.token().unwrap() > t1);
        let st = l.status(&[]).await.unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(st[0].state, "held");
        assert_eq!(st[0].holder.as_ref().unwrap().run_id, "b");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_lease_is_resumed_by_its_own_run_and_forced_by_others() {
        let fake = store_at(0);
        let l = locks(&fake, 1_000, 100);
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        a.lock.abandon(); // as a killed process: no more renewals
        tokio::time::advance(Duration::from_millis(1_200)).await;
        // Expired: a stranger still needs --force-unlock (a half-done run
        // waits for its resume); the run itself takes it back.
        match l.acquire("p", &me("b"), Takeover::default()).await {
            Err(LockError::Held { alive: false, .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        let again = l
            .acquire(
                "p",
                &me("a"),
                Takeover {
                    reclaim_run: Some("a"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(again.displaced.unwrap().run_id, "a");
    }

    #[tokio::test]
    async fn a_name_that_is_no_plans_reaches_no_lease_object() {
        let fake = store_at(0);
        let l = locks(&fake, 1_000, 100);
        let bad = "../runs/x";
        assert!(matches!(
            l.acquire(bad, &me("a"), Takeover::default()).await,
            Err(LockError::BadName { .. })
        ));
        assert!(matches!(
            l.break_lock(bad, &me("a"), "test").await,
            Err(LockError::BadName { .. })
        ));
        assert!(matches!(
            l.status(&[bad.to_string()]).await,
            Err(LockError::BadName { .. })
        ));
        assert!(fake.state().writes.is_empty(), "{:?}", fake.state().writes);
    }

    /// A wall clock that moves only when told (the host's clock across a
    /// suspend, while the monotonic clock stood still).
    #[derive(Debug)]
    struct Jumping(Mutex<DateTime<Utc>>);

    impl Clock for Jumping {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn regression_a_host_suspended_past_its_lease_still_believed_it_held_it() {
        let fake = store_at(0);
        let wall = Arc::new(Jumping(Mutex::new(Utc::now())));
        let l = locks(&fake, 1_000, 100).with_clock(wall.clone());
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        assert!(a.lock.check_local().is_ok());
        // The host sleeps 5 s: wall time moves, the monotonic clock (and so
        // tokio's) does not, and no renewal ran.
        *wall.0.lock().unwrap() += chrono::Duration::seconds(5);
        let why = a
            .lock
            .check_local()
            .expect_err("past its deadline by the wall clock");
        assert!(why.contains("paused"), "{why}");
        assert!(a.lock.check().await.is_err());
    }

    /// On the injected clock, expiry is exact: a lease not renewed is live
    /// until `length + skew` after its last renewal, and expired just after.
    #[tokio::test(start_paused = true)]
    async fn an_unrenewed_lease_expires_after_its_length_and_skew() {
        let fake = store_at(0);
        let l = locks(&fake, 1_000, 100);
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        a.lock.abandon();
        tokio::time::advance(Duration::from_millis(1_099)).await;
        match l.acquire("p", &me("b"), Takeover::default()).await {
            Err(LockError::Held { alive: true, .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(l.status(&[]).await.unwrap()[0].state, "held");
        tokio::time::advance(Duration::from_millis(2)).await;
        match l.acquire("p", &me("b"), Takeover::default()).await {
            Err(LockError::Held { alive: false, .. }) => {}
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(l.status(&[]).await.unwrap()[0].state, "expired");
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_keeps_a_lease_alive_past_its_length() {
        let fake = store_at(0);
        let l = locks(&fake, 600, 100);
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        // Paused time: the runtime jumps from one renewal timer to the next.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        a.lock.check().await.unwrap();
        assert!(l.acquire("p", &me("b"), Takeover::default()).await.is_err());
    }

    #[tokio::test]
    async fn a_broken_lock_fences_its_holder() {
        let fake = store_at(0);
        let l = locks(&fake, 60_000, 1_000);
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        let before = l
            .break_lock("p", &me("op"), "stuck")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(before.holder.unwrap().run_id, "a");
        assert!(a.lock.check().await.unwrap_err().contains("broken"));
        let b = l.acquire("p", &me("b"), Takeover::default()).await.unwrap();
        assert!(b.lock.token().unwrap() > a.lock.token().unwrap());
    }

    /// Regression: a renewal aborted mid-call by the release had landed,
    /// so the release's swap was stale and the finished run's lease stayed
    /// held until it expired (the next run was refused: "locked by run").
    #[tokio::test]
    async fn release_after_a_renewal_that_landed_unseen_still_releases() {
        let fake = store_at(0);
        let l = locks(&fake, 60_000, 1_000);
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        // The renewal's write lands; its answer never reaches the holder.
        let url = l.url("p");
        let store: Arc<dyn ObjectStore> = Arc::new(fake.clone());
        let Versioned { body, version, .. } = store
            .get_versioned("us-east-1", &url)
            .await
            .unwrap()
            .unwrap();
        let mut renewed: Lease = serde_json::from_slice(&body).unwrap();
        renewed.renewed = Utc::now();
        let swapped = store
            .replace_if("us-east-1", &url, encode(&renewed), &version)
            .await
            .unwrap();
        assert!(matches!(swapped, SwapOutcome::Swapped(_)));
        a.lock.release().await.unwrap();
        let st = l.status(&[]).await.unwrap();
        assert_eq!(st[0].state, "released", "{st:?}");
        let b = l.acquire("p", &me("b"), Takeover::default()).await.unwrap();
        assert!(b.displaced.is_none());
    }

    const HOUR_MS: i64 = 3_600_000;

    /// Regression: a holder whose clock ran an hour slow stamped `renewed`
    /// an hour in the past, and every other host judged its live lease
    /// expired at once (`--force-unlock` without a reason took it). Judged
    /// by the store's clock, it is live until its last write + length +
    /// skew, whatever the holder's clock says.
    #[tokio::test(start_paused = true)]
    async fn regression_a_holder_whose_clock_ran_slow_had_its_live_lease_taken_early() {
        let fake = store_at(0);
        let slow = locks_at(&fake, 60_000, 1_000, -HOUR_MS);
        let a = slow
            .acquire("p", &me("a"), Takeover::default())
            .await
            .unwrap();
        a.lock.abandon(); // no renewals: the lease must still last its length
        let other = locks(&fake, 60_000, 1_000);
        let forced = Takeover {
            force: true,
            ..Default::default()
        };
        match other.acquire("p", &me("b"), forced).await {
            Err(LockError::Held {
                alive: true,
                holder,
                ..
            }) => assert_eq!(holder.run_id, "a"),
            x => panic!("{:?}", x.map(|_| ())),
        }
        let st = &other.status(&[]).await.unwrap()[0];
        assert_eq!(st.state, "held");
        let c = st.clocks.expect("the store said its time");
        assert!(c.judged_by_store);
        assert!(!c.host_off, "{c:?}");
        assert!(c.host_skew_ms.abs() < 1_000, "{c:?}");
        let writer = c.writer_skew_ms.expect("the store said when it wrote");
        assert!((writer + HOUR_MS).abs() < 1_000, "{c:?}");
        assert_eq!(st.lease_left_seconds, Some(60));
        // By the store's clock it ends after length + skew, not before.
        tokio::time::advance(Duration::from_millis(60_999)).await;
        assert!(other.acquire("p", &me("b"), forced).await.is_err());
        tokio::time::advance(Duration::from_millis(2)).await;
        let b = other.acquire("p", &me("b"), forced).await.unwrap();
        assert!(!b.displaced_live);
        assert_eq!(b.displaced.unwrap().run_id, "a");
    }

    /// A host whose clock runs an hour fast neither breaks a live lease
    /// early nor misses it: the store's clock judges; it is warned, and
    /// `lock status` shows by how much it is off.
    #[tokio::test(start_paused = true)]
    async fn a_host_whose_clock_runs_fast_is_warned_and_breaks_no_live_lease() {
        let fake = store_at(0);
        let holder = locks(&fake, 60_000, 1_000);
        let a = holder
            .acquire("p", &me("a"), Takeover::default())
            .await
            .unwrap();
        let fast = locks_at(&fake, 60_000, 1_000, HOUR_MS);
        let forced = Takeover {
            force: true,
            ..Default::default()
        };
        match fast.acquire("p", &me("b"), forced).await {
            Err(LockError::Held { alive: true, .. }) => {}
            x => panic!("{:?}", x.map(|_| ())),
        }
        assert!(fast.warned.load(Ordering::Relaxed), "warned of its clock");
        assert!(!holder.warned.load(Ordering::Relaxed));
        let st = &fast.status(&[]).await.unwrap()[0];
        assert_eq!(st.state, "held");
        let c = st.clocks.unwrap();
        assert!(c.host_off);
        assert!((c.host_skew_ms - HOUR_MS).abs() < 1_000, "{c:?}");
        assert!(c.writer_skew_ms.unwrap().abs() < 1_000, "{c:?}");
        // The holder renews meanwhile and keeps it for as long as it runs.
        tokio::time::sleep(Duration::from_secs(180)).await;
        a.lock.check().await.unwrap();
        assert!(fast.acquire("p", &me("b"), forced).await.is_err());
    }

    /// A store whose clock is off from every host's: the lease still lasts
    /// its length by the store's own clock (both ends are read from it).
    #[tokio::test(start_paused = true)]
    async fn a_store_whose_clock_is_off_still_gives_every_lease_its_length() {
        let fake = store_at(-HOUR_MS);
        let l = locks(&fake, 1_000, 100);
        let a = l.acquire("p", &me("a"), Takeover::default()).await.unwrap();
        a.lock.abandon();
        tokio::time::advance(Duration::from_millis(1_099)).await;
        assert_eq!(l.status(&[]).await.unwrap()[0].state, "held");
        tokio::time::advance(Duration::from_millis(2)).await;
        let st = &l.status(&[]).await.unwrap()[0];
        assert_eq!(st.state, "expired");
        assert!(st.clocks.unwrap().host_off);
    }

    fn reading(written: Option<i64>, answered: Option<i64>, local: i64, res_ms: u64) -> Reading {
        let t = |ms| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(ms);
        Reading {
            local: t(local),
            store: StoreTimes {
                modified: written.map(t),
                answered: answered.map(t),
                resolution: Duration::from_millis(res_ms),
            },
        }
    }

    fn lease_renewed_at(ms: i64) -> Lease {
        Lease {
            plan: "p".into(),
            holder: me("a"),
            hold_id: "h".into(),
            acquired: DateTime::<Utc>::UNIX_EPOCH,
            renewed: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(ms),
            lease_seconds: 60,
            token: 1,
            released: false,
            reason: None,
            displaced: None,
        }
    }

    /// HTTP dates are whole seconds, cut down: the write may have been up
    /// to a second after the one given, so a lease is judged to end a
    /// second later, never earlier; the answer's time is taken as given.
    #[test]
    fn a_store_time_given_to_the_second_never_ends_a_lease_early() {
        let lease = lease_renewed_at(0);
        let skew = Duration::from_secs(10);
        // Written in second 100 (100.000..100.999), length 60, skew 10.
        let live_at = |answered_s: i64| {
            let r = reading(Some(100_000), Some(answered_s * 1000), 0, 1000);
            lease.judge(&r).live(&lease, skew)
        };
        assert!(live_at(170), "100.999 + 70 is not past at 170.x");
        assert!(!live_at(171));
        let j = lease.judge(&reading(Some(100_000), Some(170_000), 0, 1000));
        assert!(j.by_store);
        assert_eq!(j.ends - j.now, chrono::Duration::seconds(-9));
        // The store said nothing of time: the lease's own `renewed` and this
        // host's clock judge, as before.
        for r in [
            reading(None, None, 69_999, 0),
            reading(Some(100_000), None, 69_999, 1000),
            reading(None, Some(170_000), 69_999, 1000),
        ] {
            let j = lease.judge(&r);
            assert!(!j.by_store);
            assert!(j.live(&lease, skew), "{r:?}");
            assert!(
                !lease
                    .judge(&Reading {
                        local: r.local + chrono::Duration::seconds(1),
                        ..r
                    })
                    .live(&lease, skew)
            );
        }
        // Released: never live.
        let released = Lease {
            released: true,
            ..lease.clone()
        };
        assert!(
            !released
                .judge(&reading(Some(100_000), Some(100_000), 0, 0))
                .live(&released, skew)
        );
    }

    /// This host is "off" only beyond `lease_skew` plus what the
    /// measurement can tell (the store's resolution).
    #[test]
    fn a_host_is_off_only_beyond_the_margin_and_the_resolution() {
        let margin = Duration::from_secs(10);
        // Resolution 1 s: the store's time is taken at answered + 0.5 s.
        assert_eq!(
            reading(None, Some(0), 500, 1000).host_skew(),
            Some(chrono::Duration::zero())
        );
        assert!(!reading(None, Some(0), 11_500, 1000).host_off(margin));
        assert!(reading(None, Some(0), 11_501, 1000).host_off(margin));
        assert!(!reading(None, Some(10_000), 0, 1000).host_off(margin));
        assert!(reading(None, Some(12_000), 0, 1000).host_off(margin));
        assert!(
            !reading(None, None, HOUR_MS, 1000).host_off(margin),
            "no Date: unknown"
        );
    }
}
