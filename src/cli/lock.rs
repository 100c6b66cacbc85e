//! `drctl lock status` and `drctl lock break`: who holds which plan, and the
//! way out when a holder is gone and cannot be waited for.

use clap::Subcommand;

use super::{CliError, Exit, Output, out, outln};
use drctl::config::Settings;
use drctl::journal::event::{Event, RunKind};
use drctl::state::hostname;
use drctl::state::{Holder, LockStatus};

/// `lock` subcommands.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Holder, age, lease left and fencing token of each plan lock, and how
    /// this host's clock and the holder's compare with the state store's.
    Status {
        /// Only this plan (default: every lock there is).
        #[arg(long)]
        plan: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Break a plan's lock (journaled in the holder's run). Its holder, if
    /// it still runs, is fenced: its next journal write is refused.
    Break {
        /// The plan.
        #[arg(long)]
        plan: String,
        /// Why (required; recorded).
        #[arg(long)]
        reason: String,
    },
}

/// Runs a `lock` command.
pub async fn run(cmd: LockCommand, settings: &Settings) -> Result<Exit, CliError> {
    let state = match cmd {
        LockCommand::Status { .. } => super::open_state_to_read(settings, None).await?,
        LockCommand::Break { .. } => super::open_state(settings, None, None).await?,
    };
    match cmd {
        LockCommand::Status { plan, output } => {
            let plans: Vec<String> = plan.into_iter().collect();
            let locks = state.locks.status(&plans).await?;
            match output {
                Output::Json => outln!("{}", serde_json::to_string_pretty(&locks)?),
                Output::Text => out!("{}", render(&locks, &settings.state.to_string())),
            }
            Ok(Exit::Ok)
        }
        LockCommand::Break { plan, reason } => {
            if reason.trim().is_empty() {
                return Err(CliError::invalid(
                    "--reason must say why the lock is broken (it is recorded)",
                ));
            }
            let by = Holder::current(&drctl::journal::new_run_id("lock-break"), RunKind::Failover);
            let Some(before) = state.locks.break_lock(&plan, &by, &reason).await? else {
                outln!("plan {plan} is not locked: nothing to break");
                return Ok(Exit::Ok);
            };
            if let Some(h) = &before.holder {
                // Both sides on record: the broken run's journal says who broke it.
                let event = Event::LockLost {
                    plan: plan.clone(),
                    by_run: "(drctl lock break)".into(),
                    by_host: hostname(),
                    reason: reason.clone(),
                    token: before.token.unwrap_or(0),
                    preempted: false,
                };
                if let Err(e) =
                    drctl::journal::append_to(state.journals.clone(), &h.run_id, event).await
                {
                    super::errln!(
                        "warning: could not record the break in run {}: {e}",
                        h.run_id
                    );
                } else if let Some(hub) = super::notify::hub(settings, None) {
                    // The broken run owes a `lock.broken`: journaled and
                    // handed to a flush when this process settles.
                    let plans: Vec<drctl::plan::Plan> = super::load_plans(settings, &[])
                        .map(|l| l.plans.into_iter().filter(|p| p.name() == plan).collect())
                        .unwrap_or_default();
                    hub.notifier(&state.journals, &h.run_id, &plans, "");
                }
                outln!(
                    "broke the lock of plan {plan}, held by run {} on {} (pid {}): {reason}\n  `drctl runs resume {}` continues that run",
                    h.run_id,
                    h.host,
                    h.pid,
                    h.run_id
                );
            } else {
                outln!(
                    "plan {plan} is not locked ({}): nothing to break",
                    before.state
                );
            }
            Ok(Exit::Ok)
        }
    }
}

fn render(locks: &[LockStatus], location: &str) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    if locks.is_empty() {
        let _ = writeln!(o, "no plan locks in {location}");
        return o;
    }
    let now = chrono::Utc::now();
    for l in locks {
        let _ = write!(o, "{:<20} {:<9}", l.plan, l.state);
        if let Some(h) = &l.holder {
            let age = (now - l.acquired.unwrap_or(h.started)).num_seconds();
            let _ = write!(
                o,
                " run {} on {} (pid {}), {}held {age}s",
                h.run_id,
                h.host,
                h.pid,
                l.kind.map(|k| format!("{k}, ")).unwrap_or_default()
            );
        }
        if let Some(left) = l.lease_left_seconds {
            let _ = write!(o, ", lease left {left}s");
        }
        if let Some(t) = l.token {
            let _ = write!(o, ", token {t}");
        }
        if let Some(c) = &l.clocks {
            let secs = |ms: i64| format!("{:+.1}s", ms as f64 / 1000.0);
            let _ = write!(o, ", this host {} off the store", secs(c.host_skew_ms));
            if let Some(w) = c.writer_skew_ms {
                let _ = write!(o, ", its last writer {}", secs(w));
            }
            if !c.judged_by_store {
                let _ = write!(
                    o,
                    " (expiry judged by this host's clock: the store did not say when it wrote the lease)"
                );
            }
        }
        if let Some(d) = &l.displaced {
            let _ = write!(
                o,
                ", taken from run {}{}",
                d.run_id,
                l.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            );
        }
        o.push('\n');
    }
    if let Some(c) = locks.iter().filter_map(|l| l.clocks).find(|c| c.host_off) {
        let _ = writeln!(
            o,
            "warning: this host's clock is {:.1}s off the state store's, more than lease_skew: leases are judged by the store's clock, but synchronise this host's clock (NTP)",
            c.host_skew_ms as f64 / 1000.0
        );
    }
    o
}
