//! `evidence`: store the run's journal (so far), the before/after state of
//! every touched resource (the steps' journaled outputs) and a manifest of
//! SHA-256 digests on every evidence destination of the plan.
//!
//! Objects are written create-only (conditional writes), so evidence already
//! stored is never overwritten, not even by a resumed run.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Action, Cx, Planned, StepFailure};
use crate::cloud::{ObjectUrl, PutMode, PutOutcome};

/// Capture evidence for one plan.
pub struct Evidence;

fn destinations(cx: &Cx<'_>) -> Vec<String> {
    cx.plan
        .spec
        .evidence
        .as_ref()
        .map(|e| e.destinations.clone())
        .unwrap_or_default()
}

#[async_trait]
impl Action for Evidence {
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(destinations(cx)
            .into_iter()
            .map(|d| Planned {
                call: if d.starts_with("gs://") {
                    "gcs:WriteObject (if-generation-match 0)".into()
                } else {
                    "s3:PutObject (If-None-Match *)".into()
                },
                resource: format!("{d}/{}/", cx.run_id),
                region: "-".into(),
                current: "-".into(),
                desired: "journal.jsonl, state.json, manifest.json".into(),
                change: true,
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let journal = cx.journal.read(cx.run_id).await.map_err(|e| {
            StepFailure::state(
                format!("cannot read the journal: {e}"),
                "check the state directory",
                cx.run_id,
                "-",
            )
        })?;
        let prefix = format!("{}/", cx.plan.name());
        let state: serde_json::Map<String, Value> = cx
            .outputs
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let state = serde_json::to_vec_pretty(
            &json!({ "plan": cx.plan.name(), "target": cx.target, "steps": state }),
        )
        .unwrap_or_default();
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("journal.jsonl", journal.into_bytes()),
            ("state.json", state),
        ];
        let mut stored = Vec::new();
        for dest in destinations(cx) {
            let base = ObjectUrl::parse(&dest)
                .map_err(|e| {
                    StepFailure::state(e.to_string(), "fix [evidence] in the plan", &dest, "-")
                })?
                .join(cx.run_id);
            let mut manifest = Vec::new();
            for (name, body) in &files {
                let url = base.join(name);
                let outcome = cx
                    .clouds
                    .objects
                    .put(&url, Bytes::from(body.clone()), PutMode::CreateOnly)
                    .await?;
                manifest.push(json!({ "object": url.to_string(), "sha256": hex::encode(Sha256::digest(body)), "bytes": body.len(), "already_present": outcome == PutOutcome::AlreadyExists }));
            }
            let m = json!({ "run_id": cx.run_id, "plan": cx.plan.name(), "plan_digest": cx.plan.digest, "created_at": Utc::now(), "objects": manifest });
            let url = base.join("manifest.json");
            cx.clouds
                .objects
                .put(
                    &url,
                    Bytes::from(serde_json::to_vec_pretty(&m).unwrap_or_default()),
                    PutMode::CreateOnly,
                )
                .await?;
            stored.push(json!({ "destination": dest, "manifest": url.to_string(), "objects": m["objects"] }));
        }
        Ok(json!({ "stored": stored }))
    }
}
