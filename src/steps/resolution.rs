//! What the resolution checks share: asking the plan's names of their
//! authoritative servers until the answer names the target **N times in a
//! row**, telling each new answer, keeping every distinct one, and saying
//! so (with what the controls and setup show) when the answer stays wrong.
//!
//! Why here: `verify-resolution` (every traffic kind's data-plane switch)
//! and a drill's `drill-control` both verify a switch this way; each step
//! kind takes it from here, never from another step kind, so the rule that
//! stops the RTO clock (the first of N answers in a row) is written once.
//! What differs by kind (the value wanted, where the name is asked, how
//! fast its health checks flip, what its setup shows when the answer stays
//! wrong) is the kind's verification by resolution, its traffic role's
//! [`Resolving`]: the wait itself, when to read and when to fail, is
//! written once. See `verify_resolution` for why several answers and how
//! the wait speaks.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::placement::{ControlRead, read_control};
use super::records::{norm, picked};
use super::{Cx, StepFailure};
use crate::plan::Plan;
use crate::plan::kinds::traffic::{Gap, Resolving, SetupReads, SetupSeen, resolving};

/// Consecutive answers that must all name the target.
pub const CONSECUTIVE_ANSWERS: u32 = 3;

/// Distinct answers kept per name in the step's output (the first ones
/// and the latest are the ones that tell).
pub const SEEN_KEPT: usize = 20;

/// One name's verified answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resolved {
    /// The name asked.
    pub name: String,
    /// What it resolved to.
    pub values: Vec<String>,
    /// When the first of the consecutive answers came.
    pub first_at: Option<DateTime<Utc>>,
    /// How many questions it took.
    pub asked: u32,
    /// Every distinct answer in the order they came (at most
    /// [`SEEN_KEPT`]): what the name resolved to while the step waited.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<Seen>,
    /// What the step said when the answer stayed wrong (see the module
    /// documentation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub said: Vec<String>,
}

/// A run of the same answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The answer (empty: none).
    pub values: Vec<String>,
    /// When it first came.
    pub from: DateTime<Utc>,
    /// How many answers in a row were this one.
    pub answers: u32,
}

/// The pause between the answers of a run of right ones: a second (within
/// the run's poll bounds), so that N answers in a row take N seconds, not
/// the growing pauses of the wait before them.
pub fn confirm_every(poll: (Duration, Duration)) -> Duration {
    Duration::from_secs(1).clamp(poll.0, poll.1.max(poll.0))
}

/// What the verification publishes. `in_sync_at` is the RTO clock's end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VerifyResolutionOutput {
    /// When every name had begun its run of consecutive answers (the latest
    /// first answer).
    pub in_sync_at: DateTime<Utc>,
    /// Per name.
    pub resolved: Vec<Resolved>,
    /// Who was asked.
    pub servers: String,
    /// Answers required in a row.
    pub consecutive: u32,
    /// How the clock was stopped, for reports.
    pub basis: String,
}

/// Whether an answer names exactly the target (pure).
pub fn names_target(answer: &[String], target: &str) -> bool {
    !answer.is_empty() && answer.iter().all(|v| norm(v) == norm(target))
}

/// A streak of answers: `(first_at, count)`, reset by any other answer;
/// and every distinct answer seen.
#[derive(Debug, Default)]
struct Streak {
    first: Option<DateTime<Utc>>,
    count: u32,
    asked: u32,
    last: Vec<String>,
    seen: Vec<Seen>,
    said: Vec<String>,
}

impl Streak {
    /// Counts one answer; `Some(first)` once it has N in a row.
    fn push(
        &mut self,
        at: DateTime<Utc>,
        answer: Vec<String>,
        target: &str,
    ) -> Option<DateTime<Utc>> {
        self.asked += 1;
        match self.seen.last_mut() {
            Some(s) if s.values == answer => s.answers += 1,
            _ => {
                if self.seen.len() == SEEN_KEPT {
                    // Keep the first answer: it is what the switch changed.
                    self.seen.remove(1);
                }
                self.seen.push(Seen {
                    values: answer.clone(),
                    from: at,
                    answers: 1,
                });
            }
        }
        if names_target(&answer, target) {
            self.count += 1;
            let first = *self.first.get_or_insert(at);
            self.last = answer;
            (self.count >= CONSECUTIVE_ANSWERS).then_some(first)
        } else {
            self.first = None;
            self.count = 0;
            self.last = answer;
            None
        }
    }
}

/// Resolves the record's name until it answers the target's value N
/// times in a row (bounded by the step's wait), telling each new answer,
/// and saying so when the answer stays wrong ([`watch`]): every traffic
/// kind's, through its verification by resolution ([`Resolving`]); a
/// drill resolves its drill names with it.
pub(super) async fn resolve_record(
    cx: &Cx<'_>,
    d: &dyn Resolving,
) -> Result<Resolved, StepFailure> {
    let (name, rtype, _) = d.names();
    let Some(target) = d.answer(cx.target) else {
        return Err(StepFailure::state(
            format!("`{}` has no value for {}", d.id(), cx.target),
            "add the region's value to the record's targets",
            d.id(),
            cx.target,
        ));
    };
    let started = tokio::time::Instant::now();
    let streak = Mutex::new(Streak::default());
    let hint = d.hint(cx.plan.name());
    let asked = Asked {
        id: d.id(),
        zone: d.resolver_zone(),
        name,
        rtype,
        target,
        hint: &hint,
    };
    let beside = watch(cx, d, target, &streak, started);
    resolve_until(cx, &asked, &streak, started, beside).await
}

/// The records `ids` of `plan` whose switch is on the data plane, each
/// through its traffic role ([`Resolving`]), in plan order: what
/// `switch-control` and `verify-resolution` act on. A record the plan no
/// longer has fails the step, naming it, rather than being skipped (a
/// check of nothing would stop the RTO clock).
pub(super) fn records_of<'p>(
    plan: &'p Plan,
    ids: &[String],
    region: &str,
) -> Result<Vec<&'p dyn Resolving>, StepFailure> {
    picked(resolving(plan), ids).map_err(|gone| {
        StepFailure::state(
            format!("the plan has no data-plane record `{gone}`"),
            "run the plan this run was started with",
            &gone,
            region,
        )
    })
}

/// Each of the record's data-plane controls as read now (bounded, all at
/// once), as the wait says them: `us-east-1 drain (token 3, run R)`.
async fn controls_now(cx: &Cx<'_>, d: &dyn Resolving) -> Vec<String> {
    let reads = d.controls().into_iter().map(|c| async move {
        let limit = cx.control_read_timeout;
        let said = match read_control(cx.clouds, limit, c.via, c.url).await {
            Ok(ControlRead::Found(ctl)) => {
                format!("{} (token {}, run {})", ctl.state, ctl.token, ctl.run)
            }
            Ok(ControlRead::Missing) => "missing".into(),
            Ok(ControlRead::Invalid(why)) => format!("unreadable: {why}"),
            Err(e) => format!("not read: {}", e.summary()),
        };
        format!("{} {said}", c.site)
    });
    futures::future::join_all(reads).await
}

/// Beside the wait (it never delays it): once the answer has not named
/// the target for the kind's flip time plus the TTL, reads the controls
/// and, where the kind's API answers, the setup ([`Resolving::setup`]),
/// and says what they show; returns (ending the wait) only when they show
/// that the name cannot resolve to the target.
async fn watch(
    cx: &Cx<'_>,
    d: &dyn Resolving,
    target: &str,
    streak: &Mutex<Streak>,
    started: tokio::time::Instant,
) -> StepFailure {
    let lock = || locked(streak);
    // The kind's assumed pace until the health checks are read: no control
    // plane call before the answer has been wrong that long.
    let ttl = Duration::from_secs(u64::try_from(d.ttl()).unwrap_or(0));
    let mut period = d.assumed_flip().saturating_add(ttl);
    let mut at = started + period;
    loop {
        tokio::time::sleep_until(at).await;
        if names_target(&lock().last, target) {
            at = tokio::time::Instant::now() + period;
            continue; // a run of right answers is under way
        }
        let reads = SetupReads::default();
        let (setup, controls) = futures::join!(d.setup(cx.setup_at(&reads)), controls_now(cx, d));
        let needed: Vec<String> = (setup.gaps.iter().flatten())
            .filter(|g| g.needed)
            .map(Gap::to_string)
            .collect();
        if let Some(flip) = setup.flip {
            // The health checks' own pace: slower ones get their time
            // before the answer is said to stay wrong (a missing piece
            // is said at once: no pace makes up for it).
            period = flip.saturating_add(ttl);
            if needed.is_empty() && started + period > tokio::time::Instant::now() {
                at = started + period;
                continue;
            }
        }
        at = tokio::time::Instant::now() + period;
        let name = d.names().0;
        let wrong = Wrong {
            name,
            target,
            waited: started.elapsed(),
            period,
        };
        let note = stays_wrong_note(&wrong, &lock().seen, &controls, &setup);
        tracing::warn!(name = %name, "{note}");
        if let Some(tell) = cx.waiting {
            tell(&note);
        }
        lock().said.push(note.clone());
        if !needed.is_empty() {
            return StepFailure::state(
                format!(
                    "{note}. Without {}, it cannot resolve to {target}",
                    needed.join("; ")
                ),
                format!("{}, then `drctl runs resume`", setup.fix),
                d.id(),
                "global",
            );
        }
    }
}

/// A name whose answer stays wrong: how long it was waited for, and the
/// period the kind's health checks and TTL take.
struct Wrong<'a> {
    name: &'a str,
    target: &'a str,
    waited: Duration,
    period: Duration,
}

/// What [`resolve_until`] asks, and how its failure is worded.
struct Asked<'a> {
    /// The resource id errors name.
    pub id: &'a str,
    /// The zone (DNS name) the resolver finds the authoritative servers of
    /// when no servers are configured.
    pub zone: &'a str,
    /// The name asked.
    pub name: &'a str,
    /// Its type.
    pub rtype: &'a str,
    /// The value it must answer.
    pub target: &'a str,
    /// The hint of the failure when it does not in time.
    pub hint: &'a str,
}

/// Resolves `q.name` until it answers `q.target` [`CONSECUTIVE_ANSWERS`]
/// times in a row (bounded by the step's deadline), telling each new
/// answer; `watch` runs beside the wait and ends it with its failure when
/// it returns. Shared by `verify-resolution` and `drill-control`: one
/// resolver loop, one RTO-clock rule.
async fn resolve_until(
    cx: &Cx<'_>,
    q: &Asked<'_>,
    streak: &Mutex<Streak>,
    started: tokio::time::Instant,
    watch: impl std::future::Future<Output = StepFailure>,
) -> Result<Resolved, StepFailure> {
    let what = format!(
        "{} to resolve to {} at {} ({CONSECUTIVE_ANSWERS} answers in a row)",
        q.name,
        q.target,
        cx.clouds.resolver.servers()
    );
    let found = tokio::select! {
        found = poll_answers(cx, q, streak, &what) => Ok(found),
        failed = watch => Err(failed),
    };
    let first = match found {
        Ok(Some(first)) => first,
        Ok(None) => return Err(not_resolved(q, started, &locked(streak))),
        Err(e) => return Err(e),
    };
    let s = locked(streak);
    Ok(Resolved {
        name: q.name.to_string(),
        values: s.last.clone(),
        first_at: Some(first),
        asked: s.asked,
        seen: s.seen.clone(),
        said: s.said.clone(),
    })
}

/// The streak, even if a panicking holder poisoned its lock (it is only
/// ever counted into, never left half-written).
fn locked(streak: &Mutex<Streak>) -> std::sync::MutexGuard<'_, Streak> {
    streak.lock().unwrap_or_else(|p| p.into_inner())
}

/// Asks until the streak is complete (`Some(first)`: its first answer's
/// time) or the step's deadline passes (`None`). Polled here, not through
/// `wait_for`: a wrong answer is asked again after growing pauses (the
/// run's poll bounds), a run of right answers is confirmed at a steady
/// [`confirm_every`].
async fn poll_answers(
    cx: &Cx<'_>,
    q: &Asked<'_>,
    streak: &Mutex<Streak>,
    what: &str,
) -> Option<DateTime<Utc>> {
    let deadline = tokio::time::Instant::from_std(cx.deadline);
    let mut pause = cx.poll.0;
    loop {
        if let Some(first) = look(cx, q, streak, what).await {
            return Some(first);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return None;
        }
        let confirming = locked(streak).count > 0;
        let next = next_pause(confirming, cx.poll, &mut pause);
        tokio::time::sleep(next.min(deadline - now)).await;
    }
}

/// The pause before the next answer (pure): [`confirm_every`] while a run
/// of right answers is being confirmed, else `pause`, doubled (up to the
/// poll's upper bound) for the time after.
fn next_pause(confirming: bool, poll: (Duration, Duration), pause: &mut Duration) -> Duration {
    if confirming {
        confirm_every(poll)
    } else {
        let p = *pause;
        *pause = (*pause * 2).min(poll.1);
        p
    }
}

/// One look: resolves, counts the answer into the streak, and tells a new
/// answer; `Some(first)` once the streak is complete.
async fn look(
    cx: &Cx<'_>,
    q: &Asked<'_>,
    streak: &Mutex<Streak>,
    what: &str,
) -> Option<DateTime<Utc>> {
    let at = Utc::now();
    let answer = match cx.clouds.resolver.resolve(q.zone, q.name, q.rtype).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(name = %q.name, "no answer: {e}");
            Vec::new()
        }
    };
    let (first, new) = {
        let mut s = locked(streak);
        let before = s.seen.last().map(|x| x.from);
        let first = s.push(at, answer.clone(), q.target);
        (first, s.seen.last().map(|x| x.from) != before)
    };
    if new && let Some(tell) = cx.waiting {
        tell(&format!("{what}; now: {}", show(&answer)));
    }
    first
}

/// The failure when `q.name` did not answer its target enough times in a
/// row before the deadline, with what it answered and what was said.
fn not_resolved(q: &Asked<'_>, started: tokio::time::Instant, s: &Streak) -> StepFailure {
    StepFailure::state(
        format!(
            "{} did not resolve to {} {CONSECUTIVE_ANSWERS} times in a row within {} s; it answered {}{}",
            q.name,
            q.target,
            started.elapsed().as_secs(),
            history(&s.seen),
            said(&s.said),
        ),
        q.hint,
        q.id,
        "global",
    )
}

/// What the step says when the answer stays wrong (pure).
fn stays_wrong_note(
    w: &Wrong<'_>,
    seen: &[Seen],
    controls: &[String],
    setup: &SetupSeen,
) -> String {
    let setup = match &setup.gaps {
        Ok(gaps) if gaps.is_empty() => setup.in_place.to_string(),
        Ok(gaps) => format!(
            "setup incomplete: {}",
            gaps.iter()
                .map(Gap::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Err(why) => why.clone(),
    };
    format!(
        "{} still does not resolve to {} after {} s (health checks flip and the TTL passes within {} s): it answered {}; controls: {}; {setup}",
        w.name,
        w.target,
        w.waited.as_secs(),
        w.period.as_secs(),
        history(seen),
        controls.join(", ")
    )
}

/// The answers seen, in order: `a (since 12:00:01, 7 answers), b (...)`.
fn history(seen: &[Seen]) -> String {
    if seen.is_empty() {
        return "nothing yet".into();
    }
    seen.iter()
        .map(|s| {
            format!(
                "{} (from {}, {} answer{})",
                show(&s.values),
                s.from.format("%H:%M:%S"),
                s.answers,
                if s.answers == 1 { "" } else { "s" }
            )
        })
        .collect::<Vec<_>>()
        .join(", then ")
}

/// What the step said while waiting, for a failure's message.
fn said(notes: &[String]) -> String {
    match notes.last() {
        Some(n) => format!(" (last said: {n})"),
        None => String::new(),
    }
}

fn show(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::HealthCheck;
    use crate::plan::kinds::route53_setup::flip_after as stays_wrong_after;

    #[test]
    fn an_answer_stays_wrong_after_the_slowest_checks_flip_plus_the_ttl() {
        let check = |interval, failure_threshold| HealthCheck {
            id: "hc".into(),
            caller_reference: String::new(),
            check_type: "HTTP_STR_MATCH".into(),
            ip: None,
            fqdn: None,
            port: 80,
            path: "/".into(),
            search: String::new(),
            interval,
            failure_threshold,
        };
        assert_eq!(stays_wrong_after(&[], 60), Duration::from_secs(3 * 10 + 60));
        assert_eq!(
            stays_wrong_after(&[check(10, 3), check(30, 3)], 300),
            Duration::from_secs(90 + 300)
        );
        assert_eq!(
            stays_wrong_after(&[check(10, 1)], -5),
            Duration::from_secs(10)
        );
        let ms = Duration::from_millis;
        assert_eq!(confirm_every((ms(200), ms(10_000))), ms(1_000));
        assert_eq!(confirm_every((ms(1), ms(5))), ms(5));
        assert_eq!(confirm_every((ms(2_000), ms(1))), ms(2_000));
    }

    #[test]
    fn the_clock_stops_at_the_first_of_n_answers_in_a_row_and_a_miss_resets_it() {
        let t = |s: i64| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default();
        let target = "web-usw2.example.com.";
        let hit = || vec!["WEB-USW2.example.com".to_string()];
        let miss = || vec!["web-use1.example.com.".to_string()];
        let mut s = Streak::default();
        assert_eq!(s.push(t(1), hit(), target), None);
        assert_eq!(s.push(t(2), miss(), target), None);
        assert_eq!(s.push(t(3), hit(), target), None);
        assert_eq!(s.push(t(4), hit(), target), None);
        assert_eq!(s.push(t(5), hit(), target), Some(t(3)));
        assert_eq!(s.asked, 5);
        assert!(!names_target(&[], target));
        assert!(!names_target(&[target.into(), "other.".into()], target));
    }
}
