//! SNS and EventBridge: where notification events are published, in the
//! region the caller names (a run's target region, so that telling people
//! does not depend on the region that failed).

use async_trait::async_trait;

use super::{Call, Regional, Sdk, call};
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{CloudError, ErrorKind};

/// [`crate::cloud::Publisher`] over SNS Publish and EventBridge PutEvents.
pub struct AwsPublisher {
    sns: Regional<aws_sdk_sns::Client>,
    events: Regional<aws_sdk_eventbridge::Client>,
    retry: RetryPolicy,
}

impl AwsPublisher {
    /// Builds the adapter; clients are created per region on first use.
    pub fn new(sdk: &Sdk, retry: RetryPolicy) -> Self {
        Self {
            sns: Regional::new(sdk.clone(), Sdk::sns),
            events: Regional::new(sdk.clone(), Sdk::eventbridge),
            retry,
        }
    }
}

#[async_trait]
impl crate::cloud::Publisher for AwsPublisher {
    async fn sns(
        &self,
        region: &str,
        topic_arn: &str,
        subject: &str,
        message: &str,
    ) -> Result<String, CloudError> {
        let c = Call::new("sns", "Publish", topic_arn, region);
        let client = self.sns.get(region);
        // SNS subjects are at most 100 printable ASCII characters.
        let subject: String = subject
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(100)
            .collect();
        let out = call(&self.retry, c, || {
            client
                .publish()
                .topic_arn(topic_arn)
                .subject(&subject)
                .message(message)
                .send()
        })
        .await?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    async fn eventbridge(
        &self,
        region: &str,
        bus: &str,
        detail_type: &str,
        detail: &str,
    ) -> Result<String, CloudError> {
        let c = Call::new("events", "PutEvents", bus, region);
        let client = self.events.get(region);
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("dev.drctl")
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(bus)
            .build();
        let out = call(&self.retry, c, || {
            client.put_events().entries(entry.clone()).send()
        })
        .await?;
        let first = out.entries().first();
        match first.and_then(|e| e.event_id()) {
            Some(id) if out.failed_entry_count() == 0 => Ok(id.to_string()),
            _ => Err(CloudError::new(
                "events",
                "PutEvents",
                bus,
                region,
                ErrorKind::Server,
                format!(
                    "the event was not put: {}",
                    first
                        .and_then(|e| e.error_message())
                        .unwrap_or("no error message")
                ),
            )),
        }
    }
}
