//! Capacity that counts when its load balancer says so (issue 75): an
//! Auto Scaling group registered in a target group serves, for a raise, no
//! more than the target group counts healthy; a raise whose targets fail
//! their checks waits, then fails naming the target group and the reason,
//! and a resume once they pass completes; a plan may opt out per resource.
//! (What `status` shows of them: `status::tests`.)

use std::time::Duration;

use super::tests::{engine, opts, payments, world};
use super::*;
use crate::cloud::fake::FakeCloud;

const ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/payments-web/73e2d6bc24d8a067";

/// The reference world with payments' standby group behind a target group
/// whose targets fail their health checks.
fn failing_world() -> FakeCloud {
    let f = world();
    f.attach_target_group("us-east-1", "payments-api-use1", ARN);
    f.fail_targets(ARN, Some("Target.FailedHealthChecks"));
    f
}

fn short() -> RunOptions {
    RunOptions {
        accept_data_loss: Some(Duration::from_secs(1800)),
        step_timeout: Some(Duration::from_millis(300)),
        ..opts()
    }
}

/// The error of the failed run's step whose id holds `step`.
fn raise_error(report: &RunReport, step: &str) -> String {
    let raise = (report.steps.iter()).find(|s| s.step.contains(step));
    format!("{:?}", raise.expect("the raise").error)
}

#[tokio::test]
async fn regression_instances_in_service_that_the_load_balancer_sends_nothing_held_no_raise() {
    let f = failing_world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let report = e.run(&payments(), &short()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report:#?}");
    let error = raise_error(&report, "raise:payments-api");
    assert!(
        error.contains("target group payments-web: 0 of 4 healthy")
            && error.contains("4 unhealthy: Target.FailedHealthChecks"),
        "{error}"
    );
    // The group itself was raised and its instances are in service.
    let raised = {
        let s = f.state();
        let g = &s.scaled[&(
            "compute",
            "us-east-1".to_string(),
            "payments-api-use1".to_string(),
        )];
        (g.bounds().desired, g.serving)
    };
    assert_eq!(raised, (4, 4));
    // Once the targets pass, a resume completes the raise.
    f.fail_targets(ARN, None);
    let resumed = e
        .resume(&report.run_id, &payments(), Some(short()))
        .await
        .unwrap();
    assert_eq!(resumed.outcome, Outcome::Succeeded, "{resumed:#?}");
}

#[tokio::test]
async fn a_plan_that_opts_out_counts_its_instances_alone() {
    let f = failing_world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let mut plans = payments();
    for c in &mut plans[0].spec.compute {
        c.wait_for_targets = false;
    }
    let report = e.run(&plans, &short()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
}

/// A target group that cannot be read holds nothing it does not need:
/// preflight says it unread and goes on, and the raise, which counts it
/// healthy only once read, completes when it answers.
#[tokio::test]
async fn a_target_group_that_does_not_answer_blocks_no_preflight_and_counts_once_read() {
    use crate::cloud::metered::{Effect, Injection, Metered};
    let f = world();
    f.attach_target_group("us-east-1", "payments-api-use1", ARN);
    let dir = tempfile::tempdir().unwrap();
    let (mut e, store, _) = engine(&f, dir.path());
    let refused = |nth| Injection {
        label: "elasticloadbalancing:DescribeTargetHealth",
        nth,
        effect: Effect::Refused,
        kind: crate::cloud::ErrorKind::Connection,
    };
    (e.clouds, _) = Metered::wrap_with_faults(f.clouds(), (1..=3).map(refused).collect());
    let report = e.run(&payments(), &short()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report:#?}");
    let preflight = super::tests::step_outputs(&store, &report.run_id, "payments/preflight").await;
    assert!(
        preflight
            .to_string()
            .contains("target group payments-web: not read"),
        "{preflight}"
    );
}

/// The same for an ECS service behind a load balancer (`orders`).
#[tokio::test]
async fn an_ecs_service_behind_failing_targets_holds_its_raise_and_names_them() {
    let f = world();
    f.attach_target_group("us-east-1", "orders-ecs-use1/orders-workers", ARN);
    f.fail_targets(ARN, Some("Target.Timeout"));
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let orders = super::tests::plans_named("orders");
    let report = e.run(&orders, &short()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report:#?}");
    let error = raise_error(&report, "raise:orders-workers");
    assert!(
        error.contains("target group payments-web: 0 of 4 healthy")
            && error.contains("unhealthy: Target.Timeout"),
        "{error}"
    );
}
