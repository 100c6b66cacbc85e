//! `drctl failover`: fail over one plan, or every plan that has the region.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

use super::{CliError, Exit, Output, load_plans, out, outln, select};
use drctl::config::Settings;
use drctl::engine::{Confirm, Engine, EngineError, PreviewGate, PreviewRow, Reporter, RunOptions};
use drctl::journal::RunKind;
use drctl::journal::{LagReading, RpoDetail};
use drctl::plan::Plan;
use drctl::plan::duration::{format_duration, parse_duration};
use drctl::runs::RunReport;
use drctl::runs::replay::StepState;

/// Flags shared by every command that starts a run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Print every step, its API calls and current → desired state, and
    /// the preview's hash; change nothing.
    #[arg(long, alias = "preview")]
    pub dry_run: bool,
    /// Run only as this approved preview: its hash (`p2-...`, printed by
    /// `--dry-run`), or a file holding a saved `--dry-run --output json`
    /// (then a refusal says what changed, line by line). A fresh preview,
    /// made under the run's locks right before the first step, must match,
    /// and the approved one be less than a day old, or the run is refused
    /// (exit 3) and changes nothing. With --force-unlock, give the file:
    /// the takeover comes before the gate, and only the approved lines say
    /// whether it was approved.
    #[arg(long, value_name = "HASH|FILE", value_parser = parse_approved_preview)]
    pub approve_preview: Option<drctl::engine::ApprovedPreview>,
    /// Accept losing up to this much data (covers replica lag above the RPO, or unknown lag).
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub accept_data_loss: Option<Duration>,
    /// When the disaster was declared (RFC 3339); RTO and RPO are measured from here.
    #[arg(long, value_name = "TIME")]
    pub declared_at: Option<DateTime<Utc>>,
    /// Approve the run (recorded with your identity) with this reason.
    #[arg(long, value_name = "REASON", num_args = 0..=1, default_missing_value = "approved on the command line")]
    pub approve: Option<String>,
    /// Skip approval now; a retroactive approval is due within 4 hours.
    #[arg(long)]
    pub emergency: bool,
    /// Take over a lock whose holder is dead or whose lease expired; with a
    /// REASON, also a live lease on shared state (journaled in both runs).
    #[arg(long, value_name = "REASON", num_args = 0..=1, default_missing_value = "")]
    pub force_unlock: Option<String>,
    /// Most steps running at once (0: no bound; the API budgets hold the
    /// calls, and a step that waits on AWS costs nothing).
    #[arg(long, default_value_t = 0)]
    pub parallelism: usize,
    /// Per-step time limit (default: what is left of the tier's RTO budget, at least a quarter of the RTO).
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub step_timeout: Option<Duration>,
    /// Window over which replica lag is read.
    #[arg(long, value_parser = parse_duration, default_value = "15m")]
    pub lag_window: Duration,
    /// Fault injection for crash/resume tests and game days: stop the run
    /// as a crash would at `before:STEP` or `after:STEP` (journaled).
    #[arg(long, value_parser = parse_crash, value_name = "POINT", hide = true)]
    pub inject_crash: Option<drctl::engine::CrashPoint>,
    /// Output format of the final summary.
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

impl RunArgs {
    /// Run options for `kind`/`mode` to `target`, at the settings' `pace`.
    pub fn options(
        &self,
        kind: RunKind,
        mode: drctl::engine::RunMode,
        target: &str,
        pace: &drctl::engine::Pace,
    ) -> RunOptions {
        RunOptions {
            kind,
            mode,
            target: target.into(),
            parallelism: self.parallelism,
            dry_run: self.dry_run,
            accept_data_loss: self.accept_data_loss,
            declared_at: self.declared_at,
            approve: self.approve.clone(),
            emergency: self.emergency,
            force_unlock: self.force_unlock.is_some(),
            force_reason: self.force_unlock.clone().filter(|r| !r.trim().is_empty()),
            lag_window: self.lag_window,
            step_timeout: self.step_timeout,
            inject_crash: self.inject_crash.clone(),
            approved_preview: self.approve_preview.clone(),
            ..RunOptions::failover(target).with_pace(pace)
        }
    }
}

/// `--approve-preview`: a hash, or a saved dry run whose lines hash to
/// the hash it holds (an edited copy is refused here, exit 2).
fn parse_approved_preview(s: &str) -> Result<drctl::engine::ApprovedPreview, String> {
    use drctl::engine::{ApprovedPreview, PREVIEW_SCHEMA, PreviewId};
    if drctl::engine::is_preview_hash(s) {
        return Ok(ApprovedPreview {
            hash: s.to_string(),
            lines: None,
        });
    }
    let text = std::fs::read_to_string(s).map_err(|e| {
        format!("`{s}` is neither a preview hash (p2-...) nor a readable file: {e}")
    })?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{s}: not a saved dry run: {e}"))?;
    let id: PreviewId = serde_json::from_value(doc.get("preview").cloned().unwrap_or(doc))
        .map_err(|e| format!("{s}: holds no preview (`--dry-run --output json`): {e}"))?;
    if id.schema_version != PREVIEW_SCHEMA {
        return Err(format!(
            "{s}: a preview of schema {}, this drctl makes schema {PREVIEW_SCHEMA}: preview again",
            id.schema_version
        ));
    }
    if drctl::engine::preview_hash(&id.lines) != id.hash {
        return Err(format!(
            "{s}: its lines do not hash to its hash {}: the file was edited",
            id.hash
        ));
    }
    Ok(ApprovedPreview {
        hash: id.hash,
        lines: Some(id.lines),
    })
}

fn parse_crash(s: &str) -> Result<drctl::engine::CrashPoint, String> {
    drctl::engine::CrashPoint::parse(s)
        .ok_or_else(|| format!("`{s}` is not before:STEP or after:STEP"))
}

/// `failover`.
#[derive(Debug, Args)]
pub struct FailoverArgs {
    /// Target region.
    #[arg(long)]
    pub to: String,
    /// Only this plan (default: every plan that has the target region, critical tier first).
    #[arg(long)]
    pub plan: Option<String>,
    /// A planned move: the home region answers, and no data may be lost
    /// (an Aurora global database switches over instead of failing over
    /// with data loss, and the run fails rather than lose data).
    #[arg(long)]
    pub planned: bool,
    /// Run flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Builds the engine for a command.
///
/// `via` is the region the command works in (a failover's target): the
/// shared state bucket, if any, is reached through it. A dry run journals
/// and locks nothing, so it does not open (or probe) a shared state.
pub async fn engine(
    settings: &Settings,
    via: Option<&str>,
    dry_run: bool,
    budget: Option<Duration>,
    interactive: bool,
) -> Result<Engine, CliError> {
    let raw = drctl::cloud::connect(&settings.cloud).await?;
    // Every call of the run holds AWS's published limits on our side of the
    // wire (docs/performance.md, "API budgets"): a wait, journaled, instead
    // of a throttled call.
    let (clouds, _, waits) = drctl::cloud::metered::Metered::wrap_with_budgets(
        raw,
        drctl::cloud::budget::Budgets::new(settings.budgets.clone()),
    );
    let side_clouds = drctl::cloud::connect(&settings.cloud.single_attempt()).await?;
    let state = if dry_run {
        drctl::state::State::local(settings.state_dir.clone())
    } else {
        super::open_state(settings, via, Some(&clouds)).await?
    };
    let live = std::io::stderr()
        .is_terminal()
        .then(|| Arc::new(super::progress::Live::new(budget)));
    let reporter: Arc<dyn Reporter> = match &live {
        Some(live) => live.clone(),
        None => Arc::new(super::progress::Lines::new(budget)),
    };
    let confirm: Option<Confirm> = (interactive && std::io::stdin().is_terminal()).then(|| {
        let f: Confirm = Arc::new(move |question: &str| {
            let ask = || {
                super::err!("{question}: ");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                let ok = std::io::stdin().lock().read_line(&mut line).is_ok();
                let answer = line.trim().to_string();
                ok && question.contains(&format!("plan {answer} ")) && !answer.is_empty()
            };
            // The live view stops drawing while the operator types.
            match &live {
                Some(live) => live.suspend(ask),
                None => ask(),
            }
        });
        f
    });
    let notify = super::notify::hub(settings, Some(&clouds));
    Ok(Engine {
        clouds,
        side_clouds,
        store: state.journals,
        locks: state.locks,
        reporter,
        confirm,
        notify,
        waits: Some(waits),
        inventory: Some(Arc::new(drctl::status::verified::StatusInventory {
            opts: drctl::status::StatusOptions::default(),
        })),
    })
}

/// Runs `failover`.
pub async fn run(a: FailoverArgs, settings: &Settings) -> Result<Exit, CliError> {
    let loaded = load_plans(settings, a.plan.as_slice())?;
    let plans: Vec<Plan> = select(&loaded, a.plan.as_deref())?
        .into_iter()
        .filter(|p| a.plan.is_some() || p.site(&a.to).is_some())
        .cloned()
        .collect();
    let to = super::target_site(&plans, &a.to)?;
    let opts = a.run.options(
        RunKind::Failover,
        drctl::engine::RunMode::Failover { planned: a.planned },
        &to,
        &settings.pace,
    );
    let budget = plans.iter().map(|p| p.tier.rto).min();
    let engine = engine(settings, Some(&to), a.run.dry_run, budget, true).await?;
    if opts.dry_run {
        // A dry run also says how long the failover should take.
        let forecast =
            super::budget::forecast_for(settings, &plans, &to, plans.len(), opts.parallelism)?;
        let verified = super::status::verified_now(settings, &plans, &engine.clouds).await;
        let verified = for_target(verified, &to);
        let extra = Extra {
            forecast: Some(&forecast),
            verified: verified.as_deref(),
        };
        return preview(&engine, &plans, &opts, a.run.output, extra).await;
    }
    let began = chrono::Utc::now();
    let result = engine.run(&plans, &opts).await;
    // Whether each plan was verified when the failover began: it ran all
    // the same; said after the run, beside it (the RTO is over).
    let verified = match &result {
        Ok(_) => super::status::verified_at_start(settings, &plans, &engine.clouds, began).await,
        Err(_) => None,
    };
    let verified = for_target(verified, &to);
    finish_judged(result, a.run.output, verified.as_deref())
}

/// Each plan's verified state for a failover to `target`: a drill to
/// another standby proved nothing of this one
/// (`runs::verified::Verified::for_target`).
fn for_target(
    verified: Option<Vec<(String, drctl::status::verified::Verified)>>,
    target: &str,
) -> Option<Vec<(String, drctl::status::verified::Verified)>> {
    verified.map(|all| {
        (all.into_iter())
            .map(|(plan, v)| (plan, v.for_target(target)))
            .collect()
    })
}

/// Runs (or previews) a run and prints its outcome.
pub async fn execute(
    engine: &Engine,
    plans: &[Plan],
    opts: &RunOptions,
    output: Output,
) -> Result<Exit, CliError> {
    if opts.dry_run {
        return preview(engine, plans, opts, output, Extra::default()).await;
    }
    finish(engine.run(plans, opts).await, output)
}

/// What a failover's preview says beside its steps and gates.
#[derive(Default, Clone, Copy)]
struct Extra<'a> {
    /// How long the failover should take.
    forecast: Option<&'a drctl::forecast::Forecast>,
    /// Each plan's verified state, and what differs from its last drill.
    verified: Option<&'a [(String, drctl::status::verified::Verified)]>,
}

/// Prints what a run would do (and, for a failover, its RTO forecast and
/// whether each plan is verified).
async fn preview(
    engine: &Engine,
    plans: &[Plan],
    opts: &RunOptions,
    output: Output,
    extra: Extra<'_>,
) -> Result<Exit, CliError> {
    let Extra { forecast, verified } = extra;
    let a_to = &opts.target;
    let (rows, gates) = match engine.preview(plans, opts).await {
        Ok(r) => r,
        Err(e) => return Err(engine_error(e, output)?),
    };
    let context = engine.preview_context(opts, chrono::Utc::now()).await;
    let id = drctl::engine::preview_identity(opts.kind, a_to, &rows, &gates, &context);
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "schema": drctl::engine::PREVIEW_DOCUMENT,
                "dry_run": true,
                "kind": opts.kind,
                "target": a_to,
                "steps": rows,
                "gates": gates,
                "forecast": forecast,
                "verified": verified.map(|v| v.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()),
                "preview": id,
            }))?
        ),
        Output::Text => {
            out!(
                "{}",
                render_preview(&rows, &gates, opts.kind.as_str(), a_to)
            );
            if let Some(f) = forecast {
                out!("{}", super::budget::render(f, a_to));
            }
            for (plan, v) in verified.unwrap_or_default() {
                let mut o = String::new();
                super::status::render_verified(&mut o, v);
                out!("plan {plan}:\n{o}");
            }
            if id.unread.is_empty() {
                outln!(
                    "preview {}: run exactly this with --approve-preview {} (refused if a fresh preview differs, or after {})",
                    id.hash,
                    id.hash,
                    drctl::plan::duration::format_duration(drctl::engine::PREVIEW_VALID_FOR)
                );
            } else {
                outln!(
                    "preview {}: not approvable: the state of {} could not be read, so what it would do is not known; preview again once it reads",
                    id.hash,
                    id.unread.join(", ")
                );
            }
        }
    }
    Ok(Exit::Ok)
}

/// Prints a run's outcome and maps it to an exit code.
pub fn finish(result: Result<RunReport, EngineError>, output: Output) -> Result<Exit, CliError> {
    finish_judged(result, output, None)
}

/// [`finish`], saying each plan's verified state when the run began
/// (`verified_at_start` in the JSON, a line each in the text), when known.
fn finish_judged(
    result: Result<RunReport, EngineError>,
    output: Output,
    verified: Option<&[(String, drctl::status::verified::Verified)]>,
) -> Result<Exit, CliError> {
    match result {
        Ok(report) => {
            match output {
                Output::Json => {
                    let mut doc = serde_json::to_value(&report)?;
                    if let (Some(v), Some(o)) = (verified, doc.as_object_mut()) {
                        let by_plan: std::collections::BTreeMap<_, _> = v.iter().cloned().collect();
                        o.insert("verified_at_start".into(), serde_json::to_value(by_plan)?);
                    }
                    outln!("{}", serde_json::to_string_pretty(&doc)?)
                }
                Output::Text => {
                    out!("{}", render_report(&report));
                    for (plan, v) in verified.unwrap_or_default() {
                        let mut o = String::new();
                        super::status::render_verified(&mut o, v);
                        out!("plan {plan} when the run began:\n{o}");
                    }
                }
            }
            Ok(if report.succeeded() {
                Exit::Ok
            } else {
                Exit::Failed
            })
        }
        Err(e) => Err(engine_error(e, output)?),
    }
}

/// A run that did not get to its steps (refused by a gate, invalid, journal
/// failure) as the command's error, for `main` to print on stderr; with
/// `--output json`, also a document on stdout, so that a script always gets
/// one. `Err` only when that document cannot be written.
fn engine_error(e: EngineError, output: Output) -> Result<CliError, CliError> {
    let code = super::error::engine_code(&e);
    if output == Output::Json {
        let outcome = match code {
            Exit::Refused => "refused",
            Exit::Invalid => "invalid",
            _ => "error",
        };
        outln!(
            "{:#}",
            serde_json::json!({"outcome": outcome, "exit_code": code as u8, "error": e.to_string()})
        );
    }
    Ok(CliError::from(e))
}

fn secs(s: Option<f64>) -> String {
    s.map_or("unknown".into(), |v| {
        if v < 60.0 {
            format!("{v:.1}s")
        } else {
            format_duration(drctl::plan::duration::from_secs_f64(v.round()))
        }
    })
}

/// Renders a run report for people.
pub fn render_report(r: &RunReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let outcome = match r.outcome {
        drctl::journal::Outcome::EvidenceIncomplete => "SUCCEEDED, EVIDENCE INCOMPLETE".to_string(),
        drctl::journal::Outcome::Pending => "SUCCEEDED, OLD SIDE PENDING".to_string(),
        drctl::journal::Outcome::CleanupIncomplete => "CLEANUP INCOMPLETE".to_string(),
        other => other.as_str().to_uppercase(),
    };
    let kind = r.kind.map_or("run", |k| k.as_str());
    let _ = writeln!(o, "\nrun {} ({kind} to {}): {outcome}", r.run_id, r.target,);
    for w in &r.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    render_measures(&mut o, r);
    render_steps(&mut o, r);
    let irreversible = |s: &drctl::runs::measure::StepTiming| {
        s.step
            .parse::<drctl::steps::graph::StepId>()
            .is_ok_and(|id| id.kind.traits().irreversible.is_some())
    };
    if r.steps
        .iter()
        .any(|s| irreversible(s) && s.state == StepState::Succeeded)
    {
        let _ = writeln!(
            o,
            "  note: promotions cannot be undone; to go back, run `drctl reprotect` then `drctl failback`"
        );
    }
    if let Some(d) = &r.drill {
        render_drill(&mut o, d);
    }
    if let Some(by) = r.approve_by {
        let _ = writeln!(
            o,
            "  emergency run: approve it retroactively by {by} (`drctl runs approve {}`)",
            r.run_id
        );
    }
    if let Some(cmd) = &r.resume {
        let _ = writeln!(o, "  resume with: {cmd}");
    }
    o
}

/// RTO and RPO achieved per plan, against target, with their bases.
fn render_measures(o: &mut String, r: &RunReport) {
    use std::fmt::Write as _;
    for m in &r.measures {
        let tgt = |t: Option<u64>| {
            t.map(|t| format_duration(Duration::from_secs(t)))
                .unwrap_or_default()
        };
        let met = |m: Option<bool>| match m {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "unknown",
        };
        let _ = writeln!(
            o,
            "  {}: RTO achieved {} (target {}, {}); RPO achieved {} (target {}, {})",
            m.plan,
            secs(m.rto.seconds),
            tgt(m.rto.target_seconds),
            met(m.rto.met),
            secs(m.rpo.seconds),
            tgt(m.rpo.target_seconds),
            met(m.rpo.met)
        );
        let _ = writeln!(o, "    RTO {}", m.rto.basis);
        let _ = writeln!(o, "    RPO {}", m.rpo.basis);
    }
}

/// The steps done and not done, with each failed step's error.
fn render_steps(o: &mut String, r: &RunReport) {
    use std::fmt::Write as _;
    let done: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.state == StepState::Succeeded)
        .map(|s| s.step.as_str())
        .collect();
    let not: Vec<String> = r
        .steps
        .iter()
        .filter(|s| s.state != StepState::Succeeded)
        .map(|s| format!("{} ({})", s.step, s.state.as_str()))
        .collect();
    let _ = writeln!(
        o,
        "  done: {}",
        if done.is_empty() {
            "nothing".into()
        } else {
            done.join(", ")
        }
    );
    if !not.is_empty() {
        let _ = writeln!(o, "  not done: {}", not.join(", "));
        for s in r.steps.iter().filter(|s| s.error.is_some()) {
            let _ = writeln!(
                o,
                "  error in {}: {}",
                s.step,
                s.error.as_deref().unwrap_or_default()
            );
        }
    }
}

/// A drill's verdicts and cleanup, for people.
fn render_drill(o: &mut String, d: &drctl::runs::drill::DrillSummary) {
    use std::fmt::Write as _;
    if let Some(why) = &d.interrupted {
        let _ = writeln!(o, "  drill interrupted: {why}");
    }
    for v in &d.verdicts {
        let _ = writeln!(
            o,
            "  drill verdict ({}, {}): {}",
            v.plan, d.depth, v.verdict
        );
    }
    if d.depth == "switchover" {
        return;
    }
    let c = &d.cleanup;
    let took = c
        .seconds
        .map(|s| format!(" in {}", secs(Some(s))))
        .unwrap_or_default();
    if c.complete {
        let _ = writeln!(
            o,
            "  cleanup complete{took} (reported apart from the drill's RTO): {} resource(s)",
            c.resources.len()
        );
    } else {
        let _ = writeln!(o, "  CLEANUP INCOMPLETE{took}: left behind:");
    }
    for r in &c.resources {
        let _ = writeln!(o, "    {}: {} ({})", r.resource, r.result, r.detail);
    }
    for l in &c.left {
        let _ = writeln!(
            o,
            "    LEFT {}: {}\n      remove with: {}",
            l.resource, l.why, l.how
        );
    }
}

/// One dry-run gate as a sentence ("gate rpo (payments): would pass:
/// replica lag of payments-db-use1 is 2s ...").
fn gate_sentence(g: &PreviewGate) -> String {
    match g {
        PreviewGate::Rpo {
            plan,
            detail: RpoDetail::NotApplicable { why, .. },
            ..
        } => format!("gate rpo ({plan}): does not apply: {why}"),
        PreviewGate::Rpo {
            plan,
            decision,
            detail,
        } => {
            let rpo = match detail {
                RpoDetail::Checked { rpo_seconds, .. } => {
                    rpo_seconds.map(|s| format_duration(Duration::from_secs(s)))
                }
                RpoDetail::NotApplicable { .. } => None,
            };
            let dbs: Vec<String> = detail
                .databases()
                .iter()
                .map(|db| lag_sentence(db, rpo.as_deref()))
                .collect();
            format!(
                "gate rpo ({plan}): {decision}{}",
                if dbs.is_empty() {
                    ": no replica to promote".to_string()
                } else {
                    format!(": {}", dbs.join("; "))
                }
            )
        }
        PreviewGate::Protections {
            plan,
            decision,
            detail,
        } => match detail["refusal"].as_str() {
            Some(why) => format!("gate protections ({plan}): {decision}: {why}"),
            None => format!(
                "gate protections ({plan}): {decision}: no record-set protection holds what its switch changes{}",
                if detail.to_string().contains("\"unread\"") {
                    " (some zones' protections could not be read: the switch names one if it refuses)"
                } else {
                    ""
                }
            ),
        },
        PreviewGate::Approval { plan, detail } => match (detail.required, detail.given) {
            (false, _) => format!("gate approval ({plan}): not required by the tier"),
            (_, true) => {
                format!("gate approval ({plan}): required; given (--approve or --emergency)")
            }
            _ => format!(
                "gate approval ({plan}): required; not given: pass --approve REASON, or confirm on a terminal"
            ),
        },
    }
}

/// One database's lag as the dry run's RPO gate read it.
fn lag_sentence(db: &LagReading, rpo: Option<&str>) -> String {
    let inst = &db.instance;
    if db.switchover {
        return format!("{inst}: {}", db.reading);
    }
    match db.lag_seconds {
        Some(l) => format!(
            "replica lag of {inst} is {} ({}), {} the RPO of {}",
            secs(Some(l)),
            db.reading,
            if db.within_rpo == Some(true) {
                "within"
            } else {
                "above"
            },
            rpo.unwrap_or_default()
        ),
        None => format!("replica lag of {inst} is unknown ({})", db.reading),
    }
}

fn render_preview(rows: &[PreviewRow], gates: &[PreviewGate], kind: &str, target: &str) -> String {
    use std::fmt::Write as _;
    let mut o = format!("dry run: {kind} to {target} (nothing will be changed)\n");
    for g in gates {
        let _ = writeln!(o, "  {}", gate_sentence(g));
    }
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(o, "{:>3}. {}: {}", i + 1, r.step, r.description);
        if !r.after.is_empty() {
            let _ = writeln!(o, "       after: {}", r.after.join(", "));
        }
        match &r.calls {
            Ok(calls) => {
                for c in calls {
                    let mark = if c.change { "change" } else { "no change" };
                    let call = if c.call.is_empty() {
                        "(read only)".to_string()
                    } else {
                        c.call.clone()
                    };
                    let _ = writeln!(
                        o,
                        "       {call} {} [{}]: {} → {} ({mark})",
                        c.resource, c.region, c.current, c.desired
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(o, "       cannot read current state: {e}");
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(dir: &std::path::Path, lines: &[&str], hash: &str) -> String {
        let path = dir.join("preview.json");
        let doc = serde_json::json!({
            "dry_run": true,
            "preview": {"schema_version": 2, "hash": hash, "lines": lines},
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn an_approved_preview_is_a_hash_or_a_saved_dry_run_that_was_not_edited() {
        let h = "p2-20261129T101500Z-0123456789abcdef0123456789abcdef";
        let a = parse_approved_preview(h).unwrap();
        assert_eq!((a.hash.as_str(), a.lines), (h, None));
        for bad in [
            "p2-20261129T101500Z-0123",
            "p1-0123456789abcdef0123456789abcdef",
            "p2-0123456789abcdef0123456789abcdef",
            "p2-20261399T101500Z-0123456789abcdef0123456789abcdef",
            "no-such-file",
        ] {
            assert!(parse_approved_preview(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            "failover to us-east-1",
            "made 2026-11-29T10:15:00Z, approvable until 2026-11-30T10:15:00Z",
            "gate rpo of payments: would pass",
        ];
        let own: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let hash = drctl::engine::preview_hash(&own);
        let ok = parse_approved_preview(&saved(dir.path(), &lines, &hash)).unwrap();
        assert_eq!((ok.hash, ok.lines), (hash.clone(), Some(own)));
        // One line edited after the approval: the file no longer hashes
        // to what it says.
        let edited = [
            "failover to us-east-1",
            "made 2026-11-29T10:15:00Z, approvable until 2026-11-30T10:15:00Z",
            "gate rpo of payments: would refuse",
        ];
        let e = parse_approved_preview(&saved(dir.path(), &edited, &hash)).unwrap_err();
        assert!(e.contains("edited"), "{e}");
    }
}
