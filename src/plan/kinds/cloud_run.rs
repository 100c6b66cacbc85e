//! `[[cloud_run]]`: a Cloud Run service per GCP region, whose minimum
//! instances a failover raises in the target (`scale-run`) and waits on
//! until its new revision serves.
//!
//! A standby region's service already serves (Cloud Run scales it from
//! zero); what a failover changes is the floor it keeps warm,
//! `template.scaling.minInstanceCount`, which Cloud Run applies by rolling
//! out a new revision. Its status is a capacity (`Groups`): min and desired
//! read as the service's minimum instances, max as its maximum instances
//! (a standby must be able to reach the active floor, not keep it warm),
//! `ACTIVE` when its latest revision serves, else what the service says
//! (`RECONCILING`, `FAILED`).
//!
//! Why its own kind rather than a `[[compute]]` with a provider key: it is
//! named by project, region and service, sized by one number, and its
//! write answers an operation and a revision to follow; the kind-neutral
//! [`Groups`] answer is what lets `status` and readiness take it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::cloud_sql::valid_project;
use super::{Copies, Groups, Kind, Resource, RpoSource, Shown, SideRead};
use crate::cloud::{Capacity, CloudError, Clouds, ComputeGroup, RunService};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// The size of a Cloud Run service in a role: its minimum instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSize {
    /// `template.scaling.minInstanceCount`.
    pub min_instances: u32,
}

/// A `[[cloud_run]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudRunSpec {
    /// Resource id, unique in the plan.
    pub id: String,
    /// The GCP project that holds the services.
    pub project: String,
    /// The service's name per GCP region.
    pub regions: PerRegion,
    /// Its minimum instances in the active region.
    pub active: RunSize,
    /// Its minimum instances in standby regions.
    pub standby: RunSize,
    /// Resources that must be done first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The plan's sites (set when the plan is loaded): which of its
    /// copies, named by GCP region, a site of the plan means.
    #[serde(skip)]
    pub sites: crate::plan::sites::Sites,
}

const SIZE: &[&str] = &["min_instances"];

impl Kind for CloudRunSpec {
    const KEYS: &'static [&'static str] =
        &["id", "project", "regions", "active", "standby", "after"];
    const NESTED: &'static [(&'static str, &'static [&'static str])] =
        &[("active", SIZE), ("standby", SIZE)];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "regions";
    const CLOUD: super::Cloud = super::Cloud::Gcp;
    const SCALING: Option<&'static dyn super::scaling::Scaling> = None;
}

/// Whether `name` is a Cloud Run service name: 1 to 49 lowercase letters,
/// digits or hyphens, starting with a letter, not ending with a hyphen.
pub fn valid_service(name: &str) -> bool {
    crate::plan::sites::gcp_name(name, 1..=49)
}

/// A service's status as `status` shows a group's: `ACTIVE` when its latest
/// revision serves, else what the service says (`RECONCILING`, `FAILED`
/// and the `Ready` condition's message, or its state).
pub fn status_of(s: &RunService) -> String {
    if s.serves() {
        return "ACTIVE".into();
    }
    if s.reconciling || s.observed_generation < s.generation {
        return "RECONCILING".into();
    }
    let state = s.ready_state.trim_start_matches("CONDITION_");
    let state = if state.is_empty() { "NOT_READY" } else { state };
    match &s.ready_message {
        Some(m) => format!("{state}: {m}"),
        None => state.to_string(),
    }
}

impl CloudRunSpec {
    /// Its minimum instances in `region` as the plan wants them normally.
    pub fn size_in(&self, plan: &Plan, region: &str) -> RunSize {
        if region == plan.home() {
            self.active
        } else {
            self.standby
        }
    }
}

impl Resource for CloudRunSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
    }

    fn follows(&self) -> Option<&str> {
        None
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        format!(
            "cloud_run {:<21} {}/{} (normally {} min instances)",
            self.id,
            self.project,
            self.regions[self.sites.gcp(region)],
            self.size_in(plan, region).min_instances
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        if !valid_project(&self.project) {
            s.error(
                path!["project"],
                format!(
                    "cloud_run `{}`: `{}` is not a GCP project id",
                    self.id, self.project
                ),
                "6 to 30 lowercase letters, digits or hyphens, starting with a letter",
            );
        }
        for (region, name) in &self.regions {
            if !crate::plan::sites::gcp_region(region) {
                s.error(
                    path!["regions", region.as_str()],
                    format!(
                        "cloud_run `{}` names a service in {region}, not a GCP region",
                        self.id
                    ),
                    "Cloud Run services live in GCP regions (us-central1, us-east4); list them in the plan's regions",
                );
            }
            if !valid_service(name) {
                s.error(
                    path!["regions", region.as_str()],
                    format!(
                        "cloud_run `{}` names `{name}` in {region}, not a Cloud Run service name",
                        self.id
                    ),
                    "up to 49 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen",
                );
            }
        }
        if self.active.min_instances == 0 {
            s.error(
                path!["active", "min_instances"],
                format!(
                    "cloud_run `{}` has an active min_instances of 0",
                    self.id
                ),
                "a failover would leave the target's service cold; give the floor that serves production (at least 1)",
            );
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Capacity(self)
    }

    fn rpo_source(&self) -> Option<&dyn RpoSource> {
        None
    }

    fn side_read(&self) -> Option<SideRead<'_>> {
        // A service holds no data to lose.
        None
    }

    fn endpoint(&self) -> Option<&dyn Copies> {
        None
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        let home = self.sites.gcp(w.home);
        for (region, name) in &self.regions {
            let key = (self.project.clone(), region.clone(), name.clone());
            if w.fake.state().run.contains_key(&key) {
                continue;
            }
            let size = if region == home {
                self.active
            } else {
                self.standby
            };
            w.fake
                .add_run_service(&self.project, region, name, size.min_instances);
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, _region: &str) -> Vec<String> {
        // Its rollout is polled to done, not timed by the model.
        Vec::new()
    }

    fn attach_sites(&mut self, sites: &crate::plan::sites::Sites) {
        self.sites = sites.clone();
    }

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        for v in self.regions.values_mut() {
            v.push_str(&tag.to_lowercase());
        }
    }
}

/// Cloud Run's maximum instances when a service sets none.
pub const DEFAULT_MAX_INSTANCES: u32 = 100;

/// A service read as a group of `status`: its minimum instances as min and
/// desired (the floor a failover sets), its maximum instances as max (what
/// `status` asks of a standby: that it can reach the active floor, not that
/// it keeps it warm already), its status by [`status_of`].
fn as_group(s: RunService) -> ComputeGroup {
    let n = s.min_instances;
    ComputeGroup {
        status: Some(status_of(&s)),
        name: s.name,
        region: s.region,
        capacity: Capacity {
            min: n,
            desired: n,
            max: s.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES),
        },
        in_service: 0,
        instances: 0,
        tags: Default::default(),
    }
}

#[async_trait]
impl Groups for CloudRunSpec {
    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        let region = self.sites.gcp(region);
        Some((region.to_string(), self.regions.get(region)?.clone()))
    }

    fn at_standby(&self, read: &ComputeGroup) -> bool {
        read.capacity.min == self.standby.min_instances
    }

    fn resource(&self) -> &str {
        &self.id
    }

    fn label(&self) -> &'static str {
        "cloud run"
    }

    fn drilled(&self) -> bool {
        // `drill-run` raises the standby service's floor (and returns it).
        true
    }

    fn group(&self, region: &str) -> Option<&str> {
        self.regions.get(self.sites.gcp(region)).map(String::as_str)
    }

    fn active(&self) -> Capacity {
        let n = self.active.min_instances;
        Capacity {
            min: n,
            desired: n,
            max: n,
        }
    }

    fn read_call(&self) -> &'static str {
        "run:services.get"
    }

    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let region = self.sites.gcp(region);
        let Some(name) = self.regions.get(region) else {
            return Ok(None);
        };
        Ok((clouds.cloud_run)
            .describe_run(region, &self.project, name)
            .await?
            .map(as_group))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_regions_follow_cloud_runs_rules() {
        for ok in ["orders-api", "a", "orders-api-use4", &"a".repeat(49)] {
            assert!(valid_service(ok), "{ok}");
        }
        for bad in ["", "Orders", "1api", "api-", "orders_api", &"a".repeat(50)] {
            assert!(!valid_service(bad), "{bad}");
        }
        for ok in ["us-central1", "us-east4", "europe-west4", "asia-northeast1"] {
            assert!(crate::plan::sites::gcp_region(ok), "{ok}");
        }
        for bad in [
            "us-east-1",
            "eu-west-1",
            "uscentral1",
            "us-central",
            "-east4",
            "",
        ] {
            assert!(!crate::plan::sites::gcp_region(bad), "{bad}");
        }
    }

    fn service() -> RunService {
        RunService {
            name: "api".into(),
            region: "us-east4".into(),
            min_instances: 3,
            max_instances: Some(20),
            generation: 2,
            observed_generation: 2,
            latest_created: "api-00002-aaa".into(),
            latest_ready: "api-00002-aaa".into(),
            ready_state: "CONDITION_SUCCEEDED".into(),
            ready_message: None,
            reconciling: false,
            etag: "e2".into(),
        }
    }

    #[test]
    fn a_serving_service_is_active_else_it_says_what_it_is() {
        let s = service();
        assert_eq!(status_of(&s), "ACTIVE");
        let g = as_group(s.clone());
        let mut unset = s.clone();
        unset.max_instances = None;
        assert_eq!(as_group(unset).capacity.max, DEFAULT_MAX_INSTANCES);
        assert_eq!(
            (g.capacity.min, g.capacity.desired, g.capacity.max),
            (3, 3, 20)
        );
        let mut r = s.clone();
        r.reconciling = true;
        r.ready_state = "CONDITION_RECONCILING".into();
        assert_eq!(status_of(&r), "RECONCILING");
        let mut f = s;
        f.ready_state = "CONDITION_FAILED".into();
        f.latest_ready = "api-00001-aaa".into();
        f.ready_message = Some("Revision 'api-00002-aaa' is not ready".into());
        assert_eq!(
            status_of(&f),
            "FAILED: Revision 'api-00002-aaa' is not ready"
        );
    }
}
