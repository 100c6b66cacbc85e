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
//! And a pack proves who made it, so that a writer of the bucket cannot
//! make one up, or lead a verifier elsewhere:
//!
//! - it is **pinned** to `<destination>/<run id>/` (a rerun of the step
//!   writes its own pack under `<destination>/<run id>/attempt-<n>/`,
//!   [`pack_base`]): a manifest the journal names anywhere else is refused
//!   unread, and so is an object the manifest lists outside its own pack;
//! - it carries the run's **nonce**, drawn at the run's start and journaled
//!   in its `run_started` record;
//! - it is **signed** with the run key ([`Manifest::signature`]), checked
//!   against the operators' listed public keys;
//! - where the S3 bucket has Object Lock, the **retention** each object is
//!   kept under is read back (`GetObjectRetention`) and compared with what
//!   the manifest says it was written under.
//!
//! The step that writes a pack is [`crate::steps::evidence`]; `drctl audit
//! verify --evidence` calls [`verify_run`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cloud::{LockMode, ObjectScheme, ObjectStore, ObjectUrl, Retention};
use crate::journal::chain::hash_line;
use crate::journal::event::{Event, Record};
pub use crate::journal::payload::{
    DestinationCheck, PlanCheck, Problem, ProblemKind, only_unreadable,
};
use crate::sign::{PublicKey, SecretKey, VerifyError};

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
/// The purpose a manifest is signed for ([`crate::sign`]).
pub const MANIFEST_PURPOSE: &str = "evidence-manifest";

/// Where attempt `attempt` of a run's evidence step writes its pack on
/// `destination`: `<destination>/<run id>/` for the first, and
/// `<destination>/<run id>/attempt-<n>/` for a rerun, so that no attempt
/// ever finds at its own place an object it did not write itself (an
/// earlier attempt's is left where it is, and a pre-placed one is refused).
pub fn pack_base(destination: &ObjectUrl, run_id: &str, attempt: u32) -> ObjectUrl {
    if attempt <= 1 {
        destination.join(run_id)
    } else {
        destination.join(&format!("{run_id}/attempt-{attempt}"))
    }
}

/// The pack directory (`.../`) of the manifest at `manifest_url`, when it
/// is a manifest pinned to `<destination>/<run id>/` (directly, or in an
/// attempt's directory); otherwise why not.
pub fn pinned(destination: &str, run_id: &str, manifest_url: &str) -> Result<String, String> {
    let root = format!("{}/{run_id}/", destination.trim_end_matches('/'));
    let rest = manifest_url.strip_prefix(&root).ok_or_else(|| {
        format!("is not under {root}: a manifest elsewhere is not the run's, and is not read")
    })?;
    let dir = match rest.strip_suffix(MANIFEST) {
        Some("") => String::new(),
        Some(attempt)
            if attempt
                .strip_prefix("attempt-")
                .and_then(|a| a.strip_suffix('/'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            attempt.to_string()
        }
        _ => {
            return Err(format!(
                "is not a manifest of {root} ({root}{MANIFEST} or {root}attempt-N/{MANIFEST}), and is not read"
            ));
        }
    };
    Ok(format!("{root}{dir}"))
}

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
    /// The run's nonce, from its `run_started` record (absent in packs of
    /// runs from before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The run key's signature (`ed25519:<key id>:<signature>`) of the
    /// manifest without this field, serialized compactly
    /// ([`Manifest::signed_bytes`]); absent when the run held no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Manifest {
    /// The bytes the signature covers: the manifest without its signature,
    /// as compact JSON (every field is typed, so it reads back and
    /// serializes again to the same bytes).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let unsigned = Self {
            signature: None,
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).unwrap_or_default()
    }

    /// The manifest signed with `key`.
    pub fn signed(mut self, key: &SecretKey) -> Self {
        self.signature = None;
        self.signature = Some(key.sign(MANIFEST_PURPOSE, &self.signed_bytes()));
        self
    }

    /// Checks the signature against `keys`: the key id that signed.
    pub fn check_signature(&self, keys: &[PublicKey]) -> Result<String, VerifyError> {
        crate::sign::verify(
            keys,
            MANIFEST_PURPOSE,
            &self.signed_bytes(),
            self.signature.as_deref(),
        )
        .map(PublicKey::id)
    }
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

/// What verifying one run's packs knows of the run.
struct RunSide<'a> {
    run_id: &'a str,
    /// The run's journal lines.
    lines: Vec<&'a str>,
    /// The nonce of its `run_started` record.
    nonce: Option<&'a str>,
    /// The public run keys manifests may be signed by (empty: not checked).
    keys: &'a [PublicKey],
}

/// Verifies the packs of run `run_id` whose journal is `journal` (text,
/// already read from the state store; `records` parsed from it): reads each
/// recorded manifest back from its destination through `objects` (asking
/// in region `via`), when it is pinned to `<destination>/<run id>/`;
/// checks the manifest against the journal (digest, nonce), its signature
/// against `keys` (when any are listed), every object against the manifest
/// (in its pack, digest and size), the pack's journal against the run's,
/// and on S3 buckets with Object Lock each object's retention.
pub async fn verify_run(
    objects: &dyn ObjectStore,
    via: &str,
    run_id: &str,
    journal: &str,
    records: &[Record],
    keys: &[PublicKey],
) -> Vec<PlanCheck> {
    let run = RunSide {
        run_id,
        lines: journal.lines().filter(|l| !l.trim().is_empty()).collect(),
        nonce: crate::journal::nonce_of(records),
        keys,
    };
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
                    kind: ProblemKind::Missing,
                }],
                signed_by: None,
                retention: None,
            });
        }
        let checks = rec.stored.iter().map(|(dest, manifest, digest)| {
            verify_destination(objects, via, &run, &rec.plan, dest, manifest, digest)
        });
        destinations.extend(futures::future::join_all(checks).await);
        out.push(PlanCheck {
            plan: rec.plan,
            destinations,
        });
    }
    out
}

/// The attempts of an evidence step whose packs [`unnamed_packs`] reads
/// (a step is rarely run more than twice; each read is one `GetObject`,
/// and listing would need a permission verifying does not).
pub const PROBED_ATTEMPTS: u32 = 3;

/// The packs of run `run_id` (journal `journal`) at `destinations` of
/// `plan` that its journal does not name, when one betrays the journal:
/// the packs of its first [`PROBED_ATTEMPTS`] attempts are read, and
/// one whose manifest is this run's and plan's (signed by one of `keys`
/// when any are listed: one a writer of the evidence bucket made up
/// proves nothing) yet holds a journal the run's journal does not begin
/// with (more records, or another record where they meet) is a problem.
///
/// Why: a writer of the state can put back an earlier signed state of a
/// journal (its records and head, each signed by the run key): the chain
/// and the signatures verify, and what the run did after disappears. The
/// packs its evidence step wrote stay, write-once on the evidence buckets,
/// and hold the journal as it was then. A pack whose journal the run's
/// journal does begin with is an earlier attempt's, which a crash kept
/// from being named, and no problem.
pub async fn unnamed_packs(
    objects: &dyn ObjectStore,
    via: &str,
    (run_id, journal, keys): (&str, &str, &[PublicKey]),
    plan: &str,
    destinations: &[String],
) -> Vec<DestinationCheck> {
    let lines: Vec<&str> = journal.lines().filter(|l| !l.trim().is_empty()).collect();
    let lines = &lines;
    let packs = destinations
        .iter()
        .flat_map(|d| (1..=PROBED_ATTEMPTS).map(move |attempt| (d, attempt)));
    let reads = packs.map(|(dest, attempt)| async move {
        let url = ObjectUrl::parse(dest).ok()?;
        let at = pack_base(&url, run_id, attempt).join(MANIFEST);
        let body = match objects.get(via, &at).await {
            Ok(found) => found?,
            // Unread is not absent: said, since a rollback would hide there.
            Err(e) => {
                return Some(DestinationCheck {
                    destination: dest.clone(),
                    verified: 0,
                    problems: vec![problem(
                        &at.to_string(),
                        format!(
                            "cannot be read ({}): whether the run's journal was rolled back past its evidence step is not known",
                            e.summary()
                        ),
                    )],
                    signed_by: None,
                    retention: None,
                });
            }
        };
        let manifest: Manifest = serde_json::from_slice(&body).ok()?;
        if manifest.run_id != run_id || manifest.plan != plan {
            return None;
        }
        let signed_by = match keys {
            [] => None,
            listed => Some(manifest.check_signature(listed).ok()?),
        };
        let why = betrayed(&manifest.journal, lines)?;
        Some(DestinationCheck {
            destination: dest.clone(),
            verified: 0,
            problems: vec![problem(
                &at.to_string(),
                format!(
                    "a pack of this run its journal does not name, whose journal {why}: the run's journal was rolled back (an earlier state put back) or rewritten"
                ),
            )],
            signed_by,
            retention: None,
        })
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// How a pack's journal (`said`) is not a beginning of the run's journal
/// (`lines`), or `None` when it is.
fn betrayed(said: &JournalRef, lines: &[&str]) -> Option<String> {
    let at = said.records.checked_sub(1)?;
    match lines.get(at) {
        None => Some(format!(
            "holds {} records, the run's journal only {}",
            said.records,
            lines.len()
        )),
        Some(l) if hash_line(l) != said.head => Some(format!(
            "has head {} at record {}, the run's journal another",
            said.head, said.records
        )),
        Some(_) => None,
    }
}

async fn verify_destination(
    objects: &dyn ObjectStore,
    via: &str,
    run: &RunSide<'_>,
    plan: &str,
    dest: &str,
    manifest_url: &str,
    recorded_digest: &Option<String>,
) -> DestinationCheck {
    let mut check = DestinationCheck {
        destination: dest.to_string(),
        verified: 0,
        problems: Vec::new(),
        signed_by: None,
        retention: None,
    };
    let at = (dest, run.run_id, manifest_url);
    let Some((manifest, pack_dir, url)) =
        fetch_manifest(objects, via, at, recorded_digest, &mut check).await
    else {
        return check;
    };
    manifest_claims(&manifest, (run, plan, dest, manifest_url), &mut check);
    let whole = check_objects(objects, via, (run, &manifest, &pack_dir), &mut check).await;
    if !manifest.objects.iter().any(|o| o.name == JOURNAL) {
        check
            .problems
            .push(problem(manifest_url, "lists no journal".into()));
    }
    let (summary, problems) = retention_check(objects, via, dest, &url, &manifest, &whole).await;
    check.retention = Some(summary);
    check.problems.extend(problems);
    check
}

/// A problem with `object`.
fn problem(object: &str, p: String) -> Problem {
    of_kind(object, p, ProblemKind::Claim)
}

/// A problem of `kind` with `object`.
fn of_kind(object: &str, p: String, kind: ProblemKind) -> Problem {
    Problem {
        object: object.to_string(),
        problem: p,
        kind,
    }
}

/// What an object that cannot be read is: unreadable, which says nothing
/// of its bytes, never "altered". Why, by the error's kind: a store that
/// broke off its answer or gave a body that failed its own checksum (a
/// storage or transport fault), or one that refused the verifier
/// (credentials, a bad request).
fn unreadable(object: &str, e: &crate::cloud::CloudError) -> Problem {
    use crate::cloud::ErrorKind;
    let why = match e.kind {
        ErrorKind::Auth => "the verifier's credentials may not read it",
        ErrorKind::Client | ErrorKind::Precondition | ErrorKind::NotFound => {
            "the store refused the read"
        }
        ErrorKind::Throttled | ErrorKind::Server | ErrorKind::Connection | ErrorKind::Fenced => {
            "a storage or transport fault, not a sign of tampering; verify again, or read it with another client"
        }
    };
    of_kind(
        object,
        format!(
            "unreadable: the store did not give its bytes, so nothing is known of them ({why}): {}",
            e.summary()
        ),
        ProblemKind::Unreadable,
    )
}

/// The manifest at `manifest_url` (pinned to the run's pack in `dest`,
/// read, and held to the digest the run's journal recorded), its pack's
/// folder and its address; `None`, with the problem added to `check`, when
/// it cannot be believed.
async fn fetch_manifest(
    objects: &dyn ObjectStore,
    via: &str,
    (dest, run_id, manifest_url): (&str, &str, &str),
    recorded_digest: &Option<String>,
    check: &mut DestinationCheck,
) -> Option<(Manifest, String, ObjectUrl)> {
    let said_as = |check: &mut DestinationCheck, why: String, kind| {
        check.problems.push(of_kind(manifest_url, why, kind));
    };
    let said = |check: &mut DestinationCheck, why: String| said_as(check, why, ProblemKind::Claim);
    // Pinned first: a manifest the journal names elsewhere is not read.
    let pack_dir = match pinned(dest, run_id, manifest_url) {
        Ok(d) => d,
        Err(why) => {
            said(check, why);
            return None;
        }
    };
    let url = match ObjectUrl::parse(manifest_url) {
        Ok(u) => u,
        Err(e) => {
            said(check, format!("not an object address: {e}"));
            return None;
        }
    };
    let body = match objects.get(via, &url).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            said_as(check, "missing".into(), ProblemKind::Missing);
            return None;
        }
        Err(e) => {
            check.problems.push(unreadable(manifest_url, &e));
            return None;
        }
    };
    let digest = sha256(&body);
    match recorded_digest {
        Some(d) if *d != digest => {
            said_as(
                check,
                format!(
                    "altered: the run's journal recorded SHA-256 {d}, the stored manifest has {digest}"
                ),
                ProblemKind::Altered,
            );
            return None;
        }
        Some(_) => check.verified += 1,
        None => {}
    }
    let manifest: Manifest = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            said(check, format!("not a manifest: {e}"));
            return None;
        }
    };
    Some((manifest, pack_dir, url))
}

/// What the manifest says of itself, held to the run: its run and plan,
/// its destination, the run's nonce, its signature.
fn manifest_claims(
    manifest: &Manifest,
    (run, plan, dest, manifest_url): (&RunSide<'_>, &str, &str, &str),
    check: &mut DestinationCheck,
) {
    let run_id = run.run_id;
    if manifest.run_id != run_id || manifest.plan != plan {
        check.problems.push(problem(
            manifest_url,
            format!(
                "is the manifest of run {} plan {}, not of run {run_id} plan {plan}",
                manifest.run_id, manifest.plan
            ),
        ));
    }
    if manifest.destination.trim_end_matches('/') != dest.trim_end_matches('/') {
        check.problems.push(problem(
            manifest_url,
            format!("names the destination {}, not {dest}", manifest.destination),
        ));
    }
    if let Some(p) = nonce_problem(run.nonce, manifest.nonce.as_deref()) {
        check.problems.push(problem(manifest_url, p));
    }
    match signature_check(manifest, run.keys) {
        Ok(signer) => check.signed_by = signer,
        Err(p) => check.problems.push(problem(manifest_url, p)),
    }
}

/// Reads the objects the manifest lists in its own pack (an entry
/// elsewhere is named, not read: it would lead the verifier to whatever
/// its writer chose) and holds each to its digest and size, the journal
/// to the run's; returns those found whole (whose retention is asked).
async fn check_objects<'m>(
    objects: &dyn ObjectStore,
    via: &str,
    (run, manifest, pack_dir): (&RunSide<'_>, &'m Manifest, &str),
    check: &mut DestinationCheck,
) -> Vec<&'m ManifestObject> {
    let (inside, outside): (Vec<&ManifestObject>, Vec<&ManifestObject>) = manifest
        .objects
        .iter()
        .partition(|o| o.object == format!("{pack_dir}{}", o.name) && !o.name.contains('/'));
    for o in outside {
        check.problems.push(problem(
            &o.object,
            format!("is listed by the manifest but is not in its pack {pack_dir}: not read"),
        ));
    }
    let reads = inside.iter().map(|o| async move {
        let got = match ObjectUrl::parse(&o.object) {
            Ok(u) => Ok(objects.get(via, &u).await),
            Err(e) => Err(e.to_string()),
        };
        (*o, got)
    });
    let mut whole: Vec<&ManifestObject> = Vec::new();
    for (o, got) in futures::future::join_all(reads).await {
        let b = match got {
            Ok(Ok(Some(b))) => b,
            Ok(Ok(None)) => {
                let missing = of_kind(&o.object, "missing".into(), ProblemKind::Missing);
                check.problems.push(missing);
                continue;
            }
            Ok(Err(e)) => {
                check.problems.push(unreadable(&o.object, &e));
                continue;
            }
            Err(bad) => {
                let why = format!("the manifest lists it, but it is no object address: {bad}");
                check.problems.push(problem(&o.object, why));
                continue;
            }
        };
        let d = sha256(&b);
        if d != o.sha256 || b.len() != o.bytes {
            check.problems.push(of_kind(
                &o.object,
                format!(
                    "altered: the manifest says SHA-256 {} ({} bytes), the stored object has {d} ({} bytes)",
                    o.sha256,
                    o.bytes,
                    b.len()
                ),
                ProblemKind::Altered,
            ));
            continue;
        }
        check.verified += 1;
        whole.push(o);
        if o.name == JOURNAL {
            let text = String::from_utf8_lossy(&b);
            if let Some(p) = journal_mismatch(run.run_id, &text, &manifest.journal, &run.lines) {
                check.problems.push(problem(&o.object, p));
            }
        }
    }
    whole
}

/// Why a manifest carrying `said` is not of the run whose journal's nonce
/// is `run` (`None`: it is, or the run is older than nonces).
fn nonce_problem(run: Option<&str>, said: Option<&str>) -> Option<String> {
    let run = run?;
    match said {
        Some(n) if n == run => None,
        Some(n) => Some(format!(
            "carries the nonce {n}, the run's journal {run}: it was made for another journal"
        )),
        None => Some(format!(
            "carries no nonce, the run's journal has {run}: it was not made by this run"
        )),
    }
}

/// The key that signed `manifest` (checked against `keys` when any are
/// listed; otherwise only named), or why the signature is refused.
fn signature_check(manifest: &Manifest, keys: &[PublicKey]) -> Result<Option<String>, String> {
    if keys.is_empty() {
        return Ok(manifest
            .signature
            .as_deref()
            .and_then(crate::sign::signer_id)
            .map(str::to_string));
    }
    manifest.check_signature(keys).map(Some).map_err(|e| match e {
        VerifyError::Unsigned => "is not signed with the run key: anyone who can write the bucket could have written it".to_string(),
        VerifyError::Malformed => "carries a malformed signature".to_string(),
        VerifyError::UnlistedKey(id) => format!("is signed by key {id}, which is not in [keys] run_public"),
        VerifyError::Mismatch(id) | VerifyError::Unbound(id) => format!("its signature by key {id} does not verify: it was changed after it was signed"),
    })
}

/// How long before what the manifest says a retention may end and still
/// be the one written (S3 keeps whole seconds; a bucket's default counts
/// from the write, the note from the step's start).
const RETENTION_SLACK: chrono::Duration = chrono::Duration::minutes(10);

/// What the store says of the pack's retention now, in words, and the
/// problems: on an S3 bucket with Object Lock, every object of the pack
/// found whole (`whole`) and the manifest are asked their retention, which
/// must not end before, or be weaker than, what the manifest says they were
/// written under.
async fn retention_check(
    objects: &dyn ObjectStore,
    via: &str,
    dest: &str,
    manifest_url: &ObjectUrl,
    manifest: &Manifest,
    whole: &[&ManifestObject],
) -> (String, Vec<Problem>) {
    if let Err(said) = object_lock_in_force(objects, via, dest).await {
        return (said, Vec::new());
    }
    let mut urls: Vec<ObjectUrl> = whole
        .iter()
        .filter_map(|o| ObjectUrl::parse(&o.object).ok())
        .collect();
    urls.push(manifest_url.clone());
    let asked = futures::future::join_all(
        urls.iter()
            .map(|u| async move { (u, objects.object_retention(via, u).await) }),
    )
    .await;
    let wanted = manifest.retention.mode.zip(manifest.retention.until);
    let mut problems = Vec::new();
    let mut kept: Vec<Retention> = Vec::new();
    let mut unread = 0;
    for (url, got) in asked {
        match got {
            Err(e) => {
                unread += 1;
                tracing::debug!("retention of {url} not read: {e}");
            }
            Ok(got) => {
                if let Some(p) = retention_problem(got, wanted) {
                    problems.push(problem(&url.to_string(), p));
                }
                kept.extend(got);
            }
        }
    }
    (retention_summary(&kept, urls.len(), unread), problems)
}

/// Whether the pack's objects are to be asked their retention: `Ok` on an
/// S3 bucket with Object Lock; otherwise `Err` with what is said of the
/// pack's retention instead (GCS keeps it per bucket, a bucket without
/// Object Lock keeps nothing, a lock that cannot be read is unknown).
async fn object_lock_in_force(
    objects: &dyn ObjectStore,
    via: &str,
    dest: &str,
) -> Result<(), String> {
    let Ok(dest_url) = ObjectUrl::parse(dest) else {
        return Err("unknown: the destination is not an object address".into());
    };
    if dest_url.scheme == ObjectScheme::Gcs {
        return Err(
            "the bucket's retention policy (GCS keeps it by itself; not asked per object)".into(),
        );
    }
    match objects.bucket_lock(via, &dest_url).await {
        Ok(lock) if lock.object_lock == Some(true) => Ok(()),
        Ok(_) => Err(
            "no Object Lock on the bucket: a writer of the bucket can replace or delete the pack (see terraform/evidence.tf)".into(),
        ),
        Err(e) => Err(format!(
            "unknown: the bucket's Object Lock could not be read ({})",
            e.summary()
        )),
    }
}

/// What is wrong with an object's retention `got` (pure), given what the
/// manifest says it was written under (`wanted`, if anything): kept
/// shorter or weaker, or not kept at all.
fn retention_problem(
    got: Option<Retention>,
    wanted: Option<(LockMode, DateTime<Utc>)>,
) -> Option<String> {
    match (got, wanted) {
        (Some(r), w) => w.and_then(|w| weaker(r, w)),
        (None, Some((mode, until))) => Some(format!(
            "carries no Object Lock retention, the manifest says it was written under {} until {}: its retention was removed",
            mode.as_s3().to_ascii_lowercase(),
            until.format("%Y-%m-%d")
        )),
        (None, None) => None,
    }
}

/// The summary of the retentions read (pure): how many of the `total`
/// objects are kept, the first to end and the weakest mode, and how many
/// could not be asked.
fn retention_summary(kept: &[Retention], total: usize, unread: usize) -> String {
    let mut summary = match kept.iter().min_by_key(|r| r.until) {
        Some(first) => format!(
            "Object Lock: {} of {total} objects kept, the first until {} ({})",
            kept.len(),
            first.until.format("%Y-%m-%d"),
            if kept.iter().any(|r| r.mode == LockMode::Governance) {
                "governance"
            } else {
                "compliance"
            }
        ),
        None => format!(
            "Object Lock on the bucket, but none of the {total} objects carries a retention"
        ),
    };
    if unread > 0 {
        summary.push_str(&format!("; {unread} could not be asked"));
    }
    summary
}

/// Why the retention `now` is weaker than `(mode, until)`, what an object
/// was written under, if it is.
fn weaker(now: Retention, (mode, until): (LockMode, DateTime<Utc>)) -> Option<String> {
    if now.until + RETENTION_SLACK < until {
        return Some(format!(
            "is kept only until {}, the manifest says until {}: its retention was shortened",
            now.until.format("%Y-%m-%d %H:%M"),
            until.format("%Y-%m-%d %H:%M")
        ));
    }
    if mode == LockMode::Compliance && now.mode == LockMode::Governance {
        return Some(
            "is kept in governance mode, the manifest says compliance: its retention was weakened"
                .into(),
        );
    }
    None
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

    /// A pack's journal betrays the run's when the run's journal does not
    /// begin with it: it holds more records (the journal was rolled back),
    /// or another record where they meet (rewritten). An earlier attempt's
    /// pack, whose journal the run's begins with, betrays nothing.
    #[test]
    fn a_pack_betrays_a_journal_that_does_not_begin_with_its_own() {
        let text = journal(5);
        let lines: Vec<&str> = text.lines().collect();
        let at = |n: usize| JournalRef::of(&journal(n));
        assert_eq!(betrayed(&at(3), &lines), None, "an earlier attempt's");
        assert_eq!(betrayed(&at(5), &lines), None);
        let longer = betrayed(&at(7), &lines).expect("rolled back");
        assert!(
            longer.contains("holds 7 records, the run's journal only 5"),
            "{longer}"
        );
        let other = JournalRef {
            records: 4,
            head: "0".repeat(64),
        };
        assert!(betrayed(&other, &lines).is_some_and(|w| w.contains("at record 4")));
        let empty = JournalRef::of("");
        assert_eq!(betrayed(&empty, &lines), None);
    }

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
    fn a_manifest_is_pinned_to_its_destination_and_run() {
        let d = "s3://evid/payments";
        assert_eq!(
            pinned(d, "r1", "s3://evid/payments/r1/manifest.json"),
            Ok("s3://evid/payments/r1/".into())
        );
        assert_eq!(
            pinned(
                &format!("{d}/"),
                "r1",
                "s3://evid/payments/r1/attempt-12/manifest.json"
            ),
            Ok("s3://evid/payments/r1/attempt-12/".into())
        );
        for elsewhere in [
            "s3://other/payments/r1/manifest.json",
            "s3://evid/payments/r2/manifest.json",
            "s3://evid/payments/r1/x/manifest.json",
            "s3://evid/payments/r1/attempt-/manifest.json",
            "s3://evid/payments/r1/attempt-2/../../r2/manifest.json",
            "s3://evid/payments/r1/manifest.json.bak",
        ] {
            assert!(pinned(d, "r1", elsewhere).is_err(), "{elsewhere}");
        }
        assert_eq!(
            pack_base(&ObjectUrl::parse(d).unwrap(), "r1", 1).to_string(),
            "s3://evid/payments/r1"
        );
        assert_eq!(
            pack_base(&ObjectUrl::parse(d).unwrap(), "r1", 3).to_string(),
            "s3://evid/payments/r1/attempt-3"
        );
    }

    #[test]
    fn a_manifest_must_carry_the_runs_nonce_when_the_run_has_one() {
        assert_eq!(nonce_problem(Some("ab"), Some("ab")), None);
        assert_eq!(nonce_problem(None, None), None, "a run older than nonces");
        assert!(
            nonce_problem(Some("ab"), Some("cd")).is_some_and(|p| p.contains("another journal"))
        );
        assert!(nonce_problem(Some("ab"), None).is_some_and(|p| p.contains("no nonce")));
    }

    #[test]
    fn a_signed_manifest_verifies_and_any_change_breaks_it() {
        let k = SecretKey::generate();
        let m = Manifest {
            schema: SCHEMA.into(),
            run_id: "r1".into(),
            plan: "payments".into(),
            plan_digest: "ab".repeat(32),
            created_at: "2026-11-25T02:00:00.123456789Z".parse().unwrap(),
            destination: "s3://evid/payments".into(),
            journal: JournalRef {
                records: 3,
                head: "cd".repeat(32),
            },
            retention: RetentionNote {
                mode: Some(LockMode::Governance),
                until: Some("2027-11-25T02:00:00Z".parse().unwrap()),
                source: "the tier's evidence_retention".into(),
            },
            objects: vec![],
            nonce: Some("ef".repeat(16)),
            signature: None,
        }
        .signed(&k);
        // As stored and read back (pretty JSON): the same bytes are signed.
        let stored: Manifest =
            serde_json::from_slice(&serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        assert_eq!(stored.check_signature(&[k.public()]), Ok(k.public().id()));
        let mut edited = stored.clone();
        edited.journal.records = 2;
        assert_eq!(
            edited.check_signature(&[k.public()]),
            Err(VerifyError::Mismatch(k.public().id()))
        );
        assert_eq!(
            signature_check(&edited, &[]).expect("not checked without keys"),
            Some(k.public().id())
        );
        let unsigned = Manifest {
            signature: None,
            ..stored
        };
        assert!(signature_check(&unsigned, &[k.public()]).is_err_and(|e| e.contains("not signed")));
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
