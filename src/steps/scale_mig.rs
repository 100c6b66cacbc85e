//! `scale-mig`: raise the target region's regional managed instance group
//! to its active size, and wait until that many instances RUN.
//!
//! Read, decide, act: the group is read (with its autoscaler, when one is
//! attached) and [`decide`] (pure) says what to write: nothing (the group
//! is at the size or above it: a failover never shrinks a group), a
//! `resize`, or, with an autoscaler, a `patch` of its minimum (a resize
//! would be undone by the autoscaler); or it refuses (an autoscaler whose
//! maximum is below the size).
//!
//! Compute answers a write with a regional operation that is `DONE` when
//! the change is *scheduled*, not when the instances run. So the step
//! polls the operation until it is `DONE` (an error fails the step naming
//! it), then reads the group and its instances with the run's pace
//! ([`wait_for`]) until the group is stable with at least the size's
//! instances `RUNNING` and nothing under way. A group that does not get
//! there in the run's time fails the step naming its instances' errors
//! (`lastAttempt.errors`: a zone out of resources, a quota).
//!
//! Idempotent and resumable: a resumed step reads the group first (a
//! target size already raised is not raised again, the step waits on its
//! instances); the write carries a `requestId` derived from the run, the
//! group and the size, so Compute answers a write sent again after a lost
//! answer with the operation it already made. Each write is fenced.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::{MigAutoscaler, MigGroup, MigInstance, MigOperation};
use crate::steps::graph::{Builder, Phase};

/// Raise one `[[instance_group]]`'s group in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleMig {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The group in the target region.
    pub group: String,
    /// Target region.
    pub region: String,
    /// The active size: instances to run.
    pub size: u32,
}

/// Part of the recovery; reversible (the size can be set back).
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    time: Cost {
        calls: &[
            "compute:regionInstanceGroupManagers.get",
            "compute:regionInstanceGroupManagers.resize",
            "compute:regionOperations.get",
        ],
        waits: &["compute:regionInstanceGroupManagers.resize"],
        polls: Some("compute:regionInstanceGroupManagers.listManagedInstances"),
    },
};

/// A failover raises every instance group of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<ScaleMig> = (b.plan.spec.instance_group.iter())
        .filter_map(|g| {
            Some(ScaleMig {
                resource: g.id.clone(),
                project: g.project.clone(),
                group: g.regions.get(g.sites.gcp(b.target))?.clone(),
                region: g.sites.gcp(b.target).to_string(),
                size: g.active.size,
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "raise managed instance group {} in {} to {} instances (its autoscaler's minimum when it has one), wait until they run",
            s.group, s.region, s.size
        );
        b.add(
            StepKind::ScaleMig(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::InstanceGroup),
            vec![s.resource],
            description,
        );
    }
}

/// What the read says to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigNext {
    /// Nothing: the group is (or is being) at the size or above; wait for
    /// its instances.
    Wait,
    /// `resize` the group to the size.
    Resize,
    /// Raise the autoscaler's minimum to the size.
    SetMin {
        /// The autoscaler.
        autoscaler: String,
    },
    /// The group cannot reach the size.
    Refuse(String),
}

/// Decides what a scale of `group` to `want` writes (pure).
pub fn decide(group: &MigGroup, autoscaler: Option<&MigAutoscaler>, want: u32) -> MigNext {
    match autoscaler {
        Some(a) if a.max < want => MigNext::Refuse(format!(
            "autoscaler {} of group {} in {} allows at most {} instances, below the active size {want}",
            a.name, group.name, group.region, a.max
        )),
        Some(a) if a.min < want => MigNext::SetMin {
            autoscaler: a.name.clone(),
        },
        Some(_) => MigNext::Wait,
        None if group.target_size < want => MigNext::Resize,
        None => MigNext::Wait,
    }
}

/// Whether the group serves at `want`: stable, its target size at least
/// `want`, and at least `want` instances running with nothing under way.
pub fn serving(group: &MigGroup, instances: &[MigInstance], want: u32) -> bool {
    let running = instances.iter().filter(|i| i.running()).count() as u32;
    group.stable && group.target_size >= want && running >= want
}

/// The instances' errors, for a group that did not reach its size.
pub fn instance_errors(instances: &[MigInstance]) -> Vec<String> {
    (instances.iter())
        .filter(|i| !i.errors.is_empty())
        .map(|i| format!("{}: {}", i.name, i.errors.join("; ")))
        .collect()
}

/// The `requestId` of a write: a UUID (Compute takes only those) derived
/// from the run, the group and what is written, so the same write of the
/// same run is recognised by Compute when sent again.
pub fn request_id(run_id: &str, what: &str) -> String {
    let h = Sha256::digest(format!("drctl/{run_id}/{what}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50; // version 5 (name-based)
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// What a scale-mig step publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaleMigOutput {
    /// The project.
    pub project: String,
    /// The group.
    pub group: String,
    /// Region.
    pub region: String,
    /// Target size before.
    pub before: u32,
    /// Target size after.
    pub after: u32,
    /// Instances running at the end.
    pub running: u32,
    /// The autoscaler whose minimum was set, when the group has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<String>,
    /// Its minimum before, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler_min_before: Option<u32>,
    /// The Compute operation of the write, when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Whether the step wrote anything.
    pub changed: bool,
}

impl StepOutput for ScaleMigOutput {
    const KIND: KindName = KindName::ScaleMig;
}

impl ScaleMig {
    fn what(&self) -> String {
        format!("instance group {}", self.group)
    }

    fn state(&self, message: String, hint: &str) -> StepFailure {
        StepFailure::state(message, hint, &self.group, &self.region)
    }

    /// Reads the group and its autoscaler, when it has one.
    pub(crate) async fn read(
        &self,
        cx: &Cx<'_>,
    ) -> Result<(MigGroup, Option<MigAutoscaler>), StepFailure> {
        let ig = &cx.clouds.instance_groups;
        let group = ig
            .describe_mig(&self.region, &self.project, &self.group)
            .await?
            .ok_or_else(|| {
                self.state(
                    format!(
                        "managed instance group {} does not exist in {} (project {})",
                        self.group, self.region, self.project
                    ),
                    "create it (terraform/) or fix the group's name in the plan",
                )
            })?;
        let autoscaler = match &group.autoscaler {
            Some(a) => Some(
                ig.mig_autoscaler(&self.region, &self.project, a)
                    .await?
                    .ok_or_else(|| {
                        self.state(
                            format!(
                                "group {} names autoscaler {a}, which does not exist in {}",
                                self.group, self.region
                            ),
                            "look at the group's autoscaler in the console, then resume",
                        )
                    })?,
            ),
            None => None,
        };
        Ok((group, autoscaler))
    }

    /// Polls operation `op` until it is done; fails naming it on an error.
    async fn until_done(&self, cx: &Cx<'_>, op: MigOperation) -> Result<(), StepFailure> {
        let (p, r) = (self.project.as_str(), self.region.as_str());
        let op = if op.done {
            op
        } else {
            let name = op.name.clone();
            wait_for(
                cx,
                &format!("Compute operation {name} on {} ({r})", self.group),
                || async {
                    let o = cx.clouds.instance_groups.mig_operation(r, p, &name).await?;
                    Ok(o.done.then_some(o))
                },
            )
            .await?
        };
        match &op.error {
            Some(e) => Err(self.state(
                format!("Compute operation {} on {} failed: {e}", op.name, self.group),
                "fix the cause (a quota, the instance template), then resume: the step reads the group first",
            )),
            None => Ok(()),
        }
    }

    /// Waits until the group serves at the size; a group that does not
    /// fails naming its instances' errors.
    async fn until_serving(&self, cx: &Cx<'_>) -> Result<u32, StepFailure> {
        let (p, r, g) = (
            self.project.as_str(),
            self.region.as_str(),
            self.group.as_str(),
        );
        let ig = &cx.clouds.instance_groups;
        let waited = wait_for(
            cx,
            &format!("{} instances of group {g} ({r}) RUNNING", self.size),
            || async {
                let Some(group) = ig.describe_mig(r, p, g).await? else {
                    return Ok(None);
                };
                let instances = ig.mig_instances(r, p, g).await?;
                Ok(serving(&group, &instances, self.size)
                    .then(|| instances.iter().filter(|i| i.running()).count() as u32))
            },
        )
        .await;
        match waited {
            Ok(running) => Ok(running),
            Err(StepFailure::Timeout { what, waited }) => {
                // Name what keeps the instances from running, when Compute
                // says (a read that fails here changes nothing of that).
                let instances = ig.mig_instances(r, p, g).await.unwrap_or_default();
                let errors = instance_errors(&instances);
                if errors.is_empty() {
                    return Err(StepFailure::Timeout { what, waited });
                }
                let running = instances.iter().filter(|i| i.running()).count();
                Err(self.state(
                    format!(
                        "group {g} in {r} has {running} of {} instances running after {}s; its instances' errors: {}",
                        self.size,
                        waited.as_secs(),
                        errors.join(" | ")
                    ),
                    "fix the cause (another zone or machine type in the template, a quota), then resume: the step waits on the group again",
                ))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Action for ScaleMig {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads the group itself (it shows it in detail).
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = self.what();
        match self.read(cx).await {
            Ok((g, a)) => match decide(&g, a.as_ref(), self.size) {
                MigNext::Refuse(why) => vec![Finding::blocks(
                    &what,
                    &self.region,
                    format!("target size {}", g.target_size),
                    why,
                )],
                _ => vec![Finding::ok(
                    &what,
                    &self.region,
                    format!(
                        "target size {}{}",
                        g.target_size,
                        if g.stable { ", stable" } else { ", not stable" }
                    ),
                )],
            },
            Err(StepFailure::Cloud(e)) => vec![Finding::unreadable(&what, &self.region, &e)],
            Err(_) => vec![Finding::missing(&what, &self.region)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let (g, a) = self.read(cx).await?;
        let next = decide(&g, a.as_ref(), self.size);
        let call = match &next {
            MigNext::SetMin { .. } => "compute:regionAutoscalers.patch",
            MigNext::Resize => "compute:regionInstanceGroupManagers.resize",
            MigNext::Wait | MigNext::Refuse(_) => "",
        };
        Ok(vec![Planned {
            call: call.into(),
            resource: self.group.clone(),
            region: self.region.clone(),
            current: format!(
                "target size {}{}",
                g.target_size,
                a.as_ref()
                    .map(|a| format!(", autoscaler {} min {} max {}", a.name, a.min, a.max))
                    .unwrap_or_default()
            ),
            desired: format!("{} instances RUNNING", self.size),
            change: matches!(next, MigNext::SetMin { .. } | MigNext::Resize),
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (before, autoscaler) = self.read(cx).await?;
        let ig = &cx.clouds.instance_groups;
        let (p, r) = (self.project.as_str(), self.region.as_str());
        let mut operation = None;
        match decide(&before, autoscaler.as_ref(), self.size) {
            MigNext::Refuse(why) => {
                return Err(self.state(
                    why,
                    "raise the autoscaler's maximum (or lower the plan's active size), then resume",
                ));
            }
            MigNext::Wait => {
                tracing::info!(
                    group = self.group,
                    region = r,
                    "already at the active size; waiting on its instances"
                );
            }
            MigNext::Resize => {
                cx.fenced(
                    &format!(
                        "compute:regionInstanceGroupManagers.resize of {}",
                        self.group
                    ),
                    r,
                )
                .await?;
                let id = request_id(
                    cx.run_id,
                    &format!("{r}/{}/resize/{}", self.group, self.size),
                );
                let op = ig.resize_mig(r, p, &self.group, self.size, &id).await?;
                operation = Some(op.name.clone());
                self.until_done(cx, op).await?;
            }
            MigNext::SetMin { autoscaler: a } => {
                cx.fenced(&format!("compute:regionAutoscalers.patch of {a}"), r)
                    .await?;
                let id = request_id(cx.run_id, &format!("{r}/{a}/min/{}", self.size));
                let op = ig.set_autoscaler_min(r, p, &a, self.size, &id).await?;
                operation = Some(op.name.clone());
                self.until_done(cx, op).await?;
            }
        }
        let running = self.until_serving(cx).await?;
        let after = ig
            .describe_mig(r, p, &self.group)
            .await?
            .map_or(self.size, |g| g.target_size);
        ScaleMigOutput {
            project: self.project.clone(),
            group: self.group.clone(),
            region: self.region.clone(),
            before: before.target_size,
            after,
            running,
            autoscaler: autoscaler.as_ref().map(|a| a.name.clone()),
            autoscaler_min_before: autoscaler.as_ref().map(|a| a.min),
            changed: operation.is_some(),
            operation,
        }
        .to_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(target: u32, autoscaler: Option<&str>) -> MigGroup {
        MigGroup {
            name: "orders-workers-use4".into(),
            region: "us-east4".into(),
            target_size: target,
            stable: true,
            autoscaler: autoscaler.map(str::to_string),
            idle: target,
            creating: 0,
        }
    }

    fn scaler(min: u32, max: u32) -> MigAutoscaler {
        MigAutoscaler {
            name: "w-as".into(),
            min,
            max,
        }
    }

    #[test]
    fn a_group_below_the_size_is_resized_and_one_at_or_above_it_is_not() {
        assert_eq!(decide(&group(0, None), None, 3), MigNext::Resize);
        assert_eq!(decide(&group(3, None), None, 3), MigNext::Wait);
        // A failover never shrinks a group.
        assert_eq!(decide(&group(5, None), None, 3), MigNext::Wait);
    }

    #[test]
    fn with_an_autoscaler_its_minimum_is_raised_never_the_size() {
        let g = group(1, Some("w-as"));
        assert_eq!(
            decide(&g, Some(&scaler(1, 8)), 3),
            MigNext::SetMin {
                autoscaler: "w-as".into()
            }
        );
        assert_eq!(decide(&g, Some(&scaler(3, 8)), 3), MigNext::Wait);
        let MigNext::Refuse(why) = decide(&g, Some(&scaler(1, 2)), 3) else {
            panic!("a maximum below the size is refused");
        };
        assert!(why.contains("w-as") && why.contains("at most 2"), "{why}");
    }

    fn instance(action: &str, status: Option<&str>, errors: &[&str]) -> MigInstance {
        MigInstance {
            name: format!("vm-{action}"),
            action: action.into(),
            status: status.map(str::to_string),
            errors: errors.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_group_serves_when_stable_with_the_size_running_not_when_the_operation_is_done() {
        let running = instance("NONE", Some("RUNNING"), &[]);
        let verifying = instance("VERIFYING", Some("RUNNING"), &[]);
        let mut g = group(2, None);
        assert!(serving(&g, &[running.clone(), running.clone()], 2));
        assert!(!serving(&g, &[running.clone(), verifying], 2));
        g.stable = false;
        assert!(!serving(&g, &[running.clone(), running.clone()], 2));
        let failed = instance("CREATING", None, &["ZONE_RESOURCE_POOL_EXHAUSTED: no room"]);
        assert_eq!(
            instance_errors(&[running, failed]),
            vec!["vm-CREATING: ZONE_RESOURCE_POOL_EXHAUSTED: no room".to_string()]
        );
    }

    #[test]
    fn a_request_id_is_a_uuid_stable_for_the_same_write_of_the_same_run() {
        let a = request_id("run-1", "us-east4/w/resize/3");
        assert_eq!(a, request_id("run-1", "us-east4/w/resize/3"));
        assert_ne!(a, request_id("run-2", "us-east4/w/resize/3"));
        assert_ne!(a, request_id("run-1", "us-east4/w/resize/4"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
        assert_eq!(&a[14..15], "5");
    }
}

/// The step on the fake cloud: a failover of the orders-gcp plan to us-east4.
#[cfg(test)]
mod on_fake {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cloud::Clouds;
    use crate::cloud::fake::FakeCloud;
    use crate::cloud::metered::Metered;

    const P: &str = "drctl-emu";
    const G: &str = "orders-workers-use4";

    fn plan() -> crate::plan::Plan {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans/gcp");
        let loaded = crate::plan::load(&[path]);
        assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
        loaded.plans.into_iter().next().expect("orders-gcp")
    }

    async fn run_step(clouds: &Clouds, run_id: &str) -> Result<ScaleMigOutput, StepFailure> {
        let plan = plan();
        let g = crate::steps::graph::compile(&plan, "us-east4").unwrap();
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::ScaleMig(s) => Some(s.clone()),
                _ => None,
            })
            .expect("a scale-mig step");
        assert_eq!((step.group.as_str(), step.size), (G, 3));
        let outputs = BTreeMap::new();
        let cx = Cx {
            clouds,
            plan: &plan,
            target: "us-east4",
            run_id,
            outputs: &outputs,
            deadline: Instant::now() + Duration::from_secs(60),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
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
        let v = step.run(&cx).await?;
        Ok(serde_json::from_value(v).expect("its outputs"))
    }

    fn count(log: &crate::cloud::metered::MeterLog, label: &str) -> usize {
        log.calls().iter().filter(|c| c.label == label).count()
    }

    #[tokio::test]
    async fn a_group_is_resized_and_the_step_waits_until_its_instances_run() {
        let f = FakeCloud::new();
        f.add_mig(P, "us-east4", G, 1, None);
        let (clouds, log) = Metered::wrap(f.clouds());
        let out = run_step(&clouds, "run-1").await.expect("scaled");
        assert_eq!((out.before, out.after, out.running), (1, 3, 3));
        assert!(out.changed && out.operation.is_some() && out.autoscaler.is_none());
        assert_eq!(count(&log, "compute:regionInstanceGroupManagers.resize"), 1);
        // The operation was DONE before the instances ran: the step read
        // the instances more than once (CREATING, VERIFYING, RUNNING).
        assert!(
            count(
                &log,
                "compute:regionInstanceGroupManagers.listManagedInstances"
            ) >= 2
        );
        let g = f
            .clouds()
            .instance_groups
            .describe_mig("us-east4", P, G)
            .await;
        assert!(g.unwrap().unwrap().stable);
    }

    #[tokio::test]
    async fn a_group_at_the_size_is_left_alone() {
        let f = FakeCloud::new();
        f.add_mig(P, "us-east4", G, 3, None);
        let (clouds, log) = Metered::wrap(f.clouds());
        let out = run_step(&clouds, "run-1").await.expect("already there");
        assert!(!out.changed && out.operation.is_none());
        assert_eq!((out.after, out.running), (3, 3));
        assert_eq!(count(&log, "compute:regionInstanceGroupManagers.resize"), 0);
        assert!(f.state().writes.is_empty(), "{:?}", f.state().writes);
    }

    #[tokio::test]
    async fn a_group_with_an_autoscaler_has_its_minimum_raised_not_its_size() {
        let f = FakeCloud::new();
        f.add_mig(P, "us-east4", G, 1, Some(("workers-as", 1, 8)));
        let (clouds, log) = Metered::wrap(f.clouds());
        let out = run_step(&clouds, "run-1").await.expect("scaled");
        assert_eq!(out.autoscaler.as_deref(), Some("workers-as"));
        assert_eq!(
            (out.autoscaler_min_before, out.after, out.running),
            (Some(1), 3, 3)
        );
        assert_eq!(count(&log, "compute:regionAutoscalers.patch"), 1);
        assert_eq!(count(&log, "compute:regionInstanceGroupManagers.resize"), 0);
        let a = f
            .clouds()
            .instance_groups
            .mig_autoscaler("us-east4", P, "workers-as")
            .await;
        assert_eq!(a.unwrap().unwrap().min, 3);
    }

    #[tokio::test]
    async fn a_resumed_step_sends_no_second_resize() {
        let f = FakeCloud::new();
        f.add_mig(P, "us-east4", G, 1, None);
        let (clouds, log) = Metered::wrap(f.clouds());
        // The first attempt's resize was sent and scheduled, then the run
        // died before the step ended.
        let id = request_id("run-1", &format!("us-east4/{G}/resize/3"));
        let op = clouds
            .instance_groups
            .resize_mig("us-east4", P, G, 3, &id)
            .await
            .unwrap();
        clouds
            .instance_groups
            .mig_operation("us-east4", P, &op.name)
            .await
            .unwrap();
        let out = run_step(&clouds, "run-1").await.expect("resumed");
        assert!(!out.changed, "the target size was raised already");
        assert_eq!((out.before, out.running), (3, 3));
        assert_eq!(count(&log, "compute:regionInstanceGroupManagers.resize"), 1);
        // Sent again with its request id (its answer lost before it was
        // scheduled), Compute answers the operation it made.
        let again = clouds
            .instance_groups
            .resize_mig("us-east4", P, G, 3, &id)
            .await
            .unwrap();
        assert_eq!(again.name, op.name);
        assert_eq!(f.state().writes.len(), 1, "{:?}", f.state().writes);
    }

    #[tokio::test]
    async fn a_group_that_does_not_reach_its_size_names_its_instances_errors() {
        let f = FakeCloud::new();
        f.add_mig(P, "us-east4", G, 1, None);
        f.fail_mig_instances(
            P,
            "us-east4",
            G,
            &["ZONE_RESOURCE_POOL_EXHAUSTED: no room in us-east4-b"],
        );
        let plan = plan();
        let g = crate::steps::graph::compile(&plan, "us-east4").unwrap();
        let step = (g.steps.iter())
            .find_map(|s| match &s.kind {
                StepKind::ScaleMig(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap();
        let outputs = BTreeMap::new();
        let clouds = f.clouds();
        let cx = Cx {
            clouds: &clouds,
            plan: &plan,
            target: "us-east4",
            run_id: "run-1",
            outputs: &outputs,
            deadline: Instant::now() + Duration::from_millis(200),
            poll: (Duration::from_millis(1), Duration::from_millis(2)),
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
        let e = step.run(&cx).await.expect_err("never runs");
        let text = e.to_string();
        assert!(
            matches!(e, StepFailure::State { .. })
                && text.contains("1 of 3 instances running")
                && text.contains("ZONE_RESOURCE_POOL_EXHAUSTED"),
            "{text}"
        );
    }
}
