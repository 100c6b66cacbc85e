//! `drctl report --run RUN --format md`: the post-incident report of one
//! run, drafted from its journal so that the facts (timeline, actions, RTO
//! and RPO, what cannot be undone) are exact, with headed blanks for what
//! only people can write (root cause, impact, lessons learned).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{JournalText, read, row};
use crate::journal::event::Event;
use crate::plan::Plan;

fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// The post-incident report of the run in `journal`, in Markdown; `Err`
/// with why when the journal does not start a run.
pub fn post_incident(
    journal: &JournalText,
    plans: &[Plan],
    now: DateTime<Utc>,
) -> Result<String, String> {
    let r = read(journal);
    let Some(Event::RunStarted {
        kind,
        target,
        plans: ran,
        steps,
        declared_at,
        operator,
        host,
        ..
    }) = r.records.first().map(|f| &f.event)
    else {
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
    let started = r.records[0].at;
    let finished = rows.first().and_then(|x| x.ended);
    let names: Vec<&str> = ran.iter().map(|p| p.name.as_str()).collect();
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Post-incident report: {kind} of {} to {target}\n",
        names.join(", ")
    );
    let _ = writeln!(
        o,
        "Run `{}`, drafted by drctl from its journal ({} records, hash chain {}). The facts below are the journal's; the sections marked *to be completed* are for the people who handled the incident.\n",
        journal.run_id,
        r.chain.records,
        if r.chain.ok {
            "verified".to_string()
        } else {
            format!(
                "BROKEN: {}; do not rely on the figures",
                r.chain.problem.as_deref().unwrap_or("?")
            )
        }
    );
    let _ = writeln!(o, "## Summary\n");
    let _ = writeln!(o, "| | |\n|---|---|");
    let origin = declared_at.unwrap_or(started);
    let _ = writeln!(
        o,
        "| Operator | {} on {host} |",
        operator.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        o,
        "| Duration | {} |",
        match finished {
            Some(f) => format!(
                "{:.1}s from {} to the run's end",
                (f - origin).num_milliseconds() as f64 / 1000.0,
                if declared_at.is_some() {
                    "the declaration"
                } else {
                    "the start"
                }
            ),
            None => "not ended".into(),
        }
    );
    for (plan, x) in names.iter().zip(&rows) {
        let _ = writeln!(
            o,
            "| {plan} | outcome {}; verdict {}; RTO {}; RPO {} |",
            x.outcome,
            x.verdict,
            super::render::measure_text(&x.rto),
            super::render::measure_text(&x.rpo)
        );
    }

    let _ = writeln!(o, "\n## Timeline (UTC)\n");
    let _ = writeln!(o, "| Time | Event |\n|---|---|");
    let mut timeline: Vec<(DateTime<Utc>, String)> = Vec::new();
    if let Some(d) = declared_at {
        timeline.push((
            *d,
            "disaster declared (`--declared-at`): the RTO clock starts".into(),
        ));
    }
    timeline.push((
        started,
        format!(
            "run started by {}",
            operator.as_deref().unwrap_or("an unknown operator")
        ),
    ));
    for rec in &r.records {
        match &rec.event {
            Event::Gate {
                plan,
                gate,
                decision,
                ..
            } => timeline.push((rec.at, format!("{plan}: gate {gate}: {decision}"))),
            Event::StepFailed { step, error } => timeline.push((
                rec.at,
                format!(
                    "{step} FAILED: {}",
                    error.message.lines().next().unwrap_or_default()
                ),
            )),
            Event::Resumed { host, .. } => timeline.push((rec.at, format!("resumed on {host}"))),
            Event::LockLost { by_run, reason, .. } => {
                timeline.push((rec.at, format!("lock taken over by {by_run}: {reason}")))
            }
            Event::Interrupted { reason } => {
                timeline.push((rec.at, format!("interrupted: {reason}")))
            }
            _ => {}
        }
    }
    for x in &rows {
        if let Some(secs) = x.rto.seconds {
            let at = origin + chrono::Duration::milliseconds((secs * 1000.0) as i64);
            timeline.push((
                at,
                format!(
                    "service restored (the RTO point, {secs:.1}s; {})",
                    x.rto.basis
                ),
            ));
        }
    }
    if let Some(f) = finished {
        timeline.push((f, format!("run completed: {}", rows[0].outcome)));
    }
    timeline.sort_by_key(|(t, _)| *t);
    for (t, what) in timeline {
        let _ = writeln!(o, "| {} | {} |", minute(t), what.replace('|', "\\|"));
    }

    let _ = writeln!(o, "\n## Actions taken\n");
    let mut n = 0;
    for s in steps {
        let timing = rows
            .iter()
            .flat_map(|x| x.steps.iter())
            .find(|t| t.step == s.id);
        n += 1;
        let _ = writeln!(
            o,
            "{n}. `{}`: {}. {}",
            s.id,
            s.description.trim_end_matches('.'),
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

    let _ = writeln!(o, "\n## RTO and RPO against targets\n");
    for (p, x) in names.iter().zip(&rows) {
        let _ = writeln!(o, "- {p} RTO: {}", super::render::measure_text(&x.rto));
        let _ = writeln!(o, "- {p} RPO: {}", super::render::measure_text(&x.rpo));
    }
    let _ = writeln!(o, "\n## Rollback scope\n");
    let _ = writeln!(
        o,
        "{}",
        rows.first()
            .and_then(|x| x.rollback_scope.clone())
            .unwrap_or_else(|| "Nothing this run did needs undoing by hand.".into())
    );
    for x in &rows {
        for w in &x.warnings {
            let _ = writeln!(o, "\n- {w}");
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
    Ok(o)
}
