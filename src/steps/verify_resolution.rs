//! `verify-resolution`: a data-plane switch is in effect when the plan's
//! names resolve to the target, asked of the zone's authoritative servers
//! (or the configured `dns_servers`), **N answers in a row**. No change
//! status, no record listing: both are Route 53's control plane.
//!
//! Why several answers: Route 53's health checkers are many and flip a
//! record's health only after consecutive results; one lucky answer while
//! they disagree is not a switch. The RTO clock stops at the *first* of the N
//! consecutive answers, which is when clients began to get the target.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::switch_control::data_plane_records;
use super::switch_dns::norm;
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::plan::spec::DnsSpec;
use crate::steps::graph::{Builder, Phase};

/// Consecutive answers that must all name the target.
pub const CONSECUTIVE_ANSWERS: u32 = 3;

/// Resolve every data-plane record until it names the target N times in a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyResolution {
    /// The records.
    #[serde(serialize_with = "super::switch_dns::record_names")]
    pub records: Vec<DnsSpec>,
}

/// Stops the RTO clock: clients are sent to the target once this holds.
pub const TRAITS: Traits = Traits {
    recovery: true,
    ends_rto: true,
    irreversible: false,
    rpo: None,
    time: Cost {
        calls: &[],
        waits: &["route53:HealthCheckFailover"],
        polls: Some("dns:query"),
    },
};

/// One verification per data-plane switch.
pub fn compile(b: &mut Builder<'_>) {
    let records = data_plane_records(b);
    if records.is_empty() {
        return;
    }
    let description = format!(
        "resolve {} at the zone's authoritative servers until they name {} {CONSECUTIVE_ANSWERS} times in a row",
        super::switch_dns::joined_names(&records),
        b.target
    );
    let resources = records.iter().map(|d| d.id.clone()).collect();
    b.add(
        StepKind::VerifyResolution(VerifyResolution { records }),
        None,
        Phase::Verify,
        resources,
        description,
    );
}

/// One name's verified answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The name asked.
    pub name: String,
    /// What it resolved to.
    pub values: Vec<String>,
    /// When the first of the consecutive answers came.
    pub first_at: Option<DateTime<Utc>>,
    /// How many questions it took.
    pub asked: u32,
}

/// What the verification publishes. `in_sync_at` is the RTO clock's end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyResolutionOutput {
    /// When every name had begun its run of consecutive answers (the latest
    /// first answer).
    pub in_sync_at: DateTime<Utc>,
    /// Per name.
    pub resolved: Vec<Resolved>,
    /// Who was asked.
    pub servers: String,
    /// Answers required in a row.
    pub consecutive: u32,
    /// How the clock was stopped, for reports.
    pub basis: String,
}

impl StepOutput for VerifyResolutionOutput {
    const KIND: KindName = KindName::VerifyResolution;
}

/// Whether an answer names exactly the target (pure).
pub fn names_target(answer: &[String], target: &str) -> bool {
    !answer.is_empty() && answer.iter().all(|v| norm(v) == norm(target))
}

/// A streak of answers: `(first_at, count)`, reset by any other answer.
#[derive(Debug, Default)]
struct Streak {
    first: Option<DateTime<Utc>>,
    count: u32,
    asked: u32,
    last: Vec<String>,
}

impl Streak {
    /// Counts one answer; `Some(first)` once it has N in a row.
    fn push(
        &mut self,
        at: DateTime<Utc>,
        answer: Vec<String>,
        target: &str,
    ) -> Option<DateTime<Utc>> {
        self.asked += 1;
        if names_target(&answer, target) {
            self.count += 1;
            let first = *self.first.get_or_insert(at);
            self.last = answer;
            (self.count >= CONSECUTIVE_ANSWERS).then_some(first)
        } else {
            self.first = None;
            self.count = 0;
            self.last = answer;
            None
        }
    }
}

impl VerifyResolution {
    /// Resolves `d.name` until it names `d`'s target value N times in a
    /// row (bounded by the step's wait); a drill resolves its drill names
    /// with it.
    pub(super) async fn one(cx: &Cx<'_>, d: &DnsSpec) -> Result<Resolved, StepFailure> {
        let target = d.targets.get(cx.target).cloned().unwrap_or_default();
        let streak = Mutex::new(Streak::default());
        let lock = || streak.lock().unwrap_or_else(|p| p.into_inner());
        let what = format!(
            "{} to resolve to {target} at {} ({CONSECUTIVE_ANSWERS} answers in a row)",
            d.name,
            cx.clouds.resolver.servers()
        );
        let first = wait_for(cx, &what, || async {
            let at = Utc::now();
            let answer = match cx.clouds.resolver.resolve(&d.zone, &d.name, &d.rtype).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(name = %d.name, "no answer: {e}");
                    Vec::new()
                }
            };
            Ok(lock().push(at, answer, &target))
        })
        .await
        .map_err(|e| match e {
            StepFailure::Timeout { .. } => StepFailure::state(
                format!(
                    "{} did not resolve to {target} {CONSECUTIVE_ANSWERS} times in a row (last answer: {})",
                    d.name,
                    show(&lock().last)
                ),
                "see the controls and health checks (drctl status); a control that could not be drained keeps its region answering",
                &d.id,
                "global",
            ),
            other => other,
        })?;
        let s = lock();
        Ok(Resolved {
            name: d.name.clone(),
            values: s.last.clone(),
            first_at: Some(first),
            asked: s.asked,
        })
    }
}

fn show(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[async_trait]
impl Action for VerifyResolution {
    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(self
            .records
            .iter()
            .map(|d| Planned {
                call: format!(
                    "DNS query {} {} to {}",
                    d.name,
                    d.rtype,
                    cx.clouds.resolver.servers()
                ),
                resource: d.name.clone(),
                region: "global".into(),
                current: "-".into(),
                desired: format!(
                    "{} {CONSECUTIVE_ANSWERS} answers in a row",
                    d.targets.get(cx.target).cloned().unwrap_or_default()
                ),
                change: false,
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let resolved =
            futures::future::try_join_all(self.records.iter().map(|d| Self::one(cx, d))).await?;
        let in_sync_at = resolved
            .iter()
            .filter_map(|r| r.first_at)
            .max()
            .unwrap_or_else(Utc::now);
        VerifyResolutionOutput {
            in_sync_at,
            resolved,
            servers: cx.clouds.resolver.servers(),
            consecutive: CONSECUTIVE_ANSWERS,
            basis: format!(
                "names resolved to the target at {} ({CONSECUTIVE_ANSWERS} answers in a row; first of them)",
                cx.clouds.resolver.servers()
            ),
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_stops_at_the_first_of_n_answers_in_a_row_and_a_miss_resets_it() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default();
        let target = "web-usw2.example.com.";
        let hit = || vec!["WEB-USW2.example.com".to_string()];
        let miss = || vec!["web-use1.example.com.".to_string()];
        let mut s = Streak::default();
        assert_eq!(s.push(t(1), hit(), target), None);
        assert_eq!(s.push(t(2), miss(), target), None);
        assert_eq!(s.push(t(3), hit(), target), None);
        assert_eq!(s.push(t(4), hit(), target), None);
        assert_eq!(s.push(t(5), hit(), target), Some(t(3)));
        assert_eq!(s.asked, 5);
        assert!(!names_target(&[], target));
        assert!(!names_target(&[target.into(), "other.".into()], target));
    }
}
