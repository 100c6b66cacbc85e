//! The choice of path (pure), and the step on the fake cloud.

use super::*;
use crate::cloud::{GlobalMember, GlobalMove};
use crate::steps::LagAtPromotion;

fn step(planned: bool) -> SwitchGlobal {
    SwitchGlobal {
        resource: "orders-db".into(),
        global: "orders-global".into(),
        cluster: "orders-use1".into(),
        region: "us-east-1".into(),
        planned,
    }
}

fn cluster(global: Option<&str>) -> DbCluster {
    DbCluster {
        id: "orders-use1".into(),
        arn: "arn:aws:rds:us-east-1:1:cluster:orders-use1".into(),
        region: "us-east-1".into(),
        engine: "aurora-postgresql".into(),
        status: "available".into(),
        endpoint: Some("orders-use1.cluster-x.us-east-1.rds.amazonaws.com".into()),
        reader_endpoint: None,
        global_cluster: global.map(str::to_string),
        backup_retention_days: 7,
        tags: Default::default(),
        members: Vec::new(),
    }
}

fn global(target_writes: bool, moving: Option<GlobalMove>) -> GlobalCluster {
    let m = |region: &str, id: &str, writer| GlobalMember {
        arn: format!("arn:aws:rds:{region}:1:cluster:{id}"),
        writer,
        region: region.into(),
        id: id.into(),
    };
    GlobalCluster {
        id: "orders-global".into(),
        arn: "g".into(),
        status: "available".into(),
        endpoint: None,
        members: vec![
            m("us-west-2", "orders-usw2", !target_writes),
            m("us-east-1", "orders-use1", target_writes),
        ],
        moving,
    }
}

fn path(d: &Decision) -> Option<GlobalPath> {
    match d {
        Decision::Act { path, .. } | Decision::Done { path, .. } => Some(*path),
        _ => None,
    }
}

#[test]
fn a_planned_move_switches_over_and_an_unplanned_one_fails_over() {
    let c = cluster(Some("orders-global"));
    let g = GlobalRead::Read(Some(global(false, None)));
    let planned = decide(&step(true), Some(&c), &g);
    assert!(
        matches!(
            planned,
            Decision::Act {
                path: GlobalPath::Switchover,
                ..
            }
        ),
        "{planned:?}"
    );
    let unplanned = decide(&step(false), Some(&c), &g);
    assert!(
        matches!(
            unplanned,
            Decision::Act {
                path: GlobalPath::Failover,
                ..
            }
        ),
        "{unplanned:?}"
    );
}

#[test]
fn an_unanswered_global_read_tries_the_managed_failover_and_a_planned_run_refuses() {
    let c = cluster(Some("orders-global"));
    let gone = GlobalRead::Unanswered("connection refused".into());
    let d = decide(&step(false), Some(&c), &gone);
    assert_eq!(path(&d), Some(GlobalPath::Failover));
    let Decision::Act { why, .. } = &d else {
        panic!("{d:?}")
    };
    assert!(
        why.contains("did not answer") && why.contains("detach if it is refused"),
        "{why}"
    );
    let d = decide(&step(true), Some(&c), &gone);
    assert!(matches!(d, Decision::Refuse { .. }), "{d:?}");
}

#[test]
fn a_target_that_writes_or_stands_alone_is_done_and_a_move_under_way_is_waited_for() {
    let member = cluster(Some("orders-global"));
    let d = decide(
        &step(false),
        Some(&member),
        &GlobalRead::Read(Some(global(true, None))),
    );
    assert_eq!(path(&d), Some(GlobalPath::Already));
    let alone = cluster(None);
    for g in [
        GlobalRead::Read(Some(global(false, None))),
        GlobalRead::Unanswered("timeout".into()),
    ] {
        let mut g2 = g.clone();
        if let GlobalRead::Read(Some(gc)) = &mut g2 {
            gc.members.retain(|m| m.id != "orders-use1");
        }
        let d = decide(&step(false), Some(&alone), &g2);
        assert!(
            matches!(
                d,
                Decision::Done {
                    path: GlobalPath::Detach,
                    ..
                }
            ),
            "{d:?}"
        );
    }
    let toward = GlobalMove {
        status: "failing-over".into(),
        from: None,
        to: Some(member.arn.clone()),
        data_loss_allowed: true,
    };
    let d = decide(
        &step(false),
        Some(&member),
        &GlobalRead::Read(Some(global(false, Some(toward)))),
    );
    assert!(matches!(d, Decision::Wait { .. }), "{d:?}");
    let elsewhere = GlobalMove {
        status: "switching-over".into(),
        from: None,
        to: Some("arn:aws:rds:eu-west-1:1:cluster:orders-euw1".into()),
        data_loss_allowed: false,
    };
    let d = decide(
        &step(false),
        Some(&member),
        &GlobalRead::Read(Some(global(false, Some(elsewhere)))),
    );
    let Decision::Refuse { message, .. } = d else {
        panic!()
    };
    assert!(message.contains("orders-euw1"), "{message}");
}

#[test]
fn a_missing_target_or_a_refused_read_refuses_and_names_the_cluster_and_region() {
    let d = decide(&step(false), None, &GlobalRead::Read(None));
    let Decision::Refuse { message, .. } = d else {
        panic!()
    };
    assert_eq!(message, "cluster orders-use1 does not exist in us-east-1");
    let c = cluster(Some("orders-global"));
    let d = decide(
        &step(false),
        Some(&c),
        &GlobalRead::Refused("AccessDenied".into()),
    );
    let Decision::Refuse { message, .. } = d else {
        panic!()
    };
    assert!(
        message.contains("orders-global") && message.contains("us-east-1"),
        "{message}"
    );
}

#[test]
fn the_rpo_of_a_switchover_is_zero_by_design_and_of_a_failover_the_lag_read_before_it() {
    let origin = Utc::now();
    let out = |path, lag: Option<f64>| {
        serde_json::to_value(SwitchGlobalOutput {
            path: Some(path),
            lag: LagRecord {
                reading: lag.map(|l| LagAtPromotion {
                    lag_seconds: Some(l),
                    lag_max_seconds: Some(l),
                    lag_read_at: Some(origin),
                }),
                datapoints: lag.map(|_| 3),
                ..LagRecord::default()
            },
            ..SwitchGlobalOutput::default()
        })
        .unwrap()
    };
    let (v, basis) = rpo(
        "db",
        Some(&out(GlobalPath::Switchover, Some(2.0))),
        None,
        origin,
        "x",
    );
    assert_eq!(v, Some(0.0));
    assert!(
        basis.contains("by design") && basis.contains("not measured"),
        "{basis}"
    );
    let (v, basis) = rpo(
        "db",
        Some(&out(GlobalPath::Failover, Some(2.5))),
        None,
        origin,
        "x",
    );
    assert_eq!(v, Some(2.5));
    assert!(
        basis.contains("AuroraGlobalDBRPOLag") && basis.contains("3 datapoints"),
        "{basis}"
    );
    let (v, basis) = rpo(
        "db",
        Some(&out(GlobalPath::Detach, None)),
        None,
        origin,
        "x",
    );
    assert_eq!(v, None, "unknown is never zero: {basis}");
    let (v, _) = rpo("db", None, Some(1.0), origin, "x");
    assert_eq!(v, None);
}

mod on_the_fake {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::Clouds;
    use crate::cloud::fake::FakeCloud;

    fn orders() -> crate::plan::Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "orders")
            .expect("the reference orders plan")
    }

    fn world() -> FakeCloud {
        let f = FakeCloud::new();
        f.add_global(
            "orders-global",
            &[
                ("us-west-2", "orders-usw2"),
                ("us-east-1", "orders-use1"),
                ("eu-west-1", "orders-euw1"),
            ],
        );
        f.set_lag("us-east-1", "orders-use1", &[2.0, 1.5]);
        f
    }

    /// The switch-global step of a failover of orders to us-east-1.
    async fn run_step(clouds: &Clouds, planned: bool) -> Result<SwitchGlobalOutput, StepFailure> {
        let plan = orders();
        let mode = RunMode::Failover { planned };
        let g = crate::steps::graph::compile_mode(&plan, "us-east-1", &mode).unwrap();
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::SwitchGlobal(s) => Some(s.clone()),
                _ => None,
            })
            .expect("a switch-global step");
        assert_eq!(step.planned, planned);
        let outputs = BTreeMap::new();
        let cx = Cx {
            run_id: "20261125T060000Z-orders-a1",
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
            ..Cx::for_test(clouds, &plan, "us-east-1", &outputs, &g.steps)
        };
        let v = step.run(&cx).await?;
        Ok(SwitchGlobalOutput::read(&v).expect("its outputs"))
    }

    async fn writer(f: &FakeCloud) -> String {
        let g = (f
            .clouds()
            .aurora
            .describe_global("us-east-1", "orders-global")
            .await)
            .expect("read")
            .expect("exists");
        g.writer().map(|w| w.id.clone()).unwrap_or_default()
    }

    #[tokio::test]
    async fn an_unplanned_failover_moves_the_writer_with_its_lag_and_warns_of_the_snapshot() {
        let f = world();
        let out = run_step(&f.clouds(), false).await.expect("fails over");
        assert_eq!(out.path, Some(GlobalPath::Failover));
        assert_eq!(writer(&f).await, "orders-use1");
        assert_eq!(out.lag.seconds(), Some(1.5));
        assert_eq!(out.lag.read_by.as_deref(), Some("switch-global"));
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains("rds:unplanned-global-failover-")),
            "{out:?}"
        );
        assert!(
            out.endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("orders-use1."))
        );
        assert_eq!(f.state().writes, ["FailoverGlobalCluster orders-global"]);
        // Run again (a resume): the target writes; nothing is sent.
        let again = run_step(&f.clouds(), false).await.expect("done");
        assert_eq!(again.path, Some(GlobalPath::Already));
        assert_eq!(f.state().writes.len(), 1);
    }

    #[tokio::test]
    async fn a_planned_failover_switches_over_and_loses_nothing() {
        let f = world();
        let out = run_step(&f.clouds(), true).await.expect("switches over");
        assert_eq!(out.path, Some(GlobalPath::Switchover));
        assert_eq!(writer(&f).await, "orders-use1");
        assert!(out.warnings.is_empty(), "{out:?}");
        assert!(
            f.state().cluster_snapshots.is_empty(),
            "no snapshot after a switchover"
        );
        assert_eq!(f.state().writes, ["SwitchoverGlobalCluster orders-global"]);
    }

    #[tokio::test]
    async fn a_refused_managed_failover_detaches_the_target_and_says_the_global_cluster_must_be_rebuilt()
     {
        let f = world();
        f.state().refuse_moves.insert(
            "FailoverGlobalCluster".into(),
            "InvalidGlobalClusterStateFault".into(),
        );
        let out = run_step(&f.clouds(), false).await.expect("detaches");
        assert_eq!(out.path, Some(GlobalPath::Detach));
        assert!(out.rebuild_needed);
        assert!(
            out.why
                .iter()
                .any(|w| w.contains("refused") && w.contains("InvalidGlobalClusterStateFault")),
            "{:?}",
            out.why
        );
        assert!(
            out.warnings.iter().any(|w| w.contains("must be rebuilt")),
            "{out:?}"
        );
        let c = (f
            .clouds()
            .aurora
            .describe_cluster("us-east-1", "orders-use1")
            .await)
            .expect("read")
            .expect("exists");
        assert_eq!(c.global_cluster, None, "standalone");
        assert_eq!(
            writer(&f).await,
            "orders-usw2",
            "the old writer is left alone"
        );
        // A resume finds it detached: done, nothing sent again.
        let again = run_step(&f.clouds(), false).await.expect("done");
        assert_eq!(again.path, Some(GlobalPath::Detach));
        assert_eq!(f.state().writes, ["RemoveFromGlobalCluster orders-use1"]);
    }

    #[tokio::test]
    async fn a_planned_run_does_not_detach_when_the_switchover_is_refused() {
        let f = world();
        f.state().refuse_moves.insert(
            "SwitchoverGlobalCluster".into(),
            "InvalidGlobalClusterStateFault".into(),
        );
        let e = run_step(&f.clouds(), true).await.expect_err("refused");
        assert!(
            e.summary().contains("InvalidGlobalClusterStateFault"),
            "{e}"
        );
        assert_eq!(writer(&f).await, "orders-usw2");
        assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
    }

    #[tokio::test]
    async fn with_the_home_region_dead_the_failover_is_asked_of_the_target_only() {
        let f = world();
        f.state().dead_regions.insert("us-west-2".into());
        let out = run_step(&f.clouds(), false).await.expect("fails over");
        assert_eq!(out.path, Some(GlobalPath::Failover));
        assert_eq!(writer(&f).await, "orders-use1");
    }
}
