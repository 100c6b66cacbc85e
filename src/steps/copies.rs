//! What the steps on a plan's data copies share, whatever the kind: the
//! lag the RPO gate read for a resource on this run's path (a promotion's
//! or a switchover's measured RPO when it is fresh), and the rule every
//! database kind's readiness starts from (a copy missing, unreadable or not
//! available cannot be failed over to).
//!
//! Why here: RDS promotion, Cloud SQL promotion, an Aurora switchover and a
//! point-in-time restore each need them; a step kind takes them from here,
//! never from another step kind.

use chrono::{DateTime, Utc};

use super::{Cost, Cx};
use crate::journal::RpoDetail;

/// What a Cloud SQL clone at a point in time costs: a point-in-time
/// restore's and a drill's copy alike (the forecast reads it).
pub const SQL_CLONE: Cost = Cost {
    calls: &[
        "sqladmin:instances.get",
        "sqladmin:instances.getLatestRecoveryTime",
        "sqladmin:operations.list",
        "sqladmin:instances.clone",
    ],
    waits: &["sqladmin:instances.clone"],
    polls: Some("sqladmin:operations.get"),
};

/// A lag reading the RPO gate journaled.
pub struct GateLag {
    /// The latest datapoint.
    pub latest: Option<f64>,
    /// The window's maximum.
    pub max: Option<f64>,
    /// How many datapoints.
    pub datapoints: u64,
    /// When the gate read it.
    pub at: DateTime<Utc>,
}

/// The lag the RPO gate read for `resource` on this run's path, while
/// fresh (first attempt, read moments ago, with datapoints).
pub(super) fn fresh_gate_lag(cx: &Cx<'_>, resource: &str) -> Option<GateLag> {
    if cx.attempt != 1 {
        return None;
    }
    let g = gate_reading(cx.rpo_readings?, resource)?;
    if (Utc::now() - g.at).to_std().ok()? > super::FRESH || g.datapoints == 0 {
        return None;
    }
    Some(g)
}

/// The RPO gate's reading of `resource`, from the gate's detail.
fn gate_reading(readings: &RpoDetail, resource: &str) -> Option<GateLag> {
    let d = readings
        .databases()
        .iter()
        .find(|d| d.resource == resource)?;
    Some(GateLag {
        latest: d.latest_lag_seconds,
        max: d.lag_seconds,
        datapoints: d.datapoints,
        at: d.read_at?,
    })
}

/// A database copy in a standby region, as `status` read it: plain data,
/// for the database kinds' readiness rules ([`crate::steps::Promote::standby_problems`],
/// [`crate::steps::Restore::standby_problems`]) to judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyRead<'a> {
    /// No such instance.
    Missing,
    /// The read was answered with an error (denied, bad request).
    Unreadable,
    /// The region did not answer (said once, for the whole region).
    Unreachable,
    /// The instance: whether it is a primary, and its provider status.
    Found {
        /// A primary (else a replica).
        primary: bool,
        /// Provider status (`available`, `modifying`...).
        status: &'a str,
    },
}

/// Why a database copy, whatever its strategy, cannot be failed over to:
/// it is missing or unreadable (first), or not available (last, around the
/// strategy's own problems).
pub(super) fn copy_problems(
    instance: &str,
    region: &str,
    copy: CopyRead<'_>,
    strategy: Vec<String>,
) -> Vec<String> {
    let mut out = match copy {
        CopyRead::Missing => vec![format!("database {instance} does not exist in {region}")],
        CopyRead::Unreadable => vec![format!("database {instance} in {region} could not be read")],
        CopyRead::Unreachable | CopyRead::Found { .. } => Vec::new(),
    };
    out.extend(strategy);
    if let CopyRead::Found { status, .. } = copy
        && status != "available"
    {
        out.push(format!(
            "database {instance} in {region} is `{status}`, not available"
        ));
    }
    out
}
