//! What the journals say that `drctl watch` needs: where each plan serves
//! now, the run that put it there and how long that took, and how many
//! failovers watch itself started lately (its velocity cap). Pure functions
//! of records, like the rest of the read model: every observer that reads
//! the same shared state reaches the same answers, which is what makes an
//! outage *episode* a name they all agree on.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::journal::event::{Event, Outcome, Record, RunKind};
use crate::journal::payload::RunFlags;
use crate::journal::watch::{WatchDecision, WatchFact, WatchOrigin};

/// A failover or failback of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Switch {
    /// The run.
    pub run_id: String,
    /// Failover or failback.
    pub kind: RunKind,
    /// Where it moved the plan.
    pub target: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub ended: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: Outcome,
    /// How `drctl watch` started it, if it did.
    pub watch: Option<WatchOrigin>,
}

impl Switch {
    /// How long it took, from the declared disaster (or its start) to its end.
    pub fn took(&self, declared: Option<DateTime<Utc>>) -> Option<Duration> {
        let from = declared.unwrap_or(self.started).min(self.started);
        self.ended.and_then(|e| (e - from).to_std().ok())
    }
}

/// Where a plan stands by its journals.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanHistory {
    /// The region it serves from: the target of its last succeeded
    /// failover or failback, else its home.
    pub active: String,
    /// That run (`None`: the plan never moved).
    pub last: Option<Switch>,
    /// A failover or failback of the plan that has not ended.
    pub running: Option<Switch>,
    /// The plan's most recent failover or failback, however it ended (a
    /// start watch claimed is followed by one: its journal).
    pub latest: Option<Switch>,
}

impl PlanHistory {
    /// The outage episode of the plan's active region: one name for every
    /// observer, the same until a run moves the plan.
    pub fn episode(&self, plan: &str) -> String {
        let since = self.last.as_ref().map_or("start", |s| s.run_id.as_str());
        format!("{plan}/{}/{since}", self.active)
    }
}

/// The switches of every run, in start order.
pub fn switches(runs: &[(String, Vec<Record>)]) -> Vec<(Vec<String>, Switch)> {
    let mut out: Vec<(Vec<String>, Switch)> = runs
        .iter()
        .filter_map(|(id, records)| {
            let first = records.first()?;
            let Event::RunStarted {
                kind,
                target,
                plans,
                flags,
                ..
            } = &first.event
            else {
                return None;
            };
            if !matches!(kind, RunKind::Failover | RunKind::Failback) {
                return None;
            }
            let end = records.iter().rev().find_map(|r| match &r.event {
                Event::RunFinished { outcome, .. } => Some((r.at, *outcome)),
                _ => None,
            });
            let watch = RunFlags::of(flags).ok().and_then(|f| f.watch);
            Some((
                plans.iter().map(|p| p.name.clone()).collect(),
                Switch {
                    run_id: id.clone(),
                    kind: *kind,
                    target: target.clone(),
                    started: first.at,
                    ended: end.map(|e| e.0),
                    outcome: end.map_or(Outcome::Unfinished, |e| e.1),
                    watch,
                },
            ))
        })
        .collect();
    out.sort_by_key(|(_, s)| s.started);
    out
}

/// Where `plan` (home `home`) stands, from every run's switches.
pub fn history(plan: &str, home: &str, switches: &[(Vec<String>, Switch)]) -> PlanHistory {
    let mine = || {
        switches
            .iter()
            .filter(move |(plans, _)| plans.iter().any(|p| p == plan))
            .map(|(_, s)| s)
    };
    let last = mine().rfind(|s| s.outcome.succeeded()).cloned();
    // Only a run started after the last one that moved the plan: an older
    // one left unfinished (a crash long ago) holds nothing now.
    let after_last = |s: &&Switch| last.as_ref().is_none_or(|l| s.started > l.started);
    let running = mine()
        .filter(after_last)
        .rfind(|s| s.outcome == Outcome::Unfinished)
        .cloned();
    PlanHistory {
        active: last
            .as_ref()
            .map_or_else(|| home.to_string(), |s| s.target.clone()),
        last,
        running,
        latest: mine().next_back().cloned(),
    }
}

/// Failovers `drctl watch` started at or after `since`, across all plans.
pub fn started_by_watch(switches: &[(Vec<String>, Switch)], since: DateTime<Utc>) -> usize {
    switches
        .iter()
        .filter(|(_, s)| s.watch.is_some() && s.started >= since)
        .count()
}

/// One phase of a watch-started failover's RTO.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Phase {
    /// `detect`, `decide`, `act` or `converge`.
    pub name: &'static str,
    /// Its start, when known.
    pub from: Option<DateTime<Utc>>,
    /// Its end, when known.
    pub to: Option<DateTime<Utc>>,
    /// Its length (`None`: unknown, never zero for unknown).
    pub seconds: Option<f64>,
    /// What it is measured from and to.
    pub basis: String,
}

/// The RTO of a failover watch started, from the first failed
/// observation: detect → decide → act → converge, each measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Waterfall {
    /// The observer that started it.
    pub observer: String,
    /// The observers whose votes made the quorum.
    pub votes: Vec<String>,
    /// `propose` or `auto`.
    pub mode: String,
    /// The watcher's journal, where its observations and decision are.
    pub journal: String,
    /// The four phases, in order.
    pub phases: Vec<Phase>,
}

/// The waterfall of a run that `origin` started (`steps`: its timings;
/// `restored`: its RTO point, when measured).
pub fn waterfall(
    origin: &WatchOrigin,
    steps: &[crate::runs::measure::StepTiming],
    restored: Option<DateTime<Utc>>,
) -> Waterfall {
    // Convergence: from the start of the step that verifies the switch
    // (records read back, or names resolved) to the RTO point.
    let verify = verify_started(steps);
    Waterfall {
        observer: origin.observer.clone(),
        votes: origin.votes.clone(),
        mode: origin.mode.clone(),
        journal: origin.journal.clone(),
        phases: vec![
            phase(
                "detect",
                Some(origin.detected_at),
                Some(origin.quorum_at),
                "the first failed observation → a quorum of observers judged the region down",
            ),
            phase(
                "decide",
                Some(origin.quorum_at),
                Some(origin.decided_at),
                "the quorum → the decision to fail over (the veto window, in propose mode)",
            ),
            phase(
                "act",
                Some(origin.decided_at),
                verify.or(restored),
                "the decision → the traffic switch's verification began (the run: gates, promotion, scaling, switch)",
            ),
            converge(phase(
                "converge",
                verify,
                restored,
                "the switch's verification → the RTO point (names answer with the target)",
            )),
        ],
    }
}

/// When the run's traffic switch began to be verified (records read
/// back, or names resolved): where acting ends and converging begins.
/// A step verifies when its kind says so ([`Traits::converges`](crate::steps::Traits::converges)),
/// whatever the traffic kind (Route 53, Cloud DNS).
pub fn verify_started(steps: &[crate::runs::measure::StepTiming]) -> Option<DateTime<Utc>> {
    let converges = |id: &str| {
        let name = crate::journal::StepName::parse(id).ok()?;
        let kind: crate::steps::KindName = name.kind().parse().ok()?;
        Some(kind.traits().converges)
    };
    steps
        .iter()
        .filter(|s| converges(&s.step).unwrap_or(false))
        .filter_map(|s| s.started)
        .min()
}

/// The RTO of a run an operator started, in the phases of [`waterfall`]
/// that it has: `decide` from the declared disaster (`declared`) to the
/// run's start (when one was declared), `act` and `converge` as for a
/// watched run. Nothing was observed, so there is no `detect`.
pub fn operator_phases(
    declared: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    steps: &[crate::runs::measure::StepTiming],
    restored: Option<DateTime<Utc>>,
) -> Vec<Phase> {
    let verify = verify_started(steps);
    let mut out = Vec::new();
    if declared.is_some() {
        out.push(phase(
            "decide",
            declared,
            Some(started),
            "the declared disaster → the run's start (approval, the decision)",
        ));
    }
    out.push(phase(
        "act",
        Some(started),
        verify.or(restored),
        "the run's start → the traffic switch's verification began (gates, promotion, scaling, switch)",
    ));
    // A run with no verification step acts up to its RTO point: there
    // is no convergence apart to measure (not an unknown one).
    if verify.is_some() || restored.is_none() {
        out.push(converge(phase(
            "converge",
            verify,
            restored,
            "the switch's verification → the RTO point",
        )));
    }
    out
}

/// A phase from `from` to `to`, measured when both are known and in
/// order (else unknown, saying so in its basis, never zero).
fn phase(
    name: &'static str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    basis: &str,
) -> Phase {
    let seconds = match (from, to) {
        (Some(f), Some(t)) if t >= f => Some((t - f).num_milliseconds() as f64 / 1000.0),
        _ => None,
    };
    let basis = match seconds {
        Some(_) => basis.to_string(),
        None => format!("unknown: {basis}"),
    };
    Phase {
        name,
        from,
        to,
        seconds,
        basis,
    }
}

/// The convergence phase when the RTO point came before the verification
/// step began (Route 53 answered INSYNC at once, or the names already
/// answered with the target): measured, and it took no time, rather than
/// unknown.
fn converge(p: Phase) -> Phase {
    match (p.from, p.to) {
        (Some(f), Some(t)) if t < f => Phase {
            seconds: Some(0.0),
            basis: "the switch's verification → the RTO point: the names already answered with the target when the verification began".to_string(),
            ..p
        },
        _ => p,
    }
}

/// One decision of a watcher, as its journal keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRow {
    /// When.
    pub at: DateTime<Utc>,
    /// The observer.
    pub observer: String,
    /// The plan.
    pub plan: String,
    /// The decision.
    pub decision: WatchDecision,
    /// Why.
    pub why: String,
    /// The run it started, if any.
    pub run_id: Option<String>,
}

/// Why a watcher's journal may not be read as its observer's (`None`: it
/// may): a record naming an observer other than the one the key that
/// signed its line is listed under (`owners`: key id to observer name,
/// from `[[watch.observers]]`). Any listed observer's key verifies a
/// watch journal, so without this a taken observer could write
/// "drctl-watch-2 vetoed" into the compliance report. With no observers
/// listed nothing is signed, and nothing is checked.
/// Only the first `covered` lines are judged: the records its signed head
/// covers (lines appended after it are not the journal's, and one of them
/// must not take the journal's real decisions out of the report).
pub fn misattributed(
    text: &str,
    covered: usize,
    owners: &BTreeMap<String, String>,
) -> Option<String> {
    if owners.is_empty() {
        return None;
    }
    for (i, line) in text.lines().take(covered).enumerate() {
        let Ok(r) = serde_json::from_str::<Record>(line) else {
            continue;
        };
        let Event::Watch { observer, .. } = &r.event else {
            continue;
        };
        let signer = crate::journal::keys::line_signer(line);
        let owner = signer.as_deref().and_then(|k| owners.get(k));
        if owner != Some(observer) {
            return Some(format!(
                "line {}: a record of observer {observer} signed by {}",
                i + 1,
                match (signer, owner) {
                    (Some(k), Some(o)) => format!("{o}'s key {k}"),
                    (Some(k), None) => format!("key {k}, no listed observer's"),
                    (None, _) => "no key".into(),
                }
            ));
        }
    }
    None
}

/// Every decision in a watcher's journal, in order./// Every decision in a watcher's journal, in order.
pub fn decisions(records: &[Record]) -> Vec<DecisionRow> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Watch {
                observer,
                plan,
                fact,
            } => match fact.as_ref() {
                WatchFact::Decided {
                    decision,
                    why,
                    run_id,
                    ..
                } => Some(DecisionRow {
                    at: r.at,
                    observer: observer.clone(),
                    plan: plan.clone(),
                    decision: *decision,
                    why: why.clone(),
                    run_id: run_id.clone(),
                }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::PlanRef;

    fn run(
        id: &str,
        kind: RunKind,
        target: &str,
        at: i64,
        outcome: Option<Outcome>,
    ) -> (String, Vec<Record>) {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let mut records = vec![Record {
            seq: 0,
            at: t(at),
            prev: String::new(),
            event: Event::RunStarted {
                run_id: id.into(),
                kind,
                target: target.into(),
                plans: vec![PlanRef {
                    name: "payments".into(),
                    digest: String::new(),
                }],
                operator: None,
                host: "h".into(),
                pid: 1,
                flags: serde_json::json!({"mode": "failover"}),
                declared_at: None,
                nonce: None,
                steps: vec![],
            },
            fence: Default::default(),
            late: None,
        }];
        if let Some(o) = outcome {
            records.push(Record {
                seq: 1,
                at: t(at + 60),
                prev: String::new(),
                event: Event::RunFinished {
                    outcome: o,
                    summary: serde_json::json!({}),
                },
                fence: Default::default(),
                late: None,
            });
        }
        (id.into(), records)
    }

    #[test]
    fn the_active_region_is_the_last_succeeded_switch() {
        let runs = vec![
            run(
                "a",
                RunKind::Failover,
                "us-east-1",
                100,
                Some(Outcome::Succeeded),
            ),
            run(
                "b",
                RunKind::Failback,
                "us-west-2",
                200,
                Some(Outcome::Failed),
            ),
            run(
                "c",
                RunKind::Drill,
                "us-east-1",
                300,
                Some(Outcome::Succeeded),
            ),
        ];
        let h = history("payments", "us-west-2", &switches(&runs));
        assert_eq!(h.active, "us-east-1");
        assert_eq!(h.last.as_ref().unwrap().run_id, "a");
        assert_eq!(
            h.latest.as_ref().unwrap().run_id,
            "b",
            "failed, yet the latest"
        );
        assert_eq!(h.episode("payments"), "payments/us-east-1/a");
        assert_eq!(h.last.unwrap().took(None), Some(Duration::from_secs(60)));
        let none = history("payments", "us-west-2", &[]);
        assert_eq!(none.episode("payments"), "payments/us-west-2/start");
    }

    #[test]
    fn the_waterfall_measures_each_phase_and_marks_the_unknown() {
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let origin = WatchOrigin {
            observer: "a".into(),
            journal: "j".into(),
            episode: "e".into(),
            region: "us-west-2".into(),
            mode: "propose".into(),
            detected_at: t(0),
            quorum_at: t(3),
            decided_at: t(123),
            votes: vec!["a".into(), "b".into()],
        };
        let steps = vec![crate::runs::measure::StepTiming {
            step: "payments/verify-dns:example.com.".into(),
            state: crate::runs::replay::StepState::Succeeded,
            started: Some(t(150)),
            ended: Some(t(155)),
            error: None,
        }];
        let w = waterfall(&origin, &steps, Some(t(155)));
        let secs: Vec<Option<f64>> = w.phases.iter().map(|p| p.seconds).collect();
        assert_eq!(secs, [Some(3.0), Some(120.0), Some(27.0), Some(5.0)]);
        // No RTO measured: act and converge are unknown, not zero.
        let w = waterfall(&origin, &[], None);
        assert_eq!(w.phases[2].seconds, None);
        assert_eq!(w.phases[3].seconds, None);
        assert!(w.phases[3].basis.starts_with("unknown: "));
        // The RTO point before the verification began (INSYNC at once):
        // convergence took no time, measured, not unknown.
        let w = waterfall(&origin, &steps, Some(t(149)));
        assert_eq!(w.phases[3].seconds, Some(0.0));
        assert!(w.phases[3].basis.contains("already answered"));
    }

    #[test]
    fn an_unended_switch_is_running() {
        let runs = vec![run("a", RunKind::Failover, "us-east-1", 100, None)];
        let h = history("payments", "us-west-2", &switches(&runs));
        assert_eq!(h.active, "us-west-2");
        assert_eq!(h.running.unwrap().run_id, "a");
    }

    /// An operator's run: `decide` only when a disaster was declared,
    /// `act` to the verification, `converge` from it to the RTO point; no
    /// verification step: it acts up to the RTO point, no convergence apart.
    #[test]
    fn an_operators_run_has_the_phases_it_measured() {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let steps = vec![crate::runs::measure::StepTiming {
            step: "payments/verify-dns:example.com.".into(),
            state: crate::runs::replay::StepState::Succeeded,
            started: Some(t(150)),
            ended: Some(t(155)),
            error: None,
        }];
        let secs = |ps: Vec<Phase>| -> Vec<(&'static str, Option<f64>)> {
            ps.iter().map(|p| (p.name, p.seconds)).collect()
        };
        assert_eq!(
            secs(operator_phases(Some(t(0)), t(30), &steps, Some(t(160)))),
            [
                ("decide", Some(30.0)),
                ("act", Some(120.0)),
                ("converge", Some(10.0))
            ]
        );
        assert_eq!(
            secs(operator_phases(None, t(30), &[], Some(t(100)))),
            [("act", Some(70.0))]
        );
        // Not measured: act and converge are unknown, never zero.
        assert_eq!(
            secs(operator_phases(None, t(30), &steps, None)),
            [("act", Some(120.0)), ("converge", None)]
        );
    }

    /// A Cloud DNS health-check run's verification (`verify-cloud-resolution`)
    /// was not seen as one (only Route 53's two kinds were named), so its
    /// run had no `converge` phase: a step verifies when its kind says so.
    #[test]
    fn regression_a_cloud_dns_runs_verification_began_no_converge_phase() {
        let t = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let step = |id: &str, at: i64| crate::runs::measure::StepTiming {
            step: id.into(),
            state: crate::runs::replay::StepState::Succeeded,
            started: Some(t(at)),
            ended: Some(t(at + 5)),
            error: None,
        };
        let steps = vec![
            step("orders-gcp/switch-cloud-control", 100),
            step("orders-gcp/verify-cloud-resolution", 110),
            step("orders-gcp/switch-cloud-dns:orders-dns", 90),
            step("orders-gcp/not a step id", 50),
        ];
        assert_eq!(verify_started(&steps), Some(t(110)));
        let route53 = [
            step("payments/verify-resolution", 120),
            step("payments/switch-dns:example.com.", 80),
        ];
        assert_eq!(verify_started(&route53), Some(t(120)));
    }

    /// Issue 74, attack 12: watch decisions were attributed by the record,
    /// not the signer: any listed observer's key could write "drctl-watch-2
    /// vetoed" into the compliance report. A journal whose record names an
    /// observer other than the one its signing key is listed under is not
    /// that observer's; its own journal is.
    #[tokio::test]
    async fn regression_one_observers_key_wrote_another_observers_veto() {
        use crate::journal::{Journal, Keyed, MemoryStore, RunKeys};
        use crate::sign::SecretKey;
        use std::sync::Arc;
        let (one, two) = (SecretKey::generate(), SecretKey::generate());
        let owners = BTreeMap::from([
            (one.public().id(), "drctl-watch-1".to_string()),
            (two.public().id(), "drctl-watch-2".to_string()),
        ]);
        let mem = Arc::new(MemoryStore::new());
        let keys = RunKeys::new(Some(one.clone()), vec![one.public(), two.public()]);
        let store: Arc<dyn crate::journal::JournalStore> = Arc::new(Keyed::new(mem.clone(), keys));
        let write = |id: &'static str, observer: &'static str| {
            let store = store.clone();
            async move {
                let mut j = Journal::create(store, id).await.unwrap();
                j.append(Event::Watch {
                    observer: observer.into(),
                    plan: "payments".into(),
                    fact: Box::new(WatchFact::Decided {
                        episode: "payments/us-west-2/start/0".into(),
                        decision: WatchDecision::Vetoed,
                        why: "a person vetoed it".into(),
                        region: None,
                        target: None,
                        command: None,
                        deadline: None,
                        detected_at: None,
                        run_id: None,
                    }),
                })
                .await
                .unwrap();
                j.flush().await.unwrap();
            }
        };
        write("20261129T100000Z-watch-drctl-watch-1-a", "drctl-watch-1").await;
        write("20261129T100000Z-watch-drctl-watch-1-b", "drctl-watch-2").await;
        let text = |id: &str| mem.text(id).unwrap();
        assert_eq!(
            misattributed(&text("20261129T100000Z-watch-drctl-watch-1-a"), 9, &owners),
            None
        );
        let why = misattributed(&text("20261129T100000Z-watch-drctl-watch-1-b"), 9, &owners)
            .expect("not drctl-watch-2's");
        assert!(
            why.contains("drctl-watch-2") && why.contains("drctl-watch-1's key"),
            "{why}"
        );
        // A record appended past the head (review) is not the journal's:
        // judged are only the lines the head covers (here, one).
        let own = text("20261129T100000Z-watch-drctl-watch-1-a");
        let forged = own.replace("drctl-watch-1\"", "drctl-watch-2\"");
        let appended = format!("{own}{}", forged.lines().next().unwrap());
        assert!(
            misattributed(&appended, 2, &owners).is_some(),
            "all lines judged"
        );
        assert_eq!(misattributed(&appended, 1, &owners), None);
        // With no observers listed nothing is signed, and nothing checked.
        assert_eq!(
            misattributed(
                &text("20261129T100000Z-watch-drctl-watch-1-b"),
                9,
                &BTreeMap::new()
            ),
            None
        );
    }
}
