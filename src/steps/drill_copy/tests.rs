use std::collections::BTreeMap;

use super::*;
use crate::cloud::fake::FakeCloud;
use crate::plan::kinds::{AURORA_DRILL, RDS_DRILL, SQL_DRILL};

fn seen(run: Option<&str>, stage: CopyStage) -> CopySeen {
    let tags = run.map(|r| BTreeMap::from([(drill_names::RUN_TAG.to_string(), r.to_string())]));
    CopySeen {
        tags: tags.unwrap_or_default(),
        status: "available".into(),
        stage,
    }
}

#[test]
fn a_copy_is_made_when_absent_and_refused_when_another_drills() {
    let at = ("us-east-1", "drill-x-db");
    assert_eq!(next(&RDS_DRILL, at, "r1", None), Next::Make);
    let other = seen(Some("r2"), CopyStage::Made);
    assert_eq!(
        next(&RDS_DRILL, at, "r1", Some(&other)),
        Next::Refuse(
            "temporary replica drill-x-db in us-east-1 exists but is not this drill's".into()
        )
    );
    let untagged = seen(None, CopyStage::Made);
    assert!(matches!(
        next(&AURORA_DRILL, at, "r1", Some(&untagged)),
        Next::Refuse(_)
    ));
    // A kind whose copies carry no tags knows its copy by its name.
    let writable = seen(
        None,
        CopyStage::Writable {
            endpoint: None,
            port: None,
        },
    );
    assert!(matches!(
        next(&SQL_DRILL, at, "r1", Some(&writable)),
        Next::Done { .. }
    ));
}

#[test]
fn a_copy_of_ours_is_waited_on_finished_or_done_by_its_stage() {
    let at = ("us-east-1", "c");
    let of = |stage| next(&RDS_DRILL, at, "r1", Some(&seen(Some("r1"), stage)));
    let making = CopyStage::Making {
        operation: Some("op-1".into()),
    };
    assert_eq!(of(making), Next::Wait);
    assert_eq!(of(CopyStage::Finishing), Next::Wait);
    assert_eq!(of(CopyStage::Made), Next::Finish);
    let writable = CopyStage::Writable {
        endpoint: Some("e".into()),
        port: Some(5432),
    };
    let done = Next::Done {
        endpoint: Some("e".into()),
        port: Some(5432),
    };
    assert_eq!(of(writable), done);
    assert_eq!(
        of(CopyStage::Broken("joined".into())),
        Next::Refuse("joined".into())
    );
}

#[test]
fn a_copy_without_the_tag_or_with_another_drills_is_not_ours() {
    let c = |run| seen(run, CopyStage::Made);
    let said = not_ours(&RDS_DRILL, "c", &c(None), Some("r1")).unwrap();
    assert!(said.contains("carries no drctl:drill-run tag"), "{said}");
    assert_eq!(
        not_ours(&RDS_DRILL, "c", &c(Some("r2")), Some("r1")).as_deref(),
        Some("c belongs to drill r2")
    );
    assert_eq!(not_ours(&RDS_DRILL, "c", &c(Some("r1")), Some("r1")), None);
    assert_eq!(
        not_ours(&RDS_DRILL, "c", &c(Some("r2")), None),
        None,
        "a sweep's"
    );
    // Untagged: by the name alone.
    // Regression: a journal naming another drill's clone (a wrong or
    // forged one) deleted it; the name's short id must be the drill's.
    let run = "20261125T040000Z-orders-g1a2";
    let name = format!("p/{}", drill_names::temp_database_id(run, "orders-use4"));
    assert_eq!(not_ours(&SQL_DRILL, &name, &c(None), Some(run)), None);
    assert_eq!(
        not_ours(&SQL_DRILL, &name, &c(None), None),
        None,
        "a sweep's"
    );
    let other = not_ours(
        &SQL_DRILL,
        &name,
        &c(None),
        Some("20261126T040000Z-orders-ffff"),
    );
    assert_eq!(
        other,
        Some(format!("{name} belongs to drill 20261125t040000z-g1a2"))
    );
    let said = not_ours(&SQL_DRILL, "p/orders", &c(None), None).unwrap();
    assert!(said.contains("no drill's name"), "{said}");
}

const RUN: &str = "20261125T040000Z-orders-g1a2";

fn poll() -> (Duration, Duration) {
    (Duration::from_secs(1), Duration::from_secs(10))
}

/// A minute from now on the test's clock (paused time moves it on: a
/// deadline taken from the wall clock would be long past).
fn later() -> Instant {
    tokio::time::Instant::now().into_std() + Duration::from_secs(60)
}

/// The shadow drill's `drill-copy` step of `plan` to `target`.
fn step_of(plan: &crate::plan::Plan, target: &str) -> (crate::steps::graph::Graph, DrillCopy) {
    let mode = RunMode::Drill {
        depth: DrillDepth::Shadow,
    };
    let g = crate::steps::graph::compile_mode(plan, target, &mode).unwrap();
    let s = (g.steps.iter())
        .find_map(|s| match &s.kind {
            StepKind::DrillCopy(d) => Some(d.clone()),
            _ => None,
        })
        .expect("a drill-copy step");
    (g, s)
}

fn cx<'a>(
    clouds: &'a Clouds,
    plan: &'a crate::plan::Plan,
    g: &'a crate::steps::graph::Graph,
    outputs: &'a BTreeMap<String, Value>,
    (target, run): (&'a str, &'a str),
) -> Cx<'a> {
    Cx {
        run_id: run,
        deadline: tokio::time::Instant::now().into_std() + Duration::from_secs(3600),
        poll: (Duration::from_secs(5), Duration::from_secs(30)),
        ..Cx::for_test(clouds, plan, target, outputs, &g.steps)
    }
}

/// Runs `plan`'s drill copy to `target` in run `run`.
async fn run_step(
    clouds: &Clouds,
    plan: &crate::plan::Plan,
    (target, run): (&str, &str),
) -> Result<DrillCopyOutput, StepFailure> {
    let (g, s) = step_of(plan, target);
    let outputs = BTreeMap::new();
    let out = s
        .run(&cx(clouds, plan, &g, &outputs, (target, run)))
        .await?;
    Ok(DrillCopyOutput::read(&out).expect("the step's outputs"))
}

/// The role's contract, for every kind whose data role drills and every
/// shadow drill of the reference plans to a standby region, over the fake
/// world seeded from the plan: the one step makes the drill's copy once,
/// writable, with its endpoint, writing nothing of production's; its RPO
/// is measured or unknown with why (never 0 for a reading it lacks); a
/// second run sends nothing and says the copy was there; a sweep finds
/// it by its tags or name without the journal, as `creates` named it; a
/// cleanup removes it, proven by a read, and a second finds nothing. A kind
/// given the role that no reference plan drills fails here.
#[tokio::test(start_paused = true)]
async fn every_kind_whose_data_role_drills_is_drilled_once_through_the_one_step() {
    let mut covered = std::collections::BTreeSet::new();
    let run = "20261127T220000Z-contract-a1";
    for plan in crate::plan::reference_with_gcp() {
        let home = plan.home().to_string();
        for target in plan.regions().iter().filter(|r| **r != home) {
            let mode = RunMode::Drill {
                depth: DrillDepth::Shadow,
            };
            let g = crate::steps::graph::compile_mode(&plan, target, &mode).unwrap();
            for s in &g.steps {
                let StepKind::DrillCopy(step) = &s.kind else {
                    continue;
                };
                let (f, id) = (FakeCloud::new(), &s.id);
                crate::plan::kinds::seed_plan(&f, &plan);
                let (clouds, outputs) = (f.clouds(), BTreeMap::new());
                let cx = cx(&clouds, &plan, &g, &outputs, (target, run));
                let temps = step.creates(run);
                let [
                    Temp::Copy {
                        kind,
                        region,
                        address,
                    },
                ] = temps.as_slice()
                else {
                    panic!("{id}: one copy named: {temps:?}");
                };
                assert_eq!(*kind, step.of, "{id}");
                let out = DrillCopyOutput::read(&step.run(&cx).await.expect("drilled"))
                    .expect("its outputs");
                let writes = f.state().writes.clone();
                assert!(!writes.is_empty(), "{id}: the copy was made");
                assert!(
                    writes.iter().all(|w| w.contains(" drill-")),
                    "{id}: only the drill's copy was written: {writes:?}"
                );
                assert_eq!((&out.copy, &out.region), (address, region), "{id}");
                assert!(
                    out.endpoint.is_some() && out.writable_at.is_some(),
                    "{id}: {out:?}"
                );
                assert_eq!(out.already, None, "{id}");
                // A point read before the request: the gap is never too small.
                if let (Some(point), Some(asked)) = (out.restore_point, out.requested_at) {
                    assert!(point <= asked, "{id}: {out:?}");
                }
                let v = serde_json::to_value(&out).unwrap();
                let (secs, basis) = (TRAITS.rpo.expect("declared"))(
                    &step.resource,
                    Some(&v),
                    None,
                    chrono::Utc::now(),
                    "start",
                );
                match secs {
                    Some(_) => assert_eq!(
                        out.measured.as_deref().map(|m| basis.contains(m)),
                        Some(true),
                        "{id}: {basis}"
                    ),
                    None => assert!(
                        basis.contains("unknown (") && out.lag.note.is_some(),
                        "{id}: {basis}"
                    ),
                }
                let again = DrillCopyOutput::read(&step.run(&cx).await.expect("again"))
                    .expect("its outputs");
                assert_eq!(f.state().writes, writes, "{id}: nothing sent again");
                assert_eq!(
                    (again.already, &again.endpoint),
                    (Some(true), &out.endpoint),
                    "{id}"
                );
                let look = Look::new(&clouds);
                let left = step.leftovers(&look).await;
                assert!(look.into_errors().is_empty(), "{id}");
                let found: Vec<&Temp> = left.iter().map(|l| &l.temp).collect();
                assert_eq!(found, [&temps[0]], "{id}: the sweep's finder");
                let at = (*kind, region.as_str(), address.as_str());
                let (result, detail) = remove(&clouds, at, Some(run), poll(), later())
                    .await
                    .unwrap();
                assert_eq!(result, CleanupResult::Removed, "{id}: {detail}");
                let role = step.of.drilling().expect("compiled from its role");
                assert_eq!(
                    role.read(&clouds, region, address).await.unwrap(),
                    None,
                    "{id}"
                );
                let (result, _) = remove(&clouds, at, Some(run), poll(), later())
                    .await
                    .unwrap();
                assert_eq!(result, CleanupResult::Absent, "{id}");
                assert!(
                    f.state().writes.iter().all(|w| w.contains(" drill-")),
                    "{id}: {:?}",
                    f.state().writes
                );
                covered.insert(step.of);
            }
        }
    }
    let drilling: std::collections::BTreeSet<ResourceKind> = (ResourceKind::ALL.iter().copied())
        .filter(|k| k.drilling().is_some())
        .collect();
    assert_eq!(covered, drilling);
}

fn orders() -> crate::plan::Plan {
    crate::plan::reference()
        .into_iter()
        .find(|p| p.name() == "orders")
        .expect("the reference orders plan")
}

const MEMBERS: [(&str, &str); 3] = [
    ("us-west-2", "orders-usw2"),
    ("us-east-1", "orders-use1"),
    ("eu-west-1", "orders-euw1"),
];

/// The reference orders world: the writer in us-west-2, secondaries in
/// us-east-1 (2 s behind) and eu-west-1.
fn seeded(fake: &FakeCloud) {
    fake.add_global("orders-global", &MEMBERS);
    fake.set_lag("us-east-1", "orders-use1", &[2.0]);
    fake.set_lag("eu-west-1", "orders-euw1", &[1.0]);
}

/// Production as a drill must leave it: the global cluster (members,
/// writer, status) and each member cluster.
fn production(fake: &FakeCloud) -> String {
    let s = fake.state();
    let clusters: Vec<&crate::cloud::DbCluster> = (s.clusters.values())
        .filter(|c| !c.id.starts_with("drill-"))
        .collect();
    format!("{:?}\n{clusters:?}", s.globals)
}

/// Every copy and instance a drill made that is still there.
fn drill_leftovers(fake: &FakeCloud) -> Vec<String> {
    let s = fake.state();
    (s.clusters.keys().chain(s.databases.keys()))
        .filter(|(_, id)| id.starts_with("drill-"))
        .map(|(r, id)| format!("{r}/{id}"))
        .collect()
}

fn aurora_copy() -> (ResourceKind, &'static str, String) {
    let copy = drill_names::temp_database_id(RUN, "orders-use1");
    (ResourceKind::GlobalDatabase, "us-east-1", copy)
}

/// In a timed world (the clone and the writer take the model's time, and
/// Aurora refuses a writer before the clone is available), the step reads
/// the secondary's lag, clones it once into a standalone copy, adds its
/// writer once, and outputs the copy's writer endpoint and the lag as the
/// drill's RPO; cleanup deletes the copy and its writer. No member of the
/// global cluster is touched.
#[tokio::test(start_paused = true)]
async fn an_aurora_secondary_is_cloned_into_a_writable_copy_and_cleanup_removes_it() {
    let fake = FakeCloud::timed(crate::cloud::model::Model::aws().unwrap(), 11);
    seeded(&fake);
    let before = production(&fake);
    let (clouds, log) = crate::cloud::metered::Metered::wrap(fake.clouds());
    let plan = orders();
    let out = run_step(&clouds, &plan, ("us-east-1", RUN))
        .await
        .expect("the step succeeds");
    let (kind, region, copy) = aurora_copy();
    let writer = drill_names::temp_database_id(RUN, "orders-use1-writer");
    assert_eq!((&out.copy, out.instance.as_ref()), (&copy, Some(&writer)));
    assert_eq!(out.source, "orders-global/orders-use1");
    assert_eq!(
        (out.lag.seconds(), out.lag.datapoints),
        (Some(2.0), Some(1))
    );
    assert!(out.requested_at.is_some() && out.finished_at.is_some() && out.writable_at.is_some());
    let c = fake.state().clusters[&(region.to_string(), copy.clone())].clone();
    assert_eq!(out.endpoint, c.endpoint);
    assert!(c.endpoint.is_some());
    assert_eq!(c.global_cluster, None, "the copy is standalone");
    assert_eq!(
        c.tags.get(drill_names::RUN_TAG).map(String::as_str),
        Some(RUN)
    );
    let w = fake.state().databases[&(region.to_string(), writer.clone())].clone();
    let class = crate::plan::kinds::WRITER_CLASS;
    assert_eq!(
        (
            w.status.as_str(),
            w.instance_class.as_deref(),
            w.engine.as_str()
        ),
        ("available", Some(class), "aurora-postgresql")
    );
    assert_eq!(
        fake.state().cluster_instances[&(region.to_string(), writer.clone())],
        copy
    );
    // Both took the model's time (the writer only once the clone was
    // available: the fake refuses it before, as Aurora does).
    let drawn: Vec<String> = (fake.timing().unwrap().drawn().into_iter())
        .map(|(k, _)| k)
        .collect();
    assert!(
        drawn.contains(&format!("cluster:us-east-1/{copy}"))
            && drawn.contains(&format!("db:us-east-1/{writer}")),
        "{drawn:?}"
    );
    let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
    let n = |l: &str| labels.iter().filter(|x| **x == l).count();
    assert_eq!(n("rds:RestoreDBClusterToPointInTime"), 1, "{labels:?}");
    assert_eq!(n("rds:CreateDBInstance"), 1, "{labels:?}");
    // The lag was read before the clone.
    let lag_at = labels.iter().position(|l| *l == "cloudwatch:GetMetricData");
    let clone_at = labels
        .iter()
        .position(|l| *l == "rds:RestoreDBClusterToPointInTime");
    assert!(lag_at < clone_at, "{labels:?}");
    assert_eq!(production(&fake), before, "production changed");
    let v = serde_json::to_value(&out).unwrap();
    let (secs, basis) = rpo_of("orders-db", Some(read_output(&v)), None);
    assert_eq!(secs, Some(2.0));
    assert!(
        basis.contains("orders-use1") && basis.contains(&copy),
        "{basis}"
    );

    let at = (kind, region, copy.as_str());
    let (result, detail) = remove(&clouds, at, Some(RUN), poll(), later())
        .await
        .unwrap();
    assert_eq!(result, CleanupResult::Removed, "{detail}");
    assert!(
        drill_leftovers(&fake).is_empty(),
        "{:?}",
        drill_leftovers(&fake)
    );
    assert_eq!(production(&fake), before, "production changed");
    let writes = fake.state().writes.clone();
    assert!(writes.iter().all(|w| w.contains(" drill-")), "{writes:?}");
}

/// A crash after the copy is journaled (`creates`, before the step
/// starts) but before the clone: cleanup finds nothing and says so,
/// production is as it was, and a new attempt clones as the first would.
#[tokio::test(start_paused = true)]
async fn a_crash_between_the_journaled_copy_and_the_clone_leaves_nothing_to_remove() {
    let fake = FakeCloud::new();
    seeded(&fake);
    let before = production(&fake);
    let clouds = fake.clouds();
    let plan = orders();
    let (_, s) = step_of(&plan, "us-east-1");
    let (kind, region, copy) = aurora_copy();
    let named = Temp::Copy {
        kind,
        region: region.into(),
        address: copy.clone(),
    };
    assert_eq!(s.creates(RUN), [named]);
    let at = (kind, region, copy.as_str());
    let (result, detail) = remove(&clouds, at, Some(RUN), poll(), later())
        .await
        .unwrap();
    assert_eq!(result, CleanupResult::Absent, "{detail}");
    assert!(detail.contains(&copy), "{detail}");
    assert!(fake.state().writes.is_empty());
    assert_eq!(production(&fake), before);
    let out = run_step(&clouds, &plan, ("us-east-1", RUN))
        .await
        .expect("a new attempt clones");
    assert_eq!(out.already, None);
    assert_eq!(out.lag.seconds(), Some(2.0));
}

/// An attempt whose outputs were lost (a crash after the clone): the step
/// runs again, finds its own copy and writer, sends nothing twice and
/// says the lag read before that clone is lost (the RPO is then unknown,
/// never 0). A copy under the run's name that another drill tagged is
/// refused, and its cleanup leaves it alone.
#[tokio::test(start_paused = true)]
async fn a_rerun_finds_its_copy_and_clones_nothing_again() {
    let fake = FakeCloud::new();
    seeded(&fake);
    let clouds = fake.clouds();
    let plan = orders();
    let first = run_step(&clouds, &plan, ("us-east-1", RUN)).await.unwrap();
    let writes = fake.state().writes.clone();
    assert_eq!(writes.len(), 2, "{writes:?}");
    let again = run_step(&clouds, &plan, ("us-east-1", RUN)).await.unwrap();
    assert_eq!(fake.state().writes, writes, "nothing sent again");
    assert_eq!(again.already, Some(true));
    assert_eq!(again.endpoint, first.endpoint);
    let v = serde_json::to_value(&again).unwrap();
    let (secs, basis) = rpo_of("orders-db", Some(read_output(&v)), None);
    assert_eq!(secs, None);
    assert!(basis.contains("earlier attempt"), "{basis}");

    let (kind, region, copy) = aurora_copy();
    (fake
        .state()
        .clusters
        .get_mut(&(region.to_string(), copy.clone()))
        .unwrap()
        .tags)
        .insert(drill_names::RUN_TAG.into(), "another-run".into());
    let e = run_step(&clouds, &plan, ("us-east-1", RUN))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(&copy) && e.to_string().contains("not this drill's"),
        "{e}"
    );
    let at = (kind, region, copy.as_str());
    let (result, _) = remove(&clouds, at, Some(RUN), poll(), later())
        .await
        .unwrap();
    assert_eq!(
        result,
        CleanupResult::NotOurs,
        "another drill's copy is left alone"
    );
}

/// The target's member is the writer (after a failover), or missing: the
/// step and preflight refuse, naming the cluster and the region, and
/// nothing is sent.
#[tokio::test(start_paused = true)]
async fn a_writer_or_missing_member_is_refused_by_name() {
    let fake = FakeCloud::new();
    fake.add_global(
        "orders-global",
        &[("us-east-1", "orders-use1"), ("us-west-2", "orders-usw2")],
    );
    let clouds = fake.clouds();
    let plan = orders();
    let e = run_step(&clouds, &plan, ("us-east-1", RUN))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, StepFailure::State { .. })
            && text.contains("orders-use1")
            && text.contains("us-east-1")
            && text.contains("writer of global cluster orders-global"),
        "{text}"
    );
    assert!(e.hint().contains("secondary"), "{}", e.hint());
    let (g, s) = step_of(&plan, "us-east-1");
    let outputs = BTreeMap::new();
    let found = s
        .preflight(&cx(&clouds, &plan, &g, &outputs, ("us-east-1", RUN)))
        .await;
    let problem = found[0].problem.as_deref();
    assert!(problem.is_some_and(|p| p.contains("writer")), "{found:?}");
    let e = run_step(&clouds, &plan, ("eu-west-1", RUN))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("orders-euw1")
            && text.contains("eu-west-1")
            && text.contains("does not exist"),
        "{text}"
    );
    assert!(fake.state().writes.is_empty(), "{:?}", fake.state().writes);
    assert!(drill_leftovers(&fake).is_empty());
}

#[test]
fn only_a_shadow_drill_copies_and_one_step_a_resource() {
    let plan = orders();
    let (g, _) = step_of(&plan, "eu-west-1");
    let ids: Vec<String> = (g.steps.iter())
        .filter(|s| matches!(s.kind, StepKind::DrillCopy(_)))
        .map(|s| s.id.to_string())
        .collect();
    assert_eq!(ids, ["orders/drill-copy:orders-db"]);
    let failover = crate::steps::graph::compile(&plan, "eu-west-1").unwrap();
    assert!(
        !failover
            .steps
            .iter()
            .any(|s| matches!(s.kind, StepKind::DrillCopy(_)))
    );
}

/// A Cloud SQL primary without point-in-time recovery has nothing a clone
/// can be made from: preflight says so with a drill's advice (not a
/// failover's "use promote-replica"), and a run refuses before any write,
/// naming the same.
#[tokio::test]
async fn a_primary_without_point_in_time_recovery_is_refused_with_a_drills_advice() {
    let f = FakeCloud::new();
    f.add_sql("drctl-emu", "us-central1", "orders-sql", None, false);
    let (clouds, outputs) = (f.clouds(), BTreeMap::new());
    let plan = crate::plan::orders_gcp_health_checked();
    let (g, s) = step_of(&plan, "us-east4");
    let cx = cx(&clouds, &plan, &g, &outputs, ("us-east4", RUN));
    let ok = s.preflight(&cx).await;
    assert_eq!(ok[0].problem, None, "{ok:?}");
    assert!(ok[0].state.contains("restorable up to"), "{ok:?}");
    (f.state().sql_no_pitr).insert(("drctl-emu".into(), "orders-sql".into()));
    let found = s.preflight(&cx).await;
    let why = found[0].problem.clone().unwrap_or_default();
    assert!(
        why.contains("not enabled")
            && why.contains("enable point-in-time recovery on the home primary"),
        "{found:?}"
    );
    assert!(!why.contains("promote-replica"), "{why}");
    let Err(StepFailure::State { hint, .. }) = s.run(&cx).await else {
        panic!("refused")
    };
    assert!(
        hint.starts_with("enable point-in-time recovery on the home primary"),
        "{hint}"
    );
    assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
}

/// A Cloud SQL clone's RPO is the gap from its point in time to its
/// request; unknown (never 0) when the clone was found made.
#[test]
fn a_clones_rpo_is_the_gap_to_the_request_and_unknown_without_the_reading() {
    let asked = chrono::Utc::now();
    let out = DrillCopyOutput {
        of: Some(ResourceKind::CloudSql),
        source: "p/orders-sql".into(),
        restore_point: Some(asked - chrono::Duration::seconds(2)),
        requested_at: Some(asked),
        ..Default::default()
    };
    let (secs, basis) = rpo_of("db", Some(out), None);
    assert_eq!(secs, Some(2.0));
    assert!(
        basis.contains("latest recovery time of p/orders-sql"),
        "{basis}"
    );
    let found = DrillCopyOutput {
        of: Some(ResourceKind::CloudSql),
        already: Some(true),
        ..Default::default()
    };
    assert_eq!(rpo_of("db", Some(found), None).0, None);
    assert_eq!(rpo_of("db", None, Some(ResourceKind::CloudSql)).0, None);
}

/// The retired kinds' journals read through the one output, with the RPO
/// and the endpoint they measured, said as before.
#[test]
fn the_retired_drill_kinds_journals_read_their_rpo_and_endpoint() {
    let now = chrono::Utc::now();
    let rds = serde_json::json!({
        "instance": "drill-x-payments-db-use1", "region": "us-east-1",
        "source": "payments-db", "source_region": "us-west-2",
        "replica_untouched": "payments-db-use1",
        "lag_seconds": 3.0, "lag_datapoints": 2, "endpoint": "e.rds", "port": 5432
    });
    let (secs, basis) = (RETIRED_RDS.rpo.unwrap())("payments-db", Some(&rds), None, now, "x");
    assert_eq!(secs, Some(3.0));
    assert_eq!(
        basis,
        "payments-db: ReplicaLag of the drill's temporary replica drill-x-payments-db-use1 at promotion (2 datapoints)"
    );
    assert_eq!(
        (RETIRED_RDS.endpoint.unwrap())(&rds).as_deref(),
        Some("e.rds")
    );
    let global = serde_json::json!({
        "cluster": "drill-x-orders-use1", "instance": "drill-x-orders-use1-writer",
        "region": "us-east-1", "source": "orders-use1", "global_cluster": "orders-global",
        "already_cloned": true, "endpoint": "c.rds"
    });
    let (secs, basis) = (RETIRED_GLOBAL.rpo.unwrap())("orders-db", Some(&global), None, now, "x");
    assert_eq!(secs, None);
    assert!(basis.starts_with("orders-db: unknown ("), "{basis}");
    let read = read_retired(&global);
    assert_eq!(
        (read.copy.as_str(), read.instance.as_deref(), read.already),
        (
            "drill-x-orders-use1",
            Some("drill-x-orders-use1-writer"),
            Some(true)
        )
    );
    let point = now - chrono::Duration::seconds(4);
    let sql = serde_json::json!({
        "instance": "drill-x-orders-sql-use4", "source": "orders-sql", "region": "us-central1",
        "restore_point": point, "requested_at": now, "already_existed": false, "endpoint": "10.0.0.9"
    });
    let (secs, basis) = (RETIRED_SQL.rpo.unwrap())("orders-sql", Some(&sql), None, now, "x");
    assert_eq!(secs, Some(4.0));
    assert!(
        basis.contains("latest recovery time of orders-sql"),
        "{basis}"
    );
    assert_eq!(
        (RETIRED_SQL.endpoint.unwrap())(&sql).as_deref(),
        Some("10.0.0.9")
    );
}

/// Regression (a re-run sent the writer's create again when the copy did
/// not list it yet): the writer is looked up by its name first; the
/// drill's own is not asked for again, another's refuses.
#[tokio::test(start_paused = true)]
async fn an_aurora_copys_writer_sent_before_is_not_asked_for_again() {
    let fake = FakeCloud::new();
    seeded(&fake);
    let clouds = fake.clouds();
    let plan = orders();
    run_step(&clouds, &plan, ("us-east-1", RUN)).await.unwrap();
    let writes = fake.state().writes.clone();
    let (kind, region, copy) = aurora_copy();
    let writer = drill_names::temp_database_id(RUN, "orders-use1-writer");
    let role = kind.drilling().expect("Aurora drills");
    let ours = drill_names::tags(RUN, "someone", chrono::Utc::now());
    let at = (region, copy.as_str());
    role.finish(&clouds, at, &writer, &ours)
        .await
        .expect("its own writer");
    assert_eq!(fake.state().writes, writes, "nothing asked again");
    let theirs = drill_names::tags(
        "20261126T040000Z-orders-ffff",
        "someone",
        chrono::Utc::now(),
    );
    let e = role
        .finish(&clouds, at, &writer, &theirs)
        .await
        .unwrap_err();
    assert!(
        e.message.contains("not the writer of the drill's copy"),
        "{e}"
    );
    assert_eq!(fake.state().writes, writes);
}
