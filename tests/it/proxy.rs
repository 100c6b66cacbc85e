//! A fault-injecting HTTP proxy of the project's own, for tests.
//!
//! # Why it exists
//!
//! The emulators (LocalStack, moto, fake-gcs-server) answer instantly and
//! never fail: states are instantaneous, nothing is ever throttled, no
//! connection ever drops. So the paths of drctl that retry, time out or wait
//! for a transitional state would go untested (see the design note
//! `emulators.md`, "What the emulators cannot show"). Rather than adding
//! test-only branches to drctl, a test puts this proxy between the real
//! adapters and an emulator, by pointing one endpoint of `CloudSettings`
//! (e.g. `rds_endpoint`) at [`FaultProxy::url`], and tells it what to break:
//!
//! ```ignore
//! let proxy = FaultProxy::start("http://127.0.0.1:5000").await;
//! proxy.inject(Match::Action("DescribeDBInstances"), Fault::Throttle, 2);
//! // ... drive the adapter with rds_endpoint = proxy.url() ...
//! assert_eq!(proxy.requests(Match::Action("DescribeDBInstances")), 3);
//! ```
//!
//! # What it does
//!
//! Every request (method, path and query, headers, body) is forwarded over
//! HTTP/1.1 to the upstream unchanged, the `Host` header included (SigV4
//! signs it; the emulators do not verify signatures anyway), and the response
//! is sent back. Before forwarding, the first *unspent* rule whose [`Match`]
//! fits the request fires its [`Fault`] and counts down; a rule fired as many
//! times as injected is spent. Every request is recorded, so a test can
//! assert how many requests of a kind arrived ([`FaultProxy::requests`]) and
//! how many reached the emulator ([`FaultProxy::forwarded`]): "the promotion
//! was sent exactly once".
//!
//! The region of a request is that of its SigV4 credential scope. An unsigned
//! request (Route 53's health checkers send anonymous GETs) has no scope: its
//! region then comes from a `Host` header naming a regional S3 endpoint,
//! `s3.<region>.amazonaws.com` or `<bucket>.s3.<region>.amazonaws.com` (with
//! or without `:port`), which is what a health check with
//! `FullyQualifiedDomainName=s3.<region>.amazonaws.com` sends. So
//! [`Match::Region`] takes a region's health-check target down too.
//!
//! Error bodies are in the `<ErrorResponse><Error>..` shape that the AWS query
//! protocol (RDS, Auto Scaling, CloudWatch, STS) and Route 53's REST-XML
//! protocol parse; S3 (root `<Error>`) would not read the code from them.
//!
//! Scope, kept small on purpose: HTTP/1.1 only, request bodies sized by
//! `Content-Length` (what the AWS SDK sends), one upstream connection per
//! request, response bodies buffered whole. It runs as tasks on the test's
//! tokio runtime and stops (with all its connections) when dropped.

#![allow(dead_code)] // each test uses its own part of the API

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::timed::{Admitted, TimedWorld};

/// Which requests a rule (or a count) applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// Every request.
    Any,
    /// Requests of one operation: the `Action` parameter of the AWS query
    /// protocols (form body or query string), or the operation named by an
    /// `X-Amz-Target` header (JSON protocols). Route 53 (REST) has no action:
    /// use [`Match::PathContains`].
    Action(&'static str),
    /// Requests whose path and query contain this text
    /// (`/2013-04-01/hostedzonesbyname`, an id...).
    PathContains(String),
    /// Requests of this method whose path and query contain this text
    /// (`POST` and `/rrset`: Route 53 changes).
    MethodPath(&'static str, String),
    /// Requests whose body contains this text (an instance id...).
    BodyContains(String),
    /// Requests signed for this region: the region of the SigV4 credential
    /// scope in the `Authorization` header (`Credential=KEY/DATE/REGION/
    /// SERVICE/aws4_request`); for an unsigned request, the region of a
    /// `Host: [<bucket>.]s3.<region>.amazonaws.com` header. This is how a
    /// test takes one region down while every service of every region
    /// shares one emulator endpoint.
    Region(&'static str),
}

/// What a rule does to a request it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer HTTP 400 `Throttling` / "Rate exceeded" without forwarding.
    Throttle,
    /// Answer this (5xx) status without forwarding, with the error code AWS
    /// uses for it (`InternalFailure` for 500, `ServiceUnavailable` else).
    Status(u16),
    /// Answer this status with this error code, without forwarding.
    Error {
        /// HTTP status.
        status: u16,
        /// AWS error code (`InvalidParameterValue`...).
        code: &'static str,
    },
    /// Read the request, then close the connection without any answer; the
    /// request never reaches the upstream.
    Drop,
    /// Forward the request (the upstream acts on it), then close the
    /// connection without passing the answer on: the client cannot tell
    /// whether its request took effect.
    DropAfterForward,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward at once (the upstream answers as of now), then hold the
    /// answer this long: a client that read state, then paused before it
    /// acted on it.
    DelayAnswer(Duration),
    /// Hold the request until the test opens the gate, then forward it:
    /// a request that reaches the cloud only after what the test waits
    /// for has happened (not after a time that suits one machine).
    Hold(Gate),
    /// Forward at once (the upstream answers as of now), then hold the
    /// answer until the test opens the gate: a client that read state and
    /// is stopped (by the test) before it can act on it.
    HoldAnswer(Gate),
    /// Read the request, then reset the connection (TCP RST, no answer):
    /// what a client sees from a region whose endpoints refuse it.
    Reset,
    /// Read the request and never answer, holding the connection open
    /// until the proxy stops: a region that has gone silent.
    Hang,
    /// Forward without these request headers (case-insensitive): what a
    /// store that ignores conditional-write headers does with them.
    StripHeaders(Vec<&'static str>),
    /// Forward, then replace every `from` by `to` in the response body
    /// (`Content-Length` fixed), e.g. to hold a resource in a transitional
    /// state for a few polls.
    Rewrite {
        /// Text to replace.
        from: String,
        /// Replacement.
        to: String,
    },
}

/// What [`Fault::Hold`] and [`Fault::HoldAnswer`] wait on: closed until
/// [`Gate::open`], open for good then. Clones share it.
#[derive(Clone, Default)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets every request or answer held at it (and any later) through.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    /// Returns once the gate is open.
    async fn passed(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if *self.0.borrow() { "open" } else { "closed" };
        write!(f, "Gate({state})")
    }
}

impl PartialEq for Gate {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Gate {}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    url: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

struct Rule {
    matcher: Match,
    fault: Fault,
    remaining: usize,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
struct Seen {
    region: Option<String>,
    method: String,
    target: String,
    amz_target: Option<String>,
    body: String,
    fault: Option<Fault>,
    forwarded: bool,
    /// Its answer was written back to the client.
    answered: bool,
}

struct State {
    /// `host:port` of the upstream.
    upstream: String,
    /// AWS's behaviour in time, when the proxy carries the model
    /// ([`FaultProxy::start_timed`]).
    timed: Option<Arc<TimedWorld>>,
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
}

/// A mutex's guard, also after a panic elsewhere poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:<random port>` in front of `upstream`
    /// (`http://127.0.0.1:5000`), with no faults.
    pub async fn start(upstream: &str) -> FaultProxy {
        Self::start_with(upstream, None).await
    }

    /// Starts a proxy in front of `upstream` that carries the model of AWS
    /// in time at `world`'s scale (latency, AWS's buckets, operations that
    /// take time); rules injected still come first.
    pub async fn start_timed(upstream: &str, world: Arc<TimedWorld>) -> FaultProxy {
        Self::start_with(upstream, Some(world)).await
    }

    async fn start_with(upstream: &str, timed: Option<Arc<TimedWorld>>) -> FaultProxy {
        let authority = upstream
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            !upstream.starts_with("https://") && !authority.is_empty(),
            "FaultProxy forwards plain http only, not {upstream}"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy on loopback");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = Arc::new(State {
            upstream: authority,
            timed,
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in this set: aborting the accept loop drops
            // the set, which aborts every connection with it.
            let mut connections = JoinSet::new();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let _ = sock.set_nodelay(true);
                while connections.try_join_next().is_some() {}
                connections.spawn(serve(sock, shared.clone()));
            }
        });
        FaultProxy { url, state, task }
    }

    /// The URL to put into a `CloudSettings` endpoint.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Adds a rule: the next `times` requests matching `matcher` (and not
    /// taken by an earlier rule) get `fault`.
    pub fn inject(&self, matcher: Match, fault: Fault, times: usize) {
        lock(&self.state.rules).push(Rule {
            matcher,
            fault,
            remaining: times,
        });
    }

    /// Removes every rule: from now on every request is forwarded (the
    /// region, or the destination, is back).
    pub fn clear(&self) {
        lock(&self.state.rules).clear();
    }

    /// How many requests matching `matcher` arrived (faulted or not).
    pub fn requests(&self, matcher: Match) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|s| matcher.fits(s))
            .count()
    }

    /// How many requests matching `matcher` were passed to the upstream
    /// (which then acted on them, whatever the client received).
    pub fn forwarded(&self, matcher: Match) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|s| s.forwarded && matcher.fits(s))
            .count()
    }

    /// The place (in arrival order, from 0) of the first request matching
    /// `matcher`, if one arrived.
    pub fn first(&self, matcher: Match) -> Option<usize> {
        lock(&self.state.seen).iter().position(|s| matcher.fits(s))
    }

    /// How many requests matching `matcher`, from place `since` on (see
    /// [`FaultProxy::first`]), have had their answer written back to the
    /// client.
    pub fn answered_since(&self, since: usize, matcher: Match) -> usize {
        lock(&self.state.seen)
            .iter()
            .skip(since)
            .filter(|s| s.answered && matcher.fits(s))
            .count()
    }

    /// Faults injected but not fired yet, over all rules.
    pub fn unspent(&self) -> usize {
        lock(&self.state.rules).iter().map(|r| r.remaining).sum()
    }

    /// One line per request so far (`POST / DescribeDBInstances -> Throttle`),
    /// for assertion messages.
    pub fn log(&self) -> Vec<String> {
        lock(&self.state.seen)
            .iter()
            .map(|s| {
                let what = action_of(s).unwrap_or_default();
                let fault = s
                    .fault
                    .as_ref()
                    .map(|f| format!(" -> {f:?}"))
                    .unwrap_or_default();
                let region = s.region.as_deref().unwrap_or("-");
                format!("{} {} [{region}] {what}{fault}", s.method, s.target)
            })
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Match {
    fn fits(&self, s: &Seen) -> bool {
        match self {
            Match::Any => true,
            Match::Action(name) => action_of(s).as_deref() == Some(*name),
            Match::PathContains(text) => s.target.contains(text.as_str()),
            Match::MethodPath(method, text) => {
                s.method == *method && s.target.contains(text.as_str())
            }
            Match::BodyContains(text) => s.body.contains(text.as_str()),
            Match::Region(region) => s.region.as_deref() == Some(*region),
        }
    }
}

/// The operation of a request: `Action=` in the query or the form body, or
/// the part after the last dot of `X-Amz-Target`.
fn action_of(s: &Seen) -> Option<String> {
    let query = s.target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let from_form = |form: &str| {
        form.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "Action")
            .map(|(_, v)| v.to_string())
    };
    from_form(query).or_else(|| from_form(&s.body)).or_else(|| {
        let t = s.amz_target.as_deref()?;
        Some(t.rsplit('.').next().unwrap_or(t).to_string())
    })
}

/// A request read off the client connection.
#[derive(Clone)]
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
    close: bool,
}

/// An upstream answer.
struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Bytes,
}

/// Serves one client connection (keep-alive: request after request).
async fn serve(mut sock: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    loop {
        let req = match read_request(&mut sock, &mut buf).await {
            Ok(Some(req)) => req,
            Ok(None) => return,
            Err(msg) => {
                let answer = error_answer(501, "NotImplemented", &msg);
                let _ = write_answer(&mut sock, &answer, false).await;
                return;
            }
        };
        let (index, fault) = state.admit(&req);
        let answer = match &fault {
            Some(Fault::Throttle) => error_answer(400, "Throttling", "Rate exceeded"),
            Some(Fault::Status(status)) => {
                let code = if *status == 500 {
                    "InternalFailure"
                } else {
                    "ServiceUnavailable"
                };
                error_answer(*status, code, "injected by FaultProxy")
            }
            Some(Fault::Error { status, code }) => {
                error_answer(*status, code, "injected by FaultProxy")
            }
            Some(Fault::Drop) => return,
            Some(Fault::Reset) => {
                // Linger 0: closing sends RST instead of FIN.
                let _ = sock.set_zero_linger();
                return;
            }
            Some(Fault::Hang) => {
                std::future::pending::<()>().await;
                return;
            }
            Some(Fault::DropAfterForward) => {
                let _ = state.forward(index, &req).await;
                return;
            }
            Some(Fault::Delay(delay)) => {
                tokio::time::sleep(*delay).await;
                state.forward(index, &req).await
            }
            Some(Fault::DelayAnswer(delay)) => {
                let answer = state.forward(index, &req).await;
                tokio::time::sleep(*delay).await;
                answer
            }
            Some(Fault::Hold(gate)) => {
                gate.passed().await;
                state.mark(index, |s| s.forwarded = true);
                state.forward(index, &req).await
            }
            Some(Fault::HoldAnswer(gate)) => {
                let answer = state.forward(index, &req).await;
                gate.passed().await;
                answer
            }
            Some(Fault::StripHeaders(names)) => {
                let mut stripped = req.clone();
                stripped
                    .headers
                    .retain(|(n, _)| !names.iter().any(|x| x.eq_ignore_ascii_case(n)));
                state.forward(index, &stripped).await
            }
            Some(Fault::Rewrite { from, to }) => {
                let mut answer = state.forward(index, &req).await;
                let text = String::from_utf8_lossy(&answer.body).replace(from, to);
                answer.body = Bytes::from(text);
                answer
            }
            None => match &state.timed {
                None => state.forward(index, &req).await,
                Some(world) => state.pass_timed(world, index, &req).await,
            },
        };
        let head_only = req.method == "HEAD";
        if write_answer(&mut sock, &answer, head_only).await.is_err() {
            return;
        }
        state.mark(index, |s| s.answered = true);
        if req.close {
            return;
        }
    }
}

impl State {
    /// Records the request and picks the fault of the first unspent rule
    /// that matches it. Returns the request's index in the log.
    fn admit(&self, req: &Request) -> (usize, Option<Fault>) {
        let amz_target = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
            .map(|(_, v)| String::from_utf8_lossy(v).to_string());
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        };
        let region = header("authorization")
            .as_deref()
            .and_then(credential_scope)
            .map(|(region, _)| region)
            .or_else(|| header("host").as_deref().and_then(s3_host_region));
        let mut seen = Seen {
            region,
            method: req.method.clone(),
            target: req.target.clone(),
            amz_target,
            body: String::from_utf8_lossy(&req.body).to_string(),
            fault: None,
            forwarded: false,
            answered: false,
        };
        {
            let mut rules = lock(&self.rules);
            if let Some(rule) = rules
                .iter_mut()
                .find(|r| r.remaining > 0 && r.matcher.fits(&seen))
            {
                rule.remaining -= 1;
                seen.fault = Some(rule.fault.clone());
            }
        }
        seen.forwarded = !matches!(
            seen.fault,
            Some(
                Fault::Throttle
                    | Fault::Status(_)
                    | Fault::Error { .. }
                    | Fault::Drop
                    | Fault::Reset
                    | Fault::Hang
                    | Fault::Hold(_)
            )
        );
        let fault = seen.fault.clone();
        let mut log = lock(&self.seen);
        log.push(seen);
        (log.len() - 1, fault)
    }

    /// Passes `req` through the model: its latency and AWS's buckets first
    /// (a refusal is answered here, not forwarded), then the upstream, then
    /// the answer as AWS would give it now.
    async fn pass_timed(&self, world: &TimedWorld, index: usize, req: &Request) -> Answer {
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).to_string())
        };
        let body = String::from_utf8_lossy(&req.body).to_string();
        let action = {
            let seen = lock(&self.seen);
            seen.get(index).and_then(action_of)
        };
        let scope = header("authorization")
            .as_deref()
            .and_then(credential_scope);
        match world
            .admit(scope, &req.method, &req.target, action, &body)
            .await
        {
            Admitted::Refuse {
                status,
                code,
                message,
            } => {
                if let Some(s) = lock(&self.seen).get_mut(index) {
                    s.forwarded = false;
                }
                error_answer(status, code, &message)
            }
            Admitted::Pass(call) => {
                let mut answer = self.forward(index, req).await;
                let text = String::from_utf8_lossy(&answer.body).to_string();
                if let Some(now) = world.after(&call, answer.status, &text, &body) {
                    answer.body = Bytes::from(now);
                }
                answer
            }
        }
    }

    /// Forwards `req` upstream; an unreachable upstream is a 502 (and the
    /// request is then not counted as forwarded).
    /// Changes what was recorded of request `index`.
    fn mark(&self, index: usize, change: impl FnOnce(&mut Seen)) {
        if let Some(s) = lock(&self.seen).get_mut(index) {
            change(s);
        }
    }

    async fn forward(&self, index: usize, req: &Request) -> Answer {
        match self.send_upstream(req).await {
            Ok(answer) => answer,
            Err(msg) => {
                self.mark(index, |s| s.forwarded = false);
                error_answer(502, "BadGateway", &format!("FaultProxy: upstream: {msg}"))
            }
        }
    }

    async fn send_upstream(&self, req: &Request) -> Result<Answer, String> {
        let stream = TcpStream::connect(&self.upstream)
            .await
            .map_err(|e| format!("connect {}: {e}", self.upstream))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut builder = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(req.target.as_str());
        for (name, value) in &req.headers {
            if !is_hop_by_hop(name) {
                builder = builder.header(name.as_str(), value.as_slice());
            }
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
            .collect();
        Ok(Answer {
            status: parts.status.as_u16(),
            headers,
            body,
        })
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "upgrade",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// An AWS error answer in the `ErrorResponse` shape (query protocol,
/// Route 53).
fn error_answer(status: u16, code: &str, message: &str) -> Answer {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>\
         <Message>{message}</Message></Error>\
         <RequestId>fault-proxy</RequestId></ErrorResponse>"
    );
    Answer {
        status,
        headers: vec![("content-type".into(), b"text/xml".to_vec())],
        body: Bytes::from(body),
    }
}

/// The region and service of a SigV4 `Authorization` header's credential
/// scope (`Credential=KEY/DATE/REGION/SERVICE/aws4_request`).
fn credential_scope(authorization: &str) -> Option<(String, String)> {
    let scope = authorization
        .split("Credential=")
        .nth(1)?
        .split(',')
        .next()?;
    let mut parts = scope.split('/').skip(2);
    Some((parts.next()?.to_string(), parts.next()?.to_string()))
}

/// The region of a regional S3 endpoint name, `s3.<region>.amazonaws.com`
/// or `<bucket>.s3.<region>.amazonaws.com`, with or without `:port`.
fn s3_host_region(host: &str) -> Option<String> {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let labels: Vec<&str> = name
        .trim_end_matches('.')
        .strip_suffix(".amazonaws.com")?
        .split('.')
        .collect();
    match labels.as_slice() {
        [.., "s3", region] if !region.is_empty() => Some((*region).to_string()),
        _ => None,
    }
}

/// Reads one request (head, then a `Content-Length` body) from `sock`;
/// `buf` keeps bytes read past it. `Ok(None)` when the client closed.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Request>, String> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let n = sock.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, Vec<u8>)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().as_bytes().to_vec()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).to_string())
    };
    if header("transfer-encoding").is_some() {
        return Err("FaultProxy reads Content-Length bodies only".into());
    }
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let total = head_end + 4 + len;
    while buf.len() < total {
        let n = sock.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = Bytes::copy_from_slice(&buf[head_end + 4..total]);
    buf.drain(..total);
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
        close,
    }))
}

/// Writes `answer` with a `Content-Length` of its (possibly rewritten) body;
/// an answer without a body (to HEAD, or 204/304) keeps the upstream's
/// headers as they are.
async fn write_answer(
    sock: &mut TcpStream,
    answer: &Answer,
    head_only: bool,
) -> std::io::Result<()> {
    let no_body = head_only || matches!(answer.status, 204 | 304);
    let reason = hyper::StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", answer.status).into_bytes();
    for (name, value) in &answer.headers {
        if is_hop_by_hop(name) || (!no_body && name.eq_ignore_ascii_case("content-length")) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !no_body {
        out.extend_from_slice(format!("content-length: {}\r\n", answer.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !no_body {
        out.extend_from_slice(&answer.body);
    }
    sock.write_all(&out).await?;
    sock.flush().await
}

#[cfg(test)]
mod tests {
    use super::s3_host_region;

    #[test]
    fn unsigned_requests_take_their_region_from_an_s3_host() {
        let region = |h| s3_host_region(h);
        assert_eq!(
            region("s3.us-east-1.amazonaws.com"),
            Some("us-east-1".into())
        );
        assert_eq!(
            region("s3.eu-west-1.amazonaws.com:4566"),
            Some("eu-west-1".into())
        );
        assert_eq!(
            region("b.x.s3.us-west-2.amazonaws.com"),
            Some("us-west-2".into())
        );
        assert_eq!(region("127.0.0.1:4566"), None);
        assert_eq!(region("s3.amazonaws.com"), None);
        assert_eq!(region("rds.us-east-1.amazonaws.com"), None);
    }
}
