//! Replay: what a journal says of each step, through one state machine.
//!
//! A step's records follow a fixed grammar (steno's per-node transition
//! table): it is started (attempt 1), then succeeds or fails, or nothing
//! (the process died while it ran); a failed or interrupted step is started
//! again with the next attempt; a step that succeeded is started again only
//! to finish work it left unsettled (evidence a destination did not take).
//! Resume and measurement both read steps through [`replay`], so they can
//! never disagree about a step's state, and a sequence that breaks the
//! grammar (an edited or corrupted journal that still chains) is an error
//! naming the record, not a guess.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::journal::event::{Event, Record, StepError};

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// No record of it.
    NotRun,
    /// Started, and no end recorded (running, or interrupted by a crash).
    Started,
    /// Reached its desired state.
    Succeeded,
    /// Failed.
    Failed,
}

impl StepState {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRun => "not-run",
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// Everything the journal says of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// Current state.
    pub state: StepState,
    /// Highest attempt started.
    pub attempt: u32,
    /// First start.
    pub started: Option<DateTime<Utc>>,
    /// Last end (success or failure).
    pub ended: Option<DateTime<Utc>>,
    /// Outputs of the last success.
    pub outputs: Option<Value>,
    /// Error of the last failure, while failed.
    pub error: Option<StepError>,
}

impl Default for StepRecord {
    fn default() -> Self {
        Self {
            state: StepState::NotRun,
            attempt: 0,
            started: None,
            ended: None,
            outputs: None,
            error: None,
        }
    }
}

/// A record that breaks a step's grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("journal record #{seq}: step {step} {what} while {state}")]
pub struct IllegalRecord {
    /// The record's position.
    pub seq: u64,
    /// The step it names.
    pub step: String,
    /// What the record says (`succeeded`, `started attempt 1`...).
    pub what: String,
    /// The step's state before it.
    pub state: &'static str,
}

/// The steps of a journal, in the order they first appear, and the first
/// illegal record if there is one (the steps then reflect the records
/// before it).
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Step id → what the journal says of it.
    pub steps: BTreeMap<String, StepRecord>,
    /// The first record that broke the grammar.
    pub illegal: Option<IllegalRecord>,
}

/// Replays the step records of a journal through the transition table.
pub fn replay(records: &[Record]) -> Replay {
    let mut out = Replay::default();
    for r in records {
        let (step, next) = match &r.event {
            Event::StepStarted { step, attempt } => (step, Transition::Start(*attempt)),
            Event::StepSucceeded { step, outputs } => (step, Transition::Succeed(outputs)),
            Event::StepFailed { step, error } => (step, Transition::Fail(error)),
            _ => continue,
        };
        let s = out.steps.entry(step.to_string()).or_default();
        if let Err(what) = apply(s, next, r.at) {
            out.illegal = Some(IllegalRecord {
                seq: r.seq,
                step: step.to_string(),
                what,
                state: s.state.as_str(),
            });
            break;
        }
    }
    out
}

enum Transition<'a> {
    Start(u32),
    Succeed(&'a Value),
    Fail(&'a StepError),
}

/// The transition table. `Err` names the illegal event.
fn apply(s: &mut StepRecord, t: Transition<'_>, at: DateTime<Utc>) -> Result<(), String> {
    use StepState::*;
    match (s.state, t) {
        // A start must carry the next attempt number.
        (NotRun | Started | Failed | Succeeded, Transition::Start(n)) if n == s.attempt + 1 => {
            s.state = Started;
            s.attempt = n;
            s.started.get_or_insert(at);
            s.error = None;
            Ok(())
        }
        (_, Transition::Start(n)) => Err(format!(
            "started attempt {n} (expected attempt {})",
            s.attempt + 1
        )),
        (Started, Transition::Succeed(o)) => {
            s.state = Succeeded;
            s.ended = Some(at);
            s.outputs = Some(o.clone());
            Ok(())
        }
        (Started, Transition::Fail(e)) => {
            s.state = Failed;
            s.ended = Some(at);
            s.error = Some(e.clone());
            Ok(())
        }
        (_, Transition::Succeed(_)) => Err("succeeded without a start".into()),
        (_, Transition::Fail(_)) => Err("failed without a start".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::event::ErrorClass;
    use serde_json::json;

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            seq,
            at: Utc::now(),
            prev: String::new(),
            event,
            fence: Default::default(),
            late: None,
        }
    }
    fn start(seq: u64, attempt: u32) -> Record {
        rec(
            seq,
            Event::StepStarted {
                step: "p/scale:x".into(),
                attempt,
            },
        )
    }
    fn ok(seq: u64) -> Record {
        rec(
            seq,
            Event::StepSucceeded {
                step: "p/scale:x".into(),
                outputs: json!({"n": seq}),
            },
        )
    }
    fn failed(seq: u64) -> Record {
        rec(
            seq,
            Event::StepFailed {
                step: "p/scale:x".into(),
                error: StepError {
                    message: "boom".into(),
                    kind: ErrorClass::Server,
                    transient: true,
                    resource: None,
                    region: None,
                },
            },
        )
    }

    #[test]
    fn legal_sequences_replay_to_their_state() {
        let r = replay(&[start(1, 1), failed(2), start(3, 2), start(4, 3), ok(5)]);
        assert_eq!(r.illegal, None);
        let s = &r.steps["p/scale:x"];
        assert_eq!((s.state, s.attempt), (StepState::Succeeded, 3));
        assert_eq!(s.outputs, Some(json!({"n": 5})));
        // Re-run of a finished step (unsettled evidence).
        let r = replay(&[start(1, 1), ok(2), start(3, 2), ok(4)]);
        assert_eq!(r.illegal, None);
    }

    #[test]
    fn an_illegal_sequence_names_the_record() {
        let r = replay(&[ok(7)]);
        let e = r.illegal.unwrap();
        assert_eq!(e.seq, 7);
        assert!(
            e.to_string().contains("#7") && e.to_string().contains("without a start"),
            "{e}"
        );
        let r = replay(&[start(1, 1), start(2, 1)]);
        assert!(
            r.illegal
                .unwrap()
                .to_string()
                .contains("expected attempt 2")
        );
        let r = replay(&[start(1, 1), ok(2), failed(3)]);
        assert_eq!(r.illegal.unwrap().seq, 3);
    }
}
