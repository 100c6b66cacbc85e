//! Settings: an optional `drctl.toml`, then `DRCTL_*` environment variables,
//! then command-line flags (later wins), resolved once into [`Settings`].
//!
//! Raw flags (what the user typed) are kept apart from resolved settings (what
//! the program uses), so every command sees the same, fully resolved values and
//! the precedence rules live here only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cloud::CloudSettings;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines on stderr.
    #[default]
    Text,
    /// One JSON object per line on stderr.
    Json,
}

/// When to colour output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is unset.
    #[default]
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Errors while resolving settings.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The settings file or environment could not be read or had bad values.
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
    /// A setting has a value drctl cannot use.
    #[error("invalid setting: {0}")]
    Value(String),
    /// The endpoints file could not be read.
    #[error("cannot read endpoints file {path}: {source}")]
    Endpoints {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line of the endpoints file is not `KEY=value`.
    #[error("{path}:{line}: expected KEY=value, found `{text}`")]
    EndpointsSyntax {
        /// The file.
        path: PathBuf,
        /// Line number from 1.
        line: usize,
        /// The line.
        text: String,
    },
}

impl ConfigError {
    /// What to do about it (the message is one line; the CLI renders the
    /// hint apart).
    pub fn hint(&self) -> &'static str {
        match self {
            Self::Invalid(_) => {
                "check drctl.toml and the DRCTL_* environment variables (see README)"
            }
            Self::Value(_) => {
                "check drctl.toml, the DRCTL_* environment variables and the flags (see README)"
            }
            Self::Endpoints { .. } => "run localstack/up to create it, or drop --endpoints",
            Self::EndpointsSyntax { .. } => {
                "the file holds lines like AWS_ENDPOINT_URL_S3=http://127.0.0.1:4566"
            }
        }
    }
}

/// The `DRCTL_*` variables read apart from the file's settings: the run
/// key's secret and public halves (`[keys]`).
const KEY_VARS: &[&str] = &["DRCTL_RUN_KEY", "DRCTL_RUN_PUBLIC"];

/// The `DRCTL_*` variables that are settings. Other `DRCTL_*` variables belong
/// to other tools (the emulator scripts' `DRCTL_MOTO_PORT`,
/// `DRCTL_ENDPOINTS_FILE`, ...) and are left alone, except that one
/// that looks like a misspelt setting gets a warning.
const SETTING_VARS: &[&str] = &[
    "DRCTL_PLANS",
    "DRCTL_STATE_DIR",
    "DRCTL_STATE",
    "DRCTL_LEASE",
    "DRCTL_LEASE_SKEW",
    "DRCTL_HOST",
    "DRCTL_ENDPOINTS",
    "DRCTL_GCS_ENDPOINT",
    "DRCTL_GCP_ENDPOINT",
    "DRCTL_CALL_LOG",
    "DRCTL_LOG_FORMAT",
    "DRCTL_COLOR",
];

/// Values from `drctl.toml` and `DRCTL_*` (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Plan directory.
    pub plans: Option<PathBuf>,
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// State location: a directory, `s3://bucket/prefix` or `gs://bucket/prefix`.
    pub state: Option<String>,
    /// Lease length on shared state (`60s`).
    pub lease: Option<String>,
    /// Clock skew allowed between machines sharing state (`10s`).
    pub lease_skew: Option<String>,
    /// The name this machine records as lock holder and run host.
    pub host: Option<String>,
    /// Endpoints file (`KEY=value` lines).
    pub endpoints: Option<PathBuf>,
    /// GCS endpoint.
    pub gcs_endpoint: Option<String>,
    /// Google Cloud's other APIs' endpoint (Cloud SQL Admin, Monitoring):
    /// an emulator serving them all.
    pub gcp_endpoint: Option<String>,
    /// A file each cloud call is appended to (`service:Operation`, region,
    /// outcome): which API operations a command needs.
    pub call_log: Option<PathBuf>,
    /// DNS servers that verify a data-plane switch (`host:port`); empty:
    /// the zone's NS servers.
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// Log format.
    pub log_format: Option<LogFormat>,
    /// Colour.
    pub color: Option<ColorChoice>,
    /// Notification sinks (`[[notify]]`, docs/notify.md).
    #[serde(default)]
    pub notify: Vec<crate::plan::notify::NotifySpec>,
    /// What plans' own `[[notify]]` sinks may use (`[plan_notify]`,
    /// docs/notify.md).
    #[serde(default)]
    pub plan_notify: PlanNotifyFileSettings,
    /// What `[[check]]` probes may reach (`[checks]`, docs/plans.md).
    #[serde(default)]
    pub checks: ChecksFileSettings,
    /// `drctl watch` (`[watch]`, docs/watch.md).
    #[serde(default)]
    pub watch: WatchFileSettings,
    /// API budgets that replace the model's (`[[budget]]`: a raised quota).
    #[serde(default, rename = "budget")]
    pub budgets: Vec<BudgetFileSettings>,
    /// How often a run looks again at what it waits for (`[pace]`).
    #[serde(default)]
    pub pace: PaceFileSettings,
    /// Who may sign journal heads and evidence manifests (`[keys]`, docs/state.md).
    #[serde(default)]
    pub keys: KeysFileSettings,
}

/// `[plan_notify]` in `drctl.toml`: what a plan's own sinks may use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanNotifyFileSettings {
    /// The directory a plan's `url_file` and `secret_file` must be under;
    /// absent: plans name no file.
    pub secrets_dir: Option<PathBuf>,
    /// The hosts a plan's sink may send to (`*.example.com` for
    /// subdomains); empty: any host over https.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// `[checks]` in `drctl.toml`: what `[[check]]` probes may reach.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksFileSettings {
    /// Let checks reach link-local and cloud metadata addresses
    /// (169.254.0.0/16, fe80::/10, fd00:ec2::254,
    /// metadata.google.internal); refused by default.
    #[serde(default)]
    pub allow_link_local: bool,
}

/// `[keys]` in `drctl.toml`: the operators' run key (docs/state.md, "Who can
/// forge what").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFileSettings {
    /// The environment variable holding the run key's secret half (default
    /// `DRCTL_RUN_KEY`): whoever starts, resumes or records runs holds it.
    pub run_key_env: Option<String>,
    /// A file holding the run key's secret half (instead of `run_key_env`).
    pub run_key_file: Option<PathBuf>,
    /// The public halves that journal heads and evidence manifests may be
    /// signed by (several during a rotation). Empty: nothing is checked
    /// (and readers say so).
    #[serde(default)]
    pub run_public: Vec<String>,
    /// The deployment journal signatures are bound to (default: the state
    /// bucket's URL; none for a local state directory): a journal signed
    /// for another domain (staging's, copied into production's bucket)
    /// does not verify here.
    pub domain: Option<String>,
    /// Whether journals signed before signatures named their deployment
    /// still verify (default false: set it while such runs are read).
    #[serde(default)]
    pub accept_unbound: bool,
}

/// `[keys]` resolved.
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    /// The run key's secret half, when this process holds it.
    pub run_secret: Option<crate::sign::SecretKey>,
    /// The public halves that may sign heads and manifests.
    pub run_public: Vec<crate::sign::PublicKey>,
    /// `[keys] domain`, checked: what journal signatures are bound to
    /// (`None`: the state's URL, see [`Settings::signing_domain`]).
    pub domain: Option<String>,
    /// `[keys] accept_unbound`.
    pub accept_unbound: bool,
}

impl KeySettings {
    fn resolve(f: &KeysFileSettings, env: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let bad = |e: crate::sign::KeyError| ConfigError::Value(format!("[keys] {e}"));
        // DRCTL_RUN_PUBLIC (keys separated by commas or spaces) replaces
        // the file's list, as every variable does its setting.
        let run_public = match env.get("DRCTL_RUN_PUBLIC").filter(|t| !t.trim().is_empty()) {
            Some(t) => {
                let listed: Vec<String> = t
                    .split([',', ' ', '\n'])
                    .filter(|k| !k.trim().is_empty())
                    .map(str::to_string)
                    .collect();
                crate::sign::parse_publics(&listed, "$DRCTL_RUN_PUBLIC").map_err(bad)?
            }
            None => crate::sign::parse_publics(&f.run_public, "run_public").map_err(bad)?,
        };
        let var = f
            .run_key_env
            .clone()
            .unwrap_or_else(|| "DRCTL_RUN_KEY".into());
        let run_secret = match &f.run_key_file {
            Some(path) => {
                let text = crate::sign::read_secret_file(path)
                    .map_err(|e| ConfigError::Value(format!("[keys] run_key_file: {e}")))?;
                Some(crate::sign::SecretKey::parse(&text, "[keys] run_key_file").map_err(bad)?)
            }
            None => match env.get(&var).filter(|t| !t.trim().is_empty()) {
                Some(t) => Some(crate::sign::SecretKey::parse(t, &format!("${var}")).map_err(bad)?),
                None => None,
            },
        };
        if let Some(k) = &run_secret
            && !run_public.is_empty()
            && !run_public.contains(&k.public())
        {
            return Err(ConfigError::Value(format!(
                "[keys] the run key held here ({}) is not in run_public: what it signs would not verify (hint: add {} to run_public)",
                k.public().id(),
                k.public()
            )));
        }
        let domain = match &f.domain {
            Some(d) if d.trim().is_empty() || d.len() > 256 || d.chars().any(char::is_control) => {
                return Err(ConfigError::Value(format!(
                    "[keys] domain: `{}` is not a deployment's name: 1 to 256 printable characters (hint: \"production\", or leave it out to bind signatures to the state's URL)",
                    crate::escape::terminal(d)
                )));
            }
            d => d.clone(),
        };
        Ok(Self {
            run_secret,
            run_public,
            domain,
            accept_unbound: f.accept_unbound,
        })
    }
}

/// `[pace]`: the waits between two looks at something not done yet, in
/// milliseconds (docs/performance.md, "Pace").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaceFileSettings {
    /// First wait between two polls of a slow operation (default 200).
    pub poll_first_ms: Option<u64>,
    /// Longest wait between two polls (default 10000).
    pub poll_max_ms: Option<u64>,
    /// First wait on a Route 53 zone still busy with an earlier change (default 500).
    pub busy_first_ms: Option<u64>,
    /// Longest wait on a busy zone (default 8000).
    pub busy_max_ms: Option<u64>,
}

impl PaceFileSettings {
    fn resolve(&self) -> Result<crate::engine::Pace, ConfigError> {
        let d = crate::engine::Pace::default();
        let pair = |name: &str,
                    (first, max): (Option<u64>, Option<u64>),
                    (d0, d1): (Duration, Duration)| {
            let first = first.map_or(d0, Duration::from_millis);
            let max = max.map_or(d1, Duration::from_millis);
            let cap = crate::plan::duration::MAX_DURATION;
            if first > cap || max > cap {
                return Err(ConfigError::Value(format!(
                    "[pace] {name}_first_ms = {} and {name}_max_ms = {}: a wait is at most {} ms (3650 days, the longest duration drctl accepts)",
                    first.as_millis(),
                    max.as_millis(),
                    cap.as_millis()
                )));
            }
            if first.is_zero() || max < first {
                return Err(ConfigError::Value(format!(
                    "[pace] {name}_first_ms = {} and {name}_max_ms = {}: the first wait must be above 0 and at most the longest",
                    first.as_millis(),
                    max.as_millis()
                )));
            }
            Ok((first, max))
        };
        Ok(crate::engine::Pace {
            poll: pair("poll", (self.poll_first_ms, self.poll_max_ms), d.poll)?,
            busy_zone: pair("busy", (self.busy_first_ms, self.busy_max_ms), d.busy_zone)?,
        })
    }
}

/// `[[budget]]`: one token bucket of AWS's, as this account has it (a
/// quota raised, or lowered to leave room for other clients).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFileSettings {
    /// The service (`route53`, `rds`, `cloudwatch`, ...).
    pub service: String,
    /// The API operation; absent: the service-wide bucket.
    #[serde(default)]
    pub api: Option<String>,
    /// Bucket capacity.
    pub burst: f64,
    /// Refill per second.
    pub rate: f64,
}

/// `[watch]` in `drctl.toml`: who the observers are, this observer's
/// key, and the velocity cap (docs/watch.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchFileSettings {
    /// The environment variable holding this observer's secret key
    /// (default `DRCTL_OBSERVER_KEY`).
    pub key_env: Option<String>,
    /// A file holding this observer's secret key (instead of `key_env`).
    pub key_file: Option<PathBuf>,
    /// Failovers watch may start per `velocity_window`, across all plans (default 2).
    pub max_failovers: Option<usize>,
    /// The velocity cap's window (default `1h`).
    pub velocity_window: Option<String>,
    /// Bound on each read of an observation round (default `5s`): a read
    /// that takes longer is a failed signal of its region.
    pub read_timeout: Option<String>,
    /// The observers whose reports count (`[[watch.observers]]`).
    #[serde(default)]
    pub observers: Vec<ObserverFileSettings>,
    /// The listed principals that alone propose and start failovers (the
    /// starter, `drctl watch --observer NAME` on a host with the failover
    /// role); they do not vote. Empty: every observer may.
    #[serde(default)]
    pub starters: Vec<String>,
}

/// One `[[watch.observers]]`: an observer the operators trust.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverFileSettings {
    /// Its name (`drctl watch --observer NAME`).
    pub name: String,
    /// Where it runs (a cloud region, a data centre): the quorum must span
    /// `quorum` distinct places. Absent: a place of its own.
    pub place: Option<String>,
    /// Its public keys (`ed25519:...`; two during a rotation).
    #[serde(default)]
    pub keys: Vec<String>,
}

/// A listed observer, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ObserverSettings {
    /// Its name.
    pub name: String,
    /// Its place, when given.
    pub place: Option<String>,
    /// The keys its reports, proposals and claims may be signed with.
    pub keys: Vec<crate::sign::PublicKey>,
}

/// `[watch]` resolved.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// The environment variable holding this observer's secret key.
    pub key_env: String,
    /// The file holding this observer's secret key, when set (it wins over `key_env`).
    pub key_file: Option<PathBuf>,
    /// Failovers watch may start per `velocity_window`, across all plans.
    pub max_failovers: usize,
    /// The velocity cap's window.
    pub velocity_window: Duration,
    /// Bound on each read of a round.
    pub read_timeout: Duration,
    /// The observers whose reports count, each once.
    pub observers: Vec<ObserverSettings>,
    /// The listed principals that alone propose and start failovers; they
    /// do not vote (empty: every observer may).
    pub starters: Vec<String>,
}

impl WatchSettings {
    fn resolve(f: &WatchFileSettings) -> Result<Self, ConfigError> {
        let dur = |key: &str, t: &Option<String>, d: Duration| match t {
            None => Ok(d),
            Some(t) => crate::plan::duration::parse_duration(t)
                .map_err(|e| ConfigError::Value(format!("[watch] {key}: {e}"))),
        };
        Ok(Self {
            key_env: f
                .key_env
                .clone()
                .unwrap_or_else(|| "DRCTL_OBSERVER_KEY".into()),
            key_file: f.key_file.clone(),
            max_failovers: f.max_failovers.unwrap_or(2),
            velocity_window: dur(
                "velocity_window",
                &f.velocity_window,
                Duration::from_secs(3600),
            )?,
            read_timeout: dur("read_timeout", &f.read_timeout, Duration::from_secs(5))?,
            observers: observers(&f.observers)?,
            starters: starters(&f.starters, &f.observers)?,
        })
    }
}

/// `[watch] starters` checked: each a listed `[[watch.observers]]` name
/// (it signs with its listed keys), once; never every listed one (no one
/// would be left to vote).
fn starters(names: &[String], listed: &[ObserverFileSettings]) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !listed.iter().any(|o| o.name == *n) {
            return Err(ConfigError::Value(format!(
                "[watch] starters: `{}` is not a listed observer (hint: list the starter under [[watch.observers]] with its own key and place; it does not vote)",
                crate::escape::terminal(n)
            )));
        }
        if out.contains(n) {
            return Err(ConfigError::Value(format!(
                "[watch] starters: `{n}` is named twice"
            )));
        }
        out.push(n.clone());
    }
    if !out.is_empty() && out.len() == listed.len() {
        return Err(ConfigError::Value(
            "[watch] starters: every listed observer is a starter, and starters do not vote (hint: list the observers that vote besides the starter)".into(),
        ));
    }
    Ok(out)
}

/// `[[watch.observers]]` checked: names valid and unique, each with at
/// least one key, and no key under two names (whoever holds it could speak
/// for both, and count twice).
fn observers(list: &[ObserverFileSettings]) -> Result<Vec<ObserverSettings>, ConfigError> {
    const HINT: &str =
        "hint: each observer is listed once, with its own keys (`drctl watch keygen`)";
    let mut out: Vec<ObserverSettings> = Vec::with_capacity(list.len());
    for (i, o) in list.iter().enumerate() {
        let at = format!("[[watch.observers]] #{} (`{}`)", i + 1, o.name);
        if crate::journal::store::validate_run_id(&o.name).is_err() {
            return Err(ConfigError::Value(format!(
                "{at}: `{}` is not an observer name (hint: letters, digits, `.`, `_` and `-`)",
                o.name
            )));
        }
        if out.iter().any(|p| p.name == o.name) {
            return Err(ConfigError::Value(format!(
                "{at}: the observer `{}` is listed twice ({HINT})",
                o.name
            )));
        }
        if o.place.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(ConfigError::Value(format!(
                "{at}: `place` is empty (hint: name where it runs, or leave `place` out)"
            )));
        }
        if o.keys.is_empty() {
            return Err(ConfigError::Value(format!(
                "{at}: `keys` is empty: nothing it signs could count ({HINT})"
            )));
        }
        let keys = crate::sign::parse_publics(&o.keys, &format!("{at} keys"))
            .map_err(|e| ConfigError::Value(e.to_string()))?;
        for (j, k) in keys.iter().enumerate() {
            if keys[..j].contains(k) {
                return Err(ConfigError::Value(format!(
                    "{at}: the key {} is listed twice ({HINT})",
                    k.id()
                )));
            }
            if let Some(other) = out.iter().find(|p| p.keys.contains(k)) {
                return Err(ConfigError::Value(format!(
                    "{at}: the key {} is listed under `{}` too: whoever holds it would speak for both ({HINT})",
                    k.id(),
                    other.name
                )));
            }
        }
        out.push(ObserverSettings {
            name: o.name.clone(),
            place: o.place.as_ref().map(|p| p.trim().to_string()),
            keys,
        });
    }
    Ok(out)
}

/// The model's limits, with `[[budget]]` entries replacing them.
fn budgets(
    over: &[BudgetFileSettings],
) -> Result<BTreeMap<(String, Option<String>), crate::cloud::budget::Limit>, ConfigError> {
    let mut out = crate::cloud::model::Model::aws()
        .map_err(ConfigError::Value)?
        .bucket_limits();
    for b in over {
        if !(b.burst >= 1.0 && b.rate > 0.0 && b.burst.is_finite() && b.rate.is_finite()) {
            return Err(ConfigError::Value(format!(
                "[[budget]] {}{}: burst must be at least 1 and rate above 0 (hint: the figures of the account's Service Quotas)",
                b.service,
                b.api
                    .as_deref()
                    .map(|a| format!(":{a}"))
                    .unwrap_or_default()
            )));
        }
        out.insert(
            (b.service.clone(), b.api.clone().filter(|a| !a.is_empty())),
            crate::cloud::budget::Limit {
                burst: b.burst,
                rate: b.rate,
            },
        );
    }
    Ok(out)
}

/// Flags that override settings (from the command line).
#[derive(Debug, Clone, Default)]
pub struct FlagSettings {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--plans`.
    pub plans: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--state`.
    pub state: Option<String>,
    /// `--endpoints`.
    pub endpoints: Option<PathBuf>,
    /// `--gcs-endpoint`.
    pub gcs_endpoint: Option<String>,
    /// `--dns-server` (repeatable).
    pub dns_servers: Vec<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--color`.
    pub color: Option<ColorChoice>,
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Plan directory.
    pub plans: PathBuf,
    /// State directory (journals, locks) when the state is local, else the
    /// default directory (unused).
    pub state_dir: PathBuf,
    /// Where journals and locks live.
    pub state: crate::state::StateLocation,
    /// Lease length and clock skew for shared state.
    pub lease: crate::state::LeaseTimes,
    /// The machine's name for locks and journals (`host`); `None` = the system's.
    pub host: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Colour.
    pub color: ColorChoice,
    /// Cloud endpoints and credentials.
    pub cloud: CloudSettings,
    /// Problems worth a warning (a misspelt `DRCTL_*` variable).
    pub warnings: Vec<String>,
    /// The team's notification sinks (plans may add their own).
    pub notify: Vec<crate::plan::notify::NotifySpec>,
    /// What plans' own sinks may use, and the operators' sinks they may
    /// name (`[plan_notify]` and the `[[notify]]` names).
    pub sink_rules: crate::plan::notify::SinkRules,
    /// `drctl watch`'s settings.
    pub watch: WatchSettings,
    /// The API budgets of a run: the model's published limits
    /// (`src/cloud/aws_model.toml`), with `[[budget]]` entries replacing them.
    pub budgets: BTreeMap<(String, Option<String>), crate::cloud::budget::Limit>,
    /// How often runs look again at what they wait for (`[pace]`).
    pub pace: crate::engine::Pace,
    /// The run key: who signs journal heads and evidence manifests.
    pub keys: KeySettings,
}

impl Settings {
    /// Refuses a secret file named on a command line (`watch --key-file`)
    /// that lies under `[plan_notify] secrets_dir`, as the files drctl.toml
    /// names are refused when it is read: a plan's sink may read any file
    /// there. `what` says which file it is.
    pub fn refuse_in_secrets_dir(&self, what: &str, path: &Path) -> Result<(), ConfigError> {
        secrets_dir_holds_nothing_else(
            self.sink_rules.secrets_dir.as_deref(),
            &[(what, Some(path))],
        )
    }

    /// Resolves settings from `drctl.toml` (or `--config`), the process
    /// environment, an endpoints file, and flags.
    pub fn resolve(flags: &FlagSettings) -> Result<Self, ConfigError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::resolve_with(flags, &env)
    }

    /// [`Settings::resolve`] with an explicit environment (for tests).
    pub fn resolve_with(
        flags: &FlagSettings,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let (file, warnings) = read_file_and_env(flags, env)?;

        let plans = flags
            .plans
            .clone()
            .or(file.plans.clone())
            .unwrap_or_else(|| PathBuf::from("plans"));
        // --state beats --state-dir; then DRCTL_STATE / `state`, then
        // DRCTL_STATE_DIR / `state_dir`; then `.drctl` beside the plans.
        let state_text = flags
            .state
            .clone()
            .or_else(|| flags.state_dir.as_ref().map(|d| d.display().to_string()))
            .or(file.state.clone())
            .or_else(|| file.state_dir.as_ref().map(|d| d.display().to_string()));
        let state = match state_text {
            Some(t) => crate::state::StateLocation::parse(&t)
                .map_err(|e| ConfigError::Value(e.to_string()))?,
            None => crate::state::StateLocation::Dir(default_state_dir(&plans)),
        };
        let state_dir = match &state {
            crate::state::StateLocation::Dir(d) => d.clone(),
            crate::state::StateLocation::Bucket(_) => default_state_dir(&plans),
        };
        let lease = lease_times(&file)?;
        let cloud = cloud_settings(flags, env, &file)?;
        for (i, n) in file.notify.iter().enumerate() {
            if let Some(p) = n.problems(false).into_iter().next() {
                return Err(ConfigError::Value(format!(
                    "{} (hint: {})",
                    p.message, p.hint
                )));
            }
            if file.notify[..i].iter().any(|o| o.name == n.name) {
                return Err(ConfigError::Value(format!(
                    "two [[notify]] sinks are named `{}`",
                    n.name
                )));
            }
        }
        let sink_rules = plan_sink_rules(&file)?;
        secrets_dir_holds_nothing_else(
            sink_rules.secrets_dir.as_deref(),
            &[
                ("the plans directory", Some(plans.as_path())),
                ("the run key file", file.keys.run_key_file.as_deref()),
                ("the observer key file", file.watch.key_file.as_deref()),
            ],
        )?;
        Ok(Self {
            plans,
            state_dir,
            state,
            lease,
            host: file.host.clone().filter(|h| !h.trim().is_empty()),
            log_format: flags.log_format.or(file.log_format).unwrap_or_default(),
            color: flags.color.or(file.color).unwrap_or_default(),
            cloud,
            warnings,
            notify: file.notify.clone(),
            sink_rules,
            watch: WatchSettings::resolve(&file.watch)?,
            budgets: budgets(&file.budgets)?,
            pace: file.pace.resolve()?,
            keys: KeySettings::resolve(&file.keys, env)?,
        })
    }

    /// The deployment journal signatures are bound to: `[keys] domain`,
    /// else the state bucket's URL (`s3://bucket/prefix`), else none (a
    /// local state directory: one machine's, nothing to tell apart).
    pub fn signing_domain(&self) -> String {
        match (&self.keys.domain, &self.state) {
            (Some(d), _) => d.clone(),
            (None, crate::state::StateLocation::Bucket(url)) => url.to_string(),
            (None, crate::state::StateLocation::Dir(_)) => String::new(),
        }
    }

    /// The run keys as journals are written and read with them: signed
    /// with the run key held, checked against the listed ones, bound to
    /// [`Self::signing_domain`].
    pub fn run_keys(&self) -> crate::journal::RunKeys {
        crate::journal::RunKeys::new(self.keys.run_secret.clone(), self.keys.run_public.clone())
            .bound(&self.signing_domain(), self.keys.accept_unbound)
    }

    /// The keys of the notices of no run (`notices/`: a plan's overdue
    /// drill, a veto's notice), signed by `signer` (the run key, or the
    /// observer's in `drctl watch`). With run keys listed they are checked
    /// against those and the listed observers' keys, so a writer of the
    /// state cannot forge a notice that `notify flush` delivers; bound to
    /// `<domain>#notices`, so no notice reads as a run or the reverse.
    pub fn notice_keys(&self, signer: Option<crate::sign::SecretKey>) -> crate::journal::RunKeys {
        let mut listed = self.keys.run_public.clone();
        if !listed.is_empty() {
            listed.extend(self.watch.observers.iter().flat_map(|o| o.keys.clone()));
        }
        crate::journal::RunKeys::new(signer, listed)
            .bound(&format!("{}#notices", self.signing_domain()), false)
    }

    /// The keys of observers' own journals (`watch/runs/`), signed by the
    /// observer's key (`signer`): with observers listed, checked against
    /// their keys (a writer of the state cannot add decisions the report
    /// lists); bound to `<domain>#watch`.
    pub fn watch_keys(&self, signer: Option<crate::sign::SecretKey>) -> crate::journal::RunKeys {
        let listed = (self.watch.observers.iter())
            .flat_map(|o| o.keys.clone())
            .collect();
        crate::journal::RunKeys::new(signer, listed)
            .bound(&format!("{}#watch", self.signing_domain()), false)
    }

    /// Whether to colour output written to a stream that is (or is not) a terminal.
    pub fn use_color(&self, is_terminal: bool) -> bool {
        match self.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// `drctl.toml` (or `--config`) under the `DRCTL_*` variables of `env`,
/// with a warning for each variable that looks like a misspelt setting.
fn read_file_and_env(
    flags: &FlagSettings,
    env: &BTreeMap<String, String>,
) -> Result<(FileSettings, Vec<String>), ConfigError> {
    let mut builder = config::Config::builder();
    builder = match &flags.config {
        Some(path) => builder.add_source(config::File::from(path.as_path()).required(true)),
        None => builder.add_source(
            config::File::with_name("drctl")
                .format(config::FileFormat::Toml)
                .required(false),
        ),
    };
    let mut warnings = Vec::new();
    for k in env.keys().filter(|k| {
        k.starts_with("DRCTL_")
            && !SETTING_VARS.contains(&k.as_str())
            && !KEY_VARS.contains(&k.as_str())
    }) {
        if let Some(near) = crate::plan::validate::did_you_mean(k, SETTING_VARS.iter().copied()) {
            warnings.push(format!(
                "ignoring {k}: not a drctl setting (did you mean {near}?)"
            ));
        }
    }
    let env_source = config::Environment::with_prefix("DRCTL").source(Some(
        env.iter()
            .filter(|(k, _)| SETTING_VARS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    ));
    let file: FileSettings = builder.add_source(env_source).build()?.try_deserialize()?;
    Ok((file, warnings))
}

/// What plans' own sinks may use: `[plan_notify]`, and the names and
/// scopes of the operators' sinks.
fn plan_sink_rules(file: &FileSettings) -> Result<crate::plan::notify::SinkRules, ConfigError> {
    let p = &file.plan_notify;
    for h in &p.allowed_hosts {
        let bare = h.strip_prefix("*.").unwrap_or(h);
        if bare.is_empty()
            || !bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(ConfigError::Value(format!(
                "[plan_notify] allowed_hosts: `{h}` is not a host name (hint: hooks.slack.com, or *.example.com for its subdomains)"
            )));
        }
    }
    Ok(crate::plan::notify::SinkRules {
        secrets_dir: p.secrets_dir.clone(),
        allowed_hosts: p.allowed_hosts.clone(),
        operators: (file.notify.iter())
            .map(|n| (n.name.clone(), n.scope.unwrap_or_default()))
            .collect(),
    })
}

/// Refuses a `[plan_notify] secrets_dir` that holds one of `held`: a
/// plan's sink may read any file in it (`url_file`, `secret_file`), so a
/// key file there is a plan author's to send away, and a plans directory
/// there makes every plan's text (and what a plan writes beside it) a
/// secret any plan could read. Paths are compared whole and resolved
/// where they exist (a symbolic link cannot hide one inside).
fn secrets_dir_holds_nothing_else(
    dir: Option<&Path>,
    held: &[(&str, Option<&Path>)],
) -> Result<(), ConfigError> {
    let Some(dir) = dir else {
        return Ok(());
    };
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let root = real(dir);
    for (what, path) in held {
        let Some(path) = path else { continue };
        if real(path).starts_with(&root) {
            return Err(ConfigError::Value(format!(
                "[plan_notify] secrets_dir {} holds {what} ({}): a plan's sink may read any file there (hint: keep only the plans' sink URLs and secrets in it)",
                dir.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// The lease length and clock skew allowance (`lease`, `lease_skew`).
fn lease_times(file: &FileSettings) -> Result<crate::state::LeaseTimes, ConfigError> {
    let mut lease = crate::state::LeaseTimes::default();
    for (name, value, slot) in [
        ("lease", &file.lease, &mut lease.length),
        ("lease_skew", &file.lease_skew, &mut lease.skew),
    ] {
        if let Some(v) = value {
            *slot = crate::plan::duration::parse_duration(v).map_err(|e| {
                ConfigError::Value(format!(
                    "{name} = \"{v}\": {e} (DRCTL_{} / drctl.toml)",
                    name.to_uppercase()
                ))
            })?;
        }
    }
    if lease.length < std::time::Duration::from_secs(1) || lease.skew >= lease.length {
        return Err(ConfigError::Value(format!(
            "lease {}s with skew {}s: the lease must be at least 1s and longer than the skew",
            lease.length.as_secs_f64(),
            lease.skew.as_secs_f64()
        )));
    }
    Ok(lease)
}

/// The cloud endpoints and credentials settings.
fn cloud_settings(
    flags: &FlagSettings,
    env: &BTreeMap<String, String>,
    file: &FileSettings,
) -> Result<CloudSettings, ConfigError> {
    // Cloud endpoints, later wins: the process environment (with
    // `drctl.toml`'s `gcs_endpoint` under DRCTL_GCS_ENDPOINT), then the
    // endpoints file (an overlay of the environment, for every key alike),
    // then `--gcs-endpoint`.
    let mut cloud = CloudSettings::from_vars(env);
    if let Some(gcs) = file.gcs_endpoint.clone() {
        cloud.gcs_endpoint = Some(gcs);
    }
    if let Some(gcp) = file.gcp_endpoint.clone() {
        cloud.gcp_endpoint = Some(gcp);
    }
    if cloud.dns_servers.is_empty() {
        cloud.dns_servers = file.dns_servers.clone();
    }
    if let Some(path) = flags.endpoints.clone().or(file.endpoints.clone()) {
        cloud = cloud.overlay(CloudSettings::from_vars(&read_env_file(&path)?));
    }
    if let Some(gcs) = flags.gcs_endpoint.clone() {
        cloud.gcs_endpoint = Some(gcs);
    }
    cloud.call_log = file.call_log.clone();
    if !flags.dns_servers.is_empty() {
        cloud.dns_servers = flags.dns_servers.clone();
    }
    cloud.checks_allow_link_local = file.checks.allow_link_local;
    Ok(cloud)
}

/// `.drctl/` beside the plan directory.
fn default_state_dir(plans: &Path) -> PathBuf {
    let parent = if plans.is_dir() || plans.extension().is_none() {
        plans.parent()
    } else {
        plans.parent().and_then(Path::parent)
    };
    parent
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from(".drctl"), |p| p.join(".drctl"))
}

/// Reads a `KEY=value` file (the format `localstack/up` writes and `sh` sources).
/// Blank lines and `#` comments are skipped; `export ` prefixes and surrounding
/// quotes are accepted.
pub fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Endpoints {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(ConfigError::EndpointsSyntax {
                path: path.to_path_buf(),
                line: i + 1,
                text: line.to_string(),
            });
        };
        let v = v.trim().trim_matches('"').trim_matches('\'');
        out.insert(k.trim().to_string(), v.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings of a `drctl.toml` at `f` holding `text`.
    fn from_file(f: &Path, text: &str) -> Result<Settings, ConfigError> {
        std::fs::write(f, text).unwrap();
        let flags = FlagSettings {
            config: Some(f.to_path_buf()),
            ..Default::default()
        };
        Settings::resolve_with(&flags, &BTreeMap::new())
    }

    #[test]
    fn flags_beat_environment_which_beats_defaults() {
        let env = BTreeMap::from([
            ("DRCTL_PLANS".to_string(), "/srv/plans".to_string()),
            ("DRCTL_LOG_FORMAT".to_string(), "json".to_string()),
        ]);
        let s = Settings::resolve_with(&FlagSettings::default(), &env).unwrap();
        assert_eq!(s.plans, PathBuf::from("/srv/plans"));
        assert_eq!(s.state_dir, PathBuf::from("/srv/.drctl"));
        assert_eq!(s.log_format, LogFormat::Json);
        let flags = FlagSettings {
            state: None,
            plans: Some("/other/plans".into()),
            log_format: Some(LogFormat::Text),
            ..Default::default()
        };
        let s = Settings::resolve_with(&flags, &env).unwrap();
        assert_eq!(s.plans, PathBuf::from("/other/plans"));
        assert_eq!(s.log_format, LogFormat::Text);
    }

    #[test]
    fn the_run_key_and_its_public_halves_come_from_the_environment_without_a_warning() {
        let k = crate::sign::SecretKey::generate();
        let other = crate::sign::SecretKey::generate();
        let env = BTreeMap::from([
            ("DRCTL_RUN_KEY".to_string(), k.to_text()),
            (
                "DRCTL_RUN_PUBLIC".to_string(),
                format!("{}, {}", other.public(), k.public()),
            ),
        ]);
        let s = Settings::resolve_with(&FlagSettings::default(), &env).unwrap();
        assert_eq!(s.keys.run_public, [other.public(), k.public()]);
        assert_eq!(s.keys.run_secret.map(|k| k.public()), Some(k.public()));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let env = BTreeMap::from([("DRCTL_RUN_PUBLIC".to_string(), "ed25519:AAAA".to_string())]);
        let e = Settings::resolve_with(&FlagSettings::default(), &env).unwrap_err();
        assert!(e.to_string().contains("DRCTL_RUN_PUBLIC"), "{e}");
    }

    #[test]
    fn journal_signatures_are_bound_to_the_domain_or_the_state_bucket() {
        let bucket = FlagSettings {
            state: Some("s3://prod-state/drctl/".into()),
            ..Default::default()
        };
        let s = Settings::resolve_with(&bucket, &BTreeMap::new()).unwrap();
        assert_eq!(s.signing_domain(), "s3://prod-state/drctl");
        assert_eq!(s.run_keys().domain, "s3://prod-state/drctl");
        assert!(!s.run_keys().accept_unbound);
        let local = Settings::resolve_with(&FlagSettings::default(), &BTreeMap::new()).unwrap();
        assert_eq!(local.signing_domain(), "");
        let f = KeysFileSettings {
            domain: Some("production".into()),
            accept_unbound: true,
            ..Default::default()
        };
        let k = KeySettings::resolve(&f, &BTreeMap::new()).unwrap();
        assert_eq!(k.domain.as_deref(), Some("production"));
        assert!(k.accept_unbound);
        for bad in ["", "  ", "a\u{0}b", &"x".repeat(257)] {
            let f = KeysFileSettings {
                domain: Some(bad.to_string()),
                ..Default::default()
            };
            let e = KeySettings::resolve(&f, &BTreeMap::new()).unwrap_err();
            assert!(e.to_string().contains("[keys] domain"), "{e}");
        }
    }

    /// Regression (issue 39): the notices of no run (`notices/`) and the
    /// observers' own journals (`watch/runs/`) were written unsigned and
    /// read with no signature checked, keys listed or not: a writer of the
    /// state could forge a notice that `notify flush` delivered, or watch
    /// decisions that `report` listed. Each store is now keyed: a journal
    /// signed by no listed key, or signed for another store (a run's
    /// journal copied in), is left out.
    #[tokio::test]
    async fn regression_notices_and_watch_journals_were_read_unsigned() {
        use crate::journal::{Event, Journal, JournalStore, Keyed, MemoryStore};
        use std::sync::Arc;
        let run = crate::sign::SecretKey::generate();
        let observer = crate::sign::SecretKey::generate();
        let env = BTreeMap::from([("DRCTL_RUN_PUBLIC".to_string(), run.public().to_text())]);
        let mut s = Settings::resolve_with(&FlagSettings::default(), &env).unwrap();
        s.watch.observers.push(ObserverSettings {
            name: "obs-1".into(),
            place: None,
            keys: vec![observer.public()],
        });
        let event = || Event::Interrupted {
            reason: "a notice".into(),
        };
        let write = |mem: &Arc<MemoryStore>, keys: Option<crate::journal::RunKeys>, id: &str| {
            let store: Arc<dyn JournalStore> = match keys {
                Some(k) => Arc::new(Keyed::new(mem.clone(), k)),
                None => mem.clone(),
            };
            let id = id.to_string();
            async move {
                let mut j = Journal::create(store, &id).await.unwrap();
                j.append(event()).await.unwrap();
            }
        };
        for (name, keys_with) in [
            ("notices", Settings::notice_keys as fn(&Settings, _) -> _),
            ("watch", Settings::watch_keys),
        ] {
            let mem = Arc::new(MemoryStore::new());
            write(&mem, None, "forged").await;
            let mut runs = s.run_keys();
            runs.signer = Some(run.clone());
            write(&mem, Some(runs), "a-run-copied-in").await;
            write(
                &mem,
                Some(keys_with(&s, Some(observer.clone()))),
                "the-observers",
            )
            .await;
            let store = Keyed::new(mem.clone(), keys_with(&s, None));
            let read = crate::journal::runs::read_runs(&store, |_| true)
                .await
                .unwrap();
            let ids: Vec<&str> = read.runs.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(ids, ["the-observers"], "{name}: {read:?}");
            let out: Vec<&str> = read.left_out.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(out, ["a-run-copied-in", "forged"], "{name}");
            // `notify pending|flush` read a notice with its late facts:
            // refused too.
            assert!(
                crate::runs::late::read(&store, "forged").await.is_err(),
                "{name}"
            );
        }
        // The run key signs notices too (`drctl notify`, the scheduler).
        let mem = Arc::new(MemoryStore::new());
        write(&mem, Some(s.notice_keys(Some(run.clone()))), "overdue").await;
        let store = Keyed::new(mem.clone(), s.notice_keys(None));
        assert!(crate::runs::late::read(&store, "overdue").await.is_ok());
        // Without run keys listed, notices are not checked (as runs are not).
        s.keys.run_public.clear();
        assert!(!s.notice_keys(None).checks());
    }

    #[test]
    fn endpoints_file_overrides_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("endpoints.env");
        std::fs::write(&f, "# world\nAWS_ENDPOINT_URL_RDS=http://127.0.0.1:5000\nexport DRCTL_GCS_ENDPOINT=\"http://127.0.0.1:4443\"\n").unwrap();
        let env = BTreeMap::from([(
            "AWS_ENDPOINT_URL_RDS".to_string(),
            "http://elsewhere".to_string(),
        )]);
        let flags = FlagSettings {
            endpoints: Some(f.clone()),
            ..Default::default()
        };
        let s = Settings::resolve_with(&flags, &env).unwrap();
        assert_eq!(
            s.cloud.rds_endpoint.as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert_eq!(
            s.cloud.gcs_endpoint.as_deref(),
            Some("http://127.0.0.1:4443")
        );
        std::fs::write(&f, "not a pair\n").unwrap();
        let e = Settings::resolve_with(&flags, &env).unwrap_err();
        assert!(e.to_string().contains(":1:"), "{e}");
    }

    /// Every setting: `drctl.toml`, beaten by `DRCTL_*`, beaten by flags.
    #[test]
    fn each_setting_layers_file_then_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("drctl.toml");
        std::fs::write(
            &toml,
            "plans = \"/file/plans\"\nstate_dir = \"/file/state\"\ngcs_endpoint = \"http://file:1\"\nlog_format = \"json\"\ncolor = \"never\"\n",
        )
        .unwrap();
        let only_file = FlagSettings {
            config: Some(toml.clone()),
            ..Default::default()
        };
        let s = Settings::resolve_with(&only_file, &BTreeMap::new()).unwrap();
        assert_eq!(s.plans, PathBuf::from("/file/plans"));
        assert_eq!(s.state_dir, PathBuf::from("/file/state"));
        assert_eq!(s.cloud.gcs_endpoint.as_deref(), Some("http://file:1"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.color, ColorChoice::Never);

        let env = BTreeMap::from([
            ("DRCTL_PLANS".to_string(), "/env/plans".to_string()),
            ("DRCTL_STATE_DIR".to_string(), "/env/state".to_string()),
            ("DRCTL_GCS_ENDPOINT".to_string(), "http://env:2".to_string()),
            ("DRCTL_LOG_FORMAT".to_string(), "text".to_string()),
            ("DRCTL_COLOR".to_string(), "always".to_string()),
        ]);
        let s = Settings::resolve_with(&only_file, &env).unwrap();
        assert_eq!(s.plans, PathBuf::from("/env/plans"));
        assert_eq!(s.state_dir, PathBuf::from("/env/state"));
        assert_eq!(s.cloud.gcs_endpoint.as_deref(), Some("http://env:2"));
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.color, ColorChoice::Always);

        let flags = FlagSettings {
            state: None,
            config: Some(toml),
            plans: Some("/flag/plans".into()),
            state_dir: Some("/flag/state".into()),
            gcs_endpoint: Some("http://flag:3".into()),
            log_format: Some(LogFormat::Json),
            color: Some(ColorChoice::Auto),
            endpoints: None,
            dns_servers: Vec::new(),
        };
        let s = Settings::resolve_with(&flags, &env).unwrap();
        assert_eq!(s.plans, PathBuf::from("/flag/plans"));
        assert_eq!(s.state_dir, PathBuf::from("/flag/state"));
        assert_eq!(s.cloud.gcs_endpoint.as_deref(), Some("http://flag:3"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.color, ColorChoice::Auto);
    }

    /// Regression: DRCTL_GCS_ENDPOINT in the environment used to beat the
    /// endpoints file, while for the AWS endpoints the file beat the
    /// environment. The file now overlays the environment for every key, and
    /// `--gcs-endpoint` beats both.
    #[test]
    fn regression_endpoints_file_overlays_the_gcs_endpoint_like_the_aws_ones() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("endpoints.env");
        std::fs::write(
            &f,
            "AWS_ENDPOINT_URL_S3=http://file:4566\nDRCTL_GCS_ENDPOINT=http://file:4443\n",
        )
        .unwrap();
        let env = BTreeMap::from([
            (
                "AWS_ENDPOINT_URL_S3".to_string(),
                "http://env:1".to_string(),
            ),
            ("DRCTL_GCS_ENDPOINT".to_string(), "http://env:2".to_string()),
        ]);
        let mut flags = FlagSettings {
            endpoints: Some(f),
            ..Default::default()
        };
        let s = Settings::resolve_with(&flags, &env).unwrap();
        assert_eq!(s.cloud.s3_endpoint.as_deref(), Some("http://file:4566"));
        assert_eq!(s.cloud.gcs_endpoint.as_deref(), Some("http://file:4443"));
        flags.gcs_endpoint = Some("http://flag:3".into());
        let s = Settings::resolve_with(&flags, &env).unwrap();
        assert_eq!(s.cloud.gcs_endpoint.as_deref(), Some("http://flag:3"));
    }

    #[test]
    fn misspelt_setting_variable_is_ignored_with_a_warning() {
        let env = BTreeMap::from([("DRCTL_PLANZ".to_string(), "x".to_string())]);
        let s = Settings::resolve_with(&FlagSettings::default(), &env).unwrap();
        assert_eq!(s.plans, PathBuf::from("plans"));
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].contains("did you mean DRCTL_PLANS?"),
            "{:?}",
            s.warnings
        );
    }

    /// `DRCTL_GCP_ENDPOINT` (the Google APIs' emulator, in every endpoints
    /// file) was warned about as a misspelt DRCTL_GCS_ENDPOINT on every
    /// command, though it is a setting (`gcp_endpoint`) and is used.
    #[test]
    fn regression_the_gcp_endpoint_variable_is_a_setting_not_a_misspelling() {
        let env = BTreeMap::from([(
            "DRCTL_GCP_ENDPOINT".to_string(),
            "http://127.0.0.1:4590".to_string(),
        )]);
        let s = Settings::resolve_with(&FlagSettings::default(), &env).unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        assert_eq!(
            s.cloud.gcp_endpoint.as_deref(),
            Some("http://127.0.0.1:4590")
        );
    }

    #[test]
    fn unknown_key_in_the_settings_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("drctl.toml");
        std::fs::write(&f, "planz = \"x\"\n").unwrap();
        let flags = FlagSettings {
            config: Some(f),
            ..Default::default()
        };
        assert!(Settings::resolve_with(&flags, &BTreeMap::new()).is_err());
    }

    #[test]
    fn pace_is_read_from_the_settings_file_and_a_backwards_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("drctl.toml");
        let resolve = |text: &str| from_file(&f, text);
        let s = resolve("").unwrap();
        assert_eq!(s.pace, crate::engine::Pace::default());
        let s =
            resolve("[pace]\npoll_first_ms = 3\npoll_max_ms = 160\nbusy_first_ms = 8\n").unwrap();
        assert_eq!(
            s.pace.poll,
            (Duration::from_millis(3), Duration::from_millis(160))
        );
        assert_eq!(
            s.pace.busy_zone,
            (Duration::from_millis(8), Duration::from_secs(8))
        );
        for bad in [
            "[pace]\npoll_first_ms = 0\n",
            "[pace]\nbusy_first_ms = 900\nbusy_max_ms = 100\n",
        ] {
            let e = resolve(bad).unwrap_err().to_string();
            assert!(e.contains("[pace]"), "{e}");
        }
    }

    /// Settings are input like plans: a huge duration or wait is refused
    /// with the setting's name, never a panic later in time arithmetic.
    #[test]
    fn regression_huge_setting_durations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("drctl.toml");
        let resolve = |text: &str, env: &[(&str, &str)]| {
            std::fs::write(&f, text).unwrap();
            let flags = FlagSettings {
                config: Some(f.clone()),
                ..Default::default()
            };
            let env = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Settings::resolve_with(&flags, &env)
        };
        for (text, env, named) in [
            ("lease = \"50000000000000d\"\n", &[][..], "lease"),
            (
                "",
                &[("DRCTL_LEASE_SKEW", "18446744073709551615s")][..],
                "lease_skew",
            ),
            (
                "[watch]\nvelocity_window = \"3651d\"\n",
                &[][..],
                "velocity_window",
            ),
            (
                "[watch]\nread_timeout = \"99999999999999999999h\"\n",
                &[][..],
                "read_timeout",
            ),
            (
                "[pace]\npoll_max_ms = 9223372036854775807\n",
                &[][..],
                "poll",
            ),
            (
                "[pace]\nbusy_first_ms = 400000000000\nbusy_max_ms = 400000000000\n",
                &[][..],
                "busy",
            ),
        ] {
            let e = resolve(text, env).unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains(named), "{text}: {shown}");
            assert!(shown.contains("3650"), "{text}: {shown}");
            assert!(matches!(e, ConfigError::Value(_)), "{text}: {shown}");
        }
        // A team sink's retry schedule, as in a plan.
        let e = resolve(
            "[[notify]]\nname = \"ops\"\nkind = \"webhook\"\nurl = \"https://x.example/\"\nretry = [\"50000000000000d\"]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ten years"), "{e}");
    }

    #[test]
    fn a_starter_is_a_listed_observer_named_once_and_not_every_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("drctl.toml");
        let resolve = |text: &str| from_file(&f, text);
        let obs = |name: &str| {
            format!(
                "[[watch.observers]]\nname = \"{name}\"\nkeys = [\"{}\"]\n",
                crate::sign::SecretKey::generate().public()
            )
        };
        let two = obs("obs-a") + &obs("starter");
        let s = resolve(&format!("[watch]\nstarters = [\"starter\"]\n{two}")).unwrap();
        assert_eq!(s.watch.starters, ["starter"]);
        for (starters, says) in [
            ("[\"nobody\"]", "not a listed observer"),
            ("[\"starter\", \"starter\"]", "named twice"),
            (
                "[\"starter\", \"obs-a\"]",
                "every listed observer is a starter",
            ),
        ] {
            let e = resolve(&format!("[watch]\nstarters = {starters}\n{two}")).unwrap_err();
            assert!(e.to_string().contains(says), "{starters}: {e}");
        }
    }

    #[test]
    fn watch_observers_are_listed_once_each_with_keys_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("drctl.toml");
        let resolve = |text: &str| from_file(&f, text);
        let (a, b) = (
            crate::sign::SecretKey::generate().public(),
            crate::sign::SecretKey::generate().public(),
        );
        let obs = |name: &str, place: &str, keys: &[&crate::sign::PublicKey]| {
            let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
            format!(
                "[[watch.observers]]\nname = \"{name}\"\n{place}keys = [{}]\n",
                keys.join(", ")
            )
        };
        let s =
            resolve(&(obs("obs-a", "place = \"eu-west-1\"\n", &[&a, &b]) + &obs("obs-b", "", &[])))
                .unwrap_err()
                .to_string();
        assert!(
            s.contains("`obs-b`") && s.contains("`keys` is empty"),
            "{s}"
        );
        let s =
            resolve(&(obs("obs-a", "place = \"eu-west-1\"\n", &[&a]) + &obs("obs-b", "", &[&b])))
                .unwrap();
        assert_eq!(s.watch.key_env, "DRCTL_OBSERVER_KEY");
        assert_eq!(s.watch.observers.len(), 2);
        assert_eq!(s.watch.observers[0].place.as_deref(), Some("eu-west-1"));
        assert_eq!(s.watch.observers[1].keys, std::slice::from_ref(&b));
        for (text, says) in [
            (
                obs("obs-a", "", &[&a]) + &obs("obs-a", "", &[&b]),
                "listed twice",
            ),
            (
                obs("obs-a", "", &[&a]) + &obs("obs-b", "", &[&b, &a]),
                "is listed under `obs-a` too",
            ),
            (obs("obs a", "", &[&a]), "not an observer name"),
            (obs("obs-a", "place = \" \"\n", &[&a]), "`place` is empty"),
            (
                "[[watch.observers]]\nname = \"obs-a\"\nkeys = [\"ed25519:AAAA\"]\n".into(),
                "32 bytes",
            ),
        ] {
            let e = resolve(&text).unwrap_err();
            assert!(matches!(e, ConfigError::Value(_)), "{text}: {e}");
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn regression_emulator_script_variables_do_not_break_drctl() {
        let env = BTreeMap::from([
            ("DRCTL_MOTO_PORT".to_string(), "5001".to_string()),
            (
                "DRCTL_ENDPOINTS_FILE".to_string(),
                "/tmp/w2/endpoints.env".to_string(),
            ),
            ("DRCTL_WORLD_DIR".to_string(), "/tmp/w2".to_string()),
        ]);
        let s = Settings::resolve_with(&FlagSettings::default(), &env).unwrap();
        assert!(
            s.warnings.iter().all(|w| !w.contains("MOTO")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn the_crash_injection_variable_is_not_a_setting() {
        let env = BTreeMap::from([(
            "DRCTL_INJECT_CRASH".to_string(),
            "after:payments/preflight".to_string(),
        )]);
        assert!(Settings::resolve_with(&FlagSettings::default(), &env).is_ok());
    }

    /// Regression (issue 39): a `secrets_dir` holding the run key file or
    /// the plans directory let a plan's sink send the key away (`secret_file
    /// = "run.key"`) or read other plans. Each is refused, by name, through
    /// a symbolic link too; apart, nothing is.
    #[test]
    fn regression_a_secrets_dir_holding_a_key_file_or_the_plans_was_taken() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir_all(secrets.join("plans")).unwrap();
        std::fs::write(secrets.join("run.key"), "k").unwrap();
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(&secrets, &linked).unwrap();
        let apart = dir.path().join("apart.key");
        for (what, path) in [
            ("the run key file", secrets.join("run.key")),
            ("the plans directory", secrets.join("plans")),
            ("the plans directory", secrets.clone()),
            ("the observer key file", linked.join("run.key")),
        ] {
            let e = secrets_dir_holds_nothing_else(Some(&secrets), &[(what, Some(&path))])
                .unwrap_err()
                .to_string();
            assert!(e.contains(what) && e.contains("secrets_dir"), "{e}");
        }
        assert!(
            secrets_dir_holds_nothing_else(Some(&secrets), &[("the run key file", Some(&apart))])
                .is_ok()
        );
        assert!(secrets_dir_holds_nothing_else(None, &[("x", Some(&apart))]).is_ok());
    }
}
