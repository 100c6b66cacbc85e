//! The capacity role's model in the fake: one in-memory group per kind,
//! region and name, for every kind on the role's port ([`Scaler`]).
//!
//! The fake models what the role reads (a size, what serves, a change
//! under way or failed, marks), not each provider's answer: a kind on the
//! port costs the fake nothing. How a provider's answer maps to a
//! [`Reading`] is its adapter's alone, tested by pure tests on answers of
//! the provider's shape and against the emulators (`tests/it/`); this is
//! the trade the port makes on purpose, and `docs/architecture.md` says so.
//!
//! What the fake does to a group is what every capacity provider does: a
//! new size is answered at once and serves later (after one read, or after
//! the timed model's time for the kind's slow operation,
//! [`ScalingCalls::waits`]); a change armed to fail ([`FakeCloud::fail_next_change`])
//! reads as failed, named by its id and reason, as an ECS deployment's
//! circuit breaker or a Cloud Run revision reports it.
//!
//! A write of a size is metered and logged under the kind's set call
//! (`ScalingCalls::set`) whatever the reading: which call a provider gets
//! for it (an autoscaled managed instance group's autoscaler patch) is the
//! adapter's, tested on its own and against the emulators.

use super::*;
use crate::cloud::metered::Wire;

/// One group of a kind on the role's port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGroup {
    /// What it is set to serve.
    pub size: Size,
    /// The most it can be set to (a quota, or its maximum): what `status`
    /// shows as its max when its size is one count.
    pub max: u32,
    /// What serves now.
    pub serving: u32,
    /// What is starting and does not serve yet.
    pub starting: u32,
    /// Whether a change is under way, or failed.
    pub change: Change,
    /// Its marks (tags, labels, annotations).
    pub marks: BTreeMap<String, String>,
    /// What marks are put on (its ARN).
    pub handle: String,
    /// The provider's word for its state (`ACTIVE`), when it has one (an
    /// Auto Scaling group has none: `status` then shows what is in service).
    pub status: Option<String>,
    /// The target groups it is registered in.
    pub balanced_by: Vec<String>,
    /// Whether a change under way reads as rolling out, its status
    /// `UPDATING` (an EKS node group's update), rather than as settled
    /// with capacity still starting (an ECS service's new tasks).
    pub rolls: bool,
    /// The most it can be set to serve, read as the role's ceiling (a
    /// managed instance group's autoscaler's maximum).
    pub ceiling: Option<u32>,
    /// The call that reads the operation a write of its size answers, when
    /// its writes answer one (a managed instance group's
    /// `regionOperations.get`): each write then answers an operation,
    /// done at its first read.
    pub operations: Option<&'static str>,
    /// Why its new capacity never starts, when it does not (a zone out of
    /// stock): what starts never serves, and its reads' state says why.
    pub stuck: Option<String>,
    /// The reason its next change fails with, when armed.
    fail_next: Option<String>,
    /// Whether new capacity serves at its next read (a world without the
    /// timed model).
    settling: bool,
}

/// A call of a kind on the port held back (and then failed, when `fail`
/// says why) before it reaches the fake, as a test arranges a slow or a
/// refused provider ([`FakeCloud::hold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// How long each call waits.
    pub wait: std::time::Duration,
    /// The reason it then fails with (`Client`), or `None`: it goes on.
    pub fail: Option<String>,
    /// Whether only the next call is held.
    pub once: bool,
}

/// A group's key: its kind (the plan table), region and name.
type Key = (&'static str, String, String);

fn key(kind: &'static str, region: &str, group: &str) -> Key {
    (kind, region.to_string(), group.to_string())
}

/// The timed model's key of a group's change (`Timing::start`).
fn timed(k: &Key) -> String {
    slow_key(k.0, &k.1, &k.2)
}

/// The timed model's key of a change of group `group` of `kind` in
/// `region`: what the simulator looks for among the slow operations
/// (`Resource::slow_ops`).
pub fn slow_key(kind: &str, region: &str, group: &str) -> String {
    format!("scaled:{kind} {region} {group}")
}

impl FakeGroup {
    fn reading(&self) -> Reading {
        let counts = format!("{} serving, {} starting", self.serving, self.starting);
        let mut state = match &self.status {
            Some(status) => format!("{status}, {counts}"),
            None => counts,
        };
        if let Some(why) = self.stuck.as_ref().filter(|_| self.starting > 0) {
            state.push_str(&format!("; what starts fails: {why}"));
        }
        Reading {
            size: self.size,
            serving: self.serving,
            change: self.change.clone(),
            marks: self.marks.clone(),
            handle: self.handle.clone(),
            state,
            ceiling: self.ceiling,
            balanced_by: self.balanced_by.clone(),
            targets: Vec::new(),
        }
    }

    /// Its size as three bounds (one count: between none and its max), as
    /// `status` shows it.
    pub fn bounds(&self) -> Capacity {
        match self.size {
            Size::Bounds(c) => c,
            Size::Count(n) => Capacity {
                min: 0,
                desired: n,
                max: self.max,
            },
        }
    }

    fn shown(&self, region: &str, group: &str) -> ComputeGroup {
        let capacity = self.bounds();
        ComputeGroup {
            name: group.to_string(),
            region: region.to_string(),
            capacity,
            in_service: self.serving,
            instances: self.serving + self.starting,
            tags: self.marks.clone(),
            status: self.status.clone(),
            notes: Vec::new(),
            target_groups: self.balanced_by.clone(),
        }
    }

    /// New capacity serves: what a settled change leaves (unless it is
    /// stuck: then only what served before still does).
    fn settle(&mut self) {
        self.settling = false;
        if self.stuck.is_some() {
            return;
        }
        self.serving = self.size.serving();
        self.starting = 0;
        if self.rolls {
            (self.change, self.status) = (Change::Settled, Some("ACTIVE".into()));
        }
    }
}

impl FakeState {
    /// Settles the groups whose change the timed model says is done.
    pub(super) fn settle_scaled(&mut self, done: &[String]) {
        for g in self
            .scaled
            .iter_mut()
            .filter(|(k, _)| done.contains(&timed(k)))
        {
            g.1.settle();
        }
    }

    /// What serves behind target group `arn` in `region` among the groups
    /// on the port: (serving, registered).
    pub(super) fn scaled_behind(&self, region: &str, arn: &str) -> (u32, u32) {
        (self.scaled.iter())
            .filter(|((_, r, _), g)| r == region && g.balanced_by.iter().any(|t| t == arn))
            .fold((0, 0), |(a, b), (_, g)| {
                (a + g.serving, b + g.serving + g.starting)
            })
    }
}

impl FakeCloud {
    /// Adds group `group` of the kind `calls` serves in `region`, serving
    /// `size`, `ACTIVE`, with a handle of ARN shape; `max`: what its
    /// status shows as its max when its size is one count.
    pub fn add_scaled(
        &self,
        calls: &'static ScalingCalls,
        region: &str,
        group: &str,
        size: Size,
        max: u32,
    ) {
        let (service, _) = calls.read.split_once(':').unwrap_or((calls.read, ""));
        let g = FakeGroup {
            size,
            max,
            serving: size.serving(),
            starting: 0,
            change: Change::Settled,
            marks: BTreeMap::new(),
            handle: format!(
                "arn:aws:{service}:{region}:123456789012:{}/{group}",
                calls.kind
            ),
            status: Some("ACTIVE".into()),
            balanced_by: Vec::new(),
            rolls: false,
            ceiling: None,
            operations: None,
            stuck: None,
            fail_next: None,
            settling: false,
        };
        self.state()
            .scaled
            .insert(key(calls.kind, region, group), g);
    }

    /// Seeds Auto Scaling group `name` in `region` at `capacity`, every
    /// desired instance in service; its tags go on its name.
    pub fn add_group(&self, region: &str, name: &str, capacity: Capacity) {
        let size = Size::Bounds(capacity);
        self.add_scaled(&aws::autoscaling::CALLS, region, name, size, capacity.max);
        self.with_scaled("compute", region, name, |g| {
            (g.handle, g.status) = (name.to_string(), None);
        });
    }

    /// Seeds EKS managed node group `cluster/name` in `region`, `ACTIVE`
    /// at `capacity`; a change rolls out as an update.
    pub fn add_node_group(&self, region: &str, cluster: &str, name: &str, capacity: Capacity) {
        let group = format!("{cluster}/{name}");
        let size = Size::Bounds(capacity);
        self.add_scaled(&aws::eks::CALLS, region, &group, size, capacity.max);
        self.with_scaled("node_group", region, &group, |g| {
            g.rolls = true;
            g.handle = format!("arn:aws:eks:{region}:123456789012:nodegroup/{group}/fake");
        });
    }

    /// Seeds ECS service `cluster/name` in `region` at `desired` tasks.
    pub fn add_ecs_service(&self, region: &str, cluster: &str, name: &str, desired: u32) {
        let group = format!("{cluster}/{name}");
        let (calls, max) = (&aws::ecs::CALLS, aws::ecs::TASKS_PER_SERVICE);
        self.add_scaled(calls, region, &group, Size::Count(desired), max);
        self.with_scaled("ecs_service", region, &group, |g| {
            g.handle = format!("arn:aws:ecs:{region}:123456789012:service/{group}");
        });
    }

    /// Changes group `group` of `kind` in `region` as another actor would
    /// (`None`: no such group).
    pub fn with_scaled<T>(
        &self,
        kind: &str,
        region: &str,
        group: &str,
        f: impl FnOnce(&mut FakeGroup) -> T,
    ) -> Option<T> {
        let mut s = self.state();
        let g = (s.scaled.iter_mut())
            .find(|((k, r, n), _)| *k == kind && r == region && n == group)
            .map(|(_, g)| g)?;
        Some(f(g))
    }

    /// Holds the calls labelled `label` (`autoscaling:DeleteTags`) of the
    /// kinds on the port as `held` says.
    pub fn hold(&self, label: &'static str, held: Held) {
        self.state().held.insert(label, held);
    }

    /// Arms the next change of group `group` of `kind` in `region` to
    /// fail with `reason`, as its provider reports a failed rollout.
    pub fn fail_next_change(&self, kind: &str, region: &str, group: &str, reason: &str) {
        let armed = self.with_scaled(kind, region, group, |g| {
            g.fail_next = Some(reason.to_string());
        });
        assert!(
            armed.is_some(),
            "no {kind} group {group} in {region} in the fake"
        );
    }

    /// The capacity kinds on the role's port, answered by this world.
    pub(super) fn scalers(&self) -> Scalers {
        Scalers::of(crate::cloud::CAPACITY_KINDS.iter().map(|&calls| {
            Arc::new(Groups {
                calls,
                cloud: self.clone(),
            }) as Arc<dyn Scaler>
        }))
    }
}

/// One kind's groups in the fake, on the role's port.
struct Groups {
    calls: &'static ScalingCalls,
    cloud: FakeCloud,
}

impl Groups {
    /// The group after a call of `label` reached the fake, or the
    /// provider's not-found error (`Ok(None)` for a read: it does not
    /// exist).
    async fn reach<T>(
        &self,
        label: &'static str,
        region: &str,
        group: &str,
        act: impl FnOnce(&mut FakeGroup, &mut Vec<String>) -> T,
    ) -> Result<Option<T>, CloudError> {
        let held = {
            let mut s = self.cloud.state();
            let held = s.held.get(label).cloned();
            if held.as_ref().is_some_and(|h| h.once) {
                s.held.remove(label);
            }
            held
        };
        if let Some(h) = held {
            tokio::time::sleep(h.wait).await;
            if let Some(why) = h.fail {
                let kind = ErrorKind::Client;
                return Err(CloudError::of_call(label, group, region, kind, why));
            }
        }
        let mut s = self.cloud.enter(label, region, group).await?;
        let s = &mut *s;
        let Some(g) = s.scaled.get_mut(&key(self.calls.kind, region, group)) else {
            return Ok(None);
        };
        if g.settling && self.cloud.timing.is_none() && label == self.calls.read {
            g.settle();
        }
        Ok(Some(act(g, &mut s.writes)))
    }

    /// A write of `label` to group `group`: the provider's not-found error
    /// when it does not exist; the write is logged as `label group`, a
    /// mark's as `label+marks group` and their removal's as `label-marks
    /// group` (`what`), so a kind whose one call writes both a size and
    /// marks (Cloud Run's `services.patch`) tells them apart in the log.
    async fn write<T>(
        &self,
        label: &'static str,
        what: &str,
        region: &str,
        group: &str,
        act: impl FnOnce(&mut FakeGroup) -> T,
    ) -> Result<T, CloudError> {
        let (service, operation) = label.split_once(':').unwrap_or(("", label));
        let done = self.reach(label, region, group, |g, writes| {
            writes.push(format!("{label}{what} {group}"));
            act(g)
        });
        (done.await?).ok_or_else(|| not_found(service, operation, group, region))
    }
}

#[async_trait]
impl Scaler for Groups {
    fn calls(&self) -> &'static ScalingCalls {
        self.calls
    }

    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        let label = self.calls.read;
        let read = || self.reach(label, region, group, |g, _| g.reading());
        wire.call(label, region, read).await
    }

    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let label = self.calls.read;
        let read = || self.reach(label, region, group, |g, _| g.shown(region, group));
        wire.call(label, region, read).await
    }

    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let label = self.calls.set;
        let timing = self.cloud.timing.clone();
        let k = key(self.calls.kind, region, group);
        let set = || {
            self.write(label, "", region, group, |g| {
                // A size of another shape (one count for three bounds) is
                // refused, as each adapter refuses it (`bounds_of`).
                if std::mem::discriminant(&g.size) != std::mem::discriminant(&size) {
                    let why = format!("a size of another shape ({size}) than {}", g.size);
                    return Err(CloudError::of_call(
                        label,
                        group,
                        region,
                        ErrorKind::Client,
                        why,
                    ));
                }
                g.size = size;
                g.starting = size.serving().saturating_sub(g.serving);
                g.serving = g.serving.min(size.serving());
                // A failed change starts nothing that serves, as a
                // rollout whose tasks never start.
                let op = (g.operations).map(|_| format!("fake-op/{group}/{size}"));
                if let Some(reason) = g.fail_next.take() {
                    let id = format!("fake-change/{group}");
                    g.change = Change::Failed { id, reason };
                    return Ok(op);
                }
                g.change = Change::Settled;
                match (&timing, self.calls.waits.first()) {
                    (Some(t), Some(slow)) if g.starting > 0 || g.rolls => {
                        if g.rolls {
                            g.status = Some("UPDATING".into());
                            g.change = Change::Rolling("UPDATING".into());
                        }
                        t.start(timed(&k), slow);
                    }
                    (Some(_), _) => g.settle(),
                    (None, _) => g.settling = true,
                }
                Ok(op)
            })
        };
        wire.call(label, region, || async { set().await? }).await
    }

    async fn operation(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        op: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        let of = |g: &mut FakeGroup| g.operations;
        let kind = self.calls.kind;
        let label = (self.cloud.with_scaled(kind, region, group, of)).flatten();
        let label = label.unwrap_or(self.calls.read);
        let read = || async {
            drop(self.cloud.enter(label, region, op).await?);
            Ok(Some(Ok(())))
        };
        wire.call(label, region, read).await
    }

    async fn mark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let label = self.calls.mark;
        let mark = || async {
            let group = self.by_handle(label, region, &read.handle).await?;
            let add = |g: &mut FakeGroup| g.marks.extend(marks.clone());
            self.write(label, "+marks", region, &group, add).await
        };
        wire.call(label, region, mark).await
    }

    async fn unmark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        let label = self.calls.unmark;
        let unmark = || async {
            let group = self.by_handle(label, region, &read.handle).await?;
            let take = |g: &mut FakeGroup| g.marks.retain(|k, _| !keys.contains(k));
            self.write(label, "-marks", region, &group, take).await
        };
        wire.call(label, region, unmark).await
    }
}

impl Groups {
    /// The name of the group whose handle is `handle` (what marks go on),
    /// or, once the call of `label` reached the fake (its fence, a region
    /// down), the provider's not-found error naming that call.
    async fn by_handle(
        &self,
        label: &'static str,
        region: &str,
        handle: &str,
    ) -> Result<String, CloudError> {
        let found = (self.cloud.state().scaled.iter())
            .find(|((k, r, _), g)| *k == self.calls.kind && r == region && g.handle == handle)
            .map(|((_, _, name), _)| name.clone());
        if let Some(name) = found {
            return Ok(name);
        }
        drop(self.cloud.enter(label, region, handle).await?);
        let (service, operation) = label.split_once(':').unwrap_or(("", label));
        Err(not_found(service, operation, handle, region))
    }
}
