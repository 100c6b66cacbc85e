//! `[[notify]]` sinks: where a run's events go (documented in
//! `docs/notify.md`).
//!
//! The same shape is read from `drctl.toml` (the team's sinks) and from a
//! plan file (so a plan's owner is told too). Secrets (webhook URLs,
//! signing keys, routing keys) are never part of a plan's text: a plan
//! names the environment variable or file that holds them, and validation
//! refuses a literal `url` there. The values themselves are read only when
//! an event is sent, never journaled, logged or put in evidence.
//!
//! Whoever can merge a plan is not whoever runs drctl: a plan's sinks must
//! not be a way to read the host's secrets and send them away. So a plan's
//! own sink reads only environment variables named for its plan
//! (`DRCTL_NOTIFY_<PLAN>_*`) and
//! files under the directory the operators name (`[plan_notify]
//! secrets_dir` in `drctl.toml`; none named: no file at all), sends only
//! over https (loopback excepted) and, when the operators list hosts, only
//! to them ([`SinkRules`]); or it refers by name to a sink the operators
//! configured (`sink = "NAME"`, a `scope = "named"` sink of `drctl.toml`).
//! The operators' own sinks keep every freedom. The rules are checked when
//! a plan is validated (at the offending line) and again when a plan's sink
//! is resolved to send.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

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
    /// What kind of sink (required, except in a plan's reference to an
    /// operators' sink, which takes the kind of the sink it names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SinkKind>,
    /// A plan only: the operators' sink (a `scope = "named"` sink of
    /// `drctl.toml`) this entry sends the plan's events to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// `drctl.toml` only: which runs the sink hears of (default `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
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
    /// Who wrote the sink: a plan's own sink is held to [`SinkRules`] when
    /// it is resolved to send. Not read from a file: set by whoever makes
    /// the run's list of sinks (`notify::outbox::sinks_of`).
    #[serde(skip)]
    pub origin: Origin,
    /// The plan whose own sink it is (set with [`Origin::Plan`]): the
    /// variables it may read are named for that plan.
    #[serde(skip)]
    pub plan: Option<String>,
}

/// Who wrote a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// The operators (`drctl.toml`): every freedom.
    #[default]
    Operators,
    /// A plan: its secrets and URL held to [`SinkRules`].
    Plan,
}

/// Which runs an operators' sink hears of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every run's events (the team's sinks).
    #[default]
    All,
    /// Only the events of plans whose `[[notify]]` names it (`sink = NAME`).
    Named,
}

/// The prefix of every environment variable a plan's own sink may read.
pub const PLAN_ENV_PREFIX: &str = "DRCTL_NOTIFY_";

/// The prefix of the variables plan `plan`'s sinks may read:
/// `DRCTL_NOTIFY_<PLAN>__`, the plan's name upper case with `_` for `-`,
/// then two underscores. With one, plan `orders` read `orders-gcp`'s
/// `DRCTL_NOTIFY_ORDERS_GCP_HOOK`; the name after the two may not hold
/// two in a row nor start with one ([`SinkRules::env_problem`]), so no
/// plan's variable is another plan's, whatever hyphens the names hold.
pub fn plan_env_prefix(plan: &str) -> String {
    format!(
        "{PLAN_ENV_PREFIX}{}__",
        plan.to_ascii_uppercase().replace('-', "_")
    )
}

/// Where secrets come from (the process environment, or a test's map).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn process_env() -> Env {
    Arc::new(|k| std::env::var(k).ok())
}

/// What a plan's own sinks may use, as the operators set it in
/// `drctl.toml` (`[plan_notify]`), and the operators' sinks a plan may
/// name. The default is the strictest: no file, any https host, no sink
/// to name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkRules {
    /// The directory a plan's `url_file` and `secret_file` must be under
    /// (a relative name is taken inside it); `None`: plans name no file.
    pub secrets_dir: Option<PathBuf>,
    /// The hosts a plan's sink may send to (`hooks.slack.com`, or
    /// `*.example.com` for its subdomains); empty: any host over https.
    pub allowed_hosts: Vec<String>,
    /// The operators' sinks by name, with their scope: what a plan's
    /// `sink = NAME` may refer to (those of scope `named`).
    pub operators: Vec<(String, Scope)>,
}

/// One problem of a `[[notify]]` entry: the key it is at, what is wrong,
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry's key the problem is at (`secret_env`, `name`, ...).
    pub key: &'static str,
    /// What is wrong, one sentence.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl SinkRules {
    /// Why plan `plan`'s sink may not read the environment variable `var`
    /// (`None`: it may): only variables named for the plan,
    /// `DRCTL_NOTIFY_<PLAN>__<NAME>` (the host's other variables hold its
    /// credentials, and another plan's hold that plan's secrets). `NAME`
    /// neither starts with `_` nor holds `__`: so a variable of plan `a`
    /// is never one of plan `a--b` (`DRCTL_NOTIFY_A__B__HOOK`).
    pub fn env_problem(&self, plan: &str, sink: &str, var: &str) -> Option<(String, String)> {
        let prefix = plan_env_prefix(plan);
        let name = var.strip_prefix(&prefix).unwrap_or_default();
        let ok = !name.is_empty()
            && !name.starts_with('_')
            && !name.contains("__")
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        (!ok).then(|| {
            (
                format!(
                    "notify sink `{sink}` reads the environment variable {var}; plan {plan}'s sink may read only {prefix}* variables (the host's other variables hold its credentials, another plan's its secrets)"
                ),
                format!(
                    "have the operators set {prefix}<NAME> for this sink and name that, or refer to one of their sinks: sink = \"NAME\" (drctl.toml, scope = \"named\")"
                ),
            )
        })
    }

    /// The file a plan's sink names, inside the secrets directory:
    /// canonical when it exists (a symbolic link that leads out of the
    /// directory is refused); `Err` with the reason and a hint when the
    /// rules do not allow it.
    pub fn plan_file(&self, sink: &str, given: &str) -> Result<PathBuf, (String, String)> {
        let Some(dir) = &self.secrets_dir else {
            return Err((
                format!(
                    "notify sink `{sink}` reads the file {given}; plans may name files only under the operators' secrets directory, and drctl.toml names none"
                ),
                format!(
                    "use an environment variable ({PLAN_ENV_PREFIX}<NAME>), or ask the operators for [plan_notify] secrets_dir in drctl.toml"
                ),
            ));
        };
        let outside = |why: &str| {
            (
                format!(
                    "notify sink `{sink}` reads the file {given}, {why} the secrets directory {}",
                    dir.display()
                ),
                format!(
                    "name a file inside {} (a name relative to it, without `..`)",
                    dir.display()
                ),
            )
        };
        let path = Path::new(given);
        if given.is_empty() || path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(outside("whose name climbs out of"));
        }
        let canon_dir = dir.canonicalize().map_err(|e| {
            (
                format!(
                    "notify sink `{sink}` reads the file {given}, but the secrets directory {} cannot be read: {e}",
                    dir.display()
                ),
                "create the directory named by [plan_notify] secrets_dir in drctl.toml".into(),
            )
        })?;
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            canon_dir.join(path)
        };
        if !(joined.starts_with(&canon_dir) || joined.starts_with(dir)) {
            return Err(outside("outside"));
        }
        if std::fs::symlink_metadata(&joined).is_err() {
            // Not there (yet): inside by its name; read, and checked
            // again, when an event is sent.
            return Ok(joined);
        }
        match joined.canonicalize() {
            Ok(real) if real.starts_with(&canon_dir) => Ok(real),
            Ok(_) => Err(outside("through a symbolic link, outside")),
            Err(e) => Err((
                format!(
                    "notify sink `{sink}` reads the file {given}, which cannot be followed: {e}"
                ),
                format!("name a readable file inside {}", dir.display()),
            )),
        }
    }

    /// Why a plan's sink may not send to `url` (`None`: it may): https
    /// (plain http only to a loopback address), and a host on the
    /// operators' list when they keep one. The message names the scheme
    /// and host only: a URL's path may hold a token.
    pub fn url_problem(&self, sink: &str, url: &str) -> Option<(String, String)> {
        let Ok(u) = reqwest::Url::parse(url.trim()) else {
            return Some((
                format!("notify sink `{sink}`: its URL is not a URL"),
                "a sink's URL looks like https://hooks.example.com/path".into(),
            ));
        };
        let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
        let loopback = is_loopback_host(&host);
        match u.scheme() {
            "https" => {}
            "http" if loopback => {}
            scheme => {
                return Some((
                    format!(
                        "notify sink `{sink}` sends to {scheme}://{host}/...; a plan's sink sends only over https (plain http only to this machine)"
                    ),
                    "give the sink an https URL".into(),
                ));
            }
        }
        if !self.allowed_hosts.is_empty()
            && !self.allowed_hosts.iter().any(|a| host_matches(a, &host))
        {
            return Some((
                format!(
                    "notify sink `{sink}` sends to {host}, which is not among the hosts the operators allow for plans' sinks"
                ),
                format!(
                    "allowed: {} ([plan_notify] allowed_hosts in drctl.toml)",
                    self.allowed_hosts.join(", ")
                ),
            ));
        }
        None
    }

    /// Why a plan's `sink = NAME` cannot refer to `name` (`None`: it can).
    pub fn reference_problem(&self, sink: &str, name: &str) -> Option<(String, String)> {
        let named: Vec<&str> = (self.operators.iter())
            .filter(|(_, s)| *s == Scope::Named)
            .map(|(n, _)| n.as_str())
            .collect();
        match self.operators.iter().find(|(n, _)| n == name) {
            Some((_, Scope::Named)) => None,
            Some((_, Scope::All)) => Some((
                format!(
                    "notify sink `{sink}` refers to the operators' sink `{name}`, which already hears of every run"
                ),
                "drop this entry, or have the operators set scope = \"named\" on that sink".into(),
            )),
            None => Some((
                format!("notify sink `{sink}` refers to `{name}`, which is no operators' sink"),
                if named.is_empty() {
                    "drctl.toml has no sink of scope = \"named\" for plans to name".into()
                } else {
                    format!("sinks plans may name: {}", named.join(", "))
                },
            )),
        }
    }
}

/// Whether `host` (lowercase, IPv6 in brackets) is this machine.
pub fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `host` is allowed by the entry `allowed` (`*.example.com`: any
/// subdomain of example.com, not example.com itself).
fn host_matches(allowed: &str, host: &str) -> bool {
    let allowed = allowed.trim().trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    match allowed.strip_prefix("*.") {
        Some(parent) => host
            .strip_suffix(parent)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => host == allowed,
    }
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

    /// What is wrong with the entry, each at its key with a hint
    /// (`in_plan`: read from a plan file, where secrets may not be written
    /// and a sink may refer to an operators' one).
    pub fn problems(&self, in_plan: bool) -> Vec<Problem> {
        let mut out = Vec::new();
        let name = &self.name;
        let mut say = |key: &'static str, message: String, hint: &str| {
            out.push(Problem {
                key,
                message,
                hint: hint.to_string(),
            })
        };
        self.placement_problems(in_plan, &mut say);
        if self.sink.is_some() {
            self.reference_problems(&mut say);
            self.event_problems(&mut say);
            return out;
        }
        let Some(kind) = self.kind else {
            say(
                "name",
                format!("notify sink `{name}` has no kind"),
                if in_plan {
                    "kind = \"webhook\" (or slack, pagerduty, sns, eventbridge), or sink = \"NAME\" for an operators' sink"
                } else {
                    "kind = \"webhook\" (or slack, pagerduty, sns, eventbridge)"
                },
            );
            return out;
        };
        self.kind_problems(kind, &mut say);
        self.event_problems(&mut say);
        self.duration_problems(&mut say);
        out
    }

    /// The entry's name, and the keys that belong to a plan's entry or to
    /// an operators' one only (a plan may not hold a URL: it is a secret).
    fn placement_problems(&self, in_plan: bool, say: &mut impl FnMut(&'static str, String, &str)) {
        let name = &self.name;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            say(
                "name",
                format!("notify sink name `{name}` must be letters, digits, `-` or `_`"),
                "name = \"ops\"",
            );
        }
        if !in_plan && self.sink.is_some() {
            say(
                "sink",
                format!(
                    "notify sink `{name}`: `sink` refers to an operators' sink, and only a plan's entry does that"
                ),
                "drctl.toml configures the sink itself: kind, url, ...",
            );
        }
        if in_plan && self.scope.is_some() {
            say(
                "scope",
                format!("notify sink `{name}`: `scope` is the operators' to set, in drctl.toml"),
                "remove it",
            );
        }
        if in_plan && self.url.is_some() {
            say(
                "url",
                format!(
                    "notify sink `{name}` writes its URL in the plan; a URL is a secret and plans are not"
                ),
                "use url_env = \"DRCTL_NOTIFY_<PLAN>_<NAME>\" or url_file = \"PATH\" (or move the sink to drctl.toml)",
            );
        }
    }

    /// Keys an entry that refers to an operators' sink may not set: that
    /// sink has its own.
    fn reference_problems(&self, say: &mut impl FnMut(&'static str, String, &str)) {
        let name = &self.name;
        let own = [
            ("kind", self.kind.is_some()),
            ("url", self.url.is_some()),
            ("url_env", self.url_env.is_some()),
            ("url_file", self.url_file.is_some()),
            ("secret_env", self.secret_env.is_some()),
            ("secret_file", self.secret_file.is_some()),
            ("topic_arn", self.topic_arn.is_some()),
            ("bus", self.bus.is_some()),
            ("region", self.region.is_some()),
            ("retry", self.retry.is_some()),
            ("timeout", self.timeout.is_some()),
        ];
        for (key, _) in own.iter().filter(|(_, set)| *set) {
            say(
                key,
                format!(
                    "notify sink `{name}` refers to an operators' sink, which has its own `{key}`"
                ),
                "a reference takes name, sink, events and min_severity only",
            );
        }
    }

    /// Whether the entry gives what its kind needs: the URL sources, the
    /// secret, PagerDuty's routing key, SNS's topic.
    fn kind_problems(&self, kind: SinkKind, say: &mut impl FnMut(&'static str, String, &str)) {
        let name = &self.name;
        let sources = [&self.url, &self.url_env, &self.url_file]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if kind.needs_url() && sources != 1 {
            say(
                "kind",
                format!(
                    "notify sink `{name}` ({}) needs exactly one of url, url_env, url_file",
                    kind.as_str()
                ),
                "url_env = \"DRCTL_NOTIFY_OPS_WEBHOOK_URL\"",
            );
        }
        if (!kind.takes_url() && sources != 0) || sources > 1 {
            say(
                "kind",
                format!(
                    "notify sink `{name}` ({}) takes at most one of url, url_env, url_file, and SNS and EventBridge none",
                    kind.as_str()
                ),
                "SNS takes topic_arn, EventBridge takes bus",
            );
        }
        if self.secret_env.is_some() && self.secret_file.is_some() {
            say(
                "secret_file",
                format!("notify sink `{name}` has both secret_env and secret_file"),
                "keep one",
            );
        }
        if kind == SinkKind::Pagerduty && self.secret_env.is_none() && self.secret_file.is_none() {
            say(
                "kind",
                format!("notify sink `{name}` (pagerduty) needs its routing key"),
                "secret_env = \"DRCTL_NOTIFY_PAGERDUTY_ROUTING_KEY\"",
            );
        }
        if kind == SinkKind::Sns && self.topic_arn.is_none() {
            say(
                "kind",
                format!("notify sink `{name}` (sns) needs topic_arn"),
                "topic_arn = \"arn:aws:sns:{region}:123456789012:drctl-events\"",
            );
        }
    }

    /// The entry's `retry` and `timeout` durations that do not parse.
    fn duration_problems(&self, say: &mut impl FnMut(&'static str, String, &str)) {
        let name = &self.name;
        for (key, d) in (self.retry.iter().flatten().map(|d| ("retry", d)))
            .chain(self.timeout.iter().map(|d| ("timeout", d)))
        {
            if let Err(e) = crate::plan::duration::parse_duration(d) {
                say(key, format!("notify sink `{name}`: {e}"), e.hint());
            }
        }
    }

    /// Event types that match no type.
    fn event_problems(&self, say: &mut impl FnMut(&'static str, String, &str)) {
        for e in &self.events {
            let known = match e.strip_suffix('*') {
                Some(prefix) => EventType::ALL
                    .iter()
                    .any(|t| t.as_str().starts_with(prefix)),
                None => EventType::ALL.iter().any(|t| t.as_str() == e),
            };
            if !known {
                say(
                    "events",
                    format!("notify sink `{}`: no event type matches `{e}`", self.name),
                    "types are dev.drctl.run.started, .run.approval_needed, .run.step_failed, .run.finished, .drill.verdict, .schedule.overdue, .evidence.mismatch, .lock.broken, .watch.*; `dev.drctl.run.*` takes a prefix",
                );
            }
        }
    }

    /// A plan's sink against the operators' rules: the variables and
    /// files it reads, the URL it would send to (read here when this host
    /// has it: from a `DRCTL_NOTIFY_*` variable of `env` or a file inside
    /// the secrets directory), the operators' sink it names.
    pub fn rule_problems(&self, plan: &str, rules: &SinkRules, env: &Env) -> Vec<Problem> {
        let mut out = Vec::new();
        let name = &self.name;
        let mut say = |key: &'static str, (message, hint): (String, String)| {
            out.push(Problem { key, message, hint })
        };
        if let Some(target) = &self.sink {
            if let Some(p) = rules.reference_problem(name, target) {
                say("sink", p);
            }
            return out;
        }
        let mut url = None;
        for (key, var) in [("url_env", &self.url_env), ("secret_env", &self.secret_env)] {
            if let Some(var) = var {
                match rules.env_problem(plan, name, var) {
                    Some(p) => say(key, p),
                    None if key == "url_env" => url = env(var).map(|u| (key, u)),
                    None => {}
                }
            }
        }
        for (key, file) in [
            ("url_file", &self.url_file),
            ("secret_file", &self.secret_file),
        ] {
            if let Some(file) = file {
                match rules.plan_file(name, file) {
                    Err(p) => say(key, p),
                    Ok(path) if key == "url_file" => {
                        url = std::fs::read_to_string(path).ok().map(|u| (key, u));
                    }
                    Ok(_) => {}
                }
            }
        }
        if self.kind == Some(SinkKind::Pagerduty)
            && self.url_env.is_none()
            && self.url_file.is_none()
        {
            url = Some(("kind", PAGERDUTY_EVENTS.to_string()));
        }
        if let Some((key, u)) = url
            && let Some(p) = rules.url_problem(name, &u)
        {
            say(key, p);
        }
        out
    }
}

/// PagerDuty's Events API v2 endpoint (the default `url` of a PagerDuty sink).
pub const PAGERDUTY_EVENTS: &str = "https://events.pagerduty.com/v2/enqueue";

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
        assert!(p[0].message.contains("URL is a secret"), "{p:?}");
        assert_eq!(p[0].key, "url");
        let bad = sink(
            "name = \"a b\"\nkind = \"slack\"\nevents = [\"dev.drctl.nope\"]\nretry = [\"soon\"]",
        );
        let p: Vec<String> = bad.problems(false).into_iter().map(|p| p.message).collect();
        assert!(p.iter().any(|m| m.contains("must be letters")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("exactly one of url")), "{p:?}");
        assert!(
            p.iter().any(|m| m.contains("no event type matches")),
            "{p:?}"
        );
        assert!(p.iter().any(|m| m.contains("not a duration")), "{p:?}");
        let pd = sink("name = \"pd\"\nkind = \"pagerduty\"");
        assert!(pd.problems(false)[0].message.contains("routing key"));
    }

    fn no_env() -> Env {
        Arc::new(|_| None)
    }

    /// Regression: a plan's `[[notify]]` could name any variable
    /// (`secret_env = "AWS_SECRET_ACCESS_KEY"`) or file and send it away.
    #[test]
    fn regression_a_plans_sink_reads_only_drctl_notify_variables() {
        let rules = SinkRules::default();
        for (var, ok) in [
            ("AWS_SECRET_ACCESS_KEY", false),
            ("DRCTL_RUN_KEY", false),
            ("DRCTL_NOTIFY_", false),
            ("DRCTL_NOTIFY_x", false),
            ("DRCTL_NOTIFY_P__", false),
            // Regression (issue 39): another plan's variable, its secret.
            ("DRCTL_NOTIFY_PAYMENTS__HOOK", false),
            ("DRCTL_NOTIFY_HOOK", false),
            ("DRCTL_NOTIFY_P__HOOK", true),
            ("DRCTL_NOTIFY_P__WEB_HOOK", true),
            // Issue 74 (attack 9): with one `_`, plan `p` read plan
            // `p-gcp`'s variables; with two, nor those of plan `p--gcp`.
            ("DRCTL_NOTIFY_P_GCP__HOOK", false),
            ("DRCTL_NOTIFY_P__GCP__HOOK", false),
            ("DRCTL_NOTIFY_P___HOOK", false),
            ("DRCTL_NOTIFY_P_HOOK", false),
        ] {
            let s = sink(&format!(
                "name = \"owner\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_P__U\"\nsecret_env = \"{var}\""
            ));
            let p = s.rule_problems("p", &rules, &no_env());
            assert_eq!(p.is_empty(), ok, "{var}: {p:?}");
            if !ok {
                assert_eq!(p[0].key, "secret_env");
                assert!(p[0].message.contains(var), "{p:?}");
            }
        }
        let team = sink(
            "name = \"ops\"\nkind = \"webhook\"\nurl_env = \"ANY\"\nsecret_env = \"AWS_SECRET_ACCESS_KEY\"",
        );
        assert!(
            team.problems(false).is_empty(),
            "operators keep their freedom"
        );
    }

    #[test]
    fn a_plans_files_stay_inside_the_secrets_directory() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        std::fs::write(secrets.join("hook"), "https://hooks.example.com/x").unwrap();
        std::fs::write(dir.path().join("outside"), "nope").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), secrets.join("link")).unwrap();
        let none = SinkRules::default();
        let e = none.plan_file("owner", "hook").unwrap_err();
        assert!(e.0.contains("names none"), "{e:?}");
        let rules = SinkRules {
            secrets_dir: Some(secrets.clone()),
            ..SinkRules::default()
        };
        let real = secrets.canonicalize().unwrap();
        assert_eq!(rules.plan_file("o", "hook").unwrap(), real.join("hook"));
        assert_eq!(
            rules
                .plan_file("o", &secrets.join("hook").display().to_string())
                .unwrap(),
            real.join("hook")
        );
        assert_eq!(
            rules.plan_file("o", "not-yet").unwrap(),
            real.join("not-yet"),
            "inside by its name; read when sent"
        );
        for bad in [
            "../outside".to_string(),
            "sub/../../outside".to_string(),
            dir.path().join("outside").display().to_string(),
            "/etc/passwd".to_string(),
            "link".to_string(),
            "".to_string(),
        ] {
            let e = rules.plan_file("o", &bad).unwrap_err();
            assert!(e.0.contains("secrets directory"), "{bad}: {e:?}");
        }
    }

    #[test]
    fn a_plans_sink_sends_over_https_to_allowed_hosts() {
        let open = SinkRules::default();
        assert_eq!(
            open.url_problem("o", "https://hooks.example.com/T0KEN"),
            None
        );
        assert_eq!(open.url_problem("o", "http://127.0.0.1:8080/hook"), None);
        assert_eq!(open.url_problem("o", "http://localhost/hook"), None);
        assert_eq!(open.url_problem("o", "http://[::1]:9/hook"), None);
        let (m, _) = open
            .url_problem("o", "http://hooks.example.com/T0KEN")
            .unwrap();
        assert!(m.contains("https") && !m.contains("T0KEN"), "{m}");
        assert!(open.url_problem("o", "file:///etc/passwd").is_some());
        assert!(open.url_problem("o", "not a url").is_some());
        let listed = SinkRules {
            allowed_hosts: vec!["hooks.slack.com".into(), "*.example.com".into()],
            ..SinkRules::default()
        };
        assert_eq!(
            listed.url_problem("o", "https://hooks.slack.com/services/x"),
            None
        );
        assert_eq!(listed.url_problem("o", "https://a.b.example.com/x"), None);
        for bad in [
            "https://example.com/x",
            "https://evil.com/x",
            "https://hooks.slack.com.evil.com/x",
            "https://evilexample.com/x",
            "http://127.0.0.1:9/x",
        ] {
            let (m, h) = listed.url_problem("o", bad).unwrap();
            assert!(m.contains("not among"), "{bad}: {m}");
            assert!(h.contains("hooks.slack.com"), "{h}");
        }
    }

    #[test]
    fn a_plan_refers_to_the_operators_named_sinks_only() {
        let rules = SinkRules {
            operators: vec![
                ("ops".into(), Scope::All),
                ("payments-slack".into(), Scope::Named),
            ],
            ..SinkRules::default()
        };
        let r = sink("name = \"owner\"\nsink = \"payments-slack\"\nevents = [\"dev.drctl.run.*\"]");
        assert!(r.problems(true).is_empty(), "{:?}", r.problems(true));
        assert!(r.rule_problems("p", &rules, &no_env()).is_empty());
        let all = sink("name = \"owner\"\nsink = \"ops\"");
        assert!(
            all.rule_problems("p", &rules, &no_env())[0]
                .message
                .contains("every run")
        );
        let none = sink("name = \"owner\"\nsink = \"nope\"");
        let p = none.rule_problems("p", &rules, &no_env());
        assert_eq!(p[0].key, "sink");
        assert!(p[0].hint.contains("payments-slack"), "{p:?}");
        let mixed = sink(
            "name = \"owner\"\nsink = \"payments-slack\"\nkind = \"webhook\"\nsecret_env = \"X\"",
        );
        let keys: Vec<&str> = mixed.problems(true).iter().map(|p| p.key).collect();
        assert_eq!(keys, ["kind", "secret_env"]);
        let in_toml = sink("name = \"owner\"\nsink = \"x\"");
        assert_eq!(in_toml.problems(false)[0].key, "sink");
    }

    #[test]
    fn the_url_a_plans_sink_would_use_is_checked_when_this_host_has_it() {
        let env: Env = Arc::new(|k| match k {
            "DRCTL_NOTIFY_P__PLAIN" => Some("http://hooks.example.com/x".into()),
            "DRCTL_NOTIFY_P__GOOD" => Some("https://hooks.example.com/x".into()),
            _ => None,
        });
        let rules = SinkRules::default();
        let with = |var: &str| {
            sink(&format!(
                "name = \"o\"\nkind = \"slack\"\nurl_env = \"{var}\""
            ))
            .rule_problems("p", &rules, &env)
        };
        assert_eq!(with("DRCTL_NOTIFY_P__PLAIN")[0].key, "url_env");
        assert!(with("DRCTL_NOTIFY_P__GOOD").is_empty());
        assert!(
            with("DRCTL_NOTIFY_P__UNSET").is_empty(),
            "checked when sent"
        );
        let pd = sink("name = \"pd\"\nkind = \"pagerduty\"\nsecret_env = \"DRCTL_NOTIFY_P__PD\"");
        let listed = SinkRules {
            allowed_hosts: vec!["hooks.example.com".into()],
            ..SinkRules::default()
        };
        let p = pd.rule_problems("p", &listed, &env);
        assert_eq!(
            p[0].key, "kind",
            "PagerDuty's own endpoint is not on the list"
        );
    }
}
