//! `drill-nodes`: prove the target region's EKS managed node group can reach
//! its active size. A shadow drill raises the standby node group to the
//! plan's active size (`UpdateNodegroupConfig`), waits until the update
//! succeeded and the node group is `ACTIVE` at that size, and its cleanup
//! returns it exactly to what it was (min, desired, max). Production's node
//! group, in the home region, is never touched.
//!
//! # Where the restore point lives
//!
//! `drill-scale` keeps an Auto Scaling group's restore point in a tag on the
//! group. EKS tags node groups too, but moto (the world's EKS) tags clusters
//! only, so this kind could not be shown against the emulators with tags.
//! The restore point lives in the drill's journal instead: the step reads
//! the node group, then journals [`Temp::NodeCapacity`] (with the size it
//! read) through [`Cx::journal_temp`], and only then sends its update. A
//! crash between the record and the update leaves a restore point equal to
//! the size (its cleanup sends nothing); a crash after the update leaves
//! the size to return to. The drill's cleanup, `drctl runs resume` after a
//! crash, and `drctl drill sweep` on the same state (another machine's, on
//! a shared state) return the node group to it. Without the drill's journal
//! (local state on a lost machine) nothing says what the node group was:
//! a sweep does not find it, and the operator sets it by hand to the plan's
//! standby size (docs/drills.md).
//!
//! # Another drill's raise is left alone
//!
//! Nothing on the node group says a drill raised it, so the journals say:
//! when the node group does not read at the plan's standby size, the step
//! (and its preflight) reads the state's journals for a drill whose
//! restore point of this node group no cleanup has returned yet
//! ([`capacity::other_drill`], the same for every capacity kind), and
//! refuses, naming it. Two drills of one plan never
//! overlap (the plan's lock); this finds an earlier drill's leftovers. A
//! node group at its standby size is not looked up: if an earlier drill
//! journaled it but never changed it, there is nothing to protect.
//!
//! Read, decide, act: [`bring_to`](super::scale_nodes) (shared with the
//! failover's `scale-nodes` and with this kind's cleanup) reads, decides
//! with the pure `scale_nodes::decide`, sends one update and follows it
//! through `DescribeUpdate`.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capacity::raised_bounds;
use super::capacity::{self, CapacityOwner, Driver, LeftRaised, OtherDrillError};
use super::scale_nodes::{NodesNext, bring_to, decide, in_flight};
use super::{Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::cloud::{Capacity, CloudError, Clouds, NodeGroup};
use crate::journal::event::{Event, Record};
use crate::journal::{CleanupResult, JournalError, Temp};
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Raise one node group's standby in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillNodes {
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
    /// The plan's standby size: a node group at another size is looked up
    /// in the journals (another drill's raise?) before it is raised.
    pub standby: Capacity,
}

/// Part of the drill's recovery.
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    // The same calls and waits as a failover's node group scaling.
    time: super::scale_nodes::TRAITS.time,
};

/// A shadow drill raises every node group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    let steps: Vec<DrillNodes> = (b.plan.spec.node_group.iter())
        .filter_map(|g| {
            let (cluster, group) = g.in_region(b.target)?;
            Some(DrillNodes {
                resource: g.id.clone(),
                cluster: cluster.to_string(),
                group: group.to_string(),
                region: b.target.to_string(),
                capacity: g.active.into(),
                standby: g.standby.into(),
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "raise node group {}/{} in {} to {} nodes (min/desired/max), wait until ACTIVE; restored at cleanup",
            s.cluster, s.group, s.region, s.capacity
        );
        b.add(
            StepKind::DrillNodes(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::NodeGroup),
            vec![s.resource],
            description,
        );
    }
}

/// What a drill's node group step publishes: the node group raised, from what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillNodesOutput {
    /// EKS cluster.
    pub cluster: String,
    /// Node group.
    pub group: String,
    /// Region.
    pub region: String,
    /// The size to restore after the drill (journaled before the update).
    pub before: Capacity,
    /// The size raised to.
    pub raised_to: Capacity,
    /// EKS's status of the node group after.
    pub status: String,
    /// The update sent, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
}

impl StepOutput for DrillNodesOutput {
    const KIND: KindName = KindName::DrillNodes;
}

/// The restore point of node group `cluster/group` in `region` that
/// `records` (one run's journal) name.
pub fn restore_point(
    records: &[Record],
    region: &str,
    cluster: &str,
    group: &str,
) -> Option<Capacity> {
    records.iter().find_map(|r| match &r.event {
        Event::DrillResource {
            resource:
                Temp::NodeCapacity {
                    region: r,
                    cluster: c,
                    group: g,
                    restore,
                },
            ..
        } if (r.as_str(), c.as_str(), g.as_str()) == (region, cluster, group) => Some(*restore),
        _ => None,
    })
}

/// What a drill does with the node group it read (pure): `ours` is the
/// restore point this run journaled already, `others` another drill's
/// raise still on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaiseNext {
    /// Journal `read`'s size as the restore point, then raise.
    Journal(Capacity),
    /// This run journaled its restore point already (a step run again):
    /// raise from it, never from the raised size.
    Resume(Capacity),
    /// It cannot be drilled now (why).
    Refuse(String),
}

/// Decides what the drill does with `read` (pure). `ours`: this run's
/// journaled restore point; `other`: a drill whose raise is still on the
/// node group (from [`capacity::other_drill`]).
pub fn decide_raise(
    read: &NodeGroup,
    active: Capacity,
    ours: Option<Capacity>,
    other: Option<&LeftRaised>,
) -> RaiseNext {
    if let NodesNext::Refuse(why) = decide(read, raised_bounds(read.capacity, active)) {
        return RaiseNext::Refuse(why);
    }
    if let Some(before) = ours {
        return RaiseNext::Resume(before);
    }
    if let Some(o) = other {
        let what = format!("node group {}/{}", read.cluster, read.name);
        return RaiseNext::Refuse(capacity::refused(&what, &read.region, o));
    }
    RaiseNext::Journal(read.capacity)
}

impl DrillNodes {
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

    fn temp(&self, restore: Capacity) -> Temp {
        Temp::NodeCapacity {
            region: self.region.clone(),
            cluster: self.cluster.clone(),
            group: self.group.clone(),
            restore,
        }
    }

    /// Another drill's raise still on the node group (the capacity
    /// role's one lookup, [`capacity::other_drill`]).
    async fn other_drill(&self, cx: &Cx<'_>) -> Result<Option<LeftRaised>, OtherDrillError> {
        let at = (cx.plan, self.resource.as_str());
        capacity::other_drill(cx.clouds, cx.journal.as_ref(), at, &self.region, cx.run_id).await
    }

    /// This run's journaled restore point of the node group (a step run
    /// again in the same run).
    async fn ours(&self, cx: &Cx<'_>) -> Result<Option<Capacity>, JournalError> {
        let records = capacity::records_of(cx.journal.as_ref(), cx.run_id).await?;
        let (r, c, g) = (&self.region, &self.cluster, &self.group);
        Ok(records.and_then(|records| restore_point(&records, r, c, g)))
    }

    fn journal_failure(&self, e: &dyn std::fmt::Display) -> StepFailure {
        StepFailure::state(
            format!(
                "the journals cannot be read to tell whether another drill raised {} in {}: {e}",
                self.what(),
                self.region
            ),
            "nothing was changed; check the state (`drctl runs list`), then drill again",
            &self.group,
            &self.region,
        )
    }
}

#[async_trait]
impl Action for DrillNodes {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads the node group itself.
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = self.what();
        let read = cx
            .clouds
            .node_groups
            .describe_node_group(&self.region, &self.cluster, &self.group)
            .await;
        let g = match read {
            Ok(None) => return vec![Finding::missing(&what, &self.region)],
            Ok(Some(g)) => g,
            Err(e) => return vec![Finding::unreadable(&what, &self.region, &e)],
        };
        let other = match self.other_drill(cx).await {
            Ok(o) => o,
            Err(e) => {
                return vec![Finding::blocks(
                    &what,
                    &self.region,
                    format!("size {}, {}", g.capacity, g.status),
                    format!("whether another drill raised it cannot be read: {e}"),
                )];
            }
        };
        match decide_raise(&g, self.capacity, None, other.as_ref()) {
            RaiseNext::Refuse(why) => vec![Finding::blocks(
                &what,
                &self.region,
                format!("size {}, {}", g.capacity, g.status),
                format!(
                    "{why}{}",
                    other.map_or(String::new(), |o| format!(
                        ": `drctl runs resume {}` (or `drctl drill sweep`) returns it",
                        o.run
                    ))
                ),
            )],
            _ => vec![Finding::ok(
                &what,
                &self.region,
                format!("size {}, {}", g.capacity, g.status),
            )],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let g = cx
            .clouds
            .node_groups
            .describe_node_group(&self.region, &self.cluster, &self.group)
            .await?;
        let (current, to) = match &g {
            Some(g) => (
                format!("{} nodes (min/desired/max), {}", g.capacity, g.status),
                raised_bounds(g.capacity, self.capacity),
            ),
            None => ("missing".into(), self.capacity),
        };
        Ok(vec![Planned {
            call: "eks:UpdateNodegroupConfig".into(),
            resource: format!("{}/{}", self.cluster, self.group),
            region: self.region.clone(),
            current: current.clone(),
            desired: format!(
                "{to} nodes, ACTIVE (the size before, journaled first); back to {} at cleanup",
                g.as_ref().map_or("it".into(), |g| g.capacity.to_string())
            ),
            change: g.is_none_or(|g| decide(&g, to) != NodesNext::Done),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (r, c, n) = (
            self.region.as_str(),
            self.cluster.as_str(),
            self.group.as_str(),
        );
        let by = Driver::Step(cx);
        let read = || async {
            cx.clouds
                .node_groups
                .describe_node_group(r, c, n)
                .await?
                .ok_or_else(|| self.missing())
        };
        let mut g = read().await?;
        let ours = self.ours(cx).await.map_err(|e| self.journal_failure(&e))?;
        if ours.is_none() && in_flight(&g.status) {
            // The size to return to is the one an update in flight (not
            // this drill's: it journaled none) leaves.
            g = by
                .wait(
                    &format!("node group {c}/{n} ({r}) to end its update"),
                    || async { Ok(Some(read().await?).filter(|g| !in_flight(&g.status))) },
                )
                .await?;
        }
        let other = match ours {
            Some(_) => None,
            None => self
                .other_drill(cx)
                .await
                .map_err(|e| self.journal_failure(&e))?,
        };
        let before = match decide_raise(&g, self.capacity, ours, other.as_ref()) {
            RaiseNext::Refuse(why) => {
                return Err(StepFailure::state(
                    why,
                    match &other {
                        Some(o) => capacity::hint(o),
                        None => "fix the node group in EKS, then drill again".to_string(),
                    },
                    n,
                    r,
                ));
            }
            RaiseNext::Resume(before) => before,
            RaiseNext::Journal(before) => {
                // The restore point is on disk before anything changes.
                cx.journal_temp(self.temp(before), &self.what(), r).await?;
                before
            }
        };
        let to = raised_bounds(before, self.capacity);
        let (_, after, update) = bring_to(&by, (r, c, n), to, || self.missing()).await?;
        DrillNodesOutput {
            cluster: c.to_string(),
            group: n.to_string(),
            region: r.to_string(),
            before,
            raised_to: to,
            status: after.status,
            update,
        }
        .to_output()
    }
}

/// Returns node group `cluster/group` in `region`, which a drill raised,
/// to its journaled size `restore` and reads it back to prove it. `owner`
/// says whether the drill may lower it: a failover's node group keeps its
/// size ([`CleanupResult::Kept`]); an owner in doubt leaves it
/// ([`CleanupResult::Failed`], saying why, the restore point still in the
/// drill's journal).
pub async fn restore(
    clouds: &Clouds,
    (region, cluster, group): (&str, &str, &str),
    restore: Capacity,
    owner: &CapacityOwner,
    poll: (Duration, Duration),
    deadline: std::time::Instant,
) -> Result<(CleanupResult, String), CloudError> {
    let Some(g) = clouds
        .node_groups
        .describe_node_group(region, cluster, group)
        .await?
    else {
        return Ok((
            CleanupResult::Absent,
            format!("node group {cluster}/{group} does not exist in {region}"),
        ));
    };
    if let Some(left) = left_as_is(owner, &g, restore) {
        return Ok(left);
    }
    let by = Driver::Cleanup {
        clouds,
        poll,
        deadline,
    };
    let missing = || {
        StepFailure::state(
            format!("node group {cluster}/{group} vanished during the restore"),
            "nothing to restore",
            group,
            region,
        )
    };
    let update = match bring_to(&by, (region, cluster, group), restore, missing).await {
        Ok((_, _, update)) => update,
        Err(StepFailure::Cloud(e)) => return Err(e),
        Err(e) => {
            return Ok((
                CleanupResult::Failed,
                format!("not back at {restore}: {}", e.summary()),
            ));
        }
    };
    let after = clouds
        .node_groups
        .describe_node_group(region, cluster, group)
        .await?;
    Ok(read_back(after, (cluster, group), restore, update))
}

/// What the cleanup says of node group `g` when it leaves it as it is
/// (pure): a failover's keeps its size, one whose owner is in doubt is not
/// lowered, one already at `restore` (nothing in flight) is restored;
/// `None` when the drill is to bring it back to `restore`.
fn left_as_is(
    owner: &CapacityOwner,
    g: &NodeGroup,
    restore: Capacity,
) -> Option<(CleanupResult, String)> {
    match owner {
        CapacityOwner::Drill(_) => (g.capacity == restore && !in_flight(&g.status)).then(|| {
            (
                CleanupResult::Restored,
                format!("at {restore} (read back), {}", g.status),
            )
        }),
        CapacityOwner::Failover(why) => Some((
            CleanupResult::Kept,
            format!("left at {} ({why})", g.capacity),
        )),
        CapacityOwner::Unknown(why) => Some((
            CleanupResult::Failed,
            format!(
                "not lowered: {why}; a failover may own the node group, so its size {} stays until that is known (the drill's journal keeps {restore} to return to)",
                g.capacity
            ),
        )),
    }
}

/// The restore's result from the node group read back after it (pure):
/// restored only when it reads `restore`, naming the update sent (if any).
fn read_back(
    after: Option<NodeGroup>,
    (cluster, group): (&str, &str),
    restore: Capacity,
    update: Option<String>,
) -> (CleanupResult, String) {
    match after {
        Some(a) if a.capacity == restore => (
            CleanupResult::Restored,
            format!(
                "back to {restore} (read back), {}{}",
                a.status,
                update.map_or(String::new(), |u| format!(", update {u}"))
            ),
        ),
        Some(a) => (
            CleanupResult::Failed,
            format!("reads {} (want {restore}) after the restore", a.capacity),
        ),
        None => (
            CleanupResult::Failed,
            format!("node group {cluster}/{group} vanished during the restore"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::{NodeGroupUpdate, NodeGroups, UpdateStatus};
    use crate::journal::{Journal, JournalStore, MemoryStore, RunKind, StepName};

    const RUN: &str = "20261125T040000Z-orders-nodes-d1";
    const REGION: &str = "us-east-1";
    const CLUSTER: &str = "orders-eks-use1";
    const GROUP: &str = "orders-nodes-use1";
    const STANDBY: Capacity = Capacity {
        min: 0,
        desired: 0,
        max: 6,
    };
    const ACTIVE: Capacity = Capacity {
        min: 2,
        desired: 3,
        max: 6,
    };

    /// The reference `orders` plan (its node group beside an Aurora global
    /// database and a record).
    fn orders() -> crate::plan::Plan {
        crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "orders")
            .expect("the reference orders plan")
    }

    /// The drill's step of the reference plan to us-east-1.
    fn step() -> (
        crate::plan::Plan,
        Vec<crate::steps::graph::Step>,
        DrillNodes,
    ) {
        let plan = orders();
        let mode = RunMode::Drill {
            depth: DrillDepth::Shadow,
        };
        let g = crate::steps::graph::compile_mode(&plan, REGION, &mode).unwrap();
        let s = g
            .steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::DrillNodes(d) => Some(d.clone()),
                _ => None,
            })
            .expect("a drill-nodes step");
        (plan, g.steps, s)
    }

    /// The drill's journal: what the step journals goes in it, as the
    /// executor appends it; `writes_then` keeps how many cloud writes the
    /// fake had seen when each record was written.
    struct Recording {
        journal: tokio::sync::Mutex<Journal>,
        fake: FakeCloud,
        writes_then: std::sync::Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl crate::steps::TempJournal for Recording {
        async fn journal(&self, temp: Temp) -> Result<(), String> {
            self.writes_then
                .lock()
                .unwrap()
                .push(self.fake.state().writes.len());
            let step = StepName::parse("orders/drill-nodes:orders-nodes").unwrap();
            (self.journal.lock().await)
                .append(Event::DrillResource {
                    step,
                    resource: temp,
                })
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }

    /// A drill run's journal store, with the run's journal begun.
    async fn drill_journal(store: &Arc<MemoryStore>, fake: &FakeCloud) -> Arc<Recording> {
        let j = Journal::create(store.clone(), RUN).await.unwrap();
        Arc::new(Recording {
            journal: tokio::sync::Mutex::new(j),
            fake: fake.clone(),
            writes_then: Default::default(),
        })
    }

    /// Runs the drill's step against `clouds`, journaling into `store`
    /// through `rec`.
    async fn run_step(
        clouds: &Clouds,
        store: &Arc<MemoryStore>,
        rec: &Arc<Recording>,
    ) -> Result<DrillNodesOutput, StepFailure> {
        let (plan, graph, s) = step();
        let outputs = BTreeMap::new();
        let cx = Cx {
            clouds,
            plan: &plan,
            target: REGION,
            run_id: RUN,
            outputs: &outputs,
            deadline: Instant::now() + Duration::from_secs(3600),
            poll: (Duration::from_secs(5), Duration::from_secs(30)),
            journal: store.clone(),
            lag_window: Duration::from_secs(900),
            waiting: None,
            side: None,
            graph: &graph,
            rpo_readings: None,
            attempt: 1,
            drill_expires: None,
            render_report: None,
            fence: None,
            zone_batches: None,
            temps: Some(rec.clone()),
            control_read_timeout: crate::steps::dns_setup::SETUP_TIMEOUT,
        };
        let out = s.run(&cx).await?;
        Ok(serde_json::from_value(out).unwrap())
    }

    fn seeded(fake: &FakeCloud, size: Capacity) {
        fake.add_node_group(REGION, CLUSTER, GROUP, size);
        // Production's node group, which a drill never touches.
        fake.add_node_group("us-west-2", "orders-eks-usw2", "orders-nodes-usw2", ACTIVE);
    }

    fn size(fake: &FakeCloud) -> (Capacity, String) {
        let s = fake.state();
        let g = &s.node_groups[&(REGION.into(), CLUSTER.into(), GROUP.into())];
        (g.capacity, g.status.clone())
    }

    fn production(fake: &FakeCloud) -> Capacity {
        let key = (
            "us-west-2".into(),
            "orders-eks-usw2".into(),
            "orders-nodes-usw2".into(),
        );
        fake.state().node_groups[&key].capacity
    }

    fn updates(fake: &FakeCloud) -> usize {
        (fake.state().writes.iter())
            .filter(|w| w.starts_with("UpdateNodegroupConfig"))
            .count()
    }

    async fn journaled(store: &MemoryStore) -> Vec<Temp> {
        let records = crate::journal::read(store, RUN).await.unwrap();
        crate::runs::drill::journaled(&records)
    }

    async fn cleanup(
        clouds: &Clouds,
        store: &MemoryStore,
        owner: &CapacityOwner,
    ) -> (CleanupResult, String) {
        let temps = journaled(store).await;
        let [
            Temp::NodeCapacity {
                region,
                cluster,
                group,
                restore: back,
            },
        ] = temps.as_slice()
        else {
            panic!("one restore point: {temps:?}");
        };
        restore(
            clouds,
            (region, cluster, group),
            *back,
            owner,
            (Duration::from_secs(5), Duration::from_secs(30)),
            Instant::now() + Duration::from_secs(3600),
        )
        .await
        .unwrap()
    }

    fn drill_owns() -> CapacityOwner {
        CapacityOwner::Drill("the test's drill".into())
    }

    /// Where updates take time (the timed fake: `InProgress`, `UPDATING`),
    /// the standby is raised through `DescribeUpdate` to `ACTIVE` at the
    /// active size, with its size before journaled first; the cleanup
    /// returns it to exactly that size (not the plan's standby size), and
    /// production's node group never changes.
    #[tokio::test(start_paused = true)]
    async fn a_drill_raises_the_standby_node_group_and_cleanup_returns_its_exact_size() {
        let fake = FakeCloud::timed(crate::cloud::model::Model::aws().unwrap(), 7);
        let odd = Capacity {
            min: 1,
            desired: 1,
            max: 4,
        };
        seeded(&fake, odd);
        let (clouds, log) = crate::cloud::metered::Metered::wrap(fake.clouds());
        let store = Arc::new(MemoryStore::new());
        let rec = drill_journal(&store, &fake).await;

        let out = run_step(&clouds, &store, &rec)
            .await
            .expect("the drill raises it");
        let to = raised_bounds(odd, ACTIVE);
        assert_eq!(
            to,
            Capacity {
                min: 2,
                desired: 3,
                max: 6
            }
        );
        assert_eq!(
            (out.before, out.raised_to, out.status.as_str()),
            (odd, to, "ACTIVE")
        );
        assert!(out.update.is_some());
        assert_eq!(size(&fake), (to, "ACTIVE".into()));
        let labels: Vec<&str> = log.calls().iter().map(|c| c.label).collect();
        assert!(labels.contains(&"eks:DescribeUpdate"), "{labels:?}");
        // The restore point was on disk before the one update was sent.
        assert_eq!(*rec.writes_then.lock().unwrap(), vec![0]);
        assert_eq!(updates(&fake), 1);
        assert_eq!(
            journaled(&store).await,
            vec![Temp::NodeCapacity {
                region: REGION.into(),
                cluster: CLUSTER.into(),
                group: GROUP.into(),
                restore: odd,
            }]
        );

        let (result, detail) = cleanup(&clouds, &store, &drill_owns()).await;
        assert_eq!(result, CleanupResult::Restored, "{detail}");
        assert_eq!(size(&fake), (odd, "ACTIVE".into()), "{detail}");
        assert_eq!(production(&fake), ACTIVE);
        // A second cleanup (a resume after the first) sends nothing.
        let (again, _) = cleanup(&clouds, &store, &drill_owns()).await;
        assert_eq!((again, updates(&fake)), (CleanupResult::Restored, 2));
    }

    /// The step run again in the same run (its restore point journaled,
    /// the node group raised) raises from the journaled size, never from
    /// the raised one: nothing more is journaled or sent.
    #[tokio::test(start_paused = true)]
    async fn a_rerun_of_the_step_is_idempotent() {
        let fake = FakeCloud::new();
        seeded(&fake, STANDBY);
        let clouds = fake.clouds();
        let store = Arc::new(MemoryStore::new());
        let rec = drill_journal(&store, &fake).await;
        let first = run_step(&clouds, &store, &rec).await.unwrap();
        let again = run_step(&clouds, &store, &rec).await.unwrap();
        assert_eq!((first.before, again.before), (STANDBY, STANDBY));
        assert_eq!(again.raised_to, ACTIVE);
        assert!(again.update.is_none(), "{again:?}");
        assert_eq!(updates(&fake), 1);
        assert_eq!(rec.writes_then.lock().unwrap().len(), 1);
        assert_eq!(journaled(&store).await.len(), 1);
    }

    /// EKS that takes `UpdateNodegroupConfig` and never answers: the
    /// process dies there (`applied`: after EKS applied it, else before
    /// it reached EKS).
    struct DiesInUpdate {
        inner: Arc<dyn NodeGroups>,
        applied: bool,
    }

    #[async_trait]
    impl NodeGroups for DiesInUpdate {
        async fn describe_node_group(
            &self,
            region: &str,
            cluster: &str,
            name: &str,
        ) -> Result<Option<NodeGroup>, CloudError> {
            self.inner.describe_node_group(region, cluster, name).await
        }
        async fn scale_node_group(
            &self,
            region: &str,
            cluster: &str,
            name: &str,
            capacity: Capacity,
        ) -> Result<NodeGroupUpdate, CloudError> {
            if self.applied {
                self.inner
                    .scale_node_group(region, cluster, name, capacity)
                    .await?;
            }
            std::future::pending().await
        }
        async fn describe_update(
            &self,
            region: &str,
            cluster: &str,
            name: &str,
            id: &str,
        ) -> Result<NodeGroupUpdate, CloudError> {
            self.inner.describe_update(region, cluster, name, id).await
        }
    }

    /// A crash after the restore point is journaled and before the update
    /// (and one after EKS applied it, before its answer): the journal holds
    /// the size before, and the cleanup (a resume's) returns the node group
    /// to exactly it, sending nothing when nothing changed.
    #[tokio::test(start_paused = true)]
    async fn a_crash_after_the_restore_point_is_journaled_is_restored_exactly() {
        for applied in [false, true] {
            let fake = FakeCloud::new();
            seeded(&fake, STANDBY);
            let mut clouds = fake.clouds();
            clouds.node_groups = Arc::new(DiesInUpdate {
                inner: clouds.node_groups.clone(),
                applied,
            });
            let store = Arc::new(MemoryStore::new());
            let rec = drill_journal(&store, &fake).await;
            let crashed =
                tokio::time::timeout(Duration::from_secs(60), run_step(&clouds, &store, &rec))
                    .await;
            assert!(crashed.is_err(), "the step died in its update");
            let want = if applied { ACTIVE } else { STANDBY };
            assert_eq!(size(&fake).0, want, "applied: {applied}");
            assert_eq!(updates(&fake), usize::from(applied));

            let (result, detail) = cleanup(&fake.clouds(), &store, &drill_owns()).await;
            assert_eq!(result, CleanupResult::Restored, "{detail}");
            assert_eq!(
                size(&fake),
                (STANDBY, "ACTIVE".into()),
                "applied: {applied}"
            );
            // Nothing is sent to return a node group that never changed.
            assert_eq!(
                updates(&fake),
                2 * usize::from(applied),
                "applied: {applied}"
            );
        }
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
                id: "upd-9".into(),
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
                errors: vec!["AsgInstanceLaunchFailures: no capacity in us-east-1a (i-0)".into()],
            })
        }
    }

    /// An update that fails fails the step with its id and its errors; the
    /// restore point was journaled first, so the cleanup still runs.
    #[tokio::test(start_paused = true)]
    async fn a_failed_update_fails_the_drill_naming_its_id_and_errors() {
        let fake = FakeCloud::new();
        seeded(&fake, STANDBY);
        let mut clouds = fake.clouds();
        clouds.node_groups = Arc::new(Failing(clouds.node_groups.clone()));
        let store = Arc::new(MemoryStore::new());
        let rec = drill_journal(&store, &fake).await;
        let e = run_step(&clouds, &store, &rec).await.expect_err("failed");
        let text = e.to_string();
        assert!(
            matches!(e, StepFailure::State { .. })
                && text.contains("upd-9")
                && text.contains("no capacity in us-east-1a"),
            "{text}"
        );
        assert_eq!(journaled(&store).await.len(), 1);
        let (result, _) = cleanup(&fake.clouds(), &store, &drill_owns()).await;
        assert_eq!(result, CleanupResult::Restored);
        assert_eq!(size(&fake).0, STANDBY);
    }

    use crate::steps::capacity::testing::record;

    fn started(run: &str, kind: RunKind) -> Record {
        crate::steps::capacity::testing::started(run, kind, REGION)
    }

    fn raised_by(restore: Capacity) -> Record {
        record(
            "2026-11-25T03:00:01Z",
            Event::DrillResource {
                step: StepName::parse("orders/drill-nodes:orders-nodes").unwrap(),
                resource: Temp::NodeCapacity {
                    region: REGION.into(),
                    cluster: CLUSTER.into(),
                    group: GROUP.into(),
                    restore,
                },
            },
        )
    }

    fn cleaned(restore: Capacity, result: CleanupResult) -> Record {
        record(
            "2026-11-25T03:10:00Z",
            Event::Cleanup {
                resource: Temp::NodeCapacity {
                    region: REGION.into(),
                    cluster: CLUSTER.into(),
                    group: GROUP.into(),
                    restore,
                },
                result,
                detail: String::new(),
            },
        )
    }

    /// A node group another drill raised (its journal names it, no
    /// cleanup returned it) is left alone: preflight blocks naming that
    /// drill, the step refuses before it journals or sends anything. Once
    /// that drill's cleanup returned it, the drill goes ahead.
    #[tokio::test(start_paused = true)]
    async fn a_node_group_another_drill_raised_is_left_alone() {
        let fake = FakeCloud::new();
        seeded(&fake, ACTIVE);
        let clouds = fake.clouds();
        let store = Arc::new(MemoryStore::new());
        let dead = "20261125T030000Z-orders-nodes-dead";
        let write = |records: Vec<Record>| {
            let store = store.clone();
            async move {
                store.create(dead).await.ok();
                let seq = store.read(dead).await.unwrap_or_default().lines().count() as u64;
                for (i, r) in records.into_iter().enumerate() {
                    let line = serde_json::to_string(&r).unwrap();
                    store.append(dead, seq + i as u64, &line).await.unwrap();
                }
            }
        };
        write(vec![started(dead, RunKind::Drill), raised_by(STANDBY)]).await;
        let rec = drill_journal(&store, &fake).await;

        let (plan, graph, s) = step();
        let outputs = BTreeMap::new();
        let cx = Cx {
            clouds: &clouds,
            plan: &plan,
            target: REGION,
            run_id: RUN,
            outputs: &outputs,
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_secs(5), Duration::from_secs(30)),
            journal: store.clone(),
            lag_window: Duration::from_secs(900),
            waiting: None,
            side: None,
            graph: &graph,
            rpo_readings: None,
            attempt: 1,
            drill_expires: None,
            render_report: None,
            fence: None,
            zone_batches: None,
            temps: Some(rec.clone()),
            control_read_timeout: crate::steps::dns_setup::SETUP_TIMEOUT,
        };
        let found = s.preflight(&cx).await;
        let problem = found[0].problem.clone().unwrap_or_default();
        assert!(
            problem.contains(dead) && problem.contains("runs resume"),
            "{found:?}"
        );
        let e = run_step(&clouds, &store, &rec).await.expect_err("refused");
        assert!(e.to_string().contains(dead), "{e}");
        assert!(rec.writes_then.lock().unwrap().is_empty());
        assert_eq!((size(&fake).0, updates(&fake)), (ACTIVE, 0));

        // That drill's resume returned it (and something raised it again
        // since): not that drill's any more.
        write(vec![cleaned(STANDBY, CleanupResult::Restored)]).await;
        assert!(s.preflight(&cx).await[0].problem.is_none());
        let out = run_step(&clouds, &store, &rec).await.expect("drilled");
        assert_eq!(out.before, ACTIVE);
    }

    /// A failover's node group keeps its size (nothing sent); an owner in
    /// doubt leaves it and says the restore point is in the journal; a node
    /// group gone is absent.
    #[tokio::test(start_paused = true)]
    async fn cleanup_never_lowers_a_node_group_a_failover_may_own() {
        let fake = FakeCloud::new();
        seeded(&fake, STANDBY);
        let clouds = fake.clouds();
        let store = Arc::new(MemoryStore::new());
        let rec = drill_journal(&store, &fake).await;
        run_step(&clouds, &store, &rec).await.unwrap();
        let failover = CapacityOwner::Failover("failover run f1 took the plan".into());
        let (kept, detail) = cleanup(&clouds, &store, &failover).await;
        assert_eq!(kept, CleanupResult::Kept, "{detail}");
        let doubt = CapacityOwner::Unknown("the lock cannot be read".into());
        let (failed, detail) = cleanup(&clouds, &store, &doubt).await;
        assert_eq!(failed, CleanupResult::Failed);
        assert!(
            detail.contains("0/0/6") && detail.contains("journal"),
            "{detail}"
        );
        assert_eq!((size(&fake).0, updates(&fake)), (ACTIVE, 1));
        fake.state().node_groups.clear();
        assert_eq!(
            cleanup(&clouds, &store, &drill_owns()).await.0,
            CleanupResult::Absent
        );
    }

    #[test]
    fn a_node_group_being_deleted_is_refused_before_anything_is_journaled() {
        let read = |status: &str, c: Capacity| NodeGroup {
            cluster: CLUSTER.into(),
            name: GROUP.into(),
            region: REGION.into(),
            capacity: c,
            status: status.into(),
            tags: Default::default(),
        };
        assert_eq!(
            decide_raise(&read("ACTIVE", STANDBY), ACTIVE, None, None),
            RaiseNext::Journal(STANDBY)
        );
        assert_eq!(
            decide_raise(&read("ACTIVE", ACTIVE), ACTIVE, Some(STANDBY), None),
            RaiseNext::Resume(STANDBY)
        );
        let RaiseNext::Refuse(why) = decide_raise(&read("DELETING", STANDBY), ACTIVE, None, None)
        else {
            panic!("a node group being deleted cannot be drilled");
        };
        assert!(why.contains("DELETING"), "{why}");
    }
}
