//! `check`: an HTTP probe in the target region must answer the expected
//! status before traffic moves there. Retried until it passes or the budget
//! ends; a check that never passes halts the run *before* the DNS switch,
//! with the probe's last answer in the message: its status and the length
//! of its body, never the body (what a service says is not drctl's to copy
//! into errors, journals, reports and notifications; `-v` shows its start
//! on the terminal). A check whose address is refused (link-local, cloud
//! metadata: `cloud::http`) fails at once: it would never pass.
//!
//! The same probe runs in preflight (once: is the target healthy now?), in a
//! dry run and in `status`.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::CloudError;
use crate::plan::duration::parse_duration;
use crate::steps::graph::{Builder, Phase, RunMode};

/// Probe one check resource in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Plan resource id.
    pub resource: String,
    /// URL to GET in the target region.
    pub url: String,
    /// Target region.
    pub region: String,
    /// Status that means healthy.
    pub expect_status: u16,
    /// Per-probe timeout.
    pub timeout: Duration,
}

/// Part of the recovery (traffic moves after it).
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &["http:GET"],
        ..Cost::NONE
    },
    ..Traits::RECOVERY
};

/// A failover (and a drill) probes every check of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !matches!(b.mode, RunMode::Failover { .. } | RunMode::Drill { .. }) {
        return;
    }
    let steps: Vec<Check> = b
        .plan
        .spec
        .check
        .iter()
        .map(|c| Check {
            resource: c.id.clone(),
            url: c.regions[b.target].clone(),
            region: b.target.to_string(),
            expect_status: c.expect_status,
            timeout: parse_duration(&c.timeout).unwrap_or(Duration::from_secs(5)),
        })
        .collect();
    for c in steps {
        let description = format!("probe {}, expect HTTP {}", c.url, c.expect_status);
        b.add(
            StepKind::Check(c.clone()),
            Some(c.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::Check),
            vec![c.resource],
            description,
        );
    }
}

/// What a probe that did not pass found.
enum Miss {
    /// Another status, or no answer (in words): it may pass later.
    Answer(String),
    /// The address is one a check may not reach: it never passes.
    Refused(CloudError),
}

impl Miss {
    fn text(&self) -> String {
        match self {
            Self::Answer(t) => t.clone(),
            Self::Refused(e) => e.message.clone(),
        }
    }
}

/// An answer as a check records it: the status and the body's length.
pub fn answer_text(status: u16, body_bytes: u64) -> String {
    match body_bytes {
        0 => format!("HTTP {status}, empty body"),
        1 => format!("HTTP {status}, 1 byte"),
        n => format!("HTTP {status}, {n} bytes"),
    }
}

impl Check {
    /// One probe: `Ok(status)` when it answered the expected status, else
    /// what it found instead.
    async fn probe(&self, cx: &Cx<'_>) -> Result<u16, Miss> {
        match cx
            .clouds
            .probe
            .get(&self.region, &self.url, self.timeout)
            .await
        {
            Ok(a) if a.status == self.expect_status => Ok(a.status),
            Ok(a) => Err(Miss::Answer(answer_text(a.status, a.body_bytes))),
            Err(e) if e.code.as_deref() == Some(crate::cloud::http::REFUSED_CODE) => {
                Err(Miss::Refused(e))
            }
            Err(e) => Err(Miss::Answer(e.message)),
        }
    }
}

/// What a health check publishes: the answer that passed, and how many
/// probes it took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutput {
    /// The URL probed.
    pub url: String,
    /// The HTTP status that passed.
    pub status: u16,
    /// Probes made.
    pub attempts: u32,
}

impl StepOutput for CheckOutput {
    const KIND: KindName = KindName::Check;
}

#[async_trait]
impl super::Ready for Check {
    async fn readiness(&self, cx: &Cx<'_>) -> Vec<Finding> {
        self.preflight(cx).await
    }
}

#[async_trait]
impl Action for Check {
    /// Probed once, and never blocking here: the target usually becomes
    /// healthy only once the run has scaled and promoted it, so a failing
    /// probe at preflight is reported, and the check step (after scale and
    /// promote, before the switch) is what halts the run.
    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("check {}", self.resource);
        let state = match self.probe(cx).await {
            Ok(s) => format!("{}: HTTP {s}", self.url),
            Err(Miss::Refused(e)) => {
                return vec![Finding::blocks(&what, &self.region, &self.url, e.message)];
            }
            Err(Miss::Answer(got)) => format!(
                "{}: {got} (expected HTTP {}; must pass before traffic moves)",
                self.url, self.expect_status
            ),
        };
        vec![Finding::ok(&what, &self.region, state)]
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let current = match self.probe(cx).await {
            Ok(s) => format!("HTTP {s}"),
            Err(miss) => miss.text(),
        };
        Ok(vec![Planned {
            call: "http:GET".into(),
            resource: self.url.clone(),
            region: self.region.clone(),
            change: false,
            desired: format!("HTTP {}", self.expect_status),
            current,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let last = std::sync::Mutex::new(String::new());
        let status = wait_for(
            cx,
            &format!("{} to answer HTTP {}", self.url, self.expect_status),
            || async {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match self.probe(cx).await {
                    Ok(s) => Ok(Some(s)),
                    Err(Miss::Refused(e)) => Err(StepFailure::from(e)),
                    Err(Miss::Answer(got)) => {
                        if let Ok(mut l) = last.lock() {
                            *l = got;
                        }
                        Ok(None)
                    }
                }
            },
        )
        .await
        .map_err(|e| match e {
            StepFailure::Timeout { what, waited } => StepFailure::Timeout {
                what: format!(
                    "{what} (last answer: {})",
                    last.lock().map(|l| l.clone()).unwrap_or_default()
                ),
                waited,
            },
            other => other,
        })?;
        CheckOutput {
            url: self.url.clone(),
            status,
            attempts: attempts.into_inner(),
        }
        .to_output()
    }
}
