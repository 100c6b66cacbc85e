//! The load balancers' target groups in the fake (`groups.rs` models the
//! capacity kinds, all on the role's port).

use super::*;

/// A target group counts the members of the groups and services registered
/// in it: those in service (tasks running) healthy, unless it was made to
/// fail (then `unhealthy` with its reason), the others still registering
/// (`initial: Elb.RegistrationInProgress`), as ELB answers.
#[async_trait]
impl Balancers for FakeCloud {
    async fn target_health(&self, region: &str, arn: &str) -> Result<TargetCount, CloudError> {
        let s = (self.enter("elasticloadbalancing:DescribeTargetHealth", region, arn)).await?;
        let (serving, registered) = s.scaled_behind(region, arn);
        let mut count = TargetCount {
            arn: arn.into(),
            healthy: serving,
            registered,
            reasons: BTreeMap::new(),
            unread: None,
        };
        if let Some(why) = s.failing_targets.get(arn).filter(|_| serving > 0) {
            count.healthy = 0;
            count.reasons.insert(format!("unhealthy: {why}"), serving);
        }
        if registered > serving {
            let starting = "initial: Elb.RegistrationInProgress".to_string();
            count.reasons.insert(starting, registered - serving);
        }
        Ok(count)
    }
}
