//! `scale`: set the target region's compute group to its active capacity and
//! wait until the desired number of instances is in service.

use async_trait::async_trait;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits, wait_for,
};
use crate::cloud::Capacity;
use crate::steps::graph::{Builder, Phase};

/// Scale one compute resource in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scale {
    /// Plan resource id.
    pub resource: String,
    /// Group name in the target region.
    pub group: String,
    /// Target region.
    pub region: String,
    /// Active capacity to reach.
    pub capacity: Capacity,
}

/// Part of the recovery; reversible (scale back down).
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    time: super::capacity::ASG_RAISE,
};

/// A failover scales every group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<Scale> = b
        .plan
        .spec
        .compute
        .iter()
        .map(|g| Scale {
            resource: g.id.clone(),
            group: g.regions[b.target].clone(),
            region: b.target.to_string(),
            capacity: g.active.into(),
        })
        .collect();
    for s in steps {
        let description = format!(
            "scale {} in {} to {} (min/desired/max)",
            s.group, s.region, s.capacity
        );
        b.add(
            StepKind::Scale(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::Compute),
            vec![s.resource],
            description,
        );
    }
}

/// What a scale step publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleOutput {
    /// Group name.
    pub group: String,
    /// Region.
    pub region: String,
    /// Capacity before.
    pub before: Capacity,
    /// Capacity after.
    pub after: Capacity,
    /// Instances in service after.
    pub in_service: u32,
    /// Whether the capacity was changed.
    pub changed: bool,
    /// A drill's tags removed from the group.
    pub drill_tags_removed: Vec<String>,
}

impl StepOutput for ScaleOutput {
    const KIND: KindName = KindName::Scale;
}

/// What preflight may keep of a group for the step (see
/// [`Cx::preflight_facts`]): only facts that carry the group's tags will do.
#[derive(Serialize, Deserialize)]
struct GroupFacts {
    capacity: Capacity,
    in_service: u64,
    tags: BTreeMap<String, String>,
}

/// The drill tags (`drctl:drill-*`) among a group's `tags`.
fn drill_tags_on(tags: &BTreeMap<String, String>) -> Vec<String> {
    crate::steps::drill_names::TAGS
        .iter()
        .filter(|k| tags.contains_key(**k))
        .map(|k| k.to_string())
        .collect()
}

impl Scale {
    /// Whether a group of capacity `cap` cannot be raised to the active
    /// capacity (its max is below it): the one rule preflight and `status`
    /// share.
    pub fn short_of(&self, cap: Capacity) -> bool {
        cap.max < self.capacity.desired
    }

    /// Why this group, as `status` read it in a standby region (`None`: it
    /// does not exist), could not take over: this kind's readiness rule,
    /// pure, on the data `status` read.
    pub fn standby_problems(&self, read: Option<Capacity>) -> Vec<String> {
        let (group, region) = (&self.group, &self.region);
        match read {
            None => vec![format!("compute group {group} does not exist in {region}")],
            Some(cap) if self.short_of(cap) => vec![format!(
                "compute group {group} in {region} has max {} below the active capacity {}",
                cap.max, self.capacity.desired
            )],
            Some(_) => Vec::new(),
        }
    }
}

#[async_trait]
impl Action for Scale {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads the group itself (it shows it in detail) and asks
        // [`Scale::standby_problems`] what the read means.
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = format!("compute {}", self.group);
        match cx
            .clouds
            .compute
            .describe_group(&self.region, &self.group)
            .await
        {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(g)) if self.short_of(g.capacity) => vec![Finding::blocks(
                &what,
                &self.region,
                format!("capacity {}", g.capacity),
                format!(
                    "max {} is below the active capacity {}",
                    g.capacity.max, self.capacity.desired
                ),
            )],
            // The step acts on this read while it is fresh (one request
            // fewer on every failover's path).
            Ok(Some(g)) => vec![
                Finding::ok(&what, &self.region, format!("capacity {}", g.capacity)).with_facts(
                    &GroupFacts {
                        capacity: g.capacity,
                        in_service: u64::from(g.in_service),
                        tags: g.tags,
                    },
                ),
            ],
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let want = self.capacity;
        let current = cx
            .clouds
            .compute
            .describe_group(&self.region, &self.group)
            .await?;
        Ok(vec![Planned {
            call: "autoscaling:UpdateAutoScalingGroup".into(),
            resource: self.group.clone(),
            region: self.region.clone(),
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
        let (name, t, want) = (self.group.as_str(), self.region.as_str(), self.capacity);
        // Preflight read the group moments ago: act on that read while it
        // is fresh (setting a capacity is idempotent anyway), else read.
        // (Only facts that carry the group's tags will do: a drill's tags
        // must be seen to be removed.)
        let fresh = cx.preflight_facts::<GroupFacts>(&format!("compute {name}"));
        let before = match fresh {
            Some(f) => crate::cloud::ComputeGroup {
                name: name.to_string(),
                region: t.to_string(),
                capacity: f.capacity,
                in_service: f.in_service as u32,
                instances: f.in_service as u32,
                tags: f.tags,
                ..Default::default()
            },
            None => cx
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
                })?,
        };
        let acted = before.capacity != want;
        if acted {
            cx.fenced(&format!("autoscaling:UpdateAutoScalingGroup of {name}"), t)
                .await?;
            cx.clouds.compute.set_capacity(t, name, want).await?;
        } else {
            tracing::info!(group = name, region = t, "already at active capacity");
        }
        // A drill that raised this group (and was preempted, or died) left
        // its tags, with the capacity to "restore": the group is the
        // failover's from the capacity write on, so the tags come off at
        // once, before the wait (which may fail, or the run die in it),
        // and no later cleanup or sweep finds them and scales it back down.
        let drill_tags = drill_tags_on(&before.tags);
        if !drill_tags.is_empty() {
            cx.fenced(&format!("autoscaling:DeleteTags of {name}"), t)
                .await?;
            cx.clouds.compute.untag_group(t, name, &drill_tags).await?;
            tracing::info!(
                group = name,
                region = t,
                "removed a drill's tags: the failover owns the group"
            );
        }
        // Already there and in service: the read above is the answer.
        let after = if !acted && before.in_service >= want.desired {
            before.clone()
        } else {
            wait_for(
                cx,
                &format!("{} instances in service in {name} ({t})", want.desired),
                || async {
                    let g = cx.clouds.compute.describe_group(t, name).await?;
                    Ok(g.filter(|g| g.capacity == want && g.in_service >= want.desired))
                },
            )
            .await?
        };
        ScaleOutput {
            group: name.to_string(),
            region: t.to_string(),
            before: before.capacity,
            after: after.capacity,
            in_service: after.in_service,
            changed: acted,
            drill_tags_removed: drill_tags,
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::fake::{FakeCloud, reference_world};
    use crate::cloud::{CloudError, Compute, ComputeGroup};
    use crate::steps::drill_names;

    /// The fake's groups, whose instances never come into service.
    struct NeverInService(Arc<dyn Compute>);

    #[async_trait]
    impl Compute for NeverInService {
        async fn describe_group(
            &self,
            region: &str,
            name: &str,
        ) -> Result<Option<ComputeGroup>, CloudError> {
            let g = self.0.describe_group(region, name).await?;
            Ok(g.map(|g| ComputeGroup { in_service: 0, ..g }))
        }
        async fn set_capacity(
            &self,
            region: &str,
            name: &str,
            capacity: Capacity,
        ) -> Result<(), CloudError> {
            self.0.set_capacity(region, name, capacity).await
        }
        async fn tag_group(
            &self,
            region: &str,
            name: &str,
            tags: &BTreeMap<String, String>,
        ) -> Result<(), CloudError> {
            self.0.tag_group(region, name, tags).await
        }
        async fn untag_group(
            &self,
            region: &str,
            name: &str,
            keys: &[String],
        ) -> Result<(), CloudError> {
            self.0.untag_group(region, name, keys).await
        }
    }

    /// Regression: the failover's scale step removed a dead drill's tags
    /// only after its wait for instances in service; when the wait failed
    /// (or the run died in it) the tags stayed, with the capacity to
    /// "restore", and a later `drctl drill sweep` set the failover's group
    /// back to its pre-drill size. The tags come off right after the
    /// capacity is set.
    #[tokio::test(start_paused = true)]
    async fn regression_a_failed_wait_left_the_drill_tags_for_a_sweep_to_lower_the_group() {
        let fake: FakeCloud = reference_world((&[3.0], &[1200.0]));
        let key = ("us-east-1".to_string(), "payments-api-use1".to_string());
        let before = fake.state().groups[&key].capacity;
        {
            let mut s = fake.state();
            let g = s.groups.get_mut(&key).unwrap();
            g.tags = drill_names::tags(
                "20261122T010000Z-payments-dead",
                "gone/pid 1",
                chrono::Utc::now(),
            );
            g.tags
                .insert(drill_names::RESTORE_TAG.into(), before.to_string());
        }
        let mut clouds = fake.clouds();
        clouds.compute = Arc::new(NeverInService(clouds.compute.clone()));
        let plan = crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .unwrap();
        let g = crate::steps::graph::compile(&plan, "us-east-1").unwrap();
        let step = g
            .steps
            .iter()
            .find(|s| matches!(s.kind, StepKind::Scale(_)))
            .unwrap();
        let StepKind::Scale(scale) = &step.kind else {
            unreachable!()
        };
        let outputs = BTreeMap::new();
        let cx = Cx {
            clouds: &clouds,
            plan: &plan,
            target: "us-east-1",
            run_id: "20261122T020000Z-payments-f1",
            outputs: &outputs,
            deadline: Instant::now() + Duration::from_millis(300),
            poll: (Duration::from_millis(10), Duration::from_millis(50)),
            journal: Arc::new(crate::journal::MemoryStore::new()),
            lag_window: Duration::from_secs(900),
            waiting: None,
            side: None,
            graph: &g.steps,
            rpo_readings: None,
            attempt: 1,
            drill_expires: None,
            render_report: None,
            fence: None,
            zone_batches: None,
            temps: None,
            control_read_timeout: crate::steps::dns_setup::SETUP_TIMEOUT,
        };
        let failed = scale.run(&cx).await;
        assert!(
            matches!(failed, Err(StepFailure::Timeout { .. })),
            "the wait fails: {failed:?}"
        );
        let s = fake.state();
        let group = &s.groups[&key];
        assert_eq!(group.capacity, scale.capacity, "the capacity was set");
        assert!(
            !group.tags.keys().any(|k| k.starts_with("drctl:drill")),
            "the drill's tags are gone before the wait: {:?}",
            group.tags
        );
        let writes: Vec<&String> = s
            .writes
            .iter()
            .filter(|w| w.contains("payments-api-use1"))
            .collect();
        assert!(
            writes[0].starts_with("UpdateAutoScalingGroup"),
            "the capacity first, then the tags: {writes:?}"
        );
    }
}
