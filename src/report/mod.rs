//! `drctl report`: what an auditor asks for, computed from journals only.
//!
//! A report is a pure function of the plans (for targets, tiers and
//! schedules), the journals' texts with the late facts stored beside them
//! (local or shared state; `crate::journal::late`) and the time it is made. It never reads the cloud and never trusts memory: a run that is
//! not in a journal did not happen, and a journal whose hash chain does not
//! verify yields no figure at all (its numbers could have been edited), only
//! a finding. That keeps the report reproducible: the same journals give the
//! same report on any machine, which is what makes it evidence.
//!
//! The model ([`Report`]) is built here; [`render`] turns it into Markdown,
//! JSON (`drctl.report/v1`, schema in `docs/report.schema.json`), CSV and
//! JUnit XML, and [`html`] into one self-contained page with a timeline of
//! every run. Findings and the control mapping are derived in
//! [`findings`] and [`controls`], each in one place. Each run's row (its
//! outcome as of the report, measures, gates, verdict) is made in `row`,
//! each plan's placement before and after the window in `placement`;
//! [`pictures`] draws the HTML page's pictures, [`readiness`] the readiness
//! matrix as a page shows it, and [`incident`] one run's post-incident
//! draft.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::journal::event::{Decision, Event, GateName, Outcome, Record, RunKind, split_hint};
use crate::journal::{ApprovalDetail, LockOverride, RpoDetail, outcome_of};
use crate::plan::Plan;
use crate::runs::drill::Verdict;
use crate::runs::measure::{Measure, StepTiming};
use crate::runs::schedule::{Cadence, DrillRun};

pub mod controls;
pub mod findings;
pub mod html;
pub mod incident;
pub mod pictures;
mod placement;
pub mod readiness;
pub mod render;
mod row;

use row::{refusal, row};

use placement::placement;
pub use placement::{Move, Placement};

/// The JSON schema id of a report; bumped on any incompatible change.
pub const SCHEMA: &str = "drctl.report/v1";

/// One journal as stored: its text and head pointer (when it has one).
#[derive(Debug, Clone)]
pub struct JournalText {
    /// The run id.
    pub run_id: String,
    /// The records, one JSON line each.
    pub text: String,
    /// The head pointer's text, if any.
    pub head: Option<String>,
    /// The late facts stored beside the journal (a retroactive approval,
    /// deliveries made by `notify flush`): counted when anchored in the
    /// chain ([`crate::journal::late::anchored`]), merged with the records
    /// by [`crate::runs::late::merge`].
    pub late: Vec<crate::journal::late::Late>,
}

/// The period a report covers: runs that started within it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Window {
    /// Start, inclusive.
    pub from: DateTime<Utc>,
    /// End, inclusive.
    pub to: DateTime<Utc>,
}

/// A whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// When the report was made (the instant cadence and deadlines are
    /// judged at).
    pub generated_at: DateTime<Utc>,
    /// The runs it covers.
    pub window: Window,
    /// The plans in scope.
    pub scope: Vec<String>,
    /// Counts for the summary table.
    pub summary: Summary,
    /// Per plan (tier order, most critical first): targets, cadence, runs.
    pub plans: Vec<PlanSection>,
    /// What needs someone's attention, most severe first.
    pub findings: Vec<findings::Finding>,
    /// Which run is evidence for which control, and what is missing.
    pub controls: Vec<controls::Control>,
    /// What `drctl watch` decided in the window, from the watchers' own
    /// journals ([`add_watch`]; absent when no watcher decided anything).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRow>,
}

/// One decision of `drctl watch` (journaled when it changed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchRow {
    /// When.
    pub at: DateTime<Utc>,
    /// The observer.
    pub observer: String,
    /// The plan.
    pub plan: String,
    /// The decision (`suspect`, `proposed`, `vetoed`, `started`, ...).
    pub decision: String,
    /// Why, in a sentence.
    pub why: String,
    /// The run it started, if any.
    pub run_id: Option<String>,
}

/// Adds the decisions of the watchers' journals (`journals`: the state's
/// `watch/` store, each id and records, as `journal::runs` reads them: with
/// observers listed, only those their keys signed) to `r`, for its plans
/// and window.
pub fn add_watch(r: &mut Report, journals: &[(String, Vec<Record>)]) {
    let mut rows: Vec<WatchRow> = journals
        .iter()
        .flat_map(|(_, records)| crate::runs::watch::decisions(records))
        .filter(|d| r.scope.contains(&d.plan) && d.at >= r.window.from && d.at <= r.window.to)
        .map(|d| WatchRow {
            at: d.at,
            observer: d.observer,
            plan: d.plan,
            decision: d.decision.as_str().to_string(),
            why: d.why,
            run_id: d.run_id,
        })
        .collect();
    rows.sort_by(|a, b| (a.at, &a.plan, &a.observer).cmp(&(b.at, &b.plan, &b.observer)));
    r.watch = rows;
}

/// Counts over the rows of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Rows (one per run and plan).
    pub runs: usize,
    /// Rows whose verdict is PASS.
    pub pass: usize,
    /// Rows whose verdict is FAIL.
    pub fail: usize,
    /// Rows whose verdict is UNKNOWN.
    pub unknown: usize,
    /// Rows whose verdict is REFUSED (a gate stopped the run before
    /// anything changed).
    pub refused: usize,
    /// Drills among the rows.
    pub drills: usize,
    /// Real failovers and failbacks among the rows.
    pub failovers: usize,
    /// Findings.
    pub findings: usize,
    /// Findings of high severity.
    pub high_findings: usize,
}

/// One plan's part of a report.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSection {
    /// The plan.
    pub plan: String,
    /// One line for people.
    pub description: String,
    /// Who answers for it (`[plan] owner`), when set.
    pub owner: Option<String>,
    /// Its tier.
    pub tier: String,
    /// Home region first, then the standbys.
    pub regions: Vec<String>,
    /// The tier's RTO target, in seconds.
    pub rto_target_seconds: u64,
    /// The tier's RPO target, in seconds.
    pub rpo_target_seconds: u64,
    /// Whether the tier requires approval for a failover.
    pub approval_required: bool,
    /// Drill cadence at the report's time (from every journal, not only
    /// the window's: the last pass may be older than the window).
    pub cadence: Cadence,
    /// Where the plan's writer and traffic were when the window began and
    /// when it ended (from every verified journal, not only the window's).
    pub placement: Placement,
    /// Whether the plan is what its last passing drill proved, as far as
    /// journals and the plan tell (its definition, the drill's age); the
    /// world is compared by `drctl status` ([`crate::runs::verified`]).
    pub verified: crate::runs::verified::Verified,
    /// Whether its data is recovered from backups (a data resource whose
    /// standby is its backups): its drills are restore tests, and a plan
    /// with none on record says so.
    pub restores_from_backups: bool,
    /// Its last restore test: the newest drill on record (every journal
    /// that verifies, not only the window's) that restored its data from
    /// backups, with what, to which point, and the RTO and RPO achieved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_restore_test: Option<DrillRun>,
    /// Runs of the plan in the window, oldest first.
    pub runs: Vec<RunRow>,
}

/// A forecast RTO ([`crate::forecast`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predicted {
    /// Its median, seconds.
    pub p50_seconds: f64,
    /// Its 90th percentile, seconds.
    pub p90_seconds: f64,
    /// What it is made from.
    pub basis: String,
}

/// The forecast RTO of `plan` in a run of `n` plans of this kind to `target`.
fn predicted(
    plans: &[&Plan],
    plan: &str,
    target: &str,
    mode: &crate::journal::RunMode,
    n: usize,
) -> Option<Predicted> {
    let model = crate::cloud::model::Model::aws().ok()?;
    let p = plans.iter().find(|p| p.name() == plan)?;
    // The forecast is a pure function of these (its draws are seeded): a
    // report over many runs of one plan, or a process that renders one per
    // run (the evidence step), makes each once. Bounded, for long-lived
    // processes (`schedule --loop`, `watch`).
    static MADE: std::sync::LazyLock<std::sync::Mutex<BTreeMap<String, Option<Predicted>>>> =
        std::sync::LazyLock::new(Default::default);
    let key = serde_json::to_string(&(&p.spec, &p.tier, target, mode, n)).ok()?;
    if let Some(made) = MADE.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return made;
    }
    let made = forecast_one(model, p, target, mode, n);
    if let Ok(mut m) = MADE.lock() {
        if m.len() >= 1024 {
            m.clear();
        }
        m.insert(key, made.clone());
    }
    made
}

fn forecast_one(
    model: &'static crate::cloud::model::Model,
    p: &Plan,
    target: &str,
    mode: &crate::journal::RunMode,
    n: usize,
) -> Option<Predicted> {
    let one = [p.clone()];
    let req = crate::forecast::Request {
        mode: mode.clone(),
        plans_at_once: n.max(1),
        samples: 200,
        ..crate::forecast::Request::new(model, &one, target)
    };
    let f = crate::forecast::forecast(model, &req).ok()?;
    let r = f.plans.first()?.rto;
    let tenth = |x: f64| (x * 10.0).round() / 10.0;
    Some(Predicted {
        p50_seconds: tenth(r.p50_seconds),
        p90_seconds: tenth(r.p90_seconds),
        basis: format!(
            "forecast, not measured: the model of AWS in time over the plan's graph as it stands now, {} plan{} at once",
            n.max(1),
            if n > 1 { "s" } else { "" }
        ),
    })
}

/// One run of one plan.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// The run.
    pub run_id: String,
    /// failover, failback, drill, restore, reprotect or sweep.
    pub kind: RunKind,
    /// A drill's depth (`shadow`, `switchover`).
    pub depth: Option<String>,
    /// The scheduled slot it ran for, if any.
    pub schedule_slot: Option<DateTime<Utc>>,
    /// When its first record was written.
    pub started: DateTime<Utc>,
    /// When the disaster was declared (`--declared-at`), if given.
    pub declared_at: Option<DateTime<Utc>>,
    /// When its last record was written.
    pub ended: Option<DateTime<Utc>>,
    /// From start to its last record, when it has ended.
    pub duration_seconds: Option<f64>,
    /// The region it moved to (or drilled, or restored in).
    pub target: String,
    /// Who ran it (STS identity), when known.
    pub operator: Option<String>,
    /// Where it ran.
    pub host: String,
    /// The approval gate's decisions for this plan, in order.
    pub approvals: Vec<Approval>,
    /// An emergency run's retroactive approval deadline, and whether it
    /// was met.
    pub emergency: Option<Emergency>,
    /// How it ended.
    pub outcome: Outcome,
    /// RTO achieved against the target, with what it was measured from.
    pub rto: Measure,
    /// The RTO the model forecast for a run like it (its plans, its
    /// target, its kind), beside the one achieved: an estimate, never a
    /// measurement; `None` when its graph could not be forecast (a plan
    /// no longer loaded, or changed so it no longer has the region).
    pub predicted_rto: Option<Predicted>,
    /// A failover's or failback's plan as the run began: whether it was
    /// verified then, judged from the definition the run journaled
    /// against the last passing drill before it, aged to the run's start
    /// (journals only). `None` for other runs, and for runs that
    /// journaled no definition (made before drctl journaled it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified_at_start: Option<crate::runs::verified::Verified>,
    /// RPO achieved against the target, with what it was measured from.
    pub rpo: Measure,
    /// PASS, FAIL, UNKNOWN or REFUSED, with the reason.
    pub verdict: Verdict,
    /// Failed steps' errors (first line each).
    pub errors: Vec<String>,
    /// What it left undone without failing, and gates overridden.
    pub warnings: Vec<String>,
    /// Notifications not delivered (still owed, or given up), one line each
    /// (absent when every one was delivered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications_undelivered: Vec<String>,
    /// A drill's cleanup.
    pub cleanup: Option<crate::runs::drill::CleanupSummary>,
    /// Whether its journal's hash chain verified.
    pub chain: Chain,
    /// Its steps, with their times (the timeline).
    pub steps: Vec<StepTiming>,
    /// What a completed run of this kind cannot undo.
    pub rollback_scope: Option<String>,
    /// Set on the report a run makes of itself for its evidence pack
    /// ([`of_running`]): when, and that the run had not ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// The last `drctl audit verify --evidence` of this plan's packs, as the
    /// journal records it; `None`: never verified (or not recorded).
    pub evidence_check: Option<EvidenceCheck>,
    /// A failover `drctl watch` started: its RTO from the first failed
    /// observation, detect → decide → act → converge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<crate::runs::watch::Waterfall>,
}

/// The last verification of a run's evidence packs for one plan, read from
/// its `evidence_verified` record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceCheck {
    /// When it was verified.
    pub at: DateTime<Utc>,
    /// Who verified, when known.
    pub by: Option<String>,
    /// Where the verification ran.
    pub host: String,
    /// Objects whose digests matched, over every destination.
    pub verified: usize,
    /// What was wrong, each naming the object; empty: every pack whole.
    pub problems: Vec<crate::evidence::Problem>,
}

impl EvidenceCheck {
    /// The last verification of `plan`'s packs in `records`.
    fn last(records: &[Record], plan: &str) -> Option<Self> {
        records.iter().rev().find_map(|r| match &r.event {
            Event::EvidenceVerified { by, host, plans } => {
                let checked = plans.iter().find(|p| p.plan == plan)?;
                Some(Self {
                    at: r.at,
                    by: by.clone(),
                    host: host.clone(),
                    verified: checked.destinations.iter().map(|d| d.verified).sum(),
                    problems: checked
                        .destinations
                        .iter()
                        .flat_map(|d| d.problems.iter().cloned())
                        .collect(),
                })
            }
            _ => None,
        })
    }
}

/// One decision of the approval gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// pass, refuse, override (emergency) or retroactive.
    pub decision: Decision,
    /// When.
    pub at: DateTime<Utc>,
    /// Whether approval was required at all.
    pub required: bool,
    /// Who approved, when someone did.
    pub by: Option<String>,
    /// The reason given.
    pub reason: Option<String>,
    /// How (`--approve`, interactive confirmation, `drctl runs approve`),
    /// or why none was needed.
    pub how: Option<String>,
}

/// An emergency run's approval after the fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Emergency {
    /// The deadline for the retroactive approval.
    pub approve_by: Option<DateTime<Utc>>,
    /// When it was approved, if it was.
    pub approved_at: Option<DateTime<Utc>>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Not approved and past the deadline, or approved after it.
    pub overdue: bool,
}

/// A journal's hash chain, verified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    /// The chain and head verified.
    pub ok: bool,
    /// And every record and the head were signed by a listed run key:
    /// without keys listed a chain is only consistent (anyone can write
    /// one), never authenticated.
    #[serde(default)]
    pub authenticated: bool,
    /// Lines after the records its head covers that are not the run's
    /// (where they start, and why): left out of its figures, named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    /// Records read.
    pub records: usize,
    /// Where and why it broke.
    pub problem: Option<String>,
}

/// What a verified chain is, in words: signed by a listed run key, or,
/// with none listed, only consistent (anyone with the bucket can write a
/// consistent one).
pub fn chain_words(c: &Chain) -> String {
    let said = if c.authenticated {
        "hash chain verified, signed by a listed run key"
    } else {
        "hash chain consistent, not authenticated (no run keys listed)"
    };
    match &c.tail {
        Some(t) => format!("{said}; after its head, not the run's: {t}"),
        None => said.to_string(),
    }
}

/// What a report is asked for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The plans loaded (targets, tiers, schedules).
    pub plans: &'a [Plan],
    /// Only these plans (all when empty).
    pub only: Vec<String>,
    /// The runs it covers.
    pub window: Window,
    /// The instant it is made.
    pub now: DateTime<Utc>,
    /// The public run keys listed: with any, a journal not signed by one
    /// of them (a writer of the state could have forged it) counts as one
    /// whose chain does not verify: no figure, a finding naming it.
    pub keys: &'a crate::journal::RunKeys,
}

/// A run read from its journal: verified records, or why they are not.
struct ReadRun<'a> {
    journal: &'a JournalText,
    records: Vec<Record>,
    chain: Chain,
}

fn read<'a>(journal: &'a JournalText, keys: &crate::journal::RunKeys) -> ReadRun<'a> {
    let v = crate::journal::chain::verify_with_keys(
        &journal.run_id,
        &journal.text,
        journal.head.as_deref(),
        keys,
    );
    // Leniently parsed: a broken journal is still listed (with no figure).
    // With a tail past its head, only the records the head covers: a line
    // appended by a writer of the state is not the run's, and one that
    // parses must not change its figures.
    let covered = v.tail.as_ref().map_or(usize::MAX, |_| v.records);
    let records: Vec<Record> = (journal.text.lines().take(covered))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let count = records.len();
    // What was recorded beside the journal counts as the journal does
    // (a retroactive approval, a delivery), when it names a point of it.
    let late = crate::journal::late::anchored(&journal.text, &journal.late);
    let records = crate::runs::late::merge(&records, &late);
    let said = |b: &crate::journal::chain::Broken| {
        format!(
            "line {}{}: {}",
            b.line,
            b.seq.map(|s| format!(" (seq {s})")).unwrap_or_default(),
            b.reason
        )
    };
    let problem = v.unbelieved(keys.checks()).as_ref().map(said);
    // A tail past the head (lines appended that are not the run's): the
    // records the head covers stand, as for every reader that acts (one
    // junk line hides no run); the tail is named for the auditor.
    let tail = v.tail.as_ref().map(said);
    ReadRun {
        journal,
        chain: Chain {
            ok: (v.ok || tail.is_some()) && problem.is_none(),
            authenticated: v.authenticated && problem.is_none(),
            tail,
            records: count,
            problem,
        },
        records,
    }
}

/// Builds the report of `req` from `journals`.
pub fn build(req: &Request<'_>, journals: &[JournalText]) -> Report {
    build_with(req, journals, None)
}

/// The JSON report of one run of `plan` as it stands, from its journal
/// `text` ([`of_running`], rendered): what the engine hands the evidence
/// step to put in the run's pack ([`crate::steps::RenderReport`]).
pub fn running_json(plan: &Plan, run_id: &str, text: String) -> String {
    let journal = JournalText {
        run_id: run_id.to_string(),
        text,
        head: None,
        late: Vec::new(),
    };
    render::json(&of_running(plan, &journal, Utc::now()))
}

/// The report of one run of `plan` made by the run itself, while its
/// evidence step stores it (the report in an evidence pack): the run has
/// no final record yet, so it is judged by the steps that have ended, and
/// its row says so (`as_of`).
pub fn of_running(plan: &Plan, journal: &JournalText, now: DateTime<Utc>) -> Report {
    let started = journal
        .text
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<Record>(l).ok())
        .map_or(now, |r| r.at);
    let req = Request {
        plans: std::slice::from_ref(plan),
        only: vec![plan.name().to_string()],
        window: Window {
            from: started,
            to: now,
        },
        now,
        // The run's own journal, read by the run that writes it.
        keys: &crate::journal::NO_KEYS,
    };
    build_with(&req, std::slice::from_ref(journal), Some(&journal.run_id))
}

fn build_with(req: &Request<'_>, journals: &[JournalText], running: Option<&str>) -> Report {
    let in_scope = |name: &str| req.only.is_empty() || req.only.iter().any(|o| o == name);
    let mut plans: Vec<&Plan> = req.plans.iter().filter(|p| in_scope(p.name())).collect();
    plans.sort_by_key(|p| (p.tier.rank, p.name().to_string()));
    let targets = crate::runs::measure::targets(req.plans);
    let read_runs: Vec<ReadRun<'_>> = journals.iter().map(|j| read(j, req.keys)).collect();
    let drills = drills(&read_runs, &targets);
    let owned: Vec<Plan> = plans.iter().map(|p| (*p).clone()).collect();
    let cadences = crate::runs::schedule::cadence(&owned, &drills, req.now);
    // A run's own report (in its evidence pack) is made from its journal
    // alone: no drill history to judge it by, so no judgement (never a
    // "not verified" for want of the history).
    let history = running.is_none().then_some(drills.as_slice());
    let (mut rows, with_rows) = rows_in_window(req, &plans, &read_runs, &targets, history, running);
    let unreadable = unreadable(&read_runs, &with_rows);
    let verified: Vec<(String, Vec<Record>)> = (read_runs.iter())
        .filter(|r| r.chain.ok)
        .map(|r| (r.journal.run_id.clone(), r.records.clone()))
        .collect();
    let switches = crate::runs::watch::switches(&verified);
    let sections: Vec<PlanSection> = plans
        .iter()
        .zip(cadences)
        .map(|(p, cadence)| {
            let placement = placement(p, &switches, req.window);
            let verified = crate::runs::verified::by_definition(p, &cadence, req.now);
            let runs = rows.remove(p.name()).unwrap_or_default();
            let last_restore_test = (drills.iter())
                .filter(|d| d.plan == p.name() && d.restore_test.is_some())
                .max_by_key(|d| d.started)
                .cloned();
            let judged = Judged {
                cadence,
                placement,
                verified,
                last_restore_test,
            };
            section(p, judged, runs)
        })
        .collect();
    let findings = findings::derive(&sections, &unreadable, req.now);
    let controls = controls::map(&sections, req.window, req.now);
    Report {
        schema: SCHEMA,
        generated_at: req.now,
        window: req.window,
        scope: sections.iter().map(|s| s.plan.clone()).collect(),
        summary: Summary::of(&sections, &findings),
        plans: sections,
        findings,
        controls,
        watch: Vec::new(),
    }
}

/// Every drill of every journal that verifies, whatever its date: the
/// plans' cadence, and what a failover's plan was verified by.
fn drills(read_runs: &[ReadRun<'_>], targets: &BTreeMap<String, (u64, u64)>) -> Vec<DrillRun> {
    let mut drills = Vec::new();
    for r in read_runs {
        if r.chain.ok && crate::runs::schedule::usable(&r.records) {
            drills.extend(crate::runs::schedule::drill_runs(
                &r.journal.run_id,
                &r.records,
                r.chain.authenticated,
                targets,
            ));
        }
    }
    drills
}

/// Whether `plan` was verified when a failover or failback of it began
/// (pure, from journals): the definition the run journaled, judged
/// against the last passing drill that started before the run, aged to
/// the run's start. `None` for other kinds of run, and for a run that
/// journaled no definition.
fn verified_at_start(
    plan: &Plan,
    row: &RunRow,
    records: &[Record],
    drills: &[DrillRun],
) -> Option<crate::runs::verified::Verified> {
    if !matches!(row.kind, RunKind::Failover | RunKind::Failback) {
        return None;
    }
    let facts = records.iter().find_map(|r| match &r.event {
        Event::Inventory { plan: p, items } if p == plan.name() => Some(items),
        _ => None,
    })?;
    let before: Vec<DrillRun> = (drills.iter())
        .filter(|d| d.started < row.started)
        .cloned()
        .collect();
    let cadence = crate::runs::schedule::cadence(std::slice::from_ref(plan), &before, row.started);
    let scope = crate::runs::verified::Scope::Definition;
    let at = row.started;
    Some(crate::runs::verified::judge(
        plan,
        (facts, scope),
        cadence.first(),
        None,
        at,
    ))
}

/// The rows of the runs that started in the window, per plan in scope, and
/// the ids of the runs that have one. `drills`: every drill on record, to
/// judge a failover's plan as of its start (`None`: no history to judge by).
fn rows_in_window<'a>(
    req: &Request<'_>,
    plans: &[&Plan],
    read_runs: &'a [ReadRun<'a>],
    targets: &BTreeMap<String, (u64, u64)>,
    drills: Option<&[DrillRun]>,
    running: Option<&str>,
) -> (
    BTreeMap<String, Vec<RunRow>>,
    std::collections::BTreeSet<&'a str>,
) {
    let mut rows: BTreeMap<String, Vec<RunRow>> = BTreeMap::new();
    let mut with_rows = std::collections::BTreeSet::new();
    for r in read_runs {
        let Some(start) = r.records.first().filter(|f| {
            matches!(f.event, Event::RunStarted { .. })
                && f.at >= req.window.from
                && f.at <= req.window.to
        }) else {
            continue;
        };
        let Event::RunStarted { plans: ran, .. } = &start.event else {
            continue;
        };
        for p in ran {
            if let Some(plan) = plans.iter().find(|q| q.name() == p.name) {
                with_rows.insert(r.journal.run_id.as_str());
                let mut row = row(
                    r,
                    &p.name,
                    targets,
                    req.now,
                    running == Some(r.journal.run_id.as_str()),
                );
                let mode = match &start.event {
                    Event::RunStarted { flags, .. } => crate::journal::RunFlags::of(flags)
                        .ok()
                        .and_then(|f| f.mode),
                    _ => None,
                }
                .unwrap_or(crate::journal::RunMode::Failover { planned: false });
                row.predicted_rto = predicted(plans, &p.name, &row.target, &mode, ran.len());
                // Judged only from a journal that verifies: a forged one
                // could otherwise claim any definition.
                let history = drills.filter(|_| r.chain.ok);
                row.verified_at_start =
                    history.and_then(|d| verified_at_start(plan, &row, &r.records, d));
                rows.entry(p.name.clone()).or_default().push(row);
            }
        }
    }
    (rows, with_rows)
}

/// Journals that cannot be read as a run (empty, unreadable, no
/// run_started first) are findings in every report; so is a journal that
/// does not verify and has no row here: its start time and plans are
/// among what could have been edited, so the window and the plan filter
/// cannot be trusted to leave it out. Each: run id, what is wrong.
fn unreadable(
    read_runs: &[ReadRun<'_>],
    with_rows: &std::collections::BTreeSet<&str>,
) -> Vec<(String, String)> {
    read_runs
        .iter()
        .filter_map(|r| {
            let is_run = r
                .records
                .first()
                .is_some_and(|f| matches!(f.event, Event::RunStarted { .. }));
            let id = r.journal.run_id.clone();
            let problem = r.chain.problem.as_deref();
            if !is_run {
                Some((
                    id.clone(),
                    format!(
                        "the journal of {id} cannot be read as a run ({}); it is left out of every figure",
                        problem.unwrap_or(if r.journal.text.trim().is_empty() {
                            "it is empty, or could not be read"
                        } else {
                            "no run_started record"
                        })
                    ),
                ))
            } else if !r.chain.ok && !with_rows.contains(id.as_str()) {
                Some((
                    id.clone(),
                    format!(
                        "the journal of {id} does not verify ({}); it is listed whatever the report's window and plans, since its start and plans could have been edited",
                        problem.unwrap_or("broken")
                    ),
                ))
            } else {
                None
            }
        })
        .collect()
}

/// What a plan's section says of it beyond its runs, judged from every
/// journal (not only the window's).
struct Judged {
    cadence: Cadence,
    placement: Placement,
    verified: crate::runs::verified::Verified,
    last_restore_test: Option<DrillRun>,
}

/// Plan `p`'s section with its `runs` (sorted here, oldest first).
fn section(p: &Plan, judged: Judged, mut runs: Vec<RunRow>) -> PlanSection {
    let Judged {
        cadence,
        placement,
        verified,
        last_restore_test,
    } = judged;
    runs.sort_by(|a, b| (a.started, &a.run_id).cmp(&(b.started, &b.run_id)));
    PlanSection {
        plan: p.name().to_string(),
        description: p.spec.plan.description.clone(),
        owner: p.spec.plan.owner.clone(),
        tier: p.tier.name.clone(),
        regions: p.regions().to_vec(),
        rto_target_seconds: p.tier.rto.as_secs(),
        rpo_target_seconds: p.tier.rpo.as_secs(),
        approval_required: p.tier.approval == crate::plan::tiers::Approval::Required,
        cadence,
        placement,
        verified,
        restores_from_backups: restores_from_backups(p),
        last_restore_test,
        runs,
    }
}

/// Whether a data resource of `p` has its backups for a standby (its
/// failover restores): its drills are restore tests.
fn restores_from_backups(p: &Plan) -> bool {
    (crate::plan::kinds::each(&p.spec).into_iter()).any(|r| match r.shown() {
        crate::plan::kinds::Shown::Data(copies) => copies.restores(),
        _ => false,
    })
}

impl Summary {
    /// Each count with its heading, in the order the summary tables show
    /// them.
    pub fn counts(&self) -> [(&'static str, usize); 9] {
        [
            ("Runs", self.runs),
            ("PASS", self.pass),
            ("FAIL", self.fail),
            ("UNKNOWN", self.unknown),
            ("REFUSED", self.refused),
            ("Drills", self.drills),
            ("Failovers", self.failovers),
            ("Findings", self.findings),
            ("High", self.high_findings),
        ]
    }

    /// The counts over `sections`' rows and `findings`.
    fn of(sections: &[PlanSection], findings: &[findings::Finding]) -> Self {
        let mut summary = Self::default();
        for r in sections.iter().flat_map(|s| &s.runs) {
            summary.runs += 1;
            match r.verdict {
                Verdict::Pass => summary.pass += 1,
                Verdict::Fail(_) => summary.fail += 1,
                Verdict::Unknown(_) => summary.unknown += 1,
                Verdict::Refused(_) => summary.refused += 1,
            }
            match r.kind {
                RunKind::Drill => summary.drills += 1,
                RunKind::Failover | RunKind::Failback => summary.failovers += 1,
                _ => {}
            }
        }
        summary.findings = findings.len();
        summary.high_findings = findings
            .iter()
            .filter(|f| f.severity == findings::Severity::High)
            .count();
        summary
    }
}

/// What a run of this kind cannot undo (for the report and the
/// post-incident record).
pub fn rollback_scope(kind: RunKind, depth: Option<&str>) -> Option<String> {
    match (kind, depth) {
        (RunKind::Failover | RunKind::Failback, _) | (RunKind::Drill, Some("switchover")) => Some(
            "a promoted replica cannot be made a replica again: going back is a failback (reprotect, then fail over home), and writes accepted by the new primary stay there".into(),
        ),
        (RunKind::Restore, _) => Some(
            "a restored instance is a new database; the original is left as it was (delete it, or keep it for forensics)".into(),
        ),
        _ => None,
    }
}

/// A run's verdict for `plan`: REFUSED when a gate stopped it before
/// anything changed; a drill is judged as drills are
/// ([`crate::runs::drill::verdict`]); any other run passes when it ran to the end
/// and met every target it measured, fails when it halted or missed one, and
/// is unknown when it has not ended or a figure is unknown.
pub fn verdict(
    kind: RunKind,
    records: &[Record],
    outcome: Outcome,
    plan: &str,
    m: Option<&crate::runs::measure::PlanMeasure>,
) -> Verdict {
    match outcome {
        Outcome::Refused => return Verdict::Refused(refusal(records, plan)),
        Outcome::Unfinished => {
            return Verdict::Unknown(
                "has not finished (still running, or its process died: `drctl runs resume`)".into(),
            );
        }
        _ => {}
    }
    if kind == RunKind::Drill {
        return crate::runs::drill::verdict(records, outcome, plan, m);
    }
    if let Some(f) = crate::runs::measure::timings(records)
        .iter()
        .filter(|s| s.step.starts_with(&format!("{plan}/")))
        .find(|s| s.state == crate::runs::replay::StepState::Failed)
    {
        let why = f.error.as_deref().unwrap_or("failed");
        return Verdict::Fail(format!("step {} failed: {}", f.step, split_hint(why).0));
    }
    if outcome == Outcome::Failed {
        return Verdict::Fail("the run halted".into());
    }
    match kind {
        // Nothing to measure: they did their job or not.
        RunKind::Reprotect | RunKind::Sweep => return Verdict::Pass,
        _ => {}
    }
    match m {
        Some(m) => Verdict::of_measures(m),
        None => Verdict::Unknown("nothing was measured".into()),
    }
}

#[cfg(test)]
mod tests;
