//! `drctl watch`: observe every plan's regions, decide by quorum with the
//! other observers, propose or fail over (docs/watch.md); `watch veto` and
//! `watch status`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use clap::{Args, Subcommand};

use super::{CliError, Exit, Output, load_plans, outln};
use drctl::config::Settings;
use drctl::engine::RunOptions;
use drctl::journal::watch::{WatchDecision, WatchOrigin};
use drctl::plan::Plan;
use drctl::watch::metrics::WatchMetrics;
use drctl::watch::{Health, PlanRound, Starter, WatchConfig, Watcher};

/// `watch`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WatchArgs {
    /// `veto` or `status` (none: watch).
    #[command(subcommand)]
    pub command: Option<WatchCommand>,
    /// Only these plans (repeatable; default: every plan).
    #[arg(long)]
    pub plan: Vec<String>,
    /// This observer's name, unique among observers (default: the host name).
    #[arg(long)]
    pub observer: Option<String>,
    /// One round, then exit (cron, tests); waits for a failover it started.
    #[arg(long)]
    pub once: bool,
    /// Serve `/metrics` (Prometheus/OpenMetrics text) and `/healthz` here.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Output format (`--once`: one JSON document of the round).
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// `watch veto|status`.
#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Veto the failover watch proposed for a plan (or the next one, for
    /// the plan's active region): watch never starts it by itself.
    Veto {
        /// The plan.
        #[arg(long)]
        plan: String,
        /// Why (journaled, told to the plan's sinks).
        #[arg(long)]
        reason: String,
        /// How long the veto holds (a veto made before an outage, for
        /// maintenance, should not outlive it).
        #[arg(long = "for", value_name = "DUR", value_parser = drctl::plan::duration::parse_duration, default_value = "24h")]
        hold: Duration,
    },
    /// Each observer's last observation per plan and region, the quorum,
    /// and what watch would do now.
    Status {
        /// Only these plans (default: every plan).
        #[arg(long)]
        plan: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// Runs `watch ...`.
pub async fn run(a: WatchArgs, settings: &Settings) -> Result<Exit, CliError> {
    match a.command {
        Some(WatchCommand::Veto { plan, reason, hold }) => {
            veto(settings, &plan, &reason, hold).await
        }
        Some(WatchCommand::Status { plan, output }) => status(settings, &plan, output).await,
        None => watch(a, settings).await,
    }
}

fn plans_of(settings: &Settings, names: &[String]) -> Result<Vec<Plan>, CliError> {
    let loaded = load_plans(settings, names)?;
    if names.is_empty() {
        return Ok(loaded.plans.clone());
    }
    names
        .iter()
        .map(|n| super::select(&loaded, Some(n)).map(|p| p[0].clone()))
        .collect()
}

/// The observers' signing key: `[watch] key_file`, else `key_env`.
fn key(settings: &Settings) -> Result<Vec<u8>, CliError> {
    let w = &settings.watch;
    let key = match &w.key_file {
        Some(f) => std::fs::read(f).map_err(|e| {
            CliError::invalid(format!(
                "cannot read the watch key file {}: {e}",
                f.display()
            ))
        })?,
        None => std::env::var(&w.key_env).unwrap_or_default().into_bytes(),
    };
    let trimmed: Vec<u8> = key.trim_ascii().to_vec();
    if trimmed.len() < 16 {
        return Err(CliError::invalid(format!(
            "no watch key: observers sign their reports with a key they share ({} bytes given; 16 or more needed)",
            trimmed.len()
        ))
        .hint(format!(
            "set {} (or `[watch] key_file` in drctl.toml) to the same secret on every observer, e.g. `openssl rand -base64 32`",
            w.key_env
        )));
    }
    Ok(trimmed)
}

/// Starts the failovers watch decides: each an ordinary run, emergency
/// semantics, under the plan's lease, in the background (the watch goes on
/// observing); `--once` waits for them before it exits.
struct CliStarter {
    settings: Settings,
    runs: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

#[async_trait]
impl Starter for CliStarter {
    async fn start(
        &self,
        plan: &Plan,
        target: &str,
        origin: WatchOrigin,
    ) -> Result<String, String> {
        let engine = super::failover::engine(
            &self.settings,
            Some(target),
            false,
            Some(plan.tier.rto),
            false,
        )
        .await
        .map_err(|e| e.to_string())?;
        let run_id = drctl::journal::new_run_id(plan.name());
        // What the plan's `[watch] accept_data_loss` allows above the RPO,
        // as the engine's RPO gate takes it (absolute).
        let accept = plan
            .watch_rules()
            .accept_data_loss
            .map(|a| drctl::plan::rpo::accepted_beyond(plan.tier.rpo, a));
        let opts = RunOptions {
            accept_data_loss: accept,
            emergency: true,
            declared_at: Some(origin.detected_at),
            watch: Some(origin),
            run_id: Some(run_id.clone()),
            ..RunOptions::failover(target).with_pace(&self.settings.pace)
        };
        let plans = vec![plan.clone()];
        let name = plan.name().to_string();
        // A thread of its own, with its own runtime: the watch goes on
        // observing (and serving /healthz) while the failover runs. What the
        // engine refuses at once (a lock held, a gate) comes back within
        // `EARLY` and is the start's answer; a run still going then has begun.
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let handle = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(format!("no runtime: {e}")));
                    return;
                }
            };
            match rt.block_on(engine.run(&plans, &opts)) {
                Ok(report) => {
                    eprintln!(
                        "watch: the failover of {name} (run {}) ended: {}",
                        report.run_id, report.outcome
                    );
                    let _ = tx.send(Ok(()));
                }
                Err(e) => {
                    eprintln!("watch: the failover of {name} did not run: {e}");
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        });
        const EARLY: Duration = Duration::from_secs(5);
        let early = tokio::task::spawn_blocking(move || rx.recv_timeout(EARLY))
            .await
            .ok()
            .and_then(Result::ok);
        if let Some(Err(e)) = early {
            return Err(e);
        }
        if let Ok(mut runs) = self.runs.lock() {
            runs.push(handle);
        }
        Ok(run_id)
    }
}

async fn watch(a: WatchArgs, settings: &Settings) -> Result<Exit, CliError> {
    let plans = plans_of(settings, &a.plan)?;
    let key = key(settings)?;
    let observer = a
        .observer
        .clone()
        .or_else(|| settings.host.clone())
        .unwrap_or_else(drctl::state::hostname);
    if drctl::journal::store::validate_run_id(&observer).is_err() {
        return Err(
            CliError::invalid(format!("`{observer}` is not an observer name"))
                .hint("use letters, digits, `.`, `_` and `-` (--observer NAME)"),
        );
    }
    let clouds = drctl::cloud::connect(&settings.cloud.single_attempt()).await?;
    let state = super::open_state(settings, None, Some(&clouds)).await?;
    let hub = super::notify::hub(settings, Some(&clouds));
    let starter = Arc::new(CliStarter {
        settings: settings.clone(),
        runs: Mutex::new(Vec::new()),
    });
    let cfg = WatchConfig {
        observer: observer.clone(),
        key,
        max_failovers: settings.watch.max_failovers,
        velocity_window: settings.watch.velocity_window,
        read_timeout: settings.watch.read_timeout,
    };
    let mut w = Watcher::new(cfg, plans, clouds, state, hub, starter.clone());
    if let Some(addr) = a.metrics_addr {
        serve(addr, w.metrics.clone(), w.health.clone()).await?;
    }
    let interval = w.interval();
    let mut said: std::collections::BTreeMap<String, (WatchDecision, String)> = Default::default();
    loop {
        let rounds = w.round().await;
        if a.once {
            show(&rounds, a.output, &mut said, true)?;
            break;
        }
        show(&rounds, a.output, &mut said, false)?;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop() => break,
        }
    }
    w.close().await;
    let runs: Vec<_> = starter
        .runs
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    if !runs.is_empty() {
        eprintln!("watch: waiting for the failover(s) it started to end...");
        let _ = tokio::task::spawn_blocking(move || {
            for r in runs {
                let _ = r.join();
            }
        })
        .await;
    }
    Ok(Exit::Ok)
}

/// Ctrl-C or SIGTERM.
async fn stop() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints each plan's decision when it changes (every decision with `all`).
fn show(
    rounds: &[PlanRound],
    output: Output,
    said: &mut std::collections::BTreeMap<String, (WatchDecision, String)>,
    all: bool,
) -> Result<(), CliError> {
    if output == Output::Json {
        if all {
            let doc: Vec<serde_json::Value> = rounds.iter().map(round_json).collect();
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        return Ok(());
    }
    for r in rounds {
        let Some(v) = &r.verdict else {
            eprintln!(
                "warning: {}: the shared state did not answer; this observer decides nothing",
                r.plan
            );
            continue;
        };
        let now = (v.decision, v.why.clone());
        if all || said.get(&r.plan).map(|s| s.0) != Some(v.decision) {
            outln!(
                "{} [{}] {}: {}",
                Utc::now().format("%H:%M:%SZ"),
                r.plan,
                v.decision,
                v.why
            );
            if let Some(c) = &v.command {
                outln!("  command: {c}");
            }
            if let Some(a) = &r.acted {
                outln!("  did: {a}");
            }
            for bad in &r.rejected {
                eprintln!("warning: {}: report left out: {bad}", r.plan);
            }
        }
        said.insert(r.plan.clone(), now);
    }
    Ok(())
}

fn round_json(r: &PlanRound) -> serde_json::Value {
    serde_json::json!({
        "plan": r.plan,
        "active": r.active,
        "episode": r.episode,
        "decision": r.verdict.as_ref().map(|v| v.decision.as_str()),
        "why": r.verdict.as_ref().map(|v| v.why.clone()),
        "target": r.verdict.as_ref().and_then(|v| v.target.clone()),
        "command": r.verdict.as_ref().and_then(|v| v.command.clone()),
        "deadline": r.verdict.as_ref().and_then(|v| v.deadline),
        "down": r.verdict.as_ref().map(|v| v.tally.down.clone()).unwrap_or_default(),
        "up": r.verdict.as_ref().map(|v| v.tally.up.clone()).unwrap_or_default(),
        "ignored": r.verdict.as_ref().map(|v| v.tally.ignored.clone()).unwrap_or_default(),
        "rejected": r.rejected,
        "acted": r.acted,
        "observers": r.reports.iter().map(|rep| serde_json::json!({
            "observer": rep.observer,
            "at": rep.at,
            "impaired": rep.impaired,
            "regions": rep.regions,
        })).collect::<Vec<_>>(),
    })
}

/// Serves `/metrics` and `/healthz` on `addr`, in the background, under
/// the server's limits (`drctl::watch::serve`).
async fn serve(
    addr: SocketAddr,
    metrics: Arc<WatchMetrics>,
    health: Arc<Mutex<Health>>,
) -> Result<(), CliError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        CliError::invalid(format!("cannot serve metrics on {addr}: {e}"))
            .hint("choose a free address with --metrics-addr HOST:PORT")
    })?;
    eprintln!("watch: serving /metrics and /healthz on http://{addr}");
    let respond: drctl::watch::serve::Respond = Arc::new(move |path: &str| match path {
        "/metrics" => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => {
            let h = health.lock().map(|h| h.clone()).unwrap_or_default();
            if h.ok(Utc::now()) {
                (200, "text/plain; charset=utf-8", "ok\n".to_string())
            } else if !h.state_ok && h.last_round.is_some() {
                (
                    503,
                    "text/plain; charset=utf-8",
                    "the shared state does not answer\n".to_string(),
                )
            } else {
                (
                    503,
                    "text/plain; charset=utf-8",
                    "no recent observation round\n".to_string(),
                )
            }
        }
        _ => (
            404,
            "text/plain; charset=utf-8",
            "not found: /metrics, /healthz\n".to_string(),
        ),
    });
    tokio::spawn(drctl::watch::serve::serve(
        listener,
        drctl::watch::serve::Limits::default(),
        respond,
    ));
    Ok(())
}

/// `watch veto`.
async fn veto(
    settings: &Settings,
    name: &str,
    reason: &str,
    hold: Duration,
) -> Result<Exit, CliError> {
    let plans = plans_of(settings, &[name.to_string()])?;
    let plan = &plans[0];
    let clouds = drctl::cloud::connect(&settings.cloud.single_attempt())
        .await
        .ok();
    let state = super::open_state(settings, None, clouds.as_ref()).await?;
    let runs = super::read_all(state.journals.as_ref()).await?;
    let by = format!(
        "{}@{}",
        std::env::var("USER").unwrap_or_else(|_| "someone".into()),
        drctl::state::hostname()
    );
    let until = drctl::plan::duration::after(Utc::now(), hold);
    let episode = match drctl::watch::veto(&state, plan, &by, reason, Some(until), &runs)
        .await
        .map_err(|e| CliError::failed(e.to_string()))?
    {
        drctl::watch::Vetoed::Now(episode) => {
            outln!(
                "{name}: vetoed ({episode}) until {}: watch will not start its failover; a person still can (`drctl failover --plan {name} --to REGION`)",
                until.format("%Y-%m-%d %H:%M UTC")
            );
            episode
        }
        drctl::watch::Vetoed::Already(episode) => {
            outln!(
                "{name}: the episode {episode} was vetoed already; watch will not start its failover"
            );
            return Ok(Exit::Ok);
        }
        drctl::watch::Vetoed::TooLate(episode, by) => {
            return Err(CliError::new(
                Exit::Refused,
                format!("too late to veto {episode}: {by} has started the failover"),
            )
            .hint("follow it with `drctl runs list`; stop it by hand if it must not go on"));
        }
    };
    if let Some(hub) = super::notify::hub(settings, clouds.as_ref()) {
        let event = drctl::watch::tell::veto_event(plan, &episode, &by, reason, Utc::now());
        let id = drctl::watch::tell::journal_id(&episode, WatchDecision::Vetoed, None);
        let region = plan.regions().get(1).cloned().unwrap_or_default();
        drctl::notify::tell_once(
            &hub,
            &state.notices,
            &id,
            std::slice::from_ref(plan),
            &region,
            event,
        )
        .await?;
    }
    Ok(Exit::Ok)
}

/// `watch status`.
async fn status(settings: &Settings, names: &[String], output: Output) -> Result<Exit, CliError> {
    let plans = plans_of(settings, names)?;
    let key = key(settings)?;
    let clouds = drctl::cloud::connect(&settings.cloud.single_attempt())
        .await
        .ok();
    let state = super::open_state_to_read(settings, clouds.as_ref()).await?;
    let runs = super::read_all(state.journals.as_ref()).await?;
    let switches = drctl::runs::watch::switches(&runs);
    let now = Utc::now();
    let velocity = drctl::watch::velocity(
        &switches,
        settings.watch.velocity_window,
        settings.watch.max_failovers,
        now,
    );
    let mut rounds = Vec::new();
    for plan in &plans {
        let hist = drctl::runs::watch::history(plan.name(), plan.home(), &switches);
        let seen = drctl::watch::read_shared(
            state.board.as_ref(),
            &key,
            plan.name(),
            &hist.episode(plan.name()),
            now,
        )
        .await
        .map_err(|e| CliError::failed(e.to_string()))?;
        let held = drctl::watch::holder(state.locks.as_ref(), plan.name()).await;
        let v = drctl::watch::verdict(plan, &hist, &seen, held, velocity, now);
        rounds.push(PlanRound {
            plan: plan.name().to_string(),
            active: hist.active.clone(),
            episode: seen.episode.clone(),
            reports: seen.reports.clone(),
            rejected: seen.rejected.clone(),
            verdict: Some(v),
            acted: None,
        });
    }
    if output == Output::Json {
        let doc: Vec<serde_json::Value> = rounds.iter().map(round_json).collect();
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    print_status(&rounds, &plans, now)?;
    Ok(Exit::Ok)
}

/// `watch status` for people.
fn print_status(
    rounds: &[PlanRound],
    plans: &[Plan],
    now: chrono::DateTime<Utc>,
) -> Result<(), CliError> {
    for r in rounds {
        let Some(v) = r.verdict.as_ref() else {
            continue;
        };
        outln!("{} (active {}, episode {})", r.plan, r.active, r.episode);
        if r.reports.is_empty() {
            outln!("  no observer has reported (is `drctl watch` running with this --state?)");
        }
        for rep in &r.reports {
            let age = (now - rep.at).to_std().unwrap_or_default();
            outln!(
                "  {} ({} ago{}):",
                rep.observer,
                drctl::plan::duration::format_duration(Duration::from_secs(age.as_secs())),
                rep.impaired
                    .as_ref()
                    .map(|i| format!("; impaired: {i}"))
                    .unwrap_or_default()
            );
            for (region, view) in &rep.regions {
                outln!(
                    "    {region}: {} ({} failure(s) in a row){}",
                    view.detail,
                    view.failures,
                    view.lag_seconds
                        .map(|l| format!(", lag {l:.0}s"))
                        .unwrap_or_default()
                );
            }
        }
        outln!(
            "  quorum: {} of {} needed judge {} down",
            v.tally.down.len(),
            plan_quorum(plans, &r.plan),
            r.active
        );
        outln!("  watch would: {} ({})", v.decision, v.why);
        if let Some(c) = &v.command {
            outln!("  command: {c}");
        }
    }
    Ok(())
}

fn plan_quorum(plans: &[Plan], name: &str) -> u32 {
    plans
        .iter()
        .find(|p| p.name() == name)
        .map_or(0, |p| p.watch_rules().quorum)
}
