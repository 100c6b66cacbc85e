//! `check`: an HTTP probe in the target region must answer the expected status
//! before traffic moves there. Retried until it passes or the budget ends.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Action, Cx, Planned, StepFailure, wait_for};
use crate::plan::duration::parse_duration;

/// Probe one check resource in the target region.
pub struct Check {
    /// Plan resource id.
    pub resource: String,
}

#[async_trait]
impl Action for Check {
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let c = cx
            .plan
            .spec
            .check
            .iter()
            .find(|c| c.id == self.resource)
            .expect("graph steps name plan resources");
        Ok(vec![Planned {
            call: "http:GET".into(),
            resource: c.regions[cx.target].clone(),
            region: cx.target.into(),
            current: "not probed (dry run)".into(),
            desired: format!("HTTP {}", c.expect_status),
            change: false,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let c = cx
            .plan
            .spec
            .check
            .iter()
            .find(|c| c.id == self.resource)
            .expect("graph steps name plan resources");
        let url = c.regions[cx.target].clone();
        let timeout = parse_duration(&c.timeout).unwrap_or(Duration::from_secs(5));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| {
                StepFailure::state(
                    format!("cannot build an HTTP client: {e}"),
                    "this is a bug; report it",
                    &url,
                    cx.target,
                )
            })?;
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let last = std::sync::Mutex::new(String::new());
        let note = |s: String| {
            if let Ok(mut l) = last.lock() {
                *l = s;
            }
        };
        let status = wait_for(
            cx,
            &format!("{url} to answer HTTP {}", c.expect_status),
            || {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let client = client.clone();
                let url = url.clone();
                let note = &note;
                async move {
                    match client.get(&url).send().await {
                        Ok(r) if r.status().as_u16() == c.expect_status => {
                            Ok(Some(r.status().as_u16()))
                        }
                        Ok(r) => {
                            note(format!("HTTP {}", r.status().as_u16()));
                            Ok(None)
                        }
                        Err(e) => {
                            note(e.to_string());
                            Ok(None)
                        }
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
        let attempts = attempts.into_inner();
        Ok(json!({ "url": url, "status": status, "attempts": attempts }))
    }
}
