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
//! Nothing found is adopted. Each attempt of the step writes at a place of
//! its own ([`crate::evidence::pack_base`]: `<destination>/<run id>/`, then
//! `.../attempt-<n>/` for a rerun), so an object already at one of its
//! places was not written by it, unless it holds exactly the bytes it
//! writes (its own write whose answer was lost): anything else, a manifest
//! or an object placed there before the run wrote it, is refused, named,
//! and the destination is recorded as missing. The manifest carries the
//! run's nonce (from its `run_started` record) and is signed with the run
//! key when the run holds it (the key comes with the journal store:
//! [`crate::journal::JournalStore::keys`]).
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

use super::PreflightOutput;
use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};
use crate::cloud::{ObjectScheme, ObjectUrl, PutOutcome, Retention};
use crate::evidence::{JournalRef, MANIFEST, Manifest, ManifestObject, RetentionNote};
use crate::journal::event::{ErrorClass, Event, Record};
use crate::steps::graph::{Builder, Phase};

/// Capture evidence for one plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Where to store it (`s3://bucket/prefix`, `gs://bucket/prefix`).
    pub destinations: Vec<String>,
}

/// Bookkeeping after the recovery: not part of the RTO.
pub const TRAITS: Traits = Traits {
    time: Cost {
        calls: &[
            "s3:PutObject",
            "s3:PutObject",
            "s3:PutObject",
            "s3:PutObject",
        ],
        ..Cost::NONE
    },
    ..Traits::OFF_PATH
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

    /// Splits the destinations for this attempt: the packs an earlier
    /// attempt stored on destinations still configured (kept as recorded),
    /// and the destinations that still have no pack (written now).
    fn still_to_store(&self, earlier: Option<&EvidenceOutput>) -> (Vec<StoredPack>, Vec<&String>) {
        let kept: Vec<StoredPack> = earlier
            .map(|o| {
                o.stored
                    .iter()
                    .filter(|p| self.destinations.contains(&p.destination))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let dests: Vec<&String> = self
            .destinations
            .iter()
            .filter(|d| !kept.iter().any(|p| &p.destination == *d))
            .collect();
        (kept, dests)
    }
}

/// What the other regions looked like, read beside the run (bounded,
/// once, never on the critical path): "unreachable" during an outage,
/// `null` when the run reads no other regions.
async fn other_regions(cx: &Cx<'_>) -> Value {
    match &cx.side {
        Some(side) => side.clone().await[cx.plan.name()].clone(),
        None => Value::Null,
    }
}

/// The pack's state file: the plan, the target, and every touched resource
/// before and after the run, with the other regions beside it.
fn state_json(cx: &Cx<'_>, others: &Value) -> Vec<u8> {
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
    serde_json::to_vec_pretty(&json!({
        "plan": cx.plan.name(),
        "target": cx.target,
        "before": before,
        "after": after,
        "other_regions": others,
    }))
    .unwrap_or_default()
}

/// The pack's files, journal first (its nonce is read from there): the
/// journal, the state, and the run's report when the run renders one.
fn pack_files(cx: &Cx<'_>, journal: String, others: &Value) -> Vec<(&'static str, Vec<u8>)> {
    let state = state_json(cx, others);
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
    files
}

/// Sorts each destination's result into the packs stored (after `kept`)
/// and the destinations missing theirs; a lost lease ends the run instead.
fn sort_results(
    kept: Vec<StoredPack>,
    dests: &[&String],
    results: Vec<Result<StoredPack, StepFailure>>,
) -> Result<(Vec<StoredPack>, Vec<MissingPack>), StepFailure> {
    let mut stored = kept;
    let mut missing = Vec::new();
    for (dest, r) in dests.iter().zip(results) {
        match r {
            Ok(v) => stored.push(v),
            // A lost lease is no missing destination: the run ends here.
            Err(e @ StepFailure::Fenced { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(destination = %dest, "evidence not stored: {e}");
                missing.push(missing_pack(dest, &e));
            }
        }
    }
    Ok((stored, missing))
}

/// The record of a destination that did not take its pack, from its error.
fn missing_pack(dest: &str, e: &StepFailure) -> MissingPack {
    let rec = e.to_record();
    MissingPack {
        destination: Some(dest.to_string()),
        error: Some(rec.message),
        kind: Some(rec.kind),
        region: rec.region,
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

/// Writes one object of a pack create-only. An object already there is
/// this attempt's own only when it holds exactly `body` (a write whose
/// answer was lost, sent again); anything else was not written by this
/// run and is refused, named: it is never adopted.
async fn put_one(
    cx: &Cx<'_>,
    url: ObjectUrl,
    name: &str,
    body: &[u8],
    retention: Option<Retention>,
) -> Result<ManifestObject, StepFailure> {
    let url = &url;
    let kept = cx
        .clouds
        .objects
        .put_retained(cx.target, url, Bytes::copy_from_slice(body), retention)
        .await?;
    let already_present = match kept.outcome {
        PutOutcome::Written(_) => {
            read_back(cx, url, body).await?;
            false
        }
        PutOutcome::AlreadyExists => {
            let there = cx.clouds.objects.get(cx.target, url).await?;
            if there.as_deref() != Some(body) {
                return Err(StepFailure::state(
                    format!(
                        "refusing to adopt {url}: it was already there and this run did not write it (placed before the run, or by another writer)"
                    ),
                    format!(
                        "evidence is written create-only and never adopted; find out who wrote it (the bucket's access logs), then `drctl runs resume {}` writes the pack under attempt-N/",
                        cx.run_id
                    ),
                    &url.to_string(),
                    cx.target,
                ));
            }
            true
        }
    };
    Ok(ManifestObject {
        name: name.to_string(),
        object: url.to_string(),
        sha256: crate::evidence::sha256(body),
        bytes: body.len(),
        already_present,
        retained_until: kept.retained_until,
    })
}

/// Reads a written object back: evidence that no reader can read is no
/// evidence, so a write counts only once its bytes come back whole. An
/// object that does not (unreadable, or other bytes) fails its pack,
/// which the run records as missing and a resume writes again under the
/// next attempt's folder.
async fn read_back(cx: &Cx<'_>, url: &ObjectUrl, body: &[u8]) -> Result<(), StepFailure> {
    let fail = |why: String| {
        StepFailure::state(
            format!("wrote {url}, but it does not read back: {why}"),
            format!(
                "evidence counts only once it reads back; `drctl runs resume {}` writes the pack again under attempt-N/ (if it persists, read the object with another client and compare)",
                cx.run_id
            ),
            &url.to_string(),
            cx.target,
        )
    };
    match cx.clouds.objects.get(cx.target, url).await {
        Ok(Some(b)) if b.as_ref() == body => Ok(()),
        Ok(Some(b)) => Err(fail(format!(
            "the store gives {} bytes (SHA-256 {}), not the {} written",
            b.len(),
            crate::evidence::sha256(&b),
            body.len()
        ))),
        Ok(None) => Err(fail("the store says it is not there".into())),
        Err(e) => Err(fail(e.summary())),
    }
}

/// The nonce of the run whose journal is `journal` (its first record's).
fn nonce_in(journal: &str) -> Option<String> {
    let first: Record = serde_json::from_str(journal.lines().next()?).ok()?;
    match first.event {
        Event::RunStarted { nonce, .. } => nonce,
        _ => None,
    }
}

/// Writes the objects and then the manifest of the pack to one destination.
async fn store(
    cx: &Cx<'_>,
    dest: &str,
    files: &[(&str, Vec<u8>)],
    nonce: Option<&str>,
) -> Result<StoredPack, StepFailure> {
    let dest_url = ObjectUrl::parse(dest)
        .map_err(|e| StepFailure::state(e.to_string(), "fix [evidence] in the plan", dest, "-"))?;
    let base = crate::evidence::pack_base(&dest_url, cx.run_id, cx.attempt);
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
    let written: Vec<ManifestObject> = join_all(writes)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let journal = files
        .iter()
        .find(|(name, _)| *name == crate::evidence::JOURNAL)
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
        objects: written,
        nonce: nonce.map(str::to_string),
        signature: None,
    };
    let manifest = match &cx.journal.keys().signer {
        Some(key) => manifest.signed(key),
        None => manifest,
    };
    // The manifest last: present means every object it lists is stored.
    let body = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    cx.fenced(&format!("s3:PutObject {}", base.join(MANIFEST)), cx.target)
        .await?;
    let entry = put_one(cx, base.join(MANIFEST), MANIFEST, &body, retention).await?;
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
    async fn preflight(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // Evidence never blocks a failover: a destination that does not
        // answer is recorded and written later (see the module doc).
        Vec::new()
    }

    fn settled(&self, outputs: &Value) -> super::Settled {
        if Self::complete(outputs) {
            super::Settled::Yes
        } else {
            super::Settled::EvidenceMissing
        }
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
            return EvidenceOutput {
                stored: Vec::new(),
                missing: Vec::new(),
                other_regions: other_regions(cx).await,
            }
            .to_output();
        }
        // A rerun (a destination that did not take its pack last time)
        // writes only what is missing: the packs stored stay as recorded.
        let earlier = cx.output_of::<EvidenceOutput>(None);
        let (kept, dests) = self.still_to_store(earlier.as_ref());
        if dests.is_empty()
            && let Some(earlier) = earlier
        {
            return EvidenceOutput {
                stored: kept,
                missing: Vec::new(),
                other_regions: earlier.other_regions,
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
        let others = other_regions(cx).await;
        let files = pack_files(cx, journal, &others);
        let nonce = files
            .first()
            .and_then(|(_, j)| nonce_in(&String::from_utf8_lossy(j)));
        let results = join_all(dests.iter().map(|d| store(cx, d, &files, nonce.as_deref()))).await;
        let (stored, missing) = sort_results(kept, &dests, results)?;
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
        let store = Arc::new(MemoryStore::new());
        store.set_text(RUN, text);
        run_at(f, plan, store, 1).await
    }

    /// Runs attempt `attempt` of the evidence step of `plan` against `f`,
    /// reading the run's journal from `store` (which holds the run keys).
    async fn run_at(
        f: &FakeCloud,
        plan: &Plan,
        store: Arc<dyn crate::journal::JournalStore>,
        attempt: u32,
    ) -> Value {
        run_after(f, plan, store, attempt, BTreeMap::new()).await
    }

    /// [`run_at`] with the outputs of the steps that succeeded before
    /// (the step's own, when it runs again).
    async fn run_after(
        f: &FakeCloud,
        plan: &Plan,
        store: Arc<dyn crate::journal::JournalStore>,
        attempt: u32,
        outputs: BTreeMap<String, Value>,
    ) -> Value {
        let clouds = f.clouds();
        let g = crate::steps::graph::compile(plan, "us-east-1").expect("graph");
        let cx = Cx {
            run_id: RUN,
            deadline: Instant::now() + Duration::from_secs(30),
            poll: (Duration::from_millis(1), Duration::from_millis(5)),
            journal: store,
            attempt,
            render_report: Some(report_of),
            ..Cx::for_test(&clouds, plan, "us-east-1", &outputs, &g.steps)
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

    /// Puts `body` at `<dest>/<RUN>/<name>`, as a writer of the bucket can.
    async fn pre_place(f: &FakeCloud, dest: &str, name: &str, body: &str) {
        let url = ObjectUrl::parse(&format!("{dest}/{RUN}/{name}")).expect("url");
        f.clouds()
            .objects
            .put(
                "us-east-1",
                &url,
                Bytes::from(body.to_string()),
                crate::cloud::PutMode::CreateOnly,
            )
            .await
            .expect("put");
    }

    #[tokio::test]
    async fn regression_a_pre_placed_manifest_at_the_runs_path_is_refused_not_adopted() {
        // A writer of the bucket puts a manifest of its own where the run's
        // goes, before the run writes it: it used to be read back and
        // described as the run's own.
        let f = FakeCloud::new();
        let plan = payments();
        let s3 = "s3://drctl-evidence-use1/payments";
        let forged = r#"{"schema":"drctl.evidence/v1","run_id":"x"}"#;
        pre_place(&f, s3, MANIFEST, forged).await;
        let out = run(&f, &plan, &journal(3)).await;
        let missing = out["missing"].as_array().expect("missing");
        assert_eq!(missing.len(), 1, "{out:#}");
        assert_eq!(missing[0]["destination"], s3);
        let error = missing[0]["error"].as_str().expect("an error");
        assert!(
            error.contains("refusing to adopt")
                && error.contains(&format!("{s3}/{RUN}/manifest.json")),
            "{error}"
        );
        // Untouched, and the other destination has its pack.
        assert_eq!(
            f.state().objects[&format!("{s3}/{RUN}/manifest.json")],
            forged.as_bytes()
        );
        assert_eq!(out["stored"].as_array().map(Vec::len), Some(1), "{out:#}");
        // So is a pre-placed object of the pack.
        let f = FakeCloud::new();
        pre_place(&f, s3, crate::evidence::STATE, "{}").await;
        let out = run(&f, &plan, &journal(3)).await;
        assert!(
            out["missing"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("state.json")),
            "{out:#}"
        );
    }

    #[tokio::test]
    async fn regression_a_rerun_writes_its_own_pack_and_never_adopts_an_earlier_one() {
        // An earlier attempt stored the journal as it was then and died
        // before the manifest; the rerun (attempt 2) writes a pack of its
        // own beside it, describing what it wrote.
        let f = FakeCloud::new();
        let plan = payments();
        let s3 = "s3://drctl-evidence-use1/payments";
        let earlier = journal(2);
        pre_place(&f, s3, crate::evidence::JOURNAL, &earlier).await;
        let store = Arc::new(MemoryStore::new());
        store.set_text(RUN, &journal(4));
        let out = run_at(&f, &plan, store, 2).await;
        assert_eq!(out["missing"], json!([]), "{out:#}");
        let key = format!("{s3}/{RUN}/attempt-2/manifest.json");
        let m: Manifest = serde_json::from_slice(&f.state().objects[&key]).expect("a manifest");
        assert_eq!(m.journal.records, 4);
        assert!(
            m.objects
                .iter()
                .all(|o| !o.already_present
                    && o.object.starts_with(&format!("{s3}/{RUN}/attempt-2/")))
        );
        assert_eq!(
            f.state().objects[&format!("{s3}/{RUN}/journal.jsonl")],
            earlier.as_bytes(),
            "the earlier object is left as it was"
        );
        let stored = out["stored"].as_array().expect("stored");
        assert!(
            stored.iter().all(|s| s["manifest_sha256"].is_string()
                && s["manifest"]
                    .as_str()
                    .is_some_and(|m| m.contains("/attempt-2/"))),
            "{out:#}"
        );
    }

    #[tokio::test]
    async fn a_rerun_writes_only_the_destinations_still_missing() {
        let f = FakeCloud::new();
        let plan = payments();
        let store = Arc::new(MemoryStore::new());
        store.set_text(RUN, &journal(3));
        let mut first = run_at(&f, &plan, store.clone(), 1).await;
        // Say the GCS destination did not take its pack.
        let gcs = first["stored"]
            .as_array_mut()
            .expect("stored")
            .iter()
            .position(|p| {
                p["destination"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("gs://"))
            })
            .expect("a gcs pack");
        let gone = first["stored"].as_array_mut().expect("stored").remove(gcs);
        first["missing"] = json!([{"destination": gone["destination"], "error": "down"}]);
        let before = f.state().writes.len();
        let outputs = BTreeMap::from([("payments/evidence".to_string(), first.clone())]);
        let again = run_after(&f, &plan, store.clone(), 2, outputs).await;
        let written = f.state().writes[before..].to_vec();
        assert!(
            !written.is_empty()
                && written
                    .iter()
                    .all(|w| w.contains("gs://") && w.contains("/attempt-2/")),
            "{written:?}"
        );
        assert_eq!(again["missing"], json!([]));
        assert_eq!(
            again["stored"][0], first["stored"][0],
            "the S3 pack as recorded"
        );
        // Complete: running it again writes nothing.
        let before = f.state().writes.len();
        let outputs = BTreeMap::from([("payments/evidence".to_string(), again.clone())]);
        run_after(&f, &plan, store, 3, outputs).await;
        assert_eq!(f.state().writes.len(), before);
    }

    /// A signed run's journal (run_started with its nonce, one more
    /// record) in a keyed memory store.
    async fn signed_run(
        key: &crate::sign::SecretKey,
    ) -> (
        Arc<MemoryStore>,
        Arc<dyn crate::journal::JournalStore>,
        String,
    ) {
        use crate::journal::{Journal, Keyed, RunKeys};
        let mem = Arc::new(MemoryStore::new());
        let store: Arc<dyn crate::journal::JournalStore> = Arc::new(Keyed::new(
            mem.clone(),
            RunKeys::new(Some(key.clone()), vec![key.public()]),
        ));
        let nonce = crate::journal::new_nonce();
        let mut j = Journal::create(store.clone(), RUN).await.expect("journal");
        j.append(Event::RunStarted {
            run_id: RUN.into(),
            kind: crate::journal::RunKind::Failover,
            target: "us-east-1".into(),
            plans: vec![],
            operator: None,
            host: "h".into(),
            pid: 1,
            flags: json!({}),
            declared_at: None,
            steps: vec![],
            nonce: Some(nonce.clone()),
        })
        .await
        .expect("append");
        j.append(Event::Interrupted { reason: "x".into() })
            .await
            .expect("append");
        (mem, store, nonce)
    }

    /// Journals the evidence step's success with `out`; the run's text and
    /// records.
    async fn journal_success(
        store: &Arc<dyn crate::journal::JournalStore>,
        out: &Value,
    ) -> (String, Vec<Record>) {
        let (mut j, _) = crate::journal::Journal::open_for_append(store.clone(), RUN)
            .await
            .expect("open");
        j.append(Event::StepSucceeded {
            step: "payments/evidence".into(),
            outputs: out.clone(),
        })
        .await
        .expect("append");
        let text = store.read(RUN).await.expect("text");
        let records = crate::journal::read(store.as_ref(), RUN)
            .await
            .expect("records");
        (text, records)
    }

    #[tokio::test]
    async fn a_pack_carries_the_runs_nonce_and_signature_and_verifies_pinned_signed_and_retained() {
        let f = FakeCloud::new();
        f.state()
            .locked_buckets
            .insert("s3://drctl-evidence-use1".into());
        let plan = payments();
        let key = crate::sign::SecretKey::generate();
        let (_, store, nonce) = signed_run(&key).await;
        let out = run_at(&f, &plan, store.clone(), 1).await;
        assert_eq!(out["missing"], json!([]), "{out:#}");
        let m = manifest(&f, "s3://drctl-evidence-use1/payments");
        assert_eq!(m.nonce.as_deref(), Some(nonce.as_str()));
        assert_eq!(m.check_signature(&[key.public()]), Ok(key.public().id()));
        let (text, records) = journal_success(&store, &out).await;
        let keys = [key.public()];
        let checks =
            crate::evidence::verify_run(&f, "us-east-1", RUN, &text, &records, &keys).await;
        let dests = &checks[0].destinations;
        assert!(checks[0].ok(), "{checks:#?}");
        assert!(dests.iter().all(|d| d.signed_by == Some(key.public().id())));
        let s3 = dests
            .iter()
            .find(|d| d.destination.starts_with("s3://"))
            .expect("s3");
        assert!(
            s3.retention
                .as_deref()
                .is_some_and(|r| r.starts_with("Object Lock: 4 of 4 objects kept")),
            "{s3:?}"
        );

        // Another key is not listed: every manifest is refused, named.
        let other = crate::sign::SecretKey::generate();
        let checks =
            crate::evidence::verify_run(&f, "us-east-1", RUN, &text, &records, &[other.public()])
                .await;
        assert!(
            checks[0].destinations.iter().all(|d| d
                .problems
                .iter()
                .any(|p| p.problem.contains("not in [keys] run_public"))),
            "{checks:#?}"
        );

        // A retention shortened behind the run's back is named.
        let journal_url = format!("s3://drctl-evidence-use1/payments/{RUN}/journal.jsonl");
        f.state()
            .retained
            .get_mut(&journal_url)
            .expect("retained")
            .until = Utc::now();
        let checks =
            crate::evidence::verify_run(&f, "us-east-1", RUN, &text, &records, &keys).await;
        let p = &checks[0].destinations[0].problems;
        assert!(
            p.iter()
                .any(|p| p.object == journal_url && p.problem.contains("retention was shortened")),
            "{p:?}"
        );
        f.state().retained.remove(&journal_url);
        let checks =
            crate::evidence::verify_run(&f, "us-east-1", RUN, &text, &records, &keys).await;
        assert!(
            checks[0].destinations[0]
                .problems
                .iter()
                .any(|p| p.problem.contains("retention was removed")),
            "{checks:#?}"
        );
    }

    #[tokio::test]
    async fn a_manifest_the_journal_names_outside_its_pin_or_of_another_nonce_is_refused() {
        let f = FakeCloud::new();
        let plan = payments();
        let key = crate::sign::SecretKey::generate();
        let (_, store, _) = signed_run(&key).await;
        let mut out = run_at(&f, &plan, store.clone(), 1).await;
        // The journal's manifest URL edited to lead elsewhere (a writer
        // who could sign the journal, or a journal without keys).
        let elsewhere = "s3://attacker-bucket/payments/manifest.json";
        out["stored"][0]["manifest"] = elsewhere.into();
        let (text, records) = journal_success(&store, &out).await;
        let checks =
            crate::evidence::verify_run(&f, "us-east-1", RUN, &text, &records, &[key.public()])
                .await;
        let d = &checks[0].destinations[0];
        assert_eq!(d.verified, 0, "nothing read: {d:?}");
        assert!(d.problems[0].problem.contains("is not under"), "{d:?}");
        assert!(f.state().writes.iter().all(|w| !w.contains("attacker")));
    }
}
