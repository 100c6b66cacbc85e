//! Delivering from the journal: what is owed (a pure reading of records),
//! and the [`Notifier`] that sends while a run goes on without ever making
//! it wait.
//!
//! A run's notifications are journaled before they are sent, and each
//! attempt's result is journaled too, so the journal alone says what is
//! still owed to whom: [`owed`] reads it, and any process that opens the
//! run (`runs resume`, `notify flush`, the hand-off after a command) sends
//! what is owed with the same event id. Attempts run in detached tasks
//! bounded by the sink's timeout; a failed attempt is retried in process
//! only while the next wait is short ([`IN_PROCESS_RETRY`]); later retries
//! are left to `notify flush`, which follows the schedule.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use crate::runs::deliveries::{DeliveryState, Owed, deliveries, owed};

use super::build::{PlanInfo, for_record};
use super::sink::{Answer, Env, Sender, Sink};
use crate::journal::notice::{CloudEvent, DeliveryResult};
use crate::journal::{Event, Record};
use crate::plan::notify::{NotifySpec, Origin, Scope, SinkRules};

/// The longest wait before a retry that a process sleeps through itself;
/// longer ones are left to `notify flush`.
pub const IN_PROCESS_RETRY: Duration = Duration::from_secs(30);

/// The notification records a journal should hold and does not: events
/// its records owe (to sinks that want them) whose notification was never
/// written (the process died between the two writes).
pub fn missing(
    records: &[Record],
    last_hash: &str,
    info: &PlanInfo,
    sinks: &[NotifySpec],
) -> Vec<Event> {
    let have: std::collections::BTreeSet<&str> = records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Notification { event, .. } => Some(event.id.as_str()),
            _ => None,
        })
        .collect();
    let mains: Vec<Record> = records
        .iter()
        .filter(|r| !matches!(r.event, Event::Notification { .. } | Event::Delivery { .. }))
        .cloned()
        .collect();
    let hash_of = |seq: u64| {
        records
            .iter()
            .find(|r| r.seq == seq + 1)
            .map_or(last_hash.to_string(), |r| r.prev.clone())
    };
    (0..mains.len())
        .flat_map(|i| for_record(&mains, i, &hash_of(mains[i].seq), info))
        .filter(|e| !have.contains(e.id.as_str()))
        .filter_map(|event| notification(event, sinks))
        .collect()
}

/// The notification record of `event` for the sinks that want it (`None`:
/// no sink does, and nothing is journaled).
pub fn notification(event: CloudEvent, sinks: &[NotifySpec]) -> Option<Event> {
    let names: Vec<String> = sinks
        .iter()
        .filter(|s| s.wants(event.kind, event.data.severity))
        .map(|s| s.name.clone())
        .collect();
    (!names.is_empty()).then(|| Event::Notification {
        event: Box::new(event),
        sinks: names,
    })
}

/// The result record of one attempt, and the wait before the next one
/// (`None`: no retry: delivered, or the schedule is spent). Pure.
pub fn judge(
    id: &str,
    sink: &Sink,
    attempt: u32,
    answer: &Answer,
    now: DateTime<Utc>,
    host: &str,
) -> (Event, Option<Duration>) {
    let wait = (!answer.delivered)
        .then(|| sink.retry.get(attempt as usize - 1).copied())
        .flatten()
        .map(|w| w.max(answer.retry_after.unwrap_or_default()));
    let result = match (answer.delivered, wait) {
        (true, _) => DeliveryResult::Delivered,
        (false, Some(_)) => DeliveryResult::Failed,
        (false, None) => DeliveryResult::GaveUp,
    };
    let event = Event::Delivery {
        id: id.to_string(),
        sink: sink.spec.name.clone(),
        attempt,
        result,
        status: answer.status,
        detail: answer.detail.clone(),
        retry_at: wait.map(|w| crate::plan::duration::after(now, w)),
        host: host.to_string(),
    };
    (event, wait)
}

/// The sinks of a run: the team's (`drctl.toml`, those of scope `all`) and
/// each of its plans' own, a plan's named `<plan>.<name>`. A plan's
/// reference to an operators' sink (`sink = NAME`) is that sink, with the
/// plan's filters when it gives any; a plan's own sink is marked
/// [`Origin::Plan`], so that it is held to the operators' rules when it is
/// resolved. A reference to no `named` sink is left out (validation
/// refuses it).
pub fn sinks_of(team: &[NotifySpec], plans: &[crate::plan::Plan]) -> Vec<NotifySpec> {
    let mut out: Vec<NotifySpec> = (team.iter())
        .filter(|s| s.scope.unwrap_or_default() == Scope::All)
        .cloned()
        .collect();
    for p in plans {
        for s in &p.spec.notify {
            let name = format!("{}.{}", p.name(), s.name);
            match &s.sink {
                Some(target) => {
                    let Some(op) = team
                        .iter()
                        .find(|t| &t.name == target && t.scope == Some(Scope::Named))
                    else {
                        continue;
                    };
                    out.push(NotifySpec {
                        name,
                        events: if s.events.is_empty() {
                            op.events.clone()
                        } else {
                            s.events.clone()
                        },
                        min_severity: s.min_severity.or(op.min_severity),
                        origin: Origin::Operators,
                        scope: None,
                        ..op.clone()
                    });
                }
                None => out.push(NotifySpec {
                    name,
                    origin: Origin::Plan,
                    plan: Some(p.name().to_string()),
                    ..s.clone()
                }),
            }
        }
    }
    out
}

/// Sends events and collects the results; the journal's [`Outbox`] for one
/// run.
///
/// [`Outbox`]: crate::journal::Outbox
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    specs: Vec<NotifySpec>,
    sinks: BTreeMap<String, Result<Arc<Sink>, String>>,
    info: PlanInfo,
    region: String,
    host: String,
    sender: Arc<Sender>,
    records: Mutex<Vec<Record>>,
    results: Mutex<Vec<Event>>,
    /// Sinks that have answered an attempt in this process (delivered or not).
    answered: Mutex<std::collections::BTreeSet<String>>,
    /// Attempts under way: the sink, when its delivery began, the task.
    running: Mutex<Vec<(String, tokio::time::Instant, tokio::task::JoinHandle<()>)>>,
}

impl Notifier {
    /// A notifier for a run in `region` (SNS and EventBridge publish there)
    /// with these sinks; secrets are read now (a plan's sink's under
    /// `rules`), and a sink whose secret is missing, or which the rules
    /// refuse, fails each attempt with the reason.
    pub fn new(
        specs: Vec<NotifySpec>,
        info: PlanInfo,
        region: &str,
        host: &str,
        sender: Arc<Sender>,
        (env, rules): (&Env, &SinkRules),
    ) -> Self {
        let sinks = specs
            .iter()
            .map(|s| (s.name.clone(), Sink::resolve(s, env, rules).map(Arc::new)))
            .collect();
        Self {
            inner: Arc::new(Inner {
                specs,
                sinks,
                info,
                region: region.to_string(),
                host: host.to_string(),
                sender,
                records: Mutex::new(Vec::new()),
                results: Mutex::new(Vec::new()),
                answered: Mutex::new(Default::default()),
                running: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The sinks' entries.
    pub fn specs(&self) -> &[NotifySpec] {
        &self.inner.specs
    }

    /// Every secret value of the sinks (for the credential scan).
    pub fn secret_values(&self) -> Vec<String> {
        (self.inner.sinks.values())
            .filter_map(|s| s.as_ref().ok())
            .flat_map(|s| s.secret_values())
            .collect()
    }

    /// Takes up a run opened again: remembers its records and returns what
    /// to journal now (notifications that were never written) and what is
    /// owed to send (the caller journals the first, then calls
    /// [`Notifier::resend`]).
    pub fn prime(&self, records: &[Record], last_hash: &str) -> Vec<Event> {
        let mains: Vec<Record> = records
            .iter()
            .filter(|r| !matches!(r.event, Event::Notification { .. } | Event::Delivery { .. }))
            .cloned()
            .collect();
        *self.inner.records.lock().expect("records") = mains;
        missing(records, last_hash, &self.inner.info, &self.inner.specs)
    }

    /// Sends what `records` still owe, now (each from its next attempt).
    pub fn resend(&self, records: &[Record]) {
        for o in owed(records) {
            self.spawn(o.event, o.sink, o.attempts + 1);
        }
    }

    /// Sends what `records` owe and waits for every attempt (following the
    /// retry schedule while the next wait is within `follow`), journaling
    /// nothing itself: results are [`Notifier::take_results`].
    pub async fn flush(&self, records: &[Record], now_only: bool, follow: Duration) {
        let mut tasks = Vec::new();
        for o in owed(records) {
            let wait = match (now_only, o.retry_at) {
                (false, Some(at)) => (at - Utc::now()).to_std().unwrap_or_default(),
                _ => Duration::ZERO,
            };
            if wait > follow {
                continue;
            }
            let inner = self.inner.clone();
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                deliver(inner, o.event, o.sink, o.attempts + 1, follow).await;
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Delivery results not yet journaled.
    pub fn take_results(&self) -> Vec<Event> {
        std::mem::take(&mut *self.inner.results.lock().expect("results"))
    }

    /// Whether some attempt is still going on.
    pub fn busy(&self) -> bool {
        let mut running = self.inner.running.lock().expect("running");
        running.retain(|(_, _, t)| !t.is_finished());
        !running.is_empty()
    }

    /// Whether an attempt is going on at a sink worth waiting for before
    /// the process exits: one with no delivery under way for longer than
    /// `patience` (a third of it for a sink that has not answered yet in
    /// this process). A sink hanging or retrying is not waited for: what it
    /// owes is handed off (and re-sent with the same id).
    pub fn worth_waiting(&self, patience: Duration) -> bool {
        let answered = self.inner.answered.lock().expect("answered").clone();
        let mut running = self.inner.running.lock().expect("running");
        running.retain(|(_, _, t)| !t.is_finished());
        let limit = |sink: &str| {
            if answered.contains(sink) {
                patience
            } else {
                patience / 3
            }
        };
        let slow: std::collections::BTreeSet<&str> = (running.iter())
            .filter(|(sink, since, _)| since.elapsed() > limit(sink))
            .map(|(sink, _, _)| sink.as_str())
            .collect();
        (running.iter()).any(|(sink, _, _)| !slow.contains(sink.as_str()))
    }

    /// Stops every attempt still going on (the process is about to exit;
    /// what they owed is still owed in the journal).
    pub fn abandon(&self) {
        for (_, _, t) in self.inner.running.lock().expect("running").drain(..) {
            t.abort();
        }
    }

    fn spawn(&self, event: CloudEvent, sink: String, attempt: u32) {
        let inner = self.inner.clone();
        let name = sink.clone();
        let task = tokio::spawn(deliver(inner, event, sink, attempt, IN_PROCESS_RETRY));
        let since = tokio::time::Instant::now();
        (self.inner.running.lock().expect("running")).push((name, since, task));
    }
}

/// Attempts one event at one sink from `attempt` on, sleeping through the
/// retries whose wait is within `follow`; each result is kept for the
/// journal.
async fn deliver(
    inner: Arc<Inner>,
    event: CloudEvent,
    sink: String,
    mut attempt: u32,
    follow: Duration,
) {
    loop {
        let (record, wait) = match inner.sinks.get(&sink) {
            Some(Ok(s)) => {
                let answer = inner.sender.send(s, &event, &inner.region).await;
                if answer.delivered || answer.status.is_some() {
                    (inner.answered.lock().expect("answered")).insert(sink.clone());
                }
                judge(&event.id, s, attempt, &answer, Utc::now(), &inner.host)
            }
            other => {
                let why = match other {
                    Some(Err(e)) => e.clone(),
                    _ => format!("sink {sink} is not configured on {}", inner.host),
                };
                let record = Event::Delivery {
                    id: event.id.clone(),
                    sink: sink.clone(),
                    attempt,
                    result: DeliveryResult::Failed,
                    status: None,
                    detail: why,
                    retry_at: None,
                    host: inner.host.clone(),
                };
                (record, None)
            }
        };
        if let Event::Delivery { result, detail, .. } = &record
            && *result != DeliveryResult::Delivered
        {
            tracing::warn!(
                "notification {} to sink {sink}: attempt {attempt} {result}: {detail}",
                event.id
            );
        }
        inner.results.lock().expect("results").push(record);
        match wait {
            Some(w) if w <= follow => {
                tokio::time::sleep(w).await;
                attempt += 1;
            }
            _ => return,
        }
    }
}

impl crate::journal::Outbox for Notifier {
    fn observe(&self, record: &Record, hash: &str) -> Vec<Event> {
        if matches!(
            record.event,
            Event::Notification { .. } | Event::Delivery { .. }
        ) {
            return Vec::new();
        }
        let mut records = self.inner.records.lock().expect("records");
        records.push(record.clone());
        for_record(&records, records.len() - 1, hash, &self.inner.info)
            .into_iter()
            .filter_map(|e| notification(e, &self.inner.specs))
            .collect()
    }

    fn send(&self, record: &Record) {
        if let Event::Notification { event, sinks } = &record.event {
            for s in sinks {
                self.spawn(CloudEvent::clone(event), s.clone(), 1);
            }
        }
    }

    fn drain(&self) -> Vec<Event> {
        self.take_results()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(retry_after: Option<Duration>) -> Answer {
        Answer {
            delivered: false,
            status: Some(429),
            detail: "429 slow down".into(),
            retry_after,
        }
    }

    /// A sink answering `Retry-After: 18446744073709551615` made the next
    /// attempt's time overflow (a `DateTime` plus a wait past its end): the
    /// wait is capped where the header is read, and the time saturates.
    #[test]
    fn regression_retry_after_overflow_panicked() {
        let spec: NotifySpec = toml::from_str(
            "name = \"ops\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\nretry = [\"1s\", \"5s\"]\n",
        )
        .expect("spec");
        let env: super::super::sink::Env = Arc::new(|_| None);
        let sink = Sink::resolve(&spec, &env, &SinkRules::default()).expect("sink");
        let now = Utc::now();
        let header = super::super::sink::retry_after("18446744073709551615");
        assert_eq!(header, Some(crate::plan::duration::MAX_DURATION));
        let (event, wait) = judge("e1", &sink, 1, &answer(header), now, "h");
        assert_eq!(wait, header);
        let Event::Delivery { retry_at, .. } = event else {
            panic!("a delivery record")
        };
        assert_eq!(
            retry_at,
            Some(crate::plan::duration::after(now, wait.unwrap()))
        );
        // Whatever an answer holds, the time saturates.
        let (event, _) = judge("e1", &sink, 2, &answer(Some(Duration::MAX)), now, "h");
        let Event::Delivery { retry_at, .. } = event else {
            panic!("a delivery record")
        };
        assert_eq!(retry_at, Some(DateTime::<Utc>::MAX_UTC));
        // A short one leaves the schedule's own wait.
        let (_, wait) = judge("e1", &sink, 1, &answer(Some(Duration::ZERO)), now, "h");
        assert_eq!(wait, Some(Duration::from_secs(1)));
    }

    #[test]
    fn a_plans_reference_is_the_operators_sink_with_the_plans_filters() {
        let team: Vec<NotifySpec> = [
            "name = \"ops\"\nkind = \"webhook\"\nurl_env = \"OPS\"",
            "name = \"payments-slack\"\nkind = \"slack\"\nurl_env = \"PAY\"\nscope = \"named\"\nmin_severity = \"warning\"",
        ]
        .iter()
        .map(|t| toml::from_str(t).unwrap())
        .collect();
        let mut plan = crate::plan::reference()
            .into_iter()
            .find(|p| p.name() == "payments")
            .expect("payments");
        plan.spec.notify = [
            "name = \"owner\"\nsink = \"payments-slack\"\nevents = [\"dev.drctl.run.*\"]",
            "name = \"own\"\nkind = \"webhook\"\nurl_env = \"DRCTL_NOTIFY_OWN\"",
            "name = \"gone\"\nsink = \"ops\"",
        ]
        .iter()
        .map(|t| toml::from_str(t).unwrap())
        .collect();
        let sinks = sinks_of(&team, std::slice::from_ref(&plan));
        let names: Vec<&str> = sinks.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["ops", "payments.owner", "payments.own"],
            "a named sink hears only of the plans naming it"
        );
        let owner = &sinks[1];
        assert_eq!(owner.kind, Some(crate::plan::notify::SinkKind::Slack));
        assert_eq!(owner.url_env.as_deref(), Some("PAY"));
        assert_eq!(owner.events, ["dev.drctl.run.*"]);
        assert_eq!(
            owner.min_severity,
            Some(crate::plan::notify::Severity::Warning)
        );
        assert_eq!(owner.origin, Origin::Operators);
        assert_eq!(sinks[2].origin, Origin::Plan);
    }
}
