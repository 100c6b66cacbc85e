//! `drctl notify test|pending|flush`, the process's notification hub, and
//! the hand-off before the process exits.
//!
//! A command that wrote runs journals what its notifiers still hold before
//! it exits (waiting at most [`EXIT_GRACE`] for attempts under way), and
//! when something is still owed (a sink down, slow or hanging) it starts a
//! detached `drctl notify flush --run RUN --follow` that goes on with the
//! retry schedule: the command's outcome, exit code and wall time do not
//! wait for any sink. Nothing depends on that child living: what it does
//! not deliver stays owed in the journal, for `notify flush` or the next
//! `runs resume`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Subcommand;
use drctl::config::{FlagSettings, Settings};
use drctl::journal::notice::{
    CloudEvent, EventData, EventDetail, EventType, SPEC_VERSION, Severity,
};
use drctl::journal::{Event, JournalStore};
use drctl::notify::{Hub, Notifier, PlanInfo, Sink, owed};

use super::{CliError, Exit, Output, outln};

/// How long a command waits, before it exits, for notification attempts
/// under way (a third of it for a sink that has not answered yet; a sink
/// already hanging costs nothing, one that starts hanging on the last
/// event this once).
pub const EXIT_GRACE: Duration = Duration::from_millis(300);

/// How long the hand-off child follows the retry schedule by default.
pub const FOLLOW: &str = "15m";

/// `drctl notify ...`.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a signed test event to every sink (or one) and show each answer.
    Test {
        /// Only this sink (`NAME`, or `PLAN.NAME` for a plan's own).
        #[arg(long)]
        sink: Option<String>,
        /// Region SNS and EventBridge sinks publish in.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List events not yet delivered, per sink (exit 1 when any).
    Pending {
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Send what is owed now (exit 1 when something is still undelivered).
    Flush {
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Follow the retry schedule for this long instead of one attempt
        /// each (`15m`).
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = FOLLOW)]
        follow: Option<String>,
    },
}

static PROCESS: Mutex<Option<Arc<Hub>>> = Mutex::new(None);

/// The process's hub (its notifiers journal nothing when no `[[notify]]`
/// sink is configured in `drctl.toml` nor in a run's plans).
pub fn hub(settings: &Settings, clouds: Option<&drctl::cloud::Clouds>) -> Option<Arc<Hub>> {
    let mut process = PROCESS.lock().expect("hub");
    if let Some(hub) = process.as_ref() {
        return Some(hub.clone());
    }
    let publish = clouds.map(|c| c.publisher.clone());
    let hub = Arc::new(
        Hub::new(
            settings.notify.clone(),
            drctl::notify::sink::process_env(),
            publish,
            &drctl::state::lock::hostname(),
        )
        .with_rules(settings.sink_rules.clone()),
    );
    *process = Some(hub.clone());
    Some(hub)
}

/// Before the process exits: journals what its notifiers hold and hands
/// what is still owed to a detached `notify flush --follow`.
pub async fn settle(flags: &FlagSettings) {
    let Some(hub) = PROCESS.lock().expect("hub").take() else {
        return;
    };
    for run in hub.settle(EXIT_GRACE).await {
        hand_off(flags, &run);
    }
}

/// Starts `drctl notify flush --run RUN --follow` detached from this
/// process (its own process group, no terminal), with this process's
/// settings flags.
fn hand_off(flags: &FlagSettings, run: &str) {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut cmd = std::process::Command::new(exe);
    let mut arg = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            cmd.arg(name).arg(v);
        }
    };
    arg(
        "--config",
        flags.config.as_ref().map(|p| p.display().to_string()),
    );
    arg(
        "--plans",
        flags.plans.as_ref().map(|p| p.display().to_string()),
    );
    arg(
        "--state-dir",
        flags.state_dir.as_ref().map(|p| p.display().to_string()),
    );
    arg("--state", flags.state.clone());
    arg(
        "--endpoints",
        flags.endpoints.as_ref().map(|p| p.display().to_string()),
    );
    arg("--gcs-endpoint", flags.gcs_endpoint.clone());
    cmd.args(["notify", "flush", "--run", run, "--follow"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
    }
    match cmd.spawn() {
        Ok(_) => super::errln!(
            "warning: some notifications of run {run} are not delivered yet; `drctl notify flush --follow` goes on in the background (`drctl notify pending` lists them)"
        ),
        Err(e) => super::errln!(
            "warning: some notifications of run {run} are not delivered yet, and the background flush did not start ({e}); run `drctl notify flush`"
        ),
    }
}

/// Tells the sinks of each overdue plan, once per plan and due time: the
/// event is journaled in its own notice journal (created only once, even
/// by several machines) before it is sent, and delivered like a run's.
pub async fn overdue(
    settings: &Settings,
    plans: &[drctl::plan::Plan],
    rows: &[drctl::runs::schedule::Cadence],
) -> Result<(), CliError> {
    let owed: Vec<_> = rows.iter().filter(|r| r.overdue).collect();
    let sinks_wanted = |p: &drctl::plan::Plan| {
        drctl::notify::outbox::sinks_of(&settings.notify, std::slice::from_ref(p))
            .iter()
            .any(|s| s.wants(EventType::ScheduleOverdue, Severity::Warning))
    };
    if owed.is_empty() || !plans.iter().any(sinks_wanted) {
        return Ok(());
    }
    let clouds = drctl::cloud::connect(&settings.cloud.single_attempt())
        .await
        .ok();
    let state = super::open_state(settings, None, clouds.as_ref()).await?;
    let Some(hub) = hub(settings, clouds.as_ref()) else {
        return Ok(());
    };
    let now = chrono::Utc::now();
    for row in owed {
        let Some(plan) = plans.iter().find(|p| p.name() == row.plan) else {
            continue;
        };
        let last = row.last_passing.as_ref().map(|d| d.started);
        let why = row
            .note
            .clone()
            .unwrap_or_else(|| "no passing drill within its tier's interval".into());
        let event = drctl::notify::build::overdue(plan, last, row.due_by, now, &why);
        let id = drctl::notify::build::overdue_journal(plan.name(), row.due_by);
        let region = event.data.target.clone().unwrap_or_default();
        // Created once: a second machine (or the next pass) finds it there,
        // and what it still owes is delivered from it.
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
    Ok(())
}

/// Runs `notify ...`.
pub async fn run(cmd: NotifyCommand, settings: &Settings) -> Result<Exit, CliError> {
    match cmd {
        NotifyCommand::Test {
            sink,
            region,
            output,
        } => test(settings, sink.as_deref(), &region, output).await,
        NotifyCommand::Pending { run, output } => pending(settings, run.as_deref(), output).await,
        NotifyCommand::Flush { run, follow } => flush(settings, run.as_deref(), follow).await,
    }
}

/// Every sink: `drctl.toml`'s and each plan's.
fn all_sinks(
    settings: &Settings,
) -> Result<(Vec<drctl::plan::notify::NotifySpec>, Vec<drctl::plan::Plan>), CliError> {
    let loaded = super::load_plans(settings, &[])?;
    let plans = loaded.plans.clone();
    Ok((
        drctl::notify::outbox::sinks_of(&settings.notify, &plans),
        plans,
    ))
}

async fn test(
    settings: &Settings,
    only: Option<&str>,
    region: &str,
    output: Output,
) -> Result<Exit, CliError> {
    let sinks = sinks_to_test(settings, only)?;
    let clouds = drctl::cloud::connect(&settings.cloud.single_attempt())
        .await
        .ok();
    let sender = drctl::notify::Sender::new(clouds.as_ref().map(|c| c.publisher.clone()));
    let env = drctl::notify::sink::process_env();
    let event = test_event(region);
    let mut rows = Vec::new();
    let mut all_ok = true;
    for spec in &sinks {
        let row = test_sink(&sender, spec, settings, &env, &event, region).await;
        all_ok &= row.delivered;
        rows.push(row);
    }
    print_test(output, &event, &rows)?;
    Ok(if all_ok { Exit::Ok } else { Exit::Failed })
}

/// The sinks `notify test` sends to: every sink (`drctl.toml`'s, each
/// plan's, and the operators' that only plans naming them hear from,
/// under their own names), or the one named `only`; none is an error.
fn sinks_to_test(
    settings: &Settings,
    only: Option<&str>,
) -> Result<Vec<drctl::plan::notify::NotifySpec>, CliError> {
    let mut sinks = match super::plans_dir(settings) {
        Ok(_) => all_sinks(settings)?.0,
        // No plans directory: drctl.toml's sinks are all there are, and a
        // test of them needs no plan.
        Err(_) => settings.notify.clone(),
    };
    // The operators' sinks that only plans naming them hear from are
    // tested under their own names too.
    for s in &settings.notify {
        if !sinks.iter().any(|o| o.name == s.name) {
            sinks.push(s.clone());
        }
    }
    sinks.retain(|s| only.is_none_or(|o| o == s.name));
    if sinks.is_empty() {
        return Err(match only {
            Some(o) => CliError::invalid(format!("no notify sink is named `{o}`")),
            None => CliError::invalid("no notify sink is configured"),
        }
        .hint("add a [[notify]] entry to drctl.toml (docs/notify.md)"));
    }
    Ok(sinks)
}

/// The test event: no run, nothing to do, info, for `region`, named by
/// the time it is built.
fn test_event(region: &str) -> CloudEvent {
    let now = chrono::Utc::now();
    CloudEvent {
        specversion: SPEC_VERSION.into(),
        id: format!("evt_test_{}", now.format("%Y%m%dT%H%M%S%.3fZ")),
        source: "/drctl/notify".into(),
        kind: EventType::Test,
        time: now,
        subject: "test".into(),
        datacontenttype: "application/json".into(),
        data: EventData {
            run_id: None,
            run_kind: None,
            plans: Vec::new(),
            tier: None,
            target: Some(region.to_string()),
            operator: None,
            severity: Severity::Info,
            summary: format!("drctl notify test from {}", drctl::state::lock::hostname()),
            record: None,
            detail: EventDetail::Test {
                message: "a test event: no run, nothing to do".into(),
            },
        },
    }
}

/// Sends the test `event` to one sink (a sink that does not resolve on
/// this host is not delivered to, with why), and its row.
async fn test_sink(
    sender: &drctl::notify::Sender,
    spec: &drctl::plan::notify::NotifySpec,
    settings: &Settings,
    env: &drctl::notify::sink::Env,
    event: &CloudEvent,
    region: &str,
) -> TestRow {
    let answer = match Sink::resolve(spec, env, &settings.sink_rules) {
        Ok(sink) => sender.send(&sink, event, region).await,
        Err(e) => drctl::notify::Answer {
            delivered: false,
            status: None,
            detail: e,
            retry_after: None,
        },
    };
    TestRow {
        sink: spec.name.clone(),
        kind: spec.kind.map_or("-", |k| k.as_str()),
        delivered: answer.delivered,
        status: answer.status,
        detail: answer.detail,
    }
}

/// Prints `notify test`'s answers: one JSON document, or a line a sink.
fn print_test(output: Output, event: &CloudEvent, rows: &[TestRow]) -> Result<(), CliError> {
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"id": event.id, "sinks": rows}))?
        ),
        Output::Text => {
            outln!("test event {}", event.id);
            for r in rows {
                outln!(
                    "  {:<20} {:<12} {}  {}",
                    r.sink,
                    r.kind,
                    if r.delivered {
                        "delivered"
                    } else {
                        "FAILED   "
                    },
                    r.detail
                );
            }
        }
    }
    Ok(())
}

/// One sink's answer to `notify test`.
#[derive(serde::Serialize)]
struct TestRow {
    sink: String,
    kind: &'static str,
    delivered: bool,
    status: Option<u16>,
    detail: String,
}

/// One event owed to one sink (`notify pending`).
#[derive(serde::Serialize)]
struct PendingRow {
    run: String,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    sink: String,
    attempts: u32,
    last: Option<String>,
    retry_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A journal to look at, with the store that holds it, read with the late
/// facts beside it (`drctl::runs::late`).
type Found = (Arc<dyn JournalStore>, String, drctl::runs::late::Merged);

/// The journals to look at: one (a run, or a notice), or every run and
/// notice (a journal that cannot be read is named in a warning and left
/// out: one broken journal does not hold up every other's notifications).
async fn runs_of(state: &drctl::state::State, only: Option<&str>) -> Result<Vec<Found>, CliError> {
    let mut out = Vec::new();
    for store in [state.journals.clone(), state.notices.clone()] {
        let ids = match only {
            Some(run) => vec![run.to_string()],
            None => store.list().await?,
        };
        for id in ids {
            match drctl::runs::late::read(store.as_ref(), &id).await {
                Ok(run) if !run.records.is_empty() => out.push((store.clone(), id, run)),
                Ok(_) => {}
                Err(drctl::journal::JournalError::NotFound { .. }) if only.is_some() => {}
                Err(e) if only.is_some() => return Err(CliError::invalid_input(e)),
                Err(e) => super::errln!("warning: {id} is left out: {e}"),
            }
        }
    }
    if let (Some(run), true) = (only, out.is_empty()) {
        return Err(
            CliError::invalid(format!("no run or notice `{run}` in the state"))
                .hint("`drctl runs list` lists the runs"),
        );
    }
    Ok(out)
}

async fn pending(
    settings: &Settings,
    only: Option<&str>,
    output: Output,
) -> Result<Exit, CliError> {
    let state = super::open_state_to_read(settings, None).await?;
    let mut rows = Vec::new();
    for (_, run, found) in runs_of(&state, only).await? {
        for o in owed(&found.records) {
            rows.push(PendingRow {
                run: run.clone(),
                id: o.event.id.clone(),
                kind: o.event.kind.as_str(),
                sink: o.sink,
                attempts: o.attempts,
                last: o.last,
                retry_at: o.retry_at,
            });
        }
    }
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Text if rows.is_empty() => outln!("no undelivered notification"),
        Output::Text => {
            for r in &rows {
                outln!(
                    "{}  {}  → {}  attempts {}  next {}  {}",
                    r.id,
                    r.kind,
                    r.sink,
                    r.attempts,
                    r.retry_at.map_or("now".into(), |t| t.to_rfc3339()),
                    r.last.as_deref().unwrap_or_default()
                );
            }
        }
    }
    Ok(if rows.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

async fn flush(
    settings: &Settings,
    only: Option<&str>,
    follow: Option<String>,
) -> Result<Exit, CliError> {
    let follow = match &follow {
        Some(f) => drctl::plan::duration::parse_duration(f)
            .map_err(|e| CliError::invalid(format!("--follow: {e}")))?,
        None => Duration::ZERO,
    };
    let (sinks, plans) = all_sinks(settings)?;
    let clouds = drctl::cloud::connect(&settings.cloud).await.ok();
    let state = super::open_state(settings, None, clouds.as_ref()).await?;
    let sender = Arc::new(drctl::notify::Sender::new(
        clouds.as_ref().map(|c| c.publisher.clone()),
    ));
    let env = drctl::notify::sink::process_env();
    let mut left = 0;
    let mut delivered = 0;
    let host = drctl::state::lock::hostname();
    for (store, run, found) in runs_of(&state, only).await? {
        // Refused before anything is sent: a delivery that could not be
        // recorded (run keys listed, this process without the run key)
        // would be sent again by every flush.
        store.keys().may_write(&run)?;
        // A run publishes in its target region; a notice where its event says.
        let Some(target) = found.records.iter().find_map(|r| match &r.event {
            Event::RunStarted { target, .. } => Some(target.clone()),
            Event::Notification { event, .. } => event.data.target.clone(),
            _ => None,
        }) else {
            continue;
        };
        let notifier = Notifier::new(
            sinks.clone(),
            PlanInfo::of(&plans),
            &target,
            &host,
            sender.clone(),
            (&env, &settings.sink_rules),
        );
        // What a crash kept from being journaled, then what is sent, is
        // recorded beside the journal, never in it: the run may still be
        // going on, and its journal is its own (docs/notify.md).
        let primed = notifier.prime(&found.records, &found.last_hash);
        let written = drctl::journal::late::record(store.as_ref(), &run, &host, primed).await?;
        let all = drctl::runs::late::merge(&found.records, &written);
        if owed(&all).is_empty() {
            continue;
        }
        notifier.flush(&all, follow.is_zero(), follow).await;
        let results = notifier.take_results();
        delivered += results
            .iter()
            .filter(|r| {
                matches!(
                    r,
                    Event::Delivery {
                        result: drctl::journal::notice::DeliveryResult::Delivered,
                        ..
                    }
                )
            })
            .count();
        drctl::journal::late::record(store.as_ref(), &run, &host, results).await?;
        let after = drctl::runs::late::read(store.as_ref(), &run).await?;
        left += owed(&after.records).len();
    }
    outln!("{delivered} delivered, {left} still owed");
    Ok(if left == 0 { Exit::Ok } else { Exit::Failed })
}
