//! Capacity that counts when its load balancer says so (issue 75): an
//! Auto Scaling group registered in a target group serves, for a raise, no
//! more than the target group counts healthy; a raise whose targets fail
//! their checks waits, then fails naming the target group and the reason,
//! and a resume once they pass completes; a plan may opt out per resource.

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

#[tokio::test]
async fn regression_instances_in_service_that_the_load_balancer_sends_nothing_held_no_raise() {
    let f = failing_world();
    let dir = tempfile::tempdir().unwrap();
    let (e, _, _) = engine(&f, dir.path());
    let report = e.run(&payments(), &short()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report:#?}");
    let raise = (report.steps.iter())
        .find(|s| s.step.contains("raise:payments-api"))
        .expect("the raise");
    let error = format!("{:?}", raise.error);
    assert!(
        error.contains("target group payments-web: 0 of 4 healthy")
            && error.contains("4 unhealthy: Target.FailedHealthChecks"),
        "{error}"
    );
    // The group itself was raised and its instances are in service.
    let raised = {
        let s = f.state();
        let g = &s.groups[&("us-east-1".to_string(), "payments-api-use1".to_string())];
        (g.capacity.desired, g.in_service)
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

#[tokio::test]
async fn status_says_what_each_target_group_counts() {
    let f = failing_world();
    let opts = crate::status::StatusOptions::default();
    let report = crate::status::status(&f.clouds(), &payments(), &opts).await;
    let notes: Vec<String> = (report.plans.iter())
        .flat_map(|p| p.regions.iter())
        .flat_map(|r| r.compute.iter())
        .flat_map(|g| g.notes.clone())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n == "target group payments-web: 0 of 0 healthy"),
        "{notes:?}"
    );
}
