//! The every-node fault loop (as saga engines test their sagas): for every
//! step of every graph kind, on the in-memory cloud, crash before the step,
//! crash after it, and fail each cloud call the run makes; then resume, and
//! check that the run converges to the end state of a clean run, that every
//! change was made exactly once, and that the journal's chain verifies.
//! Every action is also run twice in a row: the second run changes nothing.
//! Every run notifies a sink (the fake's SNS): whatever the crash or the
//! failure, every event the final journal owes was sent at least once, with
//! its journaled id, and nothing is left owed.
//!
//! The cases come from the compiled graphs and the calls a clean run makes,
//! so a new step kind is covered without editing this file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::cloud::ErrorKind;
use crate::cloud::fake::FakeCloud;
use crate::cloud::metered::{Effect, Injection, Metered};
use crate::journal::event::RunKind;
use crate::journal::store::MemoryStore;
use crate::steps::Cx;

struct Quiet;
impl Reporter for Quiet {
    fn started(&self, _: &Step) {}
    fn finished(&self, _: &Step, _: Result<&Value, &StepFailure>, _: Duration) {}
    fn note(&self, _: &str) {}
}

/// The reference plans, and the plans on GCP (`plans/gcp`: orders-gcp on
/// GCP alone, storefront on both clouds).
fn plans() -> Vec<Plan> {
    crate::plan::reference_with_gcp()
}

/// The reference world, served from us-west-2, with the plans on GCP
/// seeded as the simulator seeds a plan (each kind its own way).
fn world() -> FakeCloud {
    let f = crate::cloud::fake::reference_world((&[3.0], &[60.0]));
    for p in plans()
        .iter()
        .filter(|p| matches!(p.name(), "orders-gcp" | "storefront"))
    {
        crate::plan::kinds::seed_plan(&f, p);
    }
    f
}

/// One graph kind to put through the loop: how to prepare the world and
/// what to run.
struct Scenario {
    name: &'static str,
    plans: Vec<&'static str>,
    opts: RunOptions,
    /// Runs to make (cleanly) before the one under test.
    before: Vec<RunOptions>,
}

fn opts(kind: RunKind, mode: RunMode, target: &str) -> RunOptions {
    RunOptions {
        kind,
        mode,
        approve: Some("fault loop".into()),
        accept_data_loss: Some(Duration::from_secs(3600)),
        pace: crate::engine::Pace {
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Default::default()
        },
        step_timeout: Some(Duration::from_secs(5)),
        side_read_timeout: Duration::from_millis(200),
        ..RunOptions::failover(target)
    }
}

fn scenarios() -> Vec<Scenario> {
    let failover = opts(
        RunKind::Failover,
        RunMode::Failover { planned: false },
        "us-east-1",
    );
    let reprotect = opts(RunKind::Reprotect, RunMode::Reprotect, "us-east-1");
    vec![
        Scenario {
            name: "failover payments",
            plans: vec!["payments"],
            opts: failover.clone(),
            before: vec![],
        },
        Scenario {
            name: "failover all plans",
            plans: vec!["payments", "ledger"],
            opts: failover.clone(),
            before: vec![],
        },
        Scenario {
            name: "restore payments-db",
            plans: vec!["payments"],
            opts: opts(
                RunKind::Restore,
                RunMode::Restore {
                    database: "payments-db".into(),
                    to_time: None,
                },
                "us-west-2",
            ),
            before: vec![],
        },
        Scenario {
            name: "reprotect ledger",
            plans: vec!["ledger"],
            opts: reprotect.clone(),
            before: vec![failover.clone()],
        },
        Scenario {
            name: "failover orders",
            plans: vec!["orders"],
            opts: failover.clone(),
            before: vec![],
        },
        Scenario {
            name: "reprotect orders",
            plans: vec!["orders"],
            opts: reprotect.clone(),
            before: vec![failover.clone()],
        },
        Scenario {
            name: "failback orders (a switchover)",
            plans: vec!["orders"],
            opts: opts(
                RunKind::Failback,
                RunMode::Failover { planned: true },
                "us-west-2",
            ),
            before: vec![failover.clone()],
        },
        Scenario {
            name: "failover storefront (AWS and GCP in one run)",
            plans: vec!["storefront"],
            opts: failover.clone(),
            before: vec![],
        },
        Scenario {
            name: "failover orders-gcp (a Cloud SQL DR failover, a group and a service)",
            plans: vec!["orders-gcp"],
            opts: opts(
                RunKind::Failover,
                RunMode::Failover { planned: false },
                "us-east4",
            ),
            before: vec![],
        },
        Scenario {
            name: "planned failover orders-gcp (a Cloud SQL switchover)",
            plans: vec!["orders-gcp"],
            opts: opts(
                RunKind::Failover,
                RunMode::Failover { planned: true },
                "us-east4",
            ),
            before: vec![],
        },
        Scenario {
            name: "reprotect orders-gcp (the former primary rejoins, the DR replica designated)",
            plans: vec!["orders-gcp"],
            opts: opts(RunKind::Reprotect, RunMode::Reprotect, "us-east4"),
            before: vec![opts(
                RunKind::Failover,
                RunMode::Failover { planned: false },
                "us-east4",
            )],
        },
        Scenario {
            name: "failback storefront (RDS and Cloud SQL, after reprotect)",
            plans: vec!["storefront"],
            opts: opts(
                RunKind::Failback,
                RunMode::Failover { planned: true },
                "us-west-2",
            ),
            before: vec![
                failover.clone(),
                opts(RunKind::Reprotect, RunMode::Reprotect, "us-east-1"),
            ],
        },
        Scenario {
            name: "failback payments",
            plans: vec!["payments"],
            opts: opts(
                RunKind::Failback,
                RunMode::Failover { planned: true },
                "us-west-2",
            ),
            before: vec![failover, reprotect],
        },
    ]
}

/// Everything that can differ between two runs and says nothing about the
/// world: run ids and the tags derived from them.
fn normalize(text: &str, run_ids: &[String]) -> String {
    let mut out = text.to_string();
    for id in run_ids {
        out = out.replace(id.as_str(), "<run>");
        for n in [6, 4] {
            let tag: String = id
                .chars()
                .rev()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(n)
                .collect::<String>()
                .to_lowercase();
            out = out
                .replace(&format!("-r{tag}"), "-r<tag>")
                .replace(&format!("-pre-{tag}"), "-pre-<tag>");
        }
    }
    out
}

/// The world as the fake holds it, without what time or run ids vary.
fn state(f: &FakeCloud, run_ids: &[String]) -> String {
    let mut s = f.state();
    // A former Cloud SQL primary rejoins when next read: read it now, so
    // that runs that read it last and runs that did not compare alike.
    s.sql_rejoin();
    let dbs: BTreeMap<String, String> = s
        .databases
        .iter()
        .map(|((r, id), i)| {
            (
                format!("{r}/{id}"),
                format!("{:?} {} {:?}", i.role, i.status, i.endpoint),
            )
        })
        .collect();
    // Record order in a zone is the order of the upserts: not state.
    let records: BTreeMap<&String, Vec<String>> = s
        .records
        .iter()
        .map(|(z, rs)| {
            let mut rs: Vec<String> = rs.iter().map(|r| format!("{r:?}")).collect();
            rs.sort();
            (z, rs)
        })
        .collect();
    let globals: BTreeMap<&String, String> = (s.globals.iter())
        .map(|(id, g)| {
            let members: Vec<String> = (g.members.iter())
                .map(|m| format!("{}{}", m.id, if m.writer { " (writer)" } else { "" }))
                .collect();
            (id, format!("{} {:?} {members:?}", g.status, g.moving))
        })
        .collect();
    let clusters: BTreeMap<String, String> = (s.clusters.iter())
        .map(|((r, id), c)| {
            (
                format!("{r}/{id}"),
                format!("{} {:?}", c.status, c.global_cluster),
            )
        })
        .collect();
    // The groups of the capacity kinds on the role's port.
    let groups: BTreeMap<String, String> = (s.scaled.iter())
        .map(|((kind, r, n), g)| {
            (
                format!("{kind} {r}/{n}"),
                format!("{} {:?}", g.size, g.status),
            )
        })
        .collect();
    let sql: BTreeMap<String, String> = (s.sql.iter())
        .map(|((p, n), i)| {
            (
                format!("{p}/{n}"),
                format!("{:?} {} {:?}", i.role, i.state, i.replicas),
            )
        })
        .collect();
    normalize(
        &format!("{dbs:#?}\n{groups:#?}\n{records:#?}\n{globals:#?}\n{clusters:#?}\n{sql:#?}"),
        run_ids,
    )
}

/// The changes the fake saw, sorted (concurrent steps may interleave).
/// The cloud's writes, normalized and sorted. A rerun of the evidence step
/// writes a pack of its own under `<run>/attempt-<n>/` and never adopts
/// what an interrupted attempt left (docs/evidence.md), so a pack's objects
/// are written at least once, and counted once here; every other change
/// exactly once.
fn changes(f: &FakeCloud, run_ids: &[String]) -> Vec<String> {
    let mut w: Vec<String> = f
        .state()
        .writes
        .iter()
        .map(|w| {
            let w = normalize(w, run_ids);
            match (w.starts_with("PutObject "), w.find("/<run>/attempt-")) {
                (true, Some(at)) => {
                    let rest = &w[at + "/<run>/attempt-".len()..];
                    let name = rest.split_once('/').map_or(rest, |(_, n)| n);
                    format!("{}/<run>/{name}", &w[..at])
                }
                _ => w,
            }
        })
        .collect();
    w.sort();
    w.dedup_by(|a, b| a == b && a.starts_with("PutObject ") && a.contains("/<run>/"));
    w
}

struct Bench {
    f: FakeCloud,
    engine: Engine,
    store: Arc<MemoryStore>,
    plans: Vec<Plan>,
    _dir: tempfile::TempDir,
    run_ids: Vec<String>,
}

/// A fresh world with the scenario's earlier runs made; `faults` apply to
/// the run under test only.
async fn bench(sc: &Scenario, faults: Vec<Injection>) -> (Bench, crate::cloud::metered::MeterLog) {
    let f = world();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let all = plans();
    let mut engine = Engine {
        clouds: f.clouds(),
        side_clouds: f.clouds(),
        store: store.clone(),
        locks: std::sync::Arc::new(crate::state::local::LocalLocks::new(
            dir.path().to_path_buf(),
        )),
        reporter: Arc::new(Quiet),
        confirm: None,
        notify: None,
        waits: None,
        inventory: None,
    };
    let sink: crate::plan::notify::NotifySpec = toml::from_str(
        "name = \"ops\"\nkind = \"sns\"\ntopic_arn = \"arn:aws:sns:{region}:000000000000:drctl\"",
    )
    .unwrap();
    let plans: Vec<Plan> = all
        .iter()
        .filter(|p| sc.plans.contains(&p.name()))
        .cloned()
        .collect();
    let mut run_ids = Vec::new();
    for o in &sc.before {
        let r = engine
            .run(&plans, o)
            .await
            .unwrap_or_else(|e| panic!("{}: setup run: {e}", sc.name));
        assert!(r.succeeded(), "{}: setup run {:?}", sc.name, r.outcome);
        run_ids.push(r.run_id);
    }
    f.state().writes.clear();
    let (clouds, log) = Metered::wrap_with_faults(f.clouds(), faults);
    engine.clouds = clouds;
    engine.notify = Some(Arc::new(crate::notify::Hub::new(
        vec![sink],
        Arc::new(|_| None),
        Some(f.clouds().publisher),
        "fault-loop",
    )));
    (
        Bench {
            f,
            engine,
            store,
            plans,
            _dir: dir,
            run_ids,
        },
        log,
    )
}

impl Bench {
    /// Every event the run's journal owes was sent at least once (with its
    /// journaled id: exactly once at a receiver that deduplicates), and,
    /// once the process has settled, nothing is left owed.
    async fn told(&self, sc: &Scenario, run_id: &str, case: &str) {
        let hub = self.engine.notify.clone().expect("a hub");
        hub.settle(Duration::from_secs(5)).await;
        // What other processes recorded beside the journal (the settle's
        // results) counts as the journal itself does.
        let merged = crate::runs::late::read(self.store.as_ref(), run_id)
            .await
            .unwrap();
        let records = merged.records;
        let journaled: std::collections::BTreeSet<String> = records
            .iter()
            .filter_map(|r| match &r.event {
                Event::Notification { event, .. } => Some(event.id.clone()),
                _ => None,
            })
            .collect();
        let info = crate::notify::PlanInfo::of(&self.plans);
        let last = merged.last_hash;
        let owed_ids: std::collections::BTreeSet<String> =
            crate::notify::build::expected(&records, &last, &info)
                .into_iter()
                .map(|e| e.id)
                .collect();
        assert!(
            owed_ids.is_subset(&journaled),
            "{}: {case}: every event owed is journaled: {owed_ids:?} vs {journaled:?}",
            sc.name
        );
        let sent: std::collections::BTreeSet<String> = (self.f.state().published.iter())
            .filter_map(|(_, _, body)| serde_json::from_str::<Value>(body).ok())
            .filter_map(|e| e["id"].as_str().map(str::to_string))
            .filter(|id| id.contains(run_id))
            .collect();
        assert_eq!(
            sent, journaled,
            "{}: {case}: every journaled event sent",
            sc.name
        );
        assert!(
            crate::notify::owed(&records).is_empty(),
            "{}: {case}: nothing left owed",
            sc.name
        );
    }

    /// Runs the scenario, then resumes (with clean clouds) until it succeeds.
    async fn run_and_resume(&mut self, sc: &Scenario, opts: &RunOptions, case: &str) -> String {
        let first = self.engine.run(&self.plans, opts).await;
        let run_id = match &first {
            Ok(r) => r.run_id.clone(),
            Err(EngineError::Crashed(_, id)) => id.clone(),
            Err(e) => panic!("{}: {case}: the run did not start: {e}", sc.name),
        };
        self.run_ids.push(run_id.clone());
        self.engine.clouds = self.f.clouds();
        let mut outcome = first.as_ref().ok().map(|r| r.outcome);
        for _ in 0..3 {
            if outcome == Some(Outcome::Succeeded) {
                break;
            }
            let resume = RunOptions {
                inject_crash: None,
                ..opts.clone()
            };
            let r = self
                .engine
                .resume(&run_id, &self.plans, Some(resume))
                .await
                .unwrap_or_else(|e| panic!("{}: {case}: resume failed: {e}", sc.name));
            outcome = Some(r.outcome);
        }
        assert_eq!(
            outcome,
            Some(Outcome::Succeeded),
            "{}: {case}: converges",
            sc.name
        );
        let text = self.store.read(&run_id).await.unwrap();
        assert!(
            crate::journal::verify(&run_id, &text).ok,
            "{}: {case}: the chain verifies",
            sc.name
        );
        run_id
    }
}

/// One case of the loop: a crash at a point of the run, or one call of
/// it that fails.
enum Case {
    Crash(CrashPoint),
    Fails(Injection),
}

impl Case {
    fn name(&self) -> String {
        match self {
            Case::Crash(point) => point.to_string(),
            Case::Fails(i) => format!("call {} of {} fails ({:?})", i.nth, i.label, i.effect),
        }
    }
}

/// What a scenario's clean run found: the end state and the changes every
/// case must reach, the steps, and the cases they make.
struct Clean {
    state: String,
    changes: Vec<String>,
    steps: Vec<Step>,
    cases: Vec<Case>,
}

/// The clean run of `sc`: every step crashed before and after, every call
/// it made refused and answered-but-lost.
async fn clean(sc: &Scenario) -> Clean {
    let (mut clean, log) = bench(sc, Vec::new()).await;
    clean.run_and_resume(sc, &sc.opts, "clean").await;
    let steps = compile_all(&clean.plans, &sc.opts.target, &sc.opts.mode).unwrap();
    let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
    let calls: Vec<(&'static str, usize)> = (log.calls().iter())
        .map(|c| {
            let n = seen.entry(c.label).or_insert(0);
            *n += 1;
            (c.label, *n)
        })
        .collect();
    assert!(!calls.is_empty() && !steps.is_empty(), "{}", sc.name);
    let crashes = (steps.iter()).flat_map(|s| {
        [
            Case::Crash(CrashPoint::Before(s.id.to_string())),
            Case::Crash(CrashPoint::After(s.id.to_string())),
        ]
    });
    let fails = (calls.iter()).flat_map(|&(label, nth)| {
        [Effect::Refused, Effect::AnswerLost].map(|effect| {
            Case::Fails(Injection {
                label,
                nth,
                effect,
                kind: ErrorKind::Server,
            })
        })
    });
    let cases = crashes.chain(fails).collect();
    Clean {
        state: state(&clean.f, &clean.run_ids),
        changes: changes(&clean.f, &clean.run_ids),
        steps,
        cases,
    }
}

/// Runs one case of `sc` on a fresh world, resumes it to the end, and
/// checks the end state, the changes, the chain and the notifications.
async fn run_case(sc: &Scenario, clean: &Clean, case: &Case) {
    let name = case.name();
    let (faults, opts) = match case {
        Case::Crash(point) => (
            Vec::new(),
            RunOptions {
                inject_crash: Some(point.clone()),
                ..sc.opts.clone()
            },
        ),
        Case::Fails(fault) => (vec![fault.clone()], sc.opts.clone()),
    };
    let (mut b, _) = bench(sc, faults).await;
    let run_id = b.run_and_resume(sc, &opts, &name).await;
    assert_eq!(
        state(&b.f, &b.run_ids),
        clean.state,
        "{}: {name}: end state",
        sc.name
    );
    assert_eq!(
        changes(&b.f, &b.run_ids),
        clean.changes,
        "{}: {name}: every change exactly once",
        sc.name
    );
    b.told(sc, &run_id, &name).await;
}

/// Every action of `sc` twice in a row: the second run changes nothing.
async fn twice(sc: &Scenario, steps: &[Step]) {
    let (mut twice, _) = bench(sc, Vec::new()).await;
    let run_id = twice.run_and_resume(sc, &sc.opts, "twice").await;
    let outputs: BTreeMap<String, Value> = crate::runs::replay::replay(
        &crate::journal::read(twice.store.as_ref(), &run_id)
            .await
            .unwrap(),
    )
    .steps
    .into_iter()
    .filter_map(|(id, s)| Some((id, s.outputs?)))
    .collect();
    for s in steps {
        let plan = twice.plans.iter().find(|p| p.name() == s.plan).unwrap();
        let before = twice.f.state().writes.len();
        let cx = Cx {
            clouds: &twice.engine.clouds,
            plan,
            target: &sc.opts.target,
            run_id: &run_id,
            outputs: &outputs,
            deadline: std::time::Instant::now() + Duration::from_secs(5),
            drill_expires: None,
            render_report: None,
            fence: None,
            zone_batches: None,
            temps: None,
            control_read_timeout: crate::steps::dns_setup::SETUP_TIMEOUT,
            poll: sc.opts.pace.poll,
            journal: twice.store.clone(),
            lag_window: sc.opts.lag_window,
            waiting: None,
            side: None,
            graph: super::executor::plan_graph(steps, plan.name()),
            rpo_readings: None,
            zones_read: None,
            attempt: 2,
        };
        s.kind
            .action()
            .run(&cx)
            .await
            .unwrap_or_else(|e| panic!("{}: {} run again: {e}", sc.name, s.id));
        let after = twice.f.state().writes[before..].to_vec();
        assert!(
            after.is_empty(),
            "{}: {} run again changed {after:?}",
            sc.name,
            s.id
        );
    }
}

/// The shard a case falls to: by its scenario's and its own name, not by
/// its place in the list (the order in which a clean run makes its calls
/// varies with concurrent steps, and each shard makes its own clean run).
fn shard_of(scenario: &str, case: &str) -> usize {
    use std::hash::{Hash, Hasher};
    // Keys fixed: the same shard in every test of the binary.
    let mut h = std::hash::DefaultHasher::new();
    (scenario, case).hash(&mut h);
    (h.finish() % SHARDS as u64) as usize
}

/// Shard `k` of the loop: of every scenario, the cases that fall to it,
/// and the second runs of the scenarios that do. Each shard makes the
/// clean runs for itself.
async fn shard(k: usize) {
    let mut ran = 0;
    for (i, sc) in scenarios().iter().enumerate() {
        let clean = clean(sc).await;
        for case in &clean.cases {
            if shard_of(sc.name, &case.name()) == k {
                run_case(sc, &clean, case).await;
                ran += 1;
            }
        }
        if i % SHARDS == k {
            twice(sc, &clean.steps).await;
        }
    }
    assert!(ran > 100 / SHARDS, "shard {k} of the loop ran {ran} cases");
}

/// The loop's cases split across tests that the harness runs side by side
/// (one test of them all took a minute on two cores, the whole unit
/// suite's wall time); together they run every case once.
macro_rules! shards {
    ($($name:ident: $k:literal),+ $(,)?) => {
        /// How many tests the loop is split across.
        const SHARDS: usize = [$($k),+].len();
        // Numbered 0, 1, 2, ... in order: no shard left out or run twice.
        const _: () = {
            let ks: [usize; SHARDS] = [$($k),+];
            let mut i = 0;
            while i < SHARDS {
                assert!(ks[i] == i, "the shards are numbered 0, 1, 2, ... in order");
                i += 1;
            }
        };
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                shard($k).await;
            }
        )+
    };
}

shards!(
    every_step_of_every_graph_survives_a_crash_and_every_call_a_failure_1: 0,
    every_step_of_every_graph_survives_a_crash_and_every_call_a_failure_2: 1,
    every_step_of_every_graph_survives_a_crash_and_every_call_a_failure_3: 2,
    every_step_of_every_graph_survives_a_crash_and_every_call_a_failure_4: 3,
);
