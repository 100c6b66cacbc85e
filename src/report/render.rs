//! Renderings of a [`Report`]: Markdown for people, JSON for tools (the
//! model itself, `drctl.report/v1`), CSV for spreadsheets and JUnit XML so
//! that a CI system shows DR drills like tests.
//!
//! Each renderer is a pure function of the report: the same report renders
//! to the same bytes (golden tests pin them). An unknown figure renders as
//! "unknown" (an empty cell in CSV), never as zero.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{Report, RunRow};
use crate::plan::duration::format_duration;
use crate::runs::drill::Verdict;
use crate::runs::measure::Measure;

/// A target in seconds, as people write durations (`15m`).
pub(crate) fn target(secs: u64) -> String {
    format_duration(std::time::Duration::from_secs(secs))
}

/// An achieved figure: `12.3s`, or `unknown`.
pub(crate) fn achieved(secs: Option<f64>) -> String {
    secs.map_or("unknown".into(), |s| format!("{s:.1}s"))
}

pub(crate) fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

pub(crate) fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// `12.3s (target 15m): met`, with what it was measured from.
pub(crate) fn measure_text(m: &Measure) -> String {
    let met = match m.met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not judged",
    };
    format!(
        "{} (target {}): {met}; {}",
        achieved(m.seconds),
        m.target_seconds.map_or("none".into(), target),
        m.basis
    )
}

pub(crate) fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail(_) => "FAIL",
        Verdict::Unknown(_) => "UNKNOWN",
        Verdict::Refused(_) => "REFUSED",
    }
}

pub(crate) fn verdict_reason(v: &Verdict) -> &str {
    match v {
        Verdict::Pass => "",
        Verdict::Fail(w) | Verdict::Unknown(w) | Verdict::Refused(w) => w,
    }
}

/// Text from the report's model (names, messages, journal text) for
/// Markdown, anywhere: a table cell, a list item, a line of its own
/// (`crate::escape::markdown`).
pub(crate) fn md(s: &str) -> String {
    crate::escape::markdown(s)
}

/// [`md`] of each, joined by `sep`.
pub(crate) fn md_join(items: &[String], sep: &str) -> String {
    items.iter().map(|i| md(i)).collect::<Vec<_>>().join(sep)
}

/// The report as JSON (`drctl.report/v1`).
pub fn json(r: &Report) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

/// The report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    md_summary(&mut o, r);
    md_findings(&mut o, r);
    let _ = writeln!(o, "\n## Plans");
    for p in &r.plans {
        md_plan(&mut o, p);
    }
    md_controls(&mut o, r);
    md_watch(&mut o, r);
    o
}

/// What `drctl watch` decided in the window.
fn md_watch(o: &mut String, r: &Report) {
    if r.watch.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n## Watch decisions\n");
    let _ = writeln!(
        o,
        "| Time (UTC) | Plan | Observer | Decision | Why | Run |\n|---|---|---|---|---|---|"
    );
    for w in &r.watch {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            minute(w.at),
            md(&w.plan),
            md(&w.observer),
            md(&w.decision.to_string()),
            md(&w.why),
            md(w.run_id.as_deref().unwrap_or("-"))
        );
    }
}

/// The title, the counts and the table of plans.
fn md_summary(o: &mut String, r: &Report) {
    let _ = writeln!(o, "# Disaster-recovery report\n");
    let _ = writeln!(
        o,
        "Runs from {} to {} · plans: {} · generated {} · computed from journals only · schema `{}`\n",
        day(r.window.from),
        day(r.window.to),
        if r.scope.is_empty() {
            "none".into()
        } else {
            md_join(&r.scope, ", ")
        },
        minute(r.generated_at),
        r.schema
    );
    let counts = r.summary.counts();
    let _ = writeln!(o, "## Summary\n");
    let row = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
    let _ = writeln!(
        o,
        "{}",
        row(counts.iter().map(|c| c.0.to_string()).collect())
    );
    let _ = writeln!(o, "|{}", "---:|".repeat(counts.len()));
    let _ = writeln!(
        o,
        "{}\n",
        row(counts.iter().map(|c| c.1.to_string()).collect())
    );
    let _ = writeln!(
        o,
        "| Plan | Tier | RTO target | RPO target | Runs | Last passing drill | Next drill slot | Drill cadence |"
    );
    let _ = writeln!(o, "|---|---|---|---|---:|---|---|---|");
    for p in &r.plans {
        let c = &p.cadence;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            md(&p.plan),
            md(&p.tier),
            target(p.rto_target_seconds),
            target(p.rpo_target_seconds),
            p.runs.len(),
            c.last_passing.as_ref().map_or("never".into(), |d| format!(
                "{} ({})",
                day(d.started),
                md(&d.run_id)
            )),
            c.next_slot.map_or("no schedule".into(), minute),
            if c.overdue {
                "**OVERDUE**".to_string()
            } else {
                format!("ok (every {})", target(c.interval_seconds))
            }
        );
    }
}

fn md_findings(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Findings\n");
    if r.findings.is_empty() {
        let _ = writeln!(o, "None.");
    }
    for (i, f) in r.findings.iter().enumerate() {
        let about = [f.plan.as_deref(), f.run.as_deref()]
            .into_iter()
            .flatten()
            .map(md)
            .collect::<Vec<_>>()
            .join(", run ");
        let _ = writeln!(
            o,
            "{}. **{}** `{}`{}: {}  \n   Owner: {}. Action: {}",
            i + 1,
            format!("{:?}", f.severity).to_uppercase(),
            finding_code(f),
            if about.is_empty() {
                String::new()
            } else {
                format!(" ({about})")
            },
            md(&f.message),
            md(f.owner.as_deref().unwrap_or("unassigned")),
            // Markdown drctl writes (commands in code spans); the names in
            // it are run ids and plan names, whose characters are checked.
            f.action
        );
    }
}

/// A plan's verified state as the report can judge it (its definition and
/// the drill's age; the world is `drctl status`'s to compare).
pub(crate) fn verified_text(v: &crate::runs::verified::Verified) -> String {
    match &v.reason {
        None => format!(
            "as far as journals tell: the plan is unchanged since drill {}, within the interval (`drctl status` compares the world)",
            v.drill.as_deref().unwrap_or_default()
        ),
        Some(why) => format!("NOT VERIFIED: {why}"),
    }
}

/// A plan's last restore test in a sentence (plain text, for any format
/// to escape): when, which run and region, its verdict, what it restored
/// to which point, its RTO and RPO; for a plan recovered from backups with
/// none on record, that; `None` for a plan with neither.
pub(crate) fn restore_test_text(p: &super::PlanSection) -> Option<String> {
    let Some(d) = &p.last_restore_test else {
        return p.restores_from_backups.then(|| {
            "none on record: no drill has restored this plan's backups (`drctl drill` restores them into a drill copy and measures it)".to_string()
        });
    };
    let t = d.restore_test.as_ref()?;
    let restored: Vec<String> = (t.restored.iter())
        .map(|r| match r.point {
            Some(at) => format!("{} to {}", r.from, minute(at)),
            None => format!("{} to an unknown point", r.from),
        })
        .collect();
    Some(format!(
        "{} ({}, in {}): {}; restored {}; RTO {}; RPO {}",
        minute(d.started),
        d.run_id,
        d.target,
        verdict_word(&d.verdict),
        restored.join(", "),
        measure_text(&t.rto),
        measure_text(&t.rpo)
    ))
}

/// One plan: its facts, the table of its runs, then each run.
fn md_plan(o: &mut String, p: &super::PlanSection) {
    let _ = writeln!(o, "\n### {} ({})\n", md(&p.plan), md(&p.tier));
    if !p.description.is_empty() {
        let _ = writeln!(o, "{}\n", md(&p.description));
    }
    let _ = writeln!(
        o,
        "- Owner: {}\n- Regions: {} (home first)\n- Targets: RTO {}, RPO {}; approval {}\n- Drill cadence: {}{}\n- Verified: {}",
        p.owner
            .as_deref()
            .map_or("not set (`[plan] owner`)".into(), md),
        md_join(&p.regions, ", "),
        target(p.rto_target_seconds),
        target(p.rpo_target_seconds),
        if p.approval_required {
            "required"
        } else {
            "not required"
        },
        format_args!(
            "a passing drill every {}",
            target(p.cadence.interval_seconds)
        ),
        p.cadence
            .note
            .as_ref()
            .map(|n| format!("; {}", md(n)))
            .unwrap_or_default(),
        md(&verified_text(&p.verified))
    );
    if let Some(t) = restore_test_text(p) {
        let _ = writeln!(o, "- Last restore test: {}", md(&t));
    }
    if p.runs.is_empty() {
        let _ = writeln!(o, "\nNo run in the window.");
        return;
    }
    let _ = writeln!(
        o,
        "\n| Run | Kind | Started (UTC) | Target | Operator | RTO (target) | RPO (target) | Verdict |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for run in &p.runs {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} ({}) | {} ({}) | {} |",
            md(&run.run_id),
            md(&kind_label(run)),
            minute(run.started),
            md(&run.target),
            md(run.operator.as_deref().unwrap_or("unknown")),
            achieved(run.rto.seconds),
            run.rto.target_seconds.map_or("none".into(), target),
            achieved(run.rpo.seconds),
            run.rpo.target_seconds.map_or("none".into(), target),
            verdict_word(&run.verdict)
        );
    }
    for run in &p.runs {
        run_details(o, run);
    }
}

fn md_controls(o: &mut String, r: &Report) {
    let _ = writeln!(o, "\n## Controls\n");
    let _ = writeln!(o, "| Control | Framework | Status | Evidence | Missing |");
    let _ = writeln!(o, "|---|---|---|---|---|");
    for c in &r.controls {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            c.id,
            c.framework,
            match c.status {
                super::controls::Status::Evidenced => "evidenced",
                super::controls::Status::Gap => "**gap**",
            },
            if c.evidence.is_empty() {
                "none".into()
            } else {
                md_join(&c.evidence, ", ")
            },
            md(&c.missing.join("; "))
        );
    }
    let _ = writeln!(o);
    for c in &r.controls {
        let _ = writeln!(
            o,
            "- **{} ({})**: {} Tested as: {}.",
            c.id, c.framework, c.requirement, c.test
        );
    }
}

/// A finding's kind as the JSON spells it (`missed_target`).
pub(crate) fn finding_code(f: &super::findings::Finding) -> String {
    serde_json::to_value(f.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// What the last `audit verify --evidence` of a run found, in one line.
pub(crate) fn evidence_text(run: &RunRow) -> String {
    evidence_text_with(run, str::to_string)
}

/// [`evidence_text`] with what the journal says (objects, problems, who,
/// where) passed through `esc`, and drctl's own words left as they are.
fn evidence_text_with(run: &RunRow, esc: fn(&str) -> String) -> String {
    match &run.evidence_check {
        None => "not verified yet (`drctl audit verify --evidence` records its result)".into(),
        Some(c) => format!(
            "{} (verified {}{}{})",
            if c.problems.is_empty() {
                format!(
                    "{} objects match their digests on every destination",
                    c.verified
                )
            } else {
                format!(
                    "{}: {}",
                    // Objects that could not be read say nothing of the
                    // bytes: not a mismatch.
                    match crate::evidence::only_unreadable(&c.problems) {
                        true => "NOT READ IN FULL (no sign of tampering)",
                        false => "NOT MATCHING",
                    },
                    c.problems
                        .iter()
                        .map(|p| format!("{}: {}", esc(&p.object), esc(&p.problem.to_string())))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
            minute(c.at),
            c.by.as_ref()
                .map(|b| format!(" by {}", esc(b)))
                .unwrap_or_default(),
            format_args!(" on {}", esc(&c.host))
        ),
    }
}

/// A drill's cleanup in a word: complete, not run yet (the report a drill
/// makes of itself comes before its cleanup), or INCOMPLETE.
pub(crate) fn cleanup_word(c: &crate::runs::drill::CleanupSummary) -> &'static str {
    match (c.complete, c.ran) {
        (true, _) => "complete",
        (false, false) => "not run yet",
        (false, true) => "INCOMPLETE",
    }
}

/// A run's kind with its depth (`drill (shadow)`).
pub(crate) fn kind_label(run: &RunRow) -> String {
    match &run.depth {
        Some(d) => format!("{} ({d})", run.kind),
        None => run.kind.to_string(),
    }
}

fn run_details(o: &mut String, run: &RunRow) {
    let _ = writeln!(o, "\n#### {} — {}\n", md(&run.run_id), md(&kind_label(run)));
    let _ = writeln!(
        o,
        "- Verdict: **{}**{}",
        verdict_word(&run.verdict),
        match verdict_reason(&run.verdict) {
            "" => String::new(),
            why => format!(" ({})", md(why)),
        }
    );
    let _ = writeln!(
        o,
        "- Started {}{}, {}; outcome {}{}",
        minute(run.started),
        run.declared_at
            .map(|d| format!(" (disaster declared {})", minute(d)))
            .unwrap_or_default(),
        match (run.ended, run.duration_seconds) {
            (Some(e), Some(d)) => format!("ended {} after {:.1}s", minute(e), d),
            _ => "not ended".into(),
        },
        run.outcome,
        run.schedule_slot
            .map(|s| format!("; scheduled slot {}", minute(s)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "- Target region {}; operator {} on {}",
        md(&run.target),
        md(run.operator.as_deref().unwrap_or("unknown")),
        md(&run.host)
    );
    md_approvals(o, run);
    let _ = writeln!(o, "- RTO {}", md(&measure_text(&run.rto)));
    if let Some(p) = &run.predicted_rto {
        let _ = writeln!(
            o,
            "- RTO predicted: p50 {}, p90 {} ({})",
            crate::forecast::show(p.p50_seconds),
            crate::forecast::show(p.p90_seconds),
            md(&p.basis)
        );
    }
    if let Some(w) = &run.watch {
        let phases: Vec<String> = w
            .phases
            .iter()
            .map(|p| match p.seconds {
                Some(s) => format!("{} {s:.1}s", md(p.name)),
                None => format!("{} unknown", md(p.name)),
            })
            .collect();
        let _ = writeln!(
            o,
            "- Started by `drctl watch` ({} mode; observer {}, quorum {}; journal {}): {}",
            md(&w.mode.to_string()),
            md(&w.observer),
            md_join(&w.votes, ", "),
            md(&w.journal),
            phases.join(" → ")
        );
    }
    let _ = writeln!(o, "- RPO {}", md(&measure_text(&run.rpo)));
    for e in &run.errors {
        let _ = writeln!(o, "- Error: {}", md(e));
    }
    for w in &run.warnings {
        let _ = writeln!(o, "- Warning: {}", md(w));
    }
    md_record(o, run);
}

/// A run's approvals and its emergency deadline.
fn md_approvals(o: &mut String, run: &RunRow) {
    for a in &run.approvals {
        let _ = writeln!(
            o,
            "- Approval {} at {}{}{}{}",
            md(&a.decision.to_string()),
            minute(a.at),
            a.by.as_ref()
                .map(|b| format!(" by {}", md(b)))
                .unwrap_or_default(),
            a.reason
                .as_ref()
                .map(|r| format!(": \"{}\"", md(r)))
                .unwrap_or_default(),
            a.how
                .as_ref()
                .map(|h| format!(" ({})", md(h)))
                .unwrap_or_default()
        );
    }
    if let Some(e) = &run.emergency {
        let _ = writeln!(
            o,
            "- Emergency run: approve by {}; {}",
            e.approve_by.map_or("?".into(), minute),
            match (&e.approved_at, e.overdue) {
                (Some(at), false) => format!("approved {}", minute(*at)),
                (Some(at), true) => format!("approved LATE, {}", minute(*at)),
                (None, true) => "NOT APPROVED, deadline passed".into(),
                (None, false) => "not approved yet".into(),
            }
        );
    }
}

/// What a run left behind: its cleanup, evidence, journal and what cannot
/// be undone.
fn md_record(o: &mut String, run: &RunRow) {
    if let Some(c) = &run.cleanup {
        let _ = writeln!(
            o,
            "- Cleanup: {}{}",
            cleanup_word(c),
            c.seconds
                .map(|s| format!(" in {s:.1}s"))
                .unwrap_or_default()
        );
        for l in &c.left {
            let _ = writeln!(o, "  - left: {}", md(&l.to_string()));
        }
    }
    let _ = writeln!(o, "- Evidence: {}", evidence_text_with(run, md));
    let _ = writeln!(
        o,
        "- Journal: {} records, {}",
        run.chain.records,
        if run.chain.ok {
            md(&super::chain_words(&run.chain))
        } else {
            format!(
                "hash chain BROKEN ({})",
                md(run.chain.problem.as_deref().unwrap_or("unknown"))
            )
        }
    );
    if let Some(v) = &run.verified_at_start {
        let _ = writeln!(o, "- Plan at the run's start: {}", md(&verified_text(v)));
    }
    if let Some(scope) = &run.rollback_scope {
        let _ = writeln!(o, "- Cannot be undone: {}", md(scope));
    }
}

/// The report as CSV: one row per run and plan; an unknown figure is an
/// empty cell. A cell a spreadsheet would read as a formula (`=`, `+`,
/// `-`, `@` first) starts with `'` (`crate::escape::csv_cell`).
pub fn csv(r: &Report) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "run_id",
        "plan",
        "tier",
        "kind",
        "depth",
        "started",
        "ended",
        "duration_seconds",
        "target_region",
        "operator",
        "outcome",
        "rto_seconds",
        "rto_target_seconds",
        "rto_met",
        "rto_basis",
        "rpo_seconds",
        "rpo_target_seconds",
        "rpo_met",
        "rpo_basis",
        "verdict",
        "verdict_reason",
        "cleanup_complete",
        "chain_verified",
        "evidence_verified",
        "errors",
        "warnings",
    ]);
    let opt = |v: Option<String>| v.unwrap_or_default();
    for p in &r.plans {
        for run in &p.runs {
            let cells = [
                run.run_id.clone(),
                p.plan.clone(),
                p.tier.clone(),
                run.kind.to_string(),
                opt(run.depth.clone()),
                run.started.to_rfc3339(),
                opt(run.ended.map(|t| t.to_rfc3339())),
                opt(run.duration_seconds.map(|d| format!("{d:.3}"))),
                run.target.clone(),
                opt(run.operator.clone()),
                run.outcome.to_string(),
                opt(run.rto.seconds.map(|s| format!("{s:.3}"))),
                opt(run.rto.target_seconds.map(|s| s.to_string())),
                opt(run.rto.met.map(|m| m.to_string())),
                run.rto.basis.clone(),
                opt(run.rpo.seconds.map(|s| format!("{s:.3}"))),
                opt(run.rpo.target_seconds.map(|s| s.to_string())),
                opt(run.rpo.met.map(|m| m.to_string())),
                run.rpo.basis.clone(),
                verdict_word(&run.verdict).to_string(),
                verdict_reason(&run.verdict).to_string(),
                opt(run.cleanup.as_ref().map(|c| c.complete.to_string())),
                run.chain.ok.to_string(),
                opt(run
                    .evidence_check
                    .as_ref()
                    .map(|c| c.problems.is_empty().to_string())),
                run.errors.join("; "),
                run.warnings.join("; "),
            ];
            let _ = w.write_record(
                cells
                    .iter()
                    .map(|c| crate::escape::csv_cell(c).into_owned()),
            );
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Text escaped for XML and HTML (text and attribute values alike), its
/// control characters removed (XML 1.0 has no place for them).
pub(crate) fn x(s: &str) -> String {
    quick_xml::escape::escape(crate::escape::terminal(s).as_ref()).into_owned()
}

/// The report as JUnit XML: one testsuite per plan, one testcase per run
/// (a `failure` when its verdict is FAIL, `skipped` when UNKNOWN or
/// REFUSED: it did not run), and one
/// testcase for the plan's drill cadence (a failure when overdue).
pub fn junit(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites name="drctl disaster-recovery report {} to {}" tests="{}" failures="{}" skipped="{}" time="{:.3}">"#,
        day(r.window.from),
        day(r.window.to),
        r.plans.iter().map(|p| p.runs.len() + 1).sum::<usize>(),
        r.plans.iter().map(junit_failures).sum::<usize>(),
        r.plans.iter().map(junit_skipped).sum::<usize>(),
        r.plans.iter().map(junit_time).sum::<f64>()
    );
    for p in &r.plans {
        junit_suite(&mut o, p, r.generated_at);
    }
    let _ = writeln!(o, "</testsuites>");
    o
}

/// A plan's JUnit failures: runs that FAIL, and an overdue cadence.
fn junit_failures(p: &super::PlanSection) -> usize {
    p.runs
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail(_)))
        .count()
        + usize::from(p.cadence.overdue)
}

/// A plan's JUnit skipped testcases: runs whose verdict is UNKNOWN or
/// REFUSED.
fn junit_skipped(p: &super::PlanSection) -> usize {
    p.runs
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Unknown(_) | Verdict::Refused(_)))
        .count()
}

/// The time of a plan's runs, in seconds.
fn junit_time(p: &super::PlanSection) -> f64 {
    p.runs
        .iter()
        .filter_map(|r| r.duration_seconds)
        .sum::<f64>()
}

/// One plan's testsuite.
fn junit_suite(o: &mut String, p: &super::PlanSection, generated_at: DateTime<Utc>) {
    let _ = writeln!(
        o,
        r#"  <testsuite name="{}" tests="{}" failures="{}" errors="0" skipped="{}" time="{:.3}" timestamp="{}">"#,
        x(&p.plan),
        p.runs.len() + 1,
        junit_failures(p),
        junit_skipped(p),
        junit_time(p),
        generated_at.format("%Y-%m-%dT%H:%M:%S")
    );
    let _ = writeln!(o, "    <properties>");
    for (k, v) in [
        ("tier", p.tier.clone()),
        ("rto_target_seconds", p.rto_target_seconds.to_string()),
        ("rpo_target_seconds", p.rpo_target_seconds.to_string()),
    ] {
        let _ = writeln!(o, r#"      <property name="{k}" value="{}"/>"#, x(&v));
    }
    let _ = writeln!(o, "    </properties>");
    for run in &p.runs {
        junit_case(o, p, run);
    }
    let _ = writeln!(
        o,
        r#"    <testcase classname="drctl.{}.cadence" name="a passing drill every {}" time="0">"#,
        x(&p.plan),
        target(p.cadence.interval_seconds)
    );
    if p.cadence.overdue {
        let _ = writeln!(
            o,
            r#"      <failure type="OVERDUE" message="{}"/>"#,
            x(p.cadence
                .note
                .as_deref()
                .unwrap_or("no passing drill within the interval"))
        );
    }
    let _ = writeln!(o, "    </testcase>");
    let _ = writeln!(o, "  </testsuite>");
}

/// One run's testcase.
fn junit_case(o: &mut String, p: &super::PlanSection, run: &RunRow) {
    let _ = writeln!(
        o,
        r#"    <testcase classname="drctl.{}.{}" name="{} {} to {}" time="{:.3}">"#,
        x(&p.plan),
        run.kind,
        x(&run.run_id),
        x(&kind_label(run)),
        x(&run.target),
        run.duration_seconds.unwrap_or_default()
    );
    match &run.verdict {
        Verdict::Pass => {}
        Verdict::Fail(why) => {
            let _ = writeln!(
                o,
                r#"      <failure type="FAIL" message="{}">{}</failure>"#,
                x(why),
                x(&run.errors.join("\n"))
            );
        }
        Verdict::Unknown(why) | Verdict::Refused(why) => {
            let _ = writeln!(
                o,
                r#"      <skipped message="{}: {}"/>"#,
                verdict_word(&run.verdict),
                x(why)
            );
        }
    }
    let _ = writeln!(
        o,
        "      <system-out>RTO {}\nRPO {}</system-out>",
        x(&measure_text(&run.rto)),
        x(&measure_text(&run.rpo))
    );
    let _ = writeln!(o, "    </testcase>");
}
