//! The active region is down by quorum: what stops a start (a veto,
//! another run, a claim already made or orphaned, a proposal that does not
//! count, no fit standby), and what the plan's mode allows when nothing
//! does. Pure, like the rest of `decide`: every rule here is tested without
//! a board or a cloud.

use super::*;

/// The active region is down by quorum: the brakes (veto, another run, a
/// start already claimed, the target's fitness), then the mode.
pub(super) fn down(s: &Situation<'_>, active: &str, tally: Tally) -> Verdict {
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
    if let Some(refused) = false_start(s, &tally) {
        let target = fitness(s, active).ok();
        let why =
            format!("{votes}; {refused}: watch starts nothing in this episode, a person decides");
        let mut v = brake(WatchDecision::StartFailed, why, target);
        v.next = Next::Tell("start_failed");
        return v;
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

/// What holds the place of the episode's start claim, or (propose mode)
/// of its proposal, and does not count, with why: watch cannot settle a
/// start with the other observers, nor start what people were not told of.
fn false_start(s: &Situation<'_>, tally: &Tally) -> Option<String> {
    let proposal = match s.rules.mode {
        WatchMode::Propose => s.episode.false_proposal.clone().or_else(|| {
            let p = s.episode.proposal.as_ref()?;
            proposal_problem(p, s.rules, s.now, tally.onset)
        }),
        _ => None,
    };
    (s.episode.false_claim.as_ref())
        .map(|why| format!("the episode's start claim is not one ({why})"))
        .or(proposal.map(|why| format!("the episode's proposal is ignored ({why})")))
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

/// Why a proposal on the board may not start a failover, if it may not:
/// made in the future (beyond one `interval` of clock skew), with a
/// deadline less than the plan's veto window after it (in propose mode;
/// otherwise before it: a proposal made with its deadline already past
/// skips the window, and nobody was told),
/// or made before the outage it is about began by a quorum's word
/// (`onset`, less one `interval`: made in advance, back-dated).
pub fn proposal_problem(
    p: &Proposal,
    rules: &WatchRules,
    now: DateTime<Utc>,
    onset: Option<DateTime<Utc>>,
) -> Option<String> {
    let skew = chrono::Duration::from_std(rules.interval).unwrap_or_default();
    if p.created > now + skew {
        return Some(format!(
            "made in the future ({}), by {}",
            p.created, p.observer
        ));
    }
    let window = match rules.mode {
        WatchMode::Propose => rules.veto_window,
        // Auto mode records its start as a proposal due at once.
        _ => Duration::ZERO,
    };
    if p.deadline < after(p.created, window) {
        return Some(format!(
            "its deadline {} is less than the veto window ({}) after it was made ({}), by {}: a proposal made to skip the window",
            p.deadline,
            format_duration(window),
            p.created,
            p.observer
        ));
    }
    if let Some(onset) = onset
        && after(p.created, rules.interval) < onset
    {
        return Some(format!(
            "made {} by {}, before the outage began ({} by a quorum's first failures): made in advance",
            p.created, p.observer, onset
        ));
    }
    None
}

/// The proposal this round would make to fail `active` over to `target`:
/// due at once in auto mode, after the veto window in propose mode.
fn new_proposal(s: &Situation<'_>, active: &str, tally: &Tally, target: &str) -> Proposal {
    let window = match s.rules.mode {
        WatchMode::Propose => s.rules.veto_window,
        _ => Duration::ZERO,
    };
    Proposal {
        observer: String::new(),
        created: s.now,
        region: active.to_string(),
        target: target.to_string(),
        deadline: after(s.now, window),
        detected_at: tally.detected_at.unwrap_or(s.now),
        quorum_at: tally.quorum_at.unwrap_or(s.now),
        votes: tally.down.clone(),
    }
}

/// A time of day as people are told it (`14:03:07 UTC`).
fn at(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S UTC").to_string()
}

/// Down by quorum, `target` fit: what the mode (and the velocity cap) allow.
fn by_mode(s: &Situation<'_>, active: &str, tally: Tally, votes: &str, target: String) -> Verdict {
    let proposal = new_proposal(s, active, &tally, &target);
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
        // Told once per episode: by its proposer, or, when that one died
        // before telling, by the next observer to see it. Due no earlier
        // than the window after this observer first saw it.
        (WatchMode::Propose, Some(p)) if s.now < s.episode.due(p, s.rules.veto_window) => (
            WatchDecision::Proposed,
            format!(
                "{votes}; the failover to {target} starts at {} unless vetoed (`drctl watch veto --plan {} --reason ...`)",
                at(s.episode.due(p, s.rules.veto_window)),
                s.plan
            ),
            Next::Tell("proposed"),
            Some(s.episode.due(p, s.rules.veto_window)),
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
                at(s.episode.due(p, s.rules.veto_window)),
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
