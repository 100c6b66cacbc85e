//! The notification of a watch decision: which CloudEvent type a decision
//! is told as, how loud, and the once-only journal it goes out from (one
//! per episode and decision, so three observers reaching the same decision
//! tell people once).

use chrono::{DateTime, Utc};

use super::decide::Verdict;
use crate::journal::notice::{CloudEvent, EventDetail};
use crate::journal::watch::WatchDecision;
use crate::notify::build::PlanNotice;
use crate::plan::Plan;
use crate::plan::notify::{EventType, Severity};

/// The event type and severity a decision is told as (`None`: not told).
pub fn kind_of(d: WatchDecision) -> Option<(EventType, Severity)> {
    Some(match d {
        WatchDecision::RegionDown => (EventType::WatchRegionDown, Severity::Critical),
        WatchDecision::Proposed => (EventType::WatchProposed, Severity::Critical),
        WatchDecision::Vetoed => (EventType::WatchVetoed, Severity::Warning),
        WatchDecision::Started => (EventType::WatchStarted, Severity::Critical),
        WatchDecision::StartFailed => (EventType::WatchStartFailed, Severity::Critical),
        WatchDecision::Unfit => (EventType::WatchUnfit, Severity::Critical),
        WatchDecision::Capped => (EventType::WatchCapped, Severity::Critical),
        WatchDecision::FailbackProposed => (EventType::WatchFailbackProposed, Severity::Info),
        WatchDecision::Suspect => (EventType::WatchSuspect, Severity::Warning),
        WatchDecision::Healthy | WatchDecision::Busy | WatchDecision::Blind => return None,
    })
}

/// The notice journal a decision is told from: one per episode and
/// decision (and observer, for a suspect observer's warning).
pub fn journal_id(episode: &str, d: WatchDecision, observer: Option<&str>) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
    };
    let mut id = format!("watch-{}-{}", clean(episode), d.as_str());
    if let Some(o) = observer {
        id.push('-');
        id.push_str(&clean(o));
    }
    // Journal ids are at most 128 characters: keep the end, which names
    // the decision, and a digest of the whole for uniqueness.
    if id.len() > 120 {
        use sha2::Digest as _;
        let digest = hex::encode(&sha2::Sha256::digest(id.as_bytes())[..6]);
        let tail: String = id
            .chars()
            .rev()
            .take(100)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        id = format!("watch-{digest}-{}", tail.trim_start_matches('-'));
    }
    id
}

/// The CloudEvent of `v` for `plan` (`journal`: its notice journal).
pub fn event(
    plan: &Plan,
    v: &Verdict,
    episode: &str,
    journal: &str,
    now: DateTime<Utc>,
) -> Option<CloudEvent> {
    Some(build(plan, v, episode, journal, now, kind_of(v.decision)?))
}

fn build(
    plan: &Plan,
    v: &Verdict,
    episode: &str,
    journal: &str,
    now: DateTime<Utc>,
    (kind, severity): (EventType, Severity),
) -> CloudEvent {
    PlanNotice {
        plan,
        journal,
        source: "/drctl/watch",
        kind,
        severity,
        target: v.target.clone(),
        summary: format!("{}: {}", plan.name(), v.why),
        detail: EventDetail::Watch {
            plan: plan.name().to_string(),
            decision: v.decision.as_str().to_string(),
            episode: episode.to_string(),
            why: v.why.clone(),
            region: v.region.clone(),
            command: v.command.clone(),
            deadline: v.deadline,
            votes: v.tally.down.clone(),
        },
    }
    .event(now)
}

/// The CloudEvent of a veto (`drctl watch veto`).
pub fn veto_event(
    plan: &Plan,
    episode: &str,
    by: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> CloudEvent {
    let v = Verdict::new(
        WatchDecision::Vetoed,
        format!("{by} vetoed watch's failover: {reason}"),
        Default::default(),
    );
    let id = journal_id(episode, WatchDecision::Vetoed, None);
    build(
        plan,
        &v,
        episode,
        &id,
        now,
        (EventType::WatchVetoed, Severity::Warning),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_ids_are_valid_and_distinct() {
        let a = journal_id("payments/us-west-2/start", WatchDecision::Proposed, None);
        assert_eq!(a, "watch-payments-us-west-2-start-proposed");
        crate::journal::store::validate_run_id(&a).unwrap();
        let long = "p".repeat(200);
        let b = journal_id(&long, WatchDecision::Suspect, Some("obs/1"));
        crate::journal::store::validate_run_id(&b).unwrap();
        assert!(b.ends_with("suspect-obs-1"), "{b}");
    }
}
