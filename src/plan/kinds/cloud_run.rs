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
//! alphabet ([`label_of`]) and reads them back as the other kinds' tags
//! ([`mark_of`]): the run id and the expiry exactly, the owner lowered.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::scaling::{About, Change, Reading, Scaling, ScalingCalls};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::{Capacity, CloudError, Clouds, ComputeGroup, RunService, Size};
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

/// A service's status as `status` shows a group's: `ACTIVE` when its latest
/// revision serves, else what the service says (`RECONCILING`, `FAILED`
/// and the `Ready` condition's message, or its state).
pub fn status_of(s: &RunService) -> String {
    std::iter::once(state_of(s))
        .chain(notes_of(s))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What people should know of a service beside its state (pure): a
/// revision-level floor, which keeps more warm than the service's; and a
/// service with no minimum instance at either level, whose cross-region
/// service health Cloud Run cannot compute ("You must configure at least
/// one service-level or revision-level minimum instance per region to
/// calculate health": Google's Cloud Run service health documentation),
/// so that a global load balancer's automated failover does not see it.
pub fn notes_of(s: &RunService) -> Vec<String> {
    match (s.floor, s.min_instances) {
        (_, n @ 1..) => vec![format!(
            "revision floor {n} (template.scaling) keeps more warm"
        )],
        (0, 0) => vec![
            "no minimum instance: Cloud Run's service health (a global load balancer's cross-region failover) is not computed for this region; a floor of at least 1 turns it on"
                .into(),
        ],
        _ => Vec::new(),
    }
}

fn state_of(s: &RunService) -> String {
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
            let key = (self.project.clone(), region.clone(), name.clone());
            if w.fake.state().run.contains_key(&key) {
                continue;
            }
            let size = super::scaling::normal(home, region, (self.active, self.standby));
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
    let n = s.floor;
    ComputeGroup {
        status: Some(state_of(&s)),
        notes: notes_of(&s),
        target_groups: Vec::new(),
        name: s.name,
        region: s.region,
        capacity: Capacity {
            min: n,
            desired: n,
            max: s.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES),
        },
        in_service: 0,
        instances: 0,
        tags: s.labels,
    }
}

#[async_trait]
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

/// The capacity role's actions on Cloud Run services (`project/service`):
/// the size is the service-level floor.
pub struct CloudRunScaling;

/// The prefix of drctl's labels on a service (Google's keys take no `:`).
const LABEL_PREFIX: &str = "drctl-drill-";
/// The prefix of drctl's drill tags (`steps::drill_names`).
const TAG_PREFIX: &str = "drctl:drill-";

/// A drill mark as a label Google takes (pure): the key with `-` for
/// `:`; the value lowered, `_` for `:` and for anything else outside the
/// labels' alphabet (a run id and an RFC 3339 expiry read back exactly
/// with [`mark_of`]).
pub fn label_of(key: &str, value: &str) -> (String, String) {
    let key = key.replacen(TAG_PREFIX, LABEL_PREFIX, 1);
    let value = (value.chars())
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '_',
        })
        .collect();
    (key, value)
}

/// A label of drctl's read back as its drill mark (pure; `None`: not
/// drctl's). A run id's and an expiry's `T` and `Z` (the only capitals
/// they have) and an expiry's colons come back.
pub fn mark_of(key: &str, value: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(LABEL_PREFIX)?;
    let stamp = |v: &str, at: &[usize]| -> String {
        (v.char_indices())
            .map(|(i, c)| match c {
                't' | 'z' if at.contains(&i) => c.to_ascii_uppercase(),
                _ => c,
            })
            .collect()
    };
    let value = match rest {
        // `20261122t041530z-drill-orders-3f9a`
        "run" => stamp(value, &[8, 15]),
        // `2026-11-22t04_15_30z`
        "expires" => stamp(value, &[10, 19]).replace('_', ":"),
        _ => value.to_string(),
    };
    Some((format!("{TAG_PREFIX}{rest}"), value))
}

fn reading(s: RunService, group: &str) -> Reading {
    let change = if s.failed() {
        Change::Failed {
            id: format!("generation {}", s.generation),
            reason: (s.ready_message.clone()).unwrap_or_else(|| "no reason given".into()),
        }
    } else if s.reconciling || s.observed_generation < s.generation {
        Change::Rolling(format!("generation {}", s.generation))
    } else {
        Change::Settled
    };
    Reading {
        size: Size::Count(s.floor),
        serving: if s.serves() { s.floor } else { 0 },
        change,
        marks: (s.labels.iter())
            .filter_map(|(k, v)| mark_of(k, v))
            .collect(),
        handle: group.to_string(),
        state: status_of(&s),
        ceiling: None,
        balanced_by: Vec::new(),
        targets: Vec::new(),
    }
}

/// `project/service` as the two names ([`super::scaling::PairForm`]).
fn names<'a>(
    group: &'a str,
    (call, region): (&'static str, &str),
) -> Result<(&'a str, &'a str), CloudError> {
    let form = super::scaling::PairForm {
        max: 49,
        form: "project/service",
    };
    form.names(group, call, region)
}

impl CloudRunScaling {
    /// Rewrites the labels of service `group` (read fresh, so the etag
    /// guards what another writer changed meanwhile): `edit` gets them.
    async fn relabel(
        clouds: &Clouds,
        region: &str,
        group: &str,
        edit: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), CloudError> {
        let (project, name) = names(group, ("run:services.get", region))?;
        let Some(s) = clouds.cloud_run.describe_run(region, project, name).await? else {
            return Err(CloudError::new(
                "run",
                "services.get",
                name,
                region,
                crate::cloud::ErrorKind::NotFound,
                "service not found",
            ));
        };
        let mut labels = s.labels.clone();
        edit(&mut labels);
        if labels == s.labels {
            return Ok(());
        }
        (clouds.cloud_run)
            .set_run_labels(region, project, name, &labels, &s.etag)
            .await
    }
}

#[async_trait]
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
            calls: ScalingCalls {
                kind: "cloud_run",
                read: "run:services.get",
                set: "run:services.patch",
                mark: "run:services.patch",
                unmark: "run:services.patch",
                calls: &["run:services.get", "run:services.patch"],
                waits: &["run:services.patch"],
            },
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Count(planned.min)
    }

    fn set_call(&self, _: &Reading) -> &'static str {
        self.about().calls.set
    }

    async fn read(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        let (project, name) = names(group, ("run:services.get", region))?;
        let read = clouds.cloud_run.describe_run(region, project, name).await?;
        Ok(read.map(|s| reading(s, group)))
    }

    async fn set(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let (project, name) = names(group, ("run:services.patch", region))?;
        clouds
            .cloud_run
            .set_run_floor(region, project, name, size.serving())
            .await?;
        Ok(None)
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
    }

    async fn mark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        Self::relabel(clouds, region, &read.handle, |labels| {
            labels.extend(marks.iter().map(|(k, v)| label_of(k, v)));
        })
        .await
    }

    async fn unmark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        Self::relabel(clouds, region, &read.handle, |labels| {
            for k in keys {
                labels.remove(&label_of(k, "").0);
            }
        })
        .await
    }

    fn manual(&self, region: &str, group: &str, size: Size) -> String {
        let (project, name) = super::split_pair(group, 49).unwrap_or((group, group));
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

    fn service() -> RunService {
        RunService {
            name: "api".into(),
            region: "us-east4".into(),
            floor: 3,
            min_instances: 0,
            max_instances: Some(20),
            generation: 2,
            observed_generation: 2,
            latest_created: "api-00002-aaa".into(),
            latest_ready: "api-00002-aaa".into(),
            ready_state: "CONDITION_SUCCEEDED".into(),
            ready_message: None,
            reconciling: false,
            etag: "e2".into(),
            labels: BTreeMap::new(),
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

    /// Either floor keeps service health computed; with neither, the
    /// service says so, in a note (never its state: `status` judges a
    /// standby by its state, and a floor of 0 is the plan's choice). A
    /// revision-level floor is a note too, not a state that is not ACTIVE.
    #[test]
    fn a_service_with_no_minimum_instance_says_its_health_is_not_computed() {
        let mut s = service();
        assert_eq!(notes_of(&s), Vec::<String>::new(), "the service floor");
        s.floor = 0;
        let none = notes_of(&s);
        assert!(
            none.len() == 1
                && none[0].starts_with("no minimum instance: Cloud Run's service health"),
            "{none:?}"
        );
        let g = as_group(s.clone());
        assert_eq!((g.status.as_deref(), &g.notes), (Some("ACTIVE"), &none));
        assert_eq!(status_of(&s), format!("ACTIVE; {}", none[0]));
        s.min_instances = 1;
        let revision = notes_of(&s);
        assert_eq!(
            revision,
            ["revision floor 1 (template.scaling) keeps more warm"]
        );
        let g = as_group(s);
        assert_eq!((g.status.as_deref(), g.notes), (Some("ACTIVE"), revision));
    }

    /// A drill's marks survive Google's label alphabet: the run id and
    /// the expiry come back exactly, so a sweep without the journal finds
    /// the drill and its deadline; the owner comes back lowered.
    #[test]
    fn drill_marks_round_trip_through_labels() {
        let now = chrono::Utc::now();
        let run = crate::journal::new_run_id("drill-orders-gcp");
        let expires = now + chrono::Duration::minutes(30);
        let mut tags = crate::steps::drill_names::tags(&run, "Host-1.example/pid 42", expires);
        tags.insert(crate::steps::drill_names::RESTORE_TAG.into(), "0".into());
        let labels: BTreeMap<String, String> = (tags.iter()).map(|(k, v)| label_of(k, v)).collect();
        for (k, v) in &labels {
            let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
            assert!(
                k.len() <= 63 && k.starts_with("drctl-drill-") && k.chars().all(ok),
                "{k}"
            );
            assert!(v.len() <= 63 && v.chars().all(ok), "{k}={v}");
        }
        let back: BTreeMap<String, String> =
            (labels.iter()).filter_map(|(k, v)| mark_of(k, v)).collect();
        let rt = crate::steps::drill_names::RUN_TAG;
        assert_eq!(back[rt], run);
        assert_eq!(
            crate::steps::drill_names::expiry(&back)
                .unwrap()
                .timestamp(),
            expires.timestamp()
        );
        assert_eq!(
            back[crate::steps::drill_names::OWNER_TAG],
            "host-1_example_pid_42"
        );
        assert_eq!(back[crate::steps::drill_names::RESTORE_TAG], "0");
        assert_eq!(mark_of("team", "payments"), None);
    }

    /// The size is the service's floor; a revision-level floor is named
    /// beside it; a failed change is named by its generation and reason.
    #[test]
    fn a_service_reads_its_floor_and_names_a_revision_floor_or_a_failure() {
        let mut s = service();
        s.min_instances = 2;
        let r = reading(s.clone(), "acme-orders/api");
        assert_eq!(
            (r.size, r.serving, r.change.clone()),
            (Size::Count(3), 3, Change::Settled)
        );
        assert!(r.state.contains("revision floor 2"), "{}", r.state);
        s.generation = 3;
        s.reconciling = true;
        assert_eq!(
            reading(s.clone(), "g").change,
            Change::Rolling("generation 3".into())
        );
        s.reconciling = false;
        s.observed_generation = 3;
        s.ready_state = "CONDITION_FAILED".into();
        s.ready_message = Some("Quota exceeded".into());
        let f = reading(s, "g");
        assert_eq!(
            (f.serving, f.change),
            (
                0,
                Change::Failed {
                    id: "generation 3".into(),
                    reason: "Quota exceeded".into()
                }
            )
        );
    }
}
