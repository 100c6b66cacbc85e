//! Cloud SQL's moves as the steps read them: the path a promotion took
//! ([`SqlPath`]), what `promote-sql` publishes ([`PromoteSqlOutput`]), and
//! the operation Cloud SQL then runs on the old primary, found among its
//! operations ([`decide`], pure).
//!
//! Why here: `promote-sql` makes the move, `settle-sql` follows its old
//! side and `reprotect-sql` refuses a reconfiguration that failed; each
//! step kind takes these from here, never from another step kind, so the
//! rule that finds a move's operation is written once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::copies::LagRecord;
use crate::cloud::SqlOperation;

/// How the target became the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SqlPath {
    /// `promoteReplica`: a standalone primary.
    Promote,
    /// `promoteReplica` with `failover`: the DR replica took over.
    DrFailover,
    /// `switchover`: the roles swapped, nothing lost.
    Switchover,
    /// Nothing to do: it is a primary already.
    Already,
}

impl SqlPath {
    /// The operation type Cloud SQL names its operation with.
    pub fn operation_type(self) -> Option<&'static str> {
        match self {
            Self::Promote | Self::DrFailover => Some("PROMOTE_REPLICA"),
            Self::Switchover => Some("SWITCHOVER"),
            Self::Already => None,
        }
    }
}

/// What `promote-sql` publishes: how the target became the primary, and
/// what `settle-sql` and the measurement read of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromoteSqlOutput {
    /// The instance that is the primary now.
    pub instance: String,
    /// Its region.
    pub region: String,
    /// The project.
    pub project: String,
    /// How it became the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<SqlPath>,
    /// Why that way.
    pub why: String,
    /// The Cloud SQL operation the step made (or found under way and
    /// waited on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Set when the operation was found under way (a resumed run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed_operation: bool,
    /// What it replicated from, when it was a replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The replica lag right before the call (the RPO).
    #[serde(flatten)]
    pub lag: LagRecord,
    /// When the call was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<DateTime<Utc>>,
    /// What a record that follows the database names: the cluster's write
    /// endpoint where Cloud SQL reports one, else the primary's DNS name,
    /// else its primary IP ([`SqlInstance::followed_endpoint`]).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// The operation a move makes on the old primary.
pub fn old_side_kind(path: SqlPath) -> Option<&'static str> {
    match path {
        SqlPath::Promote | SqlPath::DrFailover => Some("RECONFIGURE_OLD_PRIMARY"),
        SqlPath::Switchover => Some("SWITCHOVER_TO_REPLICA"),
        SqlPath::Already => None,
    }
}

/// Slack for clocks: an operation inserted this long before the promotion
/// was sent still counts as its.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// What one look at the old primary's operations (newest first) says.
#[derive(Debug, Clone, PartialEq)]
pub enum Look {
    /// Not started yet (Cloud SQL starts it after the replica's operation).
    NotYet,
    /// Under way.
    Running(SqlOperation),
    /// Over: done, or failed with its error.
    Over(SqlOperation),
}

/// Finds the move's operation among `ops` (newest first): the newest of
/// `kind` inserted since `since` (less [`CLOCK_SLACK`]). Pure.
pub fn decide(kind: &str, since: Option<DateTime<Utc>>, ops: &[SqlOperation]) -> Look {
    let ours = ops.iter().find(|o| {
        o.kind == kind
            && match (since, o.inserted) {
                (Some(since), Some(at)) => at >= since - CLOCK_SLACK,
                _ => true,
            }
    });
    match ours {
        None => Look::NotYet,
        Some(o) if o.is_done() => Look::Over(o.clone()),
        Some(o) => Look::Running(o.clone()),
    }
}
