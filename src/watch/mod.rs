//! `drctl watch`: notice an outage, decide by quorum, propose or fail
//! over, and never fail over by mistake (docs/watch.md).
//!
//! # Why it is built this way
//!
//! Automatic failover is where DR tools do damage: a partition read as an
//! outage, a flapping check, one vantage point whose own network broke. So
//! a watcher is one of several *observers* (processes on different
//! machines, ideally in different clouds) that each observe every plan's
//! regions ([`observe`]) and publish a report signed with its own key to
//! the shared state ([`shared`]: only the observers the operators listed
//! count, each once); each then reads everyone's reports and decides alone, by
//! the same pure rules ([`decide`]): a region is down only when a quorum
//! of fresh observers has each seen it fail several times in a row. What
//! only one may do is settled by create-only writes on the state's board:
//! one proposal, one veto, one start claim per *episode* (the plan's active
//! region since the run that made it active), and the failover itself is an
//! ordinary run under the plan's lease. An observer that cannot reach the
//! shared state cannot publish, count or claim, so it never acts.
//!
//! Every change of view, quorum and decision is journaled in the watcher's
//! own journal (`watch/` in the state); a run watch starts carries the
//! decision (`RunFlags::watch`), which is how a report's RTO starts at the
//! first failed observation. A round is: read the runs (active region,
//! episode, velocity), observe, and read where the cloud says each plan
//! serves ([`active`]: watch acts only where the cloud and the journals
//! agree), publish, read the others, decide, act, and update the metrics.
//!
//! Besides those: [`seal`] (who may sign what on the board, and how a board
//! object is signed and opened), `act` (what a judged round does: tell,
//! propose, claim the start and start through a [`Starter`], or stop at the
//! cap), [`tell`] (a decision's notification), [`metrics`] and [`serve`]
//! (`/metrics` and `/healthz`, bounded).

mod act;
pub mod active;
pub mod decide;
pub mod metrics;
pub mod observe;
pub mod seal;
pub mod serve;
pub mod shared;
pub mod tell;

pub use shared::{Shared, read_shared};

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use self::decide::{Next, Proposal, RegionView, Report, Situation, Verdict};
use self::metrics::{ObservationLabels, ObserverLabels, WatchMetrics};
use crate::cloud::Clouds;
use crate::journal::event::{Event, Record};
use crate::journal::watch::{WatchDecision, WatchFact, WatchOrigin};
use crate::journal::{Journal, JournalError};
use crate::notify::Hub;
use crate::plan::Plan;
use crate::runs::watch::{PlanHistory, Switch, history, started_by_watch, switches};
use crate::state::State;

/// How long a journal left out stays left out before watch reads it again
/// (issue 74, attack 11): junk a writer of the state put under `runs/`,
/// which the bucket policy keeps, is read once an hour, not every round; a
/// journal made whole again (a repaired tail) comes back within the hour.
pub const LEFT_OUT_RECHECK: chrono::Duration = chrono::Duration::hours(1);

/// A journal watch left out: when, why, and its head then.
#[derive(Debug, Clone)]
struct LeftOut {
    read: DateTime<Utc>,
    why: String,
    head: Option<String>,
}

/// The records of one watcher's journal before its facts go on in a new
/// one: well below what drctl reads of a journal
/// (`journal::store::MAX_RECORDS`), and a journal a reader reads at once.
const WATCH_JOURNAL_RECORDS: u64 = 10_000;

/// Starts a failover that watch decided (the CLI builds the engine).
#[async_trait]
pub trait Starter: Send + Sync {
    /// Starts failing `plan` over to `target` as an emergency run carrying
    /// `origin`; returns when the run has begun (or could not), not when it
    /// ends: a message for the watcher's journal.
    async fn start(&self, plan: &Plan, target: &str, origin: WatchOrigin)
    -> Result<String, String>;
}

/// How a watcher is set up.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// This observer's name (unique among observers).
    pub observer: String,
    /// This observer's own key: it signs what it writes on the board.
    pub key: crate::sign::SecretKey,
    /// Whose signatures count: the listed observers, the people's keys.
    pub trust: shared::Trust,
    /// Failovers watch may start per `velocity_window`, across all plans.
    pub max_failovers: usize,
    /// The window of the velocity cap.
    pub velocity_window: Duration,
    /// Bound on each read of a round.
    pub read_timeout: Duration,
}

/// What `/healthz` answers from.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// When the last round ended.
    pub last_round: Option<DateTime<Utc>>,
    /// Whether the shared state answered in it.
    pub state_ok: bool,
    /// The shortest interval among the watched plans.
    pub interval: Duration,
}

impl Health {
    /// Healthy: a round ended within three intervals, and the state answered.
    pub fn ok(&self, now: DateTime<Utc>) -> bool {
        self.state_ok
            && self.last_round.is_some_and(|t| {
                (now - t).to_std().unwrap_or_default()
                    <= self
                        .interval
                        .saturating_mul(3)
                        .saturating_add(Duration::from_secs(5))
            })
    }
}

/// One plan's outcome of a round (what `--once` and `watch status` print).
#[derive(Debug, Clone)]
pub struct PlanRound {
    /// The plan.
    pub plan: String,
    /// Its active region by the journals.
    pub active: String,
    /// The episode.
    pub episode: String,
    /// Every observer's latest report.
    pub reports: Vec<Report>,
    /// Reports left out (bad signature, unreadable).
    pub rejected: Vec<String>,
    /// The decision (`None`: the shared state did not answer; nothing decided).
    pub verdict: Option<Verdict>,
    /// What acting on it did, when it did something.
    pub acted: Option<String>,
    /// Where the plan serves: the cloud held against the journals (`None`:
    /// not judged, the shared state did not answer).
    pub judged: Option<active::Judged>,
    /// What the cloud said of it (`None`: not read).
    pub world: Option<active::World>,
}

/// A watcher: one observer's state across rounds.
pub struct Watcher {
    cfg: WatchConfig,
    plans: Vec<Plan>,
    clouds: Clouds,
    state: State,
    hub: Option<Arc<Hub>>,
    starter: Arc<dyn Starter>,
    /// What `/metrics` serves.
    pub metrics: Arc<WatchMetrics>,
    /// What `/healthz` serves.
    pub health: Arc<Mutex<Health>>,
    journal: Option<Journal>,
    views: BTreeMap<(String, String), RegionView>,
    said: BTreeMap<String, (WatchDecision, String)>,
    quorum_said: BTreeMap<(String, String), bool>,
    ended: BTreeMap<String, Vec<Record>>,
    /// Journals left out of the last read because, with run keys listed,
    /// they do not verify (a writer of the state forged or rewrote them):
    /// id and why.
    unverified: Vec<(String, String)>,
    /// The journals left out, by id: when they were last read, why they
    /// were left out, and their head then. Read again when the head
    /// changed (a journal just created gets its signed head a moment after
    /// its first), else only after [`LEFT_OUT_RECHECK`]: a writer of the
    /// state's junk is not read whole every round.
    left_out: BTreeMap<String, LeftOut>,
    /// What the board held that does not count, warned of once.
    warned: std::collections::BTreeSet<String>,
    /// Each plan's current proposal's digest (`shared::proposal_digest`),
    /// as the board last said: its notice is told by it.
    proposal_digests: BTreeMap<String, String>,
    round: u64,
    /// The time of the round under way.
    now: DateTime<Utc>,
}

impl Watcher {
    /// A watcher of `plans`.
    pub fn new(
        cfg: WatchConfig,
        plans: Vec<Plan>,
        clouds: Clouds,
        state: State,
        hub: Option<Arc<Hub>>,
        starter: Arc<dyn Starter>,
    ) -> Self {
        let interval = plans
            .iter()
            .map(|p| p.watch_rules().interval)
            .min()
            .unwrap_or(crate::plan::watch::DEFAULT_INTERVAL);
        Self {
            cfg,
            plans,
            clouds,
            state,
            hub,
            starter,
            metrics: Arc::new(WatchMetrics::new()),
            health: Arc::new(Mutex::new(Health {
                interval,
                ..Health::default()
            })),
            journal: None,
            views: BTreeMap::new(),
            said: BTreeMap::new(),
            quorum_said: BTreeMap::new(),
            ended: BTreeMap::new(),
            warned: Default::default(),
            proposal_digests: BTreeMap::new(),
            unverified: Vec::new(),
            left_out: BTreeMap::new(),
            round: 0,
            now: Utc::now(),
        }
    }

    /// The shortest interval among the plans (the loop's period).
    pub fn interval(&self) -> Duration {
        self.health.lock().map(|h| h.interval).unwrap_or_default()
    }

    /// This watcher's journal, once it has one.
    pub fn journal_id(&self) -> Option<&str> {
        self.journal.as_ref().map(Journal::run_id)
    }

    /// Every run's records, reading only journals not known to have ended,
    /// nor left out within the last [`LEFT_OUT_RECHECK`].
    /// As every reader of runs reads them ([`crate::journal::runs`]): with
    /// run keys listed, only journals whose records and head are signed by
    /// one of them; a journal a writer of the state forged or rewrote is
    /// left out and named ([`Watcher::unverified`]), so it can neither move
    /// watch nor stop it.
    async fn runs(&mut self) -> Result<Vec<(String, Vec<Record>)>, JournalError> {
        let ids = self.state.journals.list().await?;
        let mut runs = Vec::with_capacity(ids.len());
        let mut unverified = Vec::new();
        for id in ids {
            if let Some(r) = self.ended.get(&id) {
                runs.push((id, r.clone()));
                continue;
            }
            // A journal left out before: its head now, read once, tells
            // whether it changed (and is kept if it is left out again).
            let head = match self.left_out.contains_key(&id) {
                true => Some(self.state.journals.read_head(&id).await.ok().flatten()),
                false => None,
            };
            if let (Some(l), Some(head)) = (self.left_out.get(&id), &head)
                && self.now.signed_duration_since(l.read) < LEFT_OUT_RECHECK
                && l.head == *head
            {
                unverified.push((id, l.why.clone()));
                continue;
            }
            let records = match crate::journal::runs::read_listed(self.state.journals.as_ref(), &id)
                .await?
            {
                crate::journal::runs::Listed::Read(records) => {
                    self.left_out.remove(&id);
                    records
                }
                crate::journal::runs::Listed::LeftOut(why) => {
                    if self.warned.insert(format!("journal {id}")) {
                        tracing::warn!(run = %id, "watch: journal left out: it does not verify ({why})");
                    }
                    let head = match head {
                        Some(head) => head,
                        None => self.state.journals.read_head(&id).await.ok().flatten(),
                    };
                    let left = LeftOut {
                        read: self.now,
                        why: why.clone(),
                        head,
                    };
                    self.left_out.insert(id.clone(), left);
                    unverified.push((id, why));
                    continue;
                }
                crate::journal::runs::Listed::Gone => continue,
            };
            if records
                .iter()
                .any(|r| matches!(r.event, Event::RunFinished { .. }))
            {
                self.ended.insert(id.clone(), records.clone());
            }
            runs.push((id, records));
        }
        self.unverified = unverified;
        Ok(runs)
    }

    /// The journals the last round left out because they do not verify
    /// against the listed run keys: id and why.
    pub fn unverified(&self) -> &[(String, String)] {
        &self.unverified
    }

    /// Drill age and overdue per plan, from the drill runs.
    fn drill_metrics(&self, runs: &[(String, Vec<Record>)], now: DateTime<Utc>) {
        let targets = crate::runs::measure::targets(&self.plans);
        let authenticated = self.state.journals.keys().checks();
        let drills: Vec<_> = runs
            .iter()
            .flat_map(|(id, r)| crate::runs::schedule::drill_runs(id, r, authenticated, &targets))
            .collect();
        for c in crate::runs::schedule::cadence(&self.plans, &drills, now) {
            let label = WatchMetrics::plan(&c.plan);
            if let Some(plan) = self.plans.iter().find(|p| p.name() == c.plan) {
                let v = crate::runs::verified::by_definition(plan, &c, now);
                (self.metrics.plan_verified.get_or_create(&label)).set(i64::from(v.verified));
            }
            if let Some(last) = &c.last_passing {
                let age = (now - last.started).num_milliseconds().max(0) as f64 / 1000.0;
                self.metrics.drill_age.get_or_create(&label).set(age);
            }
            self.metrics
                .drill_overdue
                .get_or_create(&label)
                .set(i64::from(c.overdue));
        }
    }

    async fn journal(&mut self, plan: &str, fact: WatchFact) {
        if self.journal.is_none() {
            let id = crate::journal::new_run_id(&format!("watch-{}", self.cfg.observer));
            match Journal::create(self.state.watch.clone(), &id).await {
                Ok(mut j) => {
                    let began = WatchFact::Began {
                        plans: self.plans.iter().map(|p| p.name().to_string()).collect(),
                        host: crate::state::hostname(),
                    };
                    let _ = j
                        .append(Event::Watch {
                            observer: self.cfg.observer.clone(),
                            plan: String::new(),
                            fact: Box::new(began),
                        })
                        .await;
                    self.journal = Some(j);
                }
                Err(e) => {
                    tracing::warn!("watch: cannot create this observer's journal: {e}");
                    return;
                }
            }
        }
        if let Some(j) = self.journal.as_mut() {
            let r = j
                .append(Event::Watch {
                    observer: self.cfg.observer.clone(),
                    plan: plan.to_string(),
                    fact: Box::new(fact),
                })
                .await;
            if let Err(e) = r {
                tracing::warn!("watch: cannot journal: {e}");
                // The journal's end is unknown: start a new one next time.
                self.journal = None;
            } else if j.next_seq() >= WATCH_JOURNAL_RECORDS {
                // A watcher runs for months: its facts go on in a new
                // journal long before one holds more than a reader of
                // runs reads (`journal::store::MAX_RECORDS`).
                self.journal = None;
            }
        }
    }

    /// One round over every plan, now.
    pub async fn round(&mut self) -> Vec<PlanRound> {
        self.round_at(Utc::now()).await
    }

    /// One round over every plan, at `now` (tests drive the clock).
    pub async fn round_at(&mut self, now: DateTime<Utc>) -> Vec<PlanRound> {
        self.round += 1;
        self.now = now;
        let switches = match self.runs().await {
            Ok(runs) => {
                self.drill_metrics(&runs, now);
                Some(switches(&runs))
            }
            Err(e) => {
                tracing::warn!(
                    "watch: the shared state does not answer ({e}): this observer publishes, counts and acts on nothing until it does"
                );
                None
            }
        };
        let observed = futures::future::join_all(self.plans.iter().map(|p| {
            let rules = p.watch_rules();
            let clouds = self.clouds.clone();
            // A read that does not answer within this counts as a failed
            // signal of its region; a round may then outlast the interval.
            let timeout = self.cfg.read_timeout;
            // Where the plan serves, read beside the observation (not when
            // the shared state did not answer: nothing is decided then).
            let journals = (switches.as_deref()).map(|s| history(p.name(), p.home(), s).active);
            async move {
                let world = async {
                    match &journals {
                        Some(j) => Some(active::read(&clouds, p, j, timeout).await),
                        None => None,
                    }
                };
                tokio::join!(observe::observe(&clouds, p, &rules, timeout), world)
            }
        }))
        .await;
        let mut out = Vec::new();
        let mut state_ok = switches.is_some();
        // Where a starter is named and this observer is not one, it only
        // observes, whatever a plan's mode: it never proposes, claims or
        // starts (its credentials may read only, docs/security.md).
        let observes_only = !self.cfg.trust.may_start(&self.cfg.observer);
        for (i, (signals, world)) in observed.into_iter().enumerate() {
            let plan = match observes_only {
                true => observe_only(self.plans[i].clone()),
                false => self.plans[i].clone(),
            };
            let r = self
                .plan_round(&plan, signals, world, switches.as_deref(), now)
                .await;
            state_ok &= r.verdict.is_some();
            out.push(r);
        }
        if let Some(hub) = &self.hub {
            hub.settle_done().await;
            self.metrics
                .notifications_pending
                .set(i64::try_from(hub.pending()).unwrap_or(i64::MAX));
        }
        self.metrics.state_reachable.set(i64::from(state_ok));
        self.metrics
            .last_round
            .set(now.timestamp_millis() as f64 / 1000.0);
        if let Ok(mut h) = self.health.lock() {
            h.last_round = Some(now);
            h.state_ok = state_ok;
        }
        out
    }

    /// A process that starts (a restart, or each `--once` from cron) carries
    /// on from its own last report on the board, while that is fresh: its
    /// streaks of failed observations go on instead of starting again at
    /// zero (a cron'd observer could otherwise never reach `failures`).
    async fn carry_on(&mut self, plan: &Plan, now: DateTime<Utc>) {
        let name = plan.name().to_string();
        if self.views.keys().any(|(p, _)| *p == name) {
            return;
        }
        let key = shared::report_key(plan.name(), &self.cfg.observer);
        let Ok(Some(_)) = self.state.board.get(&key).await else {
            return;
        };
        let Ok((reports, _)) =
            shared::reports(self.state.board.as_ref(), &self.cfg.trust, plan.name()).await
        else {
            return;
        };
        let freshness = plan.watch_rules().freshness;
        let mine = reports.into_iter().find(|r| {
            r.observer == self.cfg.observer
                && (now - r.at).to_std().is_ok_and(|age| age <= freshness)
        });
        if let Some(r) = mine {
            self.round = self.round.max(r.round);
            for (region, view) in r.regions {
                self.views.insert((name.clone(), region), view);
            }
        }
    }

    /// Updates this observer's views of `plan` from a round's signals,
    /// journaling what changed; its report.
    async fn own_report(
        &mut self,
        plan: &Plan,
        signals: BTreeMap<String, decide::Signals>,
        now: DateTime<Utc>,
    ) -> Report {
        let rules = plan.watch_rules();
        let impaired = observe::impaired(&signals);
        let mut regions = BTreeMap::new();
        for (region, s) in signals {
            let key = (plan.name().to_string(), region.clone());
            let prev = self.views.get(&key);
            let view = decide::update(prev, &s, rules.failures, now);
            let changed = prev.is_none_or(|p| p.ok != view.ok)
                || (!view.ok && view.failures == rules.failures);
            if changed && (prev.is_some() || !view.ok) {
                self.journal(
                    plan.name(),
                    WatchFact::Observed {
                        region: region.clone(),
                        ok: view.ok,
                        failures: view.failures,
                        detail: view.detail.clone(),
                    },
                )
                .await;
            }
            let m = &self.metrics;
            m.observations
                .get_or_create(&ObservationLabels {
                    plan: plan.name().to_string(),
                    region: region.clone(),
                    observer: self.cfg.observer.clone(),
                    result: if view.ok { "ok" } else { "fail" }.into(),
                })
                .inc();
            m.consecutive_failures
                .get_or_create(&ObserverLabels {
                    plan: plan.name().to_string(),
                    region: region.clone(),
                    observer: self.cfg.observer.clone(),
                })
                .set(i64::from(view.failures));
            let label = WatchMetrics::region(plan.name(), &region);
            match view.lag_seconds {
                Some(lag) => {
                    m.replica_lag.get_or_create(&label).set(lag);
                }
                // No replica there (any more): no lag to show.
                None => {
                    m.replica_lag.remove(&label);
                }
            }
            self.views.insert(key, view.clone());
            regions.insert(region, view);
        }
        Report {
            observer: self.cfg.observer.clone(),
            plan: plan.name().to_string(),
            at: now,
            round: self.round,
            impaired,
            regions,
        }
    }

    async fn plan_round(
        &mut self,
        plan: &Plan,
        signals: BTreeMap<String, decide::Signals>,
        world: Option<active::World>,
        switches: Option<&[(Vec<String>, Switch)]>,
        now: DateTime<Utc>,
    ) -> PlanRound {
        if switches.is_some() {
            self.carry_on(plan, now).await;
        }
        let mine = self.own_report(plan, signals, now).await;
        // A starter does not vote: it publishes no report of its own, and
        // judges from the observers' signed reports alone.
        let votes = !self.cfg.trust.is_starter(&self.cfg.observer);
        let hist = history(plan.name(), plan.home(), switches.unwrap_or_default());
        let mut r = PlanRound {
            plan: plan.name().to_string(),
            active: hist.active.clone(),
            episode: hist.episode(plan.name()),
            reports: if votes {
                vec![mine.clone()]
            } else {
                Vec::new()
            },
            rejected: unverified_lines(&self.unverified),
            verdict: None,
            acted: None,
            judged: None,
            world: None,
        };
        let (Some(switches), Some(world)) = (switches, world) else {
            return r;
        };
        let Some(seen) = self
            .exchange(plan, &hist, votes.then_some(&mine), now)
            .await
        else {
            return r;
        };
        let episode = seen.episode.clone();
        r.episode = episode.clone();
        let held_by = holder(self.state.locks.as_ref(), plan.name()).await;
        let velocity = velocity(
            switches,
            self.cfg.velocity_window,
            self.cfg.max_failovers,
            now,
        );
        let rules = plan.watch_rules();
        let authenticated = self.state.journals.keys().checks();
        let judged = placed(
            plan,
            &hist,
            switches,
            &world,
            (held_by.as_deref(), authenticated),
        );
        let acts = judged.acts();
        let verdict = judged_verdict(plan, &hist, &seen, &judged, held_by, velocity, now);
        let fit = acts && ready(plan, &hist, &seen, now);
        self.metrics
            .plan_ready
            .get_or_create(&WatchMetrics::plan(plan.name()))
            .set(i64::from(fit));
        self.record(plan, &hist, &episode, &verdict, &rules).await;
        let (acted, changed) = self.act(plan, &hist, &episode, &verdict).await;
        r.acted = acted;
        let verdict = changed.unwrap_or(verdict);
        if acts && votes && !verdict.tally.reached {
            let over = self.say_over(&hist, (&episode, &seen), &rules, now).await;
            r.acted = over.or(r.acted);
        }
        r.reports = seen.reports;
        r.rejected.extend(seen.rejected);
        r.verdict = Some(verdict);
        r.judged = Some(judged);
        r.world = Some(world);
        r
    }

    /// Publishes this observer's report (`mine`, when it votes), then reads
    /// everyone's for the plan's current episode, warning once of each
    /// thing left out. `None` when either fails: this observer is cut off
    /// from the others, and it does nothing this round.
    async fn exchange(
        &mut self,
        plan: &Plan,
        hist: &PlanHistory,
        mine: Option<&Report>,
        now: DateTime<Utc>,
    ) -> Option<Shared> {
        let board = self.state.board.clone();
        let read = async {
            if let Some(mine) = mine {
                shared::put_report(board.as_ref(), &self.cfg.key, mine).await?;
            }
            let episode = hist.episode(plan.name());
            read_shared(board.as_ref(), &self.cfg.trust, plan, &episode, now).await
        };
        let seen = match read.await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("watch: {e}; this observer does not act on {}", plan.name());
                return None;
            }
        };
        for bad in &seen.rejected {
            if self.warned.insert(bad.clone()) {
                tracing::warn!("watch: {}: ignored on the board: {bad}", plan.name());
            }
        }
        let mut seen = seen;
        match &seen.board.proposal_digest {
            Some(d) => self
                .proposal_digests
                .insert(plan.name().to_string(), d.clone()),
            None => self.proposal_digests.remove(plan.name()),
        };
        let starts = plan.watch_rules().mode == crate::plan::watch::WatchMode::Propose
            && self.cfg.trust.may_start(&self.cfg.observer);
        if starts && seen.board.proposal.is_some() {
            let at = self.first_sight(&seen, now).await;
            seen.board.proposal_seen = Some(at);
        }
        Some(seen)
    }

    /// When the episode's region answers again (it is not down by quorum,
    /// and at least a quorum of fresh observers sees it pass), says for
    /// this observer that an episode in which something was proposed,
    /// started or told is over: what it did. Once observers in `quorum`
    /// places have said so, the next outage is judged afresh (a veto
    /// alone, made before any outage, stays until its `until`).
    async fn say_over(
        &self,
        hist: &PlanHistory,
        (episode, seen): (&str, &Shared),
        rules: &crate::plan::watch::WatchRules,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let answering = decide::answering(&seen.reports, &hist.active, rules, now);
        if !seen.board.active
            || answering < rules.quorum as usize
            || seen.board.closed_by.contains(&self.cfg.observer)
        {
            return None;
        }
        let board = self.state.board.clone();
        let said =
            shared::close_episode(board.as_ref(), &self.cfg.key, episode, &self.cfg.observer);
        match said.await {
            Ok(()) => Some(format!(
                "said the episode {episode} is over: {} answers again (it closes when observers in {} place(s) say so)",
                hist.active, rules.quorum
            )),
            Err(e) => {
                tracing::warn!("watch: {e}");
                None
            }
        }
    }

    /// The run holding `plan`'s lock, when one does.
    /// Journals the quorum and the decision when they change; metrics.
    async fn record(
        &mut self,
        plan: &Plan,
        hist: &PlanHistory,
        episode: &str,
        v: &Verdict,
        rules: &crate::plan::watch::WatchRules,
    ) {
        let name = plan.name().to_string();
        let key = (name.clone(), hist.active.clone());
        if self.quorum_said.get(&key) != Some(&v.tally.reached)
            && (v.tally.reached || self.quorum_said.contains_key(&key))
        {
            self.journal(
                &name,
                WatchFact::Quorum {
                    region: hist.active.clone(),
                    down: v.tally.down.clone(),
                    up: v.tally.up.clone(),
                    ignored: v.tally.ignored.clone(),
                    quorum: rules.quorum,
                    reached: v.tally.reached,
                },
            )
            .await;
        }
        self.quorum_said.insert(key, v.tally.reached);
        let now_said = (v.decision, episode.to_string());
        // A start is journaled by the observer that wins its claim (`start`).
        let starting = matches!(v.next, Next::Start(_));
        if self.said.get(&name) != Some(&now_said) && !starting {
            self.journal(&name, decided(episode, v, v.tally.detected_at, None))
                .await;
            self.metrics
                .decisions
                .get_or_create(&metrics::DecisionLabels {
                    plan: name.clone(),
                    decision: v.decision.as_str().to_string(),
                })
                .inc();
            self.said.insert(name.clone(), now_said);
        }
        let m = &self.metrics;
        // Only the active region is judged: the others' gauges read 0, so
        // that a failover leaves no stale "quorum reached" behind.
        for other in plan.regions().iter().filter(|r| **r != hist.active) {
            let l = WatchMetrics::region(&name, other);
            m.down_votes.get_or_create(&l).set(0);
            m.quorum_reached.get_or_create(&l).set(0);
        }
        let region = WatchMetrics::region(&name, &hist.active);
        m.down_votes
            .get_or_create(&region)
            .set(i64::try_from(v.tally.down.len()).unwrap_or(0));
        m.quorum_reached
            .get_or_create(&region)
            .set(i64::from(v.tally.reached));
        m.quorum
            .get_or_create(&WatchMetrics::plan(&name))
            .set(i64::from(rules.quorum));
        m.observers_fresh
            .get_or_create(&WatchMetrics::plan(&name))
            .set(i64::try_from(v.tally.down.len() + v.tally.up.len()).unwrap_or(0));
        m.rpo
            .get_or_create(&WatchMetrics::plan(&name))
            .set(plan.tier.rpo.as_secs_f64());
    }

    /// Journals what the hub still holds and ends the journal's writes.
    pub async fn close(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            let _ = j.flush().await;
        }
    }
}

/// The journal fact of a decision (`detected_at`: the episode's first
/// failed observation; `run_id`: the run watch started).
fn decided(
    episode: &str,
    v: &Verdict,
    detected_at: Option<DateTime<Utc>>,
    run_id: Option<String>,
) -> WatchFact {
    WatchFact::Decided {
        episode: episode.to_string(),
        decision: v.decision,
        why: v.why.clone(),
        region: v.region.clone(),
        target: v.target.clone(),
        command: v.command.clone(),
        deadline: v.deadline,
        detected_at,
        run_id,
    }
}

/// The run holding `plan`'s lock, when one does.
pub async fn holder(locks: &dyn crate::state::LockStore, plan: &str) -> Option<String> {
    let status = locks.status(&[plan.to_string()]).await.ok()?;
    status
        .into_iter()
        .find(|s| s.state == "held")
        .and_then(|s| s.holder.map(|h| h.run_id))
}

/// Failovers watch started within `window` before `now`, and the cap.
pub fn velocity(
    switches: &[(Vec<String>, Switch)],
    window: Duration,
    max: usize,
    now: DateTime<Utc>,
) -> (usize, usize) {
    let since = crate::plan::duration::before(now, window);
    (started_by_watch(switches, since), max)
}

/// `plan` as an observer that may not start failovers watches it: in
/// `observe` mode.
fn observe_only(mut plan: Plan) -> Plan {
    let mut w = plan.spec.watch.clone().unwrap_or_default();
    w.mode = Some(crate::plan::watch::WatchMode::Observe);
    plan.spec.watch = Some(w);
    plan
}

/// Whether a standby of `plan` is fit to take over now (the readiness
/// `/metrics` shows), by the same rule a failover decision uses.
pub fn ready(plan: &Plan, hist: &PlanHistory, seen: &Shared, now: DateTime<Utc>) -> bool {
    let rules = plan.watch_rules();
    decide::fitness(
        &situation(plan, hist, seen, &rules, None, (0, 1), now),
        &hist.active,
    )
    .is_ok()
}

/// Whether `plan`'s checks can pass in a standby before a failover
/// scales it: it has capacity, and every capacity resource's standby
/// groups serve, as each kind's role says.
fn standby_serves(plan: &Plan) -> bool {
    let groups: Vec<_> = (crate::plan::kinds::each(&plan.spec).into_iter())
        .filter_map(|r| match r.shown() {
            crate::plan::kinds::Shown::Capacity(g) => Some(g),
            _ => None,
        })
        .collect();
    !groups.is_empty() && groups.iter().all(|g| g.standby_serves())
}

fn situation<'a>(
    plan: &'a Plan,
    hist: &'a PlanHistory,
    seen: &'a Shared,
    rules: &'a crate::plan::watch::WatchRules,
    held_by: Option<String>,
    velocity: (usize, usize),
    now: DateTime<Utc>,
) -> Situation<'a> {
    Situation {
        plan: plan.name(),
        home: plan.home(),
        regions: plan.regions(),
        rules,
        rpo: plan.tier.rpo,
        checks_before_scaling: standby_serves(plan),
        history: hist,
        held_by,
        reports: &seen.reports,
        places: &seen.places,
        episode: &seen.board,
        velocity,
        now,
    }
}

/// Decides for `plan` from what the shared state says.
pub fn verdict(
    plan: &Plan,
    hist: &PlanHistory,
    seen: &Shared,
    held_by: Option<String>,
    velocity: (usize, usize),
    now: DateTime<Utc>,
) -> Verdict {
    let rules = plan.watch_rules();
    decide::decide(&situation(plan, hist, seen, &rules, held_by, velocity, now))
}

/// Where `plan` serves: what the cloud said (`world`) held against the
/// journals (`hist`, from `switches`); `held_by`: a live holder of the
/// plan's lock (a run moving it). `authenticated`: the journals were
/// authenticated (run keys listed); without, a plan the cloud cannot place
/// is refused rather than placed by its journals alone, which any writer
/// of the state could have written.
pub fn placed(
    plan: &Plan,
    hist: &PlanHistory,
    switches: &[(Vec<String>, Switch)],
    world: &active::World,
    (held_by, authenticated): (Option<&str>, bool),
) -> active::Judged {
    let moving = (hist.running.as_ref().map(|s| s.run_id.as_str())).or(held_by);
    let placement = active::place(plan.regions(), world);
    match active::judge(plan.name(), &placement, hist, switches, moving) {
        active::Judged::JournalsOnly { region } if !authenticated => active::Judged::Refused {
            why: format!(
                "the plan has nothing the cloud could be asked about, and its journals (which say {region}) are not authenticated: no run keys are listed, so watch does not act on journals alone"
            ),
            distrusted: Vec::new(),
        },
        judged => judged,
    }
}

/// Decides for `plan` once the cloud was held against the journals
/// (`judged`): as [`verdict`] where they agree, else the refusal (or the
/// wait for a run moving the plan) that stands in for it.
pub fn judged_verdict(
    plan: &Plan,
    hist: &PlanHistory,
    seen: &Shared,
    judged: &active::Judged,
    held_by: Option<String>,
    velocity: (usize, usize),
    now: DateTime<Utc>,
) -> Verdict {
    let rules = plan.watch_rules();
    let tally = decide::tally(&seen.reports, &seen.places, &hist.active, &rules, now);
    active::verdict(judged, &hist.active, tally)
        .unwrap_or_else(|| verdict(plan, hist, seen, held_by, velocity, now))
}

/// How a journal left out for not verifying is named among what a round
/// did not count.
pub fn unverified_lines(unverified: &[(String, String)]) -> Vec<String> {
    unverified
        .iter()
        .map(|(id, why)| {
            format!("journal {id}: does not verify against the run keys ({why}); left out")
        })
        .collect()
}

/// What a veto did.
#[derive(Debug, Clone, PartialEq)]
pub enum Vetoed {
    /// This call vetoed the episode.
    Now(String),
    /// It was vetoed already.
    Already(String),
    /// Too late: an observer claimed the failover's start (who, when).
    TooLate(String, String),
}

/// Vetoes `plan`'s current episode until `until` (`None`: until the
/// episode ends), unless an observer has claimed its start already; signed
/// with `key` (the operators' run key, or an observer's), or unsigned
/// without one (observers honour it all the same, and show it unverified).
#[allow(clippy::too_many_arguments)]
pub async fn veto(
    state: &State,
    plan: &Plan,
    by: &str,
    reason: &str,
    until: Option<DateTime<Utc>>,
    runs: &[(String, Vec<Record>)],
    key: Option<&crate::sign::SecretKey>,
    trust: &shared::Trust,
) -> Result<Vetoed, crate::state::board::BoardError> {
    let hist = history(plan.name(), plan.home(), &switches(runs));
    let now = Utc::now();
    let base = hist.episode(plan.name());
    let quorum = plan.watch_rules().quorum as usize;
    let (episode, board) =
        shared::current(state.board.as_ref(), trust, (&base, quorum), now).await?;
    // A claim released (its start failed) no longer stands in the way.
    if let Some(by) = board.claimed_by.filter(|_| board.start_failed.is_none()) {
        return Ok(Vetoed::TooLate(episode, by));
    }
    let v = shared::Veto {
        by: by.to_string(),
        reason: reason.to_string(),
        at: now,
        until,
    };
    let created = shared::create_veto(state.board.as_ref(), key, &episode, &v).await?;
    Ok(if created {
        Vetoed::Now(episode)
    } else {
        Vetoed::Already(episode)
    })
}
