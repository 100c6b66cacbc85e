//! The small HTTP server of `/metrics` and `/healthz`, bounded.
//!
//! A watcher runs for months, often reachable from a whole cluster network.
//! Its metrics endpoint must not become the way to stop it: a client that
//! opens connections and sends nothing (slowloris), or thousands of them,
//! or a process out of file descriptors, must cost a bounded amount and
//! never spin. So:
//! - at most [`Limits::max_connections`] connections are served at once,
//!   and at most [`Limits::per_peer`] from one address: a connection past
//!   either is closed as soon as it is accepted, so accepting never waits;
//! - liveness has slots of its own ([`Limits::health_slots`]): when every
//!   other slot is taken (one client reconnecting in a loop, many silent
//!   ones), a connection still gets one of these and is answered only if
//!   it asks for `/healthz` (anything else: 503), so no client can make
//!   the watcher fail its liveness probe and be restarted in an outage;
//! - a connection must send its request headers within
//!   [`Limits::header_timeout`], and lives at most [`Limits::connection_timeout`]
//!   in all; keep-alive is off (a scrape is one request);
//! - an error from `accept` (EMFILE, ENFILE, ECONNABORTED) waits before the
//!   next try, doubling up to [`MAX_ACCEPT_BACKOFF`], instead of looping hot.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;

/// The longest wait after repeated `accept` errors.
pub const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// How much the server gives any client.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (besides the health slots).
    pub max_connections: usize,
    /// Connections kept for `/healthz` alone, when the others are taken.
    pub health_slots: usize,
    /// Connections one peer address may hold at once.
    pub per_peer: usize,
    /// Time to send the request's headers.
    pub header_timeout: Duration,
    /// A connection's whole life.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 32,
            health_slots: 4,
            per_peer: 8,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// An answer: status, content type, body.
pub type Answer = (u16, &'static str, String);

/// What answers a request, by its path.
pub type Respond = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// The wait before the next `accept` after an error, given the last wait
/// (`None` after a success): 10 ms, doubling, at most [`MAX_ACCEPT_BACKOFF`].
pub fn accept_backoff(last: Option<Duration>) -> Duration {
    match last {
        None => FIRST_ACCEPT_BACKOFF,
        Some(d) => (d * 2).min(MAX_ACCEPT_BACKOFF),
    }
}

/// Serves `listener` until the task is dropped: each connection in a task
/// of its own, under `limits`.
pub async fn serve(listener: tokio::net::TcpListener, limits: Limits, respond: Respond) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let health = Arc::new(tokio::sync::Semaphore::new(limits.health_slots));
    let peers: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
        Arc::default();
    let mut backoff: Option<Duration> = None;
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff = None;
                accepted
            }
            Err(e) => {
                let wait = accept_backoff(backoff);
                if backoff.is_none() {
                    tracing::warn!(error = %e, "metrics: accept failed; backing off");
                }
                backoff = Some(wait);
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        // One peer's share, then a slot: a general one, else a health one
        // (then only `/healthz` is answered); with neither, closed now.
        let Some(share) = PeerShare::take(&peers, peer.ip(), limits.per_peer) else {
            continue;
        };
        let (slot, health_only) = match slots.clone().try_acquire_owned() {
            Ok(s) => (s, false),
            Err(_) => match health.clone().try_acquire_owned() {
                Ok(s) => (s, true),
                Err(_) => continue,
            },
        };
        let respond = respond.clone();
        tokio::spawn(async move {
            let _held = (slot, share);
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let path = req.uri().path();
                    let (status, kind, body) = if health_only && path != "/healthz" {
                        (503, "text/plain", "busy: try again\n".to_string())
                    } else {
                        respond(path)
                    };
                    let resp = hyper::Response::builder()
                        .status(status)
                        .header("content-type", kind)
                        .body(Full::new(Bytes::from(body)));
                    async move { resp }
                });
            let io = hyper_util::rt::TokioIo::new(sock);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(false)
                .max_buf_size(16 * 1024);
            let conn = builder.serve_connection(io, service);
            // Past its life the connection is dropped, whatever it is doing.
            let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
        });
    }
}

/// One connection counted against its peer's share; given back on drop.
struct PeerShare {
    peers: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl PeerShare {
    /// A share of `ip`'s `max`, unless it holds them all.
    fn take(
        peers: &Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
        max: usize,
    ) -> Option<Self> {
        let mut held = peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = held.entry(ip).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(Self {
            peers: peers.clone(),
            ip,
        })
    }
}

impl Drop for PeerShare {
    fn drop(&mut self) {
        let mut held = (self.peers.lock()).unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start(limits: Limits) -> std::net::SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let respond: Respond = Arc::new(|p: &str| (200, "text/plain", format!("at {p}\n")));
        tokio::spawn(serve(l, limits, respond));
        addr
    }

    async fn get(addr: std::net::SocketAddr) -> String {
        get_path(addr, "/metrics").await
    }

    async fn get_path(addr: std::net::SocketAddr, path: &str) -> String {
        get_from(addr, path, [127, 0, 0, 1]).await
    }

    /// A connection to `addr` from the loopback address `from`.
    async fn connect_from(addr: std::net::SocketAddr, from: [u8; 4]) -> TcpStream {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(std::net::SocketAddr::new(from.into(), 0)).unwrap();
        s.connect(addr).await.unwrap()
    }

    async fn get_from(addr: std::net::SocketAddr, path: &str, from: [u8; 4]) -> String {
        let mut c = connect_from(addr, from).await;
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out).await;
        out
    }

    #[test]
    fn accept_errors_back_off_doubling_to_a_second() {
        let mut d = None;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let w = accept_backoff(d);
            seen.push(w.as_millis());
            d = Some(w);
        }
        assert_eq!(seen[..4], [10, 20, 40, 80]);
        assert_eq!(*seen.last().unwrap(), 1000);
        assert_eq!(accept_backoff(None), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn regression_a_silent_connection_held_a_slot_forever() {
        let addr = start(Limits {
            max_connections: 1,
            health_slots: 0,
            header_timeout: Duration::from_secs(5),
            ..Limits::default()
        })
        .await;
        // One client connects and sends nothing: it holds the only slot,
        // and a scrape meanwhile is turned away at once, not queued.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        tokio::task::yield_now().await;
        assert_eq!(get(addr).await, "", "served past the connection cap");
        // The silent one is cut at its header timeout; then scrapes are
        // served again.
        let mut rest = Vec::new();
        let n = silent.read_to_end(&mut rest).await.unwrap_or(0);
        // The silent client got at most a 408 and a closed connection.
        assert!(n == 0 || String::from_utf8_lossy(&rest).contains("408"));
        tokio::task::yield_now().await;
        let out = get(addr).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("at /metrics"), "{out}");
    }

    /// Regression (issue 39): liveness shared the connection slots, so one
    /// client holding them (reconnecting, or silent) made `/healthz` wait
    /// until the probe failed and the watcher was restarted. It has slots
    /// of its own, and one peer cannot take every slot.
    #[tokio::test(start_paused = true)]
    async fn regression_one_client_holding_every_slot_failed_liveness() {
        let addr = start(Limits {
            max_connections: 4,
            health_slots: 1,
            per_peer: 2,
            ..Limits::default()
        })
        .await;
        // Two silent connections from one address: its whole share.
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(connect_from(addr, [127, 0, 0, 1]).await);
            tokio::task::yield_now().await;
        }
        // A third from it is closed at once, unanswered.
        assert_eq!(get_from(addr, "/healthz", [127, 0, 0, 1]).await, "");
        // Another address still gets a general slot.
        let out = get_from(addr, "/metrics", [127, 0, 0, 2]).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        drop(held);
        tokio::time::sleep(Duration::from_millis(10)).await;
        // With every general slot held by silent clients of four addresses,
        // `/healthz` is still answered; anything else on the health slot
        // is told to come back.
        let mut silent = Vec::new();
        for i in 3..7u8 {
            silent.push(connect_from(addr, [127, 0, 0, i]).await);
            tokio::task::yield_now().await;
        }
        let out = get_from(addr, "/healthz", [127, 0, 0, 9]).await;
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("at /healthz"), "{out}");
        tokio::time::sleep(Duration::from_millis(10)).await;
        let out = get_from(addr, "/metrics", [127, 0, 0, 9]).await;
        assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_trickles_forever_is_cut_at_its_life() {
        let addr = start(Limits {
            max_connections: 4,
            header_timeout: Duration::from_secs(3600),
            connection_timeout: Duration::from_secs(30),
            ..Limits::default()
        })
        .await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
        let started = tokio::time::Instant::now();
        // A header line now and then, never the end of the headers.
        let mut buf = [0u8; 64];
        loop {
            tokio::select! {
                r = c.read(&mut buf) => { assert_eq!(r.unwrap_or(0), 0); break; }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if c.write_all(b"x-a: b\r\n").await.is_err() { break; }
                }
            }
        }
        let lived = started.elapsed();
        assert!(
            lived >= Duration::from_secs(29) && lived <= Duration::from_secs(32),
            "{lived:?}"
        );
        // The server still serves.
        assert!(get(addr).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn one_request_per_connection() {
        let addr = start(Limits::default()).await;
        let out = get(addr).await;
        assert!(
            out.to_ascii_lowercase().contains("connection: close"),
            "{out}"
        );
    }
}
