//! Google Cloud Storage adapter over Google's official `google-cloud-storage`.
//!
//! * With [`CloudSettings::gcs_endpoint`] set (an emulator such as
//!   fake-gcs-server) the client uses that endpoint and anonymous
//!   credentials; otherwise Google's endpoint and Application Default
//!   Credentials. The client is built on first use, so a command that never
//!   touches `gs://` never needs GCP credentials.
//! * The crate retries by itself (for up to 300 s by default, which looks like
//!   a hang): its policy is bounded here to the attempts of drctl's
//!   [`RetryPolicy`] within [`RETRY_TIME_LIMIT`], with the same delays.
//! * Writes use `send_buffered()`: `send_unbuffered()` fails a CRC32C check on
//!   fake-gcs-server. Create-only writes use `ifGenerationMatch=0` (412 when an
//!   object exists).
//! * Reads are the JSON API's media download (`GET …/o/O?alt=media`), not
//!   the crate's `read_object`: its answer carries the generation
//!   (`x-goog-generation`) and the store's clock (`Last-Modified`, `Date`),
//!   by which leases are judged; the crate's reads expose neither time.
//! * Bucket administration (StorageControl) is gRPC, which no emulator speaks:
//!   [`bucket_exists`](crate::cloud::ObjectStore::bucket_exists) lists at most
//!   one object through the JSON API instead (`GET /storage/v1/b/B/o`), which
//!   answers 404 for a missing bucket on both GCS and fake-gcs-server. A read
//!   of a missing object cannot tell the two apart on fake-gcs-server (both
//!   are a bare `404 Not Found`).

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use google_cloud_auth::credentials::{self, CacheableResource, Credentials};
use google_cloud_gax::client_builder::ClientBuilder;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::{Aip194Strict, NeverRetry, RetryPolicyExt};
use google_cloud_storage::client::Storage;
use google_cloud_storage::retry_policy::RetryableErrors;
use tokio::sync::OnceCell;

use super::retry::RetryPolicy;
use super::{
    BucketLock, BucketState, CloudError, CloudSettings, ErrorKind, Kept, Listing, ObjectUrl,
    PutMode, PutOutcome, Retention, StoreTimes, SwapOutcome, Versioned, http_date,
};

const SERVICE: &str = "gcs";
const REGION: &str = "global";
const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";
/// Upper bound of the storage crate's own retry loop.
pub const RETRY_TIME_LIMIT: Duration = Duration::from_secs(10);

/// How long one attempt of a Google API call may take before it counts as
/// lost and is retried (as the AWS clients' operation attempt timeout): an
/// endpoint that goes silent mid-call must not hold a step beyond its
/// budget. The crates set no such bound of their own (and the storage
/// crate's builder takes none).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// What every Google client drctl builds starts from (GCS, Cloud SQL,
/// Monitoring, Compute, Cloud Run, Cloud DNS): anonymous credentials when it talks to an emulator
/// endpoint, else Application Default Credentials (workload identity
/// federation included, so an AWS runner needs no GCP key); the run's
/// retry policy as an attempt count and the same delays. One place, so
/// the adapters cannot drift apart in how they authenticate or back off.
pub(crate) struct ClientBasis {
    /// The credentials.
    pub(crate) credentials: Credentials,
    /// Attempts in all (the policy's retries plus the first).
    pub(crate) attempts: u32,
    retry: RetryPolicy,
    /// The emulator's endpoint, when one is set.
    endpoint: Option<String>,
}

impl ClientBasis {
    /// The basis for a client of `endpoint` (`None`: Google's own) under
    /// `retry`: `Err((kind, why))` when no credentials can be made.
    pub(crate) fn new(
        endpoint: Option<&str>,
        retry: &RetryPolicy,
    ) -> Result<Self, (ErrorKind, String)> {
        let credentials = match endpoint {
            Some(_) => credentials::anonymous::Builder::new().build(),
            None => credentials::Builder::default()
                .build()
                .map_err(|e| (ErrorKind::Auth, format!("no Google credentials: {e}")))?,
        };
        let attempts = u32::try_from(retry.max_retries.saturating_add(1))
            .unwrap_or(u32::MAX)
            .max(1);
        Ok(Self {
            credentials,
            attempts,
            retry: *retry,
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        })
    }

    /// `builder`, any Google API client's but the storage crate's (whose
    /// builder is its own), set up as every adapter's: these credentials,
    /// AIP-194's retries within [`RETRY_TIME_LIMIT`] and the run's delays,
    /// [`ATTEMPT_TIMEOUT`] per attempt, at the emulator's endpoint when one
    /// is set.
    pub(crate) fn configure<F>(
        &self,
        builder: ClientBuilder<F, Credentials>,
    ) -> Result<ClientBuilder<F, Credentials>, (ErrorKind, String)> {
        let b = builder
            .with_credentials(self.credentials.clone())
            .with_retry_policy(
                Aip194Strict
                    .with_attempt_limit(self.attempts)
                    .with_time_limit(RETRY_TIME_LIMIT),
            )
            .with_backoff_policy(self.backoff()?)
            .with_attempt_timeout(ATTEMPT_TIMEOUT);
        Ok(match &self.endpoint {
            Some(e) => b.with_endpoint(e.clone()),
            None => b,
        })
    }

    /// A fresh backoff policy (one per client: the crates take it by
    /// value) with the run's delays.
    pub(crate) fn backoff(
        &self,
    ) -> Result<google_cloud_gax::exponential_backoff::ExponentialBackoff, (ErrorKind, String)>
    {
        ExponentialBackoffBuilder::new()
            .with_initial_delay(self.retry.min_delay)
            .with_maximum_delay(self.retry.max_delay.max(self.retry.min_delay))
            .build()
            .map_err(|e| (ErrorKind::Client, e.to_string()))
    }
}

/// Builds an adapter's Google clients, each set up as every adapter's
/// ([`ClientBasis::configure`]: the credentials, the retries, the
/// timeouts, the emulator's endpoint): `gcp_clients!(endpoint, retry, fail
/// => Inner { field: Client, .. })`, or `=> Client` for one, where
/// `fail(kind, message)` makes the adapter's own error. A macro, not a
/// function: each client's builder is a type of its own crate.
macro_rules! gcp_clients {
    (@one $basis:ident, $fail:ident, $client:ty) => {
        ($basis.configure(<$client>::builder()))
            .map_err(|(kind, m)| $fail(kind, m))?
            .build()
            .await
            .map_err(|e| $fail($crate::cloud::ErrorKind::Client, e.to_string()))?
    };
    ($endpoint:expr, $retry:expr, $fail:expr => $out:ident { $($field:ident: $client:ty),+ $(,)? }) => {{
        let fail = $fail;
        let basis = $crate::cloud::gcp::ClientBasis::new($endpoint, $retry)
            .map_err(|(kind, m)| fail(kind, m))?;
        $out { $($field: gcp_clients!(@one basis, fail, $client)),+ }
    }};
    ($endpoint:expr, $retry:expr, $fail:expr => $client:ty) => {{
        let fail = $fail;
        let basis = $crate::cloud::gcp::ClientBasis::new($endpoint, $retry)
            .map_err(|(kind, m)| fail(kind, m))?;
        gcp_clients!(@one basis, fail, $client)
    }};
}
pub(crate) use gcp_clients;

/// [`crate::cloud::ObjectStore`] over Google Cloud Storage.
pub struct GcsStore {
    endpoint: Option<String>,
    retry: RetryPolicy,
    inner: OnceCell<Inner>,
    /// Buckets seen to exist (a missed read then needs no probe).
    known_buckets: Mutex<HashSet<String>>,
}

struct Inner {
    storage: Storage,
    credentials: Credentials,
    http: reqwest::Client,
}

fn err(
    operation: &'static str,
    url: &ObjectUrl,
    kind: ErrorKind,
    message: impl Into<String>,
) -> CloudError {
    CloudError::new(SERVICE, operation, url.to_string(), REGION, kind, message)
}

/// The fence at the wire ([`super::wire`]) for a write to `url`, asked
/// right before each transmission attempt: the storage crate has no hook
/// between its attempts, so a fenced write is sent by drctl's own retry
/// loop only (the crate's retries are turned off for it).
fn on_wire(operation: &'static str, url: &ObjectUrl) -> Result<(), CloudError> {
    super::wire::check_before_transmit(operation)
        .map_err(|f| err(operation, url, ErrorKind::Fenced, f.detail))
}

/// `send`, a fenced write's transmission, abandoned when the lease it is
/// made under may end before its answer ([`super::wire::time_left_for`]):
/// what was sent may have landed, and the error says so; the next attempt
/// is refused at [`on_wire`].
fn within_lease<'a, T: 'a>(
    operation: &'static str,
    url: &'a ObjectUrl,
    send: impl std::future::Future<Output = Result<T, CloudError>> + 'a,
) -> impl std::future::Future<Output = Result<T, CloudError>> + 'a {
    let fenced = move |d: String| err(operation, url, ErrorKind::Fenced, d);
    super::wire::within_lease(operation, send, fenced)
}

/// Maps an error of the storage crate.
fn map_gax(
    operation: &'static str,
    url: &ObjectUrl,
    e: &google_cloud_storage::Error,
) -> CloudError {
    let (kind, code) = classify_gax(e);
    let mut out = err(operation, url, kind, e.to_string());
    if let Some(code) = code {
        out = out.with_code(code);
    }
    out
}

/// An error of a Google crate as the domain's, naming the call: its kind
/// and code ([`classify_gax`]) and the API's own message where it gave one.
/// One place for every Google adapter (Cloud SQL, managed instance groups,
/// Cloud Run, Cloud DNS).
pub(crate) fn gax_error(
    service: &'static str,
    operation: &'static str,
    (resource, region): (&str, &str),
    e: &google_cloud_gax::error::Error,
) -> CloudError {
    let (kind, code) = classify_gax(e);
    let message = (e.status())
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| e.to_string());
    let out = CloudError::new(service, operation, resource, region, kind, message);
    match code {
        Some(c) => out.with_code(c),
        None => out,
    }
}

/// Whether a Google crate's error says the thing asked for does not exist
/// (HTTP 404 or the RPC status `NOT_FOUND`).
pub(crate) fn gax_not_found(e: &google_cloud_gax::error::Error) -> bool {
    e.http_status_code() == Some(404)
        || e.status()
            .is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::NotFound)
}

/// One write of a Google adapter, as each goes: sent once past the fence
/// and bounded by the lease ([`super::wire::send_fenced`]), its answer
/// read as the domain reads it (`read`), its error named by the call.
/// `send` is the crate's request, not yet polled.
pub(crate) fn gax_write<'a, T: 'a, O: 'a>(
    (service, operation): (&'static str, &'static str),
    (resource, region): (&'a str, &'a str),
    send: impl std::future::Future<Output = Result<T, google_cloud_gax::error::Error>> + 'a,
    read: fn(&T) -> O,
) -> impl std::future::Future<Output = Result<O, CloudError>> + 'a {
    let sent = async move {
        (send.await)
            .map(|t| read(&t))
            .map_err(|e| gax_error(service, operation, (resource, region), &e))
    };
    let fenced = move |d: String| {
        CloudError::new(service, operation, resource, region, ErrorKind::Fenced, d)
    };
    super::wire::send_fenced(operation, sent, fenced)
}

/// How an error of a Google crate (every `google-cloud-*` client shares
/// `gax`'s error) is classified, and the code it carries (the RPC status's
/// name, else `HTTP nnn`): one place for GCS, Cloud SQL and Monitoring.
pub(crate) fn classify_gax(e: &google_cloud_gax::error::Error) -> (ErrorKind, Option<String>) {
    let status = e.http_status_code().or_else(|| {
        use google_cloud_gax::error::rpc::Code;
        e.status().map(|s| match s.code {
            Code::NotFound => 404,
            Code::FailedPrecondition => 412,
            Code::PermissionDenied => 403,
            Code::Unauthenticated => 401,
            Code::ResourceExhausted => 429,
            Code::Unavailable | Code::Internal | Code::DeadlineExceeded => 503,
            _ => 400,
        })
    });
    let kind = if e.is_authentication() {
        ErrorKind::Auth
    } else if let Some(s) = status {
        CloudError::classify(Some(s), None)
    } else if e.is_timeout() || e.is_io() || e.is_connect() || e.is_transport() || e.is_exhausted()
    {
        ErrorKind::Connection
    } else {
        ErrorKind::Client
    };
    let code = match (e.status(), status) {
        (Some(s), _) => Some(s.code.name().to_string()),
        (None, Some(s)) => Some(format!("HTTP {s}")),
        (None, None) => None,
    };
    (kind, code)
}

impl GcsStore {
    /// Builds the adapter; nothing is resolved until the first call.
    pub fn new(settings: &CloudSettings) -> Self {
        Self {
            endpoint: settings.gcs_endpoint.clone(),
            retry: settings.retry,
            inner: OnceCell::new(),
            known_buckets: Mutex::new(HashSet::new()),
        }
    }

    fn known(&self, bucket: &str) -> bool {
        self.known_buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(bucket)
    }

    fn remember(&self, bucket: &str) {
        self.known_buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(bucket.to_string());
    }

    fn endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or(GOOGLE_ENDPOINT)
            .trim_end_matches('/')
    }

    async fn inner(&self, operation: &'static str, url: &ObjectUrl) -> Result<&Inner, CloudError> {
        self.inner
            .get_or_try_init(|| async {
                let basis = ClientBasis::new(self.endpoint.as_deref(), &self.retry)
                    .map_err(|(kind, m)| err(operation, url, kind, m))?;
                let backoff =
                    (basis.backoff()).map_err(|(kind, m)| err(operation, url, kind, m))?;
                let (credentials, attempts) = (basis.credentials, basis.attempts);
                let mut builder = Storage::builder()
                    .with_credentials(credentials.clone())
                    .with_retry_policy(
                        RetryableErrors
                            .with_attempt_limit(attempts)
                            .with_time_limit(RETRY_TIME_LIMIT),
                    )
                    .with_backoff_policy(backoff);
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                let storage = builder
                    .build()
                    .await
                    .map_err(|e| err(operation, url, ErrorKind::Client, e.to_string()))?;
                let http = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .timeout(Duration::from_secs(30))
                    .build()
                    .map_err(|e| err(operation, url, ErrorKind::Client, e.to_string()))?;
                Ok(Inner {
                    storage,
                    credentials,
                    http,
                })
            })
            .await
    }
}

impl GcsStore {
    /// GETs `{endpoint}/storage/v1/{path}` (the JSON API, for what the
    /// storage crate reaches only over gRPC), with the crate's credentials
    /// and the retry policy: `Ok(None)` on 404.
    async fn json_get(
        &self,
        op: &'static str,
        bucket: &ObjectUrl,
        path: &str,
    ) -> Result<Option<serde_json::Value>, CloudError> {
        let url = format!("{}/storage/v1/{path}", self.endpoint());
        self.json_request(op, bucket, reqwest::Method::GET, &url)
            .await
    }

    /// One JSON API request (`url` complete, query included), with the
    /// crate's credentials and the retry policy: `Ok(None)` on 404, the
    /// parsed body (or `null` when empty) on success.
    async fn json_request(
        &self,
        op: &'static str,
        bucket: &ObjectUrl,
        method: reqwest::Method,
        url: &str,
    ) -> Result<Option<serde_json::Value>, CloudError> {
        let bucket = ObjectUrl {
            key: String::new(),
            ..bucket.clone()
        };
        let inner = self.inner(op, &bucket).await?;
        self.retry
            .run(|| async {
                // The credentials first (a token refresh may take a while),
                // then the fence, right before the bytes leave.
                let headers = auth_headers(inner, op, &bucket).await?;
                let send = inner.http.request(method.clone(), url).headers(headers);
                let resp = if method == reqwest::Method::GET {
                    send.send().await
                } else {
                    on_wire(op, &bucket)?;
                    within_lease(op, &bucket, async { Ok(send.send().await) }).await?
                }
                .map_err(|e| err(op, &bucket, ErrorKind::Connection, format!("{e}")))?;
                let status = resp.status().as_u16();
                match status {
                    200..=299 => Ok(Some(resp.json().await.unwrap_or_default())),
                    404 => Ok(None),
                    _ => Err(refused(op, &bucket, status, resp).await),
                }
            })
            .await
    }

    /// A JSON API URL under `storage/v1/b/`: each segment percent-encoded
    /// as one path segment (an object name keeps its `/` inside it).
    fn api_url(&self, segments: &[&str]) -> Result<reqwest::Url, String> {
        let mut u = reqwest::Url::parse(&format!("{}/storage/v1/b/", self.endpoint()))
            .map_err(|e| e.to_string())?;
        u.path_segments_mut()
            .map_err(|()| "the GCS endpoint cannot take a path".to_string())?
            .pop_if_empty()
            .extend(segments);
        Ok(u)
    }

    /// Reads an object through the JSON API's media download
    /// (`GET storage/v1/b/B/o/O?alt=media`): its bytes, its generation
    /// (`x-goog-generation`) and what the answer says of the store's clock
    /// (`Last-Modified`, the object's `updated`, and `Date`), which the
    /// storage crate's reads do not expose. `Ok(None)` when the object does
    /// not exist.
    async fn read_versioned(&self, url: &ObjectUrl) -> Result<Option<Versioned>, CloudError> {
        const OP: &str = "ReadObject";
        let mut u = self
            .api_url(&[&url.bucket, "o", &url.key])
            .map_err(|e| err(OP, url, ErrorKind::Client, e))?;
        u.query_pairs_mut().append_pair("alt", "media");
        let inner = self.inner(OP, url).await?;
        let read = self
            .retry
            .run(|| async {
                let resp = inner
                    .http
                    .get(u.clone())
                    .headers(auth_headers(inner, OP, url).await?)
                    .send()
                    .await
                    .map_err(|e| err(OP, url, ErrorKind::Connection, format!("{e}")))?;
                let status = resp.status().as_u16();
                match status {
                    200..=299 => {
                        let header = |name: &str| {
                            resp.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                        };
                        let Some(generation) =
                            header("x-goog-generation").and_then(|g| g.parse::<i64>().ok())
                        else {
                            return Err(err(
                                OP,
                                url,
                                ErrorKind::Client,
                                "the answer names no generation (x-goog-generation)",
                            ));
                        };
                        let times = StoreTimes {
                            modified: header("last-modified").as_deref().and_then(http_date),
                            answered: header("date").as_deref().and_then(http_date),
                            resolution: Duration::from_secs(1),
                        };
                        if let Some(why) = resp
                            .content_length()
                            .and_then(crate::cloud::object_too_large)
                        {
                            return Err(err(OP, url, ErrorKind::Client, why));
                        }
                        let mut resp = resp;
                        let mut read = Vec::new();
                        loop {
                            let chunk = resp.chunk().await.map_err(|e| {
                                let why = crate::cloud::error::body_words(&e);
                                err(
                                    OP,
                                    url,
                                    ErrorKind::Connection,
                                    format!("reading the body: {why}"),
                                )
                            })?;
                            let Some(chunk) = chunk else { break };
                            let so_far = (read.len() + chunk.len()) as u64;
                            if let Some(why) = crate::cloud::object_too_large(so_far) {
                                return Err(err(OP, url, ErrorKind::Client, why));
                            }
                            read.extend_from_slice(&chunk);
                        }
                        let body = Bytes::from(read);
                        Ok(Some(Versioned {
                            body,
                            version: generation.to_string(),
                            times,
                        }))
                    }
                    404 => Ok(None),
                    _ => Err(refused(OP, url, status, resp).await),
                }
            })
            .await?;
        if read.is_some() {
            self.remember(&url.bucket);
            return Ok(read);
        }
        // fake-gcs-server answers a bare 404 whether the object or the
        // bucket is missing: tell them apart (once per bucket).
        if self.known(&url.bucket)
            || crate::cloud::ObjectStore::bucket_exists(self, "-", url).await?
        {
            return Ok(None);
        }
        Err(
            err(OP, url, ErrorKind::NotFound, "the bucket does not exist")
                .with_code("NoSuchBucket"),
        )
    }
}

/// The credentials' headers for one JSON API request.
async fn auth_headers(
    inner: &Inner,
    op: &'static str,
    url: &ObjectUrl,
) -> Result<reqwest::header::HeaderMap, CloudError> {
    match inner.credentials.headers(Default::default()).await {
        Ok(CacheableResource::New { data, .. }) => Ok(data),
        Ok(CacheableResource::NotModified) => Ok(Default::default()),
        Err(e) => {
            let kind = if e.is_transient() {
                ErrorKind::Connection
            } else {
                ErrorKind::Auth
            };
            Err(err(op, url, kind, e.to_string()))
        }
    }
}

/// A JSON API answer of `status` (not 2xx, not 404), as an error.
async fn refused(
    op: &'static str,
    url: &ObjectUrl,
    status: u16,
    resp: reqwest::Response,
) -> CloudError {
    let body = resp.text().await.unwrap_or_default();
    err(
        op,
        url,
        CloudError::classify(Some(status), None),
        body.chars().take(300).collect::<String>(),
    )
    .with_code(format!("HTTP {status}"))
}

fn bucket_path(url: &ObjectUrl) -> String {
    format!("projects/_/buckets/{}", url.bucket)
}

impl GcsStore {
    /// One upload of `body` to `url`, with `ifGenerationMatch` when
    /// `generation` is given (0: create-only). `send_buffered` is a
    /// multipart upload, the path on which fake-gcs-server honours the
    /// precondition (a media upload ignores it).
    ///
    /// The crate retries a write by itself (an idempotent one, and any
    /// whose connection failed), without asking the fence again. A fenced
    /// write is therefore sent once per attempt of drctl's own retry loop,
    /// which asks the fence right before each ([`on_wire`]); the crate's
    /// retries are off for it, or each of drctl's attempts would be the
    /// crate's whole retry budget.
    async fn upload(
        &self,
        op: &'static str,
        url: &ObjectUrl,
        body: Bytes,
        generation: Option<i64>,
    ) -> Result<google_cloud_storage::model::Object, CloudError> {
        let inner = self.inner(op, url).await?;
        let fenced = super::wire::WireFence::current().is_some();
        let attempt = || async {
            if fenced {
                // The crate fetches its token inside the send: fetched (and
                // cached) here first, so a refresh cannot come between the
                // fence's check and the bytes leaving.
                auth_headers(inner, op, url).await?;
            }
            on_wire(op, url)?;
            let req = inner
                .storage
                .write_object(bucket_path(url), url.key.clone(), body.clone());
            let req = match generation {
                Some(g) => req.set_if_generation_match(g),
                None => req,
            };
            let req = req.with_idempotency(!fenced);
            let req = if fenced {
                req.with_retry_policy(NeverRetry)
            } else {
                req
            };
            let send = async { req.send_buffered().await.map_err(|e| map_gax(op, url, &e)) };
            within_lease(op, url, send).await
        };
        if fenced {
            self.retry.run(attempt).await
        } else {
            attempt().await
        }
    }

    /// The one object write: create-only (`ifGenerationMatch=0`) or an
    /// overwrite the crate may retry; says until when the bucket's retention
    /// policy keeps what was written, when GCS reports it.
    async fn write(&self, url: &ObjectUrl, body: Bytes, mode: PutMode) -> Result<Kept, CloudError> {
        const OP: &str = "WriteObject";
        let precondition = match mode {
            PutMode::Overwrite => None,
            PutMode::CreateOnly => Some(0),
        };
        let sent = self.upload(OP, url, body, precondition).await;
        match sent {
            Ok(obj) => Ok(Kept {
                outcome: PutOutcome::Written(Some(obj.generation.to_string())),
                retained_until: obj
                    .retention_expire_time
                    .and_then(|t| chrono::DateTime::from_timestamp(t.seconds(), 0)),
            }),
            // Exists already: someone's, or our own attempt whose answer
            // was lost (callers that care read it back).
            Err(e) if mode == PutMode::CreateOnly && e.kind == ErrorKind::Precondition => {
                Ok(Kept {
                    outcome: PutOutcome::AlreadyExists,
                    retained_until: None,
                })
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl crate::cloud::ObjectStore for GcsStore {
    async fn bucket_exists(&self, _via: &str, bucket: &ObjectUrl) -> Result<bool, CloudError> {
        let found = self
            .json_get(
                "ListObjects",
                bucket,
                &format!("b/{}/o?maxResults=1&fields=kind", bucket.bucket),
            )
            .await?;
        if found.is_some() {
            self.remember(&bucket.bucket);
        }
        Ok(found.is_some())
    }

    async fn bucket_state(
        &self,
        _via: &str,
        bucket: &ObjectUrl,
    ) -> Result<BucketState, CloudError> {
        let meta = self
            .json_get(
                "GetBucket",
                bucket,
                &format!(
                    "b/{}?fields=location,locationType,versioning",
                    bucket.bucket
                ),
            )
            .await?;
        Ok(match meta {
            None => BucketState::default(),
            Some(m) => {
                self.remember(&bucket.bucket);
                BucketState {
                    exists: true,
                    location: m["location"].as_str().map(str::to_string),
                    location_type: m["locationType"].as_str().map(str::to_string),
                    versioning: Some(m["versioning"]["enabled"].as_bool().unwrap_or(false)),
                    replication: None,
                }
            }
        })
    }

    async fn put(
        &self,
        _via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, CloudError> {
        Ok(self.write(url, body, mode).await?.outcome)
    }

    async fn get(&self, _via: &str, url: &ObjectUrl) -> Result<Option<Bytes>, CloudError> {
        Ok(self.read_versioned(url).await?.map(|v| v.body))
    }

    /// GCS keeps objects by the bucket's retention policy, which applies to
    /// every object by itself: the write is create-only, `retention` (an S3
    /// Object Lock setting) does not apply, and the returned object says
    /// until when the policy keeps it.
    async fn put_retained(
        &self,
        _via: &str,
        url: &ObjectUrl,
        body: Bytes,
        _retention: Option<Retention>,
    ) -> Result<Kept, CloudError> {
        self.write(url, body, PutMode::CreateOnly).await
    }

    /// Nothing to read here: S3 Object Lock has no GCS equivalent on the
    /// bucket side that the writes must follow (the retention policy applies
    /// by itself), and bucket metadata is a gRPC call no emulator speaks.
    async fn bucket_lock(&self, _via: &str, _bucket: &ObjectUrl) -> Result<BucketLock, CloudError> {
        Ok(BucketLock::default())
    }

    /// None per object: a GCS bucket's retention policy holds every object
    /// by itself (what each write reported is in the pack's manifest).
    async fn object_retention(
        &self,
        _via: &str,
        _url: &ObjectUrl,
    ) -> Result<Option<Retention>, CloudError> {
        Ok(None)
    }

    async fn get_versioned(
        &self,
        _via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Versioned>, CloudError> {
        self.read_versioned(url).await
    }

    async fn replace_if(
        &self,
        _via: &str,
        url: &ObjectUrl,
        body: Bytes,
        version: &str,
    ) -> Result<SwapOutcome, CloudError> {
        const OP: &str = "WriteObject";
        let generation: i64 = version.parse().map_err(|_| {
            err(
                OP,
                url,
                ErrorKind::Client,
                format!("`{version}` is not a GCS generation"),
            )
        })?;
        let sent = self.upload(OP, url, body, Some(generation)).await;
        match sent {
            Ok(obj) => Ok(SwapOutcome::Swapped(obj.generation.to_string())),
            Err(e) => {
                if matches!(e.kind, ErrorKind::Precondition | ErrorKind::NotFound) {
                    Ok(SwapOutcome::Stale)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn list(
        &self,
        _via: &str,
        prefix: &ObjectUrl,
        delimited: bool,
    ) -> Result<Listing, CloudError> {
        const OP: &str = "ListObjects";
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let mut u = self
                .api_url(&[&prefix.bucket, "o"])
                .map_err(|e| err(OP, prefix, ErrorKind::Client, e))?;
            {
                let mut q = u.query_pairs_mut();
                q.append_pair("prefix", &prefix.key);
                q.append_pair("fields", "items(name,size),prefixes,nextPageToken");
                if delimited {
                    q.append_pair("delimiter", "/");
                }
                if let Some(t) = &token {
                    q.append_pair("pageToken", t);
                }
            }
            let Some(page) = self
                .json_request(OP, prefix, reqwest::Method::GET, u.as_str())
                .await?
            else {
                return Err(
                    err(OP, prefix, ErrorKind::NotFound, "the bucket does not exist")
                        .with_code("NoSuchBucket"),
                );
            };
            let names = |field: &str, key: &str| -> Vec<String> {
                page[field]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| {
                                if key.is_empty() {
                                    v.as_str()
                                } else {
                                    v[key].as_str()
                                }
                                .map(str::to_string)
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            listing.keys.extend(names("items", "name"));
            // The JSON API writes an object's size as a decimal string.
            for item in page["items"].as_array().into_iter().flatten() {
                let size = item["size"].as_str().and_then(|s| s.parse::<u64>().ok());
                if let (Some(name), Some(size)) = (item["name"].as_str(), size) {
                    listing.sizes.insert(name.to_string(), size);
                }
            }
            listing.prefixes.extend(names("prefixes", ""));
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        listing.keys.sort();
        listing.prefixes.sort();
        Ok(listing)
    }

    async fn delete(&self, _via: &str, url: &ObjectUrl) -> Result<(), CloudError> {
        let u = self
            .api_url(&[&url.bucket, "o", &url.key])
            .map_err(|e| err("DeleteObject", url, ErrorKind::Client, e))?;
        self.json_request("DeleteObject", url, reqwest::Method::DELETE, u.as_str())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ObjectStore;

    /// Regression (issue 39): a fenced GCS write was bounded by nothing
    /// but the client's own timeout, so a slow upload could still land
    /// long after the lease it was made under had ended. It is abandoned
    /// when the lease may end, and says it may have been applied.
    #[tokio::test(start_paused = true)]
    async fn regression_a_fenced_gcs_write_outlived_its_lease() {
        let url = ObjectUrl::parse("gs://state/team/locks/payments.json").unwrap();
        let fence =
            super::super::wire::WireFence::new(|| Ok(())).bounded(|| Some(Duration::from_secs(2)));
        let slow = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, CloudError>(())
        };
        let started = tokio::time::Instant::now();
        let e = fence
            .clone()
            .guard(within_lease("WriteObject", &url, slow))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Fenced);
        assert!(e.to_string().contains("may have been applied"), "{e}");
        assert!(started.elapsed() <= Duration::from_secs(3));
        // In time, or outside any fence: the answer as it came.
        let quick = async { Ok::<_, CloudError>(7) };
        let got = fence.guard(within_lease("WriteObject", &url, quick)).await;
        assert_eq!(got.unwrap(), 7);
        let unfenced = within_lease("WriteObject", &url, async { Ok::<_, CloudError>(8) });
        assert_eq!(unfenced.await.unwrap(), 8);
    }

    /// Regression: a fenced write to a GCS that refused connections was
    /// retried by drctl's loop, and each of its seven attempts by the
    /// crate for its whole time limit: a failover on shared state spent
    /// 79 s in its evidence step for one destination down (10 s unfenced).
    /// Fenced, each attempt is one request; the loop's delays bound it.
    #[tokio::test(start_paused = true)]
    async fn regression_a_fenced_gcs_write_to_a_dead_endpoint_took_seven_retry_budgets() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let store = GcsStore::new(&CloudSettings {
            gcs_endpoint: Some(format!("http://{closed}")),
            ..CloudSettings::default()
        });
        let url = ObjectUrl::parse("gs://evidence/payments/run/journal.jsonl").unwrap();
        let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = checks.clone();
        let fence = super::super::wire::WireFence::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        let started = tokio::time::Instant::now();
        let e = fence
            .guard(store.put(
                "global",
                &url,
                Bytes::from_static(b"{}"),
                PutMode::CreateOnly,
            ))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(e.kind, ErrorKind::Connection, "{e}");
        let policy = RetryPolicy::default();
        // Every attempt asked the fence once, and there were no more
        // attempts than the policy's.
        assert_eq!(
            checks.load(std::sync::atomic::Ordering::SeqCst),
            policy.max_retries + 1
        );
        // The loop's delays (jittered, at most twice each), not seven of
        // the crate's time limits.
        let delays: Duration = (0..policy.max_retries as u32)
            .map(|n| (policy.min_delay * 2u32.pow(n)).min(policy.max_delay) * 2)
            .sum();
        assert!(took <= delays, "{took:?} > {delays:?}");
        assert!(took < RETRY_TIME_LIMIT * 2, "{took:?}");
    }
}
