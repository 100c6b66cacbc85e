//! With public run keys listed, every reader of runs authenticates
//! (`journal::runs`): a journal a writer of the state wrote without the
//! run key (its hash chain correct, since SHA-256 has no key) moves
//! nothing. Each test writes the forgery the plainest way, as an unkeyed
//! drctl over the same store, then reads with the keys listed.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::drill_tests::orders;
use super::tests::{drill_opts, engine, payments, world};
use super::*;
use crate::journal::{Event, JournalError, Keyed, RunKeys, Temp};
use crate::sign::SecretKey;

/// Keys listed, and the run key held: the store of a keyed deployment.
pub(super) fn keyed(
    mem: &Arc<crate::journal::MemoryStore>,
) -> Arc<dyn crate::journal::JournalStore> {
    let k = SecretKey::generate();
    Arc::new(Keyed::new(
        mem.clone(),
        RunKeys::new(Some(k.clone()), vec![k.public()]),
    ))
}

/// Regression (issue 39): one forged journal claiming a plan's next
/// drill slot silently stopped its scheduled drills. With keys listed the
/// slot check leaves it out: the scheduled drill runs, and then its own
/// signed journal holds the slot (a second run of it is refused).
#[tokio::test(start_paused = true)]
async fn regression_a_forged_journal_claiming_the_drill_slot_stopped_the_scheduled_drill() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, mem, _) = engine(&f, dir.path());
    let slot: DateTime<Utc> = (Utc::now() - Duration::hours(1))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string()
        .parse()
        .unwrap();
    let slotted = RunOptions {
        slot: Some(slot),
        ..drill_opts()
    };
    let forged = e.run(&payments(), &slotted).await.unwrap();
    assert_eq!(
        e.slot_taken(&["payments"], slot).await.unwrap(),
        Some(forged.run_id.clone()),
        "unkeyed, the journal holds the slot"
    );
    e.store = keyed(&mem);
    assert_eq!(e.slot_taken(&["payments"], slot).await.unwrap(), None);
    let run = e.run(&payments(), &slotted).await.unwrap();
    assert_ne!(run.run_id, forged.run_id);
    assert_eq!(
        e.slot_taken(&["payments"], slot).await.unwrap(),
        Some(run.run_id.clone())
    );
    let again = e.run(&payments(), &slotted).await.unwrap_err();
    assert!(matches!(again, EngineError::Refused(_)), "{again}");
}

/// Regression (issue 39): a forged expired drill made `drill sweep` lower
/// a node group (found by the drill's journal alone). With keys listed
/// the sweep finds nothing in it; unkeyed it would lower the group.
#[tokio::test]
async fn regression_a_forged_drill_journal_made_a_sweep_lower_a_node_group() {
    let f = world();
    let plans = orders(&f);
    let dir = tempfile::tempdir().unwrap();
    let (e, mem, _) = engine(&f, dir.path());
    let crash = RunOptions {
        inject_crash: Some(CrashPoint::After("orders/drill-raise:orders-nodes".into())),
        ..drill_opts()
    };
    let Err(EngineError::Crashed(_, _)) = e.run(&plans, &crash).await else {
        panic!("crashed after the raise");
    };
    // The journal alone names the raise: no marks on the node group (as
    // a forger's journal would claim a raise of a group nobody marked).
    for ((kind, _, _), g) in f.state().scaled.iter_mut() {
        if *kind == "node_group" {
            g.marks.clear();
        }
    }
    let later = Utc::now() + Duration::days(2);
    let node = |found: &[crate::cleanup::sweep::Found]| {
        found.iter().any(|x| {
            matches!(
                x.resource,
                Temp::Raised {
                    kind: crate::plan::spec::ResourceKind::NodeGroup,
                    ..
                }
            )
        })
    };
    let (open, _) = crate::cleanup::sweep::find(&f.clouds(), &plans, mem.as_ref(), later).await;
    assert!(node(&open), "unkeyed, the journal is believed: {open:?}");
    let store = keyed(&mem);
    let (found, errors) =
        crate::cleanup::sweep::find(&f.clouds(), &plans, store.as_ref(), later).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(!node(&found), "{found:?}");
    let raised = crate::steps::capacity::left_raised(store.as_ref(), "")
        .await
        .unwrap();
    assert!(raised.is_empty(), "{raised:?}");
}

/// Regression (issue 39): `notify flush` sent the operators' signed
/// notifications about a run that never happened, and signed its delivery
/// facts beside it. With keys listed, the one read of a run with its late
/// facts refuses the forgery, and no late fact is anchored in it.
#[tokio::test(start_paused = true)]
async fn regression_a_forged_journal_was_read_and_a_late_fact_anchored_in_it() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (e, mem, _) = engine(&f, dir.path());
    let forged = e.run(&payments(), &drill_opts()).await.unwrap().run_id;
    assert!(crate::runs::late::read(mem.as_ref(), &forged).await.is_ok());
    let store = keyed(&mem);
    let err = crate::runs::late::read(store.as_ref(), &forged)
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Broken(_)), "{err}");
    let fact = Event::EvidenceVerified {
        by: None,
        host: "h".into(),
        plans: vec![],
    };
    let err = crate::journal::late::record(store.as_ref(), &forged, "h", vec![fact])
        .await
        .unwrap_err();
    assert!(matches!(err, JournalError::Broken(_)), "{err}");
    assert!(mem.read_late(&forged).await.unwrap().is_empty());
}

/// A lock holder is taken for a shadow drill (which a failover preempts
/// without `--force-unlock`) only on its authenticated journal: with keys
/// listed, a journal written without the run key that says "shadow drill"
/// (a failover's, rewritten) is not, and a signed drill's is.
#[tokio::test(start_paused = true)]
async fn a_forged_shadow_drill_journal_does_not_make_its_holder_preemptible() {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let (mut e, mem, _) = engine(&f, dir.path());
    let forged = e.run(&payments(), &drill_opts()).await.unwrap().run_id;
    assert!(
        e.is_shadow_drill_run(&forged).await,
        "unkeyed, it is believed"
    );
    e.store = keyed(&mem);
    assert!(!e.is_shadow_drill_run(&forged).await);
    let signed = e.run(&payments(), &drill_opts()).await.unwrap().run_id;
    assert!(e.is_shadow_drill_run(&signed).await);
}
