//! What a run tells people: notification events as the journal keeps them
//! (its outbox), in the CloudEvents 1.0 JSON shape that every sink receives.
//!
//! They live in the floor because an event is *journaled before it is sent*
//! and each delivery attempt's result is journaled too: the journal alone
//! says what is still owed to whom, so a crash, a kill or a lost lease
//! loses nothing, and a resumed run (on any machine) re-sends with the same
//! id. The event id is derived from the run and the record that caused it,
//! so deriving it twice gives the same id: a receiver that deduplicates on
//! it sees each event exactly once. The shape is documented in
//! `docs/notify.md` and its JSON Schema in `docs/notify-event.schema.json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::plan::notify::{EventType, Severity};

/// The CloudEvents `specversion` drctl writes.
pub const SPEC_VERSION: &str = "1.0";

/// One notification event (CloudEvents 1.0, structured JSON mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `"1.0"`.
    pub specversion: String,
    /// Unique per event and stable across re-sends (the `webhook-id`).
    pub id: String,
    /// `/drctl/runs/<run id>` (or `/drctl/schedule`, `/drctl/notify`).
    pub source: String,
    /// The event type, `dev.drctl.…`.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the fact happened (the journal record's time).
    pub time: DateTime<Utc>,
    /// What the event is about: the plans, comma-separated.
    pub subject: String,
    /// Always `application/json`.
    pub datacontenttype: String,
    /// The event's data.
    pub data: EventData,
}

/// The `data` of every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventData {
    /// The run (absent for schedule and test events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The run's kind (`failover`, `drill`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_kind: Option<String>,
    /// The plans concerned.
    pub plans: Vec<String>,
    /// Their tier (the most demanding one when plans differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The run's target region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Who ran it (STS identity), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// How loud the event is.
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
    /// The journal record the event reports: its position and the hex
    /// SHA-256 of its line, so the event can be checked against the
    /// evidence offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordRef>,
    /// What is particular to the event's type.
    pub detail: EventDetail,
}

/// A journal record, by position and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRef {
    /// The record's `seq`.
    pub seq: u64,
    /// Hex SHA-256 of its line (the next record's `prev`).
    pub hash: String,
}

/// A measured figure against its target: what reports and events say of
/// an RTO or RPO (computed by `runs::measure`, which re-exports it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// Seconds achieved; `None` = unknown (never 0 for unknown).
    pub seconds: Option<f64>,
    /// Tier target in seconds.
    pub target_seconds: Option<u64>,
    /// Whether the target was met; `None` when unknown.
    pub met: Option<bool>,
    /// What the figure was measured from.
    pub basis: String,
}

/// One plan's RTO and RPO achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFigures {
    /// The plan.
    pub plan: String,
    /// Recovery time achieved against the tier's target.
    pub rto: Measure,
    /// Recovery point achieved (data lost) against the tier's target.
    pub rpo: Measure,
}

/// One plan's drill verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanVerdict {
    /// The plan.
    pub plan: String,
    /// `pass`, `fail` or `incomplete`.
    pub verdict: String,
    /// Why, when it did not pass.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// What is particular to each event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventDetail {
    /// `run.started`.
    Started {
        /// The run's mode (`failover`, `switchover`, `shadow drill`, ...).
        mode: String,
        /// When the disaster was declared, the start of the RTO clock.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        declared_at: Option<DateTime<Utc>>,
        /// How many steps the run has.
        steps: usize,
        /// Where the run runs.
        host: String,
    },
    /// `run.approval_needed`.
    ApprovalNeeded {
        /// The plan.
        plan: String,
        /// Why approval is needed.
        why: String,
        /// The exact command that approves.
        command: String,
        /// The deadline of a retroactive approval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approve_by: Option<DateTime<Utc>>,
    },
    /// `run.step_failed`.
    StepFailed {
        /// The step (`plan/kind/resource`).
        step: String,
        /// The error's first line.
        error: String,
        /// Its class (`throttled`, `connection`, ...).
        class: String,
        /// What to do.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        /// The exact command that goes on from here.
        command: String,
    },
    /// `run.finished`.
    Finished {
        /// How the run ended (journal vocabulary).
        outcome: String,
        /// RTO and RPO achieved per plan, against its tier's targets.
        plans: Vec<PlanFigures>,
    },
    /// `drill.verdict`.
    DrillVerdict {
        /// Whether every plan passed.
        passed: bool,
        /// Per plan.
        plans: Vec<PlanVerdict>,
    },
    /// `schedule.overdue`.
    Overdue {
        /// The plan.
        plan: String,
        /// When its last passing drill ended (absent: never).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_drill: Option<DateTime<Utc>>,
        /// When a drill was due.
        due: DateTime<Utc>,
    },
    /// `watch.*`: what `drctl watch` decided for a plan.
    Watch {
        /// The plan.
        plan: String,
        /// The decision (journal vocabulary: `proposed`, `started`, ...).
        decision: String,
        /// The outage episode.
        episode: String,
        /// Why, in a sentence.
        why: String,
        /// The region judged down (or home, for a failback).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// The exact command a person would run.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        /// Propose mode: when the failover starts unless vetoed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<DateTime<Utc>>,
        /// The observers that judged the region down.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        votes: Vec<String>,
    },
    /// `evidence.mismatch`.
    EvidenceMismatch {
        /// What is wrong, one line each.
        problems: Vec<String>,
    },
    /// `lock.broken`.
    LockBroken {
        /// The plan whose lock was taken.
        plan: String,
        /// The run that took it.
        by_run: String,
        /// Where that run runs.
        by_host: String,
        /// Why.
        reason: String,
    },
    /// `notify.test`.
    Test {
        /// The message.
        message: String,
    },
}

/// The stable id of the event a journal record caused:
/// `evt_<run>_<seq>_<type>`. Deriving it again (after a crash) gives the
/// same id, so a re-send carries the same `webhook-id`.
pub fn event_id(run_id: &str, seq: u64, kind: EventType) -> String {
    format!("evt_{run_id}_{seq}_{}", kind.short())
}

/// What one delivery attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryResult {
    /// The sink accepted it (2xx, or the service's message id).
    Delivered,
    /// It failed; another attempt is due at `retry_at`.
    Failed,
    /// It failed and the retry schedule is spent: no more attempts.
    GaveUp,
}

impl std::fmt::Display for DeliveryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::GaveUp => "gave_up",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_is_the_same_when_derived_again() {
        let a = event_id("r1", 7, EventType::RunFinished);
        assert_eq!(a, "evt_r1_7_finished");
        assert_eq!(a, event_id("r1", 7, EventType::RunFinished));
        assert_ne!(a, event_id("r1", 8, EventType::RunFinished));
    }
}
