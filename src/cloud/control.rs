//! Data-plane traffic controls: an S3 object per region that a Route 53
//! health check reads.
//!
//! # Why an S3 object (and not a CloudWatch alarm)
//!
//! Route 53's API (records, health-check changes) lives in us-east-1 alone;
//! its health checkers and DNS answers do not. A record that follows a health
//! check therefore moves when the check's *target* changes, with no Route 53
//! call. The target chosen here is an object in a bucket **in the region it
//! controls**, read by an `HTTP(S)_STR_MATCH` health check:
//!
//! * writing it goes through that region's own S3 endpoint, so flipping the
//!   target region's control needs only the target region;
//! * a dead region's control cannot be read by the health checkers either:
//!   its check fails, and the region is drained *closed*, which is what a
//!   failover away from it wants. (A CloudWatch-alarm check of a dead region
//!   reports "insufficient data", and what that means is a setting.)
//! * S3 takes conditional writes (`If-Match`), so a control carries the
//!   fencing token of the run that wrote it and a stale writer cannot
//!   overwrite a newer decision.
//!
//! The price is that the object must be readable anonymously by Route 53's
//! health checkers (a bucket policy on the control prefix): it says only
//! `serve` or `drain`, a run id and a token.
//!
//! This module holds the object's format and the health check that reads it,
//! both ways, so that the switch, `dns prepare`, `status` and the in-memory
//! fake agree.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{HealthCheck, ObjectUrl};

/// What the health check looks for: present while the region serves.
pub const SERVE_MARKER: &str = "state=serve";

/// What a control tells its region's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlState {
    /// The region's records are healthy: traffic may go there.
    Serve,
    /// The region's records are unhealthy: no traffic.
    Drain,
}

impl fmt::Display for ControlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Serve => "serve",
            Self::Drain => "drain",
        })
    }
}

/// A control object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// Serve or drain.
    pub state: ControlState,
    /// Fencing token of the run that wrote it (0: written on a calm day by
    /// `dns prepare`, with no lease).
    pub token: u64,
    /// The run that wrote it (`prepare` for `dns prepare`).
    pub run: String,
    /// When it was written.
    pub at: DateTime<Utc>,
}

impl Control {
    /// The object's body: short `key=value` lines, the state first, well
    /// inside the 5,120 bytes a health check searches.
    pub fn body(&self) -> String {
        format!(
            "drctl-control v1\nstate={}\ntoken={}\nrun={}\nat={}\n",
            self.state,
            self.token,
            self.run,
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }

    /// Reads a body back; `None` when it is not a control object.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        let mut lines = text.lines();
        if lines.next()? != "drctl-control v1" {
            return None;
        }
        let (mut state, mut token, mut run, mut at) = (None, 0, String::new(), None);
        for line in lines {
            match line.split_once('=') {
                Some(("state", "serve")) => state = Some(ControlState::Serve),
                Some(("state", "drain")) => state = Some(ControlState::Drain),
                Some(("token", v)) => token = v.parse().ok()?,
                Some(("run", v)) => run = v.to_string(),
                Some(("at", v)) => at = DateTime::parse_from_rfc3339(v).ok(),
                _ => {}
            }
        }
        Some(Self {
            state: state?,
            token,
            run,
            at: at?.with_timezone(&Utc),
        })
    }
}

/// Seconds between a health check's reads (Route 53 allows 10 or 30).
pub const CHECK_INTERVAL: u16 = 10;
/// Failed reads before a check turns unhealthy.
pub const CHECK_FAILURES: u16 = 3;

/// The health check that follows the control at `url` in `region`.
///
/// `s3_endpoint` is the S3 endpoint drctl itself uses, when overridden (an
/// emulator, a proxy): the check then connects to that address and sends
/// the regional S3 host as `Host`, path-style. Without an override, it reads
/// `https://BUCKET.s3.REGION.amazonaws.com/KEY`, as on AWS.
pub fn health_check(
    reference: &str,
    region: &str,
    url: &ObjectUrl,
    s3_endpoint: Option<&str>,
) -> HealthCheck {
    let regional = format!("s3.{region}.amazonaws.com");
    let (check_type, ip, fqdn, port, path) = match s3_endpoint.and_then(endpoint_parts) {
        Some((https, host, port)) => (
            if https {
                "HTTPS_STR_MATCH"
            } else {
                "HTTP_STR_MATCH"
            },
            Some(host),
            Some(regional),
            port,
            format!("/{}/{}", url.bucket, url.key),
        ),
        None => (
            "HTTPS_STR_MATCH",
            None,
            Some(format!("{}.{regional}", url.bucket)),
            443,
            format!("/{}", url.key),
        ),
    };
    HealthCheck {
        id: String::new(),
        caller_reference: reference.to_string(),
        check_type: check_type.into(),
        ip,
        fqdn,
        port,
        path,
        search: SERVE_MARKER.into(),
        interval: CHECK_INTERVAL,
        failure_threshold: CHECK_FAILURES,
    }
}

/// `(https, host, port)` of an endpoint URL such as `http://127.0.0.1:4566`.
fn endpoint_parts(endpoint: &str) -> Option<(bool, String, u16)> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let https = scheme.eq_ignore_ascii_case("https");
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().ok()?),
        None => (authority.to_string(), if https { 443 } else { 80 }),
    };
    Some((https, host, port))
}

/// The control a health check reads: `(region, object)`, when its target
/// is a regional S3 address (either shape [`health_check`] makes).
pub fn control_of(h: &HealthCheck) -> Option<(String, ObjectUrl)> {
    let fqdn = h.fqdn.as_deref()?;
    let (bucket, rest) = match fqdn.strip_prefix("s3.") {
        Some(rest) => (None, rest),
        None => {
            let (b, rest) = fqdn.split_once(".s3.")?;
            (Some(b.to_string()), rest)
        }
    };
    let region = rest.strip_suffix(".amazonaws.com")?.to_string();
    let path = h.path.trim_start_matches('/');
    let (bucket, key) = match bucket {
        Some(b) => (b, path.to_string()),
        None => {
            let (b, k) = path.split_once('/')?;
            (b.to_string(), k.to_string())
        }
    };
    Some((
        region,
        ObjectUrl::parse(&format!("s3://{bucket}/{key}")).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> ObjectUrl {
        ObjectUrl::parse("s3://drctl-control-usw2/checkout/checkout").expect("url")
    }

    #[test]
    fn a_control_body_reads_back_and_carries_the_marker_only_when_serving() {
        let c = Control {
            state: ControlState::Serve,
            token: 42,
            run: "r-1".into(),
            at: "2026-11-23T10:00:00Z".parse().expect("time"),
        };
        assert!(c.body().contains(SERVE_MARKER));
        assert_eq!(Control::parse(c.body().as_bytes()), Some(c.clone()));
        let drain = Control {
            state: ControlState::Drain,
            ..c
        };
        assert!(!drain.body().contains(SERVE_MARKER));
        assert_eq!(Control::parse(b"state=serve"), None);
    }

    #[test]
    fn a_health_check_finds_its_control_on_aws_and_behind_an_endpoint() {
        for endpoint in [None, Some("http://127.0.0.1:4566")] {
            let h = health_check("ref", "us-west-2", &url(), endpoint);
            assert_eq!(control_of(&h), Some(("us-west-2".into(), url())));
        }
        let aws = health_check("ref", "us-west-2", &url(), None);
        assert_eq!(aws.check_type, "HTTPS_STR_MATCH");
        assert_eq!(
            aws.fqdn.as_deref(),
            Some("drctl-control-usw2.s3.us-west-2.amazonaws.com")
        );
        let emu = health_check("ref", "us-west-2", &url(), Some("http://127.0.0.1:4566"));
        assert_eq!(
            (emu.ip.as_deref(), emu.port, emu.path.as_str()),
            (
                Some("127.0.0.1"),
                4566,
                "/drctl-control-usw2/checkout/checkout"
            )
        );
    }
}
