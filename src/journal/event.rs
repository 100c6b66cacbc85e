//! What a journal records: one [`Record`] per line, each carrying one [`Event`].
//!
//! Events are facts about a run, written *before* the action they announce
//! (a `StepStarted` precedes the cloud call), so that a resumed run can tell a
//! step that never began from one that may have half-happened. They are plain
//! data with stable, snake_case JSON names because reports, audits and resumes
//! read them long after the process that wrote them is gone: renaming a field
//! here breaks every journal already on disk.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::step_name::StepName;

/// One journal record as stored: one JSON object per line (JSON Lines).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Position in the journal: 0, 1, 2, ... without gaps.
    pub seq: u64,
    /// When the record was written (UTC).
    pub at: DateTime<Utc>,
    /// Hex SHA-256 of the previous record's exact line bytes (without the
    /// newline); 64 zeros for seq 0.
    pub prev: String,
    /// What happened.
    pub event: Event,
    /// The fencing token of each plan lease the writer held (shared state
    /// only; absent with a local state directory). Along a journal a plan's
    /// token never decreases: a lower one is a write by a process that had
    /// lost its lease, and breaks the chain.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fence: std::collections::BTreeMap<String, u64>,
    /// Set only in a run's merged view (`runs::late::merge`), never in a
    /// journal line: this record is a late fact stored beside the journal
    /// ([`crate::journal::late`]); its `seq` is the number of records its
    /// writer had seen, and its `prev` the hash of the last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<LateMark>,
}

/// How a merged view marks a record that is a late fact, not a line of
/// the journal ([`Record::late`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LateMark {
    /// The fact's id.
    pub id: String,
    /// The host that wrote it.
    pub host: String,
    /// The SHA-256 of the fact as stored.
    pub hash: String,
}

/// A fact about a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run began: everything needed to resume it and to audit it later.
    RunStarted {
        /// The run id (see [`crate::journal::new_run_id`]).
        run_id: String,
        /// What kind of run.
        kind: RunKind,
        /// Target region.
        target: String,
        /// The plans the run acts on, with the digest of each plan file.
        plans: Vec<PlanRef>,
        /// Operator identity, when known (from STS GetCallerIdentity).
        operator: Option<String>,
        /// Host the run started on.
        host: String,
        /// Process id of the run.
        pid: u32,
        /// The command-line flags that shaped the run.
        flags: serde_json::Value,
        /// When the disaster was declared (`--declared-at`), the start of RTO.
        declared_at: Option<DateTime<Utc>>,
        /// The compiled step graph.
        steps: Vec<StepRef>,
        /// A random value drawn at the start (32 hex digits): every
        /// evidence manifest of the run carries it, which ties the manifest
        /// to this journal (absent in journals written before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// A gate decided whether the run may go on.
    Gate {
        /// The plan the gate applies to.
        plan: String,
        /// Which gate.
        gate: GateName,
        /// What it decided.
        decision: Decision,
        /// What the decision was based on (measured lag, approver, lock holder...).
        detail: serde_json::Value,
    },
    /// A step is about to act (written before the action).
    StepStarted {
        /// Step id.
        step: StepName,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// A step reached its desired state.
    StepSucceeded {
        /// Step id.
        step: StepName,
        /// Outputs later steps read (endpoints, measured lag...).
        outputs: serde_json::Value,
    },
    /// A step failed.
    StepFailed {
        /// Step id.
        step: StepName,
        /// Why.
        error: StepError,
    },
    /// The run was resumed after an interruption.
    Resumed {
        /// Host the run resumed on.
        host: String,
        /// Process id of the resuming process.
        pid: u32,
        /// The torn final line (an interrupted write, never acknowledged)
        /// that was cut off before resuming, kept here as it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropped_torn_line: Option<String>,
    },
    /// Another run took this run's plan lock over (written into *this*
    /// run's journal by the run that took it): this run's process, if it
    /// still lives, can no longer write here.
    LockLost {
        /// The plan whose lock was taken.
        plan: String,
        /// The run that took it.
        by_run: String,
        /// Where that run runs.
        by_host: String,
        /// Why (the `--force-unlock` or `lock break` reason, or "lease expired").
        reason: String,
        /// The new holder's fencing token.
        token: u64,
        /// Whether the taker is a real failover (or failback) preempting a
        /// drill: then the drill leaves the capacity it raised to it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        preempted: bool,
    },
    /// A drill is about to call what may create (or change) a temporary
    /// resource: written before the call, so that cleanup finds it even
    /// when the answer is lost or the process dies (see [`crate::steps::drill_names`]).
    DrillResource {
        /// The step that creates it.
        step: StepName,
        /// The resource.
        resource: crate::journal::Temp,
    },
    /// The run's steps were stopped before they ended (Ctrl-C, SIGTERM,
    /// `--max-duration`, a failover taking the plan over); a drill cleans
    /// up next.
    Interrupted {
        /// Why.
        reason: String,
    },
    /// A drill's cleanup of one resource ended (proven by a read).
    Cleanup {
        /// The resource.
        resource: crate::journal::Temp,
        /// What happened.
        result: CleanupResult,
        /// What the proof read found, or why it failed.
        detail: String,
    },
    /// `drctl audit verify --evidence` read the run's evidence packs back
    /// from every destination. Recorded beside an ended run's journal by
    /// the verifier (a late fact, [`crate::journal::late`]; older journals
    /// hold it as a record), only when the result differs from the last one
    /// recorded; reports take the last one (an altered or missing object is
    /// a finding).
    EvidenceVerified {
        /// Who verified (STS identity), when known.
        by: Option<String>,
        /// Where the verification ran.
        host: String,
        /// Per plan and destination: objects proven, and what is wrong.
        plans: Vec<crate::journal::PlanCheck>,
    },
    /// A notification event, journaled before it is sent: the outbox
    /// (see [`crate::journal::notice`]).
    Notification {
        /// The event, exactly as every sink receives it.
        event: Box<crate::journal::notice::CloudEvent>,
        /// The sinks it is owed to, by name.
        sinks: Vec<String>,
    },
    /// One delivery attempt of a journaled notification, and its result:
    /// journaled by the run while it runs, recorded beside its journal (a
    /// late fact) by any other process that delivers (`notify flush`).
    Delivery {
        /// The event's id.
        id: String,
        /// The sink's name.
        sink: String,
        /// Attempt number, from 1.
        attempt: u32,
        /// What happened.
        result: crate::journal::notice::DeliveryResult,
        /// The HTTP status the sink answered, when it answered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// What the sink said, or why the attempt failed.
        detail: String,
        /// When the next attempt is due (a failed attempt).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<DateTime<Utc>>,
        /// Where the attempt was made.
        host: String,
    },
    /// A call of a step waited for its API's budget (AWS's published
    /// limits, held on our side), or the API throttled it and it was sent
    /// again after a wait: throttling is a wait, never a failed step.
    /// Journaled when the step ends, before its end record.
    Waited {
        /// The step.
        step: StepName,
        /// `service:Operation`.
        call: String,
        /// The region it was made in.
        region: String,
        /// How long it waited, in milliseconds.
        waited_ms: u64,
        /// Why (the bucket and its limit, or the API's answer).
        cause: String,
        /// The API throttled it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        throttled: bool,
    },
    /// What `drctl watch` observed or decided (a watcher's journal).
    Watch {
        /// The observer.
        observer: String,
        /// The plan.
        plan: String,
        /// What.
        fact: Box<crate::journal::watch::WatchFact>,
    },
    /// What a drill proves a recovery of: one plan's inventory as
    /// `status` read it before the drill's steps acted (its resources'
    /// ids, designations, capacity maxima and floors, record targets,
    /// evidence destinations, a digest of each of the plan's entries).
    /// `status` compares the plan with it (`status::verified`). In a
    /// failover or failback: the plan's definition facts alone, as the run
    /// began (the report judges from them whether it was verified then).
    Inventory {
        /// The plan.
        plan: String,
        /// Named facts and their values.
        items: std::collections::BTreeMap<String, String>,
    },
    /// The run ended.
    RunFinished {
        /// How it ended.
        outcome: Outcome,
        /// Measured RTO/RPO and the step tally.
        summary: serde_json::Value,
    },
}

use super::vocabulary::vocabulary;

vocabulary! {
    /// What kind of run a journal records.
    RunKind {
        /// Fail over to a standby region.
        Failover = "failover",
        /// Fail over back home (after a reprotection).
        Failback = "failback",
        /// Point-in-time restore of one database.
        Restore = "restore",
        /// Re-create replicas after a failover.
        Reprotect = "reprotect",
        /// A DR drill (against drill copies; production untouched).
        Drill = "drill",
        /// A sweep of expired drill resources (`drctl drill sweep`).
        Sweep = "sweep",
    }
}

vocabulary! {
    /// Which gate decided.
    GateName {
        /// Replica lag against the tier's RPO.
        Rpo = "rpo",
        /// Approval by an operator.
        Approval = "approval",
        /// The plan's lock.
        Lock = "lock",
        /// The approved preview, against a fresh one
        /// (`--approve-preview`).
        Preview = "preview",
        /// Record-set protections on what the switch would change.
        Protections = "protections",
    }
}

vocabulary! {
    /// What a gate decided.
    Decision {
        /// The run may go on.
        Pass = "pass",
        /// The run stops here.
        Refuse = "refuse",
        /// The run goes on against the gate's advice, on the operator's word
        /// (`--accept-data-loss`, `--emergency`, `--force-unlock`).
        Override = "override",
        /// An emergency run was approved afterwards (`drctl runs approve`):
        /// recorded beside the run's journal, as a late fact
        /// ([`crate::journal::late`]).
        Retroactive = "retroactive",
    }
}

vocabulary! {
    /// How a run ended.
    Outcome {
        /// Every step succeeded.
        Succeeded = "succeeded",
        /// Every step succeeded; some evidence destination did not take its
        /// copy (a warning: `drctl runs resume` writes it).
        EvidenceIncomplete = "evidence_incomplete",
        /// Every step succeeded and the recovery is done; what a cloud
        /// finishes on the old side after the move (a Cloud SQL old
        /// primary's reconfiguration) was still under way when the run
        /// ended, its region not answering: `drctl runs resume` follows it.
        Pending = "pending",
        /// A step failed: the run halted (`drctl runs resume` goes on).
        Failed = "failed",
        /// A drill ended but could not remove everything it made: `drctl
        /// runs resume` finishes the cleanup.
        CleanupIncomplete = "cleanup_incomplete",
        /// A gate refused before anything changed.
        Refused = "refused",
        /// Never journaled: what a report says of a journal without an end
        /// (the run is going on, or its process died).
        Unfinished = "unfinished",
    }
}

impl Outcome {
    /// Whether the run did what it was for (evidence may still be missing).
    pub fn succeeded(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::EvidenceIncomplete | Self::Pending
        )
    }

    /// Whether `drctl runs resume` has something left to do.
    pub fn resumable(self) -> bool {
        matches!(
            self,
            Self::Failed
                | Self::EvidenceIncomplete
                | Self::Pending
                | Self::Unfinished
                | Self::CleanupIncomplete
        )
    }
}

vocabulary! {
    /// What cleaning up one drill resource did.
    CleanupResult {
        /// Deleted, and a read afterwards found nothing.
        Removed = "removed",
        /// Nothing was there (never created, or removed before).
        Absent = "absent",
        /// The capacity was set back to what it was, and read back.
        Restored = "restored",
        /// Left as it is on purpose (a failover owns it now); drill tags removed.
        Kept = "kept",
        /// Not tagged by this drill: never touched.
        NotOurs = "not_ours",
        /// Could not be removed: still there.
        Failed = "failed",
    }
}

impl CleanupResult {
    /// Whether nothing of the drill is left of the resource.
    pub fn done(self) -> bool {
        !matches!(self, Self::Failed)
    }
}

vocabulary! {
    /// How a step failed (the cloud's [`crate::cloud::ErrorKind`], or the
    /// step's own reasons). Journals before this type was introduced wrote
    /// `notfound` for `not_found`: still read.
    ErrorClass {
        /// The provider throttled us.
        Throttled = "throttled",
        /// The provider failed (5xx).
        Server = "server",
        /// The connection failed, timed out or was dropped.
        Connection = "connection",
        /// The resource does not exist.
        NotFound = "not_found" | "notfound",
        /// Credentials missing, expired or not allowed.
        Auth = "auth",
        /// A conditional request's precondition failed.
        Precondition = "precondition",
        /// The request was invalid for the resource's state.
        Client = "client",
        /// Waiting ran out of time.
        Timeout = "timeout",
        /// The world is not in a state the step can work from.
        State = "state",
    }
}

impl From<crate::cloud::ErrorKind> for ErrorClass {
    fn from(k: crate::cloud::ErrorKind) -> Self {
        use crate::cloud::ErrorKind as K;
        match k {
            K::Throttled => Self::Throttled,
            K::Server => Self::Server,
            K::Connection => Self::Connection,
            K::NotFound => Self::NotFound,
            K::Auth => Self::Auth,
            K::Precondition => Self::Precondition,
            K::Client => Self::Client,
            // Not sent: the lease was lost (as a fenced step records it).
            K::Fenced => Self::State,
        }
    }
}

/// A plan a run acts on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlanRef {
    /// Plan name.
    pub name: String,
    /// Hex SHA-256 of the plan file, to prove which version ran.
    pub digest: String,
}

impl PlanRef {
    /// `plan` as a run names it: its name and its file's digest.
    pub fn of(plan: &crate::plan::Plan) -> Self {
        Self {
            name: plan.name().into(),
            digest: plan.digest.clone(),
        }
    }
}

/// One step of the compiled graph, as recorded at run start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRef {
    /// Step id.
    pub id: StepName,
    /// Ids of the steps it waits for.
    pub deps: Vec<StepName>,
    /// What it does, for people.
    pub description: String,
}

/// A serializable step error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepError {
    /// What went wrong.
    pub message: String,
    /// Classification.
    pub kind: ErrorClass,
    /// Whether retrying could help.
    pub transient: bool,
    /// The resource involved, when known.
    pub resource: Option<String>,
    /// The region involved, when known.
    pub region: Option<String>,
}

impl StepError {
    /// The message without its hint: a journaled message is the failure's
    /// one-line summary followed by `\n  hint: ...` (what to do), as
    /// journals have always held it; this is the one place that splits it.
    pub fn summary(&self) -> &str {
        split_hint(&self.message).0
    }

    /// What to do about it, when the message says.
    pub fn hint(&self) -> Option<&str> {
        split_hint(&self.message).1
    }
}

/// A journaled text as (message, hint): texts written before hints were a
/// field carry the hint after `\n  hint: `; other lines after the first are
/// detail, left out of the one-line message.
pub fn split_hint(text: &str) -> (&str, Option<&str>) {
    let (message, hint) = match text.split_once("\n  hint: ") {
        Some((m, h)) => (m, Some(h)),
        None => (text, None),
    };
    (message.lines().next().unwrap_or_default(), hint)
}

/// Which graph a run executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum RunMode {
    /// Fail over to the target region (also used by failback).
    Failover {
        /// A planned move: the home region answers and nothing may be
        /// lost (a failback, a switchover drill, `failover --planned`).
        /// Kinds that can move without loss (an Aurora global database's
        /// switchover) do; an unplanned failover may lose what the RPO
        /// gate allowed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        planned: bool,
    },
    /// Point-in-time restore of one database in the target region.
    Restore {
        /// Database resource id.
        database: String,
        /// Restore point; `None` = latest restorable time.
        to_time: Option<DateTime<Utc>>,
    },
    /// Re-create replicas in the other regions; the target is the active region.
    Reprotect,
    /// A drill: the plan's graph against drill copies in the target region
    /// (see `crate::steps::drill_names`); production is never changed.
    Drill {
        /// How far the drill goes.
        depth: DrillDepth,
    },
}

impl RunMode {
    /// Whether the run compiles a failover's graph: a failover (or
    /// failback), and a switchover drill, which is a real failover.
    pub fn fails_over(&self) -> bool {
        matches!(
            self,
            Self::Failover { .. }
                | Self::Drill {
                    depth: DrillDepth::Switchover
                }
        )
    }

    /// Whether the run is a planned move: the home region answers and
    /// nothing may be lost (a failback, `failover --planned`, a drill). A
    /// kind that can move without loss (a switchover) does, and the RPO
    /// gate judges that move ([`crate::plan::kinds::promoting::switches_over`]).
    pub fn is_planned(&self) -> bool {
        matches!(self, Self::Failover { planned: true } | Self::Drill { .. })
    }

    /// Whether the run is a shadow drill (drill copies, cleaned up).
    pub fn is_shadow_drill(&self) -> bool {
        matches!(
            self,
            Self::Drill {
                depth: DrillDepth::Shadow
            }
        )
    }
}

/// How far a drill goes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum DrillDepth {
    /// A temporary replica promoted, the standby group raised and restored,
    /// a drill DNS record: nothing production uses is changed.
    #[default]
    Shadow,
    /// A real failover followed by a failback (REL13-style): disruptive,
    /// needs approval; the failover is the drill's measured run.
    Switchover,
}

impl DrillDepth {
    /// The name journals and flags use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shadow => "shadow",
            Self::Switchover => "switchover",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_snake_case_type_tag() {
        let event = Event::StepStarted {
            step: "payments/promote-db".into(),
            attempt: 1,
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"type":"step_started","step":"payments/promote-db","attempt":1}"#
        );
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_record_round_trips_through_json() {
        let record = Record {
            seq: 3,
            at: Utc::now(),
            prev: "ab".repeat(32),
            event: Event::StepFailed {
                step: "payments/switch-dns:example.com.".into(),
                error: StepError {
                    message: "throttled".into(),
                    kind: ErrorClass::Throttled,
                    transient: true,
                    resource: Some("api.example.com".into()),
                    region: None,
                },
            },
            fence: Default::default(),
            late: None,
        };
        let line = serde_json::to_string(&record).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
    }
}
