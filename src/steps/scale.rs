//! `scale`: set the target region's compute group to its active capacity and
//! wait until the desired number of instances is in service.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Action, Cx, Planned, StepFailure, wait_for};
use crate::cloud::Capacity;

/// Scale one compute resource in the target region.
pub struct Scale {
    /// Plan resource id.
    pub resource: String,
}

impl Scale {
    fn spec<'a>(&self, cx: &'a Cx<'_>) -> (&'a str, Capacity) {
        let g = cx
            .plan
            .spec
            .compute
            .iter()
            .find(|c| c.id == self.resource)
            .expect("graph steps name plan resources");
        (g.regions[cx.target].as_str(), g.active.into())
    }
}

#[async_trait]
impl Action for Scale {
    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let (name, want) = self.spec(cx);
        let current = cx.clouds.compute.describe_group(cx.target, name).await?;
        Ok(vec![Planned {
            call: "autoscaling:UpdateAutoScalingGroup".into(),
            resource: name.into(),
            region: cx.target.into(),
            current: current.as_ref().map_or("missing".into(), |g| {
                format!(
                    "{} (min/desired/max), {} in service",
                    g.capacity, g.in_service
                )
            }),
            desired: format!("{want} (min/desired/max), {} in service", want.desired),
            change: current.is_none_or(|g| g.capacity != want),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (name, want) = self.spec(cx);
        let t = cx.target;
        let before = cx
            .clouds
            .compute
            .describe_group(t, name)
            .await?
            .ok_or_else(|| {
                StepFailure::state(
                    format!("compute group {name} does not exist in {t}"),
                    "create it (terraform/compute.tf) or fix the id in the plan",
                    name,
                    t,
                )
            })?;
        let acted = before.capacity != want;
        if acted {
            cx.clouds.compute.set_capacity(t, name, want).await?;
        } else {
            tracing::info!(group = name, region = t, "already at active capacity");
        }
        let after = wait_for(
            cx,
            &format!("{} instances in service in {name} ({t})", want.desired),
            || async {
                let g = cx.clouds.compute.describe_group(t, name).await?;
                Ok(g.filter(|g| g.capacity == want && g.in_service >= want.desired))
            },
        )
        .await?;
        Ok(json!({
            "group": name,
            "region": t,
            "before": before.capacity,
            "after": after.capacity,
            "in_service": after.in_service,
            "changed": acted,
        }))
    }
}
