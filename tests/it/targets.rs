//! Capacity that counts when its load balancer says so, against the
//! world's moto (Elastic Load Balancing v2 registers an Auto Scaling
//! group's instances in its target groups; moto_ext.py makes a target
//! group's targets fail their checks): an Auto Scaling group whose target
//! group reports unhealthy targets holds the raise, which fails naming
//! the target group and AWS's reason; once they pass, `runs resume`
//! completes it; `status` shows each target group's count.

use crate::fixture::Fixture;
use crate::world::{self, STANDBY};

/// The world's moto (Auto Scaling, EC2 and ELB v2 share it).
fn moto() -> String {
    world::vars()
        .get("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2")
        .cloned()
        .expect("the endpoints file names ELB v2 (localstack/up)")
}

/// The id of `region`'s default VPC, which moto makes (EC2's Query API:
/// the suite has no EC2 client of its own).
async fn default_vpc(region: &str) -> String {
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=test/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0"
    );
    let body = reqwest::Client::new()
        .post(moto())
        .header("authorization", auth)
        .form(&[("Action", "DescribeVpcs"), ("Version", "2016-11-15")])
        .send()
        .await
        .expect("moto answers")
        .text()
        .await
        .expect("an answer");
    let start = body.find("<vpcId>").expect("a VPC") + "<vpcId>".len();
    body[start..start + body[start..].find('<').expect("its end")].to_string()
}

/// Makes target group `arn`'s targets fail their checks with `reason`, or
/// pass again (`None`), through moto_ext.py's route.
async fn fail_targets(arn: &str, reason: Option<&str>) {
    let status = reqwest::Client::new()
        .post(format!("{}/_drctl/elbv2/health", moto()))
        .json(&serde_json::json!({ "arn": arn, "reason": reason }))
        .send()
        .await
        .expect("moto answers")
        .status();
    assert!(status.is_success(), "{status}");
}

#[tokio::test]
async fn a_raise_waits_on_its_target_group_names_it_and_a_resume_completes_once_healthy() {
    crate::needs_emulators!();
    let fx = Fixture::new("tgt").await;
    let sdk = world::sdk().await;
    let name = fx.id("pw");
    let made = sdk
        .elbv2(STANDBY)
        .create_target_group()
        .name(&name)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(default_vpc(STANDBY).await)
        .send()
        .await
        .expect("a target group");
    let arn = made.target_groups()[0]
        .target_group_arn()
        .expect("its ARN")
        .to_string();
    sdk.autoscaling(STANDBY)
        .attach_load_balancer_target_groups()
        .auto_scaling_group_name(fx.id("payments-api-use1"))
        .target_group_arns(&arn)
        .send()
        .await
        .expect("attached");
    fail_targets(&arn, Some("Target.FailedHealthChecks")).await;

    let status = fx.drctl(&["status", "--plan", "payments"]).await;
    assert!(
        status
            .out
            .contains(&format!("target group {name}: 0 of 0 healthy")),
        "{}",
        status.all()
    );

    let before = fx.runs();
    let ran = fx
        .failover_payments(&["--accept-data-loss", "1h", "--step-timeout", "8s"])
        .await;
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let run = fx.new_run(&before);
    let journal = fx.journal_text(&run).await;
    assert!(
        journal.contains(&format!("target group {name}: 0 of 4 healthy"))
            && journal.contains("4 unhealthy: Target.FailedHealthChecks"),
        "{journal}"
    );

    fail_targets(&arn, None).await;
    let resumed = fx.drctl(&["runs", "resume", &run]).await;
    assert_eq!(resumed.code, Some(0), "{}", resumed.all());
}
