//! `evidence`: store the run's journal (so far), the before/after state of
//! every touched resource (the steps' journaled outputs, plus what the other
//! regions looked like, when they answered) and a manifest of SHA-256 digests
//! on every evidence destination of the plan.
//!
//! Objects are written create-only (conditional writes), so evidence already
//! stored is never overwritten, not even by a resumed run.
//!
//! Why a destination that does not answer does not fail the step: evidence is
//! kept *about* a failover, after traffic has moved; during a regional outage
//! the bucket in the dead region cannot answer, and turning a successful
//! failover into a failed one would tell the on-call engineer the wrong thing.
//! So every destination is written concurrently, each one's failure is
//! recorded in the step's outputs, the run ends "succeeded, evidence
//! incomplete" (exit 0, with a warning), and `drctl runs resume` writes what
//! is missing later ([`Evidence::complete`] tells the engine to run it again).

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::future::join_all;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Action, Cx, Finding, Planned, StepFailure, StepKind, Traits};
use crate::cloud::{ObjectUrl, PutMode, PutOutcome};
use crate::graph::{Builder, Phase};

/// Capture evidence for one plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Where to store it (`s3://bucket/prefix`, `gs://bucket/prefix`).
    pub destinations: Vec<String>,
}

/// Bookkeeping after the recovery: not part of the RTO.
pub const TRAITS: Traits = Traits {
    recovery: false,
    ends_rto: false,
    irreversible: false,
    rpo: None,
};

/// One evidence step per plan and run, last.
pub fn compile(b: &mut Builder<'_>) {
    let destinations = b
        .plan
        .spec
        .evidence
        .as_ref()
        .map(|e| e.destinations.clone())
        .unwrap_or_default();
    b.add(
        StepKind::Evidence(Evidence { destinations }),
        None,
        Phase::Evidence,
        vec![],
        "store before/after state, the journal and a manifest".into(),
    );
}

impl Evidence {
    /// Whether a run of this step left nothing to do: every destination holds
    /// its manifest. Outputs without the `missing` list (journals written
    /// before it existed) were complete, since a failure then failed the step.
    pub fn complete(outputs: &Value) -> bool {
        outputs["missing"].as_array().is_none_or(|m| m.is_empty())
    }

    /// One sentence per destination `step`'s outputs say was not written.
    pub fn gaps(step: &str, outputs: &Value) -> Vec<String> {
        outputs["missing"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                format!(
                    "{step}: evidence not stored on {}: {}",
                    m["destination"].as_str().unwrap_or("?"),
                    m["error"].as_str().unwrap_or("unknown error")
                )
            })
            .collect()
    }
}

/// Writes the objects and the manifest to one destination.
async fn store(cx: &Cx<'_>, dest: &str, files: &[(&str, Vec<u8>)]) -> Result<Value, StepFailure> {
    let base = ObjectUrl::parse(dest)
        .map_err(|e| StepFailure::state(e.to_string(), "fix [evidence] in the plan", dest, "-"))?
        .join(cx.run_id);
    let via = cx.target;
    let writes = files.iter().map(|(name, body)| {
        let url = base.join(name);
        async move {
            let outcome = cx
                .clouds
                .objects
                .put(via, &url, Bytes::from(body.clone()), PutMode::CreateOnly)
                .await?;
            Ok::<_, StepFailure>(json!({
                "object": url.to_string(),
                "sha256": hex::encode(Sha256::digest(body)),
                "bytes": body.len(),
                "already_present": outcome == PutOutcome::AlreadyExists,
            }))
        }
    });
    let manifest: Vec<Value> = join_all(writes)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let m = json!({ "run_id": cx.run_id, "plan": cx.plan.name(), "plan_digest": cx.plan.digest, "created_at": Utc::now(), "objects": manifest });
    // The manifest last: present means every object it lists is stored.
    let url = base.join("manifest.json");
    cx.clouds
        .objects
        .put(
            via,
            &url,
            Bytes::from(serde_json::to_vec_pretty(&m).unwrap_or_default()),
            PutMode::CreateOnly,
        )
        .await?;
    Ok(json!({ "destination": dest, "manifest": url.to_string(), "objects": m["objects"] }))
}

#[async_trait]
impl Action for Evidence {
    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads this kind's resources itself, in more detail.
        Vec::new()
    }

    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // Evidence never blocks a failover: a destination that does not
        // answer is recorded and written later (see the module doc).
        Vec::new()
    }

    fn settled(&self, outputs: &Value) -> bool {
        Self::complete(outputs)
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        Ok(self
            .destinations
            .clone()
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
        // What the other regions looked like, read beside the run (bounded,
        // once, never on the critical path): "unreachable" during an outage.
        let others = match &cx.side {
            Some(side) => side.clone().await[cx.plan.name()].clone(),
            None => Value::Null,
        };
        let state = serde_json::to_vec_pretty(
            &json!({ "plan": cx.plan.name(), "target": cx.target, "steps": state, "other_regions": &others }),
        )
        .unwrap_or_default();
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("journal.jsonl", journal.into_bytes()),
            ("state.json", state),
        ];
        let dests = &self.destinations;
        let results = join_all(dests.iter().map(|d| store(cx, d, &files))).await;
        let mut stored = Vec::new();
        let mut missing = Vec::new();
        for (dest, r) in dests.iter().zip(results) {
            match r {
                Ok(v) => stored.push(v),
                Err(e) => {
                    tracing::warn!(destination = %dest, "evidence not stored: {e}");
                    let rec = e.to_record();
                    missing.push(json!({ "destination": dest, "error": rec.message, "kind": rec.kind, "region": rec.region }));
                }
            }
        }
        Ok(json!({ "stored": stored, "missing": missing, "other_regions": others }))
    }
}
