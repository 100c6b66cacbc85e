//! Elastic Load Balancing (v2): the health of a target group's targets,
//! which the capacity steps count for a group registered in one (an Auto
//! Scaling group's `TargetGroupARNs`, an ECS service's load balancers).

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::types::{TargetHealthDescription, TargetHealthStateEnum};

use super::{Call, Regional, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{CloudError, TargetCount};

const SERVICE: &str = "elasticloadbalancing";

/// [`crate::cloud::Balancers`] over Elastic Load Balancing (v2).
pub struct ElbTargets {
    clients: Regional<aws_sdk_elasticloadbalancingv2::Client>,
    retry: RetryPolicy,
}

impl ElbTargets {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::elbv2),
            retry,
        }
    }
}

/// The count of one answer's targets (pure): `healthy` ones, and the
/// others by state and reason (`unhealthy: Target.FailedHealthChecks`,
/// `initial: Elb.RegistrationInProgress`, `unused: Target.NotInUse`).
fn count_of(arn: &str, targets: &[TargetHealthDescription]) -> TargetCount {
    let mut out = TargetCount {
        arn: arn.to_string(),
        registered: targets.len() as u32,
        ..TargetCount::default()
    };
    for t in targets {
        let health = t.target_health();
        match health.and_then(|h| h.state()) {
            Some(TargetHealthStateEnum::Healthy) => out.healthy += 1,
            state => {
                let state = state.map_or("unknown", |s| s.as_str());
                let why = match health.and_then(|h| h.reason()) {
                    Some(r) => format!("{state}: {}", r.as_str()),
                    None => state.to_string(),
                };
                *out.reasons.entry(why).or_default() += 1;
            }
        }
    }
    out
}

#[async_trait]
impl crate::cloud::Balancers for ElbTargets {
    async fn target_health(&self, region: &str, arn: &str) -> Result<TargetCount, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeTargetHealth", arn, region);
        let out = call(&self.retry, c, || {
            client.describe_target_health().target_group_arn(arn).send()
        })
        .await?;
        Ok(count_of(arn, out.target_health_descriptions()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::types::{
        TargetDescription, TargetHealth, TargetHealthReasonEnum,
    };

    fn target(id: &str, state: &str, reason: Option<&str>) -> TargetHealthDescription {
        let mut h = TargetHealth::builder().state(TargetHealthStateEnum::from(state));
        if let Some(r) = reason {
            h = h.reason(TargetHealthReasonEnum::from(r));
        }
        TargetHealthDescription::builder()
            .target(TargetDescription::builder().id(id).build())
            .target_health(h.build())
            .build()
    }

    /// As AWS answers a group whose new instances are still registering
    /// and one that fails its checks (the shapes of `DescribeTargetHealth`).
    #[test]
    fn healthy_targets_count_and_the_others_are_named_by_state_and_reason() {
        let arn =
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/73e2d6bc24d8a067";
        let c = count_of(
            arn,
            &[
                target("i-1", "healthy", None),
                target("i-2", "initial", Some("Elb.RegistrationInProgress")),
                target("i-3", "unhealthy", Some("Target.FailedHealthChecks")),
                target("i-4", "unhealthy", Some("Target.FailedHealthChecks")),
            ],
        );
        assert_eq!((c.healthy, c.registered), (1, 4));
        assert_eq!(
            c.said(),
            "target group web: 1 of 4 healthy (1 initial: Elb.RegistrationInProgress, 2 unhealthy: Target.FailedHealthChecks)"
        );
        assert_eq!(
            count_of(arn, &[]).said(),
            "target group web: 0 of 0 healthy"
        );
    }
}
