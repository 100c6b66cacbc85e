//! STS: who the credentials resolve to.

use async_trait::async_trait;

use super::{Call, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{CallerIdentity, CloudError};

/// [`crate::cloud::Identity`] over STS GetCallerIdentity.
#[derive(Debug, Clone)]
pub struct StsIdentity {
    client: aws_sdk_sts::Client,
    region: String,
    retry: RetryPolicy,
}

impl StsIdentity {
    /// Builds the adapter (default region).
    pub fn new(sdk: &Sdk, retry: RetryPolicy) -> Self {
        Self {
            client: sdk.sts(),
            region: sdk.default_region(),
            retry,
        }
    }
}

#[async_trait]
impl crate::cloud::Identity for StsIdentity {
    async fn caller(&self) -> Result<CallerIdentity, CloudError> {
        let c = Call {
            service: "sts",
            operation: "GetCallerIdentity",
            resource: "caller",
            region: &self.region,
        };
        let out = call(&self.retry, c, || self.client.get_caller_identity().send()).await?;
        Ok(CallerIdentity {
            account: out.account().unwrap_or_default().to_string(),
            arn: out.arn().unwrap_or_default().to_string(),
            user_id: out.user_id().unwrap_or_default().to_string(),
        })
    }
}
