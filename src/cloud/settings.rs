//! Where and how to reach the clouds, read once from the environment or an
//! endpoints file: one value every adapter is built from, so that the same
//! binary runs against AWS, Google Cloud and the emulators, and so that no
//! credential is ever printed.

use super::*;

/// Where and how to reach the clouds: endpoints, credentials, retry policy.
///
/// Every field is optional: left empty, the AWS SDK's standard configuration
/// chain applies (profiles, `AWS_REGION`, `AWS_ENDPOINT_URL_<SERVICE>`, instance
/// roles), so the same binary runs against AWS and against the emulators.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudSettings {
    /// Region for calls that have none of their own (STS, Route 53).
    pub default_region: Option<String>,
    /// Static access key id (emulators); `None` = the SDK's credential chain.
    pub access_key_id: Option<String>,
    /// Static secret access key, paired with `access_key_id`.
    pub secret_access_key: Option<String>,
    /// Session token of temporary static credentials (`ASIA...` keys).
    pub session_token: Option<String>,
    /// Endpoint override for Route 53.
    pub route53_endpoint: Option<String>,
    /// Endpoint override for S3 (path-style addressing is used when set).
    pub s3_endpoint: Option<String>,
    /// Endpoint override for RDS.
    pub rds_endpoint: Option<String>,
    /// Endpoint override for Auto Scaling.
    pub autoscaling_endpoint: Option<String>,
    /// Endpoint override for EKS.
    pub eks_endpoint: Option<String>,
    /// Endpoint override for ECS.
    pub ecs_endpoint: Option<String>,
    /// Endpoint override for Elastic Load Balancing (v2).
    pub elbv2_endpoint: Option<String>,
    /// Endpoint override for CloudWatch.
    pub cloudwatch_endpoint: Option<String>,
    /// Endpoint override for STS.
    pub sts_endpoint: Option<String>,
    /// Endpoint override for KMS (a restore's key is read there).
    pub kms_endpoint: Option<String>,
    /// Endpoint override for SNS.
    pub sns_endpoint: Option<String>,
    /// Endpoint override for EventBridge.
    pub events_endpoint: Option<String>,
    /// Google Cloud Storage endpoint (emulator); `None` = Google's.
    /// With an endpoint set, anonymous credentials are used.
    pub gcs_endpoint: Option<String>,
    /// One endpoint for Google Cloud's other APIs drctl calls (Cloud SQL
    /// Admin, Cloud Monitoring: an emulator serving them all, as
    /// `localstack/gcp_emu.py` does); `None` = each API's own Google
    /// endpoint. With an endpoint set, anonymous credentials are used.
    pub gcp_endpoint: Option<String>,
    /// The kubeconfig whose contexts `[[kubernetes]]` clusters name
    /// (`KUBECONFIG`, its first file; `None`: kube-rs's default,
    /// `~/.kube/config`).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// DNS servers asked to verify a switch by resolution (`host:port`);
    /// empty: the zone's NS servers.
    pub dns_servers: Vec<String>,
    /// Retry policy for transient failures.
    pub retry: retry::RetryPolicy,
    /// Whether `[[check]]` probes may reach link-local and cloud metadata
    /// addresses (`[checks] allow_link_local` in `drctl.toml`; refused by
    /// default: `http::refused_address`).
    pub checks_allow_link_local: bool,
    /// A file every cloud call is appended to (`call_log`,
    /// [`metered::MeterLog::appending_to`]); `None`: no log.
    pub call_log: Option<std::path::PathBuf>,
}

impl CloudSettings {
    /// Reads the standard variables from a `KEY=value` map (the process
    /// environment, or an endpoints file written by `localstack/up`).
    ///
    /// `AWS_ENDPOINT_URL_<SERVICE>` (then `AWS_ENDPOINT_URL`) are read here
    /// rather than left to the SDK so that an endpoints file can carry them
    /// too; `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` disables them, as it
    /// does in the SDK.
    pub fn from_vars(vars: &std::collections::BTreeMap<String, String>) -> Self {
        let ignore_endpoints = vars
            .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let get = |k: &str| {
            if ignore_endpoints && k.starts_with("AWS_ENDPOINT_URL") {
                return None;
            }
            vars.get(k).filter(|v| !v.is_empty()).cloned()
        };
        Self {
            default_region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            access_key_id: get("AWS_ACCESS_KEY_ID"),
            secret_access_key: get("AWS_SECRET_ACCESS_KEY"),
            session_token: get("AWS_SESSION_TOKEN"),
            route53_endpoint: get("AWS_ENDPOINT_URL_ROUTE_53").or_else(|| get("AWS_ENDPOINT_URL")),
            s3_endpoint: get("AWS_ENDPOINT_URL_S3").or_else(|| get("AWS_ENDPOINT_URL")),
            rds_endpoint: get("AWS_ENDPOINT_URL_RDS").or_else(|| get("AWS_ENDPOINT_URL")),
            autoscaling_endpoint: get("AWS_ENDPOINT_URL_AUTO_SCALING")
                .or_else(|| get("AWS_ENDPOINT_URL")),
            eks_endpoint: get("AWS_ENDPOINT_URL_EKS").or_else(|| get("AWS_ENDPOINT_URL")),
            ecs_endpoint: get("AWS_ENDPOINT_URL_ECS").or_else(|| get("AWS_ENDPOINT_URL")),
            elbv2_endpoint: get("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2")
                .or_else(|| get("AWS_ENDPOINT_URL")),
            cloudwatch_endpoint: get("AWS_ENDPOINT_URL_CLOUDWATCH")
                .or_else(|| get("AWS_ENDPOINT_URL")),
            sts_endpoint: get("AWS_ENDPOINT_URL_STS").or_else(|| get("AWS_ENDPOINT_URL")),
            kms_endpoint: get("AWS_ENDPOINT_URL_KMS").or_else(|| get("AWS_ENDPOINT_URL")),
            sns_endpoint: get("AWS_ENDPOINT_URL_SNS").or_else(|| get("AWS_ENDPOINT_URL")),
            events_endpoint: get("AWS_ENDPOINT_URL_EVENTBRIDGE")
                .or_else(|| get("AWS_ENDPOINT_URL")),
            gcs_endpoint: get("DRCTL_GCS_ENDPOINT"),
            gcp_endpoint: get("DRCTL_GCP_ENDPOINT"),
            kubeconfig: get("KUBECONFIG")
                .and_then(|v| v.split(':').find(|p| !p.is_empty()).map(Into::into)),
            dns_servers: get("DRCTL_DNS_SERVERS")
                .or_else(|| get("DRCTL_DNS_SERVER"))
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            retry: retry::RetryPolicy::default(),
            checks_allow_link_local: false,
            // A drctl setting (drctl.toml, DRCTL_CALL_LOG), not an
            // endpoints-file variable.
            call_log: None,
        }
    }

    /// The same settings with retries off: one attempt per call, for reads
    /// that are optional and bounded (a region that may be down is asked
    /// once, not retried into).
    pub fn single_attempt(&self) -> Self {
        Self {
            retry: retry::RetryPolicy::none(),
            ..self.clone()
        }
    }

    /// Overlays every value set in `other` onto `self`.
    pub fn overlay(mut self, other: Self) -> Self {
        macro_rules! take {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        take!(
            default_region,
            access_key_id,
            secret_access_key,
            session_token,
            route53_endpoint,
            s3_endpoint,
            rds_endpoint,
            autoscaling_endpoint,
            eks_endpoint,
            ecs_endpoint,
            elbv2_endpoint,
            cloudwatch_endpoint,
            sts_endpoint,
            kms_endpoint,
            sns_endpoint,
            events_endpoint,
            gcs_endpoint,
            gcp_endpoint,
            kubeconfig
        );
        if !other.dns_servers.is_empty() {
            self.dns_servers = other.dns_servers;
        }
        self
    }
}

/// Credentials are never printed: a debug line of the settings must not be
/// how a secret reaches a log.
impl std::fmt::Debug for CloudSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("CloudSettings")
            .field("default_region", &self.default_region)
            .field("access_key_id", &redacted(&self.access_key_id))
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("session_token", &redacted(&self.session_token))
            .field("route53_endpoint", &self.route53_endpoint)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("rds_endpoint", &self.rds_endpoint)
            .field("autoscaling_endpoint", &self.autoscaling_endpoint)
            .field("eks_endpoint", &self.eks_endpoint)
            .field("ecs_endpoint", &self.ecs_endpoint)
            .field("elbv2_endpoint", &self.elbv2_endpoint)
            .field("cloudwatch_endpoint", &self.cloudwatch_endpoint)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("kms_endpoint", &self.kms_endpoint)
            .field("sns_endpoint", &self.sns_endpoint)
            .field("events_endpoint", &self.events_endpoint)
            .field("gcs_endpoint", &self.gcs_endpoint)
            .field("gcp_endpoint", &self.gcp_endpoint)
            .field("dns_servers", &self.dns_servers)
            .field("retry", &self.retry)
            .field("checks_allow_link_local", &self.checks_allow_link_local)
            .field("call_log", &self.call_log)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_never_print_credentials_and_keep_the_session_token() {
        let s = CloudSettings::from_vars(&vars(&[
            ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEYID0001"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t-canary"),
            ("AWS_SESSION_TOKEN", "token-canary"),
            ("AWS_REGION", "us-east-1"),
        ]));
        assert_eq!(s.session_token.as_deref(), Some("token-canary"));
        for shown in [format!("{s:?}"), format!("{s:#?}")] {
            for secret in ["ASIAEXAMPLEKEYID0001", "s3cr3t-canary", "token-canary"] {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert!(shown.contains("us-east-1"), "{shown}");
        }
    }

    #[test]
    fn service_endpoints_beat_the_general_one() {
        let s = CloudSettings::from_vars(&vars(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_RDS", "http://rds:2"),
        ]));
        assert_eq!(s.rds_endpoint.as_deref(), Some("http://rds:2"));
        assert_eq!(s.s3_endpoint.as_deref(), Some("http://all:1"));
    }

    #[test]
    fn ignore_configured_endpoint_urls_is_honoured() {
        let s = CloudSettings::from_vars(&vars(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_RDS", "http://rds:2"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
            ("AWS_REGION", "us-east-1"),
        ]));
        assert_eq!(s.rds_endpoint, None);
        assert_eq!(s.s3_endpoint, None);
        assert_eq!(s.default_region.as_deref(), Some("us-east-1"));
    }
}
