//! `drctl watch`: observe every plan's regions, decide by quorum with the
//! other observers, propose or fail over (docs/watch.md); `watch veto`,
//! `watch status` and `watch keygen`.

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
use drctl::sign::SecretKey;
use drctl::watch::metrics::WatchMetrics;
use drctl::watch::shared::{Listed, Trust};
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
    /// The file holding this observer's secret key (instead of `[watch]
    /// key_file` or `key_env`; e.g. one file per pod of a StatefulSet).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<std::path::PathBuf>,
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

/// `watch veto|status|keygen`.
#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Make an observer's key pair (the same as `drctl keygen observer`):
    /// the secret (for the observer only) and the public key to list under
    /// its name in `[[watch.observers]]`.
    Keygen {
        /// Write the secret to this file (created, never replaced; mode
        /// 0600) instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
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
        Some(WatchCommand::Keygen { out }) => {
            super::keygen::keygen(super::keygen::KeyFor::Observer, out.as_deref())
        }
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

/// This process's observer key (`file`, else `[watch] key_file`, else
/// `key_env`), when it holds one.
fn observer_key(
    settings: &Settings,
    file: Option<&std::path::Path>,
) -> Result<Option<SecretKey>, CliError> {
    let w = &settings.watch;
    if let Some(f) = file {
        settings
            .refuse_in_secrets_dir("the observer key file (--key-file)", f)
            .map_err(|e| CliError::invalid(e.to_string()))?;
    }
    let file = file.or(w.key_file.as_deref());
    drctl::sign::load_secret(&w.key_env, file).map_err(|e| {
        CliError::invalid(e.to_string()).hint(format!(
            "set {} (or `[watch] key_file` in drctl.toml) to the observer's own secret (`drctl watch keygen`)",
            w.key_env
        ))
    })
}

/// Whose signatures count on the board: the listed observers and the
/// operators' run keys.
fn trust(settings: &Settings) -> Trust {
    Trust {
        observers: settings
            .watch
            .observers
            .iter()
            .map(|o| Listed {
                name: o.name.clone(),
                place: o.place.clone(),
                keys: o.keys.clone(),
            })
            .collect(),
        people: settings.keys.run_public.clone(),
        starters: settings.watch.starters.clone(),
    }
}

/// This observer's key, when `observer` is listed with it; otherwise why
/// `drctl watch` refuses to start (exit 2, with what to change).
fn own_key(
    settings: &Settings,
    file: Option<&std::path::Path>,
    trust: &Trust,
    observer: &str,
) -> Result<SecretKey, CliError> {
    let key = observer_key(settings, file)?.ok_or_else(|| {
        CliError::invalid(format!(
            "no observer key: {observer} signs what it writes on the board with its own key"
        ))
        .hint(format!(
            "make one with `drctl watch keygen --out FILE`, set `[watch] key_file = \"FILE\"` (or {}), and list its public key under `[[watch.observers]] name = \"{observer}\"` in the operators' drctl.toml",
            settings.watch.key_env
        ))
    })?;
    let public = key.public();
    let Some(me) = trust.listed(observer) else {
        let known: Vec<&str> = trust.observers.iter().map(|o| o.name.as_str()).collect();
        return Err(CliError::invalid(format!(
            "{observer} is not a listed observer: its reports would not count ({})",
            if known.is_empty() {
                "no observer is listed".to_string()
            } else {
                format!("listed: {}", known.join(", "))
            }
        ))
        .hint(format!(
            "add to drctl.toml:\n  [[watch.observers]]\n  name = \"{observer}\"\n  keys = [\"{public}\"]\nor run with --observer NAME as listed"
        )));
    };
    if !me.keys.contains(&public) {
        let owner = trust
            .observers
            .iter()
            .find(|o| o.keys.contains(&public))
            .map(|o| format!(" (it is listed under {})", o.name))
            .unwrap_or_default();
        return Err(CliError::invalid(format!(
            "the key this observer holds ({}) is not listed under {observer}{owner}: what it signs would not count",
            public.id()
        ))
        .hint(format!(
            "add \"{public}\" to the keys of [[watch.observers]] name = \"{observer}\" in drctl.toml (keep the old key listed until every observer uses the new one)"
        )));
    }
    Ok(key)
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
        // What the engine refuses at once (a lock held, a gate) comes back
        // within `EARLY` and is the start's answer; a run still going then
        // has begun.
        let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let handle = run_apart(engine, (plan.clone(), opts), tx)
            .map_err(|e| format!("cannot start the failover's thread: {e}"))?;
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

/// The stack of the thread a watch-started failover runs on: the main
/// thread's (8 MiB), not a spawned thread's default 2 MiB.
const FAILOVER_STACK: usize = 8 * 1024 * 1024;

/// Runs `plan`'s failover with `opts` on a thread of its own, with its own
/// runtime: the watch goes on observing (and serving /healthz) while it
/// runs. Whether it ran is sent on `tx`. A run's future is deep: the thread
/// gets the main thread's stack (a spawned thread's default, 2 MiB,
/// overflowed in the evidence step of a debug build), and the future
/// itself lives on the heap.
fn run_apart(
    engine: drctl::engine::Engine,
    (plan, opts): (Plan, RunOptions),
    tx: std::sync::mpsc::Sender<Result<(), String>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let name = plan.name().to_string();
    let thread = std::thread::Builder::new()
        .name(format!("failover-{name}"))
        .stack_size(FAILOVER_STACK);
    thread.spawn(move || {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build();
        let rt = match built {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(format!("no runtime: {e}")));
                return;
            }
        };
        let plans = vec![plan];
        match rt.block_on(Box::pin(engine.run(&plans, &opts))) {
            Ok(report) => {
                super::errln!(
                    "watch: the failover of {name} (run {}) ended: {}",
                    report.run_id,
                    report.outcome
                );
                let _ = tx.send(Ok(()));
            }
            Err(e) => {
                super::errln!("watch: the failover of {name} did not run: {e}");
                let _ = tx.send(Err(e.to_string()));
            }
        }
    })
}

async fn watch(a: WatchArgs, settings: &Settings) -> Result<Exit, CliError> {
    let plans = plans_of(settings, &a.plan)?;
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
    let trust = trust(settings);
    let key = own_key(settings, a.key_file.as_deref(), &trust, &observer)?;
    // An observer that may not start (a starter is named, and it is not
    // one) watches every plan in observe mode, and needs no run key.
    if trust.may_start(&observer) {
        starts_failovers_safely(settings, &plans)?;
    } else {
        super::errln!(
            "watch: {observer} observes only: the starter ({}) proposes and starts failovers",
            trust.starters.join(", ")
        );
    }
    let clouds = drctl::cloud::connect(&settings.cloud.single_attempt()).await?;
    // Its own journals and the notices it writes are signed with its key.
    let state = super::open_store(settings, None, Some(&clouds), true).await?;
    let state = super::keyed(settings, state, Some(&key));
    let hub = super::notify::hub(settings, Some(&clouds));
    let starter = Arc::new(CliStarter {
        settings: settings.clone(),
        runs: Mutex::new(Vec::new()),
    });
    let cfg = WatchConfig {
        observer: observer.clone(),
        key,
        trust,
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
            _ = super::stop_signal() => break,
        }
    }
    w.close().await;
    let runs: Vec<_> = starter
        .runs
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default();
    if !runs.is_empty() {
        super::errln!("watch: waiting for the failover(s) it started to end...");
        let _ = tokio::task::spawn_blocking(move || {
            for r in runs {
                let _ = r.join();
            }
        })
        .await;
    }
    Ok(Exit::Ok)
}

/// A watch that may start failovers (a plan in `propose` or `auto` mode)
/// must be able to sign their journals: with public run keys listed and no
/// run key held, it is refused at its start, not at the outage. Without
/// keys listed it starts, warning that journals are unauthenticated (and
/// then never acts for a plan on its journals alone).
fn starts_failovers_safely(settings: &Settings, plans: &[Plan]) -> Result<(), CliError> {
    let acting: Vec<&str> = (plans.iter())
        .filter(|p| p.watch_rules().mode != drctl::plan::watch::WatchMode::Observe)
        .map(|p| p.name())
        .collect();
    if acting.is_empty() {
        return Ok(());
    }
    let keys = &settings.keys;
    if !keys.run_public.is_empty() && keys.run_secret.is_none() {
        return Err(CliError::invalid(format!(
            "watch may start failovers of {} (propose or auto), and public run keys are listed, but this process does not hold the run key: the failover it starts could not sign its journal",
            acting.join(", ")
        ))
        .hint("give the observer the run key (DRCTL_RUN_KEY or [keys] run_key_file), or set the plans' [watch] mode = \"observe\""));
    }
    if keys.run_public.is_empty() {
        super::errln!(
            "warning: no run keys are listed ([keys] run_public): journals are unauthenticated, so watch acts for {} only where the cloud shows where the plan serves, never on journals alone",
            acting.join(", ")
        );
    }
    Ok(())
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
            super::errln!(
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
                super::errln!("warning: {}: ignored on the board: {bad}", r.plan);
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
        "places": r.verdict.as_ref().map(|v| v.tally.places.clone()).unwrap_or_default(),
        "rejected": r.rejected,
        "acted": r.acted,
        "placement": r.judged,
        "distrusted": r.judged.as_ref().map(|j| j.distrusted().to_vec()).unwrap_or_default(),
        "cloud": r.world,
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
    super::errln!("watch: serving /metrics and /healthz on http://{addr}");
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
    let key = veto_key(settings);
    // The veto's notice is signed with the veto's key: the run key, else
    // this host's observer key.
    let observer = key.as_ref().filter(|_| settings.keys.run_secret.is_none());
    let state = super::open_store(settings, None, clouds.as_ref(), true).await?;
    let state = super::keyed(settings, state, observer);
    let runs = super::read_runs(state.journals.as_ref()).await?.runs;
    let by = format!(
        "{}@{}",
        std::env::var("USER").unwrap_or_else(|_| "someone".into()),
        drctl::state::hostname()
    );
    let until = drctl::plan::duration::after(Utc::now(), hold);
    let trust = trust(settings);
    match &key {
        Some(k) if trust.keys_for_vetoes().contains(&k.public()) => {}
        Some(k) => super::errln!(
            "warning: the key signing this veto ({}) is neither a run key ([keys] run_public) nor a listed observer's: observers will show the veto as unverified (it stops watch all the same)",
            k.public().id()
        ),
        None => super::errln!(
            "warning: no key to sign this veto with (DRCTL_RUN_KEY, or an observer's key): it is written unsigned; observers honour it all the same, and show it as unverified"
        ),
    }
    let vetoed = drctl::watch::veto(
        &state,
        plan,
        &by,
        reason,
        Some(until),
        &runs,
        key.as_ref(),
        &trust,
    )
    .await
    .map_err(|e| CliError::failed(e.to_string()))?;
    let episode = match vetoed {
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
        tell_veto((&state, &hub), plan, &episode, event).await;
    }
    Ok(Exit::Ok)
}

/// The key a veto is signed with: the operators' run key, else this host's
/// observer key; without either, none: a veto only stops, so observers
/// honour it unsigned all the same (and show it unverified). A key that
/// cannot be read never keeps a person from vetoing.
fn veto_key(settings: &Settings) -> Option<SecretKey> {
    match settings.keys.run_secret.clone() {
        Some(k) => Some(k),
        None => observer_key(settings, None).unwrap_or_else(|e| {
            super::errln!("warning: {e}");
            None
        }),
    }
}

/// Tells people of a veto of `plan`'s `episode`, once, through the state's
/// notices (signed with the veto's key). With no key where notices are
/// checked, the veto stands and people are not told by drctl: say so,
/// never fail the veto.
async fn tell_veto(
    (state, hub): (&drctl::state::State, &drctl::notify::Hub),
    plan: &Plan,
    episode: &str,
    event: drctl::journal::notice::CloudEvent,
) {
    let id = drctl::watch::tell::journal_id(episode, WatchDecision::Vetoed, None);
    let region = plan.regions().get(1).cloned().unwrap_or_default();
    let plans = std::slice::from_ref(plan);
    let told = drctl::notify::tell_once(hub, &state.notices, &id, plans, &region, event);
    if let Err(e) = told.await {
        super::errln!("warning: the veto stands, and its notice was not sent: {e}");
    }
}

/// `watch status`.
async fn status(settings: &Settings, names: &[String], output: Output) -> Result<Exit, CliError> {
    let plans = plans_of(settings, names)?;
    let trust = trust(settings);
    let clouds = drctl::cloud::connect(&settings.cloud.single_attempt())
        .await
        .ok();
    let state = super::open_state_to_read(settings, clouds.as_ref()).await?;
    let drctl::journal::runs::Runs {
        runs,
        left_out: unverified,
        ..
    } = drctl::journal::runs::read_runs(state.journals.as_ref(), |_| true).await?;
    let switches = drctl::runs::watch::switches(&runs);
    let now = Utc::now();
    let velocity = drctl::watch::velocity(
        &switches,
        settings.watch.velocity_window,
        settings.watch.max_failovers,
        now,
    );
    let worlds = read_worlds(
        clouds.as_ref(),
        &plans,
        &switches,
        settings.watch.read_timeout,
    )
    .await;
    let mut rounds = Vec::new();
    for (plan, world) in plans.iter().zip(worlds) {
        let hist = drctl::runs::watch::history(plan.name(), plan.home(), &switches);
        let seen = drctl::watch::read_shared(
            state.board.as_ref(),
            &trust,
            plan,
            &hist.episode(plan.name()),
            now,
        )
        .await
        .map_err(|e| CliError::failed(e.to_string()))?;
        let held = drctl::watch::holder(state.locks.as_ref(), plan.name()).await;
        let (judged, v) = match &world {
            Some(w) => {
                let authenticated = state.journals.keys().checks();
                let j = drctl::watch::placed(
                    plan,
                    &hist,
                    &switches,
                    w,
                    (held.as_deref(), authenticated),
                );
                let v = drctl::watch::judged_verdict(plan, &hist, &seen, &j, held, velocity, now);
                (Some(j), v)
            }
            None => (
                None,
                drctl::watch::verdict(plan, &hist, &seen, held, velocity, now),
            ),
        };
        rounds.push(PlanRound {
            plan: plan.name().to_string(),
            active: hist.active.clone(),
            episode: seen.episode.clone(),
            reports: seen.reports.clone(),
            rejected: (drctl::watch::unverified_lines(&unverified).into_iter())
                .chain(seen.rejected.clone())
                .collect(),
            verdict: Some(v),
            acted: None,
            judged,
            world,
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

/// Where each plan serves, read from the cloud as an observer reads it,
/// every plan at once (`None` each when the cloud could not be reached).
async fn read_worlds(
    clouds: Option<&drctl::cloud::Clouds>,
    plans: &[Plan],
    switches: &[(Vec<String>, drctl::runs::watch::Switch)],
    timeout: Duration,
) -> Vec<Option<drctl::watch::active::World>> {
    futures::future::join_all(plans.iter().map(|plan| {
        let journals = drctl::runs::watch::history(plan.name(), plan.home(), switches).active;
        async move {
            match clouds {
                Some(c) => Some(drctl::watch::active::read(c, plan, &journals, timeout).await),
                None => None,
            }
        }
    }))
    .await
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
        outln!(
            "{} (active {} by the journals, episode {})",
            r.plan,
            r.active,
            r.episode
        );
        match &r.judged {
            Some(j) => outln!("  where it serves: {}", j.line()),
            None => outln!("  where it serves: the cloud was not read"),
        }
        for run in r.judged.iter().flat_map(|j| j.distrusted()) {
            outln!("  distrusted journal: {run}");
        }
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
            "  quorum: {} of {} needed judge {} down (from {} place(s))",
            v.tally.down.len(),
            plan_quorum(plans, &r.plan),
            r.active,
            v.tally.places.len()
        );
        for why in &v.tally.ignored {
            outln!("  not counted: {why}");
        }
        for bad in &r.rejected {
            outln!("  ignored on the board: {bad}");
        }
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
