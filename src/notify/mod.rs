//! Notifications: telling people of runs, drills and schedules, from the
//! journal (documented in `docs/notify.md`).
//!
//! The journal is the outbox. A record that people must hear of is followed
//! in the journal by a notification record holding the CloudEvent exactly as
//! sent ([`build`] derives it, purely, from the records), then each attempt's
//! result ([`outbox`]). Sending never holds a step up: attempts run in
//! detached, bounded tasks, and a sink that is down, slow or hanging shows as
//! a warning and a report finding (`notification_undelivered`), never as a
//! changed outcome or exit code. Whatever a process could not deliver before
//! it exits stays owed in the journal and is sent by the next process that
//! opens the run (`runs resume`, `notify flush`, or the detached
//! `notify flush --follow` a command hands off to), with the same id.
//! Only the run itself journals into its journal; what anyone else learns
//! (a delivery's result, a notification a crash kept from being written) is
//! recorded beside it as late facts (`crate::journal::late`), which the
//! read model merges, so a flush from cron never races a live run.
//!
//! This module stands beside the report: it reads runs through the read
//! model and is used by the engine, which only installs a [`Notifier`] on
//! each journal it writes. [`sink`] makes one attempt at one sink (signed
//! webhooks, Slack, PagerDuty, SNS and EventBridge); [`Hub`] is the
//! process's, whose `settle` journals what its notifiers hold before the
//! process exits (waiting briefly for attempts under way).

pub mod build;
pub mod outbox;
pub mod sink;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use build::PlanInfo;
pub use outbox::{DeliveryState, Notifier, Owed, deliveries, owed};
pub use sink::{Answer, Env, Publish, Sender, Sink};

use crate::journal::{JournalError, JournalStore};
use crate::plan::notify::{NotifySpec, SinkRules};

/// A notifier of this process, the journal it notifies from and where
/// that journal lives.
type Active = (String, Arc<dyn JournalStore>, Arc<Notifier>);

/// The process's notification setup: the team's sinks, where secrets come
/// from, what plans' own sinks may use, one sender, and the notifiers of
/// the runs this process wrote (so that their last results are journaled
/// before it exits).
pub struct Hub {
    team: Vec<NotifySpec>,
    env: Env,
    rules: SinkRules,
    sender: Arc<Sender>,
    host: String,
    active: Mutex<Vec<Active>>,
}

impl Hub {
    /// A hub for `team` sinks, reading secrets from `env`, plans' own
    /// sinks under the strictest rules (see [`Hub::with_rules`]).
    pub fn new(team: Vec<NotifySpec>, env: Env, publish: Option<Publish>, host: &str) -> Self {
        Self {
            team,
            env,
            rules: SinkRules::default(),
            sender: Arc::new(Sender::new(publish)),
            host: host.to_string(),
            active: Mutex::new(Vec::new()),
        }
    }

    /// The same hub with the operators' rules for plans' own sinks.
    pub fn with_rules(mut self, rules: SinkRules) -> Self {
        self.rules = rules;
        self
    }

    /// What plans' own sinks may use.
    pub fn rules(&self) -> &SinkRules {
        &self.rules
    }

    /// The team's sinks.
    pub fn team(&self) -> &[NotifySpec] {
        &self.team
    }

    /// The sender (for `notify test`).
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Where secrets come from.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// A notifier for the journal `run_id` in `store`, of `plans`, in
    /// `region` (`None`: no sink is configured, and nothing is journaled).
    pub fn notifier(
        &self,
        store: &Arc<dyn JournalStore>,
        run_id: &str,
        plans: &[crate::plan::Plan],
        region: &str,
    ) -> Option<Arc<Notifier>> {
        let specs = outbox::sinks_of(&self.team, plans);
        if specs.is_empty() {
            return None;
        }
        let n = Arc::new(Notifier::new(
            specs,
            PlanInfo::of(plans),
            region,
            &self.host,
            self.sender.clone(),
            (&self.env, &self.rules),
        ));
        (self.active.lock().expect("active")).push((run_id.to_string(), store.clone(), n.clone()));
        Some(n)
    }

    /// Before the process exits: journals the results its notifiers hold
    /// (waiting at most `grace` for attempts under way, as
    /// [`Notifier::worth_waiting`] says: a sink hanging or retrying is not
    /// waited for) and any notification a record owes that was never
    /// written, and returns the runs that still owe something, for a
    /// hand-off to `notify flush --follow`.
    pub async fn settle(&self, grace: Duration) -> Vec<String> {
        let active: Vec<Active> = std::mem::take(&mut *self.active.lock().expect("active"));
        let deadline = tokio::time::Instant::now() + grace;
        while active.iter().any(|(_, _, n)| n.worth_waiting(grace))
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut still_owed = Vec::new();
        for (run, store, n) in active {
            let busy = n.busy();
            n.abandon();
            match settle_run(&store, &run, &n, &self.host).await {
                Ok(owes) if !owes && !busy => {}
                Ok(_) => still_owed.push(run),
                Err(e) => {
                    tracing::warn!("cannot journal the notifications of run {run}: {e}");
                    still_owed.push(run);
                }
            }
        }
        still_owed
    }
}

impl Hub {
    /// For a long-running process (`drctl watch`): journals the results of
    /// the notifiers whose attempts have all ended and forgets them; the
    /// others stay for the next call (or for [`Hub::settle`]).
    pub async fn settle_done(&self) {
        let done: Vec<Active> = {
            let mut active = self.active.lock().expect("active");
            let (done, busy): (Vec<Active>, Vec<Active>) = std::mem::take(&mut *active)
                .into_iter()
                .partition(|(_, _, n)| !n.busy());
            *active = busy;
            done
        };
        for (run, store, n) in done {
            if let Err(e) = settle_run(&store, &run, &n, &self.host).await {
                tracing::warn!("cannot journal the notifications of {run}: {e}");
            }
        }
    }

    /// Notifications this process journaled whose delivery is still under way.
    pub fn pending(&self) -> usize {
        self.active
            .lock()
            .expect("active")
            .iter()
            .filter(|(_, _, n)| n.busy())
            .count()
    }
}

/// Where a notice is journaled ([`tell_once`]), and whether this call
/// journaled and sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Told {
    /// The notice journal that holds it.
    pub journal: String,
    /// Journaled and sent by this call (`false`: it was there already, and
    /// only what it still owed was sent).
    pub now: bool,
}

/// Tells `event` once, however many processes (or machines) try: it is
/// journaled in a notice journal of its own, `id`, created only once, and
/// delivered from there like a run's events; a second teller finds the
/// journal and only sends what it still owes (same event id). `region`:
/// where SNS and EventBridge publish. `Ok(None)`: no sink wants it.
///
/// A journal at `id` counts as the notice only when it is authentic (read
/// as every reader reads journals) and holds this notification (its event
/// id). The id is predictable, so a writer of the state with no key can
/// put something there first; then the notice is journaled under a second
/// id that writer cannot guess ([`fresh_id`]), and sent: [`Told::journal`]
/// says where, for a marker to name.
pub async fn tell_once(
    hub: &Hub,
    notices: &Arc<dyn JournalStore>,
    id: &str,
    plans: &[crate::plan::Plan],
    region: &str,
    event: crate::journal::notice::CloudEvent,
) -> Result<Option<Told>, JournalError> {
    let Some(n) = hub.notifier(notices, id, plans, region) else {
        return Ok(None);
    };
    let event_id = event.id.clone();
    let Some(note) = outbox::notification(event, n.specs()) else {
        return Ok(None);
    };
    let mut last = None;
    for at in [id.to_string(), fresh_id(notices.keys(), id)] {
        match crate::journal::Journal::create(notices.clone(), &at).await {
            Ok(mut j) => {
                let written = j.append(note).await?;
                j.flush().await?;
                crate::journal::Outbox::send(n.as_ref(), &written);
                return Ok(Some(Told {
                    journal: at,
                    now: true,
                }));
            }
            Err(JournalError::Exists { .. }) => {
                match holding(notices.as_ref(), &at, &event_id).await {
                    Ok(records) => {
                        n.resend(&records);
                        return Ok(Some(Told {
                            journal: at,
                            now: false,
                        }));
                    }
                    Err(why) => {
                        tracing::warn!(
                            "notice journal {at} is not this notice ({why}): journaling it under another id"
                        );
                        last = Some(JournalError::Corrupt {
                            run_id: at,
                            detail: why,
                        });
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| JournalError::Exists { run_id: id.into() }))
}

/// The records of notice journal `at` when it is authentic (read as every
/// reader reads a journal: authenticated where keys are listed) and holds
/// the notification `event_id`; otherwise why not. What a notice's
/// journal, or a marker naming one, must show for the notice to count as
/// told.
pub async fn holding(
    notices: &dyn JournalStore,
    at: &str,
    event_id: &str,
) -> Result<Vec<crate::journal::Record>, String> {
    let told = crate::runs::late::read(notices, at)
        .await
        .map_err(|e| e.to_string())?;
    let holds = told.records.iter().any(|r| {
        matches!(&r.event, crate::journal::Event::Notification { event, .. } if event.id == event_id)
    });
    if holds {
        Ok(told.records)
    } else {
        Err(format!("it holds no notification {event_id}"))
    }
}

/// The second place for the notice `id`: `id` and a suffix a writer of the
/// state cannot guess, the digest of this process's signature over `id`
/// where it holds a key (Ed25519 signs alike each time, so every teller
/// with that key finds the same place, and one tells once), else random.
pub fn fresh_id(keys: &crate::journal::keys::RunKeys, id: &str) -> String {
    use sha2::Digest as _;
    let seed = match &keys.signer {
        Some(key) => key.sign("drctl notice place", id.as_bytes()),
        None => crate::journal::new_nonce(),
    };
    let suffix = hex::encode(&sha2::Sha256::digest(seed.as_bytes())[..6]);
    // Journal ids are at most 128 characters.
    let base: String = id.chars().take(128 - suffix.len() - 1).collect();
    format!("{base}-{suffix}")
}

/// Journals a notifier's results and the notifications never written, as
/// late facts beside the run's journal (the run has ended, or is not this
/// process's to append to: `crate::journal::late`); whether the run still
/// owes any event.
async fn settle_run(
    store: &Arc<dyn JournalStore>,
    run_id: &str,
    n: &Notifier,
    host: &str,
) -> Result<bool, JournalError> {
    let run = crate::runs::late::read(store.as_ref(), run_id).await?;
    let facts: Vec<crate::journal::Event> = n
        .prime(&run.records, &run.last_hash)
        .into_iter()
        .chain(n.take_results())
        .collect();
    let written = crate::journal::late::record(store.as_ref(), run_id, host, facts).await?;
    let all = crate::runs::late::merge(&run.records, &written);
    Ok(!owed(&all).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::keys::RunKeys;
    use crate::journal::store::MemoryStore;
    use crate::journal::trust::Keyed;
    use crate::sign::SecretKey;

    /// A notice's second place: the same for every teller with one key,
    /// another for another key, never the first, and a valid journal id
    /// however long the first.
    #[test]
    fn a_notices_second_place_is_keyed_and_a_valid_id() {
        let (a, b) = (SecretKey::generate(), SecretKey::generate());
        let keyed = |k: &SecretKey| RunKeys::new(Some(k.clone()), vec![k.public()]);
        let id = "watch-payments-us-west-2-start-0-proposed";
        let first = fresh_id(&keyed(&a), id);
        assert_eq!(first, fresh_id(&keyed(&a), id));
        assert_ne!(first, fresh_id(&keyed(&b), id));
        assert!(first.starts_with(&format!("{id}-")), "{first}");
        let none = RunKeys::new(None, Vec::new());
        assert_ne!(fresh_id(&none, id), fresh_id(&none, id), "random");
        let long = "w".repeat(128);
        for keys in [keyed(&a), none] {
            let fresh = fresh_id(&keys, &long);
            crate::journal::store::validate_run_id(&fresh).unwrap();
            assert_ne!(fresh, long);
        }
    }

    /// Issue 74, attack 2, at the one place every teller goes through (a
    /// watch decision, a veto, an overdue drill): with a journal squatted at
    /// the notice's id, the notice is journaled at its second place and
    /// sent; told again, it is found there, and nothing is journaled anew.
    #[tokio::test]
    async fn a_squatted_notice_id_is_passed_over_and_the_second_place_found_again() {
        let fake = crate::cloud::fake::FakeCloud::new();
        let sink: NotifySpec = toml::from_str(
            "name = \"ops\"\nkind = \"sns\"\ntopic_arn = \"arn:aws:sns:{region}:000000000000:drctl\"",
        )
        .unwrap();
        let hub = Hub::new(
            vec![sink],
            Arc::new(|_| None),
            Some(fake.clouds().publisher),
            "test-host",
        );
        let key = SecretKey::generate();
        let raw = Arc::new(MemoryStore::new());
        let keys = RunKeys::new(Some(key.clone()), vec![key.public()]);
        let notices: Arc<dyn JournalStore> = Arc::new(Keyed::new(raw.clone(), keys));
        let plan = crate::plan::reference_with_gcp()
            .into_iter()
            .find(|p| p.name() == "payments")
            .unwrap();
        let due = Some(chrono::Utc::now());
        let id = &crate::notify::build::overdue_journal(plan.name(), due);
        raw.create(id).await.unwrap();
        raw.append(id, 0, "{\"junk\":true}").await.unwrap();
        let event = || crate::notify::build::overdue(&plan, None, due, chrono::Utc::now(), "late");
        let plans = std::slice::from_ref(&plan);
        let told = tell_once(&hub, &notices, id, plans, "us-east-1", event())
            .await
            .unwrap()
            .expect("a sink wants it");
        assert!(told.now);
        assert_eq!(told.journal, fresh_id(notices.keys(), id));
        let again = tell_once(&hub, &notices, id, plans, "us-east-1", event())
            .await
            .unwrap()
            .expect("a sink wants it");
        assert_eq!(
            again,
            Told {
                journal: told.journal,
                now: false
            }
        );
        assert_eq!(raw.list().await.unwrap().len(), 2);
    }
}
