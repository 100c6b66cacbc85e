//! The capacity role's port ([`Scaler`], its registry [`Scalers`]) and
//! what it speaks ([`Reading`], [`Change`], [`ScalingCalls`] and the pure
//! rules of group names and sizes), which the capacity kinds' adapters
//! implement (`[[compute]]`, `[[node_group]]`, `[[ecs_service]]`,
//! `[[kubernetes]]`, `[[cloud_run]]`, `[[instance_group]]`). Apart from `cloud/mod.rs` so that each file stays one reader's
//! size; re-exported there.

use async_trait::async_trait;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::metered::Wire;
use super::{Capacity, CloudError, ComputeGroup, Size, TargetCount};

/// Where a change of a group's size stands, as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Change {
    /// Nothing under way: the group serves what it reads.
    Settled,
    /// A change is being rolled out (its id, as the provider names it).
    Rolling(String),
    /// The last change failed: its id and the provider's reason.
    Failed {
        /// The change (an ECS deployment's id).
        id: String,
        /// Why, as the provider says it.
        reason: String,
    },
}

/// A group as the capacity role reads it, whatever the kind (kept by
/// preflight as its finding's facts, for the failover's step to act on
/// while fresh).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    /// What it is set to serve (an ECS service's desired count, an Auto
    /// Scaling group's three bounds).
    pub size: Size,
    /// What serves now (tasks running).
    pub serving: u32,
    /// Whether a change is under way, or failed.
    pub change: Change,
    /// The drill marks (tags, labels) on it: a drill's run, expiry and
    /// restore point, so any machine finds and returns a raise without the
    /// drill's journal (`steps::drill_names`).
    pub marks: BTreeMap<String, String>,
    /// What marks are put on (an ARN).
    pub handle: String,
    /// The provider's words for its state, for messages (`ACTIVE`).
    pub state: String,
    /// The most it can be set to serve, when something besides its size
    /// caps it (a managed instance group's autoscaler's maximum): a size
    /// above it is refused before any write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<u32>,
    /// The load balancers' target groups it is registered in (their ARNs),
    /// as its read names them (an Auto Scaling group's, an ECS service's):
    /// where traffic reaches it. Empty for a kind without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub balanced_by: Vec<String>,
    /// What those target groups count healthy, when the step that reads it
    /// waits through them (`steps::capacity::Group`); empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetCount>,
}

impl Reading {
    /// What serves: its own count (instances in service, tasks running),
    /// and no more than any target group it was read through counts
    /// healthy (an instance in service that its load balancer sends
    /// nothing to does not serve).
    pub fn served(&self) -> u32 {
        (self.targets.iter())
            .map(|t| t.healthy)
            .fold(self.serving, u32::min)
    }

    /// Whether it serves `size` and nothing is under way: what a raise
    /// and a restore wait for.
    pub fn serves(&self, size: Size) -> bool {
        self.size == size && self.served() >= size.serving() && self.change == Change::Settled
    }
}

/// The API calls of a kind's actions, as the model of the clouds names
/// them (`ecs:UpdateService`): the steps' costs, previews and fences.
#[derive(Debug, Clone, Copy)]
pub struct ScalingCalls {
    /// The plan table of the kind whose groups these are (`ecs_service`):
    /// its adapter's key in [`Scalers`].
    pub kind: &'static str,
    /// The read.
    pub read: &'static str,
    /// The write of a size.
    pub set: &'static str,
    /// The write of marks.
    pub mark: &'static str,
    /// The removal of marks.
    pub unmark: &'static str,
    /// The calls a raise makes once (its read and its write).
    pub calls: &'static [&'static str],
    /// The model's slow operations a raise waits through.
    pub waits: &'static [&'static str],
}

/// The capacity role's cloud interface: what one kind's adapter does to its
/// groups, reading the provider's answer straight into the role's
/// [`Reading`]. The adapter implements it itself (`impl Scaler for` the
/// ECS client), so a kind has one adapter layer, not a per-service trait
/// under the role; the fake answers it from its own model. A group is
/// addressed by its region and its name as the role and a journal name it
/// (`cluster/service`).
///
/// Every API call an adapter makes goes through `wire` ([`Wire::call`],
/// labelled as the model names it): the meter, the faults and the budgets
/// see each call, however many one action takes, and the adapter needs no
/// decorator. Callers reach it through [`Scalers::get`], which hands the
/// bundle's wire.
#[async_trait]
pub trait Scaler: Send + Sync {
    /// Its calls, and the kind they serve.
    fn calls(&self) -> &'static ScalingCalls;
    /// Reads group `group` in `region` (`Ok(None)`: it does not exist).
    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError>;
    /// Reads it as `status` shows it (its bounds, what is in service and
    /// the provider's status), with the same calls as [`Scaler::read`].
    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError>;
    /// Sets its size. `key` names the write (a provider that takes a
    /// request id answers the same write sent again with what it did the
    /// first time); the provider's operation to follow, when the write
    /// answers one.
    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        key: &str,
    ) -> Result<Option<String>, CloudError>;
    /// Where operation `op`, which a [`Scaler::set`] of group `group`
    /// answered, stands: `None` while it runs, `Some(Ok)` done,
    /// `Some(Err(why))` failed in the provider's words. A kind whose
    /// writes answer no operation never has one to follow: done.
    async fn operation(
        &self,
        _wire: &Wire,
        _region: &str,
        _group: &str,
        _op: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        Ok(Some(Ok(())))
    }
    /// Puts `marks` on it (`read` is its [`Scaler::read`]).
    async fn mark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError>;
    /// Takes the marks named `keys` off it.
    async fn unmark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError>;
}

/// The capacity adapters of a [`super::Clouds`], by the plan table of the
/// kind each serves (one entry per kind, made from the adapters' list: the
/// AWS and GCP builders', the fake's), and the wire their calls go
/// through.
#[derive(Clone, Default)]
pub struct Scalers {
    adapters: BTreeMap<&'static str, Arc<dyn Scaler>>,
    wire: Wire,
}

/// One kind's adapter with the wire of its bundle: what a caller acts
/// through.
#[derive(Clone, Copy)]
pub struct Port<'a> {
    adapter: &'a dyn Scaler,
    wire: &'a Wire,
}

impl Scalers {
    /// The registry of `adapters`, each under its kind (a later one for
    /// the same kind replaces an earlier one).
    pub fn of(adapters: impl IntoIterator<Item = Arc<dyn Scaler>>) -> Self {
        Self {
            adapters: (adapters.into_iter())
                .map(|a| (a.calls().kind, a))
                .collect(),
            wire: Wire::default(),
        }
    }

    /// The adapter of `kind` (a plan table), or an error naming it: a
    /// bundle built without it refuses before any call.
    pub fn get(&self, kind: &str, region: &str) -> Result<Port<'_>, CloudError> {
        match self.adapters.get(kind) {
            Some(a) => Ok(Port {
                adapter: &**a,
                wire: &self.wire,
            }),
            None => Err(CloudError::new(
                "drctl",
                "capacity",
                kind,
                region,
                super::ErrorKind::Client,
                format!("no adapter serves `[[{kind}]]` in this bundle"),
            )),
        }
    }

    /// The same adapters, their calls through the wire `wrap` makes of
    /// this one (the meter's).
    pub fn metered(&self, wrap: impl FnOnce(&Wire) -> Wire) -> Self {
        Self {
            adapters: self.adapters.clone(),
            wire: wrap(&self.wire),
        }
    }

    /// The kinds it serves.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.adapters.keys().copied()
    }
}

impl Port<'_> {
    /// Its calls, and the kind they serve.
    pub fn calls(&self) -> &'static ScalingCalls {
        self.adapter.calls()
    }

    /// [`Scaler::read`].
    pub async fn read(&self, region: &str, group: &str) -> Result<Option<Reading>, CloudError> {
        self.adapter.read(self.wire, region, group).await
    }

    /// [`Scaler::describe`].
    pub async fn describe(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        self.adapter.describe(self.wire, region, group).await
    }

    /// [`Scaler::set`].
    pub async fn set(
        &self,
        region: &str,
        group: &str,
        size: Size,
        key: &str,
    ) -> Result<Option<String>, CloudError> {
        self.adapter.set(self.wire, region, group, size, key).await
    }

    /// [`Scaler::operation`].
    pub async fn operation(
        &self,
        region: &str,
        group: &str,
        op: &str,
    ) -> Result<Option<Result<(), String>>, CloudError> {
        self.adapter.operation(self.wire, region, group, op).await
    }

    /// [`Scaler::mark`].
    pub async fn mark(
        &self,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.adapter.mark(self.wire, region, read, marks).await
    }

    /// [`Scaler::unmark`].
    pub async fn unmark(
        &self,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        self.adapter.unmark(self.wire, region, read, keys).await
    }
}

/// Splits `outer/inner` (an EKS `cluster/nodegroup`, an ECS
/// `cluster/service`) into its two names, each 1 to `max` letters, digits,
/// hyphens and underscores (`None`: not of that form).
pub fn split_pair(value: &str, max: usize) -> Option<(&str, &str)> {
    let (outer, inner) = value.split_once('/')?;
    let name_ok = |n: &str| {
        (1..=max).contains(&n.len())
            && (n.chars()).all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    (name_ok(outer) && name_ok(inner)).then_some((outer, inner))
}

/// How a kind writes a group's two names: `outer/inner` (`form` says it in
/// words: `cluster/service`), each name at most `max` characters
/// ([`split_pair`]). One value per kind, so its plan's check and its
/// adapter's refusal read the same limit.
#[derive(Debug, Clone, Copy)]
pub struct PairForm {
    /// The most characters each name has.
    pub max: usize,
    /// The form in words, for errors.
    pub form: &'static str,
}

impl PairForm {
    /// The two names of `value` (`None`: not of this form).
    pub fn split<'a>(&self, value: &'a str) -> Option<(&'a str, &'a str)> {
        split_pair(value, self.max)
    }

    /// The two names of `group`, or an error naming the value and `call` (a
    /// model label, `ecs:UpdateService`) in `region`: what a journal or a
    /// mark handed the role is checked before any call.
    pub fn names<'a>(
        &self,
        group: &'a str,
        call: &'static str,
        region: &str,
    ) -> Result<(&'a str, &'a str), CloudError> {
        self.split(group).ok_or_else(|| {
            let why = format!("`{group}` is not `{}`", self.form);
            CloudError::of_call(call, group, region, super::ErrorKind::Client, why)
        })
    }
}

/// The three bounds of `size` for a kind whose groups have three (an Auto
/// Scaling group, an EKS node group), or an error naming `call` (a model
/// label, `eks:UpdateNodegroupConfig`), the group and `region`: one count
/// there is another drctl's journal or a forged mark, and nothing is
/// guessed from it. The steps refuse a size of another shape before any
/// write (`steps::capacity::decide_size`); this is the kind's own guard.
pub fn bounds_of(
    size: Size,
    call: &'static str,
    group: &str,
    region: &str,
) -> Result<Capacity, CloudError> {
    match size {
        Size::Bounds(c) => Ok(c),
        Size::Count(n) => {
            let why = format!("a size of one count ({n}) where min/desired/max is wanted");
            Err(CloudError::of_call(
                call,
                group,
                region,
                super::ErrorKind::Client,
                why,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::fake::FakeCloud;

    /// A bundle without a kind's adapter refuses that kind before any
    /// call, naming it; a group of a kind on the port that does not exist
    /// reads as absent and a write to it is the provider's not-found.
    #[tokio::test]
    async fn a_kind_without_an_adapter_is_refused_before_any_call_naming_it() {
        let fake = FakeCloud::new();
        let clouds = fake.clouds();
        let Err(e) = clouds.capacity.get("no_such_kind", "us-east-1") else {
            panic!("an unknown kind has no adapter")
        };
        assert_eq!(e.kind, super::super::ErrorKind::Client);
        assert!(e.to_string().contains("[[no_such_kind]]"), "{e}");
        assert!(fake.state().writes.is_empty());
        let ecs = clouds.capacity.get("ecs_service", "us-east-1").unwrap();
        assert_eq!(ecs.read("us-east-1", "c/none").await.unwrap(), None);
        let e = (ecs.set("us-east-1", "c/none", Size::Count(1), "k").await).unwrap_err();
        assert_eq!(e.kind, super::super::ErrorKind::NotFound, "{e}");
    }

    /// A real bundle and the fake serve the same kinds, from one list
    /// (`cloud::capacity_adapters!`), each under the plan table its calls
    /// name, none twice.
    #[test]
    fn a_bundle_and_the_fake_serve_every_kind_of_the_list_each_once() {
        let listed: std::collections::BTreeSet<_> = (crate::cloud::CAPACITY_KINDS.iter())
            .map(|c| c.kind)
            .collect();
        assert_eq!(
            listed.len(),
            crate::cloud::CAPACITY_KINDS.len(),
            "a kind twice"
        );
        let fake: std::collections::BTreeSet<_> =
            FakeCloud::new().clouds().capacity.kinds().collect();
        assert_eq!(fake, listed);
        let settings = crate::cloud::CloudSettings::default();
        let sdk = crate::cloud::aws::Sdk::offline(&settings);
        let real = crate::cloud::capacity_adapters(&settings, &sdk);
        for kind in &listed {
            let port = real.get(kind, "us-east-1").expect("an adapter");
            assert_eq!(port.calls().kind, *kind);
        }
        assert_eq!(
            real.kinds().collect::<std::collections::BTreeSet<_>>(),
            listed
        );
    }
}
