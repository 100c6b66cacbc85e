//! The step kinds' roles as the `kinds!` list marks them: a kind that
//! makes a database the writer answers a resume's re-read (`+ writes`);
//! checked over every step the reference plans compile, so a new mover
//! unmarked (whose endpoint a resume would then take from the journal) or
//! a marked kind that names no endpoint fails here.

use crate::steps::graph::{RunMode, compile_mode};

/// Over every step the reference plans compile (failovers, restores, a
/// Cloud SQL instance restored from backups): a kind is marked `+ writes`
/// exactly when its outputs name an endpoint and it is no drill.
#[test]
fn every_step_that_makes_a_writer_answers_a_resumes_reread() {
    let mut writers = std::collections::BTreeSet::new();
    // A Cloud SQL instance restored from backups, as a plan may say.
    let mut pitr = crate::plan::reference_with_gcp();
    for p in &mut pitr {
        for c in &mut p.spec.cloud_sql {
            c.strategy = crate::plan::spec::DbStrategy::PointInTimeRestore;
        }
    }
    for p in crate::plan::reference_with_gcp().into_iter().chain(pitr) {
        let restores =
            (p.spec.database.iter().map(|d| d.id.clone())).map(|database| RunMode::Restore {
                database,
                to_time: None,
            });
        let modes: Vec<RunMode> = [
            RunMode::Failover { planned: false },
            RunMode::Failover { planned: true },
        ]
        .into_iter()
        .chain(restores)
        .collect();
        for r in p.regions() {
            for mode in &modes {
                let Ok(g) = compile_mode(&p, r, mode) else {
                    continue;
                };
                for s in g.steps {
                    let names = s.kind.name().traits().endpoint.is_some();
                    let writer = names && s.kind.drilled().is_none();
                    assert_eq!(s.kind.writes().is_some(), writer, "{}", s.id);
                    if writer {
                        writers.insert(s.kind.name().as_str());
                    }
                }
            }
        }
    }
    for kind in ["promote", "restore"] {
        assert!(writers.contains(kind), "{kind} compiled: {writers:?}");
    }
}
