//! STS: who the credentials resolve to.

use async_trait::async_trait;

use super::{Call, Regional, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{CallerIdentity, CloudError};

/// [`crate::cloud::Identity`] over STS GetCallerIdentity, asked of the
/// regional STS endpoint of the region the caller names.
pub struct StsIdentity {
    clients: Regional<aws_sdk_sts::Client>,
    retry: RetryPolicy,
}

impl StsIdentity {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: &Sdk, retry: RetryPolicy) -> Self {
        Self {
            clients: Regional::new(sdk.clone(), Sdk::sts),
            retry,
        }
    }
}

#[async_trait]
impl crate::cloud::Identity for StsIdentity {
    async fn caller(&self, region: &str) -> Result<CallerIdentity, CloudError> {
        let c = Call::new("sts", "GetCallerIdentity", "caller", region);
        let client = self.clients.get(region);
        let out = call(&self.retry, c, || client.get_caller_identity().send()).await?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
            user_id: out.user_id().unwrap_or_default().to_string(),
        })
    }
}
