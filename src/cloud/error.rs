//! The one error type of the cloud layer.
//!
//! Every failure names the service, the operation, the resource and the region,
//! and is classified once (here) as transient or permanent, so that retry
//! policy is decided in one place and the message can carry a hint at the fix.

use std::fmt;

/// How a cloud call failed; decides whether it is retried.
///
/// Journaled (snake_case, see [`ErrorKind::as_str`]): renaming a variant
/// breaks journals already on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The provider throttled us (HTTP 429, `Throttling`, `SlowDown`...). Retried.
    Throttled,
    /// The provider failed (HTTP 5xx). Retried.
    Server,
    /// The connection failed, timed out or was dropped. Retried.
    Connection,
    /// The resource does not exist. Not retried.
    NotFound,
    /// Credentials missing, expired or not allowed. Not retried.
    Auth,
    /// A conditional request's precondition failed. Not retried.
    Precondition,
    /// The request was invalid or the resource is in the wrong state. Not retried.
    Client,
    /// Not sent: the lease the call was made under is no longer certainly
    /// ours ([`super::wire`]). Never retried.
    Fenced,
}

impl ErrorKind {
    /// The journal's name of the kind (`not_found`, `connection`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::Server => "server",
            Self::Connection => "connection",
            Self::NotFound => "not_found",
            Self::Auth => "auth",
            Self::Precondition => "precondition",
            Self::Client => "client",
            Self::Fenced => "fenced",
        }
    }

    /// Whether a call that failed this way may succeed when repeated.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Throttled | Self::Server | Self::Connection)
    }

    fn hint(self) -> &'static str {
        match self {
            Self::Throttled => {
                "the provider is rate-limiting; drctl retried with backoff. Lower --parallelism or retry later"
            }
            Self::Server => {
                "the provider failed; drctl retried with backoff. Check the provider's health dashboard and retry"
            }
            Self::Connection => {
                "check the endpoint and network (AWS_ENDPOINT_URL_*, DRCTL_GCS_ENDPOINT, proxy settings) and retry"
            }
            Self::NotFound => {
                "check the id and region in the plan against the account (drctl status shows what exists)"
            }
            Self::Auth => {
                "check the credentials drctl runs with (AWS_PROFILE, AWS_ACCESS_KEY_ID) and the role's policy (terraform/iam.tf)"
            }
            Self::Precondition => {
                "the object changed or already exists; re-read it and decide again"
            }
            Self::Client => {
                "the request was refused as invalid for this resource's current state; read the message and the resource's state"
            }
            Self::Fenced => {
                "this process's lease on the plan ended before the call could be sent, so nothing was sent; another run may own the plan now (drctl lock status, drctl runs list)"
            }
        }
    }
}

/// A transport failure (no answer from the provider) in a few words, from
/// the texts of the error's sources: what the user reads instead of the
/// SDK's dump (which stays in the logs, `-v`). `timed_out` when the SDK
/// itself says so.
pub fn transport_words(timed_out: bool, sources: &[String]) -> &'static str {
    let text = sources.join(" | ").to_lowercase();
    let has = |s: &str| text.contains(s);
    if timed_out || has("timed out") || has("timeout") || has("deadline") {
        "timed out before an answer"
    } else if has("connection closed") || has("incompletemessage") || has("unexpected eof") {
        "the connection closed before an answer"
    } else if has("connection refused") {
        "connection refused: nothing answers at the endpoint"
    } else if has("connection reset") || has("broken pipe") {
        "the connection was reset before an answer"
    } else if has("dns") || has("lookup address") || has("name or service not known") {
        "the endpoint's host name does not resolve"
    } else if has("certificate") || has("tls") || has("handshake") {
        "the TLS handshake with the endpoint failed"
    } else {
        "no answer: the connection to the endpoint failed"
    }
}

/// Why an answer's body could not be read, in a few words, from the error
/// and its sources (the full account goes to the logs, `-v`): a body that
/// failed the checksum the store sent with it, one that stalled, one cut
/// short. Never the sources' raw text, which can carry what the server
/// sent. The headers were answered: these are not `transport_words`.
pub fn body_words(err: &(dyn std::error::Error + 'static)) -> &'static str {
    let mut sources = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        sources.push(e.to_string());
        cur = e.source();
    }
    tracing::info!(detail = %sources.join(": "), "an answer's body could not be read");
    let text = sources.join(" | ").to_lowercase();
    let has = |s: &str| text.contains(s);
    if has("checksum") {
        "the body failed the checksum the store sent with it (corrupted in storage or on the way)"
    } else if has("throughput") || has("stalled") {
        "the body stalled: no bytes arrived within the SDK's grace period"
    } else if has("timed out") || has("timeout") {
        "timed out while reading the body"
    } else if has("connection closed")
        || has("incompletemessage")
        || has("unexpected eof")
        || has("end of file")
    {
        "the connection closed before the whole body arrived"
    } else if has("connection reset") || has("broken pipe") {
        "the connection was reset while the body arrived"
    } else {
        "the body broke off"
    }
}

/// A failed cloud call.
#[derive(Debug, Clone, thiserror::Error)]
pub struct CloudError {
    /// Service (`route53`, `rds`, `autoscaling`, `s3`, `cloudwatch`, `sts`, `gcs`).
    pub service: &'static str,
    /// Operation (`PromoteReadReplica`, ...).
    pub operation: &'static str,
    /// The resource acted on (instance id, record name, bucket URL, ...).
    /// Boxed, as `code`.
    pub resource: Box<str>,
    /// The region the call went to (`global` for Route 53). Boxed, as
    /// `code`.
    pub region: Box<str>,
    /// Classification.
    pub kind: ErrorKind,
    /// Provider error code, when there is one (`DBInstanceNotFound`, ...).
    /// Boxed, as `resource` and `region`: every result of the adapters and
    /// the steps carries this error, and boxed strings keep it (and the
    /// steps' error around it) under clippy's bound for an error's size
    /// (`result_large_err`) without an exception at each of them.
    pub code: Option<Box<str>>,
    /// Provider message, or a description of the transport failure.
    pub message: String,
}

/// The full text: the summary, then the hint on its own line (journals
/// keep it with the step's error, so `runs show` can say what to do).
impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n  hint: {}", self.summary(), self.hint())
    }
}

impl CloudError {
    /// Builds an error; `message` is the provider's or the transport's text.
    pub fn new(
        service: &'static str,
        operation: &'static str,
        resource: impl Into<String>,
        region: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            service,
            operation,
            resource: resource.into().into_boxed_str(),
            region: region.into().into_boxed_str(),
            kind,
            code: None,
            message: message.into(),
        }
    }

    /// Builds an error of the call a model label names (`ecs:UpdateService`:
    /// service `ecs`, operation `UpdateService`), as the role's ports name
    /// their calls.
    pub fn of_call(
        call: &'static str,
        resource: impl Into<String>,
        region: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        let (service, operation) = call.split_once(':').unwrap_or((call, ""));
        Self::new(service, operation, resource, region, kind, message)
    }

    /// Sets the provider error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into().into_boxed_str());
        self
    }

    /// What failed, in one line: service, operation, resource, region and
    /// what happened (the provider's code and message, or the transport
    /// failure in words), without the hint.
    pub fn summary(&self) -> String {
        let what = format!(
            "{} {} on `{}` in {} failed",
            self.service, self.operation, self.resource, self.region
        );
        match &self.code {
            Some(code) => format!("{what}: {code}: {}", self.message),
            None => format!("{what}: {}", self.message),
        }
    }

    /// What to do about it, from the error's classification.
    pub fn hint(&self) -> &'static str {
        self.kind.hint()
    }

    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }

    /// Classifies an HTTP status and provider error code.
    pub fn classify(status: Option<u16>, code: Option<&str>) -> ErrorKind {
        let code = code.unwrap_or_default();
        let throttling_codes = [
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "RequestThrottled",
            "RequestThrottledException",
            "TooManyRequestsException",
            "SlowDown",
            "PriorRequestNotComplete",
            "RequestLimitExceeded",
            "Rate exceeded",
        ];
        if throttling_codes.contains(&code) || status == Some(429) {
            return ErrorKind::Throttled;
        }
        if code.ends_with("NotFound")
            || code.ends_with("NotFoundFault")
            || code.starts_with("NoSuch")
            || code == "NotFound"
            // KMS's (DescribeKey of a key that does not exist).
            || code == "NotFoundException"
        {
            return ErrorKind::NotFound;
        }
        if matches!(
            code,
            "AccessDenied"
                | "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "SignatureDoesNotMatch"
        ) || matches!(status, Some(401 | 403))
        {
            return ErrorKind::Auth;
        }
        // S3 answers 409 ConditionalRequestConflict when two conditional
        // writes of one key race: a lost race, like a 412.
        if code == "PreconditionFailed"
            || code == "ConditionalRequestConflict"
            || status == Some(412)
        {
            return ErrorKind::Precondition;
        }
        if matches!(
            code,
            "InternalFailure" | "InternalError" | "ServiceUnavailable"
        ) || status.is_some_and(|s| s >= 500)
        {
            return ErrorKind::Server;
        }
        if status == Some(404) {
            return ErrorKind::NotFound;
        }
        ErrorKind::Client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a source, as the SDK nests its body errors.
    #[derive(Debug)]
    struct Nested(&'static str, Option<Box<Nested>>);

    impl std::fmt::Display for Nested {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Nested {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// The SDK says only "streaming error" of a body it could not read;
    /// the cause is in its sources, and is said in drctl's words, never
    /// the sources' text (which can carry the server's checksum).
    #[test]
    fn a_body_that_cannot_be_read_says_why_in_drctls_words() {
        let nested = |cause| Nested("streaming error", Some(Box::new(Nested(cause, None))));
        for (cause, words) in [
            (
                "body checksum mismatch. expected body checksum to be AAAA but it was BBBB",
                "failed the checksum",
            ),
            (
                "minimum throughput was specified at 1 B/s, but throughput of 0 B/s was observed",
                "stalled",
            ),
            (
                "error reading a body from connection: end of file before message length reached",
                "closed before the whole body",
            ),
            ("connection reset by peer", "reset while the body arrived"),
            ("something else", "broke off"),
        ] {
            let said = body_words(&nested(cause));
            assert!(said.contains(words), "{cause}: {said}");
            assert!(
                !said.contains("AAAA") && !said.contains("streaming"),
                "{said}"
            );
        }
    }

    #[test]
    fn classification_follows_status_and_code() {
        assert_eq!(
            CloudError::classify(Some(400), Some("Throttling")),
            ErrorKind::Throttled
        );
        assert_eq!(
            CloudError::classify(Some(503), Some("SlowDown")),
            ErrorKind::Throttled
        );
        assert_eq!(CloudError::classify(Some(500), None), ErrorKind::Server);
        assert_eq!(
            CloudError::classify(Some(404), Some("DBInstanceNotFound")),
            ErrorKind::NotFound
        );
        assert_eq!(
            CloudError::classify(Some(403), Some("AccessDenied")),
            ErrorKind::Auth
        );
        assert_eq!(
            CloudError::classify(Some(412), Some("PreconditionFailed")),
            ErrorKind::Precondition
        );
        // Two conditional writes of one S3 key racing: a lost race.
        assert_eq!(
            CloudError::classify(Some(409), Some("ConditionalRequestConflict")),
            ErrorKind::Precondition
        );
        assert_eq!(
            CloudError::classify(Some(400), Some("InvalidParameterValue")),
            ErrorKind::Client
        );
        assert!(ErrorKind::Throttled.is_transient());
        assert!(!ErrorKind::Client.is_transient());
    }

    #[test]
    fn message_names_resource_region_and_hint() {
        let e = CloudError::new(
            "rds",
            "PromoteReadReplica",
            "payments-db-use1",
            "us-east-1",
            ErrorKind::NotFound,
            "not there",
        )
        .with_code("DBInstanceNotFound");
        let text = e.to_string();
        assert!(text.contains("payments-db-use1"));
        assert!(text.contains("us-east-1"));
        assert!(text.contains("DBInstanceNotFound"));
        assert!(text.contains("hint:"));
    }

    /// The issue: a cloud error reached the user as the SDK's Debug dump
    /// (`DispatchFailure(DispatchFailure { source: ConnectorError { ... } })`).
    #[test]
    fn transport_failures_are_said_in_words_not_debug_dumps() {
        let closed = vec![
            "dispatch failure".to_string(),
            "io error".into(),
            "connection closed before message completed".into(),
        ];
        let cases = [
            (
                transport_words(false, &closed),
                "the connection closed before an answer",
            ),
            (transport_words(true, &[]), "timed out before an answer"),
            (
                transport_words(
                    false,
                    &["tcp connect error: Connection refused (os error 111)".into()],
                ),
                "connection refused: nothing answers at the endpoint",
            ),
        ];
        for (words, want) in cases {
            assert_eq!(words, want);
        }
        let throttled = CloudError::new(
            "rds",
            "DescribeDBInstances",
            "payments-db",
            "us-east-1",
            ErrorKind::Throttled,
            "Rate exceeded",
        )
        .with_code("Throttling");
        let timeout = CloudError::new(
            "route53",
            "ChangeResourceRecordSets",
            "api.example.com",
            "global",
            ErrorKind::Connection,
            transport_words(true, &[]),
        );
        for e in [throttled, timeout] {
            for text in [e.to_string(), e.summary()] {
                for dump in ["DispatchFailure", "ConnectorError", "{"] {
                    assert!(!text.contains(dump), "{text}");
                }
            }
            assert!(!e.summary().contains("hint:"));
        }
    }
}
