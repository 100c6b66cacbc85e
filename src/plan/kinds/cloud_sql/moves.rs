//! Cloud SQL's moves as they are read: the operation Cloud SQL runs on the
//! old primary after a promotion's move ([`MovePath`]), found among its
//! operations ([`decide`], pure).
//!
//! Why here: `promote` makes the move, `settle-sql` follows its old side
//! and Cloud SQL's reprotection refuses a reconfiguration that failed;
//! each takes these from here, so the rule that finds a move's operation
//! is written once, in the kind.

use chrono::{DateTime, Utc};

use crate::cloud::SqlOperation;
pub use crate::plan::kinds::promoting::MovePath;

/// The operation a move makes on the old primary.
pub fn old_side_kind(path: MovePath) -> Option<&'static str> {
    match path {
        MovePath::Promote | MovePath::DrFailover => Some("RECONFIGURE_OLD_PRIMARY"),
        MovePath::Switchover => Some("SWITCHOVER_TO_REPLICA"),
        MovePath::Detach | MovePath::Already => None,
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
