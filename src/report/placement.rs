//! Where each plan served before and after a report's window: the model
//! behind the report's before-and-after picture (`pictures::placement`)
//! and the JSON report's `placement`.
//!
//! Only failovers and failbacks that succeeded count, and only from
//! journals that verify: a forged or altered journal moves no plan on
//! paper. It asks the same history `drctl watch` asks
//! (`runs::watch::history`), at the window's two ends.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Window;
use crate::journal::event::RunKind;
use crate::plan::Plan;

/// Where a plan served (its writer and its traffic) at the window's start
/// and end: the target of the last failover or failback that succeeded
/// before each, else its home region. Only journals that verify count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// Where it served when the window began.
    pub before: String,
    /// Where it served when the window ended.
    pub after: String,
    /// Each failover or failback that moved it in the window, in order.
    pub moves: Vec<Move>,
}

/// One run that moved a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Move {
    /// The run.
    pub run_id: String,
    /// `failover` or `failback`.
    pub kind: RunKind,
    /// Where it moved the plan.
    pub to: String,
    /// When it ended.
    pub ended: Option<DateTime<Utc>>,
}

/// Where `plan` served at the window's start and end (pure), from the
/// switches of every verified journal.
pub(super) fn placement(
    plan: &Plan,
    switches: &[(Vec<String>, crate::runs::watch::Switch)],
    window: Window,
) -> Placement {
    let until = |t: DateTime<Utc>| -> Vec<(Vec<String>, crate::runs::watch::Switch)> {
        (switches.iter())
            .filter(|(_, s)| s.ended.is_some_and(|e| e <= t))
            .cloned()
            .collect()
    };
    let at = |t| crate::runs::watch::history(plan.name(), plan.home(), &until(t)).active;
    let moves = (switches.iter())
        .filter(|(plans, s)| {
            plans.iter().any(|p| p == plan.name())
                && s.outcome.succeeded()
                && s.ended.is_some_and(|e| e > window.from && e <= window.to)
        })
        .map(|(_, s)| Move {
            run_id: s.run_id.clone(),
            kind: s.kind,
            to: s.target.clone(),
            ended: s.ended,
        })
        .collect();
    Placement {
        before: at(window.from),
        after: at(window.to),
        moves,
    }
}
