//! Steps: the kinds of step a run is made of, and the graph they compile
//! into.
//!
//! Most step kinds are generic: each makes one move of a role for every
//! resource kind that plays it, reaching the kind only through its role
//! (`crate::plan::kinds`), so a new resource kind needs no step here:
//! * capacity: `raise` (a failover's) and `drill-raise` (a drill's, returned
//!   at cleanup);
//! * data: `promote`, `restore`, `reprotect` and a drill's `drill-copy`;
//! * traffic: records mode, `switch-dns` and `verify-dns` (one step per
//!   zone) and a drill's `drill-dns`; the data plane, `switch-control` and
//!   `verify-resolution` (one step per plan);
//! * cross-cutting: `preflight`, `check`, `verify-bucket`, `evidence`;
//!   and two of one kind's: `settle-sql` (Cloud SQL's old primary) and
//!   `drill-control` (a Route 53 data-plane drill).
//!
//! A step kind's module says where its steps go in a graph (`compile`,
//! adding steps to a [`Builder`] for each run mode), what the kind is
//! ([`Traits`]: does it end the RTO clock, can it be undone, is it where
//! the RPO is measured), what it would do (`preview`), what it does (`run`),
//! what it checks before a run changes anything (`preflight`, which `status`
//! also shows), and how it is described. The `kinds!` list names the kinds
//! once; from that list come [`StepKind`], [`KindName`], the exhaustive
//! dispatch and the compile order, so a new step kind is a file here and a
//! line in the list: the compiler names everything else. Kinds an earlier
//! drctl compiled stay in the list after `; retired:`, so their journals
//! still read.
//!
//! No step kind imports another (`tests/it/layers.rs` checks it): what
//! several share lives in modules that are no step kind: [`capacity`] (the
//! capacity role's machinery), `copies` (data copies: reads, lag records,
//! [`PromoteOutput`]), `records`, `controls` and `resolution` (the traffic
//! steps' records, data-plane controls and resolution checks),
//! [`dns_setup`] (a data-plane switch's setup, made and checked),
//! [`leftovers`] and [`drill_names`] (what a drill leaves and how it is
//! found again), [`placement`] (where a plan serves, for `status` and
//! `watch`) and [`side`] (reads of the regions left behind).
//!
//! Every step is idempotent: it first reads the resource (is the replica
//! already a primary? is the group already at capacity? does the record
//! already point at the target?) and acts only when needed, so any step can
//! be run again after a crash. Steps never share mutable state: a step
//! publishes outputs (JSON) that the engine journals, and later steps read
//! them from [`Cx::outputs`], which on resume is rebuilt from the journal.
//! Parameters come from the step itself (the ids, capacities and URLs the
//! compiler put there), never from looking the plan up again.

mod bucket;
pub mod capacity;
mod check;
mod controls;
mod copies;
pub mod dns_setup;
pub mod drill_control;
pub mod drill_copy;
pub mod drill_dns;
pub mod drill_names;
pub mod drill_raise;
mod evidence;
pub mod leftovers;
mod preflight;
mod promote;
pub mod raise;
mod records;
mod reprotect;
mod resolution;
mod restore;
pub mod settle_sql;
pub mod switch_control;
mod switch_dns;
mod traits;
mod verify_dns;
pub mod verify_resolution;

mod failure;
pub mod graph;
pub mod placement;
pub mod side;

#[cfg(test)]
mod fencing_tests;
#[cfg(test)]
mod restore_backups_tests;
#[cfg(test)]
mod restore_cluster_tests;
#[cfg(test)]
mod role_tests;
#[cfg(test)]
mod switch_dns_tests;
#[cfg(test)]
mod test_cx;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cloud::{CloudError, Clouds};
use crate::journal::store::JournalStore;
use crate::plan::Plan;
use crate::steps::graph::{Builder, Step};

pub use copies::CopyRead;
pub use copies::PromoteOutput;
pub use drill_control::DrillControlOutput;
pub use drill_copy::DrillCopyOutput;
pub use drill_dns::DrillDnsOutput;
pub use evidence::{EvidenceOutput, MissingPack, StoredPack};
pub use failure::StepFailure;
pub use promote::{
    Promote, cost_of as promote_cost_of, standby_problems as promote_standby_problems,
};
pub use records::SwitchDnsOutput;
pub use reprotect::ReprotectOutput;
pub use restore::{
    Restore, RestoreOutput, cost_of as restore_cost_of, restored_id,
    standby_problems as restore_standby_problems,
};
pub use traits::{
    Cost, DRILL_IN_EFFECT, EndpointReader, IN_EFFECT, INSYNC, RESOLVED, Restored, RpoReader,
    Traits, UNCONFIRMED,
};
pub use verify_dns::VerifyDnsOutput;

/// Declares the step kinds: `Variant(module::Type) = "name"`, in compile
/// order. Generates [`StepKind`], [`KindName`] and the dispatch.
macro_rules! kinds {
    (@role $a:ident; $($role:ident)*) => {
        Roles {
            drilled: kinds!(@has $a drilled; $($role)*),
            writes: kinds!(@has $a writes; $($role)*),
            ready: kinds!(@has $a ready; $($role)*),
        }
    };
    (@has $a:ident drilled; drilled $($rest:ident)*) => { Some($a as &dyn leftovers::Drilled) };
    (@has $a:ident writes; writes $($rest:ident)*) => { Some($a as &dyn Writes) };
    (@has $a:ident ready; ready $($rest:ident)*) => { Some($a as &dyn Ready) };
    (@has $a:ident $want:ident; $other:ident $($rest:ident)*) => { kinds!(@has $a $want; $($rest)*) };
    (@has $a:ident $want:ident;) => { { let _ = $a; None } };
    ($( $(#[$doc:meta])* $variant:ident($module:ident :: $ty:ident) = $name:literal $(+ $role:ident)*, )*
     ; retired: $( $(#[$rdoc:meta])* $retired:ident = $rname:literal => $rtraits:expr, )*) => {
        /// What a step does, with its parameters.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind", rename_all = "kebab-case")]
        pub enum StepKind {
            $( $(#[$doc])* $variant($module::$ty), )*
        }

        /// The name of a step kind, as step ids and journals spell it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum KindName {
            $( $(#[$doc])* $variant, )*
            $( $(#[$rdoc])* $retired, )*
        }

        impl KindName {
            /// Every kind, in compile order.
            pub const ALL: &[KindName] = &[$(KindName::$variant),*];

            /// The kinds an earlier drctl compiled that this one does not:
            /// their journals still read, name and measure their steps.
            pub const RETIRED: &[KindName] = &[$(KindName::$retired),*];

            /// The name in step ids (`switch-dns`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(KindName::$variant => $name,)*
                    $(KindName::$retired => $rname,)*
                }
            }

            /// What the kind is.
            pub fn traits(self) -> Traits {
                match self {
                    $(KindName::$variant => $module::TRAITS,)*
                    $(KindName::$retired => $rtraits,)*
                }
            }
        }

        impl StepKind {
            /// The kind's name.
            pub fn name(&self) -> KindName {
                match self { $(StepKind::$variant(_) => KindName::$variant,)* }
            }

            /// The kind's behaviour.
            pub fn action(&self) -> &dyn Action {
                match self { $(StepKind::$variant(a) => a,)* }
            }

            /// The kind's side a sweep reads, for a drill kind (marked
            /// `+ drilled` in the list: the compiler then asks for its
            /// [`leftovers::Drilled`]): what its drills left, found
            /// without their journals.
            pub fn drilled(&self) -> Option<&dyn leftovers::Drilled> {
                self.roles().drilled
            }

            /// The kind's side a resume reads, for a kind that makes a
            /// database the writer (marked `+ writes`): its endpoint,
            /// read again from the cloud.
            pub fn writes(&self) -> Option<&dyn Writes> {
                self.roles().writes
            }

            /// What `status` reads of the kind's step itself, for a kind
            /// whose resources `status` does not read (marked `+ ready`).
            pub fn ready(&self) -> Option<&dyn Ready> {
                self.roles().ready
            }

            /// The roles the list marks the kind with.
            fn roles(&self) -> Roles<'_> {
                match self { $(StepKind::$variant(a) => kinds!(@role a; $($role)*),)* }
            }
        }

        /// Adds every kind's steps for the builder's plan, target and mode.
        pub(crate) fn compile_kinds(b: &mut Builder<'_>) {
            $( $module::compile(b); )*
        }
    };
}

kinds! {
    /// Check the target side before anything changes.
    Preflight(preflight::Preflight) = "preflight",
    /// Raise a capacity resource's group (any kind the capacity role's
    /// actions serve: an Auto Scaling group, an EKS node group, an ECS
    /// service, a Cloud Run service's floor) to its active size and wait
    /// until it serves.
    Raise(raise::Raise) = "raise",
    /// Make a data resource's standby copy in the target the primary (any
    /// kind the data role promotes: an RDS read replica promoted; a Cloud
    /// SQL replica promoted, failed over to as a DR replica, or switched
    /// over to in a planned move; an Aurora global database's writer moved
    /// to the target's member, or the member detached).
    Promote(promote::Promote) = "promote" + writes,
    /// Restore a data resource's copy to a point in time, into a new copy
    /// (any kind the data role restores: an RDS instance, a Cloud SQL
    /// instance as a clone).
    Restore(restore::Restore) = "restore" + writes + ready,
    /// Make every other region's copy of a data resource follow the new
    /// primary again (any kind the data role reprotects: RDS replicas
    /// made again, an Aurora global database's secondaries made again or
    /// rebuilt after a detach, Cloud SQL's former primary waited for and
    /// the DR replica designated).
    Reprotect(reprotect::Reprotect) = "reprotect",
    /// Probe an HTTP health check in the target region.
    Check(check::Check) = "check" + ready,
    /// Switch a plan's records-mode records in one zone (any traffic
    /// kind's: a Route 53 hosted zone, a Cloud DNS managed zone) with one
    /// atomic compare-and-swap change.
    SwitchDns(switch_dns::SwitchDns) = "switch-dns" + ready,
    /// Wait until the zone's change is in effect (INSYNC, `done`) and read
    /// the records back.
    VerifyDns(verify_dns::VerifyDns) = "verify-dns",
    /// A data-plane switch: write each region's control, every traffic
    /// kind's (no DNS API call).
    SwitchControl(switch_control::SwitchControl) = "switch-control" + ready,
    /// Resolve every data-plane record (any traffic kind's) until it
    /// answers the target N times in a row.
    VerifyResolution(verify_resolution::VerifyResolution) = "verify-resolution",
    /// Read a bucket's replication state in the target region.
    VerifyBucket(bucket::VerifyBucket) = "verify-bucket" + ready,
    /// A drill: a copy of a data resource's data, made writable through
    /// its kind's data role (a temporary RDS replica, promoted; a clone of
    /// an Aurora secondary with a writer; a Cloud SQL clone of the primary
    /// at its latest recovery time); deleted at cleanup.
    DrillCopy(drill_copy::DrillCopy) = "drill-copy" + drilled,
    /// A drill: the standby group of such a resource raised to its active
    /// size, marked and journaled first (returned at cleanup).
    DrillRaise(drill_raise::DrillRaise) = "drill-raise" + drilled,
    /// A drill: drill records made in one change of a zone (any
    /// records-mode traffic kind's), in effect and read back (deleted at
    /// cleanup).
    DrillDns(drill_dns::DrillDns) = "drill-dns" + drilled,
    /// A drill of a data-plane switch: drill controls, health checks and
    /// failover records, switched to the target and resolved.
    DrillControl(drill_control::DrillControl) = "drill-control" + drilled,
    /// Capture before/after state, the journal and a manifest.
    Evidence(evidence::Evidence) = "evidence",
    /// Follow Cloud SQL's side of the move on the old primary (its
    /// `RECONFIGURE_OLD_PRIMARY` or `SWITCHOVER_TO_REPLICA`), beside the
    /// recovery; pending, not failed, when its region does not answer.
    /// Last in compile order: among the verify steps it is scheduled after
    /// the ones that end the RTO, however few slots the run has.
    SettleSql(settle_sql::SettleSql) = "settle-sql",
    ;
retired:
    /// An Auto Scaling group set to its active capacity (now `raise`).
    Scale = "scale" => capacity::GENERIC,
    /// A drill's raise of a standby Auto Scaling group (now `drill-raise`).
    DrillScale = "drill-scale" => capacity::GENERIC,
    /// A Cloud Run service's floor raised (now `raise`).
    ScaleRun = "scale-run" => capacity::GENERIC,
    /// A drill's raise of a standby Cloud Run service (now `drill-raise`).
    DrillRun = "drill-run" => capacity::GENERIC,
    /// An EKS managed node group set to its active size (now `raise`).
    ScaleNodes = "scale-nodes" => capacity::GENERIC,
    /// A drill's raise of a standby EKS node group (now `drill-raise`).
    DrillNodes = "drill-nodes" => capacity::GENERIC,
    /// A regional managed instance group raised (now `raise`).
    ScaleMig = "scale-mig" => capacity::GENERIC,
    /// A drill's raise of a standby managed instance group (`drill-raise`).
    DrillMig = "drill-mig" => capacity::GENERIC,
    /// A Cloud SQL instance restored as a clone (now `restore`).
    RestoreSql = "restore-sql" => restore::TRAITS,
    /// A Cloud SQL replica made the primary (now `promote`).
    PromoteSql = "promote-sql" => promote::RETIRED_SQL,
    /// An Aurora global database's writer moved (now `promote`).
    SwitchGlobal = "switch-global" => promote::RETIRED_GLOBAL,
    /// A drill's temporary RDS replica, promoted (now `drill-copy`).
    DrillDatabase = "drill-database" => drill_copy::RETIRED_RDS,
    /// A drill's clone of an Aurora secondary (now `drill-copy`).
    DrillGlobal = "drill-global" => drill_copy::RETIRED_GLOBAL,
    /// A drill's clone of the Cloud SQL primary (now `drill-copy`).
    DrillSql = "drill-sql" => drill_copy::RETIRED_SQL,
    /// An Aurora global database protected again (now `reprotect`).
    RebuildGlobal = "rebuild-global" => reprotect::TRAITS,
    /// A Cloud SQL pair protected again (now `reprotect`).
    ReprotectSql = "reprotect-sql" => reprotect::TRAITS,
    /// Cloud DNS's data-plane records resolved (now `verify-resolution`).
    VerifyCloudResolution = "verify-cloud-resolution" => verify_resolution::RETIRED_CLOUD,
    /// Cloud DNS's data-plane controls written (now `switch-control`).
    SwitchCloudControl = "switch-cloud-control" => switch_control::RETIRED_CLOUD,
    /// A Cloud DNS record set switched and its change waited for (now
    /// `switch-dns` and `verify-dns`).
    SwitchCloudDns = "switch-cloud-dns" => switch_dns::RETIRED_CLOUD,
    /// A drill's Cloud DNS record set (now `drill-dns`).
    DrillCloudDns = "drill-cloud-dns" => drill_dns::RETIRED_CLOUD,
}

impl StepKind {
    /// What the step costs in time and API calls: its kind's, or for a
    /// generic capacity, promote, restore, drill copy or reprotect step, its resource kind's
    /// role's calls (a resolution check's, its records' kinds' wait).
    pub fn time(&self) -> Cost {
        match self {
            StepKind::Raise(r) => capacity::cost_of(r.of),
            StepKind::DrillRaise(d) => capacity::cost_of(d.of),
            StepKind::Restore(r) => restore::cost_of(r.of),
            StepKind::Promote(p) => promote::cost_of(p.of),
            StepKind::DrillCopy(d) => drill_copy::cost_of(d.of),
            StepKind::Reprotect(r) => reprotect::cost_of(r.of),
            StepKind::VerifyResolution(v) => v.cost(),
            StepKind::SwitchControl(c) => c.cost(),
            StepKind::SwitchDns(c) => c.cost(),
            StepKind::VerifyDns(v) => v.cost(),
            StepKind::DrillDns(d) => d.cost(),
            other => other.name().traits().time,
        }
    }
}

impl fmt::Display for KindName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KindName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        (KindName::ALL.iter().chain(KindName::RETIRED))
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown step kind `{s}`"))
    }
}

/// A step's id: `<plan>/<kind>` or `<plan>/<kind>:<subject>`. Stable across
/// runs and versions: journals name steps by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId {
    /// Plan name.
    pub plan: String,
    /// Kind.
    pub kind: KindName,
    /// What the step acts on within its kind (resource, zone...), when a
    /// plan can have more than one step of the kind.
    pub subject: Option<String>,
}

impl StepId {
    /// Builds an id.
    pub fn new(plan: &str, kind: KindName, subject: Option<String>) -> Self {
        Self {
            plan: plan.to_string(),
            kind,
            subject,
        }
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.plan, self.kind)?;
        if let Some(s) = &self.subject {
            write!(f, ":{s}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for StepId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (plan, rest) = s
            .split_once('/')
            .ok_or_else(|| format!("step id `{s}` has no plan (`plan/kind:subject`)"))?;
        let (kind, subject) = match rest.split_once(':') {
            Some((k, sub)) => (k, Some(sub.to_string())),
            None => (rest, None),
        };
        Ok(Self {
            plan: plan.to_string(),
            kind: kind.parse().map_err(|e| format!("step id `{s}`: {e}"))?,
            subject,
        })
    }
}

impl From<&StepId> for crate::journal::StepName {
    fn from(id: &StepId) -> Self {
        Self::from_parts(&id.plan, id.kind.as_str(), id.subject.as_deref())
    }
}

impl TryFrom<&crate::journal::StepName> for StepId {
    type Error = String;
    /// A journaled step name as an id: fails on a kind this drctl does not know.
    fn try_from(n: &crate::journal::StepName) -> Result<Self, String> {
        Ok(Self {
            plan: n.plan().to_string(),
            kind: n
                .kind()
                .parse()
                .map_err(|e| format!("step id `{n}`: {e}"))?,
            subject: n.subject().map(str::to_string),
        })
    }
}

impl Serialize for StepId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for StepId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One thing a step checks before a run changes anything (preflight).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What was checked (`database payments-db-use1`, `check orders-health`).
    pub resource: String,
    /// Where.
    pub region: String,
    /// What was found.
    pub state: String,
    /// Why it blocks a run, when it does.
    pub problem: Option<String>,
    /// What the read found, for the step to reuse while fresh (see
    /// [`Cx::preflight_facts`]); `null` when nothing is worth keeping.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub facts: Value,
    /// What it says could not be known, and blocks nothing: a read beside
    /// the recovery path that did not answer (`status`'s matrix marks it
    /// unknown, never ok).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
    /// How to mend what blocks, when the kind knows (a command to run, the
    /// plan key to fix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A finding of what could not be read, which blocks nothing (said as
    /// unknown, never as ok).
    pub fn unknown(resource: impl Into<String>, region: &str, state: impl Into<String>) -> Self {
        Self {
            unknown: true,
            ..Self::ok(resource, region, state)
        }
    }

    /// A finding that does not block.
    pub fn ok(resource: impl Into<String>, region: &str, state: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            region: region.to_string(),
            state: state.into(),
            problem: None,
            facts: Value::Null,
            unknown: false,
            fix: None,
        }
    }

    /// The same finding, saying how to mend what blocks.
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The same finding, carrying what the read found (read back by type
    /// with [`Cx::preflight_facts`]).
    pub fn with_facts(mut self, facts: &impl Serialize) -> Self {
        self.facts = serde_json::to_value(facts).unwrap_or(Value::Null);
        self
    }

    /// A finding that blocks, saying why.
    pub fn blocks(
        resource: impl Into<String>,
        region: &str,
        state: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            problem: Some(problem.into()),
            ..Self::ok(resource, region, state)
        }
    }

    /// A resource that does not exist where the run needs it.
    pub fn missing(resource: impl Into<String>, region: &str) -> Self {
        Self::blocks(resource, region, "missing", "does not exist")
    }

    /// A finding from a read that failed.
    pub fn unreadable(resource: impl Into<String>, region: &str, e: &CloudError) -> Self {
        Self::blocks(resource, region, "could not be read", e.message.clone())
    }
}

/// What a step may look at.
pub struct Cx<'a> {
    /// Cloud adapters.
    pub clouds: &'a Clouds,
    /// The plan the step belongs to.
    pub plan: &'a Plan,
    /// Target region.
    pub target: &'a str,
    /// Run id.
    pub run_id: &'a str,
    /// Outputs of finished steps, by step id.
    pub outputs: &'a BTreeMap<String, Value>,
    /// Give up waiting at this instant.
    pub deadline: Instant,
    /// Polling interval bounds while waiting.
    pub poll: (Duration, Duration),
    /// Journal store (the evidence step copies the journal).
    pub journal: Arc<dyn JournalStore>,
    /// The window replica lag is read over.
    pub lag_window: Duration,
    /// Told what the step waits for, when it starts waiting (the live view).
    pub waiting: Tell<'a>,
    /// What the run's other regions looked like, read beside the run (see
    /// [`crate::steps::side`]); `None` in a dry run.
    pub side: Option<SideReads>,
    /// Every step of this plan's graph (preflight asks each of them).
    pub graph: &'a [Step],
    /// What the RPO gate of this plan read at the start of the run (its
    /// journaled detail), when it ran.
    pub rpo_readings: Option<&'a crate::journal::RpoDetail>,
    /// What the protections gate of this plan read of its zones, when it
    /// ran (preflight uses it rather than reading again).
    pub zones_read: Option<&'a crate::plan::kinds::traffic::ZonesRead>,
    /// This attempt of the step, from 1. Earlier reads stand in for the
    /// step's own only on its first attempt: a step that ran before may
    /// have changed what they read.
    pub attempt: u32,
    /// A drill's expiry: after it, a sweep may remove what the drill made
    /// (`None` outside drills: [`Cx::expires`] then gives a day from now).
    pub drill_expires: Option<chrono::DateTime<chrono::Utc>>,
    /// Renders the run's report as it stands, for its evidence pack (the
    /// engine hands the report module's renderer down; `None`: the pack
    /// holds no report).
    pub render_report: Option<RenderReport>,
    /// The run's leases, as its journal asks them before each append (the
    /// engine hands the journal's fence down): [`Cx::fenced`] asks it again
    /// right before each cloud write. `None`: nothing to fence (local state
    /// without leases, `status`, unit tests).
    pub fence: Option<Arc<dyn crate::journal::Fence>>,
    /// The run's Route 53 queues, one per hosted zone, shared by every
    /// plan's switch ([`crate::cloud::dns_batch::Coalescer`]); `None`: each switch sends
    /// its own batches (`status`, unit tests).
    pub zone_batches: Option<Arc<crate::cloud::dns_batch::Coalescer>>,
    /// Where the step journals a drill resource it can name only after a
    /// read (a node group's size before the drill), before it changes it
    /// ([`Cx::journal_temp`]); the executor hands each step its own. `None`:
    /// no journal (`status`, a dry run, unit tests).
    pub temps: Option<Arc<dyn TempJournal>>,
    /// Bound on one read of a control plane that is not on the recovery
    /// path (Route 53's API, read to check the data-plane setup): a run
    /// keeps it short ([`dns_setup::SETUP_TIMEOUT`]); `status` hands down
    /// its `--read-timeout`, so a slow but living API is read, not called
    /// unreachable.
    pub control_read_timeout: Duration,
}

/// Journals a drill's temporary resource for one step while the step runs.
///
/// Most drill kinds name what they create from the run id alone
/// ([`Action::creates`]: journaled by the engine before the step starts).
/// A resource changed in place whose restore point is only known from a
/// read (an EKS node group, which carries no restore tag) is journaled by
/// its step through this, after the read and before the change: the
/// executor appends it as the step's `drill_resource` record and answers
/// once the record is written.
#[async_trait]
pub trait TempJournal: Send + Sync {
    /// Appends `temp` as the step's `drill_resource` record; `Err` (why):
    /// it is not written, and the step must change nothing.
    async fn journal(&self, temp: crate::journal::Temp) -> Result<(), String>;
}

/// Renders a run's report as it stands from the plan, the run id and the
/// journal's text: the report's JSON. A function handed to the evidence step
/// through [`Cx`], so that no step depends on the report module above it.
pub type RenderReport = fn(&Plan, &str, String) -> String;

/// How long a read made earlier in the same run (by preflight, or by the
/// RPO gate) stands in for a step's own read before it acts. A step that
/// runs later than this (a slow run, a resume) reads again; a step that
/// acts on a state that changed within it fails on the provider's own check
/// and is re-run, reading first.
pub const FRESH: Duration = Duration::from_secs(10);

impl Cx<'_> {
    /// Where a record's setup is read for this run
    /// ([`crate::plan::kinds::traffic::Resolving::setup`]): its clouds,
    /// plan and target, each call under the run's read bound, the plan's
    /// reads shared through `reads`.
    pub fn setup_at<'s>(
        &'s self,
        reads: &'s crate::plan::kinds::traffic::SetupReads,
    ) -> crate::plan::kinds::traffic::SetupAt<'s> {
        crate::plan::kinds::traffic::SetupAt {
            clouds: self.clouds,
            plan: self.plan,
            target: self.target,
            limit: self.control_read_timeout,
            reads,
        }
    }

    /// Confirms with the state store, right before a cloud write, that this
    /// run still holds its plan's lease; returns the plan's fencing token
    /// (`None`: no leases, nothing to fence), which conditional writes (a
    /// data-plane control) can carry. A lease lost, taken over or past its
    /// deadline refuses with [`StepFailure::Fenced`]: the step stops before
    /// `what` (in `region`) and changes nothing, and the engine ends the run
    /// as it does when the journal refuses an append. Reads are not fenced.
    ///
    /// A pause *between* this check and the call it guards is caught at the
    /// wire: the executor runs every step inside its plan's
    /// [`crate::cloud::wire::WireFence`], asked again right before each
    /// transmission attempt (docs/state.md says what window remains).
    pub async fn fenced(&self, what: &str, region: &str) -> Result<Option<u64>, StepFailure> {
        let Some(fence) = &self.fence else {
            return Ok(None);
        };
        let plan = self.plan.name();
        match fence.check(Some(plan)).await {
            Ok(tokens) => Ok(tokens.get(plan).copied()),
            Err(detail) => Err(StepFailure::Fenced {
                what: what.to_string(),
                region: region.to_string(),
                detail,
            }),
        }
    }

    /// Journals `temp` (this step's drill resource, named after a read:
    /// see [`TempJournal`]) and returns once it is written. A step calls it
    /// right before the change that `temp` records how to undo; without a
    /// journal (or when the append fails) it refuses, and the step must
    /// change nothing.
    pub async fn journal_temp(
        &self,
        temp: crate::journal::Temp,
        resource: &str,
        region: &str,
    ) -> Result<(), StepFailure> {
        let why = match &self.temps {
            Some(j) => match j.journal(temp).await {
                Ok(()) => return Ok(()),
                Err(why) => why,
            },
            None => "this run has no journal to keep it in".to_string(),
        };
        Err(StepFailure::state(
            format!("the restore point of {resource} in {region} could not be journaled: {why}"),
            "nothing was changed; run the drill again (`drctl drill`)",
            resource,
            region,
        ))
    }

    /// When what a drill creates expires (tagged on it for a sweep).
    pub fn expires(&self) -> chrono::DateTime<chrono::Utc> {
        self.drill_expires
            .unwrap_or_else(|| chrono::Utc::now() + chrono::Duration::days(1))
    }

    /// What preflight found of `resource` (as its finding names it) in this
    /// run, as the type the finding's kind stored, when that read is fresh
    /// (see [`FRESH`]).
    pub fn preflight_facts<F: DeserializeOwned>(&self, resource: &str) -> Option<F> {
        if self.attempt != 1 {
            return None;
        }
        let out: PreflightOutput = self.output_of(None)?;
        if (chrono::Utc::now() - out.read_at).to_std().ok()? > FRESH {
            return None;
        }
        let found = out.checked.into_iter().find(|f| f.resource == resource)?;
        if found.facts.is_null() {
            return None;
        }
        serde_json::from_value(found.facts).ok()
    }

    /// The outputs of this plan's step of `O`'s kind on `subject` (`None`:
    /// the kind's one step), once it succeeded, read as the kind declared them.
    pub fn output_of<O: StepOutput>(&self, subject: Option<&str>) -> Option<O> {
        let id = StepId::new(self.plan.name(), O::KIND, subject.map(str::to_string));
        O::read(self.outputs.get(&id.to_string())?)
    }
}

/// What preflight found (the `preflight` step's output): every step's
/// findings, and when they were read (steps reuse a fresh read, see
/// [`Cx::preflight_facts`]; the evidence pack's "before").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreflightOutput {
    /// Every finding, none of them blocking.
    pub checked: Vec<Finding>,
    /// When the reads began.
    pub read_at: chrono::DateTime<chrono::Utc>,
    /// What people should know of the copies of data in the target before
    /// the run moves to them (the maintenance the provider will apply to
    /// one): never a reason to stop, carried to the run's warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl StepOutput for PreflightOutput {
    const KIND: KindName = KindName::Preflight;
}

/// What a kind's step publishes when it succeeds: journaled as JSON, read
/// back by later steps, measurement and the CLI as this type, never by key.
/// The outputs later steps and measurement read are `#[serde(default)]`
/// as a whole: a journal written before a field existed (or a test's
/// fixture journal, which keeps only what is measured) still reads, and
/// what it lacks reads as absent, as it did when read by key.
pub trait StepOutput: Serialize + DeserializeOwned {
    /// The kind that publishes it.
    const KIND: KindName;

    /// Reads journaled outputs (`None`: not this kind's outputs).
    fn read(outputs: &Value) -> Option<Self> {
        Self::deserialize(outputs).ok()
    }

    /// The JSON the engine journals.
    fn to_output(&self) -> Result<Value, StepFailure> {
        serde_json::to_value(self).map_err(|e| {
            StepFailure::state(
                format!("cannot encode the outputs of a {} step: {e}", Self::KIND),
                "this is a bug in drctl; report it",
                Self::KIND.as_str(),
                "-",
            )
        })
    }
}

/// A replica lag read right before a promotion (the RPO achieved), as the
/// promoting kinds journal it. Every field reads as absent from journals
/// that lack it (a reader then finds no lag).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LagAtPromotion {
    /// The latest lag, else the window's maximum (`null`: neither read).
    pub lag_seconds: Option<f64>,
    /// The window's maximum.
    pub lag_max_seconds: Option<f64>,
    /// When it was read (always written).
    pub lag_read_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl LagAtPromotion {
    /// The lag a replica's `ReplicaLag` reading says, read now.
    pub fn read_now(r: &crate::cloud::LagReading) -> Self {
        Self {
            lag_seconds: r
                .latest
                .map(|(d, _)| d.as_secs_f64())
                .or(r.max.map(|d| d.as_secs_f64())),
            lag_max_seconds: r.max.map(|d| d.as_secs_f64()),
            lag_read_at: Some(chrono::Utc::now()),
        }
    }
}

/// What a step that ends the RTO clock (DNS in effect, read back) says of
/// when its records were in sync: the Route 53 and resolution kinds with
/// [`Traits::ends_rto`] publish `in_sync_at` in their outputs (a step
/// without it ends the clock when it ends).
#[derive(Debug, Clone, Deserialize)]
pub struct InSync {
    /// When the change was seen INSYNC.
    pub in_sync_at: chrono::DateTime<chrono::Utc>,
}

impl InSync {
    /// When the step's records were in sync, from its journaled outputs.
    pub fn of(outputs: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
        Self::deserialize(outputs).ok().map(|s| s.in_sync_at)
    }
}

/// Reads of the regions a run moves away from, made once and bounded, beside
/// the run: a JSON object per plan name. Shared, so that any step can await
/// it without making the reads twice.
pub type SideReads = futures::future::Shared<futures::future::BoxFuture<'static, Value>>;

/// What a step's journaled outputs say people must know: an evidence
/// step's destinations that did not take its pack, one sentence each, and
/// what the step's kind warns of ([`Traits::warnings`]).
pub fn step_warnings(step: &str, outputs: &Value) -> Vec<String> {
    let mut out = evidence::Evidence::gaps(step, outputs);
    let kind = step.parse::<StepId>().ok().map(|id| id.kind);
    if let Some(read) = kind.and_then(|k| k.traits().warnings) {
        out.extend(read(outputs));
    }
    out
}

/// One API call a step would make, and the state it would change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Planned {
    /// `service:Operation`, e.g. `rds:PromoteReadReplica`; empty when nothing is to be done.
    pub call: String,
    /// Resource.
    pub resource: String,
    /// Region (`global` for Route 53).
    pub region: String,
    /// Current state, as read now.
    pub current: String,
    /// Desired state.
    pub desired: String,
    /// Whether a change is needed (false: already in the desired state).
    pub change: bool,
}

/// A step's behaviour. Every method but [`Action::settled`] and
/// [`Action::creates`] is written by each kind: what it checks, shows and
/// does is never left to a default.
#[async_trait]
pub trait Action: Send + Sync {
    /// What the step checks before the run changes anything (target side
    /// only: the home region may be down). A finding with a problem stops
    /// the run at preflight.
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding>;
    /// Reads state and describes what `run` would do, without changing anything.
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure>;
    /// Brings the world to the step's desired state; returns outputs to journal.
    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure>;
    /// Whether the journaled outputs of a run of this step leave nothing to
    /// do. A step that succeeded unsettled (evidence some destination did not
    /// take, an old primary's side still under way) ends the run with the
    /// outcome [`Settled::outcome`] names, and a resume runs it again.
    fn settled(&self, outputs: &Value) -> Settled {
        let _ = outputs;
        Settled::Yes
    }
    /// The temporary resources a run of this step may create (drill kinds
    /// only; see [`crate::steps::drill_names`]), named from the run id alone so that the
    /// engine journals them *before* the step acts. A kind that can name
    /// one only after a read (its restore point) journals it itself with
    /// [`Cx::journal_temp`], before it changes it.
    fn creates(&self, run_id: &str) -> Vec<crate::journal::Temp> {
        let _ = run_id;
        Vec::new()
    }
}

/// An endpoint's host name and its port, when the provider says one.
pub type Endpoint = (String, Option<i32>);

/// What a read of a database found of its endpoint: its host name, when
/// it has one yet, and its port.
pub type Described = (Option<String>, Option<i32>);

/// The roles a step kind is marked with in the `kinds!` list.
struct Roles<'a> {
    drilled: Option<&'a dyn leftovers::Drilled>,
    writes: Option<&'a dyn Writes>,
    ready: Option<&'a dyn Ready>,
}

/// A step kind whose readiness `status` reads from the step itself:
/// its resources are none `status` reads in detail (as it reads
/// databases, capacity and DNS records, judged by a pure
/// `standby_problems` rule instead: [`promote_standby_problems`], [`Restore`],
/// [`capacity::standby_problems`]). Marked `+ ready` in the list.
#[async_trait]
pub trait Ready: Send + Sync {
    /// What `status` shows of this step for a standby region (bounded by
    /// the caller; may read other regions, unlike preflight).
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding>;
}

/// A step kind that makes a database the writer (promote, switch a
/// global database, restore): the data role's move whose result later
/// steps act on. Marked `+ writes` in the `kinds!` list, so the compiler
/// asks for it.
#[async_trait]
pub trait Writes: Send + Sync {
    /// The endpoint of the database this step made the writer, read from
    /// the cloud now, for a resume: later steps (a record that `follows`
    /// it) act on this, never on the journal's value, which a writer of
    /// the state could have edited (`engine::resume`). The names are the
    /// plan's (and the run id's), never the journal's. (A drill's copy is
    /// none: a drill is cleaned up on resume, not continued.)
    async fn endpoint_now(&self, clouds: &Clouds, run_id: &str) -> EndpointNow;
}

/// A writer's endpoint as the cloud says it now ([`Writes::endpoint_now`]).
#[derive(Debug)]
pub struct EndpointNow {
    /// What was read, for messages (`orders-use1 (us-east-1)`).
    pub subject: String,
    /// Its endpoint and port; `Ok(None)`: it has none now.
    pub read: Result<Option<Endpoint>, CloudError>,
}

impl EndpointNow {
    /// The endpoint of `id` in `region`, from a read that gave `read`
    /// (the endpoint and port of what it found, `None` when not found).
    pub fn of(id: &str, region: &str, read: Result<Option<Described>, CloudError>) -> Self {
        Self {
            subject: format!("{id} ({region})"),
            read: read.map(|found| found.and_then(|(ep, port)| Some((ep?, port)))),
        }
    }
}

/// What every step of a failover of `plan` to `region` says of its
/// readiness ([`Ready::readiness`]: the kinds marked `+ ready`), for `status`.
pub async fn readiness(
    clouds: &Clouds,
    plan: &Plan,
    region: &str,
    control_read_timeout: Duration,
) -> Vec<Finding> {
    let Ok(g) = crate::steps::graph::compile(plan, region) else {
        return Vec::new();
    };
    let outputs = BTreeMap::new();
    let cx = Cx {
        clouds,
        plan,
        target: region,
        run_id: "status",
        outputs: &outputs,
        deadline: Instant::now() + Duration::from_secs(30),
        poll: (Duration::from_millis(200), Duration::from_secs(2)),
        journal: Arc::new(crate::journal::MemoryStore::new()),
        lag_window: Duration::from_secs(15 * 60),
        waiting: None,
        side: None,
        graph: &g.steps,
        rpo_readings: None,
        zones_read: None,
        attempt: 1,
        drill_expires: None,
        render_report: None,
        fence: None,
        zone_batches: None,
        temps: None,
        control_read_timeout,
    };
    futures::future::join_all(
        (g.steps.iter().filter_map(|s| s.kind.ready())).map(|r| r.readiness(&cx)),
    )
    .await
    .into_iter()
    .flatten()
    .collect()
}

/// Whether a succeeded step's journaled outputs leave something to do
/// (see [`Action::settled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Nothing left.
    Yes,
    /// Evidence some destination did not take.
    EvidenceMissing,
    /// What a cloud finishes on the old side after the move, still under
    /// way (its region did not answer).
    Pending,
}

impl Settled {
    /// The outcome a run ends with when a step is left so: the evidence's
    /// first (what an auditor needs), then what is pending.
    pub fn outcome(all: impl IntoIterator<Item = Settled>) -> Option<crate::journal::Outcome> {
        use crate::journal::Outcome;
        let all: Vec<Settled> = all.into_iter().collect();
        if all.contains(&Settled::EvidenceMissing) {
            Some(Outcome::EvidenceIncomplete)
        } else if all.contains(&Settled::Pending) {
            Some(Outcome::Pending)
        } else {
            None
        }
    }
}

/// Whether `step`'s journaled outputs leave something to do (see
/// [`Action::settled`]).
pub fn settled(step: &Step, outputs: &Value) -> Settled {
    step.kind.action().settled(outputs)
}

/// Polls `probe` with growing intervals until it yields `Some`, or the
/// deadline passes (then [`StepFailure::Timeout`] naming `what`). The first
/// look before the deadline that finds nothing tells the run's progress
/// line what it waits for.
pub async fn wait_for<T, F, Fut>(cx: &Cx<'_>, what: &str, probe: F) -> Result<T, StepFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, StepFailure>>,
{
    until_some((what, cx.waiting), cx.poll, cx.deadline, probe).await
}

/// What waits are told to, with what they wait for: the run's live view.
pub type Tell<'a> = Option<&'a (dyn Fn(&str) + Send + Sync)>;

/// [`wait_for`] with its parts given: `waiting` told (or none, for a
/// cleanup outside a run), polling within `poll` until `deadline`.
pub(crate) async fn until_some<T, F, Fut>(
    (what, waiting): (&str, Tell<'_>),
    poll: (Duration, Duration),
    deadline: Instant,
    probe: F,
) -> Result<T, StepFailure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, StepFailure>>,
{
    let started = tokio::time::Instant::now();
    let answer = poll_telling((what, waiting), poll, deadline, probe).await?;
    answer.ok_or_else(|| StepFailure::Timeout {
        what: what.to_string(),
        waited: started.elapsed(),
    })
}

/// Polls `probe` with growing intervals within `poll` until it yields
/// `Some`, or `until` passes (`None`). The first look before `until` that
/// finds nothing tells `waiting` what it waits for, once.
pub(crate) async fn poll_telling<T, E, F, Fut>(
    (what, waiting): (&str, Tell<'_>),
    poll: (Duration, Duration),
    until: Instant,
    mut probe: F,
) -> Result<Option<T>, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    let told = std::sync::atomic::AtomicBool::new(false);
    crate::cloud::retry::poll_until(what, poll, until, || {
        let look = probe();
        let told = &told;
        async move {
            let answer = look.await?;
            if answer.is_none()
                && Instant::now() < until
                && !told.swap(true, std::sync::atomic::Ordering::Relaxed)
                && let Some(tell) = waiting
            {
                tell(what);
            }
            Ok(answer)
        }
    })
    .await
}
