//! `drctl report --format html`: one file an auditor can open, archive,
//! print and attach to a control test.
//!
//! Why it is built this way:
//! - **Self-contained.** Styles are inline, timelines are inline SVG, and
//!   nothing is fetched: no font, image, stylesheet or script. A report kept
//!   for years as evidence must open offline exactly as it was made, and a
//!   file that loads something from elsewhere would not be the same file
//!   twice.
//! - **No JavaScript.** It reads the same in a locked-down viewer, a mail
//!   preview and on paper. Navigation is anchors; step details on hover are
//!   SVG `<title>` elements.
//! - **Screen and print.** An `@page` rule, page breaks that keep a run and
//!   its timeline together, colours kept when printed, and every colour also
//!   said in words (PASS, FAIL, MISSED), so a greyscale print loses nothing.
//! - **Honest figures.** The same words as the other renderings (shared
//!   helpers in [`super::render`]): an unknown figure says "unknown", and a
//!   run whose journal does not verify has its timeline marked untrusted.
//!
//! Each run's timeline puts its steps on one time axis from the disaster's
//! declaration (or the run's start, which is what RTO is measured from),
//! one bar per step that started, with the RTO target and the RTO achieved
//! marked. Like the other renderings, this is a pure function of the
//! [`Report`]: the same report gives the same bytes (a golden file pins it).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::controls::Status;
use super::findings::Severity;
use super::readiness::Matrix;
use super::render::{
    achieved, cleanup_word, day, evidence_text, finding_code, kind_label, measure_text, minute,
    target, verdict_reason, verdict_word, x,
};
use super::{PlanSection, Report, RunRow};
use crate::runs::drill::Verdict;
use crate::runs::measure::{Measure, StepTiming};
use crate::runs::replay::StepState;

/// The page's style sheet: screen first, then print.
const STYLE: &str = r#"
:root { --ink: #1b1f24; --muted: #57606a; --rule: #d0d7de; --head: #f3f5f7;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #b3261e; --fail-bg: #ffebe9;
  --unknown: #7d4e00; --unknown-bg: #fff8c5; --accent: #0b57d0; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 18px 0 6px; }
p.meta { color: var(--muted); margin: 0 0 8px; }
nav.toc { margin: 12px 0 0; font-size: 13px; }
nav.toc a { margin-right: 14px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; font-size: 13px; }
th, td { border: 1px solid var(--rule); padding: 4px 7px; text-align: left; vertical-align: top; }
thead th { background: var(--head); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .id { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
.badge { display: inline-block; padding: 0 6px; border: 1px solid; border-radius: 3px; font-weight: 700; font-size: 12px; letter-spacing: .02em; white-space: nowrap; }
.pass { color: var(--pass); background: var(--pass-bg); }
.fail, .high, .gap, .missed { color: var(--fail); background: var(--fail-bg); }
.unknown, .medium { color: var(--unknown); background: var(--unknown-bg); }
.low, .evidenced, .refused { color: var(--muted); background: var(--head); }
.evidenced { color: var(--pass); background: var(--pass-bg); }
table.counts td { font-size: 18px; font-weight: 600; }
ol.findings { padding-left: 22px; }
ol.findings li { margin: 0 0 10px; }
ol.findings .what { display: block; color: var(--muted); font-size: 13px; }
section.plan { margin-top: 8px; }
article.run { border: 1px solid var(--rule); border-radius: 4px; padding: 6px 14px 10px; margin: 14px 0; }
article.run h3 { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0 8px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
dl.facts ul { margin: 0; padding-left: 18px; }
figure.timeline { margin: 6px 0 0; }
figure.timeline svg { display: block; width: 100%; height: auto; }
figure.timeline figcaption { color: var(--muted); font-size: 12px; }
figure.timeline.untrusted figcaption { color: var(--fail); font-weight: 600; }
svg text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; fill: var(--ink); }
svg text.step { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
svg text.tick, svg text.not-started, svg text.axis { fill: var(--muted); }
svg .grid { stroke: #e6e9ed; stroke-width: 1; }
svg .bar.succeeded { fill: #2e7d32; }
svg .bar.failed { fill: #c62828; }
svg .bar.started { fill: #f2b705; }
svg .before-run { fill: #eceff3; }
svg .rto-target { stroke: #c62828; stroke-width: 1.5; stroke-dasharray: 6 3; }
svg .rto-target.beyond { stroke-dasharray: 1 3; stroke-width: 2; }
svg .rto-achieved { stroke: var(--accent); stroke-width: 1.5; }
svg text.rto-target-label { fill: #c62828; font-weight: 600; }
svg text.rto-achieved-label { fill: var(--accent); font-weight: 600; }
table.signoff td { height: 34px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule); padding-top: 8px; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10.5px; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  a { color: inherit; text-decoration: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2, h3 { break-after: avoid; }
  tr, li, article.run, figure { break-inside: avoid; }
  section.plan, section#controls, section#signoff { break-before: page; }
}
"#;

/// The report as one self-contained HTML page, from journals alone.
pub fn html(r: &Report) -> String {
    page(r, None)
}

/// The report as one self-contained HTML page; with `readiness`, the
/// dashboard: the readiness matrix read live is drawn after the summary,
/// and the page says which part was read from the clouds.
pub fn page(r: &Report, readiness: Option<&Matrix>) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = format!(
        "Disaster-recovery report, {} to {}",
        day(r.window.from),
        day(r.window.to)
    );
    head(&mut o, &title, readiness.is_some());
    let _ = writeln!(o, "<header>\n<h1>{}</h1>", x(&title));
    let _ = writeln!(
        o,
        r#"<p class="meta">Plans: {} · generated {} · computed from journals only{} · schema <code>{}</code></p>"#,
        if r.scope.is_empty() {
            "none".into()
        } else {
            x(&r.scope.join(", "))
        },
        x(&minute(r.generated_at)),
        if readiness.is_some() {
            ", but for the readiness read from the clouds"
        } else {
            ""
        },
        x(r.schema)
    );
    let _ = write!(
        o,
        r##"<nav class="toc"><a href="#summary">Summary</a>{}<a href="#calendar">Drill calendar</a><a href="#placement">Where plans serve</a><a href="#findings">Findings</a>"##,
        if readiness.is_some() {
            r##"<a href="#readiness">Readiness now</a>"##
        } else {
            ""
        }
    );
    for p in &r.plans {
        let _ = write!(
            o,
            r##"<a href="#plan-{}">Plan {}</a>"##,
            x(&p.plan),
            x(&p.plan)
        );
    }
    let _ = writeln!(
        o,
        r##"<a href="#controls">Controls</a><a href="#signoff">Sign-off</a></nav>"##
    );
    let _ = writeln!(o, "</header>");
    summary(&mut o, r);
    if let Some(m) = readiness {
        super::readiness::section(&mut o, m);
    }
    super::pictures::calendar(&mut o, r);
    super::pictures::placement(&mut o, r);
    findings(&mut o, r);
    let mut anchored = std::collections::BTreeSet::new();
    for p in &r.plans {
        plan(&mut o, p, &mut anchored);
    }
    controls(&mut o, r);
    signoff(&mut o, r);
    let _ = writeln!(
        o,
        "<footer>Made by drctl from the journals of the runs it lists{}. \
         <code>drctl audit verify --evidence</code> proves each journal's hash chain and each run's evidence pack on every destination.</footer>",
        if readiness.is_some() {
            "; the readiness section alone was read from the clouds, when it says: the same journals give the same report but for that section"
        } else {
            ", and nothing else: the same journals give the same report"
        }
    );
    let _ = writeln!(o, "</main>\n</body>\n</html>");
    o
}

/// The page's `<head>` and the opening of its body: its title, its
/// styles (the matrix's only on the dashboard).
fn head(o: &mut String, title: &str, dashboard: bool) {
    let _ = writeln!(o, "<!DOCTYPE html>");
    let _ = writeln!(o, r#"<html lang="en">"#);
    let _ = writeln!(o, "<head>");
    let _ = writeln!(o, r#"<meta charset="utf-8">"#);
    let _ = writeln!(
        o,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
    );
    let _ = writeln!(o, r#"<meta name="generator" content="drctl">"#);
    let _ = writeln!(o, "<title>{}</title>", x(title));
    let matrix = if dashboard {
        super::readiness::STYLE
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "<style>{STYLE}{}{matrix}</style>",
        super::pictures::STYLE
    );
    let _ = writeln!(o, "</head>");
    let _ = writeln!(o, "<body>\n<main>");
}

/// A verdict as a coloured word.
fn verdict_badge(v: &Verdict) -> String {
    let class = match v {
        Verdict::Pass => "pass",
        Verdict::Fail(_) => "fail",
        Verdict::Unknown(_) => "unknown",
        Verdict::Refused(_) => "refused",
    };
    format!(r#"<span class="badge {class}">{}</span>"#, verdict_word(v))
}

/// A link to a run's section: its row of `plan`, or its first row.
fn run_link(id: &str, plan: Option<&str>) -> String {
    match plan {
        Some(p) => format!(
            r##"<a class="id" href="#run-{0}-{1}">{0}</a>"##,
            x(id),
            x(p)
        ),
        None => format!(r##"<a class="id" href="#run-{0}">{0}</a>"##, x(id)),
    }
}

/// `12.3s / 15m` with MISSED in a badge when the target was missed.
fn figure_cell(m: &Measure) -> String {
    let missed = if m.met == Some(false) {
        r#" <span class="badge missed">MISSED</span>"#
    } else {
        ""
    };
    format!(
        "{} / {}{missed}",
        x(&achieved(m.seconds)),
        x(&m.target_seconds.map_or("none".into(), target))
    )
}

fn summary(o: &mut String, r: &Report) {
    let _ = writeln!(o, r#"<section id="summary">"#);
    let _ = writeln!(o, "<h2>Summary</h2>");
    let _ = writeln!(o, r#"<table class="counts" id="summary-counts">"#);
    let counts = r.summary.counts();
    let cells = |tag: &str, text: &dyn Fn(&(&str, usize)) -> String| -> String {
        counts
            .iter()
            .map(|c| format!(r#"<{tag} class="num">{}</{tag}>"#, text(c)))
            .collect()
    };
    let _ = writeln!(
        o,
        "<thead><tr>{}</tr></thead>",
        cells("th", &|c| c.0.to_string())
    );
    let _ = writeln!(
        o,
        "<tbody><tr>{}</tr></tbody>",
        cells("td", &|c| c.1.to_string())
    );
    let _ = writeln!(o, "</table>");

    let _ = writeln!(o, r#"<table id="summary-plans">"#);
    let _ = writeln!(
        o,
        r#"<thead><tr><th>Plan</th><th>Tier</th><th>RTO target</th><th>RPO target</th><th class="num">Runs</th><th>Last passing drill</th><th>Next drill slot</th><th>Drill cadence</th></tr></thead>"#
    );
    let _ = writeln!(o, "<tbody>");
    for p in &r.plans {
        let c = &p.cadence;
        let _ = writeln!(
            o,
            r##"<tr><td><a href="#plan-{0}">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td><td class="num">{4}</td><td>{5}</td><td>{6}</td><td>{7}</td></tr>"##,
            x(&p.plan),
            x(&p.tier),
            x(&target(p.rto_target_seconds)),
            x(&target(p.rpo_target_seconds)),
            p.runs.len(),
            c.last_passing.as_ref().map_or("never".into(), |d| format!(
                "{} ({})",
                x(&day(d.started)),
                run_link(&d.run_id, Some(&p.plan))
            )),
            x(&c.next_slot.map_or("no schedule".into(), minute)),
            if c.overdue {
                r#"<span class="badge fail">OVERDUE</span>"#.to_string()
            } else {
                format!(
                    r#"<span class="badge pass">ok</span> every {}"#,
                    x(&target(c.interval_seconds))
                )
            }
        );
    }
    let _ = writeln!(o, "</tbody>\n</table>");

    summary_runs(o, r);
    let _ = writeln!(o, "</section>");
}

/// Every run of the window in one table, oldest first.
fn summary_runs(o: &mut String, r: &Report) {
    let mut runs: Vec<(&PlanSection, &RunRow)> = r
        .plans
        .iter()
        .flat_map(|p| p.runs.iter().map(move |run| (p, run)))
        .collect();
    runs.sort_by(|a, b| (a.1.started, &a.0.plan).cmp(&(b.1.started, &b.0.plan)));
    let _ = writeln!(o, "<h3>Every run in the window</h3>");
    if runs.is_empty() {
        let _ = writeln!(o, "<p>No run in the window.</p>");
        return;
    }
    let _ = writeln!(o, r#"<table id="summary-runs">"#);
    let _ = writeln!(
        o,
        "<thead><tr><th>Started (UTC)</th><th>Run</th><th>Plan</th><th>Kind</th><th>To</th><th>RTO achieved / target</th><th>RPO achieved / target</th><th>Verdict</th></tr></thead>"
    );
    let _ = writeln!(o, "<tbody>");
    for (p, run) in runs {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            x(&minute(run.started)),
            run_link(&run.run_id, Some(&p.plan)),
            x(&p.plan),
            x(&kind_label(run)),
            x(&run.target),
            figure_cell(&run.rto),
            figure_cell(&run.rpo),
            verdict_badge(&run.verdict)
        );
    }
    let _ = writeln!(o, "</tbody>\n</table>");
}

fn findings(o: &mut String, r: &Report) {
    let _ = writeln!(o, r#"<section id="findings">"#);
    let _ = writeln!(o, "<h2>Findings</h2>");
    if r.findings.is_empty() {
        let _ = writeln!(o, "<p>None.</p>\n</section>");
        return;
    }
    let _ = writeln!(o, r#"<ol class="findings">"#);
    for f in &r.findings {
        let sev = match f.severity {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        };
        let mut about = Vec::new();
        if let Some(p) = &f.plan {
            about.push(format!("plan {}", x(p)));
        }
        if let Some(run) = &f.run {
            about.push(format!("run {}", run_link(run, f.plan.as_deref())));
        }
        let _ = writeln!(
            o,
            r#"<li class="finding" data-severity="{sev}"><span class="badge {sev}">{}</span> <code>{}</code>{}: {}<span class="what">Owner: {} · Action: {}</span></li>"#,
            sev.to_uppercase(),
            x(&finding_code(f)),
            if about.is_empty() {
                String::new()
            } else {
                format!(" ({})", about.join(", "))
            },
            x(&f.message),
            x(f.owner.as_deref().unwrap_or("unassigned")),
            x(&f.action)
        );
    }
    let _ = writeln!(o, "</ol>\n</section>");
}

/// One plan's section; `anchored`: the runs whose first row has been
/// written (it carries the run's own anchor, `run-<id>`).
fn plan(o: &mut String, p: &PlanSection, anchored: &mut std::collections::BTreeSet<String>) {
    let _ = writeln!(o, r#"<section class="plan" id="plan-{0}">"#, x(&p.plan));
    let _ = writeln!(o, "<h2>Plan {} ({})</h2>", x(&p.plan), x(&p.tier));
    if !p.description.is_empty() {
        let _ = writeln!(o, "<p>{}</p>", x(&p.description));
    }
    let _ = writeln!(o, r#"<dl class="facts">"#);
    let fact = |o: &mut String, k: &str, v: String| {
        let _ = writeln!(o, "<dt>{k}</dt><dd>{v}</dd>");
    };
    fact(
        o,
        "Owner",
        x(p.owner.as_deref().unwrap_or("not set ([plan] owner)")),
    );
    fact(
        o,
        "Regions",
        format!("{} (home first)", x(&p.regions.join(", "))),
    );
    fact(
        o,
        "Targets",
        format!(
            "RTO {}, RPO {}; approval {}",
            x(&target(p.rto_target_seconds)),
            x(&target(p.rpo_target_seconds)),
            if p.approval_required {
                "required"
            } else {
                "not required"
            }
        ),
    );
    fact(
        o,
        "Drill cadence",
        format!(
            "a passing drill every {}{}{}",
            x(&target(p.cadence.interval_seconds)),
            p.cadence
                .schedule
                .as_ref()
                .map(|s| format!("; schedule <code>{}</code>", x(s)))
                .unwrap_or_default(),
            p.cadence
                .note
                .as_ref()
                .map(|n| format!("; {}", x(n)))
                .unwrap_or_default()
        ),
    );
    fact(o, "Verified", x(&super::render::verified_text(&p.verified)));
    if let Some(t) = super::render::restore_test_text(p) {
        fact(o, "Last restore test", x(&t));
    }
    let _ = writeln!(o, "</dl>");
    if p.runs.is_empty() {
        let _ = writeln!(o, "<p>No run in the window.</p>\n</section>");
        return;
    }
    super::pictures::trends(o, p);
    for run in &p.runs {
        if anchored.insert(run.run_id.clone()) {
            let _ = writeln!(o, r#"<a id="run-{}"></a>"#, x(&run.run_id));
        }
        run_article(o, p, run);
    }
    let _ = writeln!(o, "</section>");
}

fn run_article(o: &mut String, p: &PlanSection, run: &RunRow) {
    // A run of several plans has one row per plan, each with its anchor.
    let _ = writeln!(
        o,
        r#"<article class="run" id="run-{}-{}" data-run="{}" data-plan="{}">"#,
        x(&run.run_id),
        x(&p.plan),
        x(&run.run_id),
        x(&p.plan)
    );
    let _ = writeln!(
        o,
        r#"<h3><span class="id">{}</span> <span>{}</span> {}</h3>"#,
        x(&run.run_id),
        x(&kind_label(run)),
        verdict_badge(&run.verdict)
    );
    let _ = writeln!(o, r#"<dl class="facts">"#);
    for (k, v) in run_facts(run) {
        let _ = writeln!(o, "<dt>{k}</dt><dd>{v}</dd>");
    }
    let _ = writeln!(o, "</dl>");
    super::pictures::waterfall(o, p, run);
    timeline(o, p, run);
    let _ = writeln!(o, "</article>");
}

/// A run's facts, each a term and its HTML, in the order they are listed.
fn run_facts(run: &RunRow) -> Vec<(&'static str, String)> {
    let mut facts = vec![("Verdict", verdict_fact(&run.verdict))];
    facts.extend(run.as_of.as_ref().map(|a| ("As of", x(a))));
    facts.push(("When", when_fact(run)));
    facts.push((
        "Who, where",
        format!(
            "to {}; operator {} on {}",
            x(&run.target),
            x(run.operator.as_deref().unwrap_or("unknown")),
            x(&run.host)
        ),
    ));
    facts.extend(approvals_fact(run).map(|a| ("Approvals", a)));
    facts.extend(
        run.emergency
            .as_ref()
            .map(|e| ("Emergency", emergency_fact(e))),
    );
    facts.push(("RTO", x(&measure_text(&run.rto))));
    facts.push(("RPO", x(&measure_text(&run.rpo))));
    facts.extend(run.errors.iter().map(|e| ("Error", x(e))));
    facts.extend(run.warnings.iter().map(|w| ("Warning", x(w))));
    facts.extend(run.cleanup.as_ref().map(|c| ("Cleanup", cleanup_fact(c))));
    facts.push((
        "Evidence",
        match &run.evidence_check {
            // Unreadable objects say nothing of the bytes: not a mismatch.
            Some(c) if crate::evidence::only_unreadable(&c.problems) => format!(
                r#"<span class="badge unknown">UNREADABLE</span> {}"#,
                x(&evidence_text(run))
            ),
            Some(c) if !c.problems.is_empty() => format!(
                r#"<span class="badge fail">NOT MATCHING</span> {}"#,
                x(&evidence_text(run))
            ),
            _ => x(&evidence_text(run)),
        },
    ));
    facts.push((
        "Journal",
        if run.chain.ok {
            format!(
                "{} records, {}",
                run.chain.records,
                x(&super::chain_words(&run.chain))
            )
        } else {
            format!(
                r#"{} records, hash chain <span class="badge fail">BROKEN</span> {}"#,
                run.chain.records,
                x(run.chain.problem.as_deref().unwrap_or("unknown"))
            )
        },
    ));
    facts.extend((run.verified_at_start.as_ref()).map(|v| {
        let html = match &v.reason {
            None => x(&super::render::verified_text(v)),
            Some(why) => format!(r#"<span class="badge fail">NOT VERIFIED</span> {}"#, x(why)),
        };
        ("Plan at the run's start", html)
    }));
    facts.extend(
        run.rollback_scope
            .as_ref()
            .map(|s| ("Cannot be undone", x(s))),
    );
    facts
}

fn verdict_fact(v: &Verdict) -> String {
    match verdict_reason(v) {
        "" => format!("{} every measured target met", verdict_badge(v)),
        why => format!("{} {}", verdict_badge(v), x(why)),
    }
}

fn when_fact(run: &RunRow) -> String {
    format!(
        "started {}{}; {}; outcome {}{}",
        x(&minute(run.started)),
        run.declared_at
            .map(|d| format!(" (disaster declared {})", x(&minute(d))))
            .unwrap_or_default(),
        match (run.ended, run.duration_seconds) {
            (Some(e), Some(d)) => format!("ended {} after {d:.1}s", x(&minute(e))),
            _ => "not ended".into(),
        },
        x(&run.outcome.to_string()),
        run.schedule_slot
            .map(|s| format!("; scheduled slot {}", x(&minute(s))))
            .unwrap_or_default()
    )
}

/// The approval gate's decisions as a list; `None` when there were none.
fn approvals_fact(run: &RunRow) -> Option<String> {
    if run.approvals.is_empty() {
        return None;
    }
    let items: String = run
        .approvals
        .iter()
        .map(|a| {
            format!(
                "<li>{} at {}{}{}{}</li>",
                x(&a.decision.to_string()),
                x(&minute(a.at)),
                a.by.as_ref()
                    .map(|b| format!(" by {}", x(b)))
                    .unwrap_or_default(),
                a.reason
                    .as_ref()
                    .map(|r| format!(": “{}”", x(r)))
                    .unwrap_or_default(),
                a.how
                    .as_ref()
                    .map(|h| format!(" ({})", x(h)))
                    .unwrap_or_default()
            )
        })
        .collect();
    Some(format!("<ul>{items}</ul>"))
}

fn emergency_fact(e: &super::Emergency) -> String {
    format!(
        "approve by {}; {}",
        x(&e.approve_by.map_or("?".into(), minute)),
        match (&e.approved_at, e.overdue) {
            (Some(at), false) => format!("approved {}", x(&minute(*at))),
            (Some(at), true) => format!(
                r#"<span class="badge fail">approved LATE</span> {}"#,
                x(&minute(*at))
            ),
            (None, true) => {
                r#"<span class="badge fail">NOT APPROVED</span> deadline passed"#.into()
            }
            (None, false) => "not approved yet".into(),
        }
    )
}

fn cleanup_fact(c: &crate::runs::drill::CleanupSummary) -> String {
    let left: String = c
        .left
        .iter()
        .map(|l| format!("<li>left: {}</li>", x(&l.to_string())))
        .collect();
    format!(
        "{}{}{}",
        match cleanup_word(c) {
            "INCOMPLETE" => r#"<span class="badge fail">INCOMPLETE</span>"#.to_string(),
            "complete" => r#"<span class="badge pass">complete</span>"#.to_string(),
            word => x(word),
        },
        c.seconds
            .map(|s| format!(" in {s:.1}s"))
            .unwrap_or_default(),
        if left.is_empty() {
            String::new()
        } else {
            format!("<ul>{left}</ul>")
        }
    )
}

/// Seconds from `a` to `b`.
fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_milliseconds() as f64 / 1000.0
}

/// A tick interval that divides `span` seconds into at most eight parts.
fn tick_for(span: f64) -> f64 {
    const NICE: [f64; 22] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0, 172800.0,
    ];
    NICE.iter()
        .copied()
        .find(|t| span / t <= 8.0)
        .unwrap_or_else(|| (span / 8.0 / 86400.0).ceil() * 86400.0)
}

/// `+0.5s`, `+5m`, `+1h30m`.
fn tick_label(secs: f64) -> String {
    if secs <= 1e-9 {
        return "0".into();
    }
    let whole = secs.round();
    if (secs - whole).abs() > 1e-6 {
        return format!("+{secs:.1}s");
    }
    format!("+{}", target(whole as u64))
}

/// The RTO target is drawn to scale when it lies within this many times
/// the run's own span; further out, the axis shows the run alone.
const ZOOM: f64 = 4.0;
/// The shortest axis, in seconds.
const MIN_SPAN: f64 = 0.5;

/// Geometry of a timeline (SVG user units).
const WIDTH: f64 = 960.0;
const PLOT_X0: f64 = 250.0;
const PLOT_X1: f64 = 930.0;
const TOP: f64 = 40.0;
const ROW: f64 = 22.0;
const BOTTOM: f64 = 34.0;

/// A run's time axis: where each instant of the run is drawn.
struct Axis {
    /// The axis's start: the declaration or the run's start, the earlier.
    origin: DateTime<Utc>,
    /// The run's last instant (its end, or its last step's).
    last: DateTime<Utc>,
    /// Seconds from the axis's start to what RTO is measured from.
    from_rto: f64,
    /// The axis's length in seconds, a whole number of ticks.
    span: f64,
    /// Seconds between ticks.
    tick: f64,
    /// The RTO target lies so far beyond the run that it is only pointed at.
    beyond: bool,
}

impl Axis {
    fn of(run: &RunRow) -> Self {
        // What RTO is measured from, and the axis's start.
        let rto_origin = run.declared_at.unwrap_or(run.started);
        let origin = rto_origin.min(run.started);
        let mut last = run.ended.unwrap_or(run.started);
        for s in &run.steps {
            for t in [s.started, s.ended].into_iter().flatten() {
                last = last.max(t);
            }
        }
        let from_rto = secs(origin, rto_origin);
        // The axis covers the run (and the RTO achieved), and the RTO target
        // too unless it lies far beyond: a run of seconds against a target of
        // minutes would be a sliver. Then the target is marked at the axis's
        // end as beyond it.
        let mut span = secs(origin, last);
        if let Some(a) = run.rto.seconds {
            span = span.max(from_rto + a);
        }
        let target_at = run.rto.target_seconds.map(|t| from_rto + t as f64);
        let beyond = target_at.is_some_and(|t| t > ZOOM * span.max(MIN_SPAN));
        if let Some(t) = target_at
            && !beyond
        {
            span = span.max(t);
        }
        let tick = tick_for(span.max(MIN_SPAN));
        let span = (span.max(MIN_SPAN) / tick).ceil() * tick;
        Self {
            origin,
            last,
            from_rto,
            span,
            tick,
            beyond,
        }
    }

    /// Seconds from the axis's start to `t`.
    fn at(&self, t: DateTime<Utc>) -> f64 {
        secs(self.origin, t)
    }

    /// The x coordinate of `s` seconds on the axis.
    fn xpos(&self, s: f64) -> f64 {
        PLOT_X0 + (s / self.span) * (PLOT_X1 - PLOT_X0)
    }
}

/// The SVG timeline of one run: a bar per started step on a time axis from
/// the RTO's origin, the RTO target and the RTO achieved marked.
fn timeline(o: &mut String, p: &PlanSection, run: &RunRow) {
    if run.steps.is_empty() {
        let _ = writeln!(o, "<p>No step was recorded.</p>");
        return;
    }
    let axis = Axis::of(run);
    let plot_bottom = TOP + ROW * run.steps.len() as f64;
    let untrusted = !run.chain.ok;
    let _ = writeln!(
        o,
        r#"<figure class="timeline{}">"#,
        if untrusted { " untrusted" } else { "" }
    );
    svg_open(o, p, run, plot_bottom + BOTTOM);
    grid(o, run, &axis, plot_bottom);
    for (i, s) in run.steps.iter().enumerate() {
        step_row(o, p, s, &axis, TOP + ROW * i as f64);
    }
    rto_marks(o, run, &axis, plot_bottom);
    let _ = writeln!(o, "</svg>");
    let _ = writeln!(
        o,
        "<figcaption>{}</figcaption>",
        if untrusted {
            "Not trusted: the journal does not verify (its chain or, with run keys listed, its signatures), so these times are what the altered journal says.".to_string()
        } else {
            format!(
                "Green: succeeded; red: failed; yellow: started with no end recorded. Dashed red: the RTO target{}; blue: the RTO achieved ({}).",
                if axis.beyond {
                    " (far beyond the run: the axis shows the run alone, the dotted line at its end points on to the target)"
                } else {
                    ""
                },
                x(&run.rto.basis)
            )
        }
    );
    let _ = writeln!(o, "</figure>");
}

/// The `<svg>` element and its title.
fn svg_open(o: &mut String, p: &PlanSection, run: &RunRow, height: f64) {
    let id = format!("{}-{}", run.run_id, p.plan);
    let started_bars = run.steps.iter().filter(|s| s.started.is_some()).count();
    let _ = writeln!(
        o,
        r#"<svg class="timeline" data-run="{run}" data-plan="{plan}" data-steps="{started_bars}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-labelledby="tl-{id}" xmlns="http://www.w3.org/2000/svg">"#,
        id = x(&id),
        run = x(&run.run_id),
        plan = x(&p.plan),
    );
    let _ = writeln!(
        o,
        r#"<title id="tl-{}">Timeline of {} {}: {} step(s) on a time axis from {}{}</title>"#,
        x(&id),
        x(&kind_label(run)),
        x(&run.run_id),
        started_bars,
        if run.declared_at.is_some() {
            "the disaster's declaration"
        } else {
            "the run's start"
        },
        run.rto
            .target_seconds
            .map(|t| format!("; RTO target {}", target(t)))
            .map(|s| x(&s))
            .unwrap_or_default()
    );
}

/// The grid and its ticks, the axis's name, and the time before the run
/// (from the declaration to the run's start).
fn grid(o: &mut String, run: &RunRow, axis: &Axis, plot_bottom: f64) {
    let mut k = 0.0;
    while k <= axis.span + 1e-9 {
        let gx = axis.xpos(k);
        let _ = writeln!(
            o,
            r#"<line class="grid" x1="{gx:.1}" y1="{:.1}" x2="{gx:.1}" y2="{plot_bottom:.1}"/><text class="tick" x="{gx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP - 6.0,
            plot_bottom + 14.0,
            x(&tick_label(k))
        );
        k += axis.tick;
    }
    let _ = writeln!(
        o,
        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">time since {}</text>"#,
        (PLOT_X0 + PLOT_X1) / 2.0,
        plot_bottom + 29.0,
        if run.declared_at.is_some() {
            "the disaster was declared"
        } else {
            "the run started"
        }
    );
    if run.started > axis.origin {
        let w = axis.xpos(axis.at(run.started)) - PLOT_X0;
        let _ = writeln!(
            o,
            r#"<rect class="before-run" x="{PLOT_X0:.1}" y="{:.1}" width="{w:.1}" height="{:.1}"><title>declared {} → run started {} ({:.1}s before the run)</title></rect>"#,
            TOP - 6.0,
            plot_bottom - TOP + 6.0,
            x(&minute(axis.origin)),
            x(&minute(run.started)),
            axis.at(run.started)
        );
    }
}

/// One step's row at height `y`: its name, and its bar with its duration
/// (or "not started").
fn step_row(o: &mut String, p: &PlanSection, s: &StepTiming, axis: &Axis, y: f64) {
    let name = s
        .step
        .strip_prefix(&format!("{}/", p.plan))
        .unwrap_or(&s.step);
    let shown: String = if name.chars().count() > 34 {
        name.chars().take(33).chain(['…']).collect()
    } else {
        name.to_string()
    };
    let _ = writeln!(
        o,
        r#"<text class="step" x="{:.1}" y="{:.1}" text-anchor="end"><title>{}</title>{}</text>"#,
        PLOT_X0 - 8.0,
        y + 15.0,
        x(&s.step),
        x(&shown)
    );
    let Some(start) = s.started else {
        let _ = writeln!(
            o,
            r#"<text class="not-started" x="{:.1}" y="{:.1}">not started</text>"#,
            PLOT_X0 + 4.0,
            y + 15.0
        );
        return;
    };
    let end = s.ended.unwrap_or(axis.last);
    let x0 = axis.xpos(axis.at(start));
    let w = (axis.xpos(axis.at(end)) - x0).max(2.0);
    let dur = secs(start, end);
    let (state, suffix) = match s.state {
        StepState::Succeeded => ("succeeded", ""),
        StepState::Failed => ("failed", " FAILED"),
        StepState::Started | StepState::NotRun => ("started", " no end"),
    };
    let detail = format!(
        "{}: {state}, {dur:.1}s ({} → {}{}){}",
        s.step,
        minute(start),
        s.ended.map_or("no end recorded".into(), minute),
        if s.ended.is_none() {
            ", drawn to the run's last record"
        } else {
            ""
        },
        s.error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        r#"<rect class="bar {state}" data-step="{}" x="{x0:.1}" y="{:.1}" width="{w:.1}" height="14" rx="2"><title>{}</title></rect>"#,
        x(&s.step),
        y + 4.0,
        x(&detail)
    );
    let (lx, anchor) = if x0 + w + 70.0 <= PLOT_X1 {
        (x0 + w + 4.0, "start")
    } else {
        (x0 - 4.0, "end")
    };
    let _ = writeln!(
        o,
        r#"<text class="duration" x="{lx:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
        y + 15.0,
        x(&format!("{dur:.1}s{suffix}"))
    );
}

/// The RTO target and the RTO achieved, over the rows.
fn rto_marks(o: &mut String, run: &RunRow, axis: &Axis, plot_bottom: f64) {
    let marker = |o: &mut String, class: &str, at_s: f64, label: String, lane: f64| {
        let mx = axis.xpos(at_s);
        let anchor = if mx > PLOT_X1 - 120.0 { "end" } else { "start" };
        let lx = if anchor == "end" { mx - 3.0 } else { mx + 3.0 };
        let _ = writeln!(
            o,
            r#"<line class="{class}" x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{plot_bottom:.1}"/><text class="{class}-label" x="{lx:.1}" y="{lane:.1}" text-anchor="{anchor}">{}</text>"#,
            lane + 3.0,
            x(&label)
        );
    };
    if let Some(t) = run.rto.target_seconds {
        if axis.beyond {
            let _ = writeln!(
                o,
                r#"<line class="rto-target beyond" x1="{PLOT_X1:.1}" y1="{:.1}" x2="{PLOT_X1:.1}" y2="{plot_bottom:.1}"/><text class="rto-target-label" x="{:.1}" y="12.0" text-anchor="end">RTO target {} (+{}), beyond this axis →</text>"#,
                TOP - 6.0,
                PLOT_X1,
                x(&target(t)),
                x(&target((axis.from_rto + t as f64).round() as u64))
            );
        } else {
            marker(
                o,
                "rto-target",
                axis.from_rto + t as f64,
                format!("RTO target {}", target(t)),
                12.0,
            );
        }
    }
    if let Some(a) = run.rto.seconds {
        marker(
            o,
            "rto-achieved",
            axis.from_rto + a,
            format!(
                "RTO achieved {}{}",
                achieved(Some(a)),
                match run.rto.met {
                    Some(true) => " (met)",
                    Some(false) => " (MISSED)",
                    None => "",
                }
            ),
            26.0,
        );
    }
}

fn controls(o: &mut String, r: &Report) {
    let _ = writeln!(o, r#"<section id="controls">"#);
    let _ = writeln!(o, "<h2>Controls</h2>");
    let _ = writeln!(
        o,
        "<p>Which run is evidence for which control, and what is missing. Each control is decided from the journals as its “tested as” says.</p>"
    );
    let _ = writeln!(o, "<table>");
    let _ = writeln!(
        o,
        "<thead><tr><th>Control</th><th>Framework</th><th>Requires</th><th>Tested as</th><th>Status</th><th>Evidence</th><th>Missing</th></tr></thead>"
    );
    let _ = writeln!(o, "<tbody>");
    for c in &r.controls {
        let _ = writeln!(
            o,
            "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            x(c.id),
            x(c.framework),
            x(c.requirement),
            x(c.test),
            match c.status {
                Status::Evidenced => r#"<span class="badge evidenced">evidenced</span>"#,
                Status::Gap => r#"<span class="badge gap">GAP</span>"#,
            },
            if c.evidence.is_empty() {
                "none".into()
            } else {
                c.evidence
                    .iter()
                    .map(|e| run_link(e, None))
                    .collect::<Vec<_>>()
                    .join("<br>")
            },
            if c.missing.is_empty() {
                "nothing".into()
            } else {
                c.missing
                    .iter()
                    .map(|m| x(m))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        );
    }
    let _ = writeln!(o, "</tbody>\n</table>\n</section>");
}

fn signoff(o: &mut String, r: &Report) {
    let _ = writeln!(o, r#"<section id="signoff">"#);
    let _ = writeln!(o, "<h2>Sign-off</h2>");
    let _ = writeln!(
        o,
        "<p>Prepared by drctl on {} from the journals of the runs above. Reviewed and accepted by:</p>",
        x(&minute(r.generated_at))
    );
    let _ = writeln!(
        o,
        r#"<table class="signoff"><thead><tr><th>Role</th><th>Name</th><th>Date</th><th>Signature</th><th>Comments</th></tr></thead><tbody>"#
    );
    for role in ["Plan owner", "DR / platform lead", "Compliance reviewer"] {
        let _ = writeln!(
            o,
            "<tr><td>{role}</td><td></td><td></td><td></td><td></td></tr>"
        );
    }
    let _ = writeln!(o, "</tbody></table>\n</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_divide_a_span_into_at_most_eight_parts() {
        assert_eq!(tick_for(0.7), 0.1);
        assert_eq!(tick_for(7.0), 1.0);
        assert_eq!(tick_for(60.0), 10.0);
        assert_eq!(tick_for(900.0), 120.0);
        assert_eq!(tick_for(1183.0), 300.0);
        assert_eq!(tick_for(3.0 * 86400.0), 43200.0);
        assert!(30.0 * 86400.0 / tick_for(30.0 * 86400.0) <= 8.0);
    }

    #[test]
    fn tick_labels_read_like_plan_durations() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(0.1 + 0.2), "+0.3s");
        assert_eq!(tick_label(2.0), "+2s");
        assert_eq!(tick_label(300.0), "+5m");
        assert_eq!(tick_label(5400.0), "+1h30m");
    }
}
