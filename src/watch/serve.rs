//! The small HTTP server of `/metrics` and `/healthz`, bounded.
//!
//! A watcher runs for months, often reachable from a whole cluster network.
//! Its metrics endpoint must not become the way to stop it: a client that
//! opens connections and sends nothing (slowloris), or thousands of them,
//! or a process out of file descriptors, must cost a bounded amount and
//! never spin. So:
//! - at most [`Limits::max_connections`] connections are served at once;
//!   the next is accepted only when one ends (the rest wait in the kernel's
//!   backlog, and their clients time out on their own);
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
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send the request's headers.
    pub header_timeout: Duration,
    /// A connection's whole life.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 32,
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
    let mut backoff: Option<Duration> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let sock = match listener.accept().await {
            Ok((sock, _)) => {
                backoff = None;
                sock
            }
            Err(e) => {
                let wait = accept_backoff(backoff);
                if backoff.is_none() {
                    tracing::warn!(error = %e, "metrics: accept failed; backing off");
                }
                backoff = Some(wait);
                drop(slot);
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let respond = respond.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (status, kind, body) = respond(req.uri().path());
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
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
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
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
        })
        .await;
        // One client connects and sends nothing: it holds the only slot.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        tokio::task::yield_now().await;
        // A scrape waits while it does...
        let mut scrape = tokio::spawn(get(addr));
        let early = tokio::time::timeout(Duration::from_secs(1), &mut scrape).await;
        assert!(early.is_err(), "served past the connection cap");
        // ...and is served once the silent one is cut at its header timeout.
        let out = scrape.await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.contains("at /metrics"), "{out}");
        let mut rest = Vec::new();
        let n = silent.read_to_end(&mut rest).await.unwrap_or(0);
        // The silent client got at most a 408 and a closed connection.
        assert!(n == 0 || String::from_utf8_lossy(&rest).contains("408"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_trickles_forever_is_cut_at_its_life() {
        let addr = start(Limits {
            max_connections: 4,
            header_timeout: Duration::from_secs(3600),
            connection_timeout: Duration::from_secs(30),
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
