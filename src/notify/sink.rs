//! Sending one event to one sink, once: the request each kind of sink
//! expects, and what its answer means.
//!
//! A webhook is signed per Standard Webhooks 1.0 (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! id.timestamp.body>`, one signature per active secret so keys can
//! rotate). Slack gets Block Kit laid out for a person, at most one message
//! a second per webhook, `Retry-After` honoured. PagerDuty gets Events API
//! v2: a failover (or a failed drill) triggers an incident whose
//! `dedup_key` is the run id, its success resolves it, and everything else
//! is a change event that pages nobody. SNS and EventBridge are published
//! in the run's target region through the cloud layer.
//!
//! Secrets are read here, when an event is sent, and kept in memory only:
//! they are never journaled, logged or rendered (a sink's `Debug` shows its
//! name and kind). A plan's own sink is held here, again, to the operators'
//! rules (`crate::plan::notify::SinkRules`): what validation found when the
//! plan was checked may have changed since (a variable set, a file
//! replaced by a link).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::json;

use crate::journal::notice::{CloudEvent, EventType, Severity};
use crate::plan::duration::{MAX_DURATION, parse_duration};
pub use crate::plan::notify::{Env, PAGERDUTY_EVENTS, process_env};
use crate::plan::notify::{NotifySpec, Origin, STANDARD_RETRY, SinkKind, SinkRules};

/// Default bound on one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A sink ready to send: its entry with its secrets read.
pub struct Sink {
    /// The entry.
    pub spec: NotifySpec,
    /// Its kind.
    pub kind: SinkKind,
    url: Option<String>,
    /// Standard Webhooks keys (decoded), or PagerDuty's routing key as bytes.
    secrets: Vec<Vec<u8>>,
    /// Waits before each retry.
    pub retry: Vec<Duration>,
    /// Bound on one attempt.
    pub timeout: Duration,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.spec.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Whether the sink took the event.
    pub delivered: bool,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// What the sink said (its body's start, or the service's message id),
    /// or why the attempt failed.
    pub detail: String,
    /// The sink asked to wait this long before the next attempt (429).
    pub retry_after: Option<Duration>,
}

impl Answer {
    fn failed(detail: impl Into<String>) -> Self {
        Self {
            delivered: false,
            status: None,
            detail: detail.into(),
            retry_after: None,
        }
    }
}

/// Reads a secret value from `env` or `file` (one of them, or none); a
/// plan's sink (`rules`) only from a `DRCTL_NOTIFY_*` variable or a file
/// inside the secrets directory.
fn secret(
    (plan, name): (Option<&str>, &str),
    what: &str,
    (env_var, file): (&Option<String>, &Option<String>),
    env: &Env,
    rules: Option<&SinkRules>,
) -> Result<Option<String>, String> {
    let refused = |(m, h): (String, String)| format!("{m} (hint: {h})");
    if let Some(var) = env_var {
        if let Some(p) = rules.and_then(|r| r.env_problem(plan.unwrap_or(name), name, var)) {
            return Err(refused(p));
        }
        return env(var).map(|v| Some(v.trim().to_string())).ok_or_else(|| {
            format!("sink {name}: the environment variable {var} ({what}) is not set")
        });
    }
    if let Some(given) = file {
        let path = match rules {
            Some(r) => r.plan_file(name, given).map_err(refused)?,
            None => std::path::PathBuf::from(given),
        };
        return std::fs::read_to_string(path)
            .map(|v| Some(v.trim().to_string()))
            .map_err(|e| format!("sink {name}: cannot read {what} from {given}: {e}"));
    }
    Ok(None)
}

/// A Standard Webhooks secret (`whsec_<base64>`) as key bytes.
pub fn decode_secret(s: &str) -> Result<Vec<u8>, String> {
    let b64 = s.strip_prefix("whsec_").unwrap_or(s);
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("a signing secret is not whsec_<base64>: {e}"))
}

impl Sink {
    /// Reads the sink's URL and secrets (an error names the sink and the
    /// variable or file, never a value). A plan's own sink
    /// ([`Origin::Plan`]) is held to `rules`: it reads only what they
    /// allow, and sends only to a URL they allow.
    pub fn resolve(spec: &NotifySpec, env: &Env, rules: &SinkRules) -> Result<Self, String> {
        let name = &spec.name;
        let Some(kind) = spec.kind else {
            return Err(format!("sink {name}: no kind"));
        };
        let rules = (spec.origin == Origin::Plan).then_some(rules);
        if rules.is_some() && spec.url.is_some() {
            return Err(format!("sink {name}: a plan's sink writes no URL"));
        }
        let url = match &spec.url {
            Some(u) => Some(u.clone()),
            None => secret(
                (spec.plan.as_deref(), name),
                "its URL",
                (&spec.url_env, &spec.url_file),
                env,
                rules,
            )?,
        };
        let url = match (kind, url) {
            (SinkKind::Pagerduty, None) => Some(PAGERDUTY_EVENTS.to_string()),
            (k, None) if k.needs_url() => return Err(format!("sink {name}: no URL")),
            (_, u) => u,
        };
        if let (Some(r), Some(u)) = (rules, &url)
            && let Some((m, h)) = r.url_problem(name, u)
        {
            return Err(format!("{m} (hint: {h})"));
        }
        let raw = secret(
            (spec.plan.as_deref(), name),
            "its secret",
            (&spec.secret_env, &spec.secret_file),
            env,
            rules,
        )?;
        let secrets = match (kind, raw) {
            (SinkKind::Webhook, Some(s)) => s
                .split_whitespace()
                .map(decode_secret)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sink {name}: {e}"))?,
            (_, Some(s)) => vec![s.into_bytes()],
            (_, None) => Vec::new(),
        };
        let durations = |texts: &[String]| -> Result<Vec<Duration>, String> {
            texts
                .iter()
                .map(|t| parse_duration(t).map_err(|e| format!("sink {name}: {e}")))
                .collect()
        };
        let retry = match &spec.retry {
            Some(r) => durations(r)?,
            None => durations(&STANDARD_RETRY.map(String::from))?,
        };
        let timeout = match &spec.timeout {
            Some(t) => parse_duration(t).map_err(|e| format!("sink {name}: {e}"))?,
            None => ATTEMPT_TIMEOUT,
        };
        Ok(Self {
            spec: spec.clone(),
            kind,
            url,
            secrets,
            retry,
            timeout,
        })
    }

    /// Every secret value, for the credential scan of journals, evidence
    /// and reports.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .secrets
            .iter()
            .map(|s| base64::engine::general_purpose::STANDARD.encode(s))
            .collect();
        if self.kind != SinkKind::Webhook {
            out.extend(
                self.secrets
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into()),
            );
        }
        if self.spec.url.is_none() {
            out.extend(self.url.clone());
        }
        out
    }
}

/// The `webhook-signature` header: `v1,<base64>` per key, space-separated.
pub fn sign(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|k| {
            let mut mac = hmac::Hmac::<sha2_11::Sha256>::new_from_slice(k)
                .expect("HMAC takes a key of any length");
            mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Slack message laid out for a person: a header, the summary, the
/// facts as fields, the run id in a context line. Every text is mrkdwn
/// with what came from elsewhere (plan names, a summary that quotes a
/// cloud's error, a command) escaped for it (`crate::escape::slack`): no
/// mention, link or formatting can be made by it.
pub fn slack_body(e: &CloudEvent) -> serde_json::Value {
    use crate::escape::{slack, slack_code};
    let icon = match e.data.severity {
        Severity::Critical => ":rotating_light:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
    };
    let text = |t: String| json!({"type": "mrkdwn", "text": t, "verbatim": true});
    let plans: Vec<String> = e.data.plans.iter().map(|p| slack(p)).collect();
    let mut fields = vec![
        text(format!("*Plans*\n{}", plans.join(", "))),
        text(format!("*Severity*\n{}", e.data.severity)),
    ];
    if let Some(t) = &e.data.target {
        fields.push(text(format!("*Target*\n{}", slack(t))));
    }
    if let Some(t) = &e.data.tier {
        fields.push(text(format!("*Tier*\n{}", slack(t))));
    }
    let summary = format!("{icon} {}", slack(&e.data.summary));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": format!("drctl: {}", e.kind.short().replace('_', " "))}}),
        json!({"type": "section", "text": text(summary.clone())}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(cmd) = command_of(e) {
        blocks.push(json!({"type": "section", "text": text(format!("`{}`", slack_code(cmd)))}));
    }
    blocks.push(json!({"type": "context", "elements": [text(format!(
        "{} · {} · {}",
        e.kind,
        slack(e.data.run_id.as_deref().unwrap_or("-")),
        e.time.to_rfc3339()
    ))]}));
    json!({"text": summary, "blocks": blocks})
}

fn command_of(e: &CloudEvent) -> Option<&str> {
    use crate::journal::notice::EventDetail as D;
    match &e.data.detail {
        D::ApprovalNeeded { command, .. } | D::StepFailed { command, .. } => Some(command),
        _ => None,
    }
}

/// What PagerDuty is sent for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagerDutyAction {
    /// Open (or add to) the run's incident.
    Trigger,
    /// Close the run's incident.
    Resolve,
    /// A change event: on the service's timeline, pages nobody.
    Change,
}

/// A failover (or failback) and a failed drill page; a traffic move's
/// success resolves its incident; drills, planned switchovers and the rest
/// are change events.
pub fn pagerduty_action(e: &CloudEvent) -> PagerDutyAction {
    use crate::journal::notice::EventDetail as D;
    let moves = matches!(e.data.run_kind.as_deref(), Some("failover" | "failback"));
    match (&e.data.detail, e.kind) {
        (_, EventType::Test) => PagerDutyAction::Change,
        (D::DrillVerdict { passed: false, .. }, _) => PagerDutyAction::Trigger,
        (D::Finished { outcome, .. }, _) if moves => match outcome.as_str() {
            "succeeded" | "evidence_incomplete" | "pending" => PagerDutyAction::Resolve,
            _ => PagerDutyAction::Trigger,
        },
        (_, EventType::RunStarted | EventType::StepFailed | EventType::ApprovalNeeded) if moves => {
            PagerDutyAction::Trigger
        }
        (_, EventType::EvidenceMismatch | EventType::ScheduleOverdue | EventType::LockBroken) => {
            PagerDutyAction::Trigger
        }
        (
            _,
            EventType::WatchRegionDown
            | EventType::WatchProposed
            | EventType::WatchStarted
            | EventType::WatchStartFailed
            | EventType::WatchUnfit
            | EventType::WatchCapped
            | EventType::WatchVetoed,
        ) => PagerDutyAction::Trigger,
        (_, EventType::StepFailed) if e.data.run_kind.as_deref() != Some("drill") => {
            PagerDutyAction::Trigger
        }
        _ => PagerDutyAction::Change,
    }
}

/// The incident key: the run id (one incident per run), else the event's
/// subject (a plan's overdue schedule).
pub fn dedup_key(e: &CloudEvent) -> String {
    e.data
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{}:{}", e.kind.short(), e.subject))
}

/// The PagerDuty request: its URL and body.
pub fn pagerduty_request(
    e: &CloudEvent,
    url: &str,
    routing_key: &str,
) -> (String, serde_json::Value) {
    let severity = match e.data.severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    };
    let source = e.data.target.clone().unwrap_or_else(|| "drctl".into());
    let data = serde_json::to_value(&e.data).unwrap_or_default();
    match pagerduty_action(e) {
        PagerDutyAction::Change => (
            url.replace("/v2/enqueue", "/v2/change/enqueue"),
            json!({
                "routing_key": routing_key,
                "payload": {
                    "summary": truncate(&e.data.summary, 1024),
                    "timestamp": e.time.to_rfc3339(),
                    "source": source,
                    "custom_details": data,
                },
            }),
        ),
        PagerDutyAction::Resolve => (
            url.to_string(),
            json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(e)}),
        ),
        PagerDutyAction::Trigger => (
            url.to_string(),
            json!({
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": dedup_key(e),
                "payload": {
                    "summary": truncate(&e.data.summary, 1024),
                    "source": source,
                    "severity": severity,
                    "timestamp": e.time.to_rfc3339(),
                    "component": e.data.plans.join(","),
                    "group": e.data.tier.clone().unwrap_or_default(),
                    "class": e.kind.as_str(),
                    "custom_details": data,
                },
            }),
        ),
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// The cloud layer's SNS and EventBridge adapter.
pub type Publish = Arc<dyn crate::cloud::Publisher>;

/// Sends events over HTTP (one client for the process) and through the
/// cloud's publishers; paces Slack per webhook.
pub struct Sender {
    client: reqwest::Client,
    publish: Option<Publish>,
    slack_last: tokio::sync::Mutex<HashMap<String, Instant>>,
}

impl Sender {
    /// A sender (`publish`: the SNS/EventBridge adapter, when the process
    /// has cloud clients).
    pub fn new(publish: Option<Publish>) -> Self {
        // One client for the process: building one reads and parses the
        // system's root certificates, which a process that makes a sender
        // per run (a schedule loop, a test of every crash point) would
        // otherwise pay each time. No idle connection is kept: runs started
        // by `watch` each have a runtime of their own, and a pooled
        // connection does not outlive the runtime that opened it.
        static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .pool_max_idle_per_host(0)
                .build()
                .unwrap_or_default()
        });
        Self {
            client: CLIENT.clone(),
            publish,
            slack_last: Default::default(),
        }
    }

    /// One attempt, bounded by the sink's timeout. `region`: where SNS and
    /// EventBridge are published (the run's target region).
    pub async fn send(&self, sink: &Sink, event: &CloudEvent, region: &str) -> Answer {
        match tokio::time::timeout(sink.timeout, self.send_unbounded(sink, event, region)).await {
            Ok(a) => a,
            Err(_) => Answer::failed(format!(
                "no answer within {:.0} s",
                sink.timeout.as_secs_f64()
            )),
        }
    }

    async fn send_unbounded(&self, sink: &Sink, event: &CloudEvent, region: &str) -> Answer {
        let body = match serde_json::to_string(event) {
            Ok(b) => b,
            Err(e) => return Answer::failed(format!("cannot encode the event: {e}")),
        };
        let url = sink.url.clone().unwrap_or_default();
        match sink.kind {
            SinkKind::Webhook => {
                let ts = chrono::Utc::now().timestamp();
                let mut req = self
                    .client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", &event.id)
                    .header("webhook-timestamp", ts.to_string());
                if !sink.secrets.is_empty() {
                    req = req.header(
                        "webhook-signature",
                        sign(&sink.secrets, &event.id, ts, &body),
                    );
                }
                http_answer(req.body(body).send().await).await
            }
            SinkKind::Slack => {
                self.pace_slack(&url).await;
                let req = self
                    .client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(slack_body(event).to_string());
                http_answer(req.send().await).await
            }
            SinkKind::Pagerduty => {
                let key = sink
                    .secrets
                    .first()
                    .map(|k| String::from_utf8_lossy(k).to_string())
                    .unwrap_or_default();
                let (url, payload) = pagerduty_request(event, &url, &key);
                let req = self
                    .client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(payload.to_string());
                http_answer(req.send().await).await
            }
            SinkKind::Sns | SinkKind::Eventbridge => {
                self.publish_to_cloud(sink, event, region, &body).await
            }
        }
    }

    /// Publishes `body` (the encoded `event`) to an SNS topic or an
    /// EventBridge bus, in the sink's region or else `region`.
    async fn publish_to_cloud(
        &self,
        sink: &Sink,
        event: &CloudEvent,
        region: &str,
        body: &str,
    ) -> Answer {
        let Some(publish) = &self.publish else {
            return Answer::failed("no cloud clients in this process to publish with");
        };
        let region = sink
            .spec
            .region
            .clone()
            .unwrap_or_else(|| region.to_string());
        let published = match sink.kind {
            SinkKind::Sns => {
                let arn = (sink.spec.topic_arn.as_deref().unwrap_or_default())
                    .replace("{region}", &region);
                let subject = format!("drctl: {}", event.data.summary);
                publish.sns(&region, &arn, &subject, body).await
            }
            _ => {
                let bus = sink.spec.bus.as_deref().unwrap_or("default");
                publish
                    .eventbridge(&region, bus, event.kind.as_str(), body)
                    .await
            }
        };
        match published {
            Ok(id) => Answer {
                delivered: true,
                status: None,
                detail: format!("message id {id} ({region})"),
                retry_after: None,
            },
            Err(e) => Answer::failed(e.summary()),
        }
    }

    /// At most one message a second per Slack webhook.
    async fn pace_slack(&self, url: &str) {
        let mut last = self.slack_last.lock().await;
        if let Some(at) = last.get(url) {
            let wait = Duration::from_secs(1).saturating_sub(at.elapsed());
            tokio::time::sleep(wait).await;
        }
        last.insert(url.to_string(), Instant::now());
    }
}

/// A `Retry-After` header's wait, in seconds as the sink writes it (an
/// HTTP date is not read: the sink's retry schedule applies). A sink's
/// answer is input like any other: a wait beyond [`MAX_DURATION`] (or
/// beyond any number) is that, never an overflow further on.
pub fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        v.parse::<u64>()
            .map_or(MAX_DURATION, Duration::from_secs)
            .min(MAX_DURATION),
    )
}

/// What an HTTP answer means: 2xx delivered; anything else (or no answer)
/// failed, with the sink's words and its `Retry-After`.
async fn http_answer(r: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let resp = match r {
        Ok(r) => r,
        Err(e) => {
            let why = if e.is_connect() {
                "connection refused or unreachable"
            } else if e.is_timeout() {
                "timed out"
            } else {
                "the connection closed before an answer"
            };
            return Answer::failed(why);
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let text = resp.text().await.unwrap_or_default();
    Answer {
        delivered: status.is_success(),
        status: Some(status.as_u16()),
        detail: format!("{} {}", status.as_u16(), truncate(text.trim(), 200))
            .trim()
            .to_string(),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_caps_them() {
        assert_eq!(retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("0"), Some(Duration::ZERO));
        for huge in [
            "315360001",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999",
        ] {
            assert_eq!(retry_after(huge), Some(MAX_DURATION), "{huge}");
        }
        for other in ["", "-5", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "+3"] {
            assert_eq!(retry_after(other), None, "{other}");
        }
    }

    /// The Standard Webhooks specification's own example: this secret, id,
    /// timestamp and body sign to this signature.
    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        let key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &[key],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotating_keys_sign_once_each() {
        let a = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let b = b"another key".to_vec();
        let sig = sign(&[a, b], "id", 1, "{}");
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.split(' ').all(|s| s.starts_with("v1,")));
    }

    #[test]
    fn a_sinks_debug_shows_no_secret() {
        let spec: NotifySpec = toml::from_str(
            "name = \"ops\"\nkind = \"webhook\"\nurl_env = \"U\"\nsecret_env = \"S\"",
        )
        .unwrap();
        let env: Env = Arc::new(|k| match k {
            "U" => Some("https://hooks.example/secret-path".into()),
            "S" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            _ => None,
        });
        let s = Sink::resolve(&spec, &env, &SinkRules::default()).unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("secret-path") && !shown.contains("MfKQ"),
            "{shown}"
        );
        assert!(s.secret_values().iter().any(|v| v.contains("secret-path")));
        let missing: Env = Arc::new(|_| None);
        let e = Sink::resolve(&spec, &missing, &SinkRules::default()).unwrap_err();
        assert!(e.contains("U") && e.contains("not set"), "{e}");
    }

    /// A plan's sink is held to the operators' rules again when it is
    /// resolved to send: whatever changed since the plan was validated.
    #[test]
    fn regression_a_plans_sink_is_refused_host_secrets_when_it_sends() {
        let env: Env = Arc::new(|k| match k {
            "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEM".into()),
            "DRCTL_NOTIFY_P__URL" => Some("https://hooks.example.com/x".into()),
            "DRCTL_NOTIFY_P__PLAIN" => Some("http://hooks.example.com/x".into()),
            _ => None,
        });
        let rules = SinkRules::default();
        let spec = |text: &str, origin: Origin| NotifySpec {
            origin,
            plan: Some("p".into()),
            ..toml::from_str(text).unwrap()
        };
        let stealing = "name = \"p.owner\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_P__URL\"\nsecret_env = \"AWS_SECRET_ACCESS_KEY\"";
        let e = Sink::resolve(&spec(stealing, Origin::Plan), &env, &rules).unwrap_err();
        assert!(
            e.contains("AWS_SECRET_ACCESS_KEY") && !e.contains("wJalr"),
            "{e}"
        );
        assert!(
            Sink::resolve(&spec(stealing, Origin::Operators), &env, &rules).is_ok(),
            "the operators' own sinks keep their freedom"
        );
        let plain = "name = \"p.owner\"\nkind = \"slack\"\nurl_env = \"DRCTL_NOTIFY_P__PLAIN\"";
        let e = Sink::resolve(&spec(plain, Origin::Plan), &env, &rules).unwrap_err();
        assert!(e.contains("https"), "{e}");
        let file = "name = \"p.owner\"\nkind = \"slack\"\nurl_file = \"/etc/hostname\"";
        let e = Sink::resolve(&spec(file, Origin::Plan), &env, &rules).unwrap_err();
        assert!(e.contains("secrets directory"), "{e}");
    }

    /// Regression: a Slack message carried what came from elsewhere as
    /// mrkdwn: a summary quoting `<!channel>` paged a whole channel, and a
    /// plan or error could make links and formatting.
    #[test]
    fn regression_slack_text_from_elsewhere_is_escaped() {
        use crate::journal::notice::{EventData, EventDetail};
        let e = CloudEvent {
            specversion: "1.0".into(),
            id: "evt".into(),
            source: "/drctl".into(),
            kind: EventType::StepFailed,
            time: chrono::Utc::now(),
            subject: "s".into(),
            datacontenttype: "application/json".into(),
            data: EventData {
                run_id: Some("run-1".into()),
                run_kind: Some("failover".into()),
                plans: vec!["pay*ments".into()],
                tier: Some("<@U1>".into()),
                target: Some("us-east-1".into()),
                operator: None,
                severity: Severity::Critical,
                summary: "step failed: <!channel> *urgent* <https://evil.test|click> & \x1b[2Jmore"
                    .into(),
                record: None,
                detail: EventDetail::StepFailed {
                    step: "payments/check:api".into(),
                    error: "e".into(),
                    class: "client".into(),
                    hint: None,
                    command: "drctl runs resume `run-1` <x>".into(),
                },
            },
        };
        let body = slack_body(&e).to_string();
        for raw in [
            "<!channel>",
            "<@U1>",
            "<https://evil.test",
            "`run-1`",
            "<x>",
            "\\u001b",
        ] {
            assert!(!body.contains(raw), "{raw} in {body}");
        }
        assert!(
            body.contains("&lt;!channel&gt;") && body.contains("&amp;"),
            "{body}"
        );
        assert!(body.contains("\u{200B}*urgent\u{200B}*"), "{body}");
        assert!(body.contains("\"verbatim\":true"), "{body}");
    }
}
