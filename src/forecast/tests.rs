use super::*;

fn model() -> &'static Model {
    Model::aws().unwrap()
}

fn plans(names: &[&str]) -> Vec<Plan> {
    crate::plan::reference()
        .into_iter()
        .filter(|p| names.contains(&p.name()))
        .collect()
}

#[test]
fn one_plan_is_bound_by_its_promotion_and_says_so() {
    let ps = plans(&["payments"]);
    let f = forecast(model(), &Request::new(model(), &ps, "us-east-1")).unwrap();
    let p = &f.plans[0];
    // A promotion (median 5 min) then a change reaching INSYNC (30 s):
    // about six minutes at the median, more at p90.
    assert!((300.0..600.0).contains(&p.rto.p50_seconds), "{:?}", p.rto);
    assert!(p.rto.p90_seconds > p.rto.p50_seconds, "{:?}", p.rto);
    assert!(
        p.chain.iter().any(|s| s.contains("promote")),
        "{:?}",
        p.chain
    );
    assert!(
        f.binding.contains("rds:PromoteReadReplica"),
        "{}",
        f.binding
    );
    assert!(f.basis.contains("estimated"), "{}", f.basis);
    assert!(f.lower_bound_seconds <= f.run.p50_seconds, "{f:?}");
    assert!(f.lower_bound_seconds > 300.0, "{f:?}");
}

#[test]
fn the_same_seed_gives_the_same_forecast() {
    let ps = plans(&["payments", "ledger"]);
    let a = forecast(model(), &Request::new(model(), &ps, "us-east-1")).unwrap();
    let b = forecast(model(), &Request::new(model(), &ps, "us-east-1")).unwrap();
    assert_eq!(a.run, b.run);
    assert_eq!(a.binding, b.binding);
}

#[test]
fn two_hundred_plans_at_once_name_the_rds_bucket_and_the_zone() {
    let ps = plans(&["payments"]);
    let req = Request {
        plans_at_once: 200,
        ..Request::new(model(), &ps, "us-east-1")
    };
    let f = forecast(model(), &req).unwrap();
    assert_eq!(f.plans_at_once, 200);
    let rds = f
        .terms
        .iter()
        .find(|t| t.name == "rds in us-east-1")
        .unwrap();
    // Several RDS calls per plan at the start, against 300 and 12/s.
    assert!(rds.adds_seconds > 10.0, "{rds:?}");
    assert!(rds.detail.contains("burst of 300"), "{}", rds.detail);
    let zones = f
        .terms
        .iter()
        .find(|t| t.name == "route53 change batches")
        .unwrap();
    assert!(
        zones.detail.contains("200 plans share 1 zone"),
        "{}",
        zones.detail
    );
    let alone = forecast(model(), &Request::new(model(), &ps, "us-east-1")).unwrap();
    assert!(f.run.p50_seconds > alone.run.p50_seconds);
}

#[test]
fn a_step_bound_of_the_engine_is_a_term_of_its_own() {
    let ps = plans(&["payments"]);
    let req = Request {
        plans_at_once: 50,
        parallelism: 8,
        ..Request::new(model(), &ps, "us-east-1")
    };
    let f = forecast(model(), &req).unwrap();
    assert_eq!(f.terms[0].name, "parallelism", "{:?}", f.terms);
    assert!(f.binding.starts_with("--parallelism 8"), "{}", f.binding);
    let free = forecast(
        model(),
        &Request {
            parallelism: 0,
            ..req
        },
    )
    .unwrap();
    assert!(free.run.p50_seconds * 2.0 < f.run.p50_seconds, "{free:?}");
}

#[test]
fn a_plan_that_does_not_go_to_the_region_is_an_error() {
    let ps = plans(&["ledger"]);
    let e = forecast(model(), &Request::new(model(), &ps, "ap-south-1")).unwrap_err();
    assert!(e.to_string().contains("ap-south-1"), "{e}");
    assert!(matches!(
        forecast(model(), &Request::new(model(), &[], "us-east-1")),
        Err(ForecastError::Empty)
    ));
}

#[test]
fn polls_double_then_stay_at_the_last_interval() {
    let poll = (Duration::from_millis(200), Duration::from_secs(10));
    // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 6.4 = 12.6 s in six polls.
    assert_eq!(polls_during(12.0, poll), 6.0);
    assert_eq!(polls_during(32.6, poll), 8.0);
    assert_eq!(show(38.0), "38 s");
    assert_eq!(show(312.0), "5m 12s");
}

/// A wait the model does not time was forecast as 0 s, silently (and a
/// call of a service it does not know spent from no bucket): every label a
/// step kind declares in its `Traits::time` is in `aws_model.toml`.
#[test]
fn every_cost_label_a_step_declares_is_in_the_model() {
    let m = model();
    let mut missing = Vec::new();
    // A generic step's calls are its resource kind's role's.
    let roles = crate::plan::kinds::ResourceKind::ALL
        .iter()
        .flat_map(|&of| {
            [
                (
                    format!("raise of {of:?}"),
                    crate::steps::capacity::cost_of(of),
                ),
                (
                    format!("restore of {of:?}"),
                    crate::steps::restore_cost_of(of),
                ),
                (
                    format!("promote of {of:?}"),
                    crate::steps::promote_cost_of(of),
                ),
                (
                    format!("drill copy of {of:?}"),
                    crate::steps::drill_copy::cost_of(of),
                ),
            ]
        });
    let kinds = KindName::ALL
        .iter()
        .map(|k| (k.to_string(), k.traits().time));
    for (k, cost) in kinds.chain(roles) {
        for w in cost.waits {
            if m.duration(w).is_none() {
                missing.push(format!("{k}: wait `{w}` has no [[duration]]"));
            }
        }
        for c in cost.calls.iter().chain(cost.polls.iter()) {
            if !m.knows_call(c) {
                missing.push(format!("{k}: call `{c}` names no service of the model"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    // What the check refuses: a misspelt service, a label without one.
    assert!(m.knows_call("rds:PromoteReadReplica"));
    assert!(m.knows_call("http:GET"));
    assert!(!m.knows_call("rsd:PromoteReadReplica"));
    assert!(!m.knows_call("PromoteReadReplica"));
    assert!(!m.knows_call("rds:"));
}
