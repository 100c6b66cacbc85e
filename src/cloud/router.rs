//! One object store over both clouds: each URL goes to the store of its
//! scheme, so evidence, state and controls name `s3://` or `gs://` alike
//! and no caller matches on the scheme.

use super::*;

/// Routes each [`ObjectUrl`] to the store of its scheme (`s3://` or `gs://`).
pub struct ObjectRouter {
    /// Store for `s3://` URLs.
    pub s3: Arc<dyn ObjectStore>,
    /// Store for `gs://` URLs.
    pub gcs: Arc<dyn ObjectStore>,
}

impl ObjectRouter {
    fn pick(&self, url: &ObjectUrl) -> &dyn ObjectStore {
        match url.scheme {
            ObjectScheme::S3 => self.s3.as_ref(),
            ObjectScheme::Gcs => self.gcs.as_ref(),
        }
    }
}

#[async_trait]
impl ObjectStore for ObjectRouter {
    async fn bucket_exists(&self, via: &str, bucket: &ObjectUrl) -> Result<bool, CloudError> {
        self.pick(bucket).bucket_exists(via, bucket).await
    }
    async fn put(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        mode: PutMode,
    ) -> Result<PutOutcome, CloudError> {
        self.pick(url).put(via, url, body, mode).await
    }
    async fn get(&self, via: &str, url: &ObjectUrl) -> Result<Option<Bytes>, CloudError> {
        self.pick(url).get(via, url).await
    }
    async fn put_retained(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        retention: Option<Retention>,
    ) -> Result<Kept, CloudError> {
        self.pick(url).put_retained(via, url, body, retention).await
    }
    async fn bucket_lock(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketLock, CloudError> {
        self.pick(bucket).bucket_lock(via, bucket).await
    }
    async fn object_retention(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Retention>, CloudError> {
        self.pick(url).object_retention(via, url).await
    }
    async fn bucket_state(&self, via: &str, bucket: &ObjectUrl) -> Result<BucketState, CloudError> {
        self.pick(bucket).bucket_state(via, bucket).await
    }
    async fn get_versioned(
        &self,
        via: &str,
        url: &ObjectUrl,
    ) -> Result<Option<Versioned>, CloudError> {
        self.pick(url).get_versioned(via, url).await
    }
    async fn replace_if(
        &self,
        via: &str,
        url: &ObjectUrl,
        body: Bytes,
        version: &str,
    ) -> Result<SwapOutcome, CloudError> {
        self.pick(url).replace_if(via, url, body, version).await
    }
    async fn list(
        &self,
        via: &str,
        prefix: &ObjectUrl,
        delimited: bool,
    ) -> Result<Listing, CloudError> {
        self.pick(prefix).list(via, prefix, delimited).await
    }
    async fn delete(&self, via: &str, url: &ObjectUrl) -> Result<(), CloudError> {
        self.pick(url).delete(via, url).await
    }
}
