//! The capacity role's actions: what one generic failover step
//! (`steps::raise`), one generic drill step and its cleanup
//! (`steps::drill_raise`) and the sweep (`cleanup::sweep`) ask of a
//! capacity kind, so a new capacity kind is its table, its adapter and
//! this role: no step of its own, no `Temp` of its own, no sweep finder.
//!
//! # Why a role of its own, beside [`Groups`](super::Groups)
//!
//! [`Groups`](super::Groups) answers what the plan says of a resource's
//! groups: their names and sizes. A reader with a plan (a drill's look
//! for another drill's raise, the sweep, `watch`) reads a group through
//! these actions too, by the name `Groups::raised_group` gives it, so
//! every reader and every step read a group one way. These actions are
//! also asked where no plan is at hand: a drill's cleanup after a crash,
//! a sweep that found a mark on a group, know only the kind, the region
//! and the group's name as the journal or the mark records them. So they
//! are addressed by that name and reached through the kind
//! ([`ResourceKind::scaling`](super::ResourceKind::scaling), or a
//! resource's [`Scaled::scaling`](super::Scaled::scaling)), never through
//! a `match` on kinds.
//!
//! A group's size here is a [`Size`]: one count (an ECS service's desired
//! count, a Cloud Run service's floor) or three bounds (an Auto Scaling
//! group's min, desired and max), as the kind counts it.
//!
//! # The role is the port
//! The actions that reach the cloud (`read`, `set`, `mark`, `unmark`, and
//! `Groups::describe` for `status`) are the role's port,
//! [`crate::cloud::Scaler`], which a kind's adapter implements itself:
//! every capacity kind writes only what is its own here (its words and
//! calls, its size's shape, the command by hand, and a provider operation
//! to follow, `Answers`), and its actions go to its adapter in
//! `Clouds::capacity`, each API call through the bundle's `Wire`. A kind
//! whose bundle has no adapter is refused at its first read, naming it
//! (`Scalers::get`), and the contract suite (`steps::drill_raise`'s tests)
//! runs every capacity kind.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::cloud::{Capacity, CloudError, Clouds, Port, Size};
pub use crate::cloud::{Change, PairForm, Reading, ScalingCalls, bounds_of};

/// What a capacity kind's groups are, in words and calls: the same for
/// every group of the kind, so one value the kind gives
/// ([`Scaling::about`]) rather than a method for each.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// What a group of the kind is called in sentences (`ECS service`).
    pub noun: &'static str,
    /// What `status` calls its groups (`compute`, `nodes`).
    pub label: &'static str,
    /// Whether a group serves at a size of none (a request starts a Cloud
    /// Run instance): its standby's checks can pass at any size.
    pub serves_from_zero: bool,
    /// What its size counts (`tasks`).
    pub unit: &'static str,
    /// What to do when a group is missing (create it, or fix the plan).
    pub missing_hint: &'static str,
    /// Whether its groups carry marks (tags, labels) a drill can put on
    /// them: without, a drill's raise is found through its journal alone
    /// (a managed instance group carries none), and [`Scaling::mark`] is
    /// never called.
    pub carries_marks: bool,
    /// Whether its max is written with its size, to what the plan says
    /// for that state (a Kubernetes workload's HPA bounds, 1..1 at standby,
    /// 3..12 active): its max at standby below the active size is then the
    /// plan's, not a drift, and neither `status` nor preflight judges it
    /// (`steps::capacity::short_of`).
    pub max_follows: bool,
    /// Its calls.
    pub calls: ScalingCalls,
}

/// The capacity role's actions on one kind's groups, addressed by the
/// region and the name a journal records (`Groups::raised_group`).
#[async_trait]
pub trait Scaling: Sync {
    /// What the kind's groups are, in words and calls.
    fn about(&self) -> &'static About;
    /// The size of a group the plan sizes at `planned` (the kind's
    /// `Groups::active`, or its `Groups::standby`), as this kind counts
    /// it: one count or three bounds.
    fn size_of(&self, planned: Capacity) -> Size;
    /// The call a write of its size makes to the group read as `read` (an
    /// autoscaled managed instance group's minimum is its autoscaler's
    /// `patch`, not the group's `resize`): what a preview people approve
    /// shows, and what a fence names.
    fn set_call(&self, read: &Reading) -> &'static str;
    /// Reads group `group` in `region` (`Ok(None)`: it does not exist).
    /// Every capacity kind is read by its adapter on the role's port
    /// ([`Scaler`](crate::cloud::Scaler)) in [`Clouds::capacity`].
    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        self.port(clouds, region)?.read(region, group).await
    }
    /// Sets its size. `key` names this write (the run's, the group's and
    /// the size's, or a cleanup's own): a provider that takes a request id
    /// answers the same write sent again after a lost answer with what it
    /// did the first time. Returns the provider's operation to follow
    /// until it is done ([`Scaling::answers`]), when the write answers
    /// one; `None`: the write took effect when it was answered.
    async fn set(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
        size: Size,
        key: &str,
    ) -> Result<Option<String>, CloudError> {
        self.port(clouds, region)?
            .set(region, group, size, key)
            .await
    }
    /// How its writes are answered: at once, or with a provider
    /// operation the step follows until it is done ([`super::Answers`]).
    fn answers(&self) -> super::Answers<'_>;
    /// Puts `marks` on it (`read` is its [`Scaling::read`]).
    async fn mark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.port(clouds, region)?.mark(region, read, marks).await
    }
    /// Takes the marks named `keys` off it.
    async fn unmark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.port(clouds, region)?.unmark(region, read, keys).await
    }
    /// Its kind's adapter on the role's port, from `clouds`.
    fn port<'c>(&self, clouds: &'c Clouds, region: &str) -> Result<Port<'c>, CloudError> {
        clouds.capacity.get(self.about().calls.kind, region)
    }
    /// The command that returns group `group` in `region` to `size` by
    /// hand, for a cleanup that could not.
    fn manual(&self, region: &str, group: &str, size: Size) -> String;
}

/// The size a capacity kind's group has when no run has moved it: the
/// active size in the plan's home region, the standby size elsewhere.
pub fn normal<T: Copy>(home: &str, region: &str, (active, standby): (T, T)) -> T {
    if region == home { active } else { standby }
}

#[cfg(test)]
mod tests {
    use crate::plan::spec::ResourceKind;

    /// Every capacity kind reaches the cloud through its adapter on the
    /// port: a kind whose adapter the bundle lacks compiles, and would
    /// fail its first read with "no adapter serves" (the real bundle
    /// registers the same adapters, `cloud::capacity`'s tests).
    #[tokio::test]
    async fn every_capacity_kind_reads_through_its_adapter_on_the_port() {
        let clouds = crate::cloud::fake::FakeCloud::new().clouds();
        let served: Vec<_> = clouds.capacity.kinds().collect();
        let kinds = (ResourceKind::ALL.iter()).filter_map(|k| Some((k, k.scaling()?)));
        for (kind, role) in kinds {
            assert!(served.contains(&kind.table()), "{kind:?}: {served:?}");
            let read = role.read(&clouds, "us-east-1", "p/g").await;
            if let Err(e) = read {
                assert!(
                    !e.to_string().contains("no adapter serves"),
                    "{kind:?}: {e}"
                );
            }
        }
    }

    /// A capacity kind's calls name its own table: the key its adapter is
    /// found by in `Clouds::capacity` (a kind whose calls named another's
    /// would act on that kind's groups).
    #[test]
    fn every_capacity_kind_names_its_own_table_as_its_ports_key() {
        let kinds = (ResourceKind::ALL.iter()).filter_map(|k| Some((k, k.scaling()?)));
        for (kind, role) in kinds {
            assert_eq!(role.about().calls.kind, kind.table(), "{kind:?}");
        }
    }
}
