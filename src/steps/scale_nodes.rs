//! `scale-nodes`: set the target region's EKS managed node group to its
//! active size (`UpdateNodegroupConfig`, `scalingConfig`) and wait until
//! the update succeeded and the node group is `ACTIVE` at that size.
//!
//! Read, decide, act: the node group is read first and [`decide`] (pure)
//! says what to do with the read: nothing (already `ACTIVE` at the size),
//! scale it, wait for an update in flight (EKS refuses a second one; after
//! a crash it may be ours), or refuse (a node group being deleted, or
//! whose creation failed, cannot be scaled). The update EKS answers with is
//! followed through `DescribeUpdate` while it is in progress; a failed or
//! cancelled update fails the step with its id and its errors.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
};

use crate::cloud::{Capacity, NodeGroup, NodeGroupUpdate, UpdateStatus};
use crate::steps::capacity::Driver;
use crate::steps::graph::{Builder, Phase};

/// Scale one node group in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleNodes {
    /// Plan resource id.
    pub resource: String,
    /// EKS cluster in the target region.
    pub cluster: String,
    /// Managed node group in the target region.
    pub group: String,
    /// Target region.
    pub region: String,
    /// Active size to reach.
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
    time: Cost {
        calls: &[
            "eks:DescribeNodegroup",
            "eks:UpdateNodegroupConfig",
            "eks:DescribeUpdate",
        ],
        waits: &["eks:NodegroupActive"],
        polls: Some("eks:DescribeNodegroup"),
    },
};

/// A failover scales every node group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<ScaleNodes> = (b.plan.spec.node_group.iter())
        .filter_map(|g| {
            let (cluster, group) = g.in_region(b.target)?;
            Some(ScaleNodes {
                resource: g.id.clone(),
                cluster: cluster.to_string(),
                group: group.to_string(),
                region: b.target.to_string(),
                capacity: g.active.into(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "scale node group {}/{} in {} to {} nodes (min/desired/max), wait until ACTIVE",
            s.cluster, s.group, s.region, s.capacity
        );
        b.add(
            StepKind::ScaleNodes(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::NodeGroup),
            vec![s.resource],
            description,
        );
    }
}

/// What a node group's read says to do to bring it to a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodesNext {
    /// `ACTIVE` at the size: nothing to do.
    Done,
    /// Send the scaling update.
    Scale,
    /// An update is in flight (EKS refuses another): wait for the node
    /// group to settle, then decide again.
    Settle,
    /// It cannot be scaled in this state.
    Refuse(String),
}

/// Whether EKS is still applying something to a node group in `status`.
pub(crate) fn in_flight(status: &str) -> bool {
    matches!(status, "UPDATING" | "CREATING")
}

/// Decides what a scale to `want` does with `read` (pure).
pub fn decide(read: &NodeGroup, want: Capacity) -> NodesNext {
    let status = read.status.as_str();
    if in_flight(status) {
        return NodesNext::Settle;
    }
    if matches!(status, "DELETING" | "CREATE_FAILED" | "DELETE_FAILED") {
        return NodesNext::Refuse(format!(
            "node group {}/{} in {} is {status}: it cannot be scaled",
            read.cluster, read.name, read.region
        ));
    }
    if read.capacity == want && read.active() {
        return NodesNext::Done;
    }
    // ACTIVE at another size, or DEGRADED (EKS still takes its updates).
    NodesNext::Scale
}

/// Whether an update ended, and how: `Ok(true)` applied, `Ok(false)`
/// still in progress, `Err` what a failed or cancelled update says.
pub fn update_ended(u: &NodeGroupUpdate) -> Result<bool, String> {
    match u.status {
        UpdateStatus::InProgress => Ok(false),
        UpdateStatus::Successful => Ok(true),
        UpdateStatus::Failed | UpdateStatus::Cancelled => {
            let how = if u.status == UpdateStatus::Failed {
                "failed"
            } else {
                "was cancelled"
            };
            let errors = if u.errors.is_empty() {
                "no errors given".to_string()
            } else {
                u.errors.join("; ")
            };
            Err(format!("update {} {how}: {errors}", u.id))
        }
    }
}

/// What a scale-nodes step publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleNodesOutput {
    /// EKS cluster.
    pub cluster: String,
    /// Node group.
    pub group: String,
    /// Region.
    pub region: String,
    /// Size before.
    pub before: Capacity,
    /// Size after.
    pub after: Capacity,
    /// EKS's status of the node group after.
    pub status: String,
    /// The update sent, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    /// Whether the size was changed by this step.
    pub changed: bool,
}

impl StepOutput for ScaleNodesOutput {
    const KIND: KindName = KindName::ScaleNodes;
}

impl ScaleNodes {
    /// Whether a node group of size `cap` cannot be raised to the active
    /// size (its max is below it).
    pub fn short_of(&self, cap: Capacity) -> bool {
        cap.max < self.capacity.desired
    }

    fn what(&self) -> String {
        format!("node group {}/{}", self.cluster, self.group)
    }

    fn missing(&self) -> StepFailure {
        StepFailure::state(
            format!("{} does not exist in {}", self.what(), self.region),
            "create it (terraform/) or fix `cluster/nodegroup` in the plan",
            &self.group,
            &self.region,
        )
    }

    async fn read(&self, cx: &Cx<'_>) -> Result<Option<NodeGroup>, StepFailure> {
        Ok(cx
            .clouds
            .node_groups
            .describe_node_group(&self.region, &self.cluster, &self.group)
            .await?)
    }
}

/// Scales node group `cluster/group` in `region` to `want` and waits until
/// the update succeeded and the node group is `ACTIVE` at `want` (or, for
/// a cleanup, at `want` in whatever health it had): the failover's step, the
/// drill's and the drill's cleanup share it. Returns the read before, the
/// read after and the update sent (if any).
pub(crate) async fn bring_to(
    by: &Driver<'_, '_>,
    at: (&str, &str, &str),
    want: Capacity,
    missing: impl Fn() -> StepFailure,
) -> Result<(NodeGroup, NodeGroup, Option<String>), StepFailure> {
    let (region, cluster, group) = at;
    let before = read_group(by, at).await?.ok_or_else(&missing)?;
    let mut now = before.clone();
    let mut sent: Option<String> = None;
    loop {
        match decide(&now, want) {
            NodesNext::Done => return Ok((before, now, sent)),
            NodesNext::Refuse(why) => {
                return Err(StepFailure::state(
                    why,
                    "fix the node group in EKS (or the plan), then resume",
                    group,
                    region,
                ));
            }
            NodesNext::Settle => {
                now = settled(
                    by,
                    at,
                    &format!("node group {cluster}/{group} ({region}) to end its update"),
                )
                .await?;
                if let Some(id) = &sent
                    && now.capacity != want
                {
                    return Err(moved_after_update(at, &now, want, id));
                }
            }
            NodesNext::Scale if sent.is_some() => {
                return Err(not_serving_after_update(
                    at,
                    &now,
                    sent.as_deref().unwrap_or_default(),
                ));
            }
            NodesNext::Scale => {
                sent = Some(send_update(by, at, want).await?);
                now = settled(
                    by,
                    at,
                    &format!("node group {cluster}/{group} ({region}) ACTIVE at {want}"),
                )
                .await?;
            }
        }
    }
}

/// Reads node group `cluster/group` in `region` (`None`: it does not exist).
async fn read_group(
    by: &Driver<'_, '_>,
    (region, cluster, group): (&str, &str, &str),
) -> Result<Option<NodeGroup>, StepFailure> {
    Ok(by
        .clouds()
        .node_groups
        .describe_node_group(region, cluster, group)
        .await?)
}

/// Waits (told as `what`) until the node group has no update in flight,
/// and returns it as read then.
async fn settled(
    by: &Driver<'_, '_>,
    at: (&str, &str, &str),
    what: &str,
) -> Result<NodeGroup, StepFailure> {
    by.wait(what, || async {
        Ok(read_group(by, at).await?.filter(|g| !in_flight(&g.status)))
    })
    .await
}

/// Sends the scaling update to `want` (fenced) and waits until EKS has
/// applied it; returns the update's id.
async fn send_update(
    by: &Driver<'_, '_>,
    (region, cluster, group): (&str, &str, &str),
    want: Capacity,
) -> Result<String, StepFailure> {
    by.fenced(&format!("eks:UpdateNodegroupConfig of {group}"), region)
        .await?;
    let update = by
        .clouds()
        .node_groups
        .scale_node_group(region, cluster, group, want)
        .await?;
    let id = update.id.clone();
    let mut u = update;
    if !update_ended(&u).map_err(|e| failed(group, region, e))? {
        u = by
            .wait(
                &format!("update {id} of node group {cluster}/{group} ({region})"),
                || async {
                    let u = by
                        .clouds()
                        .node_groups
                        .describe_update(region, cluster, group, &id)
                        .await?;
                    Ok(update_ended(&u)
                        .map_err(|e| failed(group, region, e))?
                        .then_some(u))
                },
            )
            .await?;
    }
    tracing::info!(cluster, group, region, update = %u.id, "scaling update applied");
    Ok(id)
}

/// The failure when the node group, settled after update `id`, reads
/// another size than `want`: another writer changed it.
fn moved_after_update(
    (region, cluster, group): (&str, &str, &str),
    now: &NodeGroup,
    want: Capacity,
    id: &str,
) -> StepFailure {
    StepFailure::state(
        format!(
            "node group {cluster}/{group} in {region} reads {} after update {id}, not {want}",
            now.capacity
        ),
        "another writer changed its scaling configuration: look at the node group, then resume",
        group,
        region,
    )
}

/// The failure when EKS applied update `id` but the node group still does
/// not serve at the size (it would be scaled again).
fn not_serving_after_update(
    (region, cluster, group): (&str, &str, &str),
    now: &NodeGroup,
    id: &str,
) -> StepFailure {
    StepFailure::state(
        format!(
            "node group {cluster}/{group} in {region} is {} at {} after update {id}",
            now.status, now.capacity
        ),
        "EKS applied the update but the node group does not serve at the size: look at its health issues",
        group,
        region,
    )
}

fn failed(group: &str, region: &str, why: String) -> StepFailure {
    StepFailure::state(
        format!("scaling node group {group} in {region}: {why}"),
        "read the update's errors (aws eks describe-update), fix the cause, then resume",
        group,
        region,
    )
}

#[async_trait]
impl Action for ScaleNodes {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads the node group itself (it shows it in detail).
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = self.what();
        let read = cx
            .clouds
            .node_groups
            .describe_node_group(&self.region, &self.cluster, &self.group)
            .await;
        match read {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(g)) if self.short_of(g.capacity) => vec![Finding::blocks(
                &what,
                &self.region,
                format!("size {}", g.capacity),
                format!(
                    "max {} is below the active size {}",
                    g.capacity.max, self.capacity.desired
                ),
            )],
            Ok(Some(g)) => match decide(&g, self.capacity) {
                NodesNext::Refuse(why) => {
                    vec![Finding::blocks(&what, &self.region, g.status.clone(), why)]
                }
                _ => vec![Finding::ok(
                    &what,
                    &self.region,
                    format!("size {}, {}", g.capacity, g.status),
                )],
            },
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let want = self.capacity;
        let current = self.read(cx).await?;
        Ok(vec![Planned {
            call: "eks:UpdateNodegroupConfig".into(),
            resource: format!("{}/{}", self.cluster, self.group),
            region: self.region.clone(),
            current: current.as_ref().map_or("missing".into(), |g| {
                format!("{} nodes (min/desired/max), {}", g.capacity, g.status)
            }),
            desired: format!("{want} nodes (min/desired/max), ACTIVE"),
            change: current.is_none_or(|g| decide(&g, want) != NodesNext::Done),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let at = (
            self.region.as_str(),
            self.cluster.as_str(),
            self.group.as_str(),
        );
        let (before, after, update) =
            bring_to(&Driver::Step(cx), at, self.capacity, || self.missing()).await?;
        if update.is_none() {
            tracing::info!(
                group = self.group,
                region = self.region,
                "already ACTIVE at the active size"
            );
        }
        ScaleNodesOutput {
            cluster: self.cluster.clone(),
            group: self.group.clone(),
            region: self.region.clone(),
            before: before.capacity,
            after: after.capacity,
            status: after.status,
            changed: update.is_some(),
            update,
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::metered::Metered;
    use crate::cloud::{CloudError, Clouds, NodeGroups};

    /// The reference `orders` plan (its node group beside an Aurora global
    /// database and a record).
    fn orders() -> crate::plan::Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "orders")
            .expect("the reference orders plan")
    }

    /// The failover's scale-nodes step to us-east-1, run against `clouds`.
    async fn run_step(clouds: &Clouds) -> Result<Value, StepFailure> {
        let plan = orders();
        let g = crate::steps::graph::compile(&plan, "us-east-1").unwrap();
        let step = g
            .steps
            .iter()
            .find(|s| matches!(s.kind, StepKind::ScaleNodes(_)))
            .expect("a scale-nodes step");
        let StepKind::ScaleNodes(scale) = &step.kind else {
            unreachable!()
        };
        let outputs = BTreeMap::new();
        let cx = Cx {
            clouds,
            plan: &plan,
            target: "us-east-1",
            run_id: "20261125T040000Z-orders-nodes-f1",
            outputs: &outputs,
            deadline: Instant::now() + Duration::from_secs(3600),
            poll: (Duration::from_secs(5), Duration::from_secs(30)),
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
        scale.run(&cx).await
    }

    fn seeded(fake: &FakeCloud) {
        fake.add_node_group(
            "us-east-1",
            "orders-eks-use1",
            "orders-nodes-use1",
            Capacity {
                min: 0,
                desired: 0,
                max: 6,
            },
        );
    }

    /// Where updates take time (the fake's timed world: EKS answers
    /// `InProgress`, the node group is `UPDATING`), the step follows the
    /// update through `DescribeUpdate`, then waits for the node group
    /// `ACTIVE` at the size; the update is sent once.
    #[tokio::test(start_paused = true)]
    async fn an_update_in_progress_is_followed_until_the_node_group_is_active() {
        let fake = FakeCloud::timed(crate::cloud::model::Model::aws().unwrap(), 7);
        seeded(&fake);
        let (clouds, log) = Metered::wrap(fake.clouds());
        let out = run_step(&clouds).await.expect("the step succeeds");
        let out: ScaleNodesOutput = serde_json::from_value(out).unwrap();
        assert_eq!(
            (out.after, out.status.as_str(), out.changed),
            (WANT, "ACTIVE", true)
        );
        assert!(out.update.is_some());
        let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
        let n = |l: &str| labels.iter().filter(|x| **x == l).count();
        assert_eq!(n("eks:UpdateNodegroupConfig"), 1, "{labels:?}");
        assert!(n("eks:DescribeUpdate") >= 1, "{labels:?}");
        let g = fake.state().node_groups.values().next().cloned().unwrap();
        assert_eq!((g.capacity, g.status.as_str()), (WANT, "ACTIVE"));

        // Run again: already ACTIVE at the size, nothing is sent.
        let again: ScaleNodesOutput =
            serde_json::from_value(run_step(&clouds).await.unwrap()).unwrap();
        assert!(!again.changed && again.update.is_none());
        let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
        assert_eq!(
            labels
                .iter()
                .filter(|x| **x == "eks:UpdateNodegroupConfig")
                .count(),
            1
        );
    }

    /// EKS whose updates fail.
    struct Failing(Arc<dyn NodeGroups>);

    #[async_trait]
    impl NodeGroups for Failing {
        async fn describe_node_group(
            &self,
            region: &str,
            cluster: &str,
            name: &str,
        ) -> Result<Option<NodeGroup>, CloudError> {
            self.0.describe_node_group(region, cluster, name).await
        }
        async fn scale_node_group(
            &self,
            _region: &str,
            _cluster: &str,
            _name: &str,
            _capacity: Capacity,
        ) -> Result<NodeGroupUpdate, CloudError> {
            Ok(NodeGroupUpdate {
                id: "upd-7".into(),
                status: UpdateStatus::InProgress,
                errors: vec![],
            })
        }
        async fn describe_update(
            &self,
            _region: &str,
            _cluster: &str,
            _name: &str,
            id: &str,
        ) -> Result<NodeGroupUpdate, CloudError> {
            Ok(NodeGroupUpdate {
                id: id.into(),
                status: UpdateStatus::Failed,
                errors: vec!["InsufficientFreeAddresses: subnet has no free IPs (subnet-1)".into()],
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_update_fails_the_step_with_its_id_and_errors() {
        let fake = FakeCloud::new();
        seeded(&fake);
        let mut clouds = fake.clouds();
        clouds.node_groups = Arc::new(Failing(clouds.node_groups.clone()));
        let e = run_step(&clouds).await.expect_err("the update failed");
        let text = e.to_string();
        assert!(
            matches!(e, StepFailure::State { .. })
                && text.contains("upd-7")
                && text.contains("no free IPs"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_node_group_is_a_state_failure_naming_it() {
        let fake = FakeCloud::new();
        let e = run_step(&fake.clouds()).await.expect_err("no node group");
        assert!(
            e.to_string().contains("orders-eks-use1/orders-nodes-use1"),
            "{e}"
        );
    }

    fn read(status: &str, min: u32, desired: u32, max: u32) -> NodeGroup {
        NodeGroup {
            cluster: "orders-eks".into(),
            name: "orders-nodes".into(),
            region: "us-east-1".into(),
            capacity: Capacity { min, desired, max },
            status: status.into(),
            tags: Default::default(),
        }
    }

    const WANT: Capacity = Capacity {
        min: 2,
        desired: 3,
        max: 6,
    };

    #[test]
    fn a_node_group_active_at_the_size_is_left_alone() {
        assert_eq!(decide(&read("ACTIVE", 2, 3, 6), WANT), NodesNext::Done);
    }

    #[test]
    fn a_node_group_at_another_size_is_scaled_even_degraded() {
        assert_eq!(decide(&read("ACTIVE", 0, 0, 6), WANT), NodesNext::Scale);
        assert_eq!(decide(&read("DEGRADED", 0, 0, 6), WANT), NodesNext::Scale);
        // At the size but not serving: sent again (EKS takes it).
        assert_eq!(decide(&read("DEGRADED", 2, 3, 6), WANT), NodesNext::Scale);
    }

    #[test]
    fn an_update_in_flight_is_waited_for_before_anything_is_sent() {
        // After a crash between the update and its wait, the update in
        // flight is (likely) ours: it is waited on, never sent twice.
        assert_eq!(decide(&read("UPDATING", 2, 3, 6), WANT), NodesNext::Settle);
        assert_eq!(decide(&read("UPDATING", 0, 0, 6), WANT), NodesNext::Settle);
        assert_eq!(decide(&read("CREATING", 0, 0, 6), WANT), NodesNext::Settle);
    }

    #[test]
    fn a_node_group_being_deleted_or_failed_is_refused_by_name() {
        for status in ["DELETING", "CREATE_FAILED", "DELETE_FAILED"] {
            let NodesNext::Refuse(why) = decide(&read(status, 0, 0, 6), WANT) else {
                panic!("{status} must be refused");
            };
            assert!(
                why.contains("orders-eks/orders-nodes") && why.contains(status),
                "{why}"
            );
        }
    }

    #[test]
    fn a_failed_update_names_its_id_and_errors() {
        let mut u = NodeGroupUpdate {
            id: "u-1".into(),
            status: UpdateStatus::InProgress,
            errors: vec![],
        };
        assert_eq!(update_ended(&u), Ok(false));
        u.status = UpdateStatus::Successful;
        assert_eq!(update_ended(&u), Ok(true));
        u.status = UpdateStatus::Failed;
        u.errors = vec!["Ec2SubnetInvalidConfiguration: no free IPs (subnet-1)".into()];
        let why = update_ended(&u).unwrap_err();
        assert!(why.contains("u-1") && why.contains("no free IPs"), "{why}");
        u.status = UpdateStatus::Cancelled;
        u.errors.clear();
        let why = update_ended(&u).unwrap_err();
        assert!(why.contains("u-1 was cancelled"), "{why}");
    }
}
