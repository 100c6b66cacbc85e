//! `drill-run`: prove the target region's Cloud Run service serves at its
//! active floor. A shadow drill raises the standby service's minimum
//! instances to the plan's active floor (`services.patch`, conditional on
//! the etag read), waits until the new revision serves (as `scale-run`
//! waits: the same code), and its cleanup patches the floor back to what
//! it was. Production's service, in the home region, is not touched.
//!
//! The restore point lives in the drill's journal ([`Temp::RunFloor`]),
//! written through [`Cx::journal_temp`] after the read and before the
//! patch, as `drill-mig` and `drill-nodes` do: a rollout under way is
//! waited for first, so the floor journaled is the one it leaves. A step
//! run again in the same run raises from the floor it journaled. The
//! cleanup returns the floor only when the drill still owns the service
//! (`cleanup::owner`: a failover's `scale-run` since keeps it), waits for
//! the rollout of its patch and reads the floor back.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::capacity;
use super::capacity::CapacityOwner;
use super::drill_mig::journaled_by_run;
use super::scale_run::{ScaleRun, ScaleRunOutput, rolling};
use super::{Action, Cx, Finding, KindName, Planned, StepFailure, StepKind, StepOutput, Traits};
use crate::cloud::retry::poll_until;
use crate::cloud::{CloudError, Clouds, RunService};
use crate::journal::{CleanupResult, Temp};
use crate::steps::graph::{Builder, DrillDepth, Phase, RunMode};

/// Raise one `[[cloud_run]]` standby service's floor in the target region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillRun {
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

/// Part of the drill's recovery.
pub const TRAITS: Traits = Traits {
    warnings: None,
    recovery: true,
    ends_rto: false,
    irreversible: None,
    endpoint: None,
    rpo: None,
    time: super::scale_run::TRAITS.time,
};

/// A shadow drill raises every Cloud Run service of the plan in the target.
pub fn compile(b: &mut Builder<'_>) {
    if *b.mode
        != (RunMode::Drill {
            depth: DrillDepth::Shadow,
        })
    {
        return;
    }
    let steps: Vec<DrillRun> = (b.plan.spec.cloud_run.iter())
        .filter_map(|r| {
            Some(DrillRun {
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
            "raise Cloud Run service {} in {} to {} min instances, wait until its revision serves; restored at cleanup",
            s.service, s.region, s.min_instances
        );
        b.add(
            StepKind::DrillRun(s.clone()),
            Some(s.resource.clone()),
            Phase::of(crate::plan::spec::ResourceKind::CloudRun),
            vec![s.resource],
            description,
        );
    }
}

/// What a drill's Cloud Run step publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRunOutput {
    /// The floor journaled before the raise, returned to at cleanup.
    pub restore: u32,
    /// The raise, as `scale-run` reports it.
    pub raised: ScaleRunOutput,
}

impl StepOutput for DrillRunOutput {
    const KIND: KindName = KindName::DrillRun;
}

/// The floor a drill raises a service to: the active floor, never below
/// the one it had (a drill never lowers a bound). Pure.
pub fn raised_floor(restore: u32, active: u32) -> u32 {
    restore.max(active)
}

impl DrillRun {
    fn scale(&self, floor: u32) -> ScaleRun {
        ScaleRun {
            resource: self.resource.clone(),
            project: self.project.clone(),
            service: self.service.clone(),
            region: self.region.clone(),
            min_instances: floor,
        }
    }

    fn mine(&self, t: &Temp) -> bool {
        matches!(t, Temp::RunFloor { region, project, service, .. }
            if (region, project, service) == (&self.region, &self.project, &self.service))
    }

    fn temp(&self, restore: u32) -> Temp {
        Temp::RunFloor {
            region: self.region.clone(),
            project: self.project.clone(),
            service: self.service.clone(),
            restore,
        }
    }
}

#[async_trait]
impl Action for DrillRun {
    async fn endpoint_now(&self, _: &crate::cloud::Clouds, _: &str) -> Option<super::EndpointNow> {
        None
    }

    async fn readiness(&self, _cx: &Cx<'_>) -> Vec<Finding> {
        Vec::new()
    }

    async fn preflight(&self, cx: &Cx<'_>) -> Vec<Finding> {
        let mut found = self.scale(self.min_instances).preflight(cx).await;
        let what = format!("Cloud Run service {}", self.service);
        if let Some(f) =
            capacity::other_drill_finding(cx, &self.resource, &self.region, &what).await
        {
            found.push(f);
        }
        found
    }

    async fn preview(&self, cx: &Cx<'_>) -> Result<Vec<Planned>, StepFailure> {
        let mut p = self.scale(self.min_instances).preview(cx).await?;
        for x in &mut p {
            x.desired = format!(
                "{} (the floor before journaled first); back to it at cleanup",
                x.desired
            );
        }
        Ok(p)
    }

    async fn run(&self, cx: &Cx<'_>) -> Result<Value, StepFailure> {
        let (p, r, name) = (
            self.project.as_str(),
            self.region.as_str(),
            self.service.as_str(),
        );
        let ours = journaled_by_run(cx, |t| self.mine(t)).await.map_err(|e| {
            StepFailure::state(
                format!("the drill's journal cannot be read: {e}"),
                "nothing was changed; check the state, then drill again",
                name,
                r,
            )
        })?;
        let restore = match ours {
            Some(Temp::RunFloor { restore, .. }) => restore,
            _ => {
                // Another drill's raise is never journaled as this one's
                // floor to return to.
                let what = format!("Cloud Run service {name}");
                if let Some(o) = capacity::other_drill_of(cx, &self.resource, r, &what).await? {
                    return Err(StepFailure::state(
                        capacity::refused(&what, r, &o),
                        capacity::hint(&o),
                        name,
                        r,
                    ));
                }
                let missing = || {
                    StepFailure::state(
                        format!("Cloud Run service {name} does not exist in {r} (project {p})"),
                        "deploy it (gcloud run deploy) or fix the service's name in the plan",
                        name,
                        r,
                    )
                };
                let mut s =
                    (cx.clouds.cloud_run.describe_run(r, p, name).await?).ok_or_else(missing)?;
                if rolling(&s) {
                    // The floor to return to is the one that rollout leaves.
                    s = self.scale(self.min_instances).settled(cx).await?;
                }
                cx.journal_temp(self.temp(s.min_instances), &format!("service {name}"), r)
                    .await?;
                s.min_instances
            }
        };
        let floor = raised_floor(restore, self.min_instances);
        let raised = ScaleRunOutput::read(&self.scale(floor).run(cx).await?).unwrap_or_default();
        DrillRunOutput { restore, raised }.to_output()
    }
}

/// Returns service `service` (region, project, service), which a drill
/// raised, to its journaled floor `restore`, waits for the rollout, and
/// reads the floor back to prove it. `owner` says whether the drill may
/// lower it (see `drill_mig::restore`).
pub async fn restore(
    clouds: &Clouds,
    (region, project, service): (&str, &str, &str),
    restore: u32,
    owner: &CapacityOwner,
    poll: (Duration, Duration),
    deadline: Instant,
) -> Result<(CleanupResult, String), CloudError> {
    let run = &clouds.cloud_run;
    let read = || run.describe_run(region, project, service);
    let Some(s) = read().await? else {
        return Ok((
            CleanupResult::Absent,
            format!("service {service} does not exist in {region}"),
        ));
    };
    match owner {
        CapacityOwner::Drill(_) => {}
        CapacityOwner::Failover(why) => {
            return Ok((
                CleanupResult::Kept,
                format!("left at {} min instances ({why})", s.min_instances),
            ));
        }
        CapacityOwner::Unknown(why) => {
            return Ok((
                CleanupResult::Failed,
                format!(
                    "not lowered: {why}; a failover may own the service, so its {} min instances stay until that is known (the drill's journal keeps {restore} to return to)",
                    s.min_instances
                ),
            ));
        }
    }
    let what = format!("service {service} ({region}) to end its rollout");
    let settled = || {
        poll_until(&what, poll, deadline, || async {
            Ok::<_, CloudError>(read().await?.filter(|s| !rolling(s)))
        })
    };
    let Some(s) = (if rolling(&s) {
        settled().await?
    } else {
        Some(s)
    }) else {
        return Ok((
            CleanupResult::Failed,
            format!("service {service} is still rolling out; run the cleanup again"),
        ));
    };
    if s.min_instances == restore {
        return Ok((
            CleanupResult::Restored,
            format!("at {restore} min instances (read back)"),
        ));
    }
    let op = run
        .set_run_min_instances(region, project, service, restore, Some(&s.etag))
        .await?;
    let name = op.name.clone();
    if !op.done {
        let done = poll_until(
            &format!("Cloud Run operation {name} on {service}"),
            poll,
            deadline,
            || async {
                let o = run.run_operation(region, &name).await?;
                Ok::<_, CloudError>(o.done.then_some(o))
            },
        )
        .await?;
        if let Some(e) = done.as_ref().and_then(|o| o.error.clone()) {
            return Ok((
                CleanupResult::Failed,
                format!("operation {name} on {service} failed: {e}"),
            ));
        }
    }
    Ok(match settled().await? {
        Some(RunService { min_instances, .. }) if min_instances == restore => (
            CleanupResult::Restored,
            format!("back to {restore} min instances (read back), operation {name}"),
        ),
        Some(s) => (
            CleanupResult::Failed,
            format!(
                "reads {} min instances (want {restore}) after operation {name}",
                s.min_instances
            ),
        ),
        None => (
            CleanupResult::Failed,
            format!("service {service} did not end its rollout after operation {name}"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drill_never_lowers_a_floor() {
        assert_eq!(raised_floor(0, 3), 3);
        assert_eq!(raised_floor(5, 3), 5);
    }
}
