//! Kubernetes adapter ([`Workloads`]) over kube-rs (`kube`, `k8s-openapi`):
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
use serde_json::json;
use tokio::sync::Mutex;

use super::retry::RetryPolicy;
use super::{
    Autoscaler, CloudError, CloudSettings, ErrorKind, Workload, WorkloadKind, WorkloadRef,
    Workloads,
};

const SERVICE: &str = "k8s";
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

/// [`Workloads`] over kube-rs.
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

    async fn read(&self, region: &str, w: &WorkloadRef) -> Result<Option<Workload>, CloudError> {
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

#[async_trait]
impl Workloads for Kube {
    async fn describe_workload(
        &self,
        region: &str,
        workload: &WorkloadRef,
    ) -> Result<Option<Workload>, CloudError> {
        self.retry.run(|| self.read(region, workload)).await
    }

    async fn scale_workload(
        &self,
        region: &str,
        w: &WorkloadRef,
        replicas: u32,
    ) -> Result<(), CloudError> {
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

    async fn annotate_workload(
        &self,
        region: &str,
        w: &WorkloadRef,
        marks: &BTreeMap<String, Option<String>>,
    ) -> Result<(), CloudError> {
        const OP: &str = "workloads.patch";
        let annotations: serde_json::Map<String, serde_json::Value> = (marks.iter())
            .map(|(k, v)| {
                (
                    annotation_of(k),
                    v.clone().map_or(serde_json::Value::Null, Into::into),
                )
            })
            .collect();
        let body = json!({ "metadata": { "annotations": annotations } });
        self.patch_workload(Call { op: OP, w, region }, body, false)
            .await
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
}
