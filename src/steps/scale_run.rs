//! `scale-run`: set the target region's Cloud Run service to its active
//! minimum instances (`services.patch` of
//! `template.scaling.minInstanceCount`, conditional on the etag read) and
//! wait until its new revision serves.
//!
//! Read, decide, act: the service is read first and [`decide`] (pure) says
//! what to do with the read: nothing (at the active floor and serving),
//! wait (a rollout is under way: after a crash it is likely ours, and Cloud
//! Run refuses a patch while it reconciles), or patch. The patch answers a
//! long-running operation the crate does not poll: the step polls
//! `operations.get` with the run's pace and budget ([`wait_for`]) until it
//! is done, then reads the service until the revision it created serves. A
//! failed rollout fails the step naming the revision and the `Ready`
//! condition's message. The engine has no journal of a step before its
//! end, so a resumed step finds its own rollout on the service itself
//! (`reconciling`, its generation not yet observed) and waits on it rather
//! than patching again.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Action, Cost, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits,
    wait_for,
};
use crate::cloud::RunService;
use crate::steps::graph::{Builder, Phase};

/// Raise one Cloud Run service's minimum instances in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleRun {
    /// Plan resource id.
    pub resource: String,
    /// The GCP project.
    pub project: String,
    /// The service in the target region.
    pub service: String,
    /// Target region.
    pub region: String,
    /// The active minimum instances to reach.
    pub min_instances: u32,
}

/// Part of the recovery; reversible (patch the floor back down).
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    time: Cost {
        calls: &["run:services.get", "run:services.patch"],
        waits: &["run:services.patch"],
        polls: Some("run:operations.get"),
    },
};

/// A failover raises every Cloud Run service of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if !b.mode.fails_over() {
        return;
    }
    let steps: Vec<ScaleRun> = (b.plan.spec.cloud_run.iter())
        .filter_map(|r| {
            Some(ScaleRun {
                resource: r.id.clone(),
                project: r.project.clone(),
                service: r.regions.get(r.sites.gcp(b.target))?.clone(),
                region: r.sites.gcp(b.target).to_string(),
                min_instances: r.active.min_instances,
            })
        })
        .collect();
    for s in steps {
        let description = format!(
            "raise Cloud Run service {} in {} to {} min instances, wait until its revision serves",
            s.service, s.region, s.min_instances
        );
        b.add(
            StepKind::ScaleRun(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudRun),
            vec![s.resource],
            description,
        );
    }
}

/// What a service's read says to do to bring it to a floor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunNext {
    /// At the floor and serving: nothing to do.
    Done,
    /// A rollout is under way (ours after a crash, or another writer's):
    /// wait for it to end, then decide again.
    Settle,
    /// Patch it, conditional on this etag.
    Patch {
        /// The etag read.
        etag: String,
    },
    /// It cannot be patched (it does not exist).
    Refuse(String),
}

/// Whether a service is still rolling a spec out.
pub fn rolling(s: &RunService) -> bool {
    s.reconciling || s.observed_generation < s.generation
}

/// Decides what a raise to `want` minimum instances does with `read`
/// (pure).
pub fn decide(read: Option<&RunService>, want: u32) -> RunNext {
    let Some(s) = read else {
        return RunNext::Refuse("the service does not exist".into());
    };
    if rolling(s) {
        return RunNext::Settle;
    }
    if s.min_instances == want && s.serves() {
        return RunNext::Done;
    }
    // Another floor, or at the floor with a failed latest rollout (a new
    // revision is tried once).
    RunNext::Patch {
        etag: s.etag.clone(),
    }
}

/// What a scale-run step publishes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScaleRunOutput {
    /// The service.
    pub service: String,
    /// Its region.
    pub region: String,
    /// The project.
    pub project: String,
    /// Minimum instances before.
    pub before: u32,
    /// Minimum instances after.
    pub after: u32,
    /// The revision that serves after.
    pub revision: String,
    /// The operation of the patch sent, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Set when a rollout was found under way and waited on (a resumed
    /// run, or another writer's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waited_rollout: bool,
    /// Whether this step changed the floor.
    pub changed: bool,
}

impl StepOutput for ScaleRunOutput {
    const KIND: KindName = KindName::ScaleRun;
}

impl ScaleRun {
    fn what(&self) -> String {
        format!("cloud run {}", self.service)
    }

    async fn read(&self, cx: &Cx<'_>) -> Result<Option<RunService>, StepFailure> {
        Ok((cx.clouds.cloud_run)
            .describe_run(&self.region, &self.project, &self.service)
            .await?)
    }

    fn failed(&self, s: &RunService, op_error: Option<&str>) -> StepFailure {
        let why = (s.ready_message.as_deref())
            .or(op_error)
            .unwrap_or("no message given");
        StepFailure::state(
            format!(
                "the rollout of revision {} of Cloud Run service {} ({}) failed: {why}",
                s.latest_created, self.service, self.region
            ),
            format!(
                "read it with `gcloud run revisions describe {} --region {} --project {}`; fix the cause, then resume (the step reads the service first)",
                s.latest_created, self.region, self.project
            ),
            &self.service,
            &self.region,
        )
    }

    /// Waits until the service's rollout ended, and returns its read.
    pub(crate) async fn settled(&self, cx: &Cx<'_>) -> Result<RunService, StepFailure> {
        wait_for(
            cx,
            &format!(
                "Cloud Run service {} ({}) to end its rollout",
                self.service, self.region
            ),
            || async { Ok(self.read(cx).await?.filter(|s| !rolling(s))) },
        )
        .await
    }
}

#[async_trait]
impl Action for ScaleRun {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        // `status` reads the service itself (through the kind).
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let what = self.what();
        let read = (cx.clouds.cloud_run)
            .describe_run(&self.region, &self.project, &self.service)
            .await;
        match read {
            Ok(None) => vec![Finding::missing(&what, &self.region)],
            Ok(Some(s)) if s.max_instances.is_some_and(|m| m < self.min_instances) => {
                vec![Finding::blocks(
                    &what,
                    &self.region,
                    format!("{} min instances", s.min_instances),
                    format!(
                        "max instances {} is below the active min instances {}",
                        s.max_instances.unwrap_or_default(),
                        self.min_instances
                    ),
                )]
            }
            Ok(Some(s)) => vec![Finding::ok(
                &what,
                &self.region,
                format!(
                    "{} min instances, {}",
                    s.min_instances,
                    crate::plan::kinds::cloud_run_status(&s)
                ),
            )],
            Err(e) => vec![Finding::unreadable(&what, &self.region, &e)],
        }
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let current = self.read(cx).await?;
        Ok(vec![Planned {
            call: "run:services.patch".into(),
            resource: self.service.clone(),
            region: self.region.clone(),
            current: current.as_ref().map_or("missing".into(), |s| {
                format!(
                    "{} min instances, {}",
                    s.min_instances,
                    crate::plan::kinds::cloud_run_status(s)
                )
            }),
            desired: format!("{} min instances, serving", self.min_instances),
            change: decide(current.as_ref(), self.min_instances) != RunNext::Done,
        }])
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (p, r, name) = (
            self.project.as_str(),
            self.region.as_str(),
            self.service.as_str(),
        );
        let want = self.min_instances;
        let before = self.read(cx).await?;
        let mut out = ScaleRunOutput {
            service: name.to_string(),
            region: r.to_string(),
            project: p.to_string(),
            before: before.as_ref().map_or(0, |s| s.min_instances),
            ..ScaleRunOutput::default()
        };
        let mut now = before;
        loop {
            match decide(now.as_ref(), want) {
                RunNext::Refuse(why) => {
                    return Err(StepFailure::state(
                        format!("Cloud Run service {name} in {r} (project {p}): {why}"),
                        "deploy it (gcloud run deploy) or fix the service's name in the plan",
                        name,
                        r,
                    ));
                }
                RunNext::Done => break,
                RunNext::Settle => {
                    tracing::info!(
                        service = name,
                        region = r,
                        "a rollout is under way: waiting for it, not patching again"
                    );
                    let s = self.settled(cx).await?;
                    out.waited_rollout = true;
                    if s.failed() && (out.operation.is_some() || s.min_instances == want) {
                        return Err(self.failed(&s, None));
                    }
                    now = Some(s);
                }
                RunNext::Patch { .. } if out.operation.is_some() => {
                    let s = now.expect("read");
                    if s.failed() {
                        return Err(self.failed(&s, None));
                    }
                    return Err(StepFailure::state(
                        format!(
                            "Cloud Run service {name} in {r} reads {} min instances after operation {}, not {want}",
                            s.min_instances,
                            out.operation.as_deref().unwrap_or_default()
                        ),
                        "another writer changed the service: look at it, then resume",
                        name,
                        r,
                    ));
                }
                RunNext::Patch { etag } => {
                    cx.fenced(&format!("run:services.patch of {name}"), r)
                        .await?;
                    let op = (cx.clouds.cloud_run)
                        .set_run_min_instances(r, p, name, want, Some(&etag))
                        .await?;
                    out.operation = Some(op.name.clone());
                    out.changed = true;
                    let op = if op.done {
                        op
                    } else {
                        wait_for(
                            cx,
                            &format!("Cloud Run operation {} on {name} ({r})", op.name),
                            || async {
                                let o = cx.clouds.cloud_run.run_operation(r, &op.name).await?;
                                Ok(o.done.then_some(o))
                            },
                        )
                        .await?
                    };
                    let s = self.settled(cx).await?;
                    if op.error.is_some() || s.failed() {
                        return Err(self.failed(&s, op.error.as_deref()));
                    }
                    now = Some(s);
                }
            }
        }
        let s = now.expect("a service that serves");
        out.after = s.min_instances;
        out.revision = s.latest_ready.clone();
        tracing::info!(
            service = name,
            region = r,
            revision = out.revision,
            min_instances = out.after,
            "serving at the active floor"
        );
        out.to_output()
    }
}

#[cfg(test)]
mod tests;
