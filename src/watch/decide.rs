//! Decide: from every observer's latest report, is the plan's active region
//! down, is a standby fit to take over, and what may watch do about it.
//! Pure functions of plain data and the time, so that the rules (and the
//! matrix of outages they must survive) are tested without a cloud or a
//! clock (`tests.rs`).
//!
//! The brakes, in the order they apply:
//! 1. **Enough eyes.** Fewer fresh, unimpaired observers than the quorum:
//!    watch is blind and does nothing (`blind`).
//! 2. **Quorum.** A region is down only when `quorum` observers have each
//!    seen it fail `failures` times in a row, each report fresh. One
//!    observer alone that sees it down is named in a warning (`suspect`):
//!    its own network is the likelier culprit.
//! 3. **Veto** of the episode, and **another run** holding the plan.
//! 4. **Fitness** of the target: its API answers, its lag is within the RPO
//!    (or within `accept_data_loss`), its checks pass where they can.
//! 5. **Mode**: observe tells, propose waits out the veto window, auto
//!    starts; the **velocity cap** turns a start into a proposal.
//!
//! Watch never fails back: once home has been healthy (by quorum) for
//! longer than the failover took, it proposes a failback, once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::journal::watch::WatchDecision;
use crate::plan::duration::{after, format_duration, from_secs_f64};
use crate::plan::rpo;
use crate::plan::watch::{WatchMode, WatchRules};
use crate::runs::watch::PlanHistory;

/// One region as one observer last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionView {
    /// The last observation passed (API answered, checks passed, no alarm).
    pub ok: bool,
    /// Its API answered.
    pub api_ok: bool,
    /// Its checks passed (`None`: it has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks_ok: Option<bool>,
    /// Failed observations in a row.
    pub failures: u32,
    /// The first failed observation of this run of failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// When the failures reached the plan's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<DateTime<Utc>>,
    /// Passing since (`None` while failing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<DateTime<Utc>>,
    /// The replica's lag, when the region holds a replica and it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_seconds: Option<f64>,
    /// The region holds a replica whose lag should have been read.
    #[serde(default)]
    pub lag_expected: bool,
    /// Whether the plan's databases there are replicas (`None`: none read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<bool>,
    /// What the observation found, in a line.
    pub detail: String,
}

/// What one round read of one region (see `observe.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    /// The region's API answered (`Err`: why not).
    pub api: Result<(), String>,
    /// Each check: `Err` with its answer when it failed.
    pub checks: Vec<Result<(), String>>,
    /// Alarms in ALARM.
    pub alarms: Vec<String>,
    /// What is wrong with the setup, not the region: named alarms missing
    /// or unreadable. Reported beside the observation; never fails it.
    pub setup: Vec<String>,
    /// The replica's lag, when read.
    pub lag: Option<Duration>,
    /// The region holds a replica whose lag was asked for.
    pub lag_expected: bool,
    /// Whether the plan's databases there are replicas (`None`: none read).
    pub replica: Option<bool>,
}

impl Signals {
    /// Whether the observation passed.
    pub fn ok(&self) -> bool {
        self.api.is_ok() && self.checks.iter().all(Result::is_ok) && self.alarms.is_empty()
    }

    /// What failed, in a line (or "healthy").
    pub fn detail(&self) -> String {
        let mut why: Vec<String> = Vec::new();
        if let Err(e) = &self.api {
            why.push(format!("API: {e}"));
        }
        why.extend(self.checks.iter().filter_map(|c| c.clone().err()));
        why.extend(self.alarms.iter().map(|a| format!("alarm {a}")));
        let setup = if self.setup.is_empty() {
            String::new()
        } else {
            format!(" (setup: {})", self.setup.join("; "))
        };
        if why.is_empty() {
            format!("healthy{setup}")
        } else {
            format!("{}{setup}", why.join("; "))
        }
    }
}

/// This observer's view of a region after one more observation.
pub fn update(
    prev: Option<&RegionView>,
    s: &Signals,
    threshold: u32,
    now: DateTime<Utc>,
) -> RegionView {
    let ok = s.ok();
    let checks_ok = (!s.checks.is_empty()).then(|| s.checks.iter().all(Result::is_ok));
    let lag_seconds = s.lag.map(|l| l.as_secs_f64());
    if ok {
        let healthy_since = prev
            .filter(|p| p.ok)
            .and_then(|p| p.healthy_since)
            .unwrap_or(now);
        return RegionView {
            ok,
            api_ok: true,
            checks_ok,
            failures: 0,
            failing_since: None,
            down_since: None,
            healthy_since: Some(healthy_since),
            lag_seconds,
            lag_expected: s.lag_expected,
            replica: s.replica,
            detail: s.detail(),
        };
    }
    let was_failing = prev.filter(|p| !p.ok);
    let failures = was_failing.map_or(0, |p| p.failures).saturating_add(1);
    let failing_since = was_failing.and_then(|p| p.failing_since).unwrap_or(now);
    let down_since = was_failing
        .and_then(|p| p.down_since)
        .or((failures >= threshold).then_some(now));
    RegionView {
        ok,
        api_ok: s.api.is_ok(),
        checks_ok,
        failures,
        failing_since: Some(failing_since),
        down_since,
        healthy_since: None,
        lag_seconds,
        lag_expected: s.lag_expected,
        replica: s.replica,
        detail: s.detail(),
    }
}

/// One observer's latest report on one plan (signed on the board).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The observer.
    pub observer: String,
    /// The plan.
    pub plan: String,
    /// When the round ended.
    pub at: DateTime<Utc>,
    /// Rounds so far.
    pub round: u64,
    /// Why this observer does not trust itself this round (it reached no
    /// region's API at all: its own network is the likelier fault).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impaired: Option<String>,
    /// Each region of the plan.
    pub regions: BTreeMap<String, RegionView>,
}

/// Whether observers agree a region is down.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tally {
    /// Observers that judge it down.
    pub down: Vec<String>,
    /// Fresh observers that do not.
    pub up: Vec<String>,
    /// Observers left out, with why.
    pub ignored: Vec<String>,
    /// Whether the quorum is reached.
    pub reached: bool,
    /// The earliest first failure among the down votes.
    pub detected_at: Option<DateTime<Utc>>,
    /// When the quorum-th vote came in.
    pub quorum_at: Option<DateTime<Utc>>,
}

fn usable<'a>(r: &'a Report, rules: &WatchRules, now: DateTime<Utc>) -> Result<&'a Report, String> {
    // A report from more than an interval ahead was stamped by a clock that
    // runs fast: it would never go stale, so it does not count.
    if (r.at - now)
        .to_std()
        .is_ok_and(|ahead| ahead > rules.interval)
    {
        return Err(format!(
            "{} (its clock is ahead: report stamped {})",
            r.observer, r.at
        ));
    }
    let age = (now - r.at).to_std().unwrap_or_default();
    if age > rules.freshness {
        return Err(format!(
            "{} (stale: last report {} ago)",
            r.observer,
            format_duration(age)
        ));
    }
    if let Some(why) = &r.impaired {
        return Err(format!("{} (impaired: {why})", r.observer));
    }
    Ok(r)
}

/// Counts the votes on `region`.
pub fn tally(reports: &[Report], region: &str, rules: &WatchRules, now: DateTime<Utc>) -> Tally {
    let mut t = Tally::default();
    let mut downs: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
    for r in reports {
        let r = match usable(r, rules, now) {
            Ok(r) => r,
            Err(why) => {
                t.ignored.push(why);
                continue;
            }
        };
        match r.regions.get(region) {
            None => t
                .ignored
                .push(format!("{} (did not observe {region})", r.observer)),
            Some(v) if !v.ok && v.failures >= rules.failures => {
                t.down.push(r.observer.clone());
                let since = v.failing_since.unwrap_or(r.at);
                downs.push((since, v.down_since.unwrap_or(r.at)));
            }
            Some(_) => t.up.push(r.observer.clone()),
        }
    }
    t.reached = !t.down.is_empty() && t.down.len() >= rules.quorum as usize;
    t.detected_at = downs.iter().map(|d| d.0).min();
    let mut at: Vec<DateTime<Utc>> = downs.iter().map(|d| d.1).collect();
    at.sort();
    t.quorum_at = at.get(rules.quorum.saturating_sub(1) as usize).copied();
    t
}

/// What the board holds for the current episode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Episode {
    /// The proposal, when one was made: its deadline and target.
    pub proposal: Option<Proposal>,
    /// The veto, when someone vetoed: who and why.
    pub veto: Option<String>,
    /// The observer that claimed the start, when one did.
    pub claimed_by: Option<String>,
    /// When it claimed it.
    pub claimed_at: Option<DateTime<Utc>>,
    /// Why the failover watch claimed did not start, when it did not.
    pub start_failed: Option<String>,
    /// Whether a failback was proposed already.
    pub failback_proposed: bool,
    /// Whether the velocity cap turned its start into a proposal: it is
    /// never started by watch afterwards (a person decides).
    pub capped: bool,
    /// Whether the episode was closed (its region recovered).
    pub closed: bool,
    /// Whether anything was proposed, started or told for it.
    pub active: bool,
}

/// A proposed failover (the board's `proposal.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Who proposed.
    pub observer: String,
    /// The region judged down.
    pub region: String,
    /// The target.
    pub target: String,
    /// When the failover starts unless vetoed.
    pub deadline: DateTime<Utc>,
    /// The first failed observation.
    pub detected_at: DateTime<Utc>,
    /// When the quorum formed.
    pub quorum_at: DateTime<Utc>,
    /// The votes.
    pub votes: Vec<String>,
}

/// Everything a decision reads.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    /// The plan.
    pub plan: &'a str,
    /// Its home region.
    pub home: &'a str,
    /// Its regions, home first.
    pub regions: &'a [String],
    /// Its rules.
    pub rules: &'a WatchRules,
    /// Its tier's RPO.
    pub rpo: Duration,
    /// Whether its checks can pass in a standby before scaling (every
    /// standby group already runs instances).
    pub checks_before_scaling: bool,
    /// Its runs, by the journals.
    pub history: &'a PlanHistory,
    /// A live lock holder (a run of another process), if any.
    pub held_by: Option<String>,
    /// Every observer's latest report.
    pub reports: &'a [Report],
    /// The episode's board.
    pub episode: &'a Episode,
    /// Failovers watch started within the velocity window, and the cap.
    pub velocity: (usize, usize),
    /// Now.
    pub now: DateTime<Utc>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Nothing.
    Nothing,
    /// Write the proposal (create-only; the writer tells people).
    Propose(Proposal),
    /// Claim the start (create-only) and start the failover.
    Start(Proposal),
    /// Tell people once (create-only marker `name` on the episode).
    Tell(&'static str),
    /// Release a start claim that no run followed ([`orphaned`]): mark the
    /// episode's start failed (create-only `start-failed`, with this
    /// reason), then tell people once (`start_failed`).
    Release(String),
}

/// A decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The decision.
    pub decision: WatchDecision,
    /// Why, in a sentence.
    pub why: String,
    /// The region judged down (or home, for a failback).
    pub region: Option<String>,
    /// The target chosen.
    pub target: Option<String>,
    /// The exact command a person would run.
    pub command: Option<String>,
    /// Propose mode: when the failover starts unless vetoed.
    pub deadline: Option<DateTime<Utc>>,
    /// The active region's tally.
    pub tally: Tally,
    /// What to do.
    pub next: Next,
}

impl Verdict {
    fn new(decision: WatchDecision, why: impl Into<String>, tally: Tally) -> Self {
        Self {
            decision,
            why: why.into(),
            region: None,
            target: None,
            command: None,
            deadline: None,
            tally,
            next: Next::Nothing,
        }
    }
}

/// How many fresh, unimpaired observers saw `region` pass their last
/// observation.
pub fn answering(
    reports: &[Report],
    region: &str,
    rules: &WatchRules,
    now: DateTime<Utc>,
) -> usize {
    reports
        .iter()
        .filter_map(|r| usable(r, rules, now).ok())
        .filter(|r| r.regions.get(region).is_some_and(|v| v.ok))
        .count()
}

/// Observers fresh and unimpaired.
pub fn fresh(reports: &[Report], rules: &WatchRules, now: DateTime<Utc>) -> Vec<String> {
    reports
        .iter()
        .filter_map(|r| usable(r, rules, now).ok())
        .map(|r| r.observer.clone())
        .collect()
}

/// The first standby (plan order) fit to take over, or why none is.
pub fn fitness(s: &Situation<'_>, down: &str) -> Result<String, String> {
    let mut why = Vec::new();
    for region in s.regions.iter().filter(|r| *r != down) {
        match fit(s, region) {
            Ok(()) => return Ok(region.clone()),
            Err(w) => why.push(format!("{region}: {w}")),
        }
    }
    Err(why.join("; "))
}

/// Whether `region` is fit to take over, or why not.
pub fn fit(s: &Situation<'_>, region: &str) -> Result<(), String> {
    let views: Vec<&RegionView> = s
        .reports
        .iter()
        .filter_map(|r| usable(r, s.rules, s.now).ok())
        .filter_map(|r| r.regions.get(region))
        .collect();
    if views.is_empty() {
        return Err("no fresh observation".into());
    }
    let answering = views.iter().filter(|v| v.api_ok).count();
    if answering * 2 <= views.len() {
        return Err(format!(
            "its API does not answer ({answering} of {} observers reach it)",
            views.len()
        ));
    }
    // A standby whose database is not a replica (the old primary of a
    // region failed away from, before `drctl reprotect`) holds old data:
    // failing over to it would lose every write since.
    if views.iter().any(|v| v.replica == Some(false)) {
        return Err(format!(
            "its database is not a replica of the active one (reprotect it first: `drctl reprotect --plan {}`)",
            s.plan
        ));
    }
    // The highest lag any observer read: the conservative one.
    let lag = views
        .iter()
        .filter_map(|v| v.lag_seconds)
        .fold(None::<f64>, |m, l| Some(m.map_or(l, |m| m.max(l))));
    // The RPO gate's rule (`plan::rpo`), so that watch never judges fit a
    // target the gate would then refuse; an unknown lag is judged only
    // where a replica's lag was asked for.
    let lag = lag.map(from_secs_f64);
    let accepted = (s.rules.accept_data_loss).map(|a| rpo::accepted_beyond(s.rpo, a));
    let judged = lag.is_some() || views.iter().any(|v| v.lag_expected);
    if judged && !rpo::allows(lag, s.rpo, accepted) {
        return Err(match lag {
            Some(l) => format!(
                "replica lag {} is above the RPO {}{}",
                format_duration(l),
                format_duration(s.rpo),
                s.rules
                    .accept_data_loss
                    .map(|a| format!(" plus the accepted {}", format_duration(a)))
                    .unwrap_or_default()
            ),
            None => "replica lag unknown (the tier's RPO cannot be checked; set [watch] accept_data_loss to allow it)"
                .into(),
        });
    }
    if s.checks_before_scaling && views.iter().all(|v| v.checks_ok == Some(false)) {
        return Err(format!("its checks fail ({})", views[0].detail));
    }
    Ok(())
}

/// The command a person runs to fail the plan over.
pub fn failover_command(plan: &str, target: &str) -> String {
    format!("drctl failover --plan {plan} --to {target} --emergency")
}

/// Decides.
pub fn decide(s: &Situation<'_>) -> Verdict {
    let active = s.history.active.as_str();
    let tally = tally(s.reports, active, s.rules, s.now);
    let eyes = fresh(s.reports, s.rules, s.now);
    if eyes.len() < s.rules.quorum as usize {
        return Verdict::new(
            WatchDecision::Blind,
            format!(
                "only {} fresh observer(s) ({}) for a quorum of {}: watch cannot judge {active} and does nothing",
                eyes.len(),
                if eyes.is_empty() {
                    "none".into()
                } else {
                    eyes.join(", ")
                },
                s.rules.quorum
            ),
            tally,
        );
    }
    if !tally.reached {
        return not_down(s, active, tally);
    }
    down(s, active, tally)
}

fn not_down(s: &Situation<'_>, active: &str, tally: Tally) -> Verdict {
    if !tally.down.is_empty() {
        let why = format!(
            "{} sees {active} down, {} do not (quorum {}): no failover; {} network may be at fault",
            tally.down.join(", "),
            if tally.up.is_empty() {
                "others".into()
            } else {
                tally.up.join(", ")
            },
            s.rules.quorum,
            if tally.down.len() == 1 {
                "its own"
            } else {
                "their own"
            }
        );
        let mut v = Verdict::new(WatchDecision::Suspect, why, tally);
        v.region = Some(active.to_string());
        if !v.tally.up.is_empty() {
            v.next = Next::Tell("suspect");
        }
        return v;
    }
    if active != s.home
        && let Some(v) = failback(s, tally.clone())
    {
        return v;
    }
    let failing: Vec<String> = s
        .reports
        .iter()
        .filter_map(|r| usable(r, s.rules, s.now).ok())
        .filter(|r| r.regions.get(active).is_some_and(|v| !v.ok))
        .map(|r| {
            let n = r.regions.get(active).map_or(0, |v| v.failures);
            format!("{} ({n} of {})", r.observer, s.rules.failures)
        })
        .collect();
    let why = if failing.is_empty() {
        format!(
            "{active} answers ({} of {} observers)",
            tally.up.len(),
            tally.up.len() + tally.ignored.len()
        )
    } else {
        format!(
            "{active} is failing for {}, below the threshold of {} failures in a row: not judged down yet",
            failing.join(", "),
            s.rules.failures
        )
    };
    Verdict::new(WatchDecision::Healthy, why, tally)
}

/// Home healthy (by quorum) for longer than the failover took: propose a
/// failback, once. Never started by watch.
fn failback(s: &Situation<'_>, tally: Tally) -> Option<Verdict> {
    let last = s.history.last.as_ref()?;
    let took = last.took(last.watch.as_ref().map(|w| w.detected_at))?;
    let mut since: Vec<DateTime<Utc>> = s
        .reports
        .iter()
        .filter_map(|r| usable(r, s.rules, s.now).ok())
        .filter_map(|r| r.regions.get(s.home))
        .filter(|v| v.ok)
        .filter_map(|v| v.healthy_since)
        .collect();
    since.sort();
    let quorum_since = since
        .get(s.rules.quorum.saturating_sub(1) as usize)
        .copied()?;
    let healthy = (s.now - quorum_since).to_std().unwrap_or_default();
    if healthy <= took {
        return None;
    }
    let mut v = Verdict::new(
        WatchDecision::FailbackProposed,
        format!(
            "home {} has been healthy for {} (by {} observers), longer than the failover took ({}): a failback is proposed; watch never starts one",
            s.home,
            format_duration(healthy),
            since.len(),
            format_duration(took)
        ),
        tally,
    );
    v.region = Some(s.home.to_string());
    v.target = Some(s.home.to_string());
    v.command = Some(format!("drctl failback --plan {}", s.plan));
    if !s.episode.failback_proposed {
        v.next = Next::Tell("failback");
    }
    Some(v)
}

/// A verdict about the active region, with its target and the command
/// a person would run.
fn about(s: &Situation<'_>, active: &str, v: Verdict, target: Option<String>) -> Verdict {
    Verdict {
        region: Some(active.to_string()),
        command: target.as_ref().map(|t| failover_command(s.plan, t)),
        target,
        ..v
    }
}

/// The active region is down by quorum: the brakes (veto, another run, a
/// start already claimed, the target's fitness), then the mode.
fn down(s: &Situation<'_>, active: &str, tally: Tally) -> Verdict {
    let votes = format!(
        "{} of {} observers ({}) saw {active} fail {} times in a row",
        tally.down.len(),
        tally.down.len() + tally.up.len(),
        tally.down.join(", "),
        s.rules.failures
    );
    let brake =
        |d, why: String, target| about(s, active, Verdict::new(d, why, tally.clone()), target);
    if let Some(veto) = &s.episode.veto {
        let why = format!("{votes}; the failover was vetoed ({veto})");
        return brake(WatchDecision::Vetoed, why, None);
    }
    let running = s.history.running.as_ref().map(|r| r.run_id.clone());
    if let Some(run) = running.or(s.held_by.clone()) {
        return brake(
            WatchDecision::Busy,
            format!("{votes}; run {run} holds the plan"),
            None,
        );
    }
    if let Some(by) = &s.episode.claimed_by {
        let target = s.episode.proposal.as_ref().map(|p| p.target.clone());
        if let Some(err) = &s.episode.start_failed {
            let why =
                format!("{votes}; the failover {by} started did not run ({err}): a person decides");
            let mut v = brake(WatchDecision::StartFailed, why, target);
            v.next = Next::Tell("start_failed");
            return v;
        }
        if let Some(err) = orphaned(s) {
            let why =
                format!("{votes}; the failover {by} started did not run ({err}): a person decides");
            let mut v = brake(WatchDecision::StartFailed, why, target);
            v.next = Next::Release(err);
            return v;
        }
        let why = format!("{votes}; {by} started the failover");
        return brake(WatchDecision::Started, why, target);
    }
    if s.episode.capped {
        let target = s.episode.proposal.as_ref().map(|p| p.target.clone());
        let why = format!(
            "{votes}; the velocity cap turned this episode's failover into a proposal: watch does not start it, a person decides"
        );
        return brake(WatchDecision::Capped, why, target);
    }
    match fitness(s, active) {
        Ok(target) => by_mode(s, active, tally, &votes, target),
        Err(why) => {
            let why = format!("{votes}; no standby is fit: {why}");
            let mut v = brake(WatchDecision::Unfit, why, None);
            v.next = Next::Tell("unfit");
            v
        }
    }
}

/// The least time a start claim waits for its run's journal before it is
/// released ([`start_bound`]): a run journals its start seconds after it
/// begins (the store's probe, the plan's lease, the operator's identity).
pub const MIN_START_BOUND: Duration = Duration::from_secs(60);

/// How long a start claim may go without a run journal following it: the
/// plan's `freshness` (how long an observation counts; default
/// `interval × (failures + 1)`), at least [`MIN_START_BOUND`]. By then the
/// claimer has reported again, or is known silent, and a run it started
/// has journaled its start.
pub fn start_bound(rules: &WatchRules) -> Duration {
    rules.freshness.max(MIN_START_BOUND)
}

/// Why the episode's start claim is orphaned, when it is: no failover or
/// failback of the plan has started since the claim, and [`start_bound`]
/// has passed (its claimer died between its claim and its run, or its run
/// never began). `None` while the claim may still be followed.
pub fn orphaned(s: &Situation<'_>) -> Option<String> {
    let at = s.episode.claimed_at?;
    if s.history.latest.as_ref().is_some_and(|r| r.started >= at) {
        return None;
    }
    let bound = start_bound(s.rules);
    let waited = (s.now - at).to_std().ok()?;
    (waited > bound).then(|| {
        format!(
            "no run journal followed its start claim within {} (claimed {} ago): the claim is released",
            format_duration(bound),
            format_duration(Duration::from_secs(waited.as_secs()))
        )
    })
}

/// Down by quorum, `target` fit: what the mode (and the velocity cap) allow.
fn by_mode(s: &Situation<'_>, active: &str, tally: Tally, votes: &str, target: String) -> Verdict {
    let window = match s.rules.mode {
        WatchMode::Propose => s.rules.veto_window,
        _ => Duration::ZERO,
    };
    let proposal = Proposal {
        observer: String::new(),
        region: active.to_string(),
        target: target.clone(),
        deadline: after(s.now, window),
        detected_at: tally.detected_at.unwrap_or(s.now),
        quorum_at: tally.quorum_at.unwrap_or(s.now),
        votes: tally.down.clone(),
    };
    let at = |t: DateTime<Utc>| t.format("%H:%M:%S UTC").to_string();
    let (decision, why, next, deadline) = match (s.rules.mode, &s.episode.proposal) {
        (WatchMode::Observe, _) => (
            WatchDecision::RegionDown,
            format!("{votes}; {target} is fit; mode observe: nobody is failed over"),
            Next::Tell("down"),
            None,
        ),
        _ if s.velocity.0 >= s.velocity.1 => (
            WatchDecision::Capped,
            format!(
                "{votes}; {target} is fit, but watch started {} failover(s) within its velocity window (cap {}): proposed, not started",
                s.velocity.0, s.velocity.1
            ),
            Next::Tell("capped"),
            None,
        ),
        (WatchMode::Propose, None) => (
            WatchDecision::Proposed,
            format!(
                "{votes}; {target} is fit: the failover starts at {} unless vetoed",
                at(proposal.deadline)
            ),
            Next::Propose(proposal.clone()),
            Some(proposal.deadline),
        ),
        (WatchMode::Propose, Some(p)) if s.now < p.deadline => (
            WatchDecision::Proposed,
            format!(
                "{votes}; the failover to {target} starts at {} unless vetoed (`drctl watch veto --plan {} --reason ...`)",
                at(p.deadline),
                s.plan
            ),
            Next::Nothing,
            Some(p.deadline),
        ),
        (WatchMode::Propose, Some(p)) if p.target != target && fit(s, &p.target).is_err() => (
            WatchDecision::Unfit,
            format!(
                "{votes}; the proposed target {} is no longer fit ({}); {target} is: watch does not start a failover nobody was told of, a person decides",
                p.target,
                fit(s, &p.target).err().unwrap_or_default()
            ),
            Next::Tell("unfit"),
            None,
        ),
        (WatchMode::Propose, Some(p)) => (
            WatchDecision::Started,
            format!(
                "{votes}; the veto window ended at {} with no veto: failing over to {}",
                at(p.deadline),
                p.target
            ),
            Next::Start(p.clone()),
            None,
        ),
        (WatchMode::Auto, _) => (
            WatchDecision::Started,
            format!("{votes}; {target} is fit; mode auto: failing over"),
            Next::Start(proposal),
            None,
        ),
    };
    // A proposal starts to the target people were told of.
    let target = match &next {
        Next::Start(p) => p.target.clone(),
        _ => target,
    };
    let mut v = about(s, active, Verdict::new(decision, why, tally), Some(target));
    v.next = next;
    v.deadline = deadline;
    v
}
