//! `evidence`: store the run's evidence pack (see [`crate::evidence`]) on
//! every evidence destination of the plan: the journal (up to this step),
//! the before/after state of every touched resource as the cloud described
//! it (preflight's reads before, the steps' read-backs after, and what the
//! other regions looked like when they answered), the run's report, and a
//! manifest of SHA-256 digests and sizes.
//!
//! Objects are written create-only (conditional writes), so evidence already
//! stored is never overwritten, not even by a resumed run; on S3 they are
//! written under Object Lock retention (the plan's or the tier's) where the
//! bucket has Object Lock. The step runs after the RTO clock has stopped
//! (it depends on the verify phase), so none of this delays a recovery.
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
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::preflight::PreflightOutput;
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::{ObjectScheme, ObjectUrl, PutOutcome, Retention};
use crate::evidence::{JournalRef, MANIFEST, Manifest, ManifestObject, RetentionNote};
use crate::journal::event::ErrorClass;
use crate::steps::graph::{Builder, Phase};

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
    irreversible: None,
    endpoint: None,
    rpo: None,
    time: Cost {
        calls: &[
            "s3:PutObject",
            "s3:PutObject",
            "s3:PutObject",
            "s3:PutObject",
        ],
        waits: &[],
        polls: None,
    },
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

/// What the evidence step publishes: the packs stored, the destinations
/// that did not take theirs, and what the other regions looked like.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvidenceOutput {
    /// One pack per destination that holds its manifest.
    #[serde(default)]
    pub stored: Vec<StoredPack>,
    /// The destinations that did not (absent in journals written before
    /// it existed: then a failure failed the step).
    #[serde(default)]
    pub missing: Vec<MissingPack>,
    /// The other regions, read beside the run (`null` in a dry run).
    #[serde(default)]
    pub other_regions: Value,
}

impl StepOutput for EvidenceOutput {
    const KIND: KindName = KindName::Evidence;
}

/// A pack stored on one destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPack {
    /// The destination (`s3://...`, `gs://...`).
    pub destination: String,
    /// The manifest's object URL.
    pub manifest: String,
    /// The manifest's SHA-256 as stored.
    pub manifest_sha256: String,
    /// Journal records the pack holds.
    pub journal_records: usize,
    /// The journal's chain head in the pack.
    pub journal_head: String,
    /// How the store keeps the objects.
    pub retention: RetentionNote,
    /// The pack's objects.
    pub objects: Vec<ManifestObject>,
}

/// A destination that did not take its pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MissingPack {
    /// The destination.
    pub destination: Option<String>,
    /// Why.
    pub error: Option<String>,
    /// The error's class.
    pub kind: Option<ErrorClass>,
    /// The region involved, when known.
    pub region: Option<String>,
}

impl Evidence {
    /// Whether a run of this step left nothing to do: every destination holds
    /// its manifest. Outputs without the `missing` list (journals written
    /// before it existed) were complete, since a failure then failed the step.
    pub fn complete(outputs: &Value) -> bool {
        EvidenceOutput::read(outputs).is_none_or(|o| o.missing.is_empty())
    }

    /// One sentence per destination `step`'s outputs say was not written.
    pub fn gaps(step: &str, outputs: &Value) -> Vec<String> {
        EvidenceOutput::read(outputs)
            .map(|o| o.missing)
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                format!(
                    "{step}: evidence not stored on {}: {}",
                    m.destination.as_deref().unwrap_or("?"),
                    m.error.as_deref().unwrap_or("unknown error")
                )
            })
            .collect()
    }
}

/// How the objects of a pack on `base` are to be kept, and the note the
/// manifest carries about it.
async fn retention_for(
    cx: &Cx<'_>,
    base: &ObjectUrl,
    now: chrono::DateTime<Utc>,
) -> (Option<Retention>, RetentionNote) {
    let wanted = cx.plan.evidence_retention();
    let from_plan = cx
        .plan
        .spec
        .evidence
        .as_ref()
        .is_some_and(|e| e.retention.is_some());
    let note = |mode, until, source: String| RetentionNote {
        mode,
        until,
        source,
    };
    if base.scheme == ObjectScheme::Gcs {
        return (
            None,
            note(
                None,
                None,
                "the bucket's retention policy, if it has one: GCS applies it itself, and each object's retained_until is the expiry GCS reported (absent: the bucket has none)"
                    .into(),
            ),
        );
    }
    match cx.clouds.objects.bucket_lock(cx.target, base).await {
        Ok(lock) if lock.object_lock == Some(true) => match wanted {
            Some(r) => {
                let kept = r.from(now);
                let source = if from_plan {
                    "the plan's [evidence] retention"
                } else {
                    "the tier's evidence_retention"
                };
                (
                    Some(kept),
                    note(Some(kept.mode), Some(kept.until), source.into()),
                )
            }
            None => match lock.default_retention {
                Some((mode, days)) => (
                    None,
                    note(
                        Some(mode),
                        // The bucket's answer: saturating, whatever it says.
                        Some(crate::plan::duration::after(
                            now,
                            std::time::Duration::from_secs(u64::from(days) * 86_400),
                        )),
                        format!("the bucket's default Object Lock retention ({days} days)"),
                    ),
                ),
                None => (
                    None,
                    note(None, None, "none: Object Lock without a default retention, and no retention in the plan or tier".into()),
                ),
            },
        },
        Ok(_) => (
            None,
            note(
                None,
                None,
                "none: the bucket has no Object Lock (see terraform/evidence.tf)".into(),
            ),
        ),
        Err(e) => (
            None,
            note(
                None,
                None,
                format!("unknown: the bucket's Object Lock could not be read ({e})"),
            ),
        ),
    }
}

/// Writes one object of a pack create-only; when an earlier attempt of the
/// step stored it already, the entry describes what is stored (read back),
/// never what this attempt would have written.
async fn put_one(
    cx: &Cx<'_>,
    url: ObjectUrl,
    name: &str,
    body: &[u8],
    retention: Option<Retention>,
) -> Result<(ManifestObject, Bytes), StepFailure> {
    let url = &url;
    let kept = cx
        .clouds
        .objects
        .put_retained(cx.target, url, Bytes::copy_from_slice(body), retention)
        .await?;
    let stored = match kept.outcome {
        PutOutcome::Written(_) => Bytes::copy_from_slice(body),
        PutOutcome::AlreadyExists => cx
            .clouds
            .objects
            .get(cx.target, url)
            .await?
            .unwrap_or_else(|| Bytes::copy_from_slice(body)),
    };
    Ok((
        ManifestObject {
            name: name.to_string(),
            object: url.to_string(),
            sha256: crate::evidence::sha256(&stored),
            bytes: stored.len(),
            already_present: kept.outcome == PutOutcome::AlreadyExists,
            retained_until: kept.retained_until,
        },
        stored,
    ))
}

/// Writes the objects and then the manifest of the pack to one destination.
async fn store(
    cx: &Cx<'_>,
    dest: &str,
    files: &[(&str, Vec<u8>)],
) -> Result<StoredPack, StepFailure> {
    let dest_url = ObjectUrl::parse(dest)
        .map_err(|e| StepFailure::state(e.to_string(), "fix [evidence] in the plan", dest, "-"))?;
    let base = dest_url.join(cx.run_id);
    let now = Utc::now();
    let (retention, note) = retention_for(cx, &dest_url, now).await;
    // Once before the pack's objects (written at once), once before the
    // manifest: each write is create-only, so a stale writer adds nothing
    // that a newer run wrote.
    cx.fenced(&format!("s3:PutObject of the pack under {base}"), cx.target)
        .await?;
    let writes = files
        .iter()
        .map(|(name, body)| put_one(cx, base.join(name), name, body, retention));
    let written: Vec<(ManifestObject, Bytes)> = join_all(writes)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let journal = written
        .iter()
        .find(|(o, _)| o.name == crate::evidence::JOURNAL)
        .map(|(_, b)| JournalRef::of(&String::from_utf8_lossy(b)))
        .unwrap_or_else(|| JournalRef::of(""));
    let manifest = Manifest {
        schema: crate::evidence::SCHEMA.into(),
        run_id: cx.run_id.to_string(),
        plan: cx.plan.name().to_string(),
        plan_digest: cx.plan.digest.clone(),
        created_at: now,
        destination: dest.to_string(),
        journal,
        retention: note,
        objects: written.into_iter().map(|(o, _)| o).collect(),
    };
    // The manifest last: present means every object it lists is stored.
    let body = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    cx.fenced(&format!("s3:PutObject {}", base.join(MANIFEST)), cx.target)
        .await?;
    let (entry, stored) = put_one(cx, base.join(MANIFEST), MANIFEST, &body, retention).await?;
    // An earlier attempt's manifest is the one that counts.
    let manifest: Manifest = serde_json::from_slice(&stored).unwrap_or(manifest);
    Ok(StoredPack {
        destination: dest.to_string(),
        manifest: entry.object,
        manifest_sha256: entry.sha256,
        journal_records: manifest.journal.records,
        journal_head: manifest.journal.head,
        retention: manifest.retention,
        objects: manifest.objects,
    })
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
                desired: "journal.jsonl, state.json, report.json, manifest.json".into(),
                change: true,
            })
            .collect())
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        if self.destinations.is_empty() {
            // Nowhere to store a pack: nothing is read or rendered (a
            // report of the whole run per plan is the costliest thing a
            // run of hundreds of plans does).
            let others = match &cx.side {
                Some(side) => side.clone().await[cx.plan.name()].clone(),
                None => Value::Null,
            };
            return EvidenceOutput {
                stored: Vec::new(),
                missing: Vec::new(),
                other_regions: others,
            }
            .to_output();
        }
        let journal = cx.journal.read(cx.run_id).await.map_err(|e| {
            StepFailure::state(
                format!("cannot read the journal: {e}"),
                "check the state directory",
                cx.run_id,
                "-",
            )
        })?;
        let prefix = format!("{}/", cx.plan.name());
        let steps: serde_json::Map<String, Value> = cx
            .outputs
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // Before: what preflight read of every resource before anything
        // changed (the cloud's own descriptions, its facts). After: what
        // each step read back once it had acted (a promoted instance, the
        // records INSYNC, the group in service), in its outputs. No new
        // reads: the pack records what the run saw, when it saw it.
        let before = cx
            .output_of::<PreflightOutput>(None)
            .map(|p| json!({ "read_at": p.read_at, "resources": p.checked }))
            .unwrap_or(Value::Null);
        let after: serde_json::Map<String, Value> = steps
            .iter()
            .filter(|(k, _)| !k.ends_with("/preflight"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // What the other regions looked like, read beside the run (bounded,
        // once, never on the critical path): "unreachable" during an outage.
        let others = match &cx.side {
            Some(side) => side.clone().await[cx.plan.name()].clone(),
            None => Value::Null,
        };
        let state = serde_json::to_vec_pretty(&json!({
            "plan": cx.plan.name(),
            "target": cx.target,
            "before": before,
            "after": after,
            "other_regions": &others,
        }))
        .unwrap_or_default();
        // The run's report as it stands (its steps before evidence have
        // ended), from the same journal text as the pack holds.
        let report = cx
            .render_report
            .map(|render| render(cx.plan, cx.run_id, journal.clone()));
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            (crate::evidence::JOURNAL, journal.into_bytes()),
            (crate::evidence::STATE, state),
        ];
        if let Some(report) = report {
            files.push((crate::evidence::REPORT, report.into_bytes()));
        }
        let dests = &self.destinations;
        let results = join_all(dests.iter().map(|d| store(cx, d, &files))).await;
        let mut stored = Vec::new();
        let mut missing = Vec::new();
        for (dest, r) in dests.iter().zip(results) {
            match r {
                Ok(v) => stored.push(v),
                // A lost lease is no missing destination: the run ends here.
                Err(e @ StepFailure::Fenced { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(destination = %dest, "evidence not stored: {e}");
                    let rec = e.to_record();
                    missing.push(MissingPack {
                        destination: Some(dest.clone()),
                        error: Some(rec.message),
                        kind: Some(rec.kind),
                        region: rec.region,
                    });
                }
            }
        }
        EvidenceOutput {
            stored,
            missing,
            other_regions: others,
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::LockMode;
    use crate::cloud::fake::FakeCloud;
    use crate::evidence::tests::journal;
    use crate::journal::MemoryStore;
    use crate::plan::Plan;

    const RUN: &str = "20261123T100000Z-payments-ab12";

    fn payments() -> Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .expect("payments")
    }

    /// The renderer the engine hands the step (here a stand-in naming the
    /// run: the real one, `report::running_json`, is checked by the engine's
    /// `the_pack_holds_the_runs_report`).
    fn report_of(_: &Plan, run_id: &str, _: String) -> String {
        format!("{{\"run\":\"{run_id}\"}}")
    }

    /// Runs the evidence step of `plan` against `f` with journal `text`.
    async fn run(f: &FakeCloud, plan: &Plan, text: &str) -> Value {
        let clouds = f.clouds();
        let store = Arc::new(MemoryStore::new());
        store.set_text(RUN, text);
        let outputs = BTreeMap::new();
        let g = crate::steps::graph::compile(plan, "us-east-1").expect("graph");
        let cx = Cx {
            clouds: &clouds,
            plan,
            target: "us-east-1",
            run_id: RUN,
            outputs: &outputs,
            deadline: Instant::now() + Duration::from_secs(30),
            poll: (Duration::from_millis(1), Duration::from_millis(5)),
            journal: store,
            lag_window: Duration::from_secs(900),
            waiting: None,
            side: None,
            graph: &g.steps,
            rpo_readings: None,
            attempt: 1,
            drill_expires: None,
            render_report: Some(report_of),
            fence: None,
            zone_batches: None,
        };
        let step = Evidence {
            destinations: plan
                .spec
                .evidence
                .as_ref()
                .expect("[evidence]")
                .destinations
                .clone(),
        };
        step.run(&cx).await.expect("evidence stored")
    }

    fn manifest(f: &FakeCloud, dest: &str) -> Manifest {
        let key = format!("{dest}/{RUN}/manifest.json");
        serde_json::from_slice(&f.state().objects[&key]).expect("a manifest")
    }

    #[tokio::test]
    async fn objects_are_kept_under_the_tiers_retention_where_the_bucket_has_object_lock() {
        let f = FakeCloud::new();
        f.state()
            .locked_buckets
            .insert("s3://drctl-evidence-use1".into());
        let plan = payments();
        let out = run(&f, &plan, &journal(3)).await;
        assert_eq!(out["missing"], json!([]), "{out:#}");
        let m = manifest(&f, "s3://drctl-evidence-use1/payments");
        assert_eq!(m.retention.mode, Some(LockMode::Governance));
        assert_eq!(m.retention.source, "the tier's evidence_retention");
        let retained = f.state().retained.clone();
        let s3: Vec<&String> = retained.keys().filter(|k| k.starts_with("s3://")).collect();
        assert_eq!(s3.len(), 4, "every object and the manifest: {retained:#?}");
        let days = (retained[s3[0]].until - Utc::now()).num_days();
        assert!((364..=365).contains(&days), "{days}");
        // GCS keeps by the bucket's policy: nothing is asked of it.
        assert!(retained.keys().all(|k| !k.starts_with("gs://")));
        let g = manifest(&f, "gs://drctl-evidence/payments");
        assert!(g.retention.source.contains("retention policy"), "{g:?}");
    }

    #[tokio::test]
    async fn a_bucket_without_object_lock_is_said_not_pretended() {
        let f = FakeCloud::new();
        let mut plan = payments();
        if let Some(e) = plan.spec.evidence.as_mut() {
            e.retention = Some(crate::plan::spec::RetentionSpec {
                mode: LockMode::Compliance,
                days: 30,
            });
        }
        run(&f, &plan, &journal(2)).await;
        let m = manifest(&f, "s3://drctl-evidence-use1/payments");
        assert_eq!(m.retention.mode, None);
        assert!(
            m.retention
                .source
                .starts_with("none: the bucket has no Object Lock"),
            "{m:?}"
        );
        assert!(f.state().retained.is_empty());
    }

    #[tokio::test]
    async fn regression_a_rerun_describes_the_journal_already_stored_not_its_own() {
        // An earlier attempt stored the journal as it was then (2 records)
        // and died before the manifest; the rerun's journal is longer. The
        // manifest must describe what is stored, or verification would call
        // the pack altered.
        let f = FakeCloud::new();
        let plan = payments();
        let earlier = journal(2);
        let url = ObjectUrl::parse(&format!(
            "s3://drctl-evidence-use1/payments/{RUN}/journal.jsonl"
        ))
        .expect("url");
        f.clouds()
            .objects
            .put(
                "us-east-1",
                &url,
                Bytes::from(earlier.clone()),
                crate::cloud::PutMode::CreateOnly,
            )
            .await
            .expect("put");
        let out = run(&f, &plan, &journal(4)).await;
        let m = manifest(&f, "s3://drctl-evidence-use1/payments");
        let j = &m.objects[0];
        assert_eq!(j.name, "journal.jsonl");
        assert!(j.already_present);
        assert_eq!(j.sha256, crate::evidence::sha256(earlier.as_bytes()));
        assert_eq!(m.journal, JournalRef::of(&earlier));
        assert_eq!(m.journal.records, 2);
        // The other destination had nothing: it holds the longer journal.
        assert_eq!(
            manifest(&f, "gs://drctl-evidence/payments").journal.records,
            4
        );
        // The journal records each manifest's digest, for `audit verify`.
        let stored = out["stored"].as_array().expect("stored");
        assert!(
            stored.iter().all(|s| s["manifest_sha256"].is_string()),
            "{out:#}"
        );
    }
}
