//! `drctl runs list | show | resume` and `drctl audit verify`.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{Exit, Output, load_plans};
use drctl::config::Settings;
use drctl::engine::{RunOptions, report_from_records};
use drctl::journal;
use drctl::journal::event::{Decision, Event, GateName, Outcome};
use futures::StreamExt;

/// `runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest last.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Timeline, outputs, errors and measured RTO/RPO of a run.
    Show {
        /// Run id.
        run: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Continue a run after a crash or a failed step.
    Resume(ResumeArgs),
    /// Approve an emergency run retroactively (recorded with your identity).
    Approve {
        /// Run id.
        run: String,
        /// Why.
        #[arg(long, default_value = "retroactive approval")]
        reason: String,
    },
}

/// `runs resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Run id.
    pub run: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check journal hash chains; report the first broken record.
    Verify {
        /// Only this run (default: all).
        run: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

pub fn targets(settings: &Settings) -> BTreeMap<String, (u64, u64)> {
    let loaded = drctl::plan::load(std::slice::from_ref(&settings.plans));
    drctl::engine::measure::targets(&loaded.plans)
}

/// Runs a `runs` command.
pub async fn run(cmd: RunsCommand, settings: &Settings) -> anyhow::Result<Exit> {
    if let RunsCommand::Resume(a) = cmd {
        return resume(a, settings).await;
    }
    let state = super::open_state(settings, None, None).await?;
    let store = state.journals.clone();
    match cmd {
        RunsCommand::List { output } => {
            let mut rows = Vec::new();
            for (id, records) in read_all(store.as_ref()).await? {
                let started = records.iter().find_map(|r| match &r.event {
                    Event::RunStarted {
                        kind,
                        target,
                        plans,
                        ..
                    } => Some((
                        r.at,
                        *kind,
                        target.clone(),
                        plans
                            .iter()
                            .map(|p| p.name.clone())
                            .collect::<Vec<_>>()
                            .join(","),
                    )),
                    _ => None,
                });
                let outcome = records.iter().rev().find_map(|r| match &r.event {
                    Event::RunFinished { outcome, .. } => Some(*outcome),
                    _ => None,
                });
                let (at, kind, target, plans) = match started {
                    Some((at, kind, target, plans)) => (Some(at), Some(kind), target, plans),
                    None => (None, None, String::new(), String::new()),
                };
                rows.push(serde_json::json!({"run": id, "started": at, "kind": kind, "target": target, "plans": plans, "outcome": outcome.unwrap_or(Outcome::Unfinished)}));
            }
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                Output::Text => {
                    if rows.is_empty() {
                        println!("no runs in {}", settings.state);
                    }
                    for r in rows {
                        println!(
                            "{}  {}  {} to {}  [{}]  {}",
                            r["run"].as_str().unwrap_or_default(),
                            r["started"].as_str().unwrap_or_default(),
                            r["kind"].as_str().unwrap_or_default(),
                            r["target"].as_str().unwrap_or_default(),
                            r["plans"].as_str().unwrap_or_default(),
                            r["outcome"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            Ok(Exit::Ok)
        }
        RunsCommand::Show { run, output } => {
            let records = match journal::read(store.as_ref(), &run).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Exit::Invalid);
                }
            };
            let outcome = records.iter().rev().find_map(|r| match &r.event {
                Event::RunFinished { outcome, .. } => Some(*outcome),
                _ => None,
            });
            let report = report_from_records(
                &run,
                &records,
                &targets(settings),
                outcome.unwrap_or(Outcome::Unfinished),
            );
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"report": report, "records": records})
                    )?
                ),
                Output::Text => {
                    println!("run {run}");
                    for r in &records {
                        let line = match &r.event {
                            Event::RunStarted {
                                kind,
                                target,
                                operator,
                                plans,
                                ..
                            } => format!(
                                "started {kind} to {target} of {} by {}",
                                plans
                                    .iter()
                                    .map(|p| p.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                operator.as_deref().unwrap_or("unknown operator")
                            ),
                            Event::Gate {
                                plan,
                                gate,
                                decision,
                                detail,
                            } => format!("gate {gate} for {plan}: {decision} {detail}"),
                            Event::StepStarted { step, attempt } => {
                                format!("step {step} started (attempt {attempt})")
                            }
                            Event::StepSucceeded { step, outputs } => {
                                format!("step {step} succeeded: {outputs}")
                            }
                            Event::StepFailed { step, error } => format!(
                                "step {step} FAILED: {}",
                                error.message.lines().next().unwrap_or_default()
                            ),
                            Event::Resumed { host, pid, .. } => {
                                format!("resumed on {host} (pid {pid})")
                            }
                            Event::LockLost {
                                plan,
                                by_run,
                                by_host,
                                reason,
                                token,
                                ..
                            } => format!(
                                "lock of {plan} taken over by run {by_run} on {by_host} (token {token}): {reason}"
                            ),
                            Event::DrillResource { step, resource } => {
                                format!(
                                    "drill resource {resource} (step {step}), named before its creation"
                                )
                            }
                            Event::Interrupted { reason } => format!("steps stopped: {reason}"),
                            Event::Cleanup {
                                resource,
                                result,
                                detail,
                            } => format!("cleanup {resource}: {result} ({detail})"),
                            Event::RunFinished { outcome, .. } => format!("finished: {outcome}"),
                        };
                        println!(
                            "  {} #{:<3} {line}",
                            r.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                            r.seq
                        );
                    }
                    print!("{}", super::failover::render_report(&report));
                }
            }
            Ok(Exit::Ok)
        }
        RunsCommand::Approve { run, reason } => {
            let (mut j, records) = match journal::Journal::open_for_append(store, &run).await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(Exit::Invalid);
                }
            };
            let pending: Vec<String> = records
                .iter()
                .filter_map(|r| match &r.event {
                    Event::Gate {
                        plan, gate, detail, ..
                    } if *gate == GateName::Approval
                        && detail["emergency"] == serde_json::json!(true) =>
                    {
                        Some(plan.clone())
                    }
                    _ => None,
                })
                .collect();
            if pending.is_empty() {
                eprintln!("error: run {run} was not an emergency run: there is nothing to approve");
                return Ok(Exit::Invalid);
            }
            // Ask STS in the run's target region: the region the run moved
            // to is the one known to answer.
            let region = records
                .iter()
                .find_map(|r| match &r.event {
                    Event::RunStarted { target, .. } => Some(target.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| drctl::cloud::aws::FALLBACK_REGION.to_string());
            let clouds = drctl::cloud::connect(&settings.cloud).await?;
            let who = clouds.identity.caller(&region).await?;
            for plan in pending {
                j.append(Event::Gate {
                    plan: plan.clone(),
                    gate: GateName::Approval,
                    decision: Decision::Retroactive,
                    detail: serde_json::json!({"approved_by": who.arn, "reason": reason}),
                })
                .await?;
                println!("approved run {run} for plan {plan} as {}", who.arn);
            }
            j.flush().await?;
            Ok(Exit::Ok)
        }
        RunsCommand::Resume(_) => unreachable!("handled above"),
    }
}

/// Every run's records (parsed leniently: `audit verify` is where chains are
/// judged), oldest first: one listing, then the journals read concurrently
/// (a bucket answers in milliseconds per request, not per byte).
pub async fn read_all(
    store: &dyn drctl::journal::JournalStore,
) -> anyhow::Result<Vec<(String, Vec<journal::event::Record>)>> {
    let ids = store.list().await?;
    let texts: Vec<String> = futures::stream::iter(
        ids.iter()
            .map(|id| async move { store.read(id).await.unwrap_or_default() }),
    )
    .buffered(16)
    .collect()
    .await;
    Ok(ids
        .into_iter()
        .zip(texts)
        .map(|(id, text)| {
            let records = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            (id, records)
        })
        .collect())
}

/// `runs resume`: the engine (with the state) reads the journal itself.
async fn resume(a: ResumeArgs, settings: &Settings) -> anyhow::Result<Exit> {
    let loaded = match load_plans(settings, &[]) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let budget = loaded
        .plans
        .iter()
        .map(|p| p.tier.rto)
        .min()
        .or(Some(Duration::from_secs(900)));
    let engine = super::failover::engine(settings, None, false, budget, false).await?;
    let result = engine
        .resume(&a.run, &loaded.plans, None::<RunOptions>)
        .await;
    super::failover::finish(result, a.output)
}

/// Runs an `audit` command.
pub async fn audit(cmd: AuditCommand, settings: &Settings) -> anyhow::Result<Exit> {
    let AuditCommand::Verify { run, output } = cmd;
    let store = super::open_state(settings, None, None).await?.journals;
    let ids = match run {
        Some(r) => vec![r],
        None => store.list().await?,
    };
    let mut results = Vec::new();
    for id in ids {
        let v = match journal::verify_stored(store.as_ref(), &id).await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(Exit::Invalid);
            }
        };
        results.push(v);
    }
    let ok = results.iter().all(|v| v.ok);
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&results)?),
        Output::Text => {
            for v in &results {
                match &v.first_broken {
                    None => println!("ok      {} ({} records, chain intact)", v.run_id, v.records),
                    Some(b) => println!("BROKEN  {}: line {}: {}", v.run_id, b.line, b.reason),
                }
            }
        }
    }
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}
