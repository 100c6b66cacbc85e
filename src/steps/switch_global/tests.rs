//! The choice of path (pure), and the step on the fake cloud.

use super::*;
use crate::cloud::{GlobalMember, GlobalMove};

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
    assert!(matches!(planned, Decision::Act { path: GlobalPath::Switchover, .. }), "{planned:?}");
    let unplanned = decide(&step(false), Some(&c), &g);
    assert!(matches!(unplanned, Decision::Act { path: GlobalPath::Failover, .. }), "{unplanned:?}");
}

#[test]
fn an_unanswered_global_api_detaches_unless_planned() {
    let c = cluster(Some("orders-global"));
    let gone = GlobalRead::Unanswered("connection refused".into());
    let d = decide(&step(false), Some(&c), &gone);
    assert_eq!(path(&d), Some(GlobalPath::Detach));
    let Decision::Act { why, .. } = &d else { panic!("{d:?}") };
    assert!(why.contains("does not answer"), "{why}");
    let d = decide(&step(true), Some(&c), &gone);
    assert!(matches!(d, Decision::Refuse { .. }), "{d:?}");
}

#[test]
fn a_target_that_writes_or_stands_alone_is_done_and_a_move_under_way_is_waited_for() {
    let member = cluster(Some("orders-global"));
    let d = decide(&step(false), Some(&member), &GlobalRead::Read(Some(global(true, None))));
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
        assert!(matches!(d, Decision::Done { path: GlobalPath::Detach, .. }), "{d:?}");
    }
    let toward = GlobalMove {
        status: "failing-over".into(),
        from: None,
        to: Some(member.arn.clone()),
        data_loss_allowed: true,
    };
    let d = decide(&step(false), Some(&member), &GlobalRead::Read(Some(global(false, Some(toward)))));
    assert!(matches!(d, Decision::Wait { .. }), "{d:?}");
    let elsewhere = GlobalMove {
        status: "switching-over".into(),
        from: None,
        to: Some("arn:aws:rds:eu-west-1:1:cluster:orders-euw1".into()),
        data_loss_allowed: false,
    };
    let d = decide(&step(false), Some(&member), &GlobalRead::Read(Some(global(false, Some(elsewhere)))));
    let Decision::Refuse { message, .. } = d else { panic!() };
    assert!(message.contains("orders-euw1"), "{message}");
}

#[test]
fn a_missing_target_or_a_refused_read_refuses_and_names_the_cluster_and_region() {
    let d = decide(&step(false), None, &GlobalRead::Read(None));
    let Decision::Refuse { message, .. } = d else { panic!() };
    assert_eq!(message, "cluster orders-use1 does not exist in us-east-1");
    let c = cluster(Some("orders-global"));
    let d = decide(&step(false), Some(&c), &GlobalRead::Refused("AccessDenied".into()));
    let Decision::Refuse { message, .. } = d else { panic!() };
    assert!(message.contains("orders-global") && message.contains("us-east-1"), "{message}");
}

#[test]
fn the_rpo_of_a_switchover_is_zero_by_design_and_of_a_failover_the_lag_read_before_it() {
    let origin = Utc::now();
    let out = |path, lag: Option<f64>| {
        serde_json::to_value(SwitchGlobalOutput {
            path: Some(path),
            lag: lag.map(|l| LagAtPromotion {
                lag_seconds: Some(l),
                lag_max_seconds: Some(l),
                lag_read_at: Some(origin),
            }),
            lag_datapoints: lag.map(|_| 3),
            ..SwitchGlobalOutput::default()
        })
        .unwrap()
    };
    let (v, basis) = rpo("db", Some(&out(GlobalPath::Switchover, Some(2.0))), None, origin, "x");
    assert_eq!(v, Some(0.0));
    assert!(basis.contains("by design") && basis.contains("not measured"), "{basis}");
    let (v, basis) = rpo("db", Some(&out(GlobalPath::Failover, Some(2.5))), None, origin, "x");
    assert_eq!(v, Some(2.5));
    assert!(basis.contains("AuroraGlobalDBRPOLag") && basis.contains("3 datapoints"), "{basis}");
    let (v, basis) = rpo("db", Some(&out(GlobalPath::Detach, None)), None, origin, "x");
    assert_eq!(v, None, "unknown is never zero: {basis}");
    let (v, _) = rpo("db", None, Some(1.0), origin, "x");
    assert_eq!(v, None);
}
