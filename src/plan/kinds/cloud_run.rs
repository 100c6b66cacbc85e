//! `[[cloud_run]]`: a Cloud Run service per GCP region, whose floor (the
//! service-level minimum instances) a failover raises in the target and
//! waits on until it is in effect, through the capacity role alone
//! ([`CloudRunScaling`]: the generic `raise` and `drill-raise` steps).
//!
//! A standby region's service already serves (Cloud Run scales it from
//! zero); what a failover changes is the floor it keeps warm. It sets the
//! service-level `scaling.minInstanceCount`, which takes effect without a
//! new revision (Google's recommendation), never the revision-level
//! `template.scaling.minInstanceCount`, whose every change rolls out a
//! revision; a revision-level floor found set is reported beside it (it
//! keeps instances warm for every revision in the traffic split on top of
//! the service's). Its status is a capacity (`Groups`): min and desired
//! read as the service's floor, max as its maximum instances (a standby
//! must be able to reach the active floor, not keep it warm), `ACTIVE`
//! when it serves, else what the service says (`RECONCILING`, `FAILED`).
//!
//! A drill's marks are labels on the service. Google's labels take only
//! lowercase letters, digits, `_` and `-`, so the role writes them in that
//! alphabet (`cloud::gcp_run::label_of`) and reads them back as the other
//! kinds' tags (`mark_of`): the run id and the expiry exactly, the owner
//! lowered.
//!
//! The kind is on the capacity role's port: what is its own (its table,
//! its checks, its words and the command by hand) is here; its adapter
//! (`cloud::gcp_run`) reads a service into the role's reading and writes
//! its floor and labels, and the generic steps do the rest.

use serde::{Deserialize, Serialize};

use super::scaling::{About, Reading, Scaling};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::gcp_run::CALLS;
use crate::cloud::{Capacity, Size};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// The size of a Cloud Run service in a role: its minimum instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSize {
    /// The service-level `scaling.minInstanceCount` (the floor a failover
    /// sets; never the revision-level one, module doc).
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
    const ROLE: super::Role = super::Role::Capacity(&CloudRunScaling);
}

/// Whether `name` is a Cloud Run service name: 1 to 49 lowercase letters,
/// digits or hyphens, starting with a letter, not ending with a hyphen.
pub fn valid_service(name: &str) -> bool {
    crate::plan::sites::gcp_name(name, 1..=49)
}

impl CloudRunSpec {
    /// Its minimum instances in `region` as the plan wants them normally.
    pub fn size_in(&self, plan: &Plan, region: &str) -> RunSize {
        super::scaling::normal(plan.home(), region, (self.active, self.standby))
    }
}

impl Resource for CloudRunSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.regions)
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
        super::cloud_sql::check_project(s, &self.id, &self.project);
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

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        let home = self.sites.gcp(w.home);
        for (region, name) in &self.regions {
            let group = format!("{}/{name}", self.project);
            if (w.fake.with_scaled(CALLS.kind, region, &group, |_| ())).is_some() {
                continue;
            }
            let size = super::scaling::normal(home, region, (self.active, self.standby));
            // Serving, its labels on its name, at most Cloud Run's default
            // maximum instances.
            let (n, max) = (
                size.min_instances,
                crate::cloud::gcp_run::DEFAULT_MAX_INSTANCES,
            );
            w.fake
                .add_scaled(&CALLS, region, &group, Size::Count(n), max);
            w.fake
                .with_scaled(CALLS.kind, region, &group, |g| g.handle = group.clone());
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.raised_group(region).into_iter())
            .map(|(at, group)| crate::cloud::fake::slow_key(CALLS.kind, &at, &group))
            .collect()
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

impl Groups for CloudRunSpec {
    fn exclusive(&self) -> bool {
        false
    }

    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        let region = self.sites.gcp(region);
        let name = self.regions.get(region)?;
        Some((region.to_string(), format!("{}/{name}", self.project)))
    }

    fn group(&self, region: &str) -> Option<&str> {
        self.regions.get(self.sites.gcp(region)).map(String::as_str)
    }

    fn standby(&self) -> Capacity {
        Capacity::exactly(self.standby.min_instances)
    }

    fn active(&self) -> Capacity {
        Capacity::exactly(self.active.min_instances)
    }
}

/// The capacity role's actions on Cloud Run services (`project/service`):
/// the size is the service-level floor.
pub struct CloudRunScaling;

impl Scaling for CloudRunScaling {
    fn about(&self) -> &'static About {
        &About {
            noun: "Cloud Run service",
            unit: "min instances",
            missing_hint: "deploy the service in that region, or fix `project` and the service's name in the plan",
            label: "cloud run",
            serves_from_zero: true,
            carries_marks: true,
            max_follows: false,
            calls: CALLS,
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Count(planned.min)
    }

    fn set_call(&self, _: &Reading) -> &'static str {
        self.about().calls.set
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }

    fn manual(&self, region: &str, group: &str, size: Size) -> String {
        let (project, name) = crate::cloud::gcp_run::FORM
            .split(group)
            .unwrap_or((group, group));
        format!(
            "gcloud run services update {name} --project {project} --region {region} --min {size}, then remove its drctl-drill-* labels (gcloud run services update --remove-labels)"
        )
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
}
