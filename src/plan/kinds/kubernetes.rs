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
//! (`cloud::k8s::WorkloadRef`), so a cleanup after a crash reaches it from the
//! journal alone.
//!
//! The kind is on the capacity role's port: what is its own (its table,
//! its checks, its words and the command by hand) is here; its adapter
//! (`cloud::k8s`) reads and writes the workloads, its HPA first when
//! raising, and the generic steps do the rest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::scaling::{About, Reading, Scaling};
use super::{Groups, Kind, Resource, Shown};
use crate::cloud::k8s::{CALLS, WorkloadKind, WorkloadRef};
use crate::cloud::{Capacity, Size};
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
                // Every replica available; its marks (annotations) go on
                // its name.
                let size = Size::Bounds(c);
                w.fake.add_scaled(&CALLS, region, &group, size, c.max);
                w.fake.with_scaled(CALLS.kind, region, &group, |g| {
                    (g.handle, g.status) = (group.clone(), None);
                });
            }
        }
    }

    #[cfg(any(test, feature = "testkit"))]
    fn slow_ops(&self, region: &str) -> Vec<String> {
        (self.group_in(region).into_iter())
            .map(|group| crate::cloud::fake::slow_key(CALLS.kind, region, &group))
            .collect()
    }

    fn attach_sites(&mut self, _sites: &crate::plan::sites::Sites) {}

    #[cfg(any(test, feature = "testkit"))]
    fn rename(&mut self, tag: &str, _zone: &str) {
        self.namespace = format!("{}{tag}", self.namespace);
        self.named = std::sync::OnceLock::new();
    }
}

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
}

/// The capacity role's actions on Kubernetes workloads
/// (`namespace/kind/name@cluster`).
pub struct KubeScaling;

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
            calls: CALLS,
        }
    }

    fn size_of(&self, planned: Capacity) -> Size {
        Size::Bounds(planned)
    }

    fn set_call(&self, _: &Reading) -> &'static str {
        self.about().calls.set
    }

    fn answers(&self) -> crate::plan::kinds::Answers<'_> {
        crate::plan::kinds::Answers::AtOnce
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
