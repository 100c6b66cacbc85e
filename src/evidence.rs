//! Evidence packs: what a run stores about itself on every evidence
//! destination of its plan, and how anyone proves it later.
//!
//! Why a pack of its own, apart from the journal in the state store: the
//! state store is where drctl works (writable by drctl, kept as long as the
//! team likes), while evidence is what an auditor keeps (write-once, Object
//! Lock or a retention policy, on two clouds). A pack is verifiable offline
//! from itself plus the run's journal:
//!
//! - every object is listed in the manifest with its SHA-256 and size, and
//!   the manifest is written last and create-only, so a manifest that exists
//!   vouches for a complete pack;
//! - the run's journal records each manifest's own SHA-256 (the evidence
//!   step's outputs), so a manifest swapped for another is caught too;
//! - the pack's journal is the run's journal up to the evidence step: its
//!   hash chain verifies, and its head (the hash of its last line) is the
//!   hash of the same line of the run's journal. Later records (the run's
//!   end) extend the chain, they do not change it; late facts (a
//!   retroactive approval) are stored beside it and change nothing of it.
//!
//! The step that writes a pack is [`crate::steps::evidence`]; `drctl audit
//! verify --evidence` calls [`verify_run`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cloud::{LockMode, ObjectStore, ObjectUrl};
use crate::journal::chain::hash_line;
use crate::journal::event::{Event, Record};
pub use crate::journal::payload::{DestinationCheck, PlanCheck, Problem};

/// The manifest's schema id; bumped on any incompatible change.
pub const SCHEMA: &str = "drctl.evidence/v1";
/// The manifest's object name, under `<destination>/<run id>/`.
pub const MANIFEST: &str = "manifest.json";
/// The journal's object name.
pub const JOURNAL: &str = "journal.jsonl";
/// The before/after state's object name.
pub const STATE: &str = "state.json";
/// The run's report's object name (`drctl.report/v1`).
pub const REPORT: &str = "report.json";

/// Hex SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The manifest of one pack on one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`SCHEMA`].
    pub schema: String,
    /// The run.
    pub run_id: String,
    /// The plan.
    pub plan: String,
    /// SHA-256 of the plan file the run loaded.
    pub plan_digest: String,
    /// When the manifest was made.
    pub created_at: DateTime<Utc>,
    /// The destination (`s3://bucket/prefix`).
    pub destination: String,
    /// Which prefix of the run's journal the pack holds.
    pub journal: JournalRef,
    /// How the store keeps the objects.
    pub retention: RetentionNote,
    /// Every object of the pack but the manifest.
    pub objects: Vec<ManifestObject>,
}

/// The journal in a pack: its record count and chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRef {
    /// Records (lines).
    pub records: usize,
    /// Hex SHA-256 of its last line: the chain head.
    pub head: String,
}

impl JournalRef {
    /// The reference of journal text `text`.
    pub fn of(text: &str) -> Self {
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        Self {
            records: lines.len(),
            head: lines.last().map_or_else(
                || crate::journal::chain::ZERO_HASH.to_string(),
                |l| hash_line(l),
            ),
        }
    }
}

/// How the store keeps a pack's objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionNote {
    /// S3 Object Lock mode the objects were written under.
    pub mode: Option<LockMode>,
    /// Until when.
    pub until: Option<DateTime<Utc>>,
    /// Where the setting came from, or why there is none.
    pub source: String,
}

/// One object of a pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestObject {
    /// Its name in the pack (`journal.jsonl`).
    pub name: String,
    /// Its address.
    pub object: String,
    /// Hex SHA-256 of its bytes as stored.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// It was there already (an earlier attempt of the step wrote it; the
    /// digest is of what is stored).
    pub already_present: bool,
    /// Until when the store keeps it unchanged, when it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retained_until: Option<DateTime<Utc>>,
}

/// What the run's journal says its evidence step stored for one plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recorded {
    /// The plan.
    pub plan: String,
    /// Destinations with a manifest: (destination, manifest URL, the
    /// manifest's SHA-256 when the journal has it).
    pub stored: Vec<(String, String, Option<String>)>,
    /// Destinations the step could not write: (destination, error).
    pub missing: Vec<(String, String)>,
}

/// What the evidence steps of a run's journal recorded, per plan (the last
/// success of each); plans whose evidence step never succeeded are absent.
pub fn recorded(records: &[Record]) -> Vec<Recorded> {
    let mut by_plan: std::collections::BTreeMap<String, Value> = Default::default();
    for r in records {
        if let Event::StepSucceeded { step, outputs } = &r.event
            && let Some(plan) = step.as_str().strip_suffix("/evidence")
        {
            by_plan.insert(plan.to_string(), outputs.clone());
        }
    }
    by_plan
        .into_iter()
        .map(|(plan, o)| {
            let o: StepRecord = serde_json::from_value(o).unwrap_or_default();
            Recorded {
                plan,
                stored: o
                    .stored
                    .into_iter()
                    .map(|s| {
                        let (d, m) = (s.destination.unwrap_or_default(), s.manifest);
                        (d, m.unwrap_or_default(), s.manifest_sha256)
                    })
                    .collect(),
                missing: o
                    .missing
                    .into_iter()
                    .map(|m| {
                        let error = m.error.unwrap_or_else(|| "unknown error".into());
                        (m.destination.unwrap_or_default(), error)
                    })
                    .collect(),
            }
        })
        .collect()
}

/// What a verifier needs of an evidence step's journaled output (the step,
/// `steps::evidence`, writes more): read leniently, since journals of every
/// age must verify.
#[derive(Debug, Default, Deserialize)]
struct StepRecord {
    #[serde(default)]
    stored: Vec<StoredRecord>,
    #[serde(default)]
    missing: Vec<MissingRecord>,
}

/// One destination's pack as the step recorded it.
#[derive(Debug, Deserialize)]
struct StoredRecord {
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    manifest: Option<String>,
    #[serde(default)]
    manifest_sha256: Option<String>,
}

/// One destination the step could not write.
#[derive(Debug, Deserialize)]
struct MissingRecord {
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Whether `checks`, a verification of the run whose records are
/// `records` (with its late facts merged), is worth recording: the run has
/// ended, it recorded evidence, and the result differs from the last one
/// recorded (a run verified weekly for years grows by what changed, not by
/// a fact a week).
pub fn worth_recording(records: &[Record], checks: &[PlanCheck]) -> bool {
    let ended = records
        .iter()
        .any(|r| matches!(r.event, Event::RunFinished { .. }));
    let last = records.iter().rev().find_map(|r| match &r.event {
        Event::EvidenceVerified { plans, .. } => Some(plans),
        _ => None,
    });
    ended && !checks.is_empty() && last.is_none_or(|l| l.as_slice() != checks)
}

/// Verifies the packs of run `run_id` whose journal is `journal` (text,
/// already read from the state store; `records` parsed from it): reads each
/// recorded manifest back from its destination through `objects` (asking
/// in region `via`), checks the manifest against the journal, every object
/// against the manifest, and the pack's journal against the run's.
pub async fn verify_run(
    objects: &dyn ObjectStore,
    via: &str,
    run_id: &str,
    journal: &str,
    records: &[Record],
) -> Vec<PlanCheck> {
    let run_lines: Vec<&str> = journal.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::new();
    for rec in recorded(records) {
        let mut destinations = Vec::new();
        for (dest, error) in &rec.missing {
            if rec.stored.iter().any(|(d, _, _)| d == dest) {
                continue;
            }
            destinations.push(DestinationCheck {
                destination: dest.clone(),
                verified: 0,
                problems: vec![Problem {
                    object: dest.clone(),
                    problem: format!(
                        "not stored by the run ({error}); `drctl runs resume {run_id}` writes it"
                    ),
                }],
            });
        }
        let checks = rec.stored.iter().map(|(dest, manifest, digest)| {
            verify_destination(
                objects, via, run_id, &rec.plan, dest, manifest, digest, &run_lines,
            )
        });
        destinations.extend(futures::future::join_all(checks).await);
        out.push(PlanCheck {
            plan: rec.plan,
            destinations,
        });
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn verify_destination(
    objects: &dyn ObjectStore,
    via: &str,
    run_id: &str,
    plan: &str,
    dest: &str,
    manifest_url: &str,
    recorded_digest: &Option<String>,
    run_lines: &[&str],
) -> DestinationCheck {
    let mut check = DestinationCheck {
        destination: dest.to_string(),
        verified: 0,
        problems: Vec::new(),
    };
    let problem = |object: &str, p: String| Problem {
        object: object.to_string(),
        problem: p,
    };
    let url = match ObjectUrl::parse(manifest_url) {
        Ok(u) => u,
        Err(e) => {
            check
                .problems
                .push(problem(manifest_url, format!("not an object address: {e}")));
            return check;
        }
    };
    let body = match objects.get(via, &url).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            check.problems.push(problem(manifest_url, "missing".into()));
            return check;
        }
        Err(e) => {
            check
                .problems
                .push(problem(manifest_url, format!("cannot be read: {e}")));
            return check;
        }
    };
    let digest = sha256(&body);
    match recorded_digest {
        Some(d) if *d != digest => {
            check.problems.push(problem(
                manifest_url,
                format!("altered: the run's journal recorded SHA-256 {d}, the stored manifest has {digest}"),
            ));
            return check;
        }
        Some(_) => check.verified += 1,
        None => {}
    }
    let manifest: Manifest = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            check
                .problems
                .push(problem(manifest_url, format!("not a manifest: {e}")));
            return check;
        }
    };
    if manifest.run_id != run_id || manifest.plan != plan {
        check.problems.push(problem(
            manifest_url,
            format!(
                "is the manifest of run {} plan {}, not of run {run_id} plan {plan}",
                manifest.run_id, manifest.plan
            ),
        ));
    }
    let reads = manifest.objects.iter().map(|o| async move {
        let got = match ObjectUrl::parse(&o.object) {
            Ok(u) => objects.get(via, &u).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        (o, got)
    });
    for (o, got) in futures::future::join_all(reads).await {
        match got {
            Ok(None) => check.problems.push(problem(&o.object, "missing".into())),
            Err(e) => check
                .problems
                .push(problem(&o.object, format!("cannot be read: {e}"))),
            Ok(Some(b)) => {
                let d = sha256(&b);
                if d != o.sha256 || b.len() != o.bytes {
                    check.problems.push(problem(
                        &o.object,
                        format!(
                            "altered: the manifest says SHA-256 {} ({} bytes), the stored object has {d} ({} bytes)",
                            o.sha256,
                            o.bytes,
                            b.len()
                        ),
                    ));
                    continue;
                }
                check.verified += 1;
                if o.name == JOURNAL {
                    let text = String::from_utf8_lossy(&b);
                    if let Some(p) = journal_mismatch(run_id, &text, &manifest.journal, run_lines) {
                        check.problems.push(problem(&o.object, p));
                    }
                }
            }
        }
    }
    if !manifest.objects.iter().any(|o| o.name == JOURNAL) {
        check
            .problems
            .push(problem(manifest_url, "lists no journal".into()));
    }
    check
}

/// Why the pack's journal `text` is not the run's journal (`run_lines`), or
/// `None` when it is: its chain verifies, it is what the manifest says, and
/// its head is the head of the run's journal at the same record.
fn journal_mismatch(
    run_id: &str,
    text: &str,
    said: &JournalRef,
    run_lines: &[&str],
) -> Option<String> {
    let v = crate::journal::chain::verify(run_id, text);
    if let Some(b) = v.first_broken {
        return Some(format!(
            "its hash chain breaks at line {}: {}",
            b.line, b.reason
        ));
    }
    let got = JournalRef::of(text);
    if got != *said {
        return Some(format!(
            "holds {} records with head {}, the manifest says {} with head {}",
            got.records, got.head, said.records, said.head
        ));
    }
    let run_head = got
        .records
        .checked_sub(1)
        .and_then(|i| run_lines.get(i))
        .map(|l| hash_line(l));
    match run_head {
        Some(h) if h == got.head => None,
        Some(h) => Some(format!(
            "is not the run's journal: record {} has head {}, the run's journal has {h} there",
            got.records, got.head
        )),
        None => Some(format!(
            "is not the run's journal: it holds {} records, the run's journal only {}",
            got.records,
            run_lines.len()
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A journal of `n` records whose chain verifies (also used by the
    /// evidence step's tests).
    pub(crate) fn journal(n: usize) -> String {
        let mut text = String::new();
        let mut prev = crate::journal::chain::ZERO_HASH.to_string();
        for seq in 0..n {
            let line = format!(
                r#"{{"seq":{seq},"at":"2026-11-23T10:00:0{seq}Z","prev":"{prev}","event":{{"type":"interrupted","reason":"r{seq}"}}}}"#
            );
            prev = hash_line(&line);
            text.push_str(&line);
            text.push('\n');
        }
        text
    }

    #[test]
    fn a_prefix_of_the_run_journal_is_the_run_journal() {
        let run = journal(5);
        let run_lines: Vec<&str> = run.lines().collect();
        let pack: String = run.lines().take(3).map(|l| format!("{l}\n")).collect();
        let r = JournalRef::of(&pack);
        assert_eq!(r.records, 3);
        assert_eq!(journal_mismatch("x", &pack, &r, &run_lines), None);
    }

    #[test]
    fn another_journal_with_the_same_length_is_not_the_run_journal() {
        let run = journal(5);
        let run_lines: Vec<&str> = run.lines().collect();
        let other = journal(3).replace("\"r2\"", "\"other\"");
        let r = JournalRef::of(&other);
        let why = journal_mismatch("x", &other, &r, &run_lines).expect("a mismatch");
        assert!(why.contains("is not the run's journal"), "{why}");
    }

    #[test]
    fn a_manifest_that_misstates_the_journal_is_named() {
        let run = journal(4);
        let run_lines: Vec<&str> = run.lines().collect();
        let said = JournalRef {
            records: 9,
            head: "00".into(),
        };
        let why = journal_mismatch("x", &run, &said, &run_lines).expect("a mismatch");
        assert!(why.contains("the manifest says 9"), "{why}");
    }
}
