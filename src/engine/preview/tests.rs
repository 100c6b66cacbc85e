use chrono::{DateTime, Utc};

use super::super::tests::{engine, opts, payments, world};
use super::*;
use crate::cloud::fake::FakeCloud;
use crate::journal::JournalStore;
use crate::journal::event::{Outcome, Record};

async fn identity(f: &FakeCloud, o: &RunOptions) -> PreviewId {
    identity_at(f, o, Utc::now()).await
}

/// The preview of `o` made at `made`.
async fn identity_at(f: &FakeCloud, o: &RunOptions, made: DateTime<Utc>) -> PreviewId {
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(f, dir.path());
    let (rows, gates) = e.preview(&payments(), o).await.unwrap();
    let context = e.preview_context(o, made).await;
    identify(o.kind, &o.target, &rows, &gates, &context)
}

/// A run of `o` approved as `hash`: refused (why) or run.
async fn run_approved(f: &FakeCloud, o: &RunOptions, hash: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(f, dir.path());
    let o = RunOptions {
        approved_preview: Some(ApprovedPreview {
            hash: hash.into(),
            lines: None,
        }),
        ..o.clone()
    };
    match e.run(&payments(), &o).await {
        Ok(r) => Ok(r.run_id),
        Err(EngineError::Refused(r)) => Err(r.to_string()),
        Err(e) => panic!("{e}"),
    }
}

/// The journal of a failover of payments approved as `hash`, which ran
/// and succeeded.
async fn journal_of_approved(f: &FakeCloud, hash: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (e, store, _) = engine(f, dir.path());
    let o = RunOptions {
        approved_preview: Some(ApprovedPreview {
            hash: hash.into(),
            lines: None,
        }),
        ..opts()
    };
    let report = e.run(&payments(), &o).await.expect("it runs");
    assert_eq!(report.outcome, Outcome::Succeeded);
    store.read(&report.run_id).await.unwrap()
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
        a.hash.starts_with("p2-") && is_hash(&a.hash) && a.hash.len() == 52,
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
    let text = journal_of_approved(&f, &id.hash).await;
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
        format!("{:?} {:?} {:?}", s.scaled, s.records, s.databases)
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

/// Issue 74, attack 4: what runs could differ from what was approved. The
/// hash now names the data loss the run accepts, a lock taken over, and
/// each step's order; the same options give the same hash.
#[tokio::test]
async fn the_hash_names_the_accepted_loss_a_takeover_and_the_order() {
    let f = world();
    let made = Utc::now();
    let base = identity_at(&f, &opts(), made).await;
    assert_eq!(identity_at(&f, &opts(), made).await.hash, base.hash);
    let lossy = RunOptions {
        accept_data_loss: Some(std::time::Duration::from_secs(3600)),
        ..opts()
    };
    let forced = RunOptions {
        force_unlock: true,
        ..opts()
    };
    for (what, o) in [("accepted loss", lossy), ("a takeover", forced)] {
        let other = identity_at(&f, &o, made).await;
        assert_ne!(other.hash, base.hash, "{what}");
        assert!(!changed(&base.lines, &other.lines).is_empty(), "{what}");
    }
    assert!(
        base.lines
            .iter()
            .any(|l| l.starts_with("step ") && l.contains(" after ")),
        "{:#?}",
        base.lines
    );
}

/// Issue 74, attack 4: a step whose state could not be read hashed as
/// "could not be read" and then did whatever it found at run time. Such a
/// preview is not approvable, and a run approved as a preview refuses
/// when a step cannot be read at its gate.
#[tokio::test]
async fn a_preview_with_an_unread_step_is_not_approvable() {
    let f = world();
    let id = identity(&f, &opts()).await;
    assert!(id.unread.is_empty(), "{:?}", id.unread);
    f.state().dead_regions.insert("us-east-1".into());
    let unread = identity(&f, &opts()).await;
    assert!(!unread.unread.is_empty(), "{:#?}", unread.lines);
    f.state().dead_regions.clear();
    // Data loss accepted, so that the RPO gate passes an unknown lag and
    // the preview gate is the one that judges.
    let o = RunOptions {
        accept_data_loss: Some(std::time::Duration::from_secs(3600)),
        ..opts()
    };
    let fresh = identity(&f, &o).await;
    f.state().dead_regions.insert("us-east-1".into());
    let refused = run_approved(&f, &o, &fresh.hash).await.unwrap_err();
    assert!(refused.contains("could not be read now"), "{refused}");
}

/// Issue 74, attack 5: an approval replayed. One made for another
/// deployment (staging's, with its own signing domain), or long ago, or
/// "in the future", does not pass this deployment's gate.
#[tokio::test]
async fn an_approval_is_bound_to_its_deployment_and_its_time() {
    let f = world();
    let now = Utc::now();
    let day = chrono::Duration::from_std(PREVIEW_VALID_FOR).unwrap();
    let fresh = identity_at(&f, &opts(), now).await;
    assert_eq!(
        made_of(&fresh.hash).map(|m| m.timestamp()),
        Some(now.timestamp())
    );
    let old = identity_at(&f, &opts(), now - day - chrono::Duration::minutes(1)).await;
    let refused = run_approved(&f, &opts(), &old.hash).await.unwrap_err();
    assert!(refused.contains("an approval holds for"), "{refused}");
    let ahead = identity_at(&f, &opts(), now + chrono::Duration::hours(1)).await;
    let refused = run_approved(&f, &opts(), &ahead.hash).await.unwrap_err();
    assert!(refused.contains("later than now"), "{refused}");
    // Staging's preview: the same plans and world, another deployment.
    let dir = tempfile::tempdir().unwrap();
    let (mut staging, mem, _) = engine(&f, dir.path());
    let key = crate::sign::SecretKey::generate();
    staging.store = std::sync::Arc::new(crate::journal::Keyed::new(
        mem,
        crate::journal::RunKeys::new(Some(key.clone()), vec![key.public()])
            .bound("s3://drctl-state-staging", false),
    ));
    let (rows, gates) = staging.preview(&payments(), &opts()).await.unwrap();
    let context = staging.preview_context(&opts(), now).await;
    let theirs = identify(opts().kind, &opts().target, &rows, &gates, &context);
    assert!(
        theirs
            .lines
            .contains(&"deployment s3://drctl-state-staging".to_string())
    );
    let refused = run_approved(&f, &opts(), &theirs.hash).await.unwrap_err();
    assert!(refused.contains("deployment"), "{refused}");
    assert!(run_approved(&f, &opts(), &fresh.hash).await.is_ok());
}

/// Issue 74, attack 5: the gate was early, before the approval and RPO
/// gates (an approval prompt can wait for minutes). It is journaled last,
/// right before the first step.
#[tokio::test]
async fn the_preview_gate_is_the_last_before_the_first_step() {
    let f = world();
    let id = identity(&f, &opts()).await;
    let text = journal_of_approved(&f, &id.hash).await;
    let order: Vec<String> = records(&text)
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Gate { gate, .. } => Some(format!("{gate:?}")),
            Event::StepStarted { .. } => Some("step".into()),
            _ => None,
        })
        .collect();
    let preview = order
        .iter()
        .position(|g| g == "Preview")
        .expect("a preview gate");
    let first_step = order.iter().position(|g| g == "step").expect("a step");
    assert!(
        order[..preview].iter().any(|g| g == "Rpo") && preview < first_step,
        "{order:?}"
    );
}

/// Issue 74, attack 4: `--force-unlock` took the lock over when the locks
/// were taken, before the preview gate found that the approved preview
/// did not take one over. A run approved as a preview now takes over only
/// when the approver's lines say so: otherwise it is refused before any
/// lock, journal or write.
#[tokio::test]
async fn a_takeover_the_approved_preview_does_not_show_is_refused_before_the_lock() {
    let f = world();
    let plain = identity(&f, &opts()).await;
    let forced = RunOptions {
        force_unlock: true,
        force_reason: Some("holder's host is gone".into()),
        ..opts()
    };
    // The same takeover, approved for another run (review): another
    // target, and a day old.
    let elsewhere = identity(
        &f,
        &RunOptions {
            target: "eu-west-1".into(),
            ..forced.clone()
        },
    )
    .await;
    let old = identity_at(&f, &forced, Utc::now() - chrono::Duration::days(2)).await;
    for approved in [
        ApprovedPreview {
            hash: elsewhere.hash.clone(),
            lines: Some(elsewhere.lines.clone()),
        },
        ApprovedPreview {
            hash: old.hash.clone(),
            lines: Some(old.lines.clone()),
        },
        // The approver saw no takeover.
        ApprovedPreview {
            hash: plain.hash.clone(),
            lines: Some(plain.lines.clone()),
        },
        // A hash alone cannot say whether the approver saw one.
        ApprovedPreview {
            hash: plain.hash.clone(),
            lines: None,
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (e, store, _) = engine(&f, dir.path());
        let o = RunOptions {
            approved_preview: Some(approved.clone()),
            ..forced.clone()
        };
        let Err(EngineError::Refused(r)) = e.run(&payments(), &o).await else {
            panic!(
                "a takeover nobody approved ran ({:?})",
                approved.lines.is_some()
            );
        };
        let r = r.to_string();
        assert!(r.contains("does not cover taking over a lock"), "{r}");
        assert!(r.contains("nothing was taken over"), "{r}");
        assert!(
            store.list().await.unwrap().is_empty(),
            "journaled before refusing"
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "a lock was taken"
        );
    }
    // The approver's lines say the same takeover: it runs.
    let approved = identity(&f, &forced).await;
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let o = RunOptions {
        approved_preview: Some(ApprovedPreview {
            hash: approved.hash.clone(),
            lines: Some(approved.lines.clone()),
        }),
        ..forced
    };
    let report = e
        .run(&payments(), &o)
        .await
        .expect("an approved takeover runs");
    assert_eq!(report.outcome, Outcome::Succeeded);
}
