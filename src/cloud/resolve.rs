//! Asking DNS what a name resolves to: the real [`Resolver`], on
//! `hickory-resolver`.
//!
//! # Why resolution, and why these servers
//!
//! A data-plane switch (`switch = "health-check"`) moves traffic without a
//! Route 53 API call, so it cannot learn that the move took effect from
//! `GetChange` or a record listing either: both are Route 53's control plane,
//! hosted in us-east-1 alone. What clients see is what the zone's
//! authoritative servers answer, so that is what is asked: the servers of a
//! setting (`dns_servers`, `DRCTL_DNS_SERVERS`, `--dns-server`; the emulator
//! world writes `DRCTL_DNS_SERVER`), else the zone's own NS servers, found
//! through the system resolver and asked directly.
//!
//! Every question is asked afresh: the resolver keeps no cache (a cached
//! answer would say nothing about the moment it is read), does not recurse,
//! and gives up after a bounded timeout, so an unreachable server is a
//! prompt error, never a hang.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use hickory_resolver::{Resolver as Hickory, TokioResolver};

use super::{CloudError, ErrorKind, Resolver};

/// How long one question may take, all servers and both transports.
const QUESTION_TIMEOUT: Duration = Duration::from_secs(3);

/// [`Resolver`] over `hickory-resolver`.
pub struct DnsResolver {
    /// Servers from the settings; empty: the zone's NS servers.
    servers: Vec<SocketAddr>,
    /// The client for `servers`, built once (a verification asks many
    /// times); `None` when the servers are the zone's, found per question.
    fixed: Option<TokioResolver>,
}

impl DnsResolver {
    /// A resolver that asks `servers` (`host:port`, port 53 when left out),
    /// or the zone's NS servers when there are none.
    pub fn new(servers: &[String]) -> Result<Self, String> {
        let servers = servers
            .iter()
            .map(|s| parse_server(s))
            .collect::<Result<Vec<_>, _>>()?;
        let fixed = if servers.is_empty() {
            None
        } else {
            Some(Self::client(&servers)?)
        };
        Ok(Self { servers, fixed })
    }

    fn client(servers: &[SocketAddr]) -> Result<TokioResolver, String> {
        let name_servers = servers
            .iter()
            .map(|a| {
                let mut udp = ConnectionConfig::udp();
                udp.port = a.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = a.port();
                let mut ns = NameServerConfig::udp_and_tcp(a.ip());
                ns.connections = vec![udp, tcp];
                ns
            })
            .collect();
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.recursion_desired = false;
        opts.timeout = QUESTION_TIMEOUT;
        opts.attempts = 1;
        let mut b = Hickory::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        );
        *b.options_mut() = opts;
        b.build().map_err(|e| e.to_string())
    }

    /// The zone's authoritative servers: its NS records, through the system
    /// resolver, and their addresses.
    async fn zone_servers(
        zone: &str,
        fail: &(dyn Fn(String) -> CloudError + Sync),
    ) -> Result<Vec<SocketAddr>, CloudError> {
        let system = TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| {
                fail(format!(
                    "no system resolver to find the zone's NS servers: {e}"
                ))
            })?;
        let ns = system
            .lookup(zone, RecordType::NS)
            .await
            .map_err(|e| fail(format!("cannot read the NS records of {zone}: {e}")))?;
        let mut out = Vec::new();
        for r in ns.answers() {
            let host = r.data.to_string();
            if let Ok(ips) = system.lookup_ip(host.as_str()).await {
                out.extend(ips.iter().map(|ip| SocketAddr::new(ip, 53)));
            }
        }
        if out.is_empty() {
            return Err(fail(format!("the NS servers of {zone} have no address")));
        }
        Ok(out)
    }
}

/// `host:port` or a bare host (port 53); a host name is looked up once.
fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let with_port = if s.contains(':') {
        s.to_string()
    } else {
        format!("{s}:53")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("DNS server `{s}` is neither HOST:PORT nor a name that resolves"))
}

#[async_trait]
impl Resolver for DnsResolver {
    async fn resolve(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Result<Vec<String>, CloudError> {
        let fail = |kind, m: String| CloudError::new("dns", "query", name, "global", kind, m);
        let rt: RecordType = rtype
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| fail(ErrorKind::Client, format!("unknown record type {rtype}")))?;
        let (servers, client) = match &self.fixed {
            Some(client) => (self.servers.clone(), client.clone()),
            None => {
                let servers = Self::zone_servers(zone, &|m| fail(ErrorKind::Connection, m)).await?;
                let client = Self::client(&servers).map_err(|m| fail(ErrorKind::Client, m))?;
                (servers, client)
            }
        };
        let fqdn = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        match client.lookup(fqdn.as_str(), rt).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter(|r| r.record_type() == rt)
                .map(|r| r.data.to_string())
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(fail(
                ErrorKind::Connection,
                format!("no answer from {}: {e}", show(&servers)),
            )),
        }
    }

    fn servers(&self) -> String {
        if self.servers.is_empty() {
            "the zone's NS servers".into()
        } else {
            show(&self.servers)
        }
    }
}

fn show(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_host_port_or_bare_ips() {
        assert_eq!(
            parse_server("127.0.0.1:8053").ok(),
            "127.0.0.1:8053".parse().ok()
        );
        assert_eq!(parse_server(" 10.0.0.2 ").ok(), "10.0.0.2:53".parse().ok());
        assert!(parse_server("no such host.invalid:x").is_err());
    }

    #[tokio::test]
    async fn a_server_that_does_not_answer_is_an_error_not_a_hang() {
        // A UDP port nobody reads: the question times out within its bound.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = sock.local_addr().expect("addr").to_string();
        let r = DnsResolver::new(&[addr]).expect("resolver");
        let started = std::time::Instant::now();
        let err = r
            .resolve("example.com.", "api.example.com.", "CNAME")
            .await
            .expect_err("no answer");
        assert!(started.elapsed() < Duration::from_secs(20), "{err}");
    }
}
