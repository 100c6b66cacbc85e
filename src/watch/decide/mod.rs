//! Decide: from every observer's latest report, is the plan's active region
//! down, is a standby fit to take over, and what may watch do about it.
//! Pure functions of plain data and the time, so that the rules (and the
//! matrix of outages they must survive) are tested without a cloud or a
//! clock (`tests.rs`).
//!
//! Only listed observers count, each once (`places`: the operators' list;
//! the reports come verified from `shared.rs`), and what each says of
//! itself is bounded: a report stamped ahead of the clock, or whose times
//! contradict each other, does not count.
//!
//! The brakes, in the order they apply:
//! 1. **Enough eyes.** Fresh, unimpaired observers in fewer distinct places
//!    than the quorum: watch is blind and does nothing (`blind`).
//! 2. **Quorum.** A region is down only when observers in `quorum` distinct
//!    places have each seen it fail `failures` times in a row, each report
//!    fresh (an observer whose place is not given is a place of its own).
//!    One observer alone that sees it down is named in a warning
//!    (`suspect`): its own network is the likelier culprit.
//! 3. **Veto** of the episode, and **another run** holding the plan; a
//!    proposal or start claim on the board that does not verify, or a
//!    proposal whose veto window is shorter than the plan's (made before
//!    the outage, or with its deadline already past): a person decides.
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

mod down;

use down::down;
pub use down::{MIN_START_BOUND, orphaned, proposal_problem, start_bound};

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
    /// When the round began (its clock: what it judged was read from then).
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
    /// The distinct places of the observers that judge it down.
    pub places: Vec<String>,
    /// The quorum-th earliest first failure among the down votes: when the
    /// outage began by the word of a quorum (fewer than `quorum` observers
    /// cannot move it earlier, whatever they say).
    pub onset: Option<DateTime<Utc>>,
    /// Observers that judge it down.
    pub down: Vec<String>,
    /// Fresh observers that do not.
    pub up: Vec<String>,
    /// Observers left out, with why.
    pub ignored: Vec<String>,
    /// Whether the quorum is reached.
    pub reached: bool,
    /// The earliest first failure among the down votes, no earlier than
    /// `freshness` before the [`Tally::onset`].
    pub detected_at: Option<DateTime<Utc>>,
    /// When the quorum-th vote came in.
    pub quorum_at: Option<DateTime<Utc>>,
}

/// Why a report's own times contradict each other, if they do: each
/// region's `failing_since`, `down_since` and `healthy_since` are taken by
/// the same clock as the report's `at`, before it; a passing view has no
/// failures and a failing one at least one.
pub fn incoherent(r: &Report) -> Option<String> {
    let oldest = crate::plan::duration::before(r.at, OLDEST_REPORTED);
    for (region, v) in &r.regions {
        let times = [
            ("failing_since", v.failing_since),
            ("down_since", v.down_since),
            ("healthy_since", v.healthy_since),
        ];
        if let Some((name, t)) = times
            .iter()
            .find_map(|(n, t)| t.filter(|t| *t > r.at).map(|t| (n, t)))
        {
            return Some(format!(
                "{region}: its {name} {t} is after the report's own time {}",
                r.at
            ));
        }
        // A failure far before the report says nothing any round can use,
        // and arithmetic on it is where a forged year -262143 would
        // overflow: not admitted. (A region may be healthy for years.)
        if let Some((name, t)) = times[..2]
            .iter()
            .find_map(|(n, t)| t.filter(|t| *t < oldest).map(|t| (n, t)))
        {
            return Some(format!(
                "{region}: its {name} {t} is more than {} before the report's own time {}",
                format_duration(OLDEST_REPORTED),
                r.at
            ));
        }
        if let (Some(f), Some(d)) = (v.failing_since, v.down_since)
            && d < f
        {
            return Some(format!(
                "{region}: judged down ({d}) before it began failing ({f})"
            ));
        }
        if v.ok && (v.failures > 0 || v.failing_since.is_some() || v.down_since.is_some()) {
            return Some(format!("{region}: passing, with failures"));
        }
        if !v.ok && (v.failures == 0 || v.failing_since.is_none()) {
            return Some(format!("{region}: failing, with no failure counted"));
        }
    }
    None
}

/// How long before its own time a report may say a region began failing
/// (or was judged down): longer than any outage a round acts on, short of
/// times no clock gives.
pub const OLDEST_REPORTED: Duration = Duration::from_secs(366 * 24 * 3600);

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
    if let Some(why) = incoherent(r) {
        return Err(format!(
            "{} (its report contradicts itself: {why})",
            r.observer
        ));
    }
    Ok(r)
}

/// The place of `observer` (its own name when not listed with one).
fn place_of<'a>(places: &'a BTreeMap<String, String>, observer: &'a str) -> &'a str {
    places.get(observer).map_or(observer, String::as_str)
}

/// The distinct places of `observers`.
fn distinct<'a>(places: &'a BTreeMap<String, String>, observers: &'a [String]) -> Vec<String> {
    let mut out: Vec<String> = observers
        .iter()
        .map(|o| place_of(places, o).to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The reports that count: those of listed observers (`places`), each
/// once; and why the others do not.
pub fn listed_once(
    reports: &[Report],
    places: &BTreeMap<String, String>,
) -> (Vec<Report>, Vec<String>) {
    let mut out: Vec<Report> = Vec::new();
    let mut ignored = Vec::new();
    for r in reports {
        if !places.contains_key(&r.observer) {
            ignored.push(format!("{} (not a listed observer)", r.observer));
        } else if out.iter().any(|o| o.observer == r.observer) {
            ignored.push(format!("{} (a second report: counted once)", r.observer));
        } else {
            out.push(r.clone());
        }
    }
    (out, ignored)
}

/// Counts the votes on `region`: reached when observers in `quorum`
/// distinct places (`places`) vote it down.
pub fn tally(
    reports: &[Report],
    places: &BTreeMap<String, String>,
    region: &str,
    rules: &WatchRules,
    now: DateTime<Utc>,
) -> Tally {
    let mut t = Tally::default();
    let mut downs: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = Vec::new();
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
                let place = place_of(places, &r.observer).to_string();
                downs.push((since, v.down_since.unwrap_or(r.at), place));
            }
            Some(_) => t.up.push(r.observer.clone()),
        }
    }
    let quorum = rules.quorum as usize;
    t.places = distinct(places, &t.down);
    t.reached = !t.down.is_empty() && t.places.len() >= quorum;
    let mut since: Vec<DateTime<Utc>> = downs.iter().map(|d| d.0).collect();
    since.sort();
    t.onset = since.get(quorum.saturating_sub(1)).copied();
    // The first failure, but not more than a `freshness` before the onset:
    // honest observers of one outage see it fail within a round of each
    // other, so an earlier one is another fault (an observer's own, long
    // partitioned) or a lie, and would start the run's RTO clock early.
    t.detected_at = since.first().map(|first| match t.onset {
        Some(onset) => (*first).max(crate::plan::duration::before(onset, rules.freshness)),
        None => *first,
    });
    // When the quorum-th distinct place voted.
    let mut at: Vec<(DateTime<Utc>, &str)> = downs.iter().map(|d| (d.1, d.2.as_str())).collect();
    at.sort();
    let mut seen: Vec<&str> = Vec::new();
    for (when, place) in at {
        if !seen.contains(&place) {
            seen.push(place);
        }
        if seen.len() == quorum.max(1) {
            t.quorum_at = Some(when);
            break;
        }
    }
    t
}

/// What the board holds for the current episode (`shared.rs` reads it and
/// checks who signed each object).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Episode {
    /// The proposal, when one was made and signed by the listed observer
    /// it names: its deadline and target.
    pub proposal: Option<Proposal>,
    /// Why the object in the proposal's place is not one that counts
    /// (unsigned, an unlisted key, another observer's name...): it holds
    /// the place, so watch starts nothing in this episode.
    pub false_proposal: Option<String>,
    /// Why the object in the start claim's place is not one that counts.
    pub false_claim: Option<String>,
    /// Every object of the episode that did not verify, with why and what
    /// was done with it (`<board key>: <why>; <ignored or honoured>`).
    pub unverified: Vec<String>,
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
    /// Whether the episode was closed (its region recovered, by the word
    /// of observers in `quorum` distinct places).
    pub closed: bool,
    /// The observers that signed their own closing marker (each says the
    /// region recovered; `quorum` places of them close the episode).
    pub closed_by: Vec<String>,
    /// Whether anything was proposed, started or told for it.
    pub active: bool,
    /// When each listed observer first saw the proposal, by its own signed
    /// `seen-<observer>` marker on the board, about this proposal.
    pub seen: BTreeMap<String, DateTime<Utc>>,
    /// What names the proposal as stored (`shared::proposal_digest`), when
    /// one counts: first sights and its notice name it.
    pub proposal_digest: Option<String>,
    /// When this observer first saw the proposal, by its own clock (its
    /// marker in `seen`, or this round when it had none; never a time the
    /// proposal's maker gave): a proposal starts no earlier than the veto
    /// window after it ([`Episode::due`]).
    pub proposal_seen: Option<DateTime<Utc>>,
}

impl Episode {
    /// When proposal `p` may start, as this observer judges it (pure): its
    /// deadline, and no earlier than `window` after this observer first
    /// saw it. A proposal its maker back-dated (its `created`, and so its
    /// deadline, set early to shorten the window) still leaves people the
    /// whole window from when an honest observer saw it and told them.
    pub fn due(&self, p: &Proposal, window: std::time::Duration) -> DateTime<Utc> {
        let seen = self.proposal_seen.map(|t| after(t, window));
        seen.map_or(p.deadline, |s| s.max(p.deadline))
    }
}

/// A proposed failover (the board's `proposal.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// Who proposed.
    pub observer: String,
    /// When it was made (its deadline is at least the plan's veto window
    /// after it, [`proposal_problem`]).
    pub created: DateTime<Utc>,
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
    /// Each listed observer's place (its own name when not given): only
    /// their reports count, each once.
    pub places: &'a BTreeMap<String, String>,
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
    /// A verdict that names no region or target and leads to nothing.
    pub fn new(decision: WatchDecision, why: impl Into<String>, tally: Tally) -> Self {
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
    // Only listed observers, each once, from here on.
    let (reports, unlisted) = listed_once(s.reports, s.places);
    let s = &Situation {
        reports: &reports,
        ..s.clone()
    };
    let active = s.history.active.as_str();
    let mut tally = tally(s.reports, s.places, active, s.rules, s.now);
    tally.ignored.extend(unlisted);
    let eyes = fresh(s.reports, s.rules, s.now);
    let seen_from = distinct(s.places, &eyes);
    if seen_from.len() < s.rules.quorum as usize {
        return Verdict::new(
            WatchDecision::Blind,
            format!(
                "only {} fresh observer(s) ({}) in {} place(s) for a quorum of {}: watch cannot judge {active} and does nothing",
                eyes.len(),
                if eyes.is_empty() {
                    "none".into()
                } else {
                    eyes.join(", ")
                },
                seen_from.len(),
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
    if tally.down.len() >= s.rules.quorum as usize {
        // Enough observers, too few places: they may share the fault.
        let why = format!(
            "{} see {active} down, but from {} place(s) ({}); the quorum needs {} distinct places: no failover",
            tally.down.join(", "),
            tally.places.len(),
            tally.places.join(", "),
            s.rules.quorum
        );
        let mut v = Verdict::new(WatchDecision::Suspect, why, tally);
        v.region = Some(active.to_string());
        v.next = Next::Tell("suspect");
        return v;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::watch::PlanHistory;

    const HOME: &str = "us-west-2";

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn rules(mode: WatchMode, quorum: u32) -> WatchRules {
        WatchRules {
            mode,
            interval: Duration::from_secs(10),
            failures: 3,
            quorum,
            veto_window: Duration::from_secs(120),
            freshness: Duration::from_secs(40),
            accept_data_loss: None,
            alarms: Default::default(),
        }
    }

    fn view(ok: bool, since: DateTime<Utc>) -> RegionView {
        RegionView {
            ok,
            api_ok: ok,
            checks_ok: None,
            failures: if ok { 0 } else { 3 },
            failing_since: (!ok).then_some(since),
            down_since: (!ok).then(|| since + chrono::Duration::seconds(20)),
            healthy_since: ok.then_some(since),
            lag_seconds: Some(1.0),
            lag_expected: true,
            replica: Some(true),
            detail: if ok { "healthy" } else { "API: reset" }.into(),
        }
    }

    /// `observer`'s report at `at`: home down since `since` (or up), the
    /// standby up.
    fn report(observer: &str, home_down: bool, since: DateTime<Utc>, at: DateTime<Utc>) -> Report {
        Report {
            observer: observer.into(),
            plan: "payments".into(),
            at,
            round: 5,
            impaired: None,
            regions: BTreeMap::from([
                (HOME.to_string(), view(!home_down, since)),
                ("us-east-1".to_string(), view(true, t(0))),
            ]),
        }
    }

    fn places(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(o, p)| (o.to_string(), p.to_string()))
            .collect()
    }

    fn history() -> PlanHistory {
        PlanHistory {
            active: HOME.into(),
            last: None,
            running: None,
            latest: None,
        }
    }

    const REGIONS: &[&str] = &[HOME, "us-east-1"];

    fn judge(
        rules: &WatchRules,
        reports: &[Report],
        places: &BTreeMap<String, String>,
        episode: &Episode,
        now: DateTime<Utc>,
    ) -> Verdict {
        let regions: Vec<String> = REGIONS.iter().map(|r| r.to_string()).collect();
        let history = history();
        decide(&Situation {
            plan: "payments",
            home: HOME,
            regions: &regions,
            rules,
            rpo: Duration::from_secs(300),
            checks_before_scaling: false,
            history: &history,
            held_by: None,
            reports,
            places,
            episode,
            velocity: (0, 5),
            now,
        })
    }

    fn abc() -> BTreeMap<String, String> {
        places(&[("a", "a"), ("b", "b"), ("c", "c")])
    }

    #[test]
    fn a_quorum_must_span_distinct_places() {
        let r = rules(WatchMode::Auto, 2);
        let now = t(100);
        let reports = [
            report("a", true, t(0), now),
            report("b", true, t(0), now),
            report("c", false, t(0), now),
        ];
        // a and b share a place: their two votes are one place's.
        let shared = places(&[("a", "k8s-eu"), ("b", "k8s-eu"), ("c", "bastion")]);
        let v = judge(&r, &reports, &shared, &Episode::default(), now);
        assert!(!v.tally.reached, "{v:?}");
        assert_eq!(v.decision, WatchDecision::Suspect);
        assert!(v.why.contains("from 1 place(s) (k8s-eu)"), "{}", v.why);
        assert!(!matches!(v.next, Next::Start(_)));
        // In two places: down by quorum, and the failover starts.
        let apart = places(&[("a", "k8s-eu"), ("b", "bastion"), ("c", "bastion")]);
        let v = judge(&r, &reports, &apart, &Episode::default(), now);
        assert!(v.tally.reached, "{v:?}");
        assert_eq!(v.tally.places, ["bastion", "k8s-eu"]);
        assert!(matches!(v.next, Next::Start(_)), "{v:?}");
        // Three observers in one place cannot even judge: blind.
        let one = places(&[("a", "x"), ("b", "x"), ("c", "x")]);
        let v = judge(&r, &reports, &one, &Episode::default(), now);
        assert_eq!(v.decision, WatchDecision::Blind, "{}", v.why);
    }

    /// Issue 74, attack 10: for a quorum-1 plan, one listed observer's
    /// signed report with `failing_since` in year -262143 made the onset's
    /// `onset - freshness` panic in every observer's round. Such a time is
    /// not admitted (the report is named, and does not vote), and the
    /// arithmetic saturates whatever it is given.
    #[test]
    fn regression_a_report_from_year_minus_262143_panicked_every_watcher() {
        let r = rules(WatchMode::Auto, 1);
        let now = t(100);
        let mut forged = report("a", true, DateTime::<Utc>::MIN_UTC, now);
        let home = forged.regions.get_mut(HOME).unwrap();
        home.down_since = Some(DateTime::<Utc>::MIN_UTC);
        let reports = [forged, report("b", false, t(0), now)];
        let v = judge(&r, &reports, &abc(), &Episode::default(), now);
        assert!(v.tally.down.is_empty(), "{v:?}");
        assert!(
            (v.tally.ignored.iter())
                .any(|i| i.starts_with("a (") && i.contains("before the report")),
            "{:?}",
            v.tally.ignored
        );
        // A year back is an outage's; a year and more is not admitted.
        let old = report("a", true, now - chrono::Duration::days(365), now);
        assert!(incoherent(&old).is_none(), "{old:?}");
        let older = report("a", true, now - chrono::Duration::days(367), now);
        assert!(incoherent(&older).is_some());
    }

    #[test]
    fn one_observer_writing_reports_under_many_new_names_cannot_reach_quorum_alone() {
        let r = rules(WatchMode::Auto, 2);
        let now = t(100);
        let mut reports = vec![
            report("a", false, t(0), now),
            report("b", false, t(0), now),
            report("c", true, t(0), now),
        ];
        for name in ["c-2", "c-3", "c-4"] {
            reports.push(report(name, true, t(0), now));
        }
        reports.push(report("c", true, t(0), now));
        let v = judge(&r, &reports, &abc(), &Episode::default(), now);
        assert_eq!(v.tally.down, ["c"], "{v:?}");
        assert!(!v.tally.reached);
        assert!(
            v.tally
                .ignored
                .contains(&"c-2 (not a listed observer)".to_string())
        );
        assert!(
            v.tally
                .ignored
                .contains(&"c (a second report: counted once)".to_string()),
            "{:?}",
            v.tally.ignored
        );
        assert!(!matches!(v.next, Next::Start(_) | Next::Propose(_)));
    }

    #[test]
    fn a_report_whose_times_contradict_themselves_does_not_vote() {
        let r = rules(WatchMode::Auto, 2);
        let now = t(100);
        let honest = report("a", true, t(0), now);
        // Failing since after its own time: a streak it cannot have seen.
        let mut future = report("b", true, t(0), now);
        if let Some(v) = future.regions.get_mut(HOME) {
            v.failing_since = Some(now + chrono::Duration::seconds(5));
        }
        // Failures claimed on a passing view.
        let mut passing = report("c", false, t(0), now);
        if let Some(v) = passing.regions.get_mut(HOME) {
            v.failures = 50;
        }
        let v = judge(
            &r,
            &[honest, future, passing],
            &abc(),
            &Episode::default(),
            now,
        );
        assert_eq!(v.tally.down, ["a"]);
        assert!(!v.tally.reached);
        let shown = v.tally.ignored.join("; ");
        assert!(
            shown.contains("b (its report contradicts itself"),
            "{shown}"
        );
        assert!(
            shown.contains("c (its report contradicts itself: us-west-2: passing, with failures"),
            "{shown}"
        );
    }

    fn proposal(created: DateTime<Utc>, deadline: DateTime<Utc>) -> Proposal {
        Proposal {
            observer: "a".into(),
            created,
            region: HOME.into(),
            target: "us-east-1".into(),
            deadline,
            detected_at: t(0),
            quorum_at: t(20),
            votes: vec!["a".into(), "b".into()],
        }
    }

    #[test]
    fn a_pre_made_proposal_with_a_past_deadline_is_ignored_and_a_person_decides() {
        let r = rules(WatchMode::Propose, 2);
        let now = t(100);
        let reports = [report("a", true, t(0), now), report("b", true, t(0), now)];
        // Made "now", its deadline already past: it skips the veto window.
        let forged = Episode {
            proposal: Some(proposal(t(30), t(31))),
            active: true,
            ..Episode::default()
        };
        let v = judge(&r, &reports, &abc(), &forged, now);
        assert_eq!(v.decision, WatchDecision::StartFailed, "{}", v.why);
        assert!(
            v.why.contains("less than the veto window (2m)"),
            "{}",
            v.why
        );
        assert!(v.why.contains("a person decides"), "{}", v.why);
        assert_eq!(v.next, Next::Tell("start_failed"), "people are told");
        assert_eq!(
            v.command.as_deref(),
            Some("drctl failover --plan payments --to us-east-1 --emergency")
        );
        // The same proposal made properly starts once its window has passed.
        let fair = Episode {
            proposal: Some(proposal(t(30), t(150))),
            active: true,
            ..Episode::default()
        };
        let v = judge(&r, &reports, &abc(), &fair, now);
        assert_eq!(v.decision, WatchDecision::Proposed, "{}", v.why);
        assert_eq!(v.next, Next::Tell("proposed"));
        let later = [
            report("a", true, t(0), t(151)),
            report("b", true, t(0), t(151)),
        ];
        let v = judge(&r, &later, &abc(), &fair, t(151));
        assert!(matches!(v.next, Next::Start(_)), "{v:?}");
    }

    /// Regression (issue 39): one observer back-dated its proposal (its
    /// `created`, and so its deadline, as early as the outage's onset
    /// allows) and wrote it late: the others started the failover when its
    /// deadline said, with far less than the veto window since anyone could
    /// have been told. A proposal starts no earlier than the window after
    /// this observer first saw it.
    #[test]
    fn regression_a_back_dated_proposal_shortened_the_veto_window() {
        let r = rules(WatchMode::Propose, 2);
        let at = |now| [report("a", true, t(0), now), report("b", true, t(0), now)];
        // Dated 10 s before the quorum's first failures (within the skew
        // allowed), its deadline the window after that; seen first at 100 s.
        let late = Episode {
            proposal: Some(proposal(t(-10), t(110))),
            proposal_seen: Some(t(100)),
            active: true,
            ..Episode::default()
        };
        let v = judge(&r, &at(t(115)), &abc(), &late, t(115));
        assert_eq!(v.decision, WatchDecision::Proposed, "{}", v.why);
        assert_eq!(
            v.deadline,
            Some(t(220)),
            "the whole window from first sight"
        );
        let v = judge(&r, &at(t(219)), &abc(), &late, t(219));
        assert!(!matches!(v.next, Next::Start(_)), "{v:?}");
        let v = judge(&r, &at(t(221)), &abc(), &late, t(221));
        assert!(matches!(v.next, Next::Start(_)), "{v:?}");
        // Seen as soon as it was made: its own deadline holds.
        let prompt = Episode {
            proposal_seen: Some(t(-10)),
            ..late.clone()
        };
        let v = judge(&r, &at(t(111)), &abc(), &prompt, t(111));
        assert!(matches!(v.next, Next::Start(_)), "{v:?}");
        // A first sight at the end of time never overflows: never due.
        let never = Episode {
            proposal_seen: Some(DateTime::<Utc>::MAX_UTC),
            ..late
        };
        let v = judge(&r, &at(t(10_000)), &abc(), &never, t(10_000));
        assert!(!matches!(v.next, Next::Start(_)), "{v:?}");
    }

    #[test]
    fn a_proposal_made_before_the_outage_or_in_the_future_is_ignored() {
        let r = rules(WatchMode::Propose, 2);
        let now = t(1000);
        let reports = [
            report("a", true, t(900), now),
            report("b", true, t(900), now),
        ];
        // Back-dated: made an hour before the quorum's first failures.
        let early = Episode {
            proposal: Some(proposal(t(-3600), t(-3480))),
            active: true,
            ..Episode::default()
        };
        let v = judge(&r, &reports, &abc(), &early, now);
        assert_eq!(v.decision, WatchDecision::StartFailed, "{}", v.why);
        assert!(v.why.contains("before the outage began"), "{}", v.why);
        // Stamped ahead of the clock beyond an interval.
        let ahead = proposal(
            now + chrono::Duration::seconds(60),
            now + chrono::Duration::seconds(180),
        );
        assert!(
            proposal_problem(&ahead, &r, now, None)
                .is_some_and(|w| w.starts_with("made in the future")),
        );
    }

    #[test]
    fn an_object_holding_the_proposals_or_claims_place_that_does_not_verify_stops_watch() {
        let now = t(100);
        let reports = [report("a", true, t(0), now), report("b", true, t(0), now)];
        let ep = Episode {
            false_proposal: Some("signed by key 0123456789abcdef, which is not listed".into()),
            ..Episode::default()
        };
        let v = judge(&rules(WatchMode::Propose, 2), &reports, &abc(), &ep, now);
        assert_eq!(v.decision, WatchDecision::StartFailed);
        assert!(v.why.contains("0123456789abcdef"), "{}", v.why);
        // In auto mode the proposal is only a record: the start goes on...
        let v = judge(&rules(WatchMode::Auto, 2), &reports, &abc(), &ep, now);
        assert!(matches!(v.next, Next::Start(_)), "{v:?}");
        // ...unless the start claim's place holds a forgery.
        let ep = Episode {
            false_claim: Some("not signed".into()),
            ..Episode::default()
        };
        let v = judge(&rules(WatchMode::Auto, 2), &reports, &abc(), &ep, now);
        assert_eq!(v.decision, WatchDecision::StartFailed, "{}", v.why);
        assert!(
            v.why.contains("start claim is not one (not signed)"),
            "{}",
            v.why
        );
    }

    #[test]
    fn the_onset_is_the_quorum_th_first_failure_so_one_liar_cannot_move_it() {
        let r = rules(WatchMode::Auto, 2);
        let now = t(1000);
        let reports = [
            report("a", true, t(-86_400), now),
            report("b", true, t(900), now),
            report("c", true, t(910), now),
        ];
        let v = judge(&r, &reports, &abc(), &Episode::default(), now);
        assert_eq!(v.tally.onset, Some(t(900)));
        assert_eq!(v.tally.quorum_at, Some(t(920)));
        // The liar's day-old first failure does not start the RTO clock:
        // at most a freshness (40 s) before the onset.
        assert_eq!(v.tally.detected_at, Some(t(860)));
        let honest = [
            report("b", true, t(895), now),
            report("c", true, t(900), now),
        ];
        let v = judge(&r, &honest, &abc(), &Episode::default(), now);
        assert_eq!(v.tally.detected_at, Some(t(895)));
    }
}
