//! `drctl report --run RUN --format md`: the post-incident report of one
//! run, drafted from its journal so that the facts (timeline, actions, RTO
//! and RPO, what cannot be undone) are exact, with headed blanks for what
//! only people can write (root cause, impact, lessons learned).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::render::{md, md_join, minute};
use super::{JournalText, ReadRun, RunRow, read, row};
use crate::journal::event::{Event, StepRef};
use crate::plan::Plan;

/// What the sections of a post-incident report are drafted from.
struct Draft<'a> {
    journal: &'a JournalText,
    r: ReadRun<'a>,
    /// The rows of the run, one per plan it covered.
    rows: Vec<RunRow>,
    /// The names of those plans, in the same order.
    names: Vec<String>,
}

impl Draft<'_> {
    /// The run's first record, which every draft starts with.
    fn start(&self) -> RunStart<'_> {
        let first = &self.r.records[0];
        let Event::RunStarted {
            kind,
            target,
            steps,
            declared_at,
            operator,
            host,
            ..
        } = &first.event
        else {
            unreachable!("a draft is made of a journal that starts a run")
        };
        RunStart {
            kind: kind.to_string(),
            target,
            steps,
            declared_at: *declared_at,
            operator: operator.as_deref(),
            host,
            started: first.at,
        }
    }

    /// When the run ended (its first plan's row), if it has.
    fn finished(&self) -> Option<DateTime<Utc>> {
        self.rows.first().and_then(|x| x.ended)
    }
}

/// The facts of a run's `run_started` record that the draft uses.
struct RunStart<'a> {
    kind: String,
    target: &'a str,
    steps: &'a [StepRef],
    declared_at: Option<DateTime<Utc>>,
    operator: Option<&'a str>,
    host: &'a str,
    started: DateTime<Utc>,
}

impl RunStart<'_> {
    /// What RTO is measured from: the declaration, else the start.
    fn origin(&self) -> DateTime<Utc> {
        self.declared_at.unwrap_or(self.started)
    }
}

/// The post-incident report of the run in `journal`, in Markdown, its
/// journal verified against `keys` (the public run keys listed: with any,
/// an unsigned journal is drafted as one whose chain does not verify);
/// `Err` with why when the journal does not start a run.
pub fn post_incident(
    journal: &JournalText,
    plans: &[Plan],
    (now, keys): (DateTime<Utc>, &crate::journal::RunKeys),
) -> Result<String, String> {
    let r = read(journal, keys);
    let Some(Event::RunStarted { plans: ran, .. }) = r.records.first().map(|f| &f.event) else {
        return Err(format!(
            "the journal of {} does not start with a run_started record",
            journal.run_id
        ));
    };
    let targets = crate::runs::measure::targets(plans);
    let rows: Vec<_> = ran
        .iter()
        .map(|p| row(&r, &p.name, &targets, now, false))
        .collect();
    let names: Vec<String> = ran.iter().map(|p| p.name.clone()).collect();
    let d = Draft {
        journal,
        r,
        rows,
        names,
    };
    let mut o = String::new();
    summary(&mut o, &d);
    milestones(&mut o, &d);
    timeline(&mut o, &d);
    actions(&mut o, &d);
    figures_and_blanks(&mut o, &d);
    Ok(o)
}

fn summary(o: &mut String, d: &Draft<'_>) {
    let s = d.start();
    let _ = writeln!(
        o,
        "# Post-incident report: {} of {} to {}\n",
        md(&s.kind),
        md_join(&d.names, ", "),
        md(s.target)
    );
    let _ = writeln!(
        o,
        "Run `{}`, drafted by drctl from its journal ({} records, hash chain {}). The facts below are the journal's; the sections marked *to be completed* are for the people who handled the incident.\n",
        crate::escape::markdown_code(&d.journal.run_id),
        d.r.chain.records,
        if d.r.chain.ok {
            "verified".to_string()
        } else {
            format!(
                "BROKEN: {}; do not rely on the figures",
                md(d.r.chain.problem.as_deref().unwrap_or("?"))
            )
        }
    );
    let _ = writeln!(o, "## Summary\n");
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(
        o,
        "| Operator | {} on {} |",
        md(s.operator.unwrap_or("unknown")),
        md(s.host)
    );
    let _ = writeln!(
        o,
        "| Duration | {} |",
        match d.finished() {
            Some(f) => format!(
                "{:.1}s from {} to the run's end",
                (f - s.origin()).num_milliseconds() as f64 / 1000.0,
                if s.declared_at.is_some() {
                    "the declaration"
                } else {
                    "the start"
                }
            ),
            None => "not ended".into(),
        }
    );
    for (plan, x) in d.names.iter().zip(&d.rows) {
        let _ = writeln!(
            o,
            "| {} | outcome {}; verdict {}; RTO {}; RPO {} |",
            md(plan),
            x.outcome,
            md(&x.verdict.to_string()),
            md(&super::render::measure_text(&x.rto)),
            md(&super::render::measure_text(&x.rpo))
        );
    }
}

/// The five moments the runbooks ask for, each with its time or why it
/// is not known: detected (the declaration), notified (the first event a
/// sink took), initiated (the run's start), restored (the RTO point) and
/// resolved (the run's successful end).
fn milestones(o: &mut String, d: &Draft<'_>) {
    let s = d.start();
    let notified = crate::runs::deliveries::deliveries(&d.r.records)
        .into_iter()
        .filter_map(|x| x.delivered_at.map(|at| (at, x)))
        .min_by_key(|(at, _)| *at);
    let restored = d
        .rows
        .iter()
        .filter_map(|x| x.rto.seconds)
        .max_by(f64::total_cmp)
        .map(|secs| s.origin() + chrono::Duration::milliseconds((secs * 1000.0) as i64));
    let resolved = d
        .rows
        .first()
        .filter(|x| x.outcome.succeeded())
        .and_then(|x| x.ended);
    let rows: [(&str, Option<DateTime<Utc>>, String); 5] = [
        detected(d, &s),
        (
            "Notified",
            notified.as_ref().map(|(at, _)| *at),
            match &notified {
                Some((_, x)) => format!(
                    "{} delivered to sink {}",
                    md(&x.kind.to_string()),
                    md(&x.sink)
                ),
                None => "no sink took an event of this run (docs/notify.md)".into(),
            },
        ),
        ("Initiated", Some(s.started), "the run started".into()),
        (
            "Restored",
            restored,
            match restored {
                Some(_) => "the RTO point (the slowest plan)".into(),
                None => "unknown: no RTO was measured".into(),
            },
        ),
        (
            "Resolved",
            resolved,
            match resolved {
                Some(_) => "the run ended successfully".into(),
                None => format!(
                    "not resolved: the run {}",
                    d.rows
                        .first()
                        .map_or("has no plan".into(), |x| format!("ended {}", x.outcome))
                ),
            },
        ),
    ];
    let _ = writeln!(o, "\n## Milestones (UTC)\n");
    let _ = writeln!(o, "| Milestone | Time | |\n|---|---|---|");
    for (name, at, what) in rows {
        let _ = writeln!(
            o,
            "| {name} | {} | {} |",
            at.map_or("-".into(), minute),
            what
        );
    }
}

/// The "Detected" milestone: the first failed observation of `drctl watch`
/// when a watch started the run, else the declaration (`--declared-at`),
/// if any.
fn detected(d: &Draft<'_>, s: &RunStart<'_>) -> (&'static str, Option<DateTime<Utc>>, String) {
    match d.rows.first().and_then(|x| x.watch.as_ref()) {
        Some(w) => (
            "Detected",
            w.phases.first().and_then(|p| p.from),
            format!(
                "the first failed observation (`drctl watch`, observer {}; quorum {}): the RTO clock starts",
                md(&w.observer),
                md_join(&w.votes, ", ")
            ),
        ),
        None => (
            "Detected",
            s.declared_at,
            match s.declared_at {
                Some(_) => "declared (`--declared-at`): the RTO clock starts".into(),
                None => "not recorded: pass `--declared-at` with the failover".into(),
            },
        ),
    }
}

/// The timeline's entry of one journal record, if it is one (Markdown:
/// what the journal says is escaped).
fn event_line(e: &Event) -> Option<String> {
    let m = |s: &dyn std::fmt::Display| md(&s.to_string());
    Some(match e {
        Event::Gate {
            plan,
            gate,
            decision,
            ..
        } => format!("{}: gate {}: {}", m(plan), m(gate), m(decision)),
        Event::StepFailed { step, error } => {
            format!("{} FAILED: {}", m(step), m(&error.summary()))
        }
        Event::Resumed { host, .. } => format!("resumed on {}", m(host)),
        Event::LockLost { by_run, reason, .. } => {
            format!("lock taken over by {}: {}", m(by_run), m(reason))
        }
        Event::Interrupted { reason } => format!("interrupted: {}", m(reason)),
        Event::Delivery {
            id,
            sink,
            result: crate::journal::notice::DeliveryResult::Delivered,
            ..
        } => format!("notification {} delivered to {}", m(id), m(sink)),
        _ => return None,
    })
}

fn timeline(o: &mut String, d: &Draft<'_>) {
    let s = d.start();
    let _ = writeln!(o, "\n## Timeline (UTC)\n");
    let _ = writeln!(o, "| Time | Event |\n|---|---|");
    let mut timeline: Vec<(DateTime<Utc>, String)> = Vec::new();
    if let Some(at) = s.declared_at {
        timeline.push((
            at,
            "disaster declared (`--declared-at`): the RTO clock starts".into(),
        ));
    }
    timeline.push((
        s.started,
        format!(
            "run started by {}",
            md(s.operator.unwrap_or("an unknown operator"))
        ),
    ));
    timeline.extend(
        d.r.records
            .iter()
            .filter_map(|rec| event_line(&rec.event).map(|l| (rec.at, l))),
    );
    for x in &d.rows {
        if let Some(secs) = x.rto.seconds {
            let at = s.origin() + chrono::Duration::milliseconds((secs * 1000.0) as i64);
            timeline.push((
                at,
                format!(
                    "service restored (the RTO point, {secs:.1}s; {})",
                    md(&x.rto.basis)
                ),
            ));
        }
    }
    if let Some(f) = d.finished() {
        timeline.push((f, format!("run completed: {}", d.rows[0].outcome)));
    }
    timeline.sort_by_key(|(t, _)| *t);
    for (t, what) in timeline {
        let _ = writeln!(o, "| {} | {} |", minute(t), what);
    }
}

fn actions(o: &mut String, d: &Draft<'_>) {
    let _ = writeln!(o, "\n## Actions taken\n");
    for (i, s) in d.start().steps.iter().enumerate() {
        let timing = d
            .rows
            .iter()
            .flat_map(|x| x.steps.iter())
            .find(|t| s.id == t.step.as_str());
        let _ = writeln!(
            o,
            "{}. `{}`: {}. {}",
            i + 1,
            crate::escape::markdown_code(s.id.as_ref()),
            md(s.description.trim_end_matches('.')),
            match timing {
                Some(t) => match (t.started, t.ended) {
                    (Some(a), Some(b)) => format!(
                        "{} at {}, took {:.1}s.",
                        t.state.as_str(),
                        minute(b),
                        (b - a).num_milliseconds() as f64 / 1000.0
                    ),
                    _ => format!("{}.", t.state.as_str()),
                },
                None => "not run.".into(),
            }
        );
    }
}

/// RTO and RPO, the rollback scope, and the headed blanks for people.
fn figures_and_blanks(o: &mut String, d: &Draft<'_>) {
    let _ = writeln!(o, "\n## RTO and RPO against targets\n");
    for (p, x) in d.names.iter().zip(&d.rows) {
        let p = md(p);
        let _ = writeln!(o, "- {p} RTO: {}", md(&super::render::measure_text(&x.rto)));
        let _ = writeln!(o, "- {p} RPO: {}", md(&super::render::measure_text(&x.rpo)));
    }
    let _ = writeln!(o, "\n## Rollback scope\n");
    let _ = writeln!(
        o,
        "{}",
        d.rows
            .first()
            .and_then(|x| x.rollback_scope.as_deref().map(md))
            .unwrap_or_else(|| "Nothing this run did needs undoing by hand.".into())
    );
    for x in &d.rows {
        for w in &x.warnings {
            let _ = writeln!(o, "\n- {}", md(w));
        }
    }
    let _ = writeln!(o, "\n## Root cause\n\n*To be completed.*");
    let _ = writeln!(
        o,
        "\n## Impact\n\n*To be completed: who was affected and for how long; data lost (at most the RPO above for writes to the old primary).*"
    );
    let _ = writeln!(
        o,
        "\n## Lessons learned\n\n*To be completed: what went well, what did not, and the actions that follow, each with an owner and a date.*"
    );
}
