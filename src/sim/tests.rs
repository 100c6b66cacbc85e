use super::*;

fn model() -> &'static Model {
    Model::aws().unwrap()
}

fn payments() -> Plan {
    crate::plan::reference()
        .into_iter()
        .find(|p| p.name() == "payments")
        .unwrap()
}

#[test]
fn one_plan_fails_over_in_minutes_of_virtual_time_and_seconds_of_wall() {
    let wall = std::time::Instant::now();
    let out = paused(simulate(
        model(),
        &[payments()],
        "us-east-1",
        &SimOptions::drctl(model(), 3),
    ))
    .unwrap();
    assert!(out.succeeded, "{out:?}");
    let rto = out.rto["payments"];
    // Never below what the world's own draws allow.
    assert!(rto >= out.floor, "{rto:?} < {:?}", out.floor);
    assert!(out.floor > Duration::from_secs(30), "{:?}", out.floor);
    // A promotion of minutes, then a change reaching INSYNC.
    assert!(rto > Duration::from_secs(60), "{rto:?}");
    assert!(
        wall.elapsed() < Duration::from_secs(30),
        "{:?}",
        wall.elapsed()
    );
    assert_eq!(out.changes, 1, "{out:?}");
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        paused(simulate(
            model(),
            &[payments()],
            "us-east-1",
            &SimOptions::drctl(model(), seed),
        ))
        .unwrap()
        .rto
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

/// Fifty plans in one zone: every plan's switch goes through the zone's
/// queue (their promotions end minutes apart, so most go alone, each after
/// the zone is free).
#[test]
fn fifty_plans_in_one_zone_all_switch() {
    let plans = copies(&payments(), 50, 1);
    let out = paused(simulate(
        model(),
        &plans,
        "us-east-1",
        &SimOptions::drctl(model(), 1),
    ))
    .unwrap();
    assert!(out.succeeded, "{:?}", out.failed);
    assert_eq!(out.rto.len(), 50);
    assert!(out.changes <= 50, "{} batches for 50 plans", out.changes);
}

/// 200 plans at once against AWS's limits: budgets make every throttle a
/// wait, so no step fails (the regression this pins: a throttling answer
/// failing a step of a mass failover).
#[test]
fn two_hundred_plans_make_no_throttling_error_visible() {
    let plans = copies(&payments(), 200, 5);
    let out = paused(simulate(
        model(),
        &plans,
        "us-east-1",
        &SimOptions::drctl(model(), 2),
    ))
    .unwrap();
    assert!(
        out.succeeded,
        "{:?}",
        &out.failed[..out.failed.len().min(3)]
    );
    assert!(out.failed.is_empty());
    assert_eq!(out.rto.len(), 200);
}

/// The simulator seeded databases, groups, records and checks by hand and
/// never `[[bucket]]`: a plan with one failed its preflight in the
/// simulated world. Each kind now seeds itself (`Resource::seed`).
#[test]
fn regression_a_plan_with_a_bucket_was_not_seeded() {
    let mut p = payments();
    let regions = p.regions().to_vec();
    p.spec.bucket.push(crate::plan::spec::BucketSpec {
        id: "assets".into(),
        regions: (regions.iter())
            .map(|r| (r.clone(), format!("s3://assets-{r}")))
            .collect(),
        after: Vec::new(),
    });
    let world = paused(world_for(model(), std::slice::from_ref(&p), 1));
    let target = "us-east-1";
    let findings = paused(crate::steps::readiness(
        &world.clouds(),
        &p,
        target,
        crate::steps::dns_setup::SETUP_TIMEOUT,
    ));
    let bucket: Vec<_> = (findings.iter())
        .filter(|f| f.resource.contains("assets"))
        .collect();
    assert!(!bucket.is_empty(), "{findings:?}");
    assert!(bucket.iter().all(|f| f.problem.is_none()), "{bucket:?}");
    let out = paused(simulate(
        model(),
        &[p],
        target,
        &SimOptions::drctl(model(), 3),
    ))
    .unwrap();
    assert!(out.succeeded, "{out:?}");
}

/// Copies of a plan name their own resources (each kind renames what it
/// names in the cloud) and share nothing a failover changes.
#[test]
fn copies_of_a_plan_rename_every_kind() {
    let plans = copies(&payments(), 2, 1);
    let ids = |p: &Plan| -> Vec<String> {
        (crate::plan::kinds::each(&p.spec).into_iter())
            .filter_map(|r| r.regions().cloned())
            .flat_map(|m| m.into_values())
            .collect()
    };
    let (a, b) = (ids(&plans[0]), ids(&plans[1]));
    assert!(!a.is_empty());
    assert!(a.iter().all(|v| !b.contains(v)), "{a:?} / {b:?}");
    assert!(
        plans
            .iter()
            .all(|p| p.spec.dns.iter().all(|d| d.zone == "z0.example.com."))
    );
}
