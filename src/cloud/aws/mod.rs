//! AWS adapters (Route 53, RDS and Aurora, Auto Scaling, EKS, ECS, S3,
//! CloudWatch, STS, SNS and EventBridge) over the official AWS SDK for Rust.
//!
//! Shared pieces live here:
//!
//! * [`Sdk`]: the base [`SdkConfig`] (loaded once: region, static credentials
//!   when the settings carry them, timeouts, SDK retries *disabled* because
//!   every call goes through [`RetryPolicy::run`]) and the per-service client
//!   builders that apply the endpoint overrides of [`CloudSettings`] (read
//!   from `AWS_ENDPOINT_URL_<SERVICE>` in the environment or an endpoints
//!   file). Without an override, the SDK's own resolution applies (profile
//!   `endpoint_url` settings, then AWS's endpoints).
//! * `Regional`: a per-region client cache.
//! * `sdk_error`: the one mapping from an SDK error to [`CloudError`].
//! * The rules every adapter's calls share: `call` (one SDK call under the
//!   retry policy), `act_once` (a create, promotion or restore sent at most
//!   once: an attempt whose answer was lost is judged by a read), and
//!   `delete_once` (a deletion done only when a read finds the thing gone
//!   or deleting); `describe_db_instance` and `delete_db_instance` read and
//!   delete RDS's instances and Aurora's members alike.
//! * `WireInterceptor`, installed on every client: the fence at the wire
//!   ([`super::wire`]), asked before each transmission attempt.
//!
//! The same code runs against AWS and against the emulators: there is no
//! emulator-specific branch anywhere in this module.

mod aurora;
pub mod autoscaling;
mod cloudwatch;
pub mod ecs;
pub mod eks;
mod elb;
mod protections;
mod publish;
mod rds;
mod route53;
mod s3;
mod sts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::Credentials;
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;

pub use aurora::AuroraGlobal;
pub use autoscaling::AutoScalingCompute;
pub use cloudwatch::CloudWatchMetrics;
pub use ecs::EcsApi;
pub use eks::EksNodeGroups;
pub use elb::ElbTargets;
pub use publish::AwsPublisher;
pub use rds::RdsDatabase;
pub use route53::Route53Dns;
pub use s3::S3Store;
pub use sts::StsIdentity;

use super::retry::RetryPolicy;
use super::{CloudError, CloudSettings, Clouds, ErrorKind, ObjectRouter};

/// Route 53 is a global service; its API lives in us-east-1.
pub const ROUTE53_REGION: &str = "us-east-1";
/// Region used when neither the settings nor the environment name one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Builds every adapter (AWS, GCS and Cloud SQL) from `settings`.
///
/// Nothing is called over the network here: credentials and clients are
/// resolved lazily, so a command that never touches GCS does not need GCP
/// credentials.
pub async fn clouds(settings: &CloudSettings) -> Result<Clouds, CloudError> {
    let sdk = Sdk::load(settings).await;
    let retry = settings.retry;
    let s3: Arc<dyn super::ObjectStore> = Arc::new(S3Store::new(sdk.clone(), retry));
    let gcs: Arc<dyn super::ObjectStore> = Arc::new(super::gcp::GcsStore::new(settings));
    Ok(Clouds {
        dns: Arc::new(Route53Dns::new(&sdk, retry)),
        database: Arc::new(RdsDatabase::new(sdk.clone(), retry)),
        capacity: super::capacity_adapters(settings, &sdk),
        balancers: Arc::new(ElbTargets::new(sdk.clone(), retry)),
        aurora: Arc::new(AuroraGlobal::new(sdk.clone(), retry)),
        cloud_sql: Arc::new(super::gcp_sql::GcpSql::new(settings)),
        cloud_dns: Arc::new(super::gcp_dns::GcpDns::new(settings)),
        metrics: Arc::new(CloudWatchMetrics::new(sdk.clone(), retry)),
        objects: Arc::new(ObjectRouter { s3, gcs }),
        identity: Arc::new(StsIdentity::new(&sdk, retry)),
        publisher: Arc::new(AwsPublisher::new(&sdk, retry)),
        probe: Arc::new(
            super::http::HttpProbe::new(settings.checks_allow_link_local).map_err(|e| {
                CloudError::new("http", "client", "-", "-", ErrorKind::Client, e.to_string())
            })?,
        ),
        resolver: Arc::new(
            super::resolve::DnsResolver::new(&settings.dns_servers).map_err(|m| {
                CloudError::new("dns", "settings", "dns_servers", "-", ErrorKind::Client, m)
            })?,
        ),
    })
}

/// Declares one client constructor per service, one line a service: the
/// base configuration, the fence at the wire ([`WireInterceptor`]), the
/// region, and the settings' endpoint when one is set (with the builder's
/// flag named after it, `force_path_style`, turned on).
macro_rules! clients {
    ($( $(#[$doc:meta])* $name:ident: $sdk:ident, $endpoint:ident $(, $flag:ident)?; )*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self, region: &str) -> $sdk::Client {
                let mut b = $sdk::config::Builder::from(&self.base)
                    .interceptor(WireInterceptor)
                    .region(Region::new(region.to_string()));
                if let Some(url) = &self.settings.$endpoint {
                    b = b.endpoint_url(url)$(.$flag(true))?;
                }
                $sdk::Client::from_conf(b.build())
            }
        )*
    };
}

/// The loaded base configuration plus the endpoint overrides: builds a client
/// of any service for any region. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Sdk {
    base: SdkConfig,
    settings: Arc<CloudSettings>,
}

impl Sdk {
    /// A configuration with nothing loaded (no credentials, no region, no
    /// host files): what a test builds adapters with, which resolve
    /// nothing until a call.
    #[cfg(test)]
    pub fn offline(settings: &CloudSettings) -> Self {
        Self {
            base: SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .build(),
            settings: Arc::new(settings.clone()),
        }
    }

    /// Loads the base configuration (the SDK's standard chain, overridden by
    /// whatever `settings` set).
    pub async fn load(settings: &CloudSettings) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(30))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(region) = &settings.default_region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let (Some(key), Some(secret)) = (&settings.access_key_id, &settings.secret_access_key) {
            loader = loader.credentials_provider(Credentials::new(
                key.clone(),
                secret.clone(),
                settings.session_token.clone(),
                None,
                "drctl-settings",
            ));
        }
        Self {
            base: loader.load().await,
            settings: Arc::new(settings.clone()),
        }
    }

    /// The base configuration as loaded.
    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    /// The default region: the settings', the environment's, or us-east-1.
    pub fn default_region(&self) -> String {
        self.base
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| FALLBACK_REGION.to_string())
    }

    clients! {
        /// An EKS client for `region`.
        eks: aws_sdk_eks, eks_endpoint;
        /// An ECS client for `region`.
        ecs: aws_sdk_ecs, ecs_endpoint;
        /// An Elastic Load Balancing (v2) client for `region`.
        elbv2: aws_sdk_elasticloadbalancingv2, elbv2_endpoint;
        /// A Route 53 client (Route 53 is global; its API is in `region`,
        /// [`ROUTE53_REGION`]).
        route53_in: aws_sdk_route53, route53_endpoint;
        /// An RDS client for `region`.
        rds: aws_sdk_rds, rds_endpoint;
        /// An Auto Scaling client for `region`.
        autoscaling: aws_sdk_autoscaling, autoscaling_endpoint;
        /// A CloudWatch client for `region`.
        cloudwatch: aws_sdk_cloudwatch, cloudwatch_endpoint;
        /// An S3 client for `region` (path-style addressing when an
        /// endpoint is set: emulators on an IP or `localhost` cannot serve
        /// virtual hosts).
        s3: aws_sdk_s3, s3_endpoint, force_path_style;
        /// An SNS client for `region`.
        sns: aws_sdk_sns, sns_endpoint;
        /// An EventBridge client for `region`.
        eventbridge: aws_sdk_eventbridge, events_endpoint;
        /// An STS client for `region` (its regional endpoint, not the
        /// global one in us-east-1, nor the default region's).
        sts: aws_sdk_sts, sts_endpoint;
        /// A KMS client for `region` (a key is of one Region).
        kms: aws_sdk_kms, kms_endpoint;
    }

    /// A Route 53 client (global).
    pub fn route53(&self) -> aws_sdk_route53::Client {
        self.route53_in(ROUTE53_REGION)
    }
}

/// The fence at the wire ([`super::wire`]): right before each transmission
/// attempt of a mutating operation, the lease it is made under must still
/// be certainly ours, or nothing is sent. Installed on every client.
#[derive(Debug)]
struct WireInterceptor;

impl Intercept for WireInterceptor {
    fn name(&self) -> &'static str {
        "drctl-wire-fence"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Fail closed: a call whose operation is not named is a write.
        let operation = cfg.load::<Metadata>().map(Metadata::name).unwrap_or("");
        super::wire::check_before_transmit(operation).map_err(BoxError::from)
    }
}

/// The `Date` of a request's answer: the provider's clock when it answered,
/// which the SDK's outputs do not carry. Installed on one request
/// (`customize().interceptor(..)`) and read after it; with retries, the
/// last attempt's answer's. Leases are judged by the store's clock
/// ([`crate::cloud::StoreTimes`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct AnswerDate(Arc<Mutex<Option<chrono::DateTime<chrono::Utc>>>>);

impl AnswerDate {
    /// The `Date` of the last answer, when it had a readable one.
    pub(crate) fn get(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Intercept for AnswerDate {
    fn name(&self) -> &'static str {
        "drctl-answer-date"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let date = context
            .response()
            .headers()
            .get("date")
            .and_then(super::http_date);
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = date;
        Ok(())
    }
}

/// Clients of one service cached per region.
pub(crate) struct Regional<C> {
    sdk: Sdk,
    make: fn(&Sdk, &str) -> C,
    clients: Mutex<HashMap<String, C>>,
}

impl<C: Clone> Regional<C> {
    pub(crate) fn new(sdk: Sdk, make: fn(&Sdk, &str) -> C) -> Self {
        Self {
            sdk,
            make,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `region`, built on first use.
    pub(crate) fn get(&self, region: &str) -> C {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| (self.make)(&self.sdk, region))
            .clone()
    }
}

/// What a call was about, for errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call<'a> {
    pub service: &'static str,
    pub operation: &'static str,
    pub resource: &'a str,
    pub region: &'a str,
}

impl<'a> Call<'a> {
    /// The call of `operation` of `service` on `resource` in `region`.
    pub(crate) fn new(
        service: &'static str,
        operation: &'static str,
        resource: &'a str,
        region: &'a str,
    ) -> Self {
        Call {
            service,
            operation,
            resource,
            region,
        }
    }

    /// An error of this call that did not come from the SDK.
    pub(crate) fn error(&self, kind: ErrorKind, message: impl Into<String>) -> CloudError {
        CloudError::new(
            self.service,
            self.operation,
            self.resource,
            self.region,
            kind,
            message,
        )
    }

    /// Maps an SDK error of this call.
    pub(crate) fn sdk<E>(&self, err: SdkError<E>) -> CloudError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        sdk_error(*self, err)
    }
}

/// Maps any SDK error to a [`CloudError`]: HTTP status and error code are
/// classified by [`CloudError::classify`]; transport failures (dispatch,
/// timeout, unparseable response) are [`ErrorKind::Connection`].
///
/// Errors the SDK does not model (S3's 412 `PreconditionFailed`, for one)
/// arrive as "unhandled" service errors: they still carry the code and the
/// status, which is all the classification looks at.
pub(crate) fn sdk_error<E>(call: Call<'_>, err: SdkError<E>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let Some(fenced) = super::wire::fenced_in(&err) {
        return call.error(ErrorKind::Fenced, fenced.detail.clone());
    }
    let (kind, status) = match &err {
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            (CloudError::classify(Some(status), err.code()), Some(status))
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            (ErrorKind::Connection, None)
        }
        // ConstructionFailure and anything future: the request never left.
        _ => (ErrorKind::Client, None),
    };
    let message = match (&err, err.message()) {
        (SdkError::ServiceError(_), Some(m)) if !m.is_empty() => m.to_string(),
        (SdkError::ServiceError(_), _) => match status {
            Some(s) => format!("HTTP {s}"),
            None => "the provider's answer said nothing".to_string(),
        },
        _ => transport_message(&err),
    };
    let mut out = call.error(kind, message);
    if let Some(code) = err.code() {
        out = out.with_code(code);
    }
    out
}

/// What went wrong with a request that got no (readable) answer, in words;
/// the SDK's own account (a nest of Debug forms) is logged (`-v`) for
/// whoever needs the detail.
fn transport_message<E>(err: &SdkError<E>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    let words = match err {
        SdkError::ResponseError(_) => "the answer could not be read",
        SdkError::TimeoutError(_) => super::error::transport_words(true, &[]),
        SdkError::DispatchFailure(d) => {
            let mut sources = Vec::new();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                sources.push(s.to_string());
                source = s.source();
            }
            super::error::transport_words(d.is_timeout(), &sources)
        }
        _ => "the request could not be built",
    };
    tracing::info!(detail = %DisplayErrorContext(err), "{words}");
    words.to_string()
}

/// Runs one SDK call under the retry policy, mapping its errors.
pub(crate) async fn call<T, E, F, Fut>(
    retry: &RetryPolicy,
    c: Call<'_>,
    op: F,
) -> Result<T, CloudError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    retry
        .run(|| {
            let fut = op();
            async move { fut.await.map_err(|e| c.sdk(e)) }
        })
        .await
}

/// `DescribeDBInstances` for one id under `retry`: `None` when it does not
/// exist. RDS's instances and Aurora's cluster members are read alike.
pub(crate) async fn describe_db_instance(
    client: &aws_sdk_rds::Client,
    retry: &RetryPolicy,
    (id, region): (&str, &str),
) -> Result<Option<aws_sdk_rds::types::DbInstance>, CloudError> {
    let c = Call::new("rds", "DescribeDBInstances", id, region);
    let out = call(retry, c, || {
        client
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
    })
    .await;
    match out {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `DeleteDBInstance` of one id (no final snapshot), through
/// [`delete_once`]: done when the instance is gone or `deleting`. RDS's
/// instances and Aurora's cluster members are deleted alike; `backups`:
/// send `DeleteAutomatedBackups=true` (AWS's default, made explicit for
/// an RDS instance); left out for an Aurora member, whose automated
/// backups are its cluster's.
pub(crate) async fn delete_db_instance(
    client: &aws_sdk_rds::Client,
    retry: &RetryPolicy,
    (id, region): (&str, &str),
    backups: bool,
) -> Result<(), CloudError> {
    let c = Call::new("rds", "DeleteDBInstance", id, region);
    let gone = || async {
        let found = describe_db_instance(client, &RetryPolicy::none(), (id, region)).await?;
        Ok(found.is_none_or(|i| i.db_instance_status() == Some("deleting")))
    };
    let send = || {
        (client.delete_db_instance())
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .set_delete_automated_backups(backups.then_some(true))
            .send()
    };
    delete_once(retry, c, "InvalidDBInstanceState", send, gone).await
}

/// A deletion under `retry`, sent at most once ([`act_once`]) and done
/// when `gone` reads the thing gone or its deletion under way: after a
/// not-found answer, after `refused` (the provider's answer to a deletion
/// of something in a state it cannot delete from, deleting included), and
/// after an attempt that may have acted with its answer lost (moto answers
/// the deletion of a cross-region replica with an HTTP 500 after removing
/// it: `rds`'s module docs, # Deleting). A refusal is done only when the
/// read says so: the same code also refuses a cluster that still has
/// members, or an instance being modified. One rule for every deletion of
/// RDS's instances, Aurora's clusters and global clusters.
pub(crate) async fn delete_once<T, E, F, Fut, G, GFut>(
    retry: &RetryPolicy,
    c: Call<'_>,
    refused: &str,
    send: F,
    gone: G,
) -> Result<(), CloudError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    G: Fn() -> GFut,
    GFut: std::future::Future<Output = Result<bool, CloudError>>,
{
    match act_once(retry, c, None, send, &gone).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) if e.code.as_deref() == Some(refused) || may_have_acted(&e) => match gone().await {
            Ok(true) => Ok(()),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Moves a listing's `marker` to the `next` one a page gave: `false` when
/// the listing is done (no next marker, or one that does not move, which
/// would loop forever).
pub(crate) fn advance(marker: &mut Option<String>, next: Option<&str>) -> bool {
    match next {
        Some(m) if !m.is_empty() && marker.as_deref() != Some(m) => {
            *marker = Some(m.to_string());
            true
        }
        _ => false,
    }
}

/// Whether a failed attempt may have taken effect on the provider: its answer
/// was lost (connection) or the provider failed after accepting it (5xx).
/// Throttled and client errors were refused before anything happened.
pub(crate) fn may_have_acted(e: &CloudError) -> bool {
    matches!(e.kind, ErrorKind::Connection | ErrorKind::Server)
}

/// Runs a non-idempotent call (a create, a promotion, a restore) under
/// `retry` so that it takes effect at most once; `Ok(None)` when an earlier
/// attempt took effect and its answer was lost.
///
/// Before repeating an attempt that may have acted ([`may_have_acted`]),
/// `settled` reads what the call makes: when the earlier attempt did take
/// effect, the call is done and is not sent again. An `already_exists` error
/// code after such an attempt is the same case, seen through a read that
/// lagged behind the write (`None`: no code says so; a deletion's refusal
/// says nothing of what the earlier attempt did, see [`delete_once`]).
pub(crate) async fn act_once<T, E, F, Fut, S, SFut>(
    retry: &RetryPolicy,
    c: Call<'_>,
    already_exists: Option<&str>,
    op: F,
    settled: S,
) -> Result<Option<T>, CloudError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    S: Fn() -> SFut,
    SFut: std::future::Future<Output = Result<bool, CloudError>>,
{
    let maybe_acted = std::sync::atomic::AtomicBool::new(false);
    let (op, settled, maybe_acted) = (&op, &settled, &maybe_acted);
    retry
        .run(|| async move {
            use std::sync::atomic::Ordering;
            let repeat = maybe_acted.load(Ordering::SeqCst);
            if repeat && settled().await? {
                tracing::info!(
                    operation = c.operation,
                    resource = c.resource,
                    region = c.region,
                    "an earlier attempt whose answer was lost took effect; not sending it again"
                );
                return Ok(None);
            }
            match op().await {
                Ok(answer) => Ok(Some(answer)),
                Err(e) => {
                    let e = c.sdk(e);
                    if repeat && already_exists.is_some_and(|a| e.code.as_deref() == Some(a)) {
                        return Ok(None);
                    }
                    if may_have_acted(&e) {
                        maybe_acted.store(true, Ordering::SeqCst);
                    }
                    Err(e)
                }
            }
        })
        .await
}

/// Converts an SDK timestamp.
pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Converts to an SDK timestamp.
pub(crate) fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs_and_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn a_listing_ends_when_its_marker_is_absent_empty_or_does_not_move() {
        let mut marker = None;
        assert!(advance(&mut marker, Some("m1")));
        assert_eq!(marker.as_deref(), Some("m1"));
        // The same marker again would ask for the same page for ever.
        assert!(!advance(&mut marker, Some("m1")));
        assert!(!advance(&mut marker, Some("")));
        assert!(!advance(&mut marker, None));
        assert_eq!(marker.as_deref(), Some("m1"));
        assert!(advance(&mut marker, Some("m2")));
        assert_eq!(marker.as_deref(), Some("m2"));
    }
}
