//! HTTP health probes over `reqwest`: the real [`Probe`].
//!
//! One client for the process (connection pool, TLS set up once), a timeout
//! per probe, and no retries: a `[[check]]` step polls on its own schedule
//! and wants to know what *this* probe answered. Redirects are not followed
//! (a health endpoint that redirects is answering 3xx, which is what the
//! plan's `expect_status` is compared with).
//!
//! A probe is a request drctl makes from where it runs, to a URL a plan
//! names, and on a cloud host the most valuable URL is the instance
//! metadata service (`169.254.169.254` and its kin answer with the host's
//! credentials). So a probe refuses link-local and metadata addresses
//! ([`refused_address`]) unless the operators allow them
//! (`[checks] allow_link_local`): an address in the URL is checked before
//! anything is sent; a name is resolved by the probe's own resolver, which
//! checks every address the name resolves to and hands the client exactly
//! those, so the connection goes to a checked address (a name that answers
//! differently the next time, DNS rebinding, cannot switch it). The client
//! uses no proxy: through one, the proxy would resolve the name.
//!
//! What a probe returns is the status and the body's length, never the
//! body: a body is whatever the service chose to say (a metadata service
//! says credentials), and a probe's answer goes into errors, journals,
//! reports and notifications. The start of the body is logged at `info`
//! (shown under `-v`), its control characters removed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::BoxFuture;

use super::{CloudError, ErrorKind, Probe, ProbeAnswer};

/// The error code of a probe refused for its address.
pub const REFUSED_CODE: &str = "AddressRefused";

/// The cloud metadata services' names (every address is checked as well).
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog"];

/// How a name is resolved (the system's resolver; a test's map).
pub type Lookup =
    Arc<dyn Fn(String) -> BoxFuture<'static, std::io::Result<Vec<SocketAddr>>> + Send + Sync>;

/// The system's resolver (`getaddrinfo`, through tokio).
fn system_lookup() -> Lookup {
    Arc::new(|name: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host((name.as_str(), 0)).await?.collect()) })
    })
}

/// Whether a check may not reach `ip`: IPv4 link-local (`169.254.0.0/16`,
/// where AWS, Azure, GCP and others serve instance metadata), IPv6
/// link-local (`fe80::/10`), AWS's IPv6 metadata address
/// (`fd00:ec2::254`) and EKS Pod Identity's agent (`fd00:ec2::23`, which
/// hands out the pod's credentials), any of these inside an IPv6 address
/// that carries an IPv4 one (mapped, compatible, NAT64's well-known
/// prefix), and the whole local-use NAT64 prefix (`64:ff9b:1::/48`, whose
/// translator may embed any IPv4 address, at any of its lengths).
pub fn refused_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = match s {
                [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0, 0, ..] => v6.to_ipv4(),
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(Ipv4Addr::new(
                    (hi >> 8) as u8,
                    hi as u8,
                    (lo >> 8) as u8,
                    lo as u8,
                )),
                _ => None,
            };
            (s[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
                || s[..3] == [0x64, 0xff9b, 1]
                || embedded.is_some_and(|v4| v4.is_link_local())
        }
    }
}

/// Whether `name` is a metadata service's name.
fn metadata_name(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    METADATA_NAMES.contains(&n.as_str())
}

/// Why a probe was not sent: the address (or a name's address) is one
/// checks may not reach.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "refused: {host} is {what}, which a check may not reach (it may serve the host's cloud credentials); point the check at the service's own address, or set [checks] allow_link_local = true in drctl.toml"
)]
pub struct Refused {
    /// The host of the URL.
    pub host: String,
    /// What it is (`the link-local address 169.254.169.254`, ...).
    pub what: String,
}

/// The probe's resolver: resolves a name, refuses it when it is a
/// metadata name or any of its addresses is refused, and otherwise hands
/// the client exactly the addresses it checked.
struct CheckedResolver {
    allow_link_local: bool,
    lookup: Lookup,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let allow = self.allow_link_local;
        let lookup = self.lookup.clone();
        Box::pin(async move {
            if !allow && metadata_name(&host) {
                return Err(Box::new(Refused {
                    what: "a cloud metadata service's name".into(),
                    host,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs = lookup(host.clone()).await?;
            if !allow && let Some(bad) = addrs.iter().find(|a| refused_address(a.ip())) {
                return Err(Box::new(Refused {
                    what: format!("resolved to the link-local address {}", bad.ip()),
                    host,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// [`Probe`] over `reqwest`.
pub struct HttpProbe {
    client: reqwest::Client,
    allow_link_local: bool,
}

impl HttpProbe {
    /// Builds the client (fails only when no TLS backend can start);
    /// `allow_link_local`: the operators let checks reach link-local and
    /// metadata addresses.
    pub fn new(allow_link_local: bool) -> Result<Self, reqwest::Error> {
        Self::with_lookup(allow_link_local, system_lookup())
    }

    /// [`HttpProbe::new`] resolving names with `lookup` (a test's names).
    pub fn with_lookup(allow_link_local: bool, lookup: Lookup) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                allow_link_local,
                lookup,
            }))
            .build()?;
        Ok(Self {
            client,
            allow_link_local,
        })
    }

    /// Why `url` may not be probed, from the URL alone: an address that
    /// is refused, or a metadata service's name (names are checked again,
    /// by their addresses, when resolved).
    fn refused_url(&self, url: &str) -> Option<Refused> {
        if self.allow_link_local {
            return None;
        }
        let u = reqwest::Url::parse(url).ok()?;
        // The URL parser writes an address in its one form (`2852039166`
        // and `0xa9.0xfe.0xa9.0xfe` are 169.254.169.254), IPv6 in brackets.
        let host = u.host_str()?;
        if metadata_name(host) {
            return Some(Refused {
                host: host.to_string(),
                what: "a cloud metadata service's name".into(),
            });
        }
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        refused_address(ip).then(|| Refused {
            host: ip.to_string(),
            what: format!("the link-local address {ip}"),
        })
    }
}

#[async_trait]
impl Probe for HttpProbe {
    async fn get(
        &self,
        region: &str,
        url: &str,
        timeout: Duration,
    ) -> Result<ProbeAnswer, CloudError> {
        let fail =
            |kind, message: String| CloudError::new("http", "GET", url, region, kind, message);
        let refused = |r: &Refused| fail(ErrorKind::Client, r.to_string()).with_code(REFUSED_CODE);
        if let Some(r) = self.refused_url(url) {
            return Err(refused(&r));
        }
        let t0 = Instant::now();
        let answer = tokio::time::timeout(timeout, async {
            let resp =
                self.client.get(url).timeout(timeout).send().await.map_err(
                    |e| match refused_in(&e) {
                        Some(r) => refused(r),
                        None => fail(ErrorKind::Connection, describe(&e)),
                    },
                )?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default();
            Ok::<_, CloudError>((status, body))
        })
        .await;
        let (status, body) = match answer {
            Ok(r) => r?,
            Err(_) => {
                return Err(fail(
                    ErrorKind::Connection,
                    format!("no answer within {} ms", timeout.as_millis()),
                ));
            }
        };
        let start: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        tracing::info!(
            "check {url} ({region}) answered HTTP {status}, {} bytes: {}",
            body.len(),
            crate::escape::terminal(&start)
        );
        Ok(ProbeAnswer {
            status,
            elapsed_ms: t0.elapsed().as_millis() as u64,
            body_bytes: body.len() as u64,
        })
    }
}

/// The refusal of the probe's resolver, when that is why a request failed.
fn refused_in(e: &reqwest::Error) -> Option<&Refused> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return Some(r);
        }
        source = s.source();
    }
    None
}

/// A transport failure in a few words (`connection refused`, `timed out`).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg = s.to_string();
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_addresses_are_refused() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "169.254.170.2",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            // Regression (issue 39): EKS Pod Identity's IPv6 agent, and the
            // local-use NAT64 prefix, were reachable.
            "fd00:ec2::23",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "64:ff9b:1:ffff::1",
        ] {
            assert!(refused_address(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "10.0.0.1",
            "169.253.255.255",
            "169.255.0.1",
            "::1",
            "fec0::1",
            "fd00:ec2::253",
            "fd00:ec2::24",
            "64:ff9b:2::1",
            "2600:1f18::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!refused_address(ok.parse().unwrap()), "{ok}");
        }
    }

    fn lookup(map: &'static [(&'static str, &'static str)]) -> Lookup {
        Arc::new(move |name: String| {
            let found: Vec<SocketAddr> = map
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, a)| SocketAddr::new(a.parse().unwrap(), 0))
                .collect();
            Box::pin(async move {
                if found.is_empty() {
                    Err(std::io::Error::other("no such name"))
                } else {
                    Ok(found)
                }
            })
        })
    }

    /// Regression: a `[[check]]` against the instance metadata address
    /// (or a name that resolves to it) reflected the host's credentials
    /// into errors, journals, reports and notifications.
    #[tokio::test]
    async fn regression_a_check_reached_the_metadata_address() {
        let probe = HttpProbe::with_lookup(
            false,
            lookup(&[
                ("rebind.test", "10.1.2.3"),
                ("rebind.test", "169.254.169.254"),
                ("v6.test", "fe80::1"),
            ]),
        )
        .unwrap();
        for url in [
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
            "http://2852039166/latest/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
            "http://rebind.test/",
            "http://v6.test:8080/",
        ] {
            let e = probe
                .get("us-east-1", url, Duration::from_secs(2))
                .await
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::Client, "{url}: {e}");
            assert!(e.message.starts_with("refused:"), "{url}: {e}");
            assert!(e.message.contains("allow_link_local"), "{url}: {e}");
            assert_eq!(e.code.as_deref(), Some(REFUSED_CODE));
        }
    }

    /// The probe connects to the address its resolver checked: the name
    /// is resolved once, by the resolver that judged it.
    #[tokio::test]
    async fn a_checked_name_is_connected_to_at_the_address_that_was_checked() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 11\r\nconnection: close\r\n\r\nSECRET-BODY")
                    .await;
            }
        });
        let probe = HttpProbe::with_lookup(false, lookup(&[("svc.test", "127.0.0.1")])).unwrap();
        let a = probe
            .get(
                "us-east-1",
                &format!("http://svc.test:{port}/healthz"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!((a.status, a.body_bytes), (503, 11));
        assert!(!format!("{a:?}").contains("SECRET"), "{a:?}");
        let allowed = HttpProbe::with_lookup(true, lookup(&[("svc.test", "127.0.0.1")])).unwrap();
        assert!(allowed.refused_url("http://169.254.169.254/").is_none());
    }
}
