//! The command line: clap definitions and one file per command.
//!
//! Raw arguments (this module) are kept apart from resolved settings
//! ([`drctl::config::Settings`]); each command gets the resolved settings and
//! returns an [`Exit`] outcome or a [`CliError`] that carries its code and
//! hint, so `main` stays a thin map from errors to codes and text.

pub mod budget;
pub mod dns;
pub mod drill;
pub mod error;
pub mod failover;
pub mod generate;
pub mod history;
pub mod keygen;
pub mod lock;
pub mod notify;
pub mod plan;
pub mod progress;
pub mod recover;
pub mod report;
pub mod runs;
pub mod schedule;
pub mod status;
pub mod watch;

pub use error::CliError;
pub(crate) use error::{err, errln, out, outln};

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use drctl::config::{ColorChoice, FlagSettings, LogFormat};

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: a run failed, or a plan is not ready.
    Failed = 1,
    /// 2: invalid input (bad plan, bad flag, bad settings).
    Invalid = 2,
    /// 3: refused by a gate (lock held, approval missing, RPO exceeded).
    Refused = 3,
}

/// Machine-readable or human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// drctl: disaster-recovery orchestrator for multi-region cloud.
#[derive(Debug, Parser)]
#[command(name = "drctl", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success, 1 run failed or not ready, 2 invalid input, 3 refused by a gate."
)]
// Every flag of this struct is global, under one heading.
#[command(next_help_heading = "Global options")]
pub struct Cli {
    /// Settings file (default: ./drctl.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Plan directory [env: DRCTL_PLANS; default: plans].
    #[arg(long, global = true, value_name = "DIR")]
    pub plans: Option<PathBuf>,
    /// State directory for journals and locks [env: DRCTL_STATE_DIR; default: .drctl beside the plans].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where runs and locks live: a directory, s3://bucket/prefix or gs://bucket/prefix, shared by a team [env: DRCTL_STATE; overrides --state-dir].
    #[arg(long, global = true, value_name = "DIR|URL")]
    pub state: Option<String>,
    /// File of KEY=value endpoint settings, e.g. localstack/endpoints.env [env: DRCTL_ENDPOINTS].
    #[arg(long, global = true, value_name = "FILE")]
    pub endpoints: Option<PathBuf>,
    /// Google Cloud Storage endpoint (an emulator) [env: DRCTL_GCS_ENDPOINT].
    #[arg(long, global = true, value_name = "URL")]
    pub gcs_endpoint: Option<String>,
    /// DNS server that verifies a data-plane switch by resolution, HOST:PORT
    /// (repeatable) [env: DRCTL_DNS_SERVERS, comma-separated; default: the
    /// zone's NS servers].
    #[arg(long = "dns-server", global = true, value_name = "HOST:PORT")]
    pub dns_servers: Vec<String>,
    /// Log format on stderr [env: DRCTL_LOG_FORMAT].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Colour [env: DRCTL_COLOR].
    #[arg(long, global = true, value_enum)]
    pub color: Option<ColorChoice>,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The flags that override settings.
    pub fn flag_settings(&self) -> FlagSettings {
        FlagSettings {
            config: self.config.clone(),
            plans: self.plans.clone(),
            state_dir: self.state_dir.clone(),
            state: self.state.clone(),
            endpoints: self.endpoints.clone(),
            gcs_endpoint: self.gcs_endpoint.clone(),
            dns_servers: self.dns_servers.clone(),
            log_format: self.log_format,
            color: self.color,
        }
    }
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate, show and graph recovery plans.
    #[command(subcommand)]
    Plan(plan::PlanCommand),
    /// Readiness per plan and region: DNS targets, database roles, replica lag vs RPO, capacity.
    Status(status::StatusArgs),
    /// Fail over one plan, or every plan that has the region (critical tier first).
    Failover(failover::FailoverArgs),
    /// Rehearse a failover on drill copies (production untouched), measured,
    /// always cleaned up; `drill sweep` removes what interrupted drills left.
    Drill(drill::DrillArgs),
    /// Point-in-time restore of a database into a new instance, then repoint its DNS.
    Restore(recover::RestoreArgs),
    /// After a failover, make the other regions' copies follow the new primary again (replicas
    /// made again, old primaries renamed, never deleted), so the plan is protected again.
    Reprotect(recover::PlanRunArgs),
    /// Reprotect if needed, then fail over to the home region (same gates as failover).
    Failback(recover::PlanRunArgs),
    /// List, show and resume runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Verify journals' hash chains.
    #[command(subcommand)]
    Audit(runs::AuditCommand),
    /// Drill cadence per plan: last drill and verdict, next slot, overdue (exit 1).
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// RTO/RPO achieved against target per tier and plan, drill cadence,
    /// findings and compliance controls, from journals only (md, json, csv,
    /// junit); `--run RUN` drafts a post-incident report.
    Report(report::ReportArgs),
    /// Show or break plan locks (leases on shared state).
    #[command(subcommand)]
    Lock(lock::LockCommand),
    /// Data-plane switch setup: `dns prepare` (calm days; Route 53's and Cloud DNS's APIs).
    #[command(subcommand)]
    Dns(dns::DnsCommand),
    /// Notifications: `notify test` a sink, list `pending` events, `flush` them.
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// Notice an outage: observe every plan's regions, decide by quorum
    /// with the other observers, propose or fail over (`watch veto`,
    /// `watch status`).
    Watch(watch::WatchArgs),
    /// Make a key pair: `keygen run` (the operators' run key, which signs
    /// journals and evidence) or `keygen observer` (one watch observer's).
    Keygen(keygen::KeygenArgs),
    /// Print shell completions (bash, zsh, fish, powershell, elvish).
    Completions(generate::CompletionsArgs),
    /// Print the man page (or write one per command with --out DIR).
    Man(generate::ManArgs),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli, settings: drctl::config::Settings) -> Result<Exit, CliError> {
    match cli.command {
        Command::Plan(cmd) => plan::run(cmd, &settings),
        Command::Status(args) => status::run(args, &settings).await,
        Command::Failover(args) => failover::run(args, &settings).await,
        Command::Drill(args) => drill::run(args, &settings).await,
        Command::Restore(args) => recover::restore(args, &settings).await,
        Command::Reprotect(args) => recover::reprotect(args, &settings).await,
        Command::Failback(args) => recover::failback(args, &settings).await,
        Command::Runs(cmd) => runs::run(cmd, &settings).await,
        Command::Audit(cmd) => runs::audit(cmd, &settings).await,
        Command::Lock(cmd) => lock::run(cmd, &settings).await,
        Command::Dns(cmd) => dns::run(cmd, &settings).await,
        Command::Notify(cmd) => notify::run(cmd, &settings).await,
        Command::Schedule(cmd) => schedule::run(cmd, &settings).await,
        Command::Report(args) => report::run(args, &settings).await,
        Command::Watch(args) => watch::run(args, &settings).await,
        Command::Keygen(args) => keygen::run(args),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
    }
}

/// Opens the state of the settings (journals and locks): the local
/// directory, or the shared bucket, reached through `via` (the region the
/// command works in; else the default region) and probed for conditional
/// writes. `clouds` reuses a command's adapters when it has them.
pub async fn open_state(
    settings: &drctl::config::Settings,
    via: Option<&str>,
    clouds: Option<&drctl::cloud::Clouds>,
) -> Result<drctl::state::State, CliError> {
    open_state_as(settings, via, clouds, true).await
}

/// [`open_state`] for a command that only reads the state: nothing is
/// written, not even the bucket's probe ([`drctl::state::open_for_reading`]).
pub async fn open_state_to_read(
    settings: &drctl::config::Settings,
    clouds: Option<&drctl::cloud::Clouds>,
) -> Result<drctl::state::State, CliError> {
    open_state_as(settings, None, clouds, false).await
}

async fn open_state_as(
    settings: &drctl::config::Settings,
    via: Option<&str>,
    clouds: Option<&drctl::cloud::Clouds>,
    writes: bool,
) -> Result<drctl::state::State, CliError> {
    let state = open_store(settings, via, clouds, writes).await?;
    Ok(keyed(settings, state, None))
}

/// `state` with its journal stores keyed: every run journal written through
/// it is signed with the run key this process holds, and every
/// verification checks the listed public keys (docs/state.md, "Who can
/// forge what"); the notices and the observers' journals likewise, with
/// `observer`'s key where this process is an observer (`drctl watch`).
pub fn keyed(
    settings: &drctl::config::Settings,
    mut state: drctl::state::State,
    observer: Option<&drctl::sign::SecretKey>,
) -> drctl::state::State {
    use drctl::journal::Keyed;
    use std::sync::Arc;
    let notices = match observer {
        Some(k) => settings.notice_keys(Some(k.clone())),
        None => settings.notice_keys(settings.keys.run_secret.clone()),
    };
    state.journals = Arc::new(Keyed::new(state.journals, settings.run_keys()));
    state.notices = Arc::new(Keyed::new(state.notices, notices));
    state.watch = Arc::new(Keyed::new(
        state.watch,
        settings.watch_keys(observer.cloned()),
    ));
    state
}

async fn open_store(
    settings: &drctl::config::Settings,
    via: Option<&str>,
    clouds: Option<&drctl::cloud::Clouds>,
    writes: bool,
) -> Result<drctl::state::State, CliError> {
    use drctl::state::StateLocation;
    match &settings.state {
        StateLocation::Dir(d) => Ok(drctl::state::State::local(d.clone())),
        location => {
            let objects = match clouds {
                Some(c) => c.objects.clone(),
                None => drctl::cloud::connect(&settings.cloud).await?.objects,
            };
            let via = via
                .or(settings.cloud.default_region.as_deref())
                .unwrap_or("us-east-1");
            Ok(if writes {
                drctl::state::open(location, objects, via, settings.lease).await?
            } else {
                drctl::state::open_for_reading(location, objects, via, settings.lease)
            })
        }
    }
}

/// Loads the plans of the settings' directory for a command on the plans
/// named in `only` (empty: on every plan). Invalid plans fail it, their
/// diagnostics printed, with exit 2, except that a command naming its plans
/// goes on when only *other* plan files are invalid
/// ([`drctl::plan::Loaded::others_invalid`]), with a warning naming each
/// and its first error: during an outage, a typo in an unrelated plan must
/// not block a failover. `plan validate` stays strict (it loads apart).
/// Writes `text` to the file `path` whole, as every command that writes a
/// file the user names does (`report --out`, `status --html`): a
/// temporary file beside it with a name nobody can guess, created
/// exclusively (`O_EXCL`: an existing file or symlink there is an error,
/// never followed), written, synced to disk, then renamed over `path`
/// (which replaces a symlink planted there, never writes through it).
/// A reader never sees half a file.
pub fn write_whole(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.{:016x}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id(),
        rand::random::<u64>()
    ));
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp);
    created.and_then(|mut f| {
        let done = std::io::Write::write_all(&mut f, text.as_bytes())
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if done.is_err() {
            // Ours (created exclusively above): safe to remove.
            let _ = std::fs::remove_file(&tmp);
        }
        done
    })
}

pub fn load_plans(
    settings: &drctl::config::Settings,
    only: &[String],
) -> Result<drctl::plan::Loaded, CliError> {
    let loaded = drctl::plan::load_with(&[plans_dir(settings)?], &settings.sink_rules);
    if !loaded.has_errors() {
        return Ok(loaded);
    }
    if let Some(others) = loaded.others_invalid(only) {
        err!("{}", others_warning(&others));
        return Ok(loaded);
    }
    print_diagnostics(settings, &loaded);
    Err(CliError::reported(Exit::Invalid))
}

/// The warning of a load that goes on past invalid plan files: each file
/// with its first error.
fn others_warning(others: &[&drctl::plan::source::Diagnostic]) -> String {
    let mut out = format!(
        "warning: {} invalid plan file{} skipped (not the plan{} this command works on); `drctl plan validate` shows every error:\n",
        others.len(),
        if others.len() == 1 { "" } else { "s" },
        if others.len() == 1 { "" } else { "s" },
    );
    for d in others {
        out.push_str(&format!(
            "  {}:{}:{}: {}\n",
            d.file.display(),
            d.line,
            d.column,
            d.message
        ));
    }
    out
}

/// The plans directory of the settings (`--plans`, `plans` in drctl.toml,
/// `DRCTL_PLANS`, else `./plans`), when it is there: a directory that is
/// not is named as such, with the ways to choose one (exit 2), rather
/// than read as a plan file of an unknown type.
pub fn plans_dir(settings: &drctl::config::Settings) -> Result<PathBuf, CliError> {
    let dir = &settings.plans;
    // A link that cannot be followed is reported by the load, with where
    // it points.
    if dir.exists() || std::fs::symlink_metadata(dir).is_ok() {
        return Ok(dir.clone());
    }
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
    Err(CliError::invalid(format!(
        "the plans directory {} was not found",
        shown.display()
    ))
    .hint(
        "run drctl where `plans/` is, or choose the directory with --plans DIR, `plans = \"DIR\"` in drctl.toml or DRCTL_PLANS=DIR",
    ))
}

/// Prints every diagnostic on stderr, with a summary line (coloured when
/// the settings say so; `Diagnostic::render` cleans what the file says).
pub fn print_diagnostics(settings: &drctl::config::Settings, loaded: &drctl::plan::Loaded) {
    use std::io::IsTerminal;
    let color = settings.use_color(std::io::stderr().is_terminal());
    let mut out = String::new();
    for d in &loaded.diagnostics {
        out.push_str(&d.render(color));
        out.push('\n');
    }
    let errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == drctl::plan::source::Severity::Error)
        .count();
    if errors > 0 {
        out.push_str(&format!(
            "{errors} error{} in {} file{}\n",
            if errors == 1 { "" } else { "s" },
            loaded.files.len(),
            if loaded.files.len() == 1 { "" } else { "s" }
        ));
    }
    // Coloured by `render`, which cleaned what came from the files.
    error::write_styled(&out);
}

/// Selects plans by name (all when `name` is `None`); an unknown name is invalid input.
pub fn select<'a>(
    loaded: &'a drctl::plan::Loaded,
    name: Option<&str>,
) -> Result<Vec<&'a drctl::plan::Plan>, CliError> {
    match name {
        None => Ok(loaded.plans.iter().collect()),
        Some(n) => match loaded.plan(n) {
            Some(p) => Ok(vec![p]),
            None => {
                let names: Vec<&str> = loaded.plans.iter().map(|p| p.name()).collect();
                let dir = loaded
                    .files
                    .first()
                    .and_then(|f| f.parent())
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                Err(CliError::invalid(format!("no plan named `{n}`"))
                    .hint(format!("plans in {dir}: {}", names.join(", "))))
            }
        },
    }
}

/// The plans' region that `--to` names: one of their regions, or the GCP
/// region of one of their sites (`--to us-east4` fails a plan whose site
/// us-east-1 is paired with us-east4 over to us-east-1). One run has one
/// target: plans that take the name for different sites are refused.
pub fn target_site(plans: &[drctl::plan::Plan], to: &str) -> Result<String, CliError> {
    let mut sites: Vec<&str> = plans.iter().filter_map(|p| p.site(to)).collect();
    sites.sort_unstable();
    sites.dedup();
    match sites.as_slice() {
        // A plan named on the command line reports its own regions.
        [] if !plans.is_empty() => Ok(to.to_string()),
        [] => Err(CliError::invalid(format!("no plan has region {to}"))
            .hint("`drctl plan validate` lists the plans; `drctl plan show PLAN` their regions")),
        [one] => Ok(one.to_string()),
        many => Err(CliError::invalid(format!(
            "region {to} stands for different regions of the plans ({})",
            many.join(", ")
        ))
        .hint("run the plans one at a time with --plan, or name the region itself")),
    }
}

/// Every run of `store`, oldest first, as every command reads runs
/// ([`drctl::journal::runs`]: with public run keys listed, only journals
/// signed by one of them), the journals left out named in a warning.
pub async fn read_runs(
    store: &dyn drctl::journal::JournalStore,
) -> Result<drctl::journal::runs::Runs, CliError> {
    let runs = drctl::journal::runs::read_runs(store, |_| true).await?;
    if let Some(line) = runs.left_out_line() {
        errln!("warning: {line}");
    }
    Ok(runs)
}

/// Resolves on Ctrl-C or SIGTERM (on Ctrl-C alone where SIGTERM cannot be
/// listened for): how `drill --schedule`, `schedule` and `watch` stop.
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Starts the journal of a run that this process journals on its own,
/// outside the engine (a sweep, a drill slot recorded as skipped): no
/// operator, no steps, this host and process.
async fn start_own_run(
    store: &std::sync::Arc<dyn drctl::journal::JournalStore>,
    (run_id, kind, target): (&str, drctl::journal::RunKind, &str),
    plans: &[drctl::plan::Plan],
    flags: serde_json::Value,
) -> Result<drctl::journal::Journal, CliError> {
    let mut j = drctl::journal::Journal::create(store.clone(), run_id).await?;
    j.append(drctl::journal::Event::RunStarted {
        run_id: run_id.into(),
        kind,
        target: target.into(),
        plans: plans.iter().map(drctl::journal::PlanRef::of).collect(),
        operator: None,
        host: drctl::state::lock::hostname(),
        pid: std::process::id(),
        flags,
        declared_at: None,
        nonce: Some(drctl::journal::new_nonce()),
        steps: Vec::new(),
    })
    .await?;
    Ok(j)
}
