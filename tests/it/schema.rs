//! `docs/report.schema.json` (JSON Schema draft 2020-12) against the
//! reports drctl makes: the golden `drctl.report/v1` document, the command's
//! own output on the fixed journals of `src/report/testdata/runs`, and
//! documents broken on purpose, which must fail (so the schema is strict,
//! not `true`). No emulators.

use std::path::Path;

use jsonschema::Validator;
use serde_json::{Value, json};

const SCHEMA: &str = "docs/report.schema.json";
const GOLDEN: &str = "src/report/testdata/report.json";

/// The JSON file at `rel` (from the crate's root).
fn read_json(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The schema, compiled as draft 2020-12 (checked against its meta-schema)
/// with `format` asserted (`date-time`).
pub(crate) fn validator() -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&read_json(SCHEMA))
        .unwrap_or_else(|e| panic!("{SCHEMA} is not a valid draft 2020-12 schema: {e}"))
}

/// `docs/preview.schema.json`: a dry run's JSON document.
const PREVIEW: &str = "docs/preview.schema.json";

/// The dry-run document's schema, compiled as the report's is.
pub(crate) fn preview_validator() -> Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&read_json(PREVIEW))
        .unwrap_or_else(|e| panic!("{PREVIEW} is not a valid draft 2020-12 schema: {e}"))
}

/// `doc`, a dry run's output, validates against [`PREVIEW`].
pub(crate) fn assert_preview(doc: &Value) {
    let errs = errors(&preview_validator(), doc);
    assert!(
        errs.is_empty(),
        "the dry run does not validate against {PREVIEW}:\n{}\n{doc:#}",
        errs.join("\n")
    );
}

/// Every validation error of `doc`, one line each: where in the document
/// (its JSON pointer), which keyword of the schema, and why.
fn errors(v: &Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| {
            let at = e.instance_path().to_string();
            format!(
                "at {} (schema {}): {e}",
                if at.is_empty() { "/" } else { &at },
                e.schema_path()
            )
        })
        .collect()
}

pub(crate) fn assert_valid(v: &Validator, what: &str, doc: &Value) {
    let errs = errors(v, doc);
    assert!(
        errs.is_empty(),
        "{what} does not validate against {SCHEMA} ({} errors):\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// `doc` must fail, with an error at `pointer` or inside it (so that it
/// fails for the reason the case is about).
fn assert_invalid(v: &Validator, what: &str, doc: &Value, pointer: &str) {
    let errs: Vec<(String, String)> = v
        .iter_errors(doc)
        .map(|e| (e.instance_path().to_string(), e.to_string()))
        .collect();
    assert!(
        !errs.is_empty(),
        "{what}: validates against {SCHEMA}, but must not"
    );
    assert!(
        errs.iter()
            .any(|(at, _)| at == pointer || at.starts_with(&format!("{pointer}/"))),
        "{what}: no error at {pointer}; the errors were:\n{}",
        errs.iter()
            .map(|(at, e)| format!("at {at}: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `drctl report ARGS --format json` on the fixed journals, parsed.
fn report_json(args: &[&str]) -> Value {
    let o = crate::report::report(&[args, &["--format", "json"]].concat());
    assert_eq!(
        o.status.code(),
        Some(0),
        "drctl report {args:?}:\n{}",
        crate::report::all(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "drctl report {args:?} is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&o.stdout)
        )
    })
}

#[test]
fn golden_report_json_validates_against_the_schema() {
    let v = validator();
    let golden = read_json(GOLDEN);
    assert_eq!(golden["schema"], "drctl.report/v1");
    assert_valid(&v, GOLDEN, &golden);
}

#[test]
fn fresh_report_json_validates_against_the_schema() {
    let v = validator();
    // The golden's window, then one with no run at all, then one plan.
    let full = ["--from", "2026-08-25", "--to", "2026-11-23T12:00:00Z"];
    let doc = report_json(&full);
    assert_eq!(doc["summary"]["runs"], 6, "the runs of the fixed journals");
    assert_valid(&v, &format!("drctl report {full:?}"), &doc);
    for args in [
        &["--from", "2025-01-01", "--to", "2025-02-01"][..],
        &[
            "--from",
            "2026-08-25",
            "--to",
            "2026-11-23T12:00:00Z",
            "--plan",
            "ledger",
        ][..],
    ] {
        let doc = report_json(args);
        assert_valid(&v, &format!("drctl report {args:?}"), &doc);
    }
}

#[test]
fn schema_allows_as_of_on_a_run_row_only_as_a_string() {
    let v = validator();
    let mut doc = read_json(GOLDEN);
    doc["plans"][0]["runs"][0]["as_of"] = json!(
        "made by the run itself at 2026-09-20 12:19:42 UTC, while storing its evidence: the steps before evidence had ended; its final record comes after"
    );
    assert_valid(&v, "the golden with a run's as_of", &doc);
    doc["plans"][0]["runs"][0]["as_of"] = json!(true);
    assert_invalid(
        &v,
        "a run's as_of as a boolean",
        &doc,
        "/plans/0/runs/0/as_of",
    );
}

/// An evidence problem's kind (altered, unreadable, missing, claim), as
/// reports carry it since an unreadable object was told apart from an
/// altered one; any other kind is no v1 problem.
#[test]
fn schema_takes_an_evidence_problems_kind() {
    let v = validator();
    let mut doc = read_json(GOLDEN);
    let at = "/plans/0/runs/1/evidence_check/problems/0";
    let problem = doc.pointer_mut(at).expect("the golden's altered object");
    problem["kind"] = json!("unreadable");
    assert_valid(&v, "the golden with an unreadable object", &doc);
    doc.pointer_mut(at).expect("again")["kind"] = json!("tampered");
    // The check is one of null or an object: the error is the check's.
    let check = "/plans/0/runs/1/evidence_check";
    assert_invalid(&v, "a problem of an unknown kind", &doc, check);
    doc.pointer_mut(at).expect("again")["kind"] = json!("altered");
    assert_valid(&v, "the golden with an altered object", &doc);
}

/// A drill's raised EKS node group (`drill-nodes`), as its cleanup
/// journals it, with its restore point; one without it is no v1 resource.
#[test]
fn schema_takes_a_drills_node_group_with_its_restore_point() {
    let v = validator();
    let mut doc = read_json(GOLDEN);
    let at = "/plans/0/runs/3/cleanup/resources/2/resource";
    let node_group = serde_json::to_value(drctl::journal::Temp::NodeCapacity {
        region: "us-east-1".into(),
        cluster: "orders-eks-use1".into(),
        group: "orders-nodes-use1".into(),
        restore: drctl::cloud::Capacity {
            min: 0,
            desired: 0,
            max: 6,
        },
    })
    .expect("a Temp serializes");
    *doc.pointer_mut(at).expect("the golden's raised group") = node_group;
    assert_valid(&v, "the golden with a node group's cleanup", &doc);
    doc.pointer_mut(at)
        .and_then(|r| r.as_object_mut())
        .expect("the resource")
        .remove("restore");
    // The cleanup may be absent (`oneOf`): the error is reported there.
    assert_invalid(
        &v,
        "a node group without its restore point",
        &doc,
        "/plans/0/runs/3/cleanup",
    );
}

#[test]
fn schema_takes_a_drills_aurora_copy() {
    let v = validator();
    let mut doc = read_json(GOLDEN);
    let at = "/plans/0/runs/3/cleanup/resources/2/resource";
    let copy = serde_json::to_value(drctl::journal::Temp::Cluster {
        region: "us-east-1".into(),
        id: "drill-20261125t060000z-ab12-orders-use1".into(),
    })
    .expect("a Temp serializes");
    *doc.pointer_mut(at).expect("the golden's raised group") = copy;
    assert_valid(&v, "the golden with an Aurora drill copy's cleanup", &doc);
    doc.pointer_mut(at)
        .and_then(|r| r.as_object_mut())
        .expect("the resource")
        .remove("id");
    assert_invalid(
        &v,
        "an Aurora drill copy without its id",
        &doc,
        "/plans/0/runs/3/cleanup",
    );
}

#[test]
fn schema_rejects_what_a_v1_report_never_holds() {
    let v = validator();
    let golden = read_json(GOLDEN);
    assert_valid(&v, GOLDEN, &golden);

    let mut doc = golden.clone();
    doc["unexpected"] = json!(1);
    assert_invalid(&v, "an unknown top-level property", &doc, "");

    let mut doc = golden.clone();
    doc["schema"] = json!("drctl.report/v2");
    assert_invalid(&v, "schema drctl.report/v2", &doc, "/schema");

    // `format: date-time` is asserted, not only the pattern: no 31 November.
    let mut doc = golden.clone();
    doc["generated_at"] = json!("2026-11-31T12:00:00Z");
    assert_invalid(&v, "generated_at on 31 November", &doc, "/generated_at");

    let mut doc = golden.clone();
    doc["plans"][0]["runs"][0]["verdict"]["verdict"] = json!("MAYBE");
    assert_invalid(&v, "a run's verdict MAYBE", &doc, "/plans/0/runs/0/verdict");

    // The first run whose RTO was measured: its figure as a string.
    let mut doc = golden;
    let (p, r) = doc["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .enumerate()
        .find_map(|(p, plan)| {
            plan["runs"]
                .as_array()?
                .iter()
                .position(|run| run["rto"]["seconds"].is_number())
                .map(|r| (p, r))
        })
        .expect("a run with a measured RTO in the golden");
    let seconds = doc["plans"][p]["runs"][r]["rto"]["seconds"].to_string();
    doc["plans"][p]["runs"][r]["rto"]["seconds"] = json!(seconds);
    assert_invalid(
        &v,
        "an RTO achieved as a string",
        &doc,
        &format!("/plans/{p}/runs/{r}/rto/seconds"),
    );
}

/// `docs/notify-event.schema.json` against one event of every type, built
/// from drctl's own types, and against an event broken on purpose.
#[test]
fn every_notification_event_type_matches_its_published_schema() {
    use drctl::journal::notice::{
        CloudEvent, EventData, EventDetail, EventType, Measure, PlanFigures, PlanVerdict,
        RecordRef, SPEC_VERSION, Severity,
    };
    let v = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&read_json("docs/notify-event.schema.json"))
        .expect("the notification schema is a valid draft 2020-12 schema");
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T06:00:00Z")
        .unwrap()
        .to_utc();
    let unknown = Measure {
        seconds: None,
        target_seconds: Some(900),
        met: None,
        basis: "unknown: the journal has no end".into(),
    };
    let details = [
        (
            EventType::RunStarted,
            EventDetail::Started {
                mode: "failover".into(),
                declared_at: Some(at),
                steps: 9,
                host: "h".into(),
            },
        ),
        (
            EventType::ApprovalNeeded,
            EventDetail::ApprovalNeeded {
                plan: "p".into(),
                why: "critical tier".into(),
                command: "drctl runs approve r --reason x".into(),
                approve_by: Some(at),
            },
        ),
        (
            EventType::StepFailed,
            EventDetail::StepFailed {
                step: "p/promote:db".into(),
                error: "throttled".into(),
                class: "throttled".into(),
                hint: Some("wait".into()),
                command: "drctl runs resume r".into(),
            },
        ),
        (
            EventType::RunFinished,
            EventDetail::Finished {
                outcome: "succeeded".into(),
                plans: vec![PlanFigures {
                    plan: "p".into(),
                    rto: Measure {
                        seconds: Some(12.5),
                        target_seconds: Some(900),
                        met: Some(true),
                        basis: "declared → verify-dns".into(),
                    },
                    rpo: unknown.clone(),
                }],
            },
        ),
        (
            EventType::DrillVerdict,
            EventDetail::DrillVerdict {
                passed: false,
                plans: vec![PlanVerdict {
                    plan: "p".into(),
                    verdict: "fail".into(),
                    reasons: vec!["RTO above target".into()],
                }],
            },
        ),
        (
            EventType::ScheduleOverdue,
            EventDetail::Overdue {
                plan: "p".into(),
                last_drill: None,
                due: at,
            },
        ),
        (
            EventType::EvidenceMismatch,
            EventDetail::EvidenceMismatch {
                problems: vec!["digest differs".into()],
            },
        ),
        (
            EventType::LockBroken,
            EventDetail::LockBroken {
                plan: "p".into(),
                by_run: "r2".into(),
                by_host: "h2".into(),
                reason: "lease expired".into(),
            },
        ),
        (
            EventType::Test,
            EventDetail::Test {
                message: "hello".into(),
            },
        ),
    ];
    let watch = |kind: EventType, decision: &str| {
        (
            kind,
            EventDetail::Watch {
                plan: "p".into(),
                decision: decision.into(),
                episode: "p/us-west-2/start/0".into(),
                why: "2 of 3 observers saw us-west-2 fail 3 times in a row".into(),
                region: Some("us-west-2".into()),
                command: Some("drctl failover --plan p --to us-east-1 --emergency".into()),
                deadline: Some(at),
                votes: vec!["a".into(), "b".into()],
            },
        )
    };
    let details: Vec<(EventType, EventDetail)> = details
        .into_iter()
        .chain([
            watch(EventType::WatchRegionDown, "region_down"),
            watch(EventType::WatchProposed, "proposed"),
            watch(EventType::WatchVetoed, "vetoed"),
            watch(EventType::WatchStarted, "started"),
            watch(EventType::WatchStartFailed, "start_failed"),
            watch(EventType::WatchUnfit, "unfit"),
            watch(EventType::WatchCapped, "capped"),
            watch(EventType::WatchFailbackProposed, "failback_proposed"),
            watch(EventType::WatchSuspect, "suspect"),
        ])
        .collect();
    assert_eq!(details.len(), EventType::ALL.len(), "one event per type");
    for (kind, detail) in details {
        let e = CloudEvent {
            specversion: SPEC_VERSION.into(),
            id: format!("evt_r_1_{}", kind.short()),
            source: "/drctl/runs/r".into(),
            kind,
            time: at,
            subject: "p".into(),
            datacontenttype: "application/json".into(),
            data: EventData {
                run_id: Some("r".into()),
                run_kind: Some("failover".into()),
                plans: vec!["p".into()],
                tier: Some("critical".into()),
                target: Some("us-east-1".into()),
                operator: None,
                severity: Severity::Critical,
                summary: "something happened".into(),
                record: Some(RecordRef {
                    seq: 1,
                    hash: "a".repeat(64),
                }),
                detail,
            },
        };
        let doc = serde_json::to_value(&e).unwrap();
        let errs = errors(&v, &doc);
        assert!(errs.is_empty(), "{kind}: {errs:#?}\n{doc:#}");
        let mut broken = doc.clone();
        broken["data"]["severity"] = json!("loud");
        assert!(
            !errors(&v, &broken).is_empty(),
            "{kind}: a bad severity must fail"
        );
    }
}

/// A dry run's document as `docs/preview.schema.json` has it, by hand: one
/// step with a call, one whose read failed, both gates.
fn a_preview() -> Value {
    json!({
        "schema": "drctl.preview/v2",
        "dry_run": true,
        "kind": "failover",
        "target": "us-east-1",
        "steps": [
            {"step": "payments/promote:payments-db", "description": "promote",
             "after": ["payments/preflight"],
             "calls": [{"call": "rds:PromoteReadReplica", "resource": "payments-db-use1",
                        "region": "us-east-1", "current": "replica", "desired": "primary",
                        "change": true}]},
            {"step": "payments/raise:payments-api", "description": "raise",
             "after": ["payments/preflight"], "calls": [],
             "error": "autoscaling:DescribeAutoScalingGroups in us-east-1: timed out"}
        ],
        "gates": [
            {"plan": "payments", "gate": "rpo", "decision": "would pass",
             "detail": {"rpo_seconds": 300, "accept_data_loss_seconds": null, "databases": []}},
            {"plan": "payments", "gate": "approval", "detail": {"required": true, "given": false}}
        ],
        "forecast": null,
        "verified": {"payments": {"verified": false, "drill": null, "drilled_at": null,
                                  "staleness": null, "lag": "within", "differences": [],
                                  "reason": "no passing drill on record"}},
        "preview": {"schema_version": 2, "hash": "p2-20261129T101500Z-0bf57c344f89b7da97808bee9f1afb85",
                    "lines": ["failover to us-east-1"], "unread": ["payments/raise:payments-api"]}
    })
}

/// Issue 41: the dry run's JSON has a published schema, and it is strict:
/// what a v2 preview never holds fails at its place (a `Result` leaked as
/// `{"Ok": [...]}`, a hash `--approve-preview` would refuse, a decision on
/// the approval gate, a band that is not one).
#[test]
fn the_preview_schema_takes_a_dry_run_and_rejects_what_it_never_holds() {
    let v = preview_validator();
    let good = a_preview();
    assert!(errors(&v, &good).is_empty(), "{:?}", errors(&v, &good));
    let broken = |edit: &dyn Fn(&mut Value), pointer: &str| {
        let mut doc = a_preview();
        edit(&mut doc);
        let errs: Vec<String> = v
            .iter_errors(&doc)
            .map(|e| e.instance_path().to_string())
            .collect();
        assert!(
            errs.iter()
                .any(|at| at == pointer || at.starts_with(&format!("{pointer}/"))),
            "no error at {pointer}: {errs:?}"
        );
    };
    broken(
        &|d| d["steps"][0]["calls"] = json!({"Ok": []}),
        "/steps/0/calls",
    );
    broken(
        &|d| d["preview"]["hash"] = json!("p1-0bf57c344f89b7da97808bee9f1afb85"),
        "/preview/hash",
    );
    broken(
        &|d| d["preview"]["schema_version"] = json!(1),
        "/preview/schema_version",
    );
    broken(
        &|d| d["gates"][1]["decision"] = json!("would pass"),
        "/gates/1",
    );
    broken(
        &|d| d["verified"]["payments"]["lag"] = json!("fine"),
        "/verified/payments/lag",
    );
    broken(&|d| d["schema"] = json!("drctl.preview/v1"), "/schema");
    broken(&|d| d["kind"] = json!("panic"), "/kind");
    broken(
        &|d| {
            d.as_object_mut().unwrap().remove("preview");
        },
        "",
    );
}
