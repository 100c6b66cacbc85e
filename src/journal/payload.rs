//! Payloads that journal events carry: what a drill created ([`Temp`]) and
//! what an evidence check found ([`PlanCheck`]).
//!
//! They live here, in the floor, because the journal's vocabulary must not
//! depend on the modules that produce it (drills, evidence): every layer
//! above reads and writes these types, none of them owns them.

use serde::{Deserialize, Serialize};

use super::event::CleanupResult;

/// A resource a drill created or changed, to be removed (or restored).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Temp {
    /// A temporary database instance (replica, then promoted): an older
    /// drctl's `drill-database` (now [`Temp::Copy`]).
    Database {
        /// Region.
        region: String,
        /// Instance id.
        id: String,
    },
    /// A drill's copy of an Aurora cluster (a clone of a global database's
    /// secondary) and the writer instance in it, removed together: an
    /// older drctl's `drill-global` (now [`Temp::Copy`]).
    Cluster {
        /// Region.
        region: String,
        /// Cluster id.
        id: String,
    },
    /// A compute group raised to its active capacity; restored from its
    /// restore tag (`drctl:drill-restore`).
    Capacity {
        /// Region.
        region: String,
        /// Group name.
        group: String,
    },
    /// An EKS managed node group an older drctl's `drill-nodes` raised,
    /// with the size to return it to, journaled and never marked on the
    /// node group: still read and cleaned (`steps::drill_raise::
    /// restore_unmarked`); a drill now journals `Raised`.
    NodeCapacity {
        /// Region.
        region: String,
        /// EKS cluster.
        cluster: String,
        /// Managed node group.
        group: String,
        /// Its size before the drill (min/desired/max), to restore.
        restore: crate::cloud::Capacity,
    },
    /// A drill's clone of a Cloud SQL primary (an older drctl's
    /// `drill-sql`; now [`Temp::Copy`]), named from the run and the
    /// standby replica: deleted at cleanup.
    SqlClone {
        /// The region it was cloned in (its source's: Cloud SQL clones stay
        /// in their source's region).
        region: String,
        /// The GCP project.
        project: String,
        /// The clone's instance name.
        name: String,
    },
    /// A regional managed instance group an older drctl's `drill-mig`
    /// raised, with what to return it to, read before it changed anything
    /// (now a [`Temp::Raised`] of kind `instance_group`; still read, and
    /// returned through the capacity role).
    MigSize {
        /// Region.
        region: String,
        /// The GCP project.
        project: String,
        /// The group.
        group: String,
        /// The autoscaler whose minimum was raised, when the group has one
        /// (then `restore` is that minimum, else the group's target size).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        autoscaler: Option<String>,
        /// The size (or autoscaler minimum) before the drill.
        restore: u32,
    },
    /// A Cloud Run service whose revision-level floor a drill of an older
    /// drctl raised (`drill-run`), with the floor to return it to: read
    /// from older journals, left to a person (`cleanup`).
    RunFloor {
        /// Region.
        region: String,
        /// The GCP project.
        project: String,
        /// The service.
        service: String,
        /// Its minimum instances before the drill.
        restore: u32,
    },
    /// A group of a kind the generic capacity steps raise (`drill-raise`:
    /// an ECS service, a Cloud Run service's floor), with the size to return it to, read before the
    /// drill changed anything (and kept in a mark on the group too, so a
    /// sweep finds it without this journal).
    Raised {
        /// Its kind, whose capacity role returns it.
        kind: crate::plan::spec::ResourceKind,
        /// Region.
        region: String,
        /// The group, as its kind names it (`cluster/service`,
        /// `project/service`).
        group: String,
        /// Its size before the drill.
        restore: crate::cloud::Size,
    },
    /// A drill's copy of a data resource (`steps::drill_copy`), made
    /// through its kind's data role: deleted at cleanup. (An older drctl
    /// journaled `Database`, `Cluster` and `SqlClone`: still read.)
    Copy {
        /// The data kind whose role made it.
        kind: crate::plan::spec::ResourceKind,
        /// Its region.
        region: String,
        /// Its address, as its kind addresses copies.
        address: String,
    },
    /// A drill's Cloud DNS record set, as an older drctl's `drill-cloud-dns`
    /// journaled it (now a [`Temp::Record`] of kind `clouddns`), beside
    /// production's in its managed zone.
    CloudRecord {
        /// The GCP project.
        project: String,
        /// The managed zone's name.
        zone: String,
        /// Fully qualified record name.
        name: String,
        /// Record type.
        rtype: String,
    },
    /// A drill's record set in a zone of a records-mode traffic kind
    /// (`drill-dns`: `drill-<short id>.<name>`; `drill-control`'s failover
    /// records), deleted at cleanup through its kind's zone changes. (An
    /// older drctl journaled Route 53's without a kind, read as `dns`, and
    /// Cloud DNS's as `CloudRecord`: still read.)
    Record {
        /// The traffic kind whose zone it is in.
        #[serde(default = "route53", skip_serializing_if = "is_route53")]
        kind: crate::plan::spec::ResourceKind,
        /// The project that holds the zone, where its kind has them.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        project: String,
        /// The zone's name.
        zone: String,
        /// Fully qualified record name.
        name: String,
        /// Record type.
        rtype: String,
    },
    /// A drill's control object (a data-plane switch's drill copy, beside
    /// production's: `<production key>.drill-<short id>`).
    Control {
        /// The region whose endpoint writes (and deletes) it.
        region: String,
        /// The object.
        url: String,
    },
    /// The drill's health check(s) that read a drill control: found again
    /// by the object they read, since Route 53 assigns the id.
    HealthCheck {
        /// The region of the control it reads.
        region: String,
        /// The drill control it reads.
        control: String,
    },
}

impl std::fmt::Display for Temp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Capacity { region, group } => write!(f, "capacity of group {group} ({region})"),
            Self::Raised {
                kind,
                region,
                group,
                restore,
            } => {
                let noun = kind.scaling().map_or(kind.table(), |s| s.about().noun);
                write!(
                    f,
                    "size of {noun} {group} ({region}), to restore to {restore}"
                )
            }
            Self::Copy {
                kind,
                region,
                address,
            } => {
                let noun = kind.drilling().map_or(kind.table(), |d| d.about().noun);
                write!(f, "{noun} {address} ({region})")
            }
            Self::Record {
                kind,
                project,
                zone,
                name,
                rtype,
            } => {
                let at = (kind.zones()).map_or_else(|| zone.clone(), |z| z.subject(project, zone));
                write!(f, "record {name} {rtype} (zone {at})")
            }
            Self::Control { region, url } => write!(f, "control {url} ({region})"),
            Self::HealthCheck { region, control } => {
                write!(f, "health check reading {control} ({region})")
            }
            Self::Database { .. }
            | Self::Cluster { .. }
            | Self::NodeCapacity { .. }
            | Self::SqlClone { .. }
            | Self::MigSize { .. }
            | Self::RunFloor { .. }
            | Self::CloudRecord { .. } => self.fmt_older(f),
        }
    }
}

impl Temp {
    /// The shapes an older drctl journaled, in words (still read, shown
    /// and cleaned up); the current ones are [`Temp`]'s `Display`.
    fn fmt_older(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Database { region, id } => write!(f, "database {id} ({region})"),
            Self::Cluster { region, id } => write!(f, "cluster {id} ({region})"),
            Self::NodeCapacity {
                region,
                cluster,
                group,
                restore,
            } => write!(
                f,
                "size of node group {cluster}/{group} ({region}), to restore to {restore}"
            ),
            Self::SqlClone {
                region,
                project,
                name,
            } => write!(f, "Cloud SQL instance {project}/{name} ({region})"),
            Self::MigSize {
                region,
                group,
                autoscaler,
                restore,
                ..
            } => match autoscaler {
                Some(a) => write!(
                    f,
                    "minimum of autoscaler {a} of group {group} ({region}), to restore to {restore}"
                ),
                None => write!(
                    f,
                    "size of instance group {group} ({region}), to restore to {restore}"
                ),
            },
            Self::RunFloor {
                region,
                service,
                restore,
                ..
            } => write!(
                f,
                "min instances of Cloud Run service {service} ({region}), to restore to {restore}"
            ),
            Self::CloudRecord {
                project,
                zone,
                name,
                rtype,
            } => write!(f, "Cloud DNS record {name} {rtype} (zone {project}/{zone})"),
            // The current shapes are `Display`'s, which sends none here.
            other => write!(f, "{other:?}"),
        }
    }
}

/// The kind of a drill record an older drctl journaled without one.
fn route53() -> crate::plan::spec::ResourceKind {
    crate::plan::spec::ResourceKind::Dns
}

/// Whether a drill record is Route 53's (then its kind is not written, as
/// an older drctl wrote it).
fn is_route53(kind: &crate::plan::spec::ResourceKind) -> bool {
    *kind == crate::plan::spec::ResourceKind::Dns
}

impl Temp {
    /// Whether removing it only removes what the drill made (never a
    /// resource a real failover may now own): a preempted drill removes
    /// only these.
    pub fn drill_only(&self) -> bool {
        !matches!(
            self,
            Self::Capacity { .. }
                | Self::NodeCapacity { .. }
                | Self::MigSize { .. }
                | Self::RunFloor { .. }
                | Self::Raised { .. }
        )
    }

    /// The group it raised, when it is a raised group: its region and its
    /// name as the capacity role names it (`cluster/nodegroup` for a node
    /// group, `project/group` for a managed instance group; an older Cloud
    /// Run floor by its service alone), whatever the restore point (two
    /// records of one group are one group).
    pub fn raised_group(&self) -> Option<(&str, String)> {
        match self {
            Self::Capacity { region, group } => Some((region, group.clone())),
            Self::NodeCapacity {
                region,
                cluster,
                group,
                ..
            } => Some((region, format!("{cluster}/{group}"))),
            Self::MigSize {
                region,
                project,
                group,
                ..
            } => Some((region, format!("{project}/{group}"))),
            // The service alone, never the role's `project/service`: an
            // older `drill-run` raised the revision-level floor, which no
            // cleanup of this drctl returns (`cleanup::run_floor_left`), so
            // a name that matched would refuse every later drill of the
            // service and fail every sweep.
            Self::RunFloor {
                region, service, ..
            } => Some((region, service.clone())),
            Self::Raised { region, group, .. } => Some((region, group.clone())),
            _ => None,
        }
    }

    /// The drill copy it names, as its kind's data role addresses it:
    /// the kind, the region and the address (an older drctl's
    /// `Database`, `Cluster` and `SqlClone` included).
    pub fn copy(&self) -> Option<(crate::plan::spec::ResourceKind, &str, String)> {
        use crate::plan::spec::ResourceKind as K;
        match self {
            Self::Copy {
                kind,
                region,
                address,
            } => Some((*kind, region, address.clone())),
            Self::Database { region, id } => Some((K::Database, region, id.clone())),
            Self::Cluster { region, id } => Some((K::GlobalDatabase, region, id.clone())),
            Self::SqlClone {
                region,
                project,
                name,
            } => Some((K::CloudSql, region, format!("{project}/{name}"))),
            _ => None,
        }
    }

    /// The drill record it names, as its kind's zone changes address it:
    /// the kind, the zone's project (empty where there is none), the zone,
    /// the name and the type (an older drctl's `Record` without a kind and
    /// `CloudRecord` included).
    pub fn drill_record(
        &self,
    ) -> Option<(crate::plan::spec::ResourceKind, &str, &str, &str, &str)> {
        use crate::plan::spec::ResourceKind as K;
        match self {
            Self::Record {
                kind,
                project,
                zone,
                name,
                rtype,
            } => Some((*kind, project, zone, name, rtype)),
            Self::CloudRecord {
                project,
                zone,
                name,
                rtype,
            } => Some((K::CloudDns, project, zone, name, rtype)),
            _ => None,
        }
    }

    /// Where it comes in cleanup's order: records first (they follow health
    /// checks and point at databases), then health checks (Route 53 refuses
    /// to delete one a record uses), controls, databases (instances and
    /// Aurora clusters), capacity.
    pub fn removal_rank(&self) -> u8 {
        match self {
            Self::Record { .. } | Self::CloudRecord { .. } => 0,
            Self::HealthCheck { .. } => 1,
            Self::Control { .. } => 2,
            Self::Database { .. }
            | Self::Cluster { .. }
            | Self::SqlClone { .. }
            | Self::Copy { .. } => 3,
            Self::Capacity { .. }
            | Self::NodeCapacity { .. }
            | Self::MigSize { .. }
            | Self::RunFloor { .. }
            | Self::Raised { .. } => 4,
        }
    }
}

/// One thing wrong with a pack, naming the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The object (or destination) concerned.
    pub object: String,
    /// What is wrong.
    pub problem: String,
    /// What kind of wrong: an auditor must not read a store that could
    /// not be read as tampering, nor the reverse. Absent: a claim (and in
    /// records written before kinds were kept, whatever `problem` says).
    #[serde(default, skip_serializing_if = "ProblemKind::is_claim")]
    pub kind: ProblemKind,
}

/// What kind of problem a pack has ([`Problem::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// It reads, and its bytes are not those recorded: altered or replaced.
    Altered,
    /// The store answered, but the object could not be read (its body
    /// broke off, or failed the store's own checksum): nothing is known of
    /// its bytes, neither whole nor altered. Read it again, or with another
    /// client, before concluding anything.
    Unreadable,
    /// It is not there (or was never stored).
    Missing,
    /// Anything else the pack claims that does not hold: where it is
    /// pinned, whose run it is, its signature, its retention.
    #[default]
    Claim,
}

impl ProblemKind {
    /// Whether it is [`ProblemKind::Claim`], which records leave unsaid.
    pub fn is_claim(&self) -> bool {
        *self == Self::Claim
    }
}

/// Whether every one of `problems` is an object that could not be read,
/// which says nothing of its bytes: the one rule every reader of a
/// verification (its findings, its notification, the report's pages)
/// goes by before it calls evidence altered. `false` when there are none.
pub fn only_unreadable<'a>(problems: impl IntoIterator<Item = &'a Problem>) -> bool {
    let mut kinds = problems.into_iter().map(|p| p.kind).peekable();
    kinds.peek().is_some() && kinds.all(|k| k == ProblemKind::Unreadable)
}

/// One destination's pack, verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationCheck {
    /// The destination.
    pub destination: String,
    /// Objects whose digest matched (the manifest included).
    pub verified: usize,
    /// What is wrong; empty when the pack is whole.
    pub problems: Vec<Problem>,
    /// The run key that signed the manifest (checked when public run keys
    /// are listed; otherwise only what the manifest names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    /// How the store keeps the pack now, as it said when asked (S3 Object
    /// Lock retention of each object), in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
}

/// One plan's evidence of one run, verified (also what an
/// [`crate::journal::Event::EvidenceVerified`] record keeps, so reports can name a pack
/// that no longer matches without reading any cloud).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCheck {
    /// The plan.
    pub plan: String,
    /// Per destination.
    pub destinations: Vec<DestinationCheck>,
}

impl PlanCheck {
    /// Whether every destination's pack is whole.
    pub fn ok(&self) -> bool {
        self.destinations.iter().all(|d| d.problems.is_empty())
    }
}

/// The cleanup of one resource, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleaned {
    /// The resource.
    pub resource: Temp,
    /// What happened.
    pub result: CleanupResult,
    /// What the proof read found, or why it failed.
    pub detail: String,
}

/// The RPO gate's detail, as its `gate` record journals it: typed, so that
/// the gate writes it and measurement, reports and the CLI read it by field,
/// never by string key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RpoDetail {
    /// Nothing is promoted (a shadow drill, a restore): the RPO achieved is
    /// measured instead.
    NotApplicable {
        /// Always `false`.
        applies: bool,
        /// Why it does not apply.
        why: String,
    },
    /// Each promoted database's lag against the tier's RPO.
    Checked {
        /// The tier's RPO (always written; absent only in hand-made records).
        #[serde(default)]
        rpo_seconds: Option<u64>,
        /// `--accept-data-loss`, when given.
        #[serde(default)]
        accept_data_loss_seconds: Option<u64>,
        /// One reading per database the run promotes.
        #[serde(default)]
        databases: Vec<LagReading>,
    },
}

impl RpoDetail {
    /// The detail of an RPO `gate` record (`None`: not an RPO detail).
    pub fn of(detail: &serde_json::Value) -> Option<Self> {
        read(detail).ok()
    }

    /// The databases read (none when the gate does not apply).
    pub fn databases(&self) -> &[LagReading] {
        match self {
            Self::NotApplicable { .. } => &[],
            Self::Checked { databases, .. } => databases,
        }
    }
}

/// One database's replica lag as the RPO gate read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagReading {
    /// The plan's database id.
    pub resource: String,
    /// The replica's instance id in the target region.
    #[serde(default)]
    pub instance: String,
    /// The lag (the maximum over the window), when any datapoint was read.
    #[serde(default)]
    pub lag_seconds: Option<f64>,
    /// The latest datapoint's lag.
    #[serde(default)]
    pub latest_lag_seconds: Option<f64>,
    /// How many datapoints the window held.
    #[serde(default)]
    pub datapoints: u64,
    /// When it was read.
    #[serde(default)]
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
    /// What was read, in words (or why nothing could be).
    #[serde(default)]
    pub reading: String,
    /// Whether the lag is within the RPO (`None`: unknown).
    #[serde(default)]
    pub within_rpo: Option<bool>,
    /// Whether the instance was already a primary (asked only when the lag
    /// alone would refuse).
    #[serde(default)]
    pub already_primary: Option<bool>,
    /// Whether the gate let it through.
    #[serde(default)]
    pub accepted: bool,
    /// The run's move of it is a switchover, which loses no data by design:
    /// passed with its lag not read (`reading` says so).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub switchover: bool,
}

/// The approval gate's detail (and a retroactive approval's), as journaled.
/// Every field is optional because each way of deciding records its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalDetail {
    /// Whether the tier (or a switchover) requires approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    /// Why approval is not required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// An emergency run, approved later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<bool>,
    /// The deadline of a retroactive approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_by: Option<chrono::DateTime<chrono::Utc>>,
    /// Who ran an emergency run (present, perhaps unknown).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub operator: Option<Option<String>>,
    /// Who approved (present, perhaps unknown).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub approved_by: Option<Option<String>>,
    /// The reason given with `--approve` or `runs approve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How it was approved (`--approve`, interactive confirmation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
    /// Whether the operator confirmed on the terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<bool>,
    /// `false` when approval was required and not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<bool>,
    /// Why the operator's identity is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_error: Option<String>,
}

impl ApprovalDetail {
    /// The detail of an approval `gate` record (`None`: not one).
    pub fn of(detail: &serde_json::Value) -> Option<Self> {
        read(detail).ok()
    }

    /// Who approved, when known.
    pub fn approver(&self) -> Option<&str> {
        self.approved_by.as_ref().and_then(|a| a.as_deref())
    }
}

/// Reads a journaled detail as `T`, without copying the JSON.
fn read<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> serde_json::Result<T> {
    T::deserialize(v)
}

/// A field that, when present, is `Some` even if `null`.
fn present<'de, D>(d: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(d).map(Some)
}

/// A lock gate's override detail (a lock taken over), as journaled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockOverride {
    /// Whether `--force-unlock` took it.
    #[serde(default)]
    pub force_unlock: bool,
    /// Whether a failover preempted a drill.
    #[serde(default)]
    pub preempted_drill: bool,
    /// The run that held it.
    #[serde(default)]
    pub previous_holder: PreviousHolder,
    /// Whether that holder was still alive.
    #[serde(default)]
    pub holder_was_live: bool,
    /// `--force-unlock`'s reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// The fencing token taken over, on shared state.
    #[serde(default)]
    pub token: Option<u64>,
}

impl LockOverride {
    /// The detail of a lock `gate` record (`None`: not one).
    pub fn of(detail: &serde_json::Value) -> Option<Self> {
        read(detail).ok()
    }
}

/// The holder a lock was taken from (the fields a reader needs; the
/// journal keeps the whole lock record).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreviousHolder {
    /// Its run.
    #[serde(default)]
    pub run_id: String,
}

/// The flags that shaped a run, as its `run_started` record keeps them:
/// a resume reads its mode, parallelism and step timeout back; reports read
/// a drill's depth and a scheduled run's slot. Typed, so that the engine
/// writes and every reader reads the same fields. Every field has a default
/// so that older (and hand-made) journals still read; the mode has none:
/// a mode that cannot be read is an error, never a failover by default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFlags {
    /// `--parallelism`.
    #[serde(default)]
    pub parallelism: Option<usize>,
    /// Which graph the run executes (`None` only when absent).
    #[serde(default)]
    pub mode: Option<super::event::RunMode>,
    /// `--accept-data-loss`, in seconds.
    #[serde(default)]
    pub accept_data_loss_seconds: Option<u64>,
    /// `--approve`'s reason.
    #[serde(default)]
    pub approve: Option<String>,
    /// `--emergency`.
    #[serde(default)]
    pub emergency: bool,
    /// `--force-unlock`.
    #[serde(default)]
    pub force_unlock: bool,
    /// `--force-unlock`'s reason.
    #[serde(default)]
    pub force_unlock_reason: Option<String>,
    /// The window replica lag is read over, in seconds.
    #[serde(default)]
    pub lag_window_seconds: Option<u64>,
    /// `--step-timeout`, in seconds.
    #[serde(default)]
    pub step_timeout_seconds: Option<u64>,
    /// An injected crash point (tests).
    #[serde(default)]
    pub inject_crash: Option<String>,
    /// `--max-duration`, in seconds.
    #[serde(default)]
    pub max_duration_seconds: Option<u64>,
    /// The schedule slot a scheduled drill runs for.
    #[serde(default)]
    pub schedule_slot: Option<chrono::DateTime<chrono::Utc>>,
    /// A shadow drill's databases it does not rehearse, per plan.
    #[serde(default)]
    pub not_drilled: Option<std::collections::BTreeMap<String, Vec<String>>>,
    /// How `drctl watch` came to start the run (absent: a person started it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::WatchOrigin>,
}

impl RunFlags {
    /// The flags of a `run_started` record, or why they cannot be read.
    pub fn of(flags: &serde_json::Value) -> Result<Self, String> {
        read(flags).map_err(|e| e.to_string())
    }

    /// A drill's depth, when the run is a drill.
    pub fn drill_depth(&self) -> Option<super::event::DrillDepth> {
        match self.mode {
            Some(super::event::RunMode::Drill { depth }) => Some(depth),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_capacity_is_shared_with_a_failover() {
        let db = Temp::Database {
            region: "r".into(),
            id: "i".into(),
        };
        let cap = Temp::Capacity {
            region: "r".into(),
            group: "g".into(),
        };
        assert!(db.drill_only());
        assert!(!cap.drill_only());
        let json = serde_json::to_string(&db).unwrap();
        assert_eq!(json, r#"{"type":"database","region":"r","id":"i"}"#);
    }
}
