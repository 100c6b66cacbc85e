//! `[[kubernetes]]`: a workload in a Kubernetes cluster per region (a
//! Deployment, a StatefulSet or a CronJob), raised to its active replicas
//! in the target by a failover, through the capacity role alone.
//!
//! A workload is sized by its replicas (its `scale` subresource) and, when
//! a HorizontalPodAutoscaler targets it, by the HPA's bounds: its size is
//! the HPA's minimum, the replicas and the HPA's maximum (the replicas
//! thrice without one). The raise is done when the controller has seen the
//! change (`observedGeneration`) and every replica is updated and
//! available; a Deployment whose rollout gave up (`ProgressDeadlineExceeded`)
//! fails the step with its condition's reason and message. A CronJob is one
//! when it runs and none when suspended: a failover resumes it in the
//! target. A drill's marks are annotations (`drctl.dev/drill-run`), so a
//! sweep finds a raise without the drill's journal.
//!
//! The cluster is named per region (`context:us-east-1`, a context of the
//! kubeconfig, or `eks:CLUSTER`, reached with the SDK's credentials); the
//! group the role acts on is `namespace/kind/name@cluster`
//! (`cloud::WorkloadRef`), so a cleanup after a crash reaches it from the
//! journal alone.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::scaling::{About, Change, Reading, Scaling, ScalingCalls};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::{
    Capacity, CloudError, Clouds, ComputeGroup, ErrorKind, Size, Workload, WorkloadKind,
    WorkloadRef,
};
use crate::path;
use crate::plan::Plan;
use crate::plan::spec::{PerRegion, Stage};
use crate::plan::validate::Scope;

/// The bounds of the HPA that scales a workload, active and at standby.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HpaSpec {
    /// `minReplicas` in the active region.
    pub min: u32,
    /// `maxReplicas` in the active region.
    pub max: u32,
    /// `minReplicas` at standby (at least 1: the API refuses 0).
    pub standby_min: u32,
    /// `maxReplicas` at standby.
    pub standby_max: u32,
}

/// A `[[kubernetes]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubernetesSpec {
    /// Resource id.
    pub id: String,
    /// The cluster per region: `context:NAME`, a context of the kubeconfig,
    /// or `eks:CLUSTER`, an EKS cluster in that region.
    pub clusters: PerRegion,
    /// The workload's namespace.
    pub namespace: String,
    /// `deployment/NAME`, `statefulset/NAME` or `cronjob/NAME`.
    pub workload: String,
    /// Replicas in the active region (a CronJob: 1, it runs).
    pub active: u32,
    /// Replicas at standby (0 or a floor; a CronJob: 0, suspended).
    pub standby: u32,
    /// The bounds of the HPA that scales it, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaSpec>,
    /// Resources that must be done first (the node group it runs on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The group per region (`namespace/kind/name@cluster`), made once
    /// from the above: what the role, `status` and a journal name.
    #[serde(skip)]
    named: std::sync::OnceLock<BTreeMap<String, String>>,
}

impl KubernetesSpec {
    /// The workload in `region`, when the plan places a cluster there.
    pub fn in_region(&self, region: &str) -> Option<WorkloadRef> {
        WorkloadRef::parse(&self.group_in(region)?)
    }

    fn group_in(&self, region: &str) -> Option<String> {
        self.group(region).map(str::to_string)
    }

    fn kind_of(&self) -> Option<WorkloadKind> {
        WorkloadKind::from_word(self.workload.split_once('/')?.0)
    }

    fn capacity(&self, replicas: u32, hpa: Option<(u32, u32)>) -> Capacity {
        let (min, max) = hpa.unwrap_or((replicas, replicas));
        Capacity {
            min,
            desired: replicas,
            max,
        }
    }
}

impl Kind for KubernetesSpec {
    const KEYS: &'static [&'static str] = &[
        "id",
        "clusters",
        "namespace",
        "workload",
        "active",
        "standby",
        "hpa",
        "after",
    ];
    const NESTED: &'static [(&'static str, &'static [&'static str])] =
        &[("hpa", &["min", "max", "standby_min", "standby_max"])];
    const STAGE: Option<Stage> = Some(Stage::Ready);
    const REGIONS_KEY: &'static str = "clusters";
    const CLOUD: super::Cloud = super::Cloud::Aws;
    const ROLE: super::Role = super::Role::Capacity(&KubeScaling);
}

impl Resource for KubernetesSpec {
    fn regions(&self) -> Option<&PerRegion> {
        Some(&self.clusters)
    }

    fn show(&self, plan: &Plan, region: &str) -> String {
        let n = super::scaling::normal(plan.home(), region, (self.active, self.standby));
        format!(
            "kubernetes {:<20} {}/{} in {} (normally {n})",
            self.id, self.namespace, self.workload, self.clusters[region]
        )
    }

    fn check(&self, s: &mut Scope<'_, '_, '_>) {
        s.region_values(
            (&self.id, &self.clusters),
            |v| WorkloadRef::parse(&format!("a/deployment/b@{v}")).is_some(),
            (
                "`context:NAME` or `eks:CLUSTER`",
                "name a context of the kubeconfig (KUBECONFIG), `context:us-east-1`, or an EKS cluster in the region, `eks:catalog-eks-use1` (a GKE cluster: through a context, gcloud container clusters get-credentials)",
            ),
        );
        let kind = self.kind_of();
        let probe = |ns: &str, w: &str| WorkloadRef::parse(&format!("{ns}/{w}@context:x"));
        if kind.is_none() || probe("a", &self.workload).is_none() {
            s.error(
                path!["workload"],
                format!(
                    "kubernetes `{}` workload `{}` is not `deployment/NAME`, `statefulset/NAME` or `cronjob/NAME`",
                    self.id, self.workload
                ),
                "write the workload's kind and its name, lower case: `deployment/catalog-web`",
            );
        }
        if probe(&self.namespace, "deployment/a").is_none() {
            s.error(
                path!["namespace"],
                format!(
                    "kubernetes `{}` namespace `{}` is not a DNS label",
                    self.id, self.namespace
                ),
                "a namespace is lower-case letters, digits and `-`: `catalog`",
            );
        }
        if self.active == 0 {
            s.error(
                path!["active"],
                format!("kubernetes `{}` has an active size of 0", self.id),
                "a failover would leave the target's workload at nothing; give the replicas that serve production (a CronJob: 1)",
            );
        }
        let cron_job = kind == Some(WorkloadKind::CronJob);
        if cron_job && (self.active != 1 || self.standby != 0 || self.hpa.is_some()) {
            s.error(
                path!["active"],
                format!(
                    "kubernetes `{}` is a CronJob: active = 1, standby = 0, no hpa",
                    self.id
                ),
                "a CronJob runs (1) in the active region and is suspended (0) at standby",
            );
        }
        if let Some(h) = self.hpa {
            for (key, min, max, replicas) in [
                ("min", h.min, h.max, self.active),
                ("standby_min", h.standby_min, h.standby_max, self.standby),
            ] {
                if min == 0 || min > max || (replicas > 0 && !(min..=max).contains(&replicas)) {
                    s.error(
                        path!["hpa", key],
                        format!(
                            "kubernetes `{}` hpa bounds {min}..{max} do not hold its replicas ({replicas}) or are not 1 <= min <= max",
                            self.id
                        ),
                        "the API refuses an HPA minimum of 0, and the HPA moves replicas outside its bounds back into them",
                    );
                }
            }
        }
    }

    fn shown(&self) -> Shown<'_> {
        Shown::Capacity(self)
    }

    #[cfg(any(test, feature = "testkit"))]
    fn seed(&self, w: &super::World<'_>) {
        for region in self.clusters.keys() {
            let c = super::scaling::normal(w.home, region, (self.active(), self.standby()));
            if let Some(group) = self.group_in(region) {
                let hpa = self.hpa.map(|_| (c.min, c.max));
                w.fake.add_workload(region, &group, c.desired, hpa);
            }
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.group_in(region).into_iter())
            .map(|group| format!("k8s:{region} {group}"))
            .collect()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        self.namespace = format!("{}{tag}", self.namespace);
        self.named = std::sync::OnceLock::new();
    }
}

/// A workload read as a group of `status`: its size, and its available
/// pods in service.
fn as_group(region: &str, w: &WorkloadRef, read: Workload) -> ComputeGroup {
    let size = size_of_read(&read);
    let mut notes = vec![state_of(&read)];
    if let Some(a) = &read.autoscaler {
        notes.push(format!("HPA {} {}..{}", a.name, a.min, a.max));
    }
    if w.kind == WorkloadKind::CronJob {
        notes.push(
            if read.replicas == 0 {
                "suspended"
            } else {
                "runs"
            }
            .to_string(),
        );
    }
    ComputeGroup {
        name: w.to_string(),
        region: region.to_string(),
        capacity: size,
        in_service: read.available,
        instances: read.ready,
        tags: read.marks.clone(),
        status: None,
        notes,
        target_groups: Vec::new(),
    }
}

#[async_trait]
impl Groups for KubernetesSpec {
    fn exclusive(&self) -> bool {
        self.kind_of() == Some(WorkloadKind::CronJob)
    }

    fn raised_group(&self, region: &str) -> Option<(String, String)> {
        Some((region.to_string(), self.in_region(region)?.to_string()))
    }

    fn group(&self, region: &str) -> Option<&str> {
        let named = self.named.get_or_init(|| {
            (self.clusters.iter())
                .map(|(r, c)| {
                    (
                        r.clone(),
                        format!("{}/{}@{c}", self.namespace, self.workload),
                    )
                })
                .collect()
        });
        named.get(region).map(String::as_str)
    }

    fn standby(&self) -> Capacity {
        let hpa = self.hpa.map(|h| (h.standby_min, h.standby_max));
        self.capacity(self.standby, hpa)
    }

    fn active(&self) -> Capacity {
        self.capacity(self.active, self.hpa.map(|h| (h.min, h.max)))
    }

    async fn describe(
        &self,
        clouds: &Clouds,
        region: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let Some(w) = self.in_region(region) else {
            return Ok(None);
        };
        let read = clouds.workloads.describe_workload(region, &w).await?;
        Ok(read.map(|r| as_group(region, &w, r)))
    }
}

/// The capacity role's actions on Kubernetes workloads
/// (`namespace/kind/name@cluster`).
pub struct KubeScaling;

/// The workload a group names, or an error naming `call` (checked before
/// any call: a journal or a mark handed it).
fn workload(group: &str, call: &'static str, region: &str) -> Result<WorkloadRef, CloudError> {
    WorkloadRef::parse(group).ok_or_else(|| {
        let (service, operation) = super::call_parts(call);
        CloudError::new(
            service,
            operation,
            group,
            region,
            ErrorKind::Client,
            format!("`{group}` is not `namespace/kind/name@cluster`"),
        )
    })
}

/// A workload's size as read (pure): the HPA's bounds around its
/// replicas, or its replicas thrice.
fn size_of_read(w: &Workload) -> Capacity {
    let (min, max) = (w.autoscaler.as_ref()).map_or((w.replicas, w.replicas), |a| (a.min, a.max));
    Capacity {
        min,
        desired: w.replicas,
        max,
    }
}

/// Where a workload's change stands (pure): a rollout that gave up is a
/// failure named by its condition's reason, with its message; a change
/// the controller has not seen yet is under way.
pub fn change_of(w: &Workload) -> Change {
    if let Some((reason, message)) = &w.failed {
        return Change::Failed {
            id: reason.clone(),
            reason: message.clone(),
        };
    }
    if w.observed < w.generation {
        return Change::Rolling(format!("generation {}", w.generation));
    }
    Change::Settled
}

/// A workload's state in words: its replicas available, updated and
/// ready, and why it is not available while it is not (its condition's
/// reason and message).
fn state_of(w: &Workload) -> String {
    let counts = format!(
        "{}/{} available, {} updated, {} ready",
        w.available, w.replicas, w.updated, w.ready
    );
    match &w.unavailable {
        Some((reason, message)) if w.available < w.replicas => {
            format!("{counts} ({reason}: {message})")
        }
        _ => counts,
    }
}

/// A workload as the capacity role reads it (pure): what serves is the
/// replicas both updated and available, once the controller has seen the
/// last change.
pub fn reading(w: &WorkloadRef, read: Workload) -> Reading {
    let serving = if read.observed >= read.generation {
        read.updated.min(read.available)
    } else {
        0
    };
    Reading {
        size: Size::Bounds(size_of_read(&read)),
        serving,
        change: change_of(&read),
        state: state_of(&read),
        handle: w.to_string(),
        marks: read.marks,
        ceiling: None,
        balanced_by: Vec::new(),
        targets: Vec::new(),
    }
}

#[async_trait]
impl Scaling for KubeScaling {
    fn about(&self) -> &'static About {
        &About {
            noun: "Kubernetes workload",
            unit: "replicas",
            missing_hint: "create it (kubectl apply) or fix `clusters`, `namespace` or `workload` in the plan",
            label: "workloads",
            serves_from_zero: false,
            carries_marks: true,
            max_follows: true,
            calls: ScalingCalls {
                kind: "kubernetes",
                read: "k8s:workloads.get",
                set: "k8s:workloads/scale.patch",
                mark: "k8s:workloads.patch",
                unmark: "k8s:workloads.patch",
                calls: &["k8s:workloads.get", "k8s:workloads/scale.patch"],
                waits: &["k8s:WorkloadReady"],
            },
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Bounds(planned)
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
        let w = workload(group, "k8s:workloads.get", region)?;
        let read = clouds.workloads.describe_workload(region, &w).await?;
        Ok(read.map(|r| reading(&w, r)))
    }

    /// Raising, the HPA's bounds first (so it does not scale the new
    /// replicas back), then the replicas; lowering, the replicas first.
    async fn set(
        &self,
        clouds: &Clouds,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        const CALL: &str = "k8s:workloads/scale.patch";
        let w = workload(group, CALL, region)?;
        let c = super::scaling::bounds_of(size, CALL, group, region)?;
        let api = &clouds.workloads;
        let now = (api.describe_workload(region, &w).await?).ok_or_else(|| {
            CloudError::new(
                "k8s",
                "workloads/scale.patch",
                group,
                region,
                ErrorKind::NotFound,
                "no such workload",
            )
        })?;
        let hpa = match &now.autoscaler {
            Some(a) => Some(a.name.clone()),
            None if c.min != c.desired || c.max != c.desired => {
                return Err(CloudError::new(
                    "k8s",
                    "horizontalpodautoscalers.patch",
                    group,
                    region,
                    ErrorKind::Client,
                    format!(
                        "the plan gives HPA bounds {}..{} but no HPA targets the workload",
                        c.min, c.max
                    ),
                ));
            }
            None => None,
        };
        let raising = c.desired >= now.replicas;
        if let (Some(name), true) = (&hpa, raising) {
            api.bound_autoscaler(region, &w, name, (c.min, c.max))
                .await?;
        }
        if now.replicas != c.desired {
            api.scale_workload(region, &w, c.desired).await?;
        }
        if let (Some(name), false) = (&hpa, raising) {
            api.bound_autoscaler(region, &w, name, (c.min, c.max))
                .await?;
        }
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
        let w = workload(&read.handle, "k8s:workloads.patch", region)?;
        let marks = (marks.iter())
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        clouds.workloads.annotate_workload(region, &w, &marks).await
    }

    async fn unmark(
        &self,
        clouds: &Clouds,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        let w = workload(&read.handle, "k8s:workloads.patch", region)?;
        let marks = keys.iter().map(|k| (k.clone(), None)).collect();
        clouds.workloads.annotate_workload(region, &w, &marks).await
    }

    fn manual(&self, region: &str, group: &str, size: Size) -> String {
        let Some(w) = WorkloadRef::parse(group) else {
            return format!("set {group} in {region} to {size} by hand");
        };
        let context = w.cluster.strip_prefix("context:").unwrap_or(&w.cluster);
        let n = size.serving();
        let set = match w.kind {
            WorkloadKind::CronJob => format!(
                "kubectl --context {context} -n {} patch cronjob {} -p '{{\"spec\":{{\"suspend\":{}}}}}'",
                w.namespace,
                w.name,
                n == 0
            ),
            k => format!(
                "kubectl --context {context} -n {} scale {} {} --replicas={n}",
                w.namespace,
                k.word(),
                w.name
            ),
        };
        format!(
            "{set}, then remove its drctl.dev/drill-* annotations (kubectl annotate {} {} drctl.dev/drill-run-)",
            w.kind.word(),
            w.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Autoscaler;

    fn read(replicas: u32, observed: i64, available: u32) -> Workload {
        Workload {
            replicas,
            autoscaler: None,
            generation: 2,
            observed,
            updated: replicas,
            available,
            ready: available,
            failed: None,
            unavailable: None,
            marks: BTreeMap::new(),
        }
    }

    fn w() -> WorkloadRef {
        WorkloadRef::parse("catalog/deployment/web@context:us-east-1").unwrap()
    }

    #[test]
    fn a_workload_serves_once_the_controller_saw_the_change_and_every_replica_is_available() {
        let r = reading(&w(), read(3, 1, 3));
        assert_eq!(
            (r.serving, r.change.clone()),
            (0, Change::Rolling("generation 2".into()))
        );
        let r = reading(&w(), read(3, 2, 1));
        assert!(!r.serves(Size::Bounds(Capacity {
            min: 3,
            desired: 3,
            max: 3
        })));
        let r = reading(&w(), read(3, 2, 3));
        assert!(r.serves(Size::Bounds(Capacity {
            min: 3,
            desired: 3,
            max: 3
        })));
    }

    #[test]
    fn an_hpa_bounds_the_size_and_a_rollout_that_gave_up_is_named() {
        let mut x = read(3, 2, 1);
        x.autoscaler = Some(Autoscaler {
            name: "web".into(),
            min: 3,
            max: 12,
        });
        x.failed = Some((
            "ProgressDeadlineExceeded".into(),
            "timed out progressing".into(),
        ));
        let r = reading(&w(), x);
        assert_eq!(
            r.size,
            Size::Bounds(Capacity {
                min: 3,
                desired: 3,
                max: 12
            })
        );
        assert_eq!(
            r.change,
            Change::Failed {
                id: "ProgressDeadlineExceeded".into(),
                reason: "timed out progressing".into()
            }
        );
    }

    #[test]
    fn the_by_hand_command_scales_or_suspends() {
        let s = KubeScaling.manual(
            "us-east-1",
            "catalog/deployment/web@context:us-east-1",
            Size::Bounds(Capacity {
                min: 0,
                desired: 0,
                max: 0,
            }),
        );
        assert!(
            s.starts_with(
                "kubectl --context us-east-1 -n catalog scale deployment web --replicas=0"
            ),
            "{s}"
        );
        let s = KubeScaling.manual(
            "us-east-1",
            "catalog/cronjob/j@context:us-east-1",
            Size::Bounds(Capacity {
                min: 0,
                desired: 0,
                max: 0,
            }),
        );
        assert!(
            s.contains("patch cronjob j -p '{\"spec\":{\"suspend\":true}}'"),
            "{s}"
        );
    }
}
