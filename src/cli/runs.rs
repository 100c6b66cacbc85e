//! `drctl runs list | show | resume` and `drctl audit verify`.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::{CliError, Exit, Output, load_plans, out, outln};
use drctl::config::Settings;
use drctl::engine::RunOptions;
use drctl::journal;
use drctl::journal::event::{Decision, Event, GateName, Outcome};
use drctl::runs::report_from_records;

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
    /// Check journal hash chains (the first broken record), heads and,
    /// with `[keys] run_public`, signatures; with `--evidence`, also every
    /// evidence pack on every destination. A missing head, a head one
    /// record behind, and anything not signed by a listed key fail (exit 1).
    Verify {
        /// Only this run (default: all).
        run: Option<String>,
        /// Refuse to verify without the operators' public run keys
        /// (`[keys] run_public`, `DRCTL_RUN_PUBLIC`): without them journals
        /// and manifests are not authenticated, since a writer of the state
        /// can recompute every hash. With this flag success means signed.
        #[arg(long)]
        require_signed: bool,
        /// Also read each run's evidence manifests back from every
        /// destination and check every object's digest and that the pack's
        /// journal is the run's journal; a missing or altered object fails
        /// (exit 1), named.
        #[arg(long)]
        evidence: bool,
        /// Do not record the evidence result in each run's journal (by
        /// default an ended run's journal gets an `evidence_verified` record
        /// when the result changed, which `drctl report` reads). For
        /// read-only access to the state.
        #[arg(long, requires = "evidence")]
        no_record: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// Runs a `runs` command.
pub async fn run(cmd: RunsCommand, settings: &Settings) -> Result<Exit, CliError> {
    if let RunsCommand::Resume(a) = cmd {
        return resume(a, settings).await;
    }
    let state = match cmd {
        RunsCommand::List { .. } | RunsCommand::Show { .. } => {
            super::open_state_to_read(settings, None).await?
        }
        _ => super::open_state(settings, None, None).await?,
    };
    let store = state.journals.clone();
    match cmd {
        RunsCommand::List { output } => list(store.as_ref(), settings, output).await,
        RunsCommand::Show { run, output } => show(store.as_ref(), settings, &run, output).await,
        RunsCommand::Approve { run, reason } => approve(store, settings, &run, &reason).await,
        RunsCommand::Resume(_) => unreachable!("handled above"),
    }
}

/// `runs list`.
async fn list(
    store: &dyn journal::JournalStore,
    settings: &Settings,
    output: Output,
) -> Result<Exit, CliError> {
    let mut rows = Vec::new();
    for (id, records) in super::read_runs(store).await?.runs {
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
        let outcome = journal::outcome_of(&records);
        let (at, kind, target, plans) = match started {
            Some((at, kind, target, plans)) => (Some(at), Some(kind), target, plans),
            None => (None, None, String::new(), String::new()),
        };
        rows.push(ListRow {
            run: id.clone(),
            started: at,
            kind,
            target,
            plans,
            outcome,
        });
    }
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Text => {
            if rows.is_empty() {
                outln!("no runs in {}", settings.state);
            }
            for r in rows {
                outln!(
                    "{}  {}  {} to {}  [{}]  {}",
                    r.run,
                    as_json_text(&r.started),
                    as_json_text(&r.kind),
                    r.target,
                    r.plans,
                    as_json_text(&r.outcome)
                );
            }
        }
    }
    Ok(Exit::Ok)
}

/// One row of `runs list` (its `--output json` form).
#[derive(serde::Serialize)]
struct ListRow {
    run: String,
    started: Option<chrono::DateTime<chrono::Utc>>,
    kind: Option<drctl::journal::RunKind>,
    target: String,
    plans: String,
    outcome: Outcome,
}

/// A value as its JSON string spells it (`""` when it is not a string):
/// the text listing says each field as the JSON one does.
fn as_json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `runs show`.
async fn show(
    store: &dyn journal::JournalStore,
    settings: &Settings,
    run: &str,
    output: Output,
) -> Result<Exit, CliError> {
    // The journal with what was recorded beside it (a retroactive
    // approval, deliveries), merged.
    let records = drctl::runs::late::read(store, run)
        .await
        .map_err(CliError::invalid_input)?
        .records;
    let outcome = journal::outcome_of(&records);
    let report = report_from_records(run, &records, &super::history::targets(settings), outcome);
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"report": report, "records": records})
            )?
        ),
        Output::Text => {
            outln!("run {run}");
            for r in &records {
                let line = event_line(&r.event);
                let at = r.at.format("%Y-%m-%dT%H:%M:%S%.3fZ");
                match &r.late {
                    None => outln!("  {at} #{:<3} {line}", r.seq),
                    Some(l) => outln!(
                        "  {at} late {line} (recorded beside the journal on {})",
                        l.host
                    ),
                }
            }
            out!("{}", super::failover::render_report(&report));
        }
    }
    Ok(Exit::Ok)
}

/// One record of `runs show`, for people.
fn event_line(event: &Event) -> String {
    match event {
        Event::RunStarted {
            kind,
            target,
            operator,
            plans,
            ..
        } => started_line(kind, target, plans, operator.as_deref()),
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
        Event::StepFailed { step, error } => format!("step {step} FAILED: {}", error.summary()),
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
            format!("drill resource {resource} (step {step}), named before its creation")
        }
        Event::Interrupted { reason } => format!("steps stopped: {reason}"),
        Event::EvidenceVerified { by, host, plans } => {
            evidence_verified_line(by.as_deref(), host, plans)
        }
        Event::Cleanup {
            resource,
            result,
            detail,
        } => format!("cleanup {resource}: {result} ({detail})"),
        Event::RunFinished { outcome, .. } => format!("finished: {outcome}"),
        Event::Inventory { plan, items } => {
            format!(
                "inventory of {plan}: {} facts as the run began",
                items.len()
            )
        }
        Event::Watch {
            observer,
            plan,
            fact,
        } => format!("watch {observer} {plan}: {}", fact.summary()),
        Event::Waited {
            step,
            call,
            region,
            waited_ms,
            cause,
            throttled,
        } => waited_line(step, call, region, cause, *waited_ms, *throttled),
        Event::Notification { event, sinks } => notification_line(event, sinks),
        Event::Delivery {
            id,
            sink,
            attempt,
            result,
            detail,
            retry_at,
            ..
        } => delivery_line(id, sink, *attempt, result, detail, *retry_at),
    }
}

/// A `run_started` record: what kind of run, to where, of which plans,
/// by whom.
fn started_line(
    kind: &journal::RunKind,
    target: &str,
    plans: &[journal::PlanRef],
    operator: Option<&str>,
) -> String {
    format!(
        "started {kind} to {target} of {} by {}",
        plans
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        operator.unwrap_or("unknown operator")
    )
}

/// An `evidence_verified` record: who verified, where, and each object
/// that did not match (or that every pack was whole).
fn evidence_verified_line(by: Option<&str>, host: &str, plans: &[journal::PlanCheck]) -> String {
    let problems: Vec<String> = plans
        .iter()
        .flat_map(|p| &p.destinations)
        .flat_map(|d| &d.problems)
        .map(|p| format!("{}: {}", p.object, p.problem))
        .collect();
    format!(
        "evidence verified by {} on {host}: {}",
        by.unwrap_or("unknown"),
        if problems.is_empty() {
            "every pack whole".to_string()
        } else {
            format!("NOT MATCHING: {}", problems.join("; "))
        }
    )
}

/// A `waited` record: a cloud call of a step that waited (or was
/// throttled and sent again), how long, and why.
fn waited_line(
    step: &journal::StepName,
    call: &str,
    region: &str,
    cause: &str,
    waited_ms: u64,
    throttled: bool,
) -> String {
    format!(
        "{step}: {call} in {region} {} {:.1}s ({cause})",
        if throttled {
            "throttled, sent again after"
        } else {
            "waited"
        },
        waited_ms as f64 / 1000.0
    )
}

/// A `notification` record: the event sent, and to which sinks.
fn notification_line(event: &journal::notice::CloudEvent, sinks: &[String]) -> String {
    format!(
        "notification {} ({}) for {}: {}",
        event.id,
        event.kind,
        sinks.join(", "),
        event.data.summary
    )
}

/// A `delivery` record: one attempt to deliver a notification to a sink,
/// its result, and when the next attempt is due.
fn delivery_line(
    id: &str,
    sink: &str,
    attempt: u32,
    result: &journal::notice::DeliveryResult,
    detail: &str,
    retry_at: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    format!(
        "delivery of {id} to {sink}, attempt {attempt}: {result} ({detail}){}",
        retry_at
            .map(|at| format!("; next attempt at {}", at.to_rfc3339()))
            .unwrap_or_default()
    )
}

/// `runs approve`: the approval is recorded beside the run's journal, as a
/// late fact (`drctl::journal::late`), never appended to it: the run may
/// still be going on, and only the run writes its journal.
async fn approve(
    store: std::sync::Arc<dyn journal::JournalStore>,
    settings: &Settings,
    run: &str,
    reason: &str,
) -> Result<Exit, CliError> {
    // Refused before anything else, a cloud call included: with run keys
    // listed, only the run key's holder adds to a journal.
    store.keys().may_write(run)?;
    let records = drctl::runs::late::read(store.as_ref(), run)
        .await
        .map_err(CliError::invalid_input)?
        .records;
    let pending: Vec<String> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Gate {
                plan, gate, detail, ..
            } if *gate == GateName::Approval
                && drctl::journal::ApprovalDetail::of(detail)
                    .is_some_and(|d| d.emergency == Some(true)) =>
            {
                Some(plan.clone())
            }
            _ => None,
        })
        .collect();
    if pending.is_empty() {
        return Err(CliError::invalid(format!(
            "run {run} was not an emergency run: there is nothing to approve"
        )));
    }
    // Ask STS in the run's target region: the region the run moved
    // to is the one known to answer.
    let region = journal::target_of(&records)
        .unwrap_or(drctl::cloud::aws::FALLBACK_REGION)
        .to_string();
    let clouds = drctl::cloud::connect(&settings.cloud).await?;
    let who = clouds.identity.caller(&region).await?;
    let approvals = pending
        .iter()
        .map(|plan| Event::Gate {
            plan: plan.clone(),
            gate: GateName::Approval,
            decision: Decision::Retroactive,
            detail: serde_json::json!({"approved_by": who.arn, "reason": reason}),
        })
        .collect();
    journal::late::record(
        store.as_ref(),
        run,
        &drctl::state::lock::hostname(),
        approvals,
    )
    .await
    .map_err(CliError::invalid_input)?;
    for plan in pending {
        outln!("approved run {run} for plan {plan} as {}", who.arn);
    }
    Ok(Exit::Ok)
}

/// `runs resume`: the engine (with the state) reads the journal itself.
async fn resume(a: ResumeArgs, settings: &Settings) -> Result<Exit, CliError> {
    let loaded = load_plans(settings, &[])?;
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
pub async fn audit(cmd: AuditCommand, settings: &Settings) -> Result<Exit, CliError> {
    let AuditCommand::Verify {
        run,
        require_signed,
        evidence,
        no_record,
        output,
    } = cmd;
    if require_signed && settings.keys.run_public.is_empty() {
        return Err(CliError::invalid(
            "--require-signed: no public run keys are listed, so nothing could be authenticated",
        )
        .hint("list the operators' public run keys in drctl.toml ([keys] run_public) or DRCTL_RUN_PUBLIC (docs/state.md, \"Who can forge what\")"));
    }
    // Only recording evidence results writes (beside the journals).
    let store = if evidence && !no_record {
        super::open_state(settings, None, None).await?.journals
    } else {
        super::open_state_to_read(settings, None).await?.journals
    };
    let keys = store.keys().clone();
    let ids = match run {
        Some(r) => vec![r],
        None => store.list().await?,
    };
    // The evidence lives on the destinations: one set of adapters for all.
    let clouds = if evidence {
        Some(drctl::cloud::connect(&settings.cloud).await?)
    } else {
        None
    };
    // Who verifies: asked once, the first time a result is recorded.
    let mut verifier: Option<Option<String>> = None;
    let mut ok = true;
    let mut results = Vec::new();
    for id in ids {
        let (run_ok, line, value) = audit_run(
            store.as_ref(),
            &keys,
            &id,
            clouds.as_ref(),
            settings,
            no_record,
            &mut verifier,
        )
        .await?;
        ok &= run_ok;
        results.push((line, value));
    }
    print_verified(output, &results)?;
    if !keys.checks() && output == Output::Text {
        // Said plainly, once: the chain proves nothing against a writer
        // of the state, who can recompute every hash.
        outln!(
            "note: not authenticated: no public run keys are listed ([keys] run_public), so the chains and heads above prove nothing against anyone who can write the state; --require-signed refuses to verify without them"
        );
    }
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}

/// Verifies run `id`'s journal and the late facts beside it, and with
/// `clouds` its evidence packs (recording the result beside the journal
/// unless `no_record`; `verifier`: who verifies, asked once). Returns
/// whether the run passed, its text lines and its JSON document.
async fn audit_run(
    store: &dyn journal::JournalStore,
    keys: &journal::RunKeys,
    id: &str,
    clouds: Option<&drctl::cloud::Clouds>,
    settings: &Settings,
    no_record: bool,
    verifier: &mut Option<Option<String>>,
) -> Result<(bool, String, serde_json::Value), CliError> {
    // The late facts first, then the journal: every fact written
    // honestly meanwhile names a point of the journal as read.
    let facts = journal::late::read(store, id)
        .await
        .map_err(CliError::invalid_input)?;
    let (text, head) = journal::snapshot(store, id)
        .await
        .map_err(CliError::invalid_input)?;
    let v = journal::verify_with_keys(id, &text, head.as_deref(), keys);
    let late = journal::late::verify(id, &text, &facts);
    let problem = v.audit_problem();
    let mut ok = problem.is_none() && late.is_empty();
    let mut line = journal_line(&v, problem.as_deref(), &late, facts.facts.len());
    let mut value = serde_json::to_value(&v)?;
    value["problem"] = problem.into();
    value["late_facts"] = facts.facts.len().into();
    value["late_problems"] = serde_json::to_value(&late)?;
    let Some(clouds) = clouds else {
        return Ok((ok, line, value));
    };
    let objects = clouds.objects.as_ref();
    let (mut checks, records, via) =
        verify_evidence(objects, settings, id, &text, &keys.listed).await?;
    let run = (id, text.as_str(), keys.listed.as_slice());
    let unlooked = unnamed_packs(objects, settings, run, &records, &via, &mut checks).await;
    // The last verification may be a late fact, as this one will be.
    let records = drctl::runs::late::merge(&records, &facts.facts);
    ok &= checks.iter().all(|c| c.ok());
    line.push_str(&evidence_lines(&checks, keys.checks()));
    if let Some(u) = &unlooked {
        line.push_str(&format!("\n        {u}"));
    }
    value["evidence"] = serde_json::to_value(&checks)?;
    value["evidence_not_looked_for"] = unlooked.into();
    // Recorded, so that reports (journals only) can name a pack
    // that stopped matching: beside the journal (a late fact: the
    // run may be resumed meanwhile, and only the run appends to
    // it). Not beside a journal that does not verify: nothing
    // recorded with it could be trusted either.
    if !no_record && v.ok && drctl::evidence::worth_recording(&records, &checks) {
        if verifier.is_none() {
            *verifier = Some(caller(clouds, &via).await);
        }
        let recorded = record_evidence(store, id, verifier.clone().flatten(), checks).await;
        if recorded {
            line.push_str("\n        recorded beside the run's journal (evidence_verified)");
        }
        value["recorded"] = recorded.into();
    }
    Ok((ok, line, value))
}

/// A run's journal verification in text: intact (with its records, its
/// signer and the late facts beside it) or broken, then each broken late
/// fact.
fn journal_line(
    v: &journal::Verification,
    problem: Option<&str>,
    late: &[journal::late::LateProblem],
    late_facts: usize,
) -> String {
    let beside = match late_facts {
        0 => String::new(),
        1 => ", 1 late fact beside it".to_string(),
        n => format!(", {n} late facts beside it"),
    };
    let signed = match (&v.signer, v.authenticated) {
        (Some(k), true) => format!(", signed by key {k}"),
        (Some(k), false) => format!(", head names key {k} (not checked)"),
        (None, _) => ", not signed".to_string(),
    };
    let mut line = match problem {
        None => format!(
            "ok      {} ({} records, chain intact{signed}{beside})",
            v.run_id, v.records
        ),
        Some(p) => format!("BROKEN  {}: {p}", v.run_id),
    };
    for p in late {
        line.push_str(&format!("\n  BROKEN  late fact {}: {}", p.id, p.reason));
    }
    line
}

/// Records an evidence result beside run `id`'s journal, as a late
/// `evidence_verified` fact; a failure is warned about, not fatal.
/// Returns whether it was recorded.
async fn record_evidence(
    store: &dyn journal::JournalStore,
    id: &str,
    by: Option<String>,
    checks: Vec<journal::PlanCheck>,
) -> bool {
    let host = drctl::state::hostname();
    let event = journal::event::Event::EvidenceVerified {
        by,
        host: host.clone(),
        plans: checks,
    };
    match journal::late::record(store, id, &host, vec![event]).await {
        Ok(_) => true,
        Err(e) => {
            super::errln!(
                "warning: the evidence result of {id} is not recorded in its journal: {e}\n  hint: with read-only access to the state, pass --no-record"
            );
            false
        }
    }
}

/// Each run's verification: its text lines, or one JSON list of documents.
fn print_verified(output: Output, results: &[(String, serde_json::Value)]) -> Result<(), CliError> {
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&results.iter().map(|(_, v)| v).collect::<Vec<_>>())?
        ),
        Output::Text => {
            for (line, _) in results {
                outln!("{line}");
            }
        }
    }
    Ok(())
}

/// The verifier's identity (STS, in `region`), bounded: a verification is
/// recorded without it rather than not at all.
async fn caller(clouds: &drctl::cloud::Clouds, region: &str) -> Option<String> {
    let asked = clouds.identity.caller(region);
    match tokio::time::timeout(std::time::Duration::from_secs(10), asked).await {
        Ok(Ok(who)) => Some(who.arn),
        _ => None,
    }
}

/// Verifies the evidence packs of run `id`, whose journal text is `text`
/// (see [`drctl::evidence`]); also returns the run's records and the region
/// its reads went through.
async fn verify_evidence(
    objects: &dyn drctl::cloud::ObjectStore,
    settings: &Settings,
    id: &str,
    text: &str,
    keys: &[drctl::sign::PublicKey],
) -> Result<
    (
        Vec<drctl::journal::PlanCheck>,
        Vec<journal::event::Record>,
        String,
    ),
    CliError,
> {
    // Leniently parsed: a broken chain is reported above; what its records
    // say was stored is still checked.
    let records: Vec<journal::event::Record> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let via = (journal::target_of(&records).map(str::to_string))
        .or_else(|| settings.cloud.default_region.clone())
        .unwrap_or_else(|| "us-east-1".into());
    let checks = drctl::evidence::verify_run(objects, &via, id, text, &records, keys).await;
    Ok((checks, records, via))
}

/// Adds to `checks` the packs at the destinations of the run's plans
/// (as the plan directory defines them now) that the run's journal does
/// not name and that betray it ([`drctl::evidence::unnamed_packs`]: a
/// journal rolled back past its evidence step). What could not be looked
/// at (no plan directory, a plan of the run it does not define), in a
/// sentence: said, not failed, as an auditor may hold no plans.
async fn unnamed_packs(
    objects: &dyn drctl::cloud::ObjectStore,
    settings: &Settings,
    (id, text, keys): (&str, &str, &[drctl::sign::PublicKey]),
    records: &[journal::event::Record],
    via: &str,
    checks: &mut Vec<drctl::journal::PlanCheck>,
) -> Option<String> {
    let not_looked = |why: String| {
        format!(
            "packs its journal does not name were not looked for ({why}): a rollback past its evidence step would not be seen"
        )
    };
    let dir = match super::plans_dir(settings) {
        Ok(dir) if dir.exists() => dir,
        _ => return Some(not_looked("no plan directory".into())),
    };
    let loaded = drctl::plan::load_with(&[dir], &settings.sink_rules);
    let mut missing = Vec::new();
    let named: Vec<String> = records
        .iter()
        .find_map(|r| match &r.event {
            journal::event::Event::RunStarted { plans, .. } => {
                Some(plans.iter().map(|p| p.name.clone()).collect())
            }
            _ => None,
        })
        .unwrap_or_default();
    for name in named {
        let Some(plan) = loaded.plan(&name) else {
            missing.push(name);
            continue;
        };
        let known: Vec<String> = (checks.iter())
            .filter(|c| c.plan == name)
            .flat_map(|c| c.destinations.iter().map(|d| d.destination.clone()))
            .collect();
        let unnamed: Vec<String> = (plan.spec.evidence.iter())
            .flat_map(|e| e.destinations.iter())
            .filter(|d| !known.contains(d))
            .cloned()
            .collect();
        let found =
            drctl::evidence::unnamed_packs(objects, via, (id, text, keys), &name, &unnamed).await;
        if found.is_empty() {
            continue;
        }
        match checks.iter_mut().find(|c| c.plan == name) {
            Some(c) => c.destinations.extend(found),
            None => checks.push(drctl::journal::PlanCheck {
                plan: name,
                destinations: found,
            }),
        }
    }
    (!missing.is_empty()).then(|| {
        not_looked(format!(
            "the plan directory does not define {}",
            missing.join(", ")
        ))
    })
}

/// The text lines of a run's evidence checks, each on its own line
/// (`checked`: manifests' signatures were checked against listed keys).
fn evidence_lines(checks: &[drctl::journal::PlanCheck], checked: bool) -> String {
    let mut out = String::new();
    if checks.is_empty() {
        out.push_str("\n        evidence: none recorded (the run did not reach its evidence step)");
    }
    for c in checks {
        for d in &c.destinations {
            if d.problems.is_empty() {
                out.push_str(&format!(
                    "\n        evidence {} {}: {} objects verified{}",
                    c.plan,
                    d.destination,
                    d.verified,
                    match (&d.signed_by, checked) {
                        (Some(k), true) => format!(", manifest signed by key {k}"),
                        (Some(k), false) => format!(", manifest names key {k} (not checked)"),
                        (None, _) => ", manifest not signed".into(),
                    }
                ));
            }
            if let Some(r) = &d.retention {
                out.push_str(&format!(
                    "\n        retention {} {}: {r}",
                    c.plan, d.destination
                ));
            }
            for p in &d.problems {
                out.push_str(&format!(
                    "\n  FAILED evidence {} {}: {}",
                    c.plan, p.object, p.problem
                ));
            }
            let unreadable = (d.problems.iter())
                .filter(|p| p.kind == drctl::journal::ProblemKind::Unreadable)
                .count();
            if unreadable > 0 {
                out.push_str(&format!(
                    "\n        note: {unreadable} object(s) of {} could not be read: that is not evidence of tampering (an altered object says \"altered\"); run `drctl audit verify --evidence` again",
                    d.destination
                ));
            }
        }
    }
    out
}
