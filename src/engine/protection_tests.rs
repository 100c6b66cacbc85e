//! Route 53 record-set protections (issue 75): a protected record set the
//! switch would change is seen before the outage (`status`'s readiness,
//! the gate: exit 3 before any write) and named during it (the switch's
//! failure when one is made after preflight); a data-plane switch goes on;
//! an unread list stops nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::tests::{checkout, engine, opts, payments, prepared_world, world};
use super::*;
use crate::cloud::fake::FakeCloud;
use crate::cloud::metered::{Effect, Injection, Metered};
use crate::journal::store::MemoryStore;

const COMMENT: &str = "change freeze OPS-7";

/// The journal of the one run in `store`.
async fn journal(store: &MemoryStore) -> String {
    let id = store.list().await.unwrap().pop().unwrap();
    store.read(&id).await.unwrap()
}

#[tokio::test]
async fn a_protected_record_is_not_ready_in_status_and_refuses_the_failover_before_any_write() {
    let f = world();
    f.protect("example.com.", "api.example.com.", "CNAME", Some(COMMENT));
    // Before the outage: status's readiness names it, with how to lift it.
    let found = crate::steps::readiness(
        &f.clouds(),
        &payments()[0],
        "us-east-1",
        Duration::from_secs(5),
    )
    .await;
    let blocks: Vec<&str> = (found.iter())
        .filter_map(|x| x.problem.as_deref())
        .filter(|p| p.contains("is protected"))
        .collect();
    assert_eq!(blocks.len(), 1, "{found:#?}");
    assert!(
        blocks[0].contains("api.example.com. CNAME")
            && blocks[0].contains(COMMENT)
            && blocks[0].contains("delete-resource-record-set-protections")
            && blocks[0].contains("health-check"),
        "{}",
        blocks[0]
    );
    // During it: refused by the gate (exit 3), before any cloud write.
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let o = RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        ..opts()
    };
    let err = e.run(&payments(), &o).await.unwrap_err();
    let EngineError::Refused(r) = &err else {
        panic!("not refused: {err}")
    };
    assert!(
        r.message.contains("api.example.com. CNAME") && r.message.contains(COMMENT),
        "{r}"
    );
    assert!(
        (r.hint.as_deref()).is_some_and(|h| h.contains("--hosted-zone-id ZFAKE")),
        "{r}"
    );
    assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
    let text = journal(&store).await;
    assert!(
        text.contains(r#""gate":"protections""#) && text.contains(r#""decision":"refuse""#),
        "{text}"
    );
    assert_eq!(
        (f.state().protections.values().flatten().count()),
        1,
        "drctl never lifts a protection"
    );
}

#[tokio::test]
async fn a_data_plane_switch_goes_on_past_a_protection_of_its_record() {
    let f = prepared_world().await;
    f.protect(
        "example.com.",
        "checkout.example.com.",
        "CNAME",
        Some(COMMENT),
    );
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let o = RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        ..RunOptions {
            target: "us-west-2".into(),
            ..opts()
        }
    };
    let report = e.run(&checkout(), &o).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
}

#[tokio::test]
async fn protections_that_cannot_be_read_stop_nothing_and_are_said_unread() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, store, rec) = engine(&f, dir.path());
    let fault = |nth| Injection {
        label: "route53:ListResourceRecordSetProtections",
        nth,
        effect: Effect::Refused,
        kind: crate::cloud::ErrorKind::Connection,
    };
    (e.clouds, _) = Metered::wrap_with_faults(f.clouds(), vec![fault(1), fault(2)]);
    let o = RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        ..opts()
    };
    let report = e.run(&payments(), &o).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    assert!(
        (rec.notes().iter()).any(|n| n.contains("record-set protections not read")),
        "{:?}",
        rec.notes()
    );
    let text = journal(&store).await;
    assert!(text.contains(r#""unread":"#), "{text}");
}

/// Protects api.example.com. the moment the switch starts: someone made a
/// protection after preflight read none.
struct ProtectAtSwitch(FakeCloud, Mutex<Vec<String>>);

impl Reporter for ProtectAtSwitch {
    fn started(&self, step: &crate::steps::graph::Step) {
        if step.id.to_string().contains("switch-dns") {
            (self.0).protect("example.com.", "api.example.com.", "CNAME", Some(COMMENT));
        }
    }
    fn finished(
        &self,
        step: &crate::steps::graph::Step,
        result: Result<&Value, &StepFailure>,
        _: Duration,
    ) {
        if let Err(e) = result {
            self.1.lock().unwrap().push(format!("{}: {e}", step.id));
        }
    }
    fn note(&self, _: &str) {}
}

#[tokio::test]
async fn a_protection_made_after_preflight_fails_the_switch_naming_it() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, _, _) = engine(&f, dir.path());
    let rec = Arc::new(ProtectAtSwitch(f.clone(), Mutex::default()));
    e.reporter = rec.clone();
    let o = RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        ..opts()
    };
    let report = e.run(&payments(), &o).await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report:#?}");
    let failed = rec.1.lock().unwrap().clone();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("api.example.com. CNAME")
            && failed[0].contains("is protected")
            && failed[0].contains(COMMENT)
            && failed[0].contains("InvalidChangeBatch"),
        "{failed:?}"
    );
    // Nothing of the zone changed: the change was refused whole.
    assert!(
        !(f.state().writes.iter()).any(|w| w.starts_with("ChangeResourceRecordSets")),
        "{:?}",
        f.state().writes
    );
}

/// The gate's read is the run's only one: preflight uses the zone and the
/// protections it read moments before (one request more a failover than
/// before the gate, not three).
#[tokio::test]
async fn preflight_uses_what_the_gate_read() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, _, _) = engine(&f, dir.path());
    let (clouds, log) = Metered::wrap(f.clouds());
    e.clouds = clouds;
    let o = RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        ..opts()
    };
    let report = e.run(&payments(), &o).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let counts = log.counts();
    assert_eq!(
        counts["route53:ListResourceRecordSetProtections"], 1,
        "{counts:?}"
    );
    assert_eq!(counts["route53:ListHostedZonesByName"], 1, "{counts:?}");
}

#[tokio::test]
async fn a_preview_says_the_protections_gate_would_refuse() {
    let f = world();
    f.protect("example.com.", "api.example.com.", "CNAME", Some(COMMENT));
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let (_, gates) = e.preview(&payments(), &opts()).await.unwrap();
    let gate = (gates.iter())
        .find_map(|g| match g {
            super::preview::PreviewGate::Protections {
                decision, detail, ..
            } => Some((decision.clone(), detail.clone())),
            _ => None,
        })
        .expect("the protections gate is previewed");
    assert_eq!(gate.0, "would refuse");
    assert!(gate.1.to_string().contains(COMMENT), "{}", gate.1);
}
