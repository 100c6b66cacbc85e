//! S3: conditional writes, reads, bucket existence.
//!
//! Buckets live in one region and S3 answers a request signed for another
//! region with a redirect, so the adapter finds each bucket's region once
//! (HeadBucket: `x-amz-bucket-region`, present on success and on the 301) and
//! then talks to that region's client. The HeadBucket goes through the
//! caller's region (`via`, a failover's target), never through the
//! configured default region: during an outage that may be the dead one.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ObjectLockMode;
use bytes::Bytes;

use super::{AnswerDate, Call, Regional, Sdk, call, sdk_error, to_chrono};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{
    BucketLock, BucketState, CloudError, ErrorKind, Kept, Listing, LockMode, ObjectUrl, PutMode,
    PutOutcome, ReplicationRule, Retention, StoreTimes, SwapOutcome, Versioned,
};

const SERVICE: &str = "s3";

/// S3's `Last-Modified` and `Date` are HTTP dates: whole seconds.
const HTTP_DATE_RESOLUTION: std::time::Duration = std::time::Duration::from_secs(1);

/// What a bucket's Object Lock configuration (`None`: none) means for the
/// objects written to it.
fn lock_of(cfg: Option<aws_sdk_s3::types::ObjectLockConfiguration>) -> BucketLock {
    let Some(cfg) = cfg else {
        return BucketLock {
            object_lock: Some(false),
            default_retention: None,
        };
    };
    let default_retention = cfg
        .rule()
        .and_then(|r| r.default_retention())
        .and_then(|d| {
            let mode = match d.mode()?.as_str() {
                "COMPLIANCE" => LockMode::Compliance,
                _ => LockMode::Governance,
            };
            let days = d
                .days()
                .map(|n| n.max(0) as u32)
                // The bucket's answer: years beyond u32 days saturate.
                .or_else(|| d.years().map(|y| (y.max(0) as u32).saturating_mul(365)))?;
            Some((mode, days))
        });
    BucketLock {
        object_lock: Some(
            cfg.object_lock_enabled()
                .is_some_and(|e| e.as_str() == "Enabled"),
        ),
        default_retention,
    }
}

/// The description of one S3 call (for errors and retries).
fn s3_call<'a>(operation: &'static str, resource: &'a str, region: &'a str) -> Call<'a> {
    Call::new(SERVICE, operation, resource, region)
}

/// [`crate::cloud::ObjectStore`] over S3.
pub struct S3Store {
    clients: Regional<aws_sdk_s3::Client>,
    bucket_regions: Mutex<HashMap<String, String>>,
    retry: RetryPolicy,
}

impl S3Store {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk, Sdk::s3),
            bucket_regions: Mutex::new(HashMap::new()),
            retry,
        }
    }

    /// The bucket's region; `Ok(None)` when the bucket does not exist.
    async fn locate(&self, via: &str, url: &ObjectUrl) -> Result<Option<String>, CloudError> {
        if let Some(r) = self.cached(&url.bucket) {
            return Ok(Some(r));
        }
        let client = self.clients.get(via);
        let resource = format!("s3://{}", url.bucket);
        let c = s3_call("HeadBucket", &resource, via);
        let out = self
            .retry
            .run(|| async {
                match client.head_bucket().bucket(&url.bucket).send().await {
                    Ok(out) => Ok(Some(out.bucket_region().unwrap_or(via).to_string())),
                    Err(SdkError::ServiceError(e))
                        if e.raw().headers().get("x-amz-bucket-region").is_some()
                            && e.raw().status().as_u16() == 301 =>
                    {
                        Ok(e.raw()
                            .headers()
                            .get("x-amz-bucket-region")
                            .map(str::to_string))
                    }
                    Err(e) => {
                        let e = sdk_error(c, e);
                        if e.kind == ErrorKind::NotFound {
                            Ok(None)
                        } else {
                            Err(e)
                        }
                    }
                }
            })
            .await?;
        if let Some(region) = &out {
            self.remember(&url.bucket, region);
        }
        Ok(out)
    }

    /// The bucket's Object Lock configuration, asked in `region` (`None`:
    /// the bucket has none).
    async fn lock_configuration(
        &self,
        region: &str,
        bucket: &ObjectUrl,
        retry: &RetryPolicy,
    ) -> Result<Option<aws_sdk_s3::types::ObjectLockConfiguration>, CloudError> {
        let client = self.clients.get(region);
        let resource = format!("s3://{}", bucket.bucket);
        let c = s3_call("GetObjectLockConfiguration", &resource, region);
        retry
            .run(|| async {
                match client
                    .get_object_lock_configuration()
                    .bucket(&bucket.bucket)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.object_lock_configuration().cloned()),
                    Err(e) => {
                        let e = sdk_error(c, e);
                        // No configuration: the bucket has no Object Lock.
                        if e.code.as_deref() == Some("ObjectLockConfigurationNotFoundError") {
                            Ok(None)
                        } else {
                            Err(e)
                        }
                    }
                }
            })
            .await
    }

    /// Keeps the bucket's region for the rest of the process.
    fn remember(&self, bucket: &str, region: &str) {
        self.bucket_regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(bucket.to_string(), region.to_string());
    }

    fn cached(&self, bucket: &str) -> Option<String> {
        self.bucket_regions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(bucket)
            .cloned()
    }

    /// The client for the bucket's region, or a NotFound error naming it.
    async fn client_for(
        &self,
        via: &str,
        url: &ObjectUrl,
        operation: &'static str,
    ) -> Result<(aws_sdk_s3::Client, String), CloudError> {
        match self.locate(via, url).await? {
            Some(region) => Ok((self.clients.get(&region), region)),
            None => Err(CloudError::new(
                SERVICE,
                operation,
                url.to_string(),
                via,
                ErrorKind::NotFound,
                "the bucket does not exist",
            )
            .with_code("NoSuchBucket")),
        }
    }

    /// The one PutObject: `If-None-Match: *` when create-only, and Object
    /// Lock retention when given (a locked write must carry a checksum:
    /// the SDK adds its CRC32 to every PutObject).
    async fn put_object(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
        retention: Option<Retention>,
    ) -> Result<PutOutcome, CloudError> {
        let (client, region) = self.client_for(via, url, "PutObject").await?;
        let resource = url.to_string();
        let c = s3_call("PutObject", &resource, &region);
        let out = call(&self.retry, c, || {
            let req = client
                .put_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .body(ByteStream::from(body.clone()));
            let req = match mode {
                PutMode::Overwrite => req,
                PutMode::CreateOnly => req.if_none_match("*"),
            };
            match retention {
                Some(r) => req
                    .object_lock_mode(ObjectLockMode::from(r.mode.as_s3()))
                    .object_lock_retain_until_date(DateTime::from_secs(r.until.timestamp())),
                None => req,
            }
            .send()
        })
        .await;
        match out {
            Ok(out) => Ok(PutOutcome::Written(out.e_tag().map(str::to_string))),
            // `If-None-Match: *` found an object: 412 PreconditionFailed, which
            // the SDK does not model (an "unhandled" error with that code).
            Err(e) if mode == PutMode::CreateOnly && e.kind == ErrorKind::Precondition => {
                Ok(PutOutcome::AlreadyExists)
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl crate::cloud::ObjectStore for S3Store {
    async fn bucket_exists(&self, via: &str, bucket: &ObjectUrl) -> Result<bool, CloudError> {
        Ok(self.locate(via, bucket).await?.is_some())
    }

    async fn bucket_state(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketState, CloudError> {
        let Some(region) = self.locate(via, bucket).await? else {
            return Ok(BucketState::default());
        };
        let client = self.clients.get(&region);
        let resource = format!("s3://{}", bucket.bucket);
        let c = s3_call("GetBucketVersioning", &resource, &region);
        let (versioning, replication) = futures::join!(
            call(&self.retry, c, || client
                .get_bucket_versioning()
                .bucket(&bucket.bucket)
                .send()),
            self.retry.run(|| async {
                let c = Call {
                    operation: "GetBucketReplication",
                    ..c
                };
                match client
                    .get_bucket_replication()
                    .bucket(&bucket.bucket)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out
                        .replication_configuration()
                        .map(|cfg| {
                            cfg.rules()
                                .iter()
                                .map(|r| ReplicationRule {
                                    id: r.id().unwrap_or_default().to_string(),
                                    enabled: r.status().as_str() == "Enabled",
                                    destination: r
                                        .destination()
                                        .map(|d| d.bucket().to_string())
                                        .unwrap_or_default(),
                                })
                                .collect()
                        })
                        .unwrap_or_default()),
                    Err(e) => {
                        let e = sdk_error(c, e);
                        // No configuration is "no rules", not a failure.
                        if e.code.as_deref() == Some("ReplicationConfigurationNotFoundError") {
                            Ok(Vec::new())
                        } else {
                            Err(e)
                        }
                    }
                }
            }),
        );
        Ok(BucketState {
            exists: true,
            location: Some(region.clone()),
            location_type: None,
            versioning: Some(
                versioning?
                    .status()
                    .is_some_and(|s| s.as_str() == "Enabled"),
            ),
            replication: Some(replication?),
        })
    }

    async fn put(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, CloudError> {
        self.put_object(via, url, body, mode, None).await
    }

    async fn put_retained(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        retention: Option<Retention>,
    ) -> Result<Kept, CloudError> {
        let outcome = self
            .put_object(via, url, body, PutMode::CreateOnly, retention)
            .await?;
        Ok(Kept {
            retained_until: match outcome {
                PutOutcome::Written(_) => retention.map(|r| r.until),
                PutOutcome::AlreadyExists => None,
            },
            outcome,
        })
    }

    async fn bucket_lock(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketLock, CloudError> {
        // A bucket whose region is not known yet is asked through `via`
        // first, once: most evidence buckets live in the region a run asks
        // through, and a 200 there proves it (S3 redirects a request signed
        // for another region). That saves the HeadBucket on every run's
        // path; anything else (a redirect, no bucket, no answer) takes the
        // located path below, which says exactly what is wrong.
        if self.cached(&bucket.bucket).is_none()
            && let Ok(cfg) = self
                .lock_configuration(via, bucket, &RetryPolicy::none())
                .await
        {
            self.remember(&bucket.bucket, via);
            return Ok(lock_of(cfg));
        }
        let (_, region) = self
            .client_for(via, bucket, "GetObjectLockConfiguration")
            .await?;
        let cfg = self
            .lock_configuration(&region, bucket, &self.retry)
            .await?;
        Ok(lock_of(cfg))
    }

    async fn object_retention(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Retention>, CloudError> {
        let (client, region) = self.client_for(via, url, "GetObjectRetention").await?;
        let resource = url.to_string();
        let c = s3_call("GetObjectRetention", &resource, &region);
        self.retry
            .run(|| async {
                match client
                    .get_object_retention()
                    .bucket(&url.bucket)
                    .key(&url.key)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.retention().and_then(|r| {
                        let mode = match r.mode()?.as_str() {
                            "COMPLIANCE" => LockMode::Compliance,
                            _ => LockMode::Governance,
                        };
                        let until = r.retain_until_date()?;
                        let until = chrono::DateTime::from_timestamp(until.secs(), 0)?;
                        Some(Retention { mode, until })
                    })),
                    Err(e) => {
                        let e = sdk_error(c, e);
                        // No retention on the object, no Object Lock on the
                        // bucket (S3 and LocalStack say `InvalidRequest`),
                        // or no object: nothing keeps it.
                        match e.code.as_deref() {
                            Some(
                                "NoSuchObjectLockConfiguration"
                                | "ObjectLockConfigurationNotFoundError"
                                | "InvalidRequest"
                                | "NoSuchKey",
                            ) => Ok(None),
                            _ => Err(e),
                        }
                    }
                }
            })
            .await
    }

    async fn get(&self, via: &str, url: &ObjectUrl) -> Result<Option<Bytes>, CloudError> {
        // One `GetObject` for both reads (GCS's adapter does the same).
        Ok(self.get_versioned(via, url).await?.map(|v| v.body))
    }

    async fn get_versioned(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Versioned>, CloudError> {
        let (client, region) = self.client_for(via, url, "GetObject").await?;
        let resource = url.to_string();
        let c = s3_call("GetObject", &resource, &region);
        self.retry
            .run(|| async {
                // The store's clock: `Last-Modified` is in the output, the
                // answer's `Date` only in its headers.
                let date = AnswerDate::default();
                match client
                    .get_object()
                    .bucket(&url.bucket)
                    .key(&url.key)
                    .customize()
                    .interceptor(date.clone())
                    .send()
                    .await
                {
                    Ok(out) => {
                        let version = out.e_tag().unwrap_or_default().to_string();
                        let times = StoreTimes {
                            modified: out.last_modified().and_then(to_chrono),
                            answered: date.get(),
                            resolution: HTTP_DATE_RESOLUTION,
                        };
                        let declared = out.content_length().and_then(|n| u64::try_from(n).ok());
                        if let Some(why) = declared.and_then(crate::cloud::object_too_large) {
                            return Err(c.error(ErrorKind::Client, why));
                        }
                        let mut stream = out.body;
                        let mut body = Vec::new();
                        loop {
                            let chunk = stream.try_next().await.map_err(|e| {
                                let why = crate::cloud::error::body_words(&e);
                                c.error(ErrorKind::Connection, format!("reading the body: {why}"))
                            })?;
                            let Some(chunk) = chunk else { break };
                            let read = (body.len() + chunk.len()) as u64;
                            if let Some(why) = crate::cloud::object_too_large(read) {
                                return Err(c.error(ErrorKind::Client, why));
                            }
                            body.extend_from_slice(&chunk);
                        }
                        Ok(Some(Versioned {
                            body: Bytes::from(body),
                            version,
                            times,
                        }))
                    }
                    Err(e) => {
                        let e = sdk_error(c, e);
                        if e.code.as_deref() == Some("NoSuchKey") {
                            Ok(None)
                        } else {
                            Err(e)
                        }
                    }
                }
            })
            .await
    }

    async fn replace_if(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        version: &str,
    ) -> Result<SwapOutcome, CloudError> {
        let (client, region) = self.client_for(via, url, "PutObject").await?;
        let resource = url.to_string();
        let c = s3_call("PutObject", &resource, &region);
        let out = call(&self.retry, c, || {
            client
                .put_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .if_match(version)
                .body(ByteStream::from(body.clone()))
                .send()
        })
        .await;
        match out {
            Ok(out) => Ok(SwapOutcome::Swapped(
                out.e_tag().unwrap_or_default().to_string(),
            )),
            // 412: another version now; 409 ConditionalRequestConflict: a
            // concurrent conditional write; 404: the object is gone.
            Err(e) if matches!(e.kind, ErrorKind::Precondition | ErrorKind::NotFound) => {
                Ok(SwapOutcome::Stale)
            }
            Err(e) => Err(e),
        }
    }

    async fn list(
        &self,
        via: &str,
        prefix: &ObjectUrl,
        delimited: bool,
    ) -> Result<Listing, CloudError> {
        let (client, region) = self.client_for(via, prefix, "ListObjectsV2").await?;
        let resource = prefix.to_string();
        let c = s3_call("ListObjectsV2", &resource, &region);
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let page = call(&self.retry, c, || {
                let req = client
                    .list_objects_v2()
                    .bucket(&prefix.bucket)
                    .prefix(&prefix.key)
                    .set_continuation_token(token.clone());
                if delimited { req.delimiter("/") } else { req }.send()
            })
            .await?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                if let Some(size) = o.size().and_then(|n| u64::try_from(n).ok()) {
                    listing.sizes.insert(key.to_string(), size);
                }
                listing.keys.push(key.to_string());
            }
            listing.prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_string)),
            );
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        listing.keys.sort();
        listing.prefixes.sort();
        Ok(listing)
    }

    async fn delete(&self, via: &str, url: &ObjectUrl) -> Result<(), CloudError> {
        let (client, region) = self.client_for(via, url, "DeleteObject").await?;
        let resource = url.to_string();
        let c = s3_call("DeleteObject", &resource, &region);
        call(&self.retry, c, || {
            client
                .delete_object()
                .bucket(&url.bucket)
                .key(&url.key)
                .send()
        })
        .await?;
        Ok(())
    }
}
