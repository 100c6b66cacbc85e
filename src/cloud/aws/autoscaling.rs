//! Auto Scaling: groups, their capacity and their tags.
//!
//! Tags are written with `PropagateAtLaunch=false`: they describe the group
//! (a drill keeps the capacity to restore in them), not its instances.
//! A `ValidationError` saying "not found" (how Auto Scaling answers a call
//! on an unknown group) is reported as not found. moto 5.2.5 answers
//! CreateOrUpdateTags and DeleteTags on an unknown group with an HTTP 500
//! instead, which is retried and then reported as a server error.
//!
//! The adapter implements the capacity role itself ([`Scaler`]): a group
//! is named as the plan names it, sized by three bounds, and its answer is
//! read straight into the role's [`Reading`], tested here on answers of
//! Auto Scaling's shape and against moto (`tests/it/adapters.rs`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_autoscaling::types::{LifecycleState, Tag};

use super::{Call, Regional, Sdk, call};
use crate::cloud::metered::Wire;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{
    Capacity, Change, CloudError, ComputeGroup, ErrorKind, Reading, Scaler, ScalingCalls, Size,
    bounds_of,
};

const SERVICE: &str = "autoscaling";

/// The calls of `[[compute]]`'s capacity role.
pub const CALLS: ScalingCalls = ScalingCalls {
    kind: "compute",
    read: "autoscaling:DescribeAutoScalingGroups",
    set: "autoscaling:UpdateAutoScalingGroup",
    mark: "autoscaling:CreateOrUpdateTags",
    unmark: "autoscaling:DeleteTags",
    calls: &[
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:UpdateAutoScalingGroup",
    ],
    waits: &["autoscaling:InService"],
};

/// The capacity role over Auto Scaling groups.
pub struct AutoScalingCompute {
    clients: Regional<aws_sdk_autoscaling::Client>,
    retry: RetryPolicy,
}

impl AutoScalingCompute {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::autoscaling),
            retry,
        }
    }
}

/// Auto Scaling reports an unknown group as a generic `ValidationError`
/// ("AutoScalingGroup name not found ..."): that is a [`ErrorKind::NotFound`].
fn group_not_found(mut e: CloudError) -> CloudError {
    if e.code.as_deref() == Some("ValidationError")
        && e.message.to_ascii_lowercase().contains("not found")
    {
        e.kind = ErrorKind::NotFound;
    }
    e
}

fn count(n: Option<i32>) -> u32 {
    n.unwrap_or(0).max(0) as u32
}

/// A group as the capacity role reads it (pure): its three bounds; what
/// serves, its instances in service. Auto Scaling reports no change under
/// way that a read could wait on (moto answers no scaling activities), so
/// a change is settled once the instances are in service, and a launch
/// that keeps failing is a wait that ends at the step's deadline. Its tags
/// go on its name.
pub fn reading(g: ComputeGroup) -> Reading {
    Reading {
        size: Size::Bounds(g.capacity),
        serving: g.in_service,
        change: Change::Settled,
        state: format!("{} of {} instances in service", g.in_service, g.instances),
        handle: g.name,
        marks: g.tags,
        ceiling: None,
        balanced_by: g.target_groups,
        targets: Vec::new(),
    }
}

#[async_trait]
impl Scaler for AutoScalingCompute {
    fn calls(&self) -> &'static ScalingCalls {
        &CALLS
    }

    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        Ok(self.describe(wire, region, group).await?.map(reading))
    }

    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        (wire.call(CALLS.read, region, || self.describe_group(region, group))).await
    }

    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let c = bounds_of(size, CALLS.set, group, region)?;
        (wire.call(CALLS.set, region, || self.set_capacity(region, group, c))).await?;
        Ok(None)
    }

    async fn mark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let name = &read.handle;
        (wire.call(CALLS.mark, region, || self.tag_group(region, name, marks))).await
    }

    async fn unmark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        let name = &read.handle;
        (wire.call(CALLS.unmark, region, || {
            self.untag_group(region, name, keys)
        }))
        .await
    }
}

impl AutoScalingCompute {
    async fn describe_group(
        &self,
        region: &str,
        name: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DescribeAutoScalingGroups", name, region);
        let out = call(&self.retry, c, || {
            client
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(name)
                .send()
        })
        .await?;
        // An unknown name is not an error here: the list is just empty.
        let Some(g) = out
            .auto_scaling_groups()
            .iter()
            .find(|g| g.auto_scaling_group_name() == Some(name))
        else {
            return Ok(None);
        };
        let in_service = g
            .instances()
            .iter()
            .filter(|i| {
                i.lifecycle_state() == Some(&LifecycleState::InService)
                    && i.health_status()
                        .is_some_and(|h| h.eq_ignore_ascii_case("healthy"))
            })
            .count() as u32;
        Ok(Some(ComputeGroup {
            name: name.to_string(),
            region: region.to_string(),
            capacity: Capacity {
                min: count(g.min_size()),
                desired: count(g.desired_capacity()),
                max: count(g.max_size()),
            },
            in_service,
            instances: g.instances().len() as u32,
            tags: g
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_string(),
                        t.value().unwrap_or_default().to_string(),
                    ))
                })
                .collect(),
            status: None,
            notes: Vec::new(),
            target_groups: (g.target_group_arns().iter()).map(String::clone).collect(),
        }))
    }

    async fn set_capacity(
        &self,
        region: &str,
        name: &str,
        capacity: Capacity,
    ) -> Result<(), CloudError> {
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "UpdateAutoScalingGroup", name, region);
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        let out = call(&self.retry, c, || {
            client
                .update_auto_scaling_group()
                .auto_scaling_group_name(name)
                .min_size(to_i32(capacity.min))
                .max_size(to_i32(capacity.max))
                .desired_capacity(to_i32(capacity.desired))
                .send()
        })
        .await;
        out.map(|_| ()).map_err(group_not_found)
    }

    async fn tag_group(
        &self,
        region: &str,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        if tags.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "CreateOrUpdateTags", name, region);
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| {
                Tag::builder()
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .value(v)
                    .propagate_at_launch(false)
                    .build()
            })
            .collect();
        call(&self.retry, c, || {
            client
                .create_or_update_tags()
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map_err(group_not_found)?;
        Ok(())
    }

    async fn untag_group(
        &self,
        region: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), CloudError> {
        if keys.is_empty() {
            return Ok(());
        }
        let client = self.clients.get(region);
        let c = Call::new(SERVICE, "DeleteTags", name, region);
        let tags: Vec<Tag> = keys
            .iter()
            .map(|k| {
                Tag::builder()
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .key(k)
                    .build()
            })
            .collect();
        call(&self.retry, c, || {
            client.delete_tags().set_tags(Some(tags.clone())).send()
        })
        .await
        .map_err(group_not_found)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group as `DescribeAutoScalingGroups` answers it (what drctl
    /// reads): 2/4/8, `in_service` of `instances` in service, tagged.
    fn answer(in_service: u32, instances: u32) -> ComputeGroup {
        ComputeGroup {
            name: "payments-api-use1".into(),
            region: "us-east-1".into(),
            capacity: Capacity {
                min: 2,
                desired: 4,
                max: 8,
            },
            in_service,
            instances,
            tags: [("drctl:drill-run".to_string(), "r1".to_string())].into(),
            status: None,
            notes: Vec::new(),
            target_groups: vec![
                "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1".into(),
            ],
        }
    }

    #[test]
    fn a_group_serves_its_instances_in_service_and_its_tags_go_on_its_name() {
        let r = reading(answer(1, 4));
        assert_eq!(r.size, Size::Bounds(answer(1, 4).capacity));
        assert_eq!((r.serving, &r.change), (1, &Change::Settled));
        assert_eq!(r.state, "1 of 4 instances in service");
        assert_eq!(
            r.handle, "payments-api-use1",
            "CreateOrUpdateTags names the group"
        );
        assert_eq!(
            r.marks.get("drctl:drill-run").map(String::as_str),
            Some("r1")
        );
        assert_eq!(
            r.balanced_by.len(),
            1,
            "its target groups, to count healthy"
        );
        assert!(!r.serves(r.size), "one of four in service");
        assert!(reading(answer(4, 4)).serves(r.size));
    }

    #[test]
    fn a_size_of_one_count_is_refused_before_any_call() {
        let e = bounds_of(Size::Count(4), CALLS.set, "g", "us-east-1").expect_err("one count");
        assert_eq!(
            (e.service, e.operation),
            ("autoscaling", "UpdateAutoScalingGroup")
        );
        assert!(e.to_string().contains("min/desired/max"), "{e}");
    }
}
