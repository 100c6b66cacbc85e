//! Kubernetes adapter (the capacity role's port, [`Scaler`]) over kube-rs (`kube`, `k8s-openapi`):
//! Deployments and StatefulSets sized through their `scale` subresource,
//! the HorizontalPodAutoscaler that targets them, CronJobs suspended and
//! resumed, and drctl's marks as annotations.
//!
//! * A cluster is reached as its group name says: `context:NAME`, a context
//!   of the kubeconfig `KUBECONFIG` names (the world writes
//!   `localstack/kubeconfig`, one context per region); `eks:NAME`, an EKS
//!   cluster in the group's region, its endpoint and CA from
//!   `DescribeCluster` and its token made as `aws eks get-token` makes it
//!   ([`eks_token`]: a presigned STS `GetCallerIdentity` naming the cluster
//!   in `x-k8s-aws-id`, signed by the SDK's signer with the SDK's
//!   credentials; EKS accepts it for 15 minutes, so its client is made again
//!   after [`EKS_TOKEN_LIFE`]). A GKE cluster is reached through a context
//!   (`gcloud container clusters get-credentials`); `gke:` is refused with
//!   that hint. Clients are made on first use and kept per cluster, with
//!   bounded connect and read timeouts, so a region whose API server is gone
//!   costs one bounded failure, never a hang.
//! * Before the first read of a workload in a namespace, the adapter asks
//!   the API server what it may do there (a `SelfSubjectAccessReview` per
//!   verb the role's actions use, once per process): a missing verb is an
//!   `Auth` error naming the verb and the resource at the read, so preflight
//!   and a failover's first read refuse before anything moves, rather than
//!   half-way through a raise.
//! * Reads are retried within drctl's [`RetryPolicy`]; a patch is sent once,
//!   after the fence at the wire ([`super::wire::send_fenced`]): a merge
//!   patch of the same replicas sent twice does what it did once, and a lost
//!   answer is settled by the step's next read.
//!
//! The adapter implements the capacity role itself ([`Scaler`]): a workload
//! is a group named `namespace/kind/name@cluster`, sized by the HPA's
//! bounds around its replicas, and its answer is read straight into the
//! role's [`Reading`]. How the API server's objects map to a reading, and
//! the order of a change's writes ([`writes`]), are tested here on
//! objects of the API's shape (recorded from the world's kube-apiserver),
//! and against that API server by the emulator suite
//! (`tests/it/kubernetes.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Mutex;

use super::metered::Wire;
use super::retry::RetryPolicy;
use super::{
    Capacity, Change, CloudError, CloudSettings, ComputeGroup, ErrorKind, Reading, Scaler,
    ScalingCalls, Size, bounds_of,
};

const SERVICE: &str = "k8s";

/// The calls of `[[kubernetes]]`'s capacity role. A CronJob's suspension
/// is metered as its set too: it is the size of a CronJob.
pub const CALLS: ScalingCalls = ScalingCalls {
    kind: "kubernetes",
    read: "k8s:workloads.get",
    set: "k8s:workloads/scale.patch",
    mark: "k8s:workloads.patch",
    unmark: "k8s:workloads.patch",
    calls: &["k8s:workloads.get", "k8s:workloads/scale.patch"],
    waits: &["k8s:WorkloadReady"],
};

/// The write of an HPA's bounds (a model label).
const BOUND: &str = "k8s:horizontalpodautoscalers.patch";
/// The prefix of drctl's marks as annotations: a tag `drctl:drill-run` is
/// the annotation `drctl.dev/drill-run` (an annotation's key takes no `:`).
pub const MARK_PREFIX: &str = "drctl.dev/";
/// The field manager drctl's patches are recorded under.
pub const FIELD_MANAGER: &str = "drctl";
/// How long a connection to an API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an answer may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client made with an EKS token is used: EKS accepts a token
/// for 15 minutes from its signing (`aws eks get-token` says 14).
pub const EKS_TOKEN_LIFE: Duration = Duration::from_secs(10 * 60);
/// How long the presigned URL in an EKS token says it is valid (as `aws
/// eks get-token` signs it).
const EKS_PRESIGN: Duration = Duration::from_secs(60);

/// What kind of Kubernetes workload a `[[kubernetes]]` resource sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    /// `apps/v1` Deployment: sized by its replicas (its `scale`).
    Deployment,
    /// `apps/v1` StatefulSet: sized by its replicas (its `scale`).
    StatefulSet,
    /// `batch/v1` CronJob: one when it runs, none when suspended.
    CronJob,
}

impl WorkloadKind {
    /// The word a plan and a group name use (`deployment`).
    pub fn word(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::StatefulSet => "statefulset",
            Self::CronJob => "cronjob",
        }
    }

    /// The kind a plan's word names.
    pub fn from_word(word: &str) -> Option<Self> {
        [Self::Deployment, Self::StatefulSet, Self::CronJob]
            .into_iter()
            .find(|k| k.word() == word)
    }

    /// The API's kind (`Deployment`), as an HPA's `scaleTargetRef` names it.
    pub fn api_kind(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::CronJob => "CronJob",
        }
    }
}

/// One workload in one cluster: what a `[[kubernetes]]` group name says
/// (`namespace/kind/name@cluster`), checked before any call.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadRef {
    /// The cluster: `context:NAME` (a kubeconfig context) or `eks:NAME` (an
    /// EKS cluster in the group's region).
    pub cluster: String,
    /// Its namespace.
    pub namespace: String,
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: String,
}

impl WorkloadRef {
    /// Reads `namespace/kind/name@cluster` (`None`: not of that form, or a
    /// name Kubernetes would refuse: namespaces and workload names are DNS
    /// labels or subdomains of at most 253 characters).
    pub fn parse(group: &str) -> Option<Self> {
        let (path, cluster) = group.rsplit_once('@')?;
        let mut it = path.split('/');
        let (namespace, kind, name) = (it.next()?, it.next()?, it.next()?);
        let dns = |s: &str| {
            !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
                && !s.starts_with(['-', '.'])
                && !s.ends_with(['-', '.'])
        };
        let cluster_ok = match cluster.split_once(':') {
            Some(("context" | "eks", rest)) => !rest.is_empty(),
            _ => false,
        };
        if it.next().is_some() || !dns(namespace) || !dns(name) || !cluster_ok {
            return None;
        }
        Some(Self {
            cluster: cluster.to_string(),
            namespace: namespace.to_string(),
            kind: WorkloadKind::from_word(kind)?,
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}@{}",
            self.namespace,
            self.kind.word(),
            self.name,
            self.cluster
        )
    }
}

/// A HorizontalPodAutoscaler's bounds, on the workload it scales.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscaler {
    /// Its name.
    pub name: String,
    /// `minReplicas` (1 when unset, as the API defaults it).
    pub min: u32,
    /// `maxReplicas`.
    pub max: u32,
}

/// A workload as read from its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// `spec.replicas` (a CronJob: 1 when it runs, 0 when suspended).
    pub replicas: u32,
    /// The HPA that scales it, when one does.
    pub autoscaler: Option<Autoscaler>,
    /// `metadata.generation`.
    pub generation: i64,
    /// `status.observedGeneration` (0 when the controller has not seen it).
    pub observed: i64,
    /// Pods of the current template (`status.updatedReplicas`).
    pub updated: u32,
    /// Pods available (`status.availableReplicas`: ready for
    /// `minReadySeconds`).
    pub available: u32,
    /// Pods ready (`status.readyReplicas`).
    pub ready: u32,
    /// A rollout that gave up: the condition's reason and message
    /// (`ProgressDeadlineExceeded`).
    pub failed: Option<(String, String)>,
    /// Why it is not available, while it is not: its `Available`
    /// condition's reason and message (`MinimumReplicasUnavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<(String, String)>,
    /// Its annotations that are drctl's marks, as drctl's tags name them
    /// (`drctl:drill-run`).
    pub marks: std::collections::BTreeMap<String, String>,
}

/// An EKS cluster's bearer token, made as `aws eks get-token` makes it
/// (pure, given the credentials and the time): `k8s-aws-v1.` and the
/// unpadded URL-safe base64 of a presigned STS `GetCallerIdentity` URL of
/// `region`, whose signed headers include `x-k8s-aws-id: cluster`. The API
/// server's authenticator calls that URL and maps the identity STS answers.
pub fn eks_token(
    credentials: aws_sdk_sts::config::Credentials,
    region: &str,
    cluster: &str,
    at: std::time::SystemTime,
) -> Result<String, String> {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use base64::Engine;
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(EKS_PRESIGN);
    let identity = credentials.into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = format!("sts.{region}.amazonaws.com");
    let url = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut request = ::http::Request::builder()
        .uri(&url)
        .body(())
        .map_err(|e| e.to_string())?;
    instructions.apply_to_request_http1x(&mut request);
    let signed = request.uri().to_string();
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signed)
    ))
}

/// The annotation a drctl tag is written as (`drctl:drill-run` ->
/// `drctl.dev/drill-run`).
pub fn annotation_of(tag: &str) -> String {
    format!("{MARK_PREFIX}{}", tag.strip_prefix("drctl:").unwrap_or(tag))
}

/// The drctl tag an annotation stands for, when it is one of drctl's.
pub fn tag_of(annotation: &str) -> Option<String> {
    (annotation.strip_prefix(MARK_PREFIX)).map(|rest| format!("drctl:{rest}"))
}

/// The RBAC resource of a workload kind, with its API group.
fn resource_of(kind: WorkloadKind) -> (&'static str, &'static str) {
    match kind {
        WorkloadKind::Deployment => ("apps", "deployments"),
        WorkloadKind::StatefulSet => ("apps", "statefulsets"),
        WorkloadKind::CronJob => ("batch", "cronjobs"),
    }
}

/// What the role's actions do to a workload of `kind`, as RBAC names it:
/// `(verb, group, resource, subresource)`. The Role in
/// `deploy/kubernetes/drctl-role.yaml` grants exactly these.
pub fn needs(kind: WorkloadKind) -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let (group, resource) = resource_of(kind);
    let mut out = vec![("get", group, resource, ""), ("patch", group, resource, "")];
    if kind != WorkloadKind::CronJob {
        out.push(("patch", group, resource, "scale"));
        out.push(("list", "autoscaling", "horizontalpodautoscalers", ""));
        out.push(("patch", "autoscaling", "horizontalpodautoscalers", ""));
    }
    out
}

fn err(
    operation: &'static str,
    w: &WorkloadRef,
    region: &str,
    kind: ErrorKind,
    message: impl Into<String>,
) -> CloudError {
    CloudError::new(SERVICE, operation, w.to_string(), region, kind, message)
}

/// A kube-rs error as drctl's: the API server's status (its code, reason
/// and message), or the transport's failure.
fn kube_error(
    operation: &'static str,
    w: &WorkloadRef,
    region: &str,
    e: kube::Error,
) -> CloudError {
    match e {
        kube::Error::Api(status) => {
            let kind = match status.code {
                404 => ErrorKind::NotFound,
                401 | 403 => ErrorKind::Auth,
                409 => ErrorKind::Precondition,
                429 => ErrorKind::Throttled,
                500..=599 => ErrorKind::Server,
                _ => ErrorKind::Client,
            };
            let e = err(operation, w, region, kind, status.message.clone());
            if status.reason.is_empty() {
                e
            } else {
                e.with_code(status.reason.clone())
            }
        }
        // No answer: said in the project's words (`transport_words`), the
        // client's own account kept for the logs, as the AWS adapters do.
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            let mut sources = vec![e.to_string()];
            let mut cur = std::error::Error::source(&e);
            while let Some(s) = cur {
                sources.push(s.to_string());
                cur = s.source();
            }
            let words = super::error::transport_words(false, &sources);
            tracing::info!(detail = %sources.join(": "), "{words}");
            err(operation, w, region, ErrorKind::Connection, words)
        }
        other => err(operation, w, region, ErrorKind::Client, other.to_string()),
    }
}

/// A count from the API's `i32` (a negative one is none).
fn count(n: Option<i32>) -> u32 {
    n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
}

/// drctl's marks among `meta`'s annotations, as its tags name them.
fn marks_of(meta: &ObjectMeta) -> BTreeMap<String, String> {
    (meta.annotations.iter().flatten())
        .filter_map(|(k, v)| Some((tag_of(k)?, v.clone())))
        .collect()
}

/// A Deployment as read (pure; tested on recorded answers): its replicas
/// (1 when unset, as the API defaults them), how far its controller has
/// rolled them out, and a rollout that gave up (`Progressing` false with
/// `ProgressDeadlineExceeded`).
pub fn deployment_of(d: &Deployment) -> Workload {
    let status = d.status.clone().unwrap_or_default();
    let condition = |kind: &str| {
        (status.conditions.iter().flatten())
            .find(|c| c.type_.as_deref() == Some(kind) && c.status.as_deref() == Some("False"))
            .map(|c| {
                (
                    c.reason.clone().unwrap_or_else(|| format!("{kind}=False")),
                    c.message.clone().unwrap_or_default(),
                )
            })
    };
    Workload {
        replicas: count(Some(d.spec.replicas.unwrap_or(1))),
        autoscaler: None,
        generation: d.metadata.generation.unwrap_or(0),
        observed: status.observed_generation.unwrap_or(0),
        updated: count(status.updated_replicas),
        available: count(status.available_replicas),
        ready: count(status.ready_replicas),
        failed: condition("Progressing"),
        unavailable: condition("Available"),
        marks: marks_of(&d.metadata),
    }
}

/// A StatefulSet as read (pure): as a Deployment, without a progress
/// deadline (a StatefulSet has none: pods that never become ready are
/// named by the step's wait).
pub fn stateful_set_of(s: &StatefulSet) -> Workload {
    let status = s.status.clone().unwrap_or_default();
    Workload {
        replicas: count(Some(s.spec.replicas.unwrap_or(1))),
        autoscaler: None,
        generation: s.metadata.generation.unwrap_or(0),
        observed: status.observed_generation.unwrap_or(0),
        updated: count(status.updated_replicas),
        available: count(status.available_replicas),
        ready: count(status.ready_replicas),
        failed: None,
        unavailable: None,
        marks: marks_of(&s.metadata),
    }
}

/// A CronJob as read (pure): one when it runs, none when suspended; it
/// serves what it is set to at once (its jobs start on their schedule).
pub fn cron_job_of(c: &CronJob) -> Workload {
    let on = u32::from(!c.spec.suspend.unwrap_or(false));
    Workload {
        replicas: on,
        autoscaler: None,
        generation: 0,
        observed: 0,
        updated: on,
        available: on,
        ready: on,
        failed: None,
        unavailable: None,
        marks: marks_of(&c.metadata),
    }
}

/// The HPA among `hpas` that scales `w` (pure): its `scaleTargetRef`
/// names the workload's kind and name.
pub fn autoscaler_of(hpas: &[HorizontalPodAutoscaler], w: &WorkloadRef) -> Option<Autoscaler> {
    hpas.iter().find_map(|h| -> Option<Autoscaler> {
        let spec = &h.spec;
        let target = &spec.scale_target_ref;
        (target.kind == w.kind.api_kind() && target.name == w.name).then(|| Autoscaler {
            name: h.metadata.name.clone().unwrap_or_default(),
            min: count(Some(spec.min_replicas.unwrap_or(1))),
            max: count(Some(spec.max_replicas)),
        })
    })
}

/// One call of the adapter: its operation (as the meter and the fence
/// name it, without the service), the workload and its region.
#[derive(Clone, Copy)]
struct Call<'a> {
    op: &'static str,
    w: &'a WorkloadRef,
    region: &'a str,
}

/// The capacity role's port ([`Scaler`]) over kube-rs.
pub struct Kube {
    kubeconfig: Option<PathBuf>,
    retry: RetryPolicy,
    /// The AWS SDK, for an EKS cluster's endpoint and token.
    aws: Option<super::aws::Sdk>,
    /// Clients per cluster, with when each must be made again (a token's).
    clients: Mutex<HashMap<String, (kube::Client, Option<std::time::Instant>)>>,
    /// The namespaces (per cluster and kind) whose permissions were
    /// reviewed and found whole.
    allowed: Mutex<HashSet<(String, String, WorkloadKind)>>,
}

impl Kube {
    /// Builds the adapter; nothing is read until the first call. `aws`:
    /// the SDK an `eks:` cluster is described and its token signed with.
    pub fn new(settings: &CloudSettings, aws: Option<super::aws::Sdk>) -> Self {
        // kube-rs builds its TLS from rustls's process default: ring's, as
        // its `ring` feature is chosen (an error means one is installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            kubeconfig: settings.kubeconfig.clone(),
            retry: settings.retry,
            aws,
            clients: Mutex::new(HashMap::new()),
            allowed: Mutex::new(HashSet::new()),
        }
    }

    async fn client(
        &self,
        op: &'static str,
        w: &WorkloadRef,
        region: &str,
    ) -> Result<kube::Client, CloudError> {
        let mut clients = self.clients.lock().await;
        let now = std::time::Instant::now();
        if let Some((c, until)) = clients.get(&w.cluster)
            && until.is_none_or(|t| now < t)
        {
            return Ok(c.clone());
        }
        let fail = |m: String| err(op, w, region, ErrorKind::Client, m);
        let (kubeconfig, context, until) = match w.cluster.split_once(':') {
            Some(("context", name)) => {
                let read = match &self.kubeconfig {
                    Some(path) => Kubeconfig::read_from(path),
                    None => Kubeconfig::read(),
                };
                let kubeconfig = read.map_err(|e| {
                    let path = (self.kubeconfig.as_ref())
                        .map_or("KUBECONFIG or ~/.kube/config".into(), |p| {
                            p.display().to_string()
                        });
                    fail(format!("cannot read the kubeconfig ({path}): {e}"))
                })?;
                (kubeconfig, name.to_string(), None)
            }
            Some(("eks", name)) => {
                let kubeconfig = self.eks(Call { op, w, region }, name).await?;
                (kubeconfig, name.to_string(), Some(now + EKS_TOKEN_LIFE))
            }
            _ => {
                return Err(fail(format!(
                    "cluster `{}`: reach a GKE cluster through a kubeconfig context \
                     (gcloud container clusters get-credentials), named `context:NAME`",
                    w.cluster
                ))
                .with_code("UnsupportedCluster"));
            }
        };
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| fail(format!("kubeconfig context `{context}`: {e}")))?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        config.write_timeout = Some(READ_TIMEOUT);
        let client = kube::Client::try_from(config).map_err(|e| kube_error(op, w, region, e))?;
        clients.insert(w.cluster.clone(), (client.clone(), until));
        Ok(client)
    }

    /// A kubeconfig of one context, `name`, for EKS cluster `name` in the
    /// call's region: its endpoint and CA as `DescribeCluster` answers
    /// them, and a token ([`eks_token`]) of the SDK's credentials.
    async fn eks(&self, call: Call<'_>, name: &str) -> Result<Kubeconfig, CloudError> {
        use kube::config::{AuthInfo, Cluster, Context, NamedAuthInfo, NamedCluster, NamedContext};
        let Call { w, region, .. } = call;
        let fail = |kind, m: String| {
            CloudError::new("eks", "DescribeCluster", w.to_string(), region, kind, m)
        };
        let sdk =
            (self.aws.as_ref()).ok_or_else(|| fail(ErrorKind::Client, "no AWS SDK".into()))?;
        let answer = (sdk.eks(region).describe_cluster().name(name).send().await)
            .map_err(|e| super::aws::Call::new("eks", "DescribeCluster", name, region).sdk(e))?;
        let cluster = answer
            .cluster()
            .ok_or_else(|| fail(ErrorKind::NotFound, format!("no cluster {name}")))?;
        let endpoint = (cluster.endpoint()).ok_or_else(|| {
            fail(
                ErrorKind::Client,
                format!(
                    "cluster {name} has no endpoint yet ({:?})",
                    cluster.status()
                ),
            )
        })?;
        let ca = (cluster.certificate_authority()).and_then(|c| c.data());
        let credentials = match sdk.base().credentials_provider() {
            Some(p) => {
                use aws_sdk_sts::config::ProvideCredentials;
                (p.provide_credentials().await).map_err(|e| fail(ErrorKind::Auth, e.to_string()))?
            }
            None => return Err(fail(ErrorKind::Auth, "no AWS credentials".into())),
        };
        let token =
            eks_token(credentials, region, name, std::time::SystemTime::now()).map_err(|e| {
                fail(
                    ErrorKind::Auth,
                    format!("cannot sign the cluster's token: {e}"),
                )
            })?;
        Ok(Kubeconfig {
            clusters: vec![NamedCluster {
                name: name.to_string(),
                cluster: Some(Cluster {
                    server: Some(endpoint.to_string()),
                    certificate_authority_data: ca.map(str::to_string),
                    ..Cluster::default()
                }),
                ..NamedCluster::default()
            }],
            auth_infos: vec![NamedAuthInfo {
                name: name.to_string(),
                auth_info: Some(AuthInfo {
                    token: Some(token.into()),
                    ..AuthInfo::default()
                }),
                ..NamedAuthInfo::default()
            }],
            contexts: vec![NamedContext {
                name: name.to_string(),
                context: Some(Context {
                    cluster: name.to_string(),
                    user: Some(name.to_string()),
                    ..Context::default()
                }),
                ..NamedContext::default()
            }],
            current_context: Some(name.to_string()),
            ..Kubeconfig::default()
        })
    }

    /// Asks the API server whether drctl may do all the role's actions on
    /// workloads of `w`'s kind in its namespace ([`needs`]); once per
    /// process and namespace when they are all allowed.
    async fn review(
        &self,
        client: &kube::Client,
        w: &WorkloadRef,
        region: &str,
    ) -> Result<(), CloudError> {
        const OP: &str = "selfsubjectaccessreviews.create";
        let key = (w.cluster.clone(), w.namespace.clone(), w.kind);
        if self.allowed.lock().await.contains(&key) {
            return Ok(());
        }
        let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
        for (verb, group, resource, subresource) in needs(w.kind) {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        namespace: Some(w.namespace.clone()),
                        verb: Some(verb.into()),
                        group: Some(group.into()),
                        resource: Some(resource.into()),
                        subresource: (!subresource.is_empty()).then(|| subresource.into()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let answer = self
                .retry
                .run(|| async {
                    (api.create(&PostParams::default(), &review).await)
                        .map_err(|e| kube_error(OP, w, region, e))
                })
                .await?;
            if !answer.status.is_some_and(|s| s.allowed) {
                let what = match subresource {
                    "" => resource.to_string(),
                    sub => format!("{resource}/{sub}"),
                };
                let group = if group.is_empty() { "core" } else { group };
                return Err(err(
                    OP,
                    w,
                    region,
                    ErrorKind::Auth,
                    format!(
                        "drctl may not `{verb}` {what} (API group {group}) in namespace `{}`: \
                         bind deploy/kubernetes/drctl-role.yaml's Role to drctl's user there",
                        w.namespace
                    ),
                )
                .with_code("Forbidden"));
            }
        }
        self.allowed.lock().await.insert(key);
        Ok(())
    }

    async fn fetch(&self, region: &str, w: &WorkloadRef) -> Result<Option<Workload>, CloudError> {
        const OP: &str = "workloads.get";
        let client = self.client(OP, w, region).await?;
        self.review(&client, w, region).await?;
        let fail = |e| kube_error(OP, w, region, e);
        let ns = w.namespace.as_str();
        let mut read = match w.kind {
            WorkloadKind::Deployment => (Api::<Deployment>::namespaced(client.clone(), ns)
                .get_opt(&w.name)
                .await
                .map_err(fail)?)
            .map(|d| deployment_of(&d)),
            WorkloadKind::StatefulSet => (Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get_opt(&w.name)
                .await
                .map_err(fail)?)
            .map(|s| stateful_set_of(&s)),
            WorkloadKind::CronJob => (Api::<CronJob>::namespaced(client.clone(), ns)
                .get_opt(&w.name)
                .await
                .map_err(fail)?)
            .map(|c| cron_job_of(&c)),
        };
        if let Some(read) = read.as_mut().filter(|_| w.kind != WorkloadKind::CronJob) {
            let hpas = Api::<HorizontalPodAutoscaler>::namespaced(client, ns)
                .list(&ListParams::default())
                .await
                .map_err(|e| kube_error("horizontalpodautoscalers.list", w, region, e))?;
            read.autoscaler = autoscaler_of(&hpas.items, w);
        }
        Ok(read)
    }

    /// Sends one merge patch of `body` to the workload of `call` (its
    /// `scale` when `scale`), after the fence.
    async fn patch_workload(
        &self,
        call: Call<'_>,
        body: serde_json::Value,
        scale: bool,
    ) -> Result<(), CloudError> {
        let client = self.client(call.op, call.w, call.region).await?;
        let (ns, name) = (call.w.namespace.as_str(), call.w.name.as_str());
        match call.w.kind {
            WorkloadKind::Deployment => {
                let api = Api::<Deployment>::namespaced(client, ns);
                self.patch(call, api, name, body, scale).await
            }
            WorkloadKind::StatefulSet => {
                let api = Api::<StatefulSet>::namespaced(client, ns);
                self.patch(call, api, name, body, scale).await
            }
            WorkloadKind::CronJob => {
                let api = Api::<CronJob>::namespaced(client, ns);
                self.patch(call, api, name, body, scale).await
            }
        }
    }

    /// Sends one merge patch of `body` to `api`'s object `name` (its
    /// `scale` when `scale`), after the fence.
    async fn patch<K>(
        &self,
        Call { op, w, region }: Call<'_>,
        api: Api<K>,
        name: &str,
        body: serde_json::Value,
        scale: bool,
    ) -> Result<(), CloudError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let label = format!("{SERVICE}:{op}");
        super::wire::send_fenced(
            &label,
            async {
                let patch = Patch::Merge(&body);
                if scale {
                    api.patch_scale(name, &params, &patch).await.map(drop)
                } else {
                    api.patch(name, &params, &patch).await.map(drop)
                }
                .map_err(|e| kube_error(op, w, region, e))
            },
            |why| err(op, w, region, ErrorKind::Fenced, why),
        )
        .await
    }
}

impl Kube {
    /// Reads workload `w` and the HPA that targets it, through `wire`.
    async fn get(
        &self,
        wire: &Wire,
        region: &str,
        w: &WorkloadRef,
    ) -> Result<Option<Workload>, CloudError> {
        let read = || self.retry.run(|| self.fetch(region, w));
        wire.call(CALLS.read, region, read).await
    }

    /// Sets its replicas through its `scale` subresource (a CronJob:
    /// `spec.suspend`, false for one, true for none).
    async fn scale(&self, region: &str, w: &WorkloadRef, replicas: u32) -> Result<(), CloudError> {
        let (op, body, scale) = match w.kind {
            WorkloadKind::CronJob => {
                let body = json!({ "spec": { "suspend": replicas == 0 } });
                ("cronjobs.patch", body, false)
            }
            _ => {
                let body = json!({ "spec": { "replicas": replicas } });
                ("workloads/scale.patch", body, true)
            }
        };
        self.patch_workload(Call { op, w, region }, body, scale)
            .await
    }

    /// Sets the bounds of the HPA named `autoscaler` in `w`'s namespace.
    async fn bound_autoscaler(
        &self,
        region: &str,
        w: &WorkloadRef,
        autoscaler: &str,
        (min, max): (u32, u32),
    ) -> Result<(), CloudError> {
        const OP: &str = "horizontalpodautoscalers.patch";
        let client = self.client(OP, w, region).await?;
        let api = Api::<HorizontalPodAutoscaler>::namespaced(client, &w.namespace);
        let body =
            json!({ "spec": { "minReplicas": min.max(1), "maxReplicas": max.max(min).max(1) } });
        self.patch(Call { op: OP, w, region }, api, autoscaler, body, false)
            .await
    }

    /// Puts drctl's marks on the workload as annotations (`Some`) or takes
    /// them off (`None`), named as drctl's tags name them.
    async fn annotate(
        &self,
        wire: &Wire,
        region: &str,
        handle: &str,
        marks: BTreeMap<String, Option<String>>,
    ) -> Result<(), CloudError> {
        const OP: &str = "workloads.patch";
        let w = workload(handle, CALLS.mark, region)?;
        let annotations: serde_json::Map<String, serde_json::Value> = (marks.iter())
            .map(|(k, v)| {
                (
                    annotation_of(k),
                    v.clone().map_or(serde_json::Value::Null, Into::into),
                )
            })
            .collect();
        let body = json!({ "metadata": { "annotations": annotations } });
        let call = Call {
            op: OP,
            w: &w,
            region,
        };
        let patch = || self.patch_workload(call, body.clone(), false);
        wire.call(CALLS.mark, region, patch).await
    }
}

/// The workload a group names, or an error naming `call` (checked before
/// any call: a journal or a mark handed it).
fn workload(group: &str, call: &'static str, region: &str) -> Result<WorkloadRef, CloudError> {
    WorkloadRef::parse(group).ok_or_else(|| {
        let why = format!("`{group}` is not `namespace/kind/name@cluster`");
        CloudError::of_call(call, group, region, ErrorKind::Client, why)
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

/// A workload read as a group of `status`: its size, its available pods
/// in service, its state, its HPA and a CronJob's suspension as notes.
pub fn as_group(region: &str, w: &WorkloadRef, read: Workload) -> ComputeGroup {
    let size = size_of_read(&read);
    let mut notes = vec![state_of(&read)];
    if let Some(a) = &read.autoscaler {
        notes.push(format!("HPA {} {}..{}", a.name, a.min, a.max));
    }
    if w.kind == WorkloadKind::CronJob {
        let runs = if read.replicas == 0 {
            "suspended"
        } else {
            "runs"
        };
        notes.push(runs.to_string());
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

/// One write of a change of a workload's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// The bounds of the HPA named `hpa`.
    Bounds {
        /// The HPA's name.
        hpa: String,
        /// Its `minReplicas`.
        min: u32,
        /// Its `maxReplicas`.
        max: u32,
    },
    /// Its replicas (a CronJob: 1 resumes it, 0 suspends it).
    Replicas(u32),
}

/// The writes that take workload `now` to `size`, in order (pure), or why
/// none can. Raising, the HPA's bounds first, so that the HPA does not
/// scale the new replicas back to its old maximum; lowering, the replicas
/// first, then the bounds (at no replicas the HPA is idle, and it never
/// scales drctl's write back up to its old minimum in between). What is
/// already as asked is not written. Bounds the plan gives where no HPA
/// targets the workload are refused before any write.
pub fn writes(now: &Workload, size: Capacity) -> Result<Vec<Write>, String> {
    let bounds = match &now.autoscaler {
        Some(a) if (a.min, a.max) == (size.min, size.max) => None,
        Some(a) => Some(Write::Bounds {
            hpa: a.name.clone(),
            min: size.min,
            max: size.max,
        }),
        None if size.min != size.desired || size.max != size.desired => {
            return Err(format!(
                "the plan gives HPA bounds {}..{} but no HPA targets the workload",
                size.min, size.max
            ));
        }
        None => None,
    };
    let replicas = (now.replicas != size.desired).then_some(Write::Replicas(size.desired));
    let order = if size.desired >= now.replicas {
        [bounds, replicas]
    } else {
        [replicas, bounds]
    };
    Ok(order.into_iter().flatten().collect())
}

/// The capacity role over Kubernetes: workloads named
/// `namespace/kind/name@cluster`, sized by their replicas and their HPA's
/// bounds, marked with annotations.
#[async_trait]
impl Scaler for Kube {
    fn calls(&self) -> &'static ScalingCalls {
        &CALLS
    }

    async fn read(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<Reading>, CloudError> {
        let w = workload(group, CALLS.read, region)?;
        Ok(self.get(wire, region, &w).await?.map(|r| reading(&w, r)))
    }

    async fn describe(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
    ) -> Result<Option<ComputeGroup>, CloudError> {
        let w = workload(group, CALLS.read, region)?;
        let read = self.get(wire, region, &w).await?;
        Ok(read.map(|r| as_group(region, &w, r)))
    }

    async fn set(
        &self,
        wire: &Wire,
        region: &str,
        group: &str,
        size: Size,
        _key: &str,
    ) -> Result<Option<String>, CloudError> {
        let w = workload(group, CALLS.set, region)?;
        let c = bounds_of(size, CALLS.set, group, region)?;
        let now = (self.get(wire, region, &w).await?).ok_or_else(|| {
            let kind = ErrorKind::NotFound;
            CloudError::of_call(CALLS.set, group, region, kind, "no such workload")
        })?;
        let writes = writes(&now, c)
            .map_err(|why| CloudError::of_call(BOUND, group, region, ErrorKind::Client, why))?;
        for write in writes {
            match write {
                Write::Bounds { hpa, min, max } => {
                    let bound = || self.bound_autoscaler(region, &w, &hpa, (min, max));
                    wire.call(BOUND, region, bound).await?;
                }
                Write::Replicas(n) => {
                    wire.call(CALLS.set, region, || self.scale(region, &w, n))
                        .await?;
                }
            }
        }
        Ok(None)
    }

    async fn mark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        marks: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let marks = (marks.iter())
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        self.annotate(wire, region, &read.handle, marks).await
    }

    async fn unmark(
        &self,
        wire: &Wire,
        region: &str,
        read: &Reading,
        keys: &[String],
    ) -> Result<(), CloudError> {
        let marks = keys.iter().map(|k| (k.clone(), None)).collect();
        self.annotate(wire, region, &read.handle, marks).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(s: &str) -> WorkloadRef {
        WorkloadRef::parse(s).unwrap()
    }

    /// A Deployment as the API server answered it (recorded from the
    /// world's kube-apiserver v1.37.2) while its rollout gave up.
    const STUCK: &str = r#"{
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "catalog-web", "namespace": "catalog", "generation": 3,
        "annotations": {"drctl.dev/drill-run": "r-1", "deployment.kubernetes.io/revision": "1"}},
      "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web"}]}}},
      "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 1,
        "availableReplicas": 1, "unavailableReplicas": 2,
        "conditions": [
          {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."},
          {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"catalog-web-5d8f\" has timed out progressing."}]}
    }"#;

    #[test]
    fn a_deployment_whose_rollout_gave_up_is_read_with_its_reason_and_message() {
        let d: Deployment = serde_json::from_str(STUCK).unwrap();
        let w = deployment_of(&d);
        assert_eq!((w.replicas, w.generation, w.observed), (3, 3, 3));
        assert_eq!((w.updated, w.available, w.ready), (3, 1, 1));
        let (reason, message) = w.failed.unwrap();
        assert_eq!(reason, "ProgressDeadlineExceeded");
        assert!(message.contains("timed out progressing"), "{message}");
        assert_eq!(
            w.marks.get("drctl:drill-run").map(String::as_str),
            Some("r-1")
        );
        assert_eq!(w.marks.len(), 1, "only drctl's annotations are marks");
        let (reason, _) = w.unavailable.unwrap();
        assert_eq!(reason, "MinimumReplicasUnavailable");
    }

    #[test]
    fn a_deployment_without_replicas_or_status_reads_as_the_api_defaults_it() {
        let d: Deployment = serde_json::from_str(
            r#"{"metadata": {"name": "w", "generation": 1}, "spec": {"selector": {}, "template": {}}}"#,
        )
        .unwrap();
        let w = deployment_of(&d);
        assert_eq!(
            (w.replicas, w.observed, w.available, w.failed),
            (1, 0, 0, None)
        );
    }

    #[test]
    fn a_suspended_cron_job_is_none_and_a_running_one_is_one() {
        let c = |suspend: &str| -> CronJob {
            serde_json::from_str(&format!(
                r#"{{"metadata": {{"name": "j"}}, "spec": {{"schedule": "*/5 * * * *", "suspend": {suspend},
                   "jobTemplate": {{}}}}}}"#
            ))
            .unwrap()
        };
        assert_eq!(cron_job_of(&c("true")).replicas, 0);
        assert_eq!(cron_job_of(&c("false")).available, 1);
    }

    #[test]
    fn the_autoscaler_is_the_one_whose_target_is_the_workload() {
        let hpas: Vec<HorizontalPodAutoscaler> = serde_json::from_str(
            r#"[{"metadata": {"name": "other"}, "spec": {"maxReplicas": 4,
                  "scaleTargetRef": {"kind": "Deployment", "name": "other-web"}}},
                {"metadata": {"name": "web"}, "spec": {"maxReplicas": 12,
                  "scaleTargetRef": {"kind": "Deployment", "name": "catalog-web", "apiVersion": "apps/v1"}}}]"#,
        )
        .unwrap();
        let w = group("catalog/deployment/catalog-web@context:us-east-1");
        let a = autoscaler_of(&hpas, &w).unwrap();
        assert_eq!((a.name.as_str(), a.min, a.max), ("web", 1, 12));
        let s = group("catalog/statefulset/catalog-web@context:us-east-1");
        assert_eq!(
            autoscaler_of(&hpas, &s),
            None,
            "a StatefulSet of the same name is not it"
        );
    }

    #[test]
    fn marks_and_annotations_map_both_ways() {
        assert_eq!(annotation_of("drctl:drill-run"), "drctl.dev/drill-run");
        assert_eq!(
            tag_of("drctl.dev/drill-run").as_deref(),
            Some("drctl:drill-run")
        );
        assert_eq!(tag_of("app.kubernetes.io/name"), None);
    }

    #[test]
    fn a_group_name_is_checked_before_any_call() {
        let w = group("catalog/statefulset/cache@context:us-east-1");
        assert_eq!(
            (w.kind, w.name.as_str()),
            (WorkloadKind::StatefulSet, "cache")
        );
        assert_eq!(w.to_string(), "catalog/statefulset/cache@context:us-east-1");
        for bad in [
            "catalog/deployment/web",
            "catalog/pod/web@context:x",
            "Catalog/deployment/web@context:x",
            "catalog/deployment/web@kubeconfig:x",
            "catalog/deployment/web@gke:p/l/c",
            "catalog/deployment/web/extra@context:x",
            "catalog/deployment/-web@context:x",
            "catalog/deployment/web@context:",
        ] {
            assert_eq!(WorkloadRef::parse(bad), None, "{bad}");
        }
    }

    /// The token as `aws eks get-token` makes it: the prefix, then a
    /// presigned `GetCallerIdentity` of the region's STS that signs the
    /// cluster's name in `x-k8s-aws-id`, valid 60 s, at the time given.
    #[test]
    fn an_eks_token_is_a_presigned_get_caller_identity_naming_the_cluster() {
        use base64::Engine;
        let credentials =
            aws_sdk_sts::config::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let token = eks_token(credentials.clone(), "us-east-1", "catalog-eks-use1", at).unwrap();
        let b64 = token.strip_prefix("k8s-aws-v1.").expect("the prefix");
        assert!(
            !b64.contains('=') && !b64.contains('+') && !b64.contains('/'),
            "{b64}"
        );
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap();
        let url = String::from_utf8(url).unwrap();
        assert!(
            url.starts_with(
                "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Fus-east-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20261130T005320Z",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        // Signed: another cluster's name is another signature.
        let other = eks_token(credentials, "us-east-1", "other", at).unwrap();
        assert_ne!(token, other);
    }

    #[test]
    fn the_rbac_a_deployment_needs_is_get_patch_scale_and_its_hpa() {
        let n = needs(WorkloadKind::Deployment);
        assert!(n.contains(&("patch", "apps", "deployments", "scale")));
        assert!(n.contains(&("list", "autoscaling", "horizontalpodautoscalers", "")));
        let c = needs(WorkloadKind::CronJob);
        assert_eq!(
            c,
            vec![
                ("get", "batch", "cronjobs", ""),
                ("patch", "batch", "cronjobs", "")
            ]
        );
    }

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

    fn web() -> WorkloadRef {
        group("catalog/deployment/web@context:us-east-1")
    }

    fn bounds(min: u32, desired: u32, max: u32) -> Capacity {
        Capacity { min, desired, max }
    }

    fn with_hpa(mut w: Workload, min: u32, max: u32) -> Workload {
        w.autoscaler = Some(Autoscaler {
            name: "web".into(),
            min,
            max,
        });
        w
    }

    #[test]
    fn a_workload_serves_once_the_controller_saw_the_change_and_every_replica_is_available() {
        let r = reading(&web(), read(3, 1, 3));
        assert_eq!(
            (r.serving, r.change.clone()),
            (0, Change::Rolling("generation 2".into()))
        );
        let r = reading(&web(), read(3, 2, 1));
        assert!(!r.serves(Size::Bounds(bounds(3, 3, 3))));
        let r = reading(&web(), read(3, 2, 3));
        assert!(r.serves(Size::Bounds(bounds(3, 3, 3))));
    }

    #[test]
    fn an_hpa_bounds_the_size_and_a_rollout_that_gave_up_is_named() {
        let mut x = with_hpa(read(3, 2, 1), 3, 12);
        x.failed = Some((
            "ProgressDeadlineExceeded".into(),
            "timed out progressing".into(),
        ));
        let r = reading(&web(), x);
        assert_eq!(r.size, Size::Bounds(bounds(3, 3, 12)));
        assert_eq!(
            r.change,
            Change::Failed {
                id: "ProgressDeadlineExceeded".into(),
                reason: "timed out progressing".into()
            }
        );
    }

    /// The stuck Deployment as the API server answered it reads as a
    /// failed change named by its condition, serving one of three, and as
    /// `status` shows it with why it is not available.
    #[test]
    fn a_recorded_stuck_deployment_reads_as_a_failed_change_and_a_status_that_says_why() {
        let d: Deployment = serde_json::from_str(STUCK).unwrap();
        let w = group("catalog/deployment/catalog-web@context:us-east-1");
        let r = reading(&w, deployment_of(&d));
        assert_eq!(r.serving, 1);
        assert!(matches!(&r.change, Change::Failed { id, .. } if id == "ProgressDeadlineExceeded"));
        assert_eq!(r.marks["drctl:drill-run"], "r-1");
        assert_eq!(r.handle, w.to_string());
        let g = as_group("us-east-1", &w, deployment_of(&d));
        assert_eq!((g.in_service, g.capacity), (1, bounds(3, 3, 3)));
        assert!(g.notes[0].contains("MinimumReplicasUnavailable"), "{g:?}");
    }

    /// Raising: the HPA's bounds before the replicas; lowering: the
    /// replicas before the bounds; nothing already as asked is written.
    #[test]
    fn a_raise_writes_the_hpa_first_and_a_lowering_the_replicas_first() {
        let standby = with_hpa(read(0, 2, 0), 1, 1);
        let hpa = |min, max| Write::Bounds {
            hpa: "web".into(),
            min,
            max,
        };
        assert_eq!(
            writes(&standby, bounds(3, 3, 12)).unwrap(),
            [hpa(3, 12), Write::Replicas(3)]
        );
        let active = with_hpa(read(3, 2, 3), 3, 12);
        assert_eq!(
            writes(&active, bounds(1, 0, 1)).unwrap(),
            [Write::Replicas(0), hpa(1, 1)]
        );
        assert_eq!(writes(&active, bounds(3, 3, 12)).unwrap(), []);
        assert_eq!(
            writes(&active, bounds(3, 5, 12)).unwrap(),
            [Write::Replicas(5)]
        );
    }

    /// Bounds where no HPA targets the workload are refused before any
    /// write; a size of one count is three equal bounds and needs none.
    #[test]
    fn bounds_without_an_hpa_are_refused_before_any_write() {
        let why = writes(&read(0, 2, 0), bounds(3, 3, 12)).unwrap_err();
        assert!(why.contains("3..12") && why.contains("no HPA"), "{why}");
        assert_eq!(
            writes(&read(0, 2, 0), bounds(2, 2, 2)).unwrap(),
            [Write::Replicas(2)]
        );
    }

    /// A CronJob reads as `status` shows it: suspended or running.
    #[test]
    fn a_cron_jobs_status_says_whether_it_is_suspended() {
        let j = group("batch/cronjob/nightly@context:us-east-1");
        let suspended = as_group("us-east-1", &j, read(0, 2, 0));
        assert!(suspended.notes.contains(&"suspended".to_string()));
        let runs = as_group("us-east-1", &j, read(1, 2, 1));
        assert!(runs.notes.contains(&"runs".to_string()));
    }
}
