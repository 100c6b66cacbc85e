//! What the steps on a plan's data copies share, whatever the kind: the
//! lag the RPO gate read for a resource on this run's path (a promotion's
//! or a switchover's measured RPO when it is fresh), and the rule every
//! database kind's readiness starts from (a copy missing, unreadable or not
//! available cannot be failed over to).
//!
//! Why here: RDS promotion, Cloud SQL promotion, an Aurora switchover and a
//! point-in-time restore each need them; a step kind takes them from here,
//! never from another step kind.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Cx, KindName, LagAtPromotion, StepOutput};
use crate::cloud::{CloudError, LagReading};
use crate::journal::RpoDetail;
use crate::plan::kinds::promoting::MovePath;

/// A lag reading the RPO gate journaled.
struct GateLag {
    /// The latest datapoint.
    latest: Option<f64>,
    /// The window's maximum.
    max: Option<f64>,
    /// How many datapoints.
    datapoints: u64,
    /// When the gate read it.
    at: DateTime<Utc>,
}

/// The lag the RPO gate read for `resource` on this run's path, while
/// fresh (first attempt, read moments ago, with datapoints).
fn fresh_gate_lag(cx: &Cx<'_>, resource: &str) -> Option<GateLag> {
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

/// The lag that is the RPO of a move of a data copy (a promotion, a
/// switchover, a drill's copy), as every data step journals it, flattened
/// into its outputs: `lag_seconds`, `lag_max_seconds` and `lag_read_at`,
/// then `lag_datapoints`, `lag_read_by` and `lag_note`, each left out
/// when there is none. A reader finds no lag where none was read:
/// unknown, never zero.
///
/// Why one type: the RDS, Cloud SQL and Aurora moves and the drills'
/// copies each journaled these fields by hand, with the gate's reading
/// taken the same way three times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagRecord {
    /// The reading.
    #[serde(flatten)]
    pub reading: Option<LagAtPromotion>,
    /// Datapoints of that reading (0: the metric had none).
    #[serde(
        default,
        rename = "lag_datapoints",
        skip_serializing_if = "Option::is_none"
    )]
    pub datapoints: Option<u64>,
    /// Who read it: `rpo gate`, or the step's kind.
    #[serde(
        default,
        rename = "lag_read_by",
        skip_serializing_if = "Option::is_none"
    )]
    pub read_by: Option<String>,
    /// Why there is no reading.
    #[serde(default, rename = "lag_note", skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl LagRecord {
    /// The lag in seconds, when one was read.
    pub fn seconds(&self) -> Option<f64> {
        self.reading.as_ref().and_then(|l| l.lag_seconds)
    }

    /// How many datapoints the reading had (0 when none was counted).
    pub fn count(&self) -> u64 {
        self.datapoints.unwrap_or(0)
    }

    /// `r`, read now by `by` (`None`: the step's own reading, which a
    /// drill's outputs do not name).
    pub fn read_now(r: &LagReading, by: Option<&str>) -> Self {
        Self {
            reading: Some(LagAtPromotion::read_now(r)),
            datapoints: Some(r.datapoints as u64),
            read_by: by.map(str::to_string),
            note: None,
        }
    }

    /// The lag of `resource` right before a move: the RPO gate's reading
    /// of moments ago on this run's path while it is fresh
    /// (its first attempt, read moments ago, with datapoints), else `read`
    /// now, recorded as read by `by`
    /// (the step's kind).
    pub async fn before_move<F, Fut>(
        cx: &Cx<'_>,
        resource: &str,
        by: &str,
        read: F,
    ) -> Result<Self, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<LagReading, CloudError>>,
    {
        match fresh_gate_lag(cx, resource) {
            Some(g) => Ok(Self {
                reading: Some(LagAtPromotion {
                    lag_seconds: g.latest.or(g.max),
                    lag_max_seconds: g.max,
                    lag_read_at: Some(g.at),
                }),
                datapoints: Some(g.datapoints),
                read_by: Some("rpo gate".into()),
                note: None,
            }),
            None => Ok(Self::read_now(&read().await?, Some(by))),
        }
    }
}

/// A database copy in a standby region, as `status` read it: plain data,
/// for the database kinds' readiness rules ([`crate::steps::promote_standby_problems`],
/// [`crate::steps::restore_standby_problems`]) to judge.
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
/// The RPO of a point-in-time restore: from the point restored to
/// (`point`, which `what` names) to the RTO origin; unknown, never zero,
/// while the restore has not completed (`done` false) or said no point.
pub(super) fn restore_rpo(
    resource: &str,
    (done, point): (bool, Option<DateTime<Utc>>),
    what: &str,
    (origin, origin_label): (DateTime<Utc>, &str),
) -> (Option<f64>, String) {
    match point {
        Some(point) => (
            Some(((origin - point).num_milliseconds() as f64 / 1000.0).max(0.0)),
            format!("{resource}: gap from {what} {point} to {origin_label}"),
        ),
        None if !done => (
            None,
            format!("{resource}: unknown (the restore has not completed)"),
        ),
        None => (
            None,
            format!("{resource}: unknown (no restore point reported)"),
        ),
    }
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

/// What a promotion publishes: how the target became the primary, and
/// what `settle-sql`, the measurement and a record that follows it read.
/// It reads the journals of the retired `promote-sql` too. Here, not in
/// `promote`, because `settle-sql` reads it too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromoteOutput {
    /// The copy that is the primary now, as its kind addresses it (a
    /// retired `switch-global` journal's `cluster`).
    #[serde(alias = "cluster")]
    pub instance: String,
    /// Its region.
    pub region: String,
    /// The GCP project (a retired `promote-sql` journal's).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub project: String,
    /// How it became the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<MovePath>,
    /// Why that way (each move tried, in order).
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub why: Vec<String>,
    /// The provider's operation the step made (or found under way and
    /// waited on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Set when the operation was found under way (a resumed run).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed_operation: bool,
    /// Set when the copy was a primary already (nothing promoted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub already_primary: Option<bool>,
    /// What it replicated from, when it was a replica (a retired
    /// `switch-global` journal's `old_writer`).
    #[serde(skip_serializing_if = "Option::is_none", alias = "old_writer")]
    pub source: Option<String>,
    /// The replica lag right before the call (the RPO).
    #[serde(flatten)]
    pub lag: LagRecord,
    /// The provider's metric that lag is (`ReplicaLag`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub metric: String,
    /// When the call was made (a retired `switch-global` journal's
    /// `moved_at`).
    #[serde(skip_serializing_if = "Option::is_none", alias = "moved_at")]
    pub promoted_at: Option<DateTime<Utc>>,
    /// Set after a detach: the group the copy left must be rebuilt.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rebuild_needed: bool,
    /// What people must know after the move (the old primary left
    /// writable, a snapshot kept, a group to rebuild, a lag not read).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The primary's endpoint, as a record that follows it names it.
    pub endpoint: Option<String>,
    /// Its port, when the provider says it.
    pub port: Option<i32>,
}

impl StepOutput for PromoteOutput {
    const KIND: KindName = KindName::Promote;
}

/// A why journaled as one sentence (a retired `promote-sql`'s) or several.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Why {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Why::deserialize(d)? {
        Why::One(s) if s.is_empty() => Vec::new(),
        Why::One(s) => vec![s],
        Why::Many(v) => v,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A step's outputs with the record flattened in, as the data steps
    /// journal it.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Out {
        instance: String,
        #[serde(flatten)]
        lag: LagRecord,
    }

    #[test]
    fn a_lag_record_journals_the_fields_the_data_steps_journaled_before_it() {
        let at = "2026-11-27T10:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let read = Out {
            instance: "orders-use1".into(),
            lag: LagRecord {
                reading: Some(LagAtPromotion {
                    lag_seconds: Some(1.5),
                    lag_max_seconds: Some(2.0),
                    lag_read_at: Some(at),
                }),
                datapoints: Some(3),
                read_by: Some("rpo gate".into()),
                note: None,
            },
        };
        let journaled = json!({
            "instance": "orders-use1",
            "lag_seconds": 1.5,
            "lag_max_seconds": 2.0,
            "lag_read_at": "2026-11-27T10:00:00Z",
            "lag_datapoints": 3,
            "lag_read_by": "rpo gate",
        });
        assert_eq!(serde_json::to_value(&read).unwrap(), journaled);
        assert_eq!(serde_json::from_value::<Out>(journaled).unwrap(), read);
        assert_eq!((read.lag.seconds(), read.lag.count()), (Some(1.5), 3));
    }

    #[test]
    fn an_unread_lag_is_unknown_never_zero() {
        let noted =
            json!({"instance": "orders-use1", "lag_datapoints": 0, "lag_note": "no datapoint"});
        let out: Out = serde_json::from_value(noted.clone()).unwrap();
        assert_eq!(out.lag.seconds(), None);
        assert_eq!(out.lag.note.as_deref(), Some("no datapoint"));
        // Nothing read writes no lag at all, as before.
        let nothing = Out {
            instance: "orders-use1".into(),
            ..Out::default()
        };
        let v = serde_json::to_value(&nothing).unwrap();
        assert_eq!(v, json!({"instance": "orders-use1"}));
        let back: Out = serde_json::from_value(v).unwrap();
        assert_eq!((back.lag.seconds(), back.lag.count()), (None, 0));
    }
}
