//! `[[notify]]` sinks: where a run's events go (documented in
//! `docs/notify.md`).
//!
//! The same shape is read from `drctl.toml` (the team's sinks) and from a
//! plan file (so a plan's owner is told too). Secrets (webhook URLs,
//! signing keys, routing keys) are never part of a plan's text: a plan
//! names the environment variable or file that holds them, and validation
//! refuses a literal `url` there. The values themselves are read only when
//! an event is sent, never journaled, logged or put in evidence.

use serde::{Deserialize, Serialize};

/// A notification event's type. The JSON names are the CloudEvents `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    /// A run began.
    #[serde(rename = "dev.drctl.run.started")]
    RunStarted,
    /// A run needs an approval (before it may start, or afterwards for an
    /// emergency run); carries the exact command.
    #[serde(rename = "dev.drctl.run.approval_needed")]
    ApprovalNeeded,
    /// A step failed.
    #[serde(rename = "dev.drctl.run.step_failed")]
    StepFailed,
    /// A run ended: outcome and RTO/RPO achieved against target.
    #[serde(rename = "dev.drctl.run.finished")]
    RunFinished,
    /// A drill's verdict per plan.
    #[serde(rename = "dev.drctl.drill.verdict")]
    DrillVerdict,
    /// A plan's drill is overdue.
    #[serde(rename = "dev.drctl.schedule.overdue")]
    ScheduleOverdue,
    /// A run's evidence no longer matches its journal.
    #[serde(rename = "dev.drctl.evidence.mismatch")]
    EvidenceMismatch,
    /// A run's plan lock was taken over.
    #[serde(rename = "dev.drctl.lock.broken")]
    LockBroken,
    /// `drctl notify test`.
    #[serde(rename = "dev.drctl.notify.test")]
    Test,
    /// Watch: a plan's active region is down by quorum (observe mode).
    #[serde(rename = "dev.drctl.watch.region_down")]
    WatchRegionDown,
    /// Watch: a failover is proposed and starts after the veto window.
    #[serde(rename = "dev.drctl.watch.proposed")]
    WatchProposed,
    /// Watch: a proposed failover was vetoed.
    #[serde(rename = "dev.drctl.watch.vetoed")]
    WatchVetoed,
    /// Watch: it started a failover.
    #[serde(rename = "dev.drctl.watch.failover_started")]
    WatchStarted,
    /// Watch: the failover it started did not run.
    #[serde(rename = "dev.drctl.watch.start_failed")]
    WatchStartFailed,
    /// Watch: the region is down but no standby is fit.
    #[serde(rename = "dev.drctl.watch.unfit")]
    WatchUnfit,
    /// Watch: the velocity cap turned a start into a proposal.
    #[serde(rename = "dev.drctl.watch.capped")]
    WatchCapped,
    /// Watch: home has recovered; a failback is proposed (never started).
    #[serde(rename = "dev.drctl.watch.failback_proposed")]
    WatchFailbackProposed,
    /// Watch: an observer alone sees a region down (its own network?).
    #[serde(rename = "dev.drctl.watch.observer_suspect")]
    WatchSuspect,
}

impl EventType {
    /// Every type.
    pub const ALL: [EventType; 18] = [
        Self::RunStarted,
        Self::ApprovalNeeded,
        Self::StepFailed,
        Self::RunFinished,
        Self::DrillVerdict,
        Self::ScheduleOverdue,
        Self::EvidenceMismatch,
        Self::LockBroken,
        Self::Test,
        Self::WatchRegionDown,
        Self::WatchProposed,
        Self::WatchVetoed,
        Self::WatchStarted,
        Self::WatchStartFailed,
        Self::WatchUnfit,
        Self::WatchCapped,
        Self::WatchFailbackProposed,
        Self::WatchSuspect,
    ];

    /// The CloudEvents `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RunStarted => "dev.drctl.run.started",
            Self::ApprovalNeeded => "dev.drctl.run.approval_needed",
            Self::StepFailed => "dev.drctl.run.step_failed",
            Self::RunFinished => "dev.drctl.run.finished",
            Self::DrillVerdict => "dev.drctl.drill.verdict",
            Self::ScheduleOverdue => "dev.drctl.schedule.overdue",
            Self::EvidenceMismatch => "dev.drctl.evidence.mismatch",
            Self::LockBroken => "dev.drctl.lock.broken",
            Self::Test => "dev.drctl.notify.test",
            Self::WatchRegionDown => "dev.drctl.watch.region_down",
            Self::WatchProposed => "dev.drctl.watch.proposed",
            Self::WatchVetoed => "dev.drctl.watch.vetoed",
            Self::WatchStarted => "dev.drctl.watch.failover_started",
            Self::WatchStartFailed => "dev.drctl.watch.start_failed",
            Self::WatchUnfit => "dev.drctl.watch.unfit",
            Self::WatchCapped => "dev.drctl.watch.capped",
            Self::WatchFailbackProposed => "dev.drctl.watch.failback_proposed",
            Self::WatchSuspect => "dev.drctl.watch.observer_suspect",
        }
    }

    /// The last part of the type, for ids (`started`, `step_failed`, ...).
    pub fn short(self) -> &'static str {
        let s = self.as_str();
        &s[s.rfind('.').map_or(0, |i| i + 1)..]
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How loud an event is; sinks filter on a minimum.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record (a drill started, a run succeeded).
    #[default]
    Info,
    /// Someone should look (a drill failed, a schedule is overdue).
    Warning,
    /// Someone must act now (a failover began or failed, evidence altered).
    Critical,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        })
    }
}

/// The Standard Webhooks retry schedule: the waits before attempts 2 to 8
/// (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). Bounded: after the last, the
/// event is given up and reported.
pub const STANDARD_RETRY: [&str; 7] = ["5s", "5m", "30m", "2h", "5h", "10h", "10h"];

/// One `[[notify]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    /// The sink's name (unique; `notify test --sink NAME`, journal records).
    pub name: String,
    /// What kind of sink.
    pub kind: SinkKind,
    /// The URL (webhook, Slack incoming webhook, PagerDuty Events API
    /// endpoint). `drctl.toml` only: a plan must use `url_env`/`url_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable that holds the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// The file that holds the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    /// The environment variable holding the secret: Standard Webhooks
    /// signing secrets (`whsec_<base64>`, several separated by spaces while
    /// keys rotate) or PagerDuty's routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// The file holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// SNS: the topic's ARN; `{region}` is replaced by the run's target
    /// region (the topic must exist there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    /// EventBridge: the event bus's name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// SNS and EventBridge: publish in this region instead of the run's
    /// target region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Event types to send; `*` ends a prefix (`dev.drctl.run.*`). Empty:
    /// every type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// The least severity sent (default `info`: everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// Waits before each retry (default: the Standard Webhooks schedule,
    /// [`STANDARD_RETRY`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Vec<String>>,
    /// How long one attempt may take (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// The kinds of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// An HTTP endpoint, signed per Standard Webhooks 1.0.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Amazon SNS, in the run's target region.
    Sns,
    /// Amazon EventBridge, in the run's target region.
    Eventbridge,
}

impl SinkKind {
    /// The kind's name in a file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Pagerduty => "pagerduty",
            Self::Sns => "sns",
            Self::Eventbridge => "eventbridge",
        }
    }

    /// Whether it must be given a URL.
    pub fn needs_url(self) -> bool {
        matches!(self, Self::Webhook | Self::Slack)
    }

    /// Whether it may be given a URL (PagerDuty's defaults to the Events
    /// API v2 endpoint).
    pub fn takes_url(self) -> bool {
        self.needs_url() || self == Self::Pagerduty
    }
}

impl NotifySpec {
    /// Whether the sink takes events of this type and severity.
    pub fn wants(&self, kind: EventType, severity: Severity) -> bool {
        if kind == EventType::Test {
            return true;
        }
        if severity < self.min_severity.unwrap_or_default() {
            return false;
        }
        self.events.is_empty()
            || self.events.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => kind.as_str().starts_with(prefix),
                None => p == kind.as_str(),
            })
    }

    /// What is wrong with the entry, one sentence and a hint each
    /// (`in_plan`: read from a plan file, where secrets may not be written).
    pub fn problems(&self, in_plan: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let name = &self.name;
        let mut say = |m: String, h: &str| out.push((m, h.to_string()));
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            say(
                format!("notify sink name `{name}` must be letters, digits, `-` or `_`"),
                "name = \"ops\"",
            );
        }
        if in_plan && self.url.is_some() {
            say(
                format!(
                    "notify sink `{name}` writes its URL in the plan; a URL is a secret and plans are not"
                ),
                "use url_env = \"NAME\" or url_file = \"PATH\" (or move the sink to drctl.toml)",
            );
        }
        let sources = [&self.url, &self.url_env, &self.url_file]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if self.kind.needs_url() && sources != 1 {
            say(
                format!(
                    "notify sink `{name}` ({}) needs exactly one of url, url_env, url_file",
                    self.kind.as_str()
                ),
                "url_env = \"DRCTL_OPS_WEBHOOK_URL\"",
            );
        }
        if (!self.kind.takes_url() && sources != 0) || sources > 1 {
            say(
                format!(
                    "notify sink `{name}` ({}) takes at most one of url, url_env, url_file, and SNS and EventBridge none",
                    self.kind.as_str()
                ),
                "SNS takes topic_arn, EventBridge takes bus",
            );
        }
        if self.secret_env.is_some() && self.secret_file.is_some() {
            say(
                format!("notify sink `{name}` has both secret_env and secret_file"),
                "keep one",
            );
        }
        if self.kind == SinkKind::Pagerduty
            && self.secret_env.is_none()
            && self.secret_file.is_none()
        {
            say(
                format!("notify sink `{name}` (pagerduty) needs its routing key"),
                "secret_env = \"DRCTL_PAGERDUTY_ROUTING_KEY\"",
            );
        }
        if self.kind == SinkKind::Sns && self.topic_arn.is_none() {
            say(
                format!("notify sink `{name}` (sns) needs topic_arn"),
                "topic_arn = \"arn:aws:sns:{region}:123456789012:drctl-events\"",
            );
        }
        for e in &self.events {
            let known = match e.strip_suffix('*') {
                Some(prefix) => EventType::ALL
                    .iter()
                    .any(|t| t.as_str().starts_with(prefix)),
                None => EventType::ALL.iter().any(|t| t.as_str() == e),
            };
            if !known {
                say(
                    format!("notify sink `{name}`: no event type matches `{e}`"),
                    "types are dev.drctl.run.started, .run.approval_needed, .run.step_failed, .run.finished, .drill.verdict, .schedule.overdue, .evidence.mismatch, .lock.broken; `dev.drctl.run.*` takes a prefix",
                );
            }
        }
        for d in self.retry.iter().flatten().chain(&self.timeout) {
            if let Err(e) = crate::plan::duration::parse_duration(d) {
                say(format!("notify sink `{name}`: {e}"), e.hint());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_names_itself_as_its_json() {
        for t in EventType::ALL {
            let json = serde_json::to_value(t).unwrap();
            assert_eq!(json, t.as_str());
            assert_eq!(serde_json::from_value::<EventType>(json).unwrap(), t);
            assert!(t.as_str().starts_with("dev.drctl."));
        }
        assert_eq!(EventType::StepFailed.short(), "step_failed");
    }

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Info < Severity::Warning && Severity::Warning < Severity::Critical);
    }

    fn sink(toml_text: &str) -> NotifySpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_sink_filters_on_type_prefix_and_severity() {
        let s = sink(
            r#"name = "ops"
kind = "webhook"
url_env = "U"
events = ["dev.drctl.run.*", "dev.drctl.drill.verdict"]
min_severity = "warning""#,
        );
        assert!(s.wants(EventType::RunFinished, Severity::Critical));
        assert!(s.wants(EventType::DrillVerdict, Severity::Warning));
        assert!(!s.wants(EventType::RunFinished, Severity::Info));
        assert!(!s.wants(EventType::LockBroken, Severity::Critical));
        assert!(
            s.wants(EventType::Test, Severity::Info),
            "a test always goes"
        );
        assert!(s.problems(true).is_empty());
    }

    #[test]
    fn a_plan_may_not_hold_a_url_and_bad_entries_are_named() {
        let s = sink("name = \"ops\"\nkind = \"webhook\"\nurl = \"https://x\"");
        assert!(s.problems(false).is_empty());
        let p = s.problems(true);
        assert_eq!(p.len(), 1);
        assert!(p[0].0.contains("URL is a secret"), "{p:?}");
        let bad = sink(
            "name = \"a b\"\nkind = \"slack\"\nevents = [\"dev.drctl.nope\"]\nretry = [\"soon\"]",
        );
        let p: Vec<String> = bad.problems(false).into_iter().map(|p| p.0).collect();
        assert!(p.iter().any(|m| m.contains("must be letters")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("exactly one of url")), "{p:?}");
        assert!(
            p.iter().any(|m| m.contains("no event type matches")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.contains("not a duration")), "{p:?}");
        let pd = sink("name = \"pd\"\nkind = \"pagerduty\"");
        assert!(pd.problems(false)[0].0.contains("routing key"));
    }
}
