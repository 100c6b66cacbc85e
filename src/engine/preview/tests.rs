use super::super::tests::{engine, opts, payments, world};
use super::*;
use crate::cloud::fake::FakeCloud;
use crate::journal::JournalStore;
use crate::journal::event::{Outcome, Record};

async fn identity(f: &FakeCloud, o: &RunOptions) -> PreviewId {
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(f, dir.path());
    let (rows, gates) = e.preview(&payments(), o).await.unwrap();
    identify(o.kind, &o.target, &rows, &gates)
}

fn records(text: &str) -> Vec<Record> {
    (text.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What moves every second without changing what is done (the lag read)
/// and whether this command line approves leave the hash as it was.
#[tokio::test]
async fn a_preview_hash_names_what_is_done_not_the_lag_or_who_approves() {
    let f = world();
    let a = identity(&f, &opts()).await;
    assert!(
        a.hash.starts_with("p1-") && a.hash.len() == 35,
        "{}",
        a.hash
    );
    assert_eq!(a.hash, hash(&a.lines));
    assert_eq!(a.lines[0], "failover to us-east-1");
    assert!(
        a.lines.iter().any(|l| l.contains("payments-api-use1")),
        "{:#?}",
        a.lines
    );
    for (_, lag) in f.state().lag.iter_mut() {
        *lag = vec![1.0];
    }
    let unapproved = RunOptions {
        approve: None,
        ..opts()
    };
    assert_eq!(identity(&f, &unapproved).await.hash, a.hash);
}

#[test]
fn what_changed_is_said_line_by_line() {
    let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        changed(&l(&["a", "b", "c"]), &l(&["a", "c", "d"])),
        l(&["- b", "+ d"])
    );
    assert!(changed(&l(&["a"]), &l(&["a"])).is_empty());
}

/// A run approved as its preview runs, and its journal says which
/// preview it ran as.
#[tokio::test]
async fn a_run_approved_as_its_fresh_preview_runs_and_journals_it() {
    let f = world();
    let id = identity(&f, &opts()).await;
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let o = RunOptions {
        approved_preview: Some(ApprovedPreview {
            hash: id.hash.clone(),
            lines: None,
        }),
        ..opts()
    };
    let report = e.run(&payments(), &o).await.expect("it runs");
    assert_eq!(report.outcome, Outcome::Succeeded);
    let text = store.read(&report.run_id).await.unwrap();
    let gate = records(&text).into_iter().find_map(|r| match r.event {
        Event::Gate {
            gate: GateName::Preview,
            decision,
            detail,
            ..
        } => Some((decision, detail)),
        _ => None,
    });
    let (decision, detail) = gate.expect("a preview gate");
    assert_eq!(decision, Decision::Pass);
    assert_eq!(detail["approved"], id.hash.as_str());
}

/// The attack the gate exists for: the world changes between the
/// approval and the run (here someone promoted the standby replica by
/// hand). The run is refused before anything changes, names what
/// changed, and journals why.
#[tokio::test]
async fn a_preview_invalidated_by_a_world_change_is_refused_naming_the_change() {
    let f = world();
    let id = identity(&f, &opts()).await;
    (f.clouds()
        .database
        .promote_replica("us-east-1", "payments-db-use1"))
    .await
    .unwrap();
    let world_now = || {
        let s = f.state();
        format!("{:?} {:?} {:?}", s.groups, s.records, s.databases)
    };
    let before = world_now();
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(&f, dir.path());
    let o = RunOptions {
        approved_preview: Some(ApprovedPreview {
            hash: id.hash.clone(),
            lines: Some(id.lines.clone()),
        }),
        ..opts()
    };
    let plans = payments();
    let ran = tokio::time::timeout(std::time::Duration::from_secs(20), e.run(&plans, &o));
    let Err(EngineError::Refused(r)) = ran.await.expect("refused at once") else {
        panic!("refused");
    };
    let text = r.to_string();
    assert!(text.contains(&id.hash), "{text}");
    assert!(
        text.contains("\n  - step") && text.contains("\n  + step"),
        "{text}"
    );
    assert_eq!(world_now(), before, "nothing changed");
    let id_run = store.list().await.unwrap().pop().unwrap();
    let rs = records(&store.read(&id_run).await.unwrap());
    assert!(rs.iter().any(|r| matches!(
        &r.event,
        Event::Gate {
            gate: GateName::Preview,
            decision: Decision::Refuse,
            ..
        }
    )));
    assert!(
        !rs.iter()
            .any(|r| matches!(&r.event, Event::StepStarted { .. })),
        "no step started"
    );
    assert!(rs.iter().any(|r| matches!(
        &r.event,
        Event::RunFinished {
            outcome: Outcome::Refused,
            ..
        }
    )));
}
